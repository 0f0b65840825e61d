//! Any format with options drawn from the input's first bytes: small `max_line_bytes`,
//! `max_depth` and `max_columns`, forced column types, named extra columns, a large first line
//! number. Checks every invariant of `parse_and_check` (limits included) and the row oracles
//! for the columns that are not forced.
//!
//! Input layout: `[format, max_line, max_depth, max_columns, first_line, n_forced,
//! (name|type)*, n_extra, name*, data...]`; missing bytes read as 0.
#![no_main]

use compactor_formats::schema::sanitize_name;
use compactor_formats::{ColumnType, Format, Limits, ParseOptions};
use compactor_fuzz::{check_access_rows, check_json_rows, parse_and_check};
use libfuzzer_sys::fuzz_target;

/// Column names the options may force or use for extras: plain, case variants, dotted
/// (flattened JSON), access-log columns, names that need sanitizing, empty.
const NAMES: [&str; 16] = [
    "a", "A", "b", "a.b", "ts", "TS", "ip", "status", "bytes", "path", "user", "extra_1",
    "extra_2", "x y", "_", "",
];

struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn next(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let mut b = Bytes(input);
    let (format, combined) = match b.next() % 3 {
        0 => (Format::Json, false),
        1 => (Format::Combined, true),
        _ => (Format::Common, false),
    };
    let mut opts = ParseOptions::new(format);
    let max_line = b.next();
    opts.limits = Limits {
        max_line_bytes: if max_line == 255 {
            compactor_formats::DEFAULT_MAX_LINE_BYTES
        } else {
            usize::from(max_line) + 1
        },
        max_depth: usize::from(b.next() % 8) + 1,
        max_columns: usize::from(b.next() % 16) + 1,
    };
    let first_line = 1 + (u64::from(b.next()) << 40);
    for _ in 0..b.next() % 4 {
        let x = b.next();
        let name = NAMES[usize::from(x) % NAMES.len()];
        let t = ColumnType::NAMES[usize::from(x >> 4) % ColumnType::NAMES.len()].1;
        // One entry per column: entries naming the same column (after case folding and
        // sanitizing, `""` and `"_"`) would be ambiguous; job files reject them.
        let folded = |n: &str| sanitize_name(n).to_ascii_lowercase();
        if !opts.forced.keys().any(|k| folded(k) == folded(name)) {
            opts.forced.insert(name.to_string(), t);
        }
    }
    for _ in 0..b.next() % 4 {
        let x = b.next();
        opts.extra_columns
            .push(NAMES[usize::from(x) % NAMES.len()].to_string());
    }
    let data = b.0;
    let checked = parse_and_check(&opts, data, first_line);
    match format {
        Format::Json => check_json_rows(&opts, &checked),
        _ => check_access_rows(&opts, combined, &checked),
    }
});
