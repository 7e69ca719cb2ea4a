//! TLS on the IPP port, tested against peers nobody here wrote: Debian's `ipptool` (CUPS 2.4),
//! `openssl s_client`/`x509`/`req`, and a private `cupsd` printing to an `ipps://` queue.
//!
//! What is covered (issue 3, TLS):
//! - ipptool's ipp-2.0.test over `ipps://` (TLS from the first byte), over `ipp://` with `-E`
//!   (RFC 2817 Upgrade), and over plain `ipp://`, all on the same port; a small suite checks which
//!   transport each run really used (printer-more-info is `https://` only over TLS) and that
//!   printer-uri-supported lists ipp:// and ipps:// in step with uri-security-supported none, tls;
//! - TLS 1.2 and 1.3 handshakes, the certificate verified for `localhost` and `127.0.0.1`; TLS 1.1
//!   and 1.0 refused by the server;
//! - the self-signed certificate: SANs, kept across restarts, the one presented on the wire;
//! - a configured certificate/key replaces it, and replacing the files is picked up without a
//!   restart (a certificate whose key has not arrived yet is not served);
//! - a client that asks for the Upgrade and never handshakes is dropped after the header timeout;
//! - CUPS adds an `ipps://` queue with `-m everywhere` and prints through it.
//!
//! Trusting the self-signed certificate (CUPS 2.4.2 with GnuTLS, as in Debian 12):
//! - `ipptool` needs nothing. libcups' client handshake (`_httpTLSStart` in cups/tls-gnutls.c)
//!   never verifies the server's certificate; trust is evaluated only by callers of
//!   `httpCredentialsGetTrust`, which are the `ipp` backend and testhttp, not ipptool. Nothing is
//!   configured for it and nothing in production is weakened.
//! - The `ipp` backend run by cupsd does evaluate trust, see [`CUPS_CLIENT_CONF`].
//!
//! A missing peer fails the test with the package to install; nothing is skipped.

mod common;

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::cupsd::PrivateCupsd;
use common::{require_program, wait_until, Appliance};

/// Debian's ipptool suite (package cups-ipp-utils), used in place.
const IPP_2_0_SUITE: &str = "/usr/share/cups/ipptool/ipp-2.0.test";

/// Tests that print documents (and so convert them) run one at a time: CI machines have two cores.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

// ---- ipptool -----------------------------------------------------------------------------------

#[test]
fn ipptool_ipp_2_0_passes_over_ipps() {
    let _serial = heavy();
    let state = tempfile::tempdir().unwrap();
    let app = Appliance::start(state.path(), &[]);
    let uri = format!("ipps://localhost:{}/ipp/print", app.port);
    check_transport(&uri, &[], Transport::Tls);
    ipp_2_0(&uri, &[]);
}

#[test]
fn ipptool_ipp_2_0_passes_over_http_upgrade_to_tls() {
    let _serial = heavy();
    let state = tempfile::tempdir().unwrap();
    let app = Appliance::start(state.path(), &[]);
    let uri = format!("ipp://localhost:{}/ipp/print", app.port);
    // -E: OPTIONS * with `Upgrade: TLS/1.2,TLS/1.1,TLS/1.0`, 101, handshake, then the 200 to OPTIONS
    // over TLS (RFC 2817); every request after that goes over TLS on the same connection.
    check_transport(&uri, &["-E"], Transport::Tls);
    ipp_2_0(&uri, &["-E"]);
}

#[test]
fn ipptool_ipp_2_0_still_passes_over_plain_ipp_on_the_same_port() {
    let _serial = heavy();
    let state = tempfile::tempdir().unwrap();
    let app = Appliance::start(state.path(), &[]);
    let uri = format!("ipp://localhost:{}/ipp/print", app.port);
    check_transport(&uri, &[], Transport::Plain);
    ipp_2_0(&uri, &[]);
    // And TLS on that same port right after, from the same server process.
    check_transport(
        &format!("ipps://localhost:{}/ipp/print", app.port),
        &[],
        Transport::Tls,
    );
}

/// Runs ipp-2.0.test (`-I -f document-a4.pdf -V 2.0`, as tests/ipptool_suites.rs does) and
/// requires no [FAIL] line.
fn ipp_2_0(uri: &str, extra: &[&str]) {
    assert!(
        Path::new(IPP_2_0_SUITE).is_file(),
        "{IPP_2_0_SUITE} is missing: install it with `apt-get install -y cups-ipp-utils` \
         (scripts/test installs it automatically)"
    );
    let mut args: Vec<&str> = extra.to_vec();
    args.extend([
        "-I",
        "-f",
        "document-a4.pdf",
        "-V",
        "2.0",
        uri,
        IPP_2_0_SUITE,
    ]);
    let run = common::ipptool::run(&args);
    assert!(
        run.failed == 0 && run.passed > 0,
        "ipptool -t {}: {} passed, {} failed\n{}",
        args.join(" "),
        run.passed,
        run.failed,
        run.output
    );
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Transport {
    Plain,
    Tls,
}

/// Asks for the URI attributes with a tiny ipptool suite and checks that the request really went
/// over `expected` (the appliance answers printer-more-info with `https://` only on a TLS
/// connection, so a silent fallback to plain HTTP is caught), and that printer-uri-supported lists
/// `ipp://` and `ipps://` with uri-security-supported `none` and `tls` at the same positions.
fn check_transport(uri: &str, extra: &[&str], expected: Transport) {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("uris.test");
    let web = match expected {
        Transport::Plain => "/^http:\\/\\//",
        Transport::Tls => "/^https:\\/\\//",
    };
    fs::write(
        &suite,
        format!(
            r#"{{
	NAME "printer-uri-supported, uri-security-supported and the transport"
	OPERATION Get-Printer-Attributes
	GROUP operation-attributes-tag
	ATTR charset attributes-charset utf-8
	ATTR naturalLanguage attributes-natural-language en
	ATTR uri printer-uri $uri
	ATTR keyword requested-attributes printer-uri-supported,uri-security-supported,uri-authentication-supported,printer-more-info
	STATUS successful-ok
	EXPECT printer-uri-supported OF-TYPE uri IN-GROUP printer-attributes-tag
	EXPECT uri-security-supported OF-TYPE keyword SAME-COUNT-AS printer-uri-supported
	EXPECT uri-authentication-supported OF-TYPE keyword SAME-COUNT-AS printer-uri-supported
	EXPECT printer-more-info OF-TYPE uri WITH-VALUE "{web}"
	DISPLAY printer-uri-supported
	DISPLAY uri-security-supported
	DISPLAY printer-more-info
}}
"#
        ),
    )
    .unwrap();
    let suite = suite.to_str().unwrap();
    let mut args: Vec<&str> = extra.to_vec();
    args.extend([uri, suite]);
    let run = common::ipptool::run(&args);
    let context = format!("ipptool -t {}\n{}", args.join(" "), run.output);
    assert!(
        run.failed == 0 && run.passed == 1,
        "the request did not go over {expected:?} as expected, or the URI attributes are wrong: {context}"
    );

    let values = |name: &str| -> Vec<String> {
        let prefix = format!("{name} (");
        run.output
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(&prefix))
            .and_then(|l| l.split_once(" = "))
            .map(|(_, v)| v.split(',').map(str::to_string).collect())
            .unwrap_or_else(|| panic!("ipptool did not display {name}: {context}"))
    };
    let uris = values("printer-uri-supported");
    let security = values("uri-security-supported");
    let host_port = uri.split('/').nth(2).unwrap();
    let pairs: Vec<(String, String)> = uris.into_iter().zip(security).collect();
    for (want_uri, want_security) in [
        (format!("ipp://{host_port}/ipp/print"), "none"),
        (format!("ipps://{host_port}/ipp/print"), "tls"),
    ] {
        assert!(
            pairs
                .iter()
                .any(|(u, s)| *u == want_uri && s == want_security),
            "printer-uri-supported/uri-security-supported lack the pair ({want_uri}, \
             {want_security}); got {pairs:?}\n{context}"
        );
    }
}

// ---- handshakes with openssl -------------------------------------------------------------------

#[test]
fn tls_1_2_and_1_3_handshakes_succeed_and_verify_for_localhost() {
    let state = tempfile::tempdir().unwrap();
    let app = Appliance::start(state.path(), &[]);
    let cert = self_signed_cert(&app);
    let ca = cert.to_str().unwrap();
    for (flag, protocol) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        // The appliance's own certificate as the only trust anchor, checked for the name the
        // client connects to: what a client that pinned it does.
        let out = s_client(
            app.port,
            &[
                flag,
                "-brief",
                "-CAfile",
                ca,
                "-verify_return_error",
                "-verify_hostname",
                "localhost",
            ],
        );
        assert!(
            out.success()
                && out.all().contains("CONNECTION ESTABLISHED")
                && out.all().contains(&format!("Protocol version: {protocol}"))
                && out.all().contains("Verification: OK"),
            "{protocol} handshake failed or negotiated something else:\n{out}"
        );
        assert!(
            out.all().contains("Verified peername: localhost"),
            "the certificate was not verified for localhost:\n{out}"
        );
    }
}

#[test]
fn tls_1_1_and_1_0_are_refused_by_the_server() {
    let state = tempfile::tempdir().unwrap();
    let app = Appliance::start(state.path(), &[]);
    for flag in ["-tls1_1", "-tls1"] {
        // SECLEVEL=0 makes OpenSSL 3 willing to offer these versions itself, so the refusal seen
        // here is the server's (a handshake_failure / protocol_version alert), not the client's.
        let out = s_client(
            app.port,
            &[flag, "-cipher", "DEFAULT:@SECLEVEL=0", "-brief"],
        );
        assert!(
            !out.success() && !out.all().contains("CONNECTION ESTABLISHED"),
            "{flag}: the server accepted an old protocol version:\n{out}"
        );
        assert!(
            out.all().contains("alert"),
            "{flag}: expected the server to refuse with a TLS alert:\n{out}"
        );
    }
    // The refusals did not hurt the server.
    let out = s_client(app.port, &["-tls1_3", "-brief"]);
    assert!(out.success(), "TLS 1.3 after the refusals:\n{out}");
}

// ---- the certificate ---------------------------------------------------------------------------

#[test]
fn self_signed_certificate_names_this_machine_and_survives_a_restart() {
    let state = tempfile::tempdir().unwrap();
    let mut app = Appliance::start(state.path(), &[]);
    let cert = self_signed_cert(&app);

    let sans = x509(&[
        "-noout",
        "-ext",
        "subjectAltName",
        "-in",
        cert.to_str().unwrap(),
    ]);
    let names: Vec<&str> = sans
        .lines()
        .skip(1)
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .collect();
    let mut wanted = vec![
        "DNS:localhost".to_string(),
        "IP Address:127.0.0.1".to_string(),
    ];
    if let Some(host) = host_name() {
        wanted.push(format!("DNS:{host}"));
        wanted.push(format!("DNS:{host}.local"));
    }
    for want in &wanted {
        assert!(
            names.iter().any(|n| n == want),
            "the self-signed certificate lacks {want} in its subjectAltName: {names:?}"
        );
    }
    // A client connecting to the address verifies it too (the IP SAN, not only a DNS name).
    let out = s_client(
        app.port,
        &[
            "-brief",
            "-CAfile",
            cert.to_str().unwrap(),
            "-verify_return_error",
            "-verify_ip",
            "127.0.0.1",
        ],
    );
    assert!(
        out.success() && out.all().contains("Verification: OK"),
        "the certificate does not verify for 127.0.0.1:\n{out}"
    );

    let on_disk = file_fingerprint(&cert);
    assert_eq!(
        presented_fingerprint(app.port),
        on_disk,
        "the server presents another certificate than {}",
        cert.display()
    );

    app.kill9();
    drop(app);
    let app = Appliance::start(state.path(), &[]);
    assert_eq!(
        file_fingerprint(&cert),
        on_disk,
        "the self-signed certificate was replaced on restart"
    );
    assert_eq!(
        presented_fingerprint(app.port),
        on_disk,
        "after a restart the server presents another certificate"
    );
}

#[test]
fn configured_certificate_is_served_and_replaced_on_disk_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let conf_dir = dir.path().join("conf");
    fs::create_dir_all(&conf_dir).unwrap();
    let cert = conf_dir.join("server.crt");
    let key = conf_dir.join("server.key");
    let staging = dir.path().join("staging");
    fs::create_dir_all(&staging).unwrap();

    let (c1, k1) = make_cert(&staging, "first");
    replace_file(&c1, &cert);
    replace_file(&k1, &key);
    let config = write_config(
        dir.path(),
        &format!(
            "[server]\ntls_certificate = {}\ntls_key = {}\n",
            toml_path(&cert),
            toml_path(&key)
        ),
    );
    let state = dir.path().join("state");
    let app = Appliance::start(&state, &["--config", config.to_str().unwrap()]);

    let first = file_fingerprint(&c1);
    assert_eq!(
        presented_fingerprint(app.port),
        first,
        "the configured certificate is not the one served"
    );
    assert!(
        !state.join("tls/certificate.pem").exists(),
        "a self-signed certificate was made although one is configured"
    );

    // Renewal: new files in place (each written atomically), picked up by the 5 s file check.
    let (c2, k2) = make_cert(&staging, "second");
    let second = file_fingerprint(&c2);
    replace_file(&k2, &key);
    replace_file(&c2, &cert);
    let picked_up = poll_fingerprint(app.port, &second, Duration::from_secs(15));
    assert_eq!(
        picked_up.as_deref(),
        Ok(second.as_str()),
        "the replaced certificate was not served within 15 s (first was {first})"
    );
    // Still a working server for IPP clients over TLS with the new certificate.
    let out = s_client(
        app.port,
        &[
            "-brief",
            "-CAfile",
            c2.to_str().unwrap(),
            "-verify_return_error",
        ],
    );
    assert!(
        out.success(),
        "handshake with the renewed certificate:\n{out}"
    );

    // Renewal done one file at a time, slower than the file check: while the new certificate
    // waits for its key, the server must keep serving the old, matching pair, never a certificate
    // with a key that does not belong to it (every handshake would fail).
    let (c3, k3) = make_cert(&staging, "third");
    let third = file_fingerprint(&c3);
    replace_file(&c3, &cert);
    std::thread::sleep(Duration::from_secs(11)); // at least two file checks
    let out = s_client(app.port, &["-brief", "-tls1_3"]);
    assert!(
        out.success() && out.all().contains("CONNECTION ESTABLISHED"),
        "handshakes fail while the new certificate waits for its key:\n{out}"
    );
    assert_eq!(
        presented_fingerprint(app.port),
        second,
        "a certificate was served without its key"
    );
    replace_file(&k3, &key);
    let picked_up = poll_fingerprint(app.port, &third, Duration::from_secs(15));
    assert_eq!(
        picked_up.as_deref(),
        Ok(third.as_str()),
        "the certificate was not served within 15 s of its key arriving"
    );
}

// ---- hostile clients ---------------------------------------------------------------------------

#[test]
fn a_client_that_asks_for_the_upgrade_and_never_handshakes_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[server]\nheader_timeout_seconds = 2\n");
    let state = dir.path().join("state");
    let app = Appliance::start(&state, &["--config", config.to_str().unwrap()]);

    let mut s = upgrade_and_stall(app.port);
    // Now say nothing. The server must give up on the handshake like on slow headers.
    let started = Instant::now();
    let mut rest = Vec::new();
    let res = s.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        res.is_ok() && waited < Duration::from_secs(15),
        "the server still held a connection that never started its TLS handshake after {waited:?} \
         (header_timeout_seconds = 2): {res:?}"
    );
}

#[test]
fn a_silent_client_gets_one_header_timeout_not_two() {
    // The first byte decides between TLS and plain HTTP; waiting for it already uses the header
    // timeout, so a client that never sends one must not get a second round from the HTTP layer.
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[server]\nheader_timeout_seconds = 3\n");
    let state = dir.path().join("state");
    let app = Appliance::start(&state, &["--config", config.to_str().unwrap()]);
    let mut s = TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut rest = Vec::new();
    let res = s.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        res.is_ok() && waited >= Duration::from_secs(2) && waited < Duration::from_millis(5500),
        "a client that sent nothing was closed after {waited:?} ({res:?}); expected about the \
         header timeout of 3 s"
    );
}

#[test]
fn connections_upgraded_to_tls_count_against_max_connections() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[server]\nmax_connections = 2\nheader_timeout_seconds = 3\n",
    );
    let state = dir.path().join("state");
    let app = Appliance::start(&state, &["--config", config.to_str().unwrap()]);

    // Two connections take both places, upgrade, and stall before the handshake.
    let started = Instant::now();
    let _held: Vec<TcpStream> = (0..2).map(|_| upgrade_and_stall(app.port)).collect();
    // A third client must wait for a place: hyper hands an upgraded connection to another task,
    // and that task still holds its connection's place until the header timeout drops it.
    let mut third = TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    third
        .write_all(b"GET /icons/none HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = third.read_to_end(&mut answer);
    let waited = started.elapsed();
    assert!(
        answer.starts_with(b"HTTP/1.1 "),
        "the third client was never served (after {waited:?}): {:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        waited >= Duration::from_millis(1500),
        "a third connection was served after {waited:?} while two upgraded connections held both \
         places (server.max_connections = 2): upgraded connections escape the limit"
    );
}

/// Opens a connection, asks for `Upgrade: TLS/1.x`, reads the 101, and sends nothing more.
fn upgrade_and_stall(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(
        b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
          Upgrade: TLS/1.2,TLS/1.1,TLS/1.0\r\n\r\n",
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!(
                "no complete 101 response ({other:?}): {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(
        head.starts_with("HTTP/1.1 101"),
        "Upgrade: TLS/1.x was not answered with 101: {head}"
    );
    s
}

// ---- CUPS --------------------------------------------------------------------------------------

/// `client.conf` for the private cupsd's ServerRoot, read by the `ipp` backend.
///
/// cupsd runs backends as `User lp` with `CUPS_SERVERROOT=<ServerRoot>` and `HOME=<TempDir>` in
/// their environment, so the backend reads `<ServerRoot>/client.conf` (then `$HOME/.cups/
/// client.conf`, absent here), never the system's /etc/cups. After connecting with TLS it calls
/// `httpCredentialsGetTrust(peer chain, host of the device URI)` and stops the queue with
/// `cups-pki-invalid`/`-changed`/`-expired` unless that says OK. For a certificate never seen
/// before that needs:
/// - `TrustOnFirstUse Yes`: with no stored credentials for the host and no site CA, trust the
///   first one and pin it in `$HOME/.cups/ssl/<host>.crt` (the test checks it was pinned);
///   later connections must present the same certificate (or one expiring later);
/// - `AllowAnyRoot Yes`: a one-certificate chain (self-signed) is not blocked.
///
/// Both are CUPS 2.4's built-in defaults; they are written out so a distribution default cannot
/// change the outcome. `ValidateCerts Yes` is *stricter* than the default: the certificate must
/// name the host in the device URI (`localhost`, in its subjectAltName), and
/// `AllowExpiredCerts No` keeps expired certificates out. cupsd's own Get-Printer-Attributes for
/// `-m everywhere` does not evaluate trust at all (like ipptool).
const CUPS_CLIENT_CONF: &str =
    "# Written by tests/tls.rs: how the ipp backend trusts the appliance.\n\
TrustOnFirstUse Yes\n\
AllowAnyRoot Yes\n\
ValidateCerts Yes\n\
AllowExpiredCerts No\n";

#[test]
fn cups_adds_an_ipps_everywhere_queue_and_prints_through_it() {
    let _serial = heavy();
    let cupsd = PrivateCupsd::start();
    PrivateCupsd::require_filter("pdftopdf", "cups-filters");
    fs::write(cupsd.server_root().join("client.conf"), CUPS_CLIENT_CONF).unwrap();

    let state = tempfile::tempdir().unwrap();
    let app = Appliance::start(state.path(), &[]);
    let device_uri = format!("ipps://localhost:{}/ipp/print", app.port);

    let queue = "pbtls";
    let ppd = cupsd
        .add_everywhere_queue(queue, &device_uri, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let ppd_text = String::from_utf8_lossy(&fs::read(&ppd).unwrap()).into_owned();
    assert!(
        ppd_text.contains("*cupsFilter2:") && ppd_text.contains("*PageSize"),
        "the PPD CUPS built over ipps:// lacks *cupsFilter2 or *PageSize:\n{ppd_text}"
    );

    let pdf = common::ipptool::test_docs().join("document-a4.pdf");
    print_and_wait(&cupsd, queue, &pdf, &app, &device_uri);

    // The backend trusted the appliance's certificate on first use and pinned it: proof that the
    // job went over TLS with this certificate, and that trust was evaluated (not bypassed).
    let pinned = find_named(cupsd.root(), "localhost.crt").unwrap_or_else(|| {
        panic!(
            "the ipp backend pinned no certificate for localhost under {}\n{}",
            cupsd.root().display(),
            cupsd.diagnostics()
        )
    });
    assert_eq!(
        file_fingerprint(&pinned),
        file_fingerprint(&self_signed_cert(&app)),
        "CUPS pinned another certificate ({}) than the appliance's",
        pinned.display()
    );
    // Right after evaluating trust the backend clears the cups-pki-* reasons (logged at debug
    // level as `update_reasons(attr=0(), s="-cups-pki-invalid,cups-pki-changed,...")`), and for an
    // untrusted certificate sets one (`STATE: +cups-pki-invalid`) and stops the queue.
    let log = cupsd.error_log();
    let pki: Vec<&str> = log.lines().filter(|l| l.contains("cups-pki-")).collect();
    assert!(
        pki.iter().any(|l| l.contains("-cups-pki-invalid")),
        "the ipp backend did not evaluate the certificate's trust (no `-cups-pki-invalid` in the \
         error_log):\n{}",
        cupsd.error_log_tail(80)
    );
    assert!(
        !pki.iter().any(|l| l.contains("+cups-pki-")),
        "CUPS reported a certificate problem:\n{}",
        pki.join("\n")
    );
}

/// The appliance's state directory is lost (SD card reflashed, `--state-dir` wiped) and it makes a
/// new self-signed certificate under the same name. CUPS 2.4 pinned the old one on first use and
/// accepts a different certificate only when it expires later than the pinned one ("New
/// credentials are older than stored credentials" otherwise, and the queue stops with
/// cups-pki-invalid). So a certificate made later must expire later.
#[test]
fn cups_keeps_printing_after_the_appliance_makes_a_new_self_signed_certificate() {
    let _serial = heavy();
    let cupsd = PrivateCupsd::start();
    PrivateCupsd::require_filter("pdftopdf", "cups-filters");
    fs::write(cupsd.server_root().join("client.conf"), CUPS_CLIENT_CONF).unwrap();
    let pdf = common::ipptool::test_docs().join("document-a4.pdf");
    let queue = "pbtls";

    let first_state = tempfile::tempdir().unwrap();
    let first = Appliance::start(first_state.path(), &[]);
    let uri = format!("ipps://localhost:{}/ipp/print", first.port);
    cupsd
        .add_everywhere_queue(queue, &uri, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    print_and_wait(&cupsd, queue, &pdf, &first, &uri);
    let first_cert = self_signed_cert(&first);
    drop(first);

    // X.509 times have one-second resolution.
    std::thread::sleep(Duration::from_millis(1100));
    let second_state = tempfile::tempdir().unwrap();
    let second = Appliance::start(second_state.path(), &[]);
    assert_ne!(
        file_fingerprint(&self_signed_cert(&second)),
        file_fingerprint(&first_cert),
        "a fresh state directory got the same certificate"
    );
    let uri = format!("ipps://localhost:{}/ipp/print", second.port);
    let out = cupsd.lpadmin(&["-p", queue, "-v", &uri]);
    assert!(out.success(), "{out}");
    print_and_wait(&cupsd, queue, &pdf, &second, &uri);
}

/// `lp` to `queue`, then waits for CUPS to report the job completed (failing early when the
/// backend stops the queue, e.g. with `cups-pki-invalid`) and for a PDF in the appliance's output.
fn print_and_wait(
    cupsd: &PrivateCupsd,
    queue: &str,
    pdf: &Path,
    app: &Appliance,
    device_uri: &str,
) {
    let before = files_under(&app.output_dir()).len();
    let job = cupsd
        .print_file(queue, pdf, &["-t", "tls-test"])
        .unwrap_or_else(|e| panic!("{e}"));
    // A backend that distrusts the certificate stops the *queue* (`Printer stopped due to backend
    // errors`, reason cups-pki-*), leaving the job pending: watch for that too, not only the job.
    let n = job.rsplit('-').next().unwrap_or(&job).to_string();
    let mut stopped = None;
    wait_until(Duration::from_secs(120), || {
        let log = cupsd.error_log();
        stopped = log
            .lines()
            .find(|l| {
                l.contains("+cups-pki-") || l.contains("Printer stopped due to backend errors")
            })
            .map(str::to_string);
        stopped.is_some() || log.contains(&format!("[Job {n}] Job completed."))
    });
    if let Some(line) = stopped {
        panic!(
            "CUPS stopped the queue printing to {device_uri}: {line}\n{}",
            cupsd.diagnostics()
        );
    }
    cupsd
        .wait_job_completed(&job, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("printing to {device_uri}: {e}"));
    let out_dir = app.output_dir();
    if !wait_until(Duration::from_secs(30), || {
        files_under(&out_dir).len() > before
            && files_under(&out_dir)
                .iter()
                .all(|p| fs::read(p).is_ok_and(|b| b.starts_with(b"%PDF-")))
    }) {
        panic!(
            "CUPS job {job} completed but no PDF arrived in {} (files: {:?})\n{}",
            out_dir.display(),
            files_under(&out_dir),
            cupsd.diagnostics()
        );
    }
}

// ---- helpers -----------------------------------------------------------------------------------

fn openssl() -> PathBuf {
    require_program("openssl", "openssl")
}

/// What a peer program did.
struct Out {
    cmdline: String,
    code: Option<i32>,
    timed_out: bool,
    stdout: String,
    stderr: String,
}

impl Out {
    fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ {}\n-> {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline,
            if self.timed_out {
                "timed out (killed)".to_string()
            } else {
                format!("exit code {:?}", self.code)
            },
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Runs `program args` with `stdin` as its input, killing it after `timeout`.
fn run(program: &Path, args: &[&str], stdin: &[u8], timeout: Duration) -> Out {
    let cmdline = format!("{} {}", program.display(), args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmdline}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = common::child::read_in_background(child.stdout.take().unwrap());
    let err = common::child::read_in_background(child.stderr.take().unwrap());
    let ended = common::child::wait_or_kill(&mut child, timeout, Duration::from_millis(20));
    let (status, timed_out) = (ended.status, ended.timed_out);
    let _ = writer.join();
    Out {
        cmdline,
        code: status.and_then(|s| s.code()),
        timed_out,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// `openssl s_client -connect 127.0.0.1:PORT -servername localhost ARGS` with an empty stdin
/// (it handshakes, prints, and quits at end of input).
fn s_client(port: u16, args: &[&str]) -> Out {
    let connect = format!("127.0.0.1:{port}");
    let mut all = vec!["s_client", "-connect", &connect, "-servername", "localhost"];
    all.extend_from_slice(args);
    run(&openssl(), &all, b"", Duration::from_secs(30))
}

fn x509(args: &[&str]) -> String {
    let mut all = vec!["x509"];
    all.extend_from_slice(args);
    let out = run(&openssl(), &all, b"", Duration::from_secs(30));
    assert!(out.success(), "{out}");
    out.stdout
}

/// SHA-256 fingerprint of a PEM certificate file, as openssl prints it (`AB:CD:...`).
fn file_fingerprint(path: &Path) -> String {
    let out = x509(&[
        "-noout",
        "-fingerprint",
        "-sha256",
        "-in",
        path.to_str().unwrap(),
    ]);
    parse_fingerprint(&out)
        .unwrap_or_else(|| panic!("no fingerprint for {}: {out}", path.display()))
}

fn parse_fingerprint(openssl_out: &str) -> Option<String> {
    openssl_out
        .lines()
        .find_map(|l| l.split_once("Fingerprint="))
        .map(|(_, f)| f.trim().to_string())
}

/// The SHA-256 fingerprint of the certificate the server presents in a TLS handshake.
fn try_presented_fingerprint(port: u16) -> Result<String, String> {
    let out = s_client(port, &[]);
    let text = out.stdout.clone();
    let begin = text.find("-----BEGIN CERTIFICATE-----");
    let end = text.find("-----END CERTIFICATE-----");
    let (Some(b), Some(e)) = (begin, end) else {
        return Err(format!("no server certificate in the handshake:\n{out}"));
    };
    let pem = &text[b..e + "-----END CERTIFICATE-----".len()];
    let fp = run(
        &openssl(),
        &["x509", "-noout", "-fingerprint", "-sha256"],
        format!("{pem}\n").as_bytes(),
        Duration::from_secs(30),
    );
    parse_fingerprint(&fp.stdout).ok_or_else(|| format!("{fp}"))
}

fn presented_fingerprint(port: u16) -> String {
    try_presented_fingerprint(port).unwrap_or_else(|e| panic!("{e}"))
}

/// Polls the presented certificate until it is `want` or `timeout` passes; the last one seen.
fn poll_fingerprint(port: u16, want: &str, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = try_presented_fingerprint(port);
        if got.as_deref() == Ok(want) || Instant::now() >= deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The self-signed certificate the appliance keeps in its state directory.
fn self_signed_cert(app: &Appliance) -> PathBuf {
    let p = app.state_dir.join("tls/certificate.pem");
    assert!(p.is_file(), "no self-signed certificate at {}", p.display());
    p
}

/// A new P-256 certificate/key pair for `localhost` and 127.0.0.1 in `dir`: (cert, key).
fn make_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let subject = format!("/CN={name}");
    let out = run(
        &openssl(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &subject,
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
        b"",
        Duration::from_secs(60),
    );
    assert!(out.success() && cert.is_file() && key.is_file(), "{out}");
    (cert, key)
}

/// Puts a copy of `src` at `dst` atomically (write a sibling, then rename), as a careful
/// certificate renewal tool does.
fn replace_file(src: &Path, dst: &Path) {
    let tmp = dst.with_extension("incoming");
    fs::copy(src, &tmp).unwrap();
    fs::rename(&tmp, dst).unwrap();
}

/// Writes `body` to `dir/printbridge.toml` for `serve --config`.
fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("printbridge.toml");
    fs::write(&path, body).unwrap();
    path
}

/// A path as a TOML basic string.
fn toml_path(p: &Path) -> String {
    let s = p.to_str().expect("UTF-8 path");
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// This machine's host name, first label, when it is one the appliance would put in its
/// certificate (the same rule as src/net/tls.rs).
fn host_name() -> Option<String> {
    let raw = fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = raw.trim().split('.').next()?.to_string();
    (!h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')).then_some(h)
}

/// The regular files under `dir` (sorted), skipping hidden and temporary ones.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part") {
                continue;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => files.push(e.path()),
                _ => {}
            }
        }
    }
    files.sort();
    files
}

/// A file called `name` anywhere under `dir` (hidden directories included).
fn find_named(dir: &Path, name: &str) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() && e.file_name() == name => return Some(e.path()),
                _ => {}
            }
        }
    }
    None
}

#[test]
fn toml_path_quotes_and_escapes() {
    assert_eq!(toml_path(Path::new("/tmp/a b")), "\"/tmp/a b\"");
    assert_eq!(toml_path(Path::new("/tmp/q\"\\")), "\"/tmp/q\\\"\\\\\"");
}
