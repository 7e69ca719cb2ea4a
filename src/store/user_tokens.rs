//! Users' personal access tokens (Bearer credentials for IPP clients): made, listed, revoked, and
//! resolved to their user. Only hashes are stored.

use sqlx::Row;

use super::{new_id, Store, StoreError};

/// A token as its owner sees it in the list (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserToken {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Store {
    pub async fn create_user_token(
        &self,
        user_id: &str,
        name: &str,
        token_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<UserToken, StoreError> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO user_tokens (id, token_hash, user_id, name, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(token_hash)
        .bind(user_id)
        .bind(name)
        .bind(now)
        .bind(expires_at)
        .execute(self.writer())
        .await?;
        Ok(UserToken {
            id,
            name: name.to_string(),
            created_at: now,
            expires_at,
        })
    }

    /// The user's live tokens, newest first.
    pub async fn user_tokens(&self, user_id: &str, now: i64) -> Result<Vec<UserToken>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, expires_at FROM user_tokens \
             WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at DESC, id",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UserToken {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Revokes one of the user's tokens; `false` when there is no such token of theirs.
    pub async fn revoke_user_token(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM user_tokens WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The address of the user a live token belongs to (an account waiting for enrolment has
    /// no password and is refused, whatever tokens it might hold).
    pub async fn user_email_by_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT u.email FROM user_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.expires_at > $2 AND u.password_hash IS NOT NULL",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?)
    }
}
