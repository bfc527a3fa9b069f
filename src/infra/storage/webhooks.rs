//! Webhooks of a tenant and their delivery log.
//!
//! A delivery is a row written once per (webhook, evidence, event) — the unique constraint
//! makes fan-out idempotent — then claimed by a worker, attempted, and either rescheduled,
//! marked delivered or given up. Claiming pushes `next_attempt_at` forward as a lease inside
//! a short transaction: on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so several instances
//! share the work without sending one delivery twice at once (docs/operations.md, several instances); on SQLite the single
//! writer connection serialises claims.

use sqlx::{QueryBuilder, Row};

use super::{IdempotencyRow, Storage, StorageError};

/// A webhook: where to announce a tenant's letter events, and with which secret to sign them.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRow {
    /// Webhook id (UUID v7).
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Absolute http(s) URL receiving the POSTs.
    pub url: String,
    /// HMAC-SHA256 key of the `Recommande-Signature` header. Never logged nor shown again.
    pub secret: String,
    /// Subscribed event names (`letter.notified`, …).
    pub events: Vec<String>,
    /// Creation time, Unix µs.
    pub created_at: i64,
    /// Soft-deletion time, Unix µs.
    pub deleted_at: Option<i64>,
    /// The secret before the last rotation, with the end of its overlap (Unix µs): until
    /// then deliveries carry a signature with each. Never logged nor shown.
    pub previous_secret: Option<(String, i64)>,
    /// Time of the last rotation, Unix µs.
    pub secret_rotated_at: Option<i64>,
}

// Written by hand so that the secret cannot reach a log line through `{:?}` (STYLE 11).
impl std::fmt::Debug for WebhookRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRow")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("events", &self.events)
            .field("created_at", &self.created_at)
            .field("deleted_at", &self.deleted_at)
            .field(
                "previous_secret",
                &self
                    .previous_secret
                    .as_ref()
                    .map(|(_, until)| ("<redacted>", until)),
            )
            .field("secret_rotated_at", &self.secret_rotated_at)
            .finish()
    }
}

/// A delivery about to be created by fan-out.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Delivery id (UUID v7), sent as `Recommande-Delivery` so receivers de-duplicate.
    pub id: String,
    /// Target webhook.
    pub webhook_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Event name.
    pub event: String,
    /// The letter concerned (letter events).
    pub letter_id: Option<String>,
    /// The evidence record of the event (letter events).
    pub evidence_id: Option<String>,
    /// The batch concerned (`batch.completed`).
    pub batch_id: Option<String>,
    /// Exact JSON bytes to send, on every attempt.
    pub payload: Vec<u8>,
    /// First attempt time, Unix µs.
    pub next_attempt_at: i64,
    /// Creation time, Unix µs.
    pub created_at: i64,
}

/// A delivery as recorded, with the outcome of its attempts.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRow {
    /// Delivery id.
    pub id: String,
    /// Target webhook.
    pub webhook_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Event name.
    pub event: String,
    /// The letter concerned (letter events).
    pub letter_id: Option<String>,
    /// The evidence record of the event (letter events).
    pub evidence_id: Option<String>,
    /// The batch concerned (`batch.completed`).
    pub batch_id: Option<String>,
    /// Exact JSON bytes sent.
    pub payload: Vec<u8>,
    /// Attempts made so far.
    pub attempts: i64,
    /// Next attempt (or the end of the current lease), Unix µs; `None` once settled.
    pub next_attempt_at: Option<i64>,
    /// First attempt, Unix µs: the retry window runs from it.
    pub first_attempt_at: Option<i64>,
    /// Last attempt, Unix µs.
    pub last_attempt_at: Option<i64>,
    /// HTTP status of the last attempt, when the receiver answered.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When a 2xx answer was received, Unix µs.
    pub delivered_at: Option<i64>,
    /// When retries stopped without success, Unix µs.
    pub failed_at: Option<i64>,
    /// Creation time, Unix µs.
    pub created_at: i64,
}

/// A delivery claimed by a worker, with what it needs to send it.
#[derive(Clone)]
pub struct ClaimedDelivery {
    /// The delivery as it was when claimed (its `next_attempt_at` is the lease).
    pub delivery: DeliveryRow,
    /// Where to send it.
    pub url: String,
    /// The webhook's signing secrets at the time of the claim: the current one, then the
    /// previous one during the overlap of a rotation.
    pub secrets: Vec<String>,
}

impl std::fmt::Debug for ClaimedDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedDelivery")
            .field("delivery", &self.delivery)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The result of one attempt, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// Delivery id.
    pub delivery_id: String,
    /// Attempt time, Unix µs.
    pub at: i64,
    /// HTTP status, when the receiver answered.
    pub status: Option<i64>,
    /// Why it failed; `None` on success.
    pub error: Option<String>,
    /// What happens next.
    pub outcome: AttemptOutcome,
}

/// What an attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx answer: the delivery is done.
    Delivered,
    /// Failed; try again at this time (Unix µs).
    RetryAt(i64),
    /// Failed, and the retry window is over: give up.
    GiveUp,
}

macro_rules! webhook_columns {
    () => {
        "id, tenant_id, url, secret, events, created_at, deleted_at, secret_key_id, secret_sealed, \
         previous_secret_key_id, previous_secret_sealed, previous_secret_until, secret_rotated_at"
    };
}

macro_rules! delivery_columns {
    () => {
        "id, webhook_id, tenant_id, event, letter_id, evidence_id, batch_id, payload, attempts, \
         next_attempt_at, first_attempt_at, last_attempt_at, last_status, last_error, \
         delivered_at, failed_at, created_at"
    };
}

/// A `webhooks` row as read, before its secret is opened and its events parsed.
#[derive(sqlx::FromRow)]
struct WebhookRecord {
    id: String,
    tenant_id: String,
    url: String,
    secret: String,
    events: String,
    created_at: i64,
    deleted_at: Option<i64>,
    secret_key_id: Option<String>,
    secret_sealed: Option<Vec<u8>>,
    previous_secret_key_id: Option<String>,
    previous_secret_sealed: Option<Vec<u8>>,
    previous_secret_until: Option<i64>,
    secret_rotated_at: Option<i64>,
}

impl WebhookRecord {
    /// The webhook with its secret opened under `keys`.
    fn open(self, keys: Option<&crate::infra::keys::Keyring>) -> Result<WebhookRow, StorageError> {
        let secret = open_webhook_secret(
            keys,
            &self.id,
            self.secret,
            self.secret_key_id,
            self.secret_sealed,
        )?;
        let previous_secret = open_previous_secret(
            keys,
            &self.id,
            self.previous_secret_key_id,
            self.previous_secret_sealed,
            self.previous_secret_until,
        )?;
        Ok(WebhookRow {
            events: serde_json::from_str(&self.events).map_err(|e| {
                StorageError::Corrupt(format!("webhook {} has unreadable events: {e}", self.id))
            })?,
            id: self.id,
            tenant_id: self.tenant_id,
            url: self.url,
            secret,
            created_at: self.created_at,
            deleted_at: self.deleted_at,
            previous_secret,
            secret_rotated_at: self.secret_rotated_at,
        })
    }
}

/// A claimed delivery as read, with its webhook's target and sealed secret.
#[derive(sqlx::FromRow)]
struct ClaimedRecord {
    #[sqlx(flatten)]
    delivery: DeliveryRow,
    webhook_url: String,
    webhook_secret: String,
    webhook_secret_key_id: Option<String>,
    webhook_secret_sealed: Option<Vec<u8>>,
    webhook_previous_secret_key_id: Option<String>,
    webhook_previous_secret_sealed: Option<Vec<u8>>,
    webhook_previous_secret_until: Option<i64>,
}

/// What webhook secrets are, bound into their sealing (associated data).
const WEBHOOK_SECRET_PURPOSE: &str = "webhook signing secret";

/// The clear signing secret of webhook `id` from its columns: opened when sealed; a row of
/// an earlier version not yet sealed at start still has it in `clear`.
fn open_webhook_secret(
    keys: Option<&crate::infra::keys::Keyring>,
    id: &str,
    clear: String,
    key_id: Option<String>,
    sealed: Option<Vec<u8>>,
) -> Result<String, StorageError> {
    let (Some(key_id), Some(sealed)) = (key_id, sealed) else {
        return Ok(clear);
    };
    let keys = keys.ok_or_else(|| {
        StorageError::Sealing(crate::infra::keys::KeyError::Unknown(key_id.clone()))
    })?;
    let plain = keys.open_secret(&key_id, WEBHOOK_SECRET_PURPOSE, id, &sealed)?;
    String::from_utf8(plain)
        .map_err(|_| StorageError::Corrupt(format!("webhook {id} has a non-UTF-8 secret")))
}

/// The previous secret of webhook `id` and the end of its overlap, when a rotation left one.
fn open_previous_secret(
    keys: Option<&crate::infra::keys::Keyring>,
    id: &str,
    key_id: Option<String>,
    sealed: Option<Vec<u8>>,
    until: Option<i64>,
) -> Result<Option<(String, i64)>, StorageError> {
    match (key_id, sealed, until) {
        (Some(key_id), Some(sealed), Some(until)) => {
            let secret = open_webhook_secret(keys, id, String::new(), Some(key_id), Some(sealed))?;
            Ok(Some((secret, until)))
        }
        _ => Ok(None),
    }
}

impl Storage {
    /// Seals every webhook secret still kept in clear (rows written before migration 0013)
    /// under the active master key and erases the clear copies, all in one transaction:
    /// the same secret keeps signing deliveries. Returns how many rows were sealed.
    pub async fn seal_clear_webhook_secrets(&self) -> Result<u64, StorageError> {
        let keys = self.secret_keys()?;
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            let rows = sqlx::query("SELECT id, secret FROM webhooks WHERE secret_sealed IS NULL")
                .fetch_all(&mut *tx)
                .await?;
            let mut sealed_rows = 0;
            for row in rows {
                let id: String = row.try_get("id")?;
                let clear: String = row.try_get("secret")?;
                let (key_id, sealed) =
                    keys.seal_secret(WEBHOOK_SECRET_PURPOSE, &id, clear.as_bytes())?;
                sealed_rows += sqlx::query(
                    "UPDATE webhooks SET secret = '', secret_key_id = $1, secret_sealed = $2 \
                     WHERE id = $3 AND secret_sealed IS NULL",
                )
                .bind(&key_id)
                .bind(&sealed)
                .bind(&id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            tx.commit().await?;
            Ok(sealed_rows)
        })
    }

    /// Re-seals under the active master key every webhook secret sealed under another one,
    /// in one transaction; returns how many.
    pub async fn reseal_webhook_secrets(
        &self,
        keys: &crate::infra::keys::Keyring,
    ) -> Result<u64, StorageError> {
        let active = keys.active_id().to_string();
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            let mut resealed = 0;
            // The current secrets, then the previous ones of rotations, sealed the same way
            // (SQL text from this fixed list only).
            for (select, update) in [
                (
                    "SELECT id, secret_key_id AS key_id, secret_sealed AS sealed FROM webhooks \
                     WHERE secret_sealed IS NOT NULL AND secret_key_id <> $1",
                    "UPDATE webhooks SET secret_key_id = $1, secret_sealed = $2 \
                     WHERE id = $3 AND secret_key_id = $4",
                ),
                (
                    "SELECT id, previous_secret_key_id AS key_id, previous_secret_sealed AS sealed \
                     FROM webhooks WHERE previous_secret_sealed IS NOT NULL \
                     AND previous_secret_key_id <> $1",
                    "UPDATE webhooks SET previous_secret_key_id = $1, previous_secret_sealed = $2 \
                     WHERE id = $3 AND previous_secret_key_id = $4",
                ),
            ] {
                let rows = sqlx::query(select)
                    .bind(&active)
                    .fetch_all(&mut *tx)
                    .await?;
                for row in rows {
                    let id: String = row.try_get("id")?;
                    let key_id: String = row.try_get("key_id")?;
                    let sealed: Vec<u8> = row.try_get("sealed")?;
                    let plain = keys.open_secret(&key_id, WEBHOOK_SECRET_PURPOSE, &id, &sealed)?;
                    let (new_id, new_sealed) =
                        keys.seal_secret(WEBHOOK_SECRET_PURPOSE, &id, &plain)?;
                    resealed += sqlx::query(update)
                        .bind(&new_id)
                        .bind(&new_sealed)
                        .bind(&id)
                        .bind(&key_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
            }
            tx.commit().await?;
            Ok(resealed)
        })
    }

    /// Records a webhook and the optional idempotency record in one transaction. An
    /// claim this request no longer holds yields `IdempotencyClaimLost`.
    pub async fn insert_webhook(
        &self,
        webhook: &WebhookRow,
        idempotency: Option<&IdempotencyRow>,
    ) -> Result<(), StorageError> {
        let events = serde_json::to_string(&webhook.events)
            .map_err(|e| StorageError::Corrupt(format!("events not serialisable: {e}")))?;
        let sql = concat!(
            "INSERT INTO webhooks (",
            webhook_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, NULL, NULL)"
        );
        // Issue 12 §4: the secret is stored only sealed under the master key (bound to the
        // webhook id); the clear column keeps the empty string.
        let (key_id, sealed) = self.secret_keys()?.seal_secret(
            WEBHOOK_SECRET_PURPOSE,
            &webhook.id,
            webhook.secret.as_bytes(),
        )?;
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            if let Some(idem) = idempotency {
                complete_idempotency!(&mut *tx, idem);
            }
            sqlx::query(sql)
                .bind(&webhook.id)
                .bind(&webhook.tenant_id)
                .bind(&webhook.url)
                .bind("")
                .bind(&events)
                .bind(webhook.created_at)
                .bind(webhook.deleted_at)
                .bind(&key_id)
                .bind(&sealed)
                .execute(&mut *tx)
                .await
                .map_err(|e| StorageError::from_insert(e, "webhook"))?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The tenant's webhook `id`, deleted or not (another tenant's webhook is `None`).
    pub async fn webhook(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<WebhookRow>, StorageError> {
        let sql = concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks WHERE tenant_id = $1 AND id = $2"
        );
        let keys = self.secret_keys.as_deref();
        dispatch!(self.reader(), |pool, Db| {
            let row: Option<WebhookRecord> = sqlx::query_as(sql)
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(pool)
                .await?;
            row.map(|r| r.open(keys)).transpose()
        })
    }

    /// The tenant's webhooks that are not deleted, oldest first.
    pub async fn active_webhooks(&self, tenant_id: &str) -> Result<Vec<WebhookRow>, StorageError> {
        let sql = concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY id"
        );
        let keys = self.secret_keys.as_deref();
        // Through the write pool on SQLite: fan-out right after a webhook is created or
        // deleted must see that write.
        dispatch!(self.writer(), |pool, Db| {
            let rows: Vec<WebhookRecord> =
                sqlx::query_as(sql).bind(tenant_id).fetch_all(pool).await?;
            rows.into_iter().map(|r| r.open(keys)).collect()
        })
    }

    /// Rotates the signing secret of the tenant's active webhook `id` at `now`: `secret`
    /// becomes the current one, the current one the previous, still signing until `until`
    /// (Unix µs); the one before is forgotten. The optional idempotency record commits in the
    /// same transaction. Returns false (nothing changed) when there is no such active webhook.
    pub async fn rotate_webhook_secret(
        &self,
        tenant_id: &str,
        id: &str,
        secret: &str,
        (until, now): (i64, i64),
        idempotency: Option<&IdempotencyRow>,
    ) -> Result<bool, StorageError> {
        let (key_id, sealed) =
            self.secret_keys()?
                .seal_secret(WEBHOOK_SECRET_PURPOSE, id, secret.as_bytes())?;
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            // The right-hand sides read the row as it was: the current secret moves over.
            let done = sqlx::query(
                "UPDATE webhooks SET previous_secret_key_id = secret_key_id, \
                 previous_secret_sealed = secret_sealed, previous_secret_until = $3, \
                 secret_key_id = $4, secret_sealed = $5, secret_rotated_at = $6 \
                 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL \
                 AND secret_sealed IS NOT NULL",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(until)
            .bind(&key_id)
            .bind(&sealed)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            if let Some(idem) = idempotency {
                complete_idempotency!(&mut *tx, idem);
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Soft-deletes the tenant's webhook `id` and stops its pending deliveries, in one
    /// transaction. Returns false when there is no such webhook or it was already deleted.
    pub async fn delete_webhook(
        &self,
        tenant_id: &str,
        id: &str,
        now: i64,
    ) -> Result<bool, StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE webhooks SET deleted_at = $3 \
                 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            sqlx::query(
                "UPDATE webhook_deliveries SET next_attempt_at = NULL, failed_at = $2, \
                 last_error = 'webhook deleted' \
                 WHERE webhook_id = $1 AND delivered_at IS NULL AND failed_at IS NULL",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Inserts deliveries, skipping any whose (webhook, evidence, event) already exists.
    /// Returns how many were created.
    pub async fn insert_deliveries(
        &self,
        deliveries: &[NewDelivery],
    ) -> Result<usize, StorageError> {
        if deliveries.is_empty() {
            return Ok(0);
        }
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            let mut created = 0;
            for chunk in deliveries.chunks(super::INSERT_CHUNK) {
                let mut query = QueryBuilder::<Db>::new(
                    "INSERT INTO webhook_deliveries (id, webhook_id, tenant_id, event, letter_id, \
                     evidence_id, batch_id, payload, attempts, next_attempt_at, created_at) ",
                );
                query.push_values(chunk, |mut b, d| {
                    b.push_bind(&d.id)
                        .push_bind(&d.webhook_id)
                        .push_bind(&d.tenant_id)
                        .push_bind(&d.event)
                        .push_bind(&d.letter_id)
                        .push_bind(&d.evidence_id)
                        .push_bind(&d.batch_id)
                        .push_bind(&d.payload)
                        .push_bind(0_i64)
                        .push_bind(d.next_attempt_at)
                        .push_bind(d.created_at);
                });
                // Either uniqueness: (webhook, evidence, event) or (webhook, batch, event).
                query.push(" ON CONFLICT DO NOTHING");
                let done = query.build().execute(&mut *tx).await?;
                created += done.rows_affected() as usize;
            }
            tx.commit().await?;
            Ok(created)
        })
    }

    /// Gives back the claims `(id, lease_until)` of deliveries whose attempt a stopping
    /// worker did not record: each still leased by that claim is due again at `now`.
    /// Returns how many were released.
    pub async fn release_deliveries(
        &self,
        claims: &[(String, i64)],
        now: i64,
    ) -> Result<u64, StorageError> {
        self.release_leases(
            "UPDATE webhook_deliveries SET next_attempt_at = $1 \
             WHERE id = $2 AND next_attempt_at = $3",
            claims,
            now,
        )
        .await
    }

    /// Runs `sql` (`SET next_attempt_at = $1 WHERE id = $2 AND next_attempt_at = $3`) for
    /// each claim `(id, lease_until)`: the rows still leased by that claim are due at `now`.
    /// Returns how many were released.
    pub(super) async fn release_leases(
        &self,
        sql: &'static str,
        claims: &[(String, i64)],
        now: i64,
    ) -> Result<u64, StorageError> {
        let mut released = 0;
        dispatch!(self.writer(), |pool, Db| {
            for (id, lease_until) in claims {
                let done = sqlx::query(sql)
                    .bind(now)
                    .bind(id)
                    .bind(lease_until)
                    .execute(pool)
                    .await?;
                released += done.rows_affected();
            }
            Ok(released)
        })
    }

    /// Claims at most `limit` deliveries due at `now` (oldest due first), at most
    /// `per_tenant` of each tenant and none of the tenants in `busy_tenants` (their
    /// receivers already have as many attempts in flight as allowed), and leases them until
    /// `lease_until`: another worker will not pick them up before then, and a worker that
    /// dies mid-attempt leaves them to be retried when the lease ends. The per-tenant cap
    /// keeps one tenant's backlog from filling a whole pass.
    pub async fn claim_due_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
        per_tenant: i64,
        busy_tenants: &[String],
    ) -> Result<Vec<ClaimedDelivery>, StorageError> {
        let keys = self.secret_keys.as_deref();
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            // The webhook must still exist: deletion also clears `next_attempt_at`, the join
            // is a second guard against a delivery created concurrently with the deletion.
            // The due condition is repeated outside the ranking so that PostgreSQL checks it
            // again on the rows it locks.
            let mut select = QueryBuilder::<Db>::new(
                "SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                 WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ",
            );
            select
                .push_bind(now)
                .push(
                    " AND w.deleted_at IS NULL AND d.id IN (SELECT ranked.id FROM (\
                     SELECT x.id, ROW_NUMBER() OVER (PARTITION BY x.tenant_id \
                     ORDER BY x.next_attempt_at, x.id) AS n \
                     FROM webhook_deliveries x JOIN webhooks y ON y.id = x.webhook_id \
                     WHERE x.next_attempt_at IS NOT NULL AND x.next_attempt_at <= ",
                )
                .push_bind(now)
                .push(" AND y.deleted_at IS NULL");
            if !busy_tenants.is_empty() {
                select.push(" AND x.tenant_id NOT IN (");
                let mut list = select.separated(", ");
                for tenant in busy_tenants {
                    list.push_bind(tenant);
                }
                list.push_unseparated(")");
            }
            select
                .push(") ranked WHERE ranked.n <= ")
                .push_bind(per_tenant)
                .push(") ORDER BY d.next_attempt_at, d.id LIMIT ")
                .push_bind(limit);
            // Rows locked by another instance's claim are skipped, not waited for.
            select.push(<Db as super::dialect::Dialect>::SKIP_LOCKED_OF_D);
            let ids: Vec<String> = select.build_query_scalar().fetch_all(&mut *tx).await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut query =
                QueryBuilder::<Db>::new("UPDATE webhook_deliveries SET next_attempt_at = ");
            query.push_bind(lease_until).push(" WHERE id IN (");
            let mut list = query.separated(", ");
            for id in &ids {
                list.push_bind(id);
            }
            list.push_unseparated(")");
            query.build().execute(&mut *tx).await?;

            let mut query = QueryBuilder::<Db>::new(
                "SELECT d.id, d.webhook_id, d.tenant_id, d.event, d.letter_id, d.evidence_id, d.batch_id, \
                 d.payload, d.attempts, d.next_attempt_at, d.first_attempt_at, d.last_attempt_at, \
                 d.last_status, d.last_error, d.delivered_at, d.failed_at, d.created_at, \
                 w.url AS webhook_url, w.secret AS webhook_secret, \
                 w.secret_key_id AS webhook_secret_key_id, w.secret_sealed AS webhook_secret_sealed, \
                 w.previous_secret_key_id AS webhook_previous_secret_key_id, \
                 w.previous_secret_sealed AS webhook_previous_secret_sealed, \
                 w.previous_secret_until AS webhook_previous_secret_until \
                 FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id IN (",
            );
            let mut list = query.separated(", ");
            for id in &ids {
                list.push_bind(id);
            }
            list.push_unseparated(") ORDER BY d.id");
            let rows = query
                .build_query_as::<ClaimedRecord>()
                .fetch_all(&mut *tx)
                .await?;
            let mut claimed = Vec::with_capacity(rows.len());
            for row in rows {
                let webhook_id = &row.delivery.webhook_id;
                let mut secrets = vec![open_webhook_secret(
                    keys,
                    webhook_id,
                    row.webhook_secret,
                    row.webhook_secret_key_id,
                    row.webhook_secret_sealed,
                )?];
                if let Some((previous, until)) = open_previous_secret(
                    keys,
                    webhook_id,
                    row.webhook_previous_secret_key_id,
                    row.webhook_previous_secret_sealed,
                    row.webhook_previous_secret_until,
                )? && until > now
                {
                    secrets.push(previous);
                }
                claimed.push(ClaimedDelivery {
                    url: row.webhook_url,
                    secrets,
                    delivery: row.delivery,
                });
            }
            tx.commit().await?;
            Ok(claimed)
        })
    }

    /// Records one attempt. A delivery already settled (delivered, given up, or stopped by
    /// the deletion of its webhook) is left as it is; returns whether the row changed.
    pub async fn record_delivery_attempt(
        &self,
        attempt: &DeliveryAttempt,
    ) -> Result<bool, StorageError> {
        let (next_attempt_at, delivered_at, failed_at) = match attempt.outcome {
            AttemptOutcome::Delivered => (None, Some(attempt.at), None),
            AttemptOutcome::RetryAt(at) => (Some(at), None, None),
            AttemptOutcome::GiveUp => (None, None, Some(attempt.at)),
        };
        Ok(execute!(
            self.writer(),
            "UPDATE webhook_deliveries SET attempts = attempts + 1, \
                 first_attempt_at = COALESCE(first_attempt_at, $2), last_attempt_at = $2, \
                 last_status = $3, last_error = $4, next_attempt_at = $5, delivered_at = $6, \
                 failed_at = $7 \
                 WHERE id = $1 AND delivered_at IS NULL AND failed_at IS NULL",
            &attempt.delivery_id,
            attempt.at,
            attempt.status,
            &attempt.error,
            next_attempt_at,
            delivered_at,
            failed_at
        )? == 1)
    }

    /// Deliveries of the tenant's webhook `webhook_id`, ordered by id, after `after_id`.
    pub async fn list_deliveries(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, StorageError> {
        let sql = concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE tenant_id = $1 AND webhook_id = $2 \
             AND ($3 IS NULL OR id > $3) ORDER BY id LIMIT $4"
        );
        dispatch!(self.reader(), |pool, Db| {
            let rows: Vec<DeliveryRow> = sqlx::query_as(sql)
                .bind(tenant_id)
                .bind(webhook_id)
                .bind(after_id)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            Ok(rows)
        })
    }
}
