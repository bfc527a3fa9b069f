//! `[outbound]` and the rules of outbound requests. Where they may go, decided without any I/O: which addresses are public
//! (after the IANA Special-Purpose Address Registries), the operator's allowed ranges
//! (`[outbound] allowed_private`), and the checks of a receiver URL and signing secret made
//! when a webhook or witness is registered or configured. The HTTP client that applies the
//! policy at delivery is `crate::infra::net_guard::Outbound` (issue 12 §3).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Deserialize;

use super::ConfigError;

/// Shortest and longest signing secret accepted.
pub const SECRET_LENGTH: std::ops::RangeInclusive<usize> = 16..=256;
/// Longest webhook URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Why an IPv4 address is not public, after the IANA IPv4 Special-Purpose Address Registry
/// (RFC 6890 §2.2.2 and its updates); `None` for a public address.
pub fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "\"this network\" 0.0.0.0/8 (RFC 791, RFC 6890)",
        (10, _, _) => "private 10.0.0.0/8 (RFC 1918)",
        (100, 64..=127, _) => "shared address space 100.64.0.0/10 (RFC 6598)",
        (127, _, _) => "loopback 127.0.0.0/8 (RFC 1122)",
        (169, 254, _) => "link-local 169.254.0.0/16 (RFC 3927)",
        (172, 16..=31, _) => "private 172.16.0.0/12 (RFC 1918)",
        (192, 0, 0) => "IETF protocol assignments 192.0.0.0/24 (RFC 6890)",
        (192, 0, 2) => "documentation 192.0.2.0/24 (RFC 5737)",
        (192, 88, 99) => "6to4 relay anycast 192.88.99.0/24 (RFC 7526)",
        (192, 168, _) => "private 192.168.0.0/16 (RFC 1918)",
        (198, 18..=19, _) => "benchmarking 198.18.0.0/15 (RFC 2544)",
        (198, 51, 100) => "documentation 198.51.100.0/24 (RFC 5737)",
        (203, 0, 113) => "documentation 203.0.113.0/24 (RFC 5737)",
        (224..=239, _, _) => "multicast 224.0.0.0/4 (RFC 5771)",
        (255, 255, 255) if ip == Ipv4Addr::BROADCAST => "limited broadcast (RFC 919)",
        (240..=255, _, _) => "reserved 240.0.0.0/4 (RFC 1112)",
        _ => return None,
    })
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped `::ffff:a.b.c.d` (RFC 4291
/// §2.5.5.2) and the deprecated IPv4-compatible `::a.b.c.d` (§2.5.5.1). The other embedding
/// forms (NAT64, 6to4, Teredo) are judged by [`non_public_reason`] without being equivalent.
pub fn mapped_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(v4),
        // `::` and `::1` are IPv6's own unspecified and loopback addresses.
        [0, 0, 0, 0, 0, 0, _, _] if u32::from(v4) > 1 => Some(v4),
        _ => None,
    }
}

/// Why an IPv6 address is not public, after the IANA IPv6 Special-Purpose Address Registry
/// (RFC 6890 §2.2.3 and its updates); `None` for a public address. Only global unicast
/// (2000::/3, RFC 4291 §2.4) can be public: everything outside it is unallocated or special.
pub fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified :: (RFC 4291)");
    }
    if ip.is_loopback() {
        return Some("loopback ::1 (RFC 4291)");
    }
    if let Some(v4) = mapped_v4(ip) {
        return non_public_v4(v4).map(|_| "an IPv4-mapped or IPv4-compatible non-public address");
    }
    let s = ip.segments();
    let embedded = |v4: Ipv4Addr, what: &'static str| non_public_v4(v4).map(|_| what);
    let v4_at = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // NAT64 well-known prefix (RFC 6052 §2.1): the last 32 bits are the IPv4 address.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
            return embedded(
                v4_at(hi, lo),
                "NAT64 of a non-public IPv4 address (RFC 6052)",
            );
        }
        // Local-use NAT64 prefix (RFC 8215): translates into a private network.
        [0x64, 0xff9b, 1, ..] => return Some("local-use NAT64 64:ff9b:1::/48 (RFC 8215)"),
        // Discard-only (RFC 6666).
        [0x100, 0, 0, 0, ..] => return Some("discard-only 100::/64 (RFC 6666)"),
        // Teredo (RFC 4380 §4): the server's IPv4 in bits 32–63, the client's, inverted, in
        // the last 32 bits.
        [0x2001, 0, server_hi, server_lo, _, _, client_hi, client_lo] => {
            return embedded(
                v4_at(server_hi, server_lo),
                "Teredo with a non-public IPv4 server (RFC 4380)",
            )
            .or_else(|| {
                embedded(
                    v4_at(!client_hi, !client_lo),
                    "Teredo with a non-public IPv4 client (RFC 4380)",
                )
            });
        }
        // 6to4 (RFC 3056 §2): the IPv4 address in bits 16–47.
        [0x2002, hi, lo, ..] => {
            return embedded(
                v4_at(hi, lo),
                "6to4 of a non-public IPv4 address (RFC 3056)",
            );
        }
        [0x2001, 2, 0, ..] => return Some("benchmarking 2001:2::/48 (RFC 5180)"),
        [0x2001, 0x10..=0x2f, ..] => return Some("ORCHID 2001:10::/28, 2001:20::/28 (RFC 7343)"),
        [0x2001, 0xdb8, ..] => return Some("documentation 2001:db8::/32 (RFC 3849)"),
        [0x3fff, 0..=0x0fff, ..] => return Some("documentation 3fff::/20 (RFC 9637)"),
        [0x5f00, ..] => return Some("SRv6 SIDs 5f00::/16 (RFC 9602)"),
        _ => {}
    }
    Some(match s[0] {
        0x2000..=0x3fff => return None,
        0xfc00..=0xfdff => "unique local fc00::/7 (RFC 4193)",
        0xfe80..=0xfebf => "link-local fe80::/10 (RFC 4291)",
        0xfec0..=0xfeff => "site-local fec0::/10 (RFC 3879)",
        0xff00..=0xffff => "multicast ff00::/8 (RFC 4291)",
        _ => "outside global unicast 2000::/3 (RFC 4291)",
    })
}

/// Why `ip` is not public; `None` when it is.
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

/// Whether `ip` is a public address.
pub fn is_public(ip: IpAddr) -> bool {
    non_public_reason(ip).is_none()
}

/// Host names that must never be called, whatever they resolve to: loopback names
/// (`localhost`, `*.localhost`, RFC 6761 §6.3) and the names of cloud metadata services
/// (`metadata`, `metadata.google.internal`, `instance-data`, any `*.internal`).
pub fn refused_name(host: &str) -> Option<&'static str> {
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return Some("a loopback name (RFC 6761)");
    }
    if name == "metadata" || name == "instance-data" || name.ends_with(".internal") {
        return Some("a cloud metadata or internal name");
    }
    None
}

/// Reads `host` the way `inet_aton(3)` — hence most OS resolvers — and the WHATWG URL
/// standard read an IPv4 address: one to four parts, each decimal, octal (leading `0`) or
/// hexadecimal (`0x`), the last one filling the remaining bytes (`127.1`, `0x7f.1`,
/// `2130706433`, `017700000001`); or an IPv6 address, bracketed or not. `None` when `host`
/// is a name.
pub fn parse_ip_literal(host: &str) -> Option<IpAddr> {
    let host = host.trim_end_matches('.');
    let inner = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(v6) = inner.parse::<Ipv6Addr>() {
        return Some(IpAddr::V6(v6));
    }
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        numbers.push(parse_ipv4_number(part)?);
    }
    let (last, head) = numbers.split_last()?;
    if head.iter().any(|n| *n > 255) {
        return None;
    }
    let room = 8 * (4 - head.len() as u32);
    if room < 32 && *last >= 1u64 << room {
        return None;
    }
    if *last > u64::from(u32::MAX) {
        return None;
    }
    let mut value = *last;
    for (i, n) in head.iter().enumerate() {
        value |= n << (24 - 8 * i as u32);
    }
    u32::try_from(value)
        .ok()
        .map(|v| IpAddr::V4(Ipv4Addr::from(v)))
}

fn parse_ipv4_number(part: &str) -> Option<u64> {
    if part.is_empty() || part.len() > 34 {
        return None;
    }
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() {
        // `0x` alone is zero for the URL standard.
        return (radix == 16).then_some(0);
    }
    u64::from_str_radix(digits, radix).ok()
}

/// An address range `address/prefix` (`10.0.0.0/8`, `fd00::/8`, `127.0.0.1` = `/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Whether `ip` lies in the range (an IPv4 range never holds an IPv6 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(ip) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(ip) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl std::str::FromStr for IpRange {
    type Err = String;

    fn from_str(text: &str) -> Result<IpRange, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not a range such as 10.0.0.0/8 or fd00::/8"))?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {width}"))?,
        };
        let range = IpRange { network, prefix };
        let masked = match network {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        };
        // Host bits set (10.0.0.1/8): almost always a typo for another range.
        if masked != network {
            return Err(format!(
                "{text:?} has bits set after the prefix: write the network address"
            ));
        }
        Ok(range)
    }
}

/// Where outbound requests may go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// Non-public ranges the operator allows (`[outbound] allowed_private`), for receivers
    /// on the provider's own premises.
    pub allowed_private: Vec<IpRange>,
    /// Whether URLs must be https (outside development: the development PKI allows http).
    pub require_https: bool,
}

impl OutboundPolicy {
    /// Whether a connection to `ip` is allowed: public, or inside an allowed range (an
    /// IPv4-mapped address is judged as the IPv4 address it stands for).
    pub fn permits(&self, ip: IpAddr) -> bool {
        let v4 = match ip {
            IpAddr::V6(v6) => mapped_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let allowed = |ip: IpAddr| self.allowed_private.iter().any(|r| r.contains(ip));
        is_public(ip) || allowed(ip) || v4.is_some_and(allowed)
    }

    /// Why a connection to `host` (a URL's host: a name, an IPv4 address or a bracketed
    /// IPv6 address) is refused before any resolution, if it is.
    pub fn refuse_host(&self, host: &str) -> Option<String> {
        if let Some(reason) = refused_name(host) {
            return Some(format!("must not name {reason}"));
        }
        let ip = parse_ip_literal(host)?;
        if self.permits(ip) {
            return None;
        }
        let reason = non_public_reason(ip).unwrap_or("not public");
        Some(format!(
            "must not name a non-public address: {ip} is {reason}; list on-premise ranges in [outbound] allowed_private"
        ))
    }

    /// Checks a receiver URL at registration: an absolute http(s) URL
    /// ([`check_url`]), https unless in development, whose host is not a
    /// refused name nor a literal address outside what the policy permits. Returns the
    /// normalised URL. Names are resolved at delivery, not here.
    pub fn check_url(&self, raw: &str) -> Result<String, String> {
        let normalised = check_url(raw).map_err(str::to_string)?;
        let url = reqwest::Url::parse(&normalised)
            .map_err(|_| "must be an absolute URL such as https://example.fr/hooks/lre")?;
        if self.require_https && url.scheme() != "https" {
            return Err(
                "must use https (plain http is accepted with the development PKI only)".into(),
            );
        }
        match url.host_str() {
            None => Err("must name a host".into()),
            Some(host) => match self.refuse_host(host) {
                Some(reason) => Err(reason),
                None => Ok(normalised),
            },
        }
    }
}

/// A signing secret: 16 to 256 visible characters without spaces.
pub fn check_secret(secret: &str) -> Result<(), String> {
    let length = secret.chars().count();
    if !SECRET_LENGTH.contains(&length) {
        return Err(format!(
            "must have {} to {} characters",
            SECRET_LENGTH.start(),
            SECRET_LENGTH.end()
        ));
    }
    if secret.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    Ok(())
}

/// An absolute http(s) URL with a host, without credentials (they would be shown in every
/// listing) nor fragment (never sent).
pub fn check_url(raw: &str) -> Result<String, &'static str> {
    if raw.len() > MAX_URL_LEN {
        return Err("must be at most 2048 characters");
    }
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|_| "must be an absolute URL such as https://example.fr/hooks/lre")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must use http or https");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; authenticate deliveries with the signature");
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment");
    }
    Ok(url.to_string())
}

/// `[outbound]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundSettings {
    /// `[outbound] allowed_private`: non-public address ranges webhook and witness
    /// deliveries may reach (on-premise receivers); none by default (see
    /// src/infra/net_guard.rs).
    pub allowed_private: Vec<IpRange>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileOutbound {
    /// A list of ranges, or (from the environment) one string of comma-separated ranges.
    allowed_private: Option<toml::Value>,
}

/// Checks `[outbound]`: every allowed range.
pub(super) fn resolve(file: FileOutbound) -> Result<OutboundSettings, ConfigError> {
    Ok(OutboundSettings {
        allowed_private: resolve_allowed_private(file.allowed_private)?,
    })
}

/// Reads `[outbound] allowed_private`: a list of `address/prefix` ranges, or one string of
/// comma-separated ranges (`RECOMMANDE_OUTBOUND_ALLOWED_PRIVATE`).
fn resolve_allowed_private(value: Option<toml::Value>) -> Result<Vec<IpRange>, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        key: "outbound.allowed_private",
        message,
    };
    let items: Vec<String> = match value {
        None => Vec::new(),
        Some(toml::Value::String(text)) => text
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                toml::Value::String(text) => Ok(text),
                other => Err(invalid(format!(
                    "{other} is not a range such as \"10.0.0.0/8\""
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(invalid(format!(
                "{other} must be a list of ranges such as [\"10.0.0.0/8\", \"127.0.0.1/32\"]"
            )));
        }
    };
    items
        .iter()
        .map(|text| text.parse().map_err(invalid))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn special_purpose_ipv4_addresses_are_not_public() {
        for text in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "100.100.100.200",
            "127.0.0.1",
            "127.255.255.255",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!is_public(ip(text)), "{text} judged public");
        }
        for text in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "193.51.24.1",
            "198.20.0.1",
            "223.255.255.254",
        ] {
            assert!(is_public(ip(text)), "{text} judged not public");
        }
    }

    #[test]
    fn special_purpose_ipv6_addresses_and_embedded_private_ipv4_are_not_public() {
        for text in [
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "::127.0.0.1",
            "::a9fe:a9fe",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "100::1",
            "2001:0:7f00:1::",
            "2001:0:0808:0808::80ff:fffe",
            "2001:2::1",
            "2001:db8::1",
            "2001:10::1",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "4000::1",
            "::2:3:4",
        ] {
            assert!(!is_public(ip(text)), "{text} judged public");
        }
        for text in [
            "2001:4860:4860::8888",
            "2a00:1450:4007:80e::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:0:808:808::f7f7:f7f7",
        ] {
            assert!(is_public(ip(text)), "{text} judged not public");
        }
    }

    #[test]
    fn ipv4_literals_are_read_in_every_form_resolvers_accept() {
        let loopback = Some(ip("127.0.0.1"));
        for text in [
            "127.0.0.1",
            "2130706433",
            "0x7f000001",
            "0x7f.1",
            "0x7F.0.0.1",
            "017700000001",
            "0177.0.0.1",
            "127.1",
            "127.0.1",
            "127.0.0.1.",
        ] {
            assert_eq!(parse_ip_literal(text), loopback, "{text}");
        }
        assert_eq!(parse_ip_literal("0xa9fea9fe"), Some(ip("169.254.169.254")));
        assert_eq!(
            parse_ip_literal("[::ffff:169.254.169.254]"),
            Some(ip("::ffff:a9fe:a9fe"))
        );
        assert_eq!(
            parse_ip_literal("[::ffff:7f00:1]"),
            Some(ip("::ffff:127.0.0.1"))
        );
        for name in [
            "example.fr",
            "127.0.0.1.example.fr",
            "1.2.3.4.5",
            "256.1.1.1",
            "08.1.1.1",
            "",
        ] {
            assert_eq!(parse_ip_literal(name), None, "{name}");
        }
    }

    #[test]
    fn loopback_and_metadata_names_are_refused_whatever_their_case() {
        for name in [
            "localhost",
            "LOCALHOST.",
            "api.localhost",
            "metadata",
            "metadata.google.internal",
            "instance-data",
            "instance-data.ec2.internal",
            "Something.Internal",
        ] {
            assert!(refused_name(name).is_some(), "{name}");
        }
        for name in [
            "hooks.example.fr",
            "internal.example.fr",
            "localhost.example.fr",
        ] {
            assert!(refused_name(name).is_none(), "{name}");
        }
    }

    #[test]
    fn registration_refuses_every_form_of_a_non_public_address_unless_allowed() {
        let strict = OutboundPolicy::default();
        for url in [
            "http://127.0.0.1/h",
            "http://2130706433/h",
            "http://0x7f.1/h",
            "http://017700000001/h",
            "http://127.1/h",
            "http://[::1]/h",
            "http://[::ffff:169.254.169.254]/h",
            "http://[::ffff:7f00:1]/h",
            "http://169.254.169.254/latest/meta-data/",
            "http://0/h",
            "http://10.0.0.1:8080/h",
            "http://[fd00:ec2::254]/h",
            "http://localhost:8080/h",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://metadata/h",
            "http://instance-data/h",
        ] {
            assert!(strict.check_url(url).is_err(), "{url} accepted");
        }
        assert_eq!(
            strict.check_url("http://hooks.example.fr/h").as_deref(),
            Ok("http://hooks.example.fr/h")
        );
        let on_premise = OutboundPolicy {
            allowed_private: vec!["127.0.0.1/32".parse().expect("range")],
            require_https: false,
        };
        for url in [
            "http://127.0.0.1:9/h",
            "http://2130706433:9/h",
            "http://[::ffff:7f00:1]:9/h",
        ] {
            assert!(on_premise.check_url(url).is_ok(), "{url} refused");
        }
        assert!(on_premise.check_url("http://127.0.0.2/h").is_err());
        assert!(on_premise.check_url("http://localhost/h").is_err());
        let production = OutboundPolicy {
            require_https: true,
            ..OutboundPolicy::default()
        };
        assert!(production.check_url("http://hooks.example.fr/h").is_err());
        assert!(production.check_url("https://hooks.example.fr/h").is_ok());
    }

    #[test]
    fn ranges_parse_with_or_without_a_prefix_and_refuse_host_bits() {
        let range: IpRange = "10.0.0.0/8".parse().expect("range");
        assert!(range.contains(ip("10.255.0.1")));
        assert!(!range.contains(ip("11.0.0.1")));
        assert!(!range.contains(ip("::ffff:10.0.0.1")));
        let single: IpRange = "127.0.0.1".parse().expect("range");
        assert_eq!(single.to_string(), "127.0.0.1/32");
        let v6: IpRange = "fd00::/8".parse().expect("range");
        assert!(v6.contains(ip("fd12::1")));
        let all: IpRange = "0.0.0.0/0".parse().expect("range");
        assert!(all.contains(ip("192.168.0.1")));
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "fd00::/129",
            "example.fr/8",
            "10.0.0.0/x",
        ] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad}");
        }
        let policy = OutboundPolicy {
            allowed_private: vec![single],
            require_https: false,
        };
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("::ffff:127.0.0.1")));
        assert!(!policy.permits(ip("127.0.0.2")));
        assert!(!policy.permits(ip("::1")));
        assert!(policy.permits(ip("8.8.8.8")));
    }
}
