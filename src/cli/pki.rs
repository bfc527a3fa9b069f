//! `recommande pki rotate`: a new development PKI, then a renewal by the new TSA over
//! every record; `pki token-key` and `pki csr`: a key generated inside a PKCS#11 token and
//! the certification request a CA certifies it from.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use super::archive::report_renewal;
use super::{CertificateUse, PkiCommand};
use crate::app::service::Service;
use crate::config::Settings;
use crate::core::clock::SystemClock;

/// Runs a `pki` subcommand.
pub(super) async fn run(cmd: PkiCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PkiCommand::Rotate {
            validity_days,
            location,
        } => rotate(location.settings()?, validity_days).await,
        PkiCommand::TokenKey { key, location } => token_key(&location.settings()?, &key),
        PkiCommand::Csr {
            key,
            subject,
            role,
            out,
            location,
        } => csr(&location.settings()?, &key, &subject, role, out.as_deref()),
    }
}

fn pkcs11_settings(settings: &Settings) -> anyhow::Result<&crate::config::Pkcs11Settings> {
    settings.pki.pkcs11.as_ref().context(
        "no PKCS#11 module configured: set [pki.pkcs11] module and pin_file (or RECOMMANDE_PKI_PKCS11_MODULE and RECOMMANDE_PKI_PKCS11_PIN)",
    )
}

fn token_uri(key: &str) -> anyhow::Result<crate::config::Pkcs11Uri> {
    crate::config::Pkcs11Uri::parse(key).map_err(|e| anyhow::anyhow!("--key: {e}"))
}

/// `recommande pki token-key`.
fn token_key(settings: &Settings, key: &str) -> anyhow::Result<ExitCode> {
    let uri = token_uri(key)?;
    use crate::core::pki::KeySigner as _;
    let created = crate::infra::pkcs11::generate_key(pkcs11_settings(settings)?, &uri)?;
    print!("{}", public_key_pem(created.public_key()));
    eprintln!(
        "generated ECDSA P-256 key {uri}; next: recommande pki csr --key \"{uri}\" --role seal|tsa --subject …"
    );
    Ok(ExitCode::SUCCESS)
}

/// SubjectPublicKeyInfo (RFC 5480) of a P-256 point, PEM.
fn public_key_pem(point: &[u8]) -> String {
    use crate::core::asn1;
    let algorithm = asn1::sequence(&[
        &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01],
        &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
    ]);
    let mut bits = vec![0u8];
    bits.extend_from_slice(point);
    let spki = asn1::sequence(&[&algorithm, &asn1::tlv(asn1::tag::BIT_STRING, &bits)]);
    crate::core::trust::pem_encode("PUBLIC KEY", &spki)
}

/// `recommande pki csr`.
fn csr(
    settings: &Settings,
    key: &str,
    subject: &str,
    role: CertificateUse,
    out: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    use crate::core::pki::{CertificateRole, FileKey, KeySigner};
    let signer: Box<dyn KeySigner> = if key.starts_with("pkcs11:") {
        let uri = token_uri(key)?;
        let mut keyring = crate::infra::pkcs11::Keyring::default();
        Box::new(keyring.key(pkcs11_settings(settings)?, &uri)?)
    } else {
        let pem = std::fs::read(key).with_context(|| format!("reading {key}"))?;
        let der = crate::core::trust::pem_blocks(&pem, "PRIVATE KEY")
            .map_err(|e| anyhow::anyhow!("{key}: {e}"))?
            .into_iter()
            .next()
            .with_context(|| format!("{key}: no -----BEGIN PRIVATE KEY----- block (PKCS#8)"))?;
        Box::new(FileKey::from_pkcs8(&der, key)?)
    };
    let role = match role {
        CertificateUse::Seal => CertificateRole::Seal,
        CertificateUse::Tsa => CertificateRole::Timestamping,
    };
    let pem = crate::core::pki::certification_request_pem(signer.as_ref(), subject, role)?;
    match out {
        Some(path) => {
            std::fs::write(path, &pem).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("certification request written to {}", path.display());
        }
        None => print!("{pem}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `recommande pki rotate`.
async fn rotate(settings: Settings, validity_days: Option<u32>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        settings.pki.is_development(),
        "pki rotate rotates the generated development PKI; with production keys, configure the new [pki] files, list the old root in [pki] retired_roots, restart, then run `recommande archive renew --all --reason \"key rotation\"`"
    );
    let validity = validity_days.unwrap_or(settings.pki.development_validity_days);
    anyhow::ensure!(
        (1..=36_525).contains(&validity),
        "--validity-days must be between 1 and 36525"
    );
    let dir = settings.server.data_dir.join("pki");
    let retired = crate::infra::key_files::rotate_development_pki(
        &dir,
        time::OffsetDateTime::now_utc(),
        validity,
    )
    .with_context(|| format!("rotating the development PKI in {}", dir.display()))?;
    eprintln!(
        "new root, seal and TSA in {}; the retired certificates are kept in {}",
        dir.display(),
        retired.display()
    );
    let service = Service::start(settings, Arc::new(SystemClock))
        .await
        .context("starting the service with the new keys")?;
    report_renewal(
        crate::app::renewal::renew(
            &service,
            "key rotation",
            crate::app::renewal::Scope::Everything,
        )
        .await,
        false,
    )
}
