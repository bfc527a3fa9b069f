//! `recommande archive`: audit, re-wrap of data keys, encryption of old plaintext
//! documents, purge, timestamp renewal, new master key.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use super::{ArchiveCommand, Location};
use crate::app::service::Service;
use crate::config::Settings;
use crate::core::clock::SystemClock;

/// Runs an `archive` subcommand.
pub(super) async fn run(cmd: ArchiveCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ArchiveCommand::Audit {
            sample,
            all: _,
            out,
            json,
            location,
        } => audit(location.settings()?, sample, out, json).await,
        ArchiveCommand::Rewrap { location } => rewrap(&location).await,
        ArchiveCommand::EncryptExisting { location } => encrypt_existing(&location).await,
        ArchiveCommand::Purge {
            dry_run,
            json,
            location,
        } => purge(&location, dry_run, json).await,
        ArchiveCommand::Renew {
            reason,
            all,
            json,
            location,
        } => renew(&location, &reason, all, json).await,
        ArchiveCommand::NewKey { id } => {
            print!("{}", crate::infra::keys::generate_key(&id)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `recommande archive renew`.
async fn renew(
    location: &Location,
    reason: &str,
    all: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let service = Service::start(location.settings()?, Arc::new(SystemClock))
        .await
        .context("starting the service to renew its timestamps")?;
    let scope = if all {
        crate::app::renewal::Scope::Everything
    } else {
        crate::app::renewal::Scope::Due
    };
    report_renewal(
        crate::app::renewal::renew(&service, reason.trim(), scope).await,
        json,
    )
}

/// `recommande archive rewrap`.
async fn rewrap(location: &Location) -> anyhow::Result<ExitCode> {
    let service = Service::start(location.settings()?, Arc::new(SystemClock))
        .await
        .context("starting the service to re-wrap its data keys")?;
    let report = crate::app::archive::rewrap(&service.content).await?;
    println!(
        "{} data keys re-wrapped; every live data key is now under master key {:?}",
        report.rewrapped, report.active_key_id
    );
    println!(
        "{} service and webhook secrets re-sealed under the same key",
        report.secrets_resealed
    );
    service.storage.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `recommande archive encrypt-existing`.
async fn encrypt_existing(location: &Location) -> anyhow::Result<ExitCode> {
    let service = Service::start(location.settings()?, Arc::new(SystemClock))
        .await
        .context("starting the service to encrypt its documents")?;
    let report = crate::app::archive::encrypt_existing(&service.content).await?;
    println!(
        "{} files examined: {} encrypted now, {} already encrypted, {} left alone",
        report.examined,
        report.encrypted,
        report.already_encrypted,
        report.problems.len()
    );
    for problem in &report.problems {
        println!("LEFT ALONE {problem}");
    }
    service.storage.close().await;
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `recommande archive purge`.
async fn purge(location: &Location, dry_run: bool, json: bool) -> anyhow::Result<ExitCode> {
    let service = Service::start(location.settings()?, Arc::new(SystemClock))
        .await
        .context("starting the service to purge expired content")?;
    let report = crate::app::archive::purge(&service, dry_run).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let verb = if dry_run { "due" } else { "destroyed" };
        println!(
            "{} letters {verb}, {} document keys {verb}",
            report.letters.len(),
            report.documents.len()
        );
        for id in &report.letters {
            println!("letter {id}");
        }
        for sha256 in &report.documents {
            println!("document {sha256}");
        }
    }
    service.storage.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `recommande archive audit`.
async fn audit(
    settings: Settings,
    sample: Option<u64>,
    out: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let service = Service::start(settings, Arc::new(SystemClock))
        .await
        .context("starting the service to audit its archive")?;
    let scope = match sample {
        Some(n) => crate::app::audit::AuditScope::Sample(n),
        None => crate::app::audit::AuditScope::All,
    };
    let audit = match crate::app::audit::run(&service, scope).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: the audit could not run: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let stem = dir.join(format!("audit-{}", audit.report.id));
        for (ext, bytes) in [
            ("json", &audit.bytes),
            ("p7s", &audit.seal),
            ("tsr", &audit.timestamp_token),
        ] {
            let path = stem.with_extension(ext);
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        eprintln!(
            "report written to {}.json (.p7s seal, .tsr timestamp)",
            stem.display()
        );
    }
    let r = &audit.report;
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
    } else {
        println!(
            "Archive audit {} ({}): {} documents, {} letters, {} evidence records, {} log leaves, {} tree heads checked",
            r.id,
            r.scope,
            r.documents_checked,
            r.letters_checked,
            r.evidence_checked,
            r.log_leaves_checked,
            r.tree_heads_checked
        );
        for f in &r.failures {
            let mut place = Vec::new();
            if let Some(v) = &f.letter_id {
                place.push(format!("letter {v}"));
            }
            if let Some(v) = &f.evidence_id {
                place.push(format!("evidence {v}"));
            }
            if let Some(v) = &f.document_id {
                place.push(format!("document {v}"));
            }
            if let Some(v) = f.log_position {
                place.push(format!("log position {v}"));
            }
            println!(
                "FAILED {} [{}] {}: {}",
                f.check,
                f.area,
                place.join(", "),
                f.detail
            );
        }
        println!("{}", if r.passed { "PASSED" } else { "FAILED" });
    }
    service.storage.close().await;
    Ok(if r.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prints a renewal's outcome (JSON or one line); a failed renewal exits with 2.
pub(super) fn report_renewal(
    outcome: Result<crate::app::renewal::RenewalOutcome, crate::app::renewal::RenewalError>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: the renewal failed: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        match (&outcome.renewal_id, &outcome.root, &outcome.timestamp_time) {
            (Some(id), Some(root), Some(at)) => println!(
                "Renewal {id}: {} records covered, root {root}, timestamped at {at} ({:.3} s)",
                outcome.records, outcome.seconds
            ),
            _ => println!("No record due for renewal"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
