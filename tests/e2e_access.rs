//! End to end, `combined` access logs: random requests in, the table read back with plain
//! `parquet`, compared with an oracle. Timestamps are rendered in random zones with chrono and
//! must come back as the right UTC instant; a record rendered in two zones is one record.

mod common;

use arrow::datatypes::DataType;
use chrono::{DateTime, FixedOffset, Utc};
use common::Val;
use proptest::prelude::*;

/// The request field.
#[derive(Debug, Clone)]
enum Request {
    /// `METHOD PATH PROTOCOL`
    Full(String, String, String),
    /// `METHOD PATH` (HTTP/0.9 style): protocol null.
    NoProtocol(String, String),
    /// `-`: method, path and protocol null.
    Dash,
}

#[derive(Debug, Clone)]
struct Hit {
    ip: String,
    user: Option<String>,
    /// Instant, microseconds since the epoch (whole seconds unless `frac`).
    micros: i64,
    /// Write a 6-digit fraction of a second.
    frac: bool,
    /// Zone offset east of UTC, in minutes, the line is written in.
    offset_min: i32,
    request: Request,
    status: i64,
    bytes: Option<i64>,
    referer: Option<String>,
    /// Verbatim user agent text (escapes included).
    user_agent: Option<String>,
    /// Request time in milliseconds.
    request_time_ms: Option<u32>,
}

const OFFSETS: [i32; 9] = [0, -420, 330, 60, -600, 840, -720, 345, -30];

fn clf_time(micros: i64, offset_min: i32, frac: bool) -> String {
    let utc = DateTime::<Utc>::from_timestamp_micros(micros).unwrap();
    let local = utc.with_timezone(&FixedOffset::east_opt(offset_min * 60).unwrap());
    if frac {
        local.format("%d/%b/%Y:%H:%M:%S%.6f %z").to_string()
    } else {
        local.format("%d/%b/%Y:%H:%M:%S %z").to_string()
    }
}

/// One log line. `offset_min` and `sep` pick among renderings of the same record.
fn render(h: &Hit, offset_min: i32, sep: &str) -> String {
    let req = match &h.request {
        Request::Full(m, p, v) => format!("{m} {p} {v}"),
        Request::NoProtocol(m, p) => format!("{m} {p}"),
        Request::Dash => "-".to_string(),
    };
    let rt = h.request_time_ms.map_or("-".to_string(), |ms| {
        format!("{}.{:03}", ms / 1000, ms % 1000)
    });
    [
        h.ip.clone(),
        "-".into(),
        h.user.clone().unwrap_or_else(|| "-".into()),
        format!("[{}]", clf_time(h.micros, offset_min, h.frac)),
        format!("\"{req}\""),
        h.status.to_string(),
        h.bytes.map_or("-".into(), |b| b.to_string()),
        format!("\"{}\"", h.referer.as_deref().unwrap_or("-")),
        format!("\"{}\"", h.user_agent.as_deref().unwrap_or("-")),
        rt,
    ]
    .join(sep)
}

const COLUMNS: [&str; 13] = [
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
    "request_time",
];

fn natural_type(name: &str) -> DataType {
    match name {
        "ts" => DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
        "status" | "bytes" | "ts_offset" => DataType::Int64,
        "request_time" => DataType::Float64,
        _ => DataType::Utf8,
    }
}

fn row(h: &Hit) -> Vec<Val> {
    let s = |v: &Option<String>| v.clone().map_or(Val::Null, Val::Str);
    let (method, path, protocol) = match &h.request {
        Request::Full(m, p, v) => (Some(m.clone()), Some(p.clone()), Some(v.clone())),
        Request::NoProtocol(m, p) => (Some(m.clone()), Some(p.clone()), None),
        Request::Dash => (None, None, None),
    };
    vec![
        Val::Str(h.ip.clone()),
        Val::Null,
        s(&h.user),
        Val::Ts(h.micros),
        Val::Int(i64::from(h.offset_min)),
        s(&method),
        s(&path),
        s(&protocol),
        Val::Int(h.status),
        h.bytes.map_or(Val::Null, Val::Int),
        s(&h.referer),
        s(&h.user_agent),
        h.request_time_ms.map_or(Val::Null, |ms| {
            Val::Float(
                format!("{}.{:03}", ms / 1000, ms % 1000)
                    .parse::<f64>()
                    .unwrap(),
            )
        }),
    ]
}

fn oracle(hits: &[Hit]) -> common::FileRows {
    let rows: Vec<Vec<Val>> = hits.iter().map(row).collect();
    let columns: Vec<common::Column> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let typed = rows.iter().any(|r| !r[i].is_null());
            let t = if typed {
                natural_type(n)
            } else {
                DataType::Utf8
            };
            (n.to_string(), t)
        })
        .collect();
    // status, path, then the rest in schema order
    let mut order = vec![8usize, 6];
    order.extend((0..COLUMNS.len()).filter(|i| ![8, 6].contains(i)));
    let mut rows = rows;
    rows.sort_by_key(|r| order.iter().map(|&i| r[i].clone()).collect::<Vec<_>>());
    rows.dedup();
    common::FileRows { columns, rows }
}

fn user_agent() -> impl Strategy<Value = String> {
    // plain runs, escaped quotes and escaped backslashes; never a lone trailing backslash
    let token = prop_oneof![
        4 => "[A-Za-z0-9 ./();:,_+]{1,8}",
        1 => Just("\\\"".to_string()),
        1 => Just("\\\\".to_string()),
        1 => Just("é東😀".to_string()),
    ];
    proptest::collection::vec(token, 0..6).prop_map(|v| v.concat())
}

fn hit() -> impl Strategy<Value = Hit> {
    let ip = prop_oneof![
        "10\\.0\\.[0-9]{1,2}\\.[0-9]{1,3}",
        Just("::1".to_string()),
        "2001:db8::[0-9a-f]{1,4}",
    ];
    let method = prop_oneof![
        Just("GET"),
        Just("POST"),
        Just("HEAD"),
        Just("DELETE"),
        Just("OPTIONS")
    ]
    .prop_map(str::to_string);
    let path = prop_oneof![
        Just("/".to_string()),
        "/[ab]",
        "/[a-z]{1,6}(/[a-z0-9._~-]{1,5}){0,2}(\\?[a-z]{1,3}=[a-zA-Z0-9%+]{0,6}(&[a-z]=[0-9]{1,2}){0,2})?",
    ];
    let protocol =
        prop_oneof![Just("HTTP/1.0"), Just("HTTP/1.1"), Just("HTTP/2.0")].prop_map(str::to_string);
    let request = prop_oneof![
        8 => (method.clone(), path.clone(), protocol).prop_map(|(m, p, v)| Request::Full(m, p, v)),
        1 => (method, path).prop_map(|(m, p)| Request::NoProtocol(m, p)),
        1 => Just(Request::Dash),
    ];
    // 1900-01-01 .. 2100-01-01, whole seconds; a fraction sometimes
    let time = (
        -2_208_988_800i64..4_102_444_800i64,
        0i64..1_000_000,
        any::<bool>(),
    )
        .prop_map(|(s, us, frac)| (s * 1_000_000 + if frac { us } else { 0 }, frac));
    let status = prop_oneof![Just(200i64), Just(404), 100i64..600];
    (
        (
            ip,
            proptest::option::of("[a-z]{1,6}"),
            time,
            proptest::sample::select(&OFFSETS[..]),
        ),
        request,
        status,
        proptest::option::of(0i64..100_000),
        proptest::option::of("https://[a-z]{1,5}\\.example/[a-z]{0,4}"),
        proptest::option::of(user_agent()),
        proptest::option::of(0u32..5000),
    )
        .prop_map(
            |((ip, user, (micros, frac), offset_min), request, status, bytes, referer, ua, rt)| {
                Hit {
                    ip,
                    user,
                    micros,
                    frac,
                    offset_min,
                    request,
                    status,
                    bytes,
                    referer,
                    user_agent: ua,
                    request_time_ms: rt,
                }
            },
        )
}

/// A copy of an earlier line: (which, verbatim or re-rendered, zone index, where).
type Copy = (usize, bool, usize, usize);

fn run_case(hits: Vec<Hit>, copies: Vec<Copy>, crlf: Vec<bool>) -> Result<(), TestCaseError> {
    let mut lines: Vec<(Hit, String)> = hits
        .iter()
        .map(|h| (h.clone(), render(h, h.offset_min, " ")))
        .collect();
    for (which, verbatim, zone, at) in copies {
        let (mut h, text) = lines[which % lines.len()].clone();
        let text = if verbatim {
            text
        } else {
            // the same instant in another zone, with wider gaps between fields: the same
            // instant, but another row (the written offset is kept in `ts_offset`)
            h.offset_min = OFFSETS[zone % OFFSETS.len()];
            render(&h, h.offset_min, "  ")
        };
        let pos = at % (lines.len() + 1);
        lines.insert(pos, (h, text));
    }
    let mut input = String::new();
    for (i, (_, text)) in lines.iter().enumerate() {
        input.push_str(text);
        input.push_str(if crlf[i % crlf.len()] { "\r\n" } else { "\n" });
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("access.log"), &input).unwrap();
    let job = common::write_job(
        dir.path(),
        "job.toml",
        &common::job_text(
            &["access.log"],
            "combined",
            "table",
            &["status", "path"],
            "",
        )
        .replace(
            "format = \"combined\"\n",
            "format = \"combined\"\nextra_columns = [\"request_time\"]\n",
        ),
    );
    let report = common::run_job(&job, 2);
    let hits: Vec<Hit> = lines.iter().map(|(h, _)| h.clone()).collect();
    let expect = oracle(&hits);
    let got = common::read_table_ordered(&dir.path().join("table"));

    prop_assert_eq!(report.rejected, 0, "quarantine: {:?}", report.quarantine);
    prop_assert_eq!(report.lines_in, lines.len() as u64);
    prop_assert_eq!(report.rows_out, expect.rows.len() as u64);
    prop_assert_eq!(report.duplicates, (lines.len() - expect.rows.len()) as u64);
    prop_assert_eq!(&got.columns, &expect.columns);
    prop_assert_eq!(got.rows.len(), expect.rows.len());
    for (i, (g, e)) in got.rows.iter().zip(&expect.rows).enumerate() {
        prop_assert_eq!(g, e, "row {} differs; input:\n{}", i, input);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20, ..ProptestConfig::default() })]

    #[test]
    fn access_rows_match_oracle(
        hits in proptest::collection::vec(hit(), 1..30),
        copies in proptest::collection::vec((any::<usize>(), any::<bool>(), any::<usize>(), any::<usize>()), 0..15),
        crlf in proptest::collection::vec(any::<bool>(), 1..6),
    ) {
        run_case(hits, copies, crlf)?;
    }
}

/// Known instants in the zones of the list, checked against literal UTC values (not only
/// against chrono), across a day, month and year boundary.
#[test]
fn access_timestamps_are_utc() {
    let cases = [
        // (line's time, expected UTC)
        ("31/Dec/1999:23:30:00 -0700", "2000-01-01T06:30:00Z"),
        ("01/Jan/2000:05:00:00 +0530", "1999-12-31T23:30:00Z"),
        ("29/Feb/2024:23:59:59 -0000", "2024-02-29T23:59:59Z"),
        ("01/Mar/2024:00:00:00 +1400", "2024-02-29T10:00:00Z"),
        ("10/Oct/2000:13:55:36 -0700", "2000-10-10T20:55:36Z"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut input = String::new();
    for (i, (t, _)) in cases.iter().enumerate() {
        input.push_str(&format!(
            "10.0.0.{i} - - [{t}] \"GET /x HTTP/1.1\" 200 1 \"-\" \"ua\" 0.001\n"
        ));
    }
    std::fs::write(dir.path().join("a.log"), input).unwrap();
    let job = common::write_job(
        dir.path(),
        "job.toml",
        &common::job_text(&["a.log"], "combined", "table", &["ip"], ""),
    );
    let report = common::run_job(&job, 1);
    assert_eq!(report.rows_out, cases.len() as u64);
    let got = common::read_table_ordered(&dir.path().join("table"));
    let ts = got.columns.iter().position(|(n, _)| n == "ts").unwrap();
    let extra = got.columns.iter().position(|(n, _)| n == "extra_1");
    assert!(extra.is_some(), "trailing field without a name is extra_1");
    for (i, (t, want)) in cases.iter().enumerate() {
        let want = DateTime::parse_from_rfc3339(want)
            .unwrap()
            .timestamp_micros();
        assert_eq!(got.rows[i][ts], Val::Ts(want), "{t}");
    }
}
