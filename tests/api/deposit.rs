//! Deposit: a letter becomes a proof of deposit that openssl and our verifier accept.

use crate::helpers::header_bytes;
use recommande::core::trust::TrustAnchors;
use recommande::core::verify::{ChainExpectation, verify_evidence};
use serde_json::Value;

use crate::helpers::{Engine, letter_body, openssl_cms_verify, openssl_ts_verify, spawn_app};

crate::on_both_engines!(
    a_deposit_yields_a_proof_of_deposit_that_openssl_and_our_verifier_accept,
    the_proof_of_deposit_carries_the_r53_2_fields,
    letters_can_be_read_listed_filtered_and_paged,
    another_tenants_letter_is_not_found,
    a_retried_post_with_the_same_idempotency_key_returns_the_original_letter,
    uploading_the_same_bytes_twice_gives_the_same_document,
    evidence_sequence_numbers_increase_across_letters,
    evidence_rows_cannot_be_updated_or_deleted,
);

async fn a_deposit_yields_a_proof_of_deposit_that_openssl_and_our_verifier_accept(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let letter = app.deposit().await;
    let letter_id = letter["id"].as_str().expect("id");
    assert_eq!(letter["state"], "deposited");
    let evidence = &letter["evidence"][0];
    assert_eq!(evidence["event"], "SubmissionAcceptance");
    let evidence_id = evidence["id"].as_str().expect("evidence id");

    let work = tempfile::tempdir().expect("dir");
    let files = app
        .download_evidence(letter_id, evidence_id, work.path())
        .await;

    let (ok, out) = openssl_ts_verify(&files.json, &files.tsr, &files.roots);
    assert!(
        ok && out.contains("Verification: OK"),
        "openssl ts -verify: {out}"
    );
    let (ok, out) = openssl_cms_verify(&files.json, &files.p7s, &files.roots);
    assert!(ok, "openssl cms -verify: {out}");

    let record = std::fs::read(&files.json).expect("record");
    let seal = std::fs::read(&files.p7s).expect("seal");
    let token = std::fs::read(&files.tsr).expect("token");
    let anchors =
        TrustAnchors::from_pem(&std::fs::read(&files.roots).expect("roots")).expect("anchors");
    let report = verify_evidence(&record, &seal, &token, &anchors, ChainExpectation::First);
    assert!(report.is_valid(), "{:#?}", report.checks);
    assert_eq!(
        hex::encode(report.sha256),
        evidence["sha256"].as_str().expect("sha")
    );

    // One flipped byte of the record: openssl (both checks) and our verifier refuse it.
    let mut tampered = record.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x01;
    std::fs::write(&files.json, &tampered).expect("write");
    let (ok, out) = openssl_ts_verify(&files.json, &files.tsr, &files.roots);
    assert!(!ok, "openssl ts accepted a tampered record: {out}");
    let (ok, out) = openssl_cms_verify(&files.json, &files.p7s, &files.roots);
    assert!(!ok, "openssl cms accepted a tampered record: {out}");
    let report = verify_evidence(&tampered, &seal, &token, &anchors, ChainExpectation::First);
    assert!(!report.is_valid());
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name)
        .collect();
    assert!(
        failed.contains(&"seal_signature") && failed.contains(&"timestamp_imprint"),
        "{failed:?}"
    );
}

async fn the_proof_of_deposit_carries_the_r53_2_fields(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let letter = app.deposit().await;
    let letter_id = letter["id"].as_str().expect("id");
    let evidence_id = letter["evidence"][0]["id"].as_str().expect("evidence id");
    let record: Value = app
        .get(&format!(
            "/v1/letters/{letter_id}/evidence/{evidence_id}.json"
        ))
        .await
        .json()
        .await
        .expect("record");
    // CPCE R.53-2: sender name and email, recipient name and email, unique letter id,
    // deposit time (the token's), the provider's seal.
    assert_eq!(record["version"], 1);
    assert_eq!(record["event"], "SubmissionAcceptance");
    assert_eq!(
        record["event_uri"],
        "http://uri.etsi.org/19522/Event/SubmissionAcceptance"
    );
    assert_eq!(record["letter_id"], letter_id);
    assert_eq!(record["sender"]["name"], "Cabinet Recouvr");
    assert_eq!(record["sender"]["email"], "envoi@recouvr.fr");
    assert_eq!(record["recipient"]["name"], "SARL Débitrice");
    assert_eq!(record["recipient"]["email"], "compta@debitrice.fr");
    assert_eq!(record["previous_evidence_sha256"], Value::Null);
    assert!(
        record["policy"]
            .as_str()
            .expect("policy")
            .contains("non-qualified"),
        "{}",
        record["policy"]
    );
    assert_eq!(record["content"][0]["media_type"], "application/pdf");
    assert_eq!(
        record["content"][0]["sha256"],
        letter["documents"][0]["sha256"]
    );
    assert_eq!(record["details"]["reference"], "DOS-2026-0001");
    let seal_sha = record["provider"]["seal_certificate_sha256"]
        .as_str()
        .expect("seal sha");
    assert_eq!(
        seal_sha,
        hex::encode(app.service.trust.seal.certificate_sha256())
    );
}

async fn letters_can_be_read_listed_filtered_and_paged(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut body = letter_body(&document);
        body["reference"] = Value::String(if i % 2 == 0 {
            "EVEN".into()
        } else {
            "ODD".into()
        });
        let response = app.post_letter(&body).await;
        assert_eq!(response.status(), 201);
        assert!(response.headers().get("location").is_some());
        let letter: Value = response.json().await.expect("json");
        ids.push(letter["id"].as_str().expect("id").to_string());
    }
    let one: Value = app.get_json(&format!("/v1/letters/{}", ids[2])).await;
    assert_eq!(one["id"], ids[2].as_str());
    assert_eq!(
        one["evidence"][0]["sequence"].as_i64().map(|s| s > 0),
        Some(true)
    );

    let even: Value = app.get_json("/v1/letters?reference=EVEN").await;
    assert_eq!(even["items"].as_array().expect("items").len(), 3);
    let deposited: Value = app.get_json("/v1/letters?state=deposited").await;
    assert_eq!(deposited["items"].as_array().expect("items").len(), 5);
    let none: Value = app.get_json("/v1/letters?state=accepted").await;
    assert_eq!(none["items"].as_array().expect("items").len(), 0);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/letters?limit=2&cursor={c}"),
            None => "/v1/letters?limit=2".to_string(),
        };
        let page: Value = app.get_json(&path).await;
        for item in page["items"].as_array().expect("items") {
            seen.push(item["id"].as_str().expect("id").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ids, "pages list every letter once, oldest first");
}

async fn another_tenants_letter_is_not_found(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let letter = app.deposit().await;
    let letter_id = letter["id"].as_str().expect("id");
    let evidence_id = letter["evidence"][0]["id"].as_str().expect("evidence id");
    let other = app.new_api_key("Autre Cabinet").await;
    for path in [
        format!("/v1/letters/{letter_id}"),
        format!("/v1/letters/{letter_id}/evidence"),
        format!("/v1/letters/{letter_id}/evidence/{evidence_id}.json"),
    ] {
        let response = app.get_as(&other, &path).await;
        assert_eq!(response.status(), 404, "{path}");
        let problem: Value = response.json().await.expect("problem");
        assert_eq!(problem["type"], "urn:recommande:problem:not-found");
    }
    let listed: Value = app
        .get_as(&other, "/v1/letters")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["items"].as_array().expect("items").len(), 0);
    // Nor can the other tenant use this tenant's document.
    let document = letter["documents"][0]["id"].as_str().expect("doc");
    let response = app
        .post_letter_with(&other, &letter_body(document), None)
        .await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("problem");
    assert_eq!(problem["type"], "urn:recommande:problem:unknown-document");
}

async fn a_retried_post_with_the_same_idempotency_key_returns_the_original_letter(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    let body = letter_body(&document);
    let first = app
        .post_letter_with(&app.api_key, &body, Some("retry-42"))
        .await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("json");
    let second = app
        .post_letter_with(&app.api_key, &body, Some("retry-42"))
        .await;
    assert_eq!(second.status(), 201);
    assert_eq!(
        header_bytes(&second, "idempotent-replayed"),
        Some(&b"true"[..])
    );
    let second: Value = second.json().await.expect("json");
    assert_eq!(first, second);
    assert_eq!(app.letter_count().await, 1);

    let mut changed = body.clone();
    changed["reference"] = Value::String("OTHER".into());
    let third = app
        .post_letter_with(&app.api_key, &changed, Some("retry-42"))
        .await;
    assert_eq!(third.status(), 422);
    let problem: Value = third.json().await.expect("problem");
    assert_eq!(
        problem["type"],
        "urn:recommande:problem:idempotency-key-reused"
    );
    assert_eq!(app.letter_count().await, 1);

    // Concurrent retries of one request: one letter, every answer the same.
    let requests = (0..6).map(|_| {
        app.client
            .post(app.url("/v1/letters"))
            .bearer_auth(&app.api_key)
            .header("Idempotency-Key", "burst-7")
            .json(&body)
            .send()
    });
    let responses: Vec<reqwest::Response> = futures_join(requests)
        .await
        .into_iter()
        .map(|r| r.expect("POST"))
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for r in responses {
        let status = r.status();
        let value: Value = r.json().await.expect("json");
        if status == 201 {
            ids.insert(value["id"].as_str().expect("id").to_string());
        } else {
            assert_eq!(status, 409, "{value}");
        }
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(app.letter_count().await, 2);
}

async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

async fn uploading_the_same_bytes_twice_gives_the_same_document(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let pdf = crate::helpers::sample_pdf("same bytes");
    let first = app
        .upload_with_key(&app.api_key, "a.pdf", pdf.clone())
        .await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("json");
    let second = app
        .upload_with_key(&app.api_key, "b.pdf", pdf.clone())
        .await;
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.expect("json");
    assert_eq!(first["id"], second["id"]);
    assert_eq!(first["media_type"], "application/pdf");
    use sha2::Digest;
    assert_eq!(first["sha256"], hex::encode(sha2::Sha256::digest(&pdf)));
    assert_eq!(first["size"], pdf.len());
}

async fn evidence_sequence_numbers_increase_across_letters(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let mut last = 0;
    for _ in 0..3 {
        let letter = app.deposit().await;
        let id = letter["id"].as_str().expect("id");
        let list: Value = app.get_json(&format!("/v1/letters/{id}/evidence")).await;
        let seq = list["evidence"][0]["sequence"].as_i64().expect("sequence");
        assert!(seq > last, "{seq} after {last}");
        last = seq;
    }
}

async fn evidence_rows_cannot_be_updated_or_deleted(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    app.deposit().await;
    let attempts = [
        "UPDATE evidence SET event = 'ConsignmentAcceptance'",
        "DELETE FROM evidence",
    ];
    for sql in attempts {
        let result = app.execute_sql(sql).await;
        let err = result.expect_err("the database refuses to change evidence");
        assert!(err.to_string().contains("append-only"), "{err}");
    }
}
