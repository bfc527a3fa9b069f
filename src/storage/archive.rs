//! Wrapped data keys of stored documents (encryption at rest), legal holds and the
//! crypto-shredding purge (issue 6 §1).

use sqlx::Row;

use super::{Backend, Storage, StorageError};

/// The wrapped data key of one stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentKeyRow {
    /// Hex SHA-256 of the document's plaintext (its content address).
    pub sha256: String,
    /// Id of the master key that wraps it.
    pub master_key_id: String,
    /// `nonce ‖ wrapped key ‖ tag`; `None` once destroyed (crypto-shredding).
    pub wrapped_key: Option<Vec<u8>>,
    /// When the key was created, Unix µs.
    pub created_at: i64,
    /// When the key was destroyed, Unix µs.
    pub destroyed_at: Option<i64>,
}

macro_rules! key_from_row {
    ($row:expr) => {{
        let row = &$row;
        DocumentKeyRow {
            sha256: row.try_get("sha256")?,
            master_key_id: row.try_get("master_key_id")?,
            wrapped_key: row.try_get("wrapped_key")?,
            created_at: row.try_get("created_at")?,
            destroyed_at: row.try_get("destroyed_at")?,
        }
    }};
}

impl Storage {
    /// Records the wrapped data key of a document about to be (re)stored. A key left by an
    /// interrupted store, or destroyed by a purge, is replaced: the bytes are stored anew.
    pub async fn put_document_key(
        &self,
        sha256: &str,
        master_key_id: &str,
        wrapped_key: &[u8],
        now: i64,
    ) -> Result<(), StorageError> {
        dispatch!(self, write, |pool, Db| {
            sqlx::query(
                "INSERT INTO document_keys (sha256, master_key_id, wrapped_key, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO UPDATE SET \
                 master_key_id = excluded.master_key_id, wrapped_key = excluded.wrapped_key, \
                 created_at = excluded.created_at, destroyed_at = NULL",
            )
            .bind(sha256)
            .bind(master_key_id)
            .bind(wrapped_key)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The key row of a document, if any.
    pub async fn document_key(&self, sha256: &str) -> Result<Option<DocumentKeyRow>, StorageError> {
        dispatch!(self, read, |pool, Db| {
            let row = sqlx::query(
                "SELECT sha256, master_key_id, wrapped_key, created_at, destroyed_at \
                 FROM document_keys WHERE sha256 = $1",
            )
            .bind(sha256)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                Some(row) => Some(key_from_row!(row)),
                None => None,
            })
        })
    }

    /// Ids of the master keys that still wrap at least one live data key.
    pub async fn master_key_ids_in_use(&self) -> Result<Vec<String>, StorageError> {
        dispatch!(self, read, |pool, Db| {
            let rows = sqlx::query(
                "SELECT DISTINCT master_key_id FROM document_keys WHERE wrapped_key IS NOT NULL \
                 ORDER BY master_key_id",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| Ok(r.try_get("master_key_id")?))
                .collect()
        })
    }

    /// Up to `limit` live data keys wrapped under another master key than `active`.
    pub async fn document_keys_not_under(
        &self,
        active: &str,
        limit: i64,
    ) -> Result<Vec<DocumentKeyRow>, StorageError> {
        dispatch!(self, read, |pool, Db| {
            let rows = sqlx::query(
                "SELECT sha256, master_key_id, wrapped_key, created_at, destroyed_at \
                 FROM document_keys WHERE wrapped_key IS NOT NULL AND master_key_id <> $1 \
                 ORDER BY sha256 LIMIT $2",
            )
            .bind(active)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok(key_from_row!(r))).collect()
        })
    }

    /// Replaces a data key's wrapping (same data key, new master key), only if it is still
    /// wrapped under `old_id`. Returns whether it was.
    pub async fn rewrap_document_key(
        &self,
        sha256: &str,
        old_id: &str,
        new_id: &str,
        wrapped_key: &[u8],
    ) -> Result<bool, StorageError> {
        dispatch!(self, write, |pool, Db| {
            let done = sqlx::query(
                "UPDATE document_keys SET master_key_id = $1, wrapped_key = $2 \
                 WHERE sha256 = $3 AND master_key_id = $4 AND wrapped_key IS NOT NULL",
            )
            .bind(new_id)
            .bind(wrapped_key)
            .bind(sha256)
            .bind(old_id)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }
}
