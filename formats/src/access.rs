//! NCSA access logs: `common` and `combined` (the nginx and Apache defaults), with trailing
//! extra fields such as nginx's `$request_time`.
//!
//! ```text
//! 203.0.113.7 - alice [10/Oct/2000:13:55:36 -0700] "GET /a?b=1 HTTP/1.1" 200 2326 "https://r/" "Mozilla/5.0" 0.042
//! └── ip     ident user └── ts                      └── method path protocol status bytes referer   user_agent  extra
//! ```
//!
//! # Columns
//! `ip, ident, user, ts, ts_offset, method, path, protocol, status, bytes` and, for `combined`,
//! `referer, user_agent`; then one column per trailing field, named by
//! [`crate::ParseOptions::extra_columns`] or `extra_N`.
//! - `-` becomes null in `ident`, `user`, `bytes`, `referer`, `user_agent` and the extras.
//! - `ts` is a UTC timestamp (the zone offset is applied); `ts_offset` keeps the offset as
//!   written, in minutes east of UTC (`-0700` is -420), so local time can be recovered.
//! - The request splits at its first and last space into method, path and protocol; a request
//!   that does not split that way (garbage from scanners) is kept whole in `path`, with
//!   method and protocol null; a request of `-` makes all three null.
//! - Quoted fields are kept verbatim, escapes included (nginx writes `\x22`, Apache `\"`).
//! - Extras are typed like JSON values: int, float, or string.
//!
//! A line that is not UTF-8 or lacks a mandatory field is rejected.

use crate::builder::RowsBuilder;
use crate::cursor::Cursor;
use crate::{ts, LineParser};

/// Column names of the fixed fields, in order.
pub const COLUMNS: [&str; 12] = [
    "ip",
    "ident",
    "user",
    "ts",
    "ts_offset",
    "method",
    "path",
    "protocol",
    "status",
    "bytes",
    "referer",
    "user_agent",
];

/// The access-log parser.
pub struct AccessParser {
    combined: bool,
    extra_names: Vec<String>,
}

impl AccessParser {
    /// A parser for `combined` (true) or `common` (false) logs.
    pub fn new(combined: bool, extra_columns: &[String]) -> Self {
        AccessParser {
            combined,
            extra_names: extra_columns.to_vec(),
        }
    }

    fn extra_name(&mut self, i: usize) -> String {
        while self.extra_names.len() <= i {
            let n = self.extra_names.len() + 1;
            self.extra_names.push(format!("extra_{n}"));
        }
        self.extra_names[i].clone()
    }
}

fn nullable(rows: &mut RowsBuilder, name: &str, base: usize, (off, text): (usize, &str)) {
    if text == "-" {
        rows.push_null(name);
    } else {
        rows.push_raw_str(name, base + off, text.len());
    }
}

impl LineParser for AccessParser {
    fn parse_line(
        &mut self,
        line: &[u8],
        base: usize,
        rows: &mut RowsBuilder,
    ) -> Result<(), String> {
        let s = crate::utf8(line)?;
        let mut c = Cursor::new(s);
        let ip = c.bare("ip")?;
        rows.push_raw_str("ip", base + ip.0, ip.1.len());
        let ident = c.bare("ident")?;
        nullable(rows, "ident", base, ident);
        let user = c.bare("user")?;
        nullable(rows, "user", base, user);
        let (off, t) = c.delimited(b'[', b']', false, "timestamp")?;
        let (micros, offset) =
            ts::parse_clf_tz(t.as_bytes()).ok_or_else(|| format!("invalid timestamp [{t}]"))?;
        rows.push_ts("ts", micros, base + off, t.len());
        match offset {
            // The zone's text span: after the space that follows the seconds.
            Some(minutes) => {
                let z = t.rfind(' ').map_or(t.len(), |i| i + 1);
                rows.push_int("ts_offset", i64::from(minutes), base + off + z, t.len() - z);
            }
            None => rows.push_null("ts_offset"),
        }
        let (roff, req) = c.quoted("request")?;
        let first = req.find(' ');
        let last = req.rfind(' ');
        match (first, last) {
            (Some(f), Some(l)) if f < l && req[l + 1..].starts_with("HTTP/") => {
                rows.push_raw_str("method", base + roff, f);
                rows.push_raw_str("path", base + roff + f + 1, l - f - 1);
                rows.push_raw_str("protocol", base + roff + l + 1, req.len() - l - 1);
            }
            (Some(f), _)
                if !req[f + 1..].contains(' ')
                    && req[..f].bytes().all(|b| b.is_ascii_uppercase()) =>
            {
                // HTTP/0.9 style: "GET /path"
                rows.push_raw_str("method", base + roff, f);
                rows.push_raw_str("path", base + roff + f + 1, req.len() - f - 1);
                rows.push_null("protocol");
            }
            _ if req == "-" => {
                rows.push_null("method");
                rows.push_null("path");
                rows.push_null("protocol");
            }
            _ => {
                rows.push_null("method");
                rows.push_raw_str("path", base + roff, req.len());
                rows.push_null("protocol");
            }
        }
        let (off, status) = c.bare("status")?;
        let code: i64 = status
            .parse()
            .map_err(|_| format!("invalid status {status:?}"))?;
        rows.push_int("status", code, base + off, status.len());
        let (off, bytes) = c.bare("bytes")?;
        if bytes == "-" {
            rows.push_null("bytes");
        } else {
            let n: i64 = bytes
                .parse()
                .map_err(|_| format!("invalid bytes {bytes:?}"))?;
            rows.push_int("bytes", n, base + off, bytes.len());
        }
        if self.combined {
            let referer = c.quoted("referer")?;
            nullable(rows, "referer", base, referer);
            let ua = c.quoted("user_agent")?;
            nullable(rows, "user_agent", base, ua);
        }
        let mut i = 0;
        loop {
            c.skip_spaces();
            if c.done() {
                break;
            }
            let name = self.extra_name(i);
            if s.as_bytes()[c.pos] == b'"' {
                let v = c.quoted(&name)?;
                nullable(rows, &name, base, v);
            } else {
                let (off, v) = c.bare(&name)?;
                if v == "-" {
                    rows.push_null(&name);
                } else {
                    rows.push_number(&name, v, base + off);
                }
            }
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{parse_all, Format, ParseOptions};
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
    use arrow_array::Array;

    #[test]
    fn combined_with_extras() {
        let mut opts = ParseOptions::new(Format::Combined);
        opts.extra_columns = vec!["request_time".into()];
        let text = concat!(
            "203.0.113.7 - alice [10/Oct/2000:13:55:36 -0700] \"GET /a?b=1 HTTP/1.1\" 200 2326 \"https://r/\" \"Mozilla/5.0 (X)\" 0.042\r\n",
            "::1 - - [10/Oct/2000:13:55:37 +0000] \"-\" 400 - \"-\" \"a \\\"q\\\" b\" 1 \"x y\"\n",
            "10.0.0.1 - - [10/Oct/2000:13:55:38 +0000] \"\\x16\\x03\\x01\" 400 150 \"-\" \"-\"",
        );
        let p = parse_all(&opts, text.as_bytes()).unwrap();
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        let b = &p.batch;
        let col = |n: &str| b.column_by_name(n).unwrap().clone();
        assert_eq!(col("ip").as_string::<i32>().value(1), "::1");
        assert_eq!(col("user").as_string::<i32>().value(0), "alice");
        assert!(col("user").is_null(1));
        assert_eq!(
            col("ts")
                .as_primitive::<TimestampMicrosecondType>()
                .value(0),
            971_211_336_000_000
        );
        assert_eq!(col("method").as_string::<i32>().value(0), "GET");
        assert_eq!(col("path").as_string::<i32>().value(0), "/a?b=1");
        assert_eq!(col("protocol").as_string::<i32>().value(0), "HTTP/1.1");
        assert!(col("path").is_null(1));
        assert_eq!(col("path").as_string::<i32>().value(2), "\\x16\\x03\\x01");
        assert_eq!(
            col("status").as_primitive::<Int64Type>().values(),
            &[200, 400, 400]
        );
        assert!(col("bytes").is_null(1));
        assert_eq!(
            col("user_agent").as_string::<i32>().value(1),
            "a \\\"q\\\" b"
        );
        assert_eq!(
            col("request_time").as_primitive::<Float64Type>().values(),
            &[0.042, 1.0, 0.0][..3]
        );
        assert!(col("request_time").is_null(2));
        assert_eq!(col("extra_2").as_string::<i32>().value(1), "x y");
    }

    #[test]
    fn common_and_rejects() {
        let text = "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326\nbroken line\n1.2.3.4 - - [99/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 1\n1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" abc 1\n1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0 200 1";
        let p = parse_all(&ParseOptions::new(Format::Common), text.as_bytes()).unwrap();
        assert_eq!(p.batch.num_rows(), 1);
        assert_eq!(
            p.rejects.iter().map(|r| r.line).collect::<Vec<_>>(),
            [2, 3, 4, 5]
        );
        // ip, ident, user, ts, ts_offset, method, path, protocol, status, bytes
        assert_eq!(p.batch.num_columns(), 10);
        let off = p.batch.column_by_name("ts_offset").unwrap();
        assert_eq!(off.as_primitive::<Int64Type>().value(0), -420);
    }
}
