//! Format `auto`: `for_file` detects the format from the input's first bytes (here: all of
//! it) and reads its header, then the input is parsed with the detected options, as the
//! driver does. Checks the detection (a concrete format, confidence in [0, 1]) and every
//! invariant of `parse_and_check` under the detected options.
#![no_main]

use std::sync::OnceLock;

use compactor_formats::{Format, ParseOptions};
use compactor_fuzz::{check_split, parse_and_check};
use libfuzzer_sys::fuzz_target;

/// Prepared once, as a run does (the candidates' patterns compiled up front).
fn auto() -> &'static ParseOptions {
    static AUTO: OnceLock<ParseOptions> = OnceLock::new();
    AUTO.get_or_init(|| {
        let mut o = ParseOptions::new(Format::Auto);
        o.prepare().expect("auto prepares");
        o
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok((opts, detection)) = auto().for_file(data) else {
        return;
    };
    let d = detection.expect("auto reports its detection");
    assert_ne!(d.format, Format::Auto, "auto detected as auto");
    assert_eq!(
        opts.format,
        Some(d.format),
        "options not set to the detection"
    );
    assert!(
        (0.0..=1.0).contains(&d.confidence),
        "confidence {}",
        d.confidence
    );
    let checked = parse_and_check(&opts, data, 1);
    check_split(&opts, data, &checked.parsed);
});
