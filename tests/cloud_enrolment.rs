//! Enrolment mail end to end (registration spec A6): an administrator approves a device for an
//! address the cloud does not know; a real SMTP server (Debian's python3-aiosmtpd, offering and
//! requiring STARTTLS with a certificate made here) receives the mail; the link in it is followed
//! to set a password, and only then does the device's user list show the user enrolled. Also the
//! per-address mail limit.

mod common;

use std::time::Duration;

use common::cloud::{
    admin, approve, device_info, redeem, request_code, sign_in, start_cloud, write_config, Http,
};
use common::smtp::Smtp;
use common::wait_until;

const ADMIN: &str = "ann@example.com";
const ADMIN_PASSWORD: &str = "correct horse battery staple";
const NEWBIE: &str = "newbie@example.com";
const FLOODED: &str = "victim@example.com";

#[test]
fn an_unknown_user_is_mailed_an_enrolment_link_and_may_print_only_after_enrolling() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path());
    let data = dir.path().join("data");
    let config = write_config(
        dir.path(),
        &format!(
            "[mail]\nsmtp_host = \"localhost\"\nsmtp_port = {}\ntls = \"starttls\"\n\
             ca_file = \"{}\"\nfrom = \"printbridge <print@example.com>\"\nmax_per_address = 2\n\n\
             [device_authorization]\nmax_pending = 10\ninterval_seconds = 1\n",
            smtp.port,
            dir.path().join("smtp-cert.pem").display()
        ),
    );
    let out = admin(
        &data,
        None,
        &["create-org", "Acme", "--admin", ADMIN],
        ADMIN_PASSWORD,
    );
    assert!(out.contains("created organisation Acme"), "{out}");
    let cloud = start_cloud(&data, None, Some(&config));
    let mut device = Http::new(&cloud.base);
    let mut browser = Http::new(&cloud.base);
    sign_in(&mut browser, ADMIN, ADMIN_PASSWORD);

    // The device asks for NEWBIE, whom the cloud does not know; the administrator approves.
    let code = request_code(
        &mut device,
        "urn:uuid:0b6c1f7e-8d43-4c7a-9a5e-1d2c3b4a5f60",
        NEWBIE,
    );
    let page = approve(&mut browser, code["user_code"].as_str().unwrap(), NEWBIE);
    assert!(page.contains("a mail with a link"), "{page}");
    let token = redeem(&mut device, code["device_code"].as_str().unwrap());
    let info = device_info(&mut device, &token);
    assert_eq!(info["users"], serde_json::json!([NEWBIE]), "{info}");
    assert_eq!(
        info["users_awaiting_enrolment"],
        serde_json::json!([NEWBIE]),
        "{info}"
    );

    // The mail arrives over STARTTLS (aiosmtpd requires it) with the link and the device.
    assert!(
        wait_until(Duration::from_secs(30), || smtp.messages_to(NEWBIE).len()
            == 1),
        "no enrolment mail for {NEWBIE}; SMTP log:\n{}",
        std::fs::read_to_string(dir.path().join("smtp.log")).unwrap_or_default()
    );
    // common::smtp undoes quoted-printable already.
    let mail = smtp.messages_to(NEWBIE)[0].clone();
    assert!(
        mail.contains("Subject: Set your password to print at Acme"),
        "{mail}"
    );
    assert!(
        mail.contains("From: printbridge <print@example.com>"),
        "{mail}"
    );
    assert!(mail.contains("\"Front desk\""), "{mail}");
    assert!(mail.contains("Location: 2nd floor"), "{mail}");
    let link = mail
        .split_whitespace()
        .find(|w| w.contains("/set-password?token="))
        .unwrap_or_else(|| panic!("no link in the mail:\n{mail}"))
        .to_string();
    assert!(link.starts_with(&cloud.base), "{link}");
    assert!(
        !mail.contains(code["device_code"].as_str().unwrap()),
        "no device secret in mail"
    );

    // NEWBIE cannot sign in yet; follows the link, chooses a password, and then can.
    let mut newbie = Http::new(&cloud.base);
    let path = &link[cloud.base.len()..];
    let form = newbie.get(path);
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.field("csrf");
    let token_field = form.field("token");
    let password = "newbie's own long password";
    let r = newbie.post_form(
        "/set-password",
        &[
            ("csrf", &csrf),
            ("token", &token_field),
            ("password", password),
            ("confirm", password),
        ],
    );
    assert!(
        r.status == 200 || r.status == 303,
        "{} {}",
        r.status,
        r.body
    );
    let info = device_info(&mut device, &token);
    assert_eq!(
        info["users_awaiting_enrolment"],
        serde_json::json!([]),
        "{info}"
    );
    // The link works once.
    assert_eq!(newbie.get(path).status, 404);

    // A second approval for the now enrolled user sends no mail.
    let code = request_code(
        &mut device,
        "urn:uuid:0b6c1f7e-8d43-4c7a-9a5e-1d2c3b4a5f61",
        NEWBIE,
    );
    let page = approve(&mut browser, code["user_code"].as_str().unwrap(), NEWBIE);
    assert!(
        page.contains(&format!("{NEWBIE} may print on it")),
        "{page}"
    );

    // Flood limit: three approvals for an address that never enrols, max_per_address = 2.
    for i in 0..3 {
        let code = request_code(
            &mut device,
            &format!("urn:uuid:0b6c1f7e-8d43-4c7a-9a5e-1d2c3b4a5f7{i}"),
            FLOODED,
        );
        let page = approve(&mut browser, code["user_code"].as_str().unwrap(), FLOODED);
        if i == 2 {
            assert!(page.contains("too many mails"), "{page}");
        }
    }
    assert!(
        wait_until(Duration::from_secs(30), || smtp.messages_to(FLOODED).len()
            >= 2),
        "the first two mails to {FLOODED} did not arrive"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(smtp.messages_to(FLOODED).len(), 2);
    assert_eq!(smtp.messages_to(NEWBIE).len(), 1);
}
