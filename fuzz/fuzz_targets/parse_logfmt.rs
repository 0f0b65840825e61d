//! logfmt (`key=value key="quoted value"`): every invariant of `parse_and_check` and chunking
//! independence.
#![no_main]

use compactor_formats::{Format, ParseOptions};
use compactor_fuzz::{check_split, parse_and_check};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = ParseOptions::new(Format::Logfmt);
    let checked = parse_and_check(&opts, data, 1);
    check_split(&opts, data, &checked.parsed);
});
