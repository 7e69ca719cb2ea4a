//! Access requests (a registered device asks for another user) and the read-only queries behind
//! the administrator's overview page: pending registrations, printers with their users, users,
//! recent jobs. Every decision is one conditional UPDATE, so two instances cannot both decide.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{new_id, Store, StoreError};

/// One access request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    pub id: String,
    pub device_id: String,
    pub device_name: String,
    pub device_location: String,
    pub device_make_and_model: String,
    pub device_uuid: String,
    pub org_id: String,
    pub email: String,
    pub status: String,
    pub created_at: i64,
    pub expires_at: i64,
}

const REQUEST_COLUMNS: &str = "r.id, r.device_id, d.name AS device_name, \
     d.location AS device_location, d.make_and_model AS device_make_and_model, \
     d.uuid AS device_uuid, r.org_id, r.email, r.status, r.created_at, r.expires_at";

fn request_row(r: &AnyRow) -> Result<AccessRequest, sqlx::Error> {
    Ok(AccessRequest {
        id: r.try_get("id")?,
        device_id: r.try_get("device_id")?,
        device_name: r.try_get("device_name")?,
        device_location: r.try_get("device_location")?,
        device_make_and_model: r.try_get("device_make_and_model")?,
        device_uuid: r.try_get("device_uuid")?,
        org_id: r.try_get("org_id")?,
        email: r.try_get("email")?,
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

/// What creating an access request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessOutcome {
    Created(String),
    /// A live pending request for the same address already exists: its id.
    Existing(String),
    /// The device holds `max_pending` live requests already.
    TooMany,
}

/// A pending device registration, as the overview lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRegistration {
    pub user_code: String,
    pub device_name: String,
    pub make_and_model: String,
    pub location: String,
    pub uuid: String,
    pub user_email: String,
    pub expires_at: i64,
}

/// A printer with the addresses allowed on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterSummary {
    pub id: String,
    pub name: String,
    pub location: String,
    pub device_name: String,
    pub users: Vec<String>,
}

/// A user of the organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    pub email: String,
    pub role: String,
    pub enrolled: bool,
}

/// A recent Infrastructure Printer job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSummary {
    pub printer_name: String,
    pub job_id: i64,
    pub name: String,
    pub owner: String,
    pub state: i64,
    pub created_at: i64,
}

impl Store {
    /// Records a pending request for `email` on `device_id`, unless the same address has one
    /// already or the device holds `max_pending` live ones. The transaction starts by writing the
    /// device's row, which PostgreSQL locks until commit (and SQLite's single writer serialises),
    /// so concurrent requests for one device through several instances are counted one after
    /// the other and cannot exceed the limit.
    pub async fn create_access_request(
        &self,
        device_id: &str,
        org_id: &str,
        email: &str,
        now: i64,
        expires_at: i64,
        max_pending: i64,
    ) -> Result<AccessOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE devices SET id = id WHERE id = $1")
            .bind(device_id)
            .execute(&mut *tx)
            .await?;
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT id FROM access_requests WHERE device_id = $1 AND email = $2 \
             AND status = 'pending' AND expires_at > $3",
        )
        .bind(device_id)
        .bind(email)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = existing {
            return Ok(AccessOutcome::Existing(id));
        }
        let pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM access_requests WHERE device_id = $1 \
             AND status = 'pending' AND expires_at > $2",
        )
        .bind(device_id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        if pending >= max_pending {
            return Ok(AccessOutcome::TooMany);
        }
        let id = new_id();
        sqlx::query(
            "INSERT INTO access_requests (id, device_id, org_id, email, status, created_at, \
               expires_at) VALUES ($1, $2, $3, $4, 'pending', $5, $6)",
        )
        .bind(&id)
        .bind(device_id)
        .bind(org_id)
        .bind(email)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(AccessOutcome::Created(id))
    }

    pub async fn access_request(&self, id: &str) -> Result<Option<AccessRequest>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM access_requests r JOIN devices d ON d.id = r.device_id \
             WHERE r.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(request_row).transpose()?)
    }

    /// Live pending requests of an organisation, oldest first.
    pub async fn pending_access_requests(
        &self,
        org_id: &str,
        now: i64,
    ) -> Result<Vec<AccessRequest>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM access_requests r JOIN devices d ON d.id = r.device_id \
             WHERE r.org_id = $1 AND r.status = 'pending' AND r.expires_at > $2 \
             ORDER BY r.created_at, r.id"
        ))
        .bind(org_id)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(request_row).collect::<Result<_, _>>()?)
    }

    /// Approves a live pending request of `org_id`: the address is allowed on the device and on
    /// every printer it registered, in one transaction that starts with the conditional UPDATE.
    /// `false` when it was no longer pending (decided elsewhere, expired, another organisation's).
    pub async fn approve_access_request(
        &self,
        id: &str,
        org_id: &str,
        admin_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE access_requests SET status = 'approved', decided_by = $1, decided_at = $2 \
             WHERE id = $3 AND org_id = $4 AND status = 'pending' AND expires_at > $2",
        )
        .bind(admin_id)
        .bind(now)
        .bind(id)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO device_users (device_id, email, granted_by, granted_at) \
             SELECT device_id, email, $1, $2 FROM access_requests WHERE id = $3 \
             ON CONFLICT (device_id, email) DO NOTHING",
        )
        .bind(admin_id)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO printer_users (printer_id, email, granted_at) \
             SELECT p.id, r.email, $1 FROM access_requests r JOIN printers p \
               ON p.device_id = r.device_id WHERE r.id = $2 \
             ON CONFLICT (printer_id, email) DO NOTHING",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Denies a live pending request of `org_id`; `false` when it was no longer pending.
    pub async fn deny_access_request(
        &self,
        id: &str,
        org_id: &str,
        admin_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE access_requests SET status = 'denied', decided_by = $1, decided_at = $2 \
             WHERE id = $3 AND org_id = $4 AND status = 'pending' AND expires_at > $2",
        )
        .bind(admin_id)
        .bind(now)
        .bind(id)
        .bind(org_id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Live pending device registrations requested for users of `org_id` (a registration belongs
    /// to no organisation until it is approved; these are the ones its administrators can expect).
    pub async fn pending_registrations_for_org(
        &self,
        org_id: &str,
        now: i64,
    ) -> Result<Vec<PendingRegistration>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.user_code, a.device_name, a.device_make_and_model, a.device_location, \
               a.device_uuid, a.user_email, a.expires_at \
             FROM device_authorizations a JOIN users u ON u.email = a.user_email \
             WHERE u.org_id = $1 AND a.status = 'pending' AND a.expires_at > $2 \
             ORDER BY a.created_at, a.id",
        )
        .bind(org_id)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PendingRegistration {
                    user_code: r.try_get("user_code")?,
                    device_name: r.try_get("device_name")?,
                    make_and_model: r.try_get("device_make_and_model")?,
                    location: r.try_get("device_location")?,
                    uuid: r.try_get("device_uuid")?,
                    user_email: r.try_get("user_email")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// The organisation's printers with their allowed addresses, by name.
    pub async fn printer_summaries(&self, org_id: &str) -> Result<Vec<PrinterSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.id, p.name, p.location, d.name AS device_name FROM printers p \
             JOIN devices d ON d.id = p.device_id WHERE p.org_id = $1 ORDER BY p.name, p.id",
        )
        .bind(org_id)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = r.try_get("id")?;
            let users = self.printer_users(&id).await?;
            out.push(PrinterSummary {
                id,
                name: r.try_get("name")?,
                location: r.try_get("location")?,
                device_name: r.try_get("device_name")?,
                users,
            });
        }
        Ok(out)
    }

    /// The organisation's users, by address.
    pub async fn user_summaries(&self, org_id: &str) -> Result<Vec<UserSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT email, role, CASE WHEN password_hash IS NULL THEN 0 ELSE 1 END AS enrolled \
             FROM users WHERE org_id = $1 ORDER BY email",
        )
        .bind(org_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let enrolled: i32 = r.try_get("enrolled")?;
                Ok(UserSummary {
                    email: r.try_get("email")?,
                    role: r.try_get("role")?,
                    enrolled: enrolled != 0,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// The organisation's most recent jobs, newest first.
    pub async fn recent_jobs(
        &self,
        org_id: &str,
        limit: i64,
    ) -> Result<Vec<JobSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.name AS printer_name, j.job_id, j.name, j.owner, j.state, j.created_at \
             FROM infra_jobs j JOIN printers p ON p.id = j.printer_id WHERE p.org_id = $1 \
             ORDER BY j.created_at DESC, j.job_id DESC LIMIT $2",
        )
        .bind(org_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JobSummary {
                    printer_name: r.try_get("printer_name")?,
                    job_id: r.try_get("job_id")?,
                    name: r.try_get("name")?,
                    owner: r.try_get("owner")?,
                    state: r.try_get("state")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
