//! CUPS as a real client of the appliance.
//!
//! Starts a private cupsd (tests/common/cupsd.rs: temp dir, 127.0.0.1 only, no DNS-SD, never the
//! system's /etc/cups), adds a driverless queue with `lpadmin -m everywhere` pointing at
//! `printbridge serve` (cupsd asks the appliance for its IPP attributes and builds a PPD from them),
//! prints a PDF with `lp`, and checks that a PDF lands in the appliance's output directory and that
//! CUPS sees the job complete. A missing peer fails the test with the package to install.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::cupsd::PrivateCupsd;
use common::{wait_until, Appliance};

const QUEUE: &str = "pb";

#[test]
fn cups_adds_an_everywhere_queue_for_the_appliance_and_prints_a_pdf() {
    let cupsd = PrivateCupsd::start();
    PrivateCupsd::require_filter("pdftopdf", "cups-filters");

    let state = tempfile::tempdir().unwrap();
    let appliance = Appliance::start(state.path(), &[]);

    // CUPS 2.4: lpadmin returns at once; cupsd sends Get-Printer-Attributes
    // (requested-attributes=all,media-col-database) to the appliance and writes the PPD.
    let ppd = cupsd
        .add_everywhere_queue(QUEUE, &appliance.uri, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ppd,
        cupsd.server_root().join("ppd").join(format!("{QUEUE}.ppd"))
    );
    let ppd_text = String::from_utf8_lossy(&fs::read(&ppd).unwrap()).into_owned();
    assert!(
        ppd_text.contains("*cupsFilter2:") && ppd_text.contains("*PageSize"),
        "generated PPD {} lacks *cupsFilter2 or *PageSize:\n{ppd_text}",
        ppd.display()
    );
    // The appliance advertises application/pdf, so CUPS passes PDF through (pdftopdf only).
    assert!(
        ppd_text.contains("*cupsFilter2: \"application/vnd.cups-pdf application/pdf"),
        "generated PPD does not send PDF to the appliance (is application/pdf missing from \
         document-format-supported?):\n{ppd_text}"
    );

    let docs = tempfile::tempdir().unwrap();
    let pdf = docs.path().join("hello.pdf");
    fs::write(&pdf, common::one_page_pdf("printbridge: hello from CUPS")).unwrap();
    let job = cupsd
        .print_file(QUEUE, &pdf, &["-t", "cups-client-test"])
        .unwrap_or_else(|e| panic!("{e}"));

    let out_dir = appliance.output_dir();
    let mut found = None;
    if !wait_until(Duration::from_secs(90), || {
        found = finished_output(&out_dir);
        found.is_some()
    }) {
        panic!(
            "no document in the appliance's output directory {} within 90 s after `lp` \
             (CUPS job {job}); files there: {:?}\n{}",
            out_dir.display(),
            files_under(&out_dir),
            cupsd.diagnostics()
        );
    }
    let (path, bytes) = found.unwrap();
    assert!(
        bytes.starts_with(b"%PDF-"),
        "{} is not a PDF ({} bytes, starts with {:?})\n{}",
        path.display(),
        bytes.len(),
        String::from_utf8_lossy(&bytes[..bytes.len().min(16)]),
        cupsd.diagnostics()
    );

    // The ipp backend polls Get-Job-Attributes until the appliance reports the job completed.
    cupsd
        .wait_job_completed(&job, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
}

/// The first output file (sorted by path) once it has stopped growing: `(path, contents)`.
/// Skips hidden and `.tmp`/`.part` files a server may write before an atomic rename.
fn finished_output(dir: &Path) -> Option<(PathBuf, Vec<u8>)> {
    let path = files_under(dir).into_iter().next()?;
    let first = fs::read(&path).ok()?;
    if first.is_empty() {
        return None;
    }
    std::thread::sleep(Duration::from_millis(300));
    let second = fs::read(&path).ok()?;
    (second == first).then_some((path, second))
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part") {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => out.push(path),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

#[test]
fn one_page_pdf_has_consistent_xref() {
    let pdf = common::one_page_pdf("a (b) \\ c");
    let at = |offset: usize, what: &str| pdf[offset..].starts_with(what.as_bytes());
    let find = |what: &str| {
        pdf.windows(what.len())
            .rposition(|w| w == what.as_bytes())
            .unwrap()
    };
    assert!(pdf.starts_with(b"%PDF-1.4\n") && pdf.ends_with(b"%%EOF\n"));

    let tail = String::from_utf8(pdf[find("startxref\n")..].to_vec()).unwrap();
    let xref: usize = tail.lines().nth(1).unwrap().parse().unwrap();
    assert!(at(xref, "xref\n0 6\n0000000000 65535 f \n"));
    let table = String::from_utf8(pdf[xref..].to_vec()).unwrap();
    for (i, entry) in table.split('\n').skip(3).take(5).enumerate() {
        assert_eq!(
            entry.len(),
            19,
            "xref entries are 20 bytes with the newline"
        );
        assert!(entry.ends_with(" 00000 n "));
        let offset: usize = entry[..10].parse().unwrap();
        assert!(
            at(offset, &format!("{} 0 obj\n", i + 1)),
            "xref offset of object {}",
            i + 1
        );
    }

    let dict = find("<< /Length ");
    let length: usize = String::from_utf8_lossy(&pdf[dict + 11..dict + 20])
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let data = find("stream\nBT") + "stream\n".len();
    assert!(
        at(data + length, "\nendstream\n"),
        "stream /Length matches its data"
    );
    assert!(at(
        data,
        "BT /F1 24 Tf 72 760 Td (a \\(b\\) \\\\ c) Tj ET\n"
    ));
}
