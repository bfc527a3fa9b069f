//! Golden fixtures: a proof bundle of format v1, made by an earlier version and checked in,
//! must keep verifying — offline, against the trust anchors it was issued under — in every
//! future version (STYLE.md: version what outlives the code).
//!
//! `RECOMMANDE_WRITE_GOLDEN=1 cargo test golden` rewrites the fixture from a fresh letter
//! (deposit → notification → acceptance → handover) when the bundle format gains a version;
//! the old fixture then moves to its own folder and keeps being checked.

use std::path::PathBuf;
use std::sync::Arc;

use recommande::core::bundle::verify::verify_bundle;
use recommande::core::clock::SystemClock;
use recommande::core::trust::TrustAnchors;

use crate::helpers::{Engine, spawn_app_with};
use crate::smtp::SmtpSink;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bundle-v1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_golden_v1_bundle_still_verifies() {
    if std::env::var_os("RECOMMANDE_WRITE_GOLDEN").is_some() {
        write_fixture().await;
    }
    let dir = fixture_dir();
    let bundle =
        std::fs::read(dir.join("bundle.zip")).expect("tests/fixtures/bundle-v1/bundle.zip");
    let roots = std::fs::read(dir.join("roots.pem")).expect("tests/fixtures/bundle-v1/roots.pem");
    let anchors = TrustAnchors::from_pem(&roots).expect("anchors");
    let report = verify_bundle(
        std::io::Cursor::new(&bundle),
        Some(&anchors),
        time::OffsetDateTime::now_utc(),
    )
    .expect("readable");
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(report.anchored_outside);
    let events: Vec<&str> = report.events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "SubmissionAcceptance",
            "NotificationForAcceptance",
            "ConsignmentAcceptance",
            "ContentHandover"
        ]
    );
    for name in [
        "log_tree_head",
        "log_inclusion",
        "manifest_seal",
        "file_digests",
    ] {
        assert!(
            report.checks.iter().any(|c| c.name == name && c.passed),
            "{name} checked"
        );
    }
    // Against foreign anchors the same bytes are refused.
    let foreign = rcgen_root_pem();
    let foreign = TrustAnchors::from_pem(foreign.as_bytes()).expect("anchors");
    let report = verify_bundle(
        std::io::Cursor::new(&bundle),
        Some(&foreign),
        time::OffsetDateTime::now_utc(),
    )
    .expect("readable");
    assert!(
        !report.is_valid(),
        "another provider's roots must not validate it"
    );
}

fn rcgen_root_pem() -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Another provider root");
    params.self_signed(&key).expect("cert").pem()
}

async fn write_fixture() {
    let Some(sink) = SmtpSink::start(&[], 0) else {
        panic!("the SMTP sink is needed to write the golden bundle");
    };
    let url = sink.url();
    let app = spawn_app_with(Engine::Sqlite, Arc::new(SystemClock), |s| {
        s.mail.smtp_url = Some(url)
    })
    .await
    .expect("app");
    let id = crate::bundle::accepted_letter(&app, &sink).await;
    let response = app.get(&format!("/v1/letters/{id}/bundle.zip")).await;
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.expect("bundle");
    let dir = fixture_dir();
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("bundle.zip"), &bytes).expect("write");
    std::fs::write(dir.join("roots.pem"), app.service.anchors_pem.as_bytes()).expect("write");
}
