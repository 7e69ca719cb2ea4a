//! The durable job store: job metadata in SQLite (WAL, synchronous=FULL), documents as files written
//! with fsync and atomic rename. [`Spool::transition`] is the one place a job's state changes.
//!
//! Durability contract: when `create_job` or `add_document` returns, the job and its documents are on
//! disk; a crash after that point cannot lose them. Before that point nothing of the job is visible
//! after a restart (staged files without a database row are removed at start).

pub mod release;
pub mod render;
pub mod worker;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, Mutex, Notify};

use crate::codec::ipp::{self, Attribute, Limits};
use crate::convert::ticket::JobTicket;
use crate::device::{DownstreamRecord, JobLedger, LedgerFuture};
use crate::model::clock::Clock;
use crate::model::job::{Effect, JobEvent, JobState, JobStatus, TransitionError};

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("spool file error: {0}")]
    Io(#[from] std::io::Error),
    #[error("no such job {0}")]
    NotFound(u32),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("document larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("the stored job attributes of job {0} are unreadable")]
    Corrupt(u32),
    #[error("cloud job {1} of printer {0} was already taken")]
    CloudJobTaken(String, i64),
}

/// A job this appliance took from the cloud as the INFRA Proxy of a shared queue: which cloud
/// printer and job it is (PWG 5100.18), recorded with the local job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudLink {
    pub printer: String,
    pub job: i64,
}

/// A cloud job's record ([`Spool::cloud_jobs`]): the local job (`None` once purged) and what the
/// cloud was last told of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudJob {
    pub link: CloudLink,
    pub job_id: Option<u32>,
    /// The last job-state the cloud accepted (0: none yet).
    pub reported_state: i32,
    pub reported_impressions: i64,
}

/// One document of a job, stored as received (compression kept).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub number: u32,
    pub format: String,
    pub compression: String,
    pub name: Option<String>,
    pub size: u64,
}

/// A job as the rest of the program sees it: immutable snapshot, replaced on every change.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: u32,
    pub uuid: String,
    pub owner: String,
    pub name: String,
    pub time_created: i64,
    pub time_last_document: i64,
    /// Validated job template attributes (copies, media, sides, ...), as the client sent them.
    pub attributes: Vec<Attribute>,
    pub documents: Vec<Document>,
    pub status: JobStatus,
}

impl Job {
    /// job-priority (RFC 8011 §5.2.2): 1..100, default 50.
    pub fn priority(&self) -> i32 {
        self.attributes
            .iter()
            .find(|a| a.name == "job-priority")
            .and_then(|a| a.first())
            .and_then(|v| v.as_int())
            .unwrap_or(50)
    }

    pub fn k_octets(&self) -> u64 {
        self.documents
            .iter()
            .map(|d| d.size)
            .sum::<u64>()
            .div_ceil(1024)
    }
}

/// What a new job is made of.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub owner: String,
    pub name: String,
    pub attributes: Vec<Attribute>,
    /// `Some(reason)` creates the job held (job-hold-until, Hold-New-Jobs).
    pub hold: Option<&'static str>,
}

/// Metadata of a document about to be added.
#[derive(Debug, Clone)]
pub struct DocumentMeta {
    pub format: String,
    pub compression: String,
    pub name: Option<String>,
}

/// A document written to the spool's staging area and fsynced, not yet part of any job.
#[derive(Debug)]
pub struct StagedDocument {
    path: PathBuf,
    pub size: u64,
}

impl StagedDocument {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StagedDocument {
    fn drop(&mut self) {
        // Still here means it was never attached to a job.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A job changed state: for logging, the printer state and (later) notifications.
#[derive(Debug, Clone)]
pub struct JobChange {
    pub job_id: u32,
    pub from: Option<JobState>,
    pub to: JobState,
}

/// How a state change shows in the log (one line per change, issue 16).
#[derive(Debug, Clone, Copy)]
pub enum StateLog<'a> {
    /// Who, what, from, to and why.
    Plain,
    /// The same, naming where the job goes: a file, a device URI, a cloud printer.
    Output(&'a str),
    /// Only at debug level: a retry's pending/processing round trip.
    Quiet,
}

pub struct Spool {
    db: SqlitePool,
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    jobs: RwLock<BTreeMap<u32, Arc<Job>>>,
    /// Serialises every write so that the map and the database never disagree.
    write: Mutex<()>,
    wake: Notify,
    changes: broadcast::Sender<JobChange>,
    limits: Limits,
    keep_documents: bool,
    /// What a job's ticket holds where the job says nothing: the queue's `*-default` values.
    ticket_defaults: RwLock<Arc<JobTicket>>,
    /// Crashes while processing one job after which it is aborted ([`Spool::begin_attempt`]).
    max_processing_crashes: AtomicU32,
    /// The queue's name in metrics ([`Spool::set_queue_label`]).
    queue_label: std::sync::OnceLock<String>,
    /// Jobs held for release and the wrong-PIN limits (issue 18, [`release`]).
    release: release::ReleaseState,
}

/// Default of `[spool] max_processing_crashes`.
pub const DEFAULT_MAX_PROCESSING_CRASHES: u32 = 3;

/// What [`Spool::begin_attempt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Go ahead; the attempt is on disk and counts as a crash until [`Spool::end_attempt`].
    Proceed,
    /// The process died this many times in a row while processing the job: do not try again.
    Poison { crashes: u32 },
}

impl Spool {
    /// Opens (creating) the spool in `dir`, runs migrations, loads jobs and recovers from a crash:
    /// jobs that were processing go back to pending (their documents start again).
    pub async fn open(
        dir: &Path,
        clock: Arc<dyn Clock>,
        keep_documents: bool,
    ) -> Result<Arc<Spool>, SpoolError> {
        std::fs::create_dir_all(dir.join("documents"))?;
        std::fs::create_dir_all(dir.join("staging"))?;
        let opts = SqliteConnectOptions::new()
            .filename(dir.join("spool.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL in WAL mode fsyncs the log on every commit: an acknowledged job survives power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true);
        let db = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations/spool").run(&db).await?;

        // Staged files never made it into a job: the client was never told they were accepted.
        for entry in std::fs::read_dir(dir.join("staging"))? {
            let _ = std::fs::remove_file(entry?.path());
        }

        let (changes, _) = broadcast::channel(256);
        let spool = Spool {
            db,
            dir: dir.to_path_buf(),
            clock,
            jobs: RwLock::new(BTreeMap::new()),
            write: Mutex::new(()),
            wake: Notify::new(),
            changes,
            limits: Limits::default(),
            keep_documents,
            ticket_defaults: RwLock::new(Arc::new(JobTicket::default())),
            max_processing_crashes: AtomicU32::new(DEFAULT_MAX_PROCESSING_CRASHES),
            queue_label: std::sync::OnceLock::new(),
            release: release::ReleaseState::default(),
        };
        spool.load().await?;
        spool.load_release_records().await?;
        let spool = Arc::new(spool);
        let interrupted: Vec<u32> = spool
            .list()
            .into_iter()
            .filter(|j| {
                matches!(
                    j.status.state,
                    JobState::Processing | JobState::ProcessingStopped
                )
            })
            .map(|j| j.id)
            .collect();
        for id in interrupted {
            tracing::warn!(
                job = id,
                "job was processing when the server stopped; printing it again"
            );
            spool.transition(id, JobEvent::Requeue).await?;
        }
        spool.remove_orphan_documents()?;
        render::sweep_stale(&spool)?;
        Ok(spool)
    }

    async fn load(&self) -> Result<(), SpoolError> {
        let rows = sqlx::query("SELECT * FROM jobs ORDER BY id")
            .fetch_all(&self.db)
            .await?;
        let docs = sqlx::query("SELECT * FROM documents ORDER BY job_id, number")
            .fetch_all(&self.db)
            .await?;
        let mut by_job: BTreeMap<u32, Vec<Document>> = BTreeMap::new();
        for d in docs {
            by_job
                .entry(d.get::<i64, _>("job_id") as u32)
                .or_default()
                .push(Document {
                    number: d.get::<i64, _>("number") as u32,
                    format: d.get("format"),
                    compression: d.get("compression"),
                    name: d.get("name"),
                    size: d.get::<i64, _>("size") as u64,
                });
        }
        let mut jobs = self.jobs.write().expect("spool lock");
        for r in rows {
            let id = r.get::<i64, _>("id") as u32;
            let blob: Vec<u8> = r.get("attributes");
            let attributes =
                decode_attributes(&blob, &self.limits).ok_or(SpoolError::Corrupt(id))?;
            let state = JobState::from_i32(r.get::<i64, _>("state") as i32)
                .ok_or(SpoolError::Corrupt(id))?;
            let reasons: String = r.get("reasons");
            let status = JobStatus {
                state,
                reasons: reasons.split_whitespace().map(str::to_string).collect(),
                message: r.get("message"),
                incoming: r.get::<i64, _>("incoming") != 0,
                time_processing: r.get("time_processing"),
                time_completed: r.get("time_completed"),
                impressions_completed: r.get::<i64, _>("impressions") as u32,
                sheets_completed: r.get::<i64, _>("sheets") as u32,
                pages: r.get::<i64, _>("pages") as u32,
                pages_completed: r.get::<i64, _>("pages_completed") as u32,
                restarts: r.get::<i64, _>("restarts") as u32,
            };
            let job = Job {
                id,
                uuid: r.get("uuid"),
                owner: r.get("owner"),
                name: r.get("name"),
                time_created: r.get("time_created"),
                time_last_document: r.get("time_last_document"),
                attributes,
                documents: by_job.remove(&id).unwrap_or_default(),
                status,
            };
            jobs.insert(id, Arc::new(job));
        }
        Ok(())
    }

    /// Document files whose job is gone (a crash between file rename and database commit), or whose
    /// job finished when documents are not kept.
    fn remove_orphan_documents(&self) -> Result<(), SpoolError> {
        let jobs = self.jobs.read().expect("spool lock");
        for entry in std::fs::read_dir(self.dir.join("documents"))? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let keep = name
                .split('-')
                .next()
                .and_then(|id| id.parse::<u32>().ok())
                .and_then(|id| jobs.get(&id))
                .is_some_and(|j| {
                    // A crash between "completed" and deleting the documents leaves them behind.
                    (self.keep_documents || !j.status.state.is_terminal())
                        && j.documents
                            .iter()
                            .any(|d| document_file_name(j.id, d.number) == name.as_ref())
                });
            if !keep {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// Sets the queue's defaults that jobs are rendered with (JobTicket::defaults_for(caps)).
    pub fn set_ticket_defaults(&self, defaults: JobTicket) {
        *self.ticket_defaults.write().expect("spool lock") = Arc::new(defaults);
    }

    pub fn ticket_defaults(&self) -> Arc<JobTicket> {
        self.ticket_defaults.read().expect("spool lock").clone()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<JobChange> {
        self.changes.subscribe()
    }

    pub fn get(&self, id: u32) -> Option<Arc<Job>> {
        self.jobs.read().expect("spool lock").get(&id).cloned()
    }

    /// All jobs, oldest first.
    pub fn list(&self) -> Vec<Arc<Job>> {
        self.jobs
            .read()
            .expect("spool lock")
            .values()
            .cloned()
            .collect()
    }

    pub fn count_where(&self, f: impl Fn(&Job) -> bool) -> usize {
        self.jobs
            .read()
            .expect("spool lock")
            .values()
            .filter(|j| f(j))
            .count()
    }

    /// The job the worker should print next: highest job-priority first, then oldest.
    pub fn next_printable(&self) -> Option<Arc<Job>> {
        self.next_printable_except(|_| false)
    }

    /// [`Spool::next_printable`] among the jobs `skip` does not name (jobs the worker set aside).
    pub fn next_printable_except(&self, skip: impl Fn(u32) -> bool) -> Option<Arc<Job>> {
        self.jobs
            .read()
            .expect("spool lock")
            .values()
            .filter(|j| j.status.is_printable() && !skip(j.id))
            .min_by_key(|j| (std::cmp::Reverse(j.priority()), j.id))
            .cloned()
    }

    pub fn wake_worker(&self) {
        self.wake.notify_one();
    }

    pub async fn wait_for_work(&self) {
        self.wake.notified().await
    }

    pub fn document_path(&self, job_id: u32, number: u32) -> PathBuf {
        self.dir
            .join("documents")
            .join(document_file_name(job_id, number))
    }

    /// Streams a document into the staging area, fsynced. `max_bytes` 0 means unlimited.
    pub async fn stage_document(
        &self,
        mut data: impl AsyncRead + Unpin,
        max_bytes: u64,
    ) -> Result<StagedDocument, SpoolError> {
        let path = self
            .dir
            .join("staging")
            .join(format!("{}.tmp", uuid::Uuid::new_v4()));
        let mut staged = StagedDocument { path, size: 0 };
        let mut file = tokio::fs::File::create(&staged.path).await?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = data.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            staged.size += n as u64;
            if max_bytes > 0 && staged.size > max_bytes {
                return Err(SpoolError::TooLarge(max_bytes));
            }
            file.write_all(&buf[..n]).await?;
        }
        file.flush().await?;
        file.sync_all().await?;
        Ok(staged)
    }

    /// Creates a job, optionally with its first document. Durable when it returns.
    pub async fn create_job(
        &self,
        new: NewJob,
        document: Option<(StagedDocument, DocumentMeta)>,
        last_document: bool,
    ) -> Result<Arc<Job>, SpoolError> {
        self.create_job_with_password(new, document, last_document, None)
            .await
    }

    /// [`Spool::create_job`] for a job that came with a job-password (PWG 5100.11): held for
    /// release in pin mode whatever the queue's mode. Any job created on a queue with a release
    /// mode is held with its release record ([`release`]).
    pub async fn create_job_with_password(
        &self,
        new: NewJob,
        document: Option<(StagedDocument, DocumentMeta)>,
        last_document: bool,
        password: Option<release::ClientPassword>,
    ) -> Result<Arc<Job>, SpoolError> {
        self.create_linked_job(
            new,
            document.into_iter().collect(),
            last_document,
            None,
            password,
        )
        .await
    }

    /// [`Spool::create_job`] for a job taken from the cloud, with all its documents: the link is
    /// recorded in the same transaction, and a cloud job already recorded is refused
    /// ([`SpoolError::CloudJobTaken`]) with nothing created, so that no crash or retry makes two
    /// local jobs of one cloud job.
    pub async fn create_cloud_job(
        &self,
        new: NewJob,
        documents: Vec<(StagedDocument, DocumentMeta)>,
        link: &CloudLink,
    ) -> Result<Arc<Job>, SpoolError> {
        self.create_linked_job(new, documents, true, Some(link), None)
            .await
    }

    async fn create_linked_job(
        &self,
        new: NewJob,
        staged: Vec<(StagedDocument, DocumentMeta)>,
        last_document: bool,
        link: Option<&CloudLink>,
        password: Option<release::ClientPassword>,
    ) -> Result<Arc<Job>, SpoolError> {
        let now = self.clock.now();
        let mut release = release::new_record(self, password, link.is_some(), now).await?;
        let hold = release
            .as_ref()
            .and_then(|r| r.record.mode.hold_reason())
            .or(new.hold);
        let mut status = JobStatus::new(true, hold);
        if let Some(r) = &release {
            status.message = r.message.clone();
        }
        let mut blob = Vec::new();
        for a in &new.attributes {
            ipp::encode_attribute(a, &mut blob);
        }
        let uuid = uuid::Uuid::new_v4().urn().to_string();
        let _guard = self.write.lock().await;
        let mut tx = self.db.begin().await?;
        let id = sqlx::query(
            "INSERT INTO jobs (uuid, owner, name, state, reasons, message, incoming, time_created, \
             time_last_document, attributes) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
        )
        .bind(&uuid)
        .bind(&new.owner)
        .bind(&new.name)
        .bind(status.state as i64)
        .bind(status.reasons.join(" "))
        .bind(&status.message)
        .bind(now)
        .bind(now)
        .bind(&blob)
        .execute(&mut *tx)
        .await?
        .last_insert_rowid() as u32;
        if let Some(r) = &mut release {
            r.record.job_id = id;
            release::insert_record(&mut tx, &r.record).await?;
        }
        if let Some(link) = link {
            // Before the document is moved into place: refused, nothing is left behind.
            let inserted = sqlx::query(
                "INSERT INTO cloud_jobs (cloud_printer, cloud_job, job_id) VALUES (?, ?, ?) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&link.printer)
            .bind(link.job)
            .bind(id as i64)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                return Err(SpoolError::CloudJobTaken(link.printer.clone(), link.job));
            }
        }
        let mut documents = Vec::new();
        let mut effects = Vec::new();
        let count = staged.len();
        for (i, (doc, meta)) in staged.into_iter().enumerate() {
            documents.push(self.attach(&mut tx, id, i as u32 + 1, doc, meta).await?);
            effects.extend(status.apply(
                JobEvent::DocumentReceived {
                    last: last_document && i + 1 == count,
                },
                now,
            )?);
        }
        if count > 0 {
            write_status(&mut tx, id, &status).await?;
        }
        tx.commit().await?;
        if let Some(r) = release {
            self.release.insert(r.record);
        }
        let job = Arc::new(Job {
            id,
            uuid,
            owner: new.owner,
            name: new.name,
            time_created: now,
            time_last_document: now,
            attributes: new.attributes,
            documents,
            status,
        });
        self.jobs
            .write()
            .expect("spool lock")
            .insert(id, job.clone());
        tracing::info!(job = id, state = %job.status.state, "job {id} created ({})", job.status.reasons.join(", "));
        let _ = self.changes.send(JobChange {
            job_id: id,
            from: None,
            to: job.status.state,
        });
        self.run_effects(&effects);
        Ok(job)
    }

    /// Adds a document to a job created with Create-Job. Durable when it returns.
    pub async fn add_document(
        &self,
        id: u32,
        staged: StagedDocument,
        meta: DocumentMeta,
        last_document: bool,
    ) -> Result<Arc<Job>, SpoolError> {
        let now = self.clock.now();
        let _guard = self.write.lock().await;
        let old = self.get(id).ok_or(SpoolError::NotFound(id))?;
        let mut status = old.status.clone();
        let effects = status.apply(
            JobEvent::DocumentReceived {
                last: last_document,
            },
            now,
        )?;
        let number = old.documents.len() as u32 + 1;
        let mut tx = self.db.begin().await?;
        let doc = self.attach(&mut tx, id, number, staged, meta).await?;
        write_status(&mut tx, id, &status).await?;
        sqlx::query("UPDATE jobs SET time_last_document = ? WHERE id = ?")
            .bind(now)
            .bind(id as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut job = (*old).clone();
        job.documents.push(doc);
        job.status = status;
        job.time_last_document = now;
        self.replace(job, Some(old.status.state), &effects);
        Ok(self.get(id).expect("just replaced"))
    }

    async fn attach(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        id: u32,
        number: u32,
        mut staged: StagedDocument,
        meta: DocumentMeta,
    ) -> Result<Document, SpoolError> {
        let target = self.document_path(id, number);
        tokio::fs::rename(&staged.path, &target).await?;
        // The rename itself must be durable before the database says the document exists.
        sync_dir(&self.dir.join("documents")).await?;
        staged.path = PathBuf::new();
        sqlx::query("INSERT INTO documents (job_id, number, format, compression, name, size) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(id as i64)
            .bind(number as i64)
            .bind(&meta.format)
            .bind(&meta.compression)
            .bind(&meta.name)
            .bind(staged.size as i64)
            .execute(&mut **tx)
            .await?;
        Ok(Document {
            number,
            format: meta.format,
            compression: meta.compression,
            name: meta.name,
            size: staged.size,
        })
    }

    /// The one place a job's state changes: applies `event` with the pure state machine, persists the
    /// result, publishes the new snapshot, logs the change and carries out the effects.
    pub async fn transition(&self, id: u32, event: JobEvent) -> Result<Arc<Job>, SpoolError> {
        self.transition_logged(id, event, StateLog::Plain).await
    }

    /// [`Spool::transition`], with a say in the log line the change makes: the worker names the
    /// output a job goes to, and keeps the back and forth of a retry against an offline device
    /// out of the log (it says that itself, at growing intervals).
    /// Names the queue in the metrics ("default" for the `[printer]` queue); first call wins.
    pub fn set_queue_label(&self, label: &str) {
        let _ = self.queue_label.set(label.to_string());
    }

    /// The queue's name in the metrics.
    pub fn queue_label(&self) -> &str {
        self.queue_label.get().map_or("default", String::as_str)
    }

    pub async fn transition_logged(
        &self,
        id: u32,
        event: JobEvent,
        log: StateLog<'_>,
    ) -> Result<Arc<Job>, SpoolError> {
        self.transition_inner(id, event, log, None)
            .await
            .map(|j| j.expect("unmarked transitions always apply"))
    }

    /// [`Spool::transition`] releasing a job held for release ([`release`]): the release record
    /// is marked in the same database transaction; `None` when it was already marked.
    async fn transition_marked(
        &self,
        id: u32,
        event: JobEvent,
        mark: Option<release::ReleaseMark>,
    ) -> Result<Option<Arc<Job>>, SpoolError> {
        self.transition_inner(id, event, StateLog::Plain, mark)
            .await
    }

    async fn transition_inner(
        &self,
        id: u32,
        event: JobEvent,
        log: StateLog<'_>,
        mark: Option<release::ReleaseMark>,
    ) -> Result<Option<Arc<Job>>, SpoolError> {
        let now = self.clock.now();
        let _guard = self.write.lock().await;
        let old = self.get(id).ok_or(SpoolError::NotFound(id))?;
        // A job held for release is released only by its PIN, its owner or an administrator
        // (`release`): Release-Job, Release-Held-New-Jobs, job-hold-until=no-hold do not.
        if mark.is_none() && event == JobEvent::Release && self.release.is_waiting(id) {
            return Err(SpoolError::Transition(TransitionError {
                state: old.status.state,
                action: "released without its PIN or its owner",
            }));
        }
        let mut status = old.status.clone();
        let effects = status.apply(event, now)?;
        if status != old.status || mark.is_some() {
            let mut tx = self.db.begin().await?;
            if let Some(mark) = mark {
                if !release::write_mark(&mut tx, id, mark, now).await? {
                    return Ok(None);
                }
            }
            write_status(&mut tx, id, &status).await?;
            // A finished job is never sent again, and a restarted one (Restart-Job) is meant to
            // print anew: either way what a device handed downstream no longer speaks for it.
            if status.state.is_terminal() || old.status.state.is_terminal() {
                sqlx::query("DELETE FROM device_jobs WHERE job_id = ?")
                    .bind(id as i64)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            if mark.is_some() {
                self.release.mark_released(id, now);
            }
        }
        let mut job = (*old).clone();
        job.status = status;
        if job.status.state.is_terminal() && !old.status.state.is_terminal() {
            // Counted here, where the state changes, so each job counts once.
            let pages = job
                .status
                .impressions_completed
                .max(job.status.pages_completed);
            crate::metrics::global().job_finished(
                self.queue_label(),
                job.status.state.keyword(),
                pages,
                job.documents.iter().map(|d| d.size).sum(),
            );
        }
        if job.status.state.is_terminal() && !self.keep_documents && !job.documents.is_empty() {
            for d in &job.documents {
                let _ = tokio::fs::remove_file(self.document_path(id, d.number)).await;
            }
        }
        self.replace_logged(job, Some(old.status.state), &effects, log);
        Ok(Some(self.get(id).expect("just replaced")))
    }

    /// Changes job attributes that are not state (Set-Job-Attributes): name and template attributes.
    pub async fn set_attributes(
        &self,
        id: u32,
        name: Option<String>,
        set: Vec<Attribute>,
    ) -> Result<Arc<Job>, SpoolError> {
        let _guard = self.write.lock().await;
        let old = self.get(id).ok_or(SpoolError::NotFound(id))?;
        let mut job = (*old).clone();
        if let Some(n) = name {
            job.name = n;
        }
        for a in set {
            job.attributes.retain(|x| x.name != a.name);
            job.attributes.push(a);
        }
        let mut blob = Vec::new();
        for a in &job.attributes {
            ipp::encode_attribute(a, &mut blob);
        }
        sqlx::query("UPDATE jobs SET name = ?, attributes = ? WHERE id = ?")
            .bind(&job.name)
            .bind(&blob)
            .bind(id as i64)
            .execute(&self.db)
            .await?;
        self.replace(job, None, &[]);
        Ok(self.get(id).expect("just replaced"))
    }

    fn replace(&self, job: Job, from: Option<JobState>, effects: &[Effect]) {
        self.replace_logged(job, from, effects, StateLog::Plain)
    }

    fn replace_logged(&self, job: Job, from: Option<JobState>, effects: &[Effect], log: StateLog) {
        let id = job.id;
        let to = job.status.state;
        let reasons = job.status.reasons.join(", ");
        // One line per state change says whose job it is and what (issue 16); Debug escapes
        // what a client put in the title.
        let pages = job.status.pages.max(job.status.pages_completed);
        let changed = from.is_some_and(|f| f != to);
        let what = if !changed {
            String::new()
        } else {
            format!(
                "{} {:?}{}",
                job.owner.escape_debug(),
                job.name,
                match pages {
                    0 => String::new(),
                    1 => ", 1 page".to_string(),
                    n => format!(", {n} pages"),
                }
            )
        };
        self.jobs
            .write()
            .expect("spool lock")
            .insert(id, Arc::new(job));
        if let Some(from) = from {
            if from != to {
                match log {
                    StateLog::Plain => {
                        tracing::info!(job = id, "job {id} ({what}): {from} -> {to} ({reasons})")
                    }
                    StateLog::Output(output) => tracing::info!(
                        job = id,
                        "job {id} ({what}): {from} -> {to} ({reasons}), output {output}"
                    ),
                    StateLog::Quiet => {
                        tracing::debug!(job = id, "job {id} ({what}): {from} -> {to} ({reasons})")
                    }
                }
                let _ = self.changes.send(JobChange {
                    job_id: id,
                    from: Some(from),
                    to,
                });
            }
        }
        self.run_effects(effects);
    }

    fn run_effects(&self, effects: &[Effect]) {
        for e in effects {
            match e {
                Effect::WakeWorker => self.wake.notify_one(),
                // The worker watches the job's state and stops by itself.
                Effect::StopProcessing => self.wake.notify_one(),
            }
        }
    }

    /// Removes finished jobs beyond the retention count or age. Job ids are never reused.
    pub async fn purge(&self, keep: u32, max_age_seconds: u64) -> Result<usize, SpoolError> {
        let now = self.clock.now();
        let finished: Vec<Arc<Job>> = self
            .list()
            .into_iter()
            .filter(|j| j.status.state.is_terminal())
            .collect();
        let excess = finished.len().saturating_sub(keep as usize);
        let doomed: Vec<u32> = finished
            .iter()
            .enumerate()
            .filter(|(i, j)| {
                *i < excess || now - j.status.time_completed.unwrap_or(now) > max_age_seconds as i64
            })
            .map(|(_, j)| j.id)
            .collect();
        if doomed.is_empty() {
            return Ok(0);
        }
        let _guard = self.write.lock().await;
        let mut tx = self.db.begin().await?;
        for id in &doomed {
            sqlx::query("DELETE FROM jobs WHERE id = ?")
                .bind(*id as i64)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.release.forget(&doomed);
        let mut jobs = self.jobs.write().expect("spool lock");
        for id in &doomed {
            if let Some(j) = jobs.remove(id) {
                for d in &j.documents {
                    let _ = std::fs::remove_file(self.document_path(*id, d.number));
                }
            }
        }
        Ok(doomed.len())
    }

    pub async fn setting(&self, key: &str) -> Result<Option<String>, SpoolError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.db)
                .await?,
        )
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), SpoolError> {
        sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// Sets after how many crashes in a row while processing a job it is aborted (at least 1).
    pub fn set_max_processing_crashes(&self, n: u32) {
        self.max_processing_crashes
            .store(n.max(1), Ordering::Relaxed);
    }

    /// Records, durably, that the worker is about to process job `id`. If earlier attempts on the
    /// job never ended ([`Spool::end_attempt`] not reached: the process died while processing it)
    /// `max_processing_crashes` times in a row, answers [`Attempt::Poison`] and forgets the count,
    /// so that a later Restart-Job starts afresh. Counting before processing, on disk, is what
    /// lets a job that kills the process every time (out of memory, a converter bug) be stopped
    /// instead of stopping every job behind it, across restarts (issue 11 item 3).
    pub async fn begin_attempt(&self, id: u32) -> Result<Attempt, SpoolError> {
        let _guard = self.write.lock().await;
        let crashes: Option<i64> =
            sqlx::query_scalar("SELECT unfinished FROM processing_attempts WHERE job_id = ?")
                .bind(id as i64)
                .fetch_optional(&self.db)
                .await?;
        let crashes = crashes.unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32;
        if crashes >= self.max_processing_crashes.load(Ordering::Relaxed) {
            sqlx::query("DELETE FROM processing_attempts WHERE job_id = ?")
                .bind(id as i64)
                .execute(&self.db)
                .await?;
            return Ok(Attempt::Poison { crashes });
        }
        sqlx::query(
            "INSERT INTO processing_attempts (job_id, unfinished) VALUES (?, 1) \
             ON CONFLICT(job_id) DO UPDATE SET unfinished = unfinished + 1",
        )
        .bind(id as i64)
        .execute(&self.db)
        .await?;
        Ok(Attempt::Proceed)
    }

    /// The attempt begun by [`Spool::begin_attempt`] ended without a crash (whatever its outcome).
    pub async fn end_attempt(&self, id: u32) -> Result<(), SpoolError> {
        let _guard = self.write.lock().await;
        sqlx::query("DELETE FROM processing_attempts WHERE job_id = ?")
            .bind(id as i64)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// Closes the database. A clean close is no crash: the counts of unfinished attempts are
    /// forgotten first, so stopping printbridge while a job prints (SIGTERM) never adds up to
    /// `max_processing_crashes`.
    pub async fn close(&self) {
        if let Err(e) = sqlx::query("DELETE FROM processing_attempts")
            .execute(&self.db)
            .await
        {
            tracing::warn!("cannot clear the processing attempts at close: {e}");
        }
        self.db.close().await;
    }

    /// Remembers what the output device handed to a downstream printer for job `id` (see
    /// [`DownstreamRecord`]); on disk when it returns (synchronous=FULL). Refused for a job that
    /// already finished, so a late record cannot outlive it.
    pub async fn record_device_job(&self, id: u32, r: &DownstreamRecord) -> Result<(), SpoolError> {
        let _guard = self.write.lock().await;
        let job = self.get(id).ok_or(SpoolError::NotFound(id))?;
        if job.status.state.is_terminal() {
            return Err(SpoolError::Transition(TransitionError {
                state: job.status.state,
                action: "given a downstream job record",
            }));
        }
        sqlx::query(
            "INSERT INTO device_jobs (job_id, printer_uri, document, downstream_job_id, downstream_job_uuid, submitted) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(job_id) DO UPDATE SET printer_uri = excluded.printer_uri, \
             document = excluded.document, downstream_job_id = excluded.downstream_job_id, \
             downstream_job_uuid = excluded.downstream_job_uuid, submitted = excluded.submitted",
        )
        .bind(id as i64)
        .bind(&r.printer_uri)
        .bind(r.document as i64)
        .bind(r.job_id.map(i64::from))
        .bind(&r.job_uuid)
        .bind(r.submitted)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// What the output device recorded for job `id`, if anything.
    pub async fn device_job(&self, id: u32) -> Result<Option<DownstreamRecord>, SpoolError> {
        let row = sqlx::query("SELECT * FROM device_jobs WHERE job_id = ?")
            .bind(id as i64)
            .fetch_optional(&self.db)
            .await?;
        Ok(row.map(|r| DownstreamRecord {
            printer_uri: r.get("printer_uri"),
            document: r.get::<i64, _>("document") as u32,
            job_id: r
                .get::<Option<i64>, _>("downstream_job_id")
                .and_then(|v| i32::try_from(v).ok()),
            job_uuid: r.get("downstream_job_uuid"),
            submitted: r.get::<i64, _>("submitted") != 0,
        }))
    }

    /// The cloud jobs taken for `cloud_printer`, oldest first.
    pub async fn cloud_jobs(&self, cloud_printer: &str) -> Result<Vec<CloudJob>, SpoolError> {
        let rows = sqlx::query(
            "SELECT cloud_printer, cloud_job, job_id, reported_state, reported_impressions \
             FROM cloud_jobs WHERE cloud_printer = ? ORDER BY cloud_job",
        )
        .bind(cloud_printer)
        .fetch_all(&self.db)
        .await?;
        Ok(rows.iter().map(cloud_job_row).collect())
    }

    /// The cloud job record of `link`, if it was taken.
    pub async fn cloud_job(&self, link: &CloudLink) -> Result<Option<CloudJob>, SpoolError> {
        let row = sqlx::query(
            "SELECT cloud_printer, cloud_job, job_id, reported_state, reported_impressions \
             FROM cloud_jobs WHERE cloud_printer = ? AND cloud_job = ?",
        )
        .bind(&link.printer)
        .bind(link.job)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.as_ref().map(cloud_job_row))
    }

    /// The cloud job local job `id` was made from, if any.
    pub async fn cloud_job_of(&self, id: u32) -> Result<Option<CloudJob>, SpoolError> {
        let row = sqlx::query(
            "SELECT cloud_printer, cloud_job, job_id, reported_state, reported_impressions \
             FROM cloud_jobs WHERE job_id = ?",
        )
        .bind(id as i64)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.as_ref().map(cloud_job_row))
    }

    /// Records what the cloud accepted about a cloud job (Update-Job-Status).
    pub async fn set_cloud_reported(
        &self,
        link: &CloudLink,
        state: i32,
        impressions: i64,
    ) -> Result<(), SpoolError> {
        sqlx::query(
            "UPDATE cloud_jobs SET reported_state = ?, reported_impressions = ? \
             WHERE cloud_printer = ? AND cloud_job = ?",
        )
        .bind(i64::from(state))
        .bind(impressions)
        .bind(&link.printer)
        .bind(link.job)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Forgets the record of job `id` (the device took its downstream job back).
    pub async fn clear_device_job(&self, id: u32) -> Result<(), SpoolError> {
        let _guard = self.write.lock().await;
        sqlx::query("DELETE FROM device_jobs WHERE job_id = ?")
            .bind(id as i64)
            .execute(&self.db)
            .await?;
        Ok(())
    }
}

fn cloud_job_row(r: &sqlx::sqlite::SqliteRow) -> CloudJob {
    CloudJob {
        link: CloudLink {
            printer: r.get("cloud_printer"),
            job: r.get("cloud_job"),
        },
        job_id: r
            .get::<Option<i64>, _>("job_id")
            .and_then(|v| u32::try_from(v).ok()),
        reported_state: r.get::<i64, _>("reported_state") as i32,
        reported_impressions: r.get("reported_impressions"),
    }
}

impl JobLedger for Spool {
    fn record<'a>(&'a self, job: u32, record: &'a DownstreamRecord) -> LedgerFuture<'a, ()> {
        Box::pin(async move {
            self.record_device_job(job, record)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn lookup(&self, job: u32) -> LedgerFuture<'_, Option<DownstreamRecord>> {
        Box::pin(async move { self.device_job(job).await.map_err(|e| e.to_string()) })
    }

    fn clear(&self, job: u32) -> LedgerFuture<'_, ()> {
        Box::pin(async move { self.clear_device_job(job).await.map_err(|e| e.to_string()) })
    }

    fn progress(&self, job: u32, impressions: u32, sheets: u32) -> LedgerFuture<'_, ()> {
        Box::pin(async move {
            self.transition(
                job,
                crate::model::job::JobEvent::Progress {
                    impressions,
                    sheets,
                },
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
        })
    }
}

async fn write_status(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    id: u32,
    s: &JobStatus,
) -> Result<(), SpoolError> {
    sqlx::query(
        "UPDATE jobs SET state = ?, reasons = ?, message = ?, incoming = ?, time_processing = ?, \
         time_completed = ?, impressions = ?, sheets = ?, pages = ?, pages_completed = ?, \
         restarts = ? WHERE id = ?",
    )
    .bind(s.state as i64)
    .bind(s.reasons.join(" "))
    .bind(&s.message)
    .bind(s.incoming as i64)
    .bind(s.time_processing)
    .bind(s.time_completed)
    .bind(s.impressions_completed as i64)
    .bind(s.sheets_completed as i64)
    .bind(s.pages as i64)
    .bind(s.pages_completed as i64)
    .bind(s.restarts as i64)
    .bind(id as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn document_file_name(job_id: u32, number: u32) -> String {
    format!("{job_id}-{number}.doc")
}

/// Decodes attributes stored by `encode_attribute` by wrapping them into a message.
fn decode_attributes(blob: &[u8], limits: &Limits) -> Option<Vec<Attribute>> {
    let mut msg = vec![2, 0, 0, 0, 0, 0, 0, 1, ipp::tag::JOB];
    msg.extend_from_slice(blob);
    msg.push(ipp::tag::END);
    let generous = Limits {
        max_attribute_bytes: msg.len() + 1,
        ..*limits
    };
    let (m, _) = ipp::parse_message(&msg, &generous).ok()?;
    Some(
        m.groups
            .into_iter()
            .next()
            .map(|g| g.attributes)
            .unwrap_or_default(),
    )
}

/// fsync a directory so that a rename inside it is durable.
pub async fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::clock::SystemClock;

    async fn doc(spool: &Spool, bytes: &'static [u8]) -> Result<StagedDocument, SpoolError> {
        spool.stage_document(bytes, 0).await
    }

    fn meta() -> DocumentMeta {
        DocumentMeta {
            format: "application/pdf".into(),
            compression: "none".into(),
            name: None,
        }
    }

    fn new_job(name: &str, hold: Option<&'static str>) -> NewJob {
        NewJob {
            owner: "alice".into(),
            name: name.into(),
            attributes: Vec::new(),
            hold,
        }
    }

    #[tokio::test]
    async fn a_cloud_job_makes_one_local_job_and_its_record_outlives_it() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), Arc::new(SystemClock), false)
            .await
            .unwrap();
        let link = CloudLink {
            printer: "p1".into(),
            job: 7,
        };
        let d = doc(&spool, b"%PDF-1 cloud").await.unwrap();
        let job = spool
            .create_cloud_job(new_job("c", None), vec![(d, meta())], &link)
            .await
            .unwrap();
        assert_eq!(
            spool.cloud_job_of(job.id).await.unwrap().unwrap().link,
            link
        );
        // Taking it again (a retry, a restart) creates nothing and leaves no file behind.
        let d = doc(&spool, b"%PDF-1 again").await.unwrap();
        let again = spool
            .create_cloud_job(new_job("c", None), vec![(d, meta())], &link)
            .await;
        assert!(
            matches!(again, Err(SpoolError::CloudJobTaken(_, 7))),
            "{again:?}"
        );
        assert_eq!(spool.list().len(), 1);
        assert_eq!(
            std::fs::read_dir(dir.path().join("staging"))
                .unwrap()
                .count(),
            0
        );
        // The same job id of another cloud printer is another job.
        let other = CloudLink {
            printer: "p2".into(),
            job: 7,
        };
        // All of a job's documents come in the one transaction.
        let d1 = doc(&spool, b"%PDF-1 other").await.unwrap();
        let d2 = doc(&spool, b"%PDF-1 second").await.unwrap();
        let two = spool
            .create_cloud_job(new_job("o", None), vec![(d1, meta()), (d2, meta())], &other)
            .await
            .unwrap();
        assert_eq!(two.documents.len(), 2);
        assert!(!two.status.incoming && two.status.is_printable());
        spool.set_cloud_reported(&link, 9, 2).await.unwrap();
        spool
            .transition(job.id, JobEvent::Cancel { by_operator: false })
            .await
            .unwrap();
        // Purged from the history, the record stays: the cloud job is still known as taken.
        spool.purge(0, 0).await.unwrap();
        let rec = spool.cloud_job(&link).await.unwrap().unwrap();
        assert_eq!(
            (rec.job_id, rec.reported_state, rec.reported_impressions),
            (None, 9, 2)
        );
        assert_eq!(spool.cloud_jobs("p1").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn restart_recovers_every_job_and_ids_keep_increasing() {
        let dir = tempfile::tempdir().unwrap();
        let (printing, held, done);
        {
            let spool = Spool::open(dir.path(), Arc::new(SystemClock), false)
                .await
                .unwrap();
            let d = doc(&spool, b"%PDF-1 a").await.unwrap();
            printing = spool
                .create_job(new_job("a", None), Some((d, meta())), true)
                .await
                .unwrap()
                .id;
            let d = doc(&spool, b"%PDF-1 b").await.unwrap();
            held = spool
                .create_job(
                    new_job("b", Some("job-hold-until-specified")),
                    Some((d, meta())),
                    true,
                )
                .await
                .unwrap()
                .id;
            let d = doc(&spool, b"%PDF-1 c").await.unwrap();
            done = spool
                .create_job(new_job("c", None), Some((d, meta())), true)
                .await
                .unwrap()
                .id;
            spool
                .transition(done, JobEvent::StartProcessing)
                .await
                .unwrap();
            spool.transition(done, JobEvent::Completed).await.unwrap();
            spool
                .transition(printing, JobEvent::StartProcessing)
                .await
                .unwrap();
            // A document staged but never attached: the client was never answered.
            let _orphan = doc(&spool, b"never acknowledged").await.unwrap();
            std::mem::forget(_orphan);
            spool.close().await;
        }
        let spool = Spool::open(dir.path(), Arc::new(SystemClock), false)
            .await
            .unwrap();
        let p = spool.get(printing).unwrap();
        assert_eq!(
            p.status.state,
            JobState::Pending,
            "interrupted job is printed again"
        );
        assert_eq!(p.status.restarts, 1);
        assert_eq!(
            std::fs::read(spool.document_path(printing, 1)).unwrap(),
            b"%PDF-1 a"
        );
        assert_eq!(spool.get(held).unwrap().status.state, JobState::PendingHeld);
        assert_eq!(spool.get(done).unwrap().status.state, JobState::Completed);
        assert_eq!(
            std::fs::read_dir(dir.path().join("staging"))
                .unwrap()
                .count(),
            0
        );
        let next = spool
            .create_job(new_job("d", None), None, false)
            .await
            .unwrap()
            .id;
        assert!(next > done, "job ids never go backwards");
        assert_eq!(spool.next_printable().unwrap().id, printing);
    }

    #[tokio::test]
    async fn retention_purges_oldest_finished_jobs_but_never_reuses_ids() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), Arc::new(SystemClock), false)
            .await
            .unwrap();
        let mut last = 0;
        for i in 0..5 {
            let d = doc(&spool, b"%PDF").await.unwrap();
            let id = spool
                .create_job(new_job(&format!("j{i}"), None), Some((d, meta())), true)
                .await
                .unwrap()
                .id;
            spool
                .transition(id, JobEvent::Cancel { by_operator: false })
                .await
                .unwrap();
            last = id;
        }
        assert_eq!(spool.purge(2, 3600).await.unwrap(), 3);
        let ids: Vec<u32> = spool.list().iter().map(|j| j.id).collect();
        assert_eq!(ids, [last - 1, last]);
        let d = doc(&spool, b"%PDF").await.unwrap();
        assert_eq!(
            spool
                .create_job(new_job("x", None), Some((d, meta())), true)
                .await
                .unwrap()
                .id,
            last + 1
        );
    }

    #[tokio::test]
    async fn downstream_record_survives_restart_and_ends_with_the_job() {
        let dir = tempfile::tempdir().unwrap();
        let record = DownstreamRecord {
            printer_uri: "ipp://printer:631/ipp/print".into(),
            document: 0,
            job_id: Some(7),
            job_uuid: Some("urn:uuid:1".into()),
            submitted: false,
        };
        let id;
        {
            let spool = Spool::open(dir.path(), Arc::new(SystemClock), false)
                .await
                .unwrap();
            let d = doc(&spool, b"%PDF-1 a").await.unwrap();
            id = spool
                .create_job(new_job("a", None), Some((d, meta())), true)
                .await
                .unwrap()
                .id;
            spool
                .transition(id, JobEvent::StartProcessing)
                .await
                .unwrap();
            spool.record_device_job(id, &record).await.unwrap();
            spool.close().await;
        }
        let spool = Spool::open(dir.path(), Arc::new(SystemClock), false)
            .await
            .unwrap();
        assert_eq!(spool.device_job(id).await.unwrap(), Some(record.clone()));
        let submitted = DownstreamRecord {
            submitted: true,
            ..record.clone()
        };
        spool.record_device_job(id, &submitted).await.unwrap();
        assert_eq!(spool.device_job(id).await.unwrap(), Some(submitted));
        spool
            .transition(id, JobEvent::StartProcessing)
            .await
            .unwrap();
        spool.transition(id, JobEvent::Completed).await.unwrap();
        assert_eq!(spool.device_job(id).await.unwrap(), None);
        // Too late: a finished job takes no record.
        assert!(spool.record_device_job(id, &record).await.is_err());
        assert_eq!(spool.device_job(id).await.unwrap(), None);
    }

    /// Attempts are counted on disk: one that never ended (the process died) counts across a
    /// restart, one that ended resets the count, and the limit makes the job poison once.
    #[tokio::test]
    async fn unfinished_attempts_survive_restarts_until_the_job_is_poison() {
        let dir = tempfile::tempdir().unwrap();
        let (poison, fine);
        {
            let spool = Spool::open(dir.path(), Arc::new(SystemClock), false)
                .await
                .unwrap();
            spool.set_max_processing_crashes(2);
            let d = doc(&spool, b"%PDF-1 a").await.unwrap();
            poison = spool
                .create_job(new_job("poison", None), Some((d, meta())), true)
                .await
                .unwrap()
                .id;
            let d = doc(&spool, b"%PDF-1 b").await.unwrap();
            fine = spool
                .create_job(new_job("fine", None), Some((d, meta())), true)
                .await
                .unwrap()
                .id;
            // `fine` crashed once, then an attempt ended: its count starts again.
            assert_eq!(spool.begin_attempt(fine).await.unwrap(), Attempt::Proceed);
            assert_eq!(spool.begin_attempt(fine).await.unwrap(), Attempt::Proceed);
            spool.end_attempt(fine).await.unwrap();
            assert_eq!(spool.begin_attempt(poison).await.unwrap(), Attempt::Proceed);
            // A crash: no close.
            drop(spool);
        }
        let spool = Spool::open(dir.path(), Arc::new(SystemClock), false)
            .await
            .unwrap();
        spool.set_max_processing_crashes(2);
        assert_eq!(spool.begin_attempt(poison).await.unwrap(), Attempt::Proceed);
        drop(spool);
        let spool = Spool::open(dir.path(), Arc::new(SystemClock), false)
            .await
            .unwrap();
        spool.set_max_processing_crashes(2);
        assert_eq!(
            spool.begin_attempt(poison).await.unwrap(),
            Attempt::Poison { crashes: 2 }
        );
        // Answered once: the count is gone, so a Restart-Job of the aborted job starts afresh.
        assert_eq!(spool.begin_attempt(poison).await.unwrap(), Attempt::Proceed);
        assert_eq!(spool.begin_attempt(fine).await.unwrap(), Attempt::Proceed);
        assert_eq!(spool.begin_attempt(fine).await.unwrap(), Attempt::Proceed);
        // A clean close (SIGTERM) is no crash: the two unfinished attempts are forgotten.
        spool.close().await;
        let spool = Spool::open(dir.path(), Arc::new(SystemClock), false)
            .await
            .unwrap();
        spool.set_max_processing_crashes(1);
        assert_eq!(spool.begin_attempt(fine).await.unwrap(), Attempt::Proceed);
    }
}
