//! Printer subscriptions and ippget notifications (RFC 3995, RFC 3996) for the Infrastructure
//! Printers: Create-Printer-Subscriptions and Get-Notifications with notify-wait, so a Proxy
//! learns of a new job at once without polling. Events are rows in the database (any instance
//! may have posted them). A held request looks at them again when [`EventHub`] wakes its
//! printer: at once when this instance posts an event, and within a tick when another instance
//! did ([`watch_events`] reads every watched printer's event counter with one query per tick, so
//! the database load does not grow with the number of held requests).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::registry::PrinterUris;
use super::Cloud;
use crate::codec::ipp::{date_time, tag, Attribute, Group, Message, Value};
use crate::ipp::attributes::{en, int, kw, text, uri};
use crate::ipp::status::{self, Status};
use crate::ipp::{op_attr, response};
use crate::store::infra::EventRow;
use crate::store::registry::PrinterRow;

/// How long events are kept for Get-Notifications (ippget-event-life, RFC 3996 §5.3.1).
pub const EVENT_LIFE_SECONDS: i64 = 300;
/// How often this instance looks for events another instance posted.
const TICK: Duration = Duration::from_millis(250);
/// Events one Get-Notifications response carries at most.
const MAX_EVENTS: i64 = 100;
/// Subscriptions one request may name.
const MAX_SUBSCRIPTIONS: usize = 32;
/// Live subscriptions one user or device may hold on one printer.
const MAX_PER_OWNER: i64 = 64;
/// client-error-ignored-all-subscriptions and client-error-too-many-subscriptions (RFC 3995
/// §13.1).
const IGNORED_ALL_SUBSCRIPTIONS: u16 = 0x0414;
const TOO_MANY_SUBSCRIPTIONS: u16 = 0x0415;

/// Wakes this instance's held Get-Notifications requests, per printer.
#[derive(Default)]
pub struct EventHub {
    printers: Mutex<HashMap<String, Watched>>,
}

struct Watched {
    tx: watch::Sender<u64>,
    /// The printer's event counter (`printers.next_event_seq`) when last looked at.
    seen: i64,
}

impl EventHub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Watched>> {
        // A panic while holding the lock leaves only counters behind: keep going.
        self.printers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the requests held for `printer` (after this instance posted an event).
    pub fn wake(&self, printer: &str) {
        if let Some(w) = self.lock().get(printer) {
            w.tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Wakes every held request (after a change whose printers are not known here).
    pub fn wake_all(&self) {
        for w in self.lock().values() {
            w.tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// A receiver that changes when `printer` may have new events.
    pub fn subscribe(&self, printer: &str) -> watch::Receiver<u64> {
        self.lock()
            .entry(printer.to_string())
            .or_insert_with(|| Watched {
                tx: watch::channel(0).0,
                seen: -1,
            })
            .tx
            .subscribe()
    }

    /// Printers someone waits for; forgets the others.
    fn watched(&self) -> Vec<String> {
        let mut map = self.lock();
        map.retain(|_, w| w.tx.receiver_count() > 0);
        map.keys().cloned().collect()
    }

    /// Wakes the printers whose event counter moved.
    fn observe(&self, counters: &[(String, i64)]) {
        let mut map = self.lock();
        for (printer, seq) in counters {
            if let Some(w) = map.get_mut(printer) {
                // The first look wakes too: an event may have landed between a request's own
                // look at the database and this one.
                if w.seen != *seq {
                    w.tx.send_modify(|n| *n = n.wrapping_add(1));
                    w.seen = *seq;
                }
            }
        }
    }
}

/// Runs until `stop`: every [`TICK`], reads the event counters of the printers that have held
/// requests here and wakes those whose counter moved (events posted by another instance).
pub async fn watch_events(cloud: Arc<Cloud>, mut stop: watch::Receiver<bool>) {
    loop {
        let printers = cloud.events.watched();
        if !printers.is_empty() {
            match cloud.store.event_counters(&printers).await {
                Ok(c) => cloud.events.observe(&c),
                Err(e) => {
                    tracing::warn!("reading event counters failed: {e}");
                    // Let the held requests look for themselves.
                    cloud.events.wake_all();
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Whether a subscription to `events` receives `event` (RFC 3995 §5.3.3: job-state-changed
/// covers job-created and job-completed).
fn subscribed(events: &str, event: &str) -> Option<String> {
    let list: Vec<&str> = events.split_whitespace().collect();
    if list.contains(&event) {
        return Some(event.to_string());
    }
    if matches!(event, "job-created" | "job-completed") && list.contains(&"job-state-changed") {
        return Some("job-state-changed".to_string());
    }
    None
}

/// Create-Printer-Subscriptions (RFC 3995 §11.1.2), ippget only.
pub async fn create_printer_subscriptions(
    cloud: &Cloud,
    printer: &PrinterRow,
    owner: &str,
    req: &Message,
) -> Result<Message, Status> {
    let groups: Vec<&Group> = req
        .groups
        .iter()
        .filter(|g| g.tag == tag::SUBSCRIPTION)
        .collect();
    if groups.is_empty() {
        return Err(Status::bad_request("missing subscription attributes group"));
    }
    let mut resp = response(status::OK, None);
    let mut held = cloud
        .store
        .subscription_count(&printer.id, owner, cloud.now())
        .await?;
    let mut created = 0;
    for g in groups.into_iter().take(MAX_SUBSCRIPTIONS) {
        let mut out = Group::new(tag::SUBSCRIPTION);
        if held >= MAX_PER_OWNER {
            out.push(Attribute::new(
                "notify-status-code",
                en(i32::from(TOO_MANY_SUBSCRIPTIONS)),
            ));
            resp.groups.push(out);
            continue;
        }
        let method = g.get("notify-pull-method").and_then(|a| a.first());
        if g.get("notify-recipient-uri").is_some()
            || !matches!(method, Some(Value::Keyword(m)) if m == "ippget")
        {
            out.push(Attribute::new(
                "notify-status-code",
                en(i32::from(status::ATTRIBUTES_OR_VALUES_NOT_SUPPORTED)),
            ));
            resp.groups.push(out);
            continue;
        }
        let mut events: Vec<String> = Vec::new();
        if let Some(a) = g.get("notify-events") {
            for v in &a.values {
                if let Some(e) = v.as_str() {
                    if super::infra::NOTIFY_EVENTS.contains(&e) && !events.iter().any(|x| x == e) {
                        events.push(e.to_string());
                    }
                }
            }
        } else {
            events.push("job-completed".into());
        }
        if events.is_empty() {
            out.push(Attribute::new(
                "notify-status-code",
                en(i32::from(status::ATTRIBUTES_OR_VALUES_NOT_SUPPORTED)),
            ));
            resp.groups.push(out);
            continue;
        }
        let lease = match g.get("notify-lease-duration").and_then(|a| a.first()) {
            Some(Value::Integer(n)) if (0..=86_400 * 7).contains(n) => i64::from(*n),
            Some(_) => 86_400 * 7,
            None => 3600,
        };
        let id = cloud
            .store
            .create_subscription(&printer.id, owner, &events.join(" "), lease, cloud.now())
            .await?;
        out.push(Attribute::new("notify-subscription-id", int(id as i32)));
        out.push(Attribute::new("notify-lease-duration", int(lease as i32)));
        resp.groups.push(out);
        held += 1;
        created += 1;
    }
    if created == 0 {
        // RFC 3995 §11.1.2: every group refused.
        resp.code = IGNORED_ALL_SUBSCRIPTIONS;
    }
    Ok(resp)
}

fn int_list(req: &Message, name: &str) -> Result<Vec<i64>, Status> {
    let Some(a) = op_attr(req, name) else {
        return Ok(Vec::new());
    };
    if a.values.len() > MAX_SUBSCRIPTIONS {
        return Err(Status::bad_request(format!("too many {name}")));
    }
    a.values
        .iter()
        .map(|v| match v {
            Value::Integer(i) if *i > 0 => Ok(i64::from(*i)),
            _ => Err(Status::bad_request(format!(
                "{name} must be positive integers"
            ))),
        })
        .collect()
}

/// Get-Notifications (RFC 3996 §5): events of the named subscriptions after the given sequence
/// numbers; with notify-wait, the request is held until there is one (or the wait ends).
pub async fn get_notifications(
    cloud: &Cloud,
    printer: &PrinterRow,
    uris: &PrinterUris,
    owner: &str,
    req: &Message,
) -> Result<Message, Status> {
    let ids = int_list(req, "notify-subscription-ids")?;
    if ids.is_empty() {
        return Err(Status::bad_request(
            "missing notify-subscription-ids operation attribute",
        ));
    }
    let seqs = int_list(req, "notify-sequence-numbers")?;
    let wait = matches!(
        op_attr(req, "notify-wait").and_then(|a| a.first()),
        Some(Value::Boolean(true))
    );
    let now = cloud.now();
    let mut subs = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let Some(s) = cloud.store.subscription(&printer.id, *id, now).await? else {
            return Err(Status::not_found(format!(
                "subscription {id} does not exist"
            )));
        };
        if s.owner != owner {
            return Err(Status::new(
                status::FORBIDDEN,
                format!("subscription {id} is not yours"),
            ));
        }
        let from = seqs.get(i).copied().unwrap_or(1).max(s.first_seq);
        subs.push((s, from));
    }
    let mut wake = cloud.events.subscribe(&printer.id);
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(cloud.config.infra.notify_wait_seconds);
    let min_from = subs.iter().map(|(_, f)| *f).min().unwrap_or(1);
    loop {
        let events = cloud
            .store
            .events_from(&printer.id, min_from, MAX_EVENTS * 4)
            .await?;
        let mut found: Vec<(i64, String, EventRow)> = Vec::new();
        for e in events {
            for (s, from) in &subs {
                if e.seq >= *from {
                    if let Some(as_event) = subscribed(&s.events, &e.event) {
                        found.push((s.id, as_event, e.clone()));
                    }
                }
            }
        }
        found.truncate(MAX_EVENTS as usize);
        if !found.is_empty() || !wait || tokio::time::Instant::now() >= deadline {
            let mut resp = response(status::OK, None);
            resp.group_mut(tag::OPERATION).push(Attribute::new(
                "notify-get-interval",
                int(if wait { 0 } else { 5 }),
            ));
            resp.group_mut(tag::OPERATION)
                .push(Attribute::new("printer-up-time", int(up(cloud.now()))));
            for (sub_id, event, e) in found {
                let mut g = Group::new(tag::EVENT_NOTIFICATION);
                g.push(Attribute::new("notify-subscription-id", int(sub_id as i32)));
                g.push(Attribute::new("notify-sequence-number", int(e.seq as i32)));
                g.push(Attribute::new("notify-subscribed-event", kw(&event)));
                g.push(Attribute::new("notify-printer-uri", uri(&uris.ipp)));
                g.push(Attribute::new(
                    "notify-text",
                    text(&match e.job_id {
                        Some(j) => format!("{} (job {j})", e.event),
                        None => e.event.clone(),
                    }),
                ));
                g.push(Attribute::new("printer-up-time", int(up(e.created_at))));
                g.push(Attribute::new(
                    "printer-current-time",
                    date_time(e.created_at),
                ));
                if let Some(j) = e.job_id {
                    g.push(Attribute::new("notify-job-id", int(j as i32)));
                    g.push(Attribute::new("job-id", int(j as i32)));
                }
                if let Some(s) = e.job_state {
                    g.push(Attribute::new("job-state", en(s as i32)));
                }
                if let Some(r) = &e.job_reasons {
                    g.push(Attribute::set(
                        "job-state-reasons",
                        r.split_whitespace().map(kw).collect(),
                    ));
                }
                resp.groups.push(g);
            }
            return Ok(resp);
        }
        tokio::select! {
            _ = wake.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

fn up(t: i64) -> i32 {
    t.clamp(1, i32::MAX as i64) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_wakes_the_printer_whose_counter_moved() {
        let hub = EventHub::default();
        let mut a = hub.subscribe("a");
        let mut b = hub.subscribe("b");
        let mut watched = hub.watched();
        watched.sort();
        assert_eq!(watched, vec!["a", "b"]);
        hub.observe(&[("a".into(), 5), ("b".into(), 7)]);
        assert!(a.has_changed().unwrap() && b.has_changed().unwrap());
        a.mark_unchanged();
        b.mark_unchanged();
        hub.observe(&[("a".into(), 6), ("b".into(), 7)]);
        assert!(a.has_changed().unwrap());
        assert!(!b.has_changed().unwrap());
        hub.wake("b");
        assert!(b.has_changed().unwrap());
        drop(a);
        assert_eq!(hub.watched(), vec!["b"]);
    }

    #[test]
    fn job_state_changed_covers_created_and_completed() {
        assert_eq!(
            subscribed("job-state-changed", "job-created").as_deref(),
            Some("job-state-changed")
        );
        assert_eq!(
            subscribed("job-fetchable", "job-fetchable").as_deref(),
            Some("job-fetchable")
        );
        assert_eq!(subscribed("job-fetchable", "job-created"), None);
    }
}
