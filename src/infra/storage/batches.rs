//! Batches and their per-row errors.
//!
//! Crash consistency: a batch is written with its validation errors (and its idempotency
//! record) in one transaction; then each chunk of letters is written in one transaction with
//! its evidence, its jobs, its row errors **and** the batch's progress (`next_row`,
//! `deposited`, `rejected`), guarded by the progress it expects. A crash therefore leaves
//! whole chunks and a `next_row` that says exactly where to resume, and two runners can never
//! both write the same chunk (the second one's guard fails and it stops).

use sqlx::{QueryBuilder, Row};

use super::{IdempotencyRow, NewDeposit, NewJob, Storage, StorageError};
use crate::domain::batch::RowError;

/// A batch about to be recorded.
#[derive(Debug, Clone)]
pub struct NewBatch {
    /// Batch id (UUID v7).
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// The API key that submitted it (written into each letter's proof of deposit).
    pub api_key_id: String,
    /// `depositing`, or a final state when nothing is to be deposited.
    pub state: String,
    /// `valid_rows` or `all_or_nothing`.
    pub mode: String,
    /// `json` or `csv`.
    pub source: String,
    /// Rows in the request.
    pub total: i64,
    /// Rows that passed validation.
    pub valid: i64,
    /// Rows refused at validation.
    pub rejected: i64,
    /// The valid rows as JSON `[{"row":N,"letter":{…}},…]`.
    pub letters: Vec<u8>,
    /// The client's `Idempotency-Key`, if any.
    pub idempotency_key: Option<String>,
    /// The submitting process deposits it until then; afterwards another may resume it.
    pub lease_until: Option<i64>,
    /// Creation time, Unix µs.
    pub created_at: i64,
    /// Set when the batch is created in a final state.
    pub completed_at: Option<i64>,
}

/// A batch as recorded.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BatchRecord {
    /// Batch id.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Owning tenant's name.
    pub tenant_name: String,
    /// Submitting API key.
    pub api_key_id: String,
    /// `depositing`, `completed`, `rejected` or `failed`.
    pub state: String,
    /// `valid_rows` or `all_or_nothing`.
    pub mode: String,
    /// `json` or `csv`.
    pub source: String,
    /// Rows in the request.
    pub total: i64,
    /// Rows that passed validation.
    pub valid: i64,
    /// Letters deposited so far.
    pub deposited: i64,
    /// Rows refused so far (validation and deposit).
    pub rejected: i64,
    /// Valid rows processed so far (index into the stored letters).
    pub next_row: i64,
    /// The client's `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// End of the current runner's lease, Unix µs.
    pub lease_until: Option<i64>,
    /// Why the batch failed.
    pub failure: Option<String>,
    /// Creation time, Unix µs.
    pub created_at: i64,
    /// Last change, Unix µs.
    pub updated_at: i64,
    /// When it reached a final state, Unix µs.
    pub completed_at: Option<i64>,
}

/// One chunk of a batch to commit atomically.
#[derive(Debug, Clone)]
pub struct BatchChunk<'a> {
    /// The batch.
    pub batch_id: &'a str,
    /// The progress this chunk starts from; the commit fails (returns false) if it moved.
    pub from_row: i64,
    /// The progress after this chunk.
    pub to_row: i64,
    /// Letters deposited by this chunk.
    pub deposits: &'a [NewDeposit],
    /// Rows of this chunk refused at deposit time.
    pub errors: &'a [RowError],
    /// Jobs caused (coalesced notifications and webhook events, `batch.completed`).
    pub jobs: &'a [NewJob],
    /// Final state to set with this chunk, if it is the last one.
    pub final_state: Option<&'a str>,
    /// Write time, Unix µs.
    pub now: i64,
    /// The runner keeps the batch until then.
    pub lease_until: i64,
}

macro_rules! batch_select {
    () => {
        "SELECT b.id, b.tenant_id, t.name AS tenant_name, b.api_key_id, b.state, b.mode, b.source, \
         b.total, b.valid, b.deposited, b.rejected, b.next_row, b.idempotency_key, b.lease_until, \
         b.failure, b.created_at, b.updated_at, b.completed_at \
         FROM batches b JOIN tenants t ON t.id = b.tenant_id"
    };
}

macro_rules! insert_row_errors {
    ($tx:expr, $db:ident, $batch_id:expr, $errors:expr) => {{
        for chunk in $errors.chunks(super::INSERT_CHUNK) {
            let mut query = QueryBuilder::<$db>::new(
                "INSERT INTO batch_errors (batch_id, row, field, message) ",
            );
            query.push_values(chunk, |mut b, e| {
                b.push_bind($batch_id)
                    .push_bind(e.row)
                    .push_bind(&e.field)
                    .push_bind(&e.message);
            });
            query.build().execute(&mut *$tx).await?;
        }
    }};
}

macro_rules! insert_jobs {
    ($tx:expr, $db:ident, $jobs:expr, $now:expr) => {{
        if !$jobs.is_empty() {
            let mut query = QueryBuilder::<$db>::new(
                "INSERT INTO outbox (kind, letter_id, payload, run_after, created_at) ",
            );
            query.push_values($jobs, |mut b, j| {
                b.push_bind(&j.kind)
                    .push_bind(&j.letter_id)
                    .push_bind(&j.payload)
                    .push_bind(j.run_after)
                    .push_bind($now);
            });
            query.build().execute(&mut *$tx).await?;
        }
    }};
}

impl Storage {
    /// Records a batch with its validation errors, the jobs of a batch created final, and the
    /// answer of the idempotency claim, in one transaction. A claim this request no longer
    /// holds yields `IdempotencyClaimLost`.
    pub async fn insert_batch(
        &self,
        batch: &NewBatch,
        errors: &[RowError],
        jobs: &[NewJob],
        idempotency: Option<&IdempotencyRow>,
    ) -> Result<(), StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            if let Some(idem) = idempotency {
                complete_idempotency!(&mut *tx, idem);
            }
            sqlx::query(
                "INSERT INTO batches (id, tenant_id, api_key_id, state, mode, source, total, valid, \
                 rejected, idempotency_key, lease_until, created_at, updated_at, completed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13)",
            )
            .bind(&batch.id)
            .bind(&batch.tenant_id)
            .bind(&batch.api_key_id)
            .bind(&batch.state)
            .bind(&batch.mode)
            .bind(&batch.source)
            .bind(batch.total)
            .bind(batch.valid)
            .bind(batch.rejected)
            .bind(&batch.idempotency_key)
            .bind(batch.lease_until)
            .bind(batch.created_at)
            .bind(batch.completed_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| StorageError::from_insert(e, "batch"))?;
            sqlx::query("INSERT INTO batch_rows (batch_id, letters) VALUES ($1, $2)")
                .bind(&batch.id)
                .bind(&batch.letters)
                .execute(&mut *tx)
                .await?;
            insert_row_errors!(tx, Db, &batch.id, errors);
            insert_jobs!(tx, Db, jobs, batch.created_at);
            tx.commit().await?;
            self.throughput.jobs_queued();
            self.throughput.batch_rows(1, 0, errors.len());
            Ok(())
        })
    }

    /// Commits one chunk of a batch (see the module comment). Returns false, writing
    /// nothing, when the batch's progress is no longer `chunk.from_row` or it is final.
    pub async fn commit_batch_chunk(&self, chunk: &BatchChunk<'_>) -> Result<bool, StorageError> {
        let completed_at = chunk.final_state.map(|_| chunk.now);
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            let moved = sqlx::query(
                "UPDATE batches SET next_row = $2, deposited = deposited + $3, rejected = rejected + $4, \
                 updated_at = $5, lease_until = $6, state = COALESCE($7, state), \
                 completed_at = COALESCE($8, completed_at) \
                 WHERE id = $1 AND next_row = $9 AND state = 'depositing'",
            )
            .bind(chunk.batch_id)
            .bind(chunk.to_row)
            .bind(chunk.deposits.len() as i64)
            .bind(chunk.errors.len() as i64)
            .bind(chunk.now)
            .bind(chunk.lease_until)
            .bind(chunk.final_state)
            .bind(completed_at)
            .bind(chunk.from_row)
            .execute(&mut *tx)
            .await?;
            if moved.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            insert_deposit_rows!(tx, Db, chunk.deposits, Some(chunk.batch_id));
            insert_row_errors!(tx, Db, chunk.batch_id, chunk.errors);
            insert_jobs!(tx, Db, chunk.jobs, chunk.now);
            tx.commit().await?;
            self.throughput.jobs_queued();
            self.throughput
                .evidence(chunk.deposits.iter().map(|d| d.evidence.event.as_str()));
            self.throughput
                .batch_rows(0, chunk.deposits.len(), chunk.errors.len());
            Ok(true)
        })
    }

    /// Ends a batch that is still depositing in `state` (`failed`, or `rejected` when an
    /// `all_or_nothing` batch meets a row refused at deposit time), with its row errors and
    /// jobs. Returns false when it was already final.
    pub async fn finish_batch(
        &self,
        batch_id: &str,
        state: &str,
        failure: Option<&str>,
        errors: &[RowError],
        jobs: &[NewJob],
        now: i64,
    ) -> Result<bool, StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE batches SET state = $2, failure = $3, rejected = rejected + $4, \
                 updated_at = $5, completed_at = $5 WHERE id = $1 AND state = 'depositing'",
            )
            .bind(batch_id)
            .bind(state)
            .bind(failure)
            .bind(errors.len() as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            insert_row_errors!(tx, Db, batch_id, errors);
            insert_jobs!(tx, Db, jobs, now);
            tx.commit().await?;
            self.throughput.jobs_queued();
            self.throughput.batch_rows(0, 0, errors.len());
            Ok(true)
        })
    }

    /// Takes over one depositing batch whose runner's lease ended (its process stopped),
    /// leasing it until `lease_until`. On PostgreSQL `FOR UPDATE SKIP LOCKED` lets several
    /// instances look at once without taking the same batch.
    pub async fn claim_abandoned_batch(
        &self,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<String>, StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let id: Option<String> =
                sqlx::query_scalar(<Db as super::dialect::Dialect>::CLAIM_ABANDONED_BATCH)
                    .bind(lease_until)
                    .bind(now)
                    .fetch_optional(pool)
                    .await?;
            Ok(id)
        })
    }

    /// Ends the leases a stopping process holds on batches `ids` that are still depositing,
    /// so that the next start's resumer takes them over at once from their last committed
    /// chunk instead of waiting for the lease to lapse. Returns how many were released.
    pub async fn release_batch_leases(&self, ids: &[String]) -> Result<u64, StorageError> {
        let mut released = 0;
        dispatch!(self.writer(), |pool, Db| {
            for id in ids {
                let done = sqlx::query(
                    "UPDATE batches SET lease_until = NULL WHERE id = $1 AND state = 'depositing'",
                )
                .bind(id)
                .execute(pool)
                .await?;
                released += done.rows_affected();
            }
            Ok(released)
        })
    }

    /// The tenant's batch `id` (another tenant's batch is `None`).
    pub async fn batch(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<BatchRecord>, StorageError> {
        let sql = concat!(batch_select!(), " WHERE b.tenant_id = $1 AND b.id = $2");
        fetch_optional!(self.reader(), BatchRecord, sql, tenant_id, id)
    }

    /// Cancels the tenant's batch `id` if it is still depositing: no further chunk commits
    /// (each commit requires `depositing`), the letters already committed stay. Returns
    /// whether it did.
    pub async fn cancel_batch(
        &self,
        tenant_id: &str,
        id: &str,
        now: i64,
    ) -> Result<bool, StorageError> {
        Ok(execute!(
            self.writer(),
            "UPDATE batches SET state = 'cancelled', cancelled_at = $3, completed_at = $3, \
                 updated_at = $3, lease_until = NULL \
                 WHERE tenant_id = $1 AND id = $2 AND state = 'depositing'",
            tenant_id,
            id,
            now
        )? == 1)
    }

    /// The tenant's batches, newest first (ids are UUIDv7), before `before_id`, in `state`
    /// when given.
    pub async fn list_batches(
        &self,
        tenant_id: &str,
        state: Option<&str>,
        before_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<BatchRecord>, StorageError> {
        let sql = concat!(
            batch_select!(),
            " WHERE b.tenant_id = $1 AND ($2 IS NULL OR b.state = $2) \
             AND ($3 IS NULL OR b.id < $3) ORDER BY b.id DESC LIMIT $4"
        );
        fetch_all!(
            self.reader(),
            BatchRecord,
            sql,
            tenant_id,
            state,
            before_id,
            limit
        )
    }

    /// Batch `id` with its stored valid rows, for the runner (read on the writer so that a
    /// batch just committed is seen).
    pub async fn batch_to_run(
        &self,
        id: &str,
    ) -> Result<Option<(BatchRecord, Vec<u8>)>, StorageError> {
        let sql = concat!(batch_select!(), " WHERE b.id = $1");
        dispatch!(self.writer(), |pool, Db| {
            let record: Option<BatchRecord> =
                sqlx::query_as(sql).bind(id).fetch_optional(pool).await?;
            let Some(record) = record else {
                return Ok(None);
            };
            let letters = sqlx::query("SELECT letters FROM batch_rows WHERE batch_id = $1")
                .bind(id)
                .fetch_one(pool)
                .await?
                .try_get("letters")?;
            Ok(Some((record, letters)))
        })
    }

    /// Per-row errors of a batch, by row then in the order found.
    pub async fn batch_errors(&self, batch_id: &str) -> Result<Vec<RowError>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let rows = sqlx::query(
                "SELECT row, field, message FROM batch_errors WHERE batch_id = $1 ORDER BY row, id",
            )
            .bind(batch_id)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|row| {
                    Ok(RowError {
                        row: row.try_get("row")?,
                        field: row.try_get("field")?,
                        message: row.try_get("message")?,
                    })
                })
                .collect()
        })
    }

    /// How many of the batch's letters are in each state, and how many were notified
    /// (`notified_at` set, whatever happened next).
    pub async fn batch_letter_states(
        &self,
        batch_id: &str,
    ) -> Result<(Vec<(String, i64)>, i64), StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let rows = sqlx::query(
                "SELECT state, COUNT(*) AS n, COUNT(notified_at) AS notified FROM letters \
                 WHERE batch_id = $1 GROUP BY state ORDER BY state",
            )
            .bind(batch_id)
            .fetch_all(pool)
            .await?;
            let mut states = Vec::with_capacity(rows.len());
            let mut notified = 0;
            for row in rows {
                states.push((row.try_get("state")?, row.try_get("n")?));
                notified += row.try_get::<i64, _>("notified")?;
            }
            Ok((states, notified))
        })
    }
}
