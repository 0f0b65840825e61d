//! `sort_by = "auto"`: choosing the sort key from the data.
//!
//! # Why
//! The sort key decides the ratio more than any codec: sorted by low-cardinality columns
//! first, each column becomes long runs that dictionary and RLE encodings shrink to almost
//! nothing, and a timestamp sorted inside small groups becomes small deltas (ClickHouse's
//! advice for `ORDER BY`). Where the timestamp goes is a trade: first, it compresses to nearly
//! nothing and the rest stays random; last, every group column compresses well and the
//! timestamp pays. That depends on the data, so it is measured, not guessed.
//!
//! # Algorithm
//! On a sample (the first [`AUTO_SAMPLE_ROWS`] parsed rows: contiguous input, so the density
//! of timestamps is the file's):
//! 1. count each column's distinct values; the *group* columns are the non-float columns with
//!    at most [`MAX_GROUP_DISTINCT_SHARE`] of the rows distinct (and not constant), lowest
//!    count first (ties by name), at most [`MAX_KEY_COLUMNS`]` - 2`; *entity* columns are
//!    lookup-key-like names (`ip`, `session_id`, see [`layout::key_like`]) with at most
//!    [`MAX_ENTITY_DISTINCT_SHARE`] distinct; the *time* column is the timestamp with the most
//!    distinct values;
//! 2. candidates: the time column alone, the first `k` group columns then the time column for
//!    each `k`, all group columns without it, for each entity `[entity, time]` and
//!    `[groups.., entity, time]`, and no key at all (the rows ordered by every column in schema
//!    order, as a run without a key does: on snapshots of counters whose first columns are
//!    constants and then a time, that is time order, with no column known as the time);
//! 3. each candidate sorts the first [`TRIAL_ROWS`] rows of the sample (key, then every other
//!    column, as the run does) and encodes them with [`crate::layout::choose`] at a fast level;
//!    the smallest total wins (ties: the shorter key), except that no key must beat the best
//!    key by [`layout::DEFAULT_MIN_GAIN`] (a key is worth something to readers).
//!
//! ```text
//!  sample ─▶ distinct counts ─▶ group cols (low → high), time col
//!                 candidates: [ts] [g1,ts] [g1,g2,ts] … [g1..gn]
//!                 each: sort sample ─▶ layout trial ─▶ bytes ─▶ smallest wins
//! ```
//! Everything is a function of the sample's values, so the choice is deterministic.

use anyhow::Result;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_ord::sort::{lexsort_to_indices, SortColumn, SortOptions};
use arrow_schema::DataType;
use rayon::prelude::*;

use crate::layout::{self, LayoutOptions};

/// Rows parsed before the key is chosen.
pub const AUTO_SAMPLE_ROWS: usize = 64 * 1024;
/// Rows each candidate key is tried on.
pub const TRIAL_ROWS: usize = 32 * 1024;
/// Most columns in a chosen key.
pub const MAX_KEY_COLUMNS: usize = 6;
/// A column with more distinct values than this share of the sample's rows is not a group
/// column (ids, free text, numbers).
pub const MAX_GROUP_DISTINCT_SHARE: f64 = 0.1;
/// A lookup-key-like column (`ip`, `session_id`, ...) with at most this share of distinct
/// values is an *entity* the rows can be grouped by.
pub const MAX_ENTITY_DISTINCT_SHARE: f64 = 0.5;
/// Most entity columns tried.
pub const MAX_ENTITIES: usize = 2;
/// zstd level of the key trials (the ranking of keys does not need the final level).
pub const TRIAL_ZSTD_LEVEL: i32 = 3;

/// The chosen key and what each candidate measured.
#[derive(Debug, Clone)]
pub struct Choice {
    /// The key.
    pub key: Vec<String>,
    /// Every candidate with its trial bytes.
    pub trials: Vec<(Vec<String>, usize)>,
}

/// Chooses the sort key for rows like `sample`; `exclude` names columns never to use (the
/// partition column, which leads the key anyway).
pub fn choose(sample: &RecordBatch, exclude: &[String]) -> Result<Choice> {
    let rows = sample.num_rows();
    if rows == 0 {
        return Ok(Choice {
            key: Vec::new(),
            trials: Vec::new(),
        });
    }
    let schema = sample.schema();
    let mut group: Vec<(usize, String)> = Vec::new();
    let mut entities: Vec<(usize, String)> = Vec::new();
    let mut time: Option<(usize, String)> = None;
    for (f, a) in schema.fields().iter().zip(sample.columns()) {
        if exclude.iter().any(|e| e.eq_ignore_ascii_case(f.name())) || a.null_count() == rows {
            continue;
        }
        let distinct = distinct(a);
        let share = distinct as f64 / rows as f64;
        match f.data_type() {
            DataType::Timestamp(..) if time.as_ref().is_none_or(|(d, _)| distinct > *d) => {
                time = Some((distinct, f.name().clone()));
            }
            DataType::Timestamp(..) => {}
            DataType::Float32 | DataType::Float64 => {}
            _ if distinct > 1 && share <= MAX_GROUP_DISTINCT_SHARE => {
                group.push((distinct, f.name().clone()))
            }
            _ if share <= MAX_ENTITY_DISTINCT_SHARE && layout::key_like(f.name()) => {
                entities.push((distinct, f.name().clone()))
            }
            _ => {}
        }
    }
    group.sort();
    group.truncate(MAX_KEY_COLUMNS - usize::from(time.is_some()) - 1);
    let group: Vec<String> = group.into_iter().map(|(_, n)| n).collect();
    entities.sort();
    entities.truncate(MAX_ENTITIES);
    let time: Vec<String> = time.into_iter().map(|(_, t)| t).collect();
    let mut candidates: Vec<Vec<String>> = Vec::new();
    let mut add = |parts: &[&[String]]| {
        let key: Vec<String> = parts.concat();
        if !key.is_empty() && !candidates.contains(&key) {
            candidates.push(key);
        }
    };
    for k in 0..=group.len() {
        add(&[&group[..k], &time]);
    }
    add(&[&group]);
    // An entity (a client, a session) before the time keeps each one's events together:
    // its other columns repeat and its timestamps are close.
    for (_, e) in &entities {
        let e = std::slice::from_ref(e);
        add(&[e, &time]);
        add(&[&group, e, &time]);
    }
    if candidates.is_empty() {
        return Ok(Choice {
            key: Vec::new(),
            trials: Vec::new(),
        });
    }
    // No key: the rows in schema order of all columns, which is what the run does without one.
    candidates.push(Vec::new());
    let trial = sample.slice(0, rows.min(TRIAL_ROWS));
    let sizes = candidates
        .par_iter()
        .map(|key| trial_bytes(&trial, key))
        .collect::<Result<Vec<_>>>()?;
    let trials: Vec<(Vec<String>, usize)> = candidates.into_iter().zip(sizes).collect();
    let (keyed, none) = trials.split_at(trials.len() - 1);
    let best = keyed
        .iter()
        .min_by_key(|(k, s)| (*s, k.len()))
        .expect("candidates is not empty");
    // A key is worth something to readers (`sorting_columns`, pruning): no key must beat the
    // best one clearly.
    let key = if (none[0].1 as f64) < best.1 as f64 * (1.0 - layout::DEFAULT_MIN_GAIN) {
        Vec::new()
    } else {
        best.0.clone()
    };
    Ok(Choice { key, trials })
}

fn distinct(a: &ArrayRef) -> usize {
    layout::distinct_values(a, true).unwrap_or(usize::MAX)
}

/// Bytes of `rows` sorted by `key` (then the other columns) in the layout the trial picks.
fn trial_bytes(rows: &RecordBatch, key: &[String]) -> Result<usize> {
    let schema = rows.schema();
    let mut order: Vec<usize> = key.iter().filter_map(|k| schema.index_of(k).ok()).collect();
    for i in 0..schema.fields().len() {
        if !order.contains(&i) {
            order.push(i);
        }
    }
    let columns: Vec<SortColumn> = order
        .iter()
        .filter(|&&i| is_sortable(schema.field(i).data_type()))
        .map(|&i| SortColumn {
            values: rows.column(i).clone(),
            options: Some(SortOptions {
                descending: false,
                nulls_first: true,
            }),
        })
        .collect();
    let idx = lexsort_to_indices(&columns, None)?;
    let sorted = arrow_select::take::take_record_batch(rows, &idx)?;
    let opts = LayoutOptions {
        zstd_level: TRIAL_ZSTD_LEVEL,
        max_zstd_level: TRIAL_ZSTD_LEVEL,
        tiny_max_zstd_level: TRIAL_ZSTD_LEVEL,
        expected_rows: 0,
        ..Default::default()
    };
    let l = layout::choose(&sorted, &opts)?;
    Ok(l.columns
        .iter()
        .map(|c| c.trials.iter().map(|(_, s)| *s).min().unwrap_or(0))
        .sum())
}

fn is_sortable(t: &DataType) -> bool {
    !matches!(
        t,
        DataType::List(_) | DataType::Struct(_) | DataType::Map(..) | DataType::Null
    )
}

/// The sample as one batch in `schema` (columns missing from a batch are null): the sampled
/// batches were pushed in the working schemas of their time.
pub fn sample_batch(
    batches: &[RecordBatch],
    schema: &arrow_schema::SchemaRef,
) -> Result<RecordBatch> {
    let conformed = batches
        .iter()
        .map(|b| compactor_formats::schema::conform(b, schema))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(arrow_select::concat::concat_batches(schema, &conformed)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use std::sync::Arc;

    /// Access-log-like rows: a few statuses and methods, many ids, time in input order.
    fn sample(n: usize) -> RecordBatch {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let status: Vec<i64> = (0..n)
            .map(|_| [200, 200, 200, 304, 404][(next() % 5) as usize])
            .collect();
        let method: Vec<&str> = (0..n)
            .map(|_| ["GET", "GET", "POST"][(next() % 3) as usize])
            .collect();
        let id: Vec<String> = (0..n).map(|_| format!("{:016x}", next())).collect();
        let ts: Vec<i64> = (0..n)
            .map(|i| 1_700_000_000_000_000 + i as i64 * 50_000)
            .collect();
        RecordBatch::try_from_iter(vec![
            (
                "ts",
                Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")) as ArrayRef,
            ),
            ("id", Arc::new(StringArray::from(id))),
            ("method", Arc::new(StringArray::from(method))),
            ("status", Arc::new(Int64Array::from(status))),
        ])
        .unwrap()
    }

    #[test]
    fn low_cardinality_first_ids_never_and_time_placed_by_trial() {
        let s = sample(20_000);
        let c = choose(&s, &[]).unwrap();
        assert!(!c.key.contains(&"id".to_string()), "{:?}", c.key);
        // candidates: [ts], [method, ts], [method, status, ts], [method, status], none; `id`
        // is mostly distinct: no entity
        assert_eq!(c.trials.len(), 5, "{:?}", c.trials);
        assert!(c.trials[4].0.is_empty());
        assert_eq!(c.trials[1].0, vec!["method".to_string(), "ts".into()]);
        // time-ordered input with random ids: a key wins here
        assert!(!c.key.is_empty());
        let best = c.trials[..4].iter().map(|(_, s)| *s).min().unwrap();
        let chosen = c.trials.iter().find(|(k, _)| *k == c.key).unwrap().1;
        assert_eq!(chosen, best);
        // deterministic
        assert_eq!(choose(&s, &[]).unwrap().key, c.key);
        // an excluded column is never in the key
        let c2 = choose(&s, &["method".to_string()]).unwrap();
        assert!(!c2.key.contains(&"method".to_string()));
    }

    /// Snapshots of a slowly changing state (each row changes one of 16 fields), taken
    /// alternately by two workers: grouping by worker puts snapshots two steps apart next to
    /// each other, while the schema order (a constant, then the time as a plain integer) keeps
    /// them one step apart.
    #[test]
    fn no_key_when_it_beats_every_key() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut state = [0u64; 16];
        let (mut worker, mut text) = (Vec::new(), Vec::new());
        for _ in 0..4000 {
            state[(next() % 16) as usize] = next() % 1_000_000;
            worker.push((next() % 2) as i64);
            text.push(state.map(|v| v.to_string()).join(","));
        }
        let b = RecordBatch::try_from_iter(vec![
            (
                "version",
                Arc::new(Int64Array::from(vec![1; 4000])) as ArrayRef,
            ),
            ("t", Arc::new(Int64Array::from_iter_values(0..4000))),
            ("worker", Arc::new(Int64Array::from(worker))),
            ("state", Arc::new(StringArray::from(text))),
        ])
        .unwrap();
        let c = choose(&b, &[]).unwrap();
        assert_eq!(c.trials.len(), 2, "[worker] and none: {:?}", c.trials);
        assert!(c.key.is_empty(), "{:?}", c.trials);
        assert!((c.trials[1].1 as f64) < c.trials[0].1 as f64 * 0.99);
    }

    #[test]
    fn empty_and_keyless_samples() {
        let s = sample(0);
        assert!(choose(&s, &[]).unwrap().key.is_empty());
        let ids = RecordBatch::try_from_iter(vec![(
            "id",
            Arc::new(StringArray::from(
                (0..100).map(|i| i.to_string()).collect::<Vec<_>>(),
            )) as ArrayRef,
        )])
        .unwrap();
        assert!(choose(&ids, &[]).unwrap().key.is_empty());
    }
}
