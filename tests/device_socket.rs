//! The socket:// (AppSocket/JetDirect) output device against a loopback TCP listener that records
//! what it receives: the document arrives whole (checked with poppler's pdfinfo), PWG raster when
//! configured, and a listener that is down keeps the job pending with connecting-to-device and
//! offline-report until it comes up, when the job prints exactly once.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::appliance::appliance_with_device;
use common::ipptool::{print_job, printer_condition, wait_job_done};
use common::socket_printer::SocketPrinter;

fn pdfinfo_pages(bytes: &[u8]) -> String {
    let pdfinfo = common::require_program("pdfinfo", "poppler-utils");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("received.pdf");
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new(pdfinfo).arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "pdfinfo refused what the device received: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .map(|p| p.trim().to_string())
        .unwrap_or_default()
}

fn pdf_text(bytes: &[u8]) -> String {
    let pdftotext = common::require_program("pdftotext", "poppler-utils");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("received.pdf");
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new(pdftotext)
        .arg(&path)
        .arg("-")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn socket_device_receives_the_pdf_and_the_job_completes() {
    let recorder = SocketPrinter::start();
    let state = tempfile::tempdir().unwrap();
    let appliance = appliance_with_device(
        state.path(),
        &format!("socket://127.0.0.1:{}", recorder.port),
        "",
    );
    let pdf = common::one_page_pdf("printbridge socket test");
    let file = state.path().join("doc.pdf");
    std::fs::write(&file, &pdf).unwrap();

    let id = print_job(&appliance.uri, &file, "application/pdf", "socket-pdf");
    let done = wait_job_done(&appliance.uri, id, Duration::from_secs(60));
    assert_eq!(
        done.as_ref().map(|d| d.0),
        Some(9),
        "job {id} did not complete: {done:?}"
    );

    let jobs = recorder.jobs();
    assert_eq!(jobs.len(), 1, "one connection per document");
    // The job rendered with its options: our one page, with our text, as a PDF poppler reads.
    assert_eq!(pdfinfo_pages(&jobs[0]), "1");
    assert!(pdf_text(&jobs[0]).contains("printbridge socket test"));
    let (reasons, _) = printer_condition(&appliance.uri);
    assert_eq!(reasons, ["none"]);
}

#[test]
fn socket_device_sends_pwg_raster_when_configured() {
    let recorder = SocketPrinter::start();
    let state = tempfile::tempdir().unwrap();
    let appliance = appliance_with_device(
        state.path(),
        &format!("socket://127.0.0.1:{}", recorder.port),
        "socket_format = \"pwg-raster\"\nresolutions_dpi = [150]",
    );
    let file = state.path().join("doc.pdf");
    std::fs::write(&file, common::one_page_pdf("raster over a socket")).unwrap();

    let id = print_job(&appliance.uri, &file, "application/pdf", "socket-pwg");
    let done = wait_job_done(&appliance.uri, id, Duration::from_secs(120));
    assert_eq!(
        done.as_ref().map(|d| d.0),
        Some(9),
        "job {id} did not complete: {done:?}"
    );
    let jobs = recorder.jobs();
    assert_eq!(jobs.len(), 1);
    // PWG 5102.4 §4.3: the "RaS2" sync word, then 1796-byte page headers; one A4 page at 150 dpi.
    assert!(
        jobs[0].starts_with(b"RaS2"),
        "not PWG raster: {:?}",
        &jobs[0][..16.min(jobs[0].len())]
    );
    assert!(
        jobs[0].len() > 4 + 1796,
        "no page in {} bytes",
        jobs[0].len()
    );
    let header = &jobs[0][4..4 + 1796];
    let be = |o: usize| u32::from_be_bytes(header[o..o + 4].try_into().unwrap());
    assert_eq!((be(276), be(280)), (150, 150), "HWResolution");
}

#[test]
fn socket_device_down_keeps_the_job_pending_then_prints_it_once() {
    let port = common::free_port();
    let state = tempfile::tempdir().unwrap();
    let appliance = appliance_with_device(state.path(), &format!("socket://127.0.0.1:{port}"), "");
    let pdf = common::one_page_pdf("printed once");
    let file = state.path().join("doc.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let id = print_job(&appliance.uri, &file, "application/pdf", "socket-retry");

    // Nothing listens: the job waits and the printer says why.
    let mut seen = (Vec::new(), String::new());
    let shown = common::wait_until(Duration::from_secs(30), || {
        seen = printer_condition(&appliance.uri);
        seen.0.iter().any(|r| r == "offline-report")
            && seen.0.iter().any(|r| r == "connecting-to-device")
    });
    assert!(
        shown,
        "printer-state-reasons never showed the device down: {seen:?}"
    );
    assert!(
        seen.1.contains(&port.to_string()),
        "printer-state-message names the device: {seen:?}"
    );
    let state_now = common::ipptool::job_state(&appliance.uri, id);
    assert!(
        matches!(state_now, Some((3, _)) | Some((5, _))),
        "the job is kept (pending, or processing in a retry), not ended: {state_now:?}"
    );

    // The device comes up on the same port: the job prints, once, and the reasons clear.
    let recorder = SocketPrinter::start_on_port(port);
    let done = wait_job_done(&appliance.uri, id, Duration::from_secs(120));
    assert_eq!(
        done.as_ref().map(|d| d.0),
        Some(9),
        "job {id} did not complete: {done:?}"
    );
    let mut cleared = (Vec::new(), String::new());
    assert!(
        common::wait_until(Duration::from_secs(10), || {
            cleared = printer_condition(&appliance.uri);
            cleared.0 == ["none"]
        }),
        "reasons did not clear: {cleared:?}"
    );
    let jobs = recorder.jobs();
    assert_eq!(jobs.len(), 1, "printed exactly once");
    assert!(pdf_text(&jobs[0]).contains("printed once"));
}

/// A slow AppSocket printer: takes each connection, reads the job to its end, then "prints" the
/// first job for `hold` before it closes the connection, which is when the sender may count the
/// job as taken; later jobs are taken at once.
struct SlowPrinter {
    port: u16,
    /// Connections accepted so far (a transfer started).
    accepted: Arc<Mutex<usize>>,
    /// Bytes of each connection that ended.
    received: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl SlowPrinter {
    fn start(port: u16, hold: Duration) -> SlowPrinter {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (count, keep) = (accepted.clone(), received.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let first = {
                    let mut n = count.lock().unwrap();
                    *n += 1;
                    *n == 1
                };
                let keep = keep.clone();
                std::thread::spawn(move || {
                    let mut bytes = Vec::new();
                    let _ = conn.read_to_end(&mut bytes);
                    if first {
                        std::thread::sleep(hold);
                    }
                    keep.lock().unwrap().push(bytes);
                });
            }
        });
        SlowPrinter {
            port,
            accepted,
            received,
        }
    }

    fn accepted(&self) -> usize {
        *self.accepted.lock().unwrap()
    }
}

#[test]
fn sigterm_during_a_transfer_lets_it_finish_and_it_is_not_sent_again() {
    // The printer takes 4 s per job; the default grace (30 s) covers it.
    let printer = SlowPrinter::start(0, Duration::from_secs(4));
    let state = tempfile::tempdir().unwrap();
    let device = format!("socket://127.0.0.1:{}", printer.port);
    let mut appliance = appliance_with_device(state.path(), &device, "");
    let file = state.path().join("doc.pdf");
    std::fs::write(&file, common::one_page_pdf("finished during shutdown")).unwrap();
    let id = print_job(&appliance.uri, &file, "application/pdf", "graceful");
    assert!(
        common::wait_until(Duration::from_secs(60), || printer.accepted() == 1),
        "the transfer never started"
    );

    assert!(
        common::appliance::sigterm_and_wait(&mut appliance, Duration::from_secs(40)),
        "printbridge did not stop within the grace period"
    );
    assert_eq!(
        printer.received.lock().unwrap().len(),
        1,
        "the transfer finished before printbridge exited"
    );

    // After the restart the job is completed and nothing is sent again.
    let appliance = appliance_with_device(state.path(), &device, "");
    assert_eq!(
        common::ipptool::job_state(&appliance.uri, id).map(|s| s.0),
        Some(9)
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(printer.accepted(), 1, "the job was sent a second time");
    assert!(pdf_text(&printer.received.lock().unwrap()[0]).contains("finished during shutdown"));
}

#[test]
fn sigterm_past_the_grace_holds_the_job_instead_of_sending_it_again() {
    // A printer that takes a minute per job, and a 1 s grace: the transfer is stopped.
    let printer = SlowPrinter::start(0, Duration::from_secs(60));
    let state = tempfile::tempdir().unwrap();
    let device = format!("socket://127.0.0.1:{}", printer.port);
    let extra = "shutdown_grace_seconds = 1\ndevice_timeout_seconds = 30";
    let mut appliance = appliance_with_device(state.path(), &device, extra);
    let file = state.path().join("doc.pdf");
    std::fs::write(&file, common::one_page_pdf("maybe partly printed")).unwrap();
    let id = print_job(&appliance.uri, &file, "application/pdf", "interrupted");
    assert!(
        common::wait_until(Duration::from_secs(60), || printer.accepted() == 1),
        "the transfer never started"
    );
    assert!(
        common::appliance::sigterm_and_wait(&mut appliance, Duration::from_secs(20)),
        "printbridge did not stop soon after the grace period"
    );

    // After the restart the job waits held, says why, and is not sent again on its own.
    let appliance = appliance_with_device(state.path(), &device, extra);
    let (s, reasons) = common::ipptool::job_state(&appliance.uri, id).expect("job state");
    assert_eq!(s, 4, "pending-held: {reasons}");
    assert!(reasons.contains("job-held-for-review"), "{reasons}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(printer.accepted(), 1, "the job was sent a second time");
}

#[test]
fn sigkill_during_a_transfer_holds_the_job_after_the_restart_instead_of_sending_it_again() {
    // The printer is still "printing" when printbridge dies: nothing recorded the outcome.
    let printer = SlowPrinter::start(0, Duration::from_secs(60));
    let state = tempfile::tempdir().unwrap();
    let device = format!("socket://127.0.0.1:{}", printer.port);
    let mut appliance = appliance_with_device(state.path(), &device, "");
    let file = state.path().join("doc.pdf");
    std::fs::write(&file, common::one_page_pdf("killed mid-transfer")).unwrap();
    let id = print_job(&appliance.uri, &file, "application/pdf", "killed");
    assert!(
        common::wait_until(Duration::from_secs(60), || printer.accepted() == 1),
        "the transfer never started"
    );
    appliance.kill9();

    let appliance = appliance_with_device(state.path(), &device, "");
    let mut seen = None;
    assert!(
        common::wait_until(Duration::from_secs(30), || {
            seen = common::ipptool::job_state(&appliance.uri, id);
            matches!(seen, Some((4, _)))
        }),
        "the job was not held after the restart: {seen:?}"
    );
    let reasons = seen.unwrap().1;
    assert!(reasons.contains("job-held-for-review"), "{reasons}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(printer.accepted(), 1, "the job was sent a second time");

    // Its owner decides to print it again: it goes out once more, and completes.
    let out = common::ipptool::run_text(
        &["-t"],
        &[&appliance.uri],
        r#"{
  NAME "Release-Job"
  OPERATION Release-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR integer job-id $jobid
  ATTR name requesting-user-name tester
  STATUS successful-ok
}
"#,
        &[("jobid", &id.to_string())],
    );
    assert!(out.contains("[PASS]"), "{out}");
    let done = wait_job_done(&appliance.uri, id, Duration::from_secs(60));
    assert_eq!(done.as_ref().map(|d| d.0), Some(9), "{done:?}");
    assert_eq!(printer.accepted(), 2);
}
