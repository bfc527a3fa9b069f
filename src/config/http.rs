//! `[http]`: connection limits of the HTTP server and the reverse proxies it believes
//! (docs/CONFIGURATION.md, "HTTP connections" and "Client address behind a reverse proxy").

use serde::Deserialize;

use super::ConfigError;

/// Default `[http] header_read_timeout_seconds`: a client has this long to send a request's
/// whole head (request line and headers), so a slow client cannot hold a connection open.
pub const DEFAULT_HTTP_HEADER_READ_TIMEOUT_SECONDS: u64 = 10;
/// Default `[http] idle_timeout_seconds`: a keep-alive connection with no traffic is closed
/// after this long.
pub const DEFAULT_HTTP_IDLE_TIMEOUT_SECONDS: u64 = 60;
/// Default `[http] max_connections_per_address`: open connections from one client IP.
pub const DEFAULT_HTTP_MAX_CONNECTIONS_PER_ADDRESS: u32 = 64;

/// `[http]`: connection limits and trusted proxies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpSection {
    /// Connection limits of the HTTP server.
    pub limits: HttpSettings,
    /// `[http] trusted_proxies`: only a TCP peer inside one of these networks is believed
    /// when it names the client in `Forwarded` or `X-Forwarded-For`. Empty by default.
    pub trusted_proxies: Vec<Cidr>,
}

/// Connection limits of the HTTP server, so that slow or greedy clients cannot exhaust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Time allowed to receive a request's whole head.
    pub header_read_timeout: std::time::Duration,
    /// Time a connection may stay without any traffic between requests.
    pub idle_timeout: std::time::Duration,
    /// Open connections allowed per client IP address; more are closed at once.
    pub max_connections_per_address: u32,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_read_timeout: std::time::Duration::from_secs(
                DEFAULT_HTTP_HEADER_READ_TIMEOUT_SECONDS,
            ),
            idle_timeout: std::time::Duration::from_secs(DEFAULT_HTTP_IDLE_TIMEOUT_SECONDS),
            max_connections_per_address: DEFAULT_HTTP_MAX_CONNECTIONS_PER_ADDRESS,
        }
    }
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a
/// network of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: std::net::IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `address[/prefix]`; the address bits past the prefix must be zero.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: std::net::IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or network"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix must be 0 to {max}"))?,
        };
        let cidr = Cidr { network, prefix };
        if !cidr.contains(network) || cidr.masked(network) != Some(bits(network)) {
            return Err(format!(
                "{text:?} has address bits set past the /{prefix} prefix"
            ));
        }
        Ok(cidr)
    }

    /// The address bits kept by the prefix, `None` for the other IP version.
    fn masked(&self, address: std::net::IpAddr) -> Option<u128> {
        if address.is_ipv4() != self.network.is_ipv4() {
            return None;
        }
        let width = if address.is_ipv4() { 32 } else { 128 };
        let shift = width - u32::from(self.prefix);
        let value = bits(address);
        Some(if shift >= 128 {
            0
        } else {
            (value >> shift) << shift
        })
    }

    /// Whether `address` is inside the network. An IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.1`) counts as its IPv4 address.
    pub fn contains(&self, address: std::net::IpAddr) -> bool {
        let address = address.to_canonical();
        self.masked(address) == Some(self.masked(self.network).unwrap_or_default())
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn bits(address: std::net::IpAddr) -> u128 {
    match address {
        std::net::IpAddr::V4(a) => u128::from(u32::from(a)),
        std::net::IpAddr::V6(a) => u128::from(a),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileHttp {
    header_read_timeout_seconds: Option<u64>,
    idle_timeout_seconds: Option<u64>,
    max_connections_per_address: Option<u32>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
}

/// Checks `[http]`: the connection limits, then every trusted proxy network.
pub(super) fn resolve(file: &FileHttp) -> Result<HttpSection, ConfigError> {
    let limits = http_settings(file)?;
    let trusted_proxies = file
        .trusted_proxies
        .iter()
        .map(|text| Cidr::parse(text))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|message| ConfigError::Invalid {
            key: "http.trusted_proxies",
            message,
        })?;
    Ok(HttpSection {
        limits,
        trusted_proxies,
    })
}

/// Checks the `[http]` section: timeouts of 1 s to 1 h, 1 to 100000 connections per address.
fn http_settings(file: &FileHttp) -> Result<HttpSettings, ConfigError> {
    let seconds = |value: Option<u64>, default: u64, key: &'static str| {
        let value = value.unwrap_or(default);
        if (1..=3600).contains(&value) {
            Ok(std::time::Duration::from_secs(value))
        } else {
            Err(ConfigError::Invalid {
                key,
                message: format!("{value} must be between 1 and 3600"),
            })
        }
    };
    let header_read_timeout = seconds(
        file.header_read_timeout_seconds,
        DEFAULT_HTTP_HEADER_READ_TIMEOUT_SECONDS,
        "http.header_read_timeout_seconds",
    )?;
    let idle_timeout = seconds(
        file.idle_timeout_seconds,
        DEFAULT_HTTP_IDLE_TIMEOUT_SECONDS,
        "http.idle_timeout_seconds",
    )?;
    let max_connections_per_address = file
        .max_connections_per_address
        .unwrap_or(DEFAULT_HTTP_MAX_CONNECTIONS_PER_ADDRESS);
    if !(1..=100_000).contains(&max_connections_per_address) {
        return Err(ConfigError::Invalid {
            key: "http.max_connections_per_address",
            message: format!("{max_connections_per_address} must be between 1 and 100000"),
        });
    }
    Ok(HttpSettings {
        header_read_timeout,
        idle_timeout,
        max_connections_per_address,
    })
}
