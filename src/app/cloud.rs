//! The cloud's composition root (`printbridge cloud`): opens the database, the document store and
//! the mailer, builds the [`Cloud`], starts its background tasks and serves its router on the one
//! accept loop until SIGINT/SIGTERM; or runs an administration command.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::cloud::config::{self, CloudConfig, ServerConfig};
use crate::cloud::{admin, blob, database_url, documents_dir, infra, router};
use crate::cloud::{Cloud, CloudCommand, CloudError};
use crate::model::clock::{Clock, OffsetClock, SystemClock};
use crate::net::router::RouterHttp;
use crate::net::server::{self, Connections, ServeOptions};
use crate::store::{self, Store};

/// `printbridge cloud ...` with its configuration loaded: serve, or run an admin command.
pub async fn run_cloud(
    config: CloudConfig,
    command: Option<CloudCommand>,
) -> Result<(), CloudError> {
    match command {
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
                now: cloud_clock().now(),
            };
            let result = admin::run(&cx, cmd).await;
            store.close().await;
            Ok(result?)
        }
        None => serve_cloud(config).await,
    }
}

/// The environment variable that starts the cloud's clock at a chosen instant (tests only).
pub const TEST_CLOCK_ENV: &str = "PRINTBRIDGE_TEST_CLOCK";

/// The cloud's clock: the system clock, or, when `PRINTBRIDGE_TEST_CLOCK=UNIX-SECONDS` is set,
/// one that starts at that instant and runs on in real time (tests replay dated scenarios with
/// it). A value that is not a number is ignored, with a warning.
pub fn cloud_clock() -> Arc<dyn Clock> {
    let Ok(value) = std::env::var(TEST_CLOCK_ENV) else {
        return Arc::new(SystemClock);
    };
    match OffsetClock::parse_start(&value) {
        Some(start) => {
            tracing::warn!(
                start,
                "{TEST_CLOCK_ENV} is set: the cloud's clock starts at {start} (tests only)"
            );
            Arc::new(OffsetClock::starting_at(start))
        }
        None => {
            tracing::warn!("{TEST_CLOCK_ENV}={value:?} is not unix seconds: ignored");
            Arc::new(SystemClock)
        }
    }
}

/// How the cloud's listener takes connections. It usually sits behind a load balancer, whose
/// address every connection would share: no per-client bound unless it is the whole bound, and
/// the time-outs stay as configured.
pub fn serve_options(server: &ServerConfig, tls: Option<crate::net::tls::Tls>) -> ServeOptions {
    let header_timeout = Duration::from_secs(server.header_timeout_seconds);
    ServeOptions {
        tls,
        header_timeout,
        busy_header_timeout: header_timeout,
        max_connections: server.max_connections,
        max_connections_per_client: server.max_connections,
        busy_connections: usize::MAX,
        drain_timeout: Duration::from_secs(10),
    }
}

/// Serves `cloud` on an already-bound `listener` until `shutdown` turns true, on the same accept
/// loop as the appliance (TLS on the same port, header timeout, connection bound, draining).
pub async fn serve_cloud_on(
    listener: tokio::net::TcpListener,
    cloud: Arc<Cloud>,
    options: ServeOptions,
    shutdown: watch::Receiver<bool>,
) {
    let handler = Arc::new(RouterHttp {
        trusted_proxies: cloud.config.server.trusted_proxies.clone(),
        router: router(cloud),
    });
    server::serve(listener, handler, Connections::new(options), shutdown).await
}

/// The TLS the configuration asks for, if any: its own certificate, or a self-signed one made on
/// first start in `data_dir/tls` (names: this host, `localhost` and its addresses).
pub fn server_tls(
    s: &ServerConfig,
) -> Result<Option<crate::net::tls::Tls>, crate::net::tls::TlsError> {
    use crate::net::tls::{ensure_self_signed, CertificateFiles, Tls};
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

/// The document store `[infra] document_store` names: with `auto`, chunked rows in PostgreSQL
/// (instances share nothing but the database) and files under the data directory with SQLite.
async fn open_blobs(
    config: &CloudConfig,
    store: &Store,
) -> Result<Arc<dyn blob::BlobStore>, CloudError> {
    use crate::cloud::config::DocumentStore;
    let in_database = match config.infra.document_store {
        DocumentStore::Auto => store.backend() == store::Backend::Postgres,
        DocumentStore::Files => false,
        DocumentStore::Database => true,
    };
    let dir = documents_dir(config);
    if !in_database {
        return Ok(Arc::new(blob::FsBlobStore::open_dir(&dir)?));
    }
    // Documents a file store kept before stay readable until their jobs finish.
    let legacy = dir.is_dir().then_some(dir.as_path());
    tracing::info!("documents are kept in the database");
    Ok(Arc::new(
        blob::DbBlobStore::open(store.clone(), &database_url(config)?, legacy).await?,
    ))
}

/// Purges expired records ([`Store::purge_expired`]) now and every ten minutes until `stop`.
pub fn spawn_purge(
    store: Store,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = store.purge_expired(clock.now()).await {
                tracing::warn!("purging expired records failed: {e}");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(600)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    })
}

/// Binds, opens the database, prints `listening on http://ADDR` on standard output and serves
/// until SIGINT or SIGTERM.
pub async fn serve_cloud(config: CloudConfig) -> Result<(), CloudError> {
    // printbridge-cloud.socket hands the listener over; else it is bound here.
    let listener = crate::net::systemd::listener_or_bind(config.server.listen)?;
    let addr = listener.local_addr().map_err(CloudError::Serve)?;
    std::fs::create_dir_all(&config.server.data_dir).map_err(|source| CloudError::DataDir {
        dir: config.server.data_dir.clone(),
        source,
    })?;
    let open_files = crate::net::raise_open_files_limit();
    let tls = server_tls(&config.server)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = match &config.server.public_url {
        Some(u) => config::normalize_public_url(u)?,
        None => format!("{scheme}://{addr}"),
    };
    let mut options = serve_options(&config.server, tls.clone());
    options.max_connections =
        crate::net::connections_within_open_files(options.max_connections, open_files, 256);
    options.max_connections_per_client = options.max_connections;
    let store = open_store(&config).await?;
    tracing::info!(
        database = %store::redact_url(&database_url(&config)?),
        backend = ?store.backend(),
        "database ready"
    );
    let clock = cloud_clock();
    let mailer: Arc<dyn crate::notify::Mailer> = crate::notify::from_config(&config.mail)?.into();
    if !mailer.enabled() {
        tracing::warn!(
            "[mail] smtp_host is not set: users new to the cloud get no enrolment mail; \
             give them a set-password link with `printbridge cloud admin add-user --link`"
        );
    }
    let blobs = open_blobs(&config, &store).await?;
    let cloud = Arc::new(
        Cloud::new(store.clone(), config, clock.clone(), public_url)
            .with_mailer(mailer)
            .with_blobs(blobs),
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let notifier = Arc::new(crate::net::systemd::Notifier::new());
    let on_stop = notifier.clone();
    let stop = super::stop_signal();
    tokio::spawn(async move {
        stop.await;
        on_stop.stopping();
        tracing::info!("stopping");
        let _ = stop_tx.send(true);
    });
    let purge = spawn_purge(store.clone(), clock, stop_rx.clone());

    let infra_work = tokio::spawn(infra::maintenance(cloud.clone(), stop_rx.clone()));
    let control_watch = tokio::spawn(crate::cloud::control::watch_instructions(
        cloud.clone(),
        stop_rx.clone(),
    ));
    let groups_work = tokio::spawn(crate::cloud::groups::maintenance(
        cloud.clone(),
        stop_rx.clone(),
    ));

    let follow_me_work = tokio::spawn(crate::cloud::follow_me::maintenance(
        cloud.clone(),
        stop_rx.clone(),
    ));

    // A replaced certificate file is picked up without a restart.
    let tls_watch = tls.map(|t| tokio::spawn(t.watch_files(stop_rx.clone())));

    println!(
        "printbridge cloud: listening on {scheme}://{addr} (public URL {})",
        cloud.public_url
    );
    notifier.ready(&format!("serving on {scheme}://{addr}"));
    serve_cloud_on(listener, cloud, options, stop_rx).await;
    purge.abort();
    infra_work.abort();
    control_watch.abort();
    groups_work.abort();
    follow_me_work.abort();
    if let Some(t) = tls_watch {
        t.abort();
    }
    store.close().await;
    Ok(())
}
