//! Jobs held for release (issue 18, docs/release.md): the release record kept with a job created on
//! a queue with a release mode (or sent with a job-password, PWG 5100.11), releasing it with its PIN
//! (wrong PINs limited per job and per client), by its owner or an administrator, deleting it, and
//! deleting unprinted the jobs nobody released in time. Every release goes through the spool's one
//! transition and marks the record released in the same database transaction, so a job is released
//! (and printed) once: a replayed release finds the mark and gets [`ReleaseError::NotHeld`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};

use sqlx::Row;

use super::{Job, Spool, SpoolError};
use crate::model::job::{JobEvent, JobState};
use crate::model::release::{
    self as policy, ClientLimiter, Gate, JobAttempts, PinEncryption, ReleaseMode,
};

/// Why a release (or delete) did not happen. The `Display` text is what a user may be shown.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// No such job held for release, or not the caller's: never reveals that someone else's job
    /// exists.
    #[error("no such job waiting for release")]
    NotFound,
    #[error("wrong PIN; {attempts_left} tries left before the job locks")]
    WrongPin { attempts_left: u32 },
    #[error("too many wrong PINs; try again in {retry_after_seconds} seconds")]
    Locked { retry_after_seconds: u64 },
    /// Already released, printed or deleted (a replayed release).
    #[error("the job is no longer waiting for release")]
    NotHeld,
    #[error("the spool cannot record the release")]
    Store(#[from] SpoolError),
}

/// The queue's release settings (`release`, `release_expire_seconds`, `release_pin_length`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleasePolicy {
    pub mode: ReleaseMode,
    pub expire_seconds: u64,
    pub pin_length: u32,
}

/// Default of `release_expire_seconds`: 4 hours.
pub const DEFAULT_EXPIRE_SECONDS: u64 = 14_400;
/// Default of `release_pin_length`.
pub const DEFAULT_PIN_LENGTH: u32 = 4;

impl Default for ReleasePolicy {
    fn default() -> Self {
        ReleasePolicy {
            mode: ReleaseMode::None,
            expire_seconds: DEFAULT_EXPIRE_SECONDS,
            pin_length: DEFAULT_PIN_LENGTH,
        }
    }
}

/// A job-password as the client sent it (PWG 5100.11 §6.1), already checked: the octets as
/// [`policy::secret_from_client`] made them, and how they were hashed.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientPassword {
    pub secret: Vec<u8>,
    pub encryption: PinEncryption,
}

impl std::fmt::Debug for ClientPassword {
    // Never in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientPassword")
            .field("encryption", &self.encryption)
            .finish_non_exhaustive()
    }
}

/// A job's release record.
#[derive(Clone, PartialEq, Eq)]
pub struct ReleaseRecord {
    pub job_id: u32,
    pub mode: ReleaseMode,
    pin_hash: Option<String>,
    pub encryption: PinEncryption,
    /// The appliance picked the PIN (the client sent none): it is in the job's status message.
    pub pin_assigned: bool,
    pub attempts: JobAttempts,
    pub created: i64,
    pub released: Option<i64>,
}

impl std::fmt::Debug for ReleaseRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseRecord")
            .field("job_id", &self.job_id)
            .field("mode", &self.mode)
            .field("encryption", &self.encryption)
            .field("pin_assigned", &self.pin_assigned)
            .field("attempts", &self.attempts)
            .field("created", &self.created)
            .field("released", &self.released)
            .finish_non_exhaustive()
    }
}

/// The spool's release state: the records (as on disk) and the per-client limiter (memory only).
#[derive(Default)]
pub(super) struct ReleaseState {
    policy: RwLock<ReleasePolicy>,
    records: RwLock<HashMap<u32, ReleaseRecord>>,
    clients: Mutex<ClientLimiter>,
}

/// What the one transition writes to the release record with a job's new state.
#[derive(Debug, Clone, Copy)]
pub(super) enum ReleaseMark {
    /// The job is being released: set `released` (refused if it is already set).
    Released,
}

impl ReleaseState {
    pub(super) fn is_waiting(&self, id: u32) -> bool {
        self.records
            .read()
            .expect("release lock")
            .get(&id)
            .is_some_and(|r| r.released.is_none())
    }

    pub(super) fn forget(&self, ids: &[u32]) {
        let mut records = self.records.write().expect("release lock");
        for id in ids {
            records.remove(id);
        }
    }

    pub(super) fn insert(&self, r: ReleaseRecord) {
        self.records
            .write()
            .expect("release lock")
            .insert(r.job_id, r);
    }

    pub(super) fn mark_released(&self, id: u32, now: i64) {
        if let Some(r) = self.records.write().expect("release lock").get_mut(&id) {
            r.released = Some(now);
        }
    }
}

/// The release record a new job gets, and the status message of an assigned PIN; made before the
/// job's transaction (argon2 is slow), written in it ([`insert_record`]).
pub(super) struct NewRecord {
    pub record: ReleaseRecord,
    pub message: Option<String>,
}

/// What a job created now on this queue is held for, if anything: the queue's mode, or pin mode
/// whenever the client sent a job-password (what CUPS and PAPPL clients expect of it).
pub(super) async fn new_record(
    spool: &Spool,
    password: Option<ClientPassword>,
    from_cloud: bool,
    now: i64,
) -> Result<Option<NewRecord>, SpoolError> {
    let policy = spool.release_policy();
    let mode = match (password.is_some(), policy.mode) {
        (true, _) => ReleaseMode::Pin,
        // A job from the cloud has nobody to tell an assigned PIN to but the cloud job's status
        // message, which the cloud shows and keeps: it waits for its owner to sign in instead.
        (false, ReleaseMode::Pin) if from_cloud => ReleaseMode::SignIn,
        (false, mode) => mode,
    };
    if mode == ReleaseMode::None {
        return Ok(None);
    }
    let (secret, encryption, assigned) = match (mode, password) {
        (ReleaseMode::Pin, Some(p)) => (Some(p.secret), p.encryption, None),
        (ReleaseMode::Pin, None) => {
            let pin = policy::generate_pin(policy.pin_length, &mut |b: &mut [u8]| {
                // getrandom fails only without an OS source of randomness, where nothing works.
                getrandom::fill(b).expect("the OS random source")
            });
            (
                Some(pin.as_bytes().to_vec()),
                PinEncryption::None,
                Some(pin),
            )
        }
        _ => (None, PinEncryption::None, None),
    };
    let pin_hash = match secret {
        None => None,
        Some(secret) => {
            let input = policy::hash_input(&secret);
            Some(
                tokio::task::spawn_blocking(move || crate::password::hash_password(&input))
                    .await
                    .map_err(std::io::Error::other)?
                    .map_err(std::io::Error::other)?,
            )
        }
    };
    Ok(Some(NewRecord {
        message: assigned.as_deref().map(policy::assigned_pin_message),
        record: ReleaseRecord {
            job_id: 0,
            mode,
            pin_hash,
            encryption,
            pin_assigned: assigned.is_some(),
            attempts: JobAttempts::default(),
            created: now,
            released: None,
        },
    }))
}

pub(super) async fn insert_record(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    r: &ReleaseRecord,
) -> Result<(), SpoolError> {
    sqlx::query(
        "INSERT INTO release_holds (job_id, mode, pin_hash, encryption, pin_assigned, created) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(r.job_id as i64)
    .bind(r.mode.keyword())
    .bind(&r.pin_hash)
    .bind(r.encryption.keyword())
    .bind(r.pin_assigned)
    .bind(r.created)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks the release in the job's transaction; `false` when it was already marked (the caller
/// rolls back: nothing changes).
pub(super) async fn write_mark(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    id: u32,
    mark: ReleaseMark,
    now: i64,
) -> Result<bool, SpoolError> {
    match mark {
        ReleaseMark::Released => Ok(sqlx::query(
            "UPDATE release_holds SET released = ? WHERE job_id = ? AND released IS NULL",
        )
        .bind(now)
        .bind(id as i64)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1),
    }
}

impl Spool {
    /// Sets the queue's release settings (from `[printer]`/`[[queue]]`).
    pub fn set_release_policy(&self, p: ReleasePolicy) {
        *self.release.policy.write().expect("release lock") = p;
    }

    pub fn release_policy(&self) -> ReleasePolicy {
        *self.release.policy.read().expect("release lock")
    }

    pub(super) async fn load_release_records(&self) -> Result<(), SpoolError> {
        let rows = sqlx::query("SELECT * FROM release_holds")
            .fetch_all(&self.db)
            .await?;
        let mut records = self.release.records.write().expect("release lock");
        for r in rows {
            let id = r.get::<i64, _>("job_id") as u32;
            let mode = ReleaseMode::from_keyword(r.get("mode")).ok_or(SpoolError::Corrupt(id))?;
            let encryption =
                PinEncryption::from_keyword(r.get("encryption")).ok_or(SpoolError::Corrupt(id))?;
            records.insert(
                id,
                ReleaseRecord {
                    job_id: id,
                    mode,
                    pin_hash: r.get("pin_hash"),
                    encryption,
                    pin_assigned: r.get::<i64, _>("pin_assigned") != 0,
                    attempts: JobAttempts {
                        failed: r.get::<i64, _>("failed").clamp(0, u32::MAX as i64) as u32,
                        locked_until: r.get("locked_until"),
                    },
                    created: r.get("created"),
                    released: r.get("released"),
                },
            );
        }
        Ok(())
    }

    /// Job `id`'s release record, if it was held for release (also after it was released).
    pub fn release_record(&self, id: u32) -> Option<ReleaseRecord> {
        self.release
            .records
            .read()
            .expect("release lock")
            .get(&id)
            .cloned()
    }

    /// Whether job `id` waits held for release (not yet released, printed or deleted).
    pub fn is_held_for_release(&self, id: u32) -> bool {
        self.release.is_waiting(id)
            && self
                .get(id)
                .is_some_and(|j| j.status.state == JobState::PendingHeld)
    }

    /// The jobs waiting held for release, oldest first: all, or those of `owner` (compared
    /// case-insensitively).
    pub fn held_for_release(&self, owner: Option<&str>) -> Vec<Arc<Job>> {
        self.list()
            .into_iter()
            .filter(|j| {
                j.status.state == JobState::PendingHeld
                    && self.release.is_waiting(j.id)
                    && owner.is_none_or(|o| j.owner.eq_ignore_ascii_case(o))
            })
            .collect()
    }

    /// Releases job `job_id` with its PIN, typed by someone at `client`. The try is counted
    /// before the PIN is checked (and forgiven when it was right), so that many tries at once
    /// cannot get past the limits: 5 wrong PINs lock the job for 15 minutes, and a client gets 20
    /// wrong PINs per 10 minutes across jobs.
    pub async fn release_with_pin(
        &self,
        job_id: u32,
        pin: &str,
        client: IpAddr,
    ) -> Result<Arc<Job>, ReleaseError> {
        self.check_pin(job_id, pin, client).await?;
        tracing::info!(job = job_id, %client, "job {job_id} released with its PIN");
        self.release_marked(job_id).await
    }

    /// Whoever knows a PIN job's PIN deletes it unprinted (job-canceled-by-user), under the same
    /// wrong-PIN limits as [`Spool::release_with_pin`]: the release page's Delete beside Print.
    pub async fn delete_with_pin(
        &self,
        job_id: u32,
        pin: &str,
        client: IpAddr,
    ) -> Result<(), ReleaseError> {
        self.check_pin(job_id, pin, client).await?;
        tracing::info!(job = job_id, %client, "job {job_id} deleted with its PIN");
        self.cancel_held(job_id).await
    }

    /// The PIN of job `job_id`, checked and counted (per job and per client), or why not.
    async fn check_pin(&self, job_id: u32, pin: &str, client: IpAddr) -> Result<(), ReleaseError> {
        let record = self
            .release_record(job_id)
            .filter(|r| r.mode == ReleaseMode::Pin)
            .ok_or(ReleaseError::NotFound)?;
        self.check_waiting(job_id, &record)?;
        let (phc, before) = {
            let _guard = self.write.lock().await;
            let now = self.clock.now();
            if let Gate::Locked {
                retry_after_seconds,
            } = self
                .release
                .clients
                .lock()
                .expect("release lock")
                .gate(client, now)
            {
                tracing::warn!(job = job_id, %client, "PIN refused: too many wrong PINs from this client");
                return Err(ReleaseError::Locked {
                    retry_after_seconds,
                });
            }
            // Read again under the lock: another try may have counted meanwhile.
            let record = self.release_record(job_id).ok_or(ReleaseError::NotFound)?;
            self.check_waiting(job_id, &record)?;
            if let Gate::Locked {
                retry_after_seconds,
            } = record.attempts.gate(now)
            {
                return Err(ReleaseError::Locked {
                    retry_after_seconds,
                });
            }
            let (after, _) = record.attempts.after_wrong(now);
            self.write_attempts(job_id, after).await?;
            self.release
                .clients
                .lock()
                .expect("release lock")
                .wrong(client, now);
            (record.pin_hash.clone().unwrap_or_default(), record.attempts)
        };
        let input = policy::hash_input(&policy::secret_from_typed(pin, record.encryption));
        let right =
            tokio::task::spawn_blocking(move || crate::password::verify_password(&input, &phc))
                .await
                .unwrap_or(false);
        if !right {
            let now = self.clock.now();
            let (_, attempts_left) = before.after_wrong(now);
            tracing::warn!(
                job = job_id,
                %client,
                attempts_left,
                "wrong PIN for job {job_id}"
            );
            return Err(ReleaseError::WrongPin { attempts_left });
        }
        self.release
            .clients
            .lock()
            .expect("release lock")
            .forgive(client);
        Ok(())
    }

    /// Sign-in release: `user` (signed in) releases their own job.
    pub async fn release_by_owner(
        &self,
        job_id: u32,
        user: &str,
    ) -> Result<Arc<Job>, ReleaseError> {
        let record = self.owned_record(job_id, Some(user))?;
        self.check_waiting(job_id, &record)?;
        tracing::info!(job = job_id, "job {job_id} released by its owner");
        self.release_marked(job_id).await
    }

    /// An administrator (`admin`, for the log) releases any job held for release.
    pub async fn release_by_admin(
        &self,
        job_id: u32,
        admin: &str,
    ) -> Result<Arc<Job>, ReleaseError> {
        let record = self.owned_record(job_id, None)?;
        self.check_waiting(job_id, &record)?;
        tracing::info!(job = job_id, admin = %admin.escape_debug(), "job {job_id} released by an administrator");
        self.release_marked(job_id).await
    }

    /// The owner deletes their job held for release: it ends canceled (job-canceled-by-user),
    /// never printed.
    pub async fn delete_held(&self, job_id: u32, user: &str) -> Result<(), ReleaseError> {
        let record = self.owned_record(job_id, Some(user))?;
        self.check_waiting(job_id, &record)?;
        self.cancel_held(job_id).await
    }

    async fn cancel_held(&self, job_id: u32) -> Result<(), ReleaseError> {
        match self
            .transition(job_id, JobEvent::Cancel { by_operator: false })
            .await
        {
            Ok(_) => Ok(()),
            Err(SpoolError::Transition(_)) => Err(ReleaseError::NotHeld),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes, unprinted, the jobs held for release longer than `release_expire_seconds`
    /// (job-canceled-at-device, with a message saying so, kept in the history for the owner).
    /// Returns the jobs deleted.
    pub async fn expire_held(&self) -> Result<Vec<u32>, SpoolError> {
        let expire = self.release_policy().expire_seconds;
        let now = self.clock.now();
        let due: Vec<u32> = self
            .release
            .records
            .read()
            .expect("release lock")
            .values()
            .filter(|r| r.released.is_none() && policy::expired(r.created, now, expire))
            .map(|r| r.job_id)
            .collect();
        let mut done = Vec::new();
        for id in due {
            if !self.is_held_for_release(id) {
                continue;
            }
            let message = policy::expiry_message(expire);
            match self
                .transition(id, JobEvent::ReleaseExpired { message })
                .await
            {
                Ok(_) => done.push(id),
                // Released or canceled meanwhile.
                Err(SpoolError::Transition(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    fn owned_record(&self, job_id: u32, user: Option<&str>) -> Result<ReleaseRecord, ReleaseError> {
        let job = self.get(job_id).ok_or(ReleaseError::NotFound)?;
        if user.is_some_and(|u| !job.owner.eq_ignore_ascii_case(u)) {
            return Err(ReleaseError::NotFound);
        }
        self.release_record(job_id).ok_or(ReleaseError::NotFound)
    }

    fn check_waiting(&self, job_id: u32, record: &ReleaseRecord) -> Result<(), ReleaseError> {
        let held = self
            .get(job_id)
            .is_some_and(|j| j.status.state == JobState::PendingHeld);
        if record.released.is_some() || !held {
            return Err(ReleaseError::NotHeld);
        }
        Ok(())
    }

    async fn release_marked(&self, job_id: u32) -> Result<Arc<Job>, ReleaseError> {
        match self
            .transition_marked(job_id, JobEvent::Release, Some(ReleaseMark::Released))
            .await
        {
            Ok(Some(job)) => Ok(job),
            Ok(None) | Err(SpoolError::Transition(_)) => Err(ReleaseError::NotHeld),
            Err(e) => Err(e.into()),
        }
    }

    async fn write_attempts(&self, job_id: u32, a: JobAttempts) -> Result<(), SpoolError> {
        sqlx::query("UPDATE release_holds SET failed = ?, locked_until = ? WHERE job_id = ?")
            .bind(a.failed as i64)
            .bind(a.locked_until)
            .bind(job_id as i64)
            .execute(&self.db)
            .await?;
        if let Some(r) = self
            .release
            .records
            .write()
            .expect("release lock")
            .get_mut(&job_id)
        {
            r.attempts = a;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::clock::Clock;
    use crate::spool::{DocumentMeta, NewJob};
    use std::sync::atomic::{AtomicI64, Ordering};

    struct TestClock(AtomicI64);
    impl Clock for TestClock {
        fn now(&self) -> i64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    async fn spool(dir: &std::path::Path, clock: Arc<TestClock>, mode: ReleaseMode) -> Arc<Spool> {
        let s = Spool::open(dir, clock, false).await.unwrap();
        s.set_release_policy(ReleasePolicy {
            mode,
            expire_seconds: 3600,
            pin_length: 6,
        });
        s
    }

    async fn job(s: &Spool, owner: &str, password: Option<ClientPassword>) -> Arc<Job> {
        let d = s.stage_document(&b"%PDF-1.4 held"[..], 0).await.unwrap();
        s.create_job_with_password(
            NewJob {
                owner: owner.into(),
                name: "secret.pdf".into(),
                attributes: Vec::new(),
                hold: None,
            },
            Some((
                d,
                DocumentMeta {
                    format: "application/pdf".into(),
                    compression: "none".into(),
                    name: None,
                },
            )),
            true,
            password,
        )
        .await
        .unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn password(pin: &str, enc: PinEncryption) -> ClientPassword {
        ClientPassword {
            secret: policy::secret_from_typed(pin, enc),
            encryption: enc,
        }
    }

    #[tokio::test]
    async fn a_pin_deletes_its_job_unprinted_under_the_same_limits() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(TestClock(AtomicI64::new(1_000_000)));
        let s = spool(dir.path(), clock, ReleaseMode::Pin).await;
        let j = job(&s, "Alice", Some(password("1357", PinEncryption::None))).await;
        let wrong = s.delete_with_pin(j.id, "1358", ip("192.0.2.7")).await;
        assert!(
            matches!(wrong, Err(ReleaseError::WrongPin { attempts_left: 4 })),
            "{wrong:?}"
        );
        assert_eq!(s.get(j.id).unwrap().status.state, JobState::PendingHeld);
        s.delete_with_pin(j.id, "1357", ip("192.0.2.7"))
            .await
            .unwrap();
        assert_eq!(s.get(j.id).unwrap().status.state, JobState::Canceled);
        assert!(s.next_printable().is_none(), "a deleted job never prints");
        // Neither a second delete nor a release gets anything out of it.
        assert!(s
            .delete_with_pin(j.id, "1357", ip("192.0.2.7"))
            .await
            .is_err());
        assert!(s
            .release_with_pin(j.id, "1357", ip("192.0.2.7"))
            .await
            .is_err());
    }

    #[tokio::test]
    async fn a_cloud_job_on_a_pin_queue_waits_for_its_owner_with_no_pin_to_leak() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(TestClock(AtomicI64::new(1_000_000)));
        let s = spool(dir.path(), clock, ReleaseMode::Pin).await;
        let d = s.stage_document(&b"%PDF-1.4 cloud"[..], 0).await.unwrap();
        let link = crate::spool::CloudLink {
            printer: "p1".into(),
            job: 9,
        };
        let meta = DocumentMeta {
            format: "application/pdf".into(),
            compression: "none".into(),
            name: None,
        };
        let new = NewJob {
            owner: "alice@example.com".into(),
            name: "cloud.pdf".into(),
            attributes: Vec::new(),
            hold: None,
        };
        let j = s
            .create_cloud_job(new, vec![(d, meta)], &link)
            .await
            .unwrap();
        assert_eq!(j.status.state, JobState::PendingHeld);
        let record = s.release_record(j.id).expect("held for release");
        assert_eq!(record.mode, ReleaseMode::SignIn);
        assert!(!record.pin_assigned);
        // The status message goes back to the cloud job: it must not carry a PIN.
        assert!(j.status.message.is_none(), "{:?}", j.status.message);
        assert!(s.next_printable().is_none());
        assert!(s.release_by_owner(j.id, "bob@example.com").await.is_err());
        s.release_by_owner(j.id, "alice@example.com").await.unwrap();
        assert!(s.next_printable().is_some());
    }

    #[tokio::test]
    async fn a_pin_job_waits_until_its_pin_and_is_released_once() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(TestClock(AtomicI64::new(1_000_000)));
        let s = spool(dir.path(), clock.clone(), ReleaseMode::Pin).await;
        for enc in [
            PinEncryption::None,
            PinEncryption::Md5,
            PinEncryption::Sha256,
        ] {
            let j = job(&s, "Alice", Some(password("2468", enc))).await;
            assert_eq!(j.status.state, JobState::PendingHeld);
            assert_eq!(j.status.reasons, [policy::JOB_PASSWORD_WAIT]);
            assert!(s.next_printable().is_none(), "held jobs never print");
            // Neither Release-Job's plain event nor anything else gets past the release.
            assert!(s.transition(j.id, JobEvent::Release).await.is_err());
            let wrong = s.release_with_pin(j.id, "2469", ip("192.0.2.1")).await;
            assert!(
                matches!(wrong, Err(ReleaseError::WrongPin { attempts_left: 4 })),
                "{wrong:?}"
            );
            let done = s
                .release_with_pin(j.id, "2468", ip("192.0.2.1"))
                .await
                .unwrap();
            assert_eq!(done.status.state, JobState::Pending);
            assert_eq!(done.status.reasons, ["none"]);
            assert!(matches!(
                s.release_with_pin(j.id, "2468", ip("192.0.2.1")).await,
                Err(ReleaseError::NotHeld)
            ));
            assert!(matches!(
                s.release_by_owner(j.id, "alice").await,
                Err(ReleaseError::NotHeld)
            ));
            s.transition(j.id, JobEvent::StartProcessing).await.unwrap();
            s.transition(j.id, JobEvent::Completed).await.unwrap();
        }
        assert!(s.held_for_release(None).is_empty());
    }

    #[tokio::test]
    async fn an_assigned_pin_is_in_the_status_message_and_survives_a_restart_as_a_hash() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(TestClock(AtomicI64::new(1_000_000)));
        let (id, pin);
        {
            let s = spool(dir.path(), clock.clone(), ReleaseMode::Pin).await;
            let j = job(&s, "bob", None).await;
            let m = j.status.message.clone().unwrap();
            pin = m
                .strip_prefix("Release PIN ")
                .and_then(|m| m.strip_suffix(" at the printer"))
                .unwrap()
                .to_string();
            assert_eq!(pin.len(), 6);
            id = j.id;
            assert!(s.release_record(id).unwrap().pin_assigned);
            drop(s);
        }
        let s = spool(dir.path(), clock.clone(), ReleaseMode::Pin).await;
        assert_eq!(s.held_for_release(Some("BOB")).len(), 1);
        assert!(s.held_for_release(Some("alice")).is_empty());
        let stored: String = sqlx::query_scalar("SELECT pin_hash FROM release_holds")
            .fetch_one(&s.db)
            .await
            .unwrap();
        assert!(stored.starts_with("$argon2") && !stored.contains(&pin));
        let j = s.release_with_pin(id, &pin, ip("::1")).await.unwrap();
        assert_eq!(j.status.message, None, "the PIN leaves with the hold");
    }

    #[tokio::test]
    async fn wrong_pins_lock_the_job_and_then_the_client() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(TestClock(AtomicI64::new(1_000_000)));
        let s = spool(dir.path(), clock.clone(), ReleaseMode::Pin).await;
        let j = job(&s, "alice", Some(password("1111", PinEncryption::None))).await;
        let me = ip("192.0.2.9");
        for left in (0..5).rev() {
            assert!(matches!(
                s.release_with_pin(j.id, "0000", me).await,
                Err(ReleaseError::WrongPin { attempts_left }) if attempts_left == left
            ));
        }
        // Locked: even the right PIN is refused until the lock ends.
        assert!(matches!(
            s.release_with_pin(j.id, "1111", me).await,
            Err(ReleaseError::Locked {
                retry_after_seconds: 900
            })
        ));
        assert_eq!(s.release_record(j.id).unwrap().attempts.failed, 5);
        clock.0.fetch_add(900, Ordering::Relaxed);
        s.release_with_pin(j.id, "1111", me).await.unwrap();
        // The client: 20 wrong PINs across jobs within 10 minutes (the 5 above are 15 minutes
        // old: out of the window), each job below its own limit, then nothing.
        let mut jobs = Vec::new();
        for _ in 0..6 {
            jobs.push(job(&s, "alice", Some(password("4321", PinEncryption::None))).await);
        }
        let mut wrong = 0;
        for j in &jobs[..5] {
            for _ in 0..4 {
                clock.0.fetch_add(7, Ordering::Relaxed);
                if matches!(
                    s.release_with_pin(j.id, "9999", me).await,
                    Err(ReleaseError::WrongPin { .. })
                ) {
                    wrong += 1;
                }
            }
        }
        assert_eq!(wrong, 20);
        assert!(matches!(
            s.release_with_pin(jobs[5].id, "4321", me).await,
            Err(ReleaseError::Locked { .. })
        ));
        // Another client is not held back by it.
        s.release_with_pin(jobs[5].id, "4321", ip("192.0.2.10"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn sign_in_release_delete_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(TestClock(AtomicI64::new(1_000_000)));
        let s = spool(dir.path(), clock.clone(), ReleaseMode::SignIn).await;
        let a = job(&s, "alice", None).await;
        assert_eq!(a.status.reasons, ["job-hold-until-specified"]);
        let b = job(&s, "bob", None).await;
        let c = job(&s, "carol", None).await;
        // Someone else's job does not exist for them.
        assert!(matches!(
            s.release_by_owner(a.id, "bob").await,
            Err(ReleaseError::NotFound)
        ));
        assert!(matches!(
            s.delete_held(a.id, "bob").await,
            Err(ReleaseError::NotFound)
        ));
        // Sign-in jobs take no PIN.
        assert!(matches!(
            s.release_with_pin(a.id, "1234", ip("::1")).await,
            Err(ReleaseError::NotFound)
        ));
        s.release_by_owner(a.id, "ALICE").await.unwrap();
        s.delete_held(b.id, "bob").await.unwrap();
        assert_eq!(
            s.get(b.id).unwrap().status.reasons,
            ["job-canceled-by-user"]
        );
        assert!(matches!(
            s.release_by_admin(b.id, "root").await,
            Err(ReleaseError::NotHeld)
        ));
        clock.0.fetch_add(3599, Ordering::Relaxed);
        assert!(s.expire_held().await.unwrap().is_empty());
        clock.0.fetch_add(1, Ordering::Relaxed);
        assert_eq!(s.expire_held().await.unwrap(), [c.id]);
        let c = s.get(c.id).unwrap();
        assert_eq!(c.status.state, JobState::Canceled);
        assert_eq!(c.status.reasons, ["job-canceled-at-device"]);
        assert_eq!(
            c.status.message.as_deref(),
            Some("Not released within 1 hour; deleted unprinted")
        );
        assert!(matches!(
            s.release_by_admin(c.id, "root").await,
            Err(ReleaseError::NotHeld)
        ));
        // A job-password on the sign-in queue makes a PIN job, its owner may release it too.
        let d = job(&s, "dave", Some(password("5678", PinEncryption::Sha256))).await;
        assert_eq!(d.status.reasons, [policy::JOB_PASSWORD_WAIT]);
        s.release_by_admin(d.id, "root").await.unwrap();
    }

    #[tokio::test]
    async fn two_releases_at_once_release_once() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(TestClock(AtomicI64::new(1_000_000)));
        let s = spool(dir.path(), clock.clone(), ReleaseMode::Pin).await;
        let j = job(&s, "alice", Some(password("8080", PinEncryption::None))).await;
        let (x, y) = tokio::join!(
            s.release_with_pin(j.id, "8080", ip("192.0.2.1")),
            s.release_by_owner(j.id, "alice")
        );
        assert_eq!(
            [x.is_ok(), y.is_ok()].iter().filter(|ok| **ok).count(),
            1,
            "{x:?} {y:?}"
        );
    }
}
