//! PLACEHOLDER replaced by the webhooks module being written on branch `hooks`.
use crate::storage::{Storage, StorageError};
/// A lifecycle event to announce.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebhookEvent {
    /// Tenant.
    pub tenant_id: String,
    /// Letter.
    pub letter_id: String,
    /// Event name.
    pub event: String,
    /// Evidence id.
    pub evidence_id: String,
    /// Time.
    pub occurred_at: String,
}
/// Placeholder.
pub async fn fan_out(
    _storage: &Storage,
    _event: &WebhookEvent,
    _now: time::OffsetDateTime,
) -> Result<usize, StorageError> {
    Ok(0)
}
