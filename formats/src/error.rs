//! The error type of the formats crate.

/// Errors of the formats crate. Bad *lines* are not errors: they become [`crate::Reject`]s.
/// These are bad options, internal bugs, or input that breaks a whole chunk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// An option or a job's `[schema]` entry is invalid.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// Two schemas cannot be brought together.
    #[error("schema conflict: {0}")]
    SchemaConflict(String),
    /// Arrow rejected an array we built: a bug in this crate.
    #[error("internal error building arrow data: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// Result alias of the formats crate.
pub type Result<T, E = FormatError> = std::result::Result<T, E>;
