//! The registration agent (specs/registration.md flow A): accepts requests (rate-limited per
//! user address and per appliance), discovers the authorization server's endpoints from its
//! RFC 8414 metadata, asks for device codes (RFC 8628 §3.1), mails the administrator once per
//! code, polls the token endpoint (§3.4–3.5), stores the tokens (0600, atomic) and tells the
//! user the outcome. The decisions are `model::registration`'s; this file performs them and
//! persists every step before the next one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Mutex, Notify};

use super::http::{Answer, CloudHttp, HttpError};
use super::store::{RegistrationStore, StoreError};
use crate::config::CloudLinkConfig;
use crate::model::clock::Clock;
use crate::model::registration::{AccessRequest, Action, Code, Event, Registration};
use crate::notify::{messages, Mailer};

/// Largest answer the cloud may send us (metadata, codes, tokens are a few hundred bytes).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Longest string field accepted from the cloud (codes, URLs, tokens).
const MAX_FIELD: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("registration with the cloud is not configured ([cloud] url is empty)")]
    NotConfigured,
    #[error("{0}")]
    Invalid(String),
    #[error("too many registration requests {scope}; try again in {retry_after} s")]
    TooMany {
        scope: &'static str,
        retry_after: u64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who the appliance is, as the administrator's mail and the cloud see it.
#[derive(Debug, Clone, Default)]
pub struct DeviceIdentity {
    pub name: String,
    pub make_and_model: String,
    pub uuid: String,
    pub location: String,
    /// The queues registered with the cloud's printer registry once registered
    /// (`POST /api/v1/printers`).
    pub printers: Vec<PrinterIdentity>,
}

/// One queue as the cloud's printer registry sees it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PrinterIdentity {
    pub uuid: String,
    pub name: String,
    pub location: String,
    pub info: String,
    pub make_and_model: String,
}

/// The endpoints from RFC 8414 metadata.
#[derive(Debug, Clone)]
struct Endpoints {
    device_authorization: String,
    token: String,
    /// printbridge cloud's extension: where the cloud mails the administrator for a device
    /// that has no mail relay (`printbridge_admin_notification_endpoint`).
    admin_notification: Option<String>,
}

/// Tokens as stored in `<state_dir>/cloud/tokens.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredTokens {
    pub cloud: String,
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    pub registered_at: i64,
    pub user_email: String,
    /// When this access token was issued (Unix seconds); with `expires_at`, when to refresh.
    #[serde(default)]
    pub obtained_at: i64,
}

impl StoredTokens {
    /// When to refresh: 5 minutes before expiry, or with a quarter of the lifetime left when the
    /// lifetime is short. None without a refresh token or an expiry.
    pub fn refresh_due(&self) -> Option<i64> {
        let expires = self.expires_at?;
        self.refresh_token.as_ref()?;
        let lifetime = (expires - self.obtained_at).max(0);
        Some(expires - (lifetime * 3 / 4).min(300))
    }
}

pub struct Agent {
    config: CloudLinkConfig,
    store: Arc<RegistrationStore>,
    mailer: Arc<dyn Mailer>,
    http: CloudHttp,
    clock: Arc<dyn Clock>,
    identity: DeviceIdentity,
    state_dir: PathBuf,
    endpoints: Mutex<Option<Endpoints>>,
    wake: Notify,
    /// Bumped whenever tokens are stored (registration, refresh) or set aside, so the bridge's
    /// other parts (Proxy, outbound queues, control channel) start or pick up a new token.
    tokens_changed: watch::Sender<u64>,
    /// Serialises submissions so two at once cannot both pass the rate limit.
    submit: Mutex<()>,
    /// An access token the cloud refused (HTTP 401) before its time, as the Proxy or the control
    /// channel reported it, and when a refresh it forced last ran.
    refused: std::sync::Mutex<RefusedToken>,
}

/// See [`Agent::token_refused`].
#[derive(Default)]
struct RefusedToken {
    access_token: Option<String>,
    last_forced: Option<i64>,
}

/// A refused token forces a refresh at most this often (seconds): a cloud that refuses every
/// fresh token too is not asked in a loop (one refresh per 10 s is nothing to it), while a token
/// revoked twice in a row is still replaced within seconds.
const FORCED_REFRESH_EVERY: i64 = 10;

/// What a submission asks for (A1).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    pub user_email: String,
    #[serde(default)]
    pub admin_email: Option<String>,
    #[serde(default)]
    pub retries: Option<u32>,
}

impl Agent {
    pub fn new(
        config: CloudLinkConfig,
        store: Arc<RegistrationStore>,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
        identity: DeviceIdentity,
        state_dir: &Path,
    ) -> Result<Agent, HttpError> {
        let ca = match &config.ca_file {
            Some(p) => Some(std::fs::read(p).map_err(|e| {
                HttpError::Tls(format!("cannot read cloud.ca_file {}: {e}", p.display()))
            })?),
            None => None,
        };
        let http = CloudHttp::new(
            Duration::from_secs(config.timeout_seconds),
            MAX_ANSWER_BYTES,
            ca.as_deref(),
        )?;
        Ok(Agent {
            config,
            store,
            mailer,
            http,
            clock,
            identity,
            state_dir: state_dir.to_path_buf(),
            endpoints: Mutex::new(None),
            wake: Notify::new(),
            tokens_changed: watch::Sender::new(0),
            submit: Mutex::new(()),
            refused: std::sync::Mutex::new(RefusedToken::default()),
        })
    }

    pub fn store(&self) -> &RegistrationStore {
        &self.store
    }

    /// The cloud session the rest of the bridge uses: the stored tokens when the appliance is
    /// registered with the configured cloud (the agent's loop keeps the access token fresh).
    pub fn session(&self) -> Option<StoredTokens> {
        self.tokens()
    }

    /// Changes whenever [`Agent::session`] may answer differently (registered, token refreshed,
    /// tokens set aside).
    pub fn session_changes(&self) -> watch::Receiver<u64> {
        self.tokens_changed.subscribe()
    }

    /// The `[cloud]` settings the agent runs with.
    pub fn link_config(&self) -> &CloudLinkConfig {
        &self.config
    }

    /// The HTTPS client for small JSON exchanges with the cloud (bounded answers).
    pub fn http(&self) -> &CloudHttp {
        &self.http
    }

    /// The cloud answered HTTP 401 to `access_token` (revoked, or expired before the time the
    /// agent has for it): when it is still the session's token, the agent refreshes it now
    /// instead of at its due time (at most once per `FORCED_REFRESH_EVERY`, 10 s), and [`Agent::session_changes`] tells
    /// the waiting parts when the new one is there. A token already replaced changes nothing.
    pub fn token_refused(&self, access_token: &str) {
        let current = self
            .tokens()
            .is_some_and(|t| t.access_token == access_token);
        if !current {
            return;
        }
        let mut r = self.refused.lock().expect("refused token lock");
        if r.access_token.as_deref() != Some(access_token) {
            tracing::info!("the cloud refused the access token; refreshing it now");
            r.access_token = Some(access_token.to_string());
        }
        drop(r);
        self.wake.notify_one();
    }

    /// When a refresh forced by [`Agent::token_refused`] may run for `access_token`, if one is
    /// asked for.
    fn forced_refresh_at(&self, access_token: &str) -> Option<i64> {
        let r = self.refused.lock().expect("refused token lock");
        (r.access_token.as_deref() == Some(access_token))
            .then(|| r.last_forced.map_or(i64::MIN, |t| t + FORCED_REFRESH_EVERY))
    }

    fn session_changed(&self) {
        self.tokens_changed.send_modify(|n| *n += 1);
    }

    /// Whether the appliance is registered, with which cloud, who may use it (asked of the
    /// cloud's device API, when it has one) and how many requests are open.
    pub async fn cloud_status(&self) -> serde_json::Value {
        let pending = self
            .store
            .open_requests()
            .await
            .map(|r| r.len())
            .unwrap_or(0);
        let Some(tokens) = self.tokens() else {
            return serde_json::json!({
                "configured": self.configured(),
                "cloud": self.config.base(),
                "registered": false,
                "open_requests": pending,
            });
        };
        let url = format!("{}/api/v1/device", self.config.base());
        let users = |v: &serde_json::Value, key: &str| -> Vec<String> {
            v.get(key)
                .and_then(|u| u.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str())
                        .filter(|x| x.len() <= 254)
                        .take(200)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let device = match self.http.get(&url, Some(&tokens.access_token)).await {
            Ok(a) if a.status == 200 => json(&a, "device").ok(),
            _ => None,
        };
        serde_json::json!({
            "configured": self.configured(),
            "cloud": tokens.cloud,
            "registered": true,
            "registered_at": tokens.registered_at,
            "users": device.as_ref().map(|d| users(d, "users")),
            "users_awaiting_enrolment": device.as_ref().map(|d| users(d, "users_awaiting_enrolment")),
            "open_requests": pending,
        })
    }

    /// Whether an administrator is configured, and the default N (for the page's form).
    pub fn defaults(&self) -> (bool, u32) {
        (!self.config.admin_email.is_empty(), self.config.retries)
    }

    pub fn configured(&self) -> bool {
        !self.config.url.is_empty()
    }

    /// Validates and stores a request, then wakes the agent (A1). A user who already has a request
    /// under way gets that one back (`false`), so a double submit does not mail the
    /// administrator twice; `true` when a new request was made.
    pub async fn submit(&self, s: &Submission) -> Result<(Registration, bool), RegistrationError> {
        if !self.configured() {
            return Err(RegistrationError::NotConfigured);
        }
        let user = super::valid_email(&s.user_email).ok_or_else(|| {
            RegistrationError::Invalid("user_email is not a valid email address".into())
        })?;
        let admin = match s.admin_email.as_deref().map(str::trim) {
            Some(a) if !a.is_empty() => super::valid_email(a).ok_or_else(|| {
                RegistrationError::Invalid("admin_email is not a valid email address".into())
            })?,
            _ if !self.config.admin_email.is_empty() => self.config.admin_email.clone(),
            _ => {
                return Err(RegistrationError::Invalid(
                    "admin_email is required: this appliance has no administrator configured"
                        .into(),
                ))
            }
        };
        let retries = s.retries.unwrap_or(self.config.retries);
        if !(2..=10).contains(&retries) {
            return Err(RegistrationError::Invalid(
                "retries must be between 2 and 10".into(),
            ));
        }
        let _one_at_a_time = self.submit.lock().await;
        if let Some(open) = self
            .store
            .open_requests()
            .await?
            .into_iter()
            .find(|r| r.user_email == user && !r.status.is_final())
        {
            return Ok((open, false));
        }
        let now = self.clock.now();
        let window = self.config.window_seconds as i64;
        let since = now - window;
        let retry_after = |oldest: i64| (oldest + window - now).max(1) as u64;
        let all = self.store.created_since(None, since).await?;
        if all.len() >= self.config.max_per_appliance as usize {
            return Err(RegistrationError::TooMany {
                scope: "for this appliance",
                retry_after: retry_after(all[all.len() - self.config.max_per_appliance as usize]),
            });
        }
        let mine = self.store.created_since(Some(&user), since).await?;
        if mine.len() >= self.config.max_per_user as usize {
            return Err(RegistrationError::TooMany {
                scope: "for this address",
                retry_after: retry_after(mine[mine.len() - self.config.max_per_user as usize]),
            });
        }
        let mut reg = Registration::new(0, &user, &admin, retries, now);
        self.store.insert(&mut reg).await?;
        tracing::info!(request = reg.id, user = %user, admin = %admin, retries, "registration requested");
        self.wake.notify_one();
        Ok((reg, true))
    }

    /// Runs until `shutdown`: works every open request as far as it can go, then sleeps until
    /// the earliest next attempt or a new submission.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        if self.configured() && !self.mailer.enabled() {
            tracing::warn!(
                "registration: [mail] has no smtp_host: the cloud is asked to mail administrators \
                 where it offers that (printbridge cloud does); other authorization servers need \
                 [mail] configured here"
            );
        }
        loop {
            let mut next = self.clock.now() + 60;
            match self.store.open_requests().await {
                Ok(open) => {
                    for reg in open {
                        if let Some(t) = self.work(reg).await {
                            next = next.min(t);
                        }
                        if *shutdown.borrow() {
                            return;
                        }
                    }
                }
                Err(e) => tracing::warn!("registration: cannot read requests: {e}"),
            }
            // After the requests: one of them may just have brought the tokens.
            if let Some(due) = self.refresh_if_due().await {
                next = next.min(due);
            }
            // Times are whole seconds; sleeping to the start of the second `next` (not a whole
            // number of seconds from some point inside the current one) keeps each poll a full
            // interval after the previous one (RFC 8628 §3.5).
            let now_ms = unix_ms();
            let wait_ms = (next.saturating_mul(1000) - now_ms).clamp(200, 60_000) as u64;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Steps one request until it has to wait (returns when) or is done (None).
    async fn work(&self, mut reg: Registration) -> Option<i64> {
        loop {
            let now = self.clock.now();
            let action = reg.next_action(now);
            // A code's first poll is timed from its issue like later polls from theirs.
            let polling = matches!(action, Action::Poll | Action::RequestCode);
            let sent_ms = unix_ms();
            let event = match action {
                Action::Done => return None,
                Action::WaitUntil(t) => return Some(t),
                Action::RequestCode => self.request(&reg).await,
                Action::MailAdmin { replaces: _ } => {
                    // Recorded as mailed before the mail leaves: a crash mid-send must not
                    // mail the same code twice (see Registration::admin_mailed).
                    reg.apply(Event::AdminMailing, now);
                    if let Err(e) = self.store.save(&reg).await {
                        tracing::warn!(request = reg.id, "registration: cannot save: {e}");
                        return Some(now + 5);
                    }
                    match self.mail_admin(&reg).await {
                        Ok(()) => continue,
                        Err(why) => Event::AdminMailFailed(why),
                    }
                }
                Action::Poll => self.poll(&reg).await,
                Action::TellUser => {
                    self.tell_user(&reg).await;
                    Event::UserTold
                }
            };
            let before = reg.status.clone();
            // A poll (or the code request) counts from the second after it was sent (rounded
            // up), so with whole-second times the next poll is still a full interval later in
            // real time (RFC 8628 §3.5); floored, a first poll came as little as 0.2 s after
            // the code and Authlib's server answered slow_down.
            let at = if polling {
                ((sent_ms + 999) / 1000).max(self.clock.now())
            } else {
                self.clock.now()
            };
            reg.apply(event, at);
            if reg.status != before {
                tracing::info!(request = reg.id, status = %reg.status.describe(), "registration");
            }
            if let Err(e) = self.store.save(&reg).await {
                tracing::warn!(request = reg.id, "registration: cannot save: {e}");
                return Some(now + 5);
            }
        }
    }

    async fn endpoints(&self) -> Result<Endpoints, Event> {
        let mut cached = self.endpoints.lock().await;
        if let Some(e) = cached.as_ref() {
            return Ok(e.clone());
        }
        let url = format!(
            "{}/.well-known/oauth-authorization-server",
            self.config.base()
        );
        let answer = self.http.get(&url, None).await.map_err(transport)?;
        if answer.status >= 500 {
            return Err(Event::Unreachable(format!(
                "the cloud's metadata answered HTTP {}",
                answer.status
            )));
        }
        if answer.status != 200 {
            return Err(Event::Refused(format!(
                "the cloud has no OAuth metadata (HTTP {} for /.well-known/oauth-authorization-server)",
                answer.status
            )));
        }
        let meta: serde_json::Value = json(&answer, "metadata")?;
        let endpoint = |key: &str| -> Result<String, Event> {
            let v = meta.get(key).and_then(|v| v.as_str()).ok_or_else(|| {
                Event::Refused(format!("the cloud's metadata has no {key} (RFC 8414)"))
            })?;
            if v.len() > MAX_FIELD || !(v.starts_with("https://") || v.starts_with("http://")) {
                return Err(Event::Refused(format!(
                    "the cloud's metadata has an unusable {key}"
                )));
            }
            Ok(v.to_string())
        };
        let e = Endpoints {
            device_authorization: endpoint("device_authorization_endpoint")?,
            token: endpoint("token_endpoint")?,
            admin_notification: endpoint("printbridge_admin_notification_endpoint").ok(),
        };
        *cached = Some(e.clone());
        Ok(e)
    }

    /// Refreshes the access token when it is due (RFC 6749 §6); returns when to look again.
    ///
    /// The cloud rotates the refresh token on every use, so the new pair is written (atomically,
    /// fsynced) the moment it arrives; the only window left is a crash between the cloud's
    /// answer and that write. Then the stored refresh token is the used one, the cloud answers
    /// invalid_grant, and the tokens are set aside (`tokens.json.rejected`): the appliance is
    /// not locked out, because the next registration request takes the device-code path again
    /// and the administrator re-approves it.
    async fn refresh_if_due(&self) -> Option<i64> {
        let tokens = self.tokens()?;
        let mut due = tokens.refresh_due()?;
        let now = self.clock.now();
        if let Some(forced) = self.forced_refresh_at(&tokens.access_token) {
            due = due.min(forced);
        }
        if now < due {
            return Some(due);
        }
        if self.forced_refresh_at(&tokens.access_token).is_some() {
            self.refused.lock().expect("refused token lock").last_forced = Some(now);
        }
        let endpoints = match self.endpoints().await {
            Ok(e) => e,
            Err(_) => return Some(now + 30),
        };
        let refresh = tokens.refresh_token.clone().unwrap_or_default();
        let answer = self
            .http
            .post_form(
                &endpoints.token,
                None,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh),
                    ("client_id", &self.config.client_id),
                ],
            )
            .await;
        let answer = match answer {
            Ok(a) if a.status < 500 => a,
            Ok(a) => {
                tracing::warn!("token refresh: the cloud answered HTTP {}", a.status);
                return Some(now + 30);
            }
            Err(e) => {
                tracing::warn!("token refresh: {e}");
                return Some(now + 30);
            }
        };
        let v = json(&answer, "token").unwrap_or_default();
        let field = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_str())
                .filter(|s| !s.is_empty() && s.len() <= MAX_FIELD)
                .map(str::to_string)
        };
        if answer.status == 200 {
            if let Some(access_token) = field("access_token") {
                let now = self.clock.now();
                let renewed = StoredTokens {
                    access_token,
                    // A server that does not rotate keeps the old one valid (RFC 6749 §6).
                    refresh_token: field("refresh_token").or(tokens.refresh_token.clone()),
                    expires_at: v
                        .get("expires_in")
                        .and_then(|x| x.as_i64())
                        .filter(|e| *e > 0)
                        .map(|e| now + e),
                    obtained_at: now,
                    ..tokens
                };
                let bytes = serde_json::to_vec_pretty(&renewed).expect("tokens serialize");
                if let Err(e) = write_private(&tokens_path(&self.state_dir), &bytes) {
                    tracing::error!("cannot store the refreshed cloud tokens: {e}");
                    return Some(now + 30);
                }
                tracing::info!("cloud access token refreshed");
                self.session_changed();
                return renewed.refresh_due();
            }
        }
        let error = oauth_error(&answer);
        if error.starts_with("invalid_grant") {
            tracing::error!(
                "the cloud no longer accepts this appliance's refresh token ({error}); the \
                 appliance must be registered again (its tokens are set aside)"
            );
            let path = tokens_path(&self.state_dir);
            let _ = std::fs::rename(&path, path.with_extension("json.rejected"));
            self.session_changed();
            return None;
        }
        tracing::warn!("token refresh refused: {error}");
        Some(now + 300)
    }

    /// The stored tokens, when they are this cloud's.
    fn tokens(&self) -> Option<StoredTokens> {
        let bytes = std::fs::read(tokens_path(&self.state_dir)).ok()?;
        let t: StoredTokens = serde_json::from_slice(&bytes).ok()?;
        (t.cloud == self.config.base()).then_some(t)
    }

    /// A2: an access request for the user when the appliance is registered already, else a
    /// device authorization request.
    ///
    /// While another request is registering the appliance (its code is out), this one waits:
    /// two device codes at once would register the appliance twice and mail the administrator
    /// twice; once the first is through, this one asks for access instead.
    async fn request(&self, reg: &Registration) -> Event {
        if let Some(t) = self.tokens() {
            return self.request_access(reg, &t).await;
        }
        let registering = self.store.open_requests().await.is_ok_and(|open| {
            open.iter().any(|r| {
                r.id != reg.id
                    && !r.status.is_final()
                    && r.code.is_some()
                    && r.enrolment_deadline.is_none()
            })
        });
        if registering {
            return Event::Deferred;
        }
        self.request_code(reg).await
    }

    /// A2 for a registered appliance: the cloud's access request (docs/cloud.md).
    async fn request_access(&self, reg: &Registration, tokens: &StoredTokens) -> Event {
        let url = format!("{}/api/v1/access-requests", self.config.base());
        let answer = match self
            .http
            .post_form(
                &url,
                Some(&tokens.access_token),
                &[("user_email", &reg.user_email)],
            )
            .await
        {
            Ok(a) => a,
            Err(e) => return transport(e),
        };
        if answer.status == 429 || answer.status >= 500 {
            return Event::Unreachable(format!(
                "the cloud answered HTTP {} to the access request",
                answer.status
            ));
        }
        if answer.status == 401 {
            return Event::Refused(
                "the cloud no longer accepts this appliance's token; register it again".into(),
            );
        }
        // A foreign RFC 8628 server has no access requests (ours is docs/cloud.md): the
        // appliance stays registered, but this user cannot be given access through it.
        if matches!(answer.status, 404 | 405 | 501) {
            tracing::warn!(
                request = reg.id,
                "the cloud has no access requests (HTTP {} for POST /api/v1/access-requests): \
                 the appliance is registered, but other users cannot be added through it",
                answer.status
            );
            return Event::Refused(
                "the cloud offers no access requests (the appliance is registered already; \
                 this authorization server cannot add users to it)"
                    .into(),
            );
        }
        if !matches!(answer.status, 200 | 201) {
            return Event::Refused(format!(
                "the cloud refused the access request: HTTP {}",
                answer.status
            ));
        }
        let v = match json(&answer, "access request") {
            Ok(v) => v,
            Err(e) => return e,
        };
        if v.get("status").and_then(|s| s.as_str()) == Some("approved") {
            return self.after_approval(reg, tokens).await;
        }
        let Some(id) = v
            .get("id")
            .and_then(|i| i.as_str())
            .filter(|i| !i.is_empty() && i.len() <= 128)
            .filter(|i| i.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        else {
            return Event::Refused("the cloud's access request answer has no usable id".into());
        };
        let expires_in = v
            .get("expires_in")
            .and_then(|e| e.as_i64())
            .filter(|e| *e > 0)
            .unwrap_or(7 * 24 * 3600)
            .min(30 * 24 * 3600);
        Event::AccessRequested(AccessRequest {
            id: id.to_string(),
            url: format!("{}/admin", self.config.base()),
            expires_at: self.clock.now() + expires_in,
        })
    }

    /// Approved: the user may print once enrolled (spec A6); asks the cloud's device API, and
    /// takes approval as final where the server has none (a foreign RFC 8628 server).
    async fn after_approval(&self, reg: &Registration, tokens: &StoredTokens) -> Event {
        let url = format!("{}/api/v1/device", self.config.base());
        let answer = match self.http.get(&url, Some(&tokens.access_token)).await {
            Ok(a) => a,
            Err(e) if e.is_transient() => return Event::Unreachable(e.to_string()),
            Err(_) => return Event::Approved,
        };
        if answer.status >= 500 {
            return Event::Unreachable(format!("the cloud answered HTTP {}", answer.status));
        }
        if answer.status != 200 {
            return Event::Approved;
        }
        let Ok(v) = json(&answer, "device") else {
            return Event::Approved;
        };
        let listed = |key: &str| {
            v.get(key).and_then(|u| u.as_array()).is_some_and(|a| {
                a.iter()
                    .any(|x| x.as_str() == Some(reg.user_email.as_str()))
            })
        };
        if listed("users_awaiting_enrolment") {
            Event::AwaitingEnrolment
        } else {
            Event::Approved
        }
    }

    /// A2/A3: a device authorization request for this appliance and the user.
    async fn request_code(&self, reg: &Registration) -> Event {
        let endpoints = match self.endpoints().await {
            Ok(e) => e,
            Err(ev) => return ev,
        };
        let answer = self
            .http
            .post_form(
                &endpoints.device_authorization,
                None,
                &[
                    ("client_id", &self.config.client_id),
                    ("scope", "printer"),
                    ("device_name", &self.identity.name),
                    ("device_make_and_model", &self.identity.make_and_model),
                    ("device_uuid", &self.identity.uuid),
                    ("device_location", &self.identity.location),
                    ("user_email", &reg.user_email),
                ],
            )
            .await;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => return transport(e),
        };
        if answer.status == 429 || answer.status >= 500 {
            return Event::Unreachable(format!(
                "the cloud answered HTTP {} to the device authorization request",
                answer.status
            ));
        }
        if answer.status != 200 {
            return Event::Refused(format!(
                "the cloud refused the device authorization request: {}",
                oauth_error(&answer)
            ));
        }
        let v: serde_json::Value = match json(&answer, "device authorization") {
            Ok(v) => v,
            Err(e) => return e,
        };
        let field = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_str())
                .filter(|s| !s.is_empty() && s.len() <= MAX_FIELD)
                .map(str::to_string)
        };
        let (Some(device_code), Some(user_code), Some(verification_uri)) = (
            field("device_code"),
            field("user_code"),
            field("verification_uri"),
        ) else {
            return Event::Refused(
                "the cloud's device authorization answer lacks device_code, user_code or \
                 verification_uri (RFC 8628 §3.2)"
                    .into(),
            );
        };
        let Some(expires_in) = v
            .get("expires_in")
            .and_then(|x| x.as_i64())
            .filter(|e| (1..=86_400).contains(e))
        else {
            return Event::Refused(
                "the cloud's device authorization answer has no usable expires_in".into(),
            );
        };
        let complete = field("verification_uri_complete")
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"));
        if !(verification_uri.starts_with("https://") || verification_uri.starts_with("http://")) {
            return Event::Refused("the cloud's verification_uri is not an http(s) URL".into());
        }
        Event::CodeIssued {
            code: Code {
                device_code,
                user_code,
                verification_uri,
                verification_uri_complete: complete,
                expires_at: self.clock.now() + expires_in,
            },
            interval: v.get("interval").and_then(|x| x.as_i64()),
        }
    }

    /// A4: the one mail about the current code.
    async fn mail_admin(&self, reg: &Registration) -> Result<(), String> {
        if let Some(access) = &reg.access_request {
            let expires = utc(access.expires_at);
            let mail = messages::access_request(
                &reg.admin_email,
                &messages::AccessFacts {
                    user_email: &reg.user_email,
                    url: &access.url,
                    appliance_name: &self.identity.name,
                    make_and_model: &self.identity.make_and_model,
                    uuid: &self.identity.uuid,
                    location: &self.identity.location,
                    expires: &expires,
                },
            );
            return self.send_admin(reg, mail).await;
        }
        let code = reg.code.as_ref().ok_or("no code")?;
        if !self.mailer.enabled() {
            return self.cloud_mails_admin(reg, code).await;
        }
        let expires = utc(code.expires_at);
        let mail = messages::registration_request(
            &reg.admin_email,
            &messages::RegistrationFacts {
                user_email: &reg.user_email,
                user_code: &code.user_code,
                url: code
                    .verification_uri_complete
                    .as_deref()
                    .unwrap_or(&code.verification_uri),
                appliance_name: &self.identity.name,
                make_and_model: &self.identity.make_and_model,
                uuid: &self.identity.uuid,
                location: &self.identity.location,
                expires: &expires,
                code_number: reg.codes_issued,
                codes_allowed: reg.retries + 1,
            },
        );
        self.send_admin(reg, mail).await
    }

    /// No mail relay here: the cloud mails the administrator (its notification endpoint).
    async fn cloud_mails_admin(&self, reg: &Registration, code: &Code) -> Result<(), String> {
        let endpoint = match self.endpoints().await {
            Ok(e) => e.admin_notification,
            Err(_) => None,
        };
        let Some(url) = endpoint else {
            return Err(
                "this appliance has no [mail] server and the cloud offers no \
                        administrator notification"
                    .into(),
            );
        };
        let (k, n) = (reg.codes_issued.to_string(), (reg.retries + 1).to_string());
        let answer = self
            .http
            .post_form(
                &url,
                None,
                &[
                    ("client_id", &self.config.client_id),
                    ("device_code", &code.device_code),
                    ("admin_email", &reg.admin_email),
                    ("code_number", &k),
                    ("codes_allowed", &n),
                ],
            )
            .await
            .map_err(|e| e.to_string())?;
        // 409: mailed already (an earlier attempt whose answer was lost).
        if answer.status == 202 || answer.status == 409 {
            tracing::info!(request = reg.id, admin = %reg.admin_email,
                code_number = reg.codes_issued, "administrator mailed by the cloud");
            return Ok(());
        }
        Err(format!(
            "the cloud did not mail the administrator: {}",
            oauth_error(&answer)
        ))
    }

    async fn send_admin(
        &self,
        reg: &Registration,
        mail: crate::notify::Mail,
    ) -> Result<(), String> {
        match self.mailer.send(mail).await {
            Ok(()) => {
                tracing::info!(request = reg.id, admin = %reg.admin_email,
                    code_number = reg.codes_issued, "administrator mailed");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(request = reg.id, "cannot mail the administrator: {e}");
                Err(e.to_string())
            }
        }
    }

    /// A6: one poll: enrolment, access request or token endpoint, whichever the request waits for.
    async fn poll(&self, reg: &Registration) -> Event {
        if reg.enrolment_deadline.is_some() {
            return match self.tokens() {
                Some(t) => self.after_approval(reg, &t).await,
                None => Event::Refused("the appliance's cloud tokens are gone".into()),
            };
        }
        if let Some(access) = &reg.access_request {
            return match self.tokens() {
                Some(t) => self.poll_access(reg, access, &t).await,
                None => Event::Refused("the appliance's cloud tokens are gone".into()),
            };
        }
        self.poll_token(reg).await
    }

    async fn poll_access(
        &self,
        reg: &Registration,
        access: &AccessRequest,
        tokens: &StoredTokens,
    ) -> Event {
        let url = format!(
            "{}/api/v1/access-requests/{}",
            self.config.base(),
            access.id
        );
        let answer = match self.http.get(&url, Some(&tokens.access_token)).await {
            Ok(a) => a,
            Err(e) => return transport(e),
        };
        if answer.status >= 500 || answer.status == 429 {
            return Event::Unreachable(format!("the cloud answered HTTP {}", answer.status));
        }
        if answer.status != 200 {
            return Event::Refused(format!(
                "the cloud lost the access request (HTTP {})",
                answer.status
            ));
        }
        let v = match json(&answer, "access request") {
            Ok(v) => v,
            Err(e) => return e,
        };
        match v.get("status").and_then(|s| s.as_str()).unwrap_or("") {
            "pending" => Event::Pending,
            "approved" if v.get("awaiting_enrolment") == Some(&serde_json::Value::Bool(true)) => {
                Event::AwaitingEnrolment
            }
            "approved" => self.after_approval(reg, tokens).await,
            "denied" => Event::AccessDenied,
            "expired" => Event::Expired,
            other => Event::Refused(format!(
                "the cloud's access request is in an unknown state {:?}",
                other.chars().take(40).collect::<String>()
            )),
        }
    }

    /// One token poll (RFC 8628 §3.4).
    async fn poll_token(&self, reg: &Registration) -> Event {
        let Some(code) = reg.code.as_ref() else {
            return Event::Refused("no code to poll".into());
        };
        let endpoints = match self.endpoints().await {
            Ok(e) => e,
            Err(ev) => return ev,
        };
        // The poll times, to check interval and slow_down against a log; never the device_code.
        tracing::debug!(request = reg.id, "polling the token endpoint");
        let answer = self
            .http
            .post_form(
                &endpoints.token,
                None,
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", &code.device_code),
                    ("client_id", &self.config.client_id),
                ],
            )
            .await;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => return transport(e),
        };
        if answer.status >= 500 {
            return Event::Unreachable(format!(
                "the token endpoint answered HTTP {}",
                answer.status
            ));
        }
        let v: serde_json::Value = match json(&answer, "token") {
            Ok(v) => v,
            Err(e) => return e,
        };
        if answer.status == 200 {
            return self.approved(reg, &v).await;
        }
        match v.get("error").and_then(|e| e.as_str()).unwrap_or("") {
            "authorization_pending" => Event::Pending,
            "slow_down" => Event::SlowDown {
                interval: v.get("interval").and_then(|i| i.as_i64()),
            },
            "access_denied" => Event::AccessDenied,
            "expired_token" => Event::Expired,
            // Redeemed already: by this request just before a crash that came between storing
            // the tokens and recording the approval. The stored tokens say so.
            "invalid_grant"
                if self.tokens().is_some_and(|t| {
                    t.user_email == reg.user_email && t.registered_at >= reg.created_at
                }) =>
            {
                match self.tokens() {
                    Some(t) => self.after_approval(reg, &t).await,
                    None => Event::Refused("the appliance's cloud tokens are gone".into()),
                }
            }
            _ => Event::Refused(format!(
                "the token endpoint refused: {}",
                oauth_error(&answer)
            )),
        }
    }

    async fn approved(&self, reg: &Registration, v: &serde_json::Value) -> Event {
        let token = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_str())
                .filter(|s| !s.is_empty() && s.len() <= MAX_FIELD)
                .map(str::to_string)
        };
        let Some(access_token) = token("access_token") else {
            return Event::Refused("the token endpoint's answer has no access_token".into());
        };
        let now = self.clock.now();
        let tokens = StoredTokens {
            cloud: self.config.base().to_string(),
            access_token,
            refresh_token: token("refresh_token"),
            expires_at: v
                .get("expires_in")
                .and_then(|x| x.as_i64())
                .filter(|e| *e > 0)
                .map(|e| now + e),
            registered_at: now,
            user_email: reg.user_email.clone(),
            obtained_at: now,
        };
        if let Err(e) = write_private(
            &tokens_path(&self.state_dir),
            serde_json::to_vec_pretty(&tokens)
                .expect("tokens serialize")
                .as_slice(),
        ) {
            tracing::error!(request = reg.id, "cannot store the cloud tokens: {e}");
            return Event::Refused(format!("cannot store the cloud's tokens: {e}"));
        }
        tracing::info!(request = reg.id, cloud = %tokens.cloud, "registered with the cloud");
        self.register_printers_at_approval(&tokens).await;
        self.session_changed();
        self.after_approval(reg, &tokens).await
    }

    /// Registers the queues in the cloud's printer registry and keeps what it answers (the
    /// cloud printer ids) in `<state_dir>/cloud/printers.json`. At approval, failure is logged,
    /// not fatal: registration itself succeeded, and the bridge's Proxy registers again when it
    /// starts ([`Agent::register_printers`]).
    async fn register_printers_at_approval(&self, tokens: &StoredTokens) {
        if let Err(e) = self.register_printers(tokens).await {
            tracing::warn!("{e}");
        }
    }

    /// Registers the shared queues (`DeviceIdentity::printers`) in the cloud's printer registry
    /// (idempotent there: a printer is known by its UUID) and keeps the answer in
    /// `<state_dir>/cloud/printers.json` ([`registered_printers`]). With no queue to register
    /// the file is emptied.
    pub async fn register_printers(
        &self,
        tokens: &StoredTokens,
    ) -> Result<Vec<RegisteredPrinter>, String> {
        let path = self.state_dir.join("cloud").join("printers.json");
        if self.identity.printers.is_empty() {
            write_private(&path, br#"{"printers": []}"#)
                .map_err(|e| format!("cannot store the cloud's printer ids: {e}"))?;
            return Ok(Vec::new());
        }
        let url = format!("{}/api/v1/printers", self.config.base());
        let body = serde_json::json!({ "printers": self.identity.printers });
        match self
            .http
            .post_json(&url, Some(&tokens.access_token), &body)
            .await
        {
            Ok(a) if a.status == 200 => {
                let printers = parse_registered(&a.body)
                    .ok_or("the cloud's printer registry answered something else than printers")?;
                write_private(&path, &a.body)
                    .map_err(|e| format!("cannot store the cloud's printer ids: {e}"))?;
                tracing::info!(
                    printers = self.identity.printers.len(),
                    "queues registered with the cloud"
                );
                Ok(printers)
            }
            // A foreign RFC 8628 server has no printer registry (ours is docs/cloud.md):
            // registration stands, only the queues are not listed there.
            Ok(a) if matches!(a.status, 404 | 405 | 501) => Err(format!(
                "the cloud has no printer registry (HTTP {} for POST /api/v1/printers): \
                 registered, but the queues are not listed there",
                a.status
            )),
            Ok(a) => Err(format!(
                "the cloud refused the printer registration: HTTP {}",
                a.status
            )),
            Err(e) => Err(format!("cannot register the queues with the cloud: {e}")),
        }
    }

    /// The appliance's state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// A7: the outcome by mail, when the appliance can send mail (the web page and the panel
    /// show it in any case).
    async fn tell_user(&self, reg: &Registration) {
        if !self.mailer.enabled() {
            return;
        }
        let mail = messages::registration_outcome(
            &reg.user_email,
            &self.identity.name,
            &reg.status.describe(),
        );
        if let Err(e) = self.mailer.send(mail).await {
            tracing::warn!(request = reg.id, "cannot mail the user the outcome: {e}");
        }
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn utc(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// One queue as the cloud's printer registry answered it (docs/cloud.md): its cloud printer id
/// (`/ipp/print/{id}`), the queue's UUID and the Infrastructure Printer's URI.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegisteredPrinter {
    pub id: String,
    pub uuid: String,
    #[serde(default)]
    pub printer_uri: String,
}

/// The printers in a registry answer; `None` when it is not one. Ids that could not be a path
/// segment are left out: the id becomes part of a URL the appliance's token is sent to.
fn parse_registered(body: &[u8]) -> Option<Vec<RegisteredPrinter>> {
    #[derive(Deserialize)]
    struct Answer {
        printers: Vec<RegisteredPrinter>,
    }
    let a: Answer = serde_json::from_slice(body).ok()?;
    Some(
        a.printers
            .into_iter()
            .filter(|p| {
                !p.id.is_empty()
                    && p.id.len() <= 128
                    && p.id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            .collect(),
    )
}

/// The printers registered last time (`<state_dir>/cloud/printers.json`); empty when none.
pub fn registered_printers(state_dir: &Path) -> Vec<RegisteredPrinter> {
    std::fs::read(state_dir.join("cloud").join("printers.json"))
        .ok()
        .and_then(|b| parse_registered(&b))
        .unwrap_or_default()
}

pub fn tokens_path(state_dir: &Path) -> PathBuf {
    state_dir.join("cloud").join("tokens.json")
}

/// Writes `bytes` to `path` with mode 0600: a temporary file, fsynced, renamed into place, the
/// directory fsynced, so a crash leaves the old file or the new one, never half of one.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

fn transport(e: HttpError) -> Event {
    if e.is_transient() {
        Event::Unreachable(e.to_string())
    } else {
        Event::Refused(e.to_string())
    }
}

fn json(answer: &Answer, what: &str) -> Result<serde_json::Value, Event> {
    serde_json::from_slice::<serde_json::Value>(&answer.body)
        .ok()
        .filter(|v| v.is_object())
        .ok_or_else(|| {
            Event::Refused(format!(
                "the cloud's {what} answer (HTTP {}) is not a JSON object",
                answer.status
            ))
        })
}

/// `error` and `error_description` of an OAuth error answer (RFC 6749 §5.2), cleaned for a
/// log line or a status text.
fn oauth_error(answer: &Answer) -> String {
    let v: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect::<String>()
    };
    match (
        v.get("error").and_then(|e| e.as_str()),
        v.get("error_description").and_then(|e| e.as_str()),
    ) {
        (Some(e), Some(d)) => format!("{} ({})", clean(e), clean(d)),
        (Some(e), None) => clean(e),
        _ => format!("HTTP {}", answer.status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_written_whole_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = tokens_path(dir.path());
        write_private(&p, b"one").unwrap();
        write_private(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn refresh_is_due_before_expiry() {
        let mut t = StoredTokens {
            cloud: "http://c".into(),
            access_token: "a".into(),
            refresh_token: Some("r".into()),
            expires_at: Some(3600),
            registered_at: 0,
            user_email: "u@x.example".into(),
            obtained_at: 0,
        };
        assert_eq!(t.refresh_due(), Some(3300), "5 minutes before");
        t.expires_at = Some(60);
        assert_eq!(
            t.refresh_due(),
            Some(15),
            "a quarter of a short lifetime left"
        );
        t.refresh_token = None;
        assert_eq!(t.refresh_due(), None);
    }
}
