//! STUB
use super::TimestampError;
pub struct RemoteTsa;
impl RemoteTsa {
    pub fn new(
        _u: &str,
        _p: Option<String>,
        _t: std::time::Duration,
    ) -> Result<Self, TimestampError> {
        todo!()
    }
    pub async fn timestamp_sha256(&self, _d: [u8; 32]) -> Result<Vec<u8>, TimestampError> {
        todo!()
    }
}
