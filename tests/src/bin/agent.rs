//! The real `modori-agent` entry point, built with failpoints for the process fault tests.
fn main() -> std::process::ExitCode {
    modori_agent::cli::main()
}
