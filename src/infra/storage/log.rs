//! Storage of the transparency log: leaves in log order, the tree's perfect subtrees, and
//! signed tree heads. Insert-only (the migration's triggers refuse updates and deletes).
//!
//! One appender at a time: SQLite serialises writers on its single write connection;
//! PostgreSQL takes a transaction-scoped advisory lock. Evidence rows are picked up in
//! sequence order — but PostgreSQL hands out sequence numbers at insert, not at commit, so a
//! row may become visible after a later one: the appender looks again at a tail below the
//! highest logged sequence number and logs late rows when they appear. The log position, not
//! the sequence number, is the log's order.

use sqlx::{QueryBuilder, Row};

use super::{Storage, StorageError};
use crate::core::log::merkle::{self, Frontier, Hash, Node};
pub use crate::core::records::TreeHeadRow;

/// Advisory lock key of the PostgreSQL appender ("RLOG").
const APPENDER_LOCK: i64 = 0x524c_4f47;
/// How far below the highest logged sequence number a late-committing PostgreSQL row is
/// looked for: more rows than a burst of concurrent bulk deposits inserts while one commits.
const LATE_TAIL: i64 = 100_000;

/// An evidence record waiting to be logged.
#[derive(Debug, Clone)]
pub struct PendingLeaf {
    /// Evidence id.
    pub evidence_id: String,
    /// Its sequence number.
    pub seq: i64,
    /// Hex SHA-256 of the record (the leaf data).
    pub record_sha256: String,
}

/// A leaf of the log.
#[derive(Debug, Clone)]
pub struct LeafRow {
    /// 0-based position in the log.
    pub position: i64,
    /// Evidence id.
    pub evidence_id: String,
    /// Hex SHA-256 of the record.
    pub record_sha256: String,
}

/// What one append round did.
#[derive(Debug, Clone, Default)]
pub struct AppendOutcome {
    /// Leaves appended.
    pub appended: usize,
    /// Tree size after the round.
    pub size: u64,
    /// Root after the round.
    pub root: Option<Hash>,
}

fn decode_hash(bytes: Vec<u8>) -> Result<Hash, StorageError> {
    bytes
        .try_into()
        .map_err(|_| StorageError::Corrupt("a transparency-log node is not 32 bytes".into()))
}

fn hex_hash(text: &str) -> Result<[u8; 32], StorageError> {
    hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StorageError::Corrupt(format!("bad SHA-256 in the log: {text}")))
}

impl Storage {
    /// Appends up to `limit` evidence records not yet in the log, in sequence order, that were
    /// created at or before `settled_before` (Unix µs); returns what it did.
    pub async fn append_to_log(
        &self,
        now: i64,
        settled_before: i64,
        limit: i64,
    ) -> Result<AppendOutcome, StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            if let Some(lock) = <Db as super::dialect::Dialect>::APPENDER_LOCK {
                sqlx::query(lock)
                    .bind(APPENDER_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            let size: i64 =
                sqlx::query("SELECT COALESCE(MAX(position) + 1, 0) AS size FROM log_leaves")
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("size")?;
            let logged_max: i64 =
                sqlx::query("SELECT COALESCE(MAX(evidence_seq), 0) AS s FROM log_leaves")
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("s")?;
            // SQLite commits in sequence order (one writer), so everything up to the highest
            // logged sequence number is logged. On PostgreSQL a transaction that inserted
            // earlier may commit later: rows up to LATE_TAIL sequence numbers below the
            // highest logged one are looked at again (an indexed anti-join over the tail,
            // never the whole table).
            let scan_from = if <Db as super::dialect::Dialect>::COMMITS_IN_SEQUENCE {
                logged_max
            } else {
                (logged_max - LATE_TAIL).max(0)
            };
            let rows = sqlx::query(
                "SELECT e.id, e.seq, e.record_sha256 FROM evidence e \
                 WHERE e.seq > $1 AND e.created_at <= $2 \
                 AND NOT EXISTS (SELECT 1 FROM log_leaves l WHERE l.evidence_id = e.id) \
                 ORDER BY e.seq LIMIT $3",
            )
            .bind(scan_from)
            .bind(settled_before)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            let pending = rows
                .into_iter()
                .map(|r| -> Result<PendingLeaf, StorageError> {
                    Ok(PendingLeaf {
                        evidence_id: r.try_get("id")?,
                        seq: r.try_get("seq")?,
                        record_sha256: r.try_get("record_sha256")?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;

            // The right edge of the stored tree: at most 64 point reads.
            let peak_keys = merkle::peak_keys(size as u64);
            let mut peaks = std::collections::HashMap::new();
            if !peak_keys.is_empty() {
                let mut query =
                    QueryBuilder::<Db>::new("SELECT level, idx, hash FROM log_nodes WHERE ");
                let mut first = true;
                for (level, index) in &peak_keys {
                    if !first {
                        query.push(" OR ");
                    }
                    first = false;
                    query
                        .push("(level = ")
                        .push_bind(*level as i32)
                        .push(" AND idx = ")
                        .push_bind(*index as i64)
                        .push(")");
                }
                for row in query.build().fetch_all(&mut *tx).await? {
                    let level: i32 = row.try_get("level")?;
                    let index: i64 = row.try_get("idx")?;
                    peaks.insert(
                        (level as u32, index as u64),
                        decode_hash(row.try_get("hash")?)?,
                    );
                }
            }
            let mut frontier = Frontier::load(size as u64, |level, index| {
                peaks.get(&(level, index)).copied().ok_or_else(|| {
                    StorageError::Corrupt(format!(
                        "transparency log node ({level},{index}) is missing for size {size}"
                    ))
                })
            })?;
            let mut nodes: Vec<Node> = Vec::new();
            let mut leaves: Vec<(i64, &PendingLeaf)> = Vec::new();
            for leaf in &pending {
                let position = frontier.size() as i64;
                nodes.extend(frontier.append(merkle::leaf_hash(&hex_hash(&leaf.record_sha256)?)));
                leaves.push((position, leaf));
            }
            for chunk in leaves.chunks(super::INSERT_CHUNK) {
                let mut query = QueryBuilder::<Db>::new(
                    "INSERT INTO log_leaves (position, evidence_id, evidence_seq, record_sha256, appended_at) ",
                );
                query.push_values(chunk, |mut b, (position, leaf)| {
                    b.push_bind(*position)
                        .push_bind(&leaf.evidence_id)
                        .push_bind(leaf.seq)
                        .push_bind(&leaf.record_sha256)
                        .push_bind(now);
                });
                query.build().execute(&mut *tx).await?;
            }
            for chunk in nodes.chunks(super::INSERT_CHUNK) {
                let mut query =
                    QueryBuilder::<Db>::new("INSERT INTO log_nodes (level, idx, hash) ");
                query.push_values(chunk, |mut b, (level, index, hash)| {
                    b.push_bind(*level as i32)
                        .push_bind(*index as i64)
                        .push_bind(hash.to_vec());
                });
                query.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(AppendOutcome {
                appended: pending.len(),
                size: frontier.size(),
                root: (frontier.size() > 0).then(|| frontier.root()),
            })
        })
    }

    /// Number of leaves in the log.
    pub async fn log_size(&self) -> Result<u64, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let size: i64 =
                sqlx::query("SELECT COALESCE(MAX(position) + 1, 0) AS size FROM log_leaves")
                    .fetch_one(pool)
                    .await?
                    .try_get("size")?;
            Ok(size as u64)
        })
    }

    /// The stored perfect subtrees with these keys.
    pub async fn log_nodes(
        &self,
        keys: &[(u32, u64)],
    ) -> Result<std::collections::HashMap<(u32, u64), Hash>, StorageError> {
        let mut out = std::collections::HashMap::new();
        for chunk in keys.chunks(200) {
            dispatch!(self.reader(), |pool, Db| {
                let mut query =
                    QueryBuilder::<Db>::new("SELECT level, idx, hash FROM log_nodes WHERE ");
                for (i, (level, index)) in chunk.iter().enumerate() {
                    if i > 0 {
                        query.push(" OR ");
                    }
                    query
                        .push("(level = ")
                        .push_bind(*level as i32)
                        .push(" AND idx = ")
                        .push_bind(*index as i64)
                        .push(")");
                }
                for row in query.build().fetch_all(pool).await? {
                    let level: i32 = row.try_get("level")?;
                    let index: i64 = row.try_get("idx")?;
                    out.insert(
                        (level as u32, index as u64),
                        decode_hash(row.try_get("hash")?)?,
                    );
                }
                Ok::<(), StorageError>(())
            })?;
        }
        Ok(out)
    }

    /// The log leaf of an evidence record, if it has been logged.
    pub async fn log_leaf_of_evidence(
        &self,
        evidence_id: &str,
    ) -> Result<Option<LeafRow>, StorageError> {
        self.leaf_where(
            "SELECT position, evidence_id, record_sha256 FROM log_leaves WHERE evidence_id = $1",
            evidence_id,
        )
        .await
    }

    /// The log leaves whose record SHA-256 is `record_sha256` (normally one).
    pub async fn log_leaf_by_digest(
        &self,
        record_sha256: &str,
    ) -> Result<Option<LeafRow>, StorageError> {
        self.leaf_where(
            "SELECT l.position, l.evidence_id, l.record_sha256 FROM log_leaves l \
             JOIN evidence e ON e.id = l.evidence_id WHERE e.record_sha256 = $1 \
             ORDER BY l.position LIMIT 1",
            record_sha256,
        )
        .await
    }

    async fn leaf_where(
        &self,
        sql: &'static str,
        value: &str,
    ) -> Result<Option<LeafRow>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let row = sqlx::query(sql).bind(value).fetch_optional(pool).await?;
            row.map(|r| -> Result<LeafRow, StorageError> {
                Ok(LeafRow {
                    position: r.try_get("position")?,
                    evidence_id: r.try_get("evidence_id")?,
                    record_sha256: r.try_get("record_sha256")?,
                })
            })
            .transpose()
        })
    }

    /// Stores a tree head (a head for the same size already stored wins; it is returned),
    /// queueing it for no witness.
    pub async fn insert_tree_head(&self, head: &TreeHeadRow) -> Result<TreeHeadRow, StorageError> {
        self.insert_tree_head_for_witnesses(head, &[], head.issued_at)
            .await
    }

    /// The tree head of exactly `size` leaves.
    pub async fn tree_head(&self, size: i64) -> Result<Option<TreeHeadRow>, StorageError> {
        self.tree_head_where("WHERE tree_size = $1", size).await
    }

    /// The latest tree head.
    pub async fn latest_tree_head(&self) -> Result<Option<TreeHeadRow>, StorageError> {
        self.tree_head_where("WHERE tree_size >= $1 ORDER BY tree_size DESC", 0)
            .await
    }

    /// The first tree head covering at least `size` leaves.
    pub async fn tree_head_covering(&self, size: i64) -> Result<Option<TreeHeadRow>, StorageError> {
        self.tree_head_where("WHERE tree_size >= $1 ORDER BY tree_size ASC", size)
            .await
    }

    /// Every tree head, by size.
    pub async fn tree_heads(&self) -> Result<Vec<TreeHeadRow>, StorageError> {
        self.tree_heads_where("WHERE tree_size >= $1 ORDER BY tree_size", 0)
            .await
    }

    async fn tree_head_where(
        &self,
        clause: &str,
        value: i64,
    ) -> Result<Option<TreeHeadRow>, StorageError> {
        Ok(self
            .tree_heads_where(&format!("{clause} LIMIT 1"), value)
            .await?
            .into_iter()
            .next())
    }

    async fn tree_heads_where(
        &self,
        clause: &str,
        value: i64,
    ) -> Result<Vec<TreeHeadRow>, StorageError> {
        let sql = format!(
            "SELECT tree_size, root_hash, issued_at, head, seal, timestamp_token FROM tree_heads {clause}"
        );
        dispatch!(self.reader(), |pool, Db| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(value)
                .fetch_all(pool)
                .await?;
            rows.into_iter()
                .map(|r| {
                    Ok(TreeHeadRow {
                        tree_size: r.try_get("tree_size")?,
                        root_hash: r.try_get("root_hash")?,
                        issued_at: r.try_get("issued_at")?,
                        head: r.try_get("head")?,
                        seal: r.try_get("seal")?,
                        timestamp_token: r.try_get("timestamp_token")?,
                    })
                })
                .collect()
        })
    }
}
