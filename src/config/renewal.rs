//! `[renewal]`: archive timestamp renewal (docs/CONFIGURATION.md, "Key rotation"; RFC 4998).

use serde::Deserialize;

use super::ConfigError;

/// `[renewal]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalSettings {
    /// Archive timestamp renewal (`[renewal] interval_seconds`): how often due records are
    /// renewed.
    pub interval_seconds: u64,
    /// `[renewal] margin_days`: records whose newest token's TSA certificate ends within this
    /// many days are renewed (RFC 4998 §5.2: before the certificate expires).
    pub margin_days: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRenewal {
    interval_seconds: Option<u64>,
    margin_days: Option<u32>,
}

/// Checks `[renewal]`: an interval of one minute to 30 days and a margin longer than it.
pub(super) fn resolve(file: &FileRenewal) -> Result<RenewalSettings, ConfigError> {
    let renewal_interval_seconds = file.interval_seconds.unwrap_or(86_400);
    if !(60..=30 * 86_400).contains(&renewal_interval_seconds) {
        return Err(ConfigError::Invalid {
            key: "renewal.interval_seconds",
            message: format!("{renewal_interval_seconds} must be between 60 and 2592000 (30 days)"),
        });
    }
    let renewal_margin_days = file.margin_days.unwrap_or(90);
    if !(1..=3650).contains(&renewal_margin_days)
        || u64::from(renewal_margin_days) * 86_400 <= renewal_interval_seconds
    {
        return Err(ConfigError::Invalid {
            key: "renewal.margin_days",
            message: format!(
                "{renewal_margin_days} must be between 1 and 3650 and longer than renewal.interval_seconds, or a certificate could expire between two runs"
            ),
        });
    }
    Ok(RenewalSettings {
        interval_seconds: renewal_interval_seconds,
        margin_days: renewal_margin_days,
    })
}
