//! Consumer consents (CPCE L.100): record, read, list and withdraw.
//!
//! A deposit to a consumer must cite one of these by `recipient.consent_id`; see
//! [`crate::domain::consent`] for the rule and [`crate::app::deposit`] for where it is enforced.

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
use crate::core::clock::{from_unix_micros, rfc3339_micros, unix_micros};
use crate::domain::consent::{ConsentMethod, ConsentRequest, is_active, parse_withdrawal};
use crate::domain::letter::{EmailAddress, field_error};
use crate::infra::storage::{ConsentFilter, ConsentRow};

/// Whether a consent is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    /// Deposits to this consumer may cite it.
    Active,
    /// The consumer withdrew it; it stays recorded.
    Withdrawn,
}

/// A consent as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConsentView {
    /// Consent id: cite it as `recipient.consent_id` when depositing to this consumer.
    pub id: String,
    /// The consumer's address (domain lower-cased).
    pub email: String,
    /// The consumer's name.
    pub name: String,
    /// When the consumer consented (RFC 3339 UTC).
    pub given_at: String,
    /// How the consent was collected.
    pub method: ConsentMethod,
    /// The uploaded proof document, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_id: Option<String>,
    /// The sender the consumer agreed to receive letters from, when the consent names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// `active` or `withdrawn`.
    pub status: ConsentStatus,
    /// When it was recorded here (RFC 3339 UTC).
    pub created_at: String,
    /// When it was withdrawn (RFC 3339 UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<String>,
    /// Why, as told when withdrawing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawal_reason: Option<String>,
}

page!(ConsentPage of ConsentView, "A page of consents.", "Consents, oldest first.");

/// Body of `POST /v1/consents`, as the OpenAPI document publishes it. The handler checks the
/// body field by field ([`crate::domain::consent::ConsentRequest::parse`]) to list every
/// problem at once; the tests of [`super::openapi`] keep this schema and
/// [`crate::domain::consent::CONSENT_FIELDS`] in step and feed bodies built from the schema
/// to the parser.
#[derive(utoipa::ToSchema)]
pub struct ConsentBody {
    /// The consumer's email address.
    #[schema(format = "email")]
    pub email: String,
    /// The consumer's name.
    pub name: String,
    /// When the consumer consented (RFC 3339, not in the future).
    #[schema(format = DateTime)]
    pub given_at: String,
    /// How the consent was collected.
    pub method: ConsentMethod,
    /// An uploaded document of this account proving the consent.
    pub document_id: Option<String>,
    /// The sender the consumer agreed to receive letters from, as it deposits them: the
    /// agency, for letters an agency deposits for a creditor (required for those).
    pub sender: Option<String>,
}

/// Optional body of `DELETE /v1/consents/{id}`, as the OpenAPI document publishes it; read by
/// [`crate::domain::consent::parse_withdrawal`] (fields
/// [`crate::domain::consent::WITHDRAWAL_FIELDS`], kept in step by the tests of
/// [`super::openapi`]).
#[derive(utoipa::ToSchema)]
pub struct WithdrawalBody {
    /// Why the consent is withdrawn (≤ 200 characters).
    pub reason: Option<String>,
}

/// Records a consumer's prior consent to receive electronic registered letters from this
/// account (CPCE L.100).
#[utoipa::path(post, path = "/v1/consents", tag = "consents",
    request_body(content = ConsentBody, content_type = "application/json"),
    params(IdempotencyKeyHeader),
    responses((status = 201, description = "Consent recorded", body = ConsentView),
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
    require_json_content(&headers, "the consent")?;
    idempotency
        .run(&service, &caller, &body, async |claim| {
    let value = super::json_body(&body)?;
    let now = service.clock.now();
    let parsed = ConsentRequest::parse(&value, now);
    // The proof must be a document of this account; looked up even when other fields are
    // invalid, so that every problem is listed at once.
    let document = value
        .get("document_id")
        .and_then(|v| v.as_str())
        .and_then(path_uuid);
    let unknown_document = match &document {
        Some(id) => service
            .storage
            .documents(&caller.tenant_id, std::slice::from_ref(id))
            .await?
            .is_empty(),
        None => false,
    };
    let request = match parsed {
        Ok(request) if !unknown_document => request,
        result => {
            let mut errors = result.err().unwrap_or_default();
            if unknown_document {
                errors.push(field_error(
                    "document_id",
                    "no such document was uploaded by this account",
                ));
            }
            return Err(Problem::validation(errors));
        }
    };

    let row = ConsentRow {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: caller.tenant_id.clone(),
        email: request.email.as_str().to_string(),
        name: request.name,
        given_at: unix_micros(request.given_at),
        method: request.method.as_str().to_string(),
        document_id: request.document_id,
        created_at: unix_micros(now),
        withdrawn_at: None,
        withdrawal_reason: None,
        sender: request.sender,
    };
    let response = json_bytes(&view(&row)?)?;
    let location = format!("/v1/consents/{}", row.id);
    let answer = claim.answer(StatusCode::CREATED, Some(&location), &response, row.created_at);
    // The answer commits with the record, or neither does.
    service.storage.insert_consent(&row, answer.as_ref()).await?;
    tracing::info!(consent.id = %row.id, tenant.id = %caller.tenant_id, consent.method = %row.method, "consent recorded");
    Ok(with_location(
        json_response(StatusCode::CREATED, response),
        &location,
    ))
        })
        .await
}

/// One consent of this account.
#[utoipa::path(get, path = "/v1/consents/{id}", tag = "consents",
    params(("id" = String, Path, description = "Consent id")),
    responses((status = 200, description = "The consent", body = ConsentView),
              (status = 404, description = "No such consent for this account", body = Problem),
              ApiKeyProblems),
    security(("api_key" = [])))]
pub async fn show(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let row = find(&service, &caller, &id).await?;
    json_ok(&view(&row)?)
}

/// This account's consents, active and withdrawn, oldest first; optionally for one address.
#[utoipa::path(get, path = "/v1/consents", tag = "consents",
    params(("email" = Option<String>, Query, description = "Only consents for this address"),
           ("limit" = Option<i64>, Query, description = "Page size, 1 to 500 (default 50)"),
           ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page of consents", body = ConsentPage),
              ListProblems),
    security(("api_key" = [])))]
pub async fn list(
    State(service): State<Service>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    let mut errors = Vec::new();
    let mut page = PageQuery::default();
    let mut email = None;
    for (key, value) in &params {
        if page.accept(key, value, &mut errors) {
            continue;
        }
        match key.as_str() {
            "email" => match EmailAddress::parse(value) {
                Ok(e) => email = Some(e.as_str().to_string()),
                Err(message) => errors.push(field_error(
                    "email",
                    &format!("is not a valid email address: {message}"),
                )),
            },
            other => errors.push(field_error(other, "is not a known parameter")),
        }
    }
    if !errors.is_empty() {
        errors.sort_by(|a, b| a.field.cmp(&b.field));
        return Err(Problem::invalid_query(errors));
    }
    // One more than asked tells whether another page exists.
    let filter = ConsentFilter {
        email,
        after_id: page.after_id.clone(),
        limit: page.limit + 1,
    };
    let mut rows = service
        .storage
        .list_consents(&caller.tenant_id, &filter)
        .await?;
    let next_cursor = page.cut(&mut rows, |r| &r.id);
    let items = rows.iter().map(view).collect::<Result<Vec<_>, _>>()?;
    ConsentPage::json(items, next_cursor)
}

/// Withdraws a consent: from now on no deposit may cite it. The consent and its withdrawal
/// stay recorded (nothing is erased); withdrawing twice is refused.
#[utoipa::path(delete, path = "/v1/consents/{id}", tag = "consents",
    params(("id" = String, Path, description = "Consent id")),
    request_body(content = Option<WithdrawalBody>, content_type = "application/json"),
    responses((status = 200, description = "The withdrawn consent", body = ConsentView),
              (status = 400, description = "Malformed JSON", body = Problem),
              (status = 404, description = "No such consent for this account", body = Problem),
              (status = 409, description = "Already withdrawn", body = Problem),
              (status = 422, description = "Invalid fields (all listed)", body = Problem),
              ApiKeyProblems),
    security(("api_key" = [])))]
pub async fn withdraw(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let row = find(&service, &caller, &id).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        super::json_body(&body)?;
    }
    let reason = parse_withdrawal(&body).map_err(Problem::validation)?;
    let now = unix_micros(service.clock.now());
    let withdrawn = service
        .storage
        .withdraw_consent(&caller.tenant_id, &row.id, now, reason.as_deref())
        .await?;
    let Some(row) = service.storage.consent(&caller.tenant_id, &row.id).await? else {
        return Err(not_found(&id));
    };
    if !withdrawn {
        let when = row
            .withdrawn_at
            .map(|at| rfc3339_micros(from_unix_micros(at)))
            .unwrap_or_default();
        return Err(Problem::consent_already_withdrawn(format!(
            "consent {} was already withdrawn on {when}; the first withdrawal stands",
            row.id
        )));
    }
    tracing::info!(consent.id = %row.id, tenant.id = %caller.tenant_id, "consent withdrawn");
    json_ok(&view(&row)?)
}

fn not_found(id: &str) -> Problem {
    Problem::not_found(format!("no consent {id} for this account"))
}

async fn find(service: &Service, caller: &Caller, id: &str) -> Result<ConsentRow, Problem> {
    let Some(uuid) = path_uuid(id) else {
        return Err(not_found(id));
    };
    service
        .storage
        .consent(&caller.tenant_id, &uuid)
        .await?
        .ok_or_else(|| not_found(id))
}

fn view(row: &ConsentRow) -> Result<ConsentView, Problem> {
    let method = ConsentMethod::parse(&row.method).ok_or_else(|| {
        Problem::internal(&format!(
            "consent {} has an unknown method {:?}",
            row.id, row.method
        ))
    })?;
    let time = |at: i64| rfc3339_micros(from_unix_micros(at));
    Ok(ConsentView {
        id: row.id.clone(),
        email: row.email.clone(),
        name: row.name.clone(),
        given_at: time(row.given_at),
        method,
        document_id: row.document_id.clone(),
        sender: row.sender.clone(),
        status: if is_active(row) {
            ConsentStatus::Active
        } else {
            ConsentStatus::Withdrawn
        },
        created_at: time(row.created_at),
        withdrawn_at: row.withdrawn_at.map(time),
        withdrawal_reason: row.withdrawal_reason.clone(),
    })
}
