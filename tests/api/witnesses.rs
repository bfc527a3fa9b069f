//! Outside witnesses of the transparency log: each new signed tree head reaches a real SMTP
//! server (aiosmtpd) as a mail whose attachments openssl verifies, and a real HTTP receiver
//! as a signed POST; a failing receiver is retried without duplicates, heads arrive in order.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use recommande::config::{SecretText, WitnessSettings, WitnessWebhook};
use recommande::core::clock::SystemClock;
use recommande::core::log::PublishedTreeHead;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::helpers::{Engine as Db, openssl_cms_verify, openssl_ts_verify, spawn_app_with};
use crate::smtp::{SmtpSink, body_text};

crate::on_both_engines!(
    a_witness_mailbox_receives_each_head_with_files_that_openssl_and_verify_consistency_accept,
    a_webhook_witness_gets_signed_heads_in_order_and_a_failure_is_retried_without_duplicates,
    a_pass_cut_at_shutdown_gives_its_witness_claim_back,
);

const WITNESS: &str = "greffe@tribunal.example.fr";
const SECRET: &str = "witness-secret-0123456789";

/// The parts of a `multipart/mixed` mail: (headers, body) of each.
fn mime_parts(raw: &str) -> Vec<(String, String)> {
    let lower = raw.to_ascii_lowercase();
    let at = lower.find("boundary=").expect("a multipart mail") + "boundary=".len();
    let boundary: String = raw[at..]
        .trim_start_matches('"')
        .chars()
        .take_while(|c| *c != '"' && *c != '\r' && *c != ';')
        .collect();
    let delimiter = format!("--{boundary}");
    raw.split(delimiter.as_str())
        .skip(1)
        .filter(|p| !p.starts_with("--"))
        .map(|p| {
            let p = p.trim_start_matches("\r\n");
            let (h, b) = p.split_once("\r\n\r\n").expect("part headers");
            (h.to_string(), b.to_string())
        })
        .collect()
}

/// The attachments of a mail: file name → decoded bytes.
fn attachments(raw: &str) -> Vec<(String, Vec<u8>)> {
    mime_parts(raw)
        .into_iter()
        .filter_map(|(headers, body)| {
            let at = headers.find("filename=\"")? + "filename=\"".len();
            let name: String = headers[at..].chars().take_while(|c| *c != '"').collect();
            assert!(
                headers
                    .to_ascii_lowercase()
                    .contains("content-transfer-encoding: base64"),
                "{headers}"
            );
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .expect("base64 attachment");
            Some((name, bytes))
        })
        .collect()
}

fn file<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &files
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("attachment {name} missing"))
        .1
}

async fn a_witness_mailbox_receives_each_head_with_files_that_openssl_and_verify_consistency_accept(
    engine: Db,
) {
    let Some(sink) = SmtpSink::start(&[], 0) else {
        return;
    };
    let smtp_url = sink.url();
    let Some(app) = spawn_app_with(engine, Arc::new(SystemClock), |s| {
        s.mail.smtp_url = Some(smtp_url);
        s.log.witnesses = WitnessSettings {
            emails: vec![WITNESS.into()],
            webhooks: Vec::new(),
        };
    })
    .await
    else {
        return;
    };
    let witnesses = &app.service.witnesses;
    let dir = tempfile::tempdir().expect("dir");
    let roots = dir.path().join("roots.pem");
    std::fs::write(&roots, app.service.anchors_pem.as_bytes()).expect("roots");

    let mut kept = Vec::new();
    for round in 1..=2usize {
        app.deposit().await;
        let head = app.service.log.issue_head().await.expect("head");
        let size = head.tree_size;
        let attempted = witnesses
            .deliver_due(OffsetDateTime::now_utc(), 10)
            .await
            .expect("deliver");
        assert_eq!(attempted, 1);
        let mails = sink.wait_for(round).await;
        assert_eq!(mails.len(), round, "one mail per head");
        let raw = &mails[round - 1];
        assert!(raw.contains(&format!("To: {WITNESS}")), "{raw}");

        let parts = mime_parts(raw);
        let text = body_text(&format!("{}\r\n\r\n{}", parts[0].0, parts[0].1));
        assert!(text.contains("tête d'arbre signée"), "{text}");
        assert!(text.contains("new signed tree head"), "{text}");
        assert!(
            text.contains(&format!(
                "recommande log verify-consistency tree-head-OLD.json tree-head-{size}.json"
            )),
            "{text}"
        );

        let files = attachments(raw);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                format!("head-{size}.json"),
                format!("head-{size}.p7s"),
                format!("head-{size}.tsr"),
                format!("tree-head-{size}.json"),
            ]
        );
        assert_eq!(file(&files, &format!("head-{size}.json")), head.head);
        let write = |name: String| {
            let path = dir.path().join(&name);
            std::fs::write(&path, file(&files, &name)).expect("write");
            path
        };
        let sealed = write(format!("head-{size}.json"));
        let seal = write(format!("head-{size}.p7s"));
        let token = write(format!("head-{size}.tsr"));
        let (ok, out) = openssl_cms_verify(&sealed, &seal, &roots);
        assert!(ok, "openssl cms -verify: {out}");
        let (ok, out) = openssl_ts_verify(&sealed, &token, &roots);
        assert!(ok, "openssl ts -verify: {out}");
        let published = write(format!("tree-head-{size}.json"));
        let parsed: PublishedTreeHead =
            serde_json::from_slice(&std::fs::read(&published).expect("read")).expect("json");
        parsed
            .verify(&app.service.anchors)
            .expect("the published head verifies");
        kept.push(published);

        let log = app
            .service
            .storage
            .witness_deliveries(&format!("mailto:{WITNESS}"))
            .await
            .expect("log");
        assert_eq!(log.len(), round);
        let last = &log[round - 1];
        assert!(last.delivered_at.is_some(), "{last:?}");
        assert!(
            last.last_reply
                .as_deref()
                .is_some_and(|r| r.starts_with("250")),
            "{last:?}"
        );
    }

    // Nothing is sent twice.
    let attempted = witnesses
        .deliver_due(OffsetDateTime::now_utc() + Duration::hours(1), 10)
        .await
        .expect("deliver");
    assert_eq!(attempted, 0);
    assert_eq!(sink.messages().len(), 2);

    // The command given in the mail, run as a clerk would, accepts the two kept heads.
    let args: Vec<String> = vec![
        "log".into(),
        "verify-consistency".into(),
        kept[0].display().to_string(),
        kept[1].display().to_string(),
        "--trust".into(),
        roots.display().to_string(),
        "--server".into(),
        app.address.clone(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_recommande"))
            .args(&args)
            .output()
            .expect("run the CLI")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("CONSISTENT"), "{stdout}");
}

/// A request as received: headers and body.
type Request = (HeaderMap, Vec<u8>);

/// A receiver on 127.0.0.1:0 answering the scripted statuses in turn, then 200.
#[derive(Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<Vec<Request>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    receiver
        .requests
        .lock()
        .expect("lock")
        .push((headers, body.to_vec()));
    let status = receiver
        .script
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(200);
    StatusCode::from_u16(status).expect("status")
}

/// Checks `t=…,v1=…` with an HMAC-SHA256 computed here, independently of the service.
fn signature_is_valid(header: &str, body: &[u8]) -> bool {
    let Some((t, v1)) = header.split_once(',') else {
        return false;
    };
    let (Some(t), Some(mac)) = (t.strip_prefix("t="), v1.strip_prefix("v1=")) else {
        return false;
    };
    let Ok(mac) = hex::decode(mac) else {
        return false;
    };
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    ring::hmac::verify(&key, &signed, &mac).is_ok()
}

async fn a_webhook_witness_gets_signed_heads_in_order_and_a_failure_is_retried_without_duplicates(
    engine: Db,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/witness", listener.local_addr().expect("addr"));
    let receiver = Receiver {
        script: Arc::new(Mutex::new(VecDeque::from([503]))),
        ..Receiver::default()
    };
    let router = axum::Router::new()
        .route("/witness", axum::routing::post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("receiver");
    });
    let witness_url = url.clone();
    let Some(app) = spawn_app_with(engine, Arc::new(SystemClock), |s| {
        s.log.witnesses = WitnessSettings {
            emails: Vec::new(),
            webhooks: vec![WitnessWebhook {
                url: witness_url,
                secret: SecretText::new(SECRET.into()),
            }],
        };
    })
    .await
    else {
        return;
    };
    let witnesses = &app.service.witnesses;
    let count = || receiver.requests.lock().expect("lock").len();

    // Two heads, queued with their storage.
    app.deposit().await;
    let first = app.service.log.issue_head().await.expect("head 1");
    app.deposit().await;
    let second = app.service.log.issue_head().await.expect("head 2");
    assert!(first.tree_size < second.tree_size);
    let now = OffsetDateTime::now_utc();

    // Another instance holding the lease on the first head: nothing is sent meanwhile,
    // and the second head waits behind the first.
    let leased = app
        .service
        .storage
        .claim_due_witness_deliveries(
            recommande::core::clock::unix_micros(now),
            recommande::core::clock::unix_micros(now + Duration::minutes(5)),
            10,
        )
        .await
        .expect("claim");
    assert_eq!(leased.len(), 1, "one head per witness at a time");
    assert_eq!(leased[0].delivery.tree_size, first.tree_size);
    assert_eq!(witnesses.deliver_due(now, 10).await.expect("pass"), 0);
    assert_eq!(count(), 0);

    // The lease ends: the first head is attempted and the receiver fails (503).
    let later = now + Duration::minutes(6);
    assert_eq!(witnesses.deliver_due(later, 10).await.expect("pass"), 1);
    assert_eq!(count(), 1);
    // Before the backoff is over nothing is sent, not even the second head.
    assert_eq!(witnesses.deliver_due(later, 10).await.expect("pass"), 0);
    assert_eq!(count(), 1);
    // After it: the first head again (delivered), then the second.
    let retry = later + Duration::minutes(1);
    assert_eq!(witnesses.deliver_due(retry, 10).await.expect("pass"), 1);
    assert_eq!(witnesses.deliver_due(retry, 10).await.expect("pass"), 1);
    assert_eq!(
        witnesses
            .deliver_due(retry + Duration::hours(1), 10)
            .await
            .expect("pass"),
        0
    );

    let requests = receiver.requests.lock().expect("lock").clone();
    let sizes: Vec<i64> = requests
        .iter()
        .map(|(headers, body)| {
            let signature = headers
                .get("Recommande-Signature")
                .and_then(|v| v.to_str().ok())
                .expect("signature header");
            assert!(signature_is_valid(signature, body), "bad HMAC");
            assert_eq!(
                headers
                    .get("Recommande-Event")
                    .and_then(|v| v.to_str().ok()),
                Some("log.tree_head")
            );
            let payload: Value = serde_json::from_slice(body).expect("json");
            let b64 = base64::engine::general_purpose::STANDARD;
            let head = b64
                .decode(payload["head_base64"].as_str().expect("head"))
                .expect("base64");
            let sealed: Value = serde_json::from_slice(&head).expect("head json");
            assert_eq!(payload["tree_head"], sealed);
            assert!(
                payload["seal_base64"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty())
            );
            assert!(
                payload["token_base64"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty())
            );
            let published: PublishedTreeHead =
                serde_json::from_value(payload["published"].clone()).expect("published");
            let (verified, _) = published
                .verify(&app.service.anchors)
                .expect("the pushed head verifies");
            verified.tree_size as i64
        })
        .collect();
    assert_eq!(
        sizes,
        [first.tree_size, first.tree_size, second.tree_size],
        "the failed head is retried once, then the next one follows"
    );
    // Both attempts of the first head carry the same delivery id (receivers de-duplicate).
    let id = |i: usize| requests[i].0.get("Recommande-Delivery").cloned();
    assert_eq!(id(0), id(1));
    assert_ne!(id(1), id(2));

    let log = app
        .service
        .storage
        .witness_deliveries(&url)
        .await
        .expect("log");
    let summary: Vec<(i64, i64, Option<i64>, bool)> = log
        .iter()
        .map(|d| {
            (
                d.tree_size,
                d.attempts,
                d.last_status,
                d.delivered_at.is_some(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (first.tree_size, 2, Some(200), true),
            (second.tree_size, 1, Some(200), true)
        ]
    );
}

async fn a_pass_cut_at_shutdown_gives_its_witness_claim_back(engine: Db) {
    // Arrange: a webhook witness that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/witness", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let Some(app) = spawn_app_with(engine, Arc::new(SystemClock), |s| {
        s.log.witnesses = WitnessSettings {
            emails: Vec::new(),
            webhooks: vec![WitnessWebhook {
                url,
                secret: SecretText::new(SECRET.into()),
            }],
        };
    })
    .await
    else {
        return;
    };
    let witnesses = &app.service.witnesses;
    let storage = &app.service.storage;
    app.deposit().await;
    app.service.log.issue_head().await.expect("head");
    let now = OffsetDateTime::now_utc();
    let at = recommande::core::clock::unix_micros(now);
    let lease = recommande::core::clock::unix_micros(now + Duration::minutes(5));
    assert_eq!(
        witnesses.release_claims(now).await.expect("release"),
        0,
        "nothing held yet"
    );

    // Act: the pass is cut while its attempt waits for the witness, as at the end of the
    // shutdown grace period.
    let cut = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        witnesses.deliver_due(now, 10),
    )
    .await;
    assert!(cut.is_err(), "the attempt was still waiting");
    assert!(
        storage
            .claim_due_witness_deliveries(at, lease, 10)
            .await
            .expect("claim")
            .is_empty(),
        "the cut pass still holds its claim"
    );

    // Assert: given back, the delivery is due at once, its attempt not counted.
    assert_eq!(witnesses.release_claims(now).await.expect("release"), 1);
    let again = storage
        .claim_due_witness_deliveries(at, lease, 10)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery.attempts, 0);
    assert_eq!(witnesses.release_claims(now).await.expect("release"), 0);
}
