//! Notifications in chunks (`[workers] dispatch_chunk`) through a real SMTP relay: each
//! letter of a chunk keeps its own proof of dispatch over the exact bytes the relay
//! received, its own webhook delivery and reminders, and a refused or deferred message
//! takes its own path without holding back the others.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Engine, TestApp, openssl_cms_verify, openssl_ts_verify, spawn_app_with};
use crate::smtp::SmtpSink;

crate::on_both_engines!(
    a_batch_is_notified_in_chunks_with_one_proof_of_dispatch_and_one_webhook_per_letter,
    in_a_chunk_a_refused_and_a_deferred_message_take_their_own_path,
);

/// The service sending to `sink`, in chunks of `chunk` notifications.
async fn app_with(engine: Engine, sink: &SmtpSink, chunk: usize) -> Option<TestApp> {
    let url = sink.url();
    spawn_app_with(
        engine,
        Arc::new(recommande::core::clock::SystemClock),
        move |s| {
            s.mail.smtp_url = Some(url);
            s.workers.dispatch_chunk = chunk;
        },
    )
    .await
}

/// Deposits a batch of `emails`, one letter each, and waits until it is completed.
async fn deposit_batch(app: &TestApp, emails: &[String]) -> Vec<Value> {
    let document = app.upload_pdf().await;
    let letters: Vec<Value> = emails
        .iter()
        .enumerate()
        .map(|(i, email)| {
            json!({"recipient": {"name": format!("Débiteur {i}"), "email": email, "kind": "professional"},
                   "reference": format!("CHUNK-{i}")})
        })
        .collect();
    let body = json!({
        "defaults": {"sender": {"name": "Cabinet Recouvr", "email": "envoi@recouvr.fr"}, "documents": [document]},
        "letters": letters,
    });
    let response = app
        .post_batch("application/json", "", body.to_string().into_bytes(), None)
        .await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.expect("json");
    let view = app.wait_batch(accepted["id"].as_str().expect("id")).await;
    assert_eq!(view["deposited"], emails.len(), "{view}");
    let page: Value = app.get_json("/v1/letters?limit=500").await;
    page["items"].as_array().expect("items").clone()
}

/// Runs outbox passes until one claims nothing.
async fn run_outbox(app: &TestApp) {
    for _ in 0..100 {
        if app.service.lifecycle.run_due_jobs(64).await.expect("jobs") == 0 {
            return;
        }
    }
    panic!("the outbox never emptied");
}

fn header(raw: &[u8], name: &str) -> String {
    let text = String::from_utf8_lossy(raw);
    let prefix = format!("{}:", name.to_ascii_lowercase());
    text.lines()
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| {
            l[prefix.len()..]
                .trim()
                .trim_matches(['<', '>'])
                .to_string()
        })
        .unwrap_or_default()
}

/// The events of a letter and its last record, parsed.
async fn evidence(app: &TestApp, id: &str) -> (Vec<String>, Value) {
    let rows = app.evidence_of(id).await;
    let events = rows.iter().map(|r| r.event.clone()).collect();
    let last = serde_json::from_slice(&rows.last().expect("evidence").record).expect("record");
    (events, last)
}

async fn a_batch_is_notified_in_chunks_with_one_proof_of_dispatch_and_one_webhook_per_letter(
    engine: Engine,
) {
    let Some(sink) = SmtpSink::start(&[], 0) else {
        return;
    };
    let Some(app) = app_with(engine, &sink, 25).await else {
        return;
    };
    let webhook: Value = app
        .post_json(
            "/v1/webhooks",
            &json!({"url": "https://hooks.example.fr/lre", "secret": "un-secret-assez-long-pour-signer",
                    "events": ["letter.notified"]}),
        )
        .await
        .json()
        .await
        .expect("json");
    let emails: Vec<String> = (0..60).map(|i| format!("debiteur{i}@exemple.fr")).collect();
    let letters = deposit_batch(&app, &emails).await;

    // Act: passes of 64 claims, so chunks of 25, 25 and 14 notifications.
    run_outbox(&app).await;

    // Assert: 60 messages, one per recipient, each covered by its letter's own proof of
    // dispatch naming its Message-ID and the SHA-256 of the very bytes the relay stored.
    let raw = sink.raw_messages();
    assert_eq!(raw.len(), 60);
    let by_id: BTreeMap<String, &Vec<u8>> =
        raw.iter().map(|m| (header(m, "Message-ID"), m)).collect();
    assert_eq!(by_id.len(), 60, "sixty distinct messages");
    let mut notified_evidence = BTreeMap::new();
    for letter in &letters {
        let id = letter["id"].as_str().expect("id");
        let (events, record) = evidence(&app, id).await;
        assert_eq!(
            events,
            ["SubmissionAcceptance", "NotificationForAcceptance"],
            "{id}"
        );
        let notification = &record["details"]["notification"];
        let message_id = notification["message_id"].as_str().expect("message id");
        assert!(message_id.contains(id), "{message_id} names {id}");
        let bytes = by_id.get(message_id).expect("the relay has the message");
        assert_eq!(
            notification["message_sha256"].as_str().expect("sha"),
            hex::encode(Sha256::digest(bytes)),
            "{id}"
        );
        assert_eq!(notification["attempt"], 1);
        assert_eq!(notification["transport"], "smtp");
        assert_eq!(record["letter_id"], id);
        let view: Value = app.get_json(&format!("/v1/letters/{id}")).await;
        assert_eq!(view["state"], "notified", "{view}");
        assert!(view["deadline"].is_string(), "{view}");
        notified_evidence.insert(
            id.to_string(),
            record["evidence_id"].as_str().expect("eid").to_string(),
        );
        // Its reminders (days 5 and 12), and nothing else left to do.
        let pending = app.service.storage.pending_jobs(id).await.expect("jobs");
        let kinds: Vec<&str> = pending.iter().map(|j| j.kind.as_str()).collect();
        assert_eq!(kinds, ["remind", "remind"], "{id}");
    }
    // One proof of dispatch, sealed on a worker thread, checked with openssl alone.
    let id = letters[37]["id"].as_str().expect("id");
    let dir = tempfile::tempdir().expect("dir");
    let files = app
        .download_evidence(id, &notified_evidence[id], dir.path())
        .await;
    let (ok, out) = openssl_cms_verify(&files.json, &files.p7s, &files.roots);
    assert!(ok, "{out}");
    let (ok, out) = openssl_ts_verify(&files.json, &files.tsr, &files.roots);
    assert!(ok, "{out}");
    // One `letter.notified` delivery per letter, naming that letter's proof of dispatch.
    let page: Value = app
        .get_json(&format!(
            "/v1/webhooks/{}/deliveries?limit=500",
            webhook["id"].as_str().expect("webhook id")
        ))
        .await;
    let deliveries = page["items"].as_array().expect("items");
    assert_eq!(deliveries.len(), 60, "{page}");
    let announced: BTreeMap<String, String> = deliveries
        .iter()
        .map(|d| {
            assert_eq!(d["event"], "letter.notified");
            (
                d["letter_id"].as_str().expect("letter").to_string(),
                d["evidence_id"].as_str().expect("evidence").to_string(),
            )
        })
        .collect();
    assert_eq!(announced, notified_evidence);
}

async fn in_a_chunk_a_refused_and_a_deferred_message_take_their_own_path(engine: Engine) {
    // A relay refusing one address for good (550) and deferring the first recipient it sees
    // (451); the chunk's other letters are notified in the same pass.
    let Some(sink) = SmtpSink::start(&["refuse"], 1) else {
        return;
    };
    let Some(app) = app_with(engine, &sink, 500).await else {
        return;
    };
    let mut emails: Vec<String> = (0..8).map(|i| format!("debiteur{i}@exemple.fr")).collect();
    emails[3] = "refuse@exemple.fr".into();
    let letters = deposit_batch(&app, &emails).await;

    app.service
        .lifecycle
        .run_due_jobs(64)
        .await
        .expect("expand");
    app.service
        .lifecycle
        .run_due_jobs(64)
        .await
        .expect("notify");

    let mut states: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for letter in &letters {
        let id = letter["id"].as_str().expect("id");
        let view: Value = app.get_json(&format!("/v1/letters/{id}")).await;
        let state = view["state"].as_str().expect("state").to_string();
        let email = letter["recipient"]["email"]
            .as_str()
            .expect("email")
            .to_string();
        let (events, record) = evidence(&app, id).await;
        match state.as_str() {
            "notification_failed" => {
                assert_eq!(email, "refuse@exemple.fr");
                assert_eq!(
                    events,
                    ["SubmissionAcceptance", "NotificationForAcceptanceFailure"]
                );
                assert_eq!(record["details"]["failure"]["source"], "smtp", "{record}");
                assert!(record["details"]["failure"]["message_sha256"].is_string());
            }
            "deposited" => {
                // Deferred: no evidence yet, another attempt scheduled with the reason.
                assert_eq!(events, ["SubmissionAcceptance"]);
                let pending = app.service.storage.pending_jobs(id).await.expect("jobs");
                assert_eq!(pending.len(), 1, "{pending:?}");
                assert_eq!(pending[0].kind, "notify");
            }
            "notified" => {
                assert_eq!(
                    events,
                    ["SubmissionAcceptance", "NotificationForAcceptance"]
                );
            }
            other => panic!("unexpected state {other}"),
        }
        states.entry(state).or_default().insert(email);
    }
    assert_eq!(states["notification_failed"].len(), 1, "{states:?}");
    assert_eq!(states["deposited"].len(), 1, "{states:?}");
    assert_eq!(states["notified"].len(), 6, "{states:?}");
}
