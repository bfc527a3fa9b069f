//! Background workers: the outbox (notifications, reminders, webhook events), webhook
//! deliveries, tree heads pushed to outside witnesses, the non-claim sweep, the resumption of interrupted batches, the transparency
//! log, the hourly retention purge and a daily sampled archive audit. Each loop survives
//! errors (logged) and stops with the process.

use std::time::Duration;

use crate::service::Service;

/// How often the outbox is polled.
pub const OUTBOX_INTERVAL: Duration = Duration::from_millis(500);
/// How often deadlines are swept: well within the one minute allowed after a deadline.
pub const EXPIRY_INTERVAL: Duration = Duration::from_secs(15);
/// How often due webhook deliveries are sent.
pub const WEBHOOK_INTERVAL: Duration = Duration::from_secs(2);
/// How often letters past their retention period are purged (CPCE R.53-3).
pub const PURGE_INTERVAL: Duration = Duration::from_secs(3600);
/// How often new evidence is appended to the transparency log (and a tree head considered).
pub const LOG_INTERVAL: Duration = Duration::from_secs(1);
/// How often a sampled archive audit runs (the first one this long after start).
pub const AUDIT_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Documents and letters re-read by the scheduled audit (the log is always checked whole).
pub const AUDIT_SAMPLE: u64 = 200;

/// Starts the workers of `service`.
pub fn spawn(service: &Service) -> Vec<tokio::task::JoinHandle<()>> {
    let outbox = {
        let lifecycle = service.lifecycle.clone();
        tokio::spawn(async move {
            loop {
                match lifecycle.run_due_jobs(64).await {
                    // A full batch: more may be due, go on at once.
                    Ok(64) => continue,
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "outbox worker"),
                }
                tokio::time::sleep(OUTBOX_INTERVAL).await;
            }
        })
    };
    let expiry = {
        let lifecycle = service.lifecycle.clone();
        tokio::spawn(async move {
            loop {
                // At start too: catches up on deadlines passed while the service was down.
                match lifecycle.expire_due(500).await {
                    Ok(500) => continue,
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "expiry sweep"),
                }
                tokio::time::sleep(EXPIRY_INTERVAL).await;
            }
        })
    };
    let webhooks = crate::webhook::spawn_delivery_worker(
        service.storage.clone(),
        service.clock.clone(),
        WEBHOOK_INTERVAL,
        service.outbound.clone(),
    );
    let log = {
        let log = service.log.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = log.append_pending().await {
                    tracing::error!(error = %e, "transparency log appender");
                }
                if let Err(e) = log.issue_head_if_due().await {
                    tracing::error!(error = %e, "transparency log tree head");
                }
                tokio::time::sleep(LOG_INTERVAL).await;
            }
        })
    };
    let witnesses = crate::witness::spawn_delivery_worker(
        service.witnesses.clone(),
        service.clock.clone(),
        crate::witness::DELIVERY_INTERVAL,
    );
    // At start too: batches left depositing by a stopped process are taken over.
    let batches = crate::batch::run::spawn_resumer(service.batches.clone());
    let purge = {
        let service = service.clone();
        tokio::spawn(async move {
            loop {
                match crate::archive::purge(&service, false).await {
                    Ok(r) if !r.letters.is_empty() || !r.documents.is_empty() => tracing::info!(
                        letters = r.letters.len(),
                        documents = r.documents.len(),
                        "retention purge"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "retention purge"),
                }
                tokio::time::sleep(PURGE_INTERVAL).await;
            }
        })
    };
    // A daily sampled audit: a rotted disk or a rewritten row shows up without waiting for
    // someone to run `recommande archive audit --all` (its report is sealed and kept).
    let audit = {
        let service = service.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(AUDIT_INTERVAL).await;
                match crate::audit::run(&service, crate::audit::AuditScope::Sample(AUDIT_SAMPLE))
                    .await
                {
                    Ok(a) if a.report.passed => {}
                    Ok(a) => tracing::error!(
                        audit.id = %a.report.id,
                        audit.failures = a.report.failures.len(),
                        "scheduled archive audit found failures: run `recommande archive audit --all`"
                    ),
                    Err(e) => tracing::error!(error = %e, "scheduled archive audit"),
                }
            }
        })
    };
    // Archive timestamp renewal (RFC 4998 spirit): at start (a key rotation made while the
    // service was down is followed at once) and every `[renewal] interval_seconds`.
    let renewal = {
        let service = service.clone();
        tokio::spawn(async move {
            let interval = Duration::from_secs(service.settings.renewal_interval_seconds);
            loop {
                if let Err(e) = crate::renewal::job::scheduled(&service).await {
                    tracing::error!(error = %e, "archive timestamp renewal");
                }
                tokio::time::sleep(interval).await;
            }
        })
    };
    vec![
        outbox, expiry, webhooks, witnesses, log, batches, purge, audit, renewal,
    ]
}
