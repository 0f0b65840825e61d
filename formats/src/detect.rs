//! `auto`: which format a file is in, from a sample of its first records.
//!
//! # Why
//! Users point compactor at a directory of logs and should not have to know that the load
//! balancer writes ALB format and the Java services log4j. A wrong guess must be visible, so
//! the detection says what it chose and how sure it is, and the choice is per file.
//!
//! # Algorithm
//! 1. Take up to [`SAMPLE_RECORDS`] lines of the head of the file.
//! 2. Try each candidate in order of *specificity* (a format whose lines another format also
//!    accepts comes after it: `combined` before `common`, which would take a combined line's
//!    referer and user agent as extra fields; `logfmt` and `csv` late, since loose text can
//!    look like either). Candidates whose cheap precondition fails on the sample are skipped
//!    (JSON lines start with `{`; CloudFront's header names `x-edge-location`; logfmt lines
//!    are mostly `key=value` pairs; CSV and TSV need their delimiter in the header line).
//! 3. Parse the sample with each remaining candidate, exactly as the run would
//!    ([`ParseOptions::for_file`] for headers, then [`crate::parse_chunk`]); its score is the
//!    share of records it accepted.
//! 4. The first candidate in order that accepts at least [`CONFIDENT`] of the records wins;
//!    failing that, the best score of at least [`PLAUSIBLE`]; failing that, `text` (each
//!    record whole in a `message` column, which never rejects), with confidence 0.
//!
//! ```text
//!   head ──sample──▶ json? cloudfront? combined common alb elb s3 syslog layouts… csv logfmt tsv
//!                     │ precondition → parse → accepted share
//!                     └──▶ first ≥ 0.9 (else best ≥ 0.5, else text) ──▶ Detection{format, confidence}
//! ```
//!
//! The built-in text layouts ([`crate::grok::LAYOUTS`]: log4j variants, HDFS, Apache error
//! log, logcat, ...) are candidates too; choosing one sets the `grok` format, its pattern and
//! its multi-line `record_start`.

use crate::{parse_chunk, Format, ParseOptions};

/// Records sampled from the head of a file.
pub const SAMPLE_RECORDS: usize = 200;
/// Share of sampled records a candidate must accept to win outright.
pub const CONFIDENT: f64 = 0.9;
/// Share of sampled records the best candidate must accept to be chosen at all.
pub const PLAUSIBLE: f64 = 0.5;

/// What [`detect`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// The chosen format.
    pub format: Format,
    /// Share of the sampled records the chosen format accepted, 0 to 1 (0 for the `text`
    /// fallback).
    pub confidence: f64,
    /// The built-in layout chosen (`grok` format), by name.
    pub layout: Option<&'static str>,
    /// The grok pattern of that layout.
    pub pattern: Option<String>,
    /// The multi-line record start of that layout.
    pub record_start: Option<String>,
    /// Records in the sample.
    pub sampled: usize,
}

impl Detection {
    /// Sets `opts` to parse with the detected format.
    pub fn apply(&self, opts: &mut ParseOptions) {
        opts.format = Some(self.format);
        if self.pattern.is_some() {
            opts.pattern = self.pattern.clone();
            opts.prepared.pattern = None;
        }
        if self.record_start.is_some() {
            opts.record_start = self.record_start.clone();
            opts.prepared.record_start = None;
        }
    }
}

impl std::fmt::Display for Detection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.format)?;
        if let Some(l) = self.layout {
            write!(f, " (layout {l})")?;
        }
        write!(
            f,
            ", confidence {:.2} on {} records",
            self.confidence, self.sampled
        )
    }
}

/// One candidate: a format, and for `grok` a built-in layout.
struct Candidate {
    format: Format,
    layout: Option<(&'static str, &'static str, Option<&'static str>)>,
}

fn candidates() -> Vec<Candidate> {
    let plain = |format| Candidate {
        format,
        layout: None,
    };
    let mut out = vec![
        plain(Format::Json),
        plain(Format::Cloudfront),
        plain(Format::Combined),
        plain(Format::Common),
        plain(Format::Alb),
        plain(Format::Elb),
        plain(Format::S3),
        plain(Format::Syslog),
    ];
    for l in layouts() {
        out.push(Candidate {
            format: Format::Grok,
            layout: Some(l),
        });
    }
    out.extend([
        plain(Format::Tsv),
        plain(Format::Csv),
        plain(Format::Logfmt),
    ]);
    out
}

/// The built-in text layouts as (name, pattern, record start).
fn layouts() -> Vec<(&'static str, &'static str, Option<&'static str>)> {
    crate::grok::LAYOUTS
        .iter()
        .map(|l| (l.name, l.pattern, l.record_start))
        .collect()
}

/// The first `max` lines of `head` (whole lines only, unless there is no newline at all).
fn sample(head: &[u8], max: usize) -> &[u8] {
    let mut end = 0;
    for (n, i) in memchr::memchr_iter(b'\n', head).enumerate() {
        end = i + 1;
        if n + 1 == max {
            break;
        }
    }
    if end == 0 {
        head
    } else {
        &head[..end]
    }
}

/// Cheap preconditions that keep loose formats from claiming structured text.
fn plausible(format: Format, lines: &[&[u8]]) -> bool {
    let first = lines.first().copied().unwrap_or_default();
    let data: Vec<&[u8]> = lines
        .iter()
        .copied()
        .filter(|l| !l.starts_with(b"#"))
        .collect();
    let share = |f: &dyn Fn(&[u8]) -> bool| {
        data.iter().filter(|l| f(l)).count() as f64 / data.len().max(1) as f64
    };
    match format {
        Format::Json => first.trim_ascii_start().starts_with(b"{"),
        Format::Cloudfront => lines.iter().any(|l| {
            l.starts_with(b"#Fields:") && memchr::memmem::find(l, b"x-edge-location").is_some()
        }),
        Format::Csv => memchr::memchr(b',', first).is_some(),
        Format::Tsv => {
            memchr::memchr(b'\t', first).is_some()
                || [&b"#separator"[..], b"#Fields:", b"#Version:"]
                    .iter()
                    .any(|p| first.starts_with(p))
        }
        Format::Logfmt => {
            share(&|l: &[u8]| {
                let pairs = l
                    .split(|&b| b == b' ')
                    .filter(|t| {
                        t.iter()
                            .position(|&b| b == b'=')
                            .is_some_and(|i| i > 0 && t[..i].iter().all(|b| b.is_ascii_graphic()))
                    })
                    .count();
                pairs >= 2
            }) >= CONFIDENT
        }
        _ => true,
    }
}

/// The candidates of [`detect`], each with its options prepared (patterns compiled) once:
/// compiling the built-in layouts takes milliseconds, and a run may detect thousands of
/// files. [`ParseOptions::prepare`] keeps one in [`crate::Prepared::detector`].
#[derive(Debug)]
pub struct Detector {
    candidates: Vec<(Detection, ParseOptions)>,
}

impl Detector {
    /// The candidates for `opts` (its limits and other options), in order.
    pub fn new(opts: &ParseOptions) -> Detector {
        let mut prepared = Vec::new();
        for c in candidates() {
            let d = Detection {
                format: c.format,
                confidence: 0.0,
                layout: c.layout.map(|l| l.0),
                pattern: c.layout.map(|l| l.1.to_string()),
                record_start: c.layout.and_then(|l| l.2.map(str::to_string)),
                sampled: 0,
            };
            let mut o = opts.clone();
            o.pattern = None;
            o.record_start = None;
            o.prepared = Default::default();
            d.apply(&mut o);
            // A layout that does not compile under these options is no candidate.
            if o.prepare().is_ok() {
                prepared.push((d, o));
            }
        }
        Detector {
            candidates: prepared,
        }
    }

    /// Detects the format of `head`, the first bytes of a file (whole lines).
    pub fn detect(&self, head: &[u8]) -> Detection {
        let sample = sample(head, SAMPLE_RECORDS);
        let mut spans = Vec::new();
        crate::for_each_line(sample, |start, l| {
            if !l.iter().all(u8::is_ascii_whitespace) {
                spans.push((start, l.len()))
            }
        });
        let lines: Vec<&[u8]> = spans.iter().map(|&(s, n)| &sample[s..s + n]).collect();
        let fallback = Detection {
            format: Format::Text,
            confidence: 0.0,
            layout: None,
            pattern: None,
            record_start: None,
            sampled: lines.len(),
        };
        if lines.is_empty() {
            return fallback;
        }
        let mut best: Option<Detection> = None;
        for (d, o) in &self.candidates {
            if !plausible(d.format, &lines) {
                continue;
            }
            let Some((score, records)) = score(o, sample) else {
                continue;
            };
            let d = Detection {
                confidence: score,
                sampled: records,
                ..d.clone()
            };
            if score >= CONFIDENT {
                return d;
            }
            if score >= PLAUSIBLE && best.as_ref().is_none_or(|b| score > b.confidence) {
                best = Some(d);
            }
        }
        best.unwrap_or(fallback)
    }
}

/// Detects the format of `head`, the first bytes of a file (whole lines). `opts` gives the
/// limits and other options the candidates are tried with; its prepared [`Detector`] is used
/// when it has one.
pub fn detect(opts: &ParseOptions, head: &[u8]) -> Detection {
    match &opts.prepared.detector {
        Some(d) => d.detect(head),
        None => Detector::new(opts).detect(head),
    }
}

/// The share of `sample`'s records the prepared candidate `o` accepts, and the record count;
/// `None` when it cannot even be set up (a header it cannot read).
fn score(o: &ParseOptions, sample: &[u8]) -> Option<(f64, usize)> {
    let (o, _) = o.for_file(sample).ok()?;
    let p = parse_chunk(&o, sample, 1).ok()?;
    // Blank lines are rejected by every format alike: leave them out of the score.
    let blank = p
        .rejects
        .iter()
        .filter(|r| r.reason == "blank line")
        .count() as u64;
    let records = p.records.saturating_sub(blank);
    if records == 0 {
        return None;
    }
    Some((p.batch.num_rows() as f64 / records as f64, records as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect_str(s: &str) -> Detection {
        detect(&ParseOptions::new(Format::Auto), s.as_bytes())
    }

    #[test]
    fn json_and_access_logs() {
        assert_eq!(detect_str("{\"a\":1}\n{\"a\":2}\n").format, Format::Json);
        let combined =
            "1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 5 \"-\" \"curl\"\n";
        let d = detect_str(&combined.repeat(3));
        assert_eq!(
            (d.format, d.confidence, d.sampled),
            (Format::Combined, 1.0, 3)
        );
        let common = "1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 5\n";
        assert_eq!(detect_str(common).format, Format::Common);
    }

    #[test]
    fn unknown_text_falls_back_to_text_with_no_confidence() {
        let d = detect_str("hello there\nsomething else entirely\n");
        assert_eq!((d.format, d.confidence), (Format::Text, 0.0));
        assert_eq!(d.to_string(), "text, confidence 0.00 on 2 records");
        let d = detect_str("");
        assert_eq!((d.format, d.sampled), (Format::Text, 0));
    }

    #[test]
    fn a_mostly_valid_sample_is_still_recognised() {
        let line =
            "1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 5 \"-\" \"c\"\n";
        let s = format!("{}garbage line\n", line.repeat(3));
        let d = detect_str(&s);
        assert_eq!(d.format, Format::Combined);
        assert!((d.confidence - 0.75).abs() < 1e-9, "{d}");
    }
}
