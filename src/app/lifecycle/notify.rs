//! The outbox (claims, the run of each job kind, the claims given back at shutdown),
//! reminders, webhook announcements and the failures of notifications (docs/EVIDENCE.md,
//! events); the notifications themselves go in chunks ([`super::dispatch`]).

use super::*;

impl Lifecycle {
    // ----- outbox ---------------------------------------------------------------------------

    /// Claims and runs due jobs; returns how many were claimed.
    pub async fn run_due_jobs(&self, limit: i64) -> Result<usize, StorageError> {
        let now = self.clock.now();
        let jobs = self
            .storage
            .claim_jobs(
                unix_micros(now),
                JOB_LEASE.whole_microseconds() as i64,
                limit,
            )
            .await?;
        let claimed = jobs.len();
        let lease_until = unix_micros(now) + JOB_LEASE.whole_microseconds() as i64;
        self.claims
            .held()
            .extend(jobs.iter().map(|job| (job.id, (lease_until, false))));
        let (notifications, others): (Vec<Job>, Vec<Job>) =
            jobs.into_iter().partition(|job| job.kind == job::NOTIFY);
        if !notifications.is_empty() {
            self.notify_all(notifications).await;
        }
        for job in others {
            if self.stopping() {
                // Stopping: the jobs not started stay held and are given back.
                break;
            }
            if let Some(claim) = self.claims.held().get_mut(&job.id) {
                claim.1 = true;
            }
            let outcome = match job.kind.as_str() {
                job::REMIND => self.remind(&job).await,
                job::WEBHOOK_EVENT => self.announce(&job).await,
                job::NOTIFY_LETTERS => self.expand_notifications(&job).await,
                job::WEBHOOK_EVENTS => self.announce_many(&job).await,
                job::BATCH_EVENT => self.announce_batch(&job).await,
                other => {
                    tracing::error!(
                        job.id = job.id,
                        job.kind = other,
                        "unknown job kind; left in the outbox"
                    );
                    Ok(())
                }
            };
            if let Err(e) = outcome {
                // The lease makes the job due again; log and go on with the others.
                tracing::error!(job.id = job.id, job.kind = %job.kind, error = %e, "job failed; it will be retried");
            }
            self.claims.held().remove(&job.id);
        }
        Ok(claimed)
    }

    pub(super) fn stopping(&self) -> bool {
        self.claims
            .stopping
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Makes the outbox passes stop after their current job (graceful shutdown).
    pub fn stop_claiming(&self) {
        self.claims
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Gives back every outbox claim this process still holds (jobs not run, or whose run
    /// was cut short at shutdown): they are due again at once for the next start or another
    /// instance. Returns how many were released.
    pub async fn release_claims(&self) -> Result<u64, StorageError> {
        let claims: Vec<(i64, i64, bool)> = self
            .claims
            .held()
            .drain()
            .map(|(id, (lease_until, started))| (id, lease_until, started))
            .collect();
        if claims.is_empty() {
            return Ok(0);
        }
        self.storage
            .release_jobs(&claims, unix_micros(self.clock.now()))
            .await
    }

    /// A transient or deferred failure with attempts left: the job runs again later, with
    /// the kept message when the relay may have taken it, with a fresh one when surely not.
    pub(super) async fn notify_later(
        &self,
        job: &Job,
        letter: &LetterRow,
        error: &MailError,
        now: OffsetDateTime,
    ) -> Result<(), LifecycleError> {
        // 30 s, 1 min, 2 min … capped at one hour between attempts.
        let delay = time::Duration::seconds((30i64 << (job.attempts - 1).clamp(0, 7)).min(3600));
        let reason = error.to_string();
        tracing::warn!(letter.id = %letter.id, attempt = job.attempts, error = %reason, "notification deferred");
        let run_after = unix_micros(now + delay);
        if matches!(error, MailError::Deferred(_)) {
            // Surely not taken: no copy exists, the next attempt builds a fresh message (its
            // deadline counted from then).
            self.storage
                .retry_job_without_mail(job.id, run_after, &reason)
                .await?;
        } else {
            // Perhaps taken: the next attempt resends these very bytes.
            self.storage.retry_job(job.id, run_after, &reason).await?;
        }
        Ok(())
    }

    async fn remind(&self, job: &Job) -> Result<(), LifecycleError> {
        let now = self.clock.now();
        let letter = self.job_letter(job).await?;
        let due = letter.as_ref().filter(|l| {
            l.state == LetterState::Notified.as_str()
                && l.deadline.is_some_and(|d| d > unix_micros(now))
        });
        let Some(letter) = due else {
            // Decided, expired or failed meanwhile: no reminder after a decision.
            return Ok(self.storage.complete_job(job.id, unix_micros(now)).await?);
        };
        let day = serde_json::from_str::<Value>(&job.payload)
            .ok()
            .and_then(|v| v["day"].as_i64())
            .unwrap_or(0);
        let recipient = parse_recipient(letter)?;
        let deadline = from_unix_micros(letter.deadline.unwrap_or_default());
        let mail = self.notification_mail(letter, &recipient, deadline, Some(day), job.attempts)?;
        match self.mailer.send(mail).await {
            Ok(_) => {
                tracing::info!(letter.id = %letter.id, day, "reminder sent");
                Ok(self.storage.complete_job(job.id, unix_micros(now)).await?)
            }
            Err(MailError::Transient(reason) | MailError::Deferred(reason))
                if job.attempts < NOTIFY_MAX_ATTEMPTS =>
            {
                Ok(self
                    .storage
                    .retry_job(
                        job.id,
                        unix_micros(now + time::Duration::minutes(5)),
                        &reason,
                    )
                    .await?)
            }
            Err(e) => {
                tracing::warn!(letter.id = %letter.id, error = %e, "reminder not delivered");
                Ok(self.storage.complete_job(job.id, unix_micros(now)).await?)
            }
        }
    }

    async fn announce(&self, job: &Job) -> Result<(), LifecycleError> {
        let now = self.clock.now();
        match serde_json::from_str::<crate::app::webhook::WebhookEvent>(&job.payload) {
            Ok(event) => {
                crate::app::webhook::fan_out(&self.storage, &event, now).await?;
            }
            Err(e) => {
                tracing::error!(job.id = job.id, error = %e, "unreadable webhook event dropped")
            }
        }
        Ok(self.storage.complete_job(job.id, unix_micros(now)).await?)
    }

    async fn expand_notifications(&self, job: &Job) -> Result<(), LifecycleError> {
        let now = self.clock.now();
        let letters: Vec<String> = serde_json::from_str::<Value>(&job.payload)
            .ok()
            .and_then(|v| serde_json::from_value(v["letters"].clone()).ok())
            .unwrap_or_default();
        let jobs: Vec<NewJob> = letters
            .into_iter()
            .map(|id| NewJob {
                kind: job::NOTIFY.into(),
                letter_id: Some(id),
                payload: "{}".into(),
                run_after: unix_micros(now),
            })
            .collect();
        // The per-letter jobs and the completion of this one commit together: a crash
        // between them can neither lose a notification nor queue it twice.
        Ok(self
            .storage
            .replace_job(job.id, &jobs, unix_micros(now))
            .await?)
    }

    async fn announce_many(&self, job: &Job) -> Result<(), LifecycleError> {
        let now = self.clock.now();
        match serde_json::from_str::<crate::app::webhook::WebhookEvents>(&job.payload) {
            Ok(events) => {
                crate::app::webhook::fan_out_many(&self.storage, &events, now).await?;
            }
            Err(e) => {
                tracing::error!(job.id = job.id, error = %e, "unreadable webhook events dropped")
            }
        }
        Ok(self.storage.complete_job(job.id, unix_micros(now)).await?)
    }

    async fn announce_batch(&self, job: &Job) -> Result<(), LifecycleError> {
        let now = self.clock.now();
        match serde_json::from_str::<crate::app::webhook::BatchEvent>(&job.payload) {
            Ok(event) => {
                crate::app::webhook::fan_out_batch(&self.storage, &event, now).await?;
            }
            Err(e) => {
                tracing::error!(job.id = job.id, error = %e, "unreadable batch event dropped")
            }
        }
        Ok(self.storage.complete_job(job.id, unix_micros(now)).await?)
    }

    /// Records that the notification cannot reach the recipient (SMTP refusal, bounce).
    pub(super) async fn notification_failed(
        &self,
        letter: &LetterRow,
        source: &str,
        reason: &str,
        detail: FailureDetail<'_>,
        completes_job: Option<i64>,
    ) -> Result<Option<SealedEvidence>, LifecycleError> {
        let mut details = Map::new();
        let mut failure = json!({ "source": source, "reason": reason });
        match detail {
            FailureDetail::None => {}
            FailureDetail::DsnStatus(status) => {
                failure["dsn_status"] = Value::String(status.to_string());
            }
            FailureDetail::Offered(mail) => {
                // An earlier attempt of these very bytes may have been taken just before a
                // crash: the failure names the one message any such copy can be.
                failure["message_id"] = Value::String(mail.message_id.clone());
                failure["message_sha256"] = Value::String(sha256_hex(&mail.bytes));
            }
        }
        details.insert("failure".into(), failure);
        let sealed = self
            .transition(
                letter,
                EvidenceEvent::NotificationForAcceptanceFailure,
                vec![
                    LetterState::Deposited.as_str(),
                    LetterState::Notified.as_str(),
                ],
                LetterState::NotificationFailed.as_str(),
                details,
                None,
                LetterUpdate::default(),
                Vec::new(),
                completes_job,
            )
            .await?;
        if sealed.is_some() {
            tracing::warn!(letter.id = %letter.id, source, reason, "notification failed");
        } else if let Some(job) = completes_job {
            self.storage
                .complete_job(job, unix_micros(self.clock.now()))
                .await?;
        }
        Ok(sealed)
    }

    pub(super) fn bounce_address(
        &self,
        letter_id: &str,
    ) -> Result<lettre::Address, LifecycleError> {
        // VERP (variable envelope return path): bounces come back to an address naming the letter.
        format!("bounces+{letter_id}@{}", self.mailer.domain())
            .parse()
            .map_err(|e| LifecycleError::Mail(MailError::Invalid(format!("bounce address: {e}"))))
    }

    pub(super) fn notification_mail(
        &self,
        letter: &LetterRow,
        recipient: &Recipient,
        deadline: OffsetDateTime,
        reminder_day: Option<i64>,
        attempt: i64,
    ) -> Result<OutgoingMail, LifecycleError> {
        let kind = match reminder_day {
            Some(day) => format!("remind{day}"),
            None => "notify".into(),
        };
        Ok(OutgoingMail {
            to: mailbox(recipient)?,
            // CPCE R.53-3: fixed by the service; never the sender's words or name.
            subject: match reminder_day {
                None => "Lettre recommandée électronique en attente / Electronic registered letter awaiting you".into(),
                Some(_) => "Rappel : lettre recommandée électronique en attente / Reminder: electronic registered letter awaiting you".into(),
            },
            body: notification_body(
                &self.provider,
                &recipient.name,
                &letter.id,
                deadline,
                &self.recipient_link(&letter.id),
                reminder_day.is_some(),
            ),
            message_id: format!("lre.{}.{kind}.{attempt}@{}", letter.id, self.mailer.domain()),
            envelope_from: self.bounce_address(&letter.id)?,
        })
    }
}

/// What a notification failure records besides its source and reason.
pub(super) enum FailureDetail<'a> {
    /// Nothing more.
    None,
    /// The RFC 3463 status of a bounce.
    DsnStatus(&'a str),
    /// The message the relay was offered (kept with the job).
    Offered(&'a JobMail),
}

/// The notification (or reminder) text: French, then English. It names the provider, the
/// letter id, the deadline and the link — and never the sender (CPCE R.53-3).
fn notification_body(
    provider: &crate::core::provider::ProviderIdentity,
    recipient_name: &str,
    letter_id: &str,
    deadline: OffsetDateTime,
    link: &str,
    reminder: bool,
) -> String {
    let last = last_minute(deadline);
    let (fr_intro, en_intro) = if reminder {
        (
            "Rappel : une lettre recommandée électronique vous attend toujours.",
            "Reminder: an electronic registered letter is still waiting for you.",
        )
    } else {
        (
            "Une lettre recommandée électronique vous a été adressée.",
            "An electronic registered letter has been sent to you.",
        )
    };
    format!(
        "Bonjour {recipient_name},\n\n\
         {fr_intro}\n\
         Prestataire : {fr_provider}\n\
         {fr_status}\n\
         Identifiant de la lettre : {letter_id}\n\n\
         Une lettre recommandée électronique a la même valeur qu'une lettre recommandée papier \
         (article L.100 du code des postes et des communications électroniques). \
         L'identité de l'expéditeur vous sera communiquée dès que vous aurez accepté ou refusé la lettre.\n\n\
         Vous pouvez l'accepter ou la refuser jusqu'au {fr_deadline} (heure de Paris), soit quinze jours \
         à compter du lendemain de la première notification. Passé ce délai, la lettre sera considérée \
         comme non réclamée.\n\n\
         Pour vous identifier et accepter ou refuser la lettre :\n{link}\n\n\
         ----------------------------------------------------------------------\n\n\
         Hello {recipient_name},\n\n\
         {en_intro}\n\
         Provider: {en_provider}\n\
         {en_status}\n\
         Letter id: {letter_id}\n\n\
         An electronic registered letter has the same legal value as a paper registered letter \
         in France. The sender's identity will be shown to you as soon as you accept or refuse \
         the letter.\n\n\
         You may accept or refuse it until {en_deadline}, fifteen days from the day after the first \
         notification. After that, the letter will be recorded as unclaimed.\n\n\
         To identify yourself and accept or refuse the letter:\n{link}\n",
        fr_deadline = paris_french(last),
        en_deadline = paris_english(last),
        fr_provider = provider.legal_line(true),
        fr_status = provider.status(true),
        en_provider = provider.legal_line(false),
        en_status = provider.status(false),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notification_text_names_no_sender_and_gives_the_deadline() {
        let mut provider = crate::core::provider::ProviderIdentity::named("recommande");
        provider.registration = Some("RCS Paris 123 456 789".into());
        let body = notification_body(
            &provider,
            "SARL Débitrice",
            "0192-letter",
            time::macros::datetime!(2026-12-08 23:00 UTC),
            "http://localhost/r/abc",
            false,
        );
        assert!(body.contains("8 décembre 2026 à 23:59"), "{body}");
        assert!(
            body.contains(
                "Prestataire : recommande · RCS Paris 123 456 789\nPrestataire non qualifié"
            ),
            "{body}"
        );
        assert!(
            body.contains("8 December 2026, 23:59 (Paris time)"),
            "{body}"
        );
        assert!(body.contains("http://localhost/r/abc"));
        assert!(body.contains("0192-letter"));
    }
}
