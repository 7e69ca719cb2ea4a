//! The ipp:// output device against Debian's `ippeveprinter` (cups-ipp-utils) as the downstream
//! printer: once accepting PDF, once raster-only. Jobs are submitted to `printbridge serve` with
//! ipptool and with `lp` through a private cupsd; the tests check that the job reaches ippeveprinter
//! in a format it accepts (its kept spool files, `-k`), that our job completes when its job
//! completes, and that its state shows in ours: stopped, our printer-state-reasons say
//! offline-report / connecting-to-device and the job stays pending, then prints exactly once when
//! it is back.
//!
//! ippeveprinter 2.4 needs a D-Bus system bus even with `-r off`, so each gets a private one; it is
//! told `-n localhost` because it always opens an IPv6 listener too (see tests/client_cli.rs).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::appliance::appliance_with_device;
use common::cupsd::PrivateCupsd;
use common::files_under;
use common::ippeveprinter::EvePrinter;
use common::ipptool::{job_state, print_job, printer_attributes, printer_condition, wait_job_done};

/// Whether `path` is a PDF whose text (poppler's pdftotext) contains `text`.
fn is_pdf_with(path: &Path, text: &str) -> bool {
    let pdftotext = common::require_program("pdftotext", "poppler-utils");
    if !fs::read(path).is_ok_and(|b| b.starts_with(b"%PDF-")) {
        return false;
    }
    let out = Command::new(pdftotext).arg(path).arg("-").output().unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains(text)
}

/// Waits for our job `id` to end while watching the downstream job `eve_id`: our job must not
/// complete while the downstream one has not.
fn wait_both(ours: &str, id: u32, eve: &str, eve_id: u32) -> (i32, i32) {
    let mut last = (0, 0);
    let ok = common::wait_until(Duration::from_secs(120), || {
        let o = job_state(ours, id).map(|s| s.0).unwrap_or(0);
        let e = job_state(eve, eve_id).map(|s| s.0).unwrap_or(0);
        if o == 9 {
            // Read the downstream job after ours: it must already be completed.
            let e_after = job_state(eve, eve_id).map(|s| s.0).unwrap_or(0);
            assert_eq!(
                e_after, 9,
                "our job {id} completed while the downstream job {eve_id} is in state {e_after}"
            );
        }
        last = (o, e);
        o >= 7
    });
    assert!(ok, "job {id} did not end; ours/downstream states {last:?}");
    last
}

#[test]
fn pdf_printer_gets_the_pdf_and_our_job_follows_its_job() {
    let eve = EvePrinter::start(
        "pbdownstream",
        "application/pdf,image/jpeg,image/pwg-raster",
        &[],
    );
    let state = tempfile::tempdir().unwrap();
    let appliance = appliance_with_device(state.path(), &eve.uri(), "");
    let pdf = common::one_page_pdf("printbridge to ippeveprinter");
    let file = state.path().join("doc.pdf");
    fs::write(&file, &pdf).unwrap();

    let id = print_job(&appliance.uri, &file, "application/pdf", "to-eve");
    // The first job at a fresh ippeveprinter is job 1.
    let (ours, theirs) = wait_both(&appliance.uri, id, &eve.uri(), 1);
    assert_eq!((ours, theirs), (9, 9), "ippeveprinter:\n{}", eve.log());
    // The job went as PDF (rendered with its options, so not byte for byte) with our text in it.
    let kept = eve.spooled();
    assert!(
        kept.iter()
            .any(|f| is_pdf_with(f, "printbridge to ippeveprinter")),
        "ippeveprinter did not get our document as PDF; its spool: {kept:?}\n{}",
        eve.log()
    );

    // CUPS as the client of the appliance: `lp` reaches the downstream printer as PDF.
    let cupsd = PrivateCupsd::start();
    PrivateCupsd::require_filter("pdftopdf", "cups-filters");
    cupsd
        .add_everywhere_queue("pb", &appliance.uri, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let cups_job = cupsd
        .print_file("pb", &file, &["-t", "via-cups"])
        .unwrap_or_else(|e| panic!("{e}"));
    cupsd
        .wait_job_completed(&cups_job, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut pdfs = Vec::new();
    assert!(
        common::wait_until(Duration::from_secs(60), || {
            pdfs = eve
                .spooled()
                .into_iter()
                .filter(|f| fs::read(f).is_ok_and(|b| b.starts_with(b"%PDF-")))
                .collect();
            pdfs.len() >= 2
        }),
        "the job from lp did not reach ippeveprinter as PDF: {pdfs:?}\n{}",
        eve.log()
    );
    let (reasons, _) = printer_condition(&appliance.uri);
    assert!(
        !reasons
            .iter()
            .any(|r| r == "offline-report" || r == "connecting-to-device"),
        "{reasons:?}"
    );
}

#[test]
fn raster_only_printer_gets_pwg_raster() {
    let eve = EvePrinter::start("pbdownstream", "image/pwg-raster", &[]);
    let state = tempfile::tempdir().unwrap();
    let appliance = appliance_with_device(state.path(), &eve.uri(), "resolutions_dpi = [150, 300]");
    let file = state.path().join("doc.pdf");
    fs::write(&file, common::one_page_pdf("rasterized for ippeveprinter")).unwrap();

    let id = print_job(&appliance.uri, &file, "application/pdf", "raster");
    let (ours, theirs) = wait_both(&appliance.uri, id, &eve.uri(), 1);
    assert_eq!((ours, theirs), (9, 9), "ippeveprinter:\n{}", eve.log());
    let kept = eve.spooled();
    let raster: Vec<_> = kept
        .iter()
        .filter(|f| fs::read(f).is_ok_and(|b| b.starts_with(b"RaS2")))
        .collect();
    assert_eq!(
        raster.len(),
        1,
        "one PWG raster document at ippeveprinter: {kept:?}\n{}",
        eve.log()
    );
}

/// cupsColorSpace of the first page of a PWG raster file (PWG 5102.4 §4.3: the header's field at
/// byte 400, after the 4-byte sync word): 18 sgray, 19 srgb, 3 black.
fn pwg_color_space(bytes: &[u8]) -> Option<u32> {
    let field = bytes.get(404..408)?;
    Some(u32::from_be_bytes(field.try_into().ok()?))
}

#[test]
fn a_monochrome_job_reaches_a_colour_raster_printer_as_gray_raster() {
    // -s 10,5: a colour printer (it has a colour speed); raster only.
    let eve = EvePrinter::start("pbdownstream", "image/pwg-raster", &["-s", "10,5"]);
    let state = tempfile::tempdir().unwrap();
    // An unoptimised build takes several seconds to rasterize an sRGB page: more than the usual
    // 5 s of silence the device allows.
    let appliance = appliance_with_device(state.path(), &eve.uri(), "device_timeout_seconds = 60");
    let file = state.path().join("doc.pdf");
    fs::write(&file, common::one_page_pdf("colour or gray")).unwrap();

    let colour = print_job(&appliance.uri, &file, "application/pdf", "colour");
    assert_eq!(
        wait_both(&appliance.uri, colour, &eve.uri(), 1),
        (9, 9),
        "{}",
        eve.log()
    );
    let mono = common::ipptool::print_job_with(
        &appliance.uri,
        &file,
        "application/pdf",
        "mono",
        "ATTR keyword print-color-mode monochrome",
    );
    assert_eq!(wait_both(&appliance.uri, mono, &eve.uri(), 2), (9, 9));
    let mut spaces: Vec<u32> = eve
        .spooled()
        .iter()
        .filter_map(|f| fs::read(f).ok())
        .filter(|b| b.starts_with(b"RaS2"))
        .filter_map(|b| pwg_color_space(&b))
        .collect();
    spaces.sort();
    assert_eq!(
        spaces,
        [18, 19],
        "one sRGB and one gray raster at ippeveprinter\n{}",
        eve.log()
    );
}

#[test]
fn downstream_state_shows_in_ours_and_a_job_waits_for_it_then_prints_once() {
    let mut eve = EvePrinter::start("pbdownstream", "application/pdf", &[]);
    let state = tempfile::tempdir().unwrap();
    let appliance = appliance_with_device(state.path(), &eve.uri(), "");
    let pdf = common::one_page_pdf("waits for the printer");
    let file = state.path().join("doc.pdf");
    fs::write(&file, &pdf).unwrap();

    // Up: nothing to report.
    let mut seen = (Vec::new(), String::new());
    assert!(
        common::wait_until(Duration::from_secs(20), || {
            seen = printer_condition(&appliance.uri);
            seen.0 == ["none"]
        }),
        "{seen:?}"
    );

    // Down: the monitor notices without any job, and says so.
    eve.stop();
    assert!(
        common::wait_until(Duration::from_secs(30), || {
            seen = printer_condition(&appliance.uri);
            seen.0.iter().any(|r| r == "offline-report")
        }),
        "offline-report never appeared: {seen:?}"
    );
    assert!(
        seen.1.contains(&eve.port.to_string()),
        "message names the printer: {seen:?}"
    );

    let id = print_job(&appliance.uri, &file, "application/pdf", "waits");
    assert!(
        common::wait_until(Duration::from_secs(30), || {
            seen = printer_condition(&appliance.uri);
            seen.0.iter().any(|r| r == "connecting-to-device")
        }),
        "connecting-to-device never appeared: {seen:?}"
    );
    let now = job_state(&appliance.uri, id);
    assert!(
        matches!(now, Some((3, _)) | Some((5, _))),
        "the job is kept while the printer is down: {now:?}"
    );

    // Back: the job prints once there, completes here, and the reasons clear.
    eve.restart(2);
    let done = wait_job_done(&appliance.uri, id, Duration::from_secs(150));
    assert_eq!(
        done.as_ref().map(|d| d.0),
        Some(9),
        "{done:?}\n{}",
        eve.log()
    );
    let copies: Vec<_> = eve
        .spooled()
        .into_iter()
        .filter(|f| is_pdf_with(f, "waits for the printer"))
        .collect();
    assert_eq!(
        copies.len(),
        1,
        "printed exactly once: {copies:?}\n{}",
        eve.log()
    );
    assert_eq!(
        job_state(&eve.uri(), 1).map(|s| s.0),
        Some(9),
        "{}",
        eve.log()
    );
    assert!(
        job_state(&eve.uri(), 2).is_none(),
        "ippeveprinter got a second job:\n{}",
        eve.log()
    );
    assert!(
        common::wait_until(Duration::from_secs(20), || {
            seen = printer_condition(&appliance.uri);
            seen.0 == ["none"]
        }),
        "reasons did not clear: {seen:?}"
    );
}

#[test]
fn downstream_supply_and_media_reasons_show_in_ours_and_clear() {
    let eve = EvePrinter::start("pbdownstream", "application/pdf", &[]);
    let state = tempfile::tempdir().unwrap();
    let appliance = appliance_with_device(state.path(), &eve.uri(), "");
    let mut seen = (Vec::new(), String::new());
    assert!(
        common::wait_until(Duration::from_secs(20), || {
            seen = printer_condition(&appliance.uri);
            seen.0 == ["none"]
        }),
        "{seen:?}"
    );

    // The black toner at 2% and the main tray empty: ippeveprinter then reports toner-low-report
    // and media-empty-report (RFC 8011 §5.4.12); our monitor polls it and carries them into ours.
    eve.web_form("/supplies?supply0=25&supply1=2");
    eve.web_form("/media?size1=iso_a4_210x297mm&type1=stationery&level1=0&size3=&type3=&level3=-2");
    let down = printer_condition(&eve.uri());
    assert!(
        down.0.iter().any(|r| r == "toner-low-report")
            && down.0.iter().any(|r| r == "media-empty-report"),
        "ippeveprinter did not take the forms: {down:?}"
    );
    assert!(
        common::wait_until(Duration::from_secs(40), || {
            seen = printer_condition(&appliance.uri);
            seen.0.iter().any(|r| r == "toner-low-report")
                && seen.0.iter().any(|r| r == "media-empty-report")
        }),
        "the printer's reasons {down:?} never showed in ours: {seen:?}"
    );

    // Refilled: the reasons go away here too.
    eve.web_form("/supplies?supply0=25&supply1=75");
    eve.web_form(
        "/media?size1=iso_a4_210x297mm&type1=stationery&level1=250&size3=&type3=&level3=-2",
    );
    assert!(
        common::wait_until(Duration::from_secs(40), || {
            seen = printer_condition(&appliance.uri);
            seen.0 == ["none"]
        }),
        "reasons did not clear: {seen:?}"
    );
}

#[test]
fn ipps_device_trusts_the_first_certificate_and_refuses_a_changed_one() {
    // The downstream: another appliance with TLS on its port (a self-signed certificate made at
    // its first start) printing into its output directory.
    let down_state = tempfile::tempdir().unwrap();
    let downstream = common::Appliance::start(down_state.path(), &[]);
    let ipps = downstream.uri.replacen("ipp://", "ipps://", 1);

    let state = tempfile::tempdir().unwrap();
    let appliance = appliance_with_device(state.path(), &ipps, "");
    let file = state.path().join("doc.pdf");
    fs::write(&file, common::one_page_pdf("over TLS")).unwrap();
    let id = print_job(&appliance.uri, &file, "application/pdf", "tls");
    let done = wait_job_done(&appliance.uri, id, Duration::from_secs(60));
    assert_eq!(done.as_ref().map(|d| d.0), Some(9), "{done:?}");
    assert!(
        files_under(&downstream.output_dir())
            .iter()
            .any(|f| is_pdf_with(f, "over TLS")),
        "the downstream printed nothing: {:?}",
        files_under(&downstream.output_dir())
    );
    let pins = files_under(&state.path().join("device-certs"));
    assert_eq!(pins.len(), 1, "one pinned certificate: {pins:?}");
    let pinned = fs::read_to_string(&pins[0]).unwrap();
    assert_eq!(pinned.trim().len(), 64, "a SHA-256 in hex: {pinned}");

    // Another certificate than the pinned one: refused, the job waits and the message says why.
    drop(appliance);
    fs::write(&pins[0], format!("{}\n", "0".repeat(64))).unwrap();
    let appliance = appliance_with_device(state.path(), &ipps, "");
    let id = print_job(&appliance.uri, &file, "application/pdf", "tls-changed");
    let mut seen = (Vec::new(), String::new());
    assert!(
        common::wait_until(Duration::from_secs(30), || {
            seen = printer_condition(&appliance.uri);
            seen.0.iter().any(|r| r == "offline-report")
        }),
        "{seen:?}"
    );
    assert!(seen.1.contains("certificate changed"), "{seen:?}");
    let now = job_state(&appliance.uri, id);
    assert!(matches!(now, Some((3, _)) | Some((5, _))), "{now:?}");
}

#[test]
fn canceling_our_job_cancels_it_at_the_printer() {
    let eve = EvePrinter::start("pbdownstream", "application/pdf", &[]);
    let state = tempfile::tempdir().unwrap();
    let appliance = appliance_with_device(state.path(), &eve.uri(), "");
    let file = state.path().join("doc.pdf");
    fs::write(&file, common::one_page_pdf("canceled")).unwrap();
    let id = print_job(&appliance.uri, &file, "application/pdf", "cancel-me");
    // ippeveprinter takes seconds per job: catch it while its job 1 is pending or processing.
    let mut theirs = None;
    assert!(
        common::wait_until(Duration::from_secs(60), || {
            theirs = job_state(&eve.uri(), 1).map(|s| s.0);
            matches!(theirs, Some(3..=6))
        }),
        "the job never reached ippeveprinter: {theirs:?}\n{}",
        eve.log()
    );
    assert!(common::ipptool::cancel_job(&appliance.uri, id));
    assert!(
        common::wait_until(Duration::from_secs(30), || {
            theirs = job_state(&eve.uri(), 1).map(|s| s.0);
            theirs == Some(7)
        }),
        "ippeveprinter's job was not canceled: {theirs:?}\n{}",
        eve.log()
    );
    assert_eq!(job_state(&appliance.uri, id).map(|s| s.0), Some(7));
}

/// Runs an ipptool test file against `uri` and returns what it printed.
fn run_ipptool(uri: &str, test: &str, vars: &[(&str, &str)]) -> String {
    common::ipptool::run_text(&["-t"], &[uri], test, vars)
}

/// The PDFs in ippeveprinter's kept spool files whose text contains `text`.
fn copies_at(eve: &EvePrinter, text: &str) -> Vec<PathBuf> {
    eve.spooled()
        .into_iter()
        .filter(|f| is_pdf_with(f, text))
        .collect()
}

#[test]
fn a_job_followed_downstream_is_not_printed_again_after_sigkill() {
    let eve = EvePrinter::start("pbdownstream", "application/pdf", &[]);
    let state = tempfile::tempdir().unwrap();
    let mut appliance = appliance_with_device(state.path(), &eve.uri(), "");
    let file = state.path().join("doc.pdf");
    fs::write(&file, common::one_page_pdf("exactly once downstream")).unwrap();
    let id = print_job(&appliance.uri, &file, "application/pdf", "once");

    // ippeveprinter logs Send-Document once it has the document; printbridge recorded the
    // downstream job before sending it. Frozen there, the printer cannot finish the job, so
    // printbridge is still following it when it dies.
    assert!(
        common::wait_until(Duration::from_secs(60), || eve
            .log()
            .contains("Send-Document")),
        "the document never reached ippeveprinter:\n{}",
        eve.log()
    );
    eve.signal("STOP");
    let downstream_before = job_state(&appliance.uri, id);
    appliance.kill9();
    eve.signal("CONT");
    assert!(
        matches!(downstream_before, Some((3 | 5, _))),
        "our job was not still in progress at the kill: {downstream_before:?}"
    );

    // Same state directory: the job comes back as pending and must not be sent again.
    let appliance = appliance_with_device(state.path(), &eve.uri(), "");
    let done = wait_job_done(&appliance.uri, id, Duration::from_secs(150));
    assert_eq!(
        done.as_ref().map(|d| d.0),
        Some(9),
        "{done:?}\n{}",
        eve.log()
    );
    assert_eq!(
        job_state(&eve.uri(), 1).map(|s| s.0),
        Some(9),
        "{}",
        eve.log()
    );
    assert!(
        job_state(&eve.uri(), 2).is_none(),
        "ippeveprinter got the job a second time:\n{}",
        eve.log()
    );
    let copies = copies_at(&eve, "exactly once downstream");
    assert_eq!(
        copies.len(),
        1,
        "printed exactly once: {copies:?}\n{}",
        eve.log()
    );
}

#[test]
fn sigterm_while_a_job_is_at_the_printer_never_prints_it_twice() {
    let eve = EvePrinter::start("pbdownstream", "application/pdf", &[]);
    let state = tempfile::tempdir().unwrap();
    let extra = "shutdown_grace_seconds = 2";
    let mut appliance = appliance_with_device(state.path(), &eve.uri(), extra);
    let file = state.path().join("doc.pdf");
    fs::write(&file, common::one_page_pdf("graceful stop downstream")).unwrap();
    let id = print_job(&appliance.uri, &file, "application/pdf", "graceful");

    // The document is at the printer, which is frozen: our job cannot end within the grace, so
    // the graceful stop must leave it to be asked about after the restart.
    assert!(
        common::wait_until(Duration::from_secs(60), || eve
            .log()
            .contains("Send-Document")),
        "the document never reached ippeveprinter:\n{}",
        eve.log()
    );
    eve.signal("STOP");
    let exited = common::appliance::sigterm_and_wait(&mut appliance, Duration::from_secs(30));
    eve.signal("CONT");
    assert!(
        exited,
        "printbridge did not stop soon after the grace period"
    );

    let appliance = appliance_with_device(state.path(), &eve.uri(), extra);
    let done = wait_job_done(&appliance.uri, id, Duration::from_secs(150));
    assert_eq!(
        done.as_ref().map(|d| d.0),
        Some(9),
        "{done:?}\n{}",
        eve.log()
    );
    assert!(
        job_state(&eve.uri(), 2).is_none(),
        "ippeveprinter got the job a second time:\n{}",
        eve.log()
    );
    let copies = copies_at(&eve, "graceful stop downstream");
    assert_eq!(
        copies.len(),
        1,
        "printed exactly once: {copies:?}\n{}",
        eve.log()
    );
}

#[test]
fn job_options_reach_the_printer_when_it_supports_them() {
    // -2: ippeveprinter offers two-sided printing; its print-color-mode-supported is
    // monochrome only, so color must be left out rather than refused.
    let eve = EvePrinter::start("pbdownstream", "application/pdf", &["-2"]);
    let state = tempfile::tempdir().unwrap();
    let appliance = appliance_with_device(state.path(), &eve.uri(), "");
    let file = state.path().join("doc.pdf");
    fs::write(&file, common::one_page_pdf("options downstream")).unwrap();
    let out = run_ipptool(
        &appliance.uri,
        r#"{
  NAME "Print-Job with options"
  OPERATION Print-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name tester
  ATTR name job-name options
  ATTR mimeMediaType document-format application/pdf
  GROUP job-attributes-tag
  ATTR keyword sides two-sided-long-edge
  ATTR enum print-quality 5
  ATTR keyword media iso_a4_210x297mm
  ATTR keyword print-color-mode color
  ATTR integer copies 2
  FILE $file
  STATUS successful-ok
  EXPECT job-id
  DISPLAY job-id
}
"#,
        &[("file", file.to_str().unwrap())],
    );
    let id: u32 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("job-id (integer) = "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Print-Job with options failed:\n{out}"));
    let done = wait_job_done(&appliance.uri, id, Duration::from_secs(120));
    assert_eq!(
        done.as_ref().map(|d| d.0),
        Some(9),
        "{done:?}\n{}",
        eve.log()
    );

    let theirs = run_ipptool(
        &eve.uri(),
        r#"{
  NAME "Get-Job-Attributes"
  OPERATION Get-Job-Attributes
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR integer job-id 1
  ATTR name requesting-user-name tester
  ATTR keyword requested-attributes all
  STATUS successful-ok
  DISPLAY sides
  DISPLAY print-quality
  DISPLAY media
  DISPLAY print-color-mode
  DISPLAY copies
}
"#,
        &[],
    );
    let shown = |name: &str| {
        theirs.lines().find_map(|l| {
            l.trim()
                .strip_prefix(name)
                .filter(|r| r.starts_with(" ("))
                .and_then(|r| r.split_once(" = "))
                .map(|(_, v)| v.to_string())
        })
    };
    assert_eq!(
        shown("sides").as_deref(),
        Some("two-sided-long-edge"),
        "{theirs}"
    );
    assert_eq!(shown("print-quality").as_deref(), Some("high"), "{theirs}");
    assert_eq!(
        shown("media").as_deref(),
        Some("iso_a4_210x297mm"),
        "{theirs}"
    );
    // Not listed by the printer: left out. Copies are in the PDF already: never passed on.
    assert_eq!(shown("print-color-mode"), None, "{theirs}");
    assert_eq!(shown("copies"), None, "{theirs}");
    assert_eq!(
        copies_at(&eve, "options downstream").len(),
        1,
        "one document, with both copies inside it:\n{}",
        eve.log()
    );
}

/// Create-Job at ippeveprinter without a document: its job waits, held, for data that never
/// comes (job-data-insufficient), as after a crash between Create-Job and Send-Document.
fn empty_downstream_job(eve: &EvePrinter) -> i32 {
    let out = run_ipptool(
        &eve.uri(),
        r#"{
  NAME "Create-Job"
  OPERATION Create-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name printbridge
  STATUS successful-ok
  DISPLAY job-id
}
"#,
        &[],
    );
    out.lines()
        .find_map(|l| l.trim().strip_prefix("job-id (integer) = "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Create-Job at ippeveprinter failed:\n{out}"))
}

/// The ipp:// device driven in-process with the spool as its ledger, each retry starting from a
/// record an earlier (crashed) attempt could have left: what ippeveprinter says about the
/// recorded job decides, and nothing is sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_asks_the_printer_about_the_recorded_job_before_sending() {
    use printbridge::device::{self, DeviceError, DeviceJob, DownstreamRecord, JobLedger};
    use printbridge::spool::{DocumentMeta, NewJob, Spool};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    let eve = EvePrinter::start("pbdownstream", "application/pdf", &[]);
    let state = tempfile::tempdir().unwrap();
    let spool = Spool::open(
        &state.path().join("spool"),
        Arc::new(printbridge::model::clock::SystemClock),
        false,
    )
    .await
    .unwrap();
    let settings = device::Settings {
        state_dir: state.path().to_path_buf(),
        socket_format: device::SocketFormat::Pdf,
        timeout: Duration::from_secs(5),
        resolution_dpi: 300,
        raster_threads: 0,
        raster_counters: None,
        file_output: device::file::OutputMode::Pdf,
        cloud: None,
    };
    let (_shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    let uri = device::DeviceUri::parse(&eve.uri()).unwrap();
    let output = device::from_uri(&uri, &settings, shutdown).unwrap();
    let printer_uri = output.description.clone();

    // One spool job per case, each with its own text so its copies at the printer can be told
    // apart; the record is what a crashed attempt would have left.
    let mut case = 0;
    let mut run = |record: DownstreamRecord| {
        case += 1;
        let spool = spool.clone();
        let device = output.device.clone();
        let dir = state.path().to_path_buf();
        async move {
            let text = format!("retry case {case}");
            let pdf = dir.join(format!("case-{case}.pdf"));
            fs::write(&pdf, common::one_page_pdf(&text)).unwrap();
            let staged = spool
                .stage_document(&b"%PDF-1.4 placeholder"[..], 1 << 20)
                .await
                .unwrap();
            let meta = DocumentMeta {
                format: "application/pdf".into(),
                compression: "none".into(),
                name: None,
            };
            let new = NewJob {
                owner: "tester".into(),
                name: text.clone(),
                attributes: Vec::new(),
                hold: None,
            };
            let id = spool
                .create_job(new, Some((staged, meta)), true)
                .await
                .unwrap()
                .id;
            spool.record_device_job(id, &record).await.unwrap();
            let job = DeviceJob {
                id,
                owner: "alice".into(),
                name: text.clone(),
                documents: Vec::new(),
                rendered: Some(pdf),
                ticket: Default::default(),
                attributes: Vec::new(),
                ledger: Some(spool.clone() as Arc<dyn JobLedger>),
            };
            let result = device.print(&job, Arc::new(AtomicBool::new(false))).await;
            (result, text)
        }
    };
    let record = |job_id: Option<i32>, job_uuid: Option<&str>, submitted: bool| DownstreamRecord {
        printer_uri: printer_uri.clone(),
        document: 0,
        job_id,
        job_uuid: job_uuid.map(str::to_string),
        submitted,
    };
    let eve_uri = eve.uri();
    let eve_job = |id: u32| {
        let uri = eve_uri.clone();
        async move {
            tokio::task::spawn_blocking(move || job_state(&uri, id).map(|s| s.0))
                .await
                .unwrap()
        }
    };

    // 1. Created there but the document never arrived: that empty job is canceled and the job
    //    sent again, as ippeveprinter's job 2.
    let empty = empty_downstream_job(&eve);
    assert_eq!(empty, 1);
    let (result, text) = run(record(Some(empty), None, false)).await;
    assert!(result.is_ok(), "{result:?}\n{}", eve.log());
    assert_eq!(eve_job(1).await, Some(7), "{}", eve.log());
    assert_eq!(eve_job(2).await, Some(9), "{}", eve.log());
    assert_eq!(copies_at(&eve, &text).len(), 1, "{}", eve.log());

    // 2. Its job completed there: ours completes without sending anything.
    let (result, text) = run(record(Some(2), None, true)).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(copies_at(&eve, &text).len(), 0, "{}", eve.log());
    assert_eq!(eve_job(3).await, None, "{}", eve.log());

    // 3. Its job was canceled there: ours ends the same way, nothing is resent.
    let (result, _) = run(record(Some(1), None, true)).await;
    assert!(
        matches!(
            result,
            Err(DeviceError::Fatal {
                reason: "job-canceled-at-device",
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(eve_job(3).await, None, "{}", eve.log());

    // 4. The printer does not know the job (it restarted and forgot): sent again.
    let (result, text) = run(record(Some(99), None, true)).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(eve_job(3).await, Some(9), "{}", eve.log());
    assert_eq!(copies_at(&eve, &text).len(), 1, "{}", eve.log());

    // 5. Same job-id but another job-uuid: another job reused the id, ours is gone: sent again.
    let (result, text) = run(record(Some(2), Some("urn:uuid:not-the-one"), true)).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(eve_job(4).await, Some(9), "{}", eve.log());
    assert_eq!(copies_at(&eve, &text).len(), 1, "{}", eve.log());

    // 6. A Print-Job was in flight (no job-id known): it may have printed, so it is not resent.
    let (result, _) = run(record(None, None, false)).await;
    assert!(
        matches!(
            result,
            Err(DeviceError::Fatal {
                reason: "aborted-by-system",
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(eve_job(5).await, None, "{}", eve.log());
}

/// The capability attributes compared between ippeveprinter and the queue printing on it.
const CAPABILITIES: &[&str] = &[
    "printer-make-and-model",
    "color-supported",
    "sides-supported",
    "sides-default",
    "media-supported",
    "media-default",
    "media-ready",
    "media-source-supported",
    "media-type-supported",
    "print-color-mode-supported",
    "print-color-mode-default",
    "printer-resolution-supported",
    "printer-resolution-default",
];

/// A 1setOf as ipptool shows it, as a list.
fn values(attrs: &std::collections::BTreeMap<String, String>, name: &str) -> Vec<String> {
    attrs
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {attrs:#?}"))
        .split(',')
        .map(str::to_string)
        .collect()
}

/// Checks that the queue at `ours` advertises what ippeveprinter at `theirs` says it can do.
fn assert_mirrors(
    ours: &std::collections::BTreeMap<String, String>,
    theirs: &std::collections::BTreeMap<String, String>,
) {
    for same in [
        "printer-make-and-model",
        "color-supported",
        "sides-supported",
        "sides-default",
        "media-default",
        "media-ready",
        "printer-resolution-supported",
        "printer-resolution-default",
    ] {
        assert_eq!(
            ours.get(same),
            theirs.get(same),
            "{same}: ours {ours:#?}\nippeveprinter's {theirs:#?}"
        );
    }
    // print-color-mode: the printer's, and on a printer without colour also `auto` (which is
    // monochrome there) as the default.
    let their_modes = values(theirs, "print-color-mode-supported");
    let our_modes = values(ours, "print-color-mode-supported");
    if theirs["color-supported"] == "true" {
        assert_eq!(our_modes, their_modes);
        assert_eq!(
            ours["print-color-mode-default"],
            theirs["print-color-mode-default"]
        );
    } else {
        assert!(
            our_modes
                .iter()
                .all(|m| m == "auto" || their_modes.contains(m))
                && their_modes.iter().all(|m| our_modes.contains(m))
                && !our_modes.iter().any(|m| m == "color"),
            "print-color-mode-supported: ours {our_modes:?}, its {their_modes:?}"
        );
        assert_eq!(ours["print-color-mode-default"], "auto");
    }
    let their_media = values(theirs, "media-supported");
    let our_media = values(ours, "media-supported");
    assert!(
        our_media.iter().all(|m| their_media.contains(m)),
        "we offer media the printer lacks: ours {our_media:?}, its {their_media:?}"
    );
    for m in ["iso_a4_210x297mm", "na_letter_8.5x11in"] {
        assert!(
            their_media.iter().any(|x| x == m) && our_media.iter().any(|x| x == m),
            "{m}: ours {our_media:?}, its {their_media:?}"
        );
    }
    for list in ["media-source-supported", "media-type-supported"] {
        let theirs = values(theirs, list);
        assert!(
            values(ours, list).iter().all(|v| theirs.contains(v)),
            "{list}: ours {ours:#?}, its {theirs:?}"
        );
    }
}

/// Each queue on an ipp:// device advertises its printer's capabilities (ippeveprinter: one-sided
/// and monochrome by default, two-sided with -2, colour with a colour speed), and a start while
/// the printers are off advertises the same, from the copy kept in each queue's directory.
#[test]
fn queues_advertise_their_printers_capabilities_also_when_it_is_off_at_start() {
    let mut simplex = EvePrinter::start(
        "pbdownstream",
        "application/pdf",
        &["-M", "Acme", "-m", "Simplex 100"],
    );
    let mut duplex = EvePrinter::start(
        "pbdownstream",
        "application/pdf",
        &["-2", "-s", "10,5", "-M", "Acme", "-m", "Duplex Color 200"],
    );
    let state = tempfile::tempdir().unwrap();
    // The default queue on one printer, a [[queue]] on the other.
    let extra = format!(
        "\n[[queue]]\nname = \"duplex\"\ndevice_uri = \"{}\"\ndevice_timeout_seconds = 5\n",
        duplex.uri()
    );
    let appliance = appliance_with_device(state.path(), &simplex.uri(), &extra);
    let queues = [
        (appliance.uri.clone(), &simplex),
        (format!("{}/duplex", appliance.uri), &duplex),
    ];
    let mut advertised = Vec::new();
    for (ours, eve) in queues {
        let theirs = printer_attributes(&eve.uri(), CAPABILITIES);
        let mine = printer_attributes(&ours, CAPABILITIES);
        assert_mirrors(&mine, &theirs);
        advertised.push((ours, mine));
    }
    let simplex_caps = &advertised[0].1;
    let duplex_caps = &advertised[1].1;
    assert_eq!(simplex_caps["printer-make-and-model"], "Acme Simplex 100");
    assert_eq!(values(simplex_caps, "sides-supported"), ["one-sided"]);
    assert_eq!(simplex_caps["color-supported"], "false");
    assert_eq!(
        duplex_caps["printer-make-and-model"],
        "Acme Duplex Color 200"
    );
    assert_eq!(
        values(duplex_caps, "sides-supported"),
        ["one-sided", "two-sided-long-edge", "two-sided-short-edge"]
    );
    assert_eq!(duplex_caps["color-supported"], "true");
    for dir in [
        state.path().to_path_buf(),
        state.path().join("queues/duplex"),
    ] {
        let kept = dir.join("device-capabilities.json");
        assert!(kept.is_file(), "{} is missing", kept.display());
    }

    // Both printers off, printbridge started again: the same capabilities, from what was kept.
    simplex.stop();
    duplex.stop();
    drop(appliance);
    let appliance = appliance_with_device(state.path(), &simplex.uri(), &extra);
    let mut seen = (Vec::new(), String::new());
    assert!(
        common::wait_until(Duration::from_secs(30), || {
            seen = printer_condition(&appliance.uri);
            seen.0.iter().any(|r| r == "offline-report")
        }),
        "the printer is off, yet: {seen:?}"
    );
    for (i, ours) in [appliance.uri.clone(), format!("{}/duplex", appliance.uri)]
        .iter()
        .enumerate()
    {
        let now = printer_attributes(ours, CAPABILITIES);
        assert_eq!(
            now, advertised[i].1,
            "{ours} after a restart without its printer"
        );
    }
}

/// A printer that is off at the first start: the queue advertises its configuration (a warning
/// says so), the running queue learns the printer's capabilities once it answers and keeps them,
/// and the next start advertises them even though the printer is off again.
#[test]
fn a_printer_off_at_the_first_start_is_learned_while_the_queue_runs() {
    let mut eve = EvePrinter::start(
        "pbdownstream",
        "application/pdf",
        &["-M", "Acme", "-m", "Late 300"],
    );
    eve.stop();
    let state = tempfile::tempdir().unwrap();
    let kept = state.path().join("device-capabilities.json");
    let appliance = appliance_with_device(state.path(), &eve.uri(), "");
    let configured = printer_attributes(&appliance.uri, CAPABILITIES);
    assert_eq!(
        configured["printer-make-and-model"],
        "printbridge IPP Everywhere"
    );
    assert!(!kept.exists());
    let configured_change_time =
        printer_attributes(&appliance.uri, &["printer-config-change-time"])
            ["printer-config-change-time"]
            .clone();

    eve.restart(2);
    assert!(
        common::wait_until(Duration::from_secs(30), || kept.is_file()),
        "the running queue never kept the printer's capabilities"
    );
    let theirs = printer_attributes(&eve.uri(), CAPABILITIES);
    // The running queue advertises them at once, and says its configuration changed.
    let mut ours = printer_attributes(&appliance.uri, CAPABILITIES);
    assert!(
        common::wait_until(Duration::from_secs(20), || {
            ours = printer_attributes(&appliance.uri, CAPABILITIES);
            ours["printer-make-and-model"] == "Acme Late 300"
        }),
        "the running queue still advertises {ours:?}"
    );
    assert_mirrors(&ours, &theirs);
    let changed_at = printer_attributes(&appliance.uri, &["printer-config-change-time"]);
    assert_ne!(
        changed_at["printer-config-change-time"], configured_change_time,
        "printer-config-change-time did not move"
    );
    eve.stop();
    drop(appliance);
    let appliance = appliance_with_device(state.path(), &eve.uri(), "");
    let ours = printer_attributes(&appliance.uri, CAPABILITIES);
    assert_mirrors(&ours, &theirs);
    assert_eq!(ours["printer-make-and-model"], "Acme Late 300");
}

/// Debian's IPP Everywhere suite passes against a queue whose capabilities came from
/// ippeveprinter (see tests/ipptool_suites.rs for how the suites are run).
#[test]
fn ipp_everywhere_suite_against_a_queue_on_ippeveprinter() {
    let eve = EvePrinter::start("pbdownstream", "application/pdf,image/pwg-raster", &["-2"]);
    let state = tempfile::tempdir().unwrap();
    let appliance = appliance_with_device(state.path(), &eve.uri(), "");
    let theirs = printer_attributes(&eve.uri(), CAPABILITIES);
    assert_mirrors(&printer_attributes(&appliance.uri, CAPABILITIES), &theirs);
    common::ipptool::assert_ipp_everywhere_passes(&appliance.uri, "a queue on ippeveprinter");
}
