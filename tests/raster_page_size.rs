//! A raster page keeps its size: a letter page in PWG raster (PWG 5102.4) or Apple raster, made by
//! Ghostscript for letter paper and printed without `media` to an appliance whose default medium
//! is A4, comes out of the file device as a 612 × 792 pt page with the image where the client put
//! it, as CUPS's rastertopdf does; a job that names A4 still gets A4. Checked with poppler's
//! pdfinfo and pdftoppm.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::Appliance;

/// A letter page: a black 1 in square whose top-left corner is 0.5 in from the top-left corner of
/// the paper, and a black 1 in square 0.5 in from the bottom-right one.
const LETTER_PS: &str = "%!PS
<< /PageSize [612 792] >> setpagedevice
0 setgray 36 684 72 72 rectfill
504 36 72 72 rectfill
showpage
";

fn ghostscript_letter(device: &str, extra: &[&str], out: &Path) {
    let gs = common::require_program("gs", "ghostscript");
    let ps = out.with_extension("ps");
    std::fs::write(&ps, LETTER_PS).unwrap();
    let status = Command::new(gs)
        .args(["-q", "-dBATCH", "-dNOPAUSE", "-dSAFER", "-r300"])
        .args([
            "-dDEVICEWIDTHPOINTS=612",
            "-dDEVICEHEIGHTPOINTS=792",
            "-dFIXEDMEDIA",
        ])
        .arg(format!("-sDEVICE={device}"))
        .args(extra)
        .arg(format!("-sOutputFile={}", out.display()))
        .arg(&ps)
        .status()
        .expect("run gs");
    assert!(status.success(), "gs -sDEVICE={device} failed");
}

/// Prints `file` as `format` with ipptool (no media unless `media` is given) and returns the PDF
/// the file device wrote for the job named `name`.
fn print(app: &Appliance, name: &str, format: &str, file: &Path, media: Option<&str>) -> PathBuf {
    let media = media
        .map(|m| format!("GROUP job-attributes-tag\n ATTR keyword media {m}\n"))
        .unwrap_or_default();
    let test = format!(
        "{{\n NAME \"{name}\"\n OPERATION Print-Job\n GROUP operation-attributes-tag\n \
         ATTR charset attributes-charset utf-8\n ATTR naturalLanguage attributes-natural-language en\n \
         ATTR uri printer-uri $uri\n ATTR name requesting-user-name tester\n \
         ATTR name job-name {name}\n ATTR mimeMediaType document-format {format}\n \
         {media} FILE {}\n STATUS successful-ok\n}}\n",
        file.display()
    );
    let out = common::ipptool::run_text(&["-t"], &[app.uri.as_str()], &test, &[]);
    assert!(
        out.contains("[PASS]") && !out.contains("[FAIL]"),
        "ipptool:\n{out}"
    );
    let dir = app.output_dir();
    let suffix = format!("-{name}.pdf");
    let mut found = None;
    common::wait_until(Duration::from_secs(120), || {
        found = std::fs::read_dir(&dir).ok().and_then(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with(&suffix))
        });
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no *{suffix} in {} after 120 s", dir.display()))
}

/// The page size of page 1 in points, from pdfinfo.
fn page_size(pdf: &Path) -> (f64, f64) {
    let pdfinfo = common::require_program("pdfinfo", "poppler-utils");
    let out = Command::new(pdfinfo)
        .arg(pdf)
        .output()
        .expect("run pdfinfo");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("Page size:"))
        .unwrap_or_else(|| panic!("no page size in pdfinfo output:\n{text}"));
    let mut nums = line
        .split_whitespace()
        .filter_map(|w| w.parse::<f64>().ok());
    (nums.next().unwrap(), nums.next().unwrap())
}

/// Page 1 rendered by pdftoppm at 72 dpi in gray: (width, height, pixels).
fn render_gray(pdf: &Path) -> (usize, usize, Vec<u8>) {
    let pdftoppm = common::require_program("pdftoppm", "poppler-utils");
    let out = Command::new(pdftoppm)
        .args(["-gray", "-r", "72", "-f", "1", "-l", "1"])
        .arg(pdf)
        .output()
        .expect("run pdftoppm");
    assert!(out.status.success(), "pdftoppm failed");
    // P5 <w> <h> <max>\n<data>
    let data = out.stdout;
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while data[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while !data[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&data[start..i]).into_owned());
    }
    assert_eq!(fields[0], "P5");
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    (w, h, data[i + 1..].to_vec())
}

/// Checks that the printed letter page is letter, with the marks where the client drew them.
fn assert_letter_as_drawn(pdf: &Path, what: &str) {
    let (w, h) = page_size(pdf);
    assert!(
        (w - 612.0).abs() < 1.0 && (h - 792.0).abs() < 1.0,
        "{what}: page size {w} x {h} pt, want letter 612 x 792"
    );
    let (pw, ph, px) = render_gray(pdf);
    let at = |x: usize, y: usize| px[y * pw + x];
    assert_eq!((pw, ph), (612, 792), "{what}: pixels at 72 dpi");
    // Near the top-left corner, inside the mark: on letter it is at 36..108 pt; scaled onto A4
    // and centred it would start about 71 pt from the top.
    for (x, y) in [(45, 45), (100, 100)] {
        assert!(
            at(x, y) < 64,
            "{what}: ({x}, {y}) pt should be black, is {}",
            at(x, y)
        );
    }
    for (x, y) in [(20, 20), (120, 120), (300, 400)] {
        assert!(
            at(x, y) > 192,
            "{what}: ({x}, {y}) pt should be white, is {}",
            at(x, y)
        );
    }
    // The bottom-right mark: 504..576 across, 684..756 down.
    assert!(at(540, 720) < 64, "{what}: the bottom-right mark moved");
}

#[test]
fn letter_pwg_raster_and_urf_pages_print_on_letter_where_the_client_drew_them() {
    let dir = tempfile::tempdir().unwrap();
    let pwg = dir.path().join("letter.pwg");
    // cupsColorSpace 18 is sGray (CUPS raster colour space enum).
    ghostscript_letter(
        "pwgraster",
        &["-dcupsColorSpace=18", "-dcupsBitsPerColor=8"],
        &pwg,
    );
    let urf = dir.path().join("letter.urf");
    ghostscript_letter(
        "urf",
        &["-dcupsColorSpace=18", "-dcupsBitsPerColor=8"],
        &urf,
    );
    let bytes = std::fs::read(&pwg).unwrap();
    // PWG 5102.4 table 1: PageSize at header bytes 352..360 (+4 for the sync word), Width and
    // Height at 372..380 (+4).
    let be = |o: usize| u32::from_be_bytes(bytes[o..o + 4].try_into().unwrap());
    assert_eq!((be(356), be(360)), (612, 792), "gs wrote a letter PageSize");
    assert_eq!(
        (be(376), be(380)),
        (2550, 3300),
        "gs wrote 2550 x 3300 pixels"
    );

    let state = tempfile::tempdir().unwrap();
    let app = Appliance::start(state.path(), &[]);
    // The appliance's default medium is A4: a PDF without media prints on A4.
    let default = common::ipptool::run_text(
        &["-tv"],
        &[app.uri.as_str()],
        "{\n OPERATION Get-Printer-Attributes\n GROUP operation-attributes-tag\n \
         ATTR charset attributes-charset utf-8\n ATTR naturalLanguage attributes-natural-language en\n \
         ATTR uri printer-uri $uri\n ATTR keyword requested-attributes media-default\n \
         STATUS successful-ok\n EXPECT media-default WITH-VALUE iso_a4_210x297mm\n}\n",
        &[],
    );
    assert!(
        default.contains("[PASS]"),
        "media-default is not A4:\n{default}"
    );

    let out = print(&app, "pwg", "image/pwg-raster", &pwg, None);
    assert_letter_as_drawn(&out, "PWG raster");
    let out = print(&app, "urf", "image/urf", &urf, None);
    assert_letter_as_drawn(&out, "Apple raster");

    // A job that asks for A4 gets A4 (the page is fitted onto it).
    let out = print(
        &app,
        "pwga4",
        "image/pwg-raster",
        &pwg,
        Some("iso_a4_210x297mm"),
    );
    let (w, h) = page_size(&out);
    assert!(
        (w - 595.3).abs() < 1.0 && (h - 841.9).abs() < 1.0,
        "media=iso_a4_210x297mm: page size {w} x {h}"
    );
}
