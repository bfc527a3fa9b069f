//! `[timestamp]`: where evidence gets its RFC 3161 timestamps, the embedded TSA or a remote
//! one (docs/CONFIGURATION.md, "Remote TSA").

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

pub use crate::core::pki::DEVELOPMENT_TSA_POLICY_OID;

/// How evidence gets its RFC 3161 timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimestampMode {
    /// The embedded TSA, signing with the configured (or development) TSA key.
    Embedded,
    /// A remote (qualified) TSA reached over RFC 3161 HTTP at this URL.
    Remote {
        /// `http(s)://…` endpoint accepting `application/timestamp-query`.
        url: String,
    },
}

/// `[timestamp]`: the timestamping mode and the embedded or remote TSA's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampSettings {
    /// Timestamping mode.
    pub mode: TimestampMode,
    /// TSA policy OID of the embedded TSA.
    pub policy_oid: String,
    /// Timeout of a remote TSA request, seconds.
    pub timeout_seconds: u64,
    /// Extra PEM trust anchors for a remote TSA's certificates (served with our roots).
    pub roots: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTimestamp {
    mode: Option<String>,
    url: Option<String>,
    policy_oid: Option<String>,
    timeout_seconds: Option<u64>,
    roots: Option<PathBuf>,
}

/// Checks `[timestamp]`: the mode (a remote TSA needs an http(s) URL), a dotted policy OID
/// and a timeout of 1 to 300 seconds.
pub(super) fn resolve(file: FileTimestamp) -> Result<TimestampSettings, ConfigError> {
    let mode = match file.mode.as_deref().unwrap_or("embedded") {
        "embedded" => TimestampMode::Embedded,
        "remote" => {
            let url = file.url.ok_or(ConfigError::Invalid {
                key: "timestamp.url",
                message: "is required when timestamp.mode = \"remote\"".into(),
            })?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid {
                    key: "timestamp.url",
                    message: format!("{url:?} must be an http:// or https:// URL"),
                });
            }
            TimestampMode::Remote { url }
        }
        other => {
            return Err(ConfigError::Invalid {
                key: "timestamp.mode",
                message: format!("{other:?} must be \"embedded\" or \"remote\""),
            });
        }
    };
    let tsa_policy_oid = file
        .policy_oid
        .unwrap_or_else(|| DEVELOPMENT_TSA_POLICY_OID.to_string());
    if !is_dotted_oid(&tsa_policy_oid) {
        return Err(ConfigError::Invalid {
            key: "timestamp.policy_oid",
            message: format!("{tsa_policy_oid:?} is not a dotted object identifier"),
        });
    }
    let tsa_timeout_seconds = file.timeout_seconds.unwrap_or(10);
    if !(1..=300).contains(&tsa_timeout_seconds) {
        return Err(ConfigError::Invalid {
            key: "timestamp.timeout_seconds",
            message: format!("{tsa_timeout_seconds} must be between 1 and 300"),
        });
    }
    Ok(TimestampSettings {
        mode,
        policy_oid: tsa_policy_oid,
        timeout_seconds: tsa_timeout_seconds,
        roots: file.roots,
    })
}

fn is_dotted_oid(s: &str) -> bool {
    let arcs: Vec<&str> = s.split('.').collect();
    arcs.len() >= 2
        && arcs
            .iter()
            .all(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
        && matches!(arcs[0], "0" | "1" | "2")
}
