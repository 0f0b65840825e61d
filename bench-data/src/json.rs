//! JSON-lines click / playback events of a video streaming service.
//!
//! Key order is fixed; optional keys are omitted in place (never reordered):
//!
//! ```text
//! ts, event_id, event, user_id, session_id, country, [city], device{os, model, app_version},
//! page, referrer, logged_in, [playback{...} | null], [search_query], [error_code],
//! tags[], ab_bucket, [experiment]
//! ```

use std::io;

use crate::rng::{mix64, permute, unit_from, Rng, Weighted};
use crate::text::{push_fixed, push_hex, push_json_str, push_u64, Rfc3339Cache};
use crate::LineSource;

/// Number of distinct users (Zipf-ranked, then permuted to ids).
const USERS: u64 = 100_000;
const USER_ID_BASE: u64 = 100_000;
/// Number of distinct titles (movies / episodes).
const TITLES: u64 = 50_000;
const TITLE_ID_BASE: u64 = 80_000_000;
/// Sessions of one user roll over every 30 minutes.
const SESSION_MS: i64 = 30 * 60 * 1000;

struct EventKind {
    name: &'static str,
    weight: f64,
    /// Carries a `playback` object and a `/watch/<title>` page.
    playback: bool,
}

#[rustfmt::skip]
const EVENTS: &[EventKind] = &[
    EventKind { name: "heartbeat", weight: 30.0, playback: true },
    EventKind { name: "page_view", weight: 22.0, playback: false },
    EventKind { name: "play", weight: 10.0, playback: true },
    EventKind { name: "click", weight: 10.0, playback: false },
    EventKind { name: "pause", weight: 6.0, playback: true },
    EventKind { name: "seek", weight: 5.0, playback: true },
    EventKind { name: "search", weight: 5.0, playback: false },
    EventKind { name: "stop", weight: 4.0, playback: true },
    EventKind { name: "add_to_list", weight: 3.0, playback: false },
    EventKind { name: "error", weight: 1.5, playback: true },
    EventKind { name: "purchase", weight: 0.5, playback: false },
];
const EV_SEARCH: &str = "search";
const EV_ERROR: &str = "error";
const EV_PURCHASE: &str = "purchase";

/// Countries (Zipf by rank) with their cities; includes non-ASCII names.
const COUNTRIES: &[(&str, &[&str])] = &[
    (
        "US",
        &["New York", "Los Angeles", "Chicago", "Houston", "Seattle"],
    ),
    ("IN", &["Mumbai", "Bengaluru", "Delhi"]),
    ("BR", &["São Paulo", "Rio de Janeiro", "Belo Horizonte"]),
    ("GB", &["London", "Manchester", "Edinburgh"]),
    ("DE", &["Berlin", "München", "Köln", "Hamburg"]),
    ("JP", &["東京", "大阪", "札幌"]),
    ("FR", &["Paris", "Lyon", "Marseille"]),
    ("MX", &["Ciudad de México", "Guadalajara"]),
    ("CA", &["Toronto", "Montréal", "Vancouver"]),
    ("KR", &["서울", "부산"]),
    ("ES", &["Madrid", "Barcelona", "A Coruña"]),
    ("IT", &["Roma", "Milano"]),
    ("AU", &["Sydney", "Melbourne"]),
    ("NL", &["Amsterdam", "'s-Hertogenbosch"]),
    ("PL", &["Warszawa", "Kraków", "Łódź"]),
    ("TR", &["İstanbul", "Ankara"]),
    ("SE", &["Stockholm", "Göteborg"]),
    ("AR", &["Buenos Aires", "Córdoba"]),
    ("EG", &["القاهرة"]),
    ("ZA", &["Cape Town", "Johannesburg"]),
];

/// `(os, model)`; some model names need JSON escaping.
const DEVICES: &[(&str, &str)] = &[
    ("android", "SM-S911B"),
    ("ios", "iPhone15,2"),
    ("web", "Chrome 124"),
    ("tvos", "AppleTV14,1"),
    ("android", "Pixel 8"),
    ("roku", "Roku Ultra 4800X"),
    ("ios", "iPhone14,5"),
    ("web", "Safari 17.4"),
    ("tizen", "Samsung QN90C 65\""),
    ("android_tv", "BRAVIA XR \"A80L\""),
    ("webos", "LG OLED55C3"),
    ("ios", "iPad13,18"),
    ("web", "Firefox 125"),
    ("android", "Redmi Note 12"),
    ("web", "Edge 124"),
    ("fire_tv", "AFTKA"),
];

/// Page templates for non-playback events; `{t}` title id, `{g}` genre,
/// `{s}` season number.
const PAGES: &[&str] = &[
    "/browse",
    "/title/{t}",
    "/",
    "/browse/genre/{g}",
    "/my-list",
    "/title/{t}/episodes?season={s}",
    "/account",
    "/kids",
    "/settings/playback",
    "/search",
];

const GENRES: &[&str] = &[
    "action",
    "comedy",
    "drama",
    "documentary",
    "kids",
    "horror",
    "sci-fi",
    "romance",
    "anime",
    "thriller",
    "true-crime",
    "stand-up",
];

/// Referrers; a few need escaping (quote, backslashes) or carry non-ASCII.
const REFERRERS: &[&str] = &[
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://t.co/Xa7bQ2",
    "https://www.facebook.com/",
    "android-app://com.google.android.googlequicksearchbox/",
    "https://duckduckgo.com/",
    "https://www.reddit.com/r/television/",
    "https://news.example.com/reviews/\"the-best\"-shows-2025",
    "https://l.instagram.com/?u=https%3A%2F%2Fexample.com",
    "https://search.yahoo.co.jp/search?p=東京",
    "file:///C:\\Users\\Public\\link.html",
];

/// Search queries: quotes, backslashes, control characters, non-ASCII.
const QUERIES: &[&str] = &[
    "stranger things",
    "the office",
    "\"exact phrase\"",
    "documentaries about space",
    "café society",
    "東京 ラーメン",
    "c:\\users\\me",
    "naïve",
    "tab\tseparated",
    "línea\nnueva",
    "emoji 🎬 night",
    "bell\u{7}",
];

const TAGS: &[&str] = &[
    "hd",
    "4k",
    "subtitles",
    "hdr",
    "new",
    "trending",
    "dubbed",
    "top10",
    "kids",
    "dolby_atmos",
    "autoplay",
    "offline",
];

const BITRATES_KBPS: &[(u64, f64)] = &[
    (3000, 30.0),
    (4300, 20.0),
    (2350, 15.0),
    (5800, 12.0),
    (1750, 8.0),
    (8000, 6.0),
    (1050, 4.0),
    (750, 2.0),
    (16000, 1.5),
    (560, 1.0),
    (375, 0.5),
    (235, 0.2),
];

const CDNS: &[&str] = &[
    "edge-iad-12",
    "edge-fra-03",
    "edge-gru-01",
    "edge-lhr-02",
    "edge-nrt-07",
    "edge-bom-05",
    "edge-syd-01",
];

/// Renders one JSON object per line.
pub(crate) struct JsonSource {
    salt: u64,
    events: Weighted,
    users: Weighted,
    titles: Weighted,
    countries: Weighted,
    devices: Weighted,
    pages: Weighted,
    genres: Weighted,
    referrers: Weighted,
    queries: Weighted,
    tags: Weighted,
    bitrates: Weighted,
    cdns: Weighted,
    ts: Rfc3339Cache,
}

impl JsonSource {
    pub(crate) fn new(salt: u64) -> Self {
        Self {
            salt,
            events: Weighted::from_weights(EVENTS.iter().map(|e| e.weight)),
            users: Weighted::zipf(USERS as usize),
            titles: Weighted::zipf(TITLES as usize),
            countries: Weighted::zipf(COUNTRIES.len()),
            devices: Weighted::zipf(DEVICES.len()),
            pages: Weighted::zipf(PAGES.len()),
            genres: Weighted::zipf(GENRES.len()),
            referrers: Weighted::zipf(REFERRERS.len()),
            queries: Weighted::zipf(QUERIES.len()),
            tags: Weighted::zipf(TAGS.len()),
            bitrates: Weighted::from_weights(BITRATES_KBPS.iter().map(|b| b.1)),
            cdns: Weighted::zipf(CDNS.len()),
            ts: Rfc3339Cache::new(),
        }
    }

    fn title_id(&self, rng: &mut Rng) -> u64 {
        TITLE_ID_BASE + permute(self.titles.sample(rng) as u64, TITLES, self.salt)
    }

    fn push_page(&self, rng: &mut Rng, buf: &mut Vec<u8>) {
        let template = PAGES[self.pages.sample(rng)];
        let mut rest = template.as_bytes();
        while let Some(open) = rest.iter().position(|&b| b == b'{') {
            buf.extend_from_slice(&rest[..open]);
            match rest[open + 1] {
                b't' => push_u64(buf, self.title_id(rng)),
                b'g' => buf.extend_from_slice(GENRES[self.genres.sample(rng)].as_bytes()),
                _ => push_u64(buf, 1 + u64::from(rng.below(8))),
            }
            rest = &rest[open + 3..];
        }
        buf.extend_from_slice(rest);
    }
}

impl LineSource for JsonSource {
    // Every line carries a fresh random 128-bit event_id.
    const UNIQUE_BY_CONSTRUCTION: bool = true;

    fn push_line(&mut self, rng: &mut Rng, ts_ms: i64, buf: &mut Vec<u8>) -> io::Result<()> {
        let ev = &EVENTS[self.events.sample(rng)];
        let user_id = USER_ID_BASE + permute(self.users.sample(rng) as u64, USERS, self.salt);
        // Stable per-user attributes (country, device, bucket, ...).
        let uh = mix64(self.salt ^ user_id.wrapping_mul(0xA24B_AED4_963E_E407));

        buf.extend_from_slice(b"{\"ts\":\"");
        self.ts.push(buf, ts_ms)?;
        buf.extend_from_slice(b"\",\"event_id\":\"");
        push_hex(buf, rng.next_u64(), 16);
        push_hex(buf, rng.next_u64(), 16);
        buf.extend_from_slice(b"\",\"event\":\"");
        buf.extend_from_slice(ev.name.as_bytes());
        buf.extend_from_slice(b"\",\"user_id\":");
        push_u64(buf, user_id);
        buf.extend_from_slice(b",\"session_id\":\"");
        let session_epoch = ts_ms.div_euclid(SESSION_MS) as u64;
        push_hex(
            buf,
            mix64(uh ^ session_epoch.wrapping_mul(0x9FB2_1C65_1E98_DF25)),
            16,
        );

        let (country, cities) = COUNTRIES[self.countries.sample_u(unit_from(uh))];
        buf.extend_from_slice(b"\",\"country\":\"");
        buf.extend_from_slice(country.as_bytes());
        buf.push(b'"');
        let ch = mix64(uh ^ 0xC1);
        if !ch.is_multiple_of(10) {
            buf.extend_from_slice(b",\"city\":");
            push_json_str(buf, cities[((ch >> 8) % cities.len() as u64) as usize]);
        }

        let dh = mix64(uh ^ 0xD3);
        let (os, model) = DEVICES[self.devices.sample_u(unit_from(dh))];
        buf.extend_from_slice(b",\"device\":{\"os\":\"");
        buf.extend_from_slice(os.as_bytes());
        buf.extend_from_slice(b"\",\"model\":");
        push_json_str(buf, model);
        buf.extend_from_slice(b",\"app_version\":");
        if os == "web" {
            buf.extend_from_slice(b"null");
        } else {
            buf.extend_from_slice(b"\"4.");
            push_u64(buf, (dh >> 20) % 13);
            buf.push(b'.');
            push_u64(buf, (dh >> 28) % 4);
            buf.push(b'"');
        }
        buf.extend_from_slice(b"},\"page\":\"");
        let title = if ev.playback {
            let title = self.title_id(rng);
            buf.extend_from_slice(b"/watch/");
            push_u64(buf, title);
            Some(title)
        } else {
            match ev.name {
                EV_SEARCH => buf.extend_from_slice(b"/search"),
                EV_PURCHASE => buf.extend_from_slice(b"/checkout/confirm"),
                _ => self.push_page(rng, buf),
            }
            None
        };
        buf.extend_from_slice(b"\",\"referrer\":");
        if rng.chance(0.55) {
            buf.extend_from_slice(b"null");
        } else {
            push_json_str(buf, REFERRERS[self.referrers.sample(rng)]);
        }
        buf.extend_from_slice(b",\"logged_in\":");
        buf.extend_from_slice(if !(uh >> 40).is_multiple_of(5) {
            b"true"
        } else {
            b"false"
        });

        if let Some(title) = title {
            let duration_s = 600 + mix64(self.salt ^ title) % 7200;
            buf.extend_from_slice(b",\"playback\":{\"position_s\":");
            push_fixed(buf, rng.between(0, duration_s * 10), 1);
            buf.extend_from_slice(b",\"duration_s\":");
            push_u64(buf, duration_s);
            buf.extend_from_slice(b",\"bitrate_kbps\":");
            push_u64(buf, BITRATES_KBPS[self.bitrates.sample(rng)].0);
            buf.extend_from_slice(b",\"buffering\":");
            buf.extend_from_slice(if rng.chance(0.04) { b"true" } else { b"false" });
            buf.extend_from_slice(b",\"volume\":");
            if rng.chance(0.2) {
                buf.extend_from_slice(b"null");
            } else {
                push_fixed(buf, rng.between(0, 100), 2);
            }
            buf.extend_from_slice(b",\"cdn\":\"");
            buf.extend_from_slice(CDNS[self.cdns.sample(rng)].as_bytes());
            buf.extend_from_slice(b"\"}");
        } else if rng.chance(0.5) {
            buf.extend_from_slice(b",\"playback\":null");
        }
        if ev.name == EV_SEARCH {
            buf.extend_from_slice(b",\"search_query\":");
            push_json_str(buf, QUERIES[self.queries.sample(rng)]);
        }
        if ev.name == EV_ERROR {
            buf.extend_from_slice(b",\"error_code\":");
            push_u64(buf, 1000 + u64::from(rng.below(40)));
        }

        buf.extend_from_slice(b",\"tags\":[");
        for i in 0..rng.below(4) {
            if i > 0 {
                buf.push(b',');
            }
            buf.push(b'"');
            buf.extend_from_slice(TAGS[self.tags.sample(rng)].as_bytes());
            buf.push(b'"');
        }
        buf.extend_from_slice(b"],\"ab_bucket\":");
        push_u64(buf, (uh >> 48) % 16);
        if rng.chance(0.3) {
            buf.extend_from_slice(b",\"experiment\":\"exp_");
            push_u64(buf, u64::from(rng.below(40)));
            buf.push(b'"');
        }
        buf.extend_from_slice(b"}\n");
        Ok(())
    }
}
