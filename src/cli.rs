//! The command line: `serve`, `api-key`, `send`, `bench`, `verify`. This is CLI glue, so it
//! uses `anyhow`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::api_key::ApiKeyHasher;
use crate::clock::{SystemClock, from_unix_micros, rfc3339_micros, unix_micros};
use crate::config::{Overrides, Settings};
use crate::service::Service;
use crate::storage::Storage;

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
        Command::Verify {
            bundle,
            trust,
            json,
            lang,
        } => Ok(verify(&bundle, trust.as_deref(), json, lang)),
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
            let options = crate::batch::send::SendOptions {
                csv,
                server,
                api_key,
                template,
                mode,
                report,
                poll: std::time::Duration::from_millis(250),
            };
            match crate::batch::send::send(&options).await {
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

/// `recommande verify`: prints the report; the exit code says the verdict.
fn verify(
    bundle: &std::path::Path,
    trust: Option<&std::path::Path>,
    json: bool,
    lang: Lang,
) -> ExitCode {
    let unusable = |message: String| {
        eprintln!("{message}");
        ExitCode::from(2)
    };
    let anchors = match trust {
        Some(path) => match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|pem| crate::trust::TrustAnchors::from_pem(&pem).map_err(|e| e.to_string()))
        {
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
    let report = match crate::bundle::verify::verify_bundle(file, anchors.as_ref()) {
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

fn print_report(report: &crate::bundle::verify::BundleReport, lang: Lang) {
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
    let listen = settings.listen;
    let service = Service::start(settings, Arc::new(SystemClock))
        .await
        .context("the service refused to start")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(
        listen = %listen,
        database = service.storage.engine(),
        public_url = %service.settings.public_url,
        "recommande is serving"
    );
    crate::http::serve(service, listener)
        .await
        .context("HTTP server failed")?;
    Ok(ExitCode::SUCCESS)
}

async fn open_storage(location: &Location) -> anyhow::Result<Storage> {
    let settings = location.settings()?;
    if settings.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    }
    Storage::connect(&settings.database_url)
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
            let storage = open_storage(&location).await?;
            let hasher = ApiKeyHasher::load(&storage, now).await?;
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
