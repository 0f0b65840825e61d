//! `compactor verify`: a clean table passes with the right counts; a flipped byte, a truncated
//! file, a deleted file and rows out of order are each reported against the right file, and
//! one bad file does not hide another.

mod common;

use std::path::{Path, PathBuf};

use compactor::verify::{verify, Problem, VerifyOptions, VerifyReport};

/// `n` JSON lines with distinct ids starting at `first`, in a few groups, a day apart in
/// threes (for the partitioned table).
fn json_lines(first: u64, n: u64) -> String {
    (first..first + n)
        .map(|i| {
            format!(
                "{{\"id\":{i},\"group\":\"g{}\",\"msg\":\"line {i}\",\"score\":{}.5,\"ts\":\"2026-01-0{}T12:00:00Z\"}}\n",
                i % 3,
                i % 7,
                1 + i % 3
            )
        })
        .collect()
}

/// A table of 100 rows in segments of at most 16 rows (partitioned by day if asked); returns
/// the temporary directory (keep it alive) and the table's path.
fn table(partitioned: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    std::fs::write(d.join("in/a.jsonl"), json_lines(0, 60)).unwrap();
    std::fs::write(d.join("in/b.jsonl"), json_lines(60, 40)).unwrap();
    let mut extra = "max_segment_rows = 16\n".to_string();
    if partitioned {
        extra.push_str("\n[output.partition]\ncolumn = \"ts\"\nby = \"day\"\n");
    }
    let job = common::write_job(
        d,
        "job.toml",
        &common::job_text(&["in/*.jsonl"], "json", "table", &["group", "id"], &extra),
    );
    let r = common::run_job(&job, 2);
    assert!(r.committed, "{r:?}");
    assert_eq!(r.rows_out, 100);
    let table = d.join("table");
    (dir, table)
}

fn deep() -> VerifyOptions {
    VerifyOptions { deep: true }
}

fn shallow() -> VerifyOptions {
    VerifyOptions { deep: false }
}

/// The live files (log path, path on disk), in log order.
fn live(table: &Path) -> Vec<(String, PathBuf)> {
    common::live_files(table)
        .into_iter()
        .map(|f| (f.logged, f.path))
        .collect()
}

/// The files the report names, in report order, without repeats.
fn files_named(r: &VerifyReport) -> Vec<&str> {
    let mut v: Vec<&str> = Vec::new();
    for p in &r.problems {
        if v.last() != Some(&p.file.as_str()) {
            v.push(&p.file);
        }
    }
    v
}

fn has(problems: &[Problem], file: &str, what: &str) -> bool {
    problems
        .iter()
        .any(|p| p.file == file && p.what.contains(what))
}

#[test]
fn a_clean_table_passes_with_its_counts() {
    for partitioned in [false, true] {
        let (_dir, table) = table(partitioned);
        let files = live(&table);
        assert!(files.len() >= 7, "{partitioned}: {files:?}");
        let bytes: u64 = files
            .iter()
            .map(|(_, p)| std::fs::metadata(p).unwrap().len())
            .sum();
        for opts in [deep(), shallow()] {
            let r = verify(&table, &opts).unwrap();
            assert!(r.ok(), "{partitioned}: {}", r.summary());
            assert_eq!(r.version, Some(0));
            assert_eq!(r.segments, files.len() as u64);
            assert_eq!(r.rows, 100);
            assert_eq!(r.bytes, bytes);
            assert!(
                r.summary().ends_with("checked: no problems\n"),
                "{}",
                r.summary()
            );
        }
    }
}

#[test]
fn not_a_table_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = verify(dir.path(), &deep()).unwrap_err();
    assert!(format!("{err:#}").contains("_delta_log"), "{err:#}");
}

#[test]
fn a_flipped_byte_is_a_checksum_mismatch_of_that_file_only() {
    let (_dir, table) = table(false);
    let files = live(&table);
    let (logged, path) = &files[2];
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(path, &bytes).unwrap();
    for opts in [deep(), shallow()] {
        let r = verify(&table, &opts).unwrap();
        assert!(!r.ok());
        assert_eq!(files_named(&r), [logged.as_str()], "{}", r.summary());
        assert!(
            has(&r.problems, logged, "checksum mismatch"),
            "{}",
            r.summary()
        );
        // the size is unchanged: only the checksum can tell
        assert!(!has(&r.problems, logged, "size is"), "{}", r.summary());
        assert!(r
            .summary()
            .contains(&format!("{logged}: checksum mismatch")));
    }
}

#[test]
fn a_truncated_file_is_reported_by_size_checksum_and_footer() {
    let (_dir, table) = table(false);
    let files = live(&table);
    let (logged, path) = &files[0];
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.len() > 200, "{} bytes", bytes.len());
    std::fs::write(path, &bytes[..bytes.len() - 100]).unwrap();
    let r = verify(&table, &deep()).unwrap();
    assert_eq!(files_named(&r), [logged.as_str()], "{}", r.summary());
    let size = format!(
        "size is {} bytes, the log says {} (truncated?)",
        bytes.len() - 100,
        bytes.len()
    );
    for what in [size.as_str(), "checksum mismatch", "footer does not parse"] {
        assert!(has(&r.problems, logged, what), "{what}: {}", r.summary());
    }
}

#[test]
fn a_deleted_file_is_missing_and_does_not_hide_another_bad_one() {
    let (_dir, table) = table(true);
    let files = live(&table);
    let (gone, gone_path) = &files[1];
    let (flipped, flipped_path) = &files[files.len() - 1];
    std::fs::remove_file(gone_path).unwrap();
    let mut bytes = std::fs::read(flipped_path).unwrap();
    let at = bytes.len() / 3;
    bytes[at] = bytes[at].wrapping_add(1);
    std::fs::write(flipped_path, &bytes).unwrap();

    let r = verify(&table, &deep()).unwrap();
    // in path order, each file once
    assert_eq!(
        files_named(&r),
        [gone.as_str(), flipped.as_str()],
        "{}",
        r.summary()
    );
    let missing: Vec<_> = r.problems.iter().filter(|p| &p.file == gone).collect();
    assert_eq!(missing.len(), 1, "{}", r.summary());
    assert!(missing[0].what.starts_with("missing"), "{missing:?}");
    assert!(has(&r.problems, flipped, "checksum mismatch"));
    assert!(r.summary().lines().last().unwrap().contains("in 2 files"));
    // the counts are the log's
    assert_eq!((r.segments, r.rows), (files.len() as u64, 100));
}

/// A file whose rows are not in the order its footer records: rewritten in reverse, with the
/// same `sorting_columns`, in place of a live segment.
#[test]
fn rows_out_of_their_recorded_order_are_reported() {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    let (_dir, table) = table(false);
    let files = live(&table);
    let (logged, path) = &files[3];
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap();
    let sorting = builder.metadata().row_group(0).sorting_columns().cloned();
    assert!(sorting.as_ref().is_some_and(|s| !s.is_empty()));
    let schema = builder.schema().clone();
    let batches: Vec<_> = builder.build().unwrap().map(|b| b.unwrap()).collect();
    let all = arrow::compute::concat_batches(&schema, &batches).unwrap();
    assert!(all.num_rows() > 2);
    let reversed = arrow::array::UInt32Array::from_iter_values((0..all.num_rows() as u32).rev());
    let columns = all
        .columns()
        .iter()
        .map(|c| arrow::compute::take(c, &reversed, None).unwrap())
        .collect();
    let backwards = arrow::record_batch::RecordBatch::try_new(schema.clone(), columns).unwrap();

    let mut out = Vec::new();
    let props = WriterProperties::builder()
        .set_sorting_columns(sorting)
        .build();
    let mut w = ArrowWriter::try_new(&mut out, schema, Some(props)).unwrap();
    w.write(&backwards).unwrap();
    w.close().unwrap();
    std::fs::write(path, &out).unwrap();

    let r = verify(&table, &deep()).unwrap();
    assert_eq!(files_named(&r), [logged.as_str()], "{}", r.summary());
    assert!(
        has(
            &r.problems,
            logged,
            "rows 0 and 1 are out of order on (group, id)"
        ),
        "{}",
        r.summary()
    );
    assert_eq!(
        r.problems
            .iter()
            .filter(|p| p.what.contains("out of order"))
            .count(),
        1
    );
    // the shallow check does not decode pages: only the bytes' checksum and size tell
    let r = verify(&table, &shallow()).unwrap();
    assert!(has(&r.problems, logged, "checksum mismatch"));
    assert!(!r.problems.iter().any(|p| p.what.contains("out of order")));
}
