//! The cloud's configuration: a TOML file of its own (`printbridge cloud --config FILE`), every key
//! optional, unknown keys rejected; command-line flags override the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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
pub struct CloudConfig {
    pub server: ServerConfig,
    pub device_authorization: DeviceAuthorizationConfig,
    pub tokens: TokenConfig,
    pub accounts: AccountsConfig,
    pub limits: LimitsConfig,
    pub infra: InfraConfig,
    pub mail: crate::notify::MailConfig,
    /// `[metrics]`: who may read `/metrics` (docs/operations.md).
    pub metrics: crate::metrics::MetricsConfig,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The URL people and devices reach this service at (verification URIs, mails, metadata).
    /// Default: `http://` + the bound listen address.
    pub public_url: Option<String>,
    /// Where the SQLite database and documents live.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`; default: SQLite in `data_dir`.
    pub database: Option<String>,
    /// TLS on the listening port (plain HTTP and TLS share it): a certificate and key in PEM...
    pub tls_certificate: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// ... or a self-signed certificate made on first start and kept in `data_dir/tls`.
    pub tls_self_signed: bool,
    /// Request headers (and a TLS handshake) must arrive within this many seconds.
    pub header_timeout_seconds: u64,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Reverse proxies / load balancers whose `X-Forwarded-For` gives the client's address
    /// (for throttling and logs). Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".parse().expect("literal"),
            public_url: None,
            data_dir: PathBuf::from("printbridge-cloud-data"),
            database: None,
            tls_certificate: None,
            tls_key: None,
            tls_self_signed: false,
            header_timeout_seconds: 30,
            max_connections: 10_000,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceAuthorizationConfig {
    /// Lifetime of a device_code / user_code pair, seconds (RFC 8628 `expires_in`).
    pub expires_in_seconds: i64,
    /// Minimum seconds between token polls (RFC 8628 `interval`).
    pub interval_seconds: i64,
    /// Live pending requests one device (by UUID) or one user address may hold.
    pub max_pending: i64,
}

impl Default for DeviceAuthorizationConfig {
    fn default() -> Self {
        DeviceAuthorizationConfig {
            expires_in_seconds: 900,
            interval_seconds: 5,
            max_pending: 3,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Lifetime of a device's access token, seconds.
    pub access_token_seconds: i64,
    /// Lifetime of a refresh token, seconds (each use replaces it).
    pub refresh_token_seconds: i64,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            access_token_seconds: 3600,
            refresh_token_seconds: 90 * 86_400,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// Lifetime of a web sign-in, seconds.
    pub session_seconds: i64,
    /// Lifetime of a one-time set-password link, seconds.
    pub link_seconds: i64,
    /// Shortest password accepted.
    pub min_password_length: usize,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            session_seconds: 12 * 3600,
            link_seconds: 86_400,
            min_password_length: 10,
        }
    }
}

/// Abuse limits, counted in the database over fixed windows so they hold across instances.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Length of a counting window, seconds.
    pub window_seconds: i64,
    /// Wrong user codes one client address may enter per window.
    pub user_code_failures_per_client: i64,
    /// Wrong user codes all clients together may enter per window.
    pub user_code_failures_global: i64,
    /// Failed sign-ins per client address per window.
    pub sign_in_failures_per_client: i64,
    /// Failed sign-ins per account per window.
    pub sign_in_failures_per_account: i64,
    /// Device authorization requests per client address per window.
    pub device_requests_per_client: i64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            window_seconds: 900,
            user_code_failures_per_client: 10,
            user_code_failures_global: 1000,
            sign_in_failures_per_client: 30,
            sign_in_failures_per_account: 10,
            device_requests_per_client: 60,
        }
    }
}

/// The Infrastructure Printers (PWG 5100.18).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InfraConfig {
    /// Largest document accepted, bytes.
    pub max_document_bytes: u64,
    /// A job whose output device sends no Update-Job-Status / Update-Active-Jobs for this long is
    /// offered to the output devices again.
    pub device_silence_seconds: i64,
    /// Longest a Get-Notifications with notify-wait is held, seconds.
    pub notify_wait_seconds: u64,
    /// Output devices one printer may have.
    pub max_output_devices: i64,
    /// How long finished jobs stay listed (Get-Jobs which-jobs=completed), seconds.
    pub job_history_seconds: i64,
    /// A job created with Create-Job whose last document has not arrived this long after its
    /// creation is aborted, never printed (issue 13: a client that crashed between Create-Job
    /// and Send-Document leaves no job that could print later).
    pub incomplete_job_seconds: i64,
    /// Where documents are kept: `auto` (the database with PostgreSQL, files with SQLite),
    /// `files` (DATA_DIR/documents) or `database` (chunked rows).
    pub document_store: DocumentStore,
    /// A job on a follow-me queue (print-anywhere, docs/release.md) not released this long after
    /// it arrived is deleted unprinted, seconds.
    pub held_job_seconds: i64,
}

/// [`InfraConfig::document_store`].
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum DocumentStore {
    #[default]
    Auto,
    Files,
    Database,
}

impl Default for InfraConfig {
    fn default() -> Self {
        InfraConfig {
            max_document_bytes: 512 * 1024 * 1024,
            device_silence_seconds: 300,
            notify_wait_seconds: 30,
            max_output_devices: 16,
            job_history_seconds: 86_400,
            incomplete_job_seconds: 900,
            document_store: DocumentStore::Auto,
            held_job_seconds: 86_400,
        }
    }
}

impl CloudConfig {
    pub fn load(path: &Path) -> Result<CloudConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        let srv = &self.server;
        if srv.tls_certificate.is_some() != srv.tls_key.is_some() {
            return bad("server.tls_certificate and server.tls_key go together");
        }
        if srv.tls_certificate.is_some() && srv.tls_self_signed {
            return bad("server.tls_self_signed and server.tls_certificate exclude each other");
        }
        if srv.header_timeout_seconds < 1 || srv.max_connections < 1 {
            return bad(
                "server.header_timeout_seconds and server.max_connections must be at least 1",
            );
        }
        let d = &self.device_authorization;
        if !(1..=86_400).contains(&d.expires_in_seconds) {
            return bad("device_authorization.expires_in_seconds must be 1..=86400");
        }
        if !(1..=3600).contains(&d.interval_seconds) {
            return bad("device_authorization.interval_seconds must be 1..=3600");
        }
        if d.max_pending < 1 {
            return bad("device_authorization.max_pending must be at least 1");
        }
        if self.tokens.access_token_seconds < 60 || self.tokens.refresh_token_seconds < 60 {
            return bad("tokens.*_seconds must be at least 60");
        }
        if self.accounts.session_seconds < 60 || self.accounts.link_seconds < 60 {
            return bad("accounts.*_seconds must be at least 60");
        }
        if !(60..=31_536_000).contains(&self.infra.held_job_seconds) {
            return bad("infra.held_job_seconds must be 60..=31536000");
        }
        if self.accounts.min_password_length < 8 {
            return bad("accounts.min_password_length must be at least 8");
        }
        let l = &self.limits;
        if l.window_seconds < 1
            || l.user_code_failures_per_client < 1
            || l.user_code_failures_global < 1
            || l.sign_in_failures_per_client < 1
            || l.sign_in_failures_per_account < 1
            || l.device_requests_per_client < 1
        {
            return bad("limits.* must be at least 1");
        }
        let i = &self.infra;
        if i.max_document_bytes < 1024
            || i.device_silence_seconds < 1
            || !(1..=300).contains(&i.notify_wait_seconds)
            || i.max_output_devices < 1
            || i.job_history_seconds < 60
            || i.incomplete_job_seconds < 1
        {
            return bad(
                "infra.*: max_document_bytes >= 1024, device_silence_seconds >= 1, \
                 notify_wait_seconds 1..=300, max_output_devices >= 1, job_history_seconds >= 60, \
                 incomplete_job_seconds >= 1",
            );
        }
        if let Some(u) = &self.server.public_url {
            normalize_public_url(u)?;
        }
        Ok(())
    }
}

/// `http(s)://host[:port][/prefix]` without a trailing slash.
pub fn normalize_public_url(url: &str) -> Result<String, ConfigError> {
    let u = url.trim().trim_end_matches('/');
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.contains(['?', '#', ' ', '"', '<', '>']) => {
            Ok(u.to_string())
        }
        _ => Err(ConfigError::Invalid(format!(
            "public URL {url:?} must look like https://host[:port][/path]"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = CloudConfig::default();
        c.validate().unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.device_authorization.expires_in_seconds, 900);
        assert_eq!(c.device_authorization.interval_seconds, 5);
    }

    #[test]
    fn parses_and_rejects_unknown_keys() {
        let c: CloudConfig =
            toml::from_str("[device_authorization]\nexpires_in_seconds = 3\n").unwrap();
        assert_eq!(c.device_authorization.expires_in_seconds, 3);
        assert!(toml::from_str::<CloudConfig>("[server]\nlisten2 = 1\n").is_err());
    }

    #[test]
    fn public_urls() {
        assert_eq!(
            normalize_public_url("https://print.example.com/").unwrap(),
            "https://print.example.com"
        );
        assert!(normalize_public_url("ftp://x").is_err());
        assert!(normalize_public_url("https://").is_err());
    }
}
