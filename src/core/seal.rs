//! CMS (RFC 5652) detached electronic seals over evidence bytes, and the CMS
//! `SignedData` building/parsing shared with the RFC 3161 time-stamp tokens.
//!
//! A seal is `ContentInfo(id-signedData)` with `SignedData` v1, digest SHA-256, a
//! detached `id-data` content, the signer's certificate chain, and one
//! `SignerInfo` v1 whose signed attributes are content-type, signing-time,
//! message-digest and signing-certificate-v2 (RFC 5035). The ECDSA P-256
//! signature covers the DER of the signed attributes as a `SET OF` (RFC 5652
//! §5.4). A judge verifies it with:
//!
//! ```text
//! openssl cms -verify -binary -inform DER -in e.p7s -content e.json -CAfile root.pem -purpose any
//! ```
//!
//! Building and parsing are pure (no I/O, no clock).

use std::sync::Arc;

use time::OffsetDateTime;

use crate::core::asn1::{self, Asn1Error, Tlv, tag};
use crate::core::pki::{PkiError, SigningIdentity};
use crate::core::trust::{self, Certificate, TrustError};

/// CMS and ESS object identifiers.
pub mod oids {
    /// id-signedData (RFC 5652 §5.1).
    pub const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
    /// id-data (RFC 5652 §4).
    pub const DATA: &str = "1.2.840.113549.1.7.1";
    /// id-contentType attribute (RFC 5652 §11.1).
    pub const CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
    /// id-messageDigest attribute (RFC 5652 §11.2).
    pub const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
    /// id-signingTime attribute (RFC 5652 §11.3).
    pub const SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
    /// id-aa-signingCertificate (RFC 2634 §5.4).
    pub const SIGNING_CERTIFICATE: &str = "1.2.840.113549.1.9.16.2.12";
    /// id-aa-signingCertificateV2 (RFC 5035 §3).
    pub const SIGNING_CERTIFICATE_V2: &str = "1.2.840.113549.1.9.16.2.47";
    /// id-ct-TSTInfo (RFC 3161 §2.4.2).
    pub const TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
    /// id-aa-signatureTimeStampToken (RFC 3161 appendix A; ETSI EN 319 122-1 §5.3): an
    /// unsigned attribute holding a timestamp token over the SignerInfo's signature value.
    pub const SIGNATURE_TIME_STAMP_TOKEN: &str = "1.2.840.113549.1.9.16.2.14";
}

/// Errors while building, parsing or verifying CMS signed data.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The structure is not the expected DER CMS.
    #[error("malformed CMS: {0}")]
    Malformed(String),
    /// The ContentInfo or eContent has another type than expected.
    #[error("CMS content type is {found}, expected {expected}")]
    UnexpectedContentType {
        /// Content type found.
        found: String,
        /// Content type required.
        expected: &'static str,
    },
    /// A seal must be detached (no eContent).
    #[error("the seal embeds its content; a detached signature was expected")]
    NotDetached,
    /// A digest or signature algorithm we do not support.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// A required signed attribute is absent.
    #[error("signed attribute {0} is missing")]
    MissingAttribute(&'static str),
    /// The content-type signed attribute disagrees with the eContentType (RFC 5652 §11.1).
    #[error("content-type signed attribute is {found}, expected {expected}")]
    ContentTypeAttribute {
        /// Value found.
        found: String,
        /// Value required.
        expected: String,
    },
    /// The message-digest signed attribute does not match the content's hash (RFC 5652 §11.2).
    #[error("message-digest signed attribute does not match the hash of the content")]
    MessageDigestMismatch,
    /// No certificate matches the SignerInfo's identifier.
    #[error("signer certificate ({0}) is not among the available certificates")]
    SignerNotFound(String),
    /// The ESS signing-certificate(-v2) attribute does not designate the signer certificate.
    #[error("signing-certificate attribute does not identify the signer certificate: {0}")]
    SigningCertificateMismatch(String),
    /// The signature does not verify with the signer's certificate.
    #[error("CMS signature does not verify: {0}")]
    Signature(TrustError),
    /// The signer's certificate has no valid path to a trust anchor for sealing.
    #[error(transparent)]
    Path(TrustError),
    /// Signing failed.
    #[error("{0}")]
    Sign(#[from] PkiError),
    /// A value that cannot be encoded (e.g. a signing time out of range).
    #[error("cannot encode: {0}")]
    Encode(String),
}

impl From<Asn1Error> for SealError {
    fn from(e: Asn1Error) -> Self {
        SealError::Malformed(e.to_string())
    }
}

// ---------------------------------------------------------------------------
// Digests
// ---------------------------------------------------------------------------

/// Hash `data` with the digest algorithm `oid` (SHA-256/384/512, and SHA-1 only
/// for legacy ESSCertID v1 comparisons).
pub(crate) fn digest(oid: &str, data: &[u8]) -> Result<Vec<u8>, SealError> {
    let alg = match oid {
        trust::oids::SHA256 => &ring::digest::SHA256,
        trust::oids::SHA384 => &ring::digest::SHA384,
        trust::oids::SHA512 => &ring::digest::SHA512,
        trust::oids::SHA1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        other => return Err(SealError::UnsupportedAlgorithm(format!("digest {other}"))),
    };
    Ok(ring::digest::digest(alg, data).as_ref().to_vec())
}

/// SHA-256 of `data` as an array.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

// ---------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------

fn oid_der(dotted: &str) -> Result<Vec<u8>, SealError> {
    asn1::oid(dotted).map_err(|e| SealError::Encode(e.to_string()))
}

/// `Attribute ::= SEQUENCE { attrType OID, attrValues SET OF AttributeValue }`
/// with a single value (RFC 5652 §5.3).
fn attribute(oid: &[u8], value: &[u8]) -> Vec<u8> {
    asn1::sequence(&[oid, &asn1::set(&[value])])
}

/// Everything constant about signing CMS `SignedData` with one identity and one
/// eContentType, computed once: algorithm identifiers, the SignerIdentifier, the
/// content-type and signing-certificate-v2 attributes, and the certificates field.
pub(crate) struct CmsSigner {
    identity: Arc<SigningIdentity>,
    /// `INTEGER version` of SignedData (RFC 5652 §5.1).
    signed_data_version: Vec<u8>,
    /// `SET { AlgorithmIdentifier sha256 }`.
    digest_algorithms: Vec<u8>,
    /// `AlgorithmIdentifier sha256`, parameters absent (RFC 5754 §2).
    sha256_alg: Vec<u8>,
    /// `AlgorithmIdentifier ecdsa-with-SHA256`, parameters absent (RFC 5758 §3.2).
    ecdsa_alg: Vec<u8>,
    /// eContentType OID TLV.
    econtent_type: Vec<u8>,
    /// `IssuerAndSerialNumber` (RFC 5652 §10.2.4).
    sid: Vec<u8>,
    /// content-type attribute.
    content_type_attr: Vec<u8>,
    /// Prefix of the message-digest attribute up to the 32 digest octets.
    message_digest_prefix: Vec<u8>,
    /// signing-certificate-v2 attribute.
    signing_certificate_attr: Vec<u8>,
    /// `[0] IMPLICIT CertificateSet` with leaf and intermediates, DER-sorted.
    certificates: Vec<u8>,
}

impl CmsSigner {
    /// Precomputes the constant parts for `identity` signing `econtent_type` content.
    pub(crate) fn new(
        identity: Arc<SigningIdentity>,
        econtent_type: &str,
    ) -> Result<Self, SealError> {
        let sha256_alg = asn1::sequence(&[&oid_der(trust::oids::SHA256)?]);
        let ecdsa_alg = asn1::sequence(&[&oid_der(trust::oids::ECDSA_WITH_SHA256)?]);
        let econtent_type_der = oid_der(econtent_type)?;
        // RFC 5652 §5.1: version 3 when eContentType is not id-data, else 1 (we use
        // issuerAndSerialNumber and no attribute certificates).
        let version = if econtent_type == oids::DATA { 1 } else { 3 };
        let content_type_attr = attribute(&oid_der(oids::CONTENT_TYPE)?, &econtent_type_der);
        let message_digest_template = attribute(
            &oid_der(oids::MESSAGE_DIGEST)?,
            &asn1::octet_string(&[0u8; 32]),
        );
        let message_digest_prefix =
            message_digest_template[..message_digest_template.len() - 32].to_vec();

        // RFC 5035 §3: ESSCertIDv2 { hashAlgorithm DEFAULT id-sha256 (omitted, DER
        // §11.5), certHash, issuerSerial { issuer GeneralNames, serialNumber } }.
        // GeneralName directoryName is [4] EXPLICIT Name (Name is a CHOICE).
        let general_names = asn1::sequence(&[&asn1::context(4, true, identity.issuer_der())]);
        let issuer_serial = asn1::sequence(&[
            &general_names,
            &asn1::tlv(tag::INTEGER, identity.serial_content()),
        ]);
        let ess_cert_id = asn1::sequence(&[
            &asn1::octet_string(&identity.certificate_sha256()),
            &issuer_serial,
        ]);
        let signing_certificate_v2 = asn1::sequence(&[&asn1::sequence(&[&ess_cert_id])]);
        let signing_certificate_attr = attribute(
            &oid_der(oids::SIGNING_CERTIFICATE_V2)?,
            &signing_certificate_v2,
        );

        let mut certs: Vec<&[u8]> = vec![identity.certificate_der()];
        certs.extend(identity.intermediates_der().iter().map(Vec::as_slice));
        // CertificateSet is a SET OF: DER-sorted (X.690 §11.6), [0] IMPLICIT.
        let certificates = asn1::context(0, true, &asn1::sorted_concat(&certs));

        Ok(CmsSigner {
            signed_data_version: asn1::integer_u64(version),
            digest_algorithms: asn1::set(&[&sha256_alg]),
            sid: identity.issuer_and_serial_der(),
            sha256_alg,
            ecdsa_alg,
            econtent_type: econtent_type_der,
            content_type_attr,
            message_digest_prefix,
            signing_certificate_attr,
            certificates,
            identity,
        })
    }

    /// The signing identity.
    pub(crate) fn identity(&self) -> &SigningIdentity {
        &self.identity
    }

    /// Builds `ContentInfo(SignedData)`. `econtent` is the encapsulated content
    /// (`None` for a detached signature), `content_digest` its SHA-256, and
    /// `extra_attrs` further signed attributes (already encoded).
    pub(crate) fn sign(
        &self,
        econtent: Option<&[u8]>,
        content_digest: &[u8; 32],
        extra_attrs: &[&[u8]],
        include_certificates: bool,
    ) -> Result<Vec<u8>, SealError> {
        let mut message_digest_attr = Vec::with_capacity(self.message_digest_prefix.len() + 32);
        message_digest_attr.extend_from_slice(&self.message_digest_prefix);
        message_digest_attr.extend_from_slice(content_digest);
        let mut attrs: Vec<&[u8]> = vec![
            &self.content_type_attr,
            &message_digest_attr,
            &self.signing_certificate_attr,
        ];
        attrs.extend_from_slice(extra_attrs);
        // RFC 5652 §5.4: the signature covers the DER of SignedAttributes with an
        // EXPLICIT SET OF tag; DER requires the SET OF to be sorted (X.690 §11.6).
        let mut signed_attrs = asn1::set(&attrs);
        let signature = self.identity.sign(&signed_attrs)?;
        // In SignerInfo the same octets appear under [0] IMPLICIT.
        signed_attrs[0] = tag::context(0, true);

        let signer_info = asn1::sequence(&[
            &[tag::INTEGER, 1, 1], // version 1: issuerAndSerialNumber (RFC 5652 §5.3)
            &self.sid,
            &self.sha256_alg,
            &signed_attrs,
            &self.ecdsa_alg,
            &asn1::octet_string(&signature),
        ]);
        let econtent_field;
        let encap = match econtent {
            Some(content) => {
                econtent_field = asn1::context(0, true, &asn1::octet_string(content));
                asn1::sequence(&[&self.econtent_type, &econtent_field])
            }
            None => asn1::sequence(&[&self.econtent_type]),
        };
        let certificates: &[u8] = if include_certificates {
            &self.certificates
        } else {
            &[]
        };
        let signed_data = asn1::sequence(&[
            &self.signed_data_version,
            &self.digest_algorithms,
            &encap,
            certificates,
            &asn1::set(&[&signer_info]),
        ]);
        Ok(content_info(&signed_data))
    }
}

/// `ContentInfo { id-signedData, [0] EXPLICIT SignedData }` (RFC 5652 §3).
fn content_info(signed_data: &[u8]) -> Vec<u8> {
    // id-signedData 1.2.840.113549.1.7.2, pre-encoded.
    const SIGNED_DATA_OID: [u8; 11] = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
    ];
    asn1::sequence(&[&SIGNED_DATA_OID, &asn1::context(0, true, signed_data)])
}

/// Adds `token_der`, an RFC 3161 token over the SHA-256 of the seal's signature value, as
/// the unsigned attribute signature-time-stamp (RFC 3161 appendix A): the seal becomes a
/// CAdES baseline B-T signature (ETSI EN 319 122-1 §5.3, §6.3). The signed part is left
/// byte for byte as it was, so the signature stays valid.
pub fn with_signature_timestamp(seal_der: &[u8], token_der: &[u8]) -> Result<Vec<u8>, SealError> {
    let sd = signed_data_of(seal_der)?;
    let mut fields = sd.children_vec()?;
    let signer_infos = fields
        .pop()
        .ok_or_else(|| malformed("SignedData without SignerInfos"))?;
    signer_infos.expect_tag(tag::SET)?;
    let signer_infos = signer_infos.children_vec()?;
    let [signer_info] = signer_infos.as_slice() else {
        return Err(malformed("expected exactly one SignerInfo"));
    };
    let parts = signer_info.children_vec()?;
    if parts.iter().any(|p| p.tag == tag::context(1, true)) {
        return Err(malformed("the SignerInfo already has unsigned attributes"));
    }
    let unsigned = asn1::context(
        1,
        true,
        &attribute(&oid_der(oids::SIGNATURE_TIME_STAMP_TOKEN)?, token_der),
    );
    let mut children: Vec<&[u8]> = parts.iter().map(|p| p.raw).collect();
    children.push(&unsigned);
    let signer_info = asn1::sequence(&children);
    let mut sd_children: Vec<&[u8]> = fields.iter().map(|f| f.raw).collect();
    let signer_set = asn1::set(&[&signer_info]);
    sd_children.push(&signer_set);
    Ok(content_info(&asn1::sequence(&sd_children)))
}

/// Creates detached CMS seals with one identity.
pub struct Sealer {
    signer: CmsSigner,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("identity", self.signer.identity())
            .finish()
    }
}

impl Sealer {
    /// A sealer for `identity`.
    ///
    /// # Panics
    /// Never in practice: the only fallible step encodes constant, valid OIDs.
    pub fn new(identity: Arc<SigningIdentity>) -> Self {
        let signer = CmsSigner::new(identity, oids::DATA)
            // Cannot fail: every OID encoded here is a valid constant.
            .expect("constant OIDs encode");
        Sealer { signer }
    }

    /// `ContentInfo(id-signedData)` with SignedData v1, digestAlgorithms {sha256},
    /// encapContentInfo {id-data, no eContent (detached)}, certificates [0] {leaf +
    /// intermediates}, one SignerInfo v1 (issuerAndSerialNumber, sha256, signedAttrs =
    /// content-type id-data, signing-time (UTCTime before 2050, GeneralizedTime
    /// after), message-digest, signing-certificate-v2), ecdsa-with-SHA256).
    pub fn seal(&self, content: &[u8], signing_time: OffsetDateTime) -> Result<Vec<u8>, SealError> {
        // RFC 5652 §11.3: signing-time is a Time (UTCTime through 2049).
        let time = asn1::time_choice(signing_time).map_err(|e| SealError::Encode(e.to_string()))?;
        let signing_time_attr = attribute(&oid_der(oids::SIGNING_TIME)?, &time);
        self.signer
            .sign(None, &sha256(content), &[&signing_time_attr], true)
    }
}

impl Sealer {
    /// The CMS signature of a PDF (PAdES, ETSI EN 319 142-1 §5.3): over `digest`, the SHA-256
    /// of the signed byte ranges, with content-type, message-digest and signing-certificate-v2
    /// as signed attributes and no signing-time (the signature timestamp gives the time).
    pub fn sign_pdf_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, SealError> {
        self.signer.sign(None, digest, &[], true)
    }
}

// ---------------------------------------------------------------------------
// Parsing and verification
// ---------------------------------------------------------------------------

/// How a SignerInfo designates its certificate (RFC 5652 §5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignerId {
    /// issuerAndSerialNumber: issuer Name DER and serial INTEGER content.
    IssuerSerial {
        /// Issuer Name (DER).
        issuer: Vec<u8>,
        /// serialNumber content octets.
        serial: Vec<u8>,
    },
    /// [0] subjectKeyIdentifier.
    KeyId(Vec<u8>),
}

impl std::fmt::Display for SignerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignerId::IssuerSerial { issuer, serial } => write!(
                f,
                "issuer \"{}\", serial {}",
                trust::name_to_string(issuer),
                hex::encode(serial)
            ),
            SignerId::KeyId(id) => write!(f, "subject key identifier {}", hex::encode(id)),
        }
    }
}

/// The single SignerInfo of a SignedData, owned.
#[derive(Debug, Clone)]
pub(crate) struct SignerInfoParts {
    pub(crate) sid: SignerId,
    pub(crate) digest_algorithm: String,
    /// The signed attributes re-tagged as `SET OF` (0x31): what the signature covers.
    pub(crate) signed_attrs: Vec<u8>,
    /// (attribute type, encoded values) in order of appearance.
    pub(crate) attributes: Vec<(String, Vec<Vec<u8>>)>,
    pub(crate) signature_algorithm: String,
    pub(crate) signature: Vec<u8>,
    /// Unsigned attributes (type, encoded values), in order of appearance.
    pub(crate) unsigned_attributes: Vec<(String, Vec<Vec<u8>>)>,
}

/// A parsed `ContentInfo(SignedData)` with exactly one signer, owned.
#[derive(Debug, Clone)]
pub(crate) struct SignedDataParts {
    pub(crate) version: u64,
    pub(crate) econtent_type: String,
    pub(crate) econtent: Option<Vec<u8>>,
    pub(crate) certificates: Vec<Vec<u8>>,
    pub(crate) signer: SignerInfoParts,
}

fn malformed(msg: impl Into<String>) -> SealError {
    SealError::Malformed(msg.into())
}

fn algorithm_oid(t: &Tlv<'_>) -> Result<String, SealError> {
    t.expect_tag(tag::SEQUENCE)?;
    let mut d = t.children()?;
    let oid = d.read_expected(tag::OID)?.oid()?;
    // Parameters: absent or NULL for the algorithms we support.
    if let Some(p) = d.read_optional(tag::NULL)? {
        p.null()?;
    }
    if !d.is_empty() {
        return Err(SealError::UnsupportedAlgorithm(format!(
            "{oid} with parameters"
        )));
    }
    Ok(oid)
}

/// The `SignedData` inside `ContentInfo { id-signedData, [0] EXPLICIT SignedData }`
/// (RFC 5652 §3).
fn signed_data_of(der: &[u8]) -> Result<Tlv<'_>, SealError> {
    let ci = asn1::parse_single_expected(der, tag::SEQUENCE)?;
    let mut ci = ci.children()?;
    let content_type = ci.read_expected(tag::OID)?.oid()?;
    if content_type != oids::SIGNED_DATA {
        return Err(SealError::UnexpectedContentType {
            found: content_type,
            expected: oids::SIGNED_DATA,
        });
    }
    let sd = ci.read_expected(tag::context(0, true))?.single_child()?;
    ci.finish()?;
    Ok(sd)
}

/// Parses `ContentInfo { id-signedData, [0] SignedData }` (RFC 5652 §3, §5).
pub(crate) fn parse_signed_data(der: &[u8]) -> Result<SignedDataParts, SealError> {
    let sd = signed_data_of(der)?;
    sd.expect_tag(tag::SEQUENCE)?;
    let mut sd = sd.children()?;
    let version = sd.read_expected(tag::INTEGER)?.u64()?;
    sd.read_expected(tag::SET)?; // digestAlgorithms: the signer's own is authoritative
    let mut encap = sd.read_sequence()?;
    let econtent_type = encap.read_expected(tag::OID)?.oid()?;
    let econtent = match encap.read_optional(tag::context(0, true))? {
        Some(wrapper) => Some(wrapper.single_child()?.octet_string()?.to_vec()),
        None => None,
    };
    encap.finish()?;
    let mut certificates = Vec::new();
    if let Some(certs) = sd.read_optional(tag::context(0, true))? {
        for choice in certs.children_vec()? {
            // CertificateChoices: only plain X.509 certificates are used; other
            // choices (attribute certificates, …) are ignored.
            if choice.tag == tag::SEQUENCE {
                certificates.push(choice.raw.to_vec());
            }
        }
    }
    sd.read_optional(tag::context(1, true))?; // crls: not used
    let signer_infos = sd.read_expected(tag::SET)?.children_vec()?;
    sd.finish()?;
    let [signer_info] = signer_infos.as_slice() else {
        return Err(malformed(format!(
            "expected exactly one SignerInfo, found {}",
            signer_infos.len()
        )));
    };
    let signer = parse_signer_info(signer_info)?;
    Ok(SignedDataParts {
        version,
        econtent_type,
        econtent,
        certificates,
        signer,
    })
}

fn parse_signer_info(si: &Tlv<'_>) -> Result<SignerInfoParts, SealError> {
    si.expect_tag(tag::SEQUENCE)?;
    let mut d = si.children()?;
    let version = d.read_expected(tag::INTEGER)?.u64()?;
    let sid_tlv = d.read()?;
    let sid = match (version, sid_tlv.tag) {
        (1, tag::SEQUENCE) => {
            let mut ias = sid_tlv.children()?;
            let issuer = ias.read_expected(tag::SEQUENCE)?.raw.to_vec();
            let serial = ias.read_expected(tag::INTEGER)?.integer_bytes()?.to_vec();
            ias.finish()?;
            SignerId::IssuerSerial { issuer, serial }
        }
        (3, t) if t == tag::context(0, false) => SignerId::KeyId(sid_tlv.content.to_vec()),
        _ => {
            return Err(malformed(format!(
                "SignerInfo version {version} does not match its signer identifier"
            )));
        }
    };
    let digest_algorithm = algorithm_oid(&d.read_expected(tag::SEQUENCE)?)?;
    let attrs = d
        .read_optional(tag::context(0, true))?
        .ok_or(SealError::MissingAttribute("(signed attributes)"))?;
    let signature_algorithm = algorithm_oid(&d.read_expected(tag::SEQUENCE)?)?;
    let signature = d.read_expected(tag::OCTET_STRING)?.content.to_vec();
    let unsigned = d.read_optional(tag::context(1, true))?;
    d.finish()?;
    let unsigned_attributes = match unsigned {
        Some(unsigned) => attribute_list(&unsigned)?,
        None => Vec::new(),
    };
    let attributes = attribute_list(&attrs)?;
    for (i, (attr_type, _)) in attributes.iter().enumerate() {
        if attributes[..i].iter().any(|(t, _)| t == attr_type) {
            return Err(malformed(format!("duplicate signed attribute {attr_type}")));
        }
    }
    let mut signed_attrs = attrs.raw.to_vec();
    // RFC 5652 §5.4: the signature is over the EXPLICIT SET OF encoding.
    signed_attrs[0] = tag::SET;
    Ok(SignerInfoParts {
        sid,
        digest_algorithm,
        signed_attrs,
        attributes,
        signature_algorithm,
        signature,
        unsigned_attributes,
    })
}

/// An attribute's type (OID) and its encoded values.
type Attribute = (String, Vec<Vec<u8>>);

/// `SET OF Attribute { attrType, SET OF attrValues }` (RFC 5652 §5.3) as (type, encoded
/// values) in order of appearance.
fn attribute_list(attrs: &Tlv<'_>) -> Result<Vec<Attribute>, SealError> {
    let mut out = Vec::new();
    for attr in attrs.children_vec()? {
        attr.expect_tag(tag::SEQUENCE)?;
        let mut a = attr.children()?;
        let attr_type = a.read_expected(tag::OID)?.oid()?;
        let values = a
            .read_expected(tag::SET)?
            .children_vec()?
            .iter()
            .map(|v| v.raw.to_vec())
            .collect::<Vec<_>>();
        a.finish()?;
        out.push((attr_type, values));
    }
    Ok(out)
}

impl SignerInfoParts {
    /// The single value of attribute `oid` (RFC 5652 §11: content-type,
    /// message-digest and signing-time MUST have exactly one value).
    pub(crate) fn single_attribute(
        &self,
        oid: &str,
        name: &'static str,
    ) -> Result<Option<&[u8]>, SealError> {
        match self.attributes.iter().find(|(t, _)| t == oid) {
            None => Ok(None),
            Some((_, values)) if values.len() == 1 => Ok(Some(&values[0])),
            Some(_) => Err(malformed(format!(
                "attribute {name} must have exactly one value"
            ))),
        }
    }

    /// Finds the signer certificate among `certs`.
    pub(crate) fn find_signer<'c>(
        &self,
        certs: impl IntoIterator<Item = &'c Vec<u8>>,
    ) -> Result<&'c Vec<u8>, SealError> {
        for der in certs {
            let Ok(cert) = Certificate::parse(der) else {
                continue;
            };
            let matches = match &self.sid {
                SignerId::IssuerSerial { issuer, serial } => {
                    cert.issuer == issuer.as_slice() && cert.serial == serial.as_slice()
                }
                SignerId::KeyId(id) => cert
                    .subject_key_identifier()
                    .ok()
                    .flatten()
                    .is_some_and(|ski| ski == id.as_slice()),
            };
            if matches {
                return Ok(der);
            }
        }
        Err(SealError::SignerNotFound(self.sid.to_string()))
    }

    /// content-type attribute must equal `expected` (RFC 5652 §11.1).
    pub(crate) fn check_content_type(&self, expected: &str) -> Result<(), SealError> {
        let value = self
            .single_attribute(oids::CONTENT_TYPE, "content-type")?
            .ok_or(SealError::MissingAttribute("content-type"))?;
        let found = asn1::parse_single(value)?.oid()?;
        if found != expected {
            return Err(SealError::ContentTypeAttribute {
                found,
                expected: expected.to_string(),
            });
        }
        Ok(())
    }

    /// message-digest attribute must equal the hash of `content` with the
    /// signer's digest algorithm (RFC 5652 §11.2).
    pub(crate) fn check_message_digest(&self, content: &[u8]) -> Result<(), SealError> {
        let value = self
            .single_attribute(oids::MESSAGE_DIGEST, "message-digest")?
            .ok_or(SealError::MissingAttribute("message-digest"))?;
        let expected = asn1::parse_single(value)?.octet_string()?;
        let actual = digest(&self.digest_algorithm, content)?;
        if !constant_time_eq(expected, &actual) {
            return Err(SealError::MessageDigestMismatch);
        }
        Ok(())
    }

    /// signing-time attribute, if present and well formed.
    pub(crate) fn signing_time(&self) -> Option<OffsetDateTime> {
        let value = self
            .single_attribute(oids::SIGNING_TIME, "signing-time")
            .ok()??;
        asn1::parse_single(value).ok()?.time().ok()
    }

    /// The ESS signing-certificate-v2 (RFC 5035) or v1 (RFC 2634) attribute must
    /// be present and its first ESSCertID must designate `cert_der` (hash, and
    /// issuer/serial when present). Both are checked when both are present.
    pub(crate) fn check_signing_certificate(&self, cert_der: &[u8]) -> Result<(), SealError> {
        let cert = Certificate::parse(cert_der)
            .map_err(|e| malformed(format!("signer certificate: {e}")))?;
        let v2 = self.single_attribute(oids::SIGNING_CERTIFICATE_V2, "signing-certificate-v2")?;
        let v1 = self.single_attribute(oids::SIGNING_CERTIFICATE, "signing-certificate")?;
        if v1.is_none() && v2.is_none() {
            return Err(SealError::MissingAttribute("signing-certificate-v2"));
        }
        if let Some(v2) = v2 {
            check_ess_cert_id(v2, &cert, true)?;
        }
        if let Some(v1) = v1 {
            check_ess_cert_id(v1, &cert, false)?;
        }
        Ok(())
    }

    /// Verifies the signature over the signed attributes with `cert_der`'s key.
    pub(crate) fn verify_signature(&self, cert_der: &[u8]) -> Result<(), SealError> {
        let cert = Certificate::parse(cert_der).map_err(SealError::Signature)?;
        cert.verify(
            &self.signature_algorithm,
            Some(&self.digest_algorithm),
            &self.signed_attrs,
            &self.signature,
        )
        .map_err(SealError::Signature)
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the first ESSCertID(v2) of a SigningCertificate(V2) value against `cert`.
fn check_ess_cert_id(value: &[u8], cert: &Certificate<'_>, v2: bool) -> Result<(), SealError> {
    let mismatch = |m: &str| SealError::SigningCertificateMismatch(m.to_string());
    let outer = asn1::parse_single_expected(value, tag::SEQUENCE)?;
    let mut outer = outer.children()?;
    let certs = outer.read_expected(tag::SEQUENCE)?;
    let mut certs = certs.children()?;
    // RFC 5035 §5.4 / RFC 2634 §5.4: the first certificate identifies the signer.
    let first = certs.read_expected(tag::SEQUENCE)?;
    let mut id = first.children()?;
    let hash_oid = if v2 && id.peek_tag() == Some(tag::SEQUENCE) {
        algorithm_oid(&id.read()?)?
    } else if v2 {
        trust::oids::SHA256.to_string() // DEFAULT id-sha256
    } else {
        trust::oids::SHA1.to_string() // ESSCertID v1 is always SHA-1
    };
    let cert_hash = id.read_expected(tag::OCTET_STRING)?.content;
    if !constant_time_eq(cert_hash, &digest(&hash_oid, cert.raw)?) {
        return Err(mismatch(if v2 {
            "certHash (ESSCertIDv2) differs from the certificate's hash"
        } else {
            "certHash (ESSCertID) differs from the certificate's SHA-1"
        }));
    }
    if let Some(issuer_serial) = id.read_optional(tag::SEQUENCE)? {
        let mut is = issuer_serial.children()?;
        let names = is.read_expected(tag::SEQUENCE)?;
        let serial = is.read_expected(tag::INTEGER)?.integer_bytes()?;
        is.finish()?;
        let issuer_matches = names
            .children_vec()?
            .iter()
            .any(|gn| gn.tag == tag::context(4, true) && gn.content == cert.issuer);
        if !issuer_matches || serial != cert.serial {
            return Err(mismatch(
                "issuerSerial differs from the certificate's issuer and serial",
            ));
        }
    }
    id.finish()?;
    Ok(())
}

/// A parsed detached CMS seal.
#[derive(Debug, Clone)]
pub struct ParsedSeal {
    parts: SignedDataParts,
}

impl ParsedSeal {
    /// Parses a DER `ContentInfo(SignedData)` with detached `id-data` content and one signer.
    pub fn parse(der: &[u8]) -> Result<Self, SealError> {
        let parts = parse_signed_data(der)?;
        if parts.econtent_type != oids::DATA {
            return Err(SealError::UnexpectedContentType {
                found: parts.econtent_type,
                expected: oids::DATA,
            });
        }
        if parts.econtent.is_some() {
            return Err(SealError::NotDetached);
        }
        Ok(ParsedSeal { parts })
    }

    /// Certificates embedded in the seal (DER).
    pub fn certificates(&self) -> &[Vec<u8>] {
        &self.parts.certificates
    }

    /// The embedded certificate matching the SignerInfo's identifier.
    pub fn signer_certificate(&self) -> Result<&[u8], SealError> {
        self.parts
            .signer
            .find_signer(&self.parts.certificates)
            .map(Vec::as_slice)
    }

    /// The signer's certificate, once its path to `anchors` is checked at `at` for sealing.
    pub fn sealing_certificate(
        &self,
        anchors: &trust::TrustAnchors,
        at: OffsetDateTime,
    ) -> Result<&[u8], SealError> {
        let cert = self.signer_certificate()?;
        trust::verify_certificate_path(
            cert,
            self.certificates(),
            anchors,
            at,
            trust::CertificatePurpose::Seal,
        )
        .map_err(SealError::Path)?;
        Ok(cert)
    }

    /// The signing-time signed attribute, if present.
    pub fn signing_time(&self) -> Option<OffsetDateTime> {
        self.parts.signer.signing_time()
    }

    /// The SignerInfo's signature value (what a signature-time-stamp covers).
    pub fn signature_value(&self) -> &[u8] {
        &self.parts.signer.signature
    }

    /// The token of the signature-time-stamp unsigned attribute (RFC 3161 appendix A), if
    /// any; more than one attribute or value is malformed.
    pub fn signature_timestamp(&self) -> Result<Option<&[u8]>, SealError> {
        let mut found = self
            .parts
            .signer
            .unsigned_attributes
            .iter()
            .filter(|(t, _)| t == oids::SIGNATURE_TIME_STAMP_TOKEN);
        let Some((_, values)) = found.next() else {
            return Ok(None);
        };
        if found.next().is_some() {
            return Err(malformed("more than one signature-time-stamp attribute"));
        }
        match values.as_slice() {
            [token] => Ok(Some(token.as_slice())),
            _ => Err(malformed(
                "a signature-time-stamp attribute needs one value",
            )),
        }
    }

    /// SignedData version.
    pub fn version(&self) -> u64 {
        self.parts.version
    }

    /// The signer's digest algorithm OID.
    pub fn digest_algorithm(&self) -> &str {
        &self.parts.signer.digest_algorithm
    }

    /// Checks message-digest == hash(content), content-type attribute == id-data,
    /// the signing-certificate(-v2) binding to the signer certificate, and the
    /// signature. Does NOT check the certification path (use
    /// [`trust::verify_certificate_path`] at [`ParsedSeal::signing_time`]).
    pub fn verify_signature(&self, content: &[u8]) -> Result<(), SealError> {
        let signer = &self.parts.signer;
        let cert = self.signer_certificate()?;
        signer.check_content_type(oids::DATA)?;
        signer.check_message_digest(content)?;
        signer.check_signing_certificate(cert)?;
        signer.verify_signature(cert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::pki::test_support::{TempDir, dev_pki};
    use crate::core::trust::{CertificatePurpose, TrustAnchors};
    use std::process::Command;
    use time::macros::datetime;

    const EVIDENCE: &[u8] = br#"{"event":"deposit","letter":"0192f1c2","sha256":"ab12"}"#;

    fn openssl_cms_verify(dir: &TempDir, seal: &[u8], data: &[u8]) -> (bool, String) {
        let root = dir.file("root.pem", dev_pki().material.roots_pem.as_bytes());
        let seal_path = dir.file("seal.p7s", seal);
        let data_path = dir.file("data.json", data);
        let out = Command::new("openssl")
            .args(["cms", "-verify", "-binary", "-inform", "DER", "-in"])
            .arg(&seal_path)
            .arg("-content")
            .arg(&data_path)
            .arg("-CAfile")
            .arg(&root)
            .args(["-purpose", "any", "-out", "/dev/null"])
            .output()
            .expect("run openssl");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    fn signature_offset(seal: &[u8]) -> usize {
        // The signature OCTET STRING is the last element of the SignerInfo, which ends
        // the whole structure: its content is the final bytes.
        let parsed = ParsedSeal::parse(seal).expect("parse");
        seal.len() - parsed.parts.signer.signature.len() / 2
    }

    #[test]
    fn openssl_verifies_seal_and_rejects_tampering() {
        let pki = dev_pki();
        let sealer = Sealer::new(pki.material.seal.clone());
        let seal = sealer.seal(EVIDENCE, pki.now).expect("seal");
        let dir = TempDir::new("seal");
        let (ok, out) = openssl_cms_verify(&dir, &seal, EVIDENCE);
        assert!(ok, "openssl cms -verify failed: {out}");
        let mut data = EVIDENCE.to_vec();
        data[10] ^= 0x01;
        let (ok, _) = openssl_cms_verify(&dir, &seal, &data);
        assert!(!ok, "openssl accepted changed data");
        let mut bad = seal.clone();
        let off = signature_offset(&bad);
        bad[off] ^= 0x01;
        let (ok, _) = openssl_cms_verify(&dir, &bad, EVIDENCE);
        assert!(!ok, "openssl accepted a changed signature");
    }

    #[test]
    fn a_signature_timestamp_is_added_without_touching_what_is_signed() {
        use crate::core::timestamp::{ParsedToken, SerialNumbers, TimestampAuthority};
        let pki = dev_pki();
        let sealer = Sealer::new(pki.material.seal.clone());
        let seal = sealer.seal(EVIDENCE, pki.now).expect("seal");
        let parsed = ParsedSeal::parse(&seal).expect("parse");
        assert!(parsed.signature_timestamp().expect("attributes").is_none());
        let tsa = pki.material.tsa.clone().expect("tsa identity");
        let authority = TimestampAuthority::new(tsa, "1.3.6.1.4.1.99999.1", SerialNumbers::new(1))
            .expect("tsa");
        let token = authority
            .timestamp_sha256(sha256(parsed.signature_value()), pki.now)
            .expect("token");
        let stamped = with_signature_timestamp(&seal, &token).expect("attach");

        let reparsed = ParsedSeal::parse(&stamped).expect("parse stamped");
        reparsed
            .verify_signature(EVIDENCE)
            .expect("signature still valid");
        assert_eq!(reparsed.signature_value(), parsed.signature_value());
        let carried = reparsed
            .signature_timestamp()
            .expect("attributes")
            .expect("a token");
        assert_eq!(carried, token.as_slice());
        ParsedToken::parse(carried)
            .expect("token parses")
            .check_imprint(reparsed.signature_value())
            .expect("the token covers the signature value");
        let dir = TempDir::new("seal-bt");
        let (ok, out) = openssl_cms_verify(&dir, &stamped, EVIDENCE);
        assert!(ok, "openssl cms -verify refused the B-T seal: {out}");
        assert!(
            with_signature_timestamp(&stamped, &token).is_err(),
            "a second set of unsigned attributes was accepted"
        );
    }

    #[test]
    fn structure_is_as_specified() {
        let pki = dev_pki();
        let sealer = Sealer::new(pki.material.seal.clone());
        let t = datetime!(2031-05-06 07:08:09 UTC);
        let seal = sealer.seal(EVIDENCE, t).expect("seal");
        let parsed = ParsedSeal::parse(&seal).expect("parse");
        assert_eq!(parsed.version(), 1);
        assert_eq!(parsed.digest_algorithm(), trust::oids::SHA256);
        assert_eq!(parsed.signing_time(), Some(t));
        assert_eq!(parsed.certificates().len(), 1);
        assert_eq!(
            parsed.signer_certificate().expect("signer"),
            pki.material.seal.certificate_der()
        );
        // Signed attributes are DER-sorted.
        let attrs = asn1::parse_single(&parsed.parts.signer.signed_attrs)
            .expect("attrs")
            .children_vec()
            .expect("children");
        assert_eq!(attrs.len(), 4);
        assert!(attrs.windows(2).all(|w| w[0].raw <= w[1].raw));
        // GeneralizedTime after 2049.
        let late = sealer
            .seal(EVIDENCE, datetime!(2051-01-01 0:00 UTC))
            .expect("seal");
        let late = ParsedSeal::parse(&late).expect("parse");
        assert_eq!(late.signing_time(), Some(datetime!(2051-01-01 0:00 UTC)));
        parsed.verify_signature(EVIDENCE).expect("verify");
        let anchors = TrustAnchors::from_der(pki.material.roots_der.clone()).expect("anchors");
        trust::verify_certificate_path(
            parsed.signer_certificate().expect("signer"),
            parsed.certificates(),
            &anchors,
            pki.now,
            CertificatePurpose::Seal,
        )
        .expect("path");
    }

    #[test]
    fn own_verifier_rejects_any_tampering() {
        let pki = dev_pki();
        let sealer = Sealer::new(pki.material.seal.clone());
        let seal = sealer.seal(EVIDENCE, pki.now).expect("seal");
        let parsed = ParsedSeal::parse(&seal).expect("parse");
        parsed.verify_signature(EVIDENCE).expect("verify");
        // The data.
        for i in [0, EVIDENCE.len() / 2, EVIDENCE.len() - 1] {
            let mut data = EVIDENCE.to_vec();
            data[i] ^= 0x20;
            assert!(matches!(
                parsed.verify_signature(&data),
                Err(SealError::MessageDigestMismatch)
            ));
        }
        // Every byte of the signed attributes and of the signature: either the
        // structure no longer parses or verification fails.
        let attrs = &parsed.parts.signer.signed_attrs;
        let attrs_start = seal
            .windows(attrs.len() - 1)
            .position(|w| w == &attrs[1..])
            .expect("attrs present")
            - 1;
        let sig_len = parsed.parts.signer.signature.len();
        let ranges = [
            attrs_start..attrs_start + attrs.len(),
            seal.len() - sig_len..seal.len(),
        ];
        for range in ranges {
            for i in range {
                let mut bad = seal.clone();
                bad[i] ^= 0x01;
                let rejected = match ParsedSeal::parse(&bad) {
                    Err(_) => true,
                    Ok(p) => p.verify_signature(EVIDENCE).is_err(),
                };
                assert!(rejected, "byte {i} flipped was accepted");
            }
        }
    }

    #[test]
    fn rejects_foreign_structures() {
        assert!(ParsedSeal::parse(b"\x30\x00").is_err());
        let pki = dev_pki();
        let sealer = Sealer::new(pki.material.seal.clone());
        let seal = sealer.seal(EVIDENCE, pki.now).expect("seal");
        let mut trailing = seal.clone();
        trailing.push(0);
        assert!(ParsedSeal::parse(&trailing).is_err());
    }
}
