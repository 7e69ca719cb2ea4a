//! Outgoing mail: the [`Mailer`] trait the cloud (and later the appliance) sends through, its SMTP
//! implementation with lettre (STARTTLS whenever the server offers it, RFC 3207), the `[mail]`
//! configuration, and the message texts ([`messages`]). Flood limits are the caller's: they need
//! the store.

pub mod messages;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail is not configured ([mail] smtp_host is empty)")]
    NotConfigured,
    #[error("invalid mail address {0:?}")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("cannot read the SMTP CA file {path}: {source}")]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the SMTP password file {path}: {source}")]
    PasswordFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("SMTP TLS settings: {0}")]
    Tls(String),
    /// The server refused or the connection failed; the text is lettre's (no secrets in it).
    #[error("sending through SMTP failed: {0}")]
    Smtp(String),
}

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpTls {
    /// STARTTLS when the server offers it (RFC 3207), plain otherwise.
    #[default]
    Opportunistic,
    /// STARTTLS or fail.
    Starttls,
    /// TLS from the first byte ("SMTPS", RFC 8314 §3.3; usually port 465).
    Wrapper,
    /// Never encrypt: only for a relay on the same host.
    None,
}

/// `[mail]`: where mail goes out. An empty `smtp_host` means no mail is sent (and the pages say
/// so where a mail would have been the only way to pass a link on).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: SmtpTls,
    /// A PEM file with extra CA certificates to trust (a private mail relay's own CA).
    pub ca_file: Option<PathBuf>,
    /// SMTP AUTH user; the password comes from `password_file` (never from the config text, so
    /// the config can be world-readable).
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// The sender, e.g. `printbridge <print@example.com>`.
    pub from: String,
    pub timeout_seconds: u64,
    /// Mails one address may receive per `[limits] window_seconds` (flood protection: anyone
    /// can type someone else's address into a device).
    pub max_per_address: i64,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            smtp_host: String::new(),
            smtp_port: 25,
            tls: SmtpTls::Opportunistic,
            ca_file: None,
            username: None,
            password_file: None,
            from: "printbridge <printbridge@localhost>".into(),
            timeout_seconds: 30,
            max_per_address: 5,
        }
    }
}

/// One mail: a plain-text body and, optionally, the same content as HTML (sent as
/// multipart/alternative, RFC 2046 §5.1.4, text first so plain readers show the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub html: Option<String>,
}

pub type MailFuture<'a> = Pin<Box<dyn Future<Output = Result<(), MailError>> + Send + 'a>>;

pub trait Mailer: Send + Sync {
    /// Sends `mail`; Ok once the server accepted it for delivery.
    fn send(&self, mail: Mail) -> MailFuture<'_>;
    /// False when mail is switched off (nothing would be delivered).
    fn enabled(&self) -> bool {
        true
    }
}

/// The mailer used when `[mail]` names no server: every send fails with
/// [`MailError::NotConfigured`], so callers can tell the person what to do instead.
pub struct NoMailer;

impl Mailer for NoMailer {
    fn send(&self, _mail: Mail) -> MailFuture<'_> {
        Box::pin(async { Err(MailError::NotConfigured) })
    }
    fn enabled(&self) -> bool {
        false
    }
}

/// SMTP through lettre.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    pub fn new(config: &MailConfig) -> Result<SmtpMailer, MailError> {
        if config.smtp_host.is_empty() {
            return Err(MailError::NotConfigured);
        }
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| MailError::Address(config.from.clone()))?;
        let mut params = TlsParameters::builder(config.smtp_host.clone());
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|source| MailError::CaFile {
                path: path.clone(),
                source,
            })?;
            let cert = Certificate::from_pem(&pem).map_err(|e| MailError::Tls(e.to_string()))?;
            params = params.add_root_certificate(cert);
        }
        let params = params
            .build_rustls()
            .map_err(|e| MailError::Tls(e.to_string()))?;
        let tls = match config.tls {
            SmtpTls::Opportunistic => Tls::Opportunistic(params),
            SmtpTls::Starttls => Tls::Required(params),
            SmtpTls::Wrapper => Tls::Wrapper(params),
            SmtpTls::None => Tls::None,
        };
        // The EHLO name: the sender's domain says more than "localhost" and needs no lookup.
        let hello = from.email.domain().to_string();
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.smtp_host.as_str())
                .port(config.smtp_port)
                .tls(tls)
                .hello_name(ClientId::Domain(hello))
                .timeout(Some(Duration::from_secs(config.timeout_seconds.max(1))));
        if let Some(user) = &config.username {
            let password = match &config.password_file {
                Some(p) => std::fs::read_to_string(p)
                    .map_err(|source| MailError::PasswordFile {
                        path: p.clone(),
                        source,
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
                None => String::new(),
            };
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            from,
        })
    }
}

impl Mailer for SmtpMailer {
    fn send(&self, mail: Mail) -> MailFuture<'_> {
        Box::pin(async move {
            let to: Mailbox = mail
                .to
                .parse()
                .map_err(|_| MailError::Address(mail.to.clone()))?;
            let builder = Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(mail.subject);
            let message = match mail.html {
                None => builder
                    .header(lettre::message::header::ContentType::TEXT_PLAIN)
                    .body(mail.body),
                Some(html) => builder.multipart(
                    lettre::message::MultiPart::alternative_plain_html(mail.body, html),
                ),
            }
            .map_err(|e| MailError::Build(e.to_string()))?;
            self.transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Smtp(e.to_string()))
        })
    }
}

/// The mailer `[mail]` asks for: SMTP when a host is set, [`NoMailer`] otherwise.
pub fn from_config(config: &MailConfig) -> Result<Box<dyn Mailer>, MailError> {
    if config.smtp_host.is_empty() {
        Ok(Box::new(NoMailer))
    } else {
        Ok(Box::new(SmtpMailer::new(config)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_parsing() {
        let c: MailConfig = toml::from_str(
            "smtp_host = \"mail.example\"\nsmtp_port = 587\ntls = \"starttls\"\n\
             from = \"Print <p@example.com>\"\n",
        )
        .unwrap();
        assert_eq!(c.smtp_port, 587);
        assert_eq!(c.tls, SmtpTls::Starttls);
        assert_eq!(c.max_per_address, 5);
        assert!(toml::from_str::<MailConfig>("smtp_hots = \"x\"").is_err());
        assert!(toml::from_str::<MailConfig>("tls = \"maybe\"").is_err());
    }

    #[test]
    fn smtp_mailer_checks_the_sender() {
        let bad = MailConfig {
            smtp_host: "127.0.0.1".into(),
            from: "not an address".into(),
            ..MailConfig::default()
        };
        assert!(matches!(SmtpMailer::new(&bad), Err(MailError::Address(_))));
        assert!(matches!(
            SmtpMailer::new(&MailConfig::default()),
            Err(MailError::NotConfigured)
        ));
    }

    #[tokio::test]
    async fn no_mailer_refuses() {
        let m = NoMailer;
        assert!(!m.enabled());
        let r = m
            .send(Mail {
                to: "a@b.example".into(),
                subject: "s".into(),
                body: "b".into(),
                html: None,
            })
            .await;
        assert!(matches!(r, Err(MailError::NotConfigured)));
    }
}
