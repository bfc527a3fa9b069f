//! The ten-year archive: documents encrypted at rest under per-document data keys wrapped by
//! rotating master keys ([`keys`], [`cipher`]), and the commands that maintain it: re-wrapping
//! every data key under the active master key, and encrypting in place the plaintext files
//! left by versions before encryption at rest.
//!
//! Retention (CPCE R.53-2/R.53-3): every letter has `retain_until` (deposit + the configured
//! retention, at least one year). [`purge`] handles letters past that date and not on legal
//! hold: it seals a `ContentDestruction` evidence record, marks the letter, then destroys the
//! data key of every document that no letter needs any more (crypto-shredding). A document's
//! bytes may be shared by several letters and tenants (content addressing), so its key is
//! destroyed only once **every** letter using those bytes has been through destruction (and
//! the bytes were not uploaded again since). Evidence records are never deleted.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::core::cipher::{self, DataKey, SEGMENT, SegmentSealer};
use crate::core::evidence::EvidenceEvent;
use crate::infra::content::{BlockingDocumentReader, ContentError, ContentStore};

/// Letters or keys handled per database round trip by [`purge`].
const PURGE_PAGE: i64 = 500;

/// What a purge did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PurgeReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Letters whose content was destroyed by this run (dry: letters due).
    pub letters: Vec<String>,
    /// Documents (SHA-256) whose data key was destroyed by this run (dry: keys already free;
    /// the keys freed by the letters above are not counted).
    pub documents: Vec<String>,
    /// Letters whose sender and recipient copies were blanked by this run because the
    /// evidence retention (`[archive] evidence_retention`) passed (not counted when dry).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<String>,
}

/// The name written over a letter's sender and recipient once the evidence retention passed.
pub const ERASED_NAME: &str = "[données personnelles effacées / personal data erased]";
/// The address written over them (`.invalid`, RFC 2606 §2: never delivered).
pub const ERASED_EMAIL: &str = "erased@erased.invalid";

/// A party JSON with its name, address and organisation erased; what is not personal data
/// (the recipient's kind, a consent id) is kept so that every reader still parses it.
fn erase_party(json: &str) -> String {
    let mut party = match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    party.insert("name".into(), ERASED_NAME.into());
    party.insert("email".into(), ERASED_EMAIL.into());
    party.remove("organization");
    party.remove("identity");
    serde_json::Value::Object(party).to_string()
}

/// The latest `retain_until` (Unix µs) whose letters are past an evidence retention of
/// `years` at `now`: calendar years (29 February falls back to the 28th).
pub fn redaction_cutoff(now: time::OffsetDateTime, years: u32) -> i64 {
    let year = now.year() - years as i32;
    let shifted = now
        .replace_year(year)
        .or_else(|_| now.replace_day(28).and_then(|d| d.replace_year(year)))
        // Both cannot fail for a year within time's range; the unshifted time keeps nothing.
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    crate::core::clock::unix_micros(shifted)
}

/// A purge that could not finish.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] crate::infra::storage::StorageError),
    /// Sealing the destruction evidence failed.
    #[error(transparent)]
    Lifecycle(#[from] crate::app::lifecycle::LifecycleError),
}

/// What the retention purge works with: the service's parts (`From<&Service>` in
/// `crate::app::service`), or any other set of them.
#[derive(Clone, Copy)]
pub struct Purger<'a> {
    /// The letters, documents and keys.
    pub storage: &'a crate::infra::storage::Storage,
    /// Seals the content destruction evidence.
    pub lifecycle: &'a crate::app::lifecycle::Lifecycle,
    /// The time source.
    pub clock: &'a dyn crate::core::clock::Clock,
    /// `[archive] evidence_retention`: after it, the parties are erased from the letter rows.
    pub evidence_retention_years: Option<u32>,
}

/// Destroys the content of letters past their retention period and not on hold (see the
/// module documentation). Idempotent; a crash between steps is finished by the next run.
pub async fn purge<'a>(
    parts: impl Into<Purger<'a>>,
    dry_run: bool,
) -> Result<PurgeReport, PurgeError> {
    let parts: Purger<'a> = parts.into();
    let storage = parts.storage;
    let mut report = PurgeReport {
        dry_run,
        ..PurgeReport::default()
    };
    let now = crate::core::clock::unix_micros(parts.clock.now());
    if dry_run {
        report.letters = storage.letters_due_for_destruction(now, i64::MAX).await?;
        report.documents = storage.document_keys_free_to_destroy(i64::MAX).await?;
        return Ok(report);
    }
    loop {
        let due = storage.letters_due_for_destruction(now, PURGE_PAGE).await?;
        let mut progress = false;
        for id in &due {
            let Some(letter) = storage.letter_by_id(id).await? else {
                continue;
            };
            // A crash after the evidence and before the mark leaves the record in place:
            // do not seal a second one.
            let sealed = storage
                .evidence_of_letter(id)
                .await?
                .last()
                .is_some_and(|e| e.event == EvidenceEvent::ContentDestruction.name());
            if !sealed && !parts.lifecycle.record_content_destruction(&letter).await? {
                continue;
            }
            if storage.mark_content_destroyed(id, now).await? {
                tracing::info!(letter.id = %id, "retention ended: content destruction recorded");
                report.letters.push(id.clone());
                progress = true;
            }
        }
        if (due.len() as i64) < PURGE_PAGE || !progress {
            break;
        }
    }
    loop {
        let free = storage.document_keys_free_to_destroy(PURGE_PAGE).await?;
        let mut progress = false;
        for sha256 in &free {
            if storage.destroy_document_key(sha256, now).await? {
                tracing::info!(document.sha256 = %sha256, "data key destroyed (crypto-shredding)");
                report.documents.push(sha256.clone());
                progress = true;
            }
        }
        if (free.len() as i64) < PURGE_PAGE || !progress {
            break;
        }
    }
    if let Some(years) = parts.evidence_retention_years {
        let cutoff = redaction_cutoff(parts.clock.now(), years);
        loop {
            let due = storage
                .letters_due_for_redaction(cutoff, PURGE_PAGE)
                .await?;
            let mut progress = false;
            for (id, sender, recipient) in &due {
                if storage
                    .redact_letter_parties(id, &erase_party(sender), &erase_party(recipient), now)
                    .await?
                {
                    tracing::info!(letter.id = %id, "evidence retention passed: sender and recipient erased from the letter row");
                    report.redacted.push(id.clone());
                    progress = true;
                }
            }
            if (due.len() as i64) < PURGE_PAGE || !progress {
                break;
            }
        }
    }
    Ok(report)
}

/// Keys handled per database round trip by [`rewrap`].
const REWRAP_PAGE: i64 = 500;

/// What `recommande archive rewrap` did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RewrapReport {
    /// The active master key every live data key is now wrapped under.
    pub active_key_id: String,
    /// Data keys re-wrapped by this run.
    pub rewrapped: u64,
    /// Installation and webhook secrets re-sealed by this run.
    pub secrets_resealed: u64,
}

/// Re-wraps every live data key not under the active master key (same data key, so the
/// ciphertext on disk is untouched). Idempotent and resumable: each key is updated on its
/// own, only if still wrapped under the key it was read with. Afterwards the old master keys
/// can be removed from the configuration.
pub async fn rewrap(content: &ContentStore) -> Result<RewrapReport, ContentError> {
    let keyring = content.keyring();
    let active = keyring.active_id().to_string();
    // The installation HMAC keys and webhook secrets are sealed under the master keys too
    // (src/app/secrets.rs): once this returns, the old key can be removed.
    let secrets_resealed = crate::app::secrets::reseal_under_active_key(content.storage(), keyring)
        .await
        .map_err(|e| match e {
            crate::app::secrets::SecretError::Storage(e) => ContentError::from(e),
            crate::app::secrets::SecretError::Key(e) => ContentError::from(e),
        })?;
    let mut report = RewrapReport {
        active_key_id: active.clone(),
        rewrapped: 0,
        secrets_resealed,
    };
    loop {
        let rows = content
            .storage()
            .document_keys_not_under(&active, REWRAP_PAGE)
            .await?;
        if rows.is_empty() {
            return Ok(report);
        }
        for row in rows {
            let Some(wrapped) = row.wrapped_key else {
                continue;
            };
            let data_key = keyring.unwrap(&row.master_key_id, &row.sha256, &wrapped)?;
            let (id, rewrapped) = keyring.wrap(&row.sha256, &data_key)?;
            if content
                .storage()
                .rewrap_document_key(&row.sha256, &row.master_key_id, &id, &rewrapped)
                .await?
            {
                report.rewrapped += 1;
            }
        }
    }
}

/// What `recommande archive encrypt-existing` did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct EncryptReport {
    /// Files examined under `documents/`.
    pub examined: u64,
    /// Plaintext files encrypted in place by this run.
    pub encrypted: u64,
    /// Files already encrypted (left alone).
    pub already_encrypted: u64,
    /// Files left untouched because something is wrong with them (each named).
    pub problems: Vec<String>,
}

/// Encrypts in place every plaintext document written before encryption at rest. For each
/// file: the plaintext is hashed and must match its content address (else it is reported and
/// left alone); it is encrypted under a fresh data key into a temporary file, which is synced,
/// then read back, decrypted and hashed again; only then is the data key recorded and the
/// ciphertext renamed over the plaintext. Idempotent and resumable: an encrypted file (it
/// starts with the format header) is skipped, and an interruption at any point leaves either
/// the plaintext or the verified ciphertext under the document's name, never neither.
///
/// File-system back end only: a bucket never held plaintext (S3 storage came after encryption
/// at rest), and its objects are written once (WORM), not rewritten in place.
pub async fn encrypt_existing(content: &ContentStore) -> Result<EncryptReport, ContentError> {
    if content.is_object_storage() {
        return Err(ContentError::Unsupported(
            "archive encrypt-existing works on the file-system back end only: documents in an S3 bucket were encrypted before they were uploaded (to move plaintext files to a bucket, run it before switching [storage] backend to \"s3\")",
        ));
    }
    let mut report = EncryptReport::default();
    let root = content.documents_dir();
    let files = tokio::task::spawn_blocking(move || document_files(&root))
        .await
        .map_err(|e| io(Path::new("documents"), std::io::Error::other(e)))??;
    for path in files {
        report.examined += 1;
        let Some(sha256) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let head = {
            let mut head = [0u8; cipher::HEADER.len()];
            let mut file = std::fs::File::open(&path).map_err(|e| io(&path, e))?;
            let n = read_full(&mut file, &mut head).map_err(|e| io(&path, e))?;
            head[..n].to_vec()
        };
        if head == cipher::HEADER {
            report.already_encrypted += 1;
            continue;
        }
        let tmp = content
            .incoming_dir()
            .join(format!("encrypt-{}", uuid::Uuid::new_v4()));
        let job = {
            let (path, tmp, sha256) = (path.clone(), tmp.clone(), sha256.clone());
            tokio::task::spawn_blocking(move || encrypt_file(&path, &tmp, &sha256))
        };
        match job.await.map_err(|e| io(&path, std::io::Error::other(e)))? {
            Ok(data_key) => {
                // Stored when its tenants uploaded it, not now: the migration must not make
                // an expired document look freshly uploaded to the purge.
                let stored_at = content.storage().latest_document_upload(&sha256).await?;
                content.record_key(&sha256, &data_key, stored_at).await?;
                crate::infra::content::place(&tmp, &path).await?;
                report.encrypted += 1;
            }
            Err(problem) => {
                let _ = std::fs::remove_file(&tmp);
                report
                    .problems
                    .push(format!("{}: {problem}", path.display()));
            }
        }
    }
    Ok(report)
}

fn io(path: &Path, source: std::io::Error) -> ContentError {
    ContentError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Every file `documents/<xx>/<64 hex>`.
fn document_files(root: &Path) -> Result<Vec<PathBuf>, ContentError> {
    let mut files = Vec::new();
    let prefixes = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(io(root, e)),
    };
    for prefix in prefixes {
        let prefix = prefix.map_err(|e| io(root, e))?.path();
        if !prefix.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&prefix).map_err(|e| io(&prefix, e))? {
            let path = entry.map_err(|e| io(&prefix, e))?.path();
            let is_address = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.len() == 64
                    && n.bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            });
            if is_address && path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Reads until `buf` is full or the end of the file; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Encrypts the plaintext file `path` (whose identity is `sha256`) into `tmp`, syncs it, and
/// checks it by decrypting it back. Returns the data key; the caller records it and renames.
fn encrypt_file(path: &Path, tmp: &Path, sha256: &str) -> Result<DataKey, String> {
    let mut source = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut hasher = Sha256::new();
    let key = DataKey::generate().map_err(|e| e.to_string())?;
    let mut sealer = SegmentSealer::new(&key).map_err(|e| e.to_string())?;
    let mut out = std::fs::File::create_new(tmp).map_err(|e| e.to_string())?;
    out.write_all(cipher::HEADER).map_err(|e| e.to_string())?;
    let mut current = vec![0u8; SEGMENT];
    let mut next = vec![0u8; SEGMENT];
    let mut current_len = read_full(&mut source, &mut current).map_err(|e| e.to_string())?;
    loop {
        let next_len = if current_len == SEGMENT {
            read_full(&mut source, &mut next).map_err(|e| e.to_string())?
        } else {
            0
        };
        let last = next_len == 0;
        hasher.update(&current[..current_len]);
        let sealed = sealer
            .seal(&current[..current_len], last)
            .map_err(|e| e.to_string())?;
        out.write_all(&sealed).map_err(|e| e.to_string())?;
        if last {
            break;
        }
        std::mem::swap(&mut current, &mut next);
        current_len = next_len;
    }
    current.fill(0);
    next.fill(0);
    let actual = hex::encode(hasher.finalize());
    if actual != sha256 {
        return Err(format!(
            "the plaintext hashes to {actual}, not to its name: left as it is"
        ));
    }
    out.sync_all().map_err(|e| e.to_string())?;
    drop(out);
    // Read the ciphertext back: tags and the digest of the decrypted bytes must check.
    let written = std::fs::File::open(tmp).map_err(|e| e.to_string())?;
    let mut reader =
        BlockingDocumentReader::new(written, &key, sha256).map_err(|e| e.to_string())?;
    std::io::copy(&mut reader, &mut std::io::sink())
        .map_err(|e| format!("the encrypted copy does not read back: {e}"))?;
    Ok(key)
}
