//! A real SMTP server for tests: Debian's `python3 -m aiosmtpd` with the Mailbox (Maildir)
//! handler, offering and requiring STARTTLS with a certificate for "localhost" made here
//! (`smtp-cert.pem` in the given directory: point `[mail] ca_file` at it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_until};

/// Debian's interpreter: a python3 earlier on PATH (pyenv, venvs) lacks Debian's aiosmtpd.
pub const PYTHON: &str = "/usr/bin/python3";

pub struct Smtp {
    child: Child,
    pub port: u16,
    pub maildir: PathBuf,
    pub cert: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtp {
    pub fn start(dir: &Path) -> Smtp {
        let ok = Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "{PYTHON} cannot import aiosmtpd: install it with `apt-get install -y \
             python3-aiosmtpd` (scripts/test does)"
        );
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert_path = dir.join("smtp-cert.pem");
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(dir.join("smtp-key.pem"), cert.signing_key.serialize_pem()).unwrap();
        let maildir = dir.join("Maildir");
        let port = free_port();
        let child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--tlscert")
            .arg(&cert_path)
            .arg("--tlskey")
            .arg(dir.join("smtp-key.pem"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("smtp.log")).unwrap())
            .spawn()
            .expect("spawn aiosmtpd");
        let up = wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "aiosmtpd did not listen on {port}");
        Smtp {
            child,
            port,
            maildir,
            cert: cert_path,
        }
    }

    /// The `[mail]` section that sends through this server over required STARTTLS.
    pub fn mail_config(&self) -> String {
        format!(
            "[mail]\nsmtp_host = \"localhost\"\nsmtp_port = {}\ntls = \"starttls\"\n\
             ca_file = \"{}\"\nfrom = \"printbridge <print@example.com>\"\n",
            self.port,
            self.cert.display()
        )
    }

    /// Every delivered message, as text with quoted-printable undone, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut found = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(rd) = std::fs::read_dir(self.maildir.join(sub)) {
                for e in rd.flatten() {
                    let modified = e.metadata().and_then(|m| m.modified()).ok();
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    found.push((modified, e.file_name(), decode_qp(&text)));
                }
            }
        }
        found.sort();
        found.into_iter().map(|(_, _, t)| t).collect()
    }

    /// The messages whose To: header names `addr`.
    pub fn messages_to(&self, addr: &str) -> Vec<String> {
        self.messages()
            .into_iter()
            .filter(|m| {
                m.lines()
                    .any(|l| l.to_ascii_lowercase().starts_with("to:") && l.contains(addr))
            })
            .collect()
    }
}

/// A mail's text: quoted-printable soft line breaks and `=XX` escapes undone.
pub fn decode_qp(s: &str) -> String {
    let joined = s.replace("=\r\n", "").replace("=\n", "");
    let b = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
