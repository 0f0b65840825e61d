//! Size reduction on real third-party logs (issue 5): for every file over 1 MB in
//! `../shared/corpus/`, compactor with `format = "auto"` and `sort_by = "auto"` must write fewer
//! Parquet bytes than `zstd -19` of the raw file, and fewer than DuckDB's zstd Parquet of the
//! same rows sorted by the same key (the key compactor chose, from the run report).
//!
//! DuckDB reads compactor's own output and writes it again,
//! `COPY (SELECT * FROM read_parquet([...]) ORDER BY key) TO ... (FORMAT parquet, COMPRESSION
//! zstd)`, so the rows are the same and only the writer differs. Its Python comes from
//! `COMPACTOR_TEST_PYTHON` when that one imports `duckdb`, else from the venv
//! `tests/setup-pyreader.sh` makes; without one the DuckDB half prints `SKIPPED: ...` and the
//! zstd half still runs. Without the corpus folder the whole test prints `SKIPPED: ...` and
//! passes. The figures are printed as a table (`cargo test --test corpus_reduction --
//! --nocapture`). `benches/reduction.sh` measures the same and more, on a release build.

mod common;
mod shared_corpus;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Files at least this large are checked.
const MIN_BYTES: u64 = 1_000_000;

/// argv: OUT KEY_JSON FILE... ; prints {"rows": N, "bytes": N}.
const DUCKDB: &str = r#"
import json, os, sys
import duckdb

out, key, files = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
def lit(s):
    return "'" + s.replace("'", "''") + "'"
q = "SELECT * FROM read_parquet([%s], union_by_name = true)" % ", ".join(lit(f) for f in files)
if key:
    q += " ORDER BY " + ", ".join('"' + c.replace('"', '""') + '"' for c in key)
con = duckdb.connect()
con.execute("COPY (%s) TO %s (FORMAT parquet, COMPRESSION zstd)" % (q, lit(out)))
rows = con.execute("SELECT count(*) FROM read_parquet(%s)" % lit(out)).fetchone()[0]
print(json.dumps({"rows": rows, "bytes": os.path.getsize(out)}))
"#;

fn corpus() -> Option<PathBuf> {
    shared_corpus::dir("", "corpus size reduction")
}

/// Corpus files of at least `MIN_BYTES`, sorted.
fn big_files(dir: &Path) -> Vec<PathBuf> {
    common::files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "md"))
        .filter(|p| std::fs::metadata(p).unwrap().len() >= MIN_BYTES)
        .collect()
}

fn imports_duckdb(py: &Path) -> bool {
    Command::new(py)
        .args(["-c", "import duckdb, pyarrow"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A python with `duckdb`, or why there is none.
fn duckdb_python() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("COMPACTOR_TEST_PYTHON") {
        let p = PathBuf::from(p);
        if imports_duckdb(&p) {
            return Ok(p);
        }
    }
    let py = common::pyreader_venv()?;
    if !imports_duckdb(&py) {
        return Err(format!("{} cannot import duckdb", py.display()));
    }
    Ok(py)
}

/// The sort key from a run report: `sort_key`, a list of column names (or one
/// comma-separated string).
fn report_key(report: &serde_json::Value) -> Vec<String> {
    match report.get("sort_key") {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().expect("sort_key holds strings").to_string())
            .collect(),
        Some(serde_json::Value::String(s)) => s
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect(),
        other => panic!("run report: sort_key is {other:?}; report: {report}"),
    }
}

struct Figures {
    name: String,
    raw: u64,
    zstd19: u64,
    compactor: u64,
    rows: u64,
    key: Vec<String>,
    duckdb: Option<u64>,
    compactor_secs: f64,
    zstd_secs: f64,
}

fn ratio(a: u64, b: u64) -> String {
    format!("{:.2}x", a as f64 / b as f64)
}

#[test]
fn compactor_auto_is_smaller_than_zstd19_and_duckdb_on_the_corpus() {
    let Some(dir) = corpus() else { return };
    let files = big_files(&dir);
    assert!(
        !files.is_empty(),
        "no corpus file of {MIN_BYTES} bytes or more"
    );
    let py = duckdb_python();
    if let Err(why) = &py {
        eprintln!(
            "SKIPPED: the DuckDB comparison: no Python with duckdb: {why}. Set \
             COMPACTOR_TEST_PYTHON or run tests/setup-pyreader.sh."
        );
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut figures = Vec::new();
    for path in &files {
        let name = path.strip_prefix(&dir).unwrap().display().to_string();
        let tmp = tempfile::tempdir().unwrap();
        let job = common::write_job(
            tmp.path(),
            "job.toml",
            &format!(
                "[input]\npaths = [{}]\nformat = \"auto\"\n\n[output]\npath = \"table\"\nsort_by = \"auto\"\n",
                common::toml_str(path.to_str().unwrap())
            ),
        );
        let t = Instant::now();
        let (out, report) = common::cli_run(&job, threads, &[]);
        let compactor_secs = t.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "{name}: compactor run failed ({}):\n{}",
            out.status,
            common::stderr(&out)
        );
        let report = report.unwrap_or_else(|| panic!("{name}: no run report"));
        let n = |k: &str| {
            report[k]
                .as_u64()
                .unwrap_or_else(|| panic!("report {k}: {report}"))
        };
        assert_eq!(
            n("records_in"),
            n("rows_out") + n("duplicates") + n("rejected"),
            "{name}: accounting"
        );
        let table = tmp.path().join("table");
        let live: Vec<PathBuf> = common::live_files(&table)
            .into_iter()
            .map(|f| f.path)
            .collect();
        let compactor: u64 = live
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        let key = report_key(&report);

        let raw = std::fs::read(path).unwrap();
        let t = Instant::now();
        let zstd19 = zstd::bulk::compress(&raw, 19).unwrap().len() as u64;
        let zstd_secs = t.elapsed().as_secs_f64();

        let duckdb = py.as_ref().ok().map(|py| {
            let out_file = tmp.path().join("duckdb.parquet");
            let o = Command::new(py)
                .arg("-c")
                .arg(DUCKDB)
                .arg(&out_file)
                .arg(serde_json::to_string(&key).unwrap())
                .args(&live)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{name}: DuckDB rewrite failed:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(
                v["rows"].as_u64(),
                Some(n("rows_out")),
                "{name}: DuckDB rows"
            );
            v["bytes"].as_u64().unwrap()
        });
        figures.push(Figures {
            name,
            raw: raw.len() as u64,
            zstd19,
            compactor,
            rows: n("rows_out"),
            key,
            duckdb,
            compactor_secs,
            zstd_secs,
        });
    }

    let w = figures
        .iter()
        .map(|f| f.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:w$}  {:>10}  {:>8}  {:>10}  {:>10}  {:>10}  {:>9}  {:>9}  {:>11}  {:>12}  key",
        "file",
        "raw",
        "rows",
        "zstd -19",
        "DuckDB",
        "compactor",
        "raw/comp",
        "zstd/comp",
        "DuckDB/comp",
        "secs(c, z)",
    );
    let mut failures = Vec::new();
    for f in &figures {
        let duck = f.duckdb.map_or("n/a".to_string(), |d| d.to_string());
        let duck_ratio = f
            .duckdb
            .map_or("n/a".to_string(), |d| ratio(d, f.compactor));
        println!(
            "{:w$}  {:>10}  {:>8}  {:>10}  {:>10}  {:>10}  {:>9}  {:>9}  {:>11}  {:>12}  {}",
            f.name,
            f.raw,
            f.rows,
            f.zstd19,
            duck,
            f.compactor,
            ratio(f.raw, f.compactor),
            ratio(f.zstd19, f.compactor),
            duck_ratio,
            format!("{:.1}, {:.1}", f.compactor_secs, f.zstd_secs),
            f.key.join(","),
        );
        if f.compactor >= f.zstd19 {
            failures.push(format!(
                "{}: compactor {} bytes >= zstd -19 {} bytes",
                f.name, f.compactor, f.zstd19
            ));
        }
        if let Some(d) = f.duckdb {
            if f.compactor >= d {
                failures.push(format!(
                    "{}: compactor {} bytes >= DuckDB {} bytes (key {})",
                    f.name,
                    f.compactor,
                    d,
                    f.key.join(",")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
