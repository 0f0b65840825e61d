//! Where the shared corpus is: real third-party logs beside the project (`../shared/corpus`),
//! which several licenses forbid copying into it. The corpus tests skip when it is absent,
//! saying what was not checked.

use std::path::{Path, PathBuf};

/// `../shared/corpus/<sub>` beside the project, or `None` after a `SKIPPED` line naming
/// `what` (the checks that did not run) when it is absent.
pub fn dir(sub: &str, what: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus")
        .join(sub);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: {} is absent; {what} not checked", dir.display());
        None
    }
}
