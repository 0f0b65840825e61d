//! Syslog: RFC 3164 (BSD, with or without PRI) and RFC 5424, with or without RFC 6587
//! octet-counting, one message per line.
//!
//! # Why
//! `/var/log/messages`, `auth.log` and most appliances write BSD syslog; rsyslog and journald
//! forwarders, Heroku logplex and cloud collectors send RFC 5424. A file may even mix them
//! (a relay that rewrites some messages), so one parser takes both, line by line, and tells
//! them apart from the first bytes. The parser is hand-written (byte scanning and `memchr`, no
//! regex, no allocation per line unless a structured-data value holds escapes): it runs on
//! every line, and most of a line's cost should be the row builder's, not the parser's.
//!
//! # Algorithm
//! 1. The line must be UTF-8 (else `invalid UTF-8 at byte N`).
//! 2. Octet counting (RFC 6587): a line starting `NNN <` is a frame of `NNN` bytes. The line
//!    splitter already cut the frame at `\n`, so the count is only checked: it may equal the
//!    rest of the line; be smaller when only whitespace follows the frame; or be larger by
//!    one or two bytes, a sender that counted the `\n` or `\r\n` the splitter removed (the
//!    Heroku logplex sample in the corpus claims 122 bytes for 120). Anything else is
//!    rejected (`octet count N does not match frame length M`): several frames on one line, or
//!    a frame cut by a newline inside its message.
//! 3. `<PRI>`: one to three digits, at most 191 (facility 23, severity 7). Optional for BSD.
//! 4. A `VERSION` (a non-zero number) and a space after `<PRI>` mean RFC 5424:
//!    `TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`, single-space
//!    separated, `-` for a missing value (NILVALUE). Structured data is `-` or one or more
//!    `[SD-ID param="value" ...]` elements; values escape `"`, `\` and `]` with `\`.
//!    A UTF-8 BOM at the start of MSG is dropped. Heroku logplex leaves STRUCTURED-DATA out
//!    (`<190>1 ts host app web.1 - msg`): when the field after MSGID is neither `-` nor starts
//!    with `[`, there is no structured data and MSG starts there. A field that starts with
//!    `[` must be valid structured data.
//! 5. Otherwise RFC 3164: a BSD timestamp `Mmm dd HH:MM:SS` (day space-padded or not,
//!    optionally `.ffffff`, optionally a year `Mmm dd yyyy HH:MM:SS`) or an ISO 8601 one
//!    (rsyslog's high-precision format), then `HOST`, then `TAG[PID]: ` or `TAG: `, then the
//!    message. The host is absent when the first word already is a tag (`su: ...`, the
//!    `/dev/log` shape). A line whose word after the host is not a tag ending in `:` (or
//!    `[pid]:`) followed by a space or the end of the line has no `app`: the whole rest is the
//!    message (`syslogd 1.4.1: restart.`).
//!
//! ```text
//! <34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick
//!  └pri               └host     └app     └message
//!     └ts                          └pid
//!
//! 98 <165>1 2003-10-11T22:14:15.003Z host evntslog - ID47 [ex@32473 iut="3"] BOMmsg
//! └octets   └ts                      └host           └msgid                  └dropped
//!     └pri                                └app            └sd, sd.ex@32473.iut
//!         └version                                 └procid (null)               └message
//! ```
//!
//! # The year of BSD timestamps
//! `Mmm dd HH:MM:SS` has no year. It is taken from [`crate::ParseOptions::reference_micros`]
//! (a UTC instant; the caller passes the file's modification time): the reference's year,
//! or the year before for a month more than one month after the reference's month (December
//! lines read in January). February 29 in a year that has none goes back to the latest leap
//! year before it. Without a reference the year is 1970 (1968 for February 29): output must
//! never depend on the clock, and the caller always passes one. BSD and zone-less ISO
//! timestamps are local wall-clock times of an unknown zone; they are stored as if UTC.
//!
//! # Columns
//! | column | type | from |
//! |---|---|---|
//! | `pri` | int | `<PRI>`, when the line has one |
//! | `facility` | int | `PRI / 8`, when the line has a PRI |
//! | `severity` | int | `PRI % 8`, when the line has a PRI |
//! | `version` | int | RFC 5424 `VERSION` |
//! | `ts` | timestamp (UTC, µs) | the timestamp; null for a 5424 `-` |
//! | `ts_offset` | int | minutes east of UTC, only when the timestamp has a numeric offset (`Z` and zone-less give null) |
//! | `host` | string | `HOSTNAME`; null for `-` or a BSD line without host |
//! | `app` | string | 3164 `TAG`, 5424 `APP-NAME`; null for `-` or a BSD line without tag |
//! | `pid` | int | 3164 `[PID]` or 5424 `PROCID` when it is a decimal number |
//! | `procid` | string | the same when it is not a number (`web.1`, `heroku-redis`) |
//! | `msgid` | string | RFC 5424 `MSGID`; null for `-` |
//! | `sd` | string | RFC 5424 structured data, verbatim (escapes kept); null for `-` |
//! | `sd.<SD-ID>.<PARAM>` | string | each structured-data parameter, unescaped |
//! | `message` | string | the message, verbatim; null when empty or absent |
//!
//! Column names are sanitised by the builder (`sd.exampleSDID@32473.iut` is kept as is). A
//! parameter repeated in a line (RFC 5424 allows `[origin ip="a" ip="b"]`) keeps its first
//! value in its `sd.` column (`sd` has them all), and at most [`MAX_SD_PARAMS`] parameters of
//! a line are flattened. Column order is the order of first appearance.
//!
//! # Rejected lines
//! Invalid UTF-8; a line that starts with neither `<PRI>`, a BSD or ISO timestamp, nor an
//! octet count (`not syslog: ...`); a PRI above 191 or not 1-3 digits; an invalid date or
//! time; a truncated RFC 5424 header or structured data (`missing MSGID`, `unterminated
//! SD-PARAM value`...); a BSD line with nothing after its timestamp; a bad octet count.

use crate::builder::RowsBuilder;
use crate::{ts, LineParser, ParseOptions};

/// At most this many structured-data parameters of one line get their own column.
pub const MAX_SD_PARAMS: usize = 256;

/// Longest 3164 TAG recognised (RFC 3164 says 32; real tags such as
/// `NetworkManager-dispatcher` stay far below this).
const MAX_TAG: usize = 64;

/// Longest `[PID]` content recognised after a tag.
const MAX_PID: usize = 32;

/// Longest octet count accepted (digits): a frame is at most a line, far below 10^9 bytes.
const MAX_OCTET_DIGITS: usize = 9;

const NOT_SYSLOG: &str = "not syslog: expected <PRI>, a BSD timestamp or an RFC 5424 header";

/// UTF-8 byte order mark, allowed before an RFC 5424 MSG.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A structured-data parameter found in the open line (spans in the line).
#[derive(Clone, Copy)]
struct Param {
    id: (usize, usize),
    name: (usize, usize),
    value: (usize, usize),
    escaped: bool,
}

/// The syslog parser. Keeps only reusable buffers between lines.
pub struct SyslogParser {
    /// Year and month of the reference instant; `None`: year 1970, no rollback.
    reference: Option<(i64, u32)>,
    /// Structured-data parameters of the open line.
    params: Vec<Param>,
    /// Column name being built (`sd.<id>.<param>`).
    name: String,
    /// Unescaped parameter value.
    value: String,
}

impl SyslogParser {
    /// A parser for these options (it uses [`ParseOptions::reference_micros`]).
    pub fn new(opts: &ParseOptions) -> Self {
        SyslogParser {
            reference: opts.reference_micros.map(|t| {
                let (y, m, _) = ts::civil_from_days(t.div_euclid(86_400_000_000));
                (y, m)
            }),
            params: Vec::new(),
            name: String::new(),
            value: String::new(),
        }
    }

    /// The year of a BSD timestamp in `month` (see the module docs).
    fn year_for(&self, month: u32, day: u32) -> i64 {
        let mut y = match self.reference {
            Some((y, m)) if month > m + 1 => y - 1,
            Some((y, _)) => y,
            None => 1970,
        };
        if month == 2 && day == 29 {
            // At most 7 steps (1897 to 1904: no leap year in 1900).
            for _ in 0..8 {
                if ts::is_leap(y) {
                    break;
                }
                y -= 1;
            }
        }
        y
    }
}

impl LineParser for SyslogParser {
    fn parse_line(
        &mut self,
        line: &[u8],
        base: usize,
        rows: &mut RowsBuilder,
    ) -> Result<(), String> {
        let s = crate::utf8(line)?;
        let (s, mut pos) = strip_octet_count(s)?;
        let b = s.as_bytes();
        let mut pri = None;
        if b.get(pos) == Some(&b'<') {
            let n = b[pos + 1..]
                .iter()
                .take(4)
                .take_while(|c| c.is_ascii_digit())
                .count();
            if n == 0 || n > 3 || b.get(pos + 1 + n) != Some(&b'>') {
                return Err("invalid PRI: expected <0> to <191>".into());
            }
            let v = number(&b[pos + 1..pos + 1 + n]);
            if v > 191 {
                return Err(format!("PRI {v} out of range 0..=191"));
            }
            let (off, len) = (base + pos + 1, n);
            rows.push_int("pri", v, off, len);
            rows.push_int("facility", v / 8, off, len);
            rows.push_int("severity", v % 8, off, len);
            pri = Some(v);
            pos += n + 2;
        }
        // RFC 5424: a non-zero VERSION of up to 3 digits and a space after the PRI.
        if pri.is_some() && matches!(b.get(pos), Some(b'1'..=b'9')) {
            let n = b[pos..]
                .iter()
                .take(4)
                .take_while(|c| c.is_ascii_digit())
                .count();
            if n <= 3 && b.get(pos + n) == Some(&b' ') {
                rows.push_int("version", number(&b[pos..pos + n]), base + pos, n);
                return self.rfc5424(s, pos + n + 1, base, rows);
            }
        }
        self.rfc3164(s, pos, pri.is_some(), base, rows)
    }
}

impl SyslogParser {
    /// An RFC 5424 line from just after `VERSION SP`.
    fn rfc5424(
        &mut self,
        s: &str,
        mut pos: usize,
        base: usize,
        rows: &mut RowsBuilder,
    ) -> Result<(), String> {
        let b = s.as_bytes();
        let (t0, t1) = header_field(b, &mut pos, "TIMESTAMP")?;
        let stamp = &b[t0..t1];
        if stamp == b"-" {
            rows.push_null("ts");
        } else {
            let (micros, offset) = ts::parse_iso_tz(stamp)
                .ok_or_else(|| format!("invalid RFC 5424 timestamp {:?}", shown(stamp)))?;
            rows.push_ts("ts", micros, base + t0, t1 - t0);
            push_offset(rows, offset, stamp, base + t0);
        }
        for (name, what) in [("host", "HOSTNAME"), ("app", "APP-NAME")] {
            let (a, e) = header_field(b, &mut pos, what)?;
            nullable(rows, name, b, base, a, e);
        }
        let (a, e) = header_field(b, &mut pos, "PROCID")?;
        if &b[a..e] != b"-" {
            push_pid(rows, b, base, a, e);
        }
        let (a, e) = header_field(b, &mut pos, "MSGID")?;
        nullable(rows, "msgid", b, base, a, e);
        if pos >= b.len() {
            return Err("truncated RFC 5424 header: missing STRUCTURED-DATA".into());
        }
        let sd_start = pos;
        if b[pos] == b'[' {
            pos = self.structured_data(b, pos)?;
            rows.push_raw_str("sd", base + sd_start, pos - sd_start);
            self.push_params(s, base, rows);
        } else {
            rows.push_null("sd");
            if b[pos] == b'-' && matches!(b.get(pos + 1), None | Some(b' ')) {
                pos += 1;
            } else {
                // Heroku logplex omits STRUCTURED-DATA: MSG follows MSGID.
                push_message(rows, base, pos, b.len());
                return Ok(());
            }
        }
        match b.get(pos) {
            None => rows.push_null("message"),
            Some(b' ') => {
                let mut m = pos + 1;
                if b[m..].starts_with(BOM) {
                    m += BOM.len();
                }
                push_message(rows, base, m, b.len());
            }
            Some(_) => {
                return Err(format!(
                    "invalid structured data at byte {pos}: expected a space before MSG"
                ))
            }
        }
        Ok(())
    }

    /// Parses the SD-ELEMENTs starting at `b[pos] == b'['` into `self.params`; returns the
    /// position just after the last `]`.
    fn structured_data(&mut self, b: &[u8], mut pos: usize) -> Result<usize, String> {
        self.params.clear();
        let bad = |pos: usize, what: &str| format!("invalid structured data at byte {pos}: {what}");
        while b.get(pos) == Some(&b'[') {
            pos += 1;
            let id0 = pos;
            pos += name_len(&b[pos..]);
            if pos == id0 {
                return Err(bad(pos, "empty SD-ID"));
            }
            let id = (id0, pos);
            loop {
                match b.get(pos) {
                    Some(b']') => {
                        pos += 1;
                        break;
                    }
                    Some(b' ') => pos += 1,
                    None => return Err(bad(pos, "unterminated SD-ELEMENT")),
                    Some(_) => return Err(bad(pos, "expected ' ' or ']'")),
                }
                let n0 = pos;
                pos += name_len(&b[pos..]);
                if pos == n0 {
                    return Err(bad(pos, "empty PARAM-NAME"));
                }
                if b.get(pos) != Some(&b'=') || b.get(pos + 1) != Some(&b'"') {
                    return Err(bad(pos, "expected =\" after PARAM-NAME"));
                }
                let name = (n0, pos);
                pos += 2;
                let v0 = pos;
                let mut escaped = false;
                loop {
                    match memchr::memchr2(b'"', b'\\', &b[pos..]) {
                        None => return Err(bad(v0, "unterminated PARAM-VALUE")),
                        Some(i) if b[pos + i] == b'"' => {
                            pos += i;
                            break;
                        }
                        Some(i) => {
                            escaped = true;
                            pos += i + 2; // the backslash and the byte it escapes
                            if pos > b.len() {
                                return Err(bad(v0, "unterminated PARAM-VALUE"));
                            }
                        }
                    }
                }
                self.params.push(Param {
                    id,
                    name,
                    value: (v0, pos),
                    escaped,
                });
                pos += 1; // the closing quote
            }
        }
        Ok(pos)
    }

    /// Pushes the parameters found by [`Self::structured_data`] as `sd.<id>.<name>` columns.
    fn push_params(&mut self, s: &str, base: usize, rows: &mut RowsBuilder) {
        let b = s.as_bytes();
        let n = self.params.len().min(MAX_SD_PARAMS);
        for k in 0..n {
            let p = self.params[k];
            // The builder folds names (ASCII case, invalid characters): a repeat would reject
            // the line as a duplicate field, so only the first of equal names is kept.
            // (Compared whole: `[a.b c=..]` and `[a b.c=..]` are both `sd.a.b.c`.)
            let joined = |x: &Param| {
                b[x.id.0..x.id.1]
                    .iter()
                    .chain(b".")
                    .chain(&b[x.name.0..x.name.1])
                    .copied()
            };
            let repeated = self.params[..k].iter().any(|q| {
                (q.id.1 - q.id.0 + q.name.1 - q.name.0 == p.id.1 - p.id.0 + p.name.1 - p.name.0)
                    && joined(q)
                        .zip(joined(&p))
                        .all(|(x, y)| fold_name(x) == fold_name(y))
            });
            if repeated {
                continue;
            }
            self.name.clear();
            self.name.push_str("sd.");
            self.name.push_str(sub(s, p.id.0, p.id.1));
            self.name.push('.');
            self.name.push_str(sub(s, p.name.0, p.name.1));
            let raw = sub(s, p.value.0, p.value.1);
            if p.escaped {
                unescape_sd(raw, &mut self.value);
                rows.push_owned_str(&self.name, &self.value);
            } else {
                rows.push_str(&self.name, raw, base + p.value.0);
            }
        }
    }

    /// An RFC 3164 line from just after the PRI (or the start).
    fn rfc3164(
        &mut self,
        s: &str,
        pos: usize,
        has_pri: bool,
        base: usize,
        rows: &mut RowsBuilder,
    ) -> Result<(), String> {
        let b = s.as_bytes();
        let mut pos = match b.get(pos) {
            Some(c) if c.is_ascii_alphabetic() => match bsd_timestamp(&b[pos..]) {
                Some(t) => {
                    let year = t.year.unwrap_or_else(|| self.year_for(t.month, t.day));
                    let micros = ts::civil_to_micros(
                        year, t.month, t.day, t.hour, t.minute, t.second, t.micros, 0,
                    )
                    .ok_or_else(|| {
                        format!("invalid date or time {:?}", shown(&b[pos..pos + t.len]))
                    })?;
                    rows.push_ts("ts", micros, base + pos, t.len);
                    pos + t.len
                }
                None if has_pri => {
                    return Err("expected a BSD or ISO 8601 timestamp after <PRI>".into())
                }
                None => return Err(NOT_SYSLOG.into()),
            },
            Some(c) if c.is_ascii_digit() => {
                let end = memchr::memchr(b' ', &b[pos..]).map_or(b.len(), |i| pos + i);
                let stamp = &b[pos..end];
                match ts::parse_iso_tz(stamp) {
                    Some((micros, offset)) => {
                        rows.push_ts("ts", micros, base + pos, end - pos);
                        push_offset(rows, offset, stamp, base + pos);
                        end
                    }
                    None if has_pri || looks_iso(stamp) => {
                        return Err(format!("invalid timestamp {:?}", shown(stamp)))
                    }
                    None => return Err(NOT_SYSLOG.into()),
                }
            }
            _ if has_pri => return Err("expected a BSD or ISO 8601 timestamp after <PRI>".into()),
            _ => return Err(NOT_SYSLOG.into()),
        };
        if b.get(pos) != Some(&b' ') {
            return Err(if pos >= b.len() {
                "truncated: nothing after the timestamp".to_string()
            } else {
                format!("expected a space after the timestamp at byte {pos}")
            });
        }
        pos = skip_spaces(b, pos);
        if pos >= b.len() {
            return Err("truncated: nothing after the timestamp".into());
        }
        // A tag right after the timestamp: no host (the local `/dev/log` shape).
        let tag = match tag(b, pos) {
            Some(t) => Some(t),
            None => {
                let end = memchr::memchr(b' ', &b[pos..]).map_or(b.len(), |i| pos + i);
                rows.push_raw_str("host", base + pos, end - pos);
                pos = skip_spaces(b, end);
                tag(b, pos)
            }
        };
        if let Some(t) = tag {
            rows.push_raw_str("app", base + t.app.0, t.app.1 - t.app.0);
            if let Some((a, e)) = t.pid {
                push_pid(rows, b, base, a, e);
            }
            pos = t.message;
        }
        push_message(rows, base, pos, b.len());
        Ok(())
    }
}

/// Checks and removes an RFC 6587 octet count (see the module docs). Returns the frame (the
/// line without trailing whitespace beyond the count) and where the syslog message starts.
fn strip_octet_count(s: &str) -> Result<(&str, usize), String> {
    let b = s.as_bytes();
    let n = b
        .iter()
        .take(MAX_OCTET_DIGITS + 1)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if n == 0 || n > MAX_OCTET_DIGITS || b.get(n) != Some(&b' ') || b.get(n + 1) != Some(&b'<') {
        return Ok((s, 0));
    }
    let count = number(&b[..n]) as usize;
    let start = n + 1;
    let rest = b.len() - start;
    let fits = if count <= rest {
        b[start + count..].iter().all(u8::is_ascii_whitespace)
    } else {
        count - rest <= 2
    };
    if !fits {
        return Err(format!(
            "octet count {count} does not match frame length {rest}"
        ));
    }
    let end = start + count.min(rest);
    // `end` is the line's end or followed by ASCII whitespace: a character boundary.
    Ok((s.get(..end).unwrap_or(s), start))
}

/// A BSD timestamp's parts and its length in bytes.
struct Bsd {
    len: usize,
    year: Option<i64>,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micros: u32,
}

/// `Mmm dd HH:MM:SS`, `Mmm  d HH:MM:SS`, `Mmm d HH:MM:SS`, with an optional `.f{1,6}` and an
/// optional year before the time (`Mmm dd yyyy HH:MM:SS`). It must end the line or be
/// followed by a space. Ranges are checked later, by [`ts::civil_to_micros`].
fn bsd_timestamp(b: &[u8]) -> Option<Bsd> {
    let month = ts::month_from_abbr(b.get(..3)?)?;
    if b.get(3) != Some(&b' ') {
        return None;
    }
    let mut i = 4;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let nd = b[i.min(b.len())..]
        .iter()
        .take(3)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if nd == 0 || nd > 2 || b.get(i + nd) != Some(&b' ') {
        return None;
    }
    let day = number(&b[i..i + nd]) as u32;
    i += nd + 1;
    let mut year = None;
    if b.len() >= i + 5 && b[i..i + 4].iter().all(u8::is_ascii_digit) && b[i + 4] == b' ' {
        year = Some(number(&b[i..i + 4]));
        i += 5;
    }
    let t = b.get(i..i + 8)?;
    if t[2] != b':' || t[5] != b':' {
        return None;
    }
    let two = |x: &[u8]| -> Option<u32> {
        (x[0].is_ascii_digit() && x[1].is_ascii_digit())
            .then(|| u32::from(x[0] - b'0') * 10 + u32::from(x[1] - b'0'))
    };
    let (hour, minute, second) = (two(&t[0..2])?, two(&t[3..5])?, two(&t[6..8])?);
    i += 8;
    let mut micros = 0;
    if b.get(i) == Some(&b'.') {
        let nf = b[i + 1..]
            .iter()
            .take(7)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if nf == 0 || nf > 6 {
            return None;
        }
        micros = number(&b[i + 1..i + 1 + nf]) as u32 * 10u32.pow(6 - nf as u32);
        i += 1 + nf;
    }
    if i < b.len() && b[i] != b' ' {
        return None;
    }
    Some(Bsd {
        len: i,
        year,
        month,
        day,
        hour,
        minute,
        second,
        micros,
    })
}

/// A 3164 tag: `app[pid]:` or `app:`, followed by a space or the end of the line.
struct Tag {
    app: (usize, usize),
    pid: Option<(usize, usize)>,
    /// Where the message starts (after the colon and one space).
    message: usize,
}

fn tag(b: &[u8], from: usize) -> Option<Tag> {
    let max = (from + MAX_TAG).min(b.len());
    let mut i = from;
    while i < max && !matches!(b[i], b' ' | b':' | b'[') {
        i += 1;
    }
    if i == from || i >= b.len() {
        return None;
    }
    let after_colon = |c: usize| -> Option<usize> {
        match b.get(c + 1) {
            None => Some(c + 1),
            Some(b' ') => Some(c + 2),
            Some(_) => None,
        }
    };
    match b[i] {
        b':' => Some(Tag {
            app: (from, i),
            pid: None,
            message: after_colon(i)?,
        }),
        b'[' => {
            let p0 = i + 1;
            let max = (p0 + MAX_PID).min(b.len());
            let close = (p0..max).find(|&j| matches!(b[j], b']' | b' '))?;
            if b[close] != b']' || close == p0 || b.get(close + 1) != Some(&b':') {
                return None;
            }
            Some(Tag {
                app: (from, i),
                pid: Some((p0, close)),
                message: after_colon(close + 1)?,
            })
        }
        _ => None,
    }
}

/// The next single-space-separated RFC 5424 header field; `pos` moves past its space.
fn header_field(b: &[u8], pos: &mut usize, what: &str) -> Result<(usize, usize), String> {
    let start = *pos;
    let end = memchr::memchr(b' ', &b[start.min(b.len())..]).map_or(b.len(), |i| start + i);
    if end == start || end >= b.len() {
        return Err(format!("truncated RFC 5424 header: missing {what}"));
    }
    *pos = end + 1;
    Ok((start, end))
}

/// Length of an SD-NAME at the start of `b`: up to `=`, space, `]` or `"`.
fn name_len(b: &[u8]) -> usize {
    b.iter()
        .position(|c| matches!(c, b'=' | b' ' | b']' | b'"'))
        .unwrap_or(b.len())
}

/// Pushes `b[a..e]` as `pid` when it is a decimal number that fits, else as `procid`.
fn push_pid(rows: &mut RowsBuilder, b: &[u8], base: usize, a: usize, e: usize) {
    let text = &b[a..e];
    if !text.is_empty() && text.len() <= 18 && text.iter().all(u8::is_ascii_digit) {
        rows.push_int("pid", number(text), base + a, e - a);
    } else {
        rows.push_raw_str("procid", base + a, e - a);
    }
}

/// `b[a..e]`, or null for the NILVALUE `-`.
fn nullable(rows: &mut RowsBuilder, name: &str, b: &[u8], base: usize, a: usize, e: usize) {
    if &b[a..e] == b"-" {
        rows.push_null(name);
    } else {
        rows.push_raw_str(name, base + a, e - a);
    }
}

/// The message `[from, end)`; null when empty.
fn push_message(rows: &mut RowsBuilder, base: usize, from: usize, end: usize) {
    if from >= end {
        rows.push_null("message");
    } else {
        rows.push_raw_str("message", base + from, end - from);
    }
}

/// `ts_offset` for a numeric zone; its text is the zone at the end of `stamp`.
fn push_offset(rows: &mut RowsBuilder, offset: Option<i32>, stamp: &[u8], off: usize) {
    if let Some(minutes) = offset {
        let z = stamp
            .iter()
            .rposition(|c| matches!(c, b'+' | b'-'))
            .unwrap_or(0);
        rows.push_int("ts_offset", i64::from(minutes), off + z, stamp.len() - z);
    }
}

/// Whether `b` starts like an ISO date (`dddd-`), to tell a bad timestamp from not-syslog.
fn looks_iso(b: &[u8]) -> bool {
    b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

/// At most 40 bytes of `b`, for reasons.
fn shown(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(&b[..b.len().min(40)])
}

fn skip_spaces(b: &[u8], mut pos: usize) -> usize {
    while b.get(pos) == Some(&b' ') {
        pos += 1;
    }
    pos
}

/// The value of at most 18 ASCII digits (callers check the digits and the length).
fn number(digits: &[u8]) -> i64 {
    digits
        .iter()
        .fold(0i64, |acc, &c| acc * 10 + i64::from(c - b'0'))
}

/// `s[a..e]`; never panics (the spans are cut at ASCII bytes, so they are boundaries).
fn sub(s: &str, a: usize, e: usize) -> &str {
    s.get(a..e).unwrap_or("")
}

/// A name byte as the builder folds it.
fn fold_name(c: u8) -> u8 {
    if crate::schema::INVALID_NAME_CHARS.contains(&(c as char)) {
        b'_'
    } else {
        c.to_ascii_lowercase()
    }
}

/// Unescapes an SD-PARAM value into `out`: `\"`, `\\` and `\]` lose their backslash; any
/// other backslash is kept (RFC 5424, 6.3.3).
fn unescape_sd(raw: &str, out: &mut String) {
    out.clear();
    let b = raw.as_bytes();
    let mut from = 0;
    let mut i = 0;
    while let Some(k) = memchr::memchr(b'\\', &b[i..]) {
        let at = i + k;
        match b.get(at + 1) {
            Some(b'"' | b'\\' | b']') => {
                out.push_str(sub(raw, from, at));
                from = at + 1; // keep the escaped byte
                i = at + 2;
            }
            _ => i = at + 1,
        }
    }
    out.push_str(sub(raw, from, b.len()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_all, Format, ParsedChunk};
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMicrosecondType};
    use arrow_array::Array;
    use proptest::prelude::*;

    /// 2024-06-15T12:00:00Z.
    const REF: i64 = 1_718_452_800_000_000;

    fn opts(reference: Option<i64>) -> ParseOptions {
        ParseOptions {
            reference_micros: reference,
            ..ParseOptions::new(Format::Syslog)
        }
    }

    fn parse_ref(text: &[u8], reference: Option<i64>) -> ParsedChunk {
        parse_all(&opts(reference), text).unwrap()
    }

    fn parse(text: &str) -> ParsedChunk {
        parse_ref(text.as_bytes(), Some(REF))
    }

    /// Parses one line that must be accepted.
    fn one(text: &str) -> ParsedChunk {
        let p = parse(text);
        assert!(p.rejects.is_empty(), "{text:?}: {:?}", p.rejects);
        assert_eq!(p.batch.num_rows(), 1);
        p
    }

    /// The reason a single line is rejected.
    fn reason(text: &[u8]) -> String {
        let p = parse_ref(text, Some(REF));
        assert_eq!(
            p.batch.num_rows(),
            0,
            "{:?} was accepted",
            String::from_utf8_lossy(text)
        );
        p.rejects[0].reason.clone()
    }

    fn str_at(p: &ParsedChunk, name: &str, row: usize) -> Option<String> {
        let c = p
            .batch
            .column_by_name(name)
            .filter(|c| !c.data_type().is_null())?;
        (!c.is_null(row)).then(|| c.as_string::<i32>().value(row).to_string())
    }

    fn int_at(p: &ParsedChunk, name: &str, row: usize) -> Option<i64> {
        let c = p
            .batch
            .column_by_name(name)
            .filter(|c| !c.data_type().is_null())?;
        (!c.is_null(row)).then(|| c.as_primitive::<Int64Type>().value(row))
    }

    fn ts_at(p: &ParsedChunk, row: usize) -> Option<i64> {
        let c = p
            .batch
            .column_by_name("ts")
            .filter(|c| !c.data_type().is_null())?;
        (!c.is_null(row)).then(|| c.as_primitive::<TimestampMicrosecondType>().value(row))
    }

    fn micros(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_micros()
    }

    fn names(p: &ParsedChunk) -> Vec<String> {
        p.batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    #[test]
    fn rfc3164_with_pri() {
        let p = one("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8");
        assert_eq!(
            names(&p),
            ["pri", "facility", "severity", "ts", "host", "app", "message"]
        );
        assert_eq!(int_at(&p, "pri", 0), Some(34));
        assert_eq!(int_at(&p, "facility", 0), Some(4));
        assert_eq!(int_at(&p, "severity", 0), Some(2));
        // October is more than a month after June: the year before the reference's.
        assert_eq!(ts_at(&p, 0), Some(micros("2023-10-11T22:14:15Z")));
        assert_eq!(str_at(&p, "host", 0).as_deref(), Some("mymachine"));
        assert_eq!(str_at(&p, "app", 0).as_deref(), Some("su"));
        assert_eq!(
            str_at(&p, "message", 0).as_deref(),
            Some("'su root' failed for lonvick on /dev/pts/8")
        );
    }

    #[test]
    fn rfc3164_without_pri_with_pid() {
        let p = one("Dec 10 06:55:46 LabSZ sshd[24200]: reverse mapping checking getaddrinfo");
        assert_eq!(names(&p), ["ts", "host", "app", "pid", "message"]);
        assert_eq!(ts_at(&p, 0), Some(micros("2023-12-10T06:55:46Z")));
        assert_eq!(str_at(&p, "app", 0).as_deref(), Some("sshd"));
        assert_eq!(int_at(&p, "pid", 0), Some(24200));
        assert_eq!(
            str_at(&p, "message", 0).as_deref(),
            Some("reverse mapping checking getaddrinfo")
        );
        // A non-numeric pid goes to `procid`; a tag with parentheses is kept whole.
        let p = one("Jun 14 15:16:01 combo sshd(pam_unix)[x1]: check pass; user unknown");
        assert_eq!(str_at(&p, "app", 0).as_deref(), Some("sshd(pam_unix)"));
        assert_eq!(str_at(&p, "procid", 0).as_deref(), Some("x1"));
        assert!(p.batch.column_by_name("pid").is_none());
    }

    #[test]
    fn days_may_be_space_padded_or_not() {
        let p = parse("Jun  3 01:02:03 h a: x\nJun 3 01:02:03 h a: x\nJun 03 01:02:03 h a: x\n");
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        let t = micros("2024-06-03T01:02:03Z");
        assert_eq!(
            (ts_at(&p, 0), ts_at(&p, 1), ts_at(&p, 2)),
            (Some(t), Some(t), Some(t))
        );
        // The day keeps its padding in the verbatim text: the host is still `h`.
        assert_eq!(str_at(&p, "host", 0).as_deref(), Some("h"));
    }

    #[test]
    fn year_follows_the_reference() {
        // Reference 2024-01-15: February is one month later (same year), March is two.
        let jan = micros("2024-01-15T00:00:00Z");
        let p = parse_ref(b"Feb  1 00:00:00 h a: x\nMar  1 00:00:00 h a: x\nDec 31 23:59:59 h a: x\nJan  1 00:00:00 h a: x", Some(jan));
        assert_eq!(ts_at(&p, 0), Some(micros("2024-02-01T00:00:00Z")));
        assert_eq!(ts_at(&p, 1), Some(micros("2023-03-01T00:00:00Z")));
        assert_eq!(ts_at(&p, 2), Some(micros("2023-12-31T23:59:59Z")));
        assert_eq!(ts_at(&p, 3), Some(micros("2024-01-01T00:00:00Z")));
        // Without a reference: 1970, never the clock.
        let p = parse_ref(b"Dec 31 23:59:59 h a: x", None);
        assert_eq!(ts_at(&p, 0), Some(micros("1970-12-31T23:59:59Z")));
        // A reference before the epoch works too.
        let p = parse_ref(
            b"Mar  1 00:00:00 h a: x",
            Some(micros("1969-03-01T00:00:00Z")),
        );
        assert_eq!(ts_at(&p, 0), Some(micros("1969-03-01T00:00:00Z")));
    }

    #[test]
    fn february_29_goes_back_to_a_leap_year() {
        let line = b"Feb 29 12:00:00 h a: leap";
        let at = |r: &str| ts_at(&parse_ref(line, Some(micros(r))), 0);
        assert_eq!(
            at("2024-03-10T00:00:00Z"),
            Some(micros("2024-02-29T12:00:00Z"))
        );
        assert_eq!(
            at("2025-03-10T00:00:00Z"),
            Some(micros("2024-02-29T12:00:00Z"))
        );
        assert_eq!(
            at("2027-01-10T00:00:00Z"),
            Some(micros("2024-02-29T12:00:00Z"))
        );
        assert_eq!(
            at("2101-01-10T00:00:00Z"),
            Some(micros("2096-02-29T12:00:00Z"))
        );
        assert_eq!(
            ts_at(&parse_ref(line, None), 0),
            Some(micros("1968-02-29T12:00:00Z"))
        );
        // Other invalid dates are rejected.
        assert!(reason(b"Feb 30 12:00:00 h a: x").starts_with("invalid date or time"));
        assert!(reason(b"Oct 11 24:00:00 h a: x").starts_with("invalid date or time"));
        assert!(reason(b"Oct 00 22:00:00 h a: x").starts_with("invalid date or time"));
    }

    #[test]
    fn bsd_timestamps_with_year_and_fraction() {
        let p = one("<189>Mar  1 2019 18:48:50.483 router1 sshd: up");
        assert_eq!(ts_at(&p, 0), Some(micros("2019-03-01T18:48:50.483Z")));
        assert_eq!(str_at(&p, "host", 0).as_deref(), Some("router1"));
    }

    #[test]
    fn iso_timestamps_in_bsd_lines() {
        let p = parse("2024-01-02T03:04:05.123456+01:00 host tag: msg\n<13>2024-01-02T03:04:05Z host tag[7]: m2\n");
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        assert_eq!(ts_at(&p, 0), Some(micros("2024-01-02T02:04:05.123456Z")));
        assert_eq!(int_at(&p, "ts_offset", 0), Some(60));
        assert_eq!(int_at(&p, "ts_offset", 1), None, "Z keeps no offset");
        assert_eq!(int_at(&p, "pid", 1), Some(7));
        assert!(reason(b"2024-13-02T03:04:05Z host tag: msg").starts_with("invalid timestamp"));
        assert!(reason(b"<13>12:00 host tag: msg").starts_with("invalid timestamp"));
    }

    #[test]
    fn host_and_tag_detection() {
        // A tag right after the timestamp: no host.
        let p = one("<13>Oct 11 22:14:15 su: hello");
        assert_eq!(str_at(&p, "host", 0), None);
        assert_eq!(str_at(&p, "app", 0).as_deref(), Some("su"));
        // No `tag:` after the host: no app, the message is the whole rest.
        let p = one("Jun 19 04:09:11 combo syslogd 1.4.1: restart.");
        assert_eq!(str_at(&p, "host", 0).as_deref(), Some("combo"));
        assert_eq!(str_at(&p, "app", 0), None);
        assert_eq!(
            str_at(&p, "message", 0).as_deref(),
            Some("syslogd 1.4.1: restart.")
        );
        let p = one("Jul  7 08:06:15 combo  -- root[2421]: ROOT LOGIN ON tty2");
        assert_eq!(
            str_at(&p, "message", 0).as_deref(),
            Some("-- root[2421]: ROOT LOGIN ON tty2")
        );
        // An IPv6 host is not a tag; a colon without a space after it is no tag end.
        let p = one("Jul  7 08:06:15 fe80::1 kernel: x");
        assert_eq!(str_at(&p, "host", 0).as_deref(), Some("fe80::1"));
        assert_eq!(str_at(&p, "app", 0).as_deref(), Some("kernel"));
        let p = one("Jul  7 08:06:15 h kernel:[1.0] y");
        assert_eq!(str_at(&p, "message", 0).as_deref(), Some("kernel:[1.0] y"));
        // Only one space after the colon belongs to the separator.
        let p = one("Jul  7 08:06:15 h app:   indented");
        assert_eq!(str_at(&p, "message", 0).as_deref(), Some("  indented"));
        // A host alone, an empty message: null.
        let p =
            parse("Jul  7 08:06:15 h app:\nJul  7 08:06:15 h app: \nJul  7 08:06:15 hostonly\n");
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        for row in 0..3 {
            assert_eq!(str_at(&p, "message", row), None);
        }
        assert_eq!(str_at(&p, "host", 2).as_deref(), Some("hostonly"));
    }

    #[test]
    fn pri_bounds() {
        for (line, pri) in [
            ("<0>Oct 11 22:14:15 h a: x", 0),
            ("<191>Oct 11 22:14:15 h a: x", 191),
            ("<007>Oct 11 22:14:15 h a: x", 7),
        ] {
            let p = one(line);
            assert_eq!(int_at(&p, "pri", 0), Some(pri));
            assert_eq!(int_at(&p, "facility", 0), Some(pri / 8));
            assert_eq!(int_at(&p, "severity", 0), Some(pri % 8));
        }
        assert_eq!(
            reason(b"<192>Oct 11 22:14:15 h a: x"),
            "PRI 192 out of range 0..=191"
        );
        assert_eq!(
            reason(b"<999>1 - - - - - -"),
            "PRI 999 out of range 0..=191"
        );
        for bad in [
            "<>Oct 11 22:14:15 h a: x",
            "<1234>Oct 11 22:14:15 h a: x",
            "<a>x",
            "<34",
            "<-1>x",
        ] {
            assert_eq!(
                reason(bad.as_bytes()),
                "invalid PRI: expected <0> to <191>",
                "{bad}"
            );
        }
        assert_eq!(
            reason(b"<34>hello"),
            "expected a BSD or ISO 8601 timestamp after <PRI>"
        );
        assert_eq!(
            reason(b"<34>Foo 11 22:14:15 h a: x"),
            "expected a BSD or ISO 8601 timestamp after <PRI>"
        );
    }

    #[test]
    fn rfc5424_examples() {
        // The four examples of RFC 5424, section 6.5 (BOM written as bytes).
        let text = concat!(
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{FEFF}'su root' failed for lonvick on /dev/pts/8\n",
            "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.\n",
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \u{FEFF}An application event log entry...\n",
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]\n",
        );
        let p = parse(text);
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        assert_eq!(
            names(&p),
            [
                "pri",
                "facility",
                "severity",
                "version",
                "ts",
                "host",
                "app",
                "msgid",
                "sd",
                "message",
                "ts_offset",
                "pid",
                "sd.exampleSDID@32473.iut",
                "sd.exampleSDID@32473.eventSource",
                "sd.exampleSDID@32473.eventID",
                "sd.examplePriority@32473.class",
            ]
        );
        assert_eq!(int_at(&p, "version", 0), Some(1));
        assert_eq!(ts_at(&p, 0), Some(micros("2003-10-11T22:14:15.003Z")));
        assert_eq!(int_at(&p, "ts_offset", 0), None);
        assert_eq!(str_at(&p, "app", 0).as_deref(), Some("su"));
        assert_eq!(int_at(&p, "pid", 0), None);
        assert_eq!(str_at(&p, "msgid", 0).as_deref(), Some("ID47"));
        assert_eq!(str_at(&p, "sd", 0), None);
        assert_eq!(
            str_at(&p, "message", 0).as_deref(),
            Some("'su root' failed for lonvick on /dev/pts/8"),
            "the BOM is dropped"
        );
        assert_eq!(
            ts_at(&p, 1),
            Some(micros("2003-08-24T05:14:15.000003-07:00"))
        );
        assert_eq!(int_at(&p, "ts_offset", 1), Some(-420));
        assert_eq!(str_at(&p, "host", 1).as_deref(), Some("192.0.2.1"));
        assert_eq!(int_at(&p, "pid", 1), Some(8710));
        assert_eq!(str_at(&p, "msgid", 1), None);
        assert_eq!(
            str_at(&p, "message", 1).as_deref(),
            Some("%% It's time to make the do-nuts.")
        );
        assert_eq!(
            str_at(&p, "sd", 2).as_deref(),
            Some("[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]")
        );
        assert_eq!(
            str_at(&p, "sd.exampleSDID@32473.iut", 2).as_deref(),
            Some("3")
        );
        assert_eq!(
            str_at(&p, "sd.exampleSDID@32473.eventID", 3).as_deref(),
            Some("1011")
        );
        assert_eq!(
            str_at(&p, "sd.examplePriority@32473.class", 3).as_deref(),
            Some("high")
        );
        assert_eq!(str_at(&p, "sd.examplePriority@32473.class", 2), None);
        assert_eq!(str_at(&p, "message", 3), None, "no MSG");
    }

    #[test]
    fn nilvalues_are_null() {
        let p = parse("<14>1 - - - - - -\n<14>1 - - - - - - \n");
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        for row in 0..2 {
            assert_eq!(ts_at(&p, row), None);
            for c in ["host", "app", "msgid", "sd", "message"] {
                assert_eq!(str_at(&p, c, row), None, "{c}");
            }
        }
        assert!(p.batch.column_by_name("pid").is_none());
        assert!(p.batch.column_by_name("procid").is_none());
        assert_eq!(int_at(&p, "severity", 0), Some(6));
    }

    #[test]
    fn structured_data_escapes() {
        let p = one(
            r#"<14>1 - h a - - [x a="q\"uote" b="back\\slash" c="br\]acket" d="other\n" e="" f="é"] m"#,
        );
        assert_eq!(str_at(&p, "sd.x.a", 0).as_deref(), Some("q\"uote"));
        assert_eq!(str_at(&p, "sd.x.b", 0).as_deref(), Some("back\\slash"));
        assert_eq!(str_at(&p, "sd.x.c", 0).as_deref(), Some("br]acket"));
        assert_eq!(str_at(&p, "sd.x.d", 0).as_deref(), Some("other\\n"));
        assert_eq!(str_at(&p, "sd.x.e", 0).as_deref(), Some(""));
        assert_eq!(str_at(&p, "sd.x.f", 0).as_deref(), Some("é"));
        assert_eq!(
            str_at(&p, "sd", 0).as_deref(),
            Some(r#"[x a="q\"uote" b="back\\slash" c="br\]acket" d="other\n" e="" f="é"]"#)
        );
        assert_eq!(str_at(&p, "message", 0).as_deref(), Some("m"));
        // Repeated parameters (allowed by RFC 5424) keep the first value; `sd` has all.
        let p = one(r#"<14>1 - h a - - [origin ip="10.0.0.1" IP="10.0.0.2"][origin ip="3"] m"#);
        assert_eq!(str_at(&p, "sd.origin.ip", 0).as_deref(), Some("10.0.0.1"));
        // An escaped value unescapes into the arena and survives a following reject.
        let p = parse("<14>1 - h a - - [x a=\"1\\\"2\"] m\n<14>1 - h a - - [x a=\"\n<14>1 - h a - - [x a=\"3\\]\"]\n");
        assert_eq!(p.rejects.len(), 1);
        assert_eq!(str_at(&p, "sd.x.a", 0).as_deref(), Some("1\"2"));
        assert_eq!(str_at(&p, "sd.x.a", 1).as_deref(), Some("3]"));
    }

    #[test]
    fn parameters_that_fold_to_one_column_keep_the_first() {
        // Both are `sd.a.b.c`: the line is kept, with the first value.
        let p = parse("<14>1 - - - - - [a.b c=\"1\"][a b.c=\"2\"] m\n");
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        assert_eq!(str_at(&p, "sd.a.b.c", 0).as_deref(), Some("1"));
    }

    #[test]
    fn bad_structured_data_is_rejected() {
        for (line, why) in [
            (r#"<14>1 - h a - - [x a="1"#, "unterminated PARAM-VALUE"),
            (r#"<14>1 - h a - - [x a="1\"#, "unterminated PARAM-VALUE"),
            (r#"<14>1 - h a - - [x a="1""#, "unterminated SD-ELEMENT"),
            (
                r#"<14>1 - h a - - [x a=1]"#,
                "expected =\" after PARAM-NAME",
            ),
            (r#"<14>1 - h a - - []"#, "empty SD-ID"),
            (r#"<14>1 - h a - - [x ="1"]"#, "empty PARAM-NAME"),
            (r#"<14>1 - h a - - [x a="1"b="2"]"#, "expected ' ' or ']'"),
            (
                r#"<14>1 - h a - - [x a="1"]m"#,
                "expected a space before MSG",
            ),
            (r#"<14>1 - h a - - [x"#, "unterminated SD-ELEMENT"),
        ] {
            let r = reason(line.as_bytes());
            assert!(
                r.starts_with("invalid structured data at byte ") && r.ends_with(why),
                "{line}: {r}"
            );
        }
    }

    #[test]
    fn heroku_frames_without_structured_data() {
        let p = one(
            "83 <40>1 2012-11-30T06:45:29+00:00 host app web.3 - State changed from starting to up",
        );
        assert_eq!(str_at(&p, "procid", 0).as_deref(), Some("web.3"));
        assert_eq!(str_at(&p, "msgid", 0), None);
        assert_eq!(str_at(&p, "sd", 0), None);
        assert_eq!(
            str_at(&p, "message", 0).as_deref(),
            Some("State changed from starting to up")
        );
        assert_eq!(int_at(&p, "ts_offset", 0), Some(0));
        // `-x` is a message, not a NILVALUE.
        let p = one("<40>1 - h a - - -x");
        assert_eq!(str_at(&p, "message", 0).as_deref(), Some("-x"));
    }

    #[test]
    fn octet_counting() {
        let frame = "<14>1 - h a - - - hello";
        let n = frame.len();
        for (line, ok) in [
            (format!("{n} {frame}"), true),
            (format!("{} {frame}  ", n), true), // trailing whitespace after the frame
            (format!("{} {frame}", n + 1), true), // a counted \n
            (format!("{} {frame}", n + 2), true), // a counted \r\n
            (format!("{} {frame}", n + 3), false),
            (format!("{} {frame}", n - 1), false), // the frame would end inside "hello"
            (format!("{} {frame} 5 <1>1", n), false), // two frames on one line
        ] {
            let p = parse(&line);
            if ok {
                assert!(p.rejects.is_empty(), "{line}: {:?}", p.rejects);
                assert_eq!(str_at(&p, "message", 0).as_deref(), Some("hello"), "{line}");
            } else {
                assert!(
                    p.rejects[0].reason.starts_with("octet count "),
                    "{line}: {:?}",
                    p.rejects
                );
            }
        }
        assert_eq!(
            reason(format!("{} {frame}", n + 3).as_bytes()),
            format!("octet count {} does not match frame length {n}", n + 3)
        );
        // The count applies to BSD frames too; digits not followed by ` <` are no count.
        let bsd = "<13>Oct 11 22:14:15 h a: x";
        assert_eq!(parse(&format!("{} {bsd}", bsd.len())).batch.num_rows(), 1);
        assert_eq!(reason(b"123 hello"), NOT_SYSLOG);
        assert_eq!(reason(b"1234567890 <14>1 - - - - - -"), NOT_SYSLOG);
    }

    #[test]
    fn truncated_lines_are_rejected() {
        for (line, why) in [
            ("<34>1", "invalid timestamp \"1\""),
            ("<34>1 ", "truncated RFC 5424 header: missing TIMESTAMP"),
            (
                "<34>1 2003-10-11T22:14:15Z",
                "truncated RFC 5424 header: missing TIMESTAMP",
            ),
            (
                "<34>1 2003-10-11T22:14:15Z host",
                "truncated RFC 5424 header: missing HOSTNAME",
            ),
            (
                "<34>1 2003-10-11T22:14:15Z host app",
                "truncated RFC 5424 header: missing APP-NAME",
            ),
            (
                "<34>1 2003-10-11T22:14:15Z host app 1",
                "truncated RFC 5424 header: missing PROCID",
            ),
            (
                "<34>1 2003-10-11T22:14:15Z host app 1 ID",
                "truncated RFC 5424 header: missing MSGID",
            ),
            (
                "<34>1 2003-10-11T22:14:15Z host app 1 ID ",
                "truncated RFC 5424 header: missing STRUCTURED-DATA",
            ),
            (
                "<34>1 2003-10-11T22:14:15Z  app 1 ID -",
                "truncated RFC 5424 header: missing HOSTNAME",
            ),
            (
                "<34>1 2003-10-11 22:14:15Z h a 1 ID -",
                "invalid RFC 5424 timestamp \"2003-10-11\"",
            ),
            ("Oct 11 22:14:15", "truncated: nothing after the timestamp"),
            (
                "Oct 11 22:14:15   ",
                "truncated: nothing after the timestamp",
            ),
            ("Oct 11 22:14", NOT_SYSLOG),
            (
                "<34>Oct 11",
                "expected a BSD or ISO 8601 timestamp after <PRI>",
            ),
            ("Oct 11 22:14:15x h a: m", NOT_SYSLOG),
            ("hello world", NOT_SYSLOG),
            ("{\"json\": 1}", NOT_SYSLOG),
        ] {
            assert_eq!(reason(line.as_bytes()), why, "{line:?}");
        }
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        assert_eq!(
            reason(b"Oct 11 22:14:15 host app: \xff"),
            "invalid UTF-8 at byte 26"
        );
        assert_eq!(reason(b"\xc3"), "invalid UTF-8 at byte 0");
        // Valid multi-byte text anywhere is fine.
        let p = one("Oct 11 22:14:15 hôte ñapp[1]: ünïcode ✓");
        assert_eq!(str_at(&p, "host", 0).as_deref(), Some("hôte"));
        assert_eq!(str_at(&p, "app", 0).as_deref(), Some("ñapp"));
    }

    #[test]
    fn mixed_shapes_in_one_chunk() {
        let text = "<34>Oct 11 22:14:15 a su: x\r\nOct 11 22:14:16 b cron[1]: y\n<14>1 2024-01-01T00:00:00+02:00 c app p1 - - z\n";
        let p = parse(text);
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        assert_eq!(p.batch.num_rows(), 3);
        assert_eq!(int_at(&p, "pri", 1), None);
        assert_eq!(int_at(&p, "version", 0), None);
        assert_eq!(int_at(&p, "version", 2), Some(1));
        assert_eq!(int_at(&p, "ts_offset", 2), Some(120));
        assert_eq!(str_at(&p, "procid", 2).as_deref(), Some("p1"));
        assert_eq!(int_at(&p, "pid", 1), Some(1));
        assert_eq!(str_at(&p, "message", 0).as_deref(), Some("x"));
    }

    #[test]
    fn many_parameters_are_bounded() {
        // More parameters than MAX_SD_PARAMS: only the first ones get a column.
        let params: String = (0..MAX_SD_PARAMS + 10)
            .map(|i| format!(" p{i}=\"{i}\""))
            .collect();
        let line = format!("<14>1 - h a - - [x{params}] m");
        let p = one(&line);
        assert!(p
            .batch
            .column_by_name(&format!("sd.x.p{}", MAX_SD_PARAMS - 1))
            .is_some());
        assert!(p
            .batch
            .column_by_name(&format!("sd.x.p{MAX_SD_PARAMS}"))
            .is_none());
        // Repeated names are skipped in linear time per parameter, not rejected.
        let params: String = (0..2000).map(|_| " p=\"1\"").collect();
        one(&format!("<14>1 - h a - - [x{params}] m"));
    }

    #[test]
    fn never_panics_on_prefixes() {
        // Every prefix of valid lines is either a row or a reject with a reason.
        let lines = [
            "123 <165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\\\"\" eventSource=\"Application\"][b c=\"d\"] \u{FEFF}An application",
            "<34>Oct 11 2003 22:14:15.123 mymachine su[12]: 'su root' failed ✓",
            "2024-01-02T03:04:05.123456+01:00 host tag: msg",
        ];
        for line in lines {
            for end in 0..=line.len() {
                let p = parse_ref(&line.as_bytes()[..end], Some(REF));
                assert_eq!(p.batch.num_rows() + p.rejects.len(), p.records as usize);
            }
        }
    }

    /// A generated RFC 3164 record and its expected columns.
    #[derive(Debug, Clone)]
    struct Bsd3164 {
        pri: Option<i64>,
        month: u32,
        day: u32,
        hms: (u32, u32, u32),
        padded: bool,
        host: String,
        app: String,
        pid: Option<i64>,
        message: String,
    }

    fn bsd3164() -> impl Strategy<Value = Bsd3164> {
        (
            proptest::option::of(0i64..=191),
            (1u32..=12, 1u32..=28, 0u32..24, 0u32..60, 0u32..60),
            any::<bool>(),
            "[a-z][a-z0-9.-]{0,15}",
            "[a-zA-Z][a-zA-Z0-9_./-]{0,15}",
            proptest::option::of(0i64..4_000_000),
            "([^\r\n\0 ][^\r\n\0]{0,40})?",
        )
            .prop_map(
                |(pri, (month, day, h, m, s), padded, host, app, pid, message)| Bsd3164 {
                    pri,
                    month,
                    day,
                    hms: (h, m, s),
                    padded,
                    host,
                    app,
                    pid,
                    message,
                },
            )
    }

    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];

    /// A generated RFC 5424 record: `None` fields are written as `-`.
    #[derive(Debug, Clone)]
    struct Rfc5424 {
        pri: i64,
        version: i64,
        ts: Option<(i64, Option<i32>)>,
        host: Option<String>,
        app: Option<String>,
        procid: Option<String>,
        msgid: Option<String>,
        sd: Vec<(String, Vec<(String, String)>)>,
        bom: bool,
        message: Option<String>,
    }

    fn rfc5424() -> impl Strategy<Value = Rfc5424> {
        let sd_value = "[a-zA-Z \"\\\\\\]=é✓\\[]{0,12}";
        let element = (
            "[a-z]{1,6}(@[0-9]{1,5})?",
            proptest::collection::btree_map("[a-z]{1,6}", sd_value, 1..4),
        );
        (
            (0i64..=191, 1i64..=999),
            proptest::option::of((
                // 1900 to 2100, whole microseconds, with Z or an offset within ±23:59.
                -2_208_988_800_000_000i64..4_102_444_800_000_000,
                proptest::option::of(-1439i32..=1439),
            )),
            proptest::option::of("[!-~&&[^-]][!-~]{0,20}"),
            proptest::option::of("[!-~&&[^-]][!-~]{0,20}"),
            proptest::option::of("[0-9]{1,7}|[a-z][a-z0-9.]{0,8}"),
            proptest::option::of("[!-~&&[^-]][!-~]{0,10}"),
            proptest::collection::btree_map(
                "[a-z]{1,6}(@[0-9]{1,5})?",
                element.prop_map(|e| e.1),
                0..3,
            ),
            any::<bool>(),
            proptest::option::of("[^\r\n\0\u{FEFF}]{1,40}"),
        )
            .prop_map(
                |((pri, version), ts, host, app, procid, msgid, sd, bom, message)| Rfc5424 {
                    pri,
                    version,
                    ts,
                    host,
                    app,
                    procid,
                    msgid,
                    sd: sd
                        .into_iter()
                        .map(|(id, params)| (id, params.into_iter().collect()))
                        .collect(),
                    bom,
                    message,
                },
            )
    }

    fn render_ts(micros: i64, offset: Option<i32>) -> String {
        let utc = chrono::DateTime::from_timestamp_micros(micros).unwrap();
        match offset {
            None => utc.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            Some(m) => utc
                .with_timezone(&chrono::FixedOffset::east_opt(m * 60).unwrap())
                .format("%Y-%m-%dT%H:%M:%S%.6f%:z")
                .to_string(),
        }
    }

    fn sd_text(sd: &[(String, Vec<(String, String)>)]) -> String {
        let mut out = String::new();
        for (id, params) in sd {
            out.push('[');
            out.push_str(id);
            for (k, v) in params {
                out.push_str(&format!(
                    " {k}=\"{}\"",
                    v.replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace(']', "\\]")
                ));
            }
            out.push(']');
        }
        out
    }

    fn dash(v: &Option<String>) -> &str {
        v.as_deref().unwrap_or("-")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn rfc3164_round_trip(recs in proptest::collection::vec(bsd3164(), 1..8)) {
            let mut text = String::new();
            for r in &recs {
                if let Some(p) = r.pri { text.push_str(&format!("<{p}>")); }
                let day = if r.padded { format!("{:2}", r.day) } else { r.day.to_string() };
                text.push_str(&format!("{} {day} {:02}:{:02}:{:02} {} {}", MONTHS[r.month as usize - 1], r.hms.0, r.hms.1, r.hms.2, r.host, r.app));
                if let Some(pid) = r.pid { text.push_str(&format!("[{pid}]")); }
                text.push(':');
                if !r.message.is_empty() { text.push(' '); text.push_str(&r.message); }
                text.push('\n');
            }
            let p = parse(&text);
            prop_assert!(p.rejects.is_empty(), "{:?}", p.rejects);
            for (row, r) in recs.iter().enumerate() {
                prop_assert_eq!(int_at(&p, "pri", row), r.pri);
                prop_assert_eq!(int_at(&p, "facility", row), r.pri.map(|v| v / 8));
                prop_assert_eq!(int_at(&p, "severity", row), r.pri.map(|v| v % 8));
                // Reference June 2024: months after July are of 2023.
                let year = if r.month > 7 { 2023 } else { 2024 };
                let want = chrono::NaiveDate::from_ymd_opt(year, r.month, r.day).unwrap()
                    .and_hms_opt(r.hms.0, r.hms.1, r.hms.2).unwrap().and_utc().timestamp_micros();
                prop_assert_eq!(ts_at(&p, row), Some(want));
                prop_assert_eq!(str_at(&p, "host", row), Some(r.host.clone()));
                prop_assert_eq!(str_at(&p, "app", row), Some(r.app.clone()));
                prop_assert_eq!(int_at(&p, "pid", row), r.pid);
                let msg = (!r.message.is_empty()).then(|| r.message.clone());
                prop_assert_eq!(str_at(&p, "message", row), msg);
            }
        }

        #[test]
        fn rfc5424_round_trip(recs in proptest::collection::vec(rfc5424(), 1..8), counted in any::<bool>()) {
            let mut text = String::new();
            for r in &recs {
                let ts = r.ts.map_or("-".to_string(), |(t, o)| render_ts(t, o));
                let sd = if r.sd.is_empty() { "-".to_string() } else { sd_text(&r.sd) };
                let mut line = format!("<{}>{} {ts} {} {} {} {} {sd}", r.pri, r.version, dash(&r.host), dash(&r.app), dash(&r.procid), dash(&r.msgid));
                if let Some(m) = &r.message {
                    line.push(' ');
                    if r.bom { line.push('\u{FEFF}'); }
                    line.push_str(m);
                }
                if counted { text.push_str(&format!("{} ", line.len())); }
                text.push_str(&line);
                text.push('\n');
            }
            let p = parse(&text);
            prop_assert!(p.rejects.is_empty(), "{:?}", p.rejects);
            for (row, r) in recs.iter().enumerate() {
                prop_assert_eq!(int_at(&p, "pri", row), Some(r.pri));
                prop_assert_eq!(int_at(&p, "version", row), Some(r.version));
                prop_assert_eq!(ts_at(&p, row), r.ts.map(|t| t.0));
                prop_assert_eq!(int_at(&p, "ts_offset", row), r.ts.and_then(|t| t.1).map(i64::from));
                prop_assert_eq!(str_at(&p, "host", row), r.host.clone());
                prop_assert_eq!(str_at(&p, "app", row), r.app.clone());
                let numeric = r.procid.as_ref().filter(|p| p.bytes().all(|c| c.is_ascii_digit()));
                prop_assert_eq!(int_at(&p, "pid", row), numeric.map(|p| p.parse::<i64>().unwrap()));
                prop_assert_eq!(str_at(&p, "procid", row), r.procid.clone().filter(|_| numeric.is_none()));
                prop_assert_eq!(str_at(&p, "msgid", row), r.msgid.clone());
                prop_assert_eq!(str_at(&p, "sd", row), (!r.sd.is_empty()).then(|| sd_text(&r.sd)));
                for (id, params) in &r.sd {
                    for (k, v) in params {
                        prop_assert_eq!(str_at(&p, &format!("sd.{id}.{k}"), row), Some(v.clone()));
                    }
                }
                // A message that is only a leading space after the separator stays as written.
                prop_assert_eq!(str_at(&p, "message", row), r.message.clone());
            }
        }
    }
}
