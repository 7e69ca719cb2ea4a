//! Documents as chunked rows (`blobs`, `blob_chunks`; migration 0007), for
//! `cloud::blob::DbBlobStore`. An upload is one transaction: its chunks and finally its `blobs`
//! row, committed together, so a document is visible only complete and an interrupted upload
//! (an error, a dropped connection, a killed process) leaves no row behind.

use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError};

/// An upload in progress: dropped without [`BlobUpload::finish`], it rolls back.
pub struct BlobUpload {
    tx: Transaction<'static, Any>,
    key: String,
    chunks: i64,
}

impl BlobUpload {
    /// Appends the next chunk.
    pub async fn chunk(&mut self, data: &[u8]) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO blob_chunks (key, number, data) VALUES ($1, $2, $3)")
            .bind(&self.key)
            .bind(self.chunks)
            .bind(data.to_vec())
            .execute(&mut *self.tx)
            .await?;
        self.chunks += 1;
        Ok(())
    }

    /// Records the blob and commits: from now on it can be opened.
    pub async fn finish(mut self, size: u64, now: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO blobs (key, size, created_at) VALUES ($1, $2, $3)")
            .bind(&self.key)
            .bind(size as i64)
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Starts the upload of blob `key` (a transaction on one of the pool's connections).
    pub async fn begin_blob(&self, key: &str) -> Result<BlobUpload, StoreError> {
        Ok(BlobUpload {
            tx: self.begin_write().await?,
            key: key.to_string(),
            chunks: 0,
        })
    }

    /// The size of a complete blob, None when there is none by that key.
    pub async fn blob_size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let r = sqlx::query("SELECT size FROM blobs WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        Ok(match r {
            Some(r) => Some(r.try_get::<i64, _>("size")?.max(0) as u64),
            None => None,
        })
    }

    /// Chunk `number` (0-based) of blob `key`, None past the last.
    pub async fn blob_chunk(&self, key: &str, number: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let r = sqlx::query("SELECT data FROM blob_chunks WHERE key = $1 AND number = $2")
            .bind(key)
            .bind(number)
            .fetch_optional(self.pool())
            .await?;
        Ok(match r {
            Some(r) => Some(r.try_get("data")?),
            None => None,
        })
    }

    /// Deletes blob `key` and its chunks (one transaction); a missing one is not an error.
    pub async fn delete_blob(&self, key: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM blobs WHERE key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM blob_chunks WHERE key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// How many blob rows and chunk rows there are (for tests and `doctor`-style checks).
    pub async fn blob_rows(&self) -> Result<(i64, i64), StoreError> {
        let blobs: i64 = sqlx::query("SELECT COUNT(*) AS n FROM blobs")
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        let chunks: i64 = sqlx::query("SELECT COUNT(*) AS n FROM blob_chunks")
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        Ok((blobs, chunks))
    }
}
