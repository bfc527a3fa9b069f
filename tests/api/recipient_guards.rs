//! The recipient's guards (issue 12 §5): cross-site posts with the session cookie, malformed
//! codes that are not guesses, `nosniff` and download names, and what a lockout leaves open.

use crate::helpers::header_str;
use std::sync::Arc;

use recommande::core::clock::SystemClock;
use serde_json::{Value, json};

use crate::helpers::{Engine, TestApp, spawn_app_with};
use crate::smtp::{SmtpSink, body_text, code, link_token};

crate::on_both_engines!(
    a_cross_site_post_with_the_session_cookie_is_refused_and_a_same_origin_one_is_not,
    ten_malformed_codes_count_no_attempt_and_the_right_code_still_opens_a_session,
    every_response_says_nosniff_and_downloads_carry_a_file_name,
    a_lockout_by_whoever_holds_the_link_leaves_an_open_session_working,
);

async fn app_with_smtp(engine: Engine, sink: &SmtpSink) -> Option<TestApp> {
    let url = sink.url();
    spawn_app_with(engine, Arc::new(SystemClock), |s| {
        s.mail.smtp_url = Some(url);
    })
    .await
}

/// Deposits a letter, delivers its notification; returns the letter id and the link token.
async fn notified_letter(app: &TestApp, sink: &SmtpSink) -> (String, String) {
    let letter = app.deposit().await;
    app.service.lifecycle.run_due_jobs(10).await.expect("jobs");
    let mails = sink.wait_for(1).await;
    let id = letter["id"].as_str().expect("id").to_string();
    (id, link_token(&body_text(&mails[0])))
}

/// Asks for a code and returns it as read from the mail.
async fn emailed_code(app: &TestApp, sink: &SmtpSink, token: &str) -> String {
    let before = sink.messages().len();
    let response = app.recipient_post(token, "otp").await;
    assert_eq!(response.status(), 202);
    let mails = sink.wait_for(before + 1).await;
    code(&body_text(&mails[before]))
}

async fn submit_code(app: &TestApp, token: &str, typed: &str) -> reqwest::Response {
    app.post_json_anon(
        &format!("/v1/recipient/{token}/session"),
        &json!({ "code": typed }),
    )
    .await
}

/// Opens a session and returns its token.
async fn identify(app: &TestApp, sink: &SmtpSink, token: &str) -> String {
    let otp = emailed_code(app, sink, token).await;
    let response = submit_code(app, token, &otp).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    body["session"].as_str().expect("session").to_string()
}

async fn assert_problem(response: reqwest::Response, status: u16, slug: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(
        header_str(&response, "content-type"),
        Some("application/problem+json")
    );
    let problem: Value = response.json().await.expect("problem");
    assert_eq!(problem["type"], format!("urn:recommande:problem:{slug}"));
}

async fn a_cross_site_post_with_the_session_cookie_is_refused_and_a_same_origin_one_is_not(
    engine: Engine,
) {
    let Some(sink) = SmtpSink::start(&[], 0) else {
        return;
    };
    let Some(app) = app_with_smtp(engine, &sink).await else {
        return;
    };
    let (_, token) = notified_letter(&app, &sink).await;
    let session = identify(&app, &sink, &token).await;
    let cookie = format!("recommande_session={session}");
    let accept = app.url(&format!("/v1/recipient/{token}/accept"));

    for (name, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let response = app
            .client
            .post(&accept)
            .header("cookie", &cookie)
            .header(name, value)
            .send()
            .await
            .expect("POST");
        assert_problem(response, 403, "cross-site").await;
    }
    let state: Value = app
        .get_anon(&format!("/v1/recipient/{token}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(state["state"], "notified", "nothing was decided");

    let ours = app.service.settings.server.public_url.trim_end_matches('/');
    let response = app
        .client
        .post(&accept)
        .header("cookie", &cookie)
        .header("origin", ours)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.expect("json");
    assert_eq!(view["state"], "accepted");
}

async fn ten_malformed_codes_count_no_attempt_and_the_right_code_still_opens_a_session(
    engine: Engine,
) {
    let Some(sink) = SmtpSink::start(&[], 0) else {
        return;
    };
    let Some(app) = app_with_smtp(engine, &sink).await else {
        return;
    };
    let (_, token) = notified_letter(&app, &sink).await;
    let right = emailed_code(&app, &sink, &token).await;
    let malformed = [
        "",
        "12345",
        "1234567",
        "12a456",
        "abcdef",
        "١٢٣٤٥٦",
        "12-456",
    ];
    for typed in malformed.iter().cycle().take(10) {
        assert_problem(submit_code(&app, &token, typed).await, 422, "otp-malformed").await;
    }
    for _ in 0..10 {
        let response = app
            .client
            .post(app.url(&format!("/r/{token}/session")))
            .form(&[("code", "12a")])
            .send()
            .await
            .expect("POST form");
        assert_eq!(response.status(), 422);
    }
    // The first real guess still has all its attempts before the lock.
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let response = submit_code(&app, &token, wrong).await;
    assert_eq!(response.status(), 401);
    let problem: Value = response.json().await.expect("problem");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("4 attempts left"), "{detail}");
    // Spaces are a paste habit, not a mistake.
    let spaced = format!("{} {}", &right[..3], &right[3..]);
    assert_eq!(submit_code(&app, &token, &spaced).await.status(), 201);
}

async fn every_response_says_nosniff_and_downloads_carry_a_file_name(engine: Engine) {
    let Some(sink) = SmtpSink::start(&[], 0) else {
        return;
    };
    let Some(app) = app_with_smtp(engine, &sink).await else {
        return;
    };
    let (letter_id, token) = notified_letter(&app, &sink).await;
    let session = identify(&app, &sink, &token).await;
    let accepted = app.recipient_post_with(&token, "accept", &session).await;
    assert_eq!(accepted.status(), 200);
    let list: Value = app
        .get_json(&format!("/v1/letters/{letter_id}/evidence"))
        .await;
    let evidence_id = list["evidence"][0]["id"].as_str().expect("id").to_string();

    let nosniff = |response: &reqwest::Response| {
        header_str(response, "x-content-type-options").map(str::to_string)
    };
    let disposition = |response: &reqwest::Response| {
        header_str(response, "content-disposition")
            .map(str::to_string)
            .unwrap_or_default()
    };
    for path in [
        "/healthz".to_string(),
        "/no/such/route".to_string(),
        format!("/v1/letters/{letter_id}"),
        format!("/v1/recipient/{token}"),
        format!("/r/{token}"),
    ] {
        let response = app.get(&path).await;
        assert_eq!(nosniff(&response).as_deref(), Some("nosniff"), "{path}");
    }

    let proof = app
        .get(&format!("/v1/letters/{letter_id}/proofs/deposit.pdf"))
        .await;
    assert_eq!(proof.status(), 200);
    assert_eq!(nosniff(&proof).as_deref(), Some("nosniff"));
    assert!(disposition(&proof).contains("filename=\""), "proof PDF");

    let sender_file = app
        .get(&format!(
            "/v1/letters/{letter_id}/evidence/{evidence_id}.p7s"
        ))
        .await;
    assert_eq!(sender_file.status(), 200);
    assert_eq!(nosniff(&sender_file).as_deref(), Some("nosniff"));
    assert!(disposition(&sender_file).contains(&format!("filename=\"{evidence_id}.p7s\"")));

    let recipient_file = app
        .get_as(
            &session,
            &format!("/v1/recipient/{token}/evidence/{evidence_id}.json"),
        )
        .await;
    assert_eq!(recipient_file.status(), 200);
    assert_eq!(nosniff(&recipient_file).as_deref(), Some("nosniff"));
    assert!(disposition(&recipient_file).contains(&format!("filename=\"{evidence_id}.json\"")));
}

async fn a_lockout_by_whoever_holds_the_link_leaves_an_open_session_working(engine: Engine) {
    let Some(sink) = SmtpSink::start(&[], 0) else {
        return;
    };
    let Some(app) = app_with_smtp(engine, &sink).await else {
        return;
    };
    let (_, token) = notified_letter(&app, &sink).await;
    let session = identify(&app, &sink, &token).await;
    // Someone else holding the forwarded link guesses five times and locks the code route.
    for _ in 0..4 {
        assert_problem(
            submit_code(&app, &token, "000000").await,
            401,
            "otp-invalid",
        )
        .await;
    }
    assert_problem(submit_code(&app, &token, "000000").await, 429, "otp-locked").await;
    let response = app.recipient_post(&token, "otp").await;
    assert_problem(response, 429, "otp-locked").await;
    // The recipient, already identified, still decides.
    let response = app.recipient_post_with(&token, "refuse", &session).await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.expect("json");
    assert_eq!(view["state"], "refused");
}
