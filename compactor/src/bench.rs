//! `compactor bench`: how small does compactor make *my* logs, next to gzip and zstd?
//!
//! # Why
//! "Parquet is smaller" is only worth something next to what a user would do otherwise:
//! compress the raw text. This command answers it on the user's own file, in one table, with
//! the speed of each option, and then shows where the table's bytes go, so that the next step
//! (another sort key, a type in `[schema]`) is an informed one.
//!
//! # How
//! ```text
//!   PATH ─▶ formats::decode (plain / gzip / zstd) ─▶ raw text in memory ──┬─▶ gzip -6  ─┐
//!                                                                        ├─▶ zstd -3  ─┤
//!                                                                        └─▶ zstd -19 ─┤ bytes, time
//!   Job (--job, or [input] paths=[PATH] format=F) ─▶ output.path = temp dir            │
//!       ├─▶ run::run ─▶ table ─▶ inspect::breakdown ─────────────────────────────────┤
//!       └─▶ sort_by = ["auto"] ─▶ run::run ─▶ table ─▶ inspect::breakdown ───────────┤
//!                                                                                    ▼
//!                                      one table: bytes, ratio (raw / bytes), MB/s (raw / s)
//!                                      then the breakdown of the auto table (or the job's)
//! ```
//! The text codecs compress the decoded text held in memory, so their time is compression
//! only (zstd uses `--threads` workers); give `bench` a sample, not a day of logs. The
//! compactor rows time a whole run (read, parse, dedup, sort, write, commit) on the file as
//! stored. A compactor row that fails (a job the data does not fit, a sort key not yet
//! supported) shows its error and the others still run. The sort key a table was written with
//! is read back from its row groups' `sorting_columns`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use compactor_formats::Format;

use crate::inspect::{self, Breakdown};
use crate::job::Job;
use crate::run::{self, RunOptions};

/// What to benchmark.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The input file (plain, gzip or zstd).
    pub path: PathBuf,
    /// Input format; default: the job's, else `auto`.
    pub format: Option<Format>,
    /// A loaded job whose settings the compactor rows use (its inputs and table are replaced).
    pub job: Option<Job>,
    /// Worker threads for compactor runs and zstd.
    pub threads: usize,
}

/// One line of the comparison.
#[derive(Debug, Clone)]
pub struct BenchRow {
    /// What was measured, e.g. `zstd -19`.
    pub name: String,
    /// Output bytes (`None` if it failed).
    pub bytes: Option<u64>,
    /// Seconds it took.
    pub seconds: f64,
    /// Sort key, rows and duplicates for compactor rows; the error for a failed row.
    pub note: String,
}

/// The comparison, and the breakdown of the table the last successful compactor row wrote.
#[derive(Debug, Clone)]
pub struct BenchResult {
    /// The input as given.
    pub input: String,
    /// Bytes of the input as stored.
    pub stored_bytes: u64,
    /// Bytes of the decoded text.
    pub raw_bytes: u64,
    /// raw, gzip -6, zstd -3, zstd -19, compactor (job), compactor (sort_by auto).
    pub rows: Vec<BenchRow>,
    /// Which table `breakdown` is of.
    pub breakdown_of: Option<String>,
    /// Where the bytes of that table go.
    pub breakdown: Option<Breakdown>,
}

/// Runs the comparison.
pub fn bench(opts: &BenchOptions) -> Result<BenchResult> {
    let stored_bytes = std::fs::metadata(&opts.path)
        .with_context(|| format!("opening {}", opts.path.display()))?
        .len();
    let started = Instant::now();
    let raw = read_decoded(&opts.path)?;
    let mut rows = vec![BenchRow {
        name: "raw".into(),
        bytes: Some(raw.len() as u64),
        seconds: started.elapsed().as_secs_f64(),
        note: "read and decode".into(),
    }];
    rows.push(timed("gzip -6", || gzip(&raw, 6)));
    rows.push(timed("zstd -3", || zstd(&raw, 3, opts.threads)));
    rows.push(timed("zstd -19", || zstd(&raw, 19, opts.threads)));
    drop(raw);

    let job = bench_job(opts)?;
    let label = if opts.job.is_some() {
        "compactor (job)"
    } else {
        "compactor (defaults)"
    };
    let (row, job_table) = compactor_row(label, &job, opts.threads);
    rows.push(row);
    let mut auto = job.clone();
    auto.output.sort_by = vec!["auto".to_string()];
    let (row, auto_table) = compactor_row("compactor (sort_by auto)", &auto, opts.threads);
    rows.push(row);

    let (breakdown_of, breakdown) = match (auto_table, job_table) {
        (Some(b), _) => (Some("compactor (sort_by auto)".to_string()), Some(b)),
        (None, Some(b)) => (Some(label.to_string()), Some(b)),
        (None, None) => (None, None),
    };
    Ok(BenchResult {
        input: opts.path.display().to_string(),
        stored_bytes,
        raw_bytes: rows[0].bytes.unwrap_or(0),
        rows,
        breakdown_of,
        breakdown,
    })
}

/// The whole decoded input (gzip and zstd are decoded as a run would).
fn read_decoded(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut decoder = compactor_formats::decode::Decoder::new(file, u64::MAX)
        .with_context(|| format!("reading {}", path.display()))?;
    let mut raw = Vec::new();
    decoder
        .read_to_end(&mut raw)
        .with_context(|| format!("decoding {}", path.display()))?;
    Ok(raw)
}

/// A writer that only counts what it is given.
#[derive(Default)]
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn gzip(raw: &[u8], level: u32) -> Result<u64> {
    let mut enc =
        flate2::write::GzEncoder::new(Counter::default(), flate2::Compression::new(level));
    enc.write_all(raw)?;
    Ok(enc.finish()?.0)
}

fn zstd(raw: &[u8], level: i32, threads: usize) -> Result<u64> {
    let mut enc = zstd::stream::Encoder::new(Counter::default(), level)?;
    if threads > 1 {
        enc.multithread(u32::try_from(threads).unwrap_or(u32::MAX))?;
    }
    enc.write_all(raw)?;
    Ok(enc.finish()?.0)
}

/// Runs `f`, a compressor returning its output size, as a row.
fn timed(name: &str, f: impl FnOnce() -> Result<u64>) -> BenchRow {
    let started = Instant::now();
    let result = f();
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(bytes) => BenchRow {
            name: name.into(),
            bytes: Some(bytes),
            seconds,
            note: String::new(),
        },
        Err(e) => failed(name, seconds, &e),
    }
}

fn failed(name: &str, seconds: f64, e: &anyhow::Error) -> BenchRow {
    BenchRow {
        name: name.into(),
        bytes: None,
        seconds,
        note: format!("failed: {e:#}"),
    }
}

/// The job the compactor rows run: the given one (or `[input] paths = [PATH]` with the
/// format and defaults), reading only PATH, its table in a temporary directory set later.
fn bench_job(opts: &BenchOptions) -> Result<Job> {
    let path = std::path::absolute(&opts.path)
        .with_context(|| format!("resolving {}", opts.path.display()))?
        .to_string_lossy()
        .into_owned();
    let mut job = match &opts.job {
        Some(j) => j.clone(),
        None => Job::parse(&default_job_text(
            &path,
            opts.format.unwrap_or(Format::Auto),
        )?)
        .context("building the default bench job")?,
    };
    job.input.paths = vec![path];
    if let Some(f) = opts.format {
        job.input.format = f;
    }
    job.output.quarantine_dir = None;
    Ok(job)
}

/// `[input] paths = [path] format = F`, `[output] path = "table"` as TOML text.
fn default_job_text(path: &str, format: Format) -> Result<String> {
    let mut input = toml::Table::new();
    input.insert("paths".into(), vec![toml::Value::from(path)].into());
    input.insert("format".into(), format.to_string().into());
    let mut output = toml::Table::new();
    output.insert("path".into(), "table".into());
    let mut doc = toml::Table::new();
    doc.insert("input".into(), input.into());
    doc.insert("output".into(), output.into());
    Ok(toml::to_string(&doc)?)
}

/// Runs `job` into a fresh temporary table; the row, and the table's breakdown if it ran.
fn compactor_row(name: &str, job: &Job, threads: usize) -> (BenchRow, Option<Breakdown>) {
    let started = Instant::now();
    match run_into_temp(job, threads) {
        Ok((report, b)) => {
            let note = format!(
                "sort key: {}; {} rows, {} duplicates, {} rejected",
                b.sort_keys
                    .first()
                    .map_or("none".to_string(), |k| k.join(", ")),
                report.rows_out,
                report.duplicates,
                report.rejected
            );
            let row = BenchRow {
                name: name.into(),
                bytes: Some(b.total_bytes),
                seconds: report.seconds,
                note,
            };
            (row, Some(b))
        }
        Err(e) => (failed(name, started.elapsed().as_secs_f64(), &e), None),
    }
}

fn run_into_temp(job: &Job, threads: usize) -> Result<(run::RunReport, Breakdown)> {
    let dir = tempfile::Builder::new()
        .prefix("compactor-bench-")
        .tempdir()
        .context("creating a temporary directory for the bench table")?;
    let mut job = job.clone();
    job.output.path = dir.path().join("table");
    let opts = RunOptions {
        threads: threads.max(1),
        memory: None,
        spill_dir: None,
        max_spill_bytes: None,
        run_bytes: None,
        progress: false,
    };
    let started = Instant::now();
    let mut report = run::run(&job, &opts)?;
    report.seconds = started.elapsed().as_secs_f64();
    let files = inspect::table_files(&job.output.path)?;
    let mut b = inspect::breakdown(&files)?;
    b.source = format!("bench table ({})", job.output.path.display());
    Ok((report, b))
}

/// The comparison as a plain-text table.
pub fn render_text(r: &BenchResult) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "input {}: {} stored, {} raw",
        r.input,
        inspect::human_bytes(r.stored_bytes),
        inspect::human_bytes(r.raw_bytes)
    );
    let name_w = r.rows.iter().map(|x| x.name.len()).max().unwrap_or(4);
    let _ = writeln!(
        out,
        "{:<name_w$} {:>14} {:>8} {:>9}  note",
        "", "bytes", "ratio", "MB/s"
    );
    for row in &r.rows {
        let _ = match row.bytes {
            Some(bytes) => writeln!(
                out,
                "{:<name_w$} {:>14} {:>8.2} {:>9.1}  {}",
                row.name,
                bytes,
                r.raw_bytes as f64 / bytes.max(1) as f64,
                r.raw_bytes as f64 / 1e6 / row.seconds.max(1e-9),
                row.note
            ),
            None => writeln!(
                out,
                "{:<name_w$} {:>14} {:>8} {:>9}  {}",
                row.name, "-", "-", "-", row.note
            ),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_shrink_repetitive_text() {
        let raw = "GET /index.html 200\n".repeat(10_000).into_bytes();
        for bytes in [
            gzip(&raw, 6).unwrap(),
            zstd(&raw, 3, 1).unwrap(),
            zstd(&raw, 19, 2).unwrap(),
        ] {
            assert!(bytes > 0 && bytes * 20 < raw.len() as u64, "{bytes}");
        }
    }

    #[test]
    fn default_job_quotes_the_path() {
        let text = default_job_text("/tmp/a \"b\".log", Format::Json).unwrap();
        let job = Job::parse(&text).unwrap();
        assert_eq!(job.input.paths, vec!["/tmp/a \"b\".log".to_string()]);
        assert_eq!(job.input.format, Format::Json);
    }

    #[test]
    fn failed_rows_render_their_error() {
        let r = BenchResult {
            input: "x".into(),
            stored_bytes: 10,
            raw_bytes: 100,
            rows: vec![
                BenchRow {
                    name: "zstd -3".into(),
                    bytes: Some(25),
                    seconds: 0.5,
                    note: String::new(),
                },
                failed("compactor", 0.1, &anyhow::anyhow!("no such sort column")),
            ],
            breakdown_of: None,
            breakdown: None,
        };
        let t = render_text(&r);
        assert!(t.contains("4.00"), "{t}");
        assert!(t.contains("failed: no such sort column"), "{t}");
    }
}
