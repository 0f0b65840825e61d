//! nginx "combined" access-log lines with a trailing `$request_time`:
//!
//! ```text
//! $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time
//! ```

use std::io;

use crate::rng::{mix64, permute, unit_from, Rng, Weighted};
use crate::text::{push_fixed, push_hex, push_hex_compact, push_u64, ClfCache};
use crate::LineSource;

/// Size of the client IP pool (Zipf-ranked).
const IPS: u64 = 50_000;
/// Catalogue item ids used in paths.
const ITEMS: u64 = 20_000;
const ITEM_ID_BASE: u64 = 1_000;
/// Shop users referenced in API paths.
const USERS: u64 = 30_000;
/// A new frontend build (asset hash) is deployed every 6 hours.
const BUILD_MS: i64 = 6 * 3600 * 1000;

/// What kind of resource a path is; drives method, status, size and latency.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Api,
    Html,
    Static,
    Image,
    Probe,
    Scan,
    Ingest,
}

/// Path templates (Zipf by rank). Placeholders: `{item}`, `{user}`, `{page}`,
/// `{build}`, `{term}`, `{slug}`.
const PATHS: &[(Kind, &str)] = &[
    (Kind::Api, "/api/v1/items/{item}"),
    (Kind::Html, "/"),
    (Kind::Static, "/static/js/app.{build}.js"),
    (Kind::Api, "/api/v1/items/{item}?page={page}"),
    (Kind::Image, "/images/products/{item}.jpg"),
    (Kind::Static, "/static/css/main.{build}.css"),
    (Kind::Api, "/api/v1/users/{user}/cart"),
    (Kind::Html, "/search?q={term}"),
    (Kind::Image, "/favicon.ico"),
    (Kind::Api, "/api/v1/recommendations?user={user}&limit=20"),
    (Kind::Html, "/products/{slug}-{item}"),
    (Kind::Probe, "/health"),
    (Kind::Ingest, "/api/v2/events"),
    (Kind::Static, "/robots.txt"),
    (Kind::Html, "/login"),
    (Kind::Html, "/checkout"),
    (Kind::Scan, "/wp-login.php"),
    (Kind::Scan, "/.env"),
    (Kind::Static, "/sitemap.xml"),
    (
        Kind::Api,
        "/api/v1/items/{item}/reviews?sort=recent&page={page}",
    ),
];

/// URL-encoded search terms; one carries nginx's `\x22` escape for `"`.
const TERMS: &[&str] = &[
    "shoes",
    "running+shoes",
    "red%20dress",
    "caf%C3%A9",
    "laptop",
    "%E6%9D%B1%E4%BA%AC",
    "phone+case",
    "a%26b",
    "\\x22quoted\\x22",
    "gift",
];

const SLUGS: &[&str] = &[
    "trail-runner-2",
    "classic-white-tee",
    "noise-cancelling-headphones",
    "ergonomic-chair",
    "smart-watch-s3",
    "espresso-machine",
    "yoga-mat",
    "backpack-25l",
];

const METHODS_API: &[(&str, f64)] = &[
    ("GET", 88.0),
    ("POST", 6.0),
    ("OPTIONS", 2.0),
    ("PUT", 2.0),
    ("DELETE", 1.0),
    ("PATCH", 1.0),
];
const METHODS_PAGE: &[(&str, f64)] = &[("GET", 97.0), ("HEAD", 3.0)];
const METHODS_LOGIN: &[(&str, f64)] = &[("GET", 70.0), ("POST", 30.0)];

const PROTOCOLS: &[(&str, f64)] = &[("HTTP/1.1", 70.0), ("HTTP/2.0", 27.0), ("HTTP/1.0", 3.0)];

const STATUS_API: &[(u16, f64)] = &[
    (200, 85.0),
    (304, 3.0),
    (404, 3.0),
    (400, 2.0),
    (401, 2.0),
    (500, 2.0),
    (429, 1.0),
    (502, 1.0),
    (503, 1.0),
];
const STATUS_HTML: &[(u16, f64)] = &[
    (200, 88.0),
    (301, 3.0),
    (302, 3.0),
    (304, 3.0),
    (404, 2.0),
    (500, 1.0),
];
const STATUS_STATIC: &[(u16, f64)] = &[(200, 70.0), (304, 25.0), (404, 3.0), (206, 2.0)];
const STATUS_PROBE: &[(u16, f64)] = &[(200, 99.0), (503, 1.0)];
const STATUS_SCAN: &[(u16, f64)] = &[(404, 90.0), (403, 10.0)];
const STATUS_INGEST: &[(u16, f64)] = &[(204, 96.0), (400, 2.0), (413, 1.0), (500, 1.0)];

const REMOTE_USERS: &[&str] = &[
    "alice", "bob", "admin", "deploy", "ci-bot", "j.smith", "monitor",
];

/// Non-UTC `$time_local` offsets (minutes east of UTC) seen on a few servers.
const OFFSETS_MIN: &[i32] = &[120, -300, 330, 540];

const REFERERS: &[&str] = &[
    "https://example.com/",
    "https://www.google.com/",
    "https://example.com/products/",
    "https://example.com/search?q=shoes",
    "https://www.bing.com/",
    "https://t.co/",
    "android-app://com.google.android.gm/",
    "https://example.com/cart",
    "https://duckduckgo.com/",
    "https://example.com/blog/how-to-choose-running-shoes",
];

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "curl/8.5.0",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0",
    "python-requests/2.31.0",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Go-http-client/1.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 OPR/108.0.0.0",
    "Mozilla/5.0 (Linux; Android 14; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "okhttp/4.12.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64; Trident/7.0; rv:11.0) like Gecko",
    "Prometheus/2.51.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Wget/1.21.4",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "-",
];
const PROBE_UA: &str = "kube-probe/1.29";

/// First octets of the synthetic public IPv4 pool.
const FIRST_OCTETS: &[u64] = &[
    45, 66, 73, 81, 89, 93, 98, 104, 142, 151, 176, 185, 188, 195, 203, 212, 217,
];

fn table<T>(items: &[(T, f64)]) -> Weighted {
    Weighted::from_weights(items.iter().map(|i| i.1))
}

/// Renders one access-log line per event.
pub(crate) struct CombinedSource {
    salt: u64,
    ips: Weighted,
    paths: Weighted,
    items: Weighted,
    users: Weighted,
    pages: Weighted,
    terms: Weighted,
    slugs: Weighted,
    builds: Weighted,
    referers: Weighted,
    user_agents: Weighted,
    methods_api: Weighted,
    methods_page: Weighted,
    methods_login: Weighted,
    protocols: Weighted,
    status_api: Weighted,
    status_html: Weighted,
    status_static: Weighted,
    status_probe: Weighted,
    status_scan: Weighted,
    status_ingest: Weighted,
    ts: ClfCache,
}

impl CombinedSource {
    pub(crate) fn new(salt: u64) -> Self {
        Self {
            salt,
            ips: Weighted::zipf(IPS as usize),
            paths: Weighted::zipf(PATHS.len()),
            items: Weighted::zipf(ITEMS as usize),
            users: Weighted::zipf(USERS as usize),
            pages: Weighted::zipf(50),
            terms: Weighted::zipf(TERMS.len()),
            slugs: Weighted::zipf(SLUGS.len()),
            builds: Weighted::zipf(4),
            referers: Weighted::zipf(REFERERS.len()),
            user_agents: Weighted::zipf(USER_AGENTS.len()),
            methods_api: table(METHODS_API),
            methods_page: table(METHODS_PAGE),
            methods_login: table(METHODS_LOGIN),
            protocols: table(PROTOCOLS),
            status_api: table(STATUS_API),
            status_html: table(STATUS_HTML),
            status_static: table(STATUS_STATIC),
            status_probe: table(STATUS_PROBE),
            status_scan: table(STATUS_SCAN),
            status_ingest: table(STATUS_INGEST),
            ts: ClfCache::new(),
        }
    }

    /// Appends the address of pool entry `rank` (stable per rank and seed);
    /// roughly one in 23 clients uses IPv6.
    fn push_ip(&self, buf: &mut Vec<u8>, rank: u64) {
        let h = mix64(self.salt ^ rank.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        if rank % 23 == 5 {
            buf.extend_from_slice(b"2001:db8:");
            push_hex_compact(buf, (h >> 48) & 0xFFFF);
            buf.push(b':');
            push_hex_compact(buf, (h >> 32) & 0xFFFF);
            buf.extend_from_slice(b"::");
            push_hex_compact(buf, h & 0xFFFF);
        } else {
            push_u64(buf, FIRST_OCTETS[(h % FIRST_OCTETS.len() as u64) as usize]);
            buf.push(b'.');
            push_u64(buf, (h >> 8) & 0xFF);
            buf.push(b'.');
            push_u64(buf, (h >> 16) & 0xFF);
            buf.push(b'.');
            push_u64(buf, 1 + (h >> 24) % 254);
        }
    }

    /// Expands a path template.
    fn push_path(&self, rng: &mut Rng, buf: &mut Vec<u8>, template: &str, ts_ms: i64) {
        let mut rest = template.as_bytes();
        while let Some(open) = rest.iter().position(|&b| b == b'{') {
            buf.extend_from_slice(&rest[..open]);
            let close = open + rest[open..].iter().position(|&b| b == b'}').unwrap_or(0);
            match &rest[open + 1..close] {
                b"item" => push_u64(
                    buf,
                    ITEM_ID_BASE + permute(self.items.sample(rng) as u64, ITEMS, self.salt),
                ),
                b"user" => push_u64(
                    buf,
                    1 + permute(self.users.sample(rng) as u64, USERS, self.salt),
                ),
                b"page" => push_u64(buf, 2 + self.pages.sample(rng) as u64),
                b"build" => {
                    // The newest build dominates; older ones linger in caches.
                    let epoch = ts_ms.div_euclid(BUILD_MS) - self.builds.sample(rng) as i64;
                    push_hex(buf, mix64(self.salt ^ epoch as u64), 8);
                }
                b"term" => buf.extend_from_slice(TERMS[self.terms.sample(rng)].as_bytes()),
                _ => buf.extend_from_slice(SLUGS[self.slugs.sample(rng)].as_bytes()),
            }
            rest = &rest[close + 1..];
        }
        buf.extend_from_slice(rest);
    }
}

impl LineSource for CombinedSource {
    // Two requests can render identically; the generator filters those.
    const UNIQUE_BY_CONSTRUCTION: bool = false;

    fn push_line(&mut self, rng: &mut Rng, ts_ms: i64, buf: &mut Vec<u8>) -> io::Result<()> {
        let (kind, template) = PATHS[self.paths.sample(rng)];

        // Client address and user agent (agent mostly stable per client).
        let ua = if kind == Kind::Probe {
            buf.extend_from_slice(b"10.0.");
            push_u64(buf, u64::from(rng.below(4)));
            buf.push(b'.');
            push_u64(buf, 10 + u64::from(rng.below(20)));
            PROBE_UA
        } else {
            let rank = self.ips.sample(rng) as u64;
            self.push_ip(buf, rank);
            let u = if rng.chance(0.85) {
                unit_from(mix64(self.salt ^ rank ^ 0x5555_AAAA))
            } else {
                rng.unit()
            };
            USER_AGENTS[self.user_agents.sample_u(u)]
        };

        buf.extend_from_slice(b" - ");
        if rng.chance(0.03) {
            buf.extend_from_slice(
                REMOTE_USERS[rng.below(REMOTE_USERS.len() as u32) as usize].as_bytes(),
            );
        } else {
            buf.push(b'-');
        }
        buf.extend_from_slice(b" [");
        let offset = if rng.chance(0.03) {
            OFFSETS_MIN[rng.below(OFFSETS_MIN.len() as u32) as usize]
        } else {
            0
        };
        self.ts.push(buf, ts_ms, offset)?;
        buf.extend_from_slice(b"] \"");

        let method = match kind {
            Kind::Api => METHODS_API[self.methods_api.sample(rng)].0,
            Kind::Ingest => "POST",
            Kind::Html if template == "/login" => METHODS_LOGIN[self.methods_login.sample(rng)].0,
            _ => METHODS_PAGE[self.methods_page.sample(rng)].0,
        };
        buf.extend_from_slice(method.as_bytes());
        buf.push(b' ');
        let path_start = buf.len();
        self.push_path(rng, buf, template, ts_ms);
        // A given static resource always has the same size.
        let resource = buf[path_start..].iter().fold(self.salt, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
        });
        buf.push(b' ');
        buf.extend_from_slice(PROTOCOLS[self.protocols.sample(rng)].0.as_bytes());
        buf.extend_from_slice(b"\" ");

        let status = match kind {
            Kind::Api => STATUS_API[self.status_api.sample(rng)].0,
            Kind::Html => STATUS_HTML[self.status_html.sample(rng)].0,
            Kind::Static | Kind::Image => STATUS_STATIC[self.status_static.sample(rng)].0,
            Kind::Probe => STATUS_PROBE[self.status_probe.sample(rng)].0,
            Kind::Scan => STATUS_SCAN[self.status_scan.sample(rng)].0,
            Kind::Ingest => STATUS_INGEST[self.status_ingest.sample(rng)].0,
        };
        push_u64(buf, u64::from(status));
        buf.push(b' ');

        // $body_bytes_sent
        let bytes = match status {
            _ if method == "HEAD" => Some(0),
            304 if rng.chance(0.4) => None,
            304 | 204 => Some(0),
            301 | 302 => Some(rng.between(162, 178)),
            206 => Some(65_536),
            400..=599 => Some(rng.between(150, 600)),
            _ => Some(match kind {
                Kind::Api => 80 + (rng.unit().powi(2) * 12_000.0) as u64,
                Kind::Html => 2_000 + (rng.unit().powi(2) * 60_000.0) as u64,
                Kind::Static => 500 + mix64(resource) % 400_000,
                Kind::Image => 3_000 + mix64(resource) % 250_000,
                Kind::Probe => 2,
                Kind::Scan | Kind::Ingest => 0,
            }),
        };
        match bytes {
            Some(n) => push_u64(buf, n),
            None => buf.push(b'-'),
        }

        buf.extend_from_slice(b" \"");
        if rng.chance(0.7) || kind == Kind::Probe {
            buf.push(b'-');
        } else {
            buf.extend_from_slice(REFERERS[self.referers.sample(rng)].as_bytes());
        }
        buf.extend_from_slice(b"\" \"");
        buf.extend_from_slice(ua.as_bytes());
        buf.extend_from_slice(b"\" ");

        // $request_time in seconds with millisecond resolution.
        let mean_s = match (status, kind) {
            (500..=599, _) => 0.5,
            (_, Kind::Static | Kind::Image | Kind::Probe | Kind::Scan) => 0.002,
            (_, Kind::Api | Kind::Ingest) => 0.045,
            (_, Kind::Html) => 0.08,
        };
        let millis = (rng.exp(mean_s) * 1000.0).round().min(60_000.0) as u64;
        push_fixed(buf, millis, 3);
        buf.push(b'\n');
        Ok(())
    }
}
