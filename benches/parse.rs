//! Parser throughput: `parse_chunk` on one pipeline-sized chunk (8 MiB) of generated input.
//!
//! Run: `cargo bench --bench parse -- --noplot`. Under `cargo test --benches` (no `--bench`
//! flag) criterion runs each benchmark once, and the chunk shrinks to 256 KiB so that the
//! unoptimised test build stays fast.
//!
//! Formats (every parser, on generated data of its format; `compactor_bench_data`):
//! - `json`: generated click / playback events (nested objects, arrays, escapes, timestamps).
//! - `combined`: generated nginx combined log with a trailing `$request_time`.
//! - `common`: the same lines cut after the `bytes` field (the generator has no common mode).
//! - `syslog_3164`, `syslog_5424`, `logfmt`, `csv`, `tsv_zeek`, `cloudfront`, `alb`, `elb`,
//!   `s3`: `compactor_bench_data::samples`.
//! - `grok_log4j` (the built-in `LOG4J` layout, multi-line stack traces), `regex_log4j` (a
//!   plain regex with named captures over the same records), `text_log4j` (whole records).
//! - `detect`: `auto` detection on a 256 KiB head of the access log (per file, not per byte).
//!
//! Throughput is bytes per second on one core (one chunk, one thread).

use compactor_bench_data::{generate_to_vec, GenConfig, GenFormat};
use compactor_formats::{parse_chunk, Format, ParseOptions};
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// The chunk size the pipeline uses (`compactor::job::DEFAULT_CHUNK_BYTES`).
const CHUNK_BYTES: usize = compactor::job::DEFAULT_CHUNK_BYTES;
const TEST_MODE_CHUNK_BYTES: usize = 256 << 10;

/// True under `cargo bench` (cargo passes `--bench`), false under `cargo test --benches`.
fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Whole lines of generated `format`, at most `target` bytes (and close to it).
fn generate_bytes(format: GenFormat, target: usize, seed: u64) -> Vec<u8> {
    let (sample, stats) = generate_to_vec(&GenConfig::new(format, 2_000, seed)).unwrap();
    let per_line = (stats.bytes as f64 / stats.lines as f64).max(1.0);
    let lines = (target as f64 / per_line * 1.05) as u64 + 16;
    drop(sample);
    let (mut data, _) = generate_to_vec(&GenConfig::new(format, lines, seed)).unwrap();
    if data.len() > target {
        let cut = data[..target]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        data.truncate(cut);
    }
    data
}

/// Cuts each combined line after its `bytes` field: `ip ident user [ts] "request" status bytes`.
fn combined_to_common(combined: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(combined.len());
    for line in combined.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        out.extend_from_slice(common_prefix(line).unwrap_or(line));
        out.push(b'\n');
    }
    out
}

fn common_prefix(line: &[u8]) -> Option<&[u8]> {
    let open = line.windows(3).position(|w| w == b"] \"")? + 3;
    let mut i = open;
    while i < line.len() && line[i] != b'"' {
        i += if line[i] == b'\\' { 2 } else { 1 };
    }
    // after the request: " status bytes"
    let mut end = i + 1;
    for _ in 0..2 {
        while line.get(end) == Some(&b' ') {
            end += 1;
        }
        while end < line.len() && line[end] != b' ' {
            end += 1;
        }
    }
    Some(&line[..end.min(line.len())])
}

fn bench_parse(c: &mut Criterion) {
    let target = if bench_mode() {
        CHUNK_BYTES
    } else {
        TEST_MODE_CHUNK_BYTES
    };
    let json = generate_bytes(GenFormat::Json, target, 1);
    let combined = generate_bytes(GenFormat::Combined, target, 2);
    // the common lines are shorter; cut from a larger combined sample to fill the chunk
    let common = {
        let mut c = combined_to_common(&generate_bytes(GenFormat::Combined, target * 2, 3));
        let cut = c[..target.min(c.len())]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        c.truncate(cut);
        c
    };

    // The other formats: scale a small sample's bytes per line to the chunk size.
    let sized = |make: &dyn Fn(u64) -> Vec<u8>| {
        let per_line = make(1000).len() as f64 / 1000.0;
        let mut data = make((target as f64 / per_line * 1.02) as u64 + 16);
        if data.len() > target {
            let cut = data[..target]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(data.len(), |i| i + 1);
            data.truncate(cut);
        }
        data
    };
    use compactor_bench_data::samples::{aws, delimited, logfmt, syslog, textlogs};
    let syslog_3164 = sized(&|n| syslog::syslog_3164(4, n as usize));
    let syslog_5424 = sized(&|n| syslog::syslog_5424(5, n as usize));
    let logfmt = sized(&|n| logfmt::logfmt(6, n as usize));
    let csv = sized(&|n| delimited::csv(7, n));
    let zeek = sized(&|n| delimited::zeek(8, n));
    let cloudfront = sized(&|n| aws::cloudfront(9, n));
    let alb = sized(&|n| aws::alb(10, n));
    let elb = sized(&|n| aws::elb(11, n));
    let s3 = sized(&|n| aws::s3(12, n));
    // Records, not lines: stack traces stay whole, so cut at a record start.
    let log4j = {
        let mut d = sized(&|n| textlogs::log4j(13, n as usize));
        let start = regex::bytes::Regex::new(r"\n\d{4}-\d\d-\d\d ").unwrap();
        if let Some(m) = start.find_iter(&d).last() {
            d.truncate(m.start() + 1);
        }
        d
    };
    let with = |format: Format, pattern: Option<&str>, record_start: Option<&str>| {
        let mut o = ParseOptions::new(format);
        o.pattern = pattern.map(str::to_string);
        o.record_start = record_start.map(str::to_string);
        o.prepare().unwrap();
        o
    };
    let log4j_start = Some(r"^\d{4}-\d\d-\d\d ");
    let regex = r"(?s)^(?P<ts>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[.,]\d+) +(?:\[(?P<thread>[^\]]*)\] +)?(?P<level>[A-Z]+) +(?:(?P<logger>[\w.$]+) *[:-] +)?(?P<message>.*)$";
    let cases: Vec<(&str, ParseOptions, &Vec<u8>)> = vec![
        ("json", ParseOptions::new(Format::Json), &json),
        // the six fields of the rollup bench (benches/rollup.sh), the others skipped
        (
            "json_projected",
            {
                let mut o = ParseOptions::new(Format::Json);
                o.project = Some(std::sync::Arc::new(
                    compactor_formats::json::Projection::new([
                        "ts",
                        "event",
                        "country",
                        "device.os",
                        "user_id",
                        "playback.bitrate_kbps",
                    ]),
                ));
                o
            },
            &json,
        ),
        ("combined", ParseOptions::new(Format::Combined), &combined),
        ("common", ParseOptions::new(Format::Common), &common),
        (
            "syslog_3164",
            ParseOptions::new(Format::Syslog),
            &syslog_3164,
        ),
        (
            "syslog_5424",
            ParseOptions::new(Format::Syslog),
            &syslog_5424,
        ),
        ("logfmt", ParseOptions::new(Format::Logfmt), &logfmt),
        ("csv", ParseOptions::new(Format::Csv), &csv),
        ("tsv_zeek", ParseOptions::new(Format::Tsv), &zeek),
        (
            "cloudfront",
            ParseOptions::new(Format::Cloudfront),
            &cloudfront,
        ),
        ("alb", ParseOptions::new(Format::Alb), &alb),
        ("elb", ParseOptions::new(Format::Elb), &elb),
        ("s3", ParseOptions::new(Format::S3), &s3),
        (
            "grok_log4j",
            with(Format::Grok, Some("%{LOG4J}"), None),
            &log4j,
        ),
        (
            "regex_log4j",
            with(Format::Regex, Some(regex), log4j_start),
            &log4j,
        ),
        ("text_log4j", with(Format::Text, None, log4j_start), &log4j),
    ];

    let mut group = c.benchmark_group("parse_chunk");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    for (name, opts, data) in cases {
        // Headers (csv, Zeek, W3C) are read per file, as the driver does.
        let (opts, _) = opts.for_file(data).unwrap();
        // sanity: the generated data parses, and nothing is silently dropped
        let parsed = parse_chunk(&opts, data, 1).unwrap();
        assert_eq!(
            parsed.batch.num_rows() as u64 + parsed.rejects.len() as u64,
            parsed.records
        );
        assert!(
            parsed.rejects.len() as u64 * 100 <= parsed.records,
            "{name}: {} of {} lines rejected, first: {:?}",
            parsed.rejects.len(),
            parsed.records,
            parsed.rejects.first()
        );
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| parse_chunk(&opts, black_box(data), 1).unwrap())
        });
    }
    group.finish();

    let head = &combined[..combined.len().min(256 << 10)];
    // The JSON skipper alone (what a projected parse pays for the fields it does not keep),
    // next to serde_json validating the same lines.
    let mut group = c.benchmark_group("json_validate");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(json.len() as u64));
    let mut index = compactor_formats::jsonscan::LineIndex::default();
    group.bench_function("jsonscan", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            compactor_formats::for_each_line(black_box(&json), |_, l| {
                ok += usize::from(compactor_formats::jsonscan::is_valid(l, &mut index))
            });
            ok
        })
    });
    group.bench_function("serde_json_ignored_any", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            compactor_formats::for_each_line(black_box(&json), |_, l| {
                ok += usize::from(serde_json::from_slice::<serde::de::IgnoredAny>(l).is_ok())
            });
            ok
        })
    });
    group.finish();

    let mut group = c.benchmark_group("detect");
    group.sample_size(10);
    group.bench_function("auto_access_head", |b| {
        b.iter(|| {
            compactor_formats::detect::detect(&ParseOptions::new(Format::Auto), black_box(head))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
