//! Conditional GET on the reproducible files: evidence bytes, PDF proofs and bundles carry
//! an `ETag` (the SHA-256 of their bytes, or of the bundle's manifest), and a client that
//! sends it back in `If-None-Match` gets `304 Not Modified` without the bytes. JSON answers
//! are compressed when the client asks (gzip or br), those files never; list pages say
//! whether another page exists (`has_more`).

use sha2::{Digest, Sha256};

use crate::helpers::{Engine, TestApp, spawn_app};

crate::on_both_engines!(
    reproducible_files_answer_304_to_their_etag,
    json_answers_are_compressed_on_request_and_stored_bytes_never
);

async fn get_with(app: &TestApp, path: &str, if_none_match: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path)).bearer_auth(&app.api_key);
    if let Some(tag) = if_none_match {
        request = request.header("If-None-Match", tag);
    }
    request.send().await.expect("GET")
}

async fn reproducible_files_answer_304_to_their_etag(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let letter = app.deposit().await;
    let id = letter["id"].as_str().expect("id");
    let evidence_id = letter["evidence"][0]["id"].as_str().expect("evidence id");
    for (path, cache_control) in [
        (
            format!("/v1/letters/{id}/evidence/{evidence_id}.json"),
            "private, max-age=31536000, immutable",
        ),
        (
            format!("/v1/letters/{id}/evidence/{evidence_id}.p7s"),
            "private, max-age=31536000, immutable",
        ),
        (
            format!("/v1/letters/{id}/proofs/deposit.pdf"),
            "private, no-cache",
        ),
    ] {
        let full = get_with(&app, &path, None).await;
        assert_eq!(full.status(), 200, "{path}");
        let etag = full.headers()["etag"].to_str().expect("ascii").to_string();
        assert_eq!(full.headers()["cache-control"], cache_control, "{path}");
        let bytes = full.bytes().await.expect("body");
        // The tag is the SHA-256 of the bytes, computed here independently.
        assert_eq!(
            etag,
            format!("\"{}\"", hex::encode(Sha256::digest(&bytes))),
            "{path}"
        );
        let again = get_with(&app, &path, Some(&etag)).await;
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(again.headers()["etag"], etag.as_str());
        assert!(again.bytes().await.expect("body").is_empty(), "{path}");
        let weak = get_with(&app, &path, Some(&format!("\"stale\", W/{etag}"))).await;
        assert_eq!(weak.status(), 304, "{path}: weak comparison");
        let stale = get_with(&app, &path, Some("\"stale\"")).await;
        assert_eq!(stale.status(), 200, "{path}");
        assert_eq!(stale.bytes().await.expect("body"), bytes, "{path}");
    }

    let path = format!("/v1/letters/{id}/bundle.zip");
    let full = get_with(&app, &path, None).await;
    assert_eq!(full.status(), 200);
    let etag = full.headers()["etag"].to_str().expect("ascii").to_string();
    assert_eq!(full.headers()["cache-control"], "private, no-cache");
    let first = full.bytes().await.expect("bundle");
    let again = get_with(&app, &path, Some(&etag)).await;
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.expect("body").is_empty());
    // Another download without the tag: the same tag and the same bytes.
    let second = get_with(&app, &path, None).await;
    assert_eq!(second.headers()["etag"], etag.as_str());
    assert_eq!(second.bytes().await.expect("bundle"), first);
    // Someone else's tag: another account does not learn the letter exists.
    let other = app.new_api_key("Autre Cabinet").await;
    let foreign = app
        .client
        .get(app.url(&path))
        .bearer_auth(&other)
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(foreign.status(), 404);
}

async fn get_encoded(app: &TestApp, path: &str, accept: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path)).bearer_auth(&app.api_key);
    if let Some(accept) = accept {
        request = request.header("Accept-Encoding", accept);
    }
    request.send().await.expect("GET")
}

async fn json_answers_are_compressed_on_request_and_stored_bytes_never(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let first = app.deposit().await;
    app.deposit().await;
    let id = first["id"].as_str().expect("id");
    let plain = get_encoded(&app, "/v1/openapi.json", None).await;
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.expect("body");
    assert!(plain.len() > 1024);

    let gzip = get_encoded(&app, "/v1/openapi.json", Some("gzip")).await;
    assert_eq!(gzip.headers()["content-encoding"], "gzip");
    assert!(
        gzip.headers()["vary"]
            .to_str()
            .expect("ascii")
            .to_ascii_lowercase()
            .contains("accept-encoding")
    );
    let packed = gzip.bytes().await.expect("body");
    assert!(
        packed.len() * 4 < plain.len(),
        "{} of {}",
        packed.len(),
        plain.len()
    );
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&packed[..]),
        &mut unpacked,
    )
    .expect("gunzip");
    assert_eq!(unpacked, plain);

    let br = get_encoded(&app, "/v1/openapi.json", Some("gzip;q=0.5, br")).await;
    assert_eq!(br.headers()["content-encoding"], "br", "br is preferred");
    let packed = br.bytes().await.expect("body");
    let mut unpacked = Vec::new();
    brotli_decompressor::BrotliDecompress(&mut &packed[..], &mut unpacked).expect("unbrotli");
    assert_eq!(unpacked, plain);
    let refused = get_encoded(&app, "/v1/openapi.json", Some("gzip;q=0, br;q=0")).await;
    assert!(refused.headers().get("content-encoding").is_none());

    // A problem+json answer is JSON too, but small ones stay as they are.
    let missing = get_encoded(&app, "/v1/letters/nope", Some("gzip")).await;
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().get("content-encoding").is_none());

    // Stored bytes keep their encoding: the ETag names them.
    let evidence_id = first["evidence"][0]["id"].as_str().expect("evidence id");
    for path in [
        format!("/v1/letters/{id}/evidence/{evidence_id}.json"),
        format!("/v1/letters/{id}/proofs/deposit.pdf"),
        format!("/v1/letters/{id}/bundle.zip"),
    ] {
        let answer = get_encoded(&app, &path, Some("gzip, br")).await;
        assert_eq!(answer.status(), 200, "{path}");
        assert!(answer.headers().get("etag").is_some(), "{path}");
        assert!(
            answer.headers().get("content-encoding").is_none(),
            "{path} was compressed"
        );
    }

    // Pages say whether another one follows.
    let page = app.get_json("/v1/letters?limit=1").await;
    assert_eq!(page["has_more"], true);
    let cursor = page["next_cursor"].as_str().expect("a cursor");
    let last = app
        .get_json(&format!("/v1/letters?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(last["has_more"], false);
    assert!(last.get("next_cursor").is_none());
    assert_eq!(last["items"].as_array().expect("items").len(), 1);
}
