//! Decompression of input streams: gzip and zstd recognised by their magic bytes, decoded
//! behind a plain [`Read`], with a cap on the decoded size and typed errors.
//!
//! # Why
//! Compressed logs are the most hostile input compactor reads: a few kilobytes can decode to
//! terabytes (a decompression bomb), a file copied while it was still being written ends in the
//! middle of a block, and a flipped bit can make a decoder fail anywhere. This module turns all
//! of that into one [`Read`] adapter, [`Decoder`], whose failures are a single typed error,
//! [`DecodeError`], saying what went wrong (truncated, corrupt, too large, I/O), in which
//! compression, at which compressed byte offset and after how many decoded bytes. Like the rest
//! of this crate it is pure: it wraps any `Read` and never opens a file, so it is fuzzed on its
//! own (`fuzz/fuzz_targets/decode.rs`).
//!
//! # Algorithm
//! 1. [`Decoder::new`] reads up to four bytes and sniffs them ([`Compression::sniff`]): gzip
//!    (`1f 8b`), zstd (`28 b5 2f fd`, or a skippable frame `5? 2a 4d 18`), else plain. The
//!    sniffed bytes are chained back in front of the reader, so nothing is lost.
//! 2. The (chained) reader is buffered and wrapped in a counting layer that counts the bytes the
//!    decompressor *consumes* (not merely buffers): that count is the compressed offset that
//!    errors report, and it can also feed a shared progress counter.
//! 3. gzip is decoded member after member (`flate2`'s `MultiGzDecoder`, as `gzip -d` does with
//!    concatenated files), zstd frame after frame; plain bytes pass through.
//! 4. Each read asks the decompressor for at most the bytes left under the cap; once the cap is
//!    reached, a one-byte probe tells a stream that ends exactly there from one that goes on,
//!    which fails with [`DecodeError::TooLarge`]. So no caller ever sees more than `limit`
//!    decoded bytes, whatever the compression ratio.
//! 5. An error is classified by where the compressed input stood: an error of the wrapped
//!    reader itself is [`DecodeError::Io`]; a decoder error once the compressed input is at its
//!    end (or an unexpected-end error) is [`DecodeError::Truncated`]; any other decoder error is
//!    [`DecodeError::Corrupt`]. The decoder is then *fused*: every later read fails the same way.
//!
//! ```text
//!   any Read ─▶ sniff 4 bytes ─▶ chain(head, rest) ─▶ BufReader ─▶ Counted (consumed bytes)
//!                                                                    │
//!             ┌─────────── plain: pass through ◀──────────────────────┤
//!   Decoder ◀─┼─────────── gzip:  MultiGzDecoder (all members) ◀──────┤
//!    (cap,    └─────────── zstd:  zstd Decoder (all frames) ◀─────────┘
//!     typed errors)
//! ```
//!
//! Errors travel through [`Read`] as [`std::io::Error`]s whose inner error is the
//! [`DecodeError`] ([`DecodeError::from_io`] gets it back), so a `Decoder` can sit under any
//! reader stack and the caller still learns exactly what happened.
//!
//! Records decoded before a failure are delivered before the error: gzip hands out every byte
//! the inflater produced; zstd hands out every complete block (blocks are at most 128 KiB).
//! Memory: the buffer ([`DEFAULT_BUFFER_BYTES`]), the gzip window (32 KiB) or the zstd window
//! (what the frame asks for, at most zstd's default limit of 128 MiB; larger windows are
//! [`DecodeError::Corrupt`]).

use std::io::{self, BufRead, BufReader, Chain, Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Capacity of the buffer between the wrapped reader and the decompressor.
pub const DEFAULT_BUFFER_BYTES: usize = 256 << 10;

/// Compression of an input, recognised by magic bytes (not by file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Plain bytes.
    None,
    /// gzip, also several members concatenated.
    Gzip,
    /// zstd, also several frames concatenated (skippable frames included).
    Zstd,
}

impl Compression {
    /// Recognises the compression from the first bytes of an input (four are enough; fewer
    /// may read as [`Compression::None`]).
    pub fn sniff(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            // zstd skippable frame: magic 0x184D2A50..=0x184D2A5F, little-endian
            [b, 0x2a, 0x4d, 0x18, ..] if b & 0xf0 == 0x50 => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// The name used in messages and reports: `none`, `gzip` or `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why decoding an input failed, where, and how far it got. Every variant carries the
/// compression, the compressed byte `offset` (bytes of the wrapped reader consumed by the
/// decompressor when it failed) and `decoded` (decoded bytes handed out before the failure).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The compressed stream ends in the middle of a member, frame or header: the file was cut
    /// short (copied while being written, an interrupted download).
    #[error(
        "truncated {compression} input: the stream ends unexpectedly at compressed offset \
         {offset} (after {decoded} decoded bytes)"
    )]
    Truncated {
        /// The input's compression.
        compression: Compression,
        /// Compressed bytes consumed.
        offset: u64,
        /// Decoded bytes handed out.
        decoded: u64,
    },
    /// The compressed data is invalid: a bad header, block or checksum, or garbage after the
    /// last member or frame.
    #[error(
        "corrupt {compression} input at compressed offset {offset} (after {decoded} decoded \
         bytes): {detail}"
    )]
    Corrupt {
        /// The input's compression.
        compression: Compression,
        /// Compressed bytes consumed.
        offset: u64,
        /// Decoded bytes handed out.
        decoded: u64,
        /// The decompressor's own message.
        detail: String,
    },
    /// The input decodes to more than the cap (a decompression bomb, or a cap set too low).
    #[error(
        "{compression} input decodes to more than {limit} bytes (max_decompressed_bytes), \
         at compressed offset {offset}"
    )]
    TooLarge {
        /// The input's compression.
        compression: Compression,
        /// Compressed bytes consumed.
        offset: u64,
        /// Decoded bytes handed out (the cap).
        decoded: u64,
        /// The cap.
        limit: u64,
    },
    /// Reading the wrapped reader failed.
    #[error(
        "reading {compression} input failed at compressed offset {offset} (after {decoded} \
         decoded bytes): {source}"
    )]
    Io {
        /// The input's compression.
        compression: Compression,
        /// Compressed bytes consumed.
        offset: u64,
        /// Decoded bytes handed out.
        decoded: u64,
        /// The reader's error.
        #[source]
        source: io::Error,
    },
}

impl DecodeError {
    /// The input's compression.
    pub fn compression(&self) -> Compression {
        match self {
            DecodeError::Truncated { compression, .. }
            | DecodeError::Corrupt { compression, .. }
            | DecodeError::TooLarge { compression, .. }
            | DecodeError::Io { compression, .. } => *compression,
        }
    }

    /// The compressed byte offset at which decoding failed.
    pub fn offset(&self) -> u64 {
        match self {
            DecodeError::Truncated { offset, .. }
            | DecodeError::Corrupt { offset, .. }
            | DecodeError::TooLarge { offset, .. }
            | DecodeError::Io { offset, .. } => *offset,
        }
    }

    /// Decoded bytes handed out before the failure.
    pub fn decoded(&self) -> u64 {
        match self {
            DecodeError::Truncated { decoded, .. }
            | DecodeError::Corrupt { decoded, .. }
            | DecodeError::TooLarge { decoded, .. }
            | DecodeError::Io { decoded, .. } => *decoded,
        }
    }

    /// The `DecodeError` inside an [`io::Error`] that a [`Decoder`] returned, if it is one.
    pub fn from_io(e: &io::Error) -> Option<&DecodeError> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<DecodeError>())
    }

    /// Takes the `DecodeError` out of an [`io::Error`] that a [`Decoder`] returned; any other
    /// error is given back unchanged.
    pub fn try_from_io(e: io::Error) -> Result<DecodeError, io::Error> {
        if Self::from_io(&e).is_none() {
            return Err(e);
        }
        let kind = e.kind();
        match e.into_inner().map(|inner| inner.downcast::<DecodeError>()) {
            Some(Ok(d)) => Ok(*d),
            Some(Err(other)) => Err(io::Error::new(kind, other)),
            None => Err(io::Error::from(kind)),
        }
    }

    /// The [`io::ErrorKind`] this error travels as.
    fn io_kind(&self) -> io::ErrorKind {
        match self {
            DecodeError::Truncated { .. } => io::ErrorKind::UnexpectedEof,
            DecodeError::Corrupt { .. } | DecodeError::TooLarge { .. } => {
                io::ErrorKind::InvalidData
            }
            DecodeError::Io { source, .. } => source.kind(),
        }
    }

    /// An equal error, to fail again with after the first failure (an I/O source is copied as
    /// its kind and message).
    fn replay(&self) -> DecodeError {
        match self {
            DecodeError::Truncated {
                compression,
                offset,
                decoded,
            } => DecodeError::Truncated {
                compression: *compression,
                offset: *offset,
                decoded: *decoded,
            },
            DecodeError::Corrupt {
                compression,
                offset,
                decoded,
                detail,
            } => DecodeError::Corrupt {
                compression: *compression,
                offset: *offset,
                decoded: *decoded,
                detail: detail.clone(),
            },
            DecodeError::TooLarge {
                compression,
                offset,
                decoded,
                limit,
            } => DecodeError::TooLarge {
                compression: *compression,
                offset: *offset,
                decoded: *decoded,
                limit: *limit,
            },
            DecodeError::Io {
                compression,
                offset,
                decoded,
                source,
            } => DecodeError::Io {
                compression: *compression,
                offset: *offset,
                decoded: *decoded,
                source: io::Error::new(source.kind(), source.to_string()),
            },
        }
    }
}

impl From<DecodeError> for io::Error {
    /// An `io::Error` of a matching kind (`UnexpectedEof` for truncation, `InvalidData` for
    /// corrupt or too large, the source's kind for I/O) whose inner error is the `DecodeError`.
    fn from(e: DecodeError) -> io::Error {
        io::Error::new(e.io_kind(), e)
    }
}

/// The wrapped reader with the sniffed bytes put back in front.
type Head<R> = Chain<Cursor<Vec<u8>>, R>;

/// A buffered reader that counts the bytes its consumer consumes (see the module docs) and
/// remembers whether the input ended or the reader failed.
struct Counted<R> {
    inner: BufReader<Head<R>>,
    consumed: u64,
    shared: Option<Arc<AtomicU64>>,
    /// The wrapped reader reported its end.
    at_end: bool,
    /// The wrapped reader returned an error (other than `Interrupted`).
    failed: bool,
}

impl<R: Read> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self.inner.fill_buf() {
            Ok(b) => {
                if b.is_empty() {
                    self.at_end = true;
                }
                Ok(b)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.failed = true;
                }
                Err(e)
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.consumed += n as u64;
        if let Some(s) = &self.shared {
            s.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// The decompressor over the counted reader.
enum Inner<R: Read> {
    Plain(Counted<R>),
    Gzip(Box<flate2::bufread::MultiGzDecoder<Counted<R>>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, Counted<R>>>),
}

impl<R: Read> Inner<R> {
    fn counted(&self) -> &Counted<R> {
        match self {
            Inner::Plain(c) => c,
            Inner::Gzip(d) => d.get_ref(),
            Inner::Zstd(d) => d.get_ref(),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Inner::Plain(c) => c.read(buf),
            Inner::Gzip(d) => d.read(buf),
            Inner::Zstd(d) => d.read(buf),
        }
    }
}

/// A [`Read`] adapter that decodes gzip, zstd or plain input, caps the decoded size and turns
/// every failure into a [`DecodeError`] (see the module docs).
///
/// ```
/// use std::io::Read;
/// use compactor_formats::decode::{Compression, Decoder};
///
/// let mut d = Decoder::new(&b"plain text\n"[..], 1 << 20).unwrap();
/// assert_eq!(d.compression(), Compression::None);
/// let mut s = String::new();
/// d.read_to_string(&mut s).unwrap();
/// assert_eq!(s, "plain text\n");
/// ```
pub struct Decoder<R: Read> {
    inner: Inner<R>,
    compression: Compression,
    limit: u64,
    decoded: u64,
    failed: Option<DecodeError>,
}

impl<R: Read> std::fmt::Debug for Decoder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("compression", &self.compression)
            .field("limit", &self.limit)
            .field("decoded", &self.decoded)
            .field("compressed", &self.compressed_bytes())
            .field("failed", &self.failed)
            .finish()
    }
}

impl<R: Read> Decoder<R> {
    /// A decoder for `reader`, whose compression is sniffed from its first bytes, handing out
    /// at most `limit` decoded bytes. Fails only if reading those first bytes fails.
    pub fn new(reader: R, limit: u64) -> Result<Self, DecodeError> {
        Self::build(reader, limit, None, None)
    }

    /// [`Decoder::new`], also adding the compressed bytes consumed to `counter` as they are
    /// consumed (for progress reporting across threads).
    pub fn with_counter(
        reader: R,
        limit: u64,
        counter: Arc<AtomicU64>,
    ) -> Result<Self, DecodeError> {
        Self::build(reader, limit, Some(counter), None)
    }

    /// A decoder for `reader` in a known compression (nothing is sniffed).
    pub fn with_compression(
        reader: R,
        compression: Compression,
        limit: u64,
    ) -> Result<Self, DecodeError> {
        Self::build(reader, limit, None, Some(compression))
    }

    fn build(
        mut reader: R,
        limit: u64,
        shared: Option<Arc<AtomicU64>>,
        known: Option<Compression>,
    ) -> Result<Self, DecodeError> {
        let mut head = Vec::with_capacity(4);
        let compression = match known {
            Some(c) => c,
            None => {
                let mut b = [0u8; 4];
                let mut n = 0;
                while n < b.len() {
                    match reader.read(&mut b[n..]) {
                        Ok(0) => break,
                        Ok(k) => n += k.min(b.len() - n),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(source) => {
                            return Err(DecodeError::Io {
                                compression: Compression::None,
                                offset: 0,
                                decoded: 0,
                                source,
                            })
                        }
                    }
                }
                head.extend_from_slice(&b[..n]);
                Compression::sniff(&head)
            }
        };
        let counted = Counted {
            inner: BufReader::with_capacity(DEFAULT_BUFFER_BYTES, Cursor::new(head).chain(reader)),
            consumed: 0,
            shared,
            at_end: false,
            failed: false,
        };
        let inner = match compression {
            Compression::None => Inner::Plain(counted),
            Compression::Gzip => {
                Inner::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(counted)))
            }
            Compression::Zstd => match zstd::stream::read::Decoder::with_buffer(counted) {
                Ok(d) => Inner::Zstd(Box::new(d)),
                Err(source) => {
                    return Err(DecodeError::Io {
                        compression,
                        offset: 0,
                        decoded: 0,
                        source,
                    })
                }
            },
        };
        Ok(Decoder {
            inner,
            compression,
            limit,
            decoded: 0,
            failed: None,
        })
    }

    /// The input's compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Compressed bytes consumed so far (bytes of the wrapped reader, sniffed bytes included).
    pub fn compressed_bytes(&self) -> u64 {
        self.inner.counted().consumed
    }

    /// Decoded bytes handed out so far.
    pub fn decoded_bytes(&self) -> u64 {
        self.decoded
    }

    /// The cap on decoded bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The error this decoder failed with, if it did (every later read fails with it again).
    pub fn error(&self) -> Option<&DecodeError> {
        self.failed.as_ref()
    }

    /// Classifies a decompressor error (see the module docs).
    fn classify(&self, e: io::Error) -> DecodeError {
        let c = self.inner.counted();
        let (compression, offset, decoded) = (self.compression, c.consumed, self.decoded);
        if c.failed {
            DecodeError::Io {
                compression,
                offset,
                decoded,
                source: e,
            }
        } else if c.at_end || e.kind() == io::ErrorKind::UnexpectedEof {
            DecodeError::Truncated {
                compression,
                offset,
                decoded,
            }
        } else {
            DecodeError::Corrupt {
                compression,
                offset,
                decoded,
                detail: e.to_string(),
            }
        }
    }

    fn fail(&mut self, e: DecodeError) -> io::Error {
        let out = e.replay();
        self.failed = Some(e);
        out.into()
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(e.replay().into());
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let left = self.limit.saturating_sub(self.decoded);
        let got = if left == 0 {
            // At the cap: does the stream end here, or go on?
            let mut probe = [0u8; 1];
            match self.inner.read(&mut probe) {
                Ok(0) => Ok(0),
                Ok(_) => {
                    let c = self.inner.counted();
                    let e = DecodeError::TooLarge {
                        compression: self.compression,
                        offset: c.consumed,
                        decoded: self.decoded,
                        limit: self.limit,
                    };
                    return Err(self.fail(e));
                }
                Err(e) => Err(e),
            }
        } else {
            let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
            self.inner.read(&mut buf[..n])
        };
        match got {
            Ok(n) => {
                self.decoded += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let d = self.classify(e);
                Err(self.fail(d))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        zstd::encode_all(data, 3).unwrap()
    }

    /// Reads everything; returns the decoded bytes and the error that ended the read, if any.
    fn drain(input: &[u8], limit: u64) -> (Vec<u8>, Option<DecodeError>, Compression) {
        let mut d = Decoder::new(input, limit).unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0u8; 4096];
        let mut reads = 0usize;
        loop {
            reads += 1;
            assert!(reads < 10_000_000, "the decoder does not terminate");
            match d.read(&mut buf) {
                Ok(0) => return (out, None, d.compression()),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    assert!(out.len() as u64 <= limit);
                    // fused: the next read fails the same way
                    let again = d.read(&mut buf).unwrap_err();
                    assert_eq!(e.kind(), again.kind());
                    let de = DecodeError::try_from_io(e).expect("a DecodeError inside");
                    assert_eq!(de.decoded(), out.len() as u64);
                    return (out, Some(de), d.compression());
                }
            }
        }
    }

    /// JSON-ish lines that do not compress too well.
    fn lines(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            writeln!(
                out,
                "{{\"id\":{i},\"v\":\"{x:016x}\",\"pad\":\"{}\"}}",
                i % 97
            )
            .unwrap();
        }
        out
    }

    #[test]
    fn sniffs_magic_bytes() {
        assert_eq!(Compression::sniff(&gzip(b"x")), Compression::Gzip);
        assert_eq!(Compression::sniff(&zstd(b"x")), Compression::Zstd);
        assert_eq!(
            Compression::sniff(&[0x5e, 0x2a, 0x4d, 0x18]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"{\"a\":1}"), Compression::None);
        assert_eq!(Compression::sniff(&[0x1f]), Compression::None);
        assert_eq!(Compression::sniff(b""), Compression::None);
        assert_eq!(Compression::Gzip.to_string(), "gzip");
    }

    #[test]
    fn round_trips_and_counts_compressed_bytes() {
        let text = lines(5000);
        for (data, c) in [
            (text.clone(), Compression::None),
            (gzip(&text), Compression::Gzip),
            (zstd(&text), Compression::Zstd),
        ] {
            let counter = Arc::new(AtomicU64::new(0));
            let mut d = Decoder::with_counter(&data[..], u64::MAX, counter.clone()).unwrap();
            let mut out = Vec::new();
            d.read_to_end(&mut out).unwrap();
            assert_eq!(out, text, "{c}");
            assert_eq!(d.compression(), c);
            assert_eq!(d.compressed_bytes(), data.len() as u64, "{c}");
            assert_eq!(counter.load(Ordering::Relaxed), data.len() as u64, "{c}");
            assert_eq!(d.decoded_bytes(), text.len() as u64);
        }
    }

    #[test]
    fn empty_input_is_empty_plain() {
        let (out, err, c) = drain(b"", 10);
        assert!(out.is_empty() && err.is_none());
        assert_eq!(c, Compression::None);
        // an empty gzip member and an empty zstd frame decode to nothing
        assert_eq!(drain(&gzip(b""), 10).0, b"");
        assert!(drain(&gzip(b""), 10).1.is_none());
        assert!(drain(&zstd(b""), 10).1.is_none());
    }

    #[test]
    fn concatenated_members_and_frames() {
        let (a, b) = (lines(300), b"tail line\n".to_vec());
        let whole = [a.clone(), b.clone()].concat();
        let gz = [gzip(&a), gzip(b""), gzip(&b)].concat();
        let (out, err, _) = drain(&gz, u64::MAX);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(out, whole);
        let zs = [zstd(&a), zstd::encode_all(&b[..], 19).unwrap()].concat();
        let (out, err, _) = drain(&zs, u64::MAX);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(out, whole);
        // a skippable frame first, then data
        let mut skip = vec![0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3];
        skip.extend(zstd(&a));
        let (out, err, c) = drain(&skip, u64::MAX);
        assert_eq!((c, err.is_none()), (Compression::Zstd, true), "{err:?}");
        assert_eq!(out, a);
    }

    /// Truncation at many cut points: every decoded byte is a prefix of the input, the error
    /// is `Truncated` at an offset within the cut input, and the decoded prefix grows with the
    /// cut.
    fn check_truncation(compressed: &[u8], text: &[u8], c: Compression) {
        let step = (compressed.len() / 300).max(1);
        let mut cuts: Vec<usize> = (1..compressed.len()).step_by(step).collect();
        cuts.extend([
            1,
            2,
            3,
            4,
            9,
            10,
            11,
            compressed.len() - 8,
            compressed.len() - 1,
        ]);
        let mut prev = (0usize, 0usize); // (cut, decoded)
        cuts.sort_unstable();
        cuts.dedup();
        for cut in cuts {
            let (out, err, sniffed) = drain(&compressed[..cut], u64::MAX);
            if cut < 4 && c == Compression::Zstd || cut < 2 {
                // too short to recognise: read as plain bytes
                assert_eq!(sniffed, Compression::None);
                continue;
            }
            assert!(text.starts_with(&out), "{c} cut {cut}: not a prefix");
            let err = err.unwrap_or_else(|| panic!("{c} cut {cut}: no error"));
            assert!(
                matches!(err, DecodeError::Truncated { .. }),
                "{c} cut {cut}: {err}"
            );
            assert_eq!(err.compression(), c);
            // the input was consumed up to (about) the cut before the end was noticed
            assert!(
                err.offset() <= cut as u64 && err.offset() + 16 >= cut as u64,
                "{c} cut {cut}: {err}"
            );
            let msg = err.to_string();
            assert!(msg.contains("offset") && msg.contains(c.name()), "{msg}");
            assert!(out.len() >= prev.1, "{c} cut {cut}: the prefix shrank");
            prev = (cut, out.len());
        }
    }

    #[test]
    fn truncated_gzip_hands_out_the_prefix_then_fails() {
        let text = lines(20_000);
        let gz = gzip(&text);
        check_truncation(&gz, &text, Compression::Gzip);
        // cut in the trailer: everything decoded, then the error
        let (out, err, _) = drain(&gz[..gz.len() - 4], u64::MAX);
        assert_eq!(out, text);
        assert!(matches!(err, Some(DecodeError::Truncated { .. })));
        // a second member cut in its header
        let two = [gz.clone(), gzip(b"x\n")[..5].to_vec()].concat();
        let (out, err, _) = drain(&two, u64::MAX);
        assert_eq!(out, text);
        let err = err.expect("truncated");
        assert!(matches!(err, DecodeError::Truncated { .. }), "{err}");
        assert!(err.offset() >= gz.len() as u64, "{err}");
    }

    #[test]
    fn truncated_zstd_hands_out_the_prefix_then_fails() {
        let text = lines(20_000);
        let zs = zstd(&text);
        check_truncation(&zs, &text, Compression::Zstd);
        // a multi-frame file cut inside its second frame keeps the whole first frame
        let a = lines(1000);
        let two = [zstd(&a), zstd(&text)].concat();
        let (out, err, _) = drain(&two[..two.len() - 100], u64::MAX);
        assert!(out.starts_with(&a) && text.starts_with(&out[a.len()..]));
        assert!(matches!(err, Some(DecodeError::Truncated { .. })));
    }

    #[test]
    fn flipped_bytes_fail_cleanly() {
        let text = lines(3000);
        for (data, c) in [
            (gzip(&text), Compression::Gzip),
            (zstd(&text), Compression::Zstd),
        ] {
            for at in (4..data.len())
                .step_by(61)
                .chain([data.len() - 1, data.len() - 5])
            {
                for bit in [0x01u8, 0x80] {
                    let mut bad = data.clone();
                    bad[at] ^= bit;
                    let (out, err, _) = drain(&bad, 1 << 26);
                    // a flip may leave valid data (a literal changed): then the output
                    // differs or the checksum fails; never a panic or a hang
                    if let Some(e) = err {
                        assert!(
                            matches!(
                                e,
                                DecodeError::Corrupt { .. } | DecodeError::Truncated { .. }
                            ),
                            "{c} flip at {at}: {e}"
                        );
                        assert!(e.offset() <= bad.len() as u64);
                    } else {
                        assert!(out.len() <= 1 << 26);
                    }
                }
            }
        }
        // garbage after a complete member is corrupt, not silently ignored
        let mut g = gzip(b"a\n");
        g.extend_from_slice(b"garbage after the member\n");
        let (out, err, _) = drain(&g, 100);
        assert_eq!(out, b"a\n");
        assert!(matches!(err, Some(DecodeError::Corrupt { .. })), "{err:?}");
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        let zeros = vec![0u8; 16 << 20];
        for (data, c) in [
            (gzip(&zeros), Compression::Gzip),
            (zstd(&zeros), Compression::Zstd),
        ] {
            assert!(data.len() * 1000 < zeros.len(), "{c}: {} bytes", data.len());
            let limit = 1 << 20;
            let (out, err, _) = drain(&data, limit);
            assert_eq!(out.len() as u64, limit, "{c}");
            let err = err.expect("too large");
            assert!(matches!(err, DecodeError::TooLarge { limit: l, .. } if l == limit));
            assert!(err.to_string().contains("max_decompressed_bytes"), "{err}");
            // exactly at the cap is fine
            let (out, err, _) = drain(&data, zeros.len() as u64);
            assert_eq!((out.len(), err.is_none()), (zeros.len(), true), "{c}");
        }
        // plain input is capped too
        let (out, err, _) = drain(&[b'x'; 100], 10);
        assert_eq!(out.len(), 10);
        assert!(matches!(err, Some(DecodeError::TooLarge { .. })));
    }

    #[test]
    fn reader_errors_are_io_and_travel_through_io_error() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::new(io::ErrorKind::PermissionDenied, "nope"));
                }
                let n = self.0.min(buf.len());
                buf[..n].fill(b'a');
                self.0 -= n;
                Ok(n)
            }
        }
        let mut d = Decoder::new(Failing(10), 100).unwrap();
        let mut out = Vec::new();
        let e = d.read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        let de = DecodeError::from_io(&e).expect("inner DecodeError");
        assert!(matches!(de, DecodeError::Io { .. }), "{de}");
        assert_eq!(de.offset(), 10);
        assert!(matches!(d.error(), Some(DecodeError::Io { .. })));
        assert!(Decoder::new(Failing(0), 1).is_err());
        // other io errors are not DecodeErrors
        assert!(DecodeError::try_from_io(io::Error::other("x")).is_err());
    }
}
