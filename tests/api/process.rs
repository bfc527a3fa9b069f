//! The real `recommande serve` process: its workers notify by themselves, and a `kill -9`
//! right after a deposit loses nothing and duplicates no evidence.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{letter_body, sample_pdf};
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

async fn serve(data: &std::path::Path, smtp: &str, port: u16) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_recommande"))
        .args(["serve", "--data-dir"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--smtp-url", smtp])
        .env_remove("RECOMMANDE_DATABASE_URL")
        .env("RUST_LOG", "warn")
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
    let out = Command::new(env!("CARGO_BIN_EXE_recommande"))
        .args([
            "api-key",
            "create",
            "--tenant",
            "Cabinet Recouvr",
            "--data-dir",
        ])
        .arg(data)
        .env_remove("RECOMMANDE_DATABASE_URL")
        .env("RUST_LOG", "warn")
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
