//! Sort and deduplicate a run's rows in one operator.
//!
//! # Why one operator
//! Exact duplicates are identical rows. Sorting by *every* column (the sort key first, then the
//! remaining columns in schema order) puts identical rows next to each other, so dedup becomes
//! one linear pass over the sorted order, and the output order is a pure function of the row
//! values: the same input gives the same bytes whatever the thread count or chunking.
//!
//! # Algorithm
//! 1. Buffer the pushed batches, reserving their memory ([`crate::MemoryPool`]).
//! 2. `finish`: concatenate; encode each row with Arrow's row format (`arrow-row`), which
//!    turns a multi-column comparison into one `memcmp`; columns ascending, nulls first.
//! 3. `keys` mode only: keep the first occurrence (input order) of each key, by hashing the
//!    key columns' row encoding.
//! 4. Sort row indices in parallel (rayon), comparing encoded rows, ties by input position.
//! 5. `exact` mode: drop a row equal to its predecessor.
//! 6. Gather the surviving rows with `take`.
//!
//! ```text
//!  push(batch)* ─▶ concat ─▶ row-encode (sort key ++ rest) ─▶ [keys: first per key]
//!                                             │
//!            take ◀─ [exact: drop equal neighbours] ◀─ parallel sort of indices
//! ```
//! Everything is in memory for now; a batch that does not fit in the budget fails with
//! `ResourcesExhausted`. The engine issue replaces steps 2-6 with sorted runs spilled to disk
//! and a k-way merge that dedups while merging, behind the same interface.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, UInt32Array};
use arrow_row::{RowConverter, SortField};
use arrow_schema::SchemaRef;
use rayon::prelude::*;

use crate::memory::{MemoryPool, MemoryReservation};
use crate::{EngineError, Result};

/// How duplicates are recognised.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DedupMode {
    /// Rows equal in every column are one record; the copies are dropped.
    #[default]
    Exact,
    /// Rows equal in these columns are one record; the first in input order is kept.
    Keys(Vec<String>),
    /// Keep every row.
    None,
}

/// The sorted, deduplicated rows.
#[derive(Debug)]
pub struct SortDedupOutput {
    /// The rows, in output order.
    pub batch: RecordBatch,
    /// Rows dropped as duplicates.
    pub duplicates: u64,
}

/// The sort + dedup operator. See the module docs.
#[derive(Debug)]
pub struct SortDedup {
    schema: SchemaRef,
    order: Vec<usize>,
    keys: Option<Vec<usize>>,
    exact: bool,
    batches: Vec<RecordBatch>,
    reservation: MemoryReservation,
}

fn column_index(schema: &SchemaRef, name: &str, what: &str) -> Result<usize> {
    schema
        .fields()
        .iter()
        .position(|f| f.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let have: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            EngineError::Plan(format!(
                "{what} column {name:?} is not in the data (columns: {})",
                have.join(", ")
            ))
        })
}

impl SortDedup {
    /// An operator for batches of `schema`, sorting by `sort_by` (then all other columns).
    pub fn try_new(
        schema: SchemaRef,
        sort_by: &[String],
        dedup: DedupMode,
        pool: &Arc<MemoryPool>,
    ) -> Result<Self> {
        let mut order = Vec::with_capacity(schema.fields().len());
        for name in sort_by {
            let i = column_index(&schema, name, "sort")?;
            if !order.contains(&i) {
                order.push(i);
            }
        }
        for i in 0..schema.fields().len() {
            if !order.contains(&i) {
                order.push(i);
            }
        }
        let keys = match &dedup {
            DedupMode::Keys(k) if k.is_empty() => {
                return Err(EngineError::Plan(
                    "dedup mode \"keys\" needs at least one key column".into(),
                ))
            }
            DedupMode::Keys(k) => Some(
                k.iter()
                    .map(|n| column_index(&schema, n, "dedup key"))
                    .collect::<Result<Vec<_>>>()?,
            ),
            _ => None,
        };
        Ok(SortDedup {
            schema,
            order,
            keys,
            exact: dedup == DedupMode::Exact,
            batches: Vec::new(),
            reservation: pool.reservation("sort-dedup"),
        })
    }

    /// Buffers a batch. Its schema must be the operator's.
    pub fn push(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.schema() != self.schema {
            return Err(EngineError::Plan(
                "batch schema differs from the operator's".into(),
            ));
        }
        self.reservation.try_grow(batch.get_array_memory_size())?;
        self.batches.push(batch);
        Ok(())
    }

    /// Rows buffered so far.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Sorts and deduplicates everything pushed.
    pub fn finish(mut self) -> Result<SortDedupOutput> {
        let batch = arrow_select::concat::concat_batches(&self.schema, &self.batches)?;
        self.reservation.try_grow(batch.get_array_memory_size())?;
        self.batches.clear();
        self.reservation.try_resize(batch.get_array_memory_size())?;
        let n = batch.num_rows();
        if n > u32::MAX as usize {
            return Err(EngineError::Plan(format!(
                "{n} rows exceed the in-memory sort's 4 billion row limit"
            )));
        }

        let mut survivors: Vec<u32> = match &self.keys {
            None => (0..n as u32).collect(),
            Some(keys) => {
                let rows = encode(&batch, keys)?;
                self.reservation.try_grow(rows.size())?;
                let mut seen = HashSet::with_capacity(n);
                let kept: Vec<u32> = (0..n)
                    .filter(|&i| seen.insert(rows.row(i)))
                    .map(|i| i as u32)
                    .collect();
                self.reservation.shrink(rows.size());
                kept
            }
        };
        let rows = encode(&batch, &self.order)?;
        self.reservation
            .try_grow(rows.size() + survivors.len() * 4)?;
        survivors.par_sort_unstable_by(|&a, &b| {
            rows.row(a as usize)
                .cmp(&rows.row(b as usize))
                .then(a.cmp(&b))
        });
        if self.exact {
            survivors.dedup_by(|b, a| rows.row(*a as usize) == rows.row(*b as usize));
        }
        drop(rows);
        let duplicates = (n - survivors.len()) as u64;
        let indices = UInt32Array::from(survivors);
        let columns: Vec<ArrayRef> = batch
            .columns()
            .par_iter()
            .map(|c| arrow_select::take::take(c.as_ref(), &indices, None))
            .collect::<std::result::Result<_, _>>()?;
        let out = RecordBatch::try_new(self.schema.clone(), columns)?;
        Ok(SortDedupOutput {
            batch: out,
            duplicates,
        })
    }
}

fn encode(batch: &RecordBatch, columns: &[usize]) -> Result<arrow_row::Rows> {
    let fields = columns
        .iter()
        .map(|&i| SortField::new(batch.schema().field(i).data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let arrays: Vec<ArrayRef> = columns.iter().map(|&i| batch.column(i).clone()).collect();
    Ok(converter.convert_columns(&arrays)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use proptest::prelude::*;

    fn batch(a: Vec<Option<i64>>, b: Vec<Option<&str>>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(a)),
                Arc::new(StringArray::from(b)),
            ],
        )
        .unwrap()
    }

    fn rows(b: &RecordBatch) -> Vec<(Option<i64>, Option<String>)> {
        let a = b.column(0).as_primitive::<Int64Type>();
        let s = b.column(1).as_string::<i32>();
        (0..b.num_rows())
            .map(|i| {
                (
                    (!a.is_null(i)).then(|| a.value(i)),
                    (!s.is_null(i)).then(|| s.value(i).to_string()),
                )
            })
            .collect()
    }

    use arrow_array::Array;

    proptest! {
        #[test]
        fn matches_oracle(data in proptest::collection::vec((proptest::option::of(0i64..5), proptest::option::of("[ab]{0,2}")), 0..200), split in 0usize..200) {
            let pool = MemoryPool::new(1 << 30);
            let (a, b): (Vec<_>, Vec<_>) = data.iter().cloned().unzip();
            let full = batch(a, b.iter().map(|s| s.as_deref()).collect());
            let split = split.min(full.num_rows());
            for mode in [DedupMode::Exact, DedupMode::None, DedupMode::Keys(vec!["a".into()])] {
                let mut op = SortDedup::try_new(full.schema(), &["b".to_string()], mode.clone(), &pool).unwrap();
                op.push(full.slice(0, split)).unwrap();
                op.push(full.slice(split, full.num_rows() - split)).unwrap();
                let out = op.finish().unwrap();
                // Oracle: dedup as asked, then sort by (b, a) with nulls first.
                let mut expect: Vec<(Option<i64>, Option<String>)> = Vec::new();
                for r in &data {
                    let dup = match &mode {
                        DedupMode::Exact => expect.contains(r),
                        DedupMode::Keys(_) => expect.iter().any(|e| e.0 == r.0),
                        _ => false,
                    };
                    if !dup { expect.push(r.clone()); }
                }
                expect.sort_by(|x, y| (&x.1, x.0).cmp(&(&y.1, y.0)));
                prop_assert_eq!(out.duplicates as usize, data.len() - expect.len());
                prop_assert_eq!(rows(&out.batch), expect);
                prop_assert_eq!(pool.used(), 0);
            }
        }
    }

    #[test]
    fn budget_is_enforced_and_released() {
        let pool = MemoryPool::new(64);
        let b = batch(vec![Some(1); 100], vec![Some("x"); 100]);
        let mut op = SortDedup::try_new(b.schema(), &[], DedupMode::Exact, &pool).unwrap();
        assert!(matches!(
            op.push(b),
            Err(EngineError::ResourcesExhausted { .. })
        ));
        drop(op);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn unknown_columns_are_plan_errors() {
        let pool = MemoryPool::new(1 << 20);
        let b = batch(vec![], vec![]);
        assert!(matches!(
            SortDedup::try_new(b.schema(), &["zz".into()], DedupMode::Exact, &pool),
            Err(EngineError::Plan(_))
        ));
        assert!(matches!(
            SortDedup::try_new(b.schema(), &[], DedupMode::Keys(vec![]), &pool),
            Err(EngineError::Plan(_))
        ));
    }
}
