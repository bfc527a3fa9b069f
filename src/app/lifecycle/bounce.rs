//! Asynchronous bounces of the notification (RFC 3464 delivery status notifications).

use super::notify::FailureDetail;
use super::*;

impl Lifecycle {
    /// Applies an asynchronous delivery status notification (RFC 3464). Returns the letter it
    /// concerned, or `None` when it names none of ours or reports no permanent failure.
    pub async fn record_bounce(&self, dsn: &str) -> Result<Option<String>, LifecycleError> {
        let Some(report) = crate::domain::bounce::parse(dsn, self.mailer.domain()) else {
            return Ok(None);
        };
        if !report.permanent {
            return Ok(None);
        }
        let Some(letter) = self.storage.letter_by_id(&report.letter_id).await? else {
            return Ok(None);
        };
        let reason = report
            .diagnostic
            .clone()
            .unwrap_or_else(|| format!("delivery status {}", report.status));
        let recorded = self
            .notification_failed(
                &letter,
                "bounce",
                &reason,
                FailureDetail::DsnStatus(&report.status),
                None,
            )
            .await?;
        Ok(recorded.map(|_| letter.id))
    }
}
