//! The quarantine: every rejected line, with its file, line number, reason and bytes.
//!
//! One JSON object per line (`{"file", "line", "reason", "raw"}`; `raw_hex` instead of `raw`
//! when the bytes are not UTF-8), in a file named after the run. The file is created on the
//! first rejected line and fsynced before the run commits, so a committed run's rejects are
//! never lost.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use compactor_formats::Reject;
use serde::Serialize;

/// Writes rejected lines to one file.
pub struct Quarantine {
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

#[derive(Serialize)]
struct Entry<'a> {
    file: &'a str,
    line: u64,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_hex: Option<String>,
}

impl Quarantine {
    /// A quarantine writing to `path` (created on first use).
    pub fn new(path: PathBuf) -> Self {
        Quarantine { path, out: None }
    }

    /// Records rejected lines of `file`.
    pub fn write(&mut self, file: &str, rejects: &[Reject]) -> Result<()> {
        if rejects.is_empty() {
            return Ok(());
        }
        if self.out.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let f = File::create(&self.path)
                .with_context(|| format!("creating quarantine {}", self.path.display()))?;
            self.out = Some(BufWriter::new(f));
        }
        let out = self.out.as_mut().expect("opened above");
        for r in rejects {
            let (raw, raw_hex) = match std::str::from_utf8(&r.raw) {
                Ok(s) => (Some(s), None),
                Err(_) => (
                    None,
                    Some(r.raw.iter().map(|b| format!("{b:02x}")).collect()),
                ),
            };
            serde_json::to_writer(
                &mut *out,
                &Entry {
                    file,
                    line: r.line,
                    reason: &r.reason,
                    raw,
                    raw_hex,
                },
            )?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Flushes and fsyncs; returns the file's path if anything was written.
    pub fn finish(&mut self) -> Result<Option<PathBuf>> {
        match self.out.take() {
            None => Ok(None),
            Some(w) => {
                let f = w.into_inner().map_err(|e| e.into_error())?;
                f.sync_all()?;
                if let Some(dir) = self.path.parent() {
                    crate::segment::sync_dir(dir)?;
                }
                Ok(Some(self.path.clone()))
            }
        }
    }
}
