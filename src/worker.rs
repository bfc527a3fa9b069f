//! Background workers: the outbox (notifications, reminders, webhook events), webhook
//! deliveries, the non-claim sweep, the resumption of interrupted batches, the transparency
//! log and the hourly retention purge. Each loop survives errors (logged) and stops with the process.

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
    vec![outbox, expiry, webhooks, log, batches, purge]
}
