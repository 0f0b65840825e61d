//! Conformance of the `syslog` and `logfmt` parsers on real third-party logs from
//! `../shared/corpus/` (see its SOURCES.md).
//!
//! The files are never copied into this repository (several licenses forbid it); when the
//! folder is absent the tests say so and pass. Each file must parse with exactly the row and
//! reject counts below: none of these files holds a malformed line.

mod shared_corpus;

use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type, TimestampMicrosecondType};
use compactor_formats::{count_lines, parse_chunk, Format, ParseOptions, ParsedChunk};

/// 2024-06-15T00:00:00Z: the reference instant (the "file's mtime") for years of BSD dates.
const REFERENCE_MICROS: i64 = 1_718_409_600_000_000;

fn corpus() -> Option<PathBuf> {
    shared_corpus::dir("", "syslog and logfmt corpus conformance")
}

/// Parses a whole corpus file as one chunk; checks the accounting, the exact counts and that
/// column `ts` is a timestamp.
fn check(dir: &Path, name: &str, format: Format, rows: usize, rejects: usize) -> ParsedChunk {
    check_ts(dir, name, format, rows, rejects, "ts")
}

/// [`check`] with another timestamp column.
fn check_ts(
    dir: &Path,
    name: &str,
    format: Format,
    rows: usize,
    rejects: usize,
    ts: &str,
) -> ParsedChunk {
    let bytes = std::fs::read(dir.join(name)).unwrap();
    let mut opts = ParseOptions::new(format);
    opts.reference_micros = Some(REFERENCE_MICROS);
    let p = parse_chunk(&opts, &bytes, 1).unwrap();
    assert_eq!(p.lines, count_lines(&bytes), "{name}");
    assert_eq!(p.meta_lines, 0, "{name}");
    assert_eq!(p.records, p.lines, "{name}");
    assert_eq!(
        p.batch.num_rows() as u64 + p.rejects.len() as u64,
        p.records,
        "{name}"
    );
    let shown: Vec<_> = p
        .rejects
        .iter()
        .take(5)
        .map(|r| {
            (
                r.line,
                r.reason.clone(),
                String::from_utf8_lossy(&r.raw[..r.raw.len().min(160)]).into_owned(),
            )
        })
        .collect();
    assert_eq!(
        (p.batch.num_rows(), p.rejects.len()),
        (rows, rejects),
        "{name}: first rejects {shown:#?}"
    );
    let schema = p.batch.schema();
    assert!(
        matches!(
            schema.field_with_name(ts).unwrap().data_type(),
            DataType::Timestamp(..)
        ),
        "{name}: {ts} is a timestamp"
    );
    p
}

fn column<'a>(p: &'a ParsedChunk, name: &str) -> &'a dyn Array {
    p.batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_ref()
}

#[test]
fn bsd_syslog_files_conform() {
    let Some(dir) = corpus() else { return };
    // /var/log/auth.log of an Ubuntu host (sshd, sudo, CRON, systemd-logind): all have a tag.
    let p = check(&dir, "syslog/elastic_auth.log", Format::Syslog, 7121, 0);
    assert_eq!(column(&p, "app").null_count(), 0);
    assert_eq!(column(&p, "host").null_count(), 0);
    assert_eq!(
        column(&p, "pid").data_type(),
        &DataType::Int64,
        "sshd[1291]"
    );
    // /var/log/messages (CRLF, no final newline). 8 lines have no `tag:`: `syslogd 1.4.1:
    // restart.` (the word after the host is followed by a space) and `combo  -- root[2421]:
    // ROOT LOGIN ON tty2`; they keep the whole rest as their message, app null.
    let p = check(&dir, "loghub/Linux_2k.log", Format::Syslog, 2000, 0);
    assert_eq!(column(&p, "app").null_count(), 8);
    assert_eq!(column(&p, "message").null_count(), 0);
    // sshd lines of a server under attack (CRLF, no final newline), December: with a June
    // reference, December is more than a month later, so the year is 2023.
    let p = check(&dir, "loghub/OpenSSH_2k.log", Format::Syslog, 2000, 0);
    let ts = column(&p, "ts").as_primitive::<TimestampMicrosecondType>();
    // Dec 10 06:55:46 2023 UTC
    assert_eq!(ts.value(0), 1_702_191_346_000_000);
    assert_eq!(column(&p, "app").null_count(), 0);
}

#[test]
fn rfc5424_heroku_frames_conform() {
    let Some(dir) = corpus() else { return };
    // Octet-counted logplex frames. The first claims 122 bytes for a 120-byte frame: within
    // the 2 bytes a sender may count for a `\r\n` the line splitter removed (module docs of
    // `compactor_formats::syslog`), so it is accepted.
    let p = check(
        &dir,
        "syslog/scogs_heroku_rfc5424_logfmt1.log",
        Format::Syslog,
        2,
        0,
    );
    let pri = column(&p, "pri").as_primitive::<Int64Type>();
    assert_eq!(pri.values(), &[190, 134]);
    assert_eq!(
        column(&p, "procid").as_string::<i32>().value(1),
        "heroku-redis"
    );
    assert!(column(&p, "message")
        .as_string::<i32>()
        .value(0)
        .starts_with("time=\"2016-08-15T06:11:06Z\""));
    assert_eq!(
        column(&p, "ts_offset").as_primitive::<Int64Type>().values(),
        &[0, 0]
    );
}

#[test]
fn grafana_logfmt_conforms() {
    let Some(dir) = corpus() else { return };
    // `t=` is the timestamp column here; `uname=` / `referer=` (empty) are nulls.
    let p = check_ts(
        &dir,
        "logfmt/percona_pmm_grafana.log",
        Format::Logfmt,
        236,
        0,
        "t",
    );
    assert_eq!(column(&p, "lvl").null_count(), 0);
    assert_eq!(column(&p, "status").data_type(), &DataType::Int64);
    assert_eq!(column(&p, "msg").null_count(), 0);
}

/// The bench-data generators write lines these parsers accept whole (no corpus needed).
#[test]
fn generated_lines_parse_without_rejects() {
    use compactor_bench_data::samples;
    for (name, format, bytes) in [
        (
            "syslog_3164",
            Format::Syslog,
            samples::syslog::syslog_3164(3, 2000),
        ),
        (
            "syslog_5424",
            Format::Syslog,
            samples::syslog::syslog_5424(3, 2000),
        ),
        ("logfmt", Format::Logfmt, samples::logfmt::logfmt(3, 2000)),
    ] {
        let mut opts = ParseOptions::new(format);
        opts.reference_micros = Some(REFERENCE_MICROS);
        let p = parse_chunk(&opts, &bytes, 1).unwrap();
        assert_eq!(
            (p.batch.num_rows(), p.rejects.len()),
            (2000, 0),
            "{name}: {:?}",
            p.rejects.first()
        );
    }
}
