//! STUB
use time::OffsetDateTime;
#[derive(Debug, thiserror::Error)]
#[error("trust: {0}")]
pub struct TrustError(pub String);
#[derive(Clone)]
pub struct TrustAnchors;
impl TrustAnchors {
    pub fn from_pem(_p: &[u8]) -> Result<Self, TrustError> {
        todo!()
    }
    pub fn from_der(_r: Vec<Vec<u8>>) -> Result<Self, TrustError> {
        todo!()
    }
    pub fn roots_der(&self) -> &[Vec<u8>] {
        todo!()
    }
}
pub enum CertificatePurpose {
    Seal,
    Timestamping,
}
pub fn verify_certificate_path(
    _l: &[u8],
    _p: &[Vec<u8>],
    _a: &TrustAnchors,
    _at: OffsetDateTime,
    _pu: CertificatePurpose,
) -> Result<Vec<Vec<u8>>, TrustError> {
    todo!()
}
