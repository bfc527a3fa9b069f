//! The recipient's HTML pages under `/r/{token}` (docs/API.md, recipient pages): see that a registered
//! letter awaits, identify with an emailed code, accept or refuse, then read the sender,
//! download the content and the proofs.
//!
//! The pages are server-rendered with askama (compile-time checked, auto-escaped templates in
//! `src/http/templates/`) and work without JavaScript: plain links and form-urlencoded forms.
//! They call the same lifecycle operations as the JSON API in [`super::recipient`] and share
//! its session cookie. French by default; `?lang=en` switches to English and is remembered
//! in a cookie.
//!
//! CPCE R.53-3: the sender's identity is shown only after the recipient has accepted or
//! refused. Errors are HTML pages with the matching status, never problem+json.

use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::rate_limit;
use super::recipient::{Client, session_cookie, session_token};
use super::throttle::{ClientThrottle, Refusal};
use crate::app::lifecycle::{Decision, LifecycleError, RecipientLetter};
use crate::app::service::Service;
use crate::core::clock::{from_unix_micros, unix_micros};
use crate::domain::letter::{LetterState, Sender};
use crate::domain::window::last_minute;
use crate::infra::mail::mask_address;

mod verify;
mod wording;

pub use wording::{ENGLISH, FRENCH, Wording};

/// Cookie remembering the language chosen with `?lang=`.
pub const LANG_COOKIE: &str = "recommande_lang";
/// Largest form body: a code or a checkbox, with room to spare.
pub const MAX_FORM_BODY: usize = 4096;
/// Security policy of every page: no script at all, styles inline only, forms post back here,
/// and no framing (click-jacking on the accept button).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self' 'unsafe-inline'; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The routes of the recipient pages and of the public verification page, with their
/// response headers.
pub fn routes(service: Service, throttle: Arc<ClientThrottle>) -> Router<Service> {
    let page_service = service.clone();
    let refusal: Refusal = Arc::new(move |parts, wait| rate_limited(&page_service, parts, wait));
    Router::new()
        .route("/r/{token}", get(landing))
        .route("/r/{token}/code", get(code_form).post(request_code))
        .route("/r/{token}/session", post(open_session))
        .route("/r/{token}/accept", post(accept))
        .route("/r/{token}/refuse", post(refuse))
        .layer(DefaultBodyLimit::max(MAX_FORM_BODY))
        .layer(middleware::from_fn_with_state(
            refusal,
            rate_limit::recipient,
        ))
        .merge(verify::routes(&service, throttle))
        .layer(middleware::from_fn_with_state(service, page_headers))
}

/// The language of a page: `?lang=` first, then the cookie, then French.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// French, the default (the service is French).
    French,
    /// English.
    English,
}

impl Lang {
    /// Parses `fr` or `en`.
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "fr" => Some(Lang::French),
            "en" => Some(Lang::English),
            _ => None,
        }
    }

    /// The wording of the pages in this language.
    pub fn wording(self) -> &'static Wording {
        match self {
            Lang::French => &FRENCH,
            Lang::English => &ENGLISH,
        }
    }

    fn from_query(uri: &Uri) -> Option<Lang> {
        uri.query()?
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(name, _)| *name == "lang")
            .and_then(|(_, value)| Lang::parse(value))
    }

    fn from_cookie(headers: &HeaderMap) -> Option<Lang> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == LANG_COOKIE)
            .and_then(|(_, value)| Lang::parse(value))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Lang::from_query(&parts.uri)
            .or_else(|| Lang::from_cookie(&parts.headers))
            .unwrap_or(Lang::French))
    }
}

// ----- handlers ---------------------------------------------------------------------------

/// `GET /r/{token}`: the letter, and what the recipient can do now.
async fn landing(
    State(service): State<Service>,
    Path(token): Path<String>,
    lang: Lang,
    headers: HeaderMap,
) -> Response {
    show_letter(&service, lang, &token, &headers, StatusCode::OK, None).await
}

/// `GET /r/{token}/code`: the code form, without sending a code (for a code already
/// received, and for switching language on the code page).
async fn code_form(
    State(service): State<Service>,
    Path(token): Path<String>,
    lang: Lang,
) -> Response {
    let t = lang.wording();
    let letter = match service.lifecycle.recipient_letter(&token).await {
        Ok(letter) => letter,
        Err(e) => return failure(&service, lang, &token, Step::Code, e),
    };
    if !identification_possible(&service, &letter) {
        return see_other(&letter_path(&token));
    }
    let intro = t.code_prompt(&mask_address(letter.recipient.email.as_str()));
    render(
        StatusCode::OK,
        &code_page(&service, lang, &token, intro, None),
    )
}

/// `POST /r/{token}/code`: emails a code, then shows the code form.
async fn request_code(
    State(service): State<Service>,
    Path(token): Path<String>,
    lang: Lang,
    headers: HeaderMap,
) -> Response {
    if !from_our_pages(&headers, &service.settings.server.public_url) {
        return cross_site(&service, lang, &token);
    }
    match service.lifecycle.send_code(&token).await {
        Ok(sent) => {
            let intro = lang.wording().code_sent(&sent.sent_to, sent.expires_at);
            render(
                StatusCode::OK,
                &code_page(&service, lang, &token, intro, None),
            )
        }
        Err(e) => failure(&service, lang, &token, Step::Code, e),
    }
}

/// The code form's fields.
#[derive(Debug, Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

/// `POST /r/{token}/session`: checks the code, sets the session cookie and goes back to the
/// letter (303), or shows the form again with what went wrong.
async fn open_session(
    State(service): State<Service>,
    Path(token): Path<String>,
    lang: Lang,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Response {
    if !from_our_pages(&headers, &service.settings.server.public_url) {
        return cross_site(&service, lang, &token);
    }
    let Ok(Form(form)) = form else {
        return bad_form(&service, lang, &token);
    };
    let t = lang.wording();
    // Anything else than six digits is a typing slip, not a guess: it is sent back without
    // counting an attempt (the same rule as the JSON API).
    let error = if let Some(code) = super::recipient::one_time_code(&form.code) {
        match service.lifecycle.open_session(&token, &code).await {
            Ok(session) => {
                let mut response = see_other(&letter_path(&token));
                if let Some(cookie) = session_cookie(&service, &session.token) {
                    response.headers_mut().append(header::SET_COOKIE, cookie);
                }
                return response;
            }
            Err(LifecycleError::WrongCode { remaining }) => t.wrong_code(remaining),
            Err(e) => return failure(&service, lang, &token, Step::Code, e),
        }
    } else {
        t.code_malformed.to_string()
    };
    let letter = match service.lifecycle.recipient_letter(&token).await {
        Ok(letter) => letter,
        Err(e) => return failure(&service, lang, &token, Step::Code, e),
    };
    let intro = t.code_prompt(&mask_address(letter.recipient.email.as_str()));
    render(
        StatusCode::UNPROCESSABLE_ENTITY,
        &code_page(&service, lang, &token, intro, Some(error)),
    )
}

/// A decision form's fields: the explicit confirmation box.
#[derive(Debug, Deserialize)]
struct DecisionForm {
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /r/{token}/accept`.
async fn accept(
    State(service): State<Service>,
    Path(token): Path<String>,
    lang: Lang,
    headers: HeaderMap,
    client: Client,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Response {
    decide(
        &service,
        lang,
        &token,
        &headers,
        client,
        form,
        Decision::Accept,
    )
    .await
}

/// `POST /r/{token}/refuse`.
async fn refuse(
    State(service): State<Service>,
    Path(token): Path<String>,
    lang: Lang,
    headers: HeaderMap,
    client: Client,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Response {
    decide(
        &service,
        lang,
        &token,
        &headers,
        client,
        form,
        Decision::Refuse,
    )
    .await
}

async fn decide(
    service: &Service,
    lang: Lang,
    token: &str,
    headers: &HeaderMap,
    Client(client): Client,
    form: Result<Form<DecisionForm>, FormRejection>,
    decision: Decision,
) -> Response {
    if !from_our_pages(headers, &service.settings.server.public_url) {
        return cross_site(service, lang, token);
    }
    let Ok(Form(form)) = form else {
        return bad_form(service, lang, token);
    };
    // The decision is final and has legal effect: it needs an explicit confirmation, checked
    // here and not only by the browser's `required` attribute.
    if form.confirm.as_deref() != Some("yes") {
        let missing = Some(lang.wording().confirm_missing);
        return show_letter(
            service,
            lang,
            token,
            headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            missing,
        )
        .await;
    }
    let Some(session) = session_token(headers) else {
        return failure(
            service,
            lang,
            token,
            Step::Decision,
            LifecycleError::Unauthenticated("no session cookie".into()),
        );
    };
    match service
        .lifecycle
        .decide(token, &session, decision, &client)
        .await
    {
        Ok(_) => see_other(&letter_path(token)),
        Err(e) => failure(service, lang, token, Step::Decision, e),
    }
}

// ----- the landing page -------------------------------------------------------------------

/// Data shared by every page (the frame in `base.html`).
struct Chrome {
    t: &'static Wording,
    title: String,
    provider: String,
    /// Path the FR/EN links point at (with `?lang=`).
    switch_path: String,
    /// `?` before `lang=`, or `&` when `switch_path` already has a query.
    lang_joiner: char,
    /// The development PKI seals the evidence: say it is not qualified (docs/CONFIGURATION.md, development PKI).
    development: bool,
    /// The footer line.
    footer: &'static str,
    /// The provider's legal identity and qualification status, in the page's language.
    legal: String,
    status: &'static str,
}

impl Chrome {
    fn new(service: &Service, lang: Lang, title: &str, switch_path: String) -> Chrome {
        Chrome {
            t: lang.wording(),
            title: title.to_string(),
            provider: service.settings.server.provider_name.clone(),
            lang_joiner: if switch_path.contains('?') { '&' } else { '?' },
            switch_path,
            development: service.trust.development,
            footer: lang.wording().footer,
            legal: service.settings.provider.legal_line(lang == Lang::French),
            status: service.settings.provider.status(lang == Lang::French),
        }
    }
}

#[derive(Template)]
#[template(path = "landing.html", config = "src/http/templates/askama.toml")]
struct LandingPage {
    chrome: Chrome,
    t: &'static Wording,
    token: String,
    heading: String,
    error: Option<&'static str>,
    letter_id: String,
    /// Hidden from a visitor without a session once the recipient has decided.
    state_text: Option<&'static str>,
    deadline: Option<String>,
    /// Identified recipient only: the notification does not give it.
    content_summary: Option<String>,
    closed_text: Option<&'static str>,
    /// Only after a decision (CPCE R.53-3).
    sender: Option<Sender>,
    /// For an accepted composed letter: the sum claimed, the last day to pay and every way
    /// to pay (shown to the identified recipient).
    claim: Option<ClaimView>,
    decision_text: Option<String>,
    /// The window is open: explain, and offer identification or the decision.
    open: bool,
    identify_text: String,
    can_identify: bool,
    can_decide: bool,
    accepted: bool,
    refused: bool,
    documents: Vec<DocumentLink>,
    /// Decided, and seen without a session (a forwarded link): nothing more than the
    /// notification showed, and a way to identify.
    withheld: bool,
    withheld_text: String,
    proofs: Vec<ProofRow>,
    /// After the decision, to the identified recipient: the verification code of the letter
    /// and the address of the verification page with it filled in.
    verification: Option<(String, String)>,
}

/// The sum claimed by an accepted composed letter, as its proof of deposit records it.
struct ClaimView {
    /// `16 580,00 €`.
    total: String,
    /// Principal, interest, indemnity: label and amount.
    parts: Vec<(&'static str, String)>,
    /// Last day to pay, with how it is counted.
    pay_by: Option<String>,
    link: Option<String>,
    iban: Option<String>,
    instructions: Option<String>,
}

struct DocumentLink {
    href: String,
    name: String,
    detail: String,
}

struct ProofRow {
    label: String,
    time: String,
    /// `/v1/recipient/{token}/evidence/{id}`, completed with `.json`, `.p7s` or `.tsr`.
    base: String,
}

async fn show_letter(
    service: &Service,
    lang: Lang,
    token: &str,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&'static str>,
) -> Response {
    let letter = match service.lifecycle.recipient_letter(token).await {
        Ok(letter) => letter,
        Err(e) => return failure(service, lang, token, Step::View, e),
    };
    let identified = match session_token(headers) {
        Some(session) => match service
            .lifecycle
            .is_identified(&letter.letter, &session)
            .await
        {
            Ok(identified) => identified,
            Err(e) => return failure(service, lang, token, Step::View, e),
        },
        None => false,
    };
    let mut page = landing_page(service, lang, token, &letter, identified, error);
    if identified && page.accepted {
        page.claim = claim_view(service, lang, &letter.letter).await;
    }
    render(status, &page)
}

/// What an accepted composed letter claims and how to pay it, from its proof of deposit
/// (the recipient has accepted, so the letter's content is theirs to see).
async fn claim_view(
    service: &Service,
    lang: Lang,
    row: &crate::infra::storage::LetterRow,
) -> Option<ClaimView> {
    let t = lang.wording();
    let rows = service.storage.evidence_of_letter(&row.id).await.ok()?;
    let c = super::letters::collection_summary(&rows)?;
    let totals = &c["breakdown"]["totals"];
    let euros = crate::core::french::euros;
    let mut parts = Vec::new();
    for (label, key) in [
        (t.claim_principal, "principal_cents"),
        (t.claim_interest, "interest_cents"),
        (t.claim_indemnity, "indemnity_cents"),
    ] {
        if let Some(v) = totals[key]
            .as_i64()
            .filter(|v| *v > 0 || key != "indemnity_cents")
        {
            parts.push((label, euros(v)));
        }
    }
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let payment = &c["payment"];
    // Letters composed before the summary carried `payment` recorded only the link.
    let link = text(&payment["link"])
        .or_else(|| text(&c["payment_link"]))
        .filter(|link| link.starts_with("https://"));
    let days = c["deadline_days"]
        .as_u64()
        .and_then(|d| u8::try_from(d).ok());
    let received = row
        .decided_at
        .and_then(|at| crate::domain::window::paris_date(from_unix_micros(at)));
    let pay_by = match (days, received) {
        (Some(days), Some(received)) => received
            .checked_add(time::Duration::days(i64::from(days)))
            .map(|last| t.pay_by(last, days)),
        _ => None,
    };
    Some(ClaimView {
        total: euros(totals["total_cents"].as_i64()?),
        parts,
        pay_by,
        link,
        iban: text(&payment["iban"]),
        instructions: text(&payment["instructions"]),
    })
}

fn landing_page(
    service: &Service,
    lang: Lang,
    token: &str,
    letter: &RecipientLetter,
    identified: bool,
    error: Option<&'static str>,
) -> LandingPage {
    let t = lang.wording();
    let row = &letter.letter;
    let state = LetterState::parse(&row.state);
    let now = unix_micros(service.clock.now());
    // A notified letter past its deadline is unclaimed even before the sweep records it.
    let past_deadline = row.deadline.is_some_and(|d| now >= d);
    let open = state == Some(LetterState::Notified) && !past_deadline;
    let (heading, state_text, closed_text) = match state {
        Some(LetterState::Notified) if open => (t.title_waiting, t.state_notified, None),
        Some(LetterState::Notified | LetterState::Expired) => {
            (t.title_expired, t.state_expired, Some(t.expired_text))
        }
        Some(LetterState::Accepted) => (t.title_accepted, t.state_accepted, None),
        Some(LetterState::Refused) => (t.title_refused, t.state_refused, None),
        Some(LetterState::NotificationFailed) => {
            (t.title_failed, t.state_failed, Some(t.failed_text))
        }
        Some(LetterState::Deposited) | None => {
            (t.title_pending, t.state_deposited, Some(t.pending_text))
        }
    };
    let accepted = state == Some(LetterState::Accepted);
    let refused = state == Some(LetterState::Refused);
    let decided = accepted || refused;
    // Without a session the page shows no more than the notification did — provider, letter
    // id, deadline, that a letter awaits — before and after the decision (CPCE R.53-3; issue
    // 12 §5): a forwarded link learns neither the sender, nor the outcome, nor the content.
    let withheld = decided && !identified;
    let heading = if withheld { t.title_withheld } else { heading };
    let documents = if accepted && identified {
        letter
            .documents
            .iter()
            .map(|d| DocumentLink {
                href: format!("/v1/recipient/{token}/documents/{}", d.id),
                name: d.filename.clone(),
                detail: format!("{}, {}", media_label(&d.media_type), t.size(d.size)),
            })
            .collect()
    } else {
        Vec::new()
    };
    let proofs = if decided && identified {
        letter
            .evidence
            .iter()
            .map(|e| ProofRow {
                label: t.event_label(&e.event),
                time: t.paris(from_unix_micros(e.event_time)),
                base: format!("/v1/recipient/{token}/evidence/{}", e.id),
            })
            .collect()
    } else {
        Vec::new()
    };
    LandingPage {
        chrome: Chrome::new(service, lang, heading, letter_path(token)),
        t,
        token: token.to_string(),
        heading: heading.to_string(),
        error,
        letter_id: row.id.clone(),
        state_text: (!withheld).then_some(state_text),
        deadline: row
            .deadline
            .map(|d| t.paris(last_minute(from_unix_micros(d)))),
        content_summary: identified.then(|| {
            t.content_summary(
                letter.documents.len(),
                letter.documents.iter().map(|d| d.size).sum(),
            )
        }),
        closed_text,
        // CPCE R.53-3: the sender is revealed only after the decision, and only to the
        // identified recipient (a forwarded link alone shows nothing more than before).
        sender: letter.sender.clone().filter(|_| decided && identified),
        claim: None,
        decision_text: row
            .decided_at
            .filter(|_| decided && identified)
            .map(|at| t.decision_text(accepted, from_unix_micros(at))),
        open,
        identify_text: t.identify_text(&mask_address(letter.recipient.email.as_str())),
        can_identify: open && !identified,
        can_decide: open && identified,
        accepted: accepted && identified,
        refused: refused && identified,
        documents,
        withheld,
        withheld_text: t.withheld_text(&mask_address(letter.recipient.email.as_str())),
        proofs,
        verification: (decided && identified).then(|| {
            let code = service.lifecycle.verification_code(&row.id);
            let href = format!("/verify?letter={}&code={code}", row.id);
            (code, href)
        }),
    }
}

/// Whether the code step makes sense for this letter (the states `send_code` accepts).
fn identification_possible(service: &Service, letter: &RecipientLetter) -> bool {
    let now = unix_micros(service.clock.now());
    match LetterState::parse(&letter.letter.state) {
        Some(LetterState::Notified) => letter.letter.deadline.is_none_or(|d| now < d),
        Some(LetterState::Accepted | LetterState::Refused) => true,
        _ => false,
    }
}

fn media_label(media_type: &str) -> &str {
    match media_type {
        "application/pdf" => "PDF",
        other => other,
    }
}

// ----- the code page ----------------------------------------------------------------------

#[derive(Template)]
#[template(path = "code.html", config = "src/http/templates/askama.toml")]
struct CodePage {
    chrome: Chrome,
    t: &'static Wording,
    token: String,
    intro: String,
    error: Option<String>,
}

fn code_page(
    service: &Service,
    lang: Lang,
    token: &str,
    intro: String,
    error: Option<String>,
) -> CodePage {
    let t = lang.wording();
    CodePage {
        chrome: Chrome::new(service, lang, t.code_title, format!("/r/{token}/code")),
        t,
        token: token.to_string(),
        intro,
        error,
    }
}

// ----- message pages (errors, conflicts) --------------------------------------------------

#[derive(Template)]
#[template(path = "message.html", config = "src/http/templates/askama.toml")]
struct MessagePage {
    chrome: Chrome,
    t: &'static Wording,
    text: String,
    back: Option<String>,
}

/// Which step failed: the same error reads differently after a code request and after a
/// decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    View,
    Code,
    Decision,
}

/// The HTML page for a lifecycle error, with its status. Causes are logged, never shown.
fn failure(
    service: &Service,
    lang: Lang,
    token: &str,
    step: Step,
    err: LifecycleError,
) -> Response {
    let t = lang.wording();
    let back = Some(letter_path(token));
    let (status, title, text, back) = match err {
        LifecycleError::NotFound => (
            StatusCode::NOT_FOUND,
            t.not_found_title,
            t.not_found_text.to_string(),
            None,
        ),
        LifecycleError::Conflict(_) => {
            let text = if step == Step::Decision {
                t.decision_conflict_text
            } else {
                t.code_conflict_text
            };
            (
                StatusCode::CONFLICT,
                t.conflict_title,
                text.to_string(),
                back,
            )
        }
        LifecycleError::Unauthenticated(_) => (
            StatusCode::FORBIDDEN,
            t.session_title,
            t.session_text.to_string(),
            back,
        ),
        LifecycleError::Locked { until } => {
            let mut response = message(
                service,
                lang,
                token,
                StatusCode::TOO_MANY_REQUESTS,
                t.locked_title,
                t.locked_text(until),
                back,
            );
            let wait = (until - service.clock.now()).whole_seconds().max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            return response;
        }
        LifecycleError::TooManyCodes => (
            StatusCode::TOO_MANY_REQUESTS,
            t.too_many_title,
            t.too_many_text.to_string(),
            back,
        ),
        LifecycleError::WrongCode { remaining } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            t.code_title,
            t.wrong_code(remaining),
            Some(format!("/r/{token}/code")),
        ),
        LifecycleError::Mail(e) => {
            tracing::error!(error = %e, "code mail not sent");
            unavailable(t, back)
        }
        LifecycleError::Evidence(crate::core::evidence::EvidenceError::Timestamp(e)) => {
            tracing::error!(error = %e, "timestamping failed");
            unavailable(t, back)
        }
        other => {
            tracing::error!(error = %other, "recipient page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                t.internal_title,
                t.internal_text.to_string(),
                back,
            )
        }
    };
    message(service, lang, token, status, title, text, back)
}

/// The 429 page of the recipient routes' request limits ([`rate_limit::recipient`]), in the
/// reader's language; `Retry-After` is added by the middleware.
fn rate_limited(service: &Service, parts: &Parts, wait: std::time::Duration) -> Response {
    let lang = Lang::from_query(&parts.uri)
        .or_else(|| Lang::from_cookie(&parts.headers))
        .unwrap_or(Lang::French);
    let t = lang.wording();
    let token = parts
        .uri
        .path()
        .strip_prefix("/r/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("");
    message(
        service,
        lang,
        token,
        StatusCode::TOO_MANY_REQUESTS,
        t.rate_limited_title,
        t.rate_limited_text(wait.as_secs().max(1)),
        Some(letter_path(token)),
    )
}

fn unavailable(
    t: &'static Wording,
    back: Option<String>,
) -> (StatusCode, &'static str, String, Option<String>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        t.unavailable_title,
        t.unavailable_text.to_string(),
        back,
    )
}

fn cross_site(service: &Service, lang: Lang, token: &str) -> Response {
    let t = lang.wording();
    tracing::warn!("cross-site form post refused on a recipient page");
    message(
        service,
        lang,
        token,
        StatusCode::FORBIDDEN,
        t.forbidden_title,
        t.forbidden_text.to_string(),
        None,
    )
}

fn bad_form(service: &Service, lang: Lang, token: &str) -> Response {
    let t = lang.wording();
    message(
        service,
        lang,
        token,
        StatusCode::BAD_REQUEST,
        t.bad_form_title,
        t.bad_form_text.to_string(),
        Some(letter_path(token)),
    )
}

fn message(
    service: &Service,
    lang: Lang,
    token: &str,
    status: StatusCode,
    title: &str,
    text: String,
    back: Option<String>,
) -> Response {
    let page = MessagePage {
        chrome: Chrome::new(service, lang, title, letter_path(token)),
        t: lang.wording(),
        text,
        back,
    };
    render(status, &page)
}

// ----- plumbing ---------------------------------------------------------------------------

/// The letter's page. Tokens are URL-safe base64; anything else (only ever an unknown link)
/// is not echoed into links.
fn letter_path(token: &str) -> String {
    if !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        format!("/r/{token}")
    } else {
        "/r/-".to_string()
    }
}

/// 303 See Other: after a POST, the browser loads the page with a GET (no resubmission on
/// reload).
fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "page rendering failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!DOCTYPE html><html lang=\"fr\"><title>Erreur interne / Internal error</title><h1>Erreur interne / Internal error</h1></html>"),
            )
                .into_response()
        }
    }
}

/// Whether a form POST comes from our own pages (CSRF defence in depth; the session cookie
/// is already `SameSite=Strict`).
///
/// * `Sec-Fetch-Site`, when the browser sends it, must be `same-origin`.
/// * `Origin`, when it names an origin, must be the public URL's. Our pages send
///   `Referrer-Policy: no-referrer` (the token is in the URL), and with that policy browsers
///   send `Origin: null` on form posts; `null` is therefore not proof of a foreign site, and
///   is decided by `Sec-Fetch-Site` and the SameSite cookie instead.
/// * Otherwise a `Referer`, when present, must be on the public URL's origin.
pub fn from_our_pages(headers: &HeaderMap, public_url: &str) -> bool {
    let ours = origin_of(public_url);
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header_text("sec-fetch-site")
        && site != "same-origin"
    {
        return false;
    }
    match header_text("origin") {
        Some("null") => {}
        Some(origin) => return ours.is_some() && origin_of(origin) == ours,
        None => {}
    }
    match header_text("referer") {
        Some(referer) => ours.is_some() && origin_of(referer) == ours,
        None => true,
    }
}

/// `scheme://host[:port]` of a URL, lower-cased, without a default port.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let authority = authority
        .strip_suffix(default_port)
        .unwrap_or(&authority)
        .to_string();
    Some(format!("{scheme}://{authority}"))
}

/// Headers of every page: a strict CSP, no sniffing, no referrer (the link token is in the
/// URL and must not leak to other sites), no caching (personal data); and the language
/// cookie when `?lang=` chose one.
async fn page_headers(State(service): State<Service>, request: Request, next: Next) -> Response {
    let chosen = Lang::from_query(request.uri());
    let cookie_path = if request.uri().path().starts_with("/verify") {
        "/verify"
    } else {
        "/r"
    };
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // RFC 6797 §7.2: HSTS is only meaningful (and only honoured) over https, so it is sent
    // when the public URL is https; one year, subdomains included.
    if service.settings.server.public_url.starts_with("https://") {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    if let Some(lang) = chosen {
        let secure = if service.settings.server.public_url.starts_with("https://") {
            "; Secure"
        } else {
            ""
        };
        // Lax, not Strict: the language should hold when the recipient comes back from the
        // notification mail (a cross-site navigation). It carries no authority.
        let value = format!(
            "{LANG_COOKIE}={}; Path={cookie_path}; Max-Age=31536000; SameSite=Lax{secure}",
            lang.wording().lang
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_static(value));
        }
        h
    }

    const PUBLIC: &str = "https://lre.example.fr";

    #[test]
    fn a_post_without_origin_information_relies_on_the_samesite_cookie() {
        assert!(from_our_pages(&headers(&[]), PUBLIC));
    }

    #[test]
    fn a_post_from_our_origin_is_accepted() {
        assert!(from_our_pages(
            &headers(&[
                ("origin", "https://lre.example.fr"),
                ("sec-fetch-site", "same-origin")
            ]),
            PUBLIC
        ));
        assert!(from_our_pages(
            &headers(&[("origin", "https://LRE.example.fr:443")]),
            PUBLIC
        ));
        assert!(from_our_pages(
            &headers(&[("referer", "https://lre.example.fr/r/abc")]),
            PUBLIC
        ));
    }

    #[test]
    fn a_post_from_another_site_is_refused() {
        for h in [
            headers(&[("origin", "http://evil.example")]),
            headers(&[("origin", "http://lre.example.fr")]),
            headers(&[("origin", "https://lre.example.fr.evil.example")]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
            headers(&[("origin", "null"), ("sec-fetch-site", "cross-site")]),
            headers(&[("referer", "https://evil.example/r/abc")]),
        ] {
            assert!(!from_our_pages(&h, PUBLIC), "{h:?}");
        }
    }

    #[test]
    fn the_null_origin_of_a_no_referrer_page_is_judged_by_fetch_metadata() {
        assert!(from_our_pages(
            &headers(&[("origin", "null"), ("sec-fetch-site", "same-origin")]),
            PUBLIC
        ));
    }

    #[test]
    fn origins_drop_paths_and_default_ports() {
        assert_eq!(
            origin_of("http://127.0.0.1:8080/r/x?lang=en").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin_of("https://a.fr:443").as_deref(),
            Some("https://a.fr")
        );
        assert_eq!(origin_of("https://user@a.fr"), None);
        assert_eq!(origin_of("ftp://a.fr"), None);
    }

    #[test]
    fn the_language_comes_from_the_query_then_the_cookie() {
        let uri: Uri = "/r/abc?x=1&lang=en".parse().expect("uri");
        assert_eq!(Lang::from_query(&uri), Some(Lang::English));
        let uri: Uri = "/r/abc?lang=de".parse().expect("uri");
        assert_eq!(Lang::from_query(&uri), None);
        let h = headers(&[("cookie", "a=b; recommande_lang=en")]);
        assert_eq!(Lang::from_cookie(&h), Some(Lang::English));
    }

    #[test]
    fn foreign_tokens_are_not_echoed_into_links() {
        assert_eq!(letter_path("abc-_9"), "/r/abc-_9");
        assert_eq!(letter_path("a\"b"), "/r/-");
        assert_eq!(letter_path("//evil.example"), "/r/-");
    }
}
