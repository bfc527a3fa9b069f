//! The recipient pages in a real browser: headless Chromium driven by Playwright
//! (`tests/browser/recipient.mjs`) walks landing → code → session → acceptance → download,
//! with JavaScript disabled, reading the code from the `.eml` the embedded transport wrote.
//! SQLite only: the pages are the same on both engines, which `pages.rs` covers.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::{Engine, spawn_app};
use crate::smtp::{body_text, link_token};

const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_accepts_and_downloads_in_a_real_browser() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/browser/recipient.mjs");
    if !browser_available(&root) {
        return;
    }
    let Some(app) = spawn_app(Engine::Sqlite).await else {
        return;
    };
    let letter = app.deposit().await;
    let letter_id = letter["id"].as_str().expect("id").to_string();
    app.service.lifecycle.run_due_jobs(10).await.expect("jobs");
    let mail_dir = app.dir.path().join("mail");
    let token = notification_token(&mail_dir);
    let landing = app.url(&format!("/r/{token}"));

    // The browser talks to the server of this test: run it beside the runtime.
    let screenshots = root.join("target/browser-screenshots");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .arg(&landing)
            .arg(&mail_dir)
            .env("SCREENSHOT_DIR", &screenshots)
            .output()
    })
    .await
    .expect("join")
    .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the browser walk failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");

    let events: Vec<String> = app
        .evidence_of(&letter_id)
        .await
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(
        events,
        [
            "SubmissionAcceptance",
            "NotificationForAcceptance",
            "ConsignmentAcceptance",
            "ContentHandover"
        ]
    );
    let acceptance = app
        .evidence_of(&letter_id)
        .await
        .into_iter()
        .find(|e| e.event == "ConsignmentAcceptance")
        .expect("acceptance");
    let record: serde_json::Value = serde_json::from_slice(&acceptance.record).expect("json");
    let agent = record["details"]["client"]["user_agent"]
        .as_str()
        .expect("user agent recorded");
    assert!(agent.contains("Chrome"), "{agent}");
}

/// A composed letter on a 390 px wide phone (`tests/browser/phone.mjs`): no page scrolls
/// sideways, the accepted letter shows the amount due, the last day to pay and every payment
/// means, and the /verify pages fit too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composed_letter_reads_on_a_390_px_phone() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/browser/phone.mjs");
    if !browser_available(&root) {
        return;
    }
    let Some(app) = spawn_app(Engine::Sqlite).await else {
        return;
    };
    let response = app
        .post_letter(&crate::compose::body(
            crate::compose::compose("professional", true),
            false,
        ))
        .await;
    assert_eq!(response.status(), 201);
    let letter: serde_json::Value = response.json().await.expect("json");
    let letter_id = letter["id"].as_str().expect("id").to_string();
    let total = recommande::core::french::euros(
        letter["collection"]["breakdown"]["totals"]["total_cents"]
            .as_i64()
            .expect("total"),
    );
    app.service.lifecycle.run_due_jobs(10).await.expect("jobs");
    let mail_dir = app.dir.path().join("mail");
    let landing = app.url(&format!("/r/{}", notification_token(&mail_dir)));
    let verify = app.url(&format!(
        "/verify?letter={letter_id}&code={}",
        app.service.lifecycle.verification_code(&letter_id)
    ));
    let screenshots = root.join("target/browser-screenshots");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .arg(&landing)
            .arg(&mail_dir)
            .arg(&total)
            .arg(&verify)
            .env("SCREENSHOT_DIR", &screenshots)
            .output()
    })
    .await
    .expect("join")
    .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the phone walk failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("phone walk: all checks passed"), "{stdout}");
}

/// Chromium and the npm packages are installed by `.ci/run`; in CI their absence fails the
/// test, elsewhere it is reported loudly and the test returns.
fn browser_available(root: &Path) -> bool {
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing: Vec<&str> = [
        (!Path::new(CHROMIUM).exists()).then_some("chromium (apt-get install chromium)"),
        (!node_ok).then_some("node"),
        (!root
            .join("tests/browser/node_modules/playwright-core")
            .exists())
        .then_some("playwright-core (npm ci --prefix tests/browser)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the browser test may not be skipped in CI; missing: {missing:?}"
    );
    eprintln!(
        "NOTICE: browser test NOT RUN; missing: {}",
        missing.join(", ")
    );
    false
}

fn notification_token(mail_dir: &Path) -> String {
    let body = std::fs::read_dir(mail_dir)
        .expect("mail dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| body_text(&String::from_utf8(std::fs::read(p).expect("eml")).expect("utf-8")))
        .find(|b| b.contains("/r/"))
        .expect("the notification mail");
    link_token(&body)
}
