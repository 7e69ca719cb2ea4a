//! TLS for the IPP port: a self-signed certificate made on first start and kept in the state
//! directory (or a configured certificate and key), served through a resolver that swaps in new
//! files when they change on disk, so renewing a certificate needs no restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no usable certificate or key: {why}")]
    Pem { path: PathBuf, why: String },
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Where the certificate and key come from.
#[derive(Debug, Clone)]
pub struct CertificateFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertificateFiles {
    /// The self-signed pair kept in the state directory.
    pub fn self_signed_in(state_dir: &Path) -> CertificateFiles {
        let dir = state_dir.join("tls");
        CertificateFiles {
            cert: dir.join("certificate.pem"),
            key: dir.join("key.pem"),
        }
    }
}

/// The host names and addresses a self-signed certificate names: the host name, `<host>.local`
/// (what DNS-SD clients connect to), localhost, and every address of this machine.
pub fn subject_alt_names() -> Vec<String> {
    let mut names = Vec::new();
    if let Some(host) = host_name() {
        names.push(host.clone());
        if !host.ends_with(".local") {
            names.push(format!("{host}.local"));
        }
    }
    names.push("localhost".to_string());
    if let Ok(ifaces) = if_addrs::get_if_addrs() {
        for i in ifaces {
            let ip = i.ip().to_string();
            if !names.contains(&ip) {
                names.push(ip);
            }
        }
    }
    for ip in ["127.0.0.1", "::1"] {
        if !names.iter().any(|n| n == ip) {
            names.push(ip.to_string());
        }
    }
    names
}

/// This machine's host name, first label only (what `<host>.local` is built from).
pub fn host_name() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    let h = raw.trim().split('.').next()?.to_string();
    (!h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')).then_some(h)
}

/// How long a self-signed certificate is valid after it is made: practically forever (it is never
/// renewed), but later for a later certificate.
const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Writes a new self-signed certificate and key when `files` do not exist yet.
pub fn ensure_self_signed(files: &CertificateFiles) -> Result<(), TlsError> {
    if files.cert.is_file() && files.key.is_file() {
        return Ok(());
    }
    let generate = || -> Result<rcgen::CertifiedKey<rcgen::KeyPair>, rcgen::Error> {
        let signing_key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(subject_alt_names())?;
        // CUPS (TrustOnFirstUse) pins the first certificate it sees for a host and accepts a
        // different one only if it expires later. rcgen's fixed default (4096-01-01) would make a
        // certificate made after the state directory was lost look no newer, and every CUPS queue
        // for this appliance would stop with cups-pki-invalid. Expire a fixed span after creation.
        let since_epoch = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        params.not_after = rcgen::date_time_ymd(1970, 1, 1) + since_epoch + SELF_SIGNED_VALIDITY;
        let cert = params.self_signed(&signing_key)?;
        Ok(rcgen::CertifiedKey { cert, signing_key })
    };
    let generated = generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    if let Some(dir) = files.cert.parent() {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    write_private(&files.key, generated.signing_key.serialize_pem().as_bytes())?;
    write_private(&files.cert, generated.cert.pem().as_bytes())?;
    tracing::info!(
        "made a self-signed TLS certificate in {}",
        files.cert.display()
    );
    Ok(())
}

/// Writes a file readable only by its owner, atomically.
fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let err = |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(data).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

fn load(files: &CertificateFiles) -> Result<Arc<CertifiedKey>, TlsError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| TlsError::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    let cert_pem = read(&files.cert)?;
    let key_pem = read(&files.key)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            path: files.cert.clone(),
            why: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: files.cert.clone(),
            why: "no CERTIFICATE block".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Pem {
        path: files.key.clone(),
        why: e.to_string(),
    })?;
    let signing = any_supported_type(&key).map_err(|e| TlsError::Pem {
        path: files.key.clone(),
        why: e.to_string(),
    })?;
    let certified = CertifiedKey::new(certs, signing);
    // A key that is not the certificate's fails every handshake. During a renewal that replaces
    // one file at a time this keeps the old pair in service until both new files are in place.
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(e) => {
            return Err(TlsError::Pem {
                path: files.key.clone(),
                why: format!("not the key of {}: {e}", files.cert.display()),
            })
        }
    }
    Ok(Arc::new(certified))
}

/// Serves the current certificate; [`watch_files`] replaces it when the files change.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("tls lock").clone())
    }
}

/// The TLS side of the IPP listener.
#[derive(Clone)]
pub struct Tls {
    pub acceptor: TlsAcceptor,
    resolver: Arc<Resolver>,
    files: CertificateFiles,
}

impl Tls {
    /// Loads `files` (TLS 1.2 and 1.3, HTTP/1.1 only: IPP clients do not speak h2).
    pub fn new(files: CertificateFiles) -> Result<Tls, TlsError> {
        let resolver = Arc::new(Resolver {
            current: RwLock::new(load(&files)?),
        });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // No TLS 1.3 session tickets (RFC 8446 §4.6.1). They arrive as a record of their own after
        // the handshake, and CUPS clients with a timeout (`ipptool -T`, cupsd's ipp backend) read
        // it while waiting for the response, find no application data and give up the connection
        // ("0 bytes in response"). cupsd sends none either; a full handshake costs little on a LAN.
        config.send_tls13_tickets = 0;
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            resolver,
            files,
        })
    }

    /// Reloads the certificate whenever its files change, until `shutdown`.
    pub async fn watch_files(self, mut shutdown: watch::Receiver<bool>) {
        let stamp = |f: &CertificateFiles| -> Option<(SystemTime, SystemTime)> {
            Some((
                std::fs::metadata(&f.cert).ok()?.modified().ok()?,
                std::fs::metadata(&f.key).ok()?.modified().ok()?,
            ))
        };
        let mut last = stamp(&self.files);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = shutdown.changed() => return,
            }
            let now = stamp(&self.files);
            if now.is_some() && now != last {
                match load(&self.files) {
                    Ok(key) => {
                        *self.resolver.current.write().expect("tls lock") = key;
                        tracing::info!("reloaded TLS certificate {}", self.files.cert.display());
                        last = now;
                    }
                    // Half-written files: keep serving the old certificate and try again.
                    Err(e) => tracing::warn!("TLS certificate not reloaded: {e}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_made_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let files = CertificateFiles::self_signed_in(dir.path());
        ensure_self_signed(&files).unwrap();
        let first = std::fs::read(&files.cert).unwrap();
        ensure_self_signed(&files).unwrap();
        assert_eq!(
            std::fs::read(&files.cert).unwrap(),
            first,
            "kept across restarts"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&files.key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        Tls::new(files).unwrap();
    }

    #[test]
    fn names_include_localhost_and_loopback() {
        let n = subject_alt_names();
        assert!(n.iter().any(|s| s == "localhost"));
        assert!(n.iter().any(|s| s == "127.0.0.1"));
    }

    #[test]
    fn garbage_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let files = CertificateFiles {
            cert: dir.path().join("c.pem"),
            key: dir.path().join("k.pem"),
        };
        std::fs::write(&files.cert, "not pem").unwrap();
        std::fs::write(&files.key, "not pem").unwrap();
        assert!(matches!(Tls::new(files), Err(TlsError::Pem { .. })));
    }
}
