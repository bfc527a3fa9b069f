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
use std::fs;
use std::io::Write as _;
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

/// An ECDSA P-256 private key with its certificate chain: what seals and
/// timestamps are signed with. Pieces needed by every signature (issuer Name,
/// serial number, certificate hash) are computed once here.
pub struct SigningIdentity {
    key: EcdsaKeyPair,
    rng: SystemRandom,
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

    /// Uncompressed public key point.
    pub fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    /// ECDSA P-256 / SHA-256 signature over `message`, as a DER `Ecdsa-Sig-Value`
    /// (RFC 5480 §2.2 / RFC 5758 §3.2).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        self.key
            .sign(&self.rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| PkiError::Sign)
    }
}

fn identity_from_pem(
    cert_chain_pem: &[u8],
    pkcs8_key_pem: &[u8],
    cert_label: &str,
    key_label: &str,
) -> Result<SigningIdentity, PkiError> {
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
    let bad_cert = |what: String, e: trust::TrustError| PkiError::Certificate {
        what,
        reason: e.to_string(),
    };
    let cert = Certificate::parse(&cert_der).map_err(|e| bad_cert(cert_label.to_string(), e))?;
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
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8_der, &rng).map_err(
        |e| PkiError::Key {
            what: key_label.to_string(),
            reason: format!("not an ECDSA P-256 PKCS#8 private key ({e})"),
        },
    )?;
    if key.public_key().as_ref() != cert.public_key {
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
    Ok(SigningIdentity {
        issuer: cert.issuer.to_vec(),
        subject: cert.subject.to_vec(),
        serial: cert.serial.to_vec(),
        key,
        rng,
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

fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    fs::read(path).map_err(|source| PkiError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn in_file(path: &Path) -> impl FnOnce(PkiError) -> PkiError + '_ {
    move |e| PkiError::InFile {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}

/// Loads one role's identity from files and checks it (role, time, chain).
fn load_identity(
    role: CertificateRole,
    cert_path: &Path,
    key_path: &Path,
    anchors: &TrustAnchors,
    now: OffsetDateTime,
) -> Result<SigningIdentity, PkiError> {
    let chain = read(cert_path)?;
    let key = read(key_path)?;
    let identity = identity_from_pem(
        &chain,
        &key,
        &format!("{role} certificate {}", cert_path.display()),
        &key_path.display().to_string(),
    )?;
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

fn load_roots(path: &Path) -> Result<(TrustAnchors, String), PkiError> {
    let pem = read(path)?;
    let anchors = TrustAnchors::from_pem(&pem).map_err(|e| PkiError::Roots {
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

/// Production: the operator's PEM files (certificate chains leaf first, PKCS#8
/// keys, a roots bundle). Each certificate is checked for its role at `now` and
/// against the roots; any problem refuses start with a message naming the file.
pub fn load_production_pki(
    seal_cert: &Path,
    seal_key: &Path,
    tsa: Option<(&Path, &Path)>,
    roots: &Path,
    now: OffsetDateTime,
) -> Result<TrustMaterial, PkiError> {
    let (anchors, roots_pem) = load_roots(roots)?;
    let seal = load_identity(CertificateRole::Seal, seal_cert, seal_key, &anchors, now)?;
    let tsa = tsa
        .map(|(cert, key)| load_identity(CertificateRole::Timestamping, cert, key, &anchors, now))
        .transpose()?;
    let qualified = Certificate::parse(seal.certificate_der())
        .map(|c| c.is_qualified())
        .unwrap_or(false);
    Ok(TrustMaterial {
        roots_der: anchors.roots_der().to_vec(),
        roots_pem,
        retired_roots_pem: String::new(),
        seal: Arc::new(seal),
        tsa: tsa.map(Arc::new),
        qualified,
        development: false,
    })
}

const DEV_FILES: [&str; 6] = [
    "root.pem",
    "root.key.pem",
    "seal.pem",
    "seal.key.pem",
    "tsa.pem",
    "tsa.key.pem",
];

/// Loads the development PKI from `dir` (files: root.pem, root.key.pem, seal.pem,
/// seal.key.pem, tsa.pem, tsa.key.pem; keys mode 0600) or generates it when none of
/// them exists; returns (material, created). A partial set is an error rather than
/// being silently overwritten.
pub fn load_or_create_development_pki(
    dir: &Path,
    now: OffsetDateTime,
) -> Result<(TrustMaterial, bool), PkiError> {
    load_or_create_development_pki_valid_for(dir, now, DEFAULT_DEVELOPMENT_VALIDITY_DAYS)
}

/// [`load_or_create_development_pki`] whose generated leaf certificates are valid
/// `validity_days` days (`[pki] development_validity_days`).
pub fn load_or_create_development_pki_valid_for(
    dir: &Path,
    now: OffsetDateTime,
    validity_days: u32,
) -> Result<(TrustMaterial, bool), PkiError> {
    let present: Vec<bool> = DEV_FILES.iter().map(|f| dir.join(f).exists()).collect();
    let created = if present.iter().all(|p| !p) {
        let files = generate_development_pki(now, validity_days)?;
        write_development_pki(dir, &files)?;
        true
    } else if present.iter().all(|p| *p) {
        false
    } else {
        let missing = DEV_FILES
            .iter()
            .zip(&present)
            .filter(|(_, p)| !**p)
            .map(|(f, _)| *f)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(PkiError::IncompleteDevelopmentPki {
            dir: dir.to_path_buf(),
            missing,
        });
    };
    let (anchors, roots_pem) = load_roots(&dir.join("root.pem"))?;
    let seal = load_identity(
        CertificateRole::Seal,
        &dir.join("seal.pem"),
        &dir.join("seal.key.pem"),
        &anchors,
        now,
    )?;
    let tsa = load_identity(
        CertificateRole::Timestamping,
        &dir.join("tsa.pem"),
        &dir.join("tsa.key.pem"),
        &anchors,
        now,
    )?;
    Ok((
        TrustMaterial {
            roots_der: anchors.roots_der().to_vec(),
            roots_pem,
            retired_roots_pem: retired_development_roots(dir)?,
            seal: Arc::new(seal),
            tsa: Some(Arc::new(tsa)),
            qualified: false,
            development: true,
        },
        created,
    ))
}

/// Folder of the retired generations of a development PKI, one sub-folder each.
pub const RETIRED_DIR: &str = "retired";

/// The roots of every retired generation under `dir/retired/*/root.pem`, in folder order.
fn retired_development_roots(dir: &Path) -> Result<String, PkiError> {
    let retired = dir.join(RETIRED_DIR);
    if !retired.exists() {
        return Ok(String::new());
    }
    let mut folders: Vec<PathBuf> = fs::read_dir(&retired)
        .map_err(|source| PkiError::Read {
            path: retired.clone(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("root.pem").is_file())
        .collect();
    folders.sort();
    let mut pem = String::new();
    for folder in folders {
        let (_, text) = load_roots(&folder.join("root.pem"))?;
        pem.push_str(&text);
    }
    Ok(pem)
}

/// Key rotation of the development PKI (`recommande pki rotate`): generates a new root, seal
/// and TSA (leaves valid `validity_days`), moves the current certificates to
/// `dir/retired/<time>/` (kept and trusted for verification) and deletes the current private
/// keys, so the old generation can verify but never sign again. The new set is written
/// complete into `dir/next/` first; returns the retired folder.
pub fn rotate_development_pki(
    dir: &Path,
    now: OffsetDateTime,
    validity_days: u32,
) -> Result<PathBuf, PkiError> {
    let missing: Vec<&str> = DEV_FILES
        .iter()
        .filter(|f| !dir.join(f).exists())
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(PkiError::IncompleteDevelopmentPki {
            dir: dir.to_path_buf(),
            missing: missing.join(", "),
        });
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PkiError::Write { path, source }
    };
    let next = dir.join("next");
    if next.exists() {
        fs::remove_dir_all(&next).map_err(io(&next))?;
    }
    write_development_pki(&next, &generate_development_pki(now, validity_days)?)?;
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .map_err(|e| PkiError::Generate(e.to_string()))?;
    let mut retired = dir.join(RETIRED_DIR).join(&stamp);
    let mut n = 1;
    while retired.exists() {
        n += 1;
        retired = dir.join(RETIRED_DIR).join(format!("{stamp}-{n}"));
    }
    fs::create_dir_all(&retired).map_err(io(&retired))?;
    for file in ["root.pem", "seal.pem", "tsa.pem"] {
        fs::rename(dir.join(file), retired.join(file)).map_err(io(&dir.join(file)))?;
    }
    for file in ["root.key.pem", "seal.key.pem", "tsa.key.pem"] {
        fs::remove_file(dir.join(file)).map_err(io(&dir.join(file)))?;
    }
    for file in DEV_FILES {
        fs::rename(next.join(file), dir.join(file)).map_err(io(&next.join(file)))?;
    }
    fs::remove_dir(&next).map_err(io(&next))?;
    Ok(retired)
}

/// PEM texts of a generated development PKI.
struct DevelopmentPki {
    root_pem: String,
    root_key_pem: String,
    seal_pem: String,
    seal_key_pem: String,
    tsa_pem: String,
    tsa_key_pem: String,
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
    key: &KeyPair,
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
fn timestamping_eku(critical: bool) -> Result<CustomExtension, PkiError> {
    let content = asn1::sequence(&[
        &asn1::oid(oids::KP_TIME_STAMPING).map_err(|e| PkiError::Generate(e.to_string()))?
    ]);
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 37], content);
    ext.set_criticality(critical);
    Ok(ext)
}

fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

fn generate_development_pki(
    now: OffsetDateTime,
    validity_days: u32,
) -> Result<DevelopmentPki, PkiError> {
    let now = whole_seconds(now);
    let rng = SystemRandom::new();
    let new_key = || KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err);

    let root_key = new_key()?;
    let mut root = CertificateParams::default();
    root.distinguished_name = dev_name("recommande development root CA (non-qualified)");
    root.not_before = now - Duration::minutes(5);
    root.not_after = now + Duration::days(7305);
    root.serial_number = Some(random_serial(&rng)?);
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root_cert = root.self_signed(&root_key).map_err(gen_err)?;
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

/// Writes a file that must not exist yet; `private` files get mode 0600.
fn write_new(path: &Path, content: &str, private: bool) -> Result<(), PkiError> {
    let err = |source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(err)?;
    file.write_all(content.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)
}

fn write_development_pki(dir: &Path, pki: &DevelopmentPki) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(|source| PkiError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    // Certificates first, keys last: a crash in between leaves a partial set,
    // which the loader reports instead of using.
    write_new(&dir.join("root.pem"), &pki.root_pem, false)?;
    write_new(&dir.join("seal.pem"), &pki.seal_pem, false)?;
    write_new(&dir.join("tsa.pem"), &pki.tsa_pem, false)?;
    write_new(&dir.join("root.key.pem"), &pki.root_key_pem, true)?;
    write_new(&dir.join("seal.key.pem"), &pki.seal_key_pem, true)?;
    write_new(&dir.join("tsa.key.pem"), &pki.tsa_key_pem, true)
}

/// Shared fixtures for the crate's tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
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
        let dir = TempDir::new("pki");
        let now = whole_seconds(OffsetDateTime::now_utc());
        let (material, created) =
            load_or_create_development_pki(&dir.path().join("pki"), now).expect("dev pki");
        assert!(created);
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
    use super::test_support::*;
    use super::*;

    #[test]
    fn development_pki_is_created_then_reloaded() {
        let dir = TempDir::new("devpki");
        let pki_dir = dir.path().join("pki");
        let now = whole_seconds(OffsetDateTime::now_utc());
        let (first, created) = load_or_create_development_pki(&pki_dir, now).expect("create");
        assert!(created);
        assert!(first.development && !first.qualified);
        let (second, created) = load_or_create_development_pki(&pki_dir, now).expect("reload");
        assert!(!created);
        assert_eq!(first.seal.certificate_der(), second.seal.certificate_der());
        assert_eq!(first.roots_der, second.roots_der);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            for key in ["root.key.pem", "seal.key.pem", "tsa.key.pem"] {
                let mode = fs::metadata(pki_dir.join(key))
                    .expect("meta")
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{key}");
            }
        }
        // Root: CA, the expected name; TSA: critical EKU timeStamping only.
        let root = Certificate::parse(&first.roots_der[0]).expect("root");
        assert!(
            root.subject_string()
                .contains("recommande development root CA (non-qualified)")
        );
        assert_eq!(root.basic_constraints().expect("bc"), Some((true, None)));
        let tsa = first.tsa.as_ref().expect("tsa");
        let cert = Certificate::parse(tsa.certificate_der()).expect("tsa cert");
        assert_eq!(
            cert.extended_key_usage().expect("eku"),
            Some((true, vec![oids::KP_TIME_STAMPING.to_string()]))
        );
        assert!(cert.subject_key_identifier().expect("ski").is_some());
        // basicConstraints cA FALSE is encoded as DER requires: an empty SEQUENCE.
        let bc = cert
            .extension(oids::BASIC_CONSTRAINTS)
            .expect("basicConstraints");
        assert!(bc.critical);
        assert_eq!(bc.value, &[0x30, 0x00]);
        assert_eq!(
            cert.authority_key_identifier().expect("aki"),
            root.subject_key_identifier().expect("ski")
        );
        assert_eq!(tsa.serial_content().len(), 18);
        assert!(tsa.serial_content()[0] & 0x80 == 0);
        // Partial PKI is refused.
        fs::remove_file(pki_dir.join("tsa.pem")).expect("rm");
        let err = load_or_create_development_pki(&pki_dir, now).expect_err("partial");
        assert!(err.to_string().contains("missing tsa.pem"), "{err}");
    }

    #[test]
    fn openssl_reads_the_development_pki() {
        let pki = dev_pki();
        let dir = TempDir::new("osslpki");
        let root = dir.file("root.pem", pki.material.roots_pem.as_bytes());
        let tsa = dir.file(
            "tsa.pem",
            trust::pem_encode(
                "CERTIFICATE",
                pki.material.tsa.as_ref().expect("tsa").certificate_der(),
            )
            .as_bytes(),
        );
        let out = std::process::Command::new("openssl")
            .args(["verify", "-purpose", "timestampsign", "-CAfile"])
            .arg(&root)
            .arg(&tsa)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn startup_refuses_non_critical_eku() {
        let now = whole_seconds(OffsetDateTime::now_utc());
        let (root, cert, key) = custom_leaf(CertificateRole::Timestamping, now, |p| {
            p.custom_extensions.pop();
            p.custom_extensions
                .push(timestamping_eku(false).expect("eku"));
        });
        let der = trust::pem_blocks(cert.as_bytes(), "CERTIFICATE")
            .expect("pem")
            .remove(0);
        let err = check_certificate_for_role(&der, CertificateRole::Timestamping, now)
            .expect_err("non-critical");
        assert_eq!(
            err.to_string(),
            "TSA certificate extended key usage must be critical and contain only timeStamping"
        );
        // Through the production loader the file is named.
        let dir = TempDir::new("prod");
        let seal = custom_leaf(CertificateRole::Seal, now, |_| {});
        let roots = dir.file("roots.pem", format!("{root}{}", seal.0).as_bytes());
        let seal_cert = dir.file("seal.pem", seal.1.as_bytes());
        let seal_key = dir.file("seal.key.pem", seal.2.as_bytes());
        let tsa_cert = dir.file("tsa.pem", cert.as_bytes());
        let tsa_key = dir.file("tsa.key.pem", key.as_bytes());
        let err = load_production_pki(
            &seal_cert,
            &seal_key,
            Some((&tsa_cert, &tsa_key)),
            &roots,
            now,
        )
        .expect_err("refused");
        let msg = err.to_string();
        assert!(msg.contains(&tsa_cert.display().to_string()), "{msg}");
        assert!(
            msg.contains(
                "TSA certificate extended key usage must be critical and contain only timeStamping"
            ),
            "{msg}"
        );
        // Without the TSA, the seal alone loads.
        let material =
            load_production_pki(&seal_cert, &seal_key, None, &roots, now).expect("seal only");
        assert!(material.tsa.is_none() && !material.development && !material.qualified);
    }

    #[test]
    fn startup_refuses_expired_and_not_yet_valid() {
        let now = whole_seconds(OffsetDateTime::now_utc());
        let (_, cert, _) = custom_leaf(CertificateRole::Timestamping, now, |p| {
            p.not_before = time::macros::datetime!(2020-01-01 0:00 UTC);
            p.not_after = time::macros::datetime!(2025-01-01 0:00 UTC);
        });
        let der = trust::pem_blocks(cert.as_bytes(), "CERTIFICATE")
            .expect("pem")
            .remove(0);
        let err = check_certificate_for_role(&der, CertificateRole::Timestamping, now)
            .expect_err("expired");
        assert_eq!(
            err.to_string(),
            "TSA certificate expired on 2025-01-01 00:00:00 UTC"
        );
        let err = check_certificate_for_role(
            &der,
            CertificateRole::Timestamping,
            time::macros::datetime!(2019-06-01 0:00 UTC),
        )
        .expect_err("not yet");
        assert_eq!(
            err.to_string(),
            "TSA certificate is not valid before 2020-01-01 00:00:00 UTC"
        );
        // A seal certificate without a signing key usage.
        let (_, cert, _) = custom_leaf(CertificateRole::Seal, now, |p| {
            p.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
        });
        let der = trust::pem_blocks(cert.as_bytes(), "CERTIFICATE")
            .expect("pem")
            .remove(0);
        let err = check_certificate_for_role(&der, CertificateRole::Seal, now).expect_err("ku");
        assert_eq!(
            err.to_string(),
            "seal certificate key usage must include digitalSignature or nonRepudiation"
        );
    }

    #[test]
    fn startup_refuses_mismatched_key() {
        let now = whole_seconds(OffsetDateTime::now_utc());
        let (root, cert, _) = custom_leaf(CertificateRole::Seal, now, |_| {});
        let (_, _, other_key) = custom_leaf(CertificateRole::Seal, now, |_| {});
        let dir = TempDir::new("mismatch");
        let roots = dir.file("roots.pem", root.as_bytes());
        let seal_cert = dir.file("seal.pem", cert.as_bytes());
        let seal_key = dir.file("seal.key.pem", other_key.as_bytes());
        let err =
            load_production_pki(&seal_cert, &seal_key, None, &roots, now).expect_err("mismatch");
        assert_eq!(
            err.to_string(),
            format!(
                "seal certificate {} does not match key {}",
                seal_cert.display(),
                seal_key.display()
            )
        );
        // A SEC1 key gets a hint.
        let sec1 = dir.file(
            "sec1.pem",
            b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
        );
        let err = load_production_pki(&seal_cert, &sec1, None, &roots, now).expect_err("sec1");
        assert!(
            err.to_string().contains("openssl pkcs8 -topk8 -nocrypt"),
            "{err}"
        );
        // A missing file is named.
        let err = load_production_pki(&dir.path().join("nope.pem"), &seal_key, None, &roots, now)
            .expect_err("missing");
        assert!(err.to_string().starts_with("cannot read "), "{err}");
        assert!(err.to_string().contains("nope.pem"), "{err}");
    }

    #[test]
    fn identity_signs_verifiably() {
        let pki = dev_pki();
        let sig = pki.material.seal.sign(b"abc").expect("sign");
        trust::verify_signature_with_certificate(
            pki.material.seal.certificate_der(),
            oids::ECDSA_WITH_SHA256,
            b"abc",
            &sig,
        )
        .expect("verify");
        assert_eq!(
            pki.material.seal.certificate_sha256().to_vec(),
            ring::digest::digest(&ring::digest::SHA256, pki.material.seal.certificate_der())
                .as_ref()
                .to_vec()
        );
    }
}
