//! `modori-coordinator`: the centre (see `cli`).

fn main() -> std::process::ExitCode {
    modori_coordinator::cli::main()
}
