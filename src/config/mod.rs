//! Service settings: built-in defaults, then a TOML file, then `RECOMMANDE_*` environment
//! variables, then command-line flags (each layer overrides the one before). Everything is
//! checked here, at start, so a bad setting stops the service with a precise message rather
//! than failing at 3 a.m.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Default maximum size of one uploaded document: 25 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 25 * 1024 * 1024;
/// Default maximum size of a bundle uploaded to the public `/verify` page: 200 MiB (a letter
/// of several large documents and its proofs).
pub const DEFAULT_VERIFY_MAX_UPLOAD_BYTES: u64 = 200 * 1024 * 1024;
/// Default number of public verifications (`/verify`, `/v1/verify/…`) per client address and
/// minute.
pub const DEFAULT_VERIFY_REQUESTS_PER_MINUTE: u32 = 30;
/// Default `[http] header_read_timeout_seconds`: a client has this long to send a request's
/// whole head (request line and headers), so a slow client cannot hold a connection open.
pub const DEFAULT_HTTP_HEADER_READ_TIMEOUT_SECONDS: u64 = 10;
/// Default `[http] idle_timeout_seconds`: a keep-alive connection with no traffic is closed
/// after this long.
pub const DEFAULT_HTTP_IDLE_TIMEOUT_SECONDS: u64 = 60;
/// Default `[http] max_connections_per_address`: open connections from one client IP.
pub const DEFAULT_HTTP_MAX_CONNECTIONS_PER_ADDRESS: u32 = 64;
/// Default `[rate_limits]`: see [`RateLimitSettings::default`].
pub const DEFAULT_RATE_LIMITS: RateLimitSettings = RateLimitSettings {
    api_per_minute: 6_000,
    deposits_per_minute: 600,
    batches_per_minute: 60,
    documents_per_minute: 600,
    failed_auth_per_minute: 20,
    recipient_per_minute: 120,
    otp_per_letter_per_hour: 10,
    otp_per_address_per_hour: 30,
};
/// Default retention: CPCE R.53-2/R.53-3 require at least one year; we keep ten.
pub const DEFAULT_RETENTION_YEARS: u32 = 10;
pub use crate::core::pki::{DEVELOPMENT_EVIDENCE_POLICY, DEVELOPMENT_TSA_POLICY_OID};

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
}

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

/// Operator-supplied certificates and keys (production). All absent = development PKI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiSettings {
    /// PEM chain of the seal certificate (leaf first).
    pub seal_certificate: Option<PathBuf>,
    /// PKCS#8 PEM key of the seal certificate.
    pub seal_key: Option<PathBuf>,
    /// PEM chain of the embedded TSA's certificate.
    pub tsa_certificate: Option<PathBuf>,
    /// PKCS#8 PEM key of the embedded TSA.
    pub tsa_key: Option<PathBuf>,
    /// PEM trust anchors that verify the seal and timestamp chains.
    pub roots: Option<PathBuf>,
    /// PEM files of retired roots (after a key rotation): not used to sign, still trusted to
    /// verify archived evidence, served at `/v1/trust/roots.pem` and put in bundles.
    pub retired_roots: Vec<PathBuf>,
    /// Validity in days of the leaf certificates a generated development PKI gets (default
    /// 3652); short values let tests reach a certificate's expiry.
    pub development_validity_days: u32,
}

impl Default for PkiSettings {
    fn default() -> Self {
        PkiSettings {
            seal_certificate: None,
            seal_key: None,
            tsa_certificate: None,
            tsa_key: None,
            roots: None,
            retired_roots: Vec::new(),
            development_validity_days: DEFAULT_DEVELOPMENT_VALIDITY_DAYS,
        }
    }
}

pub use crate::core::pki::DEFAULT_DEVELOPMENT_VALIDITY_DAYS;

impl PkiSettings {
    /// True when no production key material is configured.
    pub fn is_development(&self) -> bool {
        self.seal_certificate.is_none()
            && self.seal_key.is_none()
            && self.tsa_certificate.is_none()
            && self.tsa_key.is_none()
            && self.roots.is_none()
    }
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Data directory (SQLite file, documents, development PKI, mail outbox).
    pub data_dir: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// `sqlite:…` or `postgres://…`.
    pub database_url: String,
    /// Public base URL of the service (links in mails and PDFs).
    pub public_url: String,
    /// Provider name written in evidence and proofs.
    pub provider_name: String,
    /// Maximum size of an uploaded document.
    pub max_upload_bytes: u64,
    /// Maximum size of a bundle uploaded to the public `/verify` page.
    pub verify_max_upload_bytes: u64,
    /// Public verifications allowed per client address and minute.
    pub verify_requests_per_minute: u32,
    /// Retention of content and evidence, in years (≥ 1).
    pub retention_years: u32,
    /// Evidence policy URI; `None` = development policy or the production default.
    pub evidence_policy: Option<String>,
    /// Certificates and keys.
    pub pki: PkiSettings,
    /// Timestamping mode.
    pub timestamp: TimestampMode,
    /// TSA policy OID of the embedded TSA.
    pub tsa_policy_oid: String,
    /// Timeout of a remote TSA request, seconds.
    pub tsa_timeout_seconds: u64,
    /// Extra PEM trust anchors for a remote TSA's certificates (served with our roots).
    pub remote_tsa_roots: Option<PathBuf>,
    /// SMTP relay URL; `None` writes `.eml` files into `DATA_DIR/mail` (embedded default).
    pub smtp_url: Option<String>,
    /// The service's sender mailbox (`Name <address>`): never a letter's sender.
    pub mail_from: String,
    /// Days after the notification on which reminders are sent (default 5 and 12).
    pub reminder_days: Vec<i64>,
    /// Bearer token the mail system uses to post bounces to `/v1/bounces` (unset: disabled).
    pub bounce_token: Option<String>,
    /// A signed tree head of the transparency log is issued at least this often (seconds)
    /// while the log grows.
    pub log_head_interval_seconds: u64,
    /// … or as soon as this many leaves were appended since the last one.
    pub log_head_every_leaves: u64,
    /// Outside witnesses that receive every signed tree head (`[log.witnesses]`).
    pub log_witnesses: WitnessSettings,
    /// Bearer token of `GET /metrics` (`[metrics] token`); unset and not public: disabled.
    pub metrics_token: Option<SecretText>,
    /// `[metrics] public = true`: `GET /metrics` without a token (a private network only).
    pub metrics_public: bool,
    /// Connection limits of the HTTP server (`[http]`).
    pub http: HttpSettings,
    /// `[http] trusted_proxies`: only a TCP peer inside one of these networks is believed
    /// when it names the client in `Forwarded` or `X-Forwarded-For`. Empty by default.
    pub trusted_proxies: Vec<Cidr>,
    /// In-memory request quotas per tenant and per client address (`[rate_limits]`).
    pub rate_limits: RateLimitSettings,
    /// An operator's rates table (TOML, same format as `src/collection/rates.toml`) replacing
    /// the one built in, e.g. with a newly published half-year.
    pub collection_rates_file: Option<PathBuf>,
    /// `[collection] missing_rate`: `apply_latest` (default) or `refuse` for letters needing
    /// a half-year absent from the rates table.
    pub collection_missing_rate: crate::domain::collection::MissingRate,
    /// A master key `<id>:<base64>` (`RECOMMANDE_MASTER_KEY` or `[archive] master_key`):
    /// the active key when set.
    pub master_key: Option<SecretText>,
    /// Master key files (`[archive] master_key_files`), in order; the first is active unless
    /// `master_key` is set. None at all: a development key in `DATA_DIR/keys/`.
    pub master_key_files: Vec<PathBuf>,
    /// `[workers] shutdown_grace_seconds`: at SIGTERM or Ctrl-C, how long the background
    /// workers' passes in progress (and batch deposits, webhook attempts) may take to
    /// finish before they are cut short and their claims given back (default 15).
    pub shutdown_grace_seconds: u64,
    /// Archive timestamp renewal (`[renewal] interval_seconds`): how often due records are
    /// renewed.
    pub renewal_interval_seconds: u64,
    /// `[renewal] margin_days`: records whose newest token's TSA certificate ends within this
    /// many days are renewed (RFC 4998 §5.2: before the certificate expires).
    pub renewal_margin_days: u32,
    /// `[archive] evidence_retention`: `None` = `forever` (default); `Some(n)` = the parties'
    /// personal data outside the sealed evidence is erased `n` years after `retain_until`.
    pub evidence_retention_years: Option<u32>,
    /// Where the (encrypted) document bytes live (`[storage]`).
    pub storage: StorageBackend,
    /// `[outbound] allowed_private`: non-public address ranges webhook and witness
    /// deliveries may reach (on-premise receivers); none by default (see src/net_guard.rs).
    pub outbound_allowed_private: Vec<crate::infra::net_guard::IpRange>,
}

/// Where document bytes are stored. Either way they are ciphertext: encryption happens above
/// the back end.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StorageBackend {
    /// `DATA_DIR/documents/` (embedded default).
    #[default]
    Filesystem,
    /// An S3-compatible bucket.
    S3(S3Settings),
}

/// `[storage.s3]`: an S3-compatible bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket (no leading or trailing `/`; may be empty).
    pub prefix: String,
    /// Endpoint URL of a non-AWS service (MinIO, Garage, Ceph…); `None`: AWS for `region`.
    pub endpoint: Option<String>,
    /// Region (signing region for other services).
    pub region: String,
    /// Access key id; `None`: the AWS environment (`AWS_*` variables, instance metadata).
    pub access_key_id: Option<String>,
    /// Secret access key, with `access_key_id`.
    pub secret_access_key: Option<SecretText>,
    /// Allows a plain `http://` endpoint (a local test server only).
    pub allow_http: bool,
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

/// Connection limits of the HTTP server, so that slow or greedy clients cannot exhaust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Time allowed to receive a request's whole head.
    pub header_read_timeout: std::time::Duration,
    /// Time a connection may stay without any traffic between requests.
    pub idle_timeout: std::time::Duration,
    /// Open connections allowed per client IP address; more are closed at once.
    pub max_connections_per_address: u32,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_read_timeout: std::time::Duration::from_secs(
                DEFAULT_HTTP_HEADER_READ_TIMEOUT_SECONDS,
            ),
            idle_timeout: std::time::Duration::from_secs(DEFAULT_HTTP_IDLE_TIMEOUT_SECONDS),
            max_connections_per_address: DEFAULT_HTTP_MAX_CONNECTIONS_PER_ADDRESS,
        }
    }
}

/// Request quotas (`[rate_limits]`), each a token bucket of that many requests refilled
/// evenly over its window (so a full quota may be spent in one burst). Kept in memory by one
/// process: several instances behind a load balancer each apply them on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Authenticated API requests per tenant and minute, every route together.
    pub api_per_minute: u32,
    /// `POST /v1/letters` per tenant and minute.
    pub deposits_per_minute: u32,
    /// `POST /v1/batches` per tenant and minute.
    pub batches_per_minute: u32,
    /// `POST /v1/documents` per tenant and minute.
    pub documents_per_minute: u32,
    /// Refused API keys (401) per client address and minute; past it, the address gets 429
    /// before its key is even looked at.
    pub failed_auth_per_minute: u32,
    /// Requests to the recipient pages `/r/…` and the recipient API `/v1/recipient/…` per
    /// client address and minute.
    pub recipient_per_minute: u32,
    /// Code requests per letter link and hour (on top of the lifecycle's own, stored,
    /// limit of codes actually sent).
    pub otp_per_letter_per_hour: u32,
    /// Code requests per client address and hour, all letters together.
    pub otp_per_address_per_hour: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        DEFAULT_RATE_LIMITS
    }
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a
/// network of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: std::net::IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `address[/prefix]`; the address bits past the prefix must be zero.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: std::net::IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or network"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix must be 0 to {max}"))?,
        };
        let cidr = Cidr { network, prefix };
        if !cidr.contains(network) || cidr.masked(network) != Some(bits(network)) {
            return Err(format!(
                "{text:?} has address bits set past the /{prefix} prefix"
            ));
        }
        Ok(cidr)
    }

    /// The address bits kept by the prefix, `None` for the other IP version.
    fn masked(&self, address: std::net::IpAddr) -> Option<u128> {
        if address.is_ipv4() != self.network.is_ipv4() {
            return None;
        }
        let width = if address.is_ipv4() { 32 } else { 128 };
        let shift = width - u32::from(self.prefix);
        let value = bits(address);
        Some(if shift >= 128 {
            0
        } else {
            (value >> shift) << shift
        })
    }

    /// Whether `address` is inside the network. An IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.1`) counts as its IPv4 address.
    pub fn contains(&self, address: std::net::IpAddr) -> bool {
        let address = address.to_canonical();
        self.masked(address) == Some(self.masked(self.network).unwrap_or_default())
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn bits(address: std::net::IpAddr) -> u128 {
    match address {
        std::net::IpAddr::V4(a) => u128::from(u32::from(a)),
        std::net::IpAddr::V6(a) => u128::from(a),
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    database_url: Option<String>,
    public_url: Option<String>,
    provider_name: Option<String>,
    max_upload_bytes: Option<u64>,
    retention_years: Option<u32>,
    evidence_policy: Option<String>,
    #[serde(default)]
    verify: FileVerify,
    #[serde(default)]
    http: FileHttp,
    #[serde(default)]
    rate_limits: FileRateLimits,
    #[serde(default)]
    mail: FileMail,
    #[serde(default)]
    pki: FilePki,
    #[serde(default)]
    timestamp: FileTimestamp,
    #[serde(default)]
    log: FileLog,
    #[serde(default)]
    collection: FileCollection,
    #[serde(default)]
    archive: FileArchive,
    #[serde(default)]
    storage: FileStorage,
    #[serde(default)]
    metrics: FileMetrics,
    #[serde(default)]
    renewal: FileRenewal,
    #[serde(default)]
    outbound: FileOutbound,
    #[serde(default)]
    workers: FileWorkers,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWorkers {
    shutdown_grace_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOutbound {
    /// A list of ranges, or (from the environment) one string of comma-separated ranges.
    allowed_private: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStorage {
    backend: Option<String>,
    s3: Option<FileS3>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileS3 {
    bucket: Option<String>,
    prefix: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    allow_http: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMetrics {
    token: Option<String>,
    public: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRenewal {
    interval_seconds: Option<u64>,
    margin_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCollection {
    rates_file: Option<PathBuf>,
    missing_rate: Option<crate::domain::collection::MissingRate>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileArchive {
    master_key: Option<String>,
    evidence_retention: Option<toml::Value>,
    #[serde(default)]
    master_key_files: Vec<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLog {
    head_interval_seconds: Option<u64>,
    head_every_leaves: Option<u64>,
    #[serde(default)]
    witnesses: FileWitnesses,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWitnesses {
    #[serde(default)]
    emails: Vec<String>,
    #[serde(default)]
    webhooks: Vec<FileWitnessWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWitnessWebhook {
    url: String,
    secret: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHttp {
    header_read_timeout_seconds: Option<u64>,
    idle_timeout_seconds: Option<u64>,
    max_connections_per_address: Option<u32>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRateLimits {
    api_per_minute: Option<u32>,
    deposits_per_minute: Option<u32>,
    batches_per_minute: Option<u32>,
    documents_per_minute: Option<u32>,
    failed_auth_per_minute: Option<u32>,
    recipient_per_minute: Option<u32>,
    otp_per_letter_per_hour: Option<u32>,
    otp_per_address_per_hour: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileVerify {
    max_upload_bytes: Option<u64>,
    requests_per_minute: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMail {
    smtp_url: Option<String>,
    from: Option<String>,
    reminder_days: Option<Vec<i64>>,
    bounce_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePki {
    seal_certificate: Option<PathBuf>,
    seal_key: Option<PathBuf>,
    tsa_certificate: Option<PathBuf>,
    tsa_key: Option<PathBuf>,
    roots: Option<PathBuf>,
    #[serde(default)]
    retired_roots: Vec<PathBuf>,
    development_validity_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTimestamp {
    mode: Option<String>,
    url: Option<String>,
    policy_oid: Option<String>,
    timeout_seconds: Option<u64>,
    roots: Option<PathBuf>,
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
    ("RECOMMANDE_METRICS_TOKEN", Some("metrics"), "token", false),
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
            let mut target = &mut table;
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
        // Witness lists replace the file's: addresses separated by commas, webhooks separated
        // by whitespace, each `URL#SECRET` (a witness URL never has a fragment of its own).
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
                    let (url, secret) =
                        entry.rsplit_once('#').ok_or_else(|| ConfigError::Invalid {
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
        let path = overrides
            .config_file
            .clone()
            .unwrap_or_else(|| PathBuf::from("<environment>"));
        let file: FileConfig =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path,
                    message: e.to_string(),
                })?;
        Settings::resolve(file, overrides)
    }

    fn resolve(file: FileConfig, overrides: &Overrides) -> Result<Settings, ConfigError> {
        let data_dir = overrides
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let listen_text = overrides
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".to_string());
        let listen: SocketAddr = listen_text.parse().map_err(|_| ConfigError::Invalid {
            key: "listen",
            message: format!("{listen_text:?} is not an address like 127.0.0.1:8080"),
        })?;
        let database_url = overrides
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| default_database_url(&data_dir));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                key: "database_url",
                message: format!(
                    "{} must start with sqlite: or postgres://",
                    crate::infra::storage::redact_url(&database_url)
                ),
            });
        }
        let public_url = overrides
            .public_url
            .clone()
            .or(file.public_url)
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
        let verify_max_upload_bytes = file
            .verify
            .max_upload_bytes
            .unwrap_or(DEFAULT_VERIFY_MAX_UPLOAD_BYTES);
        if verify_max_upload_bytes == 0 {
            return Err(ConfigError::Invalid {
                key: "verify.max_upload_bytes",
                message: "must be positive".into(),
            });
        }
        let verify_requests_per_minute = file
            .verify
            .requests_per_minute
            .unwrap_or(DEFAULT_VERIFY_REQUESTS_PER_MINUTE);
        if !(1..=100_000).contains(&verify_requests_per_minute) {
            return Err(ConfigError::Invalid {
                key: "verify.requests_per_minute",
                message: format!("{verify_requests_per_minute} must be between 1 and 100000"),
            });
        }
        let http = http_settings(&file.http)?;
        let trusted_proxies = file
            .http
            .trusted_proxies
            .iter()
            .map(|text| Cidr::parse(text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| ConfigError::Invalid {
                key: "http.trusted_proxies",
                message,
            })?;
        let rate_limits = rate_limit_settings(&file.rate_limits)?;
        let retention_years = file.retention_years.unwrap_or(DEFAULT_RETENTION_YEARS);
        if !(1..=100).contains(&retention_years) {
            // CPCE R.53-2 and R.53-3: proofs are kept at least one year.
            return Err(ConfigError::Invalid {
                key: "retention_years",
                message: format!("{retention_years} must be between 1 (CPCE R.53-2) and 100"),
            });
        }
        let pki = PkiSettings {
            seal_certificate: file.pki.seal_certificate,
            seal_key: file.pki.seal_key,
            tsa_certificate: file.pki.tsa_certificate,
            tsa_key: file.pki.tsa_key,
            roots: file.pki.roots,
            retired_roots: file.pki.retired_roots,
            development_validity_days: file
                .pki
                .development_validity_days
                .unwrap_or(DEFAULT_DEVELOPMENT_VALIDITY_DAYS),
        };
        if !(1..=36_525).contains(&pki.development_validity_days) {
            return Err(ConfigError::Invalid {
                key: "pki.development_validity_days",
                message: format!(
                    "{} must be between 1 and 36525",
                    pki.development_validity_days
                ),
            });
        }
        let renewal_interval_seconds = file.renewal.interval_seconds.unwrap_or(86_400);
        if !(60..=30 * 86_400).contains(&renewal_interval_seconds) {
            return Err(ConfigError::Invalid {
                key: "renewal.interval_seconds",
                message: format!(
                    "{renewal_interval_seconds} must be between 60 and 2592000 (30 days)"
                ),
            });
        }
        let renewal_margin_days = file.renewal.margin_days.unwrap_or(90);
        if !(1..=3650).contains(&renewal_margin_days)
            || u64::from(renewal_margin_days) * 86_400 <= renewal_interval_seconds
        {
            return Err(ConfigError::Invalid {
                key: "renewal.margin_days",
                message: format!(
                    "{renewal_margin_days} must be between 1 and 3650 and longer than renewal.interval_seconds, or a certificate could expire between two runs"
                ),
            });
        }
        let timestamp = match file.timestamp.mode.as_deref().unwrap_or("embedded") {
            "embedded" => TimestampMode::Embedded,
            "remote" => {
                let url = file.timestamp.url.ok_or(ConfigError::Invalid {
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
            .timestamp
            .policy_oid
            .unwrap_or_else(|| DEVELOPMENT_TSA_POLICY_OID.to_string());
        if !is_dotted_oid(&tsa_policy_oid) {
            return Err(ConfigError::Invalid {
                key: "timestamp.policy_oid",
                message: format!("{tsa_policy_oid:?} is not a dotted object identifier"),
            });
        }
        let tsa_timeout_seconds = file.timestamp.timeout_seconds.unwrap_or(10);
        if !(1..=300).contains(&tsa_timeout_seconds) {
            return Err(ConfigError::Invalid {
                key: "timestamp.timeout_seconds",
                message: format!("{tsa_timeout_seconds} must be between 1 and 300"),
            });
        }
        let smtp_url = overrides.smtp_url.clone().or(file.mail.smtp_url);
        if let Some(url) = &smtp_url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            return Err(ConfigError::Invalid {
                key: "mail.smtp_url",
                message: format!(
                    "{} must start with smtp:// or smtps://",
                    crate::infra::storage::redact_url(url)
                ),
            });
        }
        let mail_from = file
            .mail
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
        let reminder_days = file.mail.reminder_days.unwrap_or_else(|| vec![5, 12]);
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
        let bounce_token = file.mail.bounce_token.filter(|t| !t.is_empty());
        if bounce_token.as_ref().is_some_and(|t| t.len() < 32) {
            return Err(ConfigError::Invalid {
                key: "mail.bounce_token",
                message: "must be at least 32 characters".into(),
            });
        }
        let shutdown_grace_seconds = file.workers.shutdown_grace_seconds.unwrap_or(15);
        if !(1..=300).contains(&shutdown_grace_seconds) {
            return Err(ConfigError::Invalid {
                key: "workers.shutdown_grace_seconds",
                message: format!("{shutdown_grace_seconds} must be between 1 and 300"),
            });
        }
        let log_head_interval_seconds = file.log.head_interval_seconds.unwrap_or(60);
        if !(1..=86_400).contains(&log_head_interval_seconds) {
            return Err(ConfigError::Invalid {
                key: "log.head_interval_seconds",
                message: format!("{log_head_interval_seconds} must be between 1 and 86400"),
            });
        }
        let log_head_every_leaves = file.log.head_every_leaves.unwrap_or(10_000);
        if log_head_every_leaves == 0 {
            return Err(ConfigError::Invalid {
                key: "log.head_every_leaves",
                message: "must be at least 1".into(),
            });
        }
        let storage = resolve_storage(file.storage)?;
        let log_witnesses = resolve_witnesses(file.log.witnesses)?;
        let outbound_allowed_private = resolve_allowed_private(file.outbound.allowed_private)?;
        let metrics_token = file.metrics.token.filter(|t| !t.is_empty());
        if metrics_token.as_ref().is_some_and(|t| t.len() < 32) {
            return Err(ConfigError::Invalid {
                key: "metrics.token",
                message: "must be at least 32 characters".into(),
            });
        }
        let evidence_retention_years = match &file.archive.evidence_retention {
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
        let evidence_policy = file.evidence_policy;
        if let Some(policy) = &evidence_policy
            && (!policy.contains(':') || policy.chars().any(char::is_whitespace))
        {
            return Err(ConfigError::Invalid {
                key: "evidence_policy",
                message: format!("{policy:?} is not a URI"),
            });
        }
        Ok(Settings {
            data_dir,
            listen,
            database_url,
            public_url,
            provider_name,
            max_upload_bytes,
            verify_max_upload_bytes,
            verify_requests_per_minute,
            retention_years,
            evidence_policy,
            pki,
            timestamp,
            tsa_policy_oid,
            tsa_timeout_seconds,
            remote_tsa_roots: file.timestamp.roots,
            smtp_url,
            mail_from,
            reminder_days,
            bounce_token,
            log_head_interval_seconds,
            log_head_every_leaves,
            log_witnesses,
            metrics_token: metrics_token.map(SecretText::new),
            metrics_public: file.metrics.public.unwrap_or(false),
            http,
            trusted_proxies,
            rate_limits,
            collection_rates_file: file.collection.rates_file,
            collection_missing_rate: file.collection.missing_rate.unwrap_or_default(),
            master_key: file
                .archive
                .master_key
                .filter(|k| !k.is_empty())
                .map(SecretText::new),
            master_key_files: file.archive.master_key_files,
            storage,
            evidence_retention_years,
            renewal_interval_seconds,
            renewal_margin_days,
            outbound_allowed_private,
            shutdown_grace_seconds,
        })
    }

    /// Where webhook and witness deliveries may go: public addresses, the allowed private
    /// ranges, and https only unless the development PKI is in use.
    pub fn outbound_policy(&self) -> crate::infra::net_guard::OutboundPolicy {
        crate::infra::net_guard::OutboundPolicy {
            allowed_private: self.outbound_allowed_private.clone(),
            require_https: !self.pki.is_development(),
        }
    }
}

/// Reads `[outbound] allowed_private`: a list of `address/prefix` ranges, or one string of
/// comma-separated ranges (`RECOMMANDE_OUTBOUND_ALLOWED_PRIVATE`).
fn resolve_allowed_private(
    value: Option<toml::Value>,
) -> Result<Vec<crate::infra::net_guard::IpRange>, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        key: "outbound.allowed_private",
        message,
    };
    let items: Vec<String> = match value {
        None => Vec::new(),
        Some(toml::Value::String(text)) => text
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                toml::Value::String(text) => Ok(text),
                other => Err(invalid(format!(
                    "{other} is not a range such as \"10.0.0.0/8\""
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(invalid(format!(
                "{other} must be a list of ranges such as [\"10.0.0.0/8\", \"127.0.0.1/32\"]"
            )));
        }
    };
    items
        .iter()
        .map(|text| text.parse().map_err(invalid))
        .collect()
}

fn resolve_storage(file: FileStorage) -> Result<StorageBackend, ConfigError> {
    match file.backend.as_deref().unwrap_or("filesystem") {
        "filesystem" | "fs" => Ok(StorageBackend::Filesystem),
        "s3" => {
            let s3 = file.s3.unwrap_or_default();
            let bucket = s3
                .bucket
                .filter(|b| !b.is_empty())
                .ok_or(ConfigError::Invalid {
                    key: "storage.s3.bucket",
                    message: "is required when storage.backend = \"s3\"".into(),
                })?;
            // Bucket names: 3 to 63 lowercase letters, digits, dots and hyphens (AWS rules,
            // which other services follow).
            if !(3..=63).contains(&bucket.len())
                || !bucket
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            {
                return Err(ConfigError::Invalid {
                    key: "storage.s3.bucket",
                    message: format!("{bucket:?} is not a valid bucket name"),
                });
            }
            let prefix = s3.prefix.unwrap_or_default().trim_matches('/').to_string();
            if prefix.split('/').any(|p| p == "." || p == "..")
                || prefix.contains("//")
                || prefix.chars().any(|c| c.is_control())
            {
                return Err(ConfigError::Invalid {
                    key: "storage.s3.prefix",
                    message: format!("{prefix:?} is not a key prefix such as `recommande/prod`"),
                });
            }
            let endpoint = s3.endpoint.filter(|e| !e.is_empty());
            let allow_http = s3.allow_http.unwrap_or(false);
            if let Some(url) = &endpoint {
                let plain = url.starts_with("http://");
                if !(plain || url.starts_with("https://")) {
                    return Err(ConfigError::Invalid {
                        key: "storage.s3.endpoint",
                        message: format!("{url:?} must be an http:// or https:// URL"),
                    });
                }
                if plain && !allow_http {
                    return Err(ConfigError::Invalid {
                        key: "storage.s3.endpoint",
                        message: format!(
                            "{url:?} is plain http: set storage.s3.allow_http = true (a local test server only)"
                        ),
                    });
                }
            }
            let access_key_id = s3.access_key_id.filter(|k| !k.is_empty());
            let secret_access_key = s3
                .secret_access_key
                .filter(|k| !k.is_empty())
                .map(SecretText::new);
            if access_key_id.is_some() != secret_access_key.is_some() {
                return Err(ConfigError::Invalid {
                    key: "storage.s3.secret_access_key",
                    message: "access_key_id and secret_access_key go together (or neither: the AWS environment)".into(),
                });
            }
            Ok(StorageBackend::S3(S3Settings {
                bucket,
                prefix,
                endpoint,
                region: s3
                    .region
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "us-east-1".to_string()),
                access_key_id,
                secret_access_key,
                allow_http,
            }))
        }
        other => Err(ConfigError::Invalid {
            key: "storage.backend",
            message: format!("{other:?} must be \"filesystem\" or \"s3\""),
        }),
    }
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
        let url = crate::app::webhook::check_url(&hook.url).map_err(|m| ConfigError::Invalid {
            key: "log.witnesses.webhooks",
            message: format!("url {:?} {m}", hook.url),
        })?;
        crate::app::webhook::check_secret(&hook.secret).map_err(|m| ConfigError::Invalid {
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

/// The embedded default: one SQLite file inside the data directory.
pub fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite:{}", data_dir.join("recommande.db").display())
}

fn is_dotted_oid(s: &str) -> bool {
    let arcs: Vec<&str> = s.split('.').collect();
    arcs.len() >= 2
        && arcs
            .iter()
            .all(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
        && matches!(arcs[0], "0" | "1" | "2")
}

/// Checks the `[http]` section: timeouts of 1 s to 1 h, 1 to 100000 connections per address.
fn http_settings(file: &FileHttp) -> Result<HttpSettings, ConfigError> {
    let seconds = |value: Option<u64>, default: u64, key: &'static str| {
        let value = value.unwrap_or(default);
        if (1..=3600).contains(&value) {
            Ok(std::time::Duration::from_secs(value))
        } else {
            Err(ConfigError::Invalid {
                key,
                message: format!("{value} must be between 1 and 3600"),
            })
        }
    };
    let header_read_timeout = seconds(
        file.header_read_timeout_seconds,
        DEFAULT_HTTP_HEADER_READ_TIMEOUT_SECONDS,
        "http.header_read_timeout_seconds",
    )?;
    let idle_timeout = seconds(
        file.idle_timeout_seconds,
        DEFAULT_HTTP_IDLE_TIMEOUT_SECONDS,
        "http.idle_timeout_seconds",
    )?;
    let max_connections_per_address = file
        .max_connections_per_address
        .unwrap_or(DEFAULT_HTTP_MAX_CONNECTIONS_PER_ADDRESS);
    if !(1..=100_000).contains(&max_connections_per_address) {
        return Err(ConfigError::Invalid {
            key: "http.max_connections_per_address",
            message: format!("{max_connections_per_address} must be between 1 and 100000"),
        });
    }
    Ok(HttpSettings {
        header_read_timeout,
        idle_timeout,
        max_connections_per_address,
    })
}

/// Checks the `[rate_limits]` section: every quota from 1 to 1000000.
fn rate_limit_settings(file: &FileRateLimits) -> Result<RateLimitSettings, ConfigError> {
    let d = DEFAULT_RATE_LIMITS;
    let quota = |value: Option<u32>, default: u32, key: &'static str| {
        let value = value.unwrap_or(default);
        if (1..=1_000_000).contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::Invalid {
                key,
                message: format!("{value} must be between 1 and 1000000"),
            })
        }
    };
    Ok(RateLimitSettings {
        api_per_minute: quota(
            file.api_per_minute,
            d.api_per_minute,
            "rate_limits.api_per_minute",
        )?,
        deposits_per_minute: quota(
            file.deposits_per_minute,
            d.deposits_per_minute,
            "rate_limits.deposits_per_minute",
        )?,
        batches_per_minute: quota(
            file.batches_per_minute,
            d.batches_per_minute,
            "rate_limits.batches_per_minute",
        )?,
        documents_per_minute: quota(
            file.documents_per_minute,
            d.documents_per_minute,
            "rate_limits.documents_per_minute",
        )?,
        failed_auth_per_minute: quota(
            file.failed_auth_per_minute,
            d.failed_auth_per_minute,
            "rate_limits.failed_auth_per_minute",
        )?,
        recipient_per_minute: quota(
            file.recipient_per_minute,
            d.recipient_per_minute,
            "rate_limits.recipient_per_minute",
        )?,
        otp_per_letter_per_hour: quota(
            file.otp_per_letter_per_hour,
            d.otp_per_letter_per_hour,
            "rate_limits.otp_per_letter_per_hour",
        )?,
        otp_per_address_per_hour: quota(
            file.otp_per_address_per_hour,
            d.otp_per_address_per_hour,
            "rate_limits.otp_per_address_per_hour",
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn rate_limits_have_real_defaults_and_come_from_the_file_or_the_environment() {
        let s = load(None, &[], Overrides::default()).expect("defaults");
        assert_eq!(s.rate_limits, RateLimitSettings::default());
        assert_eq!(s.rate_limits.deposits_per_minute, 600);
        assert_eq!(s.rate_limits.failed_auth_per_minute, 20);
        assert!(
            s.trusted_proxies.is_empty(),
            "no proxy is trusted by default"
        );
        let s = load(
            Some(
                "[rate_limits]\ndeposits_per_minute = 5\n[http]\ntrusted_proxies = [\"10.0.0.0/8\", \"2001:db8::1\"]\n",
            ),
            &[("RECOMMANDE_RATE_LIMITS_FAILED_AUTH_PER_MINUTE", "3")],
            Overrides::default(),
        )
        .expect("settings");
        assert_eq!(s.rate_limits.deposits_per_minute, 5);
        assert_eq!(s.rate_limits.failed_auth_per_minute, 3);
        assert_eq!(s.rate_limits.batches_per_minute, 60);
        assert_eq!(s.trusted_proxies.len(), 2);
        assert!(s.trusted_proxies[0].contains([10, 1, 2, 3].into()));
        assert!(!s.trusted_proxies[0].contains([11, 0, 0, 1].into()));
        for (file, key) in [
            (
                "[rate_limits]\napi_per_minute = 0\n",
                "rate_limits.api_per_minute",
            ),
            (
                "[http]\ntrusted_proxies = [\"10.0.0.1/8\"]\n",
                "http.trusted_proxies",
            ),
            (
                "[http]\ntrusted_proxies = [\"proxy.example\"]\n",
                "http.trusted_proxies",
            ),
        ] {
            match load(Some(file), &[], Overrides::default()) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{file}"),
                other => panic!("{file}: {other:?}"),
            }
        }
    }

    #[test]
    fn cidrs_contain_their_addresses_only() {
        let net = Cidr::parse("192.0.2.0/24").expect("v4");
        assert!(net.contains([192, 0, 2, 200].into()));
        assert!(!net.contains([192, 0, 3, 1].into()));
        assert!(net.contains("::ffff:192.0.2.7".parse().expect("mapped")));
        let all = Cidr::parse("0.0.0.0/0").expect("all v4");
        assert!(all.contains([203, 0, 113, 1].into()));
        assert!(!all.contains("2001:db8::1".parse().expect("v6")));
        let v6 = Cidr::parse("2001:db8::/32").expect("v6");
        assert!(v6.contains("2001:db8:ffff::1".parse().expect("v6")));
        assert!(!v6.contains("2001:db9::1".parse().expect("v6")));
        assert!(
            Cidr::parse("::/0")
                .expect("all v6")
                .contains("::1".parse().expect("v6"))
        );
        assert!(Cidr::parse("192.0.2.0/33").is_err());
        assert!(Cidr::parse("192.0.2.1/24").is_err());
    }

    fn load(
        file: Option<&str>,
        env: &[(&str, &str)],
        overrides: Overrides,
    ) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut overrides = overrides;
        if let Some(text) = file {
            let path = dir.path().join("recommande.toml");
            std::fs::write(&path, text).expect("write config");
            overrides.config_file = Some(path);
        }
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_from(&overrides, |k| env.get(k).cloned())
    }

    #[test]
    fn defaults_give_the_embedded_service() {
        let s = load(None, &[], Overrides::default()).expect("defaults");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url, "sqlite:./data/recommande.db");
        assert_eq!(s.timestamp, TimestampMode::Embedded);
        assert!(s.pki.is_development());
        assert_eq!(s.max_upload_bytes, 25 * 1024 * 1024);
    }

    #[test]
    fn http_limits_default_to_10_s_60_s_and_64_and_come_from_the_file_or_the_environment() {
        let s = load(None, &[], Overrides::default()).expect("defaults");
        assert_eq!(s.http, HttpSettings::default());
        assert_eq!(
            s.http.header_read_timeout,
            std::time::Duration::from_secs(10)
        );
        assert_eq!(s.http.idle_timeout, std::time::Duration::from_secs(60));
        assert_eq!(s.http.max_connections_per_address, 64);
        let s = load(
            Some("[http]\nheader_read_timeout_seconds = 5\nidle_timeout_seconds = 30\n"),
            &[("RECOMMANDE_HTTP_MAX_CONNECTIONS_PER_ADDRESS", "500")],
            Overrides::default(),
        )
        .expect("settings");
        assert_eq!(
            s.http.header_read_timeout,
            std::time::Duration::from_secs(5)
        );
        assert_eq!(s.http.idle_timeout, std::time::Duration::from_secs(30));
        assert_eq!(s.http.max_connections_per_address, 500);
    }

    #[test]
    fn http_limits_out_of_range_are_refused_at_start() {
        for (file, key) in [
            (
                "[http]\nheader_read_timeout_seconds = 0\n",
                "http.header_read_timeout_seconds",
            ),
            (
                "[http]\nidle_timeout_seconds = 3601\n",
                "http.idle_timeout_seconds",
            ),
            (
                "[http]\nmax_connections_per_address = 0\n",
                "http.max_connections_per_address",
            ),
        ] {
            match load(Some(file), &[], Overrides::default()) {
                Err(ConfigError::Invalid { key: refused, .. }) => assert_eq!(refused, key),
                other => panic!("{file}: expected {key} refused, got {other:?}"),
            }
        }
    }

    #[test]
    fn s3_storage_comes_from_the_file_and_the_environment() {
        let file = "[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"lre-archive\"\nprefix = \"/prod/\"\nregion = \"eu-west-3\"\n";
        let s = load(
            Some(file),
            &[
                ("RECOMMANDE_S3_ENDPOINT", "http://127.0.0.1:9000"),
                ("RECOMMANDE_S3_ALLOW_HTTP", "true"),
                ("RECOMMANDE_S3_ACCESS_KEY_ID", "AKIA"),
                ("RECOMMANDE_S3_SECRET_ACCESS_KEY", "secret"),
            ],
            Overrides::default(),
        )
        .expect("settings");
        let StorageBackend::S3(s3) = &s.storage else {
            panic!("expected S3, got {:?}", s.storage);
        };
        assert_eq!(s3.bucket, "lre-archive");
        assert_eq!(s3.prefix, "prod");
        assert_eq!(s3.region, "eu-west-3");
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(s3.allow_http);
        assert_eq!(s3.access_key_id.as_deref(), Some("AKIA"));
        assert!(!format!("{s3:?}").contains("secret\""));
        // The environment alone selects the back end too.
        let s = load(
            None,
            &[
                ("RECOMMANDE_STORAGE_BACKEND", "s3"),
                ("RECOMMANDE_S3_BUCKET", "other-bucket"),
            ],
            Overrides::default(),
        )
        .expect("settings");
        assert!(
            matches!(&s.storage, StorageBackend::S3(s3) if s3.bucket == "other-bucket" && s3.region == "us-east-1")
        );
        assert_eq!(
            load(None, &[], Overrides::default())
                .expect("defaults")
                .storage,
            StorageBackend::Filesystem
        );
    }

    #[test]
    fn bad_s3_settings_are_named() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            ("[storage]\nbackend = \"s3\"\n", &[], "storage.s3.bucket"),
            ("[storage]\nbackend = \"nfs\"\n", &[], "storage.backend"),
            (
                "",
                &[
                    ("RECOMMANDE_STORAGE_BACKEND", "s3"),
                    ("RECOMMANDE_S3_BUCKET", "Bad_Bucket"),
                ],
                "storage.s3.bucket",
            ),
            (
                "",
                &[
                    ("RECOMMANDE_STORAGE_BACKEND", "s3"),
                    ("RECOMMANDE_S3_BUCKET", "lre"),
                    ("RECOMMANDE_S3_ENDPOINT", "http://minio:9000"),
                ],
                "storage.s3.endpoint",
            ),
            (
                "",
                &[
                    ("RECOMMANDE_STORAGE_BACKEND", "s3"),
                    ("RECOMMANDE_S3_BUCKET", "lre"),
                    ("RECOMMANDE_S3_ACCESS_KEY_ID", "AKIA"),
                ],
                "storage.s3.secret_access_key",
            ),
            (
                "",
                &[("RECOMMANDE_S3_ALLOW_HTTP", "yes please")],
                "allow_http",
            ),
            (
                "[storage.s3]\nbucket = \"lre\"\nbucket_name = \"x\"\n",
                &[],
                "bucket_name",
            ),
        ];
        for (file, env, named) in cases {
            let file = (!file.is_empty()).then_some(*file);
            let err = load(file, env, Overrides::default())
                .expect_err("refused")
                .to_string();
            assert!(err.contains(named), "{named}: {err}");
        }
    }

    #[test]
    fn the_workers_shutdown_grace_is_read_from_the_file_and_the_environment_and_checked() {
        let s = load(None, &[], Overrides::default()).expect("defaults");
        assert_eq!(s.shutdown_grace_seconds, 15);
        let s = load(
            Some("[workers]\nshutdown_grace_seconds = 40\n"),
            &[],
            Overrides::default(),
        )
        .expect("settings");
        assert_eq!(s.shutdown_grace_seconds, 40);
        let s = load(
            None,
            &[("RECOMMANDE_WORKERS_SHUTDOWN_GRACE_SECONDS", "3")],
            Overrides::default(),
        )
        .expect("settings");
        assert_eq!(s.shutdown_grace_seconds, 3);
        for bad in ["0", "301"] {
            let e = load(
                None,
                &[("RECOMMANDE_WORKERS_SHUTDOWN_GRACE_SECONDS", bad)],
                Overrides::default(),
            )
            .expect_err("out of range");
            assert!(
                e.to_string().contains("workers.shutdown_grace_seconds"),
                "{e}"
            );
        }
        let e = load(Some("[workers]\ngrace = 3\n"), &[], Overrides::default())
            .expect_err("unknown key");
        assert!(e.to_string().contains("grace"), "{e}");
    }

    #[test]
    fn renewal_and_rotation_settings_are_read_and_checked() {
        let s = load(None, &[], Overrides::default()).expect("defaults");
        assert_eq!(
            (s.renewal_interval_seconds, s.renewal_margin_days),
            (86_400, 90)
        );
        assert_eq!(s.pki.development_validity_days, 3652);
        let s = load(
            Some("[renewal]\ninterval_seconds = 3600\nmargin_days = 30\n[pki]\nretired_roots = [\"old.pem\"]\ndevelopment_validity_days = 30\n"),
            &[],
            Overrides::default(),
        )
        .expect("settings");
        assert_eq!(s.renewal_interval_seconds, 3600);
        assert_eq!(s.renewal_margin_days, 30);
        assert_eq!(s.pki.retired_roots, vec![PathBuf::from("old.pem")]);
        assert_eq!(s.pki.development_validity_days, 30);
        // Retired roots alone keep the development PKI.
        assert!(s.pki.is_development());
        let e = load(
            Some("[renewal]\ninterval_seconds = 864000\nmargin_days = 5\n"),
            &[],
            Overrides::default(),
        )
        .expect_err("a certificate could expire between two runs");
        assert!(e.to_string().contains("renewal.margin_days"), "{e}");
        let e = load(
            Some("[pki]\ndevelopment_validity_days = 0\n"),
            &[],
            Overrides::default(),
        )
        .expect_err("zero days");
        assert!(e.to_string().contains("development_validity_days"), "{e}");
    }

    #[test]
    fn flags_override_environment_which_overrides_the_file() {
        let file =
            "listen = \"127.0.0.1:1\"\nprovider_name = \"from file\"\nmax_upload_bytes = 10\n";
        let s = load(
            Some(file),
            &[
                ("RECOMMANDE_LISTEN", "127.0.0.1:2"),
                ("RECOMMANDE_MAX_UPLOAD_BYTES", "20"),
            ],
            Overrides {
                listen: Some("127.0.0.1:3".into()),
                ..Overrides::default()
            },
        )
        .expect("settings");
        assert_eq!(s.listen.to_string(), "127.0.0.1:3");
        assert_eq!(s.provider_name, "from file");
        assert_eq!(s.max_upload_bytes, 20);
    }

    #[test]
    fn an_unknown_key_in_the_file_is_named() {
        let err =
            load(Some("lisen = \"x\"\n"), &[], Overrides::default()).expect_err("typo refused");
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn remote_timestamping_needs_a_url() {
        let err = load(
            Some("[timestamp]\nmode = \"remote\"\n"),
            &[],
            Overrides::default(),
        )
        .expect_err("no url");
        assert!(err.to_string().contains("timestamp.url"), "{err}");
        let s = load(
            None,
            &[
                ("RECOMMANDE_TIMESTAMP_MODE", "remote"),
                ("RECOMMANDE_TIMESTAMP_URL", "https://tsa.example/"),
            ],
            Overrides::default(),
        )
        .expect("remote");
        assert_eq!(
            s.timestamp,
            TimestampMode::Remote {
                url: "https://tsa.example/".into()
            }
        );
    }

    #[test]
    fn outbound_allowed_private_ranges_come_from_the_file_or_the_environment_and_are_checked() {
        let s = load(None, &[], Overrides::default()).expect("settings");
        assert!(s.outbound_allowed_private.is_empty(), "none by default");
        assert!(s.outbound_policy().permits("8.8.8.8".parse().expect("ip")));
        assert!(
            !s.outbound_policy()
                .permits("127.0.0.1".parse().expect("ip"))
        );
        assert!(
            !s.outbound_policy().require_https,
            "development PKI: http allowed"
        );
        let s = load(
            Some("[outbound]\nallowed_private = [\"10.0.0.0/8\", \"127.0.0.1/32\"]\n"),
            &[],
            Overrides::default(),
        )
        .expect("file");
        let ranges: Vec<String> = s
            .outbound_allowed_private
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(ranges, ["10.0.0.0/8", "127.0.0.1/32"]);
        assert!(s.outbound_policy().permits("10.2.3.4".parse().expect("ip")));
        let s = load(
            None,
            &[(
                "RECOMMANDE_OUTBOUND_ALLOWED_PRIVATE",
                "192.168.0.0/16, fd00::/8",
            )],
            Overrides::default(),
        )
        .expect("environment");
        assert_eq!(s.outbound_allowed_private.len(), 2);
        for bad in [
            "[outbound]\nallowed_private = [\"10.0.0.1/8\"]\n",
            "[outbound]\nallowed_private = [\"intranet\"]\n",
            "[outbound]\nallowed_private = [8]\n",
            "[outbound]\nallowed_private = 8\n",
        ] {
            let err = load(Some(bad), &[], Overrides::default()).expect_err(bad);
            assert!(
                err.to_string().contains("outbound.allowed_private"),
                "{err}"
            );
        }
    }

    #[test]
    fn links_never_point_at_an_unspecified_address() {
        let s = load(
            None,
            &[("RECOMMANDE_LISTEN", "0.0.0.0:9000")],
            Overrides::default(),
        )
        .expect("settings");
        assert_eq!(s.public_url, "http://localhost:9000");
        let err = load(
            None,
            &[("RECOMMANDE_TIMESTAMP_TIMEOUT_SECONDS", "0")],
            Overrides::default(),
        )
        .expect_err("zero timeout");
        assert!(err.to_string().contains("timeout_seconds"), "{err}");
    }

    #[test]
    fn evidence_retention_is_forever_or_at_least_one_year() {
        let s = load(None, &[], Overrides::default()).expect("settings");
        assert_eq!(s.evidence_retention_years, None);
        let s = load(
            Some("[archive]\nevidence_retention = 5\n"),
            &[],
            Overrides::default(),
        )
        .expect("settings");
        assert_eq!(s.evidence_retention_years, Some(5));
        let s = load(
            Some("[archive]\nevidence_retention = 5\n"),
            &[("RECOMMANDE_ARCHIVE_EVIDENCE_RETENTION", "forever")],
            Overrides::default(),
        )
        .expect("settings");
        assert_eq!(s.evidence_retention_years, None);
        for bad in ["0", "\"jamais\"", "-1", "2.5"] {
            let err = load(
                Some(&format!("[archive]\nevidence_retention = {bad}\n")),
                &[],
                Overrides::default(),
            )
            .expect_err(bad);
            assert!(
                err.to_string().contains("archive.evidence_retention"),
                "{err}"
            );
        }
    }

    #[test]
    fn log_witnesses_come_from_the_file_or_the_environment_and_are_checked() {
        let file = r#"
[log.witnesses]
emails = ["greffe@tribunal.example.fr"]
webhooks = [{ url = "https://huissier.example.fr/tete", secret = "0123456789abcdef" }]
"#;
        let s = load(Some(file), &[], Overrides::default()).expect("settings");
        assert_eq!(s.log_witnesses.emails, ["greffe@tribunal.example.fr"]);
        assert_eq!(
            s.log_witnesses.webhooks[0].url,
            "https://huissier.example.fr/tete"
        );
        assert!(!format!("{s:?}").contains("0123456789abcdef"));
        let s = load(
            Some(file),
            &[
                (
                    "RECOMMANDE_LOG_WITNESS_EMAILS",
                    "a@greffe.example.fr, b@etude.example.fr",
                ),
                (
                    "RECOMMANDE_LOG_WITNESS_WEBHOOKS",
                    "https://w1.example.fr/h#secret-one-0123456 http://w2.example.fr/#secret-two-0123456",
                ),
            ],
            Overrides::default(),
        )
        .expect("settings");
        assert_eq!(
            s.log_witnesses.emails,
            ["a@greffe.example.fr", "b@etude.example.fr"]
        );
        assert_eq!(s.log_witnesses.webhooks.len(), 2);
        assert_eq!(
            s.log_witnesses.webhooks[1].secret.expose(),
            "secret-two-0123456"
        );
        for (var, value, needle) in [
            (
                "RECOMMANDE_LOG_WITNESS_EMAILS",
                "not-an-address",
                "not-an-address",
            ),
            (
                "RECOMMANDE_LOG_WITNESS_EMAILS",
                "a@b.fr,a@b.fr",
                "listed twice",
            ),
            (
                "RECOMMANDE_LOG_WITNESS_WEBHOOKS",
                "https://w.fr/h",
                "URL#SECRET",
            ),
            (
                "RECOMMANDE_LOG_WITNESS_WEBHOOKS",
                "ftp://w.fr/#0123456789abcdef",
                "http",
            ),
            (
                "RECOMMANDE_LOG_WITNESS_WEBHOOKS",
                "https://w.fr/#short",
                "16 to 256",
            ),
        ] {
            let err = load(None, &[(var, value)], Overrides::default()).expect_err(value);
            let text = err.to_string();
            assert!(text.contains("log.witnesses"), "{text}");
            assert!(text.contains(needle), "{text}");
        }
    }

    #[test]
    fn mail_settings_come_from_the_environment_too() {
        let s = load(
            None,
            &[
                ("RECOMMANDE_MAIL_FROM", "LRE Exemple <lre@exemple.fr>"),
                ("RECOMMANDE_MAIL_BOUNCE_TOKEN", &"t".repeat(32)),
            ],
            Overrides::default(),
        )
        .expect("settings");
        assert_eq!(s.mail_from, "LRE Exemple <lre@exemple.fr>");
        assert_eq!(s.bounce_token.as_deref(), Some("t".repeat(32).as_str()));
        let err = load(
            None,
            &[("RECOMMANDE_MAIL_BOUNCE_TOKEN", "short")],
            Overrides::default(),
        )
        .expect_err("short");
        assert!(err.to_string().contains("bounce_token"), "{err}");
    }

    #[test]
    fn retention_below_one_year_is_refused() {
        let err =
            load(Some("retention_years = 0\n"), &[], Overrides::default()).expect_err("refused");
        assert!(err.to_string().contains("R.53-2"), "{err}");
    }

    #[test]
    fn bad_values_are_named_precisely() {
        let err = load(
            None,
            &[("RECOMMANDE_LISTEN", "nowhere")],
            Overrides::default(),
        )
        .expect_err("bad listen");
        assert!(err.to_string().contains("listen"), "{err}");
        let err = load(
            None,
            &[("RECOMMANDE_DATABASE_URL", "mysql://x")],
            Overrides::default(),
        )
        .expect_err("bad db");
        assert!(err.to_string().contains("database_url"), "{err}");
        let err = load(
            None,
            &[("RECOMMANDE_TIMESTAMP_POLICY_OID", "1.2.x")],
            Overrides::default(),
        )
        .expect_err("oid");
        assert!(err.to_string().contains("policy_oid"), "{err}");
    }
}
