//! The appliance's end of the cloud's control channel (docs/bridge.md, "The control channel"):
//! once registered, it holds `GET {cloud}/api/v1/control?wait=N` with the device's access token
//! (a long poll; the cloud answers as soon as an instruction is queued), carries out each
//! instruction and acknowledges it (`POST /api/v1/control/{id}/ack` with `status` done | failed |
//! rejected and a `message`). `identify` is carried out by the [`Appliance`] (the web page shows a
//! banner, each queue's IPP printer gets Identify-Printer); the group kinds (`sign-in`,
//! `sign-out`, `power-save`, `apply-settings`, issue 14) are checked here ([`GroupInstruction`])
//! and carried out by `bridge::groups`. Errors bring a bounded, jittered back-off; a refused token
//! (401) waits for the registration agent's next token.
//!
//! Everything in an answer is untrusted: the answer is bounded in bytes, at most
//! [`MAX_INSTRUCTIONS`] are taken from one, ids must look like ids before they go into a URL, and
//! payload values are checked and clamped.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;

use super::http::{CloudHttp, HttpError};
use super::registration::Agent;

/// How long the cloud is asked to hold a poll (it holds at most 60 s).
pub const WAIT_SECONDS: u64 = 50;
/// Instructions taken from one answer; the rest come with the next poll.
pub const MAX_INSTRUCTIONS: usize = 100;
/// Largest answer read: 100 instructions with the cloud's 16 KiB payload limit, and room.
const MAX_ANSWER_BYTES: usize = 2 * 1024 * 1024;
/// Back-off after an error: from 1 s, doubling, at most 5 minutes, with jitter.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Without a new token after a 401, look again this often anyway (the agent may have refreshed
/// the token in a way this task missed).
const UNAUTHORIZED_RETRY: Duration = Duration::from_secs(600);
/// Outcomes kept for instructions whose acknowledgement did not reach the cloud: when the cloud
/// hands one over again, it is acknowledged, not carried out twice.
const REMEMBERED_OUTCOMES: usize = 256;
/// An identification is shown this long unless the instruction says otherwise (1..=600 s).
const DEFAULT_IDENTIFY_SECONDS: i64 = 60;
const MAX_IDENTIFY_SECONDS: i64 = 600;

/// Longest sign-in credential taken from an instruction.
const MAX_CREDENTIAL: usize = 512;
/// Most settings keys taken from an apply-settings instruction.
const MAX_SETTINGS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control channel: {0}")]
    Http(#[from] HttpError),
    #[error("control channel: cannot read cloud.ca_file {path}: {source}")]
    CaFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An `identify` instruction, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifyRequest {
    /// How long the web page shows it.
    pub seconds: i64,
    /// identify-actions for the printers (PWG 5100.13 §5.1.4 keywords); empty: their default.
    pub actions: Vec<String>,
}

/// How an instruction ended, as acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `done`, `failed` or `rejected`.
    pub status: &'static str,
    pub message: String,
}

impl Outcome {
    pub fn done(message: impl Into<String>) -> Outcome {
        Outcome {
            status: "done",
            message: message.into(),
        }
    }

    pub fn failed(message: impl Into<String>) -> Outcome {
        Outcome {
            status: "failed",
            message: message.into(),
        }
    }

    pub fn rejected(message: impl Into<String>) -> Outcome {
        Outcome {
            status: "rejected",
            message: message.into(),
        }
    }
}

/// What the control channel can ask of the appliance (built in `app.rs` over its queues).
pub trait Appliance: Send + Sync {
    fn identify<'a>(&'a self, request: &'a IdentifyRequest) -> BoxFuture<'a, Outcome>;
    /// A group instruction (CONTRACT-groups "Control-channel instructions"), checked.
    fn group<'a>(&'a self, instruction: &'a GroupInstruction) -> BoxFuture<'a, Outcome>;
}

/// A group instruction, checked: the printer id can go into a URL, the account is a mail
/// address, the credential and the settings are bounded.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupInstruction {
    SignIn {
        printer: String,
        account: String,
        credential: String,
    },
    SignOut {
        printer: String,
        account: String,
        /// The instruction's id, sent with the sign-out so the cloud knows it asked for it.
        instruction: Option<String>,
    },
    PowerSave {
        printer: String,
    },
    ApplySettings {
        printer: String,
        settings: serde_json::Map<String, Value>,
    },
}

impl GroupInstruction {
    /// The cloud printer the instruction is for.
    pub fn printer(&self) -> &str {
        match self {
            GroupInstruction::SignIn { printer, .. }
            | GroupInstruction::SignOut { printer, .. }
            | GroupInstruction::PowerSave { printer }
            | GroupInstruction::ApplySettings { printer, .. } => printer,
        }
    }
}

/// Checks a group instruction's payload; the reason it is rejected otherwise. The credential's
/// `expires_at` is the cloud's business (its clock, which tests may shift): not judged here.
pub fn group_instruction(kind: &str, payload: &Value) -> Result<GroupInstruction, String> {
    let printer = payload
        .get("printer")
        .and_then(Value::as_str)
        .filter(|p| {
            !p.is_empty()
                && p.len() <= 128
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .ok_or("the payload names no valid printer")?
        .to_string();
    let account = || {
        payload
            .get("account")
            .and_then(Value::as_str)
            .and_then(crate::model::email::normalize)
            .ok_or("the payload names no valid account")
    };
    Ok(match kind {
        "sign-in" => {
            let credential = payload
                .get("credential")
                .and_then(Value::as_str)
                .filter(|c| {
                    !c.is_empty()
                        && c.len() <= MAX_CREDENTIAL
                        && c.bytes().all(|b| b.is_ascii_graphic())
                })
                .ok_or("the payload carries no valid sign-in credential")?
                .to_string();
            GroupInstruction::SignIn {
                printer,
                account: account()?,
                credential,
            }
        }
        "sign-out" => GroupInstruction::SignOut {
            printer,
            account: account()?,
            instruction: None,
        },
        "power-save" => GroupInstruction::PowerSave { printer },
        "apply-settings" => {
            let settings = payload
                .get("settings")
                .and_then(Value::as_object)
                .filter(|m| m.len() <= MAX_SETTINGS)
                .ok_or("the payload carries no settings object (at most 32 keys)")?
                .clone();
            GroupInstruction::ApplySettings { printer, settings }
        }
        _ => return Err("not a group instruction".into()),
    })
}

/// One instruction as handed over, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    pub id: String,
    pub kind: String,
    pub payload: Value,
}

/// The instructions of a poll's answer: at most [`MAX_INSTRUCTIONS`], each with an id fit for a
/// URL path; anything else is skipped (logged).
pub fn parse_answer(body: &[u8]) -> Result<Vec<Instruction>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let list = v
        .get("instructions")
        .and_then(Value::as_array)
        .ok_or("no instructions list")?;
    let mut out = Vec::new();
    for item in list.iter().take(MAX_INSTRUCTIONS) {
        let id = item.get("id").and_then(Value::as_str).unwrap_or("");
        let kind = item.get("kind").and_then(Value::as_str).unwrap_or("");
        if !valid_id(id) || kind.is_empty() || kind.len() > 64 {
            tracing::warn!("control channel: skipped an instruction without a valid id or kind");
            continue;
        }
        out.push(Instruction {
            id: id.to_string(),
            kind: kind.to_string(),
            payload: item.get("payload").cloned().unwrap_or(Value::Null),
        });
    }
    Ok(out)
}

/// Instruction ids are the cloud's UUIDs: letters, digits and hyphens, at most 64 of them.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// An `identify` payload: `seconds` (clamped to 1..=600, default 60) and `actions` (known
/// identify-actions keywords only, at most 4).
pub fn identify_request(payload: &Value) -> IdentifyRequest {
    let seconds = payload
        .get("seconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_IDENTIFY_SECONDS)
        .clamp(1, MAX_IDENTIFY_SECONDS);
    let mut actions: Vec<String> = Vec::new();
    if let Some(list) = payload.get("actions").and_then(Value::as_array) {
        for a in list.iter().take(16).filter_map(Value::as_str) {
            if ["display", "flash", "sound", "speak"].contains(&a)
                && !actions.iter().any(|x| x == a)
            {
                actions.push(a.to_string());
            }
        }
    }
    IdentifyRequest { seconds, actions }
}

/// Carries out one instruction.
pub async fn carry_out(appliance: &dyn Appliance, i: &Instruction) -> Outcome {
    match i.kind.as_str() {
        "identify" => {
            let request = identify_request(&i.payload);
            tracing::info!(instruction = %i.id, seconds = request.seconds,
                "control channel: the cloud asks the appliance to identify itself");
            appliance.identify(&request).await
        }
        "sign-in" | "sign-out" | "power-save" | "apply-settings" => {
            match group_instruction(&i.kind, &i.payload) {
                Ok(mut g) => {
                    if let GroupInstruction::SignOut { instruction, .. } = &mut g {
                        *instruction = Some(i.id.clone());
                    }
                    tracing::info!(instruction = %i.id, kind = %i.kind, printer = %g.printer(),
                        "control channel: group instruction");
                    appliance.group(&g).await
                }
                Err(why) => {
                    tracing::info!(instruction = %i.id, kind = %i.kind,
                        "control channel: rejected: {why}");
                    Outcome::rejected(why)
                }
            }
        }
        other => {
            let shown: String = other.chars().filter(|c| !c.is_control()).take(64).collect();
            Outcome::rejected(format!("unknown instruction {shown:?}"))
        }
    }
}

/// Bounded, jittered exponential back-off.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff { next: BACKOFF_MIN }
    }

    fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }

    /// The wait before the next attempt: between half and all of the current step (so that
    /// appliances cut off together do not come back together), then the step doubles.
    fn step(&mut self, at_least: Option<Duration>) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        let half = base / 2;
        let jitter = getrandom::u64().unwrap_or(0) % (half.as_millis() as u64 + 1);
        let wait = half + Duration::from_millis(jitter);
        wait.max(at_least.unwrap_or_default().min(BACKOFF_MAX))
    }
}

/// The control channel's client: runs until shutdown.
pub struct ControlClient {
    agent: Arc<Agent>,
    appliance: Arc<dyn Appliance>,
    /// For the held poll: its time-out is the wait plus the agent's exchange time-out.
    poll_http: CloudHttp,
    /// Outcomes whose acknowledgement has not reached the cloud yet, newest last.
    unacknowledged: VecDeque<(String, Outcome)>,
}

impl ControlClient {
    pub fn new(agent: Arc<Agent>, appliance: Arc<dyn Appliance>) -> Result<Self, ControlError> {
        let config = agent.link_config();
        let ca = match &config.ca_file {
            Some(p) => Some(std::fs::read(p).map_err(|source| ControlError::CaFile {
                path: p.clone(),
                source,
            })?),
            None => None,
        };
        let poll_http = CloudHttp::new(
            Duration::from_secs(WAIT_SECONDS + config.timeout_seconds.max(5)),
            MAX_ANSWER_BYTES,
            ca.as_deref(),
        )?;
        Ok(ControlClient {
            agent,
            appliance,
            poll_http,
            unacknowledged: VecDeque::new(),
        })
    }

    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut session_changes = self.agent.session_changes();
        let mut backoff = Backoff::new();
        loop {
            if *shutdown.borrow() {
                return;
            }
            session_changes.mark_unchanged();
            let Some(session) = self.agent.session() else {
                // Not registered (yet): the agent says when it is.
                tokio::select! {
                    _ = session_changes.changed() => continue,
                    _ = shutdown.changed() => return,
                }
            };
            let base = session.cloud.trim_end_matches('/').to_string();
            let url = format!("{base}/api/v1/control?wait={WAIT_SECONDS}");
            let answer = tokio::select! {
                a = self.poll_http.get(&url, Some(&session.access_token)) => a,
                // A new token (or registration set aside): poll again with it.
                _ = session_changes.changed() => continue,
                _ = shutdown.changed() => return,
            };
            let pause = match answer {
                Ok(a) if a.status == 200 => match parse_answer(&a.body) {
                    Ok(list) => {
                        crate::metrics::global().cloud_link(true, 0);
                        backoff.reset();
                        for i in list {
                            let outcome = self.outcome_for(&i).await;
                            self.acknowledge(&base, &session.access_token, &i.id, outcome)
                                .await;
                        }
                        None
                    }
                    Err(why) => {
                        link_failed();
                        tracing::warn!("control channel: the cloud's answer is unusable: {why}");
                        Some(backoff.step(None))
                    }
                },
                Ok(a) if a.status == 401 => {
                    link_failed();
                    self.agent.token_refused(&session.access_token);
                    tracing::warn!(
                        "control channel: the cloud refused the access token; waiting for a new one"
                    );
                    tokio::select! {
                        _ = session_changes.changed() => {}
                        _ = tokio::time::sleep(UNAUTHORIZED_RETRY) => {}
                        _ = shutdown.changed() => return,
                    }
                    None
                }
                // Another authorization server (not printbridge cloud) has no control channel:
                // ask again now and then, quietly.
                Ok(a) if a.status == 404 => {
                    tracing::debug!("control channel: the cloud offers none (HTTP 404)");
                    Some(BACKOFF_MAX)
                }
                Ok(a) => {
                    link_failed();
                    tracing::warn!("control channel: the cloud answered HTTP {}", a.status);
                    Some(backoff.step(a.retry_after.map(Duration::from_secs)))
                }
                Err(e) => {
                    link_failed();
                    tracing::warn!("control channel: {e}");
                    Some(backoff.step(None))
                }
            };
            if let Some(wait) = pause {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }

    /// The outcome of `i`: the remembered one when it was carried out before and its
    /// acknowledgement got lost, else carried out now.
    async fn outcome_for(&mut self, i: &Instruction) -> Outcome {
        if let Some(pos) = self.unacknowledged.iter().position(|(id, _)| *id == i.id) {
            if let Some((_, o)) = self.unacknowledged.remove(pos) {
                return o;
            }
        }
        carry_out(self.appliance.as_ref(), i).await
    }

    /// Acknowledges; on a network failure the outcome is kept for when the cloud hands the
    /// instruction over again.
    async fn acknowledge(&mut self, base: &str, token: &str, id: &str, outcome: Outcome) {
        let url = format!("{base}/api/v1/control/{id}/ack");
        let message: String = outcome.message.chars().take(500).collect();
        let body = json!({"status": outcome.status, "message": message});
        match self.agent.http().post_json(&url, Some(token), &body).await {
            // 409: acknowledged before (by an earlier attempt whose answer was lost).
            Ok(a) if a.status == 200 || a.status == 409 => {
                tracing::info!(instruction = %id, status = outcome.status,
                    "control channel: acknowledged");
            }
            Ok(a) if a.status == 404 => {
                tracing::warn!(instruction = %id, "control channel: the cloud no longer knows it");
            }
            Ok(a) => {
                tracing::warn!(instruction = %id,
                    "control channel: acknowledgement answered HTTP {}", a.status);
                self.remember(id, outcome);
            }
            Err(e) => {
                tracing::warn!(instruction = %id, "control channel: acknowledgement failed: {e}");
                self.remember(id, outcome);
            }
        }
    }

    fn remember(&mut self, id: &str, outcome: Outcome) {
        if self.unacknowledged.len() >= REMEMBERED_OUTCOMES {
            self.unacknowledged.pop_front();
        }
        self.unacknowledged.push_back((id.to_string(), outcome));
    }
}

/// The metrics' cloud link state: not connected, failed now.
fn link_failed() {
    crate::metrics::global().cloud_link(false, jiff::Timestamp::now().as_second());
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(std::sync::Mutex<Vec<IdentifyRequest>>);

    impl Appliance for Fake {
        fn identify<'a>(&'a self, request: &'a IdentifyRequest) -> BoxFuture<'a, Outcome> {
            self.0.lock().unwrap().push(request.clone());
            Box::pin(async { Outcome::done("shown") })
        }

        fn group<'a>(&'a self, g: &'a GroupInstruction) -> BoxFuture<'a, Outcome> {
            let printer = g.printer().to_string();
            Box::pin(async move { Outcome::done(format!("group {printer}")) })
        }
    }

    #[test]
    fn answers_are_bounded_and_ids_checked() {
        let mut list: Vec<Value> = (0..150)
            .map(|n| json!({"id": format!("id-{n}"), "kind": "identify", "payload": {}}))
            .collect();
        list.insert(0, json!({"id": "../../admin", "kind": "identify"}));
        list.insert(1, json!({"id": "x", "kind": ""}));
        list.insert(2, json!({"kind": "identify"}));
        let body = json!({ "instructions": list }).to_string();
        let got = parse_answer(body.as_bytes()).unwrap();
        assert_eq!(got.len(), MAX_INSTRUCTIONS - 3);
        assert!(got.iter().all(|i| valid_id(&i.id)));
        assert!(parse_answer(b"[]").is_err());
        assert!(parse_answer(b"{\"instructions\": 5}").is_err());
        assert!(parse_answer(b"\xff").is_err());
    }

    #[test]
    fn identify_payloads_are_clamped() {
        assert_eq!(
            identify_request(&json!({})),
            IdentifyRequest {
                seconds: 60,
                actions: vec![]
            }
        );
        let r = identify_request(&json!({"seconds": 1_000_000, "actions":
            ["sound", "explode", "sound", 5, "flash"]}));
        assert_eq!(r.seconds, 600);
        assert_eq!(r.actions, ["sound", "flash"]);
        assert_eq!(identify_request(&json!({"seconds": -5})).seconds, 1);
        assert_eq!(identify_request(&Value::Null).seconds, 60);
    }

    #[tokio::test]
    async fn kinds_are_carried_out_or_rejected() {
        let fake = Fake(Default::default());
        let i = |kind: &str| Instruction {
            id: "a".into(),
            kind: kind.into(),
            payload: json!({"seconds": 5}),
        };
        assert_eq!(
            carry_out(&fake, &i("identify")).await,
            Outcome::done("shown")
        );
        assert_eq!(fake.0.lock().unwrap()[0].seconds, 5);
        for kind in ["sign-in", "sign-out", "power-save", "apply-settings"] {
            // The payload above names no printer.
            let o = carry_out(&fake, &i(kind)).await;
            assert_eq!(o.status, "rejected");
            assert!(o.message.contains("no valid printer"), "{}", o.message);
        }
        let g = Instruction {
            id: "b".into(),
            kind: "power-save".into(),
            payload: json!({"printer": "p-1"}),
        };
        assert_eq!(carry_out(&fake, &g).await, Outcome::done("group p-1"));
        let o = carry_out(&fake, &i("reboot\n")).await;
        assert_eq!(o.status, "rejected");
        assert!(!o.message.contains('\n'));
        assert_eq!(fake.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn group_payloads_are_checked() {
        let ok = group_instruction(
            "sign-in",
            &json!({"printer": "p_1", "account": " Ann@Example.COM ", "credential": "c-1",
                    "expires_at": 1}),
        )
        .unwrap();
        assert_eq!(
            ok,
            GroupInstruction::SignIn {
                printer: "p_1".into(),
                account: "ann@example.com".into(),
                credential: "c-1".into()
            }
        );
        for bad in [
            json!({"printer": "../x", "account": "a@b.c", "credential": "c"}),
            json!({"printer": "p", "account": "nobody", "credential": "c"}),
            json!({"printer": "p", "account": "a@b.c", "credential": "with space"}),
            json!({"printer": "p", "account": "a@b.c", "credential": "x".repeat(513)}),
            json!({"printer": "p", "account": "a@b.c"}),
            json!({"printer": 5}),
        ] {
            assert!(group_instruction("sign-in", &bad).is_err(), "{bad}");
        }
        assert!(group_instruction("sign-out", &json!({"printer": "p"})).is_err());
        assert!(group_instruction("apply-settings", &json!({"printer": "p"})).is_err());
        let many: serde_json::Map<String, Value> =
            (0..33).map(|n| (format!("k{n}"), json!(1))).collect();
        assert!(
            group_instruction("apply-settings", &json!({"printer": "p", "settings": many}))
                .is_err()
        );
        assert!(matches!(
            group_instruction("power-save", &json!({"printer": "p"})),
            Ok(GroupInstruction::PowerSave { .. })
        ));
    }

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let mut b = Backoff::new();
        let waits: Vec<Duration> = (0..20).map(|_| b.step(None)).collect();
        assert!(waits[0] >= BACKOFF_MIN / 2 && waits[0] <= BACKOFF_MIN);
        assert!(waits.iter().all(|w| *w <= BACKOFF_MAX));
        assert!(waits[19] >= BACKOFF_MAX / 2);
        assert!(b.step(Some(Duration::from_secs(3600))) <= BACKOFF_MAX);
        b.reset();
        assert!(b.step(None) <= BACKOFF_MIN);
    }

    /// A cloud on a socket in the test, answering from a script: (path prefix, status, body)
    /// for each request in turn; records the requests (first line and body).
    async fn scripted_cloud(
        script: Vec<(&'static str, u16, String)>,
    ) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let log = seen.clone();
        tokio::spawn(async move {
            let mut script = script.into_iter();
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                // Head, then as much body as Content-Length says.
                let body_start = loop {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    raw.extend_from_slice(&buf[..n]);
                    if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(p + 4);
                    }
                };
                let Some(body_start) = body_start else {
                    continue;
                };
                let head = String::from_utf8_lossy(&raw[..body_start]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                while raw.len() < body_start + length {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    raw.extend_from_slice(&buf[..n]);
                }
                let line = head.lines().next().unwrap_or("").to_string();
                let body = String::from_utf8_lossy(&raw[body_start..]).to_string();
                log.lock().unwrap().push(format!("{line} {body}"));
                let path = line.split(' ').nth(1).unwrap_or("");
                let (status, answer) = match script.next() {
                    Some((prefix, status, answer)) => {
                        assert!(path.starts_with(prefix), "expected {prefix}, got {line}");
                        (status, answer)
                    }
                    // The script is over: hold the poll (as an idle cloud would).
                    None => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        continue;
                    }
                };
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nRetry-After: 0\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        (base, seen)
    }

    /// A 500 brings a back-off and a new poll; an instruction whose acknowledgement is lost is
    /// acknowledged again when the cloud hands it over again, not carried out twice; ids that
    /// cannot go into a URL are never used.
    #[tokio::test]
    async fn lost_acknowledgements_are_repeated_not_the_instruction() {
        let one = json!({"instructions": [
            {"id": "abc-1", "kind": "identify", "payload": {"seconds": 9}},
            {"id": "../evil", "kind": "identify", "payload": {}},
        ]})
        .to_string();
        let (base, seen) = scripted_cloud(vec![
            ("/api/v1/control?wait=", 500, "{}".into()),
            ("/api/v1/control?wait=", 200, one.clone()),
            ("/api/v1/control/abc-1/ack", 503, "{}".into()),
            ("/api/v1/control?wait=", 200, one),
            ("/api/v1/control/abc-1/ack", 200, "{}".into()),
        ])
        .await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("cloud")).unwrap();
        std::fs::write(
            dir.path().join("cloud/tokens.json"),
            json!({"cloud": base, "access_token": "tok", "refresh_token": null,
                   "expires_at": null, "registered_at": 1, "user_email": "a@example.com"})
            .to_string(),
        )
        .unwrap();
        let config = crate::config::CloudLinkConfig {
            url: base.clone(),
            timeout_seconds: 5,
            ..Default::default()
        };
        let agent = Arc::new(
            Agent::new(
                config,
                Arc::new(
                    super::super::store::RegistrationStore::open(dir.path())
                        .await
                        .unwrap(),
                ),
                Arc::new(crate::notify::NoMailer),
                Arc::new(crate::model::clock::SystemClock),
                Default::default(),
                dir.path(),
            )
            .unwrap(),
        );
        let fake = Arc::new(Fake(Default::default()));
        let client = ControlClient::new(agent, fake.clone()).unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(client.run(stop));
        let done = async {
            loop {
                if seen.lock().unwrap().len() >= 6 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), done)
            .await
            .expect("the client did not go through the script");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            fake.0.lock().unwrap().len(),
            1,
            "carried out twice: {seen:?}"
        );
        assert!(seen[2].contains("\"status\":\"done\""), "{seen:?}");
        assert_eq!(seen[2], seen[4], "the same acknowledgement again: {seen:?}");
        assert!(seen[5].starts_with("GET /api/v1/control?wait="), "{seen:?}");
        assert!(!seen.iter().any(|l| l.contains("evil")), "{seen:?}");
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
}
