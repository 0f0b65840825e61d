//! Broken inputs end to end, through the real binary: truncated gzip and zstd files, a gzip
//! bomb over `[limits] max_decompressed_bytes`, and plain files with invalid UTF-8, NUL bytes,
//! an overlong line and deep JSON nesting.
//!
//! The contract for a decode failure (`compactor_formats::decode::DecodeError`, handed out by
//! the chunker after every record decoded before it): the run neither panics nor hangs; the
//! records before the failure are committed and counted; the failure is one quarantine entry
//! whose reason names the file, the compression and the compressed offset, counted in the
//! report's `rejected`; the run goes on with the next file.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `n` distinct JSON lines.
fn json_lines(n: u64) -> Vec<u8> {
    (0..n)
        .flat_map(|i| {
            format!(
                "{{\"id\":{i},\"group\":\"g{}\",\"msg\":\"event number {i} {:x}\"}}\n",
                i % 5,
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            )
            .into_bytes()
        })
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// What an independent decoder gets out of `compressed` before it fails.
fn decoded_prefix(mut r: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Lines of `prefix` that are JSON objects (rows), and the rest (rejects: the incomplete tail).
fn rows_and_rejects(prefix: &[u8]) -> (u64, u64) {
    let (mut rows, mut rejects) = (0, 0);
    // The line the stream broke off in is no record: it is the input error's (see below).
    let whole = &prefix[..prefix
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1)];
    for l in whole.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<serde_json::Value>(l) {
            Ok(v) if v.is_object() => rows += 1,
            _ => rejects += 1,
        }
    }
    (rows, rejects)
}

/// The incomplete last line of a decoded prefix, if it ends inside one.
fn tail(prefix: &[u8]) -> Option<String> {
    let start = prefix
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (start < prefix.len()).then(|| String::from_utf8_lossy(&prefix[start..]).into_owned())
}

/// Runs `compactor run` on `job` like `common::cli_run`, but kills it after `limit` (a hang is
/// a failure, not a stuck test).
fn run_bounded(job: &Path, limit: Duration) -> (Output, Option<serde_json::Value>) {
    let report = job.with_extension("report.json");
    let _ = std::fs::remove_file(&report);
    let mut child = Command::new(common::CLI)
        .args([
            "run",
            job.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "--threads",
            "2",
            "--no-progress",
        ])
        .env_remove("COMPACTOR_FAILPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the compactor CLI");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "compactor run hung for {limit:?}; stderr:\n{}",
                common::stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let rep = std::fs::read(&report)
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap());
    (out, rep)
}

/// A JSON job over `inputs` sorted by `id`, with the `[limits]` lines given.
fn job(dir: &Path, inputs: &[&str], limits: &str) -> PathBuf {
    common::write_job(
        dir,
        "job.toml",
        &common::job_text(
            inputs,
            "json",
            "table",
            &["id"],
            &format!("\n[limits]\n{limits}"),
        ),
    )
}

fn no_panic(out: &Output) {
    let err = common::stderr(out);
    assert!(!err.contains("panicked"), "the run panicked:\n{err}");
}

fn n(rep: &serde_json::Value, key: &str) -> u64 {
    rep[key]
        .as_u64()
        .unwrap_or_else(|| panic!("report lacks {key}: {rep}"))
}

/// Runs a job over `bad` (a broken compressed file) and a good plain file after it, and checks
/// the decode-failure contract (module docs). `expect` = (rows, rejected records) decoded from
/// `bad` before the failure; `words` must all be in the quarantine entry's reason.
fn check_decode_failure(
    bad_name: &str,
    bad: &[u8],
    expect: (u64, u64),
    limits: &str,
    words: &[&str],
    tail: Option<&str>,
) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    std::fs::write(d.join("in").join(bad_name), bad).unwrap();
    // ids far from the broken file's, read after it
    let good: Vec<u8> = (0..50u64)
        .flat_map(|i| format!("{{\"id\":{},\"group\":\"late\"}}\n", 1_000_000 + i).into_bytes())
        .collect();
    std::fs::write(d.join("in/z-good.jsonl"), &good).unwrap();
    let job = job(d, &["in/*"], limits);
    let (out, rep) = run_bounded(&job, Duration::from_secs(120));
    no_panic(&out);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        common::stderr(&out)
    );
    let rep = rep.expect("a report");
    assert_eq!(n(&rep, "files_in"), 2, "{rep}");
    let (rows, tail_rejects) = expect;
    // the records before the failure and the next file are committed
    assert_eq!(
        n(&rep, "rows_out") + n(&rep, "duplicates"),
        rows + 50,
        "{rep}"
    );
    assert_eq!(n(&rep, "rejected"), tail_rejects + 1, "{rep}");
    // The decode failure is one rejected record that is no line of the input.
    assert_eq!(
        n(&rep, "records_in"),
        n(&rep, "rows_out") + n(&rep, "duplicates") + n(&rep, "rejected"),
        "{rep}"
    );
    assert_eq!(n(&rep, "lines_in") + 1, n(&rep, "records_in"), "{rep}");
    assert_eq!(
        rep["input_errors"].as_array().map(Vec::len),
        Some(1),
        "{rep}"
    );
    let table = d.join("table");
    let records = common::read_table_records(&table);
    assert_eq!(records.len() as u64, n(&rep, "rows_out"));
    // the quarantine names the file, the compression and the offset
    let q = common::quarantine(&table);
    let bad_path = std::fs::canonicalize(d.join("in").join(bad_name)).unwrap();
    let entry = q
        .iter()
        .find(|e| e["reason"].as_str().is_some_and(|r| r.contains("offset")))
        .unwrap_or_else(|| panic!("no decode failure in the quarantine: {q:?}"));
    assert_eq!(
        Path::new(entry["file"].as_str().unwrap()),
        bad_path,
        "{entry}"
    );
    let reason = entry["reason"].as_str().unwrap();
    for w in words {
        assert!(reason.contains(w), "{reason:?} lacks {w:?}");
    }
    // The line it broke off in is that entry's raw bytes, and no row.
    if let Some(tail) = tail {
        assert_eq!(entry["raw"].as_str(), Some(tail), "{entry}");
        assert!(reason.contains("inside this line"), "{reason}");
    }
}

#[test]
fn a_truncated_gzip_file_commits_what_came_before_the_cut() {
    let text = json_lines(20_000);
    let gz = gzip(&text);
    let cut = &gz[..gz.len() * 2 / 3];
    let prefix = decoded_prefix(flate2::read::MultiGzDecoder::new(cut));
    assert!(!prefix.is_empty() && prefix.len() < text.len());
    check_decode_failure(
        "events.jsonl.gz",
        cut,
        rows_and_rejects(&prefix),
        "max_rejected_share = 0.5\n",
        &["events.jsonl.gz", "gzip", "offset"],
        tail(&prefix).as_deref(),
    );
}

#[test]
fn a_truncated_zstd_file_commits_what_came_before_the_cut() {
    let text = json_lines(40_000);
    let zs = zstd::encode_all(&text[..], 3).unwrap();
    let cut = &zs[..zs.len() * 2 / 3];
    let prefix = decoded_prefix(zstd::stream::read::Decoder::new(cut).unwrap());
    assert!(!prefix.is_empty() && prefix.len() < text.len());
    check_decode_failure(
        "events.zst",
        cut,
        rows_and_rejects(&prefix),
        "max_rejected_share = 0.5\n",
        &["events.zst", "zstd", "offset"],
        tail(&prefix).as_deref(),
    );
}

#[test]
fn a_gzip_bomb_stops_at_max_decompressed_bytes() {
    // 64 MiB of one 8-byte line: ~1000:1. The cap cuts 3 bytes into a line.
    let line = b"{\"a\":1}\n";
    let bomb = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        for _ in 0..(64 << 20) / line.len() / 4096 {
            e.write_all(&line.repeat(4096)).unwrap();
        }
        e.finish().unwrap()
    };
    assert!(bomb.len() * 500 < 64 << 20, "{} bytes", bomb.len());
    let cap = 1_000_003u64;
    let whole = cap / line.len() as u64; // 125_000 lines, then `{"a`, cut off
    check_decode_failure(
        "bomb.gz",
        &bomb,
        (whole, 0),
        &format!("max_rejected_share = 0.5\nmax_decompressed_bytes = {cap}\n"),
        &["bomb.gz", "gzip", "offset", "max_decompressed_bytes"],
        Some("{\"a"),
    );
}

#[test]
fn hostile_plain_lines_are_rejected_without_panic_or_hang() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut data = Vec::new();
    data.extend_from_slice(b"{\"id\":1,\"ok\":true}\n");
    data.extend_from_slice(b"{\"id\":2,\"bad\":\"\xff\xfe\xc3\x28\"}\n"); // invalid UTF-8
    data.extend_from_slice(b"{\"id\":3,\"nul\":\"a\x00b\"}\n"); // raw NUL in a string
    data.extend_from_slice(b"\x00\x00\x00\x00\n"); // only NULs
    data.extend_from_slice(b"{\"id\":4,\"long\":\"");
    data.extend(std::iter::repeat_n(b'x', 300_000)); // overlong (limit below: 100 000)
    data.extend_from_slice(b"\"}\n");
    data.extend(std::iter::repeat_n(b'y', 5_000_000)); // overlong, no quote, no newline soon
    data.push(b'\n');
    let deep = |n: usize| {
        let mut v = Vec::new();
        for _ in 0..n {
            v.extend_from_slice(b"{\"a\":");
        }
        v.push(b'1');
        v.extend(std::iter::repeat_n(b'}', n));
        v.push(b'\n');
        v
    };
    data.extend(deep(100)); // deeper than max_depth (64)
    data.extend(deep(50_000)); // deeper than any recursion limit
    data.extend(std::iter::repeat_n(b'[', 50_000));
    data.push(b'\n');
    data.extend_from_slice(b"{\"id\":5,\"ok\":true}\n");
    data.extend_from_slice(b"{\"id\":6,\"tail\":\"no newline\"}");
    std::fs::create_dir(d.join("in")).unwrap();
    std::fs::write(d.join("in/hostile.jsonl"), &data).unwrap();
    // the same bytes compressed take the streaming path (where long lines are cut)
    std::fs::write(d.join("in/hostile.jsonl.gz"), gzip(&data)).unwrap();
    // (nearly every line is bad: the rejected share is not what this test is about)
    let job = job(
        d,
        &["in/*"],
        "max_rejected_share = 1.0\nmax_line_bytes = 100000\n",
    );
    let (out, rep) = run_bounded(&job, Duration::from_secs(120));
    no_panic(&out);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let rep = rep.expect("a report");
    assert_eq!(
        n(&rep, "lines_in"),
        n(&rep, "rows_out") + n(&rep, "duplicates") + n(&rep, "rejected"),
        "{rep}"
    );
    assert_eq!(n(&rep, "lines_in"), n(&rep, "records_in"), "{rep}");
    assert_eq!(
        rep["input_errors"].as_array().map(Vec::len),
        Some(0),
        "{rep}"
    );
    // ids 1, 5, 6 (twice: the same rows from both files, so one copy is a duplicate)
    assert_eq!(n(&rep, "rows_out"), 3, "{rep}");
    assert_eq!(n(&rep, "duplicates"), 3, "{rep}");
    let q = common::quarantine(&d.join("table"));
    assert_eq!(q.len() as u64, n(&rep, "rejected"));
    for e in &q {
        let raw_len = e["raw"]
            .as_str()
            .map(str::len)
            .or_else(|| e["raw_hex"].as_str().map(|h| h.len() / 2))
            .unwrap_or(0);
        assert!(
            raw_len <= 100_000,
            "a quarantined line is not cut: {raw_len}"
        );
        assert!(e["file"].as_str().unwrap().contains("hostile.jsonl"));
    }
}
