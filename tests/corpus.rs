//! Conformance on real third-party logs from `../shared/corpus/` (see its SOURCES.md).
//!
//! The files are never copied into this repository (several licenses forbid it); when the
//! folder is absent the tests say so and pass. Each known-format file must parse with every
//! line accounted for and (almost) no rejects, and typed columns must come out typed.

mod shared_corpus;

use std::path::{Path, PathBuf};

use arrow::datatypes::DataType;
use compactor_formats::{parse_chunk, Format, ParseOptions};

fn corpus() -> Option<PathBuf> {
    shared_corpus::dir("", "corpus conformance")
}

/// Parses a whole corpus file as one chunk and checks its accounting and reject share.
fn check(path: &Path, format: Format, max_reject_share: f64) -> compactor_formats::ParsedChunk {
    let bytes = std::fs::read(path).unwrap();
    let p = parse_chunk(&ParseOptions::new(format), &bytes, 1).unwrap();
    assert_eq!(
        p.lines,
        compactor_formats::count_lines(&bytes),
        "{}",
        path.display()
    );
    assert_eq!(
        p.batch.num_rows() as u64 + p.rejects.len() as u64,
        p.lines,
        "{}",
        path.display()
    );
    let share = p.rejects.len() as f64 / p.lines.max(1) as f64;
    assert!(
        share <= max_reject_share,
        "{}: {} of {} lines rejected; first: {:?}",
        path.display(),
        p.rejects.len(),
        p.lines,
        p.rejects.first().map(|r| (
            r.line,
            &r.reason,
            String::from_utf8_lossy(&r.raw[..r.raw.len().min(200)]).into_owned()
        ))
    );
    p
}

#[test]
fn access_logs_conform() {
    let Some(dir) = corpus() else { return };
    for name in [
        "access/elastic_apache_logs.log",
        "access/slowlybomb_wordpress_nginx_access.log",
    ] {
        let p = check(&dir.join(name), Format::Combined, 0.001);
        let schema = p.batch.schema();
        assert!(
            matches!(
                schema.field_with_name("ts").unwrap().data_type(),
                DataType::Timestamp(..)
            ),
            "{name}"
        );
        assert_eq!(
            schema.field_with_name("status").unwrap().data_type(),
            &DataType::Int64,
            "{name}"
        );
    }
}

#[test]
fn json_logs_conform() {
    let Some(dir) = corpus() else { return };
    for name in [
        "json/elastic_nginxplus_json_logs.jsonl",
        "json/zeek_ssl.json",
    ] {
        let p = check(&dir.join(name), Format::Json, 0.0);
        assert!(p.batch.num_columns() > 3, "{name}");
    }
    let p = check(&dir.join("json/zeek_ssl.json"), Format::Json, 0.0);
    let ts = p
        .batch
        .schema()
        .field_with_name("ts")
        .unwrap()
        .data_type()
        .clone();
    assert!(
        matches!(ts, DataType::Timestamp(..)),
        "zeek ts is ISO 8601: {ts}"
    );
}

/// What `auto` must choose for a corpus file, and what the file then parses to. Rejects are
/// (line, reason), each shown malformed in a comment.
struct Auto {
    file: &'static str,
    /// `Detection`'s format, with `:LAYOUT` for the built-in text layouts.
    format: &'static str,
    lines: u64,
    rows: usize,
    meta_lines: u64,
    rejects: &'static [(u64, &'static str)],
}

const AUTO: &[Auto] = &[
    // Line 8899 ends inside the user agent: `... "Mozilla/5.0 (compatible; Googlebot/2.1;
    // +http://www.google.com/bot.html` and then the line ends, no closing quote.
    Auto {
        file: "access/elastic_apache_logs.log",
        format: "combined",
        lines: 10000,
        rows: 9999,
        meta_lines: 0,
        rejects: &[(8899, "unterminated user_agent")],
    },
    Auto {
        file: "access/slowlybomb_wordpress_nginx_access.log",
        format: "combined",
        lines: 10000,
        rows: 10000,
        meta_lines: 0,
        rejects: &[],
    },
    // The file ends with "\n\n": line 11 is empty.
    Auto {
        file: "aws/beats_application-lb-http.log",
        format: "alb",
        lines: 11,
        rows: 10,
        meta_lines: 0,
        rejects: &[(11, "blank line")],
    },
    Auto {
        file: "aws/beats_s3_server_access.log",
        format: "s3",
        lines: 5,
        rows: 5,
        meta_lines: 0,
        rejects: &[],
    },
    // `#Version:` and `#Fields:` directives.
    Auto {
        file: "aws/scogs_cloudfront_CF.log",
        format: "cloudfront",
        lines: 20,
        rows: 18,
        meta_lines: 2,
        rejects: &[],
    },
    Auto {
        file: "csv/loghub_HDFS_2k.log_structured.csv",
        format: "csv",
        lines: 2001,
        rows: 2000,
        meta_lines: 1,
        rejects: &[],
    },
    Auto {
        file: "csv/loghub_OpenSSH_2k.log_structured.csv",
        format: "csv",
        lines: 2001,
        rows: 2000,
        meta_lines: 1,
        rejects: &[],
    },
    Auto {
        file: "json/elastic_nginxplus_json_logs.jsonl",
        format: "json",
        lines: 500,
        rows: 500,
        meta_lines: 0,
        rejects: &[],
    },
    Auto {
        file: "json/zeek_ssl.json",
        format: "json",
        lines: 49474,
        rows: 49474,
        meta_lines: 0,
        rejects: &[],
    },
    Auto {
        file: "logfmt/percona_pmm_grafana.log",
        format: "logfmt",
        lines: 236,
        rows: 236,
        meta_lines: 0,
        rejects: &[],
    },
    Auto {
        file: "loghub/Android_2k.log",
        format: "grok:ANDROID_LOGCAT",
        lines: 2000,
        rows: 2000,
        meta_lines: 0,
        rejects: &[],
    },
    Auto {
        file: "loghub/Apache_2k.log",
        format: "grok:HTTPD_ERRORLOG",
        lines: 2000,
        rows: 2000,
        meta_lines: 0,
        rejects: &[],
    },
    Auto {
        file: "loghub/BGL_2k.log",
        format: "grok:BGL",
        lines: 2000,
        rows: 2000,
        meta_lines: 0,
        rejects: &[],
    },
    Auto {
        file: "loghub/HDFS_2k.log",
        format: "grok:HDFS",
        lines: 2000,
        rows: 2000,
        meta_lines: 0,
        rejects: &[],
    },
    Auto {
        file: "loghub/Hadoop_2k.log",
        format: "grok:HADOOP",
        lines: 2000,
        rows: 2000,
        meta_lines: 0,
        rejects: &[],
    },
    Auto {
        file: "loghub/HealthApp_2k.log",
        format: "grok:HEALTHAPP",
        lines: 2000,
        rows: 2000,
        meta_lines: 0,
        rejects: &[],
    },
    Auto {
        file: "loghub/Linux_2k.log",
        format: "syslog",
        lines: 2000,
        rows: 2000,
        meta_lines: 0,
        rejects: &[],
    },
    Auto {
        file: "loghub/OpenSSH_2k.log",
        format: "syslog",
        lines: 2000,
        rows: 2000,
        meta_lines: 0,
        rejects: &[],
    },
    Auto {
        file: "loghub/Spark_2k.log",
        format: "grok:SPARK",
        lines: 2000,
        rows: 2000,
        meta_lines: 0,
        rejects: &[],
    },
    Auto {
        file: "loghub/Zookeeper_2k.log",
        format: "grok:ZOOKEEPER",
        lines: 2000,
        rows: 2000,
        meta_lines: 0,
        rejects: &[],
    },
    Auto {
        file: "syslog/elastic_auth.log",
        format: "syslog",
        lines: 7121,
        rows: 7121,
        meta_lines: 0,
        rejects: &[],
    },
    Auto {
        file: "syslog/scogs_heroku_rfc5424_logfmt1.log",
        format: "syslog",
        lines: 2,
        rows: 2,
        meta_lines: 0,
        rejects: &[],
    },
    // 8 header directives (`#separator` ... `#types`) and the closing `#close`.
    Auto {
        file: "tsv/zeek_weird.log",
        format: "tsv",
        lines: 24211,
        rows: 24202,
        meta_lines: 9,
        rejects: &[],
    },
];

/// Every file of the corpus, through `auto` exactly as a run reads it (the detection on the
/// head of the file, then the whole file as one chunk): the expected format, rows, header
/// lines and rejects. A file not in the table (the corpus grew) must still be detected with
/// confidence and reject at most 1% of its records.
#[test]
fn auto_detects_and_parses_every_corpus_file() {
    let Some(dir) = corpus() else { return };
    let mut files = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "SOURCES.md") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut seen = 0;
    for path in &files {
        let name = path.strip_prefix(&dir).unwrap().to_str().unwrap();
        let bytes = std::fs::read(path).unwrap();
        let head = &bytes[..bytes.len().min(256 << 10)];
        let (opts, d) = ParseOptions::new(Format::Auto).for_file(head).unwrap();
        let d = d.unwrap();
        let label = match d.layout {
            Some(l) => format!("{}:{l}", d.format),
            None => d.format.to_string(),
        };
        let p = parse_chunk(&opts, &bytes, 1).unwrap();
        assert_eq!(p.lines, compactor_formats::count_lines(&bytes), "{name}");
        assert_eq!(
            p.records,
            p.batch.num_rows() as u64 + p.rejects.len() as u64,
            "{name}"
        );
        assert_eq!(
            p.lines,
            p.records + p.meta_lines,
            "{name}: single-line records"
        );
        let Some(want) = AUTO.iter().find(|a| a.file == name) else {
            eprintln!("{name}: not in the expected table; detected {d}");
            assert!(d.confidence >= 0.9, "{name}: {d}");
            assert!(
                p.rejects.len() as u64 * 100 <= p.records,
                "{name}: {:?}",
                p.rejects.first()
            );
            continue;
        };
        seen += 1;
        assert_eq!(label, want.format, "{name}: {d}");
        assert!(d.confidence >= 0.99, "{name}: {d}");
        let rejects: Vec<(u64, &str)> = p
            .rejects
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(rejects, want.rejects, "{name}");
        assert_eq!(
            (p.lines, p.batch.num_rows(), p.meta_lines),
            (want.lines, want.rows, want.meta_lines),
            "{name}"
        );
    }
    assert_eq!(seen, AUTO.len(), "every expected file is in the corpus");
}
