//! The new formats through whole runs: multi-line records across chunk boundaries, header
//! lines counted apart from records, `auto` per file, and the accounting of each.

mod common;

use std::fmt::Write as _;

use common::Val;

/// A log4j-style log of `n` records; every other one is an ERROR with a 12-line stack trace
/// (so that most lines are continuation lines, and a cut at a plain line would split a
/// record). Returns the text and each record's (level, message with its continuation lines).
fn log4j(n: usize, pad: usize) -> (String, Vec<(String, String)>) {
    let mut text = String::new();
    let mut records = Vec::new();
    for i in 0..n {
        let (h, m, s) = (i / 3600 % 24, i / 60 % 60, i % 60);
        let day = 1 + i / 86_400;
        let ts = format!("2026-01-{day:02} {h:02}:{m:02}:{s:02},{:03}", i % 1000);
        let filler = "x".repeat(pad);
        if i % 2 == 1 {
            let mut msg = format!("request {i} failed\njava.lang.IllegalStateException: boom {i}");
            for k in 0..10 {
                write!(msg, "\n\tat com.example.Foo.bar{k}(Foo.java:{i})").unwrap();
            }
            writeln!(text, "{ts} ERROR {msg}").unwrap();
            records.push(("ERROR".to_string(), msg));
        } else {
            let msg = format!("request {i} served {filler}");
            writeln!(text, "{ts} INFO {msg}").unwrap();
            records.push(("INFO".to_string(), msg));
        }
    }
    (text, records)
}

#[test]
fn multi_line_records_survive_chunk_boundaries() {
    // ~18 MiB: three 8 MiB chunks; both plain-line cuts (8 MiB, 16 MiB) fall inside stack
    // traces with this padding, so a chunker that ignored the framing would split records.
    let (body, expect) = log4j(60_000, 61);
    // A continuation line before the first record is a record of its own, and rejected.
    let text = format!("\tat orphan.Continuation(X.java:1)\n{body}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.log"), &text).unwrap();
    let extra = "pattern = '%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} %{GREEDYDATA:message}'\nrecord_start = '^%{TIMESTAMP_ISO8601} '\n";
    let job = |table: &str| {
        common::job_text(&["app.log"], "grok", table, &["ts"], "").replace(
            "format = \"grok\"\n",
            &format!("format = \"grok\"\n{extra}"),
        )
    };
    let j1 = common::write_job(dir.path(), "j1.toml", &job("t1"));
    let j2 = common::write_job(dir.path(), "j2.toml", &job("t2"));
    let r = common::run_job(&j1, 2);
    let lines = text.lines().count() as u64;
    assert_eq!(r.lines_in, lines);
    assert_eq!(r.records_in, expect.len() as u64 + 1, "{r:?}");
    assert_eq!((r.rows_out, r.rejected), (expect.len() as u64, 1));
    let q = std::fs::read_to_string(r.quarantine.as_ref().unwrap()).unwrap();
    assert!(q.contains("\"line\":1,"), "{q}");

    let got = common::read_table_ordered(&dir.path().join("t1"));
    let col = |n: &str| got.columns.iter().position(|(c, _)| c == n).unwrap();
    let (level, message) = (col("level"), col("message"));
    assert_eq!(got.rows.len(), expect.len());
    for (row, (l, m)) in got.rows.iter().zip(&expect) {
        assert!(matches!(&row[level], Val::Str(s) if s == l));
        assert!(
            matches!(&row[message], Val::Str(s) if s == m),
            "{:?}",
            row[message]
        );
    }
    // One thread gives the same bytes.
    common::run_job(&j2, 1);
    let files = |t: &str| {
        common::parquet_files_under(&dir.path().join(t))
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(files("t1"), files("t2"));
}

#[test]
fn header_lines_are_counted_apart_from_records() {
    let dir = tempfile::tempdir().unwrap();
    // Two CSV files concatenated: the header repeats; a quoted field spans two lines.
    let csv = "id,name,score\n1,\"a, b\",2.5\n2,\"multi\nline\",3\nid,name,score\n3,c,4\n4,d\n";
    std::fs::write(dir.path().join("a.csv"), csv).unwrap();
    let job = common::write_job(
        dir.path(),
        "j.toml",
        &common::job_text(
            &["a.csv"],
            "csv",
            "t",
            &["id"],
            "[limits]\nmax_rejected_share = 0.5\n",
        ),
    );
    let r = common::run_job(&job, 2);
    assert_eq!(
        (
            r.lines_in,
            r.meta_lines,
            r.records_in,
            r.rows_out,
            r.rejected
        ),
        (7, 2, 4, 3, 1),
        "{r:?}"
    );
    let got = common::read_table_ordered(&dir.path().join("t"));
    let names: Vec<&str> = got.columns.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, ["id", "name", "score"]);
    assert!(matches!(&got.rows[1][1], Val::Str(s) if s == "multi\nline"));
}

#[test]
fn auto_picks_a_format_per_file_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let access =
        "203.0.113.7 - - [10/Oct/2000:13:55:36 -0700] \"GET /a HTTP/1.1\" 200 5 \"-\" \"curl/8\"\n";
    std::fs::write(dir.path().join("access.log"), access.repeat(5)).unwrap();
    let syslog = "Oct 11 22:14:15 host sshd[42]: Accepted publickey for alice\n";
    std::fs::write(dir.path().join("auth.log"), syslog.repeat(4)).unwrap();
    let job = common::write_job(
        dir.path(),
        "j.toml",
        &common::job_text(&["access.log", "auth.log"], "auto", "t", &["ts"], ""),
    );
    let (out, rep) = common::cli_run(&job, 2, &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let rep = rep.unwrap();
    let detected = rep["detected"].as_object().unwrap();
    let of = |name: &str| {
        detected
            .iter()
            .find(|(k, _)| k.ends_with(name))
            .map(|(_, v)| v.as_str().unwrap().to_string())
            .unwrap()
    };
    assert!(
        of("access.log").starts_with("combined, confidence 1.00"),
        "{detected:?}"
    );
    assert!(
        of("auth.log").starts_with("syslog, confidence 1.00"),
        "{detected:?}"
    );
    assert!(
        common::stderr(&out).contains("format of"),
        "{}",
        common::stderr(&out)
    );
    // Each file repeats one line: one row each, the rest re-deliveries.
    assert_eq!(rep["rows_out"], 2, "{rep}");
    assert_eq!(rep["duplicates"], 7, "{rep}");
}

/// `auto` on every generator of `compactor_bench_data`: the format it was made in, with full
/// confidence. (The corpus test does the same on real files when they are present.)
#[test]
fn auto_detects_every_generated_format() {
    use compactor_bench_data::samples::{aws, delimited, logfmt, syslog, textlogs};
    use compactor_bench_data::{generate_to_vec, GenConfig, GenFormat};
    use compactor_formats::{Format, ParseOptions};
    let gen = |f| generate_to_vec(&GenConfig::new(f, 500, 1)).unwrap().0;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("json", gen(GenFormat::Json)),
        ("combined", gen(GenFormat::Combined)),
        ("syslog", syslog::syslog_3164(1, 500)),
        ("syslog", syslog::syslog_5424(1, 500)),
        ("logfmt", logfmt::logfmt(1, 500)),
        ("csv", delimited::csv(1, 500)),
        ("tsv", delimited::zeek(1, 500)),
        ("cloudfront", aws::cloudfront(1, 500)),
        ("alb", aws::alb(1, 500)),
        ("elb", aws::elb(1, 500)),
        ("s3", aws::s3(1, 500)),
        ("grok:LOG4J", textlogs::log4j(1, 500)),
    ];
    for (want, bytes) in cases {
        let (_, d) = ParseOptions::new(Format::Auto).for_file(&bytes).unwrap();
        let d = d.unwrap();
        let got = match d.layout {
            Some(l) => format!("{}:{l}", d.format),
            None => d.format.to_string(),
        };
        assert_eq!(got, want, "{d}");
        assert!(d.confidence >= 0.99, "{want}: {d}");
    }
}

/// Standard input is read once: its head decides the format (`auto`) and the record framing
/// before the first chunk is cut, so multi-line records from a pipe are never split either.
#[test]
fn stdin_is_detected_and_framed_before_it_is_cut() {
    use std::io::Write as _;
    let (body, expect) = log4j(60_000, 61);
    let text = format!("\tat orphan.Continuation(X.java:1)\n{body}");
    let dir = tempfile::tempdir().unwrap();
    let job = common::write_job(
        dir.path(),
        "j.toml",
        &common::job_text(&["-"], "auto", "t", &["ts"], ""),
    );
    let report = dir.path().join("report.json");
    let mut child = std::process::Command::new(common::CLI)
        .args([
            "run",
            job.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ])
        .args(["--threads", "2", "--no-progress"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(text.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let rep: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert!(
        rep["detected"]["-"]
            .as_str()
            .is_some_and(|d| d.starts_with("grok (layout LOG4J)")),
        "{rep}"
    );
    // One reject (the orphan continuation line), every record whole.
    assert_eq!(rep["rejected"], 1, "{rep}");
    assert_eq!(rep["rows_out"], expect.len(), "{rep}");
}

/// `compactor parse` reads like a run (detection, header, framing) and writes nothing: its
/// table names the detected format, the counts and the first rejects with their reasons.
#[test]
fn parse_command_reports_formats_counts_and_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let syslog = "Oct 11 22:14:15 host sshd[42]: Accepted publickey for alice\n".repeat(9)
        + "not a syslog line at all\n";
    std::fs::write(dir.path().join("auth.log"), syslog).unwrap();
    std::fs::write(dir.path().join("t.csv"), "a,b\n1,2\n3,4\n").unwrap();
    let out = common::cli(
        &["parse", dir.path().to_str().unwrap(), "--threads", "1"],
        &[],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let row = |name: &str| {
        text.lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
    };
    // format (confidence) records rows rejected header MB/s
    assert_eq!(
        row("auth.log")[..6],
        ["syslog", "(0.90)", "10", "9", "1", "0"],
        "{text}"
    );
    assert_eq!(
        row("t.csv")[..6],
        ["csv", "(1.00)", "2", "2", "0", "1"],
        "{text}"
    );
    assert!(text.contains("line 10: not syslog"), "{text}");
    assert!(!dir.path().join("_compactor").exists());
}
