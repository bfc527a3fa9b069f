//! The background jobs of the service, each a [`Worker`] on the one [`Runner`] (see
//! [`crate::app::worker`] for how passes, backoff and the graceful stop work): the outbox
//! (notifications, reminders, webhook events), the non-claim sweep, webhook deliveries,
//! tree heads pushed to outside witnesses, the transparency log, the resumption of
//! interrupted batches, the hourly retention purge, a daily sampled archive audit and the
//! archive timestamp renewal. Only the service assembly starts them ([`start`]).

use std::sync::Arc;
use std::time::Duration;

use crate::app::service::Service;
use crate::app::webhook::WebhookDeliveries;
use crate::app::worker::{BoxFuture, Pass, Runner, Worker, WorkerError};
use crate::core::clock::Clock;

/// How long the outbox waits, once told jobs were queued, before its pass.
const OUTBOX_GATHER: Duration = Duration::from_millis(20);
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
/// How often abandoned batches are looked for.
pub const RESUME_INTERVAL: Duration = Duration::from_secs(30);
/// Rows a witness delivery pass claims at most.
const WITNESS_BATCH: i64 = 50;
/// Jobs an outbox pass claims at most.
const OUTBOX_BATCH: i64 = 64;
/// Deadlines an expiry pass handles at most.
const EXPIRY_BATCH: i64 = 500;

/// The workers of `service`, in start order.
pub fn service_workers(service: &Service) -> Vec<Arc<dyn Worker>> {
    vec![
        Arc::new(Outbox(service.lifecycle.clone())),
        Arc::new(Expiry(service.lifecycle.clone())),
        Arc::new(WebhookDeliveries::new(
            crate::app::webhook::Deliverer::new(service.storage.clone(), service.outbound.clone()),
            service.clock.clone(),
            WEBHOOK_INTERVAL,
        )),
        Arc::new(WitnessDeliveries {
            witnesses: service.witnesses.clone(),
            clock: service.clock.clone(),
        }),
        Arc::new(Log(service.log.clone())),
        Arc::new(BatchResumer(service.batches.clone())),
        Arc::new(Purge(service.clone())),
        Arc::new(Audit(service.clone())),
        Arc::new(Renewal(service.clone())),
    ]
}

/// Starts the workers of `service` on a [`Runner`].
pub fn start(service: &Service) -> Runner {
    Runner::start(
        service_workers(service),
        service.clock.clone(),
        &service.workers,
    )
}

/// The outbox: notifications, reminders, webhook events. Stopping, a pass ends after its
/// current job; the jobs it claimed and did not run (or whose run was cut) are given back.
struct Outbox(crate::app::lifecycle::Lifecycle);

impl Worker for Outbox {
    fn name(&self) -> &'static str {
        "outbox"
    }
    fn interval(&self) -> Duration {
        OUTBOX_INTERVAL
    }
    fn run_once(&self) -> BoxFuture<'_, Result<Pass, WorkerError>> {
        Box::pin(async move {
            // A chunk of notifications is claimed whole.
            let limit = OUTBOX_BATCH.max(self.0.dispatch_claim() as i64);
            let claimed = self.0.run_due_jobs(limit).await?;
            Ok(Pass::full(claimed, limit))
        })
    }
    fn woken(&self) -> BoxFuture<'_, ()> {
        // A deposit, a batch chunk or a transition queued jobs: the pass starts a moment
        // later, so that jobs queued together are claimed together.
        Box::pin(async move {
            self.0.jobs_queued().await;
            tokio::time::sleep(OUTBOX_GATHER).await;
        })
    }
    fn stop(&self) {
        self.0.stop_claiming();
    }
    fn release(&self) -> BoxFuture<'_, Result<u64, WorkerError>> {
        Box::pin(async move { Ok(self.0.release_claims().await?) })
    }
}

/// The non-claim sweep: at start too, catching up on deadlines passed while the service
/// was down.
struct Expiry(crate::app::lifecycle::Lifecycle);

impl Worker for Expiry {
    fn name(&self) -> &'static str {
        "expiry"
    }
    fn interval(&self) -> Duration {
        EXPIRY_INTERVAL
    }
    fn run_once(&self) -> BoxFuture<'_, Result<Pass, WorkerError>> {
        Box::pin(async move {
            let expired = self.0.expire_due(EXPIRY_BATCH).await?;
            Ok(Pass::full(expired, EXPIRY_BATCH))
        })
    }
}

/// Signed tree heads pushed to outside witnesses; at shutdown the claims of a pass cut
/// short are given back.
struct WitnessDeliveries {
    witnesses: crate::app::witness::Witnesses,
    clock: Arc<dyn Clock>,
}

impl Worker for WitnessDeliveries {
    fn name(&self) -> &'static str {
        "witness_deliveries"
    }
    fn interval(&self) -> Duration {
        crate::app::witness::DELIVERY_INTERVAL
    }
    fn run_once(&self) -> BoxFuture<'_, Result<Pass, WorkerError>> {
        Box::pin(async move {
            let delivered = self
                .witnesses
                .deliver_due(self.clock.now(), WITNESS_BATCH)
                .await?;
            Ok(Pass::full(delivered, WITNESS_BATCH))
        })
    }
    fn release(&self) -> BoxFuture<'_, Result<u64, WorkerError>> {
        Box::pin(async move { Ok(self.witnesses.release_claims(self.clock.now()).await?) })
    }
}

/// The transparency log: new evidence appended, then a tree head if one is due (both are
/// tried each pass; the first failure is reported).
struct Log(crate::app::log::TransparencyLog);

impl Worker for Log {
    fn name(&self) -> &'static str {
        "transparency_log"
    }
    fn interval(&self) -> Duration {
        LOG_INTERVAL
    }
    fn run_once(&self) -> BoxFuture<'_, Result<Pass, WorkerError>> {
        Box::pin(async move {
            let appended = self.0.append_pending().await;
            if let Err(e) = &appended {
                tracing::error!(error = %e, "transparency log appender");
            }
            self.0.issue_head_if_due().await?;
            appended?;
            Ok(Pass::Idle)
        })
    }
}

/// Takes over batches whose runner stopped (lease ended), at start too: batches left
/// depositing by a stopped process. At shutdown the deposits of this process stop after
/// the chunk each is committing, and their leases are given back.
struct BatchResumer(crate::app::batch::Batches);

impl Worker for BatchResumer {
    fn name(&self) -> &'static str {
        "batch_resumer"
    }
    fn interval(&self) -> Duration {
        RESUME_INTERVAL
    }
    fn run_once(&self) -> BoxFuture<'_, Result<Pass, WorkerError>> {
        Box::pin(async move { Ok(Pass::more_if(self.0.resume_abandoned().await?)) })
    }
    fn stop(&self) {
        self.0.stop();
    }
    fn finish(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            while !self.0.idle() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    }
    fn release(&self) -> BoxFuture<'_, Result<u64, WorkerError>> {
        Box::pin(async move { Ok(self.0.release_leases().await?) })
    }
}

/// The hourly retention purge (CPCE R.53-3).
struct Purge(Service);

impl Worker for Purge {
    fn name(&self) -> &'static str {
        "retention_purge"
    }
    fn interval(&self) -> Duration {
        PURGE_INTERVAL
    }
    fn run_once(&self) -> BoxFuture<'_, Result<Pass, WorkerError>> {
        Box::pin(async move {
            let r = crate::app::archive::purge(&self.0, false).await?;
            if !r.letters.is_empty() || !r.documents.is_empty() {
                tracing::info!(
                    letters = r.letters.len(),
                    documents = r.documents.len(),
                    "retention purge"
                );
            }
            Ok(Pass::Idle)
        })
    }
}

/// A daily sampled audit: a rotted disk or a rewritten row shows up without waiting for
/// someone to run `recommande archive audit --all` (its report is sealed and kept). The
/// first one a day after start.
struct Audit(Service);

impl Worker for Audit {
    fn name(&self) -> &'static str {
        "archive_audit"
    }
    fn interval(&self) -> Duration {
        AUDIT_INTERVAL
    }
    fn first_delay(&self) -> Duration {
        AUDIT_INTERVAL
    }
    fn run_once(&self) -> BoxFuture<'_, Result<Pass, WorkerError>> {
        Box::pin(async move {
            let a = crate::app::audit::run(
                &self.0,
                crate::app::audit::AuditScope::Sample(AUDIT_SAMPLE),
            )
            .await?;
            if !a.report.passed {
                tracing::error!(
                    audit.id = %a.report.id,
                    audit.failures = a.report.failures.len(),
                    "scheduled archive audit found failures: run `recommande archive audit --all`"
                );
            }
            Ok(Pass::Idle)
        })
    }
}

/// Archive timestamp renewal (RFC 4998 spirit): at start (a key rotation made while the
/// service was down is followed at once) and every `[renewal] interval_seconds`.
struct Renewal(Service);

impl Worker for Renewal {
    fn name(&self) -> &'static str {
        "timestamp_renewal"
    }
    fn interval(&self) -> Duration {
        Duration::from_secs(self.0.settings.renewal.interval_seconds)
    }
    fn run_once(&self) -> BoxFuture<'_, Result<Pass, WorkerError>> {
        Box::pin(async move {
            crate::app::renewal::scheduled(&self.0).await?;
            Ok(Pass::Idle)
        })
    }
}
