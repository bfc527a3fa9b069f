//! `recommande bench`: throughput figures (not a test).

use std::process::ExitCode;

use super::BenchCommand;

/// Runs a `bench` subcommand and prints its report.
pub(super) async fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    let report = match cmd {
        BenchCommand::Tsa { tokens, threads } => {
            let threads = threads.unwrap_or_else(available_cores);
            tokio::task::spawn_blocking(move || crate::bench::tsa::run(tokens, threads))
                .await??
                .to_string()
        }
        BenchCommand::Verify { iterations } => {
            crate::bench::verify::run(iterations).await?.to_string()
        }
        BenchCommand::Batch {
            letters,
            compose,
            database_url,
        } => crate::bench::batch::run(letters, compose, database_url)
            .await?
            .to_string(),
        BenchCommand::Dispatch {
            letters,
            batches,
            chunk,
            no_baseline,
            smtp_url,
            database_url,
        } => crate::bench::dispatch::run(
            letters,
            batches,
            chunk,
            !no_baseline,
            smtp_url,
            database_url,
        )
        .await?
        .to_string(),
        BenchCommand::Deposit {
            letters,
            database_url,
            threads,
        } => crate::bench::deposit::run(
            letters,
            database_url,
            threads.unwrap_or_else(available_cores),
        )
        .await?
        .to_string(),
        BenchCommand::Renew {
            letters,
            database_url,
            threads,
        } => crate::bench::renew::run(
            letters,
            database_url,
            threads.unwrap_or_else(available_cores),
        )
        .await?
        .to_string(),
    };
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}
