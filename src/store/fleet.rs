//! The fleet server's directory and requests (migrations/fleet/): enrolment tokens, appliances
//! and the registration requests relayed to them. Every change that races between instances
//! (using a token, taking a request, its terminal status, claiming the outcome mail) is one
//! conditional `UPDATE` whose outcome the database decides.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{new_id, Store, StoreError};

/// An appliance's standing in the directory.
pub const PENDING_APPROVAL: &str = "pending-approval";
pub const ENROLLED: &str = "enrolled";
pub const REJECTED: &str = "rejected";

/// A request's status before the appliance took it.
pub const QUEUED: &str = "queued";
/// The appliance took it (`accept`), nothing reported yet.
pub const ACCEPTED: &str = "accepted";
/// Statuses an appliance reports (B8); the last three are terminal.
pub const REPORTED: [&str; 6] = [
    "requested",
    "code-sent",
    "waiting",
    "completed",
    "denied",
    "failed",
];

pub fn is_terminal(status: &str) -> bool {
    matches!(status, "completed" | "denied" | "failed")
}

/// One appliance of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appliance {
    pub id: String,
    pub uuid: String,
    pub name: String,
    pub location: String,
    pub make_and_model: String,
    /// The preregistered administrator's address.
    pub admin_email: Option<String>,
    pub status: String,
    /// Registered with the cloud, as the appliance last said.
    pub registered: bool,
    pub cloud_url: Option<String>,
    pub created_at: i64,
    pub enrolled_at: Option<i64>,
    pub last_seen: Option<i64>,
    /// Its requests without an outcome yet.
    pub pending_requests: i64,
}

/// What an appliance says about itself when it enrols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplianceDetails {
    pub uuid: String,
    pub name: String,
    pub location: String,
    /// The location came from the fleet administrator's enrolment token: the appliance's own
    /// later reports do not replace it.
    pub location_preset: bool,
    pub make_and_model: String,
    pub admin_email: Option<String>,
}

/// One registration request (flow B).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: String,
    pub appliance_id: String,
    pub appliance_name: String,
    pub appliance_location: String,
    pub user_email: String,
    pub admin_email: String,
    pub retries: Option<i64>,
    pub status: String,
    pub message: String,
    pub attempts: Option<i64>,
    /// The signed-in user who asked (a user id), or `None` for `fleet admin request add`.
    pub requested_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub accepted_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// What a status report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportOutcome {
    /// Recorded; `terminal` when it was the request's outcome.
    Recorded { terminal: bool },
    /// The same terminal status again: nothing changes.
    Unchanged,
    /// The request has another outcome already (or a progress report came after it).
    Conflict,
    /// No such request for this appliance (another appliance's, or none at all).
    NotYours,
}

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter<'a> {
    pub user_email: Option<&'a str>,
    pub appliance_id: Option<&'a str>,
    pub limit: i64,
}

const APPLIANCE_COLUMNS: &str = "a.id, a.uuid, a.name, a.location, a.make_and_model, \
    a.admin_email, a.status, a.registered, a.cloud_url, a.created_at, a.enrolled_at, a.last_seen, \
    (SELECT COUNT(*) FROM requests r WHERE r.appliance_id = a.id AND r.finished_at IS NULL) \
    AS pending_requests";

fn appliance_row(r: &AnyRow) -> Result<Appliance, sqlx::Error> {
    Ok(Appliance {
        id: r.try_get("id")?,
        uuid: r.try_get("uuid")?,
        name: r.try_get("name")?,
        location: r.try_get("location")?,
        make_and_model: r.try_get("make_and_model")?,
        admin_email: r.try_get("admin_email")?,
        status: r.try_get("status")?,
        registered: r.try_get::<i64, _>("registered")? != 0,
        cloud_url: r.try_get("cloud_url")?,
        created_at: r.try_get("created_at")?,
        enrolled_at: r.try_get("enrolled_at")?,
        last_seen: r.try_get("last_seen")?,
        pending_requests: r.try_get("pending_requests")?,
    })
}

const REQUEST_COLUMNS: &str = "q.id, q.appliance_id, a.name AS appliance_name, \
    a.location AS appliance_location, q.user_email, q.admin_email, q.retries, q.status, \
    q.message, q.attempts, q.requested_by, q.created_at, q.updated_at, q.accepted_at, \
    q.finished_at";

/// A SELECT of requests (with their appliance's name and location) `WHERE condition`.
fn requests_where(condition: &str) -> String {
    format!(
        "SELECT {REQUEST_COLUMNS} FROM requests q JOIN appliances a ON a.id = q.appliance_id \
         WHERE {condition}"
    )
}

fn request_row(r: &AnyRow) -> Result<Request, sqlx::Error> {
    Ok(Request {
        id: r.try_get("id")?,
        appliance_id: r.try_get("appliance_id")?,
        appliance_name: r.try_get("appliance_name")?,
        appliance_location: r.try_get("appliance_location")?,
        user_email: r.try_get("user_email")?,
        admin_email: r.try_get("admin_email")?,
        retries: r.try_get("retries")?,
        status: r.try_get("status")?,
        message: r.try_get("message")?,
        attempts: r.try_get("attempts")?,
        requested_by: r.try_get("requested_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        accepted_at: r.try_get("accepted_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

impl Store {
    /// Creates the organisation `name` unless it exists (the fleet's accounts belong to one).
    pub async fn ensure_organisation(&self, name: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO organisations (id, name, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(new_id())
        .bind(name)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn create_enrol_token(
        &self,
        token_hash: &str,
        location: Option<&str>,
        admin_email: Option<&str>,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO enrol_tokens (token_hash, location, admin_email, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(location)
        .bind(admin_email)
        .bind(now)
        .bind(expires_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Uses up an unused, unexpired enrolment token for the appliance `uuid`: its preregistered
    /// (location, administrator address), or `None`.
    pub async fn use_enrol_token(
        &self,
        token_hash: &str,
        uuid: &str,
        now: i64,
    ) -> Result<Option<(Option<String>, Option<String>)>, StoreError> {
        let row = sqlx::query(
            "UPDATE enrol_tokens SET used_at = $1, used_by = $2 \
             WHERE token_hash = $3 AND used_at IS NULL AND expires_at > $1 \
             RETURNING location, admin_email",
        )
        .bind(now)
        .bind(uuid)
        .bind(token_hash)
        .fetch_optional(self.writer())
        .await?;
        match row {
            Some(r) => Ok(Some((r.try_get("location")?, r.try_get("admin_email")?))),
            None => Ok(None),
        }
    }

    async fn appliance_where(
        &self,
        condition: &str,
        value: &str,
    ) -> Result<Option<Appliance>, StoreError> {
        let r = sqlx::query(&format!(
            "SELECT {APPLIANCE_COLUMNS} FROM appliances a WHERE {condition} = $1"
        ))
        .bind(value)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.as_ref().map(appliance_row).transpose()?)
    }

    pub async fn appliance(&self, id: &str) -> Result<Option<Appliance>, StoreError> {
        self.appliance_where("a.id", id).await
    }

    pub async fn appliance_by_uuid(&self, uuid: &str) -> Result<Option<Appliance>, StoreError> {
        self.appliance_where("a.uuid", uuid).await
    }

    /// The appliance whose bearer secret hashes to `secret_hash`.
    pub async fn appliance_by_secret(
        &self,
        secret_hash: &str,
    ) -> Result<Option<Appliance>, StoreError> {
        self.appliance_where("a.secret_hash", secret_hash).await
    }

    /// Adds an appliance with status `status` ([`ENROLLED`] or [`PENDING_APPROVAL`]).
    pub async fn insert_appliance(
        &self,
        details: &ApplianceDetails,
        secret_hash: &str,
        status: &str,
        now: i64,
    ) -> Result<String, StoreError> {
        let id = new_id();
        let enrolled_at = (status == ENROLLED).then_some(now);
        sqlx::query(
            "INSERT INTO appliances (id, uuid, secret_hash, name, location, make_and_model, \
             admin_email, status, created_at, enrolled_at, last_seen, location_preset) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9, $11)",
        )
        .bind(&id)
        .bind(&details.uuid)
        .bind(secret_hash)
        .bind(&details.name)
        .bind(&details.location)
        .bind(&details.make_and_model)
        .bind(details.admin_email.as_deref())
        .bind(status)
        .bind(now)
        .bind(enrolled_at)
        .bind(i64::from(details.location_preset))
        .execute(self.writer())
        .await
        .map_err(|e| StoreError::unique(e, "an appliance with that uuid"))?;
        Ok(id)
    }

    /// An appliance enrolling again under its id: new details, secret and status (an enrolled
    /// appliance stays enrolled; `status` applies otherwise).
    pub async fn reenrol_appliance(
        &self,
        id: &str,
        details: &ApplianceDetails,
        secret_hash: &str,
        status: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE appliances SET secret_hash = $1, name = $2, \
             location = CASE WHEN $9 = 1 OR location_preset = 0 THEN $3 ELSE location END, \
             location_preset = CASE WHEN $9 = 1 THEN 1 ELSE location_preset END, \
             make_and_model = $4, admin_email = COALESCE($5, admin_email), \
             status = CASE WHEN status = 'enrolled' THEN status ELSE $6 END, \
             enrolled_at = CASE WHEN status = 'enrolled' OR $6 <> 'enrolled' THEN enrolled_at \
                           ELSE $7 END, \
             last_seen = $7 WHERE id = $8",
        )
        .bind(secret_hash)
        .bind(&details.name)
        .bind(&details.location)
        .bind(&details.make_and_model)
        .bind(details.admin_email.as_deref())
        .bind(status)
        .bind(now)
        .bind(id)
        .bind(i64::from(details.location_preset))
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Records that the appliance was heard from.
    pub async fn touch_appliance(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE appliances SET last_seen = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// The appliance's own report of its state.
    pub async fn set_appliance_state(
        &self,
        id: &str,
        registered: bool,
        cloud_url: Option<&str>,
        name: &str,
        location: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE appliances SET registered = $1, cloud_url = $2, name = $3, \
             location = CASE WHEN location_preset = 1 THEN location ELSE $4 END, \
             last_seen = $5 WHERE id = $6",
        )
        .bind(i64::from(registered))
        .bind(cloud_url)
        .bind(name)
        .bind(location)
        .bind(now)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Approves (`enrolled`) or rejects a pending enrolment; false when it was not pending.
    pub async fn decide_enrolment(
        &self,
        id: &str,
        status: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE appliances SET status = $1, \
             enrolled_at = CASE WHEN $1 = 'enrolled' THEN $2 ELSE enrolled_at END \
             WHERE id = $3 AND status = 'pending-approval'",
        )
        .bind(status)
        .bind(now)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets the preregistered administrator address of an appliance.
    pub async fn set_appliance_admin(
        &self,
        id: &str,
        admin_email: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE appliances SET admin_email = $1 WHERE id = $2")
            .bind(admin_email)
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The directory, by location then name; `status` narrows it, `search` matches name or
    /// location (case-insensitive substring).
    pub async fn list_appliances(
        &self,
        status: Option<&str>,
        search: Option<&str>,
    ) -> Result<Vec<Appliance>, StoreError> {
        let pattern = search.map(|s| {
            let escaped: String = s
                .to_lowercase()
                .chars()
                .flat_map(|c| match c {
                    '%' | '_' | '\\' => vec!['\\', c],
                    _ => vec![c],
                })
                .collect();
            format!("%{escaped}%")
        });
        let rows = sqlx::query(&format!(
            "SELECT {APPLIANCE_COLUMNS} FROM appliances a \
             WHERE ($1 IS NULL OR a.status = $1) \
             AND ($2 IS NULL OR LOWER(a.name) LIKE $2 ESCAPE '\\' \
                  OR LOWER(a.location) LIKE $2 ESCAPE '\\') \
             ORDER BY a.location, a.name, a.id LIMIT 10000"
        ))
        .bind(status)
        .bind(pattern)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(appliance_row).collect::<Result<_, _>>()?)
    }

    /// Makes a request for `appliance_id` (which the caller checked is enrolled).
    #[allow(clippy::too_many_arguments)]
    pub async fn create_request(
        &self,
        appliance_id: &str,
        user_email: &str,
        admin_email: &str,
        retries: Option<i64>,
        requested_by: Option<&str>,
        now: i64,
    ) -> Result<String, StoreError> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO requests (id, appliance_id, user_email, admin_email, retries, status, \
             requested_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&id)
        .bind(appliance_id)
        .bind(user_email)
        .bind(admin_email)
        .bind(retries)
        .bind(QUEUED)
        .bind(requested_by)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(id)
    }

    pub async fn request(&self, id: &str) -> Result<Option<Request>, StoreError> {
        let r = sqlx::query(&requests_where("q.id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(r.as_ref().map(request_row).transpose()?)
    }

    /// Requests, newest first.
    pub async fn list_requests(
        &self,
        filter: &RequestFilter<'_>,
    ) -> Result<Vec<Request>, StoreError> {
        let rows = sqlx::query(&requests_where(
            "($1 IS NULL OR q.user_email = $1) AND ($2 IS NULL OR q.appliance_id = $2) \
             ORDER BY q.created_at DESC, q.id LIMIT $3",
        ))
        .bind(filter.user_email)
        .bind(filter.appliance_id)
        .bind(filter.limit.clamp(1, 10_000))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(request_row).collect::<Result<_, _>>()?)
    }

    /// The appliance's requests it has not taken yet, oldest first.
    pub async fn open_requests(&self, appliance_id: &str) -> Result<Vec<Request>, StoreError> {
        let rows = sqlx::query(&requests_where(
            "q.appliance_id = $1 AND q.accepted_at IS NULL AND q.finished_at IS NULL \
             ORDER BY q.created_at, q.id LIMIT 100",
        ))
        .bind(appliance_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(request_row).collect::<Result<_, _>>()?)
    }

    /// Which of `appliances` have requests they have not taken: one query, whatever their
    /// number (callers keep the list within the backends' parameter limits: 500).
    pub async fn appliances_with_open_requests(
        &self,
        appliances: &[String],
    ) -> Result<Vec<String>, StoreError> {
        if appliances.is_empty() {
            return Ok(Vec::new());
        }
        let params: Vec<String> = (1..=appliances.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT DISTINCT appliance_id FROM requests \
             WHERE accepted_at IS NULL AND finished_at IS NULL AND appliance_id IN ({})",
            params.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for a in appliances {
            q = q.bind(a);
        }
        let rows = q.fetch_all(self.pool()).await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("appliance_id"))
            .collect::<Result<_, _>>()?)
    }

    /// The appliance takes one of its requests (again: no change). False when the request is
    /// not the appliance's.
    pub async fn accept_request(
        &self,
        appliance_id: &str,
        id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE requests SET accepted_at = COALESCE(accepted_at, $1), \
             status = CASE WHEN status = 'queued' THEN 'accepted' ELSE status END, \
             updated_at = CASE WHEN accepted_at IS NULL THEN $1 ELSE updated_at END \
             WHERE id = $2 AND appliance_id = $3",
        )
        .bind(now)
        .bind(id)
        .bind(appliance_id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the appliance's report on one of its requests (which also takes it). A terminal
    /// status is recorded once: the conditional `finished_at IS NULL` decides between
    /// concurrent reports.
    pub async fn report_request_status(
        &self,
        appliance_id: &str,
        id: &str,
        status: &str,
        message: &str,
        attempts: Option<i64>,
        now: i64,
    ) -> Result<ReportOutcome, StoreError> {
        let terminal = is_terminal(status);
        let done = sqlx::query(
            "UPDATE requests SET status = $1, message = $2, attempts = COALESCE($3, attempts), \
             updated_at = $4, accepted_at = COALESCE(accepted_at, $4), \
             finished_at = CASE WHEN $5 = 1 THEN $4 ELSE NULL END \
             WHERE id = $6 AND appliance_id = $7 AND finished_at IS NULL",
        )
        .bind(status)
        .bind(message)
        .bind(attempts)
        .bind(now)
        .bind(i64::from(terminal))
        .bind(id)
        .bind(appliance_id)
        .execute(self.writer())
        .await?;
        if done.rows_affected() == 1 {
            return Ok(ReportOutcome::Recorded { terminal });
        }
        Ok(match self.request(id).await? {
            Some(r) if r.appliance_id == appliance_id => {
                if r.status == status {
                    ReportOutcome::Unchanged
                } else {
                    ReportOutcome::Conflict
                }
            }
            _ => ReportOutcome::NotYours,
        })
    }

    /// Requests with an outcome whose user has not been mailed, finished before `before`.
    pub async fn unmailed_outcomes(&self, before: i64) -> Result<Vec<Request>, StoreError> {
        let rows = sqlx::query(&requests_where(
            "q.finished_at IS NOT NULL AND q.finished_at < $1 \
             AND q.outcome_mailed_at IS NULL ORDER BY q.finished_at LIMIT 100",
        ))
        .bind(before)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(request_row).collect::<Result<_, _>>()?)
    }

    /// Claims the outcome mail of a finished request for this instance: true for exactly one
    /// caller.
    pub async fn claim_outcome_mail(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE requests SET outcome_mailed_at = $1 \
             WHERE id = $2 AND finished_at IS NOT NULL AND outcome_mailed_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives back a claim whose mail could not be sent, for a later try.
    pub async fn release_outcome_mail(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE requests SET outcome_mailed_at = NULL WHERE id = $1")
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(())
    }
}
