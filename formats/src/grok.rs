//! `regex` and `grok` patterns. (Being written.)

use std::sync::Arc;

use crate::builder::RowsBuilder;
use crate::error::{FormatError, Result};
use crate::LineParser;

/// A compiled regex or grok pattern.
#[derive(Debug)]
pub struct Pattern {
    re: regex::bytes::Regex,
}

impl Pattern {
    /// Compiles `src`, a grok pattern when `grok`, else a plain regex.
    pub fn compile(src: &str, _grok: bool) -> Result<Pattern> {
        let re = regex::bytes::Regex::new(src)
            .map_err(|e| FormatError::InvalidOption(format!("pattern: {e}")))?;
        Ok(Pattern { re })
    }

    /// Whether the pattern matches `line` (anywhere; anchor with `^` to match the start).
    pub fn is_match(&self, line: &[u8]) -> bool {
        self.re.is_match(line)
    }
}

/// The regex / grok parser.
pub struct GrokParser {
    _pattern: Arc<Pattern>,
}

impl GrokParser {
    /// A parser for a compiled pattern.
    pub fn new(pattern: Arc<Pattern>) -> Self {
        GrokParser { _pattern: pattern }
    }
}

impl LineParser for GrokParser {
    fn parse_line(
        &mut self,
        _line: &[u8],
        _base: usize,
        _rows: &mut RowsBuilder,
    ) -> Result<(), String> {
        Err("grok: not yet implemented".into())
    }
}
