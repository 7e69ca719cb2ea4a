//! The cloud's IPP INFRA Infrastructure Printers (PWG 5100.18) at `POST /ipp/print/{printer}`:
//! the HTTP entry, authentication, and the operation table. The operations live beside this
//! file: [`client_ops`] for users (and the printer's device printing on a user's behalf),
//! [`proxy_ops`] for the Proxy of the device that registered the printer, [`subscriptions`]
//! for RFC 3995/3996 subscriptions with ippget, [`printer_attrs`] for the printer's attributes
//! aggregated from its output devices, [`auth`] for who may do what.
//!
//! Request bytes are framed by our bounded reader ([`crate::codec::ipp`]) before anything looks at
//! them; documents stream into the blob store with a size limit. All job state is in the database,
//! so any instance can serve any request. The protocol vocabulary (operations, status codes,
//! request checks, attribute builders) is the shared IPP core in [`crate::codec`].

mod auth;
mod client_ops;
mod gzip;
mod printer_attrs;
mod proxy_ops;
mod subscriptions;

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

use super::registry::{uris_for, PrinterUris};
use super::Cloud;
use crate::codec::ipp::{Limits, Message};
use crate::codec::ipp_attr::op_str;
use crate::codec::ipp_check;
use crate::codec::ipp_op::Operation;
use crate::codec::ipp_status::{self as status, Status};
use crate::net::ipp_endpoint::{self, DocumentBody, EndpointLimits, IppHandler, IppHead, IppReply};
use crate::net::server::Conn;
use crate::store::device_auth::RegisteredDevice;
use crate::store::registry::PrinterRow;
use crate::store::StoreError;

pub use printer_attrs::{decode_attributes, encode_attributes};

/// Operation attributes we understand; others are reported as unsupported (RFC 8011 §4.1.7).
pub(crate) const KNOWN_OPERATION_ATTRIBUTES: &[&str] = &[
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
    "my-subscriptions",
    "notify-job-id",
    "notify-sequence-numbers",
    "notify-subscription-id",
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

pub(crate) use auth::authenticate;

/// Who sent the request.
#[derive(Debug, Clone)]
pub(crate) enum Principal {
    /// A user, by (lower-cased) address, authenticated with the cloud password.
    User(String),
    /// A registered device, authenticated with its access token.
    Device(RegisteredDevice),
}

impl Principal {
    /// The subscriber identity kept with a subscription.
    fn subscriber_key(&self) -> String {
        self.to_string()
    }
}

/// For logs and subscriptions: the user's address, or `device:<id>`; never a credential.
impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::User(e) => f.write_str(e),
            Principal::Device(d) => write!(f, "device:{}", d.id),
        }
    }
}

/// Why authentication failed: answered with HTTP 401 and a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthFailure {
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
    fn device(&self) -> Option<&RegisteredDevice> {
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
pub(crate) fn claimed_identity(headers: &HeaderMap) -> Option<String> {
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
        let (outcome, principal) = handle(
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
            // The refusal itself is logged where the credentials were checked (infra::auth).
            Err(Refusal::Auth(f)) => (Reply::from(auth_refusal(f).into_response()), Some(f)),
        };
        let resp = &mut reply.msg;
        status::report_unknown_operation_attributes(resp, unknown);
        resp.version = if status::version_supported(version) {
            version
        } else {
            (1, 1)
        };
        resp.request_id = request_id;
        let challenge = challenge.map(challenge_for);
        IppReply {
            message: reply.msg,
            document: reply.document,
            challenge,
            printer: format!("/ipp/print/{}", r.printer_id),
            who: if principal == "-" {
                claimed_identity(&r.headers)
            } else {
                Some(principal)
            },
        }
    }
}

/// The IPP status of a request refused for its credentials (answered with HTTP 401 and
/// [`challenge_for`]).
pub(crate) fn auth_refusal(f: AuthFailure) -> Status {
    Status::new(
        status::NOT_AUTHENTICATED,
        match f {
            AuthFailure::Throttled => "too many failed sign-ins; try again later",
            _ => "sign in with your cloud account (or the device's access token)",
        },
    )
}

/// The HTTP 401 and its challenges for a refused authentication.
pub(crate) fn challenge_for(
    failure: AuthFailure,
) -> (StatusCode, Vec<(axum::http::HeaderName, HeaderValue)>) {
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

/// Handles one request and logs one line for it: operation, printer, outcome and who asked
/// (never a credential).
/// Handles one request for the Infrastructure Printer `printer_id`; also says who it was from
/// (a user or a device, for the endpoint's log line; never a secret).
async fn handle(
    cloud: &Cloud,
    printer_id: &str,
    headers: &HeaderMap,
    client: &str,
    req: Message,
    doc: &mut (dyn AsyncRead + Send + Unpin),
) -> (Result<Reply, Refusal>, String) {
    let mut who = String::from("-");
    let outcome = handle_request(cloud, printer_id, headers, client, req, doc, &mut who).await;
    (outcome, who)
}

#[allow(clippy::too_many_arguments)]
async fn handle_request(
    cloud: &Cloud,
    printer_id: &str,
    headers: &HeaderMap,
    client: &str,
    req: Message,
    doc: &mut (dyn AsyncRead + Send + Unpin),
    who: &mut String,
) -> Result<Reply, Refusal> {
    ipp_check::check_request(&req)?;
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
    let principal = match auth::authenticate(cloud, headers, client).await? {
        Ok(Some(p)) => p,
        Ok(None) => return Err(Refusal::Auth(AuthFailure::BadCredentials)),
        Err(f) => return Err(Refusal::Auth(f)),
    };
    *who = principal.to_string();
    let cx = Ctx {
        cloud,
        printer,
        uris,
        principal,
    };
    let code = req.code;
    let Some(op) = Operation::from_code(code) else {
        return Err(not_supported(code).into());
    };
    if is_proxy_operation(op, &req) {
        auth::require_proxy(&cx)?;
    } else {
        auth::require_client(&cx).await?;
    }
    Ok(run_operation(&cx, op, req, doc).await?)
}

fn not_supported(code: u16) -> Status {
    Status::new(
        status::OPERATION_NOT_SUPPORTED,
        format!("operation 0x{code:04x} is not supported"),
    )
}

/// Operations only the printer's Proxy may use (PWG 5100.18 §6); Get-Jobs with
/// which-jobs=fetchable is the Proxy's too.
fn is_proxy_operation(op: Operation, req: &Message) -> bool {
    use Operation::*;
    matches!(
        op,
        AcknowledgeDocument
            | AcknowledgeJob
            | FetchDocument
            | FetchJob
            | GetOutputDeviceAttributes
            | UpdateActiveJobs
            | DeregisterOutputDevice
            | UpdateDocumentStatus
            | UpdateJobStatus
            | UpdateOutputDeviceAttributes
    ) || (op == GetJobs && op_str(req, "which-jobs") == Some("fetchable"))
}

/// Declares the Infrastructure Printer's operations ONCE: the list is both the dispatch and
/// operations-supported (RFC 8011 §5.4.15, PWG 5100.18 §4.6).
macro_rules! operation_table {
    ($cx:ident, $req:ident, $doc:ident; $( $op:ident => $call:expr, )*) => {
        /// operations-supported of an Infrastructure Printer, in numeric order.
        pub const OPERATIONS: &[Operation] = &[ $( Operation::$op, )* ];

        async fn run_operation(
            $cx: &Ctx<'_>,
            op: Operation,
            $req: Message,
            $doc: &mut (dyn AsyncRead + Send + Unpin),
        ) -> Result<Reply, Status> {
            #[allow(unreachable_patterns)]
            match op {
                $( Operation::$op => $call, )*
                other => Err(not_supported(other.code())),
            }
        }
    };
}

operation_table! { cx, req, doc;
    PrintJob => client_ops::print_job(cx, req, doc).await.map(Reply::from),
    ValidateJob => client_ops::validate_job(cx, req).await.map(Reply::from),
    CreateJob => client_ops::create_job(cx, req).await.map(Reply::from),
    SendDocument => client_ops::send_document(cx, req, doc).await.map(Reply::from),
    CancelJob => client_ops::cancel_job(cx, req).await.map(Reply::from),
    GetJobAttributes => client_ops::get_job_attributes(cx, req).await.map(Reply::from),
    GetJobs => client_ops::get_jobs(cx, req).await.map(Reply::from),
    GetPrinterAttributes => client_ops::get_printer_attributes(cx, req).await.map(Reply::from),
    GetPrinterSupportedValues => {
        client_ops::get_printer_supported_values(cx, req).await.map(Reply::from)
    },
    CreatePrinterSubscriptions => {
        subscriptions::create_printer_subscriptions(cx, req).await.map(Reply::from)
    },
    CreateJobSubscriptions => {
        subscriptions::create_job_subscriptions(cx, req).await.map(Reply::from)
    },
    GetSubscriptionAttributes => {
        subscriptions::get_subscription_attributes(cx, req).await.map(Reply::from)
    },
    GetSubscriptions => subscriptions::get_subscriptions(cx, req).await.map(Reply::from),
    RenewSubscription => subscriptions::renew_subscription(cx, req).await.map(Reply::from),
    CancelSubscription => subscriptions::cancel_subscription(cx, req).await.map(Reply::from),
    GetNotifications => subscriptions::get_notifications(cx, req).await.map(Reply::from),
    GetDocumentAttributes => {
        client_ops::get_document_attributes(cx, req).await.map(Reply::from)
    },
    GetDocuments => client_ops::get_documents(cx, req).await.map(Reply::from),
    CancelMyJobs => client_ops::cancel_my_jobs(cx, req).await.map(Reply::from),
    CloseJob => client_ops::close_job(cx, req).await.map(Reply::from),
    ValidateDocument => client_ops::validate_document(cx, req).await.map(Reply::from),
    AcknowledgeDocument => proxy_ops::acknowledge_document(cx, req).await.map(Reply::from),
    AcknowledgeJob => proxy_ops::acknowledge_job(cx, req).await.map(Reply::from),
    FetchDocument => proxy_ops::fetch_document(cx, req).await,
    FetchJob => proxy_ops::fetch_job(cx, req).await.map(Reply::from),
    GetOutputDeviceAttributes => {
        proxy_ops::get_output_device_attributes(cx, req).await.map(Reply::from)
    },
    UpdateActiveJobs => proxy_ops::update_active_jobs(cx, req).await.map(Reply::from),
    DeregisterOutputDevice => {
        proxy_ops::deregister_output_device(cx, req).await.map(Reply::from)
    },
    UpdateDocumentStatus => proxy_ops::update_document_status(cx, req).await.map(Reply::from),
    UpdateJobStatus => proxy_ops::update_job_status(cx, req).await.map(Reply::from),
    UpdateOutputDeviceAttributes => {
        proxy_ops::update_output_device_attributes(cx, req).await.map(Reply::from)
    },
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

// ---- background work -------------------------------------------------------------------------

/// Runs until `stop`: makes jobs of silent output devices fetchable again, deletes the documents
/// of finished jobs and old events. Every instance runs it; each step is idempotent.
pub async fn maintenance(cloud: Arc<Cloud>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let watcher = tokio::spawn(super::notify::watch_events(cloud.clone(), stop.clone()));
    let silence = cloud.config.infra.device_silence_seconds;
    let shortest = silence.min(cloud.config.infra.incomplete_job_seconds);
    let tick = Duration::from_secs((shortest / 4).clamp(1, 30) as u64);
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
        // A Create-Job whose documents never all came (its client crashed or gave up) is
        // aborted, never printed: the client's retry asks about it and makes a new job.
        let limit = cloud.config.infra.incomplete_job_seconds;
        let message = format!("no last document arrived within {limit} s of the job's creation");
        match cloud
            .store
            .abort_incomplete_jobs(now - limit, now, &message)
            .await
        {
            Ok(printers) if printers.is_empty() => {}
            Ok(printers) => {
                tracing::info!("{} job(s) without their documents aborted", printers.len());
                for p in &printers {
                    cloud.events.wake(p);
                }
            }
            Err(e) => tracing::warn!("aborting jobs without their documents failed: {e}"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operation_table_is_in_numeric_order() {
        // The table is operations-supported as written, so its order is the attribute's.
        assert!(OPERATIONS.windows(2).all(|w| w[0].code() < w[1].code()));
        assert!(OPERATIONS.contains(&Operation::FetchJob));
    }
}
