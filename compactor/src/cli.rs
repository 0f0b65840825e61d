//! The command line: `compactor run | compact | vacuum | verify | parse | infer | inspect | bench | gen`.
//!
//! Exit codes (also in `compactor --help` and README.md):
//! - 0: success, including "nothing to do" (every input already consumed)
//! - 1: failure: I/O, a corrupt input, an internal error
//! - 2: usage error, invalid job file, or a job that does not fit the table or data
//! - 3: too many rejected lines (above `max_rejected_share`); nothing committed
//! - 4: memory budget (`--memory`) or spill space exhausted; nothing committed
//! - 5: another compaction holds the table's compaction lock, or a concurrent writer's commit
//!   made this one impossible (its inputs were consumed or removed meanwhile); nothing committed
//! - 6: `verify` found problems

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use compactor_formats::{parse_chunk, schema, Format, ParseOptions};

use crate::{bench, input, job, run};

const EXIT_CODES: &str = "Exit codes:
  0  success, including nothing to do (all inputs already consumed)
  1  failure: I/O error, corrupt input, internal error
  2  usage error, invalid job file, or a job that does not fit the table or data
  3  rejected lines above max_rejected_share; nothing committed
  4  memory budget (--memory) or spill space (--max-spill-bytes, disk) exhausted; nothing committed
  5  another compaction is running, or a concurrent commit made this one impossible; nothing committed
  6  verify found problems";

#[derive(Parser)]
#[command(name = "compactor", version, about = "Turn raw logs into a small, typed, deduplicated, sorted Parquet table (Delta Lake).", after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a job: read inputs, parse, dedup, sort, commit one new table version.
    #[command(
        after_help = "Example:\n  compactor run examples/quickstart.toml --report report.json --threads 2 --memory 4GiB\n\nA second run of the same job commits nothing: the table remembers the input files it consumed (path, size, xxh3 fingerprint)."
    )]
    Run {
        /// The job file (TOML).
        job: PathBuf,
        /// Also write the run report as JSON to this file.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Worker threads (default: all cores). Output bytes do not depend on it.
        #[arg(long)]
        threads: Option<usize>,
        /// Memory budget, e.g. 512MiB, 8GiB (default: the job's [resources] memory, else half
        /// of the machine's memory). Every buffer is reserved from it; beyond it the sort
        /// spills to disk.
        #[arg(long, value_parser = parse_size)]
        memory: Option<usize>,
        /// Directory for spill files (default: the job's [resources] spill_dir, else
        /// <table>/_compactor/spill).
        #[arg(long)]
        spill_dir: Option<PathBuf>,
        /// Cap on the bytes of spill files on disk at once, e.g. 100GiB (default 1TiB).
        #[arg(long, value_parser = parse_size_u64)]
        max_spill_bytes: Option<u64>,
        /// Size of the sort's in-memory runs (default: derived from --memory). A small value
        /// forces many spilled runs; for tests and tuning.
        #[arg(long, value_parser = parse_size, hide = true)]
        run_bytes: Option<usize>,
        /// Never show a progress bar.
        #[arg(long)]
        no_progress: bool,
    },
    /// Merge a table's small segments into few large, sorted ones: a size-tiered policy picks
    /// segments per partition, a k-way merge (spilling under --memory) drops duplicates across
    /// them as the table's runs do, and one Delta commit swaps them (remove + add,
    /// dataChange = false). Concurrent runs keep appending; their commits are kept.
    #[command(after_help = "Examples:
  compactor compact warehouse/events
  compactor compact warehouse/events --partition 2026-01-31 --target-size 256MiB --memory 2GiB
  compactor compact warehouse/events --policy all --dry-run")]
    Compact {
        /// The table directory.
        table: PathBuf,
        /// Only this partition: its value (2026-01-31) or name=value.
        #[arg(long)]
        partition: Option<String>,
        /// Size of the new segments, e.g. 512MiB (the default).
        #[arg(long, value_parser = parse_size_u64, default_value = "512MiB")]
        target_size: u64,
        /// tiered (default: merge tiers of 4+ similar-size segments) or all (every segment
        /// below the target size, in one pass).
        #[arg(long, default_value = "tiered")]
        policy: PolicyName,
        /// Take [output] (zstd, encodings, bloom filters) and [dedup] from this job file
        /// (default: the defaults, and the dedup the table's runs recorded).
        #[arg(long)]
        job: Option<PathBuf>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Memory budget (default: half of the machine's memory); beyond it the merge spills.
        #[arg(long, value_parser = parse_size)]
        memory: Option<usize>,
        /// Directory for spill files (default <table>/_compactor/spill).
        #[arg(long)]
        spill_dir: Option<PathBuf>,
        /// Say what would be merged; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also write the report as JSON to this file.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Delete the files no snapshot inside the retention can read: segments a compaction
    /// removed longer ago than --retain, and leftovers of crashed writers older than it. Never
    /// a live file, nor one of a writer still running.
    #[command(
        after_help = "Examples:\n  compactor vacuum warehouse/events\n  compactor vacuum warehouse/events --retain 24h --dry-run"
    )]
    Vacuum {
        /// The table directory.
        table: PathBuf,
        /// Keep what a snapshot of the last DURATION can read: 7d (the default), 24h, 30m, 0s.
        #[arg(long, default_value = "7d", value_parser = parse_duration)]
        retain: std::time::Duration,
        /// List what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also write the report as JSON to this file.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Check every segment of the table's current snapshot: it exists, its size and checksum
    /// (recorded in its name at write time) match, its footer parses, its row count matches
    /// the log, its columns fit the table's schema, and (unless --quick) every page decodes and
    /// the rows are in the order the footer declares. Exits 6 naming each problem.
    #[command(
        after_help = "Examples:\n  compactor verify warehouse/events\n  compactor verify warehouse/events --quick --json"
    )]
    Verify {
        /// The table directory.
        table: PathBuf,
        /// Skip decoding the pages and the sort-order check (sizes, checksums, footers and
        /// schemas only).
        #[arg(long)]
        quick: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Print the schema inferred from input files as a [schema] block for a job file.
    #[command(
        after_help = "Example:\n  compactor infer logs/2026-01-01.jsonl.gz --format json >> job.toml"
    )]
    Infer {
        /// Input files, directories or globs.
        #[arg(required = true)]
        paths: Vec<String>,
        /// Input format (see `compactor run --help`), or auto.
        #[arg(long, default_value = "auto")]
        format: Format,
        /// Read at most this many bytes of each file (after decompression).
        #[arg(long, value_parser = parse_size, default_value = "256MiB")]
        max_bytes: usize,
    },
    /// Parse inputs without writing anything: per file, the format (detected for `auto`),
    /// records, rows, rejects with their first reasons, and parse speed. For checking a
    /// format, a pattern or a job's [input] on real logs before running the job.
    #[command(
        after_help = "Examples:\n  compactor parse /var/log/auth.log\n  compactor parse app.log --format grok --pattern '%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} %{GREEDYDATA:message}'\n  compactor parse --job job.toml --threads 1"
    )]
    Parse {
        /// Input files, directories or globs (default: the job's [input] paths).
        paths: Vec<String>,
        /// Take [input], [limits] and [schema] from this job file.
        #[arg(long)]
        job: Option<PathBuf>,
        /// Input format (see `compactor run --help`); default auto.
        #[arg(long)]
        format: Option<Format>,
        /// regex / grok pattern.
        #[arg(long)]
        pattern: Option<String>,
        /// Multi-line records: pattern of a record's first line.
        #[arg(long)]
        record_start: Option<String>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Rejects to show per file.
        #[arg(long, default_value_t = 3)]
        show_rejects: usize,
    },
    /// Show where a table's bytes go: per column its bytes and share, type, encodings,
    /// compression, uncompressed bytes, bytes per row and bloom filters, and the footers'
    /// overhead. Reads only the Parquet footers.
    #[command(
        after_help = "Examples:\n  compactor inspect warehouse/events\n  compactor inspect warehouse/events --html events.html\n  compactor inspect part-00000.parquet --json"
    )]
    Inspect {
        /// A Delta table directory (its live files) or one .parquet file.
        table: PathBuf,
        /// Also write a self-contained HTML page (table and bar chart) to this file.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Print the breakdown as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Compare compactor with gzip -6, zstd -3 and zstd -19 on one input file: bytes, ratio
    /// and MB/s, then the per-column breakdown of the table compactor wrote. Tables go to a
    /// temporary directory and are deleted.
    #[command(
        after_help = "Examples:\n  compactor bench access.log --format combined\n  compactor bench events.jsonl.gz --job job.toml --threads 2 --html bench.html\n\nThe file is decoded into memory for the text codecs: give it a sample (100 MB to 1 GB), not a day of logs."
    )]
    Bench {
        /// The input file (plain, gzip or zstd).
        path: PathBuf,
        /// Input format (see `compactor run --help`); default: the job's, else auto.
        #[arg(long)]
        format: Option<Format>,
        /// Use this job's settings (sort key, zstd level, schema...); its inputs and table
        /// are replaced by PATH and a temporary directory.
        #[arg(long)]
        job: Option<PathBuf>,
        /// Worker threads for compactor and zstd (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Also write the breakdown page (HTML) to this file.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Generate deterministic, realistic logs (for benchmarks and examples).
    #[command(
        after_help = "Example:\n  compactor gen --format json --lines 1000000 --seed 42 > events.jsonl\n  compactor gen --format combined --lines 100000 --seed 7 --output access.log"
    )]
    Gen {
        /// json or combined.
        #[arg(long)]
        format: compactor_bench_data::GenFormat,
        /// Lines to write (re-delivered duplicates included).
        #[arg(long)]
        lines: u64,
        /// Random seed: same seed, same bytes.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Share of lines that are exact re-deliveries of an earlier line.
        #[arg(long, default_value_t = compactor_bench_data::DEFAULT_DUPLICATE_SHARE)]
        duplicates: f64,
        /// Write here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// `compact --policy`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum PolicyName {
    /// Size-tiered (the default).
    Tiered,
    /// Everything below the target size.
    All,
}

/// Writes a command's report as JSON, when asked to.
fn write_report(path: Option<&std::path::Path>, report: &impl serde::Serialize) -> Result<()> {
    if let Some(p) = path {
        std::fs::write(p, serde_json::to_vec_pretty(report)?)
            .with_context(|| format!("writing report {}", p.display()))?;
    }
    Ok(())
}

/// `--threads`, or every core.
fn all_cores_or(threads: Option<usize>) -> usize {
    threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::vacuum::parse_duration(s).map_err(|e| format!("{e:#}"))
}

fn parse_size(s: &str) -> Result<usize, String> {
    job::parse_size(s).map(|n| n as usize)
}

fn parse_size_u64(s: &str) -> Result<u64, String> {
    job::parse_size(s)
}

/// `verify` found problems (exit code 6).
#[derive(Debug, thiserror::Error)]
#[error("verify found {0} problem(s); see above")]
struct VerifyFailed(usize);

/// Marks an error as the user's (exit code 2).
#[derive(Debug)]
struct UsageError;
impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("usage error")
    }
}
impl std::error::Error for UsageError {}

fn exit_code(e: &anyhow::Error) -> u8 {
    // `.context(UsageError)` is found by `downcast_ref`, not by `is` on the chain's causes.
    if e.downcast_ref::<UsageError>().is_some() {
        return 2;
    }
    for cause in e.chain() {
        if cause.is::<UsageError>() {
            return 2;
        }
        if cause.is::<VerifyFailed>() {
            return 6;
        }
        if cause.is::<run::JobError>()
            || matches!(
                cause.downcast_ref(),
                Some(compactor_engine::EngineError::Plan(_))
            )
        {
            return 2;
        }
        if cause.is::<run::TooManyRejected>() {
            return 3;
        }
        if let Some(
            compactor_engine::EngineError::ResourcesExhausted { .. }
            | compactor_engine::EngineError::SpillFull(_),
        ) = cause.downcast_ref()
        {
            return 4;
        }
        if cause.is::<run::Locked>()
            || cause.is::<run::Conflict>()
            || cause.is::<run::ConsumedConcurrently>()
        {
            return 5;
        }
    }
    1
}

/// The command-line entry point: parses arguments, runs, maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("COMPACTOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,compactor=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            let code = exit_code(&e);
            let msg = format!("{e:#}").replace("usage error: ", "");
            eprintln!("error: {msg}");
            ExitCode::from(code)
        }
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run {
            job,
            report,
            threads,
            memory,
            spill_dir,
            max_spill_bytes,
            run_bytes,
            no_progress,
        } => {
            let job = job::Job::load(&job).context(UsageError)?;
            let opts = run::RunOptions {
                threads: all_cores_or(threads),
                memory,
                spill_dir,
                max_spill_bytes,
                run_bytes,
                progress: !no_progress && std::io::stderr().is_terminal(),
            };
            let r = run::run(&job, &opts)?;
            eprintln!("{}", r.summary());
            write_report(report.as_deref(), &r)
        }
        Command::Compact {
            table,
            partition,
            target_size,
            policy,
            job,
            threads,
            memory,
            spill_dir,
            dry_run,
            report,
        } => {
            let job = job
                .map(|j| job::Job::load(&j).context(UsageError))
                .transpose()?;
            let opts = crate::compact::CompactOptions {
                partition,
                target_size,
                policy: match policy {
                    PolicyName::Tiered => Box::new(crate::compact::SizeTiered::default()),
                    PolicyName::All => Box::new(crate::compact::MergeAll),
                },
                threads: all_cores_or(threads),
                memory,
                spill_dir,
                output: job.as_ref().map(|j| j.output.clone()),
                dedup: job.as_ref().map(|j| j.dedup.clone()),
                dry_run,
            };
            let r = crate::compact::compact(&table, &opts)?;
            eprintln!("{}", r.summary());
            write_report(report.as_deref(), &r)
        }
        Command::Vacuum {
            table,
            retain,
            dry_run,
            report,
        } => {
            let r = crate::vacuum::vacuum(
                &table,
                &crate::vacuum::VacuumOptions {
                    retain,
                    dry_run,
                    now: std::time::SystemTime::now(),
                },
            )?;
            eprintln!("{}", r.summary());
            write_report(report.as_deref(), &r)
        }
        Command::Verify {
            table,
            quick,
            json,
            threads,
        } => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(all_cores_or(threads))
                .build()?;
            let r = pool.install(|| {
                crate::verify::verify(&table, &crate::verify::VerifyOptions { deep: !quick })
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("{}", r.summary());
            }
            if r.ok() {
                Ok(())
            } else {
                Err(anyhow::anyhow!(VerifyFailed(r.problems.len())))
            }
        }
        Command::Infer {
            paths,
            format,
            max_bytes,
        } => infer(&paths, format, max_bytes),
        Command::Parse {
            paths,
            job,
            format,
            pattern,
            record_start,
            threads,
            show_rejects,
        } => {
            let (mut opts, job_paths, max_decoded) = match job {
                Some(j) => {
                    let j = job::Job::load(&j).context(UsageError)?;
                    let o = j.parse_options().context(UsageError)?;
                    (o, j.input.paths.clone(), j.limits.max_decompressed_bytes)
                }
                None => (
                    ParseOptions::new(Format::Auto),
                    Vec::new(),
                    job::DEFAULT_MAX_DECOMPRESSED_BYTES,
                ),
            };
            let paths = if paths.is_empty() { job_paths } else { paths };
            if paths.is_empty() {
                return Err(anyhow::anyhow!("no input: give paths or --job")).context(UsageError);
            }
            if let Some(f) = format {
                opts.format = Some(f);
            }
            if pattern.is_some() {
                opts.pattern = pattern;
                opts.prepared.pattern = None;
            }
            if record_start.is_some() {
                opts.record_start = record_start;
                opts.prepared.record_start = None;
            }
            opts.prepare().context(UsageError)?;
            let threads = all_cores_or(threads);
            parse_files(&opts, &paths, max_decoded, threads, show_rejects)
        }
        Command::Inspect { table, html, json } => inspect(&table, html.as_deref(), json),
        Command::Bench {
            path,
            format,
            job,
            threads,
            html,
        } => {
            let job = match job {
                Some(j) => Some(job::Job::load(&j).context(UsageError)?),
                None => None,
            };
            let opts = bench::BenchOptions {
                path,
                format,
                job,
                threads: all_cores_or(threads),
            };
            bench_command(&opts, html.as_deref())
        }
        Command::Gen {
            format,
            lines,
            seed,
            duplicates,
            output,
        } => {
            let mut cfg = compactor_bench_data::GenConfig::new(format, lines, seed);
            cfg.duplicate_share = duplicates;
            let stats = match output {
                Some(p) => compactor_bench_data::generate(
                    &cfg,
                    std::io::BufWriter::new(std::fs::File::create(&p)?),
                )?,
                None => compactor_bench_data::generate(
                    &cfg,
                    std::io::BufWriter::new(std::io::stdout().lock()),
                )?,
            };
            tracing::info!(
                "wrote {} lines ({} re-delivered), {} bytes",
                stats.lines,
                stats.duplicates,
                stats.bytes
            );
            Ok(())
        }
    }
}

/// `compactor inspect`: the breakdown as text or JSON, and the HTML page if asked for.
fn inspect(table: &std::path::Path, html: Option<&std::path::Path>, json: bool) -> Result<()> {
    let files = crate::inspect::table_files(table).context(UsageError)?;
    let mut b = crate::inspect::breakdown(&files)?;
    b.source = table.display().to_string();
    let mut out = std::io::stdout().lock();
    if json {
        // Serialized first, so that a closed pipe is an io::Error (and exits quietly).
        let text = serde_json::to_string_pretty(&b)?;
        writeln!(out, "{text}")?;
    } else {
        write!(out, "{}", crate::inspect::render_text(&b))?;
    }
    if let Some(p) = html {
        std::fs::write(p, crate::inspect::render_html(&b))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// `compactor bench`: the comparison, then the breakdown of the table it wrote.
fn bench_command(opts: &bench::BenchOptions, html: Option<&std::path::Path>) -> Result<()> {
    let r = bench::bench(opts)?;
    let text = bench::render_text(&r);
    let mut out = std::io::stdout().lock();
    write!(out, "{text}")?;
    let Some(b) = &r.breakdown else {
        writeln!(out, "\nno table was written; nothing to break down")?;
        if let Some(p) = html {
            tracing::warn!("{} not written: no table to break down", p.display());
        }
        return Ok(());
    };
    let of = r.breakdown_of.as_deref().unwrap_or("compactor");
    writeln!(out, "\nbytes per column, {of}:")?;
    write!(out, "{}", crate::inspect::render_text(b))?;
    if let Some(p) = html {
        let title = format!("compactor bench: {}", r.input);
        std::fs::write(p, crate::inspect::render_html_page(b, &title, Some(&text)))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// `compactor parse`: parses every file as a run would (same chunks, same options), in
/// parallel, and prints what it found; writes nothing.
fn parse_files(
    opts: &ParseOptions,
    paths: &[String],
    max_decoded: u64,
    threads: usize,
    show_rejects: usize,
) -> Result<()> {
    use rayon::prelude::*;
    crate::run::keep_freed_memory();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let mut out = std::io::stdout().lock();
    let files = input::discover(paths)
        .context(UsageError)?
        .iter()
        .map(|p| input::stat(p))
        .collect::<Result<Vec<_>>>()?;
    let w = files
        .iter()
        .map(|f| f.display().chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    writeln!(
        out,
        "{:<w$} {:<28} {:>10} {:>10} {:>8} {:>6} {:>9}",
        "file", "format", "records", "rows", "rejected", "header", "MB/s"
    )?;
    let (mut total_bytes, mut total_secs, mut total_rejects) = (0u64, 0f64, 0u64);
    for file in files {
        let (head, opened) = run::open_with_head(&file, max_decoded, &Default::default())?;
        let (fopts, detection) = run::file_options(opts, &file, &head)?;
        let mut chunker = input::Chunker::new(
            opened.source,
            job::DEFAULT_CHUNK_BYTES,
            fopts.limits.max_line_bytes,
            fopts.framing(),
        );
        let started = std::time::Instant::now();
        let (mut records, mut rows, mut meta, mut lines) = (0u64, 0u64, 0u64, 0u64);
        let mut rejects = Vec::new();
        let mut rejected = 0u64;
        let mut error = None;
        let mut bytes = 0u64;
        loop {
            let mut window = Vec::new();
            while window.len() < 2 * threads {
                match chunker.next_chunk() {
                    Ok(Some(c)) => window.push(c),
                    Ok(None) => break,
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            if window.is_empty() {
                break;
            }
            let parsed: Vec<_> = pool.install(|| {
                window
                    .par_iter()
                    .map(|c| compactor_formats::parse_chunk(&fopts, c.bytes(), 1))
                    .collect()
            });
            for (c, p) in window.iter().zip(parsed) {
                let p = p?;
                bytes += c.bytes().len() as u64;
                for r in p
                    .rejects
                    .iter()
                    .take(show_rejects.saturating_sub(rejects.len()))
                {
                    rejects.push((r.line + lines, r.reason.clone()));
                }
                lines += p.lines;
                records += p.records;
                meta += p.meta_lines;
                rows += p.batch.num_rows() as u64;
                rejected += p.rejects.len() as u64;
            }
            if error.is_some() {
                break;
            }
        }
        let secs = started.elapsed().as_secs_f64();
        let format = match &detection {
            Some(d) => format!(
                "{}{} ({:.2})",
                d.format,
                d.layout.map(|l| format!(":{l}")).unwrap_or_default(),
                d.confidence
            ),
            None => fopts.format.map_or("?".into(), |f| f.to_string()),
        };
        writeln!(
            out,
            "{:<w$} {:<28} {:>10} {:>10} {:>8} {:>6} {:>9.1}",
            file.display(),
            format,
            records,
            rows,
            rejected,
            meta,
            bytes as f64 / 1e6 / secs.max(1e-9)
        )?;
        for (line, reason) in &rejects {
            writeln!(out, "    line {line}: {reason}")?;
        }
        if let Some(e) = error {
            writeln!(out, "    input error: {e:#}")?;
        }
        total_bytes += bytes;
        total_secs += secs;
        total_rejects += rejected;
    }
    tracing::info!(
        "parsed {:.1} MB in {:.2} s ({:.1} MB/s on {threads} threads), {total_rejects} rejected",
        total_bytes as f64 / 1e6,
        total_secs,
        total_bytes as f64 / 1e6 / total_secs.max(1e-9)
    );
    Ok(())
}

fn infer(paths: &[String], format: Format, max_bytes: usize) -> Result<()> {
    let mut opts = ParseOptions::new(format);
    opts.prepare().context(UsageError)?;
    let mut schemas = Vec::new();
    let (mut lines, mut rejected) = (0u64, 0u64);
    for path in input::discover(paths).context(UsageError)? {
        let f = input::stat(&path)?;
        let (head, opened) = run::open_with_head(&f, u64::MAX, &Default::default())?;
        let (opts, _) = run::file_options(&opts, &f, &head)?;
        let mut chunker = input::Chunker::new(
            opened.source,
            job::DEFAULT_CHUNK_BYTES,
            opts.limits.max_line_bytes,
            opts.framing(),
        );
        while let Some(c) = chunker.next_chunk()? {
            let p = parse_chunk(&opts, c.bytes(), 1)?;
            lines += p.lines;
            rejected += p.rejects.len() as u64;
            schemas.push(p.batch.schema());
            if chunker.bytes_read >= max_bytes as u64 {
                break;
            }
        }
    }
    let unified = schema::unify(None, schemas.iter().map(|s| s.as_ref()))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "# inferred by compactor infer from {lines} lines ({rejected} rejected)"
    )?;
    writeln!(out, "[schema]")?;
    for f in unified.fields() {
        let t = schema::ColumnType::from_data_type(f.data_type()).map_or("string", |t| t.name());
        let bare = f
            .name()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let key = if bare {
            f.name().clone()
        } else {
            serde_json::to_string(f.name())?
        };
        writeln!(out, "{key} = \"{t}\"")?;
    }
    Ok(())
}
