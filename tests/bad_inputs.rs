//! Regression corpus: every file under `fuzz/seeds/` (hand-written tricky inputs and inputs the
//! fuzzers once broke the parsers with) goes through every parser on each `cargo test`, with the
//! same accounting invariants the fuzz targets assert.

use std::path::Path;

use compactor_formats::{count_lines, parse_chunk, Format, ParseOptions};

fn check(name: &str, bytes: &[u8], format: Format) {
    let opts = ParseOptions::new(format);
    let p = parse_chunk(&opts, bytes, 1).unwrap_or_else(|e| panic!("{name} as {format}: {e}"));
    assert_eq!(p.lines, count_lines(bytes), "{name} as {format}");
    assert_eq!(
        p.batch.num_rows() as u64 + p.rejects.len() as u64,
        p.lines,
        "{name} as {format}"
    );
    let mut last = 0;
    for r in &p.rejects {
        assert!(
            r.line > last && r.line <= p.lines,
            "{name} as {format}: reject line {}",
            r.line
        );
        assert!(
            r.raw.len() <= opts.limits.max_line_bytes,
            "{name} as {format}"
        );
        assert!(!r.reason.is_empty());
        last = r.line;
    }
}

#[test]
fn every_seed_parses_with_accounting_intact() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let mut files = 0;
    for dir in std::fs::read_dir(&seeds).unwrap() {
        let dir = dir.unwrap().path();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            let bytes = std::fs::read(&f).unwrap();
            let name = f.strip_prefix(&seeds).unwrap().display().to_string();
            for format in [Format::Json, Format::Combined, Format::Common] {
                check(&name, &bytes, format);
            }
            files += 1;
        }
    }
    assert!(
        files >= 10,
        "expected the seed corpus under {}, found {files} files",
        seeds.display()
    );
}

#[test]
fn arena_rollback_regression() {
    // Found by fuzzing: a blank or overlong line after an escaped string used to roll back the
    // previous row's unescaped text (silent corruption or a panic).
    let p = parse_chunk(
        &ParseOptions::new(Format::Json),
        b"{\"a\":\"\\u0041\"}\n\n{\"a\":\"\\u0042\"}\n",
        1,
    )
    .unwrap();
    let a = p
        .batch
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    assert_eq!((a.value(0), a.value(1)), ("A", "B"));
    assert_eq!(p.rejects.len(), 1);
}
