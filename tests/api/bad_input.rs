//! Bad input gets a precise problem+json answer and writes nothing.

use crate::helpers::header_bytes;
use serde_json::{Value, json};

use crate::consents::create_consent;
use crate::helpers::{Engine, letter_body, sample_pdf, spawn_app, spawn_app_with};

crate::on_both_engines!(
    requests_without_a_valid_api_key_are_refused_with_401,
    malformed_json_is_a_400_and_writes_nothing,
    a_body_that_is_not_json_by_content_type_is_a_415,
    every_invalid_field_is_listed_in_one_422,
    a_consumer_recipient_without_consent_is_refused,
    an_unknown_document_is_a_422,
    an_oversized_upload_is_a_413_and_stores_nothing,
    uploads_that_are_not_pdf_or_lack_the_file_field_are_refused,
    bad_list_queries_are_a_400_listing_each_parameter,
    unknown_routes_and_ids_answer_problem_json,
    an_oversized_json_body_is_a_413_problem,
    a_refused_upload_leaves_no_file_behind,
    names_references_and_file_names_with_bidi_overrides_are_refused,
);

pub(crate) async fn assert_problem(response: reqwest::Response, status: u16, kind: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("")),
        Some("application/problem+json")
    );
    let problem: Value = response.json().await.expect("problem json");
    assert_eq!(
        problem["type"],
        format!("urn:recommande:problem:{kind}"),
        "{problem}"
    );
    assert_eq!(problem["status"], status);
    assert!(
        problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{problem}"
    );
    problem
}

async fn requests_without_a_valid_api_key_are_refused_with_401(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    let body = letter_body(&document);
    let no_key = app.post_json_anon("/v1/letters", &body).await;
    assert_eq!(
        header_bytes(&no_key, "www-authenticate"),
        Some(&b"Bearer"[..])
    );
    assert_problem(no_key, 401, "unauthorized").await;
    let wrong = app.post_letter_with("rk_not-a-real-key", &body, None).await;
    assert_problem(wrong, 401, "unauthorized").await;
    let basic = app
        .client
        .get(app.url("/v1/letters"))
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .expect("GET");
    assert_problem(basic, 401, "unauthorized").await;

    let key = app.new_api_key("Cabinet Recouvr").await;
    assert_eq!(app.post_letter_with(&key, &body, None).await.status(), 201);
    let keys = app
        .service
        .storage
        .list_api_keys(Some("Cabinet Recouvr"))
        .await
        .expect("keys");
    let newest = keys.last().expect("a key");
    assert!(
        app.service
            .storage
            .revoke_api_key(&newest.id, 1)
            .await
            .expect("revoke")
    );
    assert_problem(
        app.post_letter_with(&key, &body, None).await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(app.letter_count().await, 1);
}

async fn malformed_json_is_a_400_and_writes_nothing(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let response = app
        .post_raw("/v1/letters", "application/json", "{\"sender\": ")
        .await;
    assert_problem(response, 400, "malformed-json").await;
    assert_eq!(app.letter_count().await, 0);
}

async fn a_body_that_is_not_json_by_content_type_is_a_415(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let response = app.post_raw("/v1/letters", "text/plain", "{}").await;
    assert_problem(response, 415, "unsupported-media-type").await;
}

async fn every_invalid_field_is_listed_in_one_422(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let body = json!({
        "sender": {"name": "", "email": "not-an-address"},
        "recipient": {"name": "X", "email": "x@", "kind": "alien"},
        "reference": 12,
        "documents": ["nope"],
        "unexpected": true
    });
    let problem = assert_problem(app.post_letter(&body).await, 422, "validation-failed").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    for expected in [
        "sender.name",
        "sender.email",
        "recipient.email",
        "recipient.kind",
        "reference",
        "documents[0]",
        "unexpected",
    ] {
        assert!(fields.contains(&expected), "{expected} not in {fields:?}");
    }
    let problem = assert_problem(
        app.post_letter(&json!([1, 2])).await,
        422,
        "validation-failed",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("JSON object")
    );
    assert_eq!(app.letter_count().await, 0);
}

async fn a_consumer_recipient_without_consent_is_refused(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    let mut body = letter_body(&document);
    body["recipient"]["kind"] = json!("consumer");
    let problem = assert_problem(app.post_letter(&body).await, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "recipient.consent_id");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("L.100")
    );
    assert_eq!(app.letter_count().await, 0);

    // CPCE L.100: an id the account never recorded is no consent at all.
    body["recipient"]["consent_id"] = json!("consentement-2026-17");
    let problem = assert_problem(app.post_letter(&body).await, 422, "consent-required").await;
    assert_eq!(problem["errors"][0]["field"], "recipient.consent_id");
    assert_eq!(app.letter_count().await, 0);

    let consent = create_consent(&app, &app.api_key, "compta@debitrice.fr").await;
    let consent_id = consent["id"].as_str().expect("consent id");
    body["recipient"]["consent_id"] = json!(consent_id);
    let response = app.post_letter(&body).await;
    assert_eq!(response.status(), 201);
    let letter: Value = response.json().await.expect("json");
    let record: Value = app
        .get(&format!(
            "/v1/letters/{}/evidence/{}.json",
            letter["id"].as_str().expect("id"),
            letter["evidence"][0]["id"].as_str().expect("evidence")
        ))
        .await
        .json()
        .await
        .expect("record");
    assert_eq!(record["details"]["consent_id"], consent_id);
    assert_eq!(record["details"]["consent"]["id"], consent_id);
    assert_eq!(record["recipient"]["kind"], "consumer");
}

async fn an_unknown_document_is_a_422(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let known = app.upload_pdf().await;
    let mut body = letter_body(&known);
    let unknown = uuid::Uuid::now_v7().to_string();
    body["documents"] = json!([known, unknown]);
    let problem = assert_problem(app.post_letter(&body).await, 422, "unknown-document").await;
    assert_eq!(problem["errors"].as_array().expect("errors").len(), 1);
    assert_eq!(problem["errors"][0]["field"], "documents[1]");
    assert_eq!(app.letter_count().await, 0);
}

async fn an_oversized_upload_is_a_413_and_stores_nothing(engine: Engine) {
    let Some(app) = spawn_app_with(
        engine,
        std::sync::Arc::new(recommande::core::clock::SystemClock),
        |s| s.server.max_upload_bytes = 10_000,
    )
    .await
    else {
        return;
    };
    let mut big = sample_pdf("big");
    big.resize(10_001, b' ');
    let problem = assert_problem(
        app.upload_with_key(&app.api_key, "big.pdf", big).await,
        413,
        "payload-too-large",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("10000")
    );
    // Six times the limit (still within the HTTP layer's bound): the rest is drained and the
    // client reads a clean 413.
    let mut bigger = sample_pdf("bigger");
    bigger.resize(60_000, b' ');
    let refused = app
        .upload_with_key(&app.api_key, "bigger.pdf", bigger)
        .await;
    // The connection is not reusable after a body left unread: the answer says so.
    assert_eq!(refused.headers()["connection"], "close");
    assert_problem(refused, 413, "payload-too-large").await;
    // Announcing 10 MB is refused from the headers alone, before any body byte is sent.
    let head = huge_upload_response(&app.address, &app.api_key).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("application/problem+json"), "{head}");
    let documents = app.dir.path().join("documents");
    let stored = std::fs::read_dir(&documents)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(stored, 0, "nothing stored under {}", documents.display());
    let incoming = std::fs::read_dir(app.dir.path().join("incoming"))
        .expect("incoming")
        .count();
    assert_eq!(incoming, 0, "no temporary file left behind");
    let mut fits = sample_pdf("fits");
    fits.resize(10_000, b' ');
    assert_eq!(
        app.upload_with_key(&app.api_key, "fits.pdf", fits)
            .await
            .status(),
        201
    );
}

async fn uploads_that_are_not_pdf_or_lack_the_file_field_are_refused(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    // A PNG named .pdf: the bytes decide, not the name or the declared type.
    let png = b"\x89PNG\r\n\x1a\n0000IHDR".to_vec();
    let part = reqwest::multipart::Part::bytes(png)
        .file_name("facture.pdf")
        .mime_str("application/pdf")
        .expect("mime");
    let response = app
        .client
        .post(app.url("/v1/documents"))
        .bearer_auth(&app.api_key)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .expect("POST");
    assert_problem(response, 415, "unsupported-media-type").await;

    assert_problem(
        app.upload_with_key(&app.api_key, "empty.pdf", Vec::new())
            .await,
        422,
        "validation-failed",
    )
    .await;

    let form = reqwest::multipart::Form::new().text("note", "no file here");
    let response = app
        .client
        .post(app.url("/v1/documents"))
        .bearer_auth(&app.api_key)
        .multipart(form)
        .send()
        .await
        .expect("POST");
    let problem = assert_problem(response, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "note");

    let response = app
        .post_raw("/v1/documents", "application/pdf", sample_pdf("raw"))
        .await;
    assert_problem(response, 415, "unsupported-media-type").await;
    assert_eq!(
        std::fs::read_dir(app.dir.path().join("documents"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
}

async fn bad_list_queries_are_a_400_listing_each_parameter(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let problem = assert_problem(
        app.get("/v1/letters?state=lost&limit=0&cursor=xyz&colour=red")
            .await,
        400,
        "invalid-query",
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    assert_eq!(fields, ["colour", "cursor", "limit", "state"]);
}

async fn unknown_routes_and_ids_answer_problem_json(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    assert_problem(app.get("/v1/nothing-here").await, 404, "not-found").await;
    assert_problem(app.get("/v1/letters/not-a-uuid").await, 404, "not-found").await;
    let missing = uuid::Uuid::now_v7();
    assert_problem(
        app.get(&format!("/v1/letters/{missing}")).await,
        404,
        "not-found",
    )
    .await;
    let letter = app.deposit().await;
    let id = letter["id"].as_str().expect("id");
    let evidence = letter["evidence"][0]["id"].as_str().expect("evidence");
    assert_problem(
        app.get(&format!("/v1/letters/{id}/evidence/{evidence}.exe"))
            .await,
        404,
        "not-found",
    )
    .await;
    assert_problem(
        app.get(&format!("/v1/letters/{id}/evidence/{missing}.json"))
            .await,
        404,
        "not-found",
    )
    .await;
    let response = app.delete_as(&app.api_key, "/v1/letters").await;
    assert_problem(response, 405, "method-not-allowed").await;
}

/// Sends only the head of a 10 MB multipart upload and returns what the server answers.
async fn huge_upload_response(address: &str, key: &str) -> String {
    head_only_response(
        address,
        "/v1/documents",
        &[
            ("Authorization", &format!("Bearer {key}")),
            ("Content-Type", "multipart/form-data; boundary=XyZ"),
        ],
        10 * 1024 * 1024,
    )
    .await
}

/// Sends only the head of a POST announcing `length` body bytes and returns what the server
/// answers. Sending a real oversized body would race with the server closing the connection
/// once it has refused it; announcing it is deterministic.
pub(crate) async fn head_only_response(
    address: &str,
    path: &str,
    headers: &[(&str, &str)],
    length: usize,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {length}\r\n\r\n"));
    stream.write_all(head.as_bytes()).await.expect("write head");
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("the server answers without waiting for the body")
        .expect("read");
    String::from_utf8_lossy(&answer[..n]).to_string()
}

async fn an_oversized_json_body_is_a_413_problem(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let letters = head_only_response(
        &app.address,
        "/v1/letters",
        &[
            ("Authorization", &format!("Bearer {}", app.api_key)),
            ("Content-Type", "application/json"),
        ],
        2 * 1024 * 1024,
    )
    .await;
    assert!(letters.starts_with("HTTP/1.1 413"), "{letters}");
    assert!(
        letters.contains("application/problem+json") && letters.contains("payload-too-large"),
        "{letters}"
    );
    let tsa = head_only_response(
        &app.address,
        "/tsa",
        &[("Content-Type", "application/timestamp-query")],
        64 * 1024,
    )
    .await;
    assert!(tsa.starts_with("HTTP/1.1 413"), "{tsa}");
    assert!(
        tsa.contains("application/problem+json") && tsa.contains("payload-too-large"),
        "{tsa}"
    );
}

async fn a_refused_upload_leaves_no_file_behind(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    // Two files in one request: refused after the first was fully received.
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(sample_pdf("one")).file_name("one.pdf"),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(sample_pdf("two")).file_name("two.pdf"),
        );
    let response = app
        .client
        .post(app.url("/v1/documents"))
        .bearer_auth(&app.api_key)
        .multipart(form)
        .send()
        .await
        .expect("POST");
    assert_problem(response, 422, "validation-failed").await;
    // A reused idempotency key with other bytes: refused, and those bytes are not kept.
    let first = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(sample_pdf("first")).file_name("a.pdf"),
    );
    let response = app
        .client
        .post(app.url("/v1/documents"))
        .bearer_auth(&app.api_key)
        .header("Idempotency-Key", "upload-1")
        .multipart(first)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 201);
    let other = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(sample_pdf("other")).file_name("a.pdf"),
    );
    let response = app
        .client
        .post(app.url("/v1/documents"))
        .bearer_auth(&app.api_key)
        .header("Idempotency-Key", "upload-1")
        .multipart(other)
        .send()
        .await
        .expect("POST");
    assert_problem(response, 422, "idempotency-key-reused").await;
    let stored: usize = std::fs::read_dir(app.dir.path().join("documents"))
        .expect("documents")
        .map(|d| {
            std::fs::read_dir(d.expect("entry").path())
                .expect("prefix")
                .count()
        })
        .sum();
    assert_eq!(stored, 1, "only the accepted upload is stored");
    assert_eq!(
        std::fs::read_dir(app.dir.path().join("incoming"))
            .expect("incoming")
            .count(),
        0
    );
}

async fn names_references_and_file_names_with_bidi_overrides_are_refused(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    // U+202E makes `facture\u{202E}fdp.exe` display as `facture` followed by `exe.pdf`.
    let response = app
        .upload_with_key(&app.api_key, "facture\u{202E}fdp.exe", sample_pdf("bidi"))
        .await;
    let problem = assert_problem(response, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "file");

    let document = app.upload_pdf().await;
    for bad in ['\u{202B}', '\u{2067}', '\u{2028}', '\u{2029}'] {
        let mut body = letter_body(&document);
        body["recipient"]["name"] = json!(format!("SARL{bad}Débitrice"));
        body["reference"] = json!(format!("DOS{bad}2026"));
        let problem = assert_problem(app.post_letter(&body).await, 422, "validation-failed").await;
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| e["field"].as_str().expect("field"))
            .collect();
        assert_eq!(fields, ["recipient.name", "reference"], "{bad:?}");
    }
    assert_eq!(app.letter_count().await, 0);
}
