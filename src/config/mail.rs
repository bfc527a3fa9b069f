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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileMail {
    smtp_url: Option<String>,
    from: Option<String>,
    reminder_days: Option<Vec<i64>>,
    bounce_token: Option<String>,
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
    Ok(MailSettings {
        smtp_url,
        from: mail_from,
        reminder_days,
        bounce_token,
    })
}
