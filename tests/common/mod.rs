//! Shared helpers for integration tests: start `printbridge serve` as a real process, find peers.
#![allow(dead_code)]

pub mod chromium;
pub mod cloud;
pub mod cupsd;
pub mod dbus;
pub mod ipptool;
pub mod postgres;
pub mod smtp;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `printbridge serve` process on a free loopback port, killed on drop.
pub struct Appliance {
    pub child: Child,
    /// e.g. `ipp://127.0.0.1:40123/ipp/print`
    pub uri: String,
    pub port: u16,
    pub state_dir: PathBuf,
}

impl Appliance {
    /// Starts `printbridge serve --listen 127.0.0.1:0 --state-dir DIR` plus `extra` arguments and
    /// waits for the "ready at ipp://..." line it prints on stdout.
    pub fn start(state_dir: &Path, extra: &[&str]) -> Appliance {
        Self::start_with_listen(state_dir, "127.0.0.1:0", extra)
    }

    pub fn start_with_listen(state_dir: &Path, listen: &str, extra: &[&str]) -> Appliance {
        let mut child = Command::new(env!("CARGO_BIN_EXE_printbridge"))
            .arg("serve")
            .arg("--listen")
            .arg(listen)
            .arg("--state-dir")
            .arg(state_dir)
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn printbridge serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(pos) = line.find("ipp://") {
                        let uri = line[pos..].split_whitespace().next().unwrap().to_string();
                        let _ = tx.send(uri);
                        sent = true;
                    }
                }
                println!("[printbridge stdout] {line}");
            }
        });
        let uri = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("printbridge serve did not print its printer URI within 60 s");
        let port = uri
            .trim_start_matches("ipp://")
            .split('/')
            .next()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .expect("port in printer URI");
        Appliance {
            child,
            uri,
            port,
            state_dir: state_dir.to_path_buf(),
        }
    }

    pub fn output_dir(&self) -> PathBuf {
        self.state_dir.join("output")
    }

    /// SIGKILL, no clean shutdown.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails the test (never skips) when an external program is missing, saying how to get it.
pub fn require_program(program: &str, debian_package: &str) -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
    {
        let p = Path::new(dir).join(program);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "required peer `{program}` not found: install it with `apt-get install -y {debian_package}` \
         (scripts/test installs it automatically)"
    );
}

/// Polls `cond` every 100 ms until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

/// A free TCP port on loopback (bound then released; good enough for starting peers like cupsd).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A small valid one-page PDF (A4, one line of Helvetica), with the xref offsets computed here.
pub fn one_page_pdf(text: &str) -> Vec<u8> {
    let escaped: String = text
        .chars()
        .flat_map(|c| match c {
            '(' | ')' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let content = format!("BT /F1 24 Tf 72 760 Td ({escaped}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] \
         /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
            .to_string(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ),
    ];
    let mut pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    let size = objects.len() + 1;
    pdf.extend_from_slice(format!("xref\n0 {size}\n0000000000 65535 f \n").as_bytes());
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    pdf
}
