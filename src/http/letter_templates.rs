//! Collection letter templates of an account: `POST /v1/templates`, `GET /v1/templates`,
//! `GET /v1/templates/{id}`.
//!
//! A template is the account's own wording for the body of a relance or a mise en demeure,
//! with placeholders (`{{debtor.name}}`, `{{total}}`, `{{deadline}}`, …). Unknown
//! placeholders are refused here; when a letter is composed with it, the amounts, payment
//! details, legal texts and every mandatory mention are still added and checked on top of the
//! wording (see [`crate::domain::collection`]). Templates are immutable: new wording is a new template.

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
use crate::domain::collection::LetterKind;
use crate::domain::collection::wording::{PLACEHOLDERS, TemplateRequest};
use crate::domain::letter::field_error;
use crate::infra::storage::TemplateRow;

/// A template as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TemplateView {
    /// Template id: cite it when composing a letter.
    pub id: String,
    /// The account's name for it.
    pub name: String,
    /// The kind of letter it is for.
    pub kind: LetterKind,
    /// The wording as recorded, placeholders included.
    pub wording: String,
    /// The placeholders it uses, in order of first use.
    pub placeholders: Vec<String>,
    /// When it was recorded (RFC 3339 UTC).
    pub created_at: String,
}

page!(TemplatePage of TemplateView, "A page of templates.", "Templates, oldest first.");

/// Body of `POST /v1/templates`, as the OpenAPI document publishes it. The handler checks the
/// body field by field ([`crate::domain::collection::wording::TemplateRequest::parse`]) to
/// list every problem at once; the tests of [`super::openapi`] keep this schema and
/// [`crate::domain::collection::wording::TEMPLATE_FIELDS`] in step and feed bodies built from
/// the schema to the parser.
#[derive(utoipa::ToSchema)]
pub struct TemplateBody {
    /// The account's name for the template (≤ 200 characters).
    pub name: String,
    /// `relance` or `mise_en_demeure`.
    pub kind: LetterKind,
    /// The letter's body: paragraphs separated by blank lines, with placeholders among
    /// creditor.name, creditor.address, creditor.siren, debtor.name, debtor.address,
    /// agency.name, agency.address, agency.mandate_reference, invoices, principal, interest,
    /// indemnity, total, deadline, deadline_days, letter_date, first_letter.reference,
    /// first_letter.date, payment.link, payment.iban, payment.instructions — written
    /// `{{debtor.name}}` (≤ 10,000 characters).
    pub wording: String,
}

/// Records a template of wording for collection letters. Unknown placeholders are refused.
#[utoipa::path(post, path = "/v1/templates", tag = "templates",
    request_body(content = TemplateBody, content_type = "application/json"),
    params(IdempotencyKeyHeader),
    responses((status = 201, description = "Template recorded", body = TemplateView),
              (status = 422, description = "Invalid fields or unknown placeholders (all listed), or Idempotency-Key reused", body = Problem),
              JsonPostProblems),
    security(("api_key" = [])))]
pub async fn create(
    State(service): State<Service>,
    caller: Caller,
    idempotency: Idempotency,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    require_json_content(&headers, "the template")?;
    idempotency
        .run(&service, &caller, &body, async |claim| {
    let value = super::json_body(&body)?;
    let request = TemplateRequest::parse(&value).map_err(Problem::validation)?;
    let now = unix_micros(service.clock.now());
    let row = TemplateRow {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: caller.tenant_id.clone(),
        name: request.name,
        kind: request.kind.as_str().to_string(),
        wording: request.text,
        created_at: now,
    };
    let response = json_bytes(&view(&row)?)?;
    let location = format!("/v1/templates/{}", row.id);
    let answer = claim.answer(StatusCode::CREATED, Some(&location), &response, now);
    // The answer commits with the record, or neither does.
    service.storage.insert_template(&row, answer.as_ref()).await?;
    tracing::info!(template.id = %row.id, tenant.id = %caller.tenant_id, template.kind = %row.kind, "template recorded");
    Ok(with_location(
        json_response(StatusCode::CREATED, response),
        &location,
    ))
        })
        .await
}

/// One template of this account.
#[utoipa::path(get, path = "/v1/templates/{id}", tag = "templates",
    params(("id" = String, Path, description = "Template id")),
    responses((status = 200, description = "The template", body = TemplateView),
              (status = 404, description = "No such template for this account", body = Problem),
              ApiKeyProblems),
    security(("api_key" = [])))]
pub async fn show(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let not_found = || Problem::not_found(format!("no template {id} for this account"));
    let Some(uuid) = path_uuid(&id) else {
        return Err(not_found());
    };
    let row = service
        .storage
        .template(&caller.tenant_id, &uuid)
        .await?
        .ok_or_else(not_found)?;
    json_ok(&view(&row)?)
}

/// This account's templates, oldest first.
#[utoipa::path(get, path = "/v1/templates", tag = "templates",
    params(("limit" = Option<i64>, Query, description = "Page size, 1 to 500 (default 50)"),
           ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page of templates", body = TemplatePage),
              ListProblems),
    security(("api_key" = [])))]
pub async fn list(
    State(service): State<Service>,
    caller: Caller,
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
    // One more than asked tells whether another page exists.
    let mut rows = service
        .storage
        .list_templates(&caller.tenant_id, page.after_id.as_deref(), page.limit + 1)
        .await?;
    let next_cursor = page.cut(&mut rows, |r| &r.id);
    let items = rows.iter().map(view).collect::<Result<Vec<_>, _>>()?;
    TemplatePage::json(items, next_cursor)
}

fn view(row: &TemplateRow) -> Result<TemplateView, Problem> {
    let kind = LetterKind::parse(&row.kind).ok_or_else(|| {
        Problem::internal(&format!(
            "template {} has an unknown kind {:?}",
            row.id, row.kind
        ))
    })?;
    let mut placeholders: Vec<String> = Vec::new();
    let mut rest = row.wording.as_str();
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        if PLACEHOLDERS.iter().any(|(k, _)| *k == name) && !placeholders.iter().any(|p| p == name) {
            placeholders.push(name.to_string());
        }
        rest = &after[end + 2..];
    }
    Ok(TemplateView {
        id: row.id.clone(),
        name: row.name.clone(),
        kind,
        wording: row.wording.clone(),
        placeholders,
        created_at: rfc3339_micros(from_unix_micros(row.created_at)),
    })
}
