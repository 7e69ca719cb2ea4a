//! The cloud's listener: `printbridge cloud --tls-self-signed` serves TLS and plain HTTP on one
//! port (checked with curl, trusting the certificate the server made, and with ipptool printing to
//! an Infrastructure Printer over ipps://), advertises https URLs,
//! drops clients that send nothing, and believes `X-Forwarded-For` only from a trusted proxy (seen
//! through the per-client limit on device authorization requests).

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::cloud::{start_cloud, start_cloud_with, write_config, Http};
use common::require_program;

fn authorize_from(http: &mut Http, forwarded_for: &str) -> u16 {
    let body = "client_id=printbridge-appliance&device_name=x&user_email=bob%40example.com";
    http.send(
        "POST",
        "/oauth/device_authorization",
        &[("X-Forwarded-For", forwarded_for)],
        Some("application/x-www-form-urlencoded"),
        body.as_bytes(),
    )
    .status
}

#[test]
fn tls_and_plain_http_share_the_port_and_slow_clients_are_dropped() {
    require_program("curl", "curl");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write_config(dir.path(), "[server]\nheader_timeout_seconds = 2\n");
    // --tls-self-signed on the command line, the rest from the file.
    let cloud = start_cloud_with(&data, None, Some(&config), &["--tls-self-signed"]);
    assert!(
        cloud.base.starts_with("https://127.0.0.1:"),
        "{}",
        cloud.base
    );
    let port = cloud.base.rsplit(':').next().unwrap().to_string();
    let cert = data.join("tls/certificate.pem");
    assert!(
        cert.is_file(),
        "no self-signed certificate in the data directory"
    );

    // curl over TLS, verifying the certificate (it names localhost).
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(&cert)
        .arg(format!(
            "https://localhost:{port}/.well-known/oauth-authorization-server"
        ))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl over TLS failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_str(&text).expect("metadata JSON");
    assert_eq!(
        meta["issuer"].as_str().unwrap(),
        format!("https://127.0.0.1:{port}"),
        "{meta}"
    );
    assert!(meta["device_authorization_endpoint"]
        .as_str()
        .unwrap()
        .starts_with("https://"));
    // Without trusting the certificate, curl refuses: it really is TLS with our certificate.
    let untrusted = Command::new("curl")
        .args(["-sS", "--fail"])
        .arg(format!(
            "https://localhost:{port}/.well-known/oauth-authorization-server"
        ))
        .output()
        .unwrap();
    assert!(!untrusted.status.success());

    // Plain HTTP on the same port.
    let mut plain = Http::new(&format!("http://127.0.0.1:{port}"));
    let r = plain.get("/.well-known/oauth-authorization-server");
    assert_eq!(r.status, 200, "{}", r.body);

    // A client that sends nothing is dropped after the header timeout; others are served.
    let mut idle = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let r = plain.get("/.well-known/oauth-authorization-server");
    assert_eq!(r.status, 200);
    let mut buf = [0u8; 16];
    let n = idle.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the silent connection was closed without a response");
}

#[test]
fn forwarded_for_counts_only_from_a_trusted_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write_config(
        dir.path(),
        "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n\n[limits]\ndevice_requests_per_client = 2\n",
    );
    let cloud = start_cloud(&data, None, Some(&config));
    let mut http = Http::new(&cloud.base);
    // Two clients behind the proxy (this test, on 127.0.0.1) have a limit each.
    assert_eq!(authorize_from(&mut http, "198.51.100.1"), 200);
    assert_eq!(authorize_from(&mut http, "198.51.100.1"), 200);
    assert_eq!(authorize_from(&mut http, "198.51.100.1"), 429);
    assert_eq!(authorize_from(&mut http, "198.51.100.2"), 200);
    // A forged left-hand entry does not give a fresh limit: the right-most hop counts.
    assert_eq!(authorize_from(&mut http, "203.0.113.9, 198.51.100.1"), 429);
    drop(cloud);

    // Without trusted proxies the header is ignored: all requests are 127.0.0.1's.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write_config(dir.path(), "[limits]\ndevice_requests_per_client = 2\n");
    let cloud = start_cloud(&data, None, Some(&config));
    let mut http = Http::new(&cloud.base);
    assert_eq!(authorize_from(&mut http, "198.51.100.1"), 200);
    assert_eq!(authorize_from(&mut http, "198.51.100.2"), 200);
    assert_eq!(authorize_from(&mut http, "198.51.100.3"), 429);
}

/// ipptool (CUPS' own TLS client) asks a cloud Infrastructure Printer for its attributes and
/// prints a job over ipps:// on the same port the plain-HTTP device flow used.
#[test]
fn ipptool_reaches_a_cloud_printer_over_ipps() {
    use common::cloud::{bootstrap_acme, register_device, register_printer, sign_in};
    const ADMIN: &str = "ann@example.com";
    const ADMIN_PASSWORD: &str = "correct horse battery staple";
    const BOB: &str = "bob@example.com";
    const BOB_PASSWORD: &str = "bobs-long-password";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    bootstrap_acme(&data, ADMIN, ADMIN_PASSWORD, BOB, BOB_PASSWORD);
    let config = write_config(dir.path(), "[device_authorization]\ninterval_seconds = 1\n");
    let cloud = start_cloud_with(&data, None, Some(&config), &["--tls-self-signed"]);
    let port = cloud.base.rsplit(':').next().unwrap().to_string();
    let plain = format!("http://127.0.0.1:{port}");
    let mut browser = Http::new(&plain);
    sign_in(&mut browser, ADMIN, ADMIN_PASSWORD);
    let token = register_device(
        &plain,
        &mut browser,
        "urn:uuid:9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        BOB,
    );
    let (id, _) = register_printer(
        &plain,
        &token,
        "urn:uuid:9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6e",
    );
    let uri = format!("ipps://bob%40example.com:{BOB_PASSWORD}@127.0.0.1:{port}/ipp/print/{id}");
    // Get-Printer-Attributes and Print-Job as bob, over TLS; the printer says it is reachable
    // by ipps:// too.
    let test = dir.path().join("over-ipps.test");
    std::fs::write(
        &test,
        "{\n NAME \"Get-Printer-Attributes over ipps\"\n OPERATION Get-Printer-Attributes\n \
         GROUP operation-attributes-tag\n ATTR charset attributes-charset utf-8\n \
         ATTR naturalLanguage attributes-natural-language en\n ATTR uri printer-uri $uri\n \
         STATUS successful-ok\n EXPECT printer-uri-supported WITH-VALUE \"/^ipps:/\"\n}\n\
         {\n NAME \"Print-Job over ipps\"\n OPERATION Print-Job\n \
         GROUP operation-attributes-tag\n ATTR charset attributes-charset utf-8\n \
         ATTR naturalLanguage attributes-natural-language en\n ATTR uri printer-uri $uri\n \
         ATTR name job-name \"over ipps\"\n \
         ATTR mimeMediaType document-format application/pdf\n FILE document-a4.pdf\n \
         STATUS successful-ok\n EXPECT job-id OF-TYPE integer COUNT 1\n}\n",
    )
    .unwrap();
    let run = common::ipptool::run(&[&uri, test.to_str().unwrap()]);
    assert!(
        run.failed == 0 && run.passed == 2,
        "ipptool over ipps://:\n{}",
        run.output
    );
}
