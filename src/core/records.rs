//! The stored records the evidence core reads: plain data, as the storage layer hands them
//! over (the storage re-exports them under the same names). Times are Unix microseconds.

/// A stored document's metadata (the bytes live in the content store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRow {
    /// Document id (UUID).
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Lower-case hex SHA-256 of the bytes: the document's identity.
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
    /// Media type sniffed from the bytes.
    pub media_type: String,
    /// File name given at upload.
    pub filename: String,
    /// Upload time, Unix µs.
    pub created_at: i64,
}

/// A stored evidence record with its seal and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRow {
    /// Service-wide sequence number (strictly increasing).
    pub seq: i64,
    /// Evidence id (UUID).
    pub id: String,
    /// The letter it is about.
    pub letter_id: String,
    /// Event name (ETSI EN 319 522).
    pub event: String,
    /// Event time, Unix µs.
    pub event_time: i64,
    /// Canonical JSON bytes of the record.
    pub record: Vec<u8>,
    /// Hex SHA-256 of `record`.
    pub record_sha256: String,
    /// CMS detached seal (DER).
    pub seal: Vec<u8>,
    /// RFC 3161 TimeStampToken (DER).
    pub timestamp_token: Vec<u8>,
    /// Storage time, Unix µs.
    pub created_at: i64,
}

/// A record's renewal, for bundles: its renewal record and the token over the root.
#[derive(Debug, Clone)]
pub struct RecordRenewal {
    /// Evidence id.
    pub evidence_id: String,
    /// Position in the record's chain (1-based).
    pub generation: i32,
    /// Canonical JSON renewal record.
    pub record: Vec<u8>,
    /// The renewal's token.
    pub timestamp_token: Vec<u8>,
}

/// A signed tree head as stored.
#[derive(Debug, Clone)]
pub struct TreeHeadRow {
    /// Number of leaves.
    pub tree_size: i64,
    /// Hex root hash.
    pub root_hash: String,
    /// When it was issued, Unix µs.
    pub issued_at: i64,
    /// Canonical JSON of the head (what is sealed and timestamped).
    pub head: Vec<u8>,
    /// CMS detached seal over `head`.
    pub seal: Vec<u8>,
    /// RFC 3161 token over SHA-256(`head`).
    pub timestamp_token: Vec<u8>,
}
