//! `regex` and `grok` patterns. The first byte picks a built-in pattern (grok or regex), or
//! makes the input's first line the pattern (a user pattern: compile errors are fine, panics
//! are not), and maybe a multi-line `record_start`. Checks every invariant of
//! `parse_and_check` (records spanning lines under `record_start`) and chunking independence.
#![no_main]

use compactor_formats::{Format, ParseOptions};
use compactor_fuzz::{check_split, parse_and_check};
use libfuzzer_sys::fuzz_target;

/// (grok?, pattern)
const PATTERNS: [(bool, &str); 7] = [
    (true, "%{IP:client} %{WORD:method} %{URIPATHPARAM:request} %{NUMBER:bytes} %{NUMBER:duration}"),
    (true, "%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} %{GREEDYDATA:message}"),
    (true, "%{SYSLOGTIMESTAMP:ts} %{HOSTNAME:host} %{DATA:program}(?:\\[%{POSINT:pid}\\])?: %{GREEDYDATA:message}"),
    (true, "%{INT:n:int} %{NUMBER:x:float} %{WORD:w}"),
    (false, r"^(?P<ts>\S+) (?P<level>[A-Z]+) (?P<msg>.*)$"),
    (false, r"(?P<key>\w+)=(?P<value>\d+)"),
    (false, r"^(?P<a>[^,]*),(?P<b>[^,]*)(?:,(?P<c>.*))?$"),
];

const STARTS: [&str; 3] = [r"^\d{4}-\d{2}-\d{2}", "^%{TIMESTAMP_ISO8601}", r"^\S"];

fuzz_target!(|input: &[u8]| {
    let Some((&ctl, mut data)) = input.split_first() else {
        return;
    };
    let (grok, pattern) = if usize::from(ctl & 7) < PATTERNS.len() {
        let (g, p) = PATTERNS[usize::from(ctl & 7)];
        (g, p.to_string())
    } else {
        // A user pattern: the first line.
        let end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
        let Ok(p) = std::str::from_utf8(&data[..end]) else {
            return;
        };
        let p = p.to_string();
        data = data.get(end + 1..).unwrap_or(&[]);
        (ctl & 8 != 0, p)
    };
    let mut opts = ParseOptions::new(if grok { Format::Grok } else { Format::Regex });
    opts.pattern = Some(pattern);
    if ctl & 0x30 != 0 {
        opts.record_start = Some(STARTS[usize::from(ctl >> 4 & 3) - 1].to_string());
    }
    if ctl & 0x40 != 0 {
        opts.limits.max_line_bytes = 80;
    }
    if opts.prepare().is_err() {
        return;
    }
    let checked = parse_and_check(&opts, data, 1);
    check_split(&opts, data, &checked.parsed);
});
