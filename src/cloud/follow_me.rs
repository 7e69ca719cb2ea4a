//! Print-anywhere (issue 18, docs/release.md "Print-anywhere"): every account has a follow-me
//! queue at `/ipp/follow-me` whose jobs are held in the cloud (documents in the blob store) and
//! never fetched by any Proxy, until the user releases one to a printer: from the portal
//! (`/account/held`), the JSON API (`/api/v1/held-jobs`), an appliance's release page (which
//! uses that API with the user's session), or all of them at group sign-in when the group
//! setting says so.
//!
//! - [`ipp`]: the follow-me queue's IPP endpoint (Print-Job, Create-Job + Send-Document, ...).
//! - [`api`]: the held-jobs JSON API and the release setting.
//! - [`page`]: the portal page "Your held jobs".
//!
//! A job is released to a printer the user is IN on in their group, or one they are allowed on.
//! The release is one conditional store transaction ([`crate::store::follow_me`]), so of two
//! simultaneous releases, on one instance or two, exactly one makes a printer job.

pub mod api;
pub mod ipp;
pub mod page;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Cloud;
use crate::model::groups::{valid_printer_id, Status as GroupStatus};
use crate::store::follow_me::{HeldOutcome, HeldStatus};
use crate::store::registry::PrinterRow;
use crate::store::StoreError;

/// The follow-me queue's path on the cloud (one URI for every account: the credentials say whose
/// queue it is).
pub const FOLLOW_ME_PATH: &str = "/ipp/follow-me";
/// Jobs one listing shows.
const LIST_LIMIT: i64 = 500;
/// Finished held-job rows are kept this long after the job left the queue (the portal's
/// history), seconds.
const HISTORY_SECONDS: i64 = 7 * 86_400;

#[derive(Debug, thiserror::Error)]
pub enum FollowMeError {
    /// No such job of this account (someone else's job is not revealed).
    #[error("no such held job")]
    NotFound,
    /// Released, deleted, expired, or still receiving documents.
    #[error("the job is {0}, not held")]
    NotHeld(&'static str),
    /// The printer is not one the account may release to.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A printer a user may release held jobs to.
#[derive(Debug, Clone)]
pub struct Target {
    pub printer: PrinterRow,
    /// IN in the account's group (else: allowed on the printer).
    pub in_group: bool,
}

/// The printers `account` may release to: the group's IN printers first, then the others the
/// user is allowed on.
pub async fn targets(cloud: &Cloud, account: &str) -> Result<Vec<Target>, StoreError> {
    let mut out: Vec<Target> = Vec::new();
    for r in cloud.store.group_records(account).await? {
        if r.status != GroupStatus::In {
            continue;
        }
        if let Some(p) = cloud.store.printer(&r.printer_id).await? {
            out.push(Target {
                printer: p,
                in_group: true,
            });
        }
    }
    for p in cloud.store.printers_allowed_for(account).await? {
        if !out.iter().any(|t| t.printer.id == p.id) {
            out.push(Target {
                printer: p,
                in_group: false,
            });
        }
    }
    Ok(out)
}

/// Whether `account` may release to `printer_id`: IN on it in their group, or allowed on it.
pub async fn may_release_to(
    cloud: &Cloud,
    account: &str,
    printer_id: &str,
) -> Result<bool, StoreError> {
    if !valid_printer_id(printer_id) || cloud.store.printer(printer_id).await?.is_none() {
        return Ok(false);
    }
    let in_group = cloud
        .store
        .group_record(account, printer_id)
        .await?
        .is_some_and(|r| r.status == GroupStatus::In);
    Ok(in_group
        || cloud
            .store
            .printer_user_allowed(printer_id, account)
            .await?)
}

/// How long a held job waits before it is deleted unprinted, for people: "24 hours", "1 hour",
/// "90 minutes".
pub fn hold_text(seconds: i64) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if seconds >= 3600 && seconds % 3600 == 0 {
        plural(seconds / 3600, "hour")
    } else {
        plural((seconds / 60).max(1), "minute")
    }
}

fn not_held(status: HeldStatus) -> FollowMeError {
    FollowMeError::NotHeld(match status {
        HeldStatus::Receiving => "still receiving its documents",
        HeldStatus::Held => "held",
        HeldStatus::Released => "already released",
        HeldStatus::Deleted => "deleted",
        HeldStatus::Expired => "expired",
    })
}

/// Releases `account`'s held job `job_id` to `printer_id`: the job becomes a job of that
/// Infrastructure Printer (fetchable by its Proxy) exactly once. Returns its id there.
pub async fn release(
    cloud: &Cloud,
    account: &str,
    job_id: i64,
    printer_id: &str,
) -> Result<i64, FollowMeError> {
    // Someone else's job (or none) is 404 before the printer is even looked at, so the answer
    // never tells whether a job id exists.
    match cloud.store.held_job(account, job_id).await? {
        None => return Err(FollowMeError::NotFound),
        Some(j) if j.status != HeldStatus::Held => return Err(not_held(j.status)),
        Some(_) => {}
    }
    if !may_release_to(cloud, account, printer_id).await? {
        return Err(FollowMeError::Forbidden(
            "you may release jobs only to your group's signed-in printers or printers you may use"
                .into(),
        ));
    }
    let now = cloud.now();
    match cloud
        .store
        .release_held_job(account, job_id, printer_id, now)
        .await?
    {
        HeldOutcome::Released { printer_job_id } => {
            cloud.events.wake(printer_id);
            tracing::info!(
                %account, job = job_id, printer = %printer_id, printer_job = printer_job_id,
                "follow-me job released"
            );
            Ok(printer_job_id)
        }
        HeldOutcome::NotFound => Err(FollowMeError::NotFound),
        HeldOutcome::NotHeld(s) => Err(not_held(s)),
        HeldOutcome::PrinterGone => Err(FollowMeError::Forbidden(
            "the printer no longer exists".into(),
        )),
        HeldOutcome::Deleted => Err(FollowMeError::NotHeld("deleted")),
    }
}

/// The owner deletes a held job: never printed, its documents deleted by [`maintenance`].
pub async fn delete(cloud: &Cloud, account: &str, job_id: i64) -> Result<(), FollowMeError> {
    match cloud
        .store
        .delete_held_job(account, job_id, cloud.now())
        .await?
    {
        HeldOutcome::Deleted => {
            tracing::info!(%account, job = job_id, "follow-me job deleted");
            Ok(())
        }
        HeldOutcome::NotHeld(s) => Err(not_held(s)),
        _ => Err(FollowMeError::NotFound),
    }
}

/// At group sign-in (login of a PC or the portal): with "release held jobs at group sign-in"
/// on, every held job of the account goes to the printer the setting names. Returns how many.
/// A job another release took meanwhile is skipped; nothing here fails the login.
pub async fn release_at_sign_in(cloud: &Cloud, account: &str) -> Result<usize, StoreError> {
    let s = cloud.store.release_settings(account).await?;
    let (true, Some(printer)) = (s.release_at_sign_in, s.release_printer) else {
        return Ok(0);
    };
    let mut released = 0;
    for j in cloud.store.held_jobs(account, true, LIST_LIMIT).await? {
        match release(cloud, account, j.job_id, &printer).await {
            Ok(_) => released += 1,
            Err(FollowMeError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::info!(%account, job = j.job_id, "release at group sign-in skipped: {e}")
            }
        }
    }
    Ok(released)
}

/// Runs until `stop`: held jobs older than `[infra] held_job_seconds` expire unprinted; the
/// documents of deleted and expired jobs leave the blob store. Every instance runs it; each
/// step is one conditional statement, so they do not get in each other's way.
pub async fn maintenance(cloud: Arc<Cloud>, mut stop: watch::Receiver<bool>) {
    let hold = cloud.config.infra.held_job_seconds;
    let tick = Duration::from_secs((hold / 4).clamp(1, 30) as u64);
    loop {
        let now = cloud.now();
        match cloud
            .store
            .expire_held_jobs(now - hold, now - HISTORY_SECONDS, now)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!("{n} follow-me job(s) not released in time deleted unprinted"),
            Err(e) => tracing::warn!("expiring follow-me jobs failed: {e}"),
        }
        match cloud.store.take_unheld_blobs().await {
            Ok(keys) => {
                for k in keys {
                    if let Err(e) = cloud.blobs.delete(&k).await {
                        tracing::warn!("deleting a follow-me job's document failed: {e}");
                    }
                }
            }
            Err(e) => tracing::warn!("finding deleted follow-me jobs' documents failed: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::hold_text;

    #[test]
    fn hold_times_read_well() {
        assert_eq!(hold_text(86_400), "24 hours");
        assert_eq!(hold_text(3600), "1 hour");
        assert_eq!(hold_text(5400), "90 minutes");
        assert_eq!(hold_text(60), "1 minute");
    }
}
