//! Read-only queries of the archive audit: every document, every letter with its chain head,
//! every log leaf and tree head, page by page (or a random sample), across tenants.

use sqlx::Row;

use super::log::LeafRow;
use super::{DocumentRecord, DocumentRow, Storage, StorageError};

impl Storage {
    /// Documents with an id after `after`, in id order (all tenants).
    pub async fn documents_after(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<DocumentRow>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let rows = sqlx::query_as::<_, DocumentRecord>(
                "SELECT id, tenant_id, sha256, size, media_type, filename, created_at \
                 FROM documents WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::from).collect())
        })
    }

    /// Letter ids after `after`, in id order, with their chain head (all tenants).
    pub async fn letter_heads_after(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, Option<String>)>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let rows = sqlx::query(
                "SELECT id, last_evidence_sha256 FROM letters WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("last_evidence_sha256")?)))
                .collect()
        })
    }

    /// A random sample of `n` letters with their chain head.
    pub async fn sample_letter_heads(
        &self,
        n: i64,
    ) -> Result<Vec<(String, Option<String>)>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let rows = sqlx::query(
                "SELECT id, last_evidence_sha256 FROM letters ORDER BY random() LIMIT $1",
            )
            .bind(n)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("last_evidence_sha256")?)))
                .collect()
        })
    }

    /// A random sample of `n` documents.
    pub async fn sample_documents(&self, n: i64) -> Result<Vec<DocumentRow>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let rows = sqlx::query_as::<_, DocumentRecord>(
                "SELECT id, tenant_id, sha256, size, media_type, filename, created_at \
                 FROM documents ORDER BY random() LIMIT $1",
            )
            .bind(n)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::from).collect())
        })
    }

    /// Log leaves after `after` (position), in log order, with the record SHA-256 the evidence
    /// row holds now (`None` when the row is gone).
    pub async fn log_leaves_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(LeafRow, Option<String>)>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let rows = sqlx::query(
                "SELECT l.position, l.evidence_id, l.record_sha256, e.record_sha256 AS current \
                 FROM log_leaves l LEFT JOIN evidence e ON e.id = l.evidence_id \
                 WHERE l.position > $1 ORDER BY l.position LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|r| {
                    Ok((
                        LeafRow {
                            position: r.try_get("position")?,
                            evidence_id: r.try_get("evidence_id")?,
                            record_sha256: r.try_get("record_sha256")?,
                        },
                        r.try_get("current")?,
                    ))
                })
                .collect()
        })
    }

    /// Evidence rows that are not in the log and were created before `before` (Unix µs):
    /// after the appender has run, there should be none.
    pub async fn unlogged_evidence(
        &self,
        before: i64,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let rows = sqlx::query(
                "SELECT e.id, e.letter_id FROM evidence e \
                 WHERE e.created_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM log_leaves l WHERE l.evidence_id = e.id) \
                 ORDER BY e.seq LIMIT $2",
            )
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("letter_id")?)))
                .collect()
        })
    }

    /// Stores an audit run.
    pub async fn insert_audit_run(&self, run: &AuditRunRow) -> Result<(), StorageError> {
        execute!(self.writer(), "INSERT INTO audit_runs (id, started_at, finished_at, mode, passed, failures, report, seal, timestamp_token) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", &run.id, run.started_at, run.finished_at, &run.mode, i32::from(run.passed), run.failures, &run.report, &run.seal, &run.timestamp_token).map(|_| ())
    }

    /// The latest audit run.
    pub async fn latest_audit_run(&self) -> Result<Option<AuditRunRow>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let row = sqlx::query(
                "SELECT id, started_at, finished_at, mode, passed, failures, report, seal, timestamp_token \
                 FROM audit_runs ORDER BY finished_at DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await?;
            row.map(|r| -> Result<AuditRunRow, StorageError> {
                let passed: i32 = r.try_get("passed")?;
                Ok(AuditRunRow {
                    id: r.try_get("id")?,
                    started_at: r.try_get("started_at")?,
                    finished_at: r.try_get("finished_at")?,
                    mode: r.try_get("mode")?,
                    passed: passed != 0,
                    failures: r.try_get("failures")?,
                    report: r.try_get("report")?,
                    seal: r.try_get("seal")?,
                    timestamp_token: r.try_get("timestamp_token")?,
                })
            })
            .transpose()
        })
    }
}

/// A stored audit run.
#[derive(Debug, Clone)]
pub struct AuditRunRow {
    /// Run id (UUID).
    pub id: String,
    /// Start, Unix µs.
    pub started_at: i64,
    /// End, Unix µs.
    pub finished_at: i64,
    /// `all` or `sample:N`.
    pub mode: String,
    /// No failure found.
    pub passed: bool,
    /// Number of failures.
    pub failures: i64,
    /// The canonical JSON report.
    pub report: Vec<u8>,
    /// CMS seal over `report`.
    pub seal: Vec<u8>,
    /// RFC 3161 token over SHA-256(`report`).
    pub timestamp_token: Vec<u8>,
}
