//! Replays the `ipp_framing` fuzz corpus (`fuzz/corpus/ipp_framing/`) and every crash the fuzzer
//! ever found (`fuzz/regressions/ipp_framing/`) through the same checks as the fuzz target
//! (`printbridge::codec::ipp::fuzzing::check_framing`: no panic, scanner and parser agree, round trip
//! when it parses), as an ordinary `cargo test` that needs no nightly toolchain. See fuzz/README.md.

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
    let mut failed = Vec::new();
    let files = files(dir);
    for path in &files {
        let bytes = fs::read(path).unwrap();
        if std::panic::catch_unwind(|| check_framing(&bytes)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "check_framing failed on:\n{}",
        failed.join("\n")
    );
    files.len()
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
