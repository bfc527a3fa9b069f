//! Collection letter templates: recorded once per account, read and listed, never changed;
//! unknown placeholders refused; and a stored template still yields a letter with every
//! mandatory mention.

use crate::helpers::header_str;
use serde_json::{Value, json};

use crate::helpers::{Engine, TestApp, spawn_app};
use recommande::domain::collection::{
    ComposeRequest, Mention, MentionStatus, RatesTable, Wording, write_letter,
};

crate::on_both_engines!(
    a_template_can_be_recorded_read_and_listed_by_its_account_only,
    every_invalid_template_field_and_unknown_placeholder_is_listed_in_one_422,
    a_retried_template_post_with_the_same_idempotency_key_records_one_template,
    the_database_refuses_to_change_or_delete_a_template,
    a_stored_template_composes_a_letter_with_the_mandatory_mentions_added_on_top,
);

const WORDING: &str = "Madame, Monsieur {{debtor.name}},\n\nNous restons sans nouvelles de votre part au sujet des factures {{invoices}}.\n\nMerci de régulariser la somme de {{total}} sous {{deadline}}.";

async fn post_template(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.post_json_as(key, "/v1/templates", body).await
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

async fn a_template_can_be_recorded_read_and_listed_by_its_account_only(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let response = post_template(
        &app,
        &app.api_key,
        &json!({"name": "Relance courtoise", "kind": "relance", "wording": WORDING}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let location = header_str(&response, "location").map(str::to_string);
    let template: Value = response.json().await.expect("json");
    let id = template["id"].as_str().expect("id").to_string();
    assert_eq!(location, Some(format!("/v1/templates/{id}")));
    assert_eq!(template["kind"], "relance");
    assert_eq!(template["wording"], WORDING);
    assert_eq!(
        template["placeholders"],
        json!(["debtor.name", "invoices", "total", "deadline"])
    );

    let read: Value = app.get_json(&format!("/v1/templates/{id}")).await;
    assert_eq!(read, template);

    let second = post_template(
        &app,
        &app.api_key,
        &json!({"name": "Mise en demeure ferme", "kind": "mise_en_demeure", "wording": "Dernier avis avant poursuites."}),
    )
    .await;
    assert_eq!(second.status(), 201);
    let all: Value = app.get_json("/v1/templates").await;
    let items = all["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{all}");
    assert_eq!(items[0]["id"], id.as_str());
    let first_page: Value = app.get_json("/v1/templates?limit=1").await;
    assert_eq!(first_page["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(first_page["next_cursor"], id.as_str());
    let bad_query = app.get("/v1/templates?limit=0&colour=blue").await;
    let bad = problem(bad_query, 400, "invalid-query").await;
    assert_eq!(bad["errors"].as_array().map(Vec::len), Some(2), "{bad}");

    let other = app.new_api_key("Autre Cabinet").await;
    let foreign = app.get_as(&other, &format!("/v1/templates/{id}")).await;
    problem(foreign, 404, "not-found").await;
    let foreign_list: Value = app
        .get_as(&other, "/v1/templates")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(foreign_list["items"], json!([]));
    problem(app.get("/v1/templates/not-a-uuid").await, 404, "not-found").await;
    let anonymous = app.get_anon("/v1/templates").await;
    problem(anonymous, 401, "unauthorized").await;
}

async fn every_invalid_template_field_and_unknown_placeholder_is_listed_in_one_422(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let response = post_template(
        &app,
        &app.api_key,
        &json!({"name": " ", "kind": "lettre", "wording": "Bonjour {{debtor.nom}}, payez {{totl}} sous {{deadline}}.", "colour": "blue"}),
    )
    .await;
    let body = problem(response, 422, "validation-failed").await;
    let errors = body["errors"].as_array().expect("errors");
    let fields: Vec<&str> = errors
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    assert_eq!(
        fields,
        ["colour", "name", "kind", "wording", "wording"],
        "{body}"
    );
    let messages = body.to_string();
    assert!(messages.contains("{{debtor.nom}}") && messages.contains("{{totl}}"));
    // Code pénal 433-13: wording imitating a bailiff's act is refused, with the reason.
    let bailiff = post_template(
        &app,
        &app.api_key,
        &json!({"name": "menace", "kind": "mise_en_demeure", "wording": "Ceci vaut commandement de payer : un commissaire de justice procédera à la saisie."}),
    )
    .await;
    let body = problem(bailiff, 422, "validation-failed").await;
    let messages = body.to_string();
    assert!(
        messages.contains("433-13")
            && messages.contains("commandement de payer")
            && messages.contains("saisie"),
        "{body}"
    );
    let all: Value = app.get_json("/v1/templates").await;
    assert_eq!(all["items"], json!([]));

    let not_json = app.post_raw("/v1/templates", "application/json", "{").await;
    problem(not_json, 400, "malformed-json").await;
}

async fn a_retried_template_post_with_the_same_idempotency_key_records_one_template(
    engine: Engine,
) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let body = json!({"name": "Relance", "kind": "relance", "wording": WORDING});
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response = app
            .post_json_idempotent("/v1/templates", "template-1", &body)
            .await;
        assert_eq!(response.status(), 201);
        let template: Value = response.json().await.expect("json");
        ids.push(template["id"].as_str().expect("id").to_string());
    }
    assert_eq!(ids[0], ids[1]);
    let all: Value = app.get_json("/v1/templates").await;
    assert_eq!(all["items"].as_array().map(Vec::len), Some(1));
    let reused = app
        .post_json_idempotent(
            "/v1/templates",
            "template-1",
            &json!({"name": "Autre", "kind": "relance", "wording": "Autre texte."}),
        )
        .await;
    assert_eq!(reused.status(), 422);
}

async fn the_database_refuses_to_change_or_delete_a_template(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let response = post_template(
        &app,
        &app.api_key,
        &json!({"name": "Relance", "kind": "relance", "wording": WORDING}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let template: Value = response.json().await.expect("json");
    for sql in [
        "DELETE FROM templates",
        "UPDATE templates SET wording = 'Payez.'",
    ] {
        let result = app.execute_sql(sql).await;
        let err = result.expect_err("the database refuses");
        assert!(
            err.to_string().contains("templates are immutable"),
            "{sql}: {err}"
        );
    }
    let read: Value = app
        .get_json(&format!(
            "/v1/templates/{}",
            template["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(read["wording"], WORDING);
}

async fn a_stored_template_composes_a_letter_with_the_mandatory_mentions_added_on_top(
    engine: Engine,
) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let response = post_template(
        &app,
        &app.api_key,
        &json!({"name": "MED courte", "kind": "mise_en_demeure", "wording": WORDING}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let template: Value = response.json().await.expect("json");
    let stored: Value = app
        .get_json(&format!(
            "/v1/templates/{}",
            template["id"].as_str().expect("id")
        ))
        .await;
    let wording =
        Wording::parse(stored["wording"].as_str().expect("wording"), "template").expect("wording");

    let compose = json!({
        "kind": "mise_en_demeure",
        "creditor": {"name": "Atelier Durand SARL", "address": "12 rue des Lilas\n69003 Lyon"},
        "agency": {"name": "Recouvrement Alpes SAS", "address": "8 avenue Foch\n38000 Grenoble", "mandate_reference": "MAN-77"},
        "debtor": {"name": "Boulangerie Martin", "address": "3 place du Marché\n38000 Grenoble", "kind": "professional"},
        "invoices": [{"number": "F-2026-17", "issue_date": "2026-04-30", "due_date": "2026-05-31", "amount_cents": 250000}],
        "payment": {"iban": "FR76 3000 6000 0112 3456 7890 189"}
    });
    let letter_date = time::macros::date!(2026 - 11 - 23);
    let composition =
        ComposeRequest::parse(&compose, letter_date, &RatesTable::embedded()).expect("composition");
    let letter = write_letter(&composition, Some(&wording)).expect("letter");
    let text = letter.plain_text();
    assert!(
        text.contains("Nous restons sans nouvelles de votre part au sujet des factures F-2026-17.")
    );
    let added: Vec<Mention> = letter
        .mentions
        .iter()
        .filter(|m| m.status == MentionStatus::Added)
        .map(|m| m.mention)
        .collect();
    // The wording asks to pay within the deadline, but says nothing of the consequences,
    // of the amicable collection or of the creditor's address (Code des procédures civiles
    // d'exécution, art. R.124-4).
    assert_eq!(
        added,
        [
            Mention::CreditorIdentity,
            Mention::Consequences,
            Mention::AmicableCollection
        ],
        "{text}"
    );
    assert!(
        text.contains("injonction de payer")
            && text.contains("Les frais de recouvrement entrepris sans titre exécutoire")
    );
}
