//! `Idempotency-Key` records: claim, complete, release, replay.
//!
//! A request carrying a key first **claims** it: it inserts the key's row in the `pending`
//! state. The primary key (tenant, key) lets exactly one of several concurrent requests win
//! that insert, so only the winner goes on to seal, timestamp and write; the others find the
//! row and answer from it. The winner **completes** the row with its answer in the
//! transaction that creates the resource (`complete_idempotency!`), or **releases** (deletes)
//! it when the request fails, so that the key stays free for a corrected retry. A pending row
//! left behind by a crash is stale after the caller's expiry and may then be taken over by a
//! retry of the same request; the claim token makes sure the original request, should it
//! still be running, can no longer complete it.

use sqlx::Row;

use super::{IdempotencyRow, Storage, StorageError};

/// Completes a pending claim: binds tenant, key, claim, status, headers, response, time.
pub(crate) const COMPLETE_SQL: &str = "UPDATE idempotency_keys \
     SET state = 'done', status = $4, headers = $5, response = $6, created_at = $7 \
     WHERE tenant_id = $1 AND key = $2 AND claim = $3 AND state = 'pending'";

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The claim is this request's: process it, then complete or release the claim.
    Won,
    /// The key already has a row (an answer, or another request's live claim).
    Taken(IdempotencyRow),
}

impl Storage {
    /// Claims (`claim.tenant_id`, `claim.key`) for the request described by `claim` (its
    /// route, fingerprint, token and time; `done` false). A pending row of the same request
    /// older than `stale_before` (Unix µs) is taken over.
    pub async fn claim_idempotency(
        &self,
        claim: &IdempotencyRow,
        stale_before: i64,
    ) -> Result<Claimed, StorageError> {
        // A row released between our insert and our read is claimed again; twice is plenty
        // (a third miss would need two full requests to fail in that window).
        for _ in 0..3 {
            let inserted = dispatch!(self.writer(), |pool, Db| {
                sqlx::query(
                    "INSERT INTO idempotency_keys \
                     (tenant_id, key, route, request_sha256, claim, state, status, headers, response, created_at) \
                     VALUES ($1, $2, $3, $4, $5, 'pending', 0, '', $6, $7) \
                     ON CONFLICT (tenant_id, key) DO NOTHING",
                )
                .bind(&claim.tenant_id)
                .bind(&claim.key)
                .bind(&claim.route)
                .bind(&claim.request_sha256)
                .bind(&claim.claim)
                .bind(Vec::<u8>::new())
                .bind(claim.created_at)
                .execute(pool)
                .await?
                .rows_affected()
            });
            if inserted == 1 {
                return Ok(Claimed::Won);
            }
            let taken_over = dispatch!(self.writer(), |pool, Db| {
                sqlx::query(
                    "UPDATE idempotency_keys SET claim = $3, route = $4, created_at = $5 \
                     WHERE tenant_id = $1 AND key = $2 AND state = 'pending' \
                     AND request_sha256 = $6 AND created_at < $7",
                )
                .bind(&claim.tenant_id)
                .bind(&claim.key)
                .bind(&claim.claim)
                .bind(&claim.route)
                .bind(claim.created_at)
                .bind(&claim.request_sha256)
                .bind(stale_before)
                .execute(pool)
                .await?
                .rows_affected()
            });
            if taken_over == 1 {
                return Ok(Claimed::Won);
            }
            if let Some(row) = self.idempotency_row(&claim.tenant_id, &claim.key).await? {
                return Ok(Claimed::Taken(row));
            }
        }
        Err(StorageError::IdempotencyClaimLost)
    }

    /// Completes the pending claim `idem` with its answer, outside any other write (for
    /// requests whose own write is naturally idempotent, or content-addressed).
    pub async fn complete_idempotency(&self, idem: &IdempotencyRow) -> Result<(), StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let mut conn = pool.acquire().await?;
            complete_idempotency!(&mut *conn, idem);
            Ok(())
        })
    }

    /// Deletes the pending claim of (`tenant_id`, `key`) held by `claim`; an answer, or a
    /// claim taken over by another request, is left alone.
    pub async fn release_idempotency(
        &self,
        tenant_id: &str,
        key: &str,
        claim: &str,
    ) -> Result<(), StorageError> {
        execute!(
            self.writer(),
            "DELETE FROM idempotency_keys \
                 WHERE tenant_id = $1 AND key = $2 AND claim = $3 AND state = 'pending'",
            tenant_id,
            key,
            claim
        )
        .map(|_| ())
    }

    /// The row of (`tenant_id`, `key`), pending or done, if any.
    pub async fn idempotency_row(
        &self,
        tenant_id: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRow>, StorageError> {
        // Read through the write pool on SQLite: a retry racing the original must see its
        // committed row, and the single writer serialises the two.
        dispatch!(self.writer(), |pool, Db| {
            let row = sqlx::query(
                "SELECT tenant_id, key, route, request_sha256, claim, state, status, headers, \
                 response, created_at FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
            )
            .bind(tenant_id)
            .bind(key)
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(Some(IdempotencyRow {
                    tenant_id: row.try_get("tenant_id")?,
                    key: row.try_get("key")?,
                    route: row.try_get("route")?,
                    request_sha256: row.try_get("request_sha256")?,
                    claim: row.try_get("claim")?,
                    done: row.try_get::<String, _>("state")? == "done",
                    status: row.try_get("status")?,
                    headers: row.try_get("headers")?,
                    response: row.try_get("response")?,
                    created_at: row.try_get("created_at")?,
                })),
                None => Ok(None),
            }
        })
    }
}
