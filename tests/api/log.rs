//! The transparency log through its public endpoints: signed tree heads that openssl
//! accepts, inclusion proofs for every evidence record, consistency proofs between heads,
//! precise errors, and tables that refuse to be rewritten.

use base64::Engine;
use recommande::core::log::{ConsistencyProof, InclusionProof, PublishedTreeHead, root_of};
use serde_json::Value;

use crate::helpers::{Engine as Db, TestApp, openssl_cms_verify, openssl_ts_verify, spawn_app};

crate::on_both_engines!(the_log_proves_inclusion_and_only_grows);

async fn latest(app: &TestApp) -> PublishedTreeHead {
    let response = app.get_anon("/v1/log/tree-heads/latest").await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

async fn the_log_proves_inclusion_and_only_grows(engine: Db) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    // An empty log has no head yet.
    let response = app.get_anon("/v1/log/tree-heads/latest").await;
    assert_eq!(response.status(), 404);

    let mut letters = Vec::new();
    for _ in 0..3 {
        letters.push(app.deposit().await["id"].as_str().expect("id").to_string());
    }
    let first = app.service.log.issue_head().await.expect("head");
    assert_eq!(first.tree_size, 3);
    let old = latest(&app).await;
    let (old_head, _) = old.verify(&app.service.anchors).expect("the head verifies");
    assert_eq!(old_head.tree_size, 3);

    // The head's seal and token pass plain openssl too.
    let dir = tempfile::tempdir().expect("dir");
    let b64 = base64::engine::general_purpose::STANDARD;
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, b64.decode(text).expect("base64")).expect("write");
        path
    };
    let head = write("head.json", &old.head);
    let seal = write("head.p7s", &old.seal);
    let token = write("head.tsr", &old.timestamp_token);
    let roots = dir.path().join("roots.pem");
    std::fs::write(&roots, app.service.anchors_pem.as_bytes()).expect("roots");
    let (ok, out) = openssl_cms_verify(&head, &seal, &roots);
    assert!(ok, "openssl cms: {out}");
    let (ok, out) = openssl_ts_verify(&head, &token, &roots);
    assert!(ok, "openssl ts: {out}");

    // The log grows: two more letters, a new head.
    for _ in 0..2 {
        letters.push(app.deposit().await["id"].as_str().expect("id").to_string());
    }
    app.service.log.issue_head().await.expect("head");
    let new = latest(&app).await;
    let (new_head, _) = new.verify(&app.service.anchors).expect("verifies");
    assert_eq!(new_head.tree_size, 5);
    let by_size: PublishedTreeHead = app
        .get_anon("/v1/log/tree-heads/3")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(by_size, old, "old heads stay available by size");

    // Every evidence record is included in the new head, and in the old one when it was there.
    let new_root = root_of(&new_head).expect("root");
    let old_root = root_of(&old_head).expect("root");
    for (i, id) in letters.iter().enumerate() {
        let rows = app.evidence_of(id).await;
        let sha = &rows[0].record_sha256;
        let proof: InclusionProof = app
            .get_anon(&format!("/v1/log/proofs/inclusion?leaf={sha}&size=5"))
            .await
            .json()
            .await
            .expect("json");
        assert!(proof.verify(&new_root), "letter {i} in the tree of 5");
        assert!(!proof.verify(&old_root), "not against another root");
        let response = app
            .get_anon(&format!("/v1/log/proofs/inclusion?leaf={sha}&size=3"))
            .await;
        if i < 3 {
            let proof: InclusionProof = response.json().await.expect("json");
            assert!(proof.verify(&old_root), "letter {i} in the tree of 3");
        } else {
            assert_eq!(response.status(), 404, "letter {i} came after the old head");
        }
    }

    // The new head extends the old one: the consistency proof holds, and not for a forgery.
    let proof: ConsistencyProof = app
        .get_anon("/v1/log/proofs/consistency?from=3&to=5")
        .await
        .json()
        .await
        .expect("json");
    assert!(proof.verify(&old_root, &new_root));
    let mut forged = old_root;
    forged[0] ^= 1;
    assert!(!proof.verify(&forged, &new_root));

    // A witness's check with the CLI: online, offline, and against a forged head.
    let old_file = dir.path().join("old-head.json");
    let new_file = dir.path().join("new-head.json");
    let proof_file = dir.path().join("proof.json");
    std::fs::write(&old_file, serde_json::to_vec(&old).expect("json")).expect("write");
    std::fs::write(&new_file, serde_json::to_vec(&new).expect("json")).expect("write");
    std::fs::write(&proof_file, serde_json::to_vec(&proof).expect("json")).expect("write");
    let mut forged_head = new.clone();
    forged_head.root_hash = hex::encode(forged);
    let forged_file = dir.path().join("forged-head.json");
    std::fs::write(
        &forged_file,
        serde_json::to_vec(&forged_head).expect("json"),
    )
    .expect("write");
    let server = app.address.clone();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_recommande"))
                .args(&args)
                .output()
                .expect("run the CLI");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        })
    };
    let path = |p: &std::path::Path| p.to_str().expect("utf-8 path").to_string();
    let base = |old: &std::path::Path, new: &std::path::Path| {
        vec![
            "log".to_string(),
            "verify-consistency".into(),
            path(old),
            path(new),
            "--trust".into(),
            path(&roots),
        ]
    };
    let mut online = base(&old_file, &new_file);
    online.extend(["--server".to_string(), server.clone()]);
    let (code, out) = run(online).await.expect("join");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("CONSISTENT"), "{out}");
    let mut offline = base(&old_file, &new_file);
    offline.extend(["--proof".to_string(), path(&proof_file)]);
    let (code, out) = run(offline).await.expect("join");
    assert_eq!(code, Some(0), "{out}");
    let mut forged_run = base(&old_file, &forged_file);
    forged_run.extend(["--proof".to_string(), path(&proof_file)]);
    let (code, out) = run(forged_run).await.expect("join");
    assert_eq!(
        code,
        Some(1),
        "a head whose root differs from the sealed one: {out}"
    );
    // A bundle's log/ folder, unpacked, is a head the CLI reads: a judge compares it with a
    // head kept earlier by a witness.
    let unpacked = dir.path().join("bundle");
    let bundle = crate::bundle::bundle_bytes(&app, &letters[4]).await;
    crate::bundle::unzip(&bundle, &unpacked);
    let log_dir = unpacked.join("log");
    let mut from_bundle = base(&old_file, &log_dir);
    from_bundle.extend(["--server".to_string(), server.clone()]);
    let (code, out) = run(from_bundle).await.expect("join");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("CONSISTENT"), "{out}");
    let mut from_file = base(&old_file, &log_dir.join("tree-head.json"));
    from_file.extend(["--proof".to_string(), path(&proof_file)]);
    let (code, out) = run(from_file).await.expect("join");
    assert_eq!(code, Some(0), "the bundle's head is the new one: {out}");
    let mut backwards = base(&new_file, &old_file);
    backwards.extend(["--server".to_string(), server]);
    let (code, out) = run(backwards).await.expect("join");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("fewer leaves"), "{out}");

    // Precise errors.
    for (path, status, field) in [
        ("/v1/log/proofs/inclusion", 400, Some("leaf")),
        ("/v1/log/proofs/inclusion?leaf=xyz", 400, Some("leaf")),
        (
            "/v1/log/proofs/inclusion?leaf=00&size=-1",
            400,
            Some("leaf"),
        ),
        (
            "/v1/log/proofs/inclusion?leaf=0000000000000000000000000000000000000000000000000000000000000000",
            404,
            None,
        ),
        ("/v1/log/proofs/consistency?from=3", 400, Some("to")),
        ("/v1/log/proofs/consistency?from=4&to=3", 400, Some("from")),
        ("/v1/log/proofs/consistency?from=3&to=99", 404, None),
        ("/v1/log/tree-heads/4", 404, None),
        ("/v1/log/tree-heads/abc", 400, Some("size")),
    ] {
        let response = app.get_anon(path).await;
        assert_eq!(response.status(), status, "{path}");
        let problem: Value = response.json().await.expect("problem");
        if let Some(field) = field {
            let fields: Vec<&str> = problem["errors"]
                .as_array()
                .map(|a| a.iter().filter_map(|e| e["field"].as_str()).collect())
                .unwrap_or_default();
            assert!(fields.contains(&field), "{path}: {problem}");
        }
    }

    // The tables refuse to be rewritten, even by someone with database access.
    for statement in [
        "UPDATE log_leaves SET record_sha256 = 'x' WHERE position = 0",
        "DELETE FROM log_nodes WHERE level = 0",
        "UPDATE tree_heads SET root_hash = 'x'",
    ] {
        let err = app
            .execute_sql(statement)
            .await
            .expect_err("the database refuses to rewrite the log");
        assert!(err.to_string().contains("append-only"), "{err}");
    }
}
