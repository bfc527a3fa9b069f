//! Unauthenticated service endpoints: health, trust anchors, and the RFC 3161 TSA.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::problem::Problem;
use crate::app::service::Service;

/// Largest timestamp query accepted. A TimeStampReq with a SHA-512 imprint, a policy, a nonce
/// and some extensions stays well under 1 KiB; 16 KiB leaves room without inviting abuse.
pub const MAX_TSA_QUERY: usize = 16 * 1024;

/// Liveness and readiness: the database answers *and takes a write*. A ping alone would say
/// 200 while a full disk or a writer stuck in a transaction refuses (or silently loses) every
/// deposit, so the check commits one small row through the writer itself.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "The service and its database answer and take a write"),
              (status = 503, description = "The database does not answer or cannot write", body = Problem)))]
pub async fn healthz(State(service): State<Service>) -> Response {
    let now = crate::core::clock::unix_micros(service.clock.now());
    match database_takes_a_write(&service, now).await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(json!({
                "status": "ok",
                "database": service.storage.engine(),
                "pki": if service.trust.development { "development (non-qualified)" } else { "production" },
            })),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unavailable or cannot write");
            let mut problem =
                Problem::unavailable("the database does not answer or cannot take a write");
            problem.retry_after = Some(super::problem::STORAGE_RETRY_AFTER_SECS);
            problem.into_response()
        }
    }
}

/// The database answers a query and commits one small row through the writer deposits use.
async fn database_takes_a_write(
    service: &Service,
    now: i64,
) -> Result<(), crate::infra::storage::StorageError> {
    service.storage.ping().await?;
    service.storage.probe_write(now).await
}

/// How long each readiness check may take before it counts as failing.
const READINESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Liveness: the process runs and serves HTTP. Nothing outside it is asked, so that an
/// orchestrator does not restart a healthy process because its database is away.
#[utoipa::path(get, path = "/livez", tag = "service", security(),
    responses((status = 200, description = "The process is up")))]
pub async fn livez() -> Response {
    (StatusCode::OK, axum::Json(json!({ "status": "live" }))).into_response()
}

/// Readiness: every part a deposit and its dispatch need answers — the database (a ping and
/// a committed write), the content store, the timestamp source and the mail transport. 503
/// (problem+json) names the parts that fail in `checks`; their causes go to the log only.
#[utoipa::path(get, path = "/readyz", tag = "service", security(),
    responses((status = 200, description = "Every part answers; `checks` says `ok` for each"),
              (status = 503, description = "A part does not answer; `checks` names it", body = Problem,
               content_type = "application/problem+json")))]
pub async fn readyz(State(service): State<Service>) -> Response {
    let now = crate::core::clock::unix_micros(service.clock.now());
    let bounded =
        |name: &'static str, result: Result<Result<(), String>, tokio::time::error::Elapsed>| {
            match result {
                Ok(Ok(())) => (name, None),
                Ok(Err(cause)) => (name, Some(cause)),
                Err(_) => (
                    name,
                    Some(format!("no answer within {READINESS_TIMEOUT:?}")),
                ),
            }
        };
    let (database, content, timestamps, mail) = tokio::join!(
        tokio::time::timeout(READINESS_TIMEOUT, async {
            database_takes_a_write(&service, now)
                .await
                .map_err(|e| e.to_string())
        }),
        tokio::time::timeout(READINESS_TIMEOUT, async {
            service
                .content
                .check_backend()
                .await
                .map_err(|e| e.to_string())
        }),
        tokio::time::timeout(READINESS_TIMEOUT, async {
            service
                .sealer
                .check_source(READINESS_TIMEOUT)
                .await
                .map_err(|e| e.to_string())
        }),
        tokio::time::timeout(READINESS_TIMEOUT, async {
            service.mailer.check().await.map_err(|e| e.to_string())
        }),
    );
    let results = [
        bounded("database", database),
        bounded("content", content),
        bounded("timestamps", timestamps),
        bounded("mail", mail),
    ];
    let mut checks = serde_json::Map::new();
    let mut failing = Vec::new();
    for (name, failure) in results {
        match failure {
            None => {
                checks.insert(name.into(), json!("ok"));
            }
            Some(cause) => {
                tracing::warn!(part = name, cause = %cause, "readiness check failed");
                checks.insert(name.into(), json!("failing"));
                failing.push(name);
            }
        }
    }
    if failing.is_empty() {
        return (
            StatusCode::OK,
            axum::Json(json!({ "status": "ready", "checks": checks })),
        )
            .into_response();
    }
    let mut problem = Problem::unavailable(format!("not ready: {} failing", failing.join(", ")));
    problem.retry_after = Some(super::problem::STORAGE_RETRY_AFTER_SECS);
    // The problem as answered, plus the per-part `checks` member (RFC 9457 §3.2).
    let mut body = serde_json::to_value(super::problem::Answered::of(&problem)).unwrap_or_default();
    body["checks"] = serde_json::Value::Object(checks);
    let mut response = problem.into_response();
    *response.body_mut() = axum::body::Body::from(serde_json::to_vec(&body).unwrap_or_default());
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}

/// The trust anchors (PEM) that verify every seal and timestamp issued by this service.
#[utoipa::path(get, path = "/v1/trust/roots.pem", tag = "trust",
    responses((status = 200, description = "PEM certificates", content_type = "application/x-pem-file", body = String)))]
pub async fn roots_pem(State(service): State<Service>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-pem-file"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("inline; filename=\"roots.pem\""),
            ),
        ],
        service.anchors_pem.as_str().to_owned(),
    )
        .into_response()
}

/// RFC 3161 §3.4 time-stamp protocol over HTTP: `application/timestamp-query` in,
/// `application/timestamp-reply` out. Requests the TSA cannot honour get a rejection
/// TimeStampResp (not an HTTP error), as the RFC expects.
#[utoipa::path(post, path = "/tsa", tag = "trust",
    request_body(content = Vec<u8>, content_type = "application/timestamp-query", description = "DER TimeStampReq"),
    responses((status = 200, description = "DER TimeStampResp", content_type = "application/timestamp-reply", body = Vec<u8>),
              (status = 404, description = "Embedded TSA disabled", body = Problem),
              (status = 415, description = "Wrong content type", body = Problem)))]
pub async fn timestamp(
    State(service): State<Service>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(tsa) = service.tsa.clone() else {
        return Problem::tsa_disabled().into_response();
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/timestamp-query") {
        return Problem::unsupported_media_type(
            "send a DER TimeStampReq with Content-Type: application/timestamp-query",
        )
        .into_response();
    }
    let body = match body {
        Ok(body) => body,
        Err(e) => return super::letters::body_problem(&e, MAX_TSA_QUERY).into_response(),
    };
    let now = service.clock.now();
    let reply = match tokio::task::spawn_blocking(move || tsa.respond(&body, now)).await {
        Ok(reply) => reply,
        Err(e) => return Problem::internal(&e).into_response(),
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/timestamp-reply"),
        )],
        reply,
    )
        .into_response()
}
