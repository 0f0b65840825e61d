//! Writes generated logs to stdout and reports stats and speed on stderr.
//!
//! ```text
//! cargo run --release -p compactor-bench-data --example gen -- json 1000000 42 > out.jsonl
//! ```

use std::io;
use std::time::Instant;

use compactor_bench_data::{generate, GenConfig, GenFormat};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let format: GenFormat = args.next().as_deref().unwrap_or("json").parse()?;
    let lines: u64 = args.next().as_deref().unwrap_or("1000000").parse()?;
    let seed: u64 = args.next().as_deref().unwrap_or("42").parse()?;

    let cfg = GenConfig::new(format, lines, seed);
    let started = Instant::now();
    let stats = generate(&cfg, io::stdout().lock())?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{format}: {} lines ({} duplicates), {} bytes in {secs:.2}s = {:.0} MB/s, {:.2} M lines/s",
        stats.lines,
        stats.duplicates,
        stats.bytes,
        stats.bytes as f64 / secs / 1e6,
        stats.lines as f64 / secs / 1e6,
    );
    Ok(())
}
