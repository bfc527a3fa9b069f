//! Request quotas per tenant and per client address (issue 12 §2), configured in
//! `[rate_limits]`: deposits, batches, document uploads and all authenticated API calls per
//! tenant; refused API keys, recipient routes and code requests per client address; code
//! requests per letter link.
//!
//! Each quota is a token bucket of `q` requests refilled evenly over its window of `w`
//! seconds, kept in memory by this process (several instances each count on their own). At
//! most [`MAX_TRACKED_KEYS`] tenants, addresses or links are remembered per quota: past that,
//! buckets that have refilled are forgotten first, then the fullest one.
//!
//! Answers say where the client stands with the fields of the IETF draft
//! draft-ietf-httpapi-ratelimit-headers (revision 10, structured fields of RFC 9651):
//! `RateLimit-Policy: "deposits";q=600;w=60` names every quota that applied to the request
//! and `RateLimit: "deposits";r=599;t=1` gives what remains of each (`r`) and the seconds
//! until the bucket is full again (`t`). Over a quota the answer is 429 with `Retry-After`
//! (RFC 9110 §10.2.3): problem+json for the API, an HTML page in the reader's language for
//! the recipient pages.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::client_address::ClientAddress;
use super::problem::Problem;
use super::throttle::Refusal;
use crate::config::RateLimitSettings;

/// Keys remembered per quota before idle ones are forgotten (bounds the memory an address
/// scan or a flood of links can take).
pub const MAX_TRACKED_KEYS: usize = 10_000;

/// One quota: its name in the `RateLimit` fields, `quota` requests per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Name in `RateLimit-Policy` and `RateLimit`, and in the 429's detail.
    pub name: &'static str,
    /// What the quota counts, for the 429's detail ("per tenant", "per address").
    pub per: &'static str,
    /// Requests per window (the bucket's size).
    pub quota: u32,
    /// The window over which a spent quota comes back.
    pub window: Duration,
}

/// Where one key stands with one quota after a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing {
    /// The quota.
    pub policy: Policy,
    /// Whole requests left.
    pub remaining: u32,
    /// Until the bucket is full again.
    pub reset: Duration,
    /// `Some(wait)` when the request is refused: the time until the next one is allowed.
    pub refused: Option<Duration>,
}

impl Standing {
    /// The `Retry-After` of a refusal: whole seconds, at least 1.
    pub fn retry_after_seconds(&self) -> u64 {
        self.refused.map_or(0, |wait| ceil_seconds(wait).max(1))
    }

    /// The 429 problem of a refusal, naming the quota.
    pub fn problem(&self) -> Problem {
        let seconds = self.retry_after_seconds();
        let mut problem = Problem::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            format!(
                "the {} limit of {} requests per {} s {} is reached; retry in {seconds} s (see Retry-After)",
                self.policy.name,
                self.policy.quota,
                self.policy.window.as_secs(),
                self.policy.per,
            ),
        );
        problem.retry_after = Some(seconds);
        problem
    }
}

fn ceil_seconds(d: Duration) -> u64 {
    let whole = d.as_secs();
    if d.subsec_nanos() > 0 {
        whole.saturating_add(1)
    } else {
        whole
    }
}

/// Token buckets of one quota, per key.
#[derive(Debug)]
pub struct Limiter<K> {
    policy: Policy,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl<K: Eq + Hash + Clone> Limiter<K> {
    /// Buckets of `policy` (a quota of 0 counts as 1).
    pub fn new(mut policy: Policy) -> Limiter<K> {
        policy.quota = policy.quota.max(1);
        if policy.window.is_zero() {
            policy.window = Duration::from_secs(1);
        }
        Limiter {
            policy,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The quota.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    fn per_second(&self) -> f64 {
        f64::from(self.policy.quota) / self.policy.window.as_secs_f64()
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let tokens = bucket.tokens
            + now.saturating_duration_since(bucket.at).as_secs_f64() * self.per_second();
        tokens.min(f64::from(self.policy.quota))
    }

    fn standing(&self, tokens: f64, refused: bool) -> Standing {
        let capacity = f64::from(self.policy.quota);
        let per_second = self.per_second();
        Standing {
            policy: self.policy,
            // Whole tokens only; the float is within 0..=quota.
            remaining: tokens.floor().clamp(0.0, capacity) as u32,
            reset: Duration::from_secs_f64(((capacity - tokens) / per_second).max(0.0)),
            refused: refused
                .then(|| Duration::from_secs_f64(((1.0 - tokens) / per_second).max(0.0))),
        }
    }

    /// Takes one request from `key`'s bucket at `now`, or refuses when it is empty.
    pub fn take(&self, key: &K, now: Instant) -> Standing {
        // A poisoned lock only means another request panicked mid-update; the map is still
        // a valid map of buckets.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED_KEYS && !buckets.contains_key(key) {
            self.make_room(&mut buckets, now);
        }
        let capacity = f64::from(self.policy.quota);
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let tokens = self.refilled(bucket, now);
        bucket.at = now;
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            self.standing(bucket.tokens, false)
        } else {
            bucket.tokens = tokens;
            self.standing(tokens, true)
        }
    }

    /// Where `key` stands at `now`, without taking anything: refused when its bucket holds
    /// less than one request.
    pub fn peek(&self, key: &K, now: Instant) -> Standing {
        let buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tokens = buckets
            .get(key)
            .map_or(f64::from(self.policy.quota), |b| self.refilled(b, now));
        self.standing(tokens, tokens < 1.0)
    }

    /// Number of keys remembered.
    pub fn tracked(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Forgets the buckets that have refilled (their keys lose nothing); when every key is
    /// still spending, forgets the fullest bucket, whose key gains the least by it.
    fn make_room(&self, buckets: &mut HashMap<K, Bucket>, now: Instant) {
        let capacity = f64::from(self.policy.quota);
        buckets.retain(|_, b| self.refilled(b, now) < capacity);
        if buckets.len() >= MAX_TRACKED_KEYS {
            let fullest = buckets
                .iter()
                .max_by(|a, b| self.refilled(a.1, now).total_cmp(&self.refilled(b.1, now)))
                .map(|(k, _)| k.clone());
            if let Some(key) = fullest {
                buckets.remove(&key);
            }
        }
    }
}

/// Every quota of `[rate_limits]`, shared by all requests of one router.
#[derive(Debug)]
pub struct RateLimits {
    /// All authenticated API calls, per tenant.
    pub api: Limiter<String>,
    /// `POST /v1/letters`, per tenant.
    pub deposits: Limiter<String>,
    /// `POST /v1/batches`, per tenant.
    pub batches: Limiter<String>,
    /// `POST /v1/documents`, per tenant.
    pub documents: Limiter<String>,
    /// Refused API keys, per client address.
    pub failed_auth: Limiter<IpAddr>,
    /// Recipient pages and API, per client address.
    pub recipient: Limiter<IpAddr>,
    /// Code requests, per letter link (SHA-256 of the link token: no secret kept here).
    pub otp_letter: Limiter<[u8; 32]>,
    /// Code requests, per client address.
    pub otp_address: Limiter<IpAddr>,
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

impl RateLimits {
    /// The quotas of `settings`.
    pub fn new(settings: &RateLimitSettings) -> RateLimits {
        let policy = |name, per, quota, window| Policy {
            name,
            per,
            quota,
            window,
        };
        RateLimits {
            api: Limiter::new(policy("api", "per tenant", settings.api_per_minute, MINUTE)),
            deposits: Limiter::new(policy(
                "deposits",
                "per tenant",
                settings.deposits_per_minute,
                MINUTE,
            )),
            batches: Limiter::new(policy(
                "batches",
                "per tenant",
                settings.batches_per_minute,
                MINUTE,
            )),
            documents: Limiter::new(policy(
                "documents",
                "per tenant",
                settings.documents_per_minute,
                MINUTE,
            )),
            failed_auth: Limiter::new(policy(
                "failed-auth",
                "of refused API keys per client address",
                settings.failed_auth_per_minute,
                MINUTE,
            )),
            recipient: Limiter::new(policy(
                "recipient",
                "per client address",
                settings.recipient_per_minute,
                MINUTE,
            )),
            otp_letter: Limiter::new(policy(
                "otp-letter",
                "of code requests per letter",
                settings.otp_per_letter_per_hour,
                HOUR,
            )),
            otp_address: Limiter::new(policy(
                "otp-address",
                "of code requests per client address",
                settings.otp_per_address_per_hour,
                HOUR,
            )),
        }
    }

    /// The tenant quotas that apply to `method path` besides the general one.
    pub fn tenant_route(&self, method: &Method, path: &str) -> Option<&Limiter<String>> {
        if method != Method::POST {
            return None;
        }
        match path.trim_end_matches('/') {
            "/v1/letters" => Some(&self.deposits),
            "/v1/batches" => Some(&self.batches),
            "/v1/documents" => Some(&self.documents),
            _ => None,
        }
    }
}

/// What one request learnt of its quotas, for the response's `RateLimit` fields; shared
/// between [`attach`] and whatever checks a quota (the API key extractor, the recipient
/// middleware), through the request's extensions.
#[derive(Debug, Clone)]
pub struct RateContext {
    /// The quotas.
    pub limits: Arc<RateLimits>,
    /// The client's address.
    pub client: IpAddr,
    standings: Arc<Mutex<Vec<Standing>>>,
}

impl RateContext {
    /// Notes `standing` for the response's fields (one entry per quota, the last wins).
    pub fn note(&self, standing: Standing) {
        let mut standings = self
            .standings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        standings.retain(|s| s.policy.name != standing.policy.name);
        standings.push(standing);
    }

    fn standings(&self) -> Vec<Standing> {
        self.standings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Middleware: gives the request its [`RateContext`], then writes the quotas it met into
/// the response's `RateLimit-Policy` and `RateLimit` fields.
pub async fn attach(
    State(limits): State<Arc<RateLimits>>,
    mut request: Request,
    next: Next,
) -> Response {
    let context = RateContext {
        limits,
        client: ClientAddress::of(request.extensions()),
        standings: Arc::new(Mutex::new(Vec::new())),
    };
    request.extensions_mut().insert(context.clone());
    let mut response = next.run(request).await;
    let standings = context.standings();
    if !standings.is_empty() {
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&policy_field(&standings)) {
            headers.insert("ratelimit-policy", value);
        }
        if let Ok(value) = HeaderValue::from_str(&limit_field(&standings)) {
            headers.insert("ratelimit", value);
        }
    }
    response
}

/// `RateLimit-Policy`: a list of `"name";q=…;w=…`.
pub fn policy_field(standings: &[Standing]) -> String {
    standings
        .iter()
        .map(|s| {
            format!(
                "\"{}\";q={};w={}",
                s.policy.name,
                s.policy.quota,
                s.policy.window.as_secs()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `RateLimit`: a list of `"name";r=…;t=…`.
pub fn limit_field(standings: &[Standing]) -> String {
    standings
        .iter()
        .map(|s| {
            format!(
                "\"{}\";r={};t={}",
                s.policy.name,
                s.remaining,
                ceil_seconds(s.reset)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The per-address quota of the recipient routes, and on a code request (`POST …/otp`,
/// `POST /r/{token}/code`) the quotas per letter link and per address. `refuse` answers a
/// refusal (problem+json or an HTML page); `Retry-After` is added here.
pub async fn recipient(State(refuse): State<Refusal>, request: Request, next: Next) -> Response {
    let Some(context) = request.extensions().get::<RateContext>().cloned() else {
        return next.run(request).await;
    };
    let now = Instant::now();
    let mut standings = vec![context.limits.recipient.take(&context.client, now)];
    if let Some(token) = code_request_token(request.method(), request.uri().path()) {
        let link: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        standings.push(context.limits.otp_address.take(&context.client, now));
        standings.push(context.limits.otp_letter.take(&link, now));
    }
    for standing in &standings {
        context.note(*standing);
    }
    let Some(refused) = standings.iter().find(|s| s.refused.is_some()) else {
        return next.run(request).await;
    };
    let seconds = refused.retry_after_seconds();
    tracing::warn!(
        client = %context.client,
        limit = refused.policy.name,
        retry_after = seconds,
        "recipient rate limit"
    );
    let (parts, _) = request.into_parts();
    let mut response = refuse(&parts, Duration::from_secs(seconds));
    response
        .headers_mut()
        .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(seconds));
    response.into_response()
}

/// The link token of a code request, `None` for any other request.
fn code_request_token<'a>(method: &Method, path: &'a str) -> Option<&'a str> {
    if method != Method::POST {
        return None;
    }
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        ["", "r", token, "code"] | ["", "v1", "recipient", token, "otp"] => Some(token),
        _ => None,
    }
}

/// The refusal of the recipient JSON API: the 429 problem naming the quota.
pub fn api_refusal() -> Refusal {
    Arc::new(|parts, wait| {
        let standing = parts
            .extensions
            .get::<RateContext>()
            .and_then(|c| c.standings().into_iter().find(|s| s.refused.is_some()));
        match standing {
            Some(standing) => standing.problem().into_response(),
            None => Problem::rate_limited(wait).into_response(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(quota: u32, seconds: u64) -> Policy {
        Policy {
            name: "test",
            per: "per test",
            quota,
            window: Duration::from_secs(seconds),
        }
    }

    #[test]
    fn a_key_spends_its_quota_then_waits_for_the_refill() {
        let limiter = Limiter::<u32>::new(policy(3, 60));
        let start = Instant::now();
        let remaining: Vec<u32> = (0..3).map(|_| limiter.take(&1, start).remaining).collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = limiter.take(&1, start);
        let wait = refused.refused.expect("fourth request refused");
        assert_eq!(wait, Duration::from_secs(20));
        assert_eq!(refused.retry_after_seconds(), 20);
        assert_eq!(refused.reset, Duration::from_secs(60));
        // Another key has its own bucket.
        assert_eq!(limiter.take(&2, start).refused, None);
        // One request comes back every 20 s.
        assert!(
            limiter
                .take(&1, start + Duration::from_secs(10))
                .refused
                .is_some()
        );
        let later = limiter.take(&1, start + Duration::from_secs(21));
        assert_eq!(later.refused, None);
        assert_eq!(later.remaining, 0);
    }

    #[test]
    fn peeking_takes_nothing() {
        let limiter = Limiter::<u32>::new(policy(2, 60));
        let now = Instant::now();
        assert_eq!(limiter.peek(&1, now).remaining, 2);
        assert_eq!(limiter.tracked(), 0, "a peek remembers nothing");
        limiter.take(&1, now);
        limiter.take(&1, now);
        assert!(limiter.peek(&1, now).refused.is_some());
        assert!(
            limiter
                .peek(&1, now + Duration::from_secs(31))
                .refused
                .is_none()
        );
    }

    #[test]
    fn memory_stays_bounded_under_a_scan_of_keys() {
        let limiter = Limiter::<u32>::new(policy(5, 60));
        let now = Instant::now();
        for key in 0..(MAX_TRACKED_KEYS as u32 + 500) {
            limiter.take(&key, now);
        }
        assert!(
            limiter.tracked() <= MAX_TRACKED_KEYS,
            "{}",
            limiter.tracked()
        );
        // A key spending hard is not the one forgotten.
        let busy = u32::MAX;
        for _ in 0..5 {
            limiter.take(&busy, now);
        }
        for key in 0..100u32 {
            limiter.take(&(key + 1_000_000), now);
        }
        assert!(limiter.take(&busy, now).refused.is_some());
    }

    #[test]
    fn fields_follow_the_draft_syntax() {
        let limiter = Limiter::<u32>::new(Policy {
            name: "deposits",
            per: "per tenant",
            quota: 600,
            window: MINUTE,
        });
        let standing = limiter.take(&1, Instant::now());
        assert_eq!(policy_field(&[standing]), "\"deposits\";q=600;w=60");
        assert_eq!(limit_field(&[standing]), "\"deposits\";r=599;t=1");
    }

    #[test]
    fn deposits_batches_and_uploads_have_their_own_tenant_quota() {
        let limits = RateLimits::new(&RateLimitSettings::default());
        let name = |method: Method, path: &str| {
            limits.tenant_route(&method, path).map(|l| l.policy().name)
        };
        assert_eq!(name(Method::POST, "/v1/letters"), Some("deposits"));
        assert_eq!(name(Method::POST, "/v1/batches"), Some("batches"));
        assert_eq!(name(Method::POST, "/v1/documents"), Some("documents"));
        assert_eq!(name(Method::GET, "/v1/letters"), None);
        assert_eq!(name(Method::POST, "/v1/batches/x/cancel"), None);
        assert_eq!(limits.deposits.policy().quota, 600);
        assert_eq!(limits.otp_letter.policy().window, HOUR);
    }

    #[test]
    fn only_code_requests_are_counted_as_such() {
        assert_eq!(
            code_request_token(&Method::POST, "/r/abc/code"),
            Some("abc")
        );
        assert_eq!(
            code_request_token(&Method::POST, "/v1/recipient/abc/otp"),
            Some("abc")
        );
        assert_eq!(code_request_token(&Method::GET, "/r/abc/code"), None);
        assert_eq!(code_request_token(&Method::POST, "/r/abc/session"), None);
    }
}
