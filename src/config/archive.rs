//! `[archive]`: the master keys that encrypt content at rest and how long personal data is
//! kept past `retain_until` (docs/CONFIGURATION.md, "Encryption at rest" and "Evidence
//! retention").

use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, SecretText};

/// `[archive]`.
#[derive(Debug, Clone, Default)]
pub struct ArchiveSettings {
    /// A master key `<id>:<base64>` (`RECOMMANDE_MASTER_KEY` or `[archive] master_key`):
    /// the active key when set.
    pub master_key: Option<SecretText>,
    /// Master key files (`[archive] master_key_files`), in order; the first is active unless
    /// `master_key` is set. None at all: a development key in `DATA_DIR/keys/`.
    pub master_key_files: Vec<PathBuf>,
    /// `[archive] evidence_retention`: `None` = `forever` (default); `Some(n)` = the parties'
    /// personal data outside the sealed evidence is erased `n` years after `retain_until`.
    pub evidence_retention_years: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileArchive {
    master_key: Option<String>,
    evidence_retention: Option<toml::Value>,
    #[serde(default)]
    master_key_files: Vec<PathBuf>,
}

/// Checks `[archive]`: `evidence_retention` is `forever` or 1 to 100 years; an empty master
/// key counts as none.
pub(super) fn resolve(file: FileArchive) -> Result<ArchiveSettings, ConfigError> {
    let evidence_retention_years = match &file.evidence_retention {
        None => None,
        Some(toml::Value::String(s)) if s.trim() == "forever" => None,
        Some(value) => {
            let years = match value {
                toml::Value::Integer(n) => Some(*n),
                toml::Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            match years {
                Some(n @ 1..=100) => Some(n as u32),
                _ => {
                    return Err(ConfigError::Invalid {
                        key: "archive.evidence_retention",
                        message: format!(
                            "{value} must be \"forever\" or a number of years from 1 to 100 after retain_until"
                        ),
                    });
                }
            }
        }
    };
    Ok(ArchiveSettings {
        master_key: file
            .master_key
            .filter(|k| !k.is_empty())
            .map(SecretText::new),
        master_key_files: file.master_key_files,
        evidence_retention_years,
    })
}
