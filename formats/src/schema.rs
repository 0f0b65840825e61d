//! Column types, widening rules and schema unification.
//!
//! # Inference and widening
//! Each chunk decides each column's type from the kinds of values it saw:
//!
//! | values seen                          | column type                         |
//! |--------------------------------------|-------------------------------------|
//! | only nulls                           | (no type yet; `string` if never typed) |
//! | booleans                             | `bool`                              |
//! | integers that fit in i64             | `int`                               |
//! | integers and floats                  | `float` (`string` if an int is beyond ±2^53) |
//! | ISO 8601 / access-log timestamps     | `timestamp` (UTC, microseconds)     |
//! | anything else, or a mix of the above | `string`                            |
//!
//! So the lattice is `null < bool`, `null < int < float`, `null < timestamp`, and every other
//! pair widens to `string`. Within a chunk widening is lossless: a string column keeps each
//! value's verbatim source text (`1.50` stays `1.50`). Across chunks, [`conform`] casts with
//! Arrow's cast kernels, so a number from a chunk that was typed `float` reads back in its
//! canonical form (`1.5`); force the column's type in the job's `[schema]` to avoid that.
//!
//! Column names are matched case-insensitively (Delta's rule): the first spelling seen wins.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{new_null_array, Array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{FormatError, Result};

/// The logical types compactor writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ColumnType {
    /// `true` / `false`; Arrow `Boolean`, Delta `boolean`.
    Bool,
    /// 64-bit signed integer; Arrow `Int64`, Delta `long`.
    Int,
    /// 64-bit float; Arrow `Float64`, Delta `double`.
    Float,
    /// Instant in UTC with microsecond precision; Arrow `Timestamp(us, "UTC")`, Delta `timestamp`.
    Timestamp,
    /// UTF-8 text; Arrow `Utf8`, Delta `string`.
    String,
}

impl ColumnType {
    /// Every type with the name used in job files and by `compactor infer`.
    pub const NAMES: [(&'static str, ColumnType); 5] = [
        ("bool", ColumnType::Bool),
        ("int", ColumnType::Int),
        ("float", ColumnType::Float),
        ("timestamp", ColumnType::Timestamp),
        ("string", ColumnType::String),
    ];

    /// The name used in job files.
    pub fn name(self) -> &'static str {
        ColumnType::NAMES
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("?", |(n, _)| *n)
    }

    /// The Arrow type of a column of this type.
    pub fn data_type(self) -> DataType {
        match self {
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Int => DataType::Int64,
            ColumnType::Float => DataType::Float64,
            ColumnType::Timestamp => timestamp_type(),
            ColumnType::String => DataType::Utf8,
        }
    }

    /// The column type of an Arrow type, if it is one compactor writes.
    pub fn from_data_type(dt: &DataType) -> Option<ColumnType> {
        Some(match dt {
            DataType::Boolean => ColumnType::Bool,
            DataType::Int64 => ColumnType::Int,
            DataType::Float64 => ColumnType::Float,
            DataType::Timestamp(TimeUnit::Microsecond, _) => ColumnType::Timestamp,
            DataType::Utf8 => ColumnType::String,
            _ => return None,
        })
    }

    /// The narrowest type that holds values of both types (see the module docs).
    pub fn widen(self, other: ColumnType) -> ColumnType {
        use ColumnType::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Int, Float) | (Float, Int) => Float,
            _ => String,
        }
    }
}

impl std::str::FromStr for ColumnType {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self> {
        let t = match s.to_ascii_lowercase().as_str() {
            "bool" | "boolean" => ColumnType::Bool,
            "int" | "long" | "int64" | "bigint" => ColumnType::Int,
            "float" | "double" | "float64" => ColumnType::Float,
            "timestamp" => ColumnType::Timestamp,
            "string" | "str" | "text" => ColumnType::String,
            _ => {
                return Err(FormatError::InvalidOption(format!(
                "unknown column type {s:?}; expected one of: bool, int, float, timestamp, string"
            )))
            }
        };
        Ok(t)
    }
}

impl std::fmt::Display for ColumnType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Arrow type of timestamp columns: microseconds, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Characters Delta and Parquet readers refuse in column names (without column mapping).
pub const INVALID_NAME_CHARS: &[char] = &[' ', ',', ';', '{', '}', '(', ')', '\n', '\t', '='];

/// Makes a field name safe as a Delta column name: each character of
/// [`INVALID_NAME_CHARS`] becomes `_`, and an empty name becomes `_`.
pub fn sanitize_name(name: &str) -> std::borrow::Cow<'_, str> {
    if name.is_empty() {
        return "_".into();
    }
    if name.contains(INVALID_NAME_CHARS) {
        name.replace(INVALID_NAME_CHARS, "_").into()
    } else {
        name.into()
    }
}

/// The schema that holds every batch's columns: columns in order of first appearance
/// (case-insensitive), types widened. A column that is `Null` everywhere becomes `string`.
/// `base` (for example an existing table's schema) comes first and its types are kept: a
/// batch whose type for a base column differs is a [`FormatError::SchemaConflict`].
pub fn unify<'a>(
    base: Option<&Schema>,
    schemas: impl IntoIterator<Item = &'a Schema>,
) -> Result<SchemaRef> {
    let mut t = SchemaTracker::new(base)?;
    for s in schemas {
        t.observe_schema(s)?;
    }
    Ok(t.unified(false, &DataType::Utf8))
}

/// [`unify`] for batches, keeping ints exact: a column that is `int` in some batches and
/// `float` in others widens to `float` only if every int fits a float exactly (|i| <= 2^53);
/// otherwise it becomes `string`, as it would within one chunk. Columns fixed by `base` keep
/// their type (the parser already rejected values that do not fit it).
pub fn unify_batches(base: Option<&Schema>, batches: &[RecordBatch]) -> Result<SchemaRef> {
    let mut t = SchemaTracker::new(base)?;
    for b in batches {
        t.observe(b)?;
    }
    Ok(t.schema())
}

/// [`unify_batches`], one batch at a time: the schema of everything observed so far.
///
/// Columns are only ever appended and types only ever widen, so an earlier
/// [`SchemaTracker::working_schema`] is always a prefix of a later one (and of the final
/// [`SchemaTracker::schema`]), with narrower or equal types: a batch conformed ([`conform`]) to
/// an earlier schema can be conformed again to a later one, with the same result.
#[derive(Debug, Clone, Default)]
pub struct SchemaTracker {
    /// (name, type so far, fixed by the base, an int beyond ±2^53 was seen)
    columns: Vec<(String, Option<ColumnType>, bool, bool)>,
    index: HashMap<String, usize>,
    cached: Option<SchemaRef>,
}

impl SchemaTracker {
    /// A tracker that starts from `base` (whose types are fixed).
    pub fn new(base: Option<&Schema>) -> Result<Self> {
        let mut t = SchemaTracker::default();
        for f in base.map(|b| b.fields().iter()).into_iter().flatten() {
            let ty = ColumnType::from_data_type(f.data_type()).ok_or_else(|| {
                FormatError::SchemaConflict(format!(
                    "column {} has unsupported type {}",
                    f.name(),
                    f.data_type()
                ))
            })?;
            t.index
                .insert(f.name().to_ascii_lowercase(), t.columns.len());
            t.columns.push((f.name().clone(), Some(ty), true, false));
        }
        Ok(t)
    }

    /// Widens the tracked schema by a batch's columns and values.
    pub fn observe(&mut self, batch: &RecordBatch) -> Result<()> {
        self.observe_schema(batch.schema_ref())?;
        for (f, col) in batch.schema().fields().iter().zip(batch.columns()) {
            if col.data_type() != &DataType::Int64 {
                continue;
            }
            let i = self.index[&f.name().to_ascii_lowercase()];
            if !self.columns[i].3 {
                let ints = col.as_primitive::<Int64Type>();
                let beyond = |v: i64| v.unsigned_abs() > 1 << 53;
                // fast path without nulls; values under null slots are unspecified
                let big = if ints.null_count() == 0 {
                    ints.values().iter().any(|&v| beyond(v))
                } else {
                    ints.iter().flatten().any(beyond)
                };
                if big {
                    self.columns[i].3 = true;
                    self.cached = None;
                }
            }
        }
        Ok(())
    }

    fn observe_schema(&mut self, schema: &Schema) -> Result<()> {
        for f in schema.fields() {
            let t = if f.data_type() == &DataType::Null {
                None
            } else {
                Some(ColumnType::from_data_type(f.data_type()).ok_or_else(|| {
                    FormatError::SchemaConflict(format!(
                        "column {} has unsupported type {}",
                        f.name(),
                        f.data_type()
                    ))
                })?)
            };
            let key = f.name().to_ascii_lowercase();
            match self.index.get(&key) {
                Some(&i) => {
                    let (name, cur, fixed, _) = &mut self.columns[i];
                    let next = match (*cur, t) {
                        (_, None) => continue,
                        (None, Some(t)) => t,
                        (Some(c), Some(t)) if c == t => continue,
                        (Some(c), Some(t)) if *fixed => {
                            return Err(FormatError::SchemaConflict(format!(
                                "column {name} is {c} in the table but {t} in the input"
                            )))
                        }
                        (Some(c), Some(t)) => c.widen(t),
                    };
                    *cur = Some(next);
                }
                None => {
                    self.index.insert(key, self.columns.len());
                    self.columns.push((f.name().clone(), t, false, false));
                }
            }
            self.cached = None;
        }
        Ok(())
    }

    /// Columns tracked.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Whether no column was seen.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The schema of everything observed so far, as it will be written: a column seen only
    /// as nulls is `string`.
    pub fn schema(&self) -> SchemaRef {
        self.unified(true, &DataType::Utf8)
    }

    /// The schema of everything observed so far, with a column seen only as nulls kept as
    /// Arrow `Null`: what batches are conformed to while the input is still being read, so that
    /// a column that gets its type later only widens from `Null` (data sorted under the
    /// working schema stays sorted under the final one).
    pub fn working_schema(&mut self) -> SchemaRef {
        if let Some(s) = &self.cached {
            return s.clone();
        }
        let s = self.unified(true, &DataType::Null);
        self.cached = Some(s.clone());
        s
    }

    fn unified(&self, exact_ints: bool, untyped: &DataType) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|(name, t, fixed, big)| {
                let t = match t {
                    None => return Field::new(name, untyped.clone(), true),
                    Some(ColumnType::Float) if exact_ints && *big && !fixed => ColumnType::String,
                    Some(t) => *t,
                };
                Field::new(name, t.data_type(), true)
            })
            .collect();
        Arc::new(Schema::new(fields))
    }
}

/// Brings `batch` to `schema`: columns matched case-insensitively by name, missing ones
/// filled with nulls, types cast (see the module docs for what casting to string renders).
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema().as_ref() == schema.as_ref() {
        return Ok(batch.clone());
    }
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for (i, f) in batch.schema().fields().iter().enumerate() {
        by_name.insert(f.name().to_ascii_lowercase(), i);
    }
    let columns = schema
        .fields()
        .iter()
        .map(|f| -> Result<ArrayRef> {
            match by_name.get(&f.name().to_ascii_lowercase()) {
                None => Ok(new_null_array(f.data_type(), batch.num_rows())),
                Some(&i) => {
                    let col = batch.column(i);
                    if col.data_type() == f.data_type() {
                        Ok(col.clone())
                    } else if col.data_type() == &DataType::Float64
                        && f.data_type() == &DataType::Utf8
                    {
                        floats_to_strings(col.as_primitive::<Float64Type>())
                    } else {
                        Ok(arrow_cast::cast(col, f.data_type())?)
                    }
                }
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let opts = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &opts,
    )?)
}

/// Floats as text, an integral value within ±2^53 written as an integer (`1`, not `1.0`).
///
/// `int` widens to `float` and `float` to `string`; writing integral floats as integers makes
/// `int -> float -> string` give the same text as `int -> string`, so a value's text does not
/// depend on the types its column had when it was conformed (which would make output bytes
/// depend on where a sort spilled).
fn floats_to_strings(a: &arrow_array::Float64Array) -> Result<ArrayRef> {
    let canonical = arrow_cast::cast(a, &DataType::Utf8)?;
    let canonical = canonical.as_string::<i32>();
    let mut out = arrow_array::builder::StringBuilder::with_capacity(a.len(), a.len() * 8);
    let mut buf = String::new();
    for (i, v) in a.iter().enumerate() {
        match v {
            None => out.append_null(),
            Some(x)
                if x.fract() == 0.0
                    && x.abs() <= (1u64 << 53) as f64
                    && !(x == 0.0 && x.is_sign_negative()) =>
            {
                use std::fmt::Write;
                buf.clear();
                let _ = write!(buf, "{}", x as i64);
                out.append_value(&buf);
            }
            Some(_) => out.append_value(canonical.value(i)),
        }
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};

    #[test]
    fn widening_lattice() {
        use ColumnType::*;
        assert_eq!(Int.widen(Float), Float);
        assert_eq!(Float.widen(Int), Float);
        assert_eq!(Int.widen(Bool), String);
        assert_eq!(Timestamp.widen(Int), String);
        assert_eq!(Timestamp.widen(Timestamp), Timestamp);
        for (_, t) in ColumnType::NAMES {
            assert_eq!(t.widen(String), String);
            assert_eq!(t.name().parse::<ColumnType>().unwrap(), t);
            assert_eq!(ColumnType::from_data_type(&t.data_type()), Some(t));
        }
    }

    #[test]
    fn unify_orders_widens_and_respects_base() {
        let a = Schema::new(vec![
            Field::new("x", DataType::Int64, true),
            Field::new("n", DataType::Null, true),
        ]);
        let b = Schema::new(vec![
            Field::new("X", DataType::Float64, true),
            Field::new("y", DataType::Utf8, true),
        ]);
        let u = unify(None, [&a, &b]).unwrap();
        let names: Vec<_> = u
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type().clone()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("x", DataType::Float64),
                ("n", DataType::Utf8),
                ("y", DataType::Utf8)
            ]
        );
        let base = Schema::new(vec![Field::new("x", DataType::Int64, true)]);
        assert!(unify(Some(&base), [&b]).is_err());
        assert!(unify(Some(&base), [&a]).is_ok());
    }

    #[test]
    fn conforming_in_steps_gives_the_same_text() {
        // int -> float -> string must equal int -> string (a run spilled under an earlier
        // schema is conformed twice).
        let ints = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(vec![
                Some(1),
                None,
                Some(-7),
                Some(0),
                Some(1 << 53),
            ]))],
        )
        .unwrap();
        let float = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, true)]));
        let string = Arc::new(Schema::new(vec![Field::new("x", DataType::Utf8, true)]));
        let direct = conform(&ints, &string).unwrap();
        let stepped = conform(&conform(&ints, &float).unwrap(), &string).unwrap();
        assert_eq!(direct, stepped);
        let fl = RecordBatch::try_new(
            float.clone(),
            vec![Arc::new(arrow_array::Float64Array::from(vec![
                1.5, -0.0, 2.0, 1e300,
            ]))],
        )
        .unwrap();
        let s = conform(&fl, &string).unwrap();
        let s = s.column(0).as_string::<i32>();
        assert_eq!(
            s.iter().flatten().collect::<Vec<_>>(),
            ["1.5", "-0.0", "2", "1e300"]
        );
    }

    #[test]
    fn conform_fills_and_casts() {
        let s = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(s, vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap();
        let target = Arc::new(Schema::new(vec![
            Field::new("b", DataType::Utf8, true),
            Field::new("A", DataType::Utf8, true),
        ]));
        let out = conform(&batch, &target).unwrap();
        assert_eq!(out.column(0).null_count(), 2);
        let a = out
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(a.value(1), "2");
    }

    #[test]
    fn big_ints_do_not_widen_to_float_across_batches() {
        let ints = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        let floats = Arc::new(Schema::new(vec![Field::new("id", DataType::Float64, true)]));
        let small =
            RecordBatch::try_new(ints.clone(), vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
        let big = RecordBatch::try_new(
            ints,
            vec![Arc::new(Int64Array::from(vec![9_007_199_254_740_993]))],
        )
        .unwrap();
        let f = RecordBatch::try_new(
            floats,
            vec![Arc::new(arrow_array::Float64Array::from(vec![1.5]))],
        )
        .unwrap();
        assert_eq!(
            unify_batches(None, &[small, f.clone()])
                .unwrap()
                .field(0)
                .data_type(),
            &DataType::Float64
        );
        let u = unify_batches(None, &[big.clone(), f]).unwrap();
        assert_eq!(u.field(0).data_type(), &DataType::Utf8);
        let s = conform(&big, &u).unwrap();
        assert_eq!(s.column(0).as_string::<i32>().value(0), "9007199254740993");
    }

    #[test]
    fn sanitize() {
        assert_eq!(sanitize_name("a b=c"), "a_b_c");
        assert_eq!(sanitize_name(""), "_");
        assert_eq!(sanitize_name("playback.position_s"), "playback.position_s");
    }
}
