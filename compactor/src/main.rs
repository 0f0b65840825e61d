//! `compactor`: raw logs in, a sorted, deduplicated, zstd Parquet Delta table out.
//! See `cli.rs` for the commands and exit codes.

fn main() -> std::process::ExitCode {
    compactor::cli::main()
}
