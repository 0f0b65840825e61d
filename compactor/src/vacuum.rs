//! `compactor vacuum`: deletes the files no snapshot inside the retention can read.
//!
//! # Why
//! A commit never deletes a file: a compaction's `remove` only hides it from later snapshots,
//! and readers of older ones (time travel, a query that started before the commit) still read
//! it. A crashed writer leaves segments that no commit ever added (most are cleaned by the next
//! run, see [`crate::pending`], but not those of a writer whose marker is gone). Vacuum frees
//! that space once no reader inside the retention (default 7 days, as Delta's `VACUUM`) can
//! need it, and never touches the files of a writer that is still running.
//!
//! # The rule
//! Every regular file under the table root is a candidate, except hidden ones: names starting
//! with `.`, or with `_` (`_delta_log/`, `_compactor/`), unless a directory's name holds a `=`
//! (a partition directory such as `_p=1/`, as Delta's own `VACUUM` has it). Symbolic links are
//! neither followed nor deleted. With `cutoff = now - retain`, a candidate is
//! - **live** in the latest snapshot: kept;
//! - **a live writer's** (its stem is in a locked pending marker): kept (`kept_in_progress`);
//! - **removed** by a commit: deleted iff its `deletionTimestamp <= cutoff`. Then every snapshot
//!   at or after `cutoff` comes after the removing version, so none of them reads it. Otherwise
//!   kept (`kept_retained`). A remove without a timestamp counts as removed at the epoch, as in
//!   Delta;
//! - **never added** by any commit (a crashed writer's `.parquet.tmp` or complete segment, a
//!   stray file): deleted iff its mtime `<= cutoff`, else kept (`kept_retained`);
//! - added but neither live nor removed: cannot happen; kept, with a warning.
//!
//! ```text
//!  candidate ─ live in the latest snapshot? ──yes──▶ keep
//!     │ no
//!     ├─ covered by a live pending marker? ──yes──▶ keep (in progress)
//!     ├─ removed in the log ── deletionTimestamp <= now - retain ? delete : keep (retained)
//!     ├─ added, not removed, not live ──▶ keep, warn
//!     └─ never added ──────── mtime <= now - retain ? delete : keep (retained)
//! ```
//!
//! # Order against concurrent writers
//! No lock is taken: writers commit optimistically and may run during a vacuum. What makes
//! that safe is the order of the reads: (1) list the files, (2) read the pending markers,
//! (3) load the latest snapshot and (4) every commit of the log. A writer records a segment's
//! stem in its marker before it creates the file, and removes the marker only after its
//! commit. So a file seen in (1) belongs to a writer that, at (2), either still holds its
//! marker (covered), or has committed (live in (3)), or is dead (its leftovers are judged by
//! their mtime). A file created after (1) is not a candidate. A commit after (3) can only hide
//! a file that (3) shows live, or add one a live marker covers.
//!
//! Deletions are fsynced per directory. Empty partition directories are left in place: a
//! writer may be about to create a segment in one.
//!
//! Limits: `_delta_log` is read as JSON commits ([`crate::table::log_files`]). compactor writes
//! checkpoints (every 10 versions) but never expires JSON commits, so they stay complete. If
//! another tool expired them, a file whose `remove` only a checkpoint still holds is judged by
//! its mtime, as if never added. Files the retention must
//! protect are still covered as long as the log keeps the JSON commits of the retention period
//! (Delta keeps 30 days by default, longer than the default retention).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::pending;
use crate::segment;
use crate::table::{self, Table};

/// Default retention (7 days, as Delta's VACUUM).
pub const DEFAULT_RETAIN: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a vacuum keeps and whether it deletes.
#[derive(Debug, Clone)]
pub struct VacuumOptions {
    /// Files unreferenced for less than this are kept: no snapshot read within it breaks.
    pub retain: Duration,
    /// Report what would be deleted; delete nothing.
    pub dry_run: bool,
    /// "now", injectable for tests.
    pub now: SystemTime,
}

impl Default for VacuumOptions {
    /// [`DEFAULT_RETAIN`], deleting, as of the current time.
    fn default() -> Self {
        VacuumOptions {
            retain: DEFAULT_RETAIN,
            dry_run: false,
            now: SystemTime::now(),
        }
    }
}

/// What a vacuum deleted (or, in a dry run, would delete) and kept.
#[derive(Debug, Default, Serialize)]
pub struct VacuumReport {
    /// Paths relative to the table root, sorted.
    pub deleted: Vec<String>,
    /// Total size of the deleted files.
    pub bytes_freed: u64,
    /// Unreferenced files kept because they are inside the retention.
    pub kept_retained: u64,
    /// Files of live writers (covered by a locked pending marker).
    pub kept_in_progress: u64,
    /// Whether nothing was actually deleted.
    pub dry_run: bool,
}

impl VacuumReport {
    /// One line for the terminal.
    pub fn summary(&self) -> String {
        let verb = if self.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        format!(
            "vacuum{}: {verb} {} file(s), {}; kept {} unreferenced file(s) inside the retention and {} of running writers",
            if self.dry_run { " (dry run)" } else { "" },
            self.deleted.len(),
            crate::inspect::human_bytes(self.bytes_freed),
            self.kept_retained,
            self.kept_in_progress,
        )
    }
}

/// A regular file found under the table root.
struct Candidate {
    path: PathBuf,
    size: u64,
    modified: SystemTime,
}

/// Deletes the files of the table at `table` that no snapshot inside `opts.retain` can read
/// and no live writer owns (see the module docs). Fails, deleting nothing, if `table` is not a
/// Delta table.
pub fn vacuum(table: &Path, opts: &VacuumOptions) -> Result<VacuumReport> {
    let root = table
        .canonicalize()
        .with_context(|| format!("opening table {}", table.display()))?;
    if !root.join("_delta_log").is_dir() {
        bail!(crate::run::JobError(format!(
            "{} is not a Delta table (it has no _delta_log)",
            root.display()
        )));
    }
    // The order matters (module docs): files, then markers, then the snapshot and the log.
    let files = list_candidates(&root)?;
    let markers = pending::read(&pending::dir(&root))?;
    let t = Table::open(&root)?;
    if t.version().is_none() {
        bail!("{} has no commit yet", root.display());
    }
    let live: std::collections::HashSet<PathBuf> = t
        .live_segments()?
        .iter()
        .map(|s| t.file_path(&s.path))
        .collect();
    let log = table::log_files(&root)?;
    let cutoff = opts.now.checked_sub(opts.retain);
    let old_enough = |at: SystemTime| cutoff.is_some_and(|c| at <= c);

    let mut report = VacuumReport {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let mut doomed = Vec::new();
    for f in files {
        if live.contains(&f.path) {
            continue;
        }
        if markers.covers(&f.path) {
            report.kept_in_progress += 1;
            continue;
        }
        let delete = if let Some(&at) = log.removed.get(&f.path) {
            old_enough(millis_to_time(at))
        } else if log.added.contains(&f.path) {
            tracing::warn!(
                "{} was added to the table, is not in its latest snapshot and was never removed; keeping it",
                f.path.display()
            );
            continue;
        } else {
            old_enough(f.modified)
        };
        if delete {
            doomed.push(f);
        } else {
            report.kept_retained += 1;
        }
    }
    doomed.sort_by(|a, b| a.path.cmp(&b.path));

    let rel = |p: &Path| {
        p.strip_prefix(&root)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    if opts.dry_run {
        for f in &doomed {
            report.bytes_freed += f.size;
            report.deleted.push(rel(&f.path));
        }
        return Ok(report);
    }
    let mut dirs = BTreeSet::new();
    for (i, f) in doomed.iter().enumerate() {
        if i == 0 {
            crate::run::failpoint("vacuum-before-delete");
        }
        let dir = f.path.parent().expect("a file under the root has a parent");
        // A directory swapped for a link since the listing must not lead out of the table.
        if !f.path.starts_with(&root)
            || dir.canonicalize().ok().as_deref() != Some(dir)
            || !dir.starts_with(&root)
        {
            bail!(
                "refusing to delete {}: its directory is no longer inside the table",
                f.path.display()
            );
        }
        match std::fs::remove_file(&f.path) {
            Ok(()) => {
                tracing::debug!("vacuum: deleted {}", f.path.display());
                report.bytes_freed += f.size;
                report.deleted.push(rel(&f.path));
                dirs.insert(dir.to_path_buf());
            }
            // deleted meanwhile (a run's cleanup of a dead writer, another vacuum)
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("deleting {}", f.path.display())),
        }
    }
    for d in dirs {
        segment::sync_dir(&d)?;
    }
    Ok(report)
}

/// `deletionTimestamp` (ms since the epoch, maybe negative) as a time.
fn millis_to_time(ms: i64) -> SystemTime {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

/// Whether a directory entry is hidden from vacuum (Delta's convention): `.` anything, `_`
/// anything except partition directories (`_p=1`).
fn hidden(name: &str, is_dir: bool) -> bool {
    name.starts_with('.') || (name.starts_with('_') && !(is_dir && name.contains('=')))
}

/// Every regular, non-hidden file under `root`, without following links.
fn list_candidates(root: &Path) -> Result<Vec<Candidate>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            // a directory removed since its parent was listed
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir != root => continue,
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        for e in entries {
            let e = e.with_context(|| format!("listing {}", dir.display()))?;
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                tracing::warn!(
                    "vacuum: skipping {} (name is not UTF-8)",
                    e.path().display()
                );
                continue;
            };
            // `DirEntry::file_type` and `metadata` do not follow symbolic links
            let ty = match e.file_type() {
                Ok(t) => t,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => {
                    return Err(err).with_context(|| format!("reading {}", e.path().display()))
                }
            };
            if hidden(&name, ty.is_dir()) {
                continue;
            }
            if ty.is_dir() {
                stack.push(e.path());
            } else if ty.is_file() {
                let meta = match e.metadata() {
                    Ok(m) => m,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(err) => {
                        return Err(err).with_context(|| format!("reading {}", e.path().display()))
                    }
                };
                out.push(Candidate {
                    path: e.path(),
                    size: meta.len(),
                    modified: meta.modified()?,
                });
            }
        }
    }
    Ok(out)
}

/// Parses a duration: one or more `<integer><unit>` groups, spaces allowed between them
/// (`7d`, `168h`, `30m`, `90s`, `0s`, `1w`, `1d 12h`). Units: `s`, `m`, `h`, `d`, `w`, also
/// spelt `sec(s)`/`second(s)`, `min(s)`/`minute(s)`, `hr(s)`/`hour(s)`, `day(s)`, `week(s)`.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || {
        anyhow::anyhow!(
            "invalid duration {s:?}: expected a number and a unit, e.g. 7d, 168h, 30m, 90s, 0s, 1w"
        )
    };
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = rest[digits..].trim_start();
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..letters] {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 7 * 86_400,
            "" => bail!("invalid duration {s:?}: {n} needs a unit (s, m, h, d or w)"),
            u => bail!("invalid duration {s:?}: unknown unit {u:?} (use s, m, h, d or w)"),
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| anyhow::anyhow!("duration {s:?} is too long"))?;
        rest = rest[letters..].trim_start();
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let secs = |s: &str| parse_duration(s).unwrap().as_secs();
        assert_eq!(secs("7d"), 7 * 86_400);
        assert_eq!(secs("168h"), 7 * 86_400);
        assert_eq!(secs("1w"), 7 * 86_400);
        assert_eq!(secs("30m"), 1800);
        assert_eq!(secs("90s"), 90);
        assert_eq!(secs("0s"), 0);
        assert_eq!(secs("1d 12h"), 36 * 3600);
        assert_eq!(secs("2days"), 2 * 86_400);
        assert_eq!(secs(" 3 hours "), 3 * 3600);
        assert_eq!(parse_duration("7d").unwrap(), DEFAULT_RETAIN);
        for bad in ["", "7", "d", "7x", "-1d", "1.5d", "7d3", "ms", "1 d x"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
        let e = parse_duration("7").unwrap_err().to_string();
        assert!(e.contains("needs a unit"), "{e}");
        assert!(parse_duration("99999999999999999999w").is_err());
        assert!(parse_duration("9999999999999999w").is_err());
    }

    #[test]
    fn hidden_names_follow_delta() {
        assert!(hidden("_delta_log", true));
        assert!(hidden("_compactor", true));
        assert!(hidden(".hidden", true));
        assert!(hidden(".part.parquet.crc", false));
        assert!(hidden("_SUCCESS", false));
        assert!(hidden("_p=1", false), "only directories are partitions");
        assert!(!hidden("_p=1", true));
        assert!(!hidden("day=2026-01-01", true));
        assert!(!hidden("part-x-00000.parquet.tmp", false));
    }

    #[test]
    fn millis_convert_both_ways_of_the_epoch() {
        assert_eq!(
            millis_to_time(1500),
            UNIX_EPOCH + Duration::from_millis(1500)
        );
        assert_eq!(
            millis_to_time(-1500),
            UNIX_EPOCH - Duration::from_millis(1500)
        );
    }
}
