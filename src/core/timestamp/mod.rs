//! RFC 3161 time-stamping: an embedded Time-Stamp Authority (TSA) issuing
//! tokens, and the parsing/verification of tokens from any TSA.
//!
//! A token is a CMS `ContentInfo(SignedData)` (RFC 3161 §2.4.2) whose
//! encapsulated content is a DER `TSTInfo`. Ours: SignedData version 3 (the
//! content is not id-data, RFC 5652 §5.1), SHA-256 digest, ECDSA P-256
//! signature, signed attributes content-type / message-digest /
//! signing-certificate-v2 (RFC 5035, required by RFC 3161 §2.4.1 as amended by
//! RFC 5816), `genTime` in whole seconds with an accuracy of one second.
//! `openssl ts -verify` and the `rfc3161-client` Python package are the oracles
//! in the tests.
//!
//! Everything here is pure apart from the serial counter and the signature RNG;
//! the remote TSA client (I/O) lives in [`client`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use time::OffsetDateTime;

use crate::core::asn1::{self, Asn1Error, Tlv, tag};
use crate::core::pki::SigningIdentity;
use crate::core::seal::{self, CmsSigner, SealError, SignedDataParts, oids as cms_oids};
use crate::core::trust::{self, Certificate, CertificatePurpose, oids};

/// PKIStatus values (RFC 3161 §2.4.2, RFC 4210).
pub mod status {
    /// granted.
    pub const GRANTED: u64 = 0;
    /// grantedWithMods.
    pub const GRANTED_WITH_MODS: u64 = 1;
    /// rejection.
    pub const REJECTION: u64 = 2;
}

/// PKIFailureInfo bit numbers (RFC 3161 §2.4.2).
pub mod fail_info {
    /// unrecognized or unsupported Algorithm Identifier.
    pub const BAD_ALG: usize = 0;
    /// transaction not permitted or supported.
    pub const BAD_REQUEST: usize = 2;
    /// the data submitted has the wrong format.
    pub const BAD_DATA_FORMAT: usize = 5;
    /// the TSA's time source is not available.
    pub const TIME_NOT_AVAILABLE: usize = 14;
    /// the requested TSA policy is not supported by the TSA.
    pub const UNACCEPTED_POLICY: usize = 15;
    /// the requested extension is not supported by the TSA.
    pub const UNACCEPTED_EXTENSION: usize = 16;
    /// the additional information requested could not be understood or is not available.
    pub const ADD_INFO_NOT_AVAILABLE: usize = 17;
    /// the request cannot be handled due to system failure.
    pub const SYSTEM_FAILURE: usize = 25;

    /// Names of the bits set in `mask` (bit n at position n).
    pub fn names(mask: u64) -> Vec<&'static str> {
        [
            (BAD_ALG, "badAlg"),
            (BAD_REQUEST, "badRequest"),
            (BAD_DATA_FORMAT, "badDataFormat"),
            (TIME_NOT_AVAILABLE, "timeNotAvailable"),
            (UNACCEPTED_POLICY, "unacceptedPolicy"),
            (UNACCEPTED_EXTENSION, "unacceptedExtension"),
            (ADD_INFO_NOT_AVAILABLE, "addInfoNotAvailable"),
            (SYSTEM_FAILURE, "systemFailure"),
        ]
        .into_iter()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, name)| name)
        .collect()
    }
}

/// Errors while issuing, parsing or checking time-stamps.
#[derive(Debug, thiserror::Error)]
pub enum TimestampError {
    /// The structure is not the expected DER.
    #[error("malformed RFC 3161 structure: {0}")]
    Malformed(String),
    /// A hash algorithm other than SHA-256/384/512.
    #[error("unsupported hash algorithm {0} (SHA-256, SHA-384 or SHA-512 required)")]
    UnsupportedHashAlgorithm(String),
    /// hashedMessage length does not fit the algorithm.
    #[error("hashedMessage is {found} bytes, {algorithm} needs {expected}")]
    ImprintLength {
        /// Algorithm name.
        algorithm: &'static str,
        /// Length required.
        expected: usize,
        /// Length found.
        found: usize,
    },
    /// A request or TSTInfo version other than 1.
    #[error("unsupported version {0} (v1 required)")]
    UnsupportedVersion(u64),
    /// The request asks for a policy this TSA does not apply.
    #[error("requested policy {requested} is not accepted (this TSA applies {ours})")]
    UnacceptedPolicy {
        /// Policy requested.
        requested: String,
        /// Our policy.
        ours: String,
    },
    /// The request carries extensions, which this TSA does not support.
    #[error("request extensions are not supported")]
    UnacceptedExtension,
    /// The policy OID given to the TSA is not a valid OID.
    #[error("invalid TSA policy OID {0:?}")]
    InvalidPolicy(String),
    /// The TSA certificate cannot be used for time-stamping.
    #[error("TSA certificate {0}")]
    Certificate(String),
    /// The serial counter of this epoch is used up.
    #[error("time-stamp serial numbers exhausted for epoch {0}; restart to reserve a new epoch")]
    SerialsExhausted(u64),
    /// A time that cannot be encoded as GeneralizedTime.
    #[error("cannot encode genTime: {0}")]
    Encode(String),
    /// A CMS-level problem (structure, attributes, signature).
    #[error(transparent)]
    Cms(#[from] SealError),
    /// The TSA answered with a status other than granted / grantedWithMods.
    #[error("TSA refused the request: status {status} ({status_name}){text}{fail}")]
    Rejected {
        /// PKIStatus value.
        status: u64,
        /// PKIStatus name.
        status_name: &'static str,
        /// statusString, prefixed for display.
        text: String,
        /// failInfo names, prefixed for display.
        fail: String,
    },
    /// A granted response without a token.
    #[error("TSA response is granted but carries no time-stamp token")]
    MissingToken,
    /// The nonce in the token is not the one sent.
    #[error("TSA response nonce does not match the request nonce")]
    NonceMismatch,
    /// The token's messageImprint is not the hash of the data.
    #[error("time-stamp messageImprint does not match the data")]
    ImprintMismatch,
    /// The token's policy is not the one required.
    #[error("time-stamp policy is {found}, expected {expected}")]
    PolicyMismatch {
        /// Policy required.
        expected: String,
        /// Policy found.
        found: String,
    },
    /// A remote TSA URL or client configuration problem.
    #[error("remote TSA configuration: {0}")]
    Config(String),
    /// A transport-level failure talking to the remote TSA.
    #[error("remote TSA {url}: {reason}")]
    Http {
        /// The TSA URL.
        url: String,
        /// What failed.
        reason: String,
        /// The transport error behind it, when there is one (kept for logs).
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl From<Asn1Error> for TimestampError {
    fn from(e: Asn1Error) -> Self {
        TimestampError::Malformed(e.to_string())
    }
}

impl TimestampError {
    /// The PKIFailureInfo bit a TSA reports for this error (RFC 3161 §2.4.2).
    fn fail_info_bit(&self) -> usize {
        match self {
            TimestampError::UnsupportedHashAlgorithm(_) => fail_info::BAD_ALG,
            TimestampError::UnacceptedPolicy { .. } => fail_info::UNACCEPTED_POLICY,
            TimestampError::UnacceptedExtension => fail_info::UNACCEPTED_EXTENSION,
            TimestampError::Malformed(_)
            | TimestampError::ImprintLength { .. }
            | TimestampError::UnsupportedVersion(_) => fail_info::BAD_DATA_FORMAT,
            TimestampError::Encode(_) => fail_info::TIME_NOT_AVAILABLE,
            _ => fail_info::SYSTEM_FAILURE,
        }
    }
}

/// Hash algorithms accepted in message imprints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-256 (2.16.840.1.101.3.4.2.1).
    Sha256,
    /// SHA-384 (2.16.840.1.101.3.4.2.2).
    Sha384,
    /// SHA-512 (2.16.840.1.101.3.4.2.3).
    Sha512,
}

impl HashAlgorithm {
    /// Dotted OID.
    pub fn oid(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => oids::SHA256,
            HashAlgorithm::Sha384 => oids::SHA384,
            HashAlgorithm::Sha512 => oids::SHA512,
        }
    }

    /// From a dotted OID.
    pub fn from_oid(oid: &str) -> Option<Self> {
        match oid {
            oids::SHA256 => Some(HashAlgorithm::Sha256),
            oids::SHA384 => Some(HashAlgorithm::Sha384),
            oids::SHA512 => Some(HashAlgorithm::Sha512),
            _ => None,
        }
    }

    /// Digest length in bytes.
    pub fn len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    /// Always false (digests are never empty); present for API symmetry with `len`.
    pub fn is_empty(self) -> bool {
        false
    }

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "SHA-256",
            HashAlgorithm::Sha384 => "SHA-384",
            HashAlgorithm::Sha512 => "SHA-512",
        }
    }

    /// Hash of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            HashAlgorithm::Sha256 => &ring::digest::SHA256,
            HashAlgorithm::Sha384 => &ring::digest::SHA384,
            HashAlgorithm::Sha512 => &ring::digest::SHA512,
        };
        ring::digest::digest(alg, data).as_ref().to_vec()
    }

    /// `AlgorithmIdentifier` with absent parameters (RFC 5754 §2).
    fn algorithm_identifier(self) -> Vec<u8> {
        let oid = match self {
            HashAlgorithm::Sha256 => &SHA256_OID_DER[..],
            HashAlgorithm::Sha384 => &SHA384_OID_DER[..],
            HashAlgorithm::Sha512 => &SHA512_OID_DER[..],
        };
        asn1::sequence(&[oid])
    }
}

// Pre-encoded hash OIDs (2.16.840.1.101.3.4.2.{1,2,3}); checked by a unit test.
const SHA256_OID_DER: [u8; 11] = [
    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
];
const SHA384_OID_DER: [u8; 11] = [
    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
];
const SHA512_OID_DER: [u8; 11] = [
    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
];

/// Strips leading zero octets of a big-endian magnitude (zero stays `[0]`).
pub(crate) fn normalize_magnitude(bytes: &[u8]) -> Vec<u8> {
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    if skip == bytes.len() {
        vec![0]
    } else {
        bytes[skip..].to_vec()
    }
}

/// `MessageImprint ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, hashedMessage OCTET STRING }`
/// (RFC 3161 §2.4.1); returns the algorithm and the hash.
fn parse_message_imprint(t: &Tlv<'_>) -> Result<(HashAlgorithm, Vec<u8>), TimestampError> {
    t.expect_tag(tag::SEQUENCE)?;
    let mut d = t.children()?;
    let alg = d.read_expected(tag::SEQUENCE)?;
    let mut a = alg.children()?;
    let oid = a.read_expected(tag::OID)?.oid()?;
    // Parameters: absent or NULL (RFC 5754 §2 says both must be accepted).
    if let Some(p) = a.read_optional(tag::NULL)? {
        p.null()?;
    }
    a.finish()?;
    let hash = d.read_expected(tag::OCTET_STRING)?.content.to_vec();
    d.finish()?;
    let algorithm =
        HashAlgorithm::from_oid(&oid).ok_or(TimestampError::UnsupportedHashAlgorithm(oid))?;
    if hash.len() != algorithm.len() {
        return Err(TimestampError::ImprintLength {
            algorithm: algorithm.name(),
            expected: algorithm.len(),
            found: hash.len(),
        });
    }
    Ok((algorithm, hash))
}

/// An RFC 3161 `TimeStampReq` (§2.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampRequest {
    /// messageImprint.hashAlgorithm.
    pub hash_algorithm: HashAlgorithm,
    /// messageImprint.hashedMessage.
    pub hashed_message: Vec<u8>,
    /// reqPolicy (dotted OID).
    pub policy: Option<String>,
    /// nonce as a minimal unsigned big-endian magnitude.
    pub nonce: Option<Vec<u8>>,
    /// certReq: include the TSA certificate(s) in the token.
    pub cert_req: bool,
}

/// A parsed request plus what `respond` needs from its raw encoding.
struct RawRequest<'a> {
    request: TimestampRequest,
    /// The messageImprint TLV exactly as received (copied into TSTInfo, RFC 3161 §2.4.2).
    imprint_der: &'a [u8],
}

fn parse_request(der: &[u8]) -> Result<RawRequest<'_>, TimestampError> {
    let req = asn1::parse_single_expected(der, tag::SEQUENCE)?;
    let mut d = req.children()?;
    let version = d.read_expected(tag::INTEGER)?.u64()?;
    if version != 1 {
        return Err(TimestampError::UnsupportedVersion(version));
    }
    let imprint = d.read_expected(tag::SEQUENCE)?;
    let (hash_algorithm, hashed_message) = parse_message_imprint(&imprint)?;
    let policy = d.read_optional(tag::OID)?.map(|t| t.oid()).transpose()?;
    let nonce = d
        .read_optional(tag::INTEGER)?
        .map(|t| t.unsigned_integer_bytes().map(<[u8]>::to_vec))
        .transpose()?;
    let cert_req = d
        .read_optional(tag::BOOLEAN)?
        .map(|t| t.boolean())
        .transpose()?
        .unwrap_or(false);
    if d.read_optional(tag::context(0, true))?.is_some() {
        return Err(TimestampError::UnacceptedExtension);
    }
    d.finish()?;
    Ok(RawRequest {
        request: TimestampRequest {
            hash_algorithm,
            hashed_message,
            policy,
            nonce,
            cert_req,
        },
        imprint_der: imprint.raw,
    })
}

impl TimestampRequest {
    /// Parses a DER `TimeStampReq`. Requests with extensions are refused
    /// ([`TimestampError::UnacceptedExtension`]).
    pub fn parse_der(der: &[u8]) -> Result<Self, TimestampError> {
        parse_request(der).map(|r| r.request)
    }

    /// DER encoding (hash AlgorithmIdentifier without parameters, RFC 5754 §2;
    /// certReq omitted when false, DER DEFAULT rule).
    pub fn to_der(&self) -> Vec<u8> {
        let imprint = self.imprint_der();
        let policy = self.policy.as_deref().and_then(|p| asn1::oid(p).ok());
        let nonce = self.nonce.as_deref().map(asn1::integer_from_unsigned_be);
        let cert_req = self.cert_req.then(|| asn1::boolean(true));
        let mut parts: Vec<&[u8]> = vec![&[tag::INTEGER, 1, 1], &imprint];
        parts.extend(policy.as_deref());
        parts.extend(nonce.as_deref());
        parts.extend(cert_req.as_deref());
        asn1::sequence(&parts)
    }

    /// A SHA-256 request.
    pub fn for_sha256(digest: [u8; 32], nonce: Option<Vec<u8>>, cert_req: bool) -> Self {
        TimestampRequest {
            hash_algorithm: HashAlgorithm::Sha256,
            hashed_message: digest.to_vec(),
            policy: None,
            nonce: nonce.map(|n| normalize_magnitude(&n)),
            cert_req,
        }
    }

    fn imprint_der(&self) -> Vec<u8> {
        asn1::sequence(&[
            &self.hash_algorithm.algorithm_identifier(),
            &asn1::octet_string(&self.hashed_message),
        ])
    }

    fn check_imprint_length(&self) -> Result<(), TimestampError> {
        if self.hashed_message.len() != self.hash_algorithm.len() {
            return Err(TimestampError::ImprintLength {
                algorithm: self.hash_algorithm.name(),
                expected: self.hash_algorithm.len(),
                found: self.hashed_message.len(),
            });
        }
        Ok(())
    }
}

/// Serial numbers that never repeat across restarts or instances:
/// `serial = (epoch << 64) | counter`, where `epoch` is reserved from the database
/// at start (strictly increasing) and the counter starts at 1.
#[derive(Debug)]
pub struct SerialNumbers {
    epoch: u64,
    counter: AtomicU64,
}

impl SerialNumbers {
    /// Serials for a freshly reserved `epoch`.
    pub fn new(epoch: u64) -> Self {
        SerialNumbers {
            epoch,
            counter: AtomicU64::new(1),
        }
    }

    /// The epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The next serial; an error once the 64-bit counter is used up.
    pub fn next(&self) -> Result<u128, TimestampError> {
        let counter = self
            .counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_add(1))
            .map_err(|_| TimestampError::SerialsExhausted(self.epoch))?;
        Ok((u128::from(self.epoch) << 64) | u128::from(counter))
    }

    #[cfg(test)]
    fn starting_at(epoch: u64, counter: u64) -> Self {
        SerialNumbers {
            epoch,
            counter: AtomicU64::new(counter),
        }
    }
}

/// `Accuracy ::= SEQUENCE { seconds 1 }` (RFC 3161 §2.4.2).
const ACCURACY_ONE_SECOND: [u8; 5] = [tag::SEQUENCE, 3, tag::INTEGER, 1, 1];
/// `version INTEGER { v1(1) }`.
const VERSION_1: [u8; 3] = [tag::INTEGER, 1, 1];

/// The embedded TSA: issues RFC 3161 tokens signed with its identity.
pub struct TimestampAuthority {
    signer: CmsSigner,
    policy: String,
    policy_der: Vec<u8>,
    /// `tsa [0] GeneralName` = `[0] EXPLICIT { [4] EXPLICIT Name }`.
    tsa_name: Vec<u8>,
    serials: SerialNumbers,
}

impl std::fmt::Debug for TimestampAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimestampAuthority")
            .field("identity", self.signer.identity())
            .field("policy", &self.policy)
            .field("serials", &self.serials)
            .finish()
    }
}

impl TimestampAuthority {
    /// A TSA for `identity` (whose certificate must carry the critical
    /// timeStamping-only EKU, RFC 3161 §2.3) applying `policy_oid`, numbering
    /// tokens from `serials`. Everything constant is precomputed here.
    pub fn new(
        identity: Arc<SigningIdentity>,
        policy_oid: &str,
        serials: SerialNumbers,
    ) -> Result<Self, TimestampError> {
        let policy_der = asn1::oid(policy_oid)
            .map_err(|_| TimestampError::InvalidPolicy(policy_oid.to_string()))?;
        let cert = Certificate::parse(identity.certificate_der())
            .map_err(|e| TimestampError::Certificate(e.to_string()))?;
        if let Some(problem) = trust::purpose_problem(&cert, CertificatePurpose::Timestamping)
            .map_err(|e| TimestampError::Certificate(e.to_string()))?
        {
            return Err(TimestampError::Certificate(problem));
        }
        let tsa_name = asn1::context(0, true, &asn1::context(4, true, identity.subject_der()));
        let signer = CmsSigner::new(identity, cms_oids::TST_INFO)?;
        Ok(TimestampAuthority {
            signer,
            policy: policy_oid.to_string(),
            policy_der,
            tsa_name,
            serials,
        })
    }

    /// The policy OID written into every token.
    pub fn policy_oid(&self) -> &str {
        &self.policy
    }

    /// Issues a TimeStampToken (ContentInfo DER) for `request` at `gen_time`
    /// (truncated to whole seconds; accuracy 1 s).
    pub fn issue_token(
        &self,
        request: &TimestampRequest,
        gen_time: OffsetDateTime,
    ) -> Result<Vec<u8>, TimestampError> {
        request.check_imprint_length()?;
        self.issue(&request.imprint_der(), request, gen_time)
    }

    fn issue(
        &self,
        imprint_der: &[u8],
        request: &TimestampRequest,
        gen_time: OffsetDateTime,
    ) -> Result<Vec<u8>, TimestampError> {
        // RFC 3161 §2.4.2: the policy is the requested one if the TSA accepts it.
        if let Some(requested) = &request.policy
            && *requested != self.policy
        {
            return Err(TimestampError::UnacceptedPolicy {
                requested: requested.clone(),
                ours: self.policy.clone(),
            });
        }
        let serial = asn1::integer_u128(self.serials.next()?);
        // genTime: GeneralizedTime, whole seconds, "Z" (RFC 3161 §2.4.2).
        let gen_time =
            asn1::generalized_time(gen_time).map_err(|e| TimestampError::Encode(e.to_string()))?;
        let nonce = request.nonce.as_deref().map(asn1::integer_from_unsigned_be);
        let tst_info = asn1::sequence(&[
            &VERSION_1,
            &self.policy_der,
            imprint_der,
            &serial,
            &gen_time,
            &ACCURACY_ONE_SECOND,
            // ordering: DEFAULT FALSE, omitted.
            nonce.as_deref().unwrap_or(&[]),
            &self.tsa_name,
        ]);
        let digest = seal::sha256(&tst_info);
        Ok(self
            .signer
            .sign(Some(&tst_info), &digest, &[], request.cert_req)?)
    }

    /// A full `TimeStampResp` (RFC 3161 §2.4.2): status granted with the token, or
    /// status rejection with a statusString and failInfo (badAlg,
    /// unacceptedPolicy, unacceptedExtension, badDataFormat, systemFailure) for a
    /// request it cannot honour. This is what `POST /tsa` returns.
    pub fn respond(&self, request_der: &[u8], gen_time: OffsetDateTime) -> Vec<u8> {
        let result = parse_request(request_der)
            .and_then(|raw| self.issue(raw.imprint_der, &raw.request, gen_time));
        match result {
            Ok(token) => asn1::sequence(&[&asn1::sequence(&[&[tag::INTEGER, 1, 0]]), &token]),
            Err(e) => rejection(e.fail_info_bit(), &e.to_string()),
        }
    }

    /// Convenience: a token for a SHA-256 digest, certReq true, no nonce.
    pub fn timestamp_sha256(
        &self,
        digest: [u8; 32],
        gen_time: OffsetDateTime,
    ) -> Result<Vec<u8>, TimestampError> {
        self.issue_token(&TimestampRequest::for_sha256(digest, None, true), gen_time)
    }
}

/// `TimeStampResp { PKIStatusInfo { rejection, statusString, failInfo } }`.
fn rejection(fail_bit: usize, text: &str) -> Vec<u8> {
    let status_info = asn1::sequence(&[
        &asn1::integer_u64(status::REJECTION),
        &asn1::sequence(&[&asn1::utf8_string(text)]),
        &asn1::named_bits(&[fail_bit]),
    ]);
    asn1::sequence(&[&status_info])
}

fn status_name(status: u64) -> &'static str {
    match status {
        0 => "granted",
        1 => "grantedWithMods",
        2 => "rejection",
        3 => "waiting",
        4 => "revocationWarning",
        5 => "revocationNotification",
        _ => "unknown",
    }
}

/// The fields of a TSTInfo that callers use (RFC 3161 §2.4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// policy (dotted OID).
    pub policy: String,
    /// messageImprint.hashAlgorithm.
    pub hash_algorithm: HashAlgorithm,
    /// messageImprint.hashedMessage.
    pub hashed_message: Vec<u8>,
    /// serialNumber as an unsigned big-endian magnitude.
    pub serial: Vec<u8>,
    /// genTime (fractional seconds kept).
    pub gen_time: OffsetDateTime,
    /// nonce as an unsigned big-endian magnitude.
    pub nonce: Option<Vec<u8>>,
    /// accuracy in microseconds, when present.
    pub accuracy_micros: Option<u64>,
}

/// Reads an `[n] IMPLICIT INTEGER` as an unsigned value.
fn implicit_u64(t: &Tlv<'_>) -> Result<u64, TimestampError> {
    let magnitude = asn1::unsigned_magnitude(asn1::integer_content(t.content)?)?;
    if magnitude.len() > 8 {
        return Err(TimestampError::Malformed("accuracy value too large".into()));
    }
    Ok(magnitude
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

fn parse_tst_info(der: &[u8]) -> Result<TokenInfo, TimestampError> {
    let tst = asn1::parse_single_expected(der, tag::SEQUENCE)?;
    let mut d = tst.children()?;
    let version = d.read_expected(tag::INTEGER)?.u64()?;
    if version != 1 {
        return Err(TimestampError::UnsupportedVersion(version));
    }
    let policy = d.read_expected(tag::OID)?.oid()?;
    let (hash_algorithm, hashed_message) = parse_message_imprint(&d.read_expected(tag::SEQUENCE)?)?;
    let serial = d
        .read_expected(tag::INTEGER)?
        .unsigned_integer_bytes()?
        .to_vec();
    let gen_time = d.read_expected(tag::GENERALIZED_TIME)?.generalized_time()?;
    let accuracy_micros = match d.read_optional(tag::SEQUENCE)? {
        Some(acc) => {
            let mut a = acc.children()?;
            let seconds = a
                .read_optional(tag::INTEGER)?
                .map(|t| t.u64())
                .transpose()?;
            let millis = a
                .read_optional(tag::context(0, false))?
                .map(|t| implicit_u64(&t))
                .transpose()?;
            let micros = a
                .read_optional(tag::context(1, false))?
                .map(|t| implicit_u64(&t))
                .transpose()?;
            a.finish()?;
            let total = seconds
                .unwrap_or(0)
                .checked_mul(1_000_000)
                .and_then(|s| s.checked_add(millis.unwrap_or(0) * 1000))
                .and_then(|s| s.checked_add(micros.unwrap_or(0)))
                .ok_or_else(|| TimestampError::Malformed("accuracy too large".into()))?;
            Some(total)
        }
        None => None,
    };
    if let Some(ordering) = d.read_optional(tag::BOOLEAN)? {
        ordering.boolean()?;
    }
    let nonce = d
        .read_optional(tag::INTEGER)?
        .map(|t| t.unsigned_integer_bytes().map(<[u8]>::to_vec))
        .transpose()?;
    d.read_optional(tag::context(0, true))?; // tsa name: informational
    d.read_optional(tag::context(1, true))?; // extensions
    d.finish()?;
    Ok(TokenInfo {
        policy,
        hash_algorithm,
        hashed_message,
        serial,
        gen_time,
        nonce,
        accuracy_micros,
    })
}

/// A parsed TimeStampToken (from any TSA).
#[derive(Debug, Clone)]
pub struct ParsedToken {
    der: Vec<u8>,
    parts: SignedDataParts,
    tst_info: Vec<u8>,
    info: TokenInfo,
}

impl ParsedToken {
    /// Parses a TimeStampToken (`ContentInfo(SignedData)` with id-ct-TSTInfo content).
    pub fn parse(token_der: &[u8]) -> Result<Self, TimestampError> {
        let parts = seal::parse_signed_data(token_der)?;
        if parts.econtent_type != cms_oids::TST_INFO {
            return Err(SealError::UnexpectedContentType {
                found: parts.econtent_type,
                expected: cms_oids::TST_INFO,
            }
            .into());
        }
        let tst_info = parts
            .econtent
            .clone()
            .ok_or_else(|| TimestampError::Malformed("token has no TSTInfo content".into()))?;
        let info = parse_tst_info(&tst_info)?;
        Ok(ParsedToken {
            der: token_der.to_vec(),
            parts,
            tst_info,
            info,
        })
    }

    /// Parses a `TimeStampResp`: the status must be granted(0) or
    /// grantedWithMods(1), otherwise an error with the status text and failInfo.
    pub fn from_response(resp_der: &[u8]) -> Result<Self, TimestampError> {
        let resp = asn1::parse_single_expected(resp_der, tag::SEQUENCE)?;
        let mut d = resp.children()?;
        let status_info = d.read_expected(tag::SEQUENCE)?;
        let mut s = status_info.children()?;
        let status = s.read_expected(tag::INTEGER)?.u64()?;
        let texts = match s.read_optional(tag::SEQUENCE)? {
            Some(seq) => seq
                .children_vec()?
                .iter()
                .map(|t| String::from_utf8_lossy(t.content).into_owned())
                .collect::<Vec<_>>(),
            None => Vec::new(),
        };
        let fail = s
            .read_optional(tag::BIT_STRING)?
            .map(|t| t.named_bits())
            .transpose()?;
        s.finish()?;
        let token = d.read_optional(tag::SEQUENCE)?;
        d.finish()?;
        if status != status::GRANTED && status != status::GRANTED_WITH_MODS {
            return Err(TimestampError::Rejected {
                status,
                status_name: status_name(status),
                text: if texts.is_empty() {
                    String::new()
                } else {
                    format!(": {}", texts.join("; "))
                },
                fail: match fail {
                    Some(mask) => format!(" [failInfo: {}]", fail_info::names(mask).join(", ")),
                    None => String::new(),
                },
            });
        }
        let token = token.ok_or(TimestampError::MissingToken)?;
        Self::parse(token.raw)
    }

    /// The token (ContentInfo) DER.
    pub fn token_der(&self) -> &[u8] {
        &self.der
    }

    /// The TSTInfo fields.
    pub fn info(&self) -> &TokenInfo {
        &self.info
    }

    /// The TSTInfo DER (the signed content).
    pub fn tst_info_der(&self) -> &[u8] {
        &self.tst_info
    }

    /// Length of the signed attributes' DER (what the signature covers).
    pub fn signed_attributes_len(&self) -> usize {
        self.parts.signer.signed_attrs.len()
    }

    /// Certificates embedded in the token.
    pub fn certificates(&self) -> &[Vec<u8>] {
        &self.parts.certificates
    }

    /// Finds the signer among the embedded certificates plus `extra_certs` (by
    /// issuerAndSerialNumber or subjectKeyIdentifier), checks the content-type
    /// attribute, message-digest == hash(TSTInfo), the signing-certificate(-v2)
    /// binding and the signature. Returns the signer certificate DER. The path is
    /// the caller's to check ([`trust::verify_certificate_path`] at `info().gen_time`).
    pub fn verify_signature(&self, extra_certs: &[Vec<u8>]) -> Result<Vec<u8>, TimestampError> {
        let signer = &self.parts.signer;
        let cert = signer
            .find_signer(self.parts.certificates.iter().chain(extra_certs))?
            .clone();
        signer.check_content_type(cms_oids::TST_INFO)?;
        signer.check_message_digest(&self.tst_info)?;
        signer.check_signing_certificate(&cert)?;
        signer.verify_signature(&cert)?;
        Ok(cert)
    }

    /// Checks that messageImprint equals the hash of `data` with the token's algorithm.
    pub fn check_imprint(&self, data: &[u8]) -> Result<(), TimestampError> {
        if self.info.hash_algorithm.digest(data) == self.info.hashed_message {
            Ok(())
        } else {
            Err(TimestampError::ImprintMismatch)
        }
    }
}

#[cfg(test)]
mod tests;
