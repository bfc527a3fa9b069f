//! The `Idempotency-Key` claim: concurrent duplicates, freed keys, expired claims, replayed
//! headers, and the routes that took the header with it (holds, batch cancels).

use crate::helpers::header_bytes;
use recommande::core::timestamp::ParsedToken;
use recommande::http::idempotency::{PENDING_EXPIRY, request_fingerprint};
use recommande::infra::storage::IdempotencyRow;
use recommande::infra::storage::idempotency::Claimed;
use serde_json::Value;
use sqlx::{Connection, Row};

use crate::helpers::{Engine, TestApp, letter_body, spawn_app};

crate::on_both_engines!(
    concurrent_identical_deposits_with_one_key_seal_one_letter_once,
    a_refused_request_frees_its_key_for_a_corrected_retry,
    a_pending_claim_answers_409_until_it_expires_then_a_retry_takes_it_over,
    a_retried_hold_is_replayed_even_after_the_hold_was_lifted,
    a_retried_cancel_gets_the_cancelled_batch_again_instead_of_batch_final,
);

/// The TSA serial of a deposited letter's proof of deposit.
async fn deposit_serial(app: &TestApp, letter: &Value) -> u128 {
    let id = letter["id"].as_str().expect("id");
    let evidence = app.evidence_of(id).await;
    let token = ParsedToken::parse(&evidence[0].timestamp_token).expect("token");
    token
        .info()
        .serial
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b))
}

/// `SELECT COUNT(*) AS n …` on a connection of our own.
async fn count(app: &TestApp, engine: Engine, sql: &'static str) -> i64 {
    match engine {
        Engine::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .expect("connect");
            sqlx::query(sql)
                .fetch_one(&mut conn)
                .await
                .expect("count")
                .get("n")
        }
        Engine::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&app.database_url)
                .await
                .expect("connect");
            sqlx::query(sql)
                .fetch_one(&mut conn)
                .await
                .expect("count")
                .get("n")
        }
    }
}

/// Deposit evidence records (`SubmissionAcceptance`) in the whole database.
async fn deposit_evidence_count(app: &TestApp, engine: Engine) -> i64 {
    count(
        app,
        engine,
        "SELECT COUNT(*) AS n FROM evidence WHERE event = 'SubmissionAcceptance'",
    )
    .await
}

/// Everything else that takes a serial of the embedded TSA: other evidence (notifications)
/// and tree heads of the transparency log.
async fn other_timestamp_count(app: &TestApp, engine: Engine) -> i64 {
    count(
        app,
        engine,
        "SELECT (SELECT COUNT(*) FROM evidence WHERE event <> 'SubmissionAcceptance') \
         + (SELECT COUNT(*) FROM tree_heads) AS n",
    )
    .await
}

async fn concurrent_identical_deposits_with_one_key_seal_one_letter_once(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    let body = letter_body(&document);
    let before = deposit_serial(&app, &app.deposit().await).await;
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let request = app
                .client
                .post(app.url("/v1/letters"))
                .bearer_auth(&app.api_key)
                .header("Idempotency-Key", "same-8")
                .json(&body)
                .send();
            tokio::spawn(request)
        })
        .collect();
    let mut created = Vec::new();
    let mut replayed = 0;
    let mut in_progress = 0;
    for request in requests {
        let response = request.await.expect("task").expect("POST");
        let status = response.status().as_u16();
        let replay = response.headers().contains_key("idempotent-replayed");
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().expect("text").to_string());
        let value: Value = response.json().await.expect("json");
        match status {
            201 if replay => {
                replayed += 1;
                created.push(value["id"].as_str().expect("id").to_string());
            }
            201 => created.push(value["id"].as_str().expect("id").to_string()),
            409 => {
                assert_eq!(
                    value["type"], "urn:recommande:problem:idempotency-key-in-progress",
                    "{value}"
                );
                assert_eq!(retry_after.as_deref(), Some("1"));
                in_progress += 1;
            }
            other => panic!("unexpected {other}: {value}"),
        }
    }
    created.sort();
    created.dedup();
    assert_eq!(created.len(), 1, "one letter answered: {created:?}");
    assert_eq!(
        replayed + in_progress,
        7,
        "exactly one request did the deposit"
    );
    let after = deposit_serial(&app, &app.deposit().await).await;
    // The serials between the two probe letters: one proof of deposit for the whole burst
    // (concurrent duplicates never reach the sealer), plus whatever else was timestamped
    // meanwhile.
    let issued = i64::try_from(after - before - 1).expect("small");
    assert!(issued >= 1, "the burst's proof of deposit");
    let others = other_timestamp_count(&app, engine).await;
    assert!(
        issued <= 1 + others,
        "{issued} tokens for one deposit ({others} other timestamps)"
    );
    assert_eq!(app.letter_count().await, 3);
    assert_eq!(
        deposit_evidence_count(&app, engine).await,
        3,
        "one proof of deposit for the burst, one for each probe letter"
    );

    // Once settled, a retry replays the answer with its Location.
    let retry = app
        .post_letter_with(&app.api_key, &body, Some("same-8"))
        .await;
    assert_eq!(retry.status(), 201);
    let location = format!("/v1/letters/{}", created[0]);
    assert_eq!(
        retry
            .headers()
            .get("location")
            .map(|v| v.to_str().expect("text")),
        Some(location.as_str())
    );
    assert_eq!(
        header_bytes(&retry, "idempotent-replayed"),
        Some(&b"true"[..])
    );
    assert_eq!(deposit_evidence_count(&app, engine).await, 3);
}

async fn a_refused_request_frees_its_key_for_a_corrected_retry(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    let mut wrong = letter_body(&document);
    wrong["documents"] = Value::Array(Vec::new());
    let refused = app
        .post_letter_with(&app.api_key, &wrong, Some("fix-me"))
        .await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.expect("problem");
    assert_eq!(problem["type"], "urn:recommande:problem:validation-failed");
    assert!(
        app.service
            .storage
            .idempotency_row(&tenant_of(&app).await, "fix-me")
            .await
            .expect("read")
            .is_none(),
        "the claim of a refused request is released"
    );
    let corrected = app
        .post_letter_with(&app.api_key, &letter_body(&document), Some("fix-me"))
        .await;
    assert_eq!(corrected.status(), 201);
    assert!(!corrected.headers().contains_key("idempotent-replayed"));
    assert_eq!(app.letter_count().await, 1);
}

/// The tenant id of the app's API key, read from a letter it deposits.
async fn tenant_of(app: &TestApp) -> String {
    let caller = app
        .service
        .api_keys
        .authenticate(&app.service.storage, &app.api_key)
        .await
        .expect("authenticate")
        .expect("known key");
    caller.tenant_id
}

async fn a_pending_claim_answers_409_until_it_expires_then_a_retry_takes_it_over(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    let body = letter_body(&document);
    let bytes = serde_json::to_vec(&body).expect("json");
    let tenant = tenant_of(&app).await;
    let now = recommande::core::clock::unix_micros(app.service.clock.now());
    let expiry = i64::try_from(PENDING_EXPIRY.as_micros()).expect("fits");
    // A claim as a crashed process leaves it: pending, with the request's fingerprint.
    let claim = |key: &str, at: i64| IdempotencyRow {
        tenant_id: tenant.clone(),
        key: key.to_string(),
        route: "/v1/letters".into(),
        request_sha256: request_fingerprint("POST", "/v1/letters", &bytes),
        claim: format!("crashed-{key}"),
        done: false,
        status: 0,
        headers: String::new(),
        response: Vec::new(),
        created_at: at,
    };
    for (key, at) in [("fresh", now), ("stale", now - expiry - 1)] {
        assert_eq!(
            app.service
                .storage
                .claim_idempotency(&claim(key, at), 0)
                .await
                .expect("claim"),
            Claimed::Won
        );
    }

    // A live claim: the duplicate waits, nothing is deposited.
    let response = app
        .client
        .post(app.url("/v1/letters"))
        .bearer_auth(&app.api_key)
        .header("Idempotency-Key", "fresh")
        .header("content-type", "application/json")
        .body(bytes.clone())
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 409);
    assert_eq!(header_bytes(&response, "retry-after"), Some(&b"1"[..]));
    let problem: Value = response.json().await.expect("problem");
    assert_eq!(
        problem["type"],
        "urn:recommande:problem:idempotency-key-in-progress"
    );
    assert_eq!(app.letter_count().await, 0);

    // Another request on the live claim's key is refused as a reuse.
    let mut other = body.clone();
    other["reference"] = Value::String("OTHER".into());
    let reused = app
        .post_letter_with(&app.api_key, &other, Some("fresh"))
        .await;
    assert_eq!(reused.status(), 422);

    // An expired claim is taken over by the retry, which deposits once.
    let response = app
        .client
        .post(app.url("/v1/letters"))
        .bearer_auth(&app.api_key)
        .header("Idempotency-Key", "stale")
        .header("content-type", "application/json")
        .body(bytes.clone())
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 201);
    assert!(!response.headers().contains_key("idempotent-replayed"));
    assert_eq!(app.letter_count().await, 1);
    let row = app
        .service
        .storage
        .idempotency_row(&tenant, "stale")
        .await
        .expect("read")
        .expect("row");
    assert!(row.done);
    assert_eq!(row.status, 201);
    assert_ne!(row.claim, "crashed-stale");
    // The crashed process, were it still running, can no longer complete the claim.
    let late = IdempotencyRow {
        done: true,
        status: 201,
        response: b"{}".to_vec(),
        ..claim("stale", now)
    };
    assert!(matches!(
        app.service.storage.complete_idempotency(&late).await,
        Err(recommande::infra::storage::StorageError::IdempotencyClaimLost)
    ));
}

async fn a_retried_hold_is_replayed_even_after_the_hold_was_lifted(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let letter = app.deposit().await;
    let id = letter["id"].as_str().expect("id").to_string();
    let hold = |key: &'static str, letter: String| {
        app.client
            .post(app.url(&format!("/v1/letters/{letter}/hold")))
            .bearer_auth(&app.api_key)
            .header("Idempotency-Key", key)
            .send()
    };
    let first = hold("hold-1", id.clone()).await.expect("hold");
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.expect("json");
    assert_eq!(first["legal_hold"], true);
    let lifted = app
        .delete_as(&app.api_key, &format!("/v1/letters/{id}/hold"))
        .await;
    assert_eq!(lifted.status(), 200);

    // The late retry of the first POST answers as it did and places no hold again.
    let retry = hold("hold-1", id.clone()).await.expect("hold");
    assert_eq!(retry.status(), 200);
    assert!(retry.headers().contains_key("idempotent-replayed"));
    let retry: Value = retry.json().await.expect("json");
    assert_eq!(retry, first);
    let now: Value = app.get_json(&format!("/v1/letters/{id}")).await;
    assert_eq!(now["legal_hold"], false, "{now}");

    // The same key on another letter is another request.
    let other = app.deposit().await;
    let other = other["id"].as_str().expect("id").to_string();
    let reused = hold("hold-1", other).await.expect("hold");
    assert_eq!(reused.status(), 422);
    let problem: Value = reused.json().await.expect("problem");
    assert_eq!(
        problem["type"],
        "urn:recommande:problem:idempotency-key-reused"
    );
}

async fn a_retried_cancel_gets_the_cancelled_batch_again_instead_of_batch_final(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    let id = crate::batches::abandoned_batch(&app, &document, 3, 0).await;
    let cancel = |key: Option<&'static str>| {
        let mut request = app
            .client
            .post(app.url(&format!("/v1/batches/{id}/cancel")))
            .bearer_auth(&app.api_key);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send()
    };
    let first = cancel(Some("stop-1")).await.expect("cancel");
    assert_eq!(first.status(), 200);
    assert!(!first.headers().contains_key("idempotent-replayed"));
    let first: Value = first.json().await.expect("json");
    assert_eq!(first["state"], "cancelled", "{first}");

    let retry = cancel(Some("stop-1")).await.expect("cancel");
    assert_eq!(retry.status(), 200);
    assert!(retry.headers().contains_key("idempotent-replayed"));
    let retry: Value = retry.json().await.expect("json");
    assert_eq!(retry, first);

    // Without the key, a second cancel is refused as before.
    let again = cancel(None).await.expect("cancel");
    assert_eq!(again.status(), 409);
    let problem: Value = again.json().await.expect("problem");
    assert_eq!(problem["type"], "urn:recommande:problem:batch-final");
}
