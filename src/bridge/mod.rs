//! Appliance ↔ cloud: the registration requests' store (the `[cloud]` settings are
//! [`crate::config::CloudLinkConfig`]), and the
//! registration agent (`registration`) that gets a device code, tells the administrator and sees
//! the request through (specs/registration.md flow A), with its JSON API (`api`) and the
//! `printbridge register` panel (`cli`); the control channel's client (`control`); group sign-in
//! and sign-out, power saving and pushed settings of the shared queues (`groups`, with the
//! panel's page and API in `panel`); the admission and cloud link of queues that print through
//! the cloud (`outbound`); the link to a fleet server that relays registration requests
//! (`fleet_link`, flow B).

pub mod api;
pub mod cli;
pub mod control;
pub mod fleet_link;
pub mod follow_me;
pub mod groups;
pub mod http;
pub mod outbound;
pub mod panel;
pub mod proxy;
pub mod registration;
pub mod release_page;
pub mod signin_cli;
pub mod store;

use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("cloud registration: {0}")]
    Store(#[from] store::StoreError),
    #[error("cloud registration: {0}")]
    Http(#[from] http::HttpError),
    #[error("cloud registration: {0}")]
    Mail(#[from] crate::notify::MailError),
    #[error(transparent)]
    Control(#[from] control::ControlError),
    #[error(transparent)]
    Fleet(#[from] fleet_link::FleetLinkError),
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

/// A mail address as it will be used (trimmed, lower-cased), or `None` when it is not one.
pub fn valid_email(input: &str) -> Option<String> {
    crate::model::email::normalize(input)
}
