//! Access logs, `combined` and `common`, with default options: every invariant of
//! `parse_and_check`, the row oracle (each accepted line's fields, re-read by an independent
//! tokenizer, are its row; timestamps agree with chrono), and chunking independence.
#![no_main]

use compactor_formats::{Format, ParseOptions};
use compactor_fuzz::{check_access_rows, check_split, parse_and_check};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for (format, combined) in [(Format::Combined, true), (Format::Common, false)] {
        let opts = ParseOptions::new(format);
        let checked = parse_and_check(&opts, data, 1);
        check_access_rows(&opts, combined, &checked);
        check_split(&opts, data, &checked.parsed);
    }
});
