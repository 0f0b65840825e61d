//! Generated text logs in the log4j / logback style, for the `grok` parser's benchmarks and
//! tests.
//!
//! (Frames start with a tab, shown here as spaces.)
//!
//! ```text
//! 2026-01-01 00:00:00,123 INFO  [main] com.example.order.OrderService - Processed order 81234 in 42 ms
//! 2026-01-01 00:00:00,250 ERROR [http-nio-8080-exec-3] com.example.api.PaymentController - Request failed: POST /api/v1/payments
//! java.lang.IllegalStateException: payment provider unavailable
//!     at com.example.payment.ProviderClient.charge(ProviderClient.java:118)
//!     at com.example.payment.PaymentService.pay(PaymentService.java:64)
//! Caused by: java.net.SocketTimeoutException: Read timed out
//!     at java.base/java.net.SocketInputStream.read(SocketInputStream.java:168)
//!     ... 12 more
//! ```
//!
//! The layout is log4j's `%d{ISO8601} %-5p [%t] %c - %m%n`, which the built-in `LOG4J`
//! grok layout reads (with its `record_start`, stack traces stay in their record).
//! Timestamps advance by a few milliseconds per record from 2026-01-01T00:00:00Z; levels,
//! threads, loggers and messages follow fixed, skewed vocabularies; about 2% of records are
//! errors with a multi-line Java stack trace (`\tat ...` frames, sometimes a `Caused by:`
//! section and `\t... N more`).

use crate::rng::Rng;

const THREADS: &[&str] = &[
    "main",
    "http-nio-8080-exec-1",
    "http-nio-8080-exec-2",
    "http-nio-8080-exec-3",
    "pool-1-thread-1",
    "pool-1-thread-2",
    "scheduler-1",
    "kafka-consumer-0",
];

const LOGGERS: &[&str] = &[
    "com.example.order.OrderService",
    "com.example.api.PaymentController",
    "com.example.inventory.StockRepository",
    "com.example.auth.TokenFilter",
    "org.hibernate.SQL",
    "org.springframework.web.servlet.DispatcherServlet",
    "com.zaxxer.hikari.pool.HikariPool",
];

const PATHS: &[&str] = &[
    "/api/v1/orders",
    "/api/v1/payments",
    "/api/v1/items",
    "/health",
    "/api/v1/users/me",
];

const EXCEPTIONS: &[(&str, &str)] = &[
    (
        "java.lang.IllegalStateException",
        "payment provider unavailable",
    ),
    ("java.lang.NullPointerException", "customer is null"),
    (
        "org.springframework.dao.DataAccessResourceFailureException",
        "could not acquire connection",
    ),
    ("java.util.concurrent.TimeoutException", "deadline exceeded"),
];

const CAUSES: &[(&str, &str)] = &[
    ("java.net.SocketTimeoutException", "Read timed out"),
    (
        "java.sql.SQLTransientConnectionException",
        "HikariPool-1 - Connection is not available",
    ),
    ("java.io.IOException", "Broken pipe"),
];

const FRAMES: &[(&str, &str, &str)] = &[
    (
        "com.example.payment.ProviderClient",
        "charge",
        "ProviderClient.java",
    ),
    (
        "com.example.payment.PaymentService",
        "pay",
        "PaymentService.java",
    ),
    (
        "com.example.api.PaymentController",
        "create",
        "PaymentController.java",
    ),
    (
        "com.example.order.OrderService",
        "place",
        "OrderService.java",
    ),
    (
        "com.example.inventory.StockRepository",
        "reserve",
        "StockRepository.java",
    ),
    (
        "org.springframework.web.servlet.FrameworkServlet",
        "service",
        "FrameworkServlet.java",
    ),
    (
        "java.base/java.net.SocketInputStream",
        "read",
        "SocketInputStream.java",
    ),
    ("java.base/java.lang.Thread", "run", "Thread.java"),
];

/// Picks an element, the first ones more often (a cheap skew: the minimum of two draws).
fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    let n = items.len() as u32;
    let i = rng.below(n).min(rng.below(n));
    &items[i as usize]
}

/// Appends `2026-01-01 00:00:00,123` for `millis` since the epoch.
fn push_ts(out: &mut Vec<u8>, millis: i64) {
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    out.extend_from_slice(
        format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02},{ms:03}",
            tod / 3600,
            tod / 60 % 60,
            tod % 60
        )
        .as_bytes(),
    );
}

fn push_frames(rng: &mut Rng, out: &mut Vec<u8>, count: u64) {
    for _ in 0..count {
        let (class, method, file) = pick(rng, FRAMES);
        let line = rng.between(20, 400);
        out.extend_from_slice(format!("\tat {class}.{method}({file}:{line})\n").as_bytes());
    }
}

/// `records` log4j records generated from `seed`; the same arguments always give the same
/// bytes. `records` counts records, not lines: an error record with a stack trace spans
/// several lines (each ends with `\n`).
pub fn log4j(seed: u64, records: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(records * 120);
    let mut clock: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z, in ms
    for _ in 0..records {
        clock += rng.between(0, 40) as i64;
        push_ts(&mut out, clock);
        let u = rng.unit();
        let level = match u {
            _ if u < 0.02 => "ERROR",
            _ if u < 0.07 => "WARN ",
            _ if u < 0.20 => "DEBUG",
            _ => "INFO ",
        };
        let thread = pick(&mut rng, THREADS);
        let logger = pick(&mut rng, LOGGERS);
        out.extend_from_slice(format!(" {level} [{thread}] {logger} - ").as_bytes());
        match level {
            "ERROR" => {
                let path = pick(&mut rng, PATHS);
                out.extend_from_slice(format!("Request failed: POST {path}\n").as_bytes());
                let (ex, msg) = pick(&mut rng, EXCEPTIONS);
                out.extend_from_slice(format!("{ex}: {msg}\n").as_bytes());
                let frames = rng.between(2, 8);
                push_frames(&mut rng, &mut out, frames);
                if rng.chance(0.5) {
                    let (cause, msg) = pick(&mut rng, CAUSES);
                    out.extend_from_slice(format!("Caused by: {cause}: {msg}\n").as_bytes());
                    let frames = rng.between(1, 4);
                    push_frames(&mut rng, &mut out, frames);
                    let more = rng.between(3, 40);
                    out.extend_from_slice(format!("\t... {more} more\n").as_bytes());
                }
            }
            "WARN " => {
                let ms = rng.between(500, 5000);
                let path = pick(&mut rng, PATHS);
                out.extend_from_slice(format!("Slow request GET {path} took {ms} ms\n").as_bytes());
            }
            "DEBUG" => {
                let id = rng.between(1, 99_999);
                out.extend_from_slice(
                    format!("select o.id, o.status from orders o where o.id={id}\n").as_bytes(),
                );
            }
            _ => {
                let id = rng.between(10_000, 99_999);
                let ms = rng.between(1, 250);
                out.extend_from_slice(format!("Processed order {id} in {ms} ms\n").as_bytes());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_with_stack_traces() {
        let a = log4j(7, 2000);
        assert_eq!(a, log4j(7, 2000));
        assert_ne!(a, log4j(8, 2000));
        let text = String::from_utf8(a).unwrap();
        let starts = text.lines().filter(|l| l.starts_with("2026-")).count();
        assert_eq!(starts, 2000);
        assert!(text.contains("\tat com.example."));
        assert!(text.contains("Caused by: "));
        assert!(text.lines().count() > 2000);
        assert!(text.starts_with("2026-01-01 00:00:00,"));
    }

    #[test]
    fn timestamps_render_as_civil_dates() {
        let mut out = Vec::new();
        push_ts(&mut out, 951_782_400_123); // 2000-02-29T00:00:00.123Z
        assert_eq!(out, b"2000-02-29 00:00:00,123");
    }
}
