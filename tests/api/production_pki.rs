//! Production trust material made by an operator with the openssl CLI: a valid set starts the
//! service and seals evidence that openssl verifies; a wrong set is refused at start with a
//! precise message.

use std::path::Path;
use std::sync::Arc;

use recommande::app::service::Service;
use recommande::config::{KeySource, PkiSettings, Settings};
use recommande::core::clock::SystemClock;

use crate::helpers::{Engine, fresh_database, openssl, path, settings_for, start_on};

fn run(args: &[&str]) {
    let (ok, out) = openssl(args);
    assert!(ok, "openssl {args:?}: {out}");
}

fn ec_key(dir: &Path, name: &str) {
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        path(&dir.join(format!("{name}.key"))),
    ]);
}

fn leaf(dir: &Path, name: &str, key: &str, extensions: &str) {
    let csr = dir.join(format!("{name}.csr"));
    run(&[
        "req",
        "-new",
        "-key",
        path(&dir.join(format!("{key}.key"))),
        "-subj",
        &format!("/O=Test Operator/CN=Test {name}"),
        "-out",
        path(&csr),
    ]);
    certify(dir, &csr, name, extensions);
}

/// The operator's CA (`root.pem`, `root.key` in `dir`) certifies a request as `NAME.pem`
/// with the given `openssl x509 -extfile` extensions.
pub(crate) fn certify(dir: &Path, csr: &Path, name: &str, extensions: &str) {
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(&ext, extensions).expect("write ext");
    run(&[
        "x509",
        "-req",
        "-in",
        path(csr),
        "-CA",
        path(&dir.join("root.pem")),
        "-CAkey",
        path(&dir.join("root.key")),
        "-set_serial",
        "0x1f2e3d4c5b6a79880123",
        "-days",
        "365",
        "-sha256",
        "-extfile",
        path(&ext),
        "-out",
        path(&dir.join(format!("{name}.pem"))),
    ]);
}

/// Extensions of a seal certificate, for [`certify`].
pub(crate) const SEAL_EXTENSIONS: &str =
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n";
/// Extensions of a TSA certificate, for [`certify`].
pub(crate) const TSA_EXTENSIONS: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n";

/// The operator's root CA, made with openssl: `root.pem` and `root.key` in `dir`.
pub(crate) fn operator_root(dir: &Path) {
    ec_key(dir, "root");
    run(&[
        "req",
        "-x509",
        "-new",
        "-key",
        path(&dir.join("root.key")),
        "-subj",
        "/O=Test Operator/CN=Test Root",
        "-days",
        "3650",
        "-sha256",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        path(&dir.join("root.pem")),
    ]);
}

/// A root, a seal certificate and two TSA certificates (one correct, one with a non-critical EKU).
fn operator_pki(dir: &Path) {
    operator_root(dir);
    ec_key(dir, "seal");
    ec_key(dir, "tsa");
    leaf(dir, "seal", "seal", SEAL_EXTENSIONS);
    leaf(dir, "tsa", "tsa", TSA_EXTENSIONS);
    leaf(
        dir,
        "tsa-lax",
        "tsa",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=timeStamping\n",
    );
}

fn with_pki(settings: &mut Settings, dir: &Path, seal_key: &str, tsa_cert: &str) {
    settings.pki = PkiSettings {
        seal_certificate: Some(dir.join("seal.pem")),
        seal_key: Some(KeySource::File(dir.join(format!("{seal_key}.key")))),
        tsa_certificate: Some(dir.join(format!("{tsa_cert}.pem"))),
        tsa_key: Some(KeySource::File(dir.join("tsa.key"))),
        roots: Some(dir.join("root.pem")),
        ..PkiSettings::default()
    };
    settings.evidence.policy = Some("urn:example:operator:evidence-policy:1".into());
    settings.timestamp.policy_oid = "1.3.6.1.4.1.99999.1.1".into();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_certificates_made_with_openssl_seal_evidence_that_openssl_verifies() {
    let pki = tempfile::tempdir().expect("dir");
    operator_pki(pki.path());
    let dir = tempfile::tempdir().expect("dir");
    let database_url = fresh_database(Engine::Sqlite, dir.path())
        .await
        .expect("sqlite");
    let mut settings = settings_for(dir.path(), &database_url);
    with_pki(&mut settings, pki.path(), "seal", "tsa");
    let app = start_on(dir, database_url, settings, Arc::new(SystemClock)).await;
    assert!(!app.service.trust.development);
    assert!(
        !app.dir.path().join("pki").exists(),
        "no development PKI is generated"
    );
    let letter = app.deposit().await;
    let work = tempfile::tempdir().expect("dir");
    let files = app
        .download_evidence(
            letter["id"].as_str().expect("id"),
            letter["evidence"][0]["id"].as_str().expect("evidence"),
            work.path(),
        )
        .await;
    assert_eq!(
        std::fs::read(&files.roots).expect("served roots"),
        std::fs::read(pki.path().join("root.pem")).expect("operator root")
    );
    let (ok, out) = crate::helpers::openssl_ts_verify(&files.json, &files.tsr, &files.roots);
    assert!(ok, "{out}");
    let (ok, out) = crate::helpers::openssl_cms_verify(&files.json, &files.p7s, &files.roots);
    assert!(ok, "{out}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files.json).expect("json")).expect("record");
    assert_eq!(record["policy"], "urn:example:operator:evidence-policy:1");

    // Outside development, webhooks must be https (issue 12 §3).
    let register = async |url: &str| {
        app.post_json(
            "/v1/webhooks",
            &serde_json::json!({"url": url, "secret": "whsec-0123456789-abcdef",
                "events": ["letter.deposited"]}),
        )
        .await
    };
    let plain = register("http://hooks.example.fr/lre").await;
    assert_eq!(plain.status(), 422);
    let problem: serde_json::Value = plain.json().await.expect("problem");
    assert_eq!(problem["errors"][0]["field"], "url", "{problem}");
    assert_eq!(register("https://hooks.example.fr/lre").await.status(), 201);
}

async fn start_error(seal_key: &str, tsa_cert: &str) -> String {
    let pki = tempfile::tempdir().expect("dir");
    operator_pki(pki.path());
    let dir = tempfile::tempdir().expect("dir");
    let database_url = fresh_database(Engine::Sqlite, dir.path())
        .await
        .expect("sqlite");
    let mut settings = settings_for(dir.path(), &database_url);
    with_pki(&mut settings, pki.path(), seal_key, tsa_cert);
    match Service::start(settings, Arc::new(SystemClock)).await {
        Ok(_) => {
            panic!("the service started with seal key {seal_key} and TSA certificate {tsa_cert}")
        }
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_seal_key_that_does_not_match_its_certificate_stops_the_start() {
    let message = start_error("tsa", "tsa").await;
    assert!(
        message.contains("seal") && message.contains("match"),
        "{message}"
    );
}

#[tokio::test]
async fn a_tsa_certificate_with_a_non_critical_eku_stops_the_start() {
    let message = start_error("seal", "tsa-lax").await;
    assert!(message.to_lowercase().contains("critical"), "{message}");
}

#[tokio::test]
async fn production_keys_without_an_operator_tsa_policy_stop_the_start() {
    let pki = tempfile::tempdir().expect("dir");
    operator_pki(pki.path());
    let dir = tempfile::tempdir().expect("dir");
    let database_url = fresh_database(Engine::Sqlite, dir.path())
        .await
        .expect("sqlite");
    let mut settings = settings_for(dir.path(), &database_url);
    with_pki(&mut settings, pki.path(), "seal", "tsa");
    settings.timestamp.policy_oid = recommande::config::DEVELOPMENT_TSA_POLICY_OID.into();
    let message = match Service::start(settings, Arc::new(SystemClock)).await {
        Ok(_) => panic!("started with the development TSA policy"),
        Err(e) => e.to_string(),
    };
    assert!(message.contains("timestamp.policy_oid"), "{message}");
}
