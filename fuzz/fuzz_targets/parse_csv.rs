//! CSV and TSV as the real driver reads a file: `ParseOptions::new(f).for_file(data)` (header
//! line, Zeek `#fields` and W3C `#Fields:` headers), then `parse_chunk`. The first byte picks
//! csv or tsv, an explicit delimiter, and explicit column names (no header line).
//! Checks every invariant of `parse_and_check` (records framed by quotes for csv, metadata
//! lines counted) and chunking independence (cut at a record boundary, as the chunker cuts).
#![no_main]

use compactor_formats::{Format, ParseOptions};
use compactor_fuzz::{check_split, parse_and_check};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&ctl, data)) = input.split_first() else {
        return;
    };
    let format = if ctl & 1 == 0 {
        Format::Csv
    } else {
        Format::Tsv
    };
    let mut opts = ParseOptions::new(format);
    match (ctl >> 1) & 3 {
        1 => opts.delimited.delimiter = Some(';'),
        2 => opts.delimited.delimiter = Some('|'),
        _ => {}
    }
    if ctl & 8 != 0 {
        opts.delimited.columns = vec!["a".into(), "b".into(), "ts".into()];
    }
    if ctl & 16 != 0 {
        opts.limits.max_line_bytes = 64;
    }
    // A header the options cannot use is a configuration error of the file, not a panic.
    let Ok((opts, _)) = opts.for_file(data) else {
        return;
    };
    let checked = parse_and_check(&opts, data, 1);
    check_split(&opts, data, &checked.parsed);
});
