//! Arbitrary bytes through the PPD parser (`printbridge::codec::ppd::parse`) with the default and
//! with tight limits, and for every file that parses, the mapping to IPP capabilities. The checks
//! live in the library (`printbridge::codec::ppd::fuzzing::check_parser`) so that
//! `tests/ppd_corpus.rs` replays the corpus and the regressions with exactly the same assertions
//! under `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    printbridge::codec::ppd::fuzzing::check_parser(data);
});
