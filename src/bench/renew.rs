//! `recommande bench renew`: how long an archive timestamp renewal takes (RFC 4998 spirit,
//! `crate::core::renewal`). Letters are deposited into a service on a temporary SQLite database
//! (or `--database-url`), then a first generation covering every record is made, then a
//! second one over the first (as after a key rotation), each timed end to end: reading the
//! candidates, hashing the tree, one token, storing one renewal record per leaf.

use std::fmt;
use std::time::Instant;

use super::deposit::Mailing;
use crate::app::renewal::{Scope, renew};

/// Figures of one run.
#[derive(Debug, Clone)]
pub struct RenewBenchReport {
    /// Database engine.
    pub engine: &'static str,
    /// Evidence records covered by each generation.
    pub records: usize,
    /// Seconds to deposit the letters (setup, not measured work).
    pub deposit_seconds: f64,
    /// Seconds of the first generation.
    pub first_seconds: f64,
    /// Seconds of the second generation.
    pub second_seconds: f64,
}

impl fmt::Display for RenewBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "bench renew ({}, {} evidence records; deposit setup {:.2} s)",
            self.engine, self.records, self.deposit_seconds
        )?;
        for (name, seconds) in [
            ("generation 1", self.first_seconds),
            ("generation 2", self.second_seconds),
        ] {
            writeln!(
                f,
                "  {name} : {seconds:>7.3} s  ({:>9.0} records/s)",
                self.records as f64 / seconds
            )?;
        }
        Ok(())
    }
}

/// Runs the benchmark with `letters` letters (one deposit record each).
pub async fn run(
    letters: usize,
    database_url: Option<String>,
    threads: usize,
) -> anyhow::Result<RenewBenchReport> {
    anyhow::ensure!(letters > 0, "--letters must be positive");
    let scratch = super::Scratch::new();
    let service = scratch.service(database_url).await?;
    let mailing = Mailing::create(&service).await?;
    let started = Instant::now();
    for chunk in mailing.requests(letters)?.chunks(1_000) {
        let prepared = service
            .deposits
            .prepare_many(&mailing.caller, chunk.to_vec(), &mailing.documents, threads)
            .await?;
        service.deposits.commit(&prepared, None).await?;
    }
    let deposit_seconds = started.elapsed().as_secs_f64();
    let first = renew(&service, "benchmark", Scope::Everything).await?;
    let second = renew(&service, "benchmark", Scope::Everything).await?;
    anyhow::ensure!(
        first.records == second.records,
        "the two generations covered {} and {} records",
        first.records,
        second.records
    );
    let engine = service.storage.engine();
    service.storage.close().await;
    Ok(RenewBenchReport {
        engine,
        records: first.records,
        deposit_seconds,
        first_seconds: first.seconds,
        second_seconds: second.seconds,
    })
}
