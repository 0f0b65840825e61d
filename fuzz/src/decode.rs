//! Checks of the decompressor ([`Decoder`]).

use std::io::{Read, Write};

use compactor_formats::decode::{Compression, DecodeError, Decoder};

/// Reads `input` through a [`Decoder`] capped at `cap` in reads of `step` bytes. Returns the
/// decoded bytes and the error that ended the read. Asserts that the decoder never hands out
/// more than `cap` bytes, terminates (a bounded number of reads that return no data), and
/// reports every failure as a [`DecodeError`] whose `decoded` is what was handed out and whose
/// offset lies within the input.
pub fn decode_all(input: &[u8], cap: u64, step: usize) -> (Vec<u8>, Option<DecodeError>) {
    let mut d = match Decoder::new(input, cap) {
        Ok(d) => d,
        Err(e) => panic!("reading a slice cannot fail: {e}"),
    };
    let mut out = Vec::new();
    let mut buf = vec![0u8; step.max(1)];
    loop {
        match d.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                assert!(out.len() as u64 <= cap, "decoded {} > cap {cap}", out.len());
            }
            Err(e) => {
                let Some(de) = DecodeError::from_io(&e) else {
                    panic!("a decoder error that is not a DecodeError: {e}");
                };
                assert_eq!(de.decoded(), out.len() as u64, "{de}");
                assert!(de.offset() <= input.len() as u64, "{de}");
                assert_eq!(de.compression(), d.compression());
                if matches!(de, DecodeError::TooLarge { .. }) {
                    assert_eq!(out.len() as u64, cap, "too large before the cap: {de}");
                }
                // Fused: it fails again, the same way.
                let again = d.read(&mut buf).expect_err("a failed decoder fails again");
                assert_eq!(again.kind(), e.kind());
                return (out, DecodeError::try_from_io(e).ok());
            }
        }
    }
    assert_eq!(d.decoded_bytes(), out.len() as u64);
    assert!(d.compressed_bytes() <= input.len() as u64);
    if d.compression() == Compression::None {
        assert_eq!(out, input, "plain input is passed through");
    }
    (out, None)
}

fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    e.write_all(data).expect("writing to a Vec");
    e.finish().expect("writing to a Vec")
}

fn zstd(data: &[u8], level: i32) -> Vec<u8> {
    zstd::encode_all(data, level).expect("compressing into a Vec")
}

/// The decompressor's invariants for fuzzer input `data`, with `ctl` choosing the variations:
///
/// - arbitrary bytes (also as if gzip or zstd: the magic put in front) decode without panic or
///   hang, never past a small cap;
/// - round trip: `data` compressed with gzip (one or two members) and zstd (one or two frames)
///   decodes to `data`, exactly at a cap of `data.len()`, and fails `TooLarge` under it;
/// - truncation: the compressed bytes cut at a point `ctl` chooses decode to a prefix of
///   `data`, then fail (`Truncated` or `Corrupt`), unless the cut leaves a whole stream or too
///   few bytes to recognise it.
pub fn check_decode(ctl: u16, data: &[u8]) {
    let cap = 1 << 16;
    let step = usize::from(ctl % 4093) + 1;
    for magic in [
        &[][..],
        &[0x1f, 0x8b, 8, 0][..],
        &[0x28, 0xb5, 0x2f, 0xfd][..],
    ] {
        let input = [magic, data].concat();
        decode_all(&input, cap, step);
    }

    let split = data.len() * usize::from(ctl >> 8) / 256;
    let (a, b) = data.split_at(split);
    let level = u32::from(ctl % 10);
    let streams = [
        (Compression::Gzip, gzip(data, level)),
        (Compression::Gzip, [gzip(a, level), gzip(b, 1)].concat()),
        (Compression::Zstd, zstd(data, i32::from(ctl % 5) - 1)),
        (Compression::Zstd, [zstd(a, 1), zstd(b, 3)].concat()),
    ];
    for (c, z) in streams {
        let len = data.len() as u64;
        let (out, err) = decode_all(&z, len, step);
        assert!(err.is_none(), "{c} round trip failed: {err:?}");
        assert_eq!(out, data, "{c} round trip differs");
        if len > 0 {
            let (out, err) = decode_all(&z, len - 1, step);
            assert!(
                matches!(err, Some(DecodeError::TooLarge { .. })),
                "{c}: {err:?}"
            );
            assert_eq!(out, &data[..data.len() - 1]);
        }

        let cut = usize::from(ctl) % z.len();
        let short = &z[..cut];
        let (out, err) = decode_all(short, u64::MAX, step);
        let sniffed = Compression::sniff(short);
        if sniffed != c {
            assert_eq!(out, short, "unrecognised prefix passed through");
            continue;
        }
        assert!(
            data.starts_with(&out),
            "{c} cut at {cut}: decoded bytes are not a prefix of the input"
        );
        match err {
            Some(DecodeError::Truncated { .. } | DecodeError::Corrupt { .. }) => {}
            // a cut between members or frames leaves whole streams
            None => assert!(
                out.len() == split || out.is_empty(),
                "{c} cut at {cut}: no error"
            ),
            Some(e) => panic!("{c} cut at {cut}: {e}"),
        }
    }
}
