//! `recommande bench deposit`: letters/s through the whole deposit pipeline (evidence built,
//! sealed, timestamped, stored in batched transactions), and in the same run a raw batched
//! insert of the same rows, so the ratio shows what the evidence work costs.

use std::fmt;
use std::time::Instant;

use crate::app::api_key::Caller;
use crate::app::service::Service;
use crate::core::clock::unix_micros;
use crate::domain::letter::{DepositRequest, EmailAddress, Recipient, RecipientKind, Sender};
use crate::infra::storage::{DocumentRow, NewDeposit};

/// Letters written per database transaction.
const LETTERS_PER_TRANSACTION: usize = 1_000;

/// Figures of one run.
#[derive(Debug, Clone)]
pub struct DepositBenchReport {
    /// Database engine.
    pub engine: &'static str,
    /// Letters deposited.
    pub letters: usize,
    /// Sealing threads.
    pub threads: usize,
    /// End-to-end letters per second.
    pub letters_per_second: f64,
    /// Seconds spent building, sealing and timestamping.
    pub seal_seconds: f64,
    /// Seconds spent writing.
    pub store_seconds: f64,
    /// Raw batched insert of the same rows, rows (letters) per second.
    pub raw_letters_per_second: f64,
}

impl fmt::Display for DepositBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "bench deposit ({}; {} letters; {} sealing threads; {} letters per transaction)",
            self.engine, self.letters, self.threads, LETTERS_PER_TRANSACTION
        )?;
        writeln!(
            f,
            "  deposit pipeline : {:>10.0} letters/s  (seal+timestamp {:.3} s, store {:.3} s)",
            self.letters_per_second, self.seal_seconds, self.store_seconds
        )?;
        writeln!(
            f,
            "  raw batched insert: {:>9.0} letters/s  (same rows: letter, document link, evidence)",
            self.raw_letters_per_second
        )?;
        write!(
            f,
            "  ratio            : {:>10.1} %",
            100.0 * self.letters_per_second / self.raw_letters_per_second
        )
    }
}

/// Runs the benchmark on `database_url` (default: SQLite in a fresh temporary directory).
pub async fn run(
    letters: usize,
    database_url: Option<String>,
    threads: usize,
) -> anyhow::Result<DepositBenchReport> {
    anyhow::ensure!(letters > 0, "--letters must be positive");
    let scratch = super::Scratch::new();
    let service = scratch.service(database_url).await?;
    let mailing = Mailing::create(&service).await?;
    let caller = &mailing.caller;
    let documents = &mailing.documents;
    let requests = |n: usize| mailing.requests(n);

    // Warm-up: connections, page cache, code paths.
    let warm = service
        .deposits
        .prepare_many(caller, requests(200)?, documents, threads)
        .await?;
    service.deposits.commit(&warm, None).await?;

    let batch = requests(letters)?;
    let started = Instant::now();
    let prepared = service
        .deposits
        .prepare_many(caller, batch, documents, threads)
        .await?;
    let sealed_at = Instant::now();
    for chunk in prepared.chunks(LETTERS_PER_TRANSACTION) {
        service.deposits.commit(chunk, None).await?;
    }
    let finished = Instant::now();

    // The same rows with fresh ids, inserted raw.
    let raw: Vec<NewDeposit> = prepared
        .iter()
        .map(|p| {
            let mut row = p.to_new_deposit();
            row.letter.id = uuid::Uuid::now_v7().to_string();
            row.evidence.id = uuid::Uuid::now_v7().to_string();
            row.evidence.letter_id = row.letter.id.clone();
            row
        })
        .collect();
    let raw_started = Instant::now();
    for chunk in raw.chunks(LETTERS_PER_TRANSACTION) {
        service.storage.insert_deposits(chunk, None).await?;
    }
    let raw_seconds = raw_started.elapsed().as_secs_f64();
    let engine = service.storage.engine();
    service.storage.close().await;

    let total = finished.duration_since(started).as_secs_f64();
    Ok(DepositBenchReport {
        engine,
        letters,
        threads,
        letters_per_second: letters as f64 / total,
        seal_seconds: sealed_at.duration_since(started).as_secs_f64(),
        store_seconds: finished.duration_since(sealed_at).as_secs_f64(),
        raw_letters_per_second: letters as f64 / raw_seconds,
    })
}

/// A tenant with one shared document, as in a mailing of reminders (also used by
/// `bench renew`).
pub(crate) struct Mailing {
    /// The sending account.
    pub caller: Caller,
    /// The shared document.
    pub documents: Vec<DocumentRow>,
}

impl Mailing {
    /// Creates the tenant and stores the document.
    pub(crate) async fn create(service: &Service) -> anyhow::Result<Self> {
        let now = unix_micros(service.clock.now());
        let tenant = service
            .storage
            .ensure_tenant(&format!("bench-{}", uuid::Uuid::new_v4()), now)
            .await?;
        let caller = Caller {
            tenant_id: tenant.id.clone(),
            tenant_name: tenant.name.clone(),
            api_key_id: "bench".into(),
        };
        let mut incoming = service.content.begin(1 << 20).await?;
        incoming
            .write(
                format!(
                    "%PDF-1.7\n% recommande bench {}\n%%EOF\n",
                    uuid::Uuid::new_v4()
                )
                .as_bytes(),
            )
            .await?;
        let content = incoming.finish().await?;
        let document = service
            .storage
            .insert_document(&DocumentRow {
                id: uuid::Uuid::now_v7().to_string(),
                tenant_id: tenant.id.clone(),
                sha256: content.sha256,
                size: content.size as i64,
                media_type: "application/pdf".into(),
                filename: "relance.pdf".into(),
                created_at: now,
            })
            .await?;
        Ok(Mailing {
            caller,
            documents: vec![document],
        })
    }

    /// `n` letters to distinct recipients with the shared document.
    pub(crate) fn requests(&self, n: usize) -> anyhow::Result<Vec<DepositRequest>> {
        (0..n)
            .map(|i| {
                Ok(DepositRequest {
                    sender: Sender {
                        name: "Cabinet de recouvrement Exemple".into(),
                        email: EmailAddress::parse("envoi@recouvrement.example")
                            .map_err(anyhow::Error::msg)?,
                        organization: None,
                    },
                    recipient: Recipient {
                        name: format!("Débiteur n°{i}"),
                        email: EmailAddress::parse(&format!("debiteur{i}@exemple.fr"))
                            .map_err(anyhow::Error::msg)?,
                        kind: RecipientKind::Professional,
                        consent_id: None,
                    },
                    reference: Some(format!("DOS-{i:06}")),
                    document_ids: vec![self.documents[0].id.clone()],
                    compose: None,
                    template_id: None,
                    collection: None,
                })
            })
            .collect()
    }
}
