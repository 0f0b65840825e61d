//! AWS access logs: CloudFront, ALB, classic ELB, S3. (Being written.)

use crate::builder::RowsBuilder;
use crate::error::Result;
use crate::{LineParser, ParseOptions};

/// The AWS access-log parser.
pub struct AwsParser;

impl AwsParser {
    /// A parser for these options.
    pub fn new(_opts: &ParseOptions) -> Result<Self> {
        Ok(AwsParser)
    }
}

impl LineParser for AwsParser {
    fn parse_line(
        &mut self,
        _line: &[u8],
        _base: usize,
        _rows: &mut RowsBuilder,
    ) -> Result<(), String> {
        Err("aws: not yet implemented".into())
    }
}
