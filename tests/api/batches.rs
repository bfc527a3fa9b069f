//! Batches through the real router: JSON and CSV bodies, per-row errors, modes, idempotent
//! retries, limits, notifications and webhooks after a batch, and `recommande send`.

use crate::helpers::header_bytes;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Engine, TestApp, openssl_cms_verify, openssl_ts_verify, spawn_app};

crate::on_both_engines!(
    a_json_batch_deposits_each_letter_with_its_evidence_and_notification,
    csv_batches_with_semicolons_or_commas_deposit_valid_rows_and_report_the_others_by_line,
    all_or_nothing_deposits_nothing_when_one_row_is_invalid,
    a_retried_batch_is_answered_with_the_same_batch_and_never_deposited_twice,
    bodies_that_are_not_batches_are_refused_with_a_precise_problem,
    more_than_ten_thousand_letters_are_refused,
    a_completed_batch_is_announced_to_webhooks,
    the_send_command_deposits_a_csv_file_and_writes_the_refused_rows,
    an_abandoned_batch_is_resumed_and_deposited_once_even_by_two_runners,
    a_resumed_batch_continues_after_its_last_committed_chunk,
    batches_are_listed_newest_first_by_page_and_status_and_csv_booleans_are_checked_per_row,
    a_cancelled_batch_deposits_no_further_row_and_a_final_one_cannot_be_cancelled,
    a_header_of_a_hundred_thousand_unknown_columns_gets_a_small_answer,
);

fn defaults(document: &str) -> Value {
    json!({
        "sender": {"name": "Cabinet Recouvr", "email": "envoi@recouvr.fr"},
        "documents": [document]
    })
}

fn recipient(i: usize) -> Value {
    json!({"recipient": {"name": format!("Débiteur {i}"), "email": format!("debiteur{i}@exemple.fr"), "kind": "professional"},
           "reference": format!("DOS-{i}")})
}

/// Posts a batch, expects 202, and waits for its final state.
async fn deposit_batch(app: &TestApp, content_type: &str, query: &str, body: Vec<u8>) -> Value {
    let response = app.post_batch(content_type, query, body, None).await;
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().expect("ascii").to_string());
    let accepted: Value = response.json().await.expect("json");
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().expect("id");
    assert_eq!(
        location.as_deref(),
        Some(format!("/v1/batches/{id}").as_str())
    );
    app.wait_batch(id).await
}

async fn batch_letters(app: &TestApp) -> Vec<Value> {
    let page: Value = app.get_json("/v1/letters?limit=500").await;
    page["items"].as_array().expect("items").clone()
}

/// Runs the outbox until it is empty; returns the `.eml` notification files written.
async fn run_outbox(app: &TestApp) -> usize {
    for _ in 0..50 {
        let claimed = app.service.lifecycle.run_due_jobs(64).await.expect("jobs");
        if claimed == 0 {
            break;
        }
    }
    match std::fs::read_dir(app.dir.path().join("mail")) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .count(),
        Err(_) => 0,
    }
}

async fn a_json_batch_deposits_each_letter_with_its_evidence_and_notification(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    let letters: Vec<Value> = (0..5).map(recipient).collect();
    let body = json!({"defaults": defaults(&document), "letters": letters});

    let view = deposit_batch(&app, "application/json", "", body.to_string().into_bytes()).await;

    assert_eq!(view["state"], "completed", "{view}");
    assert_eq!(view["source"], "json");
    assert_eq!(view["total"], 5);
    assert_eq!(view["deposited"], 5);
    assert_eq!(view["rejected"], 0);
    assert_eq!(view["letters_by_state"]["deposited"], 5);
    assert_eq!(view["errors"], json!([]));
    let listed = batch_letters(&app).await;
    assert_eq!(listed.len(), 5);
    let mut references: Vec<&str> = listed
        .iter()
        .map(|l| l["reference"].as_str().expect("reference"))
        .collect();
    references.sort();
    assert_eq!(references, ["DOS-0", "DOS-1", "DOS-2", "DOS-3", "DOS-4"]);
    for letter in &listed {
        assert_eq!(letter["sender"]["email"], "envoi@recouvr.fr");
        assert_eq!(letter["documents"][0]["id"], document.as_str());
        assert_eq!(letter["evidence"][0]["event"], "SubmissionAcceptance");
    }
    // One proof of deposit checked with openssl alone, and its record naming the batch row.
    let letter_id = listed[2]["id"].as_str().expect("id");
    let evidence_id = listed[2]["evidence"][0]["id"].as_str().expect("evidence");
    let dir = tempfile::tempdir().expect("dir");
    let files = app
        .download_evidence(letter_id, evidence_id, dir.path())
        .await;
    let (ok, out) = openssl_cms_verify(&files.json, &files.p7s, &files.roots);
    assert!(ok, "{out}");
    let (ok, out) = openssl_ts_verify(&files.json, &files.tsr, &files.roots);
    assert!(ok, "{out}");
    let record: Value =
        serde_json::from_slice(&std::fs::read(&files.json).expect("record")).expect("json");
    assert_eq!(record["details"]["batch"]["id"], view["id"]);
    assert_eq!(
        record["details"]["batch"]["row"].as_i64(),
        listed[2]["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("DOS-"))
            .and_then(|n| n.parse().ok())
    );

    let mails = run_outbox(&app).await;

    assert_eq!(mails, 5, "one notification per letter");
    let view = app.wait_batch(view["id"].as_str().expect("id")).await;
    assert_eq!(view["notified"], 5, "{view}");
    assert_eq!(view["letters_by_state"]["notified"], 5);
    for letter in batch_letters(&app).await {
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
    }
    assert_eq!(run_outbox(&app).await, 5, "no notification is sent twice");

    // A batch letter's proof bundle verifies offline like any other.
    let bundle = app
        .get(&format!("/v1/letters/{letter_id}/bundle.zip"))
        .await
        .bytes()
        .await
        .expect("bundle");
    let report = recommande::core::bundle::verify::verify_bundle(
        std::io::Cursor::new(bundle.to_vec()),
        Some(&app.service.anchors),
        time::OffsetDateTime::now_utc(),
    )
    .expect("readable bundle");
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    assert!(report.is_valid(), "{failed:?}");
}

async fn csv_batches_with_semicolons_or_commas_deposit_valid_rows_and_report_the_others_by_line(
    engine: Engine,
) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    let mut deposited = 0;
    for (sep, label) in [(';', "semicolon"), (',', "comma")] {
        let csv = format!(
            "recipient.name{sep}recipient.email{sep}recipient.kind{sep}reference\n\
             \"Dupont{sep} père et fils\"{sep}compta@dupont.fr{sep}professional{sep}CSV-{label}-1\n\
             Martin{sep}martin-at-exemple{sep}robot{sep}CSV-{label}-2\n\
             Durand{sep}durand@exemple.fr{sep}consumer{sep}CSV-{label}-3\n\
             Bernard{sep}bernard@exemple.fr{sep}professional{sep}CSV-{label}-4\n"
        );
        let query = format!(
            "?sender.name=Cabinet%20Recouvr&sender.email=envoi%40recouvr.fr&documents={document}"
        );

        let view = deposit_batch(&app, "text/csv; charset=utf-8", &query, csv.into_bytes()).await;

        assert_eq!(view["state"], "completed", "{view}");
        assert_eq!(view["source"], "csv");
        assert_eq!(view["total"], 4);
        assert_eq!(view["deposited"], 2, "{view}");
        assert_eq!(view["rejected"], 2, "{view}");
        let errors: Vec<(i64, &str)> = view["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| {
                assert!(!e["message"].as_str().expect("message").is_empty());
                (
                    e["row"].as_i64().expect("row"),
                    e["field"].as_str().expect("field"),
                )
            })
            .collect();
        // Line numbers: the header is line 1.
        assert_eq!(
            errors,
            [
                (3, "recipient.email"),
                (3, "recipient.kind"),
                (4, "recipient.consent_id")
            ],
            "{sep}: {view}"
        );
        deposited += 2;
        let letters = batch_letters(&app).await;
        assert_eq!(letters.len(), deposited);
        assert!(
            letters
                .iter()
                .any(|l| l["recipient"]["name"] == format!("Dupont{sep} père et fils"))
        );
    }
}

async fn all_or_nothing_deposits_nothing_when_one_row_is_invalid(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    let mut letters: Vec<Value> = (0..4).map(recipient).collect();
    letters[2]["recipient"]["email"] = json!("nobody");
    letters[3]["documents"] = json!(["0192f3a4-5b6c-7d8e-9f00-112233445566"]);
    let body =
        json!({"defaults": defaults(&document), "letters": letters, "mode": "all_or_nothing"});

    let view = deposit_batch(&app, "application/json", "", body.to_string().into_bytes()).await;

    assert_eq!(view["state"], "rejected", "{view}");
    assert_eq!(view["mode"], "all_or_nothing");
    assert_eq!(view["deposited"], 0);
    assert_eq!(view["rejected"], 2);
    let errors = view["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 2, "{view}");
    assert_eq!(errors[0]["row"], 2);
    assert_eq!(errors[0]["field"], "recipient.email");
    assert_eq!(errors[1]["row"], 3);
    assert_eq!(errors[1]["field"], "documents[0]");
    assert!(
        errors[1]["message"]
            .as_str()
            .expect("message")
            .contains("no document")
    );
    assert_eq!(app.letter_count().await, 0, "nothing deposited");

    // The same rows, valid, in all_or_nothing mode are all deposited.
    let letters: Vec<Value> = (0..4).map(recipient).collect();
    let body = json!({"defaults": defaults(&document), "letters": letters});
    let view = deposit_batch(
        &app,
        "application/json",
        "?mode=all_or_nothing",
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(view["state"], "completed", "{view}");
    assert_eq!(view["deposited"], 4);
    assert_eq!(app.letter_count().await, 4);
}

async fn a_retried_batch_is_answered_with_the_same_batch_and_never_deposited_twice(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    let letters: Vec<Value> = (0..3).map(recipient).collect();
    let body = json!({"defaults": defaults(&document), "letters": letters}).to_string();

    let first = app
        .post_batch(
            "application/json",
            "",
            body.clone().into_bytes(),
            Some("lot-42"),
        )
        .await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.expect("json");
    let id = first["id"].as_str().expect("id");
    app.wait_batch(id).await;
    let retry = app
        .post_batch(
            "application/json",
            "",
            body.clone().into_bytes(),
            Some("lot-42"),
        )
        .await;

    assert_eq!(retry.status(), 202);
    assert_eq!(
        header_bytes(&retry, "idempotent-replayed"),
        Some(&b"true"[..])
    );
    let retry: Value = retry.json().await.expect("json");
    assert_eq!(retry["id"], first["id"]);
    assert_eq!(app.letter_count().await, 3, "no second deposit");

    let other = json!({"defaults": defaults(&document), "letters": [recipient(9)]}).to_string();
    let reused = app
        .post_batch("application/json", "", other.into_bytes(), Some("lot-42"))
        .await;
    assert_eq!(reused.status(), 422);
    let problem: Value = reused.json().await.expect("json");
    assert_eq!(
        problem["type"],
        "urn:recommande:problem:idempotency-key-reused"
    );
    assert_eq!(app.letter_count().await, 3);
}

async fn bodies_that_are_not_batches_are_refused_with_a_precise_problem(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    // (content type, query, body, status, problem slug, text the problem must contain)
    type Case = (
        &'static str,
        &'static str,
        Vec<u8>,
        u16,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "text/csv",
            "",
            b"recipient.name;recipient.email\nD\xe9biteur;d@exemple.fr\n".to_vec(),
            400,
            "batch-not-utf8",
            "line 2",
        ),
        (
            "text/csv",
            "",
            b"\n".to_vec(),
            422,
            "csv-header-missing",
            "header",
        ),
        (
            "text/csv",
            "",
            b"recipient.name;colour;recipient.name\nA;b;c\n".to_vec(),
            422,
            "invalid-batch",
            "colour",
        ),
        (
            "text/csv",
            "",
            b"recipient.name\n".to_vec(),
            422,
            "batch-empty",
            "no letter",
        ),
        (
            "application/json",
            "",
            br#"{"letters": [], "colour": 1}"#.to_vec(),
            422,
            "invalid-batch",
            "colour",
        ),
        (
            "application/json",
            "",
            b"{".to_vec(),
            400,
            "malformed-json",
            "JSON",
        ),
        (
            "application/json",
            "?sender.name=X",
            br#"{"letters": [{}]}"#.to_vec(),
            400,
            "invalid-query",
            "defaults",
        ),
        (
            "text/csv",
            "?template=relance",
            b"recipient.name\nA\n".to_vec(),
            422,
            "unknown-template",
            "relance",
        ),
        (
            "text/plain",
            "",
            b"x".to_vec(),
            415,
            "unsupported-media-type",
            "text/csv",
        ),
    ];
    for (content_type, query, body, status, slug, needle) in cases {
        let response = app.post_batch(content_type, query, body, None).await;
        assert_eq!(response.status(), status, "{slug}");
        let problem: Value = response.json().await.expect("problem");
        assert_eq!(
            problem["type"],
            format!("urn:recommande:problem:{slug}"),
            "{problem}"
        );
        let text = problem.to_string();
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
    let duplicate = app
        .post_batch(
            "text/csv",
            "",
            b"recipient.name;recipient.name\nA;B\n".to_vec(),
            None,
        )
        .await;
    let problem: Value = duplicate.json().await.expect("problem");
    assert_eq!(problem["errors"][0]["field"], "recipient.name");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .expect("m")
            .contains("twice")
    );
    let unknown = app
        .get("/v1/batches/0192f3a4-5b6c-7d8e-9f00-112233445566")
        .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(app.letter_count().await, 0);
}

async fn more_than_ten_thousand_letters_are_refused(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let letters: Vec<Value> = (0..10_001).map(|_| json!({})).collect();
    let body = json!({"letters": letters}).to_string();

    let response = app
        .post_batch("application/json", "", body.into_bytes(), None)
        .await;

    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("problem");
    assert_eq!(problem["type"], "urn:recommande:problem:too-many-letters");
    let detail = problem["detail"].as_str().expect("detail");
    assert!(
        detail.contains("10001") && detail.contains("10000"),
        "{detail}"
    );
}

#[derive(Clone, Default)]
struct Hooks(Arc<Mutex<Vec<Value>>>);

async fn hook(State(hooks): State<Hooks>, body: Bytes) -> StatusCode {
    hooks
        .0
        .lock()
        .expect("lock")
        .push(serde_json::from_slice(&body).expect("json body"));
    StatusCode::OK
}

async fn a_completed_batch_is_announced_to_webhooks(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    let hooks = Hooks::default();
    let router = axum::Router::new()
        .route("/hooks", axum::routing::post(hook))
        .with_state(hooks.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.expect("receiver") });
    let created = app
        .post_json(
            "/v1/webhooks",
            &json!({"url": url, "secret": "whsec-0123456789-abcdef",
                      "events": ["batch.completed", "letter.deposited"]}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let document = app.upload_pdf().await;
    let mut letters: Vec<Value> = (0..3).map(recipient).collect();
    letters[1]["recipient"]["kind"] = json!("robot");
    let body = json!({"defaults": defaults(&document), "letters": letters});
    let view = deposit_batch(&app, "application/json", "", body.to_string().into_bytes()).await;
    assert_eq!(view["deposited"], 2);

    run_outbox(&app).await;
    let client = app.service.outbound.clone();
    recommande::app::webhook::deliver_due(
        &app.service.storage,
        &client,
        app.service.clock.now(),
        100,
    )
    .await
    .expect("deliveries");

    let received = hooks.0.lock().expect("lock").clone();
    let completed: Vec<&Value> = received
        .iter()
        .filter(|b| b["event"] == "batch.completed")
        .collect();
    assert_eq!(completed.len(), 1, "{received:?}");
    assert_eq!(completed[0]["batch_id"], view["id"]);
    assert_eq!(completed[0]["state"], "completed");
    assert!(completed[0].get("letter_id").is_none());
    let deposited: Vec<&str> = received
        .iter()
        .filter(|b| b["event"] == "letter.deposited")
        .map(|b| b["letter_id"].as_str().expect("letter"))
        .collect();
    assert_eq!(deposited.len(), 2, "one letter.deposited per letter");
    for letter in batch_letters(&app).await {
        assert!(deposited.contains(&letter["id"].as_str().expect("id")));
    }
    // Delivering again sends nothing new.
    let again = recommande::app::webhook::deliver_due(
        &app.service.storage,
        &client,
        app.service.clock.now() + time::Duration::seconds(1),
        100,
    )
    .await
    .expect("deliveries");
    assert_eq!(again, 0);
}

async fn the_send_command_deposits_a_csv_file_and_writes_the_refused_rows(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    let dir = tempfile::tempdir().expect("dir");
    let csv_path = dir.path().join("relances.csv");
    let mut csv = String::from(
        "sender.name;sender.email;recipient.name;recipient.email;recipient.kind;reference;documents\n",
    );
    for i in 0..6 {
        let email = if i == 4 {
            "pas-une-adresse".to_string()
        } else {
            format!("d{i}@exemple.fr")
        };
        csv.push_str(&format!(
            "Cabinet Recouvr;envoi@recouvr.fr;Débiteur {i};{email};professional;SEND-{i};{document}\n"
        ));
    }
    std::fs::write(&csv_path, &csv).expect("write csv");
    let run = || {
        let args = [
            "send".to_string(),
            "--csv".into(),
            csv_path.display().to_string(),
            "--server".into(),
            app.address.clone(),
            "--api-key".into(),
            app.api_key.clone(),
        ];
        // The server runs on this test's runtime: wait for the process off it.
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_recommande"))
                    .args(args)
                    .env("RUST_LOG", "warn")
                    .output()
                    .expect("run recommande send")
            })
            .await
            .expect("send process")
        }
    };

    let out = run().await;

    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "rows were refused: {stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("5 deposited") && stdout.contains("1 rejected"),
        "{stdout}"
    );
    assert!(stderr.contains("5/6 deposited"), "progress shown: {stderr}");
    // Not a terminal: one plain line per change, no carriage returns.
    assert!(
        !stderr.contains('\r'),
        "carriage return in piped output: {stderr:?}"
    );
    let report_path = dir.path().join("relances.csv.errors.csv");
    let report = std::fs::read_to_string(&report_path).expect("error report");
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines[0], "row;field;message");
    assert_eq!(lines.len(), 2, "{report}");
    assert!(
        lines[1].starts_with("6;recipient.email;"),
        "line 6 of the file: {report}"
    );
    assert_eq!(app.letter_count().await, 5);

    // Running the same command again deposits nothing more.
    let again = run().await;
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stdout).contains("5 deposited"));
    assert_eq!(app.letter_count().await, 5, "never deposited twice");
}

/// Records, as a stopped process would have left it, a `valid_rows` batch of `rows` letters
/// whose first `next_row` rows are said committed; returns its id.
pub(crate) async fn abandoned_batch(
    app: &TestApp,
    document: &str,
    rows: usize,
    next_row: i64,
) -> String {
    let storage = &app.service.storage;
    let key = storage
        .list_api_keys(Some("Cabinet Recouvr"))
        .await
        .expect("keys")
        .remove(0);
    let stored: Vec<recommande::domain::batch::BatchRow> = (0..rows)
        .map(|i| recommande::domain::batch::BatchRow {
            row: i as i64,
            letter: recommande::domain::batch::letter_body(
                defaults(document).as_object(),
                recipient(i),
            ),
        })
        .collect();
    let id = uuid::Uuid::now_v7().to_string();
    let at = recommande::core::clock::unix_micros(app.service.clock.now());
    storage
        .insert_batch(
            &recommande::infra::storage::NewBatch {
                id: id.clone(),
                tenant_id: key.tenant_id.clone(),
                api_key_id: key.id.clone(),
                state: "depositing".into(),
                mode: "valid_rows".into(),
                source: "json".into(),
                total: rows as i64,
                valid: rows as i64,
                rejected: 0,
                letters: serde_json::to_vec(&stored).expect("rows"),
                idempotency_key: None,
                // The lease of the stopped runner has ended.
                lease_until: Some(at - 1),
                created_at: at - 1_000_000,
                completed_at: None,
            },
            &[],
            &[],
            None,
        )
        .await
        .expect("batch");
    if next_row > 0 {
        let committed = storage
            .commit_batch_chunk(&recommande::infra::storage::BatchChunk {
                batch_id: &id,
                from_row: 0,
                to_row: next_row,
                deposits: &[],
                errors: &[],
                jobs: &[],
                final_state: None,
                now: at,
                lease_until: at - 1,
            })
            .await
            .expect("progress");
        assert!(committed);
    }
    id
}

async fn a_resumed_batch_continues_after_its_last_committed_chunk(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    let chunk = recommande::app::batch::CHUNK;
    // The first chunk was committed (its progress says so), then the process stopped.
    let id = abandoned_batch(&app, &document, chunk + 3, chunk as i64).await;

    let now = recommande::core::clock::unix_micros(app.service.clock.now());
    let claimed = app
        .service
        .storage
        .claim_abandoned_batch(now, now + 60_000_000)
        .await
        .expect("claim");
    assert_eq!(claimed.as_deref(), Some(id.as_str()));
    app.service.batches.run(&id).await.expect("resume");

    let view = app.wait_batch(&id).await;
    assert_eq!(view["state"], "completed", "{view}");
    assert_eq!(view["pending"], 0);
    assert_eq!(
        app.letter_count().await,
        3,
        "only the rows after the committed chunk are deposited"
    );
    let mut references: Vec<String> = batch_letters(&app)
        .await
        .iter()
        .map(|l| l["reference"].as_str().expect("reference").to_string())
        .collect();
    references.sort();
    let expected: Vec<String> = (chunk..chunk + 3).map(|i| format!("DOS-{i}")).collect();
    assert_eq!(references, expected);
}

async fn an_abandoned_batch_is_resumed_and_deposited_once_even_by_two_runners(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    let storage = &app.service.storage;
    // A batch recorded by a process that stopped before depositing.
    let id = abandoned_batch(&app, &document, 3, 0).await;
    let at = recommande::core::clock::unix_micros(app.service.clock.now());

    let claimed = storage
        .claim_abandoned_batch(at, at + 60_000_000)
        .await
        .expect("claim");
    assert_eq!(claimed.as_deref(), Some(id.as_str()));
    assert_eq!(
        storage
            .claim_abandoned_batch(at, at + 60_000_000)
            .await
            .expect("claim"),
        None,
        "a leased batch is not taken twice"
    );
    // Two runners at once (e.g. two instances): the progress guard lets one chunk in.
    let (a, b) = tokio::join!(app.service.batches.run(&id), app.service.batches.run(&id));
    a.expect("first runner");
    b.expect("second runner");

    let view = app.wait_batch(&id).await;
    assert_eq!(view["state"], "completed", "{view}");
    assert_eq!(view["deposited"], 3);
    assert_eq!(app.letter_count().await, 3, "deposited once");
    app.service.batches.run(&id).await.expect("rerun");
    assert_eq!(
        app.letter_count().await,
        3,
        "a completed batch is not run again"
    );
    assert_eq!(run_outbox(&app).await, 3, "each letter notified once");
}

async fn batches_are_listed_newest_first_by_page_and_status_and_csv_booleans_are_checked_per_row(
    engine: Engine,
) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    // 1: completed (JSON). 2: rejected (all_or_nothing with a bad row). 3: completed (CSV)
    // with one row refused for a cell that is not a boolean.
    let first = deposit_batch(
        &app,
        "application/json",
        "",
        serde_json::to_vec(&json!({"defaults": defaults(&document), "letters": [recipient(1)]}))
            .expect("json"),
    )
    .await;
    let mut bad = recipient(3);
    bad["recipient"]["kind"] = json!("robot");
    let second = deposit_batch(
        &app,
        "application/json",
        "",
        serde_json::to_vec(&json!({"defaults": defaults(&document),
            "letters": [recipient(2), bad], "mode": "all_or_nothing"}))
        .expect("json"),
    )
    .await;
    assert_eq!(second["state"], "rejected");
    let csv = format!(
        "recipient.name;recipient.email;recipient.kind;documents;compose.override_prescription\n\
         A;a@exemple.fr;professional;{document};\n\
         B;b@exemple.fr;professional;{document};peut-être\n"
    );
    let query = "?sender.name=Cabinet&sender.email=envoi%40recouvr.fr";
    let third = deposit_batch(&app, "text/csv", query, csv.into_bytes()).await;
    assert_eq!(third["state"], "completed", "{third}");
    assert_eq!(third["deposited"], 1);
    let errors = third["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{third}");
    assert_eq!(errors[0]["row"], 3);
    assert_eq!(errors[0]["field"], "compose.override_prescription");
    let message = errors[0]["message"].as_str().expect("message");
    assert!(
        message.contains("peut-être") && message.contains("oui/non"),
        "{message}"
    );

    // Newest first, two per page, then the rest.
    let page: Value = app.get_json("/v1/batches?limit=2").await;
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|b| b["id"].as_str().expect("id").to_string())
            .collect()
    };
    assert_eq!(
        ids(&page),
        [
            third["id"].as_str().expect("id"),
            second["id"].as_str().expect("id")
        ]
    );
    assert_eq!(page["items"][0]["total"], 2);
    assert_eq!(page["items"][0]["rejected"], 1);
    assert_eq!(page["items"][0]["source"], "csv");
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let rest: Value = app
        .get_json(&format!("/v1/batches?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(ids(&rest), [first["id"].as_str().expect("id")]);
    assert!(rest.get("next_cursor").is_none(), "{rest}");

    let rejected: Value = app.get_json("/v1/batches?status=rejected").await;
    assert_eq!(ids(&rejected), [second["id"].as_str().expect("id")]);

    // Another account sees none of them.
    let other = app.new_api_key("Autre Cabinet").await;
    let theirs: Value = app
        .get_as(&other, "/v1/batches")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(theirs["items"], json!([]));

    // Bad parameters are all named.
    let response = app
        .get("/v1/batches?status=paused&limit=0&colour=red")
        .await;
    assert_eq!(response.status(), 400);
    let problem: Value = response.json().await.expect("json");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    assert_eq!(fields, ["colour", "limit", "status"], "{problem}");
}

async fn a_cancelled_batch_deposits_no_further_row_and_a_final_one_cannot_be_cancelled(
    engine: Engine,
) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    // A batch whose runner stopped with rows left to deposit.
    let id = abandoned_batch(&app, &document, 3, 0).await;
    let cancel = |key: String, id: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url(&format!("/v1/batches/{id}/cancel")))
                .bearer_auth(key)
                .send()
                .await
                .expect("POST cancel")
        }
    };

    // Another account cannot see it, let alone cancel it.
    let other = app.new_api_key("Autre Cabinet").await;
    assert_eq!(cancel(other, id.clone()).await.status(), 404);

    let response = cancel(app.api_key.clone(), id.clone()).await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.expect("json");
    assert_eq!(view["state"], "cancelled", "{view}");
    assert_eq!(view["pending"], 0);
    assert!(view["completed_at"].is_string(), "{view}");

    // No runner takes it up again, and running it deposits nothing.
    let now = recommande::core::clock::unix_micros(app.service.clock.now());
    let claimed = app
        .service
        .storage
        .claim_abandoned_batch(now, now + 60_000_000)
        .await
        .expect("claim");
    assert_eq!(claimed, None);
    app.service.batches.run(&id).await.expect("run");
    assert_eq!(app.letter_count().await, 0);
    let listed: Value = app.get_json("/v1/batches?status=cancelled").await;
    assert_eq!(listed["items"][0]["id"], id.as_str());

    // A final batch (this one, or a completed one) cannot be cancelled.
    let response = cancel(app.api_key.clone(), id.clone()).await;
    assert_eq!(response.status(), 409);
    let problem: Value = response.json().await.expect("json");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("cancelled"),
        "{problem}"
    );
    let done = deposit_batch(
        &app,
        "application/json",
        "",
        serde_json::to_vec(&json!({"defaults": defaults(&document), "letters": [recipient(9)]}))
            .expect("json"),
    )
    .await;
    let done_id = done["id"].as_str().expect("id").to_string();
    let response = cancel(app.api_key.clone(), done_id).await;
    assert_eq!(response.status(), 409);
    assert_eq!(app.letter_count().await, 1, "the deposited letter stays");
}

async fn a_header_of_a_hundred_thousand_unknown_columns_gets_a_small_answer(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let mut csv = (0..100_000)
        .map(|i| format!("colonne{i}"))
        .collect::<Vec<_>>()
        .join(";");
    csv.push_str("\nA\n");
    let response = app.post_batch("text/csv", "", csv.into_bytes(), None).await;
    assert_eq!(response.status(), 422);
    let body = response.bytes().await.expect("body");
    assert!(
        body.len() < 64 * 1024,
        "a 1.2 MB header made a {} byte answer",
        body.len()
    );
    let problem: Value = serde_json::from_slice(&body).expect("problem");
    assert_eq!(problem["type"], "urn:recommande:problem:invalid-batch");
    let errors = problem["errors"].as_array().expect("errors");
    let unknown = errors
        .iter()
        .filter(|e| e["message"] == "is not a known column")
        .count();
    assert_eq!(unknown, 20, "at most 20 errors of one kind: {problem}");
    let known_lists = errors
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("known columns: ") && m.contains("recipient.email"))
        })
        .count();
    assert_eq!(known_lists, 1, "the known columns are listed once");
    let last = errors.last().expect("a closing entry");
    assert!(
        last["message"]
            .as_str()
            .expect("message")
            .starts_with("99980 more errors not listed"),
        "{last}"
    );
    assert_eq!(app.letter_count().await, 0);
}
