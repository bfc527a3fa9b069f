//! PDF proofs read back the way a person or a court clerk would: `pdftotext` must find every
//! field CPCE R.53-2/R.53-3 asks for, with the times of the RFC 3161 tokens; `pdfdetach` must
//! give back the exact evidence files; `pdftoppm` renders each page under
//! `target/proof-pages/` for a visual check.

use recommande::core::timestamp::ParsedToken;
use recommande::domain::window::paris_french_seconds;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bundle::accepted_letter;
use crate::helpers::{Engine, TestApp};

crate::on_both_engines!(
    proofs_carry_every_required_field_with_the_token_times,
    proofs_carry_a_pades_signature_that_pyhanko_and_pdfsig_accept,
    the_configured_legal_identity_is_on_proofs_pages_and_verify_txt
);

/// Runs a poppler tool; `None` (with a notice, or a failure in CI) when it is missing.
pub(crate) fn poppler(tool: &str, args: &[&str]) -> Option<(bool, String)> {
    match Command::new(tool).args(args).output() {
        Ok(out) => Some((
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{tool} (poppler-utils) must be installed in CI: {e}"
            );
            eprintln!("NOTICE: {tool} not installed ({e}); PDF proof checks not run");
            None
        }
    }
}

/// The text of proof `kind` of a letter (which must exist), or `None` without poppler.
pub(crate) async fn proof_text(app: &TestApp, id: &str, kind: &str) -> Option<String> {
    let (status, pdf) = get_pdf(app, id, kind).await;
    assert_eq!(status, 200, "{kind}: {}", String::from_utf8_lossy(&pdf));
    let dir = tempfile::tempdir().expect("dir");
    text_of(&pdf, dir.path(), kind)
}

/// The HTTP status of proof `kind` of a letter.
pub(crate) async fn proof_status(app: &TestApp, id: &str, kind: &str) -> u16 {
    get_pdf(app, id, kind).await.0
}

pub(crate) async fn get_pdf(app: &TestApp, id: &str, kind: &str) -> (u16, Vec<u8>) {
    let response = app
        .get(&format!("/v1/letters/{id}/proofs/{kind}.pdf"))
        .await;
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

pub(crate) fn text_of(pdf: &[u8], dir: &Path, name: &str) -> Option<String> {
    let file = dir.join(format!("{name}.pdf"));
    std::fs::write(&file, pdf).expect("write pdf");
    let out = dir.join(format!("{name}.txt"));
    let (ok, log) = poppler(
        "pdftotext",
        &["-enc", "UTF-8", file.to_str()?, out.to_str()?],
    )?;
    assert!(ok, "pdftotext failed on {name}: {log}");
    let text = std::fs::read_to_string(out).expect("text");
    // Wrapped lines: compare on single spaces.
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn render_pages(pdf_dir: &Path, name: &str, engine: Engine) {
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/proof-pages");
    std::fs::create_dir_all(&target).expect("dir");
    let prefix = target.join(format!("{engine:?}-{name}").to_lowercase());
    let pdf = pdf_dir.join(format!("{name}.pdf"));
    if let Some((ok, log)) = poppler(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "60",
            pdf.to_str().expect("path"),
            prefix.to_str().expect("path"),
        ],
    ) {
        assert!(ok, "pdftoppm failed on {name}: {log}");
    }
}

async fn proofs_carry_every_required_field_with_the_token_times(engine: Engine) {
    let Some((sink, app)) = crate::helpers::spawn_app_with_sink(engine).await else {
        return;
    };
    let id = accepted_letter(&app, &sink).await;
    let letter: Value = app.get_json(&format!("/v1/letters/{id}")).await;
    let evidence = app.evidence_of(&id).await;
    let code = app.service.lifecycle.verification_code(&id);
    let dir = tempfile::tempdir().expect("dir");

    // Events that did not happen have no proof; unknown kinds are a precise 404.
    for kind in ["refusal", "non_claim"] {
        let (status, body) = get_pdf(&app, &id, kind).await;
        assert_eq!(status, 404, "{kind}");
        let problem: Value = serde_json::from_slice(&body).expect("problem json");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("has not happened"),
            "{problem}"
        );
    }
    let (status, _) = get_pdf(&app, &id, "everything").await;
    assert_eq!(status, 404);
    let (status, _) = get_pdf(&app, "0190a1b2-0000-7000-8000-000000000001", "deposit").await;
    assert_eq!(status, 404);

    let sender_name = letter["sender"]["name"].as_str().expect("sender name");
    let sender_email = letter["sender"]["email"].as_str().expect("sender email");
    let recipient_name = letter["recipient"]["name"].as_str().expect("recipient");
    let recipient_email = letter["recipient"]["email"].as_str().expect("email");
    let document = &letter["documents"][0];
    let document_name = document["filename"].as_str().expect("filename");
    let document_sha = document["sha256"].as_str().expect("sha");

    for (kind, event) in [
        ("deposit", "SubmissionAcceptance"),
        ("dispatch", "NotificationForAcceptance"),
        ("receipt", "ConsignmentAcceptance"),
    ] {
        let (status, pdf) = get_pdf(&app, &id, kind).await;
        assert_eq!(status, 200, "{kind}");
        assert!(pdf.starts_with(b"%PDF-"), "{kind} is a PDF");
        // PDF/A-3b identification in the XMP metadata (ISO 19005-3 §6.6.4).
        let xmp = String::from_utf8_lossy(&pdf);
        assert!(
            xmp.contains("<pdfaid:part>3</pdfaid:part>") || xmp.contains("pdfaid:part=\"3\""),
            "{kind}: PDF/A-3 identification"
        );
        let Some(text) = text_of(&pdf, dir.path(), kind) else {
            return;
        };
        render_pages(dir.path(), kind, engine);
        let row = evidence
            .iter()
            .find(|e| e.event == event)
            .expect("evidence of the event");
        let token = ParsedToken::parse(&row.timestamp_token).expect("token");
        let paris = paris_french_seconds(token.info().gen_time);
        let utc = recommande::core::clock::rfc3339_micros(token.info().gen_time);
        let utc_seconds = format!("{}Z", utc.split('.').next().expect("seconds"));
        let record: Value = serde_json::from_slice(&row.record).expect("record");
        let title = match kind {
            "deposit" => "Preuve de dépôt",
            "dispatch" => "Preuve d'envoi",
            _ => "Accusé de réception",
        };
        for needle in [
            title,
            id.as_str(),
            recipient_name,
            recipient_email,
            document_name,
            document_sha,
            record["evidence_id"].as_str().expect("evidence id"),
            row.record_sha256.as_str(),
            paris.as_str(),
            utc_seconds.as_str(),
            code.as_str(),
            "PKI DE DÉVELOPPEMENT NON QUALIFIÉE",
            "Non-qualified development PKI",
            "/verify",
            "Code de vérification",
        ] {
            assert!(text.contains(needle), "{kind} lacks {needle:?}:\n{text}");
        }
        // CPCE R.53-3: the proof of dispatch, like the notification, names no sender.
        if kind == "dispatch" {
            assert!(!text.contains(sender_name), "dispatch reveals the sender");
            assert!(!text.contains(sender_email), "dispatch reveals the sender");
            assert!(text.contains("Fin du délai d'acceptation ou de refus"));
        } else {
            assert!(text.contains(sender_name), "{kind} lacks the sender");
            assert!(text.contains(sender_email), "{kind} lacks the sender email");
        }
        if kind == "receipt" {
            assert!(text.contains("email-otp"), "identification method");
        }

        // The attached evidence files are the stored bytes.
        let out = dir.path().join(format!("{kind}-attachments"));
        std::fs::create_dir_all(&out).expect("dir");
        let file = dir.path().join(format!("{kind}.pdf"));
        let Some((ok, log)) = poppler(
            "pdfdetach",
            &[
                "-saveall",
                "-o",
                out.to_str().expect("path"),
                file.to_str().expect("path"),
            ],
        ) else {
            return;
        };
        assert!(ok, "pdfdetach: {log}");
        let mut attached: Vec<String> = std::fs::read_dir(&out)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        attached.sort();
        assert_eq!(attached.len(), 3, "{attached:?}");
        let json = attached
            .iter()
            .find(|n| n.ends_with(".json"))
            .expect("json");
        let tsr = attached.iter().find(|n| n.ends_with(".tsr")).expect("tsr");
        assert_eq!(std::fs::read(out.join(json)).expect("json"), row.record);
        assert_eq!(
            std::fs::read(out.join(tsr)).expect("tsr"),
            row.timestamp_token
        );
    }

    // The summary lists every event with its token time and digest.
    let (status, pdf) = get_pdf(&app, &id, "summary").await;
    assert_eq!(status, 200);
    let Some(text) = text_of(&pdf, dir.path(), "summary") else {
        return;
    };
    render_pages(dir.path(), "summary", engine);
    assert!(text.contains("Dossier de preuves"));
    // The provider's legal identity (here the default: its name only).
    assert!(text.contains("Prestataire : recommande"), "{text}");
    for row in &evidence {
        let token = ParsedToken::parse(&row.timestamp_token).expect("token");
        assert!(text.contains(&row.event), "summary lacks {}", row.event);
        assert!(
            text.contains(&row.record_sha256),
            "summary lacks {}",
            row.record_sha256
        );
        assert!(text.contains(&paris_french_seconds(token.info().gen_time)));
    }

    // Rendering is reproducible: the same evidence gives the same bytes.
    let (_, again) = get_pdf(&app, &id, "summary").await;
    assert_eq!(pdf, again, "PDF proofs are byte-for-byte reproducible");
}

/// pyHanko's verdicts on every signature of `pdf` (tests/support/pades_check.py), `None`
/// (with a notice, or a failure in CI) when pyHanko is not installed.
fn pyhanko_verdicts(pdf: &Path, roots: &Path) -> Option<Value> {
    let probe = Command::new("python3")
        .args(["-c", "import pyhanko"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "pyHanko must be installed in CI (pip install pyhanko)"
        );
        eprintln!("NOTICE: pyHanko not installed; PAdES validation not run");
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/pades_check.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(pdf)
        .arg(roots)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "pades_check.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("verdict JSON"))
}

/// The same file with one byte of its first stream changed: a byte the signature covers.
fn tampered(pdf: &[u8]) -> Vec<u8> {
    let mut bytes = pdf.to_vec();
    let at = bytes
        .windows(6)
        .position(|w| w == b"stream")
        .expect("a content stream")
        + 40;
    bytes[at] ^= 0x01;
    bytes
}

async fn proofs_carry_a_pades_signature_that_pyhanko_and_pdfsig_accept(engine: Engine) {
    let Some((sink, app)) = crate::helpers::spawn_app_with_sink(engine).await else {
        return;
    };
    let id = accepted_letter(&app, &sink).await;
    let dir = tempfile::tempdir().expect("dir");
    let evidence = app.evidence_of(&id).await;
    let files = app
        .download_evidence(&id, &evidence[0].id, dir.path())
        .await;
    for kind in ["deposit", "dispatch", "receipt", "summary"] {
        let (status, pdf) = get_pdf(&app, &id, kind).await;
        assert_eq!(status, 200, "{kind}");
        let (_, again) = get_pdf(&app, &id, kind).await;
        assert_eq!(
            pdf, again,
            "{kind}: a signed proof is kept, not signed again"
        );
        let file = dir.path().join(format!("{kind}.pdf"));
        std::fs::write(&file, &pdf).expect("write");

        // Our reading of the file: one CAdES-detached signature covering all but /Contents.
        let signatures = recommande::core::pades::signatures(&pdf).expect("signatures");
        let [
            recommande::core::pades::FoundSignature {
                byte_range: range,
                cms,
            },
        ] = signatures.as_slice()
        else {
            panic!("{kind}: one signature expected, found {}", signatures.len());
        };
        assert_eq!(range[0], 0);
        assert_eq!(
            range[2] + range[3],
            pdf.len(),
            "{kind}: the signature covers the end"
        );
        let update = String::from_utf8_lossy(&pdf[pdf.len() - 2000..]).to_string();
        assert!(
            update.contains("/FT /Sig") && update.contains("/Rect [56 "),
            "{kind}: the widget covers the visible box: {update}"
        );
        let seal = recommande::core::seal::ParsedSeal::parse(cms).expect("CMS");
        assert!(
            seal.signing_time().is_none(),
            "{kind}: PAdES forbids signing-time"
        );
        assert!(
            seal.signature_timestamp()
                .expect("unsigned attrs")
                .is_some(),
            "{kind}: B-T has a signature timestamp"
        );

        if let Some(verdicts) = pyhanko_verdicts(&file, &files.roots) {
            let [verdict] = verdicts["signatures"].as_array().expect("list").as_slice() else {
                panic!("{kind}: {verdicts}");
            };
            eprintln!("pyHanko on {kind}.pdf: {verdict}");
            assert_eq!(verdict["intact"], true, "{kind}: {verdict}");
            assert_eq!(verdict["valid"], true, "{kind}: {verdict}");
            assert_eq!(verdict["trusted"], true, "{kind}: {verdict}");
            assert_eq!(verdict["coverage"], "ENTIRE_FILE", "{kind}: {verdict}");
            assert_eq!(
                verdict["sub_filter"], "/ETSI.CAdES.detached",
                "{kind}: {verdict}"
            );
            let ts = &verdict["timestamp"];
            assert_eq!(ts["intact"], true, "{kind}: {verdict}");
            assert_eq!(ts["valid"], true, "{kind}: {verdict}");
            assert_eq!(ts["trusted"], true, "{kind}: {verdict}");
        }
        if let Some((ok, log)) = poppler("pdfsig", &[file.to_str().expect("path")]) {
            assert!(ok, "pdfsig failed on {kind}: {log}");
            assert!(log.contains("Signature is Valid"), "{kind}: {log}");
            assert!(log.contains("ETSI.CAdES.detached"), "{kind}: {log}");
        }
        if let Some((ok, log)) = poppler("qpdf", &["--check", file.to_str().expect("path")]) {
            assert!(ok, "qpdf --check failed on the signed {kind}: {log}");
        }

        // One byte changed in the signed text: both validators say so.
        let forged = dir.path().join(format!("{kind}-forged.pdf"));
        std::fs::write(&forged, tampered(&pdf)).expect("write");
        if let Some(verdicts) = pyhanko_verdicts(&forged, &files.roots) {
            assert_eq!(
                verdicts["signatures"][0]["intact"], false,
                "{kind}: {verdicts}"
            );
        }
        if let Some((_, log)) = poppler("pdfsig", &[forged.to_str().expect("path")]) {
            assert!(!log.contains("Signature is Valid"), "{kind} forged: {log}");
        }
    }
}

async fn the_configured_legal_identity_is_on_proofs_pages_and_verify_txt(engine: Engine) {
    let clock = std::sync::Arc::new(recommande::core::clock::SystemClock);
    let Some(app) = crate::helpers::spawn_app_with(engine, clock, |s| {
        s.provider.legal_name = "Recommande Services SAS".into();
        s.provider.registration = Some("RCS Paris 123 456 789".into());
        s.provider.contact = Some("support@recommande.example".into());
    })
    .await
    else {
        return;
    };
    let letter = app.deposit().await;
    let id = letter["id"].as_str().expect("id");
    let line =
        "Recommande Services SAS · RCS Paris 123 456 789 · contact : support@recommande.example";
    if let Some(text) = proof_text(&app, id, "deposit").await {
        assert!(text.contains(&format!("Prestataire : {line}")), "{text}");
    }
    let bundle = crate::bundle::bundle_bytes(&app, id).await;
    let dir = tempfile::tempdir().expect("dir");
    crate::bundle::unzip(&bundle, dir.path());
    let verify = std::fs::read_to_string(dir.path().join("VERIFY.txt")).expect("VERIFY.txt");
    assert!(
        verify.contains(&format!("Prestataire : {line}\nPrestataire non qualifié")),
        "{verify}"
    );
    assert!(verify.contains("Provider: Recommande Services SAS · RCS Paris 123 456 789 · contact: support@recommande.example"), "{verify}");
    let page = app.get_anon("/verify").await.text().await.expect("page");
    assert!(
        page.contains("Recommande Services SAS · RCS Paris 123 456 789"),
        "{page}"
    );
}
