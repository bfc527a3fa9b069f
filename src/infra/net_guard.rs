//! Outbound requests that cannot be turned against the network (issue 12 §3).
//!
//! Webhook and witness URLs are given by tenants and operators: without a guard, a tenant
//! could register `http://169.254.169.254/…` (a cloud metadata service), `http://127.0.0.1:5432`
//! or any host of the provider's private network and use the delivery worker to reach it.
//! This module decides which addresses a request may go to, and gives the one HTTP client
//! ([`Outbound`]) through which every signed notification leaves:
//!
//! - [`non_public_reason`] classifies an address after the IANA IPv4 and IPv6 Special-Purpose
//!   Address Registries (RFC 6890 and its updates): loopback, private, shared (CGNAT),
//!   link-local, documentation, benchmarking, multicast, reserved and unspecified addresses
//!   are not public; an IPv6 address embedding an IPv4 one (IPv4-mapped, IPv4-compatible,
//!   NAT64, 6to4, Teredo) is judged by the IPv4 address it carries.
//! - [`OutboundPolicy`] adds the operator's `[outbound] allowed_private` ranges (on-premise
//!   receivers) and, outside development, requires https.
//! - At registration, [`OutboundPolicy::check_url`] refuses literal non-public addresses,
//!   in every form URL parsers and resolvers accept (`2130706433`, `0x7f.1`, `127.1`,
//!   `[::ffff:7f00:1]`…), and metadata or loopback host names ([`refused_name`]).
//! - At delivery, [`Outbound`] resolves the host itself, refuses the request when **any**
//!   resolved address is not allowed, and hands exactly the checked addresses to the
//!   connection: there is no second resolution, so no DNS-rebinding window. This happens on
//!   every new connection. Redirects are not followed and no proxy is used (a proxy would
//!   resolve the name again, out of our sight).
//!
//! The rules that need no I/O (address classes, ranges, the policy and the URL check) are
//! in [`crate::config::outbound`], which the settings use too; they are re-exported here.
//!
//! What a tenant sees of a failure is one of [`UNREACHABLE`], [`REFUSED`], [`TIMEOUT`] or
//! `HTTP <status>`: never an OS error, nor a resolved address that would map the network.
//! The details go to the server log only.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Failure text shown when the receiver could not be reached (name unknown, connection
/// refused or reset, TLS failure).
pub const UNREACHABLE: &str = "unreachable";
/// Failure text shown when the host is, or resolves to, an address that is not public.
pub const REFUSED: &str = "refused: address not public";
/// Failure text shown when the receiver did not answer in time.
pub const TIMEOUT: &str = "timeout";
/// Time allowed to open a connection (resolution included).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for a whole attempt: connection, request and answer.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

pub use crate::config::outbound::{
    IpRange, OutboundPolicy, is_public, mapped_v4, non_public_reason, non_public_v4, non_public_v6,
    parse_ip_literal, refused_name,
};

/// Resolves a host name into addresses (the system resolver, or one given by tests).
pub trait Lookup: Send + Sync {
    /// The addresses of `host`.
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
}

/// The operating system's resolver (`getaddrinfo`, through tokio).
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        Box::pin(async move {
            let addresses = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addresses.map(|a| a.ip()).collect())
        })
    }
}

/// The error of a refused request: its host is, or resolves to, an address not permitted.
#[derive(Debug, thiserror::Error)]
#[error("refused: {0}")]
pub struct Refused(String);

/// The resolver given to the HTTP client: resolves once, checks every address, and returns
/// exactly those to connect to.
struct GuardedResolver {
    policy: Arc<OutboundPolicy>,
    lookup: Arc<dyn Lookup>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(resolve_checked(
            name.as_str().to_string(),
            self.policy.clone(),
            self.lookup.clone(),
        ))
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn resolve_checked(
    host: String,
    policy: Arc<OutboundPolicy>,
    lookup: Arc<dyn Lookup>,
) -> Result<reqwest::dns::Addrs, BoxError> {
    if let Some(reason) = refused_name(&host) {
        return Err(Box::new(Refused(format!("{host} is {reason}"))));
    }
    let addresses = match parse_ip_literal(&host) {
        Some(ip) => vec![ip],
        None => lookup.lookup(host.clone()).await?,
    };
    if addresses.is_empty() {
        return Err(Box::new(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} has no address"),
        )));
    }
    // One refused address refuses them all: the connection must not depend on which one
    // happens to be tried.
    if let Some(ip) = addresses.iter().find(|ip| !policy.permits(**ip)) {
        let reason = non_public_reason(*ip).unwrap_or("not public");
        return Err(Box::new(Refused(format!(
            "{host} resolves to {ip}, {reason}"
        ))));
    }
    Ok(Box::new(
        addresses.into_iter().map(|ip| SocketAddr::new(ip, 0)),
    ))
}

/// The HTTP client of every outbound notification: guarded resolution, no redirects, no
/// proxy, [`CONNECT_TIMEOUT`] and [`ATTEMPT_TIMEOUT`].
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    policy: Arc<OutboundPolicy>,
}

/// The answer to one outbound POST, as a delivery log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostOutcome {
    /// HTTP status, when the receiver answered.
    pub status: Option<u16>,
    /// What a tenant may read of a failure ([`UNREACHABLE`], [`REFUSED`], [`TIMEOUT`],
    /// `HTTP <status>`); `None` on a 2xx answer.
    pub error: Option<String>,
}

impl Outbound {
    /// A client resolving names with the system resolver.
    pub fn new(policy: OutboundPolicy) -> Result<Outbound, reqwest::Error> {
        Outbound::with_lookup(policy, Arc::new(SystemLookup))
    }

    /// A client resolving names with `lookup` (tests give a fixed table).
    pub fn with_lookup(
        policy: OutboundPolicy,
        lookup: Arc<dyn Lookup>,
    ) -> Result<Outbound, reqwest::Error> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(ATTEMPT_TIMEOUT)
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
                lookup,
            }))
            .user_agent(concat!("recommande-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Outbound { client, policy })
    }

    /// The policy this client enforces.
    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// POSTs `body` to `url` with `headers`. A literal address in the URL is checked here
    /// (the connector does not resolve it); a name is checked by the resolver on each new
    /// connection.
    pub async fn post(
        &self,
        url: &str,
        headers: reqwest::header::HeaderMap,
        body: Vec<u8>,
    ) -> PostOutcome {
        let failed = |error: &str| PostOutcome {
            status: None,
            error: Some(error.to_string()),
        };
        let Ok(parsed) = reqwest::Url::parse(url) else {
            tracing::warn!("outbound request to an unparsable URL not sent");
            return failed(UNREACHABLE);
        };
        if !matches!(parsed.scheme(), "http" | "https") {
            return failed(UNREACHABLE);
        }
        let Some(host) = parsed.host_str().map(str::to_string) else {
            return failed(UNREACHABLE);
        };
        if let Some(reason) = self.policy.refuse_host(&host) {
            tracing::warn!(outbound.host = %host, reason, "outbound request refused");
            return failed(REFUSED);
        }
        let result = self
            .client
            .post(parsed)
            .headers(headers)
            .body(body)
            .send()
            .await;
        match result {
            Ok(response) if response.status().is_success() => PostOutcome {
                status: Some(response.status().as_u16()),
                error: None,
            },
            Ok(response) => PostOutcome {
                status: Some(response.status().as_u16()),
                error: Some(format!("HTTP {}", response.status().as_u16())),
            },
            Err(e) => {
                // Without the URL: it may carry a token of the receiver's. The details
                // (OS error, resolved addresses) stay in this log.
                let e = e.without_url();
                let detail = describe(&e);
                let shown = if is_refusal(&e) {
                    REFUSED
                } else if e.is_timeout() {
                    TIMEOUT
                } else {
                    UNREACHABLE
                };
                tracing::warn!(outbound.host = %host, error = %detail, shown, "outbound request failed");
                failed(shown)
            }
        }
    }
}

fn is_refusal(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause.downcast_ref::<Refused>().is_some() {
            return true;
        }
        source = cause.source();
    }
    false
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text.chars().take(500).collect()
}
