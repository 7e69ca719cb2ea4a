//! The job state machine (RFC 8011 §5.3.7, PWG 5100.11 for Create-Job/Close-Job): the only code that
//! decides a job's next state. `JobStatus::apply(event, now)` is pure; the spool persists its result.
//! The cloud's Infrastructure Printer jobs (PWG 5100.18) use the same states: [`infra_transition`]
//! computes their next state and reasons, and the cloud's store persists them.

use std::fmt;

/// job-state (RFC 8011 §5.3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobState {
    Pending = 3,
    PendingHeld = 4,
    Processing = 5,
    ProcessingStopped = 6,
    Canceled = 7,
    Aborted = 8,
    Completed = 9,
}

impl JobState {
    pub fn from_i32(v: i32) -> Option<JobState> {
        Some(match v {
            3 => JobState::Pending,
            4 => JobState::PendingHeld,
            5 => JobState::Processing,
            6 => JobState::ProcessingStopped,
            7 => JobState::Canceled,
            8 => JobState::Aborted,
            9 => JobState::Completed,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Canceled | JobState::Aborted | JobState::Completed
        )
    }

    pub fn keyword(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::PendingHeld => "pending-held",
            JobState::Processing => "processing",
            JobState::ProcessingStopped => "processing-stopped",
            JobState::Canceled => "canceled",
            JobState::Aborted => "aborted",
            JobState::Completed => "completed",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// Something that happened to a job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    /// A document arrived; `last` ends the job's document list (Print-Job is always last).
    DocumentReceived { last: bool },
    /// Close-Job, or Send-Document with last-document=true and no data (RFC 8011 §4.3.1).
    Closed,
    /// Hold-Job, or a job created with job-hold-until other than no-hold, or Hold-New-Jobs.
    Hold { reason: &'static str },
    /// Release-Job / Release-Held-New-Jobs, or a held-for-release job released with its PIN or
    /// by its owner (issue 18, `spool::release`).
    Release,
    /// A job held for release was not released within `release_expire_seconds`: canceled, never
    /// printed, with job-canceled-at-device and `message` saying why (docs/release.md).
    ReleaseExpired { message: String },
    /// The worker took the job.
    StartProcessing,
    /// A page was produced.
    Progress { impressions: u32, sheets: u32 },
    /// The job's documents were converted: `pages` document pages, copies included (what
    /// job-pages-completed reaches when the job completes).
    Rendered { pages: u32 },
    /// The output device finished the job.
    Completed,
    /// The job cannot be printed (bad document, device refused for good).
    Aborted {
        reason: &'static str,
        message: String,
    },
    /// Cancel-Job and friends. `by_operator` selects the job-state-reasons keyword.
    Cancel { by_operator: bool },
    /// The printer stopped under a processing job (Pause-Printer) or the server restarted during it:
    /// the job goes back to pending and its document starts again.
    Requeue,
    /// The server stopped while the job was being sent to a device that cannot be asked what it
    /// received (AppSocket): the device may hold part of it, so the job is never sent again on
    /// its own. It waits held (job-held-for-review, PWG 5100.7) until someone releases or
    /// cancels it; `message` says why.
    Interrupted { message: String },
    /// Restart-Job / Reprocess-Job of a terminal job (RFC 8011 §4.3.7, deprecated but still required
    /// by PWG 5100.12): it becomes pending again.
    Restart,
}

/// What the caller must do after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The worker may have something new to print.
    WakeWorker,
    /// The worker must stop working on this job (it was canceled while processing).
    StopProcessing,
}

/// Why an event does not apply: maps to client-error-not-possible (RFC 8011 §4.3.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job is {state} and cannot be {action}")]
pub struct TransitionError {
    pub state: JobState,
    pub action: &'static str,
}

/// The mutable part of a job: everything the state machine decides.
#[derive(Debug, Clone, PartialEq)]
pub struct JobStatus {
    pub state: JobState,
    pub reasons: Vec<String>,
    pub message: Option<String>,
    /// True while documents may still arrive (Create-Job without the last document yet).
    pub incoming: bool,
    pub time_processing: Option<i64>,
    pub time_completed: Option<i64>,
    pub impressions_completed: u32,
    pub sheets_completed: u32,
    /// Document pages to print, copies included, once the job was converted (0: not known yet,
    /// or the device took the documents as they are).
    pub pages: u32,
    /// job-pages-completed (PWG 5100.7 §6.7.4): document pages printed, copies included.
    pub pages_completed: u32,
    /// Times the job was started after an interruption; shown as job-state-reasons detail.
    pub restarts: u32,
}

impl JobStatus {
    /// A new job: pending with job-incoming while documents are expected (PWG 5100.11 §4.2),
    /// or pending-held when it was created held.
    pub fn new(incoming: bool, hold: Option<&'static str>) -> JobStatus {
        let mut s = JobStatus {
            state: JobState::Pending,
            reasons: Vec::new(),
            message: None,
            incoming,
            time_processing: None,
            time_completed: None,
            impressions_completed: 0,
            sheets_completed: 0,
            pages: 0,
            pages_completed: 0,
            restarts: 0,
        };
        if let Some(reason) = hold {
            s.state = JobState::PendingHeld;
            s.reasons.push(reason.to_string());
        }
        s.fix_reasons();
        s
    }

    /// Whether the worker may start this job now.
    pub fn is_printable(&self) -> bool {
        self.state == JobState::Pending && !self.incoming
    }

    pub fn apply(&mut self, event: JobEvent, now: i64) -> Result<Vec<Effect>, TransitionError> {
        use JobState::*;
        let err = |state, action| Err(TransitionError { state, action });
        let mut effects = Vec::new();
        match event {
            JobEvent::DocumentReceived { last } => {
                if !self.incoming {
                    return err(self.state, "given another document");
                }
                if last {
                    self.incoming = false;
                    effects.push(Effect::WakeWorker);
                }
            }
            JobEvent::Closed => {
                if !self.incoming {
                    return err(self.state, "closed");
                }
                self.incoming = false;
                effects.push(Effect::WakeWorker);
            }
            JobEvent::Hold { reason } => match self.state {
                Pending | PendingHeld => {
                    self.state = PendingHeld;
                    self.reasons
                        .retain(|r| !r.starts_with("job-hold-until") && r != "job-held-by-user");
                    self.reasons.push(reason.to_string());
                }
                s => return err(s, "held"),
            },
            JobEvent::Release => match self.state {
                PendingHeld => {
                    self.state = Pending;
                    // The message of a job held for review, or the assigned PIN of one held for
                    // its password (issue 18), no longer applies.
                    if self
                        .reasons
                        .iter()
                        .any(|r| r == "job-held-for-review" || r == "job-password-wait")
                    {
                        self.message = None;
                    }
                    self.reasons.retain(|r| {
                        !matches!(
                            r.as_str(),
                            "job-hold-until-specified"
                                | "job-held-by-user"
                                | "job-held-for-review"
                                | "job-password-wait"
                        ) && r != "printer-stopped-partly"
                    });
                    effects.push(Effect::WakeWorker);
                }
                s => return err(s, "released"),
            },
            JobEvent::StartProcessing => match self.state {
                Pending if !self.incoming => {
                    self.state = Processing;
                    self.time_processing = Some(now);
                    self.reasons.retain(|r| r == "job-restartable");
                    self.reasons.push("job-printing".into());
                }
                s => return err(s, "started"),
            },
            JobEvent::Progress {
                impressions,
                sheets,
            } => {
                if self.state != Processing {
                    return err(self.state, "advanced");
                }
                self.impressions_completed = impressions;
                self.sheets_completed = sheets;
            }
            JobEvent::Rendered { pages } => {
                if self.state != Processing {
                    return err(self.state, "converted");
                }
                self.pages = pages;
            }
            JobEvent::Completed => match self.state {
                Processing => {
                    self.state = Completed;
                    self.pages_completed = self.pages;
                    self.time_completed = Some(now);
                    self.reasons = vec!["job-completed-successfully".into()];
                    self.message = None;
                }
                s => return err(s, "completed"),
            },
            JobEvent::Aborted { reason, message } => {
                if self.state.is_terminal() {
                    return err(self.state, "aborted");
                }
                self.state = Aborted;
                self.incoming = false;
                self.time_completed = Some(now);
                self.reasons = vec![reason.to_string(), "job-aborted-by-system".into()];
                self.reasons.dedup();
                self.message = Some(message);
            }
            JobEvent::Cancel { by_operator } => {
                if self.state.is_terminal() {
                    return err(self.state, "canceled");
                }
                if self.state == Processing || self.state == ProcessingStopped {
                    effects.push(Effect::StopProcessing);
                }
                self.state = Canceled;
                self.incoming = false;
                self.time_completed = Some(now);
                self.reasons = vec![if by_operator {
                    "job-canceled-by-operator".into()
                } else {
                    "job-canceled-by-user".into()
                }];
                self.message = None;
            }
            JobEvent::ReleaseExpired { message } => match self.state {
                PendingHeld => {
                    self.state = Canceled;
                    self.incoming = false;
                    self.time_completed = Some(now);
                    self.reasons = vec!["job-canceled-at-device".into()];
                    self.message = Some(message);
                }
                s => return err(s, "expired"),
            },
            JobEvent::Requeue => match self.state {
                Processing | ProcessingStopped => {
                    self.state = Pending;
                    self.restarts += 1;
                    self.impressions_completed = 0;
                    self.sheets_completed = 0;
                    self.pages_completed = 0;
                    self.reasons.retain(|r| r != "job-printing");
                    effects.push(Effect::WakeWorker);
                }
                s => return err(s, "requeued"),
            },
            JobEvent::Interrupted { message } => match self.state {
                Processing | ProcessingStopped => {
                    self.state = PendingHeld;
                    self.reasons.retain(|r| r != "job-printing");
                    self.reasons.push("job-held-for-review".into());
                    self.message = Some(message);
                }
                s => return err(s, "interrupted"),
            },
            JobEvent::Restart => match self.state {
                Canceled | Aborted | Completed => {
                    self.state = Pending;
                    self.incoming = false;
                    self.time_processing = None;
                    self.time_completed = None;
                    self.impressions_completed = 0;
                    self.sheets_completed = 0;
                    self.pages_completed = 0;
                    self.reasons.clear();
                    self.message = None;
                    effects.push(Effect::WakeWorker);
                }
                s => return err(s, "restarted"),
            },
        }
        self.fix_reasons();
        Ok(effects)
    }

    /// Keeps job-state-reasons consistent with the state: job-incoming while documents may come,
    /// and never an empty set (RFC 8011 §5.3.8: "none").
    fn fix_reasons(&mut self) {
        self.reasons.retain(|r| r != "none" && r != "job-incoming");
        if self.incoming && !self.state.is_terminal() {
            self.reasons.insert(0, "job-incoming".into());
        }
        if self.reasons.is_empty() {
            self.reasons.push("none".into());
        }
    }
}

// ---- the cloud's INFRA jobs (PWG 5100.18) ------------------------------------------------------

/// job-state-reasons of an Infrastructure Printer's jobs (PWG 5100.18 §5, RFC 8011 §5.3.8):
/// the one list both the cloud's operations and its store use.
pub mod infra_reasons {
    /// Created with Create-Job, documents still to come (PWG 5100.11 §4.2).
    pub const INCOMING: &str = "job-incoming";
    /// Complete and waiting for an output device to fetch it (PWG 5100.18 §5.3).
    pub const FETCHABLE: &str = "job-fetchable";
    /// Acknowledged by an output device (output-device-assigned is set), not yet reported on.
    pub const QUEUED: &str = "job-queued";
    pub const CANCELED_BY_USER: &str = "job-canceled-by-user";
    /// What a report from the output device means when it gives no reasons of its own.
    pub const PRINTING: &str = "job-printing";
    pub const COMPLETED: &str = "job-completed-successfully";
    pub const ABORTED: &str = "aborted-by-system";
    pub const CANCELED_AT_DEVICE: &str = "job-canceled-at-device";
    /// The documents of a Create-Job never all arrived (PWG 5100.7 job-state-reasons).
    pub const DOCUMENTS_TIMED_OUT: &str = "job-data-insufficient";
    pub const NONE: &str = "none";
}

/// Something that happens to a job of the cloud's Infrastructure Printer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfraEvent {
    /// Print-Job (with its document) or Create-Job (without).
    Created { complete: bool },
    /// Send-Document; `last` ends the documents (Close-Job is a last one without data).
    DocumentAdded { last: bool },
    /// Acknowledge-Job: an output device took the job (PWG 5100.18 §6.2), exactly once.
    Acknowledged,
    /// Update-Job-Status: the assigned output device's job state (checked by
    /// [`infra_device_state`]) and, when it gave any, its reasons (PWG 5100.18 §6.10).
    DeviceReport {
        state: JobState,
        reasons: Option<String>,
    },
    /// Cancel-Job (or Cancel-My-Jobs) by the owner.
    Canceled,
    /// The output device went away (deregistered, or silent too long): fetchable again.
    Released,
    /// Created with Create-Job, its last document never came within the cloud's time-out
    /// (`infra.incomplete_job_seconds`): aborted, never printed (issue 13, "Exactly once").
    DocumentsTimedOut,
}

/// A job's state after an [`InfraEvent`], to persist, and the event subscribers get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfraTransition {
    pub state: JobState,
    /// job-state-reasons, space-separated as stored.
    pub reasons: String,
    /// Whether the output device's job state (output-device-job-state) is this state.
    pub device_state: bool,
    /// The notify-subscribed-event (RFC 3995 §5.3.3.4; job-fetchable is PWG 5100.18's).
    pub notify: Option<&'static str>,
}

impl InfraTransition {
    fn new(state: JobState, reasons: impl Into<String>, notify: Option<&'static str>) -> Self {
        InfraTransition {
            state,
            reasons: reasons.into(),
            device_state: false,
            notify,
        }
    }
}

/// The states a job of an output device that went away may be in; it becomes fetchable again.
pub const INFRA_RELEASABLE: [JobState; 3] = [
    JobState::Pending,
    JobState::Processing,
    JobState::ProcessingStopped,
];

/// What an Infrastructure Printer's job becomes after `event` (PWG 5100.18 §5; pending with
/// job-incoming, then job-fetchable, job-queued once assigned, then the output device's state).
/// Pure: the store persists the result with a conditional UPDATE whose condition is the
/// event's precondition, so two instances cannot both apply it.
pub fn infra_transition(event: &InfraEvent) -> InfraTransition {
    use infra_reasons as r;
    match event {
        InfraEvent::Created { complete: true } | InfraEvent::DocumentAdded { last: true } => {
            InfraTransition::new(JobState::Pending, r::FETCHABLE, Some("job-fetchable"))
        }
        InfraEvent::Created { complete: false } => {
            InfraTransition::new(JobState::Pending, r::INCOMING, None)
        }
        InfraEvent::DocumentAdded { last: false } => {
            InfraTransition::new(JobState::Pending, r::INCOMING, None)
        }
        InfraEvent::Acknowledged => InfraTransition::new(JobState::Pending, r::QUEUED, None),
        InfraEvent::Canceled => InfraTransition::new(
            JobState::Canceled,
            r::CANCELED_BY_USER,
            Some("job-completed"),
        ),
        InfraEvent::Released => {
            InfraTransition::new(JobState::Pending, r::FETCHABLE, Some("job-fetchable"))
        }
        InfraEvent::DocumentsTimedOut => InfraTransition::new(
            JobState::Aborted,
            format!("{} {}", r::ABORTED, r::DOCUMENTS_TIMED_OUT),
            Some("job-completed"),
        ),
        InfraEvent::DeviceReport { state, reasons } => {
            let state = *state;
            let reasons = reasons.clone().unwrap_or_else(|| {
                match state {
                    JobState::Completed => r::COMPLETED,
                    JobState::Processing => r::PRINTING,
                    JobState::Aborted => r::ABORTED,
                    JobState::Canceled => r::CANCELED_AT_DEVICE,
                    _ => r::NONE,
                }
                .to_string()
            });
            let notify = if state.is_terminal() {
                "job-completed"
            } else {
                "job-state-changed"
            };
            InfraTransition {
                device_state: true,
                ..InfraTransition::new(state, reasons, Some(notify))
            }
        }
    }
}

/// The job state an output device reports (output-device-job-state, PWG 5100.18 §6.10), from
/// the network: any job state but pending-held, which is the Infrastructure Printer's business.
pub fn infra_device_state(value: i32) -> Result<JobState, InfraReportError> {
    JobState::from_i32(value)
        .filter(|s| *s != JobState::PendingHeld)
        .ok_or(InfraReportError::StateOutOfRange(value))
}

/// Why an output device's report cannot apply (client-error-bad-request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfraReportError {
    #[error("output-device-job-state {0} is out of range")]
    StateOutOfRange(i32),
}

/// Whether a job of an Infrastructure Printer may be fetched by any output device: complete,
/// pending, not yet assigned (PWG 5100.18 §5.3, which-jobs=fetchable) and its owner's job
/// connection on the printer open (`connected`: specs/groups.md, a printer that took part in
/// groups serves an account's jobs only while that account is IN on it).
pub fn infra_fetchable(state: JobState, complete: bool, assigned: bool, connected: bool) -> bool {
    state == JobState::Pending && complete && !assigned && connected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print_job_lifecycle() {
        let mut s = JobStatus::new(true, None);
        assert_eq!(s.reasons, ["job-incoming"]);
        assert!(!s.is_printable());
        assert_eq!(
            s.apply(JobEvent::DocumentReceived { last: true }, 1)
                .unwrap(),
            [Effect::WakeWorker]
        );
        assert!(s.is_printable());
        s.apply(JobEvent::StartProcessing, 2).unwrap();
        assert_eq!(s.state, JobState::Processing);
        s.apply(JobEvent::Completed, 3).unwrap();
        assert_eq!(s.state, JobState::Completed);
        assert_eq!(s.time_completed, Some(3));
        assert!(s.apply(JobEvent::Cancel { by_operator: false }, 4).is_err());
    }

    /// job-pages-completed reaches the converted page count when the job completes, not before,
    /// and starts again from 0 when the job is printed again.
    #[test]
    fn pages_complete_with_the_job() {
        let mut s = JobStatus::new(false, None);
        assert!(s.apply(JobEvent::Rendered { pages: 3 }, 1).is_err());
        s.apply(JobEvent::StartProcessing, 1).unwrap();
        s.apply(JobEvent::Rendered { pages: 3 }, 2).unwrap();
        assert_eq!((s.pages, s.pages_completed), (3, 0));
        s.apply(JobEvent::Requeue, 3).unwrap();
        s.apply(JobEvent::StartProcessing, 4).unwrap();
        assert_eq!((s.pages, s.pages_completed), (3, 0));
        s.apply(JobEvent::Completed, 5).unwrap();
        assert_eq!(s.pages_completed, 3);
        s.apply(JobEvent::Restart, 6).unwrap();
        assert_eq!(s.pages_completed, 0);
    }

    #[test]
    fn create_job_waits_for_close() {
        let mut s = JobStatus::new(true, None);
        s.apply(JobEvent::DocumentReceived { last: false }, 1)
            .unwrap();
        assert!(!s.is_printable());
        s.apply(JobEvent::Closed, 2).unwrap();
        assert!(s.is_printable());
        assert!(s.apply(JobEvent::Closed, 3).is_err());
    }

    #[test]
    fn hold_release_and_cancel_while_processing() {
        let mut s = JobStatus::new(false, Some("job-hold-until-specified"));
        assert_eq!(s.state, JobState::PendingHeld);
        assert!(!s.is_printable());
        s.apply(JobEvent::Release, 1).unwrap();
        assert!(s.is_printable());
        s.apply(JobEvent::StartProcessing, 2).unwrap();
        let fx = s.apply(JobEvent::Cancel { by_operator: true }, 3).unwrap();
        assert_eq!(fx, [Effect::StopProcessing]);
        assert_eq!(s.reasons, ["job-canceled-by-operator"]);
    }

    #[test]
    fn an_interrupted_transfer_waits_held_until_released() {
        let mut s = JobStatus::new(false, None);
        s.apply(JobEvent::StartProcessing, 1).unwrap();
        s.apply(
            JobEvent::Interrupted {
                message: "may hold part".into(),
            },
            2,
        )
        .unwrap();
        assert_eq!(s.state, JobState::PendingHeld);
        assert_eq!(s.reasons, ["job-held-for-review"]);
        assert!(!s.is_printable(), "never sent again on its own");
        assert_eq!(s.message.as_deref(), Some("may hold part"));
        assert_eq!(s.apply(JobEvent::Release, 3).unwrap(), [Effect::WakeWorker]);
        assert!(s.is_printable());
        assert_eq!(s.message, None);
        assert!(s
            .apply(
                JobEvent::Interrupted {
                    message: String::new()
                },
                4
            )
            .is_err());
    }

    #[test]
    fn requeue_after_crash_restarts_the_document() {
        let mut s = JobStatus::new(false, None);
        s.apply(JobEvent::StartProcessing, 1).unwrap();
        s.apply(
            JobEvent::Progress {
                impressions: 3,
                sheets: 3,
            },
            2,
        )
        .unwrap();
        s.apply(JobEvent::Requeue, 3).unwrap();
        assert_eq!(s.state, JobState::Pending);
        assert_eq!(s.impressions_completed, 0);
        assert_eq!(s.restarts, 1);
        assert!(s.is_printable());
    }

    #[test]
    fn infra_jobs_go_from_incoming_to_fetchable_to_the_device_state() {
        let t = infra_transition(&InfraEvent::Created { complete: false });
        assert_eq!(
            (t.state, t.reasons.as_str(), t.notify),
            (JobState::Pending, "job-incoming", None)
        );
        let t = infra_transition(&InfraEvent::DocumentAdded { last: true });
        assert_eq!(
            (t.reasons.as_str(), t.notify),
            ("job-fetchable", Some("job-fetchable"))
        );
        let t = infra_transition(&InfraEvent::Acknowledged);
        assert_eq!(t.reasons, "job-queued");
        let t = infra_transition(&InfraEvent::DocumentsTimedOut);
        assert_eq!(
            (t.state, t.reasons.as_str(), t.notify),
            (
                JobState::Aborted,
                "aborted-by-system job-data-insufficient",
                Some("job-completed")
            )
        );
        let t = infra_transition(&InfraEvent::DeviceReport {
            state: JobState::Processing,
            reasons: None,
        });
        assert_eq!(
            (t.state, t.reasons.as_str(), t.notify, t.device_state),
            (
                JobState::Processing,
                "job-printing",
                Some("job-state-changed"),
                true
            )
        );
        let t = infra_transition(&InfraEvent::DeviceReport {
            state: JobState::Completed,
            reasons: Some("job-completed-with-warnings".into()),
        });
        assert_eq!(
            (t.state, t.reasons.as_str(), t.notify),
            (
                JobState::Completed,
                "job-completed-with-warnings",
                Some("job-completed")
            )
        );
        for bad in [4, 2, 10, -1] {
            assert_eq!(
                infra_device_state(bad),
                Err(InfraReportError::StateOutOfRange(bad))
            );
        }
        assert_eq!(infra_device_state(6), Ok(JobState::ProcessingStopped));
        let t = infra_transition(&InfraEvent::Canceled);
        assert_eq!(
            (t.state, t.notify),
            (JobState::Canceled, Some("job-completed"))
        );
        let t = infra_transition(&InfraEvent::Released);
        assert_eq!(
            (t.state, t.reasons.as_str()),
            (JobState::Pending, "job-fetchable")
        );
        assert!(infra_fetchable(JobState::Pending, true, false, true));
        assert!(!infra_fetchable(JobState::Pending, true, false, false));
        assert!(!infra_fetchable(JobState::Pending, true, true, true));
        assert!(!infra_fetchable(JobState::Pending, false, false, true));
        assert!(!infra_fetchable(JobState::Processing, true, false, true));
    }
}
