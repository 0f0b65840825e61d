//! Out-of-core runs: output bytes do not depend on the memory budget (how many runs were
//! spilled) or the thread count; `keys` dedup stays exact when spilled; spill files are gone
//! after a success, a failure, and a crash followed by the next run.

mod common;

use std::path::{Path, PathBuf};

use common::{cli, cli_run, live_files, read_table_ordered, stderr, write_job, Val};

/// Generated JSON of `lines` lines (several 8 MiB chunks when large).
fn json_input(dir: &Path, lines: u64) -> PathBuf {
    let cfg =
        compactor_bench_data::GenConfig::new(compactor_bench_data::GenFormat::Json, lines, 11);
    let (data, _) = compactor_bench_data::generate_to_vec(&cfg).unwrap();
    let p = dir.join("events.jsonl");
    std::fs::write(&p, data).unwrap();
    p
}

fn run_args(
    job: &Path,
    threads: usize,
    extra: &[&str],
) -> (std::process::Output, serde_json::Value) {
    let report = job.with_extension(format!("t{threads}.report.json"));
    let mut args = vec![
        "run",
        job.to_str().unwrap(),
        "--no-progress",
        "--report",
        report.to_str().unwrap(),
    ];
    let t = threads.to_string();
    args.extend(["--threads", &t]);
    args.extend(extra);
    let out = cli(&args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rep: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(rep["reserved_at_end"], 0, "memory back to 0: {rep}");
    let n = |k: &str| rep[k].as_u64().unwrap();
    assert_eq!(
        n("lines_in"),
        n("rows_out") + n("duplicates") + n("rejected")
    );
    (out, rep)
}

/// Bytes of every live segment, in log order.
fn segment_bytes(table: &Path) -> Vec<Vec<u8>> {
    live_files(table)
        .iter()
        .map(|f| std::fs::read(&f.path).unwrap())
        .collect()
}

fn spill_dirs(table: &Path) -> Vec<PathBuf> {
    let d = table.join("_compactor/spill");
    let Ok(rd) = std::fs::read_dir(&d) else {
        return Vec::new();
    };
    rd.map(|e| e.unwrap().path()).collect()
}

#[test]
fn output_does_not_depend_on_spilling_or_threads() {
    let dir = tempfile::tempdir().unwrap();
    json_input(dir.path(), 40_000);
    for (mode, extra) in [
        ("exact", ""),
        ("keys", "[dedup]\nmode = \"keys\"\nkeys = [\"event_id\"]\n"),
    ] {
        let mut outputs = Vec::new();
        // (threads, run size): everything in memory; many spilled runs and merge passes.
        for (threads, run_bytes) in [(2, None), (1, Some("512KiB")), (2, Some("512KiB"))] {
            let name = format!("{mode}-{threads}-{}", run_bytes.unwrap_or("mem"));
            let job = write_job(
                dir.path(),
                &format!("{name}.toml"),
                &format!(
                    "{}[output.partition]\ncolumn = \"ts\"\nby = \"hour\"\n{extra}",
                    common::job_text(
                        &["events.jsonl"],
                        "json",
                        &name,
                        &["event", "ts"],
                        "row_group_size = 5000\nmax_segment_rows = 9000\n",
                    )
                ),
            );
            let mut args = Vec::new();
            if let Some(r) = run_bytes {
                // A small budget too, so that only a few runs merge at once.
                args.extend(["--run-bytes", r, "--memory", "100MiB"]);
            }
            let (_, rep) = run_args(&job, threads, &args);
            if run_bytes.is_some() {
                assert!(rep["spilled_runs"].as_u64().unwrap() > 10, "{rep}");
                assert!(rep["merge_passes"].as_u64().unwrap() > 0, "{rep}");
            } else {
                assert_eq!(rep["spilled_runs"], 0, "{rep}");
            }
            let table = dir.path().join(&name);
            assert!(
                spill_dirs(&table).is_empty(),
                "spill files left after success"
            );
            outputs.push((name, rep["duplicates"].clone(), segment_bytes(&table)));
        }
        let (first, dups, bytes) = &outputs[0];
        assert!(bytes.len() > 2, "several segments expected");
        for (name, d, b) in &outputs[1..] {
            assert_eq!(d, dups, "{name} vs {first}: duplicates");
            assert!(b == bytes, "{name} and {first} wrote different segments");
        }
    }
}

#[test]
fn keys_mode_keeps_the_first_occurrence_when_spilled() {
    // ids repeat with different payloads; the first line of each id must win.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    let mut state = 12345u64;
    let mut first: std::collections::BTreeMap<u64, u64> = Default::default();
    for line in 0..30_000u64 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let id = (state >> 33) % 7_000;
        first.entry(id).or_insert(line);
        text.push_str(&format!(
            "{{\"id\":{id},\"line\":{line},\"pad\":\"{}\"}}\n",
            "x".repeat((line % 50) as usize)
        ));
    }
    std::fs::write(dir.path().join("k.jsonl"), text).unwrap();
    for threads in [1, 2] {
        let name = format!("keys{threads}");
        let job = write_job(
            dir.path(),
            &format!("{name}.toml"),
            &format!(
                "{}[dedup]\nmode = \"keys\"\nkeys = [\"id\"]\n",
                common::job_text(&["k.jsonl"], "json", &name, &["id"], "")
            ),
        );
        let (_, rep) = run_args(
            &job,
            threads,
            &["--run-bytes", "64KiB", "--memory", "200MiB"],
        );
        assert!(rep["spilled_runs"].as_u64().unwrap() > 10, "{rep}");
        let rows = read_table_ordered(&dir.path().join(&name));
        let id = rows.columns.iter().position(|c| c.0 == "id").unwrap();
        let line = rows.columns.iter().position(|c| c.0 == "line").unwrap();
        let got: Vec<(u64, u64)> = rows
            .rows
            .iter()
            .map(|r| match (&r[id], &r[line]) {
                (Val::Int(i), Val::Int(l)) => (*i as u64, *l as u64),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        let want: Vec<(u64, u64)> = first.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(got, want);
    }
}

#[test]
fn spill_files_are_removed_after_failure_and_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    json_input(dir.path(), 20_000);
    // runs the job with many small spilled runs
    let spilling_run = |job: &Path, envs: &[(&str, &str)]| {
        let args = [
            "run",
            job.to_str().unwrap(),
            "--no-progress",
            "--run-bytes",
            "256KiB",
        ];
        cli(&[&args[..], &["--memory", "200MiB"]].concat(), envs)
    };

    // failure after spilling: the sort column does not exist (found at the end of the input)
    let job = write_job(
        dir.path(),
        "bad.toml",
        &common::job_text(&["events.jsonl"], "json", "bad", &["no_such_column"], ""),
    );
    let out = spilling_run(&job, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no_such_column"), "{}", stderr(&out));
    let table = dir.path().join("bad");
    assert!(
        spill_dirs(&table).is_empty(),
        "spill files left after a failure"
    );

    // a crash (abort: no destructor runs) after the runs were spilled
    let job = write_job(
        dir.path(),
        "crash.toml",
        &common::job_text(&["events.jsonl"], "json", "crash", &["event"], ""),
    );
    let out = spilling_run(&job, &[("COMPACTOR_FAILPOINT", "after-sort")]);
    assert!(!out.status.success());
    let table = dir.path().join("crash");
    let left = spill_dirs(&table);
    assert_eq!(left.len(), 1, "the crashed run's spill directory: {left:?}");
    assert!(
        std::fs::read_dir(&left[0]).unwrap().count() > 2,
        "spill files expected in {}",
        left[0].display()
    );
    // the next run removes them, and succeeds
    let (out, rep) = cli_run(&job, 2, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(rep.unwrap()["committed"].as_bool().unwrap());
    assert!(
        spill_dirs(&table).is_empty(),
        "stale spill files not removed"
    );
}

#[test]
fn spill_cap_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    json_input(dir.path(), 20_000);
    let job = write_job(
        dir.path(),
        "cap.toml",
        &common::job_text(&["events.jsonl"], "json", "cap", &["event"], ""),
    );
    let out = cli(
        &[
            "run",
            job.to_str().unwrap(),
            "--no-progress",
            "--run-bytes",
            "256KiB",
            "--max-spill-bytes",
            "100KB",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("max_spill_bytes"), "{}", stderr(&out));
    assert!(spill_dirs(&dir.path().join("cap")).is_empty());
    assert_eq!(common::table_version(&dir.path().join("cap")), None);
}
