//! The registered-letter lifecycle after deposit (docs/EVIDENCE.md, events): notification, reminders,
//! recipient identification, acceptance or refusal, content handover, non-claim, bounces.
//!
//! Every step that changes a letter seals and timestamps its evidence first, then writes the
//! state change, the evidence and the jobs it causes in one transaction guarded by the letter's
//! chain head ([`Transition`]): a step either happens once, with its evidence, or not at all.
//! Work that leaves the process goes through the outbox and is retried until done.

use std::sync::Arc;

use base64::Engine;
use ring::hmac;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::app::api_key::random_bytes;
use crate::core::clock::{Clock, from_unix_micros, rfc3339_micros, unix_micros};
use crate::core::evidence::{
    ContentItem, EVIDENCE_VERSION, EvidenceError, EvidenceEvent, EvidenceRecord, IdentityInfo,
    PartyInfo, SealedEvidence, hex_digest,
};
use crate::domain::identity::{EmailOneTimeCode, IdentityProvider};
use crate::domain::letter::{LetterState, Recipient, Sender};
use crate::domain::window::{acceptance_window, last_minute, paris_english, paris_french};
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
    provider_name: String,
    reminder_days: Vec<i64>,
    claims: Arc<OutboxClaims>,
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
        provider_name: String,
        reminder_days: Vec<i64>,
    ) -> Self {
        Lifecycle {
            storage,
            sealer,
            clock,
            mailer,
            keys,
            public_url,
            provider_name,
            reminder_days,
            claims: Arc::default(),
        }
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

    // ----- outbox ---------------------------------------------------------------------------

    /// Claims and runs due jobs; returns how many were claimed.
    pub async fn run_due_jobs(&self, limit: i64) -> Result<usize, StorageError> {
        let now = self.clock.now();
        let jobs = self
            .storage
            .claim_jobs(
                unix_micros(now),
                JOB_LEASE.whole_microseconds() as i64,
                limit,
            )
            .await?;
        let claimed = jobs.len();
        let lease_until = unix_micros(now) + JOB_LEASE.whole_microseconds() as i64;
        self.claims
            .held()
            .extend(jobs.iter().map(|job| (job.id, (lease_until, false))));
        for job in jobs {
            if self
                .claims
                .stopping
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                // Stopping: the jobs not started stay held and are given back.
                break;
            }
            if let Some(claim) = self.claims.held().get_mut(&job.id) {
                claim.1 = true;
            }
            let outcome = match job.kind.as_str() {
                job::NOTIFY => self.notify(&job).await,
                job::REMIND => self.remind(&job).await,
                job::WEBHOOK_EVENT => self.announce(&job).await,
                job::NOTIFY_LETTERS => self.expand_notifications(&job).await,
                job::WEBHOOK_EVENTS => self.announce_many(&job).await,
                job::BATCH_EVENT => self.announce_batch(&job).await,
                other => {
                    tracing::error!(
                        job.id = job.id,
                        job.kind = other,
                        "unknown job kind; left in the outbox"
                    );
                    Ok(())
                }
            };
            if let Err(e) = outcome {
                // The lease makes the job due again; log and go on with the others.
                tracing::error!(job.id = job.id, job.kind = %job.kind, error = %e, "job failed; it will be retried");
            }
            self.claims.held().remove(&job.id);
        }
        Ok(claimed)
    }

    /// Makes the outbox passes stop after their current job (graceful shutdown).
    pub fn stop_claiming(&self) {
        self.claims
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Gives back every outbox claim this process still holds (jobs not run, or whose run
    /// was cut short at shutdown): they are due again at once for the next start or another
    /// instance. Returns how many were released.
    pub async fn release_claims(&self) -> Result<u64, StorageError> {
        let claims: Vec<(i64, i64, bool)> = self
            .claims
            .held()
            .drain()
            .map(|(id, (lease_until, started))| (id, lease_until, started))
            .collect();
        if claims.is_empty() {
            return Ok(0);
        }
        self.storage
            .release_jobs(&claims, unix_micros(self.clock.now()))
            .await
    }

    async fn notify(&self, job: &Job) -> Result<(), LifecycleError> {
        let now = self.clock.now();
        let Some(letter) = self.job_letter(job).await? else {
            return Ok(self.storage.complete_job(job.id, unix_micros(now)).await?);
        };
        if letter.state != LetterState::Deposited.as_str() {
            return Ok(self.storage.complete_job(job.id, unix_micros(now)).await?);
        }
        let recipient = parse_recipient(&letter)?;
        // Issue 12 §0: the message is built once and kept with the job, sealed, before its
        // first hand-over; every later attempt sends the kept bytes. A relay may take a
        // message and the process die before the evidence below commits: the copy the
        // recipient then holds is byte for byte the one whose Message-ID and SHA-256 the
        // evidence of the retry records. The deadline it states counts from when it was
        // built, and so does the evidence.
        let kept = match self.storage.job_mail(job.id).await? {
            Some(kept) => kept,
            None => {
                let window =
                    acceptance_window(now).map_err(|e| LifecycleError::Corrupt(e.to_string()))?;
                let mail = self.notification_mail(
                    &letter,
                    &recipient,
                    window.deadline,
                    None,
                    job.attempts,
                )?;
                let bytes = match self.mailer.build(&mail, Vec::new()) {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        self.notification_failed(
                            &letter,
                            "message",
                            &e.to_string(),
                            FailureDetail::None,
                            Some(job.id),
                        )
                        .await?;
                        return Ok(());
                    }
                };
                let kept = JobMail {
                    message_id: mail.message_id,
                    prepared_at: unix_micros(now),
                    bytes,
                };
                if !self
                    .storage
                    .keep_job_mail(job.id, job.attempts, &kept)
                    .await?
                {
                    // Claimed again meanwhile (this claim's lease ran out): the newer claim
                    // sends, never two different messages.
                    tracing::warn!(letter.id = %letter.id, job.id = job.id, "notification claimed by another worker");
                    return Ok(());
                }
                kept
            }
        };
        let built_at = from_unix_micros(kept.prepared_at);
        let window =
            acceptance_window(built_at).map_err(|e| LifecycleError::Corrupt(e.to_string()))?;
        let to = mailbox(&recipient)?.email;
        let envelope_from = self.bounce_address(&letter.id)?;
        match self
            .mailer
            .send_bytes(&envelope_from, &to, &kept.message_id, &kept.bytes)
            .await
        {
            Ok(sent) => {
                let mut details = Map::new();
                details.insert(
                    "notification".into(),
                    json!({
                        "message_id": sent.message_id,
                        "message_sha256": hex::encode(sent.message_sha256),
                        "relay_reply": sent.relay_reply,
                        "transport": sent.transport,
                        "attempt": job.attempts,
                        "handed_over_from": rfc3339_micros(built_at),
                    }),
                );
                details.insert(
                    "deadline".into(),
                    Value::String(rfc3339_micros(window.deadline)),
                );
                details.insert("deadline_rule".into(), Value::String(window.rule.clone()));
                let reminders = self
                    .reminder_days
                    .iter()
                    .filter(|d| **d > 0 && **d < crate::domain::window::WINDOW_DAYS)
                    .map(|day| NewJob {
                        kind: job::REMIND.into(),
                        letter_id: Some(letter.id.clone()),
                        payload: json!({ "day": day }).to_string(),
                        run_after: unix_micros(now + time::Duration::days(*day)),
                    })
                    .collect();
                let applied = self
                    .transition(
                        &letter,
                        EvidenceEvent::NotificationForAcceptance,
                        vec![LetterState::Deposited.as_str()],
                        LetterState::Notified.as_str(),
                        details,
                        None,
                        LetterUpdate {
                            notified_at: Some(kept.prepared_at),
                            deadline: Some(unix_micros(window.deadline)),
                            recipient_token_sha256: Some(sha256_hex(
                                self.recipient_token(&letter.id).as_bytes(),
                            )),
                            ..LetterUpdate::default()
                        },
                        reminders,
                        Some(job.id),
                    )
                    .await?;
                if applied.is_none() {
                    self.storage
                        .complete_job(job.id, unix_micros(self.clock.now()))
                        .await?;
                }
                tracing::info!(letter.id = %letter.id, "notification handed to the relay");
                Ok(())
            }
            Err(error @ (MailError::Transient(_) | MailError::Deferred(_)))
                if job.attempts < NOTIFY_MAX_ATTEMPTS =>
            {
                // 30 s, 1 min, 2 min … capped at one hour between attempts.
                let delay =
                    time::Duration::seconds((30i64 << (job.attempts - 1).clamp(0, 7)).min(3600));
                let reason = error.to_string();
                tracing::warn!(letter.id = %letter.id, attempt = job.attempts, error = %reason, "notification deferred");
                let run_after = unix_micros(now + delay);
                if matches!(error, MailError::Deferred(_)) {
                    // Surely not taken: no copy exists, the next attempt builds a fresh
                    // message (its deadline counted from then).
                    self.storage
                        .retry_job_without_mail(job.id, run_after, &reason)
                        .await?;
                } else {
                    // Perhaps taken: the next attempt resends these very bytes.
                    self.storage.retry_job(job.id, run_after, &reason).await?;
                }
                Ok(())
            }
            Err(error) => {
                let (source, reason) = match &error {
                    MailError::Transient(r) | MailError::Deferred(r) => (
                        "retries-exhausted",
                        format!("gave up after {} attempts: {r}", job.attempts),
                    ),
                    MailError::Permanent(r) => ("smtp", r.clone()),
                    MailError::Invalid(r) => ("message", r.clone()),
                };
                self.notification_failed(
                    &letter,
                    source,
                    &reason,
                    FailureDetail::Offered(&kept),
                    Some(job.id),
                )
                .await?;
                Ok(())
            }
        }
    }

    async fn remind(&self, job: &Job) -> Result<(), LifecycleError> {
        let now = self.clock.now();
        let letter = self.job_letter(job).await?;
        let due = letter.as_ref().filter(|l| {
            l.state == LetterState::Notified.as_str()
                && l.deadline.is_some_and(|d| d > unix_micros(now))
        });
        let Some(letter) = due else {
            // Decided, expired or failed meanwhile: no reminder after a decision.
            return Ok(self.storage.complete_job(job.id, unix_micros(now)).await?);
        };
        let day = serde_json::from_str::<Value>(&job.payload)
            .ok()
            .and_then(|v| v["day"].as_i64())
            .unwrap_or(0);
        let recipient = parse_recipient(letter)?;
        let deadline = from_unix_micros(letter.deadline.unwrap_or_default());
        let mail = self.notification_mail(letter, &recipient, deadline, Some(day), job.attempts)?;
        match self.mailer.send(mail).await {
            Ok(_) => {
                tracing::info!(letter.id = %letter.id, day, "reminder sent");
                Ok(self.storage.complete_job(job.id, unix_micros(now)).await?)
            }
            Err(MailError::Transient(reason) | MailError::Deferred(reason))
                if job.attempts < NOTIFY_MAX_ATTEMPTS =>
            {
                Ok(self
                    .storage
                    .retry_job(
                        job.id,
                        unix_micros(now + time::Duration::minutes(5)),
                        &reason,
                    )
                    .await?)
            }
            Err(e) => {
                tracing::warn!(letter.id = %letter.id, error = %e, "reminder not delivered");
                Ok(self.storage.complete_job(job.id, unix_micros(now)).await?)
            }
        }
    }

    async fn announce(&self, job: &Job) -> Result<(), LifecycleError> {
        let now = self.clock.now();
        match serde_json::from_str::<crate::app::webhook::WebhookEvent>(&job.payload) {
            Ok(event) => {
                crate::app::webhook::fan_out(&self.storage, &event, now).await?;
            }
            Err(e) => {
                tracing::error!(job.id = job.id, error = %e, "unreadable webhook event dropped")
            }
        }
        Ok(self.storage.complete_job(job.id, unix_micros(now)).await?)
    }

    async fn expand_notifications(&self, job: &Job) -> Result<(), LifecycleError> {
        let now = self.clock.now();
        let letters: Vec<String> = serde_json::from_str::<Value>(&job.payload)
            .ok()
            .and_then(|v| serde_json::from_value(v["letters"].clone()).ok())
            .unwrap_or_default();
        let jobs: Vec<NewJob> = letters
            .into_iter()
            .map(|id| NewJob {
                kind: job::NOTIFY.into(),
                letter_id: Some(id),
                payload: "{}".into(),
                run_after: unix_micros(now),
            })
            .collect();
        // The per-letter jobs and the completion of this one commit together: a crash
        // between them can neither lose a notification nor queue it twice.
        Ok(self
            .storage
            .replace_job(job.id, &jobs, unix_micros(now))
            .await?)
    }

    async fn announce_many(&self, job: &Job) -> Result<(), LifecycleError> {
        let now = self.clock.now();
        match serde_json::from_str::<crate::app::webhook::WebhookEvents>(&job.payload) {
            Ok(events) => {
                crate::app::webhook::fan_out_many(&self.storage, &events, now).await?;
            }
            Err(e) => {
                tracing::error!(job.id = job.id, error = %e, "unreadable webhook events dropped")
            }
        }
        Ok(self.storage.complete_job(job.id, unix_micros(now)).await?)
    }

    async fn announce_batch(&self, job: &Job) -> Result<(), LifecycleError> {
        let now = self.clock.now();
        match serde_json::from_str::<crate::app::webhook::BatchEvent>(&job.payload) {
            Ok(event) => {
                crate::app::webhook::fan_out_batch(&self.storage, &event, now).await?;
            }
            Err(e) => {
                tracing::error!(job.id = job.id, error = %e, "unreadable batch event dropped")
            }
        }
        Ok(self.storage.complete_job(job.id, unix_micros(now)).await?)
    }

    async fn job_letter(&self, job: &Job) -> Result<Option<LetterRow>, LifecycleError> {
        match &job.letter_id {
            Some(id) => Ok(self.storage.letter_by_id(id).await?),
            None => Ok(None),
        }
    }

    /// Records that the notification cannot reach the recipient (SMTP refusal, bounce).
    async fn notification_failed(
        &self,
        letter: &LetterRow,
        source: &str,
        reason: &str,
        detail: FailureDetail<'_>,
        completes_job: Option<i64>,
    ) -> Result<Option<SealedEvidence>, LifecycleError> {
        let mut details = Map::new();
        let mut failure = json!({ "source": source, "reason": reason });
        match detail {
            FailureDetail::None => {}
            FailureDetail::DsnStatus(status) => {
                failure["dsn_status"] = Value::String(status.to_string());
            }
            FailureDetail::Offered(mail) => {
                // An earlier attempt of these very bytes may have been taken just before a
                // crash: the failure names the one message any such copy can be.
                failure["message_id"] = Value::String(mail.message_id.clone());
                failure["message_sha256"] = Value::String(sha256_hex(&mail.bytes));
            }
        }
        details.insert("failure".into(), failure);
        let sealed = self
            .transition(
                letter,
                EvidenceEvent::NotificationForAcceptanceFailure,
                vec![
                    LetterState::Deposited.as_str(),
                    LetterState::Notified.as_str(),
                ],
                LetterState::NotificationFailed.as_str(),
                details,
                None,
                LetterUpdate::default(),
                Vec::new(),
                completes_job,
            )
            .await?;
        if sealed.is_some() {
            tracing::warn!(letter.id = %letter.id, source, reason, "notification failed");
        } else if let Some(job) = completes_job {
            self.storage
                .complete_job(job, unix_micros(self.clock.now()))
                .await?;
        }
        Ok(sealed)
    }

    // ----- non-claim ------------------------------------------------------------------------

    /// Issues `AcceptanceRejectionExpiry` for letters whose window has ended (the non-claim
    /// proof, CPCE R.53-3 II). Exactly once per letter: the transition is guarded by state
    /// and chain head, so concurrent sweeps (several instances) cannot both succeed.
    pub async fn expire_due(&self, limit: i64) -> Result<usize, LifecycleError> {
        let now = self.clock.now();
        let ids = self
            .storage
            .letters_past_deadline(unix_micros(now), limit)
            .await?;
        let mut expired = 0;
        for id in ids {
            let Some(letter) = self.storage.letter_by_id(&id).await? else {
                continue;
            };
            let (Some(deadline), Some(notified_at)) = (letter.deadline, letter.notified_at) else {
                continue;
            };
            let window = acceptance_window(from_unix_micros(notified_at))
                .map_err(|e| LifecycleError::Corrupt(e.to_string()))?;
            let mut details = Map::new();
            details.insert(
                "deadline".into(),
                Value::String(rfc3339_micros(from_unix_micros(deadline))),
            );
            details.insert("deadline_rule".into(), Value::String(window.rule));
            details.insert(
                "notified_at".into(),
                Value::String(rfc3339_micros(from_unix_micros(notified_at))),
            );
            let sealed = self
                .transition(
                    &letter,
                    EvidenceEvent::AcceptanceRejectionExpiry,
                    vec![LetterState::Notified.as_str()],
                    LetterState::Expired.as_str(),
                    details,
                    None,
                    LetterUpdate::default(),
                    Vec::new(),
                    None,
                )
                .await?;
            if sealed.is_some() {
                expired += 1;
                tracing::info!(letter.id = %letter.id, "acceptance window ended: non-claim recorded");
            }
        }
        Ok(expired)
    }

    // ----- retention ------------------------------------------------------------------------

    /// Seals `ContentDestruction` for a letter whose retention period has ended (CPCE
    /// R.53-3): its state stays, the evidence chain gets its last record. Refuses a letter
    /// still within its retention period or on legal hold. Returns whether the record was
    /// added (not when the chain moved concurrently).
    pub async fn record_content_destruction(
        &self,
        letter: &LetterRow,
    ) -> Result<bool, LifecycleError> {
        let now = unix_micros(self.clock.now());
        if letter.retain_until > now || letter.legal_hold_since.is_some() {
            // CPCE R.53-2/R.53-3: nothing may destroy the content before then.
            return Err(LifecycleError::Conflict(format!(
                "letter {} is within its retention period (until {}) or on legal hold",
                letter.id,
                rfc3339_micros(from_unix_micros(letter.retain_until))
            )));
        }
        let state = LetterState::parse(&letter.state)
            .ok_or_else(|| LifecycleError::Corrupt(letter.id.clone()))?
            .as_str();
        let mut details = Map::new();
        details.insert(
            "retain_until".into(),
            Value::String(rfc3339_micros(from_unix_micros(letter.retain_until))),
        );
        details.insert(
            "legal_basis".into(),
            Value::String("CPCE R.53-3: retention period ended, no legal hold".into()),
        );
        details.insert(
            "method".into(),
            Value::String(
                "crypto-shredding: the documents' data keys are destroyed as soon as no other \
                 letter within its retention period uses the same bytes; evidence is kept"
                    .into(),
            ),
        );
        let sealed = self
            .transition(
                letter,
                EvidenceEvent::ContentDestruction,
                vec![state],
                state,
                details,
                None,
                LetterUpdate::default(),
                Vec::new(),
                None,
            )
            .await?;
        Ok(sealed.is_some())
    }

    // ----- bounces --------------------------------------------------------------------------

    /// Applies an asynchronous delivery status notification (RFC 3464). Returns the letter it
    /// concerned, or `None` when it names none of ours or reports no permanent failure.
    pub async fn record_bounce(&self, dsn: &str) -> Result<Option<String>, LifecycleError> {
        let Some(report) = crate::domain::bounce::parse(dsn, self.mailer.domain()) else {
            return Ok(None);
        };
        if !report.permanent {
            return Ok(None);
        }
        let Some(letter) = self.storage.letter_by_id(&report.letter_id).await? else {
            return Ok(None);
        };
        let reason = report
            .diagnostic
            .clone()
            .unwrap_or_else(|| format!("delivery status {}", report.status));
        let recorded = self
            .notification_failed(
                &letter,
                "bounce",
                &reason,
                FailureDetail::DsnStatus(&report.status),
                None,
            )
            .await?;
        Ok(recorded.map(|_| letter.id))
    }

    // ----- recipient side -------------------------------------------------------------------

    /// The letter behind a link, as its recipient may see it.
    pub async fn recipient_letter(&self, token: &str) -> Result<RecipientLetter, LifecycleError> {
        let letter = self.letter_for_token(token).await?;
        let recipient = parse_recipient(&letter)?;
        let decided = matches!(
            LetterState::parse(&letter.state),
            Some(LetterState::Accepted | LetterState::Refused)
        );
        let sender = if decided {
            Some(parse_sender(&letter)?)
        } else {
            None
        };
        let documents = self.storage.letter_documents(&letter.id).await?;
        let evidence = if decided {
            self.storage.evidence_of_letter(&letter.id).await?
        } else {
            Vec::new()
        };
        Ok(RecipientLetter {
            letter,
            documents,
            sender,
            recipient,
            evidence,
        })
    }

    /// Sends a one-time code to the notified address.
    pub async fn send_code(&self, token: &str) -> Result<CodeSent, LifecycleError> {
        let letter = self.letter_for_token(token).await?;
        let state = LetterState::parse(&letter.state);
        if !matches!(
            state,
            Some(LetterState::Notified | LetterState::Accepted | LetterState::Refused)
        ) {
            return Err(LifecycleError::Conflict(format!(
                "the letter is {}: nothing to identify for",
                letter.state
            )));
        }
        let now = self.clock.now();
        if let Some(until) = self.storage.otp_lock(&letter.id, unix_micros(now)).await? {
            return Err(LifecycleError::Locked {
                until: from_unix_micros(until),
            });
        }
        let hour_ago = unix_micros(now - time::Duration::hours(1));
        if self.storage.otp_count_since(&letter.id, hour_ago).await? >= OTP_MAX_PER_HOUR {
            return Err(LifecycleError::TooManyCodes);
        }
        let code = six_digit_code();
        let expires_at = now + OTP_VALIDITY;
        let recipient = parse_recipient(&letter)?;
        let to = mailbox(&recipient)?;
        let mail = OutgoingMail {
            to,
            subject: "Votre code de vérification / Your verification code".into(),
            body: otp_body(&self.provider_name, &letter.id, &code, expires_at),
            message_id: format!(
                "lre.{}.otp.{}@{}",
                letter.id,
                hex::encode(random_bytes::<6>()),
                self.mailer.domain()
            ),
            // Not the letter's VERP address: a bounced code mail says nothing about the
            // delivery of the notification.
            envelope_from: format!("bounces+otp.{}@{}", letter.id, self.mailer.domain())
                .parse()
                .map_err(|e| {
                    LifecycleError::Mail(MailError::Invalid(format!("bounce address: {e}")))
                })?,
        };
        // Stored before it is sent: a code that reached the mailbox always works.
        self.storage
            .insert_otp(
                &uuid::Uuid::now_v7().to_string(),
                &letter.id,
                &self.otp_hmac(&letter.id, &code),
                unix_micros(now),
                unix_micros(expires_at),
            )
            .await?;
        self.mailer.send(mail).await?;
        Ok(CodeSent {
            sent_to: mask_address(recipient.email.as_str()),
            expires_at,
        })
    }

    /// Checks a code and opens a session.
    pub async fn open_session(
        &self,
        token: &str,
        code: &str,
    ) -> Result<OpenedSession, LifecycleError> {
        let letter = self.letter_for_token(token).await?;
        let now = self.clock.now();
        if let Some(until) = self.storage.otp_lock(&letter.id, unix_micros(now)).await? {
            return Err(LifecycleError::Locked {
                until: from_unix_micros(until),
            });
        }
        let code = code.trim();
        let candidates = self
            .storage
            .valid_otps(&letter.id, unix_micros(now))
            .await?;
        let matching = candidates.iter().find(|(_, stored)| {
            hex::decode(stored)
                .map(|tag| {
                    hmac::verify(
                        &self.keys.otp,
                        otp_message(&letter.id, code).as_bytes(),
                        &tag,
                    )
                    .is_ok()
                })
                .unwrap_or(false)
        });
        let Some((otp_id, _)) = matching else {
            let failure = self
                .storage
                .record_otp_failure(&letter.id, OTP_MAX_FAILURES, unix_micros(now + OTP_LOCK))
                .await?;
            return Err(match failure.locked_until {
                Some(until) => LifecycleError::Locked {
                    until: from_unix_micros(until),
                },
                None => LifecycleError::WrongCode {
                    remaining: OTP_MAX_FAILURES - failure.failures,
                },
            });
        };
        let identification = EmailOneTimeCode.identification();
        let session_token =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let expires_at = now + SESSION_VALIDITY;
        let session = SessionRow {
            token_sha256: sha256_hex(session_token.as_bytes()),
            letter_id: letter.id.clone(),
            method: identification.method,
            assurance_level: identification.assurance_level.as_str().into(),
            created_at: unix_micros(now),
            expires_at: unix_micros(expires_at),
        };
        if !self.storage.open_session(otp_id, &session).await? {
            return Err(LifecycleError::WrongCode {
                remaining: OTP_MAX_FAILURES,
            });
        }
        Ok(OpenedSession {
            token: session_token,
            expires_at,
        })
    }

    /// Whether `session_token` is a valid session for `letter` (the pages offer the decision
    /// and the downloads only then).
    pub async fn is_identified(
        &self,
        letter: &LetterRow,
        session_token: &str,
    ) -> Result<bool, LifecycleError> {
        match self.session_for(letter, session_token).await {
            Ok(_) => Ok(true),
            Err(LifecycleError::Unauthenticated(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Accepts or refuses the letter. Final: a second decision, or any decision after the
    /// window, is a conflict.
    pub async fn decide(
        &self,
        token: &str,
        session_token: &str,
        decision: Decision,
        client: &ClientInfo,
    ) -> Result<RecipientLetter, LifecycleError> {
        let letter = self.letter_for_token(token).await?;
        let session = self.session_for(&letter, session_token).await?;
        let now = self.clock.now();
        if letter.state != LetterState::Notified.as_str() {
            return Err(LifecycleError::Conflict(format!(
                "the letter is already {}; a decision is final",
                letter.state
            )));
        }
        if letter.deadline.is_some_and(|d| unix_micros(now) >= d) {
            return Err(LifecycleError::Conflict(
                "the acceptance window has ended (CPCE R.53-3); the letter is unclaimed".into(),
            ));
        }
        let (event, to) = match decision {
            Decision::Accept => (EvidenceEvent::ConsignmentAcceptance, LetterState::Accepted),
            Decision::Refuse => (EvidenceEvent::ConsignmentRejection, LetterState::Refused),
        };
        let mut details = self.identification_details(&session, client);
        if let Some(deadline) = letter.deadline {
            details.insert(
                "deadline".into(),
                Value::String(rfc3339_micros(from_unix_micros(deadline))),
            );
        }
        let sealed = self
            .transition(
                &letter,
                event,
                vec![LetterState::Notified.as_str()],
                to.as_str(),
                details,
                Some(identity_of(&session)),
                LetterUpdate {
                    decided_at: Some(unix_micros(now)),
                    ..LetterUpdate::default()
                },
                Vec::new(),
                None,
            )
            .await?;
        if sealed.is_none() {
            let current = self
                .storage
                .letter_by_id(&letter.id)
                .await?
                .map(|l| l.state)
                .unwrap_or_default();
            return Err(LifecycleError::Conflict(format!(
                "the letter is already {current}; a decision is final"
            )));
        }
        tracing::info!(letter.id = %letter.id, decision = ?decision, "recipient decided");
        self.recipient_letter(token).await
    }

    /// Hands a document of an accepted letter to its recipient; the first download writes
    /// `ContentHandover` evidence.
    pub async fn hand_over(
        &self,
        token: &str,
        session_token: &str,
        document_id: &str,
        client: &ClientInfo,
    ) -> Result<DocumentRow, LifecycleError> {
        let letter = self.letter_for_token(token).await?;
        let session = self.session_for(&letter, session_token).await?;
        if letter.state != LetterState::Accepted.as_str() {
            return Err(LifecycleError::Conflict(
                "the content is available only after the letter is accepted".into(),
            ));
        }
        let documents = self.storage.letter_documents(&letter.id).await?;
        let Some(document) = documents.into_iter().find(|d| d.id == document_id) else {
            return Err(LifecycleError::NotFound);
        };
        let mut letter = letter;
        for _ in 0..3 {
            if letter.content_handed_over_at.is_some() {
                break;
            }
            let mut details = self.identification_details(&session, client);
            details.insert(
                "document".into(),
                json!({ "id": document.id, "name": document.filename, "sha256": document.sha256 }),
            );
            let now = self.clock.now();
            let sealed = self
                .transition(
                    &letter,
                    EvidenceEvent::ContentHandover,
                    vec![LetterState::Accepted.as_str()],
                    LetterState::Accepted.as_str(),
                    details,
                    Some(identity_of(&session)),
                    LetterUpdate {
                        content_handed_over_at: Some(unix_micros(now)),
                        ..LetterUpdate::default()
                    },
                    Vec::new(),
                    None,
                )
                .await?;
            if sealed.is_some() {
                break;
            }
            // Someone else extended the chain meanwhile (a concurrent first download): re-read.
            letter = self
                .storage
                .letter_by_id(&letter.id)
                .await?
                .ok_or(LifecycleError::NotFound)?;
        }
        Ok(document)
    }

    async fn letter_for_token(&self, token: &str) -> Result<LetterRow, LifecycleError> {
        if token.len() != 43
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(LifecycleError::NotFound);
        }
        self.storage
            .letter_by_recipient_token(&sha256_hex(token.as_bytes()))
            .await?
            .ok_or(LifecycleError::NotFound)
    }

    async fn session_for(
        &self,
        letter: &LetterRow,
        session_token: &str,
    ) -> Result<SessionRow, LifecycleError> {
        let now = unix_micros(self.clock.now());
        match self
            .storage
            .session(&sha256_hex(session_token.as_bytes()), now)
            .await?
        {
            Some(s) if s.letter_id == letter.id => Ok(s),
            _ => Err(LifecycleError::Unauthenticated(
                "identify first: request a code, then open a session with it".into(),
            )),
        }
    }

    fn identification_details(
        &self,
        session: &SessionRow,
        client: &ClientInfo,
    ) -> Map<String, Value> {
        let mut details = Map::new();
        details.insert(
            "identification".into(),
            json!({
                "method": session.method,
                "assurance_level": session.assurance_level,
                "session_opened_at": rfc3339_micros(from_unix_micros(session.created_at)),
            }),
        );
        let mut c = Map::new();
        if let Some(ip) = &client.ip {
            // Personal data minimised: a keyed hash proves "same address" without keeping it.
            let tag = hmac::sign(&self.keys.client, ip.as_bytes());
            c.insert(
                "ip_hmac_sha256".into(),
                Value::String(hex::encode(tag.as_ref())),
            );
        }
        if let Some(agent) = &client.user_agent {
            c.insert(
                "user_agent".into(),
                Value::String(agent.chars().take(300).collect()),
            );
        }
        details.insert("client".into(), Value::Object(c));
        details
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
            evidence: NewEvidence {
                id: sealed.record.evidence_id.clone(),
                letter_id: letter.id.clone(),
                event: event.name().to_string(),
                event_time: at,
                record: sealed.bytes.clone(),
                record_sha256: hex_digest(&sealed.sha256),
                seal: sealed.seal.clone(),
                timestamp_token: sealed.timestamp_token.clone(),
                created_at: at,
            },
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

    fn otp_hmac(&self, letter_id: &str, code: &str) -> String {
        hex::encode(hmac::sign(&self.keys.otp, otp_message(letter_id, code).as_bytes()).as_ref())
    }

    fn bounce_address(&self, letter_id: &str) -> Result<lettre::Address, LifecycleError> {
        // VERP (variable envelope return path): bounces come back to an address naming the letter.
        format!("bounces+{letter_id}@{}", self.mailer.domain())
            .parse()
            .map_err(|e| LifecycleError::Mail(MailError::Invalid(format!("bounce address: {e}"))))
    }

    fn notification_mail(
        &self,
        letter: &LetterRow,
        recipient: &Recipient,
        deadline: OffsetDateTime,
        reminder_day: Option<i64>,
        attempt: i64,
    ) -> Result<OutgoingMail, LifecycleError> {
        let kind = match reminder_day {
            Some(day) => format!("remind{day}"),
            None => "notify".into(),
        };
        Ok(OutgoingMail {
            to: mailbox(recipient)?,
            // CPCE R.53-3: fixed by the service; never the sender's words or name.
            subject: match reminder_day {
                None => "Lettre recommandée électronique en attente / Electronic registered letter awaiting you".into(),
                Some(_) => "Rappel : lettre recommandée électronique en attente / Reminder: electronic registered letter awaiting you".into(),
            },
            body: notification_body(
                &self.provider_name,
                &recipient.name,
                &letter.id,
                deadline,
                &self.recipient_link(&letter.id),
                reminder_day.is_some(),
            ),
            message_id: format!("lre.{}.{kind}.{attempt}@{}", letter.id, self.mailer.domain()),
            envelope_from: self.bounce_address(&letter.id)?,
        })
    }
}

/// What a notification failure records besides its source and reason.
enum FailureDetail<'a> {
    /// Nothing more.
    None,
    /// The RFC 3463 status of a bounce.
    DsnStatus(&'a str),
    /// The message the relay was offered (kept with the job).
    Offered(&'a JobMail),
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

fn otp_message(letter_id: &str, code: &str) -> String {
    format!("{letter_id}:{code}")
}

/// A uniformly random 6-digit code (rejection sampling: no modulo bias).
fn six_digit_code() -> String {
    loop {
        let n = u32::from_be_bytes(random_bytes::<4>());
        // 4,294,000,000 is the largest multiple of 1,000,000 below 2^32.
        if n < 4_294_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The notification (or reminder) text: French, then English. It names the provider, the
/// letter id, the deadline and the link — and never the sender (CPCE R.53-3).
fn notification_body(
    provider: &str,
    recipient_name: &str,
    letter_id: &str,
    deadline: OffsetDateTime,
    link: &str,
    reminder: bool,
) -> String {
    let last = last_minute(deadline);
    let (fr_intro, en_intro) = if reminder {
        (
            "Rappel : une lettre recommandée électronique vous attend toujours.",
            "Reminder: an electronic registered letter is still waiting for you.",
        )
    } else {
        (
            "Une lettre recommandée électronique vous a été adressée.",
            "An electronic registered letter has been sent to you.",
        )
    };
    format!(
        "Bonjour {recipient_name},\n\n\
         {fr_intro}\n\
         Prestataire : {provider}\n\
         Identifiant de la lettre : {letter_id}\n\n\
         Une lettre recommandée électronique a la même valeur qu'une lettre recommandée papier \
         (article L.100 du code des postes et des communications électroniques). \
         L'identité de l'expéditeur vous sera communiquée dès que vous aurez accepté ou refusé la lettre.\n\n\
         Vous pouvez l'accepter ou la refuser jusqu'au {fr_deadline} (heure de Paris), soit quinze jours \
         à compter du lendemain de la première notification. Passé ce délai, la lettre sera considérée \
         comme non réclamée.\n\n\
         Pour vous identifier et accepter ou refuser la lettre :\n{link}\n\n\
         ----------------------------------------------------------------------\n\n\
         Hello {recipient_name},\n\n\
         {en_intro}\n\
         Provider: {provider}\n\
         Letter id: {letter_id}\n\n\
         An electronic registered letter has the same legal value as a paper registered letter \
         in France. The sender's identity will be shown to you as soon as you accept or refuse \
         the letter.\n\n\
         You may accept or refuse it until {en_deadline}, fifteen days from the day after the first \
         notification. After that, the letter will be recorded as unclaimed.\n\n\
         To identify yourself and accept or refuse the letter:\n{link}\n",
        fr_deadline = paris_french(last),
        en_deadline = paris_english(last),
    )
}

fn otp_body(provider: &str, letter_id: &str, code: &str, expires_at: OffsetDateTime) -> String {
    format!(
        "Votre code de vérification pour la lettre {letter_id} ({provider}) : {code}\n\
         Il est valable jusqu'au {fr} (heure de Paris). Ne le communiquez à personne.\n\n\
         Your verification code for letter {letter_id} ({provider}): {code}\n\
         It is valid until {en}. Do not share it with anyone.\n",
        fr = paris_french(expires_at),
        en = paris_english(expires_at),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_mail_states_paris_time_in_french_as_in_english() {
        // 8 December 2026, 22:59 UTC is 23:59 in Paris (UTC+01:00 in winter).
        let expires_at = time::macros::datetime!(2026-12-08 22:59 UTC);
        let body = otp_body("Recommande", "L-1", "ABCD-EFGH", expires_at);
        assert!(
            body.contains("valable jusqu'au 8 décembre 2026 à 23:59 (heure de Paris)."),
            "{body}"
        );
        assert!(body.contains("valid until 8 December 2026, 23:59 (Paris time)."));
    }

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

    #[test]
    fn codes_have_six_digits() {
        for _ in 0..1000 {
            let c = six_digit_code();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn the_notification_text_names_no_sender_and_gives_the_deadline() {
        let body = notification_body(
            "recommande",
            "SARL Débitrice",
            "0192-letter",
            time::macros::datetime!(2026-12-08 23:00 UTC),
            "http://localhost/r/abc",
            false,
        );
        assert!(body.contains("8 décembre 2026 à 23:59"), "{body}");
        assert!(
            body.contains("8 December 2026, 23:59 (Paris time)"),
            "{body}"
        );
        assert!(body.contains("http://localhost/r/abc"));
        assert!(body.contains("0192-letter"));
    }
}
