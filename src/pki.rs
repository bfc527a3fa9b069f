//! STUB (replaced by the crypto core)
use std::{path::Path, sync::Arc};
use time::OffsetDateTime;
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{0}")]
    Config(String),
}
pub struct SigningIdentity;
impl SigningIdentity {
    pub fn from_pem(_c: &[u8], _k: &[u8]) -> Result<Self, PkiError> {
        todo!()
    }
    pub fn certificate_der(&self) -> &[u8] {
        todo!()
    }
    pub fn intermediates_der(&self) -> &[Vec<u8>] {
        todo!()
    }
    pub fn certificate_sha256(&self) -> [u8; 32] {
        todo!()
    }
    pub fn sign(&self, _m: &[u8]) -> Result<Vec<u8>, PkiError> {
        todo!()
    }
}
pub enum CertificateRole {
    Seal,
    Timestamping,
}
pub struct TrustMaterial {
    pub roots_der: Vec<Vec<u8>>,
    pub roots_pem: String,
    pub seal: Arc<SigningIdentity>,
    pub tsa: Arc<SigningIdentity>,
    pub qualified: bool,
    pub development: bool,
}
pub fn load_or_create_development_pki(
    _dir: &Path,
    _now: OffsetDateTime,
) -> Result<(TrustMaterial, bool), PkiError> {
    todo!()
}
pub fn load_production_pki(
    _sc: &Path,
    _sk: &Path,
    _tsa: Option<(&Path, &Path)>,
    _roots: &Path,
    _now: OffsetDateTime,
) -> Result<TrustMaterial, PkiError> {
    todo!()
}
pub fn check_certificate_for_role(
    _c: &[u8],
    _r: CertificateRole,
    _now: OffsetDateTime,
) -> Result<(), PkiError> {
    todo!()
}
