//! End to end, JSON lines: random records in, the table read back with plain `parquet`, compared
//! with an oracle that deduplicates records (not bytes) and sorts them as documented.

mod common;

use std::path::Path;

use arrow::datatypes::DataType;
use common::{Val, CLI};
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `opt`: missing, null, or an int.
#[derive(Debug, Clone, Copy)]
enum Opt {
    Missing,
    Null,
    Int(i64),
}

/// One generated record. Each field has a fixed JSON type, so inference is predictable.
#[derive(Debug, Clone)]
struct Rec {
    k: i64,
    s: String,
    f: f64,
    b: bool,
    n: Option<(i64, String)>,
    opt: Opt,
}

/// Flattened field names a line mentions, in textual order, each with whether its value is
/// non-null.
type Names = Vec<(String, bool)>;

/// How a line renders a record.
#[derive(Debug, Clone, Copy)]
enum Render {
    /// serde_json's canonical form, keys in declaration order.
    Canonical,
    /// Same record, other bytes: keys shuffled, other escapes, whitespace, dotted or nested
    /// `n`, null or missing for absent values, floats in exponent form. Seeded.
    Alternate(u64),
}

/// A draw of the alternate rendering's whitespace.
fn ws(rng: &mut ChaCha8Rng) -> &'static str {
    [" ", "", "", "\t", "  "][rng.gen_range(0..5)]
}

/// A JSON string literal with randomly chosen (but valid) escapes.
fn alt_string(s: &str, rng: &mut ChaCha8Rng) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str(if rng.gen_ratio(1, 2) {
                "\\\""
            } else {
                "\\u0022"
            }),
            '\\' => out.push_str(if rng.gen_ratio(1, 2) {
                "\\\\"
            } else {
                "\\u005C"
            }),
            '/' if rng.gen_ratio(1, 2) => out.push_str("\\/"),
            '\n' if rng.gen_ratio(1, 2) => out.push_str("\\n"),
            '\t' if rng.gen_ratio(1, 2) => out.push_str("\\t"),
            '\r' if rng.gen_ratio(1, 2) => out.push_str("\\r"),
            '\u{8}' if rng.gen_ratio(1, 2) => out.push_str("\\b"),
            '\u{c}' if rng.gen_ratio(1, 2) => out.push_str("\\f"),
            c if (c as u32) < 0x20 || rng.gen_ratio(1, 3) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    if rng.gen_ratio(1, 2) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    } else {
                        out.push_str(&format!("\\u{unit:04X}"));
                    }
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Renders a record as one JSON line (without terminator). Returns the line and the flattened
/// field names it mentions, in textual order, each with whether its value is non-null.
fn render(r: &Rec, how: Render) -> (String, Names) {
    match how {
        Render::Canonical => {
            let mut parts = vec![
                format!("\"k\":{}", r.k),
                format!("\"s\":{}", serde_json::to_string(&r.s).unwrap()),
                format!("\"f\":{}", serde_json::to_string(&r.f).unwrap()),
                format!("\"b\":{}", r.b),
            ];
            let mut names = vec![
                ("k".to_string(), true),
                ("s".to_string(), true),
                ("f".to_string(), true),
                ("b".to_string(), true),
            ];
            if let Some((x, y)) = &r.n {
                parts.push(format!(
                    "\"n\":{{\"x\":{x},\"y\":{}}}",
                    serde_json::to_string(y).unwrap()
                ));
                names.push(("n.x".into(), true));
                names.push(("n.y".into(), true));
            }
            match r.opt {
                Opt::Missing => {}
                Opt::Null => {
                    parts.push("\"opt\":null".into());
                    names.push(("opt".into(), false));
                }
                Opt::Int(v) => {
                    parts.push(format!("\"opt\":{v}"));
                    names.push(("opt".into(), true));
                }
            }
            (format!("{{{}}}", parts.join(",")), names)
        }
        Render::Alternate(seed) => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            // (key, value text, names with non-null flags)
            let mut entries: Vec<(String, String, Names)> = Vec::new();
            let float = if rng.gen_ratio(1, 2) {
                format!("{:e}", r.f)
            } else {
                serde_json::to_string(&r.f).unwrap()
            };
            entries.push(("k".into(), r.k.to_string(), vec![("k".into(), true)]));
            entries.push((
                "s".into(),
                alt_string(&r.s, &mut rng),
                vec![("s".into(), true)],
            ));
            entries.push(("f".into(), float, vec![("f".into(), true)]));
            entries.push(("b".into(), r.b.to_string(), vec![("b".into(), true)]));
            match &r.n {
                Some((x, y)) => {
                    let y = alt_string(y, &mut rng);
                    if rng.gen_ratio(1, 2) {
                        // flattened by hand: the same columns
                        entries.push(("n.x".into(), x.to_string(), vec![("n.x".into(), true)]));
                        entries.push(("n.y".into(), y, vec![("n.y".into(), true)]));
                    } else {
                        let mut inner = [("x", x.to_string()), ("y", y)];
                        inner.shuffle(&mut rng);
                        let (a, b) = (ws(&mut rng), ws(&mut rng));
                        let text = format!(
                            "{{{a}\"{}\"{b}:{a}{}{b},{a}\"{}\"{b}:{b}{}{a}}}",
                            inner[0].0, inner[0].1, inner[1].0, inner[1].1
                        );
                        let names = inner
                            .iter()
                            .map(|(k, _)| (format!("n.{k}"), true))
                            .collect();
                        entries.push(("n".into(), text, names));
                    }
                }
                None => match rng.gen_range(0..3) {
                    0 => {}
                    1 => entries.push(("n".into(), "null".into(), vec![("n".into(), false)])),
                    _ => entries.push(("n.x".into(), "null".into(), vec![("n.x".into(), false)])),
                },
            }
            match r.opt {
                Opt::Missing | Opt::Null => {
                    if rng.gen_ratio(1, 2) {
                        entries.push(("opt".into(), "null".into(), vec![("opt".into(), false)]));
                    }
                }
                Opt::Int(v) => {
                    entries.push(("opt".into(), v.to_string(), vec![("opt".into(), true)]))
                }
            }
            entries.shuffle(&mut rng);
            let mut line = String::from("{");
            line.push_str(ws(&mut rng));
            let mut names = Vec::new();
            for (i, (key, value, ns)) in entries.into_iter().enumerate() {
                if i > 0 {
                    line.push(',');
                    line.push_str(ws(&mut rng));
                }
                line.push_str(&alt_string(&key, &mut rng));
                line.push_str(ws(&mut rng));
                line.push(':');
                line.push_str(ws(&mut rng));
                line.push_str(&value);
                line.push_str(ws(&mut rng));
                names.extend(ns);
            }
            line.push('}');
            (line, names)
        }
    }
}

/// The record's value in each column it has (absent columns are null).
fn values(r: &Rec) -> Vec<(&'static str, Val)> {
    let mut v = vec![
        ("k", Val::Int(r.k)),
        ("s", Val::Str(r.s.clone())),
        ("f", Val::Float(r.f)),
        ("b", Val::Bool(r.b)),
    ];
    if let Some((x, y)) = &r.n {
        v.push(("n.x", Val::Int(*x)));
        v.push(("n.y", Val::Str(y.clone())));
    }
    if let Opt::Int(o) = r.opt {
        v.push(("opt", Val::Int(o)));
    }
    v
}

fn natural_type(name: &str) -> DataType {
    match name {
        "k" | "n.x" | "opt" => DataType::Int64,
        "f" => DataType::Float64,
        "b" => DataType::Boolean,
        _ => DataType::Utf8,
    }
}

/// The expected table: columns (first appearance order, types; a column that only ever held
/// nulls is a string column) and rows (distinct records, sorted by `sort_by`, then by the other
/// columns in schema order).
fn oracle(lines: &[(Rec, Names)], sort_by: &[&str]) -> common::FileRows {
    let mut order: Names = Vec::new();
    for (_, names) in lines {
        for (n, non_null) in names {
            match order.iter_mut().find(|(o, _)| o == n) {
                Some(e) => e.1 |= *non_null,
                None => order.push((n.clone(), *non_null)),
            }
        }
    }
    let columns: Vec<common::Column> = order
        .iter()
        .map(|(n, typed)| {
            let t = if *typed {
                natural_type(n)
            } else {
                DataType::Utf8
            };
            (n.clone(), t)
        })
        .collect();
    let mut key_order: Vec<usize> = sort_by
        .iter()
        .map(|s| columns.iter().position(|(n, _)| n == s).unwrap())
        .collect();
    for i in 0..columns.len() {
        if !key_order.contains(&i) {
            key_order.push(i);
        }
    }
    let mut rows: Vec<Vec<Val>> = lines
        .iter()
        .map(|(r, _)| {
            let vals = values(r);
            columns
                .iter()
                .map(|(n, _)| {
                    vals.iter()
                        .find(|(vn, _)| vn == n)
                        .map_or(Val::Null, |(_, v)| v.clone())
                })
                .collect()
        })
        .collect();
    let key = |r: &Vec<Val>| key_order.iter().map(|&i| r[i].clone()).collect::<Vec<_>>();
    rows.sort_by_key(|a| key(a));
    rows.dedup();
    common::FileRows { columns, rows }
}

fn is_timestamp_like(s: &str) -> bool {
    compactor_formats::ts::parse_iso(s.as_bytes()).is_some()
}

fn string_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        // tiny alphabet: many ties on (k, s), so the other columns decide the order
        "[ab]{0,2}",
        // characters that need escapes, non-ASCII, emoji, separators
        "[a-z0-9 \"\\\\/\\x00-\\x1f\\x7fé東\\x{2028}\\x{1F600}\\x{FEFF}]{0,12}",
        // anything printable
        "\\PC{0,8}",
    ]
    .prop_filter("must not read as a timestamp", |s| !is_timestamp_like(s))
}

fn rec_strategy() -> impl Strategy<Value = Rec> {
    let f = prop_oneof![
        Just(0.0f64),
        Just(-0.0f64),
        Just(1.5f64),
        (-64i32..64).prop_map(|x| f64::from(x) / 8.0),
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
    ];
    let opt = prop_oneof![
        Just(Opt::Missing),
        Just(Opt::Null),
        (0i64..3).prop_map(Opt::Int)
    ];
    (
        0i64..5,
        string_strategy(),
        f,
        any::<bool>(),
        proptest::option::of((0i64..3, "[xy]{0,2}")),
        opt,
    )
        .prop_map(|(k, s, f, b, n, opt)| Rec { k, s, f, b, n, opt })
}

/// Input lines: records, then copies of some of them (verbatim, or the same record in other
/// bytes) inserted at random places.
type Copy = (usize, u8, u64, usize);

fn run_case(
    recs: Vec<Rec>,
    copies: Vec<Copy>,
    crlf: Vec<bool>,
    final_newline: bool,
) -> Result<(), TestCaseError> {
    let mut lines: Vec<(Rec, String, Names)> = recs
        .iter()
        .map(|r| {
            let (text, names) = render(r, Render::Canonical);
            (r.clone(), text, names)
        })
        .collect();
    for (which, kind, seed, at) in copies {
        let src = which % lines.len();
        let copy = if kind == 0 {
            lines[src].clone()
        } else {
            let r = lines[src].0.clone();
            let (text, names) = render(&r, Render::Alternate(seed));
            (r, text, names)
        };
        let pos = at % (lines.len() + 1);
        lines.insert(pos, copy);
    }
    let mut input = Vec::new();
    for (i, (_, text, _)) in lines.iter().enumerate() {
        input.extend_from_slice(text.as_bytes());
        let last = i + 1 == lines.len();
        if !last || final_newline {
            if crlf[i % crlf.len()] {
                input.extend_from_slice(b"\r\n");
            } else {
                input.push(b'\n');
            }
        }
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), &input).unwrap();
    let job = common::write_job(
        dir.path(),
        "job.toml",
        &common::job_text(&["in.jsonl"], "json", "table", &["k", "s"], ""),
    );
    let report = common::run_job(&job, 2);

    let parsed: Vec<(Rec, Names)> = lines
        .iter()
        .map(|(r, _, n)| (r.clone(), n.clone()))
        .collect();
    let expect = oracle(&parsed, &["k", "s"]);
    let got = common::read_table_ordered(&dir.path().join("table"));

    prop_assert_eq!(report.rejected, 0, "quarantine: {:?}", report.quarantine);
    prop_assert!(report.committed);
    prop_assert_eq!(report.lines_in, lines.len() as u64);
    prop_assert_eq!(
        report.lines_in,
        report.rows_out + report.duplicates + report.rejected
    );
    prop_assert_eq!(report.rows_out, expect.rows.len() as u64);
    prop_assert_eq!(&got.columns, &expect.columns);
    prop_assert_eq!(got.rows.len(), expect.rows.len());
    for (i, (g, e)) in got.rows.iter().zip(&expect.rows).enumerate() {
        prop_assert_eq!(
            g,
            e,
            "row {} differs; input:\n{}",
            i,
            String::from_utf8_lossy(&input)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn json_rows_match_oracle(
        recs in proptest::collection::vec(rec_strategy(), 1..30),
        copies in proptest::collection::vec((any::<usize>(), 0u8..3, any::<u64>(), any::<usize>()), 0..20),
        crlf in proptest::collection::vec(any::<bool>(), 1..8),
        final_newline in any::<bool>(),
    ) {
        run_case(recs, copies, crlf, final_newline)?;
    }
}

/// A few fixed cases that the random ones reach only by luck.
#[test]
fn json_fixed_edge_cases() {
    let r = |k, s: &str, f, n: Option<(i64, &str)>, opt| Rec {
        k,
        s: s.to_string(),
        f,
        b: k % 2 == 0,
        n: n.map(|(x, y)| (x, y.to_string())),
        opt,
    };
    let recs = vec![
        r(1, "b", 0.0, None, Opt::Null),
        r(1, "b", -0.0, None, Opt::Missing),
        r(1, "", 1.0, Some((0, "")), Opt::Int(0)),
        r(0, "\u{0}\"\\", 2.5, Some((1, "x")), Opt::Missing),
        r(4, "😀 東京 \u{2028}", 1e300, None, Opt::Int(2)),
        r(1, "b", 0.0, Some((0, "")), Opt::Null),
    ];
    // every record again in other bytes, and the first twice verbatim
    let mut copies: Vec<Copy> = Vec::new();
    for i in 0..6 {
        copies.push((i, 1, i as u64 * 7 + 1, 100 + i));
    }
    copies.push((0, 0, 0, 0));
    copies.push((0, 0, 0, 3));
    run_case(recs, copies, vec![true, false, false], false).unwrap();
}

/// The same input, run with one and with two threads, gives byte-identical segments. The input
/// is larger than one chunk (8 MiB), so two threads really parse in parallel.
#[test]
fn segments_do_not_depend_on_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = compactor_bench_data::GenConfig::new(compactor_bench_data::GenFormat::Json, 0, 7);
    cfg.lines = 30_000;
    let (data, _) = compactor_bench_data::generate_to_vec(&cfg).unwrap();
    assert!(
        data.len() > compactor::job::DEFAULT_CHUNK_BYTES,
        "input of {} bytes is a single chunk",
        data.len()
    );
    std::fs::write(dir.path().join("events.jsonl"), &data).unwrap();
    let mut tables = Vec::new();
    for threads in [1usize, 2] {
        let name = format!("t{threads}");
        let job = common::write_job(
            dir.path(),
            &format!("{name}.toml"),
            &common::job_text(
                &["events.jsonl"],
                "json",
                &name,
                &["event", "ts"],
                "row_group_size = 4096\nmax_segment_rows = 12000\n",
            ),
        );
        let out = std::process::Command::new(CLI)
            .args([
                "run",
                job.to_str().unwrap(),
                "--threads",
                &threads.to_string(),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", common::stderr(&out));
        tables.push(dir.path().join(name));
    }
    let bytes = |t: &Path| -> Vec<Vec<u8>> {
        common::live_files(t)
            .iter()
            .map(|f| std::fs::read(&f.path).unwrap())
            .collect()
    };
    let (a, b) = (bytes(&tables[0]), bytes(&tables[1]));
    assert!(a.len() >= 2, "expected several segments, got {}", a.len());
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(x == y, "segment {i} differs between --threads 1 and 2");
    }
}
