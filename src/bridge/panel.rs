//! The appliance's panel for group sign-in and sign-out (docs/groups.md "Appliance side"): the
//! administration page `/admin/cloud` (per cloud-shared queue: the accounts signed in, a sign-in
//! form with account and password, sign-out buttons) and the JSON API behind it and behind
//! `printbridge signin/signout`, for the appliance's administrators only:
//!
//! - `GET /api/v1/queues` → the shared queues: name, cloud printer, power saving, settings,
//!   and the accounts signed in (asked of the cloud);
//! - `POST /api/v1/queues/{queue}/sign-in` `{"account", "password"}` → signs the account in with
//!   the cloud;
//! - `POST /api/v1/queues/{queue}/sign-out` `{"account"}` → a printer-initiated sign-out: the
//!   cloud deletes the record (the printer leaves the account's group).
//!
//! POSTs take only `application/json` (which a cross-site form cannot send) and refuse another
//! site's Origin. The password goes to the cloud only; it is never logged or kept.

use std::sync::Arc;

use axum::extract::{Extension, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::api::ListAccess;
use super::groups::{GroupQueue, Groups, GroupsError, Secret};
use crate::web::Conn;

pub const QUEUES_PATH: &str = "/api/v1/queues";
pub const PAGE: &str = "/admin/cloud";
/// Longest password taken (the cloud's own limit is lower).
const MAX_PASSWORD: usize = 1024;

pub fn router(groups: Arc<Groups>, access: ListAccess) -> Router {
    Router::new()
        .route(QUEUES_PATH, get(list))
        .route(&format!("{QUEUES_PATH}/{{queue}}/sign-in"), post(sign_in))
        .route(&format!("{QUEUES_PATH}/{{queue}}/sign-out"), post(sign_out))
        .route(PAGE, get(page))
        .route("/static/panel.js", get(script))
        .layer(Extension(access))
        .with_state(groups)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

/// The administrator check of the JSON API, as a response when refused.
async fn admin(access: &ListAccess, conn: &Conn, headers: &HeaderMap) -> Result<String, Response> {
    match crate::web::api_admin(&access.auth, access.tls, conn, headers).await {
        Ok(id) => Ok(id.name),
        Err((status, extra, message)) => {
            let code = if status == StatusCode::UNAUTHORIZED {
                "unauthorized"
            } else {
                "forbidden"
            };
            let mut resp = error(status, code, &message);
            for (k, v) in extra {
                resp.headers_mut().insert(k, v);
            }
            Err(resp)
        }
    }
}

/// A refusal of a request: status, error code, message.
type Refusal = (StatusCode, &'static str, &'static str);

/// A JSON POST from this appliance's page or an API client: the body, or the refusal.
fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, Refusal> {
    if super::api::cross_site(headers) {
        return Err((
            StatusCode::FORBIDDEN,
            "cross_site",
            "sign-in requests come from this printer's own page or its API clients",
        ));
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !is_json {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the request as application/json",
        ));
    }
    serde_json::from_slice(body).map_err(|_| {
        (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body is not JSON",
        )
    })
}

/// How a refusal of the cloud (or of this appliance) is answered. The cloud's 401 (wrong
/// password) is not passed on as 401: that would ask the browser for the appliance's password.
fn refusal(e: &GroupsError) -> Response {
    let (status, code) = match e {
        GroupsError::NotRegistered => (StatusCode::SERVICE_UNAVAILABLE, "not_registered"),
        GroupsError::NotShared(_) => (StatusCode::CONFLICT, "not_shared"),
        GroupsError::NoQueue(_) => (StatusCode::NOT_FOUND, "no_such_queue"),
        GroupsError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        GroupsError::Http(_) => (StatusCode::BAD_GATEWAY, "cloud_unreachable"),
        GroupsError::Cloud { status: 401, .. } => (StatusCode::FORBIDDEN, "sign_in_refused"),
        GroupsError::Cloud { status: 403, .. } => (StatusCode::FORBIDDEN, "not_allowed"),
        GroupsError::Cloud { status: 404, .. } => (StatusCode::NOT_FOUND, "not_signed_in"),
        GroupsError::Cloud { status: 429, .. } => (StatusCode::TOO_MANY_REQUESTS, "throttled"),
        GroupsError::Cloud { .. } => (StatusCode::BAD_GATEWAY, "cloud_error"),
    };
    error(status, code, &e.to_string())
}

/// The queue and its cloud printer id.
fn shared(groups: &Groups, queue: &str) -> Result<(Arc<GroupQueue>, String), GroupsError> {
    let q = groups.queue(queue)?;
    let id = groups
        .cloud_printer_of(&q)
        .ok_or_else(|| GroupsError::NotShared(q.name.clone()))?;
    Ok((q, id))
}

/// One queue as the API and the page show it; `accounts` asked of the cloud.
async fn queue_view(groups: &Groups, q: &GroupQueue) -> Value {
    let id = groups.cloud_printer_of(q);
    let (accounts, accounts_error) = match &id {
        Some(id) => match groups.sign_ins(id).await {
            Ok(v) => (v["accounts"].clone(), Value::Null),
            Err(e) => (Value::Null, json!(e.to_string())),
        },
        None => (Value::Null, json!("not registered with the cloud yet")),
    };
    json!({
        "queue": q.name,
        "printer_name": q.printer.description().name,
        "cloud_printer": id,
        "power_saving": q.printer.power_saving(),
        "settings": q.settings(),
        "accounts": accounts,
        "accounts_error": accounts_error,
    })
}

async fn list(
    State(groups): State<Arc<Groups>>,
    Extension(access): Extension<ListAccess>,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admin(&access, &conn, &headers).await {
        return r;
    }
    let mut queues = Vec::new();
    for q in groups.queues() {
        queues.push(queue_view(&groups, q).await);
    }
    Json(json!({ "queues": queues })).into_response()
}

async fn sign_in(
    State(groups): State<Arc<Groups>>,
    Extension(access): Extension<ListAccess>,
    Extension(conn): Extension<Conn>,
    Path(queue): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let who = match admin(&access, &conn, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let v = match json_body(&headers, &body) {
        Ok(v) => v,
        Err((status, code, message)) => return error(status, code, message),
    };
    let Some(account) = v["account"].as_str().and_then(super::valid_email) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "give the account's mail address",
        );
    };
    let Some(password) = v["password"]
        .as_str()
        .filter(|p| !p.is_empty() && p.len() <= MAX_PASSWORD)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "give the account's password",
        );
    };
    let (q, id) = match shared(&groups, &queue) {
        Ok(x) => x,
        Err(e) => return refusal(&e),
    };
    tracing::info!(user = %who, queue = %q.name, account = %account, "panel: sign-in");
    // A person at the panel: the queue is about to be used.
    q.printer.set_power_saving(None);
    match groups
        .sign_in(&id, &account, &Secret::Password(password.to_string()))
        .await
    {
        Ok(answer) => Json(json!({
            "queue": q.name,
            "printer": id,
            "account": account,
            "status": answer["status"].as_str().unwrap_or("IN"),
        }))
        .into_response(),
        Err(e) => refusal(&e),
    }
}

async fn sign_out(
    State(groups): State<Arc<Groups>>,
    Extension(access): Extension<ListAccess>,
    Extension(conn): Extension<Conn>,
    Path(queue): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let who = match admin(&access, &conn, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let v = match json_body(&headers, &body) {
        Ok(v) => v,
        Err((status, code, message)) => return error(status, code, message),
    };
    let Some(account) = v["account"].as_str().and_then(super::valid_email) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "give the account's mail address",
        );
    };
    let (q, id) = match shared(&groups, &queue) {
        Ok(x) => x,
        Err(e) => return refusal(&e),
    };
    tracing::info!(user = %who, queue = %q.name, account = %account, "panel: sign-out");
    match groups.sign_out(&id, &account, None).await {
        Ok(answer) => Json(json!({
            "queue": q.name,
            "printer": id,
            "account": account,
            "status": answer["status"].as_str().unwrap_or("deleted"),
        }))
        .into_response(),
        Err(e) => refusal(&e),
    }
}

/// One queue on the page.
struct QueueRow {
    name: String,
    printer_name: String,
    cloud_printer: String,
    power_saving: Option<String>,
    /// (account, status, established at as UTC text)
    accounts: Vec<(String, String, String)>,
    accounts_error: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "web/panel.html")]
struct PanelPage {
    printer_name: String,
    version: &'static str,
    queues: Vec<QueueRow>,
}

async fn page(
    State(groups): State<Arc<Groups>>,
    Extension(access): Extension<ListAccess>,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
) -> Response {
    use askama::Template;
    if let Err(r) = admin(&access, &conn, &headers).await {
        return r;
    }
    let mut queues = Vec::new();
    for q in groups.queues() {
        let v = queue_view(&groups, q).await;
        let accounts = v["accounts"]
            .as_array()
            .map(|list| {
                list.iter()
                    .take(1000)
                    .map(|a| {
                        let text = |k: &str| {
                            a[k].as_str()
                                .unwrap_or("")
                                .chars()
                                .filter(|c| !c.is_control())
                                .take(254)
                                .collect::<String>()
                        };
                        let at = a["established_at"]
                            .as_i64()
                            .and_then(|t| jiff::Timestamp::from_second(t).ok())
                            .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
                            .unwrap_or_default();
                        (text("account"), text("status"), at)
                    })
                    .collect()
            })
            .unwrap_or_default();
        queues.push(QueueRow {
            name: q.name.clone(),
            printer_name: q.printer.description().name,
            cloud_printer: v["cloud_printer"].as_str().unwrap_or("").to_string(),
            power_saving: q.printer.power_saving(),
            accounts,
            accounts_error: v["accounts_error"].as_str().map(str::to_string),
        });
    }
    let name = groups
        .queues()
        .first()
        .map(|q| q.printer.description().name)
        .unwrap_or_else(|| "printbridge".into());
    let page = PanelPage {
        printer_name: name,
        version: env!("CARGO_PKG_VERSION"),
        queues,
    };
    match page.render() {
        Ok(html) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("panel page: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../templates/web/panel.js"),
    )
        .into_response()
}
