//! Consumer consents (CPCE L.100): recorded, listed, withdrawn, never erased — and required
//! by every deposit to a consumer.

use crate::helpers::header_str;
use serde_json::{Value, json};

use crate::helpers::{Engine, TestApp, letter_body, spawn_app};

crate::on_both_engines!(
    a_consent_can_be_recorded_read_listed_and_withdrawn_once,
    a_retried_consent_post_with_the_same_idempotency_key_records_one_consent,
    every_invalid_consent_field_is_listed_in_one_422,
    a_deposit_to_a_consumer_is_refused_unless_an_active_consent_of_the_account_covers_them,
    a_deposit_citing_an_active_consent_is_accepted_and_its_evidence_cites_the_consent,
    the_database_refuses_to_erase_or_rewrite_a_consent,
    the_sender_a_consent_names_changes_with_nothing_not_even_a_withdrawal,
);

/// Records a consent for `email` with `key`; returns the 201 body.
pub async fn create_consent(app: &TestApp, key: &str, email: &str) -> Value {
    let response = post_consent(
        app,
        key,
        &json!({"email": email, "name": "Jean Dupont",
            "given_at": "2026-01-15T10:30:00+01:00", "method": "signed_form"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    response.json().await.expect("json")
}

async fn post_consent(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.post_json_as(key, "/v1/consents", body).await
}

async fn withdraw(app: &TestApp, id: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = app
        .client
        .delete(app.url(&format!("/v1/consents/{id}")))
        .bearer_auth(&app.api_key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("DELETE")
}

async fn problem(response: reqwest::Response, status: u16, kind: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        header_str(&response, "content-type"),
        Some("application/problem+json")
    );
    let body: Value = response.json().await.expect("problem");
    assert_eq!(
        body["type"],
        format!("urn:recommande:problem:{kind}"),
        "{body}"
    );
    body
}

fn consumer_letter(document: &str, email: &str, consent_id: &str) -> Value {
    let mut body = letter_body(document);
    body["recipient"] = json!({"name": "Jean Dupont", "email": email, "kind": "consumer",
        "consent_id": consent_id});
    body
}

async fn a_consent_can_be_recorded_read_listed_and_withdrawn_once(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let response = post_consent(
        &app,
        &app.api_key,
        &json!({"email": "jean.dupont@Exemple.FR", "name": "Jean Dupont",
            "given_at": "2026-01-15T10:30:00+01:00", "method": "online_checkbox"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let id_location = header_str(&response, "location").map(str::to_string);
    let consent: Value = response.json().await.expect("json");
    let id = consent["id"].as_str().expect("id").to_string();
    assert_eq!(id_location, Some(format!("/v1/consents/{id}")));
    assert_eq!(consent["email"], "jean.dupont@exemple.fr");
    assert_eq!(consent["given_at"], "2026-01-15T09:30:00.000000Z");
    assert_eq!(consent["method"], "online_checkbox");
    assert_eq!(consent["status"], "active");
    assert!(consent.get("withdrawn_at").is_none(), "{consent}");

    let read: Value = app.get_json(&format!("/v1/consents/{id}")).await;
    assert_eq!(read, consent);
    create_consent(&app, &app.api_key, "marie.martin@exemple.fr").await;

    let response = withdraw(&app, &id, Some(json!({"reason": "demande du client"}))).await;
    assert_eq!(response.status(), 200);
    let withdrawn: Value = response.json().await.expect("json");
    assert_eq!(withdrawn["status"], "withdrawn");
    assert_eq!(withdrawn["withdrawal_reason"], "demande du client");
    let withdrawn_at = withdrawn["withdrawn_at"].as_str().expect("withdrawn_at");

    // Withdrawn consents stay listed: the history is kept, never erased.
    let listed: Value = app
        .get_json("/v1/consents?email=jean.dupont@exemple.fr")
        .await;
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["status"], "withdrawn");
    let all: Value = app.get_json("/v1/consents").await;
    assert_eq!(all["items"].as_array().expect("items").len(), 2);
    let first_page: Value = app.get_json("/v1/consents?limit=1").await;
    assert_eq!(first_page["items"][0]["id"], id.as_str());
    assert_eq!(first_page["next_cursor"], id.as_str());

    let again = problem(
        withdraw(&app, &id, None).await,
        409,
        "consent-already-withdrawn",
    )
    .await;
    assert!(
        again["detail"]
            .as_str()
            .expect("detail")
            .contains(withdrawn_at),
        "{again}"
    );
    let unchanged: Value = app.get_json(&format!("/v1/consents/{id}")).await;
    assert_eq!(unchanged["withdrawn_at"], withdrawn_at);
    assert_eq!(unchanged["withdrawal_reason"], "demande du client");

    problem(
        withdraw(&app, &uuid::Uuid::now_v7().to_string(), None).await,
        404,
        "not-found",
    )
    .await;
    let other = app.new_api_key("Autre Cabinet").await;
    let foreign = app.get_as(&other, &format!("/v1/consents/{id}")).await;
    problem(foreign, 404, "not-found").await;
    let anonymous = app.get_anon("/v1/consents").await;
    problem(anonymous, 401, "unauthorized").await;
}

async fn a_retried_consent_post_with_the_same_idempotency_key_records_one_consent(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let body = json!({"email": "jean.dupont@exemple.fr", "name": "Jean Dupont",
        "given_at": "2026-01-15T10:30:00Z", "method": "contract_clause"});
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response = app
            .post_json_idempotent("/v1/consents", "consent-jd-1", &body)
            .await;
        assert_eq!(response.status(), 201);
        let consent: Value = response.json().await.expect("json");
        ids.push(consent["id"].as_str().expect("id").to_string());
    }
    assert_eq!(ids[0], ids[1]);
    let all: Value = app.get_json("/v1/consents").await;
    assert_eq!(all["items"].as_array().expect("items").len(), 1);

    let mut changed = body.clone();
    changed["method"] = json!("signed_form");
    let response = app
        .post_json_idempotent("/v1/consents", "consent-jd-1", &changed)
        .await;
    problem(response, 422, "idempotency-key-reused").await;
}

async fn every_invalid_consent_field_is_listed_in_one_422(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    // Another account's document is no proof for this one.
    let other = app.new_api_key("Autre Cabinet").await;
    let foreign_document: Value = app
        .upload_with_key(
            &other,
            "consentement.pdf",
            crate::helpers::sample_pdf("autre"),
        )
        .await
        .json()
        .await
        .expect("json");
    let response = post_consent(
        &app,
        &app.api_key,
        &json!({"email": "pas-une-adresse", "name": "   ", "given_at": "2999-01-01T00:00:00Z",
            "method": "telepathie", "document_id": foreign_document["id"], "age": 40}),
    )
    .await;
    let body = problem(response, 422, "validation-failed").await;
    let mut fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["age", "document_id", "email", "given_at", "method", "name"],
        "{body}"
    );

    let missing = problem(
        post_consent(&app, &app.api_key, &json!({})).await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(
        missing["errors"].as_array().expect("errors").len(),
        4,
        "{missing}"
    );
    let malformed = app.post_raw("/v1/consents", "application/json", "{").await;
    problem(malformed, 400, "malformed-json").await;
    let query = problem(
        app.get("/v1/consents?email=nope&limit=0&colour=red").await,
        400,
        "invalid-query",
    )
    .await;
    assert_eq!(
        query["errors"].as_array().expect("errors").len(),
        3,
        "{query}"
    );
    let all: Value = app.get_json("/v1/consents").await;
    assert_eq!(all["items"].as_array().expect("items").len(), 0);
}

async fn a_deposit_to_a_consumer_is_refused_unless_an_active_consent_of_the_account_covers_them(
    engine: Engine,
) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    let email = "jean.dupont@exemple.fr";

    let withdrawn = create_consent(&app, &app.api_key, email).await;
    let withdrawn_id = withdrawn["id"].as_str().expect("id");
    let withdrawn_at = withdraw(&app, withdrawn_id, None)
        .await
        .json::<Value>()
        .await
        .expect("json")["withdrawn_at"]
        .as_str()
        .expect("withdrawn_at")
        .to_string();
    let someone_else = create_consent(&app, &app.api_key, "marie.martin@exemple.fr").await;
    let other_key = app.new_api_key("Autre Cabinet").await;
    let other_tenants = create_consent(&app, &other_key, email).await;

    let unknown = uuid::Uuid::now_v7().to_string();
    for (consent_id, expected) in [
        (unknown.as_str(), "unknown".to_string()),
        (withdrawn_id, format!("withdrawn on {withdrawn_at}")),
        (
            someone_else["id"].as_str().expect("id"),
            "for another email address".to_string(),
        ),
        // Another account's consent is no consent to this sender (and is not revealed).
        (
            other_tenants["id"].as_str().expect("id"),
            "unknown".to_string(),
        ),
    ] {
        let response = app
            .post_letter(&consumer_letter(&document, email, consent_id))
            .await;
        let body = problem(response, 422, "consent-required").await;
        assert_eq!(body["errors"][0]["field"], "recipient.consent_id", "{body}");
        let message = body["errors"][0]["message"].as_str().expect("message");
        assert!(
            message.contains(&expected) && message.contains("CPCE L.100"),
            "{expected}: {message}"
        );
    }
    assert_eq!(app.letter_count().await, 0);
}

async fn a_deposit_citing_an_active_consent_is_accepted_and_its_evidence_cites_the_consent(
    engine: Engine,
) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let document = app.upload_pdf().await;
    let proof = app.upload_pdf().await;
    let response = post_consent(
        &app,
        &app.api_key,
        &json!({"email": "jean.dupont@exemple.fr", "name": "Jean Dupont",
            "given_at": "2026-01-15T10:30:00Z", "method": "email_confirmation",
            "document_id": proof}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let consent: Value = response.json().await.expect("json");
    assert_eq!(consent["document_id"], proof.as_str());
    let consent_id = consent["id"].as_str().expect("id");

    let response = app
        .post_letter(&consumer_letter(
            &document,
            "jean.dupont@EXEMPLE.fr",
            consent_id,
        ))
        .await;
    assert_eq!(response.status(), 201);
    let letter: Value = response.json().await.expect("json");
    let record: Value = app
        .get(&format!(
            "/v1/letters/{}/evidence/{}.json",
            letter["id"].as_str().expect("id"),
            letter["evidence"][0]["id"].as_str().expect("evidence id")
        ))
        .await
        .json()
        .await
        .expect("record");
    assert_eq!(record["details"]["consent_id"], consent_id);
    assert_eq!(
        record["details"]["consent"],
        json!({"id": consent_id, "given_at": "2026-01-15T10:30:00.000000Z",
            "method": "email_confirmation"})
    );
    assert_eq!(app.letter_count().await, 1);
}

async fn the_database_refuses_to_erase_or_rewrite_a_consent(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let consent = create_consent(&app, &app.api_key, "jean.dupont@exemple.fr").await;
    withdraw(&app, consent["id"].as_str().expect("id"), None).await;
    for sql in [
        "DELETE FROM consents",
        "UPDATE consents SET email = 'autre@exemple.fr'",
        "UPDATE consents SET withdrawn_at = NULL",
    ] {
        let result = app.execute_sql(sql).await;
        let err = result.expect_err("the database refuses");
        assert!(err.to_string().contains("consent"), "{sql}: {err}");
    }
    let read: Value = app
        .get_json(&format!(
            "/v1/consents/{}",
            consent["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(read["email"], "jean.dupont@exemple.fr");
    assert_eq!(read["status"], "withdrawn");
}

async fn the_sender_a_consent_names_changes_with_nothing_not_even_a_withdrawal(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let response = post_consent(
        &app,
        &app.api_key,
        &json!({"email": "jean.dupont@exemple.fr", "name": "Jean Dupont",
            "given_at": "2026-01-15T10:30:00+01:00", "method": "signed_form", "sender": "Recouvr SAS"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let consent: Value = response.json().await.expect("json");
    assert_eq!(consent["sender"], "Recouvr SAS");
    let id = consent["id"].as_str().expect("id");
    // A withdrawal that would also rewrite the sender is refused (migration 0018)...
    let err = app
        .execute_sql("UPDATE consents SET withdrawn_at = 1, sender = 'Autre SAS'")
        .await
        .expect_err("the database refuses");
    assert!(err.to_string().contains("consent"), "{err}");
    // ...while the same withdrawal alone is allowed: the refusal was the sender's.
    app.execute_sql("UPDATE consents SET withdrawn_at = 1")
        .await
        .expect("a withdrawal");
    let read: Value = app.get_json(&format!("/v1/consents/{id}")).await;
    assert_eq!(read["sender"], "Recouvr SAS");
    assert_eq!(read["status"], "withdrawn");
}
