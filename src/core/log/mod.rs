//! The transparency log's formats and their verification (docs/LOG.md): every evidence
//! record's SHA-256 is a leaf of one append-only Merkle tree (RFC 9162), whose signed tree
//! heads let anyone holding an old head check that history was only ever extended — even
//! against someone with database access. [`merkle`] is the pure tree arithmetic; the
//! appender that issues the heads is [`crate::app::log`].

pub mod consistency;
pub mod merkle;

use base64::Engine;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::core::clock::{from_unix_micros, rfc3339_micros};
use crate::core::records::TreeHeadRow;
use crate::core::seal::ParsedSeal;
use crate::core::timestamp::ParsedToken;
use crate::core::trust::{CertificatePurpose, TrustAnchors, verify_certificate_path};
use merkle::Hash;

/// Version of the tree head format.
pub const TREE_HEAD_VERSION: u32 = 1;
/// How a leaf is made from an evidence record, written in every tree head.
pub const LEAF_RULE: &str =
    "leaf_hash = SHA-256(0x00 || SHA-256(evidence record bytes)) (RFC 9162 §2.1.1)";
/// Most leaves appended per transaction.
pub(crate) const APPEND_BATCH: i64 = 5_000;

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

    /// The published form of a head kept as three files, as a bundle's `log/` holds it: the
    /// head's bytes (`tree-head.json`), its seal (`.p7s`) and its token (`.tsr`). Nothing is
    /// checked here but that the head reads as one: [`PublishedTreeHead::verify`] checks it.
    pub fn from_parts(head: &[u8], seal: &[u8], token: &[u8]) -> Result<Self, String> {
        let parsed: TreeHead = serde_json::from_slice(head)
            .map_err(|e| format!("the head is not a tree head: {e}"))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(PublishedTreeHead {
            tree_size: parsed.tree_size,
            root_hash: parsed.root_hash,
            issued_at: parsed.issued_at,
            head: b64.encode(head),
            seal: b64.encode(seal),
            timestamp_token: b64.encode(token),
        })
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
        let canonical = crate::core::canonical::to_vec(&head).map_err(|e| e.to_string())?;
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
    seal.sealing_certificate(anchors, at)
        .map_err(|e| format!("seal certificate: {e}"))?;
    Ok(at)
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
