//! The compactor application: job files, input handling, the run pipeline, Parquet segments and
//! the Delta table. The `compactor` binary is a thin wrapper around [`cli::main`]; the library
//! target exists so that integration tests (and the root package's test CLI) can drive runs
//! in-process. This is the application layer: it uses `anyhow`, unlike the library crates.

pub mod bench;
pub mod cli;
pub mod compact;
pub mod input;
pub mod inspect;
pub mod job;
pub mod layout;
pub mod pending;
pub mod progress;
pub mod quarantine;
pub mod rollup;
pub mod run;
pub mod segment;
pub mod sortkey;
pub mod table;
pub mod tabledup;
pub mod vacuum;
pub mod verify;
