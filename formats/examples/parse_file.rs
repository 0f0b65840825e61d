//! Parses a file single-threaded in 8 MiB chunks and prints throughput: a quick way to profile
//! the parsers (`valgrind --tool=callgrind`, `perf`) without the rest of the pipeline.
//!
//!     cargo run --release -p compactor-formats --example parse_file -- json FILE [MAX_BYTES]

use std::time::Instant;

use compactor_formats::{parse_chunk, Format, ParseOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: parse_file json|combined|common FILE [MAX_BYTES]");
        std::process::exit(2);
    }
    let format: Format = args[1].parse().expect("format");
    let mut data = std::fs::read(&args[2]).expect("read file");
    if let Some(max) = args.get(3).map(|m| m.parse::<usize>().expect("MAX_BYTES")) {
        let cut = data[..max.min(data.len())]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        data.truncate(cut);
    }
    let opts = ParseOptions::new(format);
    let started = Instant::now();
    let (mut rows, mut rejects, mut start, mut line) = (0usize, 0usize, 0usize, 1u64);
    while start < data.len() {
        let probe = (start + (8 << 20) - 1).min(data.len());
        let end = memchr_newline(&data[probe..]).map_or(data.len(), |i| probe + i + 1);
        let p = parse_chunk(&opts, &data[start..end], line).expect("parse");
        rows += p.batch.num_rows();
        rejects += p.rejects.len();
        line += p.lines;
        start = end;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} bytes, {rows} rows, {rejects} rejects, {secs:.3} s, {:.1} MB/s",
        data.len(),
        data.len() as f64 / 1e6 / secs
    );
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}
