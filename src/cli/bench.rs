//! `recommande bench`: throughput figures (not a test).

use std::process::ExitCode;

use super::BenchCommand;

/// The token key `--pkcs11-key` names, through the configured module.
fn token_key(
    settings: &crate::config::Settings,
    uri: &str,
) -> anyhow::Result<crate::infra::pkcs11::TokenKey> {
    use anyhow::Context as _;
    let uri =
        crate::config::Pkcs11Uri::parse(uri).map_err(|e| anyhow::anyhow!("--pkcs11-key: {e}"))?;
    let pkcs11 = settings.pki.pkcs11.as_ref().context(
        "--pkcs11-key needs [pki.pkcs11] module and a PIN (or RECOMMANDE_PKI_PKCS11_MODULE and RECOMMANDE_PKI_PKCS11_PIN)",
    )?;
    Ok(crate::infra::pkcs11::Keyring::default().key(pkcs11, &uri)?)
}

/// Runs a `bench` subcommand and prints its report.
pub(super) async fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    let report = match cmd {
        BenchCommand::Tsa {
            tokens,
            threads,
            pkcs11_key,
            location,
        } => {
            let threads = threads.unwrap_or_else(available_cores);
            let token_key = match pkcs11_key {
                None => None,
                Some(uri) => Some(token_key(&location.settings()?, &uri)?),
            };
            tokio::task::spawn_blocking(move || {
                crate::bench::tsa::run_with(tokens, threads, token_key)
            })
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
