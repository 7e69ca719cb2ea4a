//! Event notification subscriptions with the ippget pull method (RFC 3995, RFC 3996): Create-Printer-
//! and Create-Job-Subscriptions, Get-Subscription-Attributes, Get-Subscriptions, Renew-, Cancel-
//! Subscription and Get-Notifications. Subscriptions live in memory: a restart ends them, as a client
//! using ippget must be ready for (RFC 3996 §5.2 — it sees client-error-not-found and subscribes again).

use std::collections::{BTreeMap, VecDeque};

use super::{Printer, RequestContext};
use crate::codec::ipp::{date_time, tag, Attribute, Group, Message, Value};
use crate::codec::ipp_attr::{int, kw, name, op_attr, op_bool, op_int, text, uri};
use crate::codec::ipp_op::Operation;
use crate::codec::ipp_status::{self as status, Status};
use crate::model::job::JobState;

const MAX_SUBSCRIPTIONS: usize = 1000;
const MAX_EVENTS: usize = 100;
/// ippget-event-life, seconds.
const EVENT_LIFE: i32 = 300;
const EVENTS: &[&str] = &[
    "job-completed",
    "job-created",
    "job-progress",
    "job-state-changed",
    "printer-config-changed",
    "printer-state-changed",
];

#[derive(Debug, Clone)]
struct Event {
    sequence: i32,
    name: &'static str,
    time: i64,
    job: Option<(u32, i32, Vec<String>)>,
    printer_state: i32,
    printer_reasons: Vec<String>,
}

#[derive(Debug, Clone)]
pub(super) struct Subscription {
    id: i32,
    owner: String,
    events: Vec<String>,
    job_id: Option<u32>,
    lease_seconds: i32,
    expires: Option<i64>,
    user_data: Option<Vec<u8>>,
    time_interval: i32,
    next_sequence: i32,
    queue: VecDeque<Event>,
}

#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    next_id: i32,
    by_id: BTreeMap<i32, Subscription>,
}

impl Printer {
    /// Records a printer event for every subscription that asked for it.
    pub(crate) fn post_printer_event(&self, event: &'static str) {
        self.post_event(event, None);
        self.changed.send_modify(|n| *n += 1);
    }

    /// Records a job event (called by the event pump on every job state change).
    pub fn post_job_change(&self, job_id: u32, from: Option<JobState>, to: JobState) {
        let Some(job) = self.spool.get(job_id) else {
            return;
        };
        let detail = Some((job_id, to as i32, job.status.reasons.clone()));
        if from.is_none() {
            self.post_event("job-created", detail.clone());
        }
        self.post_event("job-state-changed", detail.clone());
        if to.is_terminal() {
            self.post_event("job-completed", detail);
        }
        if from == Some(JobState::Processing) || to == JobState::Processing {
            self.post_printer_event("printer-state-changed");
        }
    }

    fn post_event(&self, name: &'static str, job: Option<(u32, i32, Vec<String>)>) {
        let now = self.clock.now();
        if name == "printer-state-changed" {
            self.status.write().expect("printer lock").state_change_time = now;
        }
        let (printer_state, printer_reasons) = self.printer_state();
        let mut subs = self.subscriptions.lock().expect("subscriptions lock");
        subs.by_id.retain(|_, s| s.expires.is_none_or(|e| e > now));
        for s in subs.by_id.values_mut() {
            if !s.events.iter().any(|e| e == name) {
                continue;
            }
            if let (Some(want), Some((id, ..))) = (s.job_id, &job) {
                if want != *id {
                    continue;
                }
            }
            let sequence = s.next_sequence;
            s.next_sequence += 1;
            s.queue.push_back(Event {
                sequence,
                name,
                time: now,
                job: job.clone(),
                printer_state,
                printer_reasons: printer_reasons.clone(),
            });
            while s.queue.len() > MAX_EVENTS {
                s.queue.pop_front();
            }
            // A job subscription ends with its job, once its last events had time to be fetched
            // (RFC 3995 §5.3.3.4; ippget-event-life, RFC 3996 §7.1).
            if name == "job-completed" && s.job_id.is_some() {
                s.expires = Some(now + EVENT_LIFE as i64);
            }
        }
    }

    pub(super) async fn create_subscriptions(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let owner = self.requester(&req, ctx);
        let job_id = if req.code == Operation::CreateJobSubscriptions.code() {
            Some(self.target_job(&req)?.id)
        } else {
            None
        };
        let groups: Vec<&Group> = req
            .groups
            .iter()
            .filter(|g| g.tag == tag::SUBSCRIPTION)
            .collect();
        if groups.is_empty() {
            return Err(Status::bad_request("missing subscription attributes group"));
        }
        let mut resp = Printer::ok();
        let mut any_ok = false;
        let now = self.clock.now();
        for g in groups {
            let mut unsupported = Vec::new();
            if let Some(a) = g.get("notify-recipient-uri") {
                unsupported.push(a.clone());
            }
            match g.get("notify-pull-method").and_then(|a| a.first()) {
                Some(Value::Keyword(k)) if k == "ippget" => {}
                Some(_) => unsupported.push(g.get("notify-pull-method").cloned().expect("present")),
                None if unsupported.is_empty() => {
                    return Err(Status::bad_request(
                        "notify-pull-method or notify-recipient-uri is required",
                    ));
                }
                None => {}
            }
            let events: Vec<String> = match g.get("notify-events") {
                Some(a) => {
                    let (ok, bad): (Vec<&Value>, Vec<&Value>) = a
                        .values
                        .iter()
                        .partition(|v| v.as_str().is_some_and(|e| EVENTS.contains(&e)));
                    if !bad.is_empty() {
                        unsupported.push(Attribute::set(
                            "notify-events",
                            bad.into_iter().cloned().collect(),
                        ));
                    }
                    ok.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                }
                None => vec!["job-completed".into()],
            };
            let lease = match g.get("notify-lease-duration").and_then(|a| a.first()) {
                None => 86400,
                Some(Value::Integer(n)) if (0..=86400 * 7).contains(n) => *n,
                Some(_) => {
                    unsupported.push(g.get("notify-lease-duration").cloned().expect("present"));
                    86400
                }
            };
            let user_data = match g.get("notify-user-data").and_then(|a| a.first()) {
                Some(Value::OctetString(d)) if d.len() <= 63 => Some(d.clone()),
                Some(_) => {
                    return Err(Status::bad_request(
                        "notify-user-data must be at most 63 octets",
                    ))
                }
                None => None,
            };
            let time_interval = g
                .get("notify-time-interval")
                .and_then(|a| a.first())
                .and_then(Value::as_int)
                .unwrap_or(0);
            let refused = g.get("notify-recipient-uri").is_some() || events.is_empty();
            let sub_group = resp.groups.len();
            resp.groups.push(Group::new(tag::SUBSCRIPTION));
            if refused {
                let code = if g.get("notify-recipient-uri").is_some() {
                    status::URI_SCHEME_NOT_SUPPORTED
                } else {
                    status::ATTRIBUTES_OR_VALUES_NOT_SUPPORTED
                };
                resp.groups[sub_group].push(Attribute::new(
                    "notify-status-code",
                    Value::Enum(code as i32),
                ));
                for a in unsupported {
                    resp.group_mut(tag::UNSUPPORTED).push(a);
                }
                continue;
            }
            let mut subs = self.subscriptions.lock().expect("subscriptions lock");
            if subs.by_id.len() >= MAX_SUBSCRIPTIONS {
                return Err(Status::new(status::BUSY, "too many subscriptions"));
            }
            subs.next_id += 1;
            let id = subs.next_id;
            let job_lease = if job_id.is_some() { 0 } else { lease };
            subs.by_id.insert(
                id,
                Subscription {
                    id,
                    owner: owner.clone(),
                    events,
                    job_id,
                    lease_seconds: job_lease,
                    expires: if job_lease == 0 {
                        None
                    } else {
                        Some(now + job_lease as i64)
                    },
                    user_data,
                    time_interval,
                    next_sequence: 1,
                    queue: VecDeque::new(),
                },
            );
            drop(subs);
            any_ok = true;
            resp.groups[sub_group].push(Attribute::new("notify-subscription-id", int(id)));
            if job_id.is_none() {
                resp.groups[sub_group]
                    .push(Attribute::new("notify-lease-duration", int(job_lease)));
            }
            if !unsupported.is_empty() {
                resp.code = status::OK_IGNORED_OR_SUBSTITUTED;
                for a in unsupported {
                    resp.group_mut(tag::UNSUPPORTED).push(a);
                }
            }
        }
        if !any_ok {
            resp.code = status::ATTRIBUTES_OR_VALUES_NOT_SUPPORTED;
        }
        Ok(resp)
    }

    fn subscription_attributes(&self, s: &Subscription, ctx: &RequestContext) -> Vec<Attribute> {
        let mut v = vec![
            Attribute::new("notify-subscription-id", int(s.id)),
            Attribute::new("notify-subscriber-user-name", name(&s.owner)),
            Attribute::new("notify-pull-method", kw("ippget")),
            Attribute::set("notify-events", s.events.iter().map(|e| kw(e)).collect()),
            Attribute::new(
                "notify-printer-uri",
                uri(&ctx.printer_uri(&self.config.resource)),
            ),
            Attribute::new("notify-time-interval", int(s.time_interval)),
            Attribute::new("notify-charset", Value::Charset("utf-8".into())),
            Attribute::new(
                "notify-natural-language",
                Value::NaturalLanguage("en".into()),
            ),
        ];
        match s.job_id {
            Some(j) => v.push(Attribute::new("notify-job-id", int(j as i32))),
            None => v.push(Attribute::new(
                "notify-lease-duration",
                int(s.lease_seconds),
            )),
        }
        if let Some(d) = &s.user_data {
            v.push(Attribute::new(
                "notify-user-data",
                Value::OctetString(d.clone()),
            ));
        }
        v
    }

    fn subscription(&self, id: i32) -> Result<Subscription, Status> {
        let now = self.clock.now();
        let subs = self.subscriptions.lock().expect("subscriptions lock");
        subs.by_id
            .get(&id)
            .filter(|s| s.expires.is_none_or(|e| e > now))
            .cloned()
            .ok_or_else(|| Status::not_found(format!("subscription {id} does not exist")))
    }

    fn subscription_id(req: &Message) -> Result<i32, Status> {
        match op_attr(req, "notify-subscription-id").map(|a| a.values.as_slice()) {
            Some([Value::Integer(id)]) if *id > 0 => Ok(*id),
            Some(_) => Err(Status::bad_request(
                "notify-subscription-id must be one positive integer",
            )),
            None => Err(Status::bad_request("missing notify-subscription-id")),
        }
    }

    pub(super) async fn get_subscription_attributes(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let s = self.subscription(Self::subscription_id(&req)?)?;
        let mut resp = Printer::ok();
        resp.groups.push(Group {
            tag: tag::SUBSCRIPTION,
            attributes: self.subscription_attributes(&s, ctx),
        });
        Ok(resp)
    }

    pub(super) async fn get_subscriptions(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let me = self.requester(&req, ctx);
        let job = op_int(&req, "notify-job-id").map(|j| j as u32);
        let mine = op_bool(&req, "my-subscriptions").unwrap_or(false);
        let limit = op_int(&req, "limit")
            .filter(|l| *l > 0)
            .map(|l| l as usize)
            .unwrap_or(usize::MAX);
        let now = self.clock.now();
        let list: Vec<Subscription> = {
            let subs = self.subscriptions.lock().expect("subscriptions lock");
            subs.by_id
                .values()
                .filter(|s| s.expires.is_none_or(|e| e > now))
                .filter(|s| s.job_id == job && (!mine || s.owner == me))
                .take(limit)
                .cloned()
                .collect()
        };
        let mut resp = Printer::ok();
        for s in list {
            resp.groups.push(Group {
                tag: tag::SUBSCRIPTION,
                attributes: self.subscription_attributes(&s, ctx),
            });
        }
        Ok(resp)
    }

    pub(super) async fn renew_subscription(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let id = Self::subscription_id(&req)?;
        let s = self.subscription(id)?;
        if s.owner != self.requester(&req, ctx) && !ctx.is_admin {
            return Err(Status::new(
                status::FORBIDDEN,
                "only the subscriber may renew a subscription",
            ));
        }
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
            None => 86400,
            Some(Value::Integer(n)) if (0..=86400 * 7).contains(n) => *n,
            Some(_) => return Err(Status::bad_request("notify-lease-duration out of range")),
        };
        let now = self.clock.now();
        if let Some(s) = self
            .subscriptions
            .lock()
            .expect("subscriptions lock")
            .by_id
            .get_mut(&id)
        {
            s.lease_seconds = lease;
            s.expires = if lease == 0 {
                None
            } else {
                Some(now + lease as i64)
            };
        }
        let mut resp = Printer::ok();
        resp.group_mut(tag::SUBSCRIPTION)
            .push(Attribute::new("notify-lease-duration", int(lease)));
        Ok(resp)
    }

    pub(super) async fn cancel_subscription(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let id = Self::subscription_id(&req)?;
        let s = self.subscription(id)?;
        if s.owner != self.requester(&req, ctx) && !ctx.is_admin {
            return Err(Status::new(
                status::FORBIDDEN,
                "only the subscriber may cancel a subscription",
            ));
        }
        self.subscriptions
            .lock()
            .expect("subscriptions lock")
            .by_id
            .remove(&id);
        Ok(Printer::ok())
    }

    /// Get-Notifications (RFC 3996 §5): events with sequence numbers at or above those given.
    pub(super) async fn get_notifications(
        &self,
        req: Message,
        ctx: &RequestContext,
    ) -> Result<Message, Status> {
        let ids: Vec<i32> = match op_attr(&req, "notify-subscription-ids") {
            Some(a) => a.values.iter().filter_map(Value::as_int).collect(),
            None => return Err(Status::bad_request("missing notify-subscription-ids")),
        };
        let seqs: Vec<i32> = op_attr(&req, "notify-sequence-numbers")
            .map(|a| a.values.iter().filter_map(Value::as_int).collect())
            .unwrap_or_default();
        let me = self.requester(&req, ctx);
        let mut events = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let s = self.subscription(*id)?;
            if s.owner != me && !ctx.is_admin {
                return Err(Status::new(
                    status::FORBIDDEN,
                    format!("subscription {id} belongs to someone else"),
                ));
            }
            let from = seqs.get(i).copied().unwrap_or(1);
            for e in s.queue.iter().filter(|e| e.sequence >= from) {
                events.push((s.clone(), e.clone()));
            }
        }
        let mut resp = Printer::ok();
        resp.group_mut(tag::OPERATION)
            .push(Attribute::new("notify-get-interval", int(10)));
        let printer_uri = ctx.printer_uri(&self.config.resource);
        for (s, e) in events {
            let mut g = Group::new(tag::EVENT_NOTIFICATION);
            g.push(Attribute::new("notify-subscription-id", int(s.id)));
            g.push(Attribute::new("notify-sequence-number", int(e.sequence)));
            g.push(Attribute::new("notify-subscribed-event", kw(e.name)));
            g.push(Attribute::new(
                "notify-text",
                text(&format!("{} event", e.name)),
            ));
            g.push(Attribute::new(
                "notify-charset",
                Value::Charset("utf-8".into()),
            ));
            g.push(Attribute::new(
                "notify-natural-language",
                Value::NaturalLanguage("en".into()),
            ));
            g.push(Attribute::new("notify-printer-uri", uri(&printer_uri)));
            g.push(Attribute::new("printer-up-time", int(e.time as i32)));
            g.push(Attribute::new("printer-current-time", date_time(e.time)));
            if let Some(d) = &s.user_data {
                g.push(Attribute::new(
                    "notify-user-data",
                    Value::OctetString(d.clone()),
                ));
            }
            match &e.job {
                Some((job_id, state, reasons)) => {
                    g.push(Attribute::new("notify-job-id", int(*job_id as i32)));
                    g.push(Attribute::new("job-state", Value::Enum(*state)));
                    g.push(Attribute::set(
                        "job-state-reasons",
                        reasons.iter().map(|r| kw(r)).collect(),
                    ));
                }
                None => {
                    g.push(Attribute::new(
                        "printer-state",
                        Value::Enum(e.printer_state),
                    ));
                    g.push(Attribute::set(
                        "printer-state-reasons",
                        e.printer_reasons.iter().map(|r| kw(r)).collect(),
                    ));
                    g.push(Attribute::new(
                        "printer-is-accepting-jobs",
                        Value::Boolean(self.status.read().expect("printer lock").accepting),
                    ));
                }
            }
            resp.groups.push(g);
        }
        Ok(resp)
    }
}
