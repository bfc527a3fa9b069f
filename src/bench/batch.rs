//! `recommande bench batch`: letters/s of a batch deposited end to end through the HTTP API
//! on loopback (POST `/v1/batches`, then polling `GET /v1/batches/{id}` until it is
//! completed), the peak resident memory of the process, and in the same run a raw batched
//! insert of rows of the same shape, so the ratio shows what the API, the evidence and the
//! outbox cost.

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::app::api_key::Caller;
use crate::core::clock::unix_micros;
use crate::domain::letter::{DepositRequest, EmailAddress, Recipient, RecipientKind, Sender};
use crate::infra::storage::{DocumentRow, NewDeposit};

/// Figures of one run.
#[derive(Debug, Clone)]
pub struct BatchBenchReport {
    /// Database engine.
    pub engine: &'static str,
    /// Letters in the batch.
    pub letters: usize,
    /// Each letter composed (a mise en demeure written and rendered per letter).
    pub compose: bool,
    /// Seconds from sending the POST to reading `completed`.
    pub seconds: f64,
    /// Seconds until the 202 answer.
    pub accepted_seconds: f64,
    /// Peak resident memory of the process (VmHWM), MiB.
    pub peak_rss_mib: Option<f64>,
    /// Raw batched insert of rows of the same shape, letters per second.
    pub raw_letters_per_second: f64,
    /// With `compose`: milliseconds to render one of the bench's letters on one thread, with
    /// the fast writer and with krilla, and the size of that letter's PDF (fast writer).
    pub render_ms: Option<(f64, f64, usize)>,
    /// Processor time of the process (user + system, all threads) from the POST to reading
    /// `completed`, seconds; `None` without `/proc/self/stat`.
    pub cpu_seconds: Option<f64>,
    /// Seconds each pipeline stage spent on this batch's chunks (render, place, seal,
    /// commit), summed over chunks; the stages overlap, so they add up to more than the
    /// batch took.
    pub stages: Vec<(&'static str, f64, u64)>,
}

impl fmt::Display for BatchBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = self.letters as f64 / self.seconds;
        writeln!(
            f,
            "bench batch ({}; {} letters, {}; HTTP on loopback)",
            self.engine,
            self.letters,
            if self.compose {
                "a mise en demeure composed and rendered as a PDF per letter"
            } else {
                "one shared document"
            }
        )?;
        writeln!(
            f,
            "  batch end to end  : {:>9.0} letters/s  ({:.3} s; 202 after {:.3} s)",
            rate, self.seconds, self.accepted_seconds
        )?;
        match self.peak_rss_mib {
            Some(mib) => writeln!(f, "  peak RSS (VmHWM)  : {mib:>9.1} MiB")?,
            None => writeln!(f, "  peak RSS (VmHWM)  :   unknown (no /proc/self/status)")?,
        }
        writeln!(
            f,
            "  raw batched insert: {:>9.0} letters/s  (letter, document link, evidence; {} per transaction)",
            self.raw_letters_per_second,
            crate::app::batch::CHUNK
        )?;
        write!(
            f,
            "  ratio             : {:>9.1} %",
            100.0 * rate / self.raw_letters_per_second
        )?;
        if let Some(cpu) = self.cpu_seconds {
            write!(
                f,
                "\n  processor time    : {:>9.3} ms per letter  ({cpu:.2} s user + system over {:.3} s: {:.0} % of one core)",
                cpu * 1000.0 / self.letters as f64,
                self.seconds,
                100.0 * cpu / self.seconds
            )?;
        }
        for (stage, seconds, chunks) in &self.stages {
            write!(
                f,
                "\n  stage {stage:<12}: {seconds:>9.3} s  ({chunks} chunks, {:.1} ms per chunk)",
                if *chunks > 0 {
                    seconds * 1000.0 / *chunks as f64
                } else {
                    0.0
                }
            )?;
        }
        if let Some((fast, krilla, size)) = self.render_ms {
            write!(
                f,
                "\n  render one letter : {fast:>9.3} ms fast writer, {krilla:.3} ms krilla (one thread; {:.0} letters/s/core); {:.1} KB",
                1000.0 / fast,
                size as f64 / 1000.0
            )?;
        }
        Ok(())
    }
}

/// Runs the benchmark on `database_url` (default: SQLite in a fresh temporary directory).
pub async fn run(
    letters: usize,
    compose: bool,
    database_url: Option<String>,
) -> anyhow::Result<BatchBenchReport> {
    anyhow::ensure!(
        (1..=crate::domain::batch::MAX_LETTERS_PER_BATCH).contains(&letters),
        "--letters must be from 1 to {}",
        crate::domain::batch::MAX_LETTERS_PER_BATCH
    );
    let scratch = super::Scratch::new();
    let service = scratch.service(database_url).await?;
    let (base, server) = super::serve_on_loopback(&service).await?;
    let now = unix_micros(service.clock.now());
    let tenant_name = format!("bench-{}", uuid::Uuid::new_v4());
    let (key_id, key) = service
        .api_keys
        .create(&service.storage, &tenant_name, now)
        .await?;
    let client = reqwest::Client::new();

    // One shared document, uploaded through the API as an agency would.
    let document_id = upload_document(&client, &base, &key).await?;

    let body = batch_body(letters, &document_id, 0, compose);
    // Warm-up: connections, page cache, code paths.
    let warm = submit(
        &client,
        &base,
        &key,
        batch_body(200, &document_id, 1, compose),
    )
    .await?;
    wait_completed(&client, &base, &key, &warm).await?;

    settle_stage_times().await;
    let stages_before: Vec<(f64, u64)> = crate::app::batch::Stage::ALL
        .iter()
        .map(|s| crate::app::batch::STAGE_TIMES.get(*s))
        .collect();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let id = submit(&client, &base, &key, body).await?;
    let accepted_seconds = started.elapsed().as_secs_f64();
    let deposited = wait_completed(&client, &base, &key, &id).await?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = cpu_before
        .zip(cpu_seconds())
        .map(|(before, after)| after - before);
    settle_stage_times().await;
    let stages = crate::app::batch::Stage::ALL
        .iter()
        .zip(stages_before)
        .map(|(stage, (seconds, chunks))| {
            let (now, chunks_now) = crate::app::batch::STAGE_TIMES.get(*stage);
            (stage.as_str(), now - seconds, chunks_now - chunks)
        })
        .collect();
    anyhow::ensure!(
        deposited == letters as i64,
        "the batch deposited {deposited} letters out of {letters}"
    );
    let peak_rss_mib = peak_rss_mib();

    // Rows of the same shape (letter, document link, sealed evidence), inserted raw.
    let tenant = service.storage.ensure_tenant(&tenant_name, now).await?;
    let caller = Caller {
        tenant_id: tenant.id.clone(),
        tenant_name: tenant.name.clone(),
        api_key_id: key_id,
    };
    let documents: Vec<DocumentRow> = service
        .storage
        .documents(&tenant.id, std::slice::from_ref(&document_id))
        .await?;
    let requests = (0..letters)
        .map(|i| request(i, &document_id))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let prepared = service
        .deposits
        .prepare_many(
            &caller,
            requests,
            &documents,
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        )
        .await?;
    let raw: Vec<NewDeposit> = prepared
        .iter()
        .map(|p| {
            let mut row = p.to_new_deposit();
            row.jobs.clear();
            row
        })
        .collect();
    let raw_started = Instant::now();
    for chunk in raw.chunks(crate::app::batch::CHUNK) {
        service.storage.insert_deposits(chunk, None).await?;
    }
    let raw_seconds = raw_started.elapsed().as_secs_f64();
    let engine = service.storage.engine();
    server.abort();
    service.storage.close().await;
    let render_ms = if compose {
        Some(tokio::task::spawn_blocking(render_figures).await??)
    } else {
        None
    };

    Ok(BatchBenchReport {
        engine,
        letters,
        compose,
        seconds,
        accepted_seconds,
        peak_rss_mib,
        raw_letters_per_second: letters as f64 / raw_seconds,
        render_ms,
        cpu_seconds,
        stages,
    })
}

/// Uploads one small PDF through the API, as an agency would; returns its id.
pub(super) async fn upload_document(
    client: &reqwest::Client,
    base: &str,
    key: &str,
) -> anyhow::Result<String> {
    let pdf =
        crate::core::pdf_check::minimal_pdf(&format!("recommande bench {}", uuid::Uuid::new_v4()));
    let boundary = "recommande-bench-boundary";
    let mut multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"relance.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    multipart.extend_from_slice(&pdf);
    multipart.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let uploaded: Value = read_json(
        client
            .post(format!("{base}/v1/documents"))
            .bearer_auth(key)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(multipart)
            .send()
            .await?,
    )
    .await?;
    Ok(uploaded["id"]
        .as_str()
        .context("upload answered without an id")?
        .to_string())
}

/// Waits (up to a second) until every sealed chunk's commit is counted: a chunk's commit time
/// is added just after its transaction, when the batch may already read `completed`.
async fn settle_stage_times() {
    use crate::app::batch::{STAGE_TIMES, Stage};
    for _ in 0..100 {
        if STAGE_TIMES.get(Stage::Commit).1 >= STAGE_TIMES.get(Stage::Seal).1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Processor time of this process so far (user + system, every thread), seconds, from
/// `/proc/self/stat` (fields 14 and 15, in USER_HZ ticks: 100 per second on Linux).
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after it follow its ')'.
    let after = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}

/// Milliseconds per letter to render the bench's first letter, fast writer and krilla, and
/// the size of its PDF.
fn render_figures() -> anyhow::Result<(f64, f64, usize)> {
    use crate::domain::collection::pdf::{Backend, render_with};
    let body: Value = serde_json::from_slice(&batch_body(1, "", 0, true))?;
    let mut request = body["defaults"]["compose"].clone();
    if let (Some(target), Some(row)) = (
        request.as_object_mut(),
        body["letters"][0]["compose"].as_object(),
    ) {
        target.extend(row.clone());
    }
    let now = time::OffsetDateTime::now_utc();
    let composition = crate::domain::collection::ComposeRequest::parse(
        &request,
        now.date(),
        &crate::domain::collection::RatesTable::embedded(),
    )
    .map_err(|e| anyhow::anyhow!("bench letter: {e:?}"))?;
    let letter = crate::domain::collection::write_letter(&composition, None)
        .map_err(|e| anyhow::anyhow!("bench letter: {e:?}"))?;
    let summary = serde_json::to_vec(&letter.summary(&composition))?;
    let time = |backend: Backend, n: u32| -> anyhow::Result<f64> {
        let started = Instant::now();
        for _ in 0..n {
            render_with(backend, &letter, "Mise en demeure", "Bench", now, &summary)
                .map_err(anyhow::Error::msg)?;
        }
        Ok(started.elapsed().as_secs_f64() * 1000.0 / f64::from(n))
    };
    let size = render_with(
        Backend::Fast,
        &letter,
        "Mise en demeure",
        "Bench",
        now,
        &summary,
    )
    .map_err(anyhow::Error::msg)?
    .len();
    Ok((time(Backend::Fast, 500)?, time(Backend::Krilla, 50)?, size))
}

/// A JSON batch of `letters` professional recipients sharing one sender and either one
/// document or, with `compose`, a mise en demeure written for each (its own debtor, invoice
/// and amount: one PDF per letter).
pub(super) fn batch_body(letters: usize, document_id: &str, run: usize, compose: bool) -> Vec<u8> {
    let rows: Vec<Value> = (0..letters)
        .map(|i| {
            let mut row = json!({
                "recipient": {
                    "name": format!("Débiteur n°{i}"),
                    "email": format!("debiteur{i}.{run}@exemple.fr"),
                    "kind": "professional"
                },
                "reference": format!("DOS-{run}-{i:06}")
            });
            if compose {
                row["compose"] = json!({
                    "debtor": {"name": format!("Débiteur n°{i} SARL"), "address": format!("{} rue du Port\n13002 Marseille", i % 200 + 1), "kind": "professional"},
                    "invoices": [{"number": format!("F-{run}-{i:06}"), "issue_date": "2026-05-01", "due_date": "2026-05-31", "amount_cents": 50_000 + (i as i64 % 977) * 100}]
                });
            }
            row
        })
        .collect();
    let defaults = if compose {
        json!({
            "sender": {"name": "Cabinet de recouvrement Exemple", "email": "envoi@recouvrement.example"},
            "compose": {
                "kind": "mise_en_demeure",
                "creditor": {"name": "Atelier Durand SARL", "address": "12 rue des Lilas\n69003 Lyon", "siren": "732829320"},
                "agency": {"name": "Cabinet de recouvrement Exemple", "address": "8 avenue Foch\n75116 Paris", "mandate_reference": "MAN-2026-77"},
                "payment": {"iban": "FR76 3000 6000 0112 3456 7890 189"}
            }
        })
    } else {
        json!({
            "sender": {"name": "Cabinet de recouvrement Exemple", "email": "envoi@recouvrement.example"},
            "documents": [document_id]
        })
    };
    json!({
        "defaults": defaults,
        "letters": rows
    })
    .to_string()
    .into_bytes()
}

fn request(i: usize, document_id: &str) -> anyhow::Result<DepositRequest> {
    Ok(DepositRequest {
        sender: Sender {
            name: "Cabinet de recouvrement Exemple".into(),
            email: EmailAddress::parse("envoi@recouvrement.example").map_err(anyhow::Error::msg)?,
            organization: None,
        },
        recipient: Recipient {
            name: format!("Débiteur n°{i}"),
            email: EmailAddress::parse(&format!("debiteur{i}.raw@exemple.fr"))
                .map_err(anyhow::Error::msg)?,
            kind: RecipientKind::Professional,
            consent_id: None,
        },
        reference: Some(format!("DOS-raw-{i:06}")),
        document_ids: vec![document_id.to_string()],
        compose: None,
        template_id: None,
        collection: None,
    })
}

pub(super) async fn submit(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    body: Vec<u8>,
) -> anyhow::Result<String> {
    let response = client
        .post(format!("{base}/v1/batches"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let accepted = read_json(response).await?;
    Ok(accepted["id"]
        .as_str()
        .context("the batch was answered without an id")?
        .to_string())
}

/// Polls the batch until it is final; returns the letters deposited.
pub(super) async fn wait_completed(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    id: &str,
) -> anyhow::Result<i64> {
    loop {
        let view = read_json(
            client
                .get(format!("{base}/v1/batches/{id}"))
                .bearer_auth(key)
                .send()
                .await?,
        )
        .await?;
        match view["state"].as_str() {
            Some("depositing") => tokio::time::sleep(Duration::from_millis(20)).await,
            Some("completed") => return Ok(view["deposited"].as_i64().unwrap_or(0)),
            other => anyhow::bail!("the batch ended {other:?}: {view}"),
        }
    }
}

pub(super) async fn read_json(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let bytes = response.bytes().await?;
    anyhow::ensure!(
        status.is_success(),
        "HTTP {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    Ok(serde_json::from_slice(&bytes)?)
}

/// Peak resident set size of this process (Linux `VmHWM`), MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
