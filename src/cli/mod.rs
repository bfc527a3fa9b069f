//! The command line: `serve`, `api-key`, `send`, `bench`, `verify`, `log`, `archive`. This is
//! CLI glue, so it uses `anyhow`.

pub mod send;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::app::api_key::ApiKeyHasher;
use crate::app::service::Service;
use crate::config::{Overrides, Settings};
use crate::core::clock::{SystemClock, from_unix_micros, rfc3339_micros, unix_micros};
use crate::infra::storage::Storage;

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
    /// Embedded TSA tokens/s against raw ring ECDSA P-256 signatures/s.
    Tsa {
        /// Tokens to issue.
        #[arg(long, default_value_t = 20_000)]
        tokens: usize,
        /// Worker threads (default: available cores).
        #[arg(long)]
        threads: Option<usize>,
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

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
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
        Command::Serve(location) => serve(location.settings()?).await,
        Command::ApiKey(cmd) => api_key(cmd).await,
        Command::Bench(BenchCommand::Tsa { tokens, threads }) => {
            let threads = threads.unwrap_or_else(available_cores);
            let report =
                tokio::task::spawn_blocking(move || crate::bench::tsa::run(tokens, threads))
                    .await??;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Verify { iterations }) => {
            let report = crate::bench::verify::run(iterations).await?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            bundle,
            trust,
            json,
            lang,
            at,
        } => Ok(verify(&bundle, trust.as_deref(), json, lang, at.as_deref())),
        Command::Pki(PkiCommand::Rotate {
            validity_days,
            location,
        }) => pki_rotate(location.settings()?, validity_days).await,
        Command::Archive(ArchiveCommand::Renew {
            reason,
            all,
            json,
            location,
        }) => {
            let service = Service::start(location.settings()?, Arc::new(SystemClock))
                .await
                .context("starting the service to renew its timestamps")?;
            let scope = if all {
                crate::app::renewal::Scope::Everything
            } else {
                crate::app::renewal::Scope::Due
            };
            report_renewal(
                crate::app::renewal::renew(&service, reason.trim(), scope).await,
                json,
            )
        }
        Command::Archive(ArchiveCommand::Audit {
            sample,
            all: _,
            out,
            json,
            location,
        }) => archive_audit(location.settings()?, sample, out, json).await,
        Command::Archive(ArchiveCommand::Rewrap { location }) => {
            let service = Service::start(location.settings()?, Arc::new(SystemClock))
                .await
                .context("starting the service to re-wrap its data keys")?;
            let report = crate::app::archive::rewrap(&service.content).await?;
            println!(
                "{} data keys re-wrapped; every live data key is now under master key {:?}",
                report.rewrapped, report.active_key_id
            );
            println!(
                "{} service and webhook secrets re-sealed under the same key",
                report.secrets_resealed
            );
            service.storage.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Archive(ArchiveCommand::EncryptExisting { location }) => {
            let service = Service::start(location.settings()?, Arc::new(SystemClock))
                .await
                .context("starting the service to encrypt its documents")?;
            let report = crate::app::archive::encrypt_existing(&service.content).await?;
            println!(
                "{} files examined: {} encrypted now, {} already encrypted, {} left alone",
                report.examined,
                report.encrypted,
                report.already_encrypted,
                report.problems.len()
            );
            for problem in &report.problems {
                println!("LEFT ALONE {problem}");
            }
            service.storage.close().await;
            Ok(if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Archive(ArchiveCommand::Purge {
            dry_run,
            json,
            location,
        }) => {
            let service = Service::start(location.settings()?, Arc::new(SystemClock))
                .await
                .context("starting the service to purge expired content")?;
            let report = crate::app::archive::purge(&service, dry_run).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let verb = if dry_run { "due" } else { "destroyed" };
                println!(
                    "{} letters {verb}, {} document keys {verb}",
                    report.letters.len(),
                    report.documents.len()
                );
                for id in &report.letters {
                    println!("letter {id}");
                }
                for sha256 in &report.documents {
                    println!("document {sha256}");
                }
            }
            service.storage.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Archive(ArchiveCommand::NewKey { id }) => {
            print!("{}", crate::infra::keys::generate_key(&id)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Log(LogCommand::VerifyConsistency {
            old,
            new,
            trust,
            proof,
            server,
        }) => Ok(verify_consistency(&old, &new, &trust, proof.as_deref(), server.as_deref()).await),
        Command::Bench(BenchCommand::Batch {
            letters,
            compose,
            database_url,
        }) => {
            let report = crate::bench::batch::run(letters, compose, database_url).await?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Send {
            csv,
            server,
            api_key,
            template,
            mode,
            report,
        } => {
            let options = crate::cli::send::SendOptions {
                csv,
                server,
                api_key,
                template,
                mode,
                report,
                poll: std::time::Duration::from_millis(250),
            };
            match crate::cli::send::send(&options).await {
                Ok(summary) => {
                    println!(
                        "batch {}: {} — {} rows, {} deposited, {} rejected",
                        summary.batch_id,
                        summary.state,
                        summary.total,
                        summary.deposited,
                        summary.rejected
                    );
                    if let Some(path) = &summary.report {
                        println!("refused rows: {}", path.display());
                    }
                    Ok(if summary.is_complete() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    })
                }
                Err(e) => {
                    eprintln!("error: {}", error_chain(&e));
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Bench(BenchCommand::Deposit {
            letters,
            database_url,
            threads,
        }) => {
            let report = crate::bench::deposit::run(
                letters,
                database_url,
                threads.unwrap_or_else(available_cores),
            )
            .await?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Renew {
            letters,
            database_url,
            threads,
        }) => {
            let report = crate::bench::renew::run(
                letters,
                database_url,
                threads.unwrap_or_else(available_cores),
            )
            .await?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
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

/// `recommande archive audit`.
async fn archive_audit(
    settings: Settings,
    sample: Option<u64>,
    out: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let service = Service::start(settings, Arc::new(SystemClock))
        .await
        .context("starting the service to audit its archive")?;
    let scope = match sample {
        Some(n) => crate::app::audit::AuditScope::Sample(n),
        None => crate::app::audit::AuditScope::All,
    };
    let audit = match crate::app::audit::run(&service, scope).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: the audit could not run: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let stem = dir.join(format!("audit-{}", audit.report.id));
        for (ext, bytes) in [
            ("json", &audit.bytes),
            ("p7s", &audit.seal),
            ("tsr", &audit.timestamp_token),
        ] {
            let path = stem.with_extension(ext);
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        eprintln!(
            "report written to {}.json (.p7s seal, .tsr timestamp)",
            stem.display()
        );
    }
    let r = &audit.report;
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
    } else {
        println!(
            "Archive audit {} ({}): {} documents, {} letters, {} evidence records, {} log leaves, {} tree heads checked",
            r.id,
            r.scope,
            r.documents_checked,
            r.letters_checked,
            r.evidence_checked,
            r.log_leaves_checked,
            r.tree_heads_checked
        );
        for f in &r.failures {
            let mut place = Vec::new();
            if let Some(v) = &f.letter_id {
                place.push(format!("letter {v}"));
            }
            if let Some(v) = &f.evidence_id {
                place.push(format!("evidence {v}"));
            }
            if let Some(v) = &f.document_id {
                place.push(format!("document {v}"));
            }
            if let Some(v) = f.log_position {
                place.push(format!("log position {v}"));
            }
            println!(
                "FAILED {} [{}] {}: {}",
                f.check,
                f.area,
                place.join(", "),
                f.detail
            );
        }
        println!("{}", if r.passed { "PASSED" } else { "FAILED" });
    }
    service.storage.close().await;
    Ok(if r.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `recommande log verify-consistency`: prints the verdict; the exit code says it.
async fn verify_consistency(
    old: &std::path::Path,
    new: &std::path::Path,
    trust: &std::path::Path,
    proof: Option<&std::path::Path>,
    server: Option<&str>,
) -> ExitCode {
    use crate::core::log::{ConsistencyProof, PublishedTreeHead, root_of};
    let unusable = |message: String| {
        eprintln!("error: {message}");
        ExitCode::from(2)
    };
    let invalid = |message: String| {
        println!("NOT CONSISTENT: {message}");
        ExitCode::from(1)
    };
    let anchors = match std::fs::read(trust)
        .map_err(|e| e.to_string())
        .and_then(|pem| crate::core::trust::TrustAnchors::from_pem(&pem).map_err(|e| e.to_string()))
    {
        Ok(a) => a,
        Err(e) => return unusable(format!("cannot use trust anchors {}: {e}", trust.display())),
    };
    let read_head = |path: &std::path::Path| -> Result<PublishedTreeHead, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not a published tree head: {e}", path.display()))
    };
    let (old_head, new_head) = match (read_head(old), read_head(new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => return unusable(e),
    };
    let (old_head, old_time) = match old_head.verify(&anchors) {
        Ok(v) => v,
        Err(e) => return invalid(format!("the old tree head is not genuine: {e}")),
    };
    let (new_head, new_time) = match new_head.verify(&anchors) {
        Ok(v) => v,
        Err(e) => return invalid(format!("the new tree head is not genuine: {e}")),
    };
    if new_head.tree_size < old_head.tree_size {
        return invalid(format!(
            "the new head has fewer leaves ({}) than the old one ({})",
            new_head.tree_size, old_head.tree_size
        ));
    }
    let (Ok(old_root), Ok(new_root)) = (root_of(&old_head), root_of(&new_head)) else {
        return invalid("a root hash cannot be read".into());
    };
    let consistent = if old_head.tree_size == new_head.tree_size {
        old_root == new_root
    } else {
        let proof: ConsistencyProof = match (proof, server) {
            (Some(path), _) => match std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(p) => p,
                Err(e) => return unusable(format!("cannot read proof {}: {e}", path.display())),
            },
            (None, Some(server)) => {
                let url = format!(
                    "{}/v1/log/proofs/consistency?from={}&to={}",
                    server.trim_end_matches('/'),
                    old_head.tree_size,
                    new_head.tree_size
                );
                let fetched = match reqwest::get(&url).await {
                    Ok(r) if r.status().is_success() => {
                        r.bytes().await.map_err(|e| e.to_string()).and_then(|b| {
                            serde_json::from_slice::<ConsistencyProof>(&b)
                                .map_err(|e| e.to_string())
                        })
                    }
                    Ok(r) => return unusable(format!("{url} answered {}", r.status())),
                    Err(e) => return unusable(format!("cannot fetch {url}: {e}")),
                };
                match fetched {
                    Ok(p) => p,
                    Err(e) => return unusable(format!("{url} did not return a proof: {e}")),
                }
            }
            (None, None) => {
                return unusable(
                    "give the consistency proof with --proof FILE or --server URL".into(),
                );
            }
        };
        proof.from == old_head.tree_size
            && proof.to == new_head.tree_size
            && proof.verify(&old_root, &new_root)
    };
    if !consistent {
        return invalid(format!(
            "the tree of {} leaves (root {}) is not a prefix of the tree of {} leaves (root {}): history was changed",
            old_head.tree_size, old_head.root_hash, new_head.tree_size, new_head.root_hash
        ));
    }
    println!(
        "CONSISTENT: the log only grew from {} leaves (head timestamped {}) to {} leaves (head timestamped {}); both heads are sealed and timestamped by the provider.",
        old_head.tree_size,
        rfc3339_micros(old_time),
        new_head.tree_size,
        rfc3339_micros(new_time)
    );
    ExitCode::SUCCESS
}

/// `recommande pki rotate`.
async fn pki_rotate(settings: Settings, validity_days: Option<u32>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        settings.pki.is_development(),
        "pki rotate rotates the generated development PKI; with production keys, configure the new [pki] files, list the old root in [pki] retired_roots, restart, then run `recommande archive renew --all --reason \"key rotation\"`"
    );
    let validity = validity_days.unwrap_or(settings.pki.development_validity_days);
    anyhow::ensure!(
        (1..=36_525).contains(&validity),
        "--validity-days must be between 1 and 36525"
    );
    let dir = settings.server.data_dir.join("pki");
    let retired =
        crate::core::pki::rotate_development_pki(&dir, time::OffsetDateTime::now_utc(), validity)
            .with_context(|| format!("rotating the development PKI in {}", dir.display()))?;
    eprintln!(
        "new root, seal and TSA in {}; the retired certificates are kept in {}",
        dir.display(),
        retired.display()
    );
    let service = Service::start(settings, Arc::new(SystemClock))
        .await
        .context("starting the service with the new keys")?;
    report_renewal(
        crate::app::renewal::renew(
            &service,
            "key rotation",
            crate::app::renewal::Scope::Everything,
        )
        .await,
        false,
    )
}

fn report_renewal(
    outcome: Result<crate::app::renewal::RenewalOutcome, crate::app::renewal::RenewalError>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: the renewal failed: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        match (&outcome.renewal_id, &outcome.root, &outcome.timestamp_time) {
            (Some(id), Some(root), Some(at)) => println!(
                "Renewal {id}: {} records covered, root {root}, timestamped at {at} ({:.3} s)",
                outcome.records, outcome.seconds
            ),
            _ => println!("No record due for renewal"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `recommande verify`: prints the report; the exit code says the verdict.
fn verify(
    bundle: &std::path::Path,
    trust: Option<&std::path::Path>,
    json: bool,
    lang: Lang,
    at: Option<&str>,
) -> ExitCode {
    let unusable = |message: String| {
        eprintln!("{message}");
        ExitCode::from(2)
    };
    let at = match at {
        None => time::OffsetDateTime::now_utc(),
        Some(text) => {
            match time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            {
                Ok(t) => t,
                Err(e) => {
                    return unusable(format!(
                        "error: --at {text:?} is not an RFC 3339 time such as 2040-01-01T00:00:00Z: {e}"
                    ));
                }
            }
        }
    };
    let anchors = match trust {
        Some(path) => match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|pem| {
                crate::core::trust::TrustAnchors::from_pem(&pem).map_err(|e| e.to_string())
            }) {
            Ok(a) => Some(a),
            Err(e) => {
                return unusable(format!(
                    "error: cannot use trust anchors {}: {e}",
                    path.display()
                ));
            }
        },
        None => None,
    };
    let file = match std::fs::File::open(bundle) {
        Ok(f) => std::io::BufReader::new(f),
        Err(e) => return unusable(format!("error: cannot open {}: {e}", bundle.display())),
    };
    let report = match crate::core::bundle::verify::verify_bundle(file, anchors.as_ref(), at) {
        Ok(r) => r,
        Err(e) => return unusable(format!("error: {e}")),
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => return unusable(format!("error: {e}")),
        }
    } else {
        print_report(&report, lang);
    }
    if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_report(report: &crate::core::bundle::verify::BundleReport, lang: Lang) {
    let fr = lang == Lang::Fr;
    let letter = report.letter_id.as_deref().unwrap_or("?");
    let verdict = match (report.is_valid(), fr) {
        (true, true) => "VALIDE",
        (false, true) => "NON VALIDE",
        (true, false) => "VALID",
        (false, false) => "NOT VALID",
    };
    if fr {
        println!("Dossier de preuves de la lettre {letter} : {verdict}");
    } else {
        println!("Proof bundle of letter {letter}: {verdict}");
    }
    if !report.anchored_outside {
        println!(
            "{}",
            if fr {
                "ATTENTION : la confiance n'est ancrée que dans le dossier lui-même. Cela prouve son intégrité, pas son origine : vérifiez à nouveau avec --trust et les certificats racines publiés par le prestataire."
            } else {
                "WARNING: trust is anchored only in the bundle itself. That proves its integrity, not its origin: verify again with --trust and the provider's published root certificates."
            }
        );
    }
    println!();
    for e in &report.events {
        println!(
            "  {}  {}  sha256 {}",
            e.timestamp.as_deref().unwrap_or("?"),
            e.event,
            e.sha256
        );
    }
    println!();
    for c in &report.checks {
        let mark = match (c.passed, fr) {
            (true, _) => "[OK]",
            (false, true) => "[ÉCHEC]",
            (false, false) => "[FAIL]",
        };
        println!("{mark} {} · {} — {}", c.scope, c.name, c.detail);
    }
}

fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    let listen = settings.server.listen;
    let service = Service::start(settings, Arc::new(SystemClock))
        .await
        .context("the service refused to start")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(
        listen = %listen,
        database = service.storage.engine(),
        public_url = %service.settings.server.public_url,
        "recommande is serving"
    );
    crate::http::serve(service, listener)
        .await
        .context("HTTP server failed")?;
    Ok(ExitCode::SUCCESS)
}

async fn open_storage(location: &Location) -> anyhow::Result<Storage> {
    let settings = location.settings()?;
    if settings.database.url.starts_with("sqlite:") {
        crate::infra::private_files::create_dir(&settings.server.data_dir)
            .with_context(|| format!("cannot create {}", settings.server.data_dir.display()))?;
    }
    Storage::connect(&settings.database.url)
        .await
        .context("cannot open the database")
}

async fn api_key(cmd: ApiKeyCommand) -> anyhow::Result<ExitCode> {
    let now = unix_micros(time::OffsetDateTime::now_utc());
    match cmd {
        ApiKeyCommand::Create { tenant, location } => {
            let tenant = tenant.trim();
            anyhow::ensure!(
                !tenant.is_empty() && tenant.len() <= 200 && !tenant.chars().any(char::is_control),
                "--tenant must be a non-empty name of at most 200 characters"
            );
            let settings = location.settings()?;
            let keyring = crate::infra::keys::Keyring::load(
                settings.archive.master_key.as_ref().map(|k| k.expose()),
                &settings.archive.master_key_files,
                &settings.server.data_dir,
            )
            .context("cannot load the master keys that seal the API-key HMAC secret")?;
            let storage = open_storage(&location).await?;
            let hasher = ApiKeyHasher::load(&storage, &keyring, now).await?;
            let (id, key) = hasher.create(&storage, tenant, now).await?;
            tracing::info!(api_key.id = %id, tenant = %tenant, "API key created");
            println!("{key}");
            storage.close().await;
        }
        ApiKeyCommand::List { tenant, location } => {
            let storage = open_storage(&location).await?;
            let keys = storage.list_api_keys(tenant.as_deref()).await?;
            println!("{:<36}  {:<24}  {:<27}  revoked", "id", "tenant", "created");
            for k in keys {
                println!(
                    "{:<36}  {:<24}  {:<27}  {}",
                    k.id,
                    k.tenant_name,
                    rfc3339_micros(from_unix_micros(k.created_at)),
                    k.revoked_at
                        .map(|t| rfc3339_micros(from_unix_micros(t)))
                        .unwrap_or_else(|| "-".into())
                );
            }
            storage.close().await;
        }
        ApiKeyCommand::Revoke { id, location } => {
            let storage = open_storage(&location).await?;
            let revoked = storage.revoke_api_key(&id, now).await?;
            storage.close().await;
            if !revoked {
                eprintln!("error: no active API key with id {id}");
                return Ok(ExitCode::FAILURE);
            }
            println!("revoked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
