//! `[pki]`: the operator's certificates and keys, or none for the development PKI
//! (docs/CONFIGURATION.md, "Production keys", "Development PKI" and "Key rotation").

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// Operator-supplied certificates and keys (production). All absent = development PKI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiSettings {
    /// PEM chain of the seal certificate (leaf first).
    pub seal_certificate: Option<PathBuf>,
    /// PKCS#8 PEM key of the seal certificate.
    pub seal_key: Option<PathBuf>,
    /// PEM chain of the embedded TSA's certificate.
    pub tsa_certificate: Option<PathBuf>,
    /// PKCS#8 PEM key of the embedded TSA.
    pub tsa_key: Option<PathBuf>,
    /// PEM trust anchors that verify the seal and timestamp chains.
    pub roots: Option<PathBuf>,
    /// PEM files of retired roots (after a key rotation): not used to sign, still trusted to
    /// verify archived evidence, served at `/v1/trust/roots.pem` and put in bundles.
    pub retired_roots: Vec<PathBuf>,
    /// Validity in days of the leaf certificates a generated development PKI gets (default
    /// 3652); short values let tests reach a certificate's expiry.
    pub development_validity_days: u32,
}

impl Default for PkiSettings {
    fn default() -> Self {
        PkiSettings {
            seal_certificate: None,
            seal_key: None,
            tsa_certificate: None,
            tsa_key: None,
            roots: None,
            retired_roots: Vec::new(),
            development_validity_days: DEFAULT_DEVELOPMENT_VALIDITY_DAYS,
        }
    }
}

pub use crate::core::pki::DEFAULT_DEVELOPMENT_VALIDITY_DAYS;

impl PkiSettings {
    /// True when no production key material is configured.
    pub fn is_development(&self) -> bool {
        self.seal_certificate.is_none()
            && self.seal_key.is_none()
            && self.tsa_certificate.is_none()
            && self.tsa_key.is_none()
            && self.roots.is_none()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FilePki {
    seal_certificate: Option<PathBuf>,
    seal_key: Option<PathBuf>,
    tsa_certificate: Option<PathBuf>,
    tsa_key: Option<PathBuf>,
    roots: Option<PathBuf>,
    #[serde(default)]
    retired_roots: Vec<PathBuf>,
    development_validity_days: Option<u32>,
}

/// Checks `[pki]`: only the development validity has a range (1 to 36525 days); the files
/// themselves are read and checked when the service starts.
pub(super) fn resolve(file: FilePki) -> Result<PkiSettings, ConfigError> {
    let pki = PkiSettings {
        seal_certificate: file.seal_certificate,
        seal_key: file.seal_key,
        tsa_certificate: file.tsa_certificate,
        tsa_key: file.tsa_key,
        roots: file.roots,
        retired_roots: file.retired_roots,
        development_validity_days: file
            .development_validity_days
            .unwrap_or(DEFAULT_DEVELOPMENT_VALIDITY_DAYS),
    };
    if !(1..=36_525).contains(&pki.development_validity_days) {
        return Err(ConfigError::Invalid {
            key: "pki.development_validity_days",
            message: format!(
                "{} must be between 1 and 36525",
                pki.development_validity_days
            ),
        });
    }
    Ok(pki)
}
