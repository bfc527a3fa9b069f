//! The lifecycle against a real SMTP server: notification without the sender, identification
//! by emailed code, acceptance, refusal, handover, non-claim, failures, bounces, crashes.

use crate::helpers::header_str;
use std::sync::Arc;

use recommande::core::clock::{Clock, SystemClock, TestClock};
use recommande::core::trust::TrustAnchors;
use recommande::core::verify::{ChainExpectation, verify_evidence};
use serde_json::{Value, json};

use crate::helpers::{
    Engine, TestApp, fresh_database, openssl_cms_verify, openssl_ts_verify, settings_for,
    spawn_app, spawn_app_with, start_on,
};
use crate::proofs::{proof_status, proof_text};
use crate::smtp::{SmtpSink, body_text, code, link_token};

crate::on_both_engines!(
    a_letter_is_notified_without_its_sender_then_accepted_downloaded_and_proven,
    a_refusal_is_final_and_reveals_the_sender,
    an_unclaimed_letter_expires_after_the_fifteenth_day,
    a_permanent_smtp_refusal_records_a_notification_failure,
    a_temporary_smtp_failure_is_retried_and_proven_once,
    five_wrong_codes_lock_identification_for_fifteen_minutes,
    a_bounce_turns_a_notified_letter_into_a_notification_failure,
    a_crash_between_deposit_and_notification_loses_nothing,
    the_embedded_default_writes_an_eml_file_without_the_sender,
    a_notification_job_keeps_one_sealed_message_for_the_claim_that_built_it,
);

async fn app_with_smtp(engine: Engine, sink: &SmtpSink, clock: Arc<dyn Clock>) -> Option<TestApp> {
    let url = sink.url();
    spawn_app_with(engine, clock, |s| {
        s.mail.smtp_url = Some(url);
        s.mail.bounce_token = Some("b".repeat(40));
    })
    .await
}

async fn deposit_and_notify(
    app: &TestApp,
    sink: &SmtpSink,
    already: usize,
) -> (Value, String, String) {
    let letter = app.deposit().await;
    let ran = app.service.lifecycle.run_due_jobs(10).await.expect("jobs");
    assert!(ran >= 1);
    let mails = sink.wait_for(already + 1).await;
    let raw = mails[already].clone();
    (letter, raw.clone(), body_text(&raw))
}

async fn recipient(app: &TestApp, token: &str) -> Value {
    app.get_anon(&format!("/v1/recipient/{token}"))
        .await
        .json()
        .await
        .expect("json")
}

/// Requests a code, reads it from the mail, opens a session; returns the bearer token.
async fn identify(app: &TestApp, sink: &SmtpSink, token: &str) -> String {
    let before = sink.messages().len();
    let response = app.recipient_post(token, "otp").await;
    assert_eq!(
        response.status(),
        202,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let mails = sink.wait_for(before + 1).await;
    let otp = code(&body_text(&mails[before]));
    let response = app
        .post_json_anon(
            &format!("/v1/recipient/{token}/session"),
            &json!({ "code": otp }),
        )
        .await;
    assert_eq!(response.status(), 201);
    assert!(
        header_str(&response, "set-cookie")
            .is_some_and(|c| c.contains("HttpOnly") && c.contains("SameSite=Strict"))
    );
    let body: Value = response.json().await.expect("json");
    body["session"].as_str().expect("session").to_string()
}

async fn post_with_session(app: &TestApp, path: &str, session: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(session)
        .header("user-agent", "integration-test/1.0")
        .send()
        .await
        .expect("POST")
}

/// The recipient's signed proof of their decision: refused without a session, a PAdES-signed
/// PDF with it, whose text names the proof (`title`).
async fn recipient_receipt(app: &TestApp, token: &str, session: &str, title: &str) -> Vec<u8> {
    let path = format!("/v1/recipient/{token}/receipt.pdf");
    assert_eq!(app.get_as("not-a-session", &path).await.status(), 401);
    let response = app.get_as(session, &path).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header_str(&response, "content-type"),
        Some("application/pdf")
    );
    let pdf = response.bytes().await.expect("pdf").to_vec();
    let signatures = recommande::core::pades::signatures(&pdf).expect("signatures");
    assert_eq!(signatures.len(), 1, "a signed PDF");
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("receipt.pdf");
    std::fs::write(&file, &pdf).expect("write");
    if let Some((ok, log)) = crate::proofs::poppler("pdfsig", &[file.to_str().expect("path")]) {
        assert!(ok && log.contains("Signature is Valid"), "{log}");
    }
    if let Some(text) = crate::proofs::text_of(&pdf, dir.path(), "text") {
        assert!(text.contains(title), "{text}");
    }
    pdf
}

async fn events(app: &TestApp, letter_id: &str) -> Vec<String> {
    let list: Value = app
        .get_json(&format!("/v1/letters/{letter_id}/evidence"))
        .await;
    list["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .map(|e| e["event"].as_str().expect("event").to_string())
        .collect()
}

/// Verifies every record of the letter with our verifier (chain included) and with openssl.
async fn verify_chain(app: &TestApp, letter_id: &str) {
    let rows = app.evidence_of(letter_id).await;
    let anchors = TrustAnchors::from_pem(app.service.anchors_pem.as_bytes()).expect("anchors");
    let dir = tempfile::tempdir().expect("dir");
    let roots = dir.path().join("roots.pem");
    std::fs::write(&roots, app.service.anchors_pem.as_bytes()).expect("roots");
    let mut previous: Option<String> = None;
    for row in rows {
        let chain = match &previous {
            None => ChainExpectation::First,
            Some(p) => ChainExpectation::After(p),
        };
        let report = verify_evidence(
            &row.record,
            &row.seal,
            &row.timestamp_token,
            &anchors,
            chain,
        );
        assert!(report.is_valid(), "{}: {:#?}", row.event, report.checks);
        let json = dir.path().join(format!("{}.json", row.id));
        let p7s = dir.path().join(format!("{}.p7s", row.id));
        let tsr = dir.path().join(format!("{}.tsr", row.id));
        std::fs::write(&json, &row.record).expect("write");
        std::fs::write(&p7s, &row.seal).expect("write");
        std::fs::write(&tsr, &row.timestamp_token).expect("write");
        let (ok, out) = openssl_ts_verify(&json, &tsr, &roots);
        assert!(ok, "{}: {out}", row.event);
        let (ok, out) = openssl_cms_verify(&json, &p7s, &roots);
        assert!(ok, "{}: {out}", row.event);
        previous = Some(row.record_sha256.clone());
    }
}

fn assert_no_sender(raw: &str, body: &str) {
    for needle in [
        "Cabinet Recouvr",
        "Recouvr SAS",
        "envoi@recouvr.fr",
        "recouvr",
    ] {
        assert!(
            !raw.to_lowercase().contains(&needle.to_lowercase()),
            "{needle:?} in the raw mail:\n{raw}"
        );
        assert!(
            !body.to_lowercase().contains(&needle.to_lowercase()),
            "{needle:?} in the body:\n{body}"
        );
    }
}

async fn a_letter_is_notified_without_its_sender_then_accepted_downloaded_and_proven(
    engine: Engine,
) {
    let Some(sink) = SmtpSink::start(&[], 0) else {
        return;
    };
    let Some(app) = app_with_smtp(engine, &sink, Arc::new(SystemClock)).await else {
        return;
    };
    let (letter, raw, body) = deposit_and_notify(&app, &sink, 0).await;
    let letter_id = letter["id"].as_str().expect("id");
    assert_no_sender(&raw, &body);
    assert!(raw.contains("Subject: "), "{raw}");
    assert!(body.contains(letter_id), "the mail gives the letter id");
    assert!(
        body.contains("heure de Paris") && body.contains("Paris time"),
        "{body}"
    );
    let envelope: Value = serde_json::from_slice(
        &std::fs::read(sink.maildir.path().join("000001.json")).expect("envelope"),
    )
    .expect("json");
    assert_eq!(envelope["rcpt_tos"][0], "compta@debitrice.fr");
    assert_eq!(
        envelope["mail_from"],
        format!("bounces+{letter_id}@recommande.localhost")
    );

    // The evidence hashes the exact bytes the relay received.
    use sha2::Digest;
    let rows = app.evidence_of(letter_id).await;
    let notification: Value = serde_json::from_slice(&rows[1].record).expect("record");
    assert_eq!(notification["event"], "NotificationForAcceptance");
    assert_eq!(
        notification["details"]["notification"]["message_sha256"],
        hex::encode(sha2::Sha256::digest(raw.as_bytes()))
    );
    assert!(
        notification["details"]["notification"]["relay_reply"]
            .as_str()
            .expect("reply")
            .starts_with("250")
    );
    assert!(
        notification["details"]["deadline_rule"]
            .as_str()
            .expect("rule")
            .contains("R.53-3")
    );

    let token = link_token(&body);
    let seen = recipient(&app, &token).await;
    assert_eq!(seen["state"], "notified");
    assert_eq!(seen["letter_id"], letter_id);
    assert!(seen.get("sender").is_none(), "{seen}");
    assert!(
        !seen.to_string().to_lowercase().contains("recouvr"),
        "{seen}"
    );
    // Without a session, no more than the notification said (issue 12 §5).
    assert!(seen.get("document_count").is_none(), "{seen}");

    // Deciding without a session is refused.
    let response = post_with_session(
        &app,
        &format!("/v1/recipient/{token}/accept"),
        "not-a-session",
    )
    .await;
    assert_eq!(response.status(), 401);

    let session = identify(&app, &sink, &token).await;
    let response =
        post_with_session(&app, &format!("/v1/recipient/{token}/accept"), &session).await;
    assert_eq!(response.status(), 200);
    let accepted: Value = response.json().await.expect("json");
    assert_eq!(accepted["state"], "accepted");
    let shown: Value = app.get_json(&format!("/v1/letters/{letter_id}")).await;
    assert_eq!(shown["state"], "accepted");
    for field in ["notified_at", "deadline", "decided_at"] {
        assert!(
            shown[field].as_str().is_some_and(|t| t.ends_with('Z')),
            "{field}: {shown}"
        );
    }
    assert_eq!(
        accepted["sender"]["name"], "Cabinet Recouvr",
        "revealed after the decision"
    );
    recipient_receipt(&app, &token, &session, "Accusé de réception").await;

    let document = accepted["documents"][0]["id"].as_str().expect("document");
    for _ in 0..2 {
        let response = app
            .get_as(
                &session,
                &format!("/v1/recipient/{token}/documents/{document}"),
            )
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(
            response.headers()["content-disposition"],
            "attachment; filename=\"relance.pdf\"; filename*=UTF-8''relance.pdf"
        );
        let bytes = response.bytes().await.expect("bytes");
        assert_eq!(
            bytes.as_ref(),
            crate::helpers::sample_pdf("relance").as_slice()
        );
    }
    assert_eq!(
        events(&app, letter_id).await,
        [
            "SubmissionAcceptance",
            "NotificationForAcceptance",
            "ConsignmentAcceptance",
            "ContentHandover"
        ],
        "one handover evidence for two downloads"
    );
    let rows = app.evidence_of(letter_id).await;
    let acceptance: Value = serde_json::from_slice(&rows[2].record).expect("record");
    assert_eq!(acceptance["recipient"]["identity"]["method"], "email-otp");
    assert_eq!(
        acceptance["recipient"]["identity"]["assurance_level"],
        "low"
    );
    assert_eq!(
        acceptance["details"]["client"]["user_agent"],
        "integration-test/1.0"
    );
    verify_chain(&app, letter_id).await;

    // The identified recipient can fetch their proofs; a forwarded link alone cannot, and
    // shows neither the sender nor the proofs, even after the decision.
    let proof = &rows[2];
    let path = format!("/v1/recipient/{token}/evidence/{}.json", proof.id);
    let anonymous = app.get_anon(&path).await;
    assert_eq!(anonymous.status(), 401);
    let response = app.get_as(&session, &path).await;
    assert_eq!(
        response.bytes().await.expect("bytes").as_ref(),
        proof.record.as_slice()
    );
    let forwarded = recipient(&app, &token).await;
    // A forwarded link learns nothing the notification did not say, not even the outcome.
    for field in ["state", "sender", "evidence", "documents", "decided_at"] {
        assert!(forwarded.get(field).is_none(), "{field}: {forwarded}");
    }
    let own: Value = app
        .get_as(&session, &format!("/v1/recipient/{token}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(own["sender"]["name"], "Cabinet Recouvr");
    assert_eq!(own["evidence"].as_array().map(Vec::len), Some(4));
    // Reminders stop after the decision.
    let pending = app
        .service
        .storage
        .pending_jobs(letter_id)
        .await
        .expect("jobs");
    assert!(
        pending
            .iter()
            .all(|j| j.kind == "remind" || j.kind == "webhook_event"),
        "{pending:?}"
    );
}

async fn a_refusal_is_final_and_reveals_the_sender(engine: Engine) {
    let Some(sink) = SmtpSink::start(&[], 0) else {
        return;
    };
    let Some(app) = app_with_smtp(engine, &sink, Arc::new(SystemClock)).await else {
        return;
    };
    let (letter, _, body) = deposit_and_notify(&app, &sink, 0).await;
    let letter_id = letter["id"].as_str().expect("id");
    let token = link_token(&body);
    let session = identify(&app, &sink, &token).await;
    let response =
        post_with_session(&app, &format!("/v1/recipient/{token}/refuse"), &session).await;
    assert_eq!(response.status(), 200);
    let refused: Value = response.json().await.expect("json");
    assert_eq!(refused["state"], "refused");
    assert_eq!(refused["sender"]["email"], "envoi@recouvr.fr");
    // The sender gets a proof of refusal, and no proof of receipt.
    assert_eq!(proof_status(&app, letter_id, "receipt").await, 404);
    if let Some(text) = proof_text(&app, letter_id, "refusal").await {
        assert!(text.contains("Preuve de refus"), "{text}");
        assert!(text.contains("a refusé la lettre"), "{text}");
        assert!(text.contains("envoi@recouvr.fr"), "{text}");
    }
    let given = recipient_receipt(&app, &token, &session, "Preuve de refus").await;
    let (_, kept) = crate::proofs::get_pdf(&app, letter_id, "refusal").await;
    assert_eq!(
        given, kept,
        "the recipient gets the signed file the sender gets"
    );
    for path in ["accept", "refuse"] {
        let response =
            post_with_session(&app, &format!("/v1/recipient/{token}/{path}"), &session).await;
        assert_eq!(response.status(), 409, "{path} after refusal");
        let problem: Value = response.json().await.expect("problem");
        assert_eq!(
            problem["type"],
            "urn:recommande:problem:letter-state-conflict"
        );
    }
    let document = app
        .service
        .storage
        .letter_documents(letter_id)
        .await
        .expect("docs")[0]
        .id
        .clone();
    let response = app
        .get_as(
            &session,
            &format!("/v1/recipient/{token}/documents/{document}"),
        )
        .await;
    assert_eq!(response.status(), 409, "no content after a refusal");
    assert_eq!(
        events(&app, letter_id).await,
        [
            "SubmissionAcceptance",
            "NotificationForAcceptance",
            "ConsignmentRejection"
        ]
    );
    verify_chain(&app, letter_id).await;
}

async fn an_unclaimed_letter_expires_after_the_fifteenth_day(engine: Engine) {
    let Some(sink) = SmtpSink::start(&[], 0) else {
        return;
    };
    let clock = TestClock::at(time::OffsetDateTime::now_utc());
    let Some(app) = app_with_smtp(engine, &sink, Arc::new(clock.clone())).await else {
        return;
    };
    let (letter, _, body) = deposit_and_notify(&app, &sink, 0).await;
    let letter_id = letter["id"].as_str().expect("id");
    let token = link_token(&body);
    let row = app
        .service
        .storage
        .letter_by_id(letter_id)
        .await
        .expect("db")
        .expect("letter");
    let deadline = recommande::core::clock::from_unix_micros(row.deadline.expect("deadline"));
    let days = (deadline - clock.now()).whole_days();
    assert!((15..=16).contains(&days), "{days} days to the deadline");

    // One minute before the deadline nothing expires, and the recipient may still decide.
    clock.advance(deadline - clock.now() - time::Duration::minutes(1));
    assert_eq!(
        app.service.lifecycle.expire_due(100).await.expect("sweep"),
        0
    );
    let session = identify(&app, &sink, &token).await;
    // At the deadline: the sweep records the non-claim, exactly once.
    clock.advance(time::Duration::minutes(1));
    assert_eq!(
        app.service.lifecycle.expire_due(100).await.expect("sweep"),
        1
    );
    assert_eq!(
        app.service.lifecycle.expire_due(100).await.expect("sweep"),
        0
    );
    let response =
        post_with_session(&app, &format!("/v1/recipient/{token}/accept"), &session).await;
    assert_eq!(response.status(), 409, "no decision after expiry");
    assert_eq!(
        events(&app, letter_id).await,
        [
            "SubmissionAcceptance",
            "NotificationForAcceptance",
            "AcceptanceRejectionExpiry"
        ]
    );
    let rows = app.evidence_of(letter_id).await;
    assert!(
        rows[2].event_time >= row.deadline.expect("deadline"),
        "non-claim only after the deadline"
    );
    verify_chain(&app, letter_id).await;
    // CPCE R.53-3: the sender receives a proof of non-claim once the window has ended.
    if let Some(text) = proof_text(&app, letter_id, "non_claim").await {
        assert!(text.contains("Preuve de non-réclamation"), "{text}");
        assert!(text.contains("n'a ni accepté ni refusé"), "{text}");
        assert!(
            text.contains("Fin du délai d'acceptation (expiré)"),
            "{text}"
        );
        assert!(
            text.contains(&recommande::domain::window::paris_french(
                recommande::domain::window::last_minute(deadline)
            )),
            "{text}"
        );
    }
}

async fn a_permanent_smtp_refusal_records_a_notification_failure(engine: Engine) {
    let Some(sink) = SmtpSink::start(&["debitrice.fr"], 0) else {
        return;
    };
    let Some(app) = app_with_smtp(engine, &sink, Arc::new(SystemClock)).await else {
        return;
    };
    let letter = app.deposit().await;
    let letter_id = letter["id"].as_str().expect("id");
    app.service.lifecycle.run_due_jobs(10).await.expect("jobs");
    let shown: Value = app.get_json(&format!("/v1/letters/{letter_id}")).await;
    assert_eq!(shown["state"], "notification_failed");
    assert_eq!(
        events(&app, letter_id).await,
        ["SubmissionAcceptance", "NotificationForAcceptanceFailure"]
    );
    let rows = app.evidence_of(letter_id).await;
    let failure: Value = serde_json::from_slice(&rows[1].record).expect("record");
    assert!(
        failure["details"]["failure"]["reason"]
            .as_str()
            .expect("reason")
            .contains("550"),
        "{failure}"
    );
    assert_eq!(
        failure["details"]["failure"]["message_id"],
        format!("lre.{letter_id}.notify.1@recommande.localhost"),
        "the failure names the message offered: {failure}"
    );
    assert_eq!(
        failure["details"]["failure"]["message_sha256"]
            .as_str()
            .map(str::len),
        Some(64)
    );
    assert!(sink.messages().is_empty());
    assert!(
        app.service
            .storage
            .pending_jobs(letter_id)
            .await
            .expect("jobs")
            .iter()
            .all(|j| j.kind == "webhook_event"),
        "the notification job is done"
    );
    verify_chain(&app, letter_id).await;
}

async fn a_temporary_smtp_failure_is_retried_and_proven_once(engine: Engine) {
    let Some(sink) = SmtpSink::start(&[], 1) else {
        return;
    };
    let clock = TestClock::at(time::OffsetDateTime::now_utc());
    let Some(app) = app_with_smtp(engine, &sink, Arc::new(clock.clone())).await else {
        return;
    };
    let letter = app.deposit().await;
    let letter_id = letter["id"].as_str().expect("id");
    app.service.lifecycle.run_due_jobs(10).await.expect("jobs");
    assert_eq!(
        events(&app, letter_id).await,
        ["SubmissionAcceptance"],
        "no evidence for a deferral"
    );
    // Not due again before its backoff.
    app.service.lifecycle.run_due_jobs(10).await.expect("jobs");
    assert!(sink.messages().is_empty());
    clock.advance(time::Duration::minutes(1));
    app.service.lifecycle.run_due_jobs(10).await.expect("jobs");
    sink.wait_for(1).await;
    clock.advance(time::Duration::minutes(10));
    app.service.lifecycle.run_due_jobs(10).await.expect("jobs");
    assert_eq!(
        events(&app, letter_id).await,
        ["SubmissionAcceptance", "NotificationForAcceptance"]
    );
    assert_eq!(sink.messages().len(), 1, "one notification mail");
    let rows = app.evidence_of(letter_id).await;
    let notification: Value = serde_json::from_slice(&rows[1].record).expect("record");
    assert_eq!(notification["details"]["notification"]["attempt"], 2);
}

async fn five_wrong_codes_lock_identification_for_fifteen_minutes(engine: Engine) {
    let Some(sink) = SmtpSink::start(&[], 0) else {
        return;
    };
    let clock = TestClock::at(time::OffsetDateTime::now_utc());
    let Some(app) = app_with_smtp(engine, &sink, Arc::new(clock.clone())).await else {
        return;
    };
    let (_, _, body) = deposit_and_notify(&app, &sink, 0).await;
    let token = link_token(&body);
    let response = app.recipient_post(&token, "otp").await;
    assert_eq!(response.status(), 202);
    let mails = sink.wait_for(2).await;
    let right = code(&body_text(&mails[1]));
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let try_code = |c: String| {
        let app = &app;
        let token = token.clone();
        async move {
            app.post_json_anon(
                &format!("/v1/recipient/{token}/session"),
                &json!({ "code": c }),
            )
            .await
        }
    };
    for attempt in 1..=4 {
        let response = try_code(wrong.to_string()).await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
        let problem: Value = response.json().await.expect("problem");
        assert_eq!(problem["type"], "urn:recommande:problem:otp-invalid");
    }
    let response = try_code(wrong.to_string()).await;
    assert_eq!(response.status(), 429);
    let problem: Value = response.json().await.expect("problem");
    assert_eq!(problem["type"], "urn:recommande:problem:otp-locked");
    // Locked: even the right code is refused, and no new code is sent.
    assert_eq!(try_code(right.clone()).await.status(), 429);
    let response = app.recipient_post(&token, "otp").await;
    assert_eq!(response.status(), 429);
    // After fifteen minutes a fresh code works (the old one died with the lock).
    clock.advance(time::Duration::minutes(16));
    assert_eq!(try_code(right).await.status(), 401);
    identify(&app, &sink, &token).await;
}

async fn a_bounce_turns_a_notified_letter_into_a_notification_failure(engine: Engine) {
    let Some(sink) = SmtpSink::start(&[], 0) else {
        return;
    };
    let Some(app) = app_with_smtp(engine, &sink, Arc::new(SystemClock)).await else {
        return;
    };
    let (letter, raw, _) = deposit_and_notify(&app, &sink, 0).await;
    let letter_id = letter["id"].as_str().expect("id");
    let message_id = raw
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
        .expect("Message-ID")
        .split_once(':')
        .expect("colon")
        .1
        .trim()
        .to_string();
    let dsn = format!(
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.debitrice.fr\r\n\r\n\
         Final-Recipient: rfc822; compta@debitrice.fr\r\nAction: failed\r\nStatus: 5.2.2\r\n\
         Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n\
         Message-ID: {message_id}\r\n--B--\r\n"
    );
    let post = |token: String| {
        app.client
            .post(app.url("/v1/bounces"))
            .bearer_auth(token)
            .header("content-type", "message/delivery-status")
            .body(dsn.clone())
            .send()
    };
    assert_eq!(post("wrong".into()).await.expect("POST").status(), 401);
    let response = post("b".repeat(40)).await.expect("POST");
    assert_eq!(response.status(), 202);
    let outcome: Value = response.json().await.expect("json");
    assert_eq!(outcome["recorded"], true);
    assert_eq!(outcome["letter_id"], letter_id);
    assert_eq!(
        events(&app, letter_id).await,
        [
            "SubmissionAcceptance",
            "NotificationForAcceptance",
            "NotificationForAcceptanceFailure"
        ]
    );
    // The same bounce again changes nothing.
    let again: Value = post("b".repeat(40))
        .await
        .expect("POST")
        .json()
        .await
        .expect("json");
    assert_eq!(again["recorded"], false);
    assert_eq!(events(&app, letter_id).await.len(), 3);
    verify_chain(&app, letter_id).await;
}

async fn a_crash_between_deposit_and_notification_loses_nothing(engine: Engine) {
    let Some(sink) = SmtpSink::start(&[], 0) else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let Some(database_url) = fresh_database(engine, dir.path()).await else {
        return;
    };
    let data_dir = dir.path().to_path_buf();
    let settings = || {
        let mut s = settings_for(&data_dir, &database_url);
        s.mail.smtp_url = Some(sink.url());
        s
    };
    // First life: the deposit commits, then the process dies before any worker runs.
    let first = start_on(
        tempfile::tempdir().expect("unused"),
        database_url.clone(),
        settings(),
        Arc::new(SystemClock),
    )
    .await;
    let letter = first.deposit().await;
    let letter_id = letter["id"].as_str().expect("id").to_string();
    // A worker claimed the job and died while sending: the job is leased, not lost.
    let claimed = first
        .service
        .storage
        .claim_jobs(
            recommande::core::clock::unix_micros(first.service.clock.now()),
            1,
            10,
        )
        .await
        .expect("claim");
    assert!(claimed.iter().any(|j| j.kind == "notify"));
    first.service.storage.close().await;
    drop(first);

    // Second life: the outbox still holds the notification; it is sent once, proven once.
    let second = start_on(
        tempfile::tempdir().expect("unused"),
        database_url.clone(),
        settings(),
        Arc::new(SystemClock),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    second
        .service
        .lifecycle
        .run_due_jobs(10)
        .await
        .expect("jobs");
    second
        .service
        .lifecycle
        .run_due_jobs(10)
        .await
        .expect("jobs");
    sink.wait_for(1).await;
    let rows = second.evidence_of(&letter_id).await;
    let notifications = rows
        .iter()
        .filter(|r| r.event == "NotificationForAcceptance")
        .count();
    assert_eq!(notifications, 1);
    assert_eq!(sink.messages().len(), 1);
    verify_chain(&second, &letter_id).await;
}

async fn the_embedded_default_writes_an_eml_file_without_the_sender(engine: Engine) {
    let Some(app) = crate::helpers::spawn_app(engine).await else {
        return;
    };
    let letter = app.deposit().await;
    let letter_id = letter["id"].as_str().expect("id");
    app.service.lifecycle.run_due_jobs(10).await.expect("jobs");
    let mail_dir = app.dir.path().join("mail");
    let files: Vec<_> = std::fs::read_dir(&mail_dir)
        .expect("mail dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let raw = String::from_utf8(std::fs::read(&files[0]).expect("eml")).expect("utf-8");
    assert_no_sender(&raw, &body_text(&raw));
    assert!(body_text(&raw).contains(&format!(
        "/r/{}",
        app.service.lifecycle.recipient_token(letter_id)
    )));
    assert_eq!(
        events(&app, letter_id).await,
        ["SubmissionAcceptance", "NotificationForAcceptance"]
    );
}

/// The column holding job `id`'s kept message, read as someone with the database alone would.
async fn sealed_column(database_url: &str, id: i64) -> Vec<u8> {
    use sqlx::Connection;
    let sql = "SELECT mail_sealed FROM outbox WHERE id = $1";
    if database_url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(database_url)
            .await
            .expect("open");
        sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&mut conn)
            .await
            .expect("mail_sealed")
    } else {
        let mut conn = sqlx::PgConnection::connect(database_url)
            .await
            .expect("connect");
        sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&mut conn)
            .await
            .expect("mail_sealed")
    }
}

async fn a_notification_job_keeps_one_sealed_message_for_the_claim_that_built_it(engine: Engine) {
    // Arrange: a deposited letter whose notification job is claimed (attempt 1), not run.
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let letter = app.deposit().await;
    let letter_id = letter["id"].as_str().expect("id");
    let storage = &app.service.storage;
    let now = recommande::core::clock::unix_micros(time::OffsetDateTime::now_utc());
    let claimed = storage
        .claim_jobs(now, 300_000_000, 10)
        .await
        .expect("claim");
    let job = claimed
        .iter()
        .find(|j| j.kind == "notify" && j.letter_id.as_deref() == Some(letter_id))
        .expect("the notify job")
        .clone();
    assert_eq!(job.attempts, 1);
    assert!(storage.job_mail(job.id).await.expect("read").is_none());
    let mail = recommande::infra::storage::JobMail {
        message_id: format!("lre.{letter_id}.notify.1@recommande.localhost"),
        prepared_at: now,
        bytes: b"Message-ID: <x>\r\n\r\nhttp://localhost/r/LINK-TOKEN-IN-CLEAR\r\n".to_vec(),
    };

    // Act and assert: only the claim that built it keeps it, and only once.
    assert!(
        !storage.keep_job_mail(job.id, 2, &mail).await.expect("keep"),
        "a stale or foreign claim keeps nothing"
    );
    assert!(storage.keep_job_mail(job.id, 1, &mail).await.expect("keep"));
    let other = recommande::infra::storage::JobMail {
        bytes: b"another message".to_vec(),
        ..mail.clone()
    };
    assert!(
        !storage
            .keep_job_mail(job.id, 1, &other)
            .await
            .expect("keep"),
        "a kept message is never replaced"
    );
    assert_eq!(
        storage.job_mail(job.id).await.expect("read"),
        Some(mail.clone())
    );

    // The database alone does not give the recipient link (issue 12 §4).
    let sealed = sealed_column(&app.database_url, job.id).await;
    assert!(sealed.len() > mail.bytes.len());
    assert!(
        !sealed
            .windows(b"LINK-TOKEN".len())
            .any(|w| w == b"LINK-TOKEN"),
        "the kept message is sealed"
    );

    // A master key rotation re-seals it, after which the old key can go.
    use recommande::infra::keys::{DEVELOPMENT_KEY_FILE, Keyring, generate_key};
    let development = app.dir.path().join("keys").join(DEVELOPMENT_KEY_FILE);
    let new = generate_key("k-rotated").expect("new key");
    let both = Keyring::load(Some(&new), &[development], app.dir.path()).expect("keyring");
    assert_eq!(storage.reseal_job_mails(&both).await.expect("reseal"), 1);
    assert_eq!(
        storage.reseal_job_mails(&both).await.expect("reseal"),
        0,
        "idempotent"
    );
    let only_new = Keyring::load(Some(&new), &[], app.dir.path()).expect("keyring");
    let rotated = storage.clone().with_secret_keys(Arc::new(only_new));
    assert_eq!(
        rotated.job_mail(job.id).await.expect("read"),
        Some(mail.clone())
    );

    // A message the relay surely did not take is forgotten with the retry.
    storage
        .retry_job_without_mail(job.id, now, "451 try later")
        .await
        .expect("retry");
    assert!(storage.job_mail(job.id).await.expect("read").is_none());
}
