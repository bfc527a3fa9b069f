//! The `recommande` command.

fn main() -> std::process::ExitCode {
    recommande::cli::main()
}
