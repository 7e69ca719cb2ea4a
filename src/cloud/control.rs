//! The device control channel: JSON over HTTP(S), authenticated by the device's access token.
//! A device holds `GET /api/v1/control?wait=SECONDS` open (a long poll) and gets its
//! unacknowledged instructions (sign-in, sign-out, power-save, apply-settings, identify) as soon
//! as one is queued; it acknowledges each with `POST /api/v1/control/{id}/ack`. Instructions live
//! in the database, so the instance that queues one need not be the one holding the poll. A held
//! poll is woken at once when this instance queues for its device, and within a [`TICK`] when
//! another instance did: [`watch_instructions`] asks the database about every device with a poll
//! held here in one query per tick, so 10,000 held polls cost one query per tick, not 10,000.
//! Only the plumbing: what the group sign-in policies send through it comes later
//! (specs/groups.md).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::device_auth::bearer_device;
use super::Cloud;
use crate::store::control::{AckOutcome, Instruction};
use crate::store::StoreError;

pub const CONTROL_PATH: &str = "/api/v1/control";
/// The instruction kinds a device understands.
pub const KINDS: [&str; 5] = [
    "sign-in",
    "sign-out",
    "power-save",
    "apply-settings",
    "identify",
];
/// Longest hold of a poll; the default when the device names none.
const MAX_WAIT_SECONDS: u64 = 60;
const DEFAULT_WAIT_SECONDS: u64 = 30;
/// A payload is a JSON object of at most this many bytes.
pub const MAX_PAYLOAD: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "unknown instruction {0:?}; one of sign-in, sign-out, power-save, apply-settings, identify"
    )]
    Kind(String),
    #[error("the payload must be a JSON object of at most 16 KiB")]
    Payload,
    #[error("no such device")]
    NoDevice,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How often this instance looks for instructions another instance (or `printbridge cloud admin`
/// in its own process) queued for a device whose poll is held here.
pub const TICK: Duration = Duration::from_millis(500);
/// Held polls looked at per query: keeps the statement within every backend's parameter limit.
const DEVICES_PER_QUERY: usize = 500;

/// This instance's held polls, per device (a field of the [`Cloud`]). A held poll waits on its
/// device's receiver; it is woken at once when this instance queues for the device ([`queue`]),
/// and within a [`TICK`] when another instance did ([`watch_instructions`] asks the database
/// about all devices with held polls in one query per tick, so the load does not grow with the
/// number of held polls).
#[derive(Default)]
pub struct ControlWake {
    devices: std::sync::Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl ControlWake {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<u64>>> {
        // A panic while holding the lock leaves only senders behind: keep going.
        self.devices.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`queue`], then wakes the polls held here for the device.
    pub async fn queue(
        &self,
        store: &crate::store::Store,
        device_id: &str,
        kind: &str,
        payload: &str,
        now: i64,
    ) -> Result<Instruction, ControlError> {
        let i = queue(store, device_id, kind, payload, now).await?;
        self.wake(device_id);
        Ok(i)
    }

    /// Wakes the polls held here for `device`.
    pub fn wake(&self, device: &str) {
        if let Some(tx) = self.lock().get(device) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Wakes every held poll (they look for themselves, e.g. when the tick's query failed).
    fn wake_all(&self) {
        for tx in self.lock().values() {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// A receiver that changes when `device` may have new instructions; holding it makes the
    /// device one [`watch_instructions`] looks at.
    pub fn subscribe(&self, device: &str) -> watch::Receiver<u64> {
        self.lock()
            .entry(device.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Devices with a poll held here; forgets the others.
    pub fn held(&self) -> Vec<String> {
        let mut map = self.lock();
        map.retain(|_, tx| tx.receiver_count() > 0);
        map.keys().cloned().collect()
    }
}

/// One acknowledgement waiting for [`AckBatch`]: (device, instruction, status, message) and
/// where its outcome goes.
type PendingAck = (
    (String, String, String, String),
    i64,
    tokio::sync::oneshot::Sender<Result<AckOutcome, StoreError>>,
);

/// This instance's acknowledgements, written together (group commit): the first one is written
/// at once; those arriving while a write is in progress wait for it and are written next, all
/// in one statement ([`crate::store::Store::acknowledge_instructions`]). No tick and no delay
/// when acknowledgements are rare; one statement and one commit per round instead of one per
/// printer when a group of 1,000 acknowledges together. Each still counts once (the UPDATE is
/// conditional on `acked_at IS NULL`).
#[derive(Default)]
pub struct AckBatch {
    state: std::sync::Mutex<AckState>,
}

#[derive(Default)]
struct AckState {
    pending: Vec<PendingAck>,
    writing: bool,
}

impl AckBatch {
    fn lock(&self) -> std::sync::MutexGuard<'_, AckState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `device`'s acknowledgement of instruction `id` with the next round's write.
    pub async fn acknowledge(
        self: &Arc<Self>,
        store: &crate::store::Store,
        device: &str,
        id: &str,
        status: &str,
        message: &str,
        now: i64,
    ) -> Result<AckOutcome, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let item = (
            device.to_string(),
            id.to_string(),
            status.to_string(),
            message.to_string(),
        );
        let start = {
            let mut st = self.lock();
            st.pending.push((item, now, tx));
            !std::mem::replace(&mut st.writing, true)
        };
        if start {
            // A task of its own, not this request's future: a client that hangs up must not
            // take the others' round with it.
            tokio::spawn(self.clone().write_rounds(store.clone()));
        }
        match rx.await {
            Ok(r) => r,
            // The writer task died (a panic): record this one alone.
            Err(_) => {
                store
                    .acknowledge_instruction(device, id, status, message, now)
                    .await
            }
        }
    }

    /// Writes rounds until nothing is pending.
    async fn write_rounds(self: Arc<Self>, store: crate::store::Store) {
        loop {
            let round = {
                let mut st = self.lock();
                if st.pending.is_empty() {
                    st.writing = false;
                    return;
                }
                std::mem::take(&mut st.pending)
            };
            let now = round
                .iter()
                .map(|(_, now, _)| *now)
                .max()
                .unwrap_or_default();
            let (items, replies): (Vec<_>, Vec<_>) = round
                .into_iter()
                .map(|(item, _, reply)| (item, reply))
                .unzip();
            match store.acknowledge_instructions(&items, now).await {
                Ok(outcomes) => {
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                // Each on its own, so each gets its own outcome or error.
                Err(e) => {
                    tracing::warn!(
                        "writing {} acknowledgements together failed: {e}",
                        items.len()
                    );
                    for ((device, id, status, message), reply) in items.iter().zip(replies) {
                        let r = store
                            .acknowledge_instruction(device, id, status, message, now)
                            .await;
                        let _ = reply.send(r);
                    }
                }
            }
        }
    }
}

/// Runs until `stop`: every [`TICK`], reads which of the devices with polls held here have open
/// instructions (one query per `DEVICES_PER_QUERY` held devices, not one per poll) and wakes
/// their polls.
pub async fn watch_instructions(cloud: Arc<Cloud>, stop: watch::Receiver<bool>) {
    let wake = &cloud.control;
    watch_held(wake, "control channel", stop, |held| {
        let cloud = cloud.clone();
        async move { cloud.store.devices_with_open_instructions(&held).await }
    })
    .await
}

/// Runs until `stop`: every [`TICK`], asks `ready` which of the keys with polls held on `wake`
/// have something for them (at most `DEVICES_PER_QUERY` keys per call) and wakes those polls;
/// when asking fails, wakes them all (they look for themselves). The fleet's push polls use it
/// too.
pub async fn watch_held<F, Fut>(
    wake: &ControlWake,
    what: &str,
    mut stop: watch::Receiver<bool>,
    ready: F,
) where
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, StoreError>>,
{
    loop {
        let held = wake.held();
        for chunk in held.chunks(DEVICES_PER_QUERY) {
            match ready(chunk.to_vec()).await {
                Ok(keys) => {
                    for k in keys {
                        wake.wake(&k);
                    }
                }
                Err(e) => {
                    tracing::warn!("{what}: looking for work of held polls failed: {e}");
                    wake.wake_all();
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Checks an instruction: a known kind and a JSON object payload of bounded size; the payload
/// as it will be stored.
pub fn validate(kind: &str, payload: &str) -> Result<String, ControlError> {
    if !KINDS.contains(&kind) {
        return Err(ControlError::Kind(kind.to_string()));
    }
    let parsed: Value = serde_json::from_str(payload).map_err(|_| ControlError::Payload)?;
    if payload.len() > MAX_PAYLOAD || !parsed.is_object() {
        return Err(ControlError::Payload);
    }
    Ok(parsed.to_string())
}

/// Queues `kind` with `payload` (JSON object text) for `device_id` in `store`.
pub async fn queue(
    store: &crate::store::Store,
    device_id: &str,
    kind: &str,
    payload: &str,
    now: i64,
) -> Result<Instruction, ControlError> {
    let payload = validate(kind, payload)?;
    if store.device(device_id).await?.is_none() {
        return Err(ControlError::NoDevice);
    }
    let i = store
        .queue_instruction(device_id, kind, &payload, now)
        .await?;
    tracing::info!(device = %device_id, instruction = %i.id, kind, "instruction queued");
    Ok(i)
}

/// A JSON error body `{"error", "error_description"}` (the shape of RFC 6749 §5.2).
pub fn json_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// 500 for a database failure; the cause goes to the log only.
pub fn store_failed(e: StoreError) -> Response {
    tracing::error!("{e}");
    json_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "the service could not complete the request",
    )
}

fn view(i: &Instruction) -> Value {
    json!({
        "id": i.id,
        "seq": i.seq,
        "kind": i.kind,
        "payload": serde_json::from_str::<Value>(&i.payload).unwrap_or(Value::Null),
        "created_at": i.created_at,
    })
}

/// GET /api/v1/control?wait=SECONDS.
pub async fn poll(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let device = match bearer_device(&cloud, &headers).await {
        Ok(Ok(d)) => d,
        Ok(Err(resp)) => return resp,
        Err(e) => return store_failed(e),
    };
    let wait = match wait_param(&q, DEFAULT_WAIT_SECONDS, MAX_WAIT_SECONDS) {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    match hold(
        &cloud.control,
        &device.id,
        Duration::from_secs(wait),
        || cloud.store.open_instructions(&device.id),
    )
    .await
    {
        Ok(open) => {
            let list: Vec<Value> = open.iter().map(view).collect();
            Json(json!({"instructions": list})).into_response()
        }
        Err(e) => store_failed(e),
    }
}

/// The `wait=SECONDS` query parameter of a long poll, at most `max`; `default` when absent; a
/// 400 response when it is not a number.
#[allow(clippy::result_large_err)] // a handler's early answer, built once per request
pub fn wait_param(q: &HashMap<String, String>, default: u64, max: u64) -> Result<u64, Response> {
    match q.get("wait").map(|w| w.parse::<u64>()) {
        None => Ok(default),
        Some(Ok(w)) => Ok(w.min(max)),
        Some(Err(_)) => Err(json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "wait must be a number of seconds",
        )),
    }
}

/// A long poll: what `read` finds for `key`, as soon as it finds something or when `wait` is
/// over (then possibly nothing). Subscribed before the first read, so work queued between a
/// read and the wait wakes the poll; `read` runs only when the poll is woken (by this
/// instance's [`ControlWake::wake`], or within a [`TICK`] by the [`watch_held`] loop), so held
/// polls cost no queries of their own.
pub async fn hold<T, F, Fut>(
    wake: &ControlWake,
    key: &str,
    wait: Duration,
    read: F,
) -> Result<Vec<T>, StoreError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, StoreError>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    let mut woken = wake.subscribe(key);
    loop {
        woken.mark_unchanged();
        let found = read().await?;
        if !found.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(found);
        }
        tokio::select! {
            r = woken.changed() => {
                if r.is_err() {
                    // The sender is never dropped while a receiver is held; look again anyway.
                    tokio::time::sleep(TICK).await;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

#[derive(Deserialize)]
pub struct AckBody {
    status: String,
    #[serde(default)]
    message: String,
}

/// POST /api/v1/control/{id}/ack with `{"status": "done" | "failed" | "rejected", "message"}`.
pub async fn ack(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<AckBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let device = match bearer_device(&cloud, &headers).await {
        Ok(Ok(d)) => d,
        Ok(Err(resp)) => return resp,
        Err(e) => return store_failed(e),
    };
    let Ok(Json(b)) = body else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be JSON with status and message",
        );
    };
    if !["done", "failed", "rejected"].contains(&b.status.as_str()) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "status must be done, failed or rejected",
        );
    }
    // The message is the device's own text: kept short and on one line.
    let message: String = b
        .message
        .chars()
        .filter(|c| !c.is_control())
        .take(500)
        .collect();
    match cloud
        .acks
        .acknowledge(
            &cloud.store,
            &device.id,
            &id,
            &b.status,
            &message,
            cloud.now(),
        )
        .await
    {
        Ok(AckOutcome::Recorded) => {
            // Per instruction at debug: a group's 1,000 acknowledgements are one line each
            // otherwise; a refusal or failure stays visible.
            if b.status == "done" {
                tracing::debug!(device = %device.id, instruction = %id, "instruction acknowledged");
            } else {
                tracing::info!(device = %device.id, instruction = %id, status = %b.status,
                    message = %message, "instruction acknowledged");
            }
            Json(json!({"id": id, "status": b.status})).into_response()
        }
        Ok(AckOutcome::AlreadyAcknowledged) => json_error(
            StatusCode::CONFLICT,
            "already_acknowledged",
            "this instruction was acknowledged before",
        ),
        Ok(AckOutcome::NotFound) => {
            json_error(StatusCode::NOT_FOUND, "not_found", "no such instruction")
        }
        Err(e) => store_failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_are_checked() {
        assert_eq!(validate("identify", "{}").unwrap(), "{}");
        assert_eq!(
            validate("apply-settings", r#"{"a": 1}"#).unwrap(),
            r#"{"a":1}"#
        );
        assert!(matches!(
            validate("reboot", "{}"),
            Err(ControlError::Kind(_))
        ));
        assert!(matches!(
            validate("identify", "[1]"),
            Err(ControlError::Payload)
        ));
        assert!(matches!(
            validate("identify", "{"),
            Err(ControlError::Payload)
        ));
        let big = format!(r#"{{"x": "{}"}}"#, "a".repeat(MAX_PAYLOAD));
        assert!(matches!(
            validate("identify", &big),
            Err(ControlError::Payload)
        ));
    }
}

#[cfg(test)]
mod wake_tests {
    use super::*;

    #[test]
    fn wake_reaches_only_the_device_and_forgets_released_polls() {
        let hub = ControlWake::default();
        let mut a = hub.subscribe("a");
        let mut b = hub.subscribe("b");
        let mut a2 = hub.subscribe("a");
        let mut held = hub.held();
        held.sort();
        assert_eq!(held, vec!["a", "b"]);
        hub.wake("a");
        assert!(a.has_changed().unwrap() && a2.has_changed().unwrap());
        assert!(!b.has_changed().unwrap());
        a.mark_unchanged();
        a2.mark_unchanged();
        hub.wake_all();
        assert!(a.has_changed().unwrap() && b.has_changed().unwrap());
        hub.wake("nobody");
        drop((a, a2));
        assert_eq!(hub.held(), vec!["b"]);
        b.mark_unchanged();
    }
}
