//! Regression corpus: every file under `fuzz/seeds/` (hand-written tricky inputs and inputs the
//! fuzzers once broke the parsers with) goes through every parser on each `cargo test`, with the
//! same accounting invariants the fuzz targets assert; and each target's seeds are replayed the
//! way that target reads them (control bytes choosing the options, `for_file` for header-driven
//! formats, the record splitter, the decompressor).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use compactor_formats::decode::{Compression, DecodeError, Decoder};
use compactor_formats::framing::Framing;
use compactor_formats::grok::Pattern;
use compactor_formats::{count_lines, parse_chunk, Format, ParseOptions};

/// Parses `bytes` with `opts` and checks the accounting: lines, records, rows, rejects and
/// metadata lines add up; rejects are in order, within the chunk, with a reason and a raw
/// prefix within `max_line_bytes`.
fn check_opts(name: &str, bytes: &[u8], opts: &ParseOptions) {
    let what = format!("{name} as {:?}", opts.format);
    let p = parse_chunk(opts, bytes, 1).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(p.lines, count_lines(bytes), "{what}");
    assert_eq!(
        p.batch.num_rows() as u64 + p.rejects.len() as u64,
        p.records,
        "{what}: rows + rejects != records"
    );
    assert!(
        p.records + p.meta_lines <= p.lines,
        "{what}: records {} + meta {} > lines {}",
        p.records,
        p.meta_lines,
        p.lines
    );
    let mut last = 0;
    for r in &p.rejects {
        assert!(
            r.line > last && r.line <= p.lines,
            "{what}: reject line {}",
            r.line
        );
        assert!(r.raw.len() <= opts.limits.max_line_bytes, "{what}");
        assert!(!r.reason.is_empty(), "{what}");
        last = r.line;
    }
}

fn check(name: &str, bytes: &[u8], format: Format) {
    check_opts(name, bytes, &ParseOptions::new(format));
}

/// Every seed file, as (target directory, display name, bytes).
fn seeds() -> Vec<(String, String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|d| d.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|f| f.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let name = f.strip_prefix(&root).unwrap().display().to_string();
            out.push((target.clone(), name, std::fs::read(&f).unwrap()));
        }
    }
    out
}

#[test]
fn every_seed_parses_with_accounting_intact() {
    let seeds = seeds();
    for (_, name, bytes) in &seeds {
        for (_, format) in Format::ALL {
            match format {
                Format::Regex | Format::Grok => continue, // need a pattern: see parse_grok
                Format::Auto => {}
                _ => check(name, bytes, format),
            }
            // as the driver reads a file: header and `auto` resolved on its first bytes
            if let Ok((opts, _)) = ParseOptions::new(format).for_file(bytes) {
                check_opts(name, bytes, &opts);
            }
        }
    }
    assert!(
        seeds.len() >= 40,
        "expected the seed corpus under fuzz/seeds, found {} files",
        seeds.len()
    );
}

/// `parse_csv`: `[ctl, data...]`, ctl bit 0 tsv, bits 1-2 delimiter, bit 3 explicit columns,
/// bit 4 a short `max_line_bytes`.
fn replay_csv(name: &str, input: &[u8]) {
    let Some((&ctl, data)) = input.split_first() else {
        return;
    };
    let mut opts = ParseOptions::new(if ctl & 1 == 0 {
        Format::Csv
    } else {
        Format::Tsv
    });
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
    if let Ok((opts, _)) = opts.for_file(data) {
        check_opts(name, data, &opts);
    }
}

/// `parse_aws`: `[ctl, data...]`, ctl picking cloudfront, alb, elb or s3.
fn replay_aws(name: &str, input: &[u8]) {
    let Some((&ctl, data)) = input.split_first() else {
        return;
    };
    let f = [Format::Cloudfront, Format::Alb, Format::Elb, Format::S3][usize::from(ctl) % 4];
    if let Ok((opts, _)) = ParseOptions::new(f).for_file(data) {
        check_opts(name, data, &opts);
    }
}

/// `parse_grok`: `[ctl, data...]`; ctl & 7 < 7 a built-in pattern, else the first line is the
/// pattern (grok if ctl & 8); ctl bits 4-5 a `record_start`; bit 6 a short line limit.
fn replay_grok(name: &str, input: &[u8]) {
    const PATTERNS: [(bool, &str); 7] = [
        (
            true,
            "%{IP:client} %{WORD:method} %{URIPATHPARAM:request} %{NUMBER:bytes} %{NUMBER:duration}",
        ),
        (true, "%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} %{GREEDYDATA:message}"),
        (
            true,
            "%{SYSLOGTIMESTAMP:ts} %{HOSTNAME:host} %{DATA:program}(?:\\[%{POSINT:pid}\\])?: %{GREEDYDATA:message}",
        ),
        (true, "%{INT:n:int} %{NUMBER:x:float} %{WORD:w}"),
        (false, r"^(?P<ts>\S+) (?P<level>[A-Z]+) (?P<msg>.*)$"),
        (false, r"(?P<key>\w+)=(?P<value>\d+)"),
        (false, r"^(?P<a>[^,]*),(?P<b>[^,]*)(?:,(?P<c>.*))?$"),
    ];
    const STARTS: [&str; 3] = [r"^\d{4}-\d{2}-\d{2}", "^%{TIMESTAMP_ISO8601}", r"^\S"];
    let Some((&ctl, mut data)) = input.split_first() else {
        return;
    };
    let (grok, pattern) = match PATTERNS.get(usize::from(ctl & 7)) {
        Some((g, p)) => (*g, p.to_string()),
        None => {
            let end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
            let Ok(p) = std::str::from_utf8(&data[..end]) else {
                return;
            };
            let p = p.to_string();
            data = data.get(end + 1..).unwrap_or(&[]);
            (ctl & 8 != 0, p)
        }
    };
    let mut opts = ParseOptions::new(if grok { Format::Grok } else { Format::Regex });
    opts.pattern = Some(pattern);
    if ctl & 0x30 != 0 {
        opts.record_start = Some(STARTS[usize::from(ctl >> 4 & 3) - 1].to_string());
    }
    if ctl & 0x40 != 0 {
        opts.limits.max_line_bytes = 80;
    }
    if opts.prepare().is_ok() {
        check_opts(name, data, &opts);
    }
}

/// `split_records`: `[kind, probe, limit, data...]`: the records cover the input exactly and
/// in order, and cutting at `boundary()` (unbounded search) gives the same records.
fn replay_split(name: &str, input: &[u8]) {
    let [kind, probe, _, data @ ..] = input else {
        return;
    };
    let starts = [r"^\d{4}-", r"^\S", r"^\[?[A-Z]"];
    let framing = match kind % 6 {
        0 => Framing::Lines,
        k @ 1..=3 => Framing::MultiLine(Arc::new(
            Pattern::compile(starts[usize::from(k) - 1], true).unwrap(),
        )),
        4 => ParseOptions::new(Format::Csv).framing(),
        _ => {
            let mut o = ParseOptions::new(Format::Csv);
            o.delimited.escape = Some('\\');
            o.framing()
        }
    };
    let records = |d: &[u8], base: usize| {
        let mut v = Vec::new();
        framing.for_each_record(d, |s, r, n| v.push((base + s, r.to_vec(), n)));
        v
    };
    let whole = records(data, 0);
    let mut at = 0;
    for (s, r, _) in &whole {
        assert_eq!(*s, at, "{name}: records do not cover the input");
        at = s + r.len();
        at += match &data[at..] {
            [b'\r', b'\n', ..] => 2,
            [b'\n', ..] | [b'\r'] => 1,
            _ => 0,
        };
    }
    assert_eq!(at, data.len(), "{name}: records do not reach the end");
    assert_eq!(
        whole.iter().map(|r| r.2).sum::<u64>(),
        count_lines(data),
        "{name}"
    );
    let (mut pos, mut cut) = (0, Vec::new());
    while pos < data.len() {
        let end = framing
            .boundary(&data[pos..], usize::from(*probe), usize::MAX)
            .unwrap_or(data.len() - pos);
        assert!(end > 0, "{name}: empty piece");
        cut.extend(records(&data[pos..pos + end], pos));
        pos += end;
    }
    assert_eq!(cut, whole, "{name}: cutting at boundaries split a record");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Decodes `input` capped at `cap`: the output and the error.
fn decode(input: &[u8], cap: u64) -> (Vec<u8>, Option<DecodeError>) {
    let mut d = Decoder::new(input, cap).unwrap();
    let mut out = Vec::new();
    match d.read_to_end(&mut out) {
        Ok(_) => (out, None),
        Err(e) => (
            out,
            Some(DecodeError::try_from_io(e).expect("a DecodeError")),
        ),
    }
}

/// `decode`: `[ctl, ctl, data...]`: arbitrary bytes decode within a cap; the data round-trips
/// through gzip and zstd; a truncated stream decodes to a prefix, then fails.
fn replay_decode(name: &str, input: &[u8]) {
    let [a, b, data @ ..] = input else {
        return;
    };
    let ctl = usize::from(u16::from_le_bytes([*a, *b]));
    for magic in [
        &[][..],
        &[0x1f, 0x8b, 8, 0][..],
        &[0x28, 0xb5, 0x2f, 0xfd][..],
    ] {
        let (out, _) = decode(&[magic, data].concat(), 1 << 16);
        assert!(out.len() <= 1 << 16, "{name}");
    }
    for (c, z) in [
        (Compression::Gzip, gzip(data)),
        (Compression::Zstd, zstd::encode_all(data, 3).unwrap()),
    ] {
        let (out, err) = decode(&z, data.len() as u64);
        assert!(
            err.is_none() && out == data,
            "{name}: {c} round trip: {err:?}"
        );
        let cut = ctl % z.len();
        if Compression::sniff(&z[..cut]) == c {
            let (out, err) = decode(&z[..cut], u64::MAX);
            assert!(data.starts_with(&out), "{name}: {c} cut at {cut}");
            assert!(err.is_some(), "{name}: {c} cut at {cut}: no error");
        }
    }
}

#[test]
fn every_target_replays_its_seeds() {
    let mut replayed = std::collections::BTreeMap::<String, usize>::new();
    for (target, name, bytes) in seeds() {
        let data = &bytes[..];
        match target.as_str() {
            "parse_json" => check(&name, data, Format::Json),
            "parse_json_projected" => {
                // the fuzz target's projection; every line the full parse accepts is kept
                let mut opts = ParseOptions::new(Format::Json);
                let wanted = ["a", "b.c", "ts"];
                opts.project = Some(std::sync::Arc::new(
                    compactor_formats::json::Projection::new(wanted),
                ));
                check_opts(&name, data, &opts);
                let full = parse_chunk(&ParseOptions::new(Format::Json), data, 1).unwrap();
                let projected = parse_chunk(&opts, data, 1).unwrap();
                let lines = |p: &compactor_formats::ParsedChunk| -> Vec<u64> {
                    p.rejects.iter().map(|r| r.line).collect()
                };
                let full_rejects = lines(&full);
                for l in lines(&projected) {
                    assert!(
                        full_rejects.contains(&l),
                        "{name}: line {l} rejected only when projected"
                    );
                }
            }
            "parse_access" => {
                check(&name, data, Format::Combined);
                check(&name, data, Format::Common);
            }
            "parse_chunk_lines" => {} // option bytes: every format above
            "parse_syslog" => {
                let mut opts = ParseOptions::new(Format::Syslog);
                opts.reference_micros = Some(1_718_409_600_000_000);
                check_opts(&name, data, &opts);
            }
            "parse_logfmt" => check(&name, data, Format::Logfmt),
            "parse_csv" => replay_csv(&name, data),
            "parse_aws" => replay_aws(&name, data),
            "parse_grok" => replay_grok(&name, data),
            "detect" => {
                let (opts, d) = ParseOptions::new(Format::Auto).for_file(data).unwrap();
                let d = d.expect("auto reports its detection");
                assert_ne!(d.format, Format::Auto, "{name}");
                assert!((0.0..=1.0).contains(&d.confidence), "{name}");
                check_opts(&name, data, &opts);
            }
            "split_records" => replay_split(&name, data),
            "decode" => replay_decode(&name, data),
            other => panic!("seeds for an unknown target {other:?}: add its replay here"),
        }
        *replayed.entry(target).or_default() += 1;
    }
    for t in [
        "parse_json",
        "parse_json_projected",
        "parse_access",
        "parse_chunk_lines",
        "parse_syslog",
        "parse_logfmt",
        "parse_csv",
        "parse_aws",
        "parse_grok",
        "detect",
        "split_records",
        "decode",
    ] {
        assert!(replayed.get(t).is_some_and(|&n| n > 0), "no seeds for {t}");
    }
}

#[test]
fn arena_rollback_regression() {
    // Found by fuzzing: a blank or overlong line after an escaped string used to roll back the
    // previous row's unescaped text (silent corruption or a panic).
    let p = parse_chunk(
        &ParseOptions::new(Format::Json),
        b"{\"a\":\"\\u0041\"}\n\n{\"a\":\"\\u0042\"}\n",
        1,
    )
    .unwrap();
    let a = p
        .batch
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    assert_eq!((a.value(0), a.value(1)), ("A", "B"));
    assert_eq!(p.rejects.len(), 1);
}
