//! Headless Chromium (Debian's chromium) for tests: one-shot runs (`--dump-dom`, `--screenshot`)
//! and a page driven over the Chrome DevTools Protocol (`--remote-debugging-port`, with the
//! minimal WebSocket client below): navigate, evaluate JavaScript, answer HTTP sign-in prompts
//! through `Fetch.authRequired`, take screenshots.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

/// Debian's Chromium, or a failure saying how to install it.
pub fn chromium() -> PathBuf {
    super::require_program("chromium", "chromium")
}

/// `target/test-output/<name>`, created: where tests leave screenshots for people to look at.
pub fn output_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-output")
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The flags every Chromium run here uses, with a private profile in `profile`.
pub fn base_args(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// Runs Chromium to completion (for --dump-dom / --screenshot), killing it after a minute.
pub fn run_chromium(args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium())
        .args(base_args(profile.path()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match child.try_wait().unwrap() {
            Some(_) => break,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium {args:?} did not finish within 90 s");
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    reader.join().unwrap()
}

pub fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.len() > 1000 && b.starts_with(b"\x89PNG\r\n\x1a\n"))
}

pub struct Browser {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn launch() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium())
            .args(base_args(profile.path()))
            .arg("--remote-debugging-port=0")
            .arg("--remote-debugging-address=127.0.0.1")
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(rest) = line.split("DevTools listening on ws://127.0.0.1:").nth(1) {
                        let port: u16 = rest.split('/').next().unwrap().parse().unwrap();
                        let _ = tx.send(port);
                        sent = true;
                    }
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                panic!("chromium did not announce its DevTools port within 60 s");
            }
        };
        Browser {
            child,
            port,
            _profile: profile,
        }
    }

    /// The first page target (about:blank), connected.
    pub fn page(&mut self) -> Page {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let targets = devtools_targets(self.port);
            if let Some(ws) = targets.as_array().and_then(|t| {
                t.iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            }) {
                return Page {
                    ws: WebSocket::connect(ws),
                    next_id: 0,
                    events: VecDeque::new(),
                    credentials: None,
                    auth_prompts: 0,
                };
            }
            assert!(Instant::now() < deadline, "no page target in {targets}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn close(mut self, mut page: Page) {
        page.send("Browser.close", json!({}));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /json/list` from the DevTools HTTP endpoint (which keeps connections open, so the body is
/// read by its Content-Length). `Null` when it is not answering yet.
fn devtools_targets(port: u16) -> Value {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return Value::Null;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    if write!(
        s,
        "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .is_err()
    {
        return Value::Null;
    }
    let mut reader = BufReader::new(s);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return Value::Null;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return Value::Null;
    }
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

/// One page over CDP. Requests paused by `Fetch` are continued, and sign-in prompts answered
/// with `credentials`, while waiting for anything else.
pub struct Page {
    ws: WebSocket,
    next_id: u64,
    events: VecDeque<Value>,
    /// Answer to HTTP authentication prompts (user, password).
    pub credentials: Option<(String, String)>,
    /// How many prompts came.
    pub auth_prompts: u32,
}

impl Page {
    pub fn send(&mut self, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.ws
            .send(&json!({"id": id, "method": method, "params": params}).to_string());
        id
    }

    /// Reads one message; handles Fetch interception; returns it (events are also queued).
    pub fn pump(&mut self) -> Value {
        let msg: Value = serde_json::from_str(&self.ws.recv()).expect("CDP message is JSON");
        match msg["method"].as_str() {
            Some("Fetch.requestPaused") => {
                let id = msg["params"]["requestId"].clone();
                self.send("Fetch.continueRequest", json!({"requestId": id}));
            }
            Some("Fetch.authRequired") => {
                self.auth_prompts += 1;
                let id = msg["params"]["requestId"].clone();
                let response = match &self.credentials {
                    Some((u, p)) if self.auth_prompts <= 3 => {
                        json!({"response": "ProvideCredentials", "username": u, "password": p})
                    }
                    _ => json!({"response": "CancelAuth"}),
                };
                self.send(
                    "Fetch.continueWithAuth",
                    json!({"requestId": id, "authChallengeResponse": response}),
                );
            }
            Some(_) => self.events.push_back(msg.clone()),
            None => {}
        }
        msg
    }

    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params);
        loop {
            let msg = self.pump();
            if msg["id"].as_u64() == Some(id) {
                if let Some(e) = msg.get("error") {
                    panic!("CDP {method} failed: {e}");
                }
                return msg["result"].clone();
            }
        }
    }

    pub fn wait_for_load(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(i) = self
                .events
                .iter()
                .position(|e| e["method"] == "Page.loadEventFired")
            {
                self.events.drain(..=i);
                return;
            }
            assert!(Instant::now() < deadline, "page did not load within 30 s");
            self.pump();
        }
    }

    pub fn navigate(&mut self, url: &str) {
        self.events.clear();
        let r = self.call("Page.navigate", json!({"url": url}));
        assert!(
            r.get("errorText").is_none(),
            "navigation to {url} failed: {r}"
        );
        self.wait_for_load();
    }

    /// Evaluates a JavaScript expression in the page; its value as a string.
    pub fn eval(&mut self, expression: &str) -> String {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expression}: {e}");
        }
        match &r["result"]["value"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    pub fn screenshot(&mut self, path: &Path) {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .unwrap();
        std::fs::write(path, &png).unwrap();
        assert!(is_png(path));
        println!("screenshot: {}", path.display());
    }
}

/// Just enough of RFC 6455 for a DevTools client: text frames, masked when sent.
pub struct WebSocket {
    s: TcpStream,
}

impl WebSocket {
    pub fn connect(url: &str) -> WebSocket {
        let rest = url.strip_prefix("ws://").expect("ws:// URL");
        let (authority, path) = rest.split_at(rest.find('/').unwrap());
        let mut s = TcpStream::connect(authority).expect("connect to DevTools");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut key = [0u8; 16];
        getrandom::fill(&mut key).unwrap();
        let key = base64::engine::general_purpose::STANDARD.encode(key);
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        // Read the handshake answer byte by byte, so no frame byte is consumed with it.
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).expect("WebSocket handshake");
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "WebSocket handshake refused: {head}"
        );
        WebSocket { s }
    }

    pub fn send(&mut self, text: &str) {
        let payload = text.as_bytes();
        let mut frame = vec![0x81u8];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mut mask = [0u8; 4];
        getrandom::fill(&mut mask).unwrap();
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.s.write_all(&frame).expect("send to DevTools");
    }

    pub fn recv(&mut self) -> String {
        let mut message = Vec::new();
        loop {
            let mut h = [0u8; 2];
            self.s.read_exact(&mut h).expect("read from DevTools");
            let (fin, opcode) = (h[0] & 0x80 != 0, h[0] & 0x0f);
            let mut len = (h[1] & 0x7f) as u64;
            if len == 126 {
                let mut b = [0u8; 2];
                self.s.read_exact(&mut b).unwrap();
                len = u16::from_be_bytes(b) as u64;
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.s.read_exact(&mut b).unwrap();
                len = u64::from_be_bytes(b);
            }
            let mut mask = None;
            if h[1] & 0x80 != 0 {
                let mut m = [0u8; 4];
                self.s.read_exact(&mut m).unwrap();
                mask = Some(m);
            }
            let mut payload = vec![0u8; len as usize];
            self.s.read_exact(&mut payload).unwrap();
            if let Some(m) = mask {
                for (i, b) in payload.iter_mut().enumerate() {
                    *b ^= m[i % 4];
                }
            }
            match opcode {
                0x0..=0x2 => {
                    message.extend_from_slice(&payload);
                    if fin {
                        return String::from_utf8(message).expect("UTF-8 text frame");
                    }
                }
                0x8 => panic!("DevTools closed the WebSocket"),
                0x9 => {
                    // Ping: answer with a pong carrying the same data.
                    let mut frame = vec![0x8a, 0x80 | payload.len() as u8, 0, 0, 0, 0];
                    frame.extend_from_slice(&payload);
                    self.s.write_all(&frame).unwrap();
                }
                _ => {}
            }
        }
    }
}
