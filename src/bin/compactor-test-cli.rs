//! The `compactor` command line, built inside the root package so that integration tests can
//! run it as a separate process (`CARGO_BIN_EXE_compactor-test-cli`), for example to crash it
//! at a fail point. Identical to the `compactor` binary.

fn main() -> std::process::ExitCode {
    compactor::cli::main()
}
