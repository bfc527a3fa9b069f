//! Conditional GET (RFC 9110 §8.8.3 `ETag`, §13.1.2 `If-None-Match`) for the files whose
//! bytes are reproducible — evidence records, seals and tokens, PDF proofs, bundles: a
//! client that has them gets `304 Not Modified` instead of the bytes again.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// `Cache-Control` of a file that never changes once it exists (evidence bytes): a cache
/// may keep it for a year without asking again; `private`, since it is behind a key.
pub const IMMUTABLE: &str = "private, max-age=31536000, immutable";

/// `Cache-Control` of a file that may be replaced as the letter goes on (proofs, bundles):
/// kept, but revalidated with its `ETag` before each use.
pub const REVALIDATE: &str = "private, no-cache";

/// A strong entity tag over `bytes`: their SHA-256 in hex, quoted.
pub fn etag_of(bytes: &[u8]) -> String {
    format!("\"{}\"", hex::encode(Sha256::digest(bytes)))
}

/// A strong entity tag from a digest already known (hex).
pub fn etag_from_digest(hex_digest: &str) -> String {
    format!("\"{hex_digest}\"")
}

/// Whether `If-None-Match` names `etag` (or is `*`): weak comparison, as §13.1.2 asks for
/// this header, so `W/"x"` matches `"x"`.
pub fn matches(headers: &HeaderMap, etag: &str) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_string();
    let ours = opaque(etag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == "*" || opaque(tag) == ours)
}

/// `304 Not Modified` with the validator and caching fields the full answer would carry.
pub fn not_modified(etag: &str, cache_control: &'static str) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    tag(&mut response, etag, cache_control);
    response
}

/// Adds `ETag` and `Cache-Control` to an answer.
pub fn tag(response: &mut Response, etag: &str, cache_control: &'static str) {
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(value).expect("ascii"),
        );
        headers
    }

    #[test]
    fn if_none_match_lists_star_and_weak_tags_match() {
        let etag = etag_of(b"evidence");
        assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() == 66);
        assert!(matches(&with(&etag), &etag));
        assert!(matches(&with(&format!("\"other\", W/{etag}")), &etag));
        assert!(matches(&with("*"), &etag));
        assert!(!matches(&with("\"other\""), &etag));
        assert!(!matches(&HeaderMap::new(), &etag));
    }

    #[test]
    fn not_modified_carries_the_validator_and_no_body() {
        let etag = etag_of(b"x");
        let response = not_modified(&etag, IMMUTABLE);
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(response.headers()[header::ETAG], etag.as_str());
        assert_eq!(response.headers()[header::CACHE_CONTROL], IMMUTABLE);
    }
}
