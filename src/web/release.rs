//! The release page (issue 18, docs/release.md "Sign-in release"): `GET /release` lists the jobs
//! held for release on every queue of this appliance — job id, time, pages and the owner's initials,
//! never a name — with a PIN field per PIN job; a person signs in (a local user, or a cloud account
//! when the appliance is registered) to see "Your jobs" with their names and Print / Delete / Print
//! all, and, with a cloud account, "Your jobs in the cloud" with "Print here".
//!
//! No JavaScript: every action is a POST form with a CSRF token (a keyed digest of a random
//! per-browser cookie; the key is new at every start) from the same origin (Origin or Referer, as
//! the administration forms). Sign-in makes a release session: a random id in an HttpOnly,
//! SameSite=Strict cookie (Secure on TLS), kept only in memory for 15 minutes; a cloud account's
//! token lives in that session alone and is given back to the cloud at sign-out. Sign-ins are
//! throttled per client with the appliance's one [`Authenticator`] throttle, PINs by the spool
//! (per job and per client, `crate::spool::release`). PINs, passwords and tokens appear in no URL
//! and no log line.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{DefaultBodyLimit, Extension, Form, Query, State};
use axum::http::header::{
    CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, REFERER, RETRY_AFTER, SET_COOKIE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use blake2::Digest as _;
use futures_util::future::BoxFuture;

use super::Conn;
use crate::auth::{AuthError, Authenticator};
use crate::ipp_printer::Printer;
use crate::model::job::JobState;
use crate::model::release::ReleaseMode;
use crate::spool::release::ReleaseError;
use crate::spool::Job;

/// How long a release session lasts after sign-in (the contract's 15 minutes).
pub const SESSION_SECONDS: u64 = 15 * 60;
/// Sessions kept at most; at the limit the oldest one ends (each is a few hundred bytes).
const MAX_SESSIONS: usize = 512;
/// The largest form accepted: a sign-in form is well under 2 KiB.
pub const MAX_FORM_BYTES: usize = 4096;
const SESSION_COOKIE: &str = "pb_release";
const FORM_COOKIE: &str = "pb_release_form";
/// The longest PIN accepted from the form (PWG 5100.11 allows job-password up to 255 octets;
/// the appliance assigns 4..=8 digits).
const MAX_PIN: usize = 255;
/// Jobs that ended unprinted shown to their owner.
const MAX_ENDED: usize = 10;
/// How long the page waits for the cloud before it says the cloud cannot be reached.
const CLOUD_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ReleasePageError {
    #[error("cannot render the release page: {0}")]
    Render(#[from] askama::Error),
}

/// A cloud account's access token, held in a release session only. `Debug` hides it.
#[derive(Clone)]
pub struct CloudToken(String);

impl CloudToken {
    pub fn new(token: String) -> CloudToken {
        CloudToken(token)
    }

    /// The token, to send to the cloud; never logged.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for CloudToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CloudToken(<redacted>)")
    }
}

/// One job held in the cloud's follow-me queue for the signed-in account.
#[derive(Debug, Clone)]
pub struct CloudHeld {
    pub id: i64,
    pub name: String,
    pub pages: Option<u32>,
    pub created: i64,
    pub size: u64,
}

/// Why the cloud said no; the `Display` text is shown on the page.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CloudError {
    #[error("wrong e-mail or password")]
    BadCredentials,
    #[error("that job was already released")]
    AlreadyReleased,
    #[error("that job is no longer in the cloud")]
    NotFound,
    #[error("your group does not let you print on this printer")]
    Forbidden,
    #[error("your cloud sign-in has ended; sign out and sign in again")]
    SignedOut,
    #[error("too many failed attempts; try again later")]
    Throttled,
    #[error("the cloud cannot be reached right now")]
    Unavailable,
}

/// The cloud as the release page needs it: implemented outside `web` (the bridge owns the
/// registration and the cloud client), so the page stays below the bridge in the layering.
pub trait CloudAccounts: Send + Sync {
    /// Whether the appliance is registered with a cloud (cloud sign-in is offered then).
    fn registered(&self) -> bool;
    /// Signs a cloud account in with its e-mail and password (POST /api/v1/session).
    fn sign_in(
        &self,
        email: String,
        password: String,
    ) -> BoxFuture<'static, Result<CloudToken, CloudError>>;
    /// Ends the account's session with the cloud (DELETE /api/v1/session).
    fn sign_out(&self, token: CloudToken) -> BoxFuture<'static, ()>;
    /// The account's held follow-me jobs.
    fn held_jobs(
        &self,
        token: CloudToken,
    ) -> BoxFuture<'static, Result<Vec<CloudHeld>, CloudError>>;
    /// Releases one held job to a cloud printer.
    fn release(
        &self,
        token: CloudToken,
        job: i64,
        printer_id: String,
    ) -> BoxFuture<'static, Result<(), CloudError>>;
    /// The cloud printer id of `queue`, or why jobs from the cloud cannot print on it (no
    /// `cloud_share`, not registered with the cloud yet).
    fn printer_of(&self, queue: &Printer) -> Result<String, String>;
}

/// What the release page is built from.
pub struct ReleaseDeps {
    /// Every queue, the default one first; forms name a queue by its index here.
    pub queues: Vec<Arc<Printer>>,
    pub auth: Arc<Authenticator>,
    /// TLS is available on the port (a plain-HTTP visitor from the network is sent there).
    pub tls: bool,
    /// Release session length, [`SESSION_SECONDS`] unless configured.
    pub session_seconds: u64,
    pub cloud: Option<Arc<dyn CloudAccounts>>,
}

struct St {
    deps: ReleaseDeps,
    /// Key of the CSRF tokens; new every start.
    csrf_key: [u8; 32],
    /// Release sessions by the digest of their cookie value (the value itself is not kept).
    sessions: Mutex<HashMap<[u8; 32], Session>>,
}

#[derive(Clone)]
struct Session {
    /// The name jobs are owned by: a local user name or the cloud account's e-mail.
    user: String,
    cloud: Option<CloudToken>,
    started: Instant,
    expires: Instant,
}

type Shared = State<Arc<St>>;
type Resp = axum::response::Response;

/// The routes of the release page; merged into the appliance's web router.
pub fn router(deps: ReleaseDeps) -> Router {
    let mut csrf_key = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut csrf_key) {
        // Guessable tokens would let other sites release jobs: refuse every form instead.
        tracing::error!("no system randomness for CSRF tokens ({e}); release forms are disabled");
        csrf_key = [0; 32];
    }
    let st = Arc::new(St {
        deps,
        csrf_key,
        sessions: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/release", get(page))
        .route("/release/pin", post(pin_release))
        .route("/release/sign-in", post(sign_in))
        .route("/release/job", post(own_job))
        .route("/release/all", post(print_all))
        .route("/release/sign-out", post(sign_out))
        .route("/release/cloud", post(cloud_release))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(st)
}

/// Whether `path` is one of the release page's form targets (POSTs there are not IPP).
pub fn is_form_path(path: &str) -> bool {
    path.starts_with("/release/")
}

// ---- views -------------------------------------------------------------------------------------

/// A held job as everybody sees it: no name, only the owner's initials.
pub struct HeldView {
    pub queue: usize,
    pub queue_name: String,
    pub id: u32,
    pub time: String,
    pub pages: String,
    pub initials: String,
    /// Released with a PIN (else only by its owner, signed in).
    pub pin: bool,
}

/// A held job of the signed-in person.
pub struct MyJobView {
    pub queue: usize,
    pub queue_name: String,
    pub id: u32,
    pub name: String,
    pub time: String,
    pub pages: String,
}

/// A held job of the signed-in person that ended without printing.
pub struct EndedView {
    pub queue_name: String,
    pub id: u32,
    pub name: String,
    pub time: String,
    /// Its job-state-message ("Not released within 4 hours; deleted unprinted").
    pub why: String,
}

pub struct CloudJobView {
    pub id: i64,
    pub name: String,
    pub time: String,
    pub pages: String,
}

pub struct CloudView {
    pub jobs: Vec<CloudJobView>,
    /// Queues a cloud job can be printed on here: (index, name).
    pub here: Vec<(usize, String)>,
    /// Why no queue here takes cloud jobs.
    pub why_not: Option<String>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "web/release.html")]
pub struct ReleasePage {
    pub printer_name: String,
    pub version: &'static str,
    pub csrf: String,
    pub notice: Option<String>,
    pub error: Option<String>,
    /// The signed-in person's name, and minutes left in the session.
    pub signed_in: Option<(String, u64)>,
    pub mine: Vec<MyJobView>,
    pub ended: Vec<EndedView>,
    pub waiting: Vec<HeldView>,
    pub multi_queue: bool,
    /// Sign-in may be offered here (TLS or this machine).
    pub sign_in_secure: bool,
    pub cloud_offered: bool,
    pub cloud: Option<CloudView>,
}

/// A person's initials from an owner name (`alice.smith@example.com` → `AS`), at most two, so a
/// held job's owner can find it without the list naming anybody.
pub fn initials(owner: &str) -> String {
    let local = owner.split('@').next().unwrap_or("");
    let s: String = local
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(2)
        .filter_map(|w| w.chars().next())
        .flat_map(char::to_uppercase)
        .collect();
    if s.is_empty() {
        "?".to_string()
    } else {
        s
    }
}

fn format_time(unix: i64) -> String {
    let tz = jiff::tz::TimeZone::system();
    let Ok(t) = jiff::Timestamp::from_second(unix) else {
        return String::new();
    };
    let z = t.to_zoned(tz.clone());
    if z.date() == jiff::Timestamp::now().to_zoned(tz).date() {
        z.strftime("%H:%M").to_string()
    } else {
        z.strftime("%d %b %H:%M").to_string()
    }
}

/// Pages when known (a held job is converted only when it prints), else the size.
fn pages_text(pages: Option<u32>, bytes: u64) -> String {
    match pages {
        Some(1) => "1 page".to_string(),
        Some(n) if n > 0 => format!("{n} pages"),
        _ => super::pages::format_size(bytes),
    }
}

fn job_pages(job: &Job) -> String {
    pages_text(
        (job.status.pages > 0).then_some(job.status.pages),
        job.documents.iter().map(|d| d.size).sum(),
    )
}

/// A pin job (its record's mode; it waits with job-password-wait, PWG 5100.11) takes a PIN; a
/// sign-in job (job-hold-until-specified) only its owner, signed in.
fn is_pin_job(queue: &Printer, job: &Job) -> bool {
    queue
        .spool
        .release_record(job.id)
        .is_some_and(|r| r.mode == ReleaseMode::Pin)
}

// ---- sessions, cookies, CSRF -------------------------------------------------------------------

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        // Our values are 64 hex digits; anything else is not ours.
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn random_hex() -> Option<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).ok()?;
    Some(b.iter().map(|b| format!("{b:02x}")).collect())
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake2::Blake2s256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn csrf_token(key: &[u8; 32], form_cookie: &str) -> String {
    digest(&[
        key,
        b"printbridge release csrf v1\0",
        form_cookie.as_bytes(),
    ])
    .iter()
    .map(|b| format!("{b:02x}"))
    .collect()
}

fn set_cookie(conn: &Conn, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/release; HttpOnly; SameSite=Strict");
    if let Some(s) = max_age {
        c.push_str(&format!("; Max-Age={s}"));
    }
    if conn.scheme == "ipps" {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static("x=; Max-Age=0"))
}

impl St {
    /// The session the request's cookie names, if it has not ended; `Err(())` when it had
    /// (expired), so the page can say so.
    fn session(&self, headers: &HeaderMap) -> Result<Option<(Session, [u8; 32])>, ()> {
        let Some(id) = cookie(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let key = digest(&[id.as_bytes()]);
        let mut sessions = self.sessions.lock().expect("release sessions");
        match sessions.get(&key) {
            Some(s) if s.expires > Instant::now() => Ok(Some((s.clone(), key))),
            Some(_) => {
                let ended = sessions.remove(&key);
                drop(sessions);
                if let Some(token) = ended.and_then(|s| s.cloud) {
                    self.end_cloud_session(token);
                }
                Err(())
            }
            // Unknown: ended at a restart or never ours.
            None => Err(()),
        }
    }

    fn end_cloud_session(&self, token: CloudToken) {
        if let Some(cloud) = &self.deps.cloud {
            let f = cloud.sign_out(token);
            tokio::spawn(async move {
                let _ = tokio::time::timeout(CLOUD_TIMEOUT, f).await;
            });
        }
    }

    fn start_session(&self, user: String, cloud: Option<CloudToken>) -> Option<String> {
        let id = random_hex()?;
        let now = Instant::now();
        let mut ended = Vec::new();
        {
            let mut sessions = self.sessions.lock().expect("release sessions");
            if sessions.len() >= MAX_SESSIONS {
                sessions.retain(|_, s| {
                    let live = s.expires > now;
                    if !live {
                        ended.extend(s.cloud.clone());
                    }
                    live
                });
                if sessions.len() >= MAX_SESSIONS {
                    if let Some(oldest) = sessions
                        .iter()
                        .min_by_key(|(_, s)| s.started)
                        .map(|(k, _)| *k)
                    {
                        ended.extend(sessions.remove(&oldest).and_then(|s| s.cloud));
                    }
                }
            }
            sessions.insert(
                digest(&[id.as_bytes()]),
                Session {
                    user,
                    cloud,
                    started: now,
                    expires: now + Duration::from_secs(self.deps.session_seconds),
                },
            );
        }
        for t in ended {
            self.end_cloud_session(t);
        }
        Some(id)
    }

    fn cloud_offered(&self) -> bool {
        self.deps.cloud.as_ref().is_some_and(|c| c.registered())
    }

    fn printer_name(&self) -> String {
        self.deps.queues[0].description().name
    }

    fn queue(&self, index: &str) -> Option<(usize, &Arc<Printer>)> {
        let i: usize = index.trim().parse().ok()?;
        self.deps.queues.get(i).map(|q| (i, q))
    }
}

/// Same origin + the form cookie + its token. The Origin (or Referer) check is the
/// administration forms' (`super::same_origin`).
fn check_post(st: &St, conn: &Conn, headers: &HeaderMap, token: &str) -> Result<String, Box<Resp>> {
    let origin_ok = match (headers.get(ORIGIN), headers.get(REFERER)) {
        (Some(o), _) => o.to_str().is_ok_and(|o| super::same_origin(o, conn)),
        (None, Some(r)) => r.to_str().is_ok_and(|r| super::same_origin(r, conn)),
        (None, None) => true,
    };
    let form_cookie = cookie(headers, FORM_COOKIE);
    let token_ok = form_cookie.is_some_and(|c| {
        super::constant_time_eq(token.as_bytes(), csrf_token(&st.csrf_key, c).as_bytes())
    });
    match form_cookie {
        Some(c) if origin_ok && token_ok && st.csrf_key != [0; 32] => Ok(c.to_string()),
        _ => {
            tracing::warn!(peer = %conn.peer, "release page: form refused (CSRF check failed)");
            Err(Box::new(super::message_page(
                &st.printer_name(),
                StatusCode::FORBIDDEN,
                "Form refused",
                "The form was not sent from this printer's release page, or the page is out of date.",
                Some("Open the release page again and retry.".to_string()),
            )))
        }
    }
}

fn see_other(to: &str) -> Resp {
    (
        StatusCode::SEE_OTHER,
        [(
            LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/release")),
        )],
    )
        .into_response()
}

// ---- the page ----------------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct NoticeQuery {
    done: Option<String>,
    job: Option<String>,
    n: Option<String>,
}

fn notice_text(q: &NoticeQuery) -> Option<String> {
    let num = |v: &Option<String>| {
        v.as_deref()
            .filter(|s| s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
    };
    let job = num(&q.job);
    Some(match (q.done.as_deref()?, job) {
        ("printed", Some(j)) => format!("Job {j} is released: it prints now."),
        ("printed", None) => "The job is released: it prints now.".to_string(),
        ("deleted", Some(j)) => format!("Job {j} was deleted without printing."),
        ("deleted", None) => "The job was deleted without printing.".to_string(),
        ("all", _) => match num(&q.n) {
            Some(1) => "1 job released: it prints now.".to_string(),
            Some(n) => format!("{n} jobs released: they print now."),
            None => "Your jobs are released.".to_string(),
        },
        ("signed-in", _) => "Signed in.".to_string(),
        ("signed-out", _) => "Signed out.".to_string(),
        ("cloud", _) => "Sent from the cloud to this printer: it prints in a moment.".to_string(),
        _ => return None,
    })
}

async fn page(
    State(st): Shared,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    Query(q): Query<NoticeQuery>,
) -> Resp {
    if !conn.is_secure() && st.deps.tls {
        // PINs and passwords go over TLS when the port has it.
        if let Ok(v) = HeaderValue::from_str(&format!("https://{}/release", conn.host)) {
            return (StatusCode::TEMPORARY_REDIRECT, [(LOCATION, v)]).into_response();
        }
    }
    let (form_cookie, new_cookie) = match cookie(&headers, FORM_COOKIE) {
        Some(c) => (c.to_string(), false),
        None => match random_hex() {
            Some(c) => (c, true),
            None => (String::new(), false),
        },
    };
    let (session, error) = match st.session(&headers) {
        Ok(s) => (s.map(|(s, _)| s), None),
        Err(()) => (
            None,
            Some("Your sign-in has ended. Sign in again to see your jobs.".to_string()),
        ),
    };
    let mut r = render(
        &st,
        &conn,
        &form_cookie,
        session.as_ref(),
        notice_text(&q),
        error,
        StatusCode::OK,
    )
    .await;
    if new_cookie {
        r.headers_mut().append(
            SET_COOKIE,
            set_cookie(&conn, FORM_COOKIE, &form_cookie, None),
        );
    }
    if session.is_none() && cookie(&headers, SESSION_COOKIE).is_some() {
        r.headers_mut()
            .append(SET_COOKIE, set_cookie(&conn, SESSION_COOKIE, "", Some(0)));
    }
    r
}

async fn render(
    st: &St,
    conn: &Conn,
    form_cookie: &str,
    session: Option<&Session>,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Resp {
    let queues = &st.deps.queues;
    let mut waiting = Vec::new();
    let mut mine = Vec::new();
    let mut ended = Vec::new();
    for (i, q) in queues.iter().enumerate() {
        let queue_name = q.description().name;
        for job in q.spool.held_for_release(None) {
            waiting.push(HeldView {
                queue: i,
                queue_name: queue_name.clone(),
                id: job.id,
                time: format_time(job.time_created),
                pages: job_pages(&job),
                initials: initials(&job.owner),
                pin: is_pin_job(q, &job),
            });
        }
        if let Some(s) = session {
            for job in q.spool.held_for_release(Some(&s.user)) {
                mine.push(MyJobView {
                    queue: i,
                    queue_name: queue_name.clone(),
                    id: job.id,
                    name: job.name.clone(),
                    time: format_time(job.time_created),
                    pages: job_pages(&job),
                });
            }
            // Held jobs of theirs that ended unprinted (not released in time, or deleted),
            // kept in the history: the owner sees what became of them.
            for job in q.spool.list() {
                let unreleased = q
                    .spool
                    .release_record(job.id)
                    .is_some_and(|r| r.released.is_none());
                if unreleased
                    && job.status.state == JobState::Canceled
                    && job.owner.eq_ignore_ascii_case(&s.user)
                {
                    ended.push((
                        job.status.time_completed.unwrap_or(job.time_created),
                        EndedView {
                            queue_name: queue_name.clone(),
                            id: job.id,
                            name: job.name.clone(),
                            time: format_time(
                                job.status.time_completed.unwrap_or(job.time_created),
                            ),
                            why: job
                                .status
                                .message
                                .clone()
                                .filter(|m| !m.is_empty())
                                .unwrap_or_else(|| "Deleted without printing".to_string()),
                        },
                    ));
                }
            }
        }
    }
    waiting.sort_by_key(|j| (j.queue, j.id));
    mine.sort_by_key(|j| (j.queue, j.id));
    // The latest few, newest first.
    ended.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
    let ended: Vec<EndedView> = ended.into_iter().take(MAX_ENDED).map(|(_, v)| v).collect();
    let cloud = match (session.and_then(|s| s.cloud.clone()), &st.deps.cloud) {
        (Some(token), Some(c)) => Some(cloud_view(st, c.as_ref(), token).await),
        _ => None,
    };
    let now = Instant::now();
    let page = ReleasePage {
        printer_name: st.printer_name(),
        version: super::pages::VERSION,
        csrf: csrf_token(&st.csrf_key, form_cookie),
        notice,
        error,
        signed_in: session.map(|s| {
            let left = s.expires.saturating_duration_since(now).as_secs();
            (s.user.clone(), left.div_ceil(60))
        }),
        mine,
        ended,
        waiting,
        multi_queue: queues.len() > 1,
        sign_in_secure: conn.is_secure(),
        cloud_offered: st.cloud_offered(),
        cloud,
    };
    match page.render() {
        Ok(body) => (
            status,
            [(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("web: {}", ReleasePageError::from(e));
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on the printer; the details are in its log.\n",
            )
                .into_response()
        }
    }
}

async fn cloud_view(st: &St, cloud: &dyn CloudAccounts, token: CloudToken) -> CloudView {
    let mut here = Vec::new();
    let mut why_not = None;
    for (i, q) in st.deps.queues.iter().enumerate() {
        match cloud.printer_of(q) {
            Ok(_) => here.push((i, q.description().name)),
            Err(why) => why_not = why_not.or(Some(why)),
        }
    }
    let (jobs, error) = match tokio::time::timeout(CLOUD_TIMEOUT, cloud.held_jobs(token)).await {
        Ok(Ok(jobs)) => (jobs, None),
        Ok(Err(e)) => (Vec::new(), Some(e.to_string())),
        Err(_) => (Vec::new(), Some(CloudError::Unavailable.to_string())),
    };
    CloudView {
        jobs: jobs
            .into_iter()
            .map(|j| CloudJobView {
                id: j.id,
                name: j.name,
                time: format_time(j.created),
                pages: pages_text(j.pages, j.size),
            })
            .collect(),
        why_not: here.is_empty().then_some(why_not).flatten(),
        here,
        error,
    }
}

/// The page again with an error, answered with `status`.
async fn page_error(
    st: &St,
    conn: &Conn,
    headers: &HeaderMap,
    form_cookie: &str,
    status: StatusCode,
    error: String,
) -> Resp {
    let session = st.session(headers).ok().flatten().map(|(s, _)| s);
    render(
        st,
        conn,
        form_cookie,
        session.as_ref(),
        None,
        Some(error),
        status,
    )
    .await
}

/// The words and HTTP status for a refused release.
fn release_refusal(e: &ReleaseError, job: u32) -> (StatusCode, String) {
    match e {
        ReleaseError::NotFound => (
            StatusCode::NOT_FOUND,
            format!("No job {job} is waiting for release here."),
        ),
        ReleaseError::WrongPin { attempts_left } => (
            StatusCode::FORBIDDEN,
            match attempts_left {
                0 => format!("Wrong PIN for job {job}. The job is now locked for a while."),
                1 => format!("Wrong PIN for job {job}. 1 attempt left before the job locks."),
                n => format!("Wrong PIN for job {job}. {n} attempts left before the job locks."),
            },
        ),
        ReleaseError::Locked {
            retry_after_seconds,
        } => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many wrong PINs: try again in {} (at {}).",
                wait_words(*retry_after_seconds),
                clock_in(*retry_after_seconds)
            ),
        ),
        ReleaseError::NotHeld => (
            StatusCode::CONFLICT,
            format!("Job {job} is no longer waiting: it was already released or deleted."),
        ),
        other => {
            tracing::error!(job, "release page: {other}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The printer could not do that right now; its log says why.".to_string(),
            )
        }
    }
}

fn wait_words(seconds: u64) -> String {
    match seconds.max(1) {
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "1 minute".to_string(),
        s => format!("{} minutes", s.div_ceil(60)),
    }
}

/// Local time `seconds` from now, as HH:MM.
fn clock_in(seconds: u64) -> String {
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(seconds.min(86_400) as i64);
    at.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%H:%M")
        .to_string()
}

fn parse_job(s: &str) -> Option<u32> {
    let s = s.trim();
    (!s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

// ---- PIN release -------------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct PinForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    queue: String,
    #[serde(default)]
    job: String,
    #[serde(default)]
    pin: String,
    /// "delete" from the form's Delete button; anything else (Enter, Print) prints.
    #[serde(default)]
    action: String,
}

async fn pin_release(
    State(st): Shared,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    Form(f): Form<PinForm>,
) -> Resp {
    let form_cookie = match check_post(&st, &conn, &headers, &f.csrf) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let (Some((qi, queue)), Some(job)) = (st.queue(&f.queue), parse_job(&f.job)) else {
        return page_error(
            &st,
            &conn,
            &headers,
            &form_cookie,
            StatusCode::NOT_FOUND,
            "No such job is waiting for release here.".to_string(),
        )
        .await;
    };
    let pin = f.pin.trim();
    if pin.is_empty() || pin.len() > MAX_PIN || pin.chars().any(char::is_control) {
        return page_error(
            &st,
            &conn,
            &headers,
            &form_cookie,
            StatusCode::BAD_REQUEST,
            "Type the job's PIN, then press Print.".to_string(),
        )
        .await;
    }
    let outcome = if f.action == "delete" {
        queue
            .spool
            .delete_with_pin(job, pin, conn.peer.ip())
            .await
            .map(|()| "deleted")
    } else {
        queue
            .spool
            .release_with_pin(job, pin, conn.peer.ip())
            .await
            .map(|_| "printed")
    };
    match outcome {
        Ok(done) => {
            tracing::info!(peer = %conn.peer, queue = qi, job, "release page: job {done} with its PIN");
            see_other(&format!("/release?done={done}&job={job}"))
        }
        Err(e) => {
            if matches!(
                e,
                ReleaseError::WrongPin { .. } | ReleaseError::Locked { .. }
            ) {
                tracing::info!(peer = %conn.peer, queue = qi, job, "release page: PIN refused ({e})");
            }
            let (status, text) = release_refusal(&e, job);
            let mut r = page_error(&st, &conn, &headers, &form_cookie, status, text).await;
            if let ReleaseError::Locked {
                retry_after_seconds,
            } = e
            {
                r.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(retry_after_seconds.max(1)));
            }
            r
        }
    }
}

// ---- sign-in and sign-out ----------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
}

async fn sign_in(
    State(st): Shared,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Resp {
    let form_cookie = match check_post(&st, &conn, &headers, &f.csrf) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let fail = |status: StatusCode, text: String| {
        let st = st.clone();
        let conn = conn.clone();
        let headers = headers.clone();
        let form_cookie = form_cookie.clone();
        async move { page_error(&st, &conn, &headers, &form_cookie, status, text).await }
    };
    if !conn.is_secure() {
        return fail(
            StatusCode::FORBIDDEN,
            "Signing in needs a secure (https://) connection or the printer's own screen."
                .to_string(),
        )
        .await;
    }
    let user = f.user.trim();
    // A colon cannot be in a user name: it would split the Basic credentials checked below.
    if user.is_empty()
        || user.contains(':')
        || user.len() > 254
        || user.chars().any(char::is_control)
        || f.password.is_empty()
        || f.password.len() > 1024
    {
        return fail(
            StatusCode::BAD_REQUEST,
            "Type your user name (or e-mail) and password.".to_string(),
        )
        .await;
    }
    let ip = conn.peer.ip();
    let signed = if user.contains('@') && st.cloud_offered() {
        cloud_sign_in(&st, ip, user, &f.password).await
    } else {
        local_sign_in(&st, ip, user, &f.password).await
    };
    let (name, token) = match signed {
        Ok(s) => s,
        Err((status, text)) => {
            let mut r = fail(status, text).await;
            if let Err(AuthError::Throttled(wait)) = st.deps.auth.check_throttle(ip) {
                r.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
            }
            return r;
        }
    };
    tracing::info!(peer = %conn.peer, user = %name, cloud = token.is_some(), "release page: signed in");
    let Some(id) = st.start_session(name, token) else {
        return fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "The printer could not start a session; its log says why.".to_string(),
        )
        .await;
    };
    let mut r = see_other("/release?done=signed-in");
    r.headers_mut().append(
        SET_COOKIE,
        set_cookie(&conn, SESSION_COOKIE, &id, Some(st.deps.session_seconds)),
    );
    r
}

type SignedIn = Result<(String, Option<CloudToken>), (StatusCode, String)>;

fn auth_refusal(e: &AuthError) -> (StatusCode, String) {
    let status = match e {
        AuthError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
        AuthError::Insecure => StatusCode::FORBIDDEN,
        AuthError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        AuthError::BadCredentials | AuthError::Malformed => StatusCode::UNAUTHORIZED,
    };
    let text = match e {
        AuthError::Malformed => AuthError::BadCredentials.to_string(),
        e => e.to_string(),
    };
    (status, format!("Not signed in: {text}."))
}

/// A local user, checked (and throttled) by the appliance's one [`Authenticator`], given the
/// form's name and password as the Basic credentials it checks for IPP.
async fn local_sign_in(st: &St, ip: IpAddr, user: &str, password: &str) -> SignedIn {
    let header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    match st
        .deps
        .auth
        .authenticate(Some(header.as_bytes()), ip, true)
        .await
    {
        Ok(Some(id)) => Ok((id.name, None)),
        Ok(None) => Err(auth_refusal(&AuthError::BadCredentials)),
        Err(e) => Err(auth_refusal(&e)),
    }
}

/// A cloud account: the local throttle first (every cloud sign-in from here comes from this
/// appliance's address, so the cloud's own throttle cannot tell guessers apart), then the cloud.
async fn cloud_sign_in(st: &St, ip: IpAddr, email: &str, password: &str) -> SignedIn {
    let Some(cloud) = &st.deps.cloud else {
        return Err(auth_refusal(&AuthError::BadCredentials));
    };
    if let Err(e) = st.deps.auth.check_throttle(ip) {
        return Err(auth_refusal(&e));
    }
    let answer = tokio::time::timeout(
        CLOUD_TIMEOUT,
        cloud.sign_in(email.to_string(), password.to_string()),
    )
    .await
    .unwrap_or(Err(CloudError::Unavailable));
    match answer {
        Ok(token) => {
            st.deps.auth.record_check(ip, email, true);
            Ok((email.to_string(), Some(token)))
        }
        Err(CloudError::BadCredentials) => {
            st.deps.auth.record_check(ip, email, false);
            Err((
                StatusCode::UNAUTHORIZED,
                "Not signed in: wrong e-mail or password.".to_string(),
            ))
        }
        Err(CloudError::Throttled) => Err((
            StatusCode::TOO_MANY_REQUESTS,
            format!("Not signed in: {}.", CloudError::Throttled),
        )),
        Err(e) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Not signed in: {e}."),
        )),
    }
}

#[derive(serde::Deserialize)]
struct TokenForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    State(st): Shared,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Resp {
    if let Err(r) = check_post(&st, &conn, &headers, &f.csrf) {
        return *r;
    }
    if let Ok(Some((s, key))) = st.session(&headers) {
        st.sessions.lock().expect("release sessions").remove(&key);
        if let Some(token) = s.cloud {
            st.end_cloud_session(token);
        }
        tracing::info!(peer = %conn.peer, user = %s.user, "release page: signed out");
    }
    let mut r = see_other("/release?done=signed-out");
    r.headers_mut()
        .append(SET_COOKIE, set_cookie(&conn, SESSION_COOKIE, "", Some(0)));
    r
}

// ---- the signed-in person's jobs ---------------------------------------------------------------

/// The live session of a signed-in action, or the page saying the sign-in ended (401).
async fn require_session(
    st: &St,
    conn: &Conn,
    headers: &HeaderMap,
    form_cookie: &str,
) -> Result<Session, Resp> {
    match st.session(headers) {
        Ok(Some((s, _))) => Ok(s),
        _ => {
            let mut r = render(
                st,
                conn,
                form_cookie,
                None,
                None,
                Some("Your sign-in has ended. Sign in again to see your jobs.".to_string()),
                StatusCode::UNAUTHORIZED,
            )
            .await;
            r.headers_mut()
                .append(SET_COOKIE, set_cookie(conn, SESSION_COOKIE, "", Some(0)));
            Err(r)
        }
    }
}

#[derive(serde::Deserialize)]
struct JobForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    queue: String,
    #[serde(default)]
    job: String,
    #[serde(default)]
    action: String,
}

async fn own_job(
    State(st): Shared,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    Form(f): Form<JobForm>,
) -> Resp {
    let form_cookie = match check_post(&st, &conn, &headers, &f.csrf) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let session = match require_session(&st, &conn, &headers, &form_cookie).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (Some((qi, queue)), Some(job)) = (st.queue(&f.queue), parse_job(&f.job)) else {
        return page_error(
            &st,
            &conn,
            &headers,
            &form_cookie,
            StatusCode::NOT_FOUND,
            "No such job is waiting for release here.".to_string(),
        )
        .await;
    };
    let outcome = match f.action.as_str() {
        "print" => queue
            .spool
            .release_by_owner(job, &session.user)
            .await
            .map(|_| "printed"),
        "delete" => queue
            .spool
            .delete_held(job, &session.user)
            .await
            .map(|()| "deleted"),
        _ => {
            return page_error(
                &st,
                &conn,
                &headers,
                &form_cookie,
                StatusCode::BAD_REQUEST,
                "Choose Print or Delete.".to_string(),
            )
            .await
        }
    };
    match outcome {
        Ok(done) => {
            tracing::info!(user = %session.user, queue = qi, job, "release page: job {done} by its owner");
            see_other(&format!("/release?done={done}&job={job}"))
        }
        Err(e) => {
            let (status, text) = release_refusal(&e, job);
            page_error(&st, &conn, &headers, &form_cookie, status, text).await
        }
    }
}

async fn print_all(
    State(st): Shared,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Resp {
    let form_cookie = match check_post(&st, &conn, &headers, &f.csrf) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let session = match require_session(&st, &conn, &headers, &form_cookie).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut released = 0u32;
    let mut failed = None;
    for q in &st.deps.queues {
        for job in q.spool.held_for_release(Some(&session.user)) {
            match q.spool.release_by_owner(job.id, &session.user).await {
                Ok(_) => released += 1,
                // Released meanwhile (another tab, the CLI): nothing to do.
                Err(ReleaseError::NotHeld) => {}
                Err(e) => failed = Some(release_refusal(&e, job.id)),
            }
        }
    }
    tracing::info!(user = %session.user, released, "release page: print all");
    match failed {
        Some((status, text)) => page_error(&st, &conn, &headers, &form_cookie, status, text).await,
        None => see_other(&format!("/release?done=all&n={released}")),
    }
}

// ---- jobs in the cloud -------------------------------------------------------------------------

async fn cloud_release(
    State(st): Shared,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    Form(f): Form<JobForm>,
) -> Resp {
    let form_cookie = match check_post(&st, &conn, &headers, &f.csrf) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let session = match require_session(&st, &conn, &headers, &form_cookie).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let fail = |status: StatusCode, text: String| {
        let st = st.clone();
        let conn = conn.clone();
        let headers = headers.clone();
        let form_cookie = form_cookie.clone();
        async move { page_error(&st, &conn, &headers, &form_cookie, status, text).await }
    };
    let (Some(cloud), Some(token)) = (st.deps.cloud.clone(), session.cloud.clone()) else {
        return fail(
            StatusCode::FORBIDDEN,
            "Sign in with your cloud account to print jobs from the cloud.".to_string(),
        )
        .await;
    };
    let job = f
        .job
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|j| *j > 0 && f.job.trim().len() <= 19);
    let (Some((qi, queue)), Some(job)) = (st.queue(&f.queue), job) else {
        return fail(
            StatusCode::NOT_FOUND,
            "That job is no longer in the cloud.".to_string(),
        )
        .await;
    };
    let printer = match cloud.printer_of(queue) {
        Ok(p) => p,
        Err(why) => return fail(StatusCode::CONFLICT, why).await,
    };
    let answer = tokio::time::timeout(CLOUD_TIMEOUT, cloud.release(token, job, printer))
        .await
        .unwrap_or(Err(CloudError::Unavailable));
    match answer {
        Ok(()) => {
            tracing::info!(user = %session.user, queue = qi, cloud_job = job, "release page: cloud job released here");
            see_other("/release?done=cloud")
        }
        Err(e) => {
            let status = match e {
                CloudError::AlreadyReleased => StatusCode::CONFLICT,
                CloudError::NotFound => StatusCode::NOT_FOUND,
                CloudError::Forbidden | CloudError::BadCredentials => StatusCode::FORBIDDEN,
                CloudError::SignedOut => StatusCode::UNAUTHORIZED,
                CloudError::Throttled => StatusCode::TOO_MANY_REQUESTS,
                CloudError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            };
            fail(status, format!("Not printed: {e}.")).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_name_nobody() {
        assert_eq!(initials("alice"), "A");
        assert_eq!(initials("alice.smith@example.com"), "AS");
        assert_eq!(initials("Bob van Dijk"), "BV");
        assert_eq!(initials("élodie_roux"), "ÉR");
        assert_eq!(initials("@@"), "?");
        assert_eq!(initials(""), "?");
    }

    #[test]
    fn cookies_are_ours_only() {
        let mut h = HeaderMap::new();
        let v = "a".repeat(64);
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("x=1; {SESSION_COOKIE}={v}; other=2")).unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some(v.as_str()));
        assert_eq!(cookie(&h, FORM_COOKIE), None);
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("{SESSION_COOKIE}=../../etc")).unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), None);
    }

    #[test]
    fn csrf_tokens_depend_on_key_and_cookie() {
        let a = csrf_token(&[1; 32], "c1");
        assert_eq!(a.len(), 64);
        assert_ne!(a, csrf_token(&[2; 32], "c1"));
        assert_ne!(a, csrf_token(&[1; 32], "c2"));
    }

    #[test]
    fn refusals_say_what_happened() {
        let (s, t) = release_refusal(&ReleaseError::WrongPin { attempts_left: 3 }, 7);
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert!(t.contains("3 attempts left"), "{t}");
        let (s, t) = release_refusal(
            &ReleaseError::Locked {
                retry_after_seconds: 900,
            },
            7,
        );
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        assert!(t.contains("15 minutes"), "{t}");
        assert_eq!(
            release_refusal(&ReleaseError::NotFound, 7).0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            release_refusal(&ReleaseError::NotHeld, 7).0,
            StatusCode::CONFLICT
        );
        assert_eq!(wait_words(30), "30 seconds");
        assert_eq!(wait_words(61), "1 minute");
    }

    #[test]
    fn job_numbers_and_notices_are_bounded() {
        assert_eq!(parse_job("12"), Some(12));
        assert_eq!(parse_job("-1"), None);
        assert_eq!(parse_job("99999999999"), None);
        assert_eq!(parse_job("1e3"), None);
        let q = NoticeQuery {
            done: Some("printed".into()),
            job: Some("<script>".into()),
            n: None,
        };
        assert_eq!(
            notice_text(&q).as_deref(),
            Some("The job is released: it prints now.")
        );
        let q = NoticeQuery {
            done: Some("whatever".into()),
            job: None,
            n: None,
        };
        assert_eq!(notice_text(&q), None);
    }

    #[test]
    fn cookies_are_secure_on_tls_only() {
        let conn = |scheme| Conn {
            host: "printer.local:8631".into(),
            scheme,
            peer: "192.0.2.7:50000".parse().unwrap(),
        };
        let tls = set_cookie(&conn("ipps"), SESSION_COOKIE, "ab", Some(900));
        let tls = tls.to_str().unwrap();
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/release",
            "Max-Age=900",
            "Secure",
        ] {
            assert!(tls.contains(part), "{tls}");
        }
        let plain = set_cookie(&conn("ipp"), FORM_COOKIE, "ab", None);
        assert!(!plain.to_str().unwrap().contains("Secure"));
        assert!(!plain.to_str().unwrap().contains("Max-Age"));
    }

    #[test]
    fn cloud_tokens_are_not_debug_printed() {
        let t = CloudToken::new("s3cret".into());
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
