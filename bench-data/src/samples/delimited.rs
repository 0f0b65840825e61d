//! Generated delimited logs: CSV with a header line and RFC 4180 quoting, and Zeek ASCII logs
//! with their directive header.
//!
//! `lines` counts records, after the header. A CSV record whose quoted field holds a newline
//! spans two physical lines, as in real exports; Zeek records are one line each, and the file
//! ends with Zeek's `#close` directive.

use crate::rng::Rng;

/// First event time: 2026-01-01T00:00:00Z, in seconds.
const START_S: u64 = 1_767_225_600;

const LEVELS: &[&str] = &["INFO", "INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG"];
const COMPONENTS: &[&str] = &[
    "dfs.DataNode$PacketResponder",
    "dfs.FSNamesystem",
    "sshd",
    "api.gateway",
    "billing",
    "auth",
];
const MESSAGES: &[&str] = &[
    "PacketResponder 1 for block blk_{n} terminating",
    "Received block blk_{n} of size 67108864 from /10.250.{o}.{o}",
    "Invalid user admin from 173.234.{o}.{o}",
    "user \"{w}\" logged in, session {n}",
    "payment failed: card declined, retry {o}",
    "slow query: SELECT * FROM t WHERE id = {n}\ncontinued on the next line",
    "café order #{n} ready",
];
const WORDS: &[&str] = &["alice", "bob", "o'brien", "zoë", "root", "svc-backup"];

/// Renders a CSV field, quoting it (with `""`) when it holds a comma, quote or newline.
fn push_csv_field(out: &mut Vec<u8>, v: &str) {
    if v.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(v.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(v.as_bytes());
    }
}

fn fill(template: &str, rng: &mut Rng) -> String {
    let mut s = template.to_string();
    while let Some(i) = s.find("{n}") {
        s.replace_range(
            i..i + 3,
            &format!("{:012}", rng.next_u64() % 1_000_000_000_000),
        );
    }
    while let Some(i) = s.find("{o}") {
        s.replace_range(i..i + 3, &rng.below(256).to_string());
    }
    while let Some(i) = s.find("{w}") {
        s.replace_range(i..i + 3, WORDS[rng.below(WORDS.len() as u32) as usize]);
    }
    s
}

/// `lines` CSV records after the header `id,ts,level,component,pid,latency_ms,message,tags`:
/// ISO timestamps, a few empty (null) fields, messages with embedded commas, quotes and the
/// occasional newline.
pub fn csv(seed: u64, lines: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = b"id,ts,level,component,pid,latency_ms,message,tags\n".to_vec();
    let mut t = START_S * 1000;
    for id in 1..=lines {
        t += rng.between(0, 40);
        let ts = chrono::DateTime::from_timestamp_millis(t as i64).unwrap_or_default();
        out.extend_from_slice(format!("{id},{}", ts.format("%Y-%m-%dT%H:%M:%S%.3fZ")).as_bytes());
        out.push(b',');
        out.extend_from_slice(LEVELS[rng.below(LEVELS.len() as u32) as usize].as_bytes());
        out.push(b',');
        push_csv_field(
            &mut out,
            COMPONENTS[rng.below(COMPONENTS.len() as u32) as usize],
        );
        out.push(b',');
        out.extend_from_slice(rng.between(100, 40_000).to_string().as_bytes());
        out.push(b',');
        if !rng.chance(0.05) {
            let ms = rng.unit() * 250.0;
            out.extend_from_slice(format!("{ms:.3}").as_bytes());
        }
        out.push(b',');
        let m = fill(
            MESSAGES[rng.below(MESSAGES.len() as u32) as usize],
            &mut rng,
        );
        push_csv_field(&mut out, &m);
        out.push(b',');
        match rng.below(4) {
            0 => {}
            1 => out.extend_from_slice(b"prod"),
            2 => push_csv_field(&mut out, "prod,eu-west-1"),
            _ => out.extend_from_slice(b"\"\""),
        }
        out.push(b'\n');
    }
    out
}

const WEIRD: &[&str] = &[
    "TCP_ack_underflow_or_misorder",
    "above_hole_data_without_any_acks",
    "connection_originator_SYN_ack",
    "bad_HTTP_request",
    "unknown_HTTP_method",
    "dns_unmatched_reply",
    "possible_split_routing",
];

/// `lines` Zeek `weird.log`-style records with the full directive header and `#close`:
/// `time`, `string`, `addr`, `port`, `bool`, `interval`, `set[string]` fields, with unset
/// (`-`) and empty (`(empty)`) values.
pub fn zeek(seed: u64, lines: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    out.extend_from_slice(
        b"#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tweird\n#open\t2026-01-01-00-00-00\n",
    );
    out.extend_from_slice(
        b"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tname\taddl\tnotice\tduration\ttags\tpeer\n",
    );
    out.extend_from_slice(
        b"#types\ttime\tstring\taddr\tport\taddr\tport\tstring\tstring\tbool\tinterval\tset[string]\tstring\n",
    );
    let mut us = START_S * 1_000_000;
    for _ in 0..lines {
        us += rng.between(0, 200_000);
        let uid: String = (0..17)
            .map(|i| {
                const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                if i == 0 {
                    'C'
                } else {
                    A[rng.below(A.len() as u32) as usize] as char
                }
            })
            .collect();
        let addl = match rng.below(5) {
            0 => "PRI",
            1 => "(empty)",
            _ => "-",
        };
        let tags = match rng.below(4) {
            0 => "-",
            1 => "(empty)",
            2 => "scan",
            _ => "scan,http",
        };
        let duration = if rng.chance(0.3) {
            "-".to_string()
        } else {
            format!("{:.6}", rng.unit() * 30.0)
        };
        let line = format!(
            "{}.{:06}\t{uid}\t10.47.{}.{}\t{}\t{}.{}.{}.{}\t{}\t{}\t{addl}\t{}\t{duration}\t{tags}\tzeek\n",
            us / 1_000_000,
            us % 1_000_000,
            rng.below(32),
            rng.below(256),
            rng.between(1024, 65535),
            rng.between(1, 223),
            rng.below(256),
            rng.below(256),
            rng.between(1, 254),
            [80, 443, 8080, 53, 22][rng.below(5) as usize],
            WEIRD[rng.below(WEIRD.len() as u32) as usize],
            if rng.chance(0.1) { "T" } else { "F" },
        );
        out.extend_from_slice(line.as_bytes());
    }
    out.extend_from_slice(b"#close\t2026-01-01-01-00-00\n");
    out
}
