//! Webhooks: registration through the API, then fan-out and delivery to a real HTTP receiver
//! on 127.0.0.1 that checks the signature. Time is moved by passing explicit `now` values.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use recommande::app::webhook::{WebhookEvent, deliver_due, fan_out};
use recommande::core::clock::unix_micros;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::helpers::{Engine, TestApp, spawn_app};

crate::on_both_engines!(
    webhook_registration_lists_every_invalid_field_and_never_echoes_the_secret,
    a_delivery_reaches_a_real_receiver_with_exactly_the_expected_body_and_a_valid_signature,
    a_receiver_failing_once_gets_two_attempts_and_one_delivery,
    fan_out_reaches_only_active_subscribed_webhooks_of_the_tenant_and_only_once,
    deleting_a_webhook_stops_its_pending_deliveries,
    failed_attempts_back_off_and_are_given_up_48_hours_after_the_first,
    every_lifecycle_event_reaches_the_receiver_through_the_outbox,
    a_delivery_claim_given_back_at_shutdown_is_due_again_at_once,
    standard_webhooks_libraries_verify_every_delivery,
    a_webhook_is_told_only_of_events_after_its_registration,
    a_rotated_secret_signs_beside_the_previous_one_until_the_overlap_ends,
);

const SECRET: &str = "whsec-0123456789-abcdef";

/// What the receiver saw of one request.
#[derive(Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A webhook receiver on 127.0.0.1:0 answering the scripted statuses in turn, then 200.
#[derive(Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start(script: &[u16]) -> (String, Receiver) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hooks/lre", listener.local_addr().expect("addr"));
        let receiver = Receiver {
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            ..Receiver::default()
        };
        let router = axum::Router::new()
            .route("/hooks/lre", axum::routing::post(receive))
            .with_state(receiver.clone());
        // Stops with the test's runtime.
        tokio::spawn(async move {
            axum::serve(listener, router).await.expect("receiver");
        });
        (url, receiver)
    }

    /// A copy of the requests received so far.
    fn received(&self) -> Vec<Received> {
        self.requests.lock().expect("lock").clone()
    }

    fn count(&self) -> usize {
        self.requests.lock().expect("lock").len()
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    receiver.requests.lock().expect("lock").push(Received {
        headers,
        body: body.to_vec(),
    });
    let status = receiver
        .script
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(200);
    StatusCode::from_u16(status).expect("status")
}

/// Checks `t=…,v1=…` against an HMAC-SHA256 computed here, independently of the service;
/// returns the timestamp when the signature is valid.
fn verified_timestamp(secret: &str, header: &str, body: &[u8]) -> Option<i64> {
    let (t, v1) = header.split_once(',')?;
    let t = t.strip_prefix("t=")?;
    let mac = hex::decode(v1.strip_prefix("v1=")?).ok()?;
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::verify(&key, &signed, &mac).ok()?;
    t.parse().ok()
}

/// The three Standard Webhooks headers of a delivery, as the verifier reads them.
fn standard_headers(request: &Received) -> serde_json::Map<String, Value> {
    ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .iter()
        .map(|name| (name.to_string(), json!(header(&request.headers, name))))
        .collect()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("header {name} missing"))
}

async fn create_webhook(app: &TestApp, key: &str, url: &str, events: &[&str]) -> Value {
    let response = app
        .post_json_as(
            key,
            "/v1/webhooks",
            &json!({"url": url, "secret": SECRET, "events": events}),
        )
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.expect("json")
}

async fn tenant_id(app: &TestApp, name: &str) -> String {
    app.service
        .storage
        .list_api_keys(Some(name))
        .await
        .expect("keys")[0]
        .tenant_id
        .clone()
}

/// Deposits a letter and returns the event announcing it.
async fn deposited(app: &TestApp, event: &str) -> WebhookEvent {
    let letter = app.deposit().await;
    WebhookEvent {
        tenant_id: tenant_id(app, "Cabinet Recouvr").await,
        letter_id: letter["id"].as_str().expect("id").to_string(),
        event: event.to_string(),
        evidence_id: letter["evidence"][0]["id"]
            .as_str()
            .expect("evidence id")
            .to_string(),
        occurred_at: letter["evidence"][0]["event_time"]
            .as_str()
            .expect("event time")
            .to_string(),
    }
}

async fn deliveries(app: &TestApp, webhook_id: &str) -> Vec<Value> {
    let page: Value = app
        .get_json(&format!("/v1/webhooks/{webhook_id}/deliveries"))
        .await;
    page["items"].as_array().expect("items").clone()
}

fn micros_of(rfc3339: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        rfc3339.as_str().expect("time"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339")
}

async fn webhook_registration_lists_every_invalid_field_and_never_echoes_the_secret(
    engine: Engine,
) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let response = app
        .post_json(
            "/v1/webhooks",
            &json!({"url": "ftp://hooks.example.fr/", "secret": "court",
            "events": ["letter.accepted", "letter.perdue"], "format": "xml"}),
        )
        .await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("json");
    assert_eq!(problem["type"], "urn:recommande:problem:validation-failed");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    assert_eq!(
        fields,
        ["format", "url", "secret", "events[1]"],
        "{problem}"
    );

    let response = app
        .post_json(
            "/v1/webhooks",
            &json!({"url": "https://hooks.example.fr/lre", "secret": SECRET,
            "events": ["letter.accepted", "letter.refused"]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.expect("text");
    assert!(!text.contains(SECRET), "{text}");
    let webhook: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(webhook["secret_hint"], "…cdef");
    assert_eq!(webhook["status"], "active");
    assert_eq!(
        webhook["events"],
        json!(["letter.accepted", "letter.refused"])
    );
    let id = webhook["id"].as_str().expect("id");

    let listed: Value = app.get_json("/v1/webhooks").await;
    assert_eq!(listed["items"], json!([webhook.clone()]));
    let read = app
        .get(&format!("/v1/webhooks/{id}"))
        .await
        .text()
        .await
        .expect("text");
    assert!(!read.contains(SECRET));
    let other = app.new_api_key("Autre Cabinet").await;
    let foreign = app.get_as(&other, &format!("/v1/webhooks/{id}")).await;
    assert_eq!(foreign.status(), 404);
    let bad_query = app
        .get(&format!("/v1/webhooks/{id}/deliveries?limit=9999"))
        .await;
    assert_eq!(bad_query.status(), 400);
}

async fn a_delivery_reaches_a_real_receiver_with_exactly_the_expected_body_and_a_valid_signature(
    engine: Engine,
) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let (url, receiver) = Receiver::start(&[]).await;
    let webhook = create_webhook(&app, &app.api_key, &url, &["letter.deposited"]).await;
    let event = deposited(&app, "letter.deposited").await;
    let now = OffsetDateTime::now_utc();
    let storage = &app.service.storage;
    let client = app.service.outbound.clone();

    assert_eq!(fan_out(storage, &event, now).await.expect("fan out"), 1);
    assert_eq!(
        deliver_due(storage, &client, now, 10)
            .await
            .expect("deliver"),
        1
    );

    let requests = receiver.received();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    let delivery_id = header(&request.headers, "recommande-delivery");
    assert_eq!(
        header(&request.headers, "recommande-event"),
        "letter.deposited"
    );
    assert_eq!(header(&request.headers, "content-type"), "application/json");
    let expected = format!(
        r#"{{"id":"{delivery_id}","event":"letter.deposited","letter_id":"{}","evidence_id":"{}","occurred_at":"{}"}}"#,
        event.letter_id, event.evidence_id, event.occurred_at
    );
    assert_eq!(String::from_utf8_lossy(&request.body), expected);
    let signature = header(&request.headers, "recommande-signature");
    assert_eq!(
        verified_timestamp(SECRET, signature, &request.body),
        Some(now.unix_timestamp()),
        "{signature}"
    );
    assert_eq!(
        verified_timestamp("another-secret-value", signature, &request.body),
        None
    );
    // Only identifiers leave: no name nor address of the sender or the recipient.
    for personal in ["Débitrice", "debitrice", "recouvr", "Recouvr"] {
        assert!(!expected.contains(personal), "{personal}");
    }
    let delivery_id = delivery_id.to_string();

    let log = deliveries(&app, webhook["id"].as_str().expect("id")).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["id"], delivery_id.as_str());
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"], 1);
    assert_eq!(log[0]["last_status"], 200);
    assert!(log[0].get("next_attempt_at").is_none(), "{}", log[0]);
    assert_eq!(
        deliver_due(storage, &client, now + Duration::hours(1), 10)
            .await
            .expect("deliver"),
        0
    );
    assert_eq!(receiver.count(), 1);
}

async fn a_receiver_failing_once_gets_two_attempts_and_one_delivery(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let (url, receiver) = Receiver::start(&[500]).await;
    let webhook = create_webhook(&app, &app.api_key, &url, &["letter.notified"]).await;
    let webhook_id = webhook["id"].as_str().expect("id");
    let event = deposited(&app, "letter.notified").await;
    let t0 = OffsetDateTime::now_utc();
    let storage = &app.service.storage;
    let client = app.service.outbound.clone();
    fan_out(storage, &event, t0).await.expect("fan out");

    assert_eq!(
        deliver_due(storage, &client, t0, 10)
            .await
            .expect("deliver"),
        1
    );
    let log = deliveries(&app, webhook_id).await;
    assert_eq!(log[0]["status"], "pending");
    assert_eq!(log[0]["attempts"], 1);
    assert_eq!(log[0]["last_status"], 500);
    assert_eq!(log[0]["last_error"], "HTTP 500", "{}", log[0]);
    // First retry 30 s later, ±10 % jitter.
    let retry = micros_of(&log[0]["next_attempt_at"]) - t0;
    assert!(
        retry >= Duration::seconds(27) && retry <= Duration::seconds(33),
        "{retry}"
    );

    // Not due yet: nothing is sent.
    let early = t0 + Duration::seconds(20);
    assert_eq!(
        deliver_due(storage, &client, early, 10)
            .await
            .expect("deliver"),
        0
    );
    let later = t0 + Duration::seconds(40);
    assert_eq!(
        deliver_due(storage, &client, later, 10)
            .await
            .expect("deliver"),
        1
    );
    let log = deliveries(&app, webhook_id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"], 2);
    assert_eq!(log[0]["last_status"], 200);
    assert!(log[0].get("last_error").is_none(), "{}", log[0]);
    assert_eq!(
        unix_micros(micros_of(&log[0]["delivered_at"])),
        unix_micros(later)
    );

    let requests = receiver.received();
    assert_eq!(requests.len(), 2);
    // A retry is the same delivery: same id, same bytes; receivers de-duplicate on the id.
    assert_eq!(
        header(&requests[0].headers, "recommande-delivery"),
        header(&requests[1].headers, "recommande-delivery")
    );
    assert_eq!(requests[0].body, requests[1].body);
    let t = verified_timestamp(
        SECRET,
        header(&requests[1].headers, "recommande-signature"),
        &requests[1].body,
    );
    assert_eq!(t, Some(later.unix_timestamp()));
    assert_eq!(
        deliver_due(storage, &client, t0 + Duration::hours(2), 10)
            .await
            .expect("deliver"),
        0
    );
}

async fn fan_out_reaches_only_active_subscribed_webhooks_of_the_tenant_and_only_once(
    engine: Engine,
) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let url = "http://127.0.0.1:9/unused";
    let notified = create_webhook(&app, &app.api_key, url, &["letter.notified"]).await;
    let deleted = create_webhook(
        &app,
        &app.api_key,
        url,
        &["letter.notified", "letter.deposited"],
    )
    .await;
    let deleted_id = deleted["id"].as_str().expect("id");
    let response = app
        .delete_as(&app.api_key, &format!("/v1/webhooks/{deleted_id}"))
        .await;
    assert_eq!(response.status(), 200);
    let other = app.new_api_key("Autre Cabinet").await;
    create_webhook(&app, &other, url, &["letter.notified"]).await;

    let event = deposited(&app, "letter.notified").await;
    let now = OffsetDateTime::now_utc();
    let storage = &app.service.storage;
    assert_eq!(fan_out(storage, &event, now).await.expect("fan out"), 1);
    assert_eq!(
        fan_out(storage, &event, now + Duration::minutes(5))
            .await
            .expect("fan out again"),
        0
    );
    let unsubscribed = WebhookEvent {
        event: "letter.accepted".into(),
        ..event.clone()
    };
    assert_eq!(
        fan_out(storage, &unsubscribed, now).await.expect("fan out"),
        0
    );
    let only_the_deleted_one = WebhookEvent {
        event: "letter.deposited".into(),
        ..event.clone()
    };
    assert_eq!(
        fan_out(storage, &only_the_deleted_one, now)
            .await
            .expect("fan out"),
        0
    );
    assert_eq!(
        deliveries(&app, notified["id"].as_str().expect("id"))
            .await
            .len(),
        1
    );
    assert_eq!(deliveries(&app, deleted_id).await.len(), 0);
}

async fn deleting_a_webhook_stops_its_pending_deliveries(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let (url, receiver) = Receiver::start(&[503, 503, 503]).await;
    let webhook = create_webhook(&app, &app.api_key, &url, &["letter.deposited"]).await;
    let id = webhook["id"].as_str().expect("id");
    let event = deposited(&app, "letter.deposited").await;
    let t0 = OffsetDateTime::now_utc();
    let storage = &app.service.storage;
    let client = app.service.outbound.clone();
    fan_out(storage, &event, t0).await.expect("fan out");
    assert_eq!(
        deliver_due(storage, &client, t0, 10)
            .await
            .expect("deliver"),
        1
    );

    let response = app
        .delete_as(&app.api_key, &format!("/v1/webhooks/{id}"))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "deleted");
    assert!(body["deleted_at"].is_string(), "{body}");

    assert_eq!(
        deliver_due(storage, &client, t0 + Duration::hours(1), 10)
            .await
            .expect("deliver"),
        0
    );
    assert_eq!(receiver.count(), 1);
    let log = deliveries(&app, id).await;
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(log[0]["last_error"], "webhook deleted");
    let listed: Value = app.get_json("/v1/webhooks").await;
    assert_eq!(listed["items"], json!([]));
    let again = app
        .delete_as(&app.api_key, &format!("/v1/webhooks/{id}"))
        .await;
    assert_eq!(again.status(), 404);
}

async fn failed_attempts_back_off_and_are_given_up_48_hours_after_the_first(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    // A port that was just free and is now closed: every attempt is refused at once.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hooks", closed.local_addr().expect("addr"));
    drop(closed);
    let webhook = create_webhook(&app, &app.api_key, &url, &["letter.expired"]).await;
    let id = webhook["id"].as_str().expect("id");
    let event = deposited(&app, "letter.expired").await;
    let t0 = OffsetDateTime::now_utc();
    let storage = &app.service.storage;
    let client = app.service.outbound.clone();
    fan_out(storage, &event, t0).await.expect("fan out");

    let mut now = t0;
    let mut gaps = Vec::new();
    for attempt in 1..=4 {
        assert_eq!(
            deliver_due(storage, &client, now, 10)
                .await
                .expect("deliver"),
            1
        );
        let log = deliveries(&app, id).await;
        assert_eq!(log[0]["attempts"], attempt);
        assert_eq!(log[0]["status"], "pending");
        assert!(log[0].get("last_status").is_none(), "{}", log[0]);
        // What a tenant reads: never the OS error ("Connection refused") nor the address.
        assert_eq!(log[0]["last_error"], "unreachable", "{}", log[0]);
        let next = micros_of(&log[0]["next_attempt_at"]);
        gaps.push(next - now);
        now = next;
    }
    // 30 s, 60 s, 120 s, 240 s, each ±10 %: every gap is longer than the one before.
    assert!(gaps.windows(2).all(|w| w[1] > w[0]), "{gaps:?}");
    assert!(
        gaps[3] >= Duration::seconds(216) && gaps[3] <= Duration::seconds(264),
        "{gaps:?}"
    );

    let late = t0 + Duration::hours(49);
    assert_eq!(
        deliver_due(storage, &client, late, 10)
            .await
            .expect("deliver"),
        1
    );
    let log = deliveries(&app, id).await;
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(log[0]["attempts"], 5);
    assert!(log[0]["failed_at"].is_string(), "{}", log[0]);
    assert!(log[0].get("next_attempt_at").is_none(), "{}", log[0]);
    assert_eq!(
        deliver_due(storage, &client, late + Duration::hours(1), 10)
            .await
            .expect("deliver"),
        0
    );
}

async fn every_lifecycle_event_reaches_the_receiver_through_the_outbox(engine: Engine) {
    let Some(sink) = crate::smtp::SmtpSink::start(&[], 0) else {
        return;
    };
    let smtp = sink.url();
    let Some(app) = crate::helpers::spawn_app_with(
        engine,
        Arc::new(recommande::core::clock::SystemClock),
        |s| s.mail.smtp_url = Some(smtp),
    )
    .await
    else {
        return;
    };
    let (url, receiver) = Receiver::start(&[]).await;
    create_webhook(&app, &app.api_key, &url, &recommande::app::webhook::EVENTS).await;
    // Deposit, notification, acceptance and download, each writing its webhook event into the
    // outbox in the transaction of the step itself.
    let letter_id = crate::bundle::accepted_letter(&app, &sink).await;
    let client = app.service.outbound.clone();
    for _ in 0..20 {
        app.service
            .lifecycle
            .run_due_jobs(50)
            .await
            .expect("outbox");
        let now = app.service.clock.now();
        recommande::app::webhook::deliver_due(&app.service.storage, &client, now, 50)
            .await
            .expect("deliveries");
        if receiver.count() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let evidence = app.evidence_of(&letter_id).await;
    let mut got: Vec<(String, String)> = receiver
        .received()
        .iter()
        .map(|r| {
            let signature = header(&r.headers, recommande::app::webhook::SIGNATURE_HEADER);
            assert!(
                verified_timestamp(SECRET, signature, &r.body).is_some(),
                "bad signature"
            );
            let body: Value = serde_json::from_slice(&r.body).expect("json");
            assert_eq!(body["letter_id"], letter_id.as_str());
            (
                body["event"].as_str().expect("event").to_string(),
                body["evidence_id"].as_str().expect("evidence").to_string(),
            )
        })
        .collect();
    got.sort();
    let mut expected: Vec<(String, String)> = evidence
        .iter()
        .map(|e| {
            let event = recommande::core::evidence::EvidenceEvent::parse(&e.event).expect("event");
            (
                recommande::app::lifecycle::webhook_event_name(event).to_string(),
                e.id.clone(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(
        got, expected,
        "one delivery per evidence record, each naming it"
    );
    assert_eq!(got.len(), 4);
}

async fn a_delivery_claim_given_back_at_shutdown_is_due_again_at_once(engine: Engine) {
    // Arrange: one delivery, claimed under a one-minute lease.
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let (url, _receiver) = Receiver::start(&[]).await;
    create_webhook(&app, &app.api_key, &url, &["letter.deposited"]).await;
    let event = deposited(&app, "letter.deposited").await;
    let t0 = OffsetDateTime::now_utc();
    let storage = &app.service.storage;
    fan_out(storage, &event, t0).await.expect("fan out");
    let (now, lease) = (unix_micros(t0), unix_micros(t0 + Duration::minutes(1)));
    let claimed = storage
        .claim_due_deliveries(now, lease, 10, 10, &[])
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let id = claimed[0].delivery.id.clone();
    assert!(
        storage
            .claim_due_deliveries(now, lease, 10, 10, &[])
            .await
            .expect("claim")
            .is_empty(),
        "leased"
    );

    // Act and assert: a release naming another lease (a newer claim) changes nothing …
    let other = storage
        .release_deliveries(&[(id.clone(), lease + 1)], now)
        .await
        .expect("release");
    assert_eq!(other, 0);
    // … the claim's own lease is given back: the delivery is due at once.
    let released = storage
        .release_deliveries(&[(id.clone(), lease)], now)
        .await
        .expect("release");
    assert_eq!(released, 1);
    let again = storage
        .claim_due_deliveries(now, lease, 10, 10, &[])
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery.id, id);
    assert_eq!(again[0].delivery.attempts, 0, "no attempt was recorded");
}

/// Checks deliveries with the `standardwebhooks` Python package (the reference library of
/// the Standard Webhooks specification), independently of the service: reads
/// `[{"secret", "raw", "headers", "body"}]` on stdin, prints one verdict per line.
const STANDARD_VERIFIER: &str = r#"
import json, sys
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
for case in json.load(sys.stdin):
    secret = case["secret"].encode() if case["raw"] else case["secret"]
    try:
        Webhook(secret).verify(case["body"], case["headers"], json_parse=False)
        print("valid")
    except WebhookVerificationError as e:
        print("invalid:", e)
"#;

fn standard_verdicts(cases: &Value) -> Option<Vec<String>> {
    use std::io::Write;
    let spawned = std::process::Command::new("python3")
        .args(["-c", STANDARD_VERIFIER])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = spawned.expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(cases.to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named 'standardwebhooks'") {
        assert!(
            std::env::var_os("CI").is_none(),
            "standardwebhooks is missing in CI"
        );
        return None;
    }
    assert!(out.status.success(), "{stderr}");
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
    )
}

async fn standard_webhooks_libraries_verify_every_delivery(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let (url, receiver) = Receiver::start(&[]).await;
    // One webhook with a secret the service makes (shown once), one with the client's own.
    let response = app
        .post_json(
            "/v1/webhooks",
            &json!({"url": url, "events": ["letter.deposited"]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let made: Value = response.json().await.expect("json");
    let generated = made["secret"]
        .as_str()
        .expect("the made secret")
        .to_string();
    assert!(generated.starts_with("whsec_"), "{generated}");
    assert_eq!(
        made["secret_hint"],
        format!("…{}", &generated[generated.len() - 4..])
    );
    let shown_again = app
        .get(&format!(
            "/v1/webhooks/{}",
            made["id"].as_str().expect("id")
        ))
        .await
        .text()
        .await
        .expect("text");
    assert!(!shown_again.contains(&generated), "{shown_again}");
    create_webhook(&app, &app.api_key, &url, &["letter.deposited"]).await;

    let event = deposited(&app, "letter.deposited").await;
    let now = OffsetDateTime::now_utc();
    let storage = &app.service.storage;
    assert_eq!(fan_out(storage, &event, now).await.expect("fan out"), 2);
    assert_eq!(
        deliver_due(storage, &app.service.outbound, now, 10)
            .await
            .expect("deliver"),
        2
    );
    let requests = receiver.received();
    assert_eq!(requests.len(), 2);
    let mut cases = Vec::new();
    for request in &requests {
        let headers = standard_headers(request);
        assert_eq!(
            header(&request.headers, "webhook-id"),
            header(&request.headers, "recommande-delivery")
        );
        assert_eq!(
            header(&request.headers, "webhook-timestamp"),
            now.unix_timestamp().to_string()
        );
        let body = String::from_utf8(request.body.clone()).expect("utf-8");
        // Which webhook this delivery is for: the generated secret verifies exactly one.
        for (secret, raw) in [(generated.as_str(), false), (SECRET, true)] {
            cases.push(json!({"secret": secret, "raw": raw, "headers": headers, "body": body}));
        }
        // A changed body verifies with neither.
        let forged = body.replace("letter.deposited", "letter.accepted");
        for (secret, raw) in [(generated.as_str(), false), (SECRET, true)] {
            cases.push(json!({"secret": secret, "raw": raw, "headers": headers, "body": forged}));
        }
    }
    let Some(verdicts) = standard_verdicts(&Value::Array(cases)) else {
        return;
    };
    assert_eq!(verdicts.len(), 8, "{verdicts:?}");
    for (i, chunk) in verdicts.chunks(4).enumerate() {
        let valid: Vec<bool> = chunk.iter().map(|v| v == "valid").collect();
        assert!(
            valid == [true, false, false, false] || valid == [false, true, false, false],
            "delivery {i}: {chunk:?}"
        );
    }
    // One delivery per webhook: each secret verified one of the two.
    assert_ne!(verdicts[0], verdicts[4], "{verdicts:?}");
}

async fn a_webhook_is_told_only_of_events_after_its_registration(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let (url, _receiver) = Receiver::start(&[]).await;
    // A letter deposited before the webhook exists, its event still in the outbox.
    let before = deposited(&app, "letter.deposited").await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    create_webhook(&app, &app.api_key, &url, &["letter.deposited"]).await;
    let after = deposited(&app, "letter.deposited").await;
    let now = OffsetDateTime::now_utc();
    let storage = &app.service.storage;
    assert_eq!(
        fan_out(storage, &before, now).await.expect("fan out"),
        0,
        "an event older than the webhook is not delivered to it"
    );
    assert_eq!(fan_out(storage, &after, now).await.expect("fan out"), 1);
}

/// The `v1=` values of a `Recommande-Signature` header that verify with `secret`, checked
/// with an HMAC computed here.
fn legacy_valid(secret: &str, header: &str, body: &[u8]) -> usize {
    let mut parts = header.split(',');
    let t = parts.next().and_then(|t| t.strip_prefix("t=")).expect("t=");
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    parts
        .filter_map(|p| p.strip_prefix("v1="))
        .filter_map(|mac| hex::decode(mac).ok())
        .filter(|mac| ring::hmac::verify(&key, &signed, mac).is_ok())
        .count()
}

async fn rotate(
    app: &TestApp,
    id: &str,
    body: Option<&Value>,
    key: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/v1/webhooks/{id}/rotate-secret")))
        .bearer_auth(&app.api_key);
    if let Some(body) = body {
        request = request.json(body);
    }
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.expect("POST")
}

async fn a_rotated_secret_signs_beside_the_previous_one_until_the_overlap_ends(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let (url, receiver) = Receiver::start(&[]).await;
    let made: Value = app
        .post_json(
            "/v1/webhooks",
            &json!({"url": url, "events": ["letter.deposited"]}),
        )
        .await
        .json()
        .await
        .expect("json");
    let id = made["id"].as_str().expect("id").to_string();
    let first = made["secret"].as_str().expect("made secret").to_string();

    // Bad input is listed at once; nothing rotates.
    let refused = rotate(
        &app,
        &id,
        Some(&json!({"secret": "short", "overlap_seconds": -1, "colour": "blue"})),
        None,
    )
    .await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.expect("json");
    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["colour", "overlap_seconds", "secret"], "{problem}");
    let missing = rotate(&app, "0192f5d2-7c3a-7b1e-9a4f-3c2d1e0f9a8c", None, None).await;
    assert_eq!(missing.status(), 404);
    let text = app
        .client
        .post(app.url(&format!("/v1/webhooks/{id}/rotate-secret")))
        .bearer_auth(&app.api_key)
        .header("Content-Type", "text/plain")
        .body("secret")
        .send()
        .await
        .expect("POST");
    assert_eq!(text.status(), 415);

    // An empty body: a secret made by the service, the default overlap of a day. A retry
    // with the same key answers the same secret and rotates nothing more.
    let before = OffsetDateTime::now_utc();
    let response = rotate(&app, &id, None, Some("rotate-1")).await;
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.expect("json");
    let second = rotated["secret"].as_str().expect("new secret").to_string();
    assert!(second.starts_with("whsec_") && second != first);
    assert_eq!(
        rotated["secret_hint"],
        format!("…{}", &second[second.len() - 4..])
    );
    let expires = micros_of(&rotated["previous_secret_expires_at"]);
    assert!(expires >= before + Duration::hours(24) && expires <= before + Duration::hours(25));
    let replay: Value = rotate(&app, &id, None, Some("rotate-1"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(replay["secret"], second.as_str());
    let shown = app.get_json(&format!("/v1/webhooks/{id}")).await;
    assert!(shown.get("secret").is_none());
    assert_eq!(
        shown["previous_secret_expires_at"],
        rotated["previous_secret_expires_at"]
    );

    // During the overlap each delivery carries both signatures: a receiver holding either
    // secret verifies it.
    let storage = &app.service.storage;
    let now = OffsetDateTime::now_utc();
    let event = deposited(&app, "letter.deposited").await;
    assert_eq!(fan_out(storage, &event, now).await.expect("fan out"), 1);
    assert_eq!(
        deliver_due(storage, &app.service.outbound, now, 10)
            .await
            .expect("deliver"),
        1
    );
    // Then a rotation to the client's own secret with no overlap: the next delivery is
    // signed with it alone.
    let own = "the-client-own-secret-after-rotation";
    let response = rotate(
        &app,
        &id,
        Some(&json!({"secret": own, "overlap_seconds": 0})),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.expect("json");
    assert!(
        rotated.get("secret").is_none(),
        "the client's secret is not echoed"
    );
    assert!(rotated.get("previous_secret_expires_at").is_none());
    let later = OffsetDateTime::now_utc() + Duration::seconds(1);
    let event = deposited(&app, "letter.deposited").await;
    assert_eq!(fan_out(storage, &event, later).await.expect("fan out"), 1);
    assert_eq!(
        deliver_due(storage, &app.service.outbound, later, 10)
            .await
            .expect("deliver"),
        1
    );

    let requests = receiver.received();
    assert_eq!(requests.len(), 2);
    let mut cases = Vec::new();
    for request in &requests {
        let headers = standard_headers(request);
        let body = String::from_utf8(request.body.clone()).expect("utf-8");
        for (secret, raw) in [
            (first.as_str(), false),
            (second.as_str(), false),
            (own, true),
        ] {
            cases.push(json!({"secret": secret, "raw": raw, "headers": headers, "body": body}));
        }
    }
    let signatures = header(&requests[0].headers, "webhook-signature");
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    let legacy = header(&requests[0].headers, "recommande-signature");
    assert_eq!(
        legacy_valid(&second, legacy, &requests[0].body),
        1,
        "{legacy}"
    );
    assert_eq!(
        legacy_valid(&first, legacy, &requests[0].body),
        1,
        "{legacy}"
    );
    let legacy = header(&requests[1].headers, "recommande-signature");
    assert_eq!(legacy_valid(own, legacy, &requests[1].body), 1, "{legacy}");
    assert_eq!(
        legacy_valid(&second, legacy, &requests[1].body),
        0,
        "{legacy}"
    );
    let Some(verdicts) = standard_verdicts(&Value::Array(cases)) else {
        return;
    };
    let valid: Vec<bool> = verdicts.iter().map(|v| v == "valid").collect();
    assert_eq!(
        valid,
        [true, true, false, false, false, true],
        "overlap: new and previous; after: the client's own only ({verdicts:?})"
    );
}
