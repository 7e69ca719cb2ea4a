//! The IPP service: `Printer::handle(request, document, context) -> response`, one function per
//! operation (RFC 8011 §4, PWG 5100.11/5100.7/5100.14). No sockets: the net layer frames requests
//! with the bounded reader and hands over the document as a stream.

pub mod attributes;
mod jobs;
mod printer_ops;
mod spool_status;
mod subscriptions;
pub mod validate;

use std::sync::{Arc, Mutex, RwLock};

use tokio::io::AsyncRead;
use tokio::sync::watch;

use crate::codec::ipp::{self, Attribute, Limits, Message, Value};
use crate::codec::ipp_attr::{en, op_str};
use crate::codec::ipp_check;
use crate::codec::ipp_op::Operation;
use crate::codec::ipp_status::{self as status, response, Status};
use crate::model::clock::Clock;
use crate::model::printer::{Capabilities, Description};
use crate::spool::Spool;
pub use printer_ops::StorageFree;

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
    /// Who may submit jobs, for a queue that prints elsewhere on its users' behalf (a `cloud:`
    /// queue); `None`: anyone the queue's own rules let print.
    pub gate: Option<Arc<dyn SubmitGate>>,
}

pub type GateFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Why a [`SubmitGate`] could not check credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    /// The service that knows the accounts cannot be asked now.
    #[error("the cloud cannot be asked now: {0}")]
    Unavailable(String),
}

/// The admission of a queue whose jobs print elsewhere on their owner's behalf (a `cloud:`
/// queue, issue 13; implemented by crate::bridge::outbound). Asked at Print-Job, Create-Job and
/// Validate-Job.
pub trait SubmitGate: Send + Sync {
    /// Whether `owner` (requesting-user-name, or the authenticated user) may print here:
    /// `Err(message)` refuses with client-error-not-authorized and that message.
    fn admit<'a>(&'a self, owner: &'a str) -> GateFuture<'a, Result<(), String>>;
    /// Checks a person's own account credentials (HTTP Basic, over TLS) with the service that
    /// holds them: `Ok(Some(identity))` when right, `Ok(None)` when wrong. Nothing is kept.
    fn verify<'a>(
        &'a self,
        user: &'a str,
        password: &'a str,
    ) -> GateFuture<'a, Result<Option<String>, GateError>>;
    /// The path of this appliance's page where a refused person can ask for access; the
    /// refusal names it (the gate's owner knows it, the printer does not).
    fn access_page(&self) -> &'static str;
}

impl std::fmt::Debug for dyn SubmitGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubmitGate")
    }
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
    /// Until when (Unix seconds) an identification asked for from elsewhere (the cloud's control
    /// channel) is shown: identify-printer-requested and the web page's banner, for a while.
    pub identify_until: Option<i64>,
    /// Who asked for that identification, for the web page.
    pub identify_note: String,
    /// Reasons reported by the output device (connecting-to-device, offline-report, and a
    /// downstream printer's own, e.g. media-empty-error), already checked keywords.
    pub device_reasons: Vec<String>,
    /// The output device's printer-state-message, empty when it has nothing to say.
    pub device_message: String,
    /// The output device (a downstream IPP printer) says it is stopped: so is this queue.
    pub device_stopped: bool,
    /// Power saving (docs/groups.md "Appliance side"): why, while the queue's cloud Proxy asks
    /// for no jobs; `None` when awake.
    pub power_saving: Option<String>,
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
    /// Follows [`PrinterStatus::power_saving`]: the cloud Proxy sleeps while it is true.
    power_tx: watch::Sender<bool>,
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
        let (power_tx, _) = watch::channel(false);
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
                identify_until: None,
                identify_note: String::new(),
                device_reasons: Vec::new(),
                device_message: String::new(),
                device_stopped: false,
                power_saving: None,
            }),
            uuid,
            start_time: now,
            clock,
            config,
            paused_tx,
            power_tx,
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

    /// Replaces printer-name, -info, -location, -organization(al-unit) and -geo-location (the
    /// configuration was read again on SIGHUP): printer-config-change-time follows and
    /// printer-config-changed tells DNS-SD, the web page and subscribers. Returns whether
    /// anything changed.
    pub fn set_description(&self, desc: Description) -> bool {
        if self.description() == desc {
            return false;
        }
        *self.desc.write().expect("printer lock") = desc;
        self.status
            .write()
            .expect("printer lock")
            .config_change_time = self.clock.now();
        self.post_printer_event("printer-config-changed");
        true
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

    /// Enters power saving (`Some(why)`) or wakes (`None`). While power saving, the queue's cloud
    /// Proxy asks the cloud for no jobs (docs/groups.md "Appliance side"); the queue still takes
    /// local jobs, and printer-state-message says so. Returns whether anything changed.
    pub fn set_power_saving(&self, why: Option<&str>) -> bool {
        let why: Option<String> =
            why.map(|w| w.chars().filter(|c| !c.is_control()).take(200).collect());
        {
            let mut s = self.status.write().expect("printer lock");
            if s.power_saving == why {
                return false;
            }
            s.power_saving = why.clone();
        }
        self.power_tx.send_replace(why.is_some());
        match &why {
            Some(w) => tracing::info!("power saving: {w}"),
            None => tracing::info!("awake: power saving ended"),
        }
        self.post_printer_event("printer-state-changed");
        true
    }

    /// Why the queue is power saving, or `None` when it is awake.
    pub fn power_saving(&self) -> Option<String> {
        self.status
            .read()
            .expect("printer lock")
            .power_saving
            .clone()
    }

    /// Follows power saving (true while on).
    pub fn power_saving_watch(&self) -> watch::Receiver<bool> {
        self.power_tx.subscribe()
    }

    /// printer-state-message beyond the state itself: that the queue is power saving, and what
    /// the output device said; `None` when there is nothing to say.
    pub fn state_message(&self) -> Option<String> {
        state_message_of(&self.status.read().expect("printer lock"))
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
        status::finish_response(&mut resp, version, request_id);
        if status::is_error(resp.code) {
            tracing::debug!(
                op = crate::codec::ipp_op::describe(op),
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
        ipp_check::check_request(&req)?;
        // The target must be this queue (or one of its jobs): with several queues, a job-id sent
        // with another queue's printer-uri must not reach a job of this one.
        if let Some(u) = op_str(&req, "printer-uri") {
            if !self.answers_at(&uri_path(u)) {
                return Err(Status::not_found(format!("no printer at '{u}'")));
            }
        }
        let code = req.code;
        match Operation::from_code(code) {
            Some(op) => self.run_operation(op, req, doc, ctx).await,
            None => Err(not_supported(code)),
        }
    }

    /// A success response skeleton with the mandatory operation attributes (RFC 8011 §4.1.4.2).
    pub fn ok() -> Message {
        response(status::OK, None)
    }

    /// Shows identify-printer-requested (and the web page's banner with `note`) for `seconds`:
    /// an identification asked for by the cloud (docs/bridge.md, the control channel).
    pub fn identify_for(&self, seconds: i64, note: &str) {
        {
            let mut s = self.status.write().expect("printer lock");
            s.identify_until = Some(self.clock.now() + seconds);
            s.identify_note = note.chars().filter(|c| !c.is_control()).take(200).collect();
        }
        self.post_printer_event("printer-state-changed");
    }

    /// The note of an identification shown now, if any (see [`Printer::identify_for`]).
    pub fn identify_banner(&self) -> Option<String> {
        let s = self.status.read().expect("printer lock");
        s.identify_until
            .is_some_and(|t| t > self.clock.now())
            .then(|| s.identify_note.clone())
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
        if s.identify_requested || s.identify_until.is_some_and(|t| t > self.clock.now()) {
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

    /// Whether the output device reports `connecting-to-device` or `offline-report`: jobs wait
    /// for it to answer.
    pub fn device_connecting(&self) -> bool {
        self.status
            .read()
            .expect("printer lock")
            .device_reasons
            .iter()
            .any(|r| r == "connecting-to-device" || r == "offline-report")
    }

    /// The admission of a queue that prints elsewhere on its users' behalf, if it is one.
    pub fn gate(&self) -> Option<&Arc<dyn SubmitGate>> {
        self.config.gate.as_ref()
    }

    /// The printer attributes an INFRA Proxy tells the cloud of this queue as its output device
    /// (Update-Output-Device-Attributes, PWG 5100.18 §6.11): what the queue can do, as its own
    /// Get-Printer-Attributes answers, and how it is. Nothing that names this host (URIs, icons):
    /// the Infrastructure Printer answers those for itself.
    pub fn output_device_attributes(&self) -> Vec<Attribute> {
        let caps = self.caps();
        let mut out = attributes::static_attributes(&caps, self.config.multiple_operation_timeout);
        out.push(attributes::media_col_database(&caps));
        let (state, reasons) = self.printer_state();
        let message = self.state_message();
        let accepting = self.status.read().expect("printer lock").accepting;
        out.push(Attribute::new("printer-state", Value::Enum(state)));
        out.push(Attribute::set(
            "printer-state-reasons",
            reasons.into_iter().map(Value::Keyword).collect(),
        ));
        if let Some(m) = message {
            out.push(Attribute::new("printer-state-message", Value::Text(m)));
        }
        out.push(Attribute::new(
            "printer-is-accepting-jobs",
            Value::Boolean(accepting),
        ));
        out
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

/// printer-state-message beyond the state itself ([`Printer::state_message`]).
pub(crate) fn state_message_of(s: &PrinterStatus) -> Option<String> {
    match (&s.power_saving, s.device_message.is_empty()) {
        (Some(why), true) => Some(power_saving_message(why)),
        (Some(why), false) => Some(format!(
            "{} Output device: {}",
            power_saving_message(why),
            s.device_message
        )),
        (None, false) => Some(s.device_message.clone()),
        (None, true) => None,
    }
}

/// printer-state-message of a power-saving queue. No IPP printer-state-reasons keyword is
/// registered for power saving (PWG 5100.13 and 5106.4 describe power states with other
/// attributes), so the message carries it.
pub fn power_saving_message(why: &str) -> String {
    format!("Power saving ({why}): no cloud jobs are fetched until the cloud or a local job wakes the printer.")
}

fn not_supported(code: u16) -> Status {
    Status::new(
        status::OPERATION_NOT_SUPPORTED,
        format!("operation 0x{code:04x} is not supported"),
    )
}

/// Declares the appliance's operations ONCE: the list is both the dispatch (`run_operation`)
/// and operations-supported (RFC 8011 §5.4.15), so adding an operation here is all it takes.
macro_rules! operation_table {
    ($this:ident, $req:ident, $doc:ident, $ctx:ident;
     $( $($op:ident)|+ => $call:expr, )*) => {
        /// The operations this printer implements, in the order of the table.
        pub const OPERATIONS: &[Operation] = &[ $( $(Operation::$op,)+ )* ];

        impl Printer {
            async fn run_operation(
                &$this,
                op: Operation,
                $req: Message,
                $doc: DocumentBody,
                $ctx: &RequestContext,
            ) -> Result<Message, Status> {
                #[allow(unreachable_patterns)]
                match op {
                    $( $(Operation::$op)|+ => $call, )*
                    other => Err(not_supported(other.code())),
                }
            }
        }
    };
}

operation_table! { self, req, doc, ctx;
    PrintJob => self.print_job(req, doc, ctx).await,
    ValidateJob => self.validate_job(req, ctx).await,
    CreateJob => self.create_job(req, ctx).await,
    SendDocument => self.send_document(req, doc, ctx).await,
    CancelJob => self.cancel_job(req, ctx).await,
    GetJobAttributes => self.get_job_attributes(req, ctx).await,
    GetJobs => self.get_jobs(req, ctx).await,
    GetPrinterAttributes => self.get_printer_attributes(req, ctx).await,
    HoldJob => self.hold_job(req, ctx).await,
    ReleaseJob => self.release_job(req, ctx).await,
    RestartJob | ReprocessJob => self.restart_job(req, ctx).await,
    PausePrinter | PausePrinterAfterCurrentJob | ShutdownPrinter => self.pause_printer(req, ctx).await,
    ResumePrinter | StartupPrinter => self.resume_printer(req, ctx).await,
    PurgeJobs => self.cancel_jobs(req, ctx, true).await,
    SetPrinterAttributes => self.set_printer_attributes(req, ctx).await,
    SetJobAttributes => self.set_job_attributes(req, ctx).await,
    GetPrinterSupportedValues => self.get_printer_supported_values(req, ctx).await,
    CreatePrinterSubscriptions | CreateJobSubscriptions => self.create_subscriptions(req, ctx).await,
    GetSubscriptionAttributes => self.get_subscription_attributes(req, ctx).await,
    GetSubscriptions => self.get_subscriptions(req, ctx).await,
    RenewSubscription => self.renew_subscription(req, ctx).await,
    CancelSubscription => self.cancel_subscription(req, ctx).await,
    GetNotifications => self.get_notifications(req, ctx).await,
    EnablePrinter => self.set_accepting(req, ctx, true).await,
    DisablePrinter => self.set_accepting(req, ctx, false).await,
    HoldNewJobs => self.hold_new_jobs(req, ctx, true).await,
    ReleaseHeldNewJobs => self.hold_new_jobs(req, ctx, false).await,
    RestartPrinter => self.restart_printer(req, ctx).await,
    CancelCurrentJob => self.cancel_current_job(req, ctx).await,
    SuspendCurrentJob => self.suspend_current_job(req, ctx).await,
    ResumeJob => self.resume_job(req, ctx).await,
    PromoteJob | ScheduleJobAfter => self.promote_job(req, ctx).await,
    CancelDocument => self.cancel_document(req, ctx).await,
    GetDocumentAttributes => self.get_document_attributes(req, ctx).await,
    GetDocuments => self.get_documents(req, ctx).await,
    SetDocumentAttributes => self.set_document_attributes(req, ctx).await,
    CancelJobs => self.cancel_jobs(req, ctx, false).await,
    CancelMyJobs => self.cancel_my_jobs(req, ctx).await,
    ResubmitJob => self.resubmit_job(req, ctx).await,
    CloseJob => self.close_job(req, ctx).await,
    IdentifyPrinter => self.identify_printer(req, ctx).await,
    ValidateDocument => self.validate_document(req, ctx).await,
}

/// operations-supported (RFC 8011 §5.4.15): the table's operations in numeric order.
pub fn operations_supported() -> Vec<Value> {
    let mut ops = OPERATIONS.to_vec();
    ops.sort();
    ops.into_iter().map(|o| en(o.enum_value())).collect()
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
    // PWG 5100.11 §6.1: taken on every queue (a job that has one waits for its PIN).
    "job-password",
    "job-password-encryption",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operation_table_lists_each_operation_once() {
        let mut ops = OPERATIONS.to_vec();
        ops.sort();
        ops.dedup();
        assert_eq!(ops.len(), OPERATIONS.len());
        assert_eq!(operations_supported().len(), OPERATIONS.len());
        assert!(OPERATIONS.contains(&Operation::ValidateDocument));
        assert!(!OPERATIONS.contains(&Operation::FetchJob));
    }

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
