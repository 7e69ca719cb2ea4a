//! `POST /api/v1/jobs/{id}/release` (issue 18, docs/release.md): releases a job held for release
//! with its PIN, JSON `{"pin": "4821", "queue": "office"}` (`queue` is a `[[queue]]`'s name;
//! absent: the default queue). Without a PIN, a signed-in owner or administrator (HTTP Basic, over
//! TLS or from this machine) releases it as on the release page. `printbridge release` uses it.
//!
//! The wrong-PIN limits are the spool's (per job and per client address, `spool::release`), so
//! this API, the release page and any other way in share them. Answers: 200 `{"job", "state"}`;
//! 404 no such job waiting for release (also someone else's); 403 wrong PIN with
//! `attempts_left`; 429 locked, with Retry-After; 409 no longer held (a replayed release).
//! POST takes only `application/json`, which a cross-site HTML form cannot send.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Extension, Path, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::Conn;
use crate::auth::Authenticator;
use crate::ipp_printer::Printer;
use crate::spool::release::ReleaseError;

/// The path of one job's release; `{id}` is its job-id in its queue.
pub const PATH: &str = "/api/v1/jobs/{id}/release";

/// The longest PIN a client may send here (a job-password is at most 64 octets as typed).
const MAX_PIN: usize = 64;

pub struct ReleaseApi {
    /// Every queue, the default one first.
    pub queues: Vec<Arc<Printer>>,
    pub auth: Arc<Authenticator>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    pin: Option<String>,
    queue: Option<String>,
}

pub fn router(api: ReleaseApi) -> Router {
    Router::new()
        .route(PATH, post(release))
        .layer(DefaultBodyLimit::max(4096))
        .with_state(Arc::new(api))
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    answer(status, json!({ "error": message.into() }))
}

async fn release(
    State(api): State<Arc<ReleaseApi>>,
    Extension(conn): Extension<Conn>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Request>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(e.status(), e.body_text()),
    };
    let Ok(id) = id.parse::<u32>() else {
        return error(StatusCode::NOT_FOUND, ReleaseError::NotFound.to_string());
    };
    let printer = match req.queue.as_deref() {
        None | Some("") => api.queues.first(),
        Some(name) => api
            .queues
            .iter()
            .find(|p| p.config.resource == format!("/ipp/print/{name}")),
    };
    let Some(printer) = printer else {
        return error(StatusCode::NOT_FOUND, "no such queue");
    };
    let spool = &printer.spool;
    let result = match req.pin {
        Some(pin) if pin.is_empty() || pin.len() > MAX_PIN => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("a PIN is 1 to {MAX_PIN} characters"),
            )
        }
        Some(pin) => spool.release_with_pin(id, &pin, conn.peer.ip()).await,
        None => {
            let authorization = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
            match api
                .auth
                .authenticate(authorization, conn.peer.ip(), conn.is_secure())
                .await
            {
                Ok(Some(who)) if who.admin => spool.release_by_admin(id, &who.name).await,
                Ok(Some(who)) => spool.release_by_owner(id, &who.name).await,
                Ok(None) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "send the job's PIN, or sign in as its owner",
                    )
                }
                Err(e) => return error(StatusCode::UNAUTHORIZED, e.to_string()),
            }
        }
    };
    match result {
        Ok(job) => answer(
            StatusCode::OK,
            json!({ "job": job.id, "state": job.status.state.keyword() }),
        ),
        Err(e) => {
            let message = e.to_string();
            match e {
                ReleaseError::NotFound => error(StatusCode::NOT_FOUND, message),
                ReleaseError::WrongPin { attempts_left } => answer(
                    StatusCode::FORBIDDEN,
                    json!({ "error": message, "attempts_left": attempts_left }),
                ),
                ReleaseError::Locked {
                    retry_after_seconds,
                } => {
                    let mut r = answer(
                        StatusCode::TOO_MANY_REQUESTS,
                        json!({ "error": message, "retry_after_seconds": retry_after_seconds }),
                    );
                    r.headers_mut()
                        .insert(RETRY_AFTER, HeaderValue::from(retry_after_seconds));
                    r
                }
                ReleaseError::NotHeld => error(StatusCode::CONFLICT, message),
                ReleaseError::Store(cause) => {
                    tracing::error!("cannot release job {id}: {cause}");
                    error(StatusCode::INTERNAL_SERVER_ERROR, message)
                }
            }
        }
    }
}
