//! Database outages (issue 12 §0): a PostgreSQL connection blip in the middle of a batch is
//! waited out, and the batch resumes from its last committed chunk instead of ending `failed`;
//! a PostgreSQL server that goes silent altogether gets 503 answers within the pool's acquire
//! timeout, and the service recovers by itself once the server is back.

use crate::helpers::header_str;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use recommande::core::clock::SystemClock;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::helpers::{Engine, fresh_database, letter_body, settings_for, spawn_app, start_on};

/// A TCP relay in front of the test PostgreSQL server that can play a dead server: when cut,
/// it drops every open connection and accepts new ones that never get a byte back (a host
/// that went silent, the worst case for a client: no refusal to act on, only timeouts).
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    async fn start(upstream: String) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0u64);
        let task = {
            let up = up.clone();
            let cuts = cuts.clone();
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let mut cut = cuts.subscribe();
                    if !up.load(Ordering::SeqCst) {
                        // Silent: read and drop whatever comes, answer nothing, ever.
                        tokio::spawn(async move {
                            let mut sink = [0u8; 1024];
                            while client.read(&mut sink).await.is_ok_and(|n| n > 0) {}
                        });
                        continue;
                    }
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            })
        };
        Relay {
            port,
            up,
            cuts,
            task,
        }
    }

    /// The server goes silent: open connections drop, new ones hang.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// The server is back.
    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// `url` with its `host:port` replaced by the relay's.
fn through(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("URL scheme");
    let (authority, path) = rest.split_once('/').expect("URL path");
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:5432")
    };
    (
        format!("{scheme}://{userinfo}127.0.0.1:{port}/{path}"),
        host,
    )
}

/// Checks `response` is a 503 problem with Retry-After, answered within `bound` of `start`.
async fn assert_fast_503(what: &str, response: reqwest::Response, start: Instant, bound: Duration) {
    let elapsed = start.elapsed();
    let status = response.status();
    let content_type = header_str(&response, "content-type")
        .unwrap_or_default()
        .to_string();
    let retry_after = response.headers().get("retry-after").cloned();
    let body = response.text().await.unwrap_or_default();
    eprintln!("{what}: {status} after {elapsed:?}");
    assert_eq!(status, 503, "{what}: {body}");
    assert!(
        content_type.starts_with("application/problem+json"),
        "{what}: {content_type}"
    );
    assert!(retry_after.is_some(), "{what}: no Retry-After");
    assert!(elapsed < bound, "{what} took {elapsed:?}");
}

/// Terminates every backend of `database` but our own, as an operator or a failover would.
async fn terminate_backends(server: &str, database: &str) -> u64 {
    let Ok(mut conn) = sqlx::PgConnection::connect(server).await else {
        return 0;
    };
    let terminated = sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(database)
    .fetch_all(&mut conn)
    .await
    .map(|rows| rows.len() as u64)
    .unwrap_or(0);
    conn.close().await.ok();
    terminated
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_connection_blip_during_a_batch_is_waited_out_and_the_batch_completes() {
    let Some(app) = spawn_app(Engine::Postgres).await else {
        return;
    };
    let Ok(server) = std::env::var("TEST_DATABASE_URL") else {
        return;
    };
    let database = app
        .database_url
        .rsplit_once('/')
        .map(|(_, name)| name.to_string())
        .expect("database name");
    let document = app.upload_pdf().await;
    let rows = 3_000;
    let letters: Vec<Value> = (0..rows)
        .map(|i| {
            json!({"recipient": {"name": format!("Débiteur {i}"), "email": format!("debiteur{i}@exemple.fr"), "kind": "professional"},
                   "reference": format!("BLIP-{i}")})
        })
        .collect();
    let body = json!({
        "defaults": {"sender": {"name": "Cabinet Recouvr", "email": "envoi@recouvr.fr"}, "documents": [document]},
        "letters": letters,
    });

    // Act: the batch is accepted, then every backend is terminated a few times while it runs.
    let response = app
        .post_raw("/v1/batches", "application/json", body.to_string())
        .await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.expect("json");
    let id = accepted["id"].as_str().expect("id").to_string();
    let mut terminated = 0;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        terminated += terminate_backends(&server, &database).await;
    }
    assert!(
        terminated > 0,
        "the blip terminated the service's connections"
    );

    // Assert: the batch ends completed with every row deposited once.
    let mut view = Value::Null;
    for _ in 0..1_200 {
        let response = app.get(&format!("/v1/batches/{id}")).await;
        if response.status() == 200 {
            view = response.json().await.expect("json");
            if view["state"] != "depositing" {
                break;
            }
        } else {
            // Reads during the blip may meet the outage; they say so, and when to retry.
            assert_eq!(response.status(), 503);
            assert!(response.headers().contains_key("retry-after"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(view["state"], "completed", "{view}");
    assert_eq!(view["deposited"], rows);
    assert_eq!(view["letters_by_state"]["deposited"], rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_postgres_server_gets_fast_503s_and_the_service_recovers_when_it_is_back() {
    // Arrange: the service reaches its fresh database only through the relay.
    let dir = tempfile::tempdir().expect("dir");
    let Some(direct) = fresh_database(Engine::Postgres, dir.path()).await else {
        return;
    };
    let (_, upstream) = through(&direct, 0);
    let relay = Relay::start(upstream).await;
    let (database_url, _) = through(&direct, relay.port);
    let settings = settings_for(dir.path(), &database_url);
    let app = start_on(
        tempfile::tempdir().expect("unused"),
        database_url,
        settings,
        Arc::new(SystemClock),
    )
    .await;
    let document = app.upload_pdf().await;
    let body = letter_body(&document);
    assert_eq!(app.post_letter(&body).await.status(), 201);

    // Act: the server goes silent.
    relay.cut();

    // Assert: within the 3 s pool acquire timeout and a margin, never a hang or a 500.
    let bound = Duration::from_millis(4_500);
    for _ in 0..2 {
        let start = Instant::now();
        let response = app.get_anon("/healthz").await;
        assert_fast_503("GET /healthz", response, start, bound).await;
        let start = Instant::now();
        let response = app.post_letter(&body).await;
        assert_fast_503("POST /v1/letters", response, start, bound).await;
    }

    // And once the server answers again, so does the service, without a restart.
    relay.restore();
    let mut healthy = false;
    for _ in 0..100 {
        let response = app.get_anon("/healthz").await;
        if response.status() == 200 {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "/healthz never answered 200 again");
    let response = app.post_letter(&body).await;
    assert_eq!(response.status(), 201, "a deposit after the outage");
    assert_eq!(
        app.letter_count().await,
        2,
        "nothing half-written during the outage"
    );
}
