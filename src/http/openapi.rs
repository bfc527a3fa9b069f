//! The OpenAPI 3.1 document of every route, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::batches::{BatchBody, BatchPage, BatchSummary, BatchView};
use super::consents::{ConsentBody, ConsentPage, ConsentStatus, ConsentView, WithdrawalBody};
use super::documents::{DocumentView, UploadForm};
use super::letters::{
    DepositBody, EvidenceFiles, EvidenceList, EvidenceSummary, LetterPage, LetterView,
};
use super::problem::Problem;
use super::webhooks::{
    DeliveryPage, DeliveryStatus, DeliveryView, RotateSecretBody, WebhookBody, WebhookList,
    WebhookStatus, WebhookView,
};
use crate::app::batch::BatchAccepted;
use crate::domain::batch::{BatchMode, BatchSource, BatchState, RowError};
use crate::domain::consent::ConsentMethod;
use crate::domain::letter::{FieldError, LetterState, Recipient, RecipientKind, Sender};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "recommande",
        description = "Electronic registered letters (LRE, eIDAS electronic registered delivery) with evidence sealed with CMS and timestamped with RFC 3161. Errors are RFC 9457 problem+json; every POST that creates or changes an account's data honours Idempotency-Key.",
        license(name = "AGPL-3.0-or-later")
    ),
    paths(
        super::system::healthz,
        super::system::livez,
        super::system::readyz,
        super::system::roots_pem,
        super::system::timestamp,
        super::documents::upload,
        super::letters::deposit,
        super::letters::list,
        super::letters::show,
        super::letters::document,
        super::letters::place_hold,
        super::letters::lift_hold,
        super::letters::evidence_list,
        super::letters::evidence_file,
        super::letters::bundle,
        super::letters::proof,
        super::recipient::show,
        super::recipient::request_code,
        super::recipient::open_session,
        super::recipient::accept,
        super::recipient::refuse,
        super::recipient::document,
        super::recipient::evidence_file,
        super::recipient::receipt,
        super::bounces::receive,
        super::metrics::metrics,
        super::consents::create,
        super::consents::list,
        super::consents::show,
        super::consents::withdraw,
        super::letter_templates::create,
        super::letter_templates::list,
        super::letter_templates::show,
        super::webhooks::create,
        super::webhooks::list,
        super::webhooks::show,
        super::webhooks::delete,
        super::webhooks::deliveries,
        super::webhooks::rotate_secret,
        super::log::latest_head,
        super::log::head_of_size,
        super::log::inclusion,
        super::log::consistency,
        super::verification::verify_letter_api,
        super::batches::submit,
        super::batches::list,
        super::batches::cancel,
        super::batches::show,
        openapi_json,
        super::reference::reference,
    ),
    components(schemas(
        DocumentView, UploadForm, DepositBody, LetterView, LetterPage, EvidenceSummary, EvidenceFiles,
        EvidenceList, Problem, FieldError, LetterState, Sender, Recipient, RecipientKind,
        super::recipient::RecipientView, super::recipient::RecipientEvidence, super::recipient::CodeSentView,
        super::recipient::SessionRequest, super::recipient::SessionView, super::bounces::BounceOutcome,
        ConsentBody, ConsentView, ConsentPage, ConsentStatus, ConsentMethod, WithdrawalBody,
        WebhookBody, RotateSecretBody, WebhookView, WebhookList, WebhookStatus, DeliveryView, DeliveryPage,
        DeliveryStatus, crate::core::log::PublishedTreeHead, crate::core::log::InclusionProof,
        crate::core::log::ConsistencyProof, super::verification::LetterVerification,
        super::verification::VerifiedEvent, super::verification::CheckVerdict,
        BatchView, BatchBody, BatchPage, BatchSummary, BatchAccepted, BatchMode, BatchState, BatchSource, RowError,
        super::letter_templates::TemplateBody, super::letter_templates::TemplateView,
        super::letter_templates::TemplatePage, crate::domain::collection::LetterKind,
        crate::domain::collection::request::ComposeBody, crate::domain::collection::CompositionSummary,
        crate::domain::collection::Block
    )),
    modifiers(&BearerApiKey, &ProblemInstance, &Conventions),
    tags(
        (name = "letters", description = "Deposit and follow registered letters"),
        (name = "batches", description = "Up to 10,000 letters at once, from JSON or CSV, deposited in the background"),
        (name = "documents", description = "Upload documents once, use them in many letters"),
        (name = "evidence", description = "Sealed and timestamped evidence records"),
        (name = "consents", description = "Consumers' prior consent to electronic registered letters (CPCE L.100)"),
        (name = "templates", description = "The account's own wording for relances and mises en demeure; mandatory mentions are always added on top"),
        (name = "webhooks", description = "Signed notifications of letter events, retried for 48 hours"),
        (name = "trust", description = "Trust anchors and the RFC 3161 timestamp authority"),
        (name = "verification", description = "Public verification of a letter's evidence with the code printed on its proofs"),
        (name = "recipient", description = "The recipient's side: identify, accept or refuse, download"),
        (name = "service", description = "Health and API description"),
        (name = "log", description = "The transparency log (RFC 9162 Merkle tree) over every evidence record: signed tree heads, inclusion and consistency proofs"),
    )
)]
pub struct ApiDoc;

struct BearerApiKey;

/// What tools expect of the document beyond what the route annotations say: unique
/// operation ids (a handler's name is prefixed with its tag where two handlers share it,
/// so `list` becomes `consents_list`), error answers declared as the
/// `application/problem+json` they are served as, and `security: []` on the public routes
/// (an explicit "no credentials", rather than a silence that linters flag).
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use std::collections::HashMap;
        // The licence by its SPDX identifier, as OpenAPI 3.1 allows (§4.8.4).
        let mut license = utoipa::openapi::info::License::new(env!("CARGO_PKG_LICENSE"));
        license.identifier = Some(env!("CARGO_PKG_LICENSE").to_string());
        openapi.info.license = Some(license);
        let mut seen: HashMap<String, usize> = HashMap::new();
        for item in openapi.paths.paths.values() {
            for op in operations(item) {
                if let Some(id) = &op.operation_id {
                    *seen.entry(id.clone()).or_default() += 1;
                }
            }
        }
        for item in openapi.paths.paths.values_mut() {
            for op in operations_mut(item) {
                if let Some(id) = op.operation_id.clone()
                    && seen.get(&id).is_some_and(|n| *n > 1)
                {
                    let tag = op.tags.as_ref().and_then(|t| t.first()).cloned();
                    op.operation_id = Some(match tag {
                        Some(tag) => format!("{tag}_{id}"),
                        None => id,
                    });
                }
                for (status, response) in op.responses.responses.iter_mut() {
                    if let utoipa::openapi::RefOr::T(response) = response {
                        binary_as_strings(response);
                    }
                    let is_error = status.starts_with('4') || status.starts_with('5');
                    if let (true, utoipa::openapi::RefOr::T(response)) = (is_error, response)
                        && let Some(content) = response.content.shift_remove("application/json")
                    {
                        response
                            .content
                            .insert("application/problem+json".into(), content);
                    }
                }
                if op.security.is_none() {
                    op.security = Some(Vec::new());
                }
                // Every route is behind the quotas of `rate_limit` (docs/API.md, rate limits).
                op.responses
                    .responses
                    .entry("429".to_string())
                    .or_insert_with(|| utoipa::openapi::RefOr::T(rate_limited()));
            }
        }
    }
}

/// Bytes answered as themselves (PDFs, zips, DER, stored evidence) are `Vec<u8>` in the
/// handlers, which the generator writes as an array of integers: they are written instead as
/// a binary string (`type: string, format: binary`), what client generators read as a file.
fn binary_as_strings(response: &mut utoipa::openapi::response::Response) {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
    for (media_type, content) in response.content.iter_mut() {
        if media_type.ends_with("json") {
            continue;
        }
        if let Some(utoipa::openapi::RefOr::T(Schema::Array(_))) = &content.schema {
            content.schema = Some(utoipa::openapi::RefOr::T(Schema::Object(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
                    .build(),
            )));
        }
    }
}

/// The `429` every route may answer: a problem, with `Retry-After`.
fn rate_limited() -> utoipa::openapi::response::Response {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder, header::HeaderBuilder};
    ResponseBuilder::new()
        .description("A quota is reached (the `RateLimit` header names it); nothing was done")
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer))
                .description(Some("Seconds until the next request is allowed"))
                .build(),
        )
        .build()
}

fn operations(
    item: &utoipa::openapi::path::PathItem,
) -> impl Iterator<Item = &utoipa::openapi::path::Operation> {
    [
        &item.get,
        &item.put,
        &item.post,
        &item.delete,
        &item.options,
        &item.head,
        &item.patch,
        &item.trace,
    ]
    .into_iter()
    .flatten()
}

fn operations_mut(
    item: &mut utoipa::openapi::path::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

/// `instance` is added to every problem when it is answered (`problem::Answered`), not held
/// by the `Problem` value: the schema says so here.
struct ProblemInstance;

impl Modify for ProblemInstance {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        if let Some(utoipa::openapi::RefOr::T(Schema::Object(problem))) =
            components.schemas.get_mut("Problem")
        {
            problem.properties.insert(
                "instance".into(),
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(
                        "This occurrence: `urn:recommande:request:<id>`, the request id the \
                         answer's `X-Request-Id` header carries and the logs name",
                    ))
                    .into(),
            );
        }
    }
}

impl Modify for BearerApiKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("API key created with `recommande api-key create`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "recipient_session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "Recipient session opened with a one-time code (or the session cookie)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "bounce_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The operator's mail.bounce_token"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The operator's metrics.token"))
                    .build(),
            ),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "service",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json(
    axum::extract::State(service): axum::extract::State<crate::app::service::Service>,
) -> Json<utoipa::openapi::OpenApi> {
    Json(document(&service.settings.server.public_url))
}

/// The document of an installation reached at `public_url` (its one server).
pub fn document(public_url: &str) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![utoipa::openapi::server::Server::new(public_url)]);
    doc
}

/// The request bodies the handlers check field by field, against the schemas this document
/// publishes for them: the same field names at every level, and bodies built from each
/// schema (its required fields, or all of them; types, formats, enums, examples) accepted by
/// the parser.
#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::{Map, Value, json};
    use time::macros::{date, datetime};

    use super::ApiDoc;
    use crate::app::webhook::{ROTATION_FIELDS, RotationRequest, WEBHOOK_FIELDS, WebhookRequest};
    use crate::domain::batch::{BATCH_FIELDS, check_letter, read_json};
    use crate::domain::collection::ComposeRequest;
    use crate::domain::collection::request as compose;
    use crate::domain::collection::wording::{TEMPLATE_FIELDS, TemplateRequest};
    use crate::domain::consent::{
        CONSENT_FIELDS, ConsentRequest, WITHDRAWAL_FIELDS, parse_withdrawal,
    };
    use crate::domain::letter::{
        DEPOSIT_FIELDS, DepositRequest, FieldError, RECIPIENT_FIELDS, SENDER_FIELDS,
    };
    use crate::http::documents::UPLOAD_FIELD;
    use crate::infra::net_guard::OutboundPolicy;
    use utoipa::OpenApi;

    const DOCUMENT_ID: &str = "0192f5d2-7c3a-7b1e-9a4f-3c2d1e0f9a8b";

    fn served() -> Value {
        serde_json::to_value(ApiDoc::openapi()).expect("the document serialises")
    }

    /// `schema` with its `$ref` followed and an optional value (`oneOf` null and one schema)
    /// unwrapped.
    fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference.rsplit('/').next().expect("a named reference");
            let target = &doc["components"]["schemas"][name];
            assert!(!target.is_null(), "{reference} is not in the document");
            return resolve(doc, target);
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(alternatives)) = schema.get(key) {
                let present: Vec<&Value> = alternatives
                    .iter()
                    .filter(|a| a.get("type") != Some(&json!("null")))
                    .collect();
                if let [one] = present[..] {
                    return resolve(doc, one);
                }
            }
        }
        schema
    }

    fn schema_type(schema: &Value) -> Option<&str> {
        match schema.get("type") {
            Some(Value::String(t)) => Some(t),
            Some(Value::Array(types)) => types
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null"),
            _ => None,
        }
    }

    /// The schema of the request body of `method path` for `content_type`.
    fn request_body<'a>(doc: &'a Value, path: &str, method: &str, content_type: &str) -> &'a Value {
        let schema = &doc["paths"][path][method]["requestBody"]["content"][content_type]["schema"];
        assert!(
            !schema.is_null(),
            "{method} {path} has no {content_type} body"
        );
        resolve(doc, schema)
    }

    /// The schema found by following `properties` (and array `items`) along `path`.
    fn nested<'a>(doc: &'a Value, mut schema: &'a Value, path: &[&str]) -> &'a Value {
        for segment in path {
            let property = &schema["properties"][*segment];
            assert!(!property.is_null(), "no property {segment} in {schema}");
            schema = resolve(doc, property);
            if schema_type(schema) == Some("array") {
                schema = resolve(doc, &schema["items"]);
            }
        }
        schema
    }

    fn property_names(schema: &Value) -> BTreeSet<String> {
        schema["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn names(fields: &[&str]) -> BTreeSet<String> {
        fields.iter().map(|f| f.to_string()).collect()
    }

    /// A value valid for `schema` at `path` (`a.b`, `a.list[]`): `special` first (the meaning
    /// a schema cannot say: ids, IBAN, dates in order), then the schema's example, first enum
    /// value, default, then one by type and format. Objects get their required properties,
    /// or all of them when `full`.
    fn example(
        doc: &Value,
        schema: &Value,
        path: &str,
        full: bool,
        special: &dyn Fn(&str) -> Option<Value>,
    ) -> Value {
        if let Some(value) = special(path) {
            return value;
        }
        let resolved = resolve(doc, schema);
        for s in [schema, resolved] {
            if let Some(e) = s.get("example") {
                return e.clone();
            }
            if let Some(e) = s.get("examples").and_then(|e| e.get(0)) {
                return e.clone();
            }
        }
        if let Some(Value::Array(values)) = resolved.get("enum") {
            return values
                .iter()
                .find(|v| !v.is_null())
                .cloned()
                .expect("an enum value");
        }
        for s in [schema, resolved] {
            if let Some(d) = s.get("default") {
                return d.clone();
            }
        }
        match schema_type(resolved) {
            Some("object") => {
                let required: BTreeSet<&str> = resolved["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let mut object = Map::new();
                if let Some(properties) = resolved["properties"].as_object() {
                    for (name, property) in properties {
                        if full || required.contains(name.as_str()) {
                            let inner = if path.is_empty() {
                                name.clone()
                            } else {
                                format!("{path}.{name}")
                            };
                            object.insert(
                                name.clone(),
                                example(doc, property, &inner, full, special),
                            );
                        }
                    }
                }
                Value::Object(object)
            }
            Some("array") => Value::Array(vec![example(
                doc,
                &resolved["items"],
                &format!("{path}[]"),
                full,
                special,
            )]),
            Some("string") => match resolved["format"].as_str() {
                Some("date") => json!("2026-01-10"),
                Some("date-time") => json!("2026-02-01T10:00:00Z"),
                Some("email") => json!("someone@example.org"),
                _ => json!("Example"),
            },
            Some("integer") | Some("number") => {
                resolved.get("minimum").cloned().unwrap_or(json!(1))
            }
            Some("boolean") => json!(false),
            other => panic!("no example for {path} of type {other:?}: {resolved}"),
        }
    }

    /// What only the parser knows: ids are UUIDs of stored documents, an agency deposits only
    /// with its own first letter, dates follow each other.
    fn special(path: &str) -> Option<Value> {
        Some(match path {
            "documents[]" | "document_id" => json!(DOCUMENT_ID),
            "template_id" => json!("0192f5d2-7c3a-7b1e-9a4f-3c2d1e0f9a8c"),
            "compose.debtor.insolvency.kind" => json!("sauvegarde"),
            "compose.debtor.insolvency.opened_on" => json!("2025-06-01"),
            "compose.invoices[].due_date" => json!("2026-01-31"),
            "compose.invoices[].payments[].date" => json!("2026-02-05"),
            "compose.invoices[].paid_cents" => json!(0),
            "compose.prior_notices[].date" | "compose.first_letter.date" => json!("2026-02-10"),
            "compose.creditor.siren" => json!("732829320"),
            "compose.payment.iban" => json!("FR7630006000011234567890189"),
            "compose.payment.link" => json!("https://pay.example.org/invoice"),
            "compose.contract_rate_percent" => json!("12.5"),
            "url" => json!("https://hooks.example.org/recommande"),
            "secret" => json!("a-secret-of-at-least-sixteen-characters"),
            "events[]" => json!("letter.deposited"),
            "overlap_seconds" => json!(3600),
            _ => return None,
        })
    }

    fn deposit_examples(doc: &Value) -> Vec<Value> {
        let schema = request_body(doc, "/v1/letters", "post", "application/json");
        let mut bodies = Vec::new();
        for full in [false, true] {
            let mut body = example(doc, schema, "", full, &special);
            // `documents` or `compose`, exactly one: the schema cannot say it.
            let object = body.as_object_mut().expect("an object");
            let mut with_documents = object.clone();
            with_documents.remove("compose");
            with_documents.remove("template_id");
            with_documents.insert("documents".into(), json!([DOCUMENT_ID]));
            bodies.push(Value::Object(with_documents));
            if full {
                object.remove("documents");
                bodies.push(body);
            }
        }
        bodies
    }

    fn assert_accepted<T>(what: &str, body: &Value, result: Result<T, Vec<FieldError>>) {
        if let Err(errors) = result {
            panic!("{what} refuses a body built from its schema: {errors:?}\n{body:#}");
        }
    }

    #[test]
    fn every_parsed_body_has_the_fields_of_its_schema() {
        let doc = served();
        let deposit = request_body(&doc, "/v1/letters", "post", "application/json");
        let cases: Vec<(&str, &Value, &[&str], &[&str])> = vec![
            ("POST /v1/letters", deposit, &[], DEPOSIT_FIELDS),
            ("POST /v1/letters", deposit, &["sender"], SENDER_FIELDS),
            (
                "POST /v1/letters",
                deposit,
                &["recipient"],
                RECIPIENT_FIELDS,
            ),
            (
                "POST /v1/letters",
                deposit,
                &["compose"],
                compose::COMPOSE_FIELDS,
            ),
            (
                "POST /v1/letters",
                deposit,
                &["compose", "creditor"],
                compose::CREDITOR_FIELDS,
            ),
            (
                "POST /v1/letters",
                deposit,
                &["compose", "agency"],
                compose::AGENCY_FIELDS,
            ),
            (
                "POST /v1/letters",
                deposit,
                &["compose", "debtor"],
                compose::DEBTOR_FIELDS,
            ),
            (
                "POST /v1/letters",
                deposit,
                &["compose", "debtor", "insolvency"],
                compose::INSOLVENCY_FIELDS,
            ),
            (
                "POST /v1/letters",
                deposit,
                &["compose", "invoices"],
                compose::INVOICE_FIELDS,
            ),
            (
                "POST /v1/letters",
                deposit,
                &["compose", "invoices", "payments"],
                compose::DATED_PAYMENT_FIELDS,
            ),
            (
                "POST /v1/letters",
                deposit,
                &["compose", "prior_notices"],
                compose::PRIOR_NOTICE_FIELDS,
            ),
            (
                "POST /v1/letters",
                deposit,
                &["compose", "payment"],
                compose::PAYMENT_FIELDS,
            ),
            (
                "POST /v1/letters",
                deposit,
                &["compose", "first_letter"],
                compose::FIRST_LETTER_FIELDS,
            ),
            (
                "POST /v1/consents",
                request_body(&doc, "/v1/consents", "post", "application/json"),
                &[],
                CONSENT_FIELDS,
            ),
            (
                "DELETE /v1/consents/{id}",
                request_body(&doc, "/v1/consents/{id}", "delete", "application/json"),
                &[],
                WITHDRAWAL_FIELDS,
            ),
            (
                "POST /v1/templates",
                request_body(&doc, "/v1/templates", "post", "application/json"),
                &[],
                TEMPLATE_FIELDS,
            ),
            (
                "POST /v1/webhooks",
                request_body(&doc, "/v1/webhooks", "post", "application/json"),
                &[],
                WEBHOOK_FIELDS,
            ),
            (
                "POST /v1/webhooks/{id}/rotate-secret",
                request_body(
                    &doc,
                    "/v1/webhooks/{id}/rotate-secret",
                    "post",
                    "application/json",
                ),
                &[],
                ROTATION_FIELDS,
            ),
            (
                "POST /v1/batches",
                request_body(&doc, "/v1/batches", "post", "application/json"),
                &[],
                BATCH_FIELDS,
            ),
            (
                "POST /v1/documents",
                request_body(&doc, "/v1/documents", "post", "multipart/form-data"),
                &[],
                &[UPLOAD_FIELD],
            ),
        ];
        for (route, body, path, fields) in cases {
            let schema = nested(&doc, body, path);
            assert_eq!(
                property_names(schema),
                names(fields),
                "{route}, {}: the published schema and the parser's fields differ",
                if path.is_empty() {
                    "body".to_string()
                } else {
                    path.join(".")
                }
            );
        }
    }

    #[test]
    fn deposits_built_from_the_schema_are_accepted() {
        let doc = served();
        let bodies = deposit_examples(&doc);
        assert_eq!(bodies.len(), 3);
        for body in &bodies {
            assert_accepted("POST /v1/letters", body, DepositRequest::parse(body));
        }
        let letter_date = date!(2026 - 03 - 02);
        let deposit = request_body(&doc, "/v1/letters", "post", "application/json");
        let compose_schema = &deposit["properties"]["compose"];
        for full in [false, true] {
            let mut body = example(&doc, compose_schema, "compose", full, &special);
            // At least one of link, iban, instructions: the schema cannot say it.
            body["payment"]["link"] = json!("https://pay.example.org/invoice");
            assert_accepted("compose", &body, ComposeRequest::check(&body, letter_date));
        }
    }

    #[test]
    fn other_bodies_built_from_their_schema_are_accepted() {
        let doc = served();
        let now = datetime!(2026-03-02 10:00 UTC);
        for full in [false, true] {
            let schema = request_body(&doc, "/v1/consents", "post", "application/json");
            let body = example(&doc, schema, "", full, &special);
            assert_accepted(
                "POST /v1/consents",
                &body,
                ConsentRequest::parse(&body, now),
            );

            let schema = request_body(&doc, "/v1/consents/{id}", "delete", "application/json");
            let body = example(&doc, schema, "", full, &special);
            let bytes = serde_json::to_vec(&body).expect("serialises");
            assert_accepted("DELETE /v1/consents/{id}", &body, parse_withdrawal(&bytes));

            let schema = request_body(&doc, "/v1/templates", "post", "application/json");
            let body = example(&doc, schema, "", full, &special);
            assert_accepted("POST /v1/templates", &body, TemplateRequest::parse(&body));

            let schema = request_body(&doc, "/v1/webhooks", "post", "application/json");
            let body = example(&doc, schema, "", full, &special);
            let policy = OutboundPolicy::default();
            assert_accepted(
                "POST /v1/webhooks",
                &body,
                WebhookRequest::parse(&body, &policy),
            );

            let schema = request_body(
                &doc,
                "/v1/webhooks/{id}/rotate-secret",
                "post",
                "application/json",
            );
            let body = example(&doc, schema, "", full, &special);
            assert_accepted(
                "POST /v1/webhooks/{id}/rotate-secret",
                &body,
                RotationRequest::parse(&body),
            );
        }
        // Each batch letter is a deposit body, which the schema leaves as a free object.
        let letters = deposit_examples(&doc);
        let schema = request_body(&doc, "/v1/batches", "post", "application/json");
        for full in [false, true] {
            let letters = letters.clone();
            let body = example(&doc, schema, "", full, &|path| match path {
                "letters" => Some(Value::Array(letters.clone())),
                _ => special(path),
            });
            let bytes = serde_json::to_vec(&body).expect("serialises");
            let input = match read_json(&bytes) {
                Ok(input) => input,
                Err(e) => {
                    panic!("POST /v1/batches refuses a body built from its schema: {e:?}\n{body:#}")
                }
            };
            assert!(input.errors.is_empty(), "{:?}", input.errors);
            assert_eq!(input.rows.len(), letters.len());
            for row in &input.rows {
                if let Err(errors) = check_letter(row) {
                    panic!("batch row {} refused: {errors:?}", row.row);
                }
            }
        }
    }
}
