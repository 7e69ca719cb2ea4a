//! Arbitrary bytes through the PWG raster decoder (`printbridge::codec::pwg::Decoder`), with the
//! default and small limits, whole and in pieces. The checks live in the library
//! (`printbridge::codec::pwg::fuzzing::check_decoder`) so that `tests/fuzz_corpus.rs` replays the corpus and
//! the regressions with exactly the same code under `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    printbridge::codec::pwg::fuzzing::check_decoder(data);
});
