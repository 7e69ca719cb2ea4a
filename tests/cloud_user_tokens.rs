//! Users' personal access tokens: made on the `/account/tokens` page, shown once, accepted as
//! `Authorization: Bearer` by the Infrastructure Printer for a user allowed on it (and only
//! for such a user), refused once revoked.

mod common;

use common::cloud::{
    bootstrap_acme, register_device, register_printer, sign_in, start_cloud, write_config, Http,
    Resp,
};
use printbridge::codec::ipp::{
    encode_message, parse_message, tag, Attribute, Limits, Message, Value,
};

const ADMIN: &str = "ann@example.com";
const ADMIN_PASSWORD: &str = "correct horse battery staple";
const BOB: &str = "bob@example.com";
const BOB_PASSWORD: &str = "bob's long password";

fn print_job(http: &mut Http, path: &str, uri: &str, bearer: &str) -> Resp {
    let mut m = Message::new((2, 0), 0x0002, 1);
    let g = m.group_mut(tag::OPERATION);
    g.push(Attribute::new(
        "attributes-charset",
        Value::Charset("utf-8".into()),
    ));
    g.push(Attribute::new(
        "attributes-natural-language",
        Value::NaturalLanguage("en".into()),
    ));
    g.push(Attribute::new("printer-uri", Value::Uri(uri.into())));
    g.push(Attribute::new(
        "job-name",
        Value::Name("with a token".into()),
    ));
    g.push(Attribute::new(
        "document-format",
        Value::MimeMediaType("application/pdf".into()),
    ));
    let mut body = Vec::new();
    encode_message(&m, &mut body);
    body.extend_from_slice(&common::one_page_pdf("token"));
    let auth = format!("Bearer {bearer}");
    http.send(
        "POST",
        path,
        &[("Authorization", auth.as_str())],
        Some("application/ipp"),
        &body,
    )
}

fn ipp_status(r: &Resp) -> u16 {
    assert_eq!(r.status, 200, "HTTP {}", r.status);
    let (m, _) = parse_message(r.body.as_bytes(), &Limits::default()).expect("IPP response");
    m.code
}

fn new_token(browser: &mut Http, name: &str) -> String {
    let page = browser.get("/account/tokens");
    assert_eq!(page.status, 200, "{}", page.body);
    let r = browser.post_form(
        "/account/tokens",
        &[
            ("csrf", &page.field("csrf")),
            ("action", "create"),
            ("name", name),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let start = r
        .body
        .find("id=\"new-token\">")
        .expect("the new token is shown")
        + 15;
    r.body[start..start + r.body[start..].find('<').unwrap()].to_string()
}

#[test]
fn a_users_token_prints_for_that_user_until_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    bootstrap_acme(&data, ADMIN, ADMIN_PASSWORD, BOB, BOB_PASSWORD);
    let config = write_config(dir.path(), "[device_authorization]\ninterval_seconds = 1\n");
    let cloud = start_cloud(&data, None, Some(&config));
    let mut http = Http::new(&cloud.base);

    // A device registered for bob, with one printer.
    let mut admin_browser = Http::new(&cloud.base);
    sign_in(&mut admin_browser, ADMIN, ADMIN_PASSWORD);
    let device = register_device(
        &cloud.base,
        &mut admin_browser,
        "urn:uuid:3b2a1c0d-9e8f-4a7b-8c6d-5e4f3a2b1c0d",
        BOB,
    );
    let (id, uri) = register_printer(
        &cloud.base,
        &device,
        "urn:uuid:3b2a1c0d-9e8f-4a7b-8c6d-5e4f3a2b1c0e",
    );
    let path = format!("/ipp/print/{id}");

    // Not signed in: the page sends to sign-in.
    let r = http.get("/account/tokens");
    assert_eq!(r.status, 303);

    // Bob makes a token; it prints as bob; the page never shows it again.
    let mut bob = Http::new(&cloud.base);
    sign_in(&mut bob, BOB, BOB_PASSWORD);
    let token = new_token(&mut bob, "laptop");
    assert!(token.len() >= 32, "{token}");
    let listed = bob.get("/account/tokens");
    assert!(listed.body.contains("laptop"));
    assert!(!listed.body.contains(&token), "a token is shown only once");
    assert_eq!(ipp_status(&print_job(&mut http, &path, &uri, &token)), 0);

    // Ann (an administrator, but not allowed on this printer) is refused with her own token.
    let ann_token = new_token(&mut admin_browser, "desk");
    assert_eq!(
        ipp_status(&print_job(&mut http, &path, &uri, &ann_token)),
        0x0403,
        "client-error-not-authorized"
    );

    // A wrong token, then bob's revoked one: 401 with a Bearer challenge.
    let r = print_job(&mut http, &path, &uri, "not-a-token");
    assert_eq!(r.status, 401);
    let page = bob.get("/account/tokens");
    let id_start = page.body.find("name=\"id\" value=\"").unwrap() + 17;
    let id = page.body[id_start..id_start + page.body[id_start..].find('"').unwrap()].to_string();
    let r = bob.post_form(
        "/account/tokens",
        &[
            ("csrf", &page.field("csrf")),
            ("action", "revoke"),
            ("id", &id),
        ],
    );
    assert!(r.body.contains("The token was revoked."), "{}", r.body);
    let r = print_job(&mut http, &path, &uri, &token);
    assert_eq!(r.status, 401);
    // A forged form changes nothing.
    let r = bob.post_form(
        "/account/tokens",
        &[("csrf", "forged"), ("action", "create"), ("name", "x")],
    );
    assert_eq!(r.status, 403);
}
