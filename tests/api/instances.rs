//! Several service instances (issue 6 §5): two real `recommande serve` processes on one
//! PostgreSQL database and one S3 bucket, sharing their keys the way production does (the
//! same master key in their configuration, the same PKI files). Each serves the other's
//! documents and bundles, the same bytes deposited on both at once land as one object, the
//! transparency log keeps one sequence of tree heads, and no letter is notified twice.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use sqlx::{Connection, Row};

use crate::helpers::{Engine, fresh_database, letter_body, sample_pdf};
use crate::s3::S3Server;
use crate::smtp::SmtpSink;

struct Instance {
    child: Child,
    base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What both instances are configured with.
struct Shared {
    database_url: String,
    smtp_url: String,
    master_key: String,
    s3: Vec<(&'static str, String)>,
}

fn command(data: &Path, shared: &Shared) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_recommande"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("RECOMMANDE_DATA_DIR", data)
        .env("RECOMMANDE_DATABASE_URL", &shared.database_url)
        .env("RECOMMANDE_MASTER_KEY", &shared.master_key)
        // A tree head as soon as the log grows: both instances race to issue them.
        .env("RECOMMANDE_LOG_HEAD_EVERY_LEAVES", "1")
        .envs(shared.s3.iter().map(|(k, v)| (*k, v)));
    command
}

async fn serve(data: &Path, shared: &Shared) -> Instance {
    for _attempt in 0..5 {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            probe.local_addr().expect("addr").port()
        };
        let child = command(data, shared)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--smtp-url", &shared.smtp_url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start recommande serve");
        let mut instance = Instance {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..600 {
            if instance.child.try_wait().expect("status").is_some() {
                // It could not bind (the port was taken meanwhile): another port.
                break;
            }
            if reqwest::get(format!("{}/healthz", instance.base))
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                // Answering — and still ours (not another process on a reused port).
                if instance.child.try_wait().expect("status").is_none() {
                    return instance;
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("recommande serve did not come up in 5 attempts");
}

/// Copies the development PKI of the first instance to the second one's data directory, as
/// an operator installs the same seal and TSA files on every instance.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

async fn upload(client: &reqwest::Client, base: &str, key: &str, pdf: Vec<u8>) -> String {
    let part = reqwest::multipart::Part::bytes(pdf).file_name("relance.pdf");
    let response = client
        .post(format!("{base}/v1/documents"))
        .bearer_auth(key)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .expect("upload");
    assert!(response.status().is_success(), "{}", response.status());
    let body: Value = response.json().await.expect("json");
    body["id"].as_str().expect("id").to_string()
}

async fn deposit(client: &reqwest::Client, base: &str, key: &str, document: &str) -> String {
    let response = client
        .post(format!("{base}/v1/letters"))
        .bearer_auth(key)
        .json(&letter_body(document))
        .send()
        .await
        .expect("deposit");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    body["id"].as_str().expect("id").to_string()
}

/// The document of a letter's bundle, fetched from `base`.
async fn bundle_document(client: &reqwest::Client, base: &str, key: &str, id: &str) -> Vec<u8> {
    use std::io::Read;
    let response = client
        .get(format!("{base}/v1/letters/{id}/bundle.zip"))
        .bearer_auth(key)
        .send()
        .await
        .expect("bundle");
    assert_eq!(response.status(), 200, "bundle of {id} from {base}");
    let bytes = response.bytes().await.expect("bytes");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
    let name = zip
        .file_names()
        .filter_map(Result::ok)
        .find(|n| n.starts_with("documents/"))
        .expect("a document entry")
        .to_string();
    let mut out = Vec::new();
    zip.by_name(&name)
        .expect("entry")
        .read_to_end(&mut out)
        .expect("read");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_postgres_database_and_one_bucket() {
    let dirs = tempfile::tempdir().expect("temp dir");
    let Some(database_url) = fresh_database(Engine::Postgres, dirs.path()).await else {
        return;
    };
    let Some(s3) = S3Server::start() else {
        return;
    };
    let Some(sink) = SmtpSink::start(&[], 0) else {
        return;
    };
    let shared = Shared {
        database_url: database_url.clone(),
        smtp_url: sink.url(),
        master_key: recommande::infra::keys::generate_key("shared-2026").expect("key"),
        s3: s3.environment(),
    };
    let (data_a, data_b) = (dirs.path().join("a"), dirs.path().join("b"));
    let a = serve(&data_a, &shared).await;
    copy_dir(&data_a.join("pki"), &data_b.join("pki"));
    let b = serve(&data_b, &shared).await;
    let roots_a = reqwest::get(format!("{}/v1/trust/roots.pem", a.base))
        .await
        .expect("roots")
        .text()
        .await
        .expect("text");
    let roots_b = reqwest::get(format!("{}/v1/trust/roots.pem", b.base))
        .await
        .expect("roots")
        .text()
        .await
        .expect("text");
    assert_eq!(roots_a, roots_b, "both instances seal under the same PKI");

    let out = command(&data_a, &shared)
        .args(["api-key", "create", "--tenant", "Cabinet Recouvr"])
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
    let client = reqwest::Client::new();

    // Distinct documents deposited on each instance, and the same bytes uploaded on both at
    // the same moment (the cross-instance placement lock keeps one object and one key).
    let mut letters = Vec::new();
    for (i, instance) in [&a, &b, &a, &b].into_iter().enumerate() {
        let pdf = sample_pdf(&format!("instance document {i}"));
        let doc = upload(&client, &instance.base, &key, pdf.clone()).await;
        let id = deposit(&client, &instance.base, &key, &doc).await;
        letters.push((id, pdf, instance.base.clone()));
    }
    let same = sample_pdf("the same bytes on both instances");
    let (doc_a, doc_b) = tokio::join!(
        upload(&client, &a.base, &key, same.clone()),
        upload(&client, &b.base, &key, same.clone())
    );
    letters.push((
        deposit(&client, &a.base, &key, &doc_a).await,
        same.clone(),
        a.base.clone(),
    ));
    letters.push((
        deposit(&client, &b.base, &key, &doc_b).await,
        same.clone(),
        b.base.clone(),
    ));
    let objects = s3.document_objects();
    assert_eq!(
        objects.len(),
        5,
        "one object per distinct document: {objects:#?}"
    );

    // Each instance serves every letter's bundle, whichever instance took the deposit.
    for (id, pdf, _) in &letters {
        for base in [&a.base, &b.base] {
            assert_eq!(&bundle_document(&client, base, &key, id).await, pdf);
        }
    }

    // Both outbox workers run: every letter is notified, once.
    sink.wait_for(letters.len()).await;
    let mut pool = sqlx::PgConnection::connect(&database_url)
        .await
        .expect("connect");
    settle(&mut pool).await;
    // Two more letters once the first are logged: the log then grows in two appender passes
    // at least, so there are at least two heads whose order can be checked.
    for instance in [&a, &b] {
        let pdf = sample_pdf(&format!("a later document on {}", instance.base));
        let doc = upload(&client, &instance.base, &key, pdf.clone()).await;
        let id = deposit(&client, &instance.base, &key, &doc).await;
        letters.push((id, pdf, instance.base.clone()));
    }
    sink.wait_for(letters.len()).await;
    settle(&mut pool).await;
    for (id, _, _) in &letters {
        let notified: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM evidence WHERE letter_id = $1 AND event = 'NotificationForAcceptance'",
        )
        .bind(id)
        .fetch_one(&mut pool)
        .await
        .expect("evidence")
        .get("n");
        assert_eq!(notified, 1, "letter {id} notified {notified} times");
    }
    assert_eq!(sink.messages().len(), letters.len(), "one mail per letter");

    // One sequence of tree heads: sizes strictly increase in the order they were issued.
    let heads: Vec<(i64, i64)> =
        sqlx::query("SELECT tree_size, issued_at FROM tree_heads ORDER BY issued_at, tree_size")
            .fetch_all(&mut pool)
            .await
            .expect("heads")
            .iter()
            .map(|r| (r.get("tree_size"), r.get("issued_at")))
            .collect();
    assert!(heads.len() >= 2, "{heads:?}");
    assert!(
        heads.windows(2).all(|w| w[0].0 < w[1].0),
        "tree heads out of sequence: {heads:?}"
    );
    // The log's leaf indexes are one gap-free sequence too.
    let positions: Vec<i64> = sqlx::query("SELECT position FROM log_leaves ORDER BY position")
        .fetch_all(&mut pool)
        .await
        .expect("leaves")
        .iter()
        .map(|r| r.get("position"))
        .collect();
    assert_eq!(positions, (0..positions.len() as i64).collect::<Vec<_>>());
    pool.close().await.ok();

    // And the latest head each instance publishes is the same one.
    let latest_a: Value = reqwest::get(format!("{}/v1/log/tree-heads/latest", a.base))
        .await
        .expect("head")
        .json()
        .await
        .expect("json");
    let latest_b: Value = reqwest::get(format!("{}/v1/log/tree-heads/latest", b.base))
        .await
        .expect("head")
        .json()
        .await
        .expect("json");
    assert_eq!(latest_a, latest_b);

    // The archive audit command, run as an operator would on any instance, reads every
    // document back from the bucket and checks the whole log.
    let audit = command(&data_b, &shared)
        .args(["archive", "audit", "--all"])
        .output()
        .expect("archive audit");
    assert!(
        audit.status.success(),
        "{}{}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    );
}

/// Waits (at most 30 s) until no notification is pending, every evidence record is logged
/// and the latest tree head covers them all.
async fn settle(pool: &mut sqlx::PgConnection) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let pending: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM outbox WHERE done_at IS NULL AND kind = 'notify'",
        )
        .fetch_one(&mut *pool)
        .await
        .expect("outbox")
        .get("n");
        let logged: i64 = sqlx::query("SELECT COUNT(*) AS n FROM log_leaves")
            .fetch_one(&mut *pool)
            .await
            .expect("log")
            .get("n");
        let evidence: i64 = sqlx::query("SELECT COUNT(*) AS n FROM evidence")
            .fetch_one(&mut *pool)
            .await
            .expect("evidence")
            .get("n");
        let head: Option<i64> = sqlx::query("SELECT MAX(tree_size) AS n FROM tree_heads")
            .fetch_one(&mut *pool)
            .await
            .expect("heads")
            .get("n");
        if pending == 0 && logged == evidence && head == Some(evidence) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "workers did not settle: {pending} notifications pending, {logged}/{evidence} logged, head {head:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
