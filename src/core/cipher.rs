//! Documents at rest: AES-256-GCM in 64 KiB segments under the document's own data key.
//!
//! Layout of a stored document: the 8-byte header `RCMDENC` + version `0x01`, then segments.
//! Each segment seals up to [`SEGMENT`] plaintext bytes with AES-256-GCM (16-byte tag); its
//! nonce is three zero bytes ‖ the segment number (u64, big-endian) ‖ a final flag (1 on the
//! last segment, 0 otherwise), and the header is its associated data. Every segment but the
//! last is full; the last may be empty. This is the STREAM construction (online authenticated
//! encryption): a document streams in constant memory, and truncating, reordering, dropping or
//! appending segments makes a segment fail to open. Nonces never repeat because every data key
//! encrypts exactly one document, once.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// Magic and format version at the start of every encrypted document.
pub const HEADER: &[u8; 8] = b"RCMDENC\x01";
/// Plaintext bytes per segment.
pub const SEGMENT: usize = 64 * 1024;
/// AES-GCM tag length.
pub const TAG: usize = 16;
/// Bytes of a full sealed segment.
pub const SEALED_SEGMENT: usize = SEGMENT + TAG;

/// Why encrypted content could not be produced or read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The bytes are not an encrypted document of a known version (e.g. a plaintext file
    /// written before encryption at rest).
    #[error("not an encrypted document (unknown header)")]
    NotEncrypted,
    /// A segment failed authentication: the ciphertext was altered, truncated or reordered,
    /// or the data key is not this document's.
    #[error("segment {segment} failed authentication (altered, truncated or wrong key)")]
    Altered {
        /// Zero-based segment number.
        segment: u64,
    },
    /// All segments authenticated but the plaintext does not hash to the document's identity.
    #[error("decrypted bytes hash to {actual}, not to the document's identity {expected}")]
    DigestMismatch {
        /// The identity (hex SHA-256).
        expected: String,
        /// What the plaintext hashes to.
        actual: String,
    },
    /// The system random generator or the AEAD failed.
    #[error("cryptographic failure: {0}")]
    Crypto(&'static str),
}

/// A document's 256-bit data key.
pub struct DataKey([u8; 32]);

impl DataKey {
    /// A fresh random key from the system generator.
    pub fn generate() -> Result<Self, CipherError> {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| CipherError::Crypto("system random generator"))?;
        Ok(DataKey(key))
    }

    /// The key from its raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        DataKey(bytes)
    }

    /// The raw bytes (only to be wrapped by a master key).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn aead(&self) -> Result<LessSafeKey, CipherError> {
        UnboundKey::new(&AES_256_GCM, &self.0)
            .map(LessSafeKey::new)
            .map_err(|_| CipherError::Crypto("AES-256-GCM key"))
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        // Best effort: do not leave the key bytes in freed memory.
        self.0.fill(0);
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(…)")
    }
}

fn nonce(segment: u64, last: bool) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[3..11].copy_from_slice(&segment.to_be_bytes());
    bytes[11] = u8::from(last);
    Nonce::assume_unique_for_key(bytes)
}

/// Seals a document segment by segment.
pub struct SegmentSealer {
    key: LessSafeKey,
    segment: u64,
}

impl SegmentSealer {
    /// A sealer for a new document under `key`.
    pub fn new(key: &DataKey) -> Result<Self, CipherError> {
        Ok(SegmentSealer {
            key: key.aead()?,
            segment: 0,
        })
    }

    /// Seals the next segment (`plaintext.len() == SEGMENT` unless `last`) and returns its
    /// ciphertext and tag.
    pub fn seal(&mut self, plaintext: &[u8], last: bool) -> Result<Vec<u8>, CipherError> {
        let mut out = Vec::with_capacity(plaintext.len() + TAG);
        out.extend_from_slice(plaintext);
        self.key
            .seal_in_place_append_tag(nonce(self.segment, last), Aad::from(HEADER), &mut out)
            .map_err(|_| CipherError::Crypto("AES-256-GCM seal"))?;
        self.segment += 1;
        Ok(out)
    }
}

/// Turns the bytes of an encrypted document, fed in any pieces, back into plaintext segments,
/// checking each segment's tag and, at the end, the SHA-256 of the whole plaintext.
///
/// The I/O stays with the caller (synchronous for the bundle zip, asynchronous for downloads
/// and the audit): it appends what it reads to [`Decoder::pending`] while
/// [`Decoder::wants`] asks for more, then calls [`Decoder::step`].
pub struct Decoder {
    key: LessSafeKey,
    segment: u64,
    /// Bytes read and not yet decrypted.
    pub pending: Vec<u8>,
    header_seen: bool,
    done: bool,
    hasher: Sha256,
    size: u64,
    expected_sha256: String,
}

impl Decoder {
    /// A decoder of the document whose identity is `expected_sha256` (hex).
    pub fn new(key: &DataKey, expected_sha256: &str) -> Result<Self, CipherError> {
        Ok(Decoder {
            key: key.aead()?,
            segment: 0,
            pending: Vec::with_capacity(SEALED_SEGMENT + 1),
            header_seen: false,
            done: false,
            hasher: Sha256::new(),
            size: 0,
            expected_sha256: expected_sha256.to_ascii_lowercase(),
        })
    }

    /// Whether the last segment was opened and the digest checked.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Plaintext bytes produced so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// How many more bytes must be read before the next step can decide (one byte past a
    /// full segment tells whether it is the last one).
    pub fn wants(&self) -> usize {
        let need = if self.header_seen {
            SEALED_SEGMENT + 1
        } else {
            HEADER.len()
        };
        need.saturating_sub(self.pending.len())
    }

    /// Consumes what can be consumed: the header, or one segment. `eof` says the source has
    /// no more bytes. Returns the plaintext produced (possibly empty).
    pub fn step(&mut self, eof: bool) -> Result<Vec<u8>, CipherError> {
        if self.done {
            if !self.pending.is_empty() {
                return Err(CipherError::Altered {
                    segment: self.segment,
                });
            }
            return Ok(Vec::new());
        }
        if !self.header_seen {
            if self.pending.len() < HEADER.len() || &self.pending[..HEADER.len()] != HEADER {
                return Err(CipherError::NotEncrypted);
            }
            self.pending.drain(..HEADER.len());
            self.header_seen = true;
            return Ok(Vec::new());
        }
        let last = self.pending.len() <= SEALED_SEGMENT;
        if last && !eof {
            // The caller stopped before the lookahead byte: nothing to decide yet.
            return Ok(Vec::new());
        }
        let mut sealed: Vec<u8> = if last {
            std::mem::take(&mut self.pending)
        } else {
            self.pending.drain(..SEALED_SEGMENT).collect()
        };
        let segment = self.segment;
        let plain_len = self
            .key
            .open_in_place(nonce(segment, last), Aad::from(HEADER), &mut sealed)
            .map_err(|_| CipherError::Altered { segment })?
            .len();
        sealed.truncate(plain_len);
        self.segment += 1;
        self.hasher.update(&sealed);
        self.size += sealed.len() as u64;
        if last {
            self.done = true;
            let actual = hex::encode(self.hasher.clone().finalize());
            if actual != self.expected_sha256 {
                return Err(CipherError::DigestMismatch {
                    expected: self.expected_sha256.clone(),
                    actual,
                });
            }
        }
        Ok(sealed)
    }
}

/// Encrypts `plaintext` whole (tests, small documents and the migration of old files).
pub fn encrypt_all(key: &DataKey, plaintext: &[u8]) -> Result<Vec<u8>, CipherError> {
    let mut sealer = SegmentSealer::new(key)?;
    let mut out = HEADER.to_vec();
    let mut chunks = plaintext.chunks(SEGMENT).peekable();
    if chunks.peek().is_none() {
        out.extend(sealer.seal(&[], true)?);
    }
    while let Some(chunk) = chunks.next() {
        out.extend(sealer.seal(chunk, chunks.peek().is_none())?);
    }
    Ok(out)
}

/// Decrypts a whole encrypted document held in memory and checks its digest.
pub fn decrypt_all(
    key: &DataKey,
    expected_sha256: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, CipherError> {
    let mut decoder = Decoder::new(key, expected_sha256)?;
    let mut out = Vec::with_capacity(sealed.len());
    let mut rest = sealed;
    while !decoder.is_done() {
        let take = decoder.wants().min(rest.len());
        decoder.pending.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        out.extend(decoder.step(rest.is_empty())?);
    }
    if !rest.is_empty() {
        return Err(CipherError::Altered { segment: u64::MAX });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[test]
    fn every_length_around_segment_bounds_round_trips() {
        let key = DataKey::generate().expect("key");
        for len in [
            0,
            1,
            SEGMENT - 1,
            SEGMENT,
            SEGMENT + 1,
            2 * SEGMENT,
            2 * SEGMENT + 7,
        ] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sealed = encrypt_all(&key, &plain).expect("encrypt");
            assert_eq!(&sealed[..8], HEADER);
            assert_eq!(
                decrypt_all(&key, &sha(&plain), &sealed).expect("decrypt"),
                plain,
                "length {len}"
            );
        }
    }

    #[test]
    fn altered_truncated_or_extended_ciphertext_is_refused() {
        let key = DataKey::generate().expect("key");
        let plain = vec![7u8; 2 * SEGMENT + 10];
        let digest = sha(&plain);
        let sealed = encrypt_all(&key, &plain).expect("encrypt");
        let mut flipped = sealed.clone();
        flipped[HEADER.len() + SEALED_SEGMENT + 3] ^= 1;
        assert_eq!(
            decrypt_all(&key, &digest, &flipped),
            Err(CipherError::Altered { segment: 1 })
        );
        // Dropping the last segment: the new last one was sealed as non-final.
        let truncated = &sealed[..HEADER.len() + 2 * SEALED_SEGMENT];
        assert_eq!(
            decrypt_all(&key, &digest, truncated),
            Err(CipherError::Altered { segment: 1 })
        );
        let mut extended = sealed.clone();
        extended.extend_from_slice(&[0u8; 40]);
        assert!(decrypt_all(&key, &digest, &extended).is_err());
        let other = DataKey::generate().expect("key");
        assert_eq!(
            decrypt_all(&other, &digest, &sealed),
            Err(CipherError::Altered { segment: 0 })
        );
        assert_eq!(
            decrypt_all(&key, &digest, b"%PDF-1.7 plaintext"),
            Err(CipherError::NotEncrypted)
        );
    }

    #[test]
    fn a_wrong_identity_is_a_digest_mismatch() {
        let key = DataKey::generate().expect("key");
        let sealed = encrypt_all(&key, b"hello").expect("encrypt");
        assert!(matches!(
            decrypt_all(&key, &sha(b"other"), &sealed),
            Err(CipherError::DigestMismatch { .. })
        ));
    }
}
