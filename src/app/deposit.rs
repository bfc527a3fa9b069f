//! Deposit: a checked request becomes a letter with its sealed, timestamped proof of deposit
//! (`SubmissionAcceptance`), written in one transaction with everything that goes with it.
//!
//! The work is split in two so that callers can render and store the API response inside the
//! same transaction (idempotent replays): [`Deposits::prepare`] does the CPU work (evidence,
//! seal, timestamp) and touches no table; [`Deposits::commit`] writes it all at once.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::app::api_key::Caller;
use crate::core::clock::{Clock, from_unix_micros, rfc3339_micros, unix_micros};
use crate::core::evidence::{
    ContentItem, EvidenceError, EvidenceRecord, IdentityInfo, PartyInfo, SealedEvidence,
    deposit_record, hex_digest,
};
use crate::domain::consent::{check_for_deposit, depositing_sender};
use crate::domain::letter::{DepositRequest, FieldError, LetterState, RecipientKind};
use crate::infra::storage::{
    ConsentRow, DocumentRow, IdempotencyRow, LetterRow, NewDeposit, NewEvidence, NewJob, Storage,
    StorageError,
};
use crate::infra::timestamping::TimestampingSealer;

/// Why a deposit did not happen. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum DepositError {
    /// Documents named in the request do not exist for this tenant.
    #[error("unknown documents")]
    UnknownDocuments(Vec<FieldError>),
    /// A consumer recipient without an active consent of this tenant for their address
    /// (CPCE L.100); each refused `consent_id` is listed.
    #[error("consumer consent required")]
    ConsentRequired(Vec<FieldError>),
    /// The idempotency claim of the request was taken over by a retry after it expired.
    #[error("idempotency claim taken over")]
    IdempotencyKeyTaken,
    /// Building, sealing or timestamping the evidence failed.
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Storing a composed letter's PDF failed.
    #[error(transparent)]
    Content(#[from] crate::infra::content::ContentError),
    /// Rendering a composed letter failed.
    #[error("composing the letter failed: {0}")]
    Composition(String),
}

/// A deposit whose evidence is sealed and timestamped, not yet stored.
#[derive(Debug, Clone)]
pub struct PreparedDeposit {
    /// The letter row to insert.
    pub letter: LetterRow,
    /// Its documents, in order.
    pub documents: Vec<DocumentRow>,
    /// Its proof of deposit.
    pub evidence: SealedEvidence,
    /// Deposit time.
    pub deposited_at: OffsetDateTime,
}

impl PreparedDeposit {
    /// The rows this deposit writes, with the jobs it causes: the notification (CPCE R.53-3
    /// I: right after deposit) and the `letter.deposited` webhook event.
    pub fn to_new_deposit(&self) -> NewDeposit {
        let at = unix_micros(self.deposited_at);
        let mut letter = self.letter.clone();
        letter.last_evidence_sha256 = Some(hex_digest(&self.evidence.sha256));
        NewDeposit {
            jobs: vec![
                NewJob {
                    kind: crate::app::lifecycle::job::NOTIFY.into(),
                    letter_id: Some(self.letter.id.clone()),
                    payload: "{}".into(),
                    run_after: at,
                },
                crate::app::lifecycle::webhook_job(
                    &self.letter,
                    crate::core::evidence::EvidenceEvent::SubmissionAcceptance,
                    &self.evidence.record.evidence_id,
                    self.deposited_at,
                ),
            ],
            letter,
            document_ids: self.documents.iter().map(|d| d.id.clone()).collect(),
            evidence: NewEvidence {
                id: self.evidence.record.evidence_id.clone(),
                letter_id: self.letter.id.clone(),
                event: self.evidence.record.event.name().to_string(),
                event_time: unix_micros(self.deposited_at),
                record: self.evidence.bytes.clone(),
                record_sha256: hex_digest(&self.evidence.sha256),
                seal: self.evidence.seal.clone(),
                timestamp_token: self.evidence.timestamp_token.clone(),
                created_at: unix_micros(self.deposited_at),
            },
        }
    }
}

/// The deposit service.
#[derive(Clone)]
pub struct Deposits {
    storage: Storage,
    sealer: Arc<TimestampingSealer>,
    clock: Arc<dyn Clock>,
    retention_years: u32,
}

impl Deposits {
    /// A deposit service writing to `storage` and sealing with `sealer`.
    pub fn new(
        storage: Storage,
        sealer: Arc<TimestampingSealer>,
        clock: Arc<dyn Clock>,
        retention_years: u32,
    ) -> Self {
        Deposits {
            storage,
            sealer,
            clock,
            retention_years,
        }
    }

    /// Resolves the documents, checks the consumer's consent (CPCE L.100), builds the proof
    /// of deposit, seals and timestamps it.
    pub async fn prepare(
        &self,
        caller: &Caller,
        request: DepositRequest,
    ) -> Result<PreparedDeposit, DepositError> {
        let documents = self
            .resolve_documents(caller, &request.document_ids)
            .await?;
        let now = self.clock.now();
        let consents = self
            .resolve_consents(caller, std::slice::from_ref(&request), now, false)
            .await?;
        let consent = consents.into_iter().next().flatten();
        let (letter, record) = self.build(caller, &request, &documents, consent.as_ref(), now);
        let evidence = self.sealer.seal(record, now).await?;
        Ok(PreparedDeposit {
            letter,
            documents,
            evidence,
            deposited_at: now,
        })
    }

    /// Prepares many deposits that share already-resolved documents, sealing and
    /// timestamping them with [`Deposits::seal_many`]. Used by the deposit benchmark.
    pub async fn prepare_many(
        &self,
        caller: &Caller,
        requests: Vec<DepositRequest>,
        documents: &[DocumentRow],
        threads: usize,
    ) -> Result<Vec<PreparedDeposit>, DepositError> {
        let now = self.clock.now();
        let consents = self.resolve_consents(caller, &requests, now, true).await?;
        let mut built = Vec::with_capacity(requests.len());
        for (request, consent) in requests.iter().zip(&consents) {
            built.push(self.build(caller, request, documents, consent.as_ref(), now));
        }
        let sealed = self.seal_many(built, now, threads).await?;
        Ok(sealed
            .into_iter()
            .map(|(letter, evidence)| PreparedDeposit {
                letter,
                documents: documents.to_vec(),
                evidence,
                deposited_at: now,
            })
            .collect())
    }

    /// Seals and timestamps built proofs of deposit, in order: on `threads` blocking worker
    /// threads with the embedded TSA, one after the other with a remote TSA.
    pub async fn seal_many(
        &self,
        built: Vec<(LetterRow, EvidenceRecord)>,
        now: OffsetDateTime,
        threads: usize,
    ) -> Result<Vec<(LetterRow, SealedEvidence)>, DepositError> {
        let (letters, records): (Vec<_>, Vec<_>) = built.into_iter().unzip();
        let sealed = self.sealer.seal_many(records, now, threads).await?;
        Ok(letters.into_iter().zip(sealed).collect())
    }

    /// Writes prepared deposits and the optional answer of the idempotency claim in one
    /// transaction.
    pub async fn commit(
        &self,
        deposits: &[PreparedDeposit],
        idempotency: Option<&IdempotencyRow>,
    ) -> Result<(), DepositError> {
        let rows: Vec<NewDeposit> = deposits
            .iter()
            .map(PreparedDeposit::to_new_deposit)
            .collect();
        match self.storage.insert_deposits(&rows, idempotency).await {
            Err(StorageError::IdempotencyClaimLost) => Err(DepositError::IdempotencyKeyTaken),
            other => Ok(other?),
        }
    }

    /// The tenant's documents, in the requested order; every unknown id is reported.
    pub async fn resolve_documents(
        &self,
        caller: &Caller,
        ids: &[String],
    ) -> Result<Vec<DocumentRow>, DepositError> {
        let found = self.storage.documents(&caller.tenant_id, ids).await?;
        let mut ordered = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            match found.iter().find(|d| &d.id == id) {
                Some(doc) => ordered.push(doc.clone()),
                None => missing.push(FieldError {
                    field: format!("documents[{i}]"),
                    message: format!("no document {id} was uploaded by this account"),
                }),
            }
        }
        if !missing.is_empty() {
            return Err(DepositError::UnknownDocuments(missing));
        }
        Ok(ordered)
    }

    /// The consent each consumer recipient cites, checked at `now` (CPCE L.100); `None` for a
    /// professional recipient. Every refusal is reported; in a batch (`indexed`) the field
    /// names the request's position.
    pub async fn resolve_consents(
        &self,
        caller: &Caller,
        requests: &[DepositRequest],
        now: OffsetDateTime,
        indexed: bool,
    ) -> Result<Vec<Option<ConsentRow>>, DepositError> {
        let cited: Vec<String> = requests
            .iter()
            .filter(|r| r.recipient.kind == RecipientKind::Consumer)
            .filter_map(|r| r.recipient.consent_id.clone())
            .collect();
        let found = self.storage.consents(&caller.tenant_id, &cited).await?;
        let mut resolved = Vec::with_capacity(requests.len());
        let mut refused = Vec::new();
        for (i, request) in requests.iter().enumerate() {
            let recipient = &request.recipient;
            if recipient.kind != RecipientKind::Consumer {
                resolved.push(None);
                continue;
            }
            // `DepositRequest::parse` already refuses a consumer without `consent_id`; an
            // empty id here is simply unknown.
            let id = recipient.consent_id.as_deref().unwrap_or("");
            let consent = found.iter().find(|c| c.id == id);
            match check_for_deposit(consent, &recipient.email, &depositing_sender(request), now) {
                Ok(consent) => resolved.push(Some(consent.clone())),
                Err(refusal) => refused.push(FieldError {
                    field: if indexed {
                        format!("[{i}].recipient.consent_id")
                    } else {
                        "recipient.consent_id".to_string()
                    },
                    message: refusal.message(id),
                }),
            }
        }
        if !refused.is_empty() {
            return Err(DepositError::ConsentRequired(refused));
        }
        Ok(resolved)
    }

    /// The letter row and its unsealed proof of deposit (`SubmissionAcceptance`, with the
    /// CPCE R.53-2 fields) for a checked request.
    pub(crate) fn build(
        &self,
        caller: &Caller,
        request: &DepositRequest,
        documents: &[DocumentRow],
        consent: Option<&ConsentRow>,
        now: OffsetDateTime,
    ) -> (LetterRow, EvidenceRecord) {
        let letter_id = uuid::Uuid::now_v7().to_string();
        let evidence_id = uuid::Uuid::now_v7().to_string();
        let retain_until = add_years(now, self.retention_years);
        let sender = &request.sender;
        let recipient = &request.recipient;
        let kind = match recipient.kind {
            RecipientKind::Professional => "professional",
            RecipientKind::Consumer => "consumer",
        };
        let details = deposit_details(caller, request, consent, retain_until);
        let record = deposit_record(
            &evidence_id,
            &letter_id,
            now,
            self.sealer.provider(),
            self.sealer.policy(),
            PartyInfo {
                name: sender.name.clone(),
                email: sender.email.as_str().to_string(),
                organization: sender.organization.clone(),
                kind: None,
                // eIDAS art. 44(1)(b): the sender is the holder of an API key issued to the
                // tenant account; the assurance follows from the account's onboarding.
                identity: Some(IdentityInfo {
                    method: "api-key".into(),
                    assurance_level: "provider-account".into(),
                }),
            },
            PartyInfo {
                name: recipient.name.clone(),
                email: recipient.email.as_str().to_string(),
                organization: None,
                kind: Some(kind.into()),
                identity: None,
            },
            documents
                .iter()
                .map(|d| ContentItem {
                    document_id: d.id.clone(),
                    name: d.filename.clone(),
                    media_type: d.media_type.clone(),
                    size: d.size.max(0) as u64,
                    sha256: d.sha256.clone(),
                })
                .collect(),
            details,
        );
        let at = unix_micros(now);
        let letter = LetterRow {
            id: letter_id,
            tenant_id: caller.tenant_id.clone(),
            state: LetterState::Deposited.as_str().to_string(),
            reference: request.reference.clone(),
            sender: serde_json::to_string(sender).unwrap_or_default(),
            recipient: serde_json::to_string(recipient).unwrap_or_default(),
            deposited_at: at,
            retain_until: unix_micros(retain_until),
            updated_at: at,
            last_evidence_sha256: None,
            notified_at: None,
            deadline: None,
            decided_at: None,
            content_handed_over_at: None,
            legal_hold_since: None,
            content_destroyed_at: None,
        };
        (letter, record)
    }
}

/// The `details` of a proof of deposit: how it was submitted, the reference, the collection
/// figures of a letter the service wrote, the consumer's consent (CPCE L.100) and the end of
/// retention.
fn deposit_details(
    caller: &Caller,
    request: &DepositRequest,
    consent: Option<&ConsentRow>,
    retain_until: OffsetDateTime,
) -> Map<String, Value> {
    let mut details = Map::new();
    details.insert(
        "submission".into(),
        json!({
            "channel": "api",
            "tenant_id": caller.tenant_id,
            "tenant_name": caller.tenant_name,
            "api_key_id": caller.api_key_id,
        }),
    );
    if let Some(reference) = &request.reference {
        details.insert("reference".into(), Value::String(reference.clone()));
    }
    if let Some(collection) = &request.collection {
        // A letter the service wrote: the amounts, rates, prescription (and any override
        // of it) and the mandatory mentions checked are part of the proof of deposit.
        details.insert("collection".into(), collection.clone());
    }
    if let Some(consent_id) = &request.recipient.consent_id {
        // CPCE L.100: the consumer's prior consent is cited in the proof of deposit.
        details.insert("consent_id".into(), Value::String(consent_id.clone()));
    }
    if let Some(consent) = consent {
        // CPCE L.100: when and how the consumer consented, as recorded before the deposit.
        let mut cited = json!({
            "id": consent.id,
            "given_at": rfc3339_micros(from_unix_micros(consent.given_at)),
            "method": consent.method,
        });
        // Whom the consumer agreed to receive letters from, when the consent names one
        // (only then, so that earlier proofs keep their exact form).
        if let (Some(sender), Some(obj)) = (&consent.sender, cited.as_object_mut()) {
            obj.insert("sender".into(), Value::String(sender.clone()));
        }
        details.insert("consent".into(), cited);
    }
    details.insert(
        "retain_until".into(),
        Value::String(rfc3339_micros(retain_until)),
    );
    details
}

/// `t` plus `years` calendar years (29 February becomes 1 March when needed).
pub fn add_years(t: OffsetDateTime, years: u32) -> OffsetDateTime {
    let year = t.year() + years as i32;
    t.replace_year(year)
        .or_else(|_| (t + time::Duration::days(1)).replace_year(year))
        .unwrap_or(t + time::Duration::days(365 * years as i64 + years as i64 / 4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn retention_counts_calendar_years() {
        assert_eq!(
            add_years(datetime!(2026-11-23 09:00 UTC), 10),
            datetime!(2036-11-23 09:00 UTC)
        );
        assert_eq!(
            add_years(datetime!(2028-02-29 12:00 UTC), 1),
            datetime!(2029-03-01 12:00 UTC)
        );
    }
}
