//! Load for the cloud's Infrastructure Printers (a command, not a test; see docs/benchmarks.md):
//! N simulated INFRA Proxies, each with its own printer and output device, hold Get-Notifications
//! with notify-wait (PWG 5100.18 §6, RFC 3996) on one `printbridge cloud` while jobs are printed to
//! random printers. Reports the server's memory per held connection, the time from Print-Job's
//! answer to the Proxy's Fetch-Job answer (p50/p99), and jobs/s through the whole round trip
//! (Print-Job, notification, Get-Jobs fetchable, Fetch-Job, Acknowledge-Job, Fetch-Document,
//! Acknowledge-Document, Update-Job-Status completed).
//!
//! ```text
//! cargo build --release && cargo run --example cloud_proxies -- \
//!     --bin target/release/printbridge --proxies 10000 --jobs 500 [--database postgres://...]
//! ```

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use printbridge::codec::ipp::{
    encode_message, parse_message, tag, Attribute, Limits, Message, Value,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN: &str = "bench-admin@example.com";
const ADMIN_PASSWORD: &str = "bench admin password";
const USER: &str = "bench-user@example.com";
const USER_PASSWORD: &str = "bench user password";

struct Args {
    bin: String,
    proxies: usize,
    jobs: usize,
    concurrency: usize,
    database: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        bin: "target/release/printbridge".into(),
        proxies: 1000,
        jobs: 200,
        concurrency: 8,
        database: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--bin" => a.bin = v(),
            "--proxies" => a.proxies = v().parse().expect("--proxies N"),
            "--jobs" => a.jobs = v().parse().expect("--jobs N"),
            "--concurrency" => a.concurrency = v().parse().expect("--concurrency N"),
            "--database" => a.database = Some(v()),
            _ => panic!(
                "usage: cloud_proxies [--bin PATH] [--proxies N] [--jobs N] [--concurrency N] \
                 [--database URL]"
            ),
        }
    }
    a
}

// ---- a minimal HTTP/1.1 client (one request per connection) ---------------------------------------

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn field(&self, name: &str) -> String {
        let t = self.text();
        let key = format!("name=\"{name}\" value=\"");
        let start = t.find(&key).unwrap_or_else(|| panic!("no {name} in {t}")) + key.len();
        t[start..start + t[start..].find('"').unwrap()].to_string()
    }
}

async fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect(addr)
        .await
        .expect("connect to the cloud");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("send");
    s.write_all(body).await.expect("send body");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no response ({} bytes)", raw.len()));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..eol])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 || data.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[(eol + 4 + size).min(data.len())..];
    }
    out
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

const FORM: &str = "application/x-www-form-urlencoded";

/// A browser's cookies, as one Cookie header.
#[derive(Default)]
struct Jar(HashMap<String, String>);

impl Jar {
    fn take(&mut self, r: &Reply) {
        for (k, v) in &r.headers {
            if k == "set-cookie" {
                if let Some((n, val)) = v.split(';').next().and_then(|p| p.split_once('=')) {
                    self.0.insert(n.to_string(), val.to_string());
                }
            }
        }
    }
    fn header(&self) -> (&'static str, String) {
        let v: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        ("Cookie", v.join("; "))
    }
}

// ---- IPP ---------------------------------------------------------------------------------------------

fn request(code: u16, printer_uri: &str) -> Message {
    let mut m = Message::new((2, 0), code, 1);
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
        Value::Uri(printer_uri.into()),
    ));
    m
}

fn op(m: &mut Message, name: &str, v: Value) {
    m.group_mut(tag::OPERATION).push(Attribute::new(name, v));
}

async fn ipp(addr: &str, path: &str, auth: &str, m: &Message, doc: &[u8]) -> (Message, Vec<u8>) {
    let mut body = Vec::new();
    encode_message(m, &mut body);
    body.extend_from_slice(doc);
    let r = http(
        addr,
        "POST",
        path,
        &[
            ("Content-Type", "application/ipp".into()),
            ("Authorization", auth.to_string()),
        ],
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "HTTP {} for 0x{:04x}", r.status, m.code);
    let (msg, used) = parse_message(&r.body, &Limits::default()).expect("an IPP response");
    (msg, r.body[used..].to_vec())
}

fn int(m: &Message, group: u8, name: &str) -> Option<i32> {
    m.groups
        .iter()
        .filter(|g| g.tag == group)
        .find_map(|g| g.get(name))
        .and_then(|a| a.first())
        .and_then(Value::as_int)
}

// ---- the server --------------------------------------------------------------------------------------

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn cloud_cmd(a: &Args, data: &std::path::Path) -> Command {
    let mut c = Command::new(&a.bin);
    c.arg("cloud").arg("--data-dir").arg(data);
    if let Some(db) = &a.database {
        c.arg("--database").arg(db);
    }
    c.env("RUST_LOG", "warn");
    c
}

fn admin(a: &Args, data: &std::path::Path, args: &[&str], password: &str) {
    use std::io::Write;
    let mut child = cloud_cmd(a, data)
        .arg("admin")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run cloud admin");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    assert!(
        child.wait().unwrap().success(),
        "cloud admin {args:?} failed"
    );
}

fn start(a: &Args, data: &std::path::Path, config: &std::path::Path) -> (Child, String) {
    use std::io::BufRead;
    let mut child = cloud_cmd(a, data)
        .arg("--config")
        .arg(config)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start printbridge cloud");
    let out = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line).unwrap();
    let addr = line
        .split("listening on http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    (child, addr)
}

/// RFC 8628 end to end: the device asks, the administrator approves in the web form.
async fn device_token(addr: &str) -> String {
    let r = http(
        addr,
        "POST",
        "/oauth/device_authorization",
        &[("Content-Type", FORM.into())],
        &form(&[
            ("client_id", "bench"),
            ("device_name", "bench"),
            (
                "device_uuid",
                "urn:uuid:00000000-0000-4000-8000-00000000be0c",
            ),
            ("user_email", USER),
        ]),
    )
    .await;
    let code: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let mut jar = Jar::default();
    let page = http(addr, "GET", "/signin?next=/device", &[], b"").await;
    jar.take(&page);
    let r = http(
        addr,
        "POST",
        "/signin",
        &[("Content-Type", FORM.into()), jar.header()],
        &form(&[
            ("email", ADMIN),
            ("password", ADMIN_PASSWORD),
            ("csrf", &page.field("csrf")),
            ("next", "/device"),
        ]),
    )
    .await;
    assert_eq!(r.status, 303, "sign-in: {}", r.text());
    jar.take(&r);
    let user_code = code["user_code"].as_str().unwrap();
    let page = http(
        addr,
        "GET",
        &format!("/device?user_code={user_code}"),
        &[jar.header()],
        b"",
    )
    .await;
    let r = http(
        addr,
        "POST",
        "/device",
        &[("Content-Type", FORM.into()), jar.header()],
        &form(&[
            ("csrf", &page.field("csrf")),
            ("request", &page.field("request")),
            ("user_email", USER),
            ("decision", "approve"),
        ]),
    )
    .await;
    assert_eq!(r.status, 200, "approve: {}", r.text());
    let r = http(
        addr,
        "POST",
        "/oauth/token",
        &[("Content-Type", FORM.into())],
        &form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", code["device_code"].as_str().unwrap()),
            ("client_id", "bench"),
        ]),
    )
    .await;
    let t: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    t["access_token"]
        .as_str()
        .expect("access token")
        .to_string()
}

struct Printer {
    uri: String,
    path: String,
    od: String,
    sub: i32,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let a = args();
    // Every held poll is a socket here and in the server (which inherits the limit).
    let want = (a.proxies as u64) * 2 + 1024;
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
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    admin(
        &a,
        &data,
        &["create-org", "Bench", "--admin", ADMIN],
        ADMIN_PASSWORD,
    );
    admin(&a, &data, &["add-user", "Bench", USER], USER_PASSWORD);
    let config = dir.path().join("cloud.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nmax_connections = {}\n\n[limits]\ndevice_requests_per_client = 1000\n",
            a.proxies * 2 + 256
        ),
    )
    .unwrap();
    let (mut child, addr) = start(&a, &data, &config);
    let pid = child.id();
    let token = device_token(&addr).await;
    let bearer = format!("Bearer {token}");
    let basic = {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{USER_PASSWORD}"))
        )
    };

    // N printers (16 per registry call), an output device and a subscription each.
    let setup = Instant::now();
    let mut printers = Vec::with_capacity(a.proxies);
    for chunk in (0..a.proxies).collect::<Vec<_>>().chunks(16) {
        let list: Vec<serde_json::Value> = chunk
            .iter()
            .map(|i| {
                serde_json::json!({"uuid": format!("urn:uuid:00000000-0000-4000-8000-{i:012}"),
                    "name": format!("bench {i}"), "location": "", "make_and_model": "bench"})
            })
            .collect();
        let r = http(
            &addr,
            "POST",
            "/api/v1/printers",
            &[
                ("Authorization", bearer.clone()),
                ("Content-Type", "application/json".into()),
            ],
            serde_json::json!({ "printers": list })
                .to_string()
                .as_bytes(),
        )
        .await;
        assert_eq!(r.status, 200, "register: {}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        for p in v["printers"].as_array().unwrap() {
            let id = p["id"].as_str().unwrap();
            printers.push(Printer {
                uri: p["printer_uri"].as_str().unwrap().to_string(),
                path: format!("/ipp/print/{id}"),
                od: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
                sub: 0,
            });
        }
    }
    for p in printers.iter_mut() {
        let mut m = request(0x0049, &p.uri);
        op(&mut m, "output-device-uuid", Value::Uri(p.od.clone()));
        m.group_mut(tag::PRINTER).push(Attribute::set(
            "document-format-supported",
            vec![Value::MimeMediaType("application/pdf".into())],
        ));
        let (r, _) = ipp(&addr, &p.path, &bearer, &m, b"").await;
        assert_eq!(r.code, 0, "Update-Output-Device-Attributes: {r:?}");
        let mut m = request(0x0016, &p.uri);
        let g = m.group_mut(tag::SUBSCRIPTION);
        g.push(Attribute::new(
            "notify-pull-method",
            Value::Keyword("ippget".into()),
        ));
        g.push(Attribute::new(
            "notify-events",
            Value::Keyword("job-fetchable".into()),
        ));
        let (r, _) = ipp(&addr, &p.path, &bearer, &m, b"").await;
        p.sub = int(&r, tag::SUBSCRIPTION, "notify-subscription-id").expect("subscription");
    }
    eprintln!(
        "set up {} printers with output devices and subscriptions in {:.1?}",
        a.proxies,
        setup.elapsed()
    );

    let rss_before = rss_kb(pid);
    let printers: Arc<Vec<Printer>> = Arc::new(printers);
    let fetched = Arc::new(AtomicUsize::new(0));
    let polls = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, i32, Instant)>();
    // The Proxies: hold Get-Notifications; on an event, fetch and finish the job.
    for (i, _) in printers.iter().enumerate() {
        let (printers, addr, bearer, tx, fetched, polls) = (
            printers.clone(),
            addr.clone(),
            bearer.clone(),
            tx.clone(),
            fetched.clone(),
            polls.clone(),
        );
        tokio::spawn(async move {
            let p = &printers[i];
            let mut seq = 1;
            loop {
                let mut m = request(0x001C, &p.uri);
                op(&mut m, "notify-subscription-ids", Value::Integer(p.sub));
                op(&mut m, "notify-sequence-numbers", Value::Integer(seq));
                op(&mut m, "notify-wait", Value::Boolean(true));
                let (r, _) = ipp(&addr, &p.path, &bearer, &m, b"").await;
                polls.fetch_add(1, Ordering::Relaxed);
                let events = r
                    .groups
                    .iter()
                    .filter(|g| g.tag == tag::EVENT_NOTIFICATION)
                    .count();
                if events == 0 {
                    continue;
                }
                seq += events as i32;
                let mut m = request(0x000A, &p.uri);
                op(&mut m, "which-jobs", Value::Keyword("fetchable".into()));
                op(&mut m, "output-device-uuid", Value::Uri(p.od.clone()));
                let (r, _) = ipp(&addr, &p.path, &bearer, &m, b"").await;
                let jobs: Vec<i32> = r
                    .groups
                    .iter()
                    .filter(|g| g.tag == tag::JOB)
                    .filter_map(|g| {
                        g.get("job-id")
                            .and_then(|a| a.first())
                            .and_then(Value::as_int)
                    })
                    .collect();
                for job in jobs {
                    let call = |code: u16| {
                        let mut m = request(code, &p.uri);
                        op(&mut m, "job-id", Value::Integer(job));
                        op(&mut m, "output-device-uuid", Value::Uri(p.od.clone()));
                        if code == 0x0042 || code == 0x003F {
                            op(&mut m, "document-number", Value::Integer(1));
                        }
                        m
                    };
                    let (r, _) = ipp(&addr, &p.path, &bearer, &call(0x0043), b"").await;
                    let at = Instant::now();
                    if r.code != 0 {
                        continue;
                    }
                    fetched.fetch_add(1, Ordering::Relaxed);
                    let _ = tx.send((i, job, at));
                    ipp(&addr, &p.path, &bearer, &call(0x0041), b"").await;
                    ipp(&addr, &p.path, &bearer, &call(0x0042), b"").await;
                    ipp(&addr, &p.path, &bearer, &call(0x003F), b"").await;
                    let mut m = call(0x0048);
                    m.group_mut(tag::JOB)
                        .push(Attribute::new("output-device-job-state", Value::Enum(9)));
                    ipp(&addr, &p.path, &bearer, &m, b"").await;
                }
            }
        });
    }
    drop(tx);
    // Let every Proxy's poll arrive and be held.
    tokio::time::sleep(Duration::from_secs(3 + (a.proxies / 2000) as u64)).await;
    let rss_held = rss_kb(pid);

    // Jobs to random printers, `concurrency` at a time; latency Print-Job answer → Fetch-Job answer.
    let doc = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n".to_vec();
    let started = Instant::now();
    let submitted: Arc<tokio::sync::Mutex<HashMap<(usize, i32), Instant>>> = Arc::default();
    let next = Arc::new(AtomicUsize::new(0));
    let mut submitters = Vec::new();
    for _ in 0..a.concurrency.max(1) {
        let (printers, addr, basic, doc, submitted, next) = (
            printers.clone(),
            addr.clone(),
            basic.clone(),
            doc.clone(),
            submitted.clone(),
            next.clone(),
        );
        let jobs = a.jobs;
        submitters.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= jobs {
                    return;
                }
                let i = (n * 7919) % printers.len();
                let p = &printers[i];
                let mut m = request(0x0002, &p.uri);
                op(
                    &mut m,
                    "document-format",
                    Value::MimeMediaType("application/pdf".into()),
                );
                let (r, _) = ipp(&addr, &p.path, &basic, &m, &doc).await;
                let job = int(&r, tag::JOB, "job-id").expect("job-id");
                submitted.lock().await.insert((i, job), Instant::now());
            }
        }));
    }
    let mut latencies = Vec::with_capacity(a.jobs);
    let deadline = Instant::now() + Duration::from_secs(300);
    while latencies.len() < a.jobs && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some((i, job, at))) => {
                // The Proxy can be faster than the submitter's bookkeeping: wait for it.
                let t0 = loop {
                    if let Some(t) = submitted.lock().await.get(&(i, job)).copied() {
                        break t;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                };
                latencies.push(at.saturating_duration_since(t0));
            }
            _ => break,
        }
    }
    let elapsed = started.elapsed();
    for s in submitters {
        let _ = s.await;
    }
    let rss_after = rss_kb(pid);
    latencies.sort();
    println!(
        "printbridge cloud ({}), {} Proxies holding Get-Notifications, {} jobs, {} submitters",
        if a.database.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        a.proxies,
        a.jobs,
        a.concurrency
    );
    println!(
        "server RSS: {:.1} MB before the polls, {:.1} MB with them held ({:.1} KB per held \
         connection), {:.1} MB after the jobs",
        rss_before as f64 / 1024.0,
        rss_held as f64 / 1024.0,
        (rss_held.saturating_sub(rss_before)) as f64 / a.proxies.max(1) as f64,
        rss_after as f64 / 1024.0
    );
    println!(
        "Print-Job answered -> Fetch-Job answered: p50 {:.1?}, p99 {:.1?}, max {:.1?} ({} of {} jobs \
         fetched)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
        latencies.len(),
        a.jobs
    );
    println!(
        "round trip throughput: {:.1} jobs/s; {} Get-Notifications answered",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        polls.load(Ordering::Relaxed)
    );
    let _ = child.kill();
    let _ = child.wait();
    if latencies.len() < a.jobs {
        std::process::exit(1);
    }
}
