//! `[log]`: the transparency log's signed tree heads and their outside witnesses
//! (docs/CONFIGURATION.md, "Settings"; docs/LOG.md).

use serde::Deserialize;

use super::{ConfigError, SecretText};

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// A signed tree head of the transparency log is issued at least this often (seconds)
    /// while the log grows.
    pub head_interval_seconds: u64,
    /// … or as soon as this many leaves were appended since the last one.
    pub head_every_leaves: u64,
    /// Outside witnesses that receive every signed tree head (`[log.witnesses]`).
    pub witnesses: WitnessSettings,
}

/// Outside witnesses of the transparency log (issue 6 §2): each new signed tree head is
/// mailed to every address and POSTed to every webhook (signed like sender webhooks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WitnessSettings {
    /// Mail addresses (a court clerk's or a bailiff's mailbox).
    pub emails: Vec<String>,
    /// Webhook receivers, each with its own signing secret.
    pub webhooks: Vec<WitnessWebhook>,
}

impl WitnessSettings {
    /// True when no witness is configured.
    pub fn is_empty(&self) -> bool {
        self.emails.is_empty() && self.webhooks.is_empty()
    }
}

/// A webhook witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessWebhook {
    /// Absolute http(s) URL.
    pub url: String,
    /// HMAC-SHA256 signing secret (16 to 256 visible characters).
    pub secret: SecretText,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileLog {
    head_interval_seconds: Option<u64>,
    head_every_leaves: Option<u64>,
    #[serde(default)]
    witnesses: FileWitnesses,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileWitnesses {
    #[serde(default)]
    emails: Vec<String>,
    #[serde(default)]
    webhooks: Vec<FileWitnessWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileWitnessWebhook {
    url: String,
    secret: String,
}

/// Checks `[log]`: a head at least once a day and every 1 or more leaves, then the
/// witnesses.
pub(super) fn resolve(file: FileLog) -> Result<LogSettings, ConfigError> {
    let log_head_interval_seconds = file.head_interval_seconds.unwrap_or(60);
    if !(1..=86_400).contains(&log_head_interval_seconds) {
        return Err(ConfigError::Invalid {
            key: "log.head_interval_seconds",
            message: format!("{log_head_interval_seconds} must be between 1 and 86400"),
        });
    }
    let log_head_every_leaves = file.head_every_leaves.unwrap_or(10_000);
    if log_head_every_leaves == 0 {
        return Err(ConfigError::Invalid {
            key: "log.head_every_leaves",
            message: "must be at least 1".into(),
        });
    }
    let witnesses = resolve_witnesses(file.witnesses)?;
    Ok(LogSettings {
        head_interval_seconds: log_head_interval_seconds,
        head_every_leaves: log_head_every_leaves,
        witnesses,
    })
}

/// Checks every witness: mail addresses, webhook URLs and secrets, no witness twice.
fn resolve_witnesses(file: FileWitnesses) -> Result<WitnessSettings, ConfigError> {
    let mut emails: Vec<String> = Vec::new();
    for address in file.emails {
        let parsed: lettre::Address = address.trim().parse().map_err(|_| ConfigError::Invalid {
            key: "log.witnesses.emails",
            message: format!("{address:?} is not a mail address"),
        })?;
        let address = parsed.to_string();
        if emails.contains(&address) {
            return Err(ConfigError::Invalid {
                key: "log.witnesses.emails",
                message: format!("{address} is listed twice"),
            });
        }
        emails.push(address);
    }
    let mut webhooks: Vec<WitnessWebhook> = Vec::new();
    for hook in file.webhooks {
        let url =
            crate::config::outbound::check_url(&hook.url).map_err(|m| ConfigError::Invalid {
                key: "log.witnesses.webhooks",
                message: format!("url {:?} {m}", hook.url),
            })?;
        crate::config::outbound::check_secret(&hook.secret).map_err(|m| ConfigError::Invalid {
            key: "log.witnesses.webhooks",
            message: format!("the secret of {url} {m}"),
        })?;
        if webhooks.iter().any(|w| w.url == url) {
            return Err(ConfigError::Invalid {
                key: "log.witnesses.webhooks",
                message: format!("{url} is listed twice"),
            });
        }
        webhooks.push(WitnessWebhook {
            url,
            secret: SecretText::new(hook.secret),
        });
    }
    Ok(WitnessSettings { emails, webhooks })
}
