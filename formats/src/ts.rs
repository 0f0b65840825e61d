//! Timestamp recognition: ISO 8601 / RFC 3339 and the access-log `%t` format.
//!
//! Hand-written because it runs on every string value of every JSON line (a cheap shape check
//! rejects non-timestamps in a few comparisons) and chrono's format-string parser is several
//! times slower. Values are returned as microseconds since the Unix epoch, UTC.
//!
//! Accepted ISO shapes: `YYYY-MM-DD[T| ]HH:MM:SS[.f{1,9}][Z|±HH:MM|±HHMM|±HH]`. Without a zone
//! the time is taken as UTC. A value with non-zero digits beyond microseconds is *not* a
//! timestamp (it would lose precision) and stays a string.
//!
//! A run of ISO timestamps (a log's lines, in order) mostly repeats its date and hour:
//! [`IsoParser`] keeps the last `YYYY-MM-DD?HH` it read and its value, so the next of that
//! hour has only its minutes, seconds, fraction and zone read (1.2% fewer instructions in a
//! rollup-only run of JSON events).

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian), after H. Hinnant.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whether `y` is a leap year (proleptic Gregorian).
pub fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// The civil date (year, month, day) of a day count since 1970-01-01: the inverse of
/// [`days_from_civil`], after H. Hinnant.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        b.iter()
            .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0')),
    )
}

/// Microseconds since the epoch (UTC) of a civil date and time at `offset_s` seconds east of
/// UTC; `None` for an invalid date or time.
#[allow(clippy::too_many_arguments)]
pub fn civil_to_micros(
    y: i64,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    micros: u32,
    offset_s: i64,
) -> Option<i64> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60
    {
        return None;
    }
    // A leap second (:60) is folded into the next second, as most engines do.
    let secs = days_from_civil(y, mo, d) * 86_400
        + i64::from(h) * 3600
        + i64::from(mi) * 60
        + i64::from(s)
        - offset_s;
    secs.checked_mul(1_000_000)?.checked_add(i64::from(micros))
}

/// Parses an ISO 8601 timestamp (see the module docs) to microseconds since the epoch, UTC.
pub fn parse_iso(s: &[u8]) -> Option<i64> {
    parse_iso_tz(s).map(|(t, _)| t)
}

/// [`parse_iso`], also returning the written zone offset in minutes east of UTC when the
/// text has a numeric one (`None` for `Z` or no zone).
pub fn parse_iso_tz(s: &[u8]) -> Option<(i64, Option<i32>)> {
    iso_rest(s, iso_hour(s)?)
}

/// The microseconds (UTC, before the zone) of an ISO timestamp's `YYYY-MM-DD?HH`, its first
/// [`ISO_HOUR_BYTES`] bytes; `None` if they, or the text's length, cannot be a timestamp's.
fn iso_hour(s: &[u8]) -> Option<i64> {
    if s.len() < 19
        || s.len() > 40
        || s[4] != b'-'
        || s[7] != b'-'
        || !(s[10] == b'T' || s[10] == b' ' || s[10] == b't')
    {
        return None;
    }
    let y = i64::from(digits(&s[0..4])?);
    let mo = digits(&s[5..7])?;
    let d = digits(&s[8..10])?;
    let h = digits(&s[11..13])?;
    civil_to_micros(y, mo, d, h, 0, 0, 0, 0)
}

/// Bytes of an ISO timestamp that [`iso_hour`] reads.
const ISO_HOUR_BYTES: usize = 13;

/// [`parse_iso_tz`] after [`iso_hour`]: `hour` is what it gave for `s`.
fn iso_rest(s: &[u8], hour: i64) -> Option<(i64, Option<i32>)> {
    if s.len() < 19 || s.len() > 40 || s[13] != b':' || s[16] != b':' {
        return None;
    }
    let mi = digits(&s[14..16])?;
    let sec = digits(&s[17..19])?;
    // (a leap second, :60, is folded into the next second, as `civil_to_micros` does)
    if mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut micros = 0u32;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        let (keep, beyond) = frac[..n].split_at(n.min(6));
        if beyond.iter().any(|&c| c != b'0') {
            return None; // would lose sub-microsecond precision
        }
        micros = digits(keep)? * 10u32.pow(6 - keep.len() as u32);
        rest = &frac[n..];
    }
    let offset_s = parse_offset(rest)?;
    let secs = i64::from(mi) * 60 + i64::from(sec) - offset_s;
    let t = hour
        .checked_add(secs.checked_mul(1_000_000)?)?
        .checked_add(i64::from(micros))?;
    Some((t, numeric_offset(rest, offset_s)))
}

/// [`parse_iso`] over a run of timestamps, most of which share their date and hour with the
/// one before (a log's lines, in order): it keeps the last `YYYY-MM-DD?HH` it read and what
/// it gave, so that the next timestamp of that hour only has its minutes, seconds, fraction
/// and zone read. Gives exactly what [`parse_iso`] gives.
#[derive(Debug, Default, Clone)]
pub struct IsoParser {
    /// The last hour read, and its microseconds ([`iso_hour`]); `None` before the first.
    last: Option<([u8; ISO_HOUR_BYTES], i64)>,
}

impl IsoParser {
    /// [`parse_iso`] of `s`.
    #[inline]
    pub fn parse(&mut self, s: &[u8]) -> Option<i64> {
        let prefix: &[u8; ISO_HOUR_BYTES] = s.get(..ISO_HOUR_BYTES)?.try_into().ok()?;
        let hour = match self.last {
            Some((p, hour)) if p == *prefix => hour,
            _ => {
                let hour = iso_hour(s)?;
                self.last = Some((*prefix, hour));
                hour
            }
        };
        iso_rest(s, hour).map(|(t, _)| t)
    }
}

fn numeric_offset(zone: &[u8], offset_s: i64) -> Option<i32> {
    matches!(zone.first(), Some(b'+' | b'-')).then_some((offset_s / 60) as i32)
}

/// `Z`, `z`, empty (UTC), `±HH:MM`, `±HHMM` or `±HH`, as seconds east of UTC.
fn parse_offset(z: &[u8]) -> Option<i64> {
    match z {
        b"" | b"Z" | b"z" => Some(0),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest {
                [a, b] => (digits(&[*a, *b])?, 0),
                [a, b, b':', c, d] | [a, b, c, d] => (digits(&[*a, *b])?, digits(&[*c, *d])?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let off = i64::from(h * 3600 + m * 60);
            Some(if *sign == b'-' { -off } else { off })
        }
        _ => None,
    }
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// The month (1-12) of an English three-letter abbreviation, any case.
pub fn month_from_abbr(m: &[u8]) -> Option<u32> {
    MONTHS
        .iter()
        .position(|x| x.eq_ignore_ascii_case(m))
        .map(|i| i as u32 + 1)
}

/// Parses the access-log `%t` format `10/Oct/2000:13:55:36 -0700` (without brackets), with an
/// optional fraction after the seconds, to microseconds since the epoch, UTC.
pub fn parse_clf(s: &[u8]) -> Option<i64> {
    parse_clf_tz(s).map(|(t, _)| t)
}

/// [`parse_clf`], also returning the written zone offset in minutes east of UTC.
pub fn parse_clf_tz(s: &[u8]) -> Option<(i64, Option<i32>)> {
    if s.len() < 20
        || s[2] != b'/'
        || s[6] != b'/'
        || s[11] != b':'
        || s[14] != b':'
        || s[17] != b':'
    {
        return None;
    }
    let d = digits(&s[0..2])?;
    let mo = month_from_abbr(&s[3..6])?;
    let y = i64::from(digits(&s[7..11])?);
    let h = digits(&s[12..14])?;
    let mi = digits(&s[15..17])?;
    let sec = digits(&s[18..20])?;
    let mut rest = &s[20..];
    let mut micros = 0;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 6 {
            return None;
        }
        micros = digits(&frac[..n])? * 10u32.pow(6 - n as u32);
        rest = &frac[n..];
    }
    let (offset_s, zone) = match rest {
        [] => (0, rest),
        [b' ', z @ ..] => (parse_offset(z)?, z),
        _ => return None,
    };
    let t = civil_to_micros(y, mo, d, h, mi, sec, micros, offset_s)?;
    Some((t, numeric_offset(zone, offset_s)))
}

/// Epoch timestamps: an integer of 9 to 11 digits is seconds, 12 to 14 milliseconds, 15 to 17
/// microseconds, 18 or 19 nanoseconds (sub-microsecond digits must be zero, or it is not a
/// timestamp: nothing is silently rounded); `seconds.fraction` (up to 6 fraction digits) is
/// seconds. Covers 1973 to 5138 for seconds, and every unit's like range.
pub fn parse_epoch(s: &[u8]) -> Option<i64> {
    let (int, frac) = match memchr::memchr(b'.', s) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    if int.is_empty() || int.len() > 19 || !int.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v: i64 = std::str::from_utf8(int).ok()?.parse().ok()?;
    match (int.len(), frac) {
        (9..=11, None) => v.checked_mul(1_000_000),
        (9..=11, Some(f)) if (1..=6).contains(&f.len()) && f.iter().all(u8::is_ascii_digit) => {
            let micros = i64::from(digits(f)?) * 10i64.pow(6 - f.len() as u32);
            v.checked_mul(1_000_000)?.checked_add(micros)
        }
        (12..=14, None) => v.checked_mul(1_000),
        (15..=17, None) => Some(v),
        (18..=19, None) if v % 1_000 == 0 => Some(v / 1_000),
        _ => None,
    }
}

/// Epoch timestamps in a stated unit (`s`, `ms`, `us`, `ns`): an integer, possibly negative,
/// or for `s` and `ms` a decimal fraction down to the microsecond. Digits finer than a
/// microsecond must be zero (nothing is silently rounded).
pub fn parse_epoch_unit(s: &[u8], unit: &str) -> Option<i64> {
    let (neg, body) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let (int, frac) = match memchr::memchr(b'.', body) {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, &b""[..]),
    };
    if int.is_empty() || int.len() > 19 || !int.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if !frac.iter().all(u8::is_ascii_digit) || (body.contains(&b'.') && frac.is_empty()) {
        return None;
    }
    let whole: i64 = std::str::from_utf8(int).ok()?.parse().ok()?;
    let scale: i64 = match unit {
        "s" => 1_000_000,
        "ms" => 1_000,
        "us" => 1,
        "ns" => {
            if !frac.is_empty() || whole % 1_000 != 0 {
                return None;
            }
            return Some(if neg { -whole / 1_000 } else { whole / 1_000 });
        }
        _ => return None,
    };
    let frac_digits = scale.ilog10() as usize;
    if frac.len() > frac_digits && frac[frac_digits..].iter().any(|&c| c != b'0') {
        return None;
    }
    let kept = &frac[..frac.len().min(frac_digits)];
    let mut f: i64 = 0;
    for &c in kept {
        f = f * 10 + i64::from(c - b'0');
    }
    f *= 10i64.pow((frac_digits - kept.len()) as u32);
    let v = whole.checked_mul(scale)?.checked_add(f)?;
    Some(if neg { -v } else { v })
}

/// Parses `s` with a chrono `strftime` format: with a zone (`%z`, `%:z`) if the format has
/// one, else as UTC; a format without a time of day gives midnight. Returns microseconds
/// since the epoch, UTC, and the written offset in minutes east of UTC when there is one.
pub fn parse_with_format(s: &str, format: &str) -> Option<(i64, Option<i32>)> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    if let Ok(t) = DateTime::parse_from_str(s, format) {
        return Some((
            t.timestamp_micros(),
            Some(t.offset().local_minus_utc() / 60),
        ));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
        return Some((t.and_utc().timestamp_micros(), None));
    }
    let d = NaiveDate::parse_from_str(s, format).ok()?;
    Some((d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros(), None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chrono_micros(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_micros()
    }

    #[test]
    fn iso_matches_chrono() {
        for s in [
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00.123Z",
            "2026-02-28T23:59:59.999999+02:00",
            "1969-12-31T23:59:59-05:30",
            "2000-02-29T12:00:00.5Z",
            "1900-03-01T00:00:00Z",
        ] {
            assert_eq!(parse_iso(s.as_bytes()), Some(chrono_micros(s)), "{s}");
        }
        assert_eq!(
            parse_iso(b"2026-01-01 00:00:00"),
            Some(chrono_micros("2026-01-01T00:00:00Z"))
        );
        assert_eq!(
            parse_iso(b"2026-01-01T00:00:00+0200"),
            Some(chrono_micros("2026-01-01T00:00:00+02:00"))
        );
        assert_eq!(
            parse_iso(b"2026-01-01T00:00:00.123456000Z"),
            Some(chrono_micros("2026-01-01T00:00:00.123456Z"))
        );
    }

    proptest! {
        /// The hour cache gives what the full parse gives, on runs of timestamps that share
        /// hours, dates only, or nothing, valid or not.
        #[test]
        fn iso_parser_agrees_with_parse_iso(texts in prop::collection::vec(
            (
                prop::sample::select(vec![
                    "2026-01-01T00", "2026-01-01T01", "2026-01-02T00", "2024-02-29 23",
                    "2026-02-29T00", "2026-13-01T00", "2026-01-01T24", "2026-01-01x00", "2026-0",
                    "",
                ]),
                "(:[0-6][0-9]:[0-6][0-9](\\.[0-9]{0,10})?(Z|z|[+-][0-2][0-9](:?[0-6][0-9])?|ZZ)?)?",
            ).prop_map(|(a, b)| format!("{a}{b}")),
            1..40,
        )) {
            let mut p = IsoParser::default();
            for t in &texts {
                prop_assert_eq!(p.parse(t.as_bytes()), parse_iso(t.as_bytes()), "{}", t);
            }
        }
    }

    #[test]
    fn iso_rejects() {
        for s in [
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00.1234567Z",
            "2026-01-01T00:00:00ZZ",
            "2026-01-01",
            "hello world, this is long",
            "2026-01-01T00:00:00+25:00",
            "2026-01-01T00:00:00.Z",
        ] {
            assert_eq!(parse_iso(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn offsets_are_kept() {
        assert_eq!(
            parse_iso_tz(b"2026-01-01T02:00:00+02:00"),
            Some((chrono_micros("2026-01-01T00:00:00Z"), Some(120)))
        );
        assert_eq!(parse_iso_tz(b"2026-01-01T00:00:00Z").unwrap().1, None);
        assert_eq!(
            parse_iso_tz(b"2026-01-01T00:00:00-0530").unwrap().1,
            Some(-330)
        );
        assert_eq!(
            parse_clf_tz(b"10/Oct/2000:13:55:36 -0700"),
            Some((chrono_micros("2000-10-10T13:55:36-07:00"), Some(-420)))
        );
    }

    #[test]
    fn civil_days_round_trip() {
        for d in [-719_468i64, -1, 0, 59, 60, 11_016, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d, "{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn epochs_by_magnitude() {
        let t = chrono_micros("2005-06-03T22:42:50Z");
        assert_eq!(parse_epoch(b"1117838570"), Some(t));
        assert_eq!(parse_epoch(b"1117838570123"), Some(t + 123_000));
        assert_eq!(parse_epoch(b"1117838570123456"), Some(t + 123_456));
        assert_eq!(parse_epoch(b"1117838570123456000"), Some(t + 123_456));
        assert_eq!(parse_epoch(b"1117838570.25"), Some(t + 250_000));
        for bad in [
            "1117838570123456789",
            "12345",
            "",
            "1117838570.",
            "11178x8570",
            "-1117838570",
        ] {
            assert_eq!(parse_epoch(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn epochs_in_a_stated_unit() {
        let t = chrono_micros("2005-06-03T22:42:50Z");
        assert_eq!(parse_epoch_unit(b"1117838570", "s"), Some(t));
        assert_eq!(parse_epoch_unit(b"1117838570.5", "s"), Some(t + 500_000));
        assert_eq!(parse_epoch_unit(b"1117838570123", "ms"), Some(t + 123_000));
        assert_eq!(
            parse_epoch_unit(b"1117838570123.25", "ms"),
            Some(t + 123_250)
        );
        assert_eq!(
            parse_epoch_unit(b"1117838570123456", "us"),
            Some(t + 123_456)
        );
        assert_eq!(
            parse_epoch_unit(b"1117838570123456000", "ns"),
            Some(t + 123_456)
        );
        assert_eq!(parse_epoch_unit(b"-1", "s"), Some(-1_000_000));
        assert_eq!(parse_epoch_unit(b"0", "ms"), Some(0));
        for (bad, unit) in [
            ("1117838570123456789", "ns"),
            ("1.0000001", "s"),
            ("1.", "s"),
            ("1.5", "us"),
            ("x", "s"),
            ("1", "min"),
            ("99999999999999999", "s"),
        ] {
            assert_eq!(parse_epoch_unit(bad.as_bytes(), unit), None, "{bad} {unit}");
        }
    }

    #[test]
    fn user_formats() {
        assert_eq!(
            parse_with_format("2015-10-18 18:01:47,978", "%Y-%m-%d %H:%M:%S,%3f"),
            Some((chrono_micros("2015-10-18T18:01:47.978Z"), None))
        );
        assert_eq!(
            parse_with_format("17/06/09 20:10:40 +0100", "%y/%m/%d %H:%M:%S %z"),
            Some((chrono_micros("2017-06-09T19:10:40Z"), Some(60)))
        );
        assert_eq!(parse_with_format("nope", "%Y"), None);
    }

    #[test]
    fn clf() {
        assert_eq!(
            parse_clf(b"10/Oct/2000:13:55:36 -0700"),
            Some(chrono_micros("2000-10-10T13:55:36-07:00"))
        );
        assert_eq!(
            parse_clf(b"01/Jan/2026:00:00:00 +0000"),
            Some(chrono_micros("2026-01-01T00:00:00Z"))
        );
        assert_eq!(parse_clf(b"32/Jan/2026:00:00:00 +0000"), None);
        assert_eq!(parse_clf(b"01/Foo/2026:00:00:00 +0000"), None);
        assert_eq!(
            parse_clf(b"01/Jan/2026:00:00:00 +00"),
            Some(chrono_micros("2026-01-01T00:00:00Z"))
        );
    }
}
