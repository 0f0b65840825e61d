//! AWS access logs: CloudFront (W3C header), ALB, classic ELB, S3, the first byte picking
//! which; options from `for_file` as the driver does. Checks every invariant of
//! `parse_and_check` and chunking independence.
#![no_main]

use compactor_formats::{Format, ParseOptions};
use compactor_fuzz::{check_split, parse_and_check};
use libfuzzer_sys::fuzz_target;

const FORMATS: [Format; 4] = [Format::Cloudfront, Format::Alb, Format::Elb, Format::S3];

fuzz_target!(|input: &[u8]| {
    let Some((&ctl, data)) = input.split_first() else {
        return;
    };
    let opts = ParseOptions::new(FORMATS[usize::from(ctl) % FORMATS.len()]);
    let Ok((opts, _)) = opts.for_file(data) else {
        return;
    };
    let checked = parse_and_check(&opts, data, 1);
    check_split(&opts, data, &checked.parsed);
});
