//! The archive audit passes on a healthy archive and names every corruption planted in the
//! storage: a flipped byte in a stored document, a rewritten evidence row, a deleted row, and
//! two rows whose order was swapped — on SQLite and PostgreSQL.

use recommande::app::audit::{AuditFailure, AuditScope, run};

use crate::helpers::{Engine, TestApp, spawn_app};

crate::on_both_engines!(the_audit_passes_then_names_every_planted_corruption);

/// Runs SQL with the append-only triggers switched off, as an attacker with database access.
async fn tamper(app: &TestApp, engine: Engine, statements: &[&str]) {
    let mut sql = Vec::new();
    match engine {
        Engine::Sqlite => {
            sql.push("PRAGMA foreign_keys = OFF".to_string());
            sql.push("DROP TRIGGER IF EXISTS evidence_is_append_only_update".to_string());
            sql.push("DROP TRIGGER IF EXISTS evidence_is_append_only_delete".to_string());
        }
        // Replica mode skips every trigger, foreign keys included (needs a superuser).
        Engine::Postgres => sql.push("SET session_replication_role = replica".to_string()),
    }
    sql.extend(statements.iter().map(|s| s.to_string()));
    app.execute_sql(&sql.join(";\n")).await.expect("tamper");
}

fn named<'a>(failures: &'a [AuditFailure], check: &str) -> Vec<&'a AuditFailure> {
    failures.iter().filter(|f| f.check == check).collect()
}

async fn the_audit_passes_then_names_every_planted_corruption(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let mut letters = Vec::new();
    for _ in 0..4 {
        letters.push(app.deposit().await["id"].as_str().expect("id").to_string());
    }
    // Notifications (to .eml files): every letter gets a second record.
    app.service.lifecycle.run_due_jobs(100).await.expect("jobs");
    app.service.log.issue_head().await.expect("tree head");

    let healthy = run(&app.service, AuditScope::All).await.expect("audit");
    assert!(healthy.report.passed, "{:#?}", healthy.report.failures);
    assert_eq!(healthy.report.letters_checked, 4);
    assert_eq!(healthy.report.evidence_checked, 8);
    assert_eq!(healthy.report.log_leaves_checked, 8);
    assert_eq!(healthy.report.tree_heads_checked, 1);
    assert!(healthy.report.documents_checked >= 1);
    // The report is sealed and timestamped: plain openssl accepts it.
    let dir = tempfile::tempdir().expect("dir");
    let (report, seal, token, roots) = (
        dir.path().join("audit.json"),
        dir.path().join("audit.p7s"),
        dir.path().join("audit.tsr"),
        dir.path().join("roots.pem"),
    );
    std::fs::write(&report, &healthy.bytes).expect("write");
    std::fs::write(&seal, &healthy.seal).expect("write");
    std::fs::write(&token, &healthy.timestamp_token).expect("write");
    std::fs::write(&roots, app.service.anchors_pem.as_bytes()).expect("write");
    let (ok, out) = crate::helpers::openssl_cms_verify(&report, &seal, &roots);
    assert!(ok, "{out}");
    let (ok, out) = crate::helpers::openssl_ts_verify(&report, &token, &roots);
    assert!(ok, "{out}");
    let sampled = run(&app.service, AuditScope::Sample(2))
        .await
        .expect("audit");
    assert!(sampled.report.passed);
    assert_eq!(sampled.report.letters_checked, 2);

    // 1. A flipped byte in a stored document.
    let doc = app
        .service
        .storage
        .letter_documents(&letters[0])
        .await
        .expect("docs")[0]
        .clone();
    let path = app.service.content.path_of(&doc.sha256);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[10] ^= 0x01;
    std::fs::write(&path, &bytes).expect("write");

    // 2. A rewritten evidence row (record changed, digest column updated to match).
    let rows = |i: usize| {
        let app = &app;
        let id = letters[i].clone();
        async move { app.evidence_of(&id).await }
    };
    let rewritten = rows(1).await[1].clone();
    let mut record = String::from_utf8(rewritten.record.clone()).expect("utf-8");
    record = record.replacen("\"attempt\":", "\"attempt\":1", 1);
    let new_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(record.as_bytes()));
    let record_hex = hex::encode(record.as_bytes());
    let literal = match engine {
        Engine::Sqlite => format!("X'{record_hex}'"),
        Engine::Postgres => format!("'\\x{record_hex}'::bytea"),
    };
    // 3. A deleted row (the last record of letter 2).
    let deleted = rows(2).await[1].clone();
    // 4. Two rows of letter 3 whose order is swapped (contents exchanged between seq slots).
    let swapped = rows(3).await;
    let (a, b) = (&swapped[0], &swapped[1]);
    let swap = |from: &recommande::infra::storage::EvidenceRow,
                to: &recommande::infra::storage::EvidenceRow| {
        let blob = |v: &[u8]| match engine {
            Engine::Sqlite => format!("X'{}'", hex::encode(v)),
            Engine::Postgres => format!("'\\x{}'::bytea", hex::encode(v)),
        };
        format!(
            "UPDATE evidence SET event = '{}', record = {}, record_sha256 = '{}', seal = {}, timestamp_token = {} WHERE id = '{}'",
            from.event,
            blob(&from.record),
            from.record_sha256,
            blob(&from.seal),
            blob(&from.timestamp_token),
            to.id
        )
    };
    tamper(
        &app,
        engine,
        &[
            &format!(
                "UPDATE evidence SET record = {literal}, record_sha256 = '{new_sha}' WHERE id = '{}'",
                rewritten.id
            ),
            &format!("DELETE FROM evidence WHERE id = '{}'", deleted.id),
            &swap(a, b),
            &swap(b, a),
        ],
    )
    .await;

    let audit = run(&app.service, AuditScope::All).await.expect("audit");
    let failures = &audit.report.failures;
    assert!(!audit.report.passed);

    let digest = named(failures, "document_digest");
    assert_eq!(digest.len(), 1, "{failures:#?}");
    assert_eq!(digest[0].document_id.as_deref(), Some(doc.id.as_str()));

    assert!(
        failures.iter().any(|f| f.check == "seal_signature"
            && f.evidence_id.as_deref() == Some(rewritten.id.as_str())
            && f.letter_id.as_deref() == Some(letters[1].as_str())),
        "rewritten record: {failures:#?}"
    );
    assert!(
        failures.iter().any(|f| f.check == "chain_head"
            && f.letter_id.as_deref() == Some(letters[1].as_str())),
        "the rewritten record no longer matches the chain head: {failures:#?}"
    );
    assert!(
        failures.iter().any(|f| f.check == "log_leaf_evidence"
            && f.evidence_id.as_deref() == Some(rewritten.id.as_str())),
        "the log remembers the original digest: {failures:#?}"
    );

    assert!(
        failures.iter().any(|f| f.check == "chain_head"
            && f.letter_id.as_deref() == Some(letters[2].as_str())),
        "deleted row: {failures:#?}"
    );
    assert!(
        failures.iter().any(|f| f.check == "log_leaf_evidence"
            && f.evidence_id.as_deref() == Some(deleted.id.as_str())
            && f.detail.contains("no longer exists")),
        "deleted row in the log: {failures:#?}"
    );

    let swapped_links: Vec<_> = named(failures, "chain_link")
        .into_iter()
        .filter(|f| f.letter_id.as_deref() == Some(letters[3].as_str()))
        .collect();
    assert_eq!(swapped_links.len(), 2, "both swapped rows: {failures:#?}");

    // Untouched letter 0's evidence is not blamed (only its document).
    assert!(
        !failures
            .iter()
            .any(|f| f.area == "evidence" && f.letter_id.as_deref() == Some(letters[0].as_str())),
        "{failures:#?}"
    );
}
