//! The follow-me queue's IPP endpoint, `POST /ipp/follow-me` (RFC 8011): a user's print client
//! (the OS print dialog, ipptool, CUPS) prints here with the cloud account's credentials (Basic
//! address + password, or Bearer personal access token / session token, as on the
//! Infrastructure Printers). Jobs are held (`pending-held`, `job-hold-until-specified`) until
//! released at a printer; the queue itself never prints, and no Proxy fetches from it.
//!
//! Operations: Print-Job, Validate-Job, Create-Job, Send-Document, Cancel-Job,
//! Get-Job-Attributes, Get-Jobs, Get-Printer-Attributes. Requests are framed by the shared IPP
//! endpoint; documents stream into the blob store with `[infra] max_document_bytes`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Extension, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use tokio::io::AsyncRead;

use super::FOLLOW_ME_PATH;
use crate::cloud::blob::BlobError;
use crate::cloud::infra::{
    auth_refusal, authenticate, challenge_for, claimed_identity, decode_attributes,
    encode_attributes, AuthFailure, Principal, KNOWN_OPERATION_ATTRIBUTES,
};
use crate::cloud::registry::uris_for;
use crate::cloud::Cloud;
use crate::codec::ipp::{tag, Attribute, Group, Limits, Message, Value};
use crate::codec::ipp_attr::{
    en, int, kw, mime, name, op_attr, op_bool, op_str, requested, required_positive_int, text, uri,
    JobAttributes, PrinterAttributeSelection, JOB_TEMPLATE,
};
use crate::codec::ipp_check;
use crate::codec::ipp_op::Operation;
use crate::codec::ipp_status::{self as status, response, with_unsupported, Status};
use crate::net::ipp_endpoint::{self, DocumentBody, EndpointLimits, IppHandler, IppHead, IppReply};
use crate::net::server::Conn;
use crate::store::follow_me::{HeldJobRow, HeldStatus, NewHeldJob};
use crate::store::infra::NewDocument;
use crate::store::StoreError;

/// Document formats the queue takes: what printbridge's appliances print (the release target's
/// device converts), and octet-stream for clients that let the printer sniff.
const FORMATS: &[&str] = &[
    "application/octet-stream",
    "application/pdf",
    "application/postscript",
    "image/jpeg",
    "image/pwg-raster",
    "image/urf",
    "text/plain",
];

/// The operations of the follow-me queue, in numeric order (operations-supported).
const OPERATIONS: &[Operation] = &[
    Operation::PrintJob,
    Operation::ValidateJob,
    Operation::CreateJob,
    Operation::SendDocument,
    Operation::CancelJob,
    Operation::GetJobAttributes,
    Operation::GetJobs,
    Operation::GetPrinterAttributes,
];

/// Jobs one Get-Jobs lists.
const GET_JOBS_LIMIT: i64 = 500;

pub struct FollowMeQueue {
    pub cloud: Arc<Cloud>,
}

pub struct Admitted {
    headers: HeaderMap,
    client: String,
}

/// POST /ipp/follow-me
pub async fn post(
    State(cloud): State<Arc<Cloud>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Extension(conn): Extension<Conn>,
    req: Request<Body>,
) -> Response {
    ipp_endpoint::respond(&FollowMeQueue { cloud }, req, &conn, client).await
}

/// The queue's URIs: printer-uri-supported (ipp:// or ipps:// like the Infrastructure
/// Printers', with the same uri-security-supported).
pub fn queue_uris(cloud: &Cloud) -> Vec<(String, &'static str)> {
    let u = uris_for(cloud, "x");
    let fix = |s: &str| format!("{}{FOLLOW_ME_PATH}", s.trim_end_matches("/ipp/print/x"));
    let mut v = vec![(fix(&u.ipp), u.security)];
    if let Some(s) = &u.secure {
        v.push((fix(s), "tls"));
    }
    v
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

impl IppHandler for FollowMeQueue {
    type Admitted = Admitted;

    fn limits(&self) -> EndpointLimits {
        EndpointLimits {
            limits: Limits::default(),
            section_timeout: Duration::from_secs(self.cloud.config.server.header_timeout_seconds),
            document_idle_timeout: Duration::from_secs(60),
        }
    }

    async fn admit(&self, head: IppHead<'_>) -> Result<Admitted, Response> {
        Ok(Admitted {
            headers: head.headers.clone(),
            client: head.client.ip().to_string(),
        })
    }

    async fn handle(&self, msg: Message, mut doc: DocumentBody, a: Admitted) -> IppReply {
        let version = msg.version;
        let request_id = msg.request_id;
        let unknown = status::unknown_operation_attributes(&msg, KNOWN_OPERATION_ATTRIBUTES);
        let mut who = None;
        let outcome = handle(&self.cloud, &a, msg, &mut doc, &mut who).await;
        let (mut message, challenge) = match outcome {
            Ok(m) => (m, None),
            Err(Refusal::Status(s)) => (s.into_response(), None),
            Err(Refusal::Auth(f)) => (auth_refusal(f).into_response(), Some(challenge_for(f))),
        };
        status::report_unknown_operation_attributes(&mut message, unknown);
        message.version = if status::version_supported(version) {
            version
        } else {
            (1, 1)
        };
        message.request_id = request_id;
        IppReply {
            message,
            document: None,
            challenge,
            printer: FOLLOW_ME_PATH.to_string(),
            who: who.or_else(|| claimed_identity(&a.headers)),
        }
    }
}

/// Everything an operation needs: the service and the account whose queue it is.
struct Cx<'a> {
    cloud: &'a Cloud,
    account: String,
    base: String,
}

impl Cx<'_> {
    fn job_uri(&self, id: i64) -> String {
        format!("{}/{id}", self.base)
    }
}

async fn handle(
    cloud: &Cloud,
    a: &Admitted,
    req: Message,
    doc: &mut (dyn AsyncRead + Send + Unpin),
    who: &mut Option<String>,
) -> Result<Message, Refusal> {
    ipp_check::check_request(&req)?;
    check_target(&req)?;
    let account = match authenticate(cloud, &a.headers, &a.client).await? {
        Ok(Some(Principal::User(email))) => email,
        // A device has no follow-me queue: its credentials do not sign anyone in here.
        Ok(Some(Principal::Device(_))) | Ok(None) => {
            return Err(Refusal::Auth(AuthFailure::BadCredentials))
        }
        Err(f) => return Err(Refusal::Auth(f)),
    };
    *who = Some(account.clone());
    let base = queue_uris(cloud)
        .into_iter()
        .next()
        .map(|(u, _)| u)
        .unwrap_or_default();
    let cx = Cx {
        cloud,
        account,
        base,
    };
    let Some(op) = Operation::from_code(req.code) else {
        return Err(not_supported(req.code).into());
    };
    let m = match op {
        Operation::PrintJob => print_job(&cx, req, doc).await?,
        Operation::ValidateJob => {
            let c = creation_checks(&req)?;
            with_unsupported(response(status::OK, None), c.unsupported)
        }
        Operation::CreateJob => create_job(&cx, req).await?,
        Operation::SendDocument => send_document(&cx, req, doc).await?,
        Operation::CancelJob => cancel_job(&cx, req).await?,
        Operation::GetJobAttributes => get_job_attributes(&cx, req).await?,
        Operation::GetJobs => get_jobs(&cx, req).await?,
        Operation::GetPrinterAttributes => get_printer_attributes(&cx, req).await?,
        other => return Err(not_supported(other.code()).into()),
    };
    Ok(m)
}

fn not_supported(code: u16) -> Status {
    Status::new(
        status::OPERATION_NOT_SUPPORTED,
        format!("operation 0x{code:04x} is not supported by the follow-me queue"),
    )
}

/// printer-uri (or job-uri) must name the follow-me queue (RFC 8011 §4.1.5).
fn check_target(req: &Message) -> Result<(), Status> {
    let Some(u) = op_str(req, "printer-uri").or_else(|| op_str(req, "job-uri")) else {
        return Err(Status::bad_request("missing printer-uri"));
    };
    let path = u.splitn(4, '/').nth(3).unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    let path = format!("/{path}");
    let job_suffix = path
        .rsplit_once('/')
        .filter(|(_, tail)| tail.parse::<u32>().is_ok())
        .map(|(head, _)| head);
    if path.ends_with(FOLLOW_ME_PATH) || job_suffix.is_some_and(|h| h.ends_with(FOLLOW_ME_PATH)) {
        Ok(())
    } else {
        Err(Status::not_found(format!("no printer at '{u}'")))
    }
}

struct Creation {
    accepted: Vec<Attribute>,
    unsupported: Vec<Attribute>,
    format: String,
    compression: String,
    job_name: String,
}

/// The job creation checks (RFC 8011 §4.2.1.2): format and compression; the job template
/// attributes are kept as sent (the release target's device checks them against what it can
/// do), those that are not job template attributes are reported unsupported.
fn creation_checks(req: &Message) -> Result<Creation, Status> {
    let format = check_format(op_attr(req, "document-format"))?;
    let compression =
        ipp_check::check_compression(op_attr(req, "compression").and_then(|a| a.first()))?;
    let fidelity = op_bool(req, "ipp-attribute-fidelity").unwrap_or(false);
    let mut accepted = Vec::new();
    let mut unsupported = Vec::new();
    if let Some(g) = req.group(tag::JOB) {
        for a in &g.attributes {
            if JOB_TEMPLATE.contains(&a.name.as_str()) && !a.values.is_empty() {
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
        unsupported,
        format,
        compression,
        job_name: job_name
            .chars()
            .filter(|c| !c.is_control())
            .take(255)
            .collect(),
    })
}

fn check_format(format: Option<&Attribute>) -> Result<String, Status> {
    let value = match format.map(|a| a.values.as_slice()) {
        None => None,
        Some([v]) => Some(v),
        Some(_) => {
            return Err(Status::bad_request(
                "document-format must be one mimeMediaType",
            ))
        }
    };
    ipp_check::check_format(value, |f| FORMATS.contains(&f))
}

async fn store_document(
    cx: &Cx<'_>,
    req: &Message,
    doc: &mut (dyn AsyncRead + Send + Unpin),
    format: &str,
    compression: &str,
) -> Result<NewDocument, Status> {
    let max = cx.cloud.config.infra.max_document_bytes;
    let blob = match cx.cloud.blobs.put(doc, max).await {
        Ok(b) => b,
        Err(BlobError::TooLarge(n)) => {
            return Err(Status::new(
                status::REQUEST_ENTITY_TOO_LARGE,
                format!("document larger than {n} bytes"),
            ))
        }
        Err(BlobError::Source(e)) => {
            tracing::info!("follow-me document upload failed: {e}");
            return Err(Status::bad_request("the document could not be received"));
        }
        Err(e) => {
            tracing::error!("follow-me queue: storing a document failed: {e}");
            return Err(Status::internal(
                "the service could not complete the request; try again",
            ));
        }
    };
    Ok(NewDocument {
        format: format.to_string(),
        compression: compression.to_string(),
        name: op_str(req, "document-name")
            .unwrap_or("")
            .chars()
            .take(255)
            .collect(),
        blob: blob.key,
        size: blob.size.min(i64::MAX as u64) as i64,
    })
}

/// job-state and job-state-reasons of a follow-me job (RFC 8011 §5.3.7-§5.3.8): held jobs are
/// pending-held with job-hold-until-specified; a released one is completed on this queue (it
/// prints on the printer it was released to), a deleted or expired one canceled.
fn job_state(j: &HeldJobRow) -> (i32, &'static [&'static str]) {
    match j.status {
        HeldStatus::Receiving => (4, &["job-incoming", "job-hold-until-specified"]),
        HeldStatus::Held => (4, &["job-hold-until-specified"]),
        HeldStatus::Released => (9, &["job-completed"]),
        HeldStatus::Deleted => (7, &["job-canceled-by-user"]),
        HeldStatus::Expired => (7, &["job-canceled-at-device"]),
    }
}

fn job_message(cx: &Cx<'_>, j: &HeldJobRow) -> String {
    match j.status {
        HeldStatus::Receiving => "Receiving documents".into(),
        HeldStatus::Held => "Held: release it at a printer".into(),
        HeldStatus::Released => "Released to a printer".into(),
        HeldStatus::Deleted => "Deleted unprinted".into(),
        HeldStatus::Expired => format!(
            "Not released within {}; deleted unprinted",
            super::hold_text(cx.cloud.config.infra.held_job_seconds)
        ),
    }
}

fn creation_answer(cx: &Cx<'_>, j: &HeldJobRow, unsupported: Vec<Attribute>) -> Message {
    let (state, reasons) = job_state(j);
    let mut resp = response(status::OK, None);
    let g = resp.group_mut(tag::JOB);
    g.push(Attribute::new("job-id", int(j.job_id as i32)));
    g.push(Attribute::new("job-uri", uri(&cx.job_uri(j.job_id))));
    g.push(Attribute::new("job-state", en(state)));
    g.push(Attribute::set(
        "job-state-reasons",
        reasons.iter().map(|r| kw(r)).collect(),
    ));
    g.push(Attribute::new(
        "job-state-message",
        text(&job_message(cx, j)),
    ));
    with_unsupported(resp, unsupported)
}

async fn created(cx: &Cx<'_>, id: i64, unsupported: Vec<Attribute>) -> Result<Message, Status> {
    let j = cx
        .cloud
        .store
        .held_job(&cx.account, id)
        .await?
        .ok_or_else(|| Status::internal("the job vanished; try again"))?;
    Ok(creation_answer(cx, &j, unsupported))
}

async fn print_job(
    cx: &Cx<'_>,
    req: Message,
    doc: &mut (dyn AsyncRead + Send + Unpin),
) -> Result<Message, Status> {
    let c = creation_checks(&req)?;
    let document = store_document(cx, &req, doc, &c.format, &c.compression).await?;
    let id = cx
        .cloud
        .store
        .create_held_job(
            &NewHeldJob {
                account: cx.account.clone(),
                uuid: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
                name: c.job_name,
                attributes: encode_attributes(tag::JOB, &c.accepted),
                document: Some(document),
            },
            cx.cloud.now(),
        )
        .await?;
    tracing::info!(account = %cx.account, job = id, "follow-me job held");
    created(cx, id, c.unsupported).await
}

async fn create_job(cx: &Cx<'_>, req: Message) -> Result<Message, Status> {
    let c = creation_checks(&req)?;
    let id = cx
        .cloud
        .store
        .create_held_job(
            &NewHeldJob {
                account: cx.account.clone(),
                uuid: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
                name: c.job_name,
                attributes: encode_attributes(tag::JOB, &c.accepted),
                document: None,
            },
            cx.cloud.now(),
        )
        .await?;
    created(cx, id, c.unsupported).await
}

/// The job named by job-id (or job-uri), of this account only: another account's job is
/// "not found" (it is never revealed).
async fn target_job(cx: &Cx<'_>, req: &Message) -> Result<HeldJobRow, Status> {
    let id = if let Some(u) = op_str(req, "job-uri") {
        u.rsplit('/')
            .next()
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| Status::not_found(format!("job-uri '{u}' does not name a job")))?
    } else {
        i64::from(required_positive_int(req, "job-id")?)
    };
    cx.cloud
        .store
        .held_job(&cx.account, id)
        .await?
        .ok_or_else(|| Status::not_found(format!("job {id} does not exist")))
}

async fn send_document(
    cx: &Cx<'_>,
    req: Message,
    doc: &mut (dyn AsyncRead + Send + Unpin),
) -> Result<Message, Status> {
    let job = target_job(cx, &req).await?;
    let last = match op_attr(&req, "last-document").map(|a| a.values.as_slice()) {
        Some([Value::Boolean(b)]) => *b,
        Some(_) => return Err(Status::bad_request("last-document must be one boolean")),
        None => {
            return Err(Status::bad_request(
                "missing last-document operation attribute",
            ))
        }
    };
    if job.status != HeldStatus::Receiving {
        return Err(Status::not_possible("the job takes no more documents"));
    }
    let format = check_format(op_attr(&req, "document-format"))?;
    let compression =
        ipp_check::check_compression(op_attr(&req, "compression").and_then(|a| a.first()))?;
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
        .add_held_document(
            &cx.account,
            job.job_id,
            document.as_ref(),
            last,
            cx.cloud.now(),
        )
        .await?;
    if !added {
        if let Some(d) = &document {
            let _ = cx.cloud.blobs.delete(&d.blob).await;
        }
        return Err(Status::not_possible("the job takes no more documents"));
    }
    if last {
        tracing::info!(account = %cx.account, job = job.job_id, "follow-me job held");
    }
    created(cx, job.job_id, Vec::new()).await
}

async fn cancel_job(cx: &Cx<'_>, req: Message) -> Result<Message, Status> {
    let job = target_job(cx, &req).await?;
    match super::delete(cx.cloud, &cx.account, job.job_id).await {
        Ok(()) => Ok(response(status::OK, None)),
        Err(super::FollowMeError::NotHeld(why)) => Err(Status::not_possible(format!(
            "the job cannot be canceled: it is {why}"
        ))),
        Err(super::FollowMeError::Store(e)) => Err(e.into()),
        Err(_) => Err(Status::not_found("no such job")),
    }
}

/// Job attributes of `j` as asked for (RFC 8011 §4.3.4); the requester always owns the job.
fn job_attributes(cx: &Cx<'_>, j: &HeldJobRow, wanted: Option<&[String]>) -> Vec<Attribute> {
    let (state, reasons) = job_state(j);
    let mut a = JobAttributes::new(wanted, &["job-id", "job-uri"], true);
    a.put("job-id", int(j.job_id as i32));
    a.put("job-uri", uri(&cx.job_uri(j.job_id)));
    a.put("job-uuid", uri(&j.uuid));
    a.put("job-printer-uri", uri(&cx.base));
    a.put("job-name", name(&j.name));
    a.put("job-originating-user-name", name(&j.account));
    a.put("job-state", en(state));
    a.put_set("job-state-reasons", reasons.iter().map(|r| kw(r)).collect());
    a.put("job-state-message", text(&job_message(cx, j)));
    a.put(
        "job-k-octets",
        int(((j.size + 1023) / 1024).min(i32::MAX as i64) as i32),
    );
    a.put(
        "time-at-creation",
        int(j.created_at.clamp(0, i32::MAX as i64) as i32),
    );
    a.templates(&decode_attributes(&j.attributes));
    a.finish()
}

async fn get_job_attributes(cx: &Cx<'_>, req: Message) -> Result<Message, Status> {
    let job = target_job(cx, &req).await?;
    let wanted = requested(&req).or_else(|| Some(vec!["all".to_string()]));
    let mut resp = response(status::OK, None);
    let g = resp.group_mut(tag::JOB);
    for a in job_attributes(cx, &job, wanted.as_deref()) {
        g.push(a);
    }
    Ok(resp)
}

async fn get_jobs(cx: &Cx<'_>, req: Message) -> Result<Message, Status> {
    let completed = match op_str(&req, "which-jobs") {
        None | Some("not-completed") => false,
        Some("completed") | Some("all") => true,
        Some(other) => {
            return Err(Status::unsupported(
                status::ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                format!("which-jobs '{other}' is not supported"),
                Attribute::new("which-jobs", kw(other)),
            ))
        }
    };
    let which = op_str(&req, "which-jobs").unwrap_or("not-completed");
    let jobs = cx
        .cloud
        .store
        .held_jobs(&cx.account, false, GET_JOBS_LIMIT)
        .await?;
    let wanted = requested(&req);
    let mut resp = response(status::OK, None);
    for j in jobs.iter().filter(|j| match which {
        "all" => true,
        _ if completed => !j.status.is_active(),
        _ => j.status.is_active(),
    }) {
        resp.groups.push(Group {
            tag: tag::JOB,
            attributes: job_attributes(cx, j, wanted.as_deref()),
        });
    }
    Ok(resp)
}

async fn get_printer_attributes(cx: &Cx<'_>, req: Message) -> Result<Message, Status> {
    let selection = PrinterAttributeSelection::new(&req);
    let held = cx
        .cloud
        .store
        .held_jobs(&cx.account, true, GET_JOBS_LIMIT)
        .await?
        .len();
    let uris = queue_uris(cx.cloud);
    let kws = |l: &[&str]| l.iter().map(|s| kw(s)).collect::<Vec<Value>>();
    let attrs = vec![
        Attribute::set(
            "printer-uri-supported",
            uris.iter().map(|(u, _)| uri(u)).collect(),
        ),
        Attribute::set(
            "uri-security-supported",
            uris.iter().map(|(_, s)| kw(s)).collect(),
        ),
        Attribute::set(
            "uri-authentication-supported",
            uris.iter().map(|_| kw("basic")).collect(),
        ),
        Attribute::new("printer-name", name("follow-me")),
        Attribute::new(
            "printer-info",
            text(
                "Your follow-me queue: jobs wait in the cloud until you release them at a printer",
            ),
        ),
        Attribute::new("printer-location", text("")),
        Attribute::new(
            "printer-make-and-model",
            text("printbridge follow-me queue"),
        ),
        Attribute::new("printer-state", en(3)),
        Attribute::new("printer-state-reasons", kw("none")),
        Attribute::new("printer-is-accepting-jobs", Value::Boolean(true)),
        Attribute::new("queued-job-count", int(held.min(i32::MAX as usize) as i32)),
        Attribute::set(
            "operations-supported",
            OPERATIONS.iter().map(|o| en(i32::from(o.code()))).collect(),
        ),
        Attribute::new("charset-configured", Value::Charset("utf-8".into())),
        Attribute::new("charset-supported", Value::Charset("utf-8".into())),
        Attribute::new(
            "natural-language-configured",
            Value::NaturalLanguage("en".into()),
        ),
        Attribute::new(
            "generated-natural-language-supported",
            Value::NaturalLanguage("en".into()),
        ),
        Attribute::set("ipp-versions-supported", kws(&["1.1", "2.0"])),
        Attribute::new("document-format-default", mime("application/octet-stream")),
        Attribute::set(
            "document-format-supported",
            FORMATS.iter().map(|f| mime(f)).collect(),
        ),
        Attribute::set("compression-supported", kws(&["none", "gzip", "deflate"])),
        Attribute::new("pdl-override-supported", kw("attempted")),
        Attribute::new("multiple-document-jobs-supported", Value::Boolean(true)),
        Attribute::new("job-hold-until-default", kw("indefinite")),
        Attribute::set("job-hold-until-supported", kws(&["indefinite"])),
        Attribute::new("copies-default", int(1)),
        Attribute::new("copies-supported", Value::Range(1, 999)),
        Attribute::set(
            "job-creation-attributes-supported",
            JOB_TEMPLATE.iter().map(|s| kw(s)).collect(),
        ),
    ];
    let mut resp = response(status::OK, None);
    let g = resp.group_mut(tag::PRINTER);
    for a in attrs {
        if selection.selects(&a.name) {
            g.push(a);
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req_to(u: &str) -> Message {
        let mut m = Message::new((2, 0), 0x0002, 1);
        m.group_mut(tag::OPERATION)
            .push(Attribute::new("printer-uri", uri(u)));
        m
    }

    #[test]
    fn only_the_follow_me_uri_is_a_target() {
        assert!(check_target(&req_to("ipps://c.example:443/ipp/follow-me")).is_ok());
        assert!(check_target(&req_to("ipp://c:80/base/ipp/follow-me/12")).is_ok());
        assert!(check_target(&req_to("ipp://c:80/ipp/print/abc")).is_err());
        assert!(check_target(&req_to("ipp://c:80/ipp/follow-me-not")).is_err());
        assert!(check_target(&Message::new((2, 0), 0x0002, 1)).is_err());
    }

    #[test]
    fn formats_are_checked() {
        assert_eq!(check_format(None).unwrap(), "application/octet-stream");
        let pdf = Attribute::new("document-format", mime("application/pdf"));
        assert_eq!(check_format(Some(&pdf)).unwrap(), "application/pdf");
        let odd = Attribute::new("document-format", mime("application/x-evil"));
        assert!(check_format(Some(&odd)).is_err());
    }
}
