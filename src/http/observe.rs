//! What an operator sees of each request: a request id (the client's `X-Request-Id` when it
//! is harmless, ours otherwise) echoed on the answer and carried by every log line of the
//! request, its place in a W3C trace (`traceparent`), an access log line at INFO (WARN for a
//! server error) whose URI has its link tokens and codes redacted, and the RED figures per
//! route template — requests by status and a duration histogram — that `/metrics` exposes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::client_address::ClientAddress;
use super::redacted_uri;
use crate::infra::trace::{self, RequestContext, TraceParent};

/// The request id header, read and echoed.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Upper bounds (seconds) of the duration histogram's buckets.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The figures of one (method, route template).
#[derive(Debug, Clone, Default)]
pub struct RouteFigures {
    /// Answers by status code.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests per bucket of [`BUCKETS`] (not cumulative; the last slot is above 10 s).
    pub buckets: [u64; BUCKETS.len() + 1],
    /// Sum of the durations, seconds.
    pub seconds: f64,
    /// Requests.
    pub count: u64,
}

/// What the observing middleware feeds: the RED figures, and the span exporter when
/// `[metrics] otlp_traces_endpoint` is set.
#[derive(Clone, Debug)]
pub struct Observer {
    /// The RED figures of `/metrics`.
    pub metrics: Arc<HttpMetrics>,
    /// OpenTelemetry export of one span per request.
    pub spans: Option<crate::infra::otlp::SpanExporter>,
}

/// RED figures of this process since it started, per (method, route template). Routes come
/// from the router's templates (`/v1/letters/{id}`), never from raw paths, so the number of
/// series stays bounded whatever clients send; an unrouted request counts as `unmatched`.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    routes: Mutex<BTreeMap<(&'static str, String), RouteFigures>>,
}

impl HttpMetrics {
    fn record(&self, method: &'static str, route: String, status: u16, seconds: f64) {
        // A poisoned lock only means another request panicked while counting: the counts
        // are still usable.
        let mut routes = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let figures = routes.entry((method, route)).or_default();
        *figures.by_status.entry(status).or_insert(0) += 1;
        let slot = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        figures.buckets[slot] += 1;
        figures.seconds += seconds;
        figures.count += 1;
    }

    /// The figures so far, sorted by (method, route).
    pub fn snapshot(&self) -> Vec<((&'static str, String), RouteFigures)> {
        self.routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// The method as a metric label: the standard ones by name, anything else as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The request id to use: the client's when acceptable, else a new one.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| trace::acceptable_request_id(id))
        .map_or_else(trace::new_request_id, str::to_string)
}

/// The middleware: identifies, traces, logs and counts the request.
pub async fn observe(State(observer): State<Observer>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let started_at = std::time::SystemTime::now();
    let id = request_id(&request);
    let incoming = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse);
    let trace = incoming.map_or_else(TraceParent::fresh, |parent| parent.child());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(request.method());
    let span = tracing::info_span!(
        "request",
        id = %id,
        trace_id = %trace.trace_id_hex(),
        client = %ClientAddress::of(request.extensions()),
        method = %request.method(),
        uri = %redacted_uri(request.uri()),
    );
    let context = RequestContext {
        request_id: Arc::from(id.as_str()),
        trace,
    };
    let mut response = context
        .scope(next.run(request).instrument(span.clone()))
        .await;
    let elapsed = started.elapsed();
    let status = response.status();
    span.in_scope(|| {
        let millis = elapsed.as_secs_f64() * 1e3;
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), route = %route, millis, "answered");
        } else {
            tracing::info!(status = status.as_u16(), route = %route, millis, "answered");
        }
    });
    if let Some(spans) = &observer.spans {
        let nanos = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        };
        let start_unix_nanos = nanos(started_at);
        spans.record(crate::infra::otlp::SpanRecord {
            trace_id: trace.trace_id,
            span_id: trace.parent_id,
            parent_span_id: incoming.map(|p| p.parent_id),
            name: format!("{method} {route}"),
            start_unix_nanos,
            end_unix_nanos: start_unix_nanos + elapsed.as_nanos(),
            method: method.to_string(),
            route: route.clone(),
            status: status.as_u16(),
            request_id: id.clone(),
        });
    }
    observer
        .metrics
        .record(method, route, status.as_u16(), elapsed.as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_their_bucket_and_statuses_are_counted() {
        let metrics = HttpMetrics::default();
        metrics.record("GET", "/v1/letters/{id}".into(), 200, 0.0004);
        metrics.record("GET", "/v1/letters/{id}".into(), 404, 0.003);
        metrics.record("GET", "/v1/letters/{id}".into(), 200, 42.0);
        metrics.record("POST", "/v1/letters".into(), 201, 0.01);
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.len(), 2);
        let (key, get) = &snapshot[0];
        assert_eq!(key, &("GET", "/v1/letters/{id}".to_string()));
        assert_eq!(get.count, 3);
        assert_eq!(get.by_status.get(&200), Some(&2));
        assert_eq!(get.by_status.get(&404), Some(&1));
        assert_eq!(get.buckets[0], 1, "0.4 ms ≤ 1 ms");
        assert_eq!(get.buckets[2], 1, "3 ms ≤ 5 ms");
        assert_eq!(
            get.buckets[BUCKETS.len()],
            1,
            "42 s is above the last bound"
        );
        assert!((get.seconds - 42.0034).abs() < 1e-9);
        let (_, post) = &snapshot[1];
        assert_eq!(post.buckets[3], 1, "10 ms ≤ the 10 ms bound");
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        let odd = Method::from_bytes(b"PROPFIND").expect("token");
        assert_eq!(method_label(&odd), "other");
    }
}
