//! DNS-SD against independent peers, in a network namespace each test makes for itself.
//!
//! The lab: `ip netns add`, a veth pair with multicast on (`pb0` carries 169.254.77.1 and
//! fe80::7701; its peer `pb1` is up without addresses, so multicast sent on `pb0` is looped back to
//! every local socket), and a holder process that keeps a private mount namespace (a tmpfs on
//! /run/avahi-daemon, so this avahi-daemon's pid file and socket are its own, and nss-mdns inside
//! talks to it) and a private UTS namespace (host name `pbtest`). Inside run a private system bus
//! (dbus-daemon with a test policy on a socket in the temp dir, `DBUS_SYSTEM_BUS_ADDRESS`) and
//! avahi-daemon (`host-name=pb-avahi`, only `pb0`). Every command enters the holder's namespaces
//! with nsenter.
//!
//! Then `printbridge serve` runs with each backend in turn (Avahi over the private bus; the
//! embedded mdns-sd responder, with avahi-daemon as the independent browser beside it on UDP 5353)
//! and the checks use programs nobody here wrote: `avahi-browse -rptk` for every service type and
//! subtype, ipptool's Get-Printer-Attributes for the attributes the TXT keys mirror, and CUPS'
//! `ippfind`, whose URI (with the advertised `.local` host, resolved through nss-mdns) ipptool then
//! uses. With a `[[queue]]` beside the default queue, each queue is its own instance with its own
//! rp, UUID and TXT, and is renamed on its own in a conflict. Avahi and the system bus are also
//! stopped and started again under a running appliance, which must neither spin nor stop printing
//! nor ignore SIGTERM meanwhile. Needs root (CI is root); a missing program fails the test with the
//! package to install.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::dbus::DbusBus;
use common::{require_program, wait_until};

const ADDR4: &str = "169.254.77.1";
const ADDR6: &str = "fe80::7701";
/// The namespace's host name, which the embedded responder advertises.
const NS_HOST: &str = "pbtest.local";
/// avahi-daemon's host name, which services published through Avahi point to.
const AVAHI_HOST: &str = "pb-avahi.local";
const ADMIN_PASSWORD: &str = "dnssd-test-pw";
const GET_ATTRS: &str = "/usr/share/cups/ipptool/get-printer-attributes.test";

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// Runs `cmd`, killing it after `timeout`.
fn run(mut cmd: Command, timeout: Duration) -> Output {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let start = Instant::now();
    // Drain the pipes on threads so a chatty child never blocks.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs a host command that must succeed.
fn host(args: &[&str]) {
    let mut cmd = Command::new(args[0]);
    cmd.args(&args[1..]);
    let o = run(cmd, Duration::from_secs(30));
    assert!(o.status.success(), "{args:?} failed: {}", text(&o));
}

/// avahi-browse's parsable output escapes names as `\DDD` (decimal) and `\c`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.len() >= i + 4 && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let n: u32 = s[i + 1..i + 4].parse().unwrap();
            out.push(n as u8);
            i += 4;
        } else if b[i] == b'\\' && i + 1 < b.len() {
            out.push(b[i + 1]);
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The TXT strings of an avahi-browse line: `"k=v" "k2=v2"`, in avahi-browse's order.
fn txt_strings(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut inside = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (inside, c) {
            (false, '"') => inside = true,
            (true, '"') => {
                out.push(std::mem::take(&mut cur));
                inside = false;
            }
            (true, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (true, c) => cur.push(c),
            _ => {}
        }
    }
    out
}

/// One resolved service from `avahi-browse -rptk`.
#[derive(Debug, Clone)]
struct Resolved {
    proto: String,
    name: String,
    host: String,
    addr: String,
    port: u16,
    /// Our record's order (avahi-browse prints the strings last to first).
    txt: Vec<(String, String)>,
}

impl Resolved {
    fn get(&self, key: &str) -> Option<&str> {
        self.txt
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The attributes of an ipptool -tv run: `name (syntax) = value` lines.
fn attributes(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let l = l.trim();
            let (name, rest) = l.split_once(" (")?;
            let (_, value) = rest.split_once(") = ")?;
            if name.contains(' ') {
                return None;
            }
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> &'a str {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in the Get-Printer-Attributes response"))
}

/// A network namespace with a private bus and avahi-daemon; torn down on drop.
struct Lab {
    ns: String,
    dir: tempfile::TempDir,
    /// Keeps the private mount and UTS namespaces alive; commands enter them by its pid.
    holder: Option<Child>,
    /// The private system bus (a socket in `dir`, reachable from inside the namespaces); dropped
    /// after `daemons`, which are stopped first.
    bus: Option<DbusBus>,
    daemons: Vec<Child>,
}

impl Lab {
    fn new() -> Lab {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            panic!(
                "tests/dnssd.rs makes network namespaces (`ip netns add`) and must run as root, as \
                 CI does"
            );
        }
        for (program, package) in [
            ("ip", "iproute2"),
            ("nsenter", "util-linux"),
            ("unshare", "util-linux"),
            ("dbus-daemon", "dbus-daemon"),
            ("avahi-daemon", "avahi-daemon"),
            ("avahi-browse", "avahi-utils"),
            ("avahi-resolve-host-name", "avahi-utils"),
            ("ippfind", "cups-ipp-utils"),
            ("ipptool", "cups-ipp-utils"),
        ] {
            require_program(program, package);
        }
        let nss = fs::read_to_string("/etc/nsswitch.conf").unwrap_or_default();
        assert!(
            nss.lines()
                .any(|l| l.trim_start().starts_with("hosts:") && l.contains("mdns")),
            "the hosts line of /etc/nsswitch.conf has no mdns module, so `.local` names do not \
             resolve: install it with `apt-get install -y libnss-mdns` (scripts/test does)"
        );
        assert!(
            Path::new(GET_ATTRS).is_file(),
            "{GET_ATTRS} missing: apt-get install -y cups-ipp-utils"
        );

        let ns = format!(
            "pbdnssd{}-{}",
            std::process::id(),
            NEXT_LAB.fetch_add(1, Ordering::SeqCst)
        );
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "add", &ns]);
        let o = run(cmd, Duration::from_secs(30));
        assert!(
            o.status.success(),
            "cannot create network namespace {ns}: {}; the DNS-SD tests need root and a kernel \
             with network namespaces and veth",
            text(&o)
        );
        // From here on Drop removes the namespace.
        let dir = tempfile::tempdir().unwrap();
        let mut lab = Lab {
            ns,
            dir,
            holder: None,
            bus: None,
            daemons: Vec::new(),
        };
        lab.network();
        lab.start_holder();
        lab.start_bus_and_avahi();
        lab
    }

    fn network(&self) {
        let ns = self.ns.as_str();
        host(&[
            "ip", "-n", ns, "link", "add", "pb0", "type", "veth", "peer", "name", "pb1",
        ]);
        host(&["ip", "-n", ns, "link", "set", "pb0", "addrgenmode", "none"]);
        host(&["ip", "-n", ns, "link", "set", "pb1", "addrgenmode", "none"]);
        host(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        host(&["ip", "-n", ns, "link", "set", "pb1", "up"]);
        host(&[
            "ip",
            "-n",
            ns,
            "link",
            "set",
            "pb0",
            "multicast",
            "on",
            "up",
        ]);
        host(&[
            "ip",
            "-n",
            ns,
            "addr",
            "add",
            &format!("{ADDR4}/16"),
            "dev",
            "pb0",
        ]);
        host(&[
            "ip",
            "-n",
            ns,
            "-6",
            "addr",
            "add",
            &format!("{ADDR6}/64"),
            "dev",
            "pb0",
            "nodad",
        ]);
    }

    fn start_holder(&mut self) {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "unshare",
                "-m",
                "-u",
                "--propagation",
                "private",
            ])
            .args([
                "sh",
                "-c",
                "mkdir -p /run/avahi-daemon && mount -t tmpfs tmpfs /run/avahi-daemon && \
                 hostname pbtest && echo ready && exec sleep 86400",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the namespace holder");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the namespace holder did not start");
        self.holder = Some(child);
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `program` inside the lab's namespaces, on the private system bus.
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        let holder = self.holder.as_ref().expect("namespace holder").id();
        c.args(["-t", &holder.to_string(), "-n", "-m", "-u"])
            .arg(format!("--wd={}", self.dir.path().display()))
            .arg("--")
            .arg(program)
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
        if let Some(bus) = &self.bus {
            c.env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address);
        }
        c
    }

    fn start_bus_and_avahi(&mut self) {
        self.bus = Some(DbusBus::start(&self.path("dbus")));

        fs::write(
            self.path("avahi-daemon.conf"),
            "[server]\nhost-name=pb-avahi\nuse-ipv4=yes\nuse-ipv6=yes\nallow-interfaces=pb0\n\
             enable-dbus=yes\nratelimit-interval-usec=1000000\nratelimit-burst=1000\n\
             [wide-area]\nenable-wide-area=no\n\
             [publish]\npublish-hinfo=no\npublish-workstation=no\n",
        )
        .unwrap();
        let log = fs::File::create(self.path("avahi.log")).unwrap();
        let avahi = self
            .cmd("avahi-daemon")
            .args(["--no-drop-root", "--no-chroot", "--no-rlimits", "-f"])
            .arg(self.path("avahi-daemon.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn avahi-daemon");
        self.daemons.push(avahi);
        let ready = wait_until(Duration::from_secs(30), || {
            fs::read_to_string(self.path("avahi.log"))
                .unwrap_or_default()
                .contains("Server startup complete")
        });
        assert!(
            ready,
            "avahi-daemon did not start in the namespace:\n{}",
            fs::read_to_string(self.path("avahi.log")).unwrap_or_default()
        );
    }

    /// Starts `printbridge serve` with `backend` on `port` (IPv4 and IPv6 wildcards), state in
    /// `state`, with an administrator for Set-Printer-Attributes.
    fn start(&self, state: &str, backend: &str, port: u16) -> Running {
        self.start_with(state, backend, port, "")
    }

    /// [`Lab::start`] with `more` appended to the configuration file (e.g. `[[queue]]`s).
    fn start_with(&self, state: &str, backend: &str, port: u16, more: &str) -> Running {
        let state_dir = self.path(state);
        if !state_dir.join("users").exists() {
            let mut add = Command::new(env!("CARGO_BIN_EXE_printbridge"))
                .args(["user", "add", "admin", "--admin", "--state-dir"])
                .arg(&state_dir)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            writeln!(add.stdin.take().unwrap(), "{ADMIN_PASSWORD}").unwrap();
            assert!(add.wait().unwrap().success(), "printbridge user add failed");
        }
        let config = self.path(&format!("{state}.toml"));
        fs::write(
            &config,
            format!(
                "[printer]\nlocation = \"2nd floor\"\n\n[dnssd]\nbackend = \"{backend}\"\n\n{more}"
            ),
        )
        .unwrap();
        let n = fs::read_dir(self.dir.path()).unwrap().count();
        let log = self.path(&format!("{state}-{n}.log"));
        let file = fs::File::create(&log).unwrap();
        let child = self
            .cmd(env!("CARGO_BIN_EXE_printbridge"))
            .arg("serve")
            .arg("-c")
            .arg(&config)
            .args(["--listen", &format!("0.0.0.0:{port}")])
            .args(["--listen", &format!("[::]:{port}")])
            .arg("--state-dir")
            .arg(&state_dir)
            .env("RUST_LOG", "info,printbridge::dnssd=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("spawn printbridge serve");
        Running { child, log, port }
    }

    /// Waits for the appliance to log the name it was advertised under.
    fn advertised(&self, r: &Running) -> String {
        let mut name = None;
        let ok = wait_until(Duration::from_secs(30), || {
            let log = fs::read_to_string(&r.log).unwrap_or_default();
            name = log
                .lines()
                .rev()
                .filter_map(|l| l.split("DNS-SD: advertised as \"").nth(1))
                .find_map(|rest| rest.rsplit_once("\" on ").map(|(n, _)| n.to_string()));
            name.is_some()
        });
        assert!(
            ok,
            "the appliance was not advertised within 30 s:\n{}",
            r.log_text()
        );
        name.unwrap()
    }

    /// Waits until the appliance has logged that it was advertised under each of `want` (one
    /// name per queue), and returns every name it logged, sorted.
    fn advertised_names(&self, r: &Running, want: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let ok = wait_until(Duration::from_secs(30), || {
            let log = fs::read_to_string(&r.log).unwrap_or_default();
            names = log
                .lines()
                .filter_map(|l| l.split("DNS-SD: advertised as \"").nth(1))
                .filter_map(|rest| rest.rsplit_once("\" on ").map(|(n, _)| n.to_string()))
                .collect();
            names.sort();
            names.dedup();
            want.iter().all(|w| names.iter().any(|n| n == w))
        });
        assert!(
            ok,
            "the appliance was not advertised as {want:?} within 30 s (got {names:?}):\n{}",
            r.log_text()
        );
        names
    }

    /// `avahi-browse -rptk TYPE`: the resolved services.
    fn browse(&self, ty: &str) -> Vec<Resolved> {
        let mut cmd = self.cmd("avahi-browse");
        cmd.args(["-r", "-p", "-t", "-k", ty]);
        let o = run(cmd, Duration::from_secs(20));
        assert!(o.status.success(), "avahi-browse {ty} failed: {}", text(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.starts_with("=;"))
            .filter_map(|l| {
                let f: Vec<&str> = l.splitn(10, ';').collect();
                if f.len() < 10 {
                    return None;
                }
                let mut txt: Vec<(String, String)> = txt_strings(f[9])
                    .into_iter()
                    .map(|s| match s.split_once('=') {
                        Some((k, v)) => (k.to_string(), v.to_string()),
                        None => (s, String::new()),
                    })
                    .collect();
                txt.reverse();
                Some(Resolved {
                    proto: f[2].to_string(),
                    name: unescape(f[3]),
                    host: f[6].to_string(),
                    addr: f[7].to_string(),
                    port: f[8].parse().unwrap_or(u16::MAX),
                    txt,
                })
            })
            .collect()
    }

    /// Browses `ty` until `pred` holds for the results (20 s), returning them.
    fn browse_until(
        &self,
        ty: &str,
        what: &str,
        pred: impl Fn(&[Resolved]) -> bool,
    ) -> Vec<Resolved> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self.browse(ty);
            if pred(&found) {
                return found;
            }
            if Instant::now() > deadline {
                panic!("avahi-browse {ty}: {what} not seen within 20 s; last result: {found:#?}");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// [`Lab::browse_until`] for several types at once (each avahi-browse takes a second).
    fn browse_each_until(
        &self,
        types: &[&str],
        what: &str,
        pred: impl Fn(&[Resolved]) -> bool + Sync,
    ) -> Vec<Vec<Resolved>> {
        std::thread::scope(|s| {
            let handles: Vec<_> = types
                .iter()
                .map(|ty| s.spawn(|| self.browse_until(ty, what, &pred)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }

    /// `avahi-resolve-host-name FAMILY HOST` (FAMILY `-4` or `-6`): the address, retried for 20 s.
    fn resolve_host(&self, host: &str, family: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut cmd = self.cmd("avahi-resolve-host-name");
            cmd.args([family, host]);
            let o = run(cmd, Duration::from_secs(10));
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            if let Some(addr) = out.split_whitespace().nth(1) {
                return addr.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "avahi-resolve-host-name {family} {host} gave no address: {}",
                text(&o)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Get-Printer-Attributes through `uri` with ipptool, inside the lab.
    fn printer_attributes(&self, uri: &str) -> Vec<(String, String)> {
        let mut cmd = self.cmd("ipptool");
        cmd.args(["-tv", uri, GET_ATTRS]);
        let o = run(cmd, Duration::from_secs(30));
        let out = text(&o);
        assert!(
            o.status.success() && out.contains("[PASS]"),
            "ipptool Get-Printer-Attributes {uri} failed:\n{out}"
        );
        attributes(&out)
    }

    /// An IPP operation as the administrator, over loopback (where Basic authentication is
    /// accepted without TLS), with `printer_group` as printer attributes if not empty.
    fn admin_request(&self, port: u16, operation: &str, printer_group: &str) {
        let test = self.path(&format!("{operation}.test"));
        let group = if printer_group.is_empty() {
            String::new()
        } else {
            format!(" GROUP printer-attributes-tag\n {printer_group}\n")
        };
        fs::write(
            &test,
            format!(
                "{{\n NAME \"{operation}\"\n OPERATION {operation}\n \
                 GROUP operation-attributes-tag\n ATTR charset attributes-charset utf-8\n \
                 ATTR naturalLanguage attributes-natural-language en\n ATTR uri printer-uri $uri\n \
                 ATTR name requesting-user-name admin\n{group} STATUS successful-ok\n}}\n"
            ),
        )
        .unwrap();
        let mut cmd = self.cmd("ipptool");
        cmd.arg("-t")
            .arg(format!(
                "ipp://admin:{ADMIN_PASSWORD}@127.0.0.1:{port}/ipp/print"
            ))
            .arg(&test);
        let o = run(cmd, Duration::from_secs(30));
        assert!(
            o.status.success(),
            "{operation} {printer_group} failed:\n{}",
            text(&o)
        );
    }

    /// Set-Printer-Attributes of one text/name attribute.
    fn set_printer_attribute(&self, port: u16, syntax: &str, name: &str, value: &str) {
        self.admin_request(
            port,
            "Set-Printer-Attributes",
            &format!("ATTR {syntax} {name} \"{value}\""),
        );
    }

    /// Stops avahi-daemon as its service manager would (SIGTERM: it leaves the bus cleanly).
    fn stop_avahi(&mut self) {
        for mut d in self.daemons.drain(..) {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
            let stopped = wait_until(Duration::from_secs(10), || {
                d.try_wait().map(|s| s.is_some()).unwrap_or(true)
            });
            if !stopped {
                let _ = d.kill();
            }
            let _ = d.wait();
        }
    }

    /// Takes the system bus away at once (SIGKILL, as a crash or a container stop would): every
    /// client's connection closes.
    fn stop_bus(&mut self) {
        self.bus = None;
    }

    /// Prints a one-page PDF on the appliance at `port` with ipptool (over loopback, inside the
    /// lab) and waits until the job is completed.
    fn print_and_wait(&self, port: u16) {
        let pdf = self.path("page.pdf");
        fs::write(&pdf, common::one_page_pdf("while the bus is gone")).unwrap();
        let test = self.path("print-and-wait.test");
        fs::write(
            &test,
            "{\n NAME \"Print-Job\"\n OPERATION Print-Job\n GROUP operation-attributes-tag\n \
             ATTR charset attributes-charset utf-8\n \
             ATTR naturalLanguage attributes-natural-language en\n ATTR uri printer-uri $uri\n \
             ATTR name requesting-user-name dnssd-test\n \
             ATTR mimeMediaType document-format application/pdf\n FILE $filename\n \
             STATUS successful-ok\n EXPECT job-id\n}\n\
             {\n NAME \"Wait for the job\"\n OPERATION Get-Job-Attributes\n \
             GROUP operation-attributes-tag\n ATTR charset attributes-charset utf-8\n \
             ATTR naturalLanguage attributes-natural-language en\n ATTR uri printer-uri $uri\n \
             ATTR integer job-id $job-id\n STATUS successful-ok\n \
             EXPECT job-state WITH-VALUE >6 REPEAT-NO-MATCH\n}\n\
             {\n NAME \"The job completed\"\n OPERATION Get-Job-Attributes\n \
             GROUP operation-attributes-tag\n ATTR charset attributes-charset utf-8\n \
             ATTR naturalLanguage attributes-natural-language en\n ATTR uri printer-uri $uri\n \
             ATTR integer job-id $job-id\n STATUS successful-ok\n \
             EXPECT job-state WITH-VALUE 9\n}\n",
        )
        .unwrap();
        let mut cmd = self.cmd("ipptool");
        cmd.args(["-T", "30", "-t", "-f"])
            .arg(&pdf)
            .arg(format!("ipp://127.0.0.1:{port}/ipp/print"))
            .arg(&test);
        let o = run(cmd, Duration::from_secs(120));
        let out = text(&o);
        assert!(
            o.status.success() && out.contains("[PASS]") && !out.contains("[FAIL]"),
            "printing a job failed:\n{out}"
        );
    }

    /// Stops an appliance with SIGTERM (a clean shutdown) and waits for it.
    fn stop(&self, mut r: Running) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(r.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        loop {
            if let Some(s) = r.child.try_wait().unwrap() {
                assert!(
                    s.success(),
                    "printbridge exited with {s}:\n{}",
                    r.log_text()
                );
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "printbridge did not stop within 20 s of SIGTERM:\n{}",
                r.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for d in self.daemons.iter_mut().rev() {
            let _ = d.kill();
            let _ = d.wait();
        }
        if let Some(h) = self.holder.as_mut() {
            let _ = h.kill();
            let _ = h.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.ns])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A `printbridge serve` in the lab; killed on drop if still running.
struct Running {
    child: Child,
    log: PathBuf,
    port: u16,
}

impl Running {
    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The service types (and subtypes) every appliance shows, with the port each should carry.
fn every_service(port: u16) -> [(&'static str, u16); 9] {
    [
        ("_ipp._tcp", port),
        ("_print._sub._ipp._tcp", port),
        ("_universal._sub._ipp._tcp", port),
        ("_ipps._tcp", port),
        ("_print._sub._ipps._tcp", port),
        ("_universal._sub._ipps._tcp", port),
        ("_printer._tcp", 0),
        ("_http._tcp", port),
        ("_printer._sub._http._tcp", port),
    ]
}

fn named<'a>(found: &'a [Resolved], name: &str) -> Vec<&'a Resolved> {
    found.iter().filter(|r| r.name == name).collect()
}

fn both_families(found: &[Resolved], name: &str) -> bool {
    let n = named(found, name);
    n.iter().any(|r| r.proto == "IPv4") && n.iter().any(|r| r.proto == "IPv6")
}

/// Every TXT key equals the IPP attribute it mirrors.
fn check_mirror(r: &Resolved, attrs: &[(String, String)], tls: bool) {
    let ctx = format!("{} TXT {:?}", if tls { "_ipps" } else { "_ipp" }, r.txt);
    let uuid = attr(attrs, "printer-uuid");
    assert_eq!(
        Some(uuid.trim_start_matches("urn:uuid:")),
        r.get("UUID"),
        "{ctx}"
    );
    assert_eq!(
        Some(attr(attrs, "printer-more-info")),
        r.get("adminurl"),
        "{ctx}"
    );
    assert_eq!(
        Some(attr(attrs, "document-format-supported")),
        r.get("pdl"),
        "{ctx}"
    );
    assert_eq!(Some(attr(attrs, "urf-supported")), r.get("URF"), "{ctx}");
    assert!(!r.get("URF").unwrap_or("").is_empty(), "{ctx}");
    assert_eq!(
        Some(attr(attrs, "printer-location")),
        r.get("note"),
        "{ctx}"
    );
    let mm = attr(attrs, "printer-make-and-model");
    assert_eq!(Some(mm), r.get("ty"), "{ctx}");
    assert_eq!(Some(format!("({mm})").as_str()), r.get("product"), "{ctx}");
    assert_eq!(Some(attr(attrs, "printer-kind")), r.get("kind"), "{ctx}");
    let color = if attr(attrs, "color-supported") == "true" {
        "T"
    } else {
        "F"
    };
    assert_eq!(Some(color), r.get("Color"), "{ctx}");
    let duplex = if attr(attrs, "sides-supported").contains("two-sided") {
        "T"
    } else {
        "F"
    };
    assert_eq!(Some(duplex), r.get("Duplex"), "{ctx}");
    let rp = r.get("rp").expect("rp");
    assert!(!rp.starts_with('/'), "{ctx}");
    assert!(
        attr(attrs, "printer-uri-supported")
            .split(',')
            .any(|u| u.ends_with(&format!("/{rp}"))),
        "{ctx}"
    );
    let state = match attr(attrs, "printer-state") {
        "idle" => "3",
        "processing" => "4",
        _ => "5",
    };
    assert_eq!(Some(state), r.get("printer-state"), "{ctx}");
    assert_eq!(r.get("TLS"), if tls { Some("1.3") } else { None }, "{ctx}");
    assert!(
        r.get("air").is_none(),
        "printing needs no password here: {ctx}"
    );
    // txtvers comes first (RFC 6763 §6.7); no key has an empty value; every string fits.
    assert_eq!(
        r.txt.first().map(|(k, _)| k.as_str()),
        Some("txtvers"),
        "{ctx}"
    );
    for (k, v) in &r.txt {
        assert!(!v.is_empty(), "empty value for {k}: {ctx}");
        assert!(k.len() + 1 + v.len() <= 255, "{k} too long: {ctx}");
    }
    for key in [
        "qtotal",
        "priority",
        "PaperMax",
        "mopria-certified",
        "printer-type",
    ] {
        assert!(r.get(key).is_some(), "no {key}: {ctx}");
    }
}

/// Runs `ippfind` for `regtype` and Get-Printer-Attributes through every URI it returns.
fn ippfind_and_query(lab: &Lab, regtype: &str, name: &str, scheme: &str) {
    let mut cmd = lab.cmd("ippfind");
    cmd.args([
        "-T",
        "2",
        regtype,
        "--name",
        &format!("^{}$", regex_escape(name)),
    ])
    .args(["--print", "--exec", "ipptool", "-t", "{}", GET_ATTRS, ";"]);
    let o = run(cmd, Duration::from_secs(60));
    let out = text(&o);
    let uris: Vec<&str> = out.lines().filter(|l| l.contains("://")).collect();
    assert!(
        !uris.is_empty() && uris.iter().all(|u| u.starts_with(&format!("{scheme}://"))),
        "ippfind {regtype} found no {scheme}:// URI for {name}:\n{out}"
    );
    assert!(
        o.status.success() && out.contains("[PASS]") && !out.contains("[FAIL]"),
        "ippfind {regtype} --exec ipptool -t {{}} get-printer-attributes.test failed:\n{out}"
    );
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == ' ' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// One backend end to end: every service and subtype on IPv4 and IPv6, the host resolving to the
/// lab's addresses, the TXT keys mirroring IPP, ippfind, TXT following a location change, a new
/// name following printer-name, and nothing left after a clean shutdown.
fn publishes_and_mirrors(backend: &str, host: &str) {
    let lab = Lab::new();
    let port = 8631;
    let app = lab.start("a", backend, port);
    assert_eq!(lab.advertised(&app), "printbridge");
    assert!(
        app.log_text().contains(if backend == "avahi" {
            "publishing through Avahi"
        } else {
            "publishing with the embedded responder"
        }),
        "{}",
        app.log_text()
    );

    let services = every_service(port);
    let types: Vec<&str> = services.iter().map(|(t, _)| *t).collect();
    let all = lab.browse_each_until(&types, "printbridge on IPv4 and IPv6", |f| {
        both_families(f, "printbridge")
    });
    for ((ty, want_port), found) in services.into_iter().zip(all) {
        for r in named(&found, "printbridge") {
            assert_eq!(r.host, host, "{ty}: {r:?}");
            assert_eq!(r.port, want_port, "{ty}: {r:?}");
            // avahi-browse resolves with any address family (AVAHI_PROTO_UNSPEC), so a service
            // seen over IPv4 may come with the host's IPv6 address and the other way round.
            assert!(
                r.addr == ADDR4 || r.addr == ADDR6,
                "{ty}: {r:?} is not at this machine"
            );
        }
    }
    // The host name resolves to this machine, in each family.
    assert_eq!(lab.resolve_host(host, "-4"), ADDR4);
    assert_eq!(lab.resolve_host(host, "-6"), ADDR6);

    // TXT = IPP, asking through the advertised .local host (nss-mdns resolves it).
    let ipp = lab.browse("_ipp._tcp");
    let ipp = named(&ipp, "printbridge")[0].clone();
    let attrs = lab.printer_attributes(&format!("ipp://{host}:{port}/ipp/print"));
    check_mirror(&ipp, &attrs, false);
    let ipps = lab.browse("_ipps._tcp");
    let ipps = named(&ipps, "printbridge")[0].clone();
    let attrs_tls = lab.printer_attributes(&format!("ipps://{host}:{port}/ipp/print"));
    check_mirror(&ipps, &attrs_tls, true);
    let http = lab.browse("_http._tcp");
    assert_eq!(named(&http, "printbridge")[0].get("path"), Some("/"));
    let lpd = lab.browse("_printer._tcp");
    assert!(named(&lpd, "printbridge")[0]
        .txt
        .iter()
        .all(|(_, v)| !v.is_empty()));

    // CUPS' own resolver, and a request through the URI it builds.
    ippfind_and_query(&lab, "_ipp._tcp", "printbridge", "ipp");
    ippfind_and_query(&lab, "_ipps._tcp", "printbridge", "ipps");
    ippfind_and_query(&lab, "_ipp._tcp,_universal", "printbridge", "ipp");
    ippfind_and_query(&lab, "_ipp._tcp,_print", "printbridge", "ipp");

    // The TXT record follows printer-location (Set-Printer-Attributes).
    lab.set_printer_attribute(port, "text", "printer-location", "Room 7");
    lab.browse_each_until(
        &["_ipp._tcp", "_ipps._tcp", "_universal._sub._ipp._tcp"],
        "note=Room 7",
        |f| {
            named(f, "printbridge")
                .iter()
                .any(|r| r.get("note") == Some("Room 7"))
        },
    );
    let attrs = lab.printer_attributes(&format!("ipp://{host}:{port}/ipp/print"));
    let ipp = lab.browse("_ipp._tcp");
    check_mirror(named(&ipp, "printbridge")[0], &attrs, false);

    // ... and the printer's state: Pause-Printer makes it stopped (5), Resume-Printer idle (3).
    lab.admin_request(port, "Pause-Printer", "");
    lab.browse_each_until(&["_ipp._tcp", "_ipps._tcp"], "printer-state=5", |f| {
        named(f, "printbridge")
            .iter()
            .any(|r| r.get("printer-state") == Some("5"))
    });
    let attrs = lab.printer_attributes(&format!("ipp://{host}:{port}/ipp/print"));
    let ipp = lab.browse("_ipp._tcp");
    check_mirror(named(&ipp, "printbridge")[0], &attrs, false);
    lab.admin_request(port, "Resume-Printer", "");
    lab.browse_until("_ipp._tcp", "printer-state=3", |f| {
        named(f, "printbridge")
            .iter()
            .any(|r| r.get("printer-state") == Some("3"))
    });

    // A new printer-name is a new instance name, and the old one goes.
    lab.set_printer_attribute(port, "name", "printer-name", "Front desk");
    lab.browse_each_until(
        &[
            "_ipp._tcp",
            "_print._sub._ipp._tcp",
            "_universal._sub._ipp._tcp",
            "_printer._tcp",
        ],
        "Front desk instead of printbridge",
        |f| both_families(f, "Front desk") && named(f, "printbridge").is_empty(),
    );

    // A clean shutdown withdraws every service (goodbye packets / Avahi entry group freed).
    lab.stop(app);
    lab.browse_each_until(&types, "nothing left", |f| f.is_empty());
}

#[test]
fn avahi_backend_publishes_every_service_and_the_txt_mirrors_ipp() {
    publishes_and_mirrors("avahi", AVAHI_HOST);
}

#[test]
fn embedded_backend_publishes_every_service_and_the_txt_mirrors_ipp() {
    publishes_and_mirrors("embedded", NS_HOST);
}

/// Appliance A (backend `first`) has the name; B (`second`) comes up with the same name, must be
/// "printbridge (2)" on every service, and keeps that name when restarted after A is gone.
fn collision(first: &str, second: &str) {
    let lab = Lab::new();
    let a = lab.start("a", first, 8631);
    assert_eq!(lab.advertised(&a), "printbridge");
    let b = lab.start("b", second, 8632);
    assert_eq!(lab.advertised(&b), "printbridge (2)", "{}", b.log_text());
    let services = every_service(0);
    let types: Vec<&str> = services.iter().map(|(t, _)| *t).collect();
    let all = lab.browse_each_until(&types, "printbridge and printbridge (2)", |f| {
        both_families(f, "printbridge") && both_families(f, "printbridge (2)")
    });
    for (ty, found) in types.iter().zip(all) {
        if *ty != "_printer._tcp" {
            assert!(
                named(&found, "printbridge").iter().all(|r| r.port == 8631),
                "{found:#?}"
            );
            assert!(
                named(&found, "printbridge (2)")
                    .iter()
                    .all(|r| r.port == 8632),
                "{found:#?}"
            );
        }
    }

    // Name stability (Bonjour Printing 1.2.1 §7.3): with A gone, B still comes back as "(2)".
    lab.stop(b);
    lab.stop(a);
    lab.browse_until("_ipp._tcp", "nothing left", |f| f.is_empty());
    let b = lab.start("b", second, 8632);
    assert_eq!(lab.advertised(&b), "printbridge (2)", "{}", b.log_text());
    assert!(!b.log_text().contains("is taken"), "{}", b.log_text());
    let found = lab.browse_until("_ipp._tcp", "printbridge (2) alone", |f| {
        both_families(f, "printbridge (2)")
    });
    assert!(named(&found, "printbridge").is_empty(), "{found:#?}");
    assert!(named(&found, "printbridge (2)")
        .iter()
        .all(|r| r.port == b.port));

    // A third appliance on the same Avahi collides twice: once on the network with A's successor,
    // once on the host with B. (Only when B runs on Avahi.)
    if second == "avahi" {
        let a = lab.start("a", first, 8631);
        assert_eq!(lab.advertised(&a), "printbridge");
        let c = lab.start("c", "avahi", 8633);
        assert_eq!(lab.advertised(&c), "printbridge (3)", "{}", c.log_text());
        lab.browse_until("_universal._sub._ipp._tcp", "three printers", |f| {
            ["printbridge", "printbridge (2)", "printbridge (3)"]
                .iter()
                .all(|n| both_families(f, n))
        });
        lab.stop(c);
        lab.stop(a);
    }
    lab.stop(b);
}

#[test]
fn a_name_taken_on_the_network_becomes_name_2_with_avahi_and_stays() {
    collision("embedded", "avahi");
}

#[test]
fn a_name_taken_on_the_network_becomes_name_2_with_the_embedded_responder_and_stays() {
    collision("avahi", "embedded");
}

/// The extra queue of [`two_queues_are_two_instances`]: monochrome, one-sided, so its TXT differs
/// from the default queue's in more than its name.
const OFFICE_QUEUE: &str =
    "[[queue]]\nname = \"office\"\nlocation = \"Room 2\"\ncolor = false\nduplex = false\n";

/// Two queues (`[printer]` and a `[[queue]]` "office") are two instances, each with its own rp,
/// UUID, adminurl and capabilities in TXT, mirroring its own IPP attributes; a second appliance
/// with the same queues (on the other backend) takes "NAME (2)" for each instance; a clean
/// shutdown withdraws both.
fn two_queues_are_two_instances(backend: &str, host: &str, other: &str) {
    let lab = Lab::new();
    let port = 8631;
    let app = lab.start_with("a", backend, port, OFFICE_QUEUE);
    assert_eq!(
        lab.advertised_names(&app, &["office", "printbridge"]),
        ["office", "printbridge"],
        "{}",
        app.log_text()
    );

    let services = every_service(port);
    let types: Vec<&str> = services.iter().map(|(t, _)| *t).collect();
    let all = lab.browse_each_until(&types, "printbridge and office on IPv4 and IPv6", |f| {
        both_families(f, "printbridge") && both_families(f, "office")
    });
    for ((ty, want_port), found) in services.into_iter().zip(all) {
        for r in named(&found, "printbridge")
            .into_iter()
            .chain(named(&found, "office"))
        {
            assert_eq!(r.host, host, "{ty}: {r:?}");
            assert_eq!(r.port, want_port, "{ty}: {r:?}");
            // Any address family may come back for either browse protocol (see
            // publishes_and_mirrors): only that it is this machine is certain.
            assert!(
                r.addr == ADDR4 || r.addr == ADDR6,
                "{ty}: {r:?} is not at this machine"
            );
        }
    }

    // Each instance's TXT mirrors its own queue's attributes, asked at its own resource.
    let mut uuids = Vec::new();
    for (name, resource, rp, web, color) in [
        ("printbridge", "/ipp/print", "ipp/print", "/", "T"),
        (
            "office",
            "/ipp/print/office",
            "ipp/print/office",
            "/ipp/print/office",
            "F",
        ),
    ] {
        for (ty, scheme, tls) in [("_ipp._tcp", "ipp", false), ("_ipps._tcp", "ipps", true)] {
            let attrs = lab.printer_attributes(&format!("{scheme}://{host}:{port}{resource}"));
            let found = lab.browse(ty);
            let r = named(&found, name)
                .first()
                .copied()
                .cloned()
                .unwrap_or_else(|| panic!("{ty}: no {name} in {found:#?}"));
            check_mirror(&r, &attrs, tls);
            assert_eq!(r.get("rp"), Some(rp), "{ty} {name}: {r:?}");
            assert_eq!(r.get("Color"), Some(color), "{ty} {name}: {r:?}");
            let admin = format!(
                "{}://{host}:{port}{web}",
                if tls { "https" } else { "http" }
            );
            assert_eq!(
                r.get("adminurl"),
                Some(admin.as_str()),
                "{ty} {name}: {r:?}"
            );
            uuids.push(r.get("UUID").unwrap_or_default().to_string());
        }
        let http = lab.browse("_http._tcp");
        let page = named(&http, name);
        assert!(
            !page.is_empty() && page.iter().all(|r| r.get("path") == Some(web)),
            "_http._tcp {name}: {http:#?}"
        );
    }
    // _ipp and _ipps of one queue carry its UUID; the two queues' differ.
    assert_eq!(uuids[0], uuids[1], "{uuids:?}");
    assert_eq!(uuids[2], uuids[3], "{uuids:?}");
    assert_ne!(uuids[0], uuids[2], "{uuids:?}");

    // Another appliance with the same queues: each of its instances is renamed on its own.
    let b = lab.start_with("b", other, 8632, OFFICE_QUEUE);
    lab.advertised_names(&b, &["office (2)", "printbridge (2)"]);
    lab.browse_until("_ipp._tcp", "four instances", |f| {
        ["printbridge", "office", "printbridge (2)", "office (2)"]
            .iter()
            .all(|n| !named(f, n).is_empty())
    });
    lab.stop(b);

    // A clean shutdown withdraws every instance.
    lab.stop(app);
    lab.browse_each_until(&types, "nothing left", |f| f.is_empty());
}

#[test]
fn two_queues_are_two_instances_with_avahi() {
    two_queues_are_two_instances("avahi", AVAHI_HOST, "embedded");
}

#[test]
fn two_queues_are_two_instances_with_the_embedded_responder() {
    two_queues_are_two_instances("embedded", NS_HOST, "avahi");
}

/// CPU time (user + system, in clock ticks) that process `pid` has used, from /proc/PID/stat.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/stat: {e}"));
    // The command name (field 2) may hold spaces and parentheses; the fields after its last
    // ')' start at field 3 (state), so utime (14) and stime (15) are the 12th and 13th.
    let rest = &stat[stat.rfind(')').expect("comm in /proc/PID/stat") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// The share of one core that `pid` used over about `span` (CPU time over elapsed time: a
/// bound on the work done, whatever the machine's speed).
fn cpu_share(pid: u32, span: Duration) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    std::thread::sleep(span);
    let (t1, c1) = (Instant::now(), cpu_ticks(pid));
    (c1 - c0) as f64 / ticks_per_second / (t1 - t0).as_secs_f64()
}

/// How many times `needle` is in the appliance's log.
fn count_in_log(r: &Running, needle: &str) -> usize {
    r.log_text().matches(needle).count()
}

/// Issue 11: with DNS-SD through Avahi, Avahi stops and then the system bus itself. The
/// appliance must not spin (it used to burn a core in a loop over the ended signal streams,
/// stop answering and ignore SIGTERM): it stays under 5% of a core, goes on printing, publishes
/// again once the bus and Avahi are back, and stops promptly on SIGTERM while the bus is gone.
#[test]
fn losing_the_system_bus_neither_spins_nor_blocks_printing_or_shutdown() {
    const LOST: &str = "DNS-SD: lost Avahi";
    const ADVERTISED: &str = "DNS-SD: advertised as \"printbridge\"";
    let mut lab = Lab::new();
    let port = 8631;
    let app = lab.start("a", "avahi", port);
    assert_eq!(lab.advertised(&app), "printbridge");
    let pid = app.child.id();
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim(),
        "printbridge",
        "the measured process is not the appliance"
    );

    // Avahi goes first (already handled before), then the bus.
    lab.stop_avahi();
    assert!(
        wait_until(Duration::from_secs(20), || app
            .log_text()
            .contains("Avahi left the system bus")),
        "the appliance did not notice Avahi leaving:\n{}",
        app.log_text()
    );
    lab.stop_bus();
    // Give a spinning process time to show it: the measurement starts once the loss is logged,
    // or after 5 s if it never is (and then fails below).
    wait_until(Duration::from_secs(5), || count_in_log(&app, LOST) >= 1);
    let share = cpu_share(pid, Duration::from_secs(5));
    assert!(
        share < 0.05,
        "with the system bus gone the appliance used {:.0}% of a core:\n{}",
        share * 100.0,
        app.log_text()
    );
    assert!(
        count_in_log(&app, LOST) >= 1,
        "the appliance did not notice the bus going:\n{}",
        app.log_text()
    );

    // It goes on answering and printing.
    lab.print_and_wait(port);

    // The bus and Avahi come back: it publishes again by itself.
    let before = count_in_log(&app, ADVERTISED);
    lab.start_bus_and_avahi();
    assert!(
        wait_until(Duration::from_secs(60), || count_in_log(&app, ADVERTISED)
            > before),
        "the appliance did not publish again after the bus and Avahi came back:\n{}",
        app.log_text()
    );
    lab.browse_until("_ipp._tcp", "printbridge back", |f| {
        both_families(f, "printbridge")
    });

    // The bus goes while the services are published; SIGTERM then stops the appliance (`stop`
    // fails the test if it is still running 20 s later or exits unsuccessfully).
    lab.stop_bus();
    assert!(
        wait_until(Duration::from_secs(20), || count_in_log(&app, LOST) >= 2),
        "the appliance did not notice the bus going a second time:\n{}",
        app.log_text()
    );
    let share = cpu_share(pid, Duration::from_secs(3));
    assert!(
        share < 0.05,
        "with the system bus gone again the appliance used {:.0}% of a core:\n{}",
        share * 100.0,
        app.log_text()
    );
    lab.stop(app);
}
