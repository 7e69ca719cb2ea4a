//! RFC 8628 device authorization requests, the devices they register and the devices' OAuth
//! tokens. Every state change is one conditional statement (or a transaction that starts with
//! one), so two instances can never both approve, redeem or rotate the same thing.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{new_id, Store, StoreError};

/// What a new device authorization request records. Secrets arrive hashed.
#[derive(Debug, Clone)]
pub struct NewDeviceAuthorization {
    pub device_code_hash: String,
    /// Normalised: 8 letters, upper case, no dash.
    pub user_code: String,
    pub client_id: String,
    pub scope: String,
    pub device_name: String,
    pub device_make_and_model: String,
    /// `urn:uuid:...`, or empty when the device sent none.
    pub device_uuid: String,
    pub device_location: String,
    /// The requesting user's address, or empty.
    pub user_email: String,
    pub client_ip: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub interval_seconds: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationStatus {
    Pending,
    Approved,
    Denied,
    /// Approved and the tokens handed out: the device_code is used up.
    Issued,
}

impl AuthorizationStatus {
    fn parse(s: &str) -> AuthorizationStatus {
        match s {
            "approved" => AuthorizationStatus::Approved,
            "denied" => AuthorizationStatus::Denied,
            "issued" => AuthorizationStatus::Issued,
            _ => AuthorizationStatus::Pending,
        }
    }
}

/// A stored device authorization request.
#[derive(Debug, Clone)]
pub struct DeviceAuthorization {
    pub id: String,
    pub user_code: String,
    pub client_id: String,
    pub scope: String,
    pub device_name: String,
    pub device_make_and_model: String,
    pub device_uuid: String,
    pub device_location: String,
    pub user_email: String,
    pub client_ip: String,
    pub status: AuthorizationStatus,
    pub created_at: i64,
    pub expires_at: i64,
    pub interval_seconds: i64,
    pub org_id: Option<String>,
    pub approved_email: Option<String>,
    pub device_id: Option<String>,
}

const AUTHZ_COLUMNS: &str = "id, user_code, client_id, scope, device_name, device_make_and_model, \
     device_uuid, device_location, user_email, client_ip, status, created_at, expires_at, \
     interval_seconds, org_id, approved_email, device_id";

fn authz_from_row(r: &AnyRow) -> Result<DeviceAuthorization, sqlx::Error> {
    Ok(DeviceAuthorization {
        id: r.try_get("id")?,
        user_code: r.try_get("user_code")?,
        client_id: r.try_get("client_id")?,
        scope: r.try_get("scope")?,
        device_name: r.try_get("device_name")?,
        device_make_and_model: r.try_get("device_make_and_model")?,
        device_uuid: r.try_get("device_uuid")?,
        device_location: r.try_get("device_location")?,
        user_email: r.try_get("user_email")?,
        client_ip: r.try_get("client_ip")?,
        status: AuthorizationStatus::parse(&r.try_get::<String, _>("status")?),
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        interval_seconds: r.try_get("interval_seconds")?,
        org_id: r.try_get("org_id")?,
        approved_email: r.try_get("approved_email")?,
        device_id: r.try_get("device_id")?,
    })
}

/// What the store saw when a device polled the token endpoint (the poll is recorded).
#[derive(Debug, Clone)]
pub struct Poll {
    pub id: String,
    pub client_id: String,
    pub scope: String,
    pub status: AuthorizationStatus,
    pub expires_at: i64,
    /// The interval from now on (already grown by 5 s when this poll came too early).
    pub interval_seconds: i64,
    /// This poll came sooner than the interval after the previous one (RFC 8628 slow_down).
    pub too_fast: bool,
}

/// Outcome of recording a new request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted,
    /// The device or the user already has the maximum of pending requests.
    TooManyPending,
}

/// The device and tokens a redeemed authorization produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub device_id: String,
    pub scope: String,
}

/// Hashes and lifetimes of a fresh access + refresh token pair.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_hash: String,
    pub access_expires_at: i64,
    pub refresh_hash: String,
    pub refresh_expires_at: i64,
}

/// A registered appliance (a "device" in RFC 8628 terms; not an output device of `crate::device`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredDevice {
    pub id: String,
    pub org_id: String,
    pub org_name: String,
    pub name: String,
    pub make_and_model: String,
    pub uuid: String,
    pub location: String,
    pub client_id: String,
    pub created_at: i64,
}

/// What a valid access token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    pub device_id: String,
    pub client_id: String,
    pub scope: String,
    pub expires_at: i64,
}

impl Store {
    /// Records a new request unless the device (by UUID) or the requesting user (by address)
    /// already has `max_pending` live pending requests. `Duplicate` when the user code is taken
    /// (the caller draws another).
    pub async fn insert_device_authorization(
        &self,
        a: &NewDeviceAuthorization,
        max_pending: i64,
    ) -> Result<(String, InsertOutcome), StoreError> {
        let id = new_id();
        let done = sqlx::query(
            "INSERT INTO device_authorizations (id, device_code_hash, user_code, client_id, scope, \
               device_name, device_make_and_model, device_uuid, device_location, user_email, \
               client_ip, status, created_at, expires_at, interval_seconds) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12, $13, $14 \
             WHERE (SELECT COUNT(*) FROM device_authorizations \
                    WHERE $8 <> '' AND device_uuid = $8 AND status = 'pending' \
                    AND expires_at > $12) < $15 \
               AND (SELECT COUNT(*) FROM device_authorizations \
                    WHERE $10 <> '' AND user_email = $10 AND status = 'pending' \
                    AND expires_at > $12) < $15",
        )
        .bind(&id)
        .bind(&a.device_code_hash)
        .bind(&a.user_code)
        .bind(&a.client_id)
        .bind(&a.scope)
        .bind(&a.device_name)
        .bind(&a.device_make_and_model)
        .bind(&a.device_uuid)
        .bind(&a.device_location)
        .bind(&a.user_email)
        .bind(&a.client_ip)
        .bind(a.created_at)
        .bind(a.expires_at)
        .bind(a.interval_seconds)
        .bind(max_pending)
        .execute(self.writer())
        .await
        .map_err(|e| StoreError::unique(e, "that user code"))?;
        let outcome = if done.rows_affected() == 1 {
            InsertOutcome::Inserted
        } else {
            InsertOutcome::TooManyPending
        };
        Ok((id, outcome))
    }

    /// The live pending request with this (normalised) user code.
    pub async fn pending_authorization_by_user_code(
        &self,
        user_code: &str,
        now: i64,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let sql = format!(
            "SELECT {AUTHZ_COLUMNS} FROM device_authorizations \
             WHERE user_code = $1 AND status = 'pending' AND expires_at > $2"
        );
        let row = sqlx::query(&sql)
            .bind(user_code)
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(authz_from_row).transpose()?)
    }

    /// The live pending request holding this device_code (by its hash).
    pub async fn pending_authorization_by_device_code_hash(
        &self,
        hash: &str,
        now: i64,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let sql = format!(
            "SELECT {AUTHZ_COLUMNS} FROM device_authorizations \
             WHERE device_code_hash = $1 AND status = 'pending' AND expires_at > $2"
        );
        let row = sqlx::query(&sql)
            .bind(hash)
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(authz_from_row).transpose()?)
    }

    pub async fn authorization(&self, id: &str) -> Result<Option<DeviceAuthorization>, StoreError> {
        let sql = format!("SELECT {AUTHZ_COLUMNS} FROM device_authorizations WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(authz_from_row).transpose()?)
    }

    /// Live pending requests, newest first (for the admin pages).
    pub async fn pending_authorizations(
        &self,
        now: i64,
    ) -> Result<Vec<DeviceAuthorization>, StoreError> {
        let sql = format!(
            "SELECT {AUTHZ_COLUMNS} FROM device_authorizations \
             WHERE status = 'pending' AND expires_at > $1 ORDER BY created_at DESC, id"
        );
        let rows = sqlx::query(&sql).bind(now).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(authz_from_row).collect::<Result<_, _>>()?)
    }

    /// Approves a live pending request on behalf of `org_id`, allowing `user_email` on the device.
    /// `false` when it is no longer pending (decided elsewhere, or expired).
    pub async fn approve_authorization(
        &self,
        id: &str,
        org_id: &str,
        admin_id: &str,
        user_email: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE device_authorizations SET status = 'approved', org_id = $1, decided_by = $2, \
               decided_at = $3, approved_email = $4 \
             WHERE id = $5 AND status = 'pending' AND expires_at > $3",
        )
        .bind(org_id)
        .bind(admin_id)
        .bind(now)
        .bind(user_email)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Denies a live pending request. `false` when it is no longer pending.
    pub async fn deny_authorization(
        &self,
        id: &str,
        org_id: &str,
        admin_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE device_authorizations SET status = 'denied', org_id = $1, decided_by = $2, \
               decided_at = $3 \
             WHERE id = $4 AND status = 'pending' AND expires_at > $3",
        )
        .bind(org_id)
        .bind(admin_id)
        .bind(now)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a token-endpoint poll of the request whose device_code hashes to
    /// `device_code_hash` and returns its state. A poll of a live pending request that comes
    /// sooner than the interval after the previous one grows the interval by 5 s (RFC 8628 §3.5),
    /// atomically, whichever instance the polls reach. `None` for an unknown device_code.
    pub async fn poll_authorization(
        &self,
        device_code_hash: &str,
        now: i64,
    ) -> Result<Option<Poll>, StoreError> {
        let row = sqlx::query(
            "UPDATE device_authorizations SET \
               last_poll_slow = CASE WHEN status = 'pending' AND expires_at > $2 \
                   AND last_poll_at IS NOT NULL AND $2 - last_poll_at < interval_seconds \
                   THEN 1 ELSE 0 END, \
               interval_seconds = CASE WHEN status = 'pending' AND expires_at > $2 \
                   AND last_poll_at IS NOT NULL AND $2 - last_poll_at < interval_seconds \
                   THEN interval_seconds + 5 ELSE interval_seconds END, \
               last_poll_at = $2 \
             WHERE device_code_hash = $1 \
             RETURNING id, client_id, scope, status, expires_at, interval_seconds, last_poll_slow",
        )
        .bind(device_code_hash)
        .bind(now)
        .fetch_optional(self.writer())
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(Poll {
            id: r.try_get("id")?,
            client_id: r.try_get("client_id")?,
            scope: r.try_get("scope")?,
            status: AuthorizationStatus::parse(&r.try_get::<String, _>("status")?),
            expires_at: r.try_get("expires_at")?,
            interval_seconds: r.try_get("interval_seconds")?,
            too_fast: r.try_get::<i64, _>("last_poll_slow")? != 0,
        }))
    }

    /// Redeems an approved, live request exactly once: marks it issued, registers the device,
    /// allows the approved user on it and stores the token pair, in one transaction. `None` when
    /// it was not (or no longer) redeemable, e.g. a concurrent poll on another instance won.
    pub async fn redeem_authorization(
        &self,
        id: &str,
        tokens: &TokenPair,
        now: i64,
    ) -> Result<Option<Issued>, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE device_authorizations SET status = 'issued' \
             WHERE id = $1 AND status = 'approved' AND expires_at > $2 \
             RETURNING org_id, client_id, scope, device_name, device_make_and_model, device_uuid, \
               device_location, approved_email, decided_by",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let org_id: String = r.try_get("org_id")?;
        let client_id: String = r.try_get("client_id")?;
        let scope: String = r.try_get("scope")?;
        let approved_email: Option<String> = r.try_get("approved_email")?;
        let decided_by: Option<String> = r.try_get("decided_by")?;
        let device_id = new_id();
        sqlx::query(
            "INSERT INTO devices (id, org_id, name, make_and_model, uuid, location, client_id, \
               created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&device_id)
        .bind(&org_id)
        .bind(r.try_get::<String, _>("device_name")?)
        .bind(r.try_get::<String, _>("device_make_and_model")?)
        .bind(r.try_get::<String, _>("device_uuid")?)
        .bind(r.try_get::<String, _>("device_location")?)
        .bind(&client_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE device_authorizations SET device_id = $1 WHERE id = $2")
            .bind(&device_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if let Some(email) = approved_email.filter(|e| !e.is_empty()) {
            sqlx::query(
                "INSERT INTO device_users (device_id, email, granted_by, granted_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&device_id)
            .bind(email)
            .bind(decided_by)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        insert_tokens(&mut tx, tokens, &device_id, &client_id, &scope, now).await?;
        tx.commit().await?;
        Ok(Some(Issued { device_id, scope }))
    }

    /// Rotates a refresh token: the old one is revoked (once, whichever instance gets there
    /// first) and a new pair stored. `None` when the refresh token is unknown, revoked, expired
    /// or belongs to another client.
    pub async fn rotate_refresh_token(
        &self,
        refresh_hash: &str,
        client_id: &str,
        tokens: &TokenPair,
        now: i64,
    ) -> Result<Option<Issued>, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE oauth_tokens SET revoked_at = $1 \
             WHERE token_hash = $2 AND kind = 'refresh' AND revoked_at IS NULL \
               AND expires_at > $1 AND client_id = $3 \
             RETURNING device_id, scope",
        )
        .bind(now)
        .bind(refresh_hash)
        .bind(client_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let device_id: String = r.try_get("device_id")?;
        let scope: String = r.try_get("scope")?;
        insert_tokens(&mut tx, tokens, &device_id, client_id, &scope, now).await?;
        tx.commit().await?;
        Ok(Some(Issued { device_id, scope }))
    }

    /// What a live, unrevoked access token grants.
    pub async fn access_grant(
        &self,
        access_hash: &str,
        now: i64,
    ) -> Result<Option<AccessGrant>, StoreError> {
        let row = sqlx::query(
            "SELECT device_id, client_id, scope, expires_at FROM oauth_tokens \
             WHERE token_hash = $1 AND kind = 'access' AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(access_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(AccessGrant {
            device_id: r.try_get("device_id")?,
            client_id: r.try_get("client_id")?,
            scope: r.try_get("scope")?,
            expires_at: r.try_get("expires_at")?,
        }))
    }

    /// The device a live access token (its hash) was granted to: [`Store::access_grant`] and
    /// [`Store::device`] in one query (every control-channel request and acknowledgement asks).
    pub async fn device_by_access(
        &self,
        access_hash: &str,
        now: i64,
    ) -> Result<Option<RegisteredDevice>, StoreError> {
        let row = sqlx::query(
            "SELECT d.id, d.org_id, o.name AS org_name, d.name, d.make_and_model, d.uuid, \
               d.location, d.client_id, d.created_at \
             FROM oauth_tokens t JOIN devices d ON d.id = t.device_id \
               JOIN organisations o ON o.id = d.org_id \
             WHERE t.token_hash = $1 AND t.kind = 'access' AND t.revoked_at IS NULL \
               AND t.expires_at > $2",
        )
        .bind(access_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(device_row).transpose()
    }

    pub async fn device(&self, id: &str) -> Result<Option<RegisteredDevice>, StoreError> {
        let row = sqlx::query(
            "SELECT d.id, d.org_id, o.name AS org_name, d.name, d.make_and_model, d.uuid, \
               d.location, d.client_id, d.created_at \
             FROM devices d JOIN organisations o ON o.id = d.org_id WHERE d.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(device_row).transpose()
    }

    /// Addresses allowed on a device, sorted.
    pub async fn device_users(&self, device_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar(
                "SELECT email FROM device_users WHERE device_id = $1 ORDER BY email",
            )
            .bind(device_id)
            .fetch_all(self.pool())
            .await?,
        )
    }

    /// Addresses allowed on a device whose account has no password yet (or no account at all):
    /// they cannot print until they enrol. Sorted.
    pub async fn device_users_not_enrolled(
        &self,
        device_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT d.email FROM device_users d LEFT JOIN users u ON u.email = d.email \
             WHERE d.device_id = $1 AND u.password_hash IS NULL ORDER BY d.email",
        )
        .bind(device_id)
        .fetch_all(self.pool())
        .await?)
    }
}

async fn insert_tokens(
    conn: &mut sqlx::AnyConnection,
    t: &TokenPair,
    device_id: &str,
    client_id: &str,
    scope: &str,
    now: i64,
) -> Result<(), StoreError> {
    for (hash, kind, expires_at) in [
        (&t.access_hash, "access", t.access_expires_at),
        (&t.refresh_hash, "refresh", t.refresh_expires_at),
    ] {
        sqlx::query(
            "INSERT INTO oauth_tokens (token_hash, kind, device_id, client_id, scope, created_at, \
               expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(hash)
        .bind(kind)
        .bind(device_id)
        .bind(client_id)
        .bind(scope)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn device_row(r: &sqlx::any::AnyRow) -> Result<RegisteredDevice, StoreError> {
    Ok(RegisteredDevice {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        org_name: r.try_get("org_name")?,
        name: r.try_get("name")?,
        make_and_model: r.try_get("make_and_model")?,
        uuid: r.try_get("uuid")?,
        location: r.try_get("location")?,
        client_id: r.try_get("client_id")?,
        created_at: r.try_get("created_at")?,
    })
}
