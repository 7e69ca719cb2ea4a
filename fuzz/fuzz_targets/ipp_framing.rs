//! Arbitrary bytes through the bounded IPP reader: `Scanner::feed` (whole, byte by byte and in
//! pseudo-random splits) and `parse_message`, and for every message that parses, the round trip
//! `encode_message` → `parse_message`. The checks live in the library
//! (`printbridge::codec::ipp::fuzzing::check_framing`) so that `tests/fuzz_corpus.rs` replays the
//! corpus and the regressions with exactly the same assertions under `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    printbridge::codec::ipp::fuzzing::check_framing(data);
});
