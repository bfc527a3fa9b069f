//! Certificate parsing, signature checks and certification-path validation at a
//! given time (RFC 5280), with signatures verified by `ring`.
//!
//! This is what lets a verifier decide, offline and years later, whether a seal or
//! a timestamp was made with a certificate that chained to a trusted root *at the
//! time of the event* (the seal's signing time or the token's genTime), not today.
//! It is pure: no I/O, no clock.
//!
//! Scope: path building from an unordered pool, signature verification
//! (ECDSA P-256/P-384 with SHA-256/384, RSA PKCS#1 v1.5 ≥ 2048 bits with
//! SHA-256/384/512), validity windows, basicConstraints / keyUsage on issuers,
//! pathLenConstraint, unknown critical extensions, and the leaf's purpose.
//! Revocation (CRL/OCSP) and certificate policies are not checked here.

use ring::signature;
use time::OffsetDateTime;

use crate::core::asn1::{self, Asn1Error, Der, Tlv, tag};

/// Well-known OIDs used for certificates and signatures.
pub mod oids {
    /// id-ecPublicKey (RFC 5480 §2.1.1).
    pub const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    /// secp256r1 / prime256v1 (RFC 5480 §2.1.1.1).
    pub const P256: &str = "1.2.840.10045.3.1.7";
    /// secp384r1 (RFC 5480 §2.1.1.1).
    pub const P384: &str = "1.3.132.0.34";
    /// rsaEncryption (RFC 8017 Appendix C).
    pub const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
    /// sha256WithRSAEncryption.
    pub const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
    /// sha384WithRSAEncryption.
    pub const SHA384_WITH_RSA: &str = "1.2.840.113549.1.1.12";
    /// sha512WithRSAEncryption.
    pub const SHA512_WITH_RSA: &str = "1.2.840.113549.1.1.13";
    /// ecdsa-with-SHA256 (RFC 5758 §3.2).
    pub const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
    /// ecdsa-with-SHA384 (RFC 5758 §3.2).
    pub const ECDSA_WITH_SHA384: &str = "1.2.840.10045.4.3.3";
    /// id-sha256 (RFC 5754 §2).
    pub const SHA256: &str = "2.16.840.1.101.3.4.2.1";
    /// id-sha384.
    pub const SHA384: &str = "2.16.840.1.101.3.4.2.2";
    /// id-sha512.
    pub const SHA512: &str = "2.16.840.1.101.3.4.2.3";
    /// id-sha1 (legacy, only for ESSCertID v1 hashes).
    pub const SHA1: &str = "1.3.14.3.2.26";
    /// id-ce-subjectKeyIdentifier.
    pub const SUBJECT_KEY_IDENTIFIER: &str = "2.5.29.14";
    /// id-ce-keyUsage.
    pub const KEY_USAGE: &str = "2.5.29.15";
    /// id-ce-subjectAltName.
    pub const SUBJECT_ALT_NAME: &str = "2.5.29.17";
    /// id-ce-basicConstraints.
    pub const BASIC_CONSTRAINTS: &str = "2.5.29.19";
    /// id-ce-certificatePolicies.
    pub const CERTIFICATE_POLICIES: &str = "2.5.29.32";
    /// id-ce-authorityKeyIdentifier.
    pub const AUTHORITY_KEY_IDENTIFIER: &str = "2.5.29.35";
    /// id-ce-extKeyUsage.
    pub const EXT_KEY_USAGE: &str = "2.5.29.37";
    /// id-kp-timeStamping (RFC 5280 §4.2.1.12).
    pub const KP_TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";
    /// id-pe-qcStatements (RFC 3739).
    pub const QC_STATEMENTS: &str = "1.3.6.1.5.5.7.1.3";
    /// id-etsi-qcs-QcCompliance (ETSI EN 319 412-5).
    pub const QCS_QC_COMPLIANCE: &str = "0.4.0.1862.1.1";
}

/// KeyUsage bits (RFC 5280 §4.2.1.3), as returned by [`Certificate::key_usage`].
pub mod key_usage {
    /// digitalSignature (0).
    pub const DIGITAL_SIGNATURE: u64 = 1 << 0;
    /// nonRepudiation / contentCommitment (1).
    pub const NON_REPUDIATION: u64 = 1 << 1;
    /// keyCertSign (5).
    pub const KEY_CERT_SIGN: u64 = 1 << 5;
}

/// Errors from certificate parsing, signature checks and path validation.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// PEM input without any usable block, or with bad base64.
    #[error("PEM: {0}")]
    Pem(String),
    /// A certificate that is not a well-formed DER X.509 v3 certificate.
    #[error("malformed certificate: {0}")]
    Certificate(String),
    /// No trust anchor was given.
    #[error("no trust anchors")]
    NoAnchors,
    /// No issuer for `subject` was found among the pool and the anchors.
    #[error("no issuer found for certificate \"{subject}\" (issuer \"{issuer}\")")]
    NoIssuer {
        /// Subject of the certificate whose issuer is missing.
        subject: String,
        /// Its issuer name.
        issuer: String,
    },
    /// A certificate's signature does not verify with its issuer's key.
    #[error("signature of certificate \"{subject}\" does not verify with the key of \"{issuer}\"")]
    CertificateSignature {
        /// Subject of the certificate.
        subject: String,
        /// Subject of the would-be issuer.
        issuer: String,
    },
    /// A certificate was not yet valid at the time checked.
    #[error("certificate \"{subject}\" was not yet valid at {at} (valid from {not_before})")]
    NotYetValid {
        /// Subject of the certificate.
        subject: String,
        /// Time checked.
        at: OffsetDateTime,
        /// Start of the validity window.
        not_before: OffsetDateTime,
    },
    /// A certificate had expired at the time checked.
    #[error("certificate \"{subject}\" had expired at {at} (valid until {not_after})")]
    Expired {
        /// Subject of the certificate.
        subject: String,
        /// Time checked.
        at: OffsetDateTime,
        /// End of the validity window.
        not_after: OffsetDateTime,
    },
    /// An issuer that is not a CA (basicConstraints) or may not sign certificates (keyUsage).
    #[error("certificate \"{subject}\" cannot issue certificates: {reason}")]
    NotCa {
        /// Subject of the issuer.
        subject: String,
        /// Why.
        reason: String,
    },
    /// The path is longer than allowed (pathLenConstraint or our depth limit).
    #[error("certification path too long at \"{subject}\"")]
    PathTooLong {
        /// Subject where the limit was exceeded.
        subject: String,
    },
    /// A critical extension we do not process (RFC 5280 §4.2).
    #[error("certificate \"{subject}\" has an unsupported critical extension {oid}")]
    UnknownCriticalExtension {
        /// Subject of the certificate.
        subject: String,
        /// OID of the extension.
        oid: String,
    },
    /// The leaf does not fit the required purpose.
    #[error("certificate \"{subject}\" is not usable for {purpose}: {reason}")]
    Purpose {
        /// Subject of the leaf.
        subject: String,
        /// Purpose required.
        purpose: &'static str,
        /// Why.
        reason: String,
    },
    /// A signature or key algorithm we do not support.
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// A signature that does not verify.
    #[error("signature does not verify")]
    BadSignature,
}

impl From<Asn1Error> for TrustError {
    fn from(e: Asn1Error) -> Self {
        TrustError::Certificate(e.to_string())
    }
}

/// One X.509 extension (RFC 5280 §4.1).
#[derive(Debug, Clone)]
pub struct Extension<'a> {
    /// extnID in dotted form.
    pub oid: String,
    /// critical flag (DEFAULT FALSE).
    pub critical: bool,
    /// extnValue contents (the DER of the extension value).
    pub value: &'a [u8],
}

/// A parsed X.509 v3 certificate borrowing its DER (RFC 5280 §4.1).
#[derive(Debug, Clone)]
pub struct Certificate<'a> {
    /// The whole certificate.
    pub raw: &'a [u8],
    /// tbsCertificate encoding (what the issuer signed).
    pub tbs: &'a [u8],
    /// serialNumber INTEGER content octets (two's complement, as encoded).
    pub serial: &'a [u8],
    /// issuer Name, full DER.
    pub issuer: &'a [u8],
    /// subject Name, full DER.
    pub subject: &'a [u8],
    /// Validity notBefore.
    pub not_before: OffsetDateTime,
    /// Validity notAfter.
    pub not_after: OffsetDateTime,
    /// subjectPublicKeyInfo, full DER.
    pub spki: &'a [u8],
    /// Public key algorithm OID.
    pub key_algorithm: String,
    /// Named curve OID for EC keys.
    pub key_curve: Option<String>,
    /// subjectPublicKey BIT STRING octets.
    pub public_key: &'a [u8],
    /// Outer signatureAlgorithm OID.
    pub signature_algorithm: String,
    /// Outer signature BIT STRING octets.
    pub signature: &'a [u8],
    /// Extensions in order.
    pub extensions: Vec<Extension<'a>>,
}

fn algorithm_oid(t: &Tlv<'_>) -> Result<String, Asn1Error> {
    t.expect_tag(tag::SEQUENCE)?;
    Der::new(t.content).read_expected(tag::OID)?.oid()
}

fn algorithm_curve(t: &Tlv<'_>) -> Result<Option<String>, Asn1Error> {
    let mut d = Der::new(t.content);
    d.read_expected(tag::OID)?;
    if d.peek_tag() == Some(tag::OID) {
        Ok(Some(d.read()?.oid()?))
    } else {
        Ok(None)
    }
}

impl<'a> Certificate<'a> {
    /// Parses a DER certificate (strict DER, no trailing bytes).
    pub fn parse(der: &'a [u8]) -> Result<Self, TrustError> {
        let cert = asn1::parse_single_expected(der, tag::SEQUENCE)?;
        let mut outer = cert.children()?;
        let tbs = outer.read_expected(tag::SEQUENCE)?;
        let sig_alg = outer.read_expected(tag::SEQUENCE)?;
        let signature = outer.read_expected(tag::BIT_STRING)?.bit_string_octets()?;
        outer.finish()?;
        let signature_algorithm = algorithm_oid(&sig_alg)?;

        let mut t = tbs.children()?;
        let version = match t.read_optional(tag::context(0, true))? {
            Some(v) => v.single_child()?.u64()?,
            None => 0,
        };
        if version != 2 {
            return Err(TrustError::Certificate(format!(
                "only X.509 v3 certificates are supported (version field {version})"
            )));
        }
        let serial = t.read_expected(tag::INTEGER)?.integer_bytes()?;
        let inner_alg = t.read_expected(tag::SEQUENCE)?;
        // RFC 5280 §4.1.1.2: signatureAlgorithm MUST equal tbsCertificate.signature.
        if inner_alg.raw != sig_alg.raw {
            return Err(TrustError::Certificate(
                "signatureAlgorithm differs from tbsCertificate.signature".into(),
            ));
        }
        let issuer = t.read_expected(tag::SEQUENCE)?.raw;
        let mut validity = t.read_sequence()?;
        let not_before = validity.read()?.time()?;
        let not_after = validity.read()?.time()?;
        validity.finish()?;
        let subject = t.read_expected(tag::SEQUENCE)?.raw;
        let spki_tlv = t.read_expected(tag::SEQUENCE)?;
        let mut spki = spki_tlv.children()?;
        let key_alg = spki.read_expected(tag::SEQUENCE)?;
        let key_algorithm = algorithm_oid(&key_alg)?;
        let key_curve = algorithm_curve(&key_alg)?;
        let public_key = spki.read_expected(tag::BIT_STRING)?.bit_string_octets()?;
        spki.finish()?;
        t.read_optional(tag::context(1, false))?;
        t.read_optional(tag::context(2, false))?;
        let mut extensions = Vec::new();
        if let Some(exts) = t.read_optional(tag::context(3, true))? {
            let list = exts.single_child()?;
            list.expect_tag(tag::SEQUENCE)?;
            for ext in list.children_vec()? {
                ext.expect_tag(tag::SEQUENCE)?;
                let mut e = ext.children()?;
                let oid = e.read_expected(tag::OID)?.oid()?;
                let critical = match e.read_optional(tag::BOOLEAN)? {
                    // DER: a DEFAULT value must be omitted (X.690 §11.5).
                    Some(b) if !b.boolean()? => {
                        return Err(TrustError::Certificate(
                            "critical FALSE must be omitted in DER".into(),
                        ));
                    }
                    Some(_) => true,
                    None => false,
                };
                let value = e.read_expected(tag::OCTET_STRING)?.content;
                e.finish()?;
                if extensions.iter().any(|x: &Extension<'_>| x.oid == oid) {
                    // RFC 5280 §4.2: a certificate MUST NOT include more than one
                    // instance of a particular extension.
                    return Err(TrustError::Certificate(format!(
                        "duplicate extension {oid}"
                    )));
                }
                extensions.push(Extension {
                    oid,
                    critical,
                    value,
                });
            }
        }
        t.finish()?;
        Ok(Certificate {
            raw: der,
            tbs: tbs.raw,
            serial,
            issuer,
            subject,
            not_before,
            not_after,
            spki: spki_tlv.raw,
            key_algorithm,
            key_curve,
            public_key,
            signature_algorithm,
            signature,
            extensions,
        })
    }

    /// The extension with this OID, if present.
    pub fn extension(&self, oid: &str) -> Option<&Extension<'a>> {
        self.extensions.iter().find(|e| e.oid == oid)
    }

    /// Human-readable subject (e.g. `CN=…, O=…`), for messages.
    pub fn subject_string(&self) -> String {
        name_to_string(self.subject)
    }

    /// KeyUsage bits (bit n of the named-bit list at position n), if the extension is present.
    pub fn key_usage(&self) -> Result<Option<u64>, TrustError> {
        self.extension(oids::KEY_USAGE)
            .map(|e| Ok(asn1::parse_single(e.value)?.named_bits()?))
            .transpose()
    }

    /// ExtendedKeyUsage as (critical, purposes), if present.
    pub fn extended_key_usage(&self) -> Result<Option<(bool, Vec<String>)>, TrustError> {
        let Some(e) = self.extension(oids::EXT_KEY_USAGE) else {
            return Ok(None);
        };
        let seq = asn1::parse_single_expected(e.value, tag::SEQUENCE)?;
        let purposes = seq
            .children_vec()?
            .iter()
            .map(Tlv::oid)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((e.critical, purposes)))
    }

    /// BasicConstraints as (cA, pathLenConstraint), if present.
    pub fn basic_constraints(&self) -> Result<Option<(bool, Option<u64>)>, TrustError> {
        let Some(e) = self.extension(oids::BASIC_CONSTRAINTS) else {
            return Ok(None);
        };
        let seq = asn1::parse_single_expected(e.value, tag::SEQUENCE)?;
        let mut d = seq.children()?;
        let ca = match d.read_optional(tag::BOOLEAN)? {
            Some(b) => b.boolean()?,
            None => false,
        };
        let path_len = d
            .read_optional(tag::INTEGER)?
            .map(|i| i.u64())
            .transpose()?;
        d.finish()?;
        Ok(Some((ca, path_len)))
    }

    /// SubjectKeyIdentifier octets, if present.
    pub fn subject_key_identifier(&self) -> Result<Option<&'a [u8]>, TrustError> {
        self.extension(oids::SUBJECT_KEY_IDENTIFIER)
            .map(|e| Ok(asn1::parse_single(e.value)?.octet_string()?))
            .transpose()
    }

    /// AuthorityKeyIdentifier keyIdentifier octets, if present.
    pub fn authority_key_identifier(&self) -> Result<Option<&'a [u8]>, TrustError> {
        let Some(e) = self.extension(oids::AUTHORITY_KEY_IDENTIFIER) else {
            return Ok(None);
        };
        let seq = asn1::parse_single_expected(e.value, tag::SEQUENCE)?;
        let mut d = seq.children()?;
        Ok(d.read_optional(tag::context(0, false))?.map(|t| t.content))
    }

    /// True when the certificate carries the ETSI QcCompliance statement
    /// (EN 319 412-5 §4.2.1), i.e. claims to be an EU qualified certificate.
    pub fn is_qualified(&self) -> bool {
        let Some(e) = self.extension(oids::QC_STATEMENTS) else {
            return false;
        };
        let Ok(seq) = asn1::parse_single_expected(e.value, tag::SEQUENCE) else {
            return false;
        };
        seq.children_vec().unwrap_or_default().iter().any(|st| {
            st.children()
                .and_then(|mut d| d.read_expected(tag::OID))
                .and_then(|o| o.oid())
                .is_ok_and(|o| o == oids::QCS_QC_COMPLIANCE)
        })
    }

    /// Checks `at` lies within notBefore..=notAfter (RFC 5280 §4.1.2.5).
    pub fn check_validity(&self, at: OffsetDateTime) -> Result<(), TrustError> {
        if at < self.not_before {
            return Err(TrustError::NotYetValid {
                subject: self.subject_string(),
                at,
                not_before: self.not_before,
            });
        }
        if at > self.not_after {
            return Err(TrustError::Expired {
                subject: self.subject_string(),
                at,
                not_after: self.not_after,
            });
        }
        Ok(())
    }

    /// Verifies `signature` over `message` with this certificate's public key.
    /// `digest_hint` is the CMS digestAlgorithm, needed when the signature algorithm
    /// names only the key type (rsaEncryption / id-ecPublicKey, as some CMS signers write).
    pub fn verify(
        &self,
        algorithm_oid: &str,
        digest_hint: Option<&str>,
        message: &[u8],
        signature_bytes: &[u8],
    ) -> Result<(), TrustError> {
        let unsupported = || {
            TrustError::UnsupportedAlgorithm(format!(
                "signature {algorithm_oid} (digest {}) with key {} {}",
                digest_hint.unwrap_or("-"),
                self.key_algorithm,
                self.key_curve.as_deref().unwrap_or("")
            ))
        };
        let digest = match algorithm_oid {
            oids::ECDSA_WITH_SHA256 | oids::SHA256_WITH_RSA => oids::SHA256,
            oids::ECDSA_WITH_SHA384 | oids::SHA384_WITH_RSA => oids::SHA384,
            oids::SHA512_WITH_RSA => oids::SHA512,
            oids::RSA_ENCRYPTION | oids::EC_PUBLIC_KEY => digest_hint.ok_or_else(unsupported)?,
            _ => return Err(unsupported()),
        };
        let is_ec_sig = matches!(
            algorithm_oid,
            oids::ECDSA_WITH_SHA256 | oids::ECDSA_WITH_SHA384 | oids::EC_PUBLIC_KEY
        );
        let alg: &'static dyn signature::VerificationAlgorithm = match (
            self.key_algorithm.as_str(),
            self.key_curve.as_deref(),
            is_ec_sig,
            digest,
        ) {
            (oids::EC_PUBLIC_KEY, Some(oids::P256), true, oids::SHA256) => {
                &signature::ECDSA_P256_SHA256_ASN1
            }
            (oids::EC_PUBLIC_KEY, Some(oids::P256), true, oids::SHA384) => {
                &signature::ECDSA_P256_SHA384_ASN1
            }
            (oids::EC_PUBLIC_KEY, Some(oids::P384), true, oids::SHA256) => {
                &signature::ECDSA_P384_SHA256_ASN1
            }
            (oids::EC_PUBLIC_KEY, Some(oids::P384), true, oids::SHA384) => {
                &signature::ECDSA_P384_SHA384_ASN1
            }
            (oids::RSA_ENCRYPTION, _, false, oids::SHA256) => {
                &signature::RSA_PKCS1_2048_8192_SHA256
            }
            (oids::RSA_ENCRYPTION, _, false, oids::SHA384) => {
                &signature::RSA_PKCS1_2048_8192_SHA384
            }
            (oids::RSA_ENCRYPTION, _, false, oids::SHA512) => {
                &signature::RSA_PKCS1_2048_8192_SHA512
            }
            _ => return Err(unsupported()),
        };
        signature::UnparsedPublicKey::new(alg, self.public_key)
            .verify(message, signature_bytes)
            .map_err(|_| TrustError::BadSignature)
    }

    /// True when `issuer` signed this certificate (names chain and signature verifies).
    fn signed_by(&self, issuer: &Certificate<'_>) -> Result<(), TrustError> {
        issuer
            .verify(&self.signature_algorithm, None, self.tbs, self.signature)
            .map_err(|e| match e {
                TrustError::BadSignature => TrustError::CertificateSignature {
                    subject: self.subject_string(),
                    issuer: issuer.subject_string(),
                },
                other => other,
            })
    }
}

/// Renders a DER Name as `CN=…, O=…` (best effort, for messages only).
pub fn name_to_string(name_der: &[u8]) -> String {
    fn render(name_der: &[u8]) -> Result<String, Asn1Error> {
        let name = asn1::parse_single_expected(name_der, tag::SEQUENCE)?;
        let mut parts = Vec::new();
        for rdn in name.children_vec()? {
            for atv in rdn.children_vec()? {
                let mut d = atv.children()?;
                let oid = d.read_expected(tag::OID)?.oid()?;
                let value = d.read()?;
                let label = match oid.as_str() {
                    "2.5.4.3" => "CN".to_string(),
                    "2.5.4.10" => "O".to_string(),
                    "2.5.4.11" => "OU".to_string(),
                    "2.5.4.6" => "C".to_string(),
                    "2.5.4.7" => "L".to_string(),
                    "2.5.4.8" => "ST".to_string(),
                    "2.5.4.5" => "serialNumber".to_string(),
                    "2.5.4.97" => "organizationIdentifier".to_string(),
                    other => other.to_string(),
                };
                let text = match value.tag {
                    tag::UTF8_STRING
                    | tag::PRINTABLE_STRING
                    | tag::IA5_STRING
                    | tag::TELETEX_STRING => String::from_utf8_lossy(value.content).into_owned(),
                    _ => format!("#{}", hex::encode(value.raw)),
                };
                parts.push(format!("{label}={text}"));
            }
        }
        Ok(parts.join(", "))
    }
    render(name_der).unwrap_or_else(|_| format!("<unparsable name {}>", hex::encode(name_der)))
}

/// Decodes every `-----BEGIN {label}-----` block of a PEM document (RFC 7468).
pub fn pem_blocks(pem: &[u8], label: &str) -> Result<Vec<Vec<u8>>, TrustError> {
    use base64::Engine as _;
    let text = std::str::from_utf8(pem).map_err(|_| TrustError::Pem("not UTF-8 text".into()))?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let stop = after
            .find(&end)
            .ok_or_else(|| TrustError::Pem(format!("unterminated {label} block")))?;
        let body: String = after[..stop]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| TrustError::Pem(format!("bad base64 in {label} block: {e}")))?;
        out.push(der);
        rest = &after[stop + end.len()..];
    }
    Ok(out)
}

/// Encodes DER as a PEM block with 64-column lines (RFC 7468 §2).
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A set of trusted root certificates.
#[derive(Debug, Clone)]
pub struct TrustAnchors {
    roots: Vec<Vec<u8>>,
}

impl TrustAnchors {
    /// Loads every CERTIFICATE block of a PEM bundle; each must parse.
    pub fn from_pem(pem: &[u8]) -> Result<Self, TrustError> {
        let roots = pem_blocks(pem, "CERTIFICATE")?;
        if roots.is_empty() {
            return Err(TrustError::Pem("no CERTIFICATE block".into()));
        }
        Self::from_der(roots)
    }

    /// Uses these DER certificates as anchors; each must parse.
    pub fn from_der(roots: Vec<Vec<u8>>) -> Result<Self, TrustError> {
        if roots.is_empty() {
            return Err(TrustError::NoAnchors);
        }
        for root in &roots {
            Certificate::parse(root)?;
        }
        Ok(TrustAnchors { roots })
    }

    /// The anchors' DER.
    pub fn roots_der(&self) -> &[Vec<u8>] {
        &self.roots
    }
}

/// What the leaf certificate of a path must be usable for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificatePurpose {
    /// Electronic seal: keyUsage digitalSignature or nonRepudiation.
    Seal,
    /// RFC 3161 TSA: EKU critical with only id-kp-timeStamping (RFC 3161 §2.3),
    /// keyUsage digitalSignature or nonRepudiation.
    Timestamping,
}

impl CertificatePurpose {
    fn label(self) -> &'static str {
        match self {
            CertificatePurpose::Seal => "sealing",
            CertificatePurpose::Timestamping => "timestamping",
        }
    }
}

/// Checks the leaf's extensions for `purpose`; returns the reason on failure.
pub(crate) fn purpose_problem(
    cert: &Certificate<'_>,
    purpose: CertificatePurpose,
) -> Result<Option<String>, TrustError> {
    let ku = cert.key_usage()?;
    let signing_ku = key_usage::DIGITAL_SIGNATURE | key_usage::NON_REPUDIATION;
    match purpose {
        CertificatePurpose::Seal => match ku {
            None => Ok(Some(
                "key usage extension missing (digitalSignature or nonRepudiation required)".into(),
            )),
            Some(bits) if bits & signing_ku == 0 => Ok(Some(
                "key usage must include digitalSignature or nonRepudiation".into(),
            )),
            Some(_) => Ok(None),
        },
        CertificatePurpose::Timestamping => {
            // RFC 3161 §2.3: "The corresponding certificate MUST contain only one
            // instance of the extended key usage field extension ... with
            // KeyPurposeID having value id-kp-timeStamping. This extension MUST be
            // critical."
            match cert.extended_key_usage()? {
                Some((true, purposes))
                    if purposes.len() == 1 && purposes[0] == oids::KP_TIME_STAMPING => {}
                _ => {
                    return Ok(Some(
                        "extended key usage must be critical and contain only timeStamping".into(),
                    ));
                }
            }
            match ku {
                None => Ok(Some(
                    "key usage extension missing (digitalSignature required)".into(),
                )),
                Some(bits) if bits & signing_ku == 0 => Ok(Some(
                    "key usage must include digitalSignature or nonRepudiation".into(),
                )),
                Some(_) => Ok(None),
            }
        }
    }
}

const KNOWN_EXTENSIONS: &[&str] = &[
    oids::SUBJECT_KEY_IDENTIFIER,
    oids::KEY_USAGE,
    oids::SUBJECT_ALT_NAME,
    oids::BASIC_CONSTRAINTS,
    oids::CERTIFICATE_POLICIES,
    oids::AUTHORITY_KEY_IDENTIFIER,
    oids::EXT_KEY_USAGE,
    oids::QC_STATEMENTS,
];

fn check_critical_extensions(cert: &Certificate<'_>) -> Result<(), TrustError> {
    // RFC 5280 §4.2: a system MUST reject a certificate with a critical extension
    // it does not recognise.
    match cert
        .extensions
        .iter()
        .find(|e| e.critical && !KNOWN_EXTENSIONS.contains(&e.oid.as_str()))
    {
        Some(e) => Err(TrustError::UnknownCriticalExtension {
            subject: cert.subject_string(),
            oid: e.oid.clone(),
        }),
        None => Ok(()),
    }
}

/// Checks that `issuer` may issue certificates with `below` CA certificates under it
/// (RFC 5280 §4.2.1.9 basicConstraints, §4.2.1.3 keyCertSign).
fn check_issuer(issuer: &Certificate<'_>, below: u64) -> Result<(), TrustError> {
    let not_ca = |reason: &str| TrustError::NotCa {
        subject: issuer.subject_string(),
        reason: reason.into(),
    };
    match issuer.basic_constraints()? {
        Some((true, path_len)) => {
            if path_len.is_some_and(|max| below > max) {
                return Err(TrustError::PathTooLong {
                    subject: issuer.subject_string(),
                });
            }
        }
        _ => return Err(not_ca("basicConstraints cA is not set")),
    }
    if let Some(bits) = issuer.key_usage()?
        && bits & key_usage::KEY_CERT_SIGN == 0
    {
        return Err(not_ca("keyUsage lacks keyCertSign"));
    }
    Ok(())
}

const MAX_DEPTH: usize = 8;

fn build(
    path: &mut Vec<Vec<u8>>,
    pool: &[Vec<u8>],
    anchors: &TrustAnchors,
    at: OffsetDateTime,
) -> Result<(), TrustError> {
    let current_der = path.last().cloned().unwrap_or_default();
    let current = Certificate::parse(&current_der)?;
    let cas_below = (path.len() - 1) as u64;
    if path.len() > MAX_DEPTH {
        return Err(TrustError::PathTooLong {
            subject: current.subject_string(),
        });
    }
    let aki = current.authority_key_identifier()?;
    let mut last_error: Option<TrustError> = None;
    let candidates = anchors
        .roots_der()
        .iter()
        .map(|c| (c, true))
        .chain(pool.iter().map(|c| (c, false)));
    for (candidate_der, is_anchor) in candidates {
        if path.iter().any(|p| p == candidate_der) && !is_anchor {
            continue;
        }
        let candidate = Certificate::parse(candidate_der)?;
        if candidate.subject != current.issuer {
            continue;
        }
        if let (Some(aki), Some(ski)) = (aki, candidate.subject_key_identifier()?)
            && aki != ski
        {
            continue;
        }
        let attempt = (|| {
            current.signed_by(&candidate)?;
            check_issuer(&candidate, cas_below)?;
            candidate.check_validity(at)?;
            check_critical_extensions(&candidate)?;
            Ok::<(), TrustError>(())
        })();
        match attempt {
            Ok(()) if is_anchor => {
                // The anchor itself ends the path; a self-signed leaf that is an
                // anchor is returned once.
                if path.last() != Some(candidate_der) {
                    path.push(candidate_der.clone());
                }
                return Ok(());
            }
            Ok(()) => {
                path.push(candidate_der.clone());
                match build(path, pool, anchors, at) {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        path.pop();
                        last_error = Some(e);
                    }
                }
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| TrustError::NoIssuer {
        subject: current.subject_string(),
        issuer: name_to_string(current.issuer),
    }))
}

/// Builds a path leaf → (intermediates from `pool`) → anchor and checks it at `at`
/// (the event's time, not today): every signature, every validity window, CA
/// basicConstraints/keyCertSign on issuers, pathLenConstraint, unknown critical
/// extensions, and the leaf's purpose. Returns the path, leaf first, anchor last.
pub fn verify_certificate_path(
    leaf_der: &[u8],
    pool: &[Vec<u8>],
    anchors: &TrustAnchors,
    at: OffsetDateTime,
    purpose: CertificatePurpose,
) -> Result<Vec<Vec<u8>>, TrustError> {
    let leaf = Certificate::parse(leaf_der)?;
    leaf.check_validity(at)?;
    check_critical_extensions(&leaf)?;
    if let Some(reason) = purpose_problem(&leaf, purpose)? {
        return Err(TrustError::Purpose {
            subject: leaf.subject_string(),
            purpose: purpose.label(),
            reason,
        });
    }
    let mut path = vec![leaf_der.to_vec()];
    build(&mut path, pool, anchors, at)?;
    Ok(path)
}

/// Verifies `signature` over `message` with the SubjectPublicKeyInfo of `cert_der`,
/// given the signature algorithm OID (ecdsa-with-SHA256/384,
/// sha256/384/512WithRSAEncryption).
pub fn verify_signature_with_certificate(
    cert_der: &[u8],
    algorithm_oid: &str,
    message: &[u8],
    signature: &[u8],
) -> Result<(), TrustError> {
    Certificate::parse(cert_der)?.verify(algorithm_oid, None, message, signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::pki::test_support::dev_pki;
    use time::Duration;

    #[test]
    fn dev_chain_verifies_at_event_time_only() {
        let pki = dev_pki();
        let anchors = TrustAnchors::from_pem(pki.material.roots_pem.as_bytes()).expect("anchors");
        let now = pki.now;
        let tsa = pki.material.tsa.as_ref().expect("tsa");
        let path = verify_certificate_path(
            tsa.certificate_der(),
            &[],
            &anchors,
            now,
            CertificatePurpose::Timestamping,
        )
        .expect("tsa path");
        assert_eq!(path.len(), 2);
        assert_eq!(path[1], anchors.roots_der()[0]);
        verify_certificate_path(
            pki.material.seal.certificate_der(),
            &[],
            &anchors,
            now,
            CertificatePurpose::Seal,
        )
        .expect("seal path");
        // The seal certificate has no timeStamping EKU.
        let err = verify_certificate_path(
            pki.material.seal.certificate_der(),
            &[],
            &anchors,
            now,
            CertificatePurpose::Timestamping,
        )
        .expect_err("purpose");
        assert!(err.to_string().contains("only timeStamping"), "{err}");
        let err = verify_certificate_path(
            tsa.certificate_der(),
            &[],
            &anchors,
            now + Duration::days(365 * 30),
            CertificatePurpose::Timestamping,
        )
        .expect_err("expired");
        assert!(matches!(err, TrustError::Expired { .. }), "{err}");
        let err = verify_certificate_path(
            tsa.certificate_der(),
            &[],
            &anchors,
            now - Duration::days(1),
            CertificatePurpose::Timestamping,
        )
        .expect_err("not yet valid");
        assert!(matches!(err, TrustError::NotYetValid { .. }), "{err}");
    }

    #[test]
    fn wrong_anchor_and_tampered_certificate_fail() {
        let pki = dev_pki();
        let other = crate::core::pki::test_support::other_pki();
        let anchors = TrustAnchors::from_der(other.material.roots_der.clone()).expect("anchors");
        let err = verify_certificate_path(
            pki.material.seal.certificate_der(),
            &[],
            &anchors,
            pki.now,
            CertificatePurpose::Seal,
        )
        .expect_err("foreign root");
        // Same subject name, different key: either the AKI filter or the signature fails.
        assert!(
            matches!(
                err,
                TrustError::NoIssuer { .. } | TrustError::CertificateSignature { .. }
            ),
            "{err}"
        );
        let good = TrustAnchors::from_der(pki.material.roots_der.clone()).expect("anchors");
        let mut cert = pki.material.seal.certificate_der().to_vec();
        // Flip a byte inside the subject public key (well inside tbsCertificate).
        let n = cert.len() / 2;
        cert[n] ^= 0x01;
        assert!(
            verify_certificate_path(&cert, &[], &good, pki.now, CertificatePurpose::Seal).is_err()
        );
    }

    #[test]
    fn signature_helper() {
        let pki = dev_pki();
        let msg = b"hello";
        let sig = pki.material.seal.sign(msg).expect("sign");
        verify_signature_with_certificate(
            pki.material.seal.certificate_der(),
            oids::ECDSA_WITH_SHA256,
            msg,
            &sig,
        )
        .expect("verify");
        assert!(
            verify_signature_with_certificate(
                pki.material.seal.certificate_der(),
                oids::ECDSA_WITH_SHA256,
                b"hellO",
                &sig
            )
            .is_err()
        );
        assert!(matches!(
            verify_signature_with_certificate(
                pki.material.seal.certificate_der(),
                oids::SHA256_WITH_RSA,
                msg,
                &sig
            ),
            Err(TrustError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn pem_round_trip() {
        let der = vec![1u8, 2, 3, 250];
        let pem = pem_encode("CERTIFICATE", &der);
        assert_eq!(
            pem_blocks(pem.as_bytes(), "CERTIFICATE").expect("pem"),
            vec![der]
        );
        assert!(TrustAnchors::from_pem(b"nothing").is_err());
    }
}
