//! The one place where errors become HTTP answers: RFC 9457 `application/problem+json` with
//! a stable `type` per error. Internal causes are logged, never sent to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::app::deposit::DepositError;
use crate::domain::batch::BatchInputError;
use crate::domain::letter::FieldError;
use crate::infra::content::ContentError;
use crate::infra::storage::{Outage, StorageError};

/// Seconds a client is told to wait (`Retry-After`) when the database cannot take a write:
/// long enough for a pool to reconnect or an operator to free space, short enough to retry.
pub const STORAGE_RETRY_AFTER_SECS: u64 = 5;

/// Prefix of every problem `type`. A URN: stable, and it does not pretend to resolve.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:recommande:problem:";

/// Prefix of a problem's `instance`: the request that met it.
pub const REQUEST_INSTANCE_PREFIX: &str = "urn:recommande:request:";

/// A problem as answered: its members plus `instance`, this occurrence —
/// `urn:recommande:request:<request id>`, the id the answer's `X-Request-Id` carries and the
/// log lines of the request name (RFC 9457 §3.1.5). Outside a request, no `instance`.
#[derive(Serialize)]
pub(crate) struct Answered<'a> {
    #[serde(flatten)]
    problem: &'a Problem,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<String>,
}

impl<'a> Answered<'a> {
    /// `problem` in the request being served.
    pub(crate) fn of(problem: &'a Problem) -> Self {
        Answered {
            problem,
            instance: crate::infra::trace::current_request_id()
                .map(|id| format!("{REQUEST_INSTANCE_PREFIX}{id}")),
        }
    }
}

/// An RFC 9457 problem.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable URI naming the kind of problem (`urn:recommande:problem:<slug>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong this time, for a human.
    pub detail: String,
    /// Every invalid field, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Seconds for the `Retry-After` header (RFC 9110 §10.2.3), when retrying later helps.
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub(crate) fn new(
        status: StatusCode,
        slug: &str,
        title: &str,
        detail: impl Into<String>,
    ) -> Self {
        Problem {
            kind: format!("{PROBLEM_TYPE_PREFIX}{slug}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// 401: no key, or a wrong or revoked one.
    pub fn unauthorized(detail: &str) -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
        )
    }

    /// 404: no such resource for this account.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 410: the document's content was destroyed after its retention period (crypto-shredding).
    pub fn content_destroyed(sha256: &str, destroyed_at: i64) -> Self {
        let when = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(destroyed_at) * 1000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| destroyed_at.to_string());
        Problem::new(
            StatusCode::GONE,
            "content-destroyed",
            "Content destroyed",
            format!(
                "the document {sha256} was destroyed on {when}, after the end of its retention period \
                 (CPCE R.53-3); its evidence, including the record of its destruction, is kept"
            ),
        )
    }

    /// 410: a hold was asked for a letter whose content is already destroyed.
    pub fn letter_content_destroyed(letter_id: &str, destroyed_at: i64) -> Self {
        let mut problem = Problem::content_destroyed("", destroyed_at);
        problem.detail = format!(
            "the content of letter {letter_id} was destroyed at the end of its retention period \
             (CPCE R.53-3); a legal hold can no longer apply. Its evidence is kept"
        );
        problem
    }

    /// 400: the body is not JSON.
    pub fn malformed_json(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "Malformed JSON",
            detail,
        )
    }

    /// 400: a malformed request other than its JSON (query, headers, multipart framing).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    /// 400: invalid query parameters, each listed.
    pub fn invalid_query(errors: Vec<FieldError>) -> Self {
        let errors = bounded(errors);
        let mut p = Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            "Invalid query parameters",
            summary(&errors),
        );
        p.errors = errors;
        p
    }

    /// 422: fields of the body are invalid, each listed.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let errors = bounded(errors);
        let mut p = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
            "The request has invalid fields",
            summary(&errors),
        );
        p.errors = errors;
        p
    }

    /// 422: the letter names documents this account never uploaded.
    pub fn unknown_documents(errors: Vec<FieldError>) -> Self {
        let errors = bounded(errors);
        let mut p = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown-document",
            "Unknown document",
            summary(&errors),
        );
        p.errors = errors;
        p
    }

    /// 422: a consumer recipient without an active prior consent (CPCE L.100).
    pub fn consent_required(errors: Vec<FieldError>) -> Self {
        let errors = bounded(errors);
        let mut p = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "consent-required",
            "Consumer consent required",
            summary(&errors),
        );
        p.errors = errors;
        p
    }

    /// A batch body that cannot be read at all (nothing was recorded): 400 when it is not
    /// UTF-8, JSON or CSV; 422 when it is readable but not a batch (no header, unknown or
    /// duplicate columns, no letter, more than 10,000 letters).
    pub fn batch_input(err: BatchInputError) -> Self {
        let detail = err.to_string();
        match err {
            BatchInputError::NotUtf8 { .. } => Problem::new(
                StatusCode::BAD_REQUEST,
                "batch-not-utf8",
                "Batch is not UTF-8",
                format!("{detail}; save the file as UTF-8"),
            ),
            BatchInputError::MalformedJson(_) => Problem::malformed_json(detail),
            BatchInputError::MalformedCsv(_) => Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-csv",
                "Malformed CSV",
                detail,
            ),
            BatchInputError::NoHeader => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "csv-header-missing",
                "CSV header row missing",
                detail,
            ),
            BatchInputError::Empty => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "batch-empty",
                "Empty batch",
                detail,
            ),
            BatchInputError::TooManyLetters { .. } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too-many-letters",
                "Too many letters in one batch",
                detail,
            ),
            BatchInputError::Fields(errors) => {
                let errors = bounded(errors);
                let mut p = Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-batch",
                    "The batch is not well-formed",
                    summary(&errors),
                );
                p.errors = errors;
                p
            }
        }
    }

    /// 422: `?template=` names no template of this account.
    pub fn unknown_template(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown-template",
            "Unknown template",
            detail,
        )
    }

    /// 409: the consent was already withdrawn; the first withdrawal stands.
    pub fn consent_already_withdrawn(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::CONFLICT,
            "consent-already-withdrawn",
            "Consent already withdrawn",
            detail,
        )
    }

    /// 413: the upload is larger than allowed.
    pub fn too_large(limit: u64) -> Self {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            format!("the document exceeds the limit of {limit} bytes"),
        )
    }

    /// 413: a request body (not a document) larger than allowed.
    pub fn body_too_large(limit: u64) -> Self {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            format!("the request body exceeds the limit of {limit} bytes"),
        )
    }

    /// 400: a path whose percent-encoded bytes are not UTF-8 (RFC 3986 §2.5: we read every
    /// path segment as UTF-8).
    pub fn invalid_path() -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-path",
            "Invalid path",
            "the percent-decoded path is not valid UTF-8",
        )
    }

    /// 414: the request target is longer than the server reads (RFC 9110 §15.5.15).
    pub fn uri_too_long(limit: usize) -> Self {
        Problem::new(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            "URI too long",
            format!("the request target exceeds the limit of {limit} bytes"),
        )
    }

    /// 431: the request's header fields are larger than the server reads (RFC 6585 §5).
    pub fn headers_too_large(limit: usize) -> Self {
        Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request-header-fields-too-large",
            "Request header fields too large",
            format!("the header fields exceed the limit of {limit} bytes"),
        )
    }

    /// 415: wrong request content type, or a document type we do not accept.
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            detail,
        )
    }

    /// 422: an `Idempotency-Key` reused with a different request.
    pub fn idempotency_key_reused() -> Self {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency key reused",
            "this Idempotency-Key was already used with a different request; use a new key for a new request",
        )
    }

    /// 409: the same `Idempotency-Key` is being processed by a concurrent request.
    pub fn idempotency_in_progress() -> Self {
        let mut problem = Problem::new(
            StatusCode::CONFLICT,
            "idempotency-key-in-progress",
            "Request in progress",
            "a request with this Idempotency-Key is still being processed; retry shortly (see Retry-After)",
        );
        problem.retry_after = Some(super::idempotency::IN_PROGRESS_RETRY_AFTER);
        problem
    }

    /// 409: the resource is not in a state that allows the request.
    pub fn conflict(slug: &str, title: &str, detail: String) -> Self {
        Problem::new(StatusCode::CONFLICT, slug, title, detail)
    }

    /// 401: the recipient has no valid session for this letter.
    pub fn recipient_unauthenticated(detail: String) -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "recipient-unauthenticated",
            "Identification required",
            detail,
        )
    }

    /// 403: a state-changing recipient request carried by the session cookie came from
    /// another site (CSRF defence in depth, as on the HTML forms).
    pub fn cross_site(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::FORBIDDEN,
            "cross-site",
            "Cross-site request refused",
            detail,
        )
    }

    /// 422: a one-time code that is not six digits; a typing slip, not counted as an attempt.
    pub fn otp_malformed(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "otp-malformed",
            "Malformed code",
            detail,
        )
    }

    /// One-time code problems (401 wrong code, 429 locked or rate-limited).
    pub fn otp(slug: &str, status: StatusCode, detail: String) -> Self {
        Problem::new(status, slug, "Identification refused", detail)
    }

    /// 429: too many public verifications from one client address.
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            format!(
                "too many verifications from this address; retry in {} s (see Retry-After)",
                wait.as_secs().saturating_add(1)
            ),
        )
    }

    /// 404: the embedded TSA is not enabled on this instance.
    pub fn tsa_disabled() -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "tsa-disabled",
            "Timestamp authority not enabled",
            "this instance uses a remote timestamp authority; the embedded TSA endpoint is disabled",
        )
    }

    /// 503: a dependency (remote TSA) is unavailable; nothing was written.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service-unavailable",
            "Service unavailable",
            detail,
        )
    }

    /// 507 (disk full) or 503 (database unreachable), with `Retry-After`: the database could
    /// not take the write, so nothing was recorded and nothing is acknowledged.
    pub fn storage_outage(outage: Outage, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, ?outage, "database outage; request refused");
        let mut problem = match outage {
            Outage::Full => Problem::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage-full",
                "Insufficient storage",
                "the service has no room left to store this request; nothing was recorded. \
                 Retry later (see Retry-After)",
            ),
            Outage::Unavailable => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database-unavailable",
                "Service unavailable",
                "the database cannot be reached; nothing was recorded. Retry later (see Retry-After)",
            ),
        };
        problem.retry_after = Some(STORAGE_RETRY_AFTER_SECS);
        problem
    }

    /// 500: logs `cause` with full detail and answers without internals.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "an internal error occurred; nothing was recorded. Retry later; the incident is logged",
        )
    }

    /// The status as a `StatusCode`.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// At most this many errors with the same message are listed; the others are counted in one
/// closing entry. Every answer that lists field errors stays a small multiple of its request,
/// whatever the request holds (issue 12 §2: a CSV header of 100,000 unknown columns made an
/// answer of megabytes).
pub const MAX_ERRORS_PER_KIND: usize = 20;
/// At most this many errors are listed in all.
pub const MAX_ERRORS: usize = 200;
/// A field name or message echoed back is cut after this many characters.
const MAX_ECHO_CHARS: usize = 200;
/// The `detail` sentence names at most this many errors; `errors` has the rest.
const MAX_SUMMARY_ERRORS: usize = 10;

/// The errors to send: at most [`MAX_ERRORS_PER_KIND`] per message and [`MAX_ERRORS`] in
/// all, long names cut, and one last entry counting those left out.
pub fn bounded(errors: Vec<FieldError>) -> Vec<FieldError> {
    let mut per_kind: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(errors.len().min(MAX_ERRORS + 1));
    let mut left_out = 0usize;
    for e in errors {
        let seen = per_kind.entry(e.message.clone()).or_insert(0);
        if *seen >= MAX_ERRORS_PER_KIND || out.len() >= MAX_ERRORS {
            left_out += 1;
            continue;
        }
        *seen += 1;
        out.push(FieldError {
            field: cut(&e.field),
            message: if e.message.starts_with("known columns: ") {
                e.message // one list, written by the service, never echoed input
            } else {
                cut(&e.message)
            },
        });
    }
    if left_out > 0 {
        out.push(FieldError {
            field: String::new(),
            message: format!(
                "{left_out} more {} not listed (at most {MAX_ERRORS_PER_KIND} of each kind and {MAX_ERRORS} in all are shown)",
                if left_out == 1 { "error" } else { "errors" }
            ),
        });
    }
    out
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

fn summary(errors: &[FieldError]) -> String {
    let mut listed: Vec<String> = errors
        .iter()
        .take(MAX_SUMMARY_ERRORS)
        .map(|e| {
            if e.field.is_empty() {
                e.message.clone()
            } else {
                format!("{} {}", e.field, e.message)
            }
        })
        .collect();
    if errors.len() > MAX_SUMMARY_ERRORS {
        listed.push(format!(
            "and {} more (see `errors`)",
            errors.len() - MAX_SUMMARY_ERRORS
        ));
    }
    listed.join("; ")
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&Answered::of(&self)).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StorageError> for Problem {
    fn from(err: StorageError) -> Self {
        if matches!(err, StorageError::IdempotencyClaimLost) {
            return Problem::idempotency_in_progress();
        }
        match err.outage() {
            Some(outage) => Problem::storage_outage(outage, &err),
            None => Problem::internal(&err),
        }
    }
}

impl From<ContentError> for Problem {
    fn from(err: ContentError) -> Self {
        match err {
            ContentError::TooLarge { limit } => Problem::too_large(limit),
            ContentError::Destroyed {
                sha256,
                destroyed_at,
            } => Problem::content_destroyed(&sha256, destroyed_at),
            ContentError::Storage(e) => e.into(),
            // ENOSPC/EDQUOT while spooling a document: the disk is full, nothing was kept
            // (the temporary file is removed on every error).
            ContentError::Io { ref source, .. }
                if source.kind() == std::io::ErrorKind::StorageFull
                    || source.kind() == std::io::ErrorKind::QuotaExceeded =>
            {
                Problem::storage_outage(Outage::Full, &err)
            }
            other => Problem::internal(&other),
        }
    }
}

impl From<DepositError> for Problem {
    fn from(err: DepositError) -> Self {
        match err {
            DepositError::UnknownDocuments(errors) => Problem::unknown_documents(errors),
            DepositError::ConsentRequired(errors) => Problem::consent_required(errors),
            DepositError::IdempotencyKeyTaken => Problem::idempotency_in_progress(),
            DepositError::Evidence(crate::core::evidence::EvidenceError::Timestamp(e)) => {
                tracing::error!(error = %e, "timestamping failed");
                Problem::unavailable(
                    "the timestamp authority did not answer correctly; nothing was recorded, retry later",
                )
            }
            DepositError::Storage(e) => e.into(),
            DepositError::Content(e) => e.into(),
            other => Problem::internal(&other),
        }
    }
}

impl From<crate::app::service::SignedProofError> for Problem {
    fn from(err: crate::app::service::SignedProofError) -> Self {
        use crate::app::service::SignedProofError;
        match err {
            SignedProofError::Sign(crate::core::evidence::EvidenceError::Timestamp(e)) => {
                tracing::error!(error = %e, "timestamping a proof's signature failed");
                Problem::unavailable(
                    "the timestamp authority did not answer correctly; retry later",
                )
            }
            SignedProofError::Storage(e) => e.into(),
            other => Problem::internal(&other),
        }
    }
}

/// The problem answers many routes share, declared once for the OpenAPI document: each type
/// lists its statuses with their descriptions, all with a [`Problem`] body
/// (`responses(…, ApiKeyProblems)` in a route's `utoipa::path`).
pub mod shared {
    use std::collections::BTreeMap;

    use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder, response::Response};

    /// `401`: every route behind an API key.
    pub struct ApiKeyProblems;

    /// `400`, `401`, `409`, `415`: a POST of a JSON body under an `Idempotency-Key`.
    pub struct JsonPostProblems;

    /// `400`, `401`: a list with query parameters behind an API key.
    pub struct ListProblems;

    const API_KEY: (u16, &str) = (401, "Missing or wrong API key");

    impl utoipa::IntoResponses for ApiKeyProblems {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            problems(&[API_KEY])
        }
    }

    impl utoipa::IntoResponses for JsonPostProblems {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            problems(&[
                (400, "Malformed JSON"),
                API_KEY,
                (409, "Same Idempotency-Key in flight"),
                (415, "Not application/json"),
            ])
        }
    }

    impl utoipa::IntoResponses for ListProblems {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            problems(&[(400, "Invalid query parameters (all listed)"), API_KEY])
        }
    }

    fn problems(list: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
        list.iter()
            .map(|&(status, description)| {
                let body = Content::new(Some(Ref::from_schema_name("Problem")));
                let response = ResponseBuilder::new()
                    .description(description)
                    .content("application/json", body)
                    .build();
                (status.to_string(), RefOr::T(response))
            })
            .collect()
    }
}
