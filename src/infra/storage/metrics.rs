//! The figures `GET /metrics` exposes, each read by one small query (issue 6 §3).

use sqlx::Row;

use super::{Storage, StorageError};

/// What the operator monitors, read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// When (Unix µs) the oldest notification/reminder job already due became due; jobs
    /// scheduled for later (reminders days ahead) do not count.
    pub oldest_pending_job: Option<i64>,
    /// … of the oldest webhook delivery still pending.
    pub oldest_pending_webhook: Option<i64>,
    /// … of the oldest witness delivery still pending.
    pub oldest_pending_witness: Option<i64>,
    /// (size, issued at Unix µs) of the latest tree head.
    pub latest_tree_head: Option<(i64, i64)>,
    /// Leaves in the log.
    pub log_size: i64,
    /// Letters per state.
    pub letters_by_state: Vec<(String, i64)>,
    /// Stored documents.
    pub documents: i64,
    /// Live data keys per master key id.
    pub data_keys_by_master_key: Vec<(String, i64)>,
}

impl Storage {
    /// Reads the figures of [`MetricsSnapshot`].
    /// `now` (Unix µs) decides which outbox jobs are due.
    pub async fn metrics_snapshot(&self, now: i64) -> Result<MetricsSnapshot, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let scalar = |sql: &'static str| sqlx::query_scalar::<Db, Option<i64>>(sql);
            let oldest_pending_job = scalar(
                "SELECT MIN(run_after) FROM outbox WHERE done_at IS NULL AND run_after <= $1",
            )
            .bind(now)
            .fetch_one(pool)
            .await?;
            let oldest_pending_webhook = scalar(
                "SELECT MIN(created_at) FROM webhook_deliveries \
                 WHERE delivered_at IS NULL AND failed_at IS NULL",
            )
            .fetch_one(pool)
            .await?;
            let oldest_pending_witness = scalar(
                "SELECT MIN(created_at) FROM witness_deliveries \
                 WHERE delivered_at IS NULL AND failed_at IS NULL",
            )
            .fetch_one(pool)
            .await?;
            let latest_tree_head = sqlx::query(
                "SELECT tree_size, issued_at FROM tree_heads ORDER BY tree_size DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await?
            .map(|r| -> Result<(i64, i64), StorageError> {
                Ok((r.try_get("tree_size")?, r.try_get("issued_at")?))
            })
            .transpose()?;
            let log_size = scalar("SELECT MAX(position) + 1 FROM log_leaves")
                .fetch_one(pool)
                .await?
                .unwrap_or(0);
            let letters_by_state = sqlx::query(
                "SELECT state, COUNT(*) AS n FROM letters GROUP BY state ORDER BY state",
            )
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
            .collect::<Result<Vec<_>, StorageError>>()?;
            let documents = scalar("SELECT COUNT(*) FROM documents")
                .fetch_one(pool)
                .await?
                .unwrap_or(0);
            let data_keys_by_master_key = sqlx::query(
                "SELECT master_key_id, COUNT(*) AS n FROM document_keys \
                 WHERE wrapped_key IS NOT NULL GROUP BY master_key_id ORDER BY master_key_id",
            )
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("master_key_id")?, r.try_get("n")?)))
            .collect::<Result<Vec<_>, StorageError>>()?;
            Ok(MetricsSnapshot {
                oldest_pending_job,
                oldest_pending_webhook,
                oldest_pending_witness,
                latest_tree_head,
                log_size,
                letters_by_state,
                documents,
                data_keys_by_master_key,
            })
        })
    }
}
