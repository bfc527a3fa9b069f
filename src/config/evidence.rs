//! The top-level evidence keys: how long proofs are kept and under which policy they are
//! sealed (docs/CONFIGURATION.md, "Settings"; docs/EVIDENCE.md).

use super::ConfigError;

/// Default retention: CPCE R.53-2/R.53-3 require at least one year; we keep ten.
pub const DEFAULT_RETENTION_YEARS: u32 = 10;
pub use crate::core::pki::DEVELOPMENT_EVIDENCE_POLICY;

/// The evidence (top-level `retention_years` and `evidence_policy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceSettings {
    /// Retention of content and evidence, in years (≥ 1).
    pub retention_years: u32,
    /// Evidence policy URI; `None` = development policy or the production default.
    pub policy: Option<String>,
}

/// Checks `retention_years`: 1 to 100.
pub(super) fn retention_years(value: Option<u32>) -> Result<u32, ConfigError> {
    let retention_years = value.unwrap_or(DEFAULT_RETENTION_YEARS);
    if !(1..=100).contains(&retention_years) {
        // CPCE R.53-2 and R.53-3: proofs are kept at least one year.
        return Err(ConfigError::Invalid {
            key: "retention_years",
            message: format!("{retention_years} must be between 1 (CPCE R.53-2) and 100"),
        });
    }
    Ok(retention_years)
}

/// Checks `evidence_policy`: a URI (a `:`, no whitespace) when set.
pub(super) fn policy(evidence_policy: Option<String>) -> Result<Option<String>, ConfigError> {
    if let Some(policy) = &evidence_policy
        && (!policy.contains(':') || policy.chars().any(char::is_whitespace))
    {
        return Err(ConfigError::Invalid {
            key: "evidence_policy",
            message: format!("{policy:?} is not a URI"),
        });
    }
    Ok(evidence_policy)
}
