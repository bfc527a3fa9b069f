//! The recipient's side, as a JSON API (the HTML pages under `/r/` are built on the same
//! service calls): see the letter without its sender, identify with a one-time code, accept
//! or refuse, then download the content and the proofs.

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::documents::DocumentView;
use super::problem::Problem;
use crate::app::lifecycle::{ClientInfo, Decision, LifecycleError, RecipientLetter};
use crate::app::service::Service;
use crate::core::clock::{from_unix_micros, rfc3339_micros};
use crate::domain::letter::{LetterState, Sender};

/// Name of the session cookie set for the HTML pages.
pub const SESSION_COOKIE: &str = "recommande_session";

/// What the recipient sees of a letter. Without an identified session (whoever holds a
/// forwarded notification link) it is no more than the notification said: the provider,
/// the letter id, the deadline and, while the letter awaits a decision, that it does
/// (`state` `notified`); never whether it was accepted or refused, when, by whom it was sent,
/// nor its documents (CPCE R.53-3; issue 12 §5).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecipientView {
    /// The provider carrying the letter.
    pub provider: String,
    /// Letter id.
    pub letter_id: String,
    /// Lifecycle state; omitted without a session once the recipient has decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<LetterState>,
    /// End of the acceptance window (exclusive), RFC 3339 UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// Number of documents (identified recipient only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_count: Option<usize>,
    /// Their total size in bytes (identified recipient only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_size: Option<i64>,
    /// When the recipient decided (identified recipient only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    /// The sender: shown only once the recipient has accepted or refused (CPCE R.53-3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<Sender>,
    /// The documents, listed once the letter is accepted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<DocumentView>,
    /// The letter's evidence records (the recipient's proofs), once decided.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<RecipientEvidence>,
}

/// One evidence record offered to the recipient.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecipientEvidence {
    /// Evidence id.
    pub id: String,
    /// Event name.
    pub event: String,
    /// Event time.
    pub event_time: String,
    /// Hex SHA-256 of the record.
    pub sha256: String,
}

/// Answer to a code request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CodeSentView {
    /// Masked address the code went to.
    pub sent_to: String,
    /// Expiry of the code.
    pub expires_at: String,
}

/// Body of a session request.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct SessionRequest {
    /// The 6-digit code received by email.
    pub code: String,
}

/// An opened session.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// Bearer token for the following calls (also set as a cookie for the pages).
    pub session: String,
    /// Expiry.
    pub expires_at: String,
}

/// The client's address and user agent, kept only (hashed) in evidence.
pub struct Client(pub ClientInfo);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // The address judged with `[http] trusted_proxies`, as the rate limits see it.
        let ip =
            super::client_address::ClientAddress::known(&parts.extensions).map(|ip| ip.to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Client(ClientInfo { ip, user_agent }))
    }
}

/// The recipient session: `Authorization: Bearer <session>` or the session cookie.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some((scheme, token)) = value.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        return Some(token.trim().to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// Whether the session travels in the cookie rather than in `Authorization: Bearer`: only
/// a cookie is sent by the browser on its own, so only a cookie needs the cross-site check.
fn session_in_cookie(headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"));
    !bearer && session_token(headers).is_some()
}

/// Refuses a POST carrying the session cookie that a browser sent from another site: the
/// same judgement as the HTML forms (`pages::from_our_pages`: `Sec-Fetch-Site`, `Origin`,
/// `Referer`), defence in depth behind the `SameSite=Strict` cookie. A bearer token is never
/// attached by a browser on its own, so it is not judged.
fn refuse_cross_site_cookie(service: &Service, headers: &HeaderMap) -> Result<(), Problem> {
    if session_in_cookie(headers)
        && !super::pages::from_our_pages(headers, &service.settings.server.public_url)
    {
        tracing::warn!("cross-site recipient API post with the session cookie refused");
        return Err(Problem::cross_site(
            "a request carrying the session cookie must come from this service's own pages; \
             API clients send the session as `Authorization: Bearer`",
        ));
    }
    Ok(())
}

/// A one-time code as the recipient typed it, spaces removed (people paste `123 456`), if it
/// is six ASCII digits. Anything else is a typing slip, not a guess: it is answered without
/// counting an attempt toward the lock.
pub fn one_time_code(typed: &str) -> Option<String> {
    let code: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

impl From<LifecycleError> for Problem {
    fn from(err: LifecycleError) -> Self {
        match err {
            LifecycleError::NotFound => Problem::not_found("no letter behind this link"),
            LifecycleError::Conflict(detail) => {
                Problem::conflict("letter-state-conflict", "Not possible now", detail)
            }
            LifecycleError::Unauthenticated(detail) => Problem::recipient_unauthenticated(detail),
            e @ LifecycleError::WrongCode { .. } => {
                Problem::otp("otp-invalid", StatusCode::UNAUTHORIZED, e.to_string())
            }
            e @ LifecycleError::Locked { .. } => {
                Problem::otp("otp-locked", StatusCode::TOO_MANY_REQUESTS, e.to_string())
            }
            e @ LifecycleError::TooManyCodes => Problem::otp(
                "otp-rate-limited",
                StatusCode::TOO_MANY_REQUESTS,
                e.to_string(),
            ),
            LifecycleError::Mail(e) => {
                tracing::error!(error = %e, "mail not sent");
                Problem::unavailable("the mail could not be sent now; retry later")
            }
            LifecycleError::Evidence(crate::core::evidence::EvidenceError::Timestamp(e)) => {
                tracing::error!(error = %e, "timestamping failed");
                Problem::unavailable(
                    "the timestamp authority did not answer; nothing was recorded, retry later",
                )
            }
            other => Problem::internal(&other),
        }
    }
}

/// The letter behind a link, without its sender until the recipient decides.
#[utoipa::path(get, path = "/v1/recipient/{token}", tag = "recipient",
    params(("token" = String, Path, description = "Token from the notification link")),
    responses((status = 200, description = "The letter as its recipient may see it", body = RecipientView),
              (status = 404, description = "Unknown link", body = Problem)))]
pub async fn show(
    State(service): State<Service>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Json<RecipientView>, Problem> {
    let letter = service.lifecycle.recipient_letter(&token).await?;
    // The sender, the proofs, the documents and the decision go to the identified recipient
    // only, never to whoever holds a forwarded link.
    let identified = identified(&service, &letter, &headers).await?;
    Ok(Json(view(&service, letter, identified)))
}

async fn identified(
    service: &Service,
    letter: &RecipientLetter,
    headers: &HeaderMap,
) -> Result<bool, Problem> {
    match session_token(headers) {
        Some(session) => Ok(service
            .lifecycle
            .is_identified(&letter.letter, &session)
            .await?),
        None => Ok(false),
    }
}

/// Emails a 6-digit code (valid 10 minutes; at most 5 per hour).
#[utoipa::path(post, path = "/v1/recipient/{token}/otp", tag = "recipient",
    params(("token" = String, Path, description = "Token from the notification link")),
    responses((status = 202, description = "Code sent", body = CodeSentView),
              (status = 404, description = "Unknown link", body = Problem),
              (status = 409, description = "The letter cannot be opened (unclaimed, not delivered)", body = Problem),
              (status = 429, description = "Locked after wrong codes, or too many codes", body = Problem)))]
pub async fn request_code(
    State(service): State<Service>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    refuse_cross_site_cookie(&service, &headers)?;
    let sent = service.lifecycle.send_code(&token).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(CodeSentView {
            sent_to: sent.sent_to,
            expires_at: rfc3339_micros(sent.expires_at),
        }),
    )
        .into_response())
}

/// Exchanges a code for a session (bearer token and cookie).
#[utoipa::path(post, path = "/v1/recipient/{token}/session", tag = "recipient",
    params(("token" = String, Path, description = "Token from the notification link")),
    request_body(content = SessionRequest, content_type = "application/json"),
    responses((status = 201, description = "Session opened", body = SessionView),
              (status = 400, description = "Malformed body", body = Problem),
              (status = 401, description = "Wrong or expired code", body = Problem),
              (status = 403, description = "Session cookie sent from another site", body = Problem),
              (status = 422, description = "Not six digits; not counted as an attempt", body = Problem),
              (status = 429, description = "Locked after 5 wrong codes", body = Problem)))]
pub async fn open_session(
    State(service): State<Service>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    refuse_cross_site_cookie(&service, &headers)?;
    let request: SessionRequest = serde_json::from_slice(&body)
        .map_err(|e| Problem::malformed_json(format!("expected {{\"code\": \"123456\"}}: {e}")))?;
    let Some(code) = one_time_code(&request.code) else {
        return Err(Problem::otp_malformed(
            "the code is the six digits of the mail; this was not counted as an attempt",
        ));
    };
    let session = service.lifecycle.open_session(&token, &code).await?;
    let cookie = session_cookie(&service, &session.token);
    let mut response = (
        StatusCode::CREATED,
        Json(SessionView {
            session: session.token,
            expires_at: rfc3339_micros(session.expires_at),
        }),
    )
        .into_response();
    if let Some(value) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// The `Set-Cookie` value carrying a recipient session, for the JSON API and the pages
/// alike: HttpOnly (no script reads it), SameSite=Strict (no other site can post with it),
/// Secure when the service is served over https. `None` only for a token that is not valid
/// header text, which the lifecycle never issues.
pub fn session_cookie(service: &Service, session_token: &str) -> Option<HeaderValue> {
    let secure = if service.settings.server.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={session_token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        crate::app::lifecycle::SESSION_VALIDITY.whole_seconds()
    ))
    .ok()
}

/// Accepts the letter (ConsignmentAcceptance); the sender is revealed in the answer.
#[utoipa::path(post, path = "/v1/recipient/{token}/accept", tag = "recipient",
    params(("token" = String, Path, description = "Token from the notification link")),
    responses((status = 200, description = "Accepted", body = RecipientView),
              (status = 401, description = "No valid session", body = Problem),
              (status = 403, description = "Session cookie sent from another site", body = Problem),
              (status = 404, description = "Unknown link", body = Problem),
              (status = 409, description = "Already decided, or the window has ended", body = Problem)),
    security(("recipient_session" = [])))]
pub async fn accept(
    State(service): State<Service>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Client(client): Client,
) -> Result<Json<RecipientView>, Problem> {
    decide(service, token, headers, client, Decision::Accept).await
}

/// Refuses the letter (ConsignmentRejection); the sender is revealed in the answer.
#[utoipa::path(post, path = "/v1/recipient/{token}/refuse", tag = "recipient",
    params(("token" = String, Path, description = "Token from the notification link")),
    responses((status = 200, description = "Refused", body = RecipientView),
              (status = 401, description = "No valid session", body = Problem),
              (status = 403, description = "Session cookie sent from another site", body = Problem),
              (status = 404, description = "Unknown link", body = Problem),
              (status = 409, description = "Already decided, or the window has ended", body = Problem)),
    security(("recipient_session" = [])))]
pub async fn refuse(
    State(service): State<Service>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Client(client): Client,
) -> Result<Json<RecipientView>, Problem> {
    decide(service, token, headers, client, Decision::Refuse).await
}

async fn decide(
    service: Service,
    token: String,
    headers: HeaderMap,
    client: ClientInfo,
    decision: Decision,
) -> Result<Json<RecipientView>, Problem> {
    refuse_cross_site_cookie(&service, &headers)?;
    let session = session_token(&headers)
        .ok_or_else(|| Problem::recipient_unauthenticated("identify first".into()))?;
    let letter = service
        .lifecycle
        .decide(&token, &session, decision, &client)
        .await?;
    // `decide` checked the session: the caller is the identified recipient.
    Ok(Json(view(&service, letter, true)))
}

/// Streams a document of an accepted letter; the first download writes ContentHandover.
#[utoipa::path(get, path = "/v1/recipient/{token}/documents/{document_id}", tag = "recipient",
    params(("token" = String, Path, description = "Token from the notification link"),
           ("document_id" = String, Path, description = "Document id")),
    responses((status = 200, description = "The document", content_type = "application/pdf", body = Vec<u8>),
              (status = 401, description = "No valid session", body = Problem),
              (status = 404, description = "Unknown link or document", body = Problem),
              (status = 409, description = "Not accepted", body = Problem)),
    security(("recipient_session" = [])))]
pub async fn document(
    State(service): State<Service>,
    Path((token, document_id)): Path<(String, String)>,
    headers: HeaderMap,
    Client(client): Client,
) -> Result<Response, Problem> {
    let session = session_token(&headers)
        .ok_or_else(|| Problem::recipient_unauthenticated("identify first".into()))?;
    let doc = service
        .lifecycle
        .hand_over(&token, &session, &document_id, &client)
        .await?;
    // Decrypts while streaming. The first segment is opened before answering, so a document
    // altered there (all of a small one) gets a problem response; one altered further on cuts
    // the response short. Never wrong bytes.
    let mut reader = service.content.open_read(&doc.sha256).await?;
    let first = reader.next_chunk().await?;
    let stream = futures_util::StreamExt::chain(
        futures_util::stream::iter(first.map(Ok)),
        reader.into_stream(),
    );
    let disposition = super::documents::pdf_attachment(&doc.filename);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(&doc.media_type)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            // The media type was read from the bytes at upload; browsers must not guess
            // another one from them.
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_LENGTH,
                HeaderValue::from(doc.size.max(0) as u64),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The exact bytes of an evidence record of the letter (the recipient's proofs), after the
/// recipient has decided.
#[utoipa::path(get, path = "/v1/recipient/{token}/evidence/{file}", tag = "recipient",
    params(("token" = String, Path, description = "Token from the notification link"),
           ("file" = String, Path, description = "`<evidence id>.json`, `.p7s` or `.tsr`")),
    responses((status = 200, description = "The stored bytes", body = Vec<u8>),
              (status = 401, description = "No valid session", body = Problem),
              (status = 404, description = "Unknown link or evidence, or not decided yet", body = Problem)),
    security(("recipient_session" = [])))]
pub async fn evidence_file(
    State(service): State<Service>,
    Path((token, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let letter = service.lifecycle.recipient_letter(&token).await?;
    if !identified(&service, &letter, &headers).await? {
        return Err(Problem::recipient_unauthenticated(
            "identify first: the proofs are given to the identified recipient".into(),
        ));
    }
    let Some((evidence_id, extension)) = file.rsplit_once('.') else {
        return Err(Problem::not_found(
            "ask for <evidence id>.json, .p7s or .tsr",
        ));
    };
    let Some(e) = letter.evidence.iter().find(|e| e.id == evidence_id) else {
        return Err(Problem::not_found(
            "no such evidence, or the letter is not decided yet",
        ));
    };
    let (bytes, content_type) = match extension {
        "json" => (e.record.clone(), "application/json"),
        "p7s" => (e.seal.clone(), "application/pkcs7-signature"),
        "tsr" => (e.timestamp_token.clone(), "application/octet-stream"),
        _ => {
            return Err(Problem::not_found(
                "ask for <evidence id>.json, .p7s or .tsr",
            ));
        }
    };
    // Saved under its own name (`<evidence id>.<ext>`), the name the bundle and VERIFY.txt use.
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"{}.{extension}\"", e.id))
            .unwrap_or(HeaderValue::from_static("attachment"));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// The recipient's own proof of their decision, as a signed PDF: the accusé de réception of
/// an accepted letter, the preuve de refus of a refused one (the same signed file the sender
/// gets).
#[utoipa::path(get, path = "/v1/recipient/{token}/receipt.pdf", tag = "recipient",
    params(("token" = String, Path, description = "Token from the notification link")),
    responses((status = 200, description = "The PAdES-signed PDF proof of the decision", body = Vec<u8>, content_type = "application/pdf"),
              (status = 401, description = "No valid session", body = Problem),
              (status = 404, description = "Unknown link, or not decided yet", body = Problem),
              (status = 503, description = "Timestamp authority unavailable", body = Problem)),
    security(("recipient_session" = [])))]
pub async fn receipt(
    State(service): State<Service>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let letter = service.lifecycle.recipient_letter(&token).await?;
    if !identified(&service, &letter, &headers).await? {
        return Err(Problem::recipient_unauthenticated(
            "identify first: the receipt is given to the identified recipient".into(),
        ));
    }
    let kind = match LetterState::parse(&letter.letter.state) {
        Some(LetterState::Accepted) => crate::core::proof::ProofKind::Receipt,
        Some(LetterState::Refused) => crate::core::proof::ProofKind::Refusal,
        _ => {
            return Err(Problem::not_found(
                "the letter is not decided yet: the receipt comes with the decision",
            ));
        }
    };
    let evidence = service
        .storage
        .evidence_of_letter(&letter.letter.id)
        .await?;
    let Some((_, pdf)) = service
        .signed_proofs(&letter.letter.id, evidence, vec![kind])
        .await?
        .into_iter()
        .next()
    else {
        return Err(Problem::not_found("the decision has no proof yet"));
    };
    Ok(super::letters::proof_response(
        &letter.letter.id,
        kind,
        "attachment",
        pdf,
    ))
}

/// Builds the recipient's view.
pub fn view(service: &Service, mut letter: RecipientLetter, identified: bool) -> RecipientView {
    let state = LetterState::parse(&letter.letter.state).unwrap_or(LetterState::Deposited);
    let decided = matches!(state, LetterState::Accepted | LetterState::Refused);
    if !identified {
        // No more than the notification showed (issue 12 §5).
        letter.sender = None;
        letter.evidence.clear();
        letter.documents.clear();
        letter.letter.decided_at = None;
    }
    let accepted = state == LetterState::Accepted;
    RecipientView {
        provider: service.settings.server.provider_name.clone(),
        letter_id: letter.letter.id.clone(),
        state: (identified || !decided).then_some(state),
        deadline: letter
            .letter
            .deadline
            .map(|d| rfc3339_micros(from_unix_micros(d))),
        document_count: identified.then_some(letter.documents.len()),
        total_size: identified.then(|| letter.documents.iter().map(|d| d.size).sum()),
        decided_at: letter
            .letter
            .decided_at
            .map(|d| rfc3339_micros(from_unix_micros(d))),
        sender: letter.sender.clone(),
        documents: if accepted {
            letter.documents.iter().map(DocumentView::from).collect()
        } else {
            Vec::new()
        },
        evidence: letter
            .evidence
            .iter()
            .map(|e| RecipientEvidence {
                id: e.id.clone(),
                event: e.event.clone(),
                event_time: rfc3339_micros(from_unix_micros(e.event_time)),
                sha256: e.record_sha256.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("header value"));
        }
        map
    }

    #[test]
    fn a_code_is_six_digits_once_spaces_are_removed() {
        assert_eq!(one_time_code("123456").as_deref(), Some("123456"));
        assert_eq!(one_time_code(" 123 456\t").as_deref(), Some("123456"));
        for typed in [
            "",
            "12345",
            "1234567",
            "12a456",
            "١٢٣٤٥٦",
            "12-456",
            "+12345",
        ] {
            assert_eq!(one_time_code(typed), None, "{typed:?}");
        }
    }

    #[test]
    fn only_a_session_in_the_cookie_is_judged_for_its_origin() {
        let cookie = ("cookie", "lang=fr; recommande_session=abc");
        assert!(session_in_cookie(&headers(&[cookie])));
        assert!(!session_in_cookie(&headers(&[
            cookie,
            ("authorization", "Bearer xyz")
        ])));
        assert!(!session_in_cookie(&headers(&[("cookie", "lang=fr")])));
        assert!(!session_in_cookie(&headers(&[])));
    }
}
