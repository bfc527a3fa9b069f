//! Batches: `POST /v1/batches` (JSON or CSV, up to 10,000 letters) and their progress at
//! `GET /v1/batches/{id}`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};

use super::idempotency::{Idempotency, IdempotencyKeyHeader};
use super::letters::body_problem;
use super::problem::Problem;
use super::problem::shared::{ApiKeyProblems, ListProblems};
use super::{PageQuery, json_bytes, json_response, path_uuid, with_location};
use crate::app::api_key::Caller;
use crate::app::batch::{BatchAccepted, SubmitError};
use crate::app::service::Service;
use crate::core::clock::{from_unix_micros, rfc3339_micros};
use crate::domain::batch::{
    BatchInput, BatchMode, BatchSource, BatchState, MAX_BATCH_BODY, RowError, defaults_from_query,
    read_csv, read_json,
};
use crate::domain::letter::{FieldError, field_error};

/// Progress and outcome of a batch.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchView {
    /// Batch id.
    pub id: String,
    /// `depositing`, `completed`, `rejected` (all_or_nothing with invalid rows), `failed` or
    /// `cancelled`.
    pub state: BatchState,
    /// Mode of the batch.
    pub mode: BatchMode,
    /// Format it arrived in.
    pub source: BatchSource,
    /// Rows in the request.
    pub total: i64,
    /// Letters deposited so far, each with its proof of deposit.
    pub deposited: i64,
    /// Rows refused (each listed in `errors`).
    pub rejected: i64,
    /// Rows still to deposit.
    pub pending: i64,
    /// Deposited letters whose notification was handed to the mail relay.
    pub notified: i64,
    /// Deposited letters by lifecycle state.
    pub letters_by_state: BTreeMap<String, i64>,
    /// Submission time (RFC 3339 UTC).
    pub created_at: String,
    /// When the batch reached its final state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// Why a `failed` batch stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Every invalid field of every refused row.
    pub errors: Vec<RowError>,
}

/// One batch in a listing: its counts, without the row errors (read them on the batch).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchSummary {
    /// Batch id.
    pub id: String,
    /// `depositing`, `completed`, `rejected`, `failed` or `cancelled`.
    pub state: BatchState,
    /// Mode of the batch.
    pub mode: BatchMode,
    /// Format it arrived in.
    pub source: BatchSource,
    /// Rows in the request.
    pub total: i64,
    /// Letters deposited so far.
    pub deposited: i64,
    /// Rows refused.
    pub rejected: i64,
    /// Submission time (RFC 3339 UTC).
    pub created_at: String,
    /// When the batch reached its final state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
}

page!(BatchPage of BatchSummary, "A page of batches.", "Newest first.",
    "Pass as `cursor` to get the next (older) page; absent on the last page.");

/// Body of a JSON batch, as the OpenAPI document publishes it. The handler checks the body
/// field by field ([`crate::domain::batch::read_json`]) to list every problem at once; the
/// tests of [`super::openapi`] keep this schema and [`crate::domain::batch::BATCH_FIELDS`]
/// in step and feed bodies built from the schema to the parser.
#[derive(utoipa::ToSchema)]
pub struct BatchBody {
    /// Fields shared by every letter (typically `sender` and `documents`), merged under each.
    #[schema(value_type = Option<Object>)]
    pub defaults: Option<Map<String, Value>>,
    /// 1 to 10,000 letters, each a `POST /v1/letters` body (possibly partial, completed by
    /// `defaults`).
    #[schema(value_type = Vec<Object>)]
    pub letters: Vec<Map<String, Value>>,
    /// `valid_rows` (default) or `all_or_nothing`.
    pub mode: Option<BatchMode>,
}

/// Submits up to 10,000 letters. Every row is checked as a single `POST /v1/letters` body
/// would be (all its invalid fields at once), then the valid ones are deposited in the
/// background, each with its sealed, timestamped proof of deposit and its notification.
#[utoipa::path(post, path = "/v1/batches", tag = "batches",
    request_body(content(
        (BatchBody = "application/json"),
        (String = "text/csv"))),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "A retried batch with the same key is answered with the same batch and never deposited twice"),
        ("mode" = Option<BatchMode>, Query, description = "`valid_rows` (default) or `all_or_nothing`"),
        ("template" = Option<String>, Query, description = "CSV: a template of this account whose fields are merged under each row"),
        ("sender.name" = Option<String>, Query, description = "CSV: default for a column; any column name may be given this way (`sender.email`, `documents`, …)")),
    responses((status = 202, description = "Batch recorded; follow it at Location", body = BatchAccepted),
              (status = 400, description = "Body not UTF-8, not JSON, not CSV; invalid query", body = Problem),
              (status = 409, description = "Same Idempotency-Key in flight", body = Problem),
              (status = 413, description = "Body over 32 MiB", body = Problem),
              (status = 415, description = "Neither application/json nor text/csv", body = Problem),
              (status = 422, description = "No header, unknown or duplicate columns, no letter, more than 10,000 letters, unknown template, Idempotency-Key reused", body = Problem),
              (status = 429, description = "Over the tenant's quota (`[rate_limits]`) or too many refused keys from this address; see Retry-After", body = Problem),
              ApiKeyProblems),
    security(("api_key" = [])))]
pub async fn submit(
    State(service): State<Service>,
    caller: Caller,
    idempotency: Idempotency,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let source = batch_source(&headers)?;
    let Query(params) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let body = body.map_err(|e| body_problem(&e, MAX_BATCH_BODY))?;
    // The fingerprint covers the query (its column defaults, mode and template) with the body.
    let key = idempotency.key().map(str::to_string);
    idempotency
        .run(&service, &caller, &body, async |claim| {
            let mut query_errors = Vec::new();
            let mut mode = None;
            let mut template = None;
            for (key, value) in &params {
                match key.as_str() {
                    "mode" => match BatchMode::parse(value) {
                        Some(m) => mode = Some(m),
                        None => query_errors
                            .push(field_error("mode", "must be valid_rows or all_or_nothing")),
                    },
                    "template" => template = Some(value.clone()),
                    column if crate::domain::batch::column_type(column).is_some() => {
                        if source == BatchSource::Json {
                            query_errors.push(field_error(
                                column,
                                "is a CSV column default; in a JSON batch put it in \"defaults\"",
                            ));
                        }
                    }
                    other => query_errors.push(field_error(
                        other,
                        "is not a known parameter (mode, template, or a CSV column name)",
                    )),
                }
            }
            if source == BatchSource::Json && template.is_some() {
                query_errors.push(field_error(
                    "template",
                    "is for CSV batches; in a JSON batch put shared fields in \"defaults\"",
                ));
            }
            if !query_errors.is_empty() {
                return Err(Problem::invalid_query(query_errors));
            }

            let input: BatchInput = match source {
                BatchSource::Json => read_json(&body).map_err(Problem::batch_input)?,
                BatchSource::Csv => {
                    let mut defaults = match &template {
                        Some(name) => template_defaults(&service, &caller, name).await?,
                        None => Map::new(),
                    };
                    let from_query =
                        defaults_from_query(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                            .map_err(Problem::invalid_query)?;
                    // The query's column values win over the template's.
                    for (key, value) in from_query {
                        let merged = crate::domain::batch::letter_body(
                            defaults.get(&key).and_then(Value::as_object),
                            value,
                        );
                        defaults.insert(key, merged);
                    }
                    read_csv(&body, Some(&defaults).filter(|d| !d.is_empty()))
                        .map_err(Problem::batch_input)?
                }
            };
            let mode = match (mode, input.mode) {
                (Some(q), Some(b)) if q != b => {
                    return Err(Problem::validation(vec![FieldError {
                        field: "mode".into(),
                        message: format!(
                            "the body says {} and the query says {}",
                            b.as_str(),
                            q.as_str()
                        ),
                    }]));
                }
                (q, b) => q.or(b).unwrap_or(BatchMode::ValidRows),
            };

            // The answer commits with the batch, or neither does.
            let (accepted, response) = service
                .batches
                .submit(
                    &caller,
                    input,
                    mode,
                    key.as_deref(),
                    |accepted, body, at| {
                        claim.answer(
                            StatusCode::ACCEPTED,
                            Some(&batch_location(&accepted.id)),
                            body,
                            at,
                        )
                    },
                )
                .await
                .map_err(|e| match e {
                    SubmitError::IdempotencyKeyTaken => Problem::idempotency_in_progress(),
                    SubmitError::Storage(e) => e.into(),
                })?;
            Ok(with_location(
                json_response(StatusCode::ACCEPTED, response),
                &batch_location(&accepted.id),
            ))
        })
        .await
}

fn batch_location(id: &str) -> String {
    format!("/v1/batches/{id}")
}

/// Progress of a batch: counts, letters by state, every row error.
#[utoipa::path(get, path = "/v1/batches/{id}", tag = "batches",
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, description = "The batch", body = BatchView),
              (status = 404, description = "No such batch for this account", body = Problem),
              ApiKeyProblems),
    security(("api_key" = [])))]
pub async fn show(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let body = batch_json(&service, &caller, &id).await?;
    Ok(json_response(StatusCode::OK, body))
}

/// The JSON of the batch `id` of this account, as `GET /v1/batches/{id}` answers it.
async fn batch_json(service: &Service, caller: &Caller, id: &str) -> Result<Vec<u8>, Problem> {
    let not_found = || Problem::not_found(format!("no batch {id} for this account"));
    let canonical = path_uuid(id).ok_or_else(not_found)?;
    let record = service
        .storage
        .batch(&caller.tenant_id, &canonical)
        .await?
        .ok_or_else(not_found)?;
    let errors = service.storage.batch_errors(&record.id).await?;
    let (states, notified) = service.storage.batch_letter_states(&record.id).await?;
    let state = BatchState::parse(&record.state).ok_or_else(|| {
        Problem::internal(&format!("batch {} has state {}", record.id, record.state))
    })?;
    let view = BatchView {
        id: record.id.clone(),
        state,
        mode: BatchMode::parse(&record.mode).unwrap_or(BatchMode::ValidRows),
        source: if record.source == "csv" {
            BatchSource::Csv
        } else {
            BatchSource::Json
        },
        total: record.total,
        deposited: record.deposited,
        rejected: record.rejected,
        pending: if state == BatchState::Depositing {
            (record.total - record.deposited - record.rejected).max(0)
        } else {
            0
        },
        notified,
        letters_by_state: states.into_iter().collect(),
        created_at: rfc3339_micros(from_unix_micros(record.created_at)),
        completed_at: record
            .completed_at
            .map(|t| rfc3339_micros(from_unix_micros(t))),
        failure: record.failure,
        errors,
    };
    json_bytes(&view)
}

/// Cancels a batch still depositing: rows not yet deposited never will be; letters already
/// deposited stay (with their evidence and notifications). Answers the batch as it stands.
/// With an `Idempotency-Key`, a retry gets that answer again instead of `409 batch-final`.
#[utoipa::path(post, path = "/v1/batches/{id}/cancel", tag = "batches",
    params(("id" = String, Path, description = "Batch id"),
           IdempotencyKeyHeader),
    responses((status = 200, description = "The cancelled batch", body = BatchView),
              (status = 400, description = "An Idempotency-Key that is not 1 to 255 visible characters", body = Problem),
              (status = 404, description = "No such batch for this account", body = Problem),
              (status = 409, description = "The batch is already in a final state, or the same Idempotency-Key in flight", body = Problem),
              (status = 422, description = "Idempotency-Key reused", body = Problem),
              ApiKeyProblems),
    security(("api_key" = [])))]
pub async fn cancel(
    State(service): State<Service>,
    caller: Caller,
    idempotency: Idempotency,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    idempotency
        .run(&service, &caller, &[], async |claim| {
            claim
                .store_ok(cancel_batch(&service, &caller, &id).await)
                .await
        })
        .await
}

/// Cancels the batch; its JSON afterwards, and the time.
async fn cancel_batch(
    service: &Service,
    caller: &Caller,
    id: &str,
) -> Result<(Vec<u8>, i64), Problem> {
    let not_found = || Problem::not_found(format!("no batch {id} for this account"));
    let canonical = path_uuid(id).ok_or_else(not_found)?;
    let record = service
        .storage
        .batch(&caller.tenant_id, &canonical)
        .await?
        .ok_or_else(not_found)?;
    let now = crate::core::clock::unix_micros(service.clock.now());
    if !service
        .storage
        .cancel_batch(&caller.tenant_id, &canonical, now)
        .await?
    {
        let state = service
            .storage
            .batch(&caller.tenant_id, &canonical)
            .await?
            .map_or(record.state, |r| r.state);
        return Err(Problem::conflict(
            "batch-final",
            "The batch is already final",
            format!("batch {canonical} is {state}: only a depositing batch can be cancelled"),
        ));
    }
    tracing::info!(batch.id = %canonical, batch.deposited = record.deposited, "batch cancelled");
    Ok((batch_json(service, caller, &canonical).await?, now))
}

/// This account's batches, newest first.
#[utoipa::path(get, path = "/v1/batches", tag = "batches",
    params(("status" = Option<BatchState>, Query, description = "Only batches in this state"),
           ("limit" = Option<i64>, Query, description = "Page size, 1 to 500 (default 50)"),
           ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page of batches", body = BatchPage),
              ListProblems),
    security(("api_key" = [])))]
pub async fn list(
    State(service): State<Service>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(params) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let mut errors = Vec::new();
    let mut page = PageQuery::default();
    let mut state = None;
    for (key, value) in &params {
        if key == "status" {
            match BatchState::parse(value) {
                Some(s) => state = Some(s),
                None => errors.push(field_error(
                    "status",
                    "must be depositing, completed, rejected, failed or cancelled",
                )),
            }
        } else if !page.accept(key, value, &mut errors) {
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
        .list_batches(
            &caller.tenant_id,
            state.map(BatchState::as_str),
            page.after_id.as_deref(),
            page.limit + 1,
        )
        .await?;
    let next_cursor = page.cut(&mut rows, |r| &r.id);
    let items = rows
        .iter()
        .map(|record| {
            Ok(BatchSummary {
                id: record.id.clone(),
                state: BatchState::parse(&record.state).ok_or_else(|| {
                    Problem::internal(&format!("batch {} has state {}", record.id, record.state))
                })?,
                mode: BatchMode::parse(&record.mode).unwrap_or(BatchMode::ValidRows),
                source: if record.source == "csv" {
                    BatchSource::Csv
                } else {
                    BatchSource::Json
                },
                total: record.total,
                deposited: record.deposited,
                rejected: record.rejected,
                created_at: rfc3339_micros(from_unix_micros(record.created_at)),
                completed_at: record
                    .completed_at
                    .map(|t| rfc3339_micros(from_unix_micros(t))),
            })
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    BatchPage::json(items, next_cursor)
}

/// The format named by `Content-Type`.
fn batch_source(headers: &HeaderMap) -> Result<BatchSource, Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return Ok(BatchSource::Json);
    }
    if essence.eq_ignore_ascii_case("text/csv") {
        let charset = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
            .map(|(_, v)| v.trim().trim_matches('"').to_string());
        if let Some(charset) = charset
            && !charset.eq_ignore_ascii_case("utf-8")
        {
            return Err(Problem::unsupported_media_type(format!(
                "CSV batches must be UTF-8, not {charset}"
            )));
        }
        return Ok(BatchSource::Csv);
    }
    Err(Problem::unsupported_media_type(
        "send the batch as Content-Type: application/json or text/csv",
    ))
}

/// The fields a template brings to every CSV row: `?template=<id>` names one of the
/// account's templates (`POST /v1/templates`); its wording writes each row's `compose` letter
/// and its kind is the letters' kind unless a column says otherwise.
async fn template_defaults(
    service: &Service,
    caller: &Caller,
    name: &str,
) -> Result<Map<String, Value>, Problem> {
    let unknown = || {
        Problem::unknown_template(format!(
            "no template {name:?} exists for this account: give the id returned by POST /v1/templates, or shared fields as query parameters named like the columns (sender.name=…&documents=…)"
        ))
    };
    let id = uuid::Uuid::try_parse(name)
        .map_err(|_| unknown())?
        .to_string();
    let template = service
        .storage
        .template(&caller.tenant_id, &id)
        .await?
        .ok_or_else(unknown)?;
    let mut defaults = Map::new();
    defaults.insert("template_id".into(), Value::String(template.id));
    defaults.insert(
        "compose".into(),
        serde_json::json!({ "kind": template.kind }),
    );
    Ok(defaults)
}
