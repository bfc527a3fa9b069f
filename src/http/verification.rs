//! Public verification of a letter's evidence (docs/API.md, public verification): `GET /v1/verify/{letter_id}?code=…`,
//! and the same answer shown as a page by `/verify?letter=…&code=…` ([`super::pages`]).
//!
//! Anyone holding a proof — a judge, a bailiff, the debtor — reads the verification code
//! printed on it and checks, without an account, that the service holds that letter's
//! evidence and that every record's seal and timestamp still verify against the service's
//! trust anchors. The answer holds only what the proofs themselves print: ids, events, times,
//! digests and verdicts; never a document, a name, an email or a postal address.
//!
//! An unknown letter and a wrong code get the same 404, so the route cannot be used to learn
//! which letter ids exist.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::json_ok;
use super::problem::Problem;
use crate::app::service::Service;
use crate::core::bundle::verify::{check_legal, check_order};
use crate::core::clock::{rfc3339_micros, rfc3339_paris};
use crate::core::evidence::EvidenceRecord;
use crate::core::verify::{ChainExpectation, verify_evidence};
use crate::infra::storage::StorageError;

/// What the public verification shows of a letter.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LetterVerification {
    /// The letter id.
    pub letter_id: String,
    /// The provider named in the sealed records.
    pub provider: String,
    /// True when every check of every record and of the sequence passed.
    pub valid: bool,
    /// The evidence records, in the letter's order.
    pub events: Vec<VerifiedEvent>,
    /// Checks of the sequence as a whole: `event_order` and `legal_consistency`.
    pub checks: Vec<CheckVerdict>,
}

/// One evidence record and its verdicts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerifiedEvent {
    /// Position in the letter's chain, from 1.
    pub position: usize,
    /// ETSI EN 319 522 event name.
    pub event: String,
    /// Time proven by the record's RFC 3161 token, RFC 3339 UTC (absent when unreadable).
    pub timestamp: Option<String>,
    /// The same instant in Europe/Paris civil time, RFC 3339 with its offset.
    pub timestamp_paris: Option<String>,
    /// Hex SHA-256 of the record's bytes (what `sha256sum` prints for its `.json`).
    pub evidence_sha256: String,
    /// True when every check of this record passed.
    pub valid: bool,
    /// The eight checks of the record, in order (seal, timestamp, certificates, chain…).
    pub checks: Vec<CheckVerdict>,
}

/// One named check and its result.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckVerdict {
    /// Stable check name (`seal_signature`, `timestamp_imprint`, `event_order`, …).
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// What was found (English).
    pub detail: String,
}

/// The query of `GET /v1/verify/{letter_id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CodeQuery {
    /// The letter's verification code, as printed on its proofs (case, spaces and dashes do
    /// not matter).
    #[serde(default)]
    pub code: String,
}

/// Public verification of a letter's evidence: the events with their proven times, the
/// digests of the records and the verdict of every seal and timestamp, re-checked now against
/// the service's trust anchors. No API key: the verification code printed on the proofs is
/// the authority. Rate-limited per client address.
#[utoipa::path(get, path = "/v1/verify/{letter_id}", tag = "verification",
    params(("letter_id" = String, Path, description = "Letter id"), CodeQuery),
    responses((status = 200, description = "The letter's evidence and its verdicts", body = LetterVerification),
              (status = 404, description = "Unknown letter or wrong code (the same answer for both)", body = Problem),
              (status = 429, description = "Too many verifications from this address; see Retry-After", body = Problem)))]
pub async fn verify_letter_api(
    State(service): State<Service>,
    Path(letter_id): Path<String>,
    Query(query): Query<CodeQuery>,
) -> Result<Response, Problem> {
    let Some(verification) = verify_letter(&service, &letter_id, &query.code).await? else {
        return Err(not_found());
    };
    json_ok(&verification)
}

/// The one answer for an unknown letter and a wrong code.
fn not_found() -> Problem {
    Problem::not_found("no letter matches this id and verification code")
}

/// Why a verification could not be made (never the letter's fault: a 500).
#[derive(Debug, thiserror::Error)]
pub(crate) enum VerificationError {
    /// Reading the evidence failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The verification task died.
    #[error("verification task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<VerificationError> for Problem {
    fn from(err: VerificationError) -> Self {
        Problem::internal(&err)
    }
}

/// Checks the code, then re-verifies the letter's stored evidence. `None` for an unknown
/// letter or a wrong code (indistinguishable to the caller).
pub(crate) async fn verify_letter(
    service: &Service,
    letter_id: &str,
    code: &str,
) -> Result<Option<LetterVerification>, VerificationError> {
    let Some(letter_id) = super::path_uuid(letter_id.trim()) else {
        return Ok(None);
    };
    // The code is an HMAC of the id under the service's key: checking it first needs no
    // database, and no code exists for an id the service never issued.
    if code.trim().is_empty() || !service.lifecycle.check_verification_code(&letter_id, code) {
        return Ok(None);
    }
    let rows = service.storage.evidence_of_letter(&letter_id).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let renewals = service.storage.renewals_of_letter(&letter_id).await?;
    let at = service.clock.now();
    let anchors = service.anchors.clone();
    // Seal and timestamp checks are CPU work (ECDSA, certificate paths): off the async threads.
    let verification = tokio::task::spawn_blocking(move || {
        let mut previous: Option<String> = None;
        let mut events = Vec::with_capacity(rows.len());
        let mut records: Vec<(String, EvidenceRecord, Option<OffsetDateTime>)> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let chain = match &previous {
                None => ChainExpectation::First,
                Some(p) => ChainExpectation::After(p),
            };
            let report = verify_evidence(
                &row.record,
                &row.seal,
                &row.timestamp_token,
                &anchors,
                chain,
            );
            let sha256 = hex::encode(report.sha256);
            // Archive timestamp renewal (RFC 4998 spirit): the token must be valid today or
            // covered by an unbroken chain of renewals.
            let files: Vec<crate::core::renewal::RenewalFiles<'_>> = renewals
                .iter()
                .filter(|r| r.evidence_id == row.id)
                .map(|r| crate::core::renewal::RenewalFiles {
                    record: &r.record,
                    token: &r.timestamp_token,
                })
                .collect();
            let renewal = crate::core::renewal::verify_chain(
                &report.sha256,
                Some(&row.id),
                &row.timestamp_token,
                &files,
                &anchors,
                at,
            );
            let mut checks: Vec<CheckVerdict> = report
                .checks
                .iter()
                .map(|c| CheckVerdict {
                    name: c.name.to_string(),
                    passed: c.passed,
                    detail: c.detail.clone(),
                })
                .collect();
            checks.push(CheckVerdict {
                name: crate::core::renewal::CHECK_NAME.to_string(),
                passed: renewal.is_ok(),
                detail: renewal.clone().unwrap_or_else(|e| e),
            });
            events.push(VerifiedEvent {
                position: i + 1,
                event: row.event.clone(),
                timestamp: report.timestamp_time.map(rfc3339_micros),
                timestamp_paris: report.timestamp_time.map(rfc3339_paris),
                evidence_sha256: sha256.clone(),
                valid: report.is_valid() && renewal.is_ok(),
                checks,
            });
            if let Some(record) = report.record {
                records.push((
                    format!("{:02}-{}", i + 1, row.event),
                    record,
                    report.timestamp_time,
                ));
            }
            previous = Some(sha256);
        }
        let verdict = |name: &str, result: Result<String, String>| {
            let (passed, detail) = match result {
                Ok(d) => (true, d),
                Err(d) => (false, d),
            };
            CheckVerdict {
                name: name.to_string(),
                passed,
                detail,
            }
        };
        let checks = vec![
            verdict("event_order", check_order(&records)),
            verdict("legal_consistency", check_legal(&records)),
        ];
        let provider = records
            .first()
            .map(|(_, r, _)| r.provider.name.clone())
            .unwrap_or_default();
        let valid = events.iter().all(|e| e.valid) && checks.iter().all(|c| c.passed);
        LetterVerification {
            letter_id,
            provider,
            valid,
            events,
            checks,
        }
    })
    .await?;
    Ok(Some(verification))
}
