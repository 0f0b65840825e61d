//! Generated AWS access logs: CloudFront (standard log, with its `#Version` / `#Fields:`
//! header), Application Load Balancer, Classic Load Balancer and S3 server access logs, in the
//! layouts AWS documents. `lines` counts records (CloudFront's two directive lines come on
//! top).

use crate::rng::Rng;

/// First event time: 2026-01-01T00:00:00Z, in milliseconds.
const START_MS: i64 = 1_767_225_600_000;

const EDGES: &[&str] = &["SIN2", "FRA56-P1", "IAD89-C1", "LHR61-C2", "NRT57-P2"];
const PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/static/app.3f9a.js",
    "/images/hero%20banner.jpg",
    "/api/v1/items/42",
    "/favicon.ico",
    "/search",
];
const QUERIES: &[&str] = &["-", "-", "q=shoes&page=2", "w=1200&q=90", "utm_source=t.co"];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "curl/8.5.0",
    "aws-sdk-java/1.12.600 Linux/5.10 OpenJDK_64-Bit_Server_VM/17",
    "python-requests/2.31.0",
];
const STATUS: &[u16] = &[200, 200, 200, 200, 200, 304, 301, 404, 403, 500, 502, 503];

fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    items[rng.below(items.len() as u32) as usize]
}

fn ts(ms: i64, fmt: &str) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format(fmt)
        .to_string()
}

fn ip(rng: &mut Rng) -> String {
    format!(
        "{}.{}.{}.{}",
        rng.between(1, 223),
        rng.below(256),
        rng.below(256),
        rng.between(1, 254)
    )
}

fn hex(rng: &mut Rng, n: usize) -> String {
    let mut s = String::with_capacity(n);
    while s.len() < n {
        s.push_str(&format!("{:016x}", rng.next_u64()));
    }
    s.truncate(n);
    s
}

/// `lines` CloudFront standard log records (33 tab-separated fields) after the header.
pub fn cloudfront(seed: u64, lines: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = b"#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end\n".to_vec();
    let mut t = START_MS;
    for _ in 0..lines {
        t += i64::from(rng.below(1500));
        let status = STATUS[rng.below(STATUS.len() as u32) as usize];
        let result = match status {
            200 | 304 if rng.chance(0.7) => "Hit",
            200 | 301 | 304 => "Miss",
            _ => "Error",
        };
        let bytes = rng.between(200, 600_000);
        let taken = rng.unit() * 2.0;
        let ua = pick(&mut rng, AGENTS).replace(' ', "%20");
        let fields = [
            ts(t, "%Y-%m-%d\t%H:%M:%S"),
            pick(&mut rng, EDGES).into(),
            bytes.to_string(),
            ip(&mut rng),
            if rng.chance(0.9) { "GET" } else { "HEAD" }.into(),
            "d111111abcdef8.cloudfront.net".into(),
            pick(&mut rng, PATHS).into(),
            status.to_string(),
            if rng.chance(0.5) {
                "-".into()
            } else {
                "https://www.example.com/".into()
            },
            ua,
            pick(&mut rng, QUERIES).into(),
            "-".into(),
            result.into(),
            format!("{}==", hex(&mut rng, 54)),
            "www.example.com".into(),
            "https".into(),
            rng.between(100, 900).to_string(),
            format!("{taken:.3}"),
            "-".into(),
            "TLSv1.3".into(),
            "TLS_AES_128_GCM_SHA256".into(),
            result.into(),
            "HTTP/2.0".into(),
            "-".into(),
            "-".into(),
            rng.between(1024, 65535).to_string(),
            format!("{:.3}", taken * 0.8),
            result.into(),
            "text/html".into(),
            bytes.to_string(),
            "-".into(),
            "-".into(),
        ];
        out.extend_from_slice(fields.join("\t").as_bytes());
        out.push(b'\n');
    }
    out
}

fn request(rng: &mut Rng, host: &str) -> String {
    let m = if rng.chance(0.85) { "GET" } else { "POST" };
    format!("{m} https://{host}:443{} HTTP/1.1", pick(rng, PATHS))
}

/// `lines` Application Load Balancer records with all 30 documented fields (a few with
/// `-1` processing times and no target, as for 460/502/504 answers).
pub fn alb(seed: u64, lines: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut t = START_MS * 1000;
    for _ in 0..lines {
        t += i64::from(rng.below(400_000));
        let failed = rng.chance(0.03);
        let status = if failed {
            504
        } else {
            STATUS[rng.below(STATUS.len() as u32) as usize]
        };
        let target = format!("10.0.{}.{}:80", rng.below(4), rng.between(10, 200));
        let (target_field, times, tstatus) = if failed {
            ("-".to_string(), "-1 -1 -1".to_string(), "-".to_string())
        } else {
            let times = format!(
                "{:.3} {:.3} {:.3}",
                rng.unit() * 0.002,
                rng.unit() * 0.3,
                rng.unit() * 0.001
            );
            (target.clone(), times, status.to_string())
        };
        let when = ts(t / 1000, "%Y-%m-%dT%H:%M:%S");
        let created = ts(t / 1000 - 30, "%Y-%m-%dT%H:%M:%S%.3f000Z");
        let line = format!(
            "https {when}.{:06}Z app/my-loadbalancer/50dc6c495c0c9188 {}:{} {target_field} {times} {status} {tstatus} {} {} \"{}\" \"{}\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 \"Root=1-{}-{}\" \"www.example.com\" \"arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012\" {} {created} \"forward\" \"-\" \"-\" \"{}\" \"{}\" \"-\" \"-\" TID_{}\n",
            t % 1_000_000,
            ip(&mut rng),
            rng.between(1024, 65535),
            rng.between(100, 900),
            rng.between(0, 80_000),
            request(&mut rng, "www.example.com"),
            pick(&mut rng, AGENTS),
            hex(&mut rng, 8),
            hex(&mut rng, 24),
            rng.between(0, 10),
            if failed { "-".to_string() } else { target.clone() },
            tstatus,
            hex(&mut rng, 32),
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

/// `lines` Classic Load Balancer records (15 fields), a few of them TCP (`"- - - "`).
pub fn elb(seed: u64, lines: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut t = START_MS * 1000;
    for _ in 0..lines {
        t += i64::from(rng.below(400_000));
        let when = format!(
            "{}.{:06}Z",
            ts(t / 1000, "%Y-%m-%dT%H:%M:%S"),
            t % 1_000_000
        );
        let client = format!("{}:{}", ip(&mut rng), rng.between(1024, 65535));
        let backend = format!("10.0.{}.{}:80", rng.below(4), rng.between(10, 200));
        let times = format!(
            "{:.6} {:.6} {:.6}",
            rng.unit() * 0.0002,
            rng.unit() * 0.3,
            rng.unit() * 0.0001
        );
        let line = if rng.chance(0.05) {
            format!(
                "{when} my-loadbalancer {client} {backend} {times} - - {} {} \"- - - \" \"-\" - -\n",
                rng.between(50, 500),
                rng.between(100, 5000)
            )
        } else {
            let status = STATUS[rng.below(STATUS.len() as u32) as usize];
            format!(
                "{when} my-loadbalancer {client} {backend} {times} {status} {status} {} {} \"{}\" \"{}\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2\n",
                rng.between(0, 900),
                rng.between(0, 80_000),
                request(&mut rng, "www.example.com"),
                pick(&mut rng, AGENTS),
            )
        };
        out.extend_from_slice(line.as_bytes());
    }
    out
}

const OPERATIONS: &[&str] = &[
    "REST.GET.OBJECT",
    "REST.GET.OBJECT",
    "REST.PUT.OBJECT",
    "REST.HEAD.OBJECT",
    "REST.GET.BUCKET",
    "REST.GET.LOCATION",
    "BATCH.DELETE.OBJECT",
];
const KEYS: &[&str] = &[
    "logs/2026/01/01/app.log.gz",
    "images/photo%201.jpg",
    "data/part-00000.parquet",
    "backups/db.dump",
    "-",
];

/// `lines` S3 server access log records with all 26 documented fields.
pub fn s3(seed: u64, lines: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let owner = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be";
    let mut t = START_MS;
    for _ in 0..lines {
        t += i64::from(rng.below(3000));
        let op = pick(&mut rng, OPERATIONS);
        let key = if op == "REST.GET.BUCKET" || op == "REST.GET.LOCATION" {
            "-"
        } else {
            pick(&mut rng, KEYS)
        };
        let method = op.split('.').nth(1).unwrap_or("GET");
        let uri = match key {
            "-" => "/awsexamplebucket1?location".to_string(),
            k => format!("/awsexamplebucket1/{k}"),
        };
        let (status, error) = match rng.below(20) {
            0 => (404, "NoSuchKey"),
            1 => (403, "AccessDenied"),
            _ => (200, "-"),
        };
        let size = rng.between(0, 5_000_000);
        let sent = if status == 200 && method == "GET" {
            size.to_string()
        } else {
            "-".to_string()
        };
        let total = rng.between(1, 400);
        let line = format!(
            "{owner} awsexamplebucket1 [{}] {} arn:aws:iam::123456789012:user/alice {} {op} {key} \"{method} {uri} HTTP/1.1\" {status} {error} {sent} {size} {total} {} \"-\" \"{}\" - {}= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader awsexamplebucket1.s3.us-west-1.amazonaws.com TLSv1.2 - {}\n",
            ts(t, "%d/%b/%Y:%H:%M:%S +0000"),
            ip(&mut rng),
            hex(&mut rng, 16).to_uppercase(),
            total / 2,
            pick(&mut rng, AGENTS),
            hex(&mut rng, 75),
            if rng.chance(0.1) { "Yes" } else { "-" },
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}
