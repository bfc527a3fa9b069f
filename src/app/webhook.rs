//! Webhooks: the sender is told of each step of its letters (docs/API.md, webhooks).
//!
//! An event is fanned out into one delivery row per subscribed webhook of the tenant
//! ([`fan_out`], idempotent), then workers send due deliveries ([`deliver_due`]) — at least
//! once: a receiver may see a delivery twice and de-duplicates on `Recommande-Delivery`.
//!
//! Each POST carries:
//! - the Standard Webhooks headers `webhook-id` (the delivery id), `webhook-timestamp` and
//!   `webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>." ‖ body)>`
//!   ([`standard_signature`], [`standard_key`]); after a rotation of the secret, one
//!   signature per valid secret, space-separated, until the previous secret's overlap ends;
//! - (deprecated, kept for existing receivers) `Recommande-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." ‖ body)>`, so
//!   the receiver checks origin and integrity, and refuses stale replays by `t`;
//! - `Recommande-Event` (e.g. `letter.notified`) and `Recommande-Delivery` (the delivery id);
//! - a JSON body `{"id","event","letter_id","evidence_id","occurred_at"}` (for a batch:
//!   `{"id","event","batch_id","state","occurred_at"}`) and nothing else:
//!   no personal data of the recipient or the sender ever leaves in a webhook, the receiver
//!   reads the letter through the authenticated API.
//!
//! Success is any 2xx answer within [`ATTEMPT_TIMEOUT`]; redirects are not followed (a
//! redirect is a failure, so a webhook cannot be bounced to an address nobody registered).
//! Failures are retried with exponential backoff ([`retry_delay`]) until [`RETRY_WINDOW`]
//! after the first attempt, then the delivery is marked failed.
//!
//! Every POST goes through [`crate::infra::net_guard::Outbound`]: a URL naming or resolving to a
//! non-public address is refused (issue 12 §3), and a tenant reads only `unreachable`,
//! `refused: address not public`, `timeout` or `HTTP <status>` of a failure.
//!
//! One tenant's slow receiver never delays another tenant's deliveries ([`Deliverer`]): the
//! worker does not wait for a pass's attempts before the next pass, each tenant has at most
//! [`PER_TENANT_CONCURRENCY`] attempts in flight, and a tenant at that bound gets no new
//! claims until one ends.

use std::sync::Arc;
use std::time::Duration;

use ring::rand::SecureRandom;
use serde::Serialize;
use time::OffsetDateTime;

use crate::app::worker::{BoxFuture, Pass, Worker, WorkerError, spawn_one};
pub use crate::config::outbound::{MAX_URL_LEN, SECRET_LENGTH, check_secret, check_url};
use crate::core::clock::{Clock, unix_micros};
use crate::core::evidence::EvidenceEvent;
use crate::domain::letter::{FieldError, field_error};
use crate::infra::net_guard::{Outbound, OutboundPolicy};
use crate::infra::storage::{
    AttemptOutcome, ClaimedDelivery, DeliveryAttempt, NewDelivery, Storage, StorageError,
};

/// Every event a webhook can subscribe to.
pub const EVENTS: [&str; 9] = [
    "batch.completed",
    "letter.deposited",
    "letter.notified",
    "letter.notification_failed",
    "letter.accepted",
    "letter.refused",
    "letter.expired",
    "letter.content_destroyed",
    "letter.content_handed_over",
];

/// Name of the signature header.
pub const SIGNATURE_HEADER: &str = "Recommande-Signature";
/// Name of the event header.
pub const EVENT_HEADER: &str = "Recommande-Event";
/// Name of the delivery-id header.
pub const DELIVERY_HEADER: &str = "Recommande-Delivery";
/// How long a receiver has to answer one attempt (connection included).
pub const ATTEMPT_TIMEOUT: Duration = crate::infra::net_guard::ATTEMPT_TIMEOUT;
/// Attempts of one tenant in flight at once, at most.
pub const PER_TENANT_CONCURRENCY: usize = 4;
/// Retries stop this long after the first attempt.
pub const RETRY_WINDOW: time::Duration = time::Duration::hours(48);
/// Delay after the first failed attempt; it doubles with each further failure.
pub const FIRST_RETRY_DELAY: time::Duration = time::Duration::seconds(30);
/// Longest delay between two attempts.
pub const MAX_RETRY_DELAY: time::Duration = time::Duration::hours(6);
/// How long a claimed delivery stays reserved for the worker that claimed it: longer than
/// an attempt may last, so that two workers never send it at the same time; a worker that
/// dies leaves it to others once the lease ends.
pub const CLAIM_LEASE: time::Duration = time::Duration::seconds(60);

/// A lifecycle event to announce to the tenant's webhooks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebhookEvent {
    /// The tenant whose webhooks are told.
    pub tenant_id: String,
    /// The letter concerned.
    pub letter_id: String,
    /// Event name, one of [`EVENTS`] (`letter.notified`, …).
    pub event: String,
    /// The evidence record of this step.
    pub evidence_id: String,
    /// When it happened: RFC 3339 UTC with microseconds (the evidence's `event_time`).
    pub occurred_at: String,
}

/// One event of many letters (a batch chunk), announced by one outbox job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebhookEvents {
    /// The tenant whose webhooks are told.
    pub tenant_id: String,
    /// Event name, one of [`EVENTS`].
    pub event: String,
    /// When it happened (RFC 3339 UTC with microseconds), the same for every letter.
    pub occurred_at: String,
    /// (letter id, evidence id) of each letter.
    pub items: Vec<(String, String)>,
}

/// A batch reached a final state (`batch.completed`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchEvent {
    /// The tenant whose webhooks are told.
    pub tenant_id: String,
    /// The batch.
    pub batch_id: String,
    /// Event name (`batch.completed`).
    pub event: String,
    /// Final state: `completed`, `rejected` or `failed`.
    pub state: String,
    /// When it happened (RFC 3339 UTC with microseconds).
    pub occurred_at: String,
}

/// The body of a batch delivery, in this field order: counts and errors are read through
/// the API, never sent.
#[derive(Serialize)]
struct BatchPayload<'a> {
    id: &'a str,
    event: &'a str,
    batch_id: &'a str,
    state: &'a str,
    occurred_at: &'a str,
}

/// The webhook event announcing evidence of kind `event`, if senders are told of it
/// (a submission rejection is answered by the API itself, not by a webhook).
pub fn event_for_evidence(event: EvidenceEvent) -> Option<&'static str> {
    match event {
        EvidenceEvent::SubmissionAcceptance => Some("letter.deposited"),
        EvidenceEvent::SubmissionRejection => None,
        EvidenceEvent::NotificationForAcceptance => Some("letter.notified"),
        EvidenceEvent::NotificationForAcceptanceFailure => Some("letter.notification_failed"),
        EvidenceEvent::ConsignmentAcceptance => Some("letter.accepted"),
        EvidenceEvent::ConsignmentRejection => Some("letter.refused"),
        EvidenceEvent::ContentHandover => Some("letter.content_handed_over"),
        EvidenceEvent::AcceptanceRejectionExpiry => Some("letter.expired"),
        EvidenceEvent::ContentDestruction => Some("letter.content_destroyed"),
    }
}

/// The body of a delivery, in this field order. Deliberately free of personal data.
#[derive(Serialize)]
struct Payload<'a> {
    id: &'a str,
    event: &'a str,
    letter_id: &'a str,
    evidence_id: &'a str,
    occurred_at: &'a str,
}

/// A `POST /v1/webhooks` body whose every field has been checked.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    /// Absolute http(s) URL without credentials nor fragment.
    pub url: String,
    /// Signing secret, 16 to 256 visible characters; `None` when the client left it to us
    /// ([`generate_secret`]).
    pub secret: Option<String>,
    /// Subscribed events, a non-empty subset of [`EVENTS`] without repetition.
    pub events: Vec<String>,
}

// By hand, so that the secret cannot reach a log line (STYLE 11).
impl std::fmt::Debug for WebhookRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("events", &self.events)
            .finish()
    }
}

/// The fields of a `POST /v1/webhooks` body; any other is reported as unknown. The OpenAPI
/// schema `WebhookBody` lists the same ones (checked by the tests of `http::openapi`).
pub const WEBHOOK_FIELDS: &[&str] = &["url", "secret", "events"];

impl WebhookRequest {
    /// Checks a body, reporting **every** invalid field at once; the URL must be one
    /// `policy` lets deliveries reach ([`OutboundPolicy::check_url`]).
    pub fn parse(
        body: &serde_json::Value,
        policy: &OutboundPolicy,
    ) -> Result<WebhookRequest, Vec<FieldError>> {
        let Some(obj) = body.as_object() else {
            return Err(vec![field_error("", "the body must be a JSON object")]);
        };
        let mut errors = Vec::new();
        for key in obj.keys() {
            if !WEBHOOK_FIELDS.contains(&key.as_str()) {
                errors.push(field_error(key, "is not a known field"));
            }
        }
        let url = match obj.get("url") {
            None | Some(serde_json::Value::Null) => {
                errors.push(field_error(
                    "url",
                    "is required: the absolute http(s) URL to POST to",
                ));
                None
            }
            Some(serde_json::Value::String(s)) => match policy.check_url(s) {
                Ok(url) => Some(url),
                Err(message) => {
                    errors.push(field_error("url", &message));
                    None
                }
            },
            Some(_) => {
                errors.push(field_error("url", "must be a string"));
                None
            }
        };
        let secret = secret_field(obj, &mut errors);
        let mut events = Vec::new();
        let known = || EVENTS.join(", ");
        match obj.get("events") {
            None | Some(serde_json::Value::Null) => errors.push(field_error(
                "events",
                &format!("is required: a list of events among {}", known()),
            )),
            Some(serde_json::Value::Array(items)) => {
                if items.is_empty() {
                    errors.push(field_error("events", "must list at least one event"));
                }
                for (i, item) in items.iter().enumerate() {
                    let path = format!("events[{i}]");
                    match item.as_str() {
                        Some(name) if EVENTS.contains(&name) => {
                            if events.iter().any(|e| e == name) {
                                errors.push(field_error(&path, "is listed twice"));
                            } else {
                                events.push(name.to_string());
                            }
                        }
                        _ => {
                            errors.push(field_error(&path, &format!("must be one of {}", known())))
                        }
                    }
                }
            }
            Some(_) => errors.push(field_error("events", "must be a list of event names")),
        }
        match (url, secret) {
            (Some(url), Some(secret)) if errors.is_empty() => Ok(WebhookRequest {
                url,
                secret,
                events,
            }),
            _ => Err(errors),
        }
    }
}

/// The optional `secret` of a body: `Some(None)` when left to the service, `None` (with the
/// error pushed) when invalid.
fn secret_field(
    obj: &serde_json::Map<String, serde_json::Value>,
    errors: &mut Vec<FieldError>,
) -> Option<Option<String>> {
    match obj.get("secret") {
        None | Some(serde_json::Value::Null) => Some(None),
        Some(serde_json::Value::String(s)) => match check_secret(s) {
            Ok(()) => Some(Some(s.clone())),
            Err(message) => {
                errors.push(field_error("secret", &message));
                None
            }
        },
        Some(_) => {
            errors.push(field_error("secret", "must be a string"));
            None
        }
    }
}

/// How long the previous secret keeps signing after a rotation, by default: a day, for
/// receivers to deploy the new one.
pub const DEFAULT_ROTATION_OVERLAP_SECONDS: i64 = 86_400;
/// The longest overlap a rotation may ask for: a week.
pub const MAX_ROTATION_OVERLAP_SECONDS: i64 = 7 * 86_400;

/// The fields of a `POST /v1/webhooks/{id}/rotate-secret` body; the OpenAPI schema
/// `RotateSecretBody` lists the same ones (checked by the tests of `http::openapi`).
pub const ROTATION_FIELDS: &[&str] = &["secret", "overlap_seconds"];

/// A checked rotation request.
#[derive(Clone, PartialEq, Eq)]
pub struct RotationRequest {
    /// The new secret; `None`: made by the service ([`generate_secret`]).
    pub secret: Option<String>,
    /// Seconds during which the previous secret still signs, 0 to
    /// [`MAX_ROTATION_OVERLAP_SECONDS`].
    pub overlap_seconds: i64,
}

// By hand, so that the secret cannot reach a log line (STYLE 11).
impl std::fmt::Debug for RotationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotationRequest")
            .field("secret", &"<redacted>")
            .field("overlap_seconds", &self.overlap_seconds)
            .finish()
    }
}

impl RotationRequest {
    /// Checks a body (an empty body is `{}`: a generated secret, the default overlap),
    /// reporting every invalid field at once.
    pub fn parse(body: &serde_json::Value) -> Result<RotationRequest, Vec<FieldError>> {
        let Some(obj) = body.as_object() else {
            return Err(vec![field_error("", "the body must be a JSON object")]);
        };
        let mut errors = Vec::new();
        for key in obj.keys() {
            if !ROTATION_FIELDS.contains(&key.as_str()) {
                errors.push(field_error(key, "is not a known field"));
            }
        }
        let secret = secret_field(obj, &mut errors);
        let overlap_seconds = match obj.get("overlap_seconds") {
            None | Some(serde_json::Value::Null) => DEFAULT_ROTATION_OVERLAP_SECONDS,
            Some(value) => match value.as_i64() {
                Some(n) if (0..=MAX_ROTATION_OVERLAP_SECONDS).contains(&n) => n,
                _ => {
                    errors.push(field_error(
                        "overlap_seconds",
                        &format!(
                            "must be a whole number of seconds from 0 to \
                             {MAX_ROTATION_OVERLAP_SECONDS} (a week)"
                        ),
                    ));
                    0
                }
            },
        };
        match secret {
            Some(secret) if errors.is_empty() => Ok(RotationRequest {
                secret,
                overlap_seconds,
            }),
            _ => Err(errors),
        }
    }
}

/// Prefix of the secrets the service generates, as Standard Webhooks writes them.
pub const GENERATED_SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: `whsec_` and the base64 of 32 random bytes (Standard Webhooks,
/// "Signature scheme": the key is what follows the prefix, base64-decoded).
pub fn generate_secret() -> Result<String, ring::error::Unspecified> {
    use base64::Engine as _;
    let mut key = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut key)?;
    Ok(format!(
        "{GENERATED_SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    ))
}

/// The HMAC key of a secret for the `webhook-signature` header: for a `whsec_<base64>`
/// secret, the decoded bytes (what Standard Webhooks libraries use); for any other secret,
/// its UTF-8 bytes (a receiver passes them as raw bytes to such a library).
pub fn standard_key(secret: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    secret
        .strip_prefix(GENERATED_SECRET_PREFIX.as_bytes())
        .and_then(|rest| base64::engine::general_purpose::STANDARD.decode(rest).ok())
        .filter(|key| !key.is_empty())
        .unwrap_or_else(|| secret.to_vec())
}

/// The `webhook-signature` value (Standard Webhooks): `v1,` and the base64 of
/// HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>." ‖ body).
pub fn standard_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    use base64::Engine as _;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(context.sign().as_ref())
    )
}

/// The last four characters of a secret, to recognise it without revealing it.
pub fn secret_hint(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("…{tail}")
}

/// Creates one delivery per active webhook of the tenant subscribed to the event
/// (idempotent: a repeated call creates nothing new). Returns the number created.
pub async fn fan_out(
    storage: &Storage,
    event: &WebhookEvent,
    now: OffsetDateTime,
) -> Result<usize, StorageError> {
    if !EVENTS.contains(&event.event.as_str()) {
        tracing::warn!(webhook.event = %event.event, letter.id = %event.letter_id, "unknown webhook event not announced");
        return Ok(0);
    }
    fan_out_many(
        storage,
        &WebhookEvents {
            tenant_id: event.tenant_id.clone(),
            event: event.event.clone(),
            occurred_at: event.occurred_at.clone(),
            items: vec![(event.letter_id.clone(), event.evidence_id.clone())],
        },
        now,
    )
    .await
}

/// [`fan_out`] for one event of many letters, reading the tenant's webhooks once.
pub async fn fan_out_many(
    storage: &Storage,
    events: &WebhookEvents,
    now: OffsetDateTime,
) -> Result<usize, StorageError> {
    if !EVENTS.contains(&events.event.as_str()) {
        tracing::warn!(webhook.event = %events.event, "unknown webhook event not announced");
        return Ok(0);
    }
    let at = unix_micros(now);
    let webhooks: Vec<_> = storage
        .active_webhooks(&events.tenant_id)
        .await?
        .into_iter()
        .filter(|w| {
            w.events.contains(&events.event) && existed_at(w.created_at, &events.occurred_at)
        })
        .collect();
    let mut deliveries = Vec::with_capacity(webhooks.len() * events.items.len());
    for webhook in &webhooks {
        for (letter_id, evidence_id) in &events.items {
            let id = uuid::Uuid::now_v7().to_string();
            let payload = serde_json::to_vec(&Payload {
                id: &id,
                event: &events.event,
                letter_id,
                evidence_id,
                occurred_at: &events.occurred_at,
            })
            .map_err(|e| StorageError::Corrupt(format!("webhook payload: {e}")))?;
            deliveries.push(NewDelivery {
                id,
                webhook_id: webhook.id.clone(),
                tenant_id: events.tenant_id.clone(),
                event: events.event.clone(),
                letter_id: Some(letter_id.clone()),
                evidence_id: Some(evidence_id.clone()),
                batch_id: None,
                payload,
                next_attempt_at: at,
                created_at: at,
            });
        }
    }
    let created = storage.insert_deliveries(&deliveries).await?;
    if created > 0 {
        tracing::info!(webhook.event = %events.event, letters = events.items.len(), deliveries = created, "webhook deliveries queued");
    }
    Ok(created)
}

/// Whether a webhook created at `created_at` (Unix µs) existed when the event happened
/// (`occurred_at`, RFC 3339): a webhook is told only of what happened after it was
/// registered, never of the backlog the outbox still holds. An unreadable time counts as
/// after (telling once too many is better than never).
fn existed_at(created_at: i64, occurred_at: &str) -> bool {
    time::OffsetDateTime::parse(occurred_at, &time::format_description::well_known::Rfc3339)
        .map(|at| created_at <= unix_micros(at))
        .unwrap_or(true)
}

/// Creates one delivery of a batch event per subscribed webhook (idempotent).
pub async fn fan_out_batch(
    storage: &Storage,
    event: &BatchEvent,
    now: OffsetDateTime,
) -> Result<usize, StorageError> {
    let at = unix_micros(now);
    let mut deliveries = Vec::new();
    for webhook in storage.active_webhooks(&event.tenant_id).await? {
        if !webhook.events.contains(&event.event)
            || !existed_at(webhook.created_at, &event.occurred_at)
        {
            continue;
        }
        let id = uuid::Uuid::now_v7().to_string();
        let payload = serde_json::to_vec(&BatchPayload {
            id: &id,
            event: &event.event,
            batch_id: &event.batch_id,
            state: &event.state,
            occurred_at: &event.occurred_at,
        })
        .map_err(|e| StorageError::Corrupt(format!("webhook payload: {e}")))?;
        deliveries.push(NewDelivery {
            id,
            webhook_id: webhook.id,
            tenant_id: event.tenant_id.clone(),
            event: event.event.clone(),
            letter_id: None,
            evidence_id: None,
            batch_id: Some(event.batch_id.clone()),
            payload,
            next_attempt_at: at,
            created_at: at,
        });
    }
    let created = storage.insert_deliveries(&deliveries).await?;
    if created > 0 {
        tracing::info!(batch.id = %event.batch_id, webhook.event = %event.event, deliveries = created, "webhook deliveries queued");
    }
    Ok(created)
}

/// Sends every due delivery (at most `limit`, at most [`PER_TENANT_CONCURRENCY`] of each
/// tenant), records each attempt, schedules retries, and returns once all are recorded.
/// Returns how many were attempted.
pub async fn deliver_due(
    storage: &Storage,
    outbound: &Outbound,
    now: OffsetDateTime,
    limit: i64,
) -> Result<usize, StorageError> {
    let deliverer = Deliverer::new(storage.clone(), outbound.clone());
    let attempts = deliverer.start_due(now, limit).await?;
    let count = attempts.len();
    let mut first_error = None;
    for attempt in attempts {
        match attempt.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            // The lease ends and another pass retries the delivery.
            Err(e) => tracing::error!(error = %e, "webhook attempt task stopped"),
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(count),
    }
}

/// Sends deliveries without letting one tenant hold back another: each claimed delivery is
/// attempted in its own task, at most [`PER_TENANT_CONCURRENCY`] per tenant at once, and
/// [`Deliverer::start_due`] returns as soon as the attempts are started.
#[derive(Clone)]
pub struct Deliverer {
    storage: Storage,
    outbound: Outbound,
    slots: Arc<TenantSlots>,
    /// Claims whose attempt is not recorded yet: delivery id → lease end (Unix µs), given
    /// back by [`Deliverer::release_claims`] at shutdown.
    held: Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
}

/// Attempts in flight per tenant (started, waiting for a permit or running).
#[derive(Default)]
struct TenantSlots {
    tenants: std::sync::Mutex<std::collections::HashMap<String, TenantSlot>>,
}

struct TenantSlot {
    in_flight: usize,
    permits: Arc<tokio::sync::Semaphore>,
}

impl TenantSlots {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, TenantSlot>> {
        // A panic while holding this lock leaves only counters behind: keep using them.
        self.tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tenants with [`PER_TENANT_CONCURRENCY`] attempts or more in flight.
    fn busy(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, slot)| slot.in_flight >= PER_TENANT_CONCURRENCY)
            .map(|(tenant, _)| tenant.clone())
            .collect()
    }

    /// Counts one more attempt of `tenant`; returns the semaphore bounding its attempts.
    fn enter(&self, tenant: &str) -> Arc<tokio::sync::Semaphore> {
        let mut tenants = self.lock();
        let slot = tenants
            .entry(tenant.to_string())
            .or_insert_with(|| TenantSlot {
                in_flight: 0,
                permits: Arc::new(tokio::sync::Semaphore::new(PER_TENANT_CONCURRENCY)),
            });
        slot.in_flight += 1;
        slot.permits.clone()
    }

    fn leave(&self, tenant: &str) {
        let mut tenants = self.lock();
        if let Some(slot) = tenants.get_mut(tenant) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
            if slot.in_flight == 0 {
                tenants.remove(tenant);
            }
        }
    }
}

/// Leaves the tenant's slot when the attempt's task ends, even by a panic.
struct SlotGuard {
    slots: Arc<TenantSlots>,
    tenant: String,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.slots.leave(&self.tenant);
    }
}

impl Deliverer {
    /// A deliverer posting through `outbound`.
    pub fn new(storage: Storage, outbound: Outbound) -> Deliverer {
        Deliverer {
            storage,
            outbound,
            slots: Arc::new(TenantSlots::default()),
            held: Arc::default(),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, i64>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Attempts started and not recorded yet.
    pub fn in_flight(&self) -> usize {
        self.held().len()
    }

    /// Gives back the claims of attempts not recorded (cut short at shutdown): those
    /// deliveries are due again at once. Returns how many were released.
    pub async fn release_claims(&self, now: OffsetDateTime) -> Result<u64, StorageError> {
        let claims: Vec<(String, i64)> = self.held().drain().collect();
        if claims.is_empty() {
            return Ok(0);
        }
        self.storage
            .release_deliveries(&claims, unix_micros(now))
            .await
    }

    /// Claims due deliveries of the tenants below their bound (at most `limit`, at most
    /// [`PER_TENANT_CONCURRENCY`] each) and starts their attempts; each task records its
    /// own attempt. Awaiting the handles is optional.
    pub async fn start_due(
        &self,
        now: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<tokio::task::JoinHandle<Result<(), StorageError>>>, StorageError> {
        let busy = self.slots.busy();
        let lease_until = unix_micros(now + CLAIM_LEASE);
        let claimed = self
            .storage
            .claim_due_deliveries(
                unix_micros(now),
                lease_until,
                limit,
                PER_TENANT_CONCURRENCY as i64,
                &busy,
            )
            .await?;
        let mut attempts = Vec::with_capacity(claimed.len());
        for claim in claimed {
            let tenant = claim.delivery.tenant_id.clone();
            let permits = self.slots.enter(&tenant);
            let guard = SlotGuard {
                slots: self.slots.clone(),
                tenant,
            };
            let this = self.clone();
            let id = claim.delivery.id.clone();
            self.held().insert(id.clone(), lease_until);
            attempts.push(tokio::spawn(async move {
                let _guard = guard;
                // At most PER_TENANT_CONCURRENCY of this tenant run; the others wait here, an
                // attempt at most, well within the claim's lease.
                let _permit = permits.acquire_owned().await.ok();
                let recorded = this.attempt(claim, now).await;
                this.held().remove(&id);
                recorded
            }));
        }
        Ok(attempts)
    }

    async fn attempt(
        &self,
        claim: ClaimedDelivery,
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        let (status, error) = send(&self.outbound, &claim, now).await;
        let delivery = &claim.delivery;
        let first_attempt = delivery.first_attempt_at.unwrap_or(unix_micros(now));
        let outcome = if error.is_none() {
            AttemptOutcome::Delivered
        } else {
            next_step(
                crate::core::clock::from_unix_micros(first_attempt),
                now,
                delivery.attempts + 1,
                random_jitter(),
            )
        };
        let attempt = DeliveryAttempt {
            delivery_id: delivery.id.clone(),
            at: unix_micros(now),
            status: status.map(i64::from),
            error: error.clone(),
            outcome,
        };
        match outcome {
            AttemptOutcome::Delivered => {
                tracing::info!(webhook.delivery = %delivery.id, webhook.id = %delivery.webhook_id, tenant.id = %delivery.tenant_id, letter.id = delivery.letter_id.as_deref().unwrap_or(""), batch.id = delivery.batch_id.as_deref().unwrap_or(""), http.status = status, "webhook delivered")
            }
            AttemptOutcome::RetryAt(_) => {
                tracing::warn!(webhook.delivery = %delivery.id, webhook.id = %delivery.webhook_id, tenant.id = %delivery.tenant_id, attempts = delivery.attempts + 1, error = error.as_deref().unwrap_or(""), "webhook attempt failed; will retry")
            }
            AttemptOutcome::GiveUp => {
                tracing::error!(webhook.delivery = %delivery.id, webhook.id = %delivery.webhook_id, tenant.id = %delivery.tenant_id, attempts = delivery.attempts + 1, error = error.as_deref().unwrap_or(""), "webhook delivery given up")
            }
        }
        // Unrecorded, the delivery is retried when its lease ends.
        self.storage
            .record_delivery_attempt(&attempt)
            .await
            .map(|_| ())
    }
}

/// The signature header value for `body` sent at `timestamp` (Unix seconds):
/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>." ‖ body)>`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    signatures(&[secret], timestamp, body)
}

/// [`signature`] with one `v1=` per secret, in order (during a rotation's overlap).
pub fn signatures(secrets: &[&[u8]], timestamp: i64, body: &[u8]) -> String {
    let mut value = format!("t={timestamp}");
    for secret in secrets {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let mut context = ring::hmac::Context::with_key(&key);
        context.update(timestamp.to_string().as_bytes());
        context.update(b".");
        context.update(body);
        value.push_str(",v1=");
        value.push_str(&hex::encode(context.sign().as_ref()));
    }
    value
}

/// The delay before the next attempt once `failed_attempts` attempts have failed:
/// 30 s × 2^(failed_attempts − 1), times `1 + jitter` (`jitter` in −0.1..=0.1, so that many
/// deliveries failing together do not retry together), capped at 6 hours.
pub fn retry_delay(failed_attempts: i64, jitter: f64) -> time::Duration {
    let exponent = failed_attempts.saturating_sub(1).clamp(0, 20) as i32;
    let base = FIRST_RETRY_DELAY.as_seconds_f64() * 2f64.powi(exponent);
    let jittered = base * (1.0 + jitter.clamp(-0.1, 0.1));
    time::Duration::seconds_f64(jittered.min(MAX_RETRY_DELAY.as_seconds_f64()))
}

/// What follows a failed attempt made at `now`: a retry, never later than the end of the
/// retry window (so that the last attempt happens at its end), or giving up once the window
/// is over.
pub fn next_step(
    first_attempt: OffsetDateTime,
    now: OffsetDateTime,
    failed_attempts: i64,
    jitter: f64,
) -> AttemptOutcome {
    let deadline = first_attempt + RETRY_WINDOW;
    if now >= deadline {
        return AttemptOutcome::GiveUp;
    }
    let next = (now + retry_delay(failed_attempts, jitter)).min(deadline);
    AttemptOutcome::RetryAt(unix_micros(next))
}

/// Rows a webhook delivery pass claims at most.
const WEBHOOK_BATCH: i64 = 100;

/// Webhook deliveries: a pass starts the due attempts without waiting for them (a slow
/// receiver delays nobody else's deliveries); at shutdown the attempts in flight get the
/// grace period, and the claims of those cut short are given back.
pub struct WebhookDeliveries {
    deliverer: Deliverer,
    clock: Arc<dyn Clock>,
    interval: Duration,
}

impl WebhookDeliveries {
    /// Passes of `deliverer` every `interval`.
    pub fn new(
        deliverer: Deliverer,
        clock: Arc<dyn Clock>,
        interval: Duration,
    ) -> WebhookDeliveries {
        WebhookDeliveries {
            deliverer,
            clock,
            interval,
        }
    }
}

impl Worker for WebhookDeliveries {
    fn name(&self) -> &'static str {
        "webhook_deliveries"
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn run_once(&self) -> BoxFuture<'_, Result<Pass, WorkerError>> {
        Box::pin(async move {
            let started = self
                .deliverer
                .start_due(self.clock.now(), WEBHOOK_BATCH)
                .await?;
            Ok(Pass::full(started.len(), WEBHOOK_BATCH))
        })
    }
    fn finish(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            while self.deliverer.in_flight() > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    }
    fn release(&self) -> BoxFuture<'_, Result<u64, WorkerError>> {
        Box::pin(async move { Ok(self.deliverer.release_claims(self.clock.now()).await?) })
    }
}

/// Starts a pass of [`Deliverer::start_due`] every `interval` (at once again when a full
/// batch was claimed) on the worker runner until the task is aborted, without waiting for
/// the attempts of a pass: a slow receiver delays nobody else's deliveries. Errors are
/// logged; the loop never panics nor stops on them. (The service runs the same worker with
/// the others, see `src/app/jobs.rs`.)
pub fn spawn_delivery_worker(
    storage: Storage,
    clock: Arc<dyn Clock>,
    interval: Duration,
    outbound: Outbound,
) -> tokio::task::JoinHandle<()> {
    let worker = WebhookDeliveries::new(Deliverer::new(storage, outbound), clock.clone(), interval);
    spawn_one(std::sync::Arc::new(worker), clock)
}

/// One POST of a delivery; returns the status when the receiver answered, and the error
/// unless it was 2xx.
async fn send(
    outbound: &Outbound,
    claim: &ClaimedDelivery,
    now: OffsetDateTime,
) -> (Option<u16>, Option<String>) {
    let delivery = &claim.delivery;
    let secrets: Vec<&[u8]> = claim.secrets.iter().map(|s| s.as_bytes()).collect();
    post_signed(
        outbound,
        &claim.url,
        &secrets,
        &delivery.event,
        &delivery.id,
        &delivery.payload,
        now,
    )
    .await
}

/// POSTs `payload` (JSON) to `url` signed with each of `secrets` at `now` ([`signatures`],
/// [`standard_signature`]; the current secret first, then the previous one during a
/// rotation's overlap), with the event and delivery-id headers: the one way every signed notification of the service
/// leaves (sender webhooks and log witnesses), through the guarded client. Returns the
/// status when the receiver answered, and the error unless it was 2xx — only words a
/// tenant may read (`unreachable`, `refused: address not public`, `timeout`, `HTTP 500`).
pub async fn post_signed(
    outbound: &Outbound,
    url: &str,
    secrets: &[&[u8]],
    event: &str,
    delivery_id: &str,
    payload: &[u8],
    now: OffsetDateTime,
) -> (Option<u16>, Option<String>) {
    use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
    let signed = signatures(secrets, now.unix_timestamp(), payload);
    let timestamp = now.unix_timestamp().to_string();
    // Standard Webhooks: several signatures are separated by spaces.
    let standard = secrets
        .iter()
        .map(|secret| {
            standard_signature(
                &standard_key(secret),
                delivery_id,
                now.unix_timestamp(),
                payload,
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in [
        (SIGNATURE_HEADER, signed.as_str()),
        (EVENT_HEADER, event),
        (DELIVERY_HEADER, delivery_id),
        // Standard Webhooks: the id stays the same across the retries of one delivery.
        ("webhook-id", delivery_id),
        ("webhook-timestamp", timestamp.as_str()),
        ("webhook-signature", standard.as_str()),
    ] {
        match HeaderValue::from_str(value) {
            Ok(value) => {
                headers.insert(name, value);
            }
            Err(_) => {
                tracing::error!(header = name, "webhook header value is not sendable");
                return (None, Some(crate::infra::net_guard::UNREACHABLE.to_string()));
            }
        }
    }
    let outcome = outbound.post(url, headers, payload.to_vec()).await;
    (outcome.status, outcome.error)
}

/// A uniformly drawn jitter in −0.1..=0.1.
pub fn random_jitter() -> f64 {
    let mut bytes = [0u8; 4];
    // Jitter only spreads retries; should the system RNG fail, no jitter is acceptable.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        return 0.0;
    }
    let unit = f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX);
    (unit - 0.5) * 0.2
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_signature_is_the_hmac_of_the_timestamp_a_dot_and_the_body() {
        let value = signature(b"secret", 1_700_000_000, b"{\"a\":1}");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"secret");
        let expected = ring::hmac::sign(&key, b"1700000000.{\"a\":1}");
        assert_eq!(
            value,
            format!("t=1700000000,v1={}", hex::encode(expected.as_ref()))
        );
        assert_ne!(value, signature(b"secret", 1_700_000_001, b"{\"a\":1}"));
        assert_ne!(value, signature(b"other", 1_700_000_000, b"{\"a\":1}"));
    }

    #[test]
    fn retry_delays_double_from_thirty_seconds_and_stop_growing_at_six_hours() {
        assert_eq!(retry_delay(1, 0.0), time::Duration::seconds(30));
        assert_eq!(retry_delay(2, 0.0), time::Duration::seconds(60));
        assert_eq!(retry_delay(5, 0.0), time::Duration::seconds(480));
        assert_eq!(retry_delay(30, 0.0), time::Duration::hours(6));
        assert_eq!(retry_delay(1, 0.1), time::Duration::seconds(33));
        assert_eq!(retry_delay(1, -0.1), time::Duration::seconds(27));
        assert_eq!(retry_delay(1, 5.0), time::Duration::seconds(33));
    }

    #[test]
    fn random_jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let j = random_jitter();
            assert!((-0.1..=0.1).contains(&j), "{j}");
        }
    }

    #[test]
    fn retries_end_at_the_close_of_the_window_then_give_up() {
        let first = datetime!(2026-11-23 09:00 UTC);
        assert_eq!(
            next_step(first, first, 1, 0.0),
            AttemptOutcome::RetryAt(unix_micros(first + time::Duration::seconds(30)))
        );
        let late = first + time::Duration::hours(47);
        assert_eq!(
            next_step(first, late, 12, 0.0),
            AttemptOutcome::RetryAt(unix_micros(first + RETRY_WINDOW))
        );
        assert_eq!(
            next_step(first, first + RETRY_WINDOW, 13, 0.0),
            AttemptOutcome::GiveUp
        );
    }

    #[test]
    fn every_invalid_webhook_field_is_reported_at_once() {
        let body = serde_json::json!({"url": "ftp://example.fr/x", "secret": "short",
            "events": ["letter.notified", "letter.notified", "letter.lost"], "colour": 1});
        let errors = WebhookRequest::parse(&body, &OutboundPolicy::default()).expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["colour", "url", "secret", "events[1]", "events[2]"]
        );
        for url in [
            "/relative",
            "https://user:pw@example.fr/",
            "https://example.fr/#frag",
            "mailto:a@b.fr",
        ] {
            let body = serde_json::json!({"url": url, "secret": "0123456789abcdef",
                "events": ["letter.accepted"]});
            let errors = WebhookRequest::parse(&body, &OutboundPolicy::default()).expect_err(url);
            assert_eq!(errors[0].field, "url", "{url}");
        }
        let body = serde_json::json!({"url": "https://example.fr/", "secret": "0123456789abcdef",
            "events": []});
        assert_eq!(
            WebhookRequest::parse(&body, &OutboundPolicy::default()).expect_err("empty")[0].field,
            "events"
        );
    }

    #[test]
    fn a_valid_webhook_request_parses_and_its_debug_form_hides_the_secret() {
        let body = serde_json::json!({"url": "https://Hooks.Example.fr/lre?k=1",
            "secret": "s3cr3t-s3cr3t-s3cr3t", "events": ["letter.accepted", "letter.refused"]});
        let request = WebhookRequest::parse(&body, &OutboundPolicy::default()).expect("valid");
        assert_eq!(request.url, "https://hooks.example.fr/lre?k=1");
        assert_eq!(request.events, ["letter.accepted", "letter.refused"]);
        assert!(!format!("{request:?}").contains("s3cr3t"));
        assert_eq!(
            secret_hint(request.secret.as_deref().expect("given")),
            "…cr3t"
        );
        let body = serde_json::json!({"url": "https://example.fr/", "events": ["letter.accepted"]});
        let request = WebhookRequest::parse(&body, &OutboundPolicy::default()).expect("valid");
        assert_eq!(request.secret, None, "left to the service");
    }

    #[test]
    fn generated_secrets_are_whsec_base64_of_32_bytes_and_their_key_is_the_decoded_bytes() {
        use base64::Engine as _;
        let secret = generate_secret().expect("random");
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.strip_prefix("whsec_").expect("prefix"))
            .expect("base64");
        assert_eq!(key.len(), 32);
        assert_eq!(standard_key(secret.as_bytes()), key);
        assert_ne!(generate_secret().expect("random"), secret);
        assert_eq!(standard_key(b"plain-secret-value"), b"plain-secret-value");
        assert_eq!(standard_key(b"whsec_not base64!"), b"whsec_not base64!");
    }

    #[test]
    fn the_standard_signature_is_the_base64_hmac_of_id_timestamp_and_body() {
        use base64::Engine as _;
        let value = standard_signature(b"key", "msg_1", 1_700_000_000, b"{}");
        let mac = base64::engine::general_purpose::STANDARD
            .decode(value.strip_prefix("v1,").expect("v1,"))
            .expect("base64");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"key");
        ring::hmac::verify(&key, b"msg_1.1700000000.{}", &mac).expect("valid");
    }

    #[test]
    fn every_sender_facing_evidence_event_maps_to_a_subscribable_event() {
        for event in EvidenceEvent::ALL {
            if let Some(name) = event_for_evidence(event) {
                assert!(EVENTS.contains(&name), "{name}");
            }
        }
        assert_eq!(event_for_evidence(EvidenceEvent::SubmissionRejection), None);
    }
}
