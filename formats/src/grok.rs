//! `regex` and `grok`: lines parsed by a pattern whose named captures become columns.
//!
//! # Why
//! Most text logs (log4j, httpd error logs, vendor formats) have no dedicated parser, but
//! each is regular: a timestamp, a level, a component, a message. A regular expression with
//! named captures describes such a line exactly, and grok (the pattern language of Logstash
//! and Elasticsearch ingest) makes those expressions readable by naming the recurring parts:
//! `%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} %{GREEDYDATA:message}`. This module compiles
//! both to one [`regex::bytes::Regex`] and turns each match into a row, with typed columns.
//! It also ships [`LAYOUTS`], ready-made patterns for common text logs that `auto` detection
//! tries and that jobs can name (`pattern = "%{LOG4J}"`).
//!
//! # Algorithm
//! 1. **Expansion** (grok only). `%{SYNTAX}`, `%{SYNTAX:name}` and `%{SYNTAX:name:type}` are
//!    replaced, recursively, by the definition of `SYNTAX` from the caller's definitions
//!    ([`Pattern::compile_with_definitions`]), the [`LIBRARY`] or the [`LAYOUTS`], in that
//!    order: as `(?:definition)` without a name, as a named group with a generated name
//!    (`_grok_N`) with one. Named references inside definitions become columns too (as in
//!    Logstash: `%{SYSLOGPROG}` yields `program` and `pid`). Text between references is
//!    raw regex and is copied as is, so raw named groups `(?<name>...)` work too. Expansion
//!    fails with [`FormatError::InvalidOption`] on an unknown name, a cycle (`A -> B -> A`),
//!    a nesting deeper than [`MAX_DEPTH`] or a result longer than [`MAX_EXPANDED_BYTES`].
//! 2. **Compilation.** Two regexes are built from the (expanded) source, with explicit
//!    `size_limit` and `dfa_size_limit` so memory stays bounded whatever the pattern:
//!    `\A(?:src)\z` for records, and `src` unanchored for [`Pattern::is_match`] (the
//!    `record_start` test of [`crate::framing`], where users write `^` as in Logstash).
//! 3. **Matching.** A record must match *whole*: a partial match is not a row, and the
//!    record is rejected with `does not match the pattern`. The record is first checked to be
//!    UTF-8 (else `invalid UTF-8 at byte N`); the match runs with `captures_read` into a
//!    `CaptureLocations` kept in the parser, so a line costs no allocation. An anchored regex
//!    fails at the first byte that cannot continue a match (its lazy DFA runs before the
//!    capture engine), so no separate literal prefilter is needed.
//! 4. **Typing.** Each column takes the first of its captures that participated in the
//!    match (a name may appear in several alternatives); none: null. Untyped captures are
//!    strings (spans of the chunk, never copied), as in Logstash. `:int` and `:float` parse
//!    the text (an empty capture is null, text that is not a number rejects the record);
//!    `:ts` reads a timestamp (below); `:string` forces a string.
//!
//! ```text
//!  "%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} %{GREEDYDATA:message}"
//!        │ expand (library, recursively; cycles and unknown names rejected)
//!        ▼
//!  \A(?:(?P<_grok_0>[0-9]{4}-…) (?P<_grok_1>[Aa]lert|…) (?P<_grok_2>(?s-u:.*)))\z
//!        │ compile (bounded)          slots: _grok_0→ts:ts(iso) _grok_1→level _grok_2→message
//!        ▼
//!  record ──utf-8?──captures_read──▶ spans ──type each slot──▶ push_ts / push_raw_str / …
//!            │            │                       │
//!            └────────────┴── no ─────────────────┴──▶ Err(reason): the record is rejected
//! ```
//!
//! # Multi-line records
//! With a `record_start` pattern ([`crate::framing`]) a record holds its continuation lines,
//! joined by `\n` (inner lines keep a `\r` before it). `.` does not match `\n` by default, so
//! `DATA` and `GREEDYDATA` are defined as `(?s-u:.*?)` and `(?s-u:.*)`: a final
//! `%{GREEDYDATA:message}` takes a whole Java stack trace. Other library patterns stay on
//! one line.
//!
//! # Timestamps
//! A capture becomes a timestamp column (UTC microseconds) when it is typed `ts`, or when it
//! names one of the timestamp patterns of the library (table below; `:string` opts out).
//! - `:ts` alone: the pattern's own reader for the timestamp patterns, else, in order, ISO
//!   8601, the access-log `%t` format and epoch seconds/millis/micros/nanos by magnitude.
//! - `:ts(iso)`, `:ts(clf)`, `:ts(epoch)`: one of those readers.
//! - `:ts(FORMAT)`: a strftime format, e.g. `%{DATA:ts:ts(%y%m%d %H%M%S)}` (the format ends
//!   at the first `}`, so it cannot hold one). Formats made of `%Y %y %m %b %B %h %d %e %H
//!   %M %S %a %A %z %:z %.f %.3f %.6f %.9f %3f %6f %9f %T %D %F %%`, `%L` and literals are
//!   read by a fast built-in reader; any other specifier uses chrono
//!   ([`crate::ts::parse_with_format`]). In the fast reader numbers take 1 to 2 digits
//!   (`%Y` exactly 4), a space matches any run of blanks (none included), `%.f` is an
//!   optional fraction, `%z` also takes `Z`, a weekday must agree with the date, and `%L`
//!   (an extension) is milliseconds written as an integer of 1 to 3 digits (`:8` is 8 ms).
//!   A format must give a year, a month and a day.
//!
//! Times without a zone are read as UTC; digits beyond microseconds are dropped. When the
//! text carries a numeric zone offset, the offset also goes to `<name>_offset` (Int, minutes
//! east of UTC), the project-wide convention; the column exists only where some value had
//! one. A `ts` capture that does not read as a timestamp rejects the record, with the reason.
//!
//! # Plain regexes
//! `Format::Regex` skips expansion: every named group is a string column. Types come from
//! the job's forced types or `timestamp_formats`, which apply to any format.
//!
//! # Library
//! | name | matches |
//! |---|---|
//! | `INT`, `POSINT`, `NONNEGINT` | signed, positive, non-negative integers |
//! | `NUMBER`, `BASE10NUM`, `BASE16NUM` | decimal numbers, hex numbers |
//! | `WORD`, `NOTSPACE`, `SPACE` | `\w+`, non-blanks, blanks (ASCII blanks) |
//! | `DATA`, `GREEDYDATA` | anything, lazily / greedily, newlines included |
//! | `QUOTEDSTRING`, `QS` | `"…"`, `'…'` or `` `…` `` with backslash escapes |
//! | `UUID`, `MAC`, `CISCOMAC`, `WINDOWSMAC`, `COMMONMAC` | identifiers |
//! | `IP`, `IPV4`, `IPV6`, `HOSTNAME`, `IPORHOST`, `HOSTPORT` | addresses |
//! | `PATH`, `UNIXPATH`, `WINPATH`, `TTY` | file paths |
//! | `URIPROTO`, `URIHOST`, `URIPATH`, `URIQUERY`, `URIPARAM`, `URIPATHPARAM`, `URI` | URIs |
//! | `USERNAME`, `USER`, `EMAILLOCALPART`, `EMAILADDRESS`, `HTTPDUSER` | users |
//! | `MONTH`, `MONTHNUM`, `MONTHNUM2`, `MONTHDAY`, `DAY`, `YEAR` | date parts |
//! | `HOUR`, `MINUTE`, `SECOND`, `TIME`, `ISO8601_TIMEZONE`, `TZ` | time parts |
//! | `DATE_US`, `DATE_EU`, `DATE`, `DATESTAMP`, `DATESTAMP_RFC822`, `DATESTAMP_OTHER` | dates (strings) |
//! | `SYSLOGTIMESTAMP`, `LOGCAT_TIMESTAMP` | dates without a year (strings) |
//! | `TIMESTAMP_ISO8601`, `HTTPDATE`, `HTTPDERROR_DATE`, `DATESTAMP_RFC2822`, `DATESTAMP_EVENTLOG` | timestamps (typed) |
//! | `HDFS_TIMESTAMP`, `SPARK_TIMESTAMP`, `BGL_TIMESTAMP`, `HEALTHAPP_TIMESTAMP` | timestamps (typed) |
//! | `LOGLEVEL` | `INFO`, `warn`, `Error`, `FATAL`, `SEVERE`, `notice`, … |
//! | `PROG`, `SYSLOGPROG`, `SYSLOGHOST`, `SYSLOGFACILITY`, `SYSLOGBASE` | syslog parts |
//! | `COMMONAPACHELOG`, `COMBINEDAPACHELOG`, `HTTPD20_ERRORLOG`, `HTTPD24_ERRORLOG` | httpd lines |
//! | `JAVACLASS`, `JAVAFILE`, `JAVAMETHOD`, `JAVATHREAD`, `JAVASTACKTRACEPART`, `JAVALOGMESSAGE` | Java |
//! | `LOG4J_THREAD` | a thread name, one level of `[...]` inside allowed |
//!
//! The definitions follow Logstash's core `grok-patterns` with these changes: no
//! look-around or atomic groups (the regex crate has none; it never backtracks
//! exponentially either); ASCII word boundaries (`(?-u:\b)`, which the lazy DFA supports on
//! any input; `WORD` is plain Unicode `\w+`); byte-level `NOTSPACE`, `SPACE`, `DATA` and
//! `GREEDYDATA` (`(?-u:\S+)`, `(?s-u:.*)`, …: smaller automata, so the bounded backtracker
//! serves longer lines; records are checked to be UTF-8 first, only ASCII blanks count as
//! spaces, and a capture that would split a character rejects the record); and strict
//! shapes for the typed timestamp patterns, so that whatever they match also converts.
//!
//! # Layouts
//! | name | for | columns |
//! |---|---|---|
//! | `HDFS` | Hadoop HDFS (`081109 203615 148 INFO dfs.DataNode: …`) | `ts pid level component message` |
//! | `HADOOP` | Hadoop MapReduce/YARN log4j (`… INFO [main] org.x.Y: …`) | `ts level thread logger message` |
//! | `ZOOKEEPER` | ZooKeeper log4j (`… - INFO  [thread:Class@774] - …`) | `ts level thread class line message` |
//! | `SPARK` | Spark log4j (`17/06/09 20:10:40 INFO spark.X: …`) | `ts level logger message` |
//! | `HTTPD_ERRORLOG` | Apache httpd 2.0 / 2.4 error log | `ts module level pid tid client client_port message` |
//! | `BGL` | BlueGene/L RAS log | `alert ts date node local_ts node_repeat type component level message` |
//! | `ANDROID_LOGCAT` | Android logcat `threadtime` | `time pid tid priority tag message` |
//! | `HEALTHAPP` | HealthApp pipe-delimited | `ts component pid message` |
//! | `LOG4J` | generic `ISO-timestamp [thread] LEVEL [thread] logger - message` | `ts thread level logger message` |
//!
//! Notes: BGL's `ts` is its epoch column (a true UTC instant); `local_ts` is its wall-clock
//! column as written (the log gives no zone: read as UTC). Logcat `threadtime` lines carry no
//! year, so `time` stays a string. Layouts are listed specific first: `LOG4J` also matches
//! `HADOOP` and `ZOOKEEPER` lines, so a detector should prefer the earlier layout on a tie.

use std::sync::Arc;

use regex::bytes::{CaptureLocations, Regex, RegexBuilder};

use crate::builder::RowsBuilder;
use crate::error::{FormatError, Result};
use crate::{ts, LineParser};

/// Deepest nesting of pattern references that expansion follows.
pub const MAX_DEPTH: usize = 32;
/// Longest expanded regex, in bytes.
pub const MAX_EXPANDED_BYTES: usize = 256 * 1024;
/// `size_limit` of each compiled regex: the compiled program's size, in bytes.
pub const REGEX_SIZE_LIMIT: usize = 16 << 20;
/// `dfa_size_limit` of each compiled regex: the lazy DFA's cache, per thread, in bytes.
pub const REGEX_DFA_SIZE_LIMIT: usize = 4 << 20;

/// Prefix of the generated group names (`_grok_0`, `_grok_1`, ...); raw groups may not use it.
const GROUP_PREFIX: &str = "_grok_";

/// The built-in grok patterns: `(name, definition)`. See the module docs for the table.
pub const LIBRARY: &[(&str, &str)] = &[
    ("USERNAME", r"[a-zA-Z0-9._-]+"),
    ("USER", r"%{USERNAME}"),
    (
        "EMAILLOCALPART",
        r"[a-zA-Z0-9!#$%&'*+/=?^_`|~-]{1,64}(?:\.[a-zA-Z0-9!#$%&'*+/=?^_`|~-]{1,62}){0,63}",
    ),
    ("EMAILADDRESS", r"%{EMAILLOCALPART}@%{HOSTNAME}"),
    ("INT", r"[+-]?[0-9]+"),
    ("BASE10NUM", r"[+-]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"),
    ("NUMBER", r"%{BASE10NUM}"),
    ("BASE16NUM", r"[+-]?(?:0[xX])?[0-9A-Fa-f]+"),
    ("POSINT", r"(?-u:\b)[1-9][0-9]*(?-u:\b)"),
    ("NONNEGINT", r"(?-u:\b)[0-9]+(?-u:\b)"),
    ("WORD", r"\w+"),
    ("NOTSPACE", r"(?-u:\S+)"),
    ("SPACE", r"(?-u:\s*)"),
    ("DATA", r"(?s-u:.*?)"),
    ("GREEDYDATA", r"(?s-u:.*)"),
    (
        "QUOTEDSTRING",
        r#"(?:"(?:\\.|[^\\"])*"|'(?:\\.|[^\\'])*'|`(?:\\.|[^\\`])*`)"#,
    ),
    ("QS", r"%{QUOTEDSTRING}"),
    (
        "UUID",
        r"[A-Fa-f0-9]{8}-(?:[A-Fa-f0-9]{4}-){3}[A-Fa-f0-9]{12}",
    ),
    ("MAC", r"%{CISCOMAC}|%{WINDOWSMAC}|%{COMMONMAC}"),
    ("CISCOMAC", r"(?:[A-Fa-f0-9]{4}\.){2}[A-Fa-f0-9]{4}"),
    ("WINDOWSMAC", r"(?:[A-Fa-f0-9]{2}-){5}[A-Fa-f0-9]{2}"),
    ("COMMONMAC", r"(?:[A-Fa-f0-9]{2}:){5}[A-Fa-f0-9]{2}"),
    (
        "IPV4",
        r"(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]{1,2})\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]{1,2})",
    ),
    (
        "IPV6",
        r"(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){1,7}:|(?:[0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){1,5}(?::[0-9A-Fa-f]{1,4}){1,2}|(?:[0-9A-Fa-f]{1,4}:){1,4}(?::[0-9A-Fa-f]{1,4}){1,3}|(?:[0-9A-Fa-f]{1,4}:){1,3}(?::[0-9A-Fa-f]{1,4}){1,4}|(?:[0-9A-Fa-f]{1,4}:){1,2}(?::[0-9A-Fa-f]{1,4}){1,5}|[0-9A-Fa-f]{1,4}:(?::[0-9A-Fa-f]{1,4}){1,6}|:(?:(?::[0-9A-Fa-f]{1,4}){1,7}|:)|(?:[0-9A-Fa-f]{1,4}:){6}%{IPV4}|::(?:[Ff]{4}(?::0{1,4})?:)?%{IPV4}|(?:[0-9A-Fa-f]{1,4}:){1,4}:%{IPV4})(?:%[0-9A-Za-z]+)?",
    ),
    ("IP", r"%{IPV6}|%{IPV4}"),
    (
        "HOSTNAME",
        r"(?-u:\b)[0-9A-Za-z][0-9A-Za-z-]{0,62}(?:\.[0-9A-Za-z][0-9A-Za-z-]{0,62})*\.?",
    ),
    ("IPORHOST", r"%{IP}|%{HOSTNAME}"),
    ("HOSTPORT", r"%{IPORHOST}:%{POSINT}"),
    ("PATH", r"%{UNIXPATH}|%{WINPATH}"),
    ("UNIXPATH", r"(?:/[[:alnum:]_%!$@:.,+~-]*)+"),
    ("TTY", r"/dev/(?:pts|tty[pq]?)(?:\w+)?/?[0-9]+"),
    ("WINPATH", r"(?:[A-Za-z]+:|\\)(?:\\[^\\?*]*)+"),
    ("URIPROTO", r"[A-Za-z][A-Za-z0-9+.-]+"),
    ("URIHOST", r"%{IPORHOST}(?::%{POSINT})?"),
    ("URIPATH", r"(?:/[A-Za-z0-9$.+!*'(){},~:;=@#%&_-]*)+"),
    ("URIQUERY", r"[A-Za-z0-9$.+!*'|(){},~@#%&/=:;_?\[\]<>-]*"),
    ("URIPARAM", r"\?%{URIQUERY}"),
    ("URIPATHPARAM", r"%{URIPATH}(?:%{URIPARAM})?"),
    (
        "URI",
        r"%{URIPROTO}://(?:%{USER}(?::[^@]*)?@)?(?:%{URIHOST})?(?:%{URIPATH}(?:%{URIPARAM})?)?",
    ),
    (
        "MONTH",
        r"(?-u:\b)(?:[Jj]an(?:uary)?|[Ff]eb(?:ruary)?|[Mm]ar(?:ch)?|[Aa]pr(?:il)?|[Mm]ay|[Jj]un(?:e)?|[Jj]ul(?:y)?|[Aa]ug(?:ust)?|[Ss]ep(?:tember)?|[Oo]ct(?:ober)?|[Nn]ov(?:ember)?|[Dd]ec(?:ember)?)(?-u:\b)",
    ),
    ("MONTHNUM", r"0?[1-9]|1[0-2]"),
    ("MONTHNUM2", r"0[1-9]|1[0-2]"),
    ("MONTHDAY", r"0[1-9]|[12][0-9]|3[01]|[1-9]"),
    (
        "DAY",
        r"Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?",
    ),
    ("YEAR", r"(?:[0-9]{2}){1,2}"),
    ("HOUR", r"2[0123]|[01]?[0-9]"),
    ("MINUTE", r"[0-5][0-9]"),
    ("SECOND", r"(?:[0-5]?[0-9]|60)(?:[:.,][0-9]+)?"),
    ("TIME", r"%{HOUR}:%{MINUTE}(?::%{SECOND})"),
    ("DATE_US", r"%{MONTHNUM}[/-]%{MONTHDAY}[/-]%{YEAR}"),
    ("DATE_EU", r"%{MONTHDAY}[./-]%{MONTHNUM}[./-]%{YEAR}"),
    ("ISO8601_TIMEZONE", r"Z|[+-]%{HOUR}(?::?%{MINUTE})"),
    ("ISO8601_SECOND", r"%{SECOND}"),
    (
        "TIMESTAMP_ISO8601",
        r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:[.,][0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?",
    ),
    ("DATE", r"%{DATE_US}|%{DATE_EU}"),
    ("DATESTAMP", r"%{DATE}[- ]%{TIME}"),
    ("TZ", r"[APMCE][SD]T|UTC"),
    (
        "DATESTAMP_RFC822",
        r"%{DAY} %{MONTH} %{MONTHDAY} %{YEAR} %{TIME} %{TZ}",
    ),
    (
        "DATESTAMP_RFC2822",
        r"%{DAY}, (?:0?[1-9]|[12][0-9]|3[01]) %{MONTH} [0-9]{4} (?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]{1,9})? (?:Z|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9])",
    ),
    (
        "DATESTAMP_OTHER",
        r"%{DAY} %{MONTH} %{MONTHDAY} %{TIME} %{TZ} %{YEAR}",
    ),
    (
        "DATESTAMP_EVENTLOG",
        r"[0-9]{4}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])(?:[01][0-9]|2[0-3])[0-5][0-9](?:[0-5][0-9]|60)",
    ),
    ("SYSLOGTIMESTAMP", r"%{MONTH} +%{MONTHDAY} %{TIME}"),
    ("PROG", r"[\x21-\x5a\x5c\x5e-\x7e]+"),
    ("SYSLOGPROG", r"%{PROG:program}(?:\[%{POSINT:pid:int}\])?"),
    ("SYSLOGHOST", r"%{IPORHOST}"),
    (
        "SYSLOGFACILITY",
        r"<%{NONNEGINT:facility:int}.%{NONNEGINT:priority:int}>",
    ),
    (
        "SYSLOGBASE",
        r"%{SYSLOGTIMESTAMP:timestamp} (?:%{SYSLOGFACILITY} )?%{SYSLOGHOST:logsource} %{SYSLOGPROG}:",
    ),
    (
        "HTTPDATE",
        r"(?:0[1-9]|[12][0-9]|3[01])/[A-Za-z]{3}/[0-9]{4}:(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]{1,6})? [+-](?:[01][0-9]|2[0-3])[0-5][0-9]",
    ),
    (
        "HTTPDERROR_DATE",
        r"%{DAY} %{MONTH} +(?:0?[1-9]|[12][0-9]|3[01]) (?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]{1,9})? [0-9]{4}",
    ),
    ("HTTPDUSER", r"%{EMAILADDRESS}|%{USER}"),
    (
        "COMMONAPACHELOG",
        r#"%{IPORHOST:clientip} %{HTTPDUSER:ident} %{HTTPDUSER:auth} \[%{HTTPDATE:timestamp}\] "(?:%{WORD:verb} %{NOTSPACE:request}(?: HTTP/%{NUMBER:httpversion})?|%{DATA:rawrequest})" %{INT:response:int} (?:%{INT:bytes:int}|-)"#,
    ),
    (
        "COMBINEDAPACHELOG",
        r"%{COMMONAPACHELOG} %{QS:referrer} %{QS:agent}",
    ),
    (
        "HTTPD20_ERRORLOG",
        r"\[%{HTTPDERROR_DATE:ts}\] \[%{LOGLEVEL:level}\] (?:\[client %{IPORHOST:client}\] )?%{GREEDYDATA:message}",
    ),
    (
        "HTTPD24_ERRORLOG",
        r"\[%{HTTPDERROR_DATE:ts}\] \[(?:%{WORD:module})?:%{LOGLEVEL:level}\] \[pid %{POSINT:pid:int}(?::tid %{INT:tid:int})?\](?: \[client %{IPORHOST:client}:%{POSINT:client_port:int}\])? %{GREEDYDATA:message}",
    ),
    (
        "LOGLEVEL",
        r"[Aa]lert|ALERT|[Tt]race|TRACE|[Dd]ebug|DEBUG|[Nn]otice|NOTICE|[Ii]nfo(?:rmation)?|INFO(?:RMATION)?|[Ww]arn(?:ing)?|WARN(?:ING)?|[Ee]rr(?:or)?|ERR(?:OR)?|[Cc]rit(?:ical)?|CRIT(?:ICAL)?|[Ff]atal|FATAL|[Ss]evere|SEVERE|EMERG(?:ENCY)?|[Ee]merg(?:ency)?",
    ),
    (
        "JAVACLASS",
        r"(?:[a-zA-Z$_][a-zA-Z$_0-9]*\.)*[a-zA-Z$_][a-zA-Z$_0-9]*",
    ),
    ("JAVAFILE", r"[a-zA-Z$_0-9. -]+"),
    ("JAVAMETHOD", r"<(?:cl)?init>|[a-zA-Z$_][a-zA-Z$_0-9]*"),
    ("JAVATHREAD", r"[A-Z]{2}-Processor[0-9]+"),
    (
        "JAVASTACKTRACEPART",
        r"%{SPACE}at %{JAVACLASS:class}\.%{JAVAMETHOD:method}\(%{JAVAFILE:file}(?::%{INT:line:int})?\)",
    ),
    ("JAVALOGMESSAGE", r"(?s-u:.*)"),
    ("LOG4J_THREAD", r"(?-u:(?:[^\[\]\n]|\[[^\[\]\n]*\])*)"),
    (
        "HDFS_TIMESTAMP",
        r"[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01]) (?:[01][0-9]|2[0-3])[0-5][0-9](?:[0-5][0-9]|60)",
    ),
    (
        "SPARK_TIMESTAMP",
        r"[0-9]{2}/(?:0[1-9]|1[0-2])/(?:0[1-9]|[12][0-9]|3[01]) (?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)",
    ),
    (
        "BGL_TIMESTAMP",
        r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])-(?:[01][0-9]|2[0-3])\.[0-5][0-9]\.(?:[0-5][0-9]|60)\.[0-9]{6}",
    ),
    (
        "HEALTHAPP_TIMESTAMP",
        r"[0-9]{4}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])-(?:[01]?[0-9]|2[0-3]):[0-5]?[0-9]:(?:[0-5]?[0-9]|60):[0-9]{1,3}",
    ),
    (
        "LOGCAT_TIMESTAMP",
        r"(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01]) (?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)\.[0-9]{3}",
    ),
];

/// How the library's typed timestamp patterns are read (see the module docs).
const TIMESTAMP_PATTERNS: &[(&str, &str)] = &[
    ("TIMESTAMP_ISO8601", "iso"),
    ("HTTPDATE", "clf"),
    ("HTTPDERROR_DATE", "%a %b %e %H:%M:%S%.f %Y"),
    ("DATESTAMP_RFC2822", "%a, %e %b %Y %H:%M:%S%.f %z"),
    ("DATESTAMP_EVENTLOG", "%Y%m%d%H%M%S"),
    ("HDFS_TIMESTAMP", "%y%m%d %H%M%S"),
    ("SPARK_TIMESTAMP", "%y/%m/%d %H:%M:%S"),
    ("BGL_TIMESTAMP", "%Y-%m-%d-%H.%M.%S%.f"),
    ("HEALTHAPP_TIMESTAMP", "%Y%m%d-%H:%M:%S:%L"),
];

/// A built-in layout for a common kind of text log: a grok pattern and, for logs whose
/// records may span several lines, the pattern of a record's first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The layout's name; jobs may write `pattern = "%{NAME}"`.
    pub name: &'static str,
    /// The grok pattern of a whole record.
    pub pattern: &'static str,
    /// A grok pattern matching the first line of a record (for
    /// [`crate::ParseOptions::record_start`]), for logs with multi-line records.
    pub record_start: Option<&'static str>,
    /// What the layout is for, for people.
    pub description: &'static str,
}

/// The built-in layouts, specific first (see the module docs' table).
pub const LAYOUTS: &[Layout] = &[
    Layout {
        name: "HDFS",
        pattern: r"%{HDFS_TIMESTAMP:ts} %{INT:pid:int} %{LOGLEVEL:level} %{JAVACLASS:component}: %{GREEDYDATA:message}",
        record_start: Some(r"^%{HDFS_TIMESTAMP} [0-9]+ %{LOGLEVEL} "),
        description: "Hadoop HDFS: `yyMMdd HHmmss pid LEVEL component: message`",
    },
    Layout {
        name: "HADOOP",
        pattern: r"%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} \[%{LOG4J_THREAD:thread}\] %{JAVACLASS:logger}: %{GREEDYDATA:message}",
        record_start: Some(r"^%{TIMESTAMP_ISO8601} %{LOGLEVEL} \["),
        description: "Hadoop MapReduce/YARN log4j: `ISO-time LEVEL [thread] logger: message`",
    },
    Layout {
        name: "ZOOKEEPER",
        pattern: r"%{TIMESTAMP_ISO8601:ts} - %{LOGLEVEL:level} +\[%{LOG4J_THREAD:thread}:%{JAVACLASS:class}@%{INT:line:int}\] - %{GREEDYDATA:message}",
        record_start: Some(r"^%{TIMESTAMP_ISO8601} - %{LOGLEVEL} "),
        description: "ZooKeeper log4j: `ISO-time - LEVEL [thread:Class@line] - message`",
    },
    Layout {
        name: "SPARK",
        pattern: r"%{SPARK_TIMESTAMP:ts} %{LOGLEVEL:level} %{JAVACLASS:logger}: %{GREEDYDATA:message}",
        record_start: Some(r"^%{SPARK_TIMESTAMP} %{LOGLEVEL} "),
        description: "Spark log4j: `yy/MM/dd HH:mm:ss LEVEL logger: message`",
    },
    Layout {
        name: "HTTPD_ERRORLOG",
        pattern: r"%{HTTPD24_ERRORLOG}|%{HTTPD20_ERRORLOG}",
        record_start: None,
        description: "Apache httpd error log, 2.0 (`[date] [level] message`) and 2.4 \
                      (`[date] [module:level] [pid N:tid M] message`)",
    },
    Layout {
        name: "BGL",
        pattern: r"(?:-|%{NOTSPACE:alert}) %{INT:ts:ts(epoch)} %{BGL_DATE:date} %{NOTSPACE:node} %{BGL_TIMESTAMP:local_ts} %{NOTSPACE:node_repeat} %{WORD:type} %{WORD:component} %{LOGLEVEL:level}(?: %{GREEDYDATA:message})?",
        record_start: None,
        description: "BlueGene/L RAS log: `alert epoch yyyy.MM.dd node local-time node type \
                      component level message`",
    },
    Layout {
        name: "ANDROID_LOGCAT",
        pattern: r"%{LOGCAT_TIMESTAMP:time} +%{INT:pid:int} +%{INT:tid:int} %{LOGCAT_PRIORITY:priority} %{LOGCAT_TAG:tag}: %{GREEDYDATA:message}",
        record_start: None,
        description: "Android logcat `threadtime`: `MM-dd HH:mm:ss.SSS pid tid P tag: message` \
                      (no year: `time` stays a string)",
    },
    Layout {
        name: "HEALTHAPP",
        pattern: r"%{HEALTHAPP_TIMESTAMP:ts}\|%{HEALTHAPP_COMPONENT:component}\|%{INT:pid:int}\|%{GREEDYDATA:message}",
        record_start: None,
        description: "HealthApp: `yyyyMMdd-H:m:s:S|component|pid|message`",
    },
    Layout {
        name: "LOG4J",
        pattern: r"%{TIMESTAMP_ISO8601:ts}(?: -)? +(?:\[%{LOG4J_THREAD:thread}\] +)?%{LOGLEVEL:level}(?: +(?:\[%{LOG4J_THREAD:thread}\] +(?:- )?)?(?:%{JAVACLASS:logger} *[:-] +)?%{GREEDYDATA:message})?",
        record_start: Some(r"^%{TIMESTAMP_ISO8601} "),
        description: "generic log4j/logback: `ISO-time [thread] LEVEL [thread] logger - message`, \
                      Java stack traces kept in their record",
    },
];

/// Helper patterns the layouts use, beyond [`LIBRARY`].
const LAYOUT_PARTS: &[(&str, &str)] = &[
    ("BGL_DATE", r"[0-9]{4}\.[0-9]{2}\.[0-9]{2}"),
    ("LOGCAT_PRIORITY", r"[VDIWEFAS]"),
    ("LOGCAT_TAG", r"(?-u:[^:\n]*?)"),
    ("HEALTHAPP_COMPONENT", r"(?-u:[^|\n]*)"),
];

/// The built-in layout called `name`.
pub fn layout(name: &str) -> Option<&'static Layout> {
    LAYOUTS.iter().find(|l| l.name == name)
}

fn invalid(msg: impl Into<String>) -> FormatError {
    FormatError::InvalidOption(msg.into())
}

// ---------------------------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------------------------

/// One part of a fast timestamp format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TsItem {
    /// Bytes that must appear as they are.
    Lit(Vec<u8>),
    /// Any run of spaces and tabs, none included.
    Blanks,
    Year4,
    Year2,
    Month,
    MonthName,
    Day,
    /// `%e`: an optional space, then the day.
    DaySpace,
    Hour,
    Minute,
    Second,
    Weekday,
    /// Fraction of a second: `dot` (required, or optional when `digits` is `None`), then
    /// exactly `digits` digits (or 1 to 9).
    Frac {
        dot: bool,
        digits: Option<u8>,
    },
    /// `%L`: milliseconds as an integer of 1 to 3 digits.
    Millis,
    Zone,
}

/// How a `ts` capture is read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TsReader {
    /// ISO 8601, then the access-log `%t`, then epoch numbers.
    Auto,
    /// ISO 8601 (`,` before the fraction allowed).
    Iso,
    /// The access-log `%t` format.
    Clf,
    /// Epoch seconds, millis, micros or nanos, by magnitude.
    Epoch,
    /// A strftime format the fast reader knows.
    Fast(Vec<TsItem>),
    /// Any other strftime format, through chrono.
    Chrono(String),
}

impl TsReader {
    fn parse_spec(spec: &str) -> Result<TsReader> {
        match spec {
            "iso" => return Ok(TsReader::Iso),
            "clf" => return Ok(TsReader::Clf),
            "epoch" => return Ok(TsReader::Epoch),
            _ => {}
        }
        if !spec.contains('%') {
            return Err(invalid(format!(
                "timestamp format {spec:?}: expected iso, clf, epoch or a strftime format"
            )));
        }
        if let Some(items) = compile_fast(spec) {
            let has = |f: &dyn Fn(&TsItem) -> bool| items.iter().any(f);
            if !(has(&|i| matches!(i, TsItem::Year4 | TsItem::Year2))
                && has(&|i| matches!(i, TsItem::Month | TsItem::MonthName))
                && has(&|i| matches!(i, TsItem::Day | TsItem::DaySpace)))
            {
                return Err(invalid(format!(
                    "timestamp format {spec:?} needs a year, a month and a day"
                )));
            }
            return Ok(TsReader::Fast(items));
        }
        use chrono::format::{Item, StrftimeItems};
        if StrftimeItems::new(spec).any(|i| matches!(i, Item::Error)) {
            return Err(invalid(format!("invalid timestamp format {spec:?}")));
        }
        Ok(TsReader::Chrono(spec.to_string()))
    }

    /// Microseconds since the epoch (UTC) and the numeric zone offset in minutes, if any.
    fn read(&self, s: &str) -> Option<(i64, Option<i32>)> {
        let b = s.as_bytes();
        match self {
            TsReader::Auto => read_iso(b)
                .or_else(|| ts::parse_clf_tz(b))
                .or_else(|| ts::parse_epoch(b).map(|t| (t, None))),
            TsReader::Iso => read_iso(b),
            TsReader::Clf => ts::parse_clf_tz(b),
            TsReader::Epoch => ts::parse_epoch(b).map(|t| (t, None)),
            TsReader::Fast(items) => read_fast(items, b),
            TsReader::Chrono(f) => ts::parse_with_format(s, f),
        }
    }
}

/// ISO 8601 through [`ts::parse_iso_tz`], after turning a `,` before the fraction into `.`
/// and dropping fraction digits beyond microseconds.
fn read_iso(s: &[u8]) -> Option<(i64, Option<i32>)> {
    if let Some(r) = ts::parse_iso_tz(s) {
        return Some(r);
    }
    if s.len() < 21 || s.len() > 64 || !matches!(s[19], b',' | b'.') {
        return None;
    }
    let digits = s[20..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut buf = [0u8; 64];
    let keep = 20 + digits.min(6);
    buf[..keep].copy_from_slice(&s[..keep]);
    buf[19] = b'.';
    let rest = &s[20 + digits..];
    buf[keep..keep + rest.len()].copy_from_slice(rest);
    ts::parse_iso_tz(&buf[..keep + rest.len()])
}

/// Compiles a strftime format for the fast reader; `None` when it uses a specifier the fast
/// reader does not know.
fn compile_fast(spec: &str) -> Option<Vec<TsItem>> {
    let mut items = Vec::new();
    let mut lit = Vec::new();
    let b = spec.as_bytes();
    let mut i = 0;
    let flush = |lit: &mut Vec<u8>, items: &mut Vec<TsItem>| {
        if !lit.is_empty() {
            items.push(TsItem::Lit(std::mem::take(lit)));
        }
    };
    while i < b.len() {
        let c = b[i];
        if c == b' ' || c == b'\t' {
            flush(&mut lit, &mut items);
            if items.last() != Some(&TsItem::Blanks) {
                items.push(TsItem::Blanks);
            }
            i += 1;
            continue;
        }
        if c != b'%' {
            lit.push(c);
            i += 1;
            continue;
        }
        let rest = &b[i + 1..];
        let (item, used): (Vec<TsItem>, usize) = match rest {
            [b'%', ..] => {
                lit.push(b'%');
                i += 2;
                continue;
            }
            [b'Y', ..] => (vec![TsItem::Year4], 1),
            [b'y', ..] => (vec![TsItem::Year2], 1),
            [b'm', ..] => (vec![TsItem::Month], 1),
            [b'b' | b'B' | b'h', ..] => (vec![TsItem::MonthName], 1),
            [b'd', ..] => (vec![TsItem::Day], 1),
            [b'e', ..] => (vec![TsItem::DaySpace], 1),
            [b'H', ..] => (vec![TsItem::Hour], 1),
            [b'M', ..] => (vec![TsItem::Minute], 1),
            [b'S', ..] => (vec![TsItem::Second], 1),
            [b'a' | b'A', ..] => (vec![TsItem::Weekday], 1),
            [b'z', ..] | [b':', b'z', ..] => {
                (vec![TsItem::Zone], if rest[0] == b':' { 2 } else { 1 })
            }
            [b'L', ..] => (vec![TsItem::Millis], 1),
            [b'.', b'f', ..] => (
                vec![TsItem::Frac {
                    dot: true,
                    digits: None,
                }],
                2,
            ),
            [b'.', d @ (b'3' | b'6' | b'9'), b'f', ..] => (
                vec![TsItem::Frac {
                    dot: true,
                    digits: Some(d - b'0'),
                }],
                3,
            ),
            [d @ (b'3' | b'6' | b'9'), b'f', ..] => (
                vec![TsItem::Frac {
                    dot: false,
                    digits: Some(d - b'0'),
                }],
                2,
            ),
            [b'T', ..] => (
                vec![
                    TsItem::Hour,
                    TsItem::Lit(b":".to_vec()),
                    TsItem::Minute,
                    TsItem::Lit(b":".to_vec()),
                    TsItem::Second,
                ],
                1,
            ),
            [b'D', ..] => (
                vec![
                    TsItem::Month,
                    TsItem::Lit(b"/".to_vec()),
                    TsItem::Day,
                    TsItem::Lit(b"/".to_vec()),
                    TsItem::Year2,
                ],
                1,
            ),
            [b'F', ..] => (
                vec![
                    TsItem::Year4,
                    TsItem::Lit(b"-".to_vec()),
                    TsItem::Month,
                    TsItem::Lit(b"-".to_vec()),
                    TsItem::Day,
                ],
                1,
            ),
            _ => return None,
        };
        flush(&mut lit, &mut items);
        items.extend(item);
        i += 1 + used;
    }
    flush(&mut lit, &mut items);
    Some(items)
}

/// Reads 1 to `max` ASCII digits at `*pos`.
fn take_num(s: &[u8], pos: &mut usize, min: usize, max: usize) -> Option<u32> {
    let n = s[*pos..]
        .iter()
        .take(max)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if n < min {
        return None;
    }
    let v = s[*pos..*pos + n]
        .iter()
        .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'));
    *pos += n;
    Some(v)
}

const MONTH_NAMES: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAY_NAMES: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

/// Index of the English name (full, or its first three letters) at `*pos`, any case.
fn take_name(s: &[u8], pos: &mut usize, names: &[&str]) -> Option<u32> {
    let rest = &s[*pos..];
    for (i, name) in names.iter().enumerate() {
        let n = name.as_bytes();
        if rest.len() >= n.len() && rest[..n.len()].eq_ignore_ascii_case(n) {
            *pos += n.len();
            return Some(i as u32);
        }
    }
    for (i, name) in names.iter().enumerate() {
        if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(&name.as_bytes()[..3]) {
            *pos += 3;
            return Some(i as u32);
        }
    }
    None
}

/// Reads a zone at `*pos`: `Z`, `±HH`, `±HHMM` or `±HH:MM`. Returns seconds east of UTC and
/// whether it was numeric.
fn take_zone(s: &[u8], pos: &mut usize) -> Option<(i64, bool)> {
    match s.get(*pos)? {
        b'Z' | b'z' => {
            *pos += 1;
            Some((0, false))
        }
        sign @ (b'+' | b'-') => {
            let neg = *sign == b'-';
            *pos += 1;
            let h = take_num(s, pos, 2, 2)?;
            let m = if s.get(*pos) == Some(&b':') {
                *pos += 1;
                take_num(s, pos, 2, 2)?
            } else if s.get(*pos).is_some_and(u8::is_ascii_digit) {
                take_num(s, pos, 2, 2)?
            } else {
                0
            };
            if h > 23 || m > 59 {
                return None;
            }
            let off = i64::from(h * 3600 + m * 60);
            Some((if neg { -off } else { off }, true))
        }
        _ => None,
    }
}

fn read_fast(items: &[TsItem], s: &[u8]) -> Option<(i64, Option<i32>)> {
    let (mut y, mut mo, mut d, mut h, mut mi, mut sec, mut micros) = (0i64, 0, 0, 0, 0, 0, 0);
    let mut weekday = None;
    let mut zone = (0i64, false);
    let mut pos = 0;
    for item in items {
        match item {
            TsItem::Lit(l) => {
                if !s[pos..].starts_with(l) {
                    return None;
                }
                pos += l.len();
            }
            TsItem::Blanks => {
                while matches!(s.get(pos), Some(b' ' | b'\t')) {
                    pos += 1;
                }
            }
            TsItem::Year4 => y = i64::from(take_num(s, &mut pos, 4, 4)?),
            TsItem::Year2 => {
                let v = i64::from(take_num(s, &mut pos, 2, 2)?);
                y = if v >= 70 { 1900 + v } else { 2000 + v };
            }
            TsItem::Month => mo = take_num(s, &mut pos, 1, 2)?,
            TsItem::MonthName => mo = take_name(s, &mut pos, &MONTH_NAMES)? + 1,
            TsItem::Day => d = take_num(s, &mut pos, 1, 2)?,
            TsItem::DaySpace => {
                if s.get(pos) == Some(&b' ') {
                    pos += 1;
                }
                d = take_num(s, &mut pos, 1, 2)?;
            }
            TsItem::Hour => h = take_num(s, &mut pos, 1, 2)?,
            TsItem::Minute => mi = take_num(s, &mut pos, 1, 2)?,
            TsItem::Second => sec = take_num(s, &mut pos, 1, 2)?,
            TsItem::Weekday => weekday = Some(take_name(s, &mut pos, &WEEKDAY_NAMES)?),
            TsItem::Frac { dot, digits } => {
                let has_dot = s.get(pos) == Some(&b'.');
                match (dot, digits, has_dot) {
                    (true, None, false) => continue,
                    (true, _, false) => return None,
                    (true, _, true) => pos += 1,
                    (false, _, _) => {}
                }
                let (lo, hi) = digits.map_or((1, 9), |n| (usize::from(n), usize::from(n)));
                let start = pos;
                take_num(s, &mut pos, lo, hi)?;
                let frac = &s[start..pos];
                let keep = &frac[..frac.len().min(6)];
                let v = keep
                    .iter()
                    .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'));
                micros = v * 10u32.pow(6 - keep.len() as u32);
            }
            TsItem::Millis => micros = take_num(s, &mut pos, 1, 3)? * 1000,
            TsItem::Zone => zone = take_zone(s, &mut pos)?,
        }
    }
    if pos != s.len() {
        return None;
    }
    let t = ts::civil_to_micros(y, mo, d, h, mi, sec, micros, zone.0)?;
    if let Some(wd) = weekday {
        // 1970-01-01 was a Thursday (4).
        if (ts::days_from_civil(y, mo, d) + 4).rem_euclid(7) != i64::from(wd) {
            return None;
        }
    }
    Some((t, zone.1.then_some((zone.0 / 60) as i32)))
}

// ---------------------------------------------------------------------------------------------
// Patterns
// ---------------------------------------------------------------------------------------------

/// The type of a captured column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaptureType {
    /// Verbatim text.
    String,
    /// A 64-bit integer.
    Int,
    /// A number (an integer value may stay an integer; mixed with fractions it widens to
    /// float).
    Float,
    /// A timestamp (UTC microseconds), plus `<name>_offset` when a zone offset is written.
    Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SlotType {
    String,
    Int,
    Float,
    Ts(TsReader),
}

impl SlotType {
    fn public(&self) -> CaptureType {
        match self {
            SlotType::String => CaptureType::String,
            SlotType::Int => CaptureType::Int,
            SlotType::Float => CaptureType::Float,
            SlotType::Ts(_) => CaptureType::Timestamp,
        }
    }
}

/// One capture group feeding a column.
#[derive(Debug, Clone)]
struct Slot {
    group: usize,
    ty: SlotType,
}

/// One output column: its name and the captures that may fill it (the first that took part
/// in the match wins).
#[derive(Debug, Clone)]
struct Column {
    name: String,
    offset_name: String,
    slots: Vec<Slot>,
}

/// A compiled regex or grok pattern. See the module docs.
#[derive(Debug)]
pub struct Pattern {
    source: String,
    expanded: String,
    /// `\A(?:expanded)\z`: whole records.
    full: Regex,
    /// `expanded`, unanchored: [`Pattern::is_match`].
    search: Regex,
    columns: Vec<Column>,
}

/// A named capture found during expansion.
struct NamedCapture {
    group: String,
    column: String,
    ty: SlotType,
}

struct Expander<'a> {
    defs: &'a [(String, String)],
    out: String,
    captures: Vec<NamedCapture>,
    stack: Vec<String>,
}

impl<'a> Expander<'a> {
    /// The definition of `name`, and whether it is the library's own (for typing).
    fn lookup(&self, name: &str) -> Option<(&'a str, bool)> {
        let defs: &'a [(String, String)] = self.defs;
        if let Some((_, d)) = defs.iter().find(|(n, _)| n == name) {
            return Some((d.as_str(), false));
        }
        LIBRARY
            .iter()
            .chain(LAYOUT_PARTS)
            .find(|(n, _)| *n == name)
            .map(|(_, d)| (*d, true))
            .or_else(|| layout(name).map(|l| (l.pattern, true)))
    }

    fn expand(&mut self, text: &str) -> Result<()> {
        let mut rest = text;
        while let Some(i) = rest.find("%{") {
            self.out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| invalid(format!("grok: unterminated %{{ in {:?}", rest)))?;
            let inner = &after[..end];
            rest = &after[end + 1..];
            let mut parts = inner.splitn(3, ':');
            let syntax = parts.next().unwrap_or("").trim();
            let name = parts.next().map(str::trim);
            let ty = parts.next().map(str::trim);
            if syntax.is_empty() {
                return Err(invalid(format!("grok: empty pattern name in %{{{inner}}}")));
            }
            let (def, builtin) = self
                .lookup(syntax)
                .ok_or_else(|| invalid(format!("grok: unknown pattern %{{{syntax}}}")))?;
            if self.stack.iter().any(|s| s == syntax) {
                let mut chain = self.stack.join(" -> ");
                chain.push_str(" -> ");
                chain.push_str(syntax);
                return Err(invalid(format!(
                    "grok: patterns refer to each other: {chain}"
                )));
            }
            if self.stack.len() >= MAX_DEPTH {
                return Err(invalid(format!(
                    "grok: pattern references nest deeper than {MAX_DEPTH} at %{{{syntax}}}"
                )));
            }
            match name {
                None => self.out.push_str("(?:"),
                Some(n) => {
                    let column = column_name(n).ok_or_else(|| {
                        invalid(format!("grok: empty column name in %{{{inner}}}"))
                    })?;
                    let ty = slot_type(syntax, builtin, ty)?;
                    let group = format!("{GROUP_PREFIX}{}", self.captures.len());
                    self.out.push_str("(?P<");
                    self.out.push_str(&group);
                    self.out.push('>');
                    self.captures.push(NamedCapture { group, column, ty });
                }
            }
            self.stack.push(syntax.to_string());
            self.expand(def)?;
            self.stack.pop();
            self.out.push(')');
            if self.out.len() > MAX_EXPANDED_BYTES {
                return Err(invalid(format!(
                    "grok: the expanded pattern is longer than {MAX_EXPANDED_BYTES} bytes"
                )));
            }
        }
        self.out.push_str(rest);
        Ok(())
    }
}

/// A column name from a grok name: `[a][b]` (Logstash's nested field syntax) becomes `a.b`.
fn column_name(n: &str) -> Option<String> {
    let name = if n.starts_with('[') && n.ends_with(']') {
        n[1..n.len() - 1].split("][").collect::<Vec<_>>().join(".")
    } else {
        n.to_string()
    };
    (!name.is_empty()).then_some(name)
}

/// The type of a named capture of `syntax` written with type `ty`.
fn slot_type(syntax: &str, builtin: bool, ty: Option<&str>) -> Result<SlotType> {
    let auto = builtin
        .then(|| TIMESTAMP_PATTERNS.iter().find(|(n, _)| *n == syntax))
        .flatten()
        .map(|(_, spec)| TsReader::parse_spec(spec))
        .transpose()?;
    Ok(match ty {
        None => auto.map_or(SlotType::String, SlotType::Ts),
        Some("string") => SlotType::String,
        Some("int") => SlotType::Int,
        Some("float") => SlotType::Float,
        Some("ts") => SlotType::Ts(auto.unwrap_or(TsReader::Auto)),
        Some(t) => match t.strip_prefix("ts(").and_then(|r| r.strip_suffix(')')) {
            Some(spec) => SlotType::Ts(TsReader::parse_spec(spec)?),
            None => {
                return Err(invalid(format!(
                    "grok: unknown type {t:?} in %{{{syntax}:...}}; expected int, float, \
                     string, ts or ts(FORMAT)"
                )))
            }
        },
    })
}

fn build_regex(src: &str) -> Result<Regex> {
    RegexBuilder::new(src)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| invalid(format!("pattern: {e}")))
}

impl Pattern {
    /// Compiles `src`, a grok pattern when `grok`, else a plain regex.
    pub fn compile(src: &str, grok: bool) -> Result<Pattern> {
        if grok {
            Self::compile_with_definitions(src, &[])
        } else {
            Self::build(src, src.to_string(), Vec::new())
        }
    }

    /// Compiles the grok pattern `src` with extra pattern definitions `(name, definition)`,
    /// which may refer to each other and to the library, and take precedence over it.
    pub fn compile_with_definitions(src: &str, defs: &[(String, String)]) -> Result<Pattern> {
        for (name, _) in defs {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(invalid(format!(
                    "grok: pattern name {name:?} must be letters, digits and _"
                )));
            }
        }
        let mut ex = Expander {
            defs,
            out: String::with_capacity(src.len() * 4),
            captures: Vec::new(),
            stack: Vec::new(),
        };
        ex.expand(src)?;
        Self::build(src, ex.out, ex.captures)
    }

    fn build(source: &str, expanded: String, captures: Vec<NamedCapture>) -> Result<Pattern> {
        let search = build_regex(&expanded)?;
        let full = build_regex(&format!(r"\A(?:{expanded})\z"))?;
        let mut columns: Vec<Column> = Vec::new();
        for (group, name) in full.capture_names().enumerate() {
            let Some(name) = name else { continue };
            let (column, ty) = match name.strip_prefix(GROUP_PREFIX) {
                Some(_) => {
                    let Some(c) = captures.iter().find(|c| c.group == name) else {
                        return Err(invalid(format!(
                            "pattern: group names starting with {GROUP_PREFIX} are reserved"
                        )));
                    };
                    (c.column.clone(), c.ty.clone())
                }
                None => (name.to_string(), SlotType::String),
            };
            let slot = Slot { group, ty };
            match columns.iter_mut().find(|c| c.name == column) {
                Some(c) => c.slots.push(slot),
                None => columns.push(Column {
                    offset_name: format!("{column}_offset"),
                    name: column,
                    slots: vec![slot],
                }),
            }
        }
        for c in &columns {
            let has_ts = c.slots.iter().any(|s| matches!(s.ty, SlotType::Ts(_)));
            if has_ts && columns.iter().any(|o| o.name == c.offset_name) {
                return Err(invalid(format!(
                    "pattern: column {:?} would collide with the zone offset of timestamp {:?}",
                    c.offset_name, c.name
                )));
            }
        }
        Ok(Pattern {
            source: source.to_string(),
            expanded,
            full,
            search,
            columns,
        })
    }

    /// Whether the pattern matches `line` (anywhere; anchor with `^` to match the start).
    pub fn is_match(&self, line: &[u8]) -> bool {
        self.search.is_match(line)
    }

    /// Whether the pattern matches the whole of `record`, as the parser requires.
    pub fn matches_whole(&self, record: &[u8]) -> bool {
        self.full.is_match(record)
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The regex after grok expansion (unanchored).
    pub fn expanded(&self) -> &str {
        &self.expanded
    }

    /// The output columns, in the order of their first capture, with their types (a column
    /// fed by several captures of different types reports the first).
    pub fn columns(&self) -> impl Iterator<Item = (&str, CaptureType)> + '_ {
        self.columns
            .iter()
            .map(|c| (c.name.as_str(), c.slots[0].ty.public()))
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// The regex / grok parser.
pub struct GrokParser {
    pattern: Arc<Pattern>,
    locs: CaptureLocations,
}

impl GrokParser {
    /// A parser for a compiled pattern.
    pub fn new(pattern: Arc<Pattern>) -> Self {
        let locs = pattern.full.capture_locations();
        GrokParser { pattern, locs }
    }
}

/// Text of a rejected value, cut for messages.
fn shown(v: &str) -> String {
    let end = (0..=v.len().min(64))
        .rev()
        .find(|&i| v.is_char_boundary(i))
        .unwrap_or(0);
    format!("{:?}", &v[..end])
}

impl LineParser for GrokParser {
    fn parse_line(
        &mut self,
        line: &[u8],
        base: usize,
        rows: &mut RowsBuilder,
    ) -> std::result::Result<(), String> {
        let text = crate::utf8(line)?;
        let pattern = &*self.pattern;
        if pattern.full.captures_read(&mut self.locs, line).is_none() {
            return Err("does not match the pattern".to_string());
        }
        for col in &pattern.columns {
            let hit = col
                .slots
                .iter()
                .find_map(|s| self.locs.get(s.group).map(|(a, b)| (s, a, b)));
            let Some((slot, a, b)) = hit else {
                rows.push_null(&col.name);
                continue;
            };
            let name = col.name.as_str();
            if !text.is_char_boundary(a) || !text.is_char_boundary(b) {
                let at = if text.is_char_boundary(a) { b } else { a };
                return Err(format!(
                    "field {name:?}: the capture splits a UTF-8 character at byte {at}"
                ));
            }
            let v = &text[a..b];
            match &slot.ty {
                SlotType::String => rows.push_raw_str(name, base + a, b - a),
                _ if v.is_empty() => rows.push_null(name),
                SlotType::Int => {
                    let n: i64 = v
                        .parse()
                        .map_err(|_| format!("field {name:?}: {} is not a valid int", shown(v)))?;
                    rows.push_int(name, n, base + a, b - a);
                }
                SlotType::Float => {
                    // Digits, sign, point and exponent only (Rust would also read `inf`, `NaN`).
                    let plain = v.bytes().all(|c| {
                        c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.' | b'e' | b'E')
                    });
                    let n = v
                        .parse::<f64>()
                        .ok()
                        .filter(|n| plain && n.is_finite())
                        .ok_or_else(|| {
                            format!("field {name:?}: {} is not a valid float", shown(v))
                        })?;
                    rows.push_float(name, n, base + a, b - a);
                }
                SlotType::Ts(reader) => {
                    let (micros, offset) = reader.read(v).ok_or_else(|| {
                        format!("field {name:?}: {} is not a valid timestamp", shown(v))
                    })?;
                    rows.push_ts(name, micros, base + a, b - a);
                    if let Some(minutes) = offset {
                        // The zone's text: from its sign to the end, where it usually is.
                        let z = v.rfind(['+', '-']).unwrap_or(0);
                        rows.push_int(
                            &col.offset_name,
                            i64::from(minutes),
                            base + a + z,
                            v.len() - z,
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
    use arrow_array::{Array, RecordBatch};
    use arrow_schema::DataType;
    use proptest::prelude::*;

    use super::*;
    use crate::{parse_all, Format, ParseOptions, ParsedChunk};

    fn grok(pattern: &str, input: &str) -> ParsedChunk {
        grok_bytes(pattern, None, input.as_bytes())
    }

    fn grok_bytes(pattern: &str, record_start: Option<&str>, input: &[u8]) -> ParsedChunk {
        let mut o = ParseOptions::new(Format::Grok);
        o.pattern = Some(pattern.into());
        o.record_start = record_start.map(Into::into);
        o.prepare().unwrap();
        parse_all(&o, input).unwrap()
    }

    fn err(pattern: &str) -> String {
        match Pattern::compile(pattern, true) {
            Err(FormatError::InvalidOption(m)) => m,
            other => panic!("{pattern}: expected InvalidOption, got {other:?}"),
        }
    }

    fn str_at(b: &RecordBatch, col: &str, row: usize) -> Option<String> {
        let c = b.column_by_name(col).unwrap();
        let null = c.data_type() == &DataType::Null || c.is_null(row);
        (!null).then(|| c.as_string::<i32>().value(row).to_string())
    }

    fn int_at(b: &RecordBatch, col: &str, row: usize) -> Option<i64> {
        let c = b.column_by_name(col).unwrap();
        let null = c.data_type() == &DataType::Null || c.is_null(row);
        (!null).then(|| c.as_primitive::<Int64Type>().value(row))
    }

    fn ts_at(b: &RecordBatch, col: &str, row: usize) -> i64 {
        b.column_by_name(col)
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>()
            .value(row)
    }

    fn micros(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_micros()
    }

    #[test]
    fn every_library_pattern_and_layout_expands_and_compiles() {
        let names = LIBRARY
            .iter()
            .chain(LAYOUT_PARTS)
            .map(|(n, _)| *n)
            .chain(LAYOUTS.iter().map(|l| l.name));
        for name in names {
            let p = Pattern::compile(&format!("%{{{name}:x}}"), true)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!p.expanded().contains("%{"), "{name}");
            assert_eq!(p.columns().next().map(|c| c.0), Some("x"), "{name}");
        }
        for l in LAYOUTS {
            Pattern::compile(l.pattern, true).unwrap();
            if let Some(s) = l.record_start {
                Pattern::compile(s, true).unwrap();
            }
        }
        // Nested references expand recursively, and nested names become columns.
        let p = Pattern::compile("%{HOSTPORT:hp} %{SYSLOGPROG}", true).unwrap();
        let cols: Vec<_> = p.columns().collect();
        assert_eq!(
            cols,
            [
                ("hp", CaptureType::String),
                ("program", CaptureType::String),
                ("pid", CaptureType::Int)
            ]
        );
        assert!(p.matches_whole(b"example.com:8080 sshd[42]"));
        assert!(!p.matches_whole(b"[::1]:8080 cron"));
        assert!(p.matches_whole(b"10.0.0.1:443 cron"));
    }

    #[test]
    fn unknown_names_cycles_and_bad_syntax_are_clear_errors() {
        assert!(err("%{NOPE:x}").contains("unknown pattern %{NOPE}"));
        assert!(err("%{INT:x").contains("unterminated"));
        assert!(err("%{:x}").contains("empty pattern name"));
        assert!(err("%{INT:}").contains("empty column name"));
        assert!(err("%{INT:x:bogus}").contains("unknown type \"bogus\""));
        assert!(err("%{DATA:x:ts(%Q)}").contains("invalid timestamp format"));
        assert!(err("%{DATA:x:ts(%H:%M)}").contains("needs a year, a month and a day"));
        assert!(err("%{DATA:x:ts(yesterday)}").contains("expected iso, clf, epoch"));
        assert!(err("(?P<_grok_9>a)").contains("reserved"));
        assert!(err("%{INT:ts:ts} %{INT:ts_offset}").contains("collide"));
        assert!(err("(unclosed").contains("pattern:"));
        let defs = |d: &[(&str, &str)]| -> Vec<(String, String)> {
            d.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let cyc = Pattern::compile_with_definitions(
            "%{A:a}",
            &defs(&[("A", "x%{B}"), ("B", "%{INT}|%{A}")]),
        )
        .unwrap_err()
        .to_string();
        assert!(cyc.contains("A -> B -> A"), "{cyc}");
        let own = Pattern::compile_with_definitions(
            "%{KV:kv} %{INT:n}",
            &defs(&[("KV", "%{WORD}=%{WORD}"), ("INT", "[0-9]{2}")]),
        )
        .unwrap();
        assert!(own.matches_whole(b"a=b 12"));
        assert!(
            !own.matches_whole(b"a=b 123"),
            "definitions override the library"
        );
        assert!(Pattern::compile_with_definitions("x", &defs(&[("bad name", "x")])).is_err());
        // A pattern that expands without end is cut off.
        let mut many = vec![("P0".to_string(), "x".to_string())];
        for i in 1..20 {
            many.push((format!("P{i}"), format!("%{{P{}}}%{{P{}}}", i - 1, i - 1)));
        }
        let e = Pattern::compile_with_definitions("%{P19}", &many)
            .unwrap_err()
            .to_string();
        assert!(e.contains("longer than"), "{e}");
        let mut deep = vec![("D0".to_string(), "x".to_string())];
        for i in 1..40 {
            deep.push((format!("D{i}"), format!("%{{D{}}}", i - 1)));
        }
        let e = Pattern::compile_with_definitions("%{D39}", &deep)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nest deeper"), "{e}");
    }

    #[test]
    fn typed_captures() {
        let p = grok(
            "%{INT:n:int} %{NUMBER:f:float} %{NOTSPACE:t:ts} %{DATA:d:ts(%y%m%d %H%M%S)} \
             %{INT:e:ts(epoch)} %{TIMESTAMP_ISO8601:auto} %{INT:s:string}",
            "-42 2.5 2026-01-02T03:04:05.5+02:00 081109 203615 1117838570 2015-10-18 18:01:47,978 007\n\
             +7 -1.25 2000-10-10T13:55:36-0700 991231 235959 1117838570123 2015-10-18T18:01:47.123456789Z 8\n",
        );
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        let b = &p.batch;
        assert_eq!((int_at(b, "n", 0), int_at(b, "n", 1)), (Some(-42), Some(7)));
        let f = b.column_by_name("f").unwrap().as_primitive::<Float64Type>();
        assert_eq!((f.value(0), f.value(1)), (2.5, -1.25));
        assert_eq!(ts_at(b, "t", 0), micros("2026-01-02T01:04:05.5Z"));
        assert_eq!(ts_at(b, "t", 1), micros("2000-10-10T20:55:36Z"));
        assert_eq!(int_at(b, "t_offset", 0), Some(120));
        assert_eq!(int_at(b, "t_offset", 1), Some(-420));
        assert_eq!(ts_at(b, "d", 0), micros("2008-11-09T20:36:15Z"));
        assert_eq!(ts_at(b, "d", 1), micros("1999-12-31T23:59:59Z"));
        assert_eq!(ts_at(b, "e", 0), micros("2005-06-03T22:42:50Z"));
        assert_eq!(ts_at(b, "e", 1), micros("2005-06-03T22:42:50.123Z"));
        assert_eq!(ts_at(b, "auto", 0), micros("2015-10-18T18:01:47.978Z"));
        // Digits beyond microseconds are dropped.
        assert_eq!(ts_at(b, "auto", 1), micros("2015-10-18T18:01:47.123456Z"));
        assert!(b.column_by_name("auto_offset").is_none());
        let p = grok(r"\[%{DATA:t:ts}\]", "[10/Oct/2000:13:55:36 -0700]\n");
        assert_eq!(ts_at(&p.batch, "t", 0), micros("2000-10-10T20:55:36Z"));
        assert_eq!(int_at(&p.batch, "t_offset", 0), Some(-420));
        assert_eq!(str_at(b, "s", 0).as_deref(), Some("007"));

        // Values that do not read as their type reject the record, with the reason.
        let p = grok("%{NOTSPACE:n:int}", "12\n1.5\n99999999999999999999\n");
        assert_eq!(p.batch.num_rows(), 1);
        assert_eq!(p.rejects[0].line, 2);
        assert_eq!(
            p.rejects[0].reason,
            r#"field "n": "1.5" is not a valid int"#
        );
        assert!(p.rejects[1].reason.contains("not a valid int"));
        let p = grok("%{NOTSPACE:x:float}", "1e3\nNaN\n.5\ninf\n7\n");
        assert_eq!(p.batch.num_rows(), 3);
        assert_eq!(p.rejects.len(), 2);
        // Whole numbers in a float capture keep the column a float column.
        let x = p
            .batch
            .column_by_name("x")
            .unwrap()
            .as_primitive::<Float64Type>();
        assert_eq!(x.values(), &[1000.0, 0.5, 7.0]);
        let p = grok(
            "%{NOTSPACE:t:ts}",
            "2026-02-30T00:00:00Z\nsoon\n2026-02-28T00:00:00Z\n",
        );
        assert_eq!(p.batch.num_rows(), 1);
        assert_eq!(
            p.rejects[0].reason,
            r#"field "t": "2026-02-30T00:00:00Z" is not a valid timestamp"#
        );
        // A user format through chrono (`%j`: day of the year).
        let p = grok("%{DATA:t:ts(%Y-%j %H:%M)}", "2026-032 10:30\n");
        assert_eq!(ts_at(&p.batch, "t", 0), micros("2026-02-01T10:30:00Z"));
    }

    #[test]
    fn fast_timestamp_formats_agree_with_chrono() {
        let cases = [
            ("%y%m%d %H%M%S", "081109 203615"),
            ("%y/%m/%d %H:%M:%S", "17/06/09 20:10:40"),
            ("%a %b %d %H:%M:%S %Y", "Sun Dec 04 04:47:44 2005"),
            ("%a %b %e %H:%M:%S%.f %Y", "Wed Oct 11 14:32:52.123456 2000"),
            ("%Y-%m-%d-%H.%M.%S%.f", "2005-06-03-15.42.50.675872"),
            ("%Y-%m-%d %H:%M:%S,%3f", "2015-10-18 18:01:47,978"),
            ("%d/%b/%Y:%H:%M:%S %z", "10/Oct/2000:13:55:36 -0700"),
            ("%Y-%m-%dT%H:%M:%S%.f%:z", "2026-01-01T00:00:00.5+05:30"),
            ("%F %T", "2024-02-29 23:59:60"),
            ("%D %T", "02/29/24 12:00:00"),
            ("%d %B %Y", "4 December 2005"),
        ];
        for (fmt, s) in cases {
            let fast = TsReader::parse_spec(fmt).unwrap();
            assert!(matches!(fast, TsReader::Fast(_)), "{fmt}");
            assert_eq!(fast.read(s), ts::parse_with_format(s, fmt), "{fmt} {s}");
            assert!(fast.read(s).is_some(), "{fmt} {s}");
        }
        let r = |fmt: &str, s: &str| TsReader::parse_spec(fmt).unwrap().read(s);
        // A weekday that disagrees with the date, trailing text, a bad day.
        assert_eq!(r("%a %b %d %H:%M:%S %Y", "Mon Dec 04 04:47:44 2005"), None);
        assert_eq!(r("%y%m%d %H%M%S", "081109 203615x"), None);
        assert_eq!(r("%y%m%d %H%M%S", "080230 203615"), None);
        // `%L`: milliseconds as an unpadded integer.
        assert_eq!(
            r("%Y%m%d-%H:%M:%S:%L", "20171223-23:1:5:8"),
            Some((micros("2017-12-23T23:01:05.008Z"), None))
        );
        assert_eq!(
            r("%Y-%m-%dT%H:%M:%S%z", "2026-01-01T00:00:00Z"),
            Some((micros("2026-01-01T00:00:00Z"), None))
        );
        assert_eq!(
            r("%Y-%m-%dT%H:%M:%S%z", "2026-01-01T00:00:00+01"),
            Some((micros("2025-12-31T23:00:00Z"), Some(60)))
        );
        assert_eq!(r("%Y-%m-%dT%H:%M:%S%z", "2026-01-01T00:00:00+01:3"), None);
    }

    #[test]
    fn optional_groups_are_null_and_alternatives_share_a_column() {
        let p = grok(
            "%{WORD:a}(?: %{INT:b:int})?(?: \\[%{WORD:c}\\])?",
            "x 1 [y]\nx\nx [z]\n",
        );
        assert!(p.rejects.is_empty());
        let b = &p.batch;
        assert_eq!(
            (int_at(b, "b", 0), int_at(b, "b", 1), int_at(b, "b", 2)),
            (Some(1), None, None)
        );
        assert_eq!(str_at(b, "c", 1), None);
        assert_eq!(str_at(b, "c", 2).as_deref(), Some("z"));
        // One name in two alternatives: one column, from whichever matched.
        let p = grok("%{INT:v:int}|v=%{WORD:v}", "12\nv=abc\n");
        assert_eq!(p.batch.num_columns(), 1);
        assert_eq!(str_at(&p.batch, "v", 1).as_deref(), Some("abc"));
        // A typed capture that matched nothing is null too.
        let p = grok("%{WORD:a} (?<n>[0-9]*)%{INT:m:int}?", "a 5\n");
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
    }

    #[test]
    fn a_record_must_match_whole() {
        let p = grok("%{INT:n:int}", "12\n12 tail\nx12\n12\r\n");
        assert_eq!(p.batch.num_rows(), 2);
        assert_eq!(
            p.rejects
                .iter()
                .map(|r| (r.line, r.reason.as_str()))
                .collect::<Vec<_>>(),
            [
                (2, "does not match the pattern"),
                (3, "does not match the pattern")
            ]
        );
        // `is_match` (record starts) searches anywhere unless anchored with `^`.
        let p = Pattern::compile("%{INT}", true).unwrap();
        assert!(p.is_match(b"x12"));
        assert!(!p.matches_whole(b"x12"));
        assert!(!Pattern::compile("^%{INT}", true).unwrap().is_match(b"x12"));
        // A pattern without names compiles (record starts) but gives records no fields.
        let p = grok("%{INT}", "12\n");
        assert_eq!(p.rejects[0].reason, "record has no fields");
    }

    #[test]
    fn plain_regexes_capture_strings() {
        let mut o = ParseOptions::new(Format::Regex);
        o.pattern = Some(r"(?P<key>\w+)=(?<value>\d+)(?: (\w+))?".into());
        o.prepare().unwrap();
        let p = parse_all(&o, b"a=1\nb=22 extra\n%{INT}\n").unwrap();
        assert_eq!(p.batch.num_rows(), 2);
        assert_eq!(p.batch.num_columns(), 2);
        assert_eq!(str_at(&p.batch, "value", 1).as_deref(), Some("22"));
        assert_eq!(p.batch.schema().field(1).data_type(), &DataType::Utf8);
        // `%{...}` is not expanded in a plain regex.
        assert!(Pattern::compile("%{INT:n}", false).is_err());
    }

    #[test]
    fn utf8_is_checked() {
        let mut input = b"caf\xc3\xa9 ok\n".to_vec();
        input.extend_from_slice(b"bad \xff byte\n");
        let p = grok_bytes("%{NOTSPACE:a} %{GREEDYDATA:b}", None, &input);
        assert_eq!(p.batch.num_rows(), 1);
        assert_eq!(str_at(&p.batch, "a", 0).as_deref(), Some("café"));
        assert_eq!(p.rejects[0].reason, "invalid UTF-8 at byte 4");
        // A byte-level capture may not split a character.
        let p = grok_bytes(r"(?-u:(?P<a>.)(?P<b>.*))", None, "é".as_bytes());
        assert_eq!(
            p.rejects[0].reason,
            r#"field "a": the capture splits a UTF-8 character at byte 1"#
        );
    }

    #[test]
    fn multi_line_records_keep_stack_traces() {
        let l = layout("LOG4J").unwrap();
        let input = "2024-01-01 10:00:00,001 INFO  [main] com.example.App - started\n\
                     2024-01-01 10:00:01,002 ERROR [worker-1] com.example.Job - failed\n\
                     java.lang.IllegalStateException: boom\n\
                     \tat com.example.Job.run(Job.java:42)\r\n\
                     Caused by: java.io.IOException: disk\n\
                     \t... 3 more\n\
                     2024-01-01 10:00:02,003 WARN  [main] com.example.App - done\n";
        let p = grok_bytes(l.pattern, l.record_start, input.as_bytes());
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        assert_eq!((p.lines, p.records, p.batch.num_rows()), (7, 3, 3));
        let b = &p.batch;
        assert_eq!(
            str_at(b, "message", 1).as_deref(),
            Some(
                "failed\njava.lang.IllegalStateException: boom\n\tat com.example.Job.run(Job.java:42)\r\n\
                 Caused by: java.io.IOException: disk\n\t... 3 more"
            )
        );
        assert_eq!(str_at(b, "thread", 1).as_deref(), Some("worker-1"));
        assert_eq!(str_at(b, "level", 1).as_deref(), Some("ERROR"));
        assert_eq!(str_at(b, "logger", 1).as_deref(), Some("com.example.Job"));
        assert_eq!(ts_at(b, "ts", 2), micros("2024-01-01T10:00:02.003Z"));
    }

    /// (layout, line, expected string/int columns)
    type Typical = (
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
    );
    const TYPICAL: &[Typical] = &[
        (
            "HDFS",
            "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating",
            &[("pid", "148"), ("level", "INFO"), ("component", "dfs.DataNode$PacketResponder"), ("message", "PacketResponder 1 for block blk_38865049064139660 terminating")],
        ),
        (
            "HADOOP",
            "2015-10-18 18:01:51,806 INFO [IPC Server listener on 62260] org.apache.hadoop.ipc.Server: IPC Server listener on 62260: starting",
            &[("level", "INFO"), ("thread", "IPC Server listener on 62260"), ("logger", "org.apache.hadoop.ipc.Server"), ("message", "IPC Server listener on 62260: starting")],
        ),
        (
            "ZOOKEEPER",
            "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time out: 3200",
            &[("level", "INFO"), ("thread", "QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181"), ("class", "FastLeaderElection"), ("line", "774"), ("message", "Notification time out: 3200")],
        ),
        (
            "SPARK",
            "17/06/09 20:10:40 INFO spark.SecurityManager: Changing view acls to: yarn,curi",
            &[("level", "INFO"), ("logger", "spark.SecurityManager"), ("message", "Changing view acls to: yarn,curi")],
        ),
        (
            "HTTPD_ERRORLOG",
            "[Sun Dec 04 07:45:45 2005] [error] [client 63.13.186.196] Directory index forbidden by rule: /var/www/html/",
            &[("level", "error"), ("client", "63.13.186.196"), ("message", "Directory index forbidden by rule: /var/www/html/")],
        ),
        (
            "HTTPD_ERRORLOG",
            "[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187:54321] File does not exist: /usr/local/apache2/htdocs/favicon.ico",
            &[("module", "core"), ("level", "error"), ("pid", "35708"), ("tid", "4328636416"), ("client", "72.15.99.187"), ("client_port", "54321"), ("message", "File does not exist: /usr/local/apache2/htdocs/favicon.ico")],
        ),
        (
            "BGL",
            "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected",
            &[("date", "2005.06.03"), ("node", "R02-M1-N0-C:J12-U11"), ("type", "RAS"), ("component", "KERNEL"), ("level", "INFO"), ("message", "instruction cache parity error corrected")],
        ),
        (
            "BGL",
            "KERNDTLB 1118536327 2005.06.11 R30-M0-N9-C:J16-U01 2005-06-11-17.32.07.581048 R30-M0-N9-C:J16-U01 RAS KERNEL FATAL data TLB error interrupt",
            &[("alert", "KERNDTLB"), ("level", "FATAL")],
        ),
        (
            "ANDROID_LOGCAT",
            "03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogsopening app wtoken = AppWindowToken{9f4ef63 token=Token{a64f992}}",
            &[("time", "03-17 16:13:38.811"), ("pid", "1702"), ("tid", "2395"), ("priority", "D"), ("tag", "WindowManager"), ("message", "printFreezingDisplayLogsopening app wtoken = AppWindowToken{9f4ef63 token=Token{a64f992}}")],
        ),
        (
            "HEALTHAPP",
            "20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579",
            &[("component", "Step_LSC"), ("pid", "30002312"), ("message", "onStandStepChanged 3579")],
        ),
        (
            "LOG4J",
            "2024-05-01T12:00:00.123+02:00 [pool-1-thread-3] WARN  c.e.s.Cache - evicted 12 entries",
            &[("thread", "pool-1-thread-3"), ("level", "WARN"), ("logger", "c.e.s.Cache"), ("message", "evicted 12 entries"), ("ts_offset", "120")],
        ),
        (
            "LOG4J",
            "2024-05-01 12:00:00.123 ERROR something broke",
            &[("level", "ERROR"), ("message", "something broke")],
        ),
    ];

    #[test]
    fn layouts_read_typical_lines() {
        for (name, line, want) in TYPICAL {
            let l = layout(name).unwrap();
            let p = grok_bytes(l.pattern, l.record_start, line.as_bytes());
            assert!(p.rejects.is_empty(), "{name}: {:?}", p.rejects);
            let b = &p.batch;
            for (col, v) in *want {
                let c = b
                    .column_by_name(col)
                    .unwrap_or_else(|| panic!("{name}: no {col}"));
                let got = match c.data_type() {
                    DataType::Int64 => c.as_primitive::<Int64Type>().value(0).to_string(),
                    DataType::Utf8 => c.as_string::<i32>().value(0).to_string(),
                    t => panic!("{name}: {col} is {t}"),
                };
                assert_eq!(&got, v, "{name}: {col}");
            }
            let has_date = *name != "ANDROID_LOGCAT";
            if has_date {
                let ts = b.column_by_name("ts").unwrap();
                assert!(matches!(ts.data_type(), DataType::Timestamp(..)), "{name}");
            }
            // The layout's name works as a pattern too.
            let by_name = grok_bytes(&format!("%{{{name}}}"), None, line.as_bytes());
            assert_eq!(by_name.batch.num_rows(), 1, "{name}");
        }
        let p = grok(layout("BGL").unwrap().pattern, TYPICAL[6].1);
        assert_eq!(str_at(&p.batch, "alert", 0), None);
        assert_eq!(ts_at(&p.batch, "ts", 0), micros("2005-06-03T22:42:50Z"));
        assert_eq!(
            ts_at(&p.batch, "local_ts", 0),
            micros("2005-06-03T15:42:50.675872Z")
        );
        let p = grok(layout("HTTPD_ERRORLOG").unwrap().pattern, TYPICAL[5].1);
        assert_eq!(
            ts_at(&p.batch, "ts", 0),
            micros("2000-10-11T14:32:52.123456Z")
        );
    }

    #[test]
    fn layouts_are_not_catch_alls() {
        for l in LAYOUTS {
            let p = Pattern::compile(l.pattern, true).unwrap();
            for line in [
                "hello world",
                "{\"ts\":\"2024-01-01T00:00:00Z\",\"level\":\"info\"}",
                "127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 2326",
                "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure",
                "\tat com.example.Job.run(Job.java:42)",
            ] {
                assert!(!p.matches_whole(line.as_bytes()), "{}: {line}", l.name);
            }
        }
    }

    fn line_strategy() -> impl Strategy<Value = (i64, &'static str, String, i64, i64, String)> {
        (
            -2_208_988_800_000_000i64..4_102_444_800_000_000i64,
            prop::sample::select(vec!["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]),
            "[a-zA-Z0-9 ._-]{0,12}",
            any::<i64>(),
            -1_000_000_000i64..1_000_000_000,
            "\\PC{0,40}",
        )
    }

    proptest! {
        #[test]
        fn rendered_lines_parse_back(
            rows in prop::collection::vec(line_strategy(), 1..20),
        ) {
            let pattern = "%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} \\[%{DATA:thread}\\] \
                           n=%{INT:n:int} f=%{NUMBER:f:float} %{GREEDYDATA:msg}";
            let mut input = String::new();
            for (t, level, thread, n, f, msg) in &rows {
                let dt = chrono::DateTime::from_timestamp_micros(*t).unwrap();
                let ts = dt.format("%Y-%m-%dT%H:%M:%S%.6fZ");
                let f = format!("{}.{:03}", f / 1000, (f % 1000).abs());
                input.push_str(&format!("{ts} {level} [{thread}] n={n} f={f} {msg}\n"));
            }
            let p = grok(pattern, &input);
            prop_assert!(p.rejects.is_empty(), "{:?}", p.rejects);
            let b = &p.batch;
            let f = b.column_by_name("f").unwrap().as_primitive::<Float64Type>();
            for (i, (t, level, thread, n, fv, msg)) in rows.iter().enumerate() {
                prop_assert_eq!(ts_at(b, "ts", i), *t);
                prop_assert_eq!(str_at(b, "level", i), Some(level.to_string()));
                prop_assert_eq!(str_at(b, "thread", i), Some(thread.clone()));
                prop_assert_eq!(int_at(b, "n", i), Some(*n));
                let text = format!("{}.{:03}", fv / 1000, (fv % 1000).abs());
                prop_assert_eq!(f.value(i), text.parse::<f64>().unwrap());
                prop_assert_eq!(str_at(b, "msg", i), Some(msg.clone()));
            }
        }

        #[test]
        fn never_panics_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            // Compiled once: compiling every layout per case would dominate the test's time.
            static OPTS: std::sync::OnceLock<Vec<ParseOptions>> = std::sync::OnceLock::new();
            let opts = OPTS.get_or_init(|| {
                LAYOUTS
                    .iter()
                    .map(|l| {
                        let mut o = ParseOptions::new(Format::Grok);
                        o.pattern = Some(l.pattern.into());
                        o.record_start = l.record_start.map(Into::into);
                        o.prepare().unwrap();
                        o
                    })
                    .collect()
            });
            for o in opts {
                let p = parse_all(o, &bytes).unwrap();
                prop_assert_eq!(p.records, p.batch.num_rows() as u64 + p.rejects.len() as u64);
            }
        }
    }
}
