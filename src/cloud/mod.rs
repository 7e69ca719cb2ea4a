//! The cloud print service (`printbridge cloud`): accounts and web sign-in, OAuth 2.0 device
//! authorization (RFC 8628) for appliances, the printer registry and IPP INFRA Infrastructure
//! Printers (PWG 5100.18). State lives only in the database ([`crate::store`]), so several
//! instances can share one PostgreSQL behind a load balancer.
//!
//! - [`config`]: the cloud's TOML configuration.
//! - [`control`]: the devices' control channel (long poll, instruction queue, acknowledgements).
//! - [`accounts`]: passwords, sign-in/out, sessions, CSRF, set-password links.
//! - [`device_auth`]: RFC 8414 metadata, device authorization and token endpoints, the
//!   verification page, bearer tokens.
//! - [`admin`]: `printbridge cloud admin ...` bootstrap commands; [`admin_pages`]: the
//!   administrator's overview page and devices' access requests.
//! - [`enrolment`]: accounts and set-password mails for users approved before they had one.
//! - [`pages`]: templates and page responses; [`secrets`]: tokens, hashes and user codes.
//! - [`user_tokens`]: users' personal access tokens (Bearer credentials for print clients).
//! - [`registry`]: the printer registry API for approved devices.
//! - [`infra`]: the Infrastructure Printers at `/ipp/print/{printer}`; [`notify`]: their
//!   subscriptions and ippget notifications; [`blob`]: where documents are kept.

pub mod accounts;
pub mod admin;
pub mod admin_notify;
pub mod admin_pages;
pub mod blob;
pub mod config;
pub mod control;
pub mod device_auth;
pub mod enrolment;
pub mod infra;
pub mod notify;
pub mod pages;
pub mod registry;
pub mod secrets;
pub mod user_tokens;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::model::clock::{Clock, SystemClock};
use crate::store::{self, Store, StoreError};
use config::{CloudConfig, ConfigError};

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot use data directory {dir}: {source}")]
    DataDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database {url}: {source}")]
    Store { url: String, source: StoreError },
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Admin(#[from] admin::AdminError),
    #[error("TLS: {0}")]
    Tls(#[from] crate::net::tls::TlsError),
    #[error("[mail]: {0}")]
    Mail(#[from] crate::notify::MailError),
    #[error("cannot open the document store: {0}")]
    Blob(#[from] blob::BlobError),
}

/// `printbridge cloud [OPTIONS] [admin ...]`.
#[derive(clap::Args, Debug)]
pub struct CloudArgs {
    #[command(flatten)]
    pub options: CloudOptions,
    #[command(subcommand)]
    pub command: Option<CloudCommand>,
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct CloudOptions {
    /// Configuration file (TOML); see docs/cloud.md.
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on (replaces server.listen; default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR:PORT", global = true)]
    pub listen: Option<SocketAddr>,
    /// Where the SQLite database and documents live (default ./printbridge-cloud-data).
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER:PASSWORD@HOST/DB (default: SQLite in the
    /// data directory).
    #[arg(
        long,
        value_name = "URL",
        global = true,
        env = "PRINTBRIDGE_CLOUD_DATABASE",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// The URL people and devices reach this service at (verification URIs, mails).
    #[arg(long, value_name = "URL", global = true)]
    pub public_url: Option<String>,
    /// Serve TLS with a self-signed certificate kept in the data directory (replaces
    /// server.tls_self_signed).
    #[arg(long, global = true)]
    pub tls_self_signed: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum CloudCommand {
    /// Administer the service: create organisations and users.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
}

impl CloudOptions {
    /// The configuration file (or the defaults) with the flags applied, validated.
    pub fn config(&self) -> Result<CloudConfig, ConfigError> {
        let mut c = match &self.config {
            Some(p) => CloudConfig::load(p)?,
            None => CloudConfig::default(),
        };
        if let Some(l) = self.listen {
            c.server.listen = l;
        }
        if let Some(d) = &self.data_dir {
            c.server.data_dir = d.clone();
        }
        if let Some(d) = &self.database {
            c.server.database = Some(d.clone());
        }
        if let Some(u) = &self.public_url {
            c.server.public_url = Some(u.clone());
        }
        if self.tls_self_signed {
            c.server.tls_self_signed = true;
        }
        c.validate()?;
        Ok(c)
    }
}

/// The running service's shared state. Holds no state of its own beyond configuration: everything
/// that changes is in the database.
pub struct Cloud {
    pub store: Store,
    pub config: CloudConfig,
    pub clock: Arc<dyn Clock>,
    /// Without a trailing slash.
    pub public_url: String,
    /// Cookies get `Secure` (and the `__Host-` prefix) when the public URL is https.
    pub secure_cookies: bool,
    /// Enrolment mails; [`crate::notify::NoMailer`] unless `[mail]` names a server.
    pub mailer: Arc<dyn crate::notify::Mailer>,
    /// Where documents of Infrastructure Printer jobs are kept.
    pub blobs: Arc<dyn blob::BlobStore>,
    /// Wakes this instance's held Get-Notifications requests when it posts an event.
    pub events: notify::EventHub,
}

impl Cloud {
    pub fn new(
        store: Store,
        config: CloudConfig,
        clock: Arc<dyn Clock>,
        public_url: String,
    ) -> Cloud {
        let secure_cookies = public_url.starts_with("https://");
        let config_documents_dir = documents_dir(&config);
        Cloud {
            store,
            config,
            clock,
            public_url,
            secure_cookies,
            mailer: Arc::new(crate::notify::NoMailer),
            blobs: Arc::new(blob::FsBlobStore::at(&config_documents_dir)),
            events: notify::EventHub::default(),
        }
    }

    /// The same service keeping documents in `blobs`.
    pub fn with_blobs(mut self, blobs: Arc<dyn blob::BlobStore>) -> Cloud {
        self.blobs = blobs;
        self
    }

    /// The same service sending mail through `mailer`.
    pub fn with_mailer(mut self, mailer: Arc<dyn crate::notify::Mailer>) -> Cloud {
        self.mailer = mailer;
        self
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn session_cookie(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-pb_session"
        } else {
            "pb_session"
        }
    }

    pub fn csrf_cookie(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-pb_csrf"
        } else {
            "pb_csrf"
        }
    }
}

/// Where the filesystem blob store keeps documents: `DATA_DIR/documents`.
pub fn documents_dir(config: &CloudConfig) -> PathBuf {
    config.server.data_dir.join("documents")
}

/// Every route of the service.
pub fn router(cloud: Arc<Cloud>) -> Router {
    use device_auth as da;
    Router::new()
        .route(
            "/",
            get(|| async { pages::redirect(da::VERIFICATION_PATH) }),
        )
        .route(da::METADATA_PATH, get(da::metadata))
        .route(
            da::DEVICE_AUTHORIZATION_PATH,
            post(da::device_authorization),
        )
        .route(da::TOKEN_PATH, post(da::token))
        .route(admin_notify::NOTIFY_PATH, post(admin_notify::notify_admin))
        .route(
            da::VERIFICATION_PATH,
            get(da::verify_get).post(da::verify_post),
        )
        .route(
            "/signin",
            get(accounts::sign_in_get).post(accounts::sign_in_post),
        )
        .route("/signout", post(accounts::sign_out))
        .route(
            "/set-password",
            get(accounts::set_password_get).post(accounts::set_password_post),
        )
        .route("/api/v1/device", get(da::api_device))
        .route(
            user_tokens::TOKENS_PATH,
            get(user_tokens::tokens_get).post(user_tokens::tokens_post),
        )
        .route(control::CONTROL_PATH, get(control::poll))
        .route("/api/v1/control/{id}/ack", post(control::ack))
        .route(admin_pages::ADMIN_PATH, get(admin_pages::admin_get))
        .route(
            admin_pages::ACCESS_DECISION_PATH,
            post(admin_pages::access_decision),
        )
        .route(
            admin_pages::ACCESS_REQUESTS_PATH,
            post(admin_pages::access_request_create),
        )
        .route(
            "/api/v1/access-requests/{id}",
            get(admin_pages::access_request_get),
        )
        .route(
            registry::PRINTERS_PATH,
            get(registry::list).post(registry::register),
        )
        // Documents stream through this handler with their own limit (infra.max_document_bytes).
        .route("/ipp/print/{printer}", post(infra::post))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(cloud)
}

/// Serves the cloud on an already-bound `listener` until `shutdown` turns true, with the same
/// listener code as the appliance's (TLS on the same port, header timeout, connection bound).
pub async fn run(
    listener: TcpListener,
    cloud: Arc<Cloud>,
    options: crate::net::router::RouterOptions,
    shutdown: watch::Receiver<bool>,
) {
    crate::net::router::serve_router(listener, router(cloud), options, shutdown).await
}

/// The TLS the configuration asks for, if any: its own certificate, or a self-signed one made on
/// first start in `data_dir/tls` (names: this host, `localhost` and its addresses).
fn server_tls(config: &CloudConfig) -> Result<Option<crate::net::tls::Tls>, CloudError> {
    use crate::net::tls::{ensure_self_signed, CertificateFiles, Tls};
    let s = &config.server;
    let files = match (&s.tls_certificate, &s.tls_key) {
        (Some(cert), Some(key)) => CertificateFiles {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ if s.tls_self_signed => {
            let files = CertificateFiles::self_signed_in(&s.data_dir);
            ensure_self_signed(&files)?;
            files
        }
        _ => return Ok(None),
    };
    Ok(Some(Tls::new(files)?))
}

/// The database URL the configuration names (SQLite in the data directory by default).
pub fn database_url(config: &CloudConfig) -> Result<String, CloudError> {
    match &config.server.database {
        Some(url) => Ok(url.clone()),
        None => {
            let dir = std::path::absolute(&config.server.data_dir).map_err(|source| {
                CloudError::DataDir {
                    dir: config.server.data_dir.clone(),
                    source,
                }
            })?;
            Ok(store::sqlite_url(&dir))
        }
    }
}

async fn open_store(config: &CloudConfig) -> Result<Store, CloudError> {
    let dir = &config.server.data_dir;
    std::fs::create_dir_all(dir).map_err(|source| CloudError::DataDir {
        dir: dir.clone(),
        source,
    })?;
    let url = database_url(config)?;
    Store::open(&url).await.map_err(|source| CloudError::Store {
        url: store::redact_url(&url),
        source,
    })
}

/// `printbridge cloud ...`: serve, or run an admin command.
pub async fn main(args: CloudArgs) -> Result<(), CloudError> {
    let config = args.options.config()?;
    match args.command {
        Some(CloudCommand::Admin(cmd)) => {
            let store = open_store(&config).await?;
            let public_url = match &config.server.public_url {
                Some(u) => config::normalize_public_url(u)?,
                None => format!("http://{}", config.server.listen),
            };
            let cx = admin::AdminContext {
                store: &store,
                public_url: &public_url,
                min_password_length: config.accounts.min_password_length,
                link_seconds: config.accounts.link_seconds,
                now: SystemClock.now(),
            };
            let result = admin::run(&cx, cmd).await;
            store.close().await;
            Ok(result?)
        }
        None => serve(config).await,
    }
}

/// Binds, opens the database, prints `listening on http://ADDR` on standard output and serves
/// until SIGINT or SIGTERM.
pub async fn serve(config: CloudConfig) -> Result<(), CloudError> {
    let listener = crate::net::bind(config.server.listen)?;
    let addr = listener.local_addr().map_err(CloudError::Serve)?;
    std::fs::create_dir_all(&config.server.data_dir).map_err(|source| CloudError::DataDir {
        dir: config.server.data_dir.clone(),
        source,
    })?;
    let tls = server_tls(&config)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = match &config.server.public_url {
        Some(u) => config::normalize_public_url(u)?,
        None => format!("{scheme}://{addr}"),
    };
    let options = crate::net::router::RouterOptions {
        tls: tls.clone(),
        header_timeout: Duration::from_secs(config.server.header_timeout_seconds),
        max_connections: config.server.max_connections,
        trusted_proxies: config.server.trusted_proxies.clone(),
    };
    let store = open_store(&config).await?;
    tracing::info!(
        database = %store::redact_url(&database_url(&config)?),
        backend = ?store.backend(),
        "database ready"
    );
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mailer: Arc<dyn crate::notify::Mailer> = crate::notify::from_config(&config.mail)?.into();
    if !mailer.enabled() {
        tracing::warn!(
            "[mail] smtp_host is not set: users new to the cloud get no enrolment mail; \
             give them a set-password link with `printbridge cloud admin add-user --link`"
        );
    }
    let blobs = Arc::new(blob::FsBlobStore::open_dir(&documents_dir(&config))?);
    let cloud = Arc::new(
        Cloud::new(store.clone(), config, clock.clone(), public_url)
            .with_mailer(mailer)
            .with_blobs(blobs),
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stopping");
        let _ = stop_tx.send(true);
    });
    let purge_store = store.clone();
    let mut purge_stop = stop_rx.clone();
    let purge = tokio::spawn(async move {
        loop {
            if let Err(e) = purge_store.purge_expired(clock.now()).await {
                tracing::warn!("purging expired records failed: {e}");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(600)) => {}
                _ = purge_stop.wait_for(|s| *s) => return,
            }
        }
    });

    let infra_work = tokio::spawn(infra::maintenance(cloud.clone(), stop_rx.clone()));

    // A replaced certificate file is picked up without a restart.
    let tls_watch = tls.map(|t| tokio::spawn(t.watch_files(stop_rx.clone())));

    println!(
        "printbridge cloud: listening on {scheme}://{addr} (public URL {})",
        cloud.public_url
    );
    run(listener, cloud, options, stop_rx).await;
    purge.abort();
    infra_work.abort();
    if let Some(t) = tls_watch {
        t.abort();
    }
    store.close().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
