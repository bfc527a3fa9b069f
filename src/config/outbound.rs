//! `[outbound]`: where webhook and witness deliveries may go (docs/CONFIGURATION.md,
//! "Outbound requests").

use serde::Deserialize;

use super::ConfigError;

/// `[outbound]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundSettings {
    /// `[outbound] allowed_private`: non-public address ranges webhook and witness
    /// deliveries may reach (on-premise receivers); none by default (see
    /// src/infra/net_guard.rs).
    pub allowed_private: Vec<crate::infra::net_guard::IpRange>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileOutbound {
    /// A list of ranges, or (from the environment) one string of comma-separated ranges.
    allowed_private: Option<toml::Value>,
}

/// Checks `[outbound]`: every allowed range.
pub(super) fn resolve(file: FileOutbound) -> Result<OutboundSettings, ConfigError> {
    Ok(OutboundSettings {
        allowed_private: resolve_allowed_private(file.allowed_private)?,
    })
}

/// Reads `[outbound] allowed_private`: a list of `address/prefix` ranges, or one string of
/// comma-separated ranges (`RECOMMANDE_OUTBOUND_ALLOWED_PRIVATE`).
fn resolve_allowed_private(
    value: Option<toml::Value>,
) -> Result<Vec<crate::infra::net_guard::IpRange>, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        key: "outbound.allowed_private",
        message,
    };
    let items: Vec<String> = match value {
        None => Vec::new(),
        Some(toml::Value::String(text)) => text
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                toml::Value::String(text) => Ok(text),
                other => Err(invalid(format!(
                    "{other} is not a range such as \"10.0.0.0/8\""
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(invalid(format!(
                "{other} must be a list of ranges such as [\"10.0.0.0/8\", \"127.0.0.1/32\"]"
            )));
        }
    };
    items
        .iter()
        .map(|text| text.parse().map_err(invalid))
        .collect()
}
