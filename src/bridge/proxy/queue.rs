//! The INFRA Proxy of one shared queue (PWG 5100.18 §6): tells the cloud what the queue can do
//! (Update-Output-Device-Attributes), learns of jobs from a held Get-Notifications (with a
//! periodic Get-Jobs which-jobs=fetchable as the safety net), takes each job into the queue's
//! spool (Fetch-Job, Acknowledge-Job, Fetch-Document, Acknowledge-Document) and reports the local
//! job's states back (Update-Job-Status, Update-Document-Status). The order of the steps and
//! what a restart does are in docs/bridge.md "Exactly once".

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};

use super::client::InfraClient;
use super::QueueSettings;
use super::{fault_point, output_device_uuid, Backoff, ProxyError, ProxySettings};
use crate::bridge::registration::Agent;
use crate::codec::ipp::{tag, Attribute, Group, Message, Value};
use crate::codec::ipp_attr::{en, int, kw, kws, text, uri};
use crate::codec::ipp_op::Operation;
use crate::codec::ipp_status as status;
use crate::ipp_printer::Printer;
use crate::model::job::{JobEvent, JobState};
use crate::spool::{CloudJob, CloudLink, DocumentMeta, Job, NewJob, SpoolError};

/// The safety net: how often fetchable jobs are asked for even without an event, and the
/// Proxy's jobs are confirmed to the cloud (Update-Active-Jobs), which keeps the cloud from
/// offering them again (it does after `infra.device_silence_seconds`, 300 by default).
const SWEEP: Duration = Duration::from_secs(60);
/// Requested lease of the printer subscription. It is renewed (Renew-Subscription, RFC 3995
/// §11.2.6) at every session's start and every half lease while connected, and kept across
/// restarts (the registration store), so one subscription per queue lives in the cloud; only a
/// subscription the cloud no longer knows is replaced by a new one.
const LEASE_SECONDS: i32 = 3600;
/// Documents per cloud job taken, at most.
const MAX_DOCUMENTS: i32 = 100;
/// Job ids per Update-Active-Jobs (the cloud takes at most 1000).
const MAX_ACTIVE_IDS: usize = 1000;

/// How a session ended without an error.
enum SessionEnd {
    Shutdown,
    /// The queue entered power saving.
    Sleep,
}

/// One event of the printer subscription.
#[derive(Debug, Clone)]
struct Event {
    event: String,
    job_id: Option<i64>,
    job_state: Option<i32>,
}

pub struct QueueProxy {
    agent: Arc<Agent>,
    client: InfraClient,
    printer: Arc<Printer>,
    cloud_printer: String,
    device_uuid: String,
    settings: ProxySettings,
    /// What the cloud set with apply-settings: the polling interval and the time-out.
    queue_settings: watch::Receiver<QueueSettings>,
    /// The printer subscription's id and the next event sequence number wanted: kept across
    /// sessions and (in the registration store) restarts, so that a new session neither misses
    /// nor repeats events and no second subscription is made.
    subscription: Mutex<Option<(i32, i32)>>,
}

impl QueueProxy {
    pub fn new(
        agent: Arc<Agent>,
        client: InfraClient,
        printer: Arc<Printer>,
        cloud_printer: String,
        settings: ProxySettings,
        queue_settings: watch::Receiver<QueueSettings>,
    ) -> QueueProxy {
        let device_uuid = output_device_uuid(&printer);
        QueueProxy {
            agent,
            client,
            printer,
            cloud_printer,
            device_uuid,
            settings,
            queue_settings,
            subscription: Mutex::new(None),
        }
    }

    fn bearer(&self) -> Result<String, ProxyError> {
        self.agent
            .session()
            .map(|t| t.access_token)
            .ok_or(ProxyError::NoSession)
    }

    fn link(&self, job: i64) -> CloudLink {
        CloudLink {
            printer: self.cloud_printer.clone(),
            job,
        }
    }

    /// A Proxy request: the common operation attributes and output-device-uuid.
    fn request(&self, op: Operation) -> Message {
        let mut m = self.client.request(op.code());
        m.group_mut(tag::OPERATION)
            .push(Attribute::new("output-device-uuid", uri(&self.device_uuid)));
        m
    }

    fn job_request(&self, op: Operation, job: i64) -> Message {
        let mut m = self.request(op);
        m.group_mut(tag::OPERATION)
            .push(Attribute::new("job-id", int(clamp_id(job))));
        m
    }

    async fn call(&self, req: &Message) -> Result<Message, ProxyError> {
        self.timed(self.client.call(&self.bearer()?, req)).await
    }

    async fn call_ok(&self, req: &Message) -> Result<Message, ProxyError> {
        self.timed(self.client.call_ok(&self.bearer()?, req)).await
    }

    /// One exchange within the time-out the cloud set (apply-settings `timeout_seconds`), if
    /// any; the HTTP client's own limit otherwise.
    async fn timed<F>(&self, exchange: F) -> Result<Message, ProxyError>
    where
        F: std::future::Future<Output = Result<Message, ProxyError>>,
    {
        let limit = self
            .queue_settings
            .borrow()
            .timeout_seconds
            .filter(|s| *s > 0);
        match limit {
            Some(secs) => tokio::time::timeout(Duration::from_secs(secs), exchange)
                .await
                .unwrap_or_else(|_| {
                    Err(ProxyError::Answer(format!(
                        "the cloud did not answer within {secs} s (the time-out set by the cloud)"
                    )))
                }),
            None => exchange.await,
        }
    }

    /// How often fetchable jobs are asked for without an event (apply-settings
    /// `job_polling_interval_seconds`, else [`SWEEP`]).
    fn sweep_interval(&self) -> Duration {
        self.queue_settings
            .borrow()
            .job_polling_interval_seconds
            .map_or(SWEEP, |s| Duration::from_secs(s.max(1)))
    }

    /// While the queue is power saving: no Get-Jobs, Fetch-Job or notifications until it wakes
    /// (an instruction for it, a local job). False when shutdown came first.
    async fn sleep_while_power_saving(&self, shutdown: &mut watch::Receiver<bool>) -> bool {
        let mut power = self.printer.power_saving_watch();
        if !*power.borrow_and_update() {
            return true;
        }
        tracing::info!(printer = %self.cloud_printer, "cloud proxy: power saving, fetching no jobs");
        loop {
            tokio::select! {
                changed = power.changed() => {
                    if changed.is_err() {
                        return false;
                    }
                    if !*power.borrow_and_update() {
                        tracing::info!(printer = %self.cloud_printer, "cloud proxy: awake");
                        return true;
                    }
                }
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        return false;
                    }
                }
            }
        }
    }

    /// Runs until `shutdown`; every failure ends the session, which starts again after a
    /// bounded, jittered back-off (or, for a refused token, once the agent has a new one).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Backoff::new();
        let mut outage = false;
        let mut session_changes = self.agent.session_changes();
        loop {
            if !self.sleep_while_power_saving(&mut shutdown).await {
                return;
            }
            let mut connected = || {
                if outage {
                    tracing::info!(printer = %self.cloud_printer, "cloud proxy: connected to the cloud again");
                }
                outage = false;
                backoff.reset();
            };
            let result = self.session(&mut shutdown, &mut connected).await;
            if *shutdown.borrow() {
                return;
            }
            let e = match result {
                // Power saving: the loop's start waits for the wake-up.
                Ok(SessionEnd::Sleep) => continue,
                Ok(SessionEnd::Shutdown) => return,
                Err(e) => e,
            };
            let refused = matches!(e, ProxyError::Unauthorized(_) | ProxyError::NoSession);
            if matches!(e, ProxyError::Unauthorized(401)) {
                // Revoked or expired early: the agent refreshes now rather than at its due time.
                // (Should the token have been refreshed since the refused request, this names the
                // new one: one refresh too many, and the agent forces at most one per 10 s.)
                if let Some(t) = self.agent.session() {
                    self.agent.token_refused(&t.access_token);
                }
            }
            if !outage {
                // Once per outage, not per try.
                tracing::warn!(printer = %self.cloud_printer, "cloud proxy: {e}; trying again");
                outage = true;
            }
            let wait = if refused {
                // A new token comes from the registration agent (refresh).
                Duration::from_secs(60)
            } else {
                backoff.next_wait()
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = session_changes.changed(), if refused => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One connected session: attributes, reconciliation, subscription, then events.
    async fn session(
        self: &Arc<Self>,
        shutdown: &mut watch::Receiver<bool>,
        connected: &mut (dyn FnMut() + Send),
    ) -> Result<SessionEnd, ProxyError> {
        // Subscribed before anything is looked at, so nothing said meanwhile is missed.
        let mut changes = self.printer.spool.subscribe();
        let mut printer_changes = self.printer.watch_changes();
        let mut power = self.printer.power_saving_watch();
        let mut queue_settings = self.queue_settings.clone();
        queue_settings.mark_unchanged();
        self.update_attributes().await?;
        let sub = self.subscribe().await?;
        let half_lease = Duration::from_secs(LEASE_SECONDS as u64 / 2);
        let mut renewal =
            tokio::time::interval_at(tokio::time::Instant::now() + half_lease, half_lease);
        self.reconcile().await?;
        connected();
        self.sweep().await?;
        let (tx, mut rx) = mpsc::channel(16);
        let listener = AbortOnDrop(tokio::spawn(self.clone().listen(sub, tx)));
        let mut tick = tokio::time::interval(self.sweep_interval());
        tick.tick().await;
        let result = loop {
            if *power.borrow_and_update() {
                // The cloud's view of the output device says so (printer-state-message) before
                // the Proxy falls silent; a failure only means it learns it later.
                let _ = self.update_attributes().await;
                break Ok(SessionEnd::Sleep);
            }
            tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        break Ok(SessionEnd::Shutdown);
                    }
                }
                // Checked at the loop's start: power saving ends the session.
                _ = power.changed() => {}
                _ = queue_settings.changed() => {
                    queue_settings.borrow_and_update();
                    let every = self.sweep_interval();
                    tracing::info!(printer = %self.cloud_printer,
                        "cloud proxy: asking for jobs every {} s", every.as_secs());
                    tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                }
                got = rx.recv() => match got {
                    Some(Ok(events)) => {
                        for e in events {
                            self.on_event(&e).await?;
                        }
                    }
                    Some(Err(e)) => break Err(e),
                    None => break Err(ProxyError::Answer("the notification listener ended".into())),
                },
                change = changes.recv() => match change {
                    Ok(c) => self.report_local(c.job_id).await?,
                    Err(broadcast::error::RecvError::Lagged(_)) => self.report_all().await?,
                    Err(broadcast::error::RecvError::Closed) => break Ok(SessionEnd::Shutdown),
                },
                _ = printer_changes.changed() => {
                    // Several changes often come together (state and reasons): one update.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    printer_changes.borrow_and_update();
                    self.update_attributes().await?;
                }
                _ = tick.tick() => {
                    self.heartbeat().await?;
                    self.sweep().await?;
                }
                _ = renewal.tick() => {
                    if !self.renew(sub).await? {
                        break Err(ProxyError::Answer(format!(
                            "the cloud no longer knows subscription {sub}"
                        )));
                    }
                }
            }
        };
        drop(listener);
        result
    }

    /// Update-Output-Device-Attributes (PWG 5100.18 §6.11): the queue's printer attributes.
    async fn update_attributes(&self) -> Result<(), ProxyError> {
        let mut req = self.request(Operation::UpdateOutputDeviceAttributes);
        req.groups.push(Group {
            tag: tag::PRINTER,
            attributes: self.printer.output_device_attributes(),
        });
        self.call_ok(&req).await?;
        Ok(())
    }

    /// The cloud's base URL, which with the cloud printer keys the stored subscription.
    fn cloud(&self) -> &str {
        self.agent.link_config().base()
    }

    /// The subscription to listen on: the one held (in memory, or stored by an earlier run)
    /// renewed, or, when the cloud no longer knows it, a new one (Create-Printer-Subscriptions,
    /// RFC 3995 §11.1.2) for the events that bring jobs (job-fetchable, PWG 5100.18 §5.3) and
    /// tell of their end (canceled in the cloud).
    async fn subscribe(&self) -> Result<i32, ProxyError> {
        let held = *self.subscription.lock().expect("subscription lock");
        let held = match held {
            Some(s) => Some(s),
            None => self
                .agent
                .store()
                .proxy_subscription(self.cloud(), &self.cloud_printer)
                .await
                .map_err(|e| ProxyError::Answer(e.to_string()))?,
        };
        if let Some((id, next)) = held {
            if self.renew(id).await? {
                *self.subscription.lock().expect("subscription lock") = Some((id, next));
                return Ok(id);
            }
        }
        let mut req = self.request(Operation::CreatePrinterSubscriptions);
        let mut g = Group::new(tag::SUBSCRIPTION);
        g.push(Attribute::new("notify-pull-method", kw("ippget")));
        g.push(Attribute::set(
            "notify-events",
            kws(&["job-fetchable", "job-state-changed", "job-completed"]),
        ));
        g.push(Attribute::new("notify-lease-duration", int(LEASE_SECONDS)));
        req.groups.push(g);
        let resp = self.call_ok(&req).await?;
        let id = resp
            .groups
            .iter()
            .filter(|g| g.tag == tag::SUBSCRIPTION)
            .find_map(|g| g.get("notify-subscription-id"))
            .and_then(|a| a.first())
            .and_then(Value::as_int)
            .filter(|id| *id > 0)
            .ok_or_else(|| {
                ProxyError::Answer("Create-Printer-Subscriptions gave no subscription id".into())
            })?;
        *self.subscription.lock().expect("subscription lock") = Some((id, 1));
        // Not kept on disk: the next start makes another (the pile-up this store prevents), but
        // this run works; said once per session.
        if let Err(e) = self
            .agent
            .store()
            .keep_proxy_subscription(self.cloud(), &self.cloud_printer, id, 1)
            .await
        {
            tracing::warn!(printer = %self.cloud_printer, "cloud proxy: cannot keep subscription {id}: {e}");
        }
        Ok(id)
    }

    /// Renew-Subscription (RFC 3995 §11.2.6) of `id` for another [`LEASE_SECONDS`]. False when
    /// the cloud refuses it with a client error (not found: lapsed or lost; forbidden: another
    /// registration's): it is forgotten, and the caller subscribes anew.
    async fn renew(&self, id: i32) -> Result<bool, ProxyError> {
        let mut req = self.request(Operation::RenewSubscription);
        req.group_mut(tag::OPERATION)
            .push(Attribute::new("notify-subscription-id", int(id)));
        req.group_mut(tag::SUBSCRIPTION)
            .push(Attribute::new("notify-lease-duration", int(LEASE_SECONDS)));
        let resp = self.call(&req).await?;
        if !status::is_error(resp.code) {
            return Ok(true);
        }
        if status::is_server_error(resp.code) {
            return Err(ProxyError::ipp(&resp));
        }
        tracing::info!(printer = %self.cloud_printer,
            "cloud proxy: subscription {id} is gone ({}); subscribing anew", ProxyError::ipp(&resp));
        self.forget_subscription(id).await;
        Ok(false)
    }

    /// Forgets subscription `id` in memory and on disk.
    async fn forget_subscription(&self, id: i32) {
        {
            let mut held = self.subscription.lock().expect("subscription lock");
            if held.is_some_and(|(h, _)| h == id) {
                *held = None;
            }
        }
        if let Err(e) = self
            .agent
            .store()
            .forget_proxy_subscription(self.cloud(), &self.cloud_printer, id)
            .await
        {
            tracing::warn!(printer = %self.cloud_printer, "cloud proxy: cannot forget subscription {id}: {e}");
        }
    }

    /// Holds Get-Notifications with notify-wait (RFC 3996 §5) in a loop and hands the events
    /// over; the first failure ends it (and the session).
    async fn listen(self: Arc<Self>, sub: i32, tx: mpsc::Sender<Result<Vec<Event>, ProxyError>>) {
        let mut next = self
            .subscription
            .lock()
            .expect("subscription lock")
            .filter(|(id, _)| *id == sub)
            .map_or(1, |(_, next)| next);
        loop {
            let mut req = self.request(Operation::GetNotifications);
            let g = req.group_mut(tag::OPERATION);
            g.push(Attribute::new("notify-subscription-ids", int(sub)));
            g.push(Attribute::new("notify-sequence-numbers", int(next)));
            g.push(Attribute::new("notify-wait", Value::Boolean(true)));
            // Held by the cloud: not bound by the exchange time-out the cloud may set.
            let held = match self.bearer() {
                Ok(bearer) => self.client.call(&bearer, &req).await,
                Err(e) => Err(e),
            };
            let resp = match held {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            if status::is_error(resp.code) {
                if resp.code == status::NOT_FOUND {
                    // The lease lapsed (or the cloud lost it): the next session subscribes anew.
                    self.forget_subscription(sub).await;
                }
                let _ = tx.send(Err(ProxyError::ipp(&resp))).await;
                return;
            }
            let mut events = Vec::new();
            for g in resp
                .groups
                .iter()
                .filter(|g| g.tag == tag::EVENT_NOTIFICATION)
            {
                let get_int = |n: &str| g.get(n).and_then(|a| a.first()).and_then(Value::as_int);
                if let Some(seq) = get_int("notify-sequence-number") {
                    next = next.max(seq.saturating_add(1));
                }
                let event = g
                    .get("notify-subscribed-event")
                    .and_then(|a| a.first())
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .chars()
                    .take(64)
                    .collect();
                let job_state = match g.get("job-state").and_then(|a| a.first()) {
                    Some(Value::Enum(s)) => Some(*s),
                    _ => None,
                };
                events.push(Event {
                    event,
                    job_id: get_int("notify-job-id")
                        .or_else(|| get_int("job-id"))
                        .filter(|j| *j > 0)
                        .map(i64::from),
                    job_state,
                });
            }
            let interval = resp
                .group(tag::OPERATION)
                .and_then(|g| g.get("notify-get-interval"))
                .and_then(|a| a.first())
                .and_then(Value::as_int)
                .unwrap_or(0);
            let advanced = {
                let mut held = self.subscription.lock().expect("subscription lock");
                match held.as_mut() {
                    Some(s) if s.0 == sub && s.1 != next => {
                        s.1 = next;
                        true
                    }
                    _ => false,
                }
            };
            if advanced {
                // A restart asks from here on; failing to note it only repeats events, which
                // taking a job once (the spool's cloud_jobs) makes harmless.
                if let Err(e) = self
                    .agent
                    .store()
                    .keep_proxy_subscription(self.cloud(), &self.cloud_printer, sub, next)
                    .await
                {
                    tracing::warn!(printer = %self.cloud_printer, "cloud proxy: cannot note the events read: {e}");
                }
            }
            let quiet = events.is_empty();
            if !events.is_empty() && tx.send(Ok(events)).await.is_err() {
                return;
            }
            if quiet && interval > 0 {
                // A cloud that does not hold the request says when to ask again; never faster
                // than once a second, never slower than the safety net.
                let wait = Duration::from_secs(interval.clamp(1, SWEEP.as_secs() as i32) as u64);
                tokio::time::sleep(wait).await;
            }
        }
    }

    async fn on_event(&self, e: &Event) -> Result<(), ProxyError> {
        let Some(job) = e.job_id else {
            return Ok(());
        };
        match e.event.as_str() {
            "job-fetchable" => self.take(job).await,
            _ => match e.job_state.and_then(JobState::from_i32) {
                Some(JobState::Canceled | JobState::Aborted) => {
                    self.cloud_ended(job).await?;
                    Ok(())
                }
                Some(JobState::Pending) if e.event == "job-state-changed" => {
                    // Offered again (released after silence, PWG 5100.18 §5.3): take it back.
                    self.take(job).await
                }
                _ => Ok(()),
            },
        }
    }

    /// Get-Jobs which-jobs=fetchable: takes every job waiting for an output device.
    async fn sweep(&self) -> Result<(), ProxyError> {
        let mut req = self.request(Operation::GetJobs);
        let g = req.group_mut(tag::OPERATION);
        g.push(Attribute::new("which-jobs", kw("fetchable")));
        g.push(Attribute::set("requested-attributes", kws(&["job-id"])));
        let resp = self.call_ok(&req).await?;
        for id in job_ids(&resp) {
            self.take(id).await?;
        }
        Ok(())
    }

    /// Takes cloud job `job` into the queue, once: Fetch-Job, Acknowledge-Job, Fetch-Document
    /// into the staging area, the local job with its cloud link in one transaction, then
    /// Acknowledge-Document. A job already taken is only acknowledged again (it may have been
    /// offered again after a silence) and its state reported.
    async fn take(&self, job: i64) -> Result<(), ProxyError> {
        let link = self.link(job);
        if let Some(rec) = self.printer.spool.cloud_job(&link).await? {
            let resp = self
                .call(&self.job_request(Operation::AcknowledgeJob, job))
                .await?;
            if status::is_error(resp.code) {
                return Ok(());
            }
            return self.report(&rec).await;
        }
        let fetched = self
            .call(&self.job_request(Operation::FetchJob, job))
            .await?;
        if is_gone(fetched.code) {
            // Taken by another output device, canceled, or gone: not ours.
            return Ok(());
        }
        if status::is_error(fetched.code) {
            return Err(ProxyError::ipp(&fetched));
        }
        let ack = self
            .call(&self.job_request(Operation::AcknowledgeJob, job))
            .await?;
        if is_gone(ack.code) {
            return Ok(());
        }
        if status::is_error(ack.code) {
            return Err(ProxyError::ipp(&ack));
        }
        fault_point("after-acknowledge-job");
        let attrs = fetched
            .group(tag::JOB)
            .map(|g| g.attributes.clone())
            .unwrap_or_default();
        let get = |n: &str| attrs.iter().find(|a| a.name == n).and_then(|a| a.first());
        let owner = get("job-originating-user-name")
            .and_then(Value::as_str)
            .map(clean_name)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "anonymous".to_string());
        let job_name = get("job-name")
            .and_then(Value::as_str)
            .map(clean_name)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("cloud job {job}"));
        let documents = get("number-of-documents")
            .and_then(Value::as_int)
            .unwrap_or(1)
            .clamp(1, MAX_DOCUMENTS);
        // The cloud checked the template against what the queue said it can do, but it is
        // still network input: the queue's own checks decide what the local job keeps.
        let template: Vec<Attribute> = attrs
            .iter()
            .filter(|a| crate::codec::ipp_attr::is_job_template_attr(&a.name))
            .filter(|a| a.name != "job-hold-until")
            .cloned()
            .collect();
        let checked =
            crate::ipp_printer::validate::check_job_template(&template, &self.printer.caps());
        let mut staged = Vec::new();
        for number in 1..=documents {
            let mut req = self.job_request(Operation::FetchDocument, job);
            let g = req.group_mut(tag::OPERATION);
            g.push(Attribute::new("document-number", int(number)));
            g.push(Attribute::new("compression-accepted", kw("gzip")));
            let (resp, doc) = match self
                .client
                .fetch_document(
                    &self.bearer()?,
                    &req,
                    &self.printer.spool,
                    self.settings.max_document_bytes,
                )
                .await
            {
                Ok(x) => x,
                Err(e) if e.ipp_status().is_some_and(is_gone) => return Ok(()),
                Err(ProxyError::Spool(SpoolError::TooLarge(limit))) => {
                    return self
                        .refuse(job, &format!("a document is larger than {limit} bytes"))
                        .await;
                }
                Err(e) => return Err(e),
            };
            let g = resp.group(tag::DOCUMENT);
            let dget = |n: &str| g.and_then(|g| g.get(n)).and_then(|a| a.first());
            let format = match dget("document-format") {
                Some(Value::MimeMediaType(f)) if f.len() <= 255 => f.clone(),
                _ => "application/octet-stream".to_string(),
            };
            let compression = match dget("compression").and_then(Value::as_str) {
                Some("gzip") => "gzip",
                Some("none") | None => "none",
                Some(other) => {
                    let why = format!("the cloud sent a document compressed as {other:?}");
                    return self.refuse(job, &why).await;
                }
            };
            let meta = DocumentMeta {
                format,
                compression: compression.to_string(),
                name: dget("document-name")
                    .and_then(Value::as_str)
                    .map(clean_name),
            };
            staged.push((doc, meta));
        }
        fault_point("after-fetch-document");
        let new = NewJob {
            owner,
            name: job_name,
            attributes: checked.accepted,
            hold: None,
        };
        let local = match self
            .printer
            .spool
            .create_cloud_job(new, staged, &link)
            .await
        {
            Ok(j) => j,
            // Taken meanwhile (an event and the sweep at once): the first one goes on.
            Err(SpoolError::CloudJobTaken(..)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        tracing::info!(
            printer = %self.cloud_printer,
            "cloud proxy: cloud job {job} is local job {} of {}",
            local.id,
            local.owner
        );
        fault_point("after-local-job");
        for number in 1..=documents {
            let mut req = self.job_request(Operation::AcknowledgeDocument, job);
            req.group_mut(tag::OPERATION)
                .push(Attribute::new("document-number", int(number)));
            let resp = self.call(&req).await?;
            if status::is_error(resp.code) && !is_gone(resp.code) {
                return Err(ProxyError::ipp(&resp));
            }
        }
        Ok(())
    }

    /// A job this queue cannot take: it ends aborted in the cloud, with the reason.
    async fn refuse(&self, job: i64, why: &str) -> Result<(), ProxyError> {
        tracing::warn!(printer = %self.cloud_printer, "cloud proxy: cloud job {job} refused: {why}");
        let mut req = self.job_request(Operation::UpdateJobStatus, job);
        let mut g = Group::new(tag::JOB);
        g.push(Attribute::new(
            "output-device-job-state",
            en(JobState::Aborted as i32),
        ));
        g.push(Attribute::new(
            "output-device-job-state-reasons",
            kw("document-unprintable-error"),
        ));
        g.push(Attribute::new("output-device-job-state-message", text(why)));
        req.groups.push(g);
        let resp = self.call(&req).await?;
        if status::is_error(resp.code) && !is_gone(resp.code) {
            return Err(ProxyError::ipp(&resp));
        }
        Ok(())
    }

    /// A local job changed: the cloud hears of it when it came from there.
    async fn report_local(&self, local: u32) -> Result<(), ProxyError> {
        match self.printer.spool.cloud_job_of(local).await? {
            Some(rec) if rec.link.printer == self.cloud_printer => self.report(&rec).await,
            _ => Ok(()),
        }
    }

    /// Every cloud job whose state the cloud may not know yet is reported.
    async fn report_all(&self) -> Result<(), ProxyError> {
        for rec in self.printer.spool.cloud_jobs(&self.cloud_printer).await? {
            self.report(&rec).await?;
        }
        Ok(())
    }

    /// Update-Job-Status (PWG 5100.18 §6.10) with the local job's state, reasons, message and
    /// impressions, when they differ from what the cloud accepted last; for a finished job
    /// also Update-Document-Status (§6.9) of its documents.
    async fn report(&self, rec: &CloudJob) -> Result<(), ProxyError> {
        let Some(local) = rec.job_id.and_then(|id| self.printer.spool.get(id)) else {
            return Ok(());
        };
        let state = local.status.state;
        let impressions = i64::from(local.status.impressions_completed);
        if rec.reported_state == state as i32 && rec.reported_impressions == impressions {
            return Ok(());
        }
        if rec.reported_state >= JobState::Canceled as i32 {
            // The cloud already has the end of it.
            return Ok(());
        }
        if matches!(state, JobState::Pending) && rec.reported_state == 0 {
            return Ok(());
        }
        let mut resp = self.send_status(rec.link.job, &local).await?;
        if resp.code == status::NOT_FETCHABLE {
            // No longer assigned to this output device (offered again after a silence, PWG
            // 5100.18 §5.3): acknowledged again, it is ours, and the report goes through.
            let ack = self
                .call(&self.job_request(Operation::AcknowledgeJob, rec.link.job))
                .await?;
            if !status::is_error(ack.code) {
                resp = self.send_status(rec.link.job, &local).await?;
            }
        }
        if status::is_error(resp.code) {
            if resp.code == status::NOT_POSSIBLE || is_gone(resp.code) {
                // The cloud job ended without us (canceled there): the local one follows.
                self.cloud_ended(rec.link.job).await?;
                self.printer
                    .spool
                    .set_cloud_reported(&rec.link, JobState::Canceled as i32, impressions)
                    .await?;
                return Ok(());
            }
            return Err(ProxyError::ipp(&resp));
        }
        self.printer
            .spool
            .set_cloud_reported(&rec.link, state as i32, impressions)
            .await?;
        if state.is_terminal() {
            for d in &local.documents {
                let mut req = self.job_request(Operation::UpdateDocumentStatus, rec.link.job);
                req.group_mut(tag::OPERATION)
                    .push(Attribute::new("document-number", int(d.number as i32)));
                let mut g = Group::new(tag::DOCUMENT);
                g.push(Attribute::new(
                    "output-device-document-state",
                    en(state as i32),
                ));
                req.groups.push(g);
                // Best effort: the job's state is what matters, and it is recorded.
                let _ = self.call(&req).await?;
            }
        }
        Ok(())
    }

    async fn send_status(&self, job: i64, local: &Job) -> Result<Message, ProxyError> {
        let state = match local.status.state {
            // pending-held is the Infrastructure Printer's business (PWG 5100.18 §6.10).
            JobState::PendingHeld => JobState::Pending,
            s => s,
        };
        let mut req = self.job_request(Operation::UpdateJobStatus, job);
        let mut g = Group::new(tag::JOB);
        g.push(Attribute::new("output-device-job-state", en(state as i32)));
        let reasons: Vec<Value> = local.status.reasons.iter().map(|r| kw(r)).collect();
        if !reasons.is_empty() {
            g.push(Attribute::set("output-device-job-state-reasons", reasons));
        }
        if let Some(m) = &local.status.message {
            g.push(Attribute::new("output-device-job-state-message", text(m)));
        }
        g.push(Attribute::new(
            "job-impressions-completed",
            int(local.status.impressions_completed.min(i32::MAX as u32) as i32),
        ));
        req.groups.push(g);
        self.call(&req).await
    }

    /// The cloud job ended there (canceled by its owner, or aborted): the local job is
    /// canceled through the spool's one transition path, unless it already ended.
    async fn cloud_ended(&self, job: i64) -> Result<(), ProxyError> {
        let Some(rec) = self.printer.spool.cloud_job(&self.link(job)).await? else {
            return Ok(());
        };
        let Some(local) = rec.job_id.and_then(|id| self.printer.spool.get(id)) else {
            return Ok(());
        };
        if local.status.state.is_terminal() {
            return Ok(());
        }
        tracing::info!(
            printer = %self.cloud_printer,
            "cloud proxy: cloud job {job} ended in the cloud: local job {} is canceled",
            local.id
        );
        match self
            .printer
            .spool
            .transition(local.id, JobEvent::Cancel { by_operator: false })
            .await
        {
            Ok(_) | Err(SpoolError::Transition(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The cloud job ids this Proxy works on (taken, not finished as far as the cloud knows).
    async fn active(&self) -> Result<Vec<CloudJob>, ProxyError> {
        Ok(self
            .printer
            .spool
            .cloud_jobs(&self.cloud_printer)
            .await?
            .into_iter()
            .filter(|r| r.reported_state < JobState::Canceled as i32 && r.job_id.is_some())
            .collect())
    }

    /// Update-Active-Jobs (PWG 5100.18 §6.8): confirms the jobs this Proxy works on, so the
    /// cloud does not offer them again; those the cloud names as no longer active here are
    /// followed (canceled there: canceled here; offered again: taken back).
    async fn heartbeat(&self) -> Result<(), ProxyError> {
        let active = self.active().await?;
        for chunk in active.chunks(MAX_ACTIVE_IDS) {
            let mut req = self.request(Operation::UpdateActiveJobs);
            req.group_mut(tag::OPERATION).push(Attribute::set(
                "job-ids",
                chunk.iter().map(|r| int(clamp_id(r.link.job))).collect(),
            ));
            let resp = self.call_ok(&req).await?;
            let g = resp.group(tag::OPERATION);
            let ids = g.and_then(|g| g.get("job-ids")).map(|a| a.values.clone());
            let states = g
                .and_then(|g| g.get("output-device-job-states"))
                .map(|a| a.values.clone())
                .unwrap_or_default();
            for (i, id) in ids
                .unwrap_or_default()
                .iter()
                .enumerate()
                .take(MAX_ACTIVE_IDS)
            {
                let Some(id) = id.as_int().filter(|i| *i > 0).map(i64::from) else {
                    continue;
                };
                if !chunk.iter().any(|r| r.link.job == id) {
                    continue;
                }
                match states.get(i) {
                    Some(Value::Enum(s)) if *s == JobState::Pending as i32 => self.take(id).await?,
                    Some(Value::Enum(s))
                        if *s == JobState::Canceled as i32 || *s == JobState::Aborted as i32 =>
                    {
                        self.cloud_ended(id).await?
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// After a (re)start: confirms and reports the jobs taken before, and takes back the jobs
    /// the cloud assigned to this output device that the spool does not have (a crash between
    /// Acknowledge-Job and the local job).
    async fn reconcile(&self) -> Result<(), ProxyError> {
        self.heartbeat().await?;
        self.report_all().await?;
        let mut req = self.request(Operation::GetJobs);
        let g = req.group_mut(tag::OPERATION);
        g.push(Attribute::new("which-jobs", kw("not-completed")));
        g.push(Attribute::set(
            "requested-attributes",
            kws(&["job-id", "output-device-assigned"]),
        ));
        let resp = self.call_ok(&req).await?;
        for g in resp.groups.iter().filter(|g| g.tag == tag::JOB) {
            let mine = g
                .get("output-device-assigned")
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .is_some_and(|d| super::same_uuid(d, &self.device_uuid));
            let id = g
                .get("job-id")
                .and_then(|a| a.first())
                .and_then(Value::as_int)
                .filter(|i| *i > 0);
            if let (true, Some(id)) = (mine, id) {
                let id = i64::from(id);
                if self
                    .printer
                    .spool
                    .cloud_job(&self.link(id))
                    .await?
                    .is_none()
                {
                    self.take(id).await?;
                }
            }
        }
        Ok(())
    }
}

/// Statuses that mean the job is not (or no longer) this output device's to take.
fn is_gone(code: u16) -> bool {
    matches!(
        code,
        status::NOT_FETCHABLE | status::NOT_FOUND | status::GONE | status::NOT_POSSIBLE
    )
}

fn job_ids(resp: &Message) -> Vec<i64> {
    resp.groups
        .iter()
        .filter(|g| g.tag == tag::JOB)
        .filter_map(|g| g.get("job-id"))
        .filter_map(|a| a.first())
        .filter_map(Value::as_int)
        .filter(|i| *i > 0)
        .map(i64::from)
        .collect()
}

fn clamp_id(job: i64) -> i32 {
    job.clamp(1, i64::from(i32::MAX)) as i32
}

/// A name from the cloud as the spool keeps it: no control characters, at most 255 of them.
fn clean_name(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(255).collect()
}

/// Aborts a spawned task when dropped (the session ended: its listener ends too).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_cloud_are_cleaned_and_bounded() {
        assert_eq!(clean_name("a\u{7}b\nc"), "abc");
        assert_eq!(clean_name(&"x".repeat(300)).len(), 255);
    }

    #[test]
    fn job_ids_take_only_positive_ids() {
        let mut m = Message::new((2, 0), 0, 1);
        for v in [Value::Integer(3), Value::Integer(-1), kw("x")] {
            let mut g = Group::new(tag::JOB);
            g.push(Attribute::new("job-id", v));
            m.groups.push(g);
        }
        assert_eq!(job_ids(&m), vec![3]);
        assert_eq!(clamp_id(i64::MAX), i32::MAX);
    }
}
