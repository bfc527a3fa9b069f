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
                .current_dir(hooks)
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
