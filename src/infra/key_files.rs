//! Trust material on disk: the operator's PEM files, and the development PKI kept under
//! `DATA_DIR/pki/` (created on first start, rotated by `recommande pki rotate`). The
//! checks themselves are the core's ([`crate::core::pki`]); this module reads and writes
//! the files.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::OffsetDateTime;

use crate::config::{KeySource, Pkcs11Settings};
use crate::core::pki::{
    CertificateRole, DEFAULT_DEVELOPMENT_VALIDITY_DAYS, DevelopmentPki, PkiError, SigningIdentity,
    TrustMaterial, checked_identity, checked_identity_with_signer, generate_development_pki,
    roots_from_pem,
};
use crate::core::trust::{Certificate, TrustAnchors};
use crate::infra::pkcs11::Keyring;

fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    fs::read(path).map_err(|source| PkiError::Read {
        path: path.to_path_buf(),
        source,
    })
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
    checked_identity(role, &chain, &key, cert_path, key_path, anchors, now)
}

fn load_roots(path: &Path) -> Result<(TrustAnchors, String), PkiError> {
    roots_from_pem(&read(path)?, path)
}

/// Loads one role's identity whose key is a file or lives in a PKCS#11 token; a token key
/// must also produce a signature the certificate's key verifies (the token really holds
/// the certified key, and it signs).
fn load_identity_from(
    role: CertificateRole,
    cert_path: &Path,
    key: &KeySource,
    keyring: &mut Keyring,
    pkcs11: Option<&Pkcs11Settings>,
    anchors: &TrustAnchors,
    now: OffsetDateTime,
) -> Result<SigningIdentity, PkiError> {
    match key {
        KeySource::File(path) => load_identity(role, cert_path, path, anchors, now),
        KeySource::Pkcs11(uri) => {
            let settings = pkcs11.ok_or_else(|| {
                PkiError::Token(format!("{uri} needs [pki.pkcs11] module and PIN"))
            })?;
            let key = keyring.key(settings, uri)?;
            let chain = read(cert_path)?;
            let identity =
                checked_identity_with_signer(role, &chain, Box::new(key), cert_path, anchors, now)?;
            probe_signature(&identity)?;
            Ok(identity)
        }
    }
}

/// Signs a probe and verifies it with the certificate's key.
fn probe_signature(identity: &SigningIdentity) -> Result<(), PkiError> {
    let probe = b"recommande start-up probe: the token signs with the certified key";
    let signature = identity.sign(probe)?;
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        identity.public_key(),
    )
    .verify(probe, &signature)
    .map_err(|_| {
        PkiError::Token(format!(
            "{}: the token's signature does not verify with the certificate's key",
            identity.key_location()
        ))
    })
}

/// Production: the operator's certificate chains (PEM, leaf first), keys (PKCS#8 files or
/// `pkcs11:` token keys) and roots bundle. Each certificate is checked for its role at
/// `now` and against the roots; any problem refuses start with a message naming the file.
pub fn load_production_pki(
    seal_cert: &Path,
    seal_key: &KeySource,
    tsa: Option<(&Path, &KeySource)>,
    roots: &Path,
    pkcs11: Option<&Pkcs11Settings>,
    now: OffsetDateTime,
) -> Result<TrustMaterial, PkiError> {
    let (anchors, roots_pem) = load_roots(roots)?;
    let mut keyring = Keyring::default();
    let seal = load_identity_from(
        CertificateRole::Seal,
        seal_cert,
        seal_key,
        &mut keyring,
        pkcs11,
        &anchors,
        now,
    )?;
    let tsa = tsa
        .map(|(cert, key)| {
            load_identity_from(
                CertificateRole::Timestamping,
                cert,
                key,
                &mut keyring,
                pkcs11,
                &anchors,
                now,
            )
        })
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

#[cfg(test)]
mod tests {
    /// [`super::load_production_pki`] with key files.
    fn load_files(
        seal_cert: &Path,
        seal_key: &Path,
        tsa: Option<(&PathBuf, &PathBuf)>,
        roots: &Path,
        now: OffsetDateTime,
    ) -> Result<TrustMaterial, PkiError> {
        let seal_key = KeySource::File(seal_key.to_path_buf());
        let tsa = tsa.map(|(c, k)| (c.as_path(), KeySource::File(k.clone())));
        super::load_production_pki(
            seal_cert,
            &seal_key,
            tsa.as_ref().map(|(c, k)| (*c, k)),
            roots,
            None,
            now,
        )
    }

    use super::*;
    use crate::core::pki::test_support::*;
    use crate::core::pki::*;
    use crate::core::pki::{timestamping_eku, whole_seconds};
    use crate::core::trust::{self, oids};
    use rcgen::KeyUsagePurpose;

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
        let err = load_files(
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
        let material = load_files(&seal_cert, &seal_key, None, &roots, now).expect("seal only");
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
        let err = load_files(&seal_cert, &seal_key, None, &roots, now).expect_err("mismatch");
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
        let err = load_files(&seal_cert, &sec1, None, &roots, now).expect_err("sec1");
        assert!(
            err.to_string().contains("openssl pkcs8 -topk8 -nocrypt"),
            "{err}"
        );
        // A missing file is named.
        let err = load_files(&dir.path().join("nope.pem"), &seal_key, None, &roots, now)
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
