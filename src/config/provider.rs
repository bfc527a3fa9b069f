//! `[provider]`: the provider's legal identity, shown on proofs, pages, mails and
//! `VERIFY.txt` (docs/CONFIGURATION.md, "Settings").

use serde::Deserialize;

use super::ConfigError;
use crate::core::provider::ProviderIdentity;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileProvider {
    legal_name: Option<String>,
    address: Option<String>,
    registration: Option<String>,
    contact: Option<String>,
    privacy_url: Option<String>,
    qualified: Option<bool>,
}

/// Checks `[provider]`: each text set is 1 to 300 characters on one line; the privacy notice
/// is an http(s) URL; the legal name defaults to `provider_name`.
pub(super) fn resolve(file: FileProvider, name: &str) -> Result<ProviderIdentity, ConfigError> {
    let text = |key: &'static str, value: Option<String>| -> Result<Option<String>, ConfigError> {
        let Some(value) = value else { return Ok(None) };
        let value = value.trim().to_string();
        if value.is_empty() || value.chars().count() > 300 || value.contains(['\n', '\r']) {
            return Err(ConfigError::Invalid {
                key,
                message: "must be 1 to 300 characters on one line".into(),
            });
        }
        Ok(Some(value))
    };
    let privacy_url = text("provider.privacy_url", file.privacy_url)?;
    if let Some(url) = &privacy_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(ConfigError::Invalid {
            key: "provider.privacy_url",
            message: format!("{url:?} must be an http:// or https:// URL"),
        });
    }
    Ok(ProviderIdentity {
        name: name.to_string(),
        legal_name: text("provider.legal_name", file.legal_name)?
            .unwrap_or_else(|| name.to_string()),
        address: text("provider.address", file.address)?,
        registration: text("provider.registration", file.registration)?,
        contact: text("provider.contact", file.contact)?,
        privacy_url,
        qualified: file.qualified.unwrap_or(false),
    })
}
