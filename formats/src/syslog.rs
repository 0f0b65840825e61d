//! Syslog: RFC 3164 and RFC 5424. (Being written.)

use crate::builder::RowsBuilder;
use crate::{LineParser, ParseOptions};

/// The syslog parser.
pub struct SyslogParser {
    _reference_micros: Option<i64>,
}

impl SyslogParser {
    /// A parser for these options.
    pub fn new(opts: &ParseOptions) -> Self {
        SyslogParser {
            _reference_micros: opts.reference_micros,
        }
    }
}

impl LineParser for SyslogParser {
    fn parse_line(
        &mut self,
        _line: &[u8],
        _base: usize,
        _rows: &mut RowsBuilder,
    ) -> Result<(), String> {
        Err("syslog: not yet implemented".into())
    }
}
