//! Plain-data configuration: TOML with every key optional, unknown keys rejected, then `validate()`.
//! The reference for every key and its default is docs/config.md.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::codec::ipp::Limits;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub printer: PrinterConfig,
    pub spool: SpoolConfig,
    pub limits: Limits,
    pub auth: AuthConfig,
    pub dnssd: DnssdConfig,
    pub output: OutputConfig,
    /// `[[queue]]`: further print queues, each at `/ipp/print/<name>` with its own spool, output
    /// device and DNS-SD advertisement. `[printer]` stays the default queue at `/ipp/print`.
    #[serde(rename = "queue")]
    pub queues: Vec<PrinterConfig>,
    /// `[cloud]`: registration with a cloud print service (bridge::registration).
    pub cloud: CloudLinkConfig,
    /// `[mail]`: the SMTP server registration mails go through (the cloud's keys).
    pub mail: crate::notify::MailConfig,
    /// `[metrics]`: who may read `/metrics` (docs/operations.md).
    pub metrics: crate::metrics::MetricsConfig,
    /// `[log]`: what is logged (docs/service.md "Logs").
    pub log: LogConfig,
    /// `[fleet]`: the link to a fleet server that relays registration requests
    /// (bridge::fleet_link, docs/fleet.md "The appliance's link").
    pub fleet: FleetLinkConfig,
    /// `[convert]`: how documents are converted for the printer (issue 19: render threads).
    pub convert: ConvertConfig,
    /// The file this configuration was read from, so that `validate()` names it (issue 16).
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// What the command line replaced (`serve --listen/--state-dir/--name`): applied again to
    /// the file read on SIGHUP, so a reload does not undo them.
    #[serde(skip)]
    pub overrides: ServeOverrides,
}

/// `[log]`: the log filter. `RUST_LOG`, when set, wins over it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `level` and `target=level` items, e.g. `"info,printbridge::dnssd=debug"`; unset: the
    /// built-in `info,sqlx=warn,hyper=warn`. Applied again on SIGHUP.
    pub level: Option<String>,
}

/// Command-line replacements for configuration keys (`printbridge serve` flags).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServeOverrides {
    pub listen: Vec<SocketAddr>,
    pub state_dir: Option<PathBuf>,
    pub name: Option<String>,
}

impl ServeOverrides {
    /// Writes the replacements into `config` and remembers them there.
    pub fn apply(&self, config: &mut Config) {
        if !self.listen.is_empty() {
            config.server.listen = self.listen.clone();
        }
        if let Some(d) = &self.state_dir {
            config.server.state_dir = Some(d.clone());
        }
        if let Some(n) = &self.name {
            config.printer.name = n.clone();
        }
        config.overrides = self.clone();
    }
}

/// `[convert]`: how documents are converted for raster-only printers.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConvertConfig {
    /// Threads rendering a PDF's pages for a raster printer (PWG raster, Apple raster, AppSocket
    /// raster), per job being printed; 0: the machine's available cores.
    pub threads: usize,
}

/// `[output]`: what the file output device writes.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// `pdf`: each job as one PDF with its options applied (copies, n-up, page ranges, ...);
    /// `raw`: each document as received.
    pub mode: crate::device::file::OutputMode,
}

/// `[auth]`: who may print and administer (users are managed with `printbridge user`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Print-Job, Create-Job and Send-Document (and acting on one's own jobs) need a local user's
    /// credentials; the job owner is then the authenticated user. Off by default: Windows and
    /// many phones cannot add a printer that asks for a password.
    pub print_requires_authentication: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Addresses to listen on. The default covers all IPv4 and IPv6 interfaces on port 8631.
    /// One address may be written as a string, as in the cloud's configuration.
    #[serde(deserialize_with = "listen_addresses")]
    pub listen: Vec<SocketAddr>,
    /// Where the spool database, documents and output live. `$STATE_DIRECTORY` (systemd) wins
    /// over the built-in default but not over an explicit setting.
    pub state_dir: Option<PathBuf>,
    /// Longest time a client may take to send its request headers, seconds.
    pub header_timeout_seconds: u64,
    /// Largest document accepted, bytes (0 = no limit other than disk space).
    pub max_document_bytes: u64,
    /// Seconds a document upload may stall (no bytes arriving) before it is dropped.
    pub document_idle_timeout_seconds: u64,
    /// Connections served at once (each is one open file; the limit is raised to fit).
    pub max_connections: usize,
    /// Connections one client address (an IPv6 client: its /64) may hold; more are closed.
    pub max_connections_per_client: usize,
    /// From this many open connections on, the server is busy: new and idle connections get
    /// `busy_header_timeout_seconds` instead of `header_timeout_seconds`.
    pub busy_connections: usize,
    /// The header and keep-alive time-out while the server is busy, seconds.
    pub busy_header_timeout_seconds: u64,
    /// TLS on the IPP port (same port as plain HTTP, and by HTTP Upgrade).
    pub tls: bool,
    /// PEM certificate chain; with `tls_key`, replaces the self-signed certificate.
    pub tls_certificate: Option<PathBuf>,
    /// PEM private key for `tls_certificate`.
    pub tls_key: Option<PathBuf>,
    /// How long a sign-in on the release page (`/release`, issue 18) lasts, seconds.
    pub release_session_seconds: u64,
}

/// `server.listen`: one `"host:port"` string or an array of them, each checked here so that a
/// wrong one is reported with the key and the value (the file and line come from the TOML error).
fn listen_addresses<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let texts = match OneOrMany::deserialize(d).map_err(|_| {
        serde::de::Error::custom(
            "server.listen must be an address such as \"0.0.0.0:8631\" or a list of them",
        )
    })? {
        OneOrMany::One(t) => vec![t],
        OneOrMany::Many(v) => v,
    };
    texts
        .iter()
        .map(|t| parse_listen_address(t).map_err(serde::de::Error::custom))
        .collect()
}

/// One `server.listen` address, with a message that says what is wrong with it.
pub fn parse_listen_address(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse::<SocketAddr>().map_err(|_| {
        let port = text.trim().rsplit_once(':').map(|(_, p)| p);
        let why = match port {
            None => "it has no port".to_string(),
            Some(p) if p.parse::<u16>().is_err() && p.bytes().all(|b| b.is_ascii_digit()) => {
                format!("port {p} is not between 0 and 65535")
            }
            _ => "use an IP address and a port, e.g. 0.0.0.0:8631 or [::]:8631 (no host names)"
                .to_string(),
        };
        format!("server.listen: {text:?} is not a listening address: {why}")
    })
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: vec![
                "0.0.0.0:8631".parse().expect("literal"),
                "[::]:8631".parse().expect("literal"),
            ],
            state_dir: None,
            header_timeout_seconds: 30,
            max_document_bytes: 0,
            document_idle_timeout_seconds: 300,
            max_connections: 4096,
            max_connections_per_client: 128,
            busy_connections: 1024,
            busy_header_timeout_seconds: 5,
            tls: true,
            tls_certificate: None,
            tls_key: None,
            release_session_seconds: 900,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrinterConfig {
    pub name: String,
    pub location: String,
    pub info: String,
    pub organization: String,
    pub organizational_unit: String,
    pub make_and_model: String,
    /// `geo:` URI (RFC 5870), empty when unknown.
    pub geo_location: String,
    pub media_default: String,
    pub media_ready: Vec<String>,
    pub color: bool,
    pub duplex: bool,
    pub resolutions_dpi: Vec<i32>,
    /// Where the queue's jobs go: `file:///dir`, `ipp://host[:port]/path`, `ipps://...` or
    /// `socket://host[:port]`. Unset: PDF files in `<state_dir>/output`.
    pub device_uri: Option<String>,
    /// What a `socket://` device is sent: `pdf` or `pwg-raster`.
    pub socket_format: crate::device::SocketFormat,
    /// Seconds an output device may take to accept a connection or make progress.
    pub device_timeout_seconds: u64,
    /// What happens to a job that keeps failing on the device for `error_retry_seconds`
    /// (CUPS's printer-error-policy): `retry-job`, `abort-job` or `stop-printer`.
    pub error_policy: crate::spool::worker::ErrorPolicy,
    /// How long a job may keep failing on the device before `error_policy` applies.
    pub error_retry_seconds: u64,
    /// How long a graceful stop (SIGTERM, SIGINT) waits for the job in transfer to finish.
    pub shutdown_grace_seconds: u64,
    /// A PPD describing the device: its media, trays, duplex, colour and resolutions replace
    /// `media_default`, `color`, `duplex` and `resolutions_dpi`. Read once at start, from this
    /// local path only.
    pub ppd: Option<PathBuf>,
    /// Register the queue with the cloud (once the appliance is registered, `[cloud]`) and run
    /// its INFRA Proxy: cloud users' jobs for it print here (docs/bridge.md "Inbound").
    pub cloud_share: bool,
    /// Secure release (issue 18, docs/release.md): `none`, `pin` (jobs wait for their PIN) or
    /// `sign-in` (jobs wait for their owner to sign in at the release page).
    pub release: crate::model::release::ReleaseMode,
    /// A job held for release longer than this is deleted unprinted.
    pub release_expire_seconds: u64,
    /// Digits of the PINs the appliance assigns (4 to 8).
    pub release_pin_length: u32,
}

impl PrinterConfig {
    /// The queue's release settings, for its spool.
    pub fn release_policy(&self) -> crate::spool::release::ReleasePolicy {
        crate::spool::release::ReleasePolicy {
            mode: self.release,
            expire_seconds: self.release_expire_seconds,
            pin_length: self.release_pin_length,
        }
    }

    /// The parsed device URI, `None` for the default output directory.
    pub fn device(&self) -> Result<Option<crate::device::DeviceUri>, String> {
        self.device_in("printer")
    }

    /// [`PrinterConfig::device`], naming the key as `section.device_uri` (`printer`, `queue`).
    pub fn device_in(&self, section: &str) -> Result<Option<crate::device::DeviceUri>, String> {
        self.device_uri
            .as_deref()
            .map(|u| {
                crate::device::DeviceUri::parse(u).map_err(|e| format!("{section}.device_uri: {e}"))
            })
            .transpose()
    }

    /// The checks every queue's settings pass (`section` is `printer` or `queue`, for the
    /// messages); the name is checked by the caller, as the rules differ.
    fn check(&self, section: &str) -> Result<(), String> {
        for (key, v) in [
            ("location", &self.location),
            ("info", &self.info),
            ("organization", &self.organization),
            ("organizational_unit", &self.organizational_unit),
            ("make_and_model", &self.make_and_model),
        ] {
            if v.len() > 127 {
                return Err(format!("{section}.{key} is longer than 127 characters"));
            }
        }
        if !self.geo_location.is_empty() && !self.geo_location.starts_with("geo:") {
            return Err(format!(
                "{section}.geo_location must be a geo: URI (RFC 5870) or empty"
            ));
        }
        let media = crate::model::printer::standard_media();
        let named = std::iter::once(("media_default", &self.media_default))
            .chain(self.media_ready.iter().map(|m| ("media_ready", m)));
        for (key, m) in named {
            if crate::model::printer::media_by_name(&media, m).is_none() {
                let names: Vec<_> = media.iter().map(|m| m.name.as_str()).collect();
                return Err(format!(
                    "{section}.{key}: unknown media '{m}'; known: {}",
                    names.join(", ")
                ));
            }
        }
        if self.resolutions_dpi.is_empty()
            || self
                .resolutions_dpi
                .iter()
                .any(|r| !(72..=2400).contains(r))
        {
            return Err(format!(
                "{section}.resolutions_dpi must list resolutions between 72 and 2400"
            ));
        }
        self.device_in(section)?;
        if self.device_timeout_seconds == 0 {
            return Err(format!("{section}.device_timeout_seconds must be positive"));
        }
        if self.error_retry_seconds == 0 || self.error_retry_seconds > 7 * 24 * 3600 {
            return Err(format!(
                "{section}.error_retry_seconds must be between 1 and 604800 (a week)"
            ));
        }
        if self.shutdown_grace_seconds > 3600 {
            return Err(format!(
                "{section}.shutdown_grace_seconds must be at most 3600"
            ));
        }
        if !crate::model::release::ASSIGNED_PIN_LENGTH.contains(&self.release_pin_length) {
            return Err(format!(
                "{section}.release_pin_length must be between 4 and 8"
            ));
        }
        if self.release_expire_seconds == 0 || self.release_expire_seconds > 30 * 24 * 3600 {
            return Err(format!(
                "{section}.release_expire_seconds must be between 1 and 2592000 (30 days)"
            ));
        }
        Ok(())
    }
}

/// Whether `name` may name a `[[queue]]`: it becomes a URL path segment (`/ipp/print/<name>`), a
/// directory name (`<state_dir>/queues/<name>`) and a DNS-SD instance name, so only 1 to 127 of
/// `A-Z a-z 0-9 _ . -`, not starting with `.` (no `.`, `..` or hidden directories), and not only
/// digits (`/ipp/print/<digits>` is a job of the default queue).
pub fn valid_queue_name(name: &str) -> bool {
    (1..=127).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && !name.starts_with('.')
        && !name.bytes().all(|b| b.is_ascii_digit())
}

impl Default for PrinterConfig {
    fn default() -> Self {
        let caps = crate::model::printer::Capabilities::default();
        PrinterConfig {
            name: "printbridge".into(),
            location: String::new(),
            info: String::new(),
            organization: String::new(),
            organizational_unit: String::new(),
            make_and_model: caps.make_and_model,
            geo_location: String::new(),
            media_default: caps.media_default,
            media_ready: caps.media_ready,
            color: caps.color,
            duplex: caps.duplex,
            resolutions_dpi: caps.resolutions_dpi,
            device_uri: None,
            socket_format: crate::device::SocketFormat::Pdf,
            device_timeout_seconds: 30,
            error_policy: crate::spool::worker::ErrorPolicy::default(),
            error_retry_seconds: 300,
            shutdown_grace_seconds: 30,
            ppd: None,
            cloud_share: false,
            release: crate::model::release::ReleaseMode::None,
            release_expire_seconds: crate::spool::release::DEFAULT_EXPIRE_SECONDS,
            release_pin_length: crate::spool::release::DEFAULT_PIN_LENGTH,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// Completed, canceled and aborted jobs kept in the job history.
    pub retain_jobs: u32,
    /// Seconds a finished job stays in the history.
    pub retain_seconds: u64,
    /// Keep document files of finished jobs (needed to reprint them with Restart-Job).
    pub keep_documents: bool,
    /// Seconds a Create-Job may wait between documents before it is closed (multiple-operation-time-out).
    pub multiple_operation_timeout_seconds: u32,
    /// Crashes in a row while processing one job after which the job is aborted, not retried.
    pub max_processing_crashes: u32,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            retain_jobs: 500,
            retain_seconds: 7 * 24 * 3600,
            keep_documents: false,
            multiple_operation_timeout_seconds: 300,
            max_processing_crashes: crate::spool::DEFAULT_MAX_PROCESSING_CRASHES,
        }
    }
}

/// `[dnssd]`: how the printer is advertised on the local network (DNS-SD over multicast DNS).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DnssdConfig {
    pub backend: DnssdBackend,
}

/// Which mDNS responder publishes the services.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DnssdBackend {
    /// Avahi when the system bus has `org.freedesktop.Avahi`, else the embedded responder.
    #[default]
    Auto,
    /// The system's Avahi daemon over D-Bus (waits, with a warning, while it is not running).
    Avahi,
    /// The responder built into printbridge (mdns-sd).
    Embedded,
    /// Do not advertise.
    Off,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let bad = |message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        };
        // A wrong device URI is caught at load, naming the key and the file.
        config.printer.device().map_err(bad)?;
        // So is anything wrong with a [[queue]]; a queue must say its name.
        if !config.queues.is_empty() {
            let table: toml::Table = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
            let entries = table.get("queue").and_then(toml::Value::as_array);
            for (i, entry) in entries.into_iter().flatten().enumerate() {
                if entry.get("name").is_none() {
                    return Err(bad(format!(
                        "queue.name is missing in [[queue]] number {}: every queue needs a name",
                        i + 1
                    )));
                }
            }
        }
        config.check_queues().map_err(bad)?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// The `[[queue]]` sections: valid, unique names (case-insensitively, as DNS-SD compares
    /// instance names), none the default printer's, and settings that pass the printer's checks.
    fn check_queues(&self) -> Result<(), String> {
        let mut seen: Vec<(String, usize)> = Vec::new();
        let mut file_dirs: Vec<(PathBuf, String)> = Vec::new();
        if let Ok(Some(crate::device::DeviceUri::File(dir))) = self.printer.device() {
            file_dirs.push((dir, "printer.device_uri".to_string()));
        }
        for (i, q) in self.queues.iter().enumerate() {
            let number = i + 1;
            if !valid_queue_name(&q.name) {
                return Err(format!(
                    "queue.name {:?} ([[queue]] number {number}) is not a valid queue name: use 1 \
                     to 127 letters, digits, '_', '.' and '-', not starting with '.' and not only \
                     digits (it becomes part of the URL /ipp/print/NAME, a directory name and the \
                     DNS-SD name)",
                    q.name
                ));
            }
            let folded = q.name.to_ascii_lowercase();
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == folded) {
                return Err(format!(
                    "queue.name {:?} is used twice ([[queue]] number {first} and {number}); queue \
                     names must differ in more than upper and lower case",
                    q.name
                ));
            }
            if self.printer.name.trim().to_lowercase() == folded {
                return Err(format!(
                    "queue.name {:?} ([[queue]] number {number}) is the name of the default \
                     printer (printer.name); give the queue another name",
                    q.name
                ));
            }
            seen.push((folded, number));
            q.check("queue")
                .map_err(|e| format!("[[queue]] {:?}: {e}", q.name))?;
            if let Ok(Some(crate::device::DeviceUri::File(dir))) = q.device_in("queue") {
                if let Some((_, other)) = file_dirs.iter().find(|(d, _)| *d == dir) {
                    return Err(format!(
                        "[[queue]] {:?}: queue.device_uri writes into {} like {other}; give each \
                         queue its own directory",
                        q.name,
                        dir.display()
                    ));
                }
                file_dirs.push((dir, format!("the device_uri of queue {:?}", q.name)));
            }
        }
        Ok(())
    }

    /// The checks of the whole configuration, after command-line options were applied; the
    /// message names the file the configuration came from, if any.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |message: String| {
            Err(match &self.source {
                Some(path) => ConfigError::Parse {
                    path: path.clone(),
                    message,
                },
                None => ConfigError::Invalid(message),
            })
        };
        if let Some(level) = &self.log.level {
            if let Err(e) = crate::logging::parse_level(level) {
                return bad(format!("log.level: {e}"));
            }
        }
        let p = &self.printer;
        if p.name.trim().is_empty() || p.name.len() > 127 {
            return bad("printer.name must be 1 to 127 characters".into());
        }
        if p.name.chars().any(|c| c.is_control()) {
            return bad("printer.name must not contain control characters".into());
        }
        if let Err(e) = p.check("printer") {
            return bad(e);
        }
        // Again here: `--name` replaces printer.name after the file was read.
        if let Err(e) = self.check_queues() {
            return bad(e);
        }
        if self.server.tls_certificate.is_some() != self.server.tls_key.is_some() {
            return bad("server.tls_certificate and server.tls_key must be set together".into());
        }
        if self.server.max_connections == 0 || self.server.document_idle_timeout_seconds == 0 {
            return bad(
                "server.max_connections and server.document_idle_timeout_seconds must be positive"
                    .into(),
            );
        }
        if self.server.max_connections_per_client == 0
            || self.server.busy_header_timeout_seconds == 0
        {
            return bad(
                "server.max_connections_per_client and server.busy_header_timeout_seconds must be \
                 positive"
                    .into(),
            );
        }
        if !(10..=3600).contains(&self.server.release_session_seconds) {
            return bad("server.release_session_seconds must be 10 to 3600".into());
        }
        if self.server.listen.is_empty() {
            return bad("server.listen must name at least one address".into());
        }
        if self.spool.multiple_operation_timeout_seconds == 0 {
            return bad("spool.multiple_operation_timeout_seconds must be positive".into());
        }
        if self.spool.max_processing_crashes == 0 {
            return bad("spool.max_processing_crashes must be at least 1".into());
        }
        let l = &self.limits;
        if l.max_attribute_bytes < 1024 || l.max_attributes < 16 || l.max_value_length < 256 {
            return bad("limits are too small for real clients (see docs/config.md)".into());
        }
        if let Err(e) = self.cloud.validate() {
            return bad(e);
        }
        if let Err(e) = self.fleet.validate() {
            return bad(e);
        }
        if !self.fleet.url.is_empty() && self.cloud.url.is_empty() {
            return bad(
                "fleet.url needs cloud.url: the fleet's requests are registrations with the cloud"
                    .into(),
            );
        }
        Ok(())
    }

    /// The effective state directory: configuration, else `$STATE_DIRECTORY`, else ./printbridge-data.
    pub fn state_dir(&self) -> PathBuf {
        if let Some(d) = &self.server.state_dir {
            return d.clone();
        }
        if let Some(d) = std::env::var_os("STATE_DIRECTORY") {
            // systemd may pass several colon-separated directories; the first is ours.
            if let Some(first) = d
                .to_string_lossy()
                .split(':')
                .next()
                .filter(|s| !s.is_empty())
            {
                return PathBuf::from(first);
            }
        }
        PathBuf::from("./printbridge-data")
    }
}

/// `[cloud]`: which cloud the appliance registers with and the registration limits (not the cloud
/// service's own configuration, `cloud::config::CloudLinkConfig`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CloudLinkConfig {
    /// The authorization server's base URL (its RFC 8414 metadata is at
    /// `URL/.well-known/oauth-authorization-server`). Empty: registration is off.
    pub url: String,
    /// The OAuth client id the appliance presents (RFC 8628 §3.1).
    pub client_id: String,
    /// The administrator mailed when a request names none.
    pub admin_email: String,
    /// N: how many times an expired code is replaced before the request fails (2-10).
    pub retries: u32,
    /// Requests one user address may submit per `window_seconds`.
    pub max_per_user: u32,
    /// Requests the appliance accepts per `window_seconds`, all users together.
    pub max_per_appliance: u32,
    pub window_seconds: u64,
    /// Seconds one HTTP exchange with the cloud may take.
    pub timeout_seconds: u64,
    /// A PEM file of extra CA certificates to trust for the cloud (a private CA).
    pub ca_file: Option<std::path::PathBuf>,
    /// The mail domain of LAN user names on `cloud:` queues: `alice` prints in the cloud as
    /// `alice@DOMAIN` (docs/bridge.md "Who a LAN user is in the cloud"). Empty: only names that
    /// are addresses (or cloud credentials) are accepted.
    pub user_mail_domain: String,
    /// How long the list of users allowed on this appliance (asked of the cloud) is used before
    /// it is asked again; an unknown user makes it ask again after at most a tenth of this.
    pub users_refresh_seconds: u64,
}

impl Default for CloudLinkConfig {
    fn default() -> Self {
        CloudLinkConfig {
            url: String::new(),
            client_id: "printbridge-appliance".into(),
            admin_email: String::new(),
            retries: 3,
            max_per_user: 3,
            max_per_appliance: 20,
            window_seconds: 3600,
            timeout_seconds: 30,
            ca_file: None,
            user_mail_domain: String::new(),
            users_refresh_seconds: 300,
        }
    }
}

impl CloudLinkConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !self.url.is_empty() {
            let ok = (self.url.starts_with("http://") || self.url.starts_with("https://"))
                && self
                    .url
                    .parse::<hyper::Uri>()
                    .is_ok_and(|u| u.host().is_some());
            if !ok {
                return Err("cloud.url must be an http:// or https:// URL".into());
            }
        }
        if self.client_id.is_empty()
            || self.client_id.len() > 128
            || !self.client_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err("cloud.client_id must be 1 to 128 visible ASCII characters".into());
        }
        if !self.admin_email.is_empty()
            && crate::model::email::normalize(&self.admin_email).is_none()
        {
            return Err("cloud.admin_email is not a valid address".into());
        }
        if !(2..=10).contains(&self.retries) {
            return Err("cloud.retries must be 2 to 10".into());
        }
        if self.max_per_user == 0 || self.max_per_appliance == 0 || self.window_seconds == 0 {
            return Err(
                "cloud.max_per_user, max_per_appliance and window_seconds must be positive".into(),
            );
        }
        if !(1..=300).contains(&self.timeout_seconds) {
            return Err("cloud.timeout_seconds must be 1 to 300".into());
        }
        if !self.user_mail_domain.is_empty()
            && crate::model::email::normalize(&format!("user@{}", self.user_mail_domain)).is_none()
        {
            return Err("cloud.user_mail_domain must be a mail domain (example.com)".into());
        }
        if !(10..=86_400).contains(&self.users_refresh_seconds) {
            return Err("cloud.users_refresh_seconds must be 10 to 86400".into());
        }
        Ok(())
    }

    /// The base URL without a trailing slash.
    pub fn base(&self) -> &str {
        self.url.trim_end_matches('/')
    }
}

/// How the appliance hears of the fleet's requests (CONTRACT-fleet: "Pull and push are the same
/// endpoint; the appliance's config chooses").
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FleetMode {
    /// A held request (long poll) answered the moment the fleet has a request; falls back to
    /// pull while holds keep failing.
    #[default]
    Push,
    /// One look every `interval_seconds`.
    Pull,
}

/// `[fleet]`: the appliance's link to `printbridge fleet` (specs/registration.md flow B).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FleetLinkConfig {
    /// The fleet server's base URL. Empty: no fleet link.
    pub url: String,
    pub mode: FleetMode,
    /// Seconds between pulls (pull mode, and push mode while it has fallen back to pull).
    pub interval_seconds: u64,
    /// Push: how long one held request waits at the fleet (the fleet holds at most 60 s).
    pub hold_seconds: u64,
    /// The one-time enrolment token a fleet administrator made (`printbridge fleet admin
    /// enrol-token`); without one the appliance enrols and waits for approval.
    pub enrol_token: String,
    /// A file holding the enrolment token (kept out of the configuration file).
    pub enrol_token_file: Option<PathBuf>,
    /// A PEM file of extra CA certificates to trust for the fleet.
    pub cacert: Option<PathBuf>,
    /// Seconds one ordinary exchange with the fleet may take (a held request gets
    /// `hold_seconds` more).
    pub timeout_seconds: u64,
}

impl Default for FleetLinkConfig {
    fn default() -> Self {
        FleetLinkConfig {
            url: String::new(),
            mode: FleetMode::Push,
            interval_seconds: 30,
            hold_seconds: 50,
            enrol_token: String::new(),
            enrol_token_file: None,
            cacert: None,
            timeout_seconds: 30,
        }
    }
}

impl FleetLinkConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !self.url.is_empty() {
            let ok = (self.url.starts_with("http://") || self.url.starts_with("https://"))
                && self
                    .url
                    .parse::<hyper::Uri>()
                    .is_ok_and(|u| u.host().is_some());
            if !ok {
                return Err("fleet.url must be an http:// or https:// URL".into());
            }
        }
        if !(1..=86_400).contains(&self.interval_seconds) {
            return Err("fleet.interval_seconds must be 1 to 86400".into());
        }
        if !(1..=60).contains(&self.hold_seconds) {
            return Err("fleet.hold_seconds must be 1 to 60".into());
        }
        if !(1..=300).contains(&self.timeout_seconds) {
            return Err("fleet.timeout_seconds must be 1 to 300".into());
        }
        if !self.enrol_token.is_empty() && self.enrol_token_file.is_some() {
            return Err("fleet.enrol_token and fleet.enrol_token_file exclude each other".into());
        }
        if self.enrol_token.len() > 512 || self.enrol_token.chars().any(|c| c.is_control()) {
            return Err("fleet.enrol_token must be at most 512 visible characters".into());
        }
        Ok(())
    }

    /// The base URL without a trailing slash.
    pub fn base(&self) -> &str {
        self.url.trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_key_and_file() {
        let err =
            Config::parse("[printer]\nnmae = \"x\"\n", Path::new("/etc/pb.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/etc/pb.toml"), "{msg}");
        assert!(msg.contains("nmae"), "{msg}");
    }

    #[test]
    fn checks_after_load_name_the_file_and_the_key() {
        let c = Config::parse(
            "[printer]\nmedia_default = \"A4\"\n",
            Path::new("/etc/pb.toml"),
        )
        .unwrap();
        let msg = c.validate().unwrap_err().to_string();
        assert!(msg.contains("/etc/pb.toml"), "{msg}");
        assert!(msg.contains("printer.media_default"), "{msg}");
        assert!(msg.contains("iso_a4_210x297mm"), "{msg}");
        let c = Config::parse(
            "[spool]\nmax_processing_crashes = 0\n",
            Path::new("/etc/b.toml"),
        )
        .unwrap();
        let msg = c.validate().unwrap_err().to_string();
        assert!(
            msg.contains("/etc/b.toml") && msg.contains("spool."),
            "{msg}"
        );
    }

    #[test]
    fn listen_is_one_address_or_a_list_and_a_bad_port_is_named() {
        let one = Config::parse("[server]\nlisten = \"127.0.0.1:9631\"\n", Path::new("x")).unwrap();
        assert_eq!(one.server.listen, vec!["127.0.0.1:9631".parse().unwrap()]);
        let many = Config::parse(
            "[server]\nlisten = [\"127.0.0.1:9631\", \"[::1]:9632\"]\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(many.server.listen.len(), 2);
        for (value, why) in [
            ("\"0.0.0.0:86310\"", "port 86310 is not between 0 and 65535"),
            ("[\"[::]:8631\", \"0.0.0.0:86310\"]", "port 86310"),
            ("\"printer.local:631\"", "no host names"),
            ("\"10.0.0.1\"", "no port"),
            ("8631", "must be an address"),
        ] {
            let msg = parse_err(&format!("[server]\nlisten = {value}\n"));
            assert!(msg.contains("/etc/pb.toml"), "{msg}");
            assert!(msg.contains("server.listen"), "{msg}");
            assert!(msg.contains(why), "{value}: {msg}");
        }
    }

    #[test]
    fn defaults_validate_and_partial_files_merge() {
        Config::default().validate().unwrap();
        let c = Config::parse("[printer]\nlocation = \"2nd floor\"\n", Path::new("x")).unwrap();
        assert_eq!(c.printer.location, "2nd floor");
        assert_eq!(c.printer.name, "printbridge");
        c.validate().unwrap();
    }

    #[test]
    fn dnssd_backend_is_parsed() {
        assert_eq!(Config::default().dnssd.backend, DnssdBackend::Auto);
        let c = Config::parse("[dnssd]\nbackend = \"embedded\"\n", Path::new("x")).unwrap();
        assert_eq!(c.dnssd.backend, DnssdBackend::Embedded);
        let err = Config::parse("[dnssd]\nbackend = \"bonjour\"\n", Path::new("x")).unwrap_err();
        assert!(err.to_string().contains("bonjour"), "{err}");
    }

    #[test]
    fn device_uri_is_checked_at_load() {
        let c = Config::parse(
            "[printer]\ndevice_uri = \"socket://10.0.0.9\"\nsocket_format = \"pwg-raster\"\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(
            c.printer.device().unwrap(),
            Some(crate::device::DeviceUri::Socket {
                host: "10.0.0.9".into(),
                port: 9100
            })
        );
        assert_eq!(
            c.printer.socket_format,
            crate::device::SocketFormat::PwgRaster
        );
        let err = Config::parse(
            "[printer]\ndevice_uri = \"lpd://host/q\"\n",
            Path::new("/etc/pb.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/etc/pb.toml"), "{err}");
        assert!(err.contains("printer.device_uri"), "{err}");
        assert!(err.contains("unknown scheme 'lpd'"), "{err}");
        assert!(Config::parse("[printer]\nsocket_format = \"ps\"\n", Path::new("x")).is_err());
    }

    #[test]
    fn ppd_path_is_read_from_the_printer_section() {
        assert_eq!(Config::default().printer.ppd, None);
        let c = Config::parse("[printer]\nppd = \"/etc/pb/laser.ppd\"\n", Path::new("x")).unwrap();
        assert_eq!(c.printer.ppd, Some(PathBuf::from("/etc/pb/laser.ppd")));
    }

    fn parse_err(text: &str) -> String {
        Config::parse(text, Path::new("/etc/pb.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn queues_are_read_with_the_printer_keys_and_defaults() {
        let c = Config::parse(
            "[printer]\nname = \"Front\"\n\n[[queue]]\nname = \"office\"\n\
             device_uri = \"ipp://10.0.0.5/ipp/print\"\nlocation = \"Room 2\"\n\n\
             [[queue]]\nname = \"lab.color_2\"\ncolor = false\n",
            Path::new("x"),
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.queues.len(), 2);
        assert_eq!(c.queues[0].name, "office");
        assert_eq!(c.queues[0].location, "Room 2");
        assert!(matches!(
            c.queues[0].device_in("queue").unwrap(),
            Some(crate::device::DeviceUri::Ipp { .. })
        ));
        assert_eq!(c.queues[1].name, "lab.color_2");
        assert!(!c.queues[1].color);
        // Keys left out take the same defaults as in [printer].
        assert_eq!(
            c.queues[1].media_default,
            PrinterConfig::default().media_default
        );
        assert_eq!(c.queues[1].device_uri, None);
        // No [[queue]]: exactly one queue, as before.
        assert!(Config::default().queues.is_empty());
    }

    #[test]
    fn queue_names_are_checked_at_load() {
        for bad in [
            "../x",
            "a b",
            "",
            ".hidden",
            ".",
            "..",
            "123",
            "a/b",
            "caf\u{e9}",
            "x\\y",
            "a%2F",
        ] {
            let err = parse_err(&format!("[[queue]]\nname = {bad:?}\n"));
            assert!(err.contains("/etc/pb.toml"), "{bad:?}: {err}");
            assert!(err.contains("queue.name"), "{bad:?}: {err}");
        }
        let long = "q".repeat(128);
        assert!(parse_err(&format!("[[queue]]\nname = \"{long}\"\n")).contains("queue.name"));
        let ok = "q".repeat(127);
        Config::parse(&format!("[[queue]]\nname = \"{ok}\"\n"), Path::new("x")).unwrap();
        for good in ["a", "Office-2", "lab.color_2", "2nd-floor", "a..b"] {
            assert!(valid_queue_name(good), "{good}");
        }
        // Unique, case-insensitively, and not the default printer's name.
        let err = parse_err("[[queue]]\nname = \"office\"\n[[queue]]\nname = \"Office\"\n");
        assert!(err.contains("queue.name") && err.contains("twice"), "{err}");
        let err = parse_err("[[queue]]\nname = \"PrintBridge\"\n");
        assert!(
            err.contains("queue.name") && err.contains("printer.name"),
            "{err}"
        );
        // A name is required.
        let err = parse_err("[[queue]]\nlocation = \"x\"\n");
        assert!(
            err.contains("queue.name") && err.contains("missing"),
            "{err}"
        );
        // Secure release (issue 18): per queue, checked.
        let c = Config::parse(
            "[printer]\nrelease = \"pin\"\nrelease_pin_length = 6\n[[queue]]\nname = \"b\"\n\
             release = \"sign-in\"\nrelease_expire_seconds = 60\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.printer.release_policy().pin_length, 6);
        assert_eq!(c.printer.release, crate::model::release::ReleaseMode::Pin);
        assert_eq!(c.queues[0].release_policy().expire_seconds, 60);
        assert_eq!(
            Config::default().printer.release_policy().expire_seconds,
            14400
        );
        let short = Config::parse("[printer]\nrelease_pin_length = 3\n", Path::new("x")).unwrap();
        assert!(short
            .validate()
            .unwrap_err()
            .to_string()
            .contains("printer.release_pin_length"));
        assert!(parse_err("[printer]\nrelease = \"card\"\n").contains("release"));
        assert!(
            parse_err("[[queue]]\nname = \"a\"\nrelease_expire_seconds = 0\n")
                .contains("queue.release_expire_seconds")
        );
        // Unknown keys are refused in [[queue]] as everywhere.
        let err = parse_err("[[queue]]\nname = \"a\"\nnmae = \"b\"\n");
        assert!(
            err.contains("/etc/pb.toml") && err.contains("nmae"),
            "{err}"
        );
        // --name replaces printer.name after loading: validate() catches the clash too.
        let mut c = Config::parse("[[queue]]\nname = \"office\"\n", Path::new("x")).unwrap();
        c.printer.name = "OFFICE".into();
        assert!(c.validate().unwrap_err().to_string().contains("queue.name"));
    }

    #[test]
    fn queue_settings_are_checked_at_load() {
        let err = parse_err("[[queue]]\nname = \"a\"\ndevice_uri = \"lpd://h/q\"\n");
        assert!(err.contains("/etc/pb.toml"), "{err}");
        assert!(err.contains("queue.device_uri"), "{err}");
        assert!(err.contains("\"a\""), "{err}");
        let err = parse_err("[[queue]]\nname = \"a\"\nmedia_default = \"a4\"\n");
        assert!(
            err.contains("queue.media_default") && err.contains("'a4'"),
            "{err}"
        );
        let err = parse_err("[[queue]]\nname = \"a\"\nresolutions_dpi = []\n");
        assert!(err.contains("queue.resolutions_dpi"), "{err}");
        let err = parse_err(
            "[printer]\ndevice_uri = \"file:///srv/out\"\n[[queue]]\nname = \"a\"\n\
             device_uri = \"file:///srv/out\"\n",
        );
        assert!(
            err.contains("queue.device_uri") && err.contains("/srv/out"),
            "{err}"
        );
    }

    #[test]
    fn bad_media_is_rejected() {
        let c = Config::parse("[printer]\nmedia_default = \"a4\"\n", Path::new("x")).unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("unknown media 'a4'"));
    }

    #[test]
    fn cloud_link_defaults_and_checks() {
        let c: CloudLinkConfig = toml::from_str("url = \"http://127.0.0.1:8080\"").unwrap();
        assert_eq!(c.retries, 3);
        assert!(c.validate().is_ok());
        assert!(toml::from_str::<CloudLinkConfig>("urll = \"x\"").is_err());
        for bad in [
            "url = \"ftp://x\"",
            "retries = 1",
            "retries = 11",
            "admin_email = \"nobody\"",
            "client_id = \"\"",
            "max_per_user = 0",
        ] {
            let c: CloudLinkConfig = toml::from_str(bad).unwrap();
            assert!(c.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn fleet_link_defaults_and_checks() {
        let c = Config::parse(
            "[cloud]\nurl = \"https://c.example\"\n\n[fleet]\nurl = \"https://f.example:8643\"\n\
             mode = \"pull\"\n",
            Path::new("x"),
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.fleet.mode, FleetMode::Pull);
        assert_eq!(c.fleet.interval_seconds, 30);
        assert_eq!(FleetLinkConfig::default().mode, FleetMode::Push);
        assert!(parse_err("[fleet]\nmode = \"shout\"\n").contains("mode"));
        let without_cloud =
            Config::parse("[fleet]\nurl = \"https://f.example\"\n", Path::new("x")).unwrap();
        assert!(
            without_cloud.validate().is_err(),
            "fleet.url needs cloud.url"
        );
        for bad in [
            "url = \"ftp://x\"",
            "interval_seconds = 0",
            "hold_seconds = 61",
            "timeout_seconds = 0",
            "enrol_token = \"a\"\nenrol_token_file = \"/t\"",
        ] {
            let c: FleetLinkConfig = toml::from_str(bad).unwrap();
            assert!(c.validate().is_err(), "{bad}");
        }
    }
}
