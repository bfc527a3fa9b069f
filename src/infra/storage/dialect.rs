//! The SQL that SQLite and PostgreSQL spell differently, in one place.
//!
//! Everything else is one text for both engines: `$N` placeholders (which the SQLite driver
//! accepts), `ON CONFLICT … DO NOTHING / DO UPDATE` upserts and `RETURNING` (both engines have
//! them), and no casts (integers are `BIGINT` / `INTEGER`, both read as `i64`). What differs:
//!
//! - row claims: PostgreSQL locks the claimed rows with `FOR UPDATE SKIP LOCKED`, so that
//!   several instances claim at once without waiting for each other or taking the same row;
//!   SQLite has no row locks and needs none (its single writer serialises claims);
//! - advisory locks: PostgreSQL serialises the log appender of every instance with a
//!   transaction advisory lock, and document placements with session advisory locks; SQLite
//!   (one process, one writer) takes none;
//! - commit order: SQLite's single writer commits evidence in sequence order, PostgreSQL's
//!   concurrent transactions may commit a lower sequence number later.
//!
//! Each engine's text is an associated constant of [`Dialect`], implemented for the sqlx
//! database types, so that the `Db` type bound by `dispatch!` picks it:
//! `<Db as Dialect>::CLAIM_JOBS`.

/// The engine-specific SQL of one database engine.
pub(crate) trait Dialect: sqlx::Database {
    /// Appended to a claim's `SELECT … FROM webhook_deliveries d …` or `witness_deliveries d`:
    /// skip the rows of `d` another claim has locked (empty on SQLite).
    const SKIP_LOCKED_OF_D: &'static str;

    /// Leases one depositing batch whose lease ended: binds `$1` the new lease end, `$2` now;
    /// returns its `id`.
    const CLAIM_ABANDONED_BATCH: &'static str;

    /// Leases up to `$3` due outbox jobs: binds `$1` the lease end, `$2` now, `$3` the limit;
    /// returns the job columns.
    const CLAIM_JOBS: &'static str;

    /// Taken first in the log appender's transaction, binding `$1` the appender's lock id,
    /// so that one appender runs at a time across instances (`None`: the engine's single
    /// writer already serialises appenders).
    const APPENDER_LOCK: Option<&'static str>;

    /// Whether evidence rows commit in sequence order (so that every row below the highest
    /// logged sequence number is already visible to the appender).
    const COMMITS_IN_SEQUENCE: bool;
}

impl Dialect for sqlx::Sqlite {
    const SKIP_LOCKED_OF_D: &'static str = "";

    const CLAIM_ABANDONED_BATCH: &'static str = "UPDATE batches SET lease_until = $1 WHERE id = \
         (SELECT id FROM batches WHERE state = 'depositing' \
          AND (lease_until IS NULL OR lease_until <= $2) ORDER BY id LIMIT 1) \
         RETURNING id";

    const CLAIM_JOBS: &'static str = "UPDATE outbox SET run_after = $1, attempts = attempts + 1 WHERE id IN \
         (SELECT id FROM outbox WHERE done_at IS NULL AND run_after <= $2 ORDER BY run_after, id LIMIT $3) \
         RETURNING id, kind, letter_id, payload, attempts, created_at";

    const APPENDER_LOCK: Option<&'static str> = None;

    const COMMITS_IN_SEQUENCE: bool = true;
}

impl Dialect for sqlx::Postgres {
    const SKIP_LOCKED_OF_D: &'static str = " FOR UPDATE OF d SKIP LOCKED";

    const CLAIM_ABANDONED_BATCH: &'static str = "UPDATE batches SET lease_until = $1 WHERE id = \
         (SELECT id FROM batches WHERE state = 'depositing' \
          AND (lease_until IS NULL OR lease_until <= $2) ORDER BY id LIMIT 1 \
          FOR UPDATE SKIP LOCKED) RETURNING id";

    const CLAIM_JOBS: &'static str = "UPDATE outbox SET run_after = $1, attempts = attempts + 1 WHERE id IN \
         (SELECT id FROM outbox WHERE done_at IS NULL AND run_after <= $2 ORDER BY run_after, id \
          LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING id, kind, letter_id, payload, attempts, created_at";

    const APPENDER_LOCK: Option<&'static str> = Some("SELECT pg_advisory_xact_lock($1)");

    const COMMITS_IN_SEQUENCE: bool = false;
}

/// PostgreSQL session advisory lock on `$1` (a document placement; SQLite takes none).
pub(crate) const PG_ADVISORY_LOCK: &str = "SELECT pg_advisory_lock($1)";

/// Releases the session advisory lock [`PG_ADVISORY_LOCK`] took on `$1`.
pub(crate) const PG_ADVISORY_UNLOCK: &str = "SELECT pg_advisory_unlock($1)";
