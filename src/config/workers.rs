//! `[workers]`: the background workers (docs/CONFIGURATION.md, "Workers").

use serde::Deserialize;

use super::ConfigError;

/// `[workers]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSettings {
    /// `[workers] shutdown_grace_seconds`: at SIGTERM or Ctrl-C, how long the background
    /// workers' passes in progress (and batch deposits, webhook attempts) may take to
    /// finish before they are cut short and their claims given back (default 15).
    pub shutdown_grace_seconds: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileWorkers {
    shutdown_grace_seconds: Option<u64>,
}

/// Checks `[workers]`: a grace of 1 to 300 seconds.
pub(super) fn resolve(file: &FileWorkers) -> Result<WorkerSettings, ConfigError> {
    let shutdown_grace_seconds = file.shutdown_grace_seconds.unwrap_or(15);
    if !(1..=300).contains(&shutdown_grace_seconds) {
        return Err(ConfigError::Invalid {
            key: "workers.shutdown_grace_seconds",
            message: format!("{shutdown_grace_seconds} must be between 1 and 300"),
        });
    }
    Ok(WorkerSettings {
        shutdown_grace_seconds,
    })
}
