//! The appliance's web pages, served on the IPP port for every request that is not IPP: the
//! status page (printer-more-info, DNS-SD adminurl) and the administration section, an axum
//! router over askama templates with one small stylesheet and no JavaScript.
//!
//! Sign-in is HTTP Basic against the local users (the browser's own prompt), accepted only over
//! TLS or from this machine; a plain-HTTP visitor from the network is redirected to https:// on the
//! same port first. Forms carry a CSRF token bound to the signed-in user (a keyed digest that
//! changes at every start), and the Origin (or Referer) of a form post must be this server.
//! Failed sign-ins are throttled per client by the [`Authenticator`].

pub mod metrics;
mod pages;
pub mod release;
pub mod release_api;

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::{DefaultBodyLimit, Extension, Form, Query, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, LOCATION, ORIGIN, REFERER, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use blake2::Digest as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tower::ServiceExt as _;

use crate::auth::{AuthError, Authenticator, Identity, CHALLENGE};
use crate::ipp_printer::Printer;
use crate::model::job::JobEvent;
use pages::{AdminPage, HistoryPage, JobPage, MessagePage, PrinterView, StatusPage, VERSION};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("cannot render the page: {0}")]
    Render(#[from] askama::Error),
    #[error("cannot change the printer: {0}")]
    Printer(String),
}

/// Facts about the connection a web request came on, from the net layer.
#[derive(Debug, Clone)]
pub struct Conn {
    /// Validated `host:port` the client used.
    pub host: String,
    /// "ipp" (plain HTTP) or "ipps" (TLS).
    pub scheme: &'static str,
    pub peer: SocketAddr,
}

impl Conn {
    /// TLS, or a client on this machine: where credentials may be sent.
    pub fn is_secure(&self) -> bool {
        self.scheme == "ipps" || self.peer.ip().is_loopback()
    }

    fn http_scheme(&self) -> &'static str {
        if self.scheme == "ipps" {
            "https"
        } else {
            "http"
        }
    }
}

/// The web service: the router and the authenticator it shares with IPP.
pub struct Web {
    router: Router,
    pub auth: Arc<Authenticator>,
    tls: bool,
}

struct AppState {
    /// The default queue: the one the administration pages manage.
    printer: Arc<Printer>,
    /// The `[[queue]]`s; each one's status page is at its resource (`/ipp/print/NAME`).
    queues: Vec<Arc<Printer>>,
    auth: Arc<Authenticator>,
    tls: bool,
    /// Key of the CSRF tokens; new every start, so a restart invalidates open forms.
    csrf_key: [u8; 32],
}

type HttpResponse = Response<Full<Bytes>>;

impl Web {
    /// `printer` is the default queue (status at `/` and `/ipp/print`, administered at
    /// `/admin`); each of `queues` gets a status page at its own resource.
    pub fn new(
        printer: Arc<Printer>,
        queues: Vec<Arc<Printer>>,
        auth: Arc<Authenticator>,
        tls: bool,
    ) -> Web {
        let mut csrf_key = [0u8; 32];
        if let Err(e) = getrandom::fill(&mut csrf_key) {
            // Tokens would be guessable: refuse every form rather than accept forged ones.
            tracing::error!("no system randomness for CSRF tokens ({e}); web forms are disabled");
            csrf_key = [0; 32];
        }
        let resource = printer.config.resource.clone();
        let queue_resources: Vec<String> =
            queues.iter().map(|q| q.config.resource.clone()).collect();
        let state = Arc::new(AppState {
            printer,
            queues,
            auth: auth.clone(),
            tls,
            csrf_key,
        });
        let mut router = Router::new()
            .route("/", get(status_page))
            .route(&resource, get(status_page))
            .route(
                &format!("{resource}/history"),
                get(|State(st): Shared, Query(q): Query<HistoryQuery>| async move {
                    history_page(&st.printer, &q)
                }),
            )
            // A job's URI (job-uri) is its page: POST there is IPP, GET is for people.
            .route(
                &format!("{resource}/{{job}}"),
                get(
                    |State(st): Shared, axum::extract::Path(job): axum::extract::Path<String>| async move {
                        job_page(&st, &st.printer, &job)
                    },
                ),
            );
        for (i, path) in queue_resources.iter().enumerate() {
            router = router
                .route(
                    &format!("{path}/history"),
                    get(move |State(st): Shared, Query(q): Query<HistoryQuery>| async move {
                        history_page(&st.queues[i], &q)
                    }),
                )
                .route(
                    &format!("{path}/{{job}}"),
                    get(
                        move |State(st): Shared,
                              axum::extract::Path(job): axum::extract::Path<String>| async move {
                            job_page(&st, &st.queues[i], &job)
                        },
                    ),
                );
        }
        for (i, path) in queue_resources.iter().enumerate() {
            router = router.route(
                path,
                get(
                    move |State(st): Shared, Extension(conn): Extension<Conn>| async move {
                        queue_status_page(&st, &st.queues[i], &conn)
                    },
                ),
            );
        }
        let router = router
            .route("/admin", get(admin_page))
            .route("/admin/pause", post(pause))
            .route("/admin/resume", post(resume))
            .route("/admin/identify", post(identify))
            .route("/admin/test-page", post(print_test_page))
            .route("/admin/cancel", post(cancel_job))
            .route("/admin/settings", post(save_settings))
            .route("/static/style.css", get(stylesheet))
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(16 * 1024))
            .with_state(state);
        Web { router, auth, tls }
    }

    /// Serves one request through the router.
    pub async fn handle<B>(&self, req: Request<B>, conn: Conn) -> HttpResponse
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let admin =
            req.uri().path().starts_with("/admin") || req.uri().path().starts_with("/release");
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(conn);
        let resp = match self.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let (mut parts, body) = resp.into_parts();
        let body = match body.collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) => {
                tracing::warn!("web response body failed: {e}");
                Bytes::new()
            }
        };
        let h = &mut parts.headers;
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "same-origin"),
            (
                "content-security-policy",
                "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; \
                 connect-src 'self'; form-action 'self'; \
                 frame-ancestors 'none'; base-uri 'none'",
            ),
        ] {
            h.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        if admin {
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        Response::from_parts(parts, Full::new(body))
    }

    /// Adds routes served beside the pages (the registration API), before the fallback.
    pub fn merge(mut self, routes: Router) -> Web {
        self.router = routes.merge(self.router);
        self
    }

    /// Whether TLS is available on the port (for the net layer's refusals).
    pub fn tls(&self) -> bool {
        self.tls
    }
}

/// Whether a POST to `path` that is not IPP is a web form (everything else must be IPP).
pub fn takes_forms(path: &str) -> bool {
    path.starts_with("/admin/") || path.starts_with("/api/v1/") || release::is_form_path(path)
}

/// An administrator for a JSON API request (not a page: no redirect, no HTML), or the refusal as
/// status, headers and a message safe to show: no credentials → 401 with the Basic challenge
/// where credentials may be sent (TLS or this machine), else 426/403 as for IPP; a user who is
/// not an administrator → 403.
pub async fn api_admin(
    auth: &Authenticator,
    tls: bool,
    conn: &Conn,
    headers: &HeaderMap,
) -> Result<Identity, (StatusCode, Vec<(HeaderName, HeaderValue)>, String)> {
    let authorization = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
    match auth
        .authenticate(authorization, conn.peer.ip(), conn.is_secure())
        .await
    {
        Ok(Some(id)) if id.admin => Ok(id),
        Ok(Some(id)) => Err((
            StatusCode::FORBIDDEN,
            Vec::new(),
            format!("{} is not an administrator of this printer", id.name),
        )),
        Ok(None) => {
            let (status, headers) = ipp_challenge_parts(conn.is_secure(), tls);
            let message = if conn.is_secure() {
                "this needs an administrator's user name and password"
            } else {
                "this needs an administrator's password, sent over https:// or from the printer itself"
            };
            Err((status, headers, message.to_string()))
        }
        Err(e) => {
            let (status, headers) = refusal_parts(&e, tls);
            Err((status, headers, e.to_string()))
        }
    }
}

/// Status, headers and message of a refused authentication, for IPP and web alike:
/// credentials over plain HTTP from the network → 426 Upgrade Required (clients like CUPS then
/// switch to TLS, RFC 2817) or 403 without TLS; wrong credentials → 401 with a new challenge;
/// too many failures → 429 with Retry-After.
fn refusal_parts(e: &AuthError, tls: bool) -> (StatusCode, Vec<(HeaderName, HeaderValue)>) {
    match e {
        AuthError::Insecure if tls => (
            StatusCode::UPGRADE_REQUIRED,
            vec![
                (
                    axum::http::header::UPGRADE,
                    HeaderValue::from_static("TLS/1.2, HTTP/1.1"),
                ),
                (
                    axum::http::header::CONNECTION,
                    HeaderValue::from_static("Upgrade"),
                ),
            ],
        ),
        AuthError::Insecure => (StatusCode::FORBIDDEN, Vec::new()),
        AuthError::BadCredentials | AuthError::Malformed => (
            StatusCode::UNAUTHORIZED,
            vec![(WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE))],
        ),
        AuthError::Throttled(wait) => (
            StatusCode::TOO_MANY_REQUESTS,
            vec![(RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)))],
        ),
        AuthError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, Vec::new()),
    }
}

fn plain_response(
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: String,
) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    for (k, v) in headers {
        r.headers_mut().insert(k, v);
    }
    r
}

/// The HTTP answer to an IPP request whose credentials were refused.
pub fn ipp_refusal(e: &AuthError, tls: bool) -> HttpResponse {
    let (status, headers) = refusal_parts(e, tls);
    let msg = match e {
        AuthError::Insecure if !tls => {
            "credentials cannot be accepted over plain HTTP from the network, and TLS is disabled (server.tls)\n".to_string()
        }
        e => format!("{e}\n"),
    };
    plain_response(status, headers, msg)
}

/// The HTTP status and headers around the IPP response to a request that needs credentials it
/// did not carry (client-error-not-authenticated): 401 with a Basic challenge where credentials
/// may be sent, else 426 to switch to TLS first (403 without TLS). The IPP response stays the body,
/// for clients that read it.
pub fn ipp_challenge_parts(
    secure: bool,
    tls: bool,
) -> (StatusCode, Vec<(HeaderName, HeaderValue)>) {
    if secure {
        refusal_parts(&AuthError::BadCredentials, tls)
    } else {
        refusal_parts(&AuthError::Insecure, tls)
    }
}

// ---- pages -------------------------------------------------------------------------------------

type Shared = State<Arc<AppState>>;

fn html(status: StatusCode, page: impl Template) -> axum::response::Response {
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
        Err(e) => WebError::from(e).into_response(),
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> axum::response::Response {
        tracing::error!("web: {self}");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            "Something went wrong on the printer; the details are in its log.\n",
        )
            .into_response()
    }
}

/// A page with one message, for pages outside [`AppState`] (the release page).
fn message_page(
    printer_name: &str,
    status: StatusCode,
    heading: &str,
    text: &str,
    hint: Option<String>,
) -> axum::response::Response {
    html(
        status,
        MessagePage {
            printer_name: printer_name.to_string(),
            version: VERSION,
            heading: heading.to_string(),
            text: text.to_string(),
            hint,
        },
    )
}

fn message(
    st: &AppState,
    status: StatusCode,
    heading: &str,
    text: &str,
    hint: Option<String>,
) -> axum::response::Response {
    html(
        status,
        MessagePage {
            printer_name: st.printer.description().name,
            version: VERSION,
            heading: heading.to_string(),
            text: text.to_string(),
            hint,
        },
    )
}

async fn status_page(
    State(st): Shared,
    Extension(conn): Extension<Conn>,
) -> axum::response::Response {
    queue_status_page(&st, &st.printer, &conn)
}

/// The public status page of one queue, with links to the appliance's other queues.
fn queue_status_page(st: &AppState, printer: &Printer, conn: &Conn) -> axum::response::Response {
    let (queue, recent) = pages::jobs(printer, false);
    let all_queues = if st.queues.is_empty() {
        Vec::new()
    } else {
        std::iter::once(&st.printer)
            .chain(st.queues.iter())
            .map(|q| pages::QueueLink::of(q, std::ptr::eq(q.as_ref(), printer)))
            .collect()
    };
    html(
        StatusCode::OK,
        StatusPage {
            printer_name: printer.description().name,
            version: VERSION,
            printer: PrinterView::of(printer, &conn.host),
            queue,
            recent,
            history_path: format!("{}/history", printer.config.resource),
            supplies: pages::supplies(printer),
            queues: all_queues,
            identify: printer.identify_banner(),
            release_link: std::iter::once(&st.printer)
                .chain(st.queues.iter())
                .any(|q| q.spool.release_policy().mode != crate::model::release::ReleaseMode::None),
        },
    )
}

/// `?page=N` of the finished jobs' history (1-based; anything else is page 1).
#[derive(serde::Deserialize)]
struct HistoryQuery {
    page: Option<String>,
}

/// The finished jobs of one queue, newest first, a page at a time.
fn history_page(printer: &Printer, q: &HistoryQuery) -> axum::response::Response {
    // Bounded: a page far beyond the jobs is simply empty.
    let page = q
        .page
        .as_deref()
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| (1..=1_000_000).contains(p))
        .unwrap_or(1);
    let (jobs, more) = pages::history(printer, page);
    let base = format!("{}/history", printer.config.resource);
    html(
        StatusCode::OK,
        HistoryPage {
            printer_name: printer.description().name,
            version: VERSION,
            status_path: printer.config.resource.clone(),
            page,
            jobs,
            newer: (page > 1).then(|| format!("{base}?page={}", page - 1)),
            older: more.then(|| format!("{base}?page={}", page + 1)),
        },
    )
}

/// One job's page; 404 for anything that is not a job of this queue.
fn job_page(st: &AppState, printer: &Printer, job: &str) -> axum::response::Response {
    let job = job
        .parse::<u32>()
        .ok()
        .filter(|_| job.bytes().all(|b| b.is_ascii_digit()) && job.len() <= 10)
        .and_then(|id| printer.spool.get(id));
    match job {
        Some(job) => html(StatusCode::OK, JobPage::of(printer, &job)),
        None => message(
            st,
            StatusCode::NOT_FOUND,
            "No such job",
            "This printer has no such job: it may have been removed from the history.",
            None,
        ),
    }
}

/// The one stylesheet of printbridge's pages: the appliance's and the cloud's (issue 16), so both
/// look the same and both read on a phone.
pub const STYLESHEET: &str = include_str!("../../templates/web/style.css");

/// `GET /static/style.css`, on the appliance and on the cloud.
pub async fn stylesheet() -> axum::response::Response {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("max-age=3600")),
        ],
        STYLESHEET,
    )
        .into_response()
}

async fn not_found(State(st): Shared) -> axum::response::Response {
    message(
        &st,
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page on this printer.",
        None,
    )
}

/// The signed-in administrator, or the response that asks for one.
async fn require_admin(
    st: &AppState,
    conn: &Conn,
    headers: &HeaderMap,
    get: bool,
) -> Result<Identity, axum::response::Response> {
    let authorization = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
    if !conn.is_secure() && authorization.is_none() {
        // Never ask for a password over plain HTTP from the network: go to TLS on this port.
        if st.tls && get {
            let to = format!("https://{}/admin", conn.host);
            if let Ok(v) = HeaderValue::from_str(&to) {
                return Err((StatusCode::TEMPORARY_REDIRECT, [(LOCATION, v)]).into_response());
            }
        }
        return Err(message(
            st,
            StatusCode::FORBIDDEN,
            "Secure connection needed",
            "Administration needs a secure (https://) connection or a browser on the printer itself.",
            (!st.tls).then(|| "TLS is turned off in this printer's configuration (server.tls).".to_string()),
        ));
    }
    match st
        .auth
        .authenticate(authorization, conn.peer.ip(), conn.is_secure())
        .await
    {
        Ok(Some(id)) if id.admin => Ok(id),
        Ok(Some(id)) => Err(message(
            st,
            StatusCode::FORBIDDEN,
            "Not an administrator",
            &format!(
                "You are signed in as {}, who may print but not administer this printer.",
                id.name
            ),
            Some("Close the browser to sign in as someone else.".to_string()),
        )),
        Ok(None) => Err(sign_in_needed(st, None)),
        Err(e) => {
            let (status, headers) = refusal_parts(&e, st.tls);
            let mut r = if status == StatusCode::UNAUTHORIZED {
                sign_in_needed(st, Some(&e))
            } else {
                message(st, status, "Sign-in refused", &e.to_string(), None)
            };
            for (k, v) in headers {
                r.headers_mut().insert(k, v);
            }
            Err(r)
        }
    }
}

/// 401 with the Basic challenge; the page shows when the visitor cancels the browser's prompt.
fn sign_in_needed(st: &AppState, e: Option<&AuthError>) -> axum::response::Response {
    let hint = if st.auth.has_users() {
        "Sign in with an administrator's user name and password.".to_string()
    } else {
        "No users exist yet. On the printer, run: printbridge user add NAME --admin".to_string()
    };
    let text = match e {
        Some(e) => format!("Sign-in failed: {e}."),
        None => {
            "The administration pages need an administrator's user name and password.".to_string()
        }
    };
    let mut r = message(st, StatusCode::UNAUTHORIZED, "Sign in", &text, Some(hint));
    r.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
    r
}

#[derive(serde::Deserialize)]
struct Notice {
    done: Option<String>,
}

fn notice_text(done: &str) -> Option<&'static str> {
    Some(match done {
        "paused" => "Printing is paused.",
        "resumed" => "Printing resumed.",
        "identify" => "Identification requested.",
        "test-page" => "A test page was sent to the printer.",
        "canceled" => "The job was canceled.",
        "finished" => "That job had already finished.",
        "saved" => "Printer details saved.",
        _ => return None,
    })
}

async fn admin_page(
    State(st): Shared,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    Query(notice): Query<Notice>,
) -> axum::response::Response {
    let who = match require_admin(&st, &conn, &headers, true).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let (queue, _) = pages::jobs(&st.printer, true);
    let desc = st.printer.description();
    let paused = st.printer.status.read().expect("printer lock").paused;
    html(
        StatusCode::OK,
        AdminPage {
            printer_name: desc.name.clone(),
            version: VERSION,
            printer: PrinterView::of(&st.printer, &conn.host),
            paused,
            queue,
            desc,
            csrf: csrf_token(&st.csrf_key, &who.name),
            user: who.name,
            notice: notice.done.as_deref().and_then(notice_text),
        },
    )
}

// ---- forms -------------------------------------------------------------------------------------

/// The token a form of `user` must carry: a digest keyed with this run's secret.
fn csrf_token(key: &[u8; 32], user: &str) -> String {
    let mut h = blake2::Blake2s256::new();
    h.update(key);
    h.update(b"printbridge csrf v1\0");
    h.update(user.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether an Origin or Referer value names this server (`scheme://host:port`, default ports
/// filled in).
fn same_origin(value: &str, conn: &Conn) -> bool {
    let scheme = conn.http_scheme();
    let Some(rest) = value
        .strip_prefix(scheme)
        .and_then(|r| r.strip_prefix("://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let with_port = if authority.ends_with(']') || !authority.contains(':') {
        format!("{authority}:{}", if scheme == "https" { 443 } else { 80 })
    } else {
        authority.to_string()
    };
    with_port.eq_ignore_ascii_case(&conn.host)
}

/// Signed-in administrator + valid CSRF token + same-origin post.
async fn check_form(
    st: &AppState,
    conn: &Conn,
    headers: &HeaderMap,
    token: &str,
) -> Result<Identity, axum::response::Response> {
    let who = require_admin(st, conn, headers, false).await?;
    let origin_ok = match (headers.get(ORIGIN), headers.get(REFERER)) {
        (Some(o), _) => o.to_str().is_ok_and(|o| same_origin(o, conn)),
        (None, Some(r)) => r.to_str().is_ok_and(|r| same_origin(r, conn)),
        (None, None) => true,
    };
    let expected = csrf_token(&st.csrf_key, &who.name);
    if !origin_ok
        || st.csrf_key == [0; 32]
        || !constant_time_eq(token.as_bytes(), expected.as_bytes())
    {
        tracing::warn!(peer = %conn.peer, user = %who.name, "web form refused: CSRF check failed");
        return Err(message(
            st,
            StatusCode::FORBIDDEN,
            "Form refused",
            "The form was not sent from this printer's administration page, or the page is out of date.",
            Some("Reload the administration page and try again.".to_string()),
        ));
    }
    Ok(who)
}

fn done(what: &str) -> axum::response::Response {
    let to = format!("/admin?done={what}");
    (
        StatusCode::SEE_OTHER,
        [(
            LOCATION,
            HeaderValue::from_str(&to).unwrap_or(HeaderValue::from_static("/admin")),
        )],
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct TokenForm {
    #[serde(default)]
    csrf: String,
}

async fn pause(
    State(st): Shared,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> axum::response::Response {
    set_paused(st, conn, headers, f, true).await
}

async fn resume(
    State(st): Shared,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> axum::response::Response {
    set_paused(st, conn, headers, f, false).await
}

async fn set_paused(
    st: Arc<AppState>,
    conn: Conn,
    headers: HeaderMap,
    f: TokenForm,
    paused: bool,
) -> axum::response::Response {
    let who = match check_form(&st, &conn, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    tracing::info!(user = %who.name, "web: {} printing", if paused { "pause" } else { "resume" });
    st.printer.set_paused(paused);
    st.printer.post_printer_event("printer-state-changed");
    done(if paused { "paused" } else { "resumed" })
}

async fn identify(
    State(st): Shared,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> axum::response::Response {
    let who = match check_form(&st, &conn, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    tracing::info!(user = %who.name, "web: identify requested");
    st.printer
        .status
        .write()
        .expect("printer lock")
        .identify_requested = true;
    st.printer.post_printer_event("printer-state-changed");
    done("identify")
}

/// "Print test page": the test page of the default queue ([`crate::convert::test_page`]) as a
/// job of the administrator who asked, on the queue's default medium.
async fn print_test_page(
    State(st): Shared,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> axum::response::Response {
    use crate::convert::test_page;
    use crate::spool::{DocumentMeta, NewJob};
    let who = match check_form(&st, &conn, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let resource = &st.printer.config.resource;
    let mut uris = vec![format!("ipp://{}{resource}", conn.host)];
    if st.tls {
        uris.push(format!("ipps://{}{resource}", conn.host));
    }
    let date = jiff::Zoned::now()
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string();
    let page = test_page::for_queue(&st.printer.description(), &st.printer.caps(), uris, date);
    let pdf = test_page::compose(&page);
    let spool = &st.printer.spool;
    let created = async {
        let staged = spool.stage_document(&pdf[..], 0).await?;
        let meta = DocumentMeta {
            format: "application/pdf".into(),
            compression: "none".into(),
            name: Some("test-page.pdf".into()),
        };
        let new = NewJob {
            owner: who.name.clone(),
            name: "Test page".into(),
            attributes: Vec::new(),
            hold: None,
        };
        spool.create_job(new, Some((staged, meta)), true).await
    }
    .await;
    match created {
        Ok(job) => {
            tracing::info!(user = %who.name, job = job.id, "web: test page requested");
            done("test-page")
        }
        Err(e) => {
            tracing::warn!(user = %who.name, "web: cannot queue the test page: {e}");
            message(
                &st,
                StatusCode::SERVICE_UNAVAILABLE,
                "The test page could not be queued",
                "The printer's spool refused it; the log says why.",
                None,
            )
        }
    }
}

#[derive(serde::Deserialize)]
struct CancelForm {
    #[serde(default)]
    csrf: String,
    job: u32,
}

async fn cancel_job(
    State(st): Shared,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    Form(f): Form<CancelForm>,
) -> axum::response::Response {
    let who = match check_form(&st, &conn, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Some(job) = st.printer.spool.get(f.job) else {
        return message(
            &st,
            StatusCode::NOT_FOUND,
            "No such job",
            &format!("There is no job {}.", f.job),
            None,
        );
    };
    if job.status.state.is_terminal() {
        return done("finished");
    }
    tracing::info!(user = %who.name, job = job.id, "web: cancel job");
    match st
        .printer
        .spool
        .transition(job.id, JobEvent::Cancel { by_operator: true })
        .await
    {
        Ok(_) => done("canceled"),
        Err(e) => WebError::Printer(e.to_string()).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct SettingsForm {
    #[serde(default)]
    csrf: String,
    name: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    info: String,
    #[serde(default)]
    organization: String,
}

/// A printer description value: at most 127 octets (RFC 8011 text(127)/name(127)), no control
/// characters.
fn description_value(label: &str, v: &str, required: bool) -> Result<String, String> {
    let v = v.trim();
    if required && v.is_empty() {
        return Err(format!("{label} must not be empty."));
    }
    if v.len() > 127 {
        return Err(format!("{label} is longer than 127 bytes."));
    }
    if v.chars().any(char::is_control) {
        return Err(format!("{label} contains control characters."));
    }
    Ok(v.to_string())
}

async fn save_settings(
    State(st): Shared,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    Form(f): Form<SettingsForm>,
) -> axum::response::Response {
    let who = match check_form(&st, &conn, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let mut desc = st.printer.description();
    let checked = (|| {
        desc.name = description_value("The name", &f.name, true)?;
        desc.location = description_value("The location", &f.location, false)?;
        desc.info = description_value("The description", &f.info, false)?;
        desc.organization = description_value("The organization", &f.organization, false)?;
        Ok::<(), String>(())
    })();
    if let Err(msg) = checked {
        return message(&st, StatusCode::BAD_REQUEST, "Not saved", &msg, None);
    }
    tracing::info!(user = %who.name, "web: printer details changed");
    match st.printer.update_description(desc).await {
        Ok(()) => done("saved"),
        Err(e) => WebError::Printer(e.message.clone()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(scheme: &'static str, host: &str) -> Conn {
        Conn {
            host: host.to_string(),
            scheme,
            peer: "192.0.2.1:5000".parse().unwrap(),
        }
    }

    #[test]
    fn refusals_map_to_http() {
        use std::time::Duration;
        let r = ipp_refusal(&AuthError::Insecure, true);
        assert_eq!(r.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(r.headers()["upgrade"], "TLS/1.2, HTTP/1.1");
        assert_eq!(
            ipp_refusal(&AuthError::Insecure, false).status(),
            StatusCode::FORBIDDEN
        );
        let r = ipp_refusal(&AuthError::BadCredentials, true);
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()["www-authenticate"], CHALLENGE);
        let r = ipp_refusal(&AuthError::Throttled(Duration::from_millis(1500)), true);
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "1");
        // An operation that needs credentials: asked for them where they may be sent, else sent
        // to TLS first.
        // (The IPP response stays the body: the endpoint, net::ipp_endpoint, sends it.)
        let (status, headers) = ipp_challenge_parts(true, true);
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(headers
            .iter()
            .any(|(k, v)| k == WWW_AUTHENTICATE && v == CHALLENGE));
        assert_eq!(
            ipp_challenge_parts(false, true).0,
            StatusCode::UPGRADE_REQUIRED
        );
        assert_eq!(ipp_challenge_parts(false, false).0, StatusCode::FORBIDDEN);
        assert!(takes_forms("/admin/pause"));
        assert!(!takes_forms("/ipp/print"));
    }

    #[test]
    fn origin_matching() {
        let c = conn("ipp", "printer.local:8631");
        assert!(same_origin("http://printer.local:8631", &c));
        assert!(same_origin("http://PRINTER.local:8631/admin", &c));
        assert!(!same_origin("https://printer.local:8631", &c));
        assert!(!same_origin("http://evil.example:8631", &c));
        assert!(!same_origin("http://printer.local:8631.evil.example", &c));
        assert!(!same_origin("null", &c));
        let c = conn("ipps", "printer.local:443");
        assert!(same_origin("https://printer.local", &c));
        let c = conn("ipp", "[::1]:8631");
        assert!(same_origin("http://[::1]:8631", &c));
    }

    #[test]
    fn csrf_tokens_are_per_user_and_key() {
        let a = csrf_token(&[1; 32], "admin");
        assert_eq!(a.len(), 64);
        assert_ne!(a, csrf_token(&[1; 32], "root"));
        assert_ne!(a, csrf_token(&[2; 32], "admin"));
        assert!(constant_time_eq(
            a.as_bytes(),
            csrf_token(&[1; 32], "admin").as_bytes()
        ));
        assert!(!constant_time_eq(b"ab", b"abc"));
    }

    #[test]
    fn description_values_are_checked() {
        assert_eq!(description_value("x", "  a b ", true).unwrap(), "a b");
        assert!(description_value("x", " ", true).is_err());
        assert!(description_value("x", "a\u{7}", false).is_err());
        assert!(description_value("x", &"é".repeat(64), false).is_err());
    }
}
