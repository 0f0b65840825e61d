//! Allocation-free rendering helpers that append to a reused `Vec<u8>`:
//! integers, fixed-point decimals, hex, JSON strings and timestamps.

use std::io;

use chrono::{DateTime, Datelike, Timelike};

/// Smallest supported timestamp: 0000-01-01T00:00:00.000Z.
pub(crate) const MIN_TS_MS: i64 = -62_167_219_200_000;
/// Largest supported timestamp: 9999-12-31T23:59:59.999Z.
pub(crate) const MAX_TS_MS: i64 = 253_402_300_799_999;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `v` in decimal.
#[inline]
pub(crate) fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Appends `v` zero-padded to `width` digits (more digits if `v` needs them).
#[inline]
pub(crate) fn push_padded(buf: &mut Vec<u8>, v: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut i = tmp.len();
    let mut v = v;
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let start = i.min(tmp.len() - width.min(tmp.len()));
    buf.extend_from_slice(&tmp[start..]);
}

/// Appends `scaled / 10^decimals` with exactly `decimals` fractional digits,
/// e.g. `push_fixed(buf, 1234, 3)` writes `1.234`. Renders floats without
/// going through (platform-independent but slow) float formatting.
#[inline]
pub(crate) fn push_fixed(buf: &mut Vec<u8>, scaled: u64, decimals: u32) {
    let div = 10u64.pow(decimals);
    push_u64(buf, scaled / div);
    buf.push(b'.');
    push_padded(buf, scaled % div, decimals as usize);
}

/// Appends the low `digits` nibbles of `v` as lowercase hex, most
/// significant first (fixed width).
#[inline]
pub(crate) fn push_hex(buf: &mut Vec<u8>, v: u64, digits: u32) {
    for i in (0..digits).rev() {
        buf.push(HEX[((v >> (4 * i)) & 0xF) as usize]);
    }
}

/// Appends `v` as lowercase hex without leading zeros (IPv6 groups).
#[inline]
pub(crate) fn push_hex_compact(buf: &mut Vec<u8>, v: u64) {
    let digits = (64 - v.leading_zeros()).div_ceil(4).max(1);
    push_hex(buf, v, digits);
}

/// Appends `s` as a quoted JSON string, escaping `"`, `\` and control
/// characters (`\n`, `\r`, `\t`, `\b`, `\f`, otherwise `\u00XX`).
/// Non-ASCII text is valid UTF-8 already and is copied verbatim.
pub(crate) fn push_json_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    let bytes = s.as_bytes();
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0C => b"\\f",
            0x00..=0x1F => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[run_start..i]);
        run_start = i + 1;
        if escape.is_empty() {
            buf.extend_from_slice(b"\\u00");
            push_hex(buf, u64::from(b), 2);
        } else {
            buf.extend_from_slice(escape);
        }
    }
    buf.extend_from_slice(&bytes[run_start..]);
    buf.push(b'"');
}

fn out_of_range(ts_ms: i64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("timestamp {ts_ms} ms is outside the supported range (years 0000..=9999)"),
    )
}

/// Calendar fields of a wall-clock second.
struct Civil {
    year: u64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

/// Breaks a unix second (already shifted by any UTC offset) into calendar
/// fields using chrono.
fn civil(wall_sec: i64) -> Option<Civil> {
    let dt = DateTime::from_timestamp(wall_sec, 0)?;
    let year = u64::try_from(dt.year()).ok().filter(|&y| y <= 9999)?;
    Some(Civil {
        year,
        month: dt.month(),
        day: dt.day(),
        hour: dt.hour(),
        minute: dt.minute(),
        second: dt.second(),
    })
}

/// Renders `YYYY-MM-DDTHH:MM:SS.mmmZ`, caching the per-second prefix (most
/// consecutive events share a second).
pub(crate) struct Rfc3339Cache {
    sec: Option<i64>,
    prefix: Vec<u8>,
}

impl Rfc3339Cache {
    pub(crate) fn new() -> Self {
        Self {
            sec: None,
            prefix: Vec::with_capacity(20),
        }
    }

    /// Appends the RFC 3339 UTC rendering of `ts_ms` (no quotes).
    pub(crate) fn push(&mut self, buf: &mut Vec<u8>, ts_ms: i64) -> io::Result<()> {
        let sec = ts_ms.div_euclid(1000);
        if self.sec != Some(sec) {
            let c = civil(sec).ok_or_else(|| out_of_range(ts_ms))?;
            let p = &mut self.prefix;
            p.clear();
            push_padded(p, c.year, 4);
            p.push(b'-');
            push_padded(p, u64::from(c.month), 2);
            p.push(b'-');
            push_padded(p, u64::from(c.day), 2);
            p.push(b'T');
            push_padded(p, u64::from(c.hour), 2);
            p.push(b':');
            push_padded(p, u64::from(c.minute), 2);
            p.push(b':');
            push_padded(p, u64::from(c.second), 2);
            self.sec = Some(sec);
        }
        buf.extend_from_slice(&self.prefix);
        buf.push(b'.');
        push_padded(buf, ts_ms.rem_euclid(1000) as u64, 3);
        buf.push(b'Z');
        Ok(())
    }
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Renders the nginx `$time_local` form `dd/Mon/yyyy:HH:MM:SS +hhmm`,
/// caching the last (second, offset) pair.
pub(crate) struct ClfCache {
    key: Option<(i64, i32)>,
    text: Vec<u8>,
}

impl ClfCache {
    pub(crate) fn new() -> Self {
        Self {
            key: None,
            text: Vec::with_capacity(26),
        }
    }

    /// Appends the rendering of instant `ts_ms` in a zone `offset_min`
    /// minutes east of UTC (the same instant, only the wall clock moves).
    pub(crate) fn push(
        &mut self,
        buf: &mut Vec<u8>,
        ts_ms: i64,
        offset_min: i32,
    ) -> io::Result<()> {
        let sec = ts_ms.div_euclid(1000);
        if self.key != Some((sec, offset_min)) {
            let c = civil(sec + i64::from(offset_min) * 60).ok_or_else(|| out_of_range(ts_ms))?;
            let t = &mut self.text;
            t.clear();
            push_padded(t, u64::from(c.day), 2);
            t.push(b'/');
            t.extend_from_slice(MONTHS[c.month as usize - 1]);
            t.push(b'/');
            push_padded(t, c.year, 4);
            t.push(b':');
            push_padded(t, u64::from(c.hour), 2);
            t.push(b':');
            push_padded(t, u64::from(c.minute), 2);
            t.push(b':');
            push_padded(t, u64::from(c.second), 2);
            t.push(b' ');
            t.push(if offset_min < 0 { b'-' } else { b'+' });
            let abs = u64::from(offset_min.unsigned_abs());
            push_padded(t, abs / 60, 2);
            push_padded(t, abs % 60, 2);
            self.key = Some((sec, offset_min));
        }
        buf.extend_from_slice(&self.text);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut buf = Vec::new();
        f(&mut buf);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn numbers() {
        assert_eq!(s(|b| push_u64(b, 0)), "0");
        assert_eq!(s(|b| push_u64(b, u64::MAX)), u64::MAX.to_string());
        assert_eq!(s(|b| push_padded(b, 7, 3)), "007");
        assert_eq!(s(|b| push_padded(b, 12345, 3)), "12345");
        assert_eq!(s(|b| push_padded(b, 0, 2)), "00");
        assert_eq!(s(|b| push_fixed(b, 1234, 3)), "1.234");
        assert_eq!(s(|b| push_fixed(b, 5, 3)), "0.005");
        assert_eq!(s(|b| push_fixed(b, 100, 2)), "1.00");
        assert_eq!(s(|b| push_hex(b, 0xAB, 4)), "00ab");
        assert_eq!(s(|b| push_hex(b, u64::MAX, 16)), "ffffffffffffffff");
        assert_eq!(s(|b| push_hex_compact(b, 0)), "0");
        assert_eq!(s(|b| push_hex_compact(b, 0x0db8)), "db8");
    }

    #[test]
    fn json_escaping() {
        assert_eq!(s(|b| push_json_str(b, "plain")), "\"plain\"");
        assert_eq!(
            s(|b| push_json_str(b, "a\"b\\c\nd\te\u{1}f\u{8}\u{c}\r")),
            r#""a\"b\\c\nd\te\u0001f\b\f\r""#
        );
        assert_eq!(
            s(|b| push_json_str(b, "São Paulo 東京")),
            "\"São Paulo 東京\""
        );
        assert_eq!(s(|b| push_json_str(b, "\u{1f}")), r#""\u001f""#);
    }

    #[test]
    fn timestamps() {
        let mut c = Rfc3339Cache::new();
        let start = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        assert_eq!(
            s(|b| c.push(b, start + 123).unwrap()),
            "2026-01-01T00:00:00.123Z"
        );
        assert_eq!(
            s(|b| c.push(b, start - 1).unwrap()),
            "2025-12-31T23:59:59.999Z"
        );
        assert_eq!(s(|b| c.push(b, 0).unwrap()), "1970-01-01T00:00:00.000Z");
        assert!(c.push(&mut Vec::new(), MAX_TS_MS + 1).is_err());
        assert!(c.push(&mut Vec::new(), MAX_TS_MS).is_ok());
        assert!(c.push(&mut Vec::new(), MIN_TS_MS).is_ok());

        let mut l = ClfCache::new();
        assert_eq!(
            s(|b| l.push(b, start + 999, 0).unwrap()),
            "01/Jan/2026:00:00:00 +0000"
        );
        assert_eq!(
            s(|b| l.push(b, start, 120).unwrap()),
            "01/Jan/2026:02:00:00 +0200"
        );
        assert_eq!(
            s(|b| l.push(b, start, -300).unwrap()),
            "31/Dec/2025:19:00:00 -0500"
        );
        assert_eq!(
            s(|b| l.push(b, start, 330).unwrap()),
            "01/Jan/2026:05:30:00 +0530"
        );
    }
}
