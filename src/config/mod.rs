//! Service settings: built-in defaults, then a TOML file, then `RECOMMANDE_*` environment
//! variables, then command-line flags (each layer overrides the one before). Everything is
//! checked here, at start, so a bad setting stops the service with a precise message rather
//! than failing at 3 a.m.
//!
//! [`Settings`] has one field per TOML section, each resolved and checked by the function of
//! its file below (the top-level keys are grouped in `server`, `database` and `evidence`).

use std::path::PathBuf;

mod archive;
mod collection;
mod evidence;
mod http;
mod log;
mod mail;
mod metrics;
pub mod outbound;
mod pki;
mod provider;
pub mod qualification;
mod rate_limits;
mod renewal;
mod server;
mod source;
mod storage;
mod timestamp;
mod verify;
mod workers;

pub use archive::ArchiveSettings;
pub use collection::CollectionSettings;
pub use evidence::{DEFAULT_RETENTION_YEARS, DEVELOPMENT_EVIDENCE_POLICY, EvidenceSettings};
pub use http::{
    Cidr, DEFAULT_HTTP_HEADER_READ_TIMEOUT_SECONDS, DEFAULT_HTTP_IDLE_TIMEOUT_SECONDS,
    DEFAULT_HTTP_MAX_CONNECTIONS_PER_ADDRESS, HttpSection, HttpSettings,
};
pub use log::{LogSettings, WitnessSettings, WitnessWebhook};
pub use mail::{DkimAlgorithm, DkimSettings, MailSettings, RelaySettings};
pub use metrics::MetricsSettings;
pub use outbound::OutboundSettings;
pub use pki::{
    DEFAULT_DEVELOPMENT_VALIDITY_DAYS, DEFAULT_PKCS11_SESSIONS, KeySource, PinSource,
    Pkcs11Settings, Pkcs11Uri, PkiSettings,
};
pub use qualification::{QUALIFIED_EVIDENCE_POLICY, QualificationMode, Refusal};
pub use rate_limits::{DEFAULT_RATE_LIMITS, RateLimitSettings};
pub use renewal::RenewalSettings;
pub use server::{
    DEFAULT_MAX_UPLOAD_BYTES, DatabaseSettings, ServerSettings, default_database_url,
};
pub use storage::{S3Settings, StorageBackend};
pub use timestamp::{DEVELOPMENT_TSA_POLICY_OID, TimestampMode, TimestampSettings};
pub use verify::{
    DEFAULT_VERIFY_MAX_UPLOAD_BYTES, DEFAULT_VERIFY_REQUESTS_PER_MINUTE, VerifySettings,
};
pub use workers::{DEFAULT_DISPATCH_CHUNK, WorkerSettings};

/// A configuration problem, reported before the service starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for our settings.
    #[error("invalid configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A setting has an invalid value.
    #[error("invalid setting {key}: {message}")]
    Invalid {
        /// Setting name as written in the TOML file.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// `[qualification] mode = "qualified"` with prerequisites unmet, every one listed.
    #[error(
        "qualified mode refused: {}",
        refusals.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    Unqualified {
        /// Each unmet prerequisite with the setting to fix.
        refusals: Vec<Refusal>,
    },
}

/// Resolved settings, one field per TOML section.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Data directory, listen address, public URL, provider name, upload size (top-level
    /// keys).
    pub server: ServerSettings,
    /// The database (`database_url`).
    pub database: DatabaseSettings,
    /// Retention and policy of the evidence (`retention_years`, `evidence_policy`).
    pub evidence: EvidenceSettings,
    /// The public verification (`[verify]`).
    pub verify: VerifySettings,
    /// The provider's legal identity (`[provider]`).
    pub provider: crate::core::provider::ProviderIdentity,
    /// Connection limits and trusted proxies of the HTTP server (`[http]`).
    pub http: HttpSection,
    /// In-memory request quotas per tenant and per client address (`[rate_limits]`).
    pub rate_limits: RateLimitSettings,
    /// Certificates and keys (`[pki]`).
    pub pki: PkiSettings,
    /// Timestamping (`[timestamp]`).
    pub timestamp: TimestampSettings,
    /// Mail (`[mail]`).
    pub mail: MailSettings,
    /// The transparency log's tree heads and witnesses (`[log]`).
    pub log: LogSettings,
    /// `GET /metrics` (`[metrics]`).
    pub metrics: MetricsSettings,
    /// The legal interest rates (`[collection]`).
    pub collection: CollectionSettings,
    /// Master keys and evidence retention (`[archive]`).
    pub archive: ArchiveSettings,
    /// Archive timestamp renewal (`[renewal]`).
    pub renewal: RenewalSettings,
    /// The background workers (`[workers]`).
    pub workers: WorkerSettings,
    /// Where the (encrypted) document bytes live (`[storage]`).
    pub storage: StorageBackend,
    /// Where webhook and witness deliveries may go (`[outbound]`).
    pub outbound: OutboundSettings,
    /// Whether the installation claims to be a qualified service (`[qualification]`).
    pub qualification: QualificationMode,
}

/// A secret setting: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(String);

impl SecretText {
    /// Wraps a secret.
    pub fn new(text: String) -> Self {
        SecretText(text)
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(***)")
    }
}

/// What the command line may override (flags and their `RECOMMANDE_*` variables via clap).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config FILE`.
    pub config_file: Option<PathBuf>,
    /// `--data-dir DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--listen ADDR`.
    pub listen: Option<String>,
    /// `--database-url URL`.
    pub database_url: Option<String>,
    /// `--smtp-url URL`.
    pub smtp_url: Option<String>,
    /// `--public-url URL`.
    pub public_url: Option<String>,
}

impl Settings {
    /// Resolves settings from the process environment.
    pub fn load(overrides: &Overrides) -> Result<Settings, ConfigError> {
        Settings::load_from(overrides, |name| std::env::var(name).ok())
    }

    /// Resolves settings with an explicit environment lookup (tests pass a map).
    pub fn load_from(
        overrides: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let file = source::read(overrides, env)?;
        Settings::resolve(file, overrides)
    }

    /// Checks every section, in the order the service has always reported its first error.
    fn resolve(
        mut file: source::FileConfig,
        overrides: &Overrides,
    ) -> Result<Settings, ConfigError> {
        let (server, database) = server::resolve(&mut file, overrides)?;
        let verify = verify::resolve(&file.verify)?;
        let provider =
            provider::resolve(std::mem::take(&mut file.provider), &server.provider_name)?;
        let http = http::resolve(&file.http)?;
        let rate_limits = rate_limits::resolve(&file.rate_limits)?;
        let retention_years = evidence::retention_years(file.retention_years)?;
        let pki = pki::resolve(file.pki)?;
        let renewal = renewal::resolve(&file.renewal)?;
        let timestamp = timestamp::resolve(file.timestamp)?;
        let mail = mail::resolve(file.mail, overrides)?;
        let workers = workers::resolve(&file.workers)?;
        let log = log::resolve(file.log)?;
        let storage = storage::resolve(file.storage)?;
        let outbound = outbound::resolve(file.outbound)?;
        let metrics = metrics::resolve(file.metrics)?;
        let archive = archive::resolve(file.archive)?;
        let qualification = qualification::resolve(&file.qualification)?;
        let evidence = EvidenceSettings {
            retention_years,
            policy: evidence::policy(file.evidence_policy)?,
        };
        let mut settings = Settings {
            server,
            database,
            evidence,
            verify,
            provider,
            http,
            rate_limits,
            pki,
            timestamp,
            mail,
            log,
            metrics,
            collection: collection::resolve(file.collection),
            archive,
            renewal,
            workers,
            storage,
            outbound,
            qualification,
        };
        qualification::enforce(&mut settings)?;
        Ok(settings)
    }

    /// Where webhook and witness deliveries may go: public addresses, the allowed private
    /// ranges, and https only unless the development PKI is in use.
    pub fn outbound_policy(&self) -> outbound::OutboundPolicy {
        outbound::OutboundPolicy {
            allowed_private: self.outbound.allowed_private.clone(),
            require_https: !self.pki.is_development(),
        }
    }
}

/// Drops credentials from a URL before it is shown in an error or a log line.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests;
