//! Encryption at rest (issue 6 §1): documents on disk are ciphertext, every reader (recipient
//! download, bundle, archive audit) still gets the exact bytes, altered ciphertext is caught,
//! master keys rotate, and plaintext files of older versions are encrypted in place — on
//! SQLite and PostgreSQL.

use crate::helpers::header_bytes;
use std::io::Read;
use std::sync::Arc;

use recommande::app::audit::{AuditScope, run};
use recommande::core::clock::{SystemClock, TestClock};
use recommande::infra::content::{ContentError, ContentStore};
use recommande::infra::keys::{Keyring, generate_key};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{Engine, TestApp, letter_body, sample_pdf, settings_for, spawn_app_with};
use crate::smtp::{SmtpSink, body_text, link_token};

crate::on_both_engines!(
    documents_are_ciphertext_on_disk_and_every_reader_gets_the_exact_bytes,
    master_keys_rotate_and_an_unconfigured_key_stops_the_start,
    plaintext_documents_of_older_versions_are_encrypted_in_place,
    content_is_destroyed_only_after_retention_without_hold_and_shared_bytes_wait_for_every_letter,
);

/// A marker that appears in the document's plaintext and must never appear on disk.
pub(crate) const MARKER: &str = "MARQUEUR-CONFIDENTIEL-4821";

/// Deposits a letter whose document holds [`MARKER`], gets it accepted, and returns the letter
/// id, the plaintext, and the recipient's download URL with its session.
pub(crate) async fn accepted_marker_letter(
    app: &TestApp,
    sink: &SmtpSink,
) -> (String, Vec<u8>, String, String) {
    let pdf = sample_pdf(MARKER);
    let uploaded: Value = app
        .upload_with_key(&app.api_key, "mise-en-demeure.pdf", pdf.clone())
        .await
        .json()
        .await
        .expect("json");
    let document = uploaded["id"].as_str().expect("id").to_string();
    let letter: Value = app
        .post_letter(&letter_body(&document))
        .await
        .json()
        .await
        .expect("json");
    let id = letter["id"].as_str().expect("id").to_string();
    app.service.lifecycle.run_due_jobs(10).await.expect("jobs");
    let mails = sink.wait_for(1).await;
    let token = link_token(&body_text(&mails[0]));
    let session = app.session_from_mail(sink, &token, 2).await;
    let accepted = app.recipient_post_with(&token, "accept", &session).await;
    assert_eq!(accepted.status(), 200);
    let download = app.url(&format!("/v1/recipient/{token}/documents/{document}"));
    (id, pdf, download, session)
}

fn bundle_document(zip: &[u8]) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("zip");
    let name = archive
        .file_names()
        .filter_map(Result::ok)
        .find(|n| n.starts_with("documents/"))
        .expect("a document entry")
        .to_string();
    let mut bytes = Vec::new();
    archive
        .by_name(&name)
        .expect("entry")
        .read_to_end(&mut bytes)
        .expect("read");
    bytes
}

async fn documents_are_ciphertext_on_disk_and_every_reader_gets_the_exact_bytes(engine: Engine) {
    let Some((sink, app)) = crate::helpers::spawn_app_with_sink(engine).await else {
        return;
    };
    let (id, pdf, download, session) = accepted_marker_letter(&app, &sink).await;
    let sha256 = hex::encode(Sha256::digest(&pdf));
    let path = app.service.content.path_of(&sha256);
    let on_disk = std::fs::read(&path).expect("stored file");
    assert!(on_disk.starts_with(b"RCMDENC\x01"));
    assert!(
        !on_disk.windows(5).any(|w| w == b"%PDF-"),
        "PDF magic on disk"
    );
    assert!(
        !on_disk
            .windows(MARKER.len())
            .any(|w| w == MARKER.as_bytes()),
        "plaintext marker on disk"
    );
    // No plaintext left anywhere under the data directory (temporary files, bundles).
    let mut stack = vec![app.dir.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.to_string_lossy().contains("test.db") {
                let bytes = std::fs::read(&p).expect("file");
                assert!(
                    !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
                    "plaintext in {}",
                    p.display()
                );
            }
        }
    }

    // The recipient's download, the bundle and the audit all read the exact bytes.
    let got = app
        .client
        .get(&download)
        .bearer_auth(&session)
        .send()
        .await
        .expect("download");
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.expect("bytes").to_vec(), pdf);
    let zip = crate::bundle::bundle_bytes(&app, &id).await;
    assert_eq!(bundle_document(&zip), pdf);
    let audit = run(&app.service, AuditScope::All).await.expect("audit");
    assert!(audit.report.passed, "{:#?}", audit.report.failures);

    // One flipped ciphertext byte: the download is cut short, the bundle refused, and the
    // audit names the document.
    let mut altered = on_disk.clone();
    let last = altered.len() - 3;
    altered[last] ^= 0x40;
    std::fs::write(&path, &altered).expect("write");
    let cut = app
        .client
        .get(&download)
        .bearer_auth(&session)
        .send()
        .await
        .expect("download");
    // The document fits in one segment: its failure is known before answering.
    assert_eq!(cut.status(), 500);
    assert_eq!(
        header_bytes(&cut, "content-type"),
        Some(&b"application/problem+json"[..])
    );
    let bundle = app.get(&format!("/v1/letters/{id}/bundle.zip")).await;
    assert_eq!(bundle.status(), 500);
    let audit = run(&app.service, AuditScope::All).await.expect("audit");
    let document_id = app
        .service
        .storage
        .letter_documents(&id)
        .await
        .expect("docs")[0]
        .id
        .clone();
    let failure = audit
        .report
        .failures
        .iter()
        .find(|f| f.check == "document_digest")
        .expect("the audit reports the altered document");
    assert_eq!(failure.document_id.as_deref(), Some(document_id.as_str()));
    assert!(
        failure.detail.contains("authentication"),
        "{}",
        failure.detail
    );
}

async fn master_keys_rotate_and_an_unconfigured_key_stops_the_start(engine: Engine) {
    let keys = tempfile::tempdir().expect("dir");
    let (old, new) = (keys.path().join("old.key"), keys.path().join("new.key"));
    std::fs::write(&old, generate_key("k2026").expect("key")).expect("write");
    std::fs::write(&new, generate_key("k2027").expect("key")).expect("write");
    let old_files = vec![old.clone()];
    let Some(app) = spawn_app_with(engine, Arc::new(SystemClock), |s| {
        s.archive.master_key_files = old_files
    })
    .await
    else {
        return;
    };
    let letter = app.deposit().await;
    let id = letter["id"].as_str().expect("id");
    let doc = app
        .service
        .storage
        .letter_documents(id)
        .await
        .expect("docs")[0]
        .clone();
    let key = app
        .service
        .storage
        .document_key(&doc.sha256)
        .await
        .expect("key");
    assert_eq!(key.expect("key row").master_key_id, "k2026");

    // Only the new key configured: the service refuses to start (not at the first download).
    let mut settings = settings_for(app.dir.path(), &app.database_url);
    settings.archive.master_key_files = vec![new.clone()];
    let refused = recommande::app::service::Service::start(settings.clone(), Arc::new(SystemClock))
        .await
        .err()
        .expect("refused");
    assert!(refused.to_string().contains("k2026"), "{refused}");

    // New key active, old key still there: rewrap, after which the old key can go.
    let store = |files: Vec<std::path::PathBuf>| {
        let keyring = Keyring::load(None, &files, app.dir.path()).expect("keyring");
        ContentStore::open(
            app.dir.path(),
            app.service.storage.clone(),
            Arc::new(keyring),
            Arc::new(SystemClock),
        )
        .expect("store")
    };
    let both = store(vec![new.clone(), old.clone()]);
    let report = recommande::app::archive::rewrap(&both)
        .await
        .expect("rewrap");
    assert_eq!(report.rewrapped, 1);
    assert_eq!(report.active_key_id, "k2027");
    assert_eq!(
        recommande::app::archive::rewrap(&both)
            .await
            .expect("rewrap")
            .rewrapped,
        0,
        "idempotent"
    );
    let only_new = store(vec![new.clone()]);
    only_new.check_master_keys().await.expect("every key known");
    let mut reader = only_new.open_read(&doc.sha256).await.expect("open");
    let mut plain = Vec::new();
    while let Some(chunk) = reader.next_chunk().await.expect("read") {
        plain.extend(chunk);
    }
    assert_eq!(plain, sample_pdf("relance"));
    recommande::app::service::Service::start(settings, Arc::new(SystemClock))
        .await
        .expect("starts with only the new key");
}

async fn plaintext_documents_of_older_versions_are_encrypted_in_place(engine: Engine) {
    let clock = TestClock::at(time::OffsetDateTime::now_utc());
    let Some(app) = spawn_app_with(engine, Arc::new(clock), |_| {}).await else {
        return;
    };
    let content = &app.service.content;
    // One document stored by this version, two plaintext files written the old way (one of
    // them damaged: its bytes do not hash to its name).
    app.upload_pdf().await;
    let old = sample_pdf(MARKER);
    let old_sha = hex::encode(Sha256::digest(&old));
    let old_path = content.path_of(&old_sha);
    std::fs::create_dir_all(old_path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&old_path, &old).expect("write");
    let damaged = sample_pdf("autre");
    let damaged_sha = hex::encode(Sha256::digest(&damaged));
    let damaged_path = content.path_of(&damaged_sha);
    std::fs::create_dir_all(damaged_path.parent().expect("parent")).expect("mkdir");
    let mut damaged_bytes = damaged.clone();
    damaged_bytes[20] ^= 1;
    std::fs::write(&damaged_path, &damaged_bytes).expect("write");
    assert!(matches!(
        content.open_read(&old_sha).await.err(),
        Some(ContentError::NoKey { .. })
    ));

    let report = recommande::app::archive::encrypt_existing(content)
        .await
        .expect("encrypt");
    assert_eq!(report.examined, 3);
    assert_eq!(report.encrypted, 1);
    assert_eq!(report.already_encrypted, 1);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].contains(&damaged_sha));
    assert_eq!(std::fs::read(&damaged_path).expect("read"), damaged_bytes);
    let on_disk = std::fs::read(&old_path).expect("read");
    assert!(on_disk.starts_with(b"RCMDENC\x01"));
    assert!(
        !on_disk
            .windows(MARKER.len())
            .any(|w| w == MARKER.as_bytes())
    );
    let mut reader = content.open_read(&old_sha).await.expect("open");
    let mut plain = Vec::new();
    while let Some(chunk) = reader.next_chunk().await.expect("read") {
        plain.extend(chunk);
    }
    assert_eq!(plain, old);

    // Idempotent: a second run changes nothing.
    let again = recommande::app::archive::encrypt_existing(content)
        .await
        .expect("encrypt");
    assert_eq!((again.encrypted, again.already_encrypted), (0, 2));
    assert_eq!(std::fs::read(&old_path).expect("read"), on_disk);
    assert_eq!(
        std::fs::read_dir(app.dir.path().join("incoming"))
            .expect("incoming")
            .count(),
        0,
        "no temporary file left"
    );
}

async fn deposit_with(app: &TestApp, label: &str) -> String {
    let uploaded: Value = app
        .upload_with_key(&app.api_key, "relance.pdf", sample_pdf(label))
        .await
        .json()
        .await
        .expect("json");
    let document = uploaded["id"].as_str().expect("id");
    let response = app.post_letter(&letter_body(document)).await;
    assert_eq!(response.status(), 201);
    let letter: Value = response.json().await.expect("json");
    letter["id"].as_str().expect("id").to_string()
}

async fn content_is_destroyed_only_after_retention_without_hold_and_shared_bytes_wait_for_every_letter(
    engine: Engine,
) {
    let start = time::OffsetDateTime::now_utc();
    let clock = TestClock::at(start);
    let Some(app) = spawn_app_with(engine, Arc::new(clock.clone()), |s| {
        s.evidence.retention_years = 1
    })
    .await
    else {
        return;
    };
    let storage = &app.service.storage;
    let shared = hex::encode(Sha256::digest(sample_pdf("shared")));
    let own = hex::encode(Sha256::digest(sample_pdf("own")));
    // Letter A, then a day later B (same bytes as A) and C (its own bytes).
    let a = deposit_with(&app, "shared").await;
    clock.advance(time::Duration::days(1));
    let b = deposit_with(&app, "shared").await;
    let c = deposit_with(&app, "own").await;
    let row = |id: String| async move {
        storage
            .letter_by_id(&id)
            .await
            .expect("letter")
            .expect("exists")
    };
    let retain_a = row(a.clone()).await.retain_until;
    let retain_b = row(b.clone()).await.retain_until;
    let now = || recommande::core::clock::unix_micros(recommande::core::clock::Clock::now(&clock));
    let live = |sha: String| async move {
        storage
            .document_key(&sha)
            .await
            .expect("key")
            .expect("row")
            .wrapped_key
            .is_some()
    };

    // One second before A's retention ends: nothing can be destroyed.
    clock.advance(time::Duration::microseconds(retain_a - now() - 1_000_000));
    let report = recommande::app::archive::purge(&app.service, false)
        .await
        .expect("purge");
    assert!(
        report.letters.is_empty() && report.documents.is_empty(),
        "{report:?}"
    );
    let early = app
        .service
        .lifecycle
        .record_content_destruction(&row(a.clone()).await)
        .await;
    assert!(
        early.is_err(),
        "destruction before retain_until was accepted"
    );
    assert!(live(shared.clone()).await);

    // At retain_until: A's content is destroyed, but its bytes stay for B.
    clock.advance(time::Duration::seconds(1));
    let dry = recommande::app::archive::purge(&app.service, true)
        .await
        .expect("dry run");
    assert_eq!(dry.letters, vec![a.clone()]);
    assert!(
        row(a.clone()).await.content_destroyed_at.is_none(),
        "dry run changed nothing"
    );
    let report = recommande::app::archive::purge(&app.service, false)
        .await
        .expect("purge");
    assert_eq!(report.letters, vec![a.clone()]);
    assert!(
        report.documents.is_empty(),
        "shared bytes still needed by B"
    );
    assert!(live(shared.clone()).await);
    let events = storage.evidence_of_letter(&a).await.expect("evidence");
    assert_eq!(events.last().expect("last").event, "ContentDestruction");
    assert!(events.len() >= 2, "the evidence is kept");
    // The bundle of A carries the evidence only, and verifies.
    let zip = crate::bundle::bundle_bytes(&app, &a).await;
    let report = recommande::core::bundle::verify::verify_bundle(
        std::io::Cursor::new(zip.clone()),
        Some(&app.service.anchors),
        time::OffsetDateTime::now_utc(),
    )
    .expect("readable bundle");
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    assert!(report.is_valid(), "{failed:?}");
    let archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("zip");
    assert!(
        !archive
            .file_names()
            .filter_map(Result::ok)
            .any(|n| n.starts_with("documents/"))
    );

    // B on legal hold (idempotent), then past B's and C's retention: only C goes.
    for _ in 0..2 {
        let held = app
            .client
            .post(app.url(&format!("/v1/letters/{b}/hold")))
            .bearer_auth(&app.api_key)
            .send()
            .await
            .expect("hold");
        assert_eq!(held.status(), 200);
        let view: Value = held.json().await.expect("json");
        assert_eq!(view["legal_hold"], true);
    }
    clock.advance(time::Duration::microseconds(retain_b - now() + 1));
    let report = recommande::app::archive::purge(&app.service, false)
        .await
        .expect("purge");
    assert_eq!(report.letters, vec![c.clone()]);
    assert_eq!(report.documents, vec![own.clone()]);
    assert!(live(shared.clone()).await, "a held letter keeps its bytes");
    assert!(matches!(
        app.service.content.open_read(&own).await.err(),
        Some(ContentError::Destroyed { .. })
    ));
    let problem = recommande::http::problem::Problem::from(
        app.service
            .content
            .open_read(&own)
            .await
            .err()
            .expect("destroyed"),
    );
    assert_eq!(problem.status_code(), 410);

    // Hold lifted: B goes, and with it the shared bytes' key.
    let lifted = app
        .delete_as(&app.api_key, &format!("/v1/letters/{b}/hold"))
        .await;
    assert_eq!(lifted.status(), 200);
    let report = recommande::app::archive::purge(&app.service, false)
        .await
        .expect("purge");
    assert_eq!(report.letters, vec![b.clone()]);
    assert_eq!(report.documents, vec![shared.clone()]);
    assert!(!live(shared.clone()).await);
    let view: Value = app.get_json(&format!("/v1/letters/{b}")).await;
    assert!(view["content_destroyed_at"].is_string(), "{view}");
    assert_eq!(view["legal_hold"], false);
    let too_late = app
        .client
        .post(app.url(&format!("/v1/letters/{b}/hold")))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .expect("hold");
    assert_eq!(too_late.status(), 410);
    let body: Value = too_late.json().await.expect("problem");
    assert_eq!(body["type"], "urn:recommande:problem:content-destroyed");
    // Idempotent: nothing left to do.
    let again = recommande::app::archive::purge(&app.service, false)
        .await
        .expect("purge");
    assert!(again.letters.is_empty() && again.documents.is_empty());
}
