//! The archive integrity audit (docs/LOG.md, archive audit): re-reads what the archive holds and checks it
//! the way a court expert would, ten years on — every document against its SHA-256 identity,
//! every evidence record's seal, timestamp and chain, every letter's chain head, the
//! transparency log rebuilt leaf by leaf against every signed tree head, and evidence missing
//! from the log. Each failure names the letter, the record or document, and the check. The
//! report is canonical JSON, sealed and timestamped like evidence, and kept.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::app::log::TransparencyLog;
use crate::core::clock::{Clock, rfc3339_micros, unix_micros};
use crate::core::evidence::EvidenceError;
use crate::core::log::merkle::{self, Frontier};
use crate::core::log::verify_sealed;
use crate::core::trust::TrustAnchors;
use crate::core::verify::{ChainExpectation, verify_evidence};
use crate::infra::content::ContentStore;
use crate::infra::storage::audit::AuditRunRow;
use crate::infra::storage::{Storage, StorageError};
use crate::infra::timestamping::TimestampingSealer;

/// Version of the audit report format.
pub const AUDIT_REPORT_VERSION: u32 = 1;
/// Rows read per query.
const PAGE: i64 = 500;

/// What to audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditScope {
    /// Every document and every letter.
    All,
    /// A random sample of this many documents and letters (the log is always checked whole:
    /// it is hashes only).
    Sample(u64),
}

impl AuditScope {
    fn name(self) -> String {
        match self {
            AuditScope::All => "all".into(),
            AuditScope::Sample(n) => format!("sample:{n}"),
        }
    }
}

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditFailure {
    /// `document`, `evidence`, `letter` or `log`.
    pub area: &'static str,
    /// The check that failed.
    pub check: String,
    /// The letter concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub letter_id: Option<String>,
    /// The evidence record concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence_id: Option<String>,
    /// The document concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_id: Option<String>,
    /// The log position concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_position: Option<i64>,
    /// What was found.
    pub detail: String,
}

/// The audit report (what is sealed and timestamped).
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// Format version.
    pub version: u32,
    /// Run id.
    pub id: String,
    /// `all` or `sample:N`.
    pub scope: String,
    /// Start (RFC 3339 UTC).
    pub started_at: String,
    /// End (RFC 3339 UTC).
    pub finished_at: String,
    /// Documents re-read.
    pub documents_checked: u64,
    /// Documents found crypto-shredded by the retention purge, as expected (every letter
    /// using them had its content destroyed); included in `documents_checked`.
    #[serde(default)]
    pub documents_destroyed: u64,
    /// Letters whose chain was checked.
    pub letters_checked: u64,
    /// Evidence records re-verified.
    pub evidence_checked: u64,
    /// Log leaves re-hashed.
    pub log_leaves_checked: u64,
    /// Tree heads compared with the rebuilt tree.
    pub tree_heads_checked: u64,
    /// True when nothing failed.
    pub passed: bool,
    /// Everything found wrong.
    pub failures: Vec<AuditFailure>,
}

/// A finished audit: the report and its sealed bytes.
#[derive(Debug, Clone)]
pub struct SignedAudit {
    /// The report.
    pub report: AuditReport,
    /// Canonical JSON of the report.
    pub bytes: Vec<u8>,
    /// CMS seal over `bytes`.
    pub seal: Vec<u8>,
    /// RFC 3161 token over SHA-256(`bytes`).
    pub timestamp_token: Vec<u8>,
}

/// Why the audit could not run (failures of what is audited are reported, not errors).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The database could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The report could not be sealed.
    #[error("sealing the audit report: {0}")]
    Seal(#[source] EvidenceError),
    /// The report has no canonical JSON form.
    #[error("sealing the audit report: {0}")]
    Canonical(#[source] serde_json::Error),
}

/// What an audit reads and seals with: the service's parts (`From<&Service>` in
/// `crate::app::service`), or any other set of them.
#[derive(Clone, Copy)]
pub struct Auditor<'a> {
    /// The rows audited, and where the report is kept.
    pub storage: &'a Storage,
    /// The document bytes audited.
    pub content: &'a ContentStore,
    /// The transparency log, caught up before its check.
    pub log: &'a TransparencyLog,
    /// Seals and timestamps the report.
    pub sealer: &'a TimestampingSealer,
    /// The anchors every seal and timestamp is verified against.
    pub anchors: &'a TrustAnchors,
    /// The time source.
    pub clock: &'a dyn Clock,
}

struct Run<'a> {
    parts: Auditor<'a>,
    failures: Vec<AuditFailure>,
    documents: u64,
    documents_destroyed: u64,
    letters: u64,
    evidence: u64,
    leaves: u64,
    heads: u64,
}

/// Runs an audit, seals its report and stores it.
pub async fn run<'a>(
    parts: impl Into<Auditor<'a>>,
    scope: AuditScope,
) -> Result<SignedAudit, AuditError> {
    let parts: Auditor<'a> = parts.into();
    let started = parts.clock.now();
    // Records written a moment ago may not be appended yet; append them so the log check
    // judges the archive, not the appender's timing.
    if let Err(e) = parts.log.append_pending().await {
        tracing::warn!(error = %e, "audit: the log appender could not catch up first");
    }
    let mut run = Run {
        parts,
        failures: Vec::new(),
        documents: 0,
        documents_destroyed: 0,
        letters: 0,
        evidence: 0,
        leaves: 0,
        heads: 0,
    };
    run.scan(scope).await?;
    run.log(unix_micros(started)).await?;

    let finished = parts.clock.now();
    let report = AuditReport {
        version: AUDIT_REPORT_VERSION,
        id: uuid::Uuid::now_v7().to_string(),
        scope: scope.name(),
        started_at: rfc3339_micros(started),
        finished_at: rfc3339_micros(finished),
        documents_checked: run.documents,
        documents_destroyed: run.documents_destroyed,
        letters_checked: run.letters,
        evidence_checked: run.evidence,
        log_leaves_checked: run.leaves,
        tree_heads_checked: run.heads,
        passed: run.failures.is_empty(),
        failures: run.failures,
    };
    let bytes = crate::core::canonical::to_vec(&report).map_err(AuditError::Canonical)?;
    let seal = parts
        .sealer
        .seal_bytes(&bytes, finished)
        .map_err(AuditError::Seal)?;
    let timestamp_token = parts
        .sealer
        .timestamp(Sha256::digest(&bytes).into())
        .await
        .map_err(|e| AuditError::Seal(EvidenceError::Timestamp(e)))?;
    parts
        .storage
        .insert_audit_run(&AuditRunRow {
            id: report.id.clone(),
            started_at: unix_micros(started),
            finished_at: unix_micros(finished),
            mode: report.scope.clone(),
            passed: report.passed,
            failures: report.failures.len() as i64,
            report: bytes.clone(),
            seal: seal.clone(),
            timestamp_token: timestamp_token.clone(),
        })
        .await?;
    if report.passed {
        tracing::info!(audit.id = %report.id, audit.scope = %report.scope, "archive audit passed");
    } else {
        tracing::error!(
            audit.id = %report.id,
            audit.failures = report.failures.len(),
            "archive audit found failures"
        );
    }
    Ok(SignedAudit {
        report,
        bytes,
        seal,
        timestamp_token,
    })
}

impl Run<'_> {
    /// Checks the documents and the letters the scope names: all of them, page by page, or
    /// a random sample of each.
    async fn scan(&mut self, scope: AuditScope) -> Result<(), AuditError> {
        match scope {
            AuditScope::All => {
                let mut after = String::new();
                loop {
                    let page = self.parts.storage.documents_after(&after, PAGE).await?;
                    let Some(last) = page.last() else { break };
                    after = last.id.clone();
                    for doc in &page {
                        self.document(doc).await;
                    }
                }
                let mut after = String::new();
                loop {
                    let page = self.parts.storage.letter_heads_after(&after, PAGE).await?;
                    let Some((last, _)) = page.last() else { break };
                    after = last.clone();
                    for (id, head) in &page {
                        self.letter(id, head.as_deref()).await?;
                    }
                }
            }
            AuditScope::Sample(n) => {
                let n = i64::try_from(n).unwrap_or(i64::MAX);
                for doc in &self.parts.storage.sample_documents(n).await? {
                    self.document(doc).await;
                }
                for (id, head) in &self.parts.storage.sample_letter_heads(n).await? {
                    self.letter(id, head.as_deref()).await?;
                }
            }
        }
        Ok(())
    }

    fn fail(&mut self, area: &'static str, check: &str, detail: String) -> &mut AuditFailure {
        self.failures.push(AuditFailure {
            area,
            check: check.to_string(),
            letter_id: None,
            evidence_id: None,
            document_id: None,
            log_position: None,
            detail,
        });
        let last = self.failures.len() - 1;
        &mut self.failures[last]
    }

    async fn document(&mut self, doc: &crate::infra::storage::DocumentRow) {
        self.documents += 1;
        let mut reader = match self.parts.content.open_read(&doc.sha256).await {
            Ok(r) => r,
            // Crypto-shredded by the retention purge: expected once every letter using the
            // bytes has had its content destroyed (recorded as ContentDestruction evidence);
            // a failure when a letter still needs them.
            Err(crate::infra::content::ContentError::Destroyed { destroyed_at, .. }) => {
                match self.parts.storage.letters_still_needing(&doc.sha256).await {
                    Ok(needing) if needing.is_empty() => self.documents_destroyed += 1,
                    Ok(needing) => {
                        let detail = format!(
                            "the data key was destroyed at {} (Unix µs) while {} letter(s) still need the bytes: {}",
                            destroyed_at,
                            needing.len(),
                            needing.join(", ")
                        );
                        let failure = self.fail("document", "document_destroyed_early", detail);
                        failure.document_id = Some(doc.id.clone());
                        failure.letter_id = needing.into_iter().next();
                    }
                    Err(e) => {
                        self.fail("document", "document_readable", e.to_string())
                            .document_id = Some(doc.id.clone());
                    }
                }
                return;
            }
            Err(e) => {
                self.fail("document", "document_readable", e.to_string())
                    .document_id = Some(doc.id.clone());
                return;
            }
        };
        // The reader checks every segment's tag and the plaintext's SHA-256 at the end; the
        // digest is recomputed here too so that the size is checked and the report says what
        // the bytes hash to.
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        loop {
            match reader.next_chunk().await {
                Ok(None) => break,
                Ok(Some(chunk)) => {
                    hasher.update(&chunk);
                    size += chunk.len() as u64;
                }
                Err(e @ crate::infra::content::ContentError::Integrity { .. }) => {
                    self.fail("document", "document_digest", e.to_string())
                        .document_id = Some(doc.id.clone());
                    return;
                }
                Err(e) => {
                    self.fail("document", "document_readable", e.to_string())
                        .document_id = Some(doc.id.clone());
                    return;
                }
            }
        }
        let digest = hex::encode(hasher.finalize());
        if digest != doc.sha256 || size != doc.size.max(0) as u64 {
            self.fail(
                "document",
                "document_digest",
                format!(
                    "stored bytes hash to {digest} ({size} bytes); the document's identity is {} ({} bytes)",
                    doc.sha256, doc.size
                ),
            )
            .document_id = Some(doc.id.clone());
        }
    }

    async fn letter(&mut self, letter_id: &str, head: Option<&str>) -> Result<(), AuditError> {
        self.letters += 1;
        let rows = self.parts.storage.evidence_of_letter(letter_id).await?;
        let renewals = self.parts.storage.renewals_of_letter(letter_id).await?;
        let now = self.parts.clock.now();
        let mut previous: Option<String> = None;
        for row in &rows {
            self.evidence += 1;
            let actual = hex::encode(Sha256::digest(&row.record));
            if actual != row.record_sha256 {
                let f = self.fail(
                    "evidence",
                    "record_digest",
                    format!(
                        "the record bytes hash to {actual}, the row says {}",
                        row.record_sha256
                    ),
                );
                f.letter_id = Some(letter_id.to_string());
                f.evidence_id = Some(row.id.clone());
            }
            let chain = match &previous {
                None => ChainExpectation::First,
                Some(p) => ChainExpectation::After(p),
            };
            let report = verify_evidence(
                &row.record,
                &row.seal,
                &row.timestamp_token,
                self.parts.anchors,
                chain,
            );
            for check in report.checks.iter().filter(|c| !c.passed) {
                let f = self.fail("evidence", check.name, check.detail.clone());
                f.letter_id = Some(letter_id.to_string());
                f.evidence_id = Some(row.id.clone());
            }
            // RFC 4998 spirit: the token is still valid today, or its renewals hold.
            let files: Vec<crate::core::renewal::RenewalFiles<'_>> = renewals
                .iter()
                .filter(|r| r.evidence_id == row.id)
                .map(|r| crate::core::renewal::RenewalFiles {
                    record: &r.record,
                    token: &r.timestamp_token,
                })
                .collect();
            if let Err(detail) = crate::core::renewal::verify_chain(
                &report.sha256,
                Some(&row.id),
                &row.timestamp_token,
                &files,
                self.parts.anchors,
                now,
            ) {
                let f = self.fail("evidence", crate::core::renewal::CHECK_NAME, detail);
                f.letter_id = Some(letter_id.to_string());
                f.evidence_id = Some(row.id.clone());
            }
            previous = Some(actual);
        }
        if previous.as_deref() != head {
            let f = self.fail(
                "letter",
                "chain_head",
                format!(
                    "the letter's chain head is {} but its last stored record hashes to {}: a record was removed or added",
                    head.unwrap_or("none"),
                    previous.as_deref().unwrap_or("none")
                ),
            );
            f.letter_id = Some(letter_id.to_string());
        }
        Ok(())
    }

    async fn log(&mut self, started: i64) -> Result<(), AuditError> {
        let heads = self.parts.storage.tree_heads().await?;
        let mut heads = heads.into_iter().peekable();
        let mut frontier = Frontier::empty();
        let mut after = -1i64;
        loop {
            let page = self.parts.storage.log_leaves_after(after, PAGE * 4).await?;
            let Some((last, _)) = page.last() else { break };
            after = last.position;
            for (leaf, current) in page {
                self.leaves += 1;
                if leaf.position != frontier.size() as i64 {
                    let f = self.fail(
                        "log",
                        "log_contiguous",
                        format!("expected leaf {}, found {}", frontier.size(), leaf.position),
                    );
                    f.log_position = Some(leaf.position);
                }
                match current {
                    None => {
                        let f = self.fail(
                            "log",
                            "log_leaf_evidence",
                            "the logged evidence record no longer exists".into(),
                        );
                        f.evidence_id = Some(leaf.evidence_id.clone());
                        f.log_position = Some(leaf.position);
                    }
                    Some(now) if now != leaf.record_sha256 => {
                        let f = self.fail(
                            "log",
                            "log_leaf_evidence",
                            format!(
                                "the record was logged as {} but the row now says {now}",
                                leaf.record_sha256
                            ),
                        );
                        f.evidence_id = Some(leaf.evidence_id.clone());
                        f.log_position = Some(leaf.position);
                    }
                    Some(_) => {}
                }
                let data = hex::decode(&leaf.record_sha256).unwrap_or_default();
                frontier.append(merkle::leaf_hash(&data));
                while let Some(head) = heads.next_if(|h| h.tree_size as u64 <= frontier.size()) {
                    self.tree_head(&head, &frontier);
                }
            }
        }
        for head in heads {
            self.heads += 1;
            let f = self.fail(
                "log",
                "tree_head_root",
                format!(
                    "tree head of {} leaves, but the log holds only {}",
                    head.tree_size,
                    frontier.size()
                ),
            );
            f.log_position = Some(head.tree_size);
        }
        // Every record written before the audit started must be in the log.
        for (evidence_id, letter_id) in self.parts.storage.unlogged_evidence(started, 1000).await? {
            let f = self.fail(
                "log",
                "evidence_logged",
                "this evidence record is not in the transparency log".into(),
            );
            f.evidence_id = Some(evidence_id);
            f.letter_id = Some(letter_id);
        }
        Ok(())
    }

    fn tree_head(&mut self, head: &crate::infra::storage::log::TreeHeadRow, frontier: &Frontier) {
        self.heads += 1;
        if head.tree_size as u64 == frontier.size() {
            let root = hex::encode(frontier.root());
            if root != head.root_hash {
                let f = self.fail(
                    "log",
                    "tree_head_root",
                    format!(
                        "the log's leaves give root {root} for {} leaves; the signed head says {}",
                        head.tree_size, head.root_hash
                    ),
                );
                f.log_position = Some(head.tree_size);
            }
        }
        if let Err(e) = verify_sealed(
            &head.head,
            &head.seal,
            &head.timestamp_token,
            self.parts.anchors,
        ) {
            let f = self.fail("log", "tree_head_seal", e);
            f.log_position = Some(head.tree_size);
        }
        let sealed_root = serde_json::from_slice::<crate::core::log::TreeHead>(&head.head)
            .map(|h| h.root_hash)
            .unwrap_or_default();
        if sealed_root != head.root_hash {
            let f = self.fail(
                "log",
                "tree_head_seal",
                "the stored root differs from the sealed head's".into(),
            );
            f.log_position = Some(head.tree_size);
        }
    }
}
