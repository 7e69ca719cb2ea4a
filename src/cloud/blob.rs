//! Document storage for the cloud behind a small trait ([`BlobStore`]: streaming put, open,
//! delete), with two implementations: files under the data directory ([`FsBlobStore`], the
//! SQLite default: written to a temporary file, fsynced, then atomically renamed) and chunked rows
//! in the database ([`DbBlobStore`], with PostgreSQL, so several instances need no shared
//! directory: one transaction per upload). Keys are made here (random UUIDs), never derived from
//! network values; a blob becomes visible only complete, and documents stream in and out in
//! bounded pieces, never whole.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob store I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the document is larger than {0} bytes")]
    TooLarge(u64),
    #[error("reading the document failed: {0}")]
    Source(std::io::Error),
    #[error("not a blob key")]
    BadKey,
    #[error("document store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("no document {0}")]
    Missing(String),
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
pub type BlobReader = Box<dyn AsyncRead + Send + Unpin>;

/// A stored blob: its key and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub key: String,
    pub size: u64,
}

/// Where documents live. Implementations must make a blob visible only once it is complete.
pub trait BlobStore: Send + Sync {
    /// Streams `data` into a new blob, failing with [`BlobError::TooLarge`] (and keeping nothing)
    /// past `max_bytes`.
    fn put<'a>(
        &'a self,
        data: &'a mut (dyn AsyncRead + Send + Unpin),
        max_bytes: u64,
    ) -> BoxFuture<'a, Result<StoredBlob, BlobError>>;
    fn open<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<BlobReader, BlobError>>;
    /// Deletes a blob; deleting a missing one is not an error.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BlobError>>;
}

/// A staging file not written for this long belongs to no upload in progress (uploads that send
/// nothing for 60 s are dropped), so a starting instance may remove it.
const STALE_STAGING: std::time::Duration = std::time::Duration::from_secs(600);

/// Blobs as files `DIR/KEY`, staged as `DIR/.tmp-KEY`.
pub struct FsBlobStore {
    dir: PathBuf,
}

impl FsBlobStore {
    /// Blobs in `dir`, created at the first put (no I/O here).
    pub fn at(dir: &Path) -> FsBlobStore {
        FsBlobStore {
            dir: dir.to_path_buf(),
        }
    }

    /// Uses (and creates) `dir`; removes staging files a crash left behind. Several cloud instances
    /// may share `dir`, so only staging files untouched for `STALE_STAGING` are removed: an upload
    /// in progress on another instance writes at least once per document idle timeout.
    pub fn open_dir(dir: &Path) -> Result<FsBlobStore, BlobError> {
        std::fs::create_dir_all(dir)?;
        for entry in std::fs::read_dir(dir)?.flatten() {
            if !entry.file_name().to_string_lossy().starts_with(".tmp-") {
                continue;
            }
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= STALE_STAGING);
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(FsBlobStore {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        if valid_key(key) {
            Ok(self.dir.join(key))
        } else {
            Err(BlobError::BadKey)
        }
    }

    async fn put_inner(
        &self,
        data: &mut (dyn AsyncRead + Send + Unpin),
        max_bytes: u64,
    ) -> Result<StoredBlob, BlobError> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let key = uuid::Uuid::new_v4().to_string();
        let tmp = self.dir.join(format!(".tmp-{key}"));
        let result = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            let mut buf = vec![0u8; 64 * 1024];
            let mut size = 0u64;
            loop {
                let n = data.read(&mut buf).await.map_err(BlobError::Source)?;
                if n == 0 {
                    break;
                }
                size += n as u64;
                if size > max_bytes {
                    return Err(BlobError::TooLarge(max_bytes));
                }
                file.write_all(&buf[..n]).await?;
            }
            file.sync_all().await?;
            drop(file);
            let dest = self.dir.join(&key);
            tokio::fs::rename(&tmp, &dest).await?;
            // The rename is durable only once the directory is synced.
            let dir = self.dir.clone();
            tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
                .await
                .map_err(std::io::Error::other)??;
            Ok(StoredBlob {
                key: key.clone(),
                size,
            })
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }
}

/// Keys are lower-case hyphenated UUIDs: nothing else can name a file here.
fn valid_key(key: &str) -> bool {
    key.len() == 36
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
}

impl BlobStore for FsBlobStore {
    fn put<'a>(
        &'a self,
        data: &'a mut (dyn AsyncRead + Send + Unpin),
        max_bytes: u64,
    ) -> BoxFuture<'a, Result<StoredBlob, BlobError>> {
        Box::pin(self.put_inner(data, max_bytes))
    }

    fn open<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<BlobReader, BlobError>> {
        Box::pin(async move {
            let file = tokio::fs::File::open(self.path(key)?).await?;
            Ok(Box::new(file) as BlobReader)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path(key)?).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
    }
}

/// The size of a [`DbBlobStore`] chunk row: big enough that a 500 MB document is 500 rows, small
/// enough that a reader or writer holds little.
pub const DB_CHUNK: usize = 1024 * 1024;
/// Connections of the upload pool of a [`DbBlobStore`]: uploads in progress at once per instance
/// (each holds its transaction's connection until the document is complete), kept apart from the
/// pool everything else uses so slow uploads cannot starve it.
pub const DB_UPLOAD_CONNECTIONS: u32 = 16;

/// Blobs as rows of the database (`blobs`, `blob_chunks`, 1 MiB chunks). An upload is one
/// transaction on a connection of its own pool; reading fetches one chunk per query.
/// Documents stored as files before (a deployment that moved to the database) are still read
/// and deleted from `legacy`.
pub struct DbBlobStore {
    store: crate::store::Store,
    uploads: crate::store::Store,
    legacy: Option<FsBlobStore>,
}

impl DbBlobStore {
    /// Blobs in `store`'s database, at `url`, whose own pool of [`DB_UPLOAD_CONNECTIONS`] takes
    /// the uploads; `legacy`: the directory documents were kept in before.
    pub async fn open(
        store: crate::store::Store,
        url: &str,
        legacy: Option<&Path>,
    ) -> Result<DbBlobStore, BlobError> {
        let uploads =
            crate::store::Store::open_with_connections(url, Some(DB_UPLOAD_CONNECTIONS)).await?;
        Ok(DbBlobStore {
            store,
            uploads,
            legacy: legacy.map(FsBlobStore::at),
        })
    }

    async fn put_inner(
        &self,
        data: &mut (dyn AsyncRead + Send + Unpin),
        max_bytes: u64,
    ) -> Result<StoredBlob, BlobError> {
        let key = uuid::Uuid::new_v4().to_string();
        // Dropped on any error (or with the request), the transaction rolls back: nothing stays.
        let mut upload = self.uploads.begin_blob(&key).await?;
        let mut buf = vec![0u8; DB_CHUNK];
        let mut filled = 0;
        let mut size = 0u64;
        loop {
            let n = data
                .read(&mut buf[filled..])
                .await
                .map_err(BlobError::Source)?;
            size += n as u64;
            if size > max_bytes {
                return Err(BlobError::TooLarge(max_bytes));
            }
            filled += n;
            if filled == DB_CHUNK || (n == 0 && filled > 0) {
                upload.chunk(&buf[..filled]).await?;
                filled = 0;
            }
            if n == 0 {
                break;
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        upload.finish(size, now).await?;
        Ok(StoredBlob { key, size })
    }

    async fn open_inner(&self, key: &str) -> Result<BlobReader, BlobError> {
        if !valid_key(key) {
            return Err(BlobError::BadKey);
        }
        if self.store.blob_size(key).await?.is_none() {
            return match &self.legacy {
                Some(fs) => fs.open(key).await,
                None => Err(BlobError::Missing(key.to_string())),
            };
        }
        let state = (self.store.clone(), key.to_string(), 0i64);
        let chunks = futures_util::stream::try_unfold(state, |(store, key, n)| async move {
            match store.blob_chunk(&key, n).await {
                Ok(Some(data)) => Ok(Some((bytes::Bytes::from(data), (store, key, n + 1)))),
                Ok(None) => Ok(None),
                Err(e) => Err(std::io::Error::other(e)),
            }
        });
        Ok(Box::new(tokio_util::io::StreamReader::new(Box::pin(chunks))) as BlobReader)
    }
}

impl BlobStore for DbBlobStore {
    fn put<'a>(
        &'a self,
        data: &'a mut (dyn AsyncRead + Send + Unpin),
        max_bytes: u64,
    ) -> BoxFuture<'a, Result<StoredBlob, BlobError>> {
        Box::pin(self.put_inner(data, max_bytes))
    }

    fn open<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<BlobReader, BlobError>> {
        Box::pin(self.open_inner(key))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            if !valid_key(key) {
                return Err(BlobError::BadKey);
            }
            self.store.delete_blob(key).await?;
            if let Some(fs) = &self.legacy {
                fs.delete(key).await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_open_delete_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open_dir(dir.path()).unwrap();
        let mut data: &[u8] = b"%PDF-1.4 hello";
        let blob = store.put(&mut data, 1024).await.unwrap();
        assert_eq!(blob.size, 14);
        let mut back = Vec::new();
        store
            .open(&blob.key)
            .await
            .unwrap()
            .read_to_end(&mut back)
            .await
            .unwrap();
        assert_eq!(back, b"%PDF-1.4 hello");
        store.delete(&blob.key).await.unwrap();
        assert!(store.open(&blob.key).await.is_err());
        store.delete(&blob.key).await.unwrap();
    }

    #[tokio::test]
    async fn too_large_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open_dir(dir.path()).unwrap();
        let big = vec![7u8; 10_000];
        let mut data: &[u8] = &big;
        let err = store.put(&mut data, 4096).await.unwrap_err();
        assert!(matches!(err, BlobError::TooLarge(4096)), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn keys_cannot_name_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open_dir(dir.path()).unwrap();
        for key in ["../cloud.db", "/etc/passwd", ".tmp-x", ""] {
            assert!(matches!(store.open(key).await, Err(BlobError::BadKey)));
            assert!(matches!(store.delete(key).await, Err(BlobError::BadKey)));
        }
    }

    /// Two cloud instances share the documents directory: a starting one must not remove the
    /// other's upload in progress, only staging files a crash left long ago.
    #[test]
    fn opening_removes_only_stale_staging_files() {
        let dir = tempfile::tempdir().unwrap();
        let busy = dir.path().join(".tmp-busy");
        let stale = dir.path().join(".tmp-stale");
        std::fs::write(&busy, b"uploading").unwrap();
        std::fs::write(&stale, b"left by a crash").unwrap();
        let old = std::time::SystemTime::now() - STALE_STAGING - std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
        FsBlobStore::open_dir(dir.path()).unwrap();
        assert!(busy.exists(), "an upload in progress was removed");
        assert!(!stale.exists(), "a stale staging file was kept");
    }

    async fn db_store(dir: &Path) -> DbBlobStore {
        let url = crate::store::sqlite_url(dir);
        let store = crate::store::Store::open(&url).await.unwrap();
        DbBlobStore::open(store, &url, None).await.unwrap()
    }

    async fn read_all(store: &dyn BlobStore, key: &str) -> Vec<u8> {
        let mut back = Vec::new();
        store
            .open(key)
            .await
            .unwrap()
            .read_to_end(&mut back)
            .await
            .unwrap();
        back
    }

    /// Sizes around the chunk boundaries come back byte for byte.
    #[tokio::test]
    async fn database_blobs_round_trip_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = db_store(dir.path()).await;
        for size in [
            0,
            1,
            DB_CHUNK - 1,
            DB_CHUNK,
            DB_CHUNK + 1,
            2 * DB_CHUNK + 12_345,
        ] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 + i / 251) as u8).collect();
            let mut src: &[u8] = &data;
            let blob = store.put(&mut src, 10 * DB_CHUNK as u64).await.unwrap();
            assert_eq!(blob.size, size as u64);
            assert_eq!(read_all(&store, &blob.key).await, data, "size {size}");
            store.delete(&blob.key).await.unwrap();
            assert!(matches!(
                store.open(&blob.key).await,
                Err(BlobError::Missing(_))
            ));
            store.delete(&blob.key).await.unwrap();
        }
        assert_eq!(store.store.blob_rows().await.unwrap(), (0, 0));
    }

    /// Too large, a broken source, or an upload abandoned half-way: no row stays.
    #[tokio::test]
    async fn interrupted_database_uploads_keep_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = db_store(dir.path()).await;
        let big = vec![7u8; 3 * DB_CHUNK];
        let mut src: &[u8] = &big;
        let err = store.put(&mut src, 2 * DB_CHUNK as u64).await.unwrap_err();
        assert!(matches!(err, BlobError::TooLarge(_)), "{err}");
        assert_eq!(store.store.blob_rows().await.unwrap(), (0, 0));

        let mut broken = tokio::io::AsyncReadExt::chain(&big[..DB_CHUNK + 10], broken_reader());
        let err = store.put(&mut broken, u64::MAX).await.unwrap_err();
        assert!(matches!(err, BlobError::Source(_)), "{err}");
        assert_eq!(store.store.blob_rows().await.unwrap(), (0, 0));

        // A reader that never ends: the upload is dropped (as with a client gone) mid-way.
        let (mut writer, mut reader) = tokio::io::duplex(64 * 1024);
        let feed = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while writer.write_all(&[1u8; 4096]).await.is_ok() {}
        });
        let put = store.put(&mut reader, u64::MAX);
        let _ = tokio::time::timeout(std::time::Duration::from_millis(300), put).await;
        feed.abort();
        assert_eq!(store.store.blob_rows().await.unwrap(), (0, 0));
        for key in ["../cloud.db", ""] {
            assert!(matches!(store.open(key).await, Err(BlobError::BadKey)));
        }
    }

    fn broken_reader() -> impl AsyncRead + Unpin + Send {
        struct Broken;
        impl AsyncRead for Broken {
            fn poll_read(
                self: Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
                _: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Err(std::io::Error::other("connection reset")))
            }
        }
        Broken
    }

    /// Documents a file store kept before the move to the database stay readable.
    #[tokio::test]
    async fn database_store_reads_legacy_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = FsBlobStore::open_dir(&dir.path().join("documents")).unwrap();
        let mut src: &[u8] = b"%PDF-1.7 old";
        let old = files.put(&mut src, 1024).await.unwrap();
        let url = crate::store::sqlite_url(dir.path());
        let db = crate::store::Store::open(&url).await.unwrap();
        let store = DbBlobStore::open(db, &url, Some(&dir.path().join("documents")))
            .await
            .unwrap();
        assert_eq!(read_all(&store, &old.key).await, b"%PDF-1.7 old");
        store.delete(&old.key).await.unwrap();
        assert!(files.open(&old.key).await.is_err());
    }
}
