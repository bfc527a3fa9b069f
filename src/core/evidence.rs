//! Evidence record v1 (docs/EVIDENCE.md): what happened to a letter, as canonical JSON (RFC 8785),
//! sealed with CMS and timestamped with RFC 3161.
//!
//! Building a record and turning it into bytes is pure. Sealing and timestamping take the
//! keys and a time; tokens from a remote TSA are fetched outside the core
//! (`infra::timestamping`) and checked here before use.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::core::clock::{Clock, rfc3339_micros};
use crate::core::seal::{SealError, Sealer};
use crate::core::timestamp::{ParsedToken, TimestampAuthority, TimestampError};
use crate::core::trust::{CertificatePurpose, TrustAnchors, verify_certificate_path};

/// Version of the record format written by this code.
pub const EVIDENCE_VERSION: u32 = 1;

/// An event of the registered-delivery lifecycle, named as in ETSI EN 319 522-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EvidenceEvent {
    /// The service accepted the letter (proof of deposit, CPCE R.53-2).
    SubmissionAcceptance,
    /// The service refused the letter at submission.
    SubmissionRejection,
    /// The notification was handed to the mail relay.
    NotificationForAcceptance,
    /// The notification could not be delivered.
    NotificationForAcceptanceFailure,
    /// The recipient accepted the letter.
    ConsignmentAcceptance,
    /// The recipient refused the letter.
    ConsignmentRejection,
    /// The recipient downloaded the content.
    ContentHandover,
    /// The acceptance window ended without a decision (non-claim).
    AcceptanceRejectionExpiry,
    /// The letter's content was destroyed after its retention period (CPCE R.53-3): its data
    /// keys were destroyed or are destroyed as soon as no other letter needs them. Not an
    /// ETSI EN 319 522 event: its URI is the provider's own.
    ContentDestruction,
}

impl EvidenceEvent {
    /// Every event.
    pub const ALL: [EvidenceEvent; 9] = [
        EvidenceEvent::SubmissionAcceptance,
        EvidenceEvent::SubmissionRejection,
        EvidenceEvent::NotificationForAcceptance,
        EvidenceEvent::NotificationForAcceptanceFailure,
        EvidenceEvent::ConsignmentAcceptance,
        EvidenceEvent::ConsignmentRejection,
        EvidenceEvent::ContentHandover,
        EvidenceEvent::AcceptanceRejectionExpiry,
        EvidenceEvent::ContentDestruction,
    ];

    /// The ETSI event name.
    pub fn name(self) -> &'static str {
        match self {
            EvidenceEvent::SubmissionAcceptance => "SubmissionAcceptance",
            EvidenceEvent::SubmissionRejection => "SubmissionRejection",
            EvidenceEvent::NotificationForAcceptance => "NotificationForAcceptance",
            EvidenceEvent::NotificationForAcceptanceFailure => "NotificationForAcceptanceFailure",
            EvidenceEvent::ConsignmentAcceptance => "ConsignmentAcceptance",
            EvidenceEvent::ConsignmentRejection => "ConsignmentRejection",
            EvidenceEvent::ContentHandover => "ContentHandover",
            EvidenceEvent::AcceptanceRejectionExpiry => "AcceptanceRejectionExpiry",
            EvidenceEvent::ContentDestruction => "ContentDestruction",
        }
    }

    /// The event URI, `http://uri.etsi.org/19522/Event/<Name>` (ETSI EN 319 522-2).
    /// `ContentDestruction`, not an ETSI event, is `urn:recommande:event:ContentDestruction`.
    pub fn uri(self) -> String {
        if self == EvidenceEvent::ContentDestruction {
            return format!("urn:recommande:event:{}", self.name());
        }
        format!("http://uri.etsi.org/19522/Event/{}", self.name())
    }

    /// Parses an ETSI event name.
    pub fn parse(name: &str) -> Option<EvidenceEvent> {
        EvidenceEvent::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// The provider that issued the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderInfo {
    /// Provider name.
    pub name: String,
    /// Hex SHA-256 of the DER seal certificate.
    pub seal_certificate_sha256: String,
}

/// How a party was identified (eIDAS art. 44(1)(b), CPCE R.53-1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityInfo {
    /// Identification method, e.g. `api-key`, `email-otp`.
    pub method: String,
    /// Assurance level reached by that method.
    pub assurance_level: String,
}

/// Sender or recipient as written in the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyInfo {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Organisation, for a sender acting for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// `professional` or `consumer` (recipients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Identification, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityInfo>,
}

/// One document of the letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentItem {
    /// Document id.
    pub document_id: String,
    /// File name.
    pub name: String,
    /// Media type.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
}

/// Evidence record v1. Serialized canonically by [`EvidenceRecord::to_canonical_bytes`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRecord {
    /// Format version (1).
    pub version: u32,
    /// Evidence id (UUID).
    pub evidence_id: String,
    /// Event name.
    pub event: EvidenceEvent,
    /// Event URI.
    pub event_uri: String,
    /// Event time, RFC 3339 UTC with microseconds.
    pub event_time: String,
    /// Letter id.
    pub letter_id: String,
    /// Issuing provider.
    pub provider: ProviderInfo,
    /// Sender.
    pub sender: PartyInfo,
    /// Recipient.
    pub recipient: PartyInfo,
    /// Documents.
    pub content: Vec<ContentItem>,
    /// Event-specific details.
    pub details: Map<String, Value>,
    /// Hex SHA-256 of the letter's previous record; `null` for the first.
    pub previous_evidence_sha256: Option<String>,
    /// Evidence policy URI.
    pub policy: String,
}

/// Why a record could not be turned into bytes or sealed.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// Canonical serialization failed.
    #[error("cannot serialize evidence canonically: {0}")]
    Canonical(String),
    /// The CMS seal failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// Timestamping failed.
    #[error(transparent)]
    Timestamp(#[from] TimestampError),
    /// A PDF could not take a signature.
    #[error(transparent)]
    Pades(#[from] crate::core::pades::PadesError),
}

impl EvidenceRecord {
    /// The record's RFC 8785 canonical bytes: what is hashed, sealed and timestamped.
    pub fn to_canonical_bytes(&self) -> Result<Vec<u8>, EvidenceError> {
        crate::core::canonical::to_vec(self).map_err(|e| EvidenceError::Canonical(e.to_string()))
    }
}

/// A record with its bytes, seal and timestamp token, ready to store.
#[derive(Debug, Clone)]
pub struct SealedEvidence {
    /// The record.
    pub record: EvidenceRecord,
    /// Its canonical bytes.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`.
    pub sha256: [u8; 32],
    /// CMS detached seal over `bytes`.
    pub seal: Vec<u8>,
    /// RFC 3161 TimeStampToken over SHA-256(`bytes`).
    pub timestamp_token: Vec<u8>,
}

/// Where timestamp tokens come from, as the core sees it. The core makes embedded tokens
/// itself; remote ones are fetched by the caller (the HTTP client lives in the infra layer)
/// and handed back to [`Timestamper::check_remote`] before they are used.
pub enum Timestamper {
    /// The embedded TSA, reading the time from the service clock.
    Embedded {
        /// The TSA.
        authority: Arc<TimestampAuthority>,
        /// Its time source.
        clock: Arc<dyn Clock>,
    },
    /// A remote RFC 3161 TSA (e.g. qualified); every token it returns is checked against
    /// `anchors` at its own time, so a certificate change at the TSA is caught at once rather
    /// than by the first person who verifies a proof.
    Remote {
        /// Anchors the TSA's certificate must chain to.
        anchors: TrustAnchors,
    },
}

impl Timestamper {
    /// A token over `digest` (SHA-256 of the evidence bytes) from the embedded TSA; `None`
    /// when tokens come from a remote TSA.
    pub fn embedded_token(&self, digest: [u8; 32]) -> Option<Result<Vec<u8>, TimestampError>> {
        let (authority, clock) = self.embedded()?;
        Some(authority.timestamp_sha256(digest, clock.now()))
    }

    /// Checks a token fetched from the remote TSA: its signature, and its signer's path to
    /// the anchors at the token's own time. For the embedded TSA there is nothing to check.
    pub fn check_remote(&self, token: Vec<u8>) -> Result<Vec<u8>, TimestampError> {
        let Timestamper::Remote { anchors } = self else {
            return Ok(token);
        };
        let parsed = ParsedToken::parse(&token)?;
        let signer = parsed.verify_signature(&[])?;
        verify_certificate_path(
            &signer,
            parsed.certificates(),
            anchors,
            parsed.info().gen_time,
            CertificatePurpose::Timestamping,
        )
        .map_err(|e| {
            TimestampError::Certificate(format!("of the remote TSA is not trusted: {e}"))
        })?;
        Ok(token)
    }

    /// The embedded TSA, when timestamps are made in-process (bulk paths sign on worker threads).
    pub fn embedded(&self) -> Option<(&Arc<TimestampAuthority>, &Arc<dyn Clock>)> {
        match self {
            Timestamper::Embedded { authority, clock } => Some((authority, clock)),
            Timestamper::Remote { .. } => None,
        }
    }
}

/// A record serialized and sealed, waiting for its timestamp token.
#[derive(Debug, Clone)]
pub struct UnstampedEvidence {
    /// The record.
    pub record: EvidenceRecord,
    /// Its canonical bytes.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`: what the token is over.
    pub sha256: [u8; 32],
    /// CMS detached seal over `bytes`.
    pub seal: Vec<u8>,
}

impl UnstampedEvidence {
    /// The sealed record with its RFC 3161 token over `sha256`.
    pub fn with_token(self, timestamp_token: Vec<u8>) -> SealedEvidence {
        SealedEvidence {
            record: self.record,
            bytes: self.bytes,
            sha256: self.sha256,
            seal: self.seal,
            timestamp_token,
        }
    }
}

/// Seals and timestamps records with the service's keys.
pub struct EvidenceSealer {
    sealer: Sealer,
    timestamper: Timestamper,
    provider: ProviderInfo,
    policy: String,
}

impl EvidenceSealer {
    /// A sealer issuing records in the name of `provider` under `policy`.
    pub fn new(
        sealer: Sealer,
        timestamper: Timestamper,
        provider: ProviderInfo,
        policy: String,
    ) -> Self {
        EvidenceSealer {
            sealer,
            timestamper,
            provider,
            policy,
        }
    }

    /// The provider written in every record.
    pub fn provider(&self) -> &ProviderInfo {
        &self.provider
    }

    /// The evidence policy URI written in every record.
    pub fn policy(&self) -> &str {
        &self.policy
    }

    /// A detached CMS seal over any bytes (e.g. a bundle's ASiC manifest).
    pub fn seal_bytes(&self, bytes: &[u8], at: OffsetDateTime) -> Result<Vec<u8>, EvidenceError> {
        Ok(self.sealer.seal(bytes, at)?)
    }

    /// A detached CMS seal over `bytes` and the SHA-256 of its signature value: the first
    /// half of a CAdES B-T seal (ETSI EN 319 122-1 §6.3), the bundle's ASiC manifest seal,
    /// so the time it was made is proven by the TSA and not only by the signing-time the seal
    /// claims. A token over the digest completes it with [`with_signature_timestamp`].
    ///
    /// [`with_signature_timestamp`]: crate::core::seal::with_signature_timestamp
    pub fn seal_bytes_for_timestamp(
        &self,
        bytes: &[u8],
        at: OffsetDateTime,
    ) -> Result<(Vec<u8>, [u8; 32]), EvidenceError> {
        let seal = self.sealer.seal(bytes, at)?;
        let signature = crate::core::seal::ParsedSeal::parse(&seal)?
            .signature_value()
            .to_vec();
        Ok((seal, Sha256::digest(&signature).into()))
    }

    /// A PAdES CMS signature over `digest` (the SHA-256 of a PDF's signed byte ranges) and
    /// the SHA-256 of its signature value, which the signature timestamp covers.
    pub fn sign_pdf_for_timestamp(
        &self,
        digest: &[u8; 32],
    ) -> Result<(Vec<u8>, [u8; 32]), EvidenceError> {
        let cms = self.sealer.sign_pdf_digest(digest)?;
        let signature = crate::core::seal::ParsedSeal::parse(&cms)?
            .signature_value()
            .to_vec();
        Ok((cms, Sha256::digest(&signature).into()))
    }

    /// The timestamp source.
    pub fn timestamper(&self) -> &Timestamper {
        &self.timestamper
    }

    /// Serializes, seals and timestamps on the calling thread with the embedded TSA; `None`
    /// when timestamps come from a remote TSA. Bulk paths call this from worker threads.
    pub fn seal_with_embedded_tsa(
        &self,
        record: EvidenceRecord,
        at: OffsetDateTime,
    ) -> Option<Result<SealedEvidence, EvidenceError>> {
        let (authority, _) = self.timestamper.embedded()?;
        Some((|| {
            let unstamped = self.seal_only(record, at)?;
            let timestamp_token = authority.timestamp_sha256(unstamped.sha256, at)?;
            Ok(unstamped.with_token(timestamp_token))
        })())
    }

    /// Serializes and seals `record`, leaving the timestamp to the caller.
    pub fn seal_only(
        &self,
        record: EvidenceRecord,
        at: OffsetDateTime,
    ) -> Result<UnstampedEvidence, EvidenceError> {
        let bytes = record.to_canonical_bytes()?;
        let sha256: [u8; 32] = Sha256::digest(&bytes).into();
        let seal = self.sealer.seal(&bytes, at)?;
        Ok(UnstampedEvidence {
            record,
            bytes,
            sha256,
            seal,
        })
    }
}

/// Builds the `SubmissionAcceptance` record of a deposit: the proof of deposit, with the
/// fields CPCE R.53-2 requires (sender name and email, recipient name and email, unique
/// letter id; the deposit time comes from the qualified timestamp; the seal from the provider).
#[allow(clippy::too_many_arguments)]
pub fn deposit_record(
    evidence_id: &str,
    letter_id: &str,
    event_time: OffsetDateTime,
    provider: &ProviderInfo,
    policy: &str,
    sender: PartyInfo,
    recipient: PartyInfo,
    content: Vec<ContentItem>,
    details: Map<String, Value>,
) -> EvidenceRecord {
    EvidenceRecord {
        version: EVIDENCE_VERSION,
        evidence_id: evidence_id.to_string(),
        event: EvidenceEvent::SubmissionAcceptance,
        event_uri: EvidenceEvent::SubmissionAcceptance.uri(),
        event_time: rfc3339_micros(event_time),
        letter_id: letter_id.to_string(),
        provider: provider.clone(),
        sender,
        recipient,
        content,
        details,
        previous_evidence_sha256: None,
        policy: policy.to_string(),
    }
}

/// Lower-case hex of a SHA-256 digest.
pub fn hex_digest(digest: &[u8; 32]) -> String {
    hex::encode(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    pub(crate) fn sample_record() -> EvidenceRecord {
        let mut details = Map::new();
        details.insert("reference".into(), Value::String("DOS-1".into()));
        deposit_record(
            "0192f3a4-0000-7000-8000-000000000001",
            "0192f3a4-0000-7000-8000-000000000002",
            datetime!(2026-11-23 09:13:44.123456 UTC),
            &ProviderInfo {
                name: "recommande".into(),
                seal_certificate_sha256: "00".repeat(32),
            },
            "urn:recommande:evidence-policy:v1:non-qualified-development",
            PartyInfo {
                name: "Cabinet Recouvr".into(),
                email: "envoi@recouvr.fr".into(),
                organization: None,
                kind: None,
                identity: None,
            },
            PartyInfo {
                name: "Société Débitrice".into(),
                email: "compta@debitrice.fr".into(),
                organization: None,
                kind: Some("professional".into()),
                identity: None,
            },
            vec![ContentItem {
                document_id: "d".into(),
                name: "relance.pdf".into(),
                media_type: "application/pdf".into(),
                size: 1234,
                sha256: "ab".repeat(32),
            }],
            details,
        )
    }

    #[test]
    fn canonical_bytes_sort_keys_and_keep_nulls() {
        let bytes = sample_record().to_canonical_bytes().expect("canonical");
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        assert!(text.starts_with("{\"content\":[{"), "{text}");
        assert!(text.contains("\"previous_evidence_sha256\":null"));
        assert!(
            text.contains("Société Débitrice"),
            "non-ASCII kept as UTF-8 (RFC 8785 §3.2.2.2)"
        );
        // Re-serializing the parsed record gives the same bytes.
        let again: EvidenceRecord = serde_json::from_slice(&bytes).expect("parse");
        assert_eq!(again.to_canonical_bytes().expect("canonical"), bytes);
    }

    #[test]
    fn event_names_and_uris_follow_etsi_en_319_522() {
        for e in EvidenceEvent::ALL {
            assert_eq!(EvidenceEvent::parse(e.name()), Some(e));
            assert_eq!(
                serde_json::to_value(e).expect("json"),
                Value::String(e.name().into())
            );
        }
        assert_eq!(
            EvidenceEvent::SubmissionAcceptance.uri(),
            "http://uri.etsi.org/19522/Event/SubmissionAcceptance"
        );
    }
}
