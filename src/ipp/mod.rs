//! The IPP service: `Printer::handle(request, document, context) -> response`, one function per
//! operation (RFC 8011 §4, PWG 5100.11/5100.7/5100.14). No sockets: the net layer frames requests
//! with the bounded reader and hands over the document as a stream.

pub mod attributes;
mod jobs;
mod printer_ops;
pub mod status;
mod subscriptions;
pub mod validate;

use std::sync::{Arc, Mutex, RwLock};

use tokio::io::AsyncRead;
use tokio::sync::watch;

use crate::codec::ipp::{self, tag, Attribute, Limits, Message, Value};
use crate::model::clock::Clock;
use crate::model::printer::{Capabilities, Description};
use crate::spool::Spool;
use attributes::text;
pub use jobs::PRIVATE as PRIVATE_JOB_ATTRIBUTES;
pub use printer_ops::StorageFree;
use status::Status;

/// The rest of the HTTP request body after the attribute section: the document, if any.
pub type DocumentBody = Box<dyn AsyncRead + Send + Unpin>;

/// Facts about the request that do not come from IPP.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// `host:port` the client connected to (validated Host header), used in every URI we return.
    pub host: String,
    /// "ipp" or "ipps".
    pub scheme: &'static str,
    /// The user authenticated by HTTP, when any; otherwise requesting-user-name is taken on trust.
    pub authenticated_user: Option<String>,
    /// Whether that user is an administrator.
    pub is_admin: bool,
}

impl RequestContext {
    pub fn printer_uri(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.host, path)
    }

    pub fn http_url(&self, path: &str) -> String {
        let scheme = if self.scheme == "ipps" {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}{}", self.host, path)
    }
}

/// Settings of the IPP service that come from configuration.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub limits: Limits,
    pub max_document_bytes: u64,
    pub multiple_operation_timeout: u32,
    /// The resource path of the queue, e.g. "/ipp/print" (the default queue) or
    /// "/ipp/print/office" (a `[[queue]]`); its jobs are `<resource>/<job-id>`.
    pub resource: String,
    /// The path of the queue's web page (printer-more-info, DNS-SD adminurl): "/" for the default
    /// queue, the resource for the others (GET there shows that queue's status).
    pub web_path: String,
    /// Whether the port also speaks TLS (printer-uri-supported then lists ipps:// too).
    pub tls: bool,
    /// Printing needs a local user's credentials (`auth.print_requires_authentication`):
    /// uri-authentication-supported says "basic", and DNS-SD advertises `air=username,password`.
    pub print_requires_auth: bool,
    /// Free space where output goes, shared by the appliance's queues (printer-supply).
    pub storage_free: StorageFree,
}

/// Mutable printer state (RFC 8011 §5.4.11-12).
#[derive(Debug, Clone)]
pub struct PrinterStatus {
    pub paused: bool,
    pub accepting: bool,
    pub hold_new_jobs: bool,
    pub state_change_time: i64,
    pub config_change_time: i64,
    pub message_from_operator: String,
    pub identify_requested: bool,
    /// Reasons reported by the output device (connecting-to-device, offline-report, and a
    /// downstream printer's own, e.g. media-empty-error), already checked keywords.
    pub device_reasons: Vec<String>,
    /// The output device's printer-state-message, empty when it has nothing to say.
    pub device_message: String,
    /// The output device (a downstream IPP printer) says it is stopped: so is this queue.
    pub device_stopped: bool,
}

/// One print queue.
pub struct Printer {
    pub spool: Arc<Spool>,
    /// What the queue can do and the attributes encoded from it, replaced together when the
    /// device's capabilities change ([`Printer::set_capabilities`]).
    profile: RwLock<Arc<Profile>>,
    pub desc: RwLock<Description>,
    pub status: RwLock<PrinterStatus>,
    pub uuid: String,
    pub start_time: i64,
    pub clock: Arc<dyn Clock>,
    pub config: ServiceConfig,
    paused_tx: watch::Sender<bool>,
    /// Bumped on every printer-state-changed or printer-config-changed event, so that DNS-SD and
    /// the web page can follow the printer without polling.
    changed: watch::Sender<u64>,
    subscriptions: Mutex<subscriptions::Subscriptions>,
}

/// A queue's capabilities with the attributes that only change with them, encoded once.
pub(crate) struct Profile {
    pub caps: Arc<Capabilities>,
    pub encoded_static: attributes::EncodedAttributes,
    pub media_col_database: Vec<u8>,
}

impl Profile {
    fn new(caps: Capabilities, multiple_operation_timeout: u32) -> Profile {
        let mut media_col_database = Vec::new();
        ipp::encode_attribute(
            &attributes::media_col_database(&caps),
            &mut media_col_database,
        );
        let encoded_static = attributes::encode_each(&attributes::static_attributes(
            &caps,
            multiple_operation_timeout,
        ));
        Profile {
            caps: Arc::new(caps),
            encoded_static,
            media_col_database,
        }
    }
}

impl Printer {
    pub fn new(
        spool: Arc<Spool>,
        caps: Capabilities,
        desc: Description,
        uuid: String,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
    ) -> Arc<Printer> {
        let now = clock.now();
        let (paused_tx, _) = watch::channel(false);
        let (changed, _) = watch::channel(0);
        let profile = Profile::new(caps, config.multiple_operation_timeout);
        Arc::new(Printer {
            spool,
            profile: RwLock::new(Arc::new(profile)),
            desc: RwLock::new(desc),
            status: RwLock::new(PrinterStatus {
                paused: false,
                accepting: true,
                hold_new_jobs: false,
                state_change_time: now,
                config_change_time: now,
                message_from_operator: String::new(),
                identify_requested: false,
                device_reasons: Vec::new(),
                device_message: String::new(),
                device_stopped: false,
            }),
            uuid,
            start_time: now,
            clock,
            config,
            paused_tx,
            changed,
            subscriptions: Mutex::new(subscriptions::Subscriptions::default()),
        })
    }

    /// What the queue can do now.
    pub fn caps(&self) -> Arc<Capabilities> {
        self.profile.read().expect("printer lock").caps.clone()
    }

    pub(crate) fn profile(&self) -> Arc<Profile> {
        self.profile.read().expect("printer lock").clone()
    }

    /// Replaces what the queue can do (its device said something new): the attributes, the job
    /// defaults and printer-config-change-time follow, and printer-config-changed tells DNS-SD,
    /// the web page and subscribers (RFC 3995 §5.3.3.4). Jobs already accepted keep their options.
    pub fn set_capabilities(&self, caps: Capabilities) {
        if *self.caps() == caps {
            return;
        }
        self.spool
            .set_ticket_defaults(crate::convert::ticket::JobTicket::defaults_for(&caps));
        let profile = Profile::new(caps, self.config.multiple_operation_timeout);
        *self.profile.write().expect("printer lock") = Arc::new(profile);
        self.status
            .write()
            .expect("printer lock")
            .config_change_time = self.clock.now();
        self.post_printer_event("printer-config-changed");
    }

    /// Changes whenever the printer's state or configuration (name, location, ...) changes.
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Follows Pause-Printer/Resume-Printer; the worker watches it.
    pub fn paused_watch(&self) -> watch::Receiver<bool> {
        self.paused_tx.subscribe()
    }

    pub fn set_paused(&self, paused: bool) {
        let mut s = self.status.write().expect("printer lock");
        if s.paused != paused {
            s.paused = paused;
            s.state_change_time = self.clock.now();
        }
        drop(s);
        let _ = self.paused_tx.send(paused);
        tracing::info!("printer {}", if paused { "paused" } else { "resumed" });
    }

    /// Handles one request. Never panics on request content; every error is an IPP status.
    pub async fn handle(&self, req: Message, doc: DocumentBody, ctx: &RequestContext) -> Message {
        let version = req.version;
        let request_id = req.request_id;
        let op = req.code;
        let unknown = status::unknown_operation_attributes(&req, KNOWN_OPERATION_ATTRIBUTES);
        let mut resp = match self.dispatch(req, doc, ctx).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        };
        status::report_unknown_operation_attributes(&mut resp, unknown);
        // Answer in the client's version when we speak it (RFC 8011 §4.1.8).
        resp.version = if status::version_supported(version) {
            version
        } else {
            (1, 1)
        };
        resp.request_id = request_id;
        if resp.code >= 0x0400 {
            tracing::debug!(
                op = format!("0x{op:04x}"),
                status = format!("0x{:04x}", resp.code),
                "request refused"
            );
        }
        resp
    }

    async fn dispatch(
        &self,
        req: Message,
        doc: DocumentBody,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        validate::check_request(&req)?;
        // The target must be this queue (or one of its jobs): with several queues, a job-id sent
        // with another queue's printer-uri must not reach a job of this one.
        if let Some(u) = op_str(&req, "printer-uri") {
            if !self.answers_at(&uri_path(u)) {
                return Err(Status::not_found(format!("no printer at '{u}'")));
            }
        }
        let op = req.code;
        match op {
            0x0002 => self.print_job(req, doc, ctx).await,
            0x0004 => self.validate_job(req, ctx).await,
            0x0005 => self.create_job(req, ctx).await,
            0x0006 => self.send_document(req, doc, ctx).await,
            0x0008 => self.cancel_job(req, ctx).await,
            0x0009 => self.get_job_attributes(req, ctx).await,
            0x000A => self.get_jobs(req, ctx).await,
            0x000B => self.get_printer_attributes(req, ctx).await,
            0x000C => self.hold_job(req, ctx).await,
            0x000D => self.release_job(req, ctx).await,
            0x000E | 0x002C => self.restart_job(req, ctx).await,
            0x0010 | 0x0024 | 0x002A => self.pause_printer(req, ctx).await,
            0x0011 | 0x002B => self.resume_printer(req, ctx).await,
            0x0012 => self.cancel_jobs(req, ctx, true).await,
            0x0013 => self.set_printer_attributes(req, ctx).await,
            0x0014 => self.set_job_attributes(req, ctx).await,
            0x0015 => self.get_printer_supported_values(req, ctx).await,
            0x0016 | 0x0017 => self.create_subscriptions(req, ctx).await,
            0x0018 => self.get_subscription_attributes(req, ctx).await,
            0x0019 => self.get_subscriptions(req, ctx).await,
            0x001A => self.renew_subscription(req, ctx).await,
            0x001B => self.cancel_subscription(req, ctx).await,
            0x001C => self.get_notifications(req, ctx).await,
            0x0022 => self.set_accepting(req, ctx, true).await,
            0x0023 => self.set_accepting(req, ctx, false).await,
            0x0025 => self.hold_new_jobs(req, ctx, true).await,
            0x0026 => self.hold_new_jobs(req, ctx, false).await,
            0x0029 => self.restart_printer(req, ctx).await,
            0x002D => self.cancel_current_job(req, ctx).await,
            0x002E => self.suspend_current_job(req, ctx).await,
            0x002F => self.resume_job(req, ctx).await,
            0x0030 | 0x0031 => self.promote_job(req, ctx).await,
            0x0033 => self.cancel_document(req, ctx).await,
            0x0034 => self.get_document_attributes(req, ctx).await,
            0x0035 => self.get_documents(req, ctx).await,
            0x0037 => self.set_document_attributes(req, ctx).await,
            0x0038 => self.cancel_jobs(req, ctx, false).await,
            0x0039 => self.cancel_my_jobs(req, ctx).await,
            0x003A => self.resubmit_job(req, ctx).await,
            0x003B => self.close_job(req, ctx).await,
            0x003C => self.identify_printer(req, ctx).await,
            0x003D => self.validate_document(req, ctx).await,
            _ => Err(Status::new(
                status::OPERATION_NOT_SUPPORTED,
                format!("operation 0x{op:04x} is not supported"),
            )),
        }
    }

    /// A success response skeleton with the mandatory operation attributes (RFC 8011 §4.1.4.2).
    pub fn ok() -> Message {
        response(status::OK, None)
    }

    pub fn printer_state(&self) -> (i32, Vec<String>) {
        let s = self.status.read().expect("printer lock");
        let processing = self
            .spool
            .count_where(|j| j.status.state == crate::model::job::JobState::Processing)
            > 0;
        // RFC 8011 §5.4.11: stopped when paused here with nothing left to finish, or when the
        // device that prints our jobs has stopped (it needs someone's attention there).
        let state = if (s.paused && !processing) || s.device_stopped {
            5
        } else if processing {
            4
        } else {
            3
        };
        let mut reasons = Vec::new();
        if s.paused {
            reasons.push(
                if processing {
                    "moving-to-paused"
                } else {
                    "paused"
                }
                .to_string(),
            );
        }
        if s.hold_new_jobs {
            reasons.push("hold-new-jobs".to_string());
        }
        if s.identify_requested {
            reasons.push("identify-printer-requested".to_string());
        }
        for r in &s.device_reasons {
            if !reasons.contains(r) {
                reasons.push(r.clone());
            }
        }
        if reasons.is_empty() {
            reasons.push("none".to_string());
        }
        (state, reasons)
    }

    /// Mirrors the output device's condition into printer-state-reasons and printer-state-message
    /// (RFC 8011 §5.4.12-13); a change is a printer-state-changed event, so DNS-SD, the web page
    /// and subscribers follow it.
    pub fn set_device_condition(&self, reasons: Vec<String>, message: String, stopped: bool) {
        let mut s = self.status.write().expect("printer lock");
        if s.device_reasons == reasons && s.device_message == message && s.device_stopped == stopped
        {
            return;
        }
        s.device_reasons = reasons;
        s.device_message = message;
        s.device_stopped = stopped;
        drop(s);
        self.post_printer_event("printer-state-changed");
    }

    /// Whether the output device has stopped: a job it holds is processing-stopped (RFC 8011
    /// §5.3.7, job-state-reasons printer-stopped).
    pub fn device_stopped(&self) -> bool {
        self.status.read().expect("printer lock").device_stopped
    }

    pub fn description(&self) -> Description {
        self.desc.read().expect("printer lock").clone()
    }

    /// Whether `path` (an HTTP request path, or the path of a printer-uri) is this queue's: its
    /// resource, or one of its jobs under it (`/ipp/print/7`, `/ipp/print/office/7`).
    pub fn answers_at(&self, path: &str) -> bool {
        resource_answers_at(&self.config.resource, path)
    }
}

/// Whether `path` is `resource` or a job under it (`<resource>/<digits>`); a query is ignored.
pub fn resource_answers_at(resource: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or("");
    path == resource
        || path
            .strip_prefix(resource)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The path of a URI: `ipp://host:631/ipp/print?x` → `/ipp/print?x`; `/` when it has none.
pub fn uri_path(uri: &str) -> String {
    uri.splitn(4, '/')
        .nth(3)
        .map(|p| format!("/{p}"))
        .unwrap_or_else(|| "/".into())
}

/// Operation attributes any of our operations understands (RFC 8011 §4, PWG 5100.11, RFC 3995/3996,
/// PWG 5100.13). Anything else in the operation group is reported as unsupported.
const KNOWN_OPERATION_ATTRIBUTES: &[&str] = &[
    "attributes-charset",
    "attributes-natural-language",
    "compression",
    "document-format",
    "document-name",
    "document-natural-language",
    "document-number",
    "first-index",
    "identify-actions",
    "ipp-attribute-fidelity",
    "job-hold-until",
    "job-id",
    "job-id-after",
    "job-ids",
    "job-impressions",
    "job-k-octets",
    "job-media-sheets",
    "job-name",
    "job-uri",
    "last-document",
    "limit",
    "message",
    "my-jobs",
    "my-subscriptions",
    "notify-job-id",
    "notify-sequence-numbers",
    "notify-subscription-id",
    "notify-subscription-ids",
    "notify-wait",
    "printer-uri",
    "requested-attributes",
    "requesting-user-name",
    "requesting-user-uri",
    "which-jobs",
];

/// A response with attributes-charset and attributes-natural-language, plus status-message.
pub fn response(code: u16, message: Option<&str>) -> Message {
    let mut m = Message::new((2, 0), code, 0);
    let g = m.group_mut(tag::OPERATION);
    g.push(Attribute::new(
        "attributes-charset",
        Value::Charset("utf-8".into()),
    ));
    g.push(Attribute::new(
        "attributes-natural-language",
        Value::NaturalLanguage("en".into()),
    ));
    if let Some(msg) = message {
        g.push(Attribute::new("status-message", text(msg)));
    }
    m
}

/// Operation attribute lookup helpers over the request's operation group.
pub(crate) fn op_attr<'a>(req: &'a Message, name: &str) -> Option<&'a Attribute> {
    req.group(tag::OPERATION).and_then(|g| g.get(name))
}

pub(crate) fn op_str<'a>(req: &'a Message, name: &str) -> Option<&'a str> {
    op_attr(req, name)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
}

pub(crate) fn op_int(req: &Message, name: &str) -> Option<i32> {
    op_attr(req, name)
        .and_then(|a| a.first())
        .and_then(Value::as_int)
}

pub(crate) fn op_bool(req: &Message, name: &str) -> Option<bool> {
    op_attr(req, name)
        .and_then(|a| a.first())
        .and_then(Value::as_bool)
}

/// requested-attributes as a list of keywords; `None` when absent.
pub(crate) fn requested(req: &Message) -> Option<Vec<String>> {
    op_attr(req, "requested-attributes").map(|a| {
        a.values
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_answer_at_their_resource_and_their_jobs() {
        assert!(resource_answers_at("/ipp/print", "/ipp/print"));
        assert!(resource_answers_at("/ipp/print", "/ipp/print?x=1"));
        assert!(resource_answers_at("/ipp/print", "/ipp/print/12"));
        assert!(!resource_answers_at("/ipp/print", "/ipp/print/office"));
        assert!(!resource_answers_at("/ipp/print", "/ipp/print/"));
        assert!(!resource_answers_at("/ipp/print", "/ipp/printer"));
        assert!(!resource_answers_at("/ipp/print", "/ipp/print/+1"));
        assert!(resource_answers_at(
            "/ipp/print/office",
            "/ipp/print/office/3"
        ));
        assert!(!resource_answers_at("/ipp/print/office", "/ipp/print"));
        assert!(!resource_answers_at(
            "/ipp/print/office",
            "/ipp/print/office/x/3"
        ));
        assert_eq!(uri_path("ipp://h:631/ipp/print/a"), "/ipp/print/a");
        assert_eq!(uri_path("ipp://h:631"), "/");
    }
}
