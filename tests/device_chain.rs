//! A queue whose ipp:// device is a printer that stops: its stopped state shows in ours. The
//! downstream printer here is a second `printbridge serve`, because Debian's ippeveprinter cannot be
//! stopped (it has no Pause-Printer; tests/device_ipp.rs uses it for everything else). Checked with
//! Debian's ipptool: the downstream printer is paused by its administrator; our printer-state turns
//! stopped with its reasons; a job we hand it waits there and shows processing-stopped with
//! printer-stopped here (RFC 8011 §5.3.7, §5.4.11); resumed, the job prints once and both clear.

mod common;

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::appliance::appliance_with_device;
use common::files_under;
use common::ipptool::{job_state, print_job, printer_condition, wait_job_done};

const ADMIN_PASSWORD: &str = "chain-admin-pw";

/// Pause-Printer or Resume-Printer, as the downstream printer's administrator.
fn admin_operation(admin_uri: &str, operation: &str) {
    common::ipptool::assert_printer_operation(admin_uri, operation, "admin");
}

use common::ipptool::printer_state;

#[test]
fn a_stopped_downstream_printer_stops_our_queue_and_its_job_until_it_resumes() {
    let down_state = tempfile::tempdir().unwrap();
    let mut add = Command::new(env!("CARGO_BIN_EXE_printbridge"))
        .args(["user", "add", "admin", "--admin", "--state-dir"])
        .arg(down_state.path())
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn printbridge user add");
    writeln!(add.stdin.take().unwrap(), "{ADMIN_PASSWORD}").unwrap();
    assert!(add.wait().unwrap().success(), "printbridge user add failed");
    let downstream = common::Appliance::start(down_state.path(), &["--name", "downstream"]);
    let down_admin =
        downstream
            .uri
            .replacen("ipp://", &format!("ipp://admin:{ADMIN_PASSWORD}@"), 1);

    let up_state = tempfile::tempdir().unwrap();
    let ours = appliance_with_device(up_state.path(), &downstream.uri, "");
    let mut seen = (Vec::new(), String::new());
    assert!(
        common::wait_until(Duration::from_secs(20), || {
            seen = printer_condition(&ours.uri);
            seen.0 == ["none"]
        }),
        "{seen:?}"
    );
    assert_eq!(printer_state(&ours.uri), 3);

    // Stopped there: stopped here, with the printer's own reason, found by the monitor alone.
    admin_operation(&down_admin, "Pause-Printer");
    assert_eq!(printer_state(&downstream.uri), 5);
    let mut state = 0;
    assert!(
        common::wait_until(Duration::from_secs(40), || {
            state = printer_state(&ours.uri);
            state == 5
        }),
        "our printer-state stayed {state} while the device is stopped"
    );
    seen = printer_condition(&ours.uri);
    assert!(seen.0.iter().any(|r| r == "paused"), "{seen:?}");

    // A job now goes to the printer and waits there: processing-stopped here, printer-stopped.
    let file = up_state.path().join("doc.pdf");
    fs::write(&file, common::one_page_pdf("held by a stopped printer")).unwrap();
    let id = print_job(&ours.uri, &file, "application/pdf", "stopped");
    let mut job = None;
    assert!(
        common::wait_until(Duration::from_secs(60), || {
            job = job_state(&ours.uri, id);
            matches!(&job, Some((6, reasons)) if reasons.contains("printer-stopped"))
        }),
        "our job did not show processing-stopped: {job:?}"
    );
    // Rendering and sending may still be under way when our job already shows stopped.
    let mut theirs = None;
    assert!(
        common::wait_until(Duration::from_secs(60), || {
            theirs = job_state(&downstream.uri, 1).map(|j| j.0);
            theirs.is_some()
        }),
        "the job never reached the stopped printer"
    );
    assert_eq!(theirs, Some(3), "the job waits at the stopped printer");

    // Resumed there: the job prints once, completes here, and our queue is idle again.
    admin_operation(&down_admin, "Resume-Printer");
    let done = wait_job_done(&ours.uri, id, Duration::from_secs(90));
    assert_eq!(done.as_ref().map(|d| d.0), Some(9), "{done:?}");
    let printed: Vec<_> = files_under(&down_state.path().join("output"))
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "pdf"))
        .collect();
    assert_eq!(printed.len(), 1, "printed exactly once: {printed:?}");
    assert!(
        common::wait_until(Duration::from_secs(40), || {
            state = printer_state(&ours.uri);
            seen = printer_condition(&ours.uri);
            state == 3 && seen.0 == ["none"]
        }),
        "our queue did not go back to idle: state {state}, {seen:?}"
    );
}
