//! Revocation data and what it says about a certificate at an event's time: OCSP requests
//! and responses (RFC 6960) and certificate revocation lists (RFC 5280 §5). No I/O: the
//! fetching is [`crate::infra::revocation`]'s business.
//!
//! The verdict is taken at the time of the event, not today: a seal made before its
//! certificate was revoked stays valid, one made at or after the revocation time does not
//! (RFC 5280 §6.3; ETSI EN 319 102-1 §5.2.5). Revocation data attests the status at its
//! `thisUpdate`; a certificate, once revoked, stays listed until it expires (RFC 5280 §3.3,
//! RFC 6960 §2.2), so data issued after the event and saying *good* proves the certificate
//! was not revoked at the event.

use ring::digest;
use time::OffsetDateTime;

use crate::core::asn1::{self, Asn1Error, Der, Tlv, tag};
use crate::core::trust::{Certificate, TrustError, oids};

/// id-pkix-ocsp-basic (RFC 6960 §4.2.1).
pub const OCSP_BASIC: &str = "1.3.6.1.5.5.7.48.1.1";
/// id-kp-OCSPSigning (RFC 5280 §4.2.1.12): a delegated responder's certificate.
pub const KP_OCSP_SIGNING: &str = "1.3.6.1.5.5.7.3.9";
/// id-pe-authorityInfoAccess (RFC 5280 §4.2.2.1).
pub const AUTHORITY_INFO_ACCESS: &str = "1.3.6.1.5.5.7.1.1";
/// id-ad-ocsp (RFC 5280 §4.2.2.1).
pub const AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";
/// id-ce-cRLDistributionPoints (RFC 5280 §4.2.1.13).
pub const CRL_DISTRIBUTION_POINTS: &str = "2.5.29.31";
/// id-ce-cRLReasons (RFC 5280 §5.3.1).
const CRL_REASON: &str = "2.5.29.21";
/// ENUMERATED.
const ENUMERATED: u8 = 0x0a;

/// Why revocation data could not be read or trusted.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// Not well-formed DER of the expected structure.
    #[error("malformed {what}: {message}")]
    Malformed {
        /// OCSP response, CRL…
        what: &'static str,
        /// What the parser said.
        message: String,
    },
    /// An OCSP responder answered with an error status (RFC 6960 §4.2.1).
    #[error("the OCSP responder answered {0}")]
    ResponderStatus(&'static str),
    /// The signature of the data does not verify with the issuer's or its delegate's key.
    #[error("{what} signature: {source}")]
    Signature {
        /// OCSP response or CRL.
        what: &'static str,
        /// Why.
        source: TrustError,
    },
    /// Nobody entitled to speak for the issuer signed the data.
    #[error("{0}")]
    Signer(String),
    /// The data does not speak of this certificate.
    #[error("{0}")]
    NotAbout(String),
}

fn malformed(what: &'static str) -> impl Fn(Asn1Error) -> RevocationError {
    move |e| RevocationError::Malformed {
        what,
        message: e.to_string(),
    }
}

/// A certificate's status in one piece of revocation data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertStatus {
    /// Not revoked at `this_update`.
    Good,
    /// Revoked from `at` on, with the CRLReason code when given (RFC 5280 §5.3.1).
    Revoked {
        /// revocationTime / revocationDate.
        at: OffsetDateTime,
        /// reasonCode.
        reason: Option<u8>,
    },
    /// The OCSP responder does not know the certificate.
    Unknown,
}

/// What one verified piece of revocation data says about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// `"OCSP"` or `"CRL"`.
    pub source: &'static str,
    /// The status.
    pub status: CertStatus,
    /// When the status was known to be correct.
    pub this_update: OffsetDateTime,
    /// When newer data will be available (absent: unspecified).
    pub next_update: Option<OffsetDateTime>,
}

/// Revocation data as carried in bundles and caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationData {
    /// A DER OCSPResponse.
    Ocsp(Vec<u8>),
    /// A DER CertificateList.
    Crl(Vec<u8>),
}

impl RevocationData {
    /// What `issuer` says, through this data, of `cert` (both DER); the data's signature
    /// is checked first.
    pub fn statement(
        &self,
        cert_der: &[u8],
        issuer_der: &[u8],
    ) -> Result<Statement, RevocationError> {
        let cert =
            Certificate::parse(cert_der).map_err(|e| RevocationError::NotAbout(e.to_string()))?;
        let issuer =
            Certificate::parse(issuer_der).map_err(|e| RevocationError::NotAbout(e.to_string()))?;
        match self {
            RevocationData::Ocsp(der) => OcspResponse::parse(der)?.statement(&cert, &issuer),
            RevocationData::Crl(der) => Crl::parse(der)?.statement(&cert, &issuer),
        }
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        match self {
            RevocationData::Ocsp(d) | RevocationData::Crl(d) => d,
        }
    }
}

/// The verdict on a certificate at an event's time, from all the data at hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not revoked at the event: the statement that shows it.
    NotRevoked(Statement),
    /// Revoked at or before the event.
    Revoked(Statement),
    /// Only data older than the event (its `nextUpdate` passed before it): nothing says
    /// what the status was then.
    Stale {
        /// The latest `nextUpdate` seen.
        latest: OffsetDateTime,
    },
    /// The responder did not know the certificate.
    Unknown,
    /// No data about this certificate could be verified; the reasons seen.
    Missing(Vec<String>),
}

/// Weighs every piece of `data` about `cert` (issued by `issuer`) at time `at`: a
/// revocation at or before `at` wins; else data current at `at` (`thisUpdate ≤ at ≤
/// nextUpdate`) or issued after it and saying good — or revoked later — shows it was not
/// revoked; else the data is stale, unknown or missing.
pub fn verdict_at(
    cert_der: &[u8],
    issuer_der: &[u8],
    data: &[RevocationData],
    at: OffsetDateTime,
) -> Verdict {
    let mut problems = Vec::new();
    let mut statements = Vec::new();
    for piece in data {
        match piece.statement(cert_der, issuer_der) {
            Ok(s) => statements.push(s),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if let Some(revoked) = statements
        .iter()
        .find(|s| matches!(s.status, CertStatus::Revoked { at: r, .. } if r <= at))
    {
        return Verdict::Revoked(revoked.clone());
    }
    let covers = |s: &Statement| {
        s.this_update >= at || (s.this_update <= at && s.next_update.is_some_and(|n| at <= n))
    };
    if let Some(good) = statements
        .iter()
        .filter(|s| s.status != CertStatus::Unknown && covers(s))
        .min_by_key(|s| s.this_update)
    {
        return Verdict::NotRevoked(good.clone());
    }
    if statements.iter().any(|s| s.status == CertStatus::Unknown) {
        return Verdict::Unknown;
    }
    match statements
        .iter()
        .filter_map(|s| s.next_update.or(Some(s.this_update)))
        .max()
    {
        Some(latest) => Verdict::Stale { latest },
        None => Verdict::Missing(problems),
    }
}

/// The OCSP URLs (`id-ad-ocsp`) and CRL distribution point URLs a certificate names.
pub fn locations(cert_der: &[u8]) -> Result<(Vec<String>, Vec<String>), TrustError> {
    let cert = Certificate::parse(cert_der)?;
    let mut ocsp = Vec::new();
    if let Some(aia) = cert.extension(AUTHORITY_INFO_ACCESS) {
        let mut list = asn1::parse_single_expected(aia.value, tag::SEQUENCE)?.children()?;
        while !list.is_empty() {
            let mut access = list.read_sequence()?;
            let method = access.read_expected(tag::OID)?.oid()?;
            let location = access.read()?;
            if method == AD_OCSP && location.tag == tag::context(6, false) {
                ocsp.push(String::from_utf8_lossy(location.content).into_owned());
            }
        }
    }
    let mut crl = Vec::new();
    if let Some(dps) = cert.extension(CRL_DISTRIBUTION_POINTS) {
        collect_uris(asn1::parse_single(dps.value)?, &mut crl)?;
    }
    Ok((ocsp, crl))
}

/// Every uniformResourceIdentifier ([6] IA5String) nested in `t`.
fn collect_uris(t: Tlv<'_>, out: &mut Vec<String>) -> Result<(), Asn1Error> {
    if t.tag == tag::context(6, false) {
        out.push(String::from_utf8_lossy(t.content).into_owned());
    } else if t.is_constructed() {
        for child in t.children_vec()? {
            collect_uris(child, out)?;
        }
    }
    Ok(())
}

/// A CertID (RFC 6960 §4.1.1) under one hash algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CertId {
    hash: String,
    issuer_name_hash: Vec<u8>,
    issuer_key_hash: Vec<u8>,
    serial: Vec<u8>,
}

fn hash(oid: &str, data: &[u8]) -> Option<Vec<u8>> {
    let algorithm = match oid {
        oids::SHA1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        oids::SHA256 => &digest::SHA256,
        oids::SHA384 => &digest::SHA384,
        oids::SHA512 => &digest::SHA512,
        _ => return None,
    };
    Some(digest::digest(algorithm, data).as_ref().to_vec())
}

impl CertId {
    fn of(cert: &Certificate<'_>, issuer: &Certificate<'_>, hash_oid: &str) -> Option<CertId> {
        Some(CertId {
            hash: hash_oid.to_string(),
            issuer_name_hash: hash(hash_oid, issuer.subject)?,
            issuer_key_hash: hash(hash_oid, issuer.public_key)?,
            serial: cert.serial.to_vec(),
        })
    }

    fn parse(t: &Tlv<'_>) -> Result<CertId, Asn1Error> {
        t.expect_tag(tag::SEQUENCE)?;
        let mut d = t.children()?;
        let algorithm = d.read_expected(tag::SEQUENCE)?;
        let hash = Der::new(algorithm.content).read_expected(tag::OID)?.oid()?;
        let issuer_name_hash = d.read_expected(tag::OCTET_STRING)?.content.to_vec();
        let issuer_key_hash = d.read_expected(tag::OCTET_STRING)?.content.to_vec();
        let serial = d.read_expected(tag::INTEGER)?.content.to_vec();
        d.finish()?;
        Ok(CertId {
            hash,
            issuer_name_hash,
            issuer_key_hash,
            serial,
        })
    }

    fn encode(&self) -> Result<Vec<u8>, Asn1Error> {
        let algorithm = asn1::sequence(&[&asn1::oid(&self.hash)?, &asn1::null()]);
        Ok(asn1::sequence(&[
            &algorithm,
            &asn1::octet_string(&self.issuer_name_hash),
            &asn1::octet_string(&self.issuer_key_hash),
            &asn1::tlv(tag::INTEGER, &self.serial),
        ]))
    }
}

/// A DER OCSPRequest for `cert` (issued by `issuer`) with a SHA-1 CertID and no nonce, the
/// form every responder answers and caches (RFC 5019 §2.1).
pub fn ocsp_request(cert_der: &[u8], issuer_der: &[u8]) -> Result<Vec<u8>, TrustError> {
    let cert = Certificate::parse(cert_der)?;
    let issuer = Certificate::parse(issuer_der)?;
    let id = CertId::of(&cert, &issuer, oids::SHA1)
        .ok_or_else(|| TrustError::UnsupportedAlgorithm("SHA-1".into()))?
        .encode()?;
    let request = asn1::sequence(&[&id]);
    let tbs = asn1::sequence(&[&asn1::sequence(&[&request])]);
    Ok(asn1::sequence(&[&tbs]))
}

/// A parsed successful basic OCSP response.
struct OcspResponse<'a> {
    tbs: &'a [u8],
    responder: Tlv<'a>,
    responses: Vec<(CertId, CertStatus, OffsetDateTime, Option<OffsetDateTime>)>,
    signature_algorithm: String,
    signature: &'a [u8],
    certs: Vec<Tlv<'a>>,
}

fn responder_status(code: u8) -> &'static str {
    match code {
        1 => "malformedRequest",
        2 => "internalError",
        3 => "tryLater",
        5 => "sigRequired",
        6 => "unauthorized",
        _ => "an unknown status",
    }
}

impl<'a> OcspResponse<'a> {
    fn parse(der: &'a [u8]) -> Result<Self, RevocationError> {
        let m = malformed("OCSP response");
        let mut outer = asn1::parse_single_expected(der, tag::SEQUENCE)
            .and_then(|t| t.children())
            .map_err(&m)?;
        let status = outer.read_expected(ENUMERATED).map_err(&m)?;
        if status.content != [0] {
            return Err(RevocationError::ResponderStatus(responder_status(
                status.content.first().copied().unwrap_or(255),
            )));
        }
        let bytes = outer
            .read_expected(tag::context(0, true))
            .and_then(|t| t.single_child())
            .and_then(|t| t.children())
            .map_err(&m)?;
        Self::parse_basic(bytes).map_err(m)
    }

    fn parse_basic(mut bytes: Der<'a>) -> Result<Self, Asn1Error> {
        let kind = bytes.read_expected(tag::OID)?.oid()?;
        if kind != OCSP_BASIC {
            return Err(Asn1Error::InvalidOid(format!(
                "response type {kind} is not id-pkix-ocsp-basic"
            )));
        }
        let basic = bytes.read_expected(tag::OCTET_STRING)?.content;
        let mut b = asn1::parse_single_expected(basic, tag::SEQUENCE)?.children()?;
        let tbs = b.read_expected(tag::SEQUENCE)?;
        let algorithm = b.read_expected(tag::SEQUENCE)?;
        let signature_algorithm = Der::new(algorithm.content).read_expected(tag::OID)?.oid()?;
        let signature = b.read_expected(tag::BIT_STRING)?.bit_string_octets()?;
        let certs = match b.read_optional(tag::context(0, true))? {
            Some(c) => c.single_child()?.children_vec()?,
            None => Vec::new(),
        };
        let mut data = tbs.children()?;
        data.read_optional(tag::context(0, true))?;
        let responder = data.read()?;
        data.read_expected(tag::GENERALIZED_TIME)?;
        let mut responses = Vec::new();
        let mut list = data.read_sequence()?;
        while !list.is_empty() {
            responses.push(Self::single(list.read_expected(tag::SEQUENCE)?)?);
        }
        Ok(OcspResponse {
            tbs: tbs.raw,
            responder,
            responses,
            signature_algorithm,
            signature,
            certs,
        })
    }

    #[allow(clippy::type_complexity)]
    fn single(
        t: Tlv<'a>,
    ) -> Result<(CertId, CertStatus, OffsetDateTime, Option<OffsetDateTime>), Asn1Error> {
        let mut d = t.children()?;
        let id = CertId::parse(&d.read()?)?;
        let status = d.read()?;
        let status = match status.tag {
            t if t == tag::context(0, false) => CertStatus::Good,
            t if t == tag::context(1, true) => {
                let mut info = status.children()?;
                let at = info
                    .read_expected(tag::GENERALIZED_TIME)?
                    .generalized_time()?;
                let reason = match info.read_optional(tag::context(0, true))? {
                    Some(r) => r.single_child()?.content.first().copied(),
                    None => None,
                };
                CertStatus::Revoked { at, reason }
            }
            _ => CertStatus::Unknown,
        };
        let this_update = d.read_expected(tag::GENERALIZED_TIME)?.generalized_time()?;
        let next_update = match d.read_optional(tag::context(0, true))? {
            Some(n) => Some(n.single_child()?.generalized_time()?),
            None => None,
        };
        Ok((id, status, this_update, next_update))
    }

    /// True when `cert` is the one named by the responder ID.
    fn names(&self, cert: &Certificate<'_>) -> bool {
        match self.responder.tag {
            t if t == tag::context(1, true) => self.responder.content == cert.subject,
            t if t == tag::context(2, true) => self
                .responder
                .single_child()
                .is_ok_and(|k| hash(oids::SHA1, cert.public_key).is_some_and(|h| h == k.content)),
            _ => false,
        }
    }

    /// Who signed: the issuer itself, or a responder certificate the issuer gave
    /// id-kp-OCSPSigning (RFC 6960 §4.2.2.2).
    fn signer<'c>(&'c self, issuer: &'c Certificate<'c>) -> Result<Certificate<'c>, RevocationError>
    where
        'a: 'c,
    {
        if self.names(issuer) {
            return Ok(issuer.clone());
        }
        for t in &self.certs {
            let Ok(delegate) = Certificate::parse(t.raw) else {
                continue;
            };
            if !self.names(&delegate) || delegate.issuer != issuer.subject {
                continue;
            }
            issuer
                .verify(
                    &delegate.signature_algorithm,
                    None,
                    delegate.tbs,
                    delegate.signature,
                )
                .map_err(|e| {
                    RevocationError::Signer(format!(
                        "OCSP responder certificate \"{}\" was not issued by \"{}\": {e}",
                        delegate.subject_string(),
                        issuer.subject_string()
                    ))
                })?;
            let delegated = delegate
                .extended_key_usage()
                .ok()
                .flatten()
                .is_some_and(|(_, usages)| usages.iter().any(|u| u == KP_OCSP_SIGNING));
            if !delegated {
                return Err(RevocationError::Signer(format!(
                    "OCSP responder certificate \"{}\" lacks id-kp-OCSPSigning",
                    delegate.subject_string()
                )));
            }
            return Ok(delegate);
        }
        Err(RevocationError::Signer(format!(
            "the OCSP response is signed neither by \"{}\" nor by a responder it delegated",
            issuer.subject_string()
        )))
    }

    fn statement(
        &self,
        cert: &Certificate<'_>,
        issuer: &Certificate<'_>,
    ) -> Result<Statement, RevocationError> {
        let signer = self.signer(issuer)?;
        signer
            .verify(&self.signature_algorithm, None, self.tbs, self.signature)
            .map_err(|source| RevocationError::Signature {
                what: "OCSP response",
                source,
            })?;
        for (id, status, this_update, next_update) in &self.responses {
            if CertId::of(cert, issuer, &id.hash).as_ref() == Some(id) {
                return Ok(Statement {
                    source: "OCSP",
                    status: status.clone(),
                    this_update: *this_update,
                    next_update: *next_update,
                });
            }
        }
        Err(RevocationError::NotAbout(format!(
            "the OCSP response does not speak of \"{}\"",
            cert.subject_string()
        )))
    }
}

/// A parsed CRL.
struct Crl<'a> {
    tbs: &'a [u8],
    issuer: &'a [u8],
    this_update: OffsetDateTime,
    next_update: Option<OffsetDateTime>,
    revoked: Vec<(&'a [u8], OffsetDateTime, Option<u8>)>,
    signature_algorithm: String,
    signature: &'a [u8],
}

impl<'a> Crl<'a> {
    fn parse(der: &'a [u8]) -> Result<Self, RevocationError> {
        Self::parse_list(der).map_err(malformed("CRL"))
    }

    fn parse_list(der: &'a [u8]) -> Result<Self, Asn1Error> {
        let mut outer = asn1::parse_single_expected(der, tag::SEQUENCE)?.children()?;
        let tbs = outer.read_expected(tag::SEQUENCE)?;
        let algorithm = outer.read_expected(tag::SEQUENCE)?;
        let signature_algorithm = Der::new(algorithm.content).read_expected(tag::OID)?.oid()?;
        let signature = outer.read_expected(tag::BIT_STRING)?.bit_string_octets()?;
        outer.finish()?;
        let mut d = tbs.children()?;
        d.read_optional(tag::INTEGER)?;
        d.read_expected(tag::SEQUENCE)?;
        let issuer = d.read_expected(tag::SEQUENCE)?.raw;
        let this_update = d.read()?.time()?;
        let next_update = match d.peek_tag() {
            Some(tag::UTC_TIME) | Some(tag::GENERALIZED_TIME) => Some(d.read()?.time()?),
            _ => None,
        };
        let mut revoked = Vec::new();
        if d.peek_tag() == Some(tag::SEQUENCE) {
            let mut list = d.read_sequence()?;
            while !list.is_empty() {
                let mut entry = list.read_sequence()?;
                let serial = entry.read_expected(tag::INTEGER)?.content;
                let at = entry.read()?.time()?;
                let reason = match entry.read_optional(tag::SEQUENCE)? {
                    Some(extensions) => reason_code(extensions)?,
                    None => None,
                };
                revoked.push((serial, at, reason));
            }
        }
        Ok(Crl {
            tbs: tbs.raw,
            issuer,
            this_update,
            next_update,
            revoked,
            signature_algorithm,
            signature,
        })
    }

    fn statement(
        &self,
        cert: &Certificate<'_>,
        issuer: &Certificate<'_>,
    ) -> Result<Statement, RevocationError> {
        if self.issuer != issuer.subject || cert.issuer != issuer.subject {
            return Err(RevocationError::NotAbout(format!(
                "the CRL of \"{}\" does not cover \"{}\"",
                crate::core::trust::name_to_string(self.issuer),
                cert.subject_string()
            )));
        }
        issuer
            .verify(&self.signature_algorithm, None, self.tbs, self.signature)
            .map_err(|source| RevocationError::Signature {
                what: "CRL",
                source,
            })?;
        let status = match self.revoked.iter().find(|(s, _, _)| *s == cert.serial) {
            Some((_, at, reason)) => CertStatus::Revoked {
                at: *at,
                reason: *reason,
            },
            None => CertStatus::Good,
        };
        Ok(Statement {
            source: "CRL",
            status,
            this_update: self.this_update,
            next_update: self.next_update,
        })
    }
}

/// The reasonCode entry extension, if any.
fn reason_code(extensions: Tlv<'_>) -> Result<Option<u8>, Asn1Error> {
    let mut list = extensions.children()?;
    while !list.is_empty() {
        let mut extension = list.read_sequence()?;
        let oid = extension.read_expected(tag::OID)?.oid()?;
        extension.read_optional(tag::BOOLEAN)?;
        let value = extension.read_expected(tag::OCTET_STRING)?.content;
        if oid == CRL_REASON {
            let code = asn1::parse_single_expected(value, ENUMERATED)?;
            return Ok(code.content.first().copied());
        }
    }
    Ok(None)
}

/// The RFC 5280 §5.3.1 name of a reason code.
pub fn reason_name(code: u8) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "unknown reason",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn der(dir: &Path, pem: &str) -> Vec<u8> {
        let text = std::fs::read(dir.join(pem)).expect("pem");
        crate::core::trust::pem_blocks(&text, "CERTIFICATE").expect("block")[0].clone()
    }

    /// An openssl CA (EC P-256) with two leaves, 0x1001 valid and 0x1002 revoked on
    /// 2025-01-01 (keyCompromise), its index, OCSP answers to our requests and a CRL.
    fn ca(dir: &Path) {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut root = vec!["req", "-x509"];
        root.extend(ec);
        root.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=Test CA",
            "-days",
            "30",
        ]);
        openssl(dir, &root);
        std::fs::write(
            dir.join("leaf.ext"),
            "authorityInfoAccess = OCSP;URI:http://ocsp.test/ocsp\ncrlDistributionPoints = URI:http://ocsp.test/ca.crl\n",
        )
        .expect("ext");
        for (name, serial) in [("a", "0x1001"), ("b", "0x1002")] {
            let mut req = vec!["req", "-new"];
            req.extend(ec);
            let (key, csr, subj) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("/CN=Leaf {name}"),
            );
            req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
            openssl(dir, &req);
            let pem = format!("{name}.pem");
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-set_serial",
                    serial,
                    "-days",
                    "10",
                    "-extfile",
                    "leaf.ext",
                    "-out",
                    &pem,
                ],
            );
        }
        std::fs::write(
            dir.join("index.txt"),
            "V\t301231000000Z\t\t1001\tunknown\t/CN=Leaf a\nR\t301231000000Z\t250101000000Z,keyCompromise\t1002\tunknown\t/CN=Leaf b\n",
        )
        .expect("index");
        std::fs::write(dir.join("crlnumber"), "01\n").expect("crlnumber");
        std::fs::write(
            dir.join("ca.cnf"),
            "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 1\n",
        )
        .expect("cnf");
        for name in ["a", "b"] {
            let request = ocsp_request(&der(dir, &format!("{name}.pem")), &der(dir, "ca.pem"))
                .expect("request");
            std::fs::write(dir.join(format!("{name}.req")), request).expect("req");
            let (req, resp) = (format!("{name}.req"), format!("{name}.ocsp"));
            openssl(
                dir,
                &[
                    "ocsp",
                    "-index",
                    "index.txt",
                    "-rsigner",
                    "ca.pem",
                    "-rkey",
                    "ca.key",
                    "-CA",
                    "ca.pem",
                    "-reqin",
                    &req,
                    "-respout",
                    &resp,
                    "-ndays",
                    "1",
                ],
            );
        }
        openssl(
            dir,
            &[
                "ca", "-config", "ca.cnf", "-gencrl", "-keyfile", "ca.key", "-cert", "ca.pem",
                "-out", "crl.pem",
            ],
        );
        openssl(
            dir,
            &[
                "crl", "-in", "crl.pem", "-outform", "DER", "-out", "crl.der",
            ],
        );
    }

    #[test]
    fn openssl_answers_our_ocsp_requests_and_the_verdict_is_taken_at_the_event_time() {
        let dir = tempfile::tempdir().expect("dir");
        let dir = dir.path();
        ca(dir);
        let (a, b, issuer) = (der(dir, "a.pem"), der(dir, "b.pem"), der(dir, "ca.pem"));
        let read = |name: &str| std::fs::read(dir.join(name)).expect("read");
        let now = OffsetDateTime::now_utc();
        let before_revocation = time::macros::datetime!(2024-06-01 00:00 UTC);

        for data in [
            RevocationData::Ocsp(read("a.ocsp")),
            RevocationData::Crl(read("crl.der")),
        ] {
            let statement = data.statement(&a, &issuer).expect("about leaf a");
            assert_eq!(statement.status, CertStatus::Good, "{data:?}");
            assert!(matches!(
                verdict_at(&a, &issuer, std::slice::from_ref(&data), now),
                Verdict::NotRevoked(_)
            ));
        }
        for data in [
            RevocationData::Ocsp(read("b.ocsp")),
            RevocationData::Crl(read("crl.der")),
        ] {
            let statement = data.statement(&b, &issuer).expect("about leaf b");
            let revoked_at = time::macros::datetime!(2025-01-01 00:00 UTC);
            assert_eq!(
                statement.status,
                CertStatus::Revoked {
                    at: revoked_at,
                    reason: Some(1)
                },
                "{}",
                statement.source
            );
            let data = std::slice::from_ref(&data);
            assert!(matches!(
                verdict_at(&b, &issuer, data, now),
                Verdict::Revoked(_)
            ));
            // A seal made before the revocation stays valid.
            assert!(matches!(
                verdict_at(&b, &issuer, data, before_revocation),
                Verdict::NotRevoked(_)
            ));
        }

        // Data about another certificate, a forged signature, another issuer, nothing:
        // never a verdict of good.
        let only_a = [RevocationData::Ocsp(read("a.ocsp"))];
        assert!(
            matches!(verdict_at(&b, &issuer, &only_a, now), Verdict::Missing(ref r) if r[0].contains("does not speak of"))
        );
        let mut forged = read("a.ocsp");
        let at = {
            let parsed = OcspResponse::parse(&forged).expect("parses");
            parsed.signature.as_ptr() as usize - forged.as_ptr() as usize + 20
        };
        forged[at] ^= 1;
        let verdict = verdict_at(&a, &issuer, &[RevocationData::Ocsp(forged)], now);
        assert!(
            matches!(verdict, Verdict::Missing(ref r) if r[0].contains("signature")),
            "{verdict:?}"
        );
        let verdict = verdict_at(&a, &a, &only_a, now);
        assert!(matches!(verdict, Verdict::Missing(_)), "{verdict:?}");
        assert_eq!(
            verdict_at(&a, &issuer, &[], now),
            Verdict::Missing(Vec::new())
        );

        // Data whose nextUpdate passed before the event says nothing about it.
        let later = now + time::Duration::days(3);
        assert!(matches!(
            verdict_at(&a, &issuer, &only_a, later),
            Verdict::Stale { .. }
        ));

        // Where the certificate says its status is published.
        let (ocsp, crl) = locations(&a).expect("extensions");
        assert_eq!(ocsp, ["http://ocsp.test/ocsp"]);
        assert_eq!(crl, ["http://ocsp.test/ca.crl"]);
        assert_eq!(locations(&issuer).expect("root"), (Vec::new(), Vec::new()));
    }
}
