//! JSON lines parsed projected onto a few columns (`ParseOptions::project`, what rollup-only
//! runs do): every invariant of `parse_and_check`, chunking independence, and agreement with
//! the full parse: a line that is not JSON (serde_json) is rejected; a line the full parse
//! accepts is accepted, with the same values in the projected columns.
#![no_main]

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use compactor_formats::json::Projection;
use compactor_formats::{parse_chunk, Format, ParseOptions};
use compactor_fuzz::{check_split, parse_and_check};
use libfuzzer_sys::fuzz_target;

/// Column `name` of row `row`, typed as text (`None`: absent or null).
fn cell(b: &RecordBatch, name: &str, row: usize) -> Option<(DataType, String)> {
    // (names match case-insensitively: the first spelling a parse saw names its column)
    let i = b
        .schema()
        .fields()
        .iter()
        .position(|f| f.name().eq_ignore_ascii_case(name))?;
    let c = b.column(i);
    if c.data_type() == &DataType::Null || c.is_null(row) {
        return None;
    }
    let text = match c.data_type() {
        DataType::Int64 => c.as_primitive::<Int64Type>().value(row).to_string(),
        DataType::Float64 => c.as_primitive::<Float64Type>().value(row).to_string(),
        DataType::Boolean => c.as_boolean().value(row).to_string(),
        DataType::Utf8 => c.as_string::<i32>().value(row).to_string(),
        DataType::Timestamp(..) => c
            .as_primitive::<TimestampMicrosecondType>()
            .value(row)
            .to_string(),
        t => panic!("unexpected column type {t}"),
    };
    Some((c.data_type().clone(), text))
}

fuzz_target!(|data: &[u8]| {
    let wanted = ["a", "b.c", "ts"];
    let mut opts = ParseOptions::new(Format::Json);
    opts.project = Some(Arc::new(Projection::new(wanted)));
    let checked = parse_and_check(&opts, data, 1);
    check_split(&opts, data, &checked.parsed);
    let full = parse_chunk(&ParseOptions::new(Format::Json), data, 1).expect("parses");
    let rejected = |p: &compactor_formats::ParsedChunk| -> Vec<u64> {
        p.rejects.iter().map(|r| r.line).collect()
    };
    let (proj_rej, full_rej) = (rejected(&checked.parsed), rejected(&full));
    // row index of each accepted line, in both parses
    let mut pr = 0usize;
    let mut fr = 0usize;
    for (i, line) in compactor_fuzz::split_records(&compactor_fuzz::framing_of(&opts), data)
        .iter()
        .map(|&(s, l, _)| &data[s..s + l])
        .enumerate()
    {
        let n = i as u64 + 1;
        let p_ok = !proj_rej.contains(&n);
        let f_ok = !full_rej.contains(&n);
        let json = serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok();
        assert!(!p_ok || json, "line {n}: projected parse accepted what is not JSON");
        if f_ok {
            assert!(p_ok, "line {n}: the full parse accepts it, the projected one does not");
            for w in wanted {
                let (p, f) = (cell(&checked.parsed.batch, w, pr), cell(&full.batch, w, fr));
                // (rows only one parse accepts can widen a column's type in it)
                let same_type = matches!((&p, &f), (Some((a, _)), Some((b, _))) if a == b);
                if same_type || p.is_none() || f.is_none() {
                    assert_eq!(p, f, "line {n}, column {w}");
                }
            }
        }
        pr += usize::from(p_ok);
        fr += usize::from(f_ok);
    }
});
