//! The top-level keys of the service itself: where it keeps its data, where it listens,
//! its database, how it names itself and how large an upload may be (docs/CONFIGURATION.md,
//! "Settings").

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::source::FileConfig;
use super::{ConfigError, Overrides};

/// Default maximum size of one uploaded document: 25 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 25 * 1024 * 1024;

/// The service itself (top-level keys of the TOML file).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Data directory (SQLite file, documents, development PKI, mail outbox).
    pub data_dir: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// Public base URL of the service (links in mails and PDFs).
    pub public_url: String,
    /// Provider name written in evidence and proofs.
    pub provider_name: String,
    /// Maximum size of an uploaded document.
    pub max_upload_bytes: u64,
}

/// The database (top-level `database_url`).
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `sqlite:…` or `postgres://…`.
    pub url: String,
}

/// The embedded default: one SQLite file inside the data directory.
pub fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite:{}", data_dir.join("recommande.db").display())
}

/// Checks the top-level keys (flags first, then the file and environment, then defaults).
pub(super) fn resolve(
    file: &mut FileConfig,
    overrides: &Overrides,
) -> Result<(ServerSettings, DatabaseSettings), ConfigError> {
    let data_dir = overrides
        .data_dir
        .clone()
        .or(file.data_dir.take())
        .unwrap_or_else(|| PathBuf::from("./data"));
    let listen_text = overrides
        .listen
        .clone()
        .or(file.listen.take())
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let listen: SocketAddr = listen_text.parse().map_err(|_| ConfigError::Invalid {
        key: "listen",
        message: format!("{listen_text:?} is not an address like 127.0.0.1:8080"),
    })?;
    let database_url = overrides
        .database_url
        .clone()
        .or(file.database_url.take())
        .unwrap_or_else(|| default_database_url(&data_dir));
    if !(database_url.starts_with("sqlite:")
        || database_url.starts_with("postgres://")
        || database_url.starts_with("postgresql://"))
    {
        return Err(ConfigError::Invalid {
            key: "database_url",
            message: format!(
                "{} must start with sqlite: or postgres://",
                crate::config::redact_url(&database_url)
            ),
        });
    }
    let public_url = overrides
        .public_url
        .clone()
        .or(file.public_url.take())
        .unwrap_or_else(|| {
            // Links must be reachable: an unspecified listen address (0.0.0.0) is not.
            let host = if listen.ip().is_unspecified() {
                "localhost".to_string()
            } else {
                listen.ip().to_string()
            };
            format!("http://{host}:{}", listen.port())
        })
        .trim_end_matches('/')
        .to_string();
    if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
        return Err(ConfigError::Invalid {
            key: "public_url",
            message: format!("{public_url:?} must be an http:// or https:// URL"),
        });
    }
    let provider_name = file
        .provider_name
        .take()
        .unwrap_or_else(|| "recommande".to_string());
    if provider_name.trim().is_empty() {
        return Err(ConfigError::Invalid {
            key: "provider_name",
            message: "must not be empty".into(),
        });
    }
    let max_upload_bytes = file.max_upload_bytes.unwrap_or(DEFAULT_MAX_UPLOAD_BYTES);
    if max_upload_bytes == 0 {
        return Err(ConfigError::Invalid {
            key: "max_upload_bytes",
            message: "must be positive".into(),
        });
    }
    let server = ServerSettings {
        data_dir,
        listen,
        public_url,
        provider_name,
        max_upload_bytes,
    };
    Ok((server, DatabaseSettings { url: database_url }))
}
