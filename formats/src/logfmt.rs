//! logfmt. (Being written.)

use crate::builder::RowsBuilder;
use crate::{LineParser, ParseOptions};

/// The logfmt parser.
pub struct LogfmtParser;

impl LogfmtParser {
    /// A parser for these options.
    pub fn new(_opts: &ParseOptions) -> Self {
        LogfmtParser
    }
}

impl LineParser for LogfmtParser {
    fn parse_line(
        &mut self,
        _line: &[u8],
        _base: usize,
        _rows: &mut RowsBuilder,
    ) -> Result<(), String> {
        Err("logfmt: not yet implemented".into())
    }
}
