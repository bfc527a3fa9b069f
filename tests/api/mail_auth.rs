//! Mail that passes filters: with `[mail] dkim_*` every mail the service sends carries a
//! DKIM signature (RFC 6376, RSA; RFC 8463, Ed25519) for the domain of `mail.from`, which
//! Python's `dkimpy` verifies against the public key as DNS would publish it; a changed
//! byte of the body fails it. The signature is part of the bytes the evidence hashes.

use std::process::{Command, Stdio};

use recommande::config::{DkimAlgorithm, DkimSettings};
use sha2::{Digest, Sha256};

use crate::helpers::{Engine, spawn_app_with};
use crate::smtp::SmtpSink;

/// Verifies a message read on stdin with `dkimpy`, the DNS answer for the selector given
/// in argv[1]: prints `valid` or `invalid`.
const VERIFIER: &str = r#"
import sys, dkim
record = sys.argv[1].encode()
def dns(name, timeout=5):
    return record if name.startswith(b"lre2026._domainkey.lre.example.fr") else None
print("valid" if dkim.verify(sys.stdin.buffer.read(), dnsfunc=dns) else "invalid")
"#;

/// `None` outside CI when dkimpy (or PyNaCl, for Ed25519) is missing.
fn dkim_verdict(message: &[u8], record: &str) -> Option<String> {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args(["-c", VERIFIER, record])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(message)
        .expect("write");
    let out = child.wait_with_output().expect("python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named") {
        assert!(
            std::env::var_os("CI").is_none(),
            "dkimpy or PyNaCl is missing in CI: {stderr}"
        );
        eprintln!("NOTICE: {stderr}");
        return None;
    }
    assert!(out.status.success(), "{stderr}");
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn run(program: &str, args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(program);
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.unwrap_or_default()).expect("write");
    drop(stdin);
    let out = child.wait_with_output().expect(program);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An RSA key in PKCS#1 PEM and its DNS record `v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo>`.
fn rsa_key(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let path = dir.join("dkim-rsa.pem");
    let path_str = path.to_str().expect("utf-8 path");
    run(
        "openssl",
        &["genrsa", "-traditional", "-out", path_str, "2048"],
        None,
    );
    let der = run(
        "openssl",
        &["rsa", "-in", path_str, "-pubout", "-outform", "DER"],
        None,
    );
    use base64::Engine as _;
    let p = base64::engine::general_purpose::STANDARD.encode(der);
    (path, format!("v=DKIM1; k=rsa; p={p}"))
}

/// An Ed25519 key as the base64 of its 32 bytes and its record `k=ed25519; p=<public key>`
/// (RFC 8463 §4.2), the public key derived here with `ring`.
fn ed25519_key(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    use base64::Engine as _;
    use ring::signature::KeyPair as _;
    let seed: [u8; 32] = Sha256::digest(b"a test key, not a secret").into();
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).expect("key");
    let path = dir.join("dkim-ed25519.key");
    let b64 = base64::engine::general_purpose::STANDARD;
    std::fs::write(&path, b64.encode(seed)).expect("write key");
    let p = b64.encode(pair.public_key().as_ref());
    (path, format!("v=DKIM1; k=ed25519; p={p}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mail_is_dkim_signed_for_the_service_domain() {
    let keys = tempfile::tempdir().expect("tempdir");
    for (algorithm, (key, record)) in [
        (DkimAlgorithm::RsaSha256, rsa_key(keys.path())),
        (DkimAlgorithm::Ed25519Sha256, ed25519_key(keys.path())),
    ] {
        let Some(sink) = SmtpSink::start(&[], 0) else {
            return;
        };
        let url = sink.url();
        let Some(app) = spawn_app_with(
            Engine::Sqlite,
            std::sync::Arc::new(recommande::core::clock::SystemClock),
            |s| {
                s.mail.smtp_url = Some(url);
                s.mail.from = "Exemple LRE <lre@lre.example.fr>".into();
                s.mail.dkim = Some(DkimSettings {
                    selector: "lre2026".into(),
                    key: key.clone(),
                    algorithm,
                });
            },
        )
        .await
        else {
            return;
        };
        let letter = app.deposit().await;
        app.service.lifecycle.run_due_jobs(10).await.expect("jobs");
        sink.wait_for(1).await;
        let raw = sink.raw_messages().remove(0);
        let text = String::from_utf8_lossy(&raw).to_string();
        let signature = text
            .split("\r\n")
            .find(|l| l.to_ascii_lowercase().starts_with("dkim-signature:"))
            .unwrap_or_else(|| panic!("{algorithm:?}: no DKIM-Signature in\n{text}"));
        assert!(signature.contains("d=lre.example.fr"), "{signature}");
        assert!(signature.contains("s=lre2026"), "{signature}");
        // The proof of dispatch hashes the signed bytes.
        let id = letter["id"].as_str().expect("id");
        let evidence = app.evidence_of(id).await;
        let notified = evidence
            .iter()
            .find(|e| e.event == "NotificationForAcceptance")
            .expect("notification evidence");
        let proof: serde_json::Value =
            serde_json::from_slice(&notified.record).expect("record json");
        assert_eq!(
            proof["details"]["notification"]["message_sha256"],
            hex::encode(Sha256::digest(&raw)),
            "{proof}"
        );
        let Some(verdict) = dkim_verdict(&raw, &record) else {
            return;
        };
        assert_eq!(verdict, "valid", "{algorithm:?}");
        // One byte of the body changed.
        let body_start = text.find("\r\n\r\n").expect("a body") + 4;
        let mut forged = raw.clone();
        let at = body_start
            + forged[body_start..]
                .iter()
                .position(u8::is_ascii_alphabetic)
                .expect("a letter in the body");
        forged[at] ^= 0x20;
        assert_eq!(
            dkim_verdict(&forged, &record).as_deref(),
            Some("invalid"),
            "{algorithm:?}: a changed byte must fail"
        );
    }
}
