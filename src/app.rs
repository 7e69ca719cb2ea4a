//! The composition root: builds the real spools, devices, printers and listeners from
//! configuration, starts the worker and housekeeping tasks, and shuts everything down on
//! SIGINT/SIGTERM. Each queue (`[printer]` at `/ipp/print`, each `[[queue]]` at
//! `/ipp/print/NAME`) is built by [`start_queue`]; the listeners, TLS, users and web pages are
//! shared. The cloud's composition root is [`cloud`].

pub mod cloud;
pub mod fleet;
pub mod service;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{Config, ConfigError, PrinterConfig, SpoolConfig};
use crate::device::{self, Device, DeviceReport, DeviceUri};
use crate::ipp_printer::{Printer, ServiceConfig};
use crate::model::clock::{Clock, SystemClock};
use crate::model::ipp_caps::DownstreamCaps;
use crate::model::job::JobEvent;
use crate::model::printer::{standard_media, Capabilities, Description};
use crate::net::{self, appliance::ApplianceHttp, ipp_endpoint::EndpointLimits, server};
use crate::spool::{Spool, SpoolError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the spool in {dir}: {source}")]
    Spool { dir: PathBuf, source: SpoolError },
    #[error("cannot use state directory {dir}: {source}")]
    StateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    StateLock(#[from] crate::state_lock::StateLockError),
    #[error(transparent)]
    Net(#[from] net::NetError),
    #[error(transparent)]
    Tls(#[from] net::tls::TlsError),
    #[error(transparent)]
    Bridge(#[from] crate::bridge::BridgeError),
    #[error("no listener could be opened")]
    NoListener,
    #[error(transparent)]
    Device(#[from] device::SetupError),
    #[error("cannot read the PPD {path}: {source}")]
    PpdRead {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The parser's message starts with the line number ("line 12: ...").
    #[error("PPD {path}: {source}")]
    Ppd {
        path: PathBuf,
        source: crate::codec::ppd::PpdError,
    },
    /// A `[[queue]]` could not be started.
    #[error("queue {name}: {source}")]
    Queue { name: String, source: Box<AppError> },
}

/// The resource path of the default queue; a `[[queue]]` named NAME is at `/ipp/print/NAME`.
pub const RESOURCE: &str = "/ipp/print";

/// Where one queue lives and is served.
#[derive(Debug, Clone)]
pub struct QueuePlace {
    /// `None` for the default queue (`[printer]`), else the `[[queue]]` name.
    pub name: Option<String>,
    /// `/ipp/print` or `/ipp/print/NAME`.
    pub resource: String,
    /// The queue's web page: `/` for the default queue, its resource for the others.
    pub web_path: String,
    /// The queue's own directory, holding `spool/` and the default `output/`: the state
    /// directory itself for the default queue, `<state_dir>/queues/NAME` for the others.
    pub dir: PathBuf,
}

impl QueuePlace {
    /// The default queue: as it has always been, in the state directory at `/ipp/print`.
    pub fn default_queue(state_dir: &Path) -> QueuePlace {
        QueuePlace {
            name: None,
            resource: RESOURCE.to_string(),
            web_path: "/".to_string(),
            dir: state_dir.to_path_buf(),
        }
    }

    /// A `[[queue]]` named `name`, which becomes a path segment and a directory name: refused
    /// unless [`crate::config::valid_queue_name`] says it may.
    pub fn extra_queue(state_dir: &Path, name: &str) -> Result<QueuePlace, ConfigError> {
        if !crate::config::valid_queue_name(name) {
            return Err(ConfigError::Invalid(format!(
                "queue.name {name:?} is not a valid queue name"
            )));
        }
        let resource = format!("{RESOURCE}/{name}");
        Ok(QueuePlace {
            name: Some(name.to_string()),
            web_path: resource.clone(),
            resource,
            dir: state_dir.join("queues").join(name),
        })
    }
}

/// One running print queue: an IPP printer over its own spool, output device, worker, event
/// pump, housekeeping and device mirror. Its tasks end when `shutdown` fires.
pub struct Queue {
    pub printer: Arc<Printer>,
    pub spool: Arc<Spool>,
    pub place: QueuePlace,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The output device and what it is (for logs and the control channel's answers).
    pub device: Arc<dyn Device>,
    pub device_name: String,
}

/// Runs the appliance until a signal arrives.
pub async fn run_serve(config: Config) -> Result<(), AppError> {
    config.validate()?;
    // The ports first: a port in use (another appliance, CUPS on 631) is refused before anything
    // is created on disk (no state directory, no certificate, no spool) — issue 16.
    // Socket activation (printbridge.socket) hands the listeners over; else they are bound here.
    let bound = net::systemd::listeners_or_bind(&config.server.listen)?;
    if bound.is_empty() {
        return Err(AppError::NoListener);
    }
    let state_dir = config.state_dir();
    std::fs::create_dir_all(&state_dir).map_err(|source| AppError::StateDir {
        dir: state_dir.clone(),
        source,
    })?;
    // Before anything reads the spool: a second appliance here must not start at all (issue 11).
    crate::state_lock::StateLock::acquire(&state_dir)?.hold_until_exit();
    service::apply_log_level(&config);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (shutdown_tx, shutdown) = watch::channel(false);
    // printer-supply reports the free space where the default queue's files go: one figure for
    // the appliance, measured by the default queue, read by every queue.
    let storage_free = crate::ipp_printer::StorageFree::default();

    // ---- queues: [printer] at /ipp/print, then each [[queue]] at /ipp/print/NAME ----
    let mut places = vec![(&config.printer, QueuePlace::default_queue(&state_dir))];
    for q in &config.queues {
        places.push((q, QueuePlace::extra_queue(&state_dir, &q.name)?));
    }
    let mut queues: Vec<Queue> = Vec::new();
    // The `cloud:` queues' link to the cloud; the registration agent is attached once started.
    let outbound = crate::bridge::outbound::Outbound::new(&config.cloud);
    for (printer_config, place) in places {
        let started = start_queue(
            &config,
            printer_config,
            place.clone(),
            &state_dir,
            clock.clone(),
            storage_free.clone(),
            &outbound,
            shutdown.clone(),
        )
        .await;
        match started {
            Ok(q) => queues.push(q),
            Err(e) => {
                let _ = shutdown_tx.send(true);
                for q in &queues {
                    q.spool.close().await;
                }
                return Err(match place.name {
                    Some(name) => AppError::Queue {
                        name,
                        source: Box::new(e),
                    },
                    None => e,
                });
            }
        }
    }
    let mut tasks: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    for q in &mut queues {
        tasks.append(&mut q.tasks);
    }
    let default = queues[0].printer.clone();
    let extra: Vec<Arc<Printer>> = queues[1..].iter().map(|q| q.printer.clone()).collect();

    let tls = if config.server.tls {
        let files = match (&config.server.tls_certificate, &config.server.tls_key) {
            (Some(cert), Some(key)) => net::tls::CertificateFiles {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => {
                let files = net::tls::CertificateFiles::self_signed_in(&state_dir);
                net::tls::ensure_self_signed(&files)?;
                files
            }
        };
        let tls = net::tls::Tls::new(files)?;
        tasks.push(tokio::spawn(tls.clone().watch_files(shutdown.clone())));
        Some(tls)
    } else {
        None
    };
    // ---- cloud registration (issue 12): the agent and its API ----
    // Whether each queue is shared through the cloud, in the order of `queues`.
    let shared: Vec<bool> = std::iter::once(config.printer.cloud_share)
        .chain(config.queues.iter().map(|q| q.cloud_share))
        .collect();
    let identity = crate::bridge::registration::DeviceIdentity {
        name: default.description().name,
        make_and_model: config.printer.make_and_model.clone(),
        uuid: default.uuid.clone(),
        location: default.description().location,
        // Only shared queues are listed in the cloud's registry (docs/bridge.md "Inbound").
        printers: queues
            .iter()
            .zip(&shared)
            .filter(|(_, shared)| **shared)
            .map(|(q, _)| {
                let d = q.printer.description();
                crate::bridge::registration::PrinterIdentity {
                    uuid: q.printer.uuid.clone(),
                    name: d.name,
                    location: d.location,
                    info: d.info,
                    make_and_model: config.printer.make_and_model.clone(),
                }
            })
            .collect(),
    };
    let fleet_identity = identity.clone();
    let (registration, registration_task) = crate::bridge::start(
        &config,
        &state_dir,
        identity,
        clock.clone(),
        shutdown.clone(),
    )
    .await?;
    outbound.attach(registration.clone());
    tasks.push(registration_task);
    // ---- the fleet link (issue 15): requests relayed by a fleet server, outcomes back ----
    if !config.fleet.url.is_empty() {
        let link = crate::bridge::fleet_link::FleetLink::new(
            config.fleet.clone(),
            registration.clone(),
            &fleet_identity,
            &state_dir,
        )
        .map_err(crate::bridge::BridgeError::from)?;
        tasks.push(tokio::spawn(Arc::new(link).run(shutdown.clone())));
    }
    // ---- groups (issue 14): sign-in/sign-out, power saving, pushed settings ----
    let groups = Arc::new(crate::bridge::groups::Groups::new(
        registration.clone(),
        queues
            .iter()
            .zip(&shared)
            .filter(|(_, shared)| **shared)
            .map(|(q, _)| {
                let name = q.place.name.clone().unwrap_or_else(|| "default".into());
                (name, q.printer.clone())
            })
            .collect(),
        sign_in_address(&config.server.listen),
    ));
    groups.restore_power_saving().await;
    tasks.push(tokio::spawn(groups.clone().run_power(shutdown.clone())));
    let agent = registration.clone();
    // ---- the cloud's control channel (issues 13, 14): held poll, identify, groups ----
    let appliance = Arc::new(ControlTargets {
        queues: queues
            .iter()
            .map(|q| (q.printer.clone(), q.device.clone(), q.device_name.clone()))
            .collect(),
        groups: groups.clone(),
    });
    let control = crate::bridge::control::ControlClient::new(registration.clone(), appliance)
        .map_err(crate::bridge::BridgeError::from)?;
    tasks.push(tokio::spawn(control.run(shutdown.clone())));
    // ---- the inbound bridge (issue 13): the INFRA Proxy of the shared queues ----
    tasks.push(tokio::spawn(crate::bridge::proxy::run(
        registration.clone(),
        queues
            .iter()
            .zip(&shared)
            .map(|(q, shared)| crate::bridge::proxy::SharedQueue {
                printer: q.printer.clone(),
                shared: *shared,
                settings: groups
                    .queue_of_printer(&q.printer)
                    .map(|g| g.settings_watch()),
            })
            .collect(),
        crate::bridge::proxy::ProxySettings {
            max_document_bytes: config.server.max_document_bytes,
        },
        shutdown.clone(),
    )));
    let header_timeout = Duration::from_secs(config.server.header_timeout_seconds);
    let service = Arc::new(ApplianceHttp {
        printer: default.clone(),
        queues: extra.clone(),
        icons: net::icons::Icons::new(),
        limits: EndpointLimits {
            limits: config.limits,
            // The attribute section gets as long as the HTTP headers did: a client that stalls
            // in it would otherwise hold the connection (and its buffer) forever.
            section_timeout: header_timeout,
            document_idle_timeout: Duration::from_secs(config.server.document_idle_timeout_seconds),
        },
        tls: tls.is_some(),
        web: {
            let auth = Arc::new(crate::auth::Authenticator::new(&state_dir));
            let access = crate::bridge::api::ListAccess {
                auth: auth.clone(),
                tls: tls.is_some(),
            };
            let metrics = crate::web::metrics::router(crate::web::metrics::MetricsState {
                access: config.metrics.access,
                queues: queues.iter().map(|q| q.printer.clone()).collect(),
                cloud_registered: {
                    let agent = registration.clone();
                    Arc::new(move || agent.session().is_some())
                },
                auth: auth.clone(),
                tls: tls.is_some(),
            });
            // The release page (issue 18): sign-in with local users, or cloud accounts through
            // the registration agent's cloud.
            let release = crate::web::release::router(crate::web::release::ReleaseDeps {
                queues: queues.iter().map(|q| q.printer.clone()).collect(),
                auth: auth.clone(),
                tls: tls.is_some(),
                session_seconds: config.server.release_session_seconds,
                cloud: Some(Arc::new(crate::bridge::release_page::ReleaseCloud::new(
                    registration.clone(),
                    queues
                        .iter()
                        .zip(&shared)
                        .map(|(q, shared)| crate::bridge::release_page::SharedQueue {
                            printer: q.printer.clone(),
                            shared: *shared,
                        })
                        .collect(),
                ))),
            });
            crate::web::Web::new(default.clone(), extra.clone(), auth.clone(), tls.is_some())
                .merge(release)
                .merge(crate::bridge::api::router(
                    registration,
                    default.description().name,
                    access.clone(),
                ))
                .merge(crate::bridge::panel::router(groups, access))
                .merge(metrics)
                .merge(crate::web::release_api::router(
                    crate::web::release_api::ReleaseApi {
                        queues: queues.iter().map(|q| q.printer.clone()).collect(),
                        auth: auth.clone(),
                    },
                ))
        },
    });
    let open_files = net::raise_open_files_limit();
    let max_connections =
        net::connections_within_open_files(config.server.max_connections, open_files, 256);
    let connections = server::Connections::new(server::ServeOptions {
        tls,
        header_timeout,
        busy_header_timeout: Duration::from_secs(config.server.busy_header_timeout_seconds),
        max_connections,
        max_connections_per_client: config.server.max_connections_per_client,
        busy_connections: config.server.busy_connections.min(max_connections),
        drain_timeout: Duration::from_secs(5),
    });
    // ---- DNS-SD (issue 3): advertise once the listeners are bound, each queue under its own
    // instance name; each task withdraws its services when `shutdown` fires. Loopback-only
    // listeners are not advertised.
    if config.dnssd.backend != crate::config::DnssdBackend::Off {
        match crate::dnssd::advertised_port(bound.iter().filter_map(|l| l.local_addr().ok())) {
            Some(port) => {
                for q in &queues {
                    let advertise = crate::dnssd::run(
                        q.printer.clone(),
                        crate::dnssd::Settings {
                            backend: config.dnssd.backend,
                            port,
                            tls: config.server.tls,
                            auth_required: config.auth.print_requires_authentication,
                        },
                        shutdown.clone(),
                    );
                    tasks.push(spawn_in(&q.place, advertise));
                }
            }
            None => tracing::info!("DNS-SD: listening on loopback only; not advertising"),
        }
    }
    // ---- end DNS-SD ----
    // Before the addresses: the last line of the start-up output is the web page's.
    admin_notice(&config, &state_dir);
    // Before anything says "ready": from then on SIGTERM, SIGINT and SIGHUP are handled.
    let signals = service::Signals::install();
    // The accept loops: the main loop's health check watches that none has ended.
    let mut listener_tasks = Vec::new();
    for l in bound {
        let local = l.local_addr().map_err(|source| AppError::StateDir {
            dir: state_dir.clone(),
            source,
        })?;
        for q in &queues {
            println!(
                "printbridge: printer \"{}\" ready at {} (state in {})",
                q.printer.description().name,
                display_uri(local, &q.place.resource),
                q.place.dir.display()
            );
            if config.server.tls {
                println!(
                    "printbridge:   and with TLS at {}",
                    display_uri_scheme("ipps", local, &q.place.resource)
                );
            }
        }
        // The web page: https when TLS is on (plain http works on the same port, without sign-in).
        let web_scheme = if config.server.tls { "https" } else { "http" };
        println!(
            "printbridge: web page at {}",
            display_uri_scheme(web_scheme, local, "/")
        );
        listener_tasks.push(tokio::spawn(server::serve(
            l,
            service.clone(),
            connections.clone(),
            shutdown.clone(),
        )));
    }
    for q in &queues {
        match &q.place.name {
            None => tracing::info!("printer-uuid {}", q.printer.uuid),
            Some(name) => tracing::info!("queue {name}: printer-uuid {}", q.printer.uuid),
        }
    }

    // READY=1, STATUS=, WATCHDOG=1 and SIGHUP reloads until SIGINT/SIGTERM (docs/service.md).
    let notifier = net::systemd::Notifier::new();
    service::supervise(
        service::Running {
            config: config.clone(),
            queues: &queues,
            agent,
            listeners: &listener_tasks,
        },
        &notifier,
        signals,
    )
    .await;
    notifier.stopping();
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    tasks.append(&mut listener_tasks);
    // Workers may take their queue's shutdown grace to finish a transfer, and a little more to
    // record its outcome; everything else ends at once.
    let grace = std::iter::once(&config.printer)
        .chain(&config.queues)
        .map(|q| q.shutdown_grace_seconds)
        .max()
        .unwrap_or(0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(grace.max(5) + 5);
    for t in tasks {
        let _ = tokio::time::timeout_at(deadline, t).await;
    }
    for q in &queues {
        q.spool.close().await;
    }
    Ok(())
}

/// What the cloud's control channel may ask of the appliance: `identify` shows the banner on
/// every queue's web page and sends Identify-Printer to every output device that supports it.
struct ControlTargets {
    queues: Vec<(Arc<Printer>, Arc<dyn Device>, String)>,
    groups: Arc<crate::bridge::groups::Groups>,
}

/// The printer address sent with sign-in requests (CONTRACT-groups): the first listen address
/// that is a specific IP (127.0.0.2, 192.0.2.7); none when every one is a wildcard.
fn sign_in_address(listen: &[SocketAddr]) -> Option<String> {
    listen
        .iter()
        .map(|a| a.ip())
        .find(|ip| !ip.is_unspecified())
        .map(|ip| ip.to_string())
}

impl crate::bridge::control::Appliance for ControlTargets {
    fn identify<'a>(
        &'a self,
        request: &'a crate::bridge::control::IdentifyRequest,
    ) -> crate::bridge::control::BoxFuture<'a, crate::bridge::control::Outcome> {
        use crate::bridge::control::Outcome;
        use crate::device::Identified;
        Box::pin(async move {
            let mut notes = vec![format!("shown on the web page for {} s", request.seconds)];
            let mut failed = false;
            for (printer, device, name) in &self.queues {
                printer.identify_for(request.seconds, "asked for by the cloud");
                match device.identify(&request.actions).await {
                    Identified::Done(_) => notes.push(format!("{name}: Identify-Printer sent")),
                    Identified::Unsupported => {}
                    Identified::Failed(why) => {
                        failed = true;
                        notes.push(format!("{name}: {why}"));
                    }
                }
            }
            tracing::info!("identify: {}", notes.join("; "));
            if failed {
                Outcome::failed(notes.join("; "))
            } else {
                Outcome::done(notes.join("; "))
            }
        })
    }

    fn group<'a>(
        &'a self,
        instruction: &'a crate::bridge::control::GroupInstruction,
    ) -> crate::bridge::control::BoxFuture<'a, crate::bridge::control::Outcome> {
        Box::pin(self.groups.carry_out(instruction))
    }
}

/// Spawns a task of the queue at `place`; a `[[queue]]`'s log lines carry its name.
fn spawn_in<F>(place: &QueuePlace, task: F) -> tokio::task::JoinHandle<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    use tracing::Instrument;
    match &place.name {
        None => tokio::spawn(task),
        Some(name) => tokio::spawn(task.instrument(tracing::info_span!("queue", name = %name))),
    }
}

/// Builds one queue from its settings (`[printer]` or a `[[queue]]`): opens its spool in
/// `place.dir/spool`, keeps its printer-uuid there, builds its output device (by default files in
/// `place.dir/output`) and starts its worker, event pump, housekeeping and device mirror.
/// `state_dir` is the appliance's (device-certs/ is shared: trust in a printer is per host).
#[allow(clippy::too_many_arguments)]
pub async fn start_queue(
    config: &Config,
    p: &PrinterConfig,
    place: QueuePlace,
    state_dir: &Path,
    clock: Arc<dyn Clock>,
    storage_free: crate::ipp_printer::StorageFree,
    outbound: &Arc<crate::bridge::outbound::Outbound>,
    shutdown: watch::Receiver<bool>,
) -> Result<Queue, AppError> {
    let spool_dir = place.dir.join("spool");
    let spool = Spool::open(&spool_dir, clock.clone(), config.spool.keep_documents)
        .await
        .map_err(|source| AppError::Spool {
            dir: spool_dir.clone(),
            source,
        })?;
    spool.set_max_processing_crashes(config.spool.max_processing_crashes);
    spool.set_queue_label(place.name.as_deref().unwrap_or("default"));
    spool.set_release_policy(p.release_policy());
    let spool_err = |source| AppError::Spool {
        dir: spool_dir.clone(),
        source,
    };

    // printer-uuid is made once and kept: clients key their queues on it.
    let uuid = match spool.setting("printer-uuid").await.map_err(spool_err)? {
        Some(u) => u,
        None => {
            let u = uuid::Uuid::new_v4().urn().to_string();
            spool
                .set_setting("printer-uuid", &u)
                .await
                .map_err(spool_err)?;
            u
        }
    };

    let output_dir = place.dir.join("output");
    // The queue's output device (issue 4).
    let section = if place.name.is_some() {
        "queue"
    } else {
        "printer"
    };
    let device_uri = p
        .device_in(section)
        .map_err(ConfigError::Invalid)?
        .unwrap_or_else(|| DeviceUri::File(output_dir.clone()));
    // The cloud printer's own ipps:// (or https://) URI on the configured cloud is a cloud queue.
    let device_uri = match (&device_uri, p.device_uri.as_deref()) {
        (DeviceUri::Ipp { .. }, Some(raw)) if !config.cloud.url.is_empty() => {
            DeviceUri::on_cloud(raw, config.cloud.base()).unwrap_or(device_uri)
        }
        _ => device_uri,
    };
    let device_settings = |caps: &Capabilities| device::Settings {
        state_dir: state_dir.to_path_buf(),
        socket_format: p.socket_format,
        timeout: Duration::from_secs(p.device_timeout_seconds),
        resolution_dpi: caps.resolutions_dpi.iter().copied().max().unwrap_or(300) as u32,
        raster_threads: config.convert.threads,
        raster_counters: None,
        file_output: config.output.mode,
        cloud: Some(outbound.clone() as Arc<dyn device::CloudLink>),
    };

    // What the queue advertises: its PPD, else its downstream IPP printer's own capabilities,
    // else the configured ones (docs/config.md).
    let configured = Capabilities {
        make_and_model: p.make_and_model.clone(),
        color: p.color,
        duplex: p.duplex,
        media: standard_media(),
        media_default: p.media_default.clone(),
        media_ready: p.media_ready.clone(),
        resolutions_dpi: p.resolutions_dpi.clone(),
        ..Capabilities::default()
    };
    let (caps, downstream) = queue_capabilities(
        p,
        configured.clone(),
        &device_uri,
        &device_settings(&configured),
        &place,
    )
    .await?;
    // Jobs that leave an option out print with the default this queue advertises.
    spool.set_ticket_defaults(crate::convert::ticket::JobTicket::defaults_for(&caps));
    // Values set over IPP (Set-Printer-Attributes) were set after the file was written: they win.
    let desc = description_of(p, &spool).await.map_err(spool_err)?;

    // Documents are rasterized for the device at the highest configured (or PPD) resolution:
    // a downstream printer's own list decides what is advertised, the configuration how much
    // work rendering may be (the device takes the printer's raster resolution closest to it).
    let raster = if downstream.is_some() {
        &configured
    } else {
        &caps
    };
    let output = device::from_uri(&device_uri, &device_settings(raster), shutdown.clone())?;
    match &place.name {
        None => tracing::info!("output device: {}", output.description),
        Some(name) => tracing::info!("queue {name}: output device: {}", output.description),
    }
    let gate = output.cloud_device.clone().map(|device| {
        Arc::new(crate::bridge::outbound::Gate {
            outbound: outbound.clone(),
            device,
        }) as Arc<dyn crate::ipp_printer::SubmitGate>
    });
    let device: Arc<dyn Device> = output.device;
    let device_reporter = output.reporter.clone();
    let device_name = output.description.clone();
    let (device_for_control, device_name_for_control) = (device.clone(), device_name.clone());
    let printer = Printer::new(
        spool.clone(),
        caps,
        desc,
        uuid,
        clock.clone(),
        ServiceConfig {
            limits: config.limits,
            max_document_bytes: config.server.max_document_bytes,
            multiple_operation_timeout: config.spool.multiple_operation_timeout_seconds,
            resource: place.resource.clone(),
            web_path: place.web_path.clone(),
            tls: config.server.tls,
            print_requires_auth: config.auth.print_requires_authentication,
            storage_free,
            gate,
        },
    );

    let following = match (output.capabilities, downstream) {
        (Some(seen), Some(follow)) => Some(follow_device_capabilities(
            printer.clone(),
            seen,
            follow,
            shutdown.clone(),
        )),
        _ => None,
    };
    let mut tasks = Vec::new();
    if let Some(monitor) = output.monitor {
        tasks.push(spawn_in(&place, monitor));
    }
    if let Some(following) = following {
        tasks.push(spawn_in(&place, following));
    }
    tasks.push(spawn_in(
        &place,
        mirror_device(printer.clone(), output.status, shutdown.clone()),
    ));
    tasks.push(spawn_in(
        &place,
        crate::spool::worker::run(
            spool.clone(),
            device,
            queue_control(printer.clone(), device_reporter),
            crate::spool::worker::Settings {
                device_name,
                error_policy: p.error_policy,
                retry_for: Duration::from_secs(p.error_retry_seconds),
                shutdown_grace: Duration::from_secs(p.shutdown_grace_seconds),
            },
            printer.paused_watch(),
            shutdown.clone(),
        ),
    ));
    tasks.push(spawn_in(
        &place,
        event_pump(printer.clone(), shutdown.clone()),
    ));
    // printer-supply reports the free space where the default queue's files go (one figure for
    // the appliance, shared by the queues' ServiceConfig), so only the default queue measures it.
    let measure = place.name.is_none().then(|| output_dir.clone());
    tasks.push(spawn_in(
        &place,
        housekeeping(printer.clone(), config.spool.clone(), measure, shutdown),
    ));
    Ok(Queue {
        printer,
        spool,
        place,
        tasks,
        device: device_for_control,
        device_name: device_name_for_control,
    })
}

/// A queue's printer-name, -info, -location, ... from its settings, where values set over IPP
/// (Set-Printer-Attributes, kept in the spool) win: they were set after the file was written.
pub async fn description_of(p: &PrinterConfig, spool: &Spool) -> Result<Description, SpoolError> {
    let mut desc = Description {
        name: p.name.clone(),
        location: p.location.clone(),
        info: p.info.clone(),
        organization: p.organization.clone(),
        organizational_unit: p.organizational_unit.clone(),
        geo_location: p.geo_location.clone(),
    };
    for (key, field) in [
        ("printer-name", &mut desc.name),
        ("printer-info", &mut desc.info),
        ("printer-location", &mut desc.location),
        ("printer-organization", &mut desc.organization),
        ("printer-organizational-unit", &mut desc.organizational_unit),
        ("printer-geo-location", &mut desc.geo_location),
    ] {
        if let Some(v) = spool.setting(key).await? {
            *field = v;
        }
    }
    Ok(desc)
}

/// How long a queue's start waits for its downstream IPP printer to tell its capabilities.
const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// What a queue on a downstream IPP printer needs to follow the printer's capabilities while it
/// runs ([`follow_device_capabilities`]).
struct DownstreamCapabilities {
    cache: device::ipp_downstream::CapabilityCache,
    /// The configured capabilities, what the printer does not say comes from.
    base: Capabilities,
    /// What the queue advertises.
    advertised: Capabilities,
    /// The printer's answer kept in the cache file.
    kept: Option<DownstreamCaps>,
    device: String,
}

/// A queue's capabilities: from its PPD when it has one; else, for an ipp(s):// device, from the
/// printer's answer now (kept in the queue's directory) or, when it does not answer within
/// [`PROBE_LIMIT`] (and the device time-out), the answer kept from an earlier time; else the
/// configured ones (`configured`).
async fn queue_capabilities(
    p: &PrinterConfig,
    configured: Capabilities,
    device_uri: &DeviceUri,
    settings: &device::Settings,
    place: &QueuePlace,
) -> Result<(Capabilities, Option<DownstreamCapabilities>), AppError> {
    let queue = match &place.name {
        None => String::new(),
        Some(name) => format!("queue {name}: "),
    };
    if let Some(path) = &p.ppd {
        let caps = load_ppd(path, &configured)?;
        tracing::info!("{queue}capabilities from PPD {}", path.display());
        return Ok((caps, None));
    }
    let Some(cache) = device::ipp_downstream::CapabilityCache::new(&place.dir, device_uri) else {
        return Ok((configured, None));
    };
    let device = cache.device_uri().to_string();
    let kept = match cache.load() {
        Ok(kept) => kept,
        Err(e) => {
            tracing::warn!("{queue}ignoring the kept capabilities of the output device: {e}");
            None
        }
    };
    let limit = PROBE_LIMIT.min(settings.timeout);
    let (caps, kept) = match device::ipp_downstream::probe(device_uri, settings, limit).await {
        Ok(answer) => {
            let caps = Capabilities::from_downstream(&answer, &configured);
            tracing::info!(
                "{queue}capabilities from the output device {device} ({})",
                caps.make_and_model
            );
            let kept = if kept.as_ref() == Some(&answer) {
                kept
            } else {
                match cache.store(&answer) {
                    Ok(()) => Some(answer),
                    Err(e) => {
                        tracing::warn!("{queue}{e}");
                        kept
                    }
                }
            };
            (caps, kept)
        }
        Err(e) => match &kept {
            Some(last) => {
                tracing::warn!(
                    "{queue}the output device does not answer ({e}); advertising its capabilities \
                     as it last told them (kept in {})",
                    cache.path().display()
                );
                (Capabilities::from_downstream(last, &configured), kept)
            }
            None => {
                tracing::warn!(
                    "{queue}the output device does not answer ({e}) and its capabilities were \
                     never seen; advertising the configured ones until printbridge starts again \
                     after the printer answered"
                );
                (configured.clone(), None)
            }
        },
    };
    Ok((
        caps.clone(),
        Some(DownstreamCapabilities {
            cache,
            base: configured,
            advertised: caps,
            kept,
            device,
        }),
    ))
}

/// Follows what the downstream printer says it can do while the queue runs (the device monitor
/// asks it every few seconds): a new answer replaces the kept one, so the next start advertises
/// it even if the printer is off then, and a difference from what the queue advertises becomes
/// what it advertises now (printer-config-changed; DNS-SD and the web page follow).
async fn follow_device_capabilities(
    printer: Arc<Printer>,
    mut seen: watch::Receiver<Option<Arc<DownstreamCaps>>>,
    mut f: DownstreamCapabilities,
    mut shutdown: watch::Receiver<bool>,
) {
    // What was last said in the log about the printer's capabilities.
    let mut reported = f.advertised.clone();
    loop {
        let latest = seen.borrow_and_update().clone();
        if let Some(answer) = latest {
            if f.kept.as_ref() != Some(&*answer) {
                let cache = f.cache.clone();
                let store = (*answer).clone();
                match tokio::task::spawn_blocking(move || cache.store(&store)).await {
                    Ok(Ok(())) => f.kept = Some((*answer).clone()),
                    Ok(Err(e)) => tracing::warn!("{e}"),
                    Err(e) => tracing::warn!("cannot keep the output device's capabilities: {e}"),
                }
            }
            let caps = Capabilities::from_downstream(&answer, &f.base);
            let changed = reported.changed_attributes(&caps);
            if !changed.is_empty() {
                tracing::info!(
                    "the output device {} now tells other capabilities ({}); the queue \
                     advertises them (kept in {})",
                    f.device,
                    changed.join(", "),
                    f.cache.path().display()
                );
                printer.set_capabilities(caps.clone());
                reported = caps;
            }
        }
        tokio::select! {
            r = seen.changed() => if r.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

/// A queue's capabilities from its PPD (a local file named in the configuration, never anything
/// from the network); any parse error stops the start, naming the file and the line.
fn load_ppd(path: &std::path::Path, base: &Capabilities) -> Result<Capabilities, AppError> {
    let bytes = std::fs::read(path).map_err(|source| AppError::PpdRead {
        path: path.to_path_buf(),
        source,
    })?;
    let ppd = crate::codec::ppd::parse(&bytes).map_err(|source| AppError::Ppd {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Capabilities::from_ppd(&ppd, base))
}

/// The URI a person would type for the queue at `resource` on a listener.
fn display_uri(local: SocketAddr, resource: &str) -> String {
    display_uri_scheme("ipp", local, resource)
}

/// Says at start when nobody can administer the appliance yet, and how to change that: the
/// web page's administration and Pause-Printer & co. need a user added with `--admin`.
fn admin_notice(config: &Config, state_dir: &Path) {
    let store = crate::auth::UserStore::new(state_dir);
    let has_admin = match store.users() {
        Ok(users) => users.iter().any(|u| u.role == crate::auth::Role::Admin),
        Err(e) => {
            tracing::warn!("cannot read the users file {}: {e}", store.path().display());
            return;
        }
    };
    if !has_admin {
        // The file only when it names the state directory: under systemd the directory comes
        // from STATE_DIRECTORY, which `printbridge user` run by hand does not have.
        let target = match (&config.source, &config.server.state_dir) {
            (Some(file), Some(_)) => format!("--config {}", file.display()),
            _ => format!("--state-dir {}", state_dir.display()),
        };
        println!(
            "printbridge: no administrator yet; add one with: printbridge user add NAME --admin {target}"
        );
    }
}

/// `scheme://host:port/resource` for a bound address (a wildcard address shows as localhost).
fn display_uri_scheme(scheme: &str, local: SocketAddr, resource: &str) -> String {
    let host = match local {
        SocketAddr::V4(a) if a.ip().is_unspecified() => "localhost".to_string(),
        SocketAddr::V6(a) if a.ip().is_unspecified() => "localhost".to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
        SocketAddr::V4(a) => a.ip().to_string(),
    };
    format!("{scheme}://{host}:{}{resource}", local.port())
}

/// Installs the SIGINT and SIGTERM handlers now and resolves at the first of those signals: how
/// every role is told to stop. Installed before a role says it is ready, so that a signal sent
/// the moment it is (a service manager, a test) is a clean stop, not the default action's kill
/// in the middle of start-up.
pub(crate) fn stop_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                (Ok(mut one), Err(_)) | (Err(_), Ok(mut one)) => {
                    one.recv().await;
                }
                (Err(_), Err(_)) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// What the worker reports about failing jobs goes into the device's report (so into
/// printer-state-reasons and -message); error_policy stop-printer pauses the printer, as
/// Pause-Printer would, so Resume-Printer starts it again.
fn queue_control(
    printer: Arc<Printer>,
    reporter: device::Reporter,
) -> Arc<dyn crate::spool::worker::QueueControl> {
    Arc::new(crate::spool::worker::ReportedControl {
        reporter,
        stop: move || {
            printer.set_paused(true);
            printer.post_printer_event("printer-state-changed");
        },
    })
}

/// Carries the output device's condition into the printer's printer-state-reasons and -message.
async fn mirror_device(
    printer: Arc<Printer>,
    mut status: watch::Receiver<DeviceReport>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let report = status.borrow_and_update().clone();
        printer.set_device_condition(report.reasons(), report.message(), report.stopped());
        tokio::select! {
            r = status.changed() => if r.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

/// Feeds job state changes into IPP event notifications.
async fn event_pump(printer: Arc<Printer>, mut shutdown: watch::Receiver<bool>) {
    let mut changes = printer.spool.subscribe();
    loop {
        tokio::select! {
            c = changes.recv() => match c {
                Ok(c) => printer.post_job_change(c.job_id, c.from, c.to),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("event notifications lagged by {n} job changes");
                }
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// Every few seconds: close Create-Job jobs whose client went quiet (multiple-operation-time-out,
/// PWG 5100.11 §5.2), forget old finished jobs, and measure free space for printer-supply.
/// `measure_free_space`: the directory whose file system printer-supply reports on, if this
/// queue is the one that measures it.
async fn housekeeping(
    printer: Arc<Printer>,
    spool_config: SpoolConfig,
    measure_free_space: Option<PathBuf>,
    mut shutdown: watch::Receiver<bool>,
) {
    let timeout = spool_config.multiple_operation_timeout_seconds as i64;
    loop {
        let now = printer.clock.now();
        for job in printer.spool.list() {
            if job.status.incoming
                && !job.status.state.is_terminal()
                && now - job.time_last_document > timeout
            {
                let event = if job.documents.is_empty() {
                    JobEvent::Aborted {
                        reason: "aborted-by-system",
                        message: format!("no document arrived within {timeout} seconds"),
                    }
                } else {
                    JobEvent::Closed
                };
                if let Err(e) = printer.spool.transition(job.id, event).await {
                    tracing::warn!(job = job.id, "cannot close idle job: {e}");
                }
            }
        }
        // Jobs nobody released in time are deleted unprinted (issue 18, docs/release.md).
        match printer.spool.expire_held().await {
            Ok(ids) if !ids.is_empty() => {
                tracing::info!(jobs = ?ids, "held jobs not released in time deleted unprinted")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot delete the expired held jobs: {e}"),
        }
        if let Err(e) = printer
            .spool
            .purge(spool_config.retain_jobs, spool_config.retain_seconds)
            .await
        {
            tracing::warn!("cannot purge old jobs: {e}");
        }
        if let Some(pct) = measure_free_space.as_deref().and_then(free_space_percent) {
            printer.config.storage_free.set_percent(pct);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Free space of the file system holding `dir`, in percent.
fn free_space_percent(dir: &std::path::Path) -> Option<u8> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid NUL-terminated string and `st` a properly sized out-parameter.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 || st.f_blocks == 0 {
        return None;
    }
    Some(((st.f_bavail as u128 * 100) / st.f_blocks as u128).min(100) as u8)
}
