//! Small deterministic generators for the text formats beyond JSON and access logs, for
//! parser benchmarks and property tests. Each function returns `lines` newline-terminated
//! lines generated from `seed`; the same arguments always give the same bytes.

pub mod aws;
pub mod delimited;
pub mod logfmt;
pub mod syslog;
pub mod textlogs;
