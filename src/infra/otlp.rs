//! OpenTelemetry export of the request spans (`[metrics] otlp_traces_endpoint`): one span
//! per HTTP request, in the trace the caller's `traceparent` named (src/infra/trace.rs),
//! POSTed in batches to a collector as OTLP/HTTP with the JSON encoding (OpenTelemetry
//! protocol specification, "OTLP/HTTP", JSON Protobuf encoding: ids in hex, times as decimal
//! strings of Unix nanoseconds).
//!
//! Export never slows a request: spans go into a bounded queue that a background task
//! drains every second (or at 512 spans); when the queue is full or the collector is down,
//! spans are dropped and counted, and the failure is logged at most once a minute.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

/// Spans waiting for export at most; past it, new ones are dropped.
const QUEUE: usize = 4096;
/// Spans per export request at most.
const BATCH: usize = 512;
/// How often the queue is drained.
const INTERVAL: Duration = Duration::from_secs(1);

/// One finished request span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanRecord {
    /// The trace.
    pub trace_id: [u8; 16],
    /// This span.
    pub span_id: [u8; 8],
    /// The caller's span, when a `traceparent` named one.
    pub parent_span_id: Option<[u8; 8]>,
    /// `GET /v1/letters/{id}`: the method and the route template.
    pub name: String,
    /// Start and end, Unix nanoseconds.
    pub start_unix_nanos: u128,
    /// End, Unix nanoseconds.
    pub end_unix_nanos: u128,
    /// The method.
    pub method: String,
    /// The route template (`unmatched` for an unknown path).
    pub route: String,
    /// The answer's status.
    pub status: u16,
    /// The request id (`X-Request-Id`).
    pub request_id: String,
}

/// The handle requests hand their spans to. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SpanExporter {
    queue: tokio::sync::mpsc::Sender<SpanRecord>,
    dropped: Arc<AtomicU64>,
}

impl SpanExporter {
    /// Starts the export task towards `endpoint` (the full traces URL).
    pub fn start(endpoint: String) -> SpanExporter {
        let (queue, receiver) = tokio::sync::mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(export(endpoint, receiver, dropped.clone()));
        SpanExporter { queue, dropped }
    }

    /// Queues a finished span, or drops it when the queue is full.
    pub fn record(&self, span: SpanRecord) {
        if self.queue.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The export loop: drains the queue, POSTs each batch; ends when every sender is gone.
async fn export(
    endpoint: String,
    mut receiver: tokio::sync::mpsc::Receiver<SpanRecord>,
    dropped: Arc<AtomicU64>,
) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "OTLP export disabled: no HTTP client");
            return;
        }
    };
    let mut last_warning: Option<std::time::Instant> = None;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let open = receiver.recv_many(&mut batch, BATCH).await > 0;
        if !open {
            return;
        }
        if batch.len() < BATCH {
            // Let a burst gather into one request.
            tokio::time::sleep(INTERVAL).await;
            while batch.len() < BATCH {
                match receiver.try_recv() {
                    Ok(span) => batch.push(span),
                    Err(_) => break,
                }
            }
        }
        let body = traces_request(&batch);
        let sent = client
            .post(&endpoint)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        let failure = match sent {
            Ok(answer) if answer.status().is_success() => None,
            Ok(answer) => Some(format!("HTTP {}", answer.status().as_u16())),
            Err(e) => Some(e.to_string()),
        };
        if let Some(failure) = failure {
            dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
            if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                last_warning = Some(std::time::Instant::now());
                tracing::warn!(
                    error = %failure,
                    dropped = dropped.load(Ordering::Relaxed),
                    "OTLP export failed; spans are dropped until the collector answers"
                );
            }
        }
        batch.clear();
    }
}

/// The `ExportTraceServiceRequest` of `spans`, in the JSON encoding of OTLP.
pub fn traces_request(spans: &[SpanRecord]) -> Value {
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let attribute = |key: &str, value: Value| json!({"key": key, "value": value});
            json!({
                "traceId": hex::encode(s.trace_id),
                "spanId": hex::encode(s.span_id),
                "parentSpanId": s.parent_span_id.map(hex::encode).unwrap_or_default(),
                "name": s.name,
                // SPAN_KIND_SERVER
                "kind": 2,
                "startTimeUnixNano": s.start_unix_nanos.to_string(),
                "endTimeUnixNano": s.end_unix_nanos.to_string(),
                "attributes": [
                    attribute("http.request.method", json!({"stringValue": s.method})),
                    attribute("http.route", json!({"stringValue": s.route})),
                    attribute(
                        "http.response.status_code",
                        json!({"intValue": s.status.to_string()}),
                    ),
                    attribute("recommande.request_id", json!({"stringValue": s.request_id})),
                ],
                // STATUS_CODE_ERROR for a server error, else unset (OpenTelemetry HTTP
                // semantic conventions: a 4xx is the client's, not the server span's, error).
                "status": if s.status >= 500 { json!({"code": 2}) } else { json!({}) },
            })
        })
        .collect();
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "recommande"}},
                {"key": "service.version", "value": {"stringValue": env!("CARGO_PKG_VERSION")}},
            ]},
            "scopeSpans": [{
                "scope": {"name": "recommande.http", "version": env!("CARGO_PKG_VERSION")},
                "spans": spans,
            }],
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_is_written_in_the_otlp_json_encoding() {
        let span = SpanRecord {
            trace_id: [0xab; 16],
            span_id: [0x01; 8],
            parent_span_id: Some([0x02; 8]),
            name: "GET /v1/letters/{id}".into(),
            start_unix_nanos: 1_700_000_000_000_000_000,
            end_unix_nanos: 1_700_000_000_002_000_000,
            method: "GET".into(),
            route: "/v1/letters/{id}".into(),
            status: 503,
            request_id: "r-1".into(),
        };
        let request = traces_request(&[span]);
        let s = &request["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "ab".repeat(16));
        assert_eq!(s["spanId"], "01".repeat(8));
        assert_eq!(s["parentSpanId"], "02".repeat(8));
        assert_eq!(s["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(s["status"]["code"], 2);
        assert_eq!(s["attributes"][2]["value"]["intValue"], "503");
    }
}
