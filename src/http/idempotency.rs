//! The `Idempotency-Key` protocol, once for every POST that creates or changes something.
//!
//! A handler takes the [`Idempotency`] extractor (the validated key, the route template from
//! axum's [`MatchedPath`], the request path), then calls [`Idempotency::run`] with the bytes
//! that identify the request and the work to do under the key. That claims the key before any
//! work is done ([`Idempotency::begin`]; see [`crate::infra::storage::idempotency`]):
//!
//! - the key is new: [`Begun::Proceed`] with a [`Claim`]; the handler does its work, writes
//!   [`Claim::answer`] in the transaction that creates the resource (or [`Claim::store`]s it
//!   afterwards for a naturally idempotent action), and hands its result to [`Claim::settle`],
//!   which frees the key again when the request failed;
//! - the key has an answer for the same request: [`Begun::Replay`], the stored status,
//!   headers and body with `Idempotent-Replayed: true`;
//! - the key was used for a different request: `422 idempotency-key-reused`;
//! - a request with the key is still being processed: `409 idempotency-key-in-progress` with
//!   `Retry-After`, so concurrent duplicates never each seal and timestamp a record.
//!
//! The pattern follows the IETF HTTPAPI draft "The Idempotency-Key HTTP Header Field"
//! (draft-ietf-httpapi-idempotency-key-header): 422 for a reused key, 409 for a request
//! still in flight.

use std::time::Duration;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::problem::Problem;
use crate::app::api_key::Caller;
use crate::app::service::Service;
use crate::core::clock::unix_micros;
use crate::infra::storage::idempotency::Claimed;
use crate::infra::storage::{IdempotencyRow, Storage, StorageError};

/// How long a pending claim holds its key. Longer than any request takes (a deposit's
/// timestamp requests time out well before); after it, a claim left by a crashed process is
/// taken over by the next retry of the same request.
pub const PENDING_EXPIRY: Duration = Duration::from_secs(120);

/// Seconds a concurrent duplicate is told to wait (`Retry-After`) before retrying.
pub const IN_PROGRESS_RETRY_AFTER: u64 = 1;

/// The optional `Idempotency-Key` of a POST, with the route and path it was sent to.
#[derive(Debug, Clone)]
pub struct Idempotency {
    key: Option<String>,
    route: String,
    path: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Idempotency {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string());
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string());
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(Idempotency {
                key: None,
                route,
                path,
            });
        };
        let key = value
            .to_str()
            .ok()
            .filter(|k| valid_key(k))
            .ok_or_else(|| {
                Problem::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
            })?;
        Ok(Idempotency {
            key: Some(key.to_string()),
            route,
            path,
        })
    }
}

/// The optional `Idempotency-Key` header as the OpenAPI document declares it on every POST
/// that takes one (`params(IdempotencyKeyHeader)` in a route's `utoipa::path`).
pub struct IdempotencyKeyHeader;

impl utoipa::IntoParams for IdempotencyKeyHeader {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::{ObjectBuilder, Required, Type};
        vec![
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some("Replays the original response for a retried request"))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        ]
    }
}

/// 1 to 255 visible ASCII characters (0x21–0x7E).
fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| (0x21..0x7f).contains(&b))
}

/// What [`Idempotency::begin`] decided.
pub enum Begun {
    /// Answer with this stored response; nothing is done again.
    Replay(Response),
    /// Process the request under this claim.
    Proceed(Claim),
}

impl Idempotency {
    /// Runs a request under its key, the one way every POST uses the protocol: answers from
    /// the key's record when it has one ([`Begun::Replay`], or the reuse and in-flight
    /// problems); otherwise runs `work` with the [`Claim`] and settles the claim with what it
    /// returned ([`Claim::settle`]).
    pub async fn run(
        self,
        service: &Service,
        caller: &Caller,
        material: &[u8],
        work: impl AsyncFnOnce(&Claim) -> Result<Response, Problem>,
    ) -> Result<Response, Problem> {
        let claim = match self.begin(service, caller, material).await? {
            Begun::Replay(replay) => return Ok(replay),
            Begun::Proceed(claim) => claim,
        };
        let result = work(&claim).await;
        claim.settle(result).await
    }

    /// The validated key, if the request has one.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Claims the key for the request identified by `material` (the body, or what stands for
    /// it), or answers from the key's record. Without a key, always [`Begun::Proceed`].
    pub async fn begin(
        self,
        service: &Service,
        caller: &Caller,
        material: &[u8],
    ) -> Result<Begun, Problem> {
        let storage = service.storage.clone();
        let Some(key) = self.key else {
            return Ok(Begun::Proceed(Claim {
                storage,
                held: None,
            }));
        };
        let fingerprint = request_fingerprint("POST", &self.path, material);
        let now = unix_micros(service.clock.now());
        let expiry = i64::try_from(PENDING_EXPIRY.as_micros()).unwrap_or(i64::MAX);
        let row = IdempotencyRow {
            tenant_id: caller.tenant_id.clone(),
            key,
            route: self.route,
            request_sha256: fingerprint,
            claim: uuid::Uuid::new_v4().to_string(),
            done: false,
            status: 0,
            headers: String::new(),
            response: Vec::new(),
            created_at: now,
        };
        match storage
            .claim_idempotency(&row, now.saturating_sub(expiry))
            .await?
        {
            Claimed::Won => Ok(Begun::Proceed(Claim {
                storage,
                held: Some(row),
            })),
            Claimed::Taken(found) => {
                // Rows stored before routes were recorded have an empty route; their
                // fingerprint (which covers the path) still tells requests apart.
                let same_route = found.route.is_empty() || found.route == row.route;
                if found.request_sha256 != row.request_sha256 || !same_route {
                    Err(Problem::idempotency_key_reused())
                } else if found.done {
                    Ok(Begun::Replay(stored_response(&found)))
                } else {
                    Err(Problem::idempotency_in_progress())
                }
            }
        }
    }
}

/// The claim of a request on its key (or nothing, for a request without a key). Dropped
/// without [`Claim::settle`] — the client went away mid-request — it frees the key in the
/// background; only a crash leaves a pending claim, until [`PENDING_EXPIRY`].
pub struct Claim {
    storage: Storage,
    held: Option<IdempotencyRow>,
}

impl Claim {
    /// The record completing this claim with an answer, to be written in the transaction
    /// that creates the resource; `None` without a key. `location` is replayed as the
    /// `Location` header.
    pub fn answer(
        &self,
        status: StatusCode,
        location: Option<&str>,
        body: &[u8],
        at: i64,
    ) -> Option<IdempotencyRow> {
        let held = self.held.as_ref()?;
        let headers = location
            .map(|l| format!("{}: {l}\n", header::LOCATION.as_str()))
            .unwrap_or_default();
        Some(IdempotencyRow {
            done: true,
            status: i64::from(status.as_u16()),
            headers,
            response: body.to_vec(),
            created_at: at,
            ..held.clone()
        })
    }

    /// Stores the answer on its own, after a write that needs no transaction with it (a
    /// naturally idempotent action, a content-addressed upload).
    pub async fn store(
        &self,
        status: StatusCode,
        location: Option<&str>,
        body: &[u8],
        at: i64,
    ) -> Result<(), Problem> {
        let Some(row) = self.answer(status, location, body, at) else {
            return Ok(());
        };
        match self.storage.complete_idempotency(&row).await {
            // A retry took the claim over after it expired; it answers on its own, and the
            // action this request did is the same one.
            Ok(()) | Err(StorageError::IdempotencyClaimLost) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Answers `200 OK` with the JSON `body` of a naturally idempotent action done at `at`,
    /// after storing it as the key's answer ([`Claim::store`]).
    pub async fn store_ok(
        &self,
        done: Result<(Vec<u8>, i64), Problem>,
    ) -> Result<Response, Problem> {
        let (body, at) = done?;
        self.store(StatusCode::OK, None, &body, at).await?;
        Ok(super::json_response(StatusCode::OK, body))
    }

    /// Ends the claim with the request's result: a success keeps the (completed) record, a
    /// failure deletes the pending claim so that a corrected retry may use the key.
    pub async fn settle(mut self, result: Result<Response, Problem>) -> Result<Response, Problem> {
        let Some(held) = self.held.take() else {
            return result;
        };
        if result.is_err()
            && let Err(e) = self
                .storage
                .release_idempotency(&held.tenant_id, &held.key, &held.claim)
                .await
        {
            // The claim then expires on its own after PENDING_EXPIRY.
            tracing::warn!(error = %e, "could not release an idempotency claim");
        }
        result
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let storage = self.storage.clone();
        runtime.spawn(async move {
            if let Err(e) = storage
                .release_idempotency(&held.tenant_id, &held.key, &held.claim)
                .await
            {
                tracing::warn!(error = %e, "could not release an abandoned idempotency claim");
            }
        });
    }
}

/// Fingerprint of a request for idempotency: method, path (with its query) and body.
pub fn request_fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b" ");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

/// Rebuilds a stored JSON response with its headers, marked as a replay.
fn stored_response(row: &IdempotencyRow) -> Response {
    let status = u16::try_from(row.status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for line in row.headers.lines() {
        if let Some((name, value)) = line.split_once(": ")
            && let Ok(name) = HeaderName::from_bytes(name.as_bytes())
            && let Ok(value) = HeaderValue::from_str(value)
        {
            headers.insert(name, value);
        }
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    (status, headers, row.response.clone()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        assert!(valid_key("a"));
        assert!(valid_key(&"k".repeat(255)));
        assert!(!valid_key(""));
        assert!(!valid_key(&"k".repeat(256)));
        assert!(!valid_key("with space"));
        assert!(!valid_key("tab\t"));
        assert!(!valid_key("é"));
    }

    #[test]
    fn a_replay_carries_the_stored_status_headers_and_body() {
        let row = IdempotencyRow {
            tenant_id: "t".into(),
            key: "k".into(),
            route: "/v1/letters".into(),
            request_sha256: "00".into(),
            claim: "c".into(),
            done: true,
            status: 201,
            headers: "location: /v1/letters/42\n".into(),
            response: b"{}".to_vec(),
            created_at: 0,
        };
        let response = stored_response(&row);
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(
            response
                .headers()
                .get(header::LOCATION)
                .map(|v| v.as_bytes()),
            Some(&b"/v1/letters/42"[..])
        );
        assert_eq!(
            response
                .headers()
                .get("idempotent-replayed")
                .map(|v| v.as_bytes()),
            Some(&b"true"[..])
        );
    }

    #[test]
    fn the_fingerprint_covers_method_path_and_body() {
        let base = request_fingerprint("POST", "/v1/letters", b"{}");
        assert_ne!(base, request_fingerprint("POST", "/v1/consents", b"{}"));
        assert_ne!(base, request_fingerprint("POST", "/v1/letters", b"{ }"));
        assert_eq!(base, request_fingerprint("POST", "/v1/letters", b"{}"));
    }
}
