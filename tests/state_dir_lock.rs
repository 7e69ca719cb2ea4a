//! One appliance per state directory (issue 11): a second `printbridge serve` on a state
//! directory in use is refused with a message naming the running one, which keeps serving; once
//! that one is killed with SIGKILL (no clean shutdown, no chance to remove anything), a new one
//! starts on the same directory and has the same jobs. Checked with real processes and ipptool.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ipptool, Appliance};

/// Prints a one-page PDF on `app` and returns the job id once it is completed.
fn print_one(app: &Appliance, dir: &std::path::Path) -> u32 {
    let pdf = dir.join("page.pdf");
    std::fs::write(&pdf, common::one_page_pdf("state directory lock")).unwrap();
    let id = ipptool::print_job(&app.uri, &pdf, "application/pdf", "state directory lock");
    let done = ipptool::wait_job_done(&app.uri, id, Duration::from_secs(60));
    assert_eq!(
        done.as_ref().map(|d| d.0),
        Some(9),
        "job {id} on {} did not complete: {done:?}",
        app.uri
    );
    id
}

/// The job-state `app` reports for job `id` (3 pending ... 9 completed).
fn job_state(app: &Appliance, id: u32) -> i32 {
    ipptool::job_state(&app.uri, id)
        .unwrap_or_else(|| panic!("Get-Job-Attributes {id} on {} failed", app.uri))
        .0
}

#[test]
fn a_second_appliance_on_a_state_directory_in_use_is_refused_until_the_first_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mut first = Appliance::start(&state, &[]);
    let job = print_one(&first, tmp.path());

    // The second one, on another port but the same directory: refused, naming the first.
    let mut second = Command::new(env!("CARGO_BIN_EXE_printbridge"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--state-dir"])
        .arg(&state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the second printbridge serve");
    let mut stderr = second.stderr.take().unwrap();
    let mut stdout = second.stdout.take().unwrap();
    let readers = (
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        }),
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        }),
    );
    // Generous: a refusal takes milliseconds; this only keeps a broken build from hanging CI.
    let start = Instant::now();
    let status = loop {
        if let Some(s) = second.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = second.kill();
            let _ = second.wait();
            panic!(
                "the second appliance on {} was not refused: it kept running",
                state.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (err, out) = (readers.0.join().unwrap(), readers.1.join().unwrap());
    assert!(
        !status.success(),
        "the second appliance exited with {status}:\n{err}"
    );
    let pid = first.child.id();
    assert!(
        err.contains(&format!("process {pid}")) && err.contains(&state.display().to_string()),
        "the refusal does not name process {pid} and {}:\n{err}",
        state.display()
    );
    assert!(
        !out.contains("ready at"),
        "the second appliance said it was ready:\n{out}"
    );

    // The first keeps serving: its job is still there and a new one prints.
    assert_eq!(job_state(&first, job), 9, "job {job} is completed");
    let second_job = print_one(&first, tmp.path());

    // kill -9 leaves the lock file behind but not the lock: a new appliance starts there and
    // has the first one's jobs.
    first.kill9();
    let third = Appliance::start(&state, &[]);
    assert_eq!(job_state(&third, job), 9, "job {job} is completed");
    assert_eq!(
        job_state(&third, second_job),
        9,
        "job {second_job} is completed"
    );
    assert_eq!(
        std::fs::read_to_string(state.join("printbridge.lock")).unwrap(),
        format!("{}\n", third.child.id()),
        "the lock file names the appliance that holds it"
    );
}
