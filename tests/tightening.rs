//! Lossless type tightening (layout.rs), checked by an independent reader: pyarrow reads every
//! segment back and must see exactly the values the input holds, in the tightened types;
//! values that look like UUIDs but do not print back to the same text stay strings. The
//! Delta reader (`deltalake`) must read the table too.
//!
//! The Python comes from `tests/setup-pyreader.sh` (as in `independent_reader.rs`); without it
//! the test prints `SKIPPED: ...` and passes (CI makes the venv first).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow::datatypes::DataType;
use serde_json::{json, Value};

const READER: &str = r#"
import json, sys, uuid
import pyarrow as pa, pyarrow.parquet as pq
out = {"types": {}, "nullable": {}, "rows": []}
for path in sys.argv[1:]:
    t = pq.read_table(path)
    for f in t.schema:
        out["types"][f.name] = str(f.type)
        out["nullable"][f.name] = f.nullable
    cols = {n: t.column(n).to_pylist() for n in t.column_names}
    for i in range(t.num_rows):
        row = {}
        for n, vals in cols.items():
            v = vals[i]
            if v is None:
                continue
            if isinstance(v, (bytes, bytearray)) and len(v) == 16:
                v = str(uuid.UUID(bytes=bytes(v)))
            elif isinstance(v, uuid.UUID):
                v = str(v)
            elif hasattr(v, "isoformat"):
                v = v.isoformat()
            row[n] = v
        out["rows"].append(row)
print(json.dumps(out))
"#;

const DELTA_READER: &str = r#"
import json, sys, deltalake
t = deltalake.DeltaTable(sys.argv[1]).to_pyarrow_table()
print(json.dumps({
    "rows": t.num_rows,
    "types": {f.name: str(f.type) for f in t.schema},
    "nullable": {f.name: f.nullable for f in t.schema},
}))
# deltalake's runtime can abort in interpreter teardown ("terminate called without an
# active exception"): leave without it, the answer is printed
sys.stdout.flush()
import os
os._exit(0)
"#;

fn py(python: &Path, script: &str, args: &[PathBuf]) -> Value {
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Input records: one column per tightening, and its look-alikes that must not tighten.
fn records(n: usize) -> Vec<Value> {
    let mut x = 0x853c_49e6_748f_ea9bu64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let u = format!("{:016x}{:016x}", next(), next());
            let canonical = format!(
                "{}-{}-{}-{}-{}",
                &u[..8],
                &u[8..12],
                &u[12..16],
                &u[16..20],
                &u[20..]
            );
            let status = [200, 200, 304, 404][(next() % 4) as usize];
            let mut r = json!({
                "ts": format!("2026-01-01T00:{:02}:{:02}.{:03}Z", (i / 60) % 60, i % 60, i % 1000),
                "i8": (next() % 200) as i64 - 100,
                "i16": (next() % 60_000) as i64 - 30_000,
                "i32": (next() % 4_000_000_000) as i64 - 2_000_000_000,
                "i64": (next() >> 1) as i64,
                "uuid": canonical,
                "upper_uuid": canonical.to_uppercase(),
                "hex_id": u,
                "braced": format!("{{{canonical}}}"),
                "mixed": if i == n / 2 { "not-a-uuid".to_string() } else { canonical.clone() },
                "f": (next() % 1000) as f64 / 8.0,
                "status": status,
            });
            if i % 7 == 0 {
                r["uuid"] = Value::Null;
            }
            r
        })
        .collect()
}

#[test]
fn pyarrow_reads_back_exactly_the_parsed_values_in_tightened_types() {
    let python = match common::pyreader_venv() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("SKIPPED: no python reader venv: {e}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    let recs = records(3000);
    let text: String = recs.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let table = dir.path().join("table");
    let job = common::write_job(
        dir.path(),
        "job.toml",
        &common::job_text(
            &[input.to_str().unwrap()],
            "json",
            table.to_str().unwrap(),
            &["status", "ts"],
            "",
        ),
    );
    let report = common::run_job(&job, 2);
    assert_eq!(report.rows_out, 3000);
    let files = common::parquet_files_under(&table);
    let seen = py(&python, READER, &files);

    // the tightened types, as pyarrow sees them
    let types: BTreeMap<String, String> = serde_json::from_value(seen["types"].clone()).unwrap();
    assert_eq!(types["i8"], "int8");
    assert_eq!(types["i16"], "int16");
    assert_eq!(types["i32"], "int32");
    assert_eq!(types["i64"], "int64");
    assert_eq!(types["status"], "int16");
    assert!(
        types["uuid"].contains("uuid") || types["uuid"] == "fixed_size_binary[16]",
        "{}",
        types["uuid"]
    );
    for s in ["upper_uuid", "hex_id", "braced", "mixed"] {
        assert_eq!(
            types[s], "string",
            "{s} is not canonical everywhere: stays text"
        );
    }
    // a column with a value in every row is REQUIRED in the file; one with nulls is not
    assert_eq!(seen["nullable"]["i8"], false);
    assert_eq!(seen["nullable"]["uuid"], true);
    // and our own reader sees the physical types the same way
    let phys: BTreeMap<String, DataType> = common::physical_types(&files[0]).into_iter().collect();
    assert_eq!(phys["uuid"], DataType::FixedSizeBinary(16));
    assert_eq!(phys["i8"], DataType::Int8);

    // every value equal to the input's (order-free: compare sorted JSON texts)
    let mut want: Vec<String> = recs
        .iter()
        .map(|r| {
            let mut m = r.as_object().unwrap().clone();
            m.retain(|_, v| !v.is_null());
            m.remove("ts");
            serde_json::to_string(&m).unwrap()
        })
        .collect();
    let mut got: Vec<String> = seen["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut m = r.as_object().unwrap().clone();
            m.remove("ts");
            m.remove("ts_offset");
            serde_json::to_string(&m).unwrap()
        })
        .collect();
    want.sort();
    got.sort();
    assert_eq!(want.len(), got.len());
    for (w, g) in want.iter().zip(&got) {
        let (w, g): (Value, Value) = (
            serde_json::from_str(w).unwrap(),
            serde_json::from_str(g).unwrap(),
        );
        assert_eq!(w, g);
    }

    // the Delta reader reads the table: integers as long, the UUID column as binary
    let delta = py(&python, DELTA_READER, std::slice::from_ref(&table));
    assert_eq!(delta["rows"], 3000);
    assert_eq!(delta["types"]["i8"], "int64");
    assert_eq!(delta["types"]["uuid"], "binary");
    // the table's schema stays nullable
    assert_eq!(delta["nullable"]["i8"], true);
}

#[test]
fn a_later_run_keeps_the_tables_uuid_column_or_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("table");
    let write = |name: &str, lines: &[&str]| {
        let input = dir.path().join(name);
        std::fs::write(&input, lines.join("\n") + "\n").unwrap();
        let job = common::write_job(
            dir.path(),
            &format!("{name}.toml"),
            &common::job_text(
                &[input.to_str().unwrap()],
                "json",
                table.to_str().unwrap(),
                &[],
                "",
            ),
        );
        compactor::run::run(&compactor::job::Job::load(&job).unwrap(), &common::opts(1))
    };
    let u1 = r#"{"id":"123e4567-e89b-12d3-a456-426614174000","n":1}"#;
    let u2 = r#"{"id":"00000000-0000-4000-8000-000000000000","n":2}"#;
    write("a.jsonl", &[u1]).unwrap();
    write("b.jsonl", &[u2]).unwrap();
    let rows = common::read_table_records(&table);
    assert_eq!(rows.len(), 2);
    let err = write("c.jsonl", &[r#"{"id":"X-1","n":3}"#]).unwrap_err();
    assert!(
        format!("{err:#}").contains("UUID"),
        "a clear error, nothing committed: {err:#}"
    );
    assert_eq!(common::read_table_records(&table).len(), 2);
}
