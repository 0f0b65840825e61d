//! `compactor inspect` and `compactor bench`, through the CLI: the breakdown accounts for
//! every byte of the table's files (checked against the footers read here with plain
//! `parquet`), the JSON parses, bench prints its six rows, and the HTML page really draws its
//! chart in a browser (headless chromium: the DOM has one sized bar per column, and a
//! screenshot has the bars' colour in it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;

/// Generated JSON events (nested objects become dotted columns).
fn events(dir: &Path, lines: u64) -> PathBuf {
    let cfg = compactor_bench_data::GenConfig::new(compactor_bench_data::GenFormat::Json, lines, 5);
    let (bytes, _) = compactor_bench_data::generate_to_vec(&cfg).unwrap();
    let p = dir.join("events.jsonl");
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A table of `lines` generated events; returns its directory.
fn events_table(dir: &Path, lines: u64) -> PathBuf {
    let input = events(dir, lines);
    let table = dir.join("table");
    let text = common::job_text(
        &[input.to_str().unwrap()],
        "json",
        table.to_str().unwrap(),
        &["event", "ts"],
        "",
    );
    common::run_job(&common::write_job(dir, "job.toml", &text), 2);
    table
}

/// Runs the CLI; asserts success; returns standard output.
fn cli_ok(args: &[&str]) -> String {
    let out = common::cli(args, &[]);
    assert!(
        out.status.success(),
        "compactor {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Per column path: compressed chunk bytes plus bloom filter bytes, over `files`; and the
/// files' total size.
fn footer_bytes(files: &[PathBuf]) -> (std::collections::BTreeMap<String, u64>, u64) {
    let mut cols = std::collections::BTreeMap::new();
    let mut total = 0;
    for f in files {
        total += std::fs::metadata(f).unwrap().len();
        let r = SerializedFileReader::new(std::fs::File::open(f).unwrap()).unwrap();
        for rg in r.metadata().row_groups() {
            for c in rg.columns() {
                let bytes =
                    c.compressed_size() as u64 + c.bloom_filter_length().unwrap_or(0) as u64;
                *cols.entry(c.column_path().string()).or_insert(0) += bytes;
            }
        }
    }
    (cols, total)
}

fn live_paths(table: &Path) -> Vec<PathBuf> {
    common::live_files(table)
        .into_iter()
        .map(|f| f.path)
        .collect()
}

#[test]
fn inspect_accounts_for_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let table = events_table(dir.path(), 4000);
    let (expected, total) = footer_bytes(&live_paths(&table));
    assert!(expected.len() > 10, "{expected:?}");

    let j: Value = serde_json::from_str(&cli_ok(&["inspect", table.to_str().unwrap(), "--json"]))
        .expect("--json prints JSON");
    let columns = j["columns"].as_array().unwrap();
    let got: std::collections::BTreeMap<String, u64> = columns
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected, "per-column bytes match the footers");
    assert_eq!(j["total_bytes"].as_u64(), Some(total));
    assert_eq!(
        j["column_bytes"].as_u64().unwrap() + j["footer_bytes"].as_u64().unwrap(),
        total
    );
    let bytes: Vec<u64> = columns
        .iter()
        .map(|c| c["bytes"].as_u64().unwrap())
        .collect();
    assert!(
        bytes.windows(2).all(|w| w[0] >= w[1]),
        "sorted by bytes: {bytes:?}"
    );
    let share: f64 = columns
        .iter()
        .map(|c| c["share"].as_f64().unwrap())
        .sum::<f64>()
        + j["footer_share"].as_f64().unwrap();
    assert!((share - 100.0).abs() < 1e-6, "shares add up to {share}");
    assert_eq!(
        j["rows"].as_u64(),
        Some(common::read_table_ordered(&table).rows.len() as u64)
    );
    assert_eq!(j["sort_keys"][0], serde_json::json!(["event", "ts"]));

    // The text table: every column once, with its type, and shares that add up to 100%.
    let text = cli_ok(&["inspect", table.to_str().unwrap()]);
    let mut text_share = 0.0;
    for name in expected.keys() {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("no line for {name} in\n{text}"));
        text_share += share_of(line);
    }
    let footer = text
        .lines()
        .find(|l| l.starts_with("(footer)"))
        .expect("footer line");
    text_share += share_of(footer);
    assert!(
        (text_share - 100.0).abs() < 0.1 * expected.len() as f64,
        "{text_share}\n{text}"
    );
    let ts = text.lines().find(|l| l.starts_with("ts ")).unwrap();
    // whole milliseconds: tightened to the MILLIS unit (layout.rs)
    assert!(ts.contains("INT64 (TIMESTAMP ms UTC)"), "{ts}");
    let event = text.lines().find(|l| l.starts_with("event ")).unwrap();
    assert!(
        event.contains("BYTE_ARRAY (STRING)") && event.contains("ZSTD"),
        "{event}"
    );

    // A single file is accepted too.
    let one = &live_paths(&table)[0];
    let j1: Value =
        serde_json::from_str(&cli_ok(&["inspect", one.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!(j1["files"].as_u64(), Some(1));
}

/// The share in a text line: its first field ending in `%`.
fn share_of(line: &str) -> f64 {
    let field = line
        .split_whitespace()
        .find(|f| f.ends_with('%'))
        .unwrap_or_else(|| panic!("no share in {line:?}"));
    field.trim_end_matches('%').parse().unwrap()
}

#[test]
fn inspect_rejects_what_is_not_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::cli(&["inspect", dir.path().to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither a Delta table"));
    let missing = dir.path().join("missing");
    let out = common::cli(&["inspect", missing.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        !missing.exists(),
        "inspect must not create the table directory"
    );
}

/// The bench table's rows by name: (bytes, ratio) or `None` for a failed row.
fn bench_rows(text: &str) -> Vec<(String, Option<(u64, f64)>)> {
    const NAMES: [&str; 7] = [
        "raw",
        "gzip -6",
        "zstd -3",
        "zstd -19",
        "compactor (defaults)",
        "compactor (job)",
        "compactor (sort_by auto)",
    ];
    let mut rows = Vec::new();
    for line in text.lines() {
        let Some(name) = NAMES.iter().find(|n| line.starts_with(&format!("{n} "))) else {
            continue;
        };
        let mut fields = line[name.len()..].split_whitespace();
        let value = match (fields.next(), fields.next()) {
            (Some(b), Some(r)) if b != "-" => Some((b.parse().unwrap(), r.parse().unwrap())),
            _ => None,
        };
        rows.push((name.to_string(), value));
        if rows.len() == 6 {
            break;
        }
    }
    rows
}

#[test]
fn bench_prints_all_six_rows() {
    let dir = tempfile::tempdir().unwrap();
    let cfg =
        compactor_bench_data::GenConfig::new(compactor_bench_data::GenFormat::Combined, 3000, 9);
    let (plain, _) = compactor_bench_data::generate_to_vec(&cfg).unwrap();
    let input = dir.path().join("access.log");
    std::fs::write(&input, &plain).unwrap();
    let html = dir.path().join("bench.html");
    let text = cli_ok(&[
        "bench",
        input.to_str().unwrap(),
        "--format",
        "combined",
        "--threads",
        "2",
        "--html",
        html.to_str().unwrap(),
    ]);
    let rows = bench_rows(&text);
    let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "raw",
            "gzip -6",
            "zstd -3",
            "zstd -19",
            "compactor (defaults)",
            "compactor (sort_by auto)"
        ],
        "{text}"
    );
    assert_eq!(rows[0].1, Some((plain.len() as u64, 1.0)), "{text}");
    for (name, value) in &rows[1..5] {
        let (bytes, ratio) = value.unwrap_or_else(|| panic!("{name} failed:\n{text}"));
        assert!(
            bytes > 0 && ratio > 1.0,
            "{name}: {bytes} bytes, ratio {ratio}\n{text}"
        );
    }
    // `auto` may not be supported yet: then its row carries the error, and the command
    // still succeeds and breaks down the job's table.
    if rows[5].1.is_none() {
        assert!(text.contains("failed:"), "{text}");
    }
    assert!(text.contains("bytes per column"), "{text}");
    assert!(text.contains("(footer)"), "{text}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg id=\"chart\"") && page.contains("gzip -6"));
}

#[test]
fn bench_decodes_compressed_input_and_uses_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let plain = std::fs::read(events(dir.path(), 2000)).unwrap();
    let gz = dir.path().join("events.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &plain).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    // The job's inputs and table are replaced by the file and a temporary directory.
    let job_text = common::job_text(
        &["nowhere/*.jsonl"],
        "json",
        "nowhere-table",
        &["country", "ts"],
        "zstd_level = 3\n",
    );
    let job = common::write_job(dir.path(), "job.toml", &job_text);
    let text = cli_ok(&[
        "bench",
        gz.to_str().unwrap(),
        "--job",
        job.to_str().unwrap(),
        "--threads",
        "1",
    ]);
    let rows = bench_rows(&text);
    assert_eq!(rows.len(), 6, "{text}");
    assert_eq!(rows[0].1.map(|v| v.0), Some(plain.len() as u64), "{text}");
    assert_eq!(rows[4].0, "compactor (job)");
    assert!(rows[4].1.is_some_and(|(_, r)| r > 1.0), "{text}");
    assert!(text.contains("sort key: country, ts"), "{text}");
    assert!(!dir.path().join("nowhere-table").exists());
}

/// Runs `cmd` with standard output to `stdout`, killing it after 60 s; returns whether it
/// exited successfully.
fn run_with_timeout(cmd: &mut Command, stdout: Stdio) -> bool {
    let mut child = cmd
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromium");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in 60 s: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Headless chromium with its own HOME and profile under `scratch`.
fn chromium(scratch: &Path) -> Command {
    let mut c = Command::new("chromium");
    c.env("HOME", scratch.join("home"))
        .arg("--headless=new")
        .arg("--no-sandbox")
        .arg("--disable-gpu")
        .arg(format!(
            "--user-data-dir={}",
            scratch.join("profile").display()
        ));
    c
}

fn chromium_installed() -> bool {
    Command::new("chromium")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn html_chart_is_drawn_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let table = events_table(dir.path(), 3000);
    let page = dir.path().join("inspect.html");
    let json = cli_ok(&[
        "inspect",
        table.to_str().unwrap(),
        "--json",
        "--html",
        page.to_str().unwrap(),
    ]);
    let columns = serde_json::from_str::<Value>(&json).unwrap()["columns"]
        .as_array()
        .unwrap()
        .len();
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: no scripts, nothing fetched.
    for needle in ["<script", "src=", "href=", "url(", "@import"] {
        assert!(!html.contains(needle), "{needle} in the page");
    }
    if !chromium_installed() {
        println!("SKIPPED: chromium not installed");
        return;
    }
    let url = format!("file://{}", page.display());

    // The DOM as rendered: the chart with one sized bar per column.
    let dom_file = dir.path().join("dom.html");
    let dom_out = std::fs::File::create(&dom_file).unwrap();
    let mut dump = chromium(dir.path());
    dump.arg("--dump-dom").arg(&url);
    assert!(
        run_with_timeout(&mut dump, dom_out.into()),
        "chromium --dump-dom failed"
    );
    let dom = std::fs::read_to_string(&dom_file).unwrap();
    assert!(
        dom.contains("<svg id=\"chart\""),
        "no chart in the DOM:\n{dom}"
    );
    let widths = bar_widths(&dom);
    assert_eq!(widths.len(), columns, "one rect.bar per column:\n{dom}");
    assert!(widths.iter().all(|&w| w > 0.0), "{widths:?}");

    // A screenshot: the bars' colour (#4e79a7) covers a real area.
    let png = dir.path().join("out.png");
    let mut shot = chromium(dir.path());
    shot.arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,900")
        .arg(&url);
    assert!(
        run_with_timeout(&mut shot, Stdio::null()),
        "chromium --screenshot failed"
    );
    let (w, h, pixels) = decode_png(&std::fs::read(&png).unwrap());
    assert_eq!((w, h), (1200, 900));
    let bar = pixels
        .iter()
        .filter(|p| {
            p[0].abs_diff(0x4e) <= 8 && p[1].abs_diff(0x79) <= 8 && p[2].abs_diff(0xa7) <= 8
        })
        .count();
    assert!(
        bar > columns * 16,
        "only {bar} pixels of the bar colour: the chart is not drawn"
    );
}

/// The `width` of every `<rect class="bar" ...>` in `dom`.
fn bar_widths(dom: &str) -> Vec<f64> {
    dom.split("<rect ")
        .skip(1)
        .map(|r| &r[..r.find('>').unwrap()])
        .filter(|attrs| attrs.contains("class=\"bar\""))
        .map(|attrs| {
            let v = attrs.split("width=\"").nth(1).expect("rect without width");
            v[..v.find('"').unwrap()].parse().unwrap()
        })
        .collect()
}

/// Decodes an 8-bit, non-interlaced RGB or RGBA PNG (what chromium writes) into RGB pixels.
fn decode_png(bytes: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (mut pos, mut idat) = (8, Vec::new());
    let (mut width, mut height, mut channels) = (0, 0, 0);
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let data = &bytes[pos + 8..pos + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                height = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!((data[8], data[12]), (8, 0), "8-bit, not interlaced");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    t => panic!("PNG colour type {t}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        pos += 12 + len;
    }
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&idat[..]), &mut raw).unwrap();
    let stride = width * channels;
    assert_eq!(raw.len(), height * (stride + 1));
    let mut prev = vec![0u8; stride];
    let mut pixels = Vec::with_capacity(width * height);
    for row in raw.chunks(stride + 1) {
        let cur = unfilter(row[0], &row[1..], &prev, channels);
        pixels.extend(cur.chunks(channels).map(|p| [p[0], p[1], p[2]]));
        prev = cur;
    }
    (width, height, pixels)
}

/// Undoes one scanline's PNG filter.
fn unfilter(filter: u8, line: &[u8], prev: &[u8], bpp: usize) -> Vec<u8> {
    let mut out = vec![0u8; line.len()];
    for i in 0..line.len() {
        let a = if i >= bpp { out[i - bpp] } else { 0 };
        let b = prev[i];
        let c = if i >= bpp { prev[i - bpp] } else { 0 };
        let pred = match filter {
            0 => 0,
            1 => a,
            2 => b,
            3 => ((a as u16 + b as u16) / 2) as u8,
            4 => paeth(a, b, c),
            f => panic!("PNG filter {f}"),
        };
        out[i] = line[i].wrapping_add(pred);
    }
    out
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = a as i16 + b as i16 - c as i16;
    let (pa, pb, pc) = (
        (p - a as i16).abs(),
        (p - b as i16).abs(),
        (p - c as i16).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}
