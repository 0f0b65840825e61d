//! Columnar kernels for compactor: the memory budget, spill files, and the operators built on
//! them: the external sort + dedup and the hash aggregation into mergeable states.
//!
//! Everything here works on Arrow arrays and knows nothing of files, formats or Delta. The
//! operators reserve the memory they hold from one [`memory::MemoryPool`] before they hold it;
//! when the budget is full, [`sort::ExternalSort`] writes a sorted run to disk
//! ([`spill::SpillManager`]) instead of failing, so a run's memory stays bounded whatever its
//! input size. [`EngineError::ResourcesExhausted`] is left for budgets too small for even one
//! batch's work.

pub mod aggregate;
pub mod kernels;
pub mod memory;
pub mod sort;
pub mod spill;

pub use aggregate::{
    AggFunc, AggSpec, AggregateOptions, AggregateStats, AggregateStream, HashAggregate,
};
pub use memory::{MemoryPool, MemoryReservation};
pub use sort::{DedupMode, ExternalSort, SortOptions, SortStats, SortedStream};
pub use spill::{SpillConfig, SpillManager};

/// Errors of the engine crate, kept apart by cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The memory budget is too small for the work asked.
    #[error("memory budget exhausted: {consumer} needs {requested} more bytes, {used} of {limit} in use (raise --memory)")]
    ResourcesExhausted {
        /// Who asked.
        consumer: String,
        /// Bytes asked for.
        requested: usize,
        /// Bytes in use when asked.
        used: usize,
        /// The pool's limit.
        limit: usize,
    },
    /// The caller asked for something that does not make sense (an unknown sort column, say).
    #[error("invalid plan: {0}")]
    Plan(String),
    /// Spill files reached their cap (`max_spill_bytes`) or filled the disk.
    #[error("spill space exhausted: {0}")]
    SpillFull(String),
    /// Reading or writing a spill file failed.
    #[error("spill I/O: {0}")]
    Io(String),
    /// Input data that cannot be what it claims: corrupt sketch bytes in aggregate states, an
    /// integer sum past the range of Int64.
    #[error("invalid data: {0}")]
    InvalidData(String),
    /// An Arrow kernel failed: a bug or an unsupported type.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// Result alias of the engine crate.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
