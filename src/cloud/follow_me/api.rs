//! The held-jobs JSON API (docs/cloud.md, docs/release.md "Print-anywhere"), authenticated by
//! the account's Bearer token (a personal access token or a session token from
//! `POST /api/v1/session`) or the portal's session cookie (then changes need the session's CSRF
//! token in `X-CSRF-Token`, as the groups API):
//!
//! - `GET /api/v1/held-jobs` → `{"jobs":[{"id","name","pages","created","size"}], "queue": URI}`
//! - `POST /api/v1/held-jobs/{id}/release` `{"printer": ID}` → 200 `{"job","printer",
//!   "printer_job_id"}`; 409 not held any more (released — also the loser of two simultaneous
//!   releases —, deleted, expired); 404 not the account's job; 403 a printer the account may
//!   not release to.
//! - `DELETE /api/v1/held-jobs/{id}` → 204.
//! - `GET/PUT /api/v1/held-jobs/settings` `{"release_at_sign_in": bool, "release_printer": ID
//!   or null}`: the group setting "release held jobs at group sign-in".

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{FollowMeError, LIST_LIMIT};
use crate::cloud::groups::api::{json_error, pc_session, ApiError};
use crate::cloud::secrets::hash_secret;
use crate::cloud::Cloud;
use crate::store::follow_me::{HeldJobRow, ReleaseSettings};
use crate::store::StoreError;

pub const HELD_JOBS_PATH: &str = "/api/v1/held-jobs";

#[derive(Debug, thiserror::Error)]
pub enum HeldApiError {
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error(transparent)]
    Auth(ApiError),
    #[error(transparent)]
    FollowMe(#[from] FollowMeError),
}

impl From<StoreError> for HeldApiError {
    fn from(e: StoreError) -> HeldApiError {
        HeldApiError::FollowMe(FollowMeError::Store(e))
    }
}

impl IntoResponse for HeldApiError {
    fn into_response(self) -> Response {
        match self {
            HeldApiError::Invalid(d) => json_error(StatusCode::BAD_REQUEST, "invalid_request", &d),
            HeldApiError::Auth(e) => e.into_response(),
            HeldApiError::FollowMe(FollowMeError::NotFound) => {
                json_error(StatusCode::NOT_FOUND, "not_found", "no such held job")
            }
            HeldApiError::FollowMe(FollowMeError::NotHeld(why)) => json_error(
                StatusCode::CONFLICT,
                "not_held",
                &format!("the job is {why}"),
            ),
            HeldApiError::FollowMe(FollowMeError::Forbidden(d)) => {
                json_error(StatusCode::FORBIDDEN, "forbidden", &d)
            }
            HeldApiError::FollowMe(FollowMeError::Store(e)) => {
                tracing::error!("held-jobs request failed: {e}");
                json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal error; try again later",
                )
            }
        }
    }
}

/// The account a request acts for: a Bearer personal access token or session token, or the
/// portal's cookie (a change then needs the CSRF header).
pub async fn account(
    cloud: &Cloud,
    headers: &HeaderMap,
    change: bool,
) -> Result<String, HeldApiError> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 512);
    if let Some(token) = bearer {
        if let Some(email) = cloud
            .store
            .user_email_by_token(&hash_secret(token), cloud.now())
            .await?
        {
            return Ok(email);
        }
    }
    match pc_session(cloud, headers, change).await {
        Ok(pc) => Ok(pc.session.user.email),
        Err(ApiError::Store(e)) => Err(e.into()),
        Err(e) => Err(HeldApiError::Auth(e)),
    }
}

/// The JSON of a held job (the contract's fields; pages are not counted yet: null).
pub fn job_json(j: &HeldJobRow) -> serde_json::Value {
    json!({
        "id": j.job_id,
        "name": j.name,
        "pages": j.pages,
        "created": j.created_at,
        "size": j.size,
    })
}

fn job_id(raw: &str) -> Result<i64, HeldApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or(HeldApiError::FollowMe(FollowMeError::NotFound))
}

/// GET /api/v1/held-jobs
pub async fn list(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
) -> Result<Response, HeldApiError> {
    let account = account(&cloud, &headers, false).await?;
    let jobs = cloud.store.held_jobs(&account, true, LIST_LIMIT).await?;
    let queue = super::ipp::queue_uris(&cloud)
        .into_iter()
        .next()
        .map(|(u, _)| u);
    Ok(Json(json!({
        "jobs": jobs.iter().map(job_json).collect::<Vec<_>>(),
        "queue": queue,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    printer: String,
}

/// POST /api/v1/held-jobs/{id}/release
pub async fn release(
    State(cloud): State<Arc<Cloud>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HeldApiError> {
    let account = account(&cloud, &headers, true).await?;
    let id = job_id(&id)?;
    let b: ReleaseBody = serde_json::from_slice(&body)
        .map_err(|_| HeldApiError::Invalid("the body must be {\"printer\": PRINTER-ID}".into()))?;
    let printer_job_id = super::release(&cloud, &account, id, &b.printer).await?;
    Ok(Json(json!({
        "job": id,
        "printer": b.printer,
        "printer_job_id": printer_job_id,
    }))
    .into_response())
}

/// DELETE /api/v1/held-jobs/{id}
pub async fn delete(
    State(cloud): State<Arc<Cloud>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HeldApiError> {
    let account = account(&cloud, &headers, true).await?;
    super::delete(&cloud, &account, job_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn settings_json(s: &ReleaseSettings) -> serde_json::Value {
    json!({
        "release_at_sign_in": s.release_at_sign_in,
        "release_printer": s.release_printer,
    })
}

/// GET /api/v1/held-jobs/settings
pub async fn settings_get(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
) -> Result<Response, HeldApiError> {
    let account = account(&cloud, &headers, false).await?;
    let s = cloud.store.release_settings(&account).await?;
    Ok(Json(settings_json(&s)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    release_at_sign_in: bool,
    #[serde(default)]
    release_printer: Option<String>,
}

/// Checks and stores the release setting: turning it on needs a printer the account may
/// release to.
pub async fn put_settings(
    cloud: &Cloud,
    account: &str,
    s: ReleaseSettings,
) -> Result<ReleaseSettings, HeldApiError> {
    if let Some(p) = &s.release_printer {
        if !super::may_release_to(cloud, account, p).await? {
            return Err(FollowMeError::Forbidden(
                "the printer must be one of your group's signed-in printers or one you may use"
                    .into(),
            )
            .into());
        }
    } else if s.release_at_sign_in {
        return Err(HeldApiError::Invalid(
            "release at group sign-in needs release_printer".into(),
        ));
    }
    cloud
        .store
        .put_release_settings(account, &s, cloud.now())
        .await?;
    Ok(s)
}

/// PUT /api/v1/held-jobs/settings
pub async fn settings_put(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HeldApiError> {
    let account = account(&cloud, &headers, true).await?;
    let b: SettingsBody = serde_json::from_slice(&body).map_err(|_| {
        HeldApiError::Invalid(
            "the body must be {\"release_at_sign_in\": BOOL, \"release_printer\": ID or null}"
                .into(),
        )
    })?;
    let s = put_settings(
        &cloud,
        &account,
        ReleaseSettings {
            release_at_sign_in: b.release_at_sign_in,
            release_printer: b.release_printer.filter(|p| !p.is_empty()),
        },
    )
    .await?;
    Ok(Json(settings_json(&s)).into_response())
}
