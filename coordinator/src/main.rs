fn main() -> std::process::ExitCode {
    modori_coordinator::cli::main()
}
