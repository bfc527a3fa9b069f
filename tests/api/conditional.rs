//! Conditional GET on the reproducible files: evidence bytes, PDF proofs and bundles carry
//! an `ETag` (the SHA-256 of their bytes, or of the bundle's manifest), and a client that
//! sends it back in `If-None-Match` gets `304 Not Modified` without the bytes.

use sha2::{Digest, Sha256};

use crate::helpers::{Engine, TestApp, spawn_app};

crate::on_both_engines!(reproducible_files_answer_304_to_their_etag);

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
