//! Pending markers: which files a writer that has not committed yet may have created.
//!
//! # Why
//! A run or a compaction writes its segments into the table directory before it commits them.
//! If it dies in between, those files are orphans that no snapshot references; if it is still
//! alive, they are work in progress that nobody else may delete. Runs no longer hold a lock on
//! the whole table (concurrent writers commit optimistically, see [`crate::table`]), so the
//! state of each writer is told by its own marker.
//!
//! # How
//! Before it creates its first segment, a writer creates `_compactor/pending/<id>.pending`
//! and holds an exclusive `flock` on it for as long as it lives; it appends the *stem* of
//! each segment (fsynced) before creating the file. The marker is created under a temporary
//! name and renamed into place after it is locked, so an unlocked `*.pending` is always a dead
//! writer's. After its commit, or after abandoning its work, the writer deletes it.
//!
//! ```text
//!  .<id>.tmp ─lock─▶ rename ─▶ <id>.pending  (locked: alive)   ─commit─▶ deleted
//!                                  │ stems, one per line, fsynced before each file
//!                                  ▼ process dies: the lock goes with it
//!                         unlocked <id>.pending: [`cleanup_dead`] deletes the stems' files
//!                         that no commit ever added, then the marker
//! ```
//!
//! Others read markers: a starting run or compaction cleans up dead writers
//! ([`cleanup_dead`]); `vacuum` never deletes a file of a live writer ([`Markers::covers`]).

use std::collections::HashSet;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::segment;

/// The directory of a table's pending markers.
pub fn dir(table_root: &Path) -> PathBuf {
    table_root.join("_compactor").join("pending")
}

/// This process's marker: locked while it lives.
pub struct PendingMarker {
    path: PathBuf,
    file: File,
}

impl PendingMarker {
    /// Creates and locks `<pending_dir>/<id>.pending` (the directory is created if needed).
    pub fn create(pending_dir: &Path, id: &str) -> Result<Self> {
        std::fs::create_dir_all(pending_dir)?;
        let tmp = pending_dir.join(format!(".{id}.tmp"));
        let path = pending_dir.join(format!("{id}.pending"));
        let file = File::options()
            .create_new(true)
            .write(true)
            .open(&tmp)
            .with_context(|| format!("creating pending marker {}", tmp.display()))?;
        file.lock()
            .with_context(|| format!("locking {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)?;
        segment::sync_dir(pending_dir)?;
        Ok(PendingMarker { path, file })
    }

    /// Records the stem of a segment about to be created (fsynced before it returns).
    pub fn record(&mut self, stem: &Path) -> Result<()> {
        writeln!(self.file, "{}", stem.display())?;
        self.file
            .sync_data()
            .with_context(|| format!("fsync {}", self.path.display()))
    }

    /// Deletes the marker (after the commit, or after the writer removed its own files).
    pub fn remove(self) -> Result<()> {
        std::fs::remove_file(&self.path)
            .with_context(|| format!("removing {}", self.path.display()))?;
        drop(self.file);
        Ok(())
    }
}

/// One marker found on disk.
#[derive(Debug)]
pub struct Marker {
    /// The marker file.
    pub path: PathBuf,
    /// Whether its writer is alive (holds the lock). A dead marker found by [`read`] is held
    /// locked by the [`Markers`] that read it until it is dropped.
    pub live: bool,
    /// Stems of the segments its writer created or was about to create.
    pub stems: Vec<PathBuf>,
    lock: Option<File>,
}

/// The markers of a table, read at one moment.
#[derive(Debug, Default)]
pub struct Markers(pub Vec<Marker>);

impl Markers {
    /// Whether `file` belongs to a live writer's segment.
    pub fn covers(&self, file: &Path) -> bool {
        self.0
            .iter()
            .filter(|m| m.live)
            .flat_map(|m| &m.stems)
            .any(|s| segment::belongs_to(s, file))
    }
}

/// Reads every `*.pending` marker in `pending_dir` (none if it does not exist). Dead markers
/// are locked by the caller from here on, so a dead one cannot be mistaken for live by a
/// concurrent reader and cleaned twice.
pub fn read(pending_dir: &Path) -> Result<Markers> {
    let entries = match std::fs::read_dir(pending_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Markers::default()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", pending_dir.display())),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pending"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let f = match File::options().read(true).write(true).open(&path) {
            Ok(f) => f,
            // removed meanwhile by its writer (committed) or by another cleaner
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
        };
        let (live, lock) = match f.try_lock() {
            Ok(()) => (false, Some(f)),
            Err(std::fs::TryLockError::WouldBlock) => (true, None),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()))
            }
        };
        // read after locking: a dead writer wrote its last stem before it died
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let stems = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect();
        out.push(Marker {
            path,
            live,
            stems,
            lock,
        });
    }
    Ok(Markers(out))
}

/// Deletes what dead writers left: for each dead marker, the files of its stems that are not in
/// `committed` (every file path any commit of the table ever added, absolute), then the
/// marker. A file some commit added is left to `vacuum` (a snapshot may still read it). Returns
/// the number of files deleted.
pub fn cleanup_dead(
    table_root: &Path,
    markers: Markers,
    committed: &HashSet<PathBuf>,
) -> Result<usize> {
    let mut removed = 0;
    let mut dirs = HashSet::new();
    for m in markers.0.into_iter().filter(|m| !m.live) {
        for stem in &m.stems {
            let Some(dir) = stem.parent() else { continue };
            if !stem.starts_with(table_root) {
                continue;
            }
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
            };
            for e in entries {
                let p = e?.path();
                if segment::belongs_to(stem, &p) && !committed.contains(&p) {
                    match std::fs::remove_file(&p) {
                        Ok(()) => {
                            removed += 1;
                            dirs.insert(dir.to_path_buf());
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(e)
                                .with_context(|| format!("removing orphan {}", p.display()))
                        }
                    }
                }
            }
        }
        crate::run::failpoint("cleanup-before-marker");
        match std::fs::remove_file(&m.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", m.path.display())),
        }
        drop(m.lock);
        if let Some(d) = m.path.parent() {
            dirs.insert(d.to_path_buf());
        }
    }
    for d in dirs {
        segment::sync_dir(&d)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_markers_protect_and_dead_ones_are_cleaned() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        let pdir = dir(&root);
        let mut live = PendingMarker::create(&pdir, "live").unwrap();
        let stem_live = root.join("part-live-00000");
        live.record(&stem_live).unwrap();
        std::fs::write(segment::temp_path(&stem_live), b"x").unwrap();

        // a dead writer: its marker is not locked (written by hand)
        let stem_dead = root.join("part-dead-00000");
        let stem_kept = root.join("part-dead-00001");
        std::fs::write(
            pdir.join("dead.pending"),
            format!("{}\n{}\n", stem_dead.display(), stem_kept.display()),
        )
        .unwrap();
        let dead_file = segment::final_path(&stem_dead, 7);
        let committed_file = segment::final_path(&stem_kept, 9);
        let unrelated = segment::final_path(&root.join("part-dead-000010"), 3);
        for f in [&dead_file, &committed_file, &unrelated] {
            std::fs::write(f, b"x").unwrap();
        }

        let m = read(&pdir).unwrap();
        assert_eq!(m.0.len(), 2);
        assert!(m.covers(&segment::temp_path(&stem_live)));
        assert!(!m.covers(&dead_file));
        let committed = HashSet::from([committed_file.clone()]);
        assert_eq!(cleanup_dead(&root, m, &committed).unwrap(), 1);
        assert!(!dead_file.exists());
        assert!(
            committed_file.exists(),
            "a committed file is vacuum's to delete"
        );
        assert!(unrelated.exists());
        assert!(!pdir.join("dead.pending").exists());
        assert!(segment::temp_path(&stem_live).exists());

        let m = read(&pdir).unwrap();
        assert_eq!(m.0.len(), 1);
        assert!(m.0[0].live);
        live.remove().unwrap();
        assert!(read(&pdir).unwrap().0.is_empty());
    }
}
