//! The appliance's side of group sign-in and sign-out (docs/groups.md "Appliance side") against
//! real processes: a `printbridge cloud` (mailing its administrator through Debian's aiosmtpd),
//! an appliance B registered for real through its registration agent, whose shared queue prints
//! on Debian's ippeveprinter. Instructions are queued by another process (`printbridge cloud
//! admin instruct`) or by the cloud itself (a PC's login and logout); what the appliance did is
//! read from the cloud's database (acknowledgements, the group table), B's pages, B's IPP
//! answers and ippeveprinter's kept files.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::cloud::{bootstrap_acme, cloud_cmd, start_cloud_on, write_config, CloudProc, Http};
use common::ippeveprinter::EvePrinter;
use common::smtp::Smtp;
use common::{wait_until, Appliance};
use printbridge::codec::ipp::{tag, Attribute, Message, Value};
use serde_json::{json, Value as Json};

const ADMIN: &str = "ann@example.com";
const ADMIN_PASSWORD: &str = "correct horse battery staple";
const USER: &str = "bob@example.com";
const USER_PASSWORD: &str = "another long password";
/// B's local administrator (the panel's API and page).
const B_ADMIN: &str = "boss";
const B_ADMIN_PASSWORD: &str = "the appliance's own password";

struct Setup {
    smtp: Smtp,
    cloud: CloudProc,
    cloud_port: u16,
    cloud_data: PathBuf,
    eve: EvePrinter,
    b: Appliance,
    printer: String,
    device: String,
}

/// Everything up and B registered for BOB; B's queue (`default`) is cloud printer `printer`.
fn setup(dir: &Path) -> Setup {
    let smtp = Smtp::start(dir);
    let cloud_data = dir.join("cloud-data");
    let cloud_dir = dir.join("cloud-conf");
    std::fs::create_dir_all(&cloud_dir).unwrap();
    let cloud_config = write_config(
        &cloud_dir,
        &format!(
            "[device_authorization]\ninterval_seconds = 1\n\n{}\n",
            smtp.mail_config()
        ),
    );
    bootstrap_acme(&cloud_data, ADMIN, ADMIN_PASSWORD, USER, USER_PASSWORD);
    let cloud_port = common::free_port();
    let cloud = start_cloud_on(
        &cloud_data,
        None,
        Some(&cloud_config),
        &format!("127.0.0.1:{cloud_port}"),
        &[],
    );
    let eve = EvePrinter::start("pbgroups", "application/pdf", &[]);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    // B's administrator, for the panel.
    let mut add = Command::new(common::printbridge_bin())
        .args(["user", "add", B_ADMIN, "--admin", "--state-dir"])
        .arg(&state)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(add.stdin.take().unwrap(), "{B_ADMIN_PASSWORD}").unwrap();
    assert!(add.wait().unwrap().success());
    let config = dir.join("appliance.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ntls = false\n\n[dnssd]\nbackend = \"off\"\n\n\
             [spool]\nkeep_documents = true\n\n\
             [printer]\nname = \"Branch\"\ndevice_uri = \"{}\"\ndevice_timeout_seconds = 5\n\
             cloud_share = true\n\n\
             [cloud]\nurl = \"{}\"\nadmin_email = \"{ADMIN}\"\n",
            eve.uri(),
            cloud.base
        ),
    )
    .unwrap();
    let b = Appliance::start(&state, &["--config", config.to_str().unwrap()]);
    let printer = common::bridge::register_through_agent(
        &smtp,
        &cloud.base,
        &b,
        (ADMIN, ADMIN_PASSWORD),
        USER,
    );
    let tokens: Json =
        serde_json::from_slice(&std::fs::read(state.join("cloud/tokens.json")).unwrap()).unwrap();
    let device = common::cloud::device_info(
        &mut Http::new(&cloud.base),
        tokens["access_token"].as_str().unwrap(),
    )["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    Setup {
        smtp,
        cloud,
        cloud_port,
        cloud_data,
        eve,
        b,
        printer,
        device,
    }
}

// ---- the control channel -------------------------------------------------------------------------

/// `printbridge cloud admin instruct DEVICE KIND --payload JSON`: the instruction's id.
fn instruct(s: &Setup, kind: &str, payload: &Json) -> String {
    let out = cloud_cmd(&s.cloud_data, None, None)
        .args(["admin", "instruct", &s.device, kind, "--payload"])
        .arg(payload.to_string())
        .output()
        .expect("run cloud admin instruct");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.trim().rsplit(' ').next().unwrap().to_string()
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn cloud_store(s: &Setup) -> String {
    printbridge::store::sqlite_url(&std::path::absolute(&s.cloud_data).unwrap())
}

/// The acknowledgement (status, message) of instruction `id`, waiting for it.
fn acknowledged(s: &Setup, id: &str) -> (String, String) {
    let url = cloud_store(s);
    let mut got = None;
    let found = wait_until(Duration::from_secs(90), || {
        got = block_on(async {
            let store = printbridge::store::Store::open(&url).await.unwrap();
            let i = store.instruction(id).await.unwrap().expect("instruction");
            store.close().await;
            Some((i.ack_status?, i.ack_message.unwrap_or_default()))
        });
        got.is_some()
    });
    assert!(found, "instruction {id} was not acknowledged within 90 s");
    got.unwrap()
}

/// The group table's record (status, printer_address) of (BOB, the printer), if any.
fn record(s: &Setup) -> Option<(String, String)> {
    let url = cloud_store(s);
    let printer = s.printer.clone();
    block_on(async move {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT status, printer_address FROM printer_groups \
             WHERE account = ? AND printer_id = ?",
        )
        .bind(USER)
        .bind(&printer)
        .fetch_optional(&pool)
        .await
        .unwrap();
        pool.close().await;
        row.map(|(st, a)| (st, a.unwrap_or_default()))
    })
}

fn wait_record(s: &Setup, want: Option<&str>, what: &str) {
    let mut last = None;
    assert!(
        wait_until(Duration::from_secs(90), || {
            last = record(s);
            last.as_ref().map(|r| r.0.as_str()) == want
        }),
        "{what}: the record of {USER} on {} is {last:?}, not {want:?}",
        s.printer
    );
}

// ---- B -------------------------------------------------------------------------------------------

fn b_admin_header() -> (String, String) {
    common::http::basic(B_ADMIN, B_ADMIN_PASSWORD)
}

fn b_get(s: &Setup, path: &str) -> common::http::Resp {
    common::http::request(s.b.port, "GET", path, &[b_admin_header()], b"")
}

fn b_post_json(s: &Setup, path: &str, body: &Json) -> common::http::Resp {
    common::http::request(
        s.b.port,
        "POST",
        path,
        &[
            b_admin_header(),
            ("Content-Type".into(), "application/json".into()),
        ],
        body.to_string().as_bytes(),
    )
}

/// B's own printer-state-message (Get-Printer-Attributes, anonymous).
fn b_state_message(s: &Setup) -> String {
    let req = common::http::ipp_request(
        s.b.port,
        0x000B,
        "anyone",
        vec![Attribute::new(
            "requested-attributes",
            Value::Keyword("printer-state-message".into()),
        )],
    );
    let resp = common::http::ipp_post(s.b.port, &req, b"", &[]).ipp();
    common::bridge::attr_str(&resp, tag::PRINTER, "printer-state-message").unwrap_or_default()
}

fn b_power_saving(s: &Setup) -> bool {
    b_state_message(s).contains("Power saving")
}

/// `printbridge signin|signout default -u BOB` through B's API; stdin carries BOB's password.
fn panel_cli(s: &Setup, what: &str, password: &str) -> (bool, String) {
    let mut child = Command::new(common::printbridge_bin())
        .args([what, "default", "-u", USER, "-U", B_ADMIN, "-d"])
        .arg(format!("http://127.0.0.1:{}", s.b.port))
        .env("PRINTBRIDGE_PASSWORD", B_ADMIN_PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

// ---- the cloud as BOB ----------------------------------------------------------------------------

fn cloud_ipp(s: &Setup, op: u16, extra: Vec<Attribute>, doc: &[u8]) -> Message {
    let mut m = Message::new((2, 0), op, 1);
    let g = m.group_mut(tag::OPERATION);
    g.push(Attribute::new(
        "attributes-charset",
        Value::Charset("utf-8".into()),
    ));
    g.push(Attribute::new(
        "attributes-natural-language",
        Value::NaturalLanguage("en".into()),
    ));
    g.push(Attribute::new(
        "printer-uri",
        Value::Uri(format!(
            "ipp://127.0.0.1:{}/ipp/print/{}",
            s.cloud_port, s.printer
        )),
    ));
    g.push(Attribute::new(
        "requesting-user-name",
        Value::Name(USER.into()),
    ));
    for a in extra {
        g.push(a);
    }
    let mut body = Vec::new();
    printbridge::codec::ipp::encode_message(&m, &mut body);
    body.extend_from_slice(doc);
    let r = common::http::request(
        s.cloud_port,
        "POST",
        &format!("/ipp/print/{}", s.printer),
        &[
            common::http::basic(USER, USER_PASSWORD),
            ("Content-Type".into(), "application/ipp".into()),
        ],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.ipp()
}

/// Print-Job of a one-page PDF saying `text` to the cloud printer as BOB: the cloud job id.
fn cloud_print(s: &Setup, text: &str) -> i32 {
    let r = cloud_ipp(
        s,
        0x0002,
        vec![Attribute::new(
            "document-format",
            Value::MimeMediaType("application/pdf".into()),
        )],
        &common::one_page_pdf(text),
    );
    assert_eq!(r.code, 0, "Print-Job: {r:?}");
    common::http::attr(&r, tag::JOB, "job-id")
        .and_then(|a| a.first())
        .and_then(Value::as_int)
        .expect("job-id")
}

fn cloud_job_state(s: &Setup, job: i32) -> i32 {
    let r = cloud_ipp(
        s,
        0x0009,
        vec![Attribute::new("job-id", Value::Integer(job))],
        b"",
    );
    common::http::attr(&r, tag::JOB, "job-state")
        .and_then(|a| a.first())
        .and_then(Value::as_int)
        .unwrap_or(0)
}

/// ippeveprinter's kept PDFs that carry `text`.
fn printed(s: &Setup, text: &str) -> usize {
    let pdftotext = common::require_program("pdftotext", "poppler-utils");
    s.eve
        .spooled()
        .iter()
        .filter(|f| {
            let out = Command::new(&pdftotext).arg(f).arg("-").output().unwrap();
            String::from_utf8_lossy(&out.stdout).contains(text)
        })
        .count()
}

/// A job that stays unfetched: still pending in the cloud and not printed for `watch`, sampled
/// (an absence can only be watched for a while; the Proxy's polling interval is 2 s here).
fn stays_unfetched(s: &Setup, job: i32, text: &str, watch: Duration) {
    let end = std::time::Instant::now() + watch;
    while std::time::Instant::now() < end {
        assert_eq!(cloud_job_state(s, job), 3, "cloud job {job} was taken");
        assert_eq!(printed(s, text), 0, "{text} was printed");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn wait_printed(s: &Setup, text: &str, job: i32) {
    assert!(
        wait_until(Duration::from_secs(120), || printed(s, text) == 1),
        "{text} was not printed; ippeveprinter:\n{}",
        s.eve.log()
    );
    assert!(
        wait_until(Duration::from_secs(60), || cloud_job_state(s, job) == 9),
        "cloud job {job} did not complete"
    );
}

/// Print-Job to B itself (a local job), as `user`.
fn local_print(s: &Setup, user: &str, text: &str) {
    let req = common::http::ipp_request(
        s.b.port,
        0x0002,
        user,
        vec![Attribute::new(
            "document-format",
            Value::MimeMediaType("application/pdf".into()),
        )],
    );
    let r = common::http::ipp_post(s.b.port, &req, &common::one_page_pdf(text), &[]).ipp();
    assert_eq!(r.code, 0, "local Print-Job: {r:?}");
}

// ---- tests ---------------------------------------------------------------------------------------

/// Instructions queued by an administrator: one for another printer is rejected and changes
/// nothing; apply-settings applies the polling interval and the time-out and names the rest
/// unsupported; power-save stops the fetching (a cloud job waits, B's printer-state-message and
/// pages say so, also after B restarts) until a local job wakes the queue, and again until the
/// next instruction for it;
/// a sign-in with a forged credential fails with the cloud's refusal. Then the panel: sign-in with
/// the account's password makes the record IN (with B's address), a wrong password changes
/// nothing, a panel sign-out deletes the record, and a second one is refused. Last, a pushed
/// power-saving delay puts the idle queue to sleep by itself, and a local job wakes it.
#[test]
fn instructions_and_the_panel() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = setup(dir.path());

    // For a printer that is not B's: rejected, nothing changes.
    let id = instruct(&s, "power-save", &json!({"printer": "not-one-of-b"}));
    let (status, message) = acknowledged(&s, &id);
    assert_eq!(status, "rejected", "{message}");
    assert!(
        message.contains("not one of this appliance's queues"),
        "{message}"
    );
    assert!(!b_power_saving(&s));

    // apply-settings: what B supports is applied, the rest reported.
    let id = instruct(
        &s,
        "apply-settings",
        &json!({"printer": s.printer, "settings": {"job_polling_interval_seconds": 2,
            "timeout_seconds": 45, "language": "fr", "panel_contrast": 3,
            "receive_buffer_size": 4096}}),
    );
    let (status, message) = acknowledged(&s, &id);
    assert_eq!(status, "done", "{message}");
    let m: Json = serde_json::from_str(&message).expect("the ack message is JSON");
    let mut applied: Vec<&str> = m["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    applied.sort();
    assert_eq!(applied, ["job_polling_interval_seconds", "timeout_seconds"]);
    let mut unsupported: Vec<&str> = m["unsupported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    unsupported.sort();
    assert_eq!(
        unsupported,
        ["language", "panel_contrast", "receive_buffer_size"]
    );
    let queues = b_get(&s, "/api/v1/queues");
    assert_eq!(queues.status, 200, "{}", queues.text());
    let q: Json = serde_json::from_slice(&queues.body).unwrap();
    assert_eq!(q["queues"][0]["queue"], "default", "{q}");
    assert_eq!(q["queues"][0]["cloud_printer"], s.printer.as_str());
    assert_eq!(
        q["queues"][0]["settings"]["job_polling_interval_seconds"],
        2
    );
    assert_eq!(q["queues"][0]["settings"]["timeout_seconds"], 45);

    // power-save: no fetching until a local job wakes the queue.
    let id = instruct(&s, "power-save", &json!({"printer": s.printer}));
    let (status, message) = acknowledged(&s, &id);
    assert_eq!(status, "done", "{message}");
    assert!(b_power_saving(&s), "{}", b_state_message(&s));
    let page = common::http::get(s.b.port, "/", &[]);
    assert!(
        page.text().contains("id=\"power-saving\""),
        "{}",
        page.text()
    );
    let status_cli = Command::new(common::printbridge_bin())
        .args(["status", "-d"])
        .arg(&s.b.uri)
        .output()
        .unwrap();
    let status_text = String::from_utf8_lossy(&status_cli.stdout).to_string();
    assert!(status_text.contains("Power saving"), "{status_text}");
    // Kept across a restart: B comes back asleep (before its Proxy asks for jobs).
    assert!(
        common::appliance::sigterm_and_wait(&mut s.b, Duration::from_secs(60)),
        "B did not stop on SIGTERM"
    );
    let config = dir.path().join("appliance.toml");
    s.b = Appliance::start(
        &dir.path().join("state"),
        &["--config", config.to_str().unwrap()],
    );
    assert!(
        common::wait_until(Duration::from_secs(30), || b_power_saving(&s)),
        "B woke up on its restart: {}",
        b_state_message(&s)
    );
    let job = cloud_print(&s, "while power saving one");
    stays_unfetched(&s, job, "while power saving one", Duration::from_secs(8));
    local_print(&s, "carol", "a local job wakes it");
    wait_printed(&s, "while power saving one", job);
    assert!(!b_power_saving(&s));

    // Again, woken by the next instruction for the queue (empty settings).
    let id = instruct(&s, "power-save", &json!({"printer": s.printer}));
    assert_eq!(acknowledged(&s, &id).0, "done");
    let job = cloud_print(&s, "while power saving two");
    stays_unfetched(&s, job, "while power saving two", Duration::from_secs(6));
    let id = instruct(
        &s,
        "apply-settings",
        &json!({"printer": s.printer, "settings": {}}),
    );
    assert_eq!(acknowledged(&s, &id).0, "done");
    wait_printed(&s, "while power saving two", job);

    // A forged credential: the cloud refuses it, the instruction failed, no record.
    let id = instruct(
        &s,
        "sign-in",
        &json!({"printer": s.printer, "account": USER, "credential": "forged-credential",
            "expires_at": 4102444800u64}),
    );
    let (status, message) = acknowledged(&s, &id);
    assert_eq!(status, "failed", "{message}");
    assert!(message.contains("401"), "{message}");
    assert_eq!(record(&s), None);

    // The panel: a wrong password changes nothing; the right one signs BOB in, at B's address.
    let (ok, out) = panel_cli(&s, "signin", "not bob's password");
    assert!(!ok, "{out}");
    assert_eq!(record(&s), None);
    let (ok, out) = panel_cli(&s, "signin", USER_PASSWORD);
    assert!(ok, "{out}");
    assert!(out.contains("signed in"), "{out}");
    assert_eq!(
        record(&s),
        Some(("IN".to_string(), "127.0.0.1".to_string()))
    );
    let q: Json = serde_json::from_slice(&b_get(&s, "/api/v1/queues").body).unwrap();
    assert_eq!(q["queues"][0]["accounts"][0]["account"], USER, "{q}");
    let page = b_get(&s, "/admin/cloud");
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains(USER), "{}", page.text());

    // Panel sign-out (the page's API): the record is deleted; again: refused.
    let r = b_post_json(
        &s,
        "/api/v1/queues/default/sign-out",
        &json!({"account": USER}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        serde_json::from_slice::<Json>(&r.body).unwrap()["status"],
        "deleted"
    );
    assert_eq!(record(&s), None);
    let (ok, out) = panel_cli(&s, "signout", "");
    assert!(!ok, "{out}");
    assert!(out.contains("404"), "{out}");

    // The API is for B's administrators only, and JSON only.
    let r = common::http::request(
        s.b.port,
        "POST",
        "/api/v1/queues/default/sign-out",
        &[("Content-Type".into(), "application/json".into())],
        json!({"account": USER}).to_string().as_bytes(),
    );
    assert_eq!(r.status, 401, "{}", r.text());
    let r = common::http::request(
        s.b.port,
        "POST",
        "/api/v1/queues/default/sign-in",
        &[
            b_admin_header(),
            ("Content-Type".into(), "text/plain".into()),
        ],
        b"account=x",
    );
    assert_eq!(r.status, 415, "{}", r.text());
    let r = common::http::request(
        s.b.port,
        "POST",
        "/api/v1/queues/default/sign-out",
        &[
            b_admin_header(),
            ("Content-Type".into(), "application/json".into()),
            ("Origin".into(), "http://evil.example".into()),
        ],
        json!({"account": USER}).to_string().as_bytes(),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = b_post_json(
        &s,
        "/api/v1/queues/nowhere/sign-out",
        &json!({"account": USER}),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let r = b_post_json(
        &s,
        "/api/v1/queues/default/sign-in",
        &json!({"account": "nobody"}),
    );
    assert_eq!(r.status, 400, "{}", r.text());

    // A power-saving delay: idle that long, the queue saves power by itself; a local job wakes it.
    let id = instruct(
        &s,
        "apply-settings",
        &json!({"printer": s.printer, "settings": {"power_saving_delay_seconds": 3}}),
    );
    let (status, message) = acknowledged(&s, &id);
    assert_eq!(status, "done", "{message}");
    assert!(message.contains("power_saving_delay_seconds"), "{message}");
    assert!(
        wait_until(Duration::from_secs(60), || b_power_saving(&s)),
        "no power saving after 3 idle seconds: {}",
        b_state_message(&s)
    );
    assert!(b_state_message(&s).contains("no jobs for 3 s"));
    local_print(&s, "dave", "woken after the delay");
    assert!(
        wait_until(Duration::from_secs(30), || !b_power_saving(&s)),
        "a local job did not wake the queue"
    );
    let _ = &s.smtp;
}

/// A PC's session drives the appliance: logout (group sign-out, exclusion off) makes the cloud
/// instruct B to sign out and to save power — the record stays OUT and a job of BOB waits —
/// and the next login instructs B to sign in with a single-use credential: the record is IN
/// again, B wakes and the job prints.
#[test]
fn login_and_logout_sign_the_queue_in_and_out() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path());
    let (ok, out) = panel_cli(&s, "signin", USER_PASSWORD);
    assert!(ok, "{out}");
    wait_record(&s, Some("IN"), "panel sign-in");

    let mut pc = Http::new(&s.cloud.base);
    let login = |pc: &mut Http| -> String {
        let r = pc.send(
            "POST",
            "/api/v1/session",
            &[],
            Some("application/json"),
            json!({"email": USER, "password": USER_PASSWORD})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["token"].as_str().unwrap().to_string()
    };
    let token = login(&mut pc);
    let bearer = format!("Bearer {token}");
    // Exclusion off: B was signed in moments ago (rule a would keep it IN).
    let r = pc.send(
        "PUT",
        "/api/v1/groups/settings",
        &[("Authorization", bearer.as_str())],
        Some("application/json"),
        json!({"sign_in": true, "sign_out": true, "exclusion": false, "recent_seconds": 600,
            "exclusion_list": [], "group_settings": true, "wait_seconds": 60})
        .to_string()
        .as_bytes(),
    );
    assert!(r.status == 200 || r.status == 204, "{}", r.body);
    let r = pc.send(
        "DELETE",
        "/api/v1/session",
        &[("Authorization", bearer.as_str())],
        None,
        b"",
    );
    assert!(r.status == 200 || r.status == 204, "{}", r.body);
    wait_record(&s, Some("OUT"), "group sign-out");
    assert!(
        wait_until(Duration::from_secs(90), || b_power_saving(&s)),
        "B did not enter power saving: {}",
        b_state_message(&s)
    );
    let job = cloud_print(&s, "after the logout");
    stays_unfetched(&s, job, "after the logout", Duration::from_secs(6));

    login(&mut pc);
    wait_record(&s, Some("IN"), "group sign-in");
    assert!(
        wait_until(Duration::from_secs(60), || !b_power_saving(&s)),
        "B did not wake"
    );
    wait_printed(&s, "after the logout", job);
}
