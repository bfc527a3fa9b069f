//! Webhooks: register where letter events are announced, read them, delete them, and follow
//! their deliveries. The signing secret is accepted once and never shown again.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::idempotency::{Idempotency, IdempotencyKeyHeader};
use super::problem::Problem;
use super::problem::shared::{ApiKeyProblems, JsonPostProblems, ListProblems};
use super::{
    PageQuery, json_bytes, json_ok, json_response, path_uuid, require_json_content, with_location,
};
use crate::app::api_key::Caller;
use crate::app::service::Service;
use crate::app::webhook::{RotationRequest, WebhookRequest, secret_hint};
use crate::core::clock::{from_unix_micros, rfc3339_micros, unix_micros};
use crate::domain::letter::field_error;
use crate::infra::storage::{DeliveryRow, WebhookRow};

/// Whether a webhook still receives deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    /// Receives the events it subscribed to.
    Active,
    /// Deleted: receives nothing; its delivery log stays readable.
    Deleted,
}

/// A webhook as the API shows it (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    /// Webhook id.
    pub id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Subscribed events.
    pub events: Vec<String>,
    /// The last four characters of the signing secret, to recognise it.
    pub secret_hint: String,
    /// Only in the answer to a registration without `secret`: the secret the service made
    /// (`whsec_…`), shown this once. Keep it: it verifies `webhook-signature`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `active` or `deleted`.
    pub status: WebhookStatus,
    /// Creation time (RFC 3339 UTC).
    pub created_at: String,
    /// Deletion time (RFC 3339 UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    /// Time of the last rotation of the secret (RFC 3339 UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_rotated_at: Option<String>,
    /// Until when the secret before the last rotation still signs deliveries (a second
    /// signature in `webhook-signature`), while that time is ahead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<String>,
}

/// The account's active webhooks.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookList {
    /// Webhooks, oldest first.
    pub items: Vec<WebhookView>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not yet acknowledged; retried until 48 hours after the first attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up (retry window over, or the webhook was deleted).
    Failed,
}

/// One delivery of an event to a webhook, with the outcome of its attempts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    /// Delivery id, sent as `Recommande-Delivery` (the same on every attempt).
    pub id: String,
    /// Event name.
    pub event: String,
    /// The letter concerned (letter events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub letter_id: Option<String>,
    /// The evidence record of the event (letter events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence_id: Option<String>,
    /// The batch concerned (`batch.completed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// `pending`, `delivered` or `failed`.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: i64,
    /// Creation time (RFC 3339 UTC).
    pub created_at: String,
    /// Next attempt, while pending (RFC 3339 UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// Last attempt (RFC 3339 UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<String>,
    /// HTTP status of the last answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it was acknowledged (RFC 3339 UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
    /// When retries stopped (RFC 3339 UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<String>,
}

page!(DeliveryPage of DeliveryView, "A page of deliveries.", "Deliveries, oldest first.");

/// Body of `POST /v1/webhooks/{id}/rotate-secret`, as the OpenAPI document publishes it
/// (checked by [`RotationRequest::parse`]; an empty body takes every default).
#[derive(utoipa::ToSchema)]
pub struct RotateSecretBody {
    /// The new secret, 16 to 256 characters; leave it out to get a `whsec_…` secret made by
    /// the service, shown once in the answer.
    pub secret: Option<String>,
    /// Seconds during which the previous secret still signs deliveries beside the new one,
    /// 0 to 604800 (a week; default 86400, a day).
    pub overlap_seconds: Option<i64>,
}

/// Body of `POST /v1/webhooks`, as the OpenAPI document publishes it. The handler checks the
/// body field by field ([`crate::app::webhook::WebhookRequest::parse`]) to list every problem
/// at once; the tests of [`super::openapi`] keep this schema and
/// [`crate::app::webhook::WEBHOOK_FIELDS`] in step and feed bodies built from the schema to
/// the parser.
#[derive(utoipa::ToSchema)]
pub struct WebhookBody {
    /// Absolute URL receiving the POSTs (https outside development); redirects are not
    /// followed. It must not name a loopback, private, link-local or other non-public
    /// address nor a metadata name (`localhost`, `metadata.google.internal`, `*.internal`…)
    /// unless the operator allows the range (`[outbound] allowed_private`); a name that
    /// resolves to such an address is refused at delivery.
    pub url: String,
    /// 16 to 256 characters; signs each delivery (`webhook-signature`, and the older
    /// `Recommande-Signature`). Never shown again. Leave it out to get a `whsec_…` secret
    /// made by the service, shown once in the answer.
    pub secret: Option<String>,
    /// A non-empty subset of `letter.deposited`, `letter.notified`,
    /// `letter.notification_failed`, `letter.accepted`, `letter.refused`, `letter.expired`,
    /// `letter.content_handed_over`.
    pub events: Vec<String>,
}

/// Registers a webhook. Each delivery is a POST of `{"id","event","letter_id","evidence_id",
/// "occurred_at"}` signed with `Recommande-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
/// "<t>." ‖ body)>`, retried with backoff for 48 hours until a 2xx answer (at least once).
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks",
    request_body(content = WebhookBody, content_type = "application/json"),
    params(IdempotencyKeyHeader),
    responses((status = 201, description = "Webhook registered", body = WebhookView),
              (status = 422, description = "Invalid fields (all listed), or Idempotency-Key reused", body = Problem),
              JsonPostProblems),
    security(("api_key" = [])))]
pub async fn create(
    State(service): State<Service>,
    caller: Caller,
    idempotency: Idempotency,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    require_json_content(&headers, "the webhook")?;
    idempotency
        .run(&service, &caller, &body, async |claim| {
        let value = super::json_body(&body)?;
        let request = WebhookRequest::parse(&value, service.outbound.policy())
            .map_err(Problem::validation)?;
        let now = unix_micros(service.clock.now());
        let (secret, generated) = chosen_or_made(request.secret)?;
        let row = WebhookRow {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: caller.tenant_id.clone(),
            url: request.url,
            secret,
            events: request.events,
            created_at: now,
            deleted_at: None,
            previous_secret: None,
            secret_rotated_at: None,
        };
        // The stored replay holds the view only: no secret, unless the service made it (a
        // retried registration must still tell it; it is in the same database anyway).
        let mut shown = view_at(&row, now);
        if generated {
            shown.secret = Some(row.secret.clone());
        }
        let response = json_bytes(&shown)?;
        let location = format!("/v1/webhooks/{}", row.id);
        let answer = claim.answer(StatusCode::CREATED, Some(&location), &response, now);
        // The answer commits with the record, or neither does.
        service
            .storage
            .insert_webhook(&row, answer.as_ref())
            .await?;
        tracing::info!(webhook.id = %row.id, tenant.id = %caller.tenant_id, "webhook registered");
        Ok(with_location(
            json_response(StatusCode::CREATED, response),
            &location,
        ))
        })
        .await
}

/// Rotates the signing secret of an active webhook (Standard Webhooks): the new secret signs
/// every delivery from now on and the previous one keeps signing beside it, as a second
/// `v1,…` of `webhook-signature` (and a second `v1=` of `Recommande-Signature`), for
/// `overlap_seconds`. A rotation during an overlap forgets the oldest secret: at most two
/// are valid. The answer shows the new secret when the service made it.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id"), IdempotencyKeyHeader),
    request_body(content = RotateSecretBody, content_type = "application/json"),
    responses((status = 200, description = "The secret is rotated", body = WebhookView),
              (status = 404, description = "No such active webhook for this account", body = Problem),
              (status = 422, description = "Invalid fields (all listed), or Idempotency-Key reused", body = Problem),
              JsonPostProblems),
    security(("api_key" = [])))]
pub async fn rotate_secret(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
    idempotency: Idempotency,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    if !body.is_empty() {
        require_json_content(&headers, "the rotation")?;
    }
    idempotency
        .run(&service, &caller, &body, async |claim| {
            let value = if body.is_empty() {
                serde_json::json!({})
            } else {
                super::json_body(&body)?
            };
            let request = RotationRequest::parse(&value).map_err(Problem::validation)?;
            let webhook = find(&service, &caller, &id).await?;
            if webhook.deleted_at.is_some() {
                return Err(Problem::not_found(format!(
                    "no active webhook {id} for this account"
                )));
            }
            let (secret, generated) = chosen_or_made(request.secret)?;
            let now = unix_micros(service.clock.now());
            let until = now + request.overlap_seconds * 1_000_000;
            let rotated = WebhookRow {
                previous_secret: Some((webhook.secret.clone(), until)),
                secret_rotated_at: Some(now),
                secret: secret.clone(),
                ..webhook
            };
            let mut shown = view_at(&rotated, now);
            if generated {
                shown.secret = Some(secret.clone());
            }
            let response = json_bytes(&shown)?;
            let answer = claim.answer(StatusCode::OK, None, &response, now);
            if !service
                .storage
                .rotate_webhook_secret(
                    &caller.tenant_id,
                    &rotated.id,
                    &secret,
                    (until, now),
                    answer.as_ref(),
                )
                .await?
            {
                return Err(Problem::not_found(format!(
                    "no active webhook {id} for this account"
                )));
            }
            tracing::info!(webhook.id = %rotated.id, tenant.id = %caller.tenant_id,
                overlap_seconds = request.overlap_seconds, "webhook secret rotated");
            Ok(json_response(StatusCode::OK, response))
        })
        .await
}

/// The account's active webhooks.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses((status = 200, description = "Active webhooks", body = WebhookList),
              ApiKeyProblems),
    security(("api_key" = [])))]
pub async fn list(State(service): State<Service>, caller: Caller) -> Result<Response, Problem> {
    let rows = service.storage.active_webhooks(&caller.tenant_id).await?;
    let now = unix_micros(service.clock.now());
    let items = rows.iter().map(|row| view_at(row, now)).collect();
    json_ok(&WebhookList { items })
}

/// One webhook of this account, active or deleted.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, description = "The webhook", body = WebhookView),
              (status = 404, description = "No such webhook for this account", body = Problem),
              ApiKeyProblems),
    security(("api_key" = [])))]
pub async fn show(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let row = find(&service, &caller, &id).await?;
    json_ok(&view_at(&row, unix_micros(service.clock.now())))
}

/// Deletes a webhook: it receives nothing more and its pending deliveries stop. Its delivery
/// log stays readable.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, description = "The deleted webhook", body = WebhookView),
              (status = 404, description = "No such active webhook for this account", body = Problem),
              ApiKeyProblems),
    security(("api_key" = [])))]
pub async fn delete(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let Some(uuid) = path_uuid(&id) else {
        return Err(not_found(&id));
    };
    let now = unix_micros(service.clock.now());
    if !service
        .storage
        .delete_webhook(&caller.tenant_id, &uuid, now)
        .await?
    {
        return Err(Problem::not_found(format!(
            "no active webhook {id} for this account"
        )));
    }
    tracing::info!(webhook.id = %uuid, tenant.id = %caller.tenant_id, "webhook deleted");
    let row = find(&service, &caller, &uuid).await?;
    json_ok(&view_at(&row, unix_micros(service.clock.now())))
}

/// The deliveries of a webhook, oldest first: attempts, last answer, error, times.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id"),
           ("limit" = Option<i64>, Query, description = "Page size, 1 to 500 (default 50)"),
           ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page of deliveries", body = DeliveryPage),
              (status = 404, description = "No such webhook for this account", body = Problem),
              ListProblems),
    security(("api_key" = [])))]
pub async fn deliveries(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    let mut errors = Vec::new();
    let mut page = PageQuery::default();
    for (key, value) in &params {
        if !page.accept(key, value, &mut errors) {
            errors.push(field_error(key, "is not a known parameter"));
        }
    }
    if !errors.is_empty() {
        errors.sort_by(|a, b| a.field.cmp(&b.field));
        return Err(Problem::invalid_query(errors));
    }
    let webhook = find(&service, &caller, &id).await?;
    // One more than asked tells whether another page exists.
    let mut rows = service
        .storage
        .list_deliveries(
            &caller.tenant_id,
            &webhook.id,
            page.after_id.as_deref(),
            page.limit + 1,
        )
        .await?;
    let next_cursor = page.cut(&mut rows, |r| &r.id);
    let items = rows.iter().map(delivery_view).collect();
    DeliveryPage::json(items, next_cursor)
}

/// The client's secret, or one made by the service (`true`: to show once).
fn chosen_or_made(secret: Option<String>) -> Result<(String, bool), Problem> {
    match secret {
        Some(secret) => Ok((secret, false)),
        None => crate::app::webhook::generate_secret()
            .map(|made| (made, true))
            .map_err(|_| Problem::internal(&"the system random generator failed")),
    }
}

fn not_found(id: &str) -> Problem {
    Problem::not_found(format!("no webhook {id} for this account"))
}

async fn find(service: &Service, caller: &Caller, id: &str) -> Result<WebhookRow, Problem> {
    let Some(uuid) = path_uuid(id) else {
        return Err(not_found(id));
    };
    service
        .storage
        .webhook(&caller.tenant_id, &uuid)
        .await?
        .ok_or_else(|| not_found(id))
}

fn time(at: i64) -> String {
    rfc3339_micros(from_unix_micros(at))
}

/// The webhook as shown at `now` (Unix µs).
fn view_at(row: &WebhookRow, now: i64) -> WebhookView {
    WebhookView {
        id: row.id.clone(),
        url: row.url.clone(),
        events: row.events.clone(),
        secret_hint: secret_hint(&row.secret),
        secret: None,
        status: if row.deleted_at.is_some() {
            WebhookStatus::Deleted
        } else {
            WebhookStatus::Active
        },
        created_at: time(row.created_at),
        deleted_at: row.deleted_at.map(time),
        secret_rotated_at: row.secret_rotated_at.map(time),
        previous_secret_expires_at: row
            .previous_secret
            .as_ref()
            .map(|(_, until)| *until)
            .filter(|until| *until > now)
            .map(time),
    }
}

fn delivery_view(row: &DeliveryRow) -> DeliveryView {
    let status = if row.delivered_at.is_some() {
        DeliveryStatus::Delivered
    } else if row.failed_at.is_some() {
        DeliveryStatus::Failed
    } else {
        DeliveryStatus::Pending
    };
    DeliveryView {
        id: row.id.clone(),
        event: row.event.clone(),
        letter_id: row.letter_id.clone(),
        evidence_id: row.evidence_id.clone(),
        batch_id: row.batch_id.clone(),
        status,
        attempts: row.attempts,
        created_at: time(row.created_at),
        next_attempt_at: row.next_attempt_at.map(time),
        last_attempt_at: row.last_attempt_at.map(time),
        last_status: row.last_status,
        last_error: row.last_error.clone(),
        delivered_at: row.delivered_at.map(time),
        failed_at: row.failed_at.map(time),
    }
}
