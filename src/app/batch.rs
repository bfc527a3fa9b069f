//! Submitting and depositing batches.
//!
//! [`Batches::submit`] checks every row (the letter fields with [`check_letter`], then the
//! documents and the consumers' consents, CPCE L.100) and records the batch with all its row
//! errors in one transaction; it answers at once. The deposit runs in the background
//! ([`Batches::run`]): rows are built, sealed and timestamped chunk by chunk on worker threads
//! while the previous chunk is being written, and each chunk is committed in one transaction
//! with its letters, evidence, coalesced jobs and the batch's progress (see
//! `storage::batches`). A runner holds a lease on its batch; when its process stops, another
//! runner (the resumer worker, `src/app/worker.rs`) takes the batch over from the last committed chunk.
//! A graceful stop ([`Batches::stop`]) ends each runner after the chunk it is committing and
//! gives the leases back ([`Batches::release_leases`]), so the next start resumes at once.
//!
//! `all_or_nothing` batches are written in a single transaction: either every letter is
//! deposited or none is.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::app::api_key::Caller;
use crate::app::deposit::{DepositError, Deposits};
use crate::core::clock::{Clock, rfc3339_micros, unix_micros};
use crate::core::evidence::hex_digest;
use crate::domain::batch::{BatchInput, BatchMode, BatchRow, BatchState, RowError, check_letter};
use crate::domain::consent::{check_for_deposit, depositing_sender};
use crate::domain::letter::{DepositRequest, RecipientKind};
use crate::infra::storage::{
    BatchChunk, ConsentRow, DocumentRow, IdempotencyRow, NewBatch, NewDeposit, NewEvidence, NewJob,
    Storage, StorageError,
};

/// Letters per committed chunk in `valid_rows` mode: large enough for multi-row inserts to
/// pay off, small enough that sealing the next chunk overlaps writing this one.
pub const CHUNK: usize = 500;
/// How long a runner keeps its batch without committing before another may take it over.
pub const LEASE: time::Duration = time::Duration::seconds(120);
/// How often abandoned batches are looked for.
pub const RESUME_INTERVAL: Duration = Duration::from_secs(30);

/// Outages in a row a runner waits through before leaving the batch to the resumer.
const OUTAGE_RETRIES: u32 = 8;

/// Wait before retry `n` (1-based) after an outage: 0.5 s doubling, at most 10 s.
fn outage_backoff(n: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1 << n.min(6))).min(Duration::from_secs(10))
}

/// True when a deposit failed because the database could not take it for now.
fn deposit_is_transient(err: &DepositError) -> bool {
    match err {
        DepositError::Storage(e) => e.is_transient(),
        DepositError::Content(crate::infra::content::ContentError::Storage(e)) => e.is_transient(),
        _ => false,
    }
}

/// Name of the webhook event sent when a batch reaches a final state.
pub const BATCH_COMPLETED: &str = "batch.completed";

/// Why a batch could not be recorded; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The idempotency claim of the request was taken over by a retry after it expired.
    #[error("idempotency claim taken over")]
    IdempotencyKeyTaken,
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A recorded batch, as answered by `POST /v1/batches`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct BatchAccepted {
    /// Batch id: follow it at `GET /v1/batches/{id}`.
    pub id: String,
    /// `depositing`, or already final when nothing is to be deposited.
    pub state: BatchState,
    /// Mode of the batch.
    pub mode: BatchMode,
    /// Rows in the request.
    pub total: i64,
    /// Rows refused by validation (listed at `GET /v1/batches/{id}`).
    pub rejected: i64,
}

/// Batch submission and deposit. Cheap to clone.
#[derive(Clone)]
pub struct Batches {
    storage: Storage,
    deposits: Deposits,
    composer: crate::app::composer::Composer,
    clock: Arc<dyn Clock>,
    threads: usize,
    runners: Arc<Runners>,
}

/// The batches this process is depositing, so that a graceful stop can wait for their
/// current chunk and then give their leases back ([`Batches::release_leases`]).
#[derive(Default)]
struct Runners {
    /// Set when the service stops: runners stop after the chunk they are committing.
    stopping: std::sync::atomic::AtomicBool,
    /// Runners of this process depositing now.
    active: std::sync::atomic::AtomicUsize,
    /// Batches being deposited here (or left by a stopped runner, lease not yet released).
    held: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Runners {
    fn held(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Marks batch `id` as deposited here until [`Runners::leave`].
    fn enter(&self, id: &str) {
        self.active
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.held().insert(id.to_string());
    }

    /// The runner of `id` returned; when stopping, its lease is left for the release.
    fn leave(&self, id: &str) {
        if !self.stopping() {
            self.held().remove(id);
        }
        self.active
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A checked row ready to deposit.
#[derive(Debug, Clone)]
struct ValidRow {
    row: i64,
    request: DepositRequest,
}

/// One chunk whose composed letters are rendered and stored, ready to seal.
struct ComposedChunk {
    rows: Vec<ValidRow>,
    errors: Vec<RowError>,
    composed: HashMap<String, DocumentRow>,
}

/// One chunk whose composed letters are rendered into temporary files, not placed yet.
/// Dropped unplaced (the pipeline stopped), it removes those files.
struct RenderedChunk {
    rows: Vec<ValidRow>,
    errors: Vec<RowError>,
    rendered: Vec<(usize, crate::app::composer::Rendered)>,
}

impl Drop for RenderedChunk {
    fn drop(&mut self) {
        for (_, r) in self.rendered.drain(..) {
            r.discard();
        }
    }
}

/// One chunk sealed and ready to commit.
struct SealedChunk {
    from_row: i64,
    to_row: i64,
    deposits: Vec<NewDeposit>,
    errors: Vec<RowError>,
    jobs: Vec<NewJob>,
    now: OffsetDateTime,
}

impl Batches {
    /// Batches depositing through `deposits`, sealing on `threads` worker threads.
    pub fn new(
        storage: Storage,
        deposits: Deposits,
        composer: crate::app::composer::Composer,
        clock: Arc<dyn Clock>,
        threads: usize,
    ) -> Self {
        Batches {
            storage,
            deposits,
            composer,
            clock,
            threads: threads.max(1),
            runners: Arc::default(),
        }
    }

    /// Makes the runners of this process stop after the chunk each is committing, and the
    /// resumer take no further batch (graceful shutdown).
    pub fn stop(&self) {
        self.runners
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether no runner of this process is depositing any more.
    pub fn idle(&self) -> bool {
        self.runners
            .active
            .load(std::sync::atomic::Ordering::SeqCst)
            == 0
    }

    /// Whether [`Batches::stop`] was called.
    pub fn stopping(&self) -> bool {
        self.runners.stopping()
    }

    /// Gives back the leases of the batches this process was depositing and did not finish:
    /// the next start (or another instance) resumes them at once. Returns how many.
    pub async fn release_leases(&self) -> Result<u64, StorageError> {
        let ids: Vec<String> = self.runners.held().drain().collect();
        if ids.is_empty() {
            return Ok(0);
        }
        self.storage.release_batch_leases(&ids).await
    }

    /// Takes over one batch whose runner stopped (its lease ended) and deposits the rest of
    /// it; `Ok(false)` when there was none.
    pub async fn resume_abandoned(&self) -> Result<bool, StorageError> {
        if self.stopping() {
            return Ok(false);
        }
        let now = self.clock.now();
        let Some(id) = self
            .storage
            .claim_abandoned_batch(unix_micros(now), unix_micros(now + LEASE))
            .await?
        else {
            return Ok(false);
        };
        if let Err(e) = self.run(&id).await {
            tracing::error!(batch.id = %id, error = %e, "batch resumption failed");
        }
        Ok(true)
    }

    /// Checks every row, records the batch with every row error, and starts depositing its
    /// valid rows in the background. Returns the answer and its JSON bytes; `answer` turns
    /// them (with the time) into the completion of the request's idempotency claim, if any,
    /// stored for replays in the transaction that records the batch, so a retry never creates
    /// a second batch.
    pub async fn submit(
        &self,
        caller: &Caller,
        input: BatchInput,
        mode: BatchMode,
        idempotency_key: Option<&str>,
        answer: impl FnOnce(&BatchAccepted, &[u8], i64) -> Option<IdempotencyRow>,
    ) -> Result<(BatchAccepted, Vec<u8>), SubmitError> {
        let now = self.clock.now();
        let source = input.source;
        let total = (input.rows.len() + count_rows(&input.errors)) as i64;
        let (valid, mut errors) = self.check_rows(caller, input, now).await?;
        errors.sort_by_key(|e| e.row);
        let rejected = count_rows(&errors) as i64;
        let state = if mode == BatchMode::AllOrNothing && rejected > 0 {
            BatchState::Rejected
        } else if valid.is_empty() {
            BatchState::Completed
        } else {
            BatchState::Depositing
        };
        let id = uuid::Uuid::now_v7().to_string();
        let accepted = BatchAccepted {
            id: id.clone(),
            state,
            mode,
            total,
            rejected,
        };
        let response = serde_json::to_vec(&accepted)
            .map_err(|e| StorageError::Corrupt(format!("batch response: {e}")))?;
        let valid_count = valid.len() as i64;
        let (rows, bodies): (Vec<ValidRow>, Vec<Value>) = valid.into_iter().unzip();
        let stored_rows: Vec<BatchRow> = if state == BatchState::Depositing {
            rows.iter()
                .zip(bodies)
                .map(|(v, letter)| BatchRow { row: v.row, letter })
                .collect()
        } else {
            Vec::new()
        };
        let letters = serde_json::to_vec(&stored_rows)
            .map_err(|e| StorageError::Corrupt(format!("batch rows: {e}")))?;
        let at = unix_micros(now);
        let batch = NewBatch {
            id: id.clone(),
            tenant_id: caller.tenant_id.clone(),
            api_key_id: caller.api_key_id.clone(),
            state: state.as_str().to_string(),
            mode: mode.as_str().to_string(),
            source: source.as_str().to_string(),
            total,
            valid: valid_count,
            rejected,
            letters,
            idempotency_key: idempotency_key.map(str::to_string),
            lease_until: (state == BatchState::Depositing).then(|| unix_micros(now + LEASE)),
            created_at: at,
            completed_at: state.is_final().then_some(at),
        };
        let jobs = if state.is_final() {
            vec![completed_job(&caller.tenant_id, &id, state, now)]
        } else {
            Vec::new()
        };
        let idempotency = answer(&accepted, &response, at);
        match self
            .storage
            .insert_batch(&batch, &errors, &jobs, idempotency.as_ref())
            .await
        {
            Err(StorageError::IdempotencyClaimLost) => {
                return Err(SubmitError::IdempotencyKeyTaken);
            }
            other => other?,
        }
        tracing::info!(
            batch.id = %id,
            tenant.id = %caller.tenant_id,
            batch.total = total,
            batch.rejected = rejected,
            batch.state = state.as_str(),
            "batch recorded"
        );
        if state == BatchState::Depositing {
            let runner = self.clone();
            let caller = caller.clone();
            runner.runners.enter(&id);
            tokio::spawn(async move {
                if runner.deposit(&id, &caller, mode, rows, 0).await {
                    runner.resume_after_outage(&id).await;
                }
                runner.runners.leave(&id);
            });
        }
        Ok((accepted, response))
    }

    /// Resumes batch `id` from its last committed chunk (after a restart). Its rows are read
    /// back from the stored single-letter bodies and checked again.
    pub async fn run(&self, id: &str) -> Result<(), StorageError> {
        self.runners.enter(id);
        let outcome = match self.run_once(id).await {
            Ok(true) => {
                self.resume_after_outage(id).await;
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        };
        self.runners.leave(id);
        outcome
    }

    /// One run of [`Batches::run`]; `true` when a database outage interrupted it.
    async fn run_once(&self, id: &str) -> Result<bool, StorageError> {
        let Some((record, letters)) = self.storage.batch_to_run(id).await? else {
            return Ok(false);
        };
        if record.state != BatchState::Depositing.as_str() {
            return Ok(false);
        }
        let mode = BatchMode::parse(&record.mode).unwrap_or(BatchMode::ValidRows);
        let caller = Caller {
            tenant_id: record.tenant_id.clone(),
            tenant_name: record.tenant_name.clone(),
            api_key_id: record.api_key_id.clone(),
        };
        let rows: Vec<BatchRow> = match serde_json::from_slice(&letters) {
            Ok(rows) => rows,
            Err(e) => {
                self.fail(&caller, id, &format!("stored rows unreadable: {e}"))
                    .await;
                return Ok(false);
            }
        };
        let mut valid = Vec::with_capacity(rows.len());
        for row in rows {
            // The rows were valid when stored and the parser is deterministic.
            match check_letter(&row) {
                Ok(request) => valid.push(ValidRow {
                    row: row.row,
                    request,
                }),
                Err(_) => {
                    self.fail(
                        &caller,
                        id,
                        &format!("stored row {} no longer parses", row.row),
                    )
                    .await;
                    return Ok(false);
                }
            }
        }
        tracing::info!(batch.id = %id, batch.next_row = record.next_row, "resuming batch");
        Ok(self
            .deposit(id, &caller, mode, valid, record.next_row as usize)
            .await)
    }

    /// After a database outage stopped the deposit: waits, then resumes from the progress
    /// the database holds (each chunk commit is guarded by it, so a commit whose answer was
    /// lost is not deposited twice). After [`OUTAGE_RETRIES`] the runner gives up its turn
    /// and the batch stays `depositing`: its lease ends and the resumer takes it over.
    async fn resume_after_outage(&self, id: &str) {
        for retries in 1..=OUTAGE_RETRIES {
            tokio::time::sleep(outage_backoff(retries)).await;
            if self.stopping() {
                // The lease is given back; the next start resumes the batch.
                return;
            }
            match self.run_once(id).await {
                Ok(false) => return,
                Ok(true) => {}
                Err(e) if e.is_transient() => {
                    tracing::warn!(batch.id = %id, error = %e, retries, "batch still waiting for the database");
                }
                Err(e) => {
                    tracing::error!(batch.id = %id, error = %e, "batch resumption failed");
                    return;
                }
            }
        }
        tracing::warn!(batch.id = %id, "database outage outlasted the retries; the resumer will take the batch over");
    }

    /// Checks the rows: letter fields, then documents and consents against the database.
    /// Returns the valid rows (with their single-letter bodies) and every error.
    async fn check_rows(
        &self,
        caller: &Caller,
        input: BatchInput,
        now: OffsetDateTime,
    ) -> Result<(Vec<(ValidRow, Value)>, Vec<RowError>), StorageError> {
        let mut errors = input.errors;
        let date = self.composer.letter_date();
        // The templates the rows name, read once each; then the rows are checked on the
        // worker threads (pure work: the letter fields and, for a composed letter, its
        // composition — so that every problem of a row is reported before anything is
        // deposited; the letter is written again when its chunk is rendered).
        let mut wordings = HashMap::new();
        for row in &input.rows {
            if row.letter.get("compose").is_some_and(Value::is_object) {
                let (template, kind) = template_and_kind(&row.letter);
                // Loaded into the cache; the result is read again per row below.
                let _ = self
                    .row_wording(caller, template, kind, &mut wordings)
                    .await;
            }
        }
        let wordings = Arc::new(wordings);
        let rows = input.rows;
        let per_task = rows.len().div_ceil(self.threads).max(1);
        let mut tasks = Vec::new();
        let mut rest = rows;
        while !rest.is_empty() {
            let tail = rest.split_off(per_task.min(rest.len()));
            let part = std::mem::replace(&mut rest, tail);
            let (composer, wordings) = (self.composer.clone(), wordings.clone());
            tasks.push(tokio::task::spawn_blocking(move || {
                part.into_iter()
                    .map(|row| check_row(&composer, &wordings, row, date))
                    .collect::<Vec<_>>()
            }));
        }
        let mut parsed = Vec::new();
        for task in tasks {
            let checked = task
                .await
                .map_err(|e| StorageError::Corrupt(format!("checking rows stopped: {e}")))?;
            for row in checked {
                match row {
                    Ok(valid) => parsed.push(valid),
                    Err(e) => errors.extend(e),
                }
            }
        }
        let documents = self
            .documents_of(caller, parsed.iter().map(|p| &p.0))
            .await?;
        let consents = self
            .consents_of(caller, parsed.iter().map(|p| &p.0))
            .await?;
        let mut valid = Vec::with_capacity(parsed.len());
        for (row, letter) in parsed {
            let mut refused = false;
            for (i, id) in row.request.document_ids.iter().enumerate() {
                if !documents.contains_key(id) {
                    refused = true;
                    errors.push(RowError {
                        row: row.row,
                        field: format!("documents[{i}]"),
                        message: format!("no document {id} was uploaded by this account"),
                    });
                }
            }
            if let Some(message) = consent_refusal(&row, &consents, now) {
                refused = true;
                errors.push(RowError {
                    row: row.row,
                    field: "recipient.consent_id".into(),
                    message,
                });
            }
            if !refused {
                valid.push((row, letter));
            }
        }
        Ok((valid, errors))
    }

    /// The wording of the template a row names (`template_id`), loaded once per template.
    async fn row_wording(
        &self,
        caller: &Caller,
        template: Option<String>,
        kind: Option<&str>,
        cache: &mut Wordings,
    ) -> Result<Option<crate::domain::collection::Wording>, Vec<crate::domain::letter::FieldError>>
    {
        let Some(id) = template else {
            return Ok(None);
        };
        if !cache.contains_key(&id) {
            let wording = self.composer.wording(caller, &id, kind).await;
            cache.insert(id.clone(), wording);
        }
        cached_wording(cache, Some(id))
    }

    /// Checks, writes and renders the composed letters of a chunk into temporary files;
    /// rows that no longer compose become row errors.
    async fn render_rows(
        &self,
        caller: &Caller,
        rows: Vec<ValidRow>,
    ) -> Result<RenderedChunk, DepositError> {
        let mut wordings = HashMap::new();
        let mut errors = Vec::new();
        let mut to_render = Vec::new();
        let mut positions = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let Some(compose) = &row.request.compose else {
                continue;
            };
            let template = row.request.template_id.clone();
            let kind = compose.get("kind").and_then(Value::as_str);
            let wording = self
                .row_wording(caller, template, kind, &mut wordings)
                .await;
            match wording {
                Ok(wording) => {
                    let author = row
                        .request
                        .sender
                        .organization
                        .clone()
                        .unwrap_or_else(|| row.request.sender.name.clone());
                    to_render.push(crate::app::composer::ToCompose {
                        compose: compose.clone(),
                        wording,
                        author,
                    });
                    positions.push(i);
                }
                Err(e) => errors.extend(row_errors(row.row, e)),
            }
        }
        let mut rendered = Vec::with_capacity(to_render.len());
        if !to_render.is_empty() {
            let results = self.composer.render_many(to_render, self.threads).await?;
            for (i, result) in positions.into_iter().zip(results) {
                match result {
                    Ok(r) => rendered.push((i, r)),
                    Err(e) => errors.extend(row_errors(rows[i].row, e)),
                }
            }
        }
        Ok(RenderedChunk {
            rows,
            errors,
            rendered,
        })
    }

    /// Places the rendered letters of a chunk and fills each request's documents and
    /// collection summary with them.
    async fn place_rows(
        &self,
        caller: &Caller,
        mut chunk: RenderedChunk,
    ) -> Result<ComposedChunk, DepositError> {
        let rendered = std::mem::take(&mut chunk.rendered);
        let mut rows = std::mem::take(&mut chunk.rows);
        let errors = std::mem::take(&mut chunk.errors);
        let mut documents = HashMap::new();
        if !rendered.is_empty() {
            let (positions, rendered): (Vec<usize>, Vec<_>) = rendered.into_iter().unzip();
            let placed = self.composer.place_many(caller, rendered).await?;
            for (i, (document, summary)) in positions.into_iter().zip(placed) {
                rows[i].request.document_ids = vec![document.id.clone()];
                rows[i].request.collection = Some(summary);
                documents.insert(document.id.clone(), document);
            }
        }
        Ok(ComposedChunk {
            rows,
            errors,
            composed: documents,
        })
    }

    /// The tenant's documents named by `rows`, by id (one query for the whole batch).
    async fn documents_of<'a>(
        &self,
        caller: &Caller,
        rows: impl Iterator<Item = &'a ValidRow>,
    ) -> Result<HashMap<String, DocumentRow>, StorageError> {
        let mut ids: Vec<String> = rows
            .flat_map(|r| r.request.document_ids.iter().cloned())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut found = HashMap::with_capacity(ids.len());
        for ids in ids.chunks(1_000) {
            for doc in self.storage.documents(&caller.tenant_id, ids).await? {
                found.insert(doc.id.clone(), doc);
            }
        }
        Ok(found)
    }

    /// The consents cited by the consumer recipients of `rows` (one query per thousand).
    async fn consents_of<'a>(
        &self,
        caller: &Caller,
        rows: impl Iterator<Item = &'a ValidRow>,
    ) -> Result<HashMap<String, ConsentRow>, StorageError> {
        let mut ids: Vec<String> = rows
            .filter(|r| r.request.recipient.kind == RecipientKind::Consumer)
            .filter_map(|r| r.request.recipient.consent_id.clone())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut found = HashMap::with_capacity(ids.len());
        for ids in ids.chunks(1_000) {
            for consent in self.storage.consents(&caller.tenant_id, ids).await? {
                found.insert(consent.id.clone(), consent);
            }
        }
        Ok(found)
    }

    /// Deposits `rows[from..]` of batch `id`; every outcome, including a failure, is
    /// recorded on the batch. Returns when the batch is final or another runner has it, or
    /// `true` when a database outage interrupted it (then nothing is recorded as failed).
    async fn deposit(
        &self,
        id: &str,
        caller: &Caller,
        mode: BatchMode,
        rows: Vec<ValidRow>,
        from: usize,
    ) -> bool {
        let outcome = match mode {
            BatchMode::AllOrNothing => self.deposit_all(id, caller, rows).await,
            BatchMode::ValidRows => self.deposit_chunks(id, caller, rows, from).await,
        };
        if let Err(e) = &outcome
            && deposit_is_transient(e)
        {
            // A connection blip or a full disk is not the batch's fault: what was committed
            // stays, and the rest is deposited once the database takes writes again.
            tracing::warn!(batch.id = %id, error = %e, "batch deposit interrupted by a database outage; resuming");
            return true;
        }
        if let Err(e) = outcome {
            tracing::error!(batch.id = %id, error = %e, "batch deposit failed");
            self.fail(caller, id, &e.to_string()).await;
        }
        false
    }

    /// `all_or_nothing`: seal everything, then one transaction, or nothing at all.
    async fn deposit_all(
        &self,
        id: &str,
        caller: &Caller,
        rows: Vec<ValidRow>,
    ) -> Result<(), DepositError> {
        let documents = self.documents_of(caller, rows.iter()).await?;
        let total = rows.len() as i64;
        let chunk = self
            .seal_chunk(id, caller, rows, &documents, 0, total)
            .await?;
        if !chunk.errors.is_empty() {
            // A consent withdrawn since validation: the whole batch is refused.
            self.storage
                .finish_batch(
                    id,
                    BatchState::Rejected.as_str(),
                    None,
                    &chunk.errors,
                    &[completed_job(
                        &caller.tenant_id,
                        id,
                        BatchState::Rejected,
                        chunk.now,
                    )],
                    unix_micros(chunk.now),
                )
                .await?;
            return Ok(());
        }
        self.commit(id, caller, chunk, true).await?;
        Ok(())
    }

    /// `valid_rows`: chunk by chunk, sealing chunk k+1 while chunk k is written.
    async fn deposit_chunks(
        &self,
        id: &str,
        caller: &Caller,
        rows: Vec<ValidRow>,
        from: usize,
    ) -> Result<(), DepositError> {
        let documents = Arc::new(self.documents_of(caller, rows.iter()).await?);
        let total = rows.len();
        let mut chunks = Vec::new();
        let mut rest: Vec<ValidRow> = rows.into_iter().skip(from).collect();
        let mut start = from;
        while !rest.is_empty() {
            let tail = rest.split_off(CHUNK.min(rest.len()));
            let chunk = std::mem::replace(&mut rest, tail);
            let end = start + chunk.len();
            chunks.push((start, end, chunk));
            start = end;
        }
        // A pipeline of four stages, each one chunk ahead of the next: composed letters are
        // rendered into temporary files for chunk k+3 while chunk k+2's are flushed and
        // placed, chunk k+1 is sealed and chunk k committed (rendering and sealing keep both
        // cores busy; placing and committing wait on the disk). One chunk waits between
        // stages: memory stays at a few chunks whatever the batch size (a rendered chunk
        // holds its rows; its PDFs are in files).
        let (first, input) = tokio::sync::mpsc::channel(1);
        let feeder = tokio::spawn(async move {
            for chunk in chunks {
                if first.send(Ok(chunk)).await.is_err() {
                    break;
                }
            }
        });
        let (renderer, rendered) = {
            let (batches, caller) = (self.clone(), caller.clone());
            stage(input, Stage::Render, move |_, _, rows: Vec<ValidRow>| {
                let (batches, caller) = (batches.clone(), caller.clone());
                async move { batches.render_rows(&caller, rows).await }
            })
        };
        let (placer, placed) = {
            let (batches, caller) = (self.clone(), caller.clone());
            stage(rendered, Stage::Place, move |_, _, chunk: RenderedChunk| {
                let (batches, caller) = (batches.clone(), caller.clone());
                async move { batches.place_rows(&caller, chunk).await }
            })
        };
        let (sealer, mut receiver) = {
            let (batches, caller, id) = (self.clone(), caller.clone(), id.to_string());
            stage(
                placed,
                Stage::Seal,
                move |from, to, chunk: ComposedChunk| {
                    let (batches, caller, id) = (batches.clone(), caller.clone(), id.clone());
                    let documents = documents.clone();
                    async move {
                        batches
                            .seal_composed(&id, &caller, chunk, &documents, from as i64, to as i64)
                            .await
                    }
                },
            )
        };
        let mut outcome = Ok(());
        while let Some(sealed) = receiver.recv().await {
            let chunk = match sealed {
                Ok((_, _, chunk)) => chunk,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            let last = chunk.to_row as usize == total;
            let to_row = chunk.to_row;
            let started = std::time::Instant::now();
            let committed = self.commit(id, caller, chunk, last).await;
            STAGE_TIMES.add(Stage::Commit, started.elapsed());
            tracing::debug!(batch.id = %id, to_row, seconds = started.elapsed().as_secs_f64(), "batch chunk committed");
            match committed {
                Ok(true) if !last && self.stopping() => {
                    tracing::info!(batch.id = %id, to_row, "service stopping: the batch is left to the next start from this chunk");
                    break;
                }
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(batch.id = %id, "batch moved on elsewhere; this runner stops");
                    break;
                }
                Err(e) => {
                    outcome = Err(e.into());
                    break;
                }
            }
        }
        drop(receiver);
        for task in [feeder, renderer, placer, sealer] {
            task.abort();
        }
        outcome
    }

    /// Builds, seals and timestamps one chunk; rows whose consent went away since
    /// validation become row errors.
    async fn seal_chunk(
        &self,
        batch_id: &str,
        caller: &Caller,
        rows: Vec<ValidRow>,
        documents: &HashMap<String, DocumentRow>,
        from_row: i64,
        to_row: i64,
    ) -> Result<SealedChunk, DepositError> {
        // Composed letters are written now, in this chunk, on the sealing threads.
        let rendered = self.render_rows(caller, rows).await?;
        let composed = self.place_rows(caller, rendered).await?;
        self.seal_composed(batch_id, caller, composed, documents, from_row, to_row)
            .await
    }

    /// Builds, seals and timestamps one chunk whose letters are composed already.
    async fn seal_composed(
        &self,
        batch_id: &str,
        caller: &Caller,
        chunk: ComposedChunk,
        documents: &HashMap<String, DocumentRow>,
        from_row: i64,
        to_row: i64,
    ) -> Result<SealedChunk, DepositError> {
        let ComposedChunk {
            rows,
            mut errors,
            composed,
        } = chunk;
        let now = self.clock.now();
        // CPCE L.100: consents are checked again at the time of deposit.
        let consents = self.consents_of(caller, rows.iter()).await?;
        let mut built = Vec::with_capacity(rows.len());
        let mut row_documents: Vec<DocumentRow> = Vec::new();
        let mut row_document_ids: &[String] = &[];
        for row in &rows {
            let request = &row.request;
            if request.compose.is_some() && request.document_ids.is_empty() {
                // Its composition failed (reported by `compose_rows`).
                continue;
            }
            if let Some(message) = consent_refusal(row, &consents, now) {
                errors.push(RowError {
                    row: row.row,
                    field: "recipient.consent_id".into(),
                    message,
                });
                continue;
            }
            // Rows of a mailing share their documents: resolve them once per run of equal lists.
            if request.document_ids.as_slice() != row_document_ids {
                row_documents = request
                    .document_ids
                    .iter()
                    .filter_map(|d| documents.get(d).or_else(|| composed.get(d)).cloned())
                    .collect();
                row_document_ids = &request.document_ids;
            }
            let consent = request
                .recipient
                .consent_id
                .as_ref()
                .filter(|_| request.recipient.kind == RecipientKind::Consumer)
                .and_then(|id| consents.get(id));
            let (letter, mut record) =
                self.deposits
                    .build(caller, request, &row_documents, consent, now);
            // The proof of deposit names the batch and the row the letter came from.
            record
                .details
                .insert("batch".into(), json!({ "id": batch_id, "row": row.row }));
            built.push((letter, record, request.document_ids.clone()));
        }
        let (to_seal, document_ids): (Vec<_>, Vec<_>) = built
            .into_iter()
            .map(|(letter, record, ids)| ((letter, record), ids))
            .unzip();
        let sealed = self.deposits.seal_many(to_seal, now, self.threads).await?;
        let at = unix_micros(now);
        let mut deposits = Vec::with_capacity(sealed.len());
        for ((mut letter, evidence), document_ids) in sealed.into_iter().zip(document_ids) {
            let sha256 = hex_digest(&evidence.sha256);
            letter.last_evidence_sha256 = Some(sha256.clone());
            deposits.push(NewDeposit {
                evidence: NewEvidence {
                    id: evidence.record.evidence_id.clone(),
                    letter_id: letter.id.clone(),
                    event: evidence.record.event.name().to_string(),
                    event_time: at,
                    record: evidence.bytes,
                    record_sha256: sha256,
                    seal: evidence.seal,
                    timestamp_token: evidence.timestamp_token,
                    created_at: at,
                },
                letter,
                document_ids,
                jobs: Vec::new(),
            });
        }
        let jobs = chunk_jobs(&caller.tenant_id, &deposits, now);
        Ok(SealedChunk {
            from_row,
            to_row,
            deposits,
            errors,
            jobs,
            now,
        })
    }

    /// Commits a sealed chunk; `last` makes the batch completed in the same transaction.
    async fn commit(
        &self,
        id: &str,
        caller: &Caller,
        mut chunk: SealedChunk,
        last: bool,
    ) -> Result<bool, StorageError> {
        if last {
            chunk.jobs.push(completed_job(
                &caller.tenant_id,
                id,
                BatchState::Completed,
                chunk.now,
            ));
        }
        let committed = self
            .storage
            .commit_batch_chunk(&BatchChunk {
                batch_id: id,
                from_row: chunk.from_row,
                to_row: chunk.to_row,
                deposits: &chunk.deposits,
                errors: &chunk.errors,
                jobs: &chunk.jobs,
                final_state: last.then_some(BatchState::Completed.as_str()),
                now: unix_micros(chunk.now),
                lease_until: unix_micros(self.clock.now() + LEASE),
            })
            .await?;
        if committed {
            tracing::debug!(batch.id = %id, letters = chunk.deposits.len(), to_row = chunk.to_row, "batch chunk deposited");
            if last {
                tracing::info!(batch.id = %id, "batch completed");
            }
        }
        Ok(committed)
    }

    /// Marks the batch failed (the chunks committed before stay deposited, whole).
    async fn fail(&self, caller: &Caller, id: &str, reason: &str) {
        let now = self.clock.now();
        let result = self
            .storage
            .finish_batch(
                id,
                BatchState::Failed.as_str(),
                Some(reason),
                &[],
                &[completed_job(
                    &caller.tenant_id,
                    id,
                    BatchState::Failed,
                    now,
                )],
                unix_micros(now),
            )
            .await;
        if let Err(e) = result {
            // The lease ends and a resumer tries again.
            tracing::error!(batch.id = %id, error = %e, "cannot record the batch failure");
        }
    }
}

/// A stage of the batch pipeline, for the time spent in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Composed letters checked, written, rendered and encrypted into temporary files.
    Render,
    /// Rendered letters flushed, their keys recorded, moved into place, recorded as documents.
    Place,
    /// Deposit evidence built, sealed and timestamped.
    Seal,
    /// Letters, evidence, jobs and progress committed.
    Commit,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 4] = [Stage::Render, Stage::Place, Stage::Seal, Stage::Commit];

    /// Name used in metrics and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Render => "render",
            Stage::Place => "place",
            Stage::Seal => "seal",
            Stage::Commit => "commit",
        }
    }
}

/// Time spent in each stage by this process since it started, and chunks through it.
#[derive(Debug, Default)]
pub struct StageTimes {
    micros: [std::sync::atomic::AtomicU64; 4],
    chunks: [std::sync::atomic::AtomicU64; 4],
}

impl StageTimes {
    fn add(&self, stage: Stage, elapsed: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        let i = stage as usize;
        self.micros[i].fetch_add(elapsed.as_micros() as u64, Relaxed);
        self.chunks[i].fetch_add(1, Relaxed);
    }

    /// Seconds spent in `stage` and chunks it handled.
    pub fn get(&self, stage: Stage) -> (f64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let i = stage as usize;
        (
            self.micros[i].load(Relaxed) as f64 / 1e6,
            self.chunks[i].load(Relaxed),
        )
    }
}

/// Stage times of every batch of this process (exported by `/metrics`, printed by the bench).
pub static STAGE_TIMES: StageTimes = StageTimes {
    micros: [const { std::sync::atomic::AtomicU64::new(0) }; 4],
    chunks: [const { std::sync::atomic::AtomicU64::new(0) }; 4],
};

type Chunk<T> = Result<(usize, usize, T), DepositError>;

/// Runs one stage of the pipeline: takes chunks (first row, end row, content) from `input`,
/// applies `f` to each, and passes the result on through a channel of one; stops at the
/// first failure (passed on) or when the next stage has gone.
fn stage<I, O, F, Fut>(
    mut input: tokio::sync::mpsc::Receiver<Chunk<I>>,
    which: Stage,
    f: F,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::mpsc::Receiver<Chunk<O>>,
)
where
    I: Send + 'static,
    O: Send + 'static,
    F: Fn(usize, usize, I) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<O, DepositError>> + Send,
{
    let (sender, output) = tokio::sync::mpsc::channel(1);
    let task = tokio::spawn(async move {
        while let Some(chunk) = input.recv().await {
            let started = std::time::Instant::now();
            let result = match chunk {
                Ok((from, to, content)) => f(from, to, content).await.map(|out| (from, to, out)),
                Err(e) => Err(e),
            };
            STAGE_TIMES.add(which, started.elapsed());
            tracing::debug!(
                stage = which.as_str(),
                seconds = started.elapsed().as_secs_f64(),
                "batch chunk through stage"
            );
            let failed = result.is_err();
            if sender.send(result).await.is_err() || failed {
                break;
            }
        }
    });
    (task, output)
}

/// The coalesced jobs of a chunk: one notification job naming its letters (expanded into one
/// `notify` job per letter by the outbox worker, so each notification keeps its own retries
/// and evidence) and one `letter.deposited` webhook job for all of them.
fn chunk_jobs(tenant_id: &str, deposits: &[NewDeposit], now: OffsetDateTime) -> Vec<NewJob> {
    if deposits.is_empty() {
        return Vec::new();
    }
    let at = unix_micros(now);
    let letters: Vec<&str> = deposits.iter().map(|d| d.letter.id.as_str()).collect();
    let items: Vec<[&str; 2]> = deposits
        .iter()
        .map(|d| [d.letter.id.as_str(), d.evidence.id.as_str()])
        .collect();
    vec![
        NewJob {
            kind: crate::app::lifecycle::job::NOTIFY_LETTERS.into(),
            letter_id: None,
            payload: json!({ "letters": letters }).to_string(),
            run_after: at,
        },
        NewJob {
            kind: crate::app::lifecycle::job::WEBHOOK_EVENTS.into(),
            letter_id: None,
            payload: json!({
                "tenant_id": tenant_id,
                "event": "letter.deposited",
                "occurred_at": rfc3339_micros(now),
                "items": items,
            })
            .to_string(),
            run_after: at,
        },
    ]
}

/// The outbox job announcing that batch `id` reached `state`.
fn completed_job(tenant_id: &str, id: &str, state: BatchState, now: OffsetDateTime) -> NewJob {
    NewJob {
        kind: crate::app::lifecycle::job::BATCH_EVENT.into(),
        letter_id: None,
        payload: json!({
            "tenant_id": tenant_id,
            "batch_id": id,
            "event": BATCH_COMPLETED,
            "state": state.as_str(),
            "occurred_at": rfc3339_micros(now),
        })
        .to_string(),
        run_after: unix_micros(now),
    }
}

/// Why the consumer recipient of `row` may not receive LRE from this tenant at `now`
/// (CPCE L.100), if so; `None` for a professional or a consumer who consented.
fn consent_refusal(
    row: &ValidRow,
    consents: &HashMap<String, ConsentRow>,
    now: OffsetDateTime,
) -> Option<String> {
    let recipient = &row.request.recipient;
    if recipient.kind != RecipientKind::Consumer {
        return None;
    }
    let id = recipient.consent_id.as_deref().unwrap_or("");
    check_for_deposit(
        consents.get(id),
        &recipient.email,
        &depositing_sender(&row.request),
        now,
    )
    .err()
    .map(|refusal| refusal.message(id))
}

/// Template wordings by id, as read for a batch (a failed read is kept as its errors).
type Wordings = HashMap<
    String,
    Result<crate::domain::collection::Wording, Vec<crate::domain::letter::FieldError>>,
>;

/// The template id a letter names (when it is a UUID) and the kind of its composed letter.
fn template_and_kind(letter: &Value) -> (Option<String>, Option<&str>) {
    let template = letter
        .get("template_id")
        .and_then(Value::as_str)
        .and_then(|t| uuid::Uuid::try_parse(t).ok())
        .map(|u| u.to_string());
    let kind = letter
        .get("compose")
        .and_then(|c| c.get("kind"))
        .and_then(Value::as_str);
    (template, kind)
}

/// The cached wording of `template`; `None` without a template.
fn cached_wording(
    cache: &Wordings,
    template: Option<String>,
) -> Result<Option<crate::domain::collection::Wording>, Vec<crate::domain::letter::FieldError>> {
    match template.and_then(|id| cache.get(&id)) {
        Some(Ok(w)) => Ok(Some(w.clone())),
        Some(Err(e)) => Err(e.clone()),
        None => Ok(None),
    }
}

/// Checks one row without the database: its letter fields and, for a composed letter, its
/// composition with the template wordings read before.
fn check_row(
    composer: &crate::app::composer::Composer,
    wordings: &Wordings,
    row: BatchRow,
    date: time::Date,
) -> Result<(ValidRow, Value), Vec<RowError>> {
    let checked = check_letter(&row);
    let composition = match row.letter.get("compose").filter(|c| c.is_object()) {
        Some(compose) => {
            let (template, _) = template_and_kind(&row.letter);
            cached_wording(wordings, template)
                .and_then(|w| composer.check(compose, w.as_ref(), date).map(|_| ()))
        }
        None => Ok(()),
    };
    match (checked, composition) {
        (Ok(request), Ok(())) => Ok((
            ValidRow {
                row: row.row,
                request,
            },
            row.letter,
        )),
        (Ok(_), Err(c)) => Err(row_errors(row.row, c).collect()),
        (Err(e), Ok(())) => Err(e),
        (Err(mut e), Err(c)) => {
            e.extend(row_errors(row.row, c));
            Err(e)
        }
    }
}

/// The field errors of row `row` as row errors.
fn row_errors(
    row: i64,
    errors: Vec<crate::domain::letter::FieldError>,
) -> impl Iterator<Item = RowError> {
    errors.into_iter().map(move |e| RowError {
        row,
        field: e.field,
        message: e.message,
    })
}

/// Distinct rows among errors.
fn count_rows(errors: &[RowError]) -> usize {
    let mut rows: Vec<i64> = errors.iter().map(|e| e.row).collect();
    rows.sort_unstable();
    rows.dedup();
    rows.len()
}
