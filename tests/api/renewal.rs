//! Archive timestamp renewal (RFC 4998 spirit) and key rotation, end to end: letters deposited
//! under a development PKI whose certificates last 30 days, `recommande pki rotate` (a new
//! generation, the old roots kept, a renewal by the new TSA over every record), a letter under
//! the new keys; then bundles verified now and at a time after the old certificates expired.

use std::process::Command;
use std::sync::Arc;

use recommande::core::bundle::verify::verify_bundle;
use recommande::core::clock::SystemClock;
use recommande::core::trust::TrustAnchors;
use sha2::Digest;

use crate::bundle::{bundle_bytes, failing_commands, rebuild, unzip, verify_txt_commands};
use crate::helpers::{Engine, fresh_database, openssl, path, settings_for, start_on};

crate::on_both_engines!(
    old_evidence_stays_verifiable_after_rotation_and_expiry_thanks_to_renewals_by_the_new_tsa,
    a_tsa_certificate_ending_within_the_margin_gets_its_tokens_renewed_again_in_a_chain,
);

fn recommande(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_recommande"))
        .args(args)
        .env_remove("RECOMMANDE_CONFIG")
        .output()
        .expect("run recommande");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn member(bytes: &[u8], name: &str) -> Vec<u8> {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
    let mut file = zip.by_name(name).expect(name);
    let mut out = Vec::new();
    file.read_to_end(&mut out).expect("read");
    out
}

fn names(bytes: &[u8]) -> Vec<String> {
    let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
    zip.file_names()
        .map(|n| n.expect("name").to_string())
        .collect()
}

fn seal_certificate(bytes: &[u8]) -> String {
    let record: serde_json::Value =
        serde_json::from_slice(&member(bytes, "evidence/01-SubmissionAcceptance.json"))
            .expect("record");
    record["provider"]["seal_certificate_sha256"]
        .as_str()
        .expect("seal certificate")
        .to_string()
}

async fn old_evidence_stays_verifiable_after_rotation_and_expiry_thanks_to_renewals_by_the_new_tsa(
    engine: Engine,
) {
    // Arrange: a first generation whose seal and TSA certificates last 30 days.
    let dir = tempfile::tempdir().expect("dir");
    let Some(database_url) = fresh_database(engine, dir.path()).await else {
        return;
    };
    let data_dir = dir.path().to_path_buf();
    let mut short = settings_for(&data_dir, &database_url);
    short.pki.development_validity_days = 30;
    let first = start_on(
        tempfile::tempdir().expect("unused"),
        database_url.clone(),
        short,
        Arc::new(SystemClock),
    )
    .await;
    let old_id = first.deposit().await["id"]
        .as_str()
        .expect("id")
        .to_string();
    first.deposit().await;
    let before_rotation = bundle_bytes(&first, &old_id).await;
    assert!(
        !names(&before_rotation)
            .iter()
            .any(|n| n.starts_with("renewals/")),
        "no renewal yet"
    );
    // The service stops before the keys change (as `pki rotate` asks of an operator).
    first.service.storage.close().await;
    drop(first);

    // Act: rotate the keys from the command line (which renews every record with the new
    // TSA), restart, deposit under the new keys.
    let (code, output) = recommande(&[
        "pki",
        "rotate",
        "--data-dir",
        path(&data_dir),
        "--database-url",
        &database_url,
    ]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("Renewal 1: 2 records covered"), "{output}");
    assert!(data_dir.join("pki/retired").is_dir());
    assert!(!data_dir.join("pki/next").exists());
    let second = start_on(
        tempfile::tempdir().expect("unused"),
        database_url.clone(),
        settings_for(&data_dir, &database_url),
        Arc::new(SystemClock),
    )
    .await;
    let new_id = second.deposit().await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let roots = second
        .get("/v1/trust/roots.pem")
        .await
        .text()
        .await
        .expect("roots");
    assert_eq!(roots.matches("BEGIN CERTIFICATE").count(), 2, "{roots}");
    let roots_path = data_dir.join("served-roots.pem");
    std::fs::write(&roots_path, &roots).expect("write roots");
    let old_bundle = bundle_bytes(&second, &old_id).await;
    let new_bundle = bundle_bytes(&second, &new_id).await;
    let old_path = data_dir.join("old.zip");
    let new_path = data_dir.join("new.zip");
    let before_path = data_dir.join("before.zip");
    std::fs::write(&old_path, &old_bundle).expect("write");
    std::fs::write(&new_path, &new_bundle).expect("write");
    std::fs::write(&before_path, &before_rotation).expect("write");

    // Assert: the old letter's bundle carries its renewal; the new letter uses the new seal.
    let old_names = names(&old_bundle);
    for name in [
        "renewals/01-SubmissionAcceptance.renewal-1.json",
        "renewals/01-SubmissionAcceptance.renewal-1.tsr",
    ] {
        assert!(old_names.iter().any(|n| n == name), "{old_names:?}");
        let sums = String::from_utf8(member(&old_bundle, "SHA256SUMS")).expect("utf-8");
        assert!(sums.contains(name), "{name} in SHA256SUMS");
        let asic =
            String::from_utf8(member(&old_bundle, "META-INF/ASiCManifest.xml")).expect("utf-8");
        assert!(
            asic.contains(&format!("URI=\"{name}\"")),
            "{name} in the ASiC manifest"
        );
    }
    assert!(
        !names(&new_bundle)
            .iter()
            .any(|n| n.starts_with("renewals/"))
    );
    assert_ne!(seal_certificate(&old_bundle), seal_certificate(&new_bundle));
    let bundled_roots = String::from_utf8(member(&old_bundle, "certs/roots.pem")).expect("pem");
    assert_eq!(bundled_roots.matches("BEGIN CERTIFICATE").count(), 2);
    // The same state gives the same bytes.
    assert_eq!(bundle_bytes(&second, &old_id).await, old_bundle);

    // Today every bundle verifies against the served roots, the pre-rotation one included.
    let trust = path(&roots_path);
    for bundle in [&old_path, &new_path, &before_path] {
        let (code, output) =
            recommande(&["verify", path(bundle), "--trust", trust, "--lang", "en"]);
        assert_eq!(code, 0, "{}: {output}", bundle.display());
    }
    // After the first generation expired: the old letter holds thanks to its renewal, the
    // bundle made before the renewal does not, and the new letter needs none.
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(60);
    let later = later
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let (code, output) = recommande(&[
        "verify",
        path(&old_path),
        "--trust",
        trust,
        "--at",
        &later,
        "--lang",
        "en",
    ]);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("1 renewal(s) form an unbroken chain"),
        "{output}"
    );
    let (code, output) = recommande(&[
        "verify",
        path(&before_path),
        "--trust",
        trust,
        "--at",
        &later,
        "--lang",
        "en",
    ]);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("[FAIL] evidence/01-SubmissionAcceptance · ")
            && output.contains("(timestamp_renewal) — found"),
        "{output}"
    );
    assert!(output.contains("no later renewal covers it"), "{output}");
    let (code, output) = recommande(&[
        "verify",
        path(&new_path),
        "--trust",
        trust,
        "--at",
        &later,
        "--lang",
        "en",
    ]);
    assert_eq!(code, 0, "{output}");
    let (code, output) = recommande(&["verify", path(&old_path), "--at", "yesterday"]);
    assert_eq!(code, 2, "{output}");

    // A tampered path is caught by the named check.
    let anchors = TrustAnchors::from_pem(roots.as_bytes()).expect("anchors");
    let tampered = rebuild(&old_bundle, |members| {
        for (name, data) in members.iter_mut() {
            if name == "renewals/01-SubmissionAcceptance.renewal-1.json" {
                let mut record: serde_json::Value = serde_json::from_slice(data).expect("json");
                record["leaf_index"] = serde_json::json!(0);
                record["path"] = serde_json::json!([{"side": "left", "hash": "ab".repeat(32)}]);
                *data = serde_json_canonicalizer::to_vec(&record).expect("jcs");
            }
        }
    });
    let report = verify_bundle(
        std::io::Cursor::new(&tampered),
        Some(&anchors),
        time::OffsetDateTime::now_utc(),
    )
    .expect("readable");
    let renewal = report
        .checks
        .iter()
        .find(|c| c.name == "timestamp_renewal" && c.scope == "evidence/01-SubmissionAcceptance")
        .expect("renewal check");
    assert!(!renewal.passed);
    assert!(
        renewal.detail.contains("the path leads to"),
        "{}",
        renewal.detail
    );

    // openssl accepts the renewal token against the root, and every VERIFY.txt command passes.
    let unzipped = tempfile::tempdir().expect("dir");
    unzip(&old_bundle, unzipped.path());
    let record: serde_json::Value = serde_json::from_slice(&member(
        &old_bundle,
        "renewals/01-SubmissionAcceptance.renewal-1.json",
    ))
    .expect("renewal record");
    let root = record["root"].as_str().expect("root");
    let token = unzipped
        .path()
        .join("renewals/01-SubmissionAcceptance.renewal-1.tsr");
    let (ok, output) = openssl(&[
        "ts",
        "-verify",
        "-digest",
        root,
        "-in",
        path(&token),
        "-token_in",
        "-CAfile",
        trust,
    ]);
    assert!(ok, "{output}");
    let (ok, _) = openssl(&[
        "ts",
        "-verify",
        "-digest",
        &hex::encode(sha2::Sha256::digest(b"another root")),
        "-in",
        path(&token),
        "-token_in",
        "-CAfile",
        trust,
    ]);
    assert!(!ok, "the token covers its root only");
    let verify_txt = String::from_utf8(member(&old_bundle, "VERIFY.txt")).expect("utf-8");
    let commands = verify_txt_commands(&verify_txt);
    assert!(
        commands
            .iter()
            .any(|c| c.contains("-digest") && c.contains(root)),
        "{verify_txt}"
    );
    let failures = failing_commands(unzipped.path(), &commands);
    assert!(failures.is_empty(), "{failures:#?}");

    // On demand: only the record never renewed (the new letter's) is due; then nothing.
    let (code, output) = recommande(&[
        "archive",
        "renew",
        "--reason",
        "operator check",
        "--data-dir",
        path(&data_dir),
        "--database-url",
        &database_url,
    ]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("Renewal 2: 1 records covered"), "{output}");
    let (code, output) = recommande(&[
        "archive",
        "renew",
        "--data-dir",
        path(&data_dir),
        "--database-url",
        &database_url,
    ]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("No record due for renewal"), "{output}");
    let renewed = bundle_bytes(&second, &new_id).await;
    let record: serde_json::Value = serde_json::from_slice(&member(
        &renewed,
        "renewals/01-SubmissionAcceptance.renewal-1.json",
    ))
    .expect("renewal of the new letter");
    assert_eq!(record["reason"], "operator check");
    assert_eq!(record["renewal_id"], 2);
    let report = verify_bundle(
        std::io::Cursor::new(&renewed),
        Some(&anchors),
        time::OffsetDateTime::now_utc(),
    )
    .expect("readable");
    assert!(report.is_valid(), "{:#?}", report.checks);

    // Renewals are insert-only.
    assert!(
        second
            .execute_sql("UPDATE renewals SET reason = 'rewritten'")
            .await
            .is_err()
    );
    assert!(
        second
            .execute_sql("DELETE FROM renewal_leaves")
            .await
            .is_err()
    );
}

async fn a_tsa_certificate_ending_within_the_margin_gets_its_tokens_renewed_again_in_a_chain(
    engine: Engine,
) {
    // Certificates of 30 days, a margin of 90: every scheduled run finds the newest tokens
    // due again, and each generation covers the previous one's token.
    let Some(app) = crate::helpers::spawn_app_with(engine, Arc::new(SystemClock), |s| {
        s.pki.development_validity_days = 30;
    })
    .await
    else {
        return;
    };
    let id = app.deposit().await["id"].as_str().expect("id").to_string();
    app.deposit().await;
    let first = recommande::app::renewal::scheduled(&app.service)
        .await
        .expect("first renewal");
    assert_eq!((first.renewal_id, first.records), (Some(1), 2));
    let second = recommande::app::renewal::scheduled(&app.service)
        .await
        .expect("second renewal");
    assert_eq!((second.renewal_id, second.records), (Some(2), 2));

    let bundle = bundle_bytes(&app, &id).await;
    let generation = |g: u32| -> serde_json::Value {
        serde_json::from_slice(&member(
            &bundle,
            &format!("renewals/01-SubmissionAcceptance.renewal-{g}.json"),
        ))
        .expect("renewal record")
    };
    let (one, two) = (generation(1), generation(2));
    assert_eq!(two["generation"], 2);
    assert_eq!(two["tree_size"], 2);
    let first_token = member(&bundle, "renewals/01-SubmissionAcceptance.renewal-1.tsr");
    assert_eq!(
        two["covered_token_sha256"],
        hex::encode(sha2::Sha256::digest(&first_token)),
        "generation 2 covers generation 1's token"
    );
    assert_ne!(one["root"], two["root"]);
    let report = verify_bundle(
        std::io::Cursor::new(&bundle),
        Some(&app.service.anchors),
        time::OffsetDateTime::now_utc(),
    )
    .expect("readable");
    assert!(report.is_valid(), "{:#?}", report.checks);
    let detail = &report
        .checks
        .iter()
        .find(|c| c.name == "timestamp_renewal")
        .expect("renewal check")
        .detail;
    assert!(detail.contains("2 renewal(s)"), "{detail}");
    // The archive audit checks the renewal chains too.
    let audit = recommande::app::audit::run(&app.service, recommande::app::audit::AuditScope::All)
        .await
        .expect("audit runs");
    assert!(audit.report.passed, "{:#?}", audit.report.failures);
    assert_eq!(audit.report.evidence_checked, 2);

    // Generation 2 without generation 1 is a broken chain.
    let gap = rebuild(&bundle, |members| {
        members.retain(|(name, _)| !name.contains(".renewal-1."));
    });
    let report = verify_bundle(
        std::io::Cursor::new(&gap),
        Some(&app.service.anchors),
        time::OffsetDateTime::now_utc(),
    )
    .expect("readable");
    let renewal = report
        .checks
        .iter()
        .find(|c| c.name == "timestamp_renewal" && c.scope == "evidence/01-SubmissionAcceptance")
        .expect("renewal check");
    assert!(!renewal.passed, "{renewal:?}");
}
