//! The inbound bridge: the appliance as the INFRA Proxy (PWG 5100.18) of its shared queues
//! (`cloud_share = true`). Once the appliance is registered with the cloud, the shared queues
//! are registered in the cloud's printer registry, a queue no longer shared is deregistered
//! (Deregister-Output-Device), and each shared queue gets a [`queue::QueueProxy`] that fetches
//! its Infrastructure Printer's jobs into the queue's spool and reports their states back.
//! docs/bridge.md "Inbound" and "Exactly once" describe the protocol and the crash windows.

mod client;
pub mod queue;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::bridge::http::{CloudHttp, HttpError};
use crate::bridge::registration::{registered_printers, Agent, RegisteredPrinter};
use crate::codec::ipp::Attribute;
use crate::codec::ipp_attr::uri;
use crate::codec::ipp_op::Operation;
use crate::codec::ipp_status as status;
use crate::ipp_printer::Printer;
use crate::spool::SpoolError;

pub use client::InfraClient;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(transparent)]
    Transport(#[from] HttpError),
    #[error("the cloud refused the appliance's token (HTTP {0})")]
    Unauthorized(u16),
    #[error("the cloud answered HTTP {0}")]
    Http(u16),
    #[error("{0}")]
    Answer(String),
    #[error("the cloud answered {} ({message})", status::name(*.code).unwrap_or("an unknown status"))]
    Ipp { code: u16, message: String },
    #[error("spool: {0}")]
    Spool(#[from] SpoolError),
    #[error("the appliance is not registered with the cloud")]
    NoSession,
    #[error("{0}")]
    Registry(String),
}

impl ProxyError {
    /// The refusal in an IPP answer.
    pub fn ipp(resp: &crate::codec::ipp::Message) -> ProxyError {
        ProxyError::Ipp {
            code: resp.code,
            message: client::status_message(resp),
        }
    }

    /// The IPP status of a refusal, when the cloud answered with one.
    pub fn ipp_status(&self) -> Option<u16> {
        match self {
            ProxyError::Ipp { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A queue of the appliance and whether it is shared through the cloud.
#[derive(Clone)]
pub struct SharedQueue {
    pub printer: Arc<Printer>,
    pub shared: bool,
    /// What the cloud set with apply-settings (polling interval, time-out); `None`: defaults.
    pub settings: Option<watch::Receiver<QueueSettings>>,
}

/// Settings of the Proxy from the configuration.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// `[server] max_document_bytes`: the largest document taken from the cloud (0: no limit).
    pub max_document_bytes: u64,
}

/// output-device-uuid of a queue: its own printer-uuid (the queue is the output device).
pub fn output_device_uuid(printer: &Printer) -> String {
    if printer.uuid.starts_with("urn:uuid:") {
        printer.uuid.clone()
    } else {
        format!("urn:uuid:{}", printer.uuid)
    }
}

/// What the cloud's control channel may set on a queue (apply-settings, kept by
/// [`crate::bridge::groups`]) and the queue's Proxy obeys; `None`: the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSettings {
    /// How often the Proxy asks for fetchable jobs without an event (default 60 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_polling_interval_seconds: Option<u64>,
    /// How long one exchange of the Proxy with the cloud may take (a held Get-Notifications
    /// excepted); none or 0: the HTTP client's own limit only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// Idle seconds (no job changing, none unfinished) after which the queue enters power
    /// saving; 0 or none: never by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_saving_delay_seconds: Option<u64>,
}

/// Whether two UUIDs are the same, written `urn:uuid:...` or bare, in either case (RFC 4122 §3).
pub(crate) fn same_uuid(a: &str, b: &str) -> bool {
    let bare = |s: &str| {
        let s = s.trim();
        s.strip_prefix("urn:uuid:")
            .unwrap_or(s)
            .to_ascii_lowercase()
    };
    bare(a) == bare(b)
}

/// The HTTP client of the Proxy: as the registration agent's (same CA settings), with room for
/// a held Get-Notifications (the cloud holds it up to `notify_wait_seconds`, at most 300) and
/// for Get-Jobs answers.
fn proxy_http(agent: &Agent) -> Result<CloudHttp, HttpError> {
    let config = agent.link_config();
    let ca = match &config.ca_file {
        Some(p) => Some(std::fs::read(p).map_err(|e| {
            HttpError::Tls(format!("cannot read cloud.ca_file {}: {e}", p.display()))
        })?),
        None => None,
    };
    CloudHttp::new(
        Duration::from_secs(config.timeout_seconds.max(1) + 310),
        8 * 1024 * 1024,
        ca.as_deref(),
    )
}

/// The IPP client of cloud printer `p`. Requests go to the configured cloud only (the
/// registry's answer names the printer, never where the token is sent).
fn client_for(http: CloudHttp, base: &str, p: &RegisteredPrinter) -> InfraClient {
    let url = format!("{base}/ipp/print/{}", p.id);
    let suffix = format!("/ipp/print/{}", p.id);
    let printer_uri = if (p.printer_uri.starts_with("ipp://")
        || p.printer_uri.starts_with("ipps://"))
        && p.printer_uri.ends_with(&suffix)
        && p.printer_uri.len() <= 1023
    {
        p.printer_uri.clone()
    } else {
        url.clone()
    };
    InfraClient::new(http, url, printer_uri)
}

/// Runs the inbound bridge until `shutdown`: waits for the appliance's cloud session, brings the
/// registry in line with the shared queues, and runs one Proxy per shared queue.
pub async fn run(
    agent: Arc<Agent>,
    queues: Vec<SharedQueue>,
    settings: ProxySettings,
    mut shutdown: watch::Receiver<bool>,
) {
    if !agent.configured() {
        return;
    }
    let http = match proxy_http(&agent) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("cloud proxy: {e}");
            return;
        }
    };
    let mut changes = agent.session_changes();
    let mut backoff = Backoff::new();
    let mut failing = false;
    let registered = loop {
        if *shutdown.borrow() {
            return;
        }
        let Some(tokens) = agent.session() else {
            tokio::select! {
                _ = changes.changed() => continue,
                _ = shutdown.changed() => continue,
            }
        };
        match sync_registry(&agent, &http, &queues, &tokens.access_token).await {
            Ok(r) => {
                if failing {
                    tracing::info!("cloud proxy: the printer registry answers again");
                }
                break r;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!("cloud proxy: {e}; trying again with back-off");
                    failing = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_wait()) => {}
                    _ = changes.changed() => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    };
    let base = agent.link_config().base().to_string();
    let mut tasks = Vec::new();
    for q in queues.iter().filter(|q| q.shared) {
        let Some(p) = registered
            .iter()
            .find(|p| same_uuid(&p.uuid, &q.printer.uuid))
        else {
            tracing::warn!(
                "cloud proxy: the registry did not answer for queue {}",
                q.printer.description().name
            );
            continue;
        };
        let proxy = Arc::new(queue::QueueProxy::new(
            agent.clone(),
            client_for(http.clone(), &base, p),
            q.printer.clone(),
            p.id.clone(),
            settings.clone(),
            q.settings
                .clone()
                .unwrap_or_else(|| watch::channel(Default::default()).1),
        ));
        tracing::info!(
            printer = %p.id,
            "cloud proxy: queue {} is shared as cloud printer {}",
            q.printer.description().name,
            p.id
        );
        tasks.push(tokio::spawn(proxy.run(shutdown.clone())));
    }
    let _ = shutdown.wait_for(|s| *s).await;
    for t in tasks {
        let _ = t.await;
    }
}

/// Deregisters the output devices of queues registered before but no longer shared, then
/// registers the shared ones (the registry keeps a printer by its UUID: registering again
/// changes nothing but its description) and returns the registry's answer.
async fn sync_registry(
    agent: &Agent,
    http: &CloudHttp,
    queues: &[SharedQueue],
    bearer: &str,
) -> Result<Vec<RegisteredPrinter>, ProxyError> {
    let base = agent.link_config().base().to_string();
    let before = registered_printers(agent.state_dir());
    for q in queues.iter().filter(|q| !q.shared) {
        for p in before
            .iter()
            .filter(|p| same_uuid(&p.uuid, &q.printer.uuid))
        {
            let client = client_for(http.clone(), &base, p);
            cancel_subscription(agent, &client, bearer, &base, &p.id, &q.printer).await?;
            let mut req = client.request(Operation::DeregisterOutputDevice.code());
            req.group_mut(crate::codec::ipp::tag::OPERATION)
                .push(Attribute::new(
                    "output-device-uuid",
                    uri(&output_device_uuid(&q.printer)),
                ));
            let resp = client.call(bearer, &req).await?;
            // not-found: the cloud no longer knows the output device; it is gone either way.
            if status::is_error(resp.code) && resp.code != status::NOT_FOUND {
                return Err(ProxyError::ipp(&resp));
            }
            tracing::info!(
                printer = %p.id,
                "cloud proxy: queue {} is no longer shared: its output device is deregistered",
                q.printer.description().name
            );
        }
    }
    let tokens = agent.session().ok_or(ProxyError::NoSession)?;
    agent
        .register_printers(&tokens)
        .await
        .map_err(ProxyError::Registry)
}

/// Cancel-Subscription (RFC 3995 §11.2.7) of the printer subscription the queue's Proxy kept
/// on cloud printer `printer`, if any: a queue no longer shared leaves none behind. A client error
/// (lapsed, unknown) means it is gone already.
async fn cancel_subscription(
    agent: &Agent,
    client: &InfraClient,
    bearer: &str,
    cloud: &str,
    printer: &str,
    queue: &Printer,
) -> Result<(), ProxyError> {
    let store = agent.store();
    let kept = store
        .proxy_subscription(cloud, printer)
        .await
        .map_err(|e| ProxyError::Answer(e.to_string()))?;
    let Some((id, _)) = kept else {
        return Ok(());
    };
    let mut req = client.request(Operation::CancelSubscription.code());
    let g = req.group_mut(crate::codec::ipp::tag::OPERATION);
    g.push(Attribute::new(
        "output-device-uuid",
        uri(&output_device_uuid(queue)),
    ));
    g.push(Attribute::new(
        "notify-subscription-id",
        crate::codec::ipp_attr::int(id),
    ));
    let resp = client.call(bearer, &req).await?;
    if status::is_server_error(resp.code) {
        return Err(ProxyError::ipp(&resp));
    }
    store
        .forget_proxy_subscription(cloud, printer, id)
        .await
        .map_err(|e| ProxyError::Answer(e.to_string()))
}

/// Bounded, jittered exponential back-off (1 s doubling to 60 s, each wait between half and
/// all of the step) so that appliances do not come back to a recovered cloud in step.
pub struct Backoff {
    step: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(60);

    pub fn new() -> Backoff {
        Backoff { step: Self::FIRST }
    }

    pub fn reset(&mut self) {
        self.step = Self::FIRST;
    }

    pub fn next_wait(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(Self::MAX);
        let half = step / 2;
        let jitter = (uuid::Uuid::new_v4().as_u128() % (half.as_millis().max(1))) as u64;
        half + Duration::from_millis(jitter)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// A debug-build fault point: `PRINTBRIDGE_TEST_FAULT=proxy-abort:<step>` makes the process
/// die at `step` of taking a cloud job, as a kill -9 would (tests of the crash windows). A
/// release build never reads the variable.
pub(crate) fn fault_point(step: &str) {
    #[cfg(debug_assertions)]
    if let Ok(spec) = std::env::var("PRINTBRIDGE_TEST_FAULT") {
        if spec
            .split(',')
            .any(|one| one.strip_prefix("proxy-abort:") == Some(step))
        {
            tracing::error!("fault injected by PRINTBRIDGE_TEST_FAULT: the process dies at {step}");
            std::process::abort();
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_bound_with_jitter() {
        let mut b = Backoff::new();
        let mut last = Duration::ZERO;
        for _ in 0..20 {
            last = b.next_wait();
            assert!(last <= Backoff::MAX);
        }
        assert!(last >= Backoff::MAX / 2);
        b.reset();
        assert!(b.next_wait() <= Backoff::FIRST);
    }
}
