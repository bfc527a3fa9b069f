//! Outside witnesses of the transparency log (issue 6 §2; docs/LOG.md, witnesses): each new signed tree
//! head is pushed to every configured witness — a mailbox (a court clerk's, a bailiff's) or
//! a webhook — so that copies of the log's history exist where the provider cannot reach
//! them. Whoever keeps them can later check, with `recommande log verify-consistency`, that
//! each new head only extends the one kept before (RFC 9162 §2.1.4).
//!
//! Deliveries are queued in the transaction that stores the head
//! ([`crate::infra::storage::Storage::insert_tree_head_for_witnesses`]), then sent by
//! [`Witnesses::deliver_due`]: leased so that two instances never send the same one at once,
//! retried with the backoff of sender webhooks ([`crate::app::webhook::next_step`]), a witness's
//! heads in tree-size order. Delivery is at least once: a witness may receive a head twice
//! (after a crash between sending and recording), never a later head before an earlier one.
//!
//! A mail carries the head in four files: `head-N.json` (the exact sealed bytes),
//! `head-N.p7s` (CMS seal, RFC 5652), `head-N.tsr` (RFC 3161 token) and `tree-head-N.json`
//! (the published form `verify-consistency` reads). A webhook POST carries the same in JSON,
//! signed with HMAC-SHA256 exactly as sender webhooks are ([`crate::app::webhook::post_signed`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde::Serialize;
use time::OffsetDateTime;

use crate::config::{SecretText, WitnessSettings};
use crate::core::clock::{from_unix_micros, rfc3339_micros, unix_micros};
use crate::core::log::PublishedTreeHead;
use crate::infra::mail::{MailAttachment, MailError, Mailer, OutgoingMail};
use crate::infra::storage::log::TreeHeadRow;
use crate::infra::storage::witnesses::{ClaimedWitnessDelivery, WitnessAttempt, WitnessTarget};
use crate::infra::storage::{AttemptOutcome, Storage, StorageError};

/// The event name of a tree-head webhook (`Recommande-Event`).
pub const EVENT: &str = "log.tree_head";
/// How long a claimed delivery stays reserved: longer than an SMTP exchange
/// (30 s per command) or an HTTP attempt may last.
pub const CLAIM_LEASE: time::Duration = time::Duration::minutes(5);
/// How often due witness deliveries are sent.
pub const DELIVERY_INTERVAL: Duration = Duration::from_secs(5);

/// The witnesses to queue each head for, as stored in the delivery log.
pub fn targets(settings: &WitnessSettings) -> Vec<WitnessTarget> {
    let mut out: Vec<WitnessTarget> = settings
        .emails
        .iter()
        .map(|address| WitnessTarget {
            kind: "email",
            witness: format!("mailto:{address}"),
        })
        .collect();
    out.extend(settings.webhooks.iter().map(|w| WitnessTarget {
        kind: "webhook",
        witness: w.url.clone(),
    }));
    out
}

/// Sends queued tree heads to the witnesses.
#[derive(Clone)]
pub struct Witnesses {
    storage: Storage,
    mailer: Mailer,
    outbound: crate::infra::net_guard::Outbound,
    emails: Arc<Vec<String>>,
    secrets: Arc<HashMap<String, SecretText>>,
    public_url: String,
    provider_name: String,
    /// Claims whose attempt is not recorded yet: delivery id → lease end (Unix µs), given
    /// back by [`Witnesses::release_claims`] at shutdown.
    held: Arc<std::sync::Mutex<HashMap<String, i64>>>,
}

/// The body POSTed to a webhook witness, in this field order.
#[derive(Serialize)]
struct Payload<'a> {
    id: &'a str,
    event: &'a str,
    /// The head's fields, for reading.
    tree_head: serde_json::Value,
    /// The exact sealed bytes (canonical JSON, RFC 8785).
    head_base64: String,
    /// CMS detached seal over the head.
    seal_base64: String,
    /// RFC 3161 token over SHA-256(head).
    token_base64: String,
    /// What `recommande log verify-consistency` reads: keep it.
    published: PublishedTreeHead,
}

impl Witnesses {
    /// The witnesses of `settings`, mailing through `mailer` and posting through
    /// `outbound` (the guarded client: no witness URL may reach a non-public address).
    pub fn new(
        storage: Storage,
        mailer: Mailer,
        outbound: crate::infra::net_guard::Outbound,
        settings: &WitnessSettings,
        public_url: &str,
        provider_name: &str,
    ) -> Witnesses {
        Witnesses {
            storage,
            mailer,
            outbound,
            emails: Arc::new(settings.emails.clone()),
            secrets: Arc::new(
                settings
                    .webhooks
                    .iter()
                    .map(|w| (w.url.clone(), w.secret.clone()))
                    .collect(),
            ),
            public_url: public_url.trim_end_matches('/').to_string(),
            provider_name: provider_name.to_string(),
            held: Arc::default(),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Gives back the claims of attempts not recorded (a pass cut short at shutdown): those
    /// deliveries are due again at once. Returns how many were released.
    pub async fn release_claims(&self, now: OffsetDateTime) -> Result<u64, StorageError> {
        let claims: Vec<(String, i64)> = self.held().drain().collect();
        if claims.is_empty() {
            return Ok(0);
        }
        self.storage
            .release_witness_deliveries(&claims, unix_micros(now))
            .await
    }

    /// Sends every due delivery (at most `limit`, one per witness), records each attempt and
    /// schedules retries. Returns how many were attempted.
    pub async fn deliver_due(
        &self,
        now: OffsetDateTime,
        limit: i64,
    ) -> Result<usize, StorageError> {
        let lease_until = unix_micros(now + CLAIM_LEASE);
        let claimed = self
            .storage
            .claim_due_witness_deliveries(unix_micros(now), lease_until, limit)
            .await?;
        let count = claimed.len();
        self.held()
            .extend(claimed.iter().map(|c| (c.delivery.id.clone(), lease_until)));
        // Concurrently: one slow witness must not hold back the others.
        let mut attempts = tokio::task::JoinSet::new();
        for claim in claimed {
            let this = self.clone();
            attempts.spawn(async move {
                let result = this.attempt(&claim, now).await;
                (claim, result)
            });
        }
        let mut first_error = None;
        while let Some(joined) = attempts.join_next().await {
            let (claim, result) = match joined {
                Ok(done) => done,
                Err(e) => {
                    // The lease ends and another pass retries the delivery.
                    tracing::error!(error = %e, "witness attempt task stopped");
                    continue;
                }
            };
            let delivery = &claim.delivery;
            let outcome = match &result.error {
                None => AttemptOutcome::Delivered,
                Some(_) if result.permanent => AttemptOutcome::GiveUp,
                Some(_) => crate::app::webhook::next_step(
                    from_unix_micros(delivery.first_attempt_at.unwrap_or(unix_micros(now))),
                    now,
                    delivery.attempts + 1,
                    crate::app::webhook::random_jitter(),
                ),
            };
            let error = result.error.as_deref().unwrap_or("");
            match outcome {
                AttemptOutcome::Delivered => {
                    tracing::info!(witness.delivery = %delivery.id, witness = %delivery.witness, log.size = delivery.tree_size, "tree head delivered to a witness")
                }
                AttemptOutcome::RetryAt(_) => {
                    tracing::warn!(witness.delivery = %delivery.id, witness = %delivery.witness, log.size = delivery.tree_size, attempts = delivery.attempts + 1, error, "tree head delivery to a witness failed; will retry")
                }
                AttemptOutcome::GiveUp => {
                    tracing::error!(witness.delivery = %delivery.id, witness = %delivery.witness, log.size = delivery.tree_size, attempts = delivery.attempts + 1, error, "tree head delivery to a witness given up")
                }
            }
            let attempt = WitnessAttempt {
                delivery_id: delivery.id.clone(),
                at: unix_micros(now),
                status: result.status.map(i64::from),
                reply: result.reply,
                error: result.error,
                outcome,
            };
            if let Err(e) = self.storage.record_witness_attempt(&attempt).await {
                // Keep recording the others; this one is retried when its lease ends.
                first_error.get_or_insert(e);
            }
            self.held().remove(&delivery.id);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(count),
        }
    }

    async fn attempt(&self, claim: &ClaimedWitnessDelivery, now: OffsetDateTime) -> Attempt {
        let delivery = &claim.delivery;
        if let Some(address) = delivery.witness.strip_prefix("mailto:") {
            if !self.emails.iter().any(|a| a == address) {
                return Attempt::permanent("this witness is no longer configured".into());
            }
            return match self.mail(address, &delivery.id, &claim.head).await {
                Ok(reply) => Attempt {
                    reply: Some(reply),
                    ..Attempt::default()
                },
                Err(MailError::Transient(e) | MailError::Deferred(e)) => Attempt {
                    error: Some(e),
                    ..Attempt::default()
                },
                Err(e) => Attempt::permanent(e.to_string()),
            };
        }
        let Some(secret) = self.secrets.get(&delivery.witness) else {
            return Attempt::permanent("this witness is no longer configured".into());
        };
        let payload = match webhook_payload(&delivery.id, &claim.head) {
            Ok(p) => p,
            Err(e) => return Attempt::permanent(e),
        };
        let (status, error) = crate::app::webhook::post_signed(
            &self.outbound,
            &delivery.witness,
            &[secret.expose().as_bytes()],
            EVENT,
            &delivery.id,
            &payload,
            now,
        )
        .await;
        Attempt {
            status,
            error,
            ..Attempt::default()
        }
    }

    async fn mail(
        &self,
        address: &str,
        delivery_id: &str,
        head: &TreeHeadRow,
    ) -> Result<String, MailError> {
        let to = address
            .parse()
            .map_err(|e| MailError::Invalid(format!("witness address {address:?}: {e}")))?;
        let size = head.tree_size;
        let published = PublishedTreeHead::from_row(head);
        let published_json = serde_json::to_vec_pretty(&published)
            .map_err(|e| MailError::Invalid(format!("tree head: {e}")))?;
        let issued_at = rfc3339_micros(from_unix_micros(head.issued_at));
        let mail = OutgoingMail {
            to,
            subject: format!(
                "{} — tête d'arbre n° {size} / signed tree head {size}",
                self.provider_name
            ),
            body: mail_body(
                &self.provider_name,
                &self.public_url,
                size,
                &head.root_hash,
                &issued_at,
            ),
            message_id: format!("witness.{delivery_id}@{}", self.mailer.domain()),
            envelope_from: self.mailer.from().email.clone(),
        };
        let attachments = vec![
            MailAttachment {
                filename: format!("head-{size}.json"),
                content_type: "application/json".into(),
                bytes: head.head.clone(),
            },
            MailAttachment {
                filename: format!("head-{size}.p7s"),
                content_type: "application/pkcs7-signature".into(),
                bytes: head.seal.clone(),
            },
            MailAttachment {
                filename: format!("head-{size}.tsr"),
                content_type: "application/timestamp-reply".into(),
                bytes: head.timestamp_token.clone(),
            },
            MailAttachment {
                filename: format!("tree-head-{size}.json"),
                content_type: "application/json".into(),
                bytes: published_json,
            },
        ];
        let sent = self.mailer.send_with_attachments(mail, attachments).await?;
        Ok(sent.relay_reply)
    }
}

#[derive(Default)]
struct Attempt {
    status: Option<u16>,
    reply: Option<String>,
    error: Option<String>,
    /// Retrying will not help (a 5xx SMTP reply, a witness removed from the configuration).
    permanent: bool,
}

impl Attempt {
    fn permanent(error: String) -> Attempt {
        Attempt {
            error: Some(error),
            permanent: true,
            ..Attempt::default()
        }
    }
}

/// The exact body POSTed for `head` (the same bytes at every retry).
fn webhook_payload(delivery_id: &str, head: &TreeHeadRow) -> Result<Vec<u8>, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let tree_head: serde_json::Value = serde_json::from_slice(&head.head)
        .map_err(|e| format!("stored tree head {} is not JSON: {e}", head.tree_size))?;
    serde_json::to_vec(&Payload {
        id: delivery_id,
        event: EVENT,
        tree_head,
        head_base64: b64.encode(&head.head),
        seal_base64: b64.encode(&head.seal),
        token_base64: b64.encode(&head.timestamp_token),
        published: PublishedTreeHead::from_row(head),
    })
    .map_err(|e| format!("witness payload: {e}"))
}

/// The text of a witness mail, French then English.
fn mail_body(provider: &str, public_url: &str, size: i64, root: &str, issued_at: &str) -> String {
    format!(
        "Bonjour,\n\
         \n\
         Vous êtes témoin du journal de transparence des preuves de {provider} (RFC 9162).\n\
         Voici sa nouvelle tête d'arbre signée :\n\
         \n\
         \x20 taille      : {size}\n\
         \x20 racine      : {root}\n\
         \x20 émise le    : {issued_at}\n\
         \n\
         Pièces jointes : head-{size}.json (la tête scellée), head-{size}.p7s (son cachet\n\
         CMS), head-{size}.tsr (son horodatage RFC 3161) et tree-head-{size}.json (les trois\n\
         réunis). Conservez ce message sans le modifier. Pour vérifier que cette tête\n\
         prolonge la précédente que vous avez gardée (tree-head-ANCIENNE.json) :\n\
         \n\
         \x20 recommande log verify-consistency tree-head-ANCIENNE.json tree-head-{size}.json \\\n\
         \x20   --trust roots.pem --server {public_url}\n\
         \n\
         (roots.pem : {public_url}/v1/trust/roots.pem). Tout résultat autre que « CONSISTENT »\n\
         doit être signalé.\n\
         \n\
         ---\n\
         \n\
         Hello,\n\
         \n\
         You are a witness of {provider}'s evidence transparency log (RFC 9162).\n\
         Here is its new signed tree head:\n\
         \n\
         \x20 size        : {size}\n\
         \x20 root        : {root}\n\
         \x20 issued at   : {issued_at}\n\
         \n\
         Attached: head-{size}.json (the sealed head), head-{size}.p7s (its CMS seal),\n\
         head-{size}.tsr (its RFC 3161 timestamp) and tree-head-{size}.json (all three\n\
         together). Keep this message unchanged. To check that this head extends the last\n\
         one you kept (tree-head-OLD.json):\n\
         \n\
         \x20 recommande log verify-consistency tree-head-OLD.json tree-head-{size}.json \\\n\
         \x20   --trust roots.pem --server {public_url}\n\
         \n\
         (roots.pem: {public_url}/v1/trust/roots.pem). Any result other than \"CONSISTENT\"\n\
         must be reported.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mail_names_the_one_command_that_checks_consistency() {
        let body = mail_body(
            "Exemple LRE",
            "https://lre.example.fr",
            42,
            "ab12",
            "2026-11-23T15:00:00Z",
        );
        assert!(
            body.contains("recommande log verify-consistency tree-head-OLD.json tree-head-42.json")
        );
        assert!(body.contains("--trust roots.pem --server https://lre.example.fr"));
        assert!(body.contains("taille      : 42"));
        assert!(body.contains("size        : 42"));
    }

    #[test]
    fn every_configured_witness_becomes_a_target() {
        let settings = WitnessSettings {
            emails: vec!["greffe@tribunal.example.fr".into()],
            webhooks: vec![crate::config::WitnessWebhook {
                url: "https://huissier.example.fr/h".into(),
                secret: SecretText::new("0123456789abcdef".into()),
            }],
        };
        let t = targets(&settings);
        assert_eq!(t[0].witness, "mailto:greffe@tribunal.example.fr");
        assert_eq!(t[0].kind, "email");
        assert_eq!(t[1].witness, "https://huissier.example.fr/h");
        assert_eq!(t[1].kind, "webhook");
    }
}
