//! `[verify]`: the public verification page and API (docs/CONFIGURATION.md, "Settings").

use serde::Deserialize;

use super::ConfigError;

/// Default maximum size of a bundle uploaded to the public `/verify` page: 200 MiB (a letter
/// of several large documents and its proofs).
pub const DEFAULT_VERIFY_MAX_UPLOAD_BYTES: u64 = 200 * 1024 * 1024;
/// Default number of public verifications (`/verify`, `/v1/verify/…`) per client address and
/// minute.
pub const DEFAULT_VERIFY_REQUESTS_PER_MINUTE: u32 = 30;

/// `[verify]`: limits of the public verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifySettings {
    /// Maximum size of a bundle uploaded to the public `/verify` page.
    pub max_upload_bytes: u64,
    /// Public verifications allowed per client address and minute.
    pub requests_per_minute: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileVerify {
    max_upload_bytes: Option<u64>,
    requests_per_minute: Option<u32>,
}

/// Checks `[verify]`: a positive size, 1 to 100000 verifications a minute.
pub(super) fn resolve(file: &FileVerify) -> Result<VerifySettings, ConfigError> {
    let max_upload_bytes = file
        .max_upload_bytes
        .unwrap_or(DEFAULT_VERIFY_MAX_UPLOAD_BYTES);
    if max_upload_bytes == 0 {
        return Err(ConfigError::Invalid {
            key: "verify.max_upload_bytes",
            message: "must be positive".into(),
        });
    }
    let requests_per_minute = file
        .requests_per_minute
        .unwrap_or(DEFAULT_VERIFY_REQUESTS_PER_MINUTE);
    if !(1..=100_000).contains(&requests_per_minute) {
        return Err(ConfigError::Invalid {
            key: "verify.requests_per_minute",
            message: format!("{requests_per_minute} must be between 1 and 100000"),
        });
    }
    Ok(VerifySettings {
        max_upload_bytes,
        requests_per_minute,
    })
}
