//! OAuth 2.0 Device Authorization Grant (RFC 8628) with RFC 8414 metadata: the device
//! authorization endpoint, the token endpoint (device_code and refresh_token grants), the
//! verification page where an organisation's administrator approves or denies a device, and the
//! bearer-token check the device API uses.
//!
//! Besides `client_id` and `scope`, the device authorization request carries the device's identity
//! and the requesting user (our extension parameters, ignored by other servers): `device_name`,
//! `device_make_and_model`, `device_uuid` (`urn:uuid:...` or bare), `device_location`,
//! `user_email`. Token-endpoint errors follow RFC 8628 §3.5 and RFC 6749 §5.2; pending and
//! slow_down responses also carry the `interval` now in force.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::accounts::{current_session, normalize_email, signed_in};
use super::enrolment::Enrolment;
use super::pages::{
    self, AuthorizationView, DeviceCodePage, DeviceConfirmPage, MessagePage, PageError,
};
use super::secrets::{
    ct_eq, display_user_code, hash_secret, new_user_code, normalize_user_code, random_token,
};
use super::Cloud;
use crate::store::accounts::Role;
use crate::store::device_auth::{
    AuthorizationStatus, DeviceAuthorization, InsertOutcome, NewDeviceAuthorization, TokenPair,
};
use crate::store::StoreError;

pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const REFRESH_TOKEN_GRANT: &str = "refresh_token";
/// The scopes a device may ask for; `printer` (register printers, fetch their jobs) is the default.
pub const SCOPES: &[&str] = &["printer"];

pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
pub const DEVICE_AUTHORIZATION_PATH: &str = "/oauth/device_authorization";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const VERIFICATION_PATH: &str = "/device";

/// Throttle buckets.
const CODE_GUESS_CLIENT: &str = "user-code-client";
const CODE_GUESS_GLOBAL: &str = "user-code-global";
const DEVICE_REQUESTS_CLIENT: &str = "device-authorization-client";

/// A token or device authorization endpoint answer other than success. The `Display` text is for
/// the log; clients get the RFC error code and a short description.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    #[error("authorization_pending")]
    AuthorizationPending { interval: i64 },
    #[error("slow_down")]
    SlowDown { interval: i64 },
    #[error("access_denied")]
    AccessDenied,
    #[error("expired_token")]
    ExpiredToken,
    #[error("too many requests: {description}")]
    TooManyRequests {
        retry_after: i64,
        description: &'static str,
    },
    #[error("internal error: {0}")]
    Internal(#[from] StoreError),
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            OAuthError::InvalidRequest(d) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_request", "error_description": d}),
            ),
            OAuthError::InvalidScope(d) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_scope", "error_description": d}),
            ),
            OAuthError::UnsupportedGrantType => (
                StatusCode::BAD_REQUEST,
                json!({"error": "unsupported_grant_type",
                       "error_description": "supported: device_code and refresh_token"}),
            ),
            OAuthError::InvalidGrant(d) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_grant", "error_description": d}),
            ),
            OAuthError::AuthorizationPending { interval } => (
                StatusCode::BAD_REQUEST,
                json!({"error": "authorization_pending",
                       "error_description": "the administrator has not decided yet",
                       "interval": interval}),
            ),
            OAuthError::SlowDown { interval } => (
                StatusCode::BAD_REQUEST,
                json!({"error": "slow_down",
                       "error_description": "polled sooner than the interval; it grew by 5 seconds",
                       "interval": interval}),
            ),
            OAuthError::AccessDenied => (
                StatusCode::BAD_REQUEST,
                json!({"error": "access_denied",
                       "error_description": "the administrator denied the request"}),
            ),
            OAuthError::ExpiredToken => (
                StatusCode::BAD_REQUEST,
                json!({"error": "expired_token",
                       "error_description": "the device_code expired; start again"}),
            ),
            OAuthError::TooManyRequests { description, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": "invalid_request", "error_description": description}),
            ),
            OAuthError::Internal(cause) => {
                tracing::error!("OAuth endpoint failed: {cause}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "server_error",
                           "error_description": "internal error; try again later"}),
                )
            }
        };
        let mut resp = (status, Json(body)).into_response();
        pages::no_store(resp.headers_mut());
        if let OAuthError::TooManyRequests { retry_after, .. } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                resp.headers_mut().insert(RETRY_AFTER, v);
            }
        }
        resp
    }
}

fn json_no_store(body: Value) -> Response {
    let mut resp = Json(body).into_response();
    pages::no_store(resp.headers_mut());
    resp
}

/// RFC 8414 authorization server metadata.
pub async fn metadata(State(cloud): State<Arc<Cloud>>) -> Response {
    let base = &cloud.public_url;
    let mut resp = Json(json!({
        "issuer": base,
        "device_authorization_endpoint": format!("{base}{DEVICE_AUTHORIZATION_PATH}"),
        "token_endpoint": format!("{base}{TOKEN_PATH}"),
        "grant_types_supported": [DEVICE_CODE_GRANT, REFRESH_TOKEN_GRANT],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": SCOPES,
        // Not RFC 8414: where a device without its own mail relay has the administrator mailed.
        "printbridge_admin_notification_endpoint":
            format!("{base}{}", super::admin_notify::NOTIFY_PATH),
    }))
    .into_response();
    resp.headers_mut()
        .insert("cache-control", HeaderValue::from_static("max-age=300"));
    resp
}

/// The request's parameters; a repeated parameter is an error (RFC 6749 §3.1).
fn params(
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<HashMap<String, String>, OAuthError> {
    let Form(pairs) = form.map_err(|_| {
        OAuthError::InvalidRequest(
            "expected a POST with an application/x-www-form-urlencoded body".into(),
        )
    })?;
    let mut out = HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        if out.contains_key(&k) {
            return Err(OAuthError::InvalidRequest(format!(
                "parameter {k} appears more than once"
            )));
        }
        out.insert(k, v);
    }
    Ok(out)
}

fn required<'a>(p: &'a HashMap<String, String>, name: &str) -> Result<&'a str, OAuthError> {
    match p.get(name).map(String::as_str) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(OAuthError::InvalidRequest(format!("{name} is missing"))),
    }
}

/// A client_id: 1 to 128 visible ASCII characters.
fn client_id(p: &HashMap<String, String>) -> Result<&str, OAuthError> {
    let id = required(p, "client_id")?;
    if id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(OAuthError::InvalidRequest("client_id is malformed".into()));
    }
    Ok(id)
}

/// An optional free-text identity parameter: at most `max` characters, no control characters.
fn text_param(p: &HashMap<String, String>, name: &str, max: usize) -> Result<String, OAuthError> {
    let v = p.get(name).map(|s| s.trim()).unwrap_or("");
    if v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(OAuthError::InvalidRequest(format!(
            "{name} must be at most {max} characters without control characters"
        )));
    }
    Ok(v.to_string())
}

fn scope(p: &HashMap<String, String>) -> Result<String, OAuthError> {
    let Some(s) = p.get("scope").map(|s| s.trim()).filter(|s| !s.is_empty()) else {
        return Ok(SCOPES[0].to_string());
    };
    let mut scopes: Vec<&str> = Vec::new();
    for token in s.split(' ').filter(|t| !t.is_empty()) {
        if !SCOPES.contains(&token) {
            return Err(OAuthError::InvalidScope(format!(
                "unknown scope; supported: {}",
                SCOPES.join(" ")
            )));
        }
        if !scopes.contains(&token) {
            scopes.push(token);
        }
    }
    Ok(scopes.join(" "))
}

/// `urn:uuid:` + the lower-case hyphenated UUID.
fn device_uuid(p: &HashMap<String, String>) -> Result<String, OAuthError> {
    let v = p.get("device_uuid").map(|s| s.trim()).unwrap_or("");
    if v.is_empty() {
        return Ok(String::new());
    }
    let bare = v
        .strip_prefix("urn:uuid:")
        .or_else(|| v.strip_prefix("URN:UUID:"))
        .unwrap_or(v);
    uuid::Uuid::parse_str(bare)
        .map(|u| u.urn().to_string())
        .map_err(|_| OAuthError::InvalidRequest("device_uuid is not a UUID".into()))
}

/// POST /oauth/device_authorization (RFC 8628 §3.1, §3.2).
pub async fn device_authorization(
    State(cloud): State<Arc<Cloud>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, OAuthError> {
    let p = params(form)?;
    let client_id = client_id(&p)?.to_string();
    let scope = scope(&p)?;
    let device_name = text_param(&p, "device_name", 127)?;
    let device_make_and_model = text_param(&p, "device_make_and_model", 127)?;
    let device_location = text_param(&p, "device_location", 127)?;
    let device_uuid = device_uuid(&p)?;
    let user_email = match p
        .get("user_email")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        Some(e) => normalize_email(e).map_err(|_| {
            OAuthError::InvalidRequest("user_email is not a valid email address".into())
        })?,
        None => String::new(),
    };
    let now = cloud.now();
    let client = peer.ip().to_string();
    let limits = &cloud.config.limits;
    let hits = cloud
        .store
        .throttle_hit(DEVICE_REQUESTS_CLIENT, &client, now, limits.window_seconds)
        .await?;
    if hits > limits.device_requests_per_client {
        tracing::warn!(%client, "device authorization refused: too many requests");
        return Err(OAuthError::TooManyRequests {
            retry_after: limits.window_seconds,
            description: "too many requests from this address; try again later",
        });
    }
    let cfg = &cloud.config.device_authorization;
    let expires_at = now + cfg.expires_in_seconds;
    // A fresh user code collides with a stored one about once in 2^34 draws: draw again.
    for _ in 0..8 {
        let device_code = random_token();
        let user_code = new_user_code();
        let new = NewDeviceAuthorization {
            device_code_hash: hash_secret(&device_code),
            user_code: user_code.clone(),
            client_id: client_id.clone(),
            scope: scope.clone(),
            device_name: device_name.clone(),
            device_make_and_model: device_make_and_model.clone(),
            device_uuid: device_uuid.clone(),
            device_location: device_location.clone(),
            user_email: user_email.clone(),
            client_ip: client.clone(),
            created_at: now,
            expires_at,
            interval_seconds: cfg.interval_seconds,
        };
        match cloud
            .store
            .insert_device_authorization(&new, cfg.max_pending)
            .await
        {
            Ok((id, InsertOutcome::Inserted)) => {
                tracing::info!(
                    request = %id, %client, device = %device_name, uuid = %device_uuid,
                    user = %user_email, "device authorization requested"
                );
                let shown = display_user_code(&user_code);
                let base = &cloud.public_url;
                return Ok(json_no_store(json!({
                    "device_code": device_code,
                    "user_code": shown,
                    "verification_uri": format!("{base}{VERIFICATION_PATH}"),
                    "verification_uri_complete":
                        format!("{base}{VERIFICATION_PATH}?user_code={shown}"),
                    "expires_in": cfg.expires_in_seconds,
                    "interval": cfg.interval_seconds,
                })));
            }
            Ok((_, InsertOutcome::TooManyPending)) => {
                tracing::warn!(%client, uuid = %device_uuid, user = %user_email,
                    "device authorization refused: too many pending requests");
                return Err(OAuthError::TooManyRequests {
                    retry_after: cfg.interval_seconds.max(60),
                    description: "this device or user already has too many pending requests; \
                         finish or let them expire first",
                });
            }
            Err(StoreError::Duplicate(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(OAuthError::Internal(StoreError::Duplicate(
        "a user code (8 draws in a row)",
    )))
}

/// A fresh token pair: the plain tokens for the client, the hashes for the store.
fn new_tokens(cloud: &Cloud, now: i64) -> (String, String, TokenPair) {
    let access = random_token();
    let refresh = random_token();
    let pair = TokenPair {
        access_hash: hash_secret(&access),
        access_expires_at: now + cloud.config.tokens.access_token_seconds,
        refresh_hash: hash_secret(&refresh),
        refresh_expires_at: now + cloud.config.tokens.refresh_token_seconds,
    };
    (access, refresh, pair)
}

fn token_response(cloud: &Cloud, access: String, refresh: String, scope: &str) -> Response {
    json_no_store(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": cloud.config.tokens.access_token_seconds,
        "refresh_token": refresh,
        "scope": scope,
    }))
}

/// POST /oauth/token (RFC 8628 §3.4, §3.5; RFC 6749 §6 for refresh).
pub async fn token(
    State(cloud): State<Arc<Cloud>>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, OAuthError> {
    let p = params(form)?;
    match required(&p, "grant_type")? {
        DEVICE_CODE_GRANT => device_code_grant(&cloud, &p).await,
        REFRESH_TOKEN_GRANT => refresh_grant(&cloud, &p).await,
        _ => Err(OAuthError::UnsupportedGrantType),
    }
}

async fn device_code_grant(
    cloud: &Cloud,
    p: &HashMap<String, String>,
) -> Result<Response, OAuthError> {
    let device_code = required(p, "device_code")?;
    let client_id = client_id(p)?;
    let now = cloud.now();
    let Some(poll) = cloud
        .store
        .poll_authorization(&hash_secret(device_code), now)
        .await?
    else {
        return Err(OAuthError::InvalidGrant("unknown device_code"));
    };
    if !ct_eq(&poll.client_id, client_id) {
        return Err(OAuthError::InvalidGrant(
            "the device_code was issued to another client",
        ));
    }
    if poll.status == AuthorizationStatus::Issued {
        return Err(OAuthError::InvalidGrant("the device_code was already used"));
    }
    if now >= poll.expires_at {
        return Err(OAuthError::ExpiredToken);
    }
    match poll.status {
        AuthorizationStatus::Denied => Err(OAuthError::AccessDenied),
        AuthorizationStatus::Pending if poll.too_fast => Err(OAuthError::SlowDown {
            interval: poll.interval_seconds,
        }),
        AuthorizationStatus::Pending => Err(OAuthError::AuthorizationPending {
            interval: poll.interval_seconds,
        }),
        AuthorizationStatus::Approved | AuthorizationStatus::Issued => {
            let (access, refresh, pair) = new_tokens(cloud, now);
            match cloud
                .store
                .redeem_authorization(&poll.id, &pair, now)
                .await?
            {
                Some(issued) => {
                    tracing::info!(request = %poll.id, device = %issued.device_id,
                        "device registered; tokens issued");
                    Ok(token_response(cloud, access, refresh, &issued.scope))
                }
                // Another poll (possibly on another instance) redeemed it a moment ago.
                None => Err(OAuthError::InvalidGrant("the device_code was already used")),
            }
        }
    }
}

async fn refresh_grant(cloud: &Cloud, p: &HashMap<String, String>) -> Result<Response, OAuthError> {
    let refresh = required(p, "refresh_token")?;
    let client_id = client_id(p)?;
    let now = cloud.now();
    let (access, new_refresh, pair) = new_tokens(cloud, now);
    match cloud
        .store
        .rotate_refresh_token(&hash_secret(refresh), client_id, &pair, now)
        .await?
    {
        Some(issued) => Ok(token_response(cloud, access, new_refresh, &issued.scope)),
        None => Err(OAuthError::InvalidGrant(
            "the refresh token is unknown, used, expired or another client's",
        )),
    }
}

/// The device an `Authorization: Bearer` access token stands for, or a 401 response
/// (RFC 6750 §3).
pub async fn bearer_device(
    cloud: &Cloud,
    headers: &HeaderMap,
) -> Result<Result<crate::store::device_auth::RegisteredDevice, Response>, StoreError> {
    let Some(token) = bearer_token(headers) else {
        return Ok(Err(bearer_unauthorized(None)));
    };
    let now = cloud.now();
    match cloud
        .store
        .device_by_access(&hash_secret(token), now)
        .await?
    {
        Some(d) => Ok(Ok(d)),
        None => Ok(Err(bearer_unauthorized(Some("invalid_token")))),
    }
}

/// The token of an `Authorization: Bearer TOKEN` header (RFC 6750 §2.1), if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// 401 with the RFC 6750 §3 challenge: `error` names what was wrong with the credential, none
/// when there was no credential.
pub fn bearer_unauthorized(error: Option<&str>) -> Response {
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": error.unwrap_or("invalid_request")})),
    )
        .into_response();
    let v = match error {
        Some(e) => format!("Bearer realm=\"printbridge\", error=\"{e}\""),
        None => "Bearer realm=\"printbridge\"".to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&v) {
        resp.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    resp
}

/// GET /api/v1/device: the device the bearer token belongs to.
pub async fn api_device(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let device = match bearer_device(&cloud, &headers).await? {
        Ok(d) => d,
        Err(resp) => return Ok(resp),
    };
    let users = cloud.store.device_users(&device.id).await?;
    // Registration spec A6: an approved user who has not chosen a password yet cannot print.
    let not_enrolled = cloud.store.device_users_not_enrolled(&device.id).await?;
    Ok(json_no_store(json!({
        "users_awaiting_enrolment": not_enrolled,
        "device_id": device.id,
        "organisation": device.org_name,
        "name": device.name,
        "make_and_model": device.make_and_model,
        "uuid": device.uuid,
        "location": device.location,
        "users": users,
    })))
}

// ---- the verification page ------------------------------------------------------------------

/// The signed-in administrator, or the response to send instead (sign-in redirect, refusal).
async fn require_admin(
    cloud: &Cloud,
    headers: &HeaderMap,
    back_to: &str,
) -> Result<Result<crate::store::accounts::Session, Response>, PageError> {
    let Some(session) = current_session(cloud, headers).await? else {
        let to = format!("/signin?next={}", pages::query_escape(back_to));
        return Ok(Err(pages::redirect(&to)));
    };
    if session.user.role != Role::Admin {
        let page = MessagePage::error(
            "Administrators only",
            "Only an administrator of your organisation can connect devices. Sign in as one, \
             or pass the code to your administrator.",
        )
        .signed_in(Some(signed_in(&session)));
        return Ok(Err(pages::render(StatusCode::FORBIDDEN, &page)?));
    }
    Ok(Ok(session))
}

fn view(a: &DeviceAuthorization, now: i64) -> AuthorizationView {
    let or_dash = |s: &str| {
        if s.is_empty() {
            "—".to_string()
        } else {
            s.to_string()
        }
    };
    AuthorizationView {
        id: a.id.clone(),
        user_code: display_user_code(&a.user_code),
        device_name: or_dash(&a.device_name),
        make_and_model: or_dash(&a.device_make_and_model),
        location: or_dash(&a.device_location),
        uuid: or_dash(&a.device_uuid),
        user_email: or_dash(&a.user_email),
        client_ip: a.client_ip.clone(),
        time_left: pages::duration_text(a.expires_at - now),
    }
}

/// GET /device[?user_code=XXXX-XXXX]: enter a code, or see the request it names.
pub async fn verify_get(
    State(cloud): State<Arc<Cloud>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let entered = q.get("user_code").map(|s| s.trim()).unwrap_or("");
    let back_to = if entered.is_empty() {
        VERIFICATION_PATH.to_string()
    } else {
        format!(
            "{VERIFICATION_PATH}?user_code={}",
            pages::query_escape(entered)
        )
    };
    let session = match require_admin(&cloud, &headers, &back_to).await? {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    let me = || Some(signed_in(&session));
    let code_page = |status, error: Option<&str>| {
        pages::render(
            status,
            &DeviceCodePage {
                signed_in: me(),
                error: error.map(str::to_string),
                code: entered.chars().take(20).collect(),
            },
        )
    };
    if entered.is_empty() {
        return code_page(StatusCode::OK, None);
    }
    let now = cloud.now();
    let client = peer.ip().to_string();
    let limits = &cloud.config.limits;
    let window = limits.window_seconds;
    let store = &cloud.store;
    if store
        .throttle_count(CODE_GUESS_CLIENT, &client, now, window)
        .await?
        >= limits.user_code_failures_per_client
        || store
            .throttle_count(CODE_GUESS_GLOBAL, "all", now, window)
            .await?
            >= limits.user_code_failures_global
    {
        tracing::warn!(%client, user = %session.user.id, "user code refused: too many wrong codes");
        return code_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many wrong codes were entered. Wait a few minutes and try again."),
        );
    }
    let found = match normalize_user_code(entered) {
        Some(code) => store.pending_authorization_by_user_code(&code, now).await?,
        None => None,
    };
    let Some(a) = found else {
        store
            .throttle_hit(CODE_GUESS_CLIENT, &client, now, window)
            .await?;
        store
            .throttle_hit(CODE_GUESS_GLOBAL, "all", now, window)
            .await?;
        tracing::info!(%client, user = %session.user.id, "wrong or expired user code entered");
        return code_page(
            StatusCode::NOT_FOUND,
            Some("No pending request has this code. Check it, or it may have expired."),
        );
    };
    confirm_page(&session, &a, now, StatusCode::OK, None, None)
}

fn confirm_page(
    session: &crate::store::accounts::Session,
    a: &DeviceAuthorization,
    now: i64,
    status: StatusCode,
    error: Option<String>,
    email: Option<&str>,
) -> Result<Response, PageError> {
    pages::render(
        status,
        &DeviceConfirmPage {
            signed_in: Some(signed_in(session)),
            error,
            a: view(a, now),
            user_email: email.unwrap_or(&a.user_email).to_string(),
            org: session.user.org_name.clone(),
            csrf: session.csrf_token.clone(),
        },
    )
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    request: String,
    #[serde(default)]
    user_email: String,
    #[serde(default)]
    decision: String,
}

/// POST /device: approve or deny a request.
pub async fn verify_post(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Result<Response, PageError> {
    let session = match require_admin(&cloud, &headers, VERIFICATION_PATH).await? {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    let me = || Some(signed_in(&session));
    let Ok(Form(f)) = form else {
        return pages::render(
            StatusCode::BAD_REQUEST,
            &MessagePage::error("Bad request", "The form could not be read.").signed_in(me()),
        );
    };
    if f.csrf.is_empty() || !ct_eq(&session.csrf_token, &f.csrf) {
        return pages::render(
            StatusCode::FORBIDDEN,
            &MessagePage::error(
                "Form expired",
                "The form expired or came from elsewhere. Enter the code again.",
            )
            .with_link(VERIFICATION_PATH, "Enter the code")
            .signed_in(me()),
        );
    }
    let now = cloud.now();
    let Some(a) = cloud.store.authorization(&f.request).await? else {
        return not_pending(&session);
    };
    if a.status != AuthorizationStatus::Pending || now >= a.expires_at {
        return not_pending(&session);
    }
    let admin = &session.user;
    match f.decision.as_str() {
        "approve" => {
            let email = f.user_email.trim();
            let email = if email.is_empty() {
                String::new()
            } else {
                match normalize_email(email) {
                    Ok(e) => e,
                    Err(_) => {
                        return confirm_page(
                            &session,
                            &a,
                            now,
                            StatusCode::BAD_REQUEST,
                            Some("That is not a valid email address.".into()),
                            Some(email),
                        )
                    }
                }
            };
            if !email.is_empty() {
                if let Some(u) = cloud.store.user_by_email(&email).await? {
                    if u.org_id != admin.org_id {
                        return confirm_page(
                            &session,
                            &a,
                            now,
                            StatusCode::BAD_REQUEST,
                            Some(format!(
                                "{email} belongs to another organisation; correct the user."
                            )),
                            Some(&email),
                        );
                    }
                }
            }
            if !cloud
                .store
                .approve_authorization(&a.id, &admin.org_id, &admin.id, &email, now)
                .await?
            {
                return not_pending(&session);
            }
            tracing::info!(request = %a.id, admin = %admin.id, user = %email, "device approved");
            let who = if email.is_empty() {
                String::new()
            } else {
                let device = super::enrolment::DeviceFacts {
                    name: &a.device_name,
                    make_and_model: &a.device_make_and_model,
                    location: &a.device_location,
                };
                match super::enrolment::enrol(&cloud, admin, &email, device).await? {
                    Enrolment::Enrolled => format!(" {email} may print on it."),
                    Enrolment::MailQueued => format!(
                        " {email} has no account yet: a mail with a link to choose a password \
                         is on its way, and {email} may print once that is done."
                    ),
                    Enrolment::MailNotSent(why) => format!(
                        " {email} has no password yet and no mail was sent ({why}): create a \
                         link with `printbridge cloud admin add-user {org} {email} --link` and \
                         pass it on.",
                        org = admin.org_name
                    ),
                }
            };
            pages::render(
                StatusCode::OK,
                &MessagePage::new(
                    "Device approved",
                    format!(
                        "{} will finish registering in {} within a few seconds.{who}",
                        if a.device_name.is_empty() {
                            "The device"
                        } else {
                            &a.device_name
                        },
                        admin.org_name
                    ),
                )
                .with_link(VERIFICATION_PATH, "Connect another device")
                .signed_in(me()),
            )
        }
        "deny" => {
            if !cloud
                .store
                .deny_authorization(&a.id, &admin.org_id, &admin.id, now)
                .await?
            {
                return not_pending(&session);
            }
            tracing::info!(request = %a.id, admin = %admin.id, "device denied");
            pages::render(
                StatusCode::OK,
                &MessagePage::new(
                    "Device denied",
                    "The device was refused and will be told so.",
                )
                .with_link(VERIFICATION_PATH, "Connect another device")
                .signed_in(me()),
            )
        }
        _ => pages::render(
            StatusCode::BAD_REQUEST,
            &MessagePage::error("Bad request", "Choose approve or deny.").signed_in(me()),
        ),
    }
}

fn not_pending(session: &crate::store::accounts::Session) -> Result<Response, PageError> {
    pages::render(
        StatusCode::CONFLICT,
        &MessagePage::error(
            "Request no longer pending",
            "This request was already approved or denied, or it expired.",
        )
        .with_link(VERIFICATION_PATH, "Enter another code")
        .signed_in(Some(signed_in(session))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn scopes() {
        assert_eq!(scope(&p(&[])).unwrap(), "printer");
        assert_eq!(
            scope(&p(&[("scope", "printer printer")])).unwrap(),
            "printer"
        );
        assert!(matches!(
            scope(&p(&[("scope", "admin")])),
            Err(OAuthError::InvalidScope(_))
        ));
    }

    #[test]
    fn uuids() {
        let u = "urn:uuid:2b0c1c5e-6f5a-4a53-9d56-0d0f6a1b2c3d";
        assert_eq!(device_uuid(&p(&[("device_uuid", u)])).unwrap(), u);
        assert_eq!(
            device_uuid(&p(&[(
                "device_uuid",
                "2B0C1C5E-6F5A-4A53-9D56-0D0F6A1B2C3D"
            )]))
            .unwrap(),
            u
        );
        assert!(device_uuid(&p(&[("device_uuid", "nope")])).is_err());
        assert_eq!(device_uuid(&p(&[])).unwrap(), "");
    }

    #[test]
    fn text_params() {
        assert!(text_param(&p(&[("device_name", "a\u{7}b")]), "device_name", 127).is_err());
        assert_eq!(
            text_param(&p(&[("device_name", " Office ")]), "device_name", 127).unwrap(),
            "Office"
        );
    }
}
