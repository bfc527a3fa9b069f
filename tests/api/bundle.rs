//! Proof bundles: reproducible, checkable with openssl alone, verified offline by
//! `recommande verify`, and any changed, missing or reordered member is caught.

use crate::helpers::header_bytes;
use std::io::{Read, Write};
use std::process::Command;
use std::sync::Arc;

use recommande::core::bundle::verify::verify_bundle;
use recommande::core::clock::SystemClock;
use recommande::core::trust::TrustAnchors;
use serde_json::Value;

use crate::helpers::{Engine, TestApp, openssl, path, rfc3161_client_verify, spawn_app_with};
use crate::smtp::{SmtpSink, body_text, link_token};

crate::on_both_engines!(
    a_bundle_is_reproducible_and_verifies_with_openssl_and_our_cli,
    the_commands_of_verify_txt_pass_on_the_bundle_and_fail_on_every_tampered_copy,
);

/// A letter taken through deposit → notification → acceptance → handover.
pub(crate) async fn accepted_letter(app: &TestApp, sink: &SmtpSink) -> String {
    let letter = app.deposit().await;
    let id = letter["id"].as_str().expect("id").to_string();
    app.service.lifecycle.run_due_jobs(10).await.expect("jobs");
    let mails = sink.wait_for(1).await;
    let token = link_token(&body_text(&mails[0]));
    let session = app.session_from_mail(sink, &token, 2).await;
    let accepted = app.recipient_post_with(&token, "accept", &session).await;
    assert_eq!(accepted.status(), 200);
    let doc = app
        .service
        .storage
        .letter_documents(&id)
        .await
        .expect("docs")[0]
        .id
        .clone();
    let download = app
        .get_as(&session, &format!("/v1/recipient/{token}/documents/{doc}"))
        .await;
    assert_eq!(download.status(), 200);
    id
}

pub(crate) async fn bundle_bytes(app: &TestApp, id: &str) -> Vec<u8> {
    let response = app.get(&format!("/v1/letters/{id}/bundle.zip")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header_bytes(&response, "content-type"),
        Some(&b"application/zip"[..])
    );
    response.bytes().await.expect("bytes").to_vec()
}

pub(crate) fn unzip(bytes: &[u8], dir: &std::path::Path) -> Vec<String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
    let mut names = Vec::new();
    for i in 0..zip.len() {
        let mut file = zip.by_index(i).expect("entry");
        let name = file.name().expect("name").to_string();
        let target = dir.join(&name);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).expect("read");
        std::fs::write(&target, bytes).expect("write");
        names.push(name);
    }
    names
}

fn recommande_verify(
    bundle: &std::path::Path,
    trust: Option<&std::path::Path>,
    extra: &[&str],
) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_recommande"));
    command.arg("verify").arg(bundle).args(extra);
    if let Some(t) = trust {
        command.arg("--trust").arg(t);
    }
    let out = command.output().expect("run verify");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn a_bundle_is_reproducible_and_verifies_with_openssl_and_our_cli(engine: Engine) {
    let Some((sink, app)) = crate::helpers::spawn_app_with_sink(engine).await else {
        return;
    };
    let id = accepted_letter(&app, &sink).await;
    let first = bundle_bytes(&app, &id).await;
    let second = bundle_bytes(&app, &id).await;
    assert_eq!(
        first, second,
        "the same letter state gives byte-identical bundles"
    );

    let dir = tempfile::tempdir().expect("dir");
    let unpacked = dir.path().join("unpacked");
    let names = unzip(&first, &unpacked);
    assert_eq!(names[0], "mimetype");
    for expected in [
        "manifest.json",
        "documents/01-relance.pdf",
        "evidence/01-SubmissionAcceptance.json",
        "evidence/02-NotificationForAcceptance.tsr",
        "evidence/03-ConsignmentAcceptance.p7s",
        "evidence/04-ContentHandover.json",
        "proofs/deposit.pdf",
        "proofs/dispatch.pdf",
        "proofs/receipt.pdf",
        "proofs/summary.pdf",
        "log/tree-head.json",
        "log/tree-head.p7s",
        "log/tree-head.tsr",
        "log/inclusion.json",
        "certs/roots.pem",
        "VERIFY.txt",
        "META-INF/ASiCManifest.xml",
        "META-INF/signature001.p7s",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    // Only the proofs of events that happened.
    assert!(
        !names
            .iter()
            .any(|n| n == "proofs/refusal.pdf" || n == "proofs/non_claim.pdf")
    );

    // VERIFY.txt's own commands are run by
    // `the_commands_of_verify_txt_pass_on_the_bundle_and_fail_on_every_tampered_copy`.
    // Every file's digest is the one in manifest.json (sha256sum-style check).
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json")).expect("manifest"))
            .expect("json");
    use sha2::Digest;
    for f in manifest["files"].as_array().expect("files") {
        let bytes = std::fs::read(unpacked.join(f["path"].as_str().expect("path"))).expect("file");
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&bytes)),
            f["sha256"].as_str().expect("sha")
        );
    }
    // The ASiC manifest seal verifies with openssl too.
    let (ok, out) = openssl(&[
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        path(&unpacked.join("META-INF/signature001.p7s")),
        "-content",
        path(&unpacked.join("META-INF/ASiCManifest.xml")),
        "-CAfile",
        path(&unpacked.join("certs/roots.pem")),
        "-purpose",
        "any",
        "-out",
        "/dev/null",
    ]);
    assert!(ok, "{out}");

    // The offline verifier: valid with outside anchors, loud without them, 2 on garbage.
    let bundle = dir.path().join("bundle.zip");
    std::fs::write(&bundle, &first).expect("write");
    let roots = dir.path().join("published-roots.pem");
    std::fs::write(&roots, app.service.anchors_pem.as_bytes()).expect("roots");
    let (status, out) = recommande_verify(&bundle, Some(&roots), &["--lang", "en"]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("VALID") && !out.contains("[FAIL]"), "{out}");
    let (status, out) = recommande_verify(&bundle, None, &[]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("ATTENTION"), "{out}");
    let (status, out) = recommande_verify(&bundle, Some(&roots), &["--json"]);
    assert_eq!(status, 0);
    let report: Value = serde_json::from_str(&out).expect("json report");
    assert_eq!(report["events"].as_array().expect("events").len(), 4);
    let garbage = dir.path().join("garbage.zip");
    std::fs::write(&garbage, b"not a zip").expect("write");
    assert_eq!(recommande_verify(&garbage, None, &[]).0, 2);
    // Anchors of another provider: the signatures hold, the trust does not.
    let other = crate::helpers::spawn_app(Engine::Sqlite)
        .await
        .expect("other app");
    let other_roots = dir.path().join("other-roots.pem");
    std::fs::write(&other_roots, other.service.anchors_pem.as_bytes()).expect("roots");
    let (status, out) = recommande_verify(&bundle, Some(&other_roots), &["--lang", "en"]);
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("seal_certificate") && out.contains("[FAIL]"),
        "{out}"
    );
}

/// Rebuilds `bytes` with `change` applied to the member list (name, data), keeping the order
/// and the stored/deflated choice of `mimetype`.
pub(crate) fn rebuild(bytes: &[u8], change: impl Fn(&mut Vec<(String, Vec<u8>)>)) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
    let mut members = Vec::new();
    for i in 0..zip.len() {
        let mut file = zip.by_index(i).expect("entry");
        let mut data = Vec::new();
        file.read_to_end(&mut data).expect("read");
        members.push((file.name().expect("name").to_string(), data));
    }
    change(&mut members);
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in members {
        let options =
            zip::write::SimpleFileOptions::default().compression_method(if name == "mimetype" {
                zip::CompressionMethod::Stored
            } else {
                zip::CompressionMethod::Deflated
            });
        out.start_file(name, options).expect("start");
        out.write_all(&data).expect("write");
    }
    out.finish().expect("finish").into_inner()
}

fn failed(bytes: &[u8], anchors: &TrustAnchors) -> Vec<String> {
    match verify_bundle(
        std::io::Cursor::new(bytes),
        Some(anchors),
        time::OffsetDateTime::now_utc(),
    ) {
        Ok(report) => report
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.to_string())
            .collect(),
        Err(_) => vec!["unusable".into()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_changed_missing_or_reordered_member_is_caught() {
    let Some(sink) = SmtpSink::start(&[], 0) else {
        return;
    };
    let url = sink.url();
    let app = spawn_app_with(Engine::Sqlite, Arc::new(SystemClock), |s| {
        s.mail.smtp_url = Some(url)
    })
    .await
    .expect("app");
    let id = accepted_letter(&app, &sink).await;
    let bytes = bundle_bytes(&app, &id).await;
    let anchors = TrustAnchors::from_pem(app.service.anchors_pem.as_bytes()).expect("anchors");
    assert!(
        failed(&bytes, &anchors).is_empty(),
        "the untouched bundle is valid"
    );
    assert!(
        failed(&rebuild(&bytes, |_| {}), &anchors).is_empty(),
        "re-zipping alone changes nothing"
    );

    // The manifest seal carries its own RFC 3161 timestamp (CAdES B-T), and a token that no
    // longer matches the seal's signature is caught.
    let report = verify_bundle(
        std::io::Cursor::new(&bytes),
        Some(&anchors),
        time::OffsetDateTime::now_utc(),
    )
    .expect("readable");
    let manifest = report
        .checks
        .iter()
        .find(|c| c.name == "manifest_seal")
        .expect("manifest_seal");
    assert!(manifest.detail.contains("CAdES B-T"), "{}", manifest.detail);
    let restamped = rebuild(&bytes, |members| {
        let seal = &mut members
            .iter_mut()
            .find(|(n, _)| n == "META-INF/signature001.p7s")
            .expect("seal")
            .1;
        let parsed = recommande::core::seal::ParsedSeal::parse(seal).expect("seal parses");
        let token = parsed
            .signature_timestamp()
            .expect("attributes")
            .expect("a signature timestamp")
            .to_vec();
        let at = seal
            .windows(token.len())
            .position(|w| w == token.as_slice())
            .expect("token inside the seal");
        // A byte of the token's TSTInfo (the message imprint sits in its first part).
        seal[at + token.len() / 3] ^= 0x01;
    });
    assert!(
        failed(&restamped, &anchors)
            .iter()
            .any(|f| f == "manifest_seal"),
        "a damaged signature timestamp went unnoticed"
    );

    let names: Vec<String> = {
        let zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).expect("zip");
        zip.file_names()
            .map(|n| n.expect("name").to_string())
            .collect()
    };
    let expected_failure = |name: &str| match name {
        "mimetype" => "container",
        "META-INF/ASiCManifest.xml" | "META-INF/signature001.p7s" => "manifest_seal",
        _ => "file_digests",
    };
    for name in &names {
        // One flipped byte, in the middle of the member.
        let flipped = rebuild(&bytes, |members| {
            let data = &mut members
                .iter_mut()
                .find(|(n, _)| n == name)
                .expect("member")
                .1;
            let at = data.len() / 2;
            data[at] ^= 0x20;
        });
        let failures = failed(&flipped, &anchors);
        assert!(
            failures.iter().any(|f| f == expected_failure(name)),
            "flipping {name}: {failures:?}"
        );
        // The log's own checks see it too, not only the manifest.
        let log_check = match name.as_str() {
            "log/tree-head.json" | "log/tree-head.p7s" | "log/tree-head.tsr" => {
                Some("log_tree_head")
            }
            "log/inclusion.json" => Some("log_inclusion"),
            _ => None,
        };
        if let Some(check) = log_check {
            assert!(
                failures.iter().any(|f| f == check),
                "flipping {name}: {failures:?}"
            );
        }
        // The member removed.
        let removed = rebuild(&bytes, |members| members.retain(|(n, _)| n != name));
        let failures = failed(&removed, &anchors);
        assert!(
            failures
                .iter()
                .any(|f| f == expected_failure(name) || f == "unusable"),
            "removing {name}: {failures:?}"
        );
    }
    // Two evidence records swapped (names kept in order, contents exchanged).
    let swapped = rebuild(&bytes, |members| {
        for ext in ["json", "p7s", "tsr"] {
            let a = members
                .iter()
                .position(|(n, _)| n == &format!("evidence/02-NotificationForAcceptance.{ext}"))
                .expect("02");
            let b = members
                .iter()
                .position(|(n, _)| n == &format!("evidence/03-ConsignmentAcceptance.{ext}"))
                .expect("03");
            let data_a = members[a].1.clone();
            members[a].1 = members[b].1.clone();
            members[b].1 = data_a;
        }
    });
    let failures = failed(&swapped, &anchors);
    assert!(failures.iter().any(|f| f == "chain_link"), "{failures:?}");
    assert!(failures.iter().any(|f| f == "event_order"), "{failures:?}");
}

/// The commands of `VERIFY.txt`: the lines behind the `$ ` prompt, as a judge types them.
pub(crate) fn verify_txt_commands(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix(recommande::core::bundle::COMMAND_PROMPT))
        .map(str::to_string)
        .collect()
}

/// Runs each command with `sh -c` inside `dir`; returns the commands that failed, with their
/// output.
pub(crate) fn failing_commands(
    dir: &std::path::Path,
    commands: &[String],
) -> Vec<(String, String)> {
    commands
        .iter()
        .filter_map(|command| {
            let out = Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(dir)
                .output()
                .expect("sh");
            (!out.status.success()).then(|| {
                (
                    command.clone(),
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ),
                )
            })
        })
        .collect()
}

async fn the_commands_of_verify_txt_pass_on_the_bundle_and_fail_on_every_tampered_copy(
    engine: Engine,
) {
    let Some((sink, app)) = crate::helpers::spawn_app_with_sink(engine).await else {
        return;
    };
    let id = accepted_letter(&app, &sink).await;
    let bytes = bundle_bytes(&app, &id).await;
    let dir = tempfile::tempdir().expect("dir");
    let pristine = dir.path().join("pristine");
    let names = unzip(&bytes, &pristine);
    let verify_txt = std::fs::read_to_string(pristine.join("VERIFY.txt")).expect("VERIFY.txt");
    let commands = verify_txt_commands(&verify_txt);

    // The recipe covers the manifest seal, SHA256SUMS, and each of the four records.
    let count = |needle: &str| commands.iter().filter(|c| c.contains(needle)).count();
    assert_eq!(count("-in META-INF/signature001.p7s"), 1, "{verify_txt}");
    assert_eq!(count("sha256sum --strict -c SHA256SUMS"), 1, "{verify_txt}");
    // Four records and the transparency log's tree head.
    assert_eq!(count("openssl ts -verify"), 5, "{verify_txt}");
    assert_eq!(count("openssl cms -verify"), 6, "{verify_txt}");
    assert_eq!(count("log/tree-head.json"), 3, "{verify_txt}");
    assert_eq!(count("previous_evidence_sha256"), 4, "{verify_txt}");
    assert_eq!(count("documents/01-relance.pdf"), 1, "{verify_txt}");
    // SHA256SUMS lists every data file but itself, and the sealed manifest lists SHA256SUMS.
    let sums = std::fs::read_to_string(pristine.join("SHA256SUMS")).expect("SHA256SUMS");
    for name in &names {
        let listed = sums.lines().any(|l| l.ends_with(&format!("  {name}")));
        let expected =
            !(name == "mimetype" || name == "SHA256SUMS" || name.starts_with("META-INF/"));
        assert_eq!(listed, expected, "{name} in SHA256SUMS:\n{sums}");
    }

    // Run as written, from inside the unzipped bundle: every command succeeds.
    let failures = failing_commands(&pristine, &commands);
    assert!(failures.is_empty(), "{failures:#?}");

    // The second, independent RFC 3161 validator agrees on every token, and refuses a token
    // presented with another record.
    let roots = pristine.join("certs/roots.pem");
    let tokens: Vec<&String> = names.iter().filter(|n| n.ends_with(".tsr")).collect();
    assert_eq!(tokens.len(), 5, "four records and the log's tree head");
    for token in &tokens {
        let record = pristine.join(token.replace(".tsr", ".json"));
        if let Some((ok, out)) = rfc3161_client_verify(&pristine.join(token), &roots, &record) {
            assert!(ok, "{token}: {out}");
        }
    }
    if let Some((ok, out)) = rfc3161_client_verify(
        &pristine.join(tokens[0]),
        &roots,
        &pristine.join(tokens[1].replace(".tsr", ".json")),
    ) {
        assert!(!ok, "a token verified over another record: {out}");
    }

    // Tampered copies: one flipped byte, and the command that must catch it fails.
    let copy = |label: &str, change: &dyn Fn(&std::path::Path)| -> Vec<(String, String)> {
        let target = dir.path().join(label);
        unzip(&bytes, &target);
        change(&target);
        failing_commands(&target, &commands)
    };
    let flip = |file: &std::path::Path| {
        let mut data = std::fs::read(file).expect("read");
        let at = data.len() / 2;
        data[at] ^= 0x01;
        std::fs::write(file, data).expect("write");
    };
    for (member, caught_by) in [
        (
            "evidence/02-NotificationForAcceptance.json",
            "sha256sum --strict -c",
        ),
        (
            "evidence/03-ConsignmentAcceptance.tsr",
            "sha256sum --strict -c",
        ),
        ("documents/01-relance.pdf", "sha256sum --strict -c"),
        ("manifest.json", "sha256sum --strict -c"),
        ("log/tree-head.json", "-content log/tree-head.json"),
        ("SHA256SUMS", "openssl dgst -sha256 -binary SHA256SUMS"),
        (
            "META-INF/ASiCManifest.xml",
            "-content META-INF/ASiCManifest.xml",
        ),
    ] {
        let failures = copy(&member.replace('/', "_"), &|d| flip(&d.join(member)));
        assert!(
            failures.iter().any(|(c, _)| c.contains(caught_by)),
            "one flipped byte in {member} must fail `{caught_by}`; failed: {failures:#?}"
        );
    }
    // The record changed on its own also breaks its seal, its timestamp and the next link.
    let failures = copy("record", &|d| {
        flip(&d.join("evidence/02-NotificationForAcceptance.json"))
    });
    for needle in [
        "openssl ts -verify -data evidence/02-NotificationForAcceptance.json",
        "-content evidence/02-NotificationForAcceptance.json",
        "sha256sum evidence/02-NotificationForAcceptance.json",
    ] {
        assert!(
            failures.iter().any(|(c, _)| c.contains(needle)),
            "{needle}: {failures:#?}"
        );
    }
    // A forger who changes a document and rewrites its SHA256SUMS line to match passes
    // `sha256sum -c`, but SHA256SUMS is then no longer the list the provider sealed.
    let failures = copy("rewritten-sums", &|d| {
        let document = d.join("documents/01-relance.pdf");
        flip(&document);
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(
            std::fs::read(&document).expect("read"),
        ));
        let sums = std::fs::read_to_string(d.join("SHA256SUMS")).expect("sums");
        let rewritten: String = sums
            .lines()
            .map(|l| {
                if l.ends_with("  documents/01-relance.pdf") {
                    format!("{digest}  documents/01-relance.pdf\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(d.join("SHA256SUMS"), rewritten).expect("write");
    });
    assert!(
        !failures
            .iter()
            .any(|(c, _)| c.contains("sha256sum --strict -c")),
        "the rewritten list matches the files: {failures:#?}"
    );
    assert!(
        failures
            .iter()
            .any(|(c, _)| c.contains("openssl dgst -sha256 -binary SHA256SUMS")),
        "{failures:#?}"
    );
}
