//! Trust material: the signing identities (seal and TSA) and the roots a judge
//! trusts.
//!
//! Two ways to obtain it:
//! * development: a throw-away PKI (root CA, seal certificate, TSA certificate, all
//!   ECDSA P-256) generated on first start into a directory and reloaded later;
//!   it is explicitly *non-qualified*;
//! * production: the operator's PEM files, checked at start for their role at the
//!   current time, with messages that name the file and the problem, so that a
//!   misconfigured deployment refuses to start rather than produce evidence that
//!   `openssl` would reject.
//!
//! We only *sign* with ECDSA P-256 / SHA-256: OpenSSL 3.0 cannot verify Ed25519
//! inside CMS / RFC 3161 structures, and P-256 is accepted everywhere.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use time::{Duration, OffsetDateTime};

use crate::core::asn1;
use crate::core::trust::{self, Certificate, CertificatePurpose, TrustAnchors, oids};

/// Evidence policy of the development PKI. It says "non-qualified" on purpose: whatever is
/// sealed under it is not a qualified electronic registered delivery.
pub const DEVELOPMENT_EVIDENCE_POLICY: &str =
    "urn:recommande:evidence-policy:v1:non-qualified-development";
/// TSA policy OID of the embedded development TSA. `2.25.<uuid>` is the arc any party may use
/// under ITU-T X.667 §6.3; the UUID below was generated once for this project.
pub const DEVELOPMENT_TSA_POLICY_OID: &str = "2.25.216402269092253380245787009312802959529.1.1";
/// Validity of generated development leaf certificates, days (about ten years).
pub const DEFAULT_DEVELOPMENT_VALIDITY_DAYS: u32 = 3652;

/// Errors while loading, generating or using trust material. Messages name the
/// file (when there is one) and the problem.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file or directory could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A PEM document without the expected block, or with bad base64.
    #[error("{what}: {reason}")]
    Pem {
        /// What was being read (e.g. "seal certificate /etc/x/seal.pem").
        what: String,
        /// The problem.
        reason: String,
    },
    /// A certificate that does not parse.
    #[error("{what} is not a valid X.509 certificate: {reason}")]
    Certificate {
        /// What was being read.
        what: String,
        /// The problem.
        reason: String,
    },
    /// A private key that does not parse or is of the wrong type.
    #[error("{what}: {reason}")]
    Key {
        /// What was being read.
        what: String,
        /// The problem.
        reason: String,
    },
    /// The private key is not the one certified by the certificate.
    #[error("{certificate} does not match key {key}")]
    KeyMismatch {
        /// The certificate (role and file).
        certificate: String,
        /// The key (file).
        key: String,
    },
    /// The certificate's validity ended before `now`.
    #[error("{role} certificate expired on {date}")]
    Expired {
        /// Role checked.
        role: CertificateRole,
        /// notAfter, formatted.
        date: String,
    },
    /// The certificate's validity starts after `now`.
    #[error("{role} certificate is not valid before {date}")]
    NotYetValid {
        /// Role checked.
        role: CertificateRole,
        /// notBefore, formatted.
        date: String,
    },
    /// The certificate's extensions do not allow the role.
    #[error("{role} certificate {reason}")]
    Usage {
        /// Role checked.
        role: CertificateRole,
        /// What is wrong (e.g. "extended key usage must be critical and contain only timeStamping").
        reason: String,
    },
    /// The certificate does not chain to the configured roots.
    #[error("{role} certificate does not chain to the trusted roots: {source}")]
    Chain {
        /// Role checked.
        role: CertificateRole,
        /// Why path validation failed.
        source: trust::TrustError,
    },
    /// The roots file is unusable.
    #[error("trusted roots {path}: {reason}")]
    Roots {
        /// The file.
        path: PathBuf,
        /// The problem.
        reason: String,
    },
    /// Some, but not all, development PKI files exist.
    #[error(
        "incomplete development PKI in {dir}: missing {missing}; remove the directory to generate a new one"
    )]
    IncompleteDevelopmentPki {
        /// The directory.
        dir: PathBuf,
        /// Missing file names.
        missing: String,
    },
    /// An error from a check, located in a file.
    #[error("{path}: {source}")]
    InFile {
        /// The file the problem is in.
        path: PathBuf,
        /// The problem.
        source: Box<PkiError>,
    },
    /// Certificate or key generation failed.
    #[error("development PKI generation failed: {0}")]
    Generate(String),
    /// The signing operation failed (should not happen with a valid key).
    #[error("ECDSA signing failed")]
    Sign,
    /// A PKCS#11 token refused or failed an operation (module, slot, login, key, signing).
    #[error("PKCS#11 token: {0}")]
    Token(String),
}

/// The role a certificate is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateRole {
    /// The electronic seal over evidence records.
    Seal,
    /// The RFC 3161 time-stamping unit.
    Timestamping,
}

impl fmt::Display for CertificateRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertificateRole::Seal => "seal",
            CertificateRole::Timestamping => "TSA",
        })
    }
}

impl CertificateRole {
    fn purpose(self) -> CertificatePurpose {
        match self {
            CertificateRole::Seal => CertificatePurpose::Seal,
            CertificateRole::Timestamping => CertificatePurpose::Timestamping,
        }
    }
}

/// Formats a time as `YYYY-MM-DD HH:MM:SS UTC` for messages.
pub(crate) fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.format(&fmt).unwrap_or_else(|_| t.to_string())
}

/// An ECDSA P-256 private key, wherever it lives: the one interface through which the seal,
/// the embedded TSA and every other signer of the service sign. Two back ends: a PKCS#8
/// key held in memory ([`FileKey`]) and a key that never leaves a PKCS#11 token
/// (`crate::infra::pkcs11`).
pub trait KeySigner: Send + Sync {
    /// The key's public point, uncompressed (`04 || X || Y`, SEC 1 §2.3.3).
    fn public_key(&self) -> &[u8];
    /// ECDSA P-256 / SHA-256 signature over `message`, as a DER `Ecdsa-Sig-Value`
    /// (RFC 5480 §2.2 / RFC 5758 §3.2).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError>;
    /// Where the key lives, for logs and `Debug` (never secret material).
    fn location(&self) -> String;
}

/// A PKCS#8 ECDSA P-256 key held in memory (the key-file back end).
pub struct FileKey {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl FileKey {
    /// From PKCS#8 DER; `label` names the key in errors.
    pub fn from_pkcs8(pkcs8_der: &[u8], label: &str) -> Result<Self, PkiError> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8_der, &rng)
            .map_err(|e| PkiError::Key {
                what: label.to_string(),
                reason: format!("not an ECDSA P-256 PKCS#8 private key ({e})"),
            })?;
        Ok(FileKey { key, rng })
    }
}

impl KeySigner for FileKey {
    fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        self.key
            .sign(&self.rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| PkiError::Sign)
    }

    fn location(&self) -> String {
        "key file".into()
    }
}

/// A raw ECDSA P-256 signature `r || s` (32 bytes each, what PKCS#11 `CKM_ECDSA` returns,
/// PKCS#11 v2.40 §2.3.1) as the DER `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }`.
pub fn ecdsa_p256_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, PkiError> {
    if raw.len() != 64 {
        return Err(PkiError::Token(format!(
            "an ECDSA P-256 signature has 64 bytes, the token returned {}",
            raw.len()
        )));
    }
    let r = asn1::integer_from_unsigned_be(&raw[..32]);
    let s = asn1::integer_from_unsigned_be(&raw[32..]);
    Ok(asn1::sequence(&[&r, &s]))
}

/// An ECDSA P-256 private key with its certificate chain: what seals and
/// timestamps are signed with. Pieces needed by every signature (issuer Name,
/// serial number, certificate hash) are computed once here.
pub struct SigningIdentity {
    key: Box<dyn KeySigner>,
    certificate: Vec<u8>,
    intermediates: Vec<Vec<u8>>,
    certificate_sha256: [u8; 32],
    issuer: Vec<u8>,
    subject: Vec<u8>,
    serial: Vec<u8>,
}

impl fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("subject", &trust::name_to_string(&self.subject))
            .field("issuer", &trust::name_to_string(&self.issuer))
            .field("serial", &hex::encode(&self.serial))
            .field("intermediates", &self.intermediates.len())
            .field("key", &self.key.location())
            .finish_non_exhaustive()
    }
}

impl SigningIdentity {
    /// From PEM: `cert_chain_pem` holds the leaf first, then intermediates;
    /// `pkcs8_key_pem` a `PRIVATE KEY` (PKCS#8) block. Checks that the key is the
    /// one certified by the leaf.
    pub fn from_pem(cert_chain_pem: &[u8], pkcs8_key_pem: &[u8]) -> Result<Self, PkiError> {
        identity_from_pem(cert_chain_pem, pkcs8_key_pem, "certificate", "(PEM key)")
    }

    /// From DER: leaf certificate, intermediates, PKCS#8 private key.
    pub fn from_der(
        cert_der: Vec<u8>,
        intermediates: Vec<Vec<u8>>,
        pkcs8_der: &[u8],
    ) -> Result<Self, PkiError> {
        identity_from_der(
            cert_der,
            intermediates,
            pkcs8_der,
            "certificate",
            "(PKCS#8 key)",
        )
    }

    /// The leaf certificate (DER).
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate
    }

    /// Intermediate certificates (DER), leaf's issuer first.
    pub fn intermediates_der(&self) -> &[Vec<u8>] {
        &self.intermediates
    }

    /// SHA-256 of the leaf certificate (for ESSCertIDv2, RFC 5035).
    pub fn certificate_sha256(&self) -> [u8; 32] {
        self.certificate_sha256
    }

    /// The leaf's issuer Name (DER).
    pub fn issuer_der(&self) -> &[u8] {
        &self.issuer
    }

    /// The leaf's subject Name (DER).
    pub fn subject_der(&self) -> &[u8] {
        &self.subject
    }

    /// The leaf's serialNumber INTEGER content octets.
    pub fn serial_content(&self) -> &[u8] {
        &self.serial
    }

    /// `IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber INTEGER }`
    /// (RFC 5652 §10.2.4) for this certificate.
    pub fn issuer_and_serial_der(&self) -> Vec<u8> {
        asn1::sequence(&[&self.issuer, &asn1::tlv(asn1::tag::INTEGER, &self.serial)])
    }

    /// From a certificate chain and a key behind [`KeySigner`] (a token key, say): checks
    /// that the key is the one the leaf certifies. `cert_label`/`key_label` name them in
    /// errors.
    pub fn with_signer(
        cert_der: Vec<u8>,
        intermediates: Vec<Vec<u8>>,
        key: Box<dyn KeySigner>,
        cert_label: &str,
        key_label: &str,
    ) -> Result<Self, PkiError> {
        identity_with_signer(cert_der, intermediates, key, cert_label, key_label)
    }

    /// Uncompressed public key point.
    pub fn public_key(&self) -> &[u8] {
        self.key.public_key()
    }

    /// Where the key lives ("key file", or the token and object of a PKCS#11 key).
    pub fn key_location(&self) -> String {
        self.key.location()
    }

    /// ECDSA P-256 / SHA-256 signature over `message`, as a DER `Ecdsa-Sig-Value`
    /// (RFC 5480 §2.2 / RFC 5758 §3.2).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        self.key.sign(message)
    }
}

/// The leaf of a PEM chain and its intermediates (DER); `cert_label` names it in errors.
pub fn chain_from_pem(
    cert_chain_pem: &[u8],
    cert_label: &str,
) -> Result<(Vec<u8>, Vec<Vec<u8>>), PkiError> {
    let mut certs =
        trust::pem_blocks(cert_chain_pem, "CERTIFICATE").map_err(|e| PkiError::Pem {
            what: cert_label.to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(PkiError::Pem {
            what: cert_label.to_string(),
            reason: "no -----BEGIN CERTIFICATE----- block".into(),
        });
    }
    let leaf = certs.remove(0);
    Ok((leaf, certs))
}

fn identity_from_pem(
    cert_chain_pem: &[u8],
    pkcs8_key_pem: &[u8],
    cert_label: &str,
    key_label: &str,
) -> Result<SigningIdentity, PkiError> {
    let (leaf, certs) = chain_from_pem(cert_chain_pem, cert_label)?;
    let keys = trust::pem_blocks(pkcs8_key_pem, "PRIVATE KEY").map_err(|e| PkiError::Pem {
        what: key_label.to_string(),
        reason: e.to_string(),
    })?;
    let key = match keys.as_slice() {
        [one] => one,
        [] => {
            let text = String::from_utf8_lossy(pkcs8_key_pem);
            let reason = if text.contains("BEGIN EC PRIVATE KEY")
                || text.contains("BEGIN ENCRYPTED PRIVATE KEY")
            {
                "the key must be an unencrypted PKCS#8 \"PRIVATE KEY\" block \
                 (convert with: openssl pkcs8 -topk8 -nocrypt)"
            } else {
                "no -----BEGIN PRIVATE KEY----- block"
            };
            return Err(PkiError::Pem {
                what: key_label.to_string(),
                reason: reason.into(),
            });
        }
        _ => {
            return Err(PkiError::Pem {
                what: key_label.to_string(),
                reason: "more than one PRIVATE KEY block".into(),
            });
        }
    };
    identity_from_der(leaf, certs, key, cert_label, key_label)
}

fn identity_from_der(
    cert_der: Vec<u8>,
    intermediates: Vec<Vec<u8>>,
    pkcs8_der: &[u8],
    cert_label: &str,
    key_label: &str,
) -> Result<SigningIdentity, PkiError> {
    // The certificate is checked first: a wrong certificate is the likelier mistake, and
    // its message is the clearer one.
    certified_p256_key(&cert_der, &intermediates, cert_label)?;
    let key = FileKey::from_pkcs8(pkcs8_der, key_label)?;
    identity_with_signer(
        cert_der,
        intermediates,
        Box::new(key),
        cert_label,
        key_label,
    )
}

/// Parses the leaf and its chain and checks that the leaf certifies an ECDSA P-256 key.
fn certified_p256_key<'a>(
    cert_der: &'a [u8],
    intermediates: &[Vec<u8>],
    cert_label: &str,
) -> Result<Certificate<'a>, PkiError> {
    let bad_cert = |what: String, e: trust::TrustError| PkiError::Certificate {
        what,
        reason: e.to_string(),
    };
    let cert = Certificate::parse(cert_der).map_err(|e| bad_cert(cert_label.to_string(), e))?;
    for (i, der) in intermediates.iter().enumerate() {
        Certificate::parse(der)
            .map_err(|e| bad_cert(format!("{cert_label} (chain certificate #{})", i + 2), e))?;
    }
    if cert.key_algorithm != oids::EC_PUBLIC_KEY || cert.key_curve.as_deref() != Some(oids::P256) {
        return Err(PkiError::Key {
            what: cert_label.to_string(),
            reason: format!(
                "the certified key must be ECDSA P-256 (found {} {})",
                cert.key_algorithm,
                cert.key_curve.as_deref().unwrap_or("")
            ),
        });
    }
    Ok(cert)
}

fn identity_with_signer(
    cert_der: Vec<u8>,
    intermediates: Vec<Vec<u8>>,
    key: Box<dyn KeySigner>,
    cert_label: &str,
    key_label: &str,
) -> Result<SigningIdentity, PkiError> {
    let cert = certified_p256_key(&cert_der, &intermediates, cert_label)?;
    if key.public_key() != cert.public_key {
        return Err(PkiError::KeyMismatch {
            certificate: cert_label.to_string(),
            key: key_label.to_string(),
        });
    }
    let certificate_sha256 = {
        let d = ring::digest::digest(&ring::digest::SHA256, &cert_der);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    };
    let (issuer, subject, serial) = (
        cert.issuer.to_vec(),
        cert.subject.to_vec(),
        cert.serial.to_vec(),
    );
    drop(cert);
    Ok(SigningIdentity {
        issuer,
        subject,
        serial,
        key,
        certificate_sha256,
        intermediates,
        certificate: cert_der,
    })
}

/// Everything the service signs with and what verifiers should trust.
#[derive(Debug, Clone)]
pub struct TrustMaterial {
    /// Trusted root certificates (DER).
    pub roots_der: Vec<Vec<u8>>,
    /// The same roots as a PEM bundle (what `openssl -CAfile` takes).
    pub roots_pem: String,
    /// Roots of retired key generations (after a rotation), PEM: they sign nothing any more
    /// but still verify archived evidence, so they are trusted, served and bundled.
    pub retired_roots_pem: String,
    /// The electronic-seal identity.
    pub seal: Arc<SigningIdentity>,
    /// The embedded TSA identity; `None` in production when no TSA certificate is
    /// configured (timestamps then come from a remote, typically qualified, TSA).
    pub tsa: Option<Arc<SigningIdentity>>,
    /// True when the seal certificate claims EU qualified status (QcCompliance statement).
    pub qualified: bool,
    /// True for the generated development PKI.
    pub development: bool,
}

/// Checks a certificate for `role` at `now`: the validity window contains `now`;
/// Seal: keyUsage digitalSignature or nonRepudiation; Timestamping: EKU present,
/// critical and exactly id-kp-timeStamping (RFC 3161 §2.3), keyUsage
/// digitalSignature or nonRepudiation.
pub fn check_certificate_for_role(
    cert_der: &[u8],
    role: CertificateRole,
    now: OffsetDateTime,
) -> Result<(), PkiError> {
    let cert = Certificate::parse(cert_der).map_err(|e| PkiError::Certificate {
        what: format!("{role} certificate"),
        reason: e.to_string(),
    })?;
    if now > cert.not_after {
        return Err(PkiError::Expired {
            role,
            date: format_time(cert.not_after),
        });
    }
    if now < cert.not_before {
        return Err(PkiError::NotYetValid {
            role,
            date: format_time(cert.not_before),
        });
    }
    let problem =
        trust::purpose_problem(&cert, role.purpose()).map_err(|e| PkiError::Certificate {
            what: format!("{role} certificate"),
            reason: e.to_string(),
        })?;
    match problem {
        Some(reason) => Err(PkiError::Usage { role, reason }),
        None => Ok(()),
    }
}

/// Wraps an error with the file it was read from.
pub fn in_file(path: &Path) -> impl FnOnce(PkiError) -> PkiError + '_ {
    move |e| PkiError::InFile {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}

/// One role's identity from its PEM chain and PKCS#8 key, checked for the role, at `now`
/// and against `anchors`; `cert_path` and `key_path` name them in errors.
pub fn checked_identity(
    role: CertificateRole,
    chain: &[u8],
    key: &[u8],
    cert_path: &Path,
    key_path: &Path,
    anchors: &TrustAnchors,
    now: OffsetDateTime,
) -> Result<SigningIdentity, PkiError> {
    let identity = identity_from_pem(
        chain,
        key,
        &format!("{role} certificate {}", cert_path.display()),
        &key_path.display().to_string(),
    )?;
    checked_for_role(identity, role, cert_path, anchors, now)
}

/// One role's identity from its PEM chain and a key behind [`KeySigner`] (a token key),
/// checked like [`checked_identity`]: the key is the certified one, the certificate fits the
/// role at `now` and chains to `anchors`.
pub fn checked_identity_with_signer(
    role: CertificateRole,
    chain: &[u8],
    key: Box<dyn KeySigner>,
    cert_path: &Path,
    anchors: &TrustAnchors,
    now: OffsetDateTime,
) -> Result<SigningIdentity, PkiError> {
    let cert_label = format!("{role} certificate {}", cert_path.display());
    let (leaf, intermediates) = chain_from_pem(chain, &cert_label)?;
    let key_label = key.location();
    let identity = identity_with_signer(leaf, intermediates, key, &cert_label, &key_label)?;
    checked_for_role(identity, role, cert_path, anchors, now)
}

fn checked_for_role(
    identity: SigningIdentity,
    role: CertificateRole,
    cert_path: &Path,
    anchors: &TrustAnchors,
    now: OffsetDateTime,
) -> Result<SigningIdentity, PkiError> {
    check_certificate_for_role(identity.certificate_der(), role, now)
        .map_err(in_file(cert_path))?;
    trust::verify_certificate_path(
        identity.certificate_der(),
        identity.intermediates_der(),
        anchors,
        now,
        role.purpose(),
    )
    .map_err(|source| PkiError::Chain { role, source })
    .map_err(in_file(cert_path))?;
    Ok(identity)
}

/// Trust anchors from a PEM bundle, and the bundle re-encoded; `path` names it in errors.
pub fn roots_from_pem(pem: &[u8], path: &Path) -> Result<(TrustAnchors, String), PkiError> {
    let anchors = TrustAnchors::from_pem(pem).map_err(|e| PkiError::Roots {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let roots_pem = anchors
        .roots_der()
        .iter()
        .map(|der| trust::pem_encode("CERTIFICATE", der))
        .collect::<String>();
    Ok((anchors, roots_pem))
}

/// The trust material of a development PKI held in memory (what the files of
/// `crate::infra::key_files` hold), checked at `now`.
pub fn development_material(
    pki: &DevelopmentPki,
    now: OffsetDateTime,
) -> Result<TrustMaterial, PkiError> {
    let here = Path::new("(development PKI)");
    let (anchors, roots_pem) = roots_from_pem(pki.root_pem.as_bytes(), here)?;
    let identity = |role, cert: &str, key: &str| {
        checked_identity(
            role,
            cert.as_bytes(),
            key.as_bytes(),
            here,
            here,
            &anchors,
            now,
        )
    };
    let seal = identity(CertificateRole::Seal, &pki.seal_pem, &pki.seal_key_pem)?;
    let tsa = identity(
        CertificateRole::Timestamping,
        &pki.tsa_pem,
        &pki.tsa_key_pem,
    )?;
    Ok(TrustMaterial {
        roots_der: anchors.roots_der().to_vec(),
        roots_pem,
        retired_roots_pem: String::new(),
        seal: Arc::new(seal),
        tsa: Some(Arc::new(tsa)),
        qualified: false,
        development: true,
    })
}

/// A [`KeySigner`] as rcgen's signing key, to sign certification requests with a token key.
struct RequestKey<'a>(&'a dyn KeySigner);

impl rcgen::PublicKeyData for RequestKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0.public_key()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for RequestKey<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.0.sign(msg).map_err(|_| rcgen::Error::RingUnspecified)
    }
}

/// A distinguished name written `CN=Recommande Seal,O=Example SAS,C=FR,
/// organizationIdentifier=NTRFR-123456789` (RFC 4514 short names, plus
/// `organizationIdentifier`, 2.5.4.97, that ETSI EN 319 412-3 asks of a legal person's seal;
/// `\,` escapes a comma).
pub fn parse_subject(subject: &str) -> Result<DistinguishedName, PkiError> {
    let bad = |reason: String| PkiError::Key {
        what: format!("subject {subject:?}"),
        reason,
    };
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = subject.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ',' => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    let mut dn = DistinguishedName::new();
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("{part:?} is not NAME=value")))?;
        let kind = match name.trim() {
            "CN" => DnType::CommonName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "C" => DnType::CountryName,
            "L" => DnType::LocalityName,
            "ST" => DnType::StateOrProvinceName,
            "serialNumber" => DnType::CustomDnType(vec![2, 5, 4, 5]),
            "organizationIdentifier" => DnType::CustomDnType(vec![2, 5, 4, 97]),
            other => {
                return Err(bad(format!(
                    "unknown attribute {other:?} (CN, O, OU, C, L, ST, serialNumber, organizationIdentifier)"
                )));
            }
        };
        let value = value.trim();
        if matches!(kind, DnType::CountryName) && value.len() != 2 {
            return Err(bad(format!(
                "C must be a two-letter country code, not {value:?}"
            )));
        }
        dn.push(kind, value);
    }
    if dn.iter().next().is_none() {
        return Err(bad("no attribute".into()));
    }
    Ok(dn)
}

/// A PKCS#10 certification request (RFC 2986) for `key`, signed by it (proof of
/// possession), PEM-encoded, for a CA to certify. It asks for what `role` needs: key usage
/// nonRepudiation and digitalSignature for the seal; digitalSignature and the critical
/// extended key usage timeStamping alone for a TSA (RFC 3161 §2.3).
pub fn certification_request_pem(
    key: &dyn KeySigner,
    subject: &str,
    role: CertificateRole,
) -> Result<String, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = parse_subject(subject)?;
    match role {
        CertificateRole::Seal => {
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::ContentCommitment,
            ];
        }
        CertificateRole::Timestamping => {
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.custom_extensions.push(timestamping_eku(true)?);
        }
    }
    params
        .serialize_request(&RequestKey(key))
        .and_then(|csr| csr.pem())
        .map_err(|e| PkiError::Generate(format!("certification request: {e}")))
}

/// PEM texts of a generated development PKI.
pub struct DevelopmentPki {
    /// Root certificate.
    pub root_pem: String,
    /// Root key (PKCS#8).
    pub root_key_pem: String,
    /// Seal certificate.
    pub seal_pem: String,
    /// Seal key (PKCS#8).
    pub seal_key_pem: String,
    /// TSA certificate.
    pub tsa_pem: String,
    /// TSA key (PKCS#8).
    pub tsa_key_pem: String,
}

fn gen_err(e: rcgen::Error) -> PkiError {
    PkiError::Generate(e.to_string())
}

/// A random positive serial number of 18 octets (RFC 5280 §4.1.2.2: positive,
/// at most 20 octets; CA/B BR: at least 64 bits of entropy). The top bit is
/// cleared and the next one set so the INTEGER is always exactly 18 octets.
fn random_serial(rng: &SystemRandom) -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 18];
    rng.fill(&mut bytes)
        .map_err(|_| PkiError::Generate("system random generator failed".into()))?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn dev_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::OrganizationName,
        "recommande (development, non-qualified)",
    );
    dn.push(DnType::CommonName, cn);
    dn
}

/// Parameters for a development leaf certificate of `role`, valid `validity_days` from `now`.
fn leaf_params(
    role: CertificateRole,
    now: OffsetDateTime,
    validity_days: u32,
    rng: &SystemRandom,
    key: &impl rcgen::PublicKeyData,
) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(i64::from(validity_days));
    params.serial_number = Some(random_serial(rng)?);
    // rcgen's `IsCa::ExplicitNoCa` encodes `cA FALSE` explicitly, which violates
    // DER (X.690 §11.5: DEFAULT values are omitted) and is rejected by strict
    // parsers; write basicConstraints and the subject key identifier ourselves.
    params.is_ca = IsCa::NoCa;
    let mut basic_constraints =
        CustomExtension::from_oid_content(&[2, 5, 29, 19], asn1::sequence(&[]));
    basic_constraints.set_criticality(true);
    let ski = CustomExtension::from_oid_content(
        &[2, 5, 29, 14],
        asn1::octet_string(&params.key_identifier(key)),
    );
    params.custom_extensions = vec![basic_constraints, ski];
    params.use_authority_key_identifier_extension = true;
    match role {
        CertificateRole::Seal => {
            params.distinguished_name = dev_name("recommande development seal (non-qualified)");
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::ContentCommitment,
            ];
        }
        CertificateRole::Timestamping => {
            params.distinguished_name = dev_name("recommande development TSA (non-qualified)");
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.custom_extensions.push(timestamping_eku(true)?);
        }
    }
    Ok(params)
}

/// ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId, with only
/// id-kp-timeStamping; RFC 3161 §2.3 requires it critical (rcgen's own EKU writer
/// marks it non-critical, hence a custom extension).
pub(crate) fn timestamping_eku(critical: bool) -> Result<CustomExtension, PkiError> {
    let content = asn1::sequence(&[
        &asn1::oid(oids::KP_TIME_STAMPING).map_err(|e| PkiError::Generate(e.to_string()))?
    ]);
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 37], content);
    ext.set_criticality(critical);
    Ok(ext)
}

pub(crate) fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// A development root CA's parameters and self-signed certificate for `root_key`.
fn development_root(
    root_key: &KeyPair,
    now: OffsetDateTime,
    rng: &SystemRandom,
) -> Result<(CertificateParams, rcgen::Certificate), PkiError> {
    let mut root = CertificateParams::default();
    root.distinguished_name = dev_name("recommande development root CA (non-qualified)");
    root.not_before = now - Duration::minutes(5);
    root.not_after = now + Duration::days(7305);
    root.serial_number = Some(random_serial(rng)?);
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root_cert = root.self_signed(root_key).map_err(gen_err)?;
    Ok((root, root_cert))
}

/// A throw-away development root and a certificate it issues for `key` (a token key, say)
/// in `role`: (root PEM, leaf PEM). For benchmarks and tests of a key that lives elsewhere;
/// non-qualified like every development certificate.
pub fn development_chain_for(
    key: &dyn KeySigner,
    role: CertificateRole,
    now: OffsetDateTime,
    validity_days: u32,
) -> Result<(String, String), PkiError> {
    let now = whole_seconds(now);
    let rng = SystemRandom::new();
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
    let (root, root_cert) = development_root(&root_key, now, &rng)?;
    let issuer = Issuer::new(root, &root_key);
    let subject = RequestKey(key);
    let leaf = leaf_params(role, now, validity_days, &rng, &subject)?
        .signed_by(&subject, &issuer)
        .map_err(gen_err)?;
    Ok((root_cert.pem(), leaf.pem()))
}

/// Generates a development PKI in memory: a root, a seal and a TSA certificate (leaves
/// valid `validity_days` days) with their keys.
pub fn generate_development_pki(
    now: OffsetDateTime,
    validity_days: u32,
) -> Result<DevelopmentPki, PkiError> {
    let now = whole_seconds(now);
    let rng = SystemRandom::new();
    let new_key = || KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err);

    let root_key = new_key()?;
    let (root, root_cert) = development_root(&root_key, now, &rng)?;
    let issuer = Issuer::new(root, &root_key);

    let seal_key = new_key()?;
    let seal_cert = leaf_params(CertificateRole::Seal, now, validity_days, &rng, &seal_key)?
        .signed_by(&seal_key, &issuer)
        .map_err(gen_err)?;
    let tsa_key = new_key()?;
    let tsa_cert = leaf_params(
        CertificateRole::Timestamping,
        now,
        validity_days,
        &rng,
        &tsa_key,
    )?
    .signed_by(&tsa_key, &issuer)
    .map_err(gen_err)?;
    Ok(DevelopmentPki {
        root_pem: root_cert.pem(),
        root_key_pem: root_key.serialize_pem(),
        seal_pem: seal_cert.pem(),
        seal_key_pem: seal_key.serialize_pem(),
        tsa_pem: tsa_cert.pem(),
        tsa_key_pem: tsa_key.serialize_pem(),
    })
}

/// Shared fixtures for the crate's tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use std::fs;
    use std::sync::OnceLock;

    /// A generated development PKI and the time it was generated for.
    pub(crate) struct TestPki {
        pub material: TrustMaterial,
        pub now: OffsetDateTime,
    }

    /// A fresh directory under the system temp dir, removed on drop.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub(crate) fn new(prefix: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("recommande-{prefix}-{}", uuid::Uuid::new_v4()));
            fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }
        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
        pub(crate) fn file(&self, name: &str, content: &[u8]) -> PathBuf {
            let p = self.0.join(name);
            fs::write(&p, content).expect("write temp file");
            p
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn make() -> TestPki {
        let now = whole_seconds(OffsetDateTime::now_utc());
        let files =
            generate_development_pki(now, DEFAULT_DEVELOPMENT_VALIDITY_DAYS).expect("dev pki");
        let material = development_material(&files, now).expect("dev pki material");
        TestPki { material, now }
    }

    /// The crate-wide test PKI (generated once).
    pub(crate) fn dev_pki() -> &'static TestPki {
        static PKI: OnceLock<TestPki> = OnceLock::new();
        PKI.get_or_init(make)
    }

    /// A second, unrelated PKI with the same names.
    pub(crate) fn other_pki() -> &'static TestPki {
        static PKI: OnceLock<TestPki> = OnceLock::new();
        PKI.get_or_init(make)
    }

    /// Issues a leaf under a fresh root with `customize` applied; returns
    /// (root PEM, leaf PEM, leaf key PEM).
    pub(crate) fn custom_leaf(
        role: CertificateRole,
        now: OffsetDateTime,
        customize: impl FnOnce(&mut CertificateParams),
    ) -> (String, String, String) {
        let rng = SystemRandom::new();
        let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut root = CertificateParams::default();
        root.distinguished_name = dev_name("test root");
        root.not_before = now - Duration::days(3000);
        root.not_after = now + Duration::days(3000);
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let root_cert = root.self_signed(&root_key).expect("root");
        let issuer = Issuer::new(root, &root_key);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params =
            leaf_params(role, now, DEFAULT_DEVELOPMENT_VALIDITY_DAYS, &rng, &key).expect("params");
        customize(&mut params);
        let cert = params.signed_by(&key, &issuer).expect("leaf");
        (root_cert.pem(), cert.pem(), key.serialize_pem())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_token_signatures_become_minimal_der_and_verify() {
        // r with its high bit set takes a 0x00 pad; s with leading zeros loses them.
        let mut raw = vec![0x80; 32];
        raw.extend([0u8; 31]);
        raw.push(0x05);
        let der = ecdsa_p256_raw_to_der(&raw).expect("der");
        let mut expected = vec![0x30, 0x26, 0x02, 0x21, 0x00];
        expected.extend([0x80; 32]);
        expected.extend([0x02, 0x01, 0x05]);
        assert_eq!(der, expected);
        assert!(matches!(
            ecdsa_p256_raw_to_der(&raw[..63]),
            Err(PkiError::Token(_))
        ));
        // A key behind the interface signs what ring verifies with its public key.
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .expect("key");
        let key = FileKey::from_pkcs8(pkcs8.as_ref(), "test key").expect("file key");
        let signature = key.sign(b"message").expect("sign");
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            key.public_key(),
        )
        .verify(b"message", &signature)
        .expect("verifies");
    }

    #[test]
    fn subjects_are_read_with_their_organisation_identifier_and_refused_when_odd() {
        let dn = parse_subject(
            r"CN=Seal\, Example,O=Example SAS,C=FR,organizationIdentifier=NTRFR-123456789",
        )
        .expect("subject");
        let parts: Vec<String> = dn
            .iter()
            .map(|(kind, value)| format!("{kind:?}={value:?}"))
            .collect();
        assert_eq!(parts.len(), 4, "{parts:?}");
        assert!(parts[0].contains("CommonName") && parts[0].contains("Seal, Example"));
        assert!(parts[3].contains("[2, 5, 4, 97]") && parts[3].contains("NTRFR-123456789"));
        for (bad, expected) in [
            ("CN", "is not NAME=value"),
            ("C=France", "two-letter"),
            ("X=1", "unknown attribute"),
            ("", "no attribute"),
        ] {
            let e = parse_subject(bad).expect_err(bad).to_string();
            assert!(e.contains(expected), "{bad}: {e}");
        }
    }
}
