//! PPD-described queues: `printbridge serve` with `[printer] ppd = "..."` for each PPD in `ppd/`,
//! asked with Debian's ipptool what it can do. The expectations below were read off the PPD files
//! by hand (their `*PageSize`, `*Duplex`, `*ColorModel`/`*ColorDevice`, `*Resolution` lines), not
//! computed with printbridge's own parser. A job that says nothing prints with the PPD's defaults.
//! Then Debian's `ipp-everywhere.test` suite runs against
//! a PPD queue with no failure, and a PPD that cannot be parsed stops the start naming the file
//! and the line.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn ppd(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ppd").join(file)
}

/// Starts the appliance with a configuration that names `ppd`.
fn appliance_with(ppd: &Path, state: &Path) -> common::Appliance {
    let config = state.join("printbridge.toml");
    // The path is ours (a file in the repository), so quoting it in TOML is safe.
    std::fs::write(
        &config,
        format!("[printer]\nppd = {:?}\n", ppd.display().to_string()),
    )
    .unwrap();
    common::Appliance::start(state, &["--config", config.to_str().unwrap()])
}

/// An ipptool test file: Get-Printer-Attributes with `expects`, then a Validate-Job with fidelity
/// for each job attribute in `refused`, which the queue must turn down as unsupported.
fn script(expects: &[&str], refused: &[&str]) -> String {
    let op = |name: &str, op: &str| {
        format!(
            "{{\n NAME \"{name}\"\n OPERATION {op}\n GROUP operation-attributes-tag\n \
             ATTR charset attributes-charset utf-8\n \
             ATTR naturalLanguage attributes-natural-language en\n ATTR uri printer-uri $uri\n \
             ATTR name requesting-user-name tester\n"
        )
    };
    let mut s = op("capabilities from the PPD", "Get-Printer-Attributes");
    s.push_str(" STATUS successful-ok\n");
    for e in expects {
        s.push_str(&format!(" EXPECT {e}\n"));
    }
    s.push_str("}\n");
    for job_attr in refused {
        s.push_str(&op(&format!("refused: {job_attr}"), "Validate-Job"));
        let name = job_attr.split_whitespace().nth(1).unwrap();
        s.push_str(&format!(
            " ATTR boolean ipp-attribute-fidelity true\n GROUP job-attributes-tag\n \
             ATTR {job_attr}\n STATUS client-error-attributes-or-values-not-supported\n \
             EXPECT {name} IN-GROUP unsupported-attributes-tag\n}}\n"
        ));
    }
    s
}

fn check(ppd_file: &str, expects: &[&str], refused: &[&str]) {
    let state = tempfile::tempdir().unwrap();
    let appliance = appliance_with(&ppd(ppd_file), state.path());
    let test = state.path().join("ppd.test");
    std::fs::write(&test, script(expects, refused)).unwrap();
    let run = common::ipptool::run(&[&appliance.uri, test.to_str().unwrap()]);
    assert!(
        run.failed == 0 && run.passed == 1 + refused.len(),
        "{ppd_file}: {} passed, {} failed\n{}",
        run.passed,
        run.failed,
        run.output
    );
}

#[test]
fn postscript_laser_ppd_queue() {
    check(
        "printbridge-postscript-laser.ppd",
        &[
            r#"media-supported COUNT 3 WITH-ALL-VALUES "/^(iso_a4_210x297mm|na_letter_8\.5x11in|na_legal_8\.5x14in)$/""#,
            "media-default COUNT 1 WITH-VALUE iso_a4_210x297mm",
            r#"sides-supported COUNT 3 WITH-ALL-VALUES "/^(one-sided|two-sided-long-edge|two-sided-short-edge)$/""#,
            "sides-default WITH-VALUE one-sided",
            "color-supported WITH-VALUE false",
            "print-color-mode-supported COUNT 1 WITH-VALUE monochrome",
            "print-color-mode-default WITH-VALUE monochrome",
            "printer-resolution-supported COUNT 1 WITH-VALUE 600dpi",
            "printer-resolution-default WITH-VALUE 600dpi",
            "media-source-supported COUNT 4",
            r#"printer-make-and-model WITH-VALUE "Generic PostScript Laser, printbridge 1.0""#,
            r#"pwg-raster-document-type-supported WITH-ALL-VALUES "/^(black_1|sgray_8)$/""#,
        ],
        &[
            "keyword print-color-mode color",
            "keyword media iso_a5_148x210mm",
        ],
    );
}

#[test]
fn pcl_laser_ppd_queue() {
    check(
        "printbridge-pcl-laser.ppd",
        &[
            concat!(
                r#"media-supported COUNT 9 WITH-ALL-VALUES "/^(na_letter_8\.5x11in|na_legal_8\.5x14in|"#,
                r#"na_executive_7\.25x10\.5in|iso_a4_210x297mm|iso_a5_148x210mm|na_number-10_4\.125x9\.5in|"#,
                r#"na_monarch_3\.875x7\.5in|iso_dl_110x220mm|iso_c5_162x229mm)$/""#
            ),
            "media-default COUNT 1 WITH-VALUE na_letter_8.5x11in",
            r#"sides-supported COUNT 3 WITH-ALL-VALUES "/^(one-sided|two-sided-long-edge|two-sided-short-edge)$/""#,
            "color-supported WITH-VALUE false",
            "print-color-mode-supported COUNT 1 WITH-VALUE monochrome",
            // ipptool matches resolutions by value, not by regular expression.
            "printer-resolution-supported COUNT 2 WITH-VALUE 300dpi",
            "printer-resolution-supported WITH-VALUE 600dpi",
            "printer-resolution-default WITH-VALUE 600dpi",
            "media-source-supported COUNT 6",
        ],
        &["keyword print-color-mode color"],
    );
}

#[test]
fn colour_inkjet_ppd_queue() {
    check(
        "printbridge-color-inkjet.ppd",
        &[
            // The borderless `.Fullbleed` twins are the same PWG sizes.
            r#"media-supported COUNT 4 WITH-ALL-VALUES "/^(na_letter_8\.5x11in|iso_a4_210x297mm|na_index-4x6_4x6in|na_5x7_5x7in)$/""#,
            "media-default COUNT 1 WITH-VALUE na_letter_8.5x11in",
            "sides-supported COUNT 1 WITH-VALUE one-sided",
            "color-supported WITH-VALUE true",
            r#"print-color-mode-supported COUNT 2 WITH-ALL-VALUES "/^(color|monochrome)$/""#,
            "print-color-mode-default WITH-VALUE color",
            // ipptool matches resolutions by value, not by regular expression.
            "printer-resolution-supported COUNT 2 WITH-VALUE 300dpi",
            "printer-resolution-supported WITH-VALUE 600dpi",
            "printer-resolution-default WITH-VALUE 300dpi",
            "media-source-supported COUNT 3",
            "media-type-supported COUNT 3",
        ],
        &["keyword sides two-sided-long-edge"],
    );
}

/// A job that names no media and no colour mode prints as the PPD's defaults say: on the PCL
/// laser (`*DefaultPageSize: Letter`, no colour) a colour JPEG comes out on Letter, in gray.
#[test]
fn jobs_print_with_the_ppd_defaults() {
    let docs = common::ipptool::test_docs();
    let state = tempfile::tempdir().unwrap();
    let appliance = appliance_with(&ppd("printbridge-pcl-laser.ppd"), state.path());
    let test = state.path().join("print.test");
    std::fs::write(
        &test,
        format!(
            "{{\n NAME \"plain job\"\n OPERATION Print-Job\n GROUP operation-attributes-tag\n \
             ATTR charset attributes-charset utf-8\n ATTR naturalLanguage attributes-natural-language en\n \
             ATTR uri printer-uri $uri\n ATTR name requesting-user-name tester\n \
             ATTR name job-name plain\n ATTR mimeMediaType document-format image/jpeg\n \
             FILE {}\n STATUS successful-ok\n}}\n",
            docs.join("color.jpg").display()
        ),
    )
    .unwrap();
    let run = common::ipptool::run(&[&appliance.uri, test.to_str().unwrap()]);
    assert!(run.failed == 0 && run.passed == 1, "{}", run.output);
    let out_dir = appliance.output_dir();
    let mut found = None;
    common::wait_until(std::time::Duration::from_secs(60), || {
        found = std::fs::read_dir(&out_dir).ok().and_then(|d| {
            d.flatten()
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with("-plain.pdf"))
        });
        found.is_some()
    });
    let pdf = found.unwrap_or_else(|| panic!("no rendered PDF in {}", out_dir.display()));

    let pdfinfo = common::require_program("pdfinfo", "poppler-utils");
    let info = Command::new(pdfinfo).arg(&pdf).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    let size = info
        .lines()
        .find_map(|l| l.strip_prefix("Page size:"))
        .unwrap_or_else(|| panic!("no page size in pdfinfo output:\n{info}"));
    let mut it = size.split_whitespace();
    let w: f32 = it.next().unwrap().parse().unwrap();
    it.next();
    let h: f32 = it.next().unwrap().parse().unwrap();
    assert!(
        (w - 612.0).abs() < 1.0 && (h - 792.0).abs() < 1.0,
        "Letter expected, got {w} × {h}"
    );

    // Every pixel gray: the colour test image was rendered monochrome.
    let pdftoppm = common::require_program("pdftoppm", "poppler-utils");
    let prefix = state.path().join("page");
    let st = Command::new(pdftoppm)
        .args(["-r", "20", "-singlefile"])
        .arg(&pdf)
        .arg(&prefix)
        .status()
        .unwrap();
    assert!(st.success(), "pdftoppm failed");
    let ppm = std::fs::read(prefix.with_extension("ppm")).unwrap();
    // P6 header: four whitespace-separated fields, then one whitespace byte.
    let mut fields = 0;
    let mut pos = 0;
    while fields < 4 {
        while ppm[pos].is_ascii_whitespace() {
            pos += 1;
        }
        while !ppm[pos].is_ascii_whitespace() {
            pos += 1;
        }
        fields += 1;
    }
    let rgb = &ppm[pos + 1..];
    let coloured = rgb
        .chunks_exact(3)
        .filter(|p| {
            let (lo, hi) = (p.iter().min().unwrap(), p.iter().max().unwrap());
            hi - lo > 24
        })
        .count();
    let non_white = rgb
        .chunks_exact(3)
        .filter(|p| p.iter().any(|&v| v < 200))
        .count();
    assert!(non_white > 100, "the image is missing from the page");
    assert_eq!(
        coloured, 0,
        "{coloured} coloured pixels on a monochrome queue's default job"
    );
}

/// Debian's IPP Everywhere suite passes against a queue whose capabilities come from a PPD (see
/// tests/ipptool_suites.rs for how the suites are run: `-I`, the generated documents, [FAIL] lines).
#[test]
fn ipp_everywhere_suite_against_a_ppd_queue() {
    let state = tempfile::tempdir().unwrap();
    let appliance = appliance_with(&ppd("printbridge-pcl-laser.ppd"), state.path());
    common::ipptool::assert_ipp_everywhere_passes(&appliance.uri, "the PCL laser PPD queue");
}

/// A PPD that does not parse is a startup error naming the file and the line.
#[test]
fn a_bad_ppd_stops_the_start_naming_file_and_line() {
    let state = tempfile::tempdir().unwrap();
    let bad = state.path().join("bad.ppd");
    std::fs::write(
        &bad,
        "*PPD-Adobe: \"4.3\"\n*FormatVersion: \"4.3\"\n*Include: \"other.ppd\"\n",
    )
    .unwrap();
    let config = state.path().join("printbridge.toml");
    std::fs::write(
        &config,
        format!("[printer]\nppd = {:?}\n", bad.display().to_string()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_printbridge"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--state-dir")
        .arg(state.path())
        .output()
        .expect("run printbridge serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with a bad PPD:\n{stderr}");
    assert!(
        stderr.contains(&bad.display().to_string()) && stderr.contains("line 3"),
        "the error names neither the file nor the line:\n{stderr}"
    );
}
