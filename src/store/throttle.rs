//! Fixed-window counters in the database, so that limits hold across every instance behind a load
//! balancer: failed sign-ins, user-code guesses, device authorization requests.

use super::{Store, StoreError};

impl Store {
    /// Counts one hit of `subject` in `bucket` and returns the number of hits in the current
    /// window of `window_seconds` (a new window starts at the first hit after the old one ended).
    /// One upsert, so concurrent hits from several instances are all counted.
    pub async fn throttle_hit(
        &self,
        bucket: &str,
        subject: &str,
        now: i64,
        window_seconds: i64,
    ) -> Result<i64, StoreError> {
        let hits: i64 = sqlx::query_scalar(
            "INSERT INTO throttle (bucket, subject, window_start, hits) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (bucket, subject) DO UPDATE SET \
               hits = CASE WHEN throttle.window_start <= $4 THEN 1 ELSE throttle.hits + 1 END, \
               window_start = CASE WHEN throttle.window_start <= $4 THEN $3 \
                              ELSE throttle.window_start END \
             RETURNING hits",
        )
        .bind(bucket)
        .bind(subject)
        .bind(now)
        .bind(now - window_seconds)
        .fetch_one(self.writer())
        .await?;
        Ok(hits)
    }

    /// The hits of `subject` in `bucket` in the current window (0 when the window has ended).
    pub async fn throttle_count(
        &self,
        bucket: &str,
        subject: &str,
        now: i64,
        window_seconds: i64,
    ) -> Result<i64, StoreError> {
        let hits: Option<i64> = sqlx::query_scalar(
            "SELECT hits FROM throttle WHERE bucket = $1 AND subject = $2 AND window_start > $3",
        )
        .bind(bucket)
        .bind(subject)
        .bind(now - window_seconds)
        .fetch_optional(self.pool())
        .await?;
        Ok(hits.unwrap_or(0))
    }

    /// Forgets the hits of `subject` in `bucket`.
    pub async fn throttle_clear(&self, bucket: &str, subject: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM throttle WHERE bucket = $1 AND subject = $2")
            .bind(bucket)
            .bind(subject)
            .execute(self.writer())
            .await?;
        Ok(())
    }
}
