//! `recommande send`: deposits a CSV file through a server's API, for agencies without an
//! integration. The file is sent once as a batch with an `Idempotency-Key` derived from its
//! SHA-256 (and the options), so running the same command again never deposits twice; the
//! progress is shown on stderr while `GET /v1/batches/{id}` is polled; the per-row errors
//! are written to a CSV report. This is CLI glue, so it uses `anyhow`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What to send, where.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// The CSV file (UTF-8, `;` or `,`, header row of column names).
    pub csv: PathBuf,
    /// Base URL of the server, e.g. `https://lre.example.fr`.
    pub server: String,
    /// API key of the sending account.
    pub api_key: String,
    /// Template merged under each row.
    pub template: Option<String>,
    /// `valid_rows` or `all_or_nothing`.
    pub mode: Option<String>,
    /// Where to write the per-row errors (default `<csv>.errors.csv`).
    pub report: Option<PathBuf>,
    /// How often to poll.
    pub poll: Duration,
}

/// The outcome of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendSummary {
    /// Batch id.
    pub batch_id: String,
    /// Final state.
    pub state: String,
    /// Rows in the file.
    pub total: i64,
    /// Letters deposited.
    pub deposited: i64,
    /// Rows refused.
    pub rejected: i64,
    /// The error report, when rows were refused.
    pub report: Option<PathBuf>,
}

impl SendSummary {
    /// Whether every row was deposited.
    pub fn is_complete(&self) -> bool {
        self.state == "completed" && self.rejected == 0
    }
}

/// Sends the file and follows the batch to its end.
pub async fn send(options: &SendOptions) -> anyhow::Result<SendSummary> {
    let body = std::fs::read(&options.csv)
        .with_context(|| format!("cannot read {}", options.csv.display()))?;
    let mut query = Vec::new();
    if let Some(template) = &options.template {
        query.push(("template", template.as_str()));
    }
    if let Some(mode) = &options.mode {
        query.push(("mode", mode.as_str()));
    }
    // The same file with the same options is the same batch: a rerun after a network failure
    // is answered with the batch already recorded, never deposited twice.
    let mut digest = Sha256::new();
    digest.update(&body);
    for (k, v) in &query {
        digest.update(format!("\n{k}={v}").as_bytes());
    }
    let idempotency_key = format!("send-{}", hex::encode(digest.finalize()));
    let server = options.server.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .user_agent(concat!("recommande-send/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let mut url = reqwest::Url::parse(&format!("{server}/v1/batches"))
        .with_context(|| format!("--server {server} is not a URL"))?;
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    let response = client
        .post(url)
        .bearer_auth(&options.api_key)
        .header("content-type", "text/csv; charset=utf-8")
        .header("idempotency-key", &idempotency_key)
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach {server}"))?;
    let accepted = answer(response).await?;
    let batch_id = accepted["id"]
        .as_str()
        .context("the server answered without a batch id")?
        .to_string();
    eprintln!("batch {batch_id} accepted");

    // On a terminal the progress line is rewritten in place; in a log or a pipe each change
    // is a line of its own (no carriage returns).
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_line = String::new();
    let mut failures = 0;
    let view = loop {
        let polled = client
            .get(format!("{server}/v1/batches/{batch_id}"))
            .bearer_auth(&options.api_key)
            .send()
            .await;
        // The batch is recorded: a brief outage while polling (a restart, a proxy reload) is
        // waited out rather than reported as a failed send.
        let response = match polled {
            Ok(response) => {
                failures = 0;
                response
            }
            Err(e) if failures < POLL_RETRIES && (e.is_connect() || e.is_timeout()) => {
                failures += 1;
                tokio::time::sleep(options.poll.max(std::time::Duration::from_millis(500))).await;
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot reach {server}")),
        };
        let view = answer(response).await?;
        let line = progress_line(&view);
        if line != last_line {
            if terminal {
                eprint!("\r{line}");
                let _ = std::io::stderr().flush();
            } else {
                eprintln!("{line}");
            }
            last_line = line;
        }
        if view["state"].as_str() != Some("depositing") {
            if terminal {
                eprintln!();
            }
            break view;
        }
        tokio::time::sleep(options.poll).await;
    };

    let errors = view["errors"].as_array().cloned().unwrap_or_default();
    let report = if errors.is_empty() {
        None
    } else {
        let path = options
            .report
            .clone()
            .unwrap_or_else(|| default_report_path(&options.csv));
        write_report(&path, &errors)?;
        Some(path)
    };
    Ok(SendSummary {
        batch_id,
        state: view["state"].as_str().unwrap_or("").to_string(),
        total: view["total"].as_i64().unwrap_or(0),
        deposited: view["deposited"].as_i64().unwrap_or(0),
        rejected: view["rejected"].as_i64().unwrap_or(0),
        report,
    })
}

/// `<input>.errors.csv` next to the input.
pub fn default_report_path(csv: &Path) -> PathBuf {
    let mut name = csv.as_os_str().to_os_string();
    name.push(".errors.csv");
    PathBuf::from(name)
}

/// A text progress bar: `[#########...........]  4500/10000 deposited, 3 rejected`.
fn progress_line(view: &Value) -> String {
    const WIDTH: i64 = 30;
    let total = view["total"].as_i64().unwrap_or(0).max(1);
    let deposited = view["deposited"].as_i64().unwrap_or(0);
    let rejected = view["rejected"].as_i64().unwrap_or(0);
    let done = ((deposited + rejected) * WIDTH / total).clamp(0, WIDTH);
    format!(
        "[{}{}] {}/{} deposited, {} rejected",
        "#".repeat(done as usize),
        ".".repeat((WIDTH - done) as usize),
        deposited,
        view["total"].as_i64().unwrap_or(0),
        rejected
    )
}

/// Writes `row;field;message` lines (the row is the CSV line number of the input).
fn write_report(path: &Path, errors: &[Value]) -> anyhow::Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(b';')
        .from_path(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writer.write_record(["row", "field", "message"])?;
    for e in errors {
        writer.write_record([
            e["row"].as_i64().unwrap_or(0).to_string(),
            e["field"].as_str().unwrap_or("").to_string(),
            e["message"].as_str().unwrap_or("").to_string(),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

/// The JSON body of a 2xx answer, or the problem's detail and fields as the error.
async fn answer(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let bytes = response.bytes().await?;
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(value);
    }
    let mut message = format!(
        "the server refused the batch (HTTP {status}): {}",
        value["detail"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned())
    );
    if let Some(errors) = value["errors"].as_array() {
        for e in errors {
            message.push_str(&format!(
                "\n  {}: {}",
                e["field"].as_str().unwrap_or(""),
                e["message"].as_str().unwrap_or("")
            ));
        }
    }
    anyhow::bail!(message)
}

/// Runs `recommande send` and prints the summary. Exit code 0: every row deposited; 1: rows
/// refused or the batch failed; 2: the file could not be sent.
/// Connection errors in a row tolerated while polling a recorded batch.
const POLL_RETRIES: u32 = 10;

pub(super) async fn run(options: &SendOptions) -> std::process::ExitCode {
    use std::process::ExitCode;
    match send(options).await {
        Ok(summary) => {
            println!(
                "batch {}: {} — {} rows, {} deposited, {} rejected",
                summary.batch_id, summary.state, summary.total, summary.deposited, summary.rejected
            );
            if let Some(path) = &summary.report {
                println!("refused rows: {}", path.display());
            }
            if summary.is_complete() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: {}", super::error_chain(&e));
            ExitCode::from(2)
        }
    }
}
