//! The registration requests on disk: their own SQLite file, `<state_dir>/cloud/registrations.db`
//! (the directory 0700 and the file 0600: they hold live device codes, and SQLite's -wal and
//! -shm files next to it are made with the default mode), migrations in
//! `migrations/registration/`. Every step of a request is one committed row update
//! (synchronous=FULL), so a kill -9 resumes from the last step taken.

use std::path::Path;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;

use crate::model::registration::Registration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("registration database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("registration database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("registration record {id} is unreadable: {why}")]
    Record { id: i64, why: String },
    #[error("registration database file: {0}")]
    Io(#[from] std::io::Error),
    #[error("no system randomness for a request id: {0}")]
    Random(String),
}

/// A new request id: 52 random bits with bit 52 set, so every new id has 16 digits (never one of
/// the small sequential ids of requests made by earlier versions, which stay readable) and is
/// still exact as a JavaScript number (below 2^53) for the web page.
fn random_id() -> Result<i64, StoreError> {
    let bits = getrandom::u64().map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(((bits & ((1 << 52) - 1)) | (1 << 52)) as i64)
}

pub struct RegistrationStore {
    db: SqlitePool,
}

impl RegistrationStore {
    pub async fn open(state_dir: &Path) -> Result<RegistrationStore, StoreError> {
        let dir = state_dir.join("cloud");
        std::fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let path = dir.join("registrations.db");
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let db = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations/registration").run(&db).await?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(RegistrationStore { db })
    }

    /// Stores a new request; its id is chosen here and written into `reg`.
    pub async fn insert(&self, reg: &mut Registration) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        // The id is the only thing that lets someone read a request (with its user's address)
        // without the administrator's password, so it is random, not the next number. A
        // collision (one in 2^52 per existing row) just draws again. The INSERT comes first (no
        // SELECT before it): a deferred transaction that read before writing fails at once with
        // SQLITE_BUSY ("database is locked", no busy wait) when the agent's `save` committed in
        // between, which the bridge tests hit under load.
        let id = loop {
            let id = random_id()?;
            let inserted = sqlx::query(
                "INSERT INTO registrations (id, user_email, created_at, record) VALUES (?, ?, ?, '')",
            )
            .bind(id)
            .bind(&reg.user_email)
            .bind(reg.created_at)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => break id,
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
        };
        reg.id = id;
        sqlx::query("UPDATE registrations SET record = ? WHERE id = ?")
            .bind(to_json(reg))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn save(&self, reg: &Registration) -> Result<(), StoreError> {
        let finished = reg.status.is_final() && reg.user_told;
        sqlx::query("UPDATE registrations SET record = ?, finished = ? WHERE id = ?")
            .bind(to_json(reg))
            .bind(finished as i64)
            .bind(reg.id)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    pub async fn get(&self, id: i64) -> Result<Option<Registration>, StoreError> {
        let row = sqlx::query("SELECT id, record FROM registrations WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.db)
            .await?;
        row.map(|r| from_row(&r)).transpose()
    }

    /// The latest `limit` requests, newest first.
    pub async fn list(&self, limit: i64) -> Result<Vec<Registration>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, record FROM registrations ORDER BY created_at DESC, id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Requests still needing work (no outcome yet, or the user not told yet).
    pub async fn open_requests(&self) -> Result<Vec<Registration>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, record FROM registrations WHERE finished = 0 ORDER BY created_at, id",
        )
        .fetch_all(&self.db)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Creation times of the requests since `since` (all users, or one address), oldest first.
    pub async fn created_since(
        &self,
        user_email: Option<&str>,
        since: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let rows = match user_email {
            Some(u) => sqlx::query(
                "SELECT created_at FROM registrations WHERE user_email = ? AND created_at >= ? \
                     ORDER BY created_at",
            )
            .bind(u)
            .bind(since)
            .fetch_all(&self.db)
            .await?,
            None => sqlx::query(
                "SELECT created_at FROM registrations WHERE created_at >= ? ORDER BY created_at",
            )
            .bind(since)
            .fetch_all(&self.db)
            .await?,
        };
        Ok(rows.iter().map(|r| r.get::<i64, _>(0)).collect())
    }

    pub async fn close(&self) {
        self.db.close().await;
    }
}

/// One fleet request as the appliance keeps it (migration 0002; bridge::fleet_link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetRequest {
    pub request_id: String,
    pub registration_id: Option<i64>,
    pub refused: Option<String>,
    pub accepted: bool,
    /// The last progress reported, as `status|attempts`; empty before the first report.
    pub reported: String,
}

/// The fleet link's bookkeeping lives in the registrations' database, next to the requests it
/// points at, so one commit order holds for both.
impl RegistrationStore {
    /// The fleet request, if this appliance has taken it before.
    pub async fn fleet_request(
        &self,
        fleet: &str,
        request_id: &str,
    ) -> Result<Option<FleetRequest>, StoreError> {
        let row = sqlx::query(
            "SELECT request_id, registration_id, refused, accepted, reported FROM fleet_requests \
             WHERE fleet = ? AND request_id = ?",
        )
        .bind(fleet)
        .bind(request_id)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.as_ref().map(fleet_from_row))
    }

    /// Records that the fleet's request became registration `registration_id` (or was refused
    /// for `refused`). Taking the same request again changes nothing.
    pub async fn fleet_take(
        &self,
        fleet: &str,
        request_id: &str,
        registration_id: Option<i64>,
        refused: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO fleet_requests (fleet, request_id, registration_id, refused, created_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (fleet, request_id) DO NOTHING",
        )
        .bind(fleet)
        .bind(request_id)
        .bind(registration_id)
        .bind(refused)
        .bind(now)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    pub async fn fleet_accepted(&self, fleet: &str, request_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE fleet_requests SET accepted = 1 WHERE fleet = ? AND request_id = ?")
            .bind(fleet)
            .bind(request_id)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// Notes what the fleet was told; `done` once it took a terminal outcome.
    pub async fn fleet_reported(
        &self,
        fleet: &str,
        request_id: &str,
        reported: &str,
        done: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE fleet_requests SET reported = ?, done = ? WHERE fleet = ? AND request_id = ?",
        )
        .bind(reported)
        .bind(done as i64)
        .bind(fleet)
        .bind(request_id)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// The fleet's requests whose outcome the fleet has not taken yet, oldest first.
    pub async fn fleet_open(&self, fleet: &str) -> Result<Vec<FleetRequest>, StoreError> {
        let rows = sqlx::query(
            "SELECT request_id, registration_id, refused, accepted, reported FROM fleet_requests \
             WHERE fleet = ? AND done = 0 ORDER BY created_at, request_id",
        )
        .bind(fleet)
        .fetch_all(&self.db)
        .await?;
        Ok(rows.iter().map(fleet_from_row).collect())
    }
}

/// The Proxy's printer subscriptions (migration 0003; bridge::proxy::queue), by cloud and cloud
/// printer: (notify-subscription-id, next notify-sequence-number).
impl RegistrationStore {
    pub async fn proxy_subscription(
        &self,
        cloud: &str,
        printer: &str,
    ) -> Result<Option<(i32, i32)>, StoreError> {
        let row = sqlx::query(
            "SELECT subscription_id, next_sequence FROM proxy_subscriptions \
             WHERE cloud = ? AND printer_id = ?",
        )
        .bind(cloud)
        .bind(printer)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Records the subscription `id` (a new one replaces the old) and the next sequence number.
    pub async fn keep_proxy_subscription(
        &self,
        cloud: &str,
        printer: &str,
        id: i32,
        next: i32,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO proxy_subscriptions (cloud, printer_id, subscription_id, next_sequence) \
             VALUES (?, ?, ?, ?) ON CONFLICT (cloud, printer_id) DO UPDATE SET \
             subscription_id = excluded.subscription_id, next_sequence = excluded.next_sequence",
        )
        .bind(cloud)
        .bind(printer)
        .bind(id)
        .bind(next)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Forgets subscription `id` of the printer (a newer one recorded since stays).
    pub async fn forget_proxy_subscription(
        &self,
        cloud: &str,
        printer: &str,
        id: i32,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM proxy_subscriptions \
             WHERE cloud = ? AND printer_id = ? AND subscription_id = ?",
        )
        .bind(cloud)
        .bind(printer)
        .bind(id)
        .execute(&self.db)
        .await?;
        Ok(())
    }
}

fn fleet_from_row(row: &sqlx::sqlite::SqliteRow) -> FleetRequest {
    FleetRequest {
        request_id: row.get(0),
        registration_id: row.get(1),
        refused: row.get(2),
        accepted: row.get::<i64, _>(3) != 0,
        reported: row.get(4),
    }
}

fn to_json(reg: &Registration) -> String {
    serde_json::to_string(reg).expect("a Registration always serializes")
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Registration, StoreError> {
    let id: i64 = row.get(0);
    let text: String = row.get(1);
    serde_json::from_str(&text).map_err(|e| StoreError::Record {
        id,
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::registration::{Event, Status};

    #[tokio::test]
    async fn requests_survive_reopening_and_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = RegistrationStore::open(dir.path()).await.unwrap();
        let mut a = Registration::new(0, "bob@example.com", "ann@example.com", 3, 100);
        store.insert(&mut a).await.unwrap();
        let mut b = Registration::new(0, "eve@example.com", "ann@example.com", 3, 200);
        store.insert(&mut b).await.unwrap();
        assert_ne!(a.id, b.id);
        // Random, not sequential: 16 digits, below 2^53.
        for id in [a.id, b.id] {
            assert!((1 << 52..1 << 53).contains(&id), "id {id}");
        }
        b.apply(Event::AccessDenied, 210);
        b.apply(Event::UserTold, 210);
        store.save(&b).await.unwrap();
        store.close().await;

        let store = RegistrationStore::open(dir.path()).await.unwrap();
        let open = store.open_requests().await.unwrap();
        assert_eq!(open, vec![a.clone()]);
        assert_eq!(
            store.get(b.id).await.unwrap().unwrap().status,
            Status::Denied
        );
        assert_eq!(store.list(10).await.unwrap().len(), 2);
        assert_eq!(
            store
                .created_since(Some("bob@example.com"), 0)
                .await
                .unwrap(),
            vec![100]
        );
        assert_eq!(store.created_since(None, 150).await.unwrap(), vec![200]);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("cloud/registrations.db")), 0o600);
        assert_eq!(mode(&dir.path().join("cloud")), 0o700);
    }
}
