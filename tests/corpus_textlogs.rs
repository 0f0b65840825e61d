//! Conformance of the built-in text-log layouts ([`compactor_formats::grok::LAYOUTS`]) on the
//! real loghub files in `../shared/corpus/loghub/` (see its SOURCES.md).
//!
//! The files are never copied into this repository (their license asks for attribution and
//! limits use); when the folder is absent the tests say so and pass. Each file must parse
//! with its layout with every line accounted for and no rejects (every line of these files
//! was checked to be well-formed: no continuation lines, no blank lines, all UTF-8), and
//! date-bearing layouts must produce a timestamp `ts` column. The layouts must also be
//! specific: no other layout parses a single line of another file, except `LOG4J`, the
//! generic fallback, which by design also reads `HADOOP` and `ZOOKEEPER` lines.

mod shared_corpus;

use std::path::PathBuf;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, TimestampMicrosecondType};
use compactor_formats::grok::{layout, Layout, LAYOUTS};
use compactor_formats::{count_lines, parse_chunk, Format, ParseOptions, ParsedChunk};

fn corpus() -> Option<PathBuf> {
    shared_corpus::dir("loghub", "text-log layouts on the corpus")
}

fn parse_with(layout: &Layout, bytes: &[u8]) -> ParsedChunk {
    let mut o = ParseOptions::new(Format::Grok);
    o.pattern = Some(layout.pattern.into());
    o.record_start = layout.record_start.map(Into::into);
    o.prepare().unwrap();
    parse_chunk(&o, bytes, 1).unwrap()
}

/// (file, layout, rows, rejects, whether `ts` is a timestamp column)
///
/// Every file has 2000 records: the loghub `_2k` files hold 2000 lines each (those noted "no
/// trailing newline" in SOURCES.md lack the last `\n`), one record per line, and none is
/// rejected.
const EXPECTED: &[(&str, &str, u64, usize, bool)] = &[
    ("HDFS_2k.log", "HDFS", 2000, 0, true),
    ("Hadoop_2k.log", "HADOOP", 2000, 0, true),
    ("Zookeeper_2k.log", "ZOOKEEPER", 2000, 0, true),
    ("Spark_2k.log", "SPARK", 2000, 0, true),
    ("Apache_2k.log", "HTTPD_ERRORLOG", 2000, 0, true),
    ("BGL_2k.log", "BGL", 2000, 0, true),
    ("Android_2k.log", "ANDROID_LOGCAT", 2000, 0, false),
    ("HealthApp_2k.log", "HEALTHAPP", 2000, 0, true),
];

#[test]
fn loghub_files_parse_with_their_layouts() {
    let Some(dir) = corpus() else { return };
    for &(file, name, rows, rejects, typed_ts) in EXPECTED {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let l = layout(name).unwrap();
        let p = parse_with(l, &bytes);
        let first = p.rejects.first().map(|r| {
            (
                r.line,
                r.reason.clone(),
                String::from_utf8_lossy(&r.raw[..r.raw.len().min(200)]).into_owned(),
            )
        });
        assert_eq!(p.lines, count_lines(&bytes), "{file}");
        assert_eq!(p.meta_lines, 0, "{file}");
        assert_eq!(
            p.records,
            p.batch.num_rows() as u64 + p.rejects.len() as u64,
            "{file}"
        );
        assert_eq!(
            (p.batch.num_rows() as u64, p.rejects.len()),
            (rows, rejects),
            "{file}: first reject {first:?}"
        );
        assert_eq!(p.records, rows + rejects as u64, "{file}");
        let schema = p.batch.schema();
        if typed_ts {
            let ts = p.batch.column_by_name("ts").unwrap();
            assert!(
                matches!(ts.data_type(), DataType::Timestamp(..)),
                "{file}: ts is {}",
                ts.data_type()
            );
            assert_eq!(ts.null_count(), 0, "{file}");
        }
        let message = p.batch.column_by_name("message").unwrap();
        assert_eq!(message.data_type(), &DataType::Utf8, "{file}");
        // Integer captures are Int64 columns (all-null ones, such as the httpd 2.4 `pid` of a
        // 2.0-style file, are Null columns).
        for col in ["pid", "line", "tid"] {
            if let Ok(f) = schema.field_with_name(col) {
                let all_null =
                    p.batch.column_by_name(col).unwrap().logical_null_count() == p.batch.num_rows();
                assert!(
                    f.data_type() == &DataType::Int64 || all_null,
                    "{file}: {col} is {}",
                    f.data_type()
                );
            }
        }
    }
}

#[test]
fn first_rows_read_as_expected() {
    let Some(dir) = corpus() else { return };
    let first_ts = |file: &str, name: &str| -> i64 {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let p = parse_with(layout(name).unwrap(), &bytes);
        let ts = p.batch.column_by_name("ts").unwrap();
        ts.as_primitive::<TimestampMicrosecondType>().value(0)
    };
    let micros = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_micros()
    };
    // `081109 203615` (yyMMdd HHmmss), zone-less: read as UTC.
    assert_eq!(
        first_ts("HDFS_2k.log", "HDFS"),
        micros("2008-11-09T20:36:15Z")
    );
    assert_eq!(
        first_ts("Hadoop_2k.log", "HADOOP"),
        micros("2015-10-18T18:01:47.978Z")
    );
    assert_eq!(
        first_ts("Zookeeper_2k.log", "ZOOKEEPER"),
        micros("2015-07-29T17:41:44.747Z")
    );
    assert_eq!(
        first_ts("Spark_2k.log", "SPARK"),
        micros("2017-06-09T20:10:40Z")
    );
    assert_eq!(
        first_ts("Apache_2k.log", "HTTPD_ERRORLOG"),
        micros("2005-12-04T04:47:44Z")
    );
    // BGL's `ts` is its epoch column, `1117838570`.
    assert_eq!(
        first_ts("BGL_2k.log", "BGL"),
        micros("2005-06-03T22:42:50Z")
    );
    // `20171223-22:15:29:606`.
    assert_eq!(
        first_ts("HealthApp_2k.log", "HEALTHAPP"),
        micros("2017-12-23T22:15:29.606Z")
    );
}

#[test]
fn layouts_do_not_read_each_others_files() {
    let Some(dir) = corpus() else { return };
    for &(file, own, ..) in EXPECTED {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        for l in LAYOUTS {
            if l.name == own {
                continue;
            }
            let p = parse_with(l, &bytes);
            let generic_reads_log4j = l.name == "LOG4J" && matches!(own, "HADOOP" | "ZOOKEEPER");
            if generic_reads_log4j {
                assert_eq!(p.batch.num_rows(), 2000, "LOG4J on {file}");
            } else {
                assert_eq!(p.batch.num_rows(), 0, "{} on {file}", l.name);
            }
        }
    }
}

/// The `log4j` generator's output (which needs no corpus) reads with the `LOG4J` layout:
/// one row per generated record, stack traces inside their record.
#[test]
fn generated_log4j_parses_with_its_layout() {
    let bytes = compactor_bench_data::samples::textlogs::log4j(42, 3000);
    let p = parse_with(layout("LOG4J").unwrap(), &bytes);
    assert!(p.rejects.is_empty(), "{:?}", p.rejects.first());
    assert_eq!((p.records, p.batch.num_rows()), (3000, 3000));
    assert!(p.lines > 3000);
    let message = p
        .batch
        .column_by_name("message")
        .unwrap()
        .as_string::<i32>();
    assert!((0..message.len()).any(|i| message.value(i).contains("\n\tat ")));
    let ts = p.batch.column_by_name("ts").unwrap();
    assert!(matches!(ts.data_type(), DataType::Timestamp(..)));
}
