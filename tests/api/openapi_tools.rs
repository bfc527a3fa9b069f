//! The served OpenAPI document as integrators' tools read it: `openapi-spec-validator` (the
//! Python reference validator) and Redocly's linter with its recommended rules accept it
//! with no error, and the conventions those tools check hold (unique operation ids, query
//! parameters in the query, problem+json errors, explicit security, a server); and
//! schemathesis, generating requests from the document for every operation, finds every
//! answer documented: no server error, documented status codes and content types, bodies
//! that match their schemas.

use std::process::Command;

use serde_json::Value;

use crate::helpers::{Engine, spawn_app};

fn tool_missing(program: &str) -> bool {
    assert!(
        std::env::var_os("CI").is_none(),
        "{program} is missing in CI (.ci/run installs it)"
    );
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_and_linters_accept_the_openapi_document() {
    let Some(app) = spawn_app(Engine::Sqlite).await else {
        return;
    };
    let doc: Value = app
        .get("/v1/openapi.json")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        doc["servers"][0]["url"],
        app.service.settings.server.public_url
    );
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let id = op["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_string()), "{method} {path}: {id} twice");
            assert!(op.get("security").is_some(), "{method} {path}: no security");
            for parameter in op["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] == "path" {
                    let name = parameter["name"].as_str().expect("name");
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: {name}"
                    );
                }
            }
            for (status, response) in op["responses"].as_object().expect("responses") {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        response["content"].get("application/json").is_none(),
                        "{method} {path} {status}: errors are problem+json"
                    );
                }
            }
        }
    }
    let verify = &doc["paths"]["/v1/verify/{letter_id}"]["get"]["parameters"];
    assert!(
        verify
            .as_array()
            .expect("parameters")
            .iter()
            .any(|p| p["name"] == "code" && p["in"] == "query"),
        "{verify}"
    );

    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).expect("write");

    match Command::new("openapi-spec-validator").arg(&file).output() {
        Ok(out) => assert!(
            out.status.success(),
            "openapi-spec-validator:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => {
            tool_missing("openapi-spec-validator");
        }
    }

    let redocly = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/openapi/node_modules/.bin/redocly");
    if !redocly.exists() {
        tool_missing("redocly");
        return;
    }
    let out = Command::new(&redocly)
        .args(["lint", "--format=summary"])
        .arg(&file)
        .env("REDOCLY_TELEMETRY", "off")
        .env("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true")
        .output()
        .expect("redocly");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "redocly lint:\n{said}");
    assert!(!said.contains("error "), "redocly lint:\n{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_every_answer_as_documented() {
    if Command::new("st").arg("--version").output().is_err() {
        tool_missing("schemathesis");
        return;
    }
    // Quotas high enough that the generated requests reach the logic behind them.
    let Some(app) = crate::helpers::spawn_app_with(
        Engine::Sqlite,
        std::sync::Arc::new(recommande::core::clock::SystemClock),
        |s| {
            s.rate_limits.api_per_minute = 1_000_000;
            s.rate_limits.deposits_per_minute = 1_000_000;
            s.rate_limits.batches_per_minute = 1_000_000;
            s.rate_limits.documents_per_minute = 1_000_000;
            s.rate_limits.failed_auth_per_minute = 1_000_000;
            s.rate_limits.recipient_per_minute = 1_000_000;
        },
    )
    .await
    else {
        return;
    };
    let hooks = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi");
    // schemathesis keeps a cache in its working directory: a temporary one.
    let scratch = tempfile::tempdir().expect("dir");
    let cwd = scratch.path().to_path_buf();
    let out = tokio::task::spawn_blocking({
        let schema = app.url("/v1/openapi.json");
        let key = app.api_key.clone();
        move || {
            Command::new("st")
                .args(["run", &schema])
                .args(["-H", &format!("Authorization: Bearer {key}")])
                .args([
                    "--checks",
                    "not_a_server_error,status_code_conformance,content_type_conformance,\
                     response_schema_conformance",
                    "--phases",
                    "examples,coverage,fuzzing",
                    "--max-examples",
                    "5",
                    "--workers",
                    "1",
                    "--seed",
                    "20261203",
                ])
                .current_dir(cwd)
                .env("PYTHONPATH", hooks)
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
                .env("NO_COLOR", "1")
                .output()
                .expect("st")
        }
    })
    .await
    .expect("join");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "schemathesis:\n{said}");
    assert!(
        said.contains(" passed"),
        "schemathesis ran nothing:\n{said}"
    );
}

/// A client generated by `openapi-python-client` from the served document, without a hand
/// fix (only its settings file, tests/openapi/client-config.yaml, which maps the binary
/// media types to files), deposits a letter and reads its evidence (tests/openapi/client_check.py).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_python_client_deposits_and_reads_the_evidence() {
    if Command::new("openapi-python-client")
        .arg("--version")
        .output()
        .is_err()
    {
        tool_missing("openapi-python-client");
        return;
    }
    let Some(app) = spawn_app(Engine::Sqlite).await else {
        return;
    };
    let doc = app
        .get("/v1/openapi.json")
        .await
        .text()
        .await
        .expect("text");
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("openapi.json"), &doc).expect("write");
    let support = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi");
    let pdf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/relance.pdf");
    let base = app.address.clone();
    let key = app.api_key.clone();
    let root = dir.path().to_path_buf();
    let (generated, checked) = tokio::task::spawn_blocking(move || {
        let generated = Command::new("openapi-python-client")
            .args([
                "generate",
                "--path",
                "openapi.json",
                "--meta",
                "none",
                "--config",
            ])
            .arg(support.join("client-config.yaml"))
            .current_dir(&root)
            .output()
            .expect("openapi-python-client");
        let checked = Command::new("python3")
            .arg(support.join("client_check.py"))
            .arg(&root)
            .args([&base, &key])
            .arg(pdf)
            .output()
            .expect("python3");
        (generated, checked)
    })
    .await
    .expect("join");
    let said = String::from_utf8_lossy(&generated.stdout).to_string()
        + &String::from_utf8_lossy(&generated.stderr);
    assert!(generated.status.success(), "generation:\n{said}");
    assert!(
        !said.contains("WARNING"),
        "every operation is generated:\n{said}"
    );
    assert!(
        checked.status.success(),
        "the generated client:\n{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let seen: Value = serde_json::from_slice(&checked.stdout).expect("json");
    assert_eq!(seen["evidence"][0], "SubmissionAcceptance", "{seen}");
    assert_eq!(seen["record_sha256"], seen["summary_sha256"], "{seen}");
    assert!(
        seen["seal_bytes"].as_u64().is_some_and(|n| n > 100),
        "{seen}"
    );
    assert!(
        seen["token_bytes"].as_u64().is_some_and(|n| n > 100),
        "{seen}"
    );
    assert_eq!(seen["bundle_status"], 200);
    assert_eq!(seen["bundle_magic"], "PK");
}

/// The reference page served by the service: one HTML page rendered from the document, every
/// operation and every schema with its anchor, under the pages' security policy, with no
/// script and nothing loaded from elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_page_shows_every_operation_without_outside_resources() {
    let Some(app) = spawn_app(Engine::Sqlite).await else {
        return;
    };
    let doc: Value = app
        .get("/v1/openapi.json")
        .await
        .json()
        .await
        .expect("json");
    let page = app.get_anon("/v1/reference").await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    assert_eq!(
        page.headers()["content-security-policy"],
        recommande::http::pages::CONTENT_SECURITY_POLICY
    );
    let html = page.text().await.expect("html");
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let id = op["operationId"].as_str().expect("id");
            let anchor: String = id
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            assert!(
                html.contains(&format!("id=\"op-{anchor}\"")),
                "{method} {path}"
            );
            let shown = path.replace('&', "&amp;");
            assert!(
                html.contains(&format!("{} {shown}", method.to_uppercase())),
                "{method} {path}"
            );
        }
    }
    for name in doc["components"]["schemas"]
        .as_object()
        .expect("schemas")
        .keys()
    {
        assert!(html.contains(&format!("id=\"schema-{name}\"")), "{name}");
    }
    // Every link inside the page leads to an anchor of the page, or to the document.
    for link in html.split("href=\"").skip(1) {
        let target = link.split('"').next().expect("target");
        assert!(
            target.starts_with('#') || target == "/v1/openapi.json",
            "outside link {target}"
        );
        if let Some(anchor) = target.strip_prefix('#') {
            assert!(
                html.contains(&format!("id=\"{anchor}\"")),
                "dangling #{anchor}"
            );
        }
    }
    assert!(
        !html.contains("<script") && !html.contains(" src="),
        "no script, nothing loaded"
    );
}
