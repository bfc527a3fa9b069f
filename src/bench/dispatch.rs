//! `recommande bench dispatch`: what a collection agency waits for — the seconds from
//! `POST /v1/batches` to the last proof of dispatch (`NotificationForAcceptance` evidence
//! committed), with the service's own workers running, through the HTTP API on loopback.
//! The same run measures the baseline: the same batches notified one letter per
//! transaction (`[workers] dispatch_chunk = 1`). With `--batches` above one, the batches
//! are posted back to back and the backlog (letters deposited but not yet notified) is read
//! when the last one is deposited.

use std::fmt;
use std::time::{Duration, Instant};

use super::batch::{batch_body, submit, upload_document, wait_completed};
use crate::core::clock::unix_micros;
use crate::core::evidence::EvidenceEvent;

/// Figures of one service configuration.
#[derive(Debug, Clone)]
pub struct DispatchRun {
    /// `[workers] dispatch_chunk`.
    pub chunk: usize,
    /// Seconds until the first batch's 202.
    pub accepted_seconds: f64,
    /// Seconds until the last batch read `completed`.
    pub deposited_seconds: f64,
    /// Letters deposited but not notified when the last batch read `completed`.
    pub backlog: u64,
    /// Seconds until the last notification's evidence was committed.
    pub notified_seconds: f64,
    /// Processor time of the process over the run (user + system), seconds.
    pub cpu_seconds: Option<f64>,
}

/// Figures of a run.
#[derive(Debug, Clone)]
pub struct DispatchBenchReport {
    /// Database engine.
    pub engine: &'static str,
    /// Letters per batch.
    pub letters: usize,
    /// Batches posted back to back.
    pub batches: usize,
    /// `smtp` (with the relay's address) or `directory`.
    pub transport: String,
    /// The chunked run first, then the baseline.
    pub runs: Vec<DispatchRun>,
}

impl fmt::Display for DispatchBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = (self.letters * self.batches) as f64;
        write!(
            f,
            "bench dispatch ({}; {} batch{} of {} letters back to back; {} transport; HTTP on loopback, workers running)",
            self.engine,
            self.batches,
            if self.batches == 1 { "" } else { "es" },
            self.letters,
            self.transport
        )?;
        for run in &self.runs {
            let label = if run.chunk == 1 {
                "one by one (baseline)".to_string()
            } else {
                format!("chunks of {}", run.chunk)
            };
            write!(
                f,
                "\n  {label:<22}: all notified after {:>7.3} s  ({:>6.0} notifications/s overall; \
                 deposited after {:.3} s, 202 after {:.3} s; backlog then {})",
                run.notified_seconds,
                total / run.notified_seconds,
                run.deposited_seconds,
                run.accepted_seconds,
                run.backlog
            )?;
            if let Some(cpu) = run.cpu_seconds {
                write!(
                    f,
                    "\n  {:<22}  processor {:.3} ms per letter ({cpu:.2} s over {:.3} s)",
                    "",
                    cpu * 1000.0 / total,
                    run.notified_seconds
                )?;
            }
        }
        if let [chunked, baseline] = self.runs.as_slice() {
            write!(
                f,
                "\n  speed-up              : {:>7.1} x",
                baseline.notified_seconds / chunked.notified_seconds
            )?;
        }
        Ok(())
    }
}

/// Runs the benchmark: chunks of `chunk`, then (with `baseline`) one by one.
pub async fn run(
    letters: usize,
    batches: usize,
    chunk: usize,
    baseline: bool,
    smtp_url: Option<String>,
    database_url: Option<String>,
) -> anyhow::Result<DispatchBenchReport> {
    anyhow::ensure!(
        (1..=crate::domain::batch::MAX_LETTERS_PER_BATCH).contains(&letters),
        "--letters must be from 1 to {}",
        crate::domain::batch::MAX_LETTERS_PER_BATCH
    );
    anyhow::ensure!(
        (1..=1000).contains(&batches),
        "--batches must be from 1 to 1000"
    );
    let mut runs = Vec::new();
    let mut engine = "";
    // A database named by URL outlives a run: both runs then share one data directory, so
    // that the second opens the first's rows with the same master keys.
    let shared = database_url.as_ref().map(|_| super::Scratch::new());
    for chunk in std::iter::once(chunk).chain(baseline.then_some(1)) {
        let own = super::Scratch::new();
        let scratch = shared.as_ref().unwrap_or(&own);
        let (run, used) = run_one(
            scratch,
            letters,
            batches,
            chunk,
            smtp_url.clone(),
            database_url.clone(),
        )
        .await?;
        engine = used;
        runs.push(run);
    }
    Ok(DispatchBenchReport {
        engine,
        letters,
        batches,
        transport: match &smtp_url {
            Some(url) => format!("smtp ({})", crate::config::redact_url(url)),
            None => "directory".into(),
        },
        runs,
    })
}

async fn run_one(
    scratch: &super::Scratch,
    letters: usize,
    batches: usize,
    chunk: usize,
    smtp_url: Option<String>,
    database_url: Option<String>,
) -> anyhow::Result<(DispatchRun, &'static str)> {
    let mut env = vec![("RECOMMANDE_WORKERS_DISPATCH_CHUNK", chunk.to_string())];
    if let Some(url) = smtp_url {
        env.push(("RECOMMANDE_MAIL_SMTP_URL", url));
    }
    let service = scratch.service_with(database_url, &env).await?;
    let (base, server) = super::serve_on_loopback(&service).await?;
    let runner = crate::app::jobs::start(&service);
    let now = unix_micros(service.clock.now());
    let (_, key) = service
        .api_keys
        .create(
            &service.storage,
            &format!("bench-{}", uuid::Uuid::new_v4()),
            now,
        )
        .await?;
    let client = reqwest::Client::new();
    let document_id = upload_document(&client, &base, &key).await?;
    let notified = || {
        service
            .storage
            .throughput()
            .evidence
            .iter()
            .find(|(event, _)| event == EvidenceEvent::NotificationForAcceptance.name())
            .map_or(0, |(_, n)| *n)
    };

    // Warm-up: connections, page cache, code paths, the relay's connections.
    let warm = submit(
        &client,
        &base,
        &key,
        batch_body(200, &document_id, 0, false),
    )
    .await?;
    wait_completed(&client, &base, &key, &warm).await?;
    wait_notified(&notified, 200, Duration::from_secs(120)).await?;

    let before = notified();
    let cpu_before = super::batch::cpu_seconds();
    let started = Instant::now();
    let mut accepted_seconds = 0.0;
    for b in 0..batches {
        let id = submit(
            &client,
            &base,
            &key,
            batch_body(letters, &document_id, b + 1, false),
        )
        .await?;
        if b == 0 {
            accepted_seconds = started.elapsed().as_secs_f64();
        }
        let deposited = wait_completed(&client, &base, &key, &id).await?;
        anyhow::ensure!(
            deposited == letters as i64,
            "batch {b} deposited {deposited} letters out of {letters}"
        );
    }
    let deposited_seconds = started.elapsed().as_secs_f64();
    let total = (letters * batches) as u64;
    let backlog = total.saturating_sub(notified() - before);
    wait_notified(
        &|| notified() - before,
        total,
        Duration::from_secs(60 + total / 50),
    )
    .await?;
    let notified_seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = cpu_before
        .zip(super::batch::cpu_seconds())
        .map(|(before, after)| after - before);
    runner.drain(Duration::from_secs(10)).await;
    server.abort();
    let engine = service.storage.engine();
    service.storage.close().await;
    Ok((
        DispatchRun {
            chunk,
            accepted_seconds,
            deposited_seconds,
            backlog,
            notified_seconds,
            cpu_seconds,
        },
        engine,
    ))
}

/// Polls `count` every 5 ms until it reaches `target`; fails after `limit`.
async fn wait_notified(
    count: &dyn Fn() -> u64,
    target: u64,
    limit: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    while count() < target {
        anyhow::ensure!(
            started.elapsed() < limit,
            "only {} notifications of {target} after {} s",
            count(),
            limit.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
