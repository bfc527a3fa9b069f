//! `[metrics]`: who may read `GET /metrics` (docs/CONFIGURATION.md, "Settings").

use serde::Deserialize;

use super::{ConfigError, SecretText};

/// `[metrics]`.
#[derive(Debug, Clone, Default)]
pub struct MetricsSettings {
    /// Bearer token of `GET /metrics` (`[metrics] token`); unset and not public: disabled.
    pub token: Option<SecretText>,
    /// `[metrics] public = true`: `GET /metrics` without a token (a private network only).
    pub public: bool,
    /// `[metrics] otlp_traces_endpoint`: the OTLP/HTTP traces URL of an OpenTelemetry
    /// collector (`http://collector:4318/v1/traces`) receiving a span per request; unset:
    /// no export.
    pub otlp_traces_endpoint: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileMetrics {
    token: Option<String>,
    public: Option<bool>,
    otlp_traces_endpoint: Option<String>,
}

/// Checks `[metrics]`: a token of at least 32 characters when set.
pub(super) fn resolve(file: FileMetrics) -> Result<MetricsSettings, ConfigError> {
    let metrics_token = file.token.filter(|t| !t.is_empty());
    if metrics_token.as_ref().is_some_and(|t| t.len() < 32) {
        return Err(ConfigError::Invalid {
            key: "metrics.token",
            message: "must be at least 32 characters".into(),
        });
    }
    let otlp = file.otlp_traces_endpoint.filter(|u| !u.is_empty());
    if let Some(url) = &otlp
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(ConfigError::Invalid {
            key: "metrics.otlp_traces_endpoint",
            message: format!("{url:?}: must be an http:// or https:// URL"),
        });
    }
    Ok(MetricsSettings {
        token: metrics_token.map(SecretText::new),
        public: file.public.unwrap_or(false),
        otlp_traces_endpoint: otlp,
    })
}
