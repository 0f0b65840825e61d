//! CSV and TSV, with header lines, Zeek and W3C headers. (Being written.)

use crate::builder::RowsBuilder;
use crate::error::Result;
use crate::{LineParser, ParseOptions};

/// `csv` / `tsv` options (`[input.delimited]` in a job file).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelimitedOptions {
    /// Field delimiter; default `,` for csv and tab for tsv.
    pub delimiter: Option<char>,
    /// Column names when the input has no header line; empty: the first line is the header.
    #[serde(default)]
    pub columns: Vec<String>,
}

/// A file's header: column names (and types where the header says them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Column names, in order.
    pub names: Vec<String>,
}

/// Reads the header of a `csv`, `tsv` or `cloudfront` file from its first bytes; `None` for
/// other formats.
pub fn read_header(_opts: &ParseOptions, _head: &[u8]) -> Result<Option<Header>> {
    Ok(None)
}

/// The delimited-values parser.
pub struct DelimitedParser;

impl DelimitedParser {
    /// A parser for these options.
    pub fn new(_opts: &ParseOptions) -> Result<Self> {
        Ok(DelimitedParser)
    }
}

impl LineParser for DelimitedParser {
    fn parse_line(
        &mut self,
        _line: &[u8],
        _base: usize,
        _rows: &mut RowsBuilder,
    ) -> Result<(), String> {
        Err("csv: not yet implemented".into())
    }
}
