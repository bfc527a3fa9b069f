//! The real `recommande serve` process: its workers notify by themselves, a `kill -9` right
//! after a deposit loses nothing and duplicates no evidence, and one between the relay taking
//! the notification and the evidence commit is followed by a byte-identical resend that the
//! evidence covers; a SIGTERM during a notification or a batch drains the workers and gives
//! their claims back, so that the restarted process goes on at once.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Connection;

use crate::helpers::{Engine, fresh_database, letter_body, sample_pdf};
use crate::smtp::SmtpSink;

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The binary with `database` (`None`: the data directory's SQLite file).
fn recommande(database: Option<&str>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_recommande"));
    match database {
        Some(url) => command.env("RECOMMANDE_DATABASE_URL", url),
        None => command.env_remove("RECOMMANDE_DATABASE_URL"),
    };
    command.env("RUST_LOG", "warn");
    command
}

async fn serve(data: &std::path::Path, smtp: &str, port: u16) -> Server {
    serve_on(data, None, smtp, port).await
}

async fn serve_on(data: &std::path::Path, database: Option<&str>, smtp: &str, port: u16) -> Server {
    serve_with(data, database, Some(smtp), port, &[]).await
}

/// The service on `port` with the environment `env`; `smtp` `None` writes mails into the
/// data directory.
async fn serve_with(
    data: &std::path::Path,
    database: Option<&str>,
    smtp: Option<&str>,
    port: u16,
    env: &[(&str, &str)],
) -> Server {
    let mut command = recommande(database);
    command
        .args(["serve", "--data-dir"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")]);
    if let Some(smtp) = smtp {
        command.args(["--smtp-url", smtp]);
    }
    command.envs(env.iter().copied());
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start recommande serve");
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return Server { child, base };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("recommande serve did not come up on {base}");
}

fn api_key(data: &std::path::Path) -> String {
    api_key_on(data, None)
}

fn api_key_on(data: &std::path::Path, database: Option<&str>) -> String {
    let out = recommande(database)
        .args([
            "api-key",
            "create",
            "--tenant",
            "Cabinet Recouvr",
            "--data-dir",
        ])
        .arg(data)
        .output()
        .expect("api-key create");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

async fn deposit(client: &reqwest::Client, base: &str, key: &str) -> String {
    let part = reqwest::multipart::Part::bytes(sample_pdf("process")).file_name("relance.pdf");
    let doc: Value = client
        .post(format!("{base}/v1/documents"))
        .bearer_auth(key)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    let letter: Value = client
        .post(format!("{base}/v1/letters"))
        .bearer_auth(key)
        .json(&letter_body(doc["id"].as_str().expect("id")))
        .send()
        .await
        .expect("deposit")
        .json()
        .await
        .expect("json");
    letter["id"].as_str().expect("letter id").to_string()
}

async fn wait_for_state(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    id: &str,
    state: &str,
) -> Value {
    for _ in 0..200 {
        let letter: Value = client
            .get(format!("{base}/v1/letters/{id}"))
            .bearer_auth(key)
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("json");
        if letter["state"] == state {
            return letter;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("letter {id} never reached {state}");
}

crate::on_both_engines!(
    a_kill_after_the_relay_took_the_notification_is_followed_by_the_same_bytes_and_their_evidence,
    a_sigterm_during_a_notification_gives_its_claim_back_and_the_restart_sends_at_once,
    a_sigterm_during_a_batch_gives_its_lease_back_and_the_restart_completes_it_at_once,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_process_notifies_by_itself_and_survives_a_kill_after_deposit() {
    let Some(sink) = SmtpSink::start(&[], 0) else {
        return;
    };
    let data = tempfile::tempdir().expect("dir");
    let key = api_key(data.path());
    let client = reqwest::Client::new();
    let port = free_port();

    // Killed with SIGKILL as soon as the deposit is acknowledged.
    let mut first = serve(data.path(), &sink.url(), port).await;
    let letter_id = deposit(&client, &first.base, &key).await;
    first.child.kill().expect("kill -9");
    first.child.wait().expect("reaped");
    drop(first);

    // Restarted: the outbox still holds the notification (or it was already sent); either
    // way the letter ends notified with exactly one notification evidence.
    let second = serve(data.path(), &sink.url(), port).await;
    let letter = wait_for_state(&client, &second.base, &key, &letter_id, "notified").await;
    let events: Vec<&str> = letter["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .map(|e| e["event"].as_str().expect("event"))
        .collect();
    assert_eq!(
        events,
        ["SubmissionAcceptance", "NotificationForAcceptance"]
    );
    let mails = sink.wait_for(1).await;
    assert!(
        !mails.is_empty() && mails.len() <= 2,
        "at least once, at most one resend: {}",
        mails.len()
    );

    // And a second letter on the running process is notified by its workers alone.
    let other = deposit(&client, &second.base, &key).await;
    wait_for_state(&client, &second.base, &key, &other, "notified").await;
}

/// Runs `sql` on the database of the stopped service (SQLite file or PostgreSQL).
pub(crate) async fn execute(database: &str, sql: &str) -> u64 {
    let result = if database.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(database)
            .await
            .expect("open the SQLite file");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut conn)
            .await
            .map(|r| r.rows_affected())
    } else {
        let mut conn = sqlx::PgConnection::connect(database)
            .await
            .expect("connect to PostgreSQL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut conn)
            .await
            .map(|r| r.rows_affected())
    };
    result.expect("SQL on the stopped service's database")
}

/// The value of header `name` in a raw message.
fn header(raw: &[u8], name: &str) -> String {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    head.split("\r\n")
        .find_map(|line| {
            line.split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {name} header in {text}"))
}

async fn a_kill_after_the_relay_took_the_notification_is_followed_by_the_same_bytes_and_their_evidence(
    engine: Engine,
) {
    // Arrange: a relay that stores the first message and holds back its 250.
    let Some(sink) = SmtpSink::start_holding(1) else {
        return;
    };
    let data = tempfile::tempdir().expect("dir");
    let Some(database) = fresh_database(engine, data.path()).await else {
        return;
    };
    let key = api_key_on(data.path(), Some(&database));
    let client = reqwest::Client::new();
    let port = free_port();
    let mut first = serve_on(data.path(), Some(&database), &sink.url(), port).await;
    let letter_id = deposit(&client, &first.base, &key).await;

    // Act: the relay has the whole message; the service is killed before it can learn so,
    // hence before any evidence commit. Killing after the 250 left the relay would race
    // the service's commit (a few ms); this order always lands in the window, and what the
    // service holds is the same: a message handed over, no evidence of it. Then the relay
    // answers 250 into the dead connection and keeps the message, as a relay that took
    // responsibility for it would (RFC 5321 §6.1), so the recipient has this first copy.
    sink.wait_until_held(1).await;
    first.child.kill().expect("kill -9");
    first.child.wait().expect("reaped");
    drop(first);
    sink.release(1);
    // The dead worker's claim is leased for 5 minutes; end it now instead of waiting.
    let released = execute(
        &database,
        "UPDATE outbox SET run_after = 0 WHERE kind = 'notify' AND done_at IS NULL AND mail_sealed IS NOT NULL",
    )
    .await;
    assert_eq!(
        released, 1,
        "the claimed job kept its message before the hand-over"
    );
    let second = serve_on(data.path(), Some(&database), &sink.url(), port).await;
    let letter = wait_for_state(&client, &second.base, &key, &letter_id, "notified").await;

    // Assert: two copies, byte for byte the same, and the evidence names them.
    let mails = sink.raw_messages();
    assert_eq!(mails.len(), 2, "the first copy and the retry");
    assert_eq!(
        header(&mails[0], "Message-ID"),
        header(&mails[1], "Message-ID")
    );
    let digest = hex::encode(Sha256::digest(&mails[0]));
    assert_eq!(digest, hex::encode(Sha256::digest(&mails[1])));
    assert!(mails[0] == mails[1], "byte-identical resend");
    let evidence = letter["evidence"].as_array().expect("evidence");
    let events: Vec<&str> = evidence
        .iter()
        .map(|e| e["event"].as_str().expect("event"))
        .collect();
    assert_eq!(
        events,
        ["SubmissionAcceptance", "NotificationForAcceptance"]
    );
    let link = evidence[1]["files"]["json"].as_str().expect("record link");
    let url = if link.starts_with("http") {
        link.to_string()
    } else {
        format!("{}{link}", second.base)
    };
    let record: Value = client
        .get(url)
        .bearer_auth(&key)
        .send()
        .await
        .expect("GET record")
        .json()
        .await
        .expect("record json");
    let notification = &record["details"]["notification"];
    assert_eq!(notification["message_sha256"], digest.as_str());
    assert_eq!(
        format!("<{}>", notification["message_id"].as_str().expect("id")),
        header(&mails[0], "Message-ID")
    );
    assert_eq!(notification["attempt"], 2, "{record}");
}

/// `[workers] shutdown_grace_seconds` from the environment.
const GRACE: &str = "RECOMMANDE_WORKERS_SHUTDOWN_GRACE_SECONDS";
const METRICS_TOKEN: &str = "process-test-metrics-token-0123456789";

/// The value of the sample `line` (name and labels) on `/metrics`.
async fn metric(client: &reqwest::Client, base: &str, line: &str) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {line} in {text}"))
}

/// Sends SIGTERM to the server and waits (bounded) for it to exit; returns how long it took.
async fn terminate(server: &mut Server, bound: Duration) -> Duration {
    let started = std::time::Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    loop {
        if let Some(exit) = server.child.try_wait().expect("try_wait") {
            assert!(exit.success(), "a drained service exits cleanly: {exit}");
            return started.elapsed();
        }
        assert!(
            started.elapsed() < bound,
            "the service did not exit within {bound:?} of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `attempt` recorded in the notification evidence of `letter`.
async fn notification_attempt(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    letter: &Value,
) -> i64 {
    let link = letter["evidence"][1]["files"]["json"]
        .as_str()
        .expect("record link");
    let url = if link.starts_with("http") {
        link.to_string()
    } else {
        format!("{base}{link}")
    };
    let record: Value = client
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .expect("GET record")
        .json()
        .await
        .expect("record json");
    record["details"]["notification"]["attempt"]
        .as_i64()
        .expect("attempt")
}

/// The letter once in `state`, waiting at most `bound`.
async fn letter_within(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    id: &str,
    state: &str,
    bound: Duration,
) -> Value {
    let started = std::time::Instant::now();
    loop {
        let letter: Value = client
            .get(format!("{base}/v1/letters/{id}"))
            .bearer_auth(key)
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("json");
        if letter["state"] == state {
            return letter;
        }
        assert!(
            started.elapsed() < bound,
            "letter {id} not {state} within {bound:?}: {letter}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_sigterm_during_a_notification_gives_its_claim_back_and_the_restart_sends_at_once(
    engine: Engine,
) {
    // Arrange: a relay that holds back its 250 to the first message; three letters.
    let Some(sink) = SmtpSink::start_holding(1) else {
        return;
    };
    let data = tempfile::tempdir().expect("dir");
    let Some(database) = fresh_database(engine, data.path()).await else {
        return;
    };
    let key = api_key_on(data.path(), Some(&database));
    let client = reqwest::Client::new();
    let port = free_port();
    let mut first = serve_with(
        data.path(),
        Some(&database),
        Some(&sink.url()),
        port,
        &[(GRACE, "2")],
    )
    .await;
    let mut letters = Vec::new();
    for _ in 0..3 {
        letters.push(deposit(&client, &first.base, &key).await);
    }

    // Act: SIGTERM while the first notification waits for the relay's answer. The pass
    // cannot finish within the 2 s grace; it is cut and its claims given back.
    sink.wait_until_held(1).await;
    let took = terminate(&mut first, Duration::from_secs(30)).await;
    assert!(
        took >= Duration::from_secs(2),
        "the pass in progress had its grace period: {took:?}"
    );
    drop(first);
    // The relay keeps the message it had (RFC 5321 §6.1); the service never learnt so.
    sink.release(1);

    // Assert: restarted, every letter is notified well before the 5-minute job lease would
    // have lapsed.
    let restarted = std::time::Instant::now();
    let second = serve_with(data.path(), Some(&database), Some(&sink.url()), port, &[]).await;
    // The held message is the relay's first; notifications claimed together are handed over
    // at once, so which letter it belongs to is read from its Message-ID.
    let mails_before_restart = sink.raw_messages();
    let first_id = header(&mails_before_restart[0], "Message-ID");
    let held: Vec<&String> = letters
        .iter()
        .filter(|id| first_id.contains(id.as_str()))
        .collect();
    assert_eq!(
        held.len(),
        1,
        "the held message names one letter: {first_id}"
    );
    for id in &letters {
        let letter = letter_within(
            &client,
            &second.base,
            &key,
            id,
            "notified",
            Duration::from_secs(60).saturating_sub(restarted.elapsed()),
        )
        .await;
        let events: Vec<&str> = letter["evidence"]
            .as_array()
            .expect("evidence")
            .iter()
            .map(|e| e["event"].as_str().expect("event"))
            .collect();
        assert_eq!(
            events,
            ["SubmissionAcceptance", "NotificationForAcceptance"]
        );
        let attempt = notification_attempt(&client, &second.base, &key, &letter).await;
        if id == held[0] {
            // Cut during its hand-over: that attempt counts (the same kept bytes were sent
            // again).
            assert_eq!(attempt, 2, "the cut attempt counts");
        } else {
            // Handed over and recorded while the held one waited, claimed but never started,
            // or never claimed: no attempt spent.
            assert_eq!(attempt, 1, "a job given back unstarted keeps its attempts");
        }
    }
    assert!(restarted.elapsed() < Duration::from_secs(60));
    let mails = sink.raw_messages();
    assert_eq!(
        mails.len(),
        4,
        "the held copy, its resend and two notifications"
    );
    let copies: Vec<&Vec<u8>> = mails
        .iter()
        .filter(|m| header(m, "Message-ID") == first_id)
        .collect();
    assert_eq!(copies.len(), 2, "the held notification and its resend");
    assert!(
        copies[0] == copies[1],
        "the cut notification is resent byte for byte"
    );
}

async fn a_sigterm_during_a_batch_gives_its_lease_back_and_the_restart_completes_it_at_once(
    engine: Engine,
) {
    // Arrange: a batch large enough (ten chunks) to be depositing when SIGTERM comes.
    let data = tempfile::tempdir().expect("dir");
    let Some(database) = fresh_database(engine, data.path()).await else {
        return;
    };
    let key = api_key_on(data.path(), Some(&database));
    let client = reqwest::Client::new();
    let port = free_port();
    let mut first = serve_with(data.path(), Some(&database), None, port, &[(GRACE, "10")]).await;
    let part = reqwest::multipart::Part::bytes(sample_pdf("batch")).file_name("relance.pdf");
    let doc: Value = client
        .post(format!("{}/v1/documents", first.base))
        .bearer_auth(&key)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    let rows = 5_000;
    let letters: Vec<Value> = (0..rows)
        .map(|i| {
            serde_json::json!({"recipient": {"name": format!("Débiteur {i}"), "email": format!("debiteur{i}@exemple.fr"), "kind": "professional"},
                   "reference": format!("DRAIN-{i}")})
        })
        .collect();
    let body = serde_json::json!({
        "defaults": {"sender": {"name": "Cabinet Recouvr", "email": "envoi@recouvr.fr"}, "documents": [doc["id"]]},
        "letters": letters,
    });
    let response = client
        .post(format!("{}/v1/batches", first.base))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .expect("POST /v1/batches");
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.expect("json");
    let id = accepted["id"].as_str().expect("id").to_string();
    let view = |base: String| {
        let (client, key, id) = (client.clone(), key.clone(), id.clone());
        async move {
            client
                .get(format!("{base}/v1/batches/{id}"))
                .bearer_auth(&key)
                .send()
                .await
                .expect("GET batch")
                .json::<Value>()
                .await
                .expect("json")
        }
    };

    // Act: SIGTERM once the first chunk is committed, while the others are on their way.
    let mut before = Value::Null;
    for _ in 0..1_200 {
        before = view(first.base.clone()).await;
        if before["deposited"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        before["state"], "depositing",
        "SIGTERM lands mid-batch: {before}"
    );
    terminate(&mut first, Duration::from_secs(40)).await;
    drop(first);

    // Assert: restarted, the batch is taken over at once (its lease, 120 s, was given back)
    // and completes, every row deposited exactly once.
    let restarted = std::time::Instant::now();
    let second = serve_with(
        data.path(),
        Some(&database),
        None,
        port,
        &[("RECOMMANDE_METRICS_TOKEN", METRICS_TOKEN)],
    )
    .await;
    let mut after;
    loop {
        after = view(second.base.clone()).await;
        if after["state"] != "depositing" {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(60),
            "the batch was not completed within 60 s of the restart: {after}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(after["state"], "completed", "{after}");
    assert_eq!(after["deposited"], rows);
    // The resumer's pass that took the batch over is on /metrics, and it did not fail.
    let resumer = r#"{worker="batch_resumer"}"#;
    // The pass commits the batch's completion before the runner records its end: wait
    // (bounded) for the record rather than read the metrics in between.
    let mut last_success = 0.0;
    for _ in 0..100 {
        last_success = metric(
            &client,
            &second.base,
            &format!("recommande_worker_last_success_timestamp_seconds{resumer}"),
        )
        .await;
        let runs = metric(
            &client,
            &second.base,
            &format!("recommande_worker_runs_total{resumer}"),
        )
        .await;
        if last_success > 0.0 && runs >= 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    assert!(
        last_success > now - 120.0 && last_success <= now + 1.0,
        "{last_success} vs {now}"
    );
    let resumer_runs = metric(
        &client,
        &second.base,
        &format!("recommande_worker_runs_total{resumer}"),
    )
    .await;
    assert!(
        resumer_runs >= 2.0,
        "the takeover, then a pass that found none"
    );
    let errors = metric(
        &client,
        &second.base,
        &format!("recommande_worker_errors_total{resumer}"),
    )
    .await;
    assert_eq!(errors, 0.0);
    let letters: i64 = after["letters_by_state"]
        .as_object()
        .expect("letters by state")
        .values()
        .map(|n| n.as_i64().expect("count"))
        .sum();
    assert_eq!(letters, rows, "no row deposited twice: {after}");
}
