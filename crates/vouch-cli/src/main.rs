//! The `vouch` binary; everything lives in the `vouch_cli` library.

fn main() -> std::process::ExitCode {
    vouch_cli::main()
}
