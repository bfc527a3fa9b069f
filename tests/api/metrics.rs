//! `GET /metrics`: the Prometheus text format behind the operator's token, with figures that
//! follow the archive (letters, documents, log, keys) and the last audit.

use std::collections::HashMap;
use std::sync::Arc;

use recommande::app::audit::{AuditScope, run};
use recommande::config::SecretText;
use recommande::core::clock::SystemClock;

use crate::helpers::{Engine, TestApp, spawn_app, spawn_app_with};

crate::on_both_engines!(metrics_need_the_token_parse_as_prometheus_text_and_follow_the_audit);

const TOKEN: &str = "metrics-token-0123456789-0123456789-abcdef";

/// Every sample line, `name{labels} value`, checked for form; keyed by `name{labels}`.
async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let response = app.get_as(TOKEN, "/metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.expect("text");
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            let labels = &series[name_end..];
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line:?}");
            for pair in labels[1..labels.len() - 1].split(',') {
                let (k, v) = pair.split_once('=').expect("label=value");
                assert!(
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line:?}"
                );
                assert!(
                    v.starts_with('"') && v.ends_with('"') && v.len() >= 2,
                    "{line:?}"
                );
            }
        }
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("value in {line:?}"));
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "{line:?} twice"
        );
    }
    samples
}

async fn metrics_need_the_token_parse_as_prometheus_text_and_follow_the_audit(engine: Engine) {
    let Some(app) = spawn_app_with(engine, Arc::new(SystemClock), |s| {
        s.metrics.token = Some(SecretText::new(TOKEN.into()));
    })
    .await
    else {
        return;
    };
    for token in [None, Some("wrong-token")] {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.expect("GET");
        assert_eq!(response.status(), 401, "{token:?}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }

    let before = scrape(&app).await;
    assert_eq!(before["recommande_documents"], 0.0);
    // The shipped rates table ends with 2026-H1.
    assert_eq!(
        before["recommande_collection_rates_newest_half_year_info{half_year=\"2026-H1\"}"],
        1.0
    );
    assert!(
        !before.keys().any(|k| k.starts_with("recommande_audit_")),
        "no audit yet: {before:?}"
    );
    assert_eq!(
        before["recommande_outbox_oldest_pending_age_seconds{queue=\"witnesses\"}"],
        0.0
    );

    app.deposit().await;
    app.deposit().await;
    app.service.log.issue_head().await.expect("head");
    let audit = run(&app.service, AuditScope::All).await.expect("audit");
    assert!(audit.report.passed, "{:?}", audit.report.failures);

    let after = scrape(&app).await;
    assert_eq!(after["recommande_documents"], 1.0, "{after:?}");
    let letters: f64 = after
        .iter()
        .filter(|(k, _)| k.starts_with("recommande_letters{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(letters, 2.0, "{after:?}");
    assert_eq!(after["recommande_log_tree_head_size"], 2.0);
    assert_eq!(after["recommande_log_leaves"], 2.0);
    assert_eq!(after["recommande_audit_last_passed{mode=\"all\"}"], 1.0);
    assert_eq!(after["recommande_audit_last_failures{mode=\"all\"}"], 0.0);
    assert_eq!(
        after["recommande_audit_last_checked{mode=\"all\",what=\"letters\"}"],
        2.0
    );
    assert!(after["recommande_audit_last_finished_timestamp_seconds{mode=\"all\"}"] > 1.7e9);
    assert!(after["recommande_audit_last_duration_seconds{mode=\"all\"}"] >= 0.0);
    let keys: f64 = after
        .iter()
        .filter(|(k, _)| k.starts_with("recommande_data_keys{master_key_id="))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(keys, 1.0, "{after:?}");

    // Neither a token nor `public`: the endpoint does not exist.
    let Some(closed) = spawn_app(engine).await else {
        return;
    };
    let response = closed.get_anon("/metrics").await;
    assert_eq!(response.status(), 404);
}
