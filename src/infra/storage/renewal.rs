//! Storage of archive timestamp renewals (RFC 4998 spirit, see `crate::core::renewal`): one row per
//! renewal (tree root and its token), one per record and generation (the canonical renewal
//! record). Insert-only (the migration's triggers refuse updates and deletes).

use sqlx::{QueryBuilder, Row};

use super::{Storage, StorageError};
pub use crate::core::records::RecordRenewal;

/// Renewal leaves written per transaction.
const LEAVES_PER_TRANSACTION: usize = 5_000;

/// A record due for renewal, with the token it must cover.
#[derive(Debug, Clone)]
pub struct RenewalCandidate {
    /// Evidence id.
    pub evidence_id: String,
    /// Its sequence number (the order of the leaves).
    pub seq: i64,
    /// Hex SHA-256 of the record.
    pub record_sha256: String,
    /// The generation the new renewal will be (1 for a record never renewed).
    pub next_generation: i32,
    /// The token to cover: the original one, or the newest renewal's.
    pub covered_token: Vec<u8>,
}

/// Which records a renewal covers.
#[derive(Debug, Clone)]
pub struct CandidateFilter<'a> {
    /// Every record, whatever its newest token.
    pub everything: bool,
    /// Records whose newest renewal token's TSA certificate ends at or before this (Unix µs).
    pub expiring_before: i64,
    /// Records whose newest renewal token was signed by another TSA certificate than this
    /// one (hex SHA-256); `None`: not a reason.
    pub current_tsa_sha256: Option<&'a str>,
}

/// One renewal as stored.
#[derive(Debug, Clone)]
pub struct RenewalRow {
    /// Service-wide number.
    pub id: i64,
    /// Why it was made.
    pub reason: String,
    /// When, Unix µs.
    pub created_at: i64,
    /// Leaves of its tree.
    pub tree_size: i64,
    /// Hex root.
    pub root_hash: String,
    /// RFC 3161 token over the root.
    pub timestamp_token: Vec<u8>,
    /// Hex SHA-256 of the TSA certificate that signed it.
    pub tsa_certificate_sha256: String,
    /// That certificate's notAfter, Unix µs.
    pub tsa_not_after: i64,
}

/// A new renewal leaf.
#[derive(Debug, Clone)]
pub struct NewRenewalLeaf {
    /// Evidence id.
    pub evidence_id: String,
    /// Generation.
    pub generation: i32,
    /// Leaf position.
    pub leaf_index: i64,
    /// Canonical JSON renewal record.
    pub record: Vec<u8>,
}

impl Storage {
    /// Up to `limit` records after sequence number `after_seq` that `filter` selects, in
    /// sequence order: records never renewed, and records whose newest renewal matches.
    pub async fn renewal_candidates(
        &self,
        after_seq: i64,
        limit: i64,
        filter: &CandidateFilter<'_>,
    ) -> Result<Vec<RenewalCandidate>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let rows = sqlx::query(
                "SELECT e.id, e.seq, e.record_sha256, e.timestamp_token AS original, \
                        l.generation, r.timestamp_token AS latest \
                 FROM evidence e \
                 LEFT JOIN renewal_leaves l ON l.evidence_id = e.id AND l.generation = \
                     (SELECT MAX(x.generation) FROM renewal_leaves x WHERE x.evidence_id = e.id) \
                 LEFT JOIN renewals r ON r.id = l.renewal_id \
                 WHERE e.seq > $1 AND (l.evidence_id IS NULL OR $2 = 1 OR r.tsa_not_after <= $3 \
                     OR ($4 <> '' AND r.tsa_certificate_sha256 <> $4)) \
                 ORDER BY e.seq LIMIT $5",
            )
            .bind(after_seq)
            .bind(i64::from(filter.everything))
            .bind(filter.expiring_before)
            .bind(filter.current_tsa_sha256.unwrap_or(""))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|r| {
                    let generation: Option<i32> = r.try_get("generation")?;
                    let latest: Option<Vec<u8>> = r.try_get("latest")?;
                    Ok(RenewalCandidate {
                        evidence_id: r.try_get("id")?,
                        seq: r.try_get("seq")?,
                        record_sha256: r.try_get("record_sha256")?,
                        next_generation: generation.unwrap_or(0) + 1,
                        covered_token: match latest {
                            Some(token) => token,
                            None => r.try_get("original")?,
                        },
                    })
                })
                .collect()
        })
    }

    /// Stores a renewal and its leaves: the renewal with the first [`LEAVES_PER_TRANSACTION`]
    /// leaves, then the rest in transactions of as many, so that SQLite's single writer is
    /// never held for long. Every leaf is complete on its own (its record names the root,
    /// whose token is in the renewal row): a crash midway leaves some records uncovered,
    /// and the next run covers them.
    pub async fn insert_renewal(
        &self,
        renewal: &RenewalRow,
        leaves: &[NewRenewalLeaf],
    ) -> Result<(), StorageError> {
        let mut chunks = leaves.chunks(LEAVES_PER_TRANSACTION);
        self.insert_renewal_leaves(Some(renewal), renewal.id, chunks.next().unwrap_or_default())
            .await?;
        for chunk in chunks {
            self.insert_renewal_leaves(None, renewal.id, chunk).await?;
        }
        Ok(())
    }

    async fn insert_renewal_leaves(
        &self,
        renewal: Option<&RenewalRow>,
        renewal_id: i64,
        leaves: &[NewRenewalLeaf],
    ) -> Result<(), StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            if let Some(renewal) = renewal {
                sqlx::query(
                    "INSERT INTO renewals (id, reason, created_at, tree_size, root_hash, \
                 timestamp_token, tsa_certificate_sha256, tsa_not_after) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(renewal.id)
                .bind(&renewal.reason)
                .bind(renewal.created_at)
                .bind(renewal.tree_size)
                .bind(&renewal.root_hash)
                .bind(&renewal.timestamp_token)
                .bind(&renewal.tsa_certificate_sha256)
                .bind(renewal.tsa_not_after)
                .execute(&mut *tx)
                .await
                .map_err(|e| StorageError::from_insert(e, "renewal"))?;
            }
            for chunk in leaves.chunks(super::INSERT_CHUNK) {
                let mut query = QueryBuilder::<Db>::new(
                    "INSERT INTO renewal_leaves (evidence_id, generation, renewal_id, leaf_index, record) ",
                );
                query.push_values(chunk, |mut b, leaf| {
                    b.push_bind(&leaf.evidence_id)
                        .push_bind(leaf.generation)
                        .push_bind(renewal_id)
                        .push_bind(leaf.leaf_index)
                        .push_bind(&leaf.record);
                });
                query
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| StorageError::from_insert(e, "renewal leaf"))?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The newest renewal, if any.
    pub async fn latest_renewal(&self) -> Result<Option<RenewalRow>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let row = sqlx::query(
                "SELECT id, reason, created_at, tree_size, root_hash, timestamp_token, \
                 tsa_certificate_sha256, tsa_not_after FROM renewals ORDER BY id DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await?;
            row.map(|r| {
                Ok(RenewalRow {
                    id: r.try_get("id")?,
                    reason: r.try_get("reason")?,
                    created_at: r.try_get("created_at")?,
                    tree_size: r.try_get("tree_size")?,
                    root_hash: r.try_get("root_hash")?,
                    timestamp_token: r.try_get("timestamp_token")?,
                    tsa_certificate_sha256: r.try_get("tsa_certificate_sha256")?,
                    tsa_not_after: r.try_get("tsa_not_after")?,
                })
            })
            .transpose()
        })
    }

    /// Every renewal of the records of a letter, by record then generation.
    pub async fn renewals_of_letter(
        &self,
        letter_id: &str,
    ) -> Result<Vec<RecordRenewal>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let rows = sqlx::query(
                "SELECT l.evidence_id, l.generation, l.record, r.timestamp_token \
                 FROM renewal_leaves l \
                 JOIN evidence e ON e.id = l.evidence_id \
                 JOIN renewals r ON r.id = l.renewal_id \
                 WHERE e.letter_id = $1 ORDER BY e.seq, l.generation",
            )
            .bind(letter_id)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|r| {
                    Ok(RecordRenewal {
                        evidence_id: r.try_get("evidence_id")?,
                        generation: r.try_get("generation")?,
                        record: r.try_get("record")?,
                        timestamp_token: r.try_get("timestamp_token")?,
                    })
                })
                .collect()
        })
    }
}
