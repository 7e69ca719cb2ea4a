//! The release page (issue 18, docs/release.md "Sign-in release") against a real
//! `printbridge serve` whose default queue holds every job for its PIN (`release = "pin"`) and
//! whose `desk` queue holds them until their owner signs in (`release = "sign-in"`):
//! - in headless Chromium at phone size (390×844): the list without names, a wrong PIN then the
//!   right one (the job prints once), signing in as a local user, "Your jobs" with their names
//!   beside another user's job shown by initials only, releasing one, deleting one, signing out —
//!   screenshots in `target/test-output/screenshots/release-*.png`;
//! - at the HTTP level, hostile visitors: forms without or with a forged CSRF token, a
//!   cross-origin post, releasing someone else's job, a replayed release, an ended session,
//!   oversized forms, guessing PINs and passwords until the limits hold.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::chromium::{output_dir, Browser, Page};
use common::http::*;
use printbridge::codec::ipp::{self, tag, Attribute, Message, Value};
use serde_json::json;

const ALICE_PW: &str = "alice-password-1";
const BOB_PW: &str = "bob-password-1";
const LONG: Duration = Duration::from_secs(60);

struct Setup {
    _state: tempfile::TempDir,
    app: common::Appliance,
}

impl Setup {
    fn port(&self) -> u16 {
        self.app.port
    }

    /// Output directory of the default queue (`""`) or of `[[queue]]` `desk`.
    fn out(&self, queue: &str) -> PathBuf {
        if queue.is_empty() {
            self.app.output_dir()
        } else {
            self.app.state_dir.join("queues").join(queue).join("output")
        }
    }

    /// Files the device wrote for job `id` of `queue`.
    fn printed(&self, queue: &str, id: i32) -> usize {
        let prefix = format!("{id:06}-");
        std::fs::read_dir(self.out(queue))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    .count()
            })
            .unwrap_or(0)
    }
}

/// An appliance with local users alice and bob (carol prints but is no user here), release sessions
/// of `session_seconds`.
fn setup(session_seconds: u64) -> Setup {
    setup_with(session_seconds, "")
}

/// [`setup`] with `desk_extra` lines in the `desk` queue's section.
fn setup_with(session_seconds: u64, desk_extra: &str) -> Setup {
    let state = tempfile::tempdir().unwrap();
    add_user(state.path(), "alice", ALICE_PW, false);
    add_user(state.path(), "bob", BOB_PW, false);
    let config = state.path().join("printbridge.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nrelease_session_seconds = {session_seconds}\n\n[dnssd]\nbackend = \"off\"\n\n\
             [printer]\nname = \"Hall printer\"\nrelease = \"pin\"\n\n\
             [[queue]]\nname = \"desk\"\nrelease = \"sign-in\"\n{desk_extra}"
        ),
    )
    .unwrap();
    let app = common::Appliance::start(state.path(), &["--config", config.to_str().unwrap()]);
    Setup { _state: state, app }
}

fn resource(queue: &str) -> String {
    if queue.is_empty() {
        "/ipp/print".to_string()
    } else {
        format!("/ipp/print/{queue}")
    }
}

/// A request to `queue` with the usual operation attributes.
fn queue_request(port: u16, queue: &str, op: u16, user: &str, extra: Vec<Attribute>) -> Message {
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
        Value::Uri(format!("ipp://127.0.0.1:{port}{}", resource(queue))),
    ));
    g.push(Attribute::new(
        "requesting-user-name",
        Value::Name(user.into()),
    ));
    for a in extra {
        g.push(a);
    }
    m
}

fn post_ipp(port: u16, queue: &str, msg: &Message, doc: &[u8]) -> Message {
    let mut body = Vec::new();
    ipp::encode_message(msg, &mut body);
    body.extend_from_slice(doc);
    let r = request(
        port,
        "POST",
        &resource(queue),
        &[("Content-Type".into(), "application/ipp".into())],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.ipp()
}

/// Prints a PDF of `pages` pages on `queue` as `user`; the job id.
fn print(s: &Setup, queue: &str, user: &str, name: &str, pages: usize) -> i32 {
    let extra = vec![
        Attribute::new("job-name", Value::Name(name.into())),
        Attribute::new(
            "document-format",
            Value::MimeMediaType("application/pdf".into()),
        ),
    ];
    let texts: Vec<String> = (0..pages).map(|i| format!("{name} page {i}")).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let msg = queue_request(s.port(), queue, 0x0002, user, extra);
    let answer = post_ipp(s.port(), queue, &msg, &common::pdf_with_pages(&texts));
    assert!(answer.code < 0x0100, "Print-Job refused: {answer:?}");
    job_id(&answer)
}

/// A job attribute of job `id` on `queue`, asked as its owner.
fn job_attr(s: &Setup, queue: &str, id: i32, owner: &str, name: &str) -> Option<Value> {
    let msg = queue_request(
        s.port(),
        queue,
        0x0009,
        owner,
        vec![Attribute::new("job-id", Value::Integer(id))],
    );
    let answer = post_ipp(s.port(), queue, &msg, b"");
    attr(&answer, tag::JOB, name)
        .and_then(|a| a.first())
        .cloned()
}

/// The PIN the appliance assigned to pin job `id` (the client sent none), from the
/// job-state-message only its owner reads ("Release PIN 4821 at the printer").
fn assigned_pin(s: &Setup, id: i32, owner: &str) -> String {
    let message = job_attr(s, "", id, owner, "job-state-message")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let pin: String = message
        .strip_prefix("Release PIN ")
        .unwrap_or("")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert!(pin.len() >= 4, "no assigned PIN in {message:?}");
    pin
}

/// A PIN of the same length as `pin` that is not it (the `n`th such).
fn wrong_pin(pin: &str, n: u64) -> String {
    let modulus = 10u64.pow(pin.len() as u32);
    let wrong = (pin.parse::<u64>().unwrap() + 1 + n % (modulus - 1)) % modulus;
    format!("{wrong:0width$}", width = pin.len())
}

/// job-state of job `id` on `queue`, asked as its owner.
fn job_state(s: &Setup, queue: &str, id: i32, owner: &str) -> i32 {
    job_attr(s, queue, id, owner, "job-state")
        .as_ref()
        .and_then(Value::as_int)
        .unwrap_or_else(|| panic!("no job-state for job {id}"))
}

/// Waits until job `id` has finished (completed, canceled or aborted); its final state.
fn finished(s: &Setup, queue: &str, id: i32, owner: &str) -> i32 {
    let mut state = 0;
    assert!(
        common::wait_until(LONG, || {
            state = job_state(s, queue, id, owner);
            state >= 7
        }),
        "job {id} did not finish (state {state})"
    );
    state
}

/// Job `id` printed exactly once: it completed and the device wrote one file for it.
fn printed_once(s: &Setup, queue: &str, id: i32, owner: &str) {
    assert_eq!(
        finished(s, queue, id, owner),
        9,
        "job {id} did not complete"
    );
    assert_eq!(
        s.printed(queue, id),
        1,
        "job {id} printed more or less than once"
    );
}

/// Job `id` never printed: it is still held, or ended canceled, and nothing was written.
fn not_printed(s: &Setup, queue: &str, id: i32, owner: &str) {
    let state = job_state(s, queue, id, owner);
    assert!(state == 4 || state == 7, "job {id} is in state {state}");
    assert_eq!(s.printed(queue, id), 0, "job {id} printed");
}

// ---- a browser at phone size -------------------------------------------------------------------

fn phone(browser: &mut Browser) -> Page {
    let mut page = browser.page();
    page.call("Page.enable", json!({}));
    page.call("Runtime.enable", json!({}));
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
    );
    page
}

/// Screenshots the page as `release-NAME.png`, checking nothing is wider than the phone's
/// screen and every button is big enough to touch.
fn shoot(page: &mut Page, name: &str) {
    let too_wide = page.eval(
        "String(document.documentElement.scrollWidth - document.documentElement.clientWidth)",
    );
    assert_eq!(
        too_wide, "0",
        "{name} is {too_wide} px wider than the phone"
    );
    let small = page.eval(
        "Array.from(document.querySelectorAll('.release button')).filter(b => \
         b.getBoundingClientRect().height < 44).map(b => b.textContent).join('|')",
    );
    assert_eq!(small, "", "{name}: buttons too small to touch");
    page.screenshot(&output_dir("screenshots").join(format!("release-{name}.png")));
}

fn text(page: &mut Page) -> String {
    page.eval("document.body.innerText")
}

fn click(page: &mut Page, selector: &str) {
    let found = page.eval(&format!(
        "(() => {{ const b = document.querySelector('{selector}'); \
         if (!b) return 'missing'; b.click(); return 'clicked'; }})()"
    ));
    assert_eq!(
        found,
        "clicked",
        "no {selector} on the page:\n{}",
        text(page)
    );
    page.wait_for_load();
}

fn fill(page: &mut Page, selector: &str, value: &str) {
    let found = page.eval(&format!(
        "(() => {{ const i = document.querySelector('{selector}'); \
         if (!i) return 'missing'; i.value = {}; return 'set'; }})()",
        serde_json::to_string(value).unwrap()
    ));
    assert_eq!(found, "set", "no {selector} on the page:\n{}", text(page));
}

#[test]
fn release_page_in_chromium_at_phone_size() {
    let s = setup(900);
    let port = s.port();
    let bobs = print(&s, "", "bob", "bob-payroll", 2);
    let alices_pin = print(&s, "", "alice", "alice-holiday-plan", 1);
    let alices = print(&s, "desk", "alice", "alice-quarterly-report", 3);
    let alices_other = print(&s, "desk", "alice", "alice-minutes", 1);
    let carols = print(&s, "desk", "carol", "carol-contract", 1);
    for (q, id, owner) in [
        ("", bobs, "bob"),
        ("", alices_pin, "alice"),
        ("desk", alices, "alice"),
        ("desk", alices_other, "alice"),
        ("desk", carols, "carol"),
    ] {
        assert_eq!(job_state(&s, q, id, owner), 4, "job {id} is not held");
    }

    let mut browser = Browser::launch();
    let mut page = phone(&mut browser);
    page.navigate(&format!("http://127.0.0.1:{port}/release"));
    let t = text(&mut page);
    // Every held job is listed, by number and the owner's initials, never by name.
    for id in [bobs, alices_pin, alices, alices_other, carols] {
        assert!(
            t.contains(&format!("Job {id}")),
            "job {id} not listed:\n{t}"
        );
    }
    for secret in [
        "payroll",
        "holiday",
        "quarterly",
        "minutes",
        "contract",
        "alice",
        "bob",
        "carol",
    ] {
        assert!(
            !t.contains(secret),
            "the public list shows {secret:?}:\n{t}"
        );
    }
    // Not converted yet, so its size stands for its pages.
    assert!(t.contains("KiB"), "{t}");
    shoot(&mut page, "list");

    // A wrong PIN: refused, with the attempts left; nothing prints.
    let form = format!("#pin-0-{bobs}");
    let bobs_pin = assigned_pin(&s, bobs, "bob");
    fill(
        &mut page,
        &format!("{form} input[name=pin]"),
        &wrong_pin(&bobs_pin, 0),
    );
    click(&mut page, &format!("{form} button"));
    let t = text(&mut page);
    assert!(
        t.contains("Wrong PIN") && t.contains("4 attempts left"),
        "{t}"
    );
    shoot(&mut page, "wrong-pin");
    not_printed(&s, "", bobs, "bob");
    // The right PIN: released, printed once.
    fill(&mut page, &format!("{form} input[name=pin]"), &bobs_pin);
    click(&mut page, &format!("{form} button"));
    let t = text(&mut page);
    assert!(t.contains(&format!("Job {bobs} is released")), "{t}");
    printed_once(&s, "", bobs, "bob");
    assert_eq!(
        page.eval(&format!(
            "String(!!document.getElementById('held-0-{bobs}'))"
        )),
        "false"
    );

    // Alice signs in: her jobs by name, Carol's only by number and initials.
    fill(&mut page, "#sign-in input[name=user]", "alice");
    fill(&mut page, "#sign-in input[name=password]", ALICE_PW);
    click(&mut page, "#sign-in button");
    let t = text(&mut page);
    assert!(t.contains("Signed in as alice"), "{t}");
    let mine = page.eval("document.getElementById('mine').innerText");
    for name in [
        "alice-holiday-plan",
        "alice-quarterly-report",
        "alice-minutes",
    ] {
        assert!(mine.contains(name), "{name} not in her jobs:\n{mine}");
    }
    assert!(!t.contains("carol") && !t.contains("contract"), "{t}");
    assert!(t.contains(&format!("Job {carols}")), "{t}");
    shoot(&mut page, "signed-in");

    // Print one: it prints once; delete another: it never prints.
    click(&mut page, &format!("#mine-1-{alices} button.print"));
    assert!(text(&mut page).contains(&format!("Job {alices} is released")));
    printed_once(&s, "desk", alices, "alice");
    click(&mut page, &format!("#mine-1-{alices_other} button.delete"));
    let t = text(&mut page);
    assert!(
        t.contains(&format!("Job {alices_other} was deleted")),
        "{t}"
    );
    assert_eq!(finished(&s, "desk", alices_other, "alice"), 7);
    assert_eq!(s.printed("desk", alices_other), 0);
    let mine = page.eval("document.getElementById('mine').innerText");
    let waiting = mine.split("Ended without printing").next().unwrap();
    assert!(
        !waiting.contains("alice-minutes") && !waiting.contains("alice-quarterly-report"),
        "{mine}"
    );
    // The deleted job is listed as ended without printing, for her alone.
    let ended = page.eval("document.getElementById('ended').innerText");
    assert!(ended.contains("alice-minutes"), "{ended}");
    shoot(&mut page, "after-release");
    // The same page on a small panel (800×480): nothing wider than the screen.
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 800, "height": 480, "deviceScaleFactor": 1, "mobile": false}),
    );
    shoot(&mut page, "panel-800x480");
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
    );

    // Print all: her PIN job prints without its PIN; Carol's stays held.
    click(&mut page, "#print-all button");
    assert!(text(&mut page).contains("1 job released"));
    printed_once(&s, "", alices_pin, "alice");
    not_printed(&s, "desk", carols, "carol");

    // Sign out: back to the public list; the session cookie is gone.
    click(&mut page, "#sign-out button");
    let t = text(&mut page);
    assert!(
        t.contains("Signed out") && !t.contains("Signed in as"),
        "{t}"
    );
    assert!(page.eval("String(!!document.getElementById('sign-in'))") == "true");
    shoot(&mut page, "signed-out");
    browser.close(page);
}

// ---- hostile visitors at the HTTP level --------------------------------------------------------

/// A browser without a browser: keeps the release page's cookies.
struct Visitor {
    /// `HOST:PORT` of the appliance.
    addr: String,
    cookies: Vec<(String, String)>,
}

/// `application/x-www-form-urlencoded` of one value.
fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Visitor {
    fn new(port: u16) -> Visitor {
        Visitor::at(format!("127.0.0.1:{port}"))
    }

    fn at(addr: String) -> Visitor {
        Visitor {
            addr,
            cookies: Vec::new(),
        }
    }

    fn send(&self, method: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> Resp {
        let conn = std::net::TcpStream::connect(&self.addr).expect("connect to the appliance");
        conn.set_read_timeout(Some(LONG)).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        exchange(conn, &head, body)
    }

    fn cookie_header(&self) -> Vec<(String, String)> {
        if self.cookies.is_empty() {
            return Vec::new();
        }
        let v: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        vec![("Cookie".into(), v.join("; "))]
    }

    fn keep(&mut self, r: &Resp) {
        for (k, v) in &r.headers {
            if !k.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let first = v.split(';').next().unwrap_or("");
            let Some((name, value)) = first.split_once('=') else {
                continue;
            };
            self.cookies.retain(|(n, _)| n != name);
            if !v.contains("Max-Age=0") {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
    }

    fn get(&mut self, path: &str) -> Resp {
        let r = self.send("GET", path, &self.cookie_header(), b"");
        self.keep(&r);
        r
    }

    /// A form post as a browser on the page sends it (Origin: this appliance).
    fn post(&mut self, path: &str, form: &str) -> Resp {
        let mut h = self.cookie_header();
        h.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        h.push(("Origin".into(), format!("http://{}", self.addr)));
        let r = self.send("POST", path, &h, form.as_bytes());
        self.keep(&r);
        r
    }

    /// The page's CSRF token (loading the page first).
    fn csrf(&mut self) -> String {
        let page = self.get("/release");
        assert_eq!(page.status, 200, "{}", page.text());
        csrf_token(&page.text())
    }

    fn sign_in(&mut self, user: &str, password: &str) -> Resp {
        let csrf = self.csrf();
        self.post(
            "/release/sign-in",
            &format!("csrf={csrf}&user={}&password={}", enc(user), enc(password)),
        )
    }
}

fn set_cookie_of<'a>(r: &'a Resp, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .find(|v| v.starts_with(&format!("{name}=")))
}

#[test]
fn forms_refuse_forgeries_and_other_peoples_jobs() {
    let s = setup(900);
    let port = s.port();
    let bobs = print(&s, "desk", "bob", "bob-payroll", 1);
    let bobs_pin = print(&s, "", "bob", "bob-pin-job", 1);
    let pin = assigned_pin(&s, bobs_pin, "bob");
    let alices = print(&s, "desk", "alice", "alice-notes", 1);

    let mut alice = Visitor::new(port);
    let r = alice.sign_in("alice", ALICE_PW);
    assert_eq!(r.status, 303, "{}", r.text());
    let session = set_cookie_of(&r, "pb_release").expect("a session cookie");
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/release",
        "Max-Age=900",
    ] {
        assert!(session.contains(part), "{session}");
    }
    let csrf = alice.csrf();

    // No token, a forged token, no form cookie, another origin: refused, nothing released.
    let form = format!("queue=1&job={alices}&action=print");
    assert_eq!(alice.post("/release/job", &form).status, 403);
    let forged = format!("csrf={}&{form}", "0".repeat(64));
    assert_eq!(alice.post("/release/job", &forged).status, 403);
    let good = format!("csrf={csrf}&{form}");
    let no_cookie = post_form(port, "/release/job", &[], &good);
    assert_eq!(no_cookie.status, 403);
    let mut cross = alice.cookie_header();
    cross.push(("Origin".into(), "http://evil.example".into()));
    assert_eq!(post_form(port, "/release/job", &cross, &good).status, 403);
    let mut cross = alice.cookie_header();
    cross.push(("Origin".into(), "null".into()));
    assert_eq!(post_form(port, "/release/job", &cross, &good).status, 403);
    // A PIN form from another site is refused before the PIN is even looked at.
    let cross = vec![("Origin".to_string(), "http://evil.example".to_string())];
    let pin_form = format!("csrf={csrf}&queue=0&job={bobs_pin}&pin={pin}");
    assert_eq!(
        post_form(port, "/release/pin", &cross, &pin_form).status,
        403
    );
    not_printed(&s, "desk", alices, "alice");
    not_printed(&s, "", bobs_pin, "bob");

    // Someone else's job: "not found", whether printing or deleting, and it stays held.
    for action in ["print", "delete"] {
        let r = alice.post(
            "/release/job",
            &format!("csrf={csrf}&queue=1&job={bobs}&action={action}"),
        );
        assert_eq!(r.status, 404, "{action}: {}", r.text());
        assert!(!r.text().contains("bob-payroll"));
    }
    not_printed(&s, "desk", bobs, "bob");
    assert_eq!(job_state(&s, "desk", bobs, "bob"), 4);
    // A job that does not exist, a queue that does not exist, nonsense numbers.
    for form in [
        "queue=1&job=99999&action=print".to_string(),
        format!("queue=7&job={alices}&action=print"),
        format!("queue=1&job=-{alices}&action=print"),
        "queue=x&job=1e3&action=print".to_string(),
    ] {
        let r = alice.post("/release/job", &format!("csrf={csrf}&{form}"));
        assert_eq!(r.status, 404, "{form}: {}", r.text());
    }

    // Her own job, released twice (a replayed post): printed once, the replay says so.
    let release = format!("csrf={csrf}&queue=1&job={alices}&action=print");
    assert_eq!(alice.post("/release/job", &release).status, 303);
    let replay = alice.post("/release/job", &release);
    assert_eq!(replay.status, 409, "{}", replay.text());
    assert!(
        replay.text().contains("already released"),
        "{}",
        replay.text()
    );
    printed_once(&s, "desk", alices, "alice");
    let replay = alice.post("/release/job", &release);
    assert_eq!(replay.status, 409);
    assert_eq!(s.printed("desk", alices), 1);

    // The same with a PIN.
    let mut anon = Visitor::new(port);
    let csrf_anon = anon.csrf();
    let pin_release = format!("csrf={csrf_anon}&queue=0&job={bobs_pin}&pin={pin}");
    assert_eq!(anon.post("/release/pin", &pin_release).status, 303);
    assert_eq!(anon.post("/release/pin", &pin_release).status, 409);
    printed_once(&s, "", bobs_pin, "bob");

    // Delete beside Print: the PIN deletes a PIN job unprinted; a wrong one is refused and counted.
    let doomed = print(&s, "", "bob", "bob-doomed", 2);
    let doomed_pin = assigned_pin(&s, doomed, "bob");
    let delete =
        |pin: &str| format!("csrf={csrf_anon}&queue=0&job={doomed}&pin={pin}&action=delete");
    let r = anon.post("/release/pin", &delete(&wrong_pin(&doomed_pin, 0)));
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("4 attempts left"), "{}", r.text());
    assert_eq!(
        job_state(&s, "", doomed, "bob"),
        4,
        "a wrong PIN deletes nothing"
    );
    assert_eq!(anon.post("/release/pin", &delete(&doomed_pin)).status, 303);
    assert_eq!(finished(&s, "", doomed, "bob"), 7, "deleted, so canceled");
    assert_eq!(anon.post("/release/pin", &delete(&doomed_pin)).status, 409);
    let print_it = format!("csrf={csrf_anon}&queue=0&job={doomed}&pin={doomed_pin}");
    assert_eq!(anon.post("/release/pin", &print_it).status, 409);
    not_printed(&s, "", doomed, "bob");

    // Oversized forms: refused whole, nothing stored.
    let big = format!("csrf={csrf}&user=alice&password={}", "x".repeat(64 * 1024));
    let r = alice.post("/release/sign-in", &big);
    assert_eq!(r.status, 413, "{}", r.text());
    let long_pin = format!(
        "csrf={csrf_anon}&queue=0&job={bobs_pin}&pin={}",
        "9".repeat(300)
    );
    assert_eq!(anon.post("/release/pin", &long_pin).status, 400);

    // Signing out ends the session: its cookie no longer shows her jobs, and her forms say so.
    let jobs_before = alice.get("/release").text();
    assert!(jobs_before.contains("Signed in as"), "{jobs_before}");
    let old_cookies = alice.cookie_header();
    assert_eq!(
        alice
            .post("/release/sign-out", &format!("csrf={csrf}"))
            .status,
        303
    );
    let page = get(port, "/release", &old_cookies);
    assert!(!page.text().contains("Signed in as"), "{}", page.text());
    let r = post_form(
        port,
        "/release/all",
        &{
            let mut h = old_cookies.clone();
            h.push(("Origin".into(), format!("http://127.0.0.1:{port}")));
            h
        },
        &format!("csrf={csrf}"),
    );
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("sign-in has ended"), "{}", r.text());
}

#[test]
fn a_session_ends_after_its_time() {
    // Sessions of 10 s (server.release_session_seconds).
    let s = setup(10);
    let alices = print(&s, "desk", "alice", "alice-notes", 1);
    let mut alice = Visitor::new(s.port());
    assert_eq!(alice.sign_in("alice", ALICE_PW).status, 303);
    assert!(alice.get("/release").text().contains("alice-notes"));
    let csrf = alice.csrf();
    // Waiting for the end of the session (no page refreshes it).
    assert!(
        common::wait_until(LONG, || {
            let page = get(s.port(), "/release", &alice.cookie_header());
            page.text().contains("sign-in has ended")
        }),
        "the session did not end"
    );
    let r = alice.post(
        "/release/job",
        &format!("csrf={csrf}&queue=1&job={alices}&action=print"),
    );
    assert_eq!(r.status, 401, "{}", r.text());
    not_printed(&s, "desk", alices, "alice");
}

#[test]
fn jobs_not_released_in_time_show_to_their_owner_as_deleted() {
    let s = setup_with(900, "release_expire_seconds = 3\n");
    let id = print(&s, "desk", "alice", "alice-forgotten", 1);
    let mut alice = Visitor::new(s.port());
    assert_eq!(alice.sign_in("alice", ALICE_PW).status, 303);
    assert!(
        common::wait_until(LONG, || alice
            .get("/release")
            .text()
            .contains("Not released within 3 seconds; deleted unprinted")),
        "the expired job is not shown to its owner"
    );
    assert!(alice.get("/release").text().contains("alice-forgotten"));
    assert_eq!(finished(&s, "desk", id, "alice"), 7);
    assert_eq!(s.printed("desk", id), 0);
    // Nobody else sees it, nor is it waiting any more.
    let public = get(s.port(), "/release", &[]).text();
    assert!(
        !public.contains("alice-forgotten") && !public.contains(&format!("desk · Job {id}")),
        "{public}"
    );
}

#[test]
fn guessing_pins_and_passwords_hits_the_limits() {
    let s = setup(900);
    let port = s.port();
    let job = print(&s, "", "bob", "bob-pin-job", 1);
    let pin = assigned_pin(&s, job, "bob");
    let mut guesser = Visitor::new(port);
    let csrf = guesser.csrf();
    let guess = |g: &mut Visitor, job: i32, pin: &str| {
        g.post(
            "/release/pin",
            &format!("csrf={csrf}&queue=0&job={job}&pin={pin}"),
        )
    };
    // Per job: 5 wrong PINs, counted down on the page, then the job locks (the right PIN too).
    for left in (0..5).rev() {
        let r = guess(&mut guesser, job, &wrong_pin(&pin, left));
        assert_eq!(r.status, 403, "{}", r.text());
        if left > 0 {
            assert!(
                r.text().contains(&format!("{left} attempt")),
                "{left}: {}",
                r.text()
            );
        }
    }
    let r = guess(&mut guesser, job, &pin);
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.text().contains("Too many wrong PINs"), "{}", r.text());
    not_printed(&s, "", job, "bob");

    // Per client, across jobs: 20 wrong PINs in 10 minutes, then every PIN from it is refused.
    let jobs: Vec<(i32, String)> = (0..5)
        .map(|i| {
            let j = print(&s, "", "bob", &format!("job-{i}"), 1);
            (j, assigned_pin(&s, j, "bob"))
        })
        .collect();
    let mut refused_for_client = false;
    'guessing: for (j, pin) in &jobs {
        for n in 0..4 {
            let r = guess(&mut guesser, *j, &wrong_pin(pin, n));
            if r.status == 429 {
                refused_for_client = true;
                break 'guessing;
            }
            assert_eq!(r.status, 403, "{}", r.text());
        }
    }
    assert!(
        refused_for_client,
        "20 wrong PINs from one client were not limited"
    );
    let r = guess(&mut guesser, jobs[4].0, &jobs[4].1);
    assert_eq!(r.status, 429, "{}", r.text());
    for (j, _) in &jobs {
        not_printed(&s, "", *j, "bob");
    }

    // Passwords: the appliance's sign-in throttle (5 free failures, then lockouts that grow);
    // guessing on until the lockout is long enough to try the right password inside it.
    let mut password_guesser = Visitor::new(port);
    let mut failures = 0;
    assert!(
        common::wait_until(LONG, || {
            let r = password_guesser.sign_in("alice", &format!("guess-{failures}"));
            match r.status {
                401 => {
                    assert!(r.text().contains("Not signed in"), "{}", r.text());
                    failures += 1;
                    false
                }
                429 => r
                    .header("retry-after")
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|s| s >= 5),
                other => panic!("sign-in answered {other}: {}", r.text()),
            }
        }),
        "wrong passwords were not throttled"
    );
    assert!(failures >= 5, "throttled after {failures} failures");
    // The right password is refused too while locked out.
    assert_eq!(password_guesser.sign_in("alice", ALICE_PW).status, 429);
}

/// Nothing secret in the log: PINs and passwords typed on the page never appear in it.
#[test]
fn pins_and_passwords_stay_out_of_the_log() {
    let state = tempfile::tempdir().unwrap();
    add_user(state.path(), "alice", ALICE_PW, false);
    let config = state.path().join("printbridge.toml");
    std::fs::write(
        &config,
        "[dnssd]\nbackend = \"off\"\n\n[printer]\nrelease = \"pin\"\nrelease_pin_length = 8\n",
    )
    .unwrap();
    let log = state.path().join("serve.log");
    let app = common::Appliance::start_logging_to(
        state.path(),
        &["--config", config.to_str().unwrap()],
        &[("RUST_LOG", "debug,sqlx=warn,hyper=warn")],
        &log,
    );
    let s = Setup {
        _state: tempfile::tempdir().unwrap(),
        app,
    };
    let job = print(&s, "", "alice", "alice-doc", 1);
    let pin = assigned_pin(&s, job, "alice");
    let wrong = wrong_pin(&pin, 0);
    let mut v = Visitor::new(s.port());
    let csrf = v.csrf();
    let refused = v.post(
        "/release/pin",
        &format!("csrf={csrf}&queue=0&job={job}&pin={wrong}"),
    );
    assert_eq!(refused.status, 403);
    assert_eq!(
        v.post(
            "/release/pin",
            &format!("csrf={csrf}&queue=0&job={job}&pin={pin}")
        )
        .status,
        303
    );
    assert_eq!(v.sign_in("alice", "not-her-password-42").status, 401);
    assert_eq!(v.sign_in("alice", ALICE_PW).status, 303);
    printed_once(&s, "", job, "alice");
    let logged = std::fs::read_to_string(&log).unwrap();
    // 8-digit PINs: long enough not to turn up in a log line by chance.
    assert_eq!(pin.len(), 8);
    for secret in [
        pin.as_str(),
        wrong.as_str(),
        "not-her-password-42",
        ALICE_PW,
    ] {
        assert!(
            !logged.contains(secret),
            "{secret} is in the log:\n{logged}"
        );
    }
    assert!(logged.contains("release page"), "{logged}");
}

/// A cloud account signs in on the release page of a registered appliance, sees its job held on
/// the cloud's follow-me queue and prints it here: it prints once on this appliance's device,
/// and a replayed "Print here" is refused.
#[test]
fn cloud_jobs_print_here_after_a_cloud_sign_in() {
    use common::groups::{GroupOptions, Groups, ACCOUNT_A};
    let g = Groups::start(GroupOptions {
        postgresql: false,
        printers: 1,
    });
    let printer = g.printer(100);
    let marker = "release page cloud job";
    let cloud_port: u16 = g.base.rsplit(':').next().unwrap().parse().unwrap();
    let job = common::bridge::submit_to(
        cloud_port,
        "/ipp/follow-me",
        ACCOUNT_A.0,
        &common::bridge::pdf_doc(marker, 2),
        Some(&common::bridge::basic(ACCOUNT_A.0, ACCOUNT_A.1)),
    )
    .unwrap_or_else(|e| panic!("Print-Job to the follow-me queue: {e}"));

    let mut v = Visitor::at(printer.appliance.addr());
    let wrong = v.sign_in(ACCOUNT_A.0, "not the password at all");
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    let r = v.sign_in(ACCOUNT_A.0, ACCOUNT_A.1);
    assert_eq!(r.status, 303, "{}", r.text());
    let page = v.get("/release").text();
    assert!(page.contains("Your jobs in the cloud"), "{page}");
    assert!(page.contains(marker), "{page}");
    assert!(page.contains(&format!("id=\"cloud-{job}\"")), "{page}");
    assert_eq!(printer.printed_count(marker), 0);
    let csrf = csrf_token(&page);
    let form = format!("csrf={csrf}&queue=0&job={job}");
    let r = v.post("/release/cloud", &form);
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(
        common::wait_until(Duration::from_secs(180), || printer.printed_count(marker)
            == 1),
        "the cloud job did not print here"
    );
    let again = v.post("/release/cloud", &form);
    assert_eq!(again.status, 409, "{}", again.text());
    assert!(
        again.text().contains("already released"),
        "{}",
        again.text()
    );
    let page = v.get("/release").text();
    assert!(!page.contains(&format!("id=\"cloud-{job}\"")), "{page}");
    assert_eq!(
        v.post("/release/sign-out", &format!("csrf={csrf}")).status,
        303
    );
    assert_eq!(printer.printed_count(marker), 1);
}
