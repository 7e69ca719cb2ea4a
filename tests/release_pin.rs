//! Secure release with a PIN (issue 18, docs/release.md), with real processes: `printbridge serve`
//! with `release = "pin"`, ipptool sending job-password with each job-password-encryption (the
//! .test files in tests/data/release/), CUPS's `lp -o job-password=...` through a private cupsd
//! with a driverless queue, and `printbridge release` / `POST /api/v1/jobs/{id}/release` typing
//! the PIN. Checked: the job waits held (job-password-wait) and prints nothing; a wrong PIN is
//! refused and counted; the right PIN prints it exactly once (the output directory); a replay
//! prints nothing; the per-job and per-client limits hold; expiry deletes unprinted and the
//! owner sees why; a held job survives kill -9.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::cupsd::PrivateCupsd;
use common::http::{self, attr, ipp_post, ipp_request};
use common::ipptool::{self, displayed, run_text};
use common::{files_under, wait_until, Appliance};
use printbridge::codec::ipp::{tag, Attribute, Value};

/// The appliance with its default queue in pin mode (and `extra` lines for `[printer]`),
/// printing PDF files into STATE/output.
fn pin_appliance(state: &Path, extra: &str) -> Appliance {
    fs::create_dir_all(state).unwrap();
    let config = state.join("printbridge.toml");
    fs::write(
        &config,
        format!(
            "[server]\ntls = false\n\n[dnssd]\nbackend = \"off\"\n\n[printer]\n\
             release = \"pin\"\n{extra}\n"
        ),
    )
    .unwrap();
    Appliance::start(state, &["--config", config.to_str().unwrap()])
}

fn data(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/release")
        .join(name);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A valid PDF of about `bytes` bytes: pages of up to 20 KB of text each (real content, few
/// enough pages to print quickly).
fn pdf_of_size(bytes: usize, label: &str) -> Vec<u8> {
    let per_page = bytes.clamp(400, 20_000);
    let pages = (bytes / per_page).max(1);
    let word = format!("{label} ");
    let line = word.repeat((per_page - 300) / word.len());
    let texts: Vec<String> = (0..pages).map(|i| format!("{i} {line}")).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    common::pdf_with_pages(&refs)
}

fn write_doc(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

/// ipptool `-t` on a test file of tests/data/release with `vars`, sending `doc`: the output,
/// checked to have passed every test.
fn ipptool_passes(uri: &str, test: &str, doc: &Path, vars: &[(&str, &str)]) -> String {
    let out = run_text(
        &["-t"],
        &["-f", doc.to_str().unwrap(), uri],
        &data(test),
        vars,
    );
    assert!(
        out.contains("[PASS]") && !out.contains("[FAIL]"),
        "ipptool {test} against {uri} failed:\n{out}"
    );
    out
}

/// `printbridge release -d URI JOB --pin PIN`: (success, stdout + stderr).
fn release(uri: &str, job: u32, pin: &str) -> (bool, String) {
    let out = Command::new(common::printbridge_bin())
        .args(["release", "-d", uri, &job.to_string(), "--pin", pin])
        .output()
        .expect("run printbridge release");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn assert_released(uri: &str, job: u32, pin: &str) {
    let (ok, out) = release(uri, job, pin);
    assert!(
        ok && out.contains("released"),
        "release of job {job}: {out}"
    );
}

fn assert_refused(uri: &str, job: u32, pin: &str, says: &str) {
    let (ok, out) = release(uri, job, pin);
    assert!(
        !ok && out.contains(says),
        "release of job {job} with PIN {pin:?} should be refused saying {says:?}: {out}"
    );
}

fn wait_held(uri: &str, job: u32) {
    let mut last = None;
    assert!(
        wait_until(Duration::from_secs(30), || {
            last = ipptool::job_state(uri, job);
            matches!(&last, Some((4, r)) if r.contains("job-password-wait"))
        }),
        "job {job} is not held for its PIN: {last:?}"
    );
}

/// Waits until job `job` completed and the output directory holds `n` documents.
fn wait_printed(appliance: &Appliance, job: u32, n: usize) {
    let done = ipptool::wait_job_done(&appliance.uri, job, Duration::from_secs(120));
    assert_eq!(done.map(|d| d.0), Some(9), "job {job} did not complete");
    let out = appliance.output_dir();
    assert!(
        wait_until(Duration::from_secs(30), || files_under(&out).len() == n),
        "expected {n} printed documents in {}, found {:?}",
        out.display(),
        files_under(&out)
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn ipptool_job_password_with_each_encryption_holds_until_the_pin_prints_it_once() {
    let state = tempfile::tempdir().unwrap();
    let appliance = pin_appliance(state.path(), "");
    let uri = appliance.uri.clone();
    let docs = tempfile::tempdir().unwrap();
    ipptool_passes(
        &uri,
        "offers-pin.test",
        &write_doc(docs.path(), "x.pdf", &common::one_page_pdf("x")),
        &[],
    );

    use md5::Digest as _;
    // (PIN as typed, encryption, job-password as sent, document size)
    let cases: Vec<(&str, &str, String, usize)> = vec![
        ("4821", "none", "4821".into(), 1_000),
        ("90210", "md5", hex(&md5::Md5::digest(b"90210")), 100_000),
        (
            "13572468",
            "sha2-256",
            hex(&sha2::Sha256::digest(b"13572468")),
            3_000_000,
        ),
    ];
    let mut printed = 0;
    for (pin, encryption, password, size) in &cases {
        let doc = write_doc(
            docs.path(),
            &format!("{encryption}.pdf"),
            &pdf_of_size(*size, encryption),
        );
        let out = ipptool_passes(
            &uri,
            "print-job-password.test",
            &doc,
            &[
                ("password", password),
                ("encryption", encryption),
                ("requser", "tester"),
                ("jobname", &format!("pin-{encryption}")),
            ],
        );
        let id: u32 = displayed(&out, "job-id").unwrap().parse().unwrap();
        wait_held(&uri, id);
        assert_eq!(files_under(&appliance.output_dir()).len(), printed);
        // The hash of the PIN as sent is what counts: the digest text itself is not the PIN.
        let wrong = if *encryption == "none" {
            "4812"
        } else {
            password.as_str()
        };
        assert_refused(&uri, id, wrong, "wrong PIN; 4 tries left");
        assert_eq!(ipptool::job_state(&uri, id).map(|s| s.0), Some(4));
        assert_released(&uri, id, pin);
        printed += 1;
        wait_printed(&appliance, id, printed);
        // A replayed release prints nothing twice.
        assert_refused(&uri, id, pin, "no longer waiting for release");
        assert_eq!(files_under(&appliance.output_dir()).len(), printed);
    }

    // The binary digests CUPS sends (cupsHashData) of 1234, md5 and sha2-256 (RFC 1321, FIPS
    // 180-4). Raw IPP: ipptool 2.4.2 crashes (SIGSEGV) on an octetString written as <hex>.
    let doc = write_doc(docs.path(), "b.pdf", &pdf_of_size(20_000, "binary"));
    for (encryption, digest) in [
        ("md5", md5::Md5::digest(b"1234").to_vec()),
        ("sha2-256", sha2::Sha256::digest(b"1234").to_vec()),
    ] {
        let mut req = http::print_job(appliance.port, "tester", encryption, false);
        let op = req.group_mut(tag::OPERATION);
        op.push(Attribute::new("job-password", Value::OctetString(digest)));
        op.push(Attribute::new(
            "job-password-encryption",
            Value::Keyword(encryption.into()),
        ));
        let msg = ipp_post(appliance.port, &req, &fs::read(&doc).unwrap(), &[]).ipp();
        assert_eq!(msg.code, 0, "{msg:?}");
        let id = http::job_id(&msg) as u32;
        wait_held(&uri, id);
        assert_refused(&uri, id, "1243", "wrong PIN");
        assert_released(&uri, id, "1234");
        printed += 1;
        wait_printed(&appliance, id, printed);
    }

    // Refused passwords create nothing.
    ipptool_passes(&uri, "refused-passwords.test", &doc, &[]);
    assert_eq!(files_under(&appliance.output_dir()).len(), printed);
}

#[test]
fn cups_lp_job_password_is_held_and_released_with_printbridge_release() {
    let cupsd = PrivateCupsd::start();
    PrivateCupsd::require_filter("pdftopdf", "cups-filters");
    let state = tempfile::tempdir().unwrap();
    let appliance = pin_appliance(state.path(), "");
    let ppd = cupsd
        .add_everywhere_queue("pin", &appliance.uri, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let ppd_text = fs::read_to_string(&ppd).unwrap();
    // CUPS sends job-password only to a queue whose PPD says it takes one: its IPP Everywhere
    // PPD generator writes *cupsJobPassword from job-password-supported.
    assert!(
        ppd_text.contains("*cupsJobPassword:"),
        "the generated PPD has no *cupsJobPassword (job-password-supported not seen?):\n{ppd_text}"
    );

    let docs = tempfile::tempdir().unwrap();
    let pdf = write_doc(docs.path(), "lp.pdf", &pdf_of_size(100_000, "cups"));
    let job = cupsd
        .print_file("pin", &pdf, &["-o", "job-password=1234", "-t", "cups-pin"])
        .unwrap_or_else(|e| panic!("{e}"));
    // The appliance's first job.
    let id = 1;
    let mut last = None;
    assert!(
        wait_until(Duration::from_secs(90), || {
            last = ipptool::job_state(&appliance.uri, id);
            matches!(&last, Some((4, r)) if r.contains("job-password-wait"))
        }),
        "CUPS job {job} did not arrive held for its PIN: {last:?}\n{}",
        cupsd.diagnostics()
    );
    assert!(files_under(&appliance.output_dir()).is_empty());
    assert_refused(&appliance.uri, id, "4321", "wrong PIN; 4 tries left");
    assert_refused(&appliance.uri, id, "12345", "wrong PIN; 3 tries left");
    // The PIN CUPS sent (job-password-encryption none) releases it.
    assert_released(&appliance.uri, id, "1234");
    wait_printed(&appliance, id, 1);
    cupsd
        .wait_job_completed(&job, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_refused(&appliance.uri, id, "1234", "no longer waiting for release");
    assert_eq!(files_under(&appliance.output_dir()).len(), 1);
}

#[test]
fn an_assigned_pin_is_told_to_the_owner_only_and_releases_the_job() {
    let state = tempfile::tempdir().unwrap();
    let appliance = pin_appliance(state.path(), "release_pin_length = 6");
    let port = appliance.port;
    let req = http::print_job(port, "carol", "payroll.pdf", false);
    let resp = ipp_post(port, &req, &pdf_of_size(5_000, "assigned"), &[]);
    let msg = resp.ipp();
    assert_eq!(msg.code, 0, "{msg:?}");
    let status_message = attr(&msg, tag::OPERATION, "status-message")
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .expect("status-message with the PIN")
        .to_string();
    let pin = status_message
        .strip_prefix("Release PIN ")
        .and_then(|m| m.strip_suffix(" at the printer"))
        .unwrap_or_else(|| panic!("{status_message}"))
        .to_string();
    assert!(
        pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()),
        "{pin}"
    );
    let id = http::job_id(&msg) as u32;
    let message_for = |user: &str| {
        let req = ipp_request(
            port,
            0x0009,
            user,
            vec![
                Attribute::new("job-id", Value::Integer(id as i32)),
                Attribute::new("requested-attributes", Value::Keyword("all".into())),
            ],
        );
        let m = ipp_post(port, &req, b"", &[]).ipp();
        attr(&m, tag::JOB, "job-state-message")
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    assert_eq!(
        message_for("carol").as_deref(),
        Some(status_message.as_str())
    );
    assert_eq!(
        message_for("dave"),
        None,
        "someone else must not read the PIN"
    );
    // Nor on the status page.
    let page = http::get(port, "/", &[]).text();
    assert!(!page.contains(&pin), "the status page shows the PIN");
    // Release-Job without signing in does not release a job held for its PIN.
    let rel = ipp_request(
        port,
        0x000D,
        "carol",
        vec![Attribute::new("job-id", Value::Integer(id as i32))],
    );
    assert_eq!(ipp_post(port, &rel, b"", &[]).ipp().code, 0x0403);
    assert_eq!(ipptool::job_state(&appliance.uri, id).map(|s| s.0), Some(4));
    assert_released(&appliance.uri, id, &pin);
    wait_printed(&appliance, id, 1);
    assert_eq!(message_for("carol"), None, "the PIN leaves with the hold");
}

#[test]
fn brute_force_hits_the_job_lock_then_the_client_limit_and_others_jobs_are_not_found() {
    let state = tempfile::tempdir().unwrap();
    http::add_user(state.path(), "alice", "alice-password-1", false);
    http::add_user(state.path(), "bob", "bob-password-22", false);
    let appliance = pin_appliance(state.path(), "");
    let uri = appliance.uri.clone();
    let docs = tempfile::tempdir().unwrap();
    let doc = write_doc(docs.path(), "d.pdf", &pdf_of_size(2_000, "brute"));
    let held = |pin: &str, user: &str| -> u32 {
        let out = ipptool_passes(
            &uri,
            "print-job-password.test",
            &doc,
            &[
                ("password", pin),
                ("encryption", "none"),
                ("requser", user),
                ("jobname", "brute"),
            ],
        );
        let id = displayed(&out, "job-id").unwrap().parse().unwrap();
        wait_held(&uri, id);
        id
    };
    let target = held("7391", "alice");
    for left in (0..5).rev() {
        let guess = format!("{:04}", 1000 + left);
        let says = if left == 0 {
            "0 tries left".to_string()
        } else {
            format!("{left} tries left")
        };
        assert_refused(&uri, target, &guess, &says);
    }
    // Locked for 15 minutes: even the right PIN.
    assert_refused(&uri, target, "7391", "too many wrong PINs");
    // The API says so with 429 and Retry-After.
    let resp = http::request(
        appliance.port,
        "POST",
        &format!("/api/v1/jobs/{target}/release"),
        &[("Content-Type".into(), "application/json".into())],
        br#"{"pin":"7391"}"#,
    );
    assert_eq!(resp.status, 429, "{}", resp.text());
    assert!(resp
        .header("retry-after")
        .is_some_and(|s| s.parse::<u64>().unwrap() > 800));

    // Someone else's job: signed in as bob, alice's job does not exist; as alice it releases.
    let other = held("2468", "alice");
    let as_user = |user: &str, password: &str, id: u32| {
        http::request(
            appliance.port,
            "POST",
            &format!("/api/v1/jobs/{id}/release"),
            &[
                ("Content-Type".into(), "application/json".into()),
                http::basic(user, password),
            ],
            b"{}",
        )
    };
    let bob = as_user("bob", "bob-password-22", other);
    assert_eq!(bob.status, 404, "{}", bob.text());
    let missing = as_user("bob", "bob-password-22", 9999);
    assert_eq!(
        missing.text(),
        bob.text(),
        "the same answer as no job at all"
    );
    assert_eq!(as_user("alice", "alice-password-1", other).status, 200);
    wait_printed(&appliance, other, 1);

    // The client: 5 wrong PINs so far; 15 more across other jobs (each below its own lock),
    // then every PIN from this address is refused, the right one too.
    let jobs: Vec<u32> = (0..5).map(|_| held("5555", "tester")).collect();
    let mut wrong = 5;
    'outer: for id in &jobs[..4] {
        for _ in 0..4 {
            if wrong == 20 {
                break 'outer;
            }
            assert_refused(&uri, *id, "0000", "wrong PIN");
            wrong += 1;
        }
    }
    assert_eq!(wrong, 20);
    assert_refused(&uri, jobs[4], "5555", "too many wrong PINs");
    assert_eq!(ipptool::job_state(&uri, jobs[4]).map(|s| s.0), Some(4));
    assert_eq!(files_under(&appliance.output_dir()).len(), 1);
}

#[test]
fn a_job_nobody_releases_is_deleted_unprinted_and_its_owner_sees_why() {
    let state = tempfile::tempdir().unwrap();
    let appliance = pin_appliance(state.path(), "release_expire_seconds = 3");
    let docs = tempfile::tempdir().unwrap();
    let doc = write_doc(docs.path(), "e.pdf", &pdf_of_size(50_000, "expire"));
    let out = ipptool_passes(
        &appliance.uri,
        "print-job-password.test",
        &doc,
        &[
            ("password", "8642"),
            ("encryption", "none"),
            ("requser", "tester"),
            ("jobname", "forgotten"),
        ],
    );
    let id: u32 = displayed(&out, "job-id").unwrap().parse().unwrap();
    let done = ipptool::wait_job_done(&appliance.uri, id, Duration::from_secs(60));
    assert_eq!(
        done,
        Some((7, "job-canceled-at-device".to_string())),
        "the held job was not deleted"
    );
    let attrs = ipptool::job_attributes(&appliance.uri, id, &["job-state-message"]);
    assert_eq!(
        attrs.get("job-state-message").map(String::as_str),
        Some("Not released within 3 seconds; deleted unprinted")
    );
    assert!(files_under(&appliance.output_dir()).is_empty());
    assert_refused(&appliance.uri, id, "8642", "no longer waiting for release");
}

#[test]
fn a_held_job_survives_kill_9_and_prints_once_when_released() {
    let state = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    let doc = write_doc(docs.path(), "k.pdf", &pdf_of_size(1_500_000, "kill"));
    let mut appliance = pin_appliance(state.path(), "");
    let out = ipptool_passes(
        &appliance.uri,
        "print-job-password.test",
        &doc,
        &[
            ("password", "2580"),
            ("encryption", "none"),
            ("requser", "tester"),
            ("jobname", "survivor"),
        ],
    );
    let id: u32 = displayed(&out, "job-id").unwrap().parse().unwrap();
    wait_held(&appliance.uri, id);
    assert_refused(&appliance.uri, id, "0852", "4 tries left");
    appliance.kill9();
    drop(appliance);

    let appliance = pin_appliance(state.path(), "");
    wait_held(&appliance.uri, id);
    // The wrong PIN before the crash still counts.
    assert_refused(&appliance.uri, id, "5820", "3 tries left");
    assert!(files_under(&appliance.output_dir()).is_empty());
    assert_released(&appliance.uri, id, "2580");
    wait_printed(&appliance, id, 1);
    assert_refused(&appliance.uri, id, "2580", "no longer waiting for release");
    let (ok, list) = {
        let out = Command::new(common::printbridge_bin())
            .args(["release", "--list", "-d", &appliance.uri])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert!(ok && list.contains("no jobs waiting for release"), "{list}");
}
