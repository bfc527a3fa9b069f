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
    DeliveryPage, DeliveryStatus, DeliveryView, WebhookBody, WebhookList, WebhookStatus,
    WebhookView,
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
    ),
    components(schemas(
        DocumentView, UploadForm, DepositBody, LetterView, LetterPage, EvidenceSummary, EvidenceFiles,
        EvidenceList, Problem, FieldError, LetterState, Sender, Recipient, RecipientKind,
        super::recipient::RecipientView, super::recipient::RecipientEvidence, super::recipient::CodeSentView,
        super::recipient::SessionRequest, super::recipient::SessionView, super::bounces::BounceOutcome,
        ConsentBody, ConsentView, ConsentPage, ConsentStatus, ConsentMethod, WithdrawalBody,
        WebhookBody, WebhookView, WebhookList, WebhookStatus, DeliveryView, DeliveryPage,
        DeliveryStatus, crate::core::log::PublishedTreeHead, crate::core::log::InclusionProof,
        crate::core::log::ConsistencyProof, super::verification::LetterVerification,
        super::verification::VerifiedEvent, super::verification::CheckVerdict,
        BatchView, BatchBody, BatchPage, BatchSummary, BatchAccepted, BatchMode, BatchState, BatchSource, RowError,
        super::letter_templates::TemplateBody, super::letter_templates::TemplateView,
        super::letter_templates::TemplatePage, crate::domain::collection::LetterKind,
        crate::domain::collection::request::ComposeBody, crate::domain::collection::CompositionSummary,
        crate::domain::collection::Block
    )),
    modifiers(&BearerApiKey),
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
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
