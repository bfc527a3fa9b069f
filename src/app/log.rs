//! The transparency log service (docs/LOG.md): appends every evidence record to the one
//! Merkle tree, issues signed tree heads and answers proofs; the formats and their
//! verification are [`crate::core::log`].

use crate::core::clock::{Clock, from_unix_micros, rfc3339_micros, unix_micros};
use crate::core::evidence::EvidenceError;
use crate::core::log::merkle;
use crate::core::log::*;
use crate::infra::storage::log::{AppendOutcome, TreeHeadRow};
use crate::infra::storage::witnesses::WitnessTarget;
use crate::infra::storage::{Storage, StorageError};
use crate::infra::timestamping::TimestampingSealer;
use merkle::Hash;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Storage.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Sealing or timestamping a tree head.
    #[error("tree head sealing: {0}")]
    Seal(#[source] EvidenceError),
    /// A tree head has no canonical JSON form.
    #[error("tree head sealing: {0}")]
    Canonical(#[source] serde_json::Error),
    /// A request outside the log (size beyond the tree, unknown leaf).
    #[error("{0}")]
    OutOfRange(String),
}

/// The log service: appends evidence, issues signed tree heads, answers proofs.
#[derive(Clone)]
pub struct TransparencyLog {
    storage: Storage,
    sealer: Arc<TimestampingSealer>,
    clock: Arc<dyn Clock>,
    name: String,
    head_interval: time::Duration,
    head_every_leaves: u64,
    witnesses: Arc<Vec<WitnessTarget>>,
}

impl TransparencyLog {
    /// A log named after the provider.
    pub fn new(
        storage: Storage,
        sealer: Arc<TimestampingSealer>,
        clock: Arc<dyn Clock>,
        provider_name: &str,
        head_interval_seconds: u64,
        head_every_leaves: u64,
    ) -> Self {
        TransparencyLog {
            storage,
            sealer,
            clock,
            name: format!("{provider_name} evidence log"),
            head_interval: time::Duration::seconds(head_interval_seconds as i64),
            head_every_leaves,
            witnesses: Arc::new(Vec::new()),
        }
    }

    /// The same log, queueing each new tree head for `witnesses` in the transaction that
    /// stores it (issue 6 §2).
    pub fn with_witnesses(mut self, witnesses: Vec<WitnessTarget>) -> Self {
        self.witnesses = Arc::new(witnesses);
        self
    }

    /// Appends every evidence record not yet logged; returns how many.
    pub async fn append_pending(&self) -> Result<usize, LogError> {
        let mut total = 0;
        loop {
            let now = unix_micros(self.clock.now());
            let AppendOutcome { appended, .. } =
                self.storage.append_to_log(now, now, APPEND_BATCH).await?;
            total += appended;
            if (appended as i64) < APPEND_BATCH {
                return Ok(total);
            }
        }
    }

    /// Issues a tree head when the log grew and the interval passed or enough leaves came.
    pub async fn issue_head_if_due(&self) -> Result<Option<TreeHeadRow>, LogError> {
        let size = self.storage.log_size().await?;
        let latest = self.storage.latest_tree_head().await?;
        let now = self.clock.now();
        let due = match &latest {
            None => size > 0,
            Some(head) => {
                let grown = size.saturating_sub(head.tree_size.max(0) as u64);
                grown > 0
                    && (grown >= self.head_every_leaves
                        || now - from_unix_micros(head.issued_at) >= self.head_interval)
            }
        };
        if !due {
            return Ok(None);
        }
        self.issue_head().await.map(Some)
    }

    /// Appends what is pending and issues a tree head of the whole log now (or returns the
    /// one already issued for that size).
    pub async fn issue_head(&self) -> Result<TreeHeadRow, LogError> {
        self.append_pending().await?;
        let size = self.storage.log_size().await?;
        if let Some(existing) = self.storage.tree_head(size as i64).await? {
            return Ok(existing);
        }
        let root = self.root(size).await?;
        let now = self.clock.now();
        let head = TreeHead {
            version: TREE_HEAD_VERSION,
            log: self.name.clone(),
            hash_algorithm: "SHA-256".into(),
            leaf_rule: LEAF_RULE.into(),
            tree_size: size,
            root_hash: hex::encode(root),
            issued_at: rfc3339_micros(now),
        };
        let bytes = crate::core::canonical::to_vec(&head).map_err(LogError::Canonical)?;
        let seal = self
            .sealer
            .seal_bytes(&bytes, now)
            .map_err(LogError::Seal)?;
        let token = self
            .sealer
            .timestamp(Sha256::digest(&bytes).into())
            .await
            .map_err(|e| LogError::Seal(EvidenceError::Timestamp(e)))?;
        let row = TreeHeadRow {
            tree_size: size as i64,
            root_hash: head.root_hash,
            issued_at: unix_micros(now),
            head: bytes,
            seal,
            timestamp_token: token,
        };
        tracing::info!(log.size = size, log.root = %row.root_hash, "signed tree head issued");
        Ok(self
            .storage
            .insert_tree_head_for_witnesses(&row, &self.witnesses, unix_micros(now))
            .await?)
    }

    /// The log material of a bundle: the first signed tree head that covers every record of
    /// the letter (issued now if none does yet) and each record's inclusion proof against it.
    /// Taking the *first* covering head, not the latest, keeps bundles reproducible: the same
    /// letter state gives the same head, and a later head is linked to it by a consistency
    /// proof (`/v1/log/proofs/consistency`).
    pub async fn bundle_material(
        &self,
        evidence: &[crate::infra::storage::EvidenceRow],
    ) -> Result<Option<crate::core::bundle::BundleLog>, LogError> {
        if evidence.is_empty() {
            return Ok(None);
        }
        let mut leaves = Vec::with_capacity(evidence.len());
        for row in evidence {
            let leaf = match self.storage.log_leaf_of_evidence(&row.id).await? {
                Some(leaf) => leaf,
                None => {
                    self.append_pending().await?;
                    self.storage
                        .log_leaf_of_evidence(&row.id)
                        .await?
                        .ok_or_else(|| {
                            LogError::OutOfRange(format!(
                                "evidence {} is not in the transparency log yet",
                                row.id
                            ))
                        })?
                }
            };
            leaves.push(leaf);
        }
        let needed = leaves
            .iter()
            .map(|l| l.position.max(0) as u64 + 1)
            .max()
            .unwrap_or(0);
        let head = match self.storage.tree_head_covering(needed as i64).await? {
            Some(head) => head,
            None => self.issue_head().await?,
        };
        let size = head.tree_size.max(0) as u64;
        let mut inclusion = Vec::with_capacity(leaves.len());
        for leaf in &leaves {
            inclusion.push(
                self.inclusion_at(leaf.position.max(0) as u64, &leaf.record_sha256, size)
                    .await?,
            );
        }
        Ok(Some(crate::core::bundle::BundleLog {
            head: head.head,
            seal: head.seal,
            timestamp_token: head.timestamp_token,
            inclusion,
        }))
    }

    /// The root of the first `size` leaves.
    pub async fn root(&self, size: u64) -> Result<Hash, LogError> {
        let keys = merkle::needed_nodes(|node| merkle::root(size, node));
        let nodes = self.storage.log_nodes(&keys).await?;
        merkle::root(size, lookup(&nodes))
    }

    /// The inclusion proof of the record with SHA-256 `record_sha256` in the tree of `size`.
    pub async fn inclusion(
        &self,
        record_sha256: &str,
        size: u64,
    ) -> Result<InclusionProof, LogError> {
        let leaf = self
            .storage
            .log_leaf_by_digest(record_sha256)
            .await?
            .ok_or_else(|| {
                LogError::OutOfRange(format!("no evidence record {record_sha256} in the log yet"))
            })?;
        self.inclusion_at(leaf.position.max(0) as u64, &leaf.record_sha256, size)
            .await
    }

    /// The inclusion proof of leaf `index` in the tree of `size`.
    pub async fn inclusion_at(
        &self,
        index: u64,
        record_sha256: &str,
        size: u64,
    ) -> Result<InclusionProof, LogError> {
        let logged = self.storage.log_size().await?;
        if size > logged || index >= size {
            return Err(LogError::OutOfRange(format!(
                "leaf {index} is not in a tree of {size} leaves (the log has {logged})"
            )));
        }
        let keys = merkle::needed_nodes(|node| merkle::inclusion_proof(index, size, node));
        let nodes = self.storage.log_nodes(&keys).await?;
        let path = merkle::inclusion_proof(index, size, lookup(&nodes))?;
        Ok(InclusionProof {
            record_sha256: record_sha256.to_string(),
            leaf_index: index,
            tree_size: size,
            proof: path.iter().map(hex::encode).collect(),
        })
    }

    /// The consistency proof between trees of `from` and `to` leaves.
    pub async fn consistency(&self, from: u64, to: u64) -> Result<ConsistencyProof, LogError> {
        let logged = self.storage.log_size().await?;
        if from == 0 || from > to || to > logged {
            return Err(LogError::OutOfRange(format!(
                "need 0 < from ≤ to ≤ {logged} (the log's size); got from={from}, to={to}"
            )));
        }
        let keys = merkle::needed_nodes(|node| merkle::consistency_proof(from, to, node));
        let nodes = self.storage.log_nodes(&keys).await?;
        let path = merkle::consistency_proof(from, to, lookup(&nodes))?;
        Ok(ConsistencyProof {
            from,
            to,
            proof: path.iter().map(hex::encode).collect(),
        })
    }
}

fn lookup(
    nodes: &std::collections::HashMap<(u32, u64), Hash>,
) -> impl FnMut(u32, u64) -> Result<Hash, LogError> + '_ {
    |level, index| {
        nodes.get(&(level, index)).copied().ok_or_else(|| {
            LogError::Storage(StorageError::Corrupt(format!(
                "transparency log node ({level},{index}) is missing"
            )))
        })
    }
}
