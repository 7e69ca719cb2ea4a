//! The cloud's device authorization (RFC 8628 + RFC 8414) end to end over HTTP against real
//! `printbridge cloud` processes: metadata, every token-endpoint answer, the verification page as
//! an administrator (sign in, CSRF, approve/deny), tokens and refresh; on SQLite, and with two
//! instances sharing one real PostgreSQL (started here from Debian's postgresql package). The same
//! storage battery runs against SQLite and PostgreSQL.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::cloud::{admin, bootstrap_org, start_cloud, write_config, Http, Resp};
use common::postgres::Postgres;

use printbridge::store::accounts::Role;
use printbridge::store::device_auth::{
    AuthorizationStatus, InsertOutcome, NewDeviceAuthorization, TokenPair,
};
use printbridge::store::{Backend, Store, StoreError};
use serde_json::Value;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const ADMIN: &str = "ann@example.com";
const ADMIN_PASSWORD: &str = "correct horse battery staple";
const USER: &str = "bob@example.com";
const USER_PASSWORD: &str = "bob's long password";
const DEVICE_UUID: &str = "urn:uuid:6f1c2a4e-1b7d-4c3e-9a51-0e2f3d4c5b6a";

// ---- accounts ------------------------------------------------------------------------------------

fn bootstrap_accounts(data_dir: &Path, database: Option<&str>) {
    bootstrap_org(
        data_dir,
        database,
        (ADMIN, ADMIN_PASSWORD),
        &[(USER, USER_PASSWORD)],
    );
}

// ---- the flows -------------------------------------------------------------------------------------

/// A device asking for authorization.
fn request_code(http: &mut Http, uuid: &str, name: &str) -> Value {
    let r = http.post_form(
        "/oauth/device_authorization",
        &[
            ("client_id", "printbridge-appliance"),
            ("scope", "printer"),
            ("device_name", name),
            ("device_make_and_model", "printbridge appliance"),
            ("device_uuid", uuid),
            ("device_location", "2nd floor, room 204"),
            ("user_email", USER),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.json()
}

fn poll(http: &mut Http, device_code: &str) -> Resp {
    http.post_form(
        "/oauth/token",
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", "printbridge-appliance"),
        ],
    )
}

/// Signs `email` in through the sign-in form, following the redirect from `start`.
fn sign_in(browser: &mut Http, start: &str, email: &str, password: &str) -> Resp {
    let r = browser.get(start);
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.header("location").expect("redirect").to_string();
    assert!(to.starts_with("/signin?next="), "{to}");
    let page = browser.get(&to);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Sign in"));
    let csrf = page.field("csrf");
    let next = page.field("next");
    assert_eq!(next, start, "the sign-in form keeps where to go back to");
    // Without the CSRF token the form is refused.
    let r = browser.post_form(
        "/signin",
        &[
            ("email", email),
            ("password", password),
            ("csrf", "forged"),
            ("next", &next),
        ],
    );
    assert_eq!(r.status, 403);
    let r = browser.post_form(
        "/signin",
        &[
            ("email", email),
            ("password", password),
            ("csrf", &csrf),
            ("next", &next),
        ],
    );
    assert_eq!(r.status, 303, "sign-in failed: {}", r.body);
    assert_eq!(r.header("location"), Some(start));
    assert!(browser.jar.contains_key("pb_session"));
    let set_cookie: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(
        set_cookie
            .iter()
            .any(|c| c.starts_with("pb_session=") && c.contains("HttpOnly")),
        "{set_cookie:?}"
    );
    browser.get(start)
}

/// The administrator opens verification_uri_complete (code typed in lower case, without the
/// dash), sees the device and the user, and decides.
fn decide(browser: &mut Http, user_code: &str, decision: &str) -> Resp {
    let typed = user_code.replace('-', "").to_lowercase();
    let page = browser.get(&format!("/device?user_code={typed}"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(user_code), "{}", page.body);
    assert!(page.body.contains("2nd floor, room 204"));
    assert!(page.body.contains(USER));
    assert!(page.body.contains(DEVICE_UUID) || page.body.contains("urn:uuid:"));
    let csrf = page.field("csrf");
    let request = page.field("request");
    let r = browser.post_form(
        "/device",
        &[
            ("csrf", "forged"),
            ("request", &request),
            ("user_email", USER),
            ("decision", decision),
        ],
    );
    assert_eq!(r.status, 403, "a forged CSRF token is refused");
    browser.post_form(
        "/device",
        &[
            ("csrf", &csrf),
            ("request", &request),
            ("user_email", USER),
            ("decision", decision),
        ],
    )
}

/// The whole RFC 8628 dance: the device talks to `device_side`, the administrator to
/// `admin_side` (the same server, or another instance on the same database).
fn device_flow(device_side: &str, admin_side: &str) {
    let mut device = Http::new(device_side);

    // RFC 8414 metadata.
    let meta = device.get("/.well-known/oauth-authorization-server");
    assert_eq!(meta.status, 200);
    let meta = meta.json();
    assert_eq!(meta["issuer"], device_side);
    assert_eq!(
        meta["device_authorization_endpoint"],
        format!("{device_side}/oauth/device_authorization")
    );
    assert_eq!(meta["token_endpoint"], format!("{device_side}/oauth/token"));
    assert!(meta["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&Value::from(DEVICE_GRANT)));

    // Device authorization response.
    let code = request_code(&mut device, DEVICE_UUID, "Office printer");
    let device_code = code["device_code"].as_str().unwrap().to_string();
    let user_code = code["user_code"].as_str().unwrap().to_string();
    assert!(device_code.len() >= 43, "device_code has ≥ 256 bits");
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(user_code
        .chars()
        .filter(|c| *c != '-')
        .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)));
    assert_eq!(code["verification_uri"], format!("{device_side}/device"));
    assert_eq!(
        code["verification_uri_complete"],
        format!("{device_side}/device?user_code={user_code}")
    );
    assert_eq!(code["expires_in"], 900);
    assert_eq!(code["interval"], 2);

    // authorization_pending, then slow_down when polled faster than the interval: the interval
    // grows by 5 s each time. (The server counts whole seconds, so back-to-back polls are
    // always inside a 2 s interval.)
    let r = poll(&mut device, &device_code);
    assert_eq!(r.oauth_error(), "authorization_pending");
    assert_eq!(r.json()["interval"], 2);
    let r = poll(&mut device, &device_code);
    assert_eq!(r.oauth_error(), "slow_down");
    assert_eq!(r.json()["interval"], 7);
    let r = poll(&mut device, &device_code);
    assert_eq!(r.oauth_error(), "slow_down");
    assert_eq!(r.json()["interval"], 12);

    // Token endpoint errors other than the pending ones.
    let r = poll(&mut device, "not-a-device-code-we-ever-issued");
    assert_eq!(r.oauth_error(), "invalid_grant");
    let r = device.post_form(
        "/oauth/token",
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", &device_code),
            ("client_id", "some-other-client"),
        ],
    );
    assert_eq!(r.oauth_error(), "invalid_grant");
    let r = device.post_form(
        "/oauth/token",
        &[
            ("grant_type", DEVICE_GRANT),
            ("client_id", "printbridge-appliance"),
        ],
    );
    assert_eq!(r.oauth_error(), "invalid_request");
    let r = device.post_form("/oauth/token", &[("device_code", &device_code)]);
    assert_eq!(r.oauth_error(), "invalid_request");
    let r = device.post_form(
        "/oauth/token",
        &[
            ("grant_type", "password"),
            ("client_id", "printbridge-appliance"),
        ],
    );
    assert_eq!(r.oauth_error(), "unsupported_grant_type");
    let r = device.post_form(
        "/oauth/token",
        &[
            ("grant_type", DEVICE_GRANT),
            ("grant_type", DEVICE_GRANT),
            ("device_code", &device_code),
            ("client_id", "printbridge-appliance"),
        ],
    );
    assert_eq!(r.oauth_error(), "invalid_request", "repeated parameter");
    let r = device.send(
        "POST",
        "/oauth/token",
        &[],
        Some("application/json"),
        br#"{"grant_type":"x"}"#,
    );
    assert_eq!(r.oauth_error(), "invalid_request", "not a form");
    let r = device.post_form(
        "/oauth/device_authorization",
        &[
            ("client_id", "printbridge-appliance"),
            ("scope", "everything"),
        ],
    );
    assert_eq!(r.oauth_error(), "invalid_scope");
    let r = device.post_form("/oauth/device_authorization", &[("scope", "printer")]);
    assert_eq!(r.oauth_error(), "invalid_request", "client_id missing");
    let r = device.post_form(
        "/oauth/device_authorization",
        &[
            ("client_id", "printbridge-appliance"),
            ("user_email", "not an address"),
        ],
    );
    assert_eq!(r.oauth_error(), "invalid_request");

    // The administrator: the verification page needs a signed-in administrator.
    let mut browser = Http::new(admin_side);
    let start = format!("/device?user_code={user_code}");
    let page = sign_in(&mut browser, &start, ADMIN, ADMIN_PASSWORD);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Office printer"), "{}", page.body);
    // A wrong code is refused (and counted).
    let r = browser.get("/device?user_code=BBBB-BBBB");
    assert_eq!(r.status, 404);
    let r = decide(&mut browser, &user_code, "approve");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Device approved"), "{}", r.body);
    // Deciding twice does not work.
    let again = browser.get(&format!("/device?user_code={user_code}"));
    assert_eq!(again.status, 404, "an approved code is no longer pending");

    // The device's next poll gets the tokens, once.
    let r = poll(&mut device, &device_code);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let tokens = r.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "printer");
    assert!(tokens["expires_in"].as_i64().unwrap() > 0);
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    assert!(access.len() >= 43 && refresh.len() >= 43 && access != refresh);
    let r = poll(&mut device, &device_code);
    assert_eq!(
        r.oauth_error(),
        "invalid_grant",
        "a device_code is redeemed once"
    );

    // The access token works (on the administrator's instance too) and names the device.
    let auth = format!("Bearer {access}");
    for base in [device_side, admin_side] {
        let r = Http::new(base).send(
            "GET",
            "/api/v1/device",
            &[("Authorization", &auth)],
            None,
            b"",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let d = r.json();
        assert_eq!(d["name"], "Office printer");
        assert_eq!(d["organisation"], "Acme");
        assert_eq!(d["uuid"], DEVICE_UUID);
        assert_eq!(d["users"], serde_json::json!([USER]));
    }
    let r = device.send(
        "GET",
        "/api/v1/device",
        &[("Authorization", "Bearer nope")],
        None,
        b"",
    );
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));

    // Refresh: a new pair; the old refresh token is used up.
    let refresh_form = |t: &str| {
        vec![
            ("grant_type".to_string(), "refresh_token".to_string()),
            ("refresh_token".to_string(), t.to_string()),
            ("client_id".to_string(), "printbridge-appliance".to_string()),
        ]
    };
    let f = refresh_form(&refresh);
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = device.post_form("/oauth/token", &pairs);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(r.json()["refresh_token"].as_str().unwrap(), refresh);
    let r = device.post_form("/oauth/token", &pairs);
    assert_eq!(r.oauth_error(), "invalid_grant");

    // access_denied.
    let code = request_code(&mut device, DEVICE_UUID, "Office printer");
    let device_code = code["device_code"].as_str().unwrap().to_string();
    let r = decide(&mut browser, code["user_code"].as_str().unwrap(), "deny");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Device denied"));
    let r = poll(&mut device, &device_code);
    assert_eq!(r.oauth_error(), "access_denied");

    // A device cannot hold more than 3 pending requests.
    let other = "urn:uuid:0d9b6c61-3d0e-4b7e-8a3f-1c2b3a4d5e6f";
    let mut last = None;
    for _ in 0..4 {
        let r = device.post_form(
            "/oauth/device_authorization",
            &[
                ("client_id", "printbridge-appliance"),
                ("device_uuid", other),
            ],
        );
        last = Some(r.status);
        if r.status != 200 {
            assert_eq!(r.status, 429, "{}", r.body);
            break;
        }
    }
    assert_eq!(last, Some(429), "the fourth pending request is refused");

    // Sign-out ends the session.
    let page = browser.get("/device");
    let csrf = page.field("csrf");
    let r = browser.post_form("/signout", &[("csrf", &csrf)]);
    assert_eq!(r.status, 303);
    let r = browser.get("/device");
    assert_eq!(r.status, 303, "signed out: back to the sign-in page");
}

// ---- tests over HTTP ------------------------------------------------------------------------------

#[test]
fn device_authorization_over_http_sqlite() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    bootstrap_accounts(&data, None);
    let config = write_config(dir.path(), "[device_authorization]\ninterval_seconds = 2\n");
    let cloud = start_cloud(&data, None, Some(&config));
    device_flow(&cloud.base, &cloud.base);

    // A plain user may sign in but not approve devices; a wrong password gets no session.
    let mut browser = Http::new(&cloud.base);
    let r = browser.get("/device");
    let to = r.header("location").unwrap().to_string();
    let page = browser.get(&to);
    let csrf = page.field("csrf");
    let r = browser.post_form(
        "/signin",
        &[
            ("email", USER),
            ("password", "wrong password!"),
            ("csrf", &csrf),
            ("next", "/device"),
        ],
    );
    assert_eq!(r.status, 401);
    assert!(!browser.jar.contains_key("pb_session"));
    let r = browser.post_form(
        "/signin",
        &[
            ("email", USER),
            ("password", USER_PASSWORD),
            ("csrf", &csrf),
            ("next", "/device"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let r = browser.get("/device");
    assert_eq!(r.status, 403, "only administrators approve devices");

    // An administrator added with a one-time set-password link sets a password there, once.
    let out = admin(
        &data,
        None,
        &["add-user", "Acme", "carol@example.com", "--admin", "--link"],
        "",
    );
    let link = &out[out.find("/set-password?token=").expect("link printed")..];
    let link = link.split_whitespace().next().unwrap().to_string();
    let mut carol = Http::new(&cloud.base);
    let page = carol.get(&link);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("carol@example.com"));
    let (csrf, token) = (page.field("csrf"), page.field("token"));
    let password = "carol's new password";
    let r = carol.post_form(
        "/set-password",
        &[
            ("csrf", &csrf),
            ("token", &token),
            ("password", password),
            ("confirm", "other"),
        ],
    );
    assert_eq!(r.status, 400, "passwords differ");
    let r = carol.post_form(
        "/set-password",
        &[
            ("csrf", &csrf),
            ("token", &token),
            ("password", password),
            ("confirm", password),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Password set"));
    let r = carol.post_form(
        "/set-password",
        &[
            ("csrf", &csrf),
            ("token", &token),
            ("password", password),
            ("confirm", password),
        ],
    );
    assert_eq!(r.status, 404, "a link works once");
    let page = sign_in(&mut carol, "/device", "carol@example.com", password);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Connect a device"));
    println!("sqlite flow took {:?}", started.elapsed());
}

#[test]
fn device_code_expiry_and_guess_throttling() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    bootstrap_accounts(&data, None);
    let config = write_config(
        dir.path(),
        "[device_authorization]\nexpires_in_seconds = 2\ninterval_seconds = 1\n\
         [limits]\nuser_code_failures_per_client = 3\n",
    );
    let cloud = start_cloud(&data, None, Some(&config));
    let mut device = Http::new(&cloud.base);
    let code = request_code(&mut device, DEVICE_UUID, "Short-lived");
    assert_eq!(code["expires_in"], 2);
    let device_code = code["device_code"].as_str().unwrap().to_string();
    let user_code = code["user_code"].as_str().unwrap().to_string();
    let r = poll(&mut device, &device_code);
    assert_eq!(r.oauth_error(), "authorization_pending");
    std::thread::sleep(Duration::from_millis(2200));
    let r = poll(&mut device, &device_code);
    assert_eq!(r.oauth_error(), "expired_token");

    // The expired code is gone from the verification page, and wrong codes are throttled per
    // client: 3 misses, then even a valid code is refused for the window.
    let mut browser = Http::new(&cloud.base);
    let page = sign_in(&mut browser, "/device", ADMIN, ADMIN_PASSWORD);
    assert!(page.body.contains("Connect a device"));
    let r = browser.get(&format!("/device?user_code={user_code}"));
    assert_eq!(r.status, 404, "expired");
    let r = browser.get("/device?user_code=nonsense");
    assert_eq!(r.status, 404);
    let r = browser.get("/device?user_code=BCDF-GHJK");
    assert_eq!(r.status, 404);
    let fresh = request_code(&mut device, DEVICE_UUID, "Short-lived");
    let r = browser.get(&format!(
        "/device?user_code={}",
        fresh["user_code"].as_str().unwrap()
    ));
    assert_eq!(r.status, 429, "{}", r.body);
}

// ---- the storage battery ------------------------------------------------------------------------

fn new_authz(code_hash: &str, user_code: &str, uuid: &str, now: i64) -> NewDeviceAuthorization {
    NewDeviceAuthorization {
        device_code_hash: code_hash.to_string(),
        user_code: user_code.to_string(),
        client_id: "c".into(),
        scope: "printer".into(),
        device_name: "Office".into(),
        device_make_and_model: "Model".into(),
        device_uuid: uuid.to_string(),
        device_location: "Here".into(),
        user_email: USER.into(),
        client_ip: "127.0.0.1".into(),
        created_at: now,
        expires_at: now + 900,
        interval_seconds: 5,
    }
}

fn pair(tag: &str, now: i64) -> TokenPair {
    TokenPair {
        access_hash: format!("access-{tag}"),
        access_expires_at: now + 3600,
        refresh_hash: format!("refresh-{tag}"),
        refresh_expires_at: now + 7200,
    }
}

/// Every store operation the cloud relies on, including the races between instances.
async fn store_battery(store: &Store) {
    let now = 1_700_000_000;

    // Accounts.
    let (org, admin) = store
        .create_org_with_admin("Acme", ADMIN, Some("hash"), now)
        .await
        .unwrap();
    assert_eq!(admin.role, Role::Admin);
    assert!(matches!(
        store
            .create_org_with_admin("Acme", "x@example.com", None, now)
            .await,
        Err(StoreError::Duplicate(_))
    ));
    assert!(matches!(
        store.create_org_with_admin("Other", ADMIN, None, now).await,
        Err(StoreError::Duplicate(_))
    ));
    assert!(
        store.organisation_by_name("Other").await.unwrap().is_none(),
        "a failed create-org leaves no organisation behind"
    );
    let bob = store
        .create_user("Acme", USER, None, Role::User, now)
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_user("Nope", "c@example.com", None, Role::User, now)
            .await,
        Err(StoreError::NotFound(_))
    ));
    let found = store.user_by_email(USER).await.unwrap().unwrap();
    assert_eq!(found.org_name, "Acme");
    assert_eq!(found.password_hash, None);
    assert_eq!(found.org_id, org.id);

    // Sessions.
    store
        .create_session("sess", &admin.id, "csrf", now, now + 60)
        .await
        .unwrap();
    let s = store.session("sess", now).await.unwrap().unwrap();
    assert_eq!(s.user.email, ADMIN);
    assert_eq!(s.csrf_token, "csrf");
    assert!(store.session("sess", now + 60).await.unwrap().is_none());
    store.delete_session("sess").await.unwrap();
    assert!(store.session("sess", now).await.unwrap().is_none());

    // One-time links: used once, concurrently too; setting the password ends bob's sessions.
    store
        .create_session("bob-sess", &bob.id, "csrf", now, now + 600)
        .await
        .unwrap();
    store
        .create_link("link", &bob.id, "set-password", now, now + 60)
        .await
        .unwrap();
    assert!(store
        .link_user("link", "set-password", now)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .link_user("link", "enrol", now)
        .await
        .unwrap()
        .is_none());
    let uses = futures_util::future::join_all(
        (0..4).map(|_| store.use_link_set_password("link", "set-password", "newhash", now)),
    )
    .await;
    assert_eq!(
        uses.iter().filter(|u| matches!(u, Ok(Some(_)))).count(),
        1,
        "{uses:?}"
    );
    assert_eq!(
        store
            .user_by_email(USER)
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("newhash")
    );
    assert!(store.session("bob-sess", now).await.unwrap().is_none());

    // Throttle counters: windows, and no lost update under concurrency.
    assert_eq!(store.throttle_hit("b", "k", now, 60).await.unwrap(), 1);
    assert_eq!(store.throttle_hit("b", "k", now + 1, 60).await.unwrap(), 2);
    assert_eq!(
        store.throttle_count("b", "k", now + 2, 60).await.unwrap(),
        2
    );
    assert_eq!(
        store.throttle_count("b", "k", now + 61, 60).await.unwrap(),
        0
    );
    assert_eq!(store.throttle_hit("b", "k", now + 61, 60).await.unwrap(), 1);
    let hits =
        futures_util::future::join_all((0..20).map(|_| store.throttle_hit("b", "many", now, 60)))
            .await;
    assert!(hits.iter().all(|h| h.is_ok()), "{hits:?}");
    assert_eq!(
        store.throttle_count("b", "many", now, 60).await.unwrap(),
        20
    );
    store.throttle_clear("b", "many").await.unwrap();
    assert_eq!(store.throttle_count("b", "many", now, 60).await.unwrap(), 0);

    // Device authorization: insert, pending limit, code uniqueness.
    let uuid = "urn:uuid:6f1c2a4e-1b7d-4c3e-9a51-0e2f3d4c5b6a";
    let (id, outcome) = store
        .insert_device_authorization(&new_authz("dc1", "BCDFGHJK", uuid, now), 2)
        .await
        .unwrap();
    assert_eq!(outcome, InsertOutcome::Inserted);
    assert!(matches!(
        store
            .insert_device_authorization(&new_authz("dc9", "BCDFGHJK", "", now), 2)
            .await,
        Err(StoreError::Duplicate(_))
    ));
    let (_, o) = store
        .insert_device_authorization(&new_authz("dc2", "BCDFGHJL", uuid, now), 2)
        .await
        .unwrap();
    assert_eq!(o, InsertOutcome::Inserted);
    let (_, o) = store
        .insert_device_authorization(&new_authz("dc3", "BCDFGHJM", uuid, now), 2)
        .await
        .unwrap();
    assert_eq!(o, InsertOutcome::TooManyPending, "per device");
    let mut by_user = new_authz("dc3", "BCDFGHJM", "", now);
    by_user.user_email = USER.into();
    let (_, o) = store
        .insert_device_authorization(&by_user, 2)
        .await
        .unwrap();
    assert_eq!(o, InsertOutcome::TooManyPending, "per user address");
    let found = store
        .pending_authorization_by_user_code("BCDFGHJK", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, id);
    assert_eq!(found.device_uuid, uuid);
    assert!(store
        .pending_authorization_by_user_code("BCDFGHJK", now + 900)
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.pending_authorizations(now).await.unwrap().len(), 2);

    // Polling: unknown, pending, slow_down growing the interval, back on pace.
    assert!(store
        .poll_authorization("nope", now)
        .await
        .unwrap()
        .is_none());
    let p = store.poll_authorization("dc1", now).await.unwrap().unwrap();
    assert_eq!(
        (p.status, p.too_fast, p.interval_seconds),
        (AuthorizationStatus::Pending, false, 5)
    );
    let p = store
        .poll_authorization("dc1", now + 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((p.too_fast, p.interval_seconds), (true, 10));
    let p = store
        .poll_authorization("dc1", now + 7)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((p.too_fast, p.interval_seconds), (true, 15), "5 s < 10 s");
    let p = store
        .poll_authorization("dc1", now + 22)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((p.too_fast, p.interval_seconds), (false, 15));
    // Concurrent polls: each early one counts.
    let polls =
        futures_util::future::join_all((0..3).map(|_| store.poll_authorization("dc1", now + 23)))
            .await;
    let fast = polls
        .iter()
        .filter(|p| p.as_ref().unwrap().as_ref().unwrap().too_fast)
        .count();
    assert_eq!(fast, 3);
    let p = store
        .poll_authorization("dc1", now + 23)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.interval_seconds, 15 + 5 * 4);

    // Approve vs deny racing: exactly one decision wins.
    let decisions = futures_util::future::join(
        store.approve_authorization(&id, &org.id, &admin.id, USER, now + 30),
        store.deny_authorization(&id, &org.id, &admin.id, now + 30),
    )
    .await;
    let (approved, denied) = (decisions.0.unwrap(), decisions.1.unwrap());
    assert!(approved ^ denied, "approved {approved}, denied {denied}");
    if denied {
        let p = store
            .poll_authorization("dc1", now + 100)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.status, AuthorizationStatus::Denied);
        // Use the second request for the redemption checks.
        assert!(store
            .approve_authorization(
                &store
                    .pending_authorization_by_user_code("BCDFGHJL", now + 30)
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
                &org.id,
                &admin.id,
                USER,
                now + 30
            )
            .await
            .unwrap());
    }
    let (redeem_id, redeem_code) = if approved {
        (id.clone(), "dc1")
    } else {
        let a = store
            .poll_authorization("dc2", now + 31)
            .await
            .unwrap()
            .unwrap();
        (a.id, "dc2")
    };
    let p = store
        .poll_authorization(redeem_code, now + 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.status, AuthorizationStatus::Approved);
    assert!(!p.too_fast, "an approved request is never slowed down");

    // Redemption: exactly once, even with concurrent polls.
    let pairs: Vec<TokenPair> = (0..4).map(|i| pair(&i.to_string(), now)).collect();
    let redeems = futures_util::future::join_all(
        pairs
            .iter()
            .map(|t| store.redeem_authorization(&redeem_id, t, now + 100)),
    )
    .await;
    let winners: Vec<_> = redeems
        .into_iter()
        .map(|r| r.unwrap())
        .enumerate()
        .filter_map(|(i, r)| r.map(|issued| (i, issued)))
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    let (i, issued) = &winners[0];
    let grant = store
        .access_grant(&format!("access-{i}"), now + 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.device_id, issued.device_id);
    assert_eq!(grant.scope, "printer");
    assert!(store
        .access_grant(&format!("access-{i}"), now + 100 + 3600)
        .await
        .unwrap()
        .is_none());
    for j in 0..4 {
        if j != *i {
            assert!(store
                .access_grant(&format!("access-{j}"), now + 100)
                .await
                .unwrap()
                .is_none());
        }
    }
    let device = store.device(&issued.device_id).await.unwrap().unwrap();
    assert_eq!(device.org_name, "Acme");
    assert_eq!(device.uuid, uuid);
    assert_eq!(
        store.device_users(&device.id).await.unwrap(),
        vec![USER.to_string()]
    );
    let p = store
        .poll_authorization(redeem_code, now + 200)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.status, AuthorizationStatus::Issued);

    // Refresh rotation: once, and only for the right client.
    let refresh = format!("refresh-{i}");
    let refresh = &refresh;
    assert!(store
        .rotate_refresh_token(refresh, "other-client", &pair("x", now), now + 100)
        .await
        .unwrap()
        .is_none());
    let rotations = futures_util::future::join_all((0..3).map(|k| {
        let t = pair(&format!("r{k}"), now);
        async move {
            store
                .rotate_refresh_token(refresh, "c", &t, now + 100)
                .await
        }
    }))
    .await;
    assert_eq!(
        rotations
            .iter()
            .filter(|r| matches!(r, Ok(Some(_))))
            .count(),
        1,
        "{rotations:?}"
    );

    // Expired requests cannot be approved; purge removes old rows.
    let (late, _) = store
        .insert_device_authorization(&new_authz("dc-late", "ZZZZZZZZ", "", now), 5)
        .await
        .unwrap();
    assert!(!store
        .approve_authorization(&late, &org.id, &admin.id, USER, now + 900)
        .await
        .unwrap());
    store.purge_expired(now + 900 + 86_401).await.unwrap();
    assert!(store.authorization(&late).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_battery_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&printbridge::store::sqlite_url(dir.path()))
        .await
        .unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store_battery(&store).await;
    store.close().await;
    // Reopening runs no migration twice.
    let store = Store::open(&printbridge::store::sqlite_url(dir.path()))
        .await
        .unwrap();
    assert!(store.user_by_email(ADMIN).await.unwrap().is_some());
    store.close().await;
}

// ---- a real PostgreSQL ------------------------------------------------------------------------------

/// The storage battery on PostgreSQL, then two `printbridge cloud` instances on one database:
/// a device polls one while the administrator approves on the other.
#[test]
fn postgresql_store_battery_and_two_instances() {
    let started = Instant::now();
    let pg = Postgres::start();
    println!("PostgreSQL up in {:?}", started.elapsed());

    let url = pg.create_db("battery");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.backend(), Backend::Postgres);
        store_battery(&store).await;
        store.close().await;
    });
    println!("battery done at {:?}", started.elapsed());

    let url = pg.create_db("cloud");
    let dir = tempfile::tempdir().unwrap();
    bootstrap_accounts(&dir.path().join("admin"), Some(&url));
    let config = write_config(dir.path(), "[device_authorization]\ninterval_seconds = 2\n");
    let a = start_cloud(&dir.path().join("a"), Some(&url), Some(&config));
    let b = start_cloud(&dir.path().join("b"), Some(&url), Some(&config));
    device_flow(&a.base, &b.base);

    // slow_down is counted across instances too: poll A, then B at once.
    let mut da = Http::new(&a.base);
    let mut db = Http::new(&b.base);
    let code = request_code(
        &mut da,
        "urn:uuid:7e57c0de-0000-4000-8000-000000000001",
        "Lobby",
    );
    let dc = code["device_code"].as_str().unwrap().to_string();
    assert_eq!(poll(&mut da, &dc).oauth_error(), "authorization_pending");
    let r = poll(&mut db, &dc);
    assert_eq!(r.oauth_error(), "slow_down");
    assert_eq!(r.json()["interval"], 7);
    println!("two instances done at {:?}", started.elapsed());
}
