//! printbridge's own IPP behaviour checks (tests/ipp/appliance.test), run by Debian's ipptool
//! against a real `printbridge serve`: IPP/1.0 requests, unsupported operation attributes, the
//! AirPrint/Mopria/Windows attributes, job privacy, hold/release, pause/resume queueing,
//! multi-document jobs and ippget notifications.

mod common;

#[test]
fn appliance_behaviour_under_ipptool() {
    let state = tempfile::tempdir().unwrap();
    let appliance = common::Appliance::start(state.path(), &[]);
    let suite = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ipp/appliance.test");
    let run = common::ipptool::run(&[&appliance.uri, suite]);
    assert!(
        run.failed == 0 && run.passed >= 20,
        "ipptool: {} passed, {} failed\n{}",
        run.passed,
        run.failed,
        run.output
    );
}
