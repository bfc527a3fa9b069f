//! STUB
use crate::pki::SigningIdentity;
use std::sync::Arc;
use time::OffsetDateTime;
#[derive(Debug, thiserror::Error)]
#[error("seal: {0}")]
pub struct SealError(pub String);
pub struct Sealer;
impl Sealer {
    pub fn new(_i: Arc<SigningIdentity>) -> Self {
        todo!()
    }
    pub fn seal(&self, _c: &[u8], _t: OffsetDateTime) -> Result<Vec<u8>, SealError> {
        todo!()
    }
}
pub struct ParsedSeal;
impl ParsedSeal {
    pub fn parse(_d: &[u8]) -> Result<Self, SealError> {
        todo!()
    }
    pub fn certificates(&self) -> &[Vec<u8>] {
        todo!()
    }
    pub fn signer_certificate(&self) -> Result<&[u8], SealError> {
        todo!()
    }
    pub fn signing_time(&self) -> Option<OffsetDateTime> {
        todo!()
    }
    pub fn verify_signature(&self, _c: &[u8]) -> Result<(), SealError> {
        todo!()
    }
}
