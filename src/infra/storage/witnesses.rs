//! Deliveries of signed tree heads to outside witnesses (migration 0010): created with the
//! head they carry, claimed under a lease, one witness's heads in tree-size order.

use sqlx::QueryBuilder;

use super::log::TreeHeadRow;
use super::{AttemptOutcome, Storage, StorageError};

/// A witness that receives every new tree head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessTarget {
    /// `email` or `webhook`.
    pub kind: &'static str,
    /// `mailto:<address>` or the webhook URL.
    pub witness: String,
}

/// One delivery of a tree head to one witness: the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WitnessDeliveryRow {
    /// Delivery id (UUIDv7).
    pub id: String,
    /// Size of the head delivered.
    pub tree_size: i64,
    /// `email` or `webhook`.
    pub kind: String,
    /// `mailto:<address>` or the webhook URL.
    pub witness: String,
    /// Attempts made.
    pub attempts: i64,
    /// Next attempt (or the end of the current lease), Unix µs; `None` once settled.
    pub next_attempt_at: Option<i64>,
    /// First attempt, Unix µs.
    pub first_attempt_at: Option<i64>,
    /// Last attempt, Unix µs.
    pub last_attempt_at: Option<i64>,
    /// HTTP status of the last answer (webhooks).
    pub last_status: Option<i64>,
    /// The SMTP relay's reply to the last accepted mail.
    pub last_reply: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was delivered, Unix µs.
    pub delivered_at: Option<i64>,
    /// When it was given up, Unix µs.
    pub failed_at: Option<i64>,
    /// Creation time (the head's storage), Unix µs.
    pub created_at: i64,
}

/// A claimed delivery with the head to send.
#[derive(Debug, Clone)]
pub struct ClaimedWitnessDelivery {
    /// The delivery as claimed.
    pub delivery: WitnessDeliveryRow,
    /// The signed tree head.
    pub head: TreeHeadRow,
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessAttempt {
    /// Delivery id.
    pub delivery_id: String,
    /// Attempt time, Unix µs.
    pub at: i64,
    /// HTTP status, when a webhook receiver answered.
    pub status: Option<i64>,
    /// The SMTP relay's reply, when a mail was accepted.
    pub reply: Option<String>,
    /// Why it failed; `None` on success.
    pub error: Option<String>,
    /// What happens next.
    pub outcome: AttemptOutcome,
}

macro_rules! witness_columns {
    () => {
        "d.id, d.tree_size, d.kind, d.witness, d.attempts, d.next_attempt_at, \
         d.first_attempt_at, d.last_attempt_at, d.last_status, d.last_reply, d.last_error, \
         d.delivered_at, d.failed_at, d.created_at"
    };
}

/// A claimed witness delivery as read, with the columns of its tree head.
#[derive(sqlx::FromRow)]
struct ClaimedWitnessRecord {
    #[sqlx(flatten)]
    delivery: WitnessDeliveryRow,
    root_hash: String,
    issued_at: i64,
    head: Vec<u8>,
    seal: Vec<u8>,
    timestamp_token: Vec<u8>,
}

/// Deliveries due at `$1` whose witness has no earlier head still pending: a witness receives
/// its heads in tree-size order, and a later head waits while an earlier one is retried.
const DUE: &str = "FROM witness_deliveries d \
    WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= $1 \
    AND NOT EXISTS (SELECT 1 FROM witness_deliveries e WHERE e.witness = d.witness \
    AND e.tree_size < d.tree_size AND e.delivered_at IS NULL AND e.failed_at IS NULL) \
    ORDER BY d.tree_size, d.id LIMIT $2";

impl Storage {
    /// Stores a tree head and, in the same transaction, one delivery of it per witness (a
    /// head for the same size already stored wins: it is returned and nothing is queued).
    pub async fn insert_tree_head_for_witnesses(
        &self,
        head: &TreeHeadRow,
        witnesses: &[WitnessTarget],
        now: i64,
    ) -> Result<TreeHeadRow, StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO tree_heads (tree_size, root_hash, issued_at, head, seal, timestamp_token) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tree_size) DO NOTHING",
            )
            .bind(head.tree_size)
            .bind(&head.root_hash)
            .bind(head.issued_at)
            .bind(&head.head)
            .bind(&head.seal)
            .bind(&head.timestamp_token)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if inserted && !witnesses.is_empty() {
                let mut query = QueryBuilder::<Db>::new(
                    "INSERT INTO witness_deliveries (id, tree_size, kind, witness, attempts, \
                     next_attempt_at, created_at) ",
                );
                query.push_values(witnesses, |mut b, w| {
                    b.push_bind(uuid::Uuid::now_v7().to_string())
                        .push_bind(head.tree_size)
                        .push_bind(w.kind)
                        .push_bind(&w.witness)
                        .push_bind(0_i64)
                        .push_bind(now)
                        .push_bind(now);
                });
                query.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<(), StorageError>(())
        })?;
        self.tree_head(head.tree_size)
            .await?
            .ok_or_else(|| StorageError::Corrupt("tree head vanished after insert".into()))
    }

    /// Gives back the claims `(id, lease_until)` of deliveries whose attempt a stopping
    /// worker did not record: each still leased by that claim is due again at `now`.
    /// Returns how many were released.
    pub async fn release_witness_deliveries(
        &self,
        claims: &[(String, i64)],
        now: i64,
    ) -> Result<u64, StorageError> {
        self.release_leases(
            "UPDATE witness_deliveries SET next_attempt_at = $1 \
             WHERE id = $2 AND next_attempt_at = $3",
            claims,
            now,
        )
        .await
    }

    /// Claims at most `limit` due deliveries (at most one per witness: its oldest pending
    /// head) and leases them until `lease_until`, so that no other worker or instance sends
    /// them meanwhile; a worker that dies leaves them to others when the lease ends.
    pub async fn claim_due_witness_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedWitnessDelivery>, StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            // Rows locked by another instance's claim are skipped, not waited for.
            let select = format!(
                "SELECT d.id {DUE}{}",
                <Db as super::dialect::Dialect>::SKIP_LOCKED_OF_D
            );
            let mut tx = pool.begin().await?;
            let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(select))
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut query =
                QueryBuilder::<Db>::new("UPDATE witness_deliveries SET next_attempt_at = ");
            query.push_bind(lease_until).push(" WHERE id IN (");
            let mut list = query.separated(", ");
            for id in &ids {
                list.push_bind(id);
            }
            list.push_unseparated(")");
            query.build().execute(&mut *tx).await?;

            let mut query = QueryBuilder::<Db>::new(concat!(
                "SELECT ",
                witness_columns!(),
                ", h.root_hash, h.issued_at, h.head, h.seal, h.timestamp_token \
                 FROM witness_deliveries d JOIN tree_heads h ON h.tree_size = d.tree_size \
                 WHERE d.id IN ("
            ));
            let mut list = query.separated(", ");
            for id in &ids {
                list.push_bind(id);
            }
            list.push_unseparated(") ORDER BY d.tree_size, d.id");
            let rows = query
                .build_query_as::<ClaimedWitnessRecord>()
                .fetch_all(&mut *tx)
                .await?;
            let mut claimed = Vec::with_capacity(rows.len());
            for row in rows {
                claimed.push(ClaimedWitnessDelivery {
                    head: TreeHeadRow {
                        tree_size: row.delivery.tree_size,
                        root_hash: row.root_hash,
                        issued_at: row.issued_at,
                        head: row.head,
                        seal: row.seal,
                        timestamp_token: row.timestamp_token,
                    },
                    delivery: row.delivery,
                });
            }
            tx.commit().await?;
            Ok(claimed)
        })
    }

    /// Records one attempt. A delivery already settled is left as it is; returns whether the
    /// row changed.
    pub async fn record_witness_attempt(
        &self,
        attempt: &WitnessAttempt,
    ) -> Result<bool, StorageError> {
        let (next_attempt_at, delivered_at, failed_at) = match attempt.outcome {
            AttemptOutcome::Delivered => (None, Some(attempt.at), None),
            AttemptOutcome::RetryAt(at) => (Some(at), None, None),
            AttemptOutcome::GiveUp => (None, None, Some(attempt.at)),
        };
        Ok(execute!(
            self.writer(),
            "UPDATE witness_deliveries SET attempts = attempts + 1, \
                 first_attempt_at = COALESCE(first_attempt_at, $2), last_attempt_at = $2, \
                 last_status = $3, last_reply = COALESCE($4, last_reply), last_error = $5, \
                 next_attempt_at = $6, delivered_at = $7, failed_at = $8 \
                 WHERE id = $1 AND delivered_at IS NULL AND failed_at IS NULL",
            &attempt.delivery_id,
            attempt.at,
            attempt.status,
            &attempt.reply,
            &attempt.error,
            next_attempt_at,
            delivered_at,
            failed_at
        )? == 1)
    }

    /// Every delivery to witness `witness`, by tree size.
    pub async fn witness_deliveries(
        &self,
        witness: &str,
    ) -> Result<Vec<WitnessDeliveryRow>, StorageError> {
        let sql = concat!(
            "SELECT ",
            witness_columns!(),
            " FROM witness_deliveries d WHERE d.witness = $1 ORDER BY d.tree_size, d.id"
        );
        dispatch!(self.reader(), |pool, Db| {
            let rows: Vec<WitnessDeliveryRow> =
                sqlx::query_as(sql).bind(witness).fetch_all(pool).await?;
            Ok(rows)
        })
    }

    /// Created time (Unix µs) of the oldest witness delivery still pending, if any.
    pub async fn oldest_pending_witness_delivery(&self) -> Result<Option<i64>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let at: Option<i64> = sqlx::query_scalar(
                "SELECT MIN(created_at) FROM witness_deliveries \
                 WHERE delivered_at IS NULL AND failed_at IS NULL",
            )
            .fetch_one(pool)
            .await?;
            Ok(at)
        })
    }
}
