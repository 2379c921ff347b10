//! `modori-demo`: the coordinator and nine real agents on loopback, with simulated returns
//! flowing through them.

fn main() -> std::process::ExitCode {
    modori_demo::cli::main()
}
