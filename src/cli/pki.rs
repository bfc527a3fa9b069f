//! `recommande pki rotate`: a new development PKI, then a renewal by the new TSA over
//! every record.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use super::PkiCommand;
use super::archive::report_renewal;
use crate::app::service::Service;
use crate::config::Settings;
use crate::core::clock::SystemClock;

/// Runs a `pki` subcommand.
pub(super) async fn run(cmd: PkiCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PkiCommand::Rotate {
            validity_days,
            location,
        } => rotate(location.settings()?, validity_days).await,
    }
}

/// `recommande pki rotate`.
async fn rotate(settings: Settings, validity_days: Option<u32>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        settings.pki.is_development(),
        "pki rotate rotates the generated development PKI; with production keys, configure the new [pki] files, list the old root in [pki] retired_roots, restart, then run `recommande archive renew --all --reason \"key rotation\"`"
    );
    let validity = validity_days.unwrap_or(settings.pki.development_validity_days);
    anyhow::ensure!(
        (1..=36_525).contains(&validity),
        "--validity-days must be between 1 and 36525"
    );
    let dir = settings.server.data_dir.join("pki");
    let retired = crate::infra::key_files::rotate_development_pki(
        &dir,
        time::OffsetDateTime::now_utc(),
        validity,
    )
    .with_context(|| format!("rotating the development PKI in {}", dir.display()))?;
    eprintln!(
        "new root, seal and TSA in {}; the retired certificates are kept in {}",
        dir.display(),
        retired.display()
    );
    let service = Service::start(settings, Arc::new(SystemClock))
        .await
        .context("starting the service with the new keys")?;
    report_renewal(
        crate::app::renewal::renew(
            &service,
            "key rotation",
            crate::app::renewal::Scope::Everything,
        )
        .await,
        false,
    )
}
