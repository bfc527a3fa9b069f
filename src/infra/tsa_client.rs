//! Client for a remote RFC 3161 TSA over HTTP (RFC 3161 §3.4), e.g. a qualified
//! TSA in production.
//!
//! Every answer is checked before its token is accepted: the HTTP content type,
//! the PKIStatus, the nonce echo, the message imprint, the policy (when one is
//! configured) and the CMS signature. The certification path of the TSA is left
//! to the caller, who knows which roots to trust.

use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};

use crate::core::timestamp::{ParsedToken, TimestampError, TimestampRequest, normalize_magnitude};

/// RFC 3161 §3.4 media types.
const QUERY_TYPE: &str = "application/timestamp-query";
const REPLY_TYPE: &str = "application/timestamp-reply";

/// A remote TSA reached by HTTP POST.
#[derive(Debug, Clone)]
pub struct RemoteTsa {
    url: String,
    policy: Option<String>,
    http: reqwest::Client,
    rng: SystemRandom,
}

impl RemoteTsa {
    /// A client for the TSA at `url` (http or https), requiring `policy` in its
    /// tokens when given, with a whole-request `timeout`.
    pub fn new(
        url: &str,
        policy: Option<String>,
        timeout: Duration,
    ) -> Result<Self, TimestampError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| TimestampError::Config(format!("invalid TSA URL {url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(TimestampError::Config(format!(
                "TSA URL {url:?} must use http or https"
            )));
        }
        if let Some(p) = &policy {
            crate::core::asn1::oid(p)
                .map_err(|_| TimestampError::Config(format!("invalid TSA policy OID {p:?}")))?;
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| TimestampError::Config(format!("HTTP client: {e}")))?;
        Ok(RemoteTsa {
            url: url.to_string(),
            policy,
            http,
            rng: SystemRandom::new(),
        })
    }

    /// The TSA URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the TSA's host takes a TCP connection within `timeout` (the readiness check:
    /// asking for a token would spend one, and some TSAs bill them).
    pub async fn reachable(&self, timeout: Duration) -> Result<(), TimestampError> {
        let parsed = reqwest::Url::parse(&self.url).map_err(|e| self.http_error(e.to_string()))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| self.http_error("the URL has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| self.http_error("the URL has no port"))?;
        match tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.http_error(format!("cannot connect: {e}"))),
            Err(_) => Err(self.http_error(format!("no connection within {timeout:?}"))),
        }
    }

    fn http_error(&self, reason: impl Into<String>) -> TimestampError {
        TimestampError::Http {
            url: self.url.clone(),
            reason: reason.into(),
            source: None,
        }
    }

    /// A transport failure: its text is the reason, and the error stays as the source.
    fn transport_error(&self, error: reqwest::Error) -> TimestampError {
        TimestampError::Http {
            url: self.url.clone(),
            reason: error.to_string(),
            source: Some(Box::new(error)),
        }
    }

    /// POSTs an `application/timestamp-query` (random 64-bit nonce, certReq true),
    /// requires an `application/timestamp-reply`, checks the status, the nonce
    /// echo, the imprint, the policy when set, and the signature; returns the
    /// token DER (ContentInfo).
    pub async fn timestamp_sha256(&self, digest: [u8; 32]) -> Result<Vec<u8>, TimestampError> {
        let mut nonce = [0u8; 8];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| TimestampError::Config("system random generator failed".into()))?;
        let nonce = normalize_magnitude(&nonce);
        let mut request = TimestampRequest::for_sha256(digest, Some(nonce.clone()), true);
        request.policy = self.policy.clone();

        let mut post = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, QUERY_TYPE);
        // The request's trace goes on to the TSA (W3C Trace Context), so that its logs and
        // ours can be joined.
        if let Some(traceparent) = crate::infra::trace::outgoing_traceparent() {
            post = post.header("traceparent", traceparent);
        }
        let response = post
            .body(request.to_der())
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.http_error(format!("HTTP status {status}")));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case(REPLY_TYPE) {
            return Err(self.http_error(format!(
                "Content-Type is {content_type:?}, expected {REPLY_TYPE}"
            )));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;

        let token = ParsedToken::from_response(&body)?;
        let info = token.info();
        // RFC 3161 §2.4.2: the nonce MUST be echoed when it was in the request.
        if info.nonce.as_deref() != Some(nonce.as_slice()) {
            return Err(TimestampError::NonceMismatch);
        }
        if info.hash_algorithm != request.hash_algorithm
            || info.hashed_message != request.hashed_message
        {
            return Err(TimestampError::ImprintMismatch);
        }
        if let Some(expected) = &self.policy
            && info.policy != *expected
        {
            return Err(TimestampError::PolicyMismatch {
                expected: expected.clone(),
                found: info.policy.clone(),
            });
        }
        token.verify_signature(&[])?;
        Ok(token.token_der().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::pki::test_support::dev_pki;
    use crate::core::timestamp::{SerialNumbers, TimestampAuthority};
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::header;
    use axum::response::IntoResponse;
    use std::sync::Arc;
    use time::OffsetDateTime;

    const POLICY: &str = "1.3.6.1.4.1.99999.1.1";

    fn authority(epoch: u64) -> Arc<TimestampAuthority> {
        let tsa = dev_pki().material.tsa.clone().expect("tsa identity");
        Arc::new(TimestampAuthority::new(tsa, POLICY, SerialNumbers::new(epoch)).expect("tsa"))
    }

    async fn honest(State(tsa): State<Arc<TimestampAuthority>>, body: Bytes) -> impl IntoResponse {
        (
            [(header::CONTENT_TYPE, REPLY_TYPE)],
            tsa.respond(&body, OffsetDateTime::now_utc()),
        )
    }

    /// A TSA that answers with a different nonce (e.g. a replayed answer).
    async fn wrong_nonce(
        State(tsa): State<Arc<TimestampAuthority>>,
        body: Bytes,
    ) -> impl IntoResponse {
        let mut request = TimestampRequest::parse_der(&body).expect("request");
        request.nonce = Some(vec![0x42]);
        let token = tsa
            .issue_token(&request, OffsetDateTime::now_utc())
            .expect("token");
        let resp =
            crate::core::asn1::sequence(&[&crate::core::asn1::sequence(&[&[2, 1, 0]]), &token]);
        ([(header::CONTENT_TYPE, REPLY_TYPE)], resp)
    }

    async fn wrong_type(
        State(tsa): State<Arc<TimestampAuthority>>,
        body: Bytes,
    ) -> impl IntoResponse {
        (
            [(header::CONTENT_TYPE, "text/plain")],
            tsa.respond(&body, OffsetDateTime::now_utc()),
        )
    }

    async fn serve(tsa: Arc<TimestampAuthority>) -> String {
        let app = axum::Router::new()
            .route("/tsa", axum::routing::post(honest))
            .route("/replay", axum::routing::post(wrong_nonce))
            .route("/text", axum::routing::post(wrong_type))
            .with_state(tsa);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn remote_tsa_round_trip_and_failures() {
        let tsa = authority(7);
        let base = serve(tsa.clone()).await;
        let digest = crate::core::seal::sha256(b"evidence");
        let timeout = Duration::from_secs(10);

        let client = RemoteTsa::new(&format!("{base}/tsa"), None, timeout).expect("client");
        let token = client.timestamp_sha256(digest).await.expect("token");
        let parsed = ParsedToken::parse(&token).expect("parse");
        parsed.check_imprint(b"evidence").expect("imprint");
        assert_eq!(parsed.info().policy, POLICY);
        assert!(parsed.info().nonce.is_some());
        assert_eq!(parsed.certificates().len(), 1);

        // Policy required and matching.
        let client =
            RemoteTsa::new(&format!("{base}/tsa"), Some(POLICY.into()), timeout).expect("client");
        client.timestamp_sha256(digest).await.expect("policy ok");

        // Another policy: the TSA rejects with unacceptedPolicy.
        let client = RemoteTsa::new(&format!("{base}/tsa"), Some("1.2.3.4".into()), timeout)
            .expect("client");
        let err = client.timestamp_sha256(digest).await.expect_err("rejected");
        let msg = err.to_string();
        assert!(
            matches!(err, TimestampError::Rejected { status: 2, .. }),
            "{msg}"
        );
        assert!(msg.contains("unacceptedPolicy"), "{msg}");

        let client = RemoteTsa::new(&format!("{base}/replay"), None, timeout).expect("client");
        let err = client.timestamp_sha256(digest).await.expect_err("nonce");
        assert!(matches!(err, TimestampError::NonceMismatch), "{err}");

        let client = RemoteTsa::new(&format!("{base}/text"), None, timeout).expect("client");
        let err = client
            .timestamp_sha256(digest)
            .await
            .expect_err("content type");
        assert!(
            err.to_string()
                .contains("expected application/timestamp-reply"),
            "{err}"
        );

        let client = RemoteTsa::new(&format!("{base}/missing"), None, timeout).expect("client");
        let err = client.timestamp_sha256(digest).await.expect_err("404");
        assert!(err.to_string().contains("404"), "{err}");

        assert!(RemoteTsa::new("ftp://x", None, timeout).is_err());
        assert!(RemoteTsa::new("not a url", None, timeout).is_err());
    }
}
