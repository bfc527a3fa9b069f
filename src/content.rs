//! Content store: the bytes of deposited documents, addressed by their SHA-256.
//!
//! Uploads stream to a temporary file while being hashed (never held whole in memory), are
//! flushed to disk, then renamed to `documents/<first two hex>/<sha256>`. The same bytes are
//! stored once whoever uploads them. Encryption at rest and object storage come with the
//! archive work (DESIGN §5); the interface here already hides where bytes live.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// How many leading bytes are kept for media-type sniffing.
const SNIFF_LEN: usize = 1024;

/// A failure while storing or reading content.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// The upload exceeded the configured limit.
    #[error("document exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// Disk I/O failed.
    #[error("content store I/O error on {path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ContentError + '_ {
    move |source| ContentError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The content store rooted in a directory.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

/// A document fully written to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContent {
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Media type sniffed from the first bytes, if recognised.
    pub media_type: Option<&'static str>,
}

impl ContentStore {
    /// Opens (creating if needed) the store under `root`.
    pub fn open(root: &Path) -> Result<Self, ContentError> {
        for dir in [root.join("documents"), root.join("incoming")] {
            std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        }
        Ok(ContentStore {
            root: root.to_path_buf(),
        })
    }

    /// Starts receiving a document of at most `limit` bytes.
    pub async fn begin(&self, limit: u64) -> Result<IncomingContent, ContentError> {
        let tmp = self
            .root
            .join("incoming")
            .join(uuid::Uuid::new_v4().to_string());
        let file = tokio::fs::File::create(&tmp)
            .await
            .map_err(io_error(&tmp))?;
        Ok(IncomingContent {
            store: self.clone(),
            file: Some(file),
            tmp,
            hasher: Sha256::new(),
            size: 0,
            limit,
            head: Vec::with_capacity(SNIFF_LEN),
            finished: false,
        })
    }

    /// Path of the stored bytes of `sha256` (hex).
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("xx");
        self.root.join("documents").join(prefix).join(sha256)
    }

    /// Opens stored bytes for reading.
    pub async fn open_read(&self, sha256: &str) -> Result<tokio::fs::File, ContentError> {
        let path = self.path_of(sha256);
        tokio::fs::File::open(&path).await.map_err(io_error(&path))
    }
}

/// A document being received. Dropped before [`IncomingContent::finish`], it removes its
/// temporary file, so a failed upload leaves nothing behind.
pub struct IncomingContent {
    store: ContentStore,
    file: Option<tokio::fs::File>,
    tmp: PathBuf,
    hasher: Sha256,
    size: u64,
    limit: u64,
    head: Vec<u8>,
    finished: bool,
}

impl IncomingContent {
    /// Appends a chunk, refusing to go past the limit.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), ContentError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(ContentError::TooLarge { limit: self.limit });
        }
        if self.head.len() < SNIFF_LEN {
            let take = (SNIFF_LEN - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.hasher.update(chunk);
        if let Some(file) = self.file.as_mut() {
            file.write_all(chunk).await.map_err(io_error(&self.tmp))?;
        }
        Ok(())
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Media type sniffed from the bytes received so far.
    pub fn media_type(&self) -> Option<&'static str> {
        sniff_media_type(&self.head)
    }

    /// Hex SHA-256 of the bytes received so far (the content address `finish` will use).
    pub fn sha256(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// Makes the document durable and moves it to its content address.
    pub async fn finish(mut self) -> Result<StoredContent, ContentError> {
        let mut file = self.file.take().ok_or_else(|| ContentError::Io {
            path: self.tmp.clone(),
            source: std::io::Error::other("upload already finished"),
        })?;
        file.flush().await.map_err(io_error(&self.tmp))?;
        file.sync_all().await.map_err(io_error(&self.tmp))?;
        drop(file);
        let sha256 = hex::encode(std::mem::take(&mut self.hasher).finalize());
        let dest = self.store.path_of(&sha256);
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(io_error(parent))?;
        }
        if tokio::fs::try_exists(&dest)
            .await
            .map_err(io_error(&dest))?
        {
            // Same bytes already stored: keep the existing copy.
            tokio::fs::remove_file(&self.tmp)
                .await
                .map_err(io_error(&self.tmp))?;
        } else {
            tokio::fs::rename(&self.tmp, &dest)
                .await
                .map_err(io_error(&dest))?;
            if let Some(parent) = dest.parent() {
                // Persist the directory entry too, so a crash cannot lose a renamed document
                // that evidence already refers to.
                let dir = tokio::fs::File::open(parent)
                    .await
                    .map_err(io_error(parent))?;
                dir.sync_all().await.map_err(io_error(parent))?;
            }
        }
        self.finished = true;
        Ok(StoredContent {
            sha256,
            size: self.size,
            media_type: sniff_media_type(&self.head),
        })
    }
}

impl Drop for IncomingContent {
    fn drop(&mut self) {
        if !self.finished {
            // Best effort: the file may already be gone.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Recognises the media types we accept from their leading bytes, never from what the client
/// claims. PDF: ISO 32000-1 §7.5.2 puts `%PDF-` in the header, which readers look for within
/// the first 1024 bytes.
pub fn sniff_media_type(head: &[u8]) -> Option<&'static str> {
    let window = &head[..head.len().min(SNIFF_LEN)];
    if window.windows(5).any(|w| w == b"%PDF-") {
        return Some("application/pdf");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_same_bytes_land_at_one_address() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ContentStore::open(dir.path()).expect("store");
        let mut first = store.begin(1000).await.expect("begin");
        first.write(b"%PDF-1.7\nhello").await.expect("write");
        let a = first.finish().await.expect("finish");
        let mut second = store.begin(1000).await.expect("begin");
        second.write(b"%PDF-1.7\n").await.expect("write");
        second.write(b"hello").await.expect("write");
        let b = second.finish().await.expect("finish");
        assert_eq!(a, b);
        assert_eq!(a.media_type, Some("application/pdf"));
        assert_eq!(
            std::fs::read(store.path_of(&a.sha256)).expect("read"),
            b"%PDF-1.7\nhello"
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("incoming"))
                .expect("dir")
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn an_oversized_upload_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ContentStore::open(dir.path()).expect("store");
        let mut upload = store.begin(8).await.expect("begin");
        upload.write(b"%PDF-").await.expect("within limit");
        assert!(matches!(
            upload.write(b"1.7 more").await,
            Err(ContentError::TooLarge { limit: 8 })
        ));
        drop(upload);
        assert_eq!(
            std::fs::read_dir(dir.path().join("incoming"))
                .expect("dir")
                .count(),
            0
        );
    }

    #[test]
    fn only_real_pdf_bytes_are_recognised() {
        assert_eq!(sniff_media_type(b"%PDF-1.4"), Some("application/pdf"));
        assert_eq!(
            sniff_media_type(b"\xef\xbb\xbf%PDF-1.4"),
            Some("application/pdf")
        );
        assert_eq!(sniff_media_type(b"GIF89a"), None);
        assert_eq!(sniff_media_type(b""), None);
    }
}
