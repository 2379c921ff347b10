//! The real `modori-coordinator` entry point, built with failpoints for the process fault tests.
fn main() -> std::process::ExitCode {
    modori_coordinator::cli::main()
}
