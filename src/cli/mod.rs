//! The command line: `serve`, `api-key`, `send`, `bench`, `verify`, `pki`, `log`,
//! `archive`. This module parses the arguments and dispatches; each command is its own file.
//! This is CLI glue, so it uses `anyhow`.

mod api_key;
mod archive;
mod bench;
mod log;
mod pki;
pub mod send;
mod serve;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Overrides, Settings};

/// Electronic registered letters with evidence a judge can verify offline.
#[derive(Debug, Parser)]
#[command(name = "recommande", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the service (HTTP API, TSA endpoint).
    Serve(Location),
    /// Prints a shell completion script: `recommande completions bash > /etc/bash_completion.d/recommande`,
    /// or zsh, fish, elvish, powershell.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Manages API keys.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Measures throughput (not a test: prints figures).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Deposits the letters of a CSV file through a server's API, shows the progress, writes
    /// the refused rows to a report. Exit code 0: every row deposited; 1: rows refused or
    /// the batch failed; 2: the file could not be sent.
    Send {
        /// The CSV file: UTF-8, `;` or `,` separated, a header row of column names
        /// (recipient.name, recipient.email, recipient.kind, documents, …).
        #[arg(long)]
        csv: PathBuf,
        /// Base URL of the server.
        #[arg(long, env = "RECOMMANDE_SERVER")]
        server: String,
        /// API key of the sending account.
        #[arg(long, env = "RECOMMANDE_API_KEY", hide_env_values = true)]
        api_key: String,
        /// Template of the account merged under each row.
        #[arg(long)]
        template: Option<String>,
        /// `valid_rows` (default: deposit the valid rows) or `all_or_nothing`.
        #[arg(long)]
        mode: Option<String>,
        /// Where to write the refused rows (default: <csv>.errors.csv).
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Verifies a proof bundle offline (no network, no database). Exit code 0: valid,
    /// 1: invalid, 2: unusable input.
    Verify {
        /// The bundle (zip) downloaded from `/v1/letters/{id}/bundle.zip`.
        bundle: PathBuf,
        /// The provider's published trust anchors (PEM). Without it, the roots inside the
        /// bundle are used and the report says trust is not anchored outside the bundle.
        #[arg(long)]
        trust: Option<PathBuf>,
        /// Machine-readable report.
        #[arg(long)]
        json: bool,
        /// Language of the human report.
        #[arg(long, value_enum, default_value_t = Lang::Fr)]
        lang: Lang,
        /// Verification time (RFC 3339, e.g. 2040-01-01T00:00:00Z; default: now). Tokens
        /// whose TSA certificate has expired by then must be covered by timestamp renewals.
        #[arg(long)]
        at: Option<String>,
    },
    /// Key material of the service.
    #[command(subcommand)]
    Pki(PkiCommand),
    /// The transparency log, for witnesses holding tree heads.
    #[command(subcommand)]
    Log(LogCommand),
    /// The ten-year archive.
    #[command(subcommand)]
    Archive(ArchiveCommand),
}

#[derive(Debug, Subcommand)]
enum ArchiveCommand {
    /// Re-reads the archive and checks it: documents against their SHA-256, every evidence
    /// record's seal, timestamp and chain, the transparency log against its signed tree
    /// heads. Writes a sealed and timestamped report. Exit code 0: nothing wrong; 1: failures
    /// (each named); 2: the audit could not run.
    Audit {
        /// Check a random sample of this many documents and letters (the log is always
        /// checked whole).
        #[arg(long, conflicts_with = "all")]
        sample: Option<u64>,
        /// Check everything (the default).
        #[arg(long)]
        all: bool,
        /// Directory to write `audit-<id>.json`, `.p7s` and `.tsr` into.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Machine-readable report on standard output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Re-wraps every document data key under the active master key (the first configured:
    /// `RECOMMANDE_MASTER_KEY`, then `[archive] master_key_files`). The old keys must still be
    /// configured for this run; afterwards they can be removed. Idempotent.
    Rewrap {
        #[command(flatten)]
        location: Location,
    },
    /// Encrypts in place the plaintext documents stored by versions before encryption at rest
    /// (each checked against its SHA-256, encrypted, read back, then renamed over the
    /// plaintext). Idempotent and resumable. Exit code 0: done; 1: some files were left alone
    /// (each named).
    EncryptExisting {
        #[command(flatten)]
        location: Location,
    },
    /// Destroys the content of letters past their retention period and not on legal hold
    /// (a `ContentDestruction` evidence record each, then crypto-shredding of the documents no
    /// letter needs any more). The service does it hourly; this runs it now.
    Purge {
        /// Only list what is due; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Machine-readable report on standard output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Archive timestamp renewal now (RFC 4998 spirit): one Merkle tree over every record
    /// not yet renewed or whose newest token's TSA certificate ends within `[renewal]
    /// margin_days` (or is not the current one), its root timestamped. The service does it
    /// every `[renewal] interval_seconds`. Exit code 0: done (or nothing due); 2: failed.
    Renew {
        /// Why (kept in every renewal record).
        #[arg(long, default_value = "operator request")]
        reason: String,
        /// Cover every record (a new generation for all), e.g. after a key rotation.
        #[arg(long)]
        all: bool,
        /// Machine-readable outcome.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Prints a new random master key line `<id>:<base64>` for a key file or
    /// `RECOMMANDE_MASTER_KEY`.
    NewKey {
        /// The key's id (letters, digits, '-', '_', '.').
        #[arg(long)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// Key rotation of the development PKI: a new root, seal and TSA; the old certificates
    /// are kept under DATA_DIR/pki/retired/ (still trusted for verification, served in
    /// /v1/trust/roots.pem) and their keys deleted; then a renewal by the new TSA covers
    /// every record (RFC 4998 spirit). Production keys rotate through the [pki] files and
    /// `retired_roots`, followed by `recommande archive renew --all`.
    Rotate {
        /// Validity of the new seal and TSA certificates, days (default
        /// `[pki] development_validity_days`).
        #[arg(long)]
        validity_days: Option<u32>,
        #[command(flatten)]
        location: Location,
    },
    /// Generates an ECDSA P-256 key pair inside the PKCS#11 token of `[pki.pkcs11]` (the
    /// private key sensitive and never extractable) and prints its public key (PEM).
    TokenKey {
        /// The key to create, as an RFC 7512 URI: pkcs11:token=LABEL;object=LABEL.
        #[arg(long)]
        key: String,
        #[command(flatten)]
        location: Location,
    },
    /// A PKCS#10 certification request signed by a key (a pkcs11: URI or a PKCS#8 PEM file),
    /// with the key usages the role needs, for a CA to certify.
    Csr {
        /// The key: pkcs11:token=…;object=… or a PKCS#8 PEM file.
        #[arg(long)]
        key: String,
        /// Subject, e.g. "CN=Recommande Seal,O=Example SAS,C=FR,organizationIdentifier=NTRFR-123456789".
        #[arg(long)]
        subject: String,
        /// What the certificate is for.
        #[arg(long, value_enum)]
        role: CertificateUse,
        /// Write the request here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        location: Location,
    },
}

/// The role a requested certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CertificateUse {
    /// The electronic seal over evidence.
    Seal,
    /// The embedded RFC 3161 time-stamping unit.
    Tsa,
}

#[derive(Debug, Subcommand)]
enum LogCommand {
    /// Checks that the log only grew between two signed tree heads (JSON as served by
    /// `/v1/log/tree-heads/…`): both are sealed and timestamped by the provider, and a
    /// consistency proof (RFC 9162) links the older root to the newer one. Exit code 0: the
    /// log only grew; 1: it did not, or a head is not genuine; 2: unusable input.
    VerifyConsistency {
        /// The tree head kept earlier.
        old: PathBuf,
        /// A later tree head.
        new: PathBuf,
        /// The provider's published trust anchors (PEM).
        #[arg(long)]
        trust: PathBuf,
        /// The consistency proof (JSON from `/v1/log/proofs/consistency`), offline.
        #[arg(long, conflicts_with = "server")]
        proof: Option<PathBuf>,
        /// Or the service's base URL to fetch the proof from.
        #[arg(long)]
        server: Option<String>,
    },
}

/// Language of human-readable output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Lang {
    /// Français.
    Fr,
    /// English.
    En,
}

/// Where the service's data and settings are.
#[derive(Debug, Clone, Args)]
struct Location {
    /// Data directory (SQLite file, documents, development PKI).
    #[arg(long, env = "RECOMMANDE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Listen address.
    #[arg(long, env = "RECOMMANDE_LISTEN")]
    listen: Option<String>,
    /// Database URL: sqlite:PATH or postgres://…
    #[arg(long, env = "RECOMMANDE_DATABASE_URL")]
    database_url: Option<String>,
    /// TOML configuration file.
    #[arg(long, env = "RECOMMANDE_CONFIG")]
    config: Option<PathBuf>,
    /// SMTP relay for notifications (smtp://user:pass@host:587?tls=required, smtps://…);
    /// without it, mails are written as .eml files into DATA_DIR/mail.
    #[arg(long, env = "RECOMMANDE_MAIL_SMTP_URL")]
    smtp_url: Option<String>,
    /// Public base URL of the service, used in the links of mails.
    #[arg(long, env = "RECOMMANDE_PUBLIC_URL")]
    public_url: Option<String>,
}

impl Location {
    fn settings(&self) -> anyhow::Result<Settings> {
        Ok(Settings::load(&Overrides {
            config_file: self.config.clone(),
            data_dir: self.data_dir.clone(),
            listen: self.listen.clone(),
            database_url: self.database_url.clone(),
            smtp_url: self.smtp_url.clone(),
            public_url: self.public_url.clone(),
        })?)
    }
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Creates a key for a tenant (created if needed); prints only the key.
    Create {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        location: Location,
    },
    /// Lists keys (never the keys themselves).
    List {
        /// Only this tenant's keys.
        #[arg(long)]
        tenant: Option<String>,
        /// One JSON array of `{id, tenant, created_at, revoked_at}` objects.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Revokes a key by id.
    Revoke {
        /// Key id, as listed.
        id: String,
        #[command(flatten)]
        location: Location,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Embedded TSA tokens/s against raw ring ECDSA P-256 signatures/s; with
    /// `--pkcs11-key`, the same with a key inside a PKCS#11 token, in the same run.
    Tsa {
        /// Tokens to issue.
        #[arg(long, default_value_t = 20_000)]
        tokens: usize,
        /// Worker threads (default: available cores).
        #[arg(long)]
        threads: Option<usize>,
        /// A key in the token of `[pki.pkcs11]` (module and PIN from the configuration or
        /// RECOMMANDE_PKI_PKCS11_*), e.g. pkcs11:token=bench;object=tsa.
        #[arg(long)]
        pkcs11_key: Option<String>,
        #[command(flatten)]
        location: Location,
    },
    /// Letters/s of a batch through the HTTP API, peak memory, and a raw batched insert of
    /// the same rows.
    Batch {
        /// Letters in the batch (at most 10,000).
        #[arg(long, default_value_t = 10_000)]
        letters: usize,
        /// One composed PDF per letter instead of a shared document.
        #[arg(long)]
        compose: bool,
        /// Database (default: SQLite in a temporary directory).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Seconds from `POST /v1/batches` to the last proof of dispatch, workers running, in
    /// chunks and (the baseline) one letter per transaction.
    Dispatch {
        /// Letters per batch (at most 10,000).
        #[arg(long, default_value_t = 10_000)]
        letters: usize,
        /// Batches posted back to back.
        #[arg(long, default_value_t = 1)]
        batches: usize,
        /// Notifications handled together (`[workers] dispatch_chunk`).
        #[arg(long, default_value_t = crate::config::DEFAULT_DISPATCH_CHUNK)]
        chunk: usize,
        /// Leave out the one-by-one baseline.
        #[arg(long)]
        no_baseline: bool,
        /// SMTP relay to notify through (default: the directory of .eml files).
        #[arg(long)]
        smtp_url: Option<String>,
        /// Database (default: SQLite in a temporary directory).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Letters/s through the deposit pipeline against a raw batched insert of the same rows.
    Deposit {
        /// Letters to deposit.
        #[arg(long, default_value_t = 10_000)]
        letters: usize,
        /// Database (default: SQLite in a temporary directory).
        #[arg(long)]
        database_url: Option<String>,
        /// Sealing threads (default: available cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Seconds of an archive timestamp renewal over every record, twice (generation 1 over
    /// the original tokens, generation 2 over the first renewal).
    Renew {
        /// Letters to deposit first (one evidence record each).
        #[arg(long, default_value_t = 10_000)]
        letters: usize,
        /// Database (default: SQLite in a temporary directory).
        #[arg(long)]
        database_url: Option<String>,
        /// Sealing threads for the deposits (default: available cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Milliseconds to verify a 6-evidence proof bundle (target ≤ 10 ms).
    Verify {
        /// Verifications to run.
        #[arg(long, default_value_t = 500)]
        iterations: usize,
    },
}

/// Log lines on stderr: `RUST_LOG` filters (default `info`, `sqlx` at `warn`);
/// `RECOMMANDE_LOG_FORMAT=json` writes one JSON object per line (with the request's span:
/// its id, trace id, client, method and redacted URI), for log shippers; colours only on a
/// terminal.
fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let json = std::env::var("RECOMMANDE_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(location) => serve::run(location.settings()?).await,
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "recommande", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::ApiKey(cmd) => api_key::run(cmd).await,
        Command::Bench(cmd) => bench::run(cmd).await,
        Command::Send {
            csv,
            server,
            api_key,
            template,
            mode,
            report,
        } => {
            let options = send::SendOptions {
                csv,
                server,
                api_key,
                template,
                mode,
                report,
                poll: std::time::Duration::from_millis(250),
            };
            Ok(send::run(&options).await)
        }
        Command::Verify {
            bundle,
            trust,
            json,
            lang,
            at,
        } => Ok(verify::run(
            &bundle,
            trust.as_deref(),
            json,
            lang,
            at.as_deref(),
        )),
        Command::Pki(cmd) => pki::run(cmd).await,
        Command::Log(cmd) => Ok(log::run(cmd).await),
        Command::Archive(cmd) => archive::run(cmd).await,
    }
}

/// The error and its causes, skipping a cause whose text the message already contains
/// (typed errors often print their source themselves).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
