//! What an operator follows a request by: `X-Request-Id` kept or made, echoed and named as
//! the problem's `instance`; RED series per route template that Prometheus' own `promtool`
//! accepts; `/livez` and `/readyz` naming the part that is down; and, from the real process,
//! JSON log lines carrying the request id with link tokens redacted; and the request spans
//! exported to an OpenTelemetry collector (OTLP/HTTP, JSON) in the caller's trace.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Engine, spawn_app, spawn_app_with_sink};

crate::on_both_engines!(
    only_the_public_verification_routes_answer_other_origins,
    request_ids_are_kept_or_made_echoed_and_named_by_problems,
    the_metrics_count_requests_by_route_template_and_promtool_accepts_them,
    readiness_names_the_part_that_is_down,
);

async fn request_ids_are_kept_or_made_echoed_and_named_by_problems(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    // The client's id is kept, on a problem answer as on any other.
    let response = app
        .client
        .get(app.url("/v1/letters/no-such-letter"))
        .bearer_auth(&app.api_key)
        .header("X-Request-Id", "req-0042:edge/1")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["x-request-id"], "req-0042:edge/1");
    let problem: Value = response.json().await.expect("problem");
    assert_eq!(
        problem["instance"],
        "urn:recommande:request:req-0042:edge/1"
    );
    assert_eq!(problem["status"], 404);

    // None given, or one that could break a log line: ours, a UUID, one per request.
    let mut seen = Vec::new();
    for given in [None, Some("x".repeat(129)), Some("two words".to_string())] {
        let mut request = app.client.get(app.url("/no/such/route"));
        if let Some(given) = &given {
            request = request.header("X-Request-Id", given.as_str());
        }
        let response = request.send().await.expect("GET");
        let id = response.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{given:?} gave {id}");
        let problem: Value = response.json().await.expect("problem");
        assert_eq!(problem["instance"], format!("urn:recommande:request:{id}"));
        assert!(!seen.contains(&id), "ids repeat: {seen:?}");
        seen.push(id);
    }
    // A success carries its id too.
    let live = app.client.get(app.url("/livez")).send().await.expect("GET");
    assert_eq!(live.status(), 200);
    assert!(live.headers().contains_key("x-request-id"));
    // The published schema says what `instance` is.
    let doc: Value = app
        .get("/v1/openapi.json")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        doc["components"]["schemas"]["Problem"]["properties"]["instance"]["type"],
        "string"
    );
    assert!(doc["paths"]["/readyz"]["get"].is_object());
    assert!(doc["paths"]["/livez"]["get"].is_object());
}

const TOKEN: &str = "metrics-token-0123456789-0123456789-abcdef";

async fn the_metrics_count_requests_by_route_template_and_promtool_accepts_them(engine: Engine) {
    let Some(app) = crate::helpers::spawn_app_with(
        engine,
        std::sync::Arc::new(recommande::core::clock::SystemClock),
        |s| s.metrics.token = Some(recommande::config::SecretText::new(TOKEN.into())),
    )
    .await
    else {
        return;
    };
    for id in ["a", "b", "c"] {
        assert_eq!(app.get(&format!("/v1/letters/{id}")).await.status(), 404);
    }
    assert_eq!(app.get("/v1/letters").await.status(), 200);
    assert_eq!(app.get("/nothing/here/42").await.status(), 404);
    let text = app
        .get_as(TOKEN, "/metrics")
        .await
        .text()
        .await
        .expect("text");
    let value = |series: &str| series_value(&text, series);
    // Three different letter ids, one series: the template, not the path.
    assert_eq!(
        value(
            r#"recommande_http_requests_total{method="GET",route="/v1/letters/{id}",status="404"}"#
        ),
        3.0
    );
    assert_eq!(
        value(r#"recommande_http_requests_total{method="GET",route="/v1/letters",status="200"}"#),
        1.0
    );
    assert_eq!(
        value(r#"recommande_http_requests_total{method="GET",route="unmatched",status="404"}"#),
        1.0
    );
    assert!(!text.contains("/nothing/here"), "raw paths make series");

    // The histogram: cumulative buckets, +Inf equal to the count.
    let labels = r#"method="GET",route="/v1/letters/{id}""#;
    let inf = value(&format!(
        r#"recommande_http_request_duration_seconds_bucket{{{labels},le="+Inf"}}"#
    ));
    assert_eq!(inf, 3.0);
    assert_eq!(
        value(&format!(
            "recommande_http_request_duration_seconds_count{{{labels}}}"
        )),
        3.0
    );
    let mut previous = 0.0;
    for line in text.lines().filter(|l| {
        l.starts_with("recommande_http_request_duration_seconds_bucket{") && l.contains(labels)
    }) {
        let n: f64 = line
            .rsplit_once(' ')
            .expect("value")
            .1
            .parse()
            .expect("number");
        assert!(n >= previous, "not cumulative: {line}");
        previous = n;
    }
    assert!(
        value(&format!(
            "recommande_http_request_duration_seconds_sum{{{labels}}}"
        )) > 0.0
    );
    assert_eq!(
        value(&format!(
            r#"recommande_build_info{{version="{}"}}"#,
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("process_open_fds") >= 3.0);
    // Nothing is due yet: the backlog gauge is at rest.
    assert_eq!(
        value(r#"recommande_outbox_oldest_pending_age_seconds{queue="notifications"}"#),
        0.0
    );

    // A reminder scheduled days ahead is not a backlog; a job due for 30 s is.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_micros() as i64;
    let day = 86_400_000_000_i64;
    crate::process::execute(
        &app.database_url,
        &format!(
            "INSERT INTO outbox (kind, letter_id, payload, run_after, created_at) \
             VALUES ('reminder', NULL, '{{}}', {}, {})",
            now + 3 * day,
            now - day
        ),
    )
    .await;
    let backlog = |text: &str| -> f64 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(
                    r#"recommande_outbox_oldest_pending_age_seconds{queue="notifications"} "#,
                )
            })
            .expect("backlog gauge")
            .parse()
            .expect("number")
    };
    let later = app
        .get_as(TOKEN, "/metrics")
        .await
        .text()
        .await
        .expect("text");
    assert_eq!(
        backlog(&later),
        0.0,
        "a job scheduled ahead counts as backlog"
    );
    crate::process::execute(
        &app.database_url,
        &format!(
            "INSERT INTO outbox (kind, letter_id, payload, run_after, created_at) \
             VALUES ('reminder', NULL, '{{}}', {}, {})",
            now - 30_000_000,
            now - day
        ),
    )
    .await;
    let later = app
        .get_as(TOKEN, "/metrics")
        .await
        .text()
        .await
        .expect("text");
    let age = backlog(&later);
    assert!(
        (29.0..600.0).contains(&age),
        "due for 30 s, gauge says {age}"
    );

    // Throughput: one letter alone, then a batch of three rows, one of them refused.
    app.deposit().await;
    let document = app.upload_pdf().await;
    let mut good = crate::helpers::letter_body(&document);
    let mut bad = good.clone();
    bad["recipient"]["email"] = serde_json::json!("not an address");
    good["reference"] = serde_json::json!("B-1");
    let batch = app
        .run_batch(
            "application/json",
            "",
            serde_json::to_vec(&serde_json::json!({"letters": [good.clone(), bad, good]}))
                .expect("json"),
        )
        .await;
    assert_eq!(batch["deposited"], 2, "{batch}");
    let text = app
        .get_as(TOKEN, "/metrics")
        .await
        .text()
        .await
        .expect("text");
    let value = |series: &str| series_value(&text, series);
    assert_eq!(
        value(r#"recommande_evidence_recorded_total{event="SubmissionAcceptance"}"#),
        3.0
    );
    assert_eq!(value("recommande_batches_received_total"), 1.0);
    assert_eq!(
        value(r#"recommande_batch_rows_total{outcome="deposited"}"#),
        2.0
    );
    assert_eq!(
        value(r#"recommande_batch_rows_total{outcome="rejected"}"#),
        1.0
    );

    // Prometheus' own linter, where it is installed (`.ci/run` installs it).
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is missing in CI"
        );
        return;
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn readiness_names_the_part_that_is_down(engine: Engine) {
    let Some((sink, app)) = spawn_app_with_sink(engine).await else {
        return;
    };
    let ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("GET");
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.expect("json");
    for part in ["database", "content", "timestamps", "mail"] {
        assert_eq!(body["checks"][part], "ok", "{body}");
    }
    // The relay goes away: not ready, and the answer says which part; alive all the same.
    drop(sink);
    let not_ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("GET");
    assert_eq!(not_ready.status(), 503);
    assert_eq!(
        not_ready.headers()["content-type"],
        "application/problem+json"
    );
    assert!(not_ready.headers().contains_key("retry-after"));
    let problem: Value = not_ready.json().await.expect("problem");
    assert_eq!(problem["checks"]["mail"], "failing", "{problem}");
    assert_eq!(problem["checks"]["database"], "ok", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("mail")),
        "{problem}"
    );
    assert!(
        problem["instance"]
            .as_str()
            .is_some_and(|i| i.starts_with("urn:recommande:request:")),
        "{problem}"
    );
    let live = app.client.get(app.url("/livez")).send().await.expect("GET");
    assert_eq!(live.status(), 200);
}

/// The real process with `RECOMMANDE_LOG_FORMAT=json`: one JSON object per line, the
/// access line names the request id and the route template, and the link token and the
/// verification code are not in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_carry_the_request_id_and_no_link_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_recommande"))
        .env_remove("RECOMMANDE_DATABASE_URL")
        .env("RUST_LOG", "info")
        .env("RECOMMANDE_LOG_FORMAT", "json")
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start recommande serve");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..300 {
        if client
            .get(format!("{base}/livez"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the service did not start");
    let secret = "SecretLinkToken0123456789abcdef";
    for (path, id) in [
        (format!("/r/{secret}"), "trace-me-1"),
        (
            format!("/v1/verify/0190-no-letter?code={secret}"),
            "trace-me-2",
        ),
    ] {
        let response = client
            .get(format!("{base}{path}"))
            .header("X-Request-Id", id)
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .send()
            .await
            .expect("GET");
        assert_eq!(response.headers()["x-request-id"], id);
    }
    // The access line is written once the answer is ready; give the writer a moment.
    let mut text = String::new();
    for _ in 0..50 {
        text = std::fs::read_to_string(&log).expect("log");
        if text.contains("trace-me-2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !text.contains(secret),
        "a link token or code is in the log:\n{text}"
    );
    assert!(!text.contains('\u{1b}'), "colours in a file:\n{text}");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let answered: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "answered")
        .collect();
    let first = answered
        .iter()
        .find(|l| l["span"]["id"] == "trace-me-1")
        .unwrap_or_else(|| panic!("no access line for trace-me-1:\n{text}"));
    assert_eq!(first["level"], "INFO");
    assert_eq!(first["span"]["uri"], "/r/<token>");
    assert_eq!(
        first["span"]["trace_id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert!(first["fields"]["status"].is_u64(), "{first}");
    assert!(first["fields"]["route"].is_string(), "{first}");
    let second = answered
        .iter()
        .find(|l| l["span"]["id"] == "trace-me-2")
        .unwrap_or_else(|| panic!("no access line for trace-me-2:\n{text}"));
    assert_eq!(second["fields"]["route"], "/v1/verify/{letter_id}");
    assert_eq!(second["span"]["uri"], "/v1/verify/0190-no-letter?code=…");
}

async fn only_the_public_verification_routes_answer_other_origins(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let origin = "https://greffe.example.fr";
    for path in [
        "/v1/verify/0190-no-letter?code=ABCD",
        "/v1/trust/roots.pem",
        "/v1/log/tree-heads/latest",
    ] {
        let response = app
            .client
            .get(app.url(path))
            .header("Origin", origin)
            .send()
            .await
            .expect("GET");
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "*",
            "{path}"
        );
        let preflight = app
            .client
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .send()
            .await
            .expect("OPTIONS");
        assert_eq!(preflight.status(), 204, "{path}");
        assert_eq!(preflight.headers()["access-control-allow-methods"], "GET");
    }
    // Behind a key: no CORS, so a browser keeps other origins' scripts out.
    for path in ["/v1/letters", "/metrics", "/r/sometoken"] {
        let response = app
            .client
            .get(app.url(path))
            .bearer_auth(&app.api_key)
            .header("Origin", origin)
            .send()
            .await
            .expect("GET");
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-origin"),
            "{path}"
        );
    }
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/letters"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .expect("OPTIONS");
    assert!(
        !preflight
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

/// The value of the sample `series` (name and labels, exactly) in a Prometheus exposition.
fn series_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .expect("number")
}

/// A collector stand-in on 127.0.0.1: keeps the bodies POSTed to `/v1/traces`.
async fn collector() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/v1/traces", listener.local_addr().expect("addr"));
    let store = received.clone();
    let router = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let value: Value = serde_json::from_slice(&body).expect("OTLP JSON");
                store.lock().expect("lock").push(value);
                axum::http::StatusCode::OK
            }
        }),
    );
    // Stops with the test's runtime.
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("collector");
    });
    (url, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_reach_an_otlp_collector_in_the_callers_trace() {
    let (url, received) = collector().await;
    let Some(app) = crate::helpers::spawn_app_with(
        Engine::Sqlite,
        std::sync::Arc::new(recommande::core::clock::SystemClock),
        |s| s.metrics.otlp_traces_endpoint = Some(url),
    )
    .await
    else {
        return;
    };
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let answer = app
        .client
        .get(app.url("/v1/letters/01a2051c-33d0-7f9e-8a61-0c5d2b9e4f10"))
        .bearer_auth(&app.api_key)
        .header("traceparent", format!("00-{trace}-{parent}-01"))
        .header("X-Request-Id", "otlp-check-1")
        .send()
        .await
        .expect("GET");
    assert_eq!(answer.status(), 404);
    let mut span = None;
    for _ in 0..100 {
        span = received
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|r| r["resourceSpans"].as_array().cloned().unwrap_or_default())
            .flat_map(|r| {
                r["scopeSpans"][0]["spans"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .find(|s| s["traceId"] == trace);
        if span.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let span = span.expect("the request's span reached the collector within 10 s");
    assert_eq!(span["parentSpanId"], parent);
    let span_id = span["spanId"].as_str().expect("span id");
    assert_eq!(span_id.len(), 16);
    assert_ne!(span_id, parent, "our own span");
    assert_eq!(span["name"], "GET /v1/letters/{id}");
    assert_eq!(span["kind"], 2);
    let attribute = |key: &str| {
        span["attributes"]
            .as_array()
            .expect("attributes")
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| a["value"].clone())
            .unwrap_or_else(|| panic!("no {key} in {span}"))
    };
    assert_eq!(attribute("http.response.status_code")["intValue"], "404");
    assert_eq!(attribute("http.route")["stringValue"], "/v1/letters/{id}");
    assert_eq!(
        attribute("recommande.request_id")["stringValue"],
        "otlp-check-1"
    );
    let start: u128 = span["startTimeUnixNano"]
        .as_str()
        .expect("start")
        .parse()
        .expect("n");
    let end: u128 = span["endTimeUnixNano"]
        .as_str()
        .expect("end")
        .parse()
        .expect("n");
    assert!(end >= start && start > 1_700_000_000_000_000_000, "{span}");
}
