//! Conformance of the delimited (CSV, TSV/Zeek) and AWS parsers on real third-party logs from
//! `../shared/corpus/` (see its SOURCES.md). The files are never copied into this repository;
//! when the folder is absent the tests say so and pass.
//!
//! Each file is parsed the way the driver does it: the file's options come from
//! `ParseOptions::for_file` (which reads the header), then the bytes are parsed as one chunk,
//! and again as two chunks cut at a record boundary, which must give the same rows.

mod shared_corpus;

use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Int64Type, TimestampMicrosecondType};
use compactor_formats::{count_lines, parse_chunk, Format, ParseOptions, ParsedChunk};

fn corpus() -> Option<PathBuf> {
    shared_corpus::dir("", "delimited and AWS corpus conformance")
}

/// What a file must parse to.
struct Expect {
    lines: u64,
    rows: usize,
    meta_lines: u64,
    /// (line, reason) of every reject.
    rejects: &'static [(u64, &'static str)],
}

/// Parses `name` like the driver (header from `for_file`, one chunk) and checks the counts;
/// then parses it as two chunks cut at a record boundary near the middle and checks that the
/// rows are the same.
fn check(dir: &Path, name: &str, format: Format, want: Expect) -> ParsedChunk {
    let bytes = std::fs::read(dir.join(name)).unwrap();
    let (opts, _) = ParseOptions::new(format).for_file(&bytes).unwrap();
    let p = parse_chunk(&opts, &bytes, 1).unwrap();
    let got: Vec<(u64, &str)> = p
        .rejects
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    assert_eq!(got, want.rejects, "{name}: rejects");
    assert_eq!(p.lines, want.lines, "{name}: lines");
    assert_eq!(p.lines, count_lines(&bytes), "{name}: lines");
    assert_eq!(p.batch.num_rows(), want.rows, "{name}: rows");
    assert_eq!(p.meta_lines, want.meta_lines, "{name}: meta lines");
    assert_eq!(
        p.records,
        p.batch.num_rows() as u64 + p.rejects.len() as u64,
        "{name}: records == rows + rejects"
    );
    // Two chunks, cut where the driver would (the framing's boundary after the middle).
    let cut = opts
        .framing()
        .boundary(&bytes, bytes.len() / 2, 1 << 20)
        .unwrap_or(bytes.len());
    let a = parse_chunk(&opts, &bytes[..cut], 1).unwrap();
    let b = parse_chunk(&opts, &bytes[cut..], 1 + a.lines).unwrap();
    assert_eq!(a.lines + b.lines, p.lines, "{name}: split lines");
    assert_eq!(
        a.meta_lines + b.meta_lines,
        p.meta_lines,
        "{name}: split meta"
    );
    let mut rejects = a.rejects.clone();
    rejects.extend(b.rejects.iter().cloned());
    assert_eq!(rejects, p.rejects, "{name}: split rejects");
    let whole = p.batch.schema();
    let parts: Vec<RecordBatch> = [&a.batch, &b.batch]
        .into_iter()
        .map(|x| compactor_formats::schema::conform(x, &whole).unwrap())
        .collect();
    let joined = concat_batches(&whole, &parts).unwrap();
    assert_eq!(
        joined, p.batch,
        "{name}: two chunks give the same rows as one"
    );
    p
}

fn dtype(p: &ParsedChunk, col: &str) -> DataType {
    p.batch
        .schema()
        .field_with_name(col)
        .unwrap()
        .data_type()
        .clone()
}

fn int_at(p: &ParsedChunk, col: &str, row: usize) -> Option<i64> {
    let c = p.batch.column_by_name(col).unwrap();
    let c = c.as_primitive::<Int64Type>();
    (!c.is_null(row)).then(|| c.value(row))
}

fn str_at(p: &ParsedChunk, col: &str, row: usize) -> Option<String> {
    let c = p.batch.column_by_name(col).unwrap();
    let c = c.as_string::<i32>();
    (!c.is_null(row)).then(|| c.value(row).to_string())
}

fn ts_at(p: &ParsedChunk, col: &str, row: usize) -> i64 {
    let c = p.batch.column_by_name(col).unwrap();
    c.as_primitive::<TimestampMicrosecondType>().value(row)
}

#[test]
fn cloudfront_corpus() {
    let Some(dir) = corpus() else { return };
    // 2 directives (#Version, #Fields) and 18 records, no rejects.
    let p = check(
        &dir,
        "aws/scogs_cloudfront_CF.log",
        Format::Cloudfront,
        Expect {
            lines: 20,
            rows: 18,
            meta_lines: 2,
            rejects: &[],
        },
    );
    assert_eq!(ts_at(&p, "ts", 0), 1_471_241_069_000_000);
    assert_eq!(str_at(&p, "x_edge_location", 0).as_deref(), Some("SIN2"));
    assert_eq!(int_at(&p, "sc_bytes", 0), Some(540_648));
    assert_eq!(int_at(&p, "sc_status", 1), Some(0), "000: no response");
    assert_eq!(str_at(&p, "cs_referer", 0), None);
    assert_eq!(dtype(&p, "time_taken"), DataType::Float64);
    assert!(str_at(&p, "cs_user_agent", 0)
        .unwrap()
        .starts_with("Mozilla/5.0%2520(Macintosh"));
}

#[test]
fn alb_corpus() {
    let Some(dir) = corpus() else { return };
    // 10 records of 25 fields (through error_reason; the later fields are null). The file
    // ends with "\n\n": its 11th line is empty, and parse_chunk rejects a blank line so that
    // every line is accounted for (records == rows + rejects); AWS never writes one, the
    // file's packager added it.
    let p = check(
        &dir,
        "aws/beats_application-lb-http.log",
        Format::Alb,
        Expect {
            lines: 11,
            rows: 10,
            meta_lines: 0,
            rejects: &[(11, "blank line")],
        },
    );
    assert_eq!(int_at(&p, "client_port", 0), Some(56_398));
    assert_eq!(int_at(&p, "elb_status_code", 0), Some(460));
    assert_eq!(int_at(&p, "target_status_code", 0), None);
    assert_eq!(str_at(&p, "method", 0).as_deref(), Some("GET"));
    assert_eq!(str_at(&p, "protocol", 0).as_deref(), Some("HTTP/1.1"));
    assert_eq!(dtype(&p, "request_processing_time"), DataType::Float64);
    assert_eq!(dtype(&p, "conn_trace_id"), DataType::Null);
}

#[test]
fn s3_corpus() {
    let Some(dir) = corpus() else { return };
    // 5 records of 24 fields (through tls_version), no rejects.
    let p = check(
        &dir,
        "aws/beats_s3_server_access.log",
        Format::S3,
        Expect {
            lines: 5,
            rows: 5,
            meta_lines: 0,
            rejects: &[],
        },
    );
    assert_eq!(int_at(&p, "ts_offset", 0), Some(0));
    assert_eq!(int_at(&p, "http_status", 0), Some(200));
    assert_eq!(
        str_at(&p, "operation", 0).as_deref(),
        Some("REST.GET.LOCATION")
    );
    assert_eq!(str_at(&p, "tls_version", 0).as_deref(), Some("TLSv1.2"));
    assert!(matches!(dtype(&p, "ts"), DataType::Timestamp(..)));
}

#[test]
fn csv_corpus() {
    let Some(dir) = corpus() else { return };
    // A header line and 2000 records each (CRLF line ends), no rejects.
    for name in [
        "csv/loghub_HDFS_2k.log_structured.csv",
        "csv/loghub_OpenSSH_2k.log_structured.csv",
    ] {
        let p = check(
            &dir,
            name,
            Format::Csv,
            Expect {
                lines: 2001,
                rows: 2000,
                meta_lines: 1,
                rejects: &[],
            },
        );
        assert_eq!(dtype(&p, "LineId"), DataType::Int64, "{name}");
        assert_eq!(dtype(&p, "Pid"), DataType::Int64, "{name}");
        assert_eq!(int_at(&p, "LineId", 1999), Some(2000), "{name}");
    }
    let bytes = std::fs::read(dir.join("csv/loghub_HDFS_2k.log_structured.csv")).unwrap();
    let (opts, _) = ParseOptions::new(Format::Csv).for_file(&bytes).unwrap();
    let p = parse_chunk(&opts, &bytes, 1).unwrap();
    // `081109` keeps its leading zero: a string, verbatim.
    assert_eq!(str_at(&p, "Date", 0).as_deref(), Some("081109"));
    assert_eq!(int_at(&p, "Pid", 0), Some(148));
}

#[test]
fn zeek_corpus() {
    let Some(dir) = corpus() else { return };
    // 8 header directives, 24202 records and a trailing #close directive; no rejects.
    let p = check(
        &dir,
        "tsv/zeek_weird.log",
        Format::Tsv,
        Expect {
            lines: 24_211,
            rows: 24_202,
            meta_lines: 9,
            rejects: &[],
        },
    );
    assert_eq!(ts_at(&p, "ts", 0), 1_521_911_720_600_843);
    assert_eq!(int_at(&p, "id.orig_p", 0), Some(49_562));
    assert_eq!(dtype(&p, "notice"), DataType::Boolean);
    assert_eq!(str_at(&p, "addl", 0), None, "- is unset");
    assert_eq!(
        str_at(&p, "name", 0).as_deref(),
        Some("TCP_ack_underflow_or_misorder")
    );
}

/// The bench-data generators (no corpus needed): every record parses, with the expected
/// header and directive lines, in one chunk and split in two.
#[test]
fn generated_samples_parse_without_rejects() {
    use compactor_bench_data::samples::{aws, delimited};
    let n = 500;
    let cases: [(&str, Vec<u8>, Format, u64); 6] = [
        ("csv", delimited::csv(7, n), Format::Csv, 1),
        ("zeek", delimited::zeek(7, n), Format::Tsv, 9),
        ("cloudfront", aws::cloudfront(7, n), Format::Cloudfront, 2),
        ("alb", aws::alb(7, n), Format::Alb, 0),
        ("elb", aws::elb(7, n), Format::Elb, 0),
        ("s3", aws::s3(7, n), Format::S3, 0),
    ];
    for (name, bytes, format, meta) in cases {
        assert!(bytes.ends_with(b"\n"), "{name}");
        assert_eq!(
            bytes,
            match name {
                "csv" => delimited::csv(7, n),
                "zeek" => delimited::zeek(7, n),
                "cloudfront" => aws::cloudfront(7, n),
                "alb" => aws::alb(7, n),
                "elb" => aws::elb(7, n),
                _ => aws::s3(7, n),
            },
            "{name}: deterministic"
        );
        let (opts, _) = ParseOptions::new(format).for_file(&bytes).unwrap();
        let p = parse_chunk(&opts, &bytes, 1).unwrap();
        assert!(
            p.rejects.is_empty(),
            "{name}: {:?}",
            &p.rejects[..p.rejects.len().min(3)]
        );
        assert_eq!(
            (p.batch.num_rows() as u64, p.meta_lines),
            (n, meta),
            "{name}"
        );
        let cut = opts
            .framing()
            .boundary(&bytes, bytes.len() / 2, 1 << 20)
            .unwrap();
        let a = parse_chunk(&opts, &bytes[..cut], 1).unwrap();
        let b = parse_chunk(&opts, &bytes[cut..], 1 + a.lines).unwrap();
        assert!(a.rejects.is_empty() && b.rejects.is_empty(), "{name}");
        assert_eq!(
            a.batch.num_rows() + b.batch.num_rows(),
            n as usize,
            "{name}"
        );
    }
}
