//! Running renewals: picks the records to cover, builds the tree, timestamps its root with the
//! service's TSA (embedded or remote), stores the renewal and one renewal record per leaf.
//! Called by the scheduled worker, by `recommande archive renew` and after `pki rotate`.

use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::core::clock::{Clock, rfc3339_micros, unix_micros};
use crate::core::pki::TrustMaterial;
use crate::core::renewal::{RENEWAL_VERSION, RenewalRecord, RenewalTree, leaf_hash};
use crate::core::timestamp::{ParsedToken, TimestampError};
use crate::core::trust::Certificate;
use crate::infra::storage::renewal::{
    CandidateFilter, NewRenewalLeaf, RenewalCandidate, RenewalRow,
};
use crate::infra::storage::{Storage, StorageError};
use crate::infra::timestamping::TimestampingSealer;

/// Candidates read per query.
const PAGE: i64 = 5_000;
/// Counter of renewal numbers.
const RENEWAL_COUNTER: &str = "renewal_id";

/// What a renewal works with: the service's parts (`From<&Service>` in
/// `crate::app::service`), or any other set of them.
#[derive(Clone, Copy)]
pub struct Renewer<'a> {
    /// Where the records and renewals are.
    pub storage: &'a Storage,
    /// The sealer whose timestamper makes the renewal token.
    pub sealer: &'a TimestampingSealer,
    /// The current certificates (the embedded TSA's and the seal's).
    pub trust: &'a TrustMaterial,
    /// The time source.
    pub clock: &'a dyn Clock,
    /// `[renewal] margin_days`: tokens ending within it are renewed.
    pub margin_days: u32,
}

/// Why a renewal could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RenewalError {
    /// Database.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The TSA refused or failed.
    #[error("timestamping the renewal root: {0}")]
    Timestamp(#[from] TimestampError),
    /// A stored value that cannot be what it should.
    #[error("{0}")]
    Corrupt(String),
}

/// Which records to cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Records never renewed, and records whose newest token's TSA certificate ends within
    /// the margin or is not the current one.
    Due,
    /// Every record (a new generation for all, e.g. after a key rotation).
    Everything,
}

/// What a renewal run did.
#[derive(Debug, Clone, Serialize)]
pub struct RenewalOutcome {
    /// The renewal's number, when one was made.
    pub renewal_id: Option<i64>,
    /// Records covered.
    pub records: usize,
    /// Hex root of the tree.
    pub root: Option<String>,
    /// Time of the renewal token (RFC 3339).
    pub timestamp_time: Option<String>,
    /// Seconds the run took.
    pub seconds: f64,
}

/// Makes one renewal over the records `scope` selects; nothing when none is due.
pub async fn renew<'a>(
    parts: impl Into<Renewer<'a>>,
    reason: &str,
    scope: Scope,
) -> Result<RenewalOutcome, RenewalError> {
    let parts: Renewer<'a> = parts.into();
    let started = Instant::now();
    let now = parts.clock.now();
    let margin = time::Duration::days(i64::from(parts.margin_days));
    let current_tsa = parts
        .trust
        .tsa
        .as_ref()
        .filter(|_| parts.sealer.timestamper().embedded().is_some())
        .map(|identity| hex::encode(identity.certificate_sha256()));
    let filter = CandidateFilter {
        everything: scope == Scope::Everything,
        expiring_before: unix_micros(now + margin),
        current_tsa_sha256: current_tsa.as_deref(),
    };

    let leaves = collect_leaves(&parts, &filter).await?;
    let Some(tree) = RenewalTree::build(leaves.iter().map(|l| l.hash).collect()) else {
        return Ok(RenewalOutcome {
            renewal_id: None,
            records: 0,
            root: None,
            timestamp_time: None,
            seconds: started.elapsed().as_secs_f64(),
        });
    };
    let root = tree.root();
    let token = parts.sealer.timestamp(root).await?;
    let parsed = ParsedToken::parse(&token)?;
    let signer = parsed.verify_signature(&[])?;
    let tsa_cert = Certificate::parse(&signer)
        .map_err(|e| RenewalError::Corrupt(format!("the renewal token's TSA certificate: {e}")))?;
    let id = parts.storage.next_counter(RENEWAL_COUNTER).await?;
    let rows = leaf_rows(&leaves, &tree, id, reason)?;
    parts
        .storage
        .insert_renewal(
            &RenewalRow {
                id,
                reason: reason.to_string(),
                created_at: unix_micros(now),
                tree_size: tree.size() as i64,
                root_hash: hex::encode(root),
                timestamp_token: token,
                tsa_certificate_sha256: hex::encode(Sha256::digest(&signer)),
                tsa_not_after: unix_micros(tsa_cert.not_after),
            },
            &rows,
        )
        .await?;
    let outcome = RenewalOutcome {
        renewal_id: Some(id),
        records: rows.len(),
        root: Some(hex::encode(root)),
        timestamp_time: Some(rfc3339_micros(parsed.info().gen_time)),
        seconds: started.elapsed().as_secs_f64(),
    };
    tracing::info!(
        renewal.id = id,
        renewal.records = outcome.records,
        renewal.reason = reason,
        renewal.root = %hex::encode(root),
        "archive timestamp renewal"
    );
    Ok(outcome)
}

/// One leaf of a renewal tree, in sequence order; only digests are kept, tokens are dropped
/// once hashed.
struct Leaf {
    evidence_id: String,
    generation: i32,
    record_sha256: String,
    covered_token_sha256: String,
    hash: [u8; 32],
}

/// The leaves of every record the filter selects, read page by page.
async fn collect_leaves(
    parts: &Renewer<'_>,
    filter: &CandidateFilter<'_>,
) -> Result<Vec<Leaf>, RenewalError> {
    let mut leaves: Vec<Leaf> = Vec::new();
    let mut after = 0i64;
    loop {
        let page = parts
            .storage
            .renewal_candidates(after, PAGE, filter)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        let full = page.len() as i64 == PAGE;
        for RenewalCandidate {
            evidence_id,
            record_sha256,
            next_generation,
            covered_token,
            ..
        } in page
        {
            let digest: [u8; 32] = hex::decode(&record_sha256)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    RenewalError::Corrupt(format!(
                        "evidence {evidence_id} has a malformed SHA-256 {record_sha256}"
                    ))
                })?;
            leaves.push(Leaf {
                hash: leaf_hash(&digest, &covered_token),
                covered_token_sha256: hex::encode(Sha256::digest(&covered_token)),
                evidence_id,
                generation: next_generation,
                record_sha256,
            });
        }
        if !full {
            break;
        }
    }
    Ok(leaves)
}

/// The stored leaves of renewal `id`: each leaf's renewal record, with its path in `tree`.
fn leaf_rows(
    leaves: &[Leaf],
    tree: &RenewalTree,
    id: i64,
    reason: &str,
) -> Result<Vec<NewRenewalLeaf>, RenewalError> {
    let root = tree.root();
    let mut rows = Vec::with_capacity(leaves.len());
    for (index, leaf) in leaves.iter().enumerate() {
        let record = RenewalRecord {
            version: RENEWAL_VERSION,
            renewal_id: id as u64,
            generation: leaf.generation as u32,
            reason: reason.to_string(),
            evidence_id: leaf.evidence_id.clone(),
            record_sha256: leaf.record_sha256.clone(),
            covered_token_sha256: leaf.covered_token_sha256.clone(),
            hash_algorithm: "sha-256".into(),
            leaf_hash: hex::encode(leaf.hash),
            leaf_index: index as u64,
            tree_size: tree.size() as u64,
            path: tree.path(index),
            root: hex::encode(root),
        };
        rows.push(NewRenewalLeaf {
            evidence_id: leaf.evidence_id.clone(),
            generation: leaf.generation,
            leaf_index: index as i64,
            record: record.to_canonical_bytes().map_err(RenewalError::Corrupt)?,
        });
    }
    Ok(rows)
}

/// The scheduled step: warns when the current TSA certificate itself ends within the margin
/// (renewing with it would not help: the keys must be rotated), then renews what is due.
pub async fn scheduled<'a>(parts: impl Into<Renewer<'a>>) -> Result<RenewalOutcome, RenewalError> {
    let parts: Renewer<'a> = parts.into();
    let now = parts.clock.now();
    let margin = time::Duration::days(i64::from(parts.margin_days));
    for (role, identity) in [
        ("TSA", parts.trust.tsa.as_ref()),
        ("seal", Some(&parts.trust.seal)),
    ] {
        let Some(identity) = identity else { continue };
        if let Ok(cert) = Certificate::parse(identity.certificate_der())
            && cert.not_after <= now + margin
        {
            tracing::error!(
                certificate.role = role,
                certificate.not_after = %rfc3339_micros(cert.not_after),
                "the current certificate ends within the renewal margin: rotate the keys (`recommande pki rotate` or new [pki] files) so renewals are made by a certificate that outlives it"
            );
        }
    }
    renew(parts, "scheduled", Scope::Due).await
}
