//! Subscriptions of the Infrastructure Printers (RFC 3995 §11, ippget only, RFC 3996):
//! Create-Printer-Subscriptions and Create-Job-Subscriptions, Get-Subscription-Attributes,
//! Get-Subscriptions, Renew-Subscription, Cancel-Subscription, and Get-Notifications with
//! notify-wait, so a Proxy learns of a new job at once without polling. Which event reaches
//! which subscription, and the wake-up of held requests, are in [`crate::cloud::notify`].

use std::time::Duration;

use super::Ctx;
use crate::cloud::notify::{delivered_as, NOTIFY_EVENTS};
use crate::codec::ipp::{date_time, tag, Attribute, Group, Message, Value};
use crate::codec::ipp_attr::{
    en, int, kw, name, op_attr, op_bool, op_int, positive_int_operand, required_positive_int, text,
    uri,
};
use crate::codec::ipp_status::{self as status, response, Status};
use crate::store::infra::{EventRow, SubscriptionRow};

/// Events one Get-Notifications response carries at most.
const MAX_EVENTS: i64 = 100;
/// Subscriptions one request may name.
const MAX_SUBSCRIPTIONS: usize = 32;
/// Live subscriptions one user or device may hold on one printer.
const MAX_PER_OWNER: i64 = 64;
/// notify-lease-duration-supported (RFC 3995 §5.3.3.3): up to a week; 0 is "no expiry".
const MAX_LEASE_SECONDS: i64 = 86_400 * 7;
const DEFAULT_LEASE_SECONDS: i64 = 3600;

/// Create-Printer-Subscriptions (RFC 3995 §11.1.2).
pub(super) async fn create_printer_subscriptions(
    cx: &Ctx<'_>,
    req: Message,
) -> Result<Message, Status> {
    create_subscriptions(cx, &req, None).await
}

/// Create-Job-Subscriptions (RFC 3995 §11.1.1): subscriptions to the events of one job
/// (notify-job-id), for its owner or the printer's device.
pub(super) async fn create_job_subscriptions(
    cx: &Ctx<'_>,
    req: Message,
) -> Result<Message, Status> {
    let job_id = i64::from(required_positive_int(&req, "notify-job-id")?);
    let Some(job) = cx.cloud.store.job(&cx.printer.id, job_id).await? else {
        return Err(Status::not_found(format!("job {job_id} does not exist")));
    };
    if !super::auth::is_owner(cx, &job) {
        return Err(Status::new(
            status::FORBIDDEN,
            "only the job's owner may subscribe to its events",
        ));
    }
    if job.is_terminal() {
        return Err(Status::not_possible(format!(
            "job {job_id} is already finished"
        )));
    }
    create_subscriptions(cx, &req, Some(job_id)).await
}

/// The notify-events of one subscription template group: those we offer, and those we drop
/// (to report as unsupported, RFC 3995 §11.1.2). Absent means job-completed.
fn requested_events(g: &Group) -> (Vec<String>, Vec<Value>) {
    let mut events: Vec<String> = Vec::new();
    let mut dropped = Vec::new();
    let Some(a) = g.get("notify-events") else {
        return (vec!["job-completed".into()], dropped);
    };
    for v in &a.values {
        match v.as_str() {
            Some(e) if NOTIFY_EVENTS.contains(&e) => {
                if !events.iter().any(|x| x == e) {
                    events.push(e.to_string());
                }
            }
            _ => {
                if dropped.len() < 32 {
                    dropped.push(v.clone());
                }
            }
        }
    }
    (events, dropped)
}

async fn create_subscriptions(
    cx: &Ctx<'_>,
    req: &Message,
    job_id: Option<i64>,
) -> Result<Message, Status> {
    let groups: Vec<&Group> = req
        .groups
        .iter()
        .filter(|g| g.tag == tag::SUBSCRIPTION)
        .collect();
    if groups.is_empty() {
        return Err(Status::bad_request("missing subscription attributes group"));
    }
    let owner = cx.principal.subscriber_key();
    let mut resp = response(status::OK, None);
    let mut held = cx
        .cloud
        .store
        .subscription_count(&cx.printer.id, &owner, cx.now())
        .await?;
    let mut created = 0;
    let mut unsupported_events: Vec<Value> = Vec::new();
    for g in groups.into_iter().take(MAX_SUBSCRIPTIONS) {
        let mut out = Group::new(tag::SUBSCRIPTION);
        if held >= MAX_PER_OWNER {
            out.push(Attribute::new(
                "notify-status-code",
                en(i32::from(status::TOO_MANY_SUBSCRIPTIONS)),
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
        let (events, dropped) = requested_events(g);
        if events.is_empty() {
            out.push(Attribute::new(
                "notify-status-code",
                en(i32::from(status::ATTRIBUTES_OR_VALUES_NOT_SUPPORTED)),
            ));
            resp.groups.push(out);
            continue;
        }
        let lease = match g.get("notify-lease-duration").and_then(|a| a.first()) {
            // A job subscription lasts as long as its job (RFC 3995 §5.3.3.3).
            _ if job_id.is_some() => 0,
            Some(Value::Integer(n)) if (0..=MAX_LEASE_SECONDS).contains(&i64::from(*n)) => {
                i64::from(*n)
            }
            Some(_) => MAX_LEASE_SECONDS,
            None => DEFAULT_LEASE_SECONDS,
        };
        let id = cx
            .cloud
            .store
            .create_job_subscription(
                &cx.printer.id,
                &owner,
                job_id,
                &events.join(" "),
                lease,
                cx.now(),
            )
            .await?;
        if !dropped.is_empty() {
            // RFC 3995 §11.1.2: the subscription was made with the events we offer; the
            // others are ignored, and said so.
            out.push(Attribute::new(
                "notify-status-code",
                en(i32::from(status::OK_IGNORED_OR_SUBSTITUTED)),
            ));
            for v in dropped {
                if !unsupported_events.contains(&v) {
                    unsupported_events.push(v);
                }
            }
        }
        out.push(Attribute::new("notify-subscription-id", int(id as i32)));
        if job_id.is_none() {
            out.push(Attribute::new("notify-lease-duration", int(lease as i32)));
        }
        resp.groups.push(out);
        held += 1;
        created += 1;
    }
    if created == 0 {
        // RFC 3995 §11.1.2: every group refused.
        resp.code = status::IGNORED_ALL_SUBSCRIPTIONS;
        return Ok(resp);
    }
    if !unsupported_events.is_empty() {
        resp = status::with_unsupported(
            resp,
            vec![Attribute::set("notify-events", unsupported_events)],
        );
        // The unsupported-attributes group belongs right after the operation group.
        if let Some(i) = resp.groups.iter().position(|g| g.tag == tag::UNSUPPORTED) {
            let g = resp.groups.remove(i);
            resp.groups.insert(1, g);
        }
    }
    Ok(resp)
}

fn subscription_id(req: &Message) -> Result<i64, Status> {
    required_positive_int(req, "notify-subscription-id").map(i64::from)
}

/// The live subscription named by notify-subscription-id.
async fn target_subscription(cx: &Ctx<'_>, req: &Message) -> Result<SubscriptionRow, Status> {
    let id = subscription_id(req)?;
    cx.cloud
        .store
        .subscription(&cx.printer.id, id, cx.now())
        .await?
        .ok_or_else(|| Status::not_found(format!("subscription {id} does not exist")))
}

/// The subscription's own, or refused: other users' subscriptions are private to them.
async fn own_subscription(
    cx: &Ctx<'_>,
    req: &Message,
    action: &str,
) -> Result<SubscriptionRow, Status> {
    let s = target_subscription(cx, req).await?;
    if s.owner != cx.principal.subscriber_key() {
        return Err(Status::new(
            status::FORBIDDEN,
            format!("only the subscriber may {action} subscription {}", s.id),
        ));
    }
    Ok(s)
}

/// The Subscription Description and Template attributes of `s` (RFC 3995 §5.3, §5.4).
fn subscription_attributes(cx: &Ctx<'_>, s: &SubscriptionRow) -> Vec<Attribute> {
    let mut v = vec![
        Attribute::new("notify-subscription-id", int(s.id as i32)),
        Attribute::new("notify-subscriber-user-name", name(&s.owner)),
        Attribute::new("notify-pull-method", kw("ippget")),
        Attribute::set(
            "notify-events",
            s.events.split_whitespace().map(kw).collect(),
        ),
        Attribute::new("notify-printer-uri", uri(&cx.uris.ipp)),
        Attribute::new("notify-time-interval", int(0)),
        Attribute::new("notify-charset", Value::Charset("utf-8".into())),
        Attribute::new(
            "notify-natural-language",
            Value::NaturalLanguage("en".into()),
        ),
    ];
    match s.job_id {
        Some(j) => v.push(Attribute::new("notify-job-id", int(j as i32))),
        None => {
            let left = if s.lease_seconds == 0 {
                0
            } else {
                (s.expires_at - cx.now()).clamp(1, MAX_LEASE_SECONDS)
            };
            v.push(Attribute::new("notify-lease-duration", int(left as i32)));
        }
    }
    v
}

/// Get-Subscription-Attributes (RFC 3995 §11.2.3).
pub(super) async fn get_subscription_attributes(
    cx: &Ctx<'_>,
    req: Message,
) -> Result<Message, Status> {
    let s = own_subscription(cx, &req, "read").await?;
    let mut resp = response(status::OK, None);
    resp.groups.push(Group {
        tag: tag::SUBSCRIPTION,
        attributes: subscription_attributes(cx, &s),
    });
    Ok(resp)
}

/// Get-Subscriptions (RFC 3995 §11.2.4): the requester's own subscriptions (of notify-job-id,
/// or the printer's), as my-subscriptions=true; others' are private to them.
pub(super) async fn get_subscriptions(cx: &Ctx<'_>, req: Message) -> Result<Message, Status> {
    let job_id = positive_int_operand(&req, "notify-job-id")?.map(i64::from);
    let limit = match op_int(&req, "limit") {
        None => 100,
        Some(n) if n > 0 => i64::from(n).min(100),
        Some(_) => return Err(Status::bad_request("limit must be a positive integer")),
    };
    // my-subscriptions=false asks for everyone's; we answer with the requester's only, the
    // ones it may see (RFC 3995 §11.2.4.1 leaves the others to policy).
    let _ = op_bool(&req, "my-subscriptions");
    let owner = cx.principal.subscriber_key();
    let subs = cx
        .cloud
        .store
        .subscriptions(&cx.printer.id, job_id, Some(&owner), limit, cx.now())
        .await?;
    let mut resp = response(status::OK, None);
    for s in &subs {
        resp.groups.push(Group {
            tag: tag::SUBSCRIPTION,
            attributes: subscription_attributes(cx, s),
        });
    }
    Ok(resp)
}

/// Renew-Subscription (RFC 3995 §11.2.6): a new lease for a printer subscription.
pub(super) async fn renew_subscription(cx: &Ctx<'_>, req: Message) -> Result<Message, Status> {
    let s = own_subscription(cx, &req, "renew").await?;
    if s.job_id.is_some() {
        return Err(Status::not_possible(
            "job subscriptions last as long as their job",
        ));
    }
    let lease = match req
        .group(tag::SUBSCRIPTION)
        .and_then(|g| g.get("notify-lease-duration"))
        .and_then(|a| a.first())
    {
        None => DEFAULT_LEASE_SECONDS,
        Some(Value::Integer(n)) if (0..=MAX_LEASE_SECONDS).contains(&i64::from(*n)) => {
            i64::from(*n)
        }
        Some(_) => return Err(Status::bad_request("notify-lease-duration out of range")),
    };
    if !cx
        .cloud
        .store
        .renew_subscription(&cx.printer.id, s.id, lease, cx.now())
        .await?
    {
        return Err(Status::not_found(format!(
            "subscription {} does not exist",
            s.id
        )));
    }
    let mut resp = response(status::OK, None);
    resp.group_mut(tag::SUBSCRIPTION)
        .push(Attribute::new("notify-lease-duration", int(lease as i32)));
    Ok(resp)
}

/// Cancel-Subscription (RFC 3995 §11.2.7).
pub(super) async fn cancel_subscription(cx: &Ctx<'_>, req: Message) -> Result<Message, Status> {
    let s = own_subscription(cx, &req, "cancel").await?;
    if !cx
        .cloud
        .store
        .cancel_subscription(&cx.printer.id, s.id)
        .await?
    {
        return Err(Status::not_found(format!(
            "subscription {} does not exist",
            s.id
        )));
    }
    Ok(response(status::OK, None))
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
pub(super) async fn get_notifications(cx: &Ctx<'_>, req: Message) -> Result<Message, Status> {
    let cloud = cx.cloud;
    let printer = &cx.printer;
    let owner = cx.principal.subscriber_key();
    let ids = int_list(&req, "notify-subscription-ids")?;
    if ids.is_empty() {
        return Err(Status::bad_request(
            "missing notify-subscription-ids operation attribute",
        ));
    }
    let seqs = int_list(&req, "notify-sequence-numbers")?;
    let wait = matches!(
        op_attr(&req, "notify-wait").and_then(|a| a.first()),
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
                    if let Some(as_event) = delivered_as(s, &e.event, e.job_id) {
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
                g.push(Attribute::new("notify-printer-uri", uri(&cx.uris.ipp)));
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
    fn unsupported_events_are_dropped_and_kept_for_the_answer() {
        let mut g = Group::new(tag::SUBSCRIPTION);
        g.push(Attribute::set(
            "notify-events",
            vec![
                kw("job-completed"),
                kw("printer-config-changed"),
                kw("job-completed"),
                kw("job-fetchable"),
            ],
        ));
        let (events, dropped) = requested_events(&g);
        assert_eq!(events, ["job-completed", "job-fetchable"]);
        assert_eq!(dropped, [kw("printer-config-changed")]);
        let (events, dropped) = requested_events(&Group::new(tag::SUBSCRIPTION));
        assert_eq!(events, ["job-completed"]);
        assert!(dropped.is_empty());
    }
}
