//! AWS access logs: CloudFront (standard), Application Load Balancer, Classic Load Balancer
//! and S3 server access logs.
//!
//! # Why
//! These are the access logs AWS delivers to S3 in bulk. Their layouts are fixed by AWS but
//! grow new trailing fields every year or two, so files of different ages differ in length;
//! a parser that insists on one length rejects old or new files wholesale. Here every known
//! field gets a typed, documented column, missing trailing fields are null and unknown
//! trailing fields are kept as `extra_N` (1-based among the unknown fields), typed like JSON
//! scalars.
//!
//! # Algorithm
//! CloudFront is a W3C extended log (`#Version` / `#Fields:` directives, then tab-separated
//! fields) and is read by [`crate::delimited`] with CloudFront's types (see its docs; without
//! a `#Fields:` directive the documented field list [`crate::delimited::CLOUDFRONT_FIELDS`] is
//! used, leniently). ALB, ELB and S3 lines are space-separated fields, some in `"quotes"` (S3's
//! time in `[brackets]`), walked once with a small cursor, left to right, against a static
//! table of field specs:
//!
//! ```text
//! http 2019-10-11T15:01:12.376735Z app/lb/c86a 77.227.156.41:56398 10.0.0.192:80 -1 -1 -1 460 - ... "GET http://h:80/ HTTP/1.1" ...
//! └type└ts                         └elb        └client_ip:client_port └target_ip:port └times └status   └method url protocol
//! ```
//! Each value is pushed as a span of the chunk (no copy, no allocation per line).
//!
//! # Column rules (ALB, ELB, S3)
//! - `-` (quoted or not) is null in every field.
//! - `ip:port` fields split into `<x>_ip` (string; IPv6 brackets dropped) and `<x>_port`
//!   (int); `-` makes both null.
//! - The quoted request splits at its first and last space into `method`, `url` (ALB, ELB:
//!   absolute, as written) or `path` (S3), and `protocol`; `"- - - "` (TCP listeners) or `"-"`
//!   makes all three null; a request that does not split that way is kept whole in
//!   `url`/`path`.
//! - Processing times are typed as written: `-1` is an int, `0.000` a float (a column mixing
//!   both is a float).
//! - Quoted strings are kept verbatim (backslash escapes included).
//!
//! ## ALB (`alb`), 30 known fields, at least 18 required
//! | field | column(s) | type |
//! |---|---|---|
//! | type | `type` | string |
//! | time | `ts` | timestamp (ISO 8601, UTC) |
//! | elb | `elb` | string |
//! | client:port | `client_ip`, `client_port` | string, int |
//! | target:port | `target_ip`, `target_port` | string, int |
//! | request_processing_time | `request_processing_time` | float (or int) |
//! | target_processing_time | `target_processing_time` | float (or int) |
//! | response_processing_time | `response_processing_time` | float (or int) |
//! | elb_status_code | `elb_status_code` | int |
//! | target_status_code | `target_status_code` | int |
//! | received_bytes | `received_bytes` | int |
//! | sent_bytes | `sent_bytes` | int |
//! | "request" | `method`, `url`, `protocol` | string |
//! | "user_agent" | `user_agent` | string |
//! | ssl_cipher | `ssl_cipher` | string |
//! | ssl_protocol | `ssl_protocol` | string |
//! | target_group_arn | `target_group_arn` | string |
//! | "trace_id" | `trace_id` | string |
//! | "domain_name" | `domain_name` | string |
//! | "chosen_cert_arn" | `chosen_cert_arn` | string |
//! | matched_rule_priority | `matched_rule_priority` | int |
//! | request_creation_time | `request_creation_time` | timestamp |
//! | "actions_executed" | `actions_executed` | string |
//! | "redirect_url" | `redirect_url` | string |
//! | "error_reason" | `error_reason` | string |
//! | "target:port_list" | `target_port_list` | string |
//! | "target_status_code_list" | `target_status_code_list` | string |
//! | "classification" | `classification` | string |
//! | "classification_reason" | `classification_reason` | string |
//! | conn_trace_id | `conn_trace_id` | string |
//!
//! ## Classic ELB (`elb`), 15 known fields, at least 12 required
//! | field | column(s) | type |
//! |---|---|---|
//! | timestamp | `ts` | timestamp (ISO 8601, UTC) |
//! | elb | `elb` | string |
//! | client:port | `client_ip`, `client_port` | string, int |
//! | backend:port | `backend_ip`, `backend_port` | string, int |
//! | request_processing_time | `request_processing_time` | float (or int) |
//! | backend_processing_time | `backend_processing_time` | float (or int) |
//! | response_processing_time | `response_processing_time` | float (or int) |
//! | elb_status_code | `elb_status_code` | int |
//! | backend_status_code | `backend_status_code` | int |
//! | received_bytes | `received_bytes` | int |
//! | sent_bytes | `sent_bytes` | int |
//! | "request" | `method`, `url`, `protocol` | string |
//! | "user_agent" | `user_agent` | string |
//! | ssl_cipher | `ssl_cipher` | string |
//! | ssl_protocol | `ssl_protocol` | string |
//!
//! ## S3 server access log (`s3`), 25 known fields, at least 17 required
//! | field | column(s) | type |
//! |---|---|---|
//! | bucket_owner | `bucket_owner` | string |
//! | bucket | `bucket` | string |
//! | \[time\] | `ts`, `ts_offset` | timestamp (UTC), int (minutes east of UTC, as written) |
//! | remote_ip | `remote_ip` | string |
//! | requester | `requester` | string |
//! | request_id | `request_id` | string |
//! | operation | `operation` | string |
//! | key | `key` | string (URL-encoded, verbatim) |
//! | "request_uri" | `method`, `path`, `protocol` | string |
//! | http_status | `http_status` | int |
//! | error_code | `error_code` | string |
//! | bytes_sent | `bytes_sent` | int |
//! | object_size | `object_size` | int |
//! | total_time | `total_time` | int (ms) |
//! | turn_around_time | `turn_around_time` | int (ms) |
//! | "referer" | `referer` | string |
//! | "user_agent" | `user_agent` | string |
//! | version_id | `version_id` | string |
//! | host_id | `host_id` | string |
//! | signature_version | `signature_version` | string |
//! | cipher_suite | `cipher_suite` | string |
//! | authentication_type | `authentication_type` | string |
//! | host_header | `host_header` | string |
//! | tls_version | `tls_version` | string |
//! | access_point_arn | `access_point_arn` | string |
//! | acl_required | `acl_required` | string |
//!
//! ## CloudFront (`cloudfront`)
//! Columns are the `#Fields:` names normalised by [`crate::delimited::w3c_column_name`]
//! (`x-edge-location` → `x_edge_location`, `cs(User-Agent)` → `cs_user_agent`); `date` and
//! `time` become one UTC timestamp `ts`. `sc_status`, `sc_bytes`, `cs_bytes`, `c_port`,
//! `sc_content_len`, `sc_range_start`, `sc_range_end` and `fle_encrypted_fields` are ints;
//! `time_taken` and `time_to_first_byte` floats; every other field a verbatim string
//! (URL-encoded values stay encoded); `-` is null.
//!
//! # What is rejected
//! A line that is not UTF-8; has fewer than the required fields (`expected at least N
//! fields, found M`); has an unterminated quoted or bracketed field; or has a value that does
//! not fit its column's type (`invalid elb_status_code "abc"`, `invalid ts "..."`). A blank
//! line is rejected by [`crate::parse_chunk`] itself (AWS never writes one; a file that ends
//! with an extra newline shows it as one `blank line` reject, so no line goes uncounted).

use crate::builder::RowsBuilder;
use crate::cursor::Cursor;
use crate::delimited::{json_number_shape, push_inferred, shown, DelimitedParser};
use crate::error::Result;
use crate::{ts, Format, LineParser, ParseOptions};

/// How a field becomes columns.
#[derive(Debug, Clone, Copy)]
enum Spec {
    /// A string.
    Str(&'static str),
    /// An integer.
    Int(&'static str),
    /// A number typed as written (int or float).
    Num(&'static str),
    /// An ISO 8601 timestamp.
    Iso(&'static str),
    /// A bracketed access-log timestamp, with its offset in `<name>_offset`.
    Clf(&'static str, &'static str),
    /// `ip:port`.
    Addr(&'static str, &'static str),
    /// A request line: method, url or path, protocol.
    Request(&'static str, &'static str, &'static str),
}

impl Spec {
    fn push_nulls(self, rows: &mut RowsBuilder) {
        match self {
            Spec::Str(n) | Spec::Int(n) | Spec::Num(n) | Spec::Iso(n) => rows.push_null(n),
            Spec::Clf(a, b) | Spec::Addr(a, b) => {
                rows.push_null(a);
                rows.push_null(b);
            }
            Spec::Request(a, b, c) => {
                rows.push_null(a);
                rows.push_null(b);
                rows.push_null(c);
            }
        }
    }
}

/// ALB fields, in order (see the module docs).
const ALB: [Spec; 30] = [
    Spec::Str("type"),
    Spec::Iso("ts"),
    Spec::Str("elb"),
    Spec::Addr("client_ip", "client_port"),
    Spec::Addr("target_ip", "target_port"),
    Spec::Num("request_processing_time"),
    Spec::Num("target_processing_time"),
    Spec::Num("response_processing_time"),
    Spec::Int("elb_status_code"),
    Spec::Int("target_status_code"),
    Spec::Int("received_bytes"),
    Spec::Int("sent_bytes"),
    Spec::Request("method", "url", "protocol"),
    Spec::Str("user_agent"),
    Spec::Str("ssl_cipher"),
    Spec::Str("ssl_protocol"),
    Spec::Str("target_group_arn"),
    Spec::Str("trace_id"),
    Spec::Str("domain_name"),
    Spec::Str("chosen_cert_arn"),
    Spec::Int("matched_rule_priority"),
    Spec::Iso("request_creation_time"),
    Spec::Str("actions_executed"),
    Spec::Str("redirect_url"),
    Spec::Str("error_reason"),
    Spec::Str("target_port_list"),
    Spec::Str("target_status_code_list"),
    Spec::Str("classification"),
    Spec::Str("classification_reason"),
    Spec::Str("conn_trace_id"),
];
/// ALB lines have had at least these fields since 2016 (through `trace_id`).
const ALB_REQUIRED: usize = 18;

/// Classic ELB fields, in order.
const ELB: [Spec; 15] = [
    Spec::Iso("ts"),
    Spec::Str("elb"),
    Spec::Addr("client_ip", "client_port"),
    Spec::Addr("backend_ip", "backend_port"),
    Spec::Num("request_processing_time"),
    Spec::Num("backend_processing_time"),
    Spec::Num("response_processing_time"),
    Spec::Int("elb_status_code"),
    Spec::Int("backend_status_code"),
    Spec::Int("received_bytes"),
    Spec::Int("sent_bytes"),
    Spec::Request("method", "url", "protocol"),
    Spec::Str("user_agent"),
    Spec::Str("ssl_cipher"),
    Spec::Str("ssl_protocol"),
];
/// Classic ELB lines have at least these fields (through the request).
const ELB_REQUIRED: usize = 12;

/// S3 server access log fields, in order.
const S3: [Spec; 25] = [
    Spec::Str("bucket_owner"),
    Spec::Str("bucket"),
    Spec::Clf("ts", "ts_offset"),
    Spec::Str("remote_ip"),
    Spec::Str("requester"),
    Spec::Str("request_id"),
    Spec::Str("operation"),
    Spec::Str("key"),
    Spec::Request("method", "path", "protocol"),
    Spec::Int("http_status"),
    Spec::Str("error_code"),
    Spec::Int("bytes_sent"),
    Spec::Int("object_size"),
    Spec::Int("total_time"),
    Spec::Int("turn_around_time"),
    Spec::Str("referer"),
    Spec::Str("user_agent"),
    Spec::Str("version_id"),
    Spec::Str("host_id"),
    Spec::Str("signature_version"),
    Spec::Str("cipher_suite"),
    Spec::Str("authentication_type"),
    Spec::Str("host_header"),
    Spec::Str("tls_version"),
    Spec::Str("access_point_arn"),
];
/// S3 lines have had at least these fields for years (through `user_agent`).
const S3_REQUIRED: usize = 17;
/// The 26th S3 field (added 2023), beyond the table above to keep its size readable.
const S3_LAST: Spec = Spec::Str("acl_required");

/// The column names each AWS format produces, in order (CloudFront: for the documented field
/// list without a `#Fields:` directive), for tools and docs.
pub fn columns(format: Format) -> Vec<String> {
    let names = |specs: &[Spec]| -> Vec<String> {
        let mut out = Vec::new();
        for s in specs {
            match *s {
                Spec::Str(n) | Spec::Int(n) | Spec::Num(n) | Spec::Iso(n) => out.push(n),
                Spec::Clf(a, b) | Spec::Addr(a, b) => out.extend([a, b]),
                Spec::Request(a, b, c) => out.extend([a, b, c]),
            }
        }
        out.into_iter().map(str::to_string).collect()
    };
    match format {
        Format::Alb => names(&ALB),
        Format::Elb => names(&ELB),
        Format::S3 => names(&[&S3[..], &[S3_LAST]].concat()),
        Format::Cloudfront => crate::delimited::CLOUDFRONT_FIELDS
            .iter()
            .map(|f| crate::delimited::w3c_column_name(f))
            .filter(|n| n != "time")
            .map(|n| if n == "date" { "ts".to_string() } else { n })
            .collect(),
        _ => Vec::new(),
    }
}

enum Kind {
    Cloudfront(Box<DelimitedParser>),
    Fixed {
        specs: &'static [Spec],
        last: Option<Spec>,
        required: usize,
    },
}

/// The AWS access-log parser (all four formats, chosen by `opts.format`).
pub struct AwsParser {
    kind: Kind,
    extra_names: Vec<String>,
}

impl AwsParser {
    /// A parser for `opts.format` (`cloudfront`, `alb`, `elb` or `s3`; anything else is read
    /// as `alb`).
    pub fn new(opts: &ParseOptions) -> Result<Self> {
        let kind = match opts.format {
            Some(Format::Cloudfront) => Kind::Cloudfront(Box::new(DelimitedParser::new(opts)?)),
            Some(Format::Elb) => Kind::Fixed {
                specs: &ELB,
                last: None,
                required: ELB_REQUIRED,
            },
            Some(Format::S3) => Kind::Fixed {
                specs: &S3,
                last: Some(S3_LAST),
                required: S3_REQUIRED,
            },
            _ => Kind::Fixed {
                specs: &ALB,
                last: None,
                required: ALB_REQUIRED,
            },
        };
        Ok(AwsParser {
            kind,
            extra_names: Vec::new(),
        })
    }
}

/// Pushes the columns of one field.
fn push_field(
    rows: &mut RowsBuilder,
    spec: Spec,
    base: usize,
    off: usize,
    text: &str,
) -> std::result::Result<(), String> {
    let at = base + off;
    if text == "-" {
        spec.push_nulls(rows);
        return Ok(());
    }
    let bad = |name: &str| format!("invalid {name} {:?}", shown(text));
    match spec {
        Spec::Str(n) => rows.push_raw_str(n, at, text.len()),
        Spec::Int(n) => {
            let v: i64 = text.parse().map_err(|_| bad(n))?;
            rows.push_int(n, v, at, text.len());
        }
        Spec::Num(n) => {
            if !json_number_shape(text.as_bytes()) {
                return Err(bad(n));
            }
            rows.push_number(n, text, at);
        }
        Spec::Iso(n) => {
            let micros = ts::parse_iso(text.as_bytes()).ok_or_else(|| bad(n))?;
            rows.push_ts(n, micros, at, text.len());
        }
        Spec::Clf(n, offset) => {
            let (micros, minutes) = ts::parse_clf_tz(text.as_bytes()).ok_or_else(|| bad(n))?;
            rows.push_ts(n, micros, at, text.len());
            // The zone is the text after the last space (`+0000`).
            let z = text.rfind(' ').map_or(text.len(), |i| i + 1);
            match minutes {
                Some(m) => rows.push_int(offset, i64::from(m), at + z, text.len() - z),
                None => rows.push_null(offset),
            }
        }
        Spec::Addr(ip, port) => {
            let (host, p) = match text.rfind(':') {
                // IPv6 without brackets and without a port is not written by AWS; a colon
                // is the port separator.
                Some(i) => (&text[..i], Some((i + 1, &text[i + 1..]))),
                None => (text, None),
            };
            let (hoff, host) = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                Some(h) => (1, h),
                None => (0, host),
            };
            rows.push_raw_str(ip, at + hoff, host.len());
            match p {
                Some((poff, p)) => {
                    let v: i64 = p.parse().map_err(|_| bad(port))?;
                    rows.push_int(port, v, at + poff, p.len());
                }
                None => rows.push_null(port),
            }
        }
        Spec::Request(method, url, protocol) => {
            let req = text.trim_end_matches(' ');
            if req.split(' ').all(|t| t == "-") {
                spec.push_nulls(rows);
                return Ok(());
            }
            match (req.find(' '), req.rfind(' ')) {
                (Some(f), Some(l)) if f < l => {
                    rows.push_raw_str(method, at, f);
                    rows.push_raw_str(url, at + f + 1, l - f - 1);
                    let proto = &req[l + 1..];
                    if proto == "-" {
                        rows.push_null(protocol);
                    } else {
                        rows.push_raw_str(protocol, at + l + 1, proto.len());
                    }
                }
                _ => {
                    rows.push_null(method);
                    rows.push_raw_str(url, at, req.len());
                    rows.push_null(protocol);
                }
            }
        }
    }
    Ok(())
}

impl LineParser for AwsParser {
    fn meta_line(&mut self, line: &[u8]) -> std::result::Result<bool, String> {
        match &mut self.kind {
            Kind::Cloudfront(p) => p.meta_line(line),
            Kind::Fixed { .. } => Ok(false),
        }
    }

    fn parse_line(
        &mut self,
        line: &[u8],
        base: usize,
        rows: &mut RowsBuilder,
    ) -> std::result::Result<(), String> {
        let (specs, last, required) = match &mut self.kind {
            Kind::Cloudfront(p) => return p.parse_line(line, base, rows),
            Kind::Fixed {
                specs,
                last,
                required,
            } => (*specs, *last, *required),
        };
        let s = crate::utf8(line)?;
        let mut c = Cursor::new(s);
        let all = specs.iter().copied().chain(last);
        for (i, spec) in all.enumerate() {
            if c.done() {
                if i < required {
                    return Err(format!("expected at least {required} fields, found {i}"));
                }
                spec.push_nulls(rows);
                continue;
            }
            let (off, text, _) = c.field(i + 1)?;
            if let (Spec::Clf(..), false) = (spec, line.get(off.wrapping_sub(1)) == Some(&b'[')) {
                return Err(format!("expected [time] as field {}", i + 1));
            }
            push_field(rows, spec, base, off, text)?;
        }
        let mut k = 0;
        while !c.done() {
            let n = specs.len() + usize::from(last.is_some()) + k + 1;
            let (off, text, quoted) = c.field(n)?;
            while self.extra_names.len() <= k {
                let i = self.extra_names.len() + 1;
                self.extra_names.push(format!("extra_{i}"));
            }
            let name = self.extra_names[k].as_str();
            if text == "-" {
                rows.push_null(name);
            } else if quoted {
                rows.push_raw_str(name, base + off, text.len());
            } else {
                push_inferred(rows, name, text, base + off);
            }
            k += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delimited::tests::{ints, micros, strs};
    use crate::{parse_all, parse_chunk, ParsedChunk};
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;
    use arrow_array::Array;
    use arrow_schema::DataType;
    use proptest::prelude::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    fn parse(format: Format, text: &str) -> ParsedChunk {
        let (opts, _) = ParseOptions::new(format).for_file(text.as_bytes()).unwrap();
        parse_chunk(&opts, text.as_bytes(), 1).unwrap()
    }

    const ALB_LINE: &str = "https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 \"GET https://www.example.com:443/ HTTP/1.1\" \"curl/7.46.0\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 \"Root=1-58337281-1d84f3d73c47ec4e58577259\" \"www.example.com\" \"arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012\" 1 2018-07-02T22:22:48.364000Z \"authenticate,forward\" \"-\" \"-\" \"10.0.0.1:80\" \"200\" \"-\" \"-\" TID_1234abcd5678ef90";

    #[test]
    fn alb_full_line_typed() {
        let p = parse(Format::Alb, &format!("{ALB_LINE}\n"));
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        let b = &p.batch;
        assert_eq!(
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect::<Vec<_>>(),
            columns(Format::Alb)
        );
        assert_eq!(micros(b, "ts"), [Some(1_530_570_180_186_641)]);
        assert_eq!(strs(b, "client_ip"), [s("192.168.131.39")]);
        assert_eq!(ints(b, "client_port"), [Some(2817)]);
        assert_eq!(ints(b, "target_port"), [Some(80)]);
        let rpt = b.column_by_name("request_processing_time").unwrap();
        assert_eq!(rpt.as_primitive::<Float64Type>().value(0), 0.086);
        assert_eq!(ints(b, "elb_status_code"), [Some(200)]);
        assert_eq!(strs(b, "method"), [s("GET")]);
        assert_eq!(strs(b, "url"), [s("https://www.example.com:443/")]);
        assert_eq!(strs(b, "protocol"), [s("HTTP/1.1")]);
        assert_eq!(strs(b, "user_agent"), [s("curl/7.46.0")]);
        assert_eq!(ints(b, "matched_rule_priority"), [Some(1)]);
        assert_eq!(
            micros(b, "request_creation_time"),
            [Some(1_530_570_168_364_000)]
        );
        assert_eq!(strs(b, "actions_executed"), [s("authenticate,forward")]);
        assert_eq!(
            b.column_by_name("redirect_url").unwrap().data_type(),
            &DataType::Null
        );
        assert_eq!(strs(b, "target_port_list"), [s("10.0.0.1:80")]);
        assert_eq!(strs(b, "conn_trace_id"), [s("TID_1234abcd5678ef90")]);
    }

    #[test]
    fn alb_missing_and_extra_trailing_fields() {
        // 18 fields (2016 layout), the full layout plus two unknown fields, and the beats
        // corpus shape (25 fields, `-1` times, no target).
        let old = "http 2016-08-10T22:08:42.945958Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 \"GET http://www.example.com:80/ HTTP/1.1\" \"curl/7.46.0\" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 \"Root=1-58337262-36d228ad5d99923122bbe354\"";
        let beats = "http 2019-10-11T15:01:12.376735Z app/filebeat-aws-elb-test/c86a326e7dc14222 77.227.156.41:56398 - -1 -1 -1 460 - 125 0 \"GET http://x.eu-central-1.elb.amazonaws.com:80/ HTTP/1.1\" \"curl/7.58.0\" - - arn:aws:elasticloadbalancing:eu-central-1:627959692251:targetgroup/test-lb-instances/8f04c4fe71f5f794 \"Root=1-5da09932-2c342a443bfb96249aa50ed7\" \"-\" \"-\" 0 2019-10-11T15:01:06.657000Z \"forward\" \"-\" \"-\"";
        let text = format!("{old}\n{ALB_LINE} \"new\" 42\n{beats}\n");
        let p = parse(Format::Alb, &text);
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        let b = &p.batch;
        assert_eq!(b.num_rows(), 3);
        assert_eq!(strs(b, "ssl_cipher")[0], None);
        assert_eq!(strs(b, "domain_name"), [None, s("www.example.com"), None]);
        assert_eq!(strs(b, "conn_trace_id")[0], None);
        assert_eq!(strs(b, "extra_1"), [None, s("new"), None]);
        assert_eq!(ints(b, "extra_2"), [None, Some(42), None]);
        assert_eq!(ints(b, "target_status_code"), [Some(200), Some(200), None]);
        assert_eq!(strs(b, "target_ip"), [s("10.0.0.1"), s("10.0.0.1"), None]);
        let t = b.column_by_name("target_processing_time").unwrap();
        assert_eq!(t.data_type(), &DataType::Float64, "-1 widens with 0.048");
        assert_eq!(t.as_primitive::<Float64Type>().value(2), -1.0);
    }

    #[test]
    fn alb_bad_lines_have_clear_reasons() {
        let text = concat!(
            "http 2019-10-11T15:01:12Z app/x 1.2.3.4:1 - -1 -1 -1 200 - 1 2 \"GET / HTTP/1.1\"\n",
            "http 2019-10-11T15:01:12Z app/x 1.2.3.4:1 - -1 -1 -1 abc - 1 2 \"GET / HTTP/1.1\" \"ua\" - - arn \"Root\"\n",
            "http 2019-13-11T15:01:12Z app/x 1.2.3.4:1 - -1 -1 -1 200 - 1 2 \"GET / HTTP/1.1\" \"ua\" - - arn \"Root\"\n",
            "http 2019-10-11T15:01:12Z app/x 1.2.3.4:x - -1 -1 -1 200 - 1 2 \"GET / HTTP/1.1\" \"ua\" - - arn \"Root\"\n",
            "http 2019-10-11T15:01:12Z app/x 1.2.3.4:1 - -1 -1 -1 200 - 1 2 \"GET / HTTP/1.1\" \"ua - - arn Root\n",
            "http 2019-10-11T15:01:12Z app/x 1.2.3.4:1 - 0.5s -1 -1 200 - 1 2 \"GET / HTTP/1.1\" \"ua\" - - arn \"Root\"\n",
        );
        let mut bytes = text.as_bytes().to_vec();
        bytes.extend_from_slice(b"http \xff\n");
        let p = parse_all(&ParseOptions::new(Format::Alb), &bytes).unwrap();
        assert_eq!(p.batch.num_rows(), 0);
        let r: Vec<&str> = p.rejects.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(
            r,
            [
                "expected at least 18 fields, found 13",
                "invalid elb_status_code \"abc\"",
                "invalid ts \"2019-13-11T15:01:12Z\"",
                "invalid client_port \"1.2.3.4:x\"",
                "unterminated quoted field 14 starting at byte 80",
                "invalid request_processing_time \"0.5s\"",
                "invalid UTF-8 at byte 5",
            ]
        );
    }

    #[test]
    fn elb_classic_http_and_tcp_lines() {
        // From the AWS documentation (Classic Load Balancer access logs).
        let text = concat!(
            "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 \"GET http://www.example.com:80/ HTTP/1.1\" \"curl/7.38.0\" - -\n",
            "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000086 0.001048 0.001337 200 200 0 57 \"GET https://www.example.com:443/ HTTP/1.1\" \"curl/7.38.0\" DHE-RSA-AES128-SHA TLSv1.2\n",
            "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.001069 0.000028 0.000041 - - 82 305 \"- - - \" \"-\" - -\n",
            "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 - -1 -1 -1 503 0 0 0 \"GET http://www.example.com:80/ HTTP/1.1\"\n",
        );
        let p = parse(Format::Elb, text);
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        let b = &p.batch;
        assert_eq!(
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect::<Vec<_>>(),
            columns(Format::Elb)
        );
        assert_eq!(micros(b, "ts")[0], Some(1_431_560_383_945_958));
        assert_eq!(
            ints(b, "backend_port"),
            [Some(80), Some(80), Some(80), None]
        );
        assert_eq!(
            ints(b, "elb_status_code"),
            [Some(200), Some(200), None, Some(503)]
        );
        assert_eq!(strs(b, "method"), [s("GET"), s("GET"), None, s("GET")]);
        assert_eq!(strs(b, "protocol")[2], None);
        assert_eq!(strs(b, "ssl_protocol"), [None, s("TLSv1.2"), None, None]);
        assert_eq!(strs(b, "user_agent")[3], None);
    }

    const S3_LINE: &str = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be awsexamplebucket1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57427F3EXAMPLE REST.GET.VERSIONING - \"GET /awsexamplebucket1?versioning HTTP/1.1\" 200 - 113 - 7 - \"-\" \"S3Console/0.4\" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV2 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader awsexamplebucket1.s3.us-west-1.amazonaws.com TLSV1.2 arn:aws:s3:us-west-1:123456789012:accesspoint/example-AP Yes";

    #[test]
    fn s3_full_short_and_extra() {
        let short = "owner bucket [06/Feb/2019:00:00:38 -0130] 192.0.2.3 - 3E57 REST.GET.OBJECT my%20key.txt \"GET /bucket/my%20key.txt?x=1 HTTP/1.1\" 404 NoSuchKey 312 - 9 - \"https://r/\" \"aws-cli/2 \\\"x\\\"\"";
        let text = format!("{S3_LINE}\n{short}\n{S3_LINE} us-west-1\n");
        let p = parse(Format::S3, &text);
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        let b = &p.batch;
        assert_eq!(micros(b, "ts")[0], Some(1_549_411_238_000_000));
        assert_eq!(
            micros(b, "ts")[1],
            Some(1_549_411_238_000_000 + 90 * 60_000_000)
        );
        assert_eq!(ints(b, "ts_offset"), [Some(0), Some(-90), Some(0)]);
        assert_eq!(strs(b, "requester")[1], None);
        assert_eq!(strs(b, "key"), [None, s("my%20key.txt"), None]);
        assert_eq!(strs(b, "path")[1], s("/bucket/my%20key.txt?x=1"));
        assert_eq!(ints(b, "http_status"), [Some(200), Some(404), Some(200)]);
        assert_eq!(strs(b, "error_code")[1], s("NoSuchKey"));
        assert_eq!(ints(b, "bytes_sent"), [Some(113), Some(312), Some(113)]);
        assert_eq!(ints(b, "total_time"), [Some(7), Some(9), Some(7)]);
        assert_eq!(strs(b, "user_agent")[1], s("aws-cli/2 \\\"x\\\""));
        assert_eq!(strs(b, "acl_required"), [s("Yes"), None, s("Yes")]);
        assert_eq!(strs(b, "tls_version")[0], s("TLSV1.2"));
        assert_eq!(strs(b, "extra_1"), [None, None, s("us-west-1")]);
        let mut want = columns(Format::S3);
        want.push("extra_1".into());
        assert_eq!(
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect::<Vec<_>>(),
            want
        );
        let bad = "owner bucket 06/Feb/2019:00:00:38 192.0.2.3 - 3E57 REST.GET.OBJECT k \"GET / HTTP/1.1\" 200 - 1 - 1 - \"-\" \"-\"\n";
        let p = parse(Format::S3, bad);
        assert_eq!(p.rejects[0].reason, "expected [time] as field 3");
    }

    const CF: &str = "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken\n";

    #[test]
    fn cloudfront_with_header_and_without() {
        let rows = "2016-08-15\t06:04:29\tSIN2\t540648\t122.164.17.87\tGET\td1.cloudfront.net\t/a\t200\t-\tMozilla/5.0%2520(Mac)\tw=1200&q=90\t-\tMiss\tGfz==\tsgn.rw7.io\thttps\t441\t4.988\n2016-08-15\t06:04:30\tSIN2\t0\t122.164.17.87\tGET\td1.cloudfront.net\t/favicon.ico\t000\thttps://x/\t-\t-\t-\tError\tQEd==\tsgn.rw7.io\thttps\t381\t1.000\n";
        let text = format!("{CF}{rows}");
        let p = parse(Format::Cloudfront, &text);
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        assert_eq!(p.meta_lines, 2);
        let b = &p.batch;
        assert_eq!(
            micros(b, "ts"),
            [Some(1_471_241_069_000_000), Some(1_471_241_070_000_000)]
        );
        assert_eq!(strs(b, "x_edge_location")[0], s("SIN2"));
        assert_eq!(ints(b, "sc_status"), [Some(200), Some(0)]);
        assert_eq!(ints(b, "sc_bytes"), [Some(540648), Some(0)]);
        assert_eq!(strs(b, "cs_user_agent"), [s("Mozilla/5.0%2520(Mac)"), None]);
        let tt = b.column_by_name("time_taken").unwrap();
        assert_eq!(tt.as_primitive::<Float64Type>().values(), &[4.988, 1.0]);
        assert!(b.column_by_name("date").is_none() && b.column_by_name("time").is_none());
        // Without directives: the documented field list, missing trailing fields null.
        let p = parse_all(&ParseOptions::new(Format::Cloudfront), rows.as_bytes()).unwrap();
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        assert_eq!(p.batch.num_columns(), 32);
        assert_eq!(ints(&p.batch, "sc_status"), [Some(200), Some(0)]);
        let end = p.batch.column_by_name("sc_range_end").unwrap();
        assert_eq!(end.data_type(), &DataType::Null);
        // A differing #Fields: mid-file is rejected, a bad status too.
        let text = format!("{CF}{rows}#Fields: date time other\n2016-08-15\t06:04:29\tSIN2\t1\t1.2.3.4\tGET\th\t/\tOK\t-\t-\t-\t-\tMiss\tx\th\thttps\t1\t1\n");
        let p = parse(Format::Cloudfront, &text);
        assert_eq!(p.rejects.len(), 2);
        assert!(p.rejects[0].reason.starts_with("header differs"));
        assert_eq!(
            p.rejects[1].reason,
            "field \"sc_status\": \"OK\" is not a valid int"
        );
    }

    fn render_addr(ip: &str, port: Option<u16>) -> String {
        match port {
            Some(p) => format!("{ip}:{p}"),
            None => "-".into(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Random ALB records, cut at a random number of fields >= 18 -> line -> parse ->
        /// the same values, missing fields null.
        #[test]
        fn alb_round_trip(
            rows in prop::collection::vec(
                (
                    0i64..4_000_000_000_000_000,
                    (0u8..=255, 0u8..=255, any::<u16>()),
                    prop::option::of(any::<u16>()),
                    prop::option::of(100i64..600),
                    any::<u32>(),
                    ("GET|POST|DELETE", "/[a-z0-9/?=&]{0,20}"),
                    "[A-Za-z0-9/.;() ]{1,30}",
                    18usize..=30,
                ),
                1..12,
            ),
        ) {
            let mut text = String::new();
            for (t, (a, b, port), tport, status, bytes, (m, path), ua, n) in &rows {
                let ts = chrono::DateTime::from_timestamp_micros(*t).unwrap().format("%Y-%m-%dT%H:%M:%S%.6fZ");
                let fields = [
                    "h2".to_string(),
                    ts.to_string(),
                    "app/lb/1".into(),
                    render_addr(&format!("10.{a}.{b}.1"), Some(*port)),
                    render_addr("10.0.0.9", *tport),
                    "0.001".into(), "-1".into(), "0.000".into(),
                    status.map_or("-".into(), |s| s.to_string()),
                    "-".into(),
                    "0".into(),
                    bytes.to_string(),
                    format!("\"{m} https://h:443{path} HTTP/2.0\""),
                    format!("\"{ua}\""),
                    "-".into(), "-".into(), "arn:tg".into(), "\"Root=1-x\"".into(),
                    "\"h\"".into(), "\"-\"".into(), "0".into(), ts.to_string(),
                    "\"forward\"".into(), "\"-\"".into(), "\"-\"".into(), "\"10.0.0.9:80\"".into(),
                    "\"200\"".into(), "\"-\"".into(), "\"-\"".into(), "TID_1".into(),
                ];
                text.push_str(&fields[..*n].join(" "));
                text.push('\n');
            }
            let p = parse_all(&ParseOptions::new(Format::Alb), text.as_bytes()).unwrap();
            prop_assert!(p.rejects.is_empty(), "{:?}", p.rejects);
            let b = &p.batch;
            prop_assert_eq!(micros(b, "ts"), rows.iter().map(|r| Some(r.0)).collect::<Vec<_>>());
            prop_assert_eq!(
                strs(b, "client_ip"),
                rows.iter().map(|r| Some(format!("10.{}.{}.1", r.1 .0, r.1 .1))).collect::<Vec<_>>()
            );
            prop_assert_eq!(ints(b, "client_port"), rows.iter().map(|r| Some(i64::from(r.1 .2))).collect::<Vec<_>>());
            if rows.iter().any(|r| r.2.is_some()) {
                prop_assert_eq!(ints(b, "target_port"), rows.iter().map(|r| r.2.map(i64::from)).collect::<Vec<_>>());
            }
            if rows.iter().any(|r| r.3.is_some()) {
                prop_assert_eq!(ints(b, "elb_status_code"), rows.iter().map(|r| r.3).collect::<Vec<_>>());
            }
            prop_assert_eq!(ints(b, "sent_bytes"), rows.iter().map(|r| Some(i64::from(r.4))).collect::<Vec<_>>());
            prop_assert_eq!(strs(b, "method"), rows.iter().map(|r| Some(r.5 .0.clone())).collect::<Vec<_>>());
            prop_assert_eq!(strs(b, "url"), rows.iter().map(|r| Some(format!("https://h:443{}", r.5 .1))).collect::<Vec<_>>());
            prop_assert_eq!(strs(b, "user_agent"), rows.iter().map(|r| Some(r.6.clone())).collect::<Vec<_>>());
            if rows.iter().any(|r| r.7 >= 30) {
                prop_assert_eq!(strs(b, "conn_trace_id"), rows.iter().map(|r| (r.7 >= 30).then(|| "TID_1".to_string())).collect::<Vec<_>>());
            }
            if rows.iter().any(|r| r.7 >= 22) {
                prop_assert_eq!(micros(b, "request_creation_time"), rows.iter().map(|r| (r.7 >= 22).then_some(r.0)).collect::<Vec<_>>());
            }
        }

        /// Random S3 records -> line -> parse -> the same values (offsets included).
        #[test]
        fn s3_round_trip(
            rows in prop::collection::vec(
                (
                    0i64..4_000_000_000,
                    -720i32..=840,
                    prop::option::of("[a-z][a-z0-9%/._-]{0,19}"),
                    100i64..600,
                    prop::option::of(any::<u32>()),
                    17usize..=26,
                ),
                1..12,
            ),
        ) {
            let mut text = String::new();
            for (secs, off, key, status, size, n) in &rows {
                let zone = chrono::FixedOffset::east_opt(off * 60).unwrap();
                let t = chrono::DateTime::from_timestamp(*secs, 0).unwrap().with_timezone(&zone);
                let fields = [
                    "owner".to_string(), "bkt".into(),
                    format!("[{}]", t.format("%d/%b/%Y:%H:%M:%S %z")),
                    "192.0.2.3".into(), "-".into(), "REQ1".into(), "REST.GET.OBJECT".into(),
                    key.clone().unwrap_or_else(|| "-".into()),
                    format!("\"GET /bkt/{} HTTP/1.1\"", key.clone().unwrap_or_default()),
                    status.to_string(), "-".into(),
                    size.map_or("-".into(), |s| s.to_string()), "5".into(), "12".into(), "-".into(),
                    "\"-\"".into(), "\"aws-sdk-go/1.0 (go1.21; linux)\"".into(),
                    "-".into(), "hostid=".into(), "SigV4".into(), "TLS_AES_128_GCM_SHA256".into(),
                    "AuthHeader".into(), "bkt.s3.amazonaws.com".into(), "TLSv1.3".into(), "-".into(), "-".into(),
                ];
                text.push_str(&fields[..*n].join(" "));
                text.push('\n');
            }
            let p = parse_all(&ParseOptions::new(Format::S3), text.as_bytes()).unwrap();
            prop_assert!(p.rejects.is_empty(), "{:?}", p.rejects);
            let b = &p.batch;
            prop_assert_eq!(micros(b, "ts"), rows.iter().map(|r| Some(r.0 * 1_000_000)).collect::<Vec<_>>());
            prop_assert_eq!(ints(b, "ts_offset"), rows.iter().map(|r| Some(i64::from(r.1))).collect::<Vec<_>>());
            if rows.iter().any(|r| r.2.is_some()) {
                prop_assert_eq!(strs(b, "key"), rows.iter().map(|r| r.2.clone()).collect::<Vec<_>>());
            }
            prop_assert_eq!(ints(b, "http_status"), rows.iter().map(|r| Some(r.3)).collect::<Vec<_>>());
            if rows.iter().any(|r| r.4.is_some()) {
                prop_assert_eq!(ints(b, "bytes_sent"), rows.iter().map(|r| r.4.map(i64::from)).collect::<Vec<_>>());
            }
            if rows.iter().any(|r| r.5 >= 24) {
                prop_assert_eq!(strs(b, "tls_version"), rows.iter().map(|r| (r.5 >= 24).then(|| "TLSv1.3".to_string())).collect::<Vec<_>>());
            }
        }
    }
}
