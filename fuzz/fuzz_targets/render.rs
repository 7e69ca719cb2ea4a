//! An arbitrary document through the whole render the spool's worker runs
//! (`printbridge::convert::pipeline::render_job`: decompression, sniffing, every format to PDF,
//! imposition); the first byte selects the declared format and compression. The checks live in the library
//! (`printbridge::convert::pipeline::fuzzing::check_render`) so that `tests/fuzz_corpus.rs` replays the corpus and
//! the regressions with exactly the same code under `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    printbridge::convert::pipeline::fuzzing::check_render(data);
});
