//! `POST /v1/documents`: upload once, reuse in many letters.

use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

use super::idempotency::{Claim, Idempotency, IdempotencyKeyHeader};
use super::problem::Problem;
use super::problem::shared::ApiKeyProblems;
use super::{json_bytes, json_response};
use crate::app::api_key::Caller;
use crate::app::service::Service;
use crate::core::clock::unix_micros;
use crate::domain::letter::{FieldError, MAX_TEXT_LEN, is_deceptive_char};
use crate::infra::storage::DocumentRow;

/// A stored document as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DocumentView {
    /// Document id, to list in `documents` of a letter.
    pub id: String,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
    /// Media type sniffed from the bytes.
    pub media_type: String,
    /// File name given at upload.
    pub filename: String,
}

impl From<&DocumentRow> for DocumentView {
    fn from(d: &DocumentRow) -> Self {
        DocumentView {
            id: d.id.clone(),
            sha256: d.sha256.clone(),
            size: d.size,
            media_type: d.media_type.clone(),
            filename: d.filename.clone(),
        }
    }
}

/// The one multipart field of an upload.
pub const UPLOAD_FIELD: &str = "file";

/// Multipart body of an upload, as the OpenAPI document publishes it; the handler reads the
/// parts one by one and accepts only [`UPLOAD_FIELD`] (kept in step by the tests of
/// [`super::openapi`]).
#[derive(utoipa::ToSchema)]
pub struct UploadForm {
    /// The PDF file.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// Uploads a PDF. The bytes stream to disk while hashed; the media type is read from the
/// bytes, and the file structure checked while it streams ([`crate::core::pdf_check`]). Uploading the same bytes again returns the same document (200 instead of 201).
#[utoipa::path(post, path = "/v1/documents", tag = "documents",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    params(IdempotencyKeyHeader),
    responses((status = 201, description = "Document stored", body = DocumentView),
              (status = 200, description = "These bytes were already uploaded by this account", body = DocumentView),
              (status = 400, description = "Malformed multipart body", body = Problem),
              (status = 413, description = "Document too large", body = Problem),
              (status = 415, description = "Not multipart, or not a PDF (no `%PDF-` header at offset 0)", body = Problem),
              (status = 422, description = "No file field, empty file, a file starting with `%PDF-` that is not structurally a PDF (`errors[0].message` says why), or Idempotency-Key reused", body = Problem),
              (status = 429, description = "Over the tenant's quota (`[rate_limits]`) or too many refused keys from this address; see Retry-After", body = Problem),
              ApiKeyProblems),
    security(("api_key" = [])))]
pub async fn upload(
    State(service): State<Service>,
    caller: Caller,
    idempotency: Idempotency,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, Problem> {
    let limit = service.settings.server.max_upload_bytes;
    // A body announced larger than any acceptable upload is refused from its headers, before
    // a byte of it is read.
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit.saturating_add(super::MULTIPART_OVERHEAD as u64)) {
        return Err(Problem::too_large(limit));
    }
    let mut multipart = multipart.map_err(|e| {
        Problem::unsupported_media_type(format!(
            "send the document as multipart/form-data with a `file` field ({e})"
        ))
    })?;
    let mut stored = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_problem(e, limit))?
    {
        match field.name() {
            Some(UPLOAD_FIELD) => {}
            other => {
                return Err(Problem::validation(vec![FieldError {
                    field: other.unwrap_or("").to_string(),
                    message: "is not a known field; send the document in a field named `file`"
                        .into(),
                }]));
            }
        }
        if stored.is_some() {
            return Err(Problem::validation(vec![FieldError {
                field: "file".into(),
                message: "send one file per request".into(),
            }]));
        }
        // A bidirectional override in a file name makes `facture\u{202E}fdp.exe` display as
        // `facture` + `exe.pdf`; such a name is refused rather than silently cleaned, so the
        // sender learns why.
        if field
            .file_name()
            .is_some_and(|n| n.chars().any(is_deceptive_char))
        {
            return Err(Problem::validation(vec![FieldError {
                field: "file".into(),
                message: "the file name must not contain bidirectional-override or line-separator characters".into(),
            }]));
        }
        let filename = clean_filename(field.file_name());
        let mut incoming = service.content.begin(limit).await?;
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| multipart_problem(e, limit))?
        {
            incoming.write(&chunk).await?;
        }
        if incoming.size() == 0 {
            return Err(Problem::validation(vec![FieldError {
                field: "file".into(),
                message: "is empty".into(),
            }]));
        }
        // Another type altogether is a 415; a file that starts as a PDF but lacks the rest of
        // the structure (ISO 32000-1 §7.5) is a 422 naming what is missing.
        let Some(media_type) = incoming.media_type() else {
            let reason = incoming
                .check_pdf()
                .err()
                .unwrap_or(crate::core::pdf_check::NotPdf::NoHeader(None));
            return Err(Problem::unsupported_media_type(format!(
                "the file is {reason}; only PDF documents are accepted"
            )));
        };
        if let Err(reason) = incoming.check_pdf() {
            return Err(Problem::validation(vec![FieldError {
                field: "file".into(),
                message: reason.to_string(),
            }]));
        }
        // Not moved into the store yet: a later refusal (another part, a reused key) drops it
        // and its temporary file with it, so nothing is left behind.
        stored = Some((incoming, media_type, filename));
    }
    let Some((incoming, media_type, filename)) = stored else {
        return Err(Problem::validation(vec![FieldError {
            field: "file".into(),
            message: "is required: a multipart field named `file` holding the PDF".into(),
        }]));
    };

    // The key is claimed once the upload is received: the file's digest and name identify
    // the request, whatever the multipart framing.
    let material = format!("{}\n{}", incoming.sha256(), filename);
    idempotency
        .run(&service, &caller, material.as_bytes(), async |claim| {
            store_upload(&service, &caller, claim, incoming, media_type, filename).await
        })
        .await
}

/// Moves a checked upload into the store and records it, under the request's claim.
async fn store_upload(
    service: &Service,
    caller: &Caller,
    claim: &Claim,
    incoming: crate::infra::content::IncomingContent,
    media_type: &'static str,
    filename: String,
) -> Result<Response, Problem> {
    let content = incoming.finish().await?;

    let now = unix_micros(service.clock.now());
    let candidate = DocumentRow {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: caller.tenant_id.clone(),
        sha256: content.sha256.clone(),
        size: content.size as i64,
        media_type: media_type.to_string(),
        filename,
        created_at: now,
    };
    let row = service.storage.insert_document(&candidate).await?;
    let status = if row.id == candidate.id {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = json_bytes(&DocumentView::from(&row))?;
    // Documents are content-addressed: the answer is stored after the document, and a
    // document recorded without its answer (a crash in between) is found again by a retry.
    claim.store(status, None, &body, now).await?;
    tracing::info!(document.id = %row.id, document.sha256 = %row.sha256, document.size = row.size, "document stored");
    Ok(json_response(status, body))
}

fn multipart_problem(err: MultipartError, limit: u64) -> Problem {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return Problem::too_large(limit);
    }
    Problem::bad_request(format!("malformed multipart body: {}", err.body_text()))
}

/// The `Content-Disposition` of a served document: an attachment whose name always ends in
/// `.pdf`, whatever the uploader called it, so a saved copy never opens as something else.
/// RFC 6266 §4.3: `filename` holds an ASCII fallback (other characters become `_`) and
/// `filename*` the exact UTF-8 name, percent-encoded (RFC 8187).
pub(crate) fn pdf_attachment(stored_name: &str) -> HeaderValue {
    let mut name: String = stored_name
        .chars()
        .filter(|c| !c.is_control() && !is_deceptive_char(*c))
        .collect();
    if !name.to_ascii_lowercase().ends_with(".pdf") {
        name.push_str(".pdf");
    }
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        // RFC 8187 attr-char: ALPHA / DIGIT and a few marks; every other byte is encoded.
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or(HeaderValue::from_static(
        "attachment; filename=\"document.pdf\"",
    ))
}

/// Keeps the last path component, drops control characters, bounds the length.
pub fn clean_filename(raw: Option<&str>) -> String {
    let name = raw
        .unwrap_or("")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT_LEN)
        .collect::<String>();
    let name = name.trim();
    if name.is_empty() || name == "." || name == ".." {
        "document.pdf".to_string()
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::{clean_filename, pdf_attachment};

    #[test]
    fn served_documents_are_attachments_whose_name_ends_in_pdf() {
        let header = |name: &str| pdf_attachment(name).to_str().expect("ascii").to_string();
        assert_eq!(
            header("relance.pdf"),
            "attachment; filename=\"relance.pdf\"; filename*=UTF-8''relance.pdf"
        );
        assert_eq!(
            header("setup.exe"),
            "attachment; filename=\"setup.exe.pdf\"; filename*=UTF-8''setup.exe.pdf"
        );
        assert_eq!(
            header("mise en \"demeure\" é.PDF"),
            "attachment; filename=\"mise en _demeure_ _.PDF\"; filename*=UTF-8''mise%20en%20%22demeure%22%20%C3%A9.PDF"
        );
        assert!(header("fdp\u{202E}.exe").ends_with("fdp.exe.pdf"));
    }

    #[test]
    fn file_names_lose_paths_and_control_characters() {
        assert_eq!(clean_filename(Some("../../etc/passwd")), "passwd");
        assert_eq!(
            clean_filename(Some("C:\\Users\\x\\relance.pdf")),
            "relance.pdf"
        );
        assert_eq!(clean_filename(Some("a\u{0}b.pdf")), "ab.pdf");
        assert_eq!(clean_filename(None), "document.pdf");
        assert_eq!(clean_filename(Some("..")), "document.pdf");
    }
}
