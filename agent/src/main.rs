//! `modori-agent`: the site service (see `cli`).

fn main() -> std::process::ExitCode {
    modori_agent::cli::main()
}
