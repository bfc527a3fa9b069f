//! Signed PDF proofs, kept so that the same rendering is served with the same signature (see
//! the 0021 migration).

use super::{Storage, StorageError};

/// A proof with its signature, as kept.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SignedProofRow {
    /// The letter.
    pub letter_id: String,
    /// The proof's slug (`deposit`, …, `summary`).
    pub kind: String,
    /// SHA-256 (hex) of the unsigned rendering the signature was added to.
    pub rendered_sha256: String,
    /// The signed PDF.
    pub pdf: Vec<u8>,
    /// When it was signed, Unix µs.
    pub signed_at: i64,
}

impl Storage {
    /// The kept signed proof of `kind` for the letter, if any. Read through the writer so that
    /// a proof signed by the previous request is found.
    pub async fn signed_proof(
        &self,
        letter_id: &str,
        kind: &str,
    ) -> Result<Option<SignedProofRow>, StorageError> {
        let sql = "SELECT letter_id, kind, rendered_sha256, pdf, signed_at FROM signed_proofs \
                   WHERE letter_id = $1 AND kind = $2";
        fetch_optional!(self.writer(), SignedProofRow, sql, letter_id, kind)
    }

    /// Keeps `proof` unless one is already kept for the same rendering (a concurrent request
    /// signed it first); returns the proof kept, which every request then serves.
    pub async fn keep_signed_proof(
        &self,
        proof: &SignedProofRow,
    ) -> Result<SignedProofRow, StorageError> {
        let sql = "INSERT INTO signed_proofs (letter_id, kind, rendered_sha256, pdf, signed_at) \
                   VALUES ($1, $2, $3, $4, $5) \
                   ON CONFLICT (letter_id, kind) DO UPDATE SET \
                   rendered_sha256 = excluded.rendered_sha256, pdf = excluded.pdf, \
                   signed_at = excluded.signed_at \
                   WHERE signed_proofs.rendered_sha256 <> excluded.rendered_sha256";
        execute!(
            self.writer(),
            sql,
            &proof.letter_id,
            &proof.kind,
            &proof.rendered_sha256,
            &proof.pdf,
            proof.signed_at
        )?;
        self.signed_proof(&proof.letter_id, &proof.kind)
            .await?
            .ok_or_else(|| StorageError::Corrupt("the signed proof just kept is missing".into()))
    }
}
