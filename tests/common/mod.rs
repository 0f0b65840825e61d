//! Helpers shared by the end-to-end tests: writing job files, running compactor in-process or
//! as a process, and reading a table back into comparable values.
//!
//! Tables are read with plain `parquet` (not through compactor's own reader paths), starting
//! from the live files of the current snapshot; partition columns come from the file paths.
#![allow(dead_code)]

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::{Array, AsArray, RecordBatch, RecordBatchReader};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType};
use compactor::run::{RunOptions, RunReport};
use compactor::table::Table;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

pub mod rollup;

/// The full `compactor` command line, built in the root package.
pub const CLI: &str = env!("CARGO_BIN_EXE_compactor-test-cli");

/// One cell value, comparable the way compactor orders rows: nulls first, numbers by value
/// (floats by IEEE total order, so `-0.0 < 0.0`), strings bytewise, `false < true`.
#[derive(Debug, Clone)]
pub enum Val {
    /// Null (also what a missing field reads as).
    Null,
    /// Boolean.
    Bool(bool),
    /// 64-bit integer.
    Int(i64),
    /// 64-bit float.
    Float(f64),
    /// Timestamp, microseconds since the epoch, UTC.
    Ts(i64),
    /// UTF-8 string.
    Str(String),
}

impl Val {
    fn rank(&self) -> u8 {
        match self {
            Val::Null => 0,
            Val::Bool(_) => 1,
            Val::Int(_) => 2,
            Val::Float(_) => 3,
            Val::Ts(_) => 4,
            Val::Str(_) => 5,
        }
    }

    /// Whether this is [`Val::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    /// The value as JSON (timestamps as integer microseconds), for messages and comparisons
    /// with other readers.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Val::Null => serde_json::Value::Null,
            Val::Bool(b) => (*b).into(),
            Val::Int(i) | Val::Ts(i) => (*i).into(),
            Val::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|| serde_json::Value::String(f.to_string())),
            Val::Str(s) => s.clone().into(),
        }
    }
}

impl Ord for Val {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Val::Null, Val::Null) => Ordering::Equal,
            (Val::Bool(a), Val::Bool(b)) => a.cmp(b),
            (Val::Int(a), Val::Int(b)) | (Val::Ts(a), Val::Ts(b)) => a.cmp(b),
            (Val::Float(a), Val::Float(b)) => a.total_cmp(b),
            (Val::Str(a), Val::Str(b)) => a.as_bytes().cmp(b.as_bytes()),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}
impl PartialOrd for Val {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Val {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Val {}

/// The value of row `i` of `array`. Panics on a type compactor does not write.
pub fn val_at(array: &dyn Array, i: usize) -> Val {
    if array.is_null(i) {
        return Val::Null;
    }
    match array.data_type() {
        DataType::Null => Val::Null,
        DataType::Boolean => Val::Bool(array.as_boolean().value(i)),
        DataType::Int64 => Val::Int(array.as_primitive::<Int64Type>().value(i)),
        // narrowed integers and UUIDs (layout.rs) read as the values they were parsed as
        DataType::Int8 | DataType::Int16 | DataType::Int32 => Val::Int(
            arrow::compute::cast(&array.slice(i, 1), &DataType::Int64)
                .unwrap()
                .as_primitive::<Int64Type>()
                .value(0),
        ),
        DataType::FixedSizeBinary(16) => {
            let b = array.as_fixed_size_binary().value(i);
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            Val::Str(format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            ))
        }
        DataType::Float64 => Val::Float(array.as_primitive::<Float64Type>().value(i)),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Val::Ts(array.as_primitive::<TimestampMicrosecondType>().value(i))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => Val::Ts(
            array
                .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
                .value(i)
                * 1000,
        ),
        DataType::Utf8 => Val::Str(array.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Val::Str(array.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Val::Str(array.as_string_view().value(i).to_string()),
        t => panic!("unexpected column type {t}"),
    }
}

/// A column name and its Arrow type.
pub type Column = (String, DataType);

/// The columns and rows of one Parquet file, in file order.
#[derive(Debug, Clone)]
pub struct FileRows {
    /// Columns in file order.
    pub columns: Vec<Column>,
    /// Rows, each in column order.
    pub rows: Vec<Vec<Val>>,
}

/// The type a column has in the table: narrowed integers are `Int64`, 16-byte UUIDs `Utf8`
/// (the values read back as the parsed ones; `physical_types` shows the written types).
pub fn logical_type(t: &DataType) -> DataType {
    match t {
        DataType::Int8 | DataType::Int16 | DataType::Int32 => DataType::Int64,
        DataType::FixedSizeBinary(16) => DataType::Utf8,
        DataType::Timestamp(TimeUnit::Millisecond, tz) => {
            DataType::Timestamp(TimeUnit::Microsecond, tz.clone())
        }
        t => t.clone(),
    }
}

/// The written (Arrow) type of each column of a Parquet file.
pub fn physical_types(path: &Path) -> Vec<Column> {
    let f = File::open(path).unwrap();
    let b = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    b.schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect()
}

/// Reads a whole Parquet file.
pub fn read_parquet(path: &Path) -> FileRows {
    let f = File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .with_batch_size(8192)
        .build()
        .unwrap();
    let schema = reader.schema();
    let columns: Vec<Column> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), logical_type(f.data_type())))
        .collect();
    let mut rows = Vec::new();
    for batch in reader {
        let batch: RecordBatch = batch.unwrap();
        for i in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| val_at(c.as_ref(), i))
                    .collect(),
            );
        }
    }
    FileRows { columns, rows }
}

/// Decodes `%XX` escapes (as in the paths of the Delta log).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).expect("percent-decoded path is UTF-8")
}

/// A live file of a table: its path as in the log, on disk, and its partition values.
#[derive(Debug, Clone)]
pub struct LiveFile {
    /// The path as the Delta log has it (relative, maybe percent-encoded).
    pub logged: String,
    /// The absolute path on disk.
    pub path: PathBuf,
    /// `name=value` directory components of the path (Hive-style partition values).
    pub partitions: Vec<(String, String)>,
}

/// The live files of the table at `dir`, in the order the log lists them (sorted).
pub fn live_files(dir: &Path) -> Vec<LiveFile> {
    let table = Table::open(dir).unwrap();
    let root = table.root().to_path_buf();
    table
        .live_files()
        .unwrap()
        .into_iter()
        .map(|logged| {
            let decoded = percent_decode(&logged);
            assert!(
                !Path::new(&decoded).is_absolute() && !decoded.split('/').any(|c| c == ".."),
                "live file path {logged:?} escapes the table"
            );
            let path = root.join(&decoded);
            let mut partitions = Vec::new();
            let comps: Vec<&str> = decoded.split('/').collect();
            for c in &comps[..comps.len() - 1] {
                if let Some((k, v)) = c.split_once('=') {
                    partitions.push((k.to_string(), v.to_string()));
                }
            }
            LiveFile {
                logged,
                path,
                partitions,
            }
        })
        .collect()
}

/// The table's version, if it exists.
pub fn table_version(dir: &Path) -> Option<u64> {
    Table::open(dir).unwrap().version()
}

/// Rows of all live files concatenated in log order; every file must have the same columns.
pub fn read_table_ordered(dir: &Path) -> FileRows {
    let mut out: Option<FileRows> = None;
    for f in live_files(dir) {
        let fr = read_parquet(&f.path);
        match &mut out {
            None => out = Some(fr),
            Some(o) => {
                assert_eq!(o.columns, fr.columns, "live files have different columns");
                o.rows.extend(fr.rows);
            }
        }
    }
    out.unwrap_or(FileRows {
        columns: Vec::new(),
        rows: Vec::new(),
    })
}

/// A row as a map of its non-null values (so that a missing column and a null are the same).
pub type Record = BTreeMap<String, Val>;

/// Every row of the table (partition values included, as strings) as [`Record`]s, sorted: a
/// multiset that does not depend on how rows are spread over files.
pub fn read_table_records(dir: &Path) -> Vec<Record> {
    let mut out = Vec::new();
    for f in live_files(dir) {
        let fr = read_parquet(&f.path);
        for row in fr.rows {
            let mut r: Record = fr
                .columns
                .iter()
                .zip(row)
                .filter(|(_, v)| !v.is_null())
                .map(|((n, _), v)| (n.clone(), v))
                .collect();
            for (k, v) in &f.partitions {
                if v != "__HIVE_DEFAULT_PARTITION__" {
                    r.insert(k.clone(), Val::Str(v.clone()));
                }
            }
            out.push(r);
        }
    }
    out.sort();
    out
}

/// Every quarantined record of the table at `table` (its `_compactor/quarantine` files in
/// path order), as JSON.
pub fn quarantine(table: &Path) -> Vec<serde_json::Value> {
    files_under(&table.join("_compactor/quarantine"))
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every regular file under `dir`, recursively, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// Every data `.parquet` file under `dir` (not the log's checkpoints), and every segment
/// still being written (`.parquet.tmp`).
pub fn parquet_files_under(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| {
            let name = p.to_string_lossy();
            (name.ends_with(".parquet") || name.ends_with(".parquet.tmp"))
                && !name.contains("/_delta_log/")
        })
        .collect()
}

/// Asserts that every Parquet file under the table directory is a live file (no orphans).
pub fn assert_no_orphans(dir: &Path) {
    let root = dir.canonicalize().unwrap();
    let live: Vec<PathBuf> = live_files(dir).into_iter().map(|f| f.path).collect();
    for p in parquet_files_under(&root) {
        assert!(
            live.contains(&p),
            "{} is not referenced by the table (live: {live:?})",
            p.display()
        );
    }
}

/// Names of the commit files in `_delta_log`.
pub fn commits(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("_delta_log"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A TOML string literal.
pub fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A TOML array of string literals.
pub fn toml_list(items: &[&str]) -> String {
    let v: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", v.join(", "))
}

/// Job file text: `[input]` and `[output]` with the given paths and format, then `extra`.
pub fn job_text(
    inputs: &[&str],
    format: &str,
    table: &str,
    sort_by: &[&str],
    extra: &str,
) -> String {
    format!(
        "[input]\npaths = {}\nformat = {}\n\n[output]\npath = {}\nsort_by = {}\n{extra}",
        toml_list(inputs),
        toml_str(format),
        toml_str(table),
        toml_list(sort_by),
    )
}

/// Writes a job file `name` into `dir`; returns its path.
pub fn write_job(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Run options for in-process runs.
pub fn opts(threads: usize) -> RunOptions {
    RunOptions {
        threads,
        memory: Some(1 << 30),
        spill_dir: None,
        max_spill_bytes: None,
        run_bytes: None,
        progress: false,
    }
}

/// Loads and runs a job file in-process; checks the report's accounting.
pub fn run_job(job: &Path, threads: usize) -> RunReport {
    let j = compactor::job::Job::load(job).unwrap();
    let r = compactor::run::run(&j, &opts(threads))
        .unwrap_or_else(|e| panic!("run of {} failed: {e:#}", job.display()));
    assert_eq!(
        r.records_in,
        r.rows_out + r.duplicates + r.rejected,
        "accounting: {r:?}"
    );
    assert!(r.records_in + r.meta_lines <= r.lines_in, "{r:?}");
    assert_eq!(r.reserved_at_end, 0, "memory reservations back to 0: {r:?}");
    r
}

/// Runs the CLI with `args`, and the given environment variables.
pub fn cli(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(CLI);
    c.args(args).env_remove("COMPACTOR_FAILPOINT");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("running the compactor CLI")
}

/// Runs `compactor run JOB --report F --threads N`; returns the output and the report (if the
/// run wrote one).
pub fn cli_run(
    job: &Path,
    threads: usize,
    envs: &[(&str, &str)],
) -> (Output, Option<serde_json::Value>) {
    let report = job.with_extension(format!("report-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&report);
    let out = cli(
        &[
            "run",
            job.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "--threads",
            &threads.to_string(),
            "--no-progress",
        ],
        envs,
    );
    let rep = std::fs::read(&report)
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap());
    let _ = std::fs::remove_file(&report);
    (out, rep)
}

/// stderr of a process as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The python of the reader venv that `tests/setup-pyreader.sh` makes (or reuses), or why
/// there is none (no python3, no network).
pub fn pyreader_venv() -> Result<PathBuf, String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/setup-pyreader.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("").trim();
    if last.is_empty() || !Path::new(last).exists() {
        return Err(format!("{} printed no python path", script.display()));
    }
    Ok(PathBuf::from(last))
}
