//! STUB
use crate::pki::SigningIdentity;
use std::sync::Arc;
use time::OffsetDateTime;
pub mod client;
#[derive(Debug, thiserror::Error)]
#[error("timestamp: {0}")]
pub struct TimestampError(pub String);
pub enum HashAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}
pub struct SerialNumbers;
impl SerialNumbers {
    pub fn new(_e: u64) -> Self {
        todo!()
    }
    pub fn next(&self) -> Result<u128, TimestampError> {
        todo!()
    }
}
pub struct TimestampAuthority;
impl TimestampAuthority {
    pub fn new(
        _i: Arc<SigningIdentity>,
        _p: &str,
        _s: SerialNumbers,
    ) -> Result<Self, TimestampError> {
        todo!()
    }
    pub fn policy_oid(&self) -> &str {
        todo!()
    }
    pub fn respond(&self, _r: &[u8], _t: OffsetDateTime) -> Vec<u8> {
        todo!()
    }
    pub fn timestamp_sha256(
        &self,
        _d: [u8; 32],
        _t: OffsetDateTime,
    ) -> Result<Vec<u8>, TimestampError> {
        todo!()
    }
}
pub struct TokenInfo {
    pub policy: String,
    pub hash_algorithm: HashAlgorithm,
    pub hashed_message: Vec<u8>,
    pub serial: Vec<u8>,
    pub gen_time: OffsetDateTime,
    pub nonce: Option<Vec<u8>>,
    pub accuracy_micros: Option<u64>,
}
pub struct ParsedToken;
impl ParsedToken {
    pub fn parse(_t: &[u8]) -> Result<Self, TimestampError> {
        todo!()
    }
    pub fn from_response(_t: &[u8]) -> Result<Self, TimestampError> {
        todo!()
    }
    pub fn token_der(&self) -> &[u8] {
        todo!()
    }
    pub fn info(&self) -> &TokenInfo {
        todo!()
    }
    pub fn certificates(&self) -> &[Vec<u8>] {
        todo!()
    }
    pub fn verify_signature(&self, _e: &[Vec<u8>]) -> Result<Vec<u8>, TimestampError> {
        todo!()
    }
    pub fn check_imprint(&self, _d: &[u8]) -> Result<(), TimestampError> {
        todo!()
    }
}
