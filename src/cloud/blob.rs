//! Document storage for the cloud behind a small trait ([`BlobStore`]: streaming put, open,
//! delete), with a filesystem implementation under the data directory. Keys are made here (random
//! UUIDs), never derived from network values; a blob becomes visible only complete (written to a
//! temporary file, fsynced, then atomically renamed).

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
    /// may share `dir`, so only staging files untouched for [`STALE_STAGING`] are removed: an upload
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
}
