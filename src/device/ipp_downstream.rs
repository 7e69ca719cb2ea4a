//! The downstream IPP printer output device (`ipp://` and `ipps://`): asks the printer what it
//! takes and how it is (Get-Printer-Attributes, at start, periodically and after errors), sends
//! each job with Create-Job + Send-Document or Print-Job (RFC 8011 §4.2), follows it with
//! Get-Job-Attributes until it ends, cancels it downstream when ours is canceled, and mirrors the
//! printer's printer-state-reasons into ours.
//!
//! HTTP is hyper's client over one connection per request; the IPP bytes are framed by our own
//! bounded codec, because every byte the printer answers is as untrusted as a client's request.
//! ipps:// trusts the printer's certificate on first use and pins its SHA-256 fingerprint in
//! `<state>/device-certs/`, as CUPS does: printers almost never carry a certificate a public CA
//! signed.
//!
//! A `cloud:PRINTER-ID` device is the same client aimed at the cloud's Infrastructure Printer
//! (issue 13, "Outbound"; docs/bridge.md): its address and bearer token come from the appliance's
//! cloud session ([`super::CloudLink`]) at each request, jobs are created on behalf of the
//! person who printed (requesting-user-name, their cloud address), documents go as they were
//! received with the job's options passed on (the cloud's output device applies them), gzip
//! compressed when the cloud takes it, and the cloud's refusal of a user aborts the job with
//! where to ask for access.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Limited, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use sha2::Digest;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};

use super::CloudLink;
use super::{
    checked_text, effective_format, pdf_of, rasterize, read_chunks, ChunkError, Chunks, Device,
    DeviceDocument, DeviceError, DeviceFuture, DeviceJob, DeviceUri, DownstreamRecord, JobLedger,
    RasterRequest, Reporter, Settings, SetupError,
};
use crate::codec::ipp::{encode_message, parse_message, tag, Attribute, Limits, Message, Value};
use crate::codec::ipp_op::Operation;
use crate::codec::ipp_status::{self as status, DOCUMENT_FORMAT_NOT_SUPPORTED, NOT_FOUND};
use crate::convert::pdf_raster::RasterColor;
use crate::convert::ticket::ColorMode;
use crate::model::ipp_caps::{self, DownstreamCaps};

/// Largest HTTP response body taken from a printer. We never ask for media-col-database, so even
/// a large printer's answer is a few tens of KiB.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// How often the printer is asked how it is while all is well, and after it failed to answer.
const POLL_OK: Duration = Duration::from_secs(10);
const POLL_DOWN: Duration = Duration::from_secs(3);
/// How often a job handed over is looked at.
const JOB_POLL: Duration = Duration::from_secs(1);
/// Reasons mirrored from the printer, at most.
const MAX_REASONS: usize = 16;

// The operations this client sends, from the shared IPP core.
const OP_PRINT_JOB: u16 = Operation::PrintJob as u16;
const OP_CREATE_JOB: u16 = Operation::CreateJob as u16;
const OP_SEND_DOCUMENT: u16 = Operation::SendDocument as u16;
const OP_CANCEL_JOB: u16 = Operation::CancelJob as u16;
const OP_GET_JOB_ATTRIBUTES: u16 = Operation::GetJobAttributes as u16;
const OP_GET_PRINTER_ATTRIBUTES: u16 = Operation::GetPrinterAttributes as u16;
const OP_IDENTIFY_PRINTER: u16 = Operation::IdentifyPrinter as u16;
/// identify-actions keywords (PWG 5100.13 §5.1.4).
const IDENTIFY_ACTIONS: [&str; 4] = ["display", "flash", "sound", "speak"];

/// Why talking to the printer failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No connection (refused, unreachable, timed out, TLS refused): the printer is offline.
    #[error("cannot reach {uri}: {why}")]
    Unreachable { uri: String, why: String },
    /// Connected but the exchange broke or the answer is not IPP.
    #[error("{uri}: {why}")]
    Exchange { uri: String, why: String },
    /// The HTTP answer was not 200 OK (401: the credentials were refused).
    #[error("{uri}: HTTP status {status}")]
    Http { uri: String, status: u16 },
    /// The printer answered, with an error status.
    #[error("{uri}: {why}")]
    Status { uri: String, why: String },
    /// The document could not be read or converted while it was being sent.
    #[error("{}", .0.message)]
    Document(ChunkError),
    #[error("canceled")]
    Canceled,
}

/// What the printer said about itself in its last answer.
#[derive(Debug, Clone, Default)]
pub struct Downstream {
    pub formats: Vec<String>,
    pub operations: Vec<i32>,
    pub state: i32,
    pub reasons: Vec<String>,
    pub message: String,
    pub accepting: bool,
    pub pwg_resolutions: Vec<u32>,
    pub pwg_types: Vec<String>,
    pub urf: Vec<String>,
    /// Job options passed on when the printer lists the value (RFC 8011 §5.2, PWG 5100.13),
    /// besides sides, media and print-color-mode, which are in `capabilities`.
    pub qualities: Vec<i32>,
    pub output_bins: Vec<String>,
    /// compression-supported (RFC 8011 §5.4.32).
    pub compression: Vec<String>,
    /// What it can do, for the queue's capabilities (crate::model::ipp_caps) and the job options.
    pub capabilities: DownstreamCaps,
}

impl Downstream {
    fn from_response(msg: &Message) -> Downstream {
        let g = msg.group(tag::PRINTER);
        let get = |name: &str| g.and_then(|g| g.get(name));
        let strings = |name: &str| -> Vec<String> {
            get(name)
                .map(|a| {
                    a.values
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|s| super::checked_text(s, 127))
                        .take(256)
                        .collect()
                })
                .unwrap_or_default()
        };
        let reasons = strings("printer-state-reasons")
            .into_iter()
            .filter_map(|r| super::checked_keyword(&r))
            .filter(|r| r != "none")
            .take(MAX_REASONS)
            .collect();
        let pwg_resolutions = get("pwg-raster-document-resolution-supported")
            .map(|a| {
                a.values
                    .iter()
                    .filter_map(|v| match v {
                        // units 3 = dots per inch (RFC 8010 §3.9)
                        Value::Resolution { x, units: 3, .. } if (72..=2400).contains(x) => {
                            Some(*x as u32)
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Downstream {
            formats: strings("document-format-supported"),
            operations: get("operations-supported")
                .map(|a| a.values.iter().filter_map(Value::as_int).collect())
                .unwrap_or_default(),
            state: get("printer-state")
                .and_then(|a| a.first())
                .and_then(Value::as_int)
                .unwrap_or(3),
            reasons,
            message: get("printer-state-message")
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .map(|s| super::checked_text(s, 255))
                .unwrap_or_default(),
            // A printer that does not say is taken as accepting: Print-Job will tell.
            accepting: get("printer-is-accepting-jobs")
                .and_then(|a| a.first())
                .and_then(Value::as_bool)
                .unwrap_or(true),
            pwg_resolutions,
            pwg_types: strings("pwg-raster-document-type-supported"),
            urf: strings("urf-supported"),
            qualities: get("print-quality-supported")
                .map(|a| a.values.iter().filter_map(Value::as_int).take(16).collect())
                .unwrap_or_default(),
            output_bins: strings("output-bin-supported"),
            compression: strings("compression-supported"),
            capabilities: g
                .map(|g| DownstreamCaps::from_attributes(&g.attributes))
                .unwrap_or_default(),
        }
    }

    /// color-supported (a printer that does not say is taken as monochrome).
    fn color(&self) -> bool {
        self.capabilities.color_supported.unwrap_or(false)
    }

    fn takes(&self, format: &str) -> bool {
        self.formats.iter().any(|f| f.eq_ignore_ascii_case(format))
    }

    fn multi_document(&self) -> bool {
        [OP_CREATE_JOB, OP_SEND_DOCUMENT]
            .iter()
            .all(|op| self.operations.contains(&(*op as i32)))
    }

    /// The raster format this printer gets a PDF as: PWG raster, else URF; `None` when it takes
    /// PDF or neither.
    fn raster_format(&self) -> Option<&'static str> {
        if self.takes("application/pdf") {
            return None;
        }
        ["image/pwg-raster", "image/urf"]
            .into_iter()
            .find(|f| self.takes(f))
    }

    /// Whether a monochrome job reaches this printer as gray raster made by us (see
    /// [`Device::makes_monochrome_itself`]): it takes raster, not PDF, in gray or 1-bit black.
    fn gets_gray_raster(&self) -> bool {
        self.raster_format()
            .is_some_and(|f| self.raster_color(f, true) != RasterColor::Srgb8)
    }

    /// The richest pixel format the printer takes that the renderer makes: sRGB, else gray,
    /// else 1-bit black (PWG 5100.14 §5.6.2; urf-supported names W8 and SRGB24). A monochrome
    /// job gets gray, else black, when the printer takes either.
    fn raster_color(&self, format: &str, monochrome: bool) -> RasterColor {
        let offered = if format == "image/urf" {
            &self.urf
        } else {
            &self.pwg_types
        };
        let has = |c: RasterColor| {
            offered
                .iter()
                .any(|k| RasterColor::from_keyword(k) == Some(c))
        };
        if monochrome {
            if let Some(c) = [RasterColor::Sgray8, RasterColor::Black1]
                .into_iter()
                .find(|c| has(*c))
            {
                return c;
            }
        }
        [RasterColor::Srgb8, RasterColor::Sgray8, RasterColor::Black1]
            .into_iter()
            .find(|c| has(*c) && (self.color() || *c != RasterColor::Srgb8))
            .or_else(|| {
                [RasterColor::Srgb8, RasterColor::Sgray8]
                    .into_iter()
                    .find(|c| has(*c))
            })
            .unwrap_or(RasterColor::Sgray8)
    }

    /// The resolution to rasterize at: the configured one when the printer takes it, else the
    /// printer's closest, else the configured one.
    fn raster_resolution(&self, wanted: u32, format: &str) -> u32 {
        let offered: Vec<u32> = if format == "image/urf" {
            self.urf
                .iter()
                .filter_map(|k| k.strip_prefix("RS"))
                .flat_map(|r| r.split('-'))
                .filter_map(|r| r.parse().ok())
                .filter(|r| (72..=2400).contains(r))
                .collect()
        } else {
            self.pwg_resolutions.clone()
        };
        offered
            .iter()
            .copied()
            .min_by_key(|r| r.abs_diff(wanted))
            .unwrap_or(wanted)
    }
}

/// What the printer says about one of its jobs (RFC 8011 §5.3.7-9, PWG 5100.13 job-uuid).
#[derive(Debug, Clone, Default)]
struct DownJob {
    state: i32,
    reasons: Vec<String>,
    message: String,
    uuid: Option<String>,
    /// job-impressions-completed and job-media-sheets-completed (RFC 8011 §5.3.18, PWG 5100.7).
    impressions: Option<u32>,
    sheets: Option<u32>,
}

impl DownJob {
    fn from_response(resp: &Message) -> DownJob {
        let g = resp.group(tag::JOB);
        let get = |name: &str| g.and_then(|g| g.get(name));
        DownJob {
            state: get("job-state")
                .and_then(|a| a.first())
                .and_then(Value::as_int)
                .unwrap_or(3),
            reasons: get("job-state-reasons")
                .map(|a| {
                    a.values
                        .iter()
                        .filter_map(Value::as_str)
                        .filter_map(super::checked_keyword)
                        .take(MAX_REASONS)
                        .collect()
                })
                .unwrap_or_default(),
            message: get("job-state-message")
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .map(|s| super::checked_text(s, 255))
                .unwrap_or_default(),
            uuid: get("job-uuid")
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .map(|s| super::checked_text(s, 100))
                .filter(|s| !s.is_empty()),
            impressions: get("job-impressions-completed")
                .and_then(|a| a.first())
                .and_then(Value::as_int)
                .and_then(|n| u32::try_from(n).ok()),
            sheets: get("job-media-sheets-completed")
                .and_then(|a| a.first())
                .and_then(Value::as_int)
                .and_then(|n| u32::try_from(n).ok()),
        }
    }
}

/// Where a job picked up after a crash stands.
enum Resumed {
    /// The recorded downstream job ended as ours should: nothing more to send.
    Finished,
    /// Send the documents from this one (0-based) on.
    SendFrom(usize),
}

/// How one document will be sent.
struct Plan {
    doc: DeviceDocument,
    format: String,
    raster: Option<RasterRequest>,
    /// Sent with compression=gzip (RFC 8011 §5.4.32), compressed on the way.
    gzip: bool,
}

/// Where requests go and with which credential, for one exchange.
#[derive(Clone)]
struct Target {
    /// printer-uri.
    uri: String,
    host: String,
    port: u16,
    path: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    authorization: Option<String>,
}

/// What Basic credentials checked with the cloud turned out to be ([`IppDevice::verify_user`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Right password, and the user may use the cloud printer.
    Allowed,
    /// Wrong address or password.
    WrongCredentials,
    /// Right password, but the cloud refuses the user on this printer: its message.
    NotAllowed(String),
}

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub struct IppDevice {
    /// What goes into printer-uri: `ipp://host:port/path`; `cloud:ID` for a cloud device (logs,
    /// the ledger), whose printer-uri is made per request.
    uri: String,
    /// The printer of an ipp(s):// device.
    fixed: Option<Target>,
    /// The cloud link and printer id of a `cloud:` device.
    cloud: Option<(Arc<dyn CloudLink>, String)>,
    settings: Settings,
    reporter: Reporter,
    last: Mutex<Option<Arc<Downstream>>>,
    /// What the printer last said it can do; changes only when that changes.
    capabilities: watch::Sender<Option<Arc<DownstreamCaps>>>,
    /// Asks the monitor to look at the printer now (after an error).
    wake: Notify,
    request_id: AtomicU32,
    limits: Limits,
}

impl IppDevice {
    pub fn new(
        uri: &DeviceUri,
        settings: &Settings,
        reporter: Reporter,
    ) -> Result<IppDevice, SetupError> {
        let limits = Limits {
            max_attribute_bytes: MAX_RESPONSE_BYTES,
            max_attributes: 4096,
            max_value_length: 32767,
            max_collection_depth: 8,
            max_values_per_attribute: 1024,
        };
        if let DeviceUri::Cloud { printer } = uri {
            let Some(link) = settings.cloud.clone() else {
                return Err(SetupError::Uri(format!(
                    "cloud:{printer}: this role has no cloud link"
                )));
            };
            return Ok(IppDevice {
                uri: format!("cloud:{printer}"),
                fixed: None,
                cloud: Some((link, printer.clone())),
                settings: settings.clone(),
                reporter,
                last: Mutex::new(None),
                capabilities: watch::channel(None).0,
                wake: Notify::new(),
                request_id: AtomicU32::new(1),
                limits,
            });
        }
        let DeviceUri::Ipp {
            tls,
            host,
            port,
            path,
        } = uri
        else {
            return Err(SetupError::Uri("not an ipp:// or ipps:// URI".into()));
        };
        let printer_uri = printer_uri(*tls, host, *port, path);
        let tls = if *tls {
            Some(
                tofu_config(settings, host, *port).map_err(|message| SetupError::Tls {
                    uri: printer_uri.clone(),
                    message,
                })?,
            )
        } else {
            None
        };
        Ok(IppDevice {
            uri: printer_uri.clone(),
            fixed: Some(Target {
                uri: printer_uri,
                host: host.clone(),
                port: *port,
                path: path.clone(),
                tls,
                authorization: None,
            }),
            cloud: None,
            settings: settings.clone(),
            reporter,
            last: Mutex::new(None),
            capabilities: watch::channel(None).0,
            wake: Notify::new(),
            request_id: AtomicU32::new(1),
            limits,
        })
    }

    /// Whether this is a `cloud:` device.
    pub fn is_cloud(&self) -> bool {
        self.cloud.is_some()
    }

    /// Where the next request goes: the configured printer, or the cloud printer at the cloud's
    /// current address with the current access token (the registration agent refreshes it).
    fn target(&self) -> Result<Target, LinkError> {
        if let Some(t) = &self.fixed {
            return Ok(t.clone());
        }
        let (link, id) = self.cloud.as_ref().expect("a device is fixed or cloud");
        let unreachable = |why: String| LinkError::Unreachable {
            uri: self.uri.clone(),
            why,
        };
        let ep = link.endpoint().map_err(unreachable)?;
        let (scheme, authority, prefix) = super::split_url(&ep.base)
            .ok_or_else(|| unreachable(format!("the cloud URL '{}' is not a URL", ep.base)))?;
        let (ipp_scheme, default_port) = match scheme.as_str() {
            "https" => ("ipps", 443),
            "http" => ("ipp", 80),
            other => return Err(unreachable(format!("the cloud URL has scheme '{other}'"))),
        };
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
        let authority = if has_port {
            authority
        } else {
            format!("{authority}:{default_port}")
        };
        let path = format!("{}/ipp/print/{id}", prefix.trim_end_matches('/'));
        match DeviceUri::parse(&format!("{ipp_scheme}://{authority}{path}")) {
            Ok(DeviceUri::Ipp {
                tls,
                host,
                port,
                path,
            }) => Ok(Target {
                uri: printer_uri(tls, &host, port, &path),
                host,
                port,
                path,
                tls: tls.then(|| ep.tls.clone()),
                authorization: Some(format!("Bearer {}", ep.token)),
            }),
            Ok(_) => Err(unreachable("the cloud URL is not usable".into())),
            Err(e) => Err(unreachable(e)),
        }
    }

    /// Checks a user's cloud address and password with the cloud (issue 13: IPP authentication
    /// with cloud credentials, verified at submission, never stored): Get-Printer-Attributes of
    /// the cloud printer with those credentials, which the cloud answers only for a user allowed
    /// on it.
    pub async fn verify_user(&self, user: &str, password: &str) -> Result<Verified, LinkError> {
        use base64::Engine as _;
        let mut req = self.request(OP_GET_PRINTER_ATTRIBUTES);
        req.group_mut(tag::OPERATION).push(Attribute::set(
            "requested-attributes",
            vec![Value::Keyword("printer-state".into())],
        ));
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        match self
            .exchange_as(&req, None, &Arc::default(), Some(format!("Basic {pair}")))
            .await
        {
            Ok(resp) if status::is_successful(resp.code) => Ok(Verified::Allowed),
            Ok(resp) if resp.code == status::NOT_AUTHENTICATED => Ok(Verified::WrongCredentials),
            Ok(resp) if matches!(resp.code, status::NOT_AUTHORIZED | status::FORBIDDEN) => {
                Ok(Verified::NotAllowed(status_text(&resp)))
            }
            Ok(resp) => Err(LinkError::Status {
                uri: self.uri.clone(),
                why: format!("Get-Printer-Attributes answered {}", status_text(&resp)),
            }),
            Err(LinkError::Http { status: 401, .. }) => Ok(Verified::WrongCredentials),
            Err(e) => Err(e),
        }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// What the printer said last time it answered, if it ever did.
    pub fn last_known(&self) -> Option<Arc<Downstream>> {
        self.last.lock().expect("downstream lock").clone()
    }

    /// Follows what the printer says it can do: `None` until it first answered, then a new value
    /// each time its answer about its capabilities changes (trays refilled with another size, a
    /// duplex unit fitted, ...).
    pub fn capabilities(&self) -> watch::Receiver<Option<Arc<DownstreamCaps>>> {
        self.capabilities.subscribe()
    }

    /// Keeps the report current until shutdown: asks the printer how it is every few seconds, more
    /// often while it does not answer, and at once after a job ran into an error.
    pub async fn monitor(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let wait = match self.query().await {
                Ok(_) => POLL_OK,
                Err(e) => {
                    tracing::debug!("output device: {e}");
                    POLL_DOWN
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// Get-Printer-Attributes (RFC 8011 §4.2.5); updates the report either way.
    async fn query(&self) -> Result<Arc<Downstream>, LinkError> {
        let mut req = self.request(OP_GET_PRINTER_ATTRIBUTES);
        req.group_mut(tag::OPERATION).push(Attribute::set(
            "requested-attributes",
            [
                "color-supported",
                "document-format-supported",
                "operations-supported",
                "printer-is-accepting-jobs",
                "printer-state",
                "printer-state-message",
                "printer-state-reasons",
                "pwg-raster-document-resolution-supported",
                "pwg-raster-document-type-supported",
                "urf-supported",
                "media-supported",
                "media-ready",
                "printer-resolution-supported",
                "sides-supported",
                "print-color-mode-supported",
                "print-quality-supported",
                "output-bin-supported",
                "compression-supported",
            ]
            .iter()
            .chain(ipp_caps::REQUESTED_ATTRIBUTES)
            .fold(Vec::<Value>::new(), |mut v, k| {
                if !v.iter().any(|x| x.as_str() == Some(k)) {
                    v.push(Value::Keyword(k.to_string()));
                }
                v
            }),
        ));
        match self.exchange(&req, None, &Arc::default()).await {
            Ok(resp) if resp.code < 0x0100 => {
                let d = Arc::new(Downstream::from_response(&resp));
                self.reporter.waiting();
                self.reporter
                    .downstream(d.reasons.clone(), d.message.clone(), d.state == 5);
                *self.last.lock().expect("downstream lock") = Some(d.clone());
                self.capabilities.send_if_modified(|c| {
                    let changed = c.as_deref() != Some(&d.capabilities);
                    if changed {
                        *c = Some(Arc::new(d.capabilities.clone()));
                    }
                    changed
                });
                Ok(d)
            }
            Ok(resp) => {
                let e = LinkError::Exchange {
                    uri: self.uri.clone(),
                    why: format!("Get-Printer-Attributes answered {}", status_text(&resp)),
                };
                self.reporter.offline(e.to_string());
                Err(e)
            }
            Err(e) => {
                self.reporter.offline(e.to_string());
                Err(e)
            }
        }
    }

    fn request(&self, op: u16) -> Message {
        let id = self.request_id.fetch_add(1, Ordering::Relaxed).max(1);
        let printer_uri = self
            .target()
            .map(|t| t.uri)
            .unwrap_or_else(|_| self.uri.clone());
        crate::codec::ipp_attr::request(op, id, &printer_uri, "printbridge")
    }

    async fn connect(
        &self,
        target: &Target,
    ) -> Result<hyper::client::conn::http1::SendRequest<Body>, LinkError> {
        let unreachable = |why: String| LinkError::Unreachable {
            uri: self.uri.clone(),
            why,
        };
        let timeout = self.settings.timeout;
        let tcp = match tokio::time::timeout(
            timeout,
            TcpStream::connect((target.host.as_str(), target.port)),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => {
                return Err(unreachable(format!(
                    "no connection within {} s",
                    timeout.as_secs()
                )))
            }
        };
        let _ = tcp.set_nodelay(true);
        match &target.tls {
            None => handshake(tcp).await.map_err(unreachable),
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                    .map_err(|e| unreachable(format!("host name for TLS: {e}")))?;
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let stream = tokio::time::timeout(timeout, connector.connect(name, tcp))
                    .await
                    .map_err(|_| unreachable("TLS handshake timed out".into()))?
                    .map_err(|e| unreachable(format!("TLS: {e}")))?;
                handshake(stream).await.map_err(unreachable)
            }
        }
    }

    /// One IPP request over its own connection, optionally followed by document data, and its
    /// bounded, parsed answer. The exchange fails when no byte moves for the time-out (the
    /// printer may take longer to answer once it has the whole document).
    async fn exchange(
        &self,
        req: &Message,
        document: Option<Chunks>,
        cancel: &Arc<AtomicBool>,
    ) -> Result<Message, LinkError> {
        self.exchange_as(req, document, cancel, None).await
    }

    /// [`Self::exchange`] with these credentials instead of the device's own.
    async fn exchange_as(
        &self,
        req: &Message,
        document: Option<Chunks>,
        cancel: &Arc<AtomicBool>,
        authorization: Option<String>,
    ) -> Result<Message, LinkError> {
        let target = self.target()?;
        let mut sender = self.connect(&target).await?;
        let mut head = Vec::with_capacity(512);
        encode_message(req, &mut head);
        let progress = Arc::new(Mutex::new((Instant::now(), document.is_none())));
        let doc_error: Arc<Mutex<Option<ChunkError>>> = Arc::default();
        let canceled = Arc::new(AtomicBool::new(false));
        let body: Body = match document {
            None => http_body_util::Full::new(Bytes::from(head))
                .map_err(|never| match never {})
                .boxed_unsync(),
            Some(rx) => {
                let progress = progress.clone();
                let doc_error = doc_error.clone();
                let cancel_seen = canceled.clone();
                let cancel_flag = cancel.clone();
                let tail = futures_util::stream::unfold(
                    (rx, progress, doc_error, cancel_seen, cancel_flag),
                    |(mut rx, progress, doc_error, cancel_seen, cancel_flag)| async move {
                        if cancel_flag.load(Ordering::Relaxed) {
                            cancel_seen.store(true, Ordering::Relaxed);
                            let e = std::io::Error::other("canceled");
                            return Some((
                                Err(e),
                                (rx, progress, doc_error, cancel_seen, cancel_flag),
                            ));
                        }
                        match rx.recv().await {
                            Some(Ok(chunk)) => {
                                progress.lock().expect("progress lock").0 = Instant::now();
                                Some((
                                    Ok(Frame::data(chunk)),
                                    (rx, progress, doc_error, cancel_seen, cancel_flag),
                                ))
                            }
                            Some(Err(why)) => {
                                let e = std::io::Error::other(why.message.clone());
                                *doc_error.lock().expect("doc error lock") = Some(why);
                                Some((Err(e), (rx, progress, doc_error, cancel_seen, cancel_flag)))
                            }
                            None => {
                                *progress.lock().expect("progress lock") = (Instant::now(), true);
                                None
                            }
                        }
                    },
                );
                let stream = futures_util::stream::once(async move {
                    Ok::<_, std::io::Error>(Frame::data(Bytes::from(head)))
                })
                .chain(tail);
                StreamBody::new(stream).boxed_unsync()
            }
        };
        let authority = if target.host.contains(':') {
            format!("[{}]:{}", target.host, target.port)
        } else {
            format!("{}:{}", target.host, target.port)
        };
        let mut request = hyper::Request::post(target.path.as_str())
            .header(hyper::header::HOST, authority)
            .header(hyper::header::CONTENT_TYPE, "application/ipp")
            .header(hyper::header::USER_AGENT, "printbridge");
        // Never logged: the credential goes only into this header.
        if let Some(a) = authorization.or(target.authorization) {
            let mut value =
                hyper::header::HeaderValue::from_str(&a).map_err(|_| LinkError::Exchange {
                    uri: self.uri.clone(),
                    why: "the credentials cannot be sent in an HTTP header".into(),
                })?;
            value.set_sensitive(true);
            request = request.header(hyper::header::AUTHORIZATION, value);
        }
        let request = request.body(body).map_err(|e| LinkError::Exchange {
            uri: self.uri.clone(),
            why: format!("cannot build the request: {e}"),
        })?;
        let timeout = self.settings.timeout;
        let send = async {
            let resp = sender.send_request(request).await?;
            let status = resp.status();
            let bytes = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map(|c| c.to_bytes());
            Ok::<_, hyper::Error>((status, bytes))
        };
        // A watchdog instead of one deadline: a big document may take long, a stall may not.
        let watchdog = async {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let (last, done) = *progress.lock().expect("progress lock");
                let limit = if done { timeout * 4 } else { timeout };
                if last.elapsed() > limit {
                    return limit;
                }
            }
        };
        let result = tokio::select! {
            r = send => r,
            limit = watchdog => {
                return Err(LinkError::Exchange {
                    uri: self.uri.clone(),
                    why: format!("no progress for {} s", limit.as_secs()),
                });
            }
        };
        if canceled.load(Ordering::Relaxed) {
            return Err(LinkError::Canceled);
        }
        if let Some(why) = doc_error.lock().expect("doc error lock").take() {
            return Err(LinkError::Document(why));
        }
        let exchange = |why: String| LinkError::Exchange {
            uri: self.uri.clone(),
            why,
        };
        let (status, body) = result.map_err(|e| exchange(format!("HTTP: {e}")))?;
        if status != hyper::StatusCode::OK {
            return Err(LinkError::Http {
                uri: self.uri.clone(),
                status: status.as_u16(),
            });
        }
        let body = body.map_err(|e| {
            exchange(format!(
                "answer not read (over {MAX_RESPONSE_BYTES} bytes or broken): {e}"
            ))
        })?;
        let (msg, _) = parse_message(&body, &self.limits)
            .map_err(|e| exchange(format!("answer is not valid IPP: {e}")))?;
        if msg.request_id != req.request_id {
            return Err(exchange(format!(
                "answer is for request {} instead of {}",
                msg.request_id, req.request_id
            )));
        }
        Ok(msg)
    }

    /// Decides how each document goes out: as it is when the printer takes its format, else
    /// rasterized from its PDF for a raster-only printer.
    async fn plan(&self, job: &DeviceJob, printer: &Downstream) -> Result<Vec<Plan>, DeviceError> {
        let documents = super::documents_to_send(job);
        let mut plans = Vec::with_capacity(documents.len());
        // To the cloud, documents travel gzip-compressed when it takes that: the big PDFs some
        // systems send cost a fraction on the way (issue 13).
        let gzip = self.is_cloud() && printer.compression.iter().any(|c| c == "gzip");
        for doc in &documents {
            if let Some(pdf) = pdf_of(job, doc).await? {
                if printer.takes("application/pdf") {
                    plans.push(Plan {
                        doc: pdf,
                        format: "application/pdf".into(),
                        raster: None,
                        gzip,
                    });
                    continue;
                }
            }
            let format = effective_format(doc).await;
            if printer.takes(&format) {
                plans.push(Plan {
                    doc: doc.clone(),
                    format,
                    raster: None,
                    gzip,
                });
                continue;
            }
            match (pdf_of(job, doc).await?, printer.raster_format()) {
                (Some(pdf), Some(raster)) => plans.push(Plan {
                    doc: pdf,
                    format: raster.to_string(),
                    raster: Some(RasterRequest {
                        format: raster,
                        resolution_dpi: printer
                            .raster_resolution(self.settings.resolution_dpi, raster),
                        color: printer
                            .raster_color(raster, job.ticket.color_mode == ColorMode::Monochrome),
                        threads: self.settings.raster_threads,
                        counters: self.settings.raster_counters.clone(),
                    }),
                    gzip: false,
                }),
                _ => {
                    return Err(DeviceError::Fatal {
                        reason: "document-format-error",
                        message: format!(
                            "{} does not take {format} (it takes {})",
                            self.uri,
                            printer.formats.join(", ")
                        ),
                    })
                }
            }
        }
        Ok(plans)
    }

    fn source(&self, plan: &Plan, cancel: &Arc<AtomicBool>) -> Chunks {
        let chunks = match &plan.raster {
            None => read_chunks(&plan.doc, 4),
            Some(want) => rasterize(&plan.doc, want.clone(), cancel.clone()),
        };
        if plan.gzip {
            gzip_chunks(chunks)
        } else {
            chunks
        }
    }

    /// Puts the document operation attributes of `plan` into `req`.
    fn push_document(req: &mut Message, plan: &Plan) {
        let g = req.group_mut(tag::OPERATION);
        g.push(Attribute::new(
            "document-format",
            Value::MimeMediaType(plan.format.clone()),
        ));
        if plan.gzip {
            g.push(Attribute::new("compression", Value::Keyword("gzip".into())));
        }
    }

    /// A cloud job is created on behalf of the person who printed: requesting-user-name is their
    /// cloud address (docs/bridge.md "Who a LAN user is in the cloud"). No address: the job
    /// cannot go to the cloud and ends with where to ask for access.
    fn on_behalf(&self, req: &mut Message, job: &DeviceJob) -> Result<(), DeviceError> {
        let Some((link, _)) = &self.cloud else {
            return Ok(());
        };
        let Some(user) = link.cloud_user(&job.owner) else {
            return Err(DeviceError::Fatal {
                reason: "aborted-by-system",
                message: format!(
                    "'{}' has no cloud account this appliance knows of. {}",
                    super::checked_text(&job.owner, 64),
                    link.access_hint()
                ),
            });
        };
        if let Some(a) = req
            .group_mut(tag::OPERATION)
            .attributes
            .iter_mut()
            .find(|a| a.name == "requesting-user-name")
        {
            a.values = vec![Value::Name(user)];
        }
        Ok(())
    }

    /// A transport failure while handing a job over: the job waits and the monitor looks again.
    fn link_failed(&self, e: LinkError) -> DeviceError {
        match e {
            LinkError::Canceled => DeviceError::Canceled,
            LinkError::Document(e) => e.into(),
            e => {
                self.reporter.offline(e.to_string());
                self.wake.notify_one();
                DeviceError::Retry(e.to_string())
            }
        }
    }

    async fn print_job(
        &self,
        job: &DeviceJob,
        cancel: &Arc<AtomicBool>,
    ) -> Result<(), DeviceError> {
        self.reporter.connecting();
        let printer = self.query().await.map_err(|e| {
            self.wake.notify_one();
            DeviceError::Retry(e.to_string())
        })?;
        let plans = self.plan(job, &printer).await?;
        // A job handed over before a crash: the printer says what became of it before anything
        // is sent again (a job is never printed twice).
        let mut first = 0;
        if let Some(ledger) = &job.ledger {
            let record = ledger.lookup(job.id).await.map_err(|e| {
                DeviceError::Retry(format!("cannot read the downstream job record: {e}"))
            })?;
            if let Some(record) = record {
                match self
                    .resume(job, ledger.as_ref(), &record, plans.len(), cancel)
                    .await?
                {
                    Resumed::Finished => return Ok(()),
                    Resumed::SendFrom(i) => first = i,
                }
            }
        }
        if !printer.accepting {
            return Err(DeviceError::Retry(format!(
                "{} is not accepting jobs",
                self.uri
            )));
        }
        if plans.is_empty() {
            self.reporter.online();
            return Ok(());
        }
        let options = self.job_options(job, &printer);
        // Create-Job whenever the printer has it: its job-id is known and recorded before the
        // document goes out, which Print-Job cannot offer (RFC 8011 §4.2.4).
        if printer.multi_document() {
            let job_id = self.create_job(job, &options).await?;
            fault_point("before-record");
            let job_uuid = self.job_uuid(job_id).await;
            let mut record = DownstreamRecord {
                printer_uri: self.uri.clone(),
                // One downstream job carries every document.
                document: plans.len() as u32 - 1,
                job_id: Some(job_id),
                job_uuid,
                submitted: false,
            };
            if let Err(e) = self.remember(job, &record).await {
                self.cancel_downstream(job_id).await;
                return Err(e);
            }
            fault_point("after-create-job");
            self.reporter.online();
            for (i, plan) in plans.iter().enumerate() {
                let last = i + 1 == plans.len();
                if let Err(e) = self.send_document(job_id, plan, last, cancel).await {
                    // Never leave half a job at the printer: it would print what it got. Once it
                    // is canceled there, the record no longer speaks for this job.
                    if self.cancel_downstream(job_id).await {
                        self.forget(job).await;
                    }
                    return Err(e);
                }
            }
            record.submitted = true;
            if let Err(e) = self.remember(job, &record).await {
                // The downstream job has its document; a retry still finds it by the first record.
                tracing::warn!(job = job.id, "{e:?}");
            }
            self.follow(job, job_id, cancel).await
        } else {
            // Print-Job carries one document: each document becomes a job of its own.
            for (i, plan) in plans.iter().enumerate().skip(first) {
                let mut record = DownstreamRecord {
                    printer_uri: self.uri.clone(),
                    document: i as u32,
                    job_id: None,
                    job_uuid: None,
                    submitted: false,
                };
                self.remember(job, &record).await?;
                let job_id = self.print_one(job, plan, &options, cancel).await?;
                record.job_uuid = self.job_uuid(job_id).await;
                record.job_id = Some(job_id);
                record.submitted = true;
                self.remember(job, &record).await?;
                self.reporter.online();
                self.follow(job, job_id, cancel).await?;
            }
            Ok(())
        }
    }

    /// Stores `record` durably before the printer may print what it describes; a job whose
    /// record cannot be stored is not sent (it waits and tries again).
    async fn remember(
        &self,
        job: &DeviceJob,
        record: &DownstreamRecord,
    ) -> Result<(), DeviceError> {
        match &job.ledger {
            None => Ok(()),
            Some(ledger) => ledger
                .record(job.id, record)
                .await
                .map_err(|e| DeviceError::Retry(format!("cannot record the downstream job: {e}"))),
        }
    }

    async fn forget(&self, job: &DeviceJob) {
        if let Some(ledger) = &job.ledger {
            if let Err(e) = ledger.clear(job.id).await {
                tracing::warn!(job = job.id, "cannot clear the downstream job record: {e}");
            }
        }
    }

    /// Picks a job up where a crashed attempt left it, from what the printer says about the
    /// recorded job: completed → done; pending, held or processing → followed to its end;
    /// canceled or aborted → ours ends the same way; unknown to the printer (it restarted and
    /// forgot) → sent again.
    async fn resume(
        &self,
        job: &DeviceJob,
        ledger: &dyn JobLedger,
        record: &DownstreamRecord,
        documents: usize,
        cancel: &Arc<AtomicBool>,
    ) -> Result<Resumed, DeviceError> {
        if record.printer_uri != self.uri {
            return Err(DeviceError::Fatal {
                reason: "aborted-by-system",
                message: format!(
                    "the job was handed to {} before the output device changed to {}; it is not sent again",
                    record.printer_uri, self.uri
                ),
            });
        }
        let Some(job_id) = record.job_id else {
            // Print-Job was on its way when we stopped: whether the printer got it is unknowable,
            // and sending it again could print it twice (docs/config.md).
            return Err(DeviceError::Fatal {
                reason: "aborted-by-system",
                message: format!(
                    "printbridge stopped while sending the job to {} with Print-Job; the printer \
                     may have printed it, so it is not sent again (print it again if nothing came out)",
                    self.uri
                ),
            });
        };
        let found = match self.job_status(job_id).await {
            Ok(found) => found,
            Err(e @ LinkError::Status { .. }) => return Err(DeviceError::Retry(e.to_string())),
            Err(e) => return Err(self.link_failed(e)),
        };
        let forgotten = match &found {
            None => true,
            Some(down) => matches!(
                (&record.job_uuid, &down.uuid),
                (Some(ours), Some(theirs)) if ours != theirs
            ),
        };
        if forgotten {
            tracing::warn!(
                job = job.id,
                "{}: job {job_id} is unknown to the printer (it restarted?); sending the job again",
                self.uri
            );
            ledger.clear(job.id).await.map_err(|e| {
                DeviceError::Retry(format!("cannot clear the downstream job record: {e}"))
            })?;
            return Ok(Resumed::SendFrom(record.document as usize));
        }
        let down = found.expect("not forgotten");
        // Create-Job answered but the document never arrived: nothing can print, so the empty
        // job is taken back and the job sent anew.
        // (A cloud job waiting for its documents says job-incoming; the cloud aborts it with
        // job-data-insufficient after its time-out: either way nothing of it printed.)
        let incomplete = !record.submitted
            && down
                .reasons
                .iter()
                .any(|r| r == "job-data-insufficient" || r == "job-incoming");
        if incomplete && matches!(down.state, 3 | 4 | 8) {
            if down.state != 8 && !self.cancel_downstream(job_id).await {
                return Err(DeviceError::Retry(format!(
                    "{}: cannot cancel the incomplete job {job_id} left by an earlier attempt",
                    self.uri
                )));
            }
            tracing::info!(
                job = job.id,
                "{}: job {job_id} never got its document; sending the job again",
                self.uri
            );
            ledger.clear(job.id).await.map_err(|e| {
                DeviceError::Retry(format!("cannot clear the downstream job record: {e}"))
            })?;
            return Ok(Resumed::SendFrom(record.document as usize));
        }
        tracing::info!(
            job = job.id,
            "{}: following job {job_id} from an earlier attempt (state {})",
            self.uri,
            down.state
        );
        self.reporter.online();
        self.follow(job, job_id, cancel).await?;
        let next = record.document as usize + 1;
        Ok(if next < documents {
            Resumed::SendFrom(next)
        } else {
            Resumed::Finished
        })
    }

    /// The job options the printer is told (RFC 8011 §5.2, PWG 5100.13), from what the person
    /// asked for and only with values the printer lists in its `*-supported`. copies, number-up
    /// and page-ranges are already in the rendered PDF, and so is orientation-requested (the
    /// renderer turns the pages): passing them on would apply them twice.
    fn job_options(&self, job: &DeviceJob, printer: &Downstream) -> Vec<Attribute> {
        if self.is_cloud() {
            // The documents go as received: every job template attribute the person chose goes
            // along, for the cloud's output device to apply (the cloud reports what it does not
            // support and ignores it). Holding is this appliance's business.
            return job
                .attributes
                .iter()
                .filter(|a| {
                    crate::codec::ipp_attr::JOB_TEMPLATE.contains(&a.name.as_str())
                        && !matches!(a.name.as_str(), "job-hold-until" | "job-priority")
                })
                .cloned()
                .collect();
        }
        let asked = |name: &str| {
            job.attributes
                .iter()
                .find(|a| a.name == name)
                .and_then(|a| a.first())
        };
        let mut out = Vec::new();
        let mut keyword = |name: &str, value: Option<&str>, supported: &[String]| {
            let Some(k) = value else { return };
            if supported.iter().any(|s| s == k) {
                out.push(Attribute::new(name, Value::Keyword(k.to_string())));
            } else {
                tracing::debug!(
                    job = job.id,
                    "{} does not list {name} {k}; left to the printer",
                    self.uri
                );
            }
        };
        keyword(
            "sides",
            asked("sides").and_then(Value::as_str),
            &printer.capabilities.sides_supported,
        );
        // media-col becomes the media name the ticket read from it: the printer picks its
        // source and type itself, as with a plain media keyword.
        let media = asked("media")
            .and_then(Value::as_str)
            .or_else(|| asked("media-col").map(|_| job.ticket.media.name.as_str()));
        keyword("media", media, &printer.capabilities.media_supported);
        keyword(
            "print-color-mode",
            asked("print-color-mode").and_then(Value::as_str),
            &printer.capabilities.print_color_mode_supported,
        );
        keyword(
            "output-bin",
            asked("output-bin").and_then(Value::as_str),
            &printer.output_bins,
        );
        if let Some(q) = asked("print-quality").and_then(Value::as_int) {
            if printer.qualities.contains(&q) {
                out.push(Attribute::new("print-quality", Value::Enum(q)));
            } else {
                tracing::debug!(
                    job = job.id,
                    "{} does not list print-quality {q}; left to the printer",
                    self.uri
                );
            }
        }
        out
    }

    async fn create_job(&self, job: &DeviceJob, options: &[Attribute]) -> Result<i32, DeviceError> {
        let mut req = self.request(OP_CREATE_JOB);
        req.group_mut(tag::OPERATION)
            .push(Attribute::new("job-name", Value::Name(job_name(job))));
        self.on_behalf(&mut req, job)?;
        push_options(&mut req, options);
        let resp = self
            .exchange(&req, None, &Arc::default())
            .await
            .map_err(|e| self.link_failed(e))?;
        self.accepted(&resp, "Create-Job")?;
        job_id_of(&resp).ok_or_else(|| {
            DeviceError::Retry(format!(
                "{}: Create-Job answered without a job-id",
                self.uri
            ))
        })
    }

    /// The printer's job-uuid of a job it just made, when it has one (PWG 5100.13 §5.3); the
    /// creation answer rarely carries it.
    async fn job_uuid(&self, job_id: i32) -> Option<String> {
        match self.job_status(job_id).await {
            Ok(Some(down)) => down.uuid,
            Ok(None) => None,
            Err(e) => {
                tracing::debug!("{}: no job-uuid for job {job_id}: {e}", self.uri);
                None
            }
        }
    }

    /// Get-Job-Attributes (RFC 8011 §4.3.4) of a job at the printer; `None` when it does not
    /// know the job.
    async fn job_status(&self, job_id: i32) -> Result<Option<DownJob>, LinkError> {
        let mut req = self.request(OP_GET_JOB_ATTRIBUTES);
        let g = req.group_mut(tag::OPERATION);
        g.push(Attribute::new("job-id", Value::Integer(job_id)));
        g.push(Attribute::set(
            "requested-attributes",
            [
                "job-state",
                "job-state-reasons",
                "job-state-message",
                "job-uuid",
                "job-impressions-completed",
                "job-media-sheets-completed",
            ]
            .iter()
            .map(|k| Value::Keyword(k.to_string()))
            .collect(),
        ));
        let resp = self.exchange(&req, None, &Arc::default()).await?;
        match resp.code {
            NOT_FOUND => Ok(None),
            code if status::is_successful(code) => Ok(Some(DownJob::from_response(&resp))),
            _ => Err(LinkError::Status {
                uri: self.uri.clone(),
                why: format!("Get-Job-Attributes answered {}", status_text(&resp)),
            }),
        }
    }

    async fn send_document(
        &self,
        job_id: i32,
        plan: &Plan,
        last: bool,
        cancel: &Arc<AtomicBool>,
    ) -> Result<(), DeviceError> {
        let mut req = self.request(OP_SEND_DOCUMENT);
        let g = req.group_mut(tag::OPERATION);
        g.push(Attribute::new("job-id", Value::Integer(job_id)));
        g.push(Attribute::new("last-document", Value::Boolean(last)));
        Self::push_document(&mut req, plan);
        let body = self.source(plan, cancel);
        let resp = self
            .exchange(&req, Some(body), cancel)
            .await
            .map_err(|e| self.link_failed(e))?;
        self.accepted(&resp, "Send-Document")
    }

    /// Print-Job; the caller recorded it as in flight. When it surely did not reach the printer
    /// (no connection, refused, the document broke before the request ended) the mark is
    /// cleared, so that only a truly unknown outcome stops the job from being sent again.
    async fn print_one(
        &self,
        job: &DeviceJob,
        plan: &Plan,
        options: &[Attribute],
        cancel: &Arc<AtomicBool>,
    ) -> Result<i32, DeviceError> {
        let mut req = self.request(OP_PRINT_JOB);
        let g = req.group_mut(tag::OPERATION);
        g.push(Attribute::new("job-name", Value::Name(job_name(job))));
        Self::push_document(&mut req, plan);
        if let Err(e) = self.on_behalf(&mut req, job) {
            self.forget(job).await;
            return Err(e);
        }
        push_options(&mut req, options);
        let body = self.source(plan, cancel);
        let resp = match self.exchange(&req, Some(body), cancel).await {
            Ok(resp) => resp,
            Err(e) => {
                if matches!(e, LinkError::Unreachable { .. } | LinkError::Document(_)) {
                    self.forget(job).await;
                }
                return Err(self.link_failed(e));
            }
        };
        if let Err(e) = self.accepted(&resp, "Print-Job") {
            self.forget(job).await;
            return Err(e);
        }
        job_id_of(&resp).ok_or_else(|| {
            DeviceError::Retry(format!("{}: Print-Job answered without a job-id", self.uri))
        })
    }

    /// Maps the printer's status code (RFC 8011 §4.1.6, Appendix B): busy or not accepting
    /// keeps our job waiting; a refusal of the job itself ends it.
    fn accepted(&self, resp: &Message, op: &str) -> Result<(), DeviceError> {
        match resp.code {
            code if status::is_successful(code) => Ok(()),
            // The cloud refuses the person (not allowed on this appliance or on the printer):
            // waiting changes nothing, the job ends saying where to ask for access.
            status::NOT_AUTHORIZED | status::FORBIDDEN if self.is_cloud() => {
                let hint = self
                    .cloud
                    .as_ref()
                    .map(|(l, _)| l.access_hint())
                    .unwrap_or_default();
                Err(DeviceError::Fatal {
                    reason: "aborted-by-system",
                    message: format!("the cloud refused the job: {}. {hint}", status_text(resp)),
                })
            }
            // The printer is busy or paused, or needs credentials an administrator can fix.
            status::SERVICE_UNAVAILABLE
            | status::TEMPORARY_ERROR
            | status::NOT_ACCEPTING_JOBS
            | status::BUSY
            | status::FORBIDDEN
            | status::NOT_AUTHENTICATED
            | status::NOT_AUTHORIZED => {
                let why = format!("{}: {op} answered {}", self.uri, status_text(resp));
                self.reporter.waiting();
                Err(DeviceError::Retry(why))
            }
            DOCUMENT_FORMAT_NOT_SUPPORTED => Err(DeviceError::Fatal {
                reason: "document-format-error",
                message: format!("the printer refused the document: {}", status_text(resp)),
            }),
            code if status::is_server_error(code) => Err(DeviceError::Retry(format!(
                "{}: {op} answered {}",
                self.uri,
                status_text(resp)
            ))),
            _ => Err(DeviceError::Fatal {
                reason: "aborted-by-system",
                message: format!("the printer refused the job: {}", status_text(resp)),
            }),
        }
    }

    /// Follows a job at the printer until it ends (RFC 8011 §5.3.7 job-state). Once a job is
    /// there, it is never sent again: lost contact is waited out, not retried.
    async fn follow(
        &self,
        job: &DeviceJob,
        job_id: i32,
        cancel: &Arc<AtomicBool>,
    ) -> Result<(), DeviceError> {
        let mut shown = (0, 0);
        loop {
            if cancel.load(Ordering::Relaxed) {
                self.cancel_downstream(job_id).await;
                // Our job is already canceled; the printer's answer changes nothing.
                return Err(DeviceError::Canceled);
            }
            match self.job_status(job_id).await {
                Ok(None) => {
                    // Like CUPS: a job the printer no longer knows has ended there.
                    tracing::warn!(
                        "{}: job {job_id} is gone from the printer; taking it as completed",
                        self.uri
                    );
                    return Ok(());
                }
                Ok(Some(down)) => {
                    self.reporter.waiting();
                    // The printer's count of what it printed shows in our job as it goes
                    // (print dialogs show "page 3 of 10").
                    let counts = (
                        down.impressions.unwrap_or(shown.0),
                        down.sheets.unwrap_or(shown.1),
                    );
                    if counts != shown && matches!(down.state, 5 | 6 | 9) {
                        if let Some(ledger) = &job.ledger {
                            if let Err(e) = ledger.progress(job.id, counts.0, counts.1).await {
                                tracing::debug!(job = job.id, "progress not recorded: {e}");
                            }
                        }
                        shown = counts;
                    }
                    let detail = if down.message.is_empty() {
                        down.reasons.join(", ")
                    } else {
                        format!("{} ({})", down.message, down.reasons.join(", "))
                    };
                    match down.state {
                        9 => return Ok(()),
                        7 => {
                            return Err(DeviceError::Fatal {
                                reason: "job-canceled-at-device",
                                message: format!("the job was canceled at the printer: {detail}"),
                            })
                        }
                        8 => {
                            return Err(DeviceError::Fatal {
                                reason: "aborted-by-system",
                                message: format!("the printer aborted the job: {detail}"),
                            })
                        }
                        _ => {}
                    }
                }
                Err(e @ LinkError::Status { .. }) => tracing::warn!("{e}"),
                Err(e) => {
                    self.reporter.offline(e.to_string());
                    self.wake.notify_one();
                }
            }
            tokio::time::sleep(JOB_POLL).await;
        }
    }

    /// Identify-Printer (PWG 5100.13 §4.1.2) when the printer lists it in operations-supported,
    /// with those of `actions` it supports (identify-actions-supported is not asked for: a
    /// printer that does not know a keyword answers with it unsupported, and the printer's own
    /// default is used when none is valid).
    async fn identify_printer(&self, actions: &[String]) -> super::Identified {
        use super::Identified;
        let known = match self.last_known() {
            Some(d) => Some(d),
            None => self.query().await.ok(),
        };
        let Some(printer) = known else {
            return Identified::Failed(format!("{} has not answered yet", self.uri));
        };
        if !printer.operations.contains(&(OP_IDENTIFY_PRINTER as i32)) {
            return Identified::Unsupported;
        }
        let mut req = self.request(OP_IDENTIFY_PRINTER);
        let actions: Vec<Value> = actions
            .iter()
            .filter(|a| IDENTIFY_ACTIONS.contains(&a.as_str()))
            .map(|a| Value::Keyword(a.clone()))
            .collect();
        if !actions.is_empty() {
            req.group_mut(tag::OPERATION)
                .push(Attribute::set("identify-actions", actions));
        }
        match self.exchange(&req, None, &Arc::default()).await {
            Ok(resp) if resp.code < 0x0100 => {
                tracing::info!("{}: Identify-Printer accepted", self.uri);
                Identified::Done(format!("{} identified", self.uri))
            }
            Ok(resp) => Identified::Failed(format!(
                "{}: Identify-Printer answered {}",
                self.uri,
                status_text(&resp)
            )),
            Err(e) => Identified::Failed(e.to_string()),
        }
    }

    /// Cancel-Job at the printer (RFC 8011 §4.3.3), best effort; whether the printer said yes.
    async fn cancel_downstream(&self, job_id: i32) -> bool {
        let mut req = self.request(OP_CANCEL_JOB);
        req.group_mut(tag::OPERATION)
            .push(Attribute::new("job-id", Value::Integer(job_id)));
        match self.exchange(&req, None, &Arc::default()).await {
            Ok(resp) if resp.code < 0x0100 => {
                tracing::info!("{}: canceled job {job_id} there", self.uri);
                true
            }
            Ok(resp) => {
                tracing::warn!(
                    "{}: Cancel-Job {job_id} answered {}",
                    self.uri,
                    status_text(&resp)
                );
                false
            }
            Err(e) => {
                tracing::warn!("{}: cannot cancel job {job_id}: {e}", self.uri);
                false
            }
        }
    }
}

impl Device for IppDevice {
    fn print<'a>(&'a self, job: &'a DeviceJob, cancel: Arc<AtomicBool>) -> DeviceFuture<'a> {
        Box::pin(async move { self.print_job(job, &cancel).await })
    }

    /// The job's options (copies, n-up, page ranges, ...) are applied once, here, so the printer
    /// gets one PDF that already looks as asked.
    fn wants_rendered_pdf(&self) -> bool {
        // The cloud gets the documents as they came, with the options to apply.
        !self.is_cloud()
    }

    /// From what the printer said last; a printer never heard from gets the gray layer.
    fn makes_monochrome_itself(&self) -> bool {
        self.last_known().is_some_and(|d| d.gets_gray_raster())
    }

    /// The spool's ledger holds the downstream job before the printer can print it, and the retry
    /// after the restart asks the printer first (or aborts when it cannot know): never twice.
    fn interrupted(&self, _job: u32) -> super::Interruption {
        super::Interruption::SafeToResend
    }

    fn identify<'a>(&'a self, actions: &'a [String]) -> super::IdentifyFuture<'a> {
        Box::pin(self.identify_printer(actions))
    }
}

async fn handshake<T>(io: T) -> Result<hyper::client::conn::http1::SendRequest<Body>, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("output device connection: {e}");
        }
    });
    Ok(sender)
}

/// A debug-build fault point: `PRINTBRIDGE_TEST_FAULT=outbound-abort:<step>` (steps
/// `before-record`, `after-create-job`) makes the process die there, as under kill -9, for the
/// crash tests of tests/bridge_outbound.rs. A release build never reads the variable.
fn fault_point(step: &str) {
    #[cfg(debug_assertions)]
    if let Ok(spec) = std::env::var("PRINTBRIDGE_TEST_FAULT") {
        if spec
            .split(',')
            .any(|one| one.strip_prefix("outbound-abort:") == Some(step))
        {
            tracing::error!("fault injected by PRINTBRIDGE_TEST_FAULT: the process dies at {step}");
            std::process::abort();
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}

/// Level 2, not 1 (`Compression::fast`): zlib-rs's level 1 (deflate_quick) codes every block with
/// the static Huffman table and never falls back to stored blocks, so incompressible data (the
/// images of a big PDF) grew by about 5.5% and a 500 MB document became larger than the cloud's
/// 512 MiB limit on the way (issue 13). From level 2 on, deflate stores what does not shrink
/// (RFC 1951 §3.2.4): at most a few bytes per 64 KiB more than the document.
const GZIP_LEVEL: u32 = 2;

/// Compresses chunks with gzip (RFC 1952) on the way, in a blocking thread, chunk by chunk: the
/// whole document is never in memory.
fn gzip_chunks(mut input: Chunks) -> Chunks {
    use std::io::Write;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut encoder =
            flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(GZIP_LEVEL));
        let send = |tx: &tokio::sync::mpsc::Sender<_>, buf: &mut Vec<u8>| {
            if buf.is_empty() {
                return true;
            }
            let chunk = Bytes::from(std::mem::take(buf));
            tx.blocking_send(Ok(chunk)).is_ok()
        };
        while let Some(item) = input.blocking_recv() {
            match item {
                Ok(chunk) => {
                    if encoder.write_all(&chunk).is_err() {
                        return;
                    }
                    if encoder.get_ref().len() >= 64 * 1024 && !send(&tx, encoder.get_mut()) {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
        if let Ok(mut rest) = encoder.finish() {
            send(&tx, &mut rest);
        }
    });
    rx
}

fn job_name(job: &DeviceJob) -> String {
    let name = super::checked_text(&job.name, 255);
    if name.is_empty() {
        format!("job {}", job.id)
    } else {
        name
    }
}

/// The job options go in the job attributes group (RFC 8011 §4.2.1.1).
fn push_options(req: &mut Message, options: &[Attribute]) {
    if options.is_empty() {
        return;
    }
    let g = req.group_mut(tag::JOB);
    for a in options {
        g.push(a.clone());
    }
}

fn job_id_of(resp: &Message) -> Option<i32> {
    resp.group(tag::JOB)
        .and_then(|g| g.get("job-id"))
        .and_then(|a| a.first())
        .and_then(Value::as_int)
        .filter(|id| *id > 0)
}

/// `0x0507 (Printer busy)`: the status code and, when the printer sent one, its status-message.
fn status_text(resp: &Message) -> String {
    let message = resp
        .group(tag::OPERATION)
        .and_then(|g| g.get("status-message"))
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .map(|s| super::checked_text(s, 255))
        .unwrap_or_default();
    if message.is_empty() {
        format!("0x{:04x}", resp.code)
    } else {
        format!("0x{:04x} ({message})", resp.code)
    }
}

/// What goes into printer-uri for a device: `ipp://host:port/path` (`[v6]:port`).
fn printer_uri(tls: bool, host: &str, port: u16, path: &str) -> String {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let scheme = if tls { "ipps" } else { "ipp" };
    format!("{scheme}://{authority}{path}")
}

// ---- the printer's capabilities at queue start, and the copy kept of them ----

/// Asks the printer at `uri` once what it can do (Get-Printer-Attributes over the device's own
/// request path, TLS and certificate pinning), giving up after `limit` altogether.
pub async fn probe(
    uri: &DeviceUri,
    settings: &Settings,
    limit: Duration,
) -> Result<DownstreamCaps, String> {
    let limit = limit.max(Duration::from_secs(1));
    let mut settings = settings.clone();
    settings.timeout = settings.timeout.min(limit);
    let (reporter, _status) = Reporter::new();
    let device = IppDevice::new(uri, &settings, reporter).map_err(|e| e.to_string())?;
    match tokio::time::timeout(limit, device.query()).await {
        Ok(Ok(d)) => Ok(d.capabilities.clone()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "{}: no answer within {} s",
            device.uri,
            limit.as_secs()
        )),
    }
}

/// The printer's capabilities as it last told them, kept in a queue's directory
/// (`device-capabilities.json`) for a start while it does not answer. The file names the device
/// it describes: after `device_uri` changed it is not used.
#[derive(Debug, Clone)]
pub struct CapabilityCache {
    path: PathBuf,
    device_uri: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
struct CacheFile {
    device_uri: String,
    printer: DownstreamCaps,
}

/// The largest cache file read back; a real one is a few KiB.
const MAX_CACHE_BYTES: u64 = 1024 * 1024;

impl CapabilityCache {
    pub const FILE_NAME: &'static str = "device-capabilities.json";

    /// The cache of the queue whose directory is `queue_dir`, for the device `uri`; `None` when
    /// `uri` is not an ipp(s):// device.
    pub fn new(queue_dir: &std::path::Path, uri: &DeviceUri) -> Option<CapabilityCache> {
        let DeviceUri::Ipp {
            tls,
            host,
            port,
            path,
        } = uri
        else {
            return None;
        };
        Some(CapabilityCache {
            path: queue_dir.join(Self::FILE_NAME),
            device_uri: printer_uri(*tls, host, *port, path),
        })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The device it is for, as printer-uri: `ipp://host:port/path`.
    pub fn device_uri(&self) -> &str {
        &self.device_uri
    }

    /// What the file holds: `Ok(None)` when there is none; an error (for the log) when it cannot
    /// be read, is not ours or describes another device. The values are checked again by
    /// [`crate::model::printer::Capabilities::from_downstream`].
    pub fn load(&self) -> Result<Option<DownstreamCaps>, String> {
        use std::io::Read;
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", self.path.display())),
        };
        let mut bytes = Vec::new();
        file.take(MAX_CACHE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        if bytes.len() as u64 > MAX_CACHE_BYTES {
            return Err(format!(
                "{}: larger than {MAX_CACHE_BYTES} bytes",
                self.path.display()
            ));
        }
        let file: CacheFile =
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", self.path.display()))?;
        if file.device_uri != self.device_uri {
            return Err(format!(
                "{} describes {}, not {}",
                self.path.display(),
                checked_text(&file.device_uri, 255),
                self.device_uri
            ));
        }
        Ok(Some(file.printer))
    }

    /// Replaces the file with `caps`, durably (written aside, fsynced, renamed over).
    pub fn store(&self, caps: &DownstreamCaps) -> Result<(), String> {
        use std::io::Write;
        let fail = |e: std::io::Error| format!("cannot write {}: {e}", self.path.display());
        let json = serde_json::to_vec_pretty(&CacheFile {
            device_uri: self.device_uri.clone(),
            printer: caps.clone(),
        })
        .map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
        let dir = self.path.parent().unwrap_or(std::path::Path::new("."));
        std::fs::create_dir_all(dir).map_err(fail)?;
        let tmp = self.path.with_extension("json.partial");
        let mut f = std::fs::File::create(&tmp).map_err(fail)?;
        f.write_all(&json)
            .and_then(|_| f.write_all(b"\n"))
            .and_then(|_| f.sync_all())
            .map_err(fail)?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(fail)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

// ---- ipps:// trust on first use ----

/// A TLS client configuration that accepts the printer's certificate the first time and, from then
/// on, only that certificate (its SHA-256 pinned in `<state>/device-certs/<host>-<port>.sha256`).
fn tofu_config(
    settings: &Settings,
    host: &str,
    port: u16,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let dir = settings.state_dir.join("device-certs");
    // The host comes from the configuration file, never from the network; sanitized anyway.
    let pin = dir.join(format!(
        "{}-{port}.sha256",
        super::file::sanitize(&host.replace(':', "_"))
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(TofuVerifier {
        pin,
        provider: provider.clone(),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct TofuVerifier {
    pin: PathBuf,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl TofuVerifier {
    fn check(&self, fingerprint: &str) -> Result<(), String> {
        match std::fs::read_to_string(&self.pin) {
            Ok(pinned) if pinned.trim().eq_ignore_ascii_case(fingerprint) => Ok(()),
            Ok(pinned) => Err(format!(
                "the printer's certificate changed (SHA-256 {fingerprint}, pinned {} in {}); \
                 delete that file to trust the new certificate",
                pinned.trim(),
                self.pin.display()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = self.pin.parent().unwrap_or(std::path::Path::new("."));
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                let tmp = self.pin.with_extension("partial");
                std::fs::write(&tmp, format!("{fingerprint}\n"))
                    .and_then(|_| std::fs::rename(&tmp, &self.pin))
                    .map_err(|e| {
                        format!("cannot pin the certificate in {}: {e}", self.pin.display())
                    })?;
                tracing::info!(
                    "trusting the output device's certificate on first use: SHA-256 {fingerprint} (pinned in {})",
                    self.pin.display()
                );
                Ok(())
            }
            Err(e) => Err(format!("cannot read {}: {e}", self.pin.display())),
        }
    }
}

impl rustls::client::danger::ServerCertVerifier for TofuVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let fingerprint: String = sha2::Sha256::digest(end_entity.as_ref())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.check(&fingerprint)
            .map(|()| rustls::client::danger::ServerCertVerified::assertion())
            .map_err(rustls::Error::General)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Incompressible data (the images of a big PDF) sent gzip-compressed to the cloud stays
    /// about its size: zlib-rs's level 1 made it 5.5% larger, past the cloud's document limit.
    #[tokio::test]
    async fn gzip_in_transit_hardly_grows_incompressible_data() {
        for (len, chunk) in [(3 << 20, 65_536), ((5 << 20) + 12_345, 10_000)] {
            let mut noise = Vec::with_capacity(len + 8);
            let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ len as u64;
            while noise.len() < len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                noise.extend_from_slice(&x.to_le_bytes());
            }
            noise.truncate(len);
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            let input = noise.clone();
            tokio::spawn(async move {
                for c in input.chunks(chunk) {
                    if tx.send(Ok(Bytes::copy_from_slice(c))).await.is_err() {
                        return;
                    }
                }
            });
            let mut out = gzip_chunks(rx);
            let mut gz = Vec::new();
            while let Some(c) = out.recv().await {
                gz.extend_from_slice(&c.unwrap());
            }
            assert!(
                gz.len() < len + len / 1000 + 64,
                "{len} bytes became {} gzip-compressed",
                gz.len()
            );
            let mut back = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut back)
                .unwrap();
            assert!(back == noise, "gzip round trip of {len} bytes");
        }
    }

    #[test]
    fn tofu_pins_the_first_certificate_and_refuses_another() {
        let dir = tempfile::tempdir().unwrap();
        let v = TofuVerifier {
            pin: dir.path().join("device-certs").join("printer-631.sha256"),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        };
        v.check("aa11").unwrap();
        v.check("AA11").unwrap();
        let err = v.check("bb22").unwrap_err();
        assert!(err.contains("certificate changed"), "{err}");
        assert!(err.contains("aa11"), "{err}");
    }

    #[test]
    fn capabilities_are_kept_per_device_and_read_back_checked() {
        let dir = tempfile::tempdir().unwrap();
        let uri = DeviceUri::parse("ipp://printer.local/ipp/print").unwrap();
        let cache = CapabilityCache::new(dir.path(), &uri).unwrap();
        assert_eq!(cache.device_uri(), "ipp://printer.local:631/ipp/print");
        assert_eq!(cache.load().unwrap(), None);
        let caps = DownstreamCaps {
            printer_make_and_model: Some("Example Printer".into()),
            media_supported: vec!["iso_a4_210x297mm".into()],
            ..DownstreamCaps::default()
        };
        cache.store(&caps).unwrap();
        assert_eq!(cache.load().unwrap(), Some(caps.clone()));
        assert!(!dir.path().join("device-capabilities.json.partial").exists());
        let text = std::fs::read_to_string(cache.path()).unwrap();
        assert!(text.contains("\"device-uri\": \"ipp://printer.local:631/ipp/print\""));

        // Another device in the same place: its capabilities are not this one's.
        let other = DeviceUri::parse("ipps://other.local/ipp/print").unwrap();
        let err = CapabilityCache::new(dir.path(), &other)
            .unwrap()
            .load()
            .unwrap_err();
        assert!(err.contains("describes ipp://printer.local"), "{err}");
        assert!(CapabilityCache::new(dir.path(), &DeviceUri::File("/x".into())).is_none());

        // A damaged or oversized file is an error to log, never a panic.
        std::fs::write(cache.path(), b"{not json").unwrap();
        assert!(cache.load().is_err());
        std::fs::write(cache.path(), vec![b' '; MAX_CACHE_BYTES as usize + 10]).unwrap();
        assert!(cache.load().unwrap_err().contains("larger than"));
    }

    #[test]
    fn printer_answer_is_read_defensively() {
        let mut m = Message::new((2, 0), 0, 1);
        let g = m.group_mut(tag::PRINTER);
        g.push(Attribute::set(
            "printer-state-reasons",
            vec![
                Value::Keyword("media-empty-error".into()),
                Value::Keyword("none".into()),
                Value::Keyword("Evil Reason\r\n".into()),
                Value::Keyword("toner-low-warning".into()),
            ],
        ));
        g.push(Attribute::set(
            "document-format-supported",
            vec![Value::MimeMediaType("image/pwg-raster".into())],
        ));
        g.push(Attribute::set(
            "operations-supported",
            vec![Value::Enum(2), Value::Enum(5), Value::Enum(6)],
        ));
        g.push(Attribute::set(
            "pwg-raster-document-resolution-supported",
            vec![
                Value::Resolution {
                    x: 300,
                    y: 300,
                    units: 3,
                },
                Value::Resolution {
                    x: 600,
                    y: 600,
                    units: 3,
                },
                Value::Resolution {
                    x: 99999,
                    y: 1,
                    units: 3,
                },
            ],
        ));
        g.push(Attribute::new(
            "printer-make-and-model",
            Value::Text("Downstream\r\nModel".into()),
        ));
        let d = Downstream::from_response(&m);
        assert_eq!(
            d.capabilities.printer_make_and_model.as_deref(),
            Some("DownstreamModel")
        );
        assert_eq!(d.reasons, ["media-empty-error", "toner-low-warning"]);
        assert!(d.takes("image/pwg-raster") && !d.takes("application/pdf"));
        assert!(d.multi_document());
        assert!(d.accepting);
        assert_eq!(d.raster_resolution(600, "image/pwg-raster"), 600);
        assert_eq!(d.raster_resolution(360, "image/pwg-raster"), 300);
        let urf = Downstream {
            urf: vec!["RS300-600".into(), "W8".into()],
            ..Downstream::default()
        };
        assert_eq!(urf.raster_resolution(500, "image/urf"), 600);
    }

    #[test]
    fn monochrome_jobs_get_gray_raster_when_the_printer_takes_it() {
        let colour_raster = Downstream {
            formats: vec!["image/pwg-raster".into()],
            pwg_types: vec!["srgb_8".into(), "sgray_8".into()],
            capabilities: DownstreamCaps {
                color_supported: Some(true),
                ..DownstreamCaps::default()
            },
            ..Downstream::default()
        };
        assert_eq!(
            colour_raster.raster_color("image/pwg-raster", false),
            RasterColor::Srgb8
        );
        assert_eq!(
            colour_raster.raster_color("image/pwg-raster", true),
            RasterColor::Sgray8
        );
        assert!(colour_raster.gets_gray_raster());
        let black_urf = Downstream {
            formats: vec!["image/urf".into()],
            urf: vec!["RS300".into(), "SRGB24".into()],
            capabilities: DownstreamCaps {
                color_supported: Some(true),
                ..DownstreamCaps::default()
            },
            ..Downstream::default()
        };
        assert_eq!(
            black_urf.raster_color("image/urf", true),
            RasterColor::Srgb8
        );
        assert!(
            !black_urf.gets_gray_raster(),
            "only sRGB: the PDF needs the gray layer"
        );
        let pdf = Downstream {
            formats: vec!["application/pdf".into(), "image/pwg-raster".into()],
            pwg_types: vec!["sgray_8".into()],
            ..Downstream::default()
        };
        assert!(!pdf.gets_gray_raster(), "a PDF printer gets the PDF");
    }
}
