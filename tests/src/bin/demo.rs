//! The real `modori-demo` entry point, for the test that runs the README's first command.
fn main() -> std::process::ExitCode {
    modori_demo::cli::main()
}
