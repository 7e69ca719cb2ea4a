//! The inbound bridge (docs/bridge.md "Inbound") with real processes: a `printbridge cloud`
//! (mailing its administrator through Debian's aiosmtpd), an appliance B registered for real
//! through its registration agent and the administrator's approval, whose `cloud_share` queue
//! prints on Debian's ippeveprinter. A user allowed on B submits PDFs to the cloud's
//! Infrastructure Printer with HTTP Basic; B's Proxy fetches them and they print; both sides
//! report completed. Also: a job canceled in the cloud is canceled on B; B killed at the steps of
//! taking a job prints it exactly once after its restart; the cloud killed and restarted while
//! B waits; turning cloud_share off deregisters B's output device; the printer's condition
//! (toner low) reaches the cloud printer and clears there.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::bridge::padded_pdf;
use common::cloud::start_cloud_on;
use common::cloud::{bootstrap_acme, write_config, CloudProc};
use common::ippeveprinter::EvePrinter;
use common::smtp::Smtp;
use common::{wait_until, Appliance};
use printbridge::codec::ipp::{tag, Attribute, Message, Value};

const ADMIN: &str = "ann@example.com";
const ADMIN_PASSWORD: &str = "correct horse battery staple";
const USER: &str = "bob@example.com";
const USER_PASSWORD: &str = "another long password";

struct Setup {
    smtp: Smtp,
    cloud: CloudProc,
    cloud_port: u16,
    cloud_data: PathBuf,
    cloud_config: PathBuf,
    eve: EvePrinter,
    state: PathBuf,
    config: PathBuf,
}

/// SMTP, a cloud with Acme (ANN administrator, BOB user), ippeveprinter taking PDF, and B's
/// configuration: its default queue shared and printing on ippeveprinter.
fn setup(dir: &Path, extra_printer: &str) -> Setup {
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
    let eve = EvePrinter::start("pbshared", "application/pdf", &[]);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let config = dir.join("appliance.toml");
    write_appliance_config(&config, &cloud.base, &eve.uri(), true, extra_printer);
    Setup {
        smtp,
        cloud,
        cloud_port,
        cloud_data,
        cloud_config,
        eve,
        state,
        config,
    }
}

fn register(s: &Setup, b: &Appliance) -> String {
    common::bridge::register_through_agent(&s.smtp, &s.cloud.base, b, (ADMIN, ADMIN_PASSWORD), USER)
}

fn write_appliance_config(path: &Path, cloud: &str, device: &str, share: bool, extra: &str) {
    std::fs::write(
        path,
        format!(
            "[server]\ntls = false\n\n[dnssd]\nbackend = \"off\"\n\n\
             [spool]\nkeep_documents = true\n\n\
             [printer]\nname = \"Branch\"\ndevice_uri = \"{device}\"\ndevice_timeout_seconds = 5\n\
             cloud_share = {share}\n{extra}\n\n\
             [cloud]\nurl = \"{cloud}\"\nadmin_email = \"{ADMIN}\"\n"
        ),
    )
    .unwrap();
}

fn start_b(s: &Setup, env: &[(&str, &str)]) -> Appliance {
    Appliance::start_with_env(
        &s.state,
        "127.0.0.1:0",
        &["--config", s.config.to_str().unwrap()],
        env,
    )
}

// ---- IPP as the cloud user -----------------------------------------------------------------------

fn cloud_request(s: &Setup, printer: &str, op: u16, extra: Vec<Attribute>) -> Message {
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
            "ipp://127.0.0.1:{}/ipp/print/{printer}",
            s.cloud_port
        )),
    ));
    g.push(Attribute::new(
        "requesting-user-name",
        Value::Name(USER.into()),
    ));
    for a in extra {
        g.push(a);
    }
    m
}

fn cloud_call(s: &Setup, printer: &str, msg: &Message, doc: &[u8]) -> Message {
    let mut body = Vec::new();
    printbridge::codec::ipp::encode_message(msg, &mut body);
    body.extend_from_slice(doc);
    let auth = common::http::basic(USER, USER_PASSWORD);
    let r = common::http::request(
        s.cloud_port,
        "POST",
        &format!("/ipp/print/{printer}"),
        &[auth, ("Content-Type".into(), "application/ipp".into())],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.ipp()
}

/// Print-Job of `pdf` to the cloud printer as BOB: the cloud's job id.
fn submit(s: &Setup, printer: &str, name: &str, pdf: &[u8]) -> i32 {
    let m = cloud_request(
        s,
        printer,
        0x0002,
        vec![
            Attribute::new("job-name", Value::Name(name.into())),
            Attribute::new(
                "document-format",
                Value::MimeMediaType("application/pdf".into()),
            ),
        ],
    );
    let r = cloud_call(s, printer, &m, pdf);
    assert_eq!(r.code, 0, "Print-Job: {r:?}");
    common::http::attr(&r, tag::JOB, "job-id")
        .and_then(|a| a.first())
        .and_then(Value::as_int)
        .expect("job-id")
}

fn cloud_job_state(s: &Setup, printer: &str, job: i32) -> i32 {
    let m = cloud_request(
        s,
        printer,
        0x0009,
        vec![Attribute::new("job-id", Value::Integer(job))],
    );
    let r = cloud_call(s, printer, &m, b"");
    common::http::attr(&r, tag::JOB, "job-state")
        .and_then(|a| a.first())
        .and_then(Value::as_int)
        .unwrap_or(0)
}

fn wait_cloud_state(s: &Setup, printer: &str, job: i32, want: i32, timeout: Duration) {
    let mut last = 0;
    assert!(
        wait_until(timeout, || {
            last = cloud_job_state(s, printer, job);
            last == want
        }),
        "cloud job {job} is in state {last}, not {want}; ippeveprinter:\n{}",
        s.eve.log()
    );
}

/// B's jobs (Get-Jobs which-jobs=all): (job-id, owner, state, name).
fn b_jobs(b: &Appliance) -> Vec<(i32, String, i32, String)> {
    // As BOB: job-originating-user-name and job-name are private to the owner.
    let req = common::http::ipp_request(
        b.port,
        0x000A,
        USER,
        vec![
            Attribute::new("which-jobs", Value::Keyword("all".into())),
            Attribute::set(
                "requested-attributes",
                vec![
                    Value::Keyword("job-id".into()),
                    Value::Keyword("job-originating-user-name".into()),
                    Value::Keyword("job-state".into()),
                    Value::Keyword("job-name".into()),
                ],
            ),
        ],
    );
    let resp = common::http::ipp_post(b.port, &req, b"", &[]).ipp();
    resp.groups
        .iter()
        .filter(|g| g.tag == tag::JOB)
        .map(|g| {
            let s = |n: &str| {
                g.get(n)
                    .and_then(|a| a.first())
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let i = |n: &str| {
                g.get(n)
                    .and_then(|a| a.first())
                    .and_then(Value::as_int)
                    .unwrap_or(0)
            };
            (
                i("job-id"),
                s("job-originating-user-name"),
                i("job-state"),
                s("job-name"),
            )
        })
        .collect()
}

fn pdf_text(path: &Path) -> String {
    let pdftotext = common::require_program("pdftotext", "poppler-utils");
    let out = Command::new(pdftotext).arg(path).arg("-").output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// ippeveprinter's received PDFs that carry `text`.
fn printed_with(eve: &EvePrinter, text: &str) -> usize {
    eve.spooled()
        .iter()
        .filter(|f| std::fs::read(f).is_ok_and(|b| b.starts_with(b"%PDF-")))
        .filter(|f| pdf_text(f).contains(text))
        .count()
}

/// Rows of the cloud's output_devices table for `printer`.
fn output_devices(cloud_data: &Path, printer: &str) -> i64 {
    let url = format!("sqlite://{}?mode=ro", cloud_data.join("cloud.db").display());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let n: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM output_devices WHERE printer_id = ?")
                    .bind(printer)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            pool.close().await;
            n
        })
}

/// The document B's spool kept for its job `id` (keep_documents = true), as stored.
fn kept_document(state: &Path, id: i32) -> Vec<u8> {
    let dir = state.join("spool").join("documents");
    let file = common::files_under(&dir)
        .into_iter()
        .find(|f| {
            f.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&format!("{id}-")) || n.starts_with(&format!("{id}."))
            })
        })
        .unwrap_or_else(|| panic!("no document of job {id} in {}", dir.display()));
    std::fs::read(file).unwrap()
}

// ---- the tests -------------------------------------------------------------------------------------

#[test]
fn cloud_jobs_of_several_sizes_print_on_the_shared_queue_and_complete_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = setup(dir.path(), "");
    let mut b = start_b(&s, &[]);
    let printer = register(&s, &b);
    assert!(
        wait_until(Duration::from_secs(30), || output_devices(
            &s.cloud_data,
            &printer
        ) == 1),
        "B's Proxy did not register its output device"
    );

    let sizes = [1024usize, 100 * 1024, 20 * 1024 * 1024];
    let mut jobs = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let text = format!("cloud document {i} of {size} bytes");
        let pdf = padded_pdf(&text, *size);
        let job = submit(&s, &printer, &format!("size-{size}"), &pdf);
        jobs.push((job, text, pdf));
    }
    for (job, text, _) in &jobs {
        wait_cloud_state(&s, &printer, *job, 9, Duration::from_secs(180));
        assert_eq!(printed_with(&s.eve, text), 1, "{text} printed once");
    }
    let local = b_jobs(&b);
    assert_eq!(local.len(), 3, "{local:?}");
    for (id, owner, state, name) in &local {
        assert_eq!(owner, USER, "{local:?}");
        assert_eq!(*state, 9, "{local:?}");
        // gzip in transit: BOB sent it uncompressed, the cloud compressed it for B's Proxy
        // (compression-accepted=gzip), and B's spool keeps it as received, as for a client.
        let stored = kept_document(&s.state, *id);
        assert!(
            stored.starts_with(&[0x1f, 0x8b]),
            "job {id}: not gzip-compressed in transit"
        );
        let mut kept = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(stored.as_slice()),
            &mut kept,
        )
        .unwrap();
        // Byte for byte what BOB sent: the document went through the cloud unchanged.
        assert!(
            jobs.iter().any(|(_, _, p)| *p == kept),
            "job {id} ({name}): the kept document ({} bytes) is none of those sent",
            kept.len()
        );
    }
    // `printbridge jobs` shows the cloud user as the owner.
    let out = Command::new(env!("CARGO_BIN_EXE_printbridge"))
        .args(["jobs", "-d", &b.uri, "--which", "all"])
        .env("USER", USER)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(USER), "printbridge jobs:\n{text}");

    // Turning cloud_share off deregisters B's output device at the next start.
    b.kill9();
    write_appliance_config(&s.config, &s.cloud.base, &s.eve.uri(), false, "");
    let _b = start_b(&s, &[]);
    assert!(
        wait_until(Duration::from_secs(60), || output_devices(
            &s.cloud_data,
            &printer
        ) == 0),
        "the output device of the queue no longer shared is still registered"
    );
    s.cloud.child.kill().ok();
}

#[test]
fn a_job_canceled_in_the_cloud_before_b_prints_it_is_canceled_on_b() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = setup(dir.path(), "");
    // The printer is away: B takes the job but cannot print it.
    s.eve.stop();
    let b = start_b(&s, &[]);
    let printer = register(&s, &b);
    let job = submit(&s, &printer, "to-cancel", &padded_pdf("to cancel", 2048));
    assert!(
        wait_until(Duration::from_secs(60), || b_jobs(&b).len() == 1),
        "B did not take the job"
    );
    let (local, owner, state, _) = b_jobs(&b)[0].clone();
    assert_eq!(owner, USER);
    assert!(state < 7, "not finished yet: {state}");
    let m = cloud_request(
        &s,
        &printer,
        0x0008,
        vec![Attribute::new("job-id", Value::Integer(job))],
    );
    let r = cloud_call(&s, &printer, &m, b"");
    assert_eq!(r.code, 0, "Cancel-Job: {r:?}");
    let mut last = Vec::new();
    assert!(
        wait_until(Duration::from_secs(60), || {
            last = b_jobs(&b);
            last.iter().any(|(id, _, st, _)| *id == local && *st == 7)
        }),
        "B's job was not canceled: {last:?}"
    );
    assert_eq!(cloud_job_state(&s, &printer, job), 7);
    // The printer comes back: nothing of the canceled job reaches it.
    s.eve.restart(2);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(printed_with(&s.eve, "to cancel"), 0);
}

#[test]
fn b_killed_at_each_step_of_taking_a_job_prints_it_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path(), "");
    let b = start_b(&s, &[]);
    let printer = register(&s, &b);
    drop(b);
    for (i, step) in [
        "after-acknowledge-job",
        "after-fetch-document",
        "after-local-job",
    ]
    .iter()
    .enumerate()
    {
        let fault = format!("proxy-abort:{step}");
        let mut dying = start_b(&s, &[("PRINTBRIDGE_TEST_FAULT", &fault)]);
        let text = format!("killed {step}");
        let job = submit(&s, &printer, step, &padded_pdf(&text, 4096 * (i + 1)));
        // The fault point aborts the process (as kill -9 would) at that step.
        let mut ended = false;
        assert!(
            wait_until(Duration::from_secs(60), || {
                ended = matches!(dying.child.try_wait(), Ok(Some(_)));
                ended
            }),
            "B did not reach {step}"
        );
        dying.kill9();
        let b = start_b(&s, &[]);
        wait_cloud_state(&s, &printer, job, 9, Duration::from_secs(120));
        assert_eq!(printed_with(&s.eve, &text), 1, "{step}: printed once");
        let mine: Vec<_> = b_jobs(&b)
            .into_iter()
            .filter(|(_, _, _, n)| n == step)
            .collect();
        assert_eq!(mine.len(), 1, "{step}: one local job: {mine:?}");
        assert_eq!(mine[0].2, 9, "{mine:?}");
    }
}

#[test]
fn after_the_cloud_is_killed_and_restarted_b_reconnects_and_the_next_job_prints() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = setup(dir.path(), "");
    let b = start_b(&s, &[]);
    let printer = register(&s, &b);
    let first = submit(
        &s,
        &printer,
        "before",
        &padded_pdf("before the outage", 1500),
    );
    wait_cloud_state(&s, &printer, first, 9, Duration::from_secs(120));

    s.cloud.child.kill().ok();
    s.cloud.child.wait().ok();
    // B notices while its Get-Notifications is held, and keeps trying.
    std::thread::sleep(Duration::from_secs(3));
    s.cloud = start_cloud_on(
        &s.cloud_data,
        None,
        Some(&s.cloud_config),
        &format!("127.0.0.1:{}", s.cloud_port),
        &[],
    );
    let second = submit(&s, &printer, "after", &padded_pdf("after the outage", 2500));
    wait_cloud_state(&s, &printer, second, 9, Duration::from_secs(180));
    assert_eq!(printed_with(&s.eve, "after the outage"), 1);
    assert_eq!(printed_with(&s.eve, "before the outage"), 1);
    assert_eq!(b_jobs(&b).len(), 2);
}

/// printer-state-reasons of the cloud printer, asked as BOB.
fn cloud_printer_reasons(s: &Setup, printer: &str) -> Vec<String> {
    let m = cloud_request(
        s,
        printer,
        0x000B,
        vec![Attribute::new(
            "requested-attributes",
            Value::Keyword("printer-state-reasons".into()),
        )],
    );
    let r = cloud_call(s, printer, &m, b"");
    common::http::attr(&r, tag::PRINTER, "printer-state-reasons")
        .map(|a| {
            a.values
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_shared_queues_condition_follows_the_printer_into_the_cloud() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path(), "");
    let b = start_b(&s, &[]);
    let printer = register(&s, &b);
    let mut seen = Vec::new();
    assert!(
        wait_until(Duration::from_secs(60), || {
            seen = cloud_printer_reasons(&s, &printer);
            !seen.iter().any(|r| r == "toner-low-report")
        }),
        "{seen:?}"
    );
    // The printer's toner runs low: B's queue mirrors it, and its Proxy tells the cloud again
    // (Update-Output-Device-Attributes on the queue's change, not only at start).
    s.eve.web_form("/supplies?supply0=25&supply1=2");
    assert!(
        wait_until(Duration::from_secs(60), || {
            seen = cloud_printer_reasons(&s, &printer);
            seen.iter().any(|r| r == "toner-low-report")
        }),
        "the cloud printer never showed toner-low-report: {seen:?}"
    );
    s.eve.web_form("/supplies?supply0=25&supply1=75");
    assert!(
        wait_until(Duration::from_secs(60), || {
            seen = cloud_printer_reasons(&s, &printer);
            !seen.iter().any(|r| r == "toner-low-report")
        }),
        "toner-low-report did not clear in the cloud: {seen:?}"
    );
}

/// Ids of the live printer subscriptions (not job subscriptions, lease not lapsed) of cloud
/// printer `printer`, read from the cloud's database.
fn live_printer_subscriptions(cloud_data: &Path, printer: &str) -> Vec<i64> {
    let url = format!("sqlite://{}?mode=ro", cloud_data.join("cloud.db").display());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM infra_subscriptions WHERE printer_id = ? AND job_id IS NULL \
                 AND (lease_seconds = 0 OR expires_at > ?) ORDER BY id",
            )
            .bind(printer)
            .bind(now)
            .fetch_all(&pool)
            .await
            .unwrap();
            pool.close().await;
            ids
        })
}

#[test]
fn restarts_keep_one_printer_subscription_in_the_cloud_and_unsharing_cancels_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path(), "");
    let mut b = start_b(&s, &[]);
    let printer = register(&s, &b);
    let mut subs = Vec::new();
    assert!(
        wait_until(Duration::from_secs(60), || {
            subs = live_printer_subscriptions(&s.cloud_data, &printer);
            !subs.is_empty()
        }),
        "B's Proxy made no printer subscription"
    );
    assert_eq!(subs.len(), 1, "{subs:?}");
    let first = subs.clone();
    // Stopped three times, killed or stopped cleanly: every start renews the one subscription.
    for (round, clean) in [false, true, false].into_iter().enumerate() {
        if clean {
            assert!(common::appliance::sigterm_and_wait(
                &mut b,
                Duration::from_secs(30)
            ));
        } else {
            b.kill9();
        }
        b = start_b(&s, &[]);
        let text = format!("after restart {round}");
        let job = submit(
            &s,
            &printer,
            &format!("restart-{round}"),
            &padded_pdf(&text, 2000 + 3000 * round),
        );
        wait_cloud_state(&s, &printer, job, 9, Duration::from_secs(120));
        assert_eq!(printed_with(&s.eve, &text), 1, "{text}: printed once");
        assert_eq!(
            live_printer_subscriptions(&s.cloud_data, &printer),
            first,
            "round {round}: the cloud should hold B's one subscription, renewed"
        );
    }

    // No longer shared: the subscription is canceled with the output device.
    b.kill9();
    write_appliance_config(&s.config, &s.cloud.base, &s.eve.uri(), false, "");
    let _b = start_b(&s, &[]);
    assert!(
        wait_until(Duration::from_secs(60), || {
            subs = live_printer_subscriptions(&s.cloud_data, &printer);
            subs.is_empty() && output_devices(&s.cloud_data, &printer) == 0
        }),
        "after unsharing: subscriptions {subs:?}, output devices {}",
        output_devices(&s.cloud_data, &printer)
    );
}

/// B's access token as stored by its registration agent.
fn b_access_token(state: &Path) -> String {
    let path = state.join("cloud").join("tokens.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// Runs `sql` (binding the current Unix time once) on the cloud's database while it runs.
fn cloud_db_write(cloud_data: &Path, sql: &str) -> u64 {
    let url = format!("sqlite://{}", cloud_data.join("cloud.db").display());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let n = sqlx::query(sql)
                .bind(now)
                .execute(&pool)
                .await
                .unwrap()
                .rows_affected();
            pool.close().await;
            n
        })
}

#[test]
fn a_token_the_cloud_refuses_is_refreshed_and_the_proxy_prints_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path(), "");
    let b = start_b(&s, &[]);
    let printer = register(&s, &b);
    let job = submit(
        &s,
        &printer,
        "before",
        &padded_pdf("before the refusal", 1800),
    );
    wait_cloud_state(&s, &printer, job, 9, Duration::from_secs(120));
    // The token is revoked in the cloud, then its successor expires there, each long before the
    // time B has for it (an hour): B's Proxy is answered HTTP 401 and must get a new token from
    // its agent (refresh) at once, not at the token's due time, then take the job waiting.
    let refusals = [
        (
            "revoked",
            "UPDATE oauth_tokens SET revoked_at = ? WHERE kind = 'access' AND revoked_at IS NULL",
        ),
        (
            "expired",
            "UPDATE oauth_tokens SET expires_at = ? - 1 WHERE kind = 'access' \
             AND revoked_at IS NULL",
        ),
    ];
    for (round, (how, sql)) in refusals.into_iter().enumerate() {
        let before = b_access_token(&s.state);
        assert!(
            cloud_db_write(&s.cloud_data, sql) >= 1,
            "{how}: no access token of B in the cloud"
        );
        let text = format!("after the token was {how}");
        let job = submit(&s, &printer, how, &padded_pdf(&text, 2500 + 4000 * round));
        wait_cloud_state(&s, &printer, job, 9, Duration::from_secs(120));
        assert_eq!(printed_with(&s.eve, &text), 1, "{text}: printed once");
        assert_ne!(
            b_access_token(&s.state),
            before,
            "{how}: B's agent did not refresh the token"
        );
    }
    assert_eq!(printed_with(&s.eve, "before the refusal"), 1);
    assert_eq!(b_jobs(&b).len(), 3);
}
