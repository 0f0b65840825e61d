//! JSON lines with default options: every invariant of `parse_and_check`, the row oracle
//! (each accepted line is a JSON object whose flattened fields are exactly its row), and
//! chunking independence (split in two, the same lines are rejected for the same reasons).
#![no_main]

use compactor_formats::{Format, ParseOptions};
use compactor_fuzz::{check_json_rows, check_split, parse_and_check};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = ParseOptions::new(Format::Json);
    let checked = parse_and_check(&opts, data, 1);
    check_json_rows(&opts, &checked);
    check_split(&opts, data, &checked.parsed);
});
