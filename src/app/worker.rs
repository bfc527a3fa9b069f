//! Background workers and the one runner that drives them all.
//!
//! Each worker ([`Worker`]) does one pass of its work in [`Worker::run_once`]; the runner
//! ([`Runner`]) calls it every [`Worker::interval`] (at once again when the pass says more
//! is due), waits longer after failures (the interval doubled per failure in a row, up to
//! [`BACKOFF_CAP`] or the interval if longer, back to the interval after a success), keeps a
//! [`WorkerStatus`] per worker for `/metrics`, and stops them gracefully
//! ([`Runner::drain`]): no new pass starts, the passes running (and the work they started:
//! batch deposits, webhook attempts) get a bounded grace period to finish, then the claims
//! and leases still held are given back so that a restarted service (or another instance)
//! goes on at once instead of waiting for them to lapse.
//!
//! The workers of the service and their intervals are in [`crate::app::jobs`].

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::core::clock::{Clock, unix_micros};

/// Longest wait after failures in a row (a worker whose interval is longer waits its
/// interval).
pub const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// How long giving back claims may take at shutdown, after the grace period.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);
/// What a pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// A full batch: more may be due, go on at once.
    More,
    /// Done for now: the next pass after the interval.
    Idle,
}

impl Pass {
    /// [`Pass::More`] when a pass that handles at most `batch` items handled that many,
    /// [`Pass::Idle`] otherwise.
    pub fn full(handled: usize, batch: i64) -> Pass {
        if handled as i64 >= batch {
            Pass::More
        } else {
            Pass::Idle
        }
    }

    /// [`Pass::More`] when `more` is true.
    pub fn more_if(more: bool) -> Pass {
        if more { Pass::More } else { Pass::Idle }
    }
}

/// The future of a worker's method.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Why a pass failed (logged and counted; the worker goes on after its backoff).
pub type WorkerError = Box<dyn std::error::Error + Send + Sync>;

/// A background worker: one pass of its work at a time.
pub trait Worker: Send + Sync + 'static {
    /// Name in logs and in the `worker` label of the metrics.
    fn name(&self) -> &'static str;
    /// Wait between two passes.
    fn interval(&self) -> Duration;
    /// Wait before the first pass (none by default: at start, catching up).
    fn first_delay(&self) -> Duration {
        Duration::ZERO
    }
    /// One pass.
    fn run_once(&self) -> BoxFuture<'_, Result<Pass, WorkerError>>;
    /// Resolves when work arrived before the interval is over (the next pass starts then);
    /// never, by default.
    fn woken(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::pending())
    }
    /// Shutdown has begun: take no new work (called once, before the grace period).
    fn stop(&self) {}
    /// Waits for work this worker started outside its passes (called during the grace
    /// period, which bounds it).
    fn finish(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
    /// Gives back the claims and leases still held once the grace period is over; returns
    /// how many.
    fn release(&self) -> BoxFuture<'_, Result<u64, WorkerError>> {
        Box::pin(async { Ok(0) })
    }
}

/// What the runner knows of one worker, for `/metrics`.
#[derive(Debug)]
pub struct WorkerStatus {
    /// The worker's name.
    pub name: &'static str,
    last_run: AtomicI64,
    last_success: AtomicI64,
    last_error_at: AtomicI64,
    runs: AtomicU64,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A snapshot of a [`WorkerStatus`]; times are Unix µs, 0 for never.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSnapshot {
    /// The worker's name.
    pub name: &'static str,
    /// When its last pass started.
    pub last_run: i64,
    /// When its last successful pass ended.
    pub last_success: i64,
    /// When its last failed pass ended.
    pub last_error_at: i64,
    /// Passes run.
    pub runs: u64,
    /// Passes failed.
    pub errors: u64,
    /// The error of its last failed pass.
    pub last_error: Option<String>,
}

impl WorkerStatus {
    fn new(name: &'static str) -> WorkerStatus {
        WorkerStatus {
            name,
            last_run: AtomicI64::new(0),
            last_success: AtomicI64::new(0),
            last_error_at: AtomicI64::new(0),
            runs: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// The status now.
    pub fn snapshot(&self) -> WorkerSnapshot {
        WorkerSnapshot {
            name: self.name,
            last_run: self.last_run.load(Ordering::Relaxed),
            last_success: self.last_success.load(Ordering::Relaxed),
            last_error_at: self.last_error_at.load(Ordering::Relaxed),
            runs: self.runs.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }
}

/// The statuses of the running workers (empty until a [`Runner`] starts). Cheap to clone.
#[derive(Clone, Default)]
pub struct Statuses(Arc<Mutex<Vec<Arc<WorkerStatus>>>>);

impl Statuses {
    /// Snapshots of every worker, in start order.
    pub fn snapshot(&self) -> Vec<WorkerSnapshot> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|s| s.snapshot())
            .collect()
    }

    fn add(&self, name: &'static str) -> Arc<WorkerStatus> {
        let status = Arc::new(WorkerStatus::new(name));
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(status.clone());
        status
    }
}

/// The wait after `failures` failed passes in a row: the interval, doubled per further
/// failure, at most [`BACKOFF_CAP`] (or the interval when it is longer).
pub fn backoff(interval: Duration, failures: u32) -> Duration {
    let cap = interval.max(BACKOFF_CAP);
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    interval.saturating_mul(factor).min(cap)
}

/// The running workers.
pub struct Runner {
    workers: Vec<(Arc<dyn Worker>, tokio::task::JoinHandle<()>)>,
    stop: watch::Sender<bool>,
}

/// Stops a [`Runner`]'s workers from starting new passes; cheap to clone, usable from the
/// shutdown signal while the runner is drained elsewhere.
#[derive(Clone)]
pub struct Stopper {
    stop: watch::Sender<bool>,
    workers: Vec<Arc<dyn Worker>>,
}

impl Stopper {
    /// No new pass starts; each worker is told to take no new work. Idempotent.
    pub fn stop(&self) {
        if self.stop.send_replace(true) {
            return;
        }
        for worker in &self.workers {
            worker.stop();
        }
    }
}

impl Runner {
    /// Starts `workers`, recording their statuses in `statuses`.
    pub fn start(
        workers: Vec<Arc<dyn Worker>>,
        clock: Arc<dyn Clock>,
        statuses: &Statuses,
    ) -> Runner {
        let (stop, _) = watch::channel(false);
        let workers = workers
            .into_iter()
            .map(|worker| {
                let status = statuses.add(worker.name());
                let task = tokio::spawn(run_loop(
                    worker.clone(),
                    status,
                    clock.clone(),
                    stop.subscribe(),
                ));
                (worker, task)
            })
            .collect();
        Runner { workers, stop }
    }

    /// A handle that stops the workers (see [`Runner::drain`]).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            stop: self.stop.clone(),
            workers: self.workers.iter().map(|(w, _)| w.clone()).collect(),
        }
    }

    /// Graceful stop: no new pass starts; the passes running and the work they started get
    /// `grace` to finish; whatever is still running then is cut short (a cut pass leaves
    /// nothing half-written: each of its steps commits in one transaction), and every claim
    /// and lease still held is given back. Returns once all that is done.
    pub async fn drain(self, grace: Duration) {
        self.stopper().stop();
        let deadline = tokio::time::Instant::now() + grace;
        let mut cut = Vec::new();
        for (worker, mut task) in self.workers {
            let finished = tokio::time::timeout_at(deadline, async {
                let _ = (&mut task).await;
                worker.finish().await;
            })
            .await;
            if finished.is_err() {
                tracing::warn!(
                    worker = worker.name(),
                    grace_seconds = grace.as_secs_f64(),
                    "worker still busy at the end of the grace period: cut short"
                );
                task.abort();
                let _ = task.await;
            }
            cut.push(worker);
        }
        for worker in cut {
            match tokio::time::timeout(RELEASE_TIMEOUT, worker.release()).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => {
                    tracing::info!(worker = worker.name(), released = n, "claims given back")
                }
                Ok(Err(e)) => {
                    tracing::error!(worker = worker.name(), error = %e, "cannot give claims back: they lapse with their lease")
                }
                Err(_) => {
                    tracing::error!(
                        worker = worker.name(),
                        "giving claims back timed out: they lapse with their lease"
                    )
                }
            }
        }
    }
}

/// Runs one worker alone until its task is aborted (tests and tools); the service uses a
/// [`Runner`].
pub fn spawn_one(worker: Arc<dyn Worker>, clock: Arc<dyn Clock>) -> tokio::task::JoinHandle<()> {
    let status = Arc::new(WorkerStatus::new(worker.name()));
    let (stop, receiver) = watch::channel(false);
    tokio::spawn(async move {
        // Kept so that the receiver never sees the channel close.
        let _stop = stop;
        run_loop(worker, status, clock, receiver).await;
    })
}

/// Sleeps `wait`, or until `woken` resolves, unless stopped first; `false` when stopped.
async fn sleep_or_stop(
    wait: Duration,
    woken: BoxFuture<'_, ()>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    if *stop.borrow() {
        return false;
    }
    let stopped = tokio::select! {
        () = tokio::time::sleep(wait) => false,
        () = woken => false,
        // A closed channel means the runner is gone: stop too.
        _ = stop.wait_for(|stopped| *stopped) => true,
    };
    !stopped && !*stop.borrow()
}

async fn run_loop(
    worker: Arc<dyn Worker>,
    status: Arc<WorkerStatus>,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) {
    let first = worker.first_delay();
    if !first.is_zero() && !sleep_or_stop(first, Box::pin(std::future::pending()), &mut stop).await
    {
        return;
    }
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            return;
        }
        status
            .last_run
            .store(unix_micros(clock.now()), Ordering::Relaxed);
        status.runs.fetch_add(1, Ordering::Relaxed);
        let pass = worker.run_once().await;
        let at = unix_micros(clock.now());
        let wait = match pass {
            Ok(pass) => {
                failures = 0;
                status.last_success.store(at, Ordering::Relaxed);
                match pass {
                    Pass::More => Duration::ZERO,
                    Pass::Idle => worker.interval(),
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                status.errors.fetch_add(1, Ordering::Relaxed);
                status.last_error_at.store(at, Ordering::Relaxed);
                *status
                    .last_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e.to_string());
                let wait = backoff(worker.interval(), failures);
                tracing::error!(
                    worker = worker.name(),
                    error = %e,
                    failures,
                    retry_in_seconds = wait.as_secs_f64(),
                    "worker pass failed"
                );
                wait
            }
        };
        if wait.is_zero() {
            // Let the other tasks of the runtime run between two back-to-back passes.
            tokio::task::yield_now().await;
        } else if !sleep_or_stop(wait, worker.woken(), &mut stop).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    use crate::core::clock::SystemClock;

    #[test]
    fn the_backoff_doubles_from_the_interval_up_to_its_cap() {
        let half = Duration::from_millis(500);
        assert_eq!(backoff(half, 1), half);
        assert_eq!(backoff(half, 2), Duration::from_secs(1));
        assert_eq!(backoff(half, 3), Duration::from_secs(2));
        assert_eq!(backoff(half, 20), BACKOFF_CAP);
        assert_eq!(backoff(half, u32::MAX), BACKOFF_CAP);
        let hour = Duration::from_secs(3600);
        assert_eq!(backoff(hour, 1), hour);
        assert_eq!(backoff(hour, 5), hour, "a long interval is its own cap");
    }

    /// Fails its first `failing` passes, then succeeds; each pass takes `pass`, and the
    /// start of each is recorded.
    struct Flaky {
        failing: u64,
        pass: Duration,
        passes: AtomicU64,
        finished: AtomicU64,
        starts: Mutex<Vec<std::time::Instant>>,
        stopped: AtomicBool,
        released: AtomicBool,
    }

    impl Flaky {
        fn new(failing: u64, pass: Duration) -> Arc<Flaky> {
            Arc::new(Flaky {
                failing,
                pass,
                passes: AtomicU64::new(0),
                finished: AtomicU64::new(0),
                starts: Mutex::new(Vec::new()),
                stopped: AtomicBool::new(false),
                released: AtomicBool::new(false),
            })
        }
    }

    impl Worker for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }
        fn interval(&self) -> Duration {
            Duration::from_millis(50)
        }
        fn run_once(&self) -> BoxFuture<'_, Result<Pass, WorkerError>> {
            Box::pin(async move {
                let n = self.passes.fetch_add(1, Ordering::SeqCst);
                self.starts
                    .lock()
                    .expect("not poisoned")
                    .push(std::time::Instant::now());
                tokio::time::sleep(self.pass).await;
                self.finished.fetch_add(1, Ordering::SeqCst);
                if n < self.failing {
                    Err(format!("failure {n}").into())
                } else {
                    Ok(Pass::Idle)
                }
            })
        }
        fn stop(&self) {
            self.stopped.store(true, Ordering::SeqCst);
        }
        fn release(&self) -> BoxFuture<'_, Result<u64, WorkerError>> {
            Box::pin(async move {
                self.released.store(true, Ordering::SeqCst);
                Ok(1)
            })
        }
    }

    async fn wait_for_passes(worker: &Flaky, n: u64) {
        for _ in 0..400 {
            if worker.passes.load(Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fewer than {n} passes");
    }

    #[tokio::test]
    async fn failures_are_counted_backed_off_and_reset_by_a_success() {
        let worker = Flaky::new(3, Duration::ZERO);
        let statuses = Statuses::default();
        let runner = Runner::start(vec![worker.clone()], Arc::new(SystemClock), &statuses);
        wait_for_passes(&worker, 6).await;
        runner.drain(Duration::from_secs(5)).await;
        let starts = worker.starts.lock().expect("not poisoned").clone();
        let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        // Three failures: waits of 50, 100 and 200 ms; then successes: 50 ms again.
        for (gap, least) in gaps.iter().zip([50u64, 100, 200, 50, 50]) {
            assert!(*gap >= Duration::from_millis(least), "{gaps:?}");
        }
        assert!(gaps[3] < gaps[2], "the success reset the backoff: {gaps:?}");
        let status = statuses.snapshot().remove(0);
        assert_eq!(status.name, "flaky");
        assert_eq!(status.errors, 3);
        assert_eq!(status.runs, worker.passes.load(Ordering::SeqCst));
        assert_eq!(status.last_error.as_deref(), Some("failure 2"));
        assert!(status.last_success >= status.last_error_at && status.last_error_at > 0);
        assert!(status.last_run >= status.last_error_at);
        assert!(worker.stopped.load(Ordering::SeqCst));
        assert!(worker.released.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn the_drain_lets_the_current_pass_finish_and_starts_no_other() {
        let worker = Flaky::new(0, Duration::from_millis(300));
        let runner = Runner::start(
            vec![worker.clone()],
            Arc::new(SystemClock),
            &Statuses::default(),
        );
        wait_for_passes(&worker, 1).await;
        runner.drain(Duration::from_secs(20)).await;
        assert_eq!(
            worker.finished.load(Ordering::SeqCst),
            1,
            "the pass finished"
        );
        assert_eq!(worker.passes.load(Ordering::SeqCst), 1, "no new pass");
        assert!(worker.released.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_pass_longer_than_the_grace_is_cut_and_its_claims_released() {
        let worker = Flaky::new(0, Duration::from_secs(3600));
        let runner = Runner::start(
            vec![worker.clone()],
            Arc::new(SystemClock),
            &Statuses::default(),
        );
        wait_for_passes(&worker, 1).await;
        let started = std::time::Instant::now();
        runner.drain(Duration::from_secs(1)).await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(30),
            "{took:?}"
        );
        assert_eq!(worker.finished.load(Ordering::SeqCst), 0, "cut short");
        assert!(worker.released.load(Ordering::SeqCst));
    }
}
