//! Restarts: the development PKI is reused, TSA serial numbers and evidence sequence numbers
//! keep increasing.

use std::sync::Arc;

use recommande::core::clock::SystemClock;
use recommande::core::timestamp::ParsedToken;

use crate::helpers::{Engine, fresh_database, settings_for, start_on};

crate::on_both_engines!(a_restart_reuses_the_pki_and_keeps_serials_and_sequences_increasing);

fn serial_of(token: &[u8]) -> u128 {
    let parsed = ParsedToken::parse(token).expect("token");
    let serial = &parsed.info().serial;
    assert!(serial.len() <= 16, "serial fits 128 bits");
    serial
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b))
}

async fn last_evidence(app: &crate::helpers::TestApp) -> (i64, u128) {
    let letter = app.deposit().await;
    let id = letter["id"].as_str().expect("id");
    let evidence = app.evidence_of(id).await;
    let e = evidence.last().expect("one record");
    (e.seq, serial_of(&e.timestamp_token))
}

async fn a_restart_reuses_the_pki_and_keeps_serials_and_sequences_increasing(engine: Engine) {
    let dir = tempfile::tempdir().expect("dir");
    let Some(database_url) = fresh_database(engine, dir.path()).await else {
        return;
    };
    let data_dir = dir.path().to_path_buf();

    let first = start_on(
        tempfile::tempdir().expect("unused"),
        database_url.clone(),
        settings_for(&data_dir, &database_url),
        Arc::new(SystemClock),
    )
    .await;
    let roots_before = first.service.anchors_pem.to_string();
    let seal_before = first.service.trust.seal.certificate_der().to_vec();
    let (seq1, serial1) = last_evidence(&first).await;
    let (seq2, serial2) = last_evidence(&first).await;
    assert!(seq2 > seq1 && serial2 > serial1);
    first.service.storage.close().await;
    drop(first);

    let second = start_on(
        tempfile::tempdir().expect("unused"),
        database_url.clone(),
        settings_for(&data_dir, &database_url),
        Arc::new(SystemClock),
    )
    .await;
    assert_eq!(
        second.service.anchors_pem.as_str(),
        roots_before,
        "the development PKI is reused"
    );
    assert_eq!(
        second.service.trust.seal.certificate_der(),
        &seal_before[..]
    );
    let (seq3, serial3) = last_evidence(&second).await;
    assert!(seq3 > seq2, "sequence {seq3} after {seq2}");
    assert!(serial3 > serial2, "serial {serial3:#x} after {serial2:#x}");
}
