//! Relational storage: one schema shape, two engines.
//!
//! SQLite is the embedded default (one WAL file in the data directory); PostgreSQL is the
//! production and scale-out engine. Both are reached through concrete sqlx pools and the very
//! same SQL text (`$N` placeholders, which the SQLite driver accepts), dispatched by the
//! `dispatch!` macro so that every query is type-checked against both drivers.
//!
//! Invariants kept here:
//! - evidence is **insert-only**: this module offers no function that updates or deletes an
//!   evidence row, and the migrations add triggers that refuse it at the database level;
//! - a letter, its documents, its deposit evidence and the answer of its idempotency claim are
//!   written in **one transaction** (`insert_deposits`), so a failure leaves nothing
//!   half-written.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, QueryBuilder, Row, SqlitePool};

/// Rows per multi-row INSERT: keeps every statement far below SQLite's 32,766 bound variables.
pub(crate) const INSERT_CHUNK: usize = 400;

/// A failure of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database URL names no supported engine.
    #[error("unsupported database URL (expected sqlite:… or postgres://…): {0}")]
    UnsupportedUrl(String),
    /// A unique constraint refused the write; the string names what collided.
    #[error("conflict: {0} already exists")]
    Conflict(&'static str),
    /// The `Idempotency-Key` claim of this request was lost (it expired and a retry took it
    /// over): the request's writes are rolled back and the retry's answer stands.
    #[error("the idempotency claim of this request was taken over")]
    IdempotencyClaimLost,
    /// A stored value could not be read back as expected.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Migrations failed to apply.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A secret kept in a row could not be sealed or opened under the master keys.
    #[error("sealed secret: {0}")]
    Sealing(#[from] crate::infra::keys::KeyError),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// What a storage failure means for the caller: the database cannot take this write now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// The disk (or the database's size limit) is full: SQLITE_FULL, PostgreSQL 53100.
    Full,
    /// The database cannot be reached or refused for a passing reason: pool timeout, broken
    /// or terminated connection, I/O error, lock contention, server shutting down.
    Unavailable,
}

impl StorageError {
    /// `Some` when the failure is an outage of the database rather than a fault of the
    /// request or of the code: the write was not made and may succeed later.
    pub fn outage(&self) -> Option<Outage> {
        let StorageError::Database(err) = self else {
            return None;
        };
        outage_of(err)
    }

    /// True when retrying the same work later can succeed (an outage, not a bug or a
    /// conflict): what background jobs retry instead of failing.
    pub fn is_transient(&self) -> bool {
        self.outage().is_some()
    }

    fn from_insert(err: sqlx::Error, what: &'static str) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => StorageError::Conflict(what),
            _ => StorageError::Database(err),
        }
    }
}

/// Classifies a driver error as an outage of the database, or `None` for anything else.
pub(crate) fn outage_of(err: &sqlx::Error) -> Option<Outage> {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => Some(Outage::Unavailable),
        sqlx::Error::Database(db) => {
            let code = db.code()?;
            let code: &str = &code;
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLite result codes (https://sqlite.org/rescode.html): the low byte is the
                // primary code of an extended code.
                let primary = code.parse::<i32>().ok()? & 0xff;
                match primary {
                    13 => Some(Outage::Full),                     // SQLITE_FULL
                    5 | 6 | 10 | 14 => Some(Outage::Unavailable), // BUSY, LOCKED, IOERR, CANTOPEN
                    _ => None,
                }
            } else if code == "53100" {
                Some(Outage::Full) // PostgreSQL disk_full
            } else if code.starts_with("08") // connection exception
                || code.starts_with("53") // insufficient resources
                || code.starts_with("57P") // admin/crash shutdown, cannot connect now
                || code == "40001" // serialization failure
                || code == "40P01"
            // deadlock detected
            {
                Some(Outage::Unavailable)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// A tenant: one customer account (a collection agency or a creditor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Tenant id (UUID).
    pub id: String,
    /// Unique human name.
    pub name: String,
}

/// An API key as listed by operators (never the key itself).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    /// Key id (UUID), what `api-key revoke` takes.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Owning tenant's name.
    pub tenant_name: String,
    /// HMAC-SHA256 of the key under the installation secret.
    pub key_hmac: Vec<u8>,
    /// Creation time, Unix µs.
    pub created_at: i64,
    /// Revocation time, Unix µs.
    pub revoked_at: Option<i64>,
}

/// A letter row. `sender` and `recipient` hold JSON objects.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LetterRow {
    /// Letter id (UUID v7: sorts by creation time).
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Lifecycle state (`deposited`, `notified`, …).
    pub state: String,
    /// Sender's own reference.
    pub reference: Option<String>,
    /// Sender party, JSON.
    pub sender: String,
    /// Recipient party, JSON.
    pub recipient: String,
    /// Deposit time, Unix µs.
    pub deposited_at: i64,
    /// End of the retention period, Unix µs.
    pub retain_until: i64,
    /// Last state change, Unix µs.
    pub updated_at: i64,
    /// SHA-256 (hex) of the letter's latest evidence record: the chain head.
    pub last_evidence_sha256: Option<String>,
    /// When the notification was handed to the mail relay, Unix µs.
    pub notified_at: Option<i64>,
    /// End (exclusive) of the acceptance window, Unix µs.
    pub deadline: Option<i64>,
    /// When the recipient accepted or refused, Unix µs.
    pub decided_at: Option<i64>,
    /// First download of the content by the recipient, Unix µs.
    pub content_handed_over_at: Option<i64>,
    /// Since when a legal hold blocks the letter's expiry, Unix µs (`None`: no hold).
    pub legal_hold_since: Option<i64>,
    /// When the letter's content was destroyed after its retention period, Unix µs.
    pub content_destroyed_at: Option<i64>,
}

/// Evidence about to be inserted (the sequence number is assigned by the database).
#[derive(Debug, Clone, Default)]
pub struct NewEvidence {
    /// Evidence id (UUID).
    pub id: String,
    /// The letter it is about.
    pub letter_id: String,
    /// Event name.
    pub event: String,
    /// Event time, Unix µs.
    pub event_time: i64,
    /// Canonical JSON bytes.
    pub record: Vec<u8>,
    /// Hex SHA-256 of `record`.
    pub record_sha256: String,
    /// CMS seal.
    pub seal: Vec<u8>,
    /// RFC 3161 token.
    pub timestamp_token: Vec<u8>,
    /// Storage time, Unix µs.
    pub created_at: i64,
}

/// The record of one `Idempotency-Key`: a claim while its request is processed (`pending`),
/// then the answer replayed for a retried request (`done`). See [`idempotency`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRow {
    /// Owning tenant.
    pub tenant_id: String,
    /// The client's key.
    pub key: String,
    /// The route template the key was used on (`/v1/letters`, `/v1/letters/{id}/hold`);
    /// empty on answers stored before routes were recorded.
    pub route: String,
    /// Hex SHA-256 of method, path and body of the original request.
    pub request_sha256: String,
    /// Random token of the request holding the claim; only it may complete or release it.
    pub claim: String,
    /// Whether the answer is stored (`false`: the request is still being processed).
    pub done: bool,
    /// HTTP status of the original response (0 while pending).
    pub status: i64,
    /// Headers replayed with the answer (`Location`), one `name: value` per line.
    pub headers: String,
    /// Body of the original response (empty while pending).
    pub response: Vec<u8>,
    /// Time of the claim, then of the original answer, Unix µs.
    pub created_at: i64,
}

/// Everything one deposit writes, in one transaction.
#[derive(Debug, Clone)]
pub struct NewDeposit {
    /// The letter.
    pub letter: LetterRow,
    /// Its documents, in order.
    pub document_ids: Vec<String>,
    /// Its `SubmissionAcceptance` evidence.
    pub evidence: NewEvidence,
    /// Jobs the deposit causes (the notification, the `letter.deposited` event).
    pub jobs: Vec<NewJob>,
}

/// Filters for listing letters; results are ordered by id (creation time).
#[derive(Debug, Clone, Default)]
pub struct LetterFilter {
    /// Only letters with this reference.
    pub reference: Option<String>,
    /// Only letters in this state.
    pub state: Option<String>,
    /// Only letters whose id sorts after this one (cursor).
    pub after_id: Option<String>,
    /// At most this many.
    pub limit: i64,
}

enum Backend {
    /// SQLite allows one writer at a time: writes go through a single-connection pool so they
    /// queue in-process instead of failing with SQLITE_BUSY; reads use a wider pool (WAL).
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
    },
    Postgres(PgPool),
}

/// Creates the SQLite file `path` with mode 0600 before SQLite does (it would follow the
/// umask), and narrows an existing one and its `-wal`/`-shm` companions, which SQLite
/// creates with the database file's mode (issue 12 §4: the data directory is private).
fn private_database_file(path: &std::path::Path) -> Result<(), StorageError> {
    let name = path.to_string_lossy();
    if name.is_empty() || name.starts_with(':') {
        return Ok(()); // in memory
    }
    let io = |e: std::io::Error| {
        StorageError::Database(sqlx::Error::Io(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        )))
    };
    match crate::infra::private_files::file_options()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        // A missing directory or another failure is SQLite's to report, with its own words.
        Err(_) => return Ok(()),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        crate::infra::private_files::narrow_file(std::path::Path::new(&file)).map_err(io)?;
    }
    Ok(())
}

/// What this process committed since it started, for the throughput counters of `/metrics`:
/// evidence records by event (deposits are `SubmissionAcceptance`, proofs of dispatch
/// `NotificationForAcceptance`), batches received and their rows deposited or rejected.
/// Counted after each commit, so a rolled-back write counts nothing.
#[derive(Debug, Default)]
pub struct Throughput {
    evidence: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    batches: std::sync::atomic::AtomicU64,
    batch_rows_deposited: std::sync::atomic::AtomicU64,
    batch_rows_rejected: std::sync::atomic::AtomicU64,
    /// Signalled after a commit that queued outbox jobs: the outbox worker starts its next
    /// pass at once instead of at its next poll.
    jobs_queued: tokio::sync::Notify,
}

/// A snapshot of [`Throughput`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThroughputSnapshot {
    /// Evidence records committed, by event.
    pub evidence: Vec<(String, u64)>,
    /// Batches received.
    pub batches: u64,
    /// Batch rows deposited.
    pub batch_rows_deposited: u64,
    /// Batch rows rejected.
    pub batch_rows_rejected: u64,
}

impl Throughput {
    /// Outbox jobs were committed.
    pub(crate) fn jobs_queued(&self) {
        self.jobs_queued.notify_one();
    }

    pub(crate) fn evidence<'a>(&self, events: impl IntoIterator<Item = &'a str>) {
        // A poisoned lock only means another thread panicked while counting.
        let mut counts = self
            .evidence
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for event in events {
            match counts.get_mut(event) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(event.to_string(), 1);
                }
            }
        }
    }

    pub(crate) fn batch_rows(&self, new_batches: u64, deposited: usize, rejected: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.batches.fetch_add(new_batches, Relaxed);
        self.batch_rows_deposited
            .fetch_add(deposited as u64, Relaxed);
        self.batch_rows_rejected.fetch_add(rejected as u64, Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> ThroughputSnapshot {
        use std::sync::atomic::Ordering::Relaxed;
        ThroughputSnapshot {
            evidence: self
                .evidence
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            batches: self.batches.load(Relaxed),
            batch_rows_deposited: self.batch_rows_deposited.load(Relaxed),
            batch_rows_rejected: self.batch_rows_rejected.load(Relaxed),
        }
    }
}

/// The relational store. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    backend: std::sync::Arc<Backend>,
    /// What this process committed (shared by the clones).
    throughput: std::sync::Arc<Throughput>,
    /// The master keys sealing the secrets kept in rows (webhook signing secrets), set by
    /// [`Storage::with_secret_keys`]; without them such rows can be neither written nor read.
    secret_keys: Option<std::sync::Arc<crate::infra::keys::Keyring>>,
}

/// How long a PostgreSQL request waits for a pooled connection before answering 503.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// The SQLite writer's release check: flushes the rollback a dropped transaction queued,
/// then asks SQLite itself whether a transaction is still open (`BEGIN` fails inside one).
/// `Ok(false)` makes the pool close the connection, which rolls back whatever it held.
async fn writer_is_clean(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    // The ping runs after any queued ROLLBACK on the connection's worker, in order.
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::error!("database writer still inside a transaction after release; reconnecting");
        return Ok(false);
    }
    // A raw BEGIN, not `Connection::begin`: sqlx's own depth says no transaction, and this
    // asks the engine, which is what decides whether a later COMMIT really commits.
    if sqlx::query("BEGIN").execute(&mut *conn).await.is_err() {
        tracing::error!("database writer left inside a transaction; reconnecting");
        return Ok(false);
    }
    sqlx::query("ROLLBACK").execute(&mut *conn).await?;
    Ok(true)
}

/// Ends a transaction by what its statements did: commit after success, an explicit
/// rollback after a failure (not the lazy one of `Drop`), and the first error wins.
pub(crate) async fn finish<DB: sqlx::Database, T>(
    tx: sqlx::Transaction<'_, DB>,
    result: Result<T, sqlx::Error>,
) -> Result<T, sqlx::Error> {
    match result {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(err) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::error!(error = %rollback, "rollback after a failed statement failed");
            }
            Err(err)
        }
    }
}

/// Runs `$body` with `$pool` bound to the pool of `$handle` (a [`Reader`] from
/// [`Storage::reader`] or a [`Writer`] from [`Storage::writer`]) and `$db` to the sqlx
/// database type, which implements [`dialect::Dialect`].
macro_rules! dispatch {
    ($handle:expr, |$pool:ident, $db:ident| $body:expr) => {
        match $handle.pools() {
            $crate::infra::storage::Pools::Sqlite($pool) => {
                #[allow(dead_code)]
                type $db = sqlx::Sqlite;
                $body
            }
            $crate::infra::storage::Pools::Postgres($pool) => {
                #[allow(dead_code)]
                type $db = sqlx::Postgres;
                $body
            }
        }
    };
}

/// `fetch_rows!(fetch_optional | fetch_all, handle, Row, sql, binds…)`: at most one `Row`,
/// or every `Row`, read by `sql` with its values bound in order, on either engine.
macro_rules! fetch_rows {
    ($fetch:ident, $handle:expr, $row:ty, $sql:expr $(, $bind:expr)* $(,)?) => {
        dispatch!($handle, |pool, Db| {
            Ok(sqlx::query_as::<_, $row>($sql)
                $(.bind($bind))*
                .$fetch(pool)
                .await?)
        })
    };
}

/// `fetch_optional!(handle, Row, sql, binds…)`: see `fetch_rows!`.
macro_rules! fetch_optional {
    ($($args:tt)*) => {
        fetch_rows!(fetch_optional, $($args)*)
    };
}

/// `fetch_all!(handle, Row, sql, binds…)`: see `fetch_rows!`.
macro_rules! fetch_all {
    ($($args:tt)*) => {
        fetch_rows!(fetch_all, $($args)*)
    };
}

/// `execute!(handle, sql, binds…)`: runs `sql` with its values bound in order, on either
/// engine; the rows it changed.
macro_rules! execute {
    ($handle:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        dispatch!($handle, |pool, Db| {
            Ok::<u64, $crate::infra::storage::StorageError>(
                sqlx::query($sql)
                    $(.bind($bind))*
                    .execute(pool)
                    .await?
                    .rows_affected(),
            )
        })
    };
}

/// One engine's pool, as a [`Reader`] or a [`Writer`] hands it to `dispatch!`.
pub(crate) enum Pools<'a> {
    Sqlite(&'a SqlitePool),
    Postgres(&'a PgPool),
}

/// The pool reads go through: on SQLite the read-only pool of several connections (WAL
/// readers see the last committed state), on PostgreSQL the one pool.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a>(&'a Backend);

/// The pool writes go through, and the reads that must see the writer's own latest
/// commit: on SQLite the single-connection writer pool, on PostgreSQL the one pool.
#[derive(Clone, Copy)]
pub(crate) struct Writer<'a>(&'a Backend);

impl<'a> Reader<'a> {
    pub(crate) fn pools(self) -> Pools<'a> {
        match self.0 {
            Backend::Sqlite { read, .. } => Pools::Sqlite(read),
            Backend::Postgres(pool) => Pools::Postgres(pool),
        }
    }
}

impl<'a> Writer<'a> {
    pub(crate) fn pools(self) -> Pools<'a> {
        match self.0 {
            Backend::Sqlite { write, .. } => Pools::Sqlite(write),
            Backend::Postgres(pool) => Pools::Postgres(pool),
        }
    }
}

/// Completes the pending idempotency claim `$idem` with its answer, on the transaction
/// connection `$conn`: the answer commits with the resource or not at all. A claim this
/// request no longer holds (expired and taken over) yields [`StorageError::IdempotencyClaimLost`].
macro_rules! complete_idempotency {
    ($conn:expr, $idem:expr) => {{
        let idem: &IdempotencyRow = $idem;
        let done = sqlx::query($crate::infra::storage::idempotency::COMPLETE_SQL)
            .bind(&idem.tenant_id)
            .bind(&idem.key)
            .bind(&idem.claim)
            .bind(idem.status)
            .bind(&idem.headers)
            .bind(&idem.response)
            .bind(idem.created_at)
            .execute($conn)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StorageError::IdempotencyClaimLost);
        }
    }};
}

/// `insert_evidence_rows!(tx, Db, rows)`: inserts the [`NewEvidence`] rows `rows` (at most
/// [`INSERT_CHUNK`]) in one statement inside the transaction connection `tx`; a duplicate
/// id is a conflict.
macro_rules! insert_evidence_rows {
    ($tx:expr, $db:ident, $rows:expr) => {{
        let mut query = QueryBuilder::<$db>::new(
            "INSERT INTO evidence (id, letter_id, event, event_time, record, record_sha256, seal, timestamp_token, created_at) ",
        );
        query.push_values($rows, |mut b, e: &$crate::infra::storage::NewEvidence| {
            b.push_bind(&e.id)
                .push_bind(&e.letter_id)
                .push_bind(&e.event)
                .push_bind(e.event_time)
                .push_bind(&e.record)
                .push_bind(&e.record_sha256)
                .push_bind(&e.seal)
                .push_bind(&e.timestamp_token)
                .push_bind(e.created_at);
        });
        query
            .build()
            .execute(&mut *$tx)
            .await
            .map_err(|e| StorageError::from_insert(e, "evidence"))?;
    }};
}

/// Inserts deposits (letters with `batch_id`, document links, deposit evidence, jobs) on the
/// transaction connection `$tx`, in multi-row statements of [`INSERT_CHUNK`] rows.
macro_rules! insert_deposit_rows {
    ($tx:expr, $db:ident, $deposits:expr, $batch_id:expr) => {{
        let batch_id: Option<&str> = $batch_id;
        for chunk in $deposits.chunks(crate::infra::storage::INSERT_CHUNK) {
            let mut query = QueryBuilder::<$db>::new(concat!(
                "INSERT INTO letters (",
                letter_insert_columns!(),
                ", batch_id) "
            ));
            query.push_values(chunk, |mut b, d| {
                let l = &d.letter;
                b.push_bind(&l.id)
                    .push_bind(&l.tenant_id)
                    .push_bind(&l.state)
                    .push_bind(&l.reference)
                    .push_bind(&l.sender)
                    .push_bind(&l.recipient)
                    .push_bind(l.deposited_at)
                    .push_bind(l.retain_until)
                    .push_bind(l.updated_at)
                    .push_bind(&l.last_evidence_sha256)
                    .push_bind(batch_id);
            });
            query
                .build()
                .execute(&mut *$tx)
                .await
                .map_err(|e| StorageError::from_insert(e, "letter"))?;

            let links: Vec<(&str, i64, &str)> = chunk
                .iter()
                .flat_map(|d| {
                    d.document_ids
                        .iter()
                        .enumerate()
                        .map(move |(i, doc)| (d.letter.id.as_str(), i as i64, doc.as_str()))
                })
                .collect();
            for links in links.chunks(crate::infra::storage::INSERT_CHUNK * 2) {
                let mut query = QueryBuilder::<$db>::new(
                    "INSERT INTO letter_documents (letter_id, position, document_id) ",
                );
                query.push_values(links, |mut b, (letter, position, doc)| {
                    b.push_bind(*letter).push_bind(*position).push_bind(*doc);
                });
                query.build().execute(&mut *$tx).await?;
            }

            insert_evidence_rows!($tx, $db, chunk.iter().map(|d| &d.evidence));

            let jobs: Vec<&NewJob> = chunk.iter().flat_map(|d| d.jobs.iter()).collect();
            for jobs in jobs.chunks(crate::infra::storage::INSERT_CHUNK) {
                let mut query = QueryBuilder::<$db>::new(
                    "INSERT INTO outbox (kind, letter_id, payload, run_after, created_at) ",
                );
                query.push_values(jobs, |mut b, j| {
                    b.push_bind(&j.kind)
                        .push_bind(&j.letter_id)
                        .push_bind(&j.payload)
                        .push_bind(j.run_after)
                        .push_bind(j.run_after);
                });
                query.build().execute(&mut *$tx).await?;
            }
        }
    }};
}

/// A `documents` row as read: [`DocumentRow`] stays free of sqlx traits.
#[derive(sqlx::FromRow)]
struct DocumentRecord {
    id: String,
    tenant_id: String,
    sha256: String,
    size: i64,
    media_type: String,
    filename: String,
    created_at: i64,
}

impl From<DocumentRecord> for DocumentRow {
    fn from(r: DocumentRecord) -> Self {
        DocumentRow {
            id: r.id,
            tenant_id: r.tenant_id,
            sha256: r.sha256,
            size: r.size,
            media_type: r.media_type,
            filename: r.filename,
            created_at: r.created_at,
        }
    }
}

/// An `evidence` row as read: [`EvidenceRow`] stays free of sqlx traits.
#[derive(sqlx::FromRow)]
struct EvidenceRecord {
    seq: i64,
    id: String,
    letter_id: String,
    event: String,
    event_time: i64,
    record: Vec<u8>,
    record_sha256: String,
    seal: Vec<u8>,
    timestamp_token: Vec<u8>,
    created_at: i64,
}

impl From<EvidenceRecord> for EvidenceRow {
    fn from(r: EvidenceRecord) -> Self {
        EvidenceRow {
            seq: r.seq,
            id: r.id,
            letter_id: r.letter_id,
            event: r.event,
            event_time: r.event_time,
            record: r.record,
            record_sha256: r.record_sha256,
            seal: r.seal,
            timestamp_token: r.timestamp_token,
            created_at: r.created_at,
        }
    }
}

// Column lists as macros so that queries stay `&'static str` literals (sqlx refuses dynamic SQL).
macro_rules! letter_columns {
    () => {
        "id, tenant_id, state, reference, sender, recipient, deposited_at, retain_until, updated_at, \
         last_evidence_sha256, notified_at, deadline, decided_at, content_handed_over_at, \
         legal_hold_since, content_destroyed_at"
    };
}
macro_rules! letter_insert_columns {
    () => {
        "id, tenant_id, state, reference, sender, recipient, deposited_at, retain_until, updated_at, \
         last_evidence_sha256"
    };
}
macro_rules! evidence_columns {
    () => {
        "seq, id, letter_id, event, event_time, record, record_sha256, seal, timestamp_token, created_at"
    };
}
macro_rules! api_key_select {
    () => {
        "SELECT k.id, k.tenant_id, t.name AS tenant_name, k.key_hmac, k.created_at, k.revoked_at \
         FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"
    };
}

impl Storage {
    /// Connects to `url` (`sqlite:PATH` or `postgres://…`) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let backend = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?;
            private_database_file(options.get_filename())?;
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL + NORMAL: durable against a process crash, one fsync per checkpoint
                // rather than per transaction (no per-letter fsync: the deposit throughput of `bench deposit`).
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            // The single writer gets a 32 MiB page cache (SQLite's default is 2 MiB): a chunk
            // of 500 batch letters with their evidence is a few MiB, and a smaller cache spills
            // pages to the WAL in the middle of the transaction.
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                // A write that failed (SQLITE_FULL on COMMIT above all) can leave the one
                // writer connection inside an open transaction: every later "commit" would
                // then only release a savepoint of that transaction and acknowledge letters
                // that are never stored. Each release therefore proves the connection is back
                // in autocommit mode, or the pool closes it (closing rolls the transaction
                // back) and opens a fresh one.
                .after_release(|conn, _| Box::pin(async move { writer_is_clean(conn).await }))
                .connect_with(options.clone().pragma("cache_size", "-32768"))
                .await?;
            sqlx::migrate!("migrations/sqlite").run(&write).await?;
            let read = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options.read_only(true))
                .await?;
            Backend::Sqlite { read, write }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                // Fail fast in an outage: a request waits at most this long for a connection,
                // then answers 503 with Retry-After instead of holding the client for 10 s.
                .acquire_timeout(PG_ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            sqlx::migrate!("migrations/postgres").run(&pool).await?;
            Backend::Postgres(pool)
        } else {
            return Err(StorageError::UnsupportedUrl(redact_url(url)));
        };
        Ok(Storage {
            backend: std::sync::Arc::new(backend),
            throughput: std::sync::Arc::default(),
            secret_keys: None,
        })
    }

    /// What this process committed since it started.
    pub fn throughput(&self) -> ThroughputSnapshot {
        self.throughput.snapshot()
    }

    /// Resolves once outbox jobs have been committed by this process since the last time it
    /// resolved (at once when that happened meanwhile): the outbox worker's wake-up.
    pub async fn jobs_queued(&self) {
        self.throughput.jobs_queued.notified().await;
    }

    /// The same store, sealing and opening the secrets kept in rows (webhook signing
    /// secrets) under `keys` (issue 12 §4: the database alone yields no secret).
    pub fn with_secret_keys(mut self, keys: std::sync::Arc<crate::infra::keys::Keyring>) -> Self {
        self.secret_keys = Some(keys);
        self
    }

    /// The master keys set by [`Storage::with_secret_keys`].
    pub(crate) fn secret_keys(&self) -> Result<&crate::infra::keys::Keyring, StorageError> {
        self.secret_keys.as_deref().ok_or(StorageError::Sealing(
            crate::infra::keys::KeyError::Unknown(
                "(none: the store was opened without master keys)".into(),
            ),
        ))
    }

    /// The reader pool (see [`Reader`]).
    pub(crate) fn reader(&self) -> Reader<'_> {
        Reader(&self.backend)
    }

    /// The writer pool (see [`Writer`]).
    pub(crate) fn writer(&self) -> Writer<'_> {
        Writer(&self.backend)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn engine(&self) -> &'static str {
        match &*self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Closes every pool (used before a clean exit, and by restart tests).
    pub async fn close(&self) {
        match &*self.backend {
            Backend::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// A trivial round trip, for health checks.
    pub async fn ping(&self) -> Result<(), StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Proves that the writer can write now: one committed write of one small row
    /// (`health_probe`), through the same pool and connection every deposit uses. A full
    /// disk, a read-only file system or a writer stuck in a transaction fails here, so
    /// readiness reports what a deposit would meet.
    pub async fn probe_write(&self, now: i64) -> Result<(), StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            let written = sqlx::query(
                "INSERT INTO health_probe (id, checked_at) VALUES (1, $1) \
                 ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
            )
            .bind(now)
            .execute(&mut *tx)
            .await;
            finish(tx, written).await?;
        });
        Ok(())
    }

    // ----- installation-wide values ---------------------------------------------------------

    /// The installation secret `name` as sealed under a master key: `(master key id, sealed)`.
    pub async fn sealed_secret(
        &self,
        name: &str,
    ) -> Result<Option<(String, Vec<u8>)>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let row =
                sqlx::query("SELECT master_key_id, sealed FROM sealed_secrets WHERE name = $1")
                    .bind(name)
                    .fetch_optional(pool)
                    .await?;
            match row {
                None => Ok(None),
                Some(row) => Ok(Some((
                    row.try_get("master_key_id")?,
                    row.try_get("sealed")?,
                ))),
            }
        })
    }

    /// Every sealed installation secret: `(name, master key id, sealed)`.
    pub async fn sealed_secrets(&self) -> Result<Vec<(String, String, Vec<u8>)>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let rows =
                sqlx::query("SELECT name, master_key_id, sealed FROM sealed_secrets ORDER BY name")
                    .fetch_all(pool)
                    .await?;
            rows.iter()
                .map(|row| -> Result<(String, String, Vec<u8>), StorageError> {
                    Ok((
                        row.try_get("name")?,
                        row.try_get("master_key_id")?,
                        row.try_get("sealed")?,
                    ))
                })
                .collect()
        })
    }

    /// Replaces the sealing of `name` if it is still under master key `old_key_id`; returns
    /// whether it was replaced.
    pub async fn replace_sealed_secret(
        &self,
        name: &str,
        old_key_id: &str,
        master_key_id: &str,
        sealed: &[u8],
    ) -> Result<bool, StorageError> {
        Ok(execute!(
            self.writer(),
            "UPDATE sealed_secrets SET master_key_id = $1, sealed = $2 \
                 WHERE name = $3 AND master_key_id = $4",
            master_key_id,
            sealed,
            name,
            old_key_id
        )? == 1)
    }

    /// The clear value of `name` left in `service_secrets` by a version before migration
    /// 0012, if any (to be sealed with the same material by [`Storage::store_sealed_secret`]).
    pub async fn clear_service_secret(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let row = sqlx::query("SELECT value FROM service_secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await?;
            match row {
                None => Ok(None),
                Some(row) => Ok(Some(row.try_get("value")?)),
            }
        })
    }

    /// Stores `sealed` as the installation secret `name` unless one is already stored, and
    /// erases its clear copy in `service_secrets` in the same transaction; returns what is
    /// stored, so concurrent first starts agree on one value.
    pub async fn store_sealed_secret(
        &self,
        name: &str,
        master_key_id: &str,
        sealed: &[u8],
        now: i64,
    ) -> Result<(String, Vec<u8>), StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO sealed_secrets (name, master_key_id, sealed, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(master_key_id)
            .bind(sealed)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM service_secrets WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            let row =
                sqlx::query("SELECT master_key_id, sealed FROM sealed_secrets WHERE name = $1")
                    .bind(name)
                    .fetch_one(&mut *tx)
                    .await?;
            let stored: (String, Vec<u8>) = (row.try_get("master_key_id")?, row.try_get("sealed")?);
            tx.commit().await?;
            Ok(stored)
        })
    }

    /// Atomically increments the counter `name` (starting at 1) and returns its new value.
    pub async fn next_counter(&self, name: &str) -> Result<i64, StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let row = sqlx::query(
                "INSERT INTO counters (name, value) VALUES ($1, 1) \
                 ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
            )
            .bind(name)
            .fetch_one(pool)
            .await?;
            Ok(row.try_get("value")?)
        })
    }

    // ----- tenants and API keys -------------------------------------------------------------

    /// Returns the tenant called `name`, creating it if needed.
    pub async fn ensure_tenant(&self, name: &str, now: i64) -> Result<Tenant, StorageError> {
        let id = uuid::Uuid::now_v7().to_string();
        dispatch!(self.writer(), |pool, Db| {
            sqlx::query(
                "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(&id)
            .bind(name)
            .bind(now)
            .execute(pool)
            .await?;
            let row = sqlx::query("SELECT id, name FROM tenants WHERE name = $1")
                .bind(name)
                .fetch_one(pool)
                .await?;
            Ok(Tenant {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
            })
        })
    }

    /// Stores a new API key (its HMAC only).
    pub async fn insert_api_key(
        &self,
        id: &str,
        tenant_id: &str,
        key_hmac: &[u8],
        now: i64,
    ) -> Result<(), StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            sqlx::query(
                "INSERT INTO api_keys (id, tenant_id, key_hmac, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(tenant_id)
            .bind(key_hmac)
            .bind(now)
            .execute(pool)
            .await
            .map_err(|e| StorageError::from_insert(e, "api key"))?;
        });
        Ok(())
    }

    /// Looks a key up by its HMAC (indexed).
    pub async fn api_key_by_hmac(
        &self,
        key_hmac: &[u8],
    ) -> Result<Option<ApiKeyRow>, StorageError> {
        let sql = concat!(api_key_select!(), " WHERE k.key_hmac = $1");
        fetch_optional!(self.reader(), ApiKeyRow, sql, key_hmac)
    }

    /// Every API key, optionally of one tenant, oldest first.
    pub async fn list_api_keys(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<ApiKeyRow>, StorageError> {
        let sql = concat!(
            api_key_select!(),
            " WHERE ($1 IS NULL OR t.name = $1) ORDER BY k.created_at, k.id"
        );
        fetch_all!(self.reader(), ApiKeyRow, sql, tenant)
    }

    /// Revokes key `id`; returns false when no such unrevoked key exists.
    pub async fn revoke_api_key(&self, id: &str, now: i64) -> Result<bool, StorageError> {
        Ok(execute!(
            self.writer(),
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            id,
            now
        )? == 1)
    }

    // ----- documents ------------------------------------------------------------------------

    /// Inserts document metadata; when the tenant already holds these bytes, returns the
    /// existing document instead (content addressing).
    pub async fn insert_document(&self, doc: &DocumentRow) -> Result<DocumentRow, StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            sqlx::query(
                "INSERT INTO documents (id, tenant_id, sha256, size, media_type, filename, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, sha256) DO NOTHING",
            )
            .bind(&doc.id)
            .bind(&doc.tenant_id)
            .bind(&doc.sha256)
            .bind(doc.size)
            .bind(&doc.media_type)
            .bind(&doc.filename)
            .bind(doc.created_at)
            .execute(pool)
            .await?;
            let row: DocumentRecord = sqlx::query_as(
                "SELECT id, tenant_id, sha256, size, media_type, filename, created_at \
                 FROM documents WHERE tenant_id = $1 AND sha256 = $2",
            )
            .bind(&doc.tenant_id)
            .bind(&doc.sha256)
            .fetch_one(pool)
            .await?;
            Ok(DocumentRow::from(row))
        })
    }

    /// [`Storage::insert_document`] for many documents of one tenant, in one transaction;
    /// returns each one's row (the existing one for bytes the tenant already holds), in order.
    pub async fn insert_documents(
        &self,
        docs: &[DocumentRow],
    ) -> Result<Vec<DocumentRow>, StorageError> {
        let Some(first) = docs.first() else {
            return Ok(Vec::new());
        };
        let tenant_id = &first.tenant_id;
        if docs.iter().any(|d| &d.tenant_id != tenant_id) {
            return Err(StorageError::Corrupt(
                "insert_documents: documents of several tenants".into(),
            ));
        }
        let mut found = std::collections::HashMap::new();
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            for part in docs.chunks(500) {
                let mut query = QueryBuilder::<Db>::new(
                    "INSERT INTO documents (id, tenant_id, sha256, size, media_type, filename, created_at) ",
                );
                query.push_values(part, |mut row, doc| {
                    row.push_bind(&doc.id)
                        .push_bind(&doc.tenant_id)
                        .push_bind(&doc.sha256)
                        .push_bind(doc.size)
                        .push_bind(&doc.media_type)
                        .push_bind(&doc.filename)
                        .push_bind(doc.created_at);
                });
                query.push(" ON CONFLICT (tenant_id, sha256) DO NOTHING");
                query.build().execute(&mut *tx).await?;
                let mut query = QueryBuilder::<Db>::new(
                    "SELECT id, tenant_id, sha256, size, media_type, filename, created_at \
                     FROM documents WHERE tenant_id = ",
                );
                query.push_bind(tenant_id).push(" AND sha256 IN (");
                let mut list = query.separated(", ");
                for doc in part {
                    list.push_bind(&doc.sha256);
                }
                list.push_unseparated(")");
                let rows = query
                    .build_query_as::<DocumentRecord>()
                    .fetch_all(&mut *tx)
                    .await?;
                for doc in rows.into_iter().map(DocumentRow::from) {
                    found.insert(doc.sha256.clone(), doc);
                }
            }
            tx.commit().await?;
        });
        docs.iter()
            .map(|d| {
                found.get(&d.sha256).cloned().ok_or_else(|| {
                    StorageError::Corrupt(format!("document {} not recorded", d.sha256))
                })
            })
            .collect()
    }

    /// The tenant's documents among `ids` (unknown or foreign ids are simply absent).
    pub async fn documents(
        &self,
        tenant_id: &str,
        ids: &[String],
    ) -> Result<Vec<DocumentRow>, StorageError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(self.reader(), |pool, Db| {
            let mut query = QueryBuilder::<Db>::new(
                "SELECT id, tenant_id, sha256, size, media_type, filename, created_at \
                 FROM documents WHERE tenant_id = ",
            );
            query.push_bind(tenant_id).push(" AND id IN (");
            let mut list = query.separated(", ");
            for id in ids {
                list.push_bind(id);
            }
            list.push_unseparated(")");
            let rows = query
                .build_query_as::<DocumentRecord>()
                .fetch_all(pool)
                .await?;
            Ok(rows.into_iter().map(DocumentRow::from).collect())
        })
    }

    /// Documents of a letter, in deposit order.
    pub async fn letter_documents(
        &self,
        letter_id: &str,
    ) -> Result<Vec<DocumentRow>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let rows = sqlx::query_as::<_, DocumentRecord>(
                "SELECT d.id, d.tenant_id, d.sha256, d.size, d.media_type, d.filename, d.created_at \
                 FROM letter_documents ld JOIN documents d ON d.id = ld.document_id \
                 WHERE ld.letter_id = $1 ORDER BY ld.position",
            )
            .bind(letter_id)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::from).collect())
        })
    }

    // ----- letters and evidence -------------------------------------------------------------

    /// Writes deposits — letters, their document links, their deposit evidence — and the
    /// optional idempotency record, all in **one transaction**: either everything is stored or
    /// nothing is. An claim this request no longer holds yields `IdempotencyClaimLost`.
    pub async fn insert_deposits(
        &self,
        deposits: &[NewDeposit],
        idempotency: Option<&IdempotencyRow>,
    ) -> Result<(), StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            // The claim is completed first: a claim lost to a retry fails before any other
            // write, and the whole transaction rolls back.
            if let Some(idem) = idempotency {
                complete_idempotency!(&mut *tx, idem);
            }
            insert_deposit_rows!(tx, Db, deposits, None);
            tx.commit().await?;
            self.throughput
                .evidence(deposits.iter().map(|d| d.evidence.event.as_str()));
            if deposits.iter().any(|d| !d.jobs.is_empty()) {
                self.throughput.jobs_queued();
            }
            Ok(())
        })
    }

    /// The tenant's letter `id`, if any (another tenant's letter is `None`).
    pub async fn letter(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<LetterRow>, StorageError> {
        let sql = concat!(
            "SELECT ",
            letter_columns!(),
            " FROM letters WHERE tenant_id = $1 AND id = $2"
        );
        fetch_optional!(self.reader(), LetterRow, sql, tenant_id, id)
    }

    /// The tenant's letters matching `filter`, ordered by id.
    pub async fn list_letters(
        &self,
        tenant_id: &str,
        filter: &LetterFilter,
    ) -> Result<Vec<LetterRow>, StorageError> {
        let sql = concat!(
            "SELECT ",
            letter_columns!(),
            " FROM letters WHERE tenant_id = $1 \
             AND ($2 IS NULL OR reference = $2) AND ($3 IS NULL OR state = $3) \
             AND ($4 IS NULL OR id > $4) ORDER BY id LIMIT $5"
        );
        fetch_all!(
            self.reader(),
            LetterRow,
            sql,
            tenant_id,
            &filter.reference,
            &filter.state,
            &filter.after_id,
            filter.limit
        )
    }

    /// The evidence of a letter, in sequence order.
    pub async fn evidence_of_letter(
        &self,
        letter_id: &str,
    ) -> Result<Vec<EvidenceRow>, StorageError> {
        let sql = concat!(
            "SELECT ",
            evidence_columns!(),
            " FROM evidence WHERE letter_id = $1 ORDER BY seq"
        );
        dispatch!(self.reader(), |pool, Db| {
            let rows = sqlx::query_as::<_, EvidenceRecord>(sql)
                .bind(letter_id)
                .fetch_all(pool)
                .await?;
            Ok(rows.into_iter().map(EvidenceRow::from).collect())
        })
    }

    /// Stored evidence rows with a sequence number above `after_seq`, in order (for audits and
    /// the later Merkle log).
    pub async fn evidence_after(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<EvidenceRow>, StorageError> {
        let sql = concat!(
            "SELECT ",
            evidence_columns!(),
            " FROM evidence WHERE seq > $1 ORDER BY seq LIMIT $2"
        );
        dispatch!(self.reader(), |pool, Db| {
            let rows = sqlx::query_as::<_, EvidenceRecord>(sql)
                .bind(after_seq)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            Ok(rows.into_iter().map(EvidenceRow::from).collect())
        })
    }
}

pub use crate::config::redact_url;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacting_a_url_hides_its_credentials() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://***@h:5432/db"
        );
        assert_eq!(redact_url("sqlite:/tmp/x.db"), "sqlite:/tmp/x.db");
    }
}

// Capabilities added after the evidence core live in child modules, which share the
// `dispatch!` macro, the `Backend` and the row-mapping conventions of this one.
pub mod archive;
pub mod audit;
mod batches;
mod consents;
mod dialect;
pub mod idempotency;
mod lifecycle;
pub mod log;
pub mod metrics;
mod proofs;
pub mod renewal;
mod templates;
mod webhooks;
pub mod witnesses;

pub use crate::core::records::{DocumentRow, EvidenceRow};
pub use archive::DocumentKeyRow;
pub use batches::{BatchChunk, BatchRecord, NewBatch};
pub use consents::{ConsentFilter, ConsentRow};
pub use lifecycle::{Job, JobMail, LetterUpdate, NewJob, OtpFailure, SessionRow, Transition};
pub use proofs::SignedProofRow;
pub use templates::TemplateRow;
pub use webhooks::{
    AttemptOutcome, ClaimedDelivery, DeliveryAttempt, DeliveryRow, NewDelivery, WebhookRow,
};
