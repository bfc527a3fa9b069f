//! Document storage on both back ends (issue 6 §5): the local file system and an S3 bucket
//! served by a real S3-protocol server (`s3s-fs`, installed by .ci/run) started per test, on
//! SQLite and PostgreSQL. Uploads and deposits, byte-identical downloads (recipient, bundle,
//! blocking and async readers, multipart-sized documents), idempotent content addressing,
//! ciphertext-only objects, and the archive audit catching a flipped byte in a stored object.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use recommande::app::audit::{AuditScope, run};
use recommande::config::{S3Settings, SecretText, StorageBackend};
use recommande::core::clock::SystemClock;
use sha2::{Digest, Sha256};

use crate::helpers::{Engine, TestApp, spawn_app_with};
use crate::smtp::SmtpSink;

/// The bucket every test server holds.
pub const BUCKET: &str = "recommande-test";
/// The key prefix the service is configured with.
pub const PREFIX: &str = "archive/eu-west";

/// A real S3-protocol server (`s3s-fs`) on a free port over a temporary directory, with the
/// bucket [`BUCKET`] created; killed when dropped.
pub struct S3Server {
    child: Child,
    /// The server's root directory: objects are plain files under `<root>/<bucket>/<key>`.
    pub root: tempfile::TempDir,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    access_key: String,
    secret_key: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s3s_fs_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("s3s-fs"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        let candidate = home.join("bin").join("s3s-fs");
        candidate.is_file().then_some(candidate)
    })
}

impl S3Server {
    /// Starts a server, or `None` (with a notice) when `s3s-fs` is not installed in a bare
    /// local `cargo test`. In CI (or wherever TEST_DATABASE_URL is set) a missing server fails
    /// the test: the S3 suite may not be skipped there.
    pub fn start() -> Option<S3Server> {
        let Some(binary) = s3s_fs_binary() else {
            assert!(
                std::env::var_os("CI").is_none() && std::env::var_os("TEST_DATABASE_URL").is_none(),
                "s3s-fs is not installed: the S3 storage tests may not be skipped in CI \
                 (install it with `cargo install s3s-fs --locked --version 0.14.1 --features binary`, as .ci/run does)"
            );
            eprintln!("NOTICE: s3s-fs is not installed; S3 storage variant not run");
            return None;
        };
        let mut root = tempfile::tempdir().expect("s3 root");
        std::fs::create_dir(root.path().join(BUCKET)).expect("create the bucket");
        // Credentials of this server only: a test that reached another test's server (a port
        // taken between the probe and the bind) fails on authentication, never silently.
        let access_key = format!("test-{}", uuid::Uuid::new_v4().simple());
        let secret_key = format!("secret-{}", uuid::Uuid::new_v4().simple());
        for _attempt in 0..5 {
            let port = {
                let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
                probe.local_addr().expect("addr").port()
            };
            let child = Command::new(&binary)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", &access_key, "--secret-key", &secret_key])
                .arg(root.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start s3s-fs");
            let mut server = S3Server {
                child,
                root,
                endpoint: format!("http://127.0.0.1:{port}"),
                access_key: access_key.clone(),
                secret_key: secret_key.clone(),
            };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                if server.child.try_wait().expect("s3s-fs status").is_some() {
                    // It could not bind (the port was taken meanwhile): another port.
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    // Listening — and still ours a moment later (not another process's port).
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    if server.child.try_wait().expect("s3s-fs status").is_none() {
                        return Some(server);
                    }
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "s3s-fs did not listen on port {port} within 30 s"
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            // Take the directory back from the failed attempt (Drop only kills the child).
            root = std::mem::replace(&mut server.root, tempfile::tempdir().expect("dir"));
        }
        panic!("s3s-fs could not start on a free port in 5 attempts");
    }

    /// The service's storage settings for this server.
    pub fn backend(&self) -> StorageBackend {
        StorageBackend::S3(S3Settings {
            bucket: BUCKET.into(),
            prefix: PREFIX.into(),
            endpoint: Some(self.endpoint.clone()),
            region: "us-east-1".into(),
            access_key_id: Some(self.access_key.clone()),
            secret_access_key: Some(SecretText::new(self.secret_key.clone())),
            allow_http: true,
        })
    }

    /// The same settings as `RECOMMANDE_*` variables (for `recommande serve` processes).
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        vec![
            ("RECOMMANDE_STORAGE_BACKEND", "s3".into()),
            ("RECOMMANDE_S3_BUCKET", BUCKET.into()),
            ("RECOMMANDE_S3_PREFIX", PREFIX.into()),
            ("RECOMMANDE_S3_ENDPOINT", self.endpoint.clone()),
            ("RECOMMANDE_S3_REGION", "us-east-1".into()),
            ("RECOMMANDE_S3_ACCESS_KEY_ID", self.access_key.clone()),
            ("RECOMMANDE_S3_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("RECOMMANDE_S3_ALLOW_HTTP", "true".into()),
        ]
    }

    /// The file holding the object of document `sha256`.
    pub fn object_file(&self, sha256: &str) -> PathBuf {
        self.root
            .path()
            .join(BUCKET)
            .join(PREFIX)
            .join("documents")
            .join(&sha256[..2])
            .join(sha256)
    }

    /// Every document object, as files.
    pub fn document_objects(&self) -> Vec<PathBuf> {
        files_under(&self.root.path().join(BUCKET).join(PREFIX).join("documents"))
    }
}

/// Every regular file under `dir` (recursively), sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Which back end a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Filesystem,
    S3,
}

/// The service on one engine and one back end (the S3 server lives as long as the app).
struct Rig {
    app: TestApp,
    s3: Option<S3Server>,
}

impl Rig {
    async fn start(engine: Engine, store: Store, smtp_url: Option<String>) -> Option<Rig> {
        let s3 = match store {
            Store::Filesystem => None,
            Store::S3 => Some(S3Server::start()?),
        };
        let backend = s3.as_ref().map(S3Server::backend);
        let app = spawn_app_with(engine, Arc::new(SystemClock), move |s| {
            if let Some(backend) = backend {
                s.storage = backend;
            }
            s.mail.smtp_url = smtp_url;
        })
        .await?;
        assert_eq!(app.service.content.is_object_storage(), store == Store::S3);
        Some(Rig { app, s3 })
    }

    /// The stored ciphertext of `sha256`, as a file.
    fn stored_file(&self, sha256: &str) -> PathBuf {
        match &self.s3 {
            Some(s3) => s3.object_file(sha256),
            None => self.app.service.content.path_of(sha256),
        }
    }

    /// Every stored document, as files.
    fn stored_files(&self) -> Vec<PathBuf> {
        match &self.s3 {
            Some(s3) => s3.document_objects(),
            None => files_under(&self.app.dir.path().join("documents")),
        }
    }

    /// Every file the back end holds (for S3: the server's whole root, metadata included).
    fn everything_stored(&self) -> Vec<PathBuf> {
        match &self.s3 {
            Some(s3) => files_under(s3.root.path()),
            None => files_under(&self.app.dir.path().join("documents")),
        }
    }
}

/// Generates one test per engine and back end for each `async fn name(Engine, Store)`.
macro_rules! on_both_engines_and_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_fs {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::helpers::Engine::Sqlite, super::Store::Filesystem).await
                }
            )*
        }
        mod sqlite_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::helpers::Engine::Sqlite, super::Store::S3).await
                }
            )*
        }
        mod postgres_fs {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::helpers::Engine::Postgres, super::Store::Filesystem).await
                }
            )*
        }
        mod postgres_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::helpers::Engine::Postgres, super::Store::S3).await
                }
            )*
        }
    };
}

on_both_engines_and_backends!(
    deposited_documents_are_stored_once_as_ciphertext_and_read_back_exactly,
    a_large_document_streams_through_multipart_upload_and_ranged_reads,
    the_audit_finds_a_flipped_byte_in_a_stored_object,
    encrypt_existing_is_for_the_file_system_only,
);

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn deposited_documents_are_stored_once_as_ciphertext_and_read_back_exactly(
    engine: Engine,
    store: Store,
) {
    let Some(sink) = SmtpSink::start(&[], 0) else {
        return;
    };
    let Some(rig) = Rig::start(engine, store, Some(sink.url())).await else {
        return;
    };
    let app = &rig.app;
    let (id, pdf, download, session) = crate::archive::accepted_marker_letter(app, &sink).await;
    let sha256 = hex::encode(Sha256::digest(&pdf));

    // The recipient's download is the deposited bytes.
    let got = app
        .client
        .get(&download)
        .bearer_auth(&session)
        .send()
        .await
        .expect("download");
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.expect("bytes").to_vec(), pdf);
    // So is the bundle's copy (written by the blocking reader).
    let bundle = crate::bundle::bundle_bytes(app, &id).await;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bundle)).expect("zip");
    let name = zip
        .file_names()
        .filter_map(Result::ok)
        .find(|n| n.starts_with("documents/"))
        .expect("a document entry")
        .to_string();
    let mut in_bundle = Vec::new();
    zip.by_name(&name)
        .expect("entry")
        .read_to_end(&mut in_bundle)
        .expect("read");
    assert_eq!(in_bundle, pdf);

    // What the back end holds is ciphertext: neither the marker nor the PDF header appear in
    // any stored file (for S3: anywhere in the server's directory, metadata included).
    let stored = rig.stored_file(&sha256);
    let object = std::fs::read(&stored).expect("stored object");
    assert!(object.starts_with(b"RCMDENC\x01"), "{}", stored.display());
    let everything = rig.everything_stored();
    assert!(!everything.is_empty());
    for file in &everything {
        let bytes = std::fs::read(file).expect("read");
        assert!(
            !contains(&bytes, crate::archive::MARKER.as_bytes()) && !contains(&bytes, b"%PDF-"),
            "plaintext in {}",
            file.display()
        );
    }
    assert_eq!(rig.stored_files(), vec![stored.clone()]);

    // The same bytes uploaded again (another tenant): one object, left as it was.
    let other = app.new_api_key("Autre cabinet").await;
    let again = app.upload_with_key(&other, "copie.pdf", pdf.clone()).await;
    assert!(again.status().is_success(), "{}", again.status());
    assert_eq!(rig.stored_files(), vec![stored.clone()]);
    assert_eq!(std::fs::read(&stored).expect("object"), object);
}

async fn a_large_document_streams_through_multipart_upload_and_ranged_reads(
    engine: Engine,
    store: Store,
) {
    let Some(rig) = Rig::start(engine, store, None).await else {
        return;
    };
    let content = &rig.app.service.content;
    // 20 MiB: above the 8 MiB single-PUT size, so three multipart parts on S3, and twenty
    // ranged reads back.
    let plain: Vec<u8> = (0..20u32 * 1024 * 1024)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut upload = content.begin(1 << 30).await.expect("begin");
    for piece in plain.chunks(300_000) {
        upload.write(piece).await.expect("write");
    }
    let stored = upload.finish().await.expect("finish");
    assert_eq!(stored.sha256, hex::encode(Sha256::digest(&plain)));
    let object = rig.stored_file(&stored.sha256);
    let size = std::fs::metadata(&object).expect("object").len();
    assert!(size > plain.len() as u64, "{size}");

    let mut reader = content.open_read(&stored.sha256).await.expect("open");
    let mut hasher = Sha256::new();
    let mut total = 0usize;
    while let Some(chunk) = reader.next_chunk().await.expect("chunk") {
        total += chunk.len();
        hasher.update(&chunk);
    }
    assert_eq!(total, plain.len());
    assert_eq!(hex::encode(hasher.finalize()), stored.sha256);

    let mut blocking = content.open_blocking(&stored.sha256).await.expect("open");
    let digest = tokio::task::spawn_blocking(move || {
        let mut hasher = Sha256::new();
        std::io::copy(&mut blocking, &mut hasher).map(|_| hex::encode(hasher.finalize()))
    })
    .await
    .expect("join")
    .expect("blocking read");
    assert_eq!(digest, stored.sha256);
}

async fn the_audit_finds_a_flipped_byte_in_a_stored_object(engine: Engine, store: Store) {
    let Some(rig) = Rig::start(engine, store, None).await else {
        return;
    };
    let app = &rig.app;
    let letter = app.deposit().await;
    let id = letter["id"].as_str().expect("id").to_string();
    let doc = app
        .service
        .storage
        .letter_documents(&id)
        .await
        .expect("documents")
        .remove(0);
    let healthy = run(&app.service, AuditScope::All).await.expect("audit");
    assert!(healthy.report.passed, "{:#?}", healthy.report.failures);
    assert!(healthy.report.documents_checked >= 1);

    let file = rig.stored_file(&doc.sha256);
    let mut bytes = std::fs::read(&file).expect("object");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&file, &bytes).expect("write");

    let audit = run(&app.service, AuditScope::All).await.expect("audit");
    assert!(!audit.report.passed);
    assert!(
        audit
            .report
            .failures
            .iter()
            .any(|f| f.area == "document" && f.document_id.as_deref() == Some(doc.id.as_str())),
        "{:#?}",
        audit.report.failures
    );
    // A damaged document fails the bundle request instead of a silently wrong download.
    let bundle = app.get(&format!("/v1/letters/{id}/bundle.zip")).await;
    assert_eq!(bundle.status(), 500);
}

async fn encrypt_existing_is_for_the_file_system_only(engine: Engine, store: Store) {
    let Some(rig) = Rig::start(engine, store, None).await else {
        return;
    };
    rig.app.deposit().await;
    let outcome = recommande::app::archive::encrypt_existing(&rig.app.service.content).await;
    match store {
        Store::Filesystem => {
            let report = outcome.expect("encrypt-existing");
            assert_eq!(report.examined, 1);
            assert_eq!(report.already_encrypted, 1);
            assert_eq!(report.encrypted, 0);
        }
        Store::S3 => {
            let err = outcome.expect_err("refused on S3").to_string();
            assert!(err.contains("file-system back end only"), "{err}");
        }
    }
}

/// Wrong credentials or a missing bucket stop the start with the bucket named, rather than
/// failing at the first upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_the_service_cannot_use_stops_the_start() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite:{}", dir.path().join("t.db").display());
    for (what, adjust) in [
        (
            "wrong secret",
            Box::new(|s: &mut S3Settings| {
                s.secret_access_key = Some(SecretText::new("not-the-secret".into()))
            }) as Box<dyn Fn(&mut S3Settings)>,
        ),
        (
            "missing bucket",
            Box::new(|s: &mut S3Settings| s.bucket = "no-such-bucket".into()),
        ),
    ] {
        let mut settings = crate::helpers::settings_for(dir.path(), &database_url);
        let StorageBackend::S3(mut s3_settings) = s3.backend() else {
            unreachable!("an S3 backend");
        };
        adjust(&mut s3_settings);
        settings.storage = StorageBackend::S3(s3_settings);
        let err = recommande::app::service::Service::start(settings, Arc::new(SystemClock))
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: the service started"))
            .to_string();
        assert!(err.contains("object storage error"), "{what}: {err}");
    }
}
