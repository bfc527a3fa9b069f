//! The end of a letter's retention period: its `ContentDestruction` record (CPCE R.53-3).

use super::*;

impl Lifecycle {
    /// Seals `ContentDestruction` for a letter whose retention period has ended (CPCE
    /// R.53-3): its state stays, the evidence chain gets its last record. Refuses a letter
    /// still within its retention period or on legal hold. Returns whether the record was
    /// added (not when the chain moved concurrently).
    pub async fn record_content_destruction(
        &self,
        letter: &LetterRow,
    ) -> Result<bool, LifecycleError> {
        let now = unix_micros(self.clock.now());
        if letter.retain_until > now || letter.legal_hold_since.is_some() {
            // CPCE R.53-2/R.53-3: nothing may destroy the content before then.
            return Err(LifecycleError::Conflict(format!(
                "letter {} is within its retention period (until {}) or on legal hold",
                letter.id,
                rfc3339_micros(from_unix_micros(letter.retain_until))
            )));
        }
        let state = LetterState::parse(&letter.state)
            .ok_or_else(|| LifecycleError::Corrupt(letter.id.clone()))?
            .as_str();
        let mut details = Map::new();
        details.insert(
            "retain_until".into(),
            Value::String(rfc3339_micros(from_unix_micros(letter.retain_until))),
        );
        details.insert(
            "legal_basis".into(),
            Value::String("CPCE R.53-3: retention period ended, no legal hold".into()),
        );
        details.insert(
            "method".into(),
            Value::String(
                "crypto-shredding: the documents' data keys are destroyed as soon as no other \
                 letter within its retention period uses the same bytes; evidence is kept"
                    .into(),
            ),
        );
        let sealed = self
            .transition(
                letter,
                EvidenceEvent::ContentDestruction,
                vec![state],
                state,
                details,
                None,
                LetterUpdate::default(),
                Vec::new(),
                None,
            )
            .await?;
        Ok(sealed.is_some())
    }
}
