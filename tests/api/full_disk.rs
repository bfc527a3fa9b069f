//! A full disk (issue 12 §0, "never acknowledge what is not stored"): the data directory is a
//! small tmpfs mounted by the test and filled with a ballast file. Every 201 must be stored,
//! every refusal must be a 507/503 problem with `Retry-After` that stored nothing, and once
//! space returns the same process writes again, without a restart.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use recommande::core::clock::SystemClock;
use sqlx::{Connection, Row};

use crate::helpers::{letter_body, settings_for, start_on};

/// Mounts a tmpfs of `size` on `dir`; `false` where the sandbox forbids mounting.
fn mount_tmpfs(dir: &Path, size: &str) -> bool {
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

/// Writes zeros into `path` until the file system refuses (ENOSPC).
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("ballast");
    let block = vec![0u8; 64 * 1024];
    loop {
        if file.write_all(&block).is_err() {
            break;
        }
    }
    // Smaller writes take the last partial blocks too.
    let byte = [0u8; 512];
    while file.write_all(&byte).is_ok() {}
    let _ = file.sync_all();
}

struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_full_disk_every_201_is_stored_every_refusal_stored_nothing_and_writes_resume() {
    // Arrange: the data directory on a 24 MiB tmpfs.
    let dir = tempfile::tempdir().expect("dir");
    if !mount_tmpfs(dir.path(), "24m") {
        assert!(
            std::env::var_os("CI").is_none(),
            "mounting a tmpfs must work in CI (it runs as root)"
        );
        eprintln!("NOTICE: cannot mount a tmpfs here; full-disk test not run");
        return;
    }
    let _unmount = Unmount(dir.path());
    let data_dir = dir.path().to_path_buf();
    let database_url = format!("sqlite:{}", data_dir.join("test.db").display());
    let app = start_on(
        tempfile::tempdir().expect("unused"),
        database_url.clone(),
        settings_for(&data_dir, &database_url),
        Arc::new(SystemClock),
    )
    .await;
    let document = app.upload_pdf().await;
    let ballast = data_dir.join("ballast");
    fill(&ballast);

    // Act: deposits until twenty have been refused (the WAL's free frames take a few first).
    let mut acknowledged = BTreeSet::new();
    let mut refused = 0;
    for i in 0..2_000 {
        let mut body = letter_body(&document);
        body["reference"] = serde_json::json!(format!("FULL-{i:04}"));
        let response = app
            .post_letter_with(&app.api_key, &body, Some(&format!("full-{i}")))
            .await;
        let status = response.status().as_u16();
        match status {
            201 => {
                acknowledged.insert(format!("FULL-{i:04}"));
            }
            507 | 503 => {
                assert!(
                    response.headers().contains_key("retry-after"),
                    "a refusal says when to retry"
                );
                let content_type = response.headers()["content-type"].to_str().unwrap_or("");
                assert_eq!(content_type, "application/problem+json");
                refused += 1;
                if refused == 20 {
                    break;
                }
            }
            other => panic!(
                "unexpected answer {other} on a full disk: {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }
    assert_eq!(refused, 20, "the full disk refused deposits");

    // Space returns: the same process deposits again and says it is healthy.
    std::fs::remove_file(&ballast).expect("free the space");
    let mut body = letter_body(&document);
    body["reference"] = serde_json::json!("FULL-AFTER");
    let response = app
        .post_letter_with(&app.api_key, &body, Some("full-after"))
        .await;
    assert_eq!(
        response.status(),
        201,
        "writes resume once space returns: {}",
        response.text().await.unwrap_or_default()
    );
    acknowledged.insert("FULL-AFTER".to_string());
    let health = app.get_anon("/healthz").await;
    assert_eq!(health.status(), 200);

    // Assert, after a clean shutdown, from a connection of our own: exactly the acknowledged
    // letters are stored, each with its deposit evidence.
    app.service.storage.close().await;
    drop(app);
    let mut conn = sqlx::SqliteConnection::connect(&database_url)
        .await
        .expect("open the database");
    let rows = sqlx::query(
        "SELECT l.reference, (SELECT COUNT(*) FROM evidence e WHERE e.letter_id = l.id) AS n \
         FROM letters l WHERE l.reference LIKE 'FULL-%'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("letters");
    let mut stored = BTreeSet::new();
    for row in rows {
        let reference: String = row.get("reference");
        let evidence: i64 = row.get("n");
        assert!(evidence >= 1, "{reference} is stored with its evidence");
        stored.insert(reference);
    }
    conn.close().await.ok();
    assert_eq!(
        stored, acknowledged,
        "every 201 is stored and no refused deposit is"
    );
}
