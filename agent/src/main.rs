fn main() -> std::process::ExitCode {
    modori_agent::cli::main()
}
