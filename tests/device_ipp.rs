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
mod device_support;

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use common::cupsd::PrivateCupsd;
use device_support::{
    appliance_with_device, files_under, job_state, print_job, printer_condition, wait_job_done,
};

/// A private D-Bus system bus, killed on drop.
struct DbusBus {
    child: Child,
    address: String,
}

impl DbusBus {
    fn start(dir: &Path) -> DbusBus {
        let daemon = common::require_program("dbus-daemon", "dbus-daemon");
        fs::create_dir_all(dir).unwrap();
        let socket = dir.join("bus.sock");
        let config = dir.join("bus.conf");
        fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.join("dbus.log")).unwrap();
        let mut child = Command::new(daemon)
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn dbus-daemon");
        if !common::wait_until(Duration::from_secs(10), || socket.exists()) {
            let _ = child.kill();
            panic!("dbus-daemon did not create {}", socket.display());
        }
        DbusBus {
            child,
            address: format!("unix:path={}", socket.display()),
        }
    }
}

impl Drop for DbusBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `ippeveprinter` keeping its job files (`-k`) in its spool directory; can be stopped and
/// started again on the same port.
struct EvePrinter {
    child: Option<Child>,
    port: u16,
    formats: String,
    spool: PathBuf,
    log: PathBuf,
    bus: DbusBus,
    dir: TempDir,
}

impl EvePrinter {
    fn start(formats: &str) -> EvePrinter {
        let dir = tempfile::tempdir().unwrap();
        let bus = DbusBus::start(&dir.path().join("dbus"));
        let mut eve = EvePrinter {
            child: None,
            port: 0,
            formats: formats.to_string(),
            spool: dir.path().join("spool-1"),
            log: dir.path().join("ippeveprinter-1.log"),
            bus,
            dir,
        };
        // The port is free when chosen but could be taken before ippeveprinter binds it: retry.
        for _ in 0..3 {
            eve.port = common::free_port();
            if eve.launch() {
                return eve;
            }
        }
        panic!("ippeveprinter did not start (3 attempts):\n{}", eve.log());
    }

    fn launch(&mut self) -> bool {
        let program = common::require_program("ippeveprinter", "cups-ipp-utils");
        fs::create_dir_all(&self.spool).unwrap();
        let log = fs::File::create(&self.log).unwrap();
        let mut child = Command::new(program)
            .args(["-r", "off", "-n", "localhost", "-p", &self.port.to_string()])
            .args(["-f", &self.formats, "-k", "-v"])
            .arg("-d")
            .arg(&self.spool)
            .arg("pbdownstream")
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus.address)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn ippeveprinter");
        let mut exited = false;
        let up = common::wait_until(Duration::from_secs(20), || {
            exited = exited || matches!(child.try_wait(), Ok(Some(_)));
            exited || TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
        if up && !exited {
            self.child = Some(child);
            return true;
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port, with a fresh spool directory and log.
    fn restart(&mut self, generation: u32) {
        self.stop();
        self.spool = self.dir.path().join(format!("spool-{generation}"));
        self.log = self
            .dir
            .path()
            .join(format!("ippeveprinter-{generation}.log"));
        // The port was just released; give the kernel a moment if it is slow to let go.
        assert!(
            common::wait_until(Duration::from_secs(20), || self.launch()),
            "ippeveprinter did not come back on port {}:\n{}",
            self.port,
            self.log()
        );
    }

    fn uri(&self) -> String {
        format!("ipp://127.0.0.1:{}/ipp/print", self.port)
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn spooled(&self) -> Vec<PathBuf> {
        files_under(&self.spool)
    }
}

impl Drop for EvePrinter {
    fn drop(&mut self) {
        self.stop();
    }
}

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
    let eve = EvePrinter::start("application/pdf,image/jpeg,image/pwg-raster");
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
    let eve = EvePrinter::start("image/pwg-raster");
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

#[test]
fn downstream_state_shows_in_ours_and_a_job_waits_for_it_then_prints_once() {
    let mut eve = EvePrinter::start("application/pdf");
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
    let eve = EvePrinter::start("application/pdf");
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
    assert!(device_support::cancel_job(&appliance.uri, id));
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
