//! Where settings come from: the TOML file, then the `RECOMMANDE_*` environment variables
//! written over it, parsed into the file's shape (docs/CONFIGURATION.md, "Where settings
//! come from"). The flags are applied later, section by section.

use std::path::PathBuf;

use serde::Deserialize;

use super::archive::FileArchive;
use super::collection::FileCollection;
use super::http::FileHttp;
use super::log::FileLog;
use super::mail::FileMail;
use super::metrics::FileMetrics;
use super::outbound::FileOutbound;
use super::pki::FilePki;
use super::rate_limits::FileRateLimits;
use super::renewal::FileRenewal;
use super::storage::FileStorage;
use super::timestamp::FileTimestamp;
use super::verify::FileVerify;
use super::workers::FileWorkers;
use super::{ConfigError, Overrides};

/// The whole file, after the environment was written over it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) data_dir: Option<PathBuf>,
    pub(super) listen: Option<String>,
    pub(super) database_url: Option<String>,
    pub(super) public_url: Option<String>,
    pub(super) provider_name: Option<String>,
    pub(super) max_upload_bytes: Option<u64>,
    pub(super) retention_years: Option<u32>,
    pub(super) evidence_policy: Option<String>,
    #[serde(default)]
    pub(super) verify: FileVerify,
    #[serde(default)]
    pub(super) provider: super::provider::FileProvider,
    #[serde(default)]
    pub(super) http: FileHttp,
    #[serde(default)]
    pub(super) rate_limits: FileRateLimits,
    #[serde(default)]
    pub(super) mail: FileMail,
    #[serde(default)]
    pub(super) pki: FilePki,
    #[serde(default)]
    pub(super) timestamp: FileTimestamp,
    #[serde(default)]
    pub(super) log: FileLog,
    #[serde(default)]
    pub(super) collection: FileCollection,
    #[serde(default)]
    pub(super) archive: FileArchive,
    #[serde(default)]
    pub(super) storage: FileStorage,
    #[serde(default)]
    pub(super) metrics: FileMetrics,
    #[serde(default)]
    pub(super) renewal: FileRenewal,
    #[serde(default)]
    pub(super) outbound: FileOutbound,
    #[serde(default)]
    pub(super) workers: FileWorkers,
    #[serde(default)]
    pub(super) qualification: super::qualification::FileQualification,
}

/// Environment variables read on top of the file: (variable, TOML section — dotted for a
/// nested table —, key, is integer).
const ENVIRONMENT: &[(&str, Option<&str>, &str, bool)] = &[
    (
        "RECOMMANDE_STORAGE_BACKEND",
        Some("storage"),
        "backend",
        false,
    ),
    ("RECOMMANDE_S3_BUCKET", Some("storage.s3"), "bucket", false),
    ("RECOMMANDE_S3_PREFIX", Some("storage.s3"), "prefix", false),
    (
        "RECOMMANDE_S3_ENDPOINT",
        Some("storage.s3"),
        "endpoint",
        false,
    ),
    ("RECOMMANDE_S3_REGION", Some("storage.s3"), "region", false),
    (
        "RECOMMANDE_S3_ACCESS_KEY_ID",
        Some("storage.s3"),
        "access_key_id",
        false,
    ),
    (
        "RECOMMANDE_S3_SECRET_ACCESS_KEY",
        Some("storage.s3"),
        "secret_access_key",
        false,
    ),
    (
        "RECOMMANDE_S3_ALLOW_HTTP",
        Some("storage.s3"),
        "allow_http",
        false,
    ),
    (
        "RECOMMANDE_OUTBOUND_ALLOWED_PRIVATE",
        Some("outbound"),
        "allowed_private",
        false,
    ),
    ("RECOMMANDE_DATA_DIR", None, "data_dir", false),
    ("RECOMMANDE_LISTEN", None, "listen", false),
    ("RECOMMANDE_DATABASE_URL", None, "database_url", false),
    ("RECOMMANDE_PUBLIC_URL", None, "public_url", false),
    ("RECOMMANDE_PROVIDER_NAME", None, "provider_name", false),
    (
        "RECOMMANDE_MAX_UPLOAD_BYTES",
        None,
        "max_upload_bytes",
        true,
    ),
    ("RECOMMANDE_RETENTION_YEARS", None, "retention_years", true),
    (
        "RECOMMANDE_MASTER_KEY",
        Some("archive"),
        "master_key",
        false,
    ),
    ("RECOMMANDE_EVIDENCE_POLICY", None, "evidence_policy", false),
    (
        "RECOMMANDE_QUALIFICATION_MODE",
        Some("qualification"),
        "mode",
        false,
    ),
    ("RECOMMANDE_METRICS_TOKEN", Some("metrics"), "token", false),
    (
        "RECOMMANDE_OTLP_TRACES_ENDPOINT",
        Some("metrics"),
        "otlp_traces_endpoint",
        false,
    ),
    (
        "RECOMMANDE_ARCHIVE_EVIDENCE_RETENTION",
        Some("archive"),
        "evidence_retention",
        false,
    ),
    (
        "RECOMMANDE_VERIFY_MAX_UPLOAD_BYTES",
        Some("verify"),
        "max_upload_bytes",
        true,
    ),
    (
        "RECOMMANDE_VERIFY_REQUESTS_PER_MINUTE",
        Some("verify"),
        "requests_per_minute",
        true,
    ),
    (
        "RECOMMANDE_HTTP_HEADER_READ_TIMEOUT_SECONDS",
        Some("http"),
        "header_read_timeout_seconds",
        true,
    ),
    (
        "RECOMMANDE_HTTP_IDLE_TIMEOUT_SECONDS",
        Some("http"),
        "idle_timeout_seconds",
        true,
    ),
    (
        "RECOMMANDE_HTTP_MAX_CONNECTIONS_PER_ADDRESS",
        Some("http"),
        "max_connections_per_address",
        true,
    ),
    (
        "RECOMMANDE_RATE_LIMITS_API_PER_MINUTE",
        Some("rate_limits"),
        "api_per_minute",
        true,
    ),
    (
        "RECOMMANDE_RATE_LIMITS_DEPOSITS_PER_MINUTE",
        Some("rate_limits"),
        "deposits_per_minute",
        true,
    ),
    (
        "RECOMMANDE_RATE_LIMITS_BATCHES_PER_MINUTE",
        Some("rate_limits"),
        "batches_per_minute",
        true,
    ),
    (
        "RECOMMANDE_RATE_LIMITS_DOCUMENTS_PER_MINUTE",
        Some("rate_limits"),
        "documents_per_minute",
        true,
    ),
    (
        "RECOMMANDE_RATE_LIMITS_FAILED_AUTH_PER_MINUTE",
        Some("rate_limits"),
        "failed_auth_per_minute",
        true,
    ),
    (
        "RECOMMANDE_RATE_LIMITS_RECIPIENT_PER_MINUTE",
        Some("rate_limits"),
        "recipient_per_minute",
        true,
    ),
    (
        "RECOMMANDE_RATE_LIMITS_OTP_PER_LETTER_PER_HOUR",
        Some("rate_limits"),
        "otp_per_letter_per_hour",
        true,
    ),
    (
        "RECOMMANDE_RATE_LIMITS_OTP_PER_ADDRESS_PER_HOUR",
        Some("rate_limits"),
        "otp_per_address_per_hour",
        true,
    ),
    ("RECOMMANDE_MAIL_SMTP_URL", Some("mail"), "smtp_url", false),
    (
        "RECOMMANDE_COLLECTION_RATES_FILE",
        Some("collection"),
        "rates_file",
        false,
    ),
    (
        "RECOMMANDE_COLLECTION_MISSING_RATE",
        Some("collection"),
        "missing_rate",
        false,
    ),
    (
        "RECOMMANDE_WORKERS_SHUTDOWN_GRACE_SECONDS",
        Some("workers"),
        "shutdown_grace_seconds",
        true,
    ),
    (
        "RECOMMANDE_WORKERS_DISPATCH_CHUNK",
        Some("workers"),
        "dispatch_chunk",
        true,
    ),
    (
        "RECOMMANDE_LOG_HEAD_INTERVAL_SECONDS",
        Some("log"),
        "head_interval_seconds",
        true,
    ),
    (
        "RECOMMANDE_LOG_HEAD_EVERY_LEAVES",
        Some("log"),
        "head_every_leaves",
        true,
    ),
    ("RECOMMANDE_MAIL_FROM", Some("mail"), "from", false),
    (
        "RECOMMANDE_MAIL_BOUNCE_TOKEN",
        Some("mail"),
        "bounce_token",
        false,
    ),
    (
        "RECOMMANDE_MAIL_DKIM_SELECTOR",
        Some("mail"),
        "dkim_selector",
        false,
    ),
    ("RECOMMANDE_MAIL_DKIM_KEY", Some("mail"), "dkim_key", false),
    (
        "RECOMMANDE_MAIL_MAX_CONNECTIONS",
        Some("mail"),
        "max_connections",
        true,
    ),
    (
        "RECOMMANDE_MAIL_MAX_PER_SECOND",
        Some("mail"),
        "max_per_second",
        true,
    ),
    (
        "RECOMMANDE_MAIL_DKIM_ALGORITHM",
        Some("mail"),
        "dkim_algorithm",
        false,
    ),
    (
        "RECOMMANDE_PKI_SEAL_CERTIFICATE",
        Some("pki"),
        "seal_certificate",
        false,
    ),
    ("RECOMMANDE_PKI_SEAL_KEY", Some("pki"), "seal_key", false),
    (
        "RECOMMANDE_PKI_TSA_CERTIFICATE",
        Some("pki"),
        "tsa_certificate",
        false,
    ),
    ("RECOMMANDE_PKI_TSA_KEY", Some("pki"), "tsa_key", false),
    ("RECOMMANDE_PKI_ROOTS", Some("pki"), "roots", false),
    (
        "RECOMMANDE_PKI_PKCS11_MODULE",
        Some("pki.pkcs11"),
        "module",
        false,
    ),
    (
        "RECOMMANDE_PKI_PKCS11_PIN",
        Some("pki.pkcs11"),
        "pin",
        false,
    ),
    (
        "RECOMMANDE_PKI_PKCS11_SESSIONS",
        Some("pki.pkcs11"),
        "sessions",
        true,
    ),
    (
        "RECOMMANDE_TIMESTAMP_MODE",
        Some("timestamp"),
        "mode",
        false,
    ),
    ("RECOMMANDE_TIMESTAMP_URL", Some("timestamp"), "url", false),
    (
        "RECOMMANDE_TIMESTAMP_POLICY_OID",
        Some("timestamp"),
        "policy_oid",
        false,
    ),
    (
        "RECOMMANDE_TIMESTAMP_TIMEOUT_SECONDS",
        Some("timestamp"),
        "timeout_seconds",
        true,
    ),
    (
        "RECOMMANDE_TIMESTAMP_ROOTS",
        Some("timestamp"),
        "roots",
        false,
    ),
];

/// Suffix of a variable naming a file that holds the value (Docker and Kubernetes secrets,
/// systemd credentials): `RECOMMANDE_MASTER_KEY_FILE=/run/secrets/master_key`.
pub(super) const FILE_SUFFIX: &str = "_FILE";

/// The environment with `*_FILE` variables read: `NAME` when set, else the content of the
/// file `NAME_FILE` names (one final line break removed). Both set, or a file that cannot be
/// read, is an error — kept in `failure` and reported once the environment was walked.
fn with_files<'a>(
    env: &'a impl Fn(&str) -> Option<String>,
    failure: &'a std::cell::RefCell<Option<ConfigError>>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name: &str| {
        let file_variable = format!("{name}{FILE_SUFFIX}");
        let direct = env(name);
        let Some(path) = env(&file_variable) else {
            return direct;
        };
        let mut failure = failure.borrow_mut();
        if direct.is_some() {
            failure.get_or_insert(ConfigError::Parse {
                path: PathBuf::from("<environment>"),
                message: format!("{name} and {file_variable} are both set: keep one"),
            });
            return None;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let value = text.strip_suffix('\n').unwrap_or(&text);
                Some(value.strip_suffix('\r').unwrap_or(value).to_string())
            }
            Err(source) => {
                failure.get_or_insert(ConfigError::Read {
                    path: PathBuf::from(path),
                    source,
                });
                None
            }
        }
    }
}

/// Reads the file named by `--config` (none: an empty table), writes the environment over
/// it (every variable also as `NAME_FILE`, see [`with_files`]) and parses the result.
pub(super) fn read(
    overrides: &Overrides,
    env: impl Fn(&str) -> Option<String>,
) -> Result<FileConfig, ConfigError> {
    let failure = std::cell::RefCell::new(None);
    let env = with_files(&env, &failure);
    let mut table = match &overrides.config_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            text.parse::<toml::Table>()
                .map_err(|e| ConfigError::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })?
        }
        None => toml::Table::new(),
    };
    refuse_pin_in_file(&table)?;
    apply_environment(&mut table, &env)?;
    apply_witness_environment(&mut table, &env)?;
    if let Some(failure) = failure.borrow_mut().take() {
        return Err(failure);
    }
    let path = overrides
        .config_file
        .clone()
        .unwrap_or_else(|| PathBuf::from("<environment>"));
    let file: FileConfig = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Parse {
            path,
            message: e.to_string(),
        })?;
    Ok(file)
}

/// A token PIN is a secret: it comes from the environment or a file of its own, never from
/// the configuration file (which is copied, versioned and shown).
fn refuse_pin_in_file(table: &toml::Table) -> Result<(), ConfigError> {
    let pin = table
        .get("pki")
        .and_then(|p| p.get("pkcs11"))
        .and_then(|p| p.get("pin"));
    match pin {
        Some(_) => Err(ConfigError::Invalid {
            key: "pki.pkcs11.pin",
            message: "the token PIN may not be written in the configuration file: use pin_file = \"/path\" or RECOMMANDE_PKI_PKCS11_PIN".into(),
        }),
        None => Ok(()),
    }
}

/// Writes every variable of [`ENVIRONMENT`] that is set into its TOML section.
fn apply_environment(
    table: &mut toml::Table,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for (variable, section, key, integer) in ENVIRONMENT {
        let Some(raw) = env(variable) else { continue };
        let value = if *integer {
            let n: i64 = raw.trim().parse().map_err(|_| ConfigError::Invalid {
                key,
                message: format!("{variable}={raw:?} is not an integer"),
            })?;
            toml::Value::Integer(n)
        } else {
            toml::Value::String(raw)
        };
        let value = match (*key, value) {
            // A boolean from the environment: `true`/`false` (also 1/0).
            ("allow_http", toml::Value::String(raw)) => match raw.trim() {
                "true" | "1" => toml::Value::Boolean(true),
                "false" | "0" | "" => toml::Value::Boolean(false),
                _ => {
                    return Err(ConfigError::Invalid {
                        key,
                        message: format!("{variable}={raw:?} is not true or false"),
                    });
                }
            },
            (_, value) => value,
        };
        let mut target = &mut *table;
        for part in section.iter().flat_map(|s| s.split('.')) {
            target = match target
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            {
                toml::Value::Table(t) => t,
                _ => {
                    return Err(ConfigError::Invalid {
                        key: "pki/timestamp",
                        message: format!("[{}] must be a table", section.unwrap_or(part)),
                    });
                }
            };
        }
        target.insert(key.to_string(), value);
    }
    Ok(())
}

/// Witness lists replace the file's: addresses separated by commas, webhooks separated by
/// whitespace, each `URL#SECRET` (a witness URL never has a fragment of its own).
fn apply_witness_environment(
    table: &mut toml::Table,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for (variable, key) in [
        ("RECOMMANDE_LOG_WITNESS_EMAILS", "emails"),
        ("RECOMMANDE_LOG_WITNESS_WEBHOOKS", "webhooks"),
    ] {
        let Some(raw) = env(variable) else { continue };
        let items = if key == "emails" {
            raw.split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| toml::Value::String(a.to_string()))
                .collect::<Vec<_>>()
        } else {
            let mut items = Vec::new();
            for entry in raw.split_whitespace() {
                let (url, secret) = entry.rsplit_once('#').ok_or_else(|| ConfigError::Invalid {
                    key: "log.witnesses.webhooks",
                    message: format!(
                        "{variable}: each entry must be URL#SECRET (the secret after a #)"
                    ),
                })?;
                let mut item = toml::Table::new();
                item.insert("url".into(), toml::Value::String(url.to_string()));
                item.insert("secret".into(), toml::Value::String(secret.to_string()));
                items.push(toml::Value::Table(item));
            }
            items
        };
        let log = table
            .entry("log".to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let witnesses = match log {
            toml::Value::Table(t) => t
                .entry("witnesses".to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new())),
            _ => {
                return Err(ConfigError::Invalid {
                    key: "log",
                    message: "[log] must be a table".into(),
                });
            }
        };
        match witnesses {
            toml::Value::Table(t) => {
                t.insert(key.to_string(), toml::Value::Array(items));
            }
            _ => {
                return Err(ConfigError::Invalid {
                    key: "log.witnesses",
                    message: "[log.witnesses] must be a table".into(),
                });
            }
        }
    }
    Ok(())
}
