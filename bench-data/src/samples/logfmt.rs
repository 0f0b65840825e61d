//! Generated logfmt lines, in the shape of a Go HTTP service (Grafana, go-kit, logrus):
//!
//! ```text
//! ts=2026-01-01T00:00:00.041Z level=info msg="request completed" method=GET path=/api/v1/items/1042 status=200 duration_ms=12.345 bytes=5312 user_id=u1937 trace_id=4bf92f3577b34da6 cached
//! ts=2026-01-01T00:00:00.093Z level=warn msg="slow query" logger=db table=orders rows=120 duration_ms=812.004 query="SELECT * FROM orders WHERE user_id = \"u17\""
//! ```
//!
//! Quoted values (some with escaped quotes), bare flags, empty values, ints, floats and ISO
//! timestamps all appear, so the parser's every value path is exercised.

use crate::rng::{Rng, Weighted};
use crate::text::{push_fixed, push_hex, push_u64, Rfc3339Cache};

const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "PUT", "DELETE"];

const PATHS: &[&str] = &[
    "/api/v1/items/",
    "/api/v1/users/",
    "/api/v1/search?q=",
    "/healthz",
    "/api/v1/orders/",
    "/metrics",
];

const TABLES: &[&str] = &["orders", "users", "items", "sessions"];

const WARNINGS: &[&str] = &[
    "retrying upstream",
    "cache miss storm",
    "config value \\\"timeout\\\" deprecated",
    "token expires soon",
];

/// `lines` logfmt lines from `seed`.
pub fn logfmt(seed: u64, lines: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut iso = Rfc3339Cache::new();
    let users = Weighted::zipf(5000);
    let mut now_ms = crate::DEFAULT_START_TS_MS;
    let mut out = Vec::with_capacity(lines * 170);
    for _ in 0..lines {
        now_ms += rng.exp(25.0) as i64;
        out.extend_from_slice(b"ts=");
        if iso.push(&mut out, now_ms).is_err() {
            out.extend_from_slice(b"unknown");
        }
        let roll = rng.below(100);
        let user = users.sample(&mut rng) as u64;
        if roll < 80 {
            let status = match rng.below(100) {
                0..=84 => 200,
                85..=89 => 304,
                90..=95 => 404,
                96..=98 => 401,
                _ => 500,
            };
            out.extend_from_slice(if status >= 500 {
                b" level=error".as_slice()
            } else {
                b" level=info".as_slice()
            });
            out.extend_from_slice(b" msg=\"request completed\" method=");
            out.extend_from_slice(METHODS[rng.below(METHODS.len() as u32) as usize].as_bytes());
            out.extend_from_slice(b" path=");
            let path = PATHS[rng.below(PATHS.len() as u32) as usize];
            out.extend_from_slice(path.as_bytes());
            if path.ends_with('/') || path.ends_with('=') {
                push_u64(&mut out, rng.between(1, 20_000));
            }
            out.extend_from_slice(b" status=");
            push_u64(&mut out, status);
            out.extend_from_slice(b" duration_ms=");
            push_fixed(&mut out, (rng.exp(15.0) * 1000.0) as u64, 3);
            out.extend_from_slice(b" bytes=");
            push_u64(&mut out, rng.between(0, 64_000));
            out.extend_from_slice(b" user_id=");
            if rng.chance(0.1) {
                // Anonymous: an empty value (null).
            } else {
                out.push(b'u');
                push_u64(&mut out, user);
            }
            out.extend_from_slice(b" trace_id=");
            push_hex(&mut out, rng.next_u64(), 16);
            if rng.chance(0.3) {
                out.extend_from_slice(b" cached");
            }
        } else if roll < 92 {
            out.extend_from_slice(b" level=warn msg=\"slow query\" logger=db table=");
            out.extend_from_slice(TABLES[rng.below(TABLES.len() as u32) as usize].as_bytes());
            out.extend_from_slice(b" rows=");
            push_u64(&mut out, rng.between(0, 5000));
            out.extend_from_slice(b" duration_ms=");
            push_fixed(&mut out, rng.between(500_000, 5_000_000), 3);
            out.extend_from_slice(b" query=\"SELECT * FROM orders WHERE user_id = \\\"u");
            push_u64(&mut out, user);
            out.extend_from_slice(b"\\\"\"");
        } else {
            out.extend_from_slice(b" level=warn msg=\"");
            out.extend_from_slice(WARNINGS[rng.below(WARNINGS.len() as u32) as usize].as_bytes());
            out.extend_from_slice(b"\" logger=server retry=");
            push_u64(&mut out, u64::from(rng.below(5)));
            out.extend_from_slice(b" healthy=");
            out.extend_from_slice(if rng.chance(0.9) {
                b"true".as_slice()
            } else {
                b"false".as_slice()
            });
            out.extend_from_slice(b" since=");
            if iso.push(&mut out, now_ms - 60_000).is_err() {
                out.extend_from_slice(b"unknown");
            }
        }
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_newline_terminated() {
        let a = logfmt(7, 500);
        assert_eq!(a, logfmt(7, 500));
        assert_ne!(a, logfmt(8, 500));
        assert_eq!(a.iter().filter(|&&b| b == b'\n').count(), 500);
        assert!(std::str::from_utf8(&a).is_ok());
    }
}
