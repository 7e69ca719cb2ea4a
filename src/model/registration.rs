//! The registration request's state machine (specs/registration.md flow A): pending, waiting for
//! the administrator with code k of N+1, then exactly one outcome (completed, denied, failed with a
//! reason). Pure: times are Unix seconds passed in; the agent in `bridge::registration` performs
//! what [`Registration::next_action`] asks and feeds back what happened with
//! [`Registration::apply`]. The polling rules are RFC 8628 §3.4–3.5.

use serde::{Deserialize, Serialize};

/// RFC 8628 §3.2: "If no value is provided, clients MUST use 5 as the default" interval.
pub const DEFAULT_INTERVAL_SECONDS: i64 = 5;
/// RFC 8628 §3.5: slow_down adds 5 seconds to the interval "for this and all subsequent requests".
pub const SLOW_DOWN_STEP_SECONDS: i64 = 5;
/// Connection failures in a row before the request fails: with the back-off below that is
/// about ten minutes of an unreachable cloud.
pub const MAX_CONNECTION_FAILURES: u32 = 8;
/// Longest pause between attempts while the cloud cannot be reached.
pub const MAX_BACKOFF_SECONDS: i64 = 120;
/// An interval larger than this from the cloud is clamped: a hostile server must not park the
/// request for days.
pub const MAX_INTERVAL_SECONDS: i64 = 300;
/// How often the appliance asks whether the user has enrolled / the access request is decided.
pub const WAIT_POLL_SECONDS: i64 = 10;
/// How long a user approved but not yet enrolled is waited for (the cloud's access requests wait
/// as long).
pub const ENROLMENT_WAIT_SECONDS: i64 = 7 * 24 * 3600;

/// Where a request stands. Terminal states never change again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum Status {
    /// Accepted; no code yet (or a replacement code is being fetched).
    Pending,
    /// A code (or an access request) is out and the administrator has been (or is being) told.
    WaitingForAdmin,
    /// Approved, but the user is new to the cloud and has not enrolled yet (spec A6).
    AwaitingEnrolment,
    /// The cloud approved and the appliance holds its tokens (or the grant for this user).
    Completed,
    /// The administrator said no (`access_denied`).
    Denied,
    /// Ended without approval; the reason is for the user.
    Failed(String),
}

impl Status {
    pub fn is_final(&self) -> bool {
        matches!(self, Status::Completed | Status::Denied | Status::Failed(_))
    }

    /// One line for people: "completed", "failed: code expired 4 times".
    pub fn describe(&self) -> String {
        match self {
            Status::Pending => "pending".into(),
            Status::WaitingForAdmin => "waiting for the administrator".into(),
            Status::AwaitingEnrolment => "approved; waiting for the user to enrol".into(),
            Status::Completed => "completed".into(),
            Status::Denied => "denied".into(),
            Status::Failed(r) => format!("failed: {r}"),
        }
    }
}

/// One device code from the authorization server (RFC 8628 §3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Code {
    /// Secret: never shown, logged or mailed.
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A registration request and everything needed to resume it after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub id: i64,
    pub user_email: String,
    pub admin_email: String,
    /// N: how many times an expired code is replaced.
    pub retries: u32,
    pub status: Status,
    /// Codes obtained so far (k of N+1).
    pub codes_issued: u32,
    pub code: Option<Code>,
    /// Seconds between token polls now in force.
    pub interval: i64,
    /// Unix seconds of the next attempt (poll, or code request after a failure).
    pub next_attempt_at: i64,
    /// The administrator has been mailed about the current code. Set BEFORE the mail goes out
    /// and cleared again only when sending fails, so a crash during the send never mails the same
    /// code twice; at worst that code goes unmailed and its expiry brings a new one, which is.
    pub admin_mailed: bool,
    pub connection_failures: u32,
    /// The user has been told the outcome.
    pub user_told: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the appliance is registered already (spec A2): the cloud's access request for this
    /// user, instead of a device code.
    #[serde(default)]
    pub access_request: Option<AccessRequest>,
    /// Approved; the user has until then (Unix seconds) to enrol.
    #[serde(default)]
    pub enrolment_deadline: Option<i64>,
}

/// An access request at the cloud (already-registered appliance, spec A2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRequest {
    pub id: String,
    /// Where the administrator grants it.
    pub url: String,
    pub expires_at: i64,
}

/// What the agent should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ask for a (new) device code, or an access request when the appliance is registered.
    RequestCode,
    /// Mail the administrator about the current code; `replaces` when it is not the first.
    MailAdmin { replaces: bool },
    /// Poll: the token endpoint with the current device code; or the access request; or,
    /// approved but awaiting enrolment, the device's user list.
    Poll,
    /// Nothing to do before this Unix time.
    WaitUntil(i64),
    /// Tell the user the outcome.
    TellUser,
    /// Finished: outcome reached and told.
    Done,
}

/// What happened when the agent acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    CodeIssued {
        code: Code,
        interval: Option<i64>,
    },
    /// The appliance is registered; the cloud holds an access request for the user.
    AccessRequested(AccessRequest),
    /// Approved, but the user has to enrol first.
    AwaitingEnrolment,
    /// Not now: another request is registering the appliance; this one then asks for access.
    Deferred,
    /// The mail about the current code is about to be sent (persisted first; see `admin_mailed`).
    AdminMailing,
    /// Sending it failed; the reason ends the request (the administrator cannot be reached).
    AdminMailFailed(String),
    /// RFC 8628 §3.5 `authorization_pending`.
    Pending,
    /// `slow_down`, with the `interval` the server says is now in force when it sends one (our
    /// printbridge cloud does; RFC 8628 leaves it out).
    SlowDown {
        interval: Option<i64>,
    },
    /// `access_denied`.
    AccessDenied,
    /// `expired_token`.
    Expired,
    /// Tokens received and stored.
    Approved,
    /// The cloud could not be reached or answered something unusable but possibly transient.
    Unreachable(String),
    /// The cloud answered with a definite error (invalid_grant, invalid_client, bad response...).
    Refused(String),
    UserTold,
}

impl Registration {
    pub fn new(id: i64, user_email: &str, admin_email: &str, retries: u32, now: i64) -> Self {
        Registration {
            id,
            user_email: user_email.to_string(),
            admin_email: admin_email.to_string(),
            retries,
            status: Status::Pending,
            codes_issued: 0,
            code: None,
            interval: DEFAULT_INTERVAL_SECONDS,
            next_attempt_at: now,
            admin_mailed: false,
            connection_failures: 0,
            user_told: false,
            created_at: now,
            updated_at: now,
            access_request: None,
            enrolment_deadline: None,
        }
    }

    /// The next thing to do at `now`. Expiry is decided here, so a request resumed after a long
    /// restart notices its code died meanwhile.
    pub fn next_action(&self, now: i64) -> Action {
        if self.status.is_final() {
            return if self.user_told {
                Action::Done
            } else {
                Action::TellUser
            };
        }
        if self.enrolment_deadline.is_some() || self.access_request.is_some() {
            if self.enrolment_deadline.is_none() && !self.admin_mailed {
                return Action::MailAdmin { replaces: false };
            }
            return if now < self.next_attempt_at {
                Action::WaitUntil(self.next_attempt_at)
            } else {
                Action::Poll
            };
        }
        match &self.code {
            None if now < self.next_attempt_at => Action::WaitUntil(self.next_attempt_at),
            None => Action::RequestCode,
            Some(_) if !self.admin_mailed => Action::MailAdmin {
                replaces: self.codes_issued > 1,
            },
            Some(code) if now >= code.expires_at => Action::Poll,
            Some(code) if now < self.next_attempt_at => {
                Action::WaitUntil(self.next_attempt_at.min(code.expires_at))
            }
            Some(_) => Action::Poll,
        }
    }

    /// Applies what happened. Returns false (and changes nothing) when the event does not fit,
    /// e.g. anything but `UserTold` after the outcome: there is exactly one outcome.
    pub fn apply(&mut self, event: Event, now: i64) -> bool {
        if self.status.is_final() {
            if event == Event::UserTold && !self.user_told {
                self.user_told = true;
                self.updated_at = now;
                return true;
            }
            return false;
        }
        match event {
            Event::CodeIssued { code, interval } => {
                self.codes_issued += 1;
                self.interval = interval
                    .filter(|i| *i > 0)
                    .unwrap_or(DEFAULT_INTERVAL_SECONDS)
                    .min(MAX_INTERVAL_SECONDS);
                self.next_attempt_at = now + self.interval;
                self.code = Some(code);
                self.admin_mailed = false;
                self.connection_failures = 0;
                self.status = Status::WaitingForAdmin;
            }
            Event::AccessRequested(request) => {
                self.codes_issued += 1;
                self.access_request = Some(request);
                self.admin_mailed = false;
                self.connection_failures = 0;
                self.next_attempt_at = now + WAIT_POLL_SECONDS;
                self.status = Status::WaitingForAdmin;
            }
            Event::AwaitingEnrolment => {
                self.connection_failures = 0;
                if let Some(c) = &mut self.code {
                    c.device_code.clear();
                }
                let deadline = *self
                    .enrolment_deadline
                    .get_or_insert(now + ENROLMENT_WAIT_SECONDS);
                if now >= deadline {
                    self.finish(Status::Failed("the user did not enrol in time".into()));
                } else {
                    self.status = Status::AwaitingEnrolment;
                    self.next_attempt_at = now + WAIT_POLL_SECONDS;
                }
            }
            Event::Deferred => {
                self.next_attempt_at = now + WAIT_POLL_SECONDS;
            }
            Event::AdminMailing => self.admin_mailed = true,
            Event::AdminMailFailed(reason) => {
                self.admin_mailed = false;
                self.finish(Status::Failed(format!(
                    "cannot tell the administrator: {reason}"
                )));
            }
            Event::Pending => {
                self.connection_failures = 0;
                let access_expired = self
                    .access_request
                    .as_ref()
                    .is_some_and(|a| now >= a.expires_at);
                if self.code_expired(now) || access_expired {
                    self.expire(now);
                } else if self.access_request.is_some() {
                    self.next_attempt_at = now + WAIT_POLL_SECONDS;
                } else {
                    self.next_attempt_at = now + self.interval;
                }
            }
            Event::SlowDown { interval } => {
                self.connection_failures = 0;
                // +5 s (RFC 8628 §3.5), or the server's own interval when it is further ahead:
                // a server whose interval has grown past ours (another client polled the same
                // code) would otherwise answer slow_down to every poll from then on.
                let stepped = self.interval + SLOW_DOWN_STEP_SECONDS;
                self.interval = stepped.max(interval.unwrap_or(0)).min(MAX_INTERVAL_SECONDS);
                self.next_attempt_at = now + self.interval;
            }
            Event::AccessDenied => self.finish(Status::Denied),
            Event::Expired => self.expire(now),
            Event::Approved => self.finish(Status::Completed),
            Event::Unreachable(reason) => {
                self.connection_failures += 1;
                if self.connection_failures >= MAX_CONNECTION_FAILURES {
                    self.finish(Status::Failed(format!(
                        "the cloud cannot be reached ({reason})"
                    )));
                } else {
                    let backoff = (self.interval << self.connection_failures.min(6))
                        .clamp(1, MAX_BACKOFF_SECONDS);
                    self.next_attempt_at = now + backoff;
                }
            }
            Event::Refused(reason) => self.finish(Status::Failed(reason)),
            Event::UserTold => return false,
        }
        self.updated_at = now;
        true
    }

    fn code_expired(&self, now: i64) -> bool {
        self.code.as_ref().is_some_and(|c| now >= c.expires_at)
    }

    /// The current code is dead: fetch a fresh one while retries remain (spec A2 again), else fail.
    fn expire(&mut self, now: i64) {
        if self.codes_issued > self.retries {
            let what = if self.access_request.is_some() {
                "access request"
            } else {
                "code"
            };
            self.finish(Status::Failed(format!(
                "{what} expired {} times",
                self.codes_issued
            )));
        } else {
            self.code = None;
            self.access_request = None;
            self.admin_mailed = false;
            self.status = Status::Pending;
            self.next_attempt_at = now;
        }
    }

    fn finish(&mut self, status: Status) {
        self.status = status;
        // The device code is useless from here on and is a secret: do not keep it.
        if let Some(c) = &mut self.code {
            c.device_code.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(n: u32, now: i64, expires_in: i64) -> Code {
        Code {
            device_code: format!("device-{n}"),
            user_code: format!("CODE-{n:04}"),
            verification_uri: "http://cloud.example/device".into(),
            verification_uri_complete: Some(format!("http://cloud.example/device?c={n}")),
            expires_at: now + expires_in,
        }
    }

    /// Drives a request with the fake clock `now` and a scripted cloud; returns the outcome, the
    /// codes issued, mails to the administrator, and poll times.
    struct Run {
        reg: Registration,
        now: i64,
        mails: Vec<(String, bool)>,
        polls: Vec<i64>,
        code_requests: u32,
        told: u32,
    }

    impl Run {
        fn new(retries: u32) -> Run {
            Run {
                reg: Registration::new(1, "bob@example.com", "ann@example.com", retries, 1000),
                now: 1000,
                mails: Vec::new(),
                polls: Vec::new(),
                code_requests: 0,
                told: 0,
            }
        }

        /// Steps until done or `max` steps; `cloud(poll_index, code_index)` answers each poll.
        fn drive(&mut self, expires_in: i64, mut cloud: impl FnMut(usize, u32) -> Event) {
            for _ in 0..10_000 {
                match self.reg.next_action(self.now) {
                    Action::Done => return,
                    Action::WaitUntil(t) => {
                        assert!(t > self.now, "waits for the past");
                        self.now = t;
                    }
                    Action::RequestCode => {
                        self.code_requests += 1;
                        let c = code(self.code_requests, self.now, expires_in);
                        assert!(self.reg.apply(
                            Event::CodeIssued {
                                code: c,
                                interval: Some(5)
                            },
                            self.now
                        ));
                    }
                    Action::MailAdmin { replaces } => {
                        let uc = self.reg.code.as_ref().unwrap().user_code.clone();
                        self.reg.apply(Event::AdminMailing, self.now);
                        self.mails.push((uc, replaces));
                    }
                    Action::Poll => {
                        self.polls.push(self.now);
                        let e = if self.now >= self.reg.code.as_ref().unwrap().expires_at {
                            Event::Expired
                        } else {
                            cloud(self.polls.len() - 1, self.reg.codes_issued)
                        };
                        self.reg.apply(e, self.now);
                    }
                    Action::TellUser => {
                        self.told += 1;
                        assert!(self.reg.apply(Event::UserTold, self.now));
                    }
                }
            }
            panic!("did not finish");
        }
    }

    #[test]
    fn vector_1_approve_on_first_code() {
        let mut r = Run::new(3);
        r.drive(600, |i, _| {
            if i < 3 {
                Event::Pending
            } else {
                Event::Approved
            }
        });
        assert_eq!(r.reg.status, Status::Completed);
        assert_eq!(r.code_requests, 1);
        assert_eq!(r.mails, vec![("CODE-0001".to_string(), false)]);
        assert_eq!(r.told, 1);
        // Polls honour the interval.
        assert!(r.polls.windows(2).all(|w| w[1] - w[0] >= 5));
        assert_eq!(
            r.reg.code.as_ref().unwrap().device_code,
            "",
            "secret dropped"
        );
    }

    #[test]
    fn vector_2_expiry_with_three_retries_fails_after_four_codes() {
        let mut r = Run::new(3);
        r.drive(30, |_, _| Event::Pending);
        assert_eq!(r.reg.status.describe(), "failed: code expired 4 times");
        assert_eq!(r.code_requests, 4);
        let codes: Vec<&str> = r.mails.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(codes, ["CODE-0001", "CODE-0002", "CODE-0003", "CODE-0004"]);
        let replaces: Vec<bool> = r.mails.iter().map(|(_, x)| *x).collect();
        assert_eq!(replaces, [false, true, true, true]);
        assert_eq!(r.told, 1);
    }

    #[test]
    fn vector_3_expiry_then_approval() {
        let mut r = Run::new(3);
        r.drive(30, |_, k| {
            if k == 2 {
                Event::Approved
            } else {
                Event::Pending
            }
        });
        assert_eq!(r.reg.status, Status::Completed);
        assert_eq!(r.code_requests, 2);
        assert_eq!(r.mails.len(), 2);
        assert_eq!(r.told, 1);
    }

    #[test]
    fn vector_4_slow_down_adds_five_seconds_from_then_on() {
        let mut r = Run::new(3);
        r.drive(600, |i, _| match i {
            0 | 1 => Event::Pending,
            2 => Event::SlowDown { interval: None },
            3..=6 => Event::Pending,
            _ => Event::Approved,
        });
        assert_eq!(r.reg.status, Status::Completed);
        let gaps: Vec<i64> = r.polls.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps, [5, 5, 10, 10, 10, 10, 10]);
    }

    #[test]
    fn two_slow_downs_add_up() {
        let mut reg = Registration::new(1, "u@x.example", "a@x.example", 2, 0);
        reg.apply(
            Event::CodeIssued {
                code: code(1, 0, 900),
                interval: None,
            },
            0,
        );
        assert_eq!(reg.interval, 5, "RFC 8628 default");
        reg.apply(Event::SlowDown { interval: None }, 5);
        reg.apply(Event::SlowDown { interval: None }, 15);
        assert_eq!(reg.interval, 15);
        assert_eq!(reg.next_attempt_at, 30);
    }

    /// A server whose interval ran ahead of ours (another client polled the same code) says so
    /// with its slow_down: we take its interval, or every later poll would be too early again.
    #[test]
    fn slow_down_catches_up_with_the_servers_interval() {
        let mut reg = Registration::new(1, "u@x.example", "a@x.example", 2, 0);
        reg.apply(
            Event::CodeIssued {
                code: code(1, 0, 900),
                interval: Some(2),
            },
            0,
        );
        reg.apply(Event::SlowDown { interval: Some(12) }, 2);
        assert_eq!(reg.interval, 12);
        assert_eq!(reg.next_attempt_at, 14);
        // A server interval behind ours never shortens it: +5 s still applies.
        reg.apply(Event::SlowDown { interval: Some(3) }, 14);
        assert_eq!(reg.interval, 17);
    }

    #[test]
    fn access_denied_is_the_one_outcome() {
        let mut r = Run::new(3);
        r.drive(600, |_, _| Event::AccessDenied);
        assert_eq!(r.reg.status, Status::Denied);
        assert_eq!(r.told, 1);
        // Nothing moves a finished request any more.
        assert!(!r.reg.apply(Event::Approved, r.now));
        assert!(!r.reg.apply(Event::UserTold, r.now));
        assert_eq!(r.reg.status, Status::Denied);
        assert_eq!(r.reg.next_action(r.now), Action::Done);
    }

    #[test]
    fn unreachable_cloud_backs_off_then_fails() {
        let mut reg = Registration::new(1, "u@x.example", "a@x.example", 2, 0);
        let mut now = 0;
        let mut gaps = Vec::new();
        loop {
            match reg.next_action(now) {
                Action::RequestCode => {
                    reg.apply(Event::Unreachable("connection refused".into()), now);
                }
                Action::WaitUntil(t) => {
                    gaps.push(t - now);
                    now = t;
                }
                Action::TellUser => break,
                a => panic!("unexpected {a:?}"),
            }
        }
        assert_eq!(gaps.len() as u32, MAX_CONNECTION_FAILURES - 1);
        assert!(gaps.windows(2).all(|w| w[1] >= w[0]), "{gaps:?}");
        assert!(gaps.iter().all(|g| *g <= MAX_BACKOFF_SECONDS));
        assert_eq!(
            reg.status.describe(),
            "failed: the cloud cannot be reached (connection refused)"
        );
    }

    #[test]
    fn vector_8_a_resumed_request_polls_the_same_code_and_is_not_mailed_again() {
        let mut reg = Registration::new(7, "u@x.example", "a@x.example", 3, 0);
        reg.apply(
            Event::CodeIssued {
                code: code(1, 0, 600),
                interval: Some(5),
            },
            0,
        );
        assert_eq!(reg.next_action(0), Action::MailAdmin { replaces: false });
        reg.apply(Event::AdminMailing, 0);
        // "Restart": the record goes through its stored form and comes back.
        let stored = serde_json::to_string(&reg).unwrap();
        let resumed: Registration = serde_json::from_str(&stored).unwrap();
        assert_eq!(resumed, reg);
        assert_eq!(resumed.next_action(100), Action::Poll);
        assert_eq!(resumed.code.as_ref().unwrap().device_code, "device-1");
        // A restart after the code died meanwhile: the poll answers expired, a new code comes.
        let mut late = resumed.clone();
        assert_eq!(late.next_action(700), Action::Poll);
        late.apply(Event::Expired, 700);
        assert_eq!(late.next_action(700), Action::RequestCode);
    }

    #[test]
    fn a_failed_admin_mail_ends_the_request_with_the_reason() {
        let mut reg = Registration::new(1, "u@x.example", "a@x.example", 3, 0);
        reg.apply(
            Event::CodeIssued {
                code: code(1, 0, 600),
                interval: Some(5),
            },
            0,
        );
        reg.apply(Event::AdminMailing, 0);
        reg.apply(Event::AdminMailFailed("SMTP refused".into()), 0);
        assert_eq!(
            reg.status.describe(),
            "failed: cannot tell the administrator: SMTP refused"
        );
        assert_eq!(reg.next_action(0), Action::TellUser);
    }

    #[test]
    fn hostile_intervals_are_clamped() {
        let mut reg = Registration::new(1, "u@x.example", "a@x.example", 3, 0);
        reg.apply(
            Event::CodeIssued {
                code: code(1, 0, 600),
                interval: Some(i64::MAX / 2),
            },
            0,
        );
        assert_eq!(reg.interval, MAX_INTERVAL_SECONDS);
        reg.apply(Event::SlowDown { interval: None }, 10);
        assert_eq!(reg.interval, MAX_INTERVAL_SECONDS);
    }

    #[test]
    fn vector_5_already_registered_waits_for_the_grant() {
        let mut reg = Registration::new(1, "u@x.example", "a@x.example", 3, 0);
        assert_eq!(reg.next_action(0), Action::RequestCode);
        reg.apply(
            Event::AccessRequested(AccessRequest {
                id: "r1".into(),
                url: "http://cloud.example/admin".into(),
                expires_at: 1000,
            }),
            0,
        );
        assert_eq!(reg.next_action(0), Action::MailAdmin { replaces: false });
        reg.apply(Event::AdminMailing, 0);
        assert_eq!(reg.next_action(0), Action::WaitUntil(WAIT_POLL_SECONDS));
        assert_eq!(reg.next_action(WAIT_POLL_SECONDS), Action::Poll);
        reg.apply(Event::Pending, WAIT_POLL_SECONDS);
        assert_eq!(reg.status, Status::WaitingForAdmin);
        reg.apply(Event::Approved, 2 * WAIT_POLL_SECONDS);
        assert_eq!(reg.status, Status::Completed);
    }

    #[test]
    fn vector_6_completion_waits_for_enrolment() {
        let mut r = Run::new(3);
        r.drive(600, |i, _| {
            if i < 4 {
                Event::AwaitingEnrolment
            } else {
                Event::Approved
            }
        });
        assert_eq!(r.reg.status, Status::Completed);
        assert_eq!(r.mails.len(), 1, "the administrator is not mailed again");
        assert_eq!(r.code_requests, 1);

        let mut reg = Registration::new(1, "u@x.example", "a@x.example", 3, 0);
        reg.apply(
            Event::CodeIssued {
                code: code(1, 0, 60),
                interval: Some(5),
            },
            0,
        );
        reg.apply(Event::AdminMailing, 0);
        reg.apply(Event::AwaitingEnrolment, 5);
        assert_eq!(
            reg.status.describe(),
            "approved; waiting for the user to enrol"
        );
        assert_eq!(reg.code.as_ref().unwrap().device_code, "");
        // The code's expiry no longer matters; the enrolment deadline does.
        assert_eq!(reg.next_action(100), Action::Poll);
        reg.apply(Event::AwaitingEnrolment, 100);
        assert_eq!(reg.status, Status::AwaitingEnrolment);
        reg.apply(Event::AwaitingEnrolment, 5 + ENROLMENT_WAIT_SECONDS);
        assert_eq!(
            reg.status.describe(),
            "failed: the user did not enrol in time"
        );
    }

    #[test]
    fn a_deferred_request_asks_again_later_without_counting_a_code() {
        let mut reg = Registration::new(2, "c@x.example", "a@x.example", 3, 0);
        assert_eq!(reg.next_action(0), Action::RequestCode);
        reg.apply(Event::Deferred, 0);
        assert_eq!(reg.next_action(0), Action::WaitUntil(WAIT_POLL_SECONDS));
        assert_eq!(reg.codes_issued, 0);
        assert_eq!(reg.status, Status::Pending);
        assert_eq!(reg.next_action(WAIT_POLL_SECONDS), Action::RequestCode);
    }
}
