//! `[mail]`: how notifications and reminders are sent (docs/CONFIGURATION.md, "Mail").

use serde::Deserialize;

use super::{ConfigError, Overrides};

/// `[mail]`: the relay, the service's sender mailbox, the reminders and the bounce endpoint.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// SMTP relay URL; `None` writes `.eml` files into `DATA_DIR/mail` (embedded default).
    pub smtp_url: Option<String>,
    /// The service's sender mailbox (`Name <address>`): never a letter's sender.
    pub from: String,
    /// Days after the notification on which reminders are sent (default 5 and 12).
    pub reminder_days: Vec<i64>,
    /// Bearer token the mail system uses to post bounces to `/v1/bounces` (unset: disabled).
    pub bounce_token: Option<String>,
    /// DKIM signing of every mail (RFC 6376), when configured.
    pub dkim: Option<DkimSettings>,
    /// How hard the service may press the relay.
    pub relay: RelaySettings,
}

/// `[mail] max_connections`, `max_per_second`: the bulk-sending rules of the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelaySettings {
    /// SMTP connections kept open to the relay and used in parallel (1 to 100).
    pub max_connections: u32,
    /// Messages handed to the relay per second at most, all connections together; `None`:
    /// as fast as the relay answers.
    pub max_per_second: Option<u32>,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_per_second: None,
        }
    }
}

/// Default of `[mail] max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// `[mail] dkim_*`: the service signs its mails itself, for the domain of `mail.from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimSettings {
    /// The selector: the key is published at `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// The private key file: an RSA key in PKCS#1 PEM (`rsa-sha256`), or the base64 of a
    /// 32-byte Ed25519 key (`ed25519-sha256`, RFC 8463).
    pub key: std::path::PathBuf,
    /// `rsa-sha256` or `ed25519-sha256`.
    pub algorithm: DkimAlgorithm,
}

/// A DKIM signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    /// RSA with SHA-256 (RFC 6376 §3.3.1).
    RsaSha256,
    /// Ed25519 with SHA-256 (RFC 8463).
    Ed25519Sha256,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileMail {
    smtp_url: Option<String>,
    from: Option<String>,
    reminder_days: Option<Vec<i64>>,
    bounce_token: Option<String>,
    dkim_selector: Option<String>,
    dkim_key: Option<std::path::PathBuf>,
    dkim_algorithm: Option<String>,
    max_connections: Option<u32>,
    max_per_second: Option<u32>,
}

/// Checks `[mail]` (the `--smtp-url` flag first): an smtp(s) URL, a mailbox, reminder days
/// inside the acceptance window and a bounce token of at least 32 characters.
pub(super) fn resolve(file: FileMail, overrides: &Overrides) -> Result<MailSettings, ConfigError> {
    let smtp_url = overrides.smtp_url.clone().or(file.smtp_url);
    if let Some(url) = &smtp_url
        && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
    {
        return Err(ConfigError::Invalid {
            key: "mail.smtp_url",
            message: format!(
                "{} must start with smtp:// or smtps://",
                crate::config::redact_url(url)
            ),
        });
    }
    let mail_from = file
        .from
        .unwrap_or_else(|| "recommande <lre@recommande.localhost>".to_string());
    if mail_from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(ConfigError::Invalid {
            key: "mail.from",
            message: format!(
                "{mail_from:?} is not a mailbox such as `recommande <lre@example.fr>`"
            ),
        });
    }
    let reminder_days = file.reminder_days.unwrap_or_else(|| vec![5, 12]);
    if reminder_days
        .iter()
        .any(|d| !(1..crate::domain::window::WINDOW_DAYS).contains(d))
    {
        return Err(ConfigError::Invalid {
            key: "mail.reminder_days",
            message: format!(
                "{reminder_days:?}: each day must fall inside the {}-day window (1 to {})",
                crate::domain::window::WINDOW_DAYS,
                crate::domain::window::WINDOW_DAYS - 1
            ),
        });
    }
    let bounce_token = file.bounce_token.filter(|t| !t.is_empty());
    if bounce_token.as_ref().is_some_and(|t| t.len() < 32) {
        return Err(ConfigError::Invalid {
            key: "mail.bounce_token",
            message: "must be at least 32 characters".into(),
        });
    }
    let dkim = dkim(file.dkim_selector, file.dkim_key, file.dkim_algorithm)?;
    let max_connections = file.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if !(1..=100).contains(&max_connections) {
        return Err(ConfigError::Invalid {
            key: "mail.max_connections",
            message: format!("{max_connections}: must be from 1 to 100"),
        });
    }
    if let Some(rate) = file.max_per_second
        && !(1..=100_000).contains(&rate)
    {
        return Err(ConfigError::Invalid {
            key: "mail.max_per_second",
            message: format!("{rate}: must be from 1 to 100000 (leave it out for no limit)"),
        });
    }
    Ok(MailSettings {
        smtp_url,
        from: mail_from,
        reminder_days,
        bounce_token,
        dkim,
        relay: RelaySettings {
            max_connections,
            max_per_second: file.max_per_second,
        },
    })
}

/// `dkim_selector` and `dkim_key` together, or neither; the selector a DNS label (RFC 6376
/// §3.1: dot-separated labels of letters, digits and hyphens).
fn dkim(
    selector: Option<String>,
    key: Option<std::path::PathBuf>,
    algorithm: Option<String>,
) -> Result<Option<DkimSettings>, ConfigError> {
    let algorithm = match algorithm.as_deref() {
        None | Some("rsa-sha256") => DkimAlgorithm::RsaSha256,
        Some("ed25519-sha256") => DkimAlgorithm::Ed25519Sha256,
        Some(other) => {
            return Err(ConfigError::Invalid {
                key: "mail.dkim_algorithm",
                message: format!("{other:?}: must be rsa-sha256 or ed25519-sha256"),
            });
        }
    };
    match (selector.filter(|s| !s.is_empty()), key) {
        (None, None) => Ok(None),
        (Some(selector), Some(key)) => {
            let label_ok = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            };
            if !selector.split('.').all(label_ok) {
                return Err(ConfigError::Invalid {
                    key: "mail.dkim_selector",
                    message: format!(
                        "{selector:?}: must be DNS labels of letters, digits and hyphens"
                    ),
                });
            }
            Ok(Some(DkimSettings {
                selector,
                key,
                algorithm,
            }))
        }
        (Some(_), None) => Err(ConfigError::Invalid {
            key: "mail.dkim_key",
            message: "is required with mail.dkim_selector".into(),
        }),
        (None, Some(_)) => Err(ConfigError::Invalid {
            key: "mail.dkim_selector",
            message: "is required with mail.dkim_key".into(),
        }),
    }
}
