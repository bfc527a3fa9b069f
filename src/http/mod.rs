//! The HTTP edge: the REST API `/v1`, the recipient pages `/r/`, the RFC 3161 endpoint `/tsa`,
//! trust anchors and health.
//! API handlers parse and check input, call the service, and map every error through
//! [`problem::Problem`]; the pages ([`pages`]) answer with HTML error pages instead.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::app::api_key::Caller;
use crate::app::service::Service;
use crate::domain::letter::FieldError;

/// Declares the page type of a list: `page!(LetterPage of LetterView, "A page of letters.",
/// "Letters, oldest first.")`, with an optional last literal describing the cursor. The type answers itself
/// as `200 OK` JSON with `.json()`.
macro_rules! page {
    ($name:ident of $item:ty, $doc:literal, $items_doc:literal) => {
        page!(
            $name of $item,
            $doc,
            $items_doc,
            "Pass as `cursor` to get the next page; absent on the last page."
        );
    };
    ($name:ident of $item:ty, $doc:literal, $items_doc:literal, $cursor_doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            #[doc = $items_doc]
            pub items: Vec<$item>,
            /// Whether a next page exists (`next_cursor` is then given).
            pub has_more: bool,
            #[doc = $cursor_doc]
            #[serde(skip_serializing_if = "Option::is_none")]
            pub next_cursor: Option<String>,
        }

        impl $name {
            /// The page as a `200 OK` JSON answer.
            pub(crate) fn json(
                items: Vec<$item>,
                next_cursor: Option<String>,
            ) -> Result<axum::response::Response, super::problem::Problem> {
                super::json_ok(&$name {
                    items,
                    has_more: next_cursor.is_some(),
                    next_cursor,
                })
            }
        }
    };
}

pub mod batches;
pub mod bounces;
pub mod client_address;
pub mod conditional;
pub mod consents;
pub mod documents;
pub mod idempotency;
pub mod letter_templates;
pub mod letters;
pub mod log;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod pages;
pub mod problem;
pub mod rate_limit;
pub mod recipient;
pub mod reference;
pub mod server;
pub mod system;
pub mod throttle;
pub mod verification;
pub mod webhooks;

use problem::Problem;

/// Largest JSON body accepted on `/v1/letters`.
pub(crate) const MAX_JSON_BODY: usize = 1024 * 1024;
/// Multipart framing allowed on top of the document itself.
pub(crate) const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// Builds the router of the whole service.
pub fn router(service: Service) -> Router {
    let upload_limit = usize::try_from(service.settings.server.max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(MULTIPART_OVERHEAD);
    // One budget per client address for every public verification, page or API.
    let throttle = Arc::new(throttle::ClientThrottle::new(
        service.settings.verify.requests_per_minute,
    ));
    let api_refusal: throttle::Refusal =
        Arc::new(|_, wait| Problem::rate_limited(wait).into_response());
    let rate_limits = Arc::new(rate_limit::RateLimits::new(&service.settings.rate_limits));
    let trusted_proxies: Arc<[crate::config::Cidr]> =
        service.settings.http.trusted_proxies.clone().into();
    let http_metrics = Arc::new(observe::HttpMetrics::default());
    let otlp = service
        .settings
        .metrics
        .otlp_traces_endpoint
        .clone()
        .map(crate::infra::otlp::SpanExporter::start);
    let recipient_limit =
        axum::middleware::from_fn_with_state(rate_limit::api_refusal(), rate_limit::recipient);
    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/livez", get(system::livez))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(metrics::metrics))
        .route(
            "/tsa",
            post(system::timestamp)
                .layer(DefaultBodyLimit::max(system::MAX_TSA_QUERY))
                .layer(axum::middleware::from_fn_with_state(
                    system::MAX_TSA_QUERY,
                    refuse_announced_oversize,
                )),
        )
        .route("/v1/trust/roots.pem", get(system::roots_pem))
        .route("/v1/log/tree-heads/latest", get(log::latest_head))
        .route("/v1/log/tree-heads/{size}", get(log::head_of_size))
        .route("/v1/log/proofs/inclusion", get(log::inclusion))
        .route("/v1/log/proofs/consistency", get(log::consistency))
        .route("/v1/openapi.json", get(openapi::openapi_json))
        .route("/v1/reference", get(reference::reference))
        .route(
            "/v1/documents",
            post(documents::upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route(
            "/v1/letters",
            post(letters::deposit)
                .get(letters::list)
                .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
                .layer(axum::middleware::from_fn_with_state(
                    MAX_JSON_BODY,
                    refuse_announced_oversize,
                )),
        )
        .route(
            "/v1/batches",
            post(batches::submit)
                .get(batches::list)
                .layer(DefaultBodyLimit::max(crate::domain::batch::MAX_BATCH_BODY))
                .layer(axum::middleware::from_fn_with_state(
                    crate::domain::batch::MAX_BATCH_BODY,
                    refuse_announced_oversize,
                )),
        )
        .route("/v1/batches/{id}", get(batches::show))
        .route("/v1/batches/{id}/cancel", post(batches::cancel))
        .route("/v1/letters/{id}", get(letters::show))
        .route(
            "/v1/letters/{id}/hold",
            post(letters::place_hold).delete(letters::lift_hold),
        )
        .route(
            "/v1/letters/{id}/documents/{document_id}",
            get(letters::document),
        )
        .route("/v1/letters/{id}/evidence", get(letters::evidence_list))
        .route("/v1/letters/{id}/bundle.zip", get(letters::bundle))
        .route("/v1/letters/{id}/proofs/{file}", get(letters::proof))
        .route(
            "/v1/letters/{id}/evidence/{file}",
            get(letters::evidence_file),
        )
        .merge(
            Router::new()
                .route("/v1/recipient/{token}", get(recipient::show))
                .route("/v1/recipient/{token}/otp", post(recipient::request_code))
                .route(
                    "/v1/recipient/{token}/session",
                    post(recipient::open_session).layer(DefaultBodyLimit::max(4096)),
                )
                .route("/v1/recipient/{token}/accept", post(recipient::accept))
                .route("/v1/recipient/{token}/refuse", post(recipient::refuse))
                .route(
                    "/v1/recipient/{token}/documents/{document_id}",
                    get(recipient::document),
                )
                .route(
                    "/v1/recipient/{token}/evidence/{file}",
                    get(recipient::evidence_file),
                )
                .route("/v1/recipient/{token}/receipt.pdf", get(recipient::receipt))
                .layer(recipient_limit),
        )
        .route(
            "/v1/bounces",
            post(bounces::receive).layer(DefaultBodyLimit::max(bounces::MAX_DSN)),
        )
        .route(
            "/v1/consents",
            post(consents::create)
                .get(consents::list)
                .layer(DefaultBodyLimit::max(MAX_JSON_BODY)),
        )
        .route(
            "/v1/consents/{id}",
            get(consents::show)
                .delete(consents::withdraw)
                .layer(DefaultBodyLimit::max(MAX_JSON_BODY)),
        )
        .route(
            "/v1/templates",
            post(letter_templates::create)
                .get(letter_templates::list)
                .layer(DefaultBodyLimit::max(MAX_JSON_BODY)),
        )
        .route("/v1/templates/{id}", get(letter_templates::show))
        .route(
            "/v1/webhooks",
            post(webhooks::create)
                .get(webhooks::list)
                .layer(DefaultBodyLimit::max(MAX_JSON_BODY)),
        )
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::show).delete(webhooks::delete),
        )
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route(
            "/v1/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret).layer(DefaultBodyLimit::max(MAX_JSON_BODY)),
        )
        .route(
            "/v1/verify/{letter_id}",
            get(verification::verify_letter_api).layer(axum::middleware::from_fn_with_state(
                (throttle.clone(), api_refusal),
                throttle::limit,
            )),
        )
        .merge(pages::routes(service.clone(), throttle))
        .fallback(|| async { Problem::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            Problem::new_status(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            )
        })
        // Issue 12 §5: no response may be sniffed into another type than the one declared
        // (WHATWG Fetch §3.6 `X-Content-Type-Options`): problem+json, PDFs, evidence bytes
        // and pages alike. The pages' own security headers are left as they are.
        .layer(axum::middleware::map_response(nosniff))
        // JSON answers of 1 KiB or more, compressed when the client asks (gzip or br,
        // `Accept-Encoding` q-values honoured, `Vary: Accept-Encoding`); see `compressible`.
        .layer(
            tower_http::compression::CompressionLayer::new().compress_when(
                tower_http::compression::Predicate::and(
                    tower_http::compression::predicate::SizeAbove::new(1024),
                    compressible,
                ),
            ),
        )
        .layer(axum::middleware::map_response(close_after_refused_body))
        // Cross-origin reads of the public verification routes only (a judge's or a
        // witness's page elsewhere may check a letter or the log); nothing behind a key.
        .layer(axum::middleware::from_fn(public_cors))
        // Quotas per tenant and per client address, and their `RateLimit` fields.
        .layer(axum::middleware::from_fn_with_state(
            rate_limits,
            rate_limit::attach,
        ))
        // Request id, trace context, access log (link tokens and codes redacted: issue 12
        // §4) and the RED figures of `/metrics`, per route template.
        .layer(axum::middleware::from_fn_with_state(
            observe::Observer {
                metrics: http_metrics.clone(),
                spans: otlp,
            },
            observe::observe,
        ))
        .layer(axum::Extension(http_metrics))
        // Who the client is (the TCP peer, or what a trusted proxy says), for the span above
        // and everything inside.
        .layer(axum::middleware::from_fn_with_state(
            trusted_proxies,
            client_address::attach,
        ))
        // Outermost: an over-long target or header block is refused before any routing.
        .layer(axum::middleware::from_fn(server::limit_request_head))
        .with_state(service)
}

/// Paths any origin may read (no credentials): public verification, trust anchors, the log.
const CORS_PUBLIC_PREFIXES: [&str; 3] = ["/v1/verify/", "/v1/trust/", "/v1/log/"];

/// CORS (WHATWG Fetch §3.2) for [`CORS_PUBLIC_PREFIXES`]: `Access-Control-Allow-Origin: *`
/// on their answers, and a `204` to a preflight `OPTIONS`. Other routes send no CORS header,
/// so a browser keeps other origins' scripts away from them.
async fn public_cors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let public = CORS_PUBLIC_PREFIXES
        .iter()
        .any(|prefix| request.uri().path().starts_with(prefix));
    if !public {
        return next.run(request).await;
    }
    let preflight = request.method() == axum::http::Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        response
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("X-Request-Id, Retry-After, RateLimit, RateLimit-Policy"),
    );
    response
}

/// A `413` is answered before the whole body was read: the connection cannot carry another
/// request, so the answer says so (`Connection: close`, RFC 9112 §9.6) and a client does not
/// put it back in its pool, to fail its next request on a connection the server closes.
async fn close_after_refused_body(
    mut response: axum::response::Response,
) -> axum::response::Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// JSON answers (`application/json`, `application/problem+json`, any `+json`) that carry no
/// `ETag`. The evidence records, proofs and bundles keep their stored bytes on the wire: their
/// strong `ETag` names those bytes (RFC 9110 §8.8.1), and the PDFs and zips gain nothing.
fn compressible(
    _: StatusCode,
    _: axum::http::Version,
    headers: &axum::http::HeaderMap,
    _: &axum::http::Extensions,
) -> bool {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .is_some_and(|t| t == "application/json" || t.ends_with("+json"));
    json && !headers.contains_key(header::ETAG)
}

/// Adds `X-Content-Type-Options: nosniff` to a response that does not carry it yet.
async fn nosniff(mut response: axum::response::Response) -> axum::response::Response {
    response
        .headers_mut()
        .entry(axum::http::header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(axum::http::HeaderValue::from_static("nosniff"));
    response
}

/// What the logs may say of a request's URI: the path with the link token after `/r/` and
/// `/v1/recipient/` replaced, and every query value dropped (the verification code travels as
/// `?code=`). Tokens and codes are bearer secrets: a log line must not hand them out.
pub fn redacted_uri(uri: &axum::http::Uri) -> String {
    let mut out = String::with_capacity(uri.path().len());
    let mut token_follows = false;
    for (i, segment) in uri.path().split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if token_follows && !segment.is_empty() {
            out.push_str("<token>");
        } else {
            out.push_str(segment);
        }
        token_follows = match (i, segment) {
            (1, "r") => true,
            (2, "recipient") => out.starts_with("/v1/"),
            _ => false,
        };
    }
    if let Some(query) = uri.query() {
        let keys: Vec<&str> = query
            .split('&')
            .map(|pair| pair.split_once('=').map_or(pair, |(key, _)| key))
            .collect();
        out.push('?');
        out.push_str(&keys.join("=…&"));
        out.push_str("=…");
    }
    out
}

/// Middleware refusing, from its headers alone, a request whose `Content-Length` announces more
/// than `limit` bytes: the client gets its 413 at once instead of after uploading it all (the
/// body limit of the extractors still bounds bodies sent without a length).
async fn refuse_announced_oversize(
    axum::extract::State(limit): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Problem::body_too_large(limit as u64).into_response();
    }
    next.run(request).await
}

/// Serves `router` on `listener` until Ctrl-C or SIGTERM.
///
/// At the signal the workers stop taking new work at once, while the server stops accepting
/// and finishes its requests in progress; then the workers are drained (`src/app/worker.rs`):
/// their current passes get `[workers] shutdown_grace_seconds` to finish, and the claims and
/// leases still held are given back so that the next start goes on at once.
pub async fn serve(service: Service, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let runner = crate::app::jobs::start(&service);
    let stopper = runner.stopper();
    let limits = service.settings.http.limits;
    let grace = std::time::Duration::from_secs(service.settings.workers.shutdown_grace_seconds);
    let signal = async move {
        shutdown_signal().await;
        stopper.stop();
    };
    let served = server::serve_connections(listener, router(service), limits, signal).await;
    runner.drain(grace).await;
    tracing::info!("workers drained");
    served
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

impl Problem {
    /// A problem with only a status and a slug (used by fallbacks).
    pub fn new_status(status: StatusCode, slug: &str, title: &str) -> Problem {
        Problem {
            kind: format!("{}{slug}", problem::PROBLEM_TYPE_PREFIX),
            title: title.into(),
            status: status.as_u16(),
            detail: title.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }
}

/// The authenticated tenant: `Authorization: Bearer <api key>`.
///
/// With the router's [`rate_limit::RateContext`]: an address that has had too many keys
/// refused gets 429 before its key is looked at, each refusal counts against its address, and
/// an accepted key spends its tenant's general quota and the route's own (deposits, batches,
/// uploads).
impl FromRequestParts<Service> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &Service,
    ) -> Result<Self, Self::Rejection> {
        let context = parts.extensions.get::<rate_limit::RateContext>().cloned();
        let now = std::time::Instant::now();
        if let Some(context) = &context {
            let standing = context.limits.failed_auth.peek(&context.client, now);
            if standing.refused.is_some() {
                context.note(standing);
                tracing::warn!(client = %context.client, "too many refused API keys");
                return Err(standing.problem());
            }
        }
        let authenticated = authenticate(parts, service).await;
        let Some(context) = context else {
            return authenticated;
        };
        let caller = match authenticated {
            Ok(caller) => caller,
            Err(problem) => {
                if problem.status == StatusCode::UNAUTHORIZED.as_u16() {
                    context.note(context.limits.failed_auth.take(&context.client, now));
                }
                return Err(problem);
            }
        };
        let mut standings = vec![context.limits.api.take(&caller.tenant_id, now)];
        if let Some(route) = context.limits.tenant_route(&parts.method, parts.uri.path()) {
            standings.push(route.take(&caller.tenant_id, now));
        }
        for standing in &standings {
            context.note(*standing);
        }
        match standings.iter().find(|s| s.refused.is_some()) {
            Some(refused) => {
                tracing::warn!(
                    tenant = %caller.tenant_id,
                    limit = refused.policy.name,
                    "tenant rate limit"
                );
                Err(refused.problem())
            }
            None => Ok(caller),
        }
    }
}

/// Checks `Authorization: Bearer <api key>`.
async fn authenticate(parts: &Parts, service: &Service) -> Result<Caller, Problem> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(Problem::unauthorized(
            "send the API key as `Authorization: Bearer <key>`",
        ));
    };
    let value = value
        .to_str()
        .map_err(|_| Problem::unauthorized("the Authorization header is not valid text"))?;
    let Some((scheme, key)) = value.split_once(' ') else {
        return Err(Problem::unauthorized(
            "the Authorization header must be `Bearer <key>`",
        ));
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Problem::unauthorized(
            "the Authorization scheme must be Bearer",
        ));
    }
    match service
        .api_keys
        .authenticate(&service.storage, key.trim())
        .await?
    {
        Some(caller) => Ok(caller),
        None => Err(Problem::unauthorized("the API key is unknown or revoked")),
    }
}

/// A JSON response with an explicit status.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// `value` as JSON bytes; failing to serialise is an internal problem.
pub(crate) fn json_bytes<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Problem> {
    serde_json::to_vec(value).map_err(|e| Problem::internal(&e))
}

/// `200 OK` with `value` as JSON.
pub(crate) fn json_ok<T: serde::Serialize>(value: &T) -> Result<Response, Problem> {
    Ok(json_response(StatusCode::OK, json_bytes(value)?))
}

/// The body read as JSON, or the `malformed-json` problem.
pub(crate) fn json_body(body: &[u8]) -> Result<serde_json::Value, Problem> {
    serde_json::from_slice(body)
        .map_err(|e| Problem::malformed_json(format!("the body is not valid JSON: {e}")))
}

/// Refuses a body whose `Content-Type` is not JSON; `what` names the thing sent.
pub(crate) fn require_json_content(headers: &HeaderMap, what: &str) -> Result<(), Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(Problem::unsupported_media_type(format!(
            "send {what} as Content-Type: application/json"
        )))
    }
}

/// Default and maximum page sizes of list routes other than letters.
pub(crate) const DEFAULT_PAGE: i64 = 50;
pub(crate) const MAX_PAGE: i64 = 500;

/// `limit` and `cursor` of a list route, ordered by UUID v7 id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageQuery {
    /// Page size asked for.
    pub limit: i64,
    /// Only items whose id sorts after this one.
    pub after_id: Option<String>,
}

impl PageQuery {
    /// Reads `limit` or `cursor` into the page; returns false for any other parameter, which
    /// the caller handles. Errors are pushed to `errors`.
    pub fn accept(&mut self, key: &str, value: &str, errors: &mut Vec<FieldError>) -> bool {
        match key {
            "limit" => match value.parse::<i64>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => self.limit = n,
                _ => errors.push(FieldError {
                    field: "limit".into(),
                    message: format!("must be an integer from 1 to {MAX_PAGE}"),
                }),
            },
            "cursor" => match uuid::Uuid::try_parse(value) {
                Ok(id) => self.after_id = Some(id.to_string()),
                Err(_) => errors.push(FieldError {
                    field: "cursor".into(),
                    message: "must be a next_cursor returned by a previous page".into(),
                }),
            },
            _ => return false,
        }
        true
    }

    /// Cuts `rows` (fetched with `limit + 1`) to the page and returns the next cursor.
    pub fn cut<T>(&self, rows: &mut Vec<T>, id: impl Fn(&T) -> &str) -> Option<String> {
        if rows.len() as i64 > self.limit {
            rows.truncate(self.limit as usize);
            rows.last().map(|r| id(r).to_string())
        } else {
            None
        }
    }
}

impl Default for PageQuery {
    fn default() -> Self {
        PageQuery {
            limit: DEFAULT_PAGE,
            after_id: None,
        }
    }
}

/// The canonical form of a UUID path segment, or `None` when it is not one (so that a
/// malformed id is simply not found).
pub(crate) fn path_uuid(id: &str) -> Option<String> {
    uuid::Uuid::try_parse(id).ok().map(|u| u.to_string())
}

/// Adds `Location: <path>` to a response.
pub(crate) fn with_location(mut response: Response, path: &str) -> Response {
    if let Ok(location) = HeaderValue::from_str(path) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_uris_hide_link_tokens_and_query_values() {
        let uri = |s: &str| s.parse::<axum::http::Uri>().expect("uri");
        assert_eq!(redacted_uri(&uri("/r/abcDEF123/code")), "/r/<token>/code");
        assert_eq!(
            redacted_uri(&uri("/v1/recipient/abcDEF123/session")),
            "/v1/recipient/<token>/session"
        );
        assert_eq!(
            redacted_uri(&uri("/v1/verify/0190-id?code=ABCD-EFGH&x=1")),
            "/v1/verify/0190-id?code=…&x=…"
        );
        assert_eq!(redacted_uri(&uri("/v1/letters/42")), "/v1/letters/42");
        assert_eq!(redacted_uri(&uri("/r/")), "/r/");
    }
}
