//! `compactor inspect`: where the bytes of a table go, column by column.
//!
//! # Why
//! A table's size is the sum of choices: the sort key, the column types, dictionary or plain
//! pages, the zstd level, how many small files there are. To change the right one, a user
//! needs to see which column costs what, and how much is fixed overhead (footers, page
//! indexes) rather than data. Everything needed is in the Parquet footers, so this reads only
//! footers, never pages: inspecting a large table is cheap.
//!
//! # How
//! ```text
//!   TABLE dir ─▶ Table::open ─▶ live_files (relative, percent-encoded) ─┐
//!   FILE.parquet ───────────────────────────────────────────────────────┤
//!                                                                       ▼
//!         per file: footer (ParquetMetaDataReader, full page encoding stats)
//!                   │  per row group, per column chunk:
//!                   │    compressed + bloom bytes, uncompressed bytes, data page encodings
//!                   ▼
//!         Breakdown { totals, footer bytes = file bytes − chunks − blooms, columns by bytes }
//!                   │
//!                   ├─▶ render_text   (the terminal table)
//!                   ├─▶ JSON          (serde, `--json`)
//!                   └─▶ render_html   (table + inline SVG bar chart, no scripts, no network)
//! ```
//! Columns are matched across files by their path (`a.b` for nested fields), so a table whose
//! schema grew shows each column once. A column's `bytes` are its column chunks' compressed
//! sizes (page headers and dictionary pages included) plus its bloom filters; every byte of
//! every file is either in some column or in the footer line, so the shares add up to 100%.
//! The zstd level is not stored in Parquet, so only the codec is shown.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use parquet::basic::{LogicalType, PageType, TimeUnit, Type as PhysicalType};
use parquet::file::metadata::{
    ColumnChunkMetaData, ParquetMetaData, ParquetMetaDataOptions, ParquetMetaDataReader,
};
use parquet::schema::types::ColumnDescriptor;
use serde::Serialize;

/// Where the bytes of a set of Parquet files go.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Breakdown {
    /// What was inspected (a table directory or a file), as given.
    pub source: String,
    /// Parquet files read.
    pub files: u64,
    /// Rows in all files.
    pub rows: u64,
    /// Row groups in all files.
    pub row_groups: u64,
    /// Sum of the files' sizes on disk.
    pub total_bytes: u64,
    /// Sum of every column's `bytes` (column chunks and bloom filters).
    pub column_bytes: u64,
    /// Sum of the bloom filters' bytes (part of `column_bytes`).
    pub bloom_bytes: u64,
    /// Everything else: footers, page indexes, magic numbers (`total_bytes - column_bytes`).
    pub footer_bytes: u64,
    /// `footer_bytes` as a percentage of `total_bytes`.
    pub footer_share: f64,
    /// The sort key recorded in the row groups' `sorting_columns` (one entry per distinct key
    /// found, usually one).
    pub sort_keys: Vec<Vec<String>>,
    /// Per column, largest first.
    pub columns: Vec<ColumnBytes>,
}

/// What one column costs, over all files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ColumnBytes {
    /// Column path (`a.b` for a nested field).
    pub name: String,
    /// Compressed column chunk bytes plus bloom filter bytes.
    pub bytes: u64,
    /// Bloom filter bytes (0 if none).
    pub bloom_bytes: u64,
    /// Uncompressed column chunk bytes.
    pub uncompressed_bytes: u64,
    /// `bytes` as a percentage of the files' total size.
    pub share: f64,
    /// `bytes` per row.
    pub bytes_per_row: f64,
    /// Physical and logical type, e.g. `INT64 (TIMESTAMP us UTC)`; types that differ between
    /// files are joined with ` | `.
    pub type_name: String,
    /// Data page encodings with their page counts, most pages first.
    pub encodings: Vec<EncodingPages>,
    /// Compression codecs seen (the level is not stored in Parquet).
    pub compression: Vec<String>,
}

/// How many data pages of a column use one encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EncodingPages {
    /// The encoding, e.g. `RLE_DICTIONARY`.
    pub encoding: String,
    /// Data pages (0 when only the chunk's encoding list was available).
    pub pages: u64,
}

/// The Parquet files of `path`: the live files of a Delta table directory, or `path` itself
/// if it is a file.
pub fn table_files(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).with_context(|| format!("opening {}", path.display()))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.join("_delta_log").is_dir() {
        bail!(
            "{} is neither a Delta table (no _delta_log) nor a Parquet file",
            path.display()
        );
    }
    let table = crate::table::Table::open(path)
        .with_context(|| format!("opening table {}", path.display()))?;
    let root = table.root().to_path_buf();
    table
        .live_files()
        .with_context(|| format!("listing the live files of {}", path.display()))?
        .iter()
        .map(|logged| live_file_path(&root, logged))
        .collect()
}

/// A live file's path on disk: the log holds it relative to the root and percent-encoded.
fn live_file_path(root: &Path, logged: &str) -> Result<PathBuf> {
    if let Ok(url) = url::Url::parse(logged) {
        return url
            .to_file_path()
            .map_err(|_| anyhow::anyhow!("live file {logged:?} is not a local file"));
    }
    let decoded = percent_encoding::percent_decode_str(logged)
        .decode_utf8()
        .with_context(|| format!("live file path {logged:?} is not UTF-8"))?;
    Ok(root.join(decoded.as_ref()))
}

/// Reads the footers of `paths` and adds up where their bytes go.
pub fn breakdown(paths: &[PathBuf]) -> Result<Breakdown> {
    let mut b = Breakdown::default();
    let mut columns: BTreeMap<String, ColumnAcc> = BTreeMap::new();
    let mut order = Vec::new();
    for path in paths {
        let (size, meta) = read_footer(path)?;
        b.files += 1;
        b.total_bytes += size;
        b.rows += meta.file_metadata().num_rows().max(0) as u64;
        b.row_groups += meta.num_row_groups() as u64;
        add_sort_keys(&meta, &mut b.sort_keys);
        for rg in meta.row_groups() {
            for chunk in rg.columns() {
                let name = chunk.column_path().string();
                let acc = columns.entry(name.clone()).or_insert_with(|| {
                    order.push(name);
                    ColumnAcc::default()
                });
                acc.add(chunk);
            }
        }
    }
    b.columns = order
        .into_iter()
        .filter_map(|name| columns.remove(&name).map(|acc| acc.finish(name, &b)))
        .collect();
    b.columns
        .sort_by(|x, y| y.bytes.cmp(&x.bytes).then(x.name.cmp(&y.name)));
    b.column_bytes = b.columns.iter().map(|c| c.bytes).sum();
    b.bloom_bytes = b.columns.iter().map(|c| c.bloom_bytes).sum();
    b.footer_bytes = b.total_bytes.saturating_sub(b.column_bytes);
    b.footer_share = percent(b.footer_bytes, b.total_bytes);
    Ok(b)
}

/// The size of the file at `path` and its footer, with full page encoding statistics (the
/// reader's default keeps only a mask of them).
fn read_footer(path: &Path) -> Result<(u64, ParquetMetaData)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file
        .metadata()
        .with_context(|| format!("reading the size of {}", path.display()))?
        .len();
    let options = ParquetMetaDataOptions::new().with_encoding_stats_as_mask(false);
    let meta = ParquetMetaDataReader::new()
        .with_metadata_options(Some(options))
        .parse_and_finish(&file)
        .with_context(|| format!("reading the Parquet footer of {}", path.display()))?;
    Ok((size, meta))
}

/// Adds the distinct `sorting_columns` of `meta`'s row groups, as column paths, to `keys`.
fn add_sort_keys(meta: &ParquetMetaData, keys: &mut Vec<Vec<String>>) {
    let schema = meta.file_metadata().schema_descr();
    for rg in meta.row_groups() {
        let Some(sorting) = rg.sorting_columns() else {
            continue;
        };
        let key: Vec<String> = sorting
            .iter()
            .map(|s| match usize::try_from(s.column_idx) {
                Ok(i) if i < schema.num_columns() => schema.column(i).path().string(),
                _ => format!("#{}", s.column_idx),
            })
            .collect();
        if !key.is_empty() && !keys.contains(&key) {
            keys.push(key);
        }
    }
}

/// One column's sums while the files are read.
#[derive(Default)]
struct ColumnAcc {
    chunk_bytes: u64,
    bloom_bytes: u64,
    uncompressed_bytes: u64,
    types: Vec<String>,
    pages: BTreeMap<String, u64>,
    compression: BTreeSet<String>,
}

impl ColumnAcc {
    fn add(&mut self, chunk: &ColumnChunkMetaData) {
        self.chunk_bytes += chunk.compressed_size().max(0) as u64;
        self.uncompressed_bytes += chunk.uncompressed_size().max(0) as u64;
        self.bloom_bytes += chunk.bloom_filter_length().unwrap_or(0).max(0) as u64;
        let t = type_name(chunk.column_descr());
        if !self.types.contains(&t) {
            self.types.push(t);
        }
        self.compression
            .insert(chunk.compression_codec().to_string());
        match chunk.page_encoding_stats() {
            Some(stats) => {
                for s in stats
                    .iter()
                    .filter(|s| s.page_type != PageType::DICTIONARY_PAGE)
                {
                    *self.pages.entry(s.encoding.to_string()).or_default() += s.count.max(0) as u64;
                }
            }
            None => {
                for e in chunk.encodings() {
                    self.pages.entry(e.to_string()).or_default();
                }
            }
        }
    }

    fn finish(self, name: String, b: &Breakdown) -> ColumnBytes {
        let bytes = self.chunk_bytes + self.bloom_bytes;
        let mut encodings: Vec<EncodingPages> = self
            .pages
            .into_iter()
            .map(|(encoding, pages)| EncodingPages { encoding, pages })
            .collect();
        encodings.sort_by(|x, y| y.pages.cmp(&x.pages).then(x.encoding.cmp(&y.encoding)));
        ColumnBytes {
            name,
            bytes,
            bloom_bytes: self.bloom_bytes,
            uncompressed_bytes: self.uncompressed_bytes,
            share: percent(bytes, b.total_bytes),
            bytes_per_row: per_row(bytes, b.rows),
            type_name: self.types.join(" | "),
            encodings,
            compression: self.compression.into_iter().collect(),
        }
    }
}

fn per_row(bytes: u64, rows: u64) -> f64 {
    if rows == 0 {
        0.0
    } else {
        bytes as f64 / rows as f64
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// `INT64 (TIMESTAMP us UTC)`, `FIXED_LEN_BYTE_ARRAY(16) (UUID)`, `BYTE_ARRAY (STRING)`.
pub fn type_name(col: &ColumnDescriptor) -> String {
    let physical = match col.physical_type() {
        PhysicalType::FIXED_LEN_BYTE_ARRAY => {
            format!("FIXED_LEN_BYTE_ARRAY({})", col.type_length())
        }
        t => t.to_string(),
    };
    match col.logical_type_ref().and_then(logical_name) {
        Some(l) => format!("{physical} ({l})"),
        None if col.converted_type() != parquet::basic::ConvertedType::NONE => {
            format!("{physical} ({})", col.converted_type())
        }
        None => physical,
    }
}

fn logical_name(l: &LogicalType) -> Option<String> {
    let unit = |u: &TimeUnit| match u {
        TimeUnit::MILLIS => "ms",
        TimeUnit::MICROS => "us",
        TimeUnit::NANOS => "ns",
    };
    let zone = |utc: bool| if utc { " UTC" } else { "" };
    Some(match l {
        LogicalType::Integer(i) => {
            let sign = if i.is_signed { "INT" } else { "UINT" };
            format!("{sign} {}", i.bit_width)
        }
        LogicalType::Timestamp(t) => {
            format!(
                "TIMESTAMP {}{}",
                unit(&t.unit),
                zone(t.is_adjusted_to_u_t_c)
            )
        }
        LogicalType::Time(t) => format!("TIME {}{}", unit(&t.unit), zone(t.is_adjusted_to_u_t_c)),
        LogicalType::Decimal(d) => format!("DECIMAL({},{})", d.precision, d.scale),
        LogicalType::String => "STRING".into(),
        LogicalType::Uuid => "UUID".into(),
        LogicalType::Date => "DATE".into(),
        LogicalType::Json => "JSON".into(),
        LogicalType::Bson => "BSON".into(),
        LogicalType::Enum => "ENUM".into(),
        LogicalType::List => "LIST".into(),
        LogicalType::Map => "MAP".into(),
        LogicalType::Float16 => "FLOAT16".into(),
        other => format!("{other:?}"),
    })
}

/// The encodings column: `RLE_DICTIONARY`, or with page counts when a column mixes
/// encodings (`RLE_DICTIONARY:12,PLAIN:3`: the dictionary overflowed in some chunks).
fn encodings_text(c: &ColumnBytes) -> String {
    if c.encodings.len() == 1 {
        return c.encodings[0].encoding.clone();
    }
    c.encodings
        .iter()
        .map(|e| match e.pages {
            0 => e.encoding.clone(),
            n => format!("{}:{n}", e.encoding),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Bytes in a human unit: `1.2 MB` (decimal units, like the MB/s figures elsewhere).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `1 file`, `2 files`.
fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The sort key line, e.g. `event, ts`, or `none recorded`.
fn sort_key_text(b: &Breakdown) -> String {
    if b.sort_keys.is_empty() {
        return "none recorded".into();
    }
    b.sort_keys
        .iter()
        .map(|k| k.join(", "))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The breakdown as a plain-text table.
pub fn render_text(b: &Breakdown) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", b.source);
    let _ = writeln!(
        out,
        "rows {}   files {}   row groups {}   bytes {} ({})   sort key: {}",
        b.rows,
        b.files,
        b.row_groups,
        b.total_bytes,
        human_bytes(b.total_bytes),
        sort_key_text(b)
    );
    let header = [
        "column",
        "bytes",
        "share",
        "type",
        "encodings",
        "compression",
        "uncompressed",
        "bytes/row",
        "bloom",
    ]
    .map(String::from);
    let columns: Vec<[String; 9]> = b.columns.iter().map(text_cells).collect();
    let total = [
        "total".into(),
        b.total_bytes.to_string(),
        format!("{:.1}%", percent(b.total_bytes, b.total_bytes)),
        String::new(),
        String::new(),
        String::new(),
        b.columns
            .iter()
            .map(|c| c.uncompressed_bytes)
            .sum::<u64>()
            .to_string(),
        format!("{:.2}", per_row(b.total_bytes, b.rows)),
        b.bloom_bytes.to_string(),
    ];
    let mut footer = [(); 9].map(|_| String::new());
    footer[0] = "(footer)".into();
    footer[1] = b.footer_bytes.to_string();
    footer[2] = format!("{:.1}%", b.footer_share);
    footer[3] = "footers, page indexes and file metadata".into();

    let mut widths = [0usize; 9];
    for line in std::iter::once(&header).chain(&columns).chain([&total]) {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // The footer's description runs on past the type column.
    for (w, cell) in widths.iter_mut().zip(&footer[..3]) {
        *w = (*w).max(cell.chars().count());
    }
    for line in std::iter::once(&header)
        .chain(&columns)
        .chain([&footer, &total])
    {
        let _ = writeln!(out, "{}", aligned(line, &widths));
    }
    out
}

/// One column's cells of the text table.
fn text_cells(c: &ColumnBytes) -> [String; 9] {
    [
        c.name.clone(),
        c.bytes.to_string(),
        format!("{:.1}%", c.share),
        c.type_name.clone(),
        encodings_text(c),
        c.compression.join(","),
        c.uncompressed_bytes.to_string(),
        format!("{:.2}", c.bytes_per_row),
        c.bloom_bytes.to_string(),
    ]
}

/// A line of the text table: name, type, encodings and compression left-aligned, numbers
/// right-aligned, two spaces apart.
fn aligned(cells: &[String; 9], widths: &[usize; 9]) -> String {
    const LEFT: [bool; 9] = [true, false, false, true, true, true, false, false, false];
    let mut line = String::new();
    for (k, cell) in cells.iter().enumerate() {
        let w = widths[k];
        let gap = if k == 0 { "" } else { "  " };
        let _ = if LEFT[k] {
            write!(line, "{gap}{cell:<w$}")
        } else {
            write!(line, "{gap}{cell:>w$}")
        };
    }
    line.trim_end().to_string()
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str =
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}\
table{border-collapse:collapse;margin:1em 0}\
th,td{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}\
th{background:#f4f4f4}td.l,th.l{text-align:left}\
tr.footer td{color:#666;font-style:italic}tr.total td{font-weight:bold}\
pre{background:#f8f8f8;padding:1em;overflow-x:auto}\
svg text{font:12px system-ui,sans-serif;fill:#222}.bar{fill:#4e79a7}.overhead{fill:#bab0ac}";

/// A self-contained HTML page with the breakdown: a bar chart of bytes per column (inline
/// SVG, visible without JavaScript) and the table.
pub fn render_html(b: &Breakdown) -> String {
    render_html_page(b, &format!("compactor inspect: {}", b.source), None)
}

/// [`render_html`] with a title and an optional preformatted block shown first (`bench`
/// puts its comparison there).
pub fn render_html_page(b: &Breakdown, title: &str, preface: Option<&str>) -> String {
    let mut out = String::new();
    let title = html_escape(title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n"
    );
    if let Some(p) = preface {
        let _ = writeln!(out, "<pre>{}</pre>", html_escape(p));
    }
    let _ = writeln!(
        out,
        "<p>{}, {}, {}, {} ({} bytes). Sort key: {}.</p>",
        plural(b.rows, "row"),
        plural(b.files, "file"),
        plural(b.row_groups, "row group"),
        human_bytes(b.total_bytes),
        b.total_bytes,
        html_escape(&sort_key_text(b))
    );
    out.push_str("<h2>Bytes per column</h2>\n");
    out.push_str(&render_svg(b));
    out.push_str(&render_html_table(b));
    out.push_str("</body></html>\n");
    out
}

/// Geometry of the bar chart, in pixels.
const LABEL_W: f64 = 260.0;
const BAR_W: f64 = 620.0;
const ROW_H: f64 = 22.0;

/// The bar chart: one `rect.bar` per column (width proportional to its bytes, `data-bytes`
/// holding them) and a grey `rect.overhead` for the footers.
fn render_svg(b: &Breakdown) -> String {
    let max = b
        .columns
        .iter()
        .map(|c| c.bytes)
        .chain([b.footer_bytes, 1])
        .max()
        .unwrap_or(1) as f64;
    let rows = b.columns.len() + 1;
    let height = rows as f64 * ROW_H + 10.0;
    let width = LABEL_W + BAR_W + 160.0;
    let mut out = format!(
        "<svg id=\"chart\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"bytes per column\">\n"
    );
    let bars = b
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.bytes, c.share, "bar"))
        .chain([("(footer)", b.footer_bytes, b.footer_share, "overhead")]);
    for (i, (name, bytes, share, class)) in bars.enumerate() {
        let y = 5.0 + i as f64 * ROW_H;
        let w = if bytes == 0 {
            0.0
        } else {
            (bytes as f64 / max * BAR_W).max(1.0)
        };
        let name = html_escape(name);
        let _ = writeln!(
            out,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{name}</text>\
             <rect class=\"{class}\" x=\"{LABEL_W}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bh}\" \
             data-bytes=\"{bytes}\"><title>{name}: {bytes} bytes ({share:.1}%)</title></rect>\
             <text x=\"{vx:.1}\" y=\"{ty}\">{human} ({share:.1}%)</text>",
            lx = LABEL_W - 8.0,
            ty = y + 14.0,
            bh = ROW_H - 6.0,
            vx = LABEL_W + w + 6.0,
            human = human_bytes(bytes),
        );
    }
    out.push_str("</svg>\n");
    out
}

fn render_html_table(b: &Breakdown) -> String {
    let mut out = String::from(
        "<table id=\"columns\"><tr><th class=\"l\">column</th><th>bytes</th><th>share</th>\
         <th class=\"l\">type</th><th class=\"l\">encodings</th><th class=\"l\">compression</th>\
         <th>uncompressed</th><th>bytes/row</th><th>bloom</th></tr>\n",
    );
    for c in &b.columns {
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{:.1}%</td><td class=\"l\">{}</td>\
             <td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{:.2}</td><td>{}</td></tr>",
            html_escape(&c.name),
            c.bytes,
            c.share,
            html_escape(&c.type_name),
            html_escape(&encodings_text(c)),
            html_escape(&c.compression.join(",")),
            c.uncompressed_bytes,
            c.bytes_per_row,
            c.bloom_bytes
        );
    }
    let _ = writeln!(
        out,
        "<tr class=\"footer\"><td class=\"l\">(footer)</td><td>{}</td><td>{:.1}%</td>\
         <td class=\"l\" colspan=\"6\">footers, page indexes and file metadata</td></tr>",
        b.footer_bytes, b.footer_share
    );
    let _ = writeln!(
        out,
        "<tr class=\"total\"><td class=\"l\">total</td><td>{}</td><td>100%</td>\
         <td colspan=\"3\"></td><td>{}</td><td>{:.2}</td><td>{}</td></tr>\n</table>",
        b.total_bytes,
        b.columns.iter().map(|c| c.uncompressed_bytes).sum::<u64>(),
        per_row(b.total_bytes, b.rows),
        b.bloom_bytes
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Breakdown {
        let col = |name: &str, bytes: u64| ColumnBytes {
            name: name.into(),
            bytes,
            share: bytes as f64,
            type_name: "INT64".into(),
            encodings: vec![EncodingPages {
                encoding: "PLAIN".into(),
                pages: 1,
            }],
            compression: vec!["ZSTD".into()],
            ..Default::default()
        };
        Breakdown {
            source: "t".into(),
            files: 1,
            rows: 10,
            row_groups: 1,
            total_bytes: 100,
            column_bytes: 90,
            footer_bytes: 10,
            footer_share: 10.0,
            columns: vec![col("a<b", 60), col("c", 30)],
            ..Default::default()
        }
    }

    #[test]
    fn human_bytes_uses_decimal_units() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500), "1.5 kB");
        assert_eq!(human_bytes(2_000_000), "2.0 MB");
    }

    #[test]
    fn svg_has_one_bar_per_column_proportional_to_bytes() {
        let svg = render_svg(&sample());
        assert_eq!(svg.matches("class=\"bar\"").count(), 2);
        assert_eq!(svg.matches("class=\"overhead\"").count(), 1);
        assert!(svg.contains(&format!("width=\"{BAR_W:.1}\" height")));
        assert!(svg.contains(&format!("width=\"{:.1}\" height", BAR_W / 2.0)));
        assert!(svg.contains("a&lt;b"), "names are escaped: {svg}");
    }

    #[test]
    fn text_lists_every_column_and_the_footer() {
        let t = render_text(&sample());
        for needle in ["a<b", "\nc ", "(footer)", "total", "rows 10"] {
            assert!(t.contains(needle), "{needle:?} missing from\n{t}");
        }
    }

    #[test]
    fn mixed_encodings_show_page_counts() {
        let mut c = sample().columns.remove(0);
        c.encodings = vec![
            EncodingPages {
                encoding: "RLE_DICTIONARY".into(),
                pages: 12,
            },
            EncodingPages {
                encoding: "PLAIN".into(),
                pages: 3,
            },
        ];
        assert_eq!(encodings_text(&c), "RLE_DICTIONARY:12,PLAIN:3");
    }
}
