//! The RFC 3161 endpoint, the trust anchors, health and the OpenAPI document.

use crate::helpers::header_bytes;
use serde_json::Value;

use crate::helpers::{Engine, openssl, path, spawn_app};

crate::on_both_engines!(
    openssl_timestamp_queries_get_replies_that_openssl_verifies,
    a_remote_tsa_client_gets_tokens_from_our_tsa_endpoint,
    a_service_using_a_remote_tsa_seals_evidence_that_openssl_verifies,
    health_and_trust_anchors_need_no_key,
    the_openapi_document_covers_every_route,
);

async fn openssl_timestamp_queries_get_replies_that_openssl_verifies(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("contrat.txt");
    std::fs::write(&data, "mise en demeure du 23 novembre 2026").expect("write");
    let roots = dir.path().join("roots.pem");
    let pem = reqwest::get(app.url("/v1/trust/roots.pem"))
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    std::fs::write(&roots, pem).expect("write");
    for (name, extra) in [
        ("with-nonce", vec!["-cert"]),
        ("no-nonce", vec!["-no_nonce", "-cert"]),
    ] {
        let query = dir.path().join(format!("{name}.tsq"));
        let mut args = vec![
            "ts",
            "-query",
            "-data",
            path(&data),
            "-sha256",
            "-out",
            path(&query),
        ];
        args.extend(extra);
        let (ok, out) = openssl(&args);
        assert!(ok, "{out}");
        let response = app
            .client
            .post(app.url("/tsa"))
            .header("content-type", "application/timestamp-query")
            .body(std::fs::read(&query).expect("query"))
            .send()
            .await
            .expect("POST /tsa");
        assert_eq!(response.status(), 200);
        assert_eq!(
            header_bytes(&response, "content-type"),
            Some(&b"application/timestamp-reply"[..])
        );
        let reply = dir.path().join(format!("{name}.tsr"));
        std::fs::write(&reply, response.bytes().await.expect("bytes")).expect("write");
        let (ok, out) = openssl(&[
            "ts",
            "-verify",
            "-queryfile",
            path(&query),
            "-in",
            path(&reply),
            "-CAfile",
            path(&roots),
        ]);
        assert!(ok && out.contains("Verification: OK"), "{name}: {out}");
        let (ok, out) = openssl(&["ts", "-reply", "-in", path(&reply), "-text"]);
        assert!(ok && out.contains("Status: Granted"), "{out}");
        assert!(
            out.contains(recommande::config::DEVELOPMENT_TSA_POLICY_OID),
            "{out}"
        );
    }
    // Wrong content type: a problem, not a reply.
    let response = app
        .client
        .post(app.url("/tsa"))
        .header("content-type", "application/octet-stream")
        .body(vec![0x30, 0x00])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 415);
    // Garbage with the right type: a rejection TimeStampResp that openssl can read.
    let response = app
        .client
        .post(app.url("/tsa"))
        .header("content-type", "application/timestamp-query")
        .body(b"not DER at all".to_vec())
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    let reply = dir.path().join("garbage.tsr");
    std::fs::write(&reply, response.bytes().await.expect("bytes")).expect("write");
    let (_, out) = openssl(&["ts", "-reply", "-in", path(&reply), "-text"]);
    assert!(
        out.contains("Rejected") || out.contains("rejection"),
        "{out}"
    );
}

async fn a_remote_tsa_client_gets_tokens_from_our_tsa_endpoint(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let client = recommande::infra::tsa_client::RemoteTsa::new(
        &app.url("/tsa"),
        None,
        std::time::Duration::from_secs(5),
    )
    .expect("client");
    use sha2::Digest;
    let digest: [u8; 32] = sha2::Sha256::digest(b"payload").into();
    let token = client.timestamp_sha256(digest).await.expect("token");
    let parsed = recommande::core::timestamp::ParsedToken::parse(&token).expect("parse");
    parsed.check_imprint(b"payload").expect("imprint");
    assert!(parsed.check_imprint(b"other").is_err());
}

async fn a_service_using_a_remote_tsa_seals_evidence_that_openssl_verifies(engine: Engine) {
    // A first instance serves /tsa; a second one is configured to timestamp through it.
    let Some(tsa_app) = spawn_app(engine).await else {
        return;
    };
    let roots = tsa_app.dir.path().join("pki").join("root.pem");
    let tsa_url = tsa_app.url("/tsa");
    let Some(app) = crate::helpers::spawn_app_with(
        engine,
        std::sync::Arc::new(recommande::core::clock::SystemClock),
        |s| {
            s.timestamp.mode = recommande::config::TimestampMode::Remote { url: tsa_url };
            s.timestamp.roots = Some(roots);
        },
    )
    .await
    else {
        return;
    };
    assert!(
        app.service.tsa.is_none(),
        "the embedded TSA is off in remote mode"
    );
    let letter = app.deposit().await;
    let dir = tempfile::tempdir().expect("dir");
    let files = app
        .download_evidence(
            letter["id"].as_str().expect("id"),
            letter["evidence"][0]["id"].as_str().expect("evidence"),
            dir.path(),
        )
        .await;
    let (ok, out) = crate::helpers::openssl_ts_verify(&files.json, &files.tsr, &files.roots);
    assert!(ok, "{out}");
    let (ok, out) = crate::helpers::openssl_cms_verify(&files.json, &files.p7s, &files.roots);
    assert!(ok, "{out}");
    let response = app
        .client
        .post(app.url("/tsa"))
        .header("content-type", "application/timestamp-query")
        .body(vec![0x30, 0x00])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 404);
}

async fn health_and_trust_anchors_need_no_key(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let health: Value = reqwest::get(app.url("/healthz"))
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok");
    assert_eq!(
        health["database"],
        match engine {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    );
    let response = reqwest::get(app.url("/v1/trust/roots.pem"))
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    let pem = response.text().await.expect("text");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("roots.pem");
    std::fs::write(&file, &pem).expect("write");
    let (ok, out) = openssl(&["x509", "-in", path(&file), "-noout", "-subject"]);
    assert!(ok && out.contains("non-qualified"), "{out}");
}

async fn the_openapi_document_covers_every_route(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let doc: Value = reqwest::get(app.url("/v1/openapi.json"))
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let paths = doc["paths"].as_object().expect("paths");
    for (route, method) in [
        ("/healthz", "get"),
        ("/tsa", "post"),
        ("/v1/trust/roots.pem", "get"),
        ("/v1/openapi.json", "get"),
        ("/v1/documents", "post"),
        ("/v1/letters", "post"),
        ("/v1/letters", "get"),
        ("/v1/letters/{id}", "get"),
        ("/v1/letters/{id}/evidence", "get"),
        ("/v1/letters/{id}/evidence/{file}", "get"),
        ("/v1/letters/{id}/bundle.zip", "get"),
        ("/v1/recipient/{token}", "get"),
        ("/v1/recipient/{token}/otp", "post"),
        ("/v1/recipient/{token}/session", "post"),
        ("/v1/recipient/{token}/accept", "post"),
        ("/v1/recipient/{token}/refuse", "post"),
        ("/v1/recipient/{token}/documents/{document_id}", "get"),
        ("/v1/recipient/{token}/evidence/{file}", "get"),
        ("/v1/bounces", "post"),
        ("/v1/consents", "post"),
        ("/v1/consents", "get"),
        ("/v1/consents/{id}", "get"),
        ("/v1/consents/{id}", "delete"),
        ("/v1/templates", "post"),
        ("/v1/templates", "get"),
        ("/v1/templates/{id}", "get"),
        ("/v1/webhooks", "post"),
        ("/v1/webhooks", "get"),
        ("/v1/webhooks/{id}", "get"),
        ("/v1/webhooks/{id}", "delete"),
        ("/v1/webhooks/{id}/deliveries", "get"),
        ("/v1/letters/{id}/proofs/{file}", "get"),
        ("/v1/log/tree-heads/latest", "get"),
        ("/v1/log/tree-heads/{size}", "get"),
        ("/v1/log/proofs/inclusion", "get"),
        ("/v1/log/proofs/consistency", "get"),
        ("/v1/verify/{letter_id}", "get"),
    ] {
        assert!(
            paths.get(route).and_then(|p| p.get(method)).is_some(),
            "{method} {route} missing"
        );
    }
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    // The collection composer's input and summary, for `compose` in POST /v1/letters.
    for schema in ["ComposeBody", "CompositionSummary", "Block", "TemplateView"] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} missing"
        );
    }
}
