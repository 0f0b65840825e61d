//! Syslog (RFC 3164 and 5424, octet-counted framing too) with a fixed reference instant for
//! the year of RFC 3164 timestamps: every invariant of `parse_and_check` and chunking
//! independence (the same rejects when cut in two at a record boundary).
#![no_main]

use compactor_formats::{Format, ParseOptions};
use compactor_fuzz::{check_split, parse_and_check};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut opts = ParseOptions::new(Format::Syslog);
    // 2024-06-15T00:00:00Z: deterministic, never the clock
    opts.reference_micros = Some(1_718_409_600_000_000);
    let checked = parse_and_check(&opts, data, 1);
    check_split(&opts, data, &checked.parsed);
});
