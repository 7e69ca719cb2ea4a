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
    /// Connections served at once.
    pub max_connections: usize,
    /// TLS on the IPP port (same port as plain HTTP, and by HTTP Upgrade).
    pub tls: bool,
    /// PEM certificate chain; with `tls_key`, replaces the self-signed certificate.
    pub tls_certificate: Option<PathBuf>,
    /// PEM private key for `tls_certificate`.
    pub tls_key: Option<PathBuf>,
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
            max_connections: 256,
            tls: true,
            tls_certificate: None,
            tls_key: None,
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
    /// A PPD describing the device: its media, trays, duplex, colour and resolutions replace
    /// `media_default`, `color`, `duplex` and `resolutions_dpi`. Read once at start, from this
    /// local path only.
    pub ppd: Option<PathBuf>,
}

impl PrinterConfig {
    /// The parsed device URI, `None` for the default output directory.
    pub fn device(&self) -> Result<Option<crate::device::DeviceUri>, String> {
        self.device_uri
            .as_deref()
            .map(|u| {
                crate::device::DeviceUri::parse(u).map_err(|e| format!("printer.device_uri: {e}"))
            })
            .transpose()
    }
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
            ppd: None,
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
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            retain_jobs: 500,
            retain_seconds: 7 * 24 * 3600,
            keep_documents: false,
            multiple_operation_timeout_seconds: 300,
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
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        // A wrong device URI is caught at load, naming the key and the file.
        config
            .printer
            .device()
            .map_err(|message| ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let p = &self.printer;
        if p.name.trim().is_empty() || p.name.len() > 127 {
            return bad("printer.name must be 1 to 127 characters".into());
        }
        if p.name.chars().any(|c| c.is_control()) {
            return bad("printer.name must not contain control characters".into());
        }
        for (key, v) in [
            ("printer.location", &p.location),
            ("printer.info", &p.info),
            ("printer.organization", &p.organization),
            ("printer.organizational_unit", &p.organizational_unit),
            ("printer.make_and_model", &p.make_and_model),
        ] {
            if v.len() > 127 {
                return bad(format!("{key} is longer than 127 characters"));
            }
        }
        if !p.geo_location.is_empty() && !p.geo_location.starts_with("geo:") {
            return bad("printer.geo_location must be a geo: URI (RFC 5870) or empty".into());
        }
        let media = crate::model::printer::standard_media();
        for m in std::iter::once(&p.media_default).chain(p.media_ready.iter()) {
            if crate::model::printer::media_by_name(&media, m).is_none() {
                let names: Vec<_> = media.iter().map(|m| m.name.as_str()).collect();
                return bad(format!("unknown media '{m}'; known: {}", names.join(", ")));
            }
        }
        if p.resolutions_dpi.is_empty()
            || p.resolutions_dpi.iter().any(|r| !(72..=2400).contains(r))
        {
            return bad("printer.resolutions_dpi must list resolutions between 72 and 2400".into());
        }
        if let Err(e) = p.device() {
            return bad(e);
        }
        if p.device_timeout_seconds == 0 {
            return bad("printer.device_timeout_seconds must be positive".into());
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
        if self.server.listen.is_empty() {
            return bad("server.listen must name at least one address".into());
        }
        if self.spool.multiple_operation_timeout_seconds == 0 {
            return bad("spool.multiple_operation_timeout_seconds must be positive".into());
        }
        let l = &self.limits;
        if l.max_attribute_bytes < 1024 || l.max_attributes < 16 || l.max_value_length < 256 {
            return bad("limits are too small for real clients (see docs/config.md)".into());
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

    #[test]
    fn bad_media_is_rejected() {
        let c = Config::parse("[printer]\nmedia_default = \"a4\"\n", Path::new("x")).unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("unknown media 'a4'"));
    }
}
