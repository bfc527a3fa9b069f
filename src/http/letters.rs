//! Letters: deposit, read, list, and their evidence files.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::documents::DocumentView;
use super::idempotency::{Claim, Idempotency, IdempotencyKeyHeader};
use super::problem::Problem;
use super::problem::shared::{ApiKeyProblems, JsonPostProblems, ListProblems};
use super::{json_bytes, json_ok, json_response, require_json_content, with_location};
use crate::app::api_key::Caller;
use crate::app::deposit::PreparedDeposit;
use crate::app::service::Service;
use crate::core::clock::{from_unix_micros, rfc3339_micros, unix_micros};
use crate::core::evidence::hex_digest;
use crate::core::proof::ProofKind;
use crate::domain::letter::{DepositRequest, FieldError, LetterState, Recipient, Sender};
use crate::infra::storage::{DocumentRow, EvidenceRow, LetterFilter, LetterRow};

/// Default and maximum page sizes of `GET /v1/letters`.
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

/// One evidence record of a letter, with links to its exact stored bytes.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EvidenceSummary {
    /// Evidence id.
    pub id: String,
    /// Service-wide sequence number (absent in the deposit response, where it is not yet read back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<i64>,
    /// ETSI EN 319 522 event name.
    pub event: String,
    /// ETSI event URI.
    pub event_uri: String,
    /// Event time (RFC 3339 UTC).
    pub event_time: String,
    /// Hex SHA-256 of the record bytes.
    pub sha256: String,
    /// The record (`.json`), its CMS seal (`.p7s`) and its RFC 3161 token (`.tsr`).
    pub files: EvidenceFiles,
}

/// Links to the three files of an evidence record.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EvidenceFiles {
    /// Canonical JSON record.
    pub json: String,
    /// Detached CMS seal (DER).
    pub p7s: String,
    /// RFC 3161 TimeStampToken (DER).
    pub tsr: String,
}

/// A letter as the sender sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LetterView {
    /// Letter id.
    pub id: String,
    /// Lifecycle state.
    pub state: LetterState,
    /// The sender's reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Sender.
    pub sender: Sender,
    /// Recipient.
    pub recipient: Recipient,
    /// Documents, in order.
    pub documents: Vec<DocumentView>,
    /// Deposit time (RFC 3339 UTC); the proof of it is the timestamp of the deposit evidence.
    pub deposited_at: String,
    /// Content and evidence are kept at least until then (CPCE R.53-3).
    pub retain_until: String,
    /// A legal hold blocks the destruction of the content after `retain_until`.
    pub legal_hold: bool,
    /// Since when the legal hold is in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_hold_since: Option<String>,
    /// When the content was destroyed after the retention period (the evidence is kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_destroyed_at: Option<String>,
    /// When the notification was handed to the mail relay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notified_at: Option<String>,
    /// End of the acceptance window (exclusive; CPCE R.53-3), RFC 3339 UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// When the recipient accepted or refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    /// Evidence records, in order.
    pub evidence: Vec<EvidenceSummary>,
    /// For a letter the service composed: the amounts owed with the rates used, the
    /// prescription of each invoice, warnings, overrides and the mandatory mentions checked
    /// (as recorded in the proof of deposit).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::domain::collection::CompositionSummary>)]
    pub collection: Option<serde_json::Value>,
}

page!(LetterPage of LetterView, "A page of letters.", "Letters, oldest first.");

/// Body of `POST /v1/letters`, as the OpenAPI document publishes it. The handler checks the
/// body field by field ([`crate::domain::letter::DepositRequest::parse`]) to list every
/// problem at once; the tests of [`super::openapi`] keep this schema and
/// [`crate::domain::letter::DEPOSIT_FIELDS`] in step and feed bodies built from the schema to
/// the parser.
#[derive(utoipa::ToSchema)]
pub struct DepositBody {
    /// Who sends.
    pub sender: Sender,
    /// Who receives. A consumer needs `consent_id` (CPCE L.100).
    pub recipient: Recipient,
    /// The sender's own reference (≤ 200 characters).
    pub reference: Option<String>,
    /// Ids of uploaded documents, in order (1 to 20). Omit when `compose` is given.
    pub documents: Option<Vec<String>>,
    /// A relance or mise en demeure the service writes, checks (mandatory mentions, amounts,
    /// interest, €40 indemnity for professionals only, prescription) and deposits as a PDF.
    pub compose: Option<crate::domain::collection::request::ComposeBody>,
    /// A template of the account (`POST /v1/templates`) whose wording the composed letter uses.
    pub template_id: Option<String>,
}

/// Evidence list of a letter.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EvidenceList {
    /// Letter id.
    pub letter_id: String,
    /// Records in sequence order.
    pub evidence: Vec<EvidenceSummary>,
}

/// Deposits a registered letter. In one transaction: the letter, its documents and its proof
/// of deposit (`SubmissionAcceptance`, sealed and timestamped, with the CPCE R.53-2 fields).
#[utoipa::path(post, path = "/v1/letters", tag = "letters",
    request_body(content = DepositBody, content_type = "application/json"),
    params(IdempotencyKeyHeader),
    responses((status = 201, description = "Letter deposited", body = LetterView),
              (status = 422, description = "Invalid fields (all listed), unknown documents, consumer without consent, Idempotency-Key reused", body = Problem),
              (status = 429, description = "Over the tenant's quota (`[rate_limits]`) or too many refused keys from this address; see Retry-After", body = Problem),
              (status = 503, description = "Timestamp authority unavailable; nothing recorded", body = Problem),
              JsonPostProblems),
    security(("api_key" = [])))]
pub async fn deposit(
    State(service): State<Service>,
    caller: Caller,
    idempotency: Idempotency,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    require_json_content(&headers, "the letter")?;
    let body = body.map_err(|e| body_problem(&e, super::MAX_JSON_BODY))?;
    idempotency
        .run(&service, &caller, &body, async |claim| {
            deposit_claimed(&service, &caller, claim, &body).await
        })
        .await
}

/// The deposit itself, under the request's idempotency claim.
async fn deposit_claimed(
    service: &Service,
    caller: &Caller,
    claim: &Claim,
    body: &[u8],
) -> Result<Response, Problem> {
    let value = super::json_body(body)?;
    let request = compose_if_asked(service, caller, &value).await?;
    let prepared = service.deposits.prepare(caller, request).await?;
    let view = deposit_view(&prepared, &service.settings.server.public_url)?;
    let response = json_bytes(&view)?;
    let location = format!("/v1/letters/{}", prepared.letter.id);
    let answer = claim.answer(
        StatusCode::CREATED,
        Some(&location),
        &response,
        unix_micros(prepared.deposited_at),
    );
    // The answer commits with the letter and its evidence, or neither does.
    service
        .deposits
        .commit(std::slice::from_ref(&prepared), answer.as_ref())
        .await?;
    tracing::info!(
        letter.id = %prepared.letter.id,
        tenant.id = %caller.tenant_id,
        evidence.id = %prepared.evidence.record.evidence_id,
        "letter deposited"
    );
    Ok(with_location(
        json_response(StatusCode::CREATED, response),
        &location,
    ))
}

/// Checks a deposit body; for a `compose` letter, also checks the composition (every
/// problem of both reported at once), then writes, renders and stores the letter's PDF.
pub(crate) async fn compose_if_asked(
    service: &Service,
    caller: &Caller,
    value: &serde_json::Value,
) -> Result<DepositRequest, Problem> {
    let parsed = DepositRequest::parse(value);
    let Some(compose) = value.get("compose").filter(|c| c.is_object()) else {
        return parsed.map_err(Problem::validation);
    };
    let kind = compose.get("kind").and_then(|k| k.as_str());
    let template_id = value
        .get("template_id")
        .and_then(|t| t.as_str())
        .and_then(|t| uuid::Uuid::try_parse(t).ok())
        .map(|u| u.to_string());
    let wording = match &template_id {
        Some(id) => Some(service.composer.wording(caller, id, kind).await),
        None => None,
    };
    let date = service.composer.letter_date();
    let composed = match &wording {
        Some(Err(_)) => None,
        Some(Ok(w)) => Some(service.composer.check(compose, Some(w), date)),
        None => Some(service.composer.check(compose, None, date)),
    };
    let mut errors = parsed.as_ref().err().cloned().unwrap_or_default();
    if let Some(Err(e)) = &wording {
        errors.extend(e.iter().cloned());
    }
    if let Some(Err(e)) = &composed {
        errors.extend(e.iter().cloned());
    }
    errors.extend(crate::domain::collection::request::kind_mismatch(value));
    match (parsed, composed) {
        (Ok(mut request), Some(Ok(composed))) if errors.is_empty() => {
            service
                .composer
                .store(caller, &composed, &mut request)
                .await?;
            Ok(request)
        }
        _ => Err(Problem::validation(errors)),
    }
}

/// Lists the account's letters, oldest first, with optional filters.
#[utoipa::path(get, path = "/v1/letters", tag = "letters",
    params(("reference" = Option<String>, Query, description = "Only letters with this reference"),
           ("state" = Option<LetterState>, Query, description = "Only letters in this state"),
           ("limit" = Option<i64>, Query, description = "Page size, 1 to 500 (default 50)"),
           ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page of letters", body = LetterPage),
              ListProblems),
    security(("api_key" = [])))]
pub async fn list(
    State(service): State<Service>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    let mut errors = Vec::new();
    let mut filter = LetterFilter {
        limit: DEFAULT_PAGE,
        ..LetterFilter::default()
    };
    for (key, value) in &params {
        match key.as_str() {
            "reference" => filter.reference = Some(value.clone()),
            "state" => match LetterState::parse(value) {
                Some(s) => filter.state = Some(s.as_str().to_string()),
                None => errors.push(query_error(
                    "state",
                    &format!(
                        "must be one of {}",
                        LetterState::ALL.map(LetterState::as_str).join(", ")
                    ),
                )),
            },
            "limit" => match value.parse::<i64>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => filter.limit = n,
                _ => errors.push(query_error(
                    "limit",
                    &format!("must be an integer from 1 to {MAX_PAGE}"),
                )),
            },
            "cursor" => match uuid::Uuid::try_parse(value) {
                Ok(id) => filter.after_id = Some(id.to_string()),
                Err(_) => errors.push(query_error(
                    "cursor",
                    "must be a next_cursor returned by a previous page",
                )),
            },
            other => errors.push(query_error(other, "is not a known parameter")),
        }
    }
    if !errors.is_empty() {
        errors.sort_by(|a, b| a.field.cmp(&b.field));
        return Err(Problem::invalid_query(errors));
    }
    // One more than asked tells whether another page exists.
    let asked = filter.limit;
    filter.limit = asked + 1;
    let mut rows = service
        .storage
        .list_letters(&caller.tenant_id, &filter)
        .await?;
    let next_cursor = if rows.len() as i64 > asked {
        rows.truncate(asked as usize);
        rows.last().map(|r| r.id.clone())
    } else {
        None
    };
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        items.push(load_view(&service, row).await?);
    }
    LetterPage::json(items, next_cursor)
}

/// One letter with its documents and evidence.
#[utoipa::path(get, path = "/v1/letters/{id}", tag = "letters",
    params(("id" = String, Path, description = "Letter id")),
    responses((status = 200, description = "The letter", body = LetterView),
              (status = 404, description = "No such letter for this account", body = Problem),
              ApiKeyProblems),
    security(("api_key" = [])))]
pub async fn show(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let row = find_letter(&service, &caller, &id).await?;
    let view = load_view(&service, row).await?;
    json_ok(&view)
}

/// Streams a document of the letter to its sender: an uploaded document, or the PDF the
/// service composed (`compose`), byte for byte as deposited (its SHA-256 is in the proof of
/// deposit). Reading it leaves no evidence: only the recipient's download is a handover.
#[utoipa::path(get, path = "/v1/letters/{id}/documents/{document_id}", tag = "letters",
    params(("id" = String, Path, description = "Letter id"),
           ("document_id" = String, Path, description = "Document id, from the letter's `documents`")),
    responses((status = 200, description = "The document", content_type = "application/pdf", body = Vec<u8>),
              (status = 404, description = "No such letter for this account, or no such document in it", body = Problem),
              (status = 410, description = "The content was destroyed after the retention period", body = Problem),
              ApiKeyProblems),
    security(("api_key" = [])))]
pub async fn document(
    State(service): State<Service>,
    caller: Caller,
    Path((id, document_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let row = find_letter(&service, &caller, &id).await?;
    let documents = service.storage.letter_documents(&row.id).await?;
    let doc = documents
        .into_iter()
        .find(|d| d.id == document_id)
        .ok_or_else(|| {
            Problem::not_found(format!("letter {} has no document {document_id}", row.id))
        })?;
    if let Some(destroyed_at) = row.content_destroyed_at {
        return Err(Problem::content_destroyed(&doc.sha256, destroyed_at));
    }
    // As for the recipient: the first segment is decrypted and checked before answering.
    let mut reader = service.content.open_read(&doc.sha256).await?;
    let first = reader.next_chunk().await?;
    let stream = futures_util::StreamExt::chain(
        futures_util::stream::iter(first.map(Ok)),
        reader.into_stream(),
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(&doc.media_type)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            ),
            (
                header::CONTENT_DISPOSITION,
                super::documents::pdf_attachment(&doc.filename),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_LENGTH,
                HeaderValue::from(doc.size.max(0) as u64),
            ),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// Places a legal hold on a letter: while it is set, the content is not destroyed even after
/// `retain_until`. Idempotent (the first hold time is kept); with an `Idempotency-Key`, a
/// retry is answered with the original answer even after the hold was lifted meanwhile.
#[utoipa::path(post, path = "/v1/letters/{id}/hold", tag = "letters",
    params(("id" = String, Path, description = "Letter id"),
           IdempotencyKeyHeader),
    responses((status = 200, description = "The letter, on hold", body = LetterView),
              (status = 400, description = "An Idempotency-Key that is not 1 to 255 visible characters", body = Problem),
              (status = 404, description = "No such letter for this account", body = Problem),
              (status = 409, description = "Same Idempotency-Key in flight", body = Problem),
              (status = 410, description = "The content was already destroyed", body = Problem),
              (status = 422, description = "Idempotency-Key reused", body = Problem),
              ApiKeyProblems),
    security(("api_key" = [])))]
pub async fn place_hold(
    State(service): State<Service>,
    caller: Caller,
    idempotency: Idempotency,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    idempotency
        .run(&service, &caller, &[], async |claim| {
            claim
                .store_ok(set_hold(&service, &caller, id, true).await)
                .await
        })
        .await
}

/// Lifts the legal hold of a letter. Idempotent.
#[utoipa::path(delete, path = "/v1/letters/{id}/hold", tag = "letters",
    params(("id" = String, Path, description = "Letter id")),
    responses((status = 200, description = "The letter, without hold", body = LetterView),
              (status = 404, description = "No such letter for this account", body = Problem),
              ApiKeyProblems),
    security(("api_key" = [])))]
pub async fn lift_hold(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let (body, _) = set_hold(&service, &caller, id, false).await?;
    Ok(json_response(StatusCode::OK, body))
}

/// Places or lifts the hold; the letter's JSON afterwards, and the time.
async fn set_hold(
    service: &Service,
    caller: &Caller,
    id: String,
    hold: bool,
) -> Result<(Vec<u8>, i64), Problem> {
    let now = unix_micros(service.clock.now());
    let row = find_letter(service, caller, &id).await?;
    if hold && let Some(destroyed_at) = row.content_destroyed_at {
        return Err(Problem::letter_content_destroyed(&row.id, destroyed_at));
    }
    let since = hold.then_some(now);
    service
        .storage
        .set_legal_hold(&caller.tenant_id, &row.id, since)
        .await?;
    let row = find_letter(service, caller, &row.id).await?;
    let view = load_view(service, row).await?;
    let body = json_bytes(&view)?;
    Ok((body, now))
}

/// The evidence records of a letter, in order.
#[utoipa::path(get, path = "/v1/letters/{id}/evidence", tag = "evidence",
    params(("id" = String, Path, description = "Letter id")),
    responses((status = 200, description = "Evidence records", body = EvidenceList),
              (status = 404, description = "No such letter for this account", body = Problem),
              ApiKeyProblems),
    security(("api_key" = [])))]
pub async fn evidence_list(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let row = find_letter(&service, &caller, &id).await?;
    let evidence = service.storage.evidence_of_letter(&row.id).await?;
    let list = EvidenceList {
        letter_id: row.id.clone(),
        evidence: evidence
            .iter()
            .map(|e| summary_of_row(e, &service.settings.server.public_url))
            .collect(),
    };
    json_ok(&list)
}

/// A human-readable PDF/A proof of the letter, in French with English labels (CPCE R.53-2,
/// R.53-3): `deposit`, `dispatch` (notification sent), `receipt` (accepted), `refusal`,
/// `non_claim`, or `summary` (every event). Times are those of the RFC 3161 tokens; the
/// evidence record, seal and token are attached inside the PDF.
#[utoipa::path(get, path = "/v1/letters/{id}/proofs/{file}", tag = "evidence",
    params(("id" = String, Path, description = "Letter id"),
           ("file" = String, Path, description = "`deposit.pdf`, `dispatch.pdf`, `receipt.pdf`, `refusal.pdf`, `non_claim.pdf` or `summary.pdf`")),
    responses((status = 200, description = "The PDF proof", content_type = "application/pdf", body = Vec<u8>),
              (status = 404, description = "No such letter or proof kind, or the event has not happened yet", body = Problem),
              ApiKeyProblems),
    security(("api_key" = [])))]
pub async fn proof(
    State(service): State<Service>,
    caller: Caller,
    Path((id, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Some(kind) = file.strip_suffix(".pdf").and_then(ProofKind::parse) else {
        return Err(Problem::not_found(format!(
            "no proof {file}: the proofs are deposit.pdf, dispatch.pdf, receipt.pdf, refusal.pdf, non_claim.pdf and summary.pdf"
        )));
    };
    let row = find_letter(&service, &caller, &id).await?;
    let evidence = service.storage.evidence_of_letter(&row.id).await?;
    let rendered = service.signed_proofs(&row.id, evidence, vec![kind]).await?;
    let Some((_, pdf)) = rendered.into_iter().next() else {
        return Err(Problem::not_found(format!(
            "letter {} has no {} yet: its event has not happened",
            row.id,
            kind.title_english().to_lowercase()
        )));
    };
    let etag = super::conditional::etag_of(&pdf);
    if super::conditional::matches(&headers, &etag) {
        return Ok(super::conditional::not_modified(
            &etag,
            super::conditional::REVALIDATE,
        ));
    }
    let mut response = proof_response(&row.id, kind, "inline", pdf);
    super::conditional::tag(&mut response, &etag, super::conditional::REVALIDATE);
    Ok(response)
}

/// A PDF proof of letter `id` as an answer: `disposition` (`inline` or `attachment`) with the
/// file name `lettre-<id>-<proof>.pdf`.
pub(super) fn proof_response(
    id: &str,
    kind: ProofKind,
    disposition: &'static str,
    pdf: Vec<u8>,
) -> Response {
    let named = HeaderValue::from_str(&format!(
        "{disposition}; filename=\"lettre-{id}-{}\"",
        kind.file_name()
    ))
    .unwrap_or(HeaderValue::from_static(disposition));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pdf"),
            ),
            (header::CONTENT_DISPOSITION, named),
        ],
        pdf,
    )
        .into_response()
}

/// The exact stored bytes of an evidence record (`.json`), its seal (`.p7s`) or its
/// timestamp token (`.tsr`).
#[utoipa::path(get, path = "/v1/letters/{id}/evidence/{file}", tag = "evidence",
    params(("id" = String, Path, description = "Letter id"),
           ("file" = String, Path, description = "`<evidence id>.json`, `.p7s` or `.tsr`")),
    responses((status = 200, description = "The stored bytes", body = Vec<u8>),
              (status = 404, description = "No such letter, evidence or file", body = Problem),
              ApiKeyProblems),
    security(("api_key" = [])))]
pub async fn evidence_file(
    State(service): State<Service>,
    caller: Caller,
    Path((id, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let row = find_letter(&service, &caller, &id).await?;
    let Some((evidence_id, extension)) = file.rsplit_once('.') else {
        return Err(Problem::not_found(
            "ask for <evidence id>.json, .p7s or .tsr",
        ));
    };
    let evidence = service.storage.evidence_of_letter(&row.id).await?;
    let Some(e) = evidence.iter().find(|e| e.id == evidence_id) else {
        return Err(Problem::not_found(format!(
            "letter {id} has no evidence {evidence_id}"
        )));
    };
    let (bytes, content_type) = match extension {
        "json" => (e.record.clone(), "application/json"),
        "p7s" => (e.seal.clone(), "application/pkcs7-signature"),
        "tsr" => (e.timestamp_token.clone(), "application/octet-stream"),
        _ => {
            return Err(Problem::not_found(
                "ask for <evidence id>.json, .p7s or .tsr",
            ));
        }
    };
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"{}.{extension}\"", e.id))
            .unwrap_or(HeaderValue::from_static("attachment"));
    // Evidence bytes never change once stored (append-only): cacheable for good.
    let etag = super::conditional::etag_of(&bytes);
    if super::conditional::matches(&headers, &etag) {
        return Ok(super::conditional::not_modified(
            &etag,
            super::conditional::IMMUTABLE,
        ));
    }
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response();
    super::conditional::tag(&mut response, &etag, super::conditional::IMMUTABLE);
    Ok(response)
}

/// A body the framework could not read: over the size limit (413) or cut short (400).
pub(super) fn body_problem(rejection: &BytesRejection, limit: usize) -> Problem {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::body_too_large(limit as u64)
    } else {
        Problem::bad_request(format!(
            "the request body could not be read: {}",
            rejection.body_text()
        ))
    }
}

fn query_error(field: &str, message: &str) -> FieldError {
    FieldError {
        field: field.to_string(),
        message: message.to_string(),
    }
}

async fn find_letter(service: &Service, caller: &Caller, id: &str) -> Result<LetterRow, Problem> {
    let not_found = || Problem::not_found(format!("no letter {id} for this account"));
    let id = uuid::Uuid::try_parse(id)
        .map_err(|_| not_found())?
        .to_string();
    service
        .storage
        .letter(&caller.tenant_id, &id)
        .await?
        .ok_or_else(not_found)
}

async fn load_view(service: &Service, row: LetterRow) -> Result<LetterView, Problem> {
    let documents = service.storage.letter_documents(&row.id).await?;
    let evidence = service.storage.evidence_of_letter(&row.id).await?;
    let base = &service.settings.server.public_url;
    let mut view = letter_view(
        &row,
        &documents,
        evidence.iter().map(|e| summary_of_row(e, base)).collect(),
    )?;
    view.collection = collection_summary(&evidence);
    Ok(view)
}

/// The composition summary of a composed letter, as its proof of deposit records it (the
/// same object the `201` answer gave); `None` for a letter of uploaded documents.
pub(crate) fn collection_summary(evidence: &[EvidenceRow]) -> Option<serde_json::Value> {
    let deposit = evidence
        .iter()
        .find(|e| e.event == crate::core::evidence::EvidenceEvent::SubmissionAcceptance.name())?;
    let mut record: serde_json::Value = serde_json::from_slice(&deposit.record).ok()?;
    match record.get_mut("details")?.get_mut("collection")?.take() {
        serde_json::Value::Null => None,
        summary => Some(summary),
    }
}

fn letter_view(
    row: &LetterRow,
    documents: &[DocumentRow],
    evidence: Vec<EvidenceSummary>,
) -> Result<LetterView, Problem> {
    let corrupt =
        |what: &str| Problem::internal(&format!("letter {} has an unreadable {what}", row.id));
    Ok(LetterView {
        id: row.id.clone(),
        state: LetterState::parse(&row.state).ok_or_else(|| corrupt("state"))?,
        reference: row.reference.clone(),
        sender: serde_json::from_str(&row.sender).map_err(|_| corrupt("sender"))?,
        recipient: serde_json::from_str(&row.recipient).map_err(|_| corrupt("recipient"))?,
        documents: documents.iter().map(DocumentView::from).collect(),
        deposited_at: rfc3339_micros(from_unix_micros(row.deposited_at)),
        retain_until: rfc3339_micros(from_unix_micros(row.retain_until)),
        legal_hold: row.legal_hold_since.is_some(),
        legal_hold_since: row
            .legal_hold_since
            .map(|t| rfc3339_micros(from_unix_micros(t))),
        content_destroyed_at: row
            .content_destroyed_at
            .map(|t| rfc3339_micros(from_unix_micros(t))),
        notified_at: row.notified_at.map(|t| rfc3339_micros(from_unix_micros(t))),
        deadline: row.deadline.map(|t| rfc3339_micros(from_unix_micros(t))),
        decided_at: row.decided_at.map(|t| rfc3339_micros(from_unix_micros(t))),
        evidence,
        collection: None,
    })
}

fn deposit_view(prepared: &PreparedDeposit, base: &str) -> Result<LetterView, Problem> {
    let record = &prepared.evidence.record;
    let summary = EvidenceSummary {
        id: record.evidence_id.clone(),
        sequence: None,
        event: record.event.name().to_string(),
        event_uri: record.event_uri.clone(),
        event_time: record.event_time.clone(),
        sha256: hex_digest(&prepared.evidence.sha256),
        files: files(base, &prepared.letter.id, &record.evidence_id),
    };
    let mut view = letter_view(&prepared.letter, &prepared.documents, vec![summary])?;
    view.collection = record.details.get("collection").cloned();
    Ok(view)
}

fn summary_of_row(e: &EvidenceRow, base: &str) -> EvidenceSummary {
    let event = crate::core::evidence::EvidenceEvent::parse(&e.event);
    EvidenceSummary {
        id: e.id.clone(),
        sequence: Some(e.seq),
        event: e.event.clone(),
        event_uri: event.map(|ev| ev.uri()).unwrap_or_default(),
        event_time: rfc3339_micros(from_unix_micros(e.event_time)),
        sha256: e.record_sha256.clone(),
        files: files(base, &e.letter_id, &e.id),
    }
}

fn files(base: &str, letter_id: &str, evidence_id: &str) -> EvidenceFiles {
    let prefix = format!("{base}/v1/letters/{letter_id}/evidence/{evidence_id}");
    EvidenceFiles {
        json: format!("{prefix}.json"),
        p7s: format!("{prefix}.p7s"),
        tsr: format!("{prefix}.tsr"),
    }
}

/// The letter's proof bundle (zip, ASiC-E compatible): documents, every evidence record with
/// its seal and timestamp, trust anchors, `VERIFY.txt`. Streamed from a temporary file, so a
/// large document is never held in memory; the same letter state gives the same bytes.
#[utoipa::path(get, path = "/v1/letters/{id}/bundle.zip", tag = "evidence",
    params(("id" = String, Path, description = "Letter id")),
    responses((status = 200, description = "The proof bundle", content_type = "application/zip", body = Vec<u8>),
              (status = 404, description = "No such letter for this account", body = Problem),
              ApiKeyProblems),
    security(("api_key" = [])))]
pub async fn bundle(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let row = find_letter(&service, &caller, &id).await?;
    let evidence = service.storage.evidence_of_letter(&row.id).await?;
    // After the retention period the content is destroyed: the bundle then carries the
    // evidence only (its ContentDestruction record says why), and verifiers accept that.
    let documents: Vec<DocumentRow> = if row.content_destroyed_at.is_some() {
        Vec::new()
    } else {
        service.storage.letter_documents(&row.id).await?
    };
    // Every document is read through once first: its digest is checked at the end of the
    // read, so a damaged document fails the request with a 500 before a byte of the bundle
    // is sent, rather than cutting a download short.
    // The same read gives each document's CRC-32, which the zip's local header carries
    // before the data (no data descriptor, so streaming readers accept the bundle).
    let mut crcs = Vec::with_capacity(documents.len());
    for doc in &documents {
        let mut reader = service.content.open_read(&doc.sha256).await?;
        let mut crc = crc32fast::Hasher::new();
        while let Some(chunk) = reader.next_chunk().await? {
            crc.update(&chunk);
        }
        crcs.push(crc.finalize());
    }
    // Decrypting readers, opened (keys unwrapped) before the blocking zip writer runs.
    let mut readers = Vec::with_capacity(documents.len());
    for (doc, crc) in documents.iter().zip(crcs) {
        readers.push((crc, service.content.open_blocking(&doc.sha256).await?));
    }
    let proofs: Vec<(String, Vec<u8>)> = service
        .signed_proofs(&row.id, evidence.clone(), ProofKind::ALL.to_vec())
        .await?
        .into_iter()
        .map(|(kind, pdf)| (kind.file_name(), pdf))
        .collect();
    let log = service
        .log
        .bundle_material(&evidence)
        .await
        .map_err(Problem::from)?;
    let renewals = service.storage.renewals_of_letter(&row.id).await?;
    let plan = crate::core::bundle::plan(&crate::core::bundle::BundleInput {
        provider: &service.settings.provider,
        letter_id: &row.id,
        evidence: &evidence,
        documents: &documents,
        roots_pem: &service.anchors_pem,
        proofs: &proofs,
        log: log.as_ref(),
        renewals: &renewals,
    });
    let key = plan.asic_manifest_sha256();
    // The manifest names every file by its digest and the bundle's seal is kept per
    // manifest: the same manifest gives the same bytes, so its digest tags the bundle.
    let etag = super::conditional::etag_from_digest(&key);
    if super::conditional::matches(&headers, &etag) {
        return Ok(super::conditional::not_modified(
            &etag,
            super::conditional::REVALIDATE,
        ));
    }
    let seal = match service.storage.existing_bundle_seal(&row.id, &key).await? {
        Some(seal) => seal,
        None => {
            let now = service.clock.now();
            let seal = service
                .sealer
                .seal_bytes_timestamped(&plan.asic_manifest, now)
                .await
                .map_err(|e| Problem::internal(&e))?;
            service
                .storage
                .bundle_seal(&row.id, &key, unix_micros(now), seal)
                .await?
        }
    };
    // The zip streams to the client as it is written: documents pass through decrypted a
    // segment at a time, and neither the plaintext nor the whole bundle is ever held in
    // memory or written to disk (issue 6 §1; docs/CONFIGURATION.md, memory).
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let letter_id = row.id.clone();
    tokio::task::spawn_blocking(move || {
        let mut body = BodyWriter {
            tx: tx.clone(),
            buffer: Vec::with_capacity(BODY_CHUNK),
        };
        let written = crate::core::bundle::write_stream(&plan, &seal, &mut body, readers)
            .and_then(|()| body.send_buffer());
        if let Err(e) = written {
            tracing::error!(letter.id = %letter_id, error = %e, "bundle stream stopped");
            // The client sees the body end in an error, never a silently short zip.
            let _ = tx.blocking_send(Err(e));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"lettre-{}.zip\"", row.id))
            .unwrap_or(HeaderValue::from_static("attachment"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
    .map(|mut response| {
        super::conditional::tag(&mut response, &etag, super::conditional::REVALIDATE);
        response
    })
}

/// Bytes handed to the response body at a time.
const BODY_CHUNK: usize = 64 * 1024;

/// A `Write` feeding the response body from the blocking zip writer.
struct BodyWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buffer: Vec<u8>,
}

impl BodyWriter {
    fn send_buffer(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(BODY_CHUNK),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::other("the client went away"))
    }
}

impl std::io::Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= BODY_CHUNK {
            self.send_buffer()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send_buffer()
    }
}
