//! `[rate_limits]`: in-memory request quotas per tenant and per client address
//! (docs/CONFIGURATION.md, "Rate limits").

use serde::Deserialize;

use super::ConfigError;

/// Default `[rate_limits]`: see [`RateLimitSettings::default`].
pub const DEFAULT_RATE_LIMITS: RateLimitSettings = RateLimitSettings {
    api_per_minute: 6_000,
    deposits_per_minute: 600,
    batches_per_minute: 60,
    documents_per_minute: 600,
    failed_auth_per_minute: 20,
    recipient_per_minute: 120,
    otp_per_letter_per_hour: 10,
    otp_per_address_per_hour: 30,
};

/// Request quotas (`[rate_limits]`), each a token bucket of that many requests refilled
/// evenly over its window (so a full quota may be spent in one burst). Kept in memory by one
/// process: several instances behind a load balancer each apply them on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Authenticated API requests per tenant and minute, every route together.
    pub api_per_minute: u32,
    /// `POST /v1/letters` per tenant and minute.
    pub deposits_per_minute: u32,
    /// `POST /v1/batches` per tenant and minute.
    pub batches_per_minute: u32,
    /// `POST /v1/documents` per tenant and minute.
    pub documents_per_minute: u32,
    /// Refused API keys (401) per client address and minute; past it, the address gets 429
    /// before its key is even looked at.
    pub failed_auth_per_minute: u32,
    /// Requests to the recipient pages `/r/…` and the recipient API `/v1/recipient/…` per
    /// client address and minute.
    pub recipient_per_minute: u32,
    /// Code requests per letter link and hour (on top of the lifecycle's own, stored,
    /// limit of codes actually sent).
    pub otp_per_letter_per_hour: u32,
    /// Code requests per client address and hour, all letters together.
    pub otp_per_address_per_hour: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        DEFAULT_RATE_LIMITS
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRateLimits {
    api_per_minute: Option<u32>,
    deposits_per_minute: Option<u32>,
    batches_per_minute: Option<u32>,
    documents_per_minute: Option<u32>,
    failed_auth_per_minute: Option<u32>,
    recipient_per_minute: Option<u32>,
    otp_per_letter_per_hour: Option<u32>,
    otp_per_address_per_hour: Option<u32>,
}

/// Checks the `[rate_limits]` section: every quota from 1 to 1000000.
pub(super) fn resolve(file: &FileRateLimits) -> Result<RateLimitSettings, ConfigError> {
    let d = DEFAULT_RATE_LIMITS;
    let quota = |value: Option<u32>, default: u32, key: &'static str| {
        let value = value.unwrap_or(default);
        if (1..=1_000_000).contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::Invalid {
                key,
                message: format!("{value} must be between 1 and 1000000"),
            })
        }
    };
    Ok(RateLimitSettings {
        api_per_minute: quota(
            file.api_per_minute,
            d.api_per_minute,
            "rate_limits.api_per_minute",
        )?,
        deposits_per_minute: quota(
            file.deposits_per_minute,
            d.deposits_per_minute,
            "rate_limits.deposits_per_minute",
        )?,
        batches_per_minute: quota(
            file.batches_per_minute,
            d.batches_per_minute,
            "rate_limits.batches_per_minute",
        )?,
        documents_per_minute: quota(
            file.documents_per_minute,
            d.documents_per_minute,
            "rate_limits.documents_per_minute",
        )?,
        failed_auth_per_minute: quota(
            file.failed_auth_per_minute,
            d.failed_auth_per_minute,
            "rate_limits.failed_auth_per_minute",
        )?,
        recipient_per_minute: quota(
            file.recipient_per_minute,
            d.recipient_per_minute,
            "rate_limits.recipient_per_minute",
        )?,
        otp_per_letter_per_hour: quota(
            file.otp_per_letter_per_hour,
            d.otp_per_letter_per_hour,
            "rate_limits.otp_per_letter_per_hour",
        )?,
        otp_per_address_per_hour: quota(
            file.otp_per_address_per_hour,
            d.otp_per_address_per_hour,
            "rate_limits.otp_per_address_per_hour",
        )?,
    })
}
