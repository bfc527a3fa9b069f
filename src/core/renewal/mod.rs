//! Archive timestamp renewal in the spirit of RFC 4998 (Evidence Record Syntax): keeping
//! proofs checkable for ten years although the certificates that signed them expire.
//!
//! An RFC 4998 ArchiveTimeStamp is a reduced hash tree plus a timestamp over its root. Here a
//! *renewal* is one Merkle tree over many evidence records and one RFC 3161 token whose
//! message imprint is the tree's root; each record covered gets a *renewal record* (canonical
//! JSON) holding its leaf input, the reduced hash-tree path from its leaf to the root, and the
//! root. This is RFC 4998 §5.2 *timestamp renewal*: the new tree covers the record's newest
//! token (the original token for the first renewal, the previous renewal's token after), so
//! a chain of tokens proves the record existed while each TSA certificate was still valid.
//! (Hash-tree renewal, RFC 4998 §5.3, for when SHA-256 weakens, is not implemented: it would
//! rehash the record and the whole chain under the new algorithm.)
//!
//! Tree (exactly; a third party can recompute it by hand):
//! - leaf hash `L = SHA-256(0x00 ‖ record_sha256 ‖ covered_token)`, where `record_sha256` is
//!   the 32 raw bytes of the record's SHA-256 and `covered_token` the DER bytes of the
//!   RFC 3161 TimeStampToken being renewed (the evidence `.tsr`, or the previous renewal
//!   `.tsr`);
//! - interior node `SHA-256(0x01 ‖ left ‖ right)`;
//! - levels are built pairwise from the leaves in order; an odd node at the end of a level is
//!   carried up unchanged. This is the same tree as RFC 9162 §2.1.1 (the transparency log's
//!   hashing), which the tests check;
//! - a path is the list of siblings from the leaf up, each with its side: `left` means
//!   `node = SHA-256(0x01 ‖ sibling ‖ node)`, `right` means `SHA-256(0x01 ‖ node ‖ sibling)`;
//!   the result after the last step is the root;
//! - the renewal token's messageImprint is SHA-256 with hashedMessage = root.
//!
//! This module is the pure core (tree, record format, verification rule); [`job`] runs
//! renewals against the database and the TSA.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::core::log::merkle::{Hash, node_hash};
use crate::core::timestamp::{HashAlgorithm, ParsedToken};
use crate::core::trust::{Certificate, CertificatePurpose, TrustAnchors, verify_certificate_path};

/// Version of the renewal record format.
pub const RENEWAL_VERSION: u32 = 1;
/// Name of the verification check about renewals, per evidence record.
pub const CHECK_NAME: &str = "timestamp_renewal";

/// `SHA-256(0x00 ‖ record_sha256 ‖ covered_token)`: the leaf of a record in a renewal tree.
pub fn leaf_hash(record_sha256: &[u8; 32], covered_token: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(record_sha256);
    h.update(covered_token);
    h.finalize().into()
}

/// Which side the sibling stands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// `node = SHA-256(0x01 ‖ sibling ‖ node)`.
    Left,
    /// `node = SHA-256(0x01 ‖ node ‖ sibling)`.
    Right,
}

/// One step of a reduced hash-tree path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStep {
    /// Side of the sibling.
    pub side: Side,
    /// Hex SHA-256 of the sibling.
    pub hash: String,
}

/// A renewal tree held whole in memory: every level, leaves first (2·n hashes).
#[derive(Debug, Clone)]
pub struct RenewalTree {
    levels: Vec<Vec<Hash>>,
}

impl RenewalTree {
    /// Builds the tree over `leaves` (leaf hashes, in order). `None` for no leaves.
    pub fn build(leaves: Vec<Hash>) -> Option<Self> {
        if leaves.is_empty() {
            return None;
        }
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let above: Vec<Hash> = below
                .chunks(2)
                .map(|pair| match pair {
                    [l, r] => node_hash(l, r),
                    // An odd node at the end of a level is carried up unchanged (chunks(2)
                    // never yields an empty slice).
                    _ => pair[0],
                })
                .collect();
            levels.push(above);
        }
        Some(RenewalTree { levels })
    }

    /// Number of leaves.
    pub fn size(&self) -> usize {
        self.levels[0].len()
    }

    /// The root.
    pub fn root(&self) -> Hash {
        // `build` refuses an empty tree and always ends on a level of one node.
        self.levels[self.levels.len() - 1][0]
    }

    /// The path of leaf `index` (`index < size`), leaf to root.
    pub fn path(&self, mut index: usize) -> Vec<PathStep> {
        let mut path = Vec::new();
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = index ^ 1;
            if sibling < level.len() {
                path.push(PathStep {
                    side: if index % 2 == 1 {
                        Side::Left
                    } else {
                        Side::Right
                    },
                    hash: hex::encode(level[sibling]),
                });
            }
            index /= 2;
        }
        path
    }
}

/// Follows `path` from `leaf`; the root it leads to, or why it cannot be followed.
pub fn root_from_path(leaf: &Hash, path: &[PathStep]) -> Result<Hash, String> {
    let mut node = *leaf;
    for (i, step) in path.iter().enumerate() {
        let sibling: Hash = hex::decode(&step.hash)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("path step {} is not a hex SHA-256", i + 1))?;
        node = match step.side {
            Side::Left => node_hash(&sibling, &node),
            Side::Right => node_hash(&node, &sibling),
        };
    }
    Ok(node)
}

/// The renewal record of one evidence record in one renewal (canonical JSON, RFC 8785).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewalRecord {
    /// Format version ([`RENEWAL_VERSION`]).
    pub version: u32,
    /// Service-wide number of the renewal (one tree, one token).
    pub renewal_id: u64,
    /// Position in this record's chain: 1 covers the original token, k+1 covers renewal k's.
    pub generation: u32,
    /// Why the renewal was made (scheduled, certificate expiry, key rotation, operator's).
    pub reason: String,
    /// The evidence record.
    pub evidence_id: String,
    /// Hex SHA-256 of the evidence record bytes.
    pub record_sha256: String,
    /// Hex SHA-256 of the DER token covered (the evidence `.tsr` or the previous renewal's).
    pub covered_token_sha256: String,
    /// Always `sha-256`.
    pub hash_algorithm: String,
    /// Hex `SHA-256(0x00 ‖ record_sha256 ‖ covered_token)`.
    pub leaf_hash: String,
    /// 0-based position of the leaf.
    pub leaf_index: u64,
    /// Number of leaves of the tree.
    pub tree_size: u64,
    /// Siblings from the leaf up.
    pub path: Vec<PathStep>,
    /// Hex root: the renewal token's hashedMessage.
    pub root: String,
}

impl RenewalRecord {
    /// The canonical bytes (RFC 8785) stored and put in bundles.
    pub fn to_canonical_bytes(&self) -> Result<Vec<u8>, String> {
        crate::core::canonical::to_vec(self).map_err(|e| e.to_string())
    }
}

/// One renewal of a record as a verifier gets it: its record bytes and token bytes.
#[derive(Debug, Clone, Copy)]
pub struct RenewalFiles<'a> {
    /// Canonical JSON of the [`RenewalRecord`].
    pub record: &'a [u8],
    /// DER RFC 3161 TimeStampToken over its root.
    pub token: &'a [u8],
}

/// The verification rule (docs/EVIDENCE.md, "Timestamp renewal"): a record's timestamp whose
/// TSA certificate has expired at `at` is accepted only if an unbroken chain of renewals
/// covers it — renewal 1 leads from `H(0x00 ‖ record digest ‖ original token)` to a root whose
/// token was issued while the original TSA certificate was valid, renewal k+1 covers renewal
/// k's token in the same way, and the last token's TSA certificate is valid at `at`. Every
/// renewal given is checked, needed or not. Returns what held, or the first break.
pub fn verify_chain(
    record_sha256: &[u8; 32],
    evidence_id: Option<&str>,
    original_token: &[u8],
    renewals: &[RenewalFiles<'_>],
    anchors: &TrustAnchors,
    at: OffsetDateTime,
) -> Result<String, String> {
    let original = ParsedToken::parse(original_token)
        .map_err(|e| format!("not checked: the original token cannot be read ({e})"))?;
    let (mut expiry, mut subject) = tsa_expiry(&original)
        .map_err(|e| format!("not checked: the original token's TSA certificate: {e}"))?;
    let mut previous_time = original.info().gen_time;
    let mut covered = original_token;
    for (i, renewal) in renewals.iter().enumerate() {
        let generation = i + 1;
        let name = format!("renewal {generation}");
        let root = check_record(
            &name,
            generation,
            renewal.record,
            record_sha256,
            evidence_id,
            covered,
        )?;
        let token = ParsedToken::parse(renewal.token)
            .map_err(|e| format!("{name}: the renewal token cannot be read: {e}"))?;
        let signer = token
            .verify_signature(&[])
            .map_err(|e| format!("{name}: renewal token signature: {e}"))?;
        if !matches!(token.info().hash_algorithm, HashAlgorithm::Sha256)
            || token.info().hashed_message != root
        {
            return Err(format!(
                "{name}: the renewal token's imprint is not the root {}",
                hex::encode(root)
            ));
        }
        let gen_time = token.info().gen_time;
        verify_certificate_path(
            &signer,
            token.certificates(),
            anchors,
            gen_time,
            CertificatePurpose::Timestamping,
        )
        .map_err(|e| format!("{name}: renewal TSA certificate: {e}"))?;
        if gen_time >= expiry {
            return Err(format!(
                "{name} was timestamped at {}, after the certificate of the TSA that signed the token it covers ({subject}) expired at {}",
                crate::core::clock::rfc3339_micros(gen_time),
                crate::core::clock::rfc3339_micros(expiry)
            ));
        }
        if gen_time < previous_time {
            return Err(format!(
                "{name} was timestamped at {}, before the token it covers ({})",
                crate::core::clock::rfc3339_micros(gen_time),
                crate::core::clock::rfc3339_micros(previous_time)
            ));
        }
        (expiry, subject) = tsa_expiry(&token).map_err(|e| format!("{name}: {e}"))?;
        previous_time = gen_time;
        covered = renewal.token;
    }
    if at > expiry {
        return Err(format!(
            "the certificate of the TSA that signed the newest token ({subject}) expired at {}, before the verification time {}, and no later renewal covers it",
            crate::core::clock::rfc3339_micros(expiry),
            crate::core::clock::rfc3339_micros(at)
        ));
    }
    Ok(match renewals.len() {
        0 => format!(
            "the TSA certificate is valid at the verification time {} (until {}): no renewal needed",
            crate::core::clock::rfc3339_micros(at),
            crate::core::clock::rfc3339_micros(expiry)
        ),
        n => format!(
            "{n} renewal(s) form an unbroken chain; the newest TSA certificate ({subject}) is valid at the verification time {} (until {})",
            crate::core::clock::rfc3339_micros(at),
            crate::core::clock::rfc3339_micros(expiry)
        ),
    })
}

/// The renewal record of generation `generation` (named `name` in errors): its version,
/// generation and algorithm, the record and token it covers, its leaf, and the path from that
/// leaf to the root it names. Returns the root.
fn check_record(
    name: &str,
    generation: usize,
    bytes: &[u8],
    record_sha256: &[u8; 32],
    evidence_id: Option<&str>,
    covered: &[u8],
) -> Result<Hash, String> {
    let record: RenewalRecord = serde_json::from_slice(bytes)
        .map_err(|e| format!("{name}: not a renewal record v{RENEWAL_VERSION}: {e}"))?;
    if record.version != RENEWAL_VERSION {
        return Err(format!(
            "{name}: unsupported renewal version {}",
            record.version
        ));
    }
    if record.generation as usize != generation {
        return Err(format!(
            "{name} says it is generation {}",
            record.generation
        ));
    }
    if record.hash_algorithm != "sha-256" {
        return Err(format!(
            "{name}: unsupported hash algorithm {:?}",
            record.hash_algorithm
        ));
    }
    if record.record_sha256 != hex::encode(record_sha256) {
        return Err(format!(
            "{name} is about record {}, not {}",
            record.record_sha256,
            hex::encode(record_sha256)
        ));
    }
    if let Some(id) = evidence_id
        && record.evidence_id != id
    {
        return Err(format!(
            "{name} is about evidence {}, not {id}",
            record.evidence_id
        ));
    }
    let covered_sha = hex::encode(Sha256::digest(covered));
    if record.covered_token_sha256 != covered_sha {
        return Err(format!(
            "{name} covers token {}, but the token it must renew is {covered_sha}",
            record.covered_token_sha256
        ));
    }
    let leaf = leaf_hash(record_sha256, covered);
    if record.leaf_hash != hex::encode(leaf) {
        return Err(format!(
            "{name}: leaf hash {} is not SHA-256(0x00 ‖ record digest ‖ covered token) = {}",
            record.leaf_hash,
            hex::encode(leaf)
        ));
    }
    let root = root_from_path(&leaf, &record.path).map_err(|e| format!("{name}: {e}"))?;
    if hex::encode(root) != record.root {
        return Err(format!(
            "{name}: the path leads to {}, not to the root {} the record names",
            hex::encode(root),
            record.root
        ));
    }
    Ok(root)
}

/// The notAfter and subject of the certificate that signed `token`.
fn tsa_expiry(token: &ParsedToken) -> Result<(OffsetDateTime, String), String> {
    let signer = token.verify_signature(&[]).map_err(|e| e.to_string())?;
    let cert = Certificate::parse(&signer).map_err(|e| e.to_string())?;
    Ok((cert.not_after, cert.subject_string()))
}

#[cfg(test)]
mod tests;
