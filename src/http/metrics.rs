//! `GET /metrics`: what an operator monitors (issue 6 §3), in the Prometheus text exposition
//! format 0.0.4 written by hand — `# HELP`, `# TYPE`, then `name{label="value"} number` lines.
//! Behind the operator's bearer token (`[metrics] token`), or open with `[metrics] public`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use super::bounces::bearer_token_matches;
use super::observe::{BUCKETS, HttpMetrics};
use super::problem::Problem;
use crate::app::service::Service;
use crate::core::clock::unix_micros;

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain"),
              (status = 401, description = "Wrong metrics token", body = Problem),
              (status = 404, description = "Metrics disabled", body = Problem)),
    security(("metrics_token" = [])))]
pub async fn metrics(
    State(service): State<Service>,
    headers: HeaderMap,
    http: Option<axum::Extension<Arc<HttpMetrics>>>,
) -> Result<Response, Problem> {
    if !service.settings.metrics.public {
        let Some(expected) = &service.settings.metrics.token else {
            return Err(Problem::not_found(
                "metrics are disabled (set metrics.token or metrics.public)",
            ));
        };
        if !bearer_token_matches(&headers, expected.expose()) {
            return Err(Problem::unauthorized("the metrics token is wrong"));
        }
    }
    let now = unix_micros(service.clock.now());
    let snapshot = service.storage.metrics_snapshot(now).await?;
    let audit = service.storage.latest_audit_run().await?;
    let mut out = Exposition::default();
    out.gauge(
        "recommande_build_info",
        "The running build, as labels (value 1).",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    if let Some(axum::Extension(http)) = &http {
        http_series(&mut out, http);
    }
    process_series(&mut out);

    // An info metric (value 1, the fact in a label): an alert can watch for a half-year
    // label older than the current one, i.e. an operator table to update (issue 13).
    if let Some(newest) = service.composer.rates().last_half_year() {
        out.gauge(
            "recommande_collection_rates_newest_half_year_info",
            "The newest half-year of the collection rates table, as a label.",
            &[("half_year", &newest.to_string())],
            1.0,
        );
    }
    let seconds = |micros: i64| micros as f64 / 1e6;
    let age = |at: Option<i64>| at.map_or(0.0, |t| seconds((now - t).max(0)));
    if let Some(run) = &audit {
        let report: serde_json::Value = serde_json::from_slice(&run.report).unwrap_or_default();
        let mode = if run.mode == "all" { "all" } else { "sampled" };
        out.gauge(
            "recommande_audit_last_finished_timestamp_seconds",
            "When the last archive audit finished (Unix time).",
            &[("mode", mode)],
            seconds(run.finished_at),
        );
        out.gauge(
            "recommande_audit_last_duration_seconds",
            "How long the last archive audit took.",
            &[("mode", mode)],
            seconds(run.finished_at - run.started_at),
        );
        out.gauge(
            "recommande_audit_last_passed",
            "1 when the last archive audit found nothing wrong.",
            &[("mode", mode)],
            if run.passed { 1.0 } else { 0.0 },
        );
        out.gauge(
            "recommande_audit_last_failures",
            "Failures found by the last archive audit.",
            &[("mode", mode)],
            run.failures as f64,
        );
        for what in [
            "documents",
            "letters",
            "evidence",
            "log_leaves",
            "tree_heads",
        ] {
            let value = report[format!("{what}_checked")].as_u64().unwrap_or(0);
            out.gauge(
                "recommande_audit_last_checked",
                "Items checked by the last archive audit.",
                &[("mode", mode), ("what", what)],
                value as f64,
            );
        }
    }
    for (queue, at) in [
        ("notifications", snapshot.oldest_pending_job),
        ("webhooks", snapshot.oldest_pending_webhook),
        ("witnesses", snapshot.oldest_pending_witness),
    ] {
        out.gauge(
            "recommande_outbox_oldest_pending_age_seconds",
            "How long the oldest due job (notifications: since it became due; deliveries: since \
             created) has waited (0 when none). Jobs scheduled for later do not count.",
            &[("queue", queue)],
            age(at),
        );
    }
    out.gauge(
        "recommande_log_leaves",
        "Evidence records in the transparency log.",
        &[],
        snapshot.log_size as f64,
    );
    if let Some((size, issued_at)) = snapshot.latest_tree_head {
        out.gauge(
            "recommande_log_tree_head_size",
            "Size of the latest signed tree head.",
            &[],
            size as f64,
        );
        out.gauge(
            "recommande_log_tree_head_age_seconds",
            "Age of the latest signed tree head.",
            &[],
            age(Some(issued_at)),
        );
    }
    for (state, n) in &snapshot.letters_by_state {
        out.gauge(
            "recommande_letters",
            "Letters by state.",
            &[("state", state)],
            *n as f64,
        );
    }
    out.gauge(
        "recommande_documents",
        "Stored documents.",
        &[],
        snapshot.documents as f64,
    );
    for (key, n) in &snapshot.data_keys_by_master_key {
        out.gauge(
            "recommande_data_keys",
            "Live document data keys by the master key wrapping them.",
            &[("master_key_id", key)],
            *n as f64,
        );
    }
    // Throughput of this process: what it committed since it started (per instance; sum
    // them across instances). `rate(recommande_evidence_recorded_total{event=
    // "NotificationForAcceptance"}[5m])` is the proofs of dispatch per second.
    let throughput = service.storage.throughput();
    for (event, n) in &throughput.evidence {
        out.counter(
            "recommande_evidence_recorded_total",
            "Evidence records this process committed, by event.",
            &[("event", event.as_str())],
            *n as f64,
        );
    }
    out.counter(
        "recommande_batches_received_total",
        "Batches this process recorded.",
        &[],
        throughput.batches as f64,
    );
    for (outcome, n) in [
        ("deposited", throughput.batch_rows_deposited),
        ("rejected", throughput.batch_rows_rejected),
    ] {
        out.counter(
            "recommande_batch_rows_total",
            "Batch rows this process deposited or rejected.",
            &[("outcome", outcome)],
            n as f64,
        );
    }
    // The background workers of this process (src/app/worker.rs): empty when none runs here.
    for worker in service.workers.snapshot() {
        let labels = [("worker", worker.name)];
        let at = |micros: i64| if micros > 0 { seconds(micros) } else { 0.0 };
        out.gauge(
            "recommande_worker_last_run_timestamp_seconds",
            "When the worker's last pass started (Unix time; 0 before the first).",
            &labels,
            at(worker.last_run),
        );
        out.gauge(
            "recommande_worker_last_success_timestamp_seconds",
            "When the worker's last successful pass ended (Unix time; 0 before the first).",
            &labels,
            at(worker.last_success),
        );
        out.gauge(
            "recommande_worker_last_error_timestamp_seconds",
            "When the worker's last failed pass ended (Unix time; 0 when none failed).",
            &labels,
            at(worker.last_error_at),
        );
        out.counter(
            "recommande_worker_runs_total",
            "Passes the worker ran since the process started.",
            &labels,
            worker.runs as f64,
        );
        out.counter(
            "recommande_worker_errors_total",
            "Passes of the worker that failed since the process started.",
            &labels,
            worker.errors as f64,
        );
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        out.text,
    )
        .into_response())
}

/// The RED series: requests by route template and status, and their duration histogram.
fn http_series(out: &mut Exposition, http: &HttpMetrics) {
    let snapshot = http.snapshot();
    for ((method, route), figures) in &snapshot {
        for (status, n) in &figures.by_status {
            out.counter(
                "recommande_http_requests_total",
                "HTTP requests answered, by method, route template and status.",
                &[
                    ("method", *method),
                    ("route", route.as_str()),
                    ("status", &status.to_string()),
                ],
                *n as f64,
            );
        }
    }
    for ((method, route), figures) in &snapshot {
        let name = "recommande_http_request_duration_seconds";
        let help = "Time to answer an HTTP request (headers sent), by method and route template.";
        let mut cumulative = 0;
        for (i, bound) in BUCKETS
            .iter()
            .map(|b| b.to_string())
            .chain(["+Inf".into()])
            .enumerate()
        {
            cumulative += figures.buckets[i];
            out.histogram_sample(
                name,
                "_bucket",
                help,
                &[
                    ("method", *method),
                    ("route", route.as_str()),
                    ("le", &bound),
                ],
                cumulative as f64,
            );
        }
        let labels = [("method", *method), ("route", route.as_str())];
        out.histogram_sample(name, "_sum", help, &labels, figures.seconds);
        out.histogram_sample(name, "_count", help, &labels, figures.count as f64);
    }
}

/// The standard process series (Prometheus client conventions), where `/proc` tells them.
fn process_series(out: &mut Exposition) {
    let figures = crate::infra::process::figures();
    if let Some(v) = figures.cpu_seconds {
        out.counter(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            &[],
            v,
        );
    }
    for (name, help, value) in [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            figures.resident_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            figures.virtual_bytes,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            figures.open_fds,
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            figures.max_fds,
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            figures.start_time_seconds,
        ),
    ] {
        if let Some(v) = value {
            out.gauge(name, help, &[], v);
        }
    }
}

/// The text being written; `# HELP` and `# TYPE` once per metric name.
#[derive(Default)]
struct Exposition {
    text: String,
    named: Vec<&'static str>,
}

impl Exposition {
    fn gauge(&mut self, name: &'static str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.sample(name, "gauge", help, labels, value);
    }

    fn counter(&mut self, name: &'static str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.sample(name, "counter", help, labels, value);
    }

    fn sample(
        &mut self,
        name: &'static str,
        kind: &str,
        help: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        self.write(name, "", kind, help, labels, value);
    }

    /// One line of a histogram: `suffix` is `_bucket`, `_sum` or `_count`.
    fn histogram_sample(
        &mut self,
        name: &'static str,
        suffix: &str,
        help: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        self.write(name, suffix, "histogram", help, labels, value);
    }

    fn write(
        &mut self,
        name: &'static str,
        suffix: &str,
        kind: &str,
        help: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        if !self.named.contains(&name) {
            self.named.push(name);
            self.text
                .push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        }
        self.text.push_str(name);
        self.text.push_str(suffix);
        if !labels.is_empty() {
            let body: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            self.text.push_str(&format!("{{{}}}", body.join(",")));
        }
        self.text.push_str(&format!(" {value}\n"));
    }
}

/// A label value escaped as the format requires: `\`, `"` and line feeds.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_and_type_come_once_and_label_values_are_escaped() {
        let mut out = Exposition::default();
        out.gauge("m", "Help.", &[("k", "a\"b\\c")], 1.0);
        out.gauge("m", "Help.", &[("k", "d")], 2.5);
        assert_eq!(
            out.text,
            "# HELP m Help.\n# TYPE m gauge\nm{k=\"a\\\"b\\\\c\"} 1\nm{k=\"d\"} 2.5\n"
        );
    }
}
