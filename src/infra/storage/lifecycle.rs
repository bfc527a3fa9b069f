//! Storage of the letter lifecycle: state transitions with their evidence (one transaction,
//! guarded by the letter's chain head), the transactional outbox, one-time codes and
//! recipient sessions.

use sqlx::{QueryBuilder, Row};

use super::{LetterRow, NewEvidence, Storage, StorageError};

/// `complete_jobs_in!(tx, Db, completed)`: marks the outbox jobs `(id, done_at)` of
/// `completed` done inside the transaction `tx`, grouped by time, in statements of at most
/// [`super::INSERT_CHUNK`] ids.
macro_rules! complete_jobs_in {
    ($tx:ident, $db:ident, $completed:expr) => {{
        let mut by_time: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
        for (id, at) in $completed {
            by_time.entry(at).or_default().push(id);
        }
        for (at, ids) in by_time {
            for chunk in ids.chunks(super::INSERT_CHUNK) {
                let mut query = QueryBuilder::<$db>::new("UPDATE outbox SET done_at = ");
                query.push_bind(at).push(" WHERE id IN (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                query.push(")");
                query.build().execute(&mut *$tx).await?;
            }
        }
    }};
}

/// Work to do outside the transaction that decided it (send a mail, announce an event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// What to do (`notify`, `remind`, `webhook_event`, …).
    pub kind: String,
    /// The letter concerned.
    pub letter_id: Option<String>,
    /// JSON payload.
    pub payload: String,
    /// Not before this time, Unix µs.
    pub run_after: i64,
}

/// A claimed outbox job.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Job {
    /// Job id.
    pub id: i64,
    /// What to do.
    pub kind: String,
    /// The letter concerned.
    pub letter_id: Option<String>,
    /// JSON payload.
    pub payload: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
    /// When it was written, Unix µs.
    pub created_at: i64,
}

/// A notification message fixed before its first hand-over and kept with its outbox job, so
/// that every attempt sends the same bytes (issue 12 §0).
#[derive(Clone, PartialEq, Eq)]
pub struct JobMail {
    /// Message-ID, without angle brackets.
    pub message_id: String,
    /// When the message was built, Unix µs: its `Date` and the deadline it states follow.
    pub prepared_at: i64,
    /// The exact bytes, as built by lettre.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for JobMail {
    // The bytes hold the recipient link in clear: never in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobMail")
            .field("message_id", &self.message_id)
            .field("prepared_at", &self.prepared_at)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// The purpose a kept message is sealed for (associated data of its AES-256-GCM seal).
const JOB_MAIL_PURPOSE: &str = "notification message";

/// Letter columns a transition may set (absent = unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LetterUpdate {
    /// Notification time.
    pub notified_at: Option<i64>,
    /// End of the acceptance window.
    pub deadline: Option<i64>,
    /// Decision time.
    pub decided_at: Option<i64>,
    /// First content download.
    pub content_handed_over_at: Option<i64>,
    /// Hash of the recipient link token.
    pub recipient_token_sha256: Option<String>,
}

/// A state change of one letter with its evidence.
#[derive(Debug, Clone)]
pub struct Transition {
    /// The letter.
    pub letter_id: String,
    /// States the letter must be in (1 to 3).
    pub from_states: Vec<&'static str>,
    /// State after the transition (may equal the current one, e.g. content handover).
    pub to_state: &'static str,
    /// The chain head the new evidence links to; the transition fails if it moved.
    pub expected_head: String,
    /// The evidence, already sealed and timestamped.
    pub evidence: NewEvidence,
    /// Other letter columns to set.
    pub update: LetterUpdate,
    /// Jobs caused by the transition.
    pub jobs: Vec<NewJob>,
    /// An outbox job this transition completes.
    pub completes_job: Option<i64>,
    /// Time of the write, Unix µs.
    pub now: i64,
}

/// A recipient session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// SHA-256 (hex) of the session token.
    pub token_sha256: String,
    /// The letter it opens.
    pub letter_id: String,
    /// Identification method.
    pub method: String,
    /// Assurance level of that method.
    pub assurance_level: String,
    /// Opening time, Unix µs.
    pub created_at: i64,
    /// Expiry, Unix µs.
    pub expires_at: i64,
}

/// Result of a wrong one-time code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtpFailure {
    /// Consecutive failures after this one (0 once a lock was set).
    pub failures: i64,
    /// Set when this failure locked the letter.
    pub locked_until: Option<i64>,
}

impl Storage {
    /// Letter `id` whatever its tenant (workers and recipient flows).
    pub async fn letter_by_id(&self, id: &str) -> Result<Option<LetterRow>, StorageError> {
        let sql = concat!("SELECT ", letter_columns!(), " FROM letters WHERE id = $1");
        fetch_optional!(self.reader(), LetterRow, sql, id)
    }

    /// Letters `ids` whatever their tenant, in no particular order (ids without a letter
    /// are left out).
    pub async fn letters_by_ids(&self, ids: &[String]) -> Result<Vec<LetterRow>, StorageError> {
        let mut letters = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(super::INSERT_CHUNK) {
            dispatch!(self.reader(), |pool, Db| {
                let mut query = QueryBuilder::<Db>::new(concat!(
                    "SELECT ",
                    letter_columns!(),
                    " FROM letters WHERE id IN ("
                ));
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(id);
                }
                query.push(")");
                let found: Vec<LetterRow> = query.build_query_as().fetch_all(pool).await?;
                letters.extend(found);
                Ok::<_, StorageError>(())
            })?;
        }
        Ok(letters)
    }

    /// The documents of letters `ids`, each letter's in deposit order: letter id → documents.
    pub async fn documents_of_letters(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, Vec<super::DocumentRow>>, StorageError> {
        #[derive(sqlx::FromRow)]
        struct Linked {
            letter_id: String,
            #[sqlx(flatten)]
            document: super::DocumentRecord,
        }
        let mut documents: std::collections::HashMap<String, Vec<super::DocumentRow>> =
            std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(super::INSERT_CHUNK) {
            dispatch!(self.reader(), |pool, Db| {
                let mut query = QueryBuilder::<Db>::new(
                    "SELECT ld.letter_id, d.id, d.tenant_id, d.sha256, d.size, d.media_type, \
                     d.filename, d.created_at \
                     FROM letter_documents ld JOIN documents d ON d.id = ld.document_id \
                     WHERE ld.letter_id IN (",
                );
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(id);
                }
                query.push(") ORDER BY ld.letter_id, ld.position");
                let rows: Vec<Linked> = query.build_query_as().fetch_all(pool).await?;
                for row in rows {
                    documents
                        .entry(row.letter_id)
                        .or_default()
                        .push(row.document.into());
                }
                Ok::<_, StorageError>(())
            })?;
        }
        Ok(documents)
    }

    /// The letter whose recipient token hashes to `token_sha256`.
    pub async fn letter_by_recipient_token(
        &self,
        token_sha256: &str,
    ) -> Result<Option<LetterRow>, StorageError> {
        let sql = concat!(
            "SELECT ",
            letter_columns!(),
            " FROM letters WHERE recipient_token_sha256 = $1"
        );
        fetch_optional!(self.reader(), LetterRow, sql, token_sha256)
    }

    /// Applies `t` in one transaction: the guarded letter update, the evidence, the jobs and
    /// the completion of the job that caused it. Returns false (and writes nothing) when the
    /// letter is not in an allowed state or its chain head moved.
    pub async fn apply_transition(&self, t: &Transition) -> Result<bool, StorageError> {
        Ok(self
            .apply_transitions(std::slice::from_ref(t), &|_| Vec::new())
            .await?
            .first()
            .copied()
            .unwrap_or(false))
    }

    /// Applies many transitions in **one** transaction (a chunk of notifications): each is
    /// guarded as in [`Storage::apply_transition`], and one whose letter moved writes nothing
    /// of its own (not even the completion of its job) while the others are applied. Returns,
    /// in order, whether each was applied. `announce` is given the transitions applied and
    /// returns the jobs they cause together (one webhook job for all their events), written
    /// in the same transaction.
    pub async fn apply_transitions(
        &self,
        ts: &[Transition],
        announce: &(dyn Fn(&[&Transition]) -> Vec<NewJob> + Sync),
    ) -> Result<Vec<bool>, StorageError> {
        if ts.is_empty() {
            return Ok(Vec::new());
        }
        let applied = dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            let mut applied = Vec::with_capacity(ts.len());
            for t in ts {
                let states: Vec<&str> = (0..3)
                    .map(|i| {
                        t.from_states
                            .get(i)
                            .or(t.from_states.first())
                            .copied()
                            .unwrap_or("")
                    })
                    .collect();
                let updated = sqlx::query(
                    "UPDATE letters SET state = $1, last_evidence_sha256 = $2, updated_at = $3, \
                     notified_at = COALESCE($4, notified_at), deadline = COALESCE($5, deadline), \
                     decided_at = COALESCE($6, decided_at), \
                     content_handed_over_at = COALESCE($7, content_handed_over_at), \
                     recipient_token_sha256 = COALESCE($8, recipient_token_sha256) \
                     WHERE id = $9 AND last_evidence_sha256 = $10 AND state IN ($11, $12, $13)",
                )
                .bind(t.to_state)
                .bind(&t.evidence.record_sha256)
                .bind(t.now)
                .bind(t.update.notified_at)
                .bind(t.update.deadline)
                .bind(t.update.decided_at)
                .bind(t.update.content_handed_over_at)
                .bind(&t.update.recipient_token_sha256)
                .bind(&t.letter_id)
                .bind(&t.expected_head)
                .bind(states[0])
                .bind(states[1])
                .bind(states[2])
                .execute(&mut *tx)
                .await?;
                applied.push(updated.rows_affected() == 1);
            }
            let done: Vec<&Transition> = ts
                .iter()
                .zip(&applied)
                .filter_map(|(t, ok)| ok.then_some(t))
                .collect();
            for chunk in done.chunks(super::INSERT_CHUNK) {
                insert_evidence_rows!(tx, Db, chunk.iter().map(|t| &t.evidence));
            }
            let together = if done.is_empty() {
                Vec::new()
            } else {
                announce(&done)
            };
            let mut jobs: Vec<(&NewJob, i64)> = done
                .iter()
                .flat_map(|t| t.jobs.iter().map(|j| (j, t.now)))
                .collect();
            jobs.extend(together.iter().map(|j| (j, j.run_after)));
            for chunk in jobs.chunks(super::INSERT_CHUNK) {
                let mut query = QueryBuilder::<Db>::new(
                    "INSERT INTO outbox (kind, letter_id, payload, run_after, created_at) ",
                );
                query.push_values(chunk, |mut b, (j, now)| {
                    b.push_bind(&j.kind)
                        .push_bind(&j.letter_id)
                        .push_bind(&j.payload)
                        .push_bind(j.run_after)
                        .push_bind(*now);
                });
                query.build().execute(&mut *tx).await?;
            }
            let completed: Vec<(i64, i64)> = done
                .iter()
                .filter_map(|t| t.completes_job.map(|job| (job, t.now)))
                .collect();
            complete_jobs_in!(tx, Db, completed);
            tx.commit().await?;
            if !jobs.is_empty() {
                self.throughput.jobs_queued();
            }
            Ok::<_, StorageError>(applied)
        })?;
        self.throughput.evidence(
            ts.iter()
                .zip(&applied)
                .filter(|(_, ok)| **ok)
                .map(|(t, _)| t.evidence.event.as_str()),
        );
        Ok(applied)
    }

    /// Enqueues jobs outside any transition (e.g. a resent notification).
    pub async fn enqueue_jobs(&self, jobs: &[NewJob], now: i64) -> Result<(), StorageError> {
        if jobs.is_empty() {
            return Ok(());
        }
        dispatch!(self.writer(), |pool, Db| {
            let mut query = QueryBuilder::<Db>::new(
                "INSERT INTO outbox (kind, letter_id, payload, run_after, created_at) ",
            );
            query.push_values(jobs, |mut b, j| {
                b.push_bind(&j.kind)
                    .push_bind(&j.letter_id)
                    .push_bind(&j.payload)
                    .push_bind(j.run_after)
                    .push_bind(now);
            });
            query.build().execute(pool).await?;
            self.throughput.jobs_queued();
            Ok(())
        })
    }

    /// Claims up to `limit` due jobs by pushing their `run_after` one lease ahead, so a
    /// worker that dies releases them when the lease ends (at-least-once delivery). On
    /// PostgreSQL, `FOR UPDATE SKIP LOCKED` lets several instances claim without blocking or
    /// taking the same job; on SQLite the single writer serialises claims.
    pub async fn claim_jobs(
        &self,
        now: i64,
        lease_micros: i64,
        limit: i64,
    ) -> Result<Vec<Job>, StorageError> {
        let until = now + lease_micros;
        dispatch!(self.writer(), |pool, Db| {
            let jobs: Vec<Job> = sqlx::query_as(<Db as super::dialect::Dialect>::CLAIM_JOBS)
                .bind(until)
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            Ok(jobs)
        })
    }

    /// Gives back claims a stopping worker still holds: each job `(id, lease_until, started)`
    /// still leased by that claim is due again at `now`, so that a restarted service sends
    /// it at once instead of when the lease ends. A job whose run never started gets its
    /// claim's attempt back. A job completed or rescheduled since (its `run_after` is no
    /// longer the lease) is left alone. Returns how many were released.
    pub async fn release_jobs(
        &self,
        claims: &[(i64, i64, bool)],
        now: i64,
    ) -> Result<u64, StorageError> {
        let mut released = 0;
        dispatch!(self.writer(), |pool, Db| {
            for (id, lease_until, started) in claims {
                let done = sqlx::query(
                    "UPDATE outbox SET run_after = $1, attempts = attempts - $2 \
                     WHERE id = $3 AND run_after = $4 AND done_at IS NULL",
                )
                .bind(now)
                .bind(if *started { 0i64 } else { 1i64 })
                .bind(id)
                .bind(lease_until)
                .execute(pool)
                .await?;
                released += done.rows_affected();
            }
            Ok(released)
        })
    }

    /// Replaces job `id` by `jobs` in one transaction: they are queued and it is marked done.
    pub async fn replace_job(
        &self,
        id: i64,
        jobs: &[NewJob],
        now: i64,
    ) -> Result<(), StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            let done =
                sqlx::query("UPDATE outbox SET done_at = $2 WHERE id = $1 AND done_at IS NULL")
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            if done.rows_affected() != 1 {
                // Already replaced by another worker.
                tx.rollback().await?;
                return Ok(());
            }
            for jobs in jobs.chunks(super::INSERT_CHUNK) {
                let mut query = QueryBuilder::<Db>::new(
                    "INSERT INTO outbox (kind, letter_id, payload, run_after, created_at) ",
                );
                query.push_values(jobs, |mut b, j| {
                    b.push_bind(&j.kind)
                        .push_bind(&j.letter_id)
                        .push_bind(&j.payload)
                        .push_bind(j.run_after)
                        .push_bind(now);
                });
                query.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            self.throughput.jobs_queued();
            Ok(())
        })
    }

    /// Marks a job done.
    pub async fn complete_job(&self, id: i64, now: i64) -> Result<(), StorageError> {
        execute!(
            self.writer(),
            "UPDATE outbox SET done_at = $2 WHERE id = $1",
            id,
            now
        )
        .map(|_| ())
    }

    /// Marks jobs done, in one statement per [`super::INSERT_CHUNK`] jobs.
    pub async fn complete_jobs(&self, ids: &[i64], now: i64) -> Result<(), StorageError> {
        if ids.is_empty() {
            return Ok(());
        }
        let completed: Vec<(i64, i64)> = ids.iter().map(|id| (*id, now)).collect();
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            complete_jobs_in!(tx, Db, completed);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Schedules another attempt of a job.
    pub async fn retry_job(
        &self,
        id: i64,
        run_after: i64,
        error: &str,
    ) -> Result<(), StorageError> {
        execute!(
            self.writer(),
            "UPDATE outbox SET run_after = $2, last_error = $3 WHERE id = $1",
            id,
            run_after,
            error
        )
        .map(|_| ())
    }

    /// The message kept with job `id`, opened (see [`Storage::job_mails`]).
    pub async fn job_mail(&self, id: i64) -> Result<Option<JobMail>, StorageError> {
        Ok(self.job_mails(&[id]).await?.remove(&id))
    }

    /// Keeps `mail` with job `id` under the rule of [`Storage::keep_job_mails`].
    pub async fn keep_job_mail(
        &self,
        id: i64,
        attempt: i64,
        mail: &JobMail,
    ) -> Result<bool, StorageError> {
        Ok(self
            .keep_job_mails(&[(id, attempt, mail)])
            .await?
            .first()
            .copied()
            .unwrap_or(false))
    }

    /// The messages kept with jobs `ids` by [`Storage::keep_job_mails`], opened: job id →
    /// message (jobs keeping none are absent).
    pub async fn job_mails(
        &self,
        ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, JobMail>, StorageError> {
        type Kept = (
            i64,
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<Vec<u8>>,
        );
        let mut rows: Vec<Kept> = Vec::new();
        for chunk in ids.chunks(super::INSERT_CHUNK) {
            dispatch!(self.reader(), |pool, Db| {
                let mut query = QueryBuilder::<Db>::new(
                    "SELECT id, mail_message_id, mail_prepared_at, mail_key_id, mail_sealed FROM outbox \
                     WHERE mail_sealed IS NOT NULL AND id IN (",
                );
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                query.push(")");
                let found: Vec<Kept> = query.build_query_as().fetch_all(pool).await?;
                rows.extend(found);
                Ok::<_, StorageError>(())
            })?;
        }
        let keys = if rows.is_empty() {
            None
        } else {
            Some(self.secret_keys()?)
        };
        let mut mails = std::collections::HashMap::with_capacity(rows.len());
        for (id, message_id, prepared_at, key_id, sealed) in rows {
            let (Some(message_id), Some(prepared_at), Some(key_id), Some(sealed), Some(keys)) =
                (message_id, prepared_at, key_id, sealed, keys)
            else {
                return Err(StorageError::Corrupt(format!(
                    "outbox job {id} keeps part of a message"
                )));
            };
            let bytes = keys.open_secret(&key_id, JOB_MAIL_PURPOSE, &id.to_string(), &sealed)?;
            mails.insert(
                id,
                JobMail {
                    message_id,
                    prepared_at,
                    bytes,
                },
            );
        }
        Ok(mails)
    }

    /// Keeps each `(job id, attempt, mail)`, sealed under the active master key, before it
    /// is handed over for the first time, all in one transaction committed before the sends.
    /// Only the worker holding the claim numbered `attempt` may keep a job's mail, and only
    /// once: the answer for a job is false when it was claimed again meanwhile, is done, or
    /// already keeps a message (then this worker must not send it: the holder of the newer
    /// claim sends the kept one).
    pub async fn keep_job_mails(
        &self,
        mails: &[(i64, i64, &JobMail)],
    ) -> Result<Vec<bool>, StorageError> {
        if mails.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.secret_keys()?;
        let mut sealed = Vec::with_capacity(mails.len());
        for (id, _, mail) in mails {
            sealed.push(keys.seal_secret(JOB_MAIL_PURPOSE, &id.to_string(), &mail.bytes)?);
        }
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            let mut kept = Vec::with_capacity(mails.len());
            for ((id, attempt, mail), (key_id, sealed)) in mails.iter().zip(&sealed) {
                let done = sqlx::query(
                    "UPDATE outbox SET mail_message_id = $3, mail_prepared_at = $4, \
                     mail_key_id = $5, mail_sealed = $6 \
                     WHERE id = $1 AND attempts = $2 AND done_at IS NULL AND mail_sealed IS NULL",
                )
                .bind(id)
                .bind(attempt)
                .bind(&mail.message_id)
                .bind(mail.prepared_at)
                .bind(key_id)
                .bind(sealed)
                .execute(&mut *tx)
                .await?;
                kept.push(done.rows_affected() == 1);
            }
            tx.commit().await?;
            Ok(kept)
        })
    }

    /// Re-seals the messages kept by unfinished jobs under the active master key (`recommande
    /// archive rewrap`), so that an older key can be removed while a notification still
    /// waits for its retry; the bytes are unchanged. Returns how many were re-sealed.
    pub async fn reseal_job_mails(
        &self,
        keys: &crate::infra::keys::Keyring,
    ) -> Result<u64, StorageError> {
        let active = keys.active_id().to_string();
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            let rows = sqlx::query(
                "SELECT id, mail_key_id, mail_sealed FROM outbox \
                 WHERE done_at IS NULL AND mail_sealed IS NOT NULL AND mail_key_id <> $1",
            )
            .bind(&active)
            .fetch_all(&mut *tx)
            .await?;
            let mut resealed = 0;
            for row in rows {
                let id: i64 = row.try_get("id")?;
                let key_id: String = row.try_get("mail_key_id")?;
                let sealed: Vec<u8> = row.try_get("mail_sealed")?;
                let name = id.to_string();
                let plain = keys.open_secret(&key_id, JOB_MAIL_PURPOSE, &name, &sealed)?;
                let (new_id, new_sealed) = keys.seal_secret(JOB_MAIL_PURPOSE, &name, &plain)?;
                resealed += sqlx::query(
                    "UPDATE outbox SET mail_key_id = $1, mail_sealed = $2 \
                     WHERE id = $3 AND mail_key_id = $4",
                )
                .bind(&new_id)
                .bind(&new_sealed)
                .bind(id)
                .bind(&key_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            tx.commit().await?;
            Ok(resealed)
        })
    }

    /// Schedules another attempt of a job and forgets the message it kept: for a message
    /// the relay surely did not take (a 4xx reply), so that no copy of it can exist and the
    /// next attempt may build a new one.
    pub async fn retry_job_without_mail(
        &self,
        id: i64,
        run_after: i64,
        error: &str,
    ) -> Result<(), StorageError> {
        execute!(
            self.writer(),
            "UPDATE outbox SET run_after = $2, last_error = $3, mail_message_id = NULL, \
                 mail_prepared_at = NULL, mail_key_id = NULL, mail_sealed = NULL WHERE id = $1",
            id,
            run_after,
            error
        )
        .map(|_| ())
    }

    /// Jobs not done yet for a letter (tests and diagnostics).
    pub async fn pending_jobs(&self, letter_id: &str) -> Result<Vec<Job>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let jobs: Vec<Job> = sqlx::query_as(
                "SELECT id, kind, letter_id, payload, attempts, created_at FROM outbox \
                 WHERE letter_id = $1 AND done_at IS NULL ORDER BY id",
            )
            .bind(letter_id)
            .fetch_all(pool)
            .await?;
            Ok(jobs)
        })
    }

    /// Ids of notified letters whose window ended at or before `now`, oldest deadline first.
    pub async fn letters_past_deadline(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<String>, StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let rows = sqlx::query(
                "SELECT id FROM letters WHERE state = 'notified' AND deadline <= $1 ORDER BY deadline LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(|row| Ok(row.try_get("id")?)).collect()
        })
    }

    // ----- one-time codes and sessions ------------------------------------------------------

    /// Stores a one-time code (its HMAC).
    pub async fn insert_otp(
        &self,
        id: &str,
        letter_id: &str,
        code_hmac: &str,
        created_at: i64,
        expires_at: i64,
    ) -> Result<(), StorageError> {
        execute!(self.writer(), "INSERT INTO otp_codes (id, letter_id, code_hmac, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)", id, letter_id, code_hmac, created_at, expires_at).map(|_| ())
    }

    /// How many codes were issued for a letter since `since`.
    pub async fn otp_count_since(&self, letter_id: &str, since: i64) -> Result<i64, StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n FROM otp_codes WHERE letter_id = $1 AND created_at >= $2",
            )
            .bind(letter_id)
            .bind(since)
            .fetch_one(pool)
            .await?;
            Ok(row.try_get("n")?)
        })
    }

    /// Unused, unexpired codes of a letter, newest first: (id, HMAC).
    pub async fn valid_otps(
        &self,
        letter_id: &str,
        now: i64,
    ) -> Result<Vec<(String, String)>, StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let rows = sqlx::query(
                "SELECT id, code_hmac FROM otp_codes WHERE letter_id = $1 AND used_at IS NULL AND expires_at > $2 \
                 ORDER BY created_at DESC",
            )
            .bind(letter_id)
            .bind(now)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|row| Ok((row.try_get("id")?, row.try_get("code_hmac")?)))
                .collect()
        })
    }

    /// The letter's OTP lock, if one is in force at `now`.
    pub async fn otp_lock(&self, letter_id: &str, now: i64) -> Result<Option<i64>, StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let row = sqlx::query("SELECT otp_locked_until FROM letters WHERE id = $1")
                .bind(letter_id)
                .fetch_optional(pool)
                .await?;
            let until: Option<i64> = match row {
                Some(row) => row.try_get("otp_locked_until")?,
                None => None,
            };
            Ok(until.filter(|u| *u > now))
        })
    }

    /// Counts a wrong code; the `max_failures`-th consecutive one locks the letter until
    /// `lock_until` and resets the count.
    pub async fn record_otp_failure(
        &self,
        letter_id: &str,
        max_failures: i64,
        lock_until: i64,
    ) -> Result<OtpFailure, StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            let row = sqlx::query(
                "UPDATE letters SET otp_failures = otp_failures + 1 WHERE id = $1 RETURNING otp_failures",
            )
            .bind(letter_id)
            .fetch_one(&mut *tx)
            .await?;
            let failures: i64 = row.try_get("otp_failures")?;
            let result = if failures >= max_failures {
                sqlx::query(
                    "UPDATE letters SET otp_failures = 0, otp_locked_until = $2 WHERE id = $1",
                )
                .bind(letter_id)
                .bind(lock_until)
                .execute(&mut *tx)
                .await?;
                // Codes issued before the lock die with it.
                sqlx::query(
                    "UPDATE otp_codes SET used_at = $2 WHERE letter_id = $1 AND used_at IS NULL",
                )
                .bind(letter_id)
                .bind(lock_until)
                .execute(&mut *tx)
                .await?;
                OtpFailure {
                    failures: 0,
                    locked_until: Some(lock_until),
                }
            } else {
                OtpFailure {
                    failures,
                    locked_until: None,
                }
            };
            tx.commit().await?;
            Ok(result)
        })
    }

    /// Uses code `otp_id` (once) and opens `session`; false when the code was used meanwhile.
    pub async fn open_session(
        &self,
        otp_id: &str,
        session: &SessionRow,
    ) -> Result<bool, StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            let used =
                sqlx::query("UPDATE otp_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
                    .bind(otp_id)
                    .bind(session.created_at)
                    .execute(&mut *tx)
                    .await?;
            if used.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query("UPDATE letters SET otp_failures = 0 WHERE id = $1")
                .bind(&session.letter_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO recipient_sessions (token_sha256, letter_id, method, assurance_level, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&session.token_sha256)
            .bind(&session.letter_id)
            .bind(&session.method)
            .bind(&session.assurance_level)
            .bind(session.created_at)
            .bind(session.expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// The unexpired session whose token hashes to `token_sha256`.
    pub async fn session(
        &self,
        token_sha256: &str,
        now: i64,
    ) -> Result<Option<SessionRow>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let row = sqlx::query(
                "SELECT token_sha256, letter_id, method, assurance_level, created_at, expires_at \
                 FROM recipient_sessions WHERE token_sha256 = $1 AND expires_at > $2",
            )
            .bind(token_sha256)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(Some(SessionRow {
                    token_sha256: row.try_get("token_sha256")?,
                    letter_id: row.try_get("letter_id")?,
                    method: row.try_get("method")?,
                    assurance_level: row.try_get("assurance_level")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                })),
                None => Ok(None),
            }
        })
    }
}

impl Storage {
    /// The seal kept for a bundle manifest, creating it with `seal` on first use (concurrent
    /// first uses agree on one).
    pub async fn bundle_seal(
        &self,
        letter_id: &str,
        manifest_sha256: &str,
        now: i64,
        seal: Vec<u8>,
    ) -> Result<Vec<u8>, StorageError> {
        dispatch!(self.writer(), |pool, Db| {
            sqlx::query(
                "INSERT INTO bundle_seals (letter_id, asic_manifest_sha256, seal, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (letter_id, asic_manifest_sha256) DO NOTHING",
            )
            .bind(letter_id)
            .bind(manifest_sha256)
            .bind(&seal)
            .bind(now)
            .execute(pool)
            .await?;
            let row = sqlx::query(
                "SELECT seal FROM bundle_seals WHERE letter_id = $1 AND asic_manifest_sha256 = $2",
            )
            .bind(letter_id)
            .bind(manifest_sha256)
            .fetch_one(pool)
            .await?;
            Ok(row.try_get("seal")?)
        })
    }

    /// Whether a seal is already kept for this manifest (so none needs to be made).
    pub async fn existing_bundle_seal(
        &self,
        letter_id: &str,
        manifest_sha256: &str,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        dispatch!(self.reader(), |pool, Db| {
            let row = sqlx::query(
                "SELECT seal FROM bundle_seals WHERE letter_id = $1 AND asic_manifest_sha256 = $2",
            )
            .bind(letter_id)
            .bind(manifest_sha256)
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(Some(row.try_get("seal")?)),
                None => Ok(None),
            }
        })
    }
}
