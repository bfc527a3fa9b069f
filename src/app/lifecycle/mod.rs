//! The registered-letter lifecycle after deposit (docs/EVIDENCE.md, events): notification, reminders,
//! recipient identification, acceptance or refusal, content handover, non-claim, bounces.
//!
//! Every step that changes a letter seals and timestamps its evidence first, then writes the
//! state change, the evidence and the jobs it causes in one transaction guarded by the letter's
//! chain head ([`Transition`]): a step either happens once, with its evidence, or not at all.
//! Work that leaves the process goes through the outbox and is retried until done.
//!
//! One file per use case: [`notify`] (the outbox, notification and reminders), [`dispatch`]
//! (notifications in chunks), [`recipient`]
//! (identification codes, accept/refuse, handover), [`expiry`] (non-claim), [`bounce`] and
//! [`destruction`]; this file holds the service, its errors and the evidence transition they
//! share.

mod bounce;
mod destruction;
mod dispatch;
mod expiry;
mod notify;
mod recipient;

use std::sync::Arc;

use base64::Engine;
use ring::hmac;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::app::secrets::random_bytes;
use crate::core::clock::{Clock, from_unix_micros, rfc3339_micros, unix_micros};
use crate::core::evidence::{
    ContentItem, EVIDENCE_VERSION, EvidenceError, EvidenceEvent, EvidenceRecord, IdentityInfo,
    PartyInfo, SealedEvidence, hex_digest,
};
use crate::domain::identity::{EmailOneTimeCode, IdentityProvider};
use crate::domain::letter::{LetterState, Recipient, Sender};
use crate::domain::window::{
    WindowError, acceptance_window, last_minute, paris_english, paris_french,
};
use crate::infra::mail::{MailError, Mailer, OutgoingMail, mask_address};
use crate::infra::storage::{
    DocumentRow, Job, JobMail, LetterRow, LetterUpdate, NewEvidence, NewJob, SessionRow, Storage,
    StorageError, Transition,
};
use crate::infra::timestamping::TimestampingSealer;

/// Validity of a one-time code.
pub const OTP_VALIDITY: time::Duration = time::Duration::minutes(10);
/// Wrong codes in a row before the letter is locked.
pub const OTP_MAX_FAILURES: i64 = 5;
/// How long a lock lasts.
pub const OTP_LOCK: time::Duration = time::Duration::minutes(15);
/// Codes that may be sent per letter per hour.
pub const OTP_MAX_PER_HOUR: i64 = 5;
/// Validity of a recipient session.
pub const SESSION_VALIDITY: time::Duration = time::Duration::minutes(30);
/// Attempts to hand a notification to the relay before giving up.
pub const NOTIFY_MAX_ATTEMPTS: i64 = 12;
/// Chunks of notifications on their way at once: while one is built or sealed (processor
/// work), another is handed over or committed (waiting on the relay or the disk).
pub const DISPATCH_CONCURRENCY: usize = 2;
/// How long a claimed job is reserved for its worker.
const JOB_LEASE: time::Duration = time::Duration::minutes(5);

/// Outbox job kinds.
pub mod job {
    /// Send the notification (CPCE R.53-3 I).
    pub const NOTIFY: &str = "notify";
    /// Send a reminder during the window.
    pub const REMIND: &str = "remind";
    /// Announce an event to the tenant's webhooks.
    pub const WEBHOOK_EVENT: &str = "webhook_event";
    /// Notify many letters deposited together (a batch chunk): expanded into one [`NOTIFY`]
    /// job per letter, in one transaction, so each keeps its own retries and evidence.
    pub const NOTIFY_LETTERS: &str = "notify_letters";
    /// Announce one event of many letters to the tenant's webhooks (a batch chunk).
    pub const WEBHOOK_EVENTS: &str = "webhook_events";
    /// Announce a batch event (`batch.completed`) to the tenant's webhooks.
    pub const BATCH_EVENT: &str = "batch_event";
}

/// Why a lifecycle step did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// No letter behind this link.
    #[error("no letter behind this link")]
    NotFound,
    /// The letter is not in a state that allows the step.
    #[error("{0}")]
    Conflict(String),
    /// No valid session for this letter.
    #[error("{0}")]
    Unauthenticated(String),
    /// Wrong one-time code.
    #[error("wrong or expired code; {remaining} attempts left before the letter is locked")]
    WrongCode {
        /// Attempts left.
        remaining: i64,
    },
    /// Too many wrong codes: locked until then.
    #[error("too many wrong codes; identification is locked until {}", rfc3339_micros(*until))]
    Locked {
        /// End of the lock.
        until: OffsetDateTime,
    },
    /// Too many codes requested.
    #[error("at most {OTP_MAX_PER_HOUR} codes may be sent per hour; retry later")]
    TooManyCodes,
    /// A mail could not be sent now.
    #[error(transparent)]
    Mail(#[from] MailError),
    /// Sealing or timestamping failed.
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored value is unreadable.
    #[error("corrupt letter {0}")]
    Corrupt(String),
    /// The acceptance window of a stored date cannot be computed (kept as the source).
    #[error("corrupt letter {0}")]
    Window(#[from] WindowError),
}

/// The recipient's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Accept the letter (accusé de réception).
    Accept,
    /// Refuse it (preuve de refus).
    Refuse,
}

/// What the recipient's browser or client told us, kept only as evidence.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// IP address (hashed with a service key before it is written anywhere).
    pub ip: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
}

/// What the recipient may see of a letter. The sender appears only after a decision
/// (CPCE R.53-3: the notification must not reveal the sender).
#[derive(Debug, Clone)]
pub struct RecipientLetter {
    /// The letter.
    pub letter: LetterRow,
    /// Its documents.
    pub documents: Vec<DocumentRow>,
    /// The sender, once the recipient has decided.
    pub sender: Option<Sender>,
    /// The recipient as named by the sender.
    pub recipient: Recipient,
    /// The letter's evidence, once the recipient has decided (their proofs).
    pub evidence: Vec<crate::infra::storage::EvidenceRow>,
}

/// A code was sent.
#[derive(Debug, Clone)]
pub struct CodeSent {
    /// Masked address it went to.
    pub sent_to: String,
    /// Expiry.
    pub expires_at: OffsetDateTime,
}

/// A session was opened.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    /// The bearer token (shown once).
    pub token: String,
    /// Expiry.
    pub expires_at: OffsetDateTime,
}

/// Crockford's base32 alphabet (no I, L, O, U): codes read aloud or typed from paper.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Keys for values derived from letter ids (link tokens) and for hashing what we keep.
#[derive(Clone)]
pub struct RecipientKeys {
    token: hmac::Key,
    otp: hmac::Key,
    client: hmac::Key,
}

impl RecipientKeys {
    /// See [`Lifecycle::check_verification_code`].
    fn check_verification_code(&self, letter_id: &str, code: &str) -> bool {
        let normalise = |s: &str| -> Vec<u8> {
            s.chars()
                .filter(|c| !matches!(c, '-' | ' '))
                .map(|c| match c.to_ascii_uppercase() {
                    'O' => b'0',
                    'I' | 'L' => b'1',
                    c if c.is_ascii() => c as u8,
                    _ => b'?',
                })
                .collect()
        };
        let expected = normalise(&self.verification_code(letter_id));
        let given = normalise(code);
        crate::core::seal::constant_time_eq(&expected, &given)
    }

    /// See [`Lifecycle::verification_code`].
    fn verification_code(&self, letter_id: &str) -> String {
        let tag = hmac::sign(
            &self.token,
            format!("verification-code:v1:{letter_id}").as_bytes(),
        );
        let mut bits: u128 = 0;
        for byte in &tag.as_ref()[..10] {
            bits = (bits << 8) | u128::from(*byte);
        }
        let mut out = String::with_capacity(19);
        for i in 0..16 {
            if i > 0 && i % 4 == 0 {
                out.push('-');
            }
            let index = ((bits >> (75 - 5 * i)) & 0x1f) as usize;
            out.push(char::from(CROCKFORD[index]));
        }
        out
    }

    /// Loads the installation secrets, sealed under the master key (created on first use).
    /// The OTP key is one of them, so the 10^6 codes cannot be searched offline from a copy
    /// of the database (issue 12 §4).
    pub async fn load(
        storage: &Storage,
        keyring: &crate::infra::keys::Keyring,
        now: i64,
    ) -> Result<Self, crate::app::secrets::SecretError> {
        use crate::app::secrets::installation_secret;
        let key = |s: Vec<u8>| hmac::Key::new(hmac::HMAC_SHA256, &s);
        Ok(RecipientKeys {
            token: key(installation_secret(storage, keyring, "recipient_token_v1", now).await?),
            otp: key(installation_secret(storage, keyring, "recipient_otp_v1", now).await?),
            client: key(installation_secret(storage, keyring, "recipient_client_v1", now).await?),
        })
    }
}

/// The lifecycle service.
#[derive(Clone)]
pub struct Lifecycle {
    storage: Storage,
    sealer: Arc<TimestampingSealer>,
    clock: Arc<dyn Clock>,
    mailer: Mailer,
    keys: RecipientKeys,
    public_url: String,
    provider: crate::core::provider::ProviderIdentity,
    reminder_days: Vec<i64>,
    claims: Arc<OutboxClaims>,
    /// Notifications handled together (`[workers] dispatch_chunk`).
    dispatch_chunk: usize,
    /// Worker threads that build messages and seal evidence.
    threads: usize,
}

/// The outbox claims this process holds, so that a graceful stop can give them back
/// ([`Lifecycle::release_claims`]) instead of leaving them leased for [`JOB_LEASE`].
#[derive(Default)]
struct OutboxClaims {
    /// Set when the service stops: a pass runs no further job once its current one is done.
    stopping: std::sync::atomic::AtomicBool,
    /// Claimed jobs not finished: id → (lease end, whether their run started).
    held: std::sync::Mutex<std::collections::HashMap<i64, (i64, bool)>>,
}

impl OutboxClaims {
    fn held(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<i64, (i64, bool)>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Lifecycle {
    /// A lifecycle service.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        storage: Storage,
        sealer: Arc<TimestampingSealer>,
        clock: Arc<dyn Clock>,
        mailer: Mailer,
        keys: RecipientKeys,
        public_url: String,
        provider: crate::core::provider::ProviderIdentity,
        reminder_days: Vec<i64>,
    ) -> Self {
        Lifecycle {
            storage,
            sealer,
            clock,
            mailer,
            keys,
            public_url,
            provider,
            reminder_days,
            claims: Arc::default(),
            dispatch_chunk: crate::config::DEFAULT_DISPATCH_CHUNK,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }

    /// Resolves once outbox jobs were committed since it last resolved.
    pub async fn jobs_queued(&self) {
        self.storage.jobs_queued().await;
    }

    /// Notifications an outbox pass claims at most: [`DISPATCH_CONCURRENCY`] chunks.
    pub fn dispatch_claim(&self) -> usize {
        self.dispatch_chunk * DISPATCH_CONCURRENCY
    }

    /// The same service handling notifications `chunk` at a time (`[workers]
    /// dispatch_chunk`; 1 sends and commits them one by one).
    pub fn with_dispatch_chunk(mut self, chunk: usize) -> Self {
        self.dispatch_chunk = chunk.max(1);
        self
    }

    /// The recipient link token of a letter: HMAC of its id under an installation key, so a
    /// resent notification carries the same link, and only its SHA-256 is stored.
    pub fn recipient_token(&self, letter_id: &str) -> String {
        let tag = hmac::sign(&self.keys.token, letter_id.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// The recipient page of a letter.
    pub fn recipient_link(&self, letter_id: &str) -> String {
        format!("{}/r/{}", self.public_url, self.recipient_token(letter_id))
    }

    /// The verification code of a letter, printed on its PDF proofs: with the letter id it
    /// opens `GET /v1/verify/{id}?code=…` to third parties (a bailiff, a court clerk). An HMAC
    /// of the id under the link key with its own label, so it never reveals the link token:
    /// 80 bits in Crockford base32, grouped by four (`7K2M-…`).
    pub fn verification_code(&self, letter_id: &str) -> String {
        self.keys.verification_code(letter_id)
    }

    /// Whether `code` is the verification code of the letter. Case, spaces and dashes do not
    /// matter, and Crockford's look-alikes are read as their digit (`O`→0, `I`/`L`→1); the
    /// comparison takes constant time.
    pub fn check_verification_code(&self, letter_id: &str, code: &str) -> bool {
        self.keys.check_verification_code(letter_id, code)
    }

    async fn job_letter(&self, job: &Job) -> Result<Option<LetterRow>, LifecycleError> {
        match &job.letter_id {
            Some(id) => Ok(self.storage.letter_by_id(id).await?),
            None => Ok(None),
        }
    }

    /// Seals the event's evidence, then applies the guarded transition with the webhook
    /// event and `jobs`. `None` when the letter was not in `from` or its chain moved.
    #[allow(clippy::too_many_arguments)]
    async fn transition(
        &self,
        letter: &LetterRow,
        event: EvidenceEvent,
        from: Vec<&'static str>,
        to: &'static str,
        details: Map<String, Value>,
        recipient_identity: Option<IdentityInfo>,
        update: LetterUpdate,
        mut jobs: Vec<NewJob>,
        completes_job: Option<i64>,
    ) -> Result<Option<SealedEvidence>, LifecycleError> {
        let Some(head) = letter.last_evidence_sha256.clone() else {
            return Err(LifecycleError::Corrupt(letter.id.clone()));
        };
        let now = self.clock.now();
        let documents = self.storage.letter_documents(&letter.id).await?;
        let record = self.record(
            letter,
            &documents,
            event,
            now,
            details,
            recipient_identity,
            &head,
        )?;
        let sealed = self.sealer.seal(record, now).await?;
        jobs.push(webhook_job(letter, event, &sealed.record.evidence_id, now));
        let at = unix_micros(now);
        let t = Transition {
            letter_id: letter.id.clone(),
            from_states: from,
            to_state: to,
            expected_head: head,
            evidence: new_evidence(&letter.id, event, &sealed, now),
            update,
            jobs,
            completes_job,
            now: at,
        };
        Ok(self.storage.apply_transition(&t).await?.then_some(sealed))
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        letter: &LetterRow,
        documents: &[DocumentRow],
        event: EvidenceEvent,
        at: OffsetDateTime,
        details: Map<String, Value>,
        recipient_identity: Option<IdentityInfo>,
        previous: &str,
    ) -> Result<EvidenceRecord, LifecycleError> {
        let sender = parse_sender(letter)?;
        let recipient = parse_recipient(letter)?;
        Ok(EvidenceRecord {
            version: EVIDENCE_VERSION,
            evidence_id: uuid::Uuid::now_v7().to_string(),
            event,
            event_uri: event.uri(),
            event_time: rfc3339_micros(at),
            letter_id: letter.id.clone(),
            provider: self.sealer.provider().clone(),
            sender: PartyInfo {
                name: sender.name,
                email: sender.email.as_str().to_string(),
                organization: sender.organization,
                kind: None,
                identity: None,
            },
            recipient: PartyInfo {
                name: recipient.name,
                email: recipient.email.as_str().to_string(),
                organization: None,
                kind: Some(
                    match recipient.kind {
                        crate::domain::letter::RecipientKind::Professional => "professional",
                        crate::domain::letter::RecipientKind::Consumer => "consumer",
                    }
                    .into(),
                ),
                identity: recipient_identity,
            },
            content: documents
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
            previous_evidence_sha256: Some(previous.to_string()),
            policy: self.sealer.policy().to_string(),
        })
    }
}

/// The row of sealed evidence of `letter_id`, recorded at `at`.
fn new_evidence(
    letter_id: &str,
    event: EvidenceEvent,
    sealed: &SealedEvidence,
    at: OffsetDateTime,
) -> NewEvidence {
    let at = unix_micros(at);
    NewEvidence {
        id: sealed.record.evidence_id.clone(),
        letter_id: letter_id.to_string(),
        event: event.name().to_string(),
        event_time: at,
        record: sealed.bytes.clone(),
        record_sha256: hex_digest(&sealed.sha256),
        seal: sealed.seal.clone(),
        timestamp_token: sealed.timestamp_token.clone(),
        created_at: at,
    }
}

/// The outbox job announcing `event` to the tenant's webhooks.
pub fn webhook_job(
    letter: &LetterRow,
    event: EvidenceEvent,
    evidence_id: &str,
    at: OffsetDateTime,
) -> NewJob {
    let payload = crate::app::webhook::WebhookEvent {
        tenant_id: letter.tenant_id.clone(),
        letter_id: letter.id.clone(),
        event: webhook_event_name(event).to_string(),
        evidence_id: evidence_id.to_string(),
        occurred_at: rfc3339_micros(at),
    };
    NewJob {
        kind: job::WEBHOOK_EVENT.into(),
        letter_id: Some(letter.id.clone()),
        payload: serde_json::to_string(&payload).unwrap_or_default(),
        run_after: unix_micros(at),
    }
}

/// Webhook name of an evidence event.
pub fn webhook_event_name(event: EvidenceEvent) -> &'static str {
    match event {
        EvidenceEvent::SubmissionAcceptance => "letter.deposited",
        EvidenceEvent::SubmissionRejection => "letter.rejected",
        EvidenceEvent::NotificationForAcceptance => "letter.notified",
        EvidenceEvent::NotificationForAcceptanceFailure => "letter.notification_failed",
        EvidenceEvent::ConsignmentAcceptance => "letter.accepted",
        EvidenceEvent::ConsignmentRejection => "letter.refused",
        EvidenceEvent::ContentHandover => "letter.content_handed_over",
        EvidenceEvent::AcceptanceRejectionExpiry => "letter.expired",
        EvidenceEvent::ContentDestruction => "letter.content_destroyed",
    }
}

fn identity_of(session: &SessionRow) -> IdentityInfo {
    IdentityInfo {
        method: session.method.clone(),
        assurance_level: session.assurance_level.clone(),
    }
}

fn parse_sender(letter: &LetterRow) -> Result<Sender, LifecycleError> {
    serde_json::from_str(&letter.sender).map_err(|_| LifecycleError::Corrupt(letter.id.clone()))
}

fn parse_recipient(letter: &LetterRow) -> Result<Recipient, LifecycleError> {
    serde_json::from_str(&letter.recipient).map_err(|_| LifecycleError::Corrupt(letter.id.clone()))
}

fn mailbox(recipient: &Recipient) -> Result<lettre::message::Mailbox, LifecycleError> {
    let address: lettre::Address =
        recipient.email.as_str().parse().map_err(|e| {
            LifecycleError::Mail(MailError::Invalid(format!("recipient address: {e}")))
        })?;
    Ok(lettre::message::Mailbox::new(
        Some(recipient.name.clone()),
        address,
    ))
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_codes_are_stable_distinct_and_forgiving_when_typed() {
        let key = |b: u8| hmac::Key::new(hmac::HMAC_SHA256, &[b; 32]);
        let keys = RecipientKeys {
            token: key(1),
            otp: key(2),
            client: key(3),
        };
        let code = keys.verification_code("0190a1b2-0000-7000-8000-000000000001");
        assert_eq!(code.len(), 19);
        assert_eq!(code.matches('-').count(), 3);
        assert!(
            code.chars()
                .all(|c| c == '-' || CROCKFORD.contains(&(c as u8)))
        );
        assert_eq!(
            code,
            keys.verification_code("0190a1b2-0000-7000-8000-000000000001")
        );
        assert_ne!(
            code,
            keys.verification_code("0190a1b2-0000-7000-8000-000000000002")
        );
        let other = RecipientKeys {
            token: key(9),
            otp: key(2),
            client: key(3),
        };
        assert_ne!(
            code,
            other.verification_code("0190a1b2-0000-7000-8000-000000000001")
        );
        let id = "0190a1b2-0000-7000-8000-000000000001";
        assert!(keys.check_verification_code(id, &code));
        let typed = code.replace('-', " ").to_lowercase().replace('0', "o");
        assert!(keys.check_verification_code(id, &typed), "{typed}");
        assert!(!keys.check_verification_code(id, &code[..18]));
        assert!(!keys.check_verification_code(id, ""));
        assert!(!other.check_verification_code(id, &code));
    }
}
