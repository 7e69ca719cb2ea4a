//! The worker: takes printable jobs oldest first, hands them to the output device and records the
//! outcome through [`Spool::transition`]. One worker per queue, so jobs print in order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Attempt, Job, Spool};
use crate::device::{Device, DeviceDocument, DeviceError, DeviceJob};
use crate::model::job::{JobEvent, JobState};

/// Runs until `shutdown` becomes true. `paused` true stops taking new jobs (Pause-Printer).
pub async fn run(
    spool: Arc<Spool>,
    device: Arc<dyn Device>,
    mut paused: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        if *shutdown.borrow() {
            return;
        }
        if !*paused.borrow() {
            if let Some(job) = spool.next_printable() {
                match attempt(&spool, device.as_ref(), &job).await {
                    Outcome::Done => backoff = Duration::from_secs(1),
                    Outcome::RetryLater => {
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = shutdown.changed() => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                    }
                }
                continue;
            }
        }
        tokio::select! {
            _ = spool.wait_for_work() => {}
            _ = paused.changed() => {}
            _ = shutdown.changed() => {}
        }
    }
}

enum Outcome {
    Done,
    RetryLater,
}

/// One attempt at a job, counted on disk before it starts (see [`Spool::begin_attempt`]): a job
/// that was being processed each of the last `max_processing_crashes` times the process died is
/// aborted here instead of being processed again.
async fn attempt(spool: &Arc<Spool>, device: &dyn Device, job: &Job) -> Outcome {
    let id = job.id;
    match spool.begin_attempt(id).await {
        Ok(Attempt::Proceed) => {}
        Ok(Attempt::Poison { crashes }) => {
            tracing::error!(
                job = id,
                crashes,
                "printbridge stopped while processing this job {crashes} times in a row; aborting it"
            );
            let event = JobEvent::Aborted {
                reason: "job-aborted-by-system",
                message: format!(
                    "The printer stopped {crashes} times in a row while processing this job, so it \
                     was not tried again; the jobs behind it can print. The administrator can find \
                     the cause in the printer's log."
                ),
            };
            let _ = spool.transition(id, event).await;
            return Outcome::Done;
        }
        Err(e) => {
            tracing::error!(job = id, "cannot record the start of an attempt: {e}");
            return Outcome::RetryLater;
        }
    }
    let outcome = process(spool, device, job).await;
    if let Err(e) = spool.end_attempt(id).await {
        tracing::error!(job = id, "cannot record the end of an attempt: {e}");
    }
    outcome
}

async fn process(spool: &Arc<Spool>, device: &dyn Device, job: &Job) -> Outcome {
    let id = job.id;
    let job = match spool.transition(id, JobEvent::StartProcessing).await {
        Ok(j) => j,
        // Canceled or held between the pick and now: nothing to do.
        Err(super::SpoolError::Transition(_)) => return Outcome::Done,
        Err(e) => {
            tracing::error!(job = id, "cannot start job: {e}");
            return Outcome::RetryLater;
        }
    };
    // Convert first (issue 4): documents that cannot be printed abort the job here, with the
    // job-state-reasons keyword saying why.
    let rendered = if device.wants_rendered_pdf() {
        match super::render::render(spool, &job, !device.makes_monochrome_itself()).await {
            Ok(path) => Some(path),
            Err(super::render::RenderFailure::Job(e)) => {
                tracing::warn!(job = id, "cannot render the job: {e}");
                let event = JobEvent::Aborted {
                    reason: e.job_state_reason(),
                    message: e.user_message(),
                };
                let _ = spool.transition(id, event).await;
                return Outcome::Done;
            }
            Err(e) => {
                tracing::warn!(job = id, "{e}; will retry");
                let _ = spool.transition(id, JobEvent::Requeue).await;
                return Outcome::RetryLater;
            }
        }
    } else {
        None
    };
    let device_job = DeviceJob {
        id,
        name: job.name.clone(),
        rendered,
        ticket: super::render::ticket(spool, &job),
        attributes: job.attributes.clone(),
        ledger: Some(spool.clone()),
        documents: job
            .documents
            .iter()
            .map(|d| DeviceDocument {
                path: spool.document_path(id, d.number),
                number: d.number,
                format: d.format.clone(),
                compression: d.compression.clone(),
            })
            .collect(),
    };

    // Cancel-Job while printing: the state machine already moved the job to canceled; tell the device.
    let cancel = Arc::new(AtomicBool::new(false));
    let watcher = {
        let cancel = cancel.clone();
        let spool = spool.clone();
        let mut changes = spool.subscribe();
        tokio::spawn(async move {
            loop {
                if spool
                    .get(id)
                    .is_none_or(|j| j.status.state != JobState::Processing)
                {
                    cancel.store(true, Ordering::Relaxed);
                    return;
                }
                match changes.recv().await {
                    Ok(c) if c.job_id != id => continue,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                }
            }
        })
    };
    let result = device.print(&device_job, cancel).await;
    watcher.abort();

    let event = match result {
        Ok(()) => JobEvent::Completed,
        Err(DeviceError::Canceled) => {
            super::render::discard(spool, id).await;
            return Outcome::Done;
        }
        Err(DeviceError::Fatal { reason, message }) => JobEvent::Aborted { reason, message },
        Err(DeviceError::Retry(why)) => {
            tracing::warn!(job = id, "output device failed, will retry: {why}");
            let _ = spool.transition(id, JobEvent::Requeue).await;
            return Outcome::RetryLater;
        }
    };
    match spool.transition(id, event).await {
        Ok(_) | Err(super::SpoolError::Transition(_)) => {
            super::render::discard(spool, id).await;
            Outcome::Done
        }
        Err(e) => {
            tracing::error!(job = id, "cannot record the end of job: {e}");
            Outcome::RetryLater
        }
    }
}
