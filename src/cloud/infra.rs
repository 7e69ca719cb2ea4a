//! The cloud's IPP INFRA Infrastructure Printers (PWG 5100.18) at `POST /ipp/print/{printer}`:
//! client operations for users (Print-Job, Create-Job + Send-Document, Validate-Job, Get-Jobs,
//! Get-Job-Attributes, Cancel-Job, Get-Printer-Attributes) and the Proxy operations of the device
//! that registered the printer (Update-Output-Device-Attributes, Get-Jobs which-jobs=fetchable,
//! Fetch-Job, Acknowledge-Job, Fetch-Document, Acknowledge-Document, Update-Document-Status,
//! Update-Job-Status, Update-Active-Jobs, Deregister-Output-Device), plus printer subscriptions
//! with ippget (see [`super::notify`]).
//!
//! Request bytes are framed by our bounded reader ([`crate::codec::ipp`]) before anything looks at
//! them; documents stream into the blob store with a size limit. All job state is in the database,
//! so any instance can serve any request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Extension, Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tokio::io::AsyncRead;

use super::registry::{normalize_uuid, uris_for, PrinterUris};
use super::secrets::hash_secret;
use super::Cloud;
use crate::codec::ipp::{
    date_time, encode_message, parse_message, tag, Attribute, Group, Limits, Message, Value,
};
use crate::ipp::attributes::{en, int, kw, name, text, uri, JOB_TEMPLATE};
use crate::ipp::status::{self, Status};
use crate::ipp::validate;
use crate::ipp::{op_attr, op_bool, op_int, op_str, requested, response, PRIVATE_JOB_ATTRIBUTES};
use crate::net::ipp_endpoint::{self, DocumentBody, EndpointLimits, IppHandler, IppHead, IppReply};
use crate::net::server::Conn;
use crate::store::device_auth::Device;
use crate::store::infra::{
    job_state, Acknowledged, JobRow, JobUpdate, NewDocument, NewJob, WhichJobs,
};
use crate::store::registry::PrinterRow;
use crate::store::StoreError;

/// client-error-not-authorized (RFC 8011 §5.4.14).
pub const NOT_AUTHORIZED: u16 = 0x0403;
/// client-error-not-fetchable (PWG 5100.18 §9.2).
pub const NOT_FETCHABLE: u16 = 0x0420;
/// client-error-timeout, client-error-request-entity-too-large and
/// client-error-request-value-too-long (RFC 8011 §5.4.14, Appendix B). Spelled out here because
/// `crate::ipp::status::REQUEST_ENTITY_TOO_LARGE` (0x0409) is request-value-too-long.
pub const CLIENT_TIMEOUT: u16 = 0x0405;
pub const ENTITY_TOO_LARGE: u16 = 0x0408;
pub const VALUE_TOO_LONG: u16 = 0x0409;

/// PWG 5100.18 operation codes.
pub mod op {
    pub const PRINT_JOB: u16 = 0x0002;
    pub const VALIDATE_JOB: u16 = 0x0004;
    pub const CREATE_JOB: u16 = 0x0005;
    pub const SEND_DOCUMENT: u16 = 0x0006;
    pub const CANCEL_JOB: u16 = 0x0008;
    pub const GET_JOB_ATTRIBUTES: u16 = 0x0009;
    pub const GET_JOBS: u16 = 0x000A;
    pub const GET_PRINTER_ATTRIBUTES: u16 = 0x000B;
    pub const CREATE_PRINTER_SUBSCRIPTIONS: u16 = 0x0016;
    pub const GET_NOTIFICATIONS: u16 = 0x001C;
    pub const ACKNOWLEDGE_DOCUMENT: u16 = 0x003F;
    pub const ACKNOWLEDGE_JOB: u16 = 0x0041;
    pub const FETCH_DOCUMENT: u16 = 0x0042;
    pub const FETCH_JOB: u16 = 0x0043;
    pub const UPDATE_ACTIVE_JOBS: u16 = 0x0045;
    pub const DEREGISTER_OUTPUT_DEVICE: u16 = 0x0046;
    pub const UPDATE_DOCUMENT_STATUS: u16 = 0x0047;
    pub const UPDATE_JOB_STATUS: u16 = 0x0048;
    pub const UPDATE_OUTPUT_DEVICE_ATTRIBUTES: u16 = 0x0049;
}

/// operations-supported of an Infrastructure Printer, in numeric order.
pub const OPERATIONS: &[u16] = &[
    op::PRINT_JOB,
    op::VALIDATE_JOB,
    op::CREATE_JOB,
    op::SEND_DOCUMENT,
    op::CANCEL_JOB,
    op::GET_JOB_ATTRIBUTES,
    op::GET_JOBS,
    op::GET_PRINTER_ATTRIBUTES,
    op::CREATE_PRINTER_SUBSCRIPTIONS,
    op::GET_NOTIFICATIONS,
    op::ACKNOWLEDGE_DOCUMENT,
    op::ACKNOWLEDGE_JOB,
    op::FETCH_DOCUMENT,
    op::FETCH_JOB,
    op::UPDATE_ACTIVE_JOBS,
    op::DEREGISTER_OUTPUT_DEVICE,
    op::UPDATE_DOCUMENT_STATUS,
    op::UPDATE_JOB_STATUS,
    op::UPDATE_OUTPUT_DEVICE_ATTRIBUTES,
];

/// Printer attributes the cloud answers itself; an output device's values for them are ignored.
const CLOUD_OWNED: &[&str] = &[
    "charset-configured",
    "charset-supported",
    "generated-natural-language-supported",
    "ipp-features-supported",
    "ipp-versions-supported",
    "ippget-event-life",
    "job-ids-supported",
    "job-privacy-attributes",
    "job-privacy-scope",
    "multiple-document-jobs-supported",
    "multiple-operation-time-out",
    "natural-language-configured",
    "notify-events-default",
    "notify-events-supported",
    "notify-lease-duration-default",
    "notify-lease-duration-supported",
    "notify-max-events-supported",
    "notify-pull-method-supported",
    "operations-supported",
    "printer-config-change-date-time",
    "printer-config-change-time",
    "printer-current-time",
    "printer-icons",
    "printer-info",
    "printer-is-accepting-jobs",
    "printer-location",
    "printer-more-info",
    "printer-name",
    "printer-state",
    "printer-state-change-date-time",
    "printer-state-change-time",
    "printer-state-message",
    "printer-state-reasons",
    "printer-supply-info-uri",
    "printer-up-time",
    "printer-uri-supported",
    "printer-uuid",
    "queued-job-count",
    "uri-authentication-supported",
    "uri-security-supported",
    "which-jobs-supported",
    "compression-supported",
    "identify-actions-default",
    "identify-actions-supported",
];

pub const NOTIFY_EVENTS: &[&str] = &[
    "job-completed",
    "job-created",
    "job-fetchable",
    "job-state-changed",
];

/// Operation attributes we understand; others are reported as unsupported (RFC 8011 §4.1.7).
const KNOWN_OPERATION_ATTRIBUTES: &[&str] = &[
    "attributes-charset",
    "attributes-natural-language",
    "compression",
    "compression-accepted",
    "document-format",
    "document-format-accepted",
    "document-name",
    "document-natural-language",
    "document-number",
    "fetch-status-code",
    "fetch-status-message",
    "first-index",
    "ipp-attribute-fidelity",
    "job-id",
    "job-ids",
    "job-impressions",
    "job-k-octets",
    "job-media-sheets",
    "job-name",
    "job-uri",
    "last-document",
    "limit",
    "my-jobs",
    "notify-sequence-numbers",
    "notify-subscription-ids",
    "notify-wait",
    "output-device-job-states",
    "output-device-uuid",
    "printer-uri",
    "requested-attributes",
    "requesting-user-name",
    "requesting-user-uri",
    "which-jobs",
];

#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] super::blob::BlobError),
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<InfraError> for Status {
    fn from(e: InfraError) -> Status {
        // The cause goes to the log only; the client gets a message without internals.
        tracing::error!("infrastructure printer: {e}");
        Status::internal("the service could not complete the request; try again")
    }
}

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Status {
        InfraError::Store(e).into()
    }
}

/// Who sent the request.
#[derive(Debug, Clone)]
enum Principal {
    /// A user, by (lower-cased) address, authenticated with the cloud password.
    User(String),
    /// A registered device, authenticated with its access token.
    Device(Device),
}

/// Why authentication failed: answered with HTTP 401 and a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthFailure {
    BadCredentials,
    BadToken,
    Throttled,
}

/// A finished response: IPP message and, for Fetch-Document, the document after it.
struct Reply {
    msg: Message,
    document: Option<Box<dyn AsyncRead + Send + Unpin>>,
}

impl From<Message> for Reply {
    fn from(msg: Message) -> Reply {
        Reply {
            msg,
            document: None,
        }
    }
}

/// Everything an operation needs about its request.
struct Ctx<'a> {
    cloud: &'a Cloud,
    printer: PrinterRow,
    uris: PrinterUris,
    principal: Principal,
}

impl Ctx<'_> {
    fn device(&self) -> Option<&Device> {
        match &self.principal {
            Principal::Device(d) if d.id == self.printer.device_id => Some(d),
            _ => None,
        }
    }

    fn now(&self) -> i64 {
        self.cloud.now()
    }

    fn job_uri(&self, job_id: i64) -> String {
        format!("{}/{job_id}", self.uris.ipp)
    }
}

// ---- HTTP entry point --------------------------------------------------------------------------

/// The Infrastructure Printers, served by the shared IPP endpoint ([`crate::net::ipp_endpoint`]).
pub struct InfraPrinters {
    pub cloud: Arc<Cloud>,
}

/// What the endpoint passes on about a request to `/ipp/print/{printer}`.
pub struct InfraRequest {
    printer_id: String,
    headers: HeaderMap,
    client: String,
}

/// POST /ipp/print/{printer}
pub async fn post(
    State(cloud): State<Arc<Cloud>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Extension(conn): Extension<Conn>,
    req: Request<Body>,
) -> Response {
    ipp_endpoint::respond(&InfraPrinters { cloud }, req, &conn, client).await
}

/// Who a request says it is, for the log line: the user name of Basic credentials, or that a
/// bearer token (a device's or a user's) was sent. Never the secret itself.
fn claimed_identity(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(rest.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let user = text.split_once(':')?.0;
        Some(user.chars().take(128).collect())
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some("bearer-token".to_string())
    } else {
        None
    }
}

impl IppHandler for InfraPrinters {
    type Admitted = InfraRequest;

    fn limits(&self) -> EndpointLimits {
        EndpointLimits {
            limits: Limits::default(),
            section_timeout: Duration::from_secs(self.cloud.config.server.header_timeout_seconds),
            document_idle_timeout: Duration::from_secs(60),
        }
    }

    async fn admit(&self, head: IppHead<'_>) -> Result<InfraRequest, Response> {
        let printer_id = head
            .path
            .strip_prefix("/ipp/print/")
            .unwrap_or_default()
            .to_string();
        Ok(InfraRequest {
            printer_id,
            headers: head.headers.clone(),
            client: head.client.ip().to_string(),
        })
    }

    async fn handle(&self, msg: Message, mut doc: DocumentBody, r: InfraRequest) -> IppReply {
        let version = msg.version;
        let request_id = msg.request_id;
        let unknown = status::unknown_operation_attributes(&msg, KNOWN_OPERATION_ATTRIBUTES);
        let outcome = handle(
            &self.cloud,
            &r.printer_id,
            &r.headers,
            &r.client,
            msg,
            &mut doc,
        )
        .await;
        let (mut reply, challenge) = match outcome {
            Ok(r) => (r, None),
            Err(Refusal::Status(s)) => (Reply::from(s.into_response()), None),
            Err(Refusal::Auth(f)) => {
                tracing::info!(client = %r.client, printer = %r.printer_id, "IPP authentication refused: {f:?}");
                (
                    Reply::from(
                        Status::new(
                            status::NOT_AUTHENTICATED,
                            match f {
                                AuthFailure::Throttled => {
                                    "too many failed sign-ins; try again later"
                                }
                                _ => {
                                    "sign in with your cloud account (or the device's access token)"
                                }
                            },
                        )
                        .into_response(),
                    ),
                    Some(f),
                )
            }
        };
        let resp = &mut reply.msg;
        status::report_unknown_operation_attributes(resp, unknown);
        resp.version = if status::version_supported(version) {
            version
        } else {
            (1, 1)
        };
        resp.request_id = request_id;
        let challenge = challenge.map(|failure| {
            // Basic first: it is what IPP clients (libcups, ipptool) answer (RFC 7617 §2).
            let bearer = if failure == AuthFailure::BadToken {
                "Bearer realm=\"printbridge\", error=\"invalid_token\""
            } else {
                "Bearer realm=\"printbridge\""
            };
            (
                StatusCode::UNAUTHORIZED,
                vec![
                    (
                        WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"printbridge\", charset=\"UTF-8\""),
                    ),
                    (WWW_AUTHENTICATE, HeaderValue::from_static(bearer)),
                ],
            )
        });
        IppReply {
            message: reply.msg,
            document: reply.document,
            challenge,
            printer: format!("/ipp/print/{}", r.printer_id),
            who: claimed_identity(&r.headers),
        }
    }
}

enum Refusal {
    Status(Status),
    Auth(AuthFailure),
}

impl From<Status> for Refusal {
    fn from(s: Status) -> Refusal {
        Refusal::Status(s)
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Refusal {
        Refusal::Status(e.into())
    }
}

async fn handle(
    cloud: &Cloud,
    printer_id: &str,
    headers: &HeaderMap,
    client: &str,
    req: Message,
    doc: &mut (dyn AsyncRead + Send + Unpin),
) -> Result<Reply, Refusal> {
    validate::check_request(&req)?;
    // Printer ids are UUIDs we made; anything else cannot name a printer.
    let printer = if uuid::Uuid::try_parse(printer_id).is_ok() {
        cloud.store.printer(printer_id).await?
    } else {
        None
    };
    let Some(printer) = printer else {
        return Err(Status::not_found("no such printer").into());
    };
    let uris = uris_for(cloud, &printer.id);
    check_target(&req, &printer)?;
    let principal = match authenticate(cloud, headers, client).await? {
        Ok(Some(p)) => p,
        Ok(None) => return Err(Refusal::Auth(AuthFailure::BadCredentials)),
        Err(f) => return Err(Refusal::Auth(f)),
    };
    let cx = Ctx {
        cloud,
        printer,
        uris,
        principal,
    };
    let code = req.code;
    let proxy_op = matches!(
        code,
        op::ACKNOWLEDGE_DOCUMENT
            | op::ACKNOWLEDGE_JOB
            | op::FETCH_DOCUMENT
            | op::FETCH_JOB
            | op::UPDATE_ACTIVE_JOBS
            | op::DEREGISTER_OUTPUT_DEVICE
            | op::UPDATE_DOCUMENT_STATUS
            | op::UPDATE_JOB_STATUS
            | op::UPDATE_OUTPUT_DEVICE_ATTRIBUTES
    ) || (code == op::GET_JOBS && op_str(&req, "which-jobs") == Some("fetchable"));
    if proxy_op {
        require_proxy(&cx)?;
    } else {
        require_client(&cx).await?;
    }
    let reply = match code {
        op::PRINT_JOB => print_job(&cx, req, doc).await?.into(),
        op::VALIDATE_JOB => validate_job(&cx, req).await?.into(),
        op::CREATE_JOB => create_job(&cx, req).await?.into(),
        op::SEND_DOCUMENT => send_document(&cx, req, doc).await?.into(),
        op::CANCEL_JOB => cancel_job(&cx, req).await?.into(),
        op::GET_JOB_ATTRIBUTES => get_job_attributes(&cx, req).await?.into(),
        op::GET_JOBS => get_jobs(&cx, req).await?.into(),
        op::GET_PRINTER_ATTRIBUTES => get_printer_attributes(&cx, req).await?.into(),
        op::CREATE_PRINTER_SUBSCRIPTIONS => super::notify::create_printer_subscriptions(
            cx.cloud,
            &cx.printer,
            &owner_key(&cx.principal),
            &req,
        )
        .await?
        .into(),
        op::GET_NOTIFICATIONS => super::notify::get_notifications(
            cx.cloud,
            &cx.printer,
            &cx.uris,
            &owner_key(&cx.principal),
            &req,
        )
        .await?
        .into(),
        op::UPDATE_OUTPUT_DEVICE_ATTRIBUTES => {
            update_output_device_attributes(&cx, req).await?.into()
        }
        op::DEREGISTER_OUTPUT_DEVICE => deregister_output_device(&cx, req).await?.into(),
        op::FETCH_JOB => fetch_job(&cx, req).await?.into(),
        op::ACKNOWLEDGE_JOB => acknowledge_job(&cx, req).await?.into(),
        op::FETCH_DOCUMENT => fetch_document(&cx, req).await?,
        op::ACKNOWLEDGE_DOCUMENT => acknowledge_document(&cx, req).await?.into(),
        op::UPDATE_DOCUMENT_STATUS => update_document_status(&cx, req).await?.into(),
        op::UPDATE_JOB_STATUS => update_job_status(&cx, req).await?.into(),
        op::UPDATE_ACTIVE_JOBS => update_active_jobs(&cx, req).await?.into(),
        other => {
            return Err(Status::new(
                status::OPERATION_NOT_SUPPORTED,
                format!("operation 0x{other:04x} is not supported"),
            )
            .into())
        }
    };
    Ok(reply)
}

/// The subscriber identity kept with a subscription.
fn owner_key(p: &Principal) -> String {
    match p {
        Principal::User(e) => e.clone(),
        Principal::Device(d) => format!("device:{}", d.id),
    }
}

/// printer-uri (or job-uri) must name this printer (RFC 8011 §4.1.5).
fn check_target(req: &Message, printer: &PrinterRow) -> Result<(), Status> {
    let target = op_str(req, "printer-uri").or_else(|| op_str(req, "job-uri"));
    let Some(u) = target else {
        return Err(Status::bad_request("missing printer-uri"));
    };
    let path = u.splitn(4, '/').nth(3).unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    let expected = format!("ipp/print/{}", printer.id);
    let ok = path
        .strip_suffix(&expected)
        .is_some_and(|p| p.is_empty() || p.ends_with('/'))
        || path.rsplit_once('/').is_some_and(|(head, tail)| {
            tail.parse::<u32>().is_ok()
                && head
                    .strip_suffix(&expected)
                    .is_some_and(|p| p.is_empty() || p.ends_with('/'))
        });
    if ok {
        Ok(())
    } else {
        Err(Status::not_found(format!("no printer at '{u}'")))
    }
}

/// Credentials: `Authorization: Bearer TOKEN` (a device's access token, or a user's personal
/// access token), or Basic with a user's address and
/// cloud password, or Basic with user name `device` and the access token as password (for
/// clients such as ipptool that cannot send bearer tokens). `Ok(Ok(None))`: no credentials.
async fn authenticate(
    cloud: &Cloud,
    headers: &HeaderMap,
    client: &str,
) -> Result<Result<Option<Principal>, AuthFailure>, StoreError> {
    let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Ok(Ok(None));
    };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return device_token(cloud, rest).await;
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(Err(AuthFailure::BadCredentials));
    }
    let decoded = STANDARD
        .decode(rest)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let Some((user, password)) = decoded.as_deref().and_then(|s| s.split_once(':')) else {
        return Ok(Err(AuthFailure::BadCredentials));
    };
    if user == "device" {
        return device_token(cloud, password).await;
    }
    let Ok(email) = super::accounts::normalize_email(user) else {
        return Ok(Err(AuthFailure::BadCredentials));
    };
    let now = cloud.now();
    let window = cloud.config.limits.window_seconds;
    let limits = &cloud.config.limits;
    // Per account against guessing one password, per client against spraying many accounts
    // (and making us run argon2 for each).
    if cloud
        .store
        .throttle_count(IPP_SIGN_IN, &email, now, window)
        .await?
        >= limits.sign_in_failures_per_account
        || cloud
            .store
            .throttle_count(IPP_SIGN_IN_CLIENT, client, now, window)
            .await?
            >= limits.sign_in_failures_per_client
    {
        return Ok(Err(AuthFailure::Throttled));
    }
    let user = cloud.store.user_by_email(&email).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = super::accounts::verify_blocking(&cloud.password_checks, password.to_string(), hash)
        .await
        .unwrap_or(false);
    if ok {
        Ok(Ok(Some(Principal::User(email))))
    } else {
        cloud
            .store
            .throttle_hit(IPP_SIGN_IN, &email, now, window)
            .await?;
        cloud
            .store
            .throttle_hit(IPP_SIGN_IN_CLIENT, client, now, window)
            .await?;
        Ok(Err(AuthFailure::BadCredentials))
    }
}

const IPP_SIGN_IN: &str = "ipp-sign-in-account";
const IPP_SIGN_IN_CLIENT: &str = "ipp-sign-in-client";

async fn device_token(
    cloud: &Cloud,
    token: &str,
) -> Result<Result<Option<Principal>, AuthFailure>, StoreError> {
    if token.is_empty() || token.len() > 512 {
        return Ok(Err(AuthFailure::BadToken));
    }
    let hash = hash_secret(token);
    let Some(grant) = cloud.store.access_grant(&hash, cloud.now()).await? else {
        // Not a device's: perhaps a user's personal access token.
        return Ok(
            match cloud.store.user_email_by_token(&hash, cloud.now()).await? {
                Some(email) => Ok(Some(Principal::User(email))),
                None => Err(AuthFailure::BadToken),
            },
        );
    };
    Ok(match cloud.store.device(&grant.device_id).await? {
        Some(d) => Ok(Some(Principal::Device(d))),
        None => Err(AuthFailure::BadToken),
    })
}

/// Proxy operations: only the device that registered the printer.
fn require_proxy(cx: &Ctx<'_>) -> Result<(), Status> {
    match &cx.principal {
        Principal::Device(d) if d.id == cx.printer.device_id => Ok(()),
        Principal::Device(_) => Err(Status::new(
            NOT_AUTHORIZED,
            "this device did not register this printer",
        )),
        Principal::User(_) => Err(Status::new(
            status::FORBIDDEN,
            "only the printer's Proxy may use this operation",
        )),
    }
}

/// Client operations: a user allowed on the printer, or the printer's own device.
async fn require_client(cx: &Ctx<'_>) -> Result<(), Status> {
    match &cx.principal {
        Principal::User(email) => {
            if cx
                .cloud
                .store
                .printer_user_allowed(&cx.printer.id, email)
                .await?
            {
                Ok(())
            } else {
                Err(Status::new(
                    NOT_AUTHORIZED,
                    "you are not allowed to use this printer",
                ))
            }
        }
        Principal::Device(_) => require_proxy(cx),
    }
}

/// The job owner for a new job: the authenticated user; for the printer's device submitting on
/// a user's behalf, requesting-user-name, which must be allowed on the printer.
async fn requester(cx: &Ctx<'_>, req: &Message) -> Result<String, Status> {
    match &cx.principal {
        Principal::User(e) => Ok(e.clone()),
        Principal::Device(_) => {
            let n = op_str(req, "requesting-user-name").unwrap_or("").trim();
            let email = super::accounts::normalize_email(n).map_err(|_| {
                Status::new(
                    NOT_AUTHORIZED,
                    "requesting-user-name must name a user allowed on this printer",
                )
            })?;
            if cx
                .cloud
                .store
                .printer_user_allowed(&cx.printer.id, &email)
                .await?
            {
                Ok(email)
            } else {
                Err(Status::new(
                    NOT_AUTHORIZED,
                    "requesting-user-name must name a user allowed on this printer",
                ))
            }
        }
    }
}

/// Whether the requester sees the job's private attributes and may cancel it (job-privacy-scope
/// owner, as on the appliance): its owner, or the printer's device.
fn is_owner(cx: &Ctx<'_>, job: &JobRow) -> bool {
    match &cx.principal {
        Principal::User(e) => *e == job.owner,
        Principal::Device(d) => d.id == cx.printer.device_id,
    }
}

// ---- attribute storage -----------------------------------------------------------------------

/// Attributes as stored: base64 of an IPP message with one group.
pub fn encode_attributes(group_tag: u8, attrs: &[Attribute]) -> String {
    let mut m = Message::new((2, 0), 0, 1);
    m.groups.push(Group {
        tag: group_tag,
        attributes: attrs.to_vec(),
    });
    let mut out = Vec::new();
    encode_message(&m, &mut out);
    STANDARD.encode(out)
}

pub fn decode_attributes(stored: &str) -> Vec<Attribute> {
    STANDARD
        .decode(stored)
        .ok()
        .and_then(|b| parse_message(&b, &Limits::default()).ok())
        .and_then(|(m, _)| m.groups.into_iter().next())
        .map(|g| g.attributes)
        .unwrap_or_default()
}

/// The printer's attributes aggregated from its output devices (PWG 5100.18 §5): a `-supported`
/// or `-ready` attribute is the union of the devices' values; any other the value of the most
/// recently updated device that has it.
/// What the output devices say about their condition (PWG 5100.18 §5: the Infrastructure
/// Printer's state follows its output devices').
#[derive(Debug, Default)]
struct DeviceCondition {
    devices: usize,
    /// Output devices reporting printer-state stopped.
    stopped: usize,
    /// Their printer-state-reasons other than "none", without duplicates.
    reasons: Vec<String>,
}

async fn device_attributes(cx: &Ctx<'_>) -> Result<(Vec<Attribute>, DeviceCondition), Status> {
    let devices = cx.cloud.store.output_devices(&cx.printer.id).await?;
    let mut merged: Vec<Attribute> = Vec::new();
    let mut condition = DeviceCondition {
        devices: devices.len(),
        ..DeviceCondition::default()
    };
    for d in &devices {
        for a in decode_attributes(&d.attributes) {
            match (a.name.as_str(), a.values.as_slice()) {
                ("printer-state", [Value::Enum(5)]) => condition.stopped += 1,
                ("printer-state-reasons", values) => {
                    for r in values.iter().filter_map(Value::as_str) {
                        let ok = r != "none"
                            && r.len() <= 255
                            && r.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                        if ok
                            && !condition.reasons.iter().any(|x| x == r)
                            && condition.reasons.len() < 32
                        {
                            condition.reasons.push(r.to_string());
                        }
                    }
                }
                _ => {}
            }
            if CLOUD_OWNED.contains(&a.name.as_str()) {
                continue;
            }
            match merged.iter_mut().find(|m| m.name == a.name) {
                None => merged.push(a),
                Some(m) if a.name.ends_with("-supported") || a.name.ends_with("-ready") => {
                    for v in a.values {
                        if !m.values.contains(&v) && m.values.len() < 1024 {
                            m.values.push(v);
                        }
                    }
                }
                Some(_) => {}
            }
        }
    }
    Ok((merged, condition))
}

fn find<'a>(attrs: &'a [Attribute], n: &str) -> Option<&'a Attribute> {
    attrs.iter().find(|a| a.name == n)
}

const DEFAULT_FORMATS: &[&str] = &[
    "application/octet-stream",
    "application/pdf",
    "image/jpeg",
    "image/pwg-raster",
    "image/urf",
];

async fn full_printer_attributes(cx: &Ctx<'_>) -> Result<Vec<Attribute>, Status> {
    let (mut attrs, condition) = device_attributes(cx).await?;
    let p = &cx.printer;
    let now = cx.now();
    let queued = cx.cloud.store.active_job_count(&p.id).await?;
    let processing = !cx
        .cloud
        .store
        .jobs(&p.id, WhichJobs::State(job_state::PROCESSING), None, 1)
        .await?
        .is_empty();
    // Stopped when no output device is there or all of them are stopped; the reasons are the
    // output devices' own.
    let state = if condition.devices == 0 || condition.stopped == condition.devices {
        5
    } else if processing {
        4
    } else {
        3
    };
    let mut reasons = condition.reasons;
    if condition.devices == 0 {
        reasons.push("offline-report".into());
    }
    if reasons.is_empty() {
        reasons.push("none".into());
    }
    let kws = |l: &[&str]| l.iter().map(|s| kw(s)).collect::<Vec<_>>();
    let mut own = vec![
        Attribute::set(
            "printer-uri-supported",
            cx.uris.supported().iter().map(|(u, _)| uri(u)).collect(),
        ),
        Attribute::set(
            "uri-security-supported",
            cx.uris.supported().iter().map(|(_, s)| kw(s)).collect(),
        ),
        Attribute::set(
            "uri-authentication-supported",
            cx.uris.supported().iter().map(|_| kw("basic")).collect(),
        ),
        Attribute::new("printer-name", name(&p.name)),
        Attribute::new("printer-location", text(&p.location)),
        Attribute::new("printer-info", text(&p.info)),
        Attribute::new("printer-uuid", uri(&p.uuid)),
        Attribute::new(
            "printer-more-info",
            uri(&format!("{}/", cx.cloud.public_url)),
        ),
        Attribute::new("printer-state", en(state)),
        Attribute::set(
            "printer-state-reasons",
            reasons.iter().map(|r| kw(r)).collect(),
        ),
        Attribute::new("printer-state-message", text("")),
        Attribute::new("printer-is-accepting-jobs", Value::Boolean(true)),
        Attribute::new("queued-job-count", int(queued.min(i32::MAX as i64) as i32)),
        Attribute::new("printer-up-time", int(up_time(now))),
        Attribute::new("printer-current-time", date_time(now)),
        Attribute::new(
            "printer-state-change-time",
            int(up_time(p.config_changed_at)),
        ),
        Attribute::new(
            "printer-state-change-date-time",
            date_time(p.config_changed_at),
        ),
        Attribute::new(
            "printer-config-change-time",
            int(up_time(p.config_changed_at)),
        ),
        Attribute::new(
            "printer-config-change-date-time",
            date_time(p.config_changed_at),
        ),
        Attribute::new("charset-configured", Value::Charset("utf-8".into())),
        Attribute::set(
            "charset-supported",
            vec![
                Value::Charset("utf-8".into()),
                Value::Charset("us-ascii".into()),
            ],
        ),
        Attribute::new(
            "natural-language-configured",
            Value::NaturalLanguage("en".into()),
        ),
        Attribute::new(
            "generated-natural-language-supported",
            Value::NaturalLanguage("en".into()),
        ),
        Attribute::set("ipp-versions-supported", kws(&["1.0", "1.1", "2.0"])),
        Attribute::set(
            "ipp-features-supported",
            kws(&["infrastructure-printer", "ipp-everywhere"]),
        ),
        Attribute::set(
            "operations-supported",
            OPERATIONS.iter().map(|o| en(i32::from(*o))).collect(),
        ),
        Attribute::set("compression-supported", kws(&["none", "gzip", "deflate"])),
        Attribute::new("job-ids-supported", Value::Boolean(true)),
        Attribute::new("multiple-document-jobs-supported", Value::Boolean(true)),
        Attribute::new("multiple-operation-time-out", int(60)),
        Attribute::set(
            "which-jobs-supported",
            kws(&[
                "completed",
                "not-completed",
                "all",
                "aborted",
                "canceled",
                "pending",
                "processing",
                "fetchable",
            ]),
        ),
        Attribute::new("job-privacy-attributes", kw("default")),
        Attribute::new("job-privacy-scope", kw("owner")),
        Attribute::set("notify-events-supported", kws(NOTIFY_EVENTS)),
        Attribute::new("notify-events-default", kw("job-completed")),
        Attribute::new("notify-pull-method-supported", kw("ippget")),
        Attribute::new("notify-lease-duration-default", int(3600)),
        Attribute::new(
            "notify-lease-duration-supported",
            Value::Range(0, 86_400 * 7),
        ),
        Attribute::new("notify-max-events-supported", int(100)),
        Attribute::new(
            "ippget-event-life",
            int(super::notify::EVENT_LIFE_SECONDS as i32),
        ),
    ];
    if find(&attrs, "printer-make-and-model").is_none() {
        let mm = if p.make_and_model.is_empty() {
            "printbridge cloud printer"
        } else {
            &p.make_and_model
        };
        own.push(Attribute::new("printer-make-and-model", text(mm)));
    }
    if find(&attrs, "document-format-supported").is_none() {
        own.push(Attribute::set(
            "document-format-supported",
            DEFAULT_FORMATS
                .iter()
                .map(|f| Value::MimeMediaType(f.to_string()))
                .collect(),
        ));
    }
    for (n, v) in [
        (
            "document-format-default",
            Value::MimeMediaType("application/octet-stream".into()),
        ),
        ("pdl-override-supported", kw("attempted")),
        ("color-supported", Value::Boolean(false)),
        ("copies-default", int(1)),
        ("copies-supported", Value::Range(1, 1)),
        ("job-creation-attributes-supported", kw("copies")),
    ] {
        if find(&attrs, n).is_none() {
            own.push(Attribute::new(n, v));
        }
    }
    attrs.extend(own);
    Ok(attrs)
}

/// printer-up-time: seconds since the epoch (an up-time that is the same on every instance and
/// never goes back), clamped to the integer range.
fn up_time(t: i64) -> i32 {
    t.clamp(1, i32::MAX as i64) as i32
}

/// Get-Printer-Attributes (RFC 8011 §4.2.5) of the Infrastructure Printer.
async fn get_printer_attributes(cx: &Ctx<'_>, req: Message) -> Result<Message, Status> {
    if let Some(a) = op_attr(&req, "document-format") {
        if !matches!(a.values.as_slice(), [Value::MimeMediaType(_)]) {
            return Err(Status::bad_request(
                "document-format must be one mimeMediaType",
            ));
        }
    }
    let wanted = requested(&req).unwrap_or_else(|| vec!["all".to_string()]);
    let has = |w: &str| wanted.iter().any(|x| x == w);
    let all = has("all");
    let descr = all || has("printer-description");
    let templ = all || has("job-template");
    let selected = |n: &str| {
        let is_templ = crate::ipp::attributes::is_job_template_attr(n);
        if n == "media-col-database" {
            return has(n);
        }
        (descr && !is_templ) || (templ && is_templ) || has(n)
    };
    let mut resp = response(status::OK, None);
    let g = resp.group_mut(tag::PRINTER);
    for a in full_printer_attributes(cx).await? {
        if selected(&a.name) {
            g.push(a);
        }
    }
    Ok(resp)
}

// ---- job creation ----------------------------------------------------------------------------

/// What the checks of a job creation request found.
struct Creation {
    accepted: Vec<Attribute>,
    format: String,
    compression: String,
    unsupported: Vec<Attribute>,
    job_name: String,
}

/// Checks the operation and job template attributes of a job creation request against the
/// printer's (aggregated) capabilities (RFC 8011 §4.2.1.2, §5.2): the accepted job template
/// attributes, the document format and compression, and the attributes to report as
/// unsupported (or refuse, with ipp-attribute-fidelity).
async fn creation_checks(cx: &Ctx<'_>, req: &Message) -> Result<Creation, Status> {
    let printer = full_printer_attributes(cx).await?;
    let format = check_format(op_attr(req, "document-format"), &printer)?;
    let compression =
        validate::check_compression(op_attr(req, "compression").and_then(|a| a.first()))?;
    let fidelity = op_bool(req, "ipp-attribute-fidelity").unwrap_or(false);
    let mut accepted = Vec::new();
    let mut unsupported = Vec::new();
    if let Some(g) = req.group(tag::JOB) {
        for a in &g.attributes {
            if template_supported(a, &printer) {
                accepted.push(a.clone());
            } else {
                unsupported.push(a.clone());
            }
        }
    }
    if fidelity && !unsupported.is_empty() {
        let mut s = Status::new(
            status::ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
            "job template attributes or values are not supported",
        );
        s.unsupported = unsupported;
        return Err(s);
    }
    let job_name = match op_attr(req, "job-name").map(|a| a.values.as_slice()) {
        None => op_str(req, "document-name")
            .unwrap_or("Untitled")
            .to_string(),
        Some([v @ (Value::Name(_) | Value::NameLang { .. })]) => {
            v.as_str().unwrap_or("").to_string()
        }
        Some(_) => return Err(Status::bad_request("job-name must be one name value")),
    };
    Ok(Creation {
        accepted,
        format,
        compression,
        unsupported,
        job_name: job_name.chars().take(255).collect(),
    })
}

fn check_format(format: Option<&Attribute>, printer: &[Attribute]) -> Result<String, Status> {
    let supported = |f: &str| {
        f == "application/octet-stream"
            || find(printer, "document-format-supported").is_some_and(|a| {
                a.values
                    .iter()
                    .any(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(f)))
            })
    };
    match format.map(|a| a.values.as_slice()) {
        None => Ok("application/octet-stream".into()),
        Some([Value::MimeMediaType(f)]) => {
            let f = f.to_ascii_lowercase();
            if supported(&f) {
                Ok(f)
            } else {
                let mut s = Status::new(
                    status::DOCUMENT_FORMAT_NOT_SUPPORTED,
                    format!("document-format '{f}' is not supported"),
                );
                s.unsupported
                    .push(Attribute::new("document-format", Value::MimeMediaType(f)));
                Err(s)
            }
        }
        Some(_) => Err(Status::bad_request(
            "document-format must be one mimeMediaType",
        )),
    }
}

/// Whether a job template attribute's values are among the printer's `-supported` values.
fn template_supported(a: &Attribute, printer: &[Attribute]) -> bool {
    if !JOB_TEMPLATE.contains(&a.name.as_str()) || a.values.is_empty() {
        return false;
    }
    let Some(sup) = find(printer, &format!("{}-supported", a.name)) else {
        // Things like job-account-id-supported are booleans or absent; accept what the devices
        // did not describe only when it is a collection we pass through.
        return matches!(a.name.as_str(), "media-col" | "finishings-col");
    };
    let one_value = !matches!(a.name.as_str(), "finishings" | "page-ranges");
    if one_value && a.values.len() != 1 {
        return false;
    }
    a.values.iter().all(|v| match v {
        Value::Integer(i) => sup.values.iter().any(|s| match s {
            Value::Range(lo, hi) => lo <= i && i <= hi,
            Value::Integer(j) => i == j,
            _ => false,
        }),
        Value::Range(lo, hi) => {
            lo <= hi && *lo >= 1 && sup.values.first() == Some(&Value::Boolean(true))
        }
        Value::Collection(_) => !sup.values.is_empty(),
        Value::NameLang { name: n, .. } | Value::Name(n) => {
            sup.values.iter().any(|s| s.as_str() == Some(n.as_str()))
        }
        other => sup.values.contains(other),
    })
}

async fn validate_job(cx: &Ctx<'_>, req: Message) -> Result<Message, Status> {
    requester(cx, &req).await?;
    let c = creation_checks(cx, &req).await?;
    Ok(with_unsupported(response(status::OK, None), c.unsupported))
}

fn with_unsupported(mut resp: Message, unsupported: Vec<Attribute>) -> Message {
    if !unsupported.is_empty() {
        resp.code = status::OK_IGNORED_OR_SUBSTITUTED;
        resp.group_mut(tag::UNSUPPORTED).attributes = unsupported;
    }
    resp
}

async fn store_document(
    cx: &Ctx<'_>,
    req: &Message,
    doc: &mut (dyn AsyncRead + Send + Unpin),
    format: &str,
    compression: &str,
) -> Result<NewDocument, Status> {
    let max = cx.cloud.config.infra.max_document_bytes;
    let blob = match cx.cloud.blobs.put(doc, max).await {
        Ok(b) => b,
        Err(super::blob::BlobError::TooLarge(n)) => {
            return Err(Status::new(
                ENTITY_TOO_LARGE,
                format!("document larger than {n} bytes"),
            ))
        }
        Err(super::blob::BlobError::Source(e)) => {
            tracing::info!("document upload failed: {e}");
            return Err(Status::bad_request("the document could not be received"));
        }
        Err(e) => return Err(InfraError::Blob(e).into()),
    };
    let name = op_str(req, "document-name")
        .unwrap_or("")
        .chars()
        .take(255)
        .collect();
    Ok(NewDocument {
        format: format.to_string(),
        compression: compression.to_string(),
        name,
        blob: blob.key,
        size: blob.size.min(i64::MAX as u64) as i64,
    })
}

fn job_created(
    cx: &Ctx<'_>,
    job_id: i64,
    state: i64,
    reasons: &str,
    unsupported: Vec<Attribute>,
) -> Message {
    let mut resp = response(status::OK, None);
    let g = resp.group_mut(tag::JOB);
    g.push(Attribute::new("job-id", int(job_id as i32)));
    g.push(Attribute::new("job-uri", uri(&cx.job_uri(job_id))));
    g.push(Attribute::new("job-state", en(state as i32)));
    g.push(Attribute::set(
        "job-state-reasons",
        reasons.split_whitespace().map(kw).collect(),
    ));
    with_unsupported(resp, unsupported)
}

async fn print_job(
    cx: &Ctx<'_>,
    req: Message,
    doc: &mut (dyn AsyncRead + Send + Unpin),
) -> Result<Message, Status> {
    let owner = requester(cx, &req).await?;
    let c = creation_checks(cx, &req).await?;
    let document = store_document(cx, &req, doc, &c.format, &c.compression).await?;
    let job = NewJob {
        printer_id: cx.printer.id.clone(),
        uuid: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        owner,
        name: c.job_name,
        attributes: encode_attributes(tag::JOB, &c.accepted),
        document: Some(document),
    };
    let job_id = cx.cloud.store.create_job(&job, cx.now()).await?;
    cx.cloud.events.wake(&cx.printer.id);
    Ok(job_created(
        cx,
        job_id,
        job_state::PENDING,
        "job-fetchable",
        c.unsupported,
    ))
}

async fn create_job(cx: &Ctx<'_>, req: Message) -> Result<Message, Status> {
    let owner = requester(cx, &req).await?;
    let c = creation_checks(cx, &req).await?;
    let job = NewJob {
        printer_id: cx.printer.id.clone(),
        uuid: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        owner,
        name: c.job_name,
        attributes: encode_attributes(tag::JOB, &c.accepted),
        document: None,
    };
    let job_id = cx.cloud.store.create_job(&job, cx.now()).await?;
    cx.cloud.events.wake(&cx.printer.id);
    Ok(job_created(
        cx,
        job_id,
        job_state::PENDING,
        "job-incoming",
        c.unsupported,
    ))
}

/// The job named by job-id (or job-uri) of this printer.
async fn target_job(cx: &Ctx<'_>, req: &Message) -> Result<JobRow, Status> {
    let id = if let Some(u) = op_str(req, "job-uri") {
        u.rsplit('/')
            .next()
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| Status::not_found(format!("job-uri '{u}' does not name a job")))?
    } else {
        match op_attr(req, "job-id").map(|a| a.values.as_slice()) {
            Some([Value::Integer(id)]) if *id > 0 => i64::from(*id),
            Some(_) => return Err(Status::bad_request("job-id must be one positive integer")),
            None => return Err(Status::bad_request("missing job-id operation attribute")),
        }
    };
    cx.cloud
        .store
        .job(&cx.printer.id, id)
        .await?
        .ok_or_else(|| Status::not_found(format!("job {id} does not exist")))
}

async fn send_document(
    cx: &Ctx<'_>,
    req: Message,
    doc: &mut (dyn AsyncRead + Send + Unpin),
) -> Result<Message, Status> {
    let job = target_job(cx, &req).await?;
    if !is_owner(cx, &job) {
        return Err(Status::new(
            status::FORBIDDEN,
            "only the job's owner may add documents",
        ));
    }
    let last = match op_attr(&req, "last-document").map(|a| a.values.as_slice()) {
        Some([Value::Boolean(b)]) => *b,
        Some(_) => return Err(Status::bad_request("last-document must be one boolean")),
        None => {
            return Err(Status::bad_request(
                "missing last-document operation attribute",
            ))
        }
    };
    if job.complete || job.state != job_state::PENDING {
        return Err(Status::not_possible("the job takes no more documents"));
    }
    let printer = full_printer_attributes(cx).await?;
    let format = check_format(op_attr(&req, "document-format"), &printer)?;
    let compression =
        validate::check_compression(op_attr(&req, "compression").and_then(|a| a.first()))?;
    // Send-Document with last-document=true and no data just closes the job.
    let document = store_document(cx, &req, doc, &format, &compression).await?;
    let document = if document.size == 0 && last {
        let _ = cx.cloud.blobs.delete(&document.blob).await;
        None
    } else {
        Some(document)
    };
    let added = cx
        .cloud
        .store
        .add_document(
            &cx.printer.id,
            job.job_id,
            document.as_ref(),
            last,
            cx.now(),
        )
        .await?;
    if added.is_none() {
        if let Some(d) = &document {
            let _ = cx.cloud.blobs.delete(&d.blob).await;
        }
        return Err(Status::not_possible("the job takes no more documents"));
    }
    cx.cloud.events.wake(&cx.printer.id);
    let reasons = if last {
        "job-fetchable"
    } else {
        "job-incoming"
    };
    Ok(job_created(
        cx,
        job.job_id,
        job_state::PENDING,
        reasons,
        Vec::new(),
    ))
}

async fn cancel_job(cx: &Ctx<'_>, req: Message) -> Result<Message, Status> {
    let job = target_job(cx, &req).await?;
    if !is_owner(cx, &job) {
        return Err(Status::new(
            status::FORBIDDEN,
            "only the job's owner may cancel it",
        ));
    }
    if job.is_terminal() {
        return Err(Status::not_possible(format!(
            "job {} is already finished",
            job.job_id
        )));
    }
    if cx
        .cloud
        .store
        .cancel_job(&cx.printer.id, job.job_id, cx.now())
        .await?
        .is_none()
    {
        return Err(Status::not_possible(format!(
            "job {} is already finished",
            job.job_id
        )));
    }
    cx.cloud.events.wake(&cx.printer.id);
    Ok(response(status::OK, None))
}

// ---- job attributes --------------------------------------------------------------------------

fn job_attributes(
    cx: &Ctx<'_>,
    job: &JobRow,
    wanted: Option<&[String]>,
    owner: bool,
    default: &[&str],
) -> Vec<Attribute> {
    let wanted: Vec<String> = wanted
        .map(|w| w.to_vec())
        .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect());
    let all = wanted.iter().any(|w| w == "all");
    let description = all || wanted.iter().any(|w| w == "job-description");
    let template = all || wanted.iter().any(|w| w == "job-template");
    let want = |n: &str| description || wanted.iter().any(|w| w == n);
    let mut v = Vec::new();
    let mut put = |n: &str, val: Value| {
        if want(n) && (owner || !PRIVATE_JOB_ATTRIBUTES.contains(&n)) {
            v.push(Attribute::new(n, val));
        }
    };
    let no_value = || Value::OutOfBand(tag::NO_VALUE);
    put("job-id", int(job.job_id as i32));
    put("job-uri", uri(&cx.job_uri(job.job_id)));
    put("job-uuid", uri(&job.uuid));
    put("job-printer-uri", uri(&cx.uris.ipp));
    put("job-name", name(&job.name));
    put("job-originating-user-name", name(&job.owner));
    put("job-state", en(job.state as i32));
    if !job.message.is_empty() {
        put("job-state-message", text(&job.message));
    }
    put("job-printer-up-time", int(up_time(cx.now())));
    put("time-at-creation", int(up_time(job.created_at)));
    put("date-time-at-creation", date_time(job.created_at));
    put(
        "time-at-processing",
        job.processing_at
            .map(|t| int(up_time(t)))
            .unwrap_or_else(no_value),
    );
    put(
        "date-time-at-processing",
        job.processing_at.map(date_time).unwrap_or_else(no_value),
    );
    put(
        "time-at-completed",
        job.completed_at
            .map(|t| int(up_time(t)))
            .unwrap_or_else(no_value),
    );
    put(
        "date-time-at-completed",
        job.completed_at.map(date_time).unwrap_or_else(no_value),
    );
    put(
        "job-impressions-completed",
        int(job.impressions_completed.clamp(0, i32::MAX as i64) as i32),
    );
    put(
        "job-k-octets",
        int(job.k_octets.clamp(0, i32::MAX as i64) as i32),
    );
    put("number-of-documents", int(job.documents as i32));
    // Present only once assigned: ipp-1.1.test wants a name whenever it is there.
    if let Some(d) = job.assigned_device.as_deref() {
        put("output-device-assigned", name(d));
    }
    if let Some(s) = job.device_job_state {
        put("output-device-job-state", en(s as i32));
    }
    if want("job-state-reasons") {
        let reasons = job.reasons();
        let reasons = if reasons.is_empty() {
            vec!["none"]
        } else {
            reasons
        };
        v.push(Attribute::set(
            "job-state-reasons",
            reasons.into_iter().map(kw).collect(),
        ));
    }
    for a in decode_attributes(&job.attributes) {
        if template || wanted.contains(&a.name) {
            v.push(a);
        }
    }
    v
}

async fn get_job_attributes(cx: &Ctx<'_>, req: Message) -> Result<Message, Status> {
    let job = target_job(cx, &req).await?;
    let wanted = requested(&req);
    let owner = is_owner(cx, &job);
    let mut resp = response(status::OK, None);
    resp.groups.push(Group {
        tag: tag::JOB,
        attributes: job_attributes(cx, &job, wanted.as_deref(), owner, &["all"]),
    });
    Ok(resp)
}

/// Get-Jobs (RFC 8011 §4.2.6, PWG 5100.7 which-jobs, PWG 5100.18 which-jobs=fetchable).
async fn get_jobs(cx: &Ctx<'_>, req: Message) -> Result<Message, Status> {
    let which = op_str(&req, "which-jobs").unwrap_or("not-completed");
    let filter = match which {
        "not-completed" => WhichJobs::NotCompleted,
        "completed" => WhichJobs::Completed,
        "all" => WhichJobs::All,
        "aborted" => WhichJobs::State(job_state::ABORTED),
        "canceled" => WhichJobs::State(job_state::CANCELED),
        "pending" => WhichJobs::State(job_state::PENDING),
        "pending-held" => WhichJobs::State(job_state::PENDING_HELD),
        "processing" => WhichJobs::State(job_state::PROCESSING),
        "processing-stopped" => WhichJobs::State(job_state::PROCESSING_STOPPED),
        "fetchable" => WhichJobs::Fetchable,
        other => {
            let mut s = Status::new(
                status::ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                format!("which-jobs '{other}' is not supported"),
            );
            s.unsupported.push(Attribute::new("which-jobs", kw(other)));
            return Err(s);
        }
    };
    let limit = match op_attr(&req, "limit").map(|a| a.values.as_slice()) {
        None => 1000,
        Some([Value::Integer(n)]) if *n > 0 => i64::from(*n).min(1000),
        Some(_) => return Err(Status::bad_request("limit must be one positive integer")),
    };
    let first_index = match op_attr(&req, "first-index").map(|a| a.values.as_slice()) {
        None => 1,
        Some([Value::Integer(n)]) if *n > 0 => *n as usize,
        Some(_) => {
            return Err(Status::bad_request(
                "first-index must be one positive integer",
            ))
        }
    };
    let my_jobs = op_bool(&req, "my-jobs").unwrap_or(false);
    let me = match &cx.principal {
        Principal::User(e) => Some(e.clone()),
        Principal::Device(_) => None,
    };
    let owner_filter = if my_jobs { me.as_deref() } else { None };
    let wanted = requested(&req);
    let jobs = cx
        .cloud
        .store
        .jobs(
            &cx.printer.id,
            filter,
            owner_filter,
            limit.saturating_add(first_index as i64 - 1),
        )
        .await?;
    let mut resp = response(status::OK, None);
    for job in jobs.iter().skip(first_index - 1) {
        let owner = is_owner(cx, job);
        resp.groups.push(Group {
            tag: tag::JOB,
            attributes: job_attributes(cx, job, wanted.as_deref(), owner, &["job-id", "job-uri"]),
        });
    }
    Ok(resp)
}

// ---- Proxy operations (PWG 5100.18 §6) ---------------------------------------------------------

/// output-device-uuid of a Proxy request, normalised.
fn output_device_uuid(req: &Message) -> Result<String, Status> {
    match op_attr(req, "output-device-uuid").map(|a| a.values.as_slice()) {
        Some([Value::Uri(u)]) => normalize_uuid(u)
            .ok_or_else(|| Status::bad_request("output-device-uuid must be a urn:uuid: URI")),
        Some(_) => Err(Status::bad_request("output-device-uuid must be one uri")),
        None => Err(Status::bad_request(
            "missing output-device-uuid operation attribute",
        )),
    }
}

/// The request's output device, which this device must have registered through
/// Update-Output-Device-Attributes.
async fn known_output_device(cx: &Ctx<'_>, req: &Message) -> Result<String, Status> {
    let uuid = output_device_uuid(req)?;
    let Some(device) = cx.device() else {
        return Err(Status::new(NOT_AUTHORIZED, "not this printer's Proxy"));
    };
    let known = cx
        .cloud
        .store
        .output_devices(&cx.printer.id)
        .await?
        .into_iter()
        .any(|d| d.uuid == uuid && d.device_id == device.id);
    if known {
        Ok(uuid)
    } else {
        Err(Status::not_found(
            "unknown output-device-uuid: send Update-Output-Device-Attributes first",
        ))
    }
}

/// Update-Output-Device-Attributes (PWG 5100.18 §6.11): the output device's printer attributes;
/// values replace earlier ones, delete-attribute removes one.
async fn update_output_device_attributes(cx: &Ctx<'_>, req: Message) -> Result<Message, Status> {
    let uuid = output_device_uuid(&req)?;
    let Some(device) = cx.device() else {
        return Err(Status::new(NOT_AUTHORIZED, "not this printer's Proxy"));
    };
    let existing = cx
        .cloud
        .store
        .output_devices(&cx.printer.id)
        .await?
        .into_iter()
        .find(|d| d.uuid == uuid);
    let mut attrs = existing
        .as_ref()
        .map(|d| decode_attributes(&d.attributes))
        .unwrap_or_default();
    if let Some(g) = req.group(tag::PRINTER) {
        for a in &g.attributes {
            attrs.retain(|x| x.name != a.name);
            if !matches!(
                a.values.as_slice(),
                [Value::OutOfBand(tag::DELETE_ATTRIBUTE)]
            ) {
                attrs.push(a.clone());
            }
        }
    }
    let stored = encode_attributes(tag::PRINTER, &attrs);
    if stored.len() > 2 * 1024 * 1024 {
        return Err(Status::new(
            ENTITY_TOO_LARGE,
            "too many output device attributes",
        ));
    }
    let ok = cx
        .cloud
        .store
        .upsert_output_device(
            &cx.printer.id,
            &uuid,
            &device.id,
            &stored,
            cx.cloud.config.infra.max_output_devices,
            cx.now(),
        )
        .await?;
    if !ok {
        return Err(Status::not_possible(
            "this output device belongs to another device, or the printer has too many",
        ));
    }
    Ok(response(status::OK, None))
}

async fn deregister_output_device(cx: &Ctx<'_>, req: Message) -> Result<Message, Status> {
    let uuid = output_device_uuid(&req)?;
    let Some(device) = cx.device() else {
        return Err(Status::new(NOT_AUTHORIZED, "not this printer's Proxy"));
    };
    if !cx
        .cloud
        .store
        .deregister_output_device(&cx.printer.id, &uuid, &device.id, cx.now())
        .await?
    {
        return Err(Status::not_found("unknown output-device-uuid"));
    }
    cx.cloud.events.wake(&cx.printer.id);
    Ok(response(status::OK, None))
}

fn not_fetchable(job_id: i64) -> Status {
    Status::new(
        NOT_FETCHABLE,
        format!("job {job_id} is not fetchable by this output device"),
    )
}

/// Fetch-Job (PWG 5100.18 §6.6): the job's attributes, for a fetchable job or one already
/// assigned to this output device.
async fn fetch_job(cx: &Ctx<'_>, req: Message) -> Result<Message, Status> {
    let uuid = known_output_device(cx, &req).await?;
    let job = target_job(cx, &req).await?;
    let fetchable =
        job.state == job_state::PENDING && job.complete && job.assigned_device.is_none();
    let mine = job.assigned_device.as_deref() == Some(uuid.as_str()) && !job.is_terminal();
    if !fetchable && !mine {
        return Err(not_fetchable(job.job_id));
    }
    let mut resp = response(status::OK, None);
    let mut attrs = job_attributes(cx, &job, None, true, &["all"]);
    if let Some(d) = cx
        .cloud
        .store
        .documents(&cx.printer.id, job.job_id)
        .await?
        .first()
    {
        attrs.push(Attribute::new(
            "document-format",
            Value::MimeMediaType(d.format.clone()),
        ));
        attrs.push(Attribute::new("compression", kw(&d.compression)));
    }
    resp.groups.push(Group {
        tag: tag::JOB,
        attributes: attrs,
    });
    Ok(resp)
}

fn fetch_status_ok(req: &Message) -> bool {
    op_int(req, "fetch-status-code").is_none_or(|c| c < 0x0400)
        && !matches!(
            op_attr(req, "fetch-status-code").and_then(|a| a.first()),
            Some(Value::Enum(c)) if *c >= 0x0400
        )
}

/// Acknowledge-Job (PWG 5100.18 §6.2): assigns the job to this output device, exactly once.
async fn acknowledge_job(cx: &Ctx<'_>, req: Message) -> Result<Message, Status> {
    let uuid = known_output_device(cx, &req).await?;
    let job = target_job(cx, &req).await?;
    if !fetch_status_ok(&req) {
        // The Proxy declines the job: it stays fetchable for the others.
        return Ok(response(status::OK, None));
    }
    match cx
        .cloud
        .store
        .acknowledge_job(&cx.printer.id, job.job_id, &uuid, cx.now())
        .await?
    {
        Acknowledged::Assigned | Acknowledged::AlreadyYours => Ok(response(status::OK, None)),
        Acknowledged::NotFetchable => Err(not_fetchable(job.job_id)),
        Acknowledged::NotFound => Err(Status::not_found(format!(
            "job {} does not exist",
            job.job_id
        ))),
    }
}

/// A job assigned to this output device (after Acknowledge-Job), still unfinished.
async fn assigned_job(cx: &Ctx<'_>, req: &Message) -> Result<(String, JobRow), Status> {
    let uuid = known_output_device(cx, req).await?;
    let job = target_job(cx, req).await?;
    if job.assigned_device.as_deref() != Some(uuid.as_str()) {
        return Err(not_fetchable(job.job_id));
    }
    Ok((uuid, job))
}

fn document_number(req: &Message) -> Result<i64, Status> {
    match op_attr(req, "document-number").map(|a| a.values.as_slice()) {
        Some([Value::Integer(n)]) if *n > 0 => Ok(i64::from(*n)),
        Some(_) => Err(Status::bad_request(
            "document-number must be one positive integer",
        )),
        None => Err(Status::bad_request(
            "missing document-number operation attribute",
        )),
    }
}

/// Fetch-Document (PWG 5100.18 §6.5): the document's attributes, then its data.
async fn fetch_document(cx: &Ctx<'_>, req: Message) -> Result<Reply, Status> {
    let (_, job) = assigned_job(cx, &req).await?;
    if job.is_terminal() {
        return Err(not_fetchable(job.job_id));
    }
    let number = document_number(&req)?;
    let docs = cx.cloud.store.documents(&cx.printer.id, job.job_id).await?;
    let Some(d) = docs.into_iter().find(|d| d.number == number) else {
        return Err(Status::not_found(format!(
            "job {} has no document {number}",
            job.job_id
        )));
    };
    let Some(key) = &d.blob else {
        return Err(not_fetchable(job.job_id));
    };
    let reader = cx.cloud.blobs.open(key).await.map_err(InfraError::Blob)?;
    let mut resp = response(status::OK, None);
    let g = resp.group_mut(tag::DOCUMENT);
    g.push(Attribute::new("document-number", int(number as i32)));
    g.push(Attribute::new(
        "document-format",
        Value::MimeMediaType(d.format.clone()),
    ));
    g.push(Attribute::new("compression", kw(&d.compression)));
    if !d.name.is_empty() {
        g.push(Attribute::new("document-name", name(&d.name)));
    }
    g.push(Attribute::new("document-state", en(d.state as i32)));
    g.push(Attribute::set(
        "document-state-reasons",
        d.reasons.split_whitespace().map(kw).collect(),
    ));
    g.push(Attribute::new(
        "document-k-octets",
        int(((d.size + 1023) / 1024).min(i32::MAX as i64) as i32),
    ));
    Ok(Reply {
        msg: resp,
        document: Some(reader),
    })
}

/// Acknowledge-Document (PWG 5100.18 §6.1): the Proxy has the document.
async fn acknowledge_document(cx: &Ctx<'_>, req: Message) -> Result<Message, Status> {
    let (uuid, job) = assigned_job(cx, &req).await?;
    let number = document_number(&req)?;
    let (state, reasons) = if fetch_status_ok(&req) {
        (job_state::PENDING, "none")
    } else {
        (job_state::PENDING, "document-fetchable")
    };
    if !cx
        .cloud
        .store
        .set_document_state(&cx.printer.id, job.job_id, number, &uuid, state, reasons)
        .await?
    {
        return Err(Status::not_found(format!(
            "job {} has no document {number}",
            job.job_id
        )));
    }
    Ok(response(status::OK, None))
}

fn keywords(a: Option<&Attribute>) -> Option<String> {
    let a = a?;
    let words: Vec<&str> = a
        .values
        .iter()
        .filter_map(Value::as_str)
        .filter(|k| {
            !k.is_empty()
                && k.len() <= 255
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .take(32)
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

fn enum_of(a: Option<&Attribute>) -> Option<i64> {
    match a.map(|a| a.values.as_slice()) {
        Some([Value::Enum(v)]) => Some(i64::from(*v)),
        _ => None,
    }
}

/// Update-Document-Status (PWG 5100.18 §6.9).
async fn update_document_status(cx: &Ctx<'_>, req: Message) -> Result<Message, Status> {
    let (uuid, job) = assigned_job(cx, &req).await?;
    let number = document_number(&req)?;
    let g = req.group(tag::DOCUMENT);
    let get = |n: &str| g.and_then(|g| g.get(n));
    let state = enum_of(get("output-device-document-state"))
        .or_else(|| enum_of(get("document-state")))
        .unwrap_or(job_state::PROCESSING);
    if !(3..=9).contains(&state) {
        return Err(Status::bad_request("document-state out of range"));
    }
    let reasons = keywords(get("output-device-document-state-reasons"))
        .or_else(|| keywords(get("document-state-reasons")))
        .unwrap_or_else(|| "none".into());
    if !cx
        .cloud
        .store
        .set_document_state(&cx.printer.id, job.job_id, number, &uuid, state, &reasons)
        .await?
    {
        return Err(Status::not_found(format!(
            "job {} has no document {number}",
            job.job_id
        )));
    }
    Ok(response(status::OK, None))
}

/// Update-Job-Status (PWG 5100.18 §6.10): the job follows its output device's job state.
async fn update_job_status(cx: &Ctx<'_>, req: Message) -> Result<Message, Status> {
    let (uuid, job) = assigned_job(cx, &req).await?;
    let g = req.group(tag::JOB);
    let get = |n: &str| g.and_then(|g| g.get(n));
    let Some(state) = enum_of(get("output-device-job-state")).or_else(|| enum_of(get("job-state")))
    else {
        return Err(Status::bad_request(
            "Update-Job-Status needs output-device-job-state",
        ));
    };
    if !(3..=9).contains(&state) || state == job_state::PENDING_HELD {
        return Err(Status::bad_request("output-device-job-state out of range"));
    }
    let reasons = keywords(get("output-device-job-state-reasons"))
        .or_else(|| keywords(get("job-state-reasons")))
        .unwrap_or_else(|| match state {
            job_state::COMPLETED => "job-completed-successfully".into(),
            job_state::PROCESSING => "job-printing".into(),
            job_state::ABORTED => "aborted-by-system".into(),
            job_state::CANCELED => "job-canceled-at-device".into(),
            _ => "none".into(),
        });
    let message = get("output-device-job-state-message")
        .or_else(|| get("job-state-message"))
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .map(|s| s.chars().take(255).collect::<String>());
    let impressions = get("job-impressions-completed")
        .and_then(|a| a.first())
        .and_then(Value::as_int)
        .filter(|n| *n >= 0)
        .map(i64::from);
    let update = JobUpdate {
        state,
        reasons,
        message,
        impressions_completed: impressions,
    };
    match cx
        .cloud
        .store
        .update_job_status(&cx.printer.id, job.job_id, &uuid, &update, cx.now())
        .await?
    {
        Some(_) => {
            cx.cloud.events.wake(&cx.printer.id);
            Ok(response(status::OK, None))
        }
        None => Err(Status::not_possible(format!(
            "job {} is already finished",
            job.job_id
        ))),
    }
}

/// Update-Active-Jobs (PWG 5100.18 §6.8): the output device lists the jobs it works on; the
/// answer names those the printer no longer has active on it (canceled, or given to another).
async fn update_active_jobs(cx: &Ctx<'_>, req: Message) -> Result<Message, Status> {
    let uuid = known_output_device(cx, &req).await?;
    let ids: Vec<i64> = match op_attr(&req, "job-ids") {
        None => Vec::new(),
        Some(a) => {
            if a.values.len() > 1000 {
                return Err(Status::new(ENTITY_TOO_LARGE, "too many job-ids"));
            }
            a.values
                .iter()
                .map(|v| match v {
                    Value::Integer(i) if *i > 0 => Ok(i64::from(*i)),
                    _ => Err(Status::bad_request("job-ids must be positive integers")),
                })
                .collect::<Result<_, _>>()?
        }
    };
    let stale = cx
        .cloud
        .store
        .touch_jobs(&cx.printer.id, &uuid, &ids, cx.now())
        .await?;
    let mut resp = response(status::OK, None);
    if !stale.is_empty() {
        let g = resp.group_mut(tag::OPERATION);
        g.push(Attribute::set(
            "job-ids",
            stale.iter().map(|(id, _)| int(*id as i32)).collect(),
        ));
        g.push(Attribute::set(
            "output-device-job-states",
            stale
                .iter()
                .map(|(_, s)| {
                    en(if *s == 0 {
                        job_state::ABORTED as i32
                    } else {
                        *s as i32
                    })
                })
                .collect(),
        ));
    }
    Ok(resp)
}

// ---- background work -------------------------------------------------------------------------

/// Runs until `stop`: makes jobs of silent output devices fetchable again, deletes the documents
/// of finished jobs and old events. Every instance runs it; each step is idempotent.
pub async fn maintenance(cloud: Arc<Cloud>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let watcher = tokio::spawn(super::notify::watch_events(cloud.clone(), stop.clone()));
    let silence = cloud.config.infra.device_silence_seconds;
    let tick = Duration::from_secs((silence / 4).clamp(1, 30) as u64);
    loop {
        let now = cloud.now();
        match cloud.store.release_silent_jobs(now - silence, now).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!("{n} job(s) of silent output devices are fetchable again");
                cloud.events.wake_all();
            }
            Err(e) => tracing::warn!("releasing jobs of silent output devices failed: {e}"),
        }
        match cloud.store.take_finished_blobs().await {
            Ok(keys) => {
                for k in keys {
                    if let Err(e) = cloud.blobs.delete(&k).await {
                        tracing::warn!("deleting a finished job's document failed: {e}");
                    }
                }
            }
            Err(e) => tracing::warn!("finding finished jobs' documents failed: {e}"),
        }
        if let Err(e) = cloud
            .store
            .purge_infra(
                now - super::notify::EVENT_LIFE_SECONDS,
                now - cloud.config.infra.job_history_seconds,
                now,
            )
            .await
        {
            tracing::warn!("purging old events failed: {e}");
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.wait_for(|s| *s) => {
                watcher.abort();
                return;
            }
        }
    }
}
