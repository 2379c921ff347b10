//! The binary edge both services' `main` share: failpoints set up for the fault tests, errors
//! printed with their causes, and logging. Like a `main.rs`, this is where `anyhow` belongs.

/// The shared frame of both binaries' `main`: failpoints (in fault-test builds) set up from
/// `FAILPOINTS`, and an error printed with its causes as a failing exit.
pub fn run_main(body: impl FnOnce() -> anyhow::Result<()>) -> std::process::ExitCode {
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    match body() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs to stderr (journald keeps it under systemd); `RUST_LOG` overrides `default`.
pub fn init_tracing(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default.into()),
        )
        .init();
}
