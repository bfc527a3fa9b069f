//! `POST /v1/bounces`: the operator's mail system posts delivery status notifications
//! (RFC 3464) here; a permanent failure for one of our notifications becomes
//! `NotificationForAcceptanceFailure` evidence.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::problem::Problem;
use crate::app::service::Service;

/// Largest DSN accepted (the report plus returned headers; returned bodies are cut by MTAs).
pub const MAX_DSN: usize = 256 * 1024;

/// What became of a posted DSN.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BounceOutcome {
    /// Whether failure evidence was recorded.
    pub recorded: bool,
    /// The letter concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub letter_id: Option<String>,
}

/// Records a bounce. Authenticated with the operator's bounce token (`mail.bounce_token`).
#[utoipa::path(post, path = "/v1/bounces", tag = "recipient",
    request_body(content = String, content_type = "message/delivery-status", description = "The DSN (multipart/report or its delivery-status part)"),
    responses((status = 202, description = "Processed", body = BounceOutcome),
              (status = 401, description = "Wrong bounce token", body = Problem),
              (status = 404, description = "Bounce intake disabled", body = Problem)),
    security(("bounce_token" = [])))]
pub async fn receive(
    State(service): State<Service>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let Some(expected) = service.settings.mail.bounce_token.as_deref() else {
        return Err(Problem::not_found(
            "bounce intake is disabled (set mail.bounce_token)",
        ));
    };
    let matches = bearer_token_matches(&headers, expected);
    if !matches {
        return Err(Problem::unauthorized("the bounce token is wrong"));
    }
    let text = String::from_utf8_lossy(&body);
    let letter_id = service.lifecycle.record_bounce(&text).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(BounceOutcome {
            recorded: letter_id.is_some(),
            letter_id,
        }),
    )
        .into_response())
}

/// Whether the request's `Authorization: Bearer …` is `expected` (an operator token),
/// compared in constant time: both sides are HMACed and the MACs compared by `ring`.
pub(super) fn bearer_token_matches(headers: &HeaderMap, expected: &str) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .unwrap_or("");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"operator-token");
    ring::hmac::verify(
        &key,
        presented.as_bytes(),
        ring::hmac::sign(&key, expected.as_bytes()).as_ref(),
    )
    .is_ok()
}
