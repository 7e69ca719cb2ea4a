//! printbridge's own IPP behaviour checks, run by Debian's ipptool against a real
//! `printbridge serve`: tests/ipp/appliance.test without credentials (IPP/1.0 requests,
//! unsupported operation attributes, the AirPrint/Mopria/Windows attributes, job privacy,
//! hold/release by the owner, multi-document jobs, ippget notifications), then
//! tests/ipp/appliance-admin.test as an administrator added with `printbridge user add --admin`
//! (hold-new-jobs, pause/resume queueing, Set-Printer-Attributes), with the credentials in the URI
//! so that ipptool answers the appliance's Basic challenge as any CUPS client would.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

const ADMIN_PASSWORD: &str = "ipptool-admin-pw";

#[test]
fn appliance_behaviour_under_ipptool() {
    let state = tempfile::tempdir().unwrap();
    let mut add = Command::new(env!("CARGO_BIN_EXE_printbridge"))
        .args(["user", "add", "admin", "--admin", "--state-dir"])
        .arg(state.path())
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn printbridge user add");
    writeln!(add.stdin.take().unwrap(), "{ADMIN_PASSWORD}").unwrap();
    assert!(add.wait().unwrap().success(), "printbridge user add failed");

    let appliance = common::Appliance::start(state.path(), &[]);
    let suite = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ipp/appliance.test");
    let run = common::ipptool::run(&[&appliance.uri, suite]);
    assert!(
        run.failed == 0 && run.passed >= 16,
        "ipptool (no credentials): {} passed, {} failed\n{}",
        run.passed,
        run.failed,
        run.output
    );

    let admin_uri = appliance
        .uri
        .replacen("ipp://", &format!("ipp://admin:{ADMIN_PASSWORD}@"), 1);
    let suite = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/ipp/appliance-admin.test"
    );
    let run = common::ipptool::run(&[&admin_uri, suite]);
    assert!(
        run.failed == 0 && run.passed >= 15,
        "ipptool (administrator): {} passed, {} failed\n{}",
        run.passed,
        run.failed,
        run.output
    );
}
