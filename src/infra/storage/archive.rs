//! Wrapped data keys of stored documents (encryption at rest), legal holds and the
//! crypto-shredding purge (issue 6 §1).

use sqlx::Row;

use super::{Storage, StorageError};

/// The wrapped data key of one stored document.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DocumentKeyRow {
    /// Hex SHA-256 of the document's plaintext (its content address).
    pub sha256: String,
    /// Id of the master key that wraps it.
    pub master_key_id: String,
    /// `nonce ‖ wrapped key ‖ tag`; `None` once destroyed (crypto-shredding).
    pub wrapped_key: Option<Vec<u8>>,
    /// When the key was created, Unix µs.
    pub created_at: i64,
    /// Last time these bytes were stored (uploaded), Unix µs.
    pub stored_at: i64,
    /// When the key was destroyed, Unix µs.
    pub destroyed_at: Option<i64>,
}

/// SQL condition on `k` (a `document_keys` row): at least one letter uses the bytes, every
/// letter using them has had its content destroyed, and the bytes were not stored again after
/// the latest deposit among them.
macro_rules! destruction_guard {
    () => {
        "EXISTS (SELECT 1 FROM documents d JOIN letter_documents ld ON ld.document_id = d.id \
         WHERE d.sha256 = k.sha256) \
         AND NOT EXISTS (SELECT 1 FROM documents d JOIN letter_documents ld ON ld.document_id = d.id \
         JOIN letters l ON l.id = ld.letter_id WHERE d.sha256 = k.sha256 \
         AND l.content_destroyed_at IS NULL) \
         AND k.stored_at <= (SELECT MAX(l.deposited_at) FROM documents d \
         JOIN letter_documents ld ON ld.document_id = d.id JOIN letters l ON l.id = ld.letter_id \
         WHERE d.sha256 = k.sha256)"
    };
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
        stored_at: i64,
    ) -> Result<(), StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            sqlx::query(
                "INSERT INTO document_keys (sha256, master_key_id, wrapped_key, created_at, stored_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sha256) DO UPDATE SET \
                 master_key_id = excluded.master_key_id, wrapped_key = excluded.wrapped_key, \
                 created_at = excluded.created_at, stored_at = excluded.stored_at, \
                 destroyed_at = NULL",
            )
            .bind(sha256)
            .bind(master_key_id)
            .bind(wrapped_key)
            .bind(now)
            .bind(stored_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// [`Storage::put_document_key`] for many documents (distinct digests), in one
    /// transaction: `(sha256, master_key_id, wrapped_key)`.
    pub async fn put_document_keys(
        &self,
        keys: &[(String, String, Vec<u8>)],
        now: i64,
    ) -> Result<(), StorageError> {
        if keys.is_empty() {
            return Ok(());
        }
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            for part in keys.chunks(500) {
                let mut query = sqlx::QueryBuilder::<Db>::new(
                    "INSERT INTO document_keys (sha256, master_key_id, wrapped_key, created_at, stored_at) ",
                );
                query.push_values(part, |mut row, (sha256, master_key_id, wrapped)| {
                    row.push_bind(sha256)
                        .push_bind(master_key_id)
                        .push_bind(wrapped)
                        .push_bind(now)
                        .push_bind(now);
                });
                query.push(
                    " ON CONFLICT (sha256) DO UPDATE SET \
                     master_key_id = excluded.master_key_id, wrapped_key = excluded.wrapped_key, \
                     created_at = excluded.created_at, stored_at = excluded.stored_at, \
                     destroyed_at = NULL",
                );
                query.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The key rows of the documents among `sha256s` that have one.
    pub async fn document_keys_among(
        &self,
        sha256s: &[String],
    ) -> Result<Vec<DocumentKeyRow>, StorageError> {
        let mut out = Vec::new();
        for part in sha256s.chunks(500) {
            dispatch!(self.reader(), |pool, Db| {
                let mut query = sqlx::QueryBuilder::<Db>::new(
                    "SELECT sha256, master_key_id, wrapped_key, created_at, stored_at, destroyed_at \
                     FROM document_keys WHERE sha256 IN (",
                );
                let mut list = query.separated(", ");
                for sha256 in part {
                    list.push_bind(sha256);
                }
                list.push_unseparated(")");
                out.extend(
                    query
                        .build_query_as::<DocumentKeyRow>()
                        .fetch_all(pool)
                        .await?,
                );
            });
        }
        Ok(out)
    }

    /// Records that already stored bytes were uploaded again at `now` (see `stored_at`).
    pub async fn touch_document_key(&self, sha256: &str, now: i64) -> Result<(), StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            sqlx::query(
                "UPDATE document_keys SET stored_at = $1 WHERE sha256 = $2 AND stored_at < $1",
            )
            .bind(now)
            .bind(sha256)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The latest upload time among the tenants' document rows of these bytes.
    pub async fn latest_document_upload(&self, sha256: &str) -> Result<Option<i64>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let row =
                sqlx::query("SELECT MAX(created_at) AS latest FROM documents WHERE sha256 = $1")
                    .bind(sha256)
                    .fetch_one(pool)
                    .await?;
            Ok(row.try_get("latest")?)
        })
    }

    /// The key row of a document, if any.
    pub async fn document_key(&self, sha256: &str) -> Result<Option<DocumentKeyRow>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let row: Option<DocumentKeyRow> = sqlx::query_as(
                "SELECT sha256, master_key_id, wrapped_key, created_at, stored_at, destroyed_at \
                 FROM document_keys WHERE sha256 = $1",
            )
            .bind(sha256)
            .fetch_optional(pool)
            .await?;
            Ok(row)
        })
    }

    /// Ids of the master keys that still wrap at least one live data key.
    pub async fn master_key_ids_in_use(&self) -> Result<Vec<String>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
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
        dispatch!(self.reader(), |pool, Db| {
            let rows: Vec<DocumentKeyRow> = sqlx::query_as(
                "SELECT sha256, master_key_id, wrapped_key, created_at, stored_at, destroyed_at \
                 FROM document_keys WHERE wrapped_key IS NOT NULL AND master_key_id <> $1 \
                 ORDER BY sha256 LIMIT $2",
            )
            .bind(active)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows)
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
        Ok(execute!(
            self.writer(),
            "UPDATE document_keys SET master_key_id = $1, wrapped_key = $2 \
                 WHERE sha256 = $3 AND master_key_id = $4 AND wrapped_key IS NOT NULL",
            new_id,
            wrapped_key,
            sha256,
            old_id
        )? == 1)
    }

    // ----- legal hold and retention -------------------------------------------------------

    /// Places (`Some(now)`) or lifts (`None`) a legal hold on a letter of `tenant_id`.
    /// Idempotent: placing keeps the first hold time. Returns whether the letter exists for
    /// this tenant.
    pub async fn set_legal_hold(
        &self,
        tenant_id: &str,
        letter_id: &str,
        hold_since: Option<i64>,
    ) -> Result<bool, StorageError> {
        Ok(execute!(
            self.writer(),
            "UPDATE letters SET legal_hold_since = \
                 CASE WHEN $1 IS NULL THEN NULL ELSE COALESCE(legal_hold_since, $1) END \
                 WHERE id = $2 AND tenant_id = $3",
            hold_since,
            letter_id,
            tenant_id
        )? == 1)
    }

    /// Letters whose retention period ended at `now` or before, not on hold and whose content
    /// is not destroyed yet (CPCE R.53-3: nothing earlier may be destroyed).
    pub async fn letters_due_for_destruction(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<String>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let rows = sqlx::query(
                "SELECT id FROM letters WHERE retain_until <= $1 AND legal_hold_since IS NULL \
                 AND content_destroyed_at IS NULL ORDER BY retain_until, id LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
        })
    }

    /// At most `limit` letters whose content was destroyed, not on hold, not yet redacted,
    /// and whose `retain_until` is at or before `cutoff`: (id, sender JSON, recipient JSON).
    pub async fn letters_due_for_redaction(
        &self,
        cutoff: i64,
        limit: i64,
    ) -> Result<Vec<(String, String, String)>, StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let rows = sqlx::query(
                "SELECT id, sender, recipient FROM letters WHERE retain_until <= $1 \
                 AND content_destroyed_at IS NOT NULL AND legal_hold_since IS NULL \
                 AND personal_data_redacted_at IS NULL ORDER BY retain_until, id LIMIT $2",
            )
            .bind(cutoff)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get("id")?,
                        r.try_get("sender")?,
                        r.try_get("recipient")?,
                    ))
                })
                .collect()
        })
    }

    /// Replaces a letter's sender and recipient copies (outside the sealed evidence, which is
    /// never touched) and sets `personal_data_redacted_at`, unless on hold or already done.
    /// Returns whether it did.
    pub async fn redact_letter_parties(
        &self,
        letter_id: &str,
        sender: &str,
        recipient: &str,
        now: i64,
    ) -> Result<bool, StorageError> {
        Ok(execute!(
            self.writer(),
            "UPDATE letters SET sender = $2, recipient = $3, personal_data_redacted_at = $4 \
                 WHERE id = $1 AND personal_data_redacted_at IS NULL \
                 AND content_destroyed_at IS NOT NULL AND legal_hold_since IS NULL",
            letter_id,
            sender,
            recipient,
            now
        )? == 1)
    }

    /// Marks a letter's content destroyed (after its `ContentDestruction` evidence), only if
    /// its retention period ended by `now` and it is not on hold. Returns whether it did.
    pub async fn mark_content_destroyed(
        &self,
        letter_id: &str,
        now: i64,
    ) -> Result<bool, StorageError> {
        Ok(execute!(
            self.writer(),
            "UPDATE letters SET content_destroyed_at = $1 WHERE id = $2 \
                 AND content_destroyed_at IS NULL AND retain_until <= $1 \
                 AND legal_hold_since IS NULL",
            now,
            letter_id
        )? == 1)
    }

    /// Live data keys that no letter needs any more: every letter using these bytes (any
    /// tenant) has had its content destroyed, and the bytes were not uploaded again after the
    /// latest of those letters' deposits (such an upload may be for a letter still to come).
    pub async fn document_keys_free_to_destroy(
        &self,
        limit: i64,
    ) -> Result<Vec<String>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let rows = sqlx::query(concat!(
                "SELECT k.sha256 FROM document_keys k WHERE k.wrapped_key IS NOT NULL AND ",
                destruction_guard!(),
                " ORDER BY k.sha256 LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok(r.try_get("sha256")?)).collect()
        })
    }

    /// Letters that still need the bytes `sha256`: they use them and their content was not
    /// destroyed. The audit uses it to tell a purge's crypto-shredding (none) from a key lost
    /// or destroyed too early (some).
    pub async fn letters_still_needing(&self, sha256: &str) -> Result<Vec<String>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let rows = sqlx::query(
                "SELECT DISTINCT l.id FROM documents d \
                 JOIN letter_documents ld ON ld.document_id = d.id \
                 JOIN letters l ON l.id = ld.letter_id \
                 WHERE d.sha256 = $1 AND l.content_destroyed_at IS NULL ORDER BY l.id",
            )
            .bind(sha256)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
        })
    }

    /// Destroys a document's data key (crypto-shredding), re-checking in the same statement
    /// that no letter still needs it. Returns whether it did.
    pub async fn destroy_document_key(&self, sha256: &str, now: i64) -> Result<bool, StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let done = sqlx::query(concat!(
                "UPDATE document_keys SET wrapped_key = NULL, destroyed_at = $1 \
                 WHERE sha256 = $2 AND wrapped_key IS NOT NULL AND EXISTS \
                 (SELECT 1 FROM document_keys k WHERE k.sha256 = $2 AND ",
                destruction_guard!(),
                ")"
            ))
            .bind(now)
            .bind(sha256)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }
}

/// Exclusive right to place one document's bytes and key, across every instance sharing the
/// database: a PostgreSQL session advisory lock on its content address. On SQLite (a single
/// process) it holds nothing: the content store's in-process mutex is enough there.
/// Release it with [`DocumentLock::release`]; dropped unreleased (an error path), its
/// connection is closed, which releases the lock on the server.
pub struct DocumentLock {
    held: Option<(sqlx::pool::PoolConnection<sqlx::Postgres>, i64)>,
}

impl DocumentLock {
    /// Releases the lock.
    pub async fn release(mut self) {
        if let Some((mut conn, id)) = self.held.take() {
            let unlocked = sqlx::query(super::dialect::PG_ADVISORY_UNLOCK)
                .bind(id)
                .execute(&mut *conn)
                .await;
            if unlocked.is_err() {
                // Never return a connection that may still hold the lock to the pool.
                drop(conn.detach());
            }
        }
    }
}

impl Drop for DocumentLock {
    fn drop(&mut self) {
        if let Some((conn, _)) = self.held.take() {
            drop(conn.detach());
        }
    }
}

impl Storage {
    /// Takes the placement lock of document `sha256` (waits for another instance holding it).
    pub async fn lock_document(&self, sha256: &str) -> Result<DocumentLock, StorageError> {
        // The lock is the writer's: it orders writes of the same bytes.
        match self.writer().pools() {
            super::Pools::Sqlite(_) => Ok(DocumentLock { held: None }),
            super::Pools::Postgres(pool) => {
                // The lock id: the first 8 bytes of the content address (a SHA-256, so as
                // good as random; a collision only makes two placements wait for each other).
                let id = sha256
                    .get(..16)
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                    .map_or(0, |n| n as i64);
                let mut conn = pool.acquire().await?;
                sqlx::query(super::dialect::PG_ADVISORY_LOCK)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                Ok(DocumentLock {
                    held: Some((conn, id)),
                })
            }
        }
    }
}
