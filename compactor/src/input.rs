//! Finding input files, recognising their compression, and cutting them into chunks.
//!
//! # Chunks
//! Input is never read whole into memory. Plain files are memory-mapped and chunks are slices
//! of the map; gzip and zstd files (recognised by their magic bytes, not their names) and
//! standard input are decoded as streams ([`compactor_formats::decode::Decoder`], which caps
//! the decoded size) into owned chunk buffers. Either way a chunk ends at the first *record*
//! boundary ([`Framing::boundary`]) at or after `chunk_bytes` from its start (or at the end of
//! input): for one-line records the first `\n`, for multi-line records the next line that
//! starts a record, for CSV the first newline outside quotes. So a record is never split
//! between two chunks (which are parsed in parallel), and the same content is cut the same way
//! whether it was compressed or not, and whatever the thread count.
//!
//! A record may hold a chunk open for at most `max_line_bytes` past the cut point; then the
//! chunk is cut at the next line start (see [`compactor_formats::framing`]). A single line
//! longer than `max_line_bytes` (no newline for that long) is passed on cut to
//! `max_line_bytes + 1` bytes (so the parser rejects it) and the rest of it is skipped: memory
//! stays bounded by about `chunk_bytes + max_line_bytes` per chunk.
//!
//! ```text
//!  path/glob/dir ─▶ InputFile{path, size, xxh3?} ─▶ Source::{Mapped | Stream(Decoder: gz|zstd|stdin)}
//!                                                        │            └─▶ ReadHash (as read)
//!                      Chunker(framing) ─▶ Chunk{bytes of whole records} ... ─▶ Err(InputError)?
//! ```
//!
//! # Broken compressed input
//! A truncated, corrupt or too large compressed stream does not lose what came before the
//! failure: the chunker hands out everything decoded up to it (whole records as usual, then a
//! last chunk with the incomplete tail, if any, so that those records are parsed and
//! accounted), and only then returns the error, an [`InputError`] naming the file and carrying
//! the [`DecodeError`] (compression, compressed offset, decoded bytes). [`decode_error`] finds
//! it in an `anyhow` chain.
//!
//! # Fingerprints
//! The table's ledger names consumed files by size and xxh3-128 of their stored bytes. Hashing
//! a file is a pass over all of it, so it is done once, while the file is read: a
//! [`ReadHash`] follows the reader (for mapped files the caller hashes each group of chunks
//! beside parsing it, on another core). Only a file whose size some ledger entry or another
//! input shares is hashed before reading ([`InputFile::hash`]), because only then can its
//! content decide whether it is read at all; after reading, that earlier hash must equal the
//! one taken while reading, or the file changed underneath the run.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use compactor_formats::decode::Decoder;
pub use compactor_formats::decode::{Compression, DecodeError};
use compactor_formats::framing::Framing;
use memmap2::Mmap;

/// One input: a file, or standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// The path, or `-` for standard input.
    pub path: PathBuf,
    /// Size on disk (compressed size for compressed files); 0 for standard input.
    pub size: u64,
    /// xxh3-128 of the bytes as stored, hex: `None` until hashed (see the module docs), and
    /// always for standard input.
    pub fingerprint: Option<String>,
    /// Last modification time as listed (`None` for standard input, or where the file system
    /// keeps none): what `[input] ledger_retention` compares.
    pub modified: Option<std::time::SystemTime>,
}

impl InputFile {
    /// Whether this is standard input.
    pub fn is_stdin(&self) -> bool {
        self.path.as_os_str() == "-"
    }

    /// The path as shown in reports and the quarantine.
    pub fn display(&self) -> String {
        self.path.display().to_string()
    }

    /// The fingerprint, hashing the file (one pass through a memory map) if it was not yet.
    /// Standard input has none.
    pub fn hash(&mut self) -> Result<Option<&str>> {
        if self.fingerprint.is_none() && !self.is_stdin() {
            let file = File::open(&self.path)
                .with_context(|| format!("opening {}", self.path.display()))?;
            let hash = if file.metadata()?.len() == 0 {
                xxhash_rust::xxh3::xxh3_128(b"")
            } else {
                // SAFETY: the map is read-only and dropped before returning; a file truncated
                // while mapped can raise SIGBUS, which is the same risk every mmap-based reader
                // takes.
                let map = unsafe { Mmap::map(&file) }
                    .with_context(|| format!("mapping {}", self.path.display()))?;
                let map = Arc::new(map);
                let h = ReadHash::new(true, Some(map.clone()));
                let mut at = 0;
                while at < map.len() {
                    let end = (at + RELEASE_WINDOW).min(map.len());
                    h.advance(end);
                    release(&map, at, end);
                    at = end;
                }
                h.digest()
            };
            self.fingerprint = Some(format!("{hash:032x}"));
        }
        Ok(self.fingerprint.as_deref())
    }
}

/// Whether `p` contains glob metacharacters.
pub(crate) fn is_glob(p: &str) -> bool {
    p.contains(['*', '?', '['])
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading directory {}", dir.display()))?
        .collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let p = e.path();
        let ft = e.file_type()?;
        if ft.is_dir() {
            walk(&p, out)?;
        } else if p.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

/// Expands the job's paths into input files, in a stable order: each pattern's matches sorted
/// by path, patterns in the order given, each file once. A missing plain path is an error; a
/// glob that matches nothing is not (an hourly job may find no new file).
pub fn discover(patterns: &[String]) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = Vec::new();
    for pat in patterns {
        let mut found = Vec::new();
        if pat == "-" {
            found.push(PathBuf::from("-"));
        } else if is_glob(pat) && !Path::new(pat).exists() {
            // (a path that exists is read as named, even when it contains `[` or `*`)
            for entry in glob::glob(pat).with_context(|| format!("invalid glob {pat:?}"))? {
                let p = entry?;
                if p.is_file() {
                    found.push(p);
                }
            }
            found.sort();
        } else {
            let p = PathBuf::from(pat);
            let meta = std::fs::metadata(&p).with_context(|| format!("input {pat:?}"))?;
            if meta.is_dir() {
                walk(&p, &mut found)?;
            } else {
                found.push(p);
            }
        }
        for p in found {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// An input file's canonical path and size; not yet its fingerprint (see the module docs).
pub fn stat(path: &Path) -> Result<InputFile> {
    if path.as_os_str() == "-" {
        return Ok(InputFile {
            path: path.to_path_buf(),
            size: 0,
            fingerprint: None,
            modified: None,
        });
    }
    let meta = std::fs::metadata(path).with_context(|| format!("opening {}", path.display()))?;
    // The canonical path names the file in reports, the quarantine and the ledger, whatever
    // the working directory or the symbolic links it was reached through.
    let path =
        std::fs::canonicalize(path).with_context(|| format!("resolving {}", path.display()))?;
    Ok(InputFile {
        path,
        size: meta.len(),
        fingerprint: None,
        modified: meta.modified().ok(),
    })
}

/// [`stat`], then [`InputFile::hash`].
pub fn fingerprint(path: &Path) -> Result<InputFile> {
    let mut f = stat(path)?;
    f.hash()?;
    Ok(f)
}

/// An opened input.
pub enum Source {
    /// A plain file, memory-mapped (`None` for an empty file).
    Mapped(Option<Arc<Mmap>>),
    /// A decoded stream.
    Stream(Box<dyn Read + Send>),
}

/// An opened input: its bytes, and the hash that follows them as they are read.
pub struct Opened {
    /// The (decoded) bytes.
    pub source: Source,
    /// The stored compression.
    pub compression: Compression,
    /// xxh3-128 of the stored bytes. Streams hash as they read; for a mapped source the
    /// caller hashes the chunks ([`ReadHash::advance_mapped`]). [`ReadHash::finish`] hashes
    /// what is left either way.
    pub hash: ReadHash,
}

/// A decode failure of one input file: the file as shown in reports, and what went wrong
/// where (compression, compressed offset, decoded bytes).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {error}")]
pub struct InputError {
    /// The input, as [`InputFile::display`] shows it.
    pub path: String,
    /// The decode failure.
    pub error: DecodeError,
}

/// The [`DecodeError`] behind a failure of [`Chunker::next_chunk`] (or any error chain that
/// holds an [`InputError`] or a bare [`DecodeError`]), if it was one.
pub fn decode_error(err: &anyhow::Error) -> Option<&DecodeError> {
    err.downcast_ref::<InputError>()
        .map(|e| &e.error)
        .or_else(|| err.downcast_ref::<DecodeError>())
}

/// Names the file in the decode errors of the reader under it: an `io::Error` carrying a
/// [`DecodeError`] becomes one carrying an [`InputError`].
struct Named<R> {
    inner: R,
    path: String,
}

impl<R: Read> Read for Named<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let kind = e.kind();
            match DecodeError::try_from_io(e) {
                Ok(error) => io::Error::new(
                    kind,
                    InputError {
                        path: self.path.clone(),
                        error,
                    },
                ),
                Err(e) => e,
            }
        })
    }
}

/// A decoding stream for `r`, errors naming `input`.
fn decoded<R: Read + Send + 'static>(
    input: &InputFile,
    r: R,
    max_decoded: u64,
    consumed: Arc<AtomicU64>,
) -> Result<(Compression, Box<dyn Read + Send>)> {
    let d = Decoder::with_counter(r, max_decoded, consumed).map_err(|error| InputError {
        path: input.display(),
        error,
    })?;
    let c = d.compression();
    Ok((
        c,
        Box::new(Named {
            inner: d,
            path: input.display(),
        }),
    ))
}

/// Opens an input, decoding gzip and zstd, capping the decoded size at `max_decoded`.
/// `consumed` counts the stored (compressed) bytes read so far, for progress reporting.
/// Fails if the file's size is no longer the listed one.
pub fn open(input: &InputFile, max_decoded: u64, consumed: Arc<AtomicU64>) -> Result<Opened> {
    if input.is_stdin() {
        let (c, s) = decoded(input, io::stdin(), max_decoded, consumed)?;
        return Ok(Opened {
            source: Source::Stream(s),
            compression: c,
            hash: ReadHash::new(false, None),
        });
    }
    let file = File::open(&input.path).with_context(|| format!("opening {}", input.display()))?;
    let len = file.metadata()?.len();
    // The ledger records the file as listed; read exactly those bytes, or fail (a file still
    // being written would otherwise be recorded as something it is not, and read again whole
    // next time). The content is checked against a listing hash, where there is one, once read.
    if len != input.size {
        bail!("{} changed while it was being read (is it still being written?); nothing was committed", input.display());
    }
    if len == 0 {
        return Ok(Opened {
            source: Source::Mapped(None),
            compression: Compression::None,
            hash: ReadHash::new(true, None),
        });
    }
    // SAFETY: the map is read-only; a file truncated while mapped can raise SIGBUS, which is
    // the same risk every mmap-based reader takes.
    let map = Arc::new(
        unsafe { Mmap::map(&file) }.with_context(|| format!("mapping {}", input.display()))?,
    );
    let hash = ReadHash::new(true, Some(map.clone()));
    let c = Compression::sniff(&map[..map.len().min(4)]);
    let source = match c {
        Compression::None => Source::Mapped(Some(map)),
        Compression::Gzip | Compression::Zstd => {
            let reader = MapReader {
                map,
                pos: 0,
                released: 0,
                hash: hash.clone(),
            };
            let (sniffed, s) = decoded(input, reader, max_decoded, consumed)?;
            debug_assert_eq!(sniffed, c);
            Source::Stream(s)
        }
    };
    Ok(Opened {
        source,
        compression: c,
        hash,
    })
}

/// The xxh3-128 of a map's bytes, taken front to back as they are read (see the module docs).
/// Clones share one state.
#[derive(Clone)]
pub struct ReadHash(Arc<std::sync::Mutex<HashState>>);

struct HashState {
    /// Whether the input is a file (standard input has no fingerprint).
    file: bool,
    map: Option<Arc<Mmap>>,
    at: usize,
    hasher: xxhash_rust::xxh3::Xxh3,
}

impl ReadHash {
    fn new(file: bool, map: Option<Arc<Mmap>>) -> Self {
        ReadHash(Arc::new(std::sync::Mutex::new(HashState {
            file,
            map,
            at: 0,
            hasher: xxhash_rust::xxh3::Xxh3::new(),
        })))
    }

    /// Hashes the map up to byte `to`, from where the last call stopped. (Pages released
    /// before are read back from the file.)
    pub fn advance(&self, to: usize) {
        let mut st = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let HashState {
            map, at, hasher, ..
        } = &mut *st;
        let Some(map) = map else { return };
        let to = to.min(map.len());
        if *at < to {
            hasher.update(&map[*at..to]);
            *at = to;
        }
    }

    /// Hashes up to the end of the last mapped chunk of `chunks` (the chunks of one source, in
    /// order): call it for every group of chunks, beside parsing them.
    pub fn advance_mapped(&self, chunks: &[Chunk]) {
        if let Some(ChunkData::Mapped(_, r)) = chunks.last().map(|c| &c.data) {
            self.advance(r.end);
        }
    }

    fn digest(&self) -> u128 {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hasher
            .digest128()
    }

    /// Hashes the rest and returns the hex fingerprint (`None` for standard input).
    pub fn finish(&self) -> Option<String> {
        self.advance(usize::MAX);
        let file = self.0.lock().unwrap_or_else(|e| e.into_inner()).file;
        file.then(|| format!("{:032x}", self.digest()))
    }
}

/// Bytes between releases of pages already read.
const RELEASE_WINDOW: usize = 64 << 20;

/// Drops the pages of `map[start..end]` (page-aligned inward) from this process's resident
/// memory. The map is private and read-only, so a page touched again is simply read back from
/// the file: this only keeps a large mapped input from counting against RSS.
pub fn release(map: &Mmap, start: usize, end: usize) {
    let page = 4096;
    let start = start.div_ceil(page) * page;
    let end = (end / page * page).min(map.len());
    if end > start {
        // SAFETY: DONTNEED on a private read-only file mapping discards nothing that cannot be
        // read again from the file; no reference into the range is invalidated.
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
    }
}

/// Reads a map front to back, releasing what was read (compressed inputs).
struct MapReader {
    map: Arc<Mmap>,
    pos: usize,
    released: usize,
    hash: ReadHash,
}

impl Read for MapReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.map.len() - self.pos);
        buf[..n].copy_from_slice(&self.map[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos - self.released >= RELEASE_WINDOW {
            self.hash.advance(self.pos);
            release(&self.map, self.released, self.pos);
            self.released = self.pos / 4096 * 4096;
        }
        Ok(n)
    }
}

/// A chunk of whole records. It does not know its first line's number: counting lines is a
/// pass over the bytes, so the parser does it, and the caller numbers the chunks in order from
/// each one's parsed line count.
pub struct Chunk {
    /// The bytes.
    pub data: ChunkData,
}

/// Where a chunk's bytes live.
pub enum ChunkData {
    /// A slice of a memory map.
    Mapped(Arc<Mmap>, std::ops::Range<usize>),
    /// Decoded bytes.
    Owned(Vec<u8>),
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // A parsed chunk is never read again (a page shared with the next chunk stays).
        if let ChunkData::Mapped(m, r) = &self.data {
            release(m, r.start, r.end);
        }
    }
}

impl Chunk {
    /// The chunk's bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            ChunkData::Mapped(m, r) => &m[r.clone()],
            ChunkData::Owned(v) => v,
        }
    }
}

/// Cuts an opened source into chunks of whole records (see the module docs).
pub struct Chunker {
    source: Source,
    chunk_bytes: usize,
    max_line: usize,
    framing: Framing,
    pos: usize,
    buf: Vec<u8>,
    eof: bool,
    discarding: bool,
    /// The read error that ended the stream, returned once the bytes before it are handed out.
    error: Option<anyhow::Error>,
    /// The incomplete last line of a stream that failed (see [`Self::take_incomplete_tail`]).
    tail: Vec<u8>,
    /// Bytes consumed from the source so far (decoded bytes for streams).
    pub bytes_read: u64,
}

/// Bytes asked of a stream at a time beyond the first `chunk_bytes` of a chunk.
const READ_STEP: usize = 64 << 10;

impl Chunker {
    /// A chunker cutting about every `chunk_bytes` at a record boundary of `framing`, with
    /// records or lines longer than `max_line` bytes held to that limit (see the module docs).
    pub fn new(source: Source, chunk_bytes: usize, max_line: usize, framing: Framing) -> Self {
        Chunker {
            source,
            chunk_bytes: chunk_bytes.max(1),
            max_line,
            framing,
            pos: 0,
            buf: Vec::new(),
            eof: false,
            discarding: false,
            error: None,
            tail: Vec::new(),
            bytes_read: 0,
        }
    }

    /// The next chunk, or `None` at the end. A stream that fails (truncated, corrupt, over the
    /// decoded-size cap, unreadable) first hands out the chunks decoded before the failure,
    /// the last one ending with the incomplete tail if there is one; then this returns the
    /// error (an [`InputError`] for decode failures, see [`decode_error`]), and `None` after.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        let chunk = match &mut self.source {
            Source::Mapped(None) => None,
            Source::Mapped(Some(map)) => {
                let len = map.len();
                if self.pos >= len {
                    None
                } else {
                    let start = self.pos;
                    let probe = self.chunk_bytes - 1;
                    let end = self
                        .framing
                        .boundary(&map[start..], probe, self.max_line)
                        .map_or(len, |e| start + e);
                    self.pos = end;
                    self.bytes_read = end as u64;
                    Some(Chunk {
                        data: ChunkData::Mapped(map.clone(), start..end),
                    })
                }
            }
            Source::Stream(_) => match self.next_stream_chunk() {
                Some(v) => Some(Chunk {
                    data: ChunkData::Owned(v),
                }),
                None => match self.error.take() {
                    Some(e) => return Err(e),
                    None => None,
                },
            },
        };
        Ok(chunk)
    }

    /// After a stream failed (`next_chunk` returned its error): the bytes of the line it broke
    /// off in, which no chunk holds (empty if it broke at a line end).
    pub fn take_incomplete_tail(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.tail)
    }

    /// Reads until `buf` holds `want` bytes or the stream ends. A read error ends the stream:
    /// it is kept in `self.error` for after the bytes before it.
    fn fill(&mut self, want: usize) {
        let Source::Stream(r) = &mut self.source else {
            self.eof = true;
            return;
        };
        while !self.eof && self.buf.len() < want {
            let old = self.buf.len();
            let grow = (want - old).max(READ_STEP);
            self.buf.resize(old + grow, 0);
            let n = loop {
                match r.read(&mut self.buf[old..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.error = Some(read_error(e));
                        break 0;
                    }
                }
            };
            self.buf.truncate(old + n);
            self.bytes_read += n as u64;
            if n == 0 {
                self.eof = true;
            }
        }
    }

    fn next_stream_chunk(&mut self) -> Option<Vec<u8>> {
        loop {
            if self.discarding {
                // Skipping the rest of an overlong line.
                self.fill(1);
                match memchr::memchr(b'\n', &self.buf) {
                    Some(i) => {
                        self.buf.drain(..=i);
                        self.discarding = false;
                    }
                    None if self.eof => {
                        self.buf.clear();
                        return None;
                    }
                    None => {
                        self.buf.clear();
                        continue;
                    }
                }
            }
            self.fill(self.chunk_bytes);
            if self.buf.is_empty() {
                return None;
            }
            let probe = (self.chunk_bytes - 1).min(self.buf.len());
            loop {
                if let Some(end) = self.framing.boundary(&self.buf, probe, self.max_line) {
                    let rest = self.buf.split_off(end);
                    return Some(std::mem::replace(&mut self.buf, rest));
                }
                if self.eof {
                    if self.error.is_some() && !self.buf.ends_with(b"\n") {
                        // The stream broke inside its last line: that line is cut, not a
                        // record to parse (`status=200` would read as `status=20`). It goes
                        // with the error (`take_incomplete_tail`), at most `max_line` of it.
                        let keep = memchr::memrchr(b'\n', &self.buf).map_or(0, |i| i + 1);
                        let mut tail = self.buf.split_off(keep);
                        tail.truncate(self.max_line);
                        self.tail = tail;
                        if self.buf.is_empty() {
                            return None;
                        }
                    }
                    return Some(std::mem::take(&mut self.buf));
                }
                // No boundary yet. Is the last line (still open) too long?
                let line_start = memchr::memrchr(b'\n', &self.buf).map_or(0, |i| i + 1);
                if self.buf.len() - line_start > self.max_line + 1 {
                    // Cut past max_line (and past a `\r` there, which the line splitter would
                    // strip), so the parser sees an overlong line and rejects it.
                    let mut cut = line_start + self.max_line + 1;
                    if self.buf[cut - 1] == b'\r' {
                        cut += 1;
                    }
                    let mut chunk = self.buf[..cut].to_vec();
                    chunk.push(b'\n');
                    self.buf.clear();
                    self.discarding = true;
                    return Some(chunk);
                }
                // Grow by what is already past the probe (at least READ_STEP): a long record
                // costs a few rescans by `boundary`, not one per READ_STEP.
                let want = self.buf.len() + READ_STEP.max(self.buf.len() - probe);
                self.fill(want);
            }
        }
    }
}

/// The `anyhow` error for a failed read of a stream: the [`InputError`] (or bare
/// [`DecodeError`]) inside it as such, so that callers can downcast it.
fn read_error(e: io::Error) -> anyhow::Error {
    if e.get_ref().is_some_and(|i| i.is::<InputError>()) {
        let kind = e.kind();
        return match e.into_inner().map(|i| i.downcast::<InputError>()) {
            Some(Ok(ie)) => anyhow::Error::new(*ie),
            Some(Err(other)) => anyhow::Error::new(io::Error::new(kind, other)),
            None => anyhow::Error::new(io::Error::from(kind)),
        };
    }
    match DecodeError::try_from_io(e) {
        Ok(d) => anyhow::Error::new(d),
        Err(e) => anyhow::Error::new(e).context("reading input"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn chunks(source: Source, chunk: usize, max_line: usize) -> Vec<Vec<u8>> {
        chunks_framed(source, chunk, max_line, Framing::Lines)
    }

    fn chunks_framed(
        source: Source,
        chunk: usize,
        max_line: usize,
        framing: Framing,
    ) -> Vec<Vec<u8>> {
        let mut c = Chunker::new(source, chunk, max_line, framing);
        let mut out = Vec::new();
        while let Some(ch) = c.next_chunk().unwrap() {
            out.push(ch.bytes().to_vec());
        }
        out
    }

    fn mapped(dir: &Path, data: &[u8]) -> Source {
        let p = dir.join(format!("f{}", data.len()));
        std::fs::write(&p, data).unwrap();
        open(&fingerprint(&p).unwrap(), u64::MAX, Default::default())
            .unwrap()
            .source
    }

    /// Writes `text` gzipped and zstd-compressed under the given names.
    fn compressed_copies(dir: &Path, text: &[u8], gz: &str, zs: &str) -> (PathBuf, PathBuf) {
        let (gz, zs) = (dir.join(gz), dir.join(zs));
        let mut e = flate2::write::GzEncoder::new(
            File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        e.write_all(text).unwrap();
        e.finish().unwrap();
        std::fs::write(&zs, zstd::encode_all(text, 3).unwrap()).unwrap();
        (gz, zs)
    }

    /// Reads an input the way a run does (hashing each group of mapped chunks) and returns the
    /// bytes and the fingerprint taken while reading.
    fn read_hashed(input: &InputFile, group: usize) -> (Vec<u8>, Option<String>) {
        let opened = open(input, u64::MAX, Default::default()).unwrap();
        let hash = opened.hash.clone();
        let mut c = Chunker::new(opened.source, 7, 1 << 20, Framing::Lines);
        let mut all = Vec::new();
        loop {
            let mut got = Vec::new();
            while got.len() < group {
                match c.next_chunk().unwrap() {
                    Some(ch) => got.push(ch),
                    None => break,
                }
            }
            if got.is_empty() {
                break;
            }
            hash.advance_mapped(&got);
            for ch in &got {
                all.extend_from_slice(ch.bytes());
            }
        }
        (all, hash.finish())
    }

    #[test]
    fn the_hash_taken_while_reading_is_the_listing_hash() {
        let dir = tempfile::tempdir().unwrap();
        let text: Vec<u8> = (0..3000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let plain = dir.path().join("plain.log");
        std::fs::write(&plain, &text).unwrap();
        let (gz, zs) = compressed_copies(dir.path(), &text, "g.log", "z.log");
        let empty = dir.path().join("empty.log");
        std::fs::write(&empty, b"").unwrap();
        for p in [&plain, &gz, &zs, &empty] {
            let listed = fingerprint(p).unwrap();
            let want = listed.fingerprint.clone().unwrap();
            for group in [1, 3, 1000] {
                let unlisted = stat(p).unwrap();
                assert_eq!(unlisted.fingerprint, None);
                let (bytes, got) = read_hashed(&unlisted, group);
                let expect: &[u8] = if p == &empty { b"" } else { &text };
                assert_eq!(bytes, expect, "{}", p.display());
                assert_eq!(
                    got.as_deref(),
                    Some(want.as_str()),
                    "{} group {group}",
                    p.display()
                );
            }
        }
        let mut stdin = stat(Path::new("-")).unwrap();
        assert_eq!(stdin.hash().unwrap(), None);
    }

    #[test]
    fn mapped_and_stream_cut_identically() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = Vec::new();
        for i in 0..500 {
            writeln!(data, "line {i} {}", "x".repeat(i % 37)).unwrap();
        }
        data.extend_from_slice(b"last line without newline");
        for chunk in [1, 7, 64, 1000, 1 << 20] {
            let a = chunks(mapped(dir.path(), &data), chunk, 1 << 20);
            let b = chunks(
                Source::Stream(Box::new(io::Cursor::new(data.clone()))),
                chunk,
                1 << 20,
            );
            assert_eq!(a, b, "chunk {chunk}");
            assert_eq!(a.concat_bytes(), data);
        }
    }

    trait Concat {
        fn concat_bytes(&self) -> Vec<u8>;
    }
    impl Concat for Vec<Vec<u8>> {
        fn concat_bytes(&self) -> Vec<u8> {
            self.concat()
        }
    }

    #[test]
    fn long_lines_are_cut_in_streams() {
        let mut data = b"ok\n".to_vec();
        data.extend(std::iter::repeat_n(b'y', 100_000));
        data.extend_from_slice(b"\nafter\n");
        let got = chunks(Source::Stream(Box::new(io::Cursor::new(data))), 16, 10);
        let all: Vec<u8> = got.concat_bytes();
        assert_eq!(
            all,
            [b"ok\n".as_slice(), &[b'y'; 11], b"\nafter\n"].concat()
        );
        assert_eq!(compactor_formats::count_lines(&all), 3);
    }

    #[test]
    fn a_cr_at_the_cut_point_does_not_let_a_truncated_line_through() {
        // An overlong line longer than one read, whose byte max_line (0-based 10) is '\r'.
        let data = [b"0123456789\r".as_slice(), &[b'z'; 200_000], b"\nok\n"].concat();
        let got = chunks(Source::Stream(Box::new(io::Cursor::new(data))), 4, 10);
        let all = got.concat_bytes();
        assert!(all.len() < 100, "the long line was cut");
        let mut opts = compactor_formats::ParseOptions::new(compactor_formats::Format::Json);
        opts.limits.max_line_bytes = 10;
        let p = compactor_formats::parse_all(&opts, &all).unwrap();
        assert_eq!(p.lines, 2);
        assert!(
            p.rejects[0].reason.contains("max_line_bytes"),
            "{:?}",
            p.rejects
        );
    }

    #[test]
    fn a_file_changed_after_listing_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("grows.log");
        std::fs::write(&p, b"a\n").unwrap();
        let listed = fingerprint(&p).unwrap();
        std::fs::write(&p, b"a\nb\n").unwrap();
        let err = open(&listed, u64::MAX, Default::default())
            .err()
            .expect("must refuse");
        assert!(
            format!("{err:#}").contains("changed while it was being read"),
            "{err:#}"
        );
        // the same size, other content: only the hash taken while reading can tell
        std::fs::write(&p, b"a\n").unwrap();
        let listed = fingerprint(&p).unwrap();
        std::fs::write(&p, b"b\n").unwrap();
        let (_, read) = read_hashed(&listed, 2);
        assert_ne!(read, listed.fingerprint);
    }

    #[test]
    fn compression_by_magic_and_decoded_limit() {
        let dir = tempfile::tempdir().unwrap();
        let text = b"a\nb\nc\n".repeat(1000);
        let (gz, zs) = compressed_copies(dir.path(), &text, "x.log", "y.data");
        for p in [&gz, &zs] {
            let o = open(&fingerprint(p).unwrap(), u64::MAX, Default::default()).unwrap();
            assert_ne!(o.compression, Compression::None);
            assert_eq!(chunks(o.source, 100, 1000).concat_bytes(), text);
            let o = open(&fingerprint(p).unwrap(), 100, Default::default()).unwrap();
            let mut ch = Chunker::new(o.source, 1 << 20, 1000, Framing::Lines);
            // what fits under the cap comes first, then the error
            let first = ch.next_chunk().unwrap().expect("the bytes under the cap");
            assert_eq!(first.bytes(), &text[..100]);
            let err = ch.next_chunk().err().unwrap();
            let msg = format!("{err:#}");
            assert!(msg.contains("max_decompressed_bytes"), "{msg}");
            assert!(matches!(
                decode_error(&err),
                Some(DecodeError::TooLarge { limit: 100, .. })
            ));
        }
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert!(chunks(
            open(&fingerprint(&empty).unwrap(), 1, Default::default())
                .unwrap()
                .source,
            10,
            10
        )
        .is_empty());
    }

    /// Multi-line records (a start pattern), quoted CSV newlines, and plain lines, with
    /// records of many sizes; some continuation lines look like nothing special.
    fn framed_text() -> Vec<u8> {
        let mut data = Vec::new();
        writeln!(data, "orphan continuation before the first record").unwrap();
        for i in 0..400 {
            writeln!(data, "2024-01-{:02} record {i},\"q{i}", i % 28 + 1).unwrap();
            for k in 0..(i % 5) {
                writeln!(data, "    at frame {k} {}", "z".repeat(i % 23)).unwrap();
            }
            writeln!(data, "  end of quote {i}\",{i}").unwrap();
        }
        data.extend_from_slice(b"2024-02-01 last record without newline");
        data
    }

    fn framings() -> Vec<(&'static str, Framing)> {
        let start = compactor_formats::grok::Pattern::compile(r"^\d{4}-\d{2}-", true).unwrap();
        vec![
            ("lines", Framing::Lines),
            ("multi", Framing::MultiLine(Arc::new(start))),
            (
                "quoted",
                compactor_formats::ParseOptions::new(compactor_formats::Format::Csv).framing(),
            ),
        ]
    }

    /// The records of `data` under `f`, as byte strings.
    fn records(f: &Framing, data: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        f.for_each_record(data, |_, r, _| out.push(r.to_vec()));
        out
    }

    #[test]
    fn cuts_are_identical_for_plain_gzip_and_zstd_and_never_split_records() {
        let dir = tempfile::tempdir().unwrap();
        let data = framed_text();
        let plain = dir.path().join("plain.log");
        std::fs::write(&plain, &data).unwrap();
        let (gz, zs) = compressed_copies(dir.path(), &data, "f.gz", "f.zst");
        for (name, f) in framings() {
            let whole = records(&f, &data);
            for chunk in [1, 50, 333, 4096, 1 << 20] {
                let cut = |p: &Path| {
                    let o = open(&fingerprint(p).unwrap(), u64::MAX, Default::default()).unwrap();
                    chunks_framed(o.source, chunk, 1 << 20, f.clone())
                };
                let a = cut(&plain);
                assert_eq!(a, cut(&gz), "{name} chunk {chunk}: gzip cuts differ");
                assert_eq!(a, cut(&zs), "{name} chunk {chunk}: zstd cuts differ");
                let stream = chunks_framed(
                    Source::Stream(Box::new(io::Cursor::new(data.clone()))),
                    chunk,
                    1 << 20,
                    f.clone(),
                );
                assert_eq!(a, stream, "{name} chunk {chunk}: stream cuts differ");
                assert_eq!(a.concat_bytes(), data);
                // every chunk holds whole records: the chunks' records are the file's
                let pieces: Vec<Vec<u8>> = a.iter().flat_map(|c| records(&f, c)).collect();
                assert_eq!(pieces, whole, "{name} chunk {chunk}: a record was split");
                if chunk == 1 && name != "lines" {
                    assert!(a.len() < count(&data), "{name}: cut at lines, not records");
                }
            }
        }
    }

    fn count(data: &[u8]) -> usize {
        compactor_formats::count_lines(data) as usize
    }

    #[test]
    fn a_multi_line_record_is_held_to_max_line_past_the_cut() {
        // One record of many short continuation lines: the chunk is cut at a plain line start
        // once the record runs `max_line` past the cut point, so memory stays bounded.
        let mut data = b"2024-01-01 start\n".to_vec();
        for i in 0..10_000 {
            writeln!(data, "  continuation {i}").unwrap();
        }
        let (_, multi) = framings().swap_remove(1);
        let got = chunks_framed(
            Source::Stream(Box::new(io::Cursor::new(data.clone()))),
            64,
            1000,
            multi,
        );
        assert!(got.len() > 10, "{} chunks", got.len());
        assert!(got.iter().all(|c| c.len() <= 64 + 1000 + 64));
        assert_eq!(got.concat_bytes(), data);
    }

    #[test]
    fn quoted_newlines_stay_in_one_chunk() {
        let mut data = b"a,b\n".to_vec();
        for i in 0..300 {
            writeln!(data, "{i},\"multi\nline \"\"quoted\"\"\nvalue {i}\"").unwrap();
        }
        let (_, quoted) = framings().swap_remove(2);
        for chunk in [1, 10, 100] {
            let got = chunks_framed(
                Source::Stream(Box::new(io::Cursor::new(data.clone()))),
                chunk,
                1 << 20,
                quoted.clone(),
            );
            for c in &got[1..] {
                assert!(
                    c[0].is_ascii_digit(),
                    "chunk {chunk}: starts inside a quote"
                );
            }
            assert_eq!(got.concat_bytes(), data);
        }
    }

    /// Reads chunks until the end or an error; returns the chunks and the error.
    fn chunks_until_error(source: Source, chunk: usize) -> (Vec<Vec<u8>>, Option<anyhow::Error>) {
        let mut c = Chunker::new(source, chunk, 1 << 20, Framing::Lines);
        let mut out = Vec::new();
        loop {
            match c.next_chunk() {
                Ok(Some(ch)) => out.push(ch.bytes().to_vec()),
                Ok(None) => return (out, None),
                Err(e) => {
                    // after the error, the end
                    assert!(matches!(c.next_chunk(), Ok(None)));
                    // The line it broke off in comes with the error, not in a chunk.
                    let tail = c.take_incomplete_tail();
                    assert!(!tail.contains(&b'\n'));
                    if !tail.is_empty() {
                        out.push(tail);
                    }
                    return (out, Some(e));
                }
            }
        }
    }

    #[test]
    fn truncated_streams_hand_out_the_prefix_then_fail() {
        let dir = tempfile::tempdir().unwrap();
        let text: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("{{\"id\":{i},\"v\":\"{:x}\"}}\n", i * 7919).into_bytes())
            .collect();
        let (gz, zs) = compressed_copies(dir.path(), &text, "t.gz", "t.zst");
        for (p, c) in [(&gz, Compression::Gzip), (&zs, Compression::Zstd)] {
            let full = std::fs::read(p).unwrap();
            for keep in [full.len() / 3, full.len() * 2 / 3, full.len() - 3] {
                let cut = dir.path().join(format!("cut-{keep}-{}", c.name()));
                std::fs::write(&cut, &full[..keep]).unwrap();
                let input = fingerprint(&cut).unwrap();
                let o = open(&input, u64::MAX, Default::default()).unwrap();
                assert_eq!(o.compression, c);
                let (got, err) = chunks_until_error(o.source, 4096);
                let err = err.unwrap_or_else(|| panic!("{c} cut at {keep}: no error"));
                let all = got.concat_bytes();
                assert!(text.starts_with(&all), "{c}: not a prefix");
                assert!(!all.is_empty(), "{c} cut at {keep}: nothing handed out");
                // whole lines in every chunk but maybe the last (the incomplete tail)
                for ch in &got[..got.len() - 1] {
                    assert!(ch.ends_with(b"\n"));
                }
                let ie = err.downcast_ref::<InputError>().expect("an InputError");
                assert_eq!(ie.path, input.display());
                assert!(matches!(ie.error, DecodeError::Truncated { .. }), "{err:#}");
                assert_eq!(ie.error.decoded(), all.len() as u64);
                assert!(ie.error.offset() <= keep as u64 && ie.error.offset() > 0);
                let d = decode_error(&err).expect("a DecodeError");
                assert_eq!(d.compression(), c);
                let msg = format!("{err:#}");
                for want in [input.display().as_str(), c.name(), "offset", "truncated"] {
                    assert!(msg.contains(want), "{msg:?} lacks {want:?}");
                }
            }
        }
    }

    #[test]
    fn corrupt_streams_hand_out_the_prefix_then_fail() {
        let dir = tempfile::tempdir().unwrap();
        let text: Vec<u8> = (0..5_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let (gz, _) = compressed_copies(dir.path(), &text, "c.gz", "c.zst");
        let mut bad = std::fs::read(&gz).unwrap();
        let n = bad.len();
        bad[n - 6] ^= 0xff; // the CRC
        std::fs::write(&gz, &bad).unwrap();
        let o = open(&fingerprint(&gz).unwrap(), u64::MAX, Default::default()).unwrap();
        let (got, err) = chunks_until_error(o.source, 1000);
        assert_eq!(got.concat_bytes(), text, "everything before the checksum");
        let err = err.expect("a checksum error");
        assert!(
            matches!(decode_error(&err), Some(DecodeError::Corrupt { .. })),
            "{err:#}"
        );
        // a stream source without a name still carries the DecodeError
        let d = Decoder::new(io::Cursor::new(bad), u64::MAX).unwrap();
        let (got, err) = chunks_until_error(Source::Stream(Box::new(d)), 1000);
        assert_eq!(got.concat_bytes(), text);
        assert!(decode_error(&err.unwrap()).is_some());
    }

    #[test]
    fn discover_sorts_globs_dirs_and_dedups() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("d/sub")).unwrap();
        for f in ["b.log", "a.log", "d/z.log", "d/sub/y.log", "d/.hidden"] {
            std::fs::write(dir.path().join(f), b"x\n").unwrap();
        }
        let g = dir.path().join("*.log").to_string_lossy().into_owned();
        let d = dir.path().join("d").to_string_lossy().into_owned();
        let a = dir.path().join("a.log").to_string_lossy().into_owned();
        let found = discover(&[g.clone(), d, a]).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["a.log", "b.log", "d/sub/y.log", "d/z.log"]);
        assert!(discover(&[dir.path().join("nope").to_string_lossy().into_owned()]).is_err());
        assert!(
            discover(&[dir.path().join("*.none").to_string_lossy().into_owned()])
                .unwrap()
                .is_empty()
        );
    }
}
