//! A private `cupsd` for tests that use CUPS as a real peer (as a client of the appliance, or as a
//! server to benchmark against).
//!
//! Never touches the system's CUPS: every file cupsd reads or writes (config, PPDs, spool, cache,
//! state, logs, printcap) lives in a temporary directory, it listens only on `127.0.0.1:<free port>`
//! with no domain socket, browsing and DNS-SD are off, and the client programs are always pointed at
//! it with `-h 127.0.0.1:PORT`.
//!
//! Running as root (CI runs as root on Debian 12, CUPS 2.4.2), cupsd
//! - refuses `User root` outright (fatal: "Will not use User root (UID=0) ... for security reasons"),
//! - refuses a `Group` that is also a `SystemGroup` (fatal: "Group and SystemGroup cannot use the same
//!   groups"),
//! - refuses an explicit `TempDir` that does not exist yet, while it creates the default
//!   `RequestRoot/tmp` itself with the right owner and mode,
//! - runs filters and backends as the unprivileged `User` (lp), so the temporary root must be
//!   traversable by lp: `tempfile` creates it 0700, which makes pdftopdf fail with "Job stopped due
//!   to filter errors". We chmod it 0755.
//!
//! The working combination is therefore `User lp`, `Group lp`, `SystemGroup root`, no `TempDir`, and
//! `Sandboxing relaxed` (a no-op on Linux, kept for parity with the brief). No authentication is
//! configured at all (`DefaultAuthType None`, no `Require`/`AuthType` in any location or policy), so
//! `lpadmin` works over TCP without a password or a local certificate.
//!
//! `lpadmin -m everywhere` in CUPS 2.4 returns at once: cupsd itself queries the printer (IPP
//! Get-Printer-Attributes with `requested-attributes=all,media-col-database`) in a background thread
//! and writes `ServerRoot/ppd/QUEUE.ppd`; [`PrivateCupsd::add_everywhere_queue`] waits for that.

use std::fmt;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{free_port, require_program, wait_until};

/// How long a client command (lpadmin, lp, lpstat) may run before it is killed.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// A `cupsd -f` process with its own configuration and state in a temporary directory.
/// Stopped (SIGTERM, then SIGKILL) and its directory removed on drop.
pub struct PrivateCupsd {
    child: Child,
    /// TCP port cupsd listens on, on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    lpadmin_bin: PathBuf,
    lp_bin: PathBuf,
    lpstat_bin: PathBuf,
    /// The last lpadmin/lp runs with their output, for [`diagnostics`](Self::diagnostics).
    history: Mutex<Vec<String>>,
}

/// How many lpadmin/lp runs [`PrivateCupsd::diagnostics`] reports.
const HISTORY: usize = 20;

/// What a client command did, printable for panic messages.
pub struct CmdOutput {
    pub cmdline: String,
    /// `None` when killed by a signal or by the timeout.
    pub code: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
}

impl fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match (self.timed_out, self.code) {
            (true, _) => "timed out (killed)".to_string(),
            (false, Some(c)) => format!("exit code {c}"),
            (false, None) => "killed by a signal".to_string(),
        };
        write!(
            f,
            "$ {}\n  -> {status}\n  stdout: {}\n  stderr: {}",
            self.cmdline,
            indent(self.stdout.trim_end()),
            indent(self.stderr.trim_end())
        )
    }
}

impl fmt::Debug for CmdOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn indent(s: &str) -> String {
    if s.is_empty() {
        "(empty)".into()
    } else {
        s.replace('\n', "\n          ")
    }
}

impl PrivateCupsd {
    /// Starts a private cupsd with the default test configuration (see the module docs).
    /// Fails the test, never skips, when cupsd or the client programs are missing.
    pub fn start() -> PrivateCupsd {
        Self::start_with_config("")
    }

    /// Like [`start`](Self::start), appending `extra_cupsd_conf` (cupsd.conf directives) to the
    /// generated cupsd.conf.
    pub fn start_with_config(extra_cupsd_conf: &str) -> PrivateCupsd {
        let cupsd_bin = require_program("cupsd", "cups");
        let lpadmin_bin = require_program("lpadmin", "cups-client");
        let lp_bin = require_program("lp", "cups-client");
        let lpstat_bin = require_program("lpstat", "cups-client");

        let dir = tempfile::Builder::new()
            .prefix("pb-cupsd-")
            .tempdir()
            .expect("temp dir for cupsd");
        // Filters and backends run as lp and must reach RequestRoot (see the module docs).
        set_mode(dir.path(), 0o755);
        for sub in ["etc", "spool", "cache", "state", "log"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create cupsd dir");
        }
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("etc/cups-files.conf"), cups_files_conf(&root))
            .expect("write cups-files.conf");

        // free_port() releases the port before cupsd binds it; retry on the rare lost race.
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            std::fs::write(
                root.join("etc/cupsd.conf"),
                cupsd_conf(port, extra_cupsd_conf),
            )
            .expect("write cupsd.conf");
            let _ = std::fs::remove_file(root.join("log/error_log"));
            let stdout = std::fs::File::create(root.join("log/cupsd.stdout")).unwrap();
            let stderr = std::fs::File::create(root.join("log/cupsd.stderr")).unwrap();
            let mut child = Command::new(&cupsd_bin)
                .arg("-f")
                .arg("-c")
                .arg(root.join("etc/cupsd.conf"))
                .arg("-s")
                .arg(root.join("etc/cups-files.conf"))
                .env_remove("CUPS_SERVER")
                .env_remove("CUPS_SERVERROOT")
                .env_remove("CUPS_STATEDIR")
                .env_remove("CUPS_CACHEDIR")
                .env_remove("CUPS_REQUESTROOT")
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", cupsd_bin.display()));

            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut exited = None;
            let ready = wait_until(Duration::from_secs(30), || {
                if let Ok(Some(status)) = child.try_wait() {
                    exited = Some(status);
                    return true;
                }
                TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            });
            if ready && exited.is_none() {
                return PrivateCupsd {
                    child,
                    port,
                    dir,
                    lpadmin_bin,
                    lp_bin,
                    lpstat_bin,
                    history: Mutex::new(Vec::new()),
                };
            }
            if exited.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            last_failure = format!(
                "cupsd on 127.0.0.1:{port} {}\n--- cupsd stderr ---\n{}\n--- error_log ---\n{}",
                match exited {
                    Some(s) => format!("exited early ({s})"),
                    None => "did not accept connections within 30 s".into(),
                },
                read_lossy(&root.join("log/cupsd.stderr")),
                tail(&read_lossy(&root.join("log/error_log")), 60),
            );
        }
        panic!("could not start a private cupsd (3 attempts); last failure:\n{last_failure}");
    }

    /// `127.0.0.1:PORT`, for `-h` and `CUPS_SERVER`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The temporary directory holding everything of this cupsd.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// cupsd's ServerRoot (cupsd.conf, printers.conf, ppd/).
    pub fn server_root(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    /// Where cupsd keeps the PPD of `queue`.
    pub fn ppd_path(&self, queue: &str) -> PathBuf {
        self.server_root().join("ppd").join(format!("{queue}.ppd"))
    }

    pub fn error_log_path(&self) -> PathBuf {
        self.dir.path().join("log/error_log")
    }

    /// The whole error_log (LogLevel debug), lossily decoded.
    pub fn error_log(&self) -> String {
        read_lossy(&self.error_log_path())
    }

    /// The last `lines` lines of the error_log.
    pub fn error_log_tail(&self, lines: usize) -> String {
        tail(&self.error_log(), lines)
    }

    /// A client command (lpadmin, lp, lpstat, ipptool, ...) pointed at this cupsd through the
    /// environment; callers still pass `-h` where the program takes it.
    pub fn client_command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("CUPS_SERVER", self.host()).stdin(Stdio::null());
        cmd
    }

    /// Runs `lpadmin -h 127.0.0.1:PORT ARGS...`.
    /// Runs `lpadmin -h 127.0.0.1:PORT ARGS...` (recorded for [`diagnostics`](Self::diagnostics)).
    pub fn lpadmin(&self, args: &[&str]) -> CmdOutput {
        self.run_client(&self.lpadmin_bin, args, true)
    }

    /// Runs `lp -h 127.0.0.1:PORT ARGS...` (recorded for [`diagnostics`](Self::diagnostics)).
    pub fn lp(&self, args: &[&str]) -> CmdOutput {
        self.run_client(&self.lp_bin, args, true)
    }

    /// Runs `lpstat -h 127.0.0.1:PORT ARGS...`.
    pub fn lpstat(&self, args: &[&str]) -> CmdOutput {
        self.run_client(&self.lpstat_bin, args, false)
    }

    fn run_client(&self, program: &Path, args: &[&str], record: bool) -> CmdOutput {
        let host = self.host();
        let mut full: Vec<&str> = vec!["-h", &host];
        full.extend_from_slice(args);
        let mut cmd = self.client_command(program);
        cmd.args(&full);
        let out = run_with_timeout(
            cmd,
            &format!("{} {}", program.display(), full.join(" ")),
            CLIENT_TIMEOUT,
        );
        if record {
            let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
            if history.len() >= HISTORY {
                history.remove(0);
            }
            history.push(out.to_string());
        }
        out
    }

    /// `lpadmin -p QUEUE -E -v DEVICE_URI -m everywhere`, then waits until cupsd has queried the
    /// printer and written the generated PPD. Returns the PPD's path, or everything useful for a
    /// panic message (lpadmin's output, cupsd's errors about the queue, the error_log tail).
    pub fn add_everywhere_queue(
        &self,
        queue: &str,
        device_uri: &str,
        timeout: Duration,
    ) -> Result<PathBuf, String> {
        let out = self.lpadmin(&["-p", queue, "-E", "-v", device_uri, "-m", "everywhere"]);
        if !out.success() {
            return Err(format!(
                "lpadmin failed (see lpadmin/lp runs below)\n{}",
                self.diagnostics()
            ));
        }
        let ppd = self.ppd_path(queue);
        let available = format!("Printer \"{queue}\" is now available.");
        // Errors of the background PPD thread look like `E [date] QUEUE: Unable to connect ...`.
        let error_prefix = format!("] {queue}: ");
        let mut errors = Vec::new();
        let done = wait_until(timeout, || {
            let log = self.error_log();
            errors = log
                .lines()
                .filter(|l| l.starts_with("E ") && l.contains(&error_prefix))
                .map(str::to_string)
                .collect();
            !errors.is_empty() || (ppd.is_file() && log.contains(&available))
        });
        if !errors.is_empty() {
            return Err(format!(
                "cupsd could not build an IPP Everywhere PPD for {device_uri}:\n{}\n\n{}",
                errors.join("\n"),
                self.diagnostics()
            ));
        }
        if !done {
            return Err(format!(
                "no PPD at {} within {timeout:?} after lpadmin -m everywhere\n{}",
                ppd.display(),
                self.diagnostics()
            ));
        }
        Ok(ppd)
    }

    /// `lp -d QUEUE [OPTIONS...] FILE`; returns the CUPS job id (e.g. `pb-1`).
    pub fn print_file(&self, queue: &str, file: &Path, options: &[&str]) -> Result<String, String> {
        let file = file.to_str().expect("UTF-8 path");
        let mut args = vec!["-d", queue];
        args.extend_from_slice(options);
        args.push(file);
        let out = self.lp(&args);
        // "request id is pb-1 (1 file(s))"
        let id = out
            .stdout
            .split_whitespace()
            .skip_while(|w| *w != "is")
            .nth(1)
            .map(str::to_string);
        match id {
            Some(id) if out.success() && id.starts_with(queue) => Ok(id),
            _ => Err(format!(
                "lp failed (see lpadmin/lp runs below)\n{}",
                self.diagnostics()
            )),
        }
    }

    /// Waits until cupsd logs `[Job N] Job completed.` for `job_id` (`QUEUE-N`); fails early when
    /// it logs that the job stopped, was aborted or canceled. Note that `lpstat -W completed` is no
    /// help here: it lists canceled and aborted jobs too.
    pub fn wait_job_completed(&self, job_id: &str, timeout: Duration) -> Result<(), String> {
        let n = job_id.rsplit('-').next().unwrap_or(job_id);
        let tag = format!("[Job {n}] Job ");
        let mut outcome: Option<Result<(), String>> = None;
        wait_until(timeout, || {
            for line in self.error_log().lines() {
                let Some(pos) = line.find(&tag) else { continue };
                let what = &line[pos + tag.len()..];
                if what.starts_with("completed") {
                    outcome = Some(Ok(()));
                } else if ["stopped", "aborted", "canceled"]
                    .iter()
                    .any(|w| what.starts_with(w))
                {
                    outcome = Some(Err(line.to_string()));
                }
            }
            outcome.is_some()
        });
        match outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(line)) => Err(format!(
                "CUPS job {job_id} did not complete: {line}\n{}",
                self.diagnostics()
            )),
            None => Err(format!(
                "CUPS job {job_id} not completed within {timeout:?}\n{}",
                self.diagnostics()
            )),
        }
    }

    /// The last lpadmin/lp runs (with stdout/stderr), queue and job states, and the error_log
    /// tail, for panic messages.
    pub fn diagnostics(&self) -> String {
        let history = self
            .history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n");
        let printers = self.lpstat(&["-l", "-p"]);
        let jobs = self.lpstat(&["-l", "-W", "all", "-o"]);
        format!(
            "--- lpadmin/lp runs ---\n{history}\n--- printers ---\n{printers}\n--- jobs ---\n{jobs}\n\
             --- cupsd stderr ---\n{}\n--- cupsd error_log (last 150 lines of {}) ---\n{}",
            read_lossy(&self.dir.path().join("log/cupsd.stderr")),
            self.error_log_path().display(),
            self.error_log_tail(150)
        )
    }

    /// Whether the cupsd process is still alive.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Requires a CUPS filter (e.g. `pdftopdf` from cups-filters) in cupsd's ServerBin; fails the
    /// test, never skips, saying how to install it.
    pub fn require_filter(filter: &str, debian_package: &str) -> PathBuf {
        for server_bin in ["/usr/lib/cups", "/usr/libexec/cups"] {
            let p = Path::new(server_bin).join("filter").join(filter);
            if p.is_file() {
                return p;
            }
        }
        panic!(
            "required CUPS filter `{filter}` not found in /usr/lib/cups/filter: install it with \
             `apt-get install -y {debian_package}` (scripts/test installs it automatically)"
        );
    }
}

impl Drop for PrivateCupsd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SIGTERM first so cupsd stops its filters and backends; SIGKILL if it lingers.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn cups_files_conf(root: &Path) -> String {
    let r = root.display();
    format!(
        "# Generated by tests/common/cupsd.rs: everything lives under {r}.\n\
         ServerRoot {r}/etc\n\
         RequestRoot {r}/spool\n\
         CacheDir {r}/cache\n\
         StateDir {r}/state\n\
         ErrorLog {r}/log/error_log\n\
         AccessLog {r}/log/access_log\n\
         PageLog {r}/log/page_log\n\
         Printcap {r}/printcap\n\
         # TempDir defaults to RequestRoot/tmp, which cupsd creates (an explicit one must exist).\n\
         # `User root` is fatal; Group must not be a SystemGroup. Filters/backends run as lp.\n\
         User lp\n\
         Group lp\n\
         SystemGroup root\n\
         Sandboxing relaxed\n"
    )
}

fn cupsd_conf(port: u16, extra: &str) -> String {
    format!(
        "# Generated by tests/common/cupsd.rs\n\
         LogLevel debug\n\
         MaxLogSize 0\n\
         Listen 127.0.0.1:{port}\n\
         Browsing No\n\
         BrowseLocalProtocols none\n\
         WebInterface No\n\
         DefaultAuthType None\n\
         ErrorPolicy abort-job\n\
         <Location />\n  Order allow,deny\n  Allow from 127.0.0.1\n</Location>\n\
         <Location /admin>\n  Order allow,deny\n  Allow from 127.0.0.1\n</Location>\n\
         <Policy default>\n  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n\
         {extra}\n"
    )
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs `cmd` with captured output, killing it after `timeout`.
fn run_with_timeout(mut cmd: Command, cmdline: &str, timeout: Duration) -> CmdOutput {
    let mut child = match cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => {
            return CmdOutput {
                cmdline: cmdline.into(),
                code: None,
                timed_out: false,
                stdout: String::new(),
                stderr: format!("failed to spawn: {e}"),
            }
        }
    };
    let out = super::child::read_in_background(child.stdout.take().unwrap());
    let err = super::child::read_in_background(child.stderr.take().unwrap());
    let ended = super::child::wait_or_kill(&mut child, timeout, Duration::from_millis(20));
    let (status, timed_out) = (ended.status, ended.timed_out);
    CmdOutput {
        cmdline: cmdline.into(),
        code: status.and_then(|s| s.code()),
        timed_out,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}
