//! Progress: a bar with bytes done, total and rate on a terminal; nothing otherwise (plain log
//! lines from `tracing` say which file is being read).

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar that may be hidden.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar over `total` bytes, shown only if `show`.
    pub fn new(show: bool, total: u64) -> Self {
        if !show {
            return Progress(None);
        }
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .expect("valid template"),
        );
        Progress(Some(bar))
    }

    /// Bytes done so far.
    pub fn set(&self, done: u64) {
        if let Some(b) = &self.0 {
            b.set_position(done);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
