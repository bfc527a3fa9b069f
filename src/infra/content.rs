//! Content store: the bytes of deposited documents, addressed by their SHA-256, encrypted at
//! rest.
//!
//! Uploads stream through AES-256-GCM segments ([`crate::core::cipher`]) under a fresh
//! random data key into a temporary file while the plaintext is hashed (never held whole in
//! memory, never written to disk), are flushed to disk, then renamed to
//! `documents/<first two hex>/<sha256>`. The data key, wrapped by the active master key
//! ([`crate::infra::keys`]), is recorded in `document_keys` before the rename, so a stored
//! document always has its key. The same bytes are stored once whoever uploads them: the data
//! key is per stored document, shared by every letter and tenant that uses these bytes.
//!
//! Every read decrypts while streaming and checks the SHA-256 of the plaintext at the end: a
//! mismatch or an altered segment is an error, never silently wrong bytes.
//!
//! Two back ends hold the ciphertext ([`crate::config::StorageBackend`]): the local file
//! system (embedded default) and an S3-compatible bucket (several instances, WORM buckets).
//! Encryption stays above both: the bytes handed to a back end are exactly the ones written
//! to disk, so plaintext never leaves the process. On S3 the object key is
//! `<prefix>/documents/<first two hex>/<sha256>` (the same relative layout as on disk); an
//! upload is still spooled, encrypted, to `DATA_DIR/incoming` (its address is only known at
//! the end), then sent with a SHA-256 checksum the server verifies (`x-amz-checksum-sha256`),
//! in 8 MiB multipart parts above that size; reads fetch 1 MiB ranges one at a time, so
//! neither direction holds a whole document in memory. Placement (key row, then object) is
//! serialised per document across instances by a PostgreSQL advisory lock.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use object_store::ObjectStore as _;
use object_store::ObjectStoreExt as _;

use crate::core::cipher::{self, CipherError, DataKey, Decoder, SEGMENT, SegmentSealer};
use crate::core::clock::{Clock, unix_micros};
use crate::core::pdf_check as pdf;
use crate::infra::keys::{KeyError, Keyring};
use crate::infra::storage::{Storage, StorageError};

/// How many leading bytes are kept for media-type sniffing.
const SNIFF_LEN: usize = 1024;
/// Bytes fetched per ranged GET when reading an object.
const RANGE_LEN: u64 = 1 << 20;
/// Part size of multipart uploads (S3 wants ≥ 5 MiB except for the last part); a ciphertext
/// up to this size goes in one PUT.
const PART_LEN: usize = 8 << 20;
/// Parts in flight at once during a multipart upload.
const PARTS_IN_FLIGHT: usize = 2;

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
    /// The document's data key was destroyed after its retention period (crypto-shredding):
    /// its content is gone for good.
    #[error("document {sha256} was destroyed at the end of its retention period")]
    Destroyed {
        /// The document's identity.
        sha256: String,
        /// When its key was destroyed, Unix µs.
        destroyed_at: i64,
    },
    /// No data key is recorded for the document (a plaintext file from before encryption at
    /// rest: run `recommande archive encrypt-existing`).
    #[error("no data key for document {sha256} (not encrypted yet, or never stored)")]
    NoKey {
        /// The document's identity.
        sha256: String,
    },
    /// The stored bytes are not the document: altered ciphertext, truncation, or a digest
    /// mismatch.
    #[error("document {sha256} failed its integrity check: {source}")]
    Integrity {
        /// The document's identity.
        sha256: String,
        /// What failed.
        source: CipherError,
    },
    /// Encryption failed.
    #[error("encryption failed: {0}")]
    Cipher(CipherError),
    /// The object store refused or failed a request.
    #[error("object storage error on {key}: {source}")]
    Object {
        /// The object key.
        key: String,
        /// What the client library said.
        source: object_store::Error,
    },
    /// The operation exists for the file-system back end only.
    #[error("{0}")]
    Unsupported(&'static str),
    /// A master key problem (unknown id, unwrap failure).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The key table could not be read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Temporary files in `DATA_DIR/incoming` older than this are leftovers of a crash or an
/// I/O error: no upload, placement or bundle lasts a day.
pub const STALE_INCOMING: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Removes files of `incoming` last modified more than [`STALE_INCOMING`] before `now`
/// (at start). Recent files may belong to another instance sharing the directory.
pub fn sweep_incoming(incoming: &Path, now: std::time::SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(incoming) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let stale = meta.is_file()
            && meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age > STALE_INCOMING);
        if stale {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(file = %entry.path().display(), error = %e, "cannot remove a stale temporary file")
                }
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, "stale temporary files removed from incoming");
    }
    removed
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ContentError + '_ {
    move |source| ContentError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn object_error(
    key: &object_store::path::Path,
) -> impl FnOnce(object_store::Error) -> ContentError + '_ {
    move |source| ContentError::Object {
        key: key.to_string(),
        source,
    }
}

/// Where the ciphertext lives.
#[derive(Clone)]
enum Backend {
    /// `<root>/documents/<xx>/<sha256>`.
    Filesystem,
    /// `<prefix>/documents/<xx>/<sha256>` in a bucket.
    S3(Arc<S3Backend>),
}

struct S3Backend {
    store: Arc<dyn object_store::ObjectStore>,
    prefix: String,
    bucket: String,
}

impl S3Backend {
    fn key_of(&self, sha256: &str) -> object_store::path::Path {
        let fan = sha256.get(..2).unwrap_or("xx");
        let rel = format!("documents/{fan}/{sha256}");
        if self.prefix.is_empty() {
            object_store::path::Path::from(rel)
        } else {
            object_store::path::Path::from(format!("{}/{rel}", self.prefix))
        }
    }
}

/// The content store: encryption, keys and content addressing over one of the back ends.
#[derive(Clone)]
pub struct ContentStore {
    root: PathBuf,
    backend: Backend,
    storage: Storage,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    /// Serialises the last step of stores (key row, then rename) so two uploads of the same
    /// bytes cannot leave a file encrypted under a key other than the recorded one.
    placing: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for ContentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match &self.backend {
            Backend::Filesystem => "filesystem".to_string(),
            Backend::S3(s3) => format!("s3://{}/{}", s3.bucket, s3.prefix),
        };
        f.debug_struct("ContentStore")
            .field("root", &self.root)
            .field("backend", &backend)
            .field("keyring", &self.keyring)
            .finish()
    }
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
    /// Opens (creating if needed) the store under `root`, keeping data keys in `storage`
    /// wrapped by `keyring`.
    pub fn open(
        root: &Path,
        storage: Storage,
        keyring: Arc<Keyring>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ContentError> {
        for dir in [root.join("documents"), root.join("incoming")] {
            std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        }
        sweep_incoming(&root.join("incoming"), std::time::SystemTime::now());
        Ok(ContentStore {
            root: root.to_path_buf(),
            backend: Backend::Filesystem,
            storage,
            keyring,
            clock,
            placing: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Opens the store on the configured back end; `root` (the data directory) still holds
    /// the spool of uploads in progress.
    pub fn open_with(
        backend: &crate::config::StorageBackend,
        root: &Path,
        storage: Storage,
        keyring: Arc<Keyring>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ContentError> {
        let mut store = ContentStore::open(root, storage, keyring, clock)?;
        if let crate::config::StorageBackend::S3(s3) = backend {
            store.backend = Backend::S3(Arc::new(s3_backend(s3)?));
        }
        Ok(store)
    }

    /// True when documents are kept in an S3 bucket.
    pub fn is_object_storage(&self) -> bool {
        matches!(self.backend, Backend::S3(_))
    }

    /// Checks at start that the bucket answers with these credentials (a listing of at most
    /// one key under the prefix): better than failing at the first upload.
    pub async fn check_backend(&self) -> Result<(), ContentError> {
        if let Backend::S3(s3) = &self.backend {
            let prefix = object_store::path::Path::from(s3.prefix.as_str());
            s3.store
                .list_with_delimiter(Some(&prefix))
                .await
                .map_err(object_error(&prefix))?;
        }
        Ok(())
    }

    /// The master keys.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Refuses to go on if a live data key is wrapped under a master key that is not
    /// configured: better to fail at start than at the first download of an old letter.
    pub async fn check_master_keys(&self) -> Result<(), ContentError> {
        for id in self.storage.master_key_ids_in_use().await? {
            if !self.keyring.has(&id) {
                return Err(KeyError::Unknown(id).into());
            }
        }
        Ok(())
    }

    /// Starts receiving a document of at most `limit` bytes.
    pub async fn begin(&self, limit: u64) -> Result<IncomingContent, ContentError> {
        let tmp = self
            .root
            .join("incoming")
            .join(uuid::Uuid::new_v4().to_string());
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(io_error(&tmp))?;
        let written = file.write_all(cipher::HEADER).await;
        if let Err(source) = written {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(ContentError::Io { path: tmp, source });
        }
        let data_key = DataKey::generate().map_err(ContentError::Cipher)?;
        let sealer = SegmentSealer::new(&data_key).map_err(ContentError::Cipher)?;
        Ok(IncomingContent {
            store: self.clone(),
            file: Some(file),
            tmp,
            hasher: Sha256::new(),
            size: 0,
            limit,
            head: Vec::with_capacity(SNIFF_LEN),
            pdf: pdf::PdfCheck::new(),
            finished: false,
            data_key,
            sealer,
            segment: Vec::with_capacity(SEGMENT),
        })
    }

    /// First step of storing a document from blocking code (a rendering thread): encrypts
    /// `doc` under a new data key into a temporary file, not flushed yet.
    /// [`ContentStore::place_many`] then flushes all such files to stable storage together
    /// (many `fsync` at once, which the file system groups into few journal commits), records
    /// their keys in one transaction and moves them into place: the same files, keys and
    /// guarantees as [`ContentStore::begin`]… [`IncomingContent::finish`] per document — a
    /// document is on stable storage before its key is recorded, so before any evidence can
    /// refer to it — with one transaction and one flush per directory for all of them. A pending document never placed leaves its temporary file,
    /// which [`PendingContent::discard`] removes.
    pub fn write_pending(&self, doc: &[u8], limit: u64) -> Result<PendingContent, ContentError> {
        if doc.len() as u64 > limit {
            return Err(ContentError::TooLarge { limit });
        }
        write_encrypted(&self.incoming_dir(), doc)
    }

    /// Places documents written by [`ContentStore::write_pending`], under the placing lock:
    /// bytes already stored under a live key keep their copy; the others get their keys
    /// recorded (one transaction), then their files renamed into place and the directories
    /// flushed. Returns each document's [`StoredContent`], in order. On error the temporary
    /// files are removed.
    pub async fn place_many(
        &self,
        pending: Vec<PendingContent>,
    ) -> Result<Vec<StoredContent>, ContentError> {
        let placed = self.place_pending(&pending).await;
        if placed.is_err() {
            for p in &pending {
                let _ = std::fs::remove_file(&p.tmp);
            }
        }
        placed?;
        Ok(pending
            .into_iter()
            .map(|p| StoredContent {
                sha256: p.sha256,
                size: p.size,
                media_type: p.media_type,
            })
            .collect())
    }

    async fn place_pending(&self, written: &[PendingContent]) -> Result<(), ContentError> {
        let _placing = self.placing.lock().await;
        if let Backend::S3(_) = &self.backend {
            // Object storage: each document under its cross-instance lock, uploaded from its
            // temporary file (the requests dominate; there is no directory to flush).
            let mut seen = std::collections::HashSet::new();
            for w in written {
                if !seen.insert(w.sha256.clone()) {
                    tokio::fs::remove_file(&w.tmp)
                        .await
                        .map_err(io_error(&w.tmp))?;
                    continue;
                }
                let lock = self.storage.lock_document(&w.sha256).await?;
                let placed = self.place_one(&w.tmp, &w.sha256, &w.data_key).await;
                lock.release().await;
                placed?;
            }
            return Ok(());
        }
        // The bytes on stable storage before anything refers to them (their keys, then the
        // evidence the caller commits after this returns).
        let tmps: Vec<PathBuf> = written.iter().map(|w| w.tmp.clone()).collect();
        tokio::task::spawn_blocking(move || sync_files(&tmps))
            .await
            .map_err(|e| ContentError::Io {
                path: self.incoming_dir(),
                source: std::io::Error::other(format!("flushing stopped: {e}")),
            })??;
        let shas: Vec<String> = written.iter().map(|w| w.sha256.clone()).collect();
        let live: std::collections::HashSet<String> = self
            .storage
            .document_keys_among(&shas)
            .await?
            .into_iter()
            .filter(|k| k.wrapped_key.is_some())
            .map(|k| k.sha256)
            .collect();
        let now = unix_micros(self.clock.now());
        let mut keys = Vec::new();
        let mut moves = Vec::new();
        let mut again = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for w in written {
            let dest = self.path_of(&w.sha256);
            let duplicate = !seen.insert(w.sha256.clone());
            if duplicate || (live.contains(&w.sha256) && dest.exists()) {
                // Same bytes stored already (or earlier in this batch): keep that copy.
                again.push(w.tmp.clone());
                if !duplicate {
                    self.storage.touch_document_key(&w.sha256, now).await?;
                }
                continue;
            }
            let (id, wrapped) = self.keyring.wrap(&w.sha256, &w.data_key)?;
            keys.push((w.sha256.clone(), id, wrapped));
            moves.push((w.tmp.clone(), dest));
        }
        // The keys first: a document on disk always has its key.
        self.storage.put_document_keys(&keys, now).await?;
        let stopped = |e: tokio::task::JoinError| ContentError::Io {
            path: self.documents_dir(),
            source: std::io::Error::other(format!("placing stopped: {e}")),
        };
        let parents = tokio::task::spawn_blocking(move || -> Result<Vec<PathBuf>, ContentError> {
            for tmp in again {
                std::fs::remove_file(&tmp).map_err(io_error(&tmp))?;
            }
            let mut parents = std::collections::BTreeSet::new();
            for (tmp, dest) in &moves {
                if let Some(parent) = dest.parent()
                    && parents.insert(parent.to_path_buf())
                {
                    std::fs::create_dir_all(parent).map_err(io_error(parent))?;
                }
                std::fs::rename(tmp, dest).map_err(io_error(dest))?;
            }
            Ok(parents.into_iter().collect())
        })
        .await
        .map_err(stopped)??;
        // Persist the directory entries, so a crash cannot lose a renamed document; the
        // flushes wait on the disk, so several run at once.
        let mut flushes = tokio::task::JoinSet::new();
        for group in parents.chunks(parents.len().div_ceil(DIRECTORY_FLUSHES).max(1)) {
            let group = group.to_vec();
            flushes.spawn_blocking(move || -> Result<(), ContentError> {
                for parent in group {
                    std::fs::File::open(&parent)
                        .and_then(|dir| dir.sync_all())
                        .map_err(io_error(&parent))?;
                }
                Ok(())
            });
        }
        while let Some(done) = flushes.join_next().await {
            done.map_err(stopped)??;
        }
        Ok(())
    }

    /// Path of the stored (encrypted) bytes of `sha256` (hex) on the file-system back end.
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("xx");
        self.root.join("documents").join(prefix).join(sha256)
    }

    /// Where the stored bytes of `sha256` are, for messages: a path or `s3://bucket/key`.
    pub fn location_of(&self, sha256: &str) -> String {
        match &self.backend {
            Backend::Filesystem => self.path_of(sha256).display().to_string(),
            Backend::S3(s3) => format!("s3://{}/{}", s3.bucket, s3.key_of(sha256)),
        }
    }

    /// The source of a stored document's ciphertext (checked to exist).
    async fn source(&self, sha256: &str) -> Result<Source, ContentError> {
        match &self.backend {
            Backend::Filesystem => {
                let path = self.path_of(sha256);
                let file = tokio::fs::File::open(&path)
                    .await
                    .map_err(io_error(&path))?;
                Ok(Source::File(file))
            }
            Backend::S3(s3) => {
                let key = s3.key_of(sha256);
                let meta = s3.store.head(&key).await.map_err(object_error(&key))?;
                Ok(Source::Object(ObjectRanges {
                    store: s3.store.clone(),
                    key,
                    size: meta.size,
                    pos: 0,
                    buf: bytes::Bytes::new(),
                }))
            }
        }
    }

    /// True when the ciphertext of `sha256` is stored.
    async fn is_stored(&self, sha256: &str) -> Result<bool, ContentError> {
        match &self.backend {
            Backend::Filesystem => {
                let path = self.path_of(sha256);
                tokio::fs::try_exists(&path).await.map_err(io_error(&path))
            }
            Backend::S3(s3) => {
                let key = s3.key_of(sha256);
                match s3.store.head(&key).await {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(source) => Err(ContentError::Object {
                        key: key.to_string(),
                        source,
                    }),
                }
            }
        }
    }

    /// Moves the finished ciphertext `tmp` to the address of `sha256` (rename, or upload then
    /// removal of the spool file).
    async fn put(&self, tmp: &Path, sha256: &str) -> Result<(), ContentError> {
        match &self.backend {
            Backend::Filesystem => place(tmp, &self.path_of(sha256)).await,
            Backend::S3(s3) => {
                upload(s3, tmp, sha256).await?;
                tokio::fs::remove_file(tmp).await.map_err(io_error(tmp))
            }
        }
    }

    /// Under the placement locks: keeps the stored copy of `sha256` when its key is live,
    /// or records `data_key` and stores the ciphertext `tmp` (the key first: a stored
    /// document always has its key; a key without its bytes, after a crash here, is replaced
    /// by the next store of these bytes).
    async fn place_one(
        &self,
        tmp: &Path,
        sha256: &str,
        data_key: &DataKey,
    ) -> Result<(), ContentError> {
        let live_key = self
            .storage
            .document_key(sha256)
            .await?
            .is_some_and(|k| k.wrapped_key.is_some());
        if live_key && self.is_stored(sha256).await? {
            // Same bytes already stored under their key: keep the existing copy, and say the
            // bytes were stored again so the purge keeps them for the letter to come.
            tokio::fs::remove_file(tmp).await.map_err(io_error(tmp))?;
            self.storage
                .touch_document_key(sha256, unix_micros(self.clock.now()))
                .await?;
        } else {
            self.record_key(sha256, data_key, None).await?;
            self.put(tmp, sha256).await?;
        }
        Ok(())
    }

    /// The unwrapped data key of a stored document.
    pub async fn data_key(&self, sha256: &str) -> Result<DataKey, ContentError> {
        let row = self
            .storage
            .document_key(sha256)
            .await?
            .ok_or_else(|| ContentError::NoKey {
                sha256: sha256.to_string(),
            })?;
        match (row.wrapped_key, row.destroyed_at) {
            (Some(wrapped), None) => {
                Ok(self.keyring.unwrap(&row.master_key_id, sha256, &wrapped)?)
            }
            (_, destroyed_at) => Err(ContentError::Destroyed {
                sha256: sha256.to_string(),
                destroyed_at: destroyed_at.unwrap_or(row.created_at),
            }),
        }
    }

    /// Opens a stored document for reading its plaintext, asynchronously.
    pub async fn open_read(&self, sha256: &str) -> Result<DocumentReader, ContentError> {
        let key = self.data_key(sha256).await?;
        let source = self.source(sha256).await?;
        Ok(DocumentReader {
            decoder: Decoder::new(&key, sha256).map_err(ContentError::Cipher)?,
            source,
            sha256: sha256.to_string(),
        })
    }

    /// Opens a stored document for reading its plaintext from blocking code (the bundle zip
    /// writer, on a `spawn_blocking` thread); the key is fetched here, the reading happens
    /// later through [`Read`]. On S3 each read of a new range blocks that thread on the
    /// runtime (never call it from async code).
    pub async fn open_blocking(
        &self,
        sha256: &str,
    ) -> Result<BlockingDocumentReader, ContentError> {
        let key = self.data_key(sha256).await?;
        let source = match self.source(sha256).await? {
            Source::File(file) => BlockingSource::File(file.into_std().await),
            Source::Object(ranges) => BlockingSource::Object {
                ranges,
                runtime: tokio::runtime::Handle::current(),
            },
        };
        BlockingDocumentReader::with_source(source, &key, sha256)
    }

    /// Wraps `data_key` for document `sha256` under the active master key and records it.
    /// `stored_at`: when the bytes were stored (now, for an upload).
    pub(crate) async fn record_key(
        &self,
        sha256: &str,
        data_key: &DataKey,
        stored_at: Option<i64>,
    ) -> Result<(), ContentError> {
        let (id, wrapped) = self.keyring.wrap(sha256, data_key)?;
        let now = unix_micros(self.clock.now());
        self.storage
            .put_document_key(sha256, &id, &wrapped, now, stored_at.unwrap_or(now))
            .await?;
        Ok(())
    }

    /// The directory of stored documents.
    pub(crate) fn documents_dir(&self) -> PathBuf {
        self.root.join("documents")
    }

    /// The directory of temporary files (same file system as the documents).
    pub(crate) fn incoming_dir(&self) -> PathBuf {
        self.root.join("incoming")
    }

    /// The storage holding the key table.
    pub(crate) fn storage(&self) -> &Storage {
        &self.storage
    }
}

/// Reads a stored document's plaintext asynchronously, segment by segment.
pub struct DocumentReader {
    source: Source,
    decoder: Decoder,
    sha256: String,
}

/// Ciphertext being read.
enum Source {
    File(tokio::fs::File),
    Object(ObjectRanges),
}

impl Source {
    async fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Source::File(file) => file.read(out).await,
            Source::Object(ranges) => {
                if ranges.buf.is_empty() && ranges.pos < ranges.size {
                    let range = ranges.next_range();
                    let got = ranges.store.get_range(&ranges.key, range).await;
                    ranges.take(got)?;
                }
                Ok(ranges.copy_out(out))
            }
        }
    }
}

/// An object read one bounded range at a time.
struct ObjectRanges {
    store: Arc<dyn object_store::ObjectStore>,
    key: object_store::path::Path,
    size: u64,
    /// Next offset to fetch.
    pos: u64,
    /// Fetched and not yet consumed.
    buf: bytes::Bytes,
}

impl ObjectRanges {
    fn next_range(&self) -> std::ops::Range<u64> {
        self.pos..self.size.min(self.pos + RANGE_LEN)
    }

    fn take(&mut self, got: object_store::Result<bytes::Bytes>) -> std::io::Result<()> {
        let got = got.map_err(|e| {
            std::io::Error::other(ContentError::Object {
                key: self.key.to_string(),
                source: e,
            })
        })?;
        let expected = self.next_range();
        if got.len() as u64 != expected.end - expected.start {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "object {} returned {} bytes for range {expected:?}",
                    self.key,
                    got.len()
                ),
            ));
        }
        self.pos = expected.end;
        self.buf = got;
        Ok(())
    }

    fn copy_out(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        n
    }
}

/// Ciphertext being read from blocking code.
enum BlockingSource {
    File(std::fs::File),
    Object {
        ranges: ObjectRanges,
        runtime: tokio::runtime::Handle,
    },
}

impl Read for BlockingSource {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        match self {
            BlockingSource::File(file) => file.read(out),
            BlockingSource::Object { ranges, runtime } => {
                if ranges.buf.is_empty() && ranges.pos < ranges.size {
                    let range = ranges.next_range();
                    let got = runtime.block_on(ranges.store.get_range(&ranges.key, range));
                    ranges.take(got)?;
                }
                Ok(ranges.copy_out(out))
            }
        }
    }
}

impl DocumentReader {
    /// The next piece of plaintext, or `None` after the last one (whose digest was checked).
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ContentError> {
        loop {
            if self.decoder.is_done() {
                return Ok(None);
            }
            let want = self.decoder.wants();
            let mut eof = false;
            if want > 0 {
                let start = self.decoder.pending.len();
                self.decoder.pending.resize(start + want, 0);
                let read = self.source.read(&mut self.decoder.pending[start..]).await;
                let n = match read {
                    Ok(n) => n,
                    Err(source) => {
                        self.decoder.pending.truncate(start);
                        return Err(ContentError::Io {
                            path: PathBuf::from(&self.sha256),
                            source,
                        });
                    }
                };
                self.decoder.pending.truncate(start + n);
                eof = n == 0;
                if !eof && self.decoder.wants() > 0 {
                    continue;
                }
            }
            let out = self
                .decoder
                .step(eof)
                .map_err(|source| ContentError::Integrity {
                    sha256: self.sha256.clone(),
                    source,
                })?;
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }

    /// The plaintext as a stream for an HTTP body: an integrity failure ends the stream with
    /// an error, so the response is cut short rather than completed with wrong bytes.
    pub fn into_stream(
        self,
    ) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
        futures_util::stream::try_unfold(self, |mut reader| async move {
            match reader.next_chunk().await {
                Ok(Some(chunk)) => Ok(Some((chunk, reader))),
                Ok(None) => Ok(None),
                Err(e) => {
                    tracing::error!(error = %e, "document read failed");
                    Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
                }
            }
        })
    }
}

/// Reads a stored document's plaintext through [`Read`] (blocking code).
pub struct BlockingDocumentReader {
    file: BlockingSource,
    decoder: Decoder,
    sha256: String,
    out: Vec<u8>,
    pos: usize,
}

impl BlockingDocumentReader {
    /// A reader of the encrypted document `file` under `key`, whose identity is `sha256`.
    pub fn new(file: std::fs::File, key: &DataKey, sha256: &str) -> Result<Self, ContentError> {
        Self::with_source(BlockingSource::File(file), key, sha256)
    }

    fn with_source(
        file: BlockingSource,
        key: &DataKey,
        sha256: &str,
    ) -> Result<Self, ContentError> {
        Ok(BlockingDocumentReader {
            decoder: Decoder::new(key, sha256).map_err(ContentError::Cipher)?,
            file,
            sha256: sha256.to_string(),
            out: Vec::new(),
            pos: 0,
        })
    }
}

impl Read for BlockingDocumentReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.out.len() {
            if self.decoder.is_done() {
                return Ok(0);
            }
            let want = self.decoder.wants();
            let mut eof = false;
            if want > 0 {
                let start = self.decoder.pending.len();
                self.decoder.pending.resize(start + want, 0);
                let n = match self.file.read(&mut self.decoder.pending[start..]) {
                    Ok(n) => n,
                    Err(e) => {
                        self.decoder.pending.truncate(start);
                        return Err(e);
                    }
                };
                self.decoder.pending.truncate(start + n);
                eof = n == 0;
                if !eof && self.decoder.wants() > 0 {
                    continue;
                }
            }
            self.out = self.decoder.step(eof).map_err(|source| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    ContentError::Integrity {
                        sha256: self.sha256.clone(),
                        source,
                    },
                )
            })?;
            self.pos = 0;
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
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
    /// The structural PDF check, fed every byte ([`pdf::PdfCheck`]).
    pdf: pdf::PdfCheck,
    finished: bool,
    data_key: DataKey,
    sealer: SegmentSealer,
    /// Plaintext of the current segment (at most [`SEGMENT`] bytes, in memory only).
    segment: Vec<u8>,
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
        self.pdf.feed(chunk);
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.segment.len() == SEGMENT {
                // More bytes follow a full segment: it is not the last one.
                self.seal_segment(false).await?;
            }
            let take = (SEGMENT - self.segment.len()).min(rest.len());
            self.segment.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        Ok(())
    }

    async fn seal_segment(&mut self, last: bool) -> Result<(), ContentError> {
        let sealed = self
            .sealer
            .seal(&self.segment, last)
            .map_err(ContentError::Cipher)?;
        self.segment.fill(0);
        self.segment.clear();
        if let Some(file) = self.file.as_mut() {
            file.write_all(&sealed).await.map_err(io_error(&self.tmp))?;
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

    /// Whether the bytes received are structurally a PDF ([`pdf::PdfCheck`]); call it once
    /// every byte is written (a second call judges an empty file).
    pub fn check_pdf(&mut self) -> Result<(), pdf::NotPdf> {
        std::mem::take(&mut self.pdf).finish()
    }

    /// Hex SHA-256 of the bytes received so far (the content address `finish` will use).
    pub fn sha256(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// Makes the document durable and moves it to its content address.
    pub async fn finish(mut self) -> Result<StoredContent, ContentError> {
        self.seal_segment(true).await?;
        let mut file = self.file.take().ok_or_else(|| ContentError::Io {
            path: self.tmp.clone(),
            source: std::io::Error::other("upload already finished"),
        })?;
        file.flush().await.map_err(io_error(&self.tmp))?;
        file.sync_all().await.map_err(io_error(&self.tmp))?;
        drop(file);
        let sha256 = hex::encode(std::mem::take(&mut self.hasher).finalize());
        let store = self.store.clone();
        let _placing = store.placing.lock().await;
        // Across instances sharing the database and the bucket (PostgreSQL only).
        let lock = store.storage.lock_document(&sha256).await?;
        let placed = self.place(&store, &sha256).await;
        lock.release().await;
        placed?;
        self.finished = true;
        Ok(StoredContent {
            sha256,
            size: self.size,
            media_type: sniff_media_type(&self.head),
        })
    }

    /// Under the placement locks: keeps the stored copy of the same bytes, or records the
    /// key and stores this copy.
    async fn place(&self, store: &ContentStore, sha256: &str) -> Result<(), ContentError> {
        store.place_one(&self.tmp, sha256, &self.data_key).await
    }
}

/// Builds the S3 client from the settings (no request is made here).
fn s3_backend(s3: &crate::config::S3Settings) -> Result<S3Backend, ContentError> {
    use object_store::aws::{AmazonS3Builder, Checksum};
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&s3.bucket)
        .with_region(&s3.region)
        .with_allow_http(s3.allow_http)
        // The server checks every PUT and part against this digest of the ciphertext.
        .with_checksum_algorithm(Checksum::SHA256);
    if let Some(endpoint) = &s3.endpoint {
        // Path-style requests (`endpoint/bucket/key`), which every S3-compatible server takes.
        builder = builder
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false);
    }
    match (&s3.access_key_id, &s3.secret_access_key) {
        (Some(id), Some(secret)) => {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret.expose());
        }
        _ => {
            // The AWS environment: AWS_ACCESS_KEY_ID…, web identity, instance metadata.
            for (key, value) in std::env::vars() {
                if key.starts_with("AWS_")
                    && let Ok(config_key) = key.to_ascii_lowercase().parse()
                {
                    builder = builder.with_config(config_key, value);
                }
            }
        }
    }
    let store = builder.build().map_err(|source| ContentError::Object {
        key: format!("s3://{}", s3.bucket),
        source,
    })?;
    Ok(S3Backend {
        store: Arc::new(store),
        prefix: s3.prefix.clone(),
        bucket: s3.bucket.clone(),
    })
}

/// Sends the spooled ciphertext `tmp` to the object of `sha256`: one PUT up to [`PART_LEN`],
/// else a multipart upload read from the file part by part (never the whole file in memory).
async fn upload(s3: &S3Backend, tmp: &Path, sha256: &str) -> Result<(), ContentError> {
    let key = s3.key_of(sha256);
    let mut file = tokio::fs::File::open(tmp).await.map_err(io_error(tmp))?;
    let size = file.metadata().await.map_err(io_error(tmp))?.len();
    if size <= PART_LEN as u64 {
        let mut bytes = Vec::with_capacity(size as usize);
        file.read_to_end(&mut bytes).await.map_err(io_error(tmp))?;
        s3.store
            .put(&key, bytes.into())
            .await
            .map_err(object_error(&key))?;
        return Ok(());
    }
    let upload = s3
        .store
        .put_multipart(&key)
        .await
        .map_err(object_error(&key))?;
    let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART_LEN);
    let mut buf = vec![0u8; 1 << 20];
    let sent: Result<(), ContentError> = async {
        loop {
            let n = file.read(&mut buf).await.map_err(io_error(tmp))?;
            if n == 0 {
                return Ok(());
            }
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(object_error(&key))?;
            writer.write(&buf[..n]);
        }
    }
    .await;
    match sent {
        Ok(()) => {
            writer.finish().await.map_err(object_error(&key))?;
            Ok(())
        }
        Err(e) => {
            // Best effort: an aborted upload leaves no parts billed; the error that matters
            // is the one above.
            let _ = writer.abort().await;
            Err(e)
        }
    }
}

/// Directories flushed at once by [`ContentStore::place_many`].
const DIRECTORY_FLUSHES: usize = 8;

/// Threads flushing the pending files of a batch at once (they wait on the disk, not the CPU).
const FILE_FLUSHES: usize = 32;

/// A document encrypted to a temporary file by [`ContentStore::write_pending`], not yet
/// placed.
pub struct PendingContent {
    tmp: PathBuf,
    sha256: String,
    size: u64,
    media_type: Option<&'static str>,
    data_key: DataKey,
}

impl PendingContent {
    /// Removes the temporary file of a document that will not be placed.
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Encrypts `doc` under a new data key into a temporary file of `incoming`, in the segments
/// [`IncomingContent`] writes. The file is not flushed yet: see [`sync_files`].
fn write_encrypted(incoming: &Path, doc: &[u8]) -> Result<PendingContent, ContentError> {
    use std::io::Write;
    let tmp = incoming.join(uuid::Uuid::new_v4().to_string());
    let data_key = DataKey::generate().map_err(ContentError::Cipher)?;
    let mut sealer = SegmentSealer::new(&data_key).map_err(ContentError::Cipher)?;
    let mut out = Vec::with_capacity(cipher::HEADER.len() + doc.len() + 64);
    out.extend_from_slice(cipher::HEADER);
    let segments = doc.len().div_ceil(SEGMENT).max(1);
    for i in 0..segments {
        let start = (i * SEGMENT).min(doc.len());
        let end = ((i + 1) * SEGMENT).min(doc.len());
        let sealed = sealer
            .seal(&doc[start..end], i + 1 == segments)
            .map_err(ContentError::Cipher)?;
        out.extend_from_slice(&sealed);
    }
    // Not flushed here: [`ContentStore::place_many`] flushes all the pending files of a batch
    // at once, before their keys are recorded and they are renamed into place.
    let written = std::fs::File::create(&tmp)
        .and_then(|mut file| file.write_all(&out))
        .map_err(io_error(&tmp));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(PendingContent {
        tmp,
        sha256: hex::encode(Sha256::digest(doc)),
        size: doc.len() as u64,
        media_type: sniff_media_type(&doc[..doc.len().min(SNIFF_LEN)]),
        data_key,
    })
}

/// Flushes written files to stable storage (`fsync(2)`), from [`FILE_FLUSHES`] threads at
/// once: concurrent flushes wait on the same journal commits instead of one commit each, so
/// thousands of small files take a few commits instead of thousands.
fn sync_files(paths: &[PathBuf]) -> Result<(), ContentError> {
    if paths.is_empty() {
        return Ok(());
    }
    let per_thread = paths.len().div_ceil(FILE_FLUSHES).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(per_thread)
            .map(|group| {
                scope.spawn(move || -> Result<(), ContentError> {
                    for path in group {
                        std::fs::File::open(path)
                            .and_then(|file| file.sync_all())
                            .map_err(io_error(path))?;
                    }
                    Ok(())
                })
            })
            .collect();
        let mut result = Ok(());
        for worker in workers {
            let done = worker.join().unwrap_or_else(|_| {
                Err(ContentError::Io {
                    path: PathBuf::new(),
                    source: std::io::Error::other("a flushing thread panicked"),
                })
            });
            if result.is_ok() {
                result = done;
            }
        }
        result
    })
}

/// Renames a fully written temporary file to its content address and persists the directory
/// entry, so a crash cannot lose a renamed document that evidence already refers to.
pub(crate) async fn place(tmp: &Path, dest: &Path) -> Result<(), ContentError> {
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(io_error(parent))?;
    }
    tokio::fs::rename(tmp, dest).await.map_err(io_error(dest))?;
    if let Some(parent) = dest.parent() {
        let dir = tokio::fs::File::open(parent)
            .await
            .map_err(io_error(parent))?;
        dir.sync_all().await.map_err(io_error(parent))?;
    }
    Ok(())
}

impl Drop for IncomingContent {
    fn drop(&mut self) {
        self.segment.fill(0);
        if !self.finished {
            // Best effort: the file may already be gone.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Recognises the media types we accept from their leading bytes, never from what the client
/// claims. PDF: ISO 32000-1 §7.5.2 puts the `%PDF-` header at the start of the file; we
/// want it at offset 0 (readers tolerate it later in the first 1024 bytes, which is how a
/// file can be a PDF and an executable or a page at once). An upload that starts so is then
/// checked for the rest of its structure ([`pdf::PdfCheck`]).
pub fn sniff_media_type(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"%PDF-") {
        return Some("application/pdf");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_sweep_removes_incoming_files_older_than_a_day_and_keeps_recent_ones() {
        let dir = tempfile::tempdir().expect("dir");
        let now = std::time::SystemTime::now();
        let old = dir.path().join("upload-old.tmp");
        let recent = dir.path().join("upload-recent.tmp");
        std::fs::write(&old, b"left by a crash").expect("old");
        std::fs::write(&recent, b"in progress").expect("recent");
        std::fs::File::options()
            .write(true)
            .open(&old)
            .expect("open")
            .set_modified(now - STALE_INCOMING - std::time::Duration::from_secs(60))
            .expect("age it");

        let removed = sweep_incoming(dir.path(), now);

        assert_eq!(removed, 1);
        assert!(!old.exists(), "a day-old temporary file is swept");
        assert!(
            recent.exists(),
            "a recent one may belong to a running upload"
        );
    }

    async fn test_store(dir: &Path) -> ContentStore {
        let storage = Storage::connect(&format!("sqlite:{}", dir.join("t.db").display()))
            .await
            .expect("storage");
        let keyring = Keyring::load(None, &[], dir).expect("keyring");
        ContentStore::open(
            dir,
            storage,
            Arc::new(keyring),
            Arc::new(crate::core::clock::SystemClock),
        )
        .expect("store")
    }

    async fn read_all(store: &ContentStore, sha256: &str) -> Result<Vec<u8>, ContentError> {
        let mut reader = store.open_read(sha256).await?;
        let mut out = Vec::new();
        while let Some(chunk) = reader.next_chunk().await? {
            out.extend(chunk);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn the_same_bytes_land_at_one_address_encrypted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = test_store(dir.path()).await;
        let mut first = store.begin(1000).await.expect("begin");
        first.write(b"%PDF-1.7\nhello").await.expect("write");
        let a = first.finish().await.expect("finish");
        let on_disk = std::fs::read(store.path_of(&a.sha256)).expect("read");
        let mut second = store.begin(1000).await.expect("begin");
        second.write(b"%PDF-1.7\n").await.expect("write");
        second.write(b"hello").await.expect("write");
        let b = second.finish().await.expect("finish");
        assert_eq!(a, b);
        assert_eq!(a.media_type, Some("application/pdf"));
        // The second upload kept the first copy (and its key).
        assert_eq!(
            std::fs::read(store.path_of(&a.sha256)).expect("read"),
            on_disk
        );
        assert!(!on_disk.windows(5).any(|w| w == b"%PDF-"));
        assert!(!on_disk.windows(5).any(|w| w == b"hello"));
        assert_eq!(
            read_all(&store, &a.sha256).await.expect("plaintext"),
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
    async fn large_documents_stream_through_both_readers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = test_store(dir.path()).await;
        let plain: Vec<u8> = (0..3 * SEGMENT + 123).map(|i| (i % 253) as u8).collect();
        let mut upload = store.begin(1 << 30).await.expect("begin");
        for piece in plain.chunks(10_000) {
            upload.write(piece).await.expect("write");
        }
        let stored = upload.finish().await.expect("finish");
        assert_eq!(read_all(&store, &stored.sha256).await.expect("read"), plain);
        let mut blocking = store.open_blocking(&stored.sha256).await.expect("open");
        let back = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            blocking.read_to_end(&mut out).map(|_| out)
        })
        .await
        .expect("join")
        .expect("read");
        assert_eq!(back, plain);
    }

    #[tokio::test]
    async fn a_flipped_byte_on_disk_is_an_integrity_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = test_store(dir.path()).await;
        let mut upload = store.begin(1 << 20).await.expect("begin");
        upload.write(&[42u8; 100_000]).await.expect("write");
        let stored = upload.finish().await.expect("finish");
        let path = store.path_of(&stored.sha256);
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 5;
        bytes[last] ^= 0x01;
        std::fs::write(&path, &bytes).expect("write");
        match read_all(&store, &stored.sha256).await {
            Err(ContentError::Integrity { sha256, .. }) => assert_eq!(sha256, stored.sha256),
            other => panic!("expected an integrity error, got {other:?}"),
        }
        let mut blocking = store.open_blocking(&stored.sha256).await.expect("open");
        let mut out = Vec::new();
        let err = blocking.read_to_end(&mut out).expect_err("altered");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn an_oversized_upload_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = test_store(dir.path()).await;
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
        // The header at offset 0 only: nothing may come before it.
        assert_eq!(sniff_media_type(b"\xef\xbb\xbf%PDF-1.4"), None);
        assert_eq!(sniff_media_type(b"\x7fELF....%PDF-1.4"), None);
        assert_eq!(sniff_media_type(b"GIF89a"), None);
        assert_eq!(sniff_media_type(b""), None);
    }
}
