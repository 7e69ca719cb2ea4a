//! Arbitrary printer facts through the DNS-SD TXT record and instance-name code
//! (`printbridge::codec::dnssd_txt`). The checks live in the library
//! (`printbridge::codec::dnssd_txt::fuzzing::check_txt`) so that `tests/fuzz_corpus.rs` replays the corpus and
//! the regressions with exactly the same code under `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    printbridge::codec::dnssd_txt::fuzzing::check_txt(data);
});
