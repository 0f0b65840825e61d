//! The job file: what to read, how to parse it, where and how to write it.
//!
//! A job file is TOML. Unknown keys are errors (with the key's name and line), so a typo never
//! silently falls back to a default. Relative paths are resolved against the job file's folder,
//! so a job and its data can move together. Every default is a `pub const DEFAULT_*` here and is
//! listed in README.md's job file reference.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use compactor_formats::{ColumnType, Format, Limits, ParseOptions};
use serde::{Deserialize, Serialize};

/// Default zstd level of Parquet pages.
pub const DEFAULT_ZSTD_LEVEL: i32 = 9;
/// Default rows per Parquet row group.
pub const DEFAULT_ROW_GROUP_SIZE: usize = 1 << 20;
/// Default most rows in one segment file.
pub const DEFAULT_MAX_SEGMENT_ROWS: usize = 1 << 24;
/// Default cap on the share of rejected lines above which a run fails without committing.
pub const DEFAULT_MAX_REJECTED_SHARE: f64 = 0.01;
/// Default cap on the decompressed size of one input file: 1 TiB.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 1 << 40;
/// Default size of the chunks the input is split into for parallel parsing. A constant, not a
/// function of the thread count, so that output bytes never depend on threads.
pub const DEFAULT_CHUNK_BYTES: usize = 8 << 20;
/// Default name of the partition column.
pub const DEFAULT_PARTITION_NAME: &str = "dt";

/// A parsed job file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// `[input]`
    pub input: InputConfig,
    /// `[output]`
    pub output: OutputConfig,
    /// `[dedup]`
    #[serde(default)]
    pub dedup: DedupConfig,
    /// `[limits]`
    #[serde(default)]
    pub limits: LimitsConfig,
    /// `[resources]`
    #[serde(default)]
    pub resources: ResourcesConfig,
    /// `[schema]`: column name = type, overriding inference.
    #[serde(default)]
    pub schema: BTreeMap<String, String>,
    /// `[[rollup]]`: summary tables written in the same run (see `rollup.rs`).
    #[serde(default)]
    pub rollup: Vec<crate::rollup::RollupConfig>,
}

/// `[input]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// Files, directories (read recursively) and globs; `-` reads standard input.
    pub paths: Vec<String>,
    /// The format: `json`, `combined`, `common`, `syslog`, `logfmt`, `csv`, `tsv`,
    /// `cloudfront`, `alb`, `elb`, `s3`, `regex`, `grok`, `text`, or `auto` (detected per
    /// file from its first lines; the run report says what was chosen and how sure it is).
    pub format: Format,
    /// Access logs: names of the trailing fields, in order (others are `extra_N`).
    #[serde(default)]
    pub extra_columns: Vec<String>,
    /// `regex` and `grok`: the pattern; its named captures become columns.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Multi-line records: a grok (or plain regex) pattern matching the first line of each
    /// record; the lines after it that do not match belong to it (stack traces).
    #[serde(default)]
    pub record_start: Option<String>,
    /// `csv` and `tsv` options.
    #[serde(default)]
    pub delimited: compactor_formats::delimited::DelimitedOptions,
    /// Column name = chrono `strftime` format, for timestamp layouts the built-in fast paths
    /// (ISO 8601, RFC 3339, access log, syslog, epochs) do not know.
    #[serde(default)]
    pub timestamp_formats: BTreeMap<String, String>,
    /// Syslog RFC 3164 timestamps carry no year: the year to assume. Default: the year of the
    /// input file's modification time (a December line in a file written in January gets the
    /// year before).
    #[serde(default)]
    pub year: Option<i32>,
    /// How long the table's ledger remembers a consumed file (`"30d"`, `"12h"`; see
    /// [`crate::vacuum::parse_duration`]). Unset (the default): for ever, and a ledger that
    /// grows by about 150 bytes per consumed file, rewritten by every commit. Set: each commit
    /// forgets the files consumed longer ago, and a run skips, and counts apart
    /// (`files_expired`), every input last modified longer ago than that, which the ledger
    /// can no longer tell from a consumed one. Spark's and Auto Loader's `maxFileAge` work the
    /// same way. The ledger keeps how far it was pruned, so later runs with a longer retention
    /// or none leave those files unread too. A file given a new modification time (a backfill,
    /// or a copy of a forgotten file) is read.
    #[serde(default)]
    pub ledger_retention: Option<Age>,
}

/// A duration: a string such as `"30d"`, `"12h"` or `"1w 2d"` (see
/// [`crate::vacuum::parse_duration`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Age(pub std::time::Duration);

impl std::fmt::Display for Age {
    /// In the largest unit that divides it: `30d`, `36h`, `90m`, `45s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0.as_secs();
        match [(604_800, "w"), (86_400, "d"), (3600, "h"), (60, "m")]
            .into_iter()
            .find(|(unit, _)| s.is_multiple_of(*unit))
        {
            Some((unit, name)) => write!(f, "{}{name}", s / unit),
            None => write!(f, "{s}s"),
        }
    }
}

impl TryFrom<String> for Age {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match crate::vacuum::parse_duration(&s) {
            Ok(d) if d.is_zero() => Err(format!(
                "a retention of {s:?} would forget every file at once; leave it unset to keep them all"
            )),
            Ok(d) => Ok(Age(d)),
            Err(e) => Err(format!("{e:#}")),
        }
    }
}

/// `[output]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// The table directory.
    pub path: PathBuf,
    /// Sort key, in order (rows are then ordered by the remaining columns), or `"auto"`:
    /// compactor chooses the key from a sample of the input (see `sortkey.rs`), logs it,
    /// reports it and records it in each segment's `sorting_columns`. Held as `["auto"]`.
    #[serde(default, deserialize_with = "sort_by")]
    pub sort_by: Vec<String>,
    /// Base zstd level, 1..=22: every column's level, unless the layout trial picks a higher
    /// one (up to `max_zstd_level`) for a big column where it pays.
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
    /// Highest zstd level the layout trial may pick for a column: the speed bound. Equal to
    /// `zstd_level`: one level for every column. Unset: [`crate::layout::DEFAULT_MAX_ZSTD_LEVEL`],
    /// and up to [`crate::layout::TINY_SEGMENT_MAX_ZSTD_LEVEL`] in a tiny segment, where the
    /// slow levels cost little time (see `layout.rs`).
    #[serde(default)]
    pub max_zstd_level: Option<i32>,
    /// Choose each column's encoding and level by trial on a sample (see `layout.rs`);
    /// `false`: dictionary encoding for every column at `zstd_level`.
    #[serde(default = "default_true")]
    pub encoding_trial: bool,
    /// Narrow integer columns to the width their values need and store columns of canonical
    /// UUIDs as 16-byte `UUID`s (see `layout.rs`); `false` writes the parsed types as they are.
    #[serde(default = "default_true")]
    pub tighten_types: bool,
    /// Bloom filters: absent chooses them (lookup-key names with many distinct values, in
    /// segments of at least 100,000 rows); a list puts them on exactly these columns.
    #[serde(default)]
    pub bloom_filters: Option<Vec<String>>,
    /// Rows per row group.
    #[serde(default = "default_row_group_size")]
    pub row_group_size: usize,
    /// Most rows per segment file.
    #[serde(default = "default_max_segment_rows")]
    pub max_segment_rows: usize,
    /// Where rejected lines go; default `<table>/_compactor/quarantine`.
    #[serde(default)]
    pub quarantine_dir: Option<PathBuf>,
    /// `[output.partition]`: optional Hive-style partitioning by day or hour.
    #[serde(default)]
    pub partition: Option<PartitionConfig>,
    /// Write the detailed rows (default [`DEFAULT_DETAILED`]). `false`: only the `[[rollup]]`
    /// tables are written; the table at `path` then holds no rows, only the ledger of consumed
    /// inputs that makes runs exactly-once (see `rollup.rs`, "Rollup-only runs").
    #[serde(default = "default_detailed")]
    pub detailed: bool,
}

/// `[output] detailed`: whether a run writes the detailed rows by default.
pub const DEFAULT_DETAILED: bool = true;

/// `[output.partition]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionConfig {
    /// A timestamp column.
    pub column: String,
    /// `day` (`dt=2026-01-31`) or `hour` (`dt=2026-01-31-23`).
    pub by: Granularity,
    /// Name of the partition column.
    #[serde(default = "default_partition_name")]
    pub name: String,
}

/// Partition granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// One partition per UTC day.
    Day,
    /// One partition per UTC hour.
    Hour,
}

/// `[dedup]`. Each run records it in the table (domain metadata [`DEDUP_DOMAIN`]), so that
/// compaction drops duplicates across segments as the job does.
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DedupConfig {
    /// `exact` (default), `keys` or `none`.
    #[serde(default)]
    pub mode: DedupModeName,
    /// With `mode = "keys"`: the key columns.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Where a duplicate is looked for: `run` (default: among this run's rows), `partition`
    /// (also the table's rows in the partitions this run writes to) or `table` (the whole
    /// table). See `tabledup.rs`.
    #[serde(default)]
    pub scope: DedupScope,
}

/// `[dedup] scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DedupScope {
    /// Duplicates among the run's rows.
    #[default]
    Run,
    /// Also rows already in the same partition of the table.
    Partition,
    /// Also rows anywhere in the table.
    Table,
}

/// The table's domain-metadata entry holding the last run's `[dedup]` (JSON).
pub const DEDUP_DOMAIN: &str = "compactor.dedup";

/// Dedup mode names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DedupModeName {
    /// Identical records.
    #[default]
    Exact,
    /// Records with equal key columns; the first is kept.
    Keys,
    /// No dedup.
    None,
}

/// `[resources]`: how much memory and disk a run may use. The command line's `--memory`,
/// `--spill-dir` and `--max-spill-bytes` override these.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResourcesConfig {
    /// Memory budget, bytes or a size such as `"512MiB"`; default
    /// [`compactor_engine::memory::DEFAULT_MEMORY_SHARE`] of the machine's memory.
    pub memory: Option<Size>,
    /// Directory for spill files; default `<table>/_compactor/spill`.
    pub spill_dir: Option<PathBuf>,
    /// Cap on spill bytes on disk at once; default
    /// [`compactor_engine::spill::DEFAULT_MAX_SPILL_BYTES`].
    pub max_spill_bytes: Option<Size>,
}

/// A byte size: an integer, or a string such as `"512MiB"` or `"2GB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SizeRepr")]
pub struct Size(pub u64);

#[derive(Deserialize)]
#[serde(untagged)]
enum SizeRepr {
    Int(u64),
    Text(String),
}

impl TryFrom<SizeRepr> for Size {
    type Error = String;
    fn try_from(r: SizeRepr) -> Result<Self, String> {
        match r {
            SizeRepr::Int(n) => Ok(Size(n)),
            SizeRepr::Text(s) => parse_size(&s).map(Size),
        }
    }
}

/// Parses a byte size: a number with an optional unit (B, KiB, MiB, GiB, TiB, KB, MB, GB,
/// TB; case-insensitive).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "tib" => 1024f64.powi(4),
        u => {
            return Err(format!(
                "unknown size unit {u:?} (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
            ))
        }
    };
    Ok((n * mult) as u64)
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Longest accepted line, in bytes.
    pub max_line_bytes: usize,
    /// Deepest accepted JSON nesting.
    pub max_depth: usize,
    /// Most distinct columns.
    pub max_columns: usize,
    /// Largest decompressed size of one input file.
    pub max_decompressed_bytes: u64,
    /// Share of rejected lines (0..=1) above which the run fails without committing.
    pub max_rejected_share: f64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = Limits::default();
        LimitsConfig {
            max_line_bytes: l.max_line_bytes,
            max_depth: l.max_depth,
            max_columns: l.max_columns,
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
            max_rejected_share: DEFAULT_MAX_REJECTED_SHARE,
        }
    }
}

fn default_zstd_level() -> i32 {
    DEFAULT_ZSTD_LEVEL
}
fn default_detailed() -> bool {
    DEFAULT_DETAILED
}

fn default_true() -> bool {
    true
}
/// `sort_by`: a list of columns, or the string `"auto"` (held as `["auto"]`).
fn sort_by<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        List(Vec<String>),
        One(String),
    }
    match Repr::deserialize(d)? {
        Repr::List(v) => Ok(v),
        Repr::One(s) if s.eq_ignore_ascii_case("auto") => Ok(vec![AUTO.to_string()]),
        Repr::One(s) => Err(serde::de::Error::custom(format!(
            "sort_by must be a list of columns or \"auto\", not {s:?}"
        ))),
    }
}

/// The value of `sort_by` that asks compactor to choose the key.
pub const AUTO: &str = "auto";

impl OutputConfig {
    /// Whether the sort key is to be chosen (`sort_by = "auto"`).
    pub fn sort_by_auto(&self) -> bool {
        matches!(self.sort_by.as_slice(), [one] if one.eq_ignore_ascii_case(AUTO))
    }
}
fn default_row_group_size() -> usize {
    DEFAULT_ROW_GROUP_SIZE
}
fn default_max_segment_rows() -> usize {
    DEFAULT_MAX_SEGMENT_ROWS
}
fn default_partition_name() -> String {
    DEFAULT_PARTITION_NAME.to_string()
}

impl Job {
    /// Reads, parses and validates a job file; relative paths become relative to its folder.
    pub fn load(path: &Path) -> Result<Job> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading job file {}", path.display()))?;
        let mut job =
            Job::parse(&text).with_context(|| format!("invalid job file {}", path.display()))?;
        // Absolute, so that what the job names does not depend on the working directory.
        let path = std::path::absolute(path)?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        job.resolve_paths(&base);
        job.check_rollup_paths()
            .with_context(|| format!("invalid job file {}", path.display()))?;
        Ok(job)
    }

    /// Parses and validates job text (paths left as written).
    pub fn parse(text: &str) -> Result<Job> {
        let job: Job = toml::from_str(text)?;
        job.validate()?;
        Ok(job)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let abs = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        self.output.path = abs(&self.output.path);
        if let Some(q) = &self.output.quarantine_dir {
            self.output.quarantine_dir = Some(abs(q));
        }
        if let Some(d) = &self.resources.spill_dir {
            self.resources.spill_dir = Some(abs(d));
        }
        for r in &mut self.rollup {
            r.path = Some(match &r.path {
                Some(p) => abs(p),
                None => crate::rollup::default_path(&self.output.path, &r.name),
            });
        }
        for p in &mut self.input.paths {
            if p != "-" && !Path::new(p).is_absolute() {
                *p = if crate::input::is_glob(p) {
                    // the job's folder is literal text, not part of the pattern
                    let base = glob::Pattern::escape(&base.to_string_lossy());
                    Path::new(&base).join(&*p).to_string_lossy().into_owned()
                } else {
                    base.join(&*p).to_string_lossy().into_owned()
                };
            }
        }
    }

    /// Each rollup table is a table of its own: not the detailed table, not another rollup's,
    /// and not inside either (checked on resolved paths, before anything is written).
    fn check_rollup_paths(&self) -> Result<()> {
        let norm = |p: &Path| -> PathBuf { p.components().collect() };
        let mut seen: Vec<(PathBuf, String)> =
            vec![(norm(&self.output.path), "[output] path".into())];
        for r in &self.rollup {
            let p = norm(r.path.as_deref().unwrap_or(Path::new("")));
            let this = format!("[[rollup]] {:?} path", r.name);
            for (other, what) in &seen {
                if p.starts_with(other) || other.starts_with(&p) {
                    bail!(
                        "{this} {} is {} {what} ({}): each rollup needs a table directory of its own",
                        p.display(),
                        if p == *other { "the same as" } else { "nested with" },
                        other.display()
                    );
                }
            }
            seen.push((p, this));
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        if self.input.paths.is_empty() {
            bail!("[input] paths is empty");
        }
        if !self.output.detailed {
            if self.rollup.is_empty() {
                bail!(
                    "[output] detailed = false writes only rollups, but the job has no [[rollup]]"
                );
            }
            if self.output.partition.is_some() {
                bail!("[output.partition] partitions the detailed rows, which detailed = false does not write");
            }
            if self.dedup.scope != DedupScope::Run {
                bail!("[dedup] scope = \"partition\" or \"table\" looks for duplicates among the table's rows, which detailed = false does not write; use scope = \"run\"");
            }
        }
        if !(1..=22).contains(&self.output.zstd_level) {
            bail!(
                "[output] zstd_level must be 1..=22, got {}",
                self.output.zstd_level
            );
        }
        if let Some(l) = self.output.max_zstd_level.filter(|l| !(1..=22).contains(l)) {
            bail!("[output] max_zstd_level must be 1..=22, got {l}");
        }
        if self.output.row_group_size == 0 || self.output.max_segment_rows == 0 {
            bail!("[output] row_group_size and max_segment_rows must be positive");
        }
        let share = self.limits.max_rejected_share;
        if !(0.0..=1.0).contains(&share) {
            bail!("[limits] max_rejected_share must be between 0 and 1, got {share}");
        }
        if self.limits.max_line_bytes > 1 << 30 {
            bail!("[limits] max_line_bytes is at most 1 GiB");
        }
        if self.limits.max_line_bytes == 0
            || self.limits.max_depth == 0
            || self.limits.max_columns == 0
        {
            bail!("[limits] max_line_bytes, max_depth and max_columns must be positive");
        }
        match self.dedup.mode {
            DedupModeName::Keys if self.dedup.keys.is_empty() => {
                bail!("[dedup] mode = \"keys\" needs keys = [\"column\", ...]")
            }
            DedupModeName::Exact | DedupModeName::None if !self.dedup.keys.is_empty() => {
                bail!("[dedup] keys is only used with mode = \"keys\"")
            }
            _ => {}
        }
        let mut seen = std::collections::HashMap::new();
        for (name, t) in &self.schema {
            t.parse::<ColumnType>()
                .with_context(|| format!("[schema] {name}"))?;
            let folded = compactor_formats::schema::sanitize_name(name).to_ascii_lowercase();
            if let Some(other) = seen.insert(folded, name) {
                bail!("[schema] {other:?} and {name:?} name the same column (names are case-insensitive; ' ,;{{}}()=' become '_')");
            }
        }
        crate::rollup::validate(&self.rollup)?;
        if let Some(p) = &self.output.partition {
            if let Some(t) = self.schema.get(&p.column) {
                if t.parse::<ColumnType>()? != ColumnType::Timestamp {
                    bail!(
                        "[output.partition] column {} must be a timestamp, but [schema] says {t}",
                        p.column
                    );
                }
            }
            if compactor_formats::schema::sanitize_name(&p.name) != p.name.as_str() {
                bail!(
                    "[output.partition] name {:?} is not a valid column name",
                    p.name
                );
            }
        }
        Ok(())
    }

    /// The parser options this job asks for.
    pub fn parse_options(&self) -> Result<ParseOptions> {
        let mut opts = ParseOptions::new(self.input.format);
        opts.limits = Limits {
            max_line_bytes: self.limits.max_line_bytes,
            max_depth: self.limits.max_depth,
            max_columns: self.limits.max_columns,
        };
        opts.extra_columns = self.input.extra_columns.clone();
        opts.pattern = self.input.pattern.clone();
        opts.record_start = self.input.record_start.clone();
        opts.delimited = self.input.delimited.clone();
        opts.timestamp_formats = self.input.timestamp_formats.clone();
        for (column, format) in &opts.timestamp_formats {
            let epoch = ["epoch_s", "epoch_ms", "epoch_us", "epoch_ns"].contains(&format.as_str());
            let bad = chrono::format::StrftimeItems::new(format)
                .any(|i| matches!(i, chrono::format::Item::Error));
            if !epoch && (bad || format.is_empty()) {
                bail!("[input] timestamp_formats: {column:?} = {format:?} is not a strftime format (or epoch_s, epoch_ms, epoch_us, epoch_ns)");
            }
        }
        if let Some(year) = self.input.year {
            if !(1..=9999).contains(&year) {
                bail!("[input] year must be between 1 and 9999, got {year}");
            }
            // Its last day, so that the "month after the reference: last year" rule never
            // moves a line out of it.
            let days = compactor_formats::ts::days_from_civil(i64::from(year), 12, 31);
            opts.reference_micros = Some(days * 86_400_000_000);
        }
        opts.prepare()?;
        for (name, t) in &self.schema {
            opts.forced.insert(name.clone(), t.parse()?);
        }
        if let Some(p) = &self.output.partition {
            opts.forced
                .entry(p.column.clone())
                .or_insert(ColumnType::Timestamp);
        }
        Ok(opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "[input]\npaths = [\"a.jsonl\"]\nformat = \"json\"\n[output]\npath = \"t\"\n";

    #[test]
    fn minimal_job_gets_defaults() {
        let job = Job::parse(MIN).unwrap();
        assert_eq!(job.output.zstd_level, DEFAULT_ZSTD_LEVEL);
        assert_eq!(job.dedup.mode, DedupModeName::Exact);
        assert_eq!(job.limits.max_rejected_share, DEFAULT_MAX_REJECTED_SHARE);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = format!("{MIN}sort_bu = [\"x\"]\n");
        let err = format!("{:#}", Job::parse(&text).unwrap_err());
        assert!(err.contains("sort_bu") && err.contains("line 6"), "{err}");
        let err = format!(
            "{:#}",
            Job::parse(&format!("{MIN}[dedupe]\nmode = \"exact\"\n")).unwrap_err()
        );
        assert!(err.contains("dedupe"), "{err}");
    }

    #[test]
    fn invalid_values_are_rejected() {
        for extra in [
            "zstd_level = 30\n",
            "[dedup]\nmode = \"keys\"\n",
            "[dedup]\nkeys = [\"a\"]\n",
            "[schema]\nx = \"decimal\"\n",
            "[schema]\nA = \"int\"\na = \"string\"\n",
            "[limits]\nmax_rejected_share = 2.0\n",
            "[output.partition]\ncolumn = \"ts\"\nby = \"week\"\n",
        ] {
            assert!(Job::parse(&format!("{MIN}{extra}")).is_err(), "{extra}");
        }
    }

    #[test]
    fn input_options_are_checked() {
        let job = |input: &str| {
            Job::parse(&format!(
                "[input]\npaths = [\"a\"]\n{input}\n[output]\npath = \"t\"\n"
            ))
            .and_then(|j| j.parse_options())
        };
        for bad in [
            "format = \"syslog\"\nyear = 0",
            "format = \"syslog\"\nyear = 100000",
            "format = \"json\"\ntimestamp_formats = { t = \"%Q%\" }",
            "format = \"json\"\ntimestamp_formats = { t = \"\" }",
            "format = \"grok\"",
            "format = \"grok\"\npattern = \"%{NOPE}\"",
            "format = \"regex\"\npattern = \"(unclosed\"",
            "format = \"text\"\nrecord_start = \"%{NOPE}\"",
            "format = \"csv\"\n[input.delimited]\ndelimeter = \";\"",
        ] {
            assert!(job(bad).is_err(), "{bad}");
        }
        for good in [
            "format = \"syslog\"\nyear = 2024",
            "format = \"json\"\ntimestamp_formats = { t = \"%d.%m.%Y %H:%M\", u = \"epoch_ms\" }",
            "format = \"grok\"\npattern = \"%{HDFS}\"",
            "format = \"auto\"",
            "format = \"csv\"\n[input.delimited]\ndelimiter = \";\"",
        ] {
            assert!(job(good).is_ok(), "{good}: {:#}", job(good).unwrap_err());
        }
        // A layout named as the pattern brings its multi-line record start.
        let o = job("format = \"grok\"\npattern = \"%{HADOOP}\"").unwrap();
        assert!(o.record_start.is_some() && o.prepared.record_start.is_some());
    }

    #[test]
    fn relative_paths_follow_the_job_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("job.toml");
        std::fs::write(&p, MIN).unwrap();
        let job = Job::load(&p).unwrap();
        assert_eq!(job.output.path, dir.path().join("t"));
        assert_eq!(Path::new(&job.input.paths[0]), dir.path().join("a.jsonl"));
    }
}
