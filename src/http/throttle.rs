//! Per-client rate limit of the public verification routes (`/verify`, `/v1/verify/…`), which
//! need no account and cost CPU (seal and timestamp checks, bundle hashing).
//!
//! A token bucket per client address, in memory: each address may make `per_minute`
//! requests in a burst, and regains one every `60 / per_minute` seconds. Over the limit the
//! answer is 429 with `Retry-After`. The client address is the one judged by
//! [`super::client_address`]: the TCP peer, or what one of `[http] trusted_proxies` says.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Addresses remembered before idle ones are forgotten (bounds the memory an address scan
/// can take).
const MAX_TRACKED_CLIENTS: usize = 10_000;

/// How a limited route answers a client over its limit (problem+json for the API, an HTML
/// page in the reader's language for `/verify`), given the request and the wait.
pub type Refusal = Arc<dyn Fn(&axum::http::request::Parts, Duration) -> Response + Send + Sync>;

/// Token buckets per client address.
#[derive(Debug)]
pub struct ClientThrottle {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl ClientThrottle {
    /// `per_minute` requests per client address and minute, in bursts of as many.
    pub fn new(per_minute: u32) -> ClientThrottle {
        ClientThrottle {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `client`'s bucket at `now`; `Err(wait)` when it is empty, with
    /// the time until the next request is allowed.
    pub fn admit(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        // A poisoned lock only means another request panicked mid-update; the map is still
        // a valid map of buckets.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED_CLIENTS && !buckets.contains_key(&client) {
            // Forget the addresses whose bucket has refilled: they lose nothing.
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second < capacity
            });
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let refilled =
            bucket.tokens + now.saturating_duration_since(bucket.at).as_secs_f64() * per_second;
        bucket.tokens = refilled.min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

/// Middleware: admits the request or answers with `refuse` and `Retry-After` (whole
/// seconds, at least 1).
pub async fn limit(
    State((throttle, refuse)): State<(Arc<ClientThrottle>, Refusal)>,
    request: Request,
    next: Next,
) -> Response {
    let client = super::client_address::ClientAddress::of(request.extensions());
    match throttle.admit(client, Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let seconds = wait.as_secs().saturating_add(1);
            tracing::warn!(client = %client, retry_after = seconds, "verification rate limit");
            let (parts, _) = request.into_parts();
            let mut response = refuse(&parts, wait);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            response.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_waits_for_the_refill() {
        let throttle = ClientThrottle::new(3);
        let start = Instant::now();
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        for _ in 0..3 {
            assert_eq!(throttle.admit(a, start), Ok(()));
        }
        let wait = throttle
            .admit(a, start)
            .expect_err("fourth request refused");
        assert!(
            wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        // Another address has its own bucket.
        assert_eq!(throttle.admit(b, start), Ok(()));
        // One token comes back every 20 s (3 per minute).
        assert!(throttle.admit(a, start + Duration::from_secs(10)).is_err());
        assert_eq!(throttle.admit(a, start + Duration::from_secs(21)), Ok(()));
        assert!(throttle.admit(a, start + Duration::from_secs(22)).is_err());
    }
}
