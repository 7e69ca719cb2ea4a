//! The device control channel against a real `printbridge cloud`: a registered device holds a long
//! poll, an administrator queues instructions from another process (`cloud admin instruct`, which
//! shares only the database with the server), the held poll hands them over, and the device
//! acknowledges each exactly once.

mod common;

use common::cloud::{
    bootstrap_acme, cloud_cmd, device_info, register_device, sign_in, start_cloud, write_config,
    Http, Resp,
};
use serde_json::{json, Value};

const ADMIN: &str = "ann@example.com";
const ADMIN_PASSWORD: &str = "correct horse battery staple";
const BOB: &str = "bob@example.com";

fn poll(base: &str, token: &str, wait: u64) -> Resp {
    let auth = format!("Bearer {token}");
    Http::new(base).send(
        "GET",
        &format!("/api/v1/control?wait={wait}"),
        &[("Authorization", auth.as_str())],
        None,
        b"",
    )
}

fn ack(base: &str, token: &str, id: &str, body: &str) -> Resp {
    let auth = format!("Bearer {token}");
    Http::new(base).send(
        "POST",
        &format!("/api/v1/control/{id}/ack"),
        &[("Authorization", auth.as_str())],
        Some("application/json"),
        body.as_bytes(),
    )
}

/// `printbridge cloud admin instruct ...`: (success, stdout + stderr).
fn instruct(data: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = cloud_cmd(data, None, None)
        .args(["admin", "instruct"])
        .args(args)
        .output()
        .expect("run cloud admin instruct");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn register(base: &str, browser: &mut Http, uuid: &str) -> (String, String) {
    let token = register_device(base, browser, uuid, BOB);
    let id = device_info(&mut Http::new(base), &token)["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    (token, id)
}

#[test]
fn instructions_reach_a_held_poll_and_are_acknowledged_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    bootstrap_acme(&data, ADMIN, ADMIN_PASSWORD, BOB, "bob's long password");
    let config = write_config(dir.path(), "[device_authorization]\ninterval_seconds = 1\n");
    let cloud = start_cloud(&data, None, Some(&config));
    let base = cloud.base.clone();
    let mut browser = Http::new(&base);
    sign_in(&mut browser, ADMIN, ADMIN_PASSWORD);
    let (token, device_id) = register(
        &base,
        &mut browser,
        "urn:uuid:11111111-2222-4333-8444-555555555555",
    );
    let (other_token, _) = register(
        &base,
        &mut browser,
        "urn:uuid:11111111-2222-4333-8444-555555555556",
    );

    // Nothing queued: an immediate poll is empty; no token is 401; a bad wait is 400.
    let r = poll(&base, &token, 0);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"instructions": []}));
    let r = Http::new(&base).get("/api/v1/control?wait=0");
    assert_eq!(r.status, 401);
    assert_eq!(poll(&base, &token, 0).status, 200);
    let auth = format!("Bearer {token}");
    let r = Http::new(&base).send(
        "GET",
        "/api/v1/control?wait=soon",
        &[("Authorization", auth.as_str())],
        None,
        b"",
    );
    assert_eq!(r.status, 400);

    // A poll held open gets the instruction queued meanwhile by another process.
    let held = {
        let base = base.clone();
        let token = token.clone();
        std::thread::spawn(move || poll(&base, &token, 50))
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (ok, out) = instruct(
        &data,
        &[&device_id, "identify", "--payload", r#"{"seconds": 5}"#],
    );
    assert!(ok, "{out}");
    assert!(out.contains("queued identify #1"), "{out}");
    let r = held.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let got: Value = r.json();
    let list = got["instructions"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{got}");
    assert_eq!(list[0]["kind"], "identify");
    assert_eq!(list[0]["seq"], 1);
    assert_eq!(list[0]["payload"], json!({"seconds": 5}));
    let first = list[0]["id"].as_str().unwrap().to_string();

    // A second one; both are open until acknowledged, in order.
    let (ok, out) = instruct(&data, &[&device_id, "sign-out"]);
    assert!(ok, "{out}");
    let open: Value = poll(&base, &token, 0).json();
    let kinds: Vec<&str> = open["instructions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["identify", "sign-out"]);

    // Acknowledgements: bad status 400, another device 404, once 200, twice 409.
    assert_eq!(
        ack(&base, &token, &first, r#"{"status": "maybe"}"#).status,
        400
    );
    assert_eq!(ack(&base, &token, &first, "not json").status, 400);
    assert_eq!(
        ack(&base, &other_token, &first, r#"{"status": "done"}"#).status,
        404
    );
    let r = ack(
        &base,
        &token,
        &first,
        r#"{"status": "done", "message": "blinked"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        ack(&base, &token, &first, r#"{"status": "done"}"#).status,
        409
    );
    let open: Value = poll(&base, &token, 0).json();
    assert_eq!(open["instructions"].as_array().unwrap().len(), 1);
    assert_eq!(open["instructions"][0]["kind"], "sign-out");
    // The other device never sees this device's instructions.
    assert_eq!(
        poll(&base, &other_token, 0).json(),
        json!({"instructions": []})
    );

    // The command refuses unknown kinds, non-object payloads and unknown devices.
    let (ok, out) = instruct(&data, &[&device_id, "reboot"]);
    assert!(!ok && out.contains("unknown instruction"), "{out}");
    let (ok, out) = instruct(&data, &[&device_id, "identify", "--payload", "[1]"]);
    assert!(!ok && out.contains("JSON object"), "{out}");
    let (ok, out) = instruct(&data, &["no-such-device", "identify"]);
    assert!(!ok && out.contains("no such device"), "{out}");
}
