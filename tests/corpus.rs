//! Conformance on real third-party logs from `../shared/corpus/` (see its SOURCES.md).
//!
//! The files are never copied into this repository (several licenses forbid it); when the
//! folder is absent the tests say so and pass. Each known-format file must parse with every
//! line accounted for and (almost) no rejects, and typed columns must come out typed.

use std::path::{Path, PathBuf};

use arrow::datatypes::DataType;
use compactor_formats::{parse_chunk, Format, ParseOptions};

fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} is absent; corpus conformance not checked",
            dir.display()
        );
        None
    }
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
