//! Event delivery for the Infrastructure Printers' ippget subscriptions (RFC 3995, RFC 3996):
//! the events offered, which subscription receives which event, and the wake-up of held
//! Get-Notifications requests (the operations are in `cloud::infra::subscriptions`). Events are
//! rows in the database (any instance may have posted them). A held request looks at them again
//! when [`EventHub`] wakes its printer: at once when this instance posts an event, and within a
//! tick when another instance did ([`watch_events`] reads every watched printer's event counter
//! with one query per tick, so the database load does not grow with the number of held
//! requests).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::Cloud;
use crate::store::infra::SubscriptionRow;

/// The events an Infrastructure Printer offers (notify-events-supported, RFC 3995 §5.3.3.1;
/// job-fetchable is PWG 5100.18 §5.3).
pub const NOTIFY_EVENTS: &[&str] = &[
    "job-completed",
    "job-created",
    "job-fetchable",
    "job-state-changed",
];

/// How long events are kept for Get-Notifications (ippget-event-life, RFC 3996 §5.3.1).
pub const EVENT_LIFE_SECONDS: i64 = 300;
/// How often this instance looks for events another instance posted.
const TICK: Duration = Duration::from_millis(250);

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

/// Runs until `stop`: every `TICK`, reads the event counters of the printers that have held
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

/// The event a subscription receives `event` (of `job_id`) as, if at all: a job subscription
/// only its job's events (RFC 3995 §5.3.3).
pub fn delivered_as(s: &SubscriptionRow, event: &str, job_id: Option<i64>) -> Option<String> {
    if s.job_id.is_some() && s.job_id != job_id {
        return None;
    }
    subscribed(&s.events, event)
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

    #[test]
    fn job_subscriptions_receive_only_their_job() {
        let sub = |job_id| SubscriptionRow {
            id: 1,
            owner: "a@example.com".into(),
            job_id,
            events: "job-completed".into(),
            first_seq: 1,
            lease_seconds: 0,
            expires_at: 0,
            created_at: 0,
        };
        assert!(delivered_as(&sub(Some(3)), "job-completed", Some(3)).is_some());
        assert!(delivered_as(&sub(Some(3)), "job-completed", Some(4)).is_none());
        assert!(delivered_as(&sub(None), "job-completed", Some(4)).is_some());
    }
}
