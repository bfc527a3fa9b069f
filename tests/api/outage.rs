//! Database outages (issue 12 §0): a PostgreSQL connection blip in the middle of a batch is
//! waited out, and the batch resumes from its last committed chunk instead of ending `failed`.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::{Engine, spawn_app};

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
        .client
        .post(app.url("/v1/batches"))
        .bearer_auth(&app.api_key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST /v1/batches");
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
