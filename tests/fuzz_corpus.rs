//! Replays the fuzz corpora (`fuzz/corpus/TARGET/`) and every crash the fuzzer ever found
//! (`fuzz/regressions/TARGET/`) through the same checks as the fuzz targets, as an ordinary
//! `cargo test` that needs no nightly toolchain. See fuzz/README.md. Each target calls one function
//! of the library and so does this file, so both run exactly the same code:
//!
//! - `ipp_framing`: `codec::ipp::fuzzing::check_framing` (no panic, scanner and parser agree, round
//!   trip when it parses);
//! - `pwg_decoder`, `urf_decoder`: `codec::{pwg,urf}::fuzzing::check_decoder` (no panic, the same
//!   outcome whole, byte by byte and in pieces, with the default and small limits);
//! - `render`: `convert::pipeline::fuzzing::check_render` (the worker's document → PDF render);
//! - `pdf_raster`: `convert::pdf_raster::fuzzing::check_pdf_raster`;
//! - `dnssd_txt`: `codec::dnssd_txt::fuzzing::check_txt`.
//!
//! The `ppd_parser` corpus is replayed by tests/ppd_corpus.rs. The test profile has overflow checks
//! on (as cargo-fuzz builds have), and [`overflow_checks_are_on`] makes sure of it: an arithmetic
//! overflow on a corpus input fails here as it does under the fuzzer.

use std::fs;
use std::path::{Path, PathBuf};

use printbridge::codec::ipp::fuzzing::check_framing;
use printbridge::codec::ipp::{parse_message, FrameError, Limits};

fn dir(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Every regular file under `dir` except dotfiles (.gitkeep), sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    out.sort();
    out
}

/// Runs `check_framing` on each file, reporting every failing file (not only the first).
fn replay(dir: &Path) -> usize {
    replay_with(dir, check_framing)
}

/// Runs `check` on each file under `dir`, reporting every failing file (not only the first).
fn replay_with(dir: &Path, check: fn(&[u8])) -> usize {
    let mut failed = Vec::new();
    let files = files(dir);
    for path in &files {
        let bytes = fs::read(path).unwrap();
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "the fuzz checks failed on:\n{}",
        failed.join("\n")
    );
    files.len()
}

/// The corpus and the regressions of `target` through `check`; at least `min_seeds` seeds.
fn replay_target(target: &str, check: fn(&[u8]), min_seeds: usize) {
    let n = replay_with(&dir(&format!("fuzz/corpus/{target}")), check);
    assert!(
        n >= min_seeds,
        "only {n} seeds in fuzz/corpus/{target}: run python3 fuzz/make_corpus.py"
    );
    let regressions = dir(&format!("fuzz/regressions/{target}"));
    if regressions.is_dir() {
        replay_with(&regressions, check);
    }
}

#[test]
fn overflow_checks_are_on() {
    let max = std::hint::black_box(u64::MAX);
    let overflowed = std::panic::catch_unwind(|| std::hint::black_box(max) * 2).is_err();
    assert!(
        overflowed,
        "this test build has overflow checks off, so the replays below would not catch an \
         overflow the fuzzer catches: build with the test/dev profile"
    );
}

#[test]
fn pwg_decoder_corpus_and_regressions_replay_cleanly() {
    replay_target(
        "pwg_decoder",
        printbridge::codec::pwg::fuzzing::check_decoder,
        8,
    );
}

#[test]
fn urf_decoder_corpus_and_regressions_replay_cleanly() {
    replay_target(
        "urf_decoder",
        printbridge::codec::urf::fuzzing::check_decoder,
        6,
    );
}

#[test]
fn render_corpus_and_regressions_replay_cleanly() {
    replay_target(
        "render",
        printbridge::convert::pipeline::fuzzing::check_render,
        15,
    );
}

#[test]
fn pdf_raster_corpus_and_regressions_replay_cleanly() {
    replay_target(
        "pdf_raster",
        printbridge::convert::pdf_raster::fuzzing::check_pdf_raster,
        5,
    );
}

#[test]
fn dnssd_txt_corpus_and_regressions_replay_cleanly() {
    replay_target(
        "dnssd_txt",
        printbridge::codec::dnssd_txt::fuzzing::check_txt,
        4,
    );
}

/// The raster overflow found by fuzzing (issue 11 item 8) is refused for the limit it passes, in
/// both decoders and in the render, where it names the limit for the person who printed.
#[test]
fn the_raster_header_overflow_is_refused_with_the_limit() {
    use printbridge::codec::pwg::{self, PageLimit, PwgError, RasterLimits};
    use printbridge::codec::urf::{self, UrfError};
    use printbridge::convert::pipeline::{fuzzing, render_job, DocumentInput};

    let urf_bytes = fs::read(dir(
        "fuzz/regressions/urf_decoder/width-height-overflow-47-bytes.urf",
    ))
    .unwrap();
    assert_eq!(urf_bytes.len(), 47);
    let s = urf::fuzzing::decode(&urf_bytes, &RasterLimits::default(), &mut |n| n);
    assert!(
        matches!(
            s.end,
            Err(UrfError::TooLarge {
                limit: PageLimit::Width { max: 20_000 },
                ..
            })
        ),
        "{:?}",
        s.end
    );
    let pwg_bytes = fs::read(dir(
        "fuzz/regressions/pwg_decoder/width-height-overflow.pwg",
    ))
    .unwrap();
    let s = pwg::fuzzing::decode(&pwg_bytes, &RasterLimits::default(), &mut |n| n);
    assert!(
        matches!(
            s.end,
            Err(PwgError::TooLarge {
                limit: PageLimit::Width { .. },
                ..
            })
        ),
        "{:?}",
        s.end
    );
    for (format, bytes) in [("image/urf", urf_bytes), ("image/pwg-raster", pwg_bytes)] {
        let input = DocumentInput {
            format: format.into(),
            compression: "none".into(),
            reader: Box::new(&bytes[..]),
        };
        let e = render_job(
            [input],
            &Default::default(),
            &fuzzing::small_limits(),
            Vec::new(),
        )
        .unwrap_err();
        assert_eq!(e.job_state_reason(), "document-unprintable-error", "{e}");
        let message = e.user_message();
        assert!(
            message.contains("pixels per line"),
            "{format}: the message names the limit: {message}"
        );
    }
}

#[test]
fn corpus_replays_cleanly() {
    let n = replay(&dir("fuzz/corpus/ipp_framing"));
    assert!(
        n >= 20,
        "only {n} seeds in fuzz/corpus/ipp_framing: run python3 fuzz/make_corpus.py"
    );
}

#[test]
fn regressions_replay_cleanly() {
    replay(&dir("fuzz/regressions/ipp_framing"));
}

/// The seeds mean what their names say, so the corpus keeps exercising the round trip and the
/// rejections it was written for.
#[test]
fn seeds_parse_or_fail_as_named() {
    let corpus = dir("fuzz/corpus/ipp_framing");
    let parse = |name: &str| {
        let bytes = fs::read(corpus.join(name)).unwrap_or_else(|e| panic!("seed {name}: {e}"));
        parse_message(&bytes, &Limits::default()).map(|(m, _)| m)
    };
    for valid in [
        "get-printer-attributes",
        "get-printer-attributes-requested",
        "print-job-pdf",
        "print-job-template",
        "create-job-with-language",
        "send-document-last",
        "get-jobs",
        "create-subscriptions",
        "out-of-band-and-other-types",
        "media-col-database-1setOf",
        "empty-groups",
    ] {
        if let Err(e) = parse(valid) {
            panic!("seed {valid} should parse: {e:?}");
        }
    }
    let media_col = parse("print-job-template").unwrap();
    let job = media_col.group(0x02).expect("job group");
    let col = job
        .get("media-col")
        .and_then(|a| a.first())
        .and_then(|v| v.as_collection())
        .expect("media-col");
    assert_eq!(col.len(), 4, "{col:?}");

    let bad_value = |e: &FrameError| matches!(e, FrameError::BadValue { .. });
    for (invalid, expected) in [
        (
            "bad-text-with-language",
            bad_value as fn(&FrameError) -> bool,
        ),
        ("bad-name-with-language", bad_value),
        ("nested-collections-too-deep", |e| {
            matches!(e, FrameError::TooDeep(_))
        }),
        ("end-collection-at-top-level", |e| {
            matches!(e, FrameError::UnbalancedCollection)
        }),
        ("member-name-at-top-level", |e| {
            matches!(e, FrameError::UnbalancedCollection)
        }),
        ("truncated-header", |e| matches!(e, FrameError::Truncated)),
        ("value-length-past-end", |e| {
            matches!(e, FrameError::Truncated)
        }),
        ("no-end-tag", |e| matches!(e, FrameError::Truncated)),
        ("extension-tag", |e| matches!(e, FrameError::BadTag(0x7F))),
        ("bad-boolean-and-integer", bad_value),
        ("invalid-utf8-name", bad_value),
        ("orphan-additional-value", |e| {
            matches!(e, FrameError::OrphanValue)
        }),
        ("unbalanced-collection-at-end", |e| {
            matches!(e, FrameError::UnbalancedCollection)
        }),
    ] {
        match parse(invalid) {
            Ok(m) => panic!("seed {invalid} should not parse: {m:?}"),
            Err(e) => assert!(expected(&e), "seed {invalid}: unexpected {e:?}"),
        }
    }
}

/// Captured client requests (fixtures/ipp/*.ipp) pass the same checks, whole (document included).
#[test]
fn captured_fixtures_pass_the_framing_checks() {
    let fixtures = dir("fixtures/ipp");
    let captured: Vec<PathBuf> = files(&fixtures)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "ipp"))
        .collect();
    for path in &captured {
        let bytes = fs::read(path).unwrap();
        check_framing(&bytes);
        if let Err(e) = parse_message(&bytes, &Limits::default()) {
            panic!("captured request {} does not parse: {e:?}", path.display());
        }
    }
}

/// The render seeds mean what their names say, so the corpus keeps reaching every format's success
/// path and the refusals it was written for.
#[test]
fn render_seeds_render_or_fail_as_named() {
    use printbridge::convert::pipeline::{fuzzing, render_job, DocumentInput};
    let corpus = dir("fuzz/corpus/render");
    let render = |name: &str| {
        let bytes = fs::read(corpus.join(name)).unwrap_or_else(|e| panic!("seed {name}: {e}"));
        let (format, compression) = fuzzing::declared(bytes[0]);
        let input = DocumentInput {
            format: format.into(),
            compression: compression.into(),
            reader: Box::new(&bytes[1..]),
        };
        render_job(
            [input],
            &Default::default(),
            &fuzzing::small_limits(),
            Vec::new(),
        )
    };
    for valid in [
        "pdf",
        "pdf-flate-content",
        "pdf-two-pages",
        "pdf-gzip",
        "pdf-as-octet-stream-deflate",
        "pwg-gray",
        "pwg-srgb-gzip",
        "urf",
        "urf-as-octet-stream",
        "jpeg",
        "png-rgb",
        "png-gray-as-octet-stream",
        "png-rgba-deflate",
    ] {
        if let Err(e) = render(valid) {
            panic!("seed {valid} should render: {e}");
        }
    }
    for (invalid, says) in [
        ("pdf-declared-as-pwg", "a PDF document"),
        ("zeros-declared-as-pdf-gzip", "only zero bytes"),
        ("text-declared-as-pdf", "plain text"),
        ("bad-gzip", "not valid gzip data"),
    ] {
        let e = render(invalid).expect_err(invalid);
        assert_eq!(
            e.job_state_reason(),
            "document-format-error",
            "{invalid}: {e}"
        );
        assert!(
            e.user_message().contains(says),
            "{invalid}: {}",
            e.user_message()
        );
    }
}
