//! The appliance's side of group sign-in and sign-out (specs/groups.md "Appliance side",
//! docs/groups.md): each cloud-shared queue signs accounts in and out with the cloud
//! (`POST /api/v1/printers/{id}/sign-in` and `/sign-out` with the device token), when the cloud
//! asks over the control channel (`sign-in` with a single-use credential, `sign-out`) or when a
//! person does at the appliance's panel (the admin page, `printbridge signin/signout`: a
//! printer-initiated sign-out, so the cloud deletes the record). It also carries out `power-save`
//! (the queue's Proxy stops asking for jobs until an instruction for it or a local job wakes it)
//! and `apply-settings` (job polling interval, time-out, power-saving delay; kept in
//! `STATE_DIR/cloud/queue-settings.json`).
//!
//! Everything from the network is checked: printer ids before they go into a URL, accounts as
//! mail addresses, credentials and setting values bounded. Passwords and credentials are sent to
//! the cloud only and never logged.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::sync::watch;

use super::control::{GroupInstruction, Outcome};
use super::http::HttpError;
use super::registration::{registered_printers, write_private, Agent};
use crate::ipp_printer::Printer;

/// Bounds of the settings the appliance applies (seconds).
/// As the cloud's push accepts them (docs/groups.md "Settings push").
pub const POLLING_RANGE: (u64, u64) = (1, 86400);
/// 0: no time-out of its own (the HTTP client's limit stays).
pub const TIMEOUT_RANGE: (u64, u64) = (0, 86400);
/// The spool setting that keeps a queue's power saving across restarts: the reason shown, or
/// empty when awake (the spool's settings table; no migration).
pub const POWER_SAVING_SETTING: &str = "power-saving";
/// 0: never enter power saving by itself.
pub const POWER_SAVING_DELAY_RANGE: (u64, u64) = (0, 7 * 86400);
/// Settings of the spec the appliance has nothing to apply to.
const UNSUPPORTED_KEYS: [&str; 5] = [
    "language",
    "panel_contrast",
    "scroll_speed",
    "interface",
    "receive_buffer_size",
];

#[derive(Debug, thiserror::Error)]
pub enum GroupsError {
    #[error("the appliance is not registered with the cloud")]
    NotRegistered,
    #[error("queue {0:?} is not shared through the cloud (or not registered in its registry yet)")]
    NotShared(String),
    #[error("no queue {0:?} on this appliance")]
    NoQueue(String),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot reach the cloud: {0}")]
    Http(#[from] HttpError),
    /// The cloud answered with a refusal: its HTTP status and message.
    #[error("the cloud refused (HTTP {status}): {message}")]
    Cloud { status: u16, message: String },
}

pub use super::proxy::QueueSettings;

/// A cloud-shared queue as groups see it.
pub struct GroupQueue {
    /// The name people use: the `[[queue]]` name, or `default` for `[printer]`.
    pub name: String,
    pub printer: Arc<Printer>,
    settings: watch::Sender<QueueSettings>,
}

impl GroupQueue {
    pub fn settings(&self) -> QueueSettings {
        self.settings.borrow().clone()
    }

    /// Follows the queue's settings (the Proxy re-reads them on each change).
    pub fn settings_watch(&self) -> watch::Receiver<QueueSettings> {
        self.settings.subscribe()
    }

    /// Whether `name` designates this queue: its name, or its printer-name (any case).
    fn is_called(&self, name: &str) -> bool {
        self.name == name
            || self
                .printer
                .description()
                .name
                .eq_ignore_ascii_case(name.trim())
    }
}

/// The secret a sign-in carries: the account's password (panel) or the cloud's single-use
/// credential (a `sign-in` instruction). Never logged (Debug shows which kind only).
pub enum Secret {
    Password(String),
    Credential(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Secret::Password(_) => "Secret::Password(..)",
            Secret::Credential(_) => "Secret::Credential(..)",
        })
    }
}

/// The group side of the appliance: its shared queues, their cloud printers and settings.
pub struct Groups {
    agent: Arc<Agent>,
    queues: Vec<Arc<GroupQueue>>,
    /// Sent as `"address"` in sign-in requests: the host of `[server] listen` when that is a
    /// specific address (CONTRACT: the group table's printer address); `None`: the cloud takes
    /// the request's peer address.
    address: Option<String>,
    settings_path: PathBuf,
}

impl Groups {
    /// `queues`: (people's name, printer) of each cloud-shared queue. Settings applied before
    /// are read back from the state directory.
    pub fn new(
        agent: Arc<Agent>,
        queues: Vec<(String, Arc<Printer>)>,
        address: Option<String>,
    ) -> Groups {
        let settings_path = agent.state_dir().join("cloud").join("queue-settings.json");
        let stored: BTreeMap<String, QueueSettings> = std::fs::read(&settings_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let queues = queues
            .into_iter()
            .map(|(name, printer)| {
                let s = stored.get(&printer.uuid).cloned().unwrap_or_default();
                Arc::new(GroupQueue {
                    name,
                    printer,
                    settings: watch::channel(s).0,
                })
            })
            .collect();
        Groups {
            agent,
            queues,
            address,
            settings_path,
        }
    }

    pub fn queues(&self) -> &[Arc<GroupQueue>] {
        &self.queues
    }

    /// The queue people call `name`.
    pub fn queue(&self, name: &str) -> Result<Arc<GroupQueue>, GroupsError> {
        self.queues
            .iter()
            .find(|q| q.is_called(name))
            .cloned()
            .ok_or_else(|| GroupsError::NoQueue(clean(name, 64)))
    }

    /// The settings of the queue whose printer is `printer` (for the Proxy).
    pub fn queue_of_printer(&self, printer: &Printer) -> Option<Arc<GroupQueue>> {
        self.queues
            .iter()
            .find(|q| super::proxy::same_uuid(&q.printer.uuid, &printer.uuid))
            .cloned()
    }

    /// The cloud printer id of `q`, from the registry's last answer (`printers.json`).
    pub fn cloud_printer_of(&self, q: &GroupQueue) -> Option<String> {
        registered_printers(self.agent.state_dir())
            .into_iter()
            .find(|p| super::proxy::same_uuid(&p.uuid, &q.printer.uuid))
            .map(|p| p.id)
    }

    /// The shared queue that is cloud printer `id`; `None` when it is none of this appliance's.
    pub fn queue_of_cloud_printer(&self, id: &str) -> Option<Arc<GroupQueue>> {
        let p = registered_printers(self.agent.state_dir())
            .into_iter()
            .find(|p| p.id == id)?;
        self.queues
            .iter()
            .find(|q| super::proxy::same_uuid(&p.uuid, &q.printer.uuid))
            .cloned()
    }

    fn printer_url(&self, id: &str, what: &str) -> Result<(String, String), GroupsError> {
        let tokens = self.agent.session().ok_or(GroupsError::NotRegistered)?;
        // Ids come from printers.json, checked there ([A-Za-z0-9_-]); checked again, as they
        // go into the URL the device token is sent to.
        if id.is_empty()
            || id.len() > 128
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(GroupsError::Invalid("not a cloud printer id".into()));
        }
        Ok((
            format!(
                "{}/api/v1/printers/{id}/{what}",
                self.agent.link_config().base()
            ),
            tokens.access_token,
        ))
    }

    /// Signs `account` in on cloud printer `id` (CONTRACT "Printer side HTTP"); the cloud's
    /// answer on success.
    pub async fn sign_in(
        &self,
        id: &str,
        account: &str,
        secret: &Secret,
    ) -> Result<Value, GroupsError> {
        let (url, token) = self.printer_url(id, "sign-in")?;
        let mut body = json!({ "account": account });
        match secret {
            Secret::Password(p) => body["password"] = json!(p),
            Secret::Credential(c) => body["credential"] = json!(c),
        }
        if let Some(a) = &self.address {
            body["address"] = json!(a);
        }
        let v = self.post(&url, &token, &body).await?;
        tracing::info!(printer = %id, account = %account, via = ?secret_kind(secret),
            "signed in with the cloud");
        Ok(v)
    }

    /// Signs `account` out of cloud printer `id`: the cloud keeps the record OUT when it asked
    /// for the sign-out, else (a sign-out at this panel) deletes it.
    /// `instruction`: the id of the cloud's sign-out instruction being carried out (so the cloud
    /// keeps the record even when the sign-out arrives after its wait time); `None` at the panel.
    pub async fn sign_out(
        &self,
        id: &str,
        account: &str,
        instruction: Option<&str>,
    ) -> Result<Value, GroupsError> {
        let (url, token) = self.printer_url(id, "sign-out")?;
        let mut body = json!({ "account": account });
        if let Some(i) = instruction {
            body["instruction"] = json!(i);
        }
        let v = self.post(&url, &token, &body).await?;
        tracing::info!(printer = %id, account = %account,
            status = %v["status"].as_str().unwrap_or("?"), "signed out with the cloud");
        Ok(v)
    }

    /// The accounts signed in on cloud printer `id` (the panel's list).
    pub async fn sign_ins(&self, id: &str) -> Result<Value, GroupsError> {
        let (url, token) = self.printer_url(id, "sign-ins")?;
        let a = self.agent.http().get(&url, Some(&token)).await?;
        cloud_answer(a.status, &a.body)
    }

    async fn post(&self, url: &str, token: &str, body: &Value) -> Result<Value, GroupsError> {
        let a = self.agent.http().post_json(url, Some(token), body).await?;
        cloud_answer(a.status, &a.body)
    }

    /// Carries out a group instruction of the control channel. One naming a printer that is
    /// none of this appliance's shared queues is rejected and changes nothing; any other wakes
    /// the queue from power saving first (power-save excepted).
    pub async fn carry_out(&self, i: &GroupInstruction) -> Outcome {
        let id = i.printer();
        let Some(q) = self.queue_of_cloud_printer(id) else {
            return Outcome::rejected(format!(
                "printer {} is not one of this appliance's queues",
                clean(id, 128)
            ));
        };
        if !matches!(i, GroupInstruction::PowerSave { .. }) {
            q.printer.set_power_saving(None);
        }
        match i {
            GroupInstruction::SignIn {
                account,
                credential,
                ..
            } => {
                let secret = Secret::Credential(credential.clone());
                match with_retries(SIGN_IN_RETRIES, || self.sign_in(id, account, &secret)).await {
                    Ok(_) => Outcome::done(format!("{account} signed in on queue {}", q.name)),
                    Err(e) => Outcome::failed(e.to_string()),
                }
            }
            GroupInstruction::SignOut {
                account,
                instruction,
                ..
            } => match self.sign_out(id, account, instruction.as_deref()).await {
                Ok(v) => Outcome::done(format!(
                    "{account} signed out of queue {} ({})",
                    q.name,
                    clean(v["status"].as_str().unwrap_or("done"), 16)
                )),
                Err(e) => Outcome::failed(e.to_string()),
            },
            GroupInstruction::PowerSave { .. } => {
                q.printer.set_power_saving(Some("asked for by the cloud"));
                Outcome::done(format!(
                    "queue {} is power saving: it fetches no jobs until an instruction for it \
                     or a local job wakes it",
                    q.name
                ))
            }
            GroupInstruction::ApplySettings { settings, .. } => {
                let (applied, unsupported, invalid) = self.apply_settings(&q, settings);
                let mut m = json!({"applied": applied, "unsupported": unsupported});
                if !invalid.is_empty() {
                    m["invalid"] = json!(invalid);
                }
                Outcome::done(m.to_string())
            }
        }
    }

    /// Applies what the appliance supports of `settings` to `q` and keeps it; returns the keys
    /// applied, the keys not supported, and the keys whose values are out of range.
    pub fn apply_settings(
        &self,
        q: &GroupQueue,
        settings: &Map<String, Value>,
    ) -> (Vec<String>, Vec<String>, Vec<String>) {
        let (new, applied, unsupported, invalid) = settings_update(&q.settings(), settings);
        if !applied.is_empty() {
            q.settings.send_replace(new.clone());
            let mut all: BTreeMap<String, QueueSettings> = self
                .queues
                .iter()
                .map(|q| (q.printer.uuid.clone(), q.settings()))
                .collect();
            all.insert(q.printer.uuid.clone(), new);
            match serde_json::to_vec_pretty(&all) {
                Ok(bytes) => {
                    if let Err(e) = write_private(&self.settings_path, &bytes) {
                        tracing::warn!("cannot keep the queue settings: {e}");
                    }
                }
                Err(e) => tracing::warn!("cannot keep the queue settings: {e}"),
            }
            tracing::info!(queue = %q.name, applied = ?applied, "settings applied");
        }
        (applied, unsupported, invalid)
    }

    /// Puts back to sleep the queues that were power saving when the appliance stopped (kept in
    /// each queue's spool settings, [`POWER_SAVING_SETTING`]); before the Proxies start, so a
    /// sleeping queue fetches nothing after a restart either.
    pub async fn restore_power_saving(&self) {
        for q in &self.queues {
            match q.printer.spool.setting(POWER_SAVING_SETTING).await {
                Ok(Some(why)) if !why.is_empty() => {
                    q.printer.set_power_saving(Some(&why));
                    tracing::info!(queue = %q.name, "power saving, as before the restart");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(queue = %q.name, "cannot read the power saving state: {e}")
                }
            }
        }
    }

    /// Per shared queue until `shutdown`: a local job wakes it from power saving, and with a
    /// power-saving delay it enters power saving after that long without a job changing (and
    /// none unfinished).
    pub async fn run_power(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let tasks: Vec<_> = self
            .queues
            .iter()
            .map(|q| tokio::spawn(power_loop(q.clone(), shutdown.clone())))
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// How a sign-in instruction is retried when the cloud cannot take it now (a 5xx, a network
/// failure): first wait, longest wait, and for how long in all. The credential is good for 120 s
/// on the cloud's clock (`cloud::groups::CREDENTIAL_SECONDS`), which the appliance cannot compare
/// with its own, so it counts from when it got the instruction and stops well before; a refusal
/// (4xx: the credential used or expired) ends the retries at once.
pub const SIGN_IN_RETRIES: Retries = Retries {
    first: Duration::from_secs(1),
    longest: Duration::from_secs(16),
    within: Duration::from_secs(90),
};

/// A back-off schedule for [`with_retries`].
#[derive(Debug, Clone, Copy)]
pub struct Retries {
    pub first: Duration,
    pub longest: Duration,
    pub within: Duration,
}

impl GroupsError {
    /// Whether the cloud may take the same request later: it answered 5xx or could not be
    /// reached; a 4xx is its refusal.
    pub fn is_transient(&self) -> bool {
        match self {
            GroupsError::Cloud { status, .. } => *status >= 500,
            GroupsError::Http(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// `attempt` until it succeeds, fails for good, or the next wait would end after `r.within`;
/// waits double from `r.first` up to `r.longest`.
pub async fn with_retries<T, F, Fut>(r: Retries, mut attempt: F) -> Result<T, GroupsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, GroupsError>>,
{
    let started = tokio::time::Instant::now();
    let mut wait = r.first;
    loop {
        match attempt().await {
            Err(e) if e.is_transient() && started.elapsed() + wait <= r.within => {
                tracing::warn!("the cloud cannot take the sign-in now ({e}); again in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(r.longest);
            }
            done => return done,
        }
    }
}

/// Writes the queue's power saving (its reason; empty: awake) to its spool settings.
async fn keep_power_saving(q: &GroupQueue) {
    let why = q.printer.power_saving().unwrap_or_default();
    if let Err(e) = q
        .printer
        .spool
        .set_setting(POWER_SAVING_SETTING, &why)
        .await
    {
        tracing::warn!(queue = %q.name, "cannot keep the power saving state: {e}");
    }
}

async fn power_loop(q: Arc<GroupQueue>, mut shutdown: watch::Receiver<bool>) {
    let mut changes = q.printer.spool.subscribe();
    let mut settings = q.settings_watch();
    let mut power = q.printer.power_saving_watch();
    // Power saving survives a restart: every change is kept in the queue's spool settings.
    keep_power_saving(&q).await;
    power.mark_unchanged();
    loop {
        let delay = settings
            .borrow_and_update()
            .power_saving_delay_seconds
            .filter(|d| *d > 0)
            .map(Duration::from_secs);
        let idle = async {
            match delay {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    return;
                }
            }
            _ = settings.changed() => {}
            r = power.changed() => {
                if r.is_err() {
                    return;
                }
                keep_power_saving(&q).await;
            }
            c = changes.recv() => match c {
                // A job created while power saving is a local one (the Proxy fetches none).
                Ok(c) if c.from.is_none() => {
                    if q.printer.set_power_saving(None) {
                        tracing::info!(queue = %q.name, "a local job woke the queue");
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = idle => {
                let busy = q.printer.spool.count_where(|j| !j.status.state.is_terminal()) > 0;
                if !busy && q.printer.power_saving().is_none() {
                    let secs = delay.map_or(0, |d| d.as_secs());
                    q.printer
                        .set_power_saving(Some(&format!("no jobs for {secs} s")));
                }
            }
        }
    }
}

/// The settings after `update` (pure): the new settings and the keys applied, unsupported and
/// invalid (not an integer in range). Key names are cleaned and bounded before they are
/// repeated back.
pub fn settings_update(
    current: &QueueSettings,
    update: &Map<String, Value>,
) -> (QueueSettings, Vec<String>, Vec<String>, Vec<String>) {
    let mut new = current.clone();
    let (mut applied, mut unsupported, mut invalid) = (Vec::new(), Vec::new(), Vec::new());
    for (key, value) in update.iter().take(32) {
        let in_range = |(lo, hi): (u64, u64)| value.as_u64().filter(|v| (lo..=hi).contains(v));
        let slot = match key.as_str() {
            "job_polling_interval_seconds" => {
                Some((&mut new.job_polling_interval_seconds, POLLING_RANGE))
            }
            "timeout_seconds" => Some((&mut new.timeout_seconds, TIMEOUT_RANGE)),
            "power_saving_delay_seconds" => Some((
                &mut new.power_saving_delay_seconds,
                POWER_SAVING_DELAY_RANGE,
            )),
            _ => None,
        };
        match slot {
            Some((field, range)) => match in_range(range) {
                Some(v) => {
                    *field = Some(v);
                    applied.push(key.clone());
                }
                None => invalid.push(key.clone()),
            },
            // The appliance's pages have no language setting, and it has no panel.
            None if UNSUPPORTED_KEYS.contains(&key.as_str()) => unsupported.push(key.clone()),
            None => unsupported.push(clean(key, 64)),
        }
    }
    (new, applied, unsupported, invalid)
}

/// A 2xx answer's JSON, or the refusal with the cloud's message.
fn cloud_answer(status: u16, body: &[u8]) -> Result<Value, GroupsError> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return Ok(v);
    }
    let message = v["message"]
        .as_str()
        .or(v["error_description"].as_str())
        .or(v["error"].as_str())
        .map(|m| clean(m, 200))
        .unwrap_or_else(|| "no reason given".into());
    Err(GroupsError::Cloud { status, message })
}

fn secret_kind(s: &Secret) -> &'static str {
    match s {
        Secret::Password(_) => "password",
        Secret::Credential(_) => "credential",
    }
}

/// Network text for a log line or a message: no control characters, at most `max` of them.
fn clean(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_applied_within_bounds_and_the_rest_reported() {
        let update: Map<String, Value> = serde_json::from_value(json!({
            "job_polling_interval_seconds": 5,
            "timeout_seconds": -1,
            "power_saving_delay_seconds": 120,
            "language": "fr",
            "panel_contrast": 3,
            "scroll_speed": 2,
            "interface": "usb",
            "receive_buffer_size": 1024,
            "evil\nkey": 1,
        }))
        .unwrap();
        let (new, applied, unsupported, invalid) =
            settings_update(&QueueSettings::default(), &update);
        assert_eq!(new.job_polling_interval_seconds, Some(5));
        assert_eq!(new.power_saving_delay_seconds, Some(120));
        assert_eq!(new.timeout_seconds, None);
        assert_eq!(
            applied,
            ["job_polling_interval_seconds", "power_saving_delay_seconds"]
        );
        assert_eq!(invalid, ["timeout_seconds"]);
        assert_eq!(unsupported.len(), 6);
        assert!(unsupported.contains(&"language".to_string()));
        assert!(unsupported.contains(&"evilkey".to_string()));
        let (_, applied, _, invalid) = settings_update(
            &new,
            &serde_json::from_value(json!({"job_polling_interval_seconds": "5",
                "timeout_seconds": 99999, "power_saving_delay_seconds": 1e9}))
            .unwrap(),
        );
        assert!(applied.is_empty());
        assert_eq!(invalid.len(), 3);
    }

    #[tokio::test]
    async fn sign_ins_are_retried_after_a_5xx_but_not_after_a_refusal() {
        let quick = Retries {
            first: Duration::from_millis(5),
            longest: Duration::from_millis(20),
            within: Duration::from_secs(30),
        };
        let fail = |status: u16| GroupsError::Cloud {
            status,
            message: "x".into(),
        };
        // 503 twice, then the cloud takes it.
        let mut calls = 0;
        let r = with_retries(quick, || {
            calls += 1;
            let r = if calls < 3 { Err(fail(503)) } else { Ok(calls) };
            async move { r }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
        // A refusal (the credential used or expired) is final at once.
        let mut calls = 0;
        let r: Result<(), _> = with_retries(quick, || {
            calls += 1;
            let e = fail(401);
            async move { Err(e) }
        })
        .await;
        assert!(matches!(r, Err(GroupsError::Cloud { status: 401, .. })));
        assert_eq!(calls, 1);
        // Always 502: given up once the next wait would pass `within`.
        let short = Retries {
            within: Duration::from_millis(60),
            ..quick
        };
        let mut calls = 0;
        let r: Result<(), _> = with_retries(short, || {
            calls += 1;
            let e = fail(502);
            async move { Err(e) }
        })
        .await;
        assert!(matches!(r, Err(GroupsError::Cloud { status: 502, .. })));
        // Waits 5 + 10 + 20 + 20 = 55 ms fit within 60 ms at most: between 2 and 5 attempts.
        assert!((2..=5).contains(&calls), "{calls} attempts");
    }

    #[test]
    fn cloud_refusals_carry_the_cloud_message() {
        assert_eq!(
            cloud_answer(200, b"{\"status\":\"IN\"}").unwrap()["status"],
            "IN"
        );
        match cloud_answer(401, b"{\"error\":\"x\",\"message\":\"bad\\ncredential\"}") {
            Err(GroupsError::Cloud { status, message }) => {
                assert_eq!(status, 401);
                assert_eq!(message, "badcredential");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            cloud_answer(502, b"<html>"),
            Err(GroupsError::Cloud { status: 502, .. })
        ));
        assert_eq!(
            format!("{:?}", Secret::Password("hunter2".into())),
            "Secret::Password(..)"
        );
    }
}
