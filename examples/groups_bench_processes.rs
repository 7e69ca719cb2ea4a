//! Group sign-in/sign-out at scale with real processes (a command, not a test; issue 14
//! "Benchmark"; the project's one groups benchmark, docs/benchmarks.md):
//! one `printbridge cloud` and N printers (1,000 by default) in one account's group, each behind
//! its own simulated appliance in this process — its own device (registered through RFC 8628 and
//! approved by the administrator), its own printer in the registry, its own control channel
//! (`GET /api/v1/control?wait=30` held with its device token). A simulated appliance obeys as the
//! real one does: a `sign-out` instruction becomes `POST /api/v1/printers/{id}/sign-out`, a
//! `sign-in` becomes `POST /api/v1/printers/{id}/sign-in` with the instruction's credential, then
//! the instruction is acknowledged `done` (a `power-save` is acknowledged at once).
//!
//! Measured: from the logout request (`DELETE /api/v1/session`) to the last sign-out instruction
//! delivered and acknowledged (and the last power-save), and from the login request
//! (`POST /api/v1/session`, its password check included) to the last sign-in acknowledged; on
//! SQLite and on a private PostgreSQL (Debian's postgresql). Goal: under 1 s each.
//!
//! ```text
//! cargo build --release && cargo run --release --example groups_bench_processes -- \
//!     [--printers 1000] [--only sqlite|postgresql]
//! ```
//! The binary measured is `PRINTBRIDGE_BIN`, else `target/release/printbridge`.

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cloud::{bootstrap_org, register_device, register_printer, sign_in, Http};
use common::postgres::Postgres;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: (&str, &str) = ("bench-admin@example.com", "bench admin's password");
const ACCOUNT: (&str, &str) = ("bench-account@example.com", "bench account's password");

struct Args {
    printers: usize,
    sqlite: bool,
    postgresql: bool,
}

fn args() -> Args {
    let mut a = Args {
        printers: 1000,
        sqlite: true,
        postgresql: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--printers" => a.printers = v().parse().expect("--printers N"),
            "--only" => match v().as_str() {
                "sqlite" => a.postgresql = false,
                "postgresql" => a.sqlite = false,
                o => panic!("--only sqlite|postgresql, not {o}"),
            },
            _ => panic!("usage: groups_bench_processes [--printers N] [--only sqlite|postgresql]"),
        }
    }
    a
}

/// One HTTP/1.1 request on its own connection: (status, body).
async fn http(
    addr: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> (u16, Vec<u8>) {
    let text = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        text.len()
    );
    if body.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = bearer {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(&text);
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let r = common::http::parse_response(&raw);
    (r.status, r.body)
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// What the simulated appliances acknowledged: (kind, when).
type Acks = Arc<Mutex<Vec<(String, Instant)>>>;

/// A simulated appliance: holds its control channel and obeys until `stop`.
async fn appliance(addr: String, token: String, acks: Acks, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let (status, body) =
            http(&addr, "GET", "/api/v1/control?wait=30", Some(&token), None).await;
        if status != 200 {
            eprintln!("control poll: {status} {}", String::from_utf8_lossy(&body));
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let v = json_of(&body);
        for i in v["instructions"].as_array().cloned().unwrap_or_default() {
            let kind = i["kind"].as_str().unwrap_or_default().to_string();
            let p = &i["payload"];
            let printer = p["printer"].as_str().unwrap_or_default();
            let (ack, message) = match kind.as_str() {
                "sign-out" | "sign-in" => {
                    let mut call = json!({"account": p["account"]});
                    if kind == "sign-in" {
                        call["credential"] = p["credential"].clone();
                    } else {
                        // As the appliance does: the sign-out names the instruction.
                        call["instruction"] = i["id"].clone();
                    }
                    let (s, b) = http(
                        &addr,
                        "POST",
                        &format!("/api/v1/printers/{printer}/{kind}"),
                        Some(&token),
                        Some(&call),
                    )
                    .await;
                    if s == 200 {
                        ("done", String::new())
                    } else {
                        ("failed", format!("{s} {}", String::from_utf8_lossy(&b)))
                    }
                }
                _ => ("done", String::new()),
            };
            let id = i["id"].as_str().unwrap_or_default();
            let (s, b) = http(
                &addr,
                "POST",
                &format!("/api/v1/control/{id}/ack"),
                Some(&token),
                Some(&json!({"status": ack, "message": message})),
            )
            .await;
            assert!(
                s == 200 || s == 204,
                "ack: {s} {}",
                String::from_utf8_lossy(&b)
            );
            if ack != "done" {
                eprintln!("{kind} failed: {message}");
            }
            acks.lock().unwrap().push((kind, Instant::now()));
        }
    }
}

/// Waits until `n` acknowledgements of `kind` arrived after `since`: the last one's instant.
async fn last_ack(acks: &Acks, kind: &str, n: usize, since: Instant) -> Option<Instant> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (count, last) = {
            let a = acks.lock().unwrap();
            let mine: Vec<Instant> = a
                .iter()
                .filter(|(k, t)| k == kind && *t >= since)
                .map(|(_, t)| *t)
                .collect();
            (mine.len(), mine.into_iter().max())
        };
        if count >= n {
            return last;
        }
        if Instant::now() > deadline {
            eprintln!("only {count} of {n} {kind} acknowledged within 300 s");
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// One backend's figures: logout → last sign-out acknowledged, logout → last power-save
/// acknowledged, login → last sign-in acknowledged (`None`: not all arrived).
type Figures = (Option<Duration>, Option<Duration>, Option<Duration>);

async fn run(backend: &str, database: Option<String>, n: usize) -> Figures {
    let dir = tempfile::Builder::new()
        .prefix("pb-groups-bench-")
        .tempdir()
        .unwrap();
    let data = dir.path().join("data");
    bootstrap_org(&data, database.as_deref(), ADMIN, &[ACCOUNT]);
    let config = common::cloud::write_config(
        dir.path(),
        &format!(
            "[server]\nmax_connections = {}\n\n[device_authorization]\ninterval_seconds = 1\n\n\
             [limits]\ndevice_requests_per_client = 1000000\n",
            n * 3 + 256
        ),
    );
    let cloud = common::cloud::start_cloud(&data, database.as_deref(), Some(&config));
    let addr = cloud.base.trim_start_matches("http://").to_string();

    // N devices (RFC 8628, approved by the administrator), a printer each, the group's records.
    let setup = Instant::now();
    let base = cloud.base.clone();
    let mut admin = Http::new(&base);
    sign_in(&mut admin, ADMIN.0, ADMIN.1);
    let mut devices = Vec::with_capacity(n);
    for i in 0..n {
        let token = register_device(
            &base,
            &mut admin,
            &format!("urn:uuid:00000000-0000-4000-8000-{i:012}"),
            ACCOUNT.0,
        );
        let (printer, _) = register_printer(
            &base,
            &token,
            &format!("urn:uuid:00000000-0000-4000-9000-{i:012}"),
        );
        devices.push((token, printer));
    }
    // The records, written by the administrator through the JSON API (a session of its own).
    let r = Http::new(&base).send(
        "POST",
        "/api/v1/session",
        &[],
        Some("application/json"),
        json!({"email": ADMIN.0, "password": ADMIN.1})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 200, "administrator's login: {}", r.body);
    let admin_auth = format!("Bearer {}", r.json()["token"].as_str().unwrap());
    for (i, (_, printer)) in devices.iter().enumerate() {
        let r = Http::new(&base).send(
            "POST",
            "/api/v1/admin/groups",
            &[("Authorization", admin_auth.as_str())],
            Some("application/json"),
            json!({"account": ACCOUNT.0, "printer": printer,
                   "address": format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
                   "status": "IN", "established_at": 1_000_000_000, "self_disconnection": false})
            .to_string()
            .as_bytes(),
        );
        assert!(
            r.status == 200 || r.status == 201,
            "admin add: {} {}",
            r.status,
            r.body
        );
    }
    eprintln!(
        "[{backend}] {n} devices, printers and group records set up in {:.1?}",
        setup.elapsed()
    );

    let acks: Acks = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = devices
        .iter()
        .map(|(token, _)| {
            tokio::spawn(appliance(
                addr.clone(),
                token.clone(),
                acks.clone(),
                stop.clone(),
            ))
        })
        .collect();

    // A session with the settings the measurement needs: every printer signs out (exclusion
    // off: the records were just signed in), no restore during the run.
    let (s, b) = http(
        &addr,
        "POST",
        "/api/v1/session",
        None,
        Some(&json!({"email": ACCOUNT.0, "password": ACCOUNT.1})),
    )
    .await;
    assert_eq!(s, 200, "login: {}", String::from_utf8_lossy(&b));
    let token = json_of(&b)["token"].as_str().unwrap().to_string();
    let (s, b) = http(
        &addr,
        "PUT",
        "/api/v1/groups/settings",
        Some(&token),
        Some(
            &json!({"sign_in": true, "sign_out": true, "exclusion": false,
                     "wait_seconds": 3600}),
        ),
    )
    .await;
    assert_eq!(s, 200, "settings: {}", String::from_utf8_lossy(&b));
    // Every poll is held before the clock starts (the first login's sign-ins, if any, done).
    tokio::time::sleep(Duration::from_secs(5)).await;

    let t0 = Instant::now();
    let t0_logout = t0;
    let (s, b) = http(&addr, "DELETE", "/api/v1/session", Some(&token), None).await;
    let answered = t0.elapsed();
    assert_eq!(s, 200, "logout: {}", String::from_utf8_lossy(&b));
    let out = last_ack(&acks, "sign-out", n, t0).await;
    let save = last_ack(&acks, "power-save", n, t0).await;
    println!(
        "[{backend}] logout of a group of {n}: answered in {answered:.1?}; last sign-out \
         acknowledged after {}; last power-save after {}",
        show(out.map(|t| t - t0)),
        show(save.map(|t| t - t0))
    );

    tokio::time::sleep(Duration::from_secs(2)).await;
    let t0 = Instant::now();
    let (s, b) = http(
        &addr,
        "POST",
        "/api/v1/session",
        None,
        Some(&json!({"email": ACCOUNT.0, "password": ACCOUNT.1})),
    )
    .await;
    let answered = t0.elapsed();
    assert_eq!(s, 200, "login: {}", String::from_utf8_lossy(&b));
    let signed_in = last_ack(&acks, "sign-in", n, t0).await;
    println!(
        "[{backend}] login of a group of {n}: answered in {answered:.1?}; last sign-in \
         acknowledged after {}",
        show(signed_in.map(|t| t - t0))
    );

    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.abort();
    }
    drop(cloud);
    (
        out.map(|t| t - t0_logout),
        save.map(|t| t - t0_logout),
        signed_in.map(|t| t - t0),
    )
}

fn show(d: Option<Duration>) -> String {
    d.map_or("(not all)".to_string(), |d| format!("{d:.1?}"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    // Every held poll is a socket here and in the server.
    let want = (a.printers as u64) * 3 + 1024;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on this process with a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = want.min(lim.rlim_max);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    let mut results = Vec::new();
    if a.sqlite {
        results.push(("SQLite", run("SQLite", None, a.printers).await));
    }
    if a.postgresql {
        let pg = Postgres::start_with("-c max_connections=200");
        let url = pg.create_db("groups_bench");
        results.push(("PostgreSQL", run("PostgreSQL", Some(url), a.printers).await));
        drop(pg);
    }
    // The issue's goal: logout → last sign-out acknowledged, login → last sign-in
    // acknowledged, each under 1 s.
    let goal = Duration::from_secs(1);
    let verdict = |d: Option<Duration>| match d {
        Some(d) if d < goal => "met",
        _ => "NOT met",
    };
    println!(
        "\n{} printers | logout → last sign-out | (last power-save) | login → last sign-in",
        a.printers
    );
    for (backend, (out, save, signed_in)) in results {
        println!(
            "{backend:<10} | {} (goal < 1 s {}) | ({}) | {} (goal < 1 s {})",
            show(out),
            verdict(out),
            show(save),
            show(signed_in),
            verdict(signed_in)
        );
    }
}
