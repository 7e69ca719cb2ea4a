//! The portal page "Your held jobs" (`/account/held`), made for a phone: each held job with
//! "Print here" on a printer picked from the group's signed-in (IN) printers and the others the
//! user may use, and Delete; the setting "release held jobs at group sign-in"; the follow-me
//! queue's URI to add in the print dialog. Forms are POSTs with the session's CSRF token.

use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

use super::{FollowMeError, LIST_LIMIT};
use crate::cloud::accounts::{current_session, signed_in};
use crate::cloud::admin_groups::time_text;
use crate::cloud::pages::{self, PageError, SignedIn};
use crate::cloud::secrets::ct_eq;
use crate::cloud::Cloud;
use crate::store::accounts::Session;
use crate::store::follow_me::ReleaseSettings;

pub const HELD_PATH: &str = "/account/held";

pub struct JobView {
    pub id: i64,
    pub name: String,
    pub created: String,
    pub size: String,
}

pub struct TargetView {
    pub id: String,
    pub label: String,
    pub chosen: bool,
}

#[derive(Template)]
#[template(path = "cloud/held.html")]
pub struct HeldPage {
    pub signed_in: Option<SignedIn>,
    pub csrf: String,
    pub notice: Option<String>,
    pub jobs: Vec<JobView>,
    pub targets: Vec<TargetView>,
    pub release_at_sign_in: bool,
    pub queue: String,
    pub hold: String,
}

pub fn routes() -> Router<Arc<Cloud>> {
    Router::new().route(HELD_PATH, get(held_get).post(held_post))
}

fn size_text(bytes: i64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} bytes"),
        b if b < 1024 * 1024 => format!("{} KB", (b + 1023) / 1024),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

async fn page(
    cloud: &Cloud,
    session: &Session,
    status: StatusCode,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let account = &session.user.email;
    let jobs = cloud
        .store
        .held_jobs(account, true, LIST_LIMIT)
        .await?
        .into_iter()
        .map(|j| JobView {
            id: j.job_id,
            name: j.name,
            created: time_text(j.created_at),
            size: size_text(j.size),
        })
        .collect();
    let settings = cloud.store.release_settings(account).await?;
    let targets = super::targets(cloud, account)
        .await?
        .into_iter()
        .map(|t| TargetView {
            chosen: settings.release_printer.as_deref() == Some(t.printer.id.as_str()),
            label: if t.in_group {
                format!("{} (signed in)", t.printer.name)
            } else {
                t.printer.name.clone()
            },
            id: t.printer.id,
        })
        .collect();
    let mut resp = pages::render(
        status,
        &HeldPage {
            signed_in: Some(signed_in(session)),
            csrf: session.csrf_token.clone(),
            notice,
            jobs,
            targets,
            release_at_sign_in: settings.release_at_sign_in,
            queue: super::ipp::queue_uris(cloud)
                .into_iter()
                .next()
                .map(|(u, _)| u)
                .unwrap_or_default(),
            hold: super::hold_text(cloud.config.infra.held_job_seconds),
        },
    )?;
    pages::no_store(resp.headers_mut());
    Ok(resp)
}

fn to_sign_in() -> Response {
    pages::redirect(&format!("/signin?next={}", pages::query_escape(HELD_PATH)))
}

/// GET /account/held
pub async fn held_get(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    match current_session(&cloud, &headers).await? {
        Some(s) => page(&cloud, &s, StatusCode::OK, None).await,
        None => Ok(to_sign_in()),
    }
}

#[derive(Deserialize)]
pub struct HeldForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    job: String,
    #[serde(default)]
    printer: String,
    #[serde(default)]
    release_at_sign_in: String,
}

/// The notice and status of a failed release or deletion.
fn refusal(e: FollowMeError) -> Result<(StatusCode, String), PageError> {
    Ok(match e {
        FollowMeError::NotFound => (StatusCode::NOT_FOUND, "No such held job.".into()),
        FollowMeError::NotHeld(why) => (StatusCode::CONFLICT, format!("The job is {why}.")),
        FollowMeError::Forbidden(why) => (StatusCode::FORBIDDEN, format!("Not released: {why}.")),
        FollowMeError::Store(e) => return Err(e.into()),
    })
}

/// POST /account/held: release, delete, or save the release setting.
pub async fn held_post(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
    form: Result<Form<HeldForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Some(session) = current_session(&cloud, &headers).await? else {
        return Ok(to_sign_in());
    };
    let Ok(Form(f)) = form else {
        let notice = Some("The form could not be read.".into());
        return page(&cloud, &session, StatusCode::BAD_REQUEST, notice).await;
    };
    if f.csrf.is_empty() || !ct_eq(&session.csrf_token, &f.csrf) {
        let notice = Some("The form expired or came from elsewhere; try again.".into());
        return page(&cloud, &session, StatusCode::FORBIDDEN, notice).await;
    }
    let account = session.user.email.clone();
    let job = f.job.parse::<i64>().ok().filter(|n| *n > 0);
    let (status, notice) = match (f.action.as_str(), job) {
        ("release", Some(job)) => match super::release(&cloud, &account, job, &f.printer).await {
            Ok(_) => (StatusCode::OK, "Released: it prints now.".to_string()),
            Err(e) => refusal(e)?,
        },
        ("delete", Some(job)) => match super::delete(&cloud, &account, job).await {
            Ok(()) => (StatusCode::OK, "Deleted unprinted.".to_string()),
            Err(e) => refusal(e)?,
        },
        ("settings", _) => {
            let s = ReleaseSettings {
                release_at_sign_in: f.release_at_sign_in == "1",
                release_printer: Some(f.printer.clone()).filter(|p| !p.is_empty()),
            };
            match super::api::put_settings(&cloud, &account, s).await {
                Ok(_) => (StatusCode::OK, "Saved.".to_string()),
                Err(super::api::HeldApiError::FollowMe(e)) => refusal(e)?,
                Err(_) => (
                    StatusCode::BAD_REQUEST,
                    "Pick the printer the jobs go to.".to_string(),
                ),
            }
        }
        _ => (
            StatusCode::BAD_REQUEST,
            "Choose a job and Print here or Delete.".to_string(),
        ),
    };
    page(&cloud, &session, status, Some(notice)).await
}
