//! Appliance ↔ cloud: the `[cloud]` settings, the registration requests' store, and the
//! registration agent (`registration`) that gets a device code, tells the administrator and sees
//! the request through (specs/registration.md flow A), with its JSON API (`api`) and the
//! `printbridge register` panel (`cli`).

pub mod api;
pub mod cli;
pub mod http;
pub mod registration;
pub mod store;

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("cloud registration: {0}")]
    Store(#[from] store::StoreError),
    #[error("cloud registration: {0}")]
    Http(#[from] http::HttpError),
    #[error("cloud registration: {0}")]
    Mail(#[from] crate::notify::MailError),
}

/// Builds the registration agent from `[cloud]` and `[mail]` and starts it; the agent also
/// serves the API (a disabled `[cloud]` still answers it, with 503 on submit).
pub async fn start(
    config: &crate::config::Config,
    state_dir: &Path,
    identity: registration::DeviceIdentity,
    clock: Arc<dyn crate::model::clock::Clock>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(Arc<registration::Agent>, tokio::task::JoinHandle<()>), BridgeError> {
    let store = Arc::new(store::RegistrationStore::open(state_dir).await?);
    let mailer: Arc<dyn crate::notify::Mailer> =
        Arc::from(crate::notify::from_config(&config.mail)?);
    let agent = Arc::new(registration::Agent::new(
        config.cloud.clone(),
        store,
        mailer,
        clock,
        identity,
        state_dir,
    )?);
    let task = tokio::spawn(agent.clone().run(shutdown));
    Ok((agent, task))
}

/// `[cloud]`: which cloud the appliance registers with and the registration limits.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CloudConfig {
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
}

impl Default for CloudConfig {
    fn default() -> Self {
        CloudConfig {
            url: String::new(),
            client_id: "printbridge-appliance".into(),
            admin_email: String::new(),
            retries: 3,
            max_per_user: 3,
            max_per_appliance: 20,
            window_seconds: 3600,
            timeout_seconds: 30,
            ca_file: None,
        }
    }
}

impl CloudConfig {
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
        if !self.admin_email.is_empty() && valid_email(&self.admin_email).is_none() {
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
        Ok(())
    }

    /// The base URL without a trailing slash.
    pub fn base(&self) -> &str {
        self.url.trim_end_matches('/')
    }
}

/// A mail address as it will be used (trimmed, lower-cased), or `None` when it is not one.
pub fn valid_email(input: &str) -> Option<String> {
    crate::cloud::accounts::normalize_email(input).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_config_defaults_and_checks() {
        let c: CloudConfig = toml::from_str("url = \"http://127.0.0.1:8080\"").unwrap();
        assert_eq!(c.retries, 3);
        assert!(c.validate().is_ok());
        assert!(toml::from_str::<CloudConfig>("urll = \"x\"").is_err());
        for bad in [
            "url = \"ftp://x\"",
            "retries = 1",
            "retries = 11",
            "admin_email = \"nobody\"",
            "client_id = \"\"",
            "max_per_user = 0",
        ] {
            let c: CloudConfig = toml::from_str(bad).unwrap();
            assert!(c.validate().is_err(), "{bad}");
        }
    }
}
