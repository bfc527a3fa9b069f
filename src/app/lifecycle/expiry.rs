//! Non-claim: the acceptance window ended without a decision (CPCE R.53-3 II).

use super::*;

impl Lifecycle {
    /// Issues `AcceptanceRejectionExpiry` for letters whose window has ended (the non-claim
    /// proof, CPCE R.53-3 II). Exactly once per letter: the transition is guarded by state
    /// and chain head, so concurrent sweeps (several instances) cannot both succeed.
    pub async fn expire_due(&self, limit: i64) -> Result<usize, LifecycleError> {
        let now = self.clock.now();
        let ids = self
            .storage
            .letters_past_deadline(unix_micros(now), limit)
            .await?;
        let mut expired = 0;
        for id in ids {
            let Some(letter) = self.storage.letter_by_id(&id).await? else {
                continue;
            };
            let (Some(deadline), Some(notified_at)) = (letter.deadline, letter.notified_at) else {
                continue;
            };
            let window = acceptance_window(from_unix_micros(notified_at))?;
            let mut details = Map::new();
            details.insert(
                "deadline".into(),
                Value::String(rfc3339_micros(from_unix_micros(deadline))),
            );
            details.insert("deadline_rule".into(), Value::String(window.rule));
            details.insert(
                "notified_at".into(),
                Value::String(rfc3339_micros(from_unix_micros(notified_at))),
            );
            let sealed = self
                .transition(
                    &letter,
                    EvidenceEvent::AcceptanceRejectionExpiry,
                    vec![LetterState::Notified.as_str()],
                    LetterState::Expired.as_str(),
                    details,
                    None,
                    LetterUpdate::default(),
                    Vec::new(),
                    None,
                )
                .await?;
            if sealed.is_some() {
                expired += 1;
                tracing::info!(letter.id = %letter.id, "acceptance window ended: non-claim recorded");
            }
        }
        Ok(expired)
    }
}
