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
    /// `[workers] dispatch_chunk`: notifications the outbox worker claims, builds, hands
    /// over, seals and commits together (default 500; 1 sends and commits them one by one).
    pub dispatch_chunk: usize,
}

/// Default of `[workers] dispatch_chunk`.
pub const DEFAULT_DISPATCH_CHUNK: usize = 500;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileWorkers {
    shutdown_grace_seconds: Option<u64>,
    dispatch_chunk: Option<usize>,
}

/// Checks `[workers]`: a grace of 1 to 300 seconds, chunks of 1 to 5,000 notifications.
pub(super) fn resolve(file: &FileWorkers) -> Result<WorkerSettings, ConfigError> {
    let shutdown_grace_seconds = file.shutdown_grace_seconds.unwrap_or(15);
    if !(1..=300).contains(&shutdown_grace_seconds) {
        return Err(ConfigError::Invalid {
            key: "workers.shutdown_grace_seconds",
            message: format!("{shutdown_grace_seconds} must be between 1 and 300"),
        });
    }
    let dispatch_chunk = file.dispatch_chunk.unwrap_or(DEFAULT_DISPATCH_CHUNK);
    if !(1..=5000).contains(&dispatch_chunk) {
        return Err(ConfigError::Invalid {
            key: "workers.dispatch_chunk",
            message: format!("{dispatch_chunk} must be between 1 and 5000"),
        });
    }
    Ok(WorkerSettings {
        shutdown_grace_seconds,
        dispatch_chunk,
    })
}
