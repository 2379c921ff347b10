//! `modori-load`: the fleet load harness.
//!
//! Called by the name `modori-agent` or `modori-coordinator` (a symlink, as busybox does), it is
//! that service instead: the same entry point as the real binary. `--self-hosted` runs the
//! fleet that way, so a smoke run needs no separately built binaries.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    match Path::new(&argv0).file_name().and_then(|n| n.to_str()) {
        Some(modori_loadtest::binaries::AGENT_NAME) => modori_agent::cli::main(),
        Some(modori_loadtest::binaries::COORDINATOR_NAME) => modori_coordinator::cli::main(),
        _ => modori_loadtest::cli::main(),
    }
}
