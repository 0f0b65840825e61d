//! An independent reader: the Python `deltalake` package (delta-rs) with `pyarrow`, which shares
//! no code with compactor or delta_kernel's Rust engine, must read compactor's tables (plain
//! and partitioned, at each version) and see exactly the rows the live files hold.
//!
//! The Python comes from `COMPACTOR_TEST_PYTHON` (a python with `deltalake` and `pyarrow`), or
//! from the venv `tests/setup-pyreader.sh` makes (default `target/pyreader-venv`). Without
//! either (no network, no python3) the test prints `SKIPPED: ...` to stderr and passes.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use arrow::datatypes::DataType;
use common::{Record, Val};

const READER: &str = r#"
import json, sys
import deltalake
import pyarrow as pa

path = sys.argv[1]
version = int(sys.argv[2]) if len(sys.argv) > 2 else None
dt = deltalake.DeltaTable(path) if version is None else deltalake.DeltaTable(path, version=version)
t = dt.to_pyarrow_table()
cols = {}
floats = set()
for name in t.column_names:
    c = t.column(name)
    if pa.types.is_timestamp(c.type):
        c = c.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    if pa.types.is_floating(c.type):
        floats.add(name)
    cols[name] = c.to_pylist()
print(json.dumps({
    "version": dt.version(),
    "history": len(dt.history()),
    "columns": [[f.name, str(f.type)] for f in t.schema],
    "num_rows": t.num_rows,
}))
for i in range(t.num_rows):
    row = {}
    for name, values in cols.items():
        v = values[i]
        if v is None:
            continue
        # floats as repr text: parsed exactly on the Rust side
        row[name] = repr(v) if name in floats else v
    print(json.dumps(row, ensure_ascii=False))
"#;

/// The python to use, or why there is none.
fn python() -> &'static Result<PathBuf, String> {
    static PY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PY.get_or_init(|| {
        if let Some(p) = std::env::var_os("COMPACTOR_TEST_PYTHON") {
            // Asked for explicitly: it must work.
            let p = PathBuf::from(p);
            let ok = Command::new(&p)
                .args(["-c", "import deltalake, pyarrow"])
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "COMPACTOR_TEST_PYTHON={} cannot import deltalake and pyarrow",
                p.display()
            );
            return Ok(p);
        }
        common::pyreader_venv()
    })
}

/// What the Python reader saw.
struct PyRead {
    version: u64,
    history: usize,
    columns: Vec<String>,
    records: Vec<Record>,
}

fn py_read(py: &Path, table: &Path, version: Option<u64>) -> PyRead {
    let mut cmd = Command::new(py);
    cmd.arg("-c").arg(READER).arg(table);
    if let Some(v) = version {
        cmd.arg(v.to_string());
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "python reader failed on {}:\n{}",
        table.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let head: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    // Types from the table's own (Delta) schema, so that JSON values map back unambiguously.
    let schema = compactor::table::Table::open(table)
        .unwrap()
        .schema()
        .unwrap()
        .unwrap();
    let mut records = Vec::new();
    for line in lines {
        let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
        let mut r = Record::new();
        for (name, v) in obj {
            let field = schema
                .field_with_name(&name)
                .unwrap_or_else(|_| panic!("python sees a column {name:?} the table lacks"));
            let val = match field.data_type() {
                DataType::Int64 => Val::Int(v.as_i64().unwrap()),
                DataType::Timestamp(..) => Val::Ts(v.as_i64().unwrap()),
                DataType::Float64 => Val::Float(v.as_str().unwrap().parse().unwrap()),
                DataType::Boolean => Val::Bool(v.as_bool().unwrap()),
                DataType::Utf8 => Val::Str(v.as_str().unwrap().to_string()),
                t => panic!("column {name} has type {t}"),
            };
            r.insert(name, val);
        }
        records.push(r);
    }
    assert_eq!(records.len() as u64, head["num_rows"].as_u64().unwrap());
    records.sort();
    PyRead {
        version: head["version"].as_u64().unwrap(),
        history: head["history"].as_u64().unwrap() as usize,
        columns: head["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c[0].as_str().unwrap().to_string())
            .collect(),
        records,
    }
}

fn event_ids(records: &[Record]) -> BTreeSet<String> {
    records
        .iter()
        .map(|r| match r.get("event_id") {
            Some(Val::Str(s)) => s.clone(),
            other => panic!("event_id is {other:?}"),
        })
        .collect()
}

fn gen(path: &Path, lines: u64, seed: u64, mean_interval_ms: f64) {
    let mut cfg =
        compactor_bench_data::GenConfig::new(compactor_bench_data::GenFormat::Json, lines, seed);
    cfg.mean_interval_ms = mean_interval_ms;
    let f = std::fs::File::create(path).unwrap();
    compactor_bench_data::generate(&cfg, f).unwrap();
}

fn compare(py: &Path, table: &Path, version: Option<u64>, expect: &[Record]) -> PyRead {
    let read = py_read(py, table, version);
    assert_eq!(read.records.len(), expect.len(), "{}", table.display());
    assert_eq!(event_ids(&read.records), event_ids(expect));
    if let Some((i, (a, b))) = read
        .records
        .iter()
        .zip(expect)
        .enumerate()
        .find(|(_, (a, b))| a != b)
    {
        panic!(
            "{} row {i}: python read\n{a:?}\nbut the live files hold\n{b:?}",
            table.display()
        );
    }
    read
}

#[test]
fn python_deltalake_reads_the_same_rows() {
    let py = match python() {
        Ok(p) => p.clone(),
        Err(why) => {
            eprintln!("SKIPPED: independent reader test: no Python with deltalake and pyarrow: {why}. Set COMPACTOR_TEST_PYTHON or run tests/setup-pyreader.sh.");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    // ~3000 events over about two days (so the partitioned table has several partitions)
    gen(&d.join("in/a.jsonl"), 3000, 5, 60_000.0);

    let plain = d.join("plain");
    let parts = d.join("parts");
    let plain_job = common::write_job(
        d,
        "plain.toml",
        &common::job_text(&["in"], "json", "plain", &["event", "ts"], ""),
    );
    let parts_job = common::write_job(
        d,
        "parts.toml",
        &common::job_text(
            &["in"],
            "json",
            "parts",
            &["user_id"],
            "\n[output.partition]\ncolumn = \"ts\"\nby = \"day\"\n",
        ),
    );
    for job in [&plain_job, &parts_job] {
        let r = common::run_job(job, 2);
        assert_eq!((r.committed, r.version), (true, Some(0)));
        assert!(r.duplicates > 0);
    }
    assert!(common::live_files(&parts).len() >= 2);

    // version 0
    let v0_plain = common::read_table_records(&plain);
    let v0_parts = common::read_table_records(&parts);
    let read = compare(&py, &plain, None, &v0_plain);
    assert_eq!(read.version, 0);
    assert_eq!(Some(read.version), common::table_version(&plain));
    assert_eq!(read.history, 1);
    let schema = compactor::table::Table::open(&plain)
        .unwrap()
        .schema()
        .unwrap()
        .unwrap();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(read.columns, names);
    let read = compare(&py, &parts, None, &v0_parts);
    assert_eq!(read.version, 0);
    assert!(read.columns.contains(&"dt".to_string()));

    // version 1: another file, with new events and re-deliveries of old ones
    gen(&d.join("in/b.jsonl"), 2000, 6, 60_000.0);
    for job in [&plain_job, &parts_job] {
        let r = common::run_job(job, 2);
        assert_eq!((r.committed, r.version, r.files_in), (true, Some(1), 1));
    }
    for (table, v0) in [(&plain, &v0_plain), (&parts, &v0_parts)] {
        let now = common::read_table_records(table);
        assert!(now.len() > v0.len());
        let read = compare(&py, table, None, &now);
        assert_eq!(read.version, 1);
        assert_eq!(Some(read.version), common::table_version(table));
        assert_eq!(read.history, 2);
        // time travel to version 0 sees the first run's rows only
        let old = compare(&py, table, Some(0), v0);
        assert_eq!(old.version, 0);
    }

    // compaction: remove + add (dataChange = false), duplicates across the two runs dropped;
    // deltalake reads the compacted snapshot, and still time-travels to version 1
    for (table, v0) in [(&plain, &v0_plain), (&parts, &v0_parts)] {
        let before = common::read_table_records(table);
        let v1 = common::table_version(table).unwrap();
        let rep = compactor::compact::compact(
            table,
            &compactor::compact::CompactOptions {
                policy: Box::new(compactor::compact::MergeAll),
                threads: 2,
                memory: Some(256 << 20),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(rep.groups.iter().all(|g| g.committed), "{rep:?}");
        let now = common::read_table_records(table);
        assert!(now.len() <= before.len());
        assert_eq!(event_ids(&now), event_ids(&before));
        let read = compare(&py, table, None, &now);
        assert_eq!(Some(read.version), common::table_version(table));
        compare(&py, table, Some(v1), &before);
        let _ = v0;
        // enough commits for a checkpoint (every 10 versions): deltalake reads through it
        let job = if table == &plain {
            &plain_job
        } else {
            &parts_job
        };
        let mut n = 0;
        while common::table_version(table).unwrap() < 12 {
            gen(&d.join(format!("in/c{n}.jsonl")), 20, 100 + n, 60_000.0);
            common::run_job(job, 2);
            n += 1;
        }
        assert!(table
            .join("_delta_log/00000000000000000010.checkpoint.parquet")
            .exists());
        let now = common::read_table_records(table);
        compare(&py, table, None, &now);
    }
}

/// Reads a rollup table with `deltalake`/`pyarrow` (and DuckDB, when the venv has it), checks
/// it against the detailed table aggregated in Python, and, when the venv has the
/// `datasketches` package (the DataSketches C++ library), decodes the stored sketches with it:
/// the HLL estimates and t-digest quantiles must be the readable columns, and HLL sketches
/// rebuilt in Python from the detailed table's values (ints and strings hashed by the C++
/// library) must union with the stored ones without growing: the stored sketches are
/// binary- and hash-compatible with DataSketches in C++ and Java.
const ROLLUP_READER: &str = r#"
import json, sys
import deltalake
import pyarrow as pa
import pyarrow.parquet as pq

detail_path, rollup_path = sys.argv[1], sys.argv[2]
errors = []
def fail(msg):
    errors.append(msg)

def ints(col):
    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return col.to_pylist()

rdt = deltalake.DeltaTable(rollup_path)
r = rdt.to_pyarrow_table()
names = r.column_names
for c in ["ts", "event", "country", "device.os", "events", "br_sum", "br_min", "br_max",
          "users", "users_hll", "sessions", "sessions_hll", "br_p50", "br_p95", "br_p99",
          "br_tdigest", "dt"]:
    if c not in names:
        fail(f"rollup has no column {c}: {names}")
if errors:
    print(json.dumps({"errors": errors}))
    sys.exit(1)
if not pa.types.is_timestamp(r.schema.field("ts").type):
    fail(f"ts is {r.schema.field('ts').type}")
for c in ["users_hll", "sessions_hll", "br_tdigest"]:
    if not pa.types.is_binary(r.schema.field(c).type) and not pa.types.is_large_binary(r.schema.field(c).type):
        fail(f"{c} is {r.schema.field(c).type}")

# the files themselves, with plain pyarrow.parquet
files = rdt.file_uris()
n_files = sum(pq.read_table(f.replace("file://", "")).num_rows for f in files)
if n_files != r.num_rows:
    fail(f"the live files hold {n_files} rows, deltalake reads {r.num_rows}")

# the detailed table, aggregated here: the oracle
d = deltalake.DeltaTable(detail_path).to_pyarrow_table()
HOUR = 3600 * 1000000
dcols = {n: (ints(d.column(n)) if n == "ts" else d.column(n).to_pylist())
         for n in ["ts", "event", "country", "device.os", "user_id", "session_id",
                   "playback.bitrate_kbps"]}
groups = {}
for i in range(d.num_rows):
    key = (dcols["ts"][i] // HOUR * HOUR, dcols["event"][i], dcols["country"][i],
           dcols["device.os"][i])
    g = groups.setdefault(key, {"count": 0, "br": [], "users": set(), "sessions": set()})
    g["count"] += 1
    b = dcols["playback.bitrate_kbps"][i]
    if b is not None:
        g["br"].append(b)
    if dcols["user_id"][i] is not None:
        g["users"].add(dcols["user_id"][i])
    if dcols["session_id"][i] is not None:
        g["sessions"].add(dcols["session_id"][i])

rc = {n: (ints(r.column(n)) if n == "ts" else r.column(n).to_pylist()) for n in names}
seen = set()
for i in range(r.num_rows):
    key = (rc["ts"][i], rc["event"][i], rc["country"][i], rc["device.os"][i])
    if key in seen:
        fail(f"group {key} twice")
    seen.add(key)
    g = groups.get(key)
    if g is None:
        fail(f"group {key} is not in the detailed table")
        continue
    if rc["events"][i] != g["count"]:
        fail(f"{key}: events {rc['events'][i]}, the detailed table has {g['count']}")
    want_sum = sum(g["br"]) if g["br"] else None
    if rc["br_sum"][i] != want_sum:
        fail(f"{key}: br_sum {rc['br_sum'][i]}, want {want_sum}")
    if rc["br_min"][i] != (min(g["br"]) if g["br"] else None):
        fail(f"{key}: br_min {rc['br_min'][i]}")
    if rc["br_max"][i] != (max(g["br"]) if g["br"] else None):
        fail(f"{key}: br_max {rc['br_max'][i]}")
    for c, exact in [("users", len(g["users"])), ("sessions", len(g["sessions"]))]:
        if abs(rc[c][i] - exact) > max(1, 0.02 * exact):
            fail(f"{key}: {c} {rc[c][i]}, exact {exact}")
missing = set(groups) - seen
if missing:
    fail(f"{len(missing)} groups missing, e.g. {sorted(missing, key=str)[:3]}")

have_ds = False
try:
    import datasketches as ds
    have_ds = True
except ImportError:
    pass
sketches = 0
if have_ds:
    for i in range(r.num_rows):
        key = (rc["ts"][i], rc["event"][i], rc["country"][i], rc["device.os"][i])
        g = groups.get(key)
        if g is None:
            continue
        for c, values in [("users", g["users"]), ("sessions", g["sessions"])]:
            sk = ds.hll_sketch.deserialize(rc[c + "_hll"][i])
            if sk.lg_config_k != 14 or sk.tgt_type != ds.tgt_hll_type.HLL_4:
                fail(f"{key}: {c}_hll has lg_k {sk.lg_config_k}, type {sk.tgt_type}")
            est = sk.get_estimate()
            if abs(est - rc[c][i]) > max(1, 0.001 * est):
                fail(f"{key}: {c} = {rc[c][i]} but the C++ library estimates {est}")
            rebuilt = ds.hll_sketch(14, ds.tgt_hll_type.HLL_4)
            for v in values:
                rebuilt.update(v)
            u = ds.hll_union(14)
            u.update(sk)
            before = u.get_estimate()
            u.update(rebuilt)
            after = u.get_estimate()
            if abs(after - before) > max(0.5, 0.005 * before):
                fail(f"{key}: {c}_hll unioned with a sketch of the same {len(values)} values "
                     f"built by the C++ library grows from {before} to {after}: different hashing")
            sketches += 1
        td = ds.tdigest_double.deserialize(rc["br_tdigest"][i])
        if td.get_total_weight() != len(g["br"]):
            fail(f"{key}: br_tdigest weight {td.get_total_weight()}, {len(g['br'])} values")
        if g["br"]:
            if td.get_min_value() != min(g["br"]) or td.get_max_value() != max(g["br"]):
                fail(f"{key}: br_tdigest min/max {td.get_min_value()}/{td.get_max_value()}")
            for q, c in [(0.5, "br_p50"), (0.95, "br_p95"), (0.99, "br_p99")]:
                x = td.get_quantile(q)
                if abs(x - rc[c][i]) > 1e-6 * max(1.0, abs(x)):
                    fail(f"{key}: {c} = {rc[c][i]} but the C++ library's quantile({q}) = {x}")
        sketches += 1

have_duckdb = False
try:
    import duckdb
    have_duckdb = True
except ImportError:
    pass
if have_duckdb:
    paths = [f.replace("file://", "") for f in files]
    con = duckdb.connect()
    n, total = con.execute("SELECT count(*), sum(events) FROM read_parquet(?)", [paths]).fetchone()
    if n != r.num_rows or total != d.num_rows:
        fail(f"duckdb reads {n} rows summing to {total} events; want {r.num_rows}, {d.num_rows}")

print(json.dumps({"rows": r.num_rows, "groups": len(groups), "sketches": sketches,
                  "datasketches": have_ds, "duckdb": have_duckdb, "errors": errors[:20]}))
sys.exit(1 if errors else 0)
"#;

#[test]
fn python_reads_rollups_and_datasketches_decodes_their_sketches() {
    let py = match python() {
        Ok(p) => p.clone(),
        Err(why) => {
            eprintln!("SKIPPED: independent reader rollup test: no Python with deltalake and pyarrow: {why}. Set COMPACTOR_TEST_PYTHON or run tests/setup-pyreader.sh.");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    gen(&d.join("in/a.jsonl"), 3000, 7, 60_000.0);
    let rollup = r#"
[[rollup]]
name = "hourly"
time = "ts"
bucket = "hour"
dimensions = ["event", "country", "device.os"]
aggregates = [
  { name = "events", fn = "count" },
  { name = "br_sum", fn = "sum", column = "playback.bitrate_kbps" },
  { name = "br_min", fn = "min", column = "playback.bitrate_kbps" },
  { name = "br_max", fn = "max", column = "playback.bitrate_kbps" },
  { name = "users", fn = "count_distinct", column = "user_id" },
  { name = "sessions", fn = "count_distinct", column = "session_id" },
  { name = "br", fn = "quantiles", column = "playback.bitrate_kbps" },
]
"#;
    let job = common::write_job(
        d,
        "job.toml",
        &(common::job_text(&["in"], "json", "table", &["ts"], "") + rollup),
    );
    // two runs, so that the second merges its groups into the first's rows
    let r = common::run_job(&job, 2);
    assert!(r.committed && r.duplicates > 0, "{r:?}");
    gen(&d.join("in/b.jsonl"), 2000, 8, 60_000.0);
    let r = common::run_job(&job, 2);
    assert!(r.committed, "{r:?}");

    let out = Command::new(&py)
        .arg("-c")
        .arg(ROLLUP_READER)
        .arg(d.join("table"))
        .arg(d.join("table_hourly"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python rollup reader:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(summary["rows"].as_u64().unwrap() > 100, "{summary}");
    eprintln!("rollup reader: {summary}");
    if summary["datasketches"] != true {
        eprintln!("SKIPPED (part): the venv has no `datasketches` package: the rollup's sketches were not decoded by the C++ library. {summary}");
    } else {
        assert!(summary["sketches"].as_u64().unwrap() > 100, "{summary}");
    }
    if summary["duckdb"] != true {
        eprintln!("SKIPPED (part): the venv has no duckdb: {summary}");
    }
}
