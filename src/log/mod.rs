//! The service-wide transparency log (docs/LOG.md): every evidence record's SHA-256 is a
//! leaf of one append-only Merkle tree (RFC 9162), whose signed tree heads let anyone holding
//! an old head check that history was only ever extended — even against someone with
//! database access. [`merkle`] is the pure tree arithmetic.

pub mod merkle;

use std::sync::Arc;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::clock::{Clock, from_unix_micros, rfc3339_micros, unix_micros};
use crate::evidence::EvidenceSealer;
use crate::seal::ParsedSeal;
use crate::storage::log::{AppendOutcome, TreeHeadRow};
use crate::storage::witnesses::WitnessTarget;
use crate::storage::{Storage, StorageError};
use crate::timestamp::ParsedToken;
use crate::trust::{CertificatePurpose, TrustAnchors, verify_certificate_path};
use merkle::Hash;

/// Version of the tree head format.
pub const TREE_HEAD_VERSION: u32 = 1;
/// How a leaf is made from an evidence record, written in every tree head.
pub const LEAF_RULE: &str =
    "leaf_hash = SHA-256(0x00 || SHA-256(evidence record bytes)) (RFC 9162 §2.1.1)";
/// Most leaves appended per transaction.
const APPEND_BATCH: i64 = 5_000;

/// A tree head: what is sealed and timestamped (canonical JSON, RFC 8785).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeHead {
    /// Format version (1).
    pub version: u32,
    /// The log's name (the provider's evidence log).
    pub log: String,
    /// Hash function of the tree.
    pub hash_algorithm: String,
    /// How leaves are made.
    pub leaf_rule: String,
    /// Number of leaves.
    pub tree_size: u64,
    /// Hex root hash.
    pub root_hash: String,
    /// When it was issued (RFC 3339 UTC); the token's time is the proven one.
    pub issued_at: String,
}

/// A signed tree head as published: the head's exact bytes, its seal and its token, in
/// base64, with the head's fields repeated for reading. This JSON is what witnesses keep and
/// what `recommande log verify-consistency` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublishedTreeHead {
    /// Number of leaves.
    pub tree_size: u64,
    /// Hex root hash.
    pub root_hash: String,
    /// Issue time (RFC 3339 UTC).
    pub issued_at: String,
    /// Base64 of the canonical JSON head (sealed and timestamped).
    pub head: String,
    /// Base64 of the CMS detached seal over `head`.
    pub seal: String,
    /// Base64 of the RFC 3161 token over SHA-256(`head`).
    pub timestamp_token: String,
}

impl PublishedTreeHead {
    /// The published form of a stored head.
    pub fn from_row(row: &TreeHeadRow) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        PublishedTreeHead {
            tree_size: row.tree_size.max(0) as u64,
            root_hash: row.root_hash.clone(),
            issued_at: rfc3339_micros(from_unix_micros(row.issued_at)),
            head: b64.encode(&row.head),
            seal: b64.encode(&row.seal),
            timestamp_token: b64.encode(&row.timestamp_token),
        }
    }

    /// Verifies the seal and timestamp of the head against `anchors` and checks that the
    /// repeated fields match the sealed bytes; returns the head and the token's time.
    pub fn verify(&self, anchors: &TrustAnchors) -> Result<(TreeHead, OffsetDateTime), String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let decode = |name: &str, v: &str| {
            b64.decode(v)
                .map_err(|e| format!("{name} is not base64: {e}"))
        };
        let bytes = decode("head", &self.head)?;
        let seal = decode("seal", &self.seal)?;
        let token = decode("timestamp_token", &self.timestamp_token)?;
        let at = verify_sealed(&bytes, &seal, &token, anchors)?;
        let head: TreeHead = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the sealed head is not a tree head: {e}"))?;
        let canonical = crate::canonical::to_vec(&head).map_err(|e| e.to_string())?;
        if canonical != bytes {
            return Err("the sealed head is not in canonical form (RFC 8785)".into());
        }
        if head.version != TREE_HEAD_VERSION {
            return Err(format!(
                "tree head version {} is not supported",
                head.version
            ));
        }
        if head.tree_size != self.tree_size || head.root_hash != self.root_hash {
            return Err("the size or root shown differs from the sealed head".into());
        }
        root_of(&head)?;
        Ok((head, at))
    }
}

/// The root hash of a head, decoded.
pub fn root_of(head: &TreeHead) -> Result<Hash, String> {
    hex::decode(&head.root_hash)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("root hash {:?} is not 32 bytes of hex", head.root_hash))
}

/// Checks a detached CMS seal and an RFC 3161 token over `bytes`, each certificate at the
/// token's time; returns that time.
pub fn verify_sealed(
    bytes: &[u8],
    seal: &[u8],
    token: &[u8],
    anchors: &TrustAnchors,
) -> Result<OffsetDateTime, String> {
    let token = ParsedToken::parse(token).map_err(|e| format!("timestamp: {e}"))?;
    let tsa = token
        .verify_signature(&[])
        .map_err(|e| format!("timestamp signature: {e}"))?;
    token
        .check_imprint(bytes)
        .map_err(|e| format!("timestamp imprint: {e}"))?;
    let at = token.info().gen_time;
    verify_certificate_path(
        &tsa,
        token.certificates(),
        anchors,
        at,
        CertificatePurpose::Timestamping,
    )
    .map_err(|e| format!("TSA certificate: {e}"))?;
    let seal = ParsedSeal::parse(seal).map_err(|e| format!("seal: {e}"))?;
    seal.verify_signature(bytes)
        .map_err(|e| format!("seal signature: {e}"))?;
    let cert = seal
        .signer_certificate()
        .map_err(|e| format!("seal certificate: {e}"))?;
    verify_certificate_path(
        cert,
        seal.certificates(),
        anchors,
        at,
        CertificatePurpose::Seal,
    )
    .map_err(|e| format!("seal certificate: {e}"))?;
    Ok(at)
}

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Storage.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Sealing or timestamping a tree head.
    #[error("tree head sealing: {0}")]
    Seal(String),
    /// A request outside the log (size beyond the tree, unknown leaf).
    #[error("{0}")]
    OutOfRange(String),
}

/// An inclusion proof as served and as put in bundles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InclusionProof {
    /// Hex SHA-256 of the evidence record (the leaf data).
    pub record_sha256: String,
    /// 0-based position of the leaf.
    pub leaf_index: u64,
    /// Size of the tree the proof is against.
    pub tree_size: u64,
    /// Audit path, hex, leaf to root (RFC 9162 §2.1.3).
    pub proof: Vec<String>,
}

impl InclusionProof {
    /// Checks the proof against a root.
    pub fn verify(&self, root: &Hash) -> bool {
        let Ok(data) = hex::decode(&self.record_sha256) else {
            return false;
        };
        let Some(path) = decode_path(&self.proof) else {
            return false;
        };
        merkle::verify_inclusion(
            &merkle::leaf_hash(&data),
            self.leaf_index,
            self.tree_size,
            &path,
            root,
        )
    }
}

/// A consistency proof as served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsistencyProof {
    /// Size of the older tree.
    pub from: u64,
    /// Size of the newer tree.
    pub to: u64,
    /// Hex nodes (RFC 9162 §2.1.4).
    pub proof: Vec<String>,
}

impl ConsistencyProof {
    /// Checks the proof between two roots.
    pub fn verify(&self, from_root: &Hash, to_root: &Hash) -> bool {
        decode_path(&self.proof).is_some_and(|path| {
            merkle::verify_consistency(self.from, self.to, from_root, to_root, &path)
        })
    }
}

fn decode_path(hexes: &[String]) -> Option<Vec<Hash>> {
    hexes
        .iter()
        .map(|h| hex::decode(h).ok().and_then(|b| b.try_into().ok()))
        .collect()
}

/// The log service: appends evidence, issues signed tree heads, answers proofs.
#[derive(Clone)]
pub struct TransparencyLog {
    storage: Storage,
    sealer: Arc<EvidenceSealer>,
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
        sealer: Arc<EvidenceSealer>,
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
        let bytes = crate::canonical::to_vec(&head).map_err(|e| LogError::Seal(e.to_string()))?;
        let seal = self
            .sealer
            .seal_bytes(&bytes, now)
            .map_err(|e| LogError::Seal(e.to_string()))?;
        let token = self
            .sealer
            .timestamper()
            .timestamp(Sha256::digest(&bytes).into())
            .await
            .map_err(|e| LogError::Seal(e.to_string()))?;
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
        evidence: &[crate::storage::EvidenceRow],
    ) -> Result<Option<crate::bundle::BundleLog>, LogError> {
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
        Ok(Some(crate::bundle::BundleLog {
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
