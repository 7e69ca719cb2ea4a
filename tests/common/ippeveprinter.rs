//! Debian's ippeveprinter as a downstream IPP Everywhere printer for tests: on a free loopback
//! port with its own D-Bus bus and spool directory (`-k` keeps job files), killed on drop; it can
//! be stopped, restarted on the same port, paused with signals and told it ran out of supplies.

use std::fs;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::dbus::DbusBus;

/// An `ippeveprinter` keeping its job files (`-k`) in its spool directory; can be stopped and
/// started again on the same port.
pub struct EvePrinter {
    child: Option<Child>,
    pub port: u16,
    /// The printer name ippeveprinter advertises.
    name: String,
    formats: String,
    /// More command-line options, e.g. `-2` for two-sided printing.
    extra: Vec<String>,
    spool: PathBuf,
    log: PathBuf,
    bus: DbusBus,
    pub dir: TempDir,
}

impl EvePrinter {
    /// Starts `ippeveprinter NAME` accepting `formats` (a comma-separated list of MIME types),
    /// with `extra` options before the name (e.g. `-2` for two-sided printing, `-c /bin/false` to
    /// make every job abort).
    pub fn start(name: &str, formats: &str, extra: &[&str]) -> EvePrinter {
        let dir = tempfile::tempdir().unwrap();
        let bus = DbusBus::start(&dir.path().join("dbus"));
        let mut eve = EvePrinter {
            child: None,
            port: 0,
            name: name.to_string(),
            formats: formats.to_string(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            spool: dir.path().join("spool-1"),
            log: dir.path().join("ippeveprinter-1.log"),
            bus,
            dir,
        };
        // The port is free when chosen but could be taken before ippeveprinter binds it: retry.
        for _ in 0..3 {
            eve.port = super::free_port();
            if eve.launch() {
                return eve;
            }
        }
        panic!("ippeveprinter did not start (3 attempts):\n{}", eve.log());
    }

    fn launch(&mut self) -> bool {
        let program = super::require_program("ippeveprinter", "cups-ipp-utils");
        fs::create_dir_all(&self.spool).unwrap();
        let log = fs::File::create(&self.log).unwrap();
        let mut child = Command::new(program)
            .args(["-r", "off", "-n", "localhost", "-p", &self.port.to_string()])
            .args(["-f", &self.formats, "-k", "-v"])
            .args(&self.extra)
            .arg("-d")
            .arg(&self.spool)
            .arg(&self.name)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus.address)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn ippeveprinter");
        let mut exited = false;
        let up = super::wait_until(Duration::from_secs(20), || {
            exited = exited || matches!(child.try_wait(), Ok(Some(_)));
            exited || TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
        if up && !exited {
            self.child = Some(child);
            return true;
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port, with a fresh spool directory and log.
    pub fn restart(&mut self, generation: u32) {
        self.stop();
        self.spool = self.dir.path().join(format!("spool-{generation}"));
        self.log = self
            .dir
            .path()
            .join(format!("ippeveprinter-{generation}.log"));
        // The port was just released; give the kernel a moment if it is slow to let go.
        assert!(
            super::wait_until(Duration::from_secs(20), || self.launch()),
            "ippeveprinter did not come back on port {}:\n{}",
            self.port,
            self.log()
        );
    }

    pub fn uri(&self) -> String {
        format!("ipp://127.0.0.1:{}/ipp/print", self.port)
    }

    /// Sends `signal` (STOP, CONT) to the running ippeveprinter.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("ippeveprinter running").id();
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{signal} {pid} failed");
    }

    /// Submits one of ippeveprinter's own web forms (GET /supplies, GET /media, which its status
    /// pages offer people to simulate a printer running out of something).
    pub fn web_form(&self, query: &str) {
        let program = super::require_program("curl", "curl");
        let url = format!("http://127.0.0.1:{}{query}", self.port);
        let out = Command::new(program)
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "20",
            ])
            .arg(&url)
            .output()
            .expect("run curl");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "200",
            "GET {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every file under the spool directory (ippeveprinter keeps documents there with `-k`).
    pub fn spooled(&self) -> Vec<PathBuf> {
        super::files_under(&self.spool)
    }

    /// Writes `contents` to a file `name` in the printer's temporary directory; its path.
    pub fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for EvePrinter {
    fn drop(&mut self) {
        self.stop();
    }
}
