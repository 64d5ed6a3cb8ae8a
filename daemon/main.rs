//! The `kithd` binary: parses arguments and hands over to `kithd::cli::run`.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(kithd::cli::run(std::env::args_os()))
}
