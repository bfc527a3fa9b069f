//! `POST /v1/documents` takes a file for a PDF only if it is structured as one (issue 12 §5):
//! PDFs written by real tools (qpdf: empty, linearized, with object and cross-reference
//! streams) and by our own writers (a composed letter, the proofs) are accepted; a header
//! alone, a truncated file, an HTML polyglot, an executable with `%PDF-` further on and a
//! `startxref` pointing nowhere are refused with the reason, and leave nothing behind.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::bad_input::assert_problem;
use crate::helpers::{Engine, TestApp, sample_pdf, spawn_app};

crate::on_both_engines!(
    pdfs_from_qpdf_and_from_our_own_writers_are_accepted,
    files_that_only_look_like_pdfs_are_refused_naming_why_and_leave_nothing,
);

/// Runs `qpdf args…`; `None` (with a notice) when qpdf is not installed outside CI.
fn qpdf(args: &[&str]) -> Option<()> {
    match Command::new("qpdf").args(args).output() {
        Ok(out) => {
            // 0: fine; 3: written with warnings.
            assert!(
                matches!(out.status.code(), Some(0 | 3)),
                "qpdf {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            Some(())
        }
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "qpdf must be installed in CI: {e}"
            );
            eprintln!("NOTICE: qpdf not installed ({e}); PDFs written by qpdf not uploaded");
            None
        }
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The PDFs qpdf writes from our sample: `(name, bytes)`.
fn qpdf_variants(dir: &Path) -> Option<Vec<(String, Vec<u8>)>> {
    let source = dir.join("source.pdf");
    std::fs::write(&source, sample_pdf("qpdf source")).expect("write");
    let variants: [(&str, &[&str]); 5] = [
        ("empty", &["--empty"]),
        ("linearized", &["--linearize"]),
        ("object-streams", &["--object-streams=generate"]),
        (
            "linearized-object-streams",
            &["--linearize", "--object-streams=generate"],
        ),
        ("qdf", &["--qdf", "--object-streams=disable"]),
    ];
    let mut out = Vec::new();
    for (name, flags) in variants {
        let target = dir.join(format!("{name}.pdf"));
        let mut args: Vec<&str> = flags.to_vec();
        if name != "empty" {
            args.push(path(&source));
        }
        args.push(path(&target));
        qpdf(&args)?;
        out.push((name.to_string(), std::fs::read(&target).expect("read")));
    }
    Some(out)
}

async fn upload(app: &TestApp, name: &str, bytes: Vec<u8>) -> reqwest::Response {
    app.upload_with_key(&app.api_key, &format!("{name}.pdf"), bytes)
        .await
}

async fn pdfs_from_qpdf_and_from_our_own_writers_are_accepted(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let mut pdfs = vec![("sample".to_string(), sample_pdf("sample"))];

    // Our own writers: a composed letter (the fast writer) and the proof of deposit.
    let response = app
        .post_letter(&crate::compose::body(
            crate::compose::compose("professional", true),
            false,
        ))
        .await;
    assert_eq!(response.status(), 201);
    let letter: Value = response.json().await.expect("json");
    let sha = letter["documents"][0]["sha256"].as_str().expect("sha");
    let mut composed = Vec::new();
    let mut reader = app.service.content.open_read(sha).await.expect("stored");
    while let Some(chunk) = reader.next_chunk().await.expect("read") {
        composed.extend_from_slice(&chunk);
    }
    pdfs.push(("composed".into(), composed));
    let id = letter["id"].as_str().expect("id");
    let proof = app
        .get(&format!("/v1/letters/{id}/proofs/deposit.pdf"))
        .await;
    assert_eq!(proof.status(), 200);
    pdfs.push((
        "deposit-proof".into(),
        proof.bytes().await.expect("proof").to_vec(),
    ));
    if let Some(variants) = qpdf_variants(dir.path()) {
        pdfs.extend(variants);
    }

    for (name, bytes) in pdfs {
        assert_eq!(
            recommande::core::pdf_check::check(&bytes),
            Ok(()),
            "{name} passes the check"
        );
        let response = upload(&app, &name, bytes).await;
        let status = response.status().as_u16();
        assert!(
            status == 201 || status == 200,
            "{name}: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }
}

async fn files_that_only_look_like_pdfs_are_refused_naming_why_and_leave_nothing(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let good = sample_pdf("hostile base");
    let startxref = good
        .windows(9)
        .rposition(|w| w == b"startxref")
        .expect("startxref");
    let mut nowhere = good[..startxref].to_vec();
    nowhere.extend_from_slice(b"startxref\n42\n%%EOF\n");
    let mut past_the_end = good[..startxref].to_vec();
    past_the_end.extend_from_slice(b"startxref\n9999999\n%%EOF\n");
    let mut html = b"%PDF-1.7\n%<html><script>fetch('/steal')</script>\n".to_vec();
    html.extend_from_slice(&good[b"%PDF-1.7\n".len()..]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("fake", b"%PDF-1.4 fake".to_vec(), "no %%EOF"),
        ("truncated", good[..good.len() / 2].to_vec(), "no %%EOF"),
        ("polyglot", html, "HTML markup (`<html`)"),
        (
            "nowhere",
            nowhere,
            "no cross-reference table or stream where startxref points",
        ),
        ("past-the-end", past_the_end, "past the end of the file"),
    ];
    for (name, bytes, reason) in cases {
        let problem =
            assert_problem(upload(&app, name, bytes).await, 422, "validation-failed").await;
        assert_eq!(problem["errors"][0]["field"], "file", "{name}: {problem}");
        let message = problem["errors"][0]["message"].as_str().expect("message");
        assert!(message.starts_with("not a PDF: "), "{name}: {message}");
        assert!(message.contains(reason), "{name}: {message}");
    }
    // An executable that carries a PDF further on is no PDF at all: 415, naming what it is.
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    elf.extend_from_slice(&good);
    let problem = assert_problem(
        upload(&app, "elf", elf).await,
        415,
        "unsupported-media-type",
    )
    .await;
    let detail = problem["detail"].as_str().expect("detail");
    assert!(detail.contains("an ELF executable header"), "{detail}");

    let stored = std::fs::read_dir(app.dir.path().join("documents"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(stored, 0, "no refused file was stored");
    let incoming = std::fs::read_dir(app.dir.path().join("incoming"))
        .expect("incoming")
        .count();
    assert_eq!(incoming, 0, "no temporary file left behind");
    // The same bytes made whole are accepted.
    assert_eq!(upload(&app, "good", good).await.status(), 201);
}
