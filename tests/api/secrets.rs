//! Secrets that a stolen database does not give away (issue 12 §4): the HMAC keys of links,
//! codes, sessions and API keys and the webhook secrets are in no column; an installation of
//! the previous version keeps its live links, keys and webhook secrets; the served process
//! logs no token nor code at trace level and keeps its data directory private.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use recommande::infra::storage::WebhookRow;
use serde_json::{Value, json};
use sqlx::{Connection, Row};

use crate::helpers::{Engine, TestApp, letter_body, sample_pdf, settings_for, start_on};
use crate::smtp::{body_text, code};

crate::on_both_engines!(
    a_copy_of_the_database_cannot_recompute_a_link_token_a_code_or_an_api_key,
    an_installation_of_the_previous_version_keeps_its_links_api_keys_and_webhook_secrets,
);

const WEBHOOK_SECRET: &str = "whsec-0123456789-abcdefghij";

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, message).as_ref().to_vec()
}

/// Every value of every table, as bytes, plus what its text decodes to (hex, base64), as
/// someone holding a copy of the database would try them.
async fn every_stored_value(database_url: &str) -> Vec<Vec<u8>> {
    let mut cells: Vec<Vec<u8>> = Vec::new();
    if database_url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(database_url)
            .await
            .expect("open the copy");
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&mut conn)
                .await
                .expect("tables");
        for table in tables {
            let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SELECT * FROM \"{table}\"")))
                .fetch_all(&mut conn)
                .await
                .expect("rows");
            for row in rows {
                for i in 0..row.columns().len() {
                    if let Ok(Some(bytes)) = row.try_get_unchecked::<Option<Vec<u8>>, _>(i) {
                        cells.push(bytes);
                    }
                }
            }
        }
    } else {
        let mut conn = sqlx::PgConnection::connect(database_url)
            .await
            .expect("open the copy");
        let columns: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text, data_type::text \
             FROM information_schema.columns WHERE table_schema = 'public' \
             AND data_type IN ('bytea', 'text', 'character varying')",
        )
        .fetch_all(&mut conn)
        .await
        .expect("columns");
        for (table, column, kind) in columns {
            let sql =
                format!("SELECT \"{column}\" FROM \"{table}\" WHERE \"{column}\" IS NOT NULL");
            if kind == "bytea" {
                let values: Vec<Vec<u8>> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&mut conn)
                    .await
                    .expect("values");
                cells.extend(values);
            } else {
                let values: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&mut conn)
                    .await
                    .expect("values");
                cells.extend(values.into_iter().map(String::into_bytes));
            }
        }
    }
    let mut candidates = Vec::new();
    for cell in cells {
        if let Ok(text) = std::str::from_utf8(&cell) {
            let text = text.trim();
            if let Ok(bytes) = hex::decode(text) {
                candidates.push(bytes);
            }
            for engine in [
                base64::engine::general_purpose::STANDARD,
                base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ] {
                if let Ok(bytes) = engine.decode(text) {
                    candidates.push(bytes);
                }
            }
        }
        candidates.push(cell);
    }
    candidates
}

/// Whether a mail body is a code mail (its code is six digits after `) : `).
fn is_code_mail(body: &str) -> bool {
    body.find(") : ").is_some_and(|at| {
        let digits: String = body[at + 4..].chars().take(6).collect();
        digits.len() == 6 && digits.chars().all(|c| c.is_ascii_digit())
    })
}

/// Waits up to 10 s for a mail of the outbox satisfying `wanted`.
async fn wait_for_mail(dir: &Path, wanted: impl Fn(&str) -> bool) -> String {
    for _ in 0..200 {
        if let Some(body) = mail_with(dir, &wanted) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no such mail in {}", dir.display());
}

/// The newest `.eml` of the development outbox that satisfies `wanted`.
fn mail_with(dir: &Path, wanted: &impl Fn(&str) -> bool) -> Option<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| e.path())
        .collect();
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    files
        .iter()
        .rev()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|raw| body_text(&raw))
        .find(|body| wanted(body.as_str()))
}

async fn tenant_id(app: &TestApp) -> String {
    app.service
        .storage
        .list_api_keys(Some("Cabinet Recouvr"))
        .await
        .expect("keys")[0]
        .tenant_id
        .clone()
}

async fn insert_webhook(app: &TestApp) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    let row = WebhookRow {
        id: id.clone(),
        tenant_id: tenant_id(app).await,
        url: "https://hooks.example.fr/recommande".into(),
        secret: WEBHOOK_SECRET.into(),
        events: vec!["letter.accepted".into()],
        created_at: 1,
        deleted_at: None,
        previous_secret: None,
        secret_rotated_at: None,
    };
    app.service
        .storage
        .insert_webhook(&row, None)
        .await
        .expect("webhook stored");
    id
}

async fn a_copy_of_the_database_cannot_recompute_a_link_token_a_code_or_an_api_key(engine: Engine) {
    let Some(app) = crate::helpers::spawn_app(engine).await else {
        return;
    };
    // Arrange: a notified letter, a code sent to its recipient, an API key, a webhook.
    let letter = app.deposit().await;
    let letter_id = letter["id"].as_str().expect("id").to_string();
    app.service.lifecycle.run_due_jobs(10).await.expect("jobs");
    let token = app.service.lifecycle.recipient_token(&letter_id);
    let response = app.recipient_post(&token, "otp").await;
    assert_eq!(response.status(), 202);
    let otp = code(&wait_for_mail(&app.dir.path().join("mail"), is_code_mail).await);
    insert_webhook(&app).await;

    // Act: every stored value, tried as the HMAC key.
    let candidates = every_stored_value(&app.database_url).await;
    assert!(
        candidates.len() > 50,
        "the copy holds the installation's rows"
    );

    // Assert: none of them yields the link token, the code's stored HMAC or the key's HMAC,
    // and the webhook secret is nowhere in clear.
    let token_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&token)
        .expect("token");
    let stored: HashSet<&[u8]> = candidates.iter().map(Vec::as_slice).collect();
    let otp_message = format!("{letter_id}:{otp}");
    for key in &candidates {
        assert_ne!(
            hmac(key, letter_id.as_bytes()),
            token_bytes,
            "link key in the database"
        );
        let code_mac = hmac(key, otp_message.as_bytes());
        assert!(
            !stored.contains(code_mac.as_slice()),
            "OTP key in the database"
        );
        let key_mac = hmac(key, app.api_key.as_bytes());
        assert!(
            !stored.contains(key_mac.as_slice()),
            "API-key HMAC key in the database"
        );
    }
    assert!(
        !candidates.iter().any(|c| c
            .windows(WEBHOOK_SECRET.len())
            .any(|w| w == WEBHOOK_SECRET.as_bytes())),
        "webhook secret in clear in the database"
    );
    // And the service itself still recognises all of them.
    let shown = app.get_anon(&format!("/v1/recipient/{token}")).await;
    assert_eq!(shown.status(), 200);
}

async fn an_installation_of_the_previous_version_keeps_its_links_api_keys_and_webhook_secrets(
    engine: Engine,
) {
    let Some(mut first) = crate::helpers::spawn_app(engine).await else {
        return;
    };
    let letter = first.deposit().await;
    let letter_id = letter["id"].as_str().expect("id").to_string();
    first
        .service
        .lifecycle
        .run_due_jobs(10)
        .await
        .expect("jobs");
    let webhook_id = insert_webhook(&first).await;
    let tenant = tenant_id(&first).await;

    // Arrange: the rows as the previous version left them — installation keys in clear in
    // `service_secrets`, the link's hash, an API key's HMAC and the webhook secret under them.
    let clear = |b: u8| [b; 32];
    let legacy_token = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(hmac(&clear(0x11), letter_id.as_bytes()));
    let legacy_key = "rk_legacy-key-of-the-previous-version-0123456789";
    let key_mac = hex::encode(hmac(&clear(0x22), legacy_key.as_bytes()));
    let token_hash = recommande::app::lifecycle::sha256_hex(legacy_token.as_bytes());
    let blob = |b: u8| {
        if engine == Engine::Sqlite {
            format!("X'{}'", hex::encode(clear(b)))
        } else {
            format!("'\\x{}'::bytea", hex::encode(clear(b)))
        }
    };
    let key_blob = if engine == Engine::Sqlite {
        format!("X'{key_mac}'")
    } else {
        format!("'\\x{key_mac}'::bytea")
    };
    first
        .execute_sql(&format!(
            "DELETE FROM sealed_secrets; \
             INSERT INTO service_secrets (name, value, created_at) VALUES \
               ('recipient_token_v1', {}, 0), ('api_key_hmac_v1', {}, 0), \
               ('recipient_otp_v1', {}, 0), ('recipient_client_v1', {}, 0); \
             UPDATE letters SET recipient_token_sha256 = '{token_hash}' WHERE id = '{letter_id}'; \
             INSERT INTO api_keys (id, tenant_id, key_hmac, created_at) \
               VALUES ('{}', '{tenant}', {key_blob}, 0); \
             UPDATE webhooks SET secret = '{WEBHOOK_SECRET}', secret_key_id = NULL, \
               secret_sealed = NULL WHERE id = '{webhook_id}';",
            blob(0x11),
            blob(0x22),
            blob(0x33),
            blob(0x44),
            uuid::Uuid::now_v7()
        ))
        .await
        .expect("previous version's rows");
    let dir = std::mem::replace(&mut first.dir, tempfile::tempdir().expect("dir"));
    let database_url = first.database_url.clone();
    first.service.storage.close().await;
    drop(first);

    // Act: this version starts on them.
    let settings = settings_for(dir.path(), &database_url);
    let app = start_on(
        dir,
        database_url,
        settings,
        std::sync::Arc::new(recommande::core::clock::SystemClock),
    )
    .await;

    // Assert: the live link, the API key and the webhook secret still work…
    assert_eq!(
        app.service.lifecycle.recipient_token(&letter_id),
        legacy_token
    );
    let shown = app.get_anon(&format!("/v1/recipient/{legacy_token}")).await;
    assert_eq!(shown.status(), 200);
    let listed = app
        .get_as(legacy_key, &format!("/v1/letters/{letter_id}"))
        .await;
    assert_eq!(listed.status(), 200);
    let webhook = app
        .service
        .storage
        .webhook(&tenant, &webhook_id)
        .await
        .expect("read")
        .expect("webhook");
    assert_eq!(webhook.secret, WEBHOOK_SECRET);
    // …and no clear copy is left.
    let candidates = every_stored_value(&app.database_url).await;
    for b in [0x11, 0x22, 0x33, 0x44] {
        assert!(
            !candidates.contains(&clear(b).to_vec()),
            "clear key {b:#x} left"
        );
    }
    assert!(
        !candidates.iter().any(|c| c
            .windows(WEBHOOK_SECRET.len())
            .any(|w| w == WEBHOOK_SECRET.as_bytes())),
        "webhook secret left in clear"
    );
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// `recommande ARGS` under `umask`, in a shell, as an operator would start it.
fn under_umask(umask: &str, args: &str) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!(
            "umask {umask}; exec \"{}\" {args}",
            env!("CARGO_BIN_EXE_recommande")
        ))
        .env_remove("RECOMMANDE_DATABASE_URL");
    command
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

async fn served_process_is_private_and_logs_no_secret(umask: &str) {
    let parent = tempfile::tempdir().expect("dir");
    let data = parent.path().join("data");
    let data_arg = data.display().to_string();
    let log_path = parent.path().join("server.log");

    let out = under_umask(
        umask,
        &format!("api-key create --tenant 'Cabinet Recouvr' --data-dir '{data_arg}'"),
    )
    .env("RUST_LOG", "warn")
    .output()
    .expect("api-key create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string();

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = under_umask(
        umask,
        &format!("serve --data-dir '{data_arg}' --listen 127.0.0.1:{port} --public-url {base}"),
    )
    .env("RUST_LOG", "trace")
    .stdout(Stdio::null())
    .stderr(Stdio::from(log))
    .spawn()
    .expect("serve");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..400 {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !up {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "recommande serve did not come up: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    // A letter notified by the workers, its link opened, a code asked for and used, a
    // verification code presented.
    let part = reqwest::multipart::Part::bytes(sample_pdf("secrets")).file_name("relance.pdf");
    let doc: Value = client
        .post(format!("{base}/v1/documents"))
        .bearer_auth(&key)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    let letter: Value = client
        .post(format!("{base}/v1/letters"))
        .bearer_auth(&key)
        .json(&letter_body(doc["id"].as_str().expect("id")))
        .send()
        .await
        .expect("deposit")
        .json()
        .await
        .expect("json");
    let letter_id = letter["id"].as_str().expect("letter id").to_string();
    let mail_dir = data.join("mail");
    let token = crate::smtp::link_token(&wait_for_mail(&mail_dir, |b| b.contains("/r/")).await);
    // The mail is written before the notification is committed: wait for the commit.
    let mut notified = false;
    for _ in 0..200 {
        let shown: Value = client
            .get(format!("{base}/v1/letters/{letter_id}"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("GET letter")
            .json()
            .await
            .expect("json");
        if shown["state"] == "notified" {
            notified = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(notified, "the letter is notified");
    let page = client
        .get(format!("{base}/r/{token}"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    let asked = client
        .post(format!("{base}/v1/recipient/{token}/otp"))
        .send()
        .await
        .expect("otp");
    assert_eq!(asked.status(), 202);
    let otp = code(&wait_for_mail(&mail_dir, is_code_mail).await);
    let session = client
        .post(format!("{base}/v1/recipient/{token}/session"))
        .json(&json!({ "code": otp }))
        .send()
        .await
        .expect("session");
    assert_eq!(session.status(), 201);
    let verification = "ZZZZ-9Q9Q-SECR-ETCO";
    let _ = client
        .get(format!("{base}/v1/verify/{letter_id}?code={verification}"))
        .send()
        .await
        .expect("verify");

    let _ = child.kill();
    let _ = child.wait();
    let logged = std::fs::read_to_string(&log_path).expect("log");

    // The log is a trace-level log of all of that…
    assert!(
        logged.contains("/v1/recipient/<token>/session"),
        "trace spans were logged"
    );
    // …and names no token nor code.
    assert!(!logged.contains(&token), "the link token is in the log");
    assert!(
        !logged.contains(verification),
        "the verification code is in the log"
    );
    let bytes = logged.as_bytes();
    for (at, _) in logged.match_indices(&otp) {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + otp.len()).copied();
        // A six-digit run may be a fraction of a second in a timestamp; the code itself would
        // stand alone.
        let alone = !before.is_some_and(|b| b.is_ascii_digit() || b == b'.')
            && !after.is_some_and(|b| b.is_ascii_digit());
        assert!(
            !alone,
            "the one-time code is in the log: …{}…",
            &logged[at.saturating_sub(80)..(at + 40).min(logged.len())]
        );
    }

    // The data directory is private, whatever the umask.
    assert_eq!(mode(&data), 0o700, "data directory");
    assert_eq!(mode(&mail_dir), 0o700, "mail outbox");
    assert_eq!(mode(&data.join("keys")), 0o700, "keys directory");
    for entry in std::fs::read_dir(data.join("keys")).expect("keys") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    for entry in std::fs::read_dir(&mail_dir).expect("mail") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    let mut databases = 0;
    for entry in std::fs::read_dir(&data).expect("data") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.contains(".db") || name.contains("sqlite") {
            databases += 1;
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    assert!(
        databases >= 1,
        "the SQLite database is in the data directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_process_logs_no_token_or_code_and_keeps_its_files_private_under_umask_022() {
    served_process_is_private_and_logs_no_secret("022").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_process_logs_no_token_or_code_and_keeps_its_files_private_under_umask_000() {
    served_process_is_private_and_logs_no_secret("000").await;
}
