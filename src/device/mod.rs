//! Output devices behind one trait, chosen by the queue's device URI: `file:` writes each document
//! into a directory, `ipp(s)://` drives a downstream IPP printer, `socket://` sends raw AppSocket,
//! `cloud:PRINTER-ID` forwards to a cloud Infrastructure Printer (the same IPP client, with the
//! appliance's cloud session: [`CloudLink`]).

pub mod file;
pub mod ipp_downstream;
pub mod socket;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::model::ipp_caps::DownstreamCaps;

/// Why a device could not print a job.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Worth trying again later (disk full, device offline): the job stays pending.
    #[error("output device unavailable: {0}")]
    Retry(String),
    /// The job itself is bad: it is aborted with `reason` (a job-state-reasons keyword).
    #[error("{message}")]
    Fatal {
        reason: &'static str,
        message: String,
    },
    #[error("canceled")]
    Canceled,
    /// An earlier attempt may have left part of the job at a device that cannot be asked what it
    /// printed (printbridge stopped without recording the outcome): the job is held for review,
    /// never sent again on its own.
    #[error("{message}")]
    Held { message: String },
}

/// One document handed to a device: the spooled file and how it was sent.
#[derive(Debug, Clone)]
pub struct DeviceDocument {
    pub path: PathBuf,
    pub number: u32,
    pub format: String,
    pub compression: String,
}

/// What a device is asked to print.
#[derive(Debug, Clone)]
pub struct DeviceJob {
    pub id: u32,
    pub name: String,
    /// job-originating-user-name: who printed it (a `cloud:` device prints on their behalf).
    pub owner: String,
    pub documents: Vec<DeviceDocument>,
    /// The whole job rendered as one PDF with its ticket applied (copies, n-up, ...), when the
    /// device asked for it ([`Device::wants_rendered_pdf`]).
    pub rendered: Option<PathBuf>,
    /// The job's options; devices that pass them on (sides, output-bin) read them here.
    pub ticket: crate::convert::ticket::JobTicket,
    /// The job template attributes as the client sent them (validated): what the person asked
    /// for, as opposed to the ticket's defaults, for devices that pass options downstream.
    pub attributes: Vec<crate::codec::ipp::Attribute>,
    /// Where a device that hands the job to another system keeps what it handed over, so that a
    /// retry after a crash asks that system instead of printing twice. `None` in tests of
    /// devices that need none.
    pub ledger: Option<Arc<dyn JobLedger>>,
}

/// What a device handed to a downstream printer for one job (stored by the spool, fsynced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownstreamRecord {
    /// printer-uri of the printer the job went to.
    pub printer_uri: String,
    /// The last of the documents sent (0-based) that the downstream job carries: all of them
    /// with Create-Job, its own one with Print-Job (each document a job; earlier ones are done).
    pub document: u32,
    /// The printer's job-id; `None` while a Print-Job is in flight and its answer was not seen.
    pub job_id: Option<i32>,
    /// The printer's job-uuid, when it told: tells a restarted printer's reused job-id apart.
    pub job_uuid: Option<String>,
    /// The printer acknowledged the last document: from here on the job is only followed.
    pub submitted: bool,
}

pub type LedgerFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// Durable memory of downstream jobs, one record per job of ours. `record` returns only once the
/// record is on disk; the record disappears by itself when the job finishes here.
pub trait JobLedger: Send + Sync {
    fn record<'a>(&'a self, job: u32, record: &'a DownstreamRecord) -> LedgerFuture<'a, ()>;
    fn lookup(&self, job: u32) -> LedgerFuture<'_, Option<DownstreamRecord>>;
    fn clear(&self, job: u32) -> LedgerFuture<'_, ()>;
    /// What the device that has the job says it has printed so far (job-impressions-completed,
    /// job-media-sheets-completed), mirrored into the job while it prints. Best effort.
    fn progress(&self, _job: u32, _impressions: u32, _sheets: u32) -> LedgerFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}

impl std::fmt::Debug for dyn JobLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobLedger")
    }
}

pub type DeviceFuture<'a> = Pin<Box<dyn Future<Output = Result<(), DeviceError>> + Send + 'a>>;

pub trait Device: Send + Sync {
    /// Prints the job. Must be idempotent: printing the same job again (after a crash) replaces
    /// what an interrupted attempt left, never adds to it. Stops early when `cancel` becomes true.
    fn print<'a>(&'a self, job: &'a DeviceJob, cancel: Arc<AtomicBool>) -> DeviceFuture<'a>;

    /// Where the job's output goes when that is more than the device's URI (a file device names
    /// the file), for the log line of the job's state change.
    fn output_of(&self, _job: &DeviceJob) -> Option<String> {
        None
    }

    /// Whether the worker should render the job into one PDF ([`DeviceJob::rendered`]) first.
    fn wants_rendered_pdf(&self) -> bool {
        false
    }

    /// Whether this device turns the rendered PDF into gray raster itself for a monochrome job,
    /// so the PDF needs no gray layer: rasterizing that layer (a Saturation blend over the page)
    /// takes about ten times as long as the page without it.
    fn makes_monochrome_itself(&self) -> bool {
        false
    }

    /// What an attempt stopped by a server shutdown (`cancel` set while the job was being sent)
    /// left behind for job `job`, so the worker knows whether sending it again later is safe.
    /// Asking forgets what the device kept about the attempt.
    fn interrupted(&self, _job: u32) -> Interruption {
        Interruption::MayHoldPart
    }

    /// Asks the device to make itself known (a lamp, a sound, its display), as the cloud's
    /// `identify` instruction wants. Devices that cannot answer [`Identified::Unsupported`].
    fn identify<'a>(&'a self, _actions: &'a [String]) -> IdentifyFuture<'a> {
        Box::pin(async { Identified::Unsupported })
    }
}

pub type IdentifyFuture<'a> = Pin<Box<dyn Future<Output = Identified> + Send + 'a>>;

/// What [`Device::identify`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identified {
    /// The device said yes (e.g. Identify-Printer answered successful-ok).
    Done(String),
    /// The device cannot identify itself (no such operation, not an IPP printer).
    Unsupported,
    /// It can, but this time it failed (unreachable, refused): why.
    Failed(String),
}

/// What an interrupted print left at the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    /// Nothing the device keeps, or something it can be asked about later: printing the job
    /// again after the restart cannot print any of it twice.
    SafeToResend,
    /// The device may have taken part of the job and cannot be asked what it printed.
    MayHoldPart,
}

// ---- device URIs, the factory and the status report (issue 4) ----

/// Why a configured device cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Uri(String),
    #[error("cannot use output directory {dir}: {source}")]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set up TLS for {uri}: {message}")]
    Tls { uri: String, message: String },
}

/// A parsed device URI. Only these schemes exist; anything else is refused at configuration load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceUri {
    /// `file:///absolute/dir`: one file per document in that directory.
    File(PathBuf),
    /// `ipp://host[:port]/path` or `ipps://...` (RFC 8010 §4, RFC 7472): a downstream IPP printer.
    Ipp {
        tls: bool,
        host: String,
        port: u16,
        path: String,
    },
    /// `socket://host[:port]`: AppSocket/JetDirect raw TCP, port 9100 by default.
    Socket { host: String, port: u16 },
    /// `cloud:PRINTER-ID`: the Infrastructure Printer `{cloud}/ipp/print/PRINTER-ID` of the cloud
    /// the appliance is registered with (issue 13, "Outbound").
    Cloud { printer: String },
}

impl DeviceUri {
    /// Parses and checks a device URI from configuration.
    pub fn parse(uri: &str) -> Result<DeviceUri, String> {
        if let Some(id) = uri
            .get(..6)
            .filter(|s| s.eq_ignore_ascii_case("cloud:"))
            .map(|_| &uri[6..])
        {
            return cloud_printer_id(id)
                .map(|printer| DeviceUri::Cloud { printer })
                .ok_or_else(|| {
                    format!("'{uri}': a cloud URI is cloud:PRINTER-ID (the id the cloud's registry gave the printer)")
                });
        }
        let Some((scheme, rest)) = uri.split_once("://") else {
            return Err(format!(
                "'{uri}' is not a URI (expected file:///dir, ipp://host/path, ipps://host/path or socket://host:port)"
            ));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                let path = rest.strip_prefix("localhost").unwrap_or(rest);
                if !path.starts_with('/') {
                    return Err(format!(
                        "'{uri}': a file URI needs an absolute path (file:///dir)"
                    ));
                }
                Ok(DeviceUri::File(PathBuf::from(path)))
            }
            // http(s):// is IPP over HTTP(S) too (RFC 7472 §4): how a cloud shows its printers'
            // addresses (`https://CLOUD/ipp/print/ID`, a cloud queue when on the configured cloud).
            s @ ("ipp" | "ipps" | "http" | "https") => {
                let (authority, path) = match rest.find('/') {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, "/ipp/print"),
                };
                let default_port = match s {
                    "http" => 80,
                    "https" => 443,
                    _ => 631,
                };
                let (host, port) = split_authority(uri, authority, default_port)?;
                if path.chars().any(|c| c.is_control() || c == ' ') {
                    return Err(format!(
                        "'{uri}': the path must not contain spaces or control characters"
                    ));
                }
                Ok(DeviceUri::Ipp {
                    tls: s == "ipps" || s == "https",
                    host,
                    port,
                    path: path.to_string(),
                })
            }
            "socket" => {
                let authority = rest.trim_end_matches('/');
                if authority.contains('/') || authority.contains('?') {
                    return Err(format!(
                        "'{uri}': a socket URI is socket://host[:port] and nothing more"
                    ));
                }
                let (host, port) = split_authority(uri, authority, 9100)?;
                Ok(DeviceUri::Socket { host, port })
            }
            other => Err(format!(
                "'{uri}': unknown scheme '{other}' (supported: file, ipp, ipps, socket, cloud)"
            )),
        }
    }

    /// This URI as a cloud device when it is an `ipp(s)://` or `http(s)://` URI of an
    /// Infrastructure Printer (`.../ipp/print/ID`) on the cloud at `cloud_base` (same host and
    /// port): a queue may name its cloud printer by the URI the cloud shows for it.
    pub fn on_cloud(uri: &str, cloud_base: &str) -> Option<DeviceUri> {
        let (scheme, authority, path) = split_url(uri)?;
        let (cscheme, cauthority, cpath) = split_url(cloud_base)?;
        let port = |scheme: &str, authority: &str| -> Option<(String, u16)> {
            // The cloud serves IPP on its web port: an ipp(s) URI without a port means it.
            let default = match scheme {
                "http" | "ipp" => 80,
                "https" | "ipps" => 443,
                _ => return None,
            };
            let tail = authority.rsplit_once(':').filter(|(_, p)| !p.contains(']'));
            match tail {
                Some((h, p)) => Some((h.to_ascii_lowercase(), p.parse().ok()?)),
                None => Some((authority.to_ascii_lowercase(), default)),
            }
        };
        let (h1, p1) = port(&scheme, &authority)?;
        let (h2, p2) = port(&cscheme, &cauthority)?;
        let id = path
            .strip_prefix(cpath.trim_end_matches('/'))?
            .strip_prefix("/ipp/print/")?;
        (h1 == h2 && p1 == p2)
            .then(|| cloud_printer_id(id))
            .flatten()
            .map(|printer| DeviceUri::Cloud { printer })
    }
}

/// A cloud printer id as the registry makes them (a UUID): letters, digits and '-', at most 64.
fn cloud_printer_id(id: &str) -> Option<String> {
    (!id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .then(|| id.to_ascii_lowercase())
}

/// `scheme://authority/path` → (lower-case scheme, authority, path).
fn split_url(url: &str) -> Option<(String, String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    Some((
        scheme.to_ascii_lowercase(),
        authority.to_string(),
        path.split(['?', '#']).next().unwrap_or("").to_string(),
    ))
}

/// Where a `cloud:` device sends its requests and with which credential.
#[derive(Clone)]
pub struct CloudEndpoint {
    /// The cloud's base URL (`https://cloud.example.com`, no trailing '/').
    pub base: String,
    /// The appliance's device access token (RFC 8628), sent as `Authorization: Bearer`.
    pub token: String,
    /// Whom to trust for an `https://` cloud (public roots and `[cloud] ca_file`).
    pub tls: Arc<rustls::ClientConfig>,
}

/// The appliance's link to the cloud it is registered with, as a `cloud:` device needs it
/// (implemented by [`crate::bridge::outbound`]).
pub trait CloudLink: Send + Sync {
    /// The cloud and the current access token; `Err(why)` while the appliance is not registered.
    fn endpoint(&self) -> Result<CloudEndpoint, String>;
    /// The cloud identity (mail address) of a local job owner, `None` when there is none
    /// (docs/bridge.md "Who a LAN user is in the cloud").
    fn cloud_user(&self, owner: &str) -> Option<String>;
    /// What people are told to do when the cloud refuses them (the registration page).
    fn access_hint(&self) -> String;
}

impl std::fmt::Debug for dyn CloudLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CloudLink")
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_authority(uri: &str, authority: &str, default_port: u16) -> Result<(String, u16), String> {
    if authority.contains('@') {
        return Err(format!(
            "'{uri}': user information in device URIs is not supported"
        ));
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("'{uri}': unbalanced '[' in the host"))?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty()
        || host.len() > 253
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
    {
        return Err(format!("'{uri}': missing or invalid host"));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("'{uri}': invalid port '{p}'"))?,
    };
    Ok((host.to_string(), port))
}

/// What a socket:// device is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
pub enum SocketFormat {
    #[default]
    #[serde(rename = "pdf")]
    Pdf,
    #[serde(rename = "pwg-raster")]
    PwgRaster,
}

/// Everything besides the URI that building a device needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The appliance's state directory (device-certs/ lives there).
    pub state_dir: PathBuf,
    pub socket_format: SocketFormat,
    /// Connect and answer time-out.
    pub timeout: Duration,
    /// Resolution used when a document must be rasterized for the device and it names none.
    pub resolution_dpi: u32,
    /// Threads rendering a PDF into raster (`[convert] threads`; 0: the available cores).
    pub raster_threads: usize,
    /// Where the raster rendering of this device's jobs is counted (pages started, made, sent;
    /// the most held at once), for tests and measurements; `None`: not counted.
    pub raster_counters: Option<Arc<crate::convert::page_pool::PoolCounters>>,
    /// What a `file:` device writes: the rendered job (PDF) or the documents as received.
    pub file_output: file::OutputMode,
    /// The cloud session, for `cloud:` devices; `None` where there is none (tests, probes).
    pub cloud: Option<Arc<dyn CloudLink>>,
}

/// The condition of an output device, mirrored into the queue's printer-state-reasons and
/// printer-state-message (RFC 8011 §5.4.12-13).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceReport {
    /// A job waits for the device to answer: `connecting-to-device`.
    pub connecting: bool,
    /// Why the device is unreachable: `offline-report`.
    pub offline: Option<String>,
    /// printer-state-reasons of a downstream IPP printer, checked keywords, "none" left out.
    pub downstream_reasons: Vec<String>,
    /// Its printer-state-message, checked text.
    pub downstream_message: String,
    /// Its printer-state is `stopped` (RFC 8011 §5.4.11): nothing prints until someone acts there.
    pub downstream_stopped: bool,
    /// Jobs keep failing on this device (set by the worker, not the device): why, and whether the
    /// queue's error policy stopped the queue for it.
    pub trouble: Option<Trouble>,
}

/// A device that keeps failing, as the worker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trouble {
    /// What went wrong, for people: printer-state-message.
    pub message: String,
    /// `error_policy = "stop-printer"` stopped the queue: `other-error` instead of
    /// `other-warning` (RFC 8011 §5.4.12: "-error" means the printer has stopped).
    pub queue_stopped: bool,
}

impl DeviceReport {
    pub fn reasons(&self) -> Vec<String> {
        let mut r = Vec::new();
        if self.connecting {
            r.push("connecting-to-device".to_string());
        }
        if self.offline.is_some() {
            r.push("offline-report".to_string());
        }
        if let Some(t) = &self.trouble {
            r.push(
                if t.queue_stopped {
                    "other-error"
                } else {
                    "other-warning"
                }
                .to_string(),
            );
        }
        for d in &self.downstream_reasons {
            if !r.contains(d) {
                r.push(d.clone());
            }
        }
        r
    }

    /// Whether the queue should show as stopped: the device answers and says it is stopped. An
    /// unreachable device is `offline-report`, not stopped: its last state is stale.
    pub fn stopped(&self) -> bool {
        self.downstream_stopped && self.offline.is_none()
    }

    /// A message for people, empty when there is nothing to say.
    pub fn message(&self) -> String {
        match (&self.trouble, &self.offline) {
            (Some(t), _) => t.message.clone(),
            (None, Some(why)) => why.clone(),
            (None, None) => self.downstream_message.clone(),
        }
    }
}

/// The device's side of the report: cheap to clone, changes only when something changed.
#[derive(Clone)]
pub struct Reporter {
    tx: Arc<watch::Sender<DeviceReport>>,
}

impl Reporter {
    pub fn new() -> (Reporter, watch::Receiver<DeviceReport>) {
        let (tx, rx) = watch::channel(DeviceReport::default());
        (Reporter { tx: Arc::new(tx) }, rx)
    }

    fn update(&self, f: impl FnOnce(&mut DeviceReport)) {
        self.tx.send_if_modified(|r| {
            let before = r.clone();
            f(r);
            *r != before
        });
    }

    /// A job is about to contact the device.
    pub fn connecting(&self) {
        self.update(|r| r.connecting = true);
    }

    /// The device could not be reached; `connecting-to-device` stays while a job waits for it.
    pub fn offline(&self, why: String) {
        self.update(|r| r.offline = Some(why));
    }

    /// The device answered: both link reasons clear.
    pub fn online(&self) {
        self.update(|r| {
            r.connecting = false;
            r.offline = None;
        });
    }

    /// The device answered but the job could not be handed over yet: the job still waits.
    pub fn waiting(&self) {
        self.update(|r| r.offline = None);
    }

    pub fn downstream(&self, reasons: Vec<String>, message: String, stopped: bool) {
        self.update(|r| {
            r.downstream_reasons = reasons;
            r.downstream_message = message;
            r.downstream_stopped = stopped;
        });
    }

    /// Jobs keep failing on the device (`Some`), or one printed again (`None`).
    pub fn trouble(&self, trouble: Option<Trouble>) {
        self.update(|r| r.trouble = trouble);
    }

    pub fn current(&self) -> DeviceReport {
        self.tx.borrow().clone()
    }
}

/// A built output device: the device, its status report and, for devices that can be asked about
/// their state, a task to run until shutdown that keeps the report current.
pub struct Output {
    pub device: Arc<dyn Device>,
    pub status: watch::Receiver<DeviceReport>,
    pub monitor: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// What the device is, for logs: the URI without anything secret.
    pub description: String,
    /// Where the worker reports jobs that keep failing ([`Reporter::trouble`]).
    pub reporter: Reporter,
    /// For a downstream IPP printer: what it last said it can do, updated by the monitor each
    /// time it answers something else (`None` until it answered).
    pub capabilities: Option<watch::Receiver<Option<Arc<DownstreamCaps>>>>,
    /// For a `cloud:` device: the device itself, which also checks people's cloud credentials.
    pub cloud_device: Option<Arc<ipp_downstream::IppDevice>>,
}

/// Builds the device a URI names. `shutdown` ends the monitor task.
pub fn from_uri(
    uri: &DeviceUri,
    settings: &Settings,
    shutdown: watch::Receiver<bool>,
) -> Result<Output, SetupError> {
    let (reporter, status) = Reporter::new();
    let own_reporter = reporter.clone();
    match uri {
        DeviceUri::File(dir) => {
            let device =
                file::FileDevice::with_mode(dir, settings.file_output).map_err(|source| {
                    SetupError::Dir {
                        dir: dir.clone(),
                        source,
                    }
                })?;
            Ok(Output {
                device: Arc::new(device),
                status,
                monitor: None,
                description: file_uri(dir),
                reporter: own_reporter,
                capabilities: None,
                cloud_device: None,
            })
        }
        DeviceUri::Socket { host, port } => Ok(Output {
            device: Arc::new(socket::SocketDevice::new(
                host.clone(),
                *port,
                settings.clone(),
                reporter,
            )),
            status,
            monitor: None,
            description: format!("socket://{host}:{port}"),
            reporter: own_reporter,
            capabilities: None,
            cloud_device: None,
        }),
        DeviceUri::Ipp { .. } | DeviceUri::Cloud { .. } => {
            let device = Arc::new(ipp_downstream::IppDevice::new(uri, settings, reporter)?);
            let description = device.uri().to_string();
            let capabilities = Some(device.capabilities());
            let monitor = device.clone().monitor(shutdown);
            let cloud_device = device.is_cloud().then(|| device.clone());
            Ok(Output {
                device,
                status,
                monitor: Some(Box::pin(monitor)),
                description,
                reporter: own_reporter,
                capabilities,
                cloud_device,
            })
        }
    }
}

/// A keyword from a device is kept only when it looks like one (RFC 8011 §5.1.4): lower-case
/// letters, digits, '-', '_' and '.', at most 63 characters.
pub use crate::model::ipp_caps::checked_keyword;
/// Text from a device, without control characters and bounded to `max` characters.
pub use crate::model::ipp_caps::checked_text;

/// Reads a spooled document in a blocking thread (decompressing gzip/deflate as it goes) and
/// hands it over in chunks, so a whole document is never in memory. At most `depth` chunks wait.
pub fn read_chunks(doc: &DeviceDocument, depth: usize) -> Chunks {
    let (tx, rx) = tokio::sync::mpsc::channel(depth.max(1));
    let doc = doc.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let fail = |message| {
            let _ = tx.blocking_send(Err(ChunkError {
                reason: "document-format-error",
                message,
            }));
        };
        let mut reader = match open_decompressed(&doc) {
            Ok(r) => r,
            Err(e) => return fail(format!("cannot open spooled document: {e}")),
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx
                        .blocking_send(Ok(bytes::Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    let (reason, message) = read_failure(&doc, &e);
                    let _ = tx.blocking_send(Err(ChunkError { reason, message }));
                    return;
                }
            }
        }
    });
    rx
}

/// The first bytes of a spooled document after decompression, to sniff its format.
pub fn document_head(doc: &DeviceDocument) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let len = crate::convert::sniff::SNIFF_LEN;
    let mut head = Vec::with_capacity(len);
    open_decompressed(doc)?
        .take(len as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// The format a document really is: its declared format, or for application/octet-stream what
/// its first bytes say (PWG 5100.14 §4.2: printers auto-detect such documents).
pub async fn effective_format(doc: &DeviceDocument) -> String {
    if doc.format != "application/octet-stream" {
        return doc.format.clone();
    }
    let d = doc.clone();
    let head = tokio::task::spawn_blocking(move || document_head(&d))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    crate::convert::sniff::document_format(&head)
        .unwrap_or("application/octet-stream")
        .to_string()
}

/// The documents a network device sends: the rendered job (one PDF with the ticket applied) when
/// the worker made one, else the spooled documents as they are.
pub fn documents_to_send(job: &DeviceJob) -> Vec<DeviceDocument> {
    match &job.rendered {
        Some(path) => vec![DeviceDocument {
            path: path.clone(),
            number: 1,
            format: "application/pdf".into(),
            compression: "none".into(),
        }],
        None => job.documents.clone(),
    }
}

/// The PDF to print for a document, when there is one: the document itself if it is PDF.
pub async fn pdf_of(
    _job: &DeviceJob,
    doc: &DeviceDocument,
) -> Result<Option<DeviceDocument>, DeviceError> {
    if effective_format(doc).await == "application/pdf" {
        let mut d = doc.clone();
        d.format = "application/pdf".into();
        return Ok(Some(d));
    }
    Ok(None)
}

/// What a raster-only device needs a PDF turned into.
#[derive(Debug, Clone)]
pub struct RasterRequest {
    /// image/pwg-raster or image/urf.
    pub format: &'static str,
    pub resolution_dpi: u32,
    pub color: crate::convert::pdf_raster::RasterColor,
    /// Render threads (`[convert] threads`; 0: the available cores).
    pub threads: usize,
    /// [`Settings::raster_counters`].
    pub counters: Option<Arc<crate::convert::page_pool::PoolCounters>>,
}

/// Why a chunk of a document could not be produced: the job ends with `reason`.
#[derive(Debug, Clone)]
pub struct ChunkError {
    pub reason: &'static str,
    pub message: String,
}

impl From<ChunkError> for DeviceError {
    fn from(e: ChunkError) -> DeviceError {
        DeviceError::Fatal {
            reason: e.reason,
            message: e.message,
        }
    }
}

/// Chunks of a document on their way to a device.
pub type Chunks = tokio::sync::mpsc::Receiver<Result<bytes::Bytes, ChunkError>>;

/// Hands what a blocking converter writes to the async side, one bounded chunk at a time.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, ChunkError>>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(bytes::Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "device gone"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// PDF → PWG raster or URF for raster-only devices (crate::convert::pdf_raster), rendered on
/// `want.threads` threads and streamed page by page: the first page leaves while later ones are
/// rendered, and at most a few pages wait (the channel holds 4 chunks; a device that reads slowly
/// holds the renderer back). Rendering stops between pages once `cancel` is set or the receiver
/// is dropped (the device gave up), not only when the next write fails.
pub fn rasterize(pdf: &DeviceDocument, want: RasterRequest, cancel: Arc<AtomicBool>) -> Chunks {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let doc = pdf.clone();
    tokio::task::spawn_blocking(move || rasterize_blocking(&doc, &want, &cancel, tx));
    rx
}

fn rasterize_blocking(
    doc: &DeviceDocument,
    want: &RasterRequest,
    cancel: &AtomicBool,
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, ChunkError>>,
) {
    use crate::convert::pdf_raster::{pdf_to_raster_with, PdfRasterError, RasterRun, RasterTarget};
    use crate::convert::RasterFormat;
    let fail = |reason, message| {
        let _ = tx.blocking_send(Err(ChunkError { reason, message }));
    };
    let input = match open_decompressed(doc) {
        Ok(r) => r,
        Err(e) => {
            return fail(
                "document-unprintable-error",
                format!("cannot open spooled document: {e}"),
            )
        }
    };
    let format = if want.format == "image/urf" {
        RasterFormat::Urf
    } else {
        RasterFormat::Pwg
    };
    let target = RasterTarget::new(format, want.resolution_dpi, want.color, None);
    let writer = ChannelWriter { tx: tx.clone() };
    let stop = || cancel.load(Ordering::Relaxed) || tx.is_closed();
    let run = RasterRun {
        threads: want.threads,
        stop: Some(&stop),
        counters: want.counters.as_deref(),
    };
    match pdf_to_raster_with(std::io::BufReader::new(input), &target, &run, writer) {
        // Nobody listens any more (or the job was canceled, which the device reports itself).
        Err(PdfRasterError::Stopped) => {}
        Err(PdfRasterError::Write(_)) if tx.is_closed() => {}
        Err(e) => fail(
            e.job_state_reason(),
            format!(
                "document {} cannot be converted to {}: {e}",
                doc.number, want.format
            ),
        ),
        Ok(_) => {}
    }
}

/// Opens a spooled document decompressed. A compressed one (gzip, deflate) is bounded to the size
/// the converters allow its format
/// ([`ConvertLimits::decompressed_limit`](crate::convert::pipeline::ConvertLimits::decompressed_limit));
/// an application/octet-stream document is bounded by what its first bytes say it is. Passing the
/// bound is a read error that [`read_failure`] names. An uncompressed document is read as it is:
/// the spool file is already its whole size (bounded at submission by `max_document_bytes`), and a
/// large PDF passed through unconverted must keep printing.
fn open_decompressed(doc: &DeviceDocument) -> std::io::Result<Box<dyn std::io::Read>> {
    decompressed(doc, std::fs::File::open(&doc.path)?)
}

/// `open_decompressed` for a spooled document already open as `input`.
pub fn decompressed(
    doc: &DeviceDocument,
    input: std::fs::File,
) -> std::io::Result<Box<dyn std::io::Read>> {
    use crate::convert::sniff;
    if matches!(doc.compression.as_str(), "" | "none") {
        return Ok(Box::new(input));
    }
    let limits = crate::convert::pipeline::ConvertLimits::default();
    let widest = limits.max_raster_bytes.max(limits.max_document_bytes);
    let reader = sniff::decompress(&doc.compression, input, widest)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let (format, reader) = match sniff::DocFormat::from_mime(&doc.format) {
        Some(f) => (Some(f), reader),
        None => {
            let (head, reader) = sniff::peek(reader)?;
            (sniff::printable_format(&head), reader)
        }
    };
    Ok(Box::new(sniff::Bounded::new(
        reader,
        limits.decompressed_limit(format),
    )))
}

/// The job-state-reasons keyword and message for a failed read of a spooled document through
/// `open_decompressed`: too much once decompressed, in the converters' words, or bad data.
pub fn read_failure(doc: &DeviceDocument, e: &std::io::Error) -> (&'static str, String) {
    if let Some(limit) = crate::convert::sniff::limit_exceeded(e) {
        let too_large = crate::convert::pipeline::RenderError::TooLarge {
            doc: doc.number as usize,
            limit,
        };
        return (too_large.job_state_reason(), too_large.user_message());
    }
    (
        "document-format-error",
        format!(
            "document {} could not be read ({}): {e}",
            doc.number, doc.compression
        ),
    )
}

/// `file:///absolute/dir` (RFC 8089) for a directory, percent-encoding what a URI path cannot
/// hold, so the start-up log shows a URI one can paste (`./printbridge-data/output` is not one).
pub fn file_uri(dir: &std::path::Path) -> String {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut uri = String::from("file://");
    for b in absolute.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri
}

#[cfg(test)]
mod uri_tests {
    use super::*;

    #[test]
    fn file_uris_are_absolute_and_encoded() {
        let cwd = std::env::current_dir().unwrap();
        let uri = file_uri(std::path::Path::new("./printbridge-data/output"));
        assert!(uri.starts_with("file:///"), "{uri}");
        assert!(!uri.contains("/./"), "{uri}");
        assert!(uri.ends_with("/printbridge-data/output"), "{uri}");
        assert!(uri.contains(&*cwd.to_string_lossy()) || cwd.to_string_lossy().contains(' '));
        assert_eq!(
            file_uri(std::path::Path::new("/var/lib/print out/100%")),
            "file:///var/lib/print%20out/100%25"
        );
    }

    #[test]
    fn device_uris_parse_with_default_ports() {
        assert_eq!(
            DeviceUri::parse("ipp://printer.local/ipp/print").unwrap(),
            DeviceUri::Ipp {
                tls: false,
                host: "printer.local".into(),
                port: 631,
                path: "/ipp/print".into()
            }
        );
        assert_eq!(
            DeviceUri::parse("ipps://[::1]:8631/ipp/print").unwrap(),
            DeviceUri::Ipp {
                tls: true,
                host: "::1".into(),
                port: 8631,
                path: "/ipp/print".into()
            }
        );
        assert_eq!(
            DeviceUri::parse("socket://10.0.0.5").unwrap(),
            DeviceUri::Socket {
                host: "10.0.0.5".into(),
                port: 9100
            }
        );
        assert_eq!(
            DeviceUri::parse("file:///var/out").unwrap(),
            DeviceUri::File(PathBuf::from("/var/out"))
        );
    }

    #[test]
    fn cloud_printers_are_named_by_id_or_by_their_uri_on_the_configured_cloud() {
        let id = "0b7c9f3e-55aa-4d2e-9a51-3f0e6a1b2c3d";
        assert_eq!(
            DeviceUri::parse(&format!("cloud:{id}")).unwrap(),
            DeviceUri::Cloud { printer: id.into() }
        );
        assert!(DeviceUri::parse("cloud:").is_err());
        assert!(DeviceUri::parse("cloud:../etc/passwd").is_err());
        let on = |u: &str, base: &str| DeviceUri::on_cloud(u, base);
        let want = Some(DeviceUri::Cloud { printer: id.into() });
        assert_eq!(
            on(
                &format!("https://print.example.com/ipp/print/{id}"),
                "https://print.example.com"
            ),
            want
        );
        assert_eq!(
            on(
                &format!("ipps://print.example.com:443/ipp/print/{id}"),
                "https://print.example.com/"
            ),
            want
        );
        assert_eq!(
            on(
                &format!("ipp://127.0.0.1:8080/ipp/print/{id}"),
                "http://127.0.0.1:8080"
            ),
            want
        );
        assert_eq!(
            on(
                &format!("ipps://other.example.com/ipp/print/{id}"),
                "https://print.example.com"
            ),
            None
        );
        assert_eq!(
            on(
                &format!("ipp://127.0.0.1:8081/ipp/print/{id}"),
                "http://127.0.0.1:8080"
            ),
            None
        );
        assert_eq!(
            on("ipp://127.0.0.1:8080/ipp/print", "http://127.0.0.1:8080"),
            None
        );
        assert!(matches!(
            DeviceUri::parse(&format!("https://print.example.com/ipp/print/{id}")).unwrap(),
            DeviceUri::Ipp {
                tls: true,
                port: 443,
                ..
            }
        ));
    }

    #[test]
    fn bad_device_uris_are_refused_with_the_reason() {
        assert!(DeviceUri::parse("lpd://host/queue")
            .unwrap_err()
            .contains("unknown scheme 'lpd'"));
        assert!(DeviceUri::parse("file://relative")
            .unwrap_err()
            .contains("absolute"));
        assert!(DeviceUri::parse("socket://host:99999")
            .unwrap_err()
            .contains("invalid port"));
        assert!(DeviceUri::parse("ipp://user@host/x")
            .unwrap_err()
            .contains("user information"));
        assert!(DeviceUri::parse("ipp://ho$t/x")
            .unwrap_err()
            .contains("invalid host"));
        assert!(DeviceUri::parse("printer").is_err());
    }

    #[test]
    fn report_lists_link_reasons_first_and_clears_them() {
        let (r, rx) = Reporter::new();
        r.connecting();
        r.offline("connection refused".into());
        r.downstream(
            vec!["media-empty-error".into()],
            "Out of paper".into(),
            true,
        );
        assert_eq!(
            rx.borrow().reasons(),
            [
                "connecting-to-device",
                "offline-report",
                "media-empty-error"
            ]
        );
        assert_eq!(rx.borrow().message(), "connection refused");
        assert!(
            !rx.borrow().stopped(),
            "an unreachable printer's last state is stale"
        );
        r.online();
        assert!(rx.borrow().stopped());
        assert_eq!(rx.borrow().reasons(), ["media-empty-error"]);
        assert_eq!(rx.borrow().message(), "Out of paper");
    }

    #[test]
    fn trouble_reported_by_the_worker_shows_first_and_clears() {
        let (r, rx) = Reporter::new();
        r.offline("connection refused".into());
        r.trouble(Some(Trouble {
            message: "Job 3 is waiting: connection refused".into(),
            queue_stopped: false,
        }));
        assert_eq!(rx.borrow().reasons(), ["offline-report", "other-warning"]);
        assert_eq!(
            rx.borrow().message(),
            "Job 3 is waiting: connection refused"
        );
        r.trouble(Some(Trouble {
            message: "Stopped".into(),
            queue_stopped: true,
        }));
        assert_eq!(rx.borrow().reasons(), ["offline-report", "other-error"]);
        r.trouble(None);
        r.online();
        assert!(rx.borrow().reasons().is_empty());
        assert_eq!(rx.borrow().message(), "");
    }

    #[test]
    fn device_keywords_and_text_are_checked() {
        assert_eq!(
            checked_keyword("toner-low-warning").as_deref(),
            Some("toner-low-warning")
        );
        assert_eq!(checked_keyword("Bad Keyword"), None);
        assert_eq!(checked_keyword(&"a".repeat(64)), None);
        assert_eq!(checked_text("line\r\nbreak\x1b[31m", 100), "linebreak[31m");
        assert_eq!(checked_text(&"x".repeat(500), 10).len(), 10);
    }
}
