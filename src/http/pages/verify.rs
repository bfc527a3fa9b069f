//! The public verification page `/verify` (docs/verifying.md: the judge, the lawyer, the bailiff).
//!
//! * `GET /verify`: a form to type a letter id and the verification code printed on its
//!   proofs, and a form to upload a proof bundle.
//! * `GET /verify?letter=…&code=…` (the QR code of every PDF proof): the answer of
//!   `GET /v1/verify/{id}?code=…` as a page — events, times in Europe/Paris and UTC, digests,
//!   verdicts. An unknown letter and a wrong code show the same 404 page.
//! * `POST /verify` (multipart, field `bundle`): the bundle is spooled to a temporary file,
//!   never held whole in memory, and checked by [`crate::core::bundle::verify::verify_bundle`]
//!   against the service's own trust anchors; the page gives the verdict check by check.
//!
//! French by default, English with `?lang=en`; no JavaScript; the CSP and other headers of
//! every page come from [`super::page_headers`]. Rate-limited per client address with the API
//! route ([`crate::http::throttle`]).

use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use time::OffsetDateTime;

use super::{Chrome, Lang, render};
use crate::app::service::Service;
use crate::core::bundle::verify::{BundleReport, Limits, verify_bundle_within};
use crate::core::clock::rfc3339_paris;
use crate::http::MULTIPART_OVERHEAD;
use crate::http::throttle::{self, ClientThrottle, Refusal};
use crate::http::verification::{CheckVerdict, LetterVerification, verify_letter};

/// The multipart field holding the bundle.
const BUNDLE_FIELD: &str = "bundle";

/// The work one upload may cost (issue 12 §2): a public page must not let a small zip
/// inflate to gigabytes or hold a core for minutes. Real bundles are far below these caps;
/// the CLI, run by the judge on their own machine, has no time budget.
const UPLOAD_LIMITS: Limits = Limits {
    max_entries: 10_000,
    max_entry_size: 512 * 1024 * 1024,
    max_total_size: 1024 * 1024 * 1024,
    max_ratio: 100,
    time_budget: Some(Duration::from_secs(30)),
};

/// The routes of the verification page, rate-limited.
pub(super) fn routes(service: &Service, throttle: Arc<ClientThrottle>) -> Router<Service> {
    let limit = usize::try_from(service.settings.verify.max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(MULTIPART_OVERHEAD);
    let page_service = service.clone();
    let refusal: Refusal = Arc::new(move |parts, wait| {
        let lang = Lang::from_query(&parts.uri)
            .or_else(|| Lang::from_cookie(&parts.headers))
            .unwrap_or(Lang::French);
        let v = wording(lang);
        page(&page_service, lang).error(StatusCode::TOO_MANY_REQUESTS, v.rate_limited(wait))
    });
    Router::new()
        .route("/verify", get(show).post(upload))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            (throttle, refusal),
            throttle::limit,
        ))
}

// ----- handlers ---------------------------------------------------------------------------

/// The query of `GET /verify`.
#[derive(Debug, Deserialize)]
struct LetterQuery {
    #[serde(default)]
    letter: String,
    #[serde(default)]
    code: String,
}

/// `GET /verify`: the forms, or a letter's verification when `letter` and `code` are given.
async fn show(
    State(service): State<Service>,
    lang: Lang,
    query: Result<Query<LetterQuery>, QueryRejection>,
) -> Response {
    let v = wording(lang);
    let Ok(Query(query)) = query else {
        return page(&service, lang).error(StatusCode::BAD_REQUEST, v.bad_query.into());
    };
    let (letter, code) = (query.letter.trim(), query.code.trim());
    if letter.is_empty() && code.is_empty() {
        return render(StatusCode::OK, &page(&service, lang));
    }
    let mut form = page(&service, lang);
    form.letter_field = letter.chars().take(100).collect();
    form.code_field = code.chars().take(100).collect();
    if letter.is_empty() || code.is_empty() {
        return form.error(StatusCode::UNPROCESSABLE_ENTITY, v.both_fields.into());
    }
    match verify_letter(&service, letter, code).await {
        Ok(Some(verification)) => {
            // The canonical code: the language links repeat the verification.
            let canonical = service.lifecycle.verification_code(&verification.letter_id);
            let mut shown = page(&service, lang);
            shown.chrome = Chrome::new(
                &service,
                lang,
                v.letter_title,
                format!("/verify?letter={}&code={canonical}", verification.letter_id),
            );
            shown.chrome.footer = v.footer;
            shown.report = Some(letter_report(lang, &verification));
            render(StatusCode::OK, &shown)
        }
        Ok(None) => form.error(StatusCode::NOT_FOUND, v.not_found.into()),
        Err(e) => {
            tracing::error!(error = %e, "public verification failed");
            form.error(StatusCode::INTERNAL_SERVER_ERROR, v.internal.into())
        }
    }
}

/// `POST /verify`: verifies an uploaded bundle.
async fn upload(
    State(service): State<Service>,
    lang: Lang,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let v = wording(lang);
    let limit = service.settings.verify.max_upload_bytes;
    let too_large =
        || page(&service, lang).error(StatusCode::PAYLOAD_TOO_LARGE, v.too_large(lang, limit));
    // Refused from the headers, before a byte of an announced oversize body is read.
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit.saturating_add(MULTIPART_OVERHEAD as u64)) {
        return too_large();
    }
    let Ok(mut multipart) = multipart else {
        return page(&service, lang).error(StatusCode::BAD_REQUEST, v.not_a_form.into());
    };
    let spool = match spool_bundle(&service, &mut multipart, limit).await {
        Ok(spool) => spool,
        Err(Spooling::TooLarge) => return too_large(),
        Err(Spooling::Missing) => {
            return page(&service, lang).error(StatusCode::BAD_REQUEST, v.no_file.into());
        }
        Err(Spooling::Empty) => {
            return page(&service, lang).error(StatusCode::BAD_REQUEST, v.empty_file.into());
        }
        Err(Spooling::Malformed(e)) => {
            tracing::info!(error = %e, "unreadable verification upload");
            return page(&service, lang).error(StatusCode::BAD_REQUEST, v.not_a_form.into());
        }
        Err(Spooling::Io(e)) => {
            tracing::error!(error = %e, "cannot spool a verification upload");
            return page(&service, lang)
                .error(StatusCode::INTERNAL_SERVER_ERROR, v.internal.into());
        }
    };
    let anchors = service.anchors.clone();
    let at = service.clock.now();
    // Hashing and signature checks are CPU work: off the async threads. The spool is moved
    // in and dropped (deleted) there.
    let verdict = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&spool.path).map_err(|e| e.to_string())?;
        Ok::<_, String>(verify_bundle_within(
            BufReader::new(file),
            Some(&anchors),
            at,
            UPLOAD_LIMITS,
        ))
    })
    .await;
    match verdict {
        Ok(Ok(Ok(report))) => {
            let mut shown = page(&service, lang);
            shown.chrome.title = v.bundle_title.to_string();
            shown.report = Some(bundle_report(lang, &report));
            render(StatusCode::OK, &shown)
        }
        Ok(Ok(Err(unusable))) => page(&service, lang).error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{} ({})", v.not_a_bundle, unusable.0),
        ),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot read a spooled verification upload");
            page(&service, lang).error(StatusCode::INTERNAL_SERVER_ERROR, v.internal.into())
        }
        Err(e) => {
            tracing::error!(error = %e, "bundle verification task failed");
            page(&service, lang).error(StatusCode::INTERNAL_SERVER_ERROR, v.internal.into())
        }
    }
}

// ----- spooling the upload ----------------------------------------------------------------

/// An uploaded bundle in a temporary file under `DATA_DIR/incoming`, deleted when dropped.
struct Spool {
    path: PathBuf,
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Why an upload could not be spooled.
#[derive(Debug)]
enum Spooling {
    TooLarge,
    Missing,
    Empty,
    Malformed(String),
    Io(std::io::Error),
}

/// Streams the `bundle` field to a temporary file, at most `limit` bytes.
async fn spool_bundle(
    service: &Service,
    multipart: &mut Multipart,
    limit: u64,
) -> Result<Spool, Spooling> {
    use tokio::io::AsyncWriteExt;
    let malformed = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Spooling::TooLarge
        } else {
            Spooling::Malformed(e.body_text())
        }
    };
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        if field.name() != Some(BUNDLE_FIELD) {
            continue;
        }
        let dir = service.settings.server.data_dir.join("incoming");
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(Spooling::Io)?;
        let spool = Spool {
            path: dir.join(format!("verify-{}.zip", uuid::Uuid::new_v4())),
        };
        let mut file = tokio::fs::File::create(&spool.path)
            .await
            .map_err(Spooling::Io)?;
        let mut size: u64 = 0;
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            size = size.saturating_add(chunk.len() as u64);
            if size > limit {
                return Err(Spooling::TooLarge);
            }
            file.write_all(&chunk).await.map_err(Spooling::Io)?;
        }
        file.flush().await.map_err(Spooling::Io)?;
        if size == 0 {
            return Err(Spooling::Empty);
        }
        return Ok(spool);
    }
    Err(Spooling::Missing)
}

// ----- the page ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "verify.html", config = "src/http/templates/askama.toml")]
struct VerifyPage {
    chrome: Chrome,
    v: &'static VerifyWording,
    error: Option<String>,
    letter_field: String,
    code_field: String,
    upload_hint: String,
    report: Option<ReportView>,
}

impl VerifyPage {
    /// This page with an error above the forms, answered with `status`.
    fn error(mut self, status: StatusCode, text: String) -> Response {
        self.chrome.title = self.v.error_title.to_string();
        self.error = Some(text);
        render(status, &self)
    }
}

/// A verdict as the page shows it, for a bundle or for a letter.
struct ReportView {
    valid: bool,
    verdict: &'static str,
    verdict_text: &'static str,
    provider: Option<String>,
    letter_id: String,
    warnings: Vec<String>,
    events: Vec<EventRow>,
    checks: Vec<CheckRow>,
    failed: Vec<CheckRow>,
}

struct EventRow {
    position: usize,
    label: String,
    utc: String,
    paris: String,
    sha256: String,
    /// The record's own verdict, when known (letter verification).
    valid: Option<bool>,
}

#[derive(Clone)]
struct CheckRow {
    scope: String,
    label: &'static str,
    name: String,
    passed: bool,
    detail: String,
}

fn page(service: &Service, lang: Lang) -> VerifyPage {
    let v = wording(lang);
    let mut chrome = Chrome::new(service, lang, v.title, "/verify".into());
    chrome.footer = v.footer;
    VerifyPage {
        chrome,
        v,
        error: None,
        letter_field: String::new(),
        code_field: String::new(),
        upload_hint: v.upload_hint(lang, service.settings.verify.max_upload_bytes),
        report: None,
    }
}

fn bundle_report(lang: Lang, report: &BundleReport) -> ReportView {
    let v = wording(lang);
    let t = lang.wording();
    let checks: Vec<CheckRow> = report
        .checks
        .iter()
        .map(|c| CheckRow {
            scope: if c.scope == "bundle" {
                v.bundle_scope.to_string()
            } else {
                c.scope.clone()
            },
            label: v.check_label(c.name),
            name: c.name.to_string(),
            passed: c.passed,
            detail: c.detail.clone(),
        })
        .collect();
    let valid = report.is_valid();
    ReportView {
        valid,
        verdict: if valid { v.valid } else { v.invalid },
        verdict_text: if valid {
            v.bundle_valid_text
        } else {
            v.bundle_invalid_text
        },
        provider: None,
        letter_id: report
            .letter_id
            .clone()
            .unwrap_or_else(|| v.unknown.to_string()),
        warnings: report.warnings.clone(),
        events: report
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let at = e.timestamp.as_deref().and_then(|s| {
                    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
                });
                EventRow {
                    position: i + 1,
                    label: t.event_label(&e.event),
                    utc: e.timestamp.clone().unwrap_or_else(|| v.unknown.to_string()),
                    paris: at
                        .map(|at| v.paris(&rfc3339_paris(at)))
                        .unwrap_or_else(|| v.unknown.to_string()),
                    sha256: e.sha256.clone(),
                    valid: None,
                }
            })
            .collect(),
        failed: checks.iter().filter(|c| !c.passed).cloned().collect(),
        checks,
    }
}

fn letter_report(lang: Lang, verification: &LetterVerification) -> ReportView {
    let v = wording(lang);
    let t = lang.wording();
    let row = |scope: String, c: &CheckVerdict| CheckRow {
        scope,
        label: v.check_label(&c.name),
        name: c.name.clone(),
        passed: c.passed,
        detail: c.detail.clone(),
    };
    let mut checks = Vec::new();
    for event in &verification.events {
        let scope = format!("{}. {}", event.position, t.event_label(&event.event));
        checks.extend(event.checks.iter().map(|c| row(scope.clone(), c)));
    }
    checks.extend(
        verification
            .checks
            .iter()
            .map(|c| row(v.letter_scope.to_string(), c)),
    );
    ReportView {
        valid: verification.valid,
        verdict: if verification.valid {
            v.valid
        } else {
            v.invalid
        },
        verdict_text: if verification.valid {
            v.letter_valid_text
        } else {
            v.letter_invalid_text
        },
        provider: Some(verification.provider.clone()),
        letter_id: verification.letter_id.clone(),
        warnings: Vec::new(),
        events: verification
            .events
            .iter()
            .map(|e| EventRow {
                position: e.position,
                label: t.event_label(&e.event),
                utc: e.timestamp.clone().unwrap_or_else(|| v.unknown.to_string()),
                paris: e
                    .timestamp_paris
                    .as_deref()
                    .map(|p| v.paris(p))
                    .unwrap_or_else(|| v.unknown.to_string()),
                sha256: e.evidence_sha256.clone(),
                valid: Some(e.valid),
            })
            .collect(),
        failed: checks.iter().filter(|c| !c.passed).cloned().collect(),
        checks,
    }
}

// ----- wording ----------------------------------------------------------------------------

/// The fixed wording of the verification page in one language.
struct VerifyWording {
    title: &'static str,
    letter_title: &'static str,
    bundle_title: &'static str,
    error_title: &'static str,
    footer: &'static str,
    intro: &'static str,
    code_legend: &'static str,
    code_hint: &'static str,
    letter_label: &'static str,
    code_label: &'static str,
    code_submit: &'static str,
    upload_legend: &'static str,
    upload_label: &'static str,
    upload_submit: &'static str,
    again_heading: &'static str,
    offline_heading: &'static str,
    offline_text: &'static str,
    valid: &'static str,
    invalid: &'static str,
    bundle_valid_text: &'static str,
    bundle_invalid_text: &'static str,
    letter_valid_text: &'static str,
    letter_invalid_text: &'static str,
    provider_label: &'static str,
    anchors_label: &'static str,
    anchors_text: &'static str,
    failed_heading: &'static str,
    events_heading: &'static str,
    events_text: &'static str,
    event_col: &'static str,
    time_col: &'static str,
    digest_col: &'static str,
    checks_heading: &'static str,
    checks_text: &'static str,
    scope_col: &'static str,
    check_col: &'static str,
    result_col: &'static str,
    detail_col: &'static str,
    passed: &'static str,
    failed: &'static str,
    bundle_scope: &'static str,
    letter_scope: &'static str,
    unknown: &'static str,
    bad_query: &'static str,
    both_fields: &'static str,
    not_found: &'static str,
    not_a_form: &'static str,
    no_file: &'static str,
    empty_file: &'static str,
    not_a_bundle: &'static str,
    internal: &'static str,
}

fn wording(lang: Lang) -> &'static VerifyWording {
    match lang {
        Lang::French => &FRENCH,
        Lang::English => &ENGLISH,
    }
}

static FRENCH: VerifyWording = VerifyWording {
    title: "Vérifier une preuve",
    letter_title: "Vérification d'une lettre recommandée électronique",
    bundle_title: "Vérification d'un dossier de preuves",
    error_title: "Vérification impossible",
    footer: "Cette page fonctionne sans JavaScript. Les fichiers envoyés servent à la vérification puis sont effacés ; ils ne sont pas conservés.",
    intro: "Vérifiez une lettre recommandée électronique de deux façons : avec l'identifiant et le code de vérification imprimés sur chacune de ses preuves, ou en envoyant son dossier de preuves (fichier .zip). Chaque cachet et chaque horodatage est vérifié à nouveau avec les certificats racines de ce prestataire.",
    code_legend: "Avec l'identifiant et le code imprimés sur la preuve",
    code_hint: "Le code comporte 16 caractères, par exemple ABCD-EFGH-JKMN-PQRS. Majuscules, minuscules et tirets n'ont pas d'importance.",
    letter_label: "Identifiant de la lettre",
    code_label: "Code de vérification",
    code_submit: "Vérifier la lettre",
    upload_legend: "Avec le dossier de preuves (.zip)",
    upload_label: "Dossier de preuves",
    upload_submit: "Vérifier le dossier",
    again_heading: "Vérifier une autre lettre ou un autre dossier",
    offline_heading: "Vérifier sans ce site",
    offline_text: "Le fichier VERIFY.txt de chaque dossier donne les commandes OpenSSL et sha256sum qui font les mêmes vérifications sur votre ordinateur, sans faire confiance à ce site. Les certificats racines du prestataire sont publiés à l'adresse /v1/trust/roots.pem.",
    valid: "VALIDE",
    invalid: "NON VALIDE",
    bundle_valid_text: "Toutes les vérifications ont réussi : le dossier n'a pas été modifié depuis son scellement, et chaque preuve est scellée et horodatée par ce prestataire.",
    bundle_invalid_text: "Au moins une vérification a échoué : ce dossier ne peut pas être tenu pour intact. Les vérifications en échec sont détaillées ci-dessous.",
    letter_valid_text: "Le prestataire détient les preuves de cette lettre, et chacune est scellée et horodatée : les cachets, les horodatages et la chaîne des preuves ont été vérifiés à l'instant.",
    letter_invalid_text: "Au moins une vérification a échoué sur les preuves conservées de cette lettre. Les vérifications en échec sont détaillées ci-dessous.",
    provider_label: "Prestataire",
    anchors_label: "Certificats de confiance",
    anchors_text: "ceux que ce prestataire publie (/v1/trust/roots.pem), et non ceux que le dossier contient",
    failed_heading: "Vérifications en échec",
    events_heading: "Événements prouvés",
    events_text: "Chaque heure est celle que prouve l'horodatage RFC 3161 de la preuve, en heure de Paris puis en temps universel (UTC). L'empreinte est le SHA-256 de l'enregistrement (.json).",
    event_col: "Événement",
    time_col: "Heure prouvée",
    digest_col: "Empreinte SHA-256 de la preuve",
    checks_heading: "Toutes les vérifications",
    checks_text: "Le détail technique de chaque vérification est en anglais.",
    scope_col: "Portée",
    check_col: "Vérification",
    result_col: "Résultat",
    detail_col: "Détail",
    passed: "réussie",
    failed: "ÉCHEC",
    bundle_scope: "Dossier",
    letter_scope: "Lettre",
    unknown: "inconnu",
    bad_query: "l'adresse de la page est illisible. Saisissez l'identifiant et le code dans le formulaire ci-dessous.",
    both_fields: "saisissez à la fois l'identifiant de la lettre et son code de vérification.",
    not_found: "aucune lettre ne correspond à cet identifiant et à ce code. Vérifiez les deux, tels qu'ils sont imprimés sur la preuve.",
    not_a_form: "le fichier n'a pas été reçu. Choisissez le dossier de preuves (.zip) dans le formulaire ci-dessous et envoyez-le.",
    no_file: "aucun fichier n'a été envoyé. Choisissez le dossier de preuves (.zip) dans le formulaire ci-dessous.",
    empty_file: "le fichier envoyé est vide. Choisissez le dossier de preuves (.zip) téléchargé auprès du prestataire.",
    not_a_bundle: "ce fichier n'est pas un dossier de preuves lisible (une archive .zip produite par le prestataire)",
    internal: "une erreur interne a empêché la vérification. Réessayez plus tard.",
};

static ENGLISH: VerifyWording = VerifyWording {
    title: "Verify a proof",
    letter_title: "Verification of an electronic registered letter",
    bundle_title: "Verification of a proof bundle",
    error_title: "Verification not possible",
    footer: "This page works without JavaScript. Uploaded files are used for the verification and then deleted; they are not kept.",
    intro: "Verify an electronic registered letter in one of two ways: with the letter id and the verification code printed on each of its proofs, or by uploading its proof bundle (.zip file). Every seal and every timestamp is checked again against this provider's root certificates.",
    code_legend: "With the id and code printed on the proof",
    code_hint: "The code has 16 characters, for example ABCD-EFGH-JKMN-PQRS. Case and dashes do not matter.",
    letter_label: "Letter id",
    code_label: "Verification code",
    code_submit: "Verify the letter",
    upload_legend: "With the proof bundle (.zip)",
    upload_label: "Proof bundle",
    upload_submit: "Verify the bundle",
    again_heading: "Verify another letter or bundle",
    offline_heading: "Verify without this site",
    offline_text: "The VERIFY.txt file of every bundle gives the OpenSSL and sha256sum commands that run the same checks on your own computer, without trusting this site. The provider's root certificates are published at /v1/trust/roots.pem.",
    valid: "VALID",
    invalid: "NOT VALID",
    bundle_valid_text: "Every check passed: the bundle has not changed since it was sealed, and every record is sealed and timestamped by this provider.",
    bundle_invalid_text: "At least one check failed: this bundle cannot be taken as intact. The failed checks are detailed below.",
    letter_valid_text: "The provider holds this letter's evidence, and every record is sealed and timestamped: the seals, the timestamps and the chain of records were checked just now.",
    letter_invalid_text: "At least one check failed on the stored evidence of this letter. The failed checks are detailed below.",
    provider_label: "Provider",
    anchors_label: "Trusted certificates",
    anchors_text: "those this provider publishes (/v1/trust/roots.pem), not those inside the bundle",
    failed_heading: "Failed checks",
    events_heading: "Proven events",
    events_text: "Each time is the one proven by the record's RFC 3161 timestamp, in Paris time then in Coordinated Universal Time (UTC). The digest is the SHA-256 of the record (.json).",
    event_col: "Event",
    time_col: "Proven time",
    digest_col: "SHA-256 of the record",
    checks_heading: "Every check",
    checks_text: "The technical detail of each check is in English.",
    scope_col: "Scope",
    check_col: "Check",
    result_col: "Result",
    detail_col: "Detail",
    passed: "passed",
    failed: "FAILED",
    bundle_scope: "Bundle",
    letter_scope: "Letter",
    unknown: "unknown",
    bad_query: "the page address cannot be read. Type the id and the code in the form below.",
    both_fields: "type both the letter id and its verification code.",
    not_found: "no letter matches this id and code. Check both, as printed on the proof.",
    not_a_form: "the file was not received. Choose the proof bundle (.zip) in the form below and send it.",
    no_file: "no file was sent. Choose the proof bundle (.zip) in the form below.",
    empty_file: "the file sent is empty. Choose the proof bundle (.zip) downloaded from the provider.",
    not_a_bundle: "this file is not a readable proof bundle (a .zip archive made by the provider)",
    internal: "an internal error prevented the verification. Please try again later.",
};

impl VerifyWording {
    /// A plain-language name for a check.
    fn check_label(&self, name: &str) -> &'static str {
        crate::core::verify::check_label(name, self.is_french())
    }

    /// A Europe/Paris RFC 3339 time (`2026-11-23T10:13:44.123456+01:00`) for a reader, to
    /// the second, with the offset said.
    fn paris(&self, rfc3339: &str) -> String {
        let (Some(date), Some(clock)) = (rfc3339.get(..10), rfc3339.get(11..19)) else {
            return rfc3339.to_string();
        };
        let offset = rfc3339.get(rfc3339.len().saturating_sub(6)..).unwrap_or("");
        if self.is_french() {
            let french_date = calendar_date(date)
                .map(crate::core::french::date)
                .unwrap_or_else(|| date.to_string());
            format!("{french_date} à {clock} (heure de Paris, UTC{offset})")
        } else {
            format!("{date} {clock} (Paris time, UTC{offset})")
        }
    }

    fn rate_limited(&self, wait: Duration) -> String {
        let seconds = wait.as_secs().saturating_add(1);
        if self.is_french() {
            format!(
                "trop de vérifications ont été demandées depuis votre adresse. Réessayez dans {seconds} secondes."
            )
        } else {
            format!(
                "too many verifications were requested from your address. Try again in {seconds} seconds."
            )
        }
    }

    fn too_large(&self, lang: Lang, limit: u64) -> String {
        let size = lang
            .wording()
            .size(i64::try_from(limit).unwrap_or(i64::MAX));
        if self.is_french() {
            format!(
                "le fichier dépasse la taille maximale de {size} acceptée par cette page. Utilisez l'outil `recommande verify` ou les commandes de VERIFY.txt."
            )
        } else {
            format!(
                "the file is larger than the {size} this page accepts. Use the `recommande verify` tool or the commands of VERIFY.txt."
            )
        }
    }

    fn upload_hint(&self, lang: Lang, limit: u64) -> String {
        let size = lang
            .wording()
            .size(i64::try_from(limit).unwrap_or(i64::MAX));
        if self.is_french() {
            format!(
                "Le fichier .zip téléchargé auprès du prestataire, tel quel, {size} au plus. Il est vérifié puis effacé."
            )
        } else {
            format!(
                "The .zip file downloaded from the provider, unchanged, at most {size}. It is checked, then deleted."
            )
        }
    }

    fn is_french(&self) -> bool {
        std::ptr::eq(self, &FRENCH)
    }
}

/// `2026-11-23` as a date (`None` when it is not one).
fn calendar_date(iso: &str) -> Option<time::Date> {
    let year = iso.get(..4)?.parse().ok()?;
    let month = time::Month::try_from(iso.get(5..7)?.parse::<u8>().ok()?).ok()?;
    time::Date::from_calendar_date(year, month, iso.get(8..10)?.parse().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paris_times_read_naturally_with_their_offset() {
        let at = "2026-11-23T10:13:44.123456+01:00";
        assert_eq!(
            FRENCH.paris(at),
            "23 novembre 2026 à 10:13:44 (heure de Paris, UTC+01:00)"
        );
        // The first of the month as every French date of the service writes it.
        assert_eq!(
            FRENCH.paris("2026-12-01T09:00:00.000000+01:00"),
            "1er décembre 2026 à 09:00:00 (heure de Paris, UTC+01:00)"
        );
        assert_eq!(
            ENGLISH.paris(at),
            "2026-11-23 10:13:44 (Paris time, UTC+01:00)"
        );
    }

    #[test]
    fn every_check_has_a_plain_name_in_both_languages() {
        let bundle_checks = [
            "container",
            "container_extent",
            "container_headers",
            "container_local_entries",
            "container_names",
            "container_layout",
            "container_limits",
            "manifest_seal",
            "file_digests",
            "evidence_files",
            "event_order",
            "legal_consistency",
            "documents_match",
        ];
        for name in crate::core::verify::CHECK_NAMES
            .iter()
            .chain(bundle_checks.iter())
        {
            assert_ne!(FRENCH.check_label(name), "Vérification", "{name}");
            assert_ne!(ENGLISH.check_label(name), "Check", "{name}");
        }
    }
}
