//! Arbitrary bytes as a PDF through PDF → raster (`printbridge::convert::pdf_raster::pdf_to_raster`,
//! PWG and URF), the raster read back by our decoders. The checks live in the library
//! (`printbridge::convert::pdf_raster::fuzzing::check_pdf_raster`) so that `tests/fuzz_corpus.rs` replays the corpus and
//! the regressions with exactly the same code under `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    printbridge::convert::pdf_raster::fuzzing::check_pdf_raster(data);
});
