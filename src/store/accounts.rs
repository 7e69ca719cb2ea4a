//! Organisations, users, web sessions and one-time links. Addresses arrive normalised (trimmed,
//! lower-cased) from the caller; secrets arrive hashed.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{new_id, Store, StoreError};

/// A user's authority within the organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    fn parse(s: &str) -> Role {
        if s == "admin" {
            Role::Admin
        } else {
            Role::User
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub org_id: String,
    pub org_name: String,
    pub email: String,
    /// argon2 PHC string; `None` until the user has set a password.
    pub password_hash: Option<String>,
    pub role: Role,
    pub created_at: i64,
}

/// A signed-in web session.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    /// The anti-CSRF token every form of this session carries.
    pub csrf_token: String,
    pub expires_at: i64,
}

const USER_COLUMNS: &str = "u.id, u.org_id, o.name AS org_name, u.email, u.password_hash, u.role, \
                            u.created_at";

fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        org_name: row.try_get("org_name")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        role: Role::parse(&row.try_get::<String, _>("role")?),
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Creates an organisation and its first administrator together (both or neither).
    pub async fn create_org_with_admin(
        &self,
        name: &str,
        admin_email: &str,
        password_hash: Option<&str>,
        now: i64,
    ) -> Result<(Organisation, User), StoreError> {
        let org = Organisation {
            id: new_id(),
            name: name.to_string(),
            created_at: now,
        };
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO organisations (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&org.id)
            .bind(&org.name)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::unique(e, "an organisation with that name"))?;
        let user = User {
            id: new_id(),
            org_id: org.id.clone(),
            org_name: org.name.clone(),
            email: admin_email.to_string(),
            password_hash: password_hash.map(str::to_string),
            role: Role::Admin,
            created_at: now,
        };
        insert_user(&mut tx, &user).await?;
        tx.commit().await?;
        Ok((org, user))
    }

    /// Adds a user to the organisation called `org_name`.
    pub async fn create_user(
        &self,
        org_name: &str,
        email: &str,
        password_hash: Option<&str>,
        role: Role,
        now: i64,
    ) -> Result<User, StoreError> {
        let org = self
            .organisation_by_name(org_name)
            .await?
            .ok_or(StoreError::NotFound("organisation"))?;
        let user = User {
            id: new_id(),
            org_id: org.id,
            org_name: org.name,
            email: email.to_string(),
            password_hash: password_hash.map(str::to_string),
            role,
            created_at: now,
        };
        let mut conn = self.pool().acquire().await?;
        insert_user(&mut conn, &user).await?;
        Ok(user)
    }

    pub async fn organisation_by_name(
        &self,
        name: &str,
    ) -> Result<Option<Organisation>, StoreError> {
        let row = sqlx::query("SELECT id, name, created_at FROM organisations WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(Organisation {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
            }),
            None => None,
        })
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN organisations o ON o.id = u.org_id \
             WHERE u.email = $1"
        );
        let row = sqlx::query(&sql)
            .bind(email)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    pub async fn set_password_hash(&self, user_id: &str, hash: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(user_id)
            .execute(self.writer())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("user"));
        }
        Ok(())
    }

    pub async fn create_session(
        &self,
        id_hash: &str,
        user_id: &str,
        csrf_token: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(csrf_token)
        .bind(now)
        .bind(expires_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// The live session whose cookie hashes to `id_hash`.
    pub async fn session(&self, id_hash: &str, now: i64) -> Result<Option<Session>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, s.csrf_token, s.expires_at AS session_expires_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             JOIN organisations o ON o.id = u.org_id \
             WHERE s.id_hash = $1 AND s.expires_at > $2"
        );
        let row = sqlx::query(&sql)
            .bind(id_hash)
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Session {
            user: user_from_row(&row)?,
            csrf_token: row.try_get("csrf_token")?,
            expires_at: row.try_get("session_expires_at")?,
        }))
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Records a one-time link for `user_id` (e.g. purpose `set-password`).
    pub async fn create_link(
        &self,
        token_hash: &str,
        user_id: &str,
        purpose: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO one_time_links (token_hash, user_id, purpose, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(purpose)
        .bind(now)
        .bind(expires_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// The user of an unused, unexpired link (the link stays usable).
    pub async fn link_user(
        &self,
        token_hash: &str,
        purpose: &str,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM one_time_links l JOIN users u ON u.id = l.user_id \
             JOIN organisations o ON o.id = u.org_id \
             WHERE l.token_hash = $1 AND l.purpose = $2 AND l.used_at IS NULL \
             AND l.expires_at > $3"
        );
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .bind(purpose)
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    /// Uses up a link of `purpose` (e.g. a mailed sign-in link): its user's id, or `None` when
    /// the link is unknown, used (also by a concurrent request) or expired.
    pub async fn use_link(
        &self,
        token_hash: &str,
        purpose: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "UPDATE one_time_links SET used_at = $1 \
             WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 \
             RETURNING user_id",
        )
        .bind(now)
        .bind(token_hash)
        .bind(purpose)
        .fetch_optional(self.writer())
        .await?)
    }

    /// Every user, by address (at most 10,000).
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN organisations o ON o.id = u.org_id \
             ORDER BY u.email LIMIT 10000"
        );
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(user_from_row).collect::<Result<_, _>>()?)
    }

    /// Uses up a set-password link, sets the password and ends the user's web sessions, in one
    /// transaction. `None` when the link is unknown, used (also by a concurrent request) or
    /// expired.
    pub async fn use_link_set_password(
        &self,
        token_hash: &str,
        purpose: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.begin_write().await?;
        let user_id: Option<String> = sqlx::query_scalar(
            "UPDATE one_time_links SET used_at = $1 \
             WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 \
             RETURNING user_id",
        )
        .bind(now)
        .bind(token_hash)
        .bind(purpose)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(user_id) = user_id else {
            return Ok(None);
        };
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(&user_id)
            .execute(&mut *tx)
            .await?;
        // A new password ends every web session signed in with the old one (whoever had it).
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(&user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(user_id))
    }
}

async fn insert_user(conn: &mut sqlx::AnyConnection, user: &User) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO users (id, org_id, email, password_hash, role, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&user.id)
    .bind(&user.org_id)
    .bind(&user.email)
    .bind(user.password_hash.as_deref())
    .bind(user.role.as_str())
    .bind(user.created_at)
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::unique(e, "a user with that address"))?;
    Ok(())
}
