//! `recommande bench verify`: how long the offline verifier takes on a realistic proof bundle
//! (target: ≤ 10 ms for a 6-evidence bundle).
//!
//! A service is started on a temporary SQLite database with the development PKI, like
//! `bench deposit`; six evidence records of one letter are sealed and timestamped with its
//! real keys (deposit, notification, acceptance, then one content handover per document, so
//! three documents of 200 KiB), laid out and sealed as the bundle route does, and the zip is
//! verified in memory `iterations` times against the service's anchors.

use std::fmt;
use std::time::Instant;

use anyhow::Context;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::app::service::Service;
use crate::core::bundle::verify::verify_bundle;
use crate::core::bundle::{BundleInput, crc32, plan, write_stream};
use crate::core::clock::{rfc3339_micros, unix_micros};
use crate::core::evidence::{ContentItem, EvidenceEvent, PartyInfo, deposit_record};
use crate::infra::storage::{DocumentRow, EvidenceRow};

/// Documents in the benchmark letter.
const DOCUMENTS: usize = 3;
/// Size of each document.
const DOCUMENT_BYTES: usize = 200 * 1024;

/// Figures of one run.
#[derive(Debug, Clone)]
pub struct VerifyBenchReport {
    /// Evidence records in the bundle.
    pub evidence: usize,
    /// Size of the zip.
    pub bundle_bytes: usize,
    /// Verifications run.
    pub iterations: usize,
    /// Bundles verified per second.
    pub bundles_per_second: f64,
    /// Mean milliseconds per bundle.
    pub mean_ms: f64,
    /// Slowest verification, milliseconds.
    pub max_ms: f64,
    /// Mean milliseconds to PAdES-sign one PDF proof (seal, embedded TSA token, the PDF
    /// update).
    pub sign_pdf_ms: f64,
    /// Same-run baseline: mean milliseconds to seal and timestamp 32 bytes (CAdES B-T), the
    /// cryptography alone.
    pub seal_only_ms: f64,
    /// Mean size of a proof PDF, bytes.
    pub proof_bytes: usize,
}

impl fmt::Display for VerifyBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "bench verify ({} evidence records, {DOCUMENTS} documents of {} KiB, bundle {} KiB; {} verifications)",
            self.evidence,
            DOCUMENT_BYTES / 1024,
            self.bundle_bytes / 1024,
            self.iterations
        )?;
        writeln!(
            f,
            "  verify_bundle : {:>8.1} bundles/s",
            self.bundles_per_second
        )?;
        writeln!(
            f,
            "  per bundle    : {:>8.2} ms mean, {:.2} ms max (target ≤ 10 ms)",
            self.mean_ms, self.max_ms
        )?;
        writeln!(
            f,
            "  sign a proof  : {:>8.2} ms mean, PAdES B-T, proofs of {} KiB (target ≤ 2 ms)",
            self.sign_pdf_ms,
            self.proof_bytes / 1024
        )?;
        write!(
            f,
            "  baseline      : {:>8.2} ms mean to seal and timestamp 32 bytes (same run)",
            self.seal_only_ms
        )
    }
}

/// Runs the benchmark in a fresh temporary directory.
pub async fn run(iterations: usize) -> anyhow::Result<VerifyBenchReport> {
    anyhow::ensure!(iterations > 0, "--iterations must be positive");
    let scratch = super::Scratch::new();
    let service = scratch.service(None).await?;
    let bundle = build_bundle(&service)?;
    service.storage.close().await;
    let (sign_pdf_ms, seal_only_ms) = signing_figures(&service, &bundle.2, iterations).await?;
    let proof_bytes = bundle.2.iter().map(|p| p.pdf.len()).sum::<usize>() / bundle.2.len().max(1);
    let anchors = service.anchors.clone();

    // Warm-up, and a check that the figure is about a valid bundle.
    let report = verify_bundle(
        std::io::Cursor::new(&bundle.0),
        Some(&anchors),
        time::OffsetDateTime::now_utc(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(
        report.is_valid(),
        "the benchmark bundle does not verify: {:?}",
        report.checks.iter().find(|c| !c.passed)
    );

    let mut max = std::time::Duration::ZERO;
    let started = Instant::now();
    for _ in 0..iterations {
        let one = Instant::now();
        let report = verify_bundle(
            std::io::Cursor::new(&bundle.0),
            Some(&anchors),
            time::OffsetDateTime::now_utc(),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        max = max.max(one.elapsed());
        anyhow::ensure!(report.is_valid(), "a verification failed");
    }
    let total = started.elapsed().as_secs_f64();
    Ok(VerifyBenchReport {
        evidence: bundle.1,
        bundle_bytes: bundle.0.len(),
        iterations,
        bundles_per_second: iterations as f64 / total,
        mean_ms: total * 1000.0 / iterations as f64,
        max_ms: max.as_secs_f64() * 1000.0,
        sign_pdf_ms,
        seal_only_ms,
        proof_bytes,
    })
}

/// Mean milliseconds to sign a proof, cycling through `proofs`, and to seal and timestamp
/// 32 bytes, each `iterations` times.
async fn signing_figures(
    service: &Service,
    proofs: &[crate::core::proof::Rendered],
    iterations: usize,
) -> anyhow::Result<(f64, f64)> {
    anyhow::ensure!(!proofs.is_empty(), "no proof was rendered");
    let now = service.clock.now();
    let started = Instant::now();
    for i in 0..iterations {
        let proof = &proofs[i % proofs.len()];
        let field = crate::core::pades::SignatureField {
            signer: &service.settings.server.provider_name,
            reason: "bench",
            contact: &service.settings.server.public_url,
            at: now,
            rect: Some(proof.signature_box),
        };
        let signed = service.sealer.sign_pdf(&proof.pdf, &field).await?;
        anyhow::ensure!(signed.len() > proof.pdf.len(), "nothing was signed");
    }
    let sign = started.elapsed().as_secs_f64() * 1000.0 / iterations as f64;
    let started = Instant::now();
    for i in 0..iterations {
        let bytes = Sha256::digest(i.to_be_bytes());
        service.sealer.seal_bytes_timestamped(&bytes, now).await?;
    }
    let seal = started.elapsed().as_secs_f64() * 1000.0 / iterations as f64;
    Ok((sign, seal))
}

/// The zip of a letter with six sealed and timestamped records, the record count and the
/// letter's rendered (unsigned) proofs.
fn build_bundle(
    service: &Service,
) -> anyhow::Result<(Vec<u8>, usize, Vec<crate::core::proof::Rendered>)> {
    let now = service.clock.now();
    let letter_id = uuid::Uuid::now_v7().to_string();
    let mut documents = Vec::new();
    for i in 0..DOCUMENTS {
        let mut bytes = format!("%PDF-1.7\n% recommande bench verify, document {i}\n").into_bytes();
        bytes.resize(DOCUMENT_BYTES, b'.');
        let row = DocumentRow {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: "bench".into(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            size: bytes.len() as i64,
            media_type: "application/pdf".into(),
            filename: format!("relance-{i}.pdf"),
            created_at: unix_micros(now),
        };
        documents.push((row, bytes));
    }
    let content: Vec<ContentItem> = documents
        .iter()
        .map(|(d, _)| ContentItem {
            document_id: d.id.clone(),
            name: d.filename.clone(),
            media_type: d.media_type.clone(),
            size: d.size as u64,
            sha256: d.sha256.clone(),
        })
        .collect();
    let party = |name: &str, email: &str, kind: Option<&str>| PartyInfo {
        name: name.into(),
        email: email.into(),
        organization: None,
        kind: kind.map(str::to_string),
        identity: None,
    };
    let deadline = rfc3339_micros(now + time::Duration::days(15));
    let mut events = vec![
        (EvidenceEvent::SubmissionAcceptance, Map::new()),
        (
            EvidenceEvent::NotificationForAcceptance,
            Map::from_iter([("deadline".to_string(), Value::String(deadline))]),
        ),
        (EvidenceEvent::ConsignmentAcceptance, Map::new()),
    ];
    for (d, _) in &documents {
        events.push((
            EvidenceEvent::ContentHandover,
            Map::from_iter([("document_id".to_string(), Value::String(d.id.clone()))]),
        ));
    }
    let mut rows = Vec::new();
    let mut previous: Option<String> = None;
    for (seq, (event, details)) in events.into_iter().enumerate() {
        let evidence_id = uuid::Uuid::now_v7().to_string();
        let mut record = deposit_record(
            &evidence_id,
            &letter_id,
            now,
            service.sealer.provider(),
            service.sealer.policy(),
            party(
                "Cabinet de recouvrement Exemple",
                "envoi@recouvrement.example",
                None,
            ),
            party(
                "SARL Débitrice",
                "compta@debitrice.example",
                Some("professional"),
            ),
            content.clone(),
            details,
        );
        record.event = event;
        record.event_uri = event.uri();
        record.previous_evidence_sha256 = previous.clone();
        let sealed = service
            .sealer
            .seal_with_embedded_tsa(record, now)
            .context("the benchmark needs the embedded TSA")??;
        previous = Some(hex::encode(sealed.sha256));
        rows.push(EvidenceRow {
            seq: seq as i64 + 1,
            id: evidence_id,
            letter_id: letter_id.clone(),
            event: event.name().to_string(),
            event_time: unix_micros(now),
            record_sha256: hex::encode(sealed.sha256),
            record: sealed.bytes,
            seal: sealed.seal,
            timestamp_token: sealed.timestamp_token,
            created_at: unix_micros(now),
        });
    }
    // The PDF proofs the download route adds, rendered from the same records.
    let code = service.lifecycle.verification_code(&letter_id);
    let context = crate::core::proof::ProofContext {
        provider: &service.settings.provider,
        letter_id: &letter_id,
        evidence: &rows,
        provider_name: &service.settings.server.provider_name,
        verification_code: &code,
        public_url: &service.settings.server.public_url,
        development_pki: service.trust.development,
    };
    let mut proofs = Vec::new();
    let mut rendered = Vec::new();
    for kind in crate::core::proof::ProofKind::ALL {
        if let Some(pdf) = crate::core::proof::render(kind, &context)? {
            proofs.push((kind.file_name(), pdf.pdf.clone()));
            rendered.push(pdf);
        }
    }
    let rows_of_documents: Vec<DocumentRow> = documents.iter().map(|(d, _)| d.clone()).collect();
    let plan = plan(&BundleInput {
        provider: &service.settings.provider,
        letter_id: &letter_id,
        evidence: &rows,
        documents: &rows_of_documents,
        roots_pem: &service.anchors_pem,
        proofs: &proofs,
        // The records here are built in memory, not stored, so they are in no log; the
        // inclusion check adds a few dozen hashes per bundle.
        log: None,
        renewals: &[],
    });
    let seal = service.sealer.seal_bytes(&plan.asic_manifest, now)?;
    let mut zip = Vec::new();
    write_stream(
        &plan,
        &seal,
        &mut zip,
        documents
            .into_iter()
            .map(|(_, bytes)| (crc32(&bytes), std::io::Cursor::new(bytes))),
    )?;
    Ok((zip, rows.len(), rendered))
}
