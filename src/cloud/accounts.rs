//! Accounts on the web: passwords (argon2), addresses, the session cookie (only its hash is
//! stored) and who it signs in, CSRF tokens on every form, and the one-time set-password link.
//! The sign-in and sign-out pages themselves are in [`super::sign_in`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::pages::{self, MessagePage, PageError, SetPasswordPage, SignedIn};
use super::secrets::{ct_eq, hash_secret, random_token};
use super::Cloud;
use crate::store::accounts::Session;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0:?} is not a valid email address")]
    BadEmail(String),
    #[error("the password must be at least {0} characters long")]
    ShortPassword(usize),
    #[error("the password must be at most 1024 characters long")]
    LongPassword,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Purpose of a set-password link in the store.
pub const SET_PASSWORD: &str = "set-password";

/// Throttle buckets for failed sign-ins.
pub(crate) const SIGN_IN_CLIENT: &str = "sign-in-client";
pub(crate) const SIGN_IN_ACCOUNT: &str = "sign-in-account";

/// An address trimmed and lower-cased ([`crate::model::email::normalize`]), or an error naming it.
pub fn normalize_email(input: &str) -> Result<String, AccountError> {
    crate::model::email::normalize(input)
        .ok_or_else(|| AccountError::BadEmail(input.chars().take(100).collect()))
}

pub fn check_password(password: &str, min_length: usize) -> Result<(), AccountError> {
    if password.chars().count() < min_length {
        return Err(AccountError::ShortPassword(min_length));
    }
    if password.len() > 1024 {
        return Err(AccountError::LongPassword);
    }
    Ok(())
}

/// An argon2id PHC string for `password` (CPU-heavy: call off the async threads).
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    crate::password::hash_password(password).map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash` (false for a malformed hash).
pub fn verify_password(password: &str, hash: &str) -> bool {
    crate::password::verify_password(password, hash)
}

/// The cloud's password checks ([`super::Cloud::password_checks`]): every IPP request from a
/// user carries Basic credentials, so successes are remembered for five minutes (see
/// [`crate::password::PasswordChecks`]).
pub fn password_checks() -> crate::password::PasswordChecks {
    crate::password::PasswordChecks::new(std::time::Duration::from_secs(300), 10_000)
}

/// Checks `password` against `hash` with `checks`; `None` (no account, or no password yet) takes
/// as long and fails.
pub(crate) async fn verify_blocking(
    checks: &crate::password::PasswordChecks,
    password: String,
    hash: Option<String>,
) -> Result<bool, PageError> {
    Ok(checks.check(&password, hash.as_deref()).await)
}

pub async fn hash_blocking(password: String) -> Result<String, PageError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await?
        .map_err(|e| PageError::Password(e.to_string()))
}

/// The signed-in session of this request, if any.
pub async fn current_session(
    cloud: &Cloud,
    headers: &HeaderMap,
) -> Result<Option<Session>, PageError> {
    let Some(token) = pages::cookie(headers, cloud.session_cookie()) else {
        return Ok(None);
    };
    Ok(cloud
        .store
        .session(&hash_secret(&token), cloud.now())
        .await?)
}

pub fn signed_in(s: &Session) -> SignedIn {
    SignedIn {
        email: s.user.email.clone(),
        org: s.user.org_name.clone(),
        csrf: s.csrf_token.clone(),
    }
}

/// Where to go after signing in: a path on this site only (no `//host`, no scheme).
pub fn safe_next(next: &str) -> String {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && next.len() <= 512;
    if ok {
        next.to_string()
    } else {
        "/device".to_string()
    }
}

/// The pre-session anti-CSRF token (double-submit cookie) for the sign-in and set-password
/// forms; a new one is set on the response when the request had none.
pub fn form_csrf(cloud: &Cloud, headers: &HeaderMap) -> (String, bool) {
    match pages::cookie(headers, cloud.csrf_cookie()) {
        Some(t) if t.len() >= 32 => (t, false),
        _ => (random_token(), true),
    }
}

/// Whether `submitted` is the request's pre-session anti-CSRF cookie ([`form_csrf`]).
pub fn check_form_csrf(cloud: &Cloud, headers: &HeaderMap, submitted: &str) -> bool {
    match pages::cookie(headers, cloud.csrf_cookie()) {
        Some(c) => !c.is_empty() && ct_eq(&c, submitted),
        None => false,
    }
}

pub(crate) fn form_expired(what: &str, href: &str) -> Result<Response, PageError> {
    pages::render(
        StatusCode::FORBIDDEN,
        &MessagePage::error(
            "Form expired",
            format!("The {what} form expired or came from elsewhere. Open it again and retry."),
        )
        .with_link(href, "Open it again"),
    )
}

pub(crate) fn bad_form() -> Result<Response, PageError> {
    pages::render(
        StatusCode::BAD_REQUEST,
        &MessagePage::error("Bad request", "The form could not be read."),
    )
}

/// A new one-time set-password link for `user_id`: the URL to hand over (never logged).
pub async fn new_set_password_link(
    cloud_url: &str,
    store: &crate::store::Store,
    user_id: &str,
    now: i64,
    lifetime: i64,
) -> Result<String, crate::store::StoreError> {
    let token = random_token();
    store
        .create_link(
            &hash_secret(&token),
            user_id,
            SET_PASSWORD,
            now,
            now + lifetime,
        )
        .await?;
    Ok(format!("{cloud_url}/set-password?token={token}"))
}

fn link_invalid() -> Result<Response, PageError> {
    pages::render(
        StatusCode::NOT_FOUND,
        &MessagePage::error(
            "Link not valid",
            "This link is not valid: it was already used, it expired, or it was copied \
             incompletely. Ask your administrator for a new one.",
        ),
    )
}

pub async fn set_password_get(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let token = q.get("token").cloned().unwrap_or_default();
    let Some(user) = cloud
        .store
        .link_user(&hash_secret(&token), SET_PASSWORD, cloud.now())
        .await?
    else {
        return link_invalid();
    };
    set_password_page(
        &cloud,
        &headers,
        StatusCode::OK,
        None,
        &user.email,
        &user.org_name,
        &token,
    )
}

fn set_password_page(
    cloud: &Cloud,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<String>,
    email: &str,
    org: &str,
    token: &str,
) -> Result<Response, PageError> {
    let (csrf, fresh) = form_csrf(cloud, headers);
    let mut resp = pages::render(
        status,
        &SetPasswordPage {
            signed_in: None,
            error,
            email: email.to_string(),
            org: org.to_string(),
            token: token.to_string(),
            csrf: csrf.clone(),
            min_length: cloud.config.accounts.min_password_length,
        },
    )?;
    if fresh {
        pages::set_cookie(
            &mut resp,
            cloud.csrf_cookie(),
            &csrf,
            3600,
            cloud.secure_cookies,
        );
    }
    Ok(resp)
}

#[derive(Deserialize)]
pub struct SetPasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

pub async fn set_password_post(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
    form: Result<Form<SetPasswordForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Ok(Form(f)) = form else { return bad_form() };
    let now = cloud.now();
    let token_hash = hash_secret(&f.token);
    let Some(user) = cloud
        .store
        .link_user(&token_hash, SET_PASSWORD, now)
        .await?
    else {
        return link_invalid();
    };
    if !check_form_csrf(&cloud, &headers, &f.csrf) {
        return set_password_page(
            &cloud,
            &headers,
            StatusCode::FORBIDDEN,
            Some("The form expired; enter the password again.".into()),
            &user.email,
            &user.org_name,
            &f.token,
        );
    }
    let problem =
        if let Err(e) = check_password(&f.password, cloud.config.accounts.min_password_length) {
            Some(format!("{}.", capitalise(&e.to_string())))
        } else if f.password != f.confirm {
            Some("The two passwords differ.".to_string())
        } else {
            None
        };
    if let Some(problem) = problem {
        return set_password_page(
            &cloud,
            &headers,
            StatusCode::BAD_REQUEST,
            Some(problem),
            &user.email,
            &user.org_name,
            &f.token,
        );
    }
    let hash = hash_blocking(f.password).await?;
    if cloud
        .store
        .use_link_set_password(&token_hash, SET_PASSWORD, &hash, now)
        .await?
        .is_none()
    {
        return link_invalid();
    }
    tracing::info!(user = %user.id, "password set through a one-time link");
    pages::render(
        StatusCode::OK,
        &MessagePage::new("Password set", "Your password is set. You can sign in now.")
            .with_link("/signin", "Sign in"),
    )
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {

    #[tokio::test]
    async fn verified_passwords_are_remembered_per_hash() {
        let h = hash_password("correct horse battery").unwrap();
        let other = hash_password("another long password").unwrap();
        let checks = password_checks();
        let ok = |p: &str, h: &str| verify_blocking(&checks, p.to_string(), Some(h.to_string()));
        assert!(ok("correct horse battery", &h).await.unwrap());
        // Now from the cache; a wrong password or another hash still fails.
        assert!(ok("correct horse battery", &h).await.unwrap());
        assert!(!ok("correct horse batterY", &h).await.unwrap());
        assert!(!ok("correct horse battery", &other).await.unwrap());
        assert!(
            !verify_blocking(&checks, "correct horse battery".into(), None)
                .await
                .unwrap()
        );
    }

    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email(" Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        assert_eq!(
            normalize_email("a.b+c@x-y.example").unwrap(),
            "a.b+c@x-y.example"
        );
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "a@b@c",
            ".a@x.y",
            "a..b@x.y",
            "a@-x.y",
            "a@x..y",
            "a b@x.y",
            "a\nb@x.y",
            "\"a\"@x.y",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(!verify_password("x", crate::password::dummy_phc()));
        assert!(check_password("short", 10).is_err());
        assert!(check_password("long enough!", 10).is_ok());
    }

    #[test]
    fn next_is_local() {
        assert_eq!(safe_next("/device?user_code=X"), "/device?user_code=X");
        assert_eq!(safe_next("//evil.example/"), "/device");
        assert_eq!(safe_next("https://evil.example/"), "/device");
        assert_eq!(safe_next("/\\evil"), "/device");
    }
}
