//! The record splitter (`Framing`): one-line, multi-line (`record_start`) and quoted (CSV)
//! records. The first bytes pick the framing, the chunk probe and the search limit. Checks
//! that records cover the input exactly, in order, line counts adding up; that cutting at
//! `boundary()` keeps the memory bound and gives the whole input's records; and that parsing
//! the pieces gives the same lines, records, rows and rejects as parsing the whole.
#![no_main]

use std::sync::Arc;

use compactor_formats::framing::Framing;
use compactor_formats::grok::Pattern;
use compactor_formats::{Format, ParseOptions};
use compactor_fuzz::check_framing;
use compactor_fuzz::framing::check_chunked_parse;
use libfuzzer_sys::fuzz_target;

const STARTS: [&str; 3] = [r"^\d{4}-", r"^\S", r"^\[?[A-Z]"];

fuzz_target!(|input: &[u8]| {
    let [kind, probe, limit, data @ ..] = input else {
        return;
    };
    let probe = usize::from(*probe);
    let limit = usize::from(*limit);
    let (framing, mut opts) = match kind % 6 {
        0 => (Framing::Lines, ParseOptions::new(Format::Text)),
        k @ 1..=3 => {
            let src = STARTS[usize::from(k) - 1];
            let Ok(p) = Pattern::compile(src, true) else {
                panic!("built-in start pattern {src:?} does not compile");
            };
            let mut o = ParseOptions::new(Format::Text);
            o.record_start = Some(src.to_string());
            (Framing::MultiLine(Arc::new(p)), o)
        }
        4 => {
            let o = ParseOptions::new(Format::Csv);
            (o.framing(), o)
        }
        _ => {
            let mut o = ParseOptions::new(Format::Csv);
            o.delimited.escape = Some('\\');
            (o.framing(), o)
        }
    };
    check_framing(&framing, data, probe, limit);
    if kind & 0x80 != 0 {
        opts.limits.max_line_bytes = 32;
    }
    let opts = match opts.format {
        Some(Format::Csv) => match opts.for_file(data) {
            Ok((o, _)) => o,
            Err(_) => return,
        },
        _ => {
            if opts.prepare().is_err() {
                return;
            }
            opts
        }
    };
    check_chunked_parse(&opts, data, probe);
});
