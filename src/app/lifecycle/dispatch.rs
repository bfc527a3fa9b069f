//! Notifications in chunks: the proofs of dispatch of a whole batch within seconds.
//!
//! The outbox worker takes the notification jobs it claimed together, up to `[workers]
//! dispatch_chunk` at a time, through four steps: the letters and the messages kept by
//! earlier attempts are read in a few statements; the missing messages are built (and
//! DKIM-signed) on worker threads and kept, all in one transaction, before any is handed
//! over; the messages are handed over, as many at once as the relay has connections; the
//! `NotificationForAcceptance` records of the messages taken are sealed and timestamped on
//! worker threads and committed, with the letters' transitions, their reminders and one
//! webhook job per tenant, in one transaction — once every outcome is known, or earlier
//! for those known when the outcomes stall (a relay slow to answer one message holds back
//! no other letter's proof).
//!
//! Each letter keeps the guarantees of a notification sent alone: its message is kept
//! before its first hand-over and resent byte for byte after a crash (issue 12 §0), its
//! transition is guarded by its chain head, a failed hand-over takes the per-letter path
//! (retry later or `NotificationForAcceptanceFailure`), and a letter that moved meanwhile
//! writes nothing.

use std::collections::HashMap;

use super::notify::FailureDetail;
use super::*;
use crate::infra::mail::{Handover, SentMail};

/// How long the hand-overs of a chunk may give no outcome before those already known are
/// recorded.
const HANDOVER_STALL: std::time::Duration = std::time::Duration::from_millis(250);

/// A notification on its way.
struct Pending {
    job: Job,
    letter: LetterRow,
    recipient: Recipient,
    to: lettre::Address,
    envelope_from: lettre::Address,
    /// The message, once read from the job or built and kept.
    mail: Option<JobMail>,
}

impl Lifecycle {
    /// Runs claimed `notify` jobs in chunks of `[workers] dispatch_chunk`,
    /// [`DISPATCH_CONCURRENCY`] chunks at once.
    pub(super) async fn notify_all(&self, jobs: Vec<Job>) {
        use futures_util::StreamExt;
        let mut chunks = Vec::new();
        let mut rest = jobs;
        while !rest.is_empty() {
            let tail = rest.split_off(self.dispatch_chunk.min(rest.len()));
            chunks.push(std::mem::replace(&mut rest, tail));
        }
        futures_util::stream::iter(chunks)
            .for_each_concurrent(DISPATCH_CONCURRENCY, |chunk| async move {
                if self.stopping() {
                    // Stopping: a chunk not started stays held, unstarted, and is given back
                    // with its attempts.
                    return;
                }
                let ids: Vec<i64> = chunk.iter().map(|j| j.id).collect();
                {
                    let mut held = self.claims.held();
                    for id in &ids {
                        if let Some(claim) = held.get_mut(id) {
                            claim.1 = true;
                        }
                    }
                }
                if let Err(e) = self.notify_chunk(chunk).await {
                    // The leases make the jobs due again; the next pass retries them.
                    tracing::error!(jobs = ids.len(), error = %e, "notification chunk failed; it will be retried");
                }
                self.claims.held().retain(|id, _| !ids.contains(id));
            })
            .await;
    }

    async fn notify_chunk(&self, jobs: Vec<Job>) -> Result<(), LifecycleError> {
        use futures_util::StreamExt;
        let pending = self.pending_notifications(jobs).await?;
        let pending = self.kept_mails(pending).await?;
        let handed: Vec<&Pending> = pending.iter().filter(|p| p.mail.is_some()).collect();
        let handovers: Vec<Handover<'_>> = handed
            .iter()
            .filter_map(|p| {
                let mail = p.mail.as_ref()?;
                Some((
                    &p.envelope_from,
                    &p.to,
                    mail.message_id.as_str(),
                    mail.bytes.as_slice(),
                ))
            })
            .collect();
        // Step 3, with step 4 whenever the outcomes stall: the messages the relay already
        // took are recorded while a slow one is still in flight, so that a relay holding one
        // message back (or a stop cutting it) holds back no other letter's proof.
        let mut outcomes = std::pin::pin!(self.mailer.send_many(&handovers));
        let mut known = Vec::new();
        loop {
            match tokio::time::timeout(HANDOVER_STALL, outcomes.next()).await {
                Ok(Some((i, outcome))) => known.push((handed[i], outcome)),
                Ok(None) => break,
                Err(_) if !known.is_empty() => {
                    self.record_notifications(std::mem::take(&mut known))
                        .await?;
                }
                Err(_) => {}
            }
        }
        self.record_notifications(known).await
    }

    /// Step 1: the letters of `jobs` and the messages their earlier attempts kept. Jobs
    /// with nothing to send (the letter is gone or no longer `deposited`) are completed; a
    /// letter whose stored parties are unreadable is logged and left to its lease.
    async fn pending_notifications(&self, jobs: Vec<Job>) -> Result<Vec<Pending>, LifecycleError> {
        let letter_ids: Vec<String> = jobs.iter().filter_map(|j| j.letter_id.clone()).collect();
        let mut letters: HashMap<String, LetterRow> = self
            .storage
            .letters_by_ids(&letter_ids)
            .await?
            .into_iter()
            .map(|l| (l.id.clone(), l))
            .collect();
        let job_ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
        let mut kept = self.storage.job_mails(&job_ids).await?;
        let mut nothing_to_do = Vec::new();
        let mut pending = Vec::with_capacity(jobs.len());
        for job in jobs {
            let letter = job.letter_id.as_ref().and_then(|id| letters.remove(id));
            let Some(letter) = letter.filter(|l| l.state == LetterState::Deposited.as_str()) else {
                nothing_to_do.push(job.id);
                continue;
            };
            let addresses = parse_recipient(&letter).and_then(|recipient| {
                let to = mailbox(&recipient)?.email;
                Ok((recipient, to, self.bounce_address(&letter.id)?))
            });
            match addresses {
                Ok((recipient, to, envelope_from)) => pending.push(Pending {
                    mail: kept.remove(&job.id),
                    job,
                    letter,
                    recipient,
                    to,
                    envelope_from,
                }),
                Err(e) => {
                    tracing::error!(job.id = job.id, letter.id = %letter.id, error = %e, "job failed; it will be retried")
                }
            }
        }
        self.storage
            .complete_jobs(&nothing_to_do, unix_micros(self.clock.now()))
            .await?;
        Ok(pending)
    }

    /// Step 2: builds the messages not kept yet, on worker threads, and keeps them all in
    /// one transaction before any is handed over. A message that cannot be built records
    /// the failure; one whose job was claimed again meanwhile is left to that claim.
    async fn kept_mails(&self, pending: Vec<Pending>) -> Result<Vec<Pending>, LifecycleError> {
        let now = self.clock.now();
        let window = acceptance_window(now)?;
        let (ready, mut unbuilt): (Vec<Pending>, Vec<Pending>) =
            pending.into_iter().partition(|p| p.mail.is_some());
        if unbuilt.is_empty() {
            return Ok(ready);
        }
        let threads = self.threads.clamp(1, unbuilt.len());
        let size = unbuilt.len().div_ceil(threads);
        let mut tasks = Vec::with_capacity(threads);
        while !unbuilt.is_empty() {
            let tail = unbuilt.split_off(size.min(unbuilt.len()));
            let part = std::mem::replace(&mut unbuilt, tail);
            let this = self.clone();
            tasks.push(tokio::task::spawn_blocking(move || {
                part.into_iter()
                    .map(|p| {
                        let built = this
                            .notification_mail(
                                &p.letter,
                                &p.recipient,
                                window.deadline,
                                None,
                                p.job.attempts,
                            )
                            .and_then(|mail| {
                                let bytes = this.mailer.build(&mail, Vec::new())?;
                                Ok(JobMail {
                                    message_id: mail.message_id,
                                    prepared_at: unix_micros(now),
                                    bytes,
                                })
                            });
                        (p, built)
                    })
                    .collect::<Vec<_>>()
            }));
        }
        let mut built = Vec::new();
        for task in tasks {
            let part = task.await.map_err(|e| {
                LifecycleError::Mail(MailError::Invalid(format!("mail builder stopped: {e}")))
            })?;
            for (p, mail) in part {
                match mail {
                    Ok(mail) => built.push((p, mail)),
                    Err(e) => {
                        self.notification_failed(
                            &p.letter,
                            "message",
                            &e.to_string(),
                            FailureDetail::None,
                            Some(p.job.id),
                        )
                        .await?;
                    }
                }
            }
        }
        let keep: Vec<(i64, i64, &JobMail)> = built
            .iter()
            .map(|(p, mail)| (p.job.id, p.job.attempts, mail))
            .collect();
        let kept = self.storage.keep_job_mails(&keep).await?;
        let mut out = ready;
        for ((mut p, mail), kept) in built.into_iter().zip(kept) {
            if kept {
                p.mail = Some(mail);
                out.push(p);
            } else {
                // Claimed again meanwhile (this claim's lease ran out): the newer claim
                // sends, never two different messages.
                tracing::warn!(letter.id = %p.letter.id, job.id = p.job.id, "notification claimed by another worker");
            }
        }
        Ok(out)
    }

    /// Step 4: the evidence of the messages the relay took, sealed on worker threads and
    /// committed with the transitions in one transaction; the others take the per-letter
    /// path (another attempt later, or the failure recorded).
    async fn record_notifications(
        &self,
        outcomes: Vec<(&Pending, Result<SentMail, MailError>)>,
    ) -> Result<(), LifecycleError> {
        let now = self.clock.now();
        let mut sent = Vec::with_capacity(outcomes.len());
        for (p, outcome) in outcomes {
            match outcome {
                Ok(handed) => sent.push((p, handed)),
                Err(error) => self.not_handed_over(p, error, now).await?,
            }
        }
        if sent.is_empty() {
            return Ok(());
        }
        let letter_ids: Vec<String> = sent.iter().map(|(p, _)| p.letter.id.clone()).collect();
        let documents = self.storage.documents_of_letters(&letter_ids).await?;
        let mut records = Vec::with_capacity(sent.len());
        let mut transitions = Vec::with_capacity(sent.len());
        for (p, handed) in &sent {
            let (record, transition) =
                self.notified(p, handed, documents.get(&p.letter.id), now)?;
            records.push(record);
            transitions.push(transition);
        }
        let sealed = self.sealer.seal_many(records, now, self.threads).await?;
        for (t, sealed) in transitions.iter_mut().zip(&sealed) {
            t.evidence = new_evidence(
                &t.letter_id,
                EvidenceEvent::NotificationForAcceptance,
                sealed,
                now,
            );
        }
        let tenants: HashMap<&str, &str> = sent
            .iter()
            .map(|(p, _)| (p.letter.id.as_str(), p.letter.tenant_id.as_str()))
            .collect();
        let applied = self
            .storage
            .apply_transitions(&transitions, &|done| {
                announce_together(
                    done,
                    &tenants,
                    EvidenceEvent::NotificationForAcceptance,
                    now,
                )
            })
            .await?;
        let moved: Vec<i64> = sent
            .iter()
            .zip(&applied)
            .filter_map(|((p, _), ok)| (!ok).then_some(p.job.id))
            .collect();
        self.storage
            .complete_jobs(&moved, unix_micros(self.clock.now()))
            .await?;
        tracing::info!(
            notified = applied.iter().filter(|ok| **ok).count(),
            moved = moved.len(),
            "notifications handed to the relay"
        );
        Ok(())
    }

    /// A hand-over that failed: another attempt later while attempts are left and the
    /// failure may pass, else the failure recorded with the message offered.
    async fn not_handed_over(
        &self,
        p: &Pending,
        error: MailError,
        now: OffsetDateTime,
    ) -> Result<(), LifecycleError> {
        let Some(kept) = &p.mail else {
            return Ok(());
        };
        if matches!(error, MailError::Transient(_) | MailError::Deferred(_))
            && p.job.attempts < NOTIFY_MAX_ATTEMPTS
        {
            return self.notify_later(&p.job, &p.letter, &error, now).await;
        }
        let (source, reason) = match &error {
            MailError::Transient(r) | MailError::Deferred(r) => (
                "retries-exhausted",
                format!("gave up after {} attempts: {r}", p.job.attempts),
            ),
            MailError::Permanent(r) => ("smtp", r.clone()),
            MailError::Invalid(r) => ("message", r.clone()),
        };
        self.notification_failed(
            &p.letter,
            source,
            &reason,
            FailureDetail::Offered(kept),
            Some(p.job.id),
        )
        .await?;
        Ok(())
    }

    /// The record and the transition of one notification the relay took: the letter
    /// notified with its deadline (counted from when its message was built, as the message
    /// says), its reminders scheduled. The transition's evidence is filled in once sealed.
    fn notified(
        &self,
        p: &Pending,
        sent: &SentMail,
        documents: Option<&Vec<DocumentRow>>,
        now: OffsetDateTime,
    ) -> Result<(EvidenceRecord, Transition), LifecycleError> {
        let Some(head) = p.letter.last_evidence_sha256.clone() else {
            return Err(LifecycleError::Corrupt(p.letter.id.clone()));
        };
        let kept = p
            .mail
            .as_ref()
            .ok_or_else(|| LifecycleError::Corrupt(p.letter.id.clone()))?;
        let built_at = from_unix_micros(kept.prepared_at);
        let window = acceptance_window(built_at)?;
        let mut details = Map::new();
        details.insert(
            "notification".into(),
            json!({
                "message_id": sent.message_id,
                "message_sha256": hex::encode(sent.message_sha256),
                "relay_reply": sent.relay_reply,
                "transport": sent.transport,
                "attempt": p.job.attempts,
                "handed_over_from": rfc3339_micros(built_at),
            }),
        );
        details.insert(
            "deadline".into(),
            Value::String(rfc3339_micros(window.deadline)),
        );
        details.insert("deadline_rule".into(), Value::String(window.rule.clone()));
        let record = self.record(
            &p.letter,
            documents.map_or(&[][..], Vec::as_slice),
            EvidenceEvent::NotificationForAcceptance,
            now,
            details,
            None,
            &head,
        )?;
        let reminders = self
            .reminder_days
            .iter()
            .filter(|d| **d > 0 && **d < crate::domain::window::WINDOW_DAYS)
            .map(|day| NewJob {
                kind: job::REMIND.into(),
                letter_id: Some(p.letter.id.clone()),
                payload: json!({ "day": day }).to_string(),
                run_after: unix_micros(now + time::Duration::days(*day)),
            })
            .collect();
        let at = unix_micros(now);
        let transition = Transition {
            letter_id: p.letter.id.clone(),
            from_states: vec![LetterState::Deposited.as_str()],
            to_state: LetterState::Notified.as_str(),
            expected_head: head,
            evidence: NewEvidence::default(),
            update: LetterUpdate {
                notified_at: Some(kept.prepared_at),
                deadline: Some(unix_micros(window.deadline)),
                recipient_token_sha256: Some(sha256_hex(
                    self.recipient_token(&p.letter.id).as_bytes(),
                )),
                ..LetterUpdate::default()
            },
            jobs: reminders,
            completes_job: Some(p.job.id),
            now: at,
        };
        Ok((record, transition))
    }
}

/// The webhook jobs of transitions applied together: one `webhook_events` job per tenant
/// naming each letter and its evidence.
fn announce_together(
    done: &[&Transition],
    tenants: &HashMap<&str, &str>,
    event: EvidenceEvent,
    at: OffsetDateTime,
) -> Vec<NewJob> {
    let mut by_tenant: std::collections::BTreeMap<&str, Vec<(String, String)>> =
        std::collections::BTreeMap::new();
    for t in done {
        if let Some(tenant) = tenants.get(t.letter_id.as_str()) {
            by_tenant
                .entry(tenant)
                .or_default()
                .push((t.letter_id.clone(), t.evidence.id.clone()));
        }
    }
    by_tenant
        .into_iter()
        .map(|(tenant_id, items)| {
            let events = crate::app::webhook::WebhookEvents {
                tenant_id: tenant_id.to_string(),
                event: webhook_event_name(event).to_string(),
                occurred_at: rfc3339_micros(at),
                items,
            };
            NewJob {
                kind: job::WEBHOOK_EVENTS.into(),
                letter_id: None,
                payload: serde_json::to_string(&events).unwrap_or_default(),
                run_after: unix_micros(at),
            }
        })
        .collect()
}
