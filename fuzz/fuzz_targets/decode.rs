//! The decompressor (`compactor_formats::decode::Decoder`): arbitrary bytes (also behind gzip
//! and zstd magic bytes) through a decoder with a small cap never panic, never exceed the cap
//! and terminate; the input compressed with gzip and zstd (one or two members or frames)
//! decodes back to itself, fails `TooLarge` one byte under its size, and truncated at a point
//! the first two bytes choose decodes to a prefix of itself, then fails.
#![no_main]

use compactor_fuzz::check_decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let [a, b, data @ ..] = input else {
        return;
    };
    check_decode(u16::from_le_bytes([*a, *b]), data);
});
