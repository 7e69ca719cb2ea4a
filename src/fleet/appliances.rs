//! The appliances' API (HTTPS JSON, bodies of at most 16 KiB; CONTRACT-fleet.md, docs/fleet.md):
//! enrolment (with a token, or pending an administrator's approval), the request relay by pull
//! (`GET .../requests`) and push (the same with `?wait=SECONDS`, a long poll answered the moment a
//! request exists: at once when this instance made it, within a `TICK` when another did),
//! taking a request, its progress and outcome (flow B8), and the appliance's own state. The
//! appliance's bearer credential is the secret it got at enrolment; only its hash is stored.
//! An appliance sees and answers its own requests only: anything else is 403, the same whether
//! the request exists or not.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::Fleet;
use crate::cloud::control::{hold, json_error, store_failed, wait_param};
use crate::cloud::device_auth::{bearer_token, bearer_unauthorized};
use crate::cloud::secrets::{hash_secret, random_token};
use crate::store::fleet::{
    Appliance, ApplianceDetails, ReportOutcome, Request, ENROLLED, PENDING_APPROVAL, REJECTED,
    REPORTED,
};

pub const ENROL_PATH: &str = "/api/v1/appliances/enrol";
/// Throttle bucket of enrolment attempts per client address.
const ENROL_CLIENT: &str = "fleet-enrol-client";
/// Longest name, location, model and message kept, characters.
const MAX_TEXT: usize = 255;
const MAX_MESSAGE: usize = 500;

#[derive(Deserialize)]
pub struct EnrolBody {
    token: Option<String>,
    /// The appliance's current secret, when it enrols again (or `Authorization: Bearer`).
    secret: Option<String>,
    uuid: String,
    name: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    make_and_model: String,
    admin_email: Option<String>,
}

fn bad_request(description: &str) -> Response {
    json_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

/// A body that could not be read: 413 when it is too large, 400 otherwise.
fn body_error(rejection: JsonRejection, description: &str) -> Response {
    let status = rejection.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return json_error(status, "too_large", "the body is too large");
    }
    bad_request(description)
}

fn forbidden(error: &str, description: &str) -> Response {
    json_error(StatusCode::FORBIDDEN, error, description)
}

pub use crate::model::ipp_caps::checked_text as clean_text;

/// `urn:uuid:` and an RFC 9562 UUID, lower-cased.
pub fn normalize_uuid(s: &str) -> Option<String> {
    let rest = s.strip_prefix("urn:uuid:")?;
    let u = uuid::Uuid::parse_str(rest).ok()?;
    Some(format!("urn:uuid:{}", u.hyphenated()))
}

#[allow(clippy::result_large_err)] // a handler's early answer, built once per request
fn details(b: &EnrolBody) -> Result<ApplianceDetails, Response> {
    let uuid = normalize_uuid(b.uuid.trim())
        .ok_or_else(|| bad_request("uuid must be urn:uuid: and a UUID"))?;
    let name = clean_text(&b.name, MAX_TEXT);
    if name.is_empty() {
        return Err(bad_request("name must not be empty"));
    }
    let admin_email = match b.admin_email.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(a) => Some(
            crate::model::email::normalize(a)
                .ok_or_else(|| bad_request("admin_email is not a valid address"))?,
        ),
    };
    Ok(ApplianceDetails {
        uuid,
        name,
        location: clean_text(&b.location, MAX_TEXT),
        location_preset: false,
        make_and_model: clean_text(&b.make_and_model, MAX_TEXT),
        admin_email,
    })
}

fn enrolled(id: &str, secret: &str, status: &str) -> Response {
    let code = if status == ENROLLED {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    (
        code,
        Json(json!({"appliance_id": id, "secret": secret, "status": status})),
    )
        .into_response()
}

/// POST /api/v1/appliances/enrol.
pub async fn enrol(
    State(fleet): State<Arc<Fleet>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<EnrolBody>, JsonRejection>,
) -> Response {
    let now = fleet.now();
    let limits = &fleet.config.limits;
    match fleet
        .store
        .throttle_hit(
            ENROL_CLIENT,
            &peer.ip().to_string(),
            now,
            limits.window_seconds,
        )
        .await
    {
        Ok(hits) if hits > limits.enrolments_per_client => {
            return json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "slow_down",
                "too many enrolments from this address; try again later",
            )
        }
        Ok(_) => {}
        Err(e) => return store_failed(e),
    }
    let b = match body {
        Ok(Json(b)) => b,
        Err(r) => return body_error(r, "the body must be JSON with uuid and name"),
    };
    let d = match details(&b) {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    match enrol_checked(&fleet, &headers, &b, d, now).await {
        Ok(resp) => resp,
        Err(e) => store_failed(e),
    }
}

async fn enrol_checked(
    fleet: &Fleet,
    headers: &HeaderMap,
    b: &EnrolBody,
    mut d: ApplianceDetails,
    now: i64,
) -> Result<Response, crate::store::StoreError> {
    let store = &fleet.store;
    let existing = store.appliance_by_uuid(&d.uuid).await?;
    let presented = bearer_token(headers).or(b.secret.as_deref());
    if let (Some(a), Some(secret)) = (&existing, presented) {
        let hash = hash_secret(secret);
        if let Some(found) = store.appliance_by_secret(&hash).await? {
            if found.id == a.id {
                // The same appliance again: it keeps its id and its secret.
                if a.status == REJECTED {
                    return Ok(forbidden(
                        "rejected",
                        "this appliance's enrolment was refused",
                    ));
                }
                let token_ok = match &b.token {
                    Some(t) => apply_token(fleet, t, &mut d, now).await?,
                    None => false,
                };
                let status = if a.status == ENROLLED || token_ok {
                    ENROLLED
                } else {
                    a.status.as_str()
                };
                store
                    .reenrol_appliance(&a.id, &d, &hash, status, now)
                    .await?;
                tracing::info!(appliance = %a.id, status, "appliance enrolled again");
                return Ok(enrolled(&a.id, secret, status));
            }
        }
    }
    let secret = random_token();
    let hash = hash_secret(&secret);
    if let Some(t) = &b.token {
        if !apply_token(fleet, t, &mut d, now).await? {
            return Ok(forbidden(
                "invalid_token",
                "the enrolment token is unknown, used or expired",
            ));
        }
        // A token is an administrator's word: it may take over a uuid whose secret was lost
        // (a reinstalled appliance), keeping the directory entry and its id.
        let id = match &existing {
            Some(a) => {
                store
                    .reenrol_appliance(&a.id, &d, &hash, ENROLLED, now)
                    .await?;
                a.id.clone()
            }
            None => store.insert_appliance(&d, &hash, ENROLLED, now).await?,
        };
        tracing::info!(appliance = %id, name = %d.name, "appliance enrolled with a token");
        return Ok(enrolled(&id, &secret, ENROLLED));
    }
    if existing.is_some() {
        return Ok(json_error(
            StatusCode::CONFLICT,
            "uuid_taken",
            "an appliance with this uuid is enrolled; present its secret or an enrolment token",
        ));
    }
    if !fleet.config.enrolment.allow_pending {
        return Ok(forbidden(
            "token_required",
            "this fleet enrols appliances with an enrolment token only",
        ));
    }
    let id = store
        .insert_appliance(&d, &hash, PENDING_APPROVAL, now)
        .await?;
    tracing::info!(appliance = %id, name = %d.name, "appliance waits for approval");
    Ok(enrolled(&id, &secret, PENDING_APPROVAL))
}

/// Uses up the enrolment token `token` for `d`, applying what it preregisters (location,
/// administrator address). False when the token is unknown, used or expired.
async fn apply_token(
    fleet: &Fleet,
    token: &str,
    d: &mut ApplianceDetails,
    now: i64,
) -> Result<bool, crate::store::StoreError> {
    if token.is_empty() || token.len() > 256 {
        return Ok(false);
    }
    let Some((location, admin_email)) = fleet
        .store
        .use_enrol_token(&hash_secret(token.trim()), &d.uuid, now)
        .await?
    else {
        return Ok(false);
    };
    if let Some(l) = location {
        d.location = l;
        d.location_preset = true;
    }
    if admin_email.is_some() {
        d.admin_email = admin_email;
    }
    Ok(true)
}

/// The appliance the bearer secret belongs to, if it is the one in the path; otherwise the
/// response to give (401 without a valid secret, 403 for another appliance's path or a refused
/// enrolment).
async fn authenticated(
    fleet: &Fleet,
    headers: &HeaderMap,
    id: &str,
) -> Result<Appliance, Response> {
    let Some(secret) = bearer_token(headers) else {
        return Err(bearer_unauthorized(None));
    };
    let found = fleet
        .store
        .appliance_by_secret(&hash_secret(secret))
        .await
        .map_err(store_failed)?;
    match found {
        None => Err(bearer_unauthorized(Some("invalid_token"))),
        Some(a) if a.id != id => Err(forbidden(
            "forbidden",
            "this credential belongs to another appliance",
        )),
        Some(a) if a.status == REJECTED => Err(forbidden(
            "rejected",
            "this appliance's enrolment was refused",
        )),
        Some(a) => Ok(a),
    }
}

/// A request as its appliance gets it.
pub fn request_for_appliance(r: &Request) -> Value {
    let mut v = json!({
        "id": r.id,
        "user_email": r.user_email,
        "admin_email": r.admin_email,
        "created_at": r.created_at,
    });
    if let Some(n) = r.retries {
        v["retries"] = json!(n);
    }
    v
}

/// GET /api/v1/appliances/{id}/requests[?wait=SECONDS]: the appliance's requests it has not
/// taken. Without `wait` (pull) the answer is immediate; with it (push) the poll is held until a
/// request exists or the time is over.
pub async fn poll(
    State(fleet): State<Arc<Fleet>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let a = match authenticated(&fleet, &headers, &id).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let wait = match wait_param(&q, 0, fleet.config.enrolment.max_wait_seconds) {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    if let Err(e) = fleet.store.touch_appliance(&a.id, fleet.now()).await {
        return store_failed(e);
    }
    let found = hold(&fleet.wake, &a.id, Duration::from_secs(wait), || {
        fleet.store.open_requests(&a.id)
    })
    .await;
    match found {
        Ok(open) => {
            let list: Vec<Value> = open.iter().map(request_for_appliance).collect();
            Json(json!({"status": a.status, "requests": list})).into_response()
        }
        Err(e) => store_failed(e),
    }
}

/// POST /api/v1/appliances/{id}/requests/{req}/accept: the appliance has taken the request
/// (again: no change).
pub async fn accept(
    State(fleet): State<Arc<Fleet>>,
    Path((id, req)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let a = match authenticated(&fleet, &headers, &id).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    match fleet.store.accept_request(&a.id, &req, fleet.now()).await {
        Ok(true) => {
            tracing::info!(appliance = %a.id, request = %req, "request taken");
            Json(json!({"id": req, "accepted": true})).into_response()
        }
        Ok(false) => not_yours(),
        Err(e) => store_failed(e),
    }
}

fn not_yours() -> Response {
    forbidden("forbidden", "no such request for this appliance")
}

#[derive(Deserialize)]
pub struct StatusBody {
    status: String,
    #[serde(default)]
    message: String,
    attempts: Option<i64>,
}

/// POST /api/v1/appliances/{id}/requests/{req}/status: progress or outcome (B8). A terminal
/// status is recorded once: the same again is 200 without change, another is 409.
pub async fn status(
    State(fleet): State<Arc<Fleet>>,
    Path((id, req)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<StatusBody>, JsonRejection>,
) -> Response {
    let a = match authenticated(&fleet, &headers, &id).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let b = match body {
        Ok(Json(b)) => b,
        Err(r) => return body_error(r, "the body must be JSON with status and message"),
    };
    if !REPORTED.contains(&b.status.as_str()) {
        return bad_request(
            "status must be requested, code-sent, waiting, completed, denied or failed",
        );
    }
    if b.attempts.is_some_and(|n| !(0..=1000).contains(&n)) {
        return bad_request("attempts must be 0..=1000");
    }
    let message = clean_text(&b.message, MAX_MESSAGE);
    let outcome = fleet
        .store
        .report_request_status(&a.id, &req, &b.status, &message, b.attempts, fleet.now())
        .await;
    match outcome {
        Ok(ReportOutcome::Recorded { terminal }) => {
            tracing::info!(appliance = %a.id, request = %req, status = %b.status,
                "request status reported");
            if terminal {
                super::outcome::spawn_mail(fleet.clone(), req.clone());
            }
            Json(json!({"id": req, "status": b.status, "changed": true})).into_response()
        }
        Ok(ReportOutcome::Unchanged) => {
            Json(json!({"id": req, "status": b.status, "changed": false})).into_response()
        }
        Ok(ReportOutcome::Conflict) => json_error(
            StatusCode::CONFLICT,
            "outcome_recorded",
            "this request has another outcome already",
        ),
        Ok(ReportOutcome::NotYours) => not_yours(),
        Err(e) => store_failed(e),
    }
}

#[derive(Deserialize)]
pub struct StateBody {
    registered: bool,
    cloud: Option<String>,
    name: String,
    #[serde(default)]
    location: String,
}

/// POST /api/v1/appliances/{id}/state: whether the appliance is registered with the cloud (and
/// which), its name and location.
pub async fn state(
    State(fleet): State<Arc<Fleet>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<StateBody>, JsonRejection>,
) -> Response {
    let a = match authenticated(&fleet, &headers, &id).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let b = match body {
        Ok(Json(b)) => b,
        Err(r) => {
            return body_error(
                r,
                "the body must be JSON with registered, cloud, name and location",
            )
        }
    };
    let name = clean_text(&b.name, MAX_TEXT);
    if name.is_empty() {
        return bad_request("name must not be empty");
    }
    let cloud = match b.cloud.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(u) => match crate::cloud::config::normalize_public_url(u) {
            Ok(u) if u.len() <= 512 => Some(u),
            _ => return bad_request("cloud must be an http(s) URL"),
        },
    };
    let location = clean_text(&b.location, MAX_TEXT);
    match fleet
        .store
        .set_appliance_state(
            &a.id,
            b.registered,
            cloud.as_deref(),
            &name,
            &location,
            fleet.now(),
        )
        .await
    {
        Ok(()) => Json(json!({"id": a.id, "status": a.status})).into_response(),
        Err(e) => store_failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_and_texts() {
        assert_eq!(
            normalize_uuid("urn:uuid:0E7A3C4B-1234-4A5B-8C9D-0123456789AB").as_deref(),
            Some("urn:uuid:0e7a3c4b-1234-4a5b-8c9d-0123456789ab")
        );
        assert_eq!(normalize_uuid("0e7a3c4b-1234-4a5b-8c9d-0123456789ab"), None);
        assert_eq!(normalize_uuid("urn:uuid:../../etc"), None);
    }
}
