//! The evidence sealer with its token source: the core's sync pipeline
//! ([`crate::core::evidence::EvidenceSealer`]) plus the remote RFC 3161 TSA, reached over
//! HTTP, when tokens do not come from the embedded TSA.

use std::ops::Deref;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::core::clock::Clock;
use crate::core::evidence::{
    EvidenceError, EvidenceRecord, EvidenceSealer, ProviderInfo, SealedEvidence, Timestamper,
};
use crate::core::seal::Sealer;
use crate::core::timestamp::{TimestampAuthority, TimestampError};
use crate::core::trust::TrustAnchors;
use crate::infra::tsa_client::RemoteTsa;

/// Where timestamps come from, with the client the remote case needs.
pub enum TokenSource {
    /// The embedded TSA, reading the time from the service clock.
    Embedded {
        /// The TSA.
        authority: Arc<TimestampAuthority>,
        /// Its time source.
        clock: Arc<dyn Clock>,
    },
    /// A remote RFC 3161 TSA (e.g. qualified); every token it returns is checked against
    /// `anchors` at its own time.
    Remote {
        /// The client.
        client: RemoteTsa,
        /// Anchors the TSA's certificate must chain to.
        anchors: TrustAnchors,
    },
}

/// Seals and timestamps records with the service's keys, fetching remote tokens when the
/// source is a remote TSA. Dereferences to the core's sealer for the sync paths.
pub struct TimestampingSealer {
    sealer: EvidenceSealer,
    remote: Option<RemoteTsa>,
}

impl TimestampingSealer {
    /// A sealer issuing records in the name of `provider` under `policy`.
    pub fn new(
        sealer: Sealer,
        source: TokenSource,
        provider: ProviderInfo,
        policy: String,
    ) -> Self {
        let (timestamper, remote) = match source {
            TokenSource::Embedded { authority, clock } => {
                (Timestamper::Embedded { authority, clock }, None)
            }
            TokenSource::Remote { client, anchors } => {
                (Timestamper::Remote { anchors }, Some(client))
            }
        };
        TimestampingSealer {
            sealer: EvidenceSealer::new(sealer, timestamper, provider, policy),
            remote,
        }
    }

    /// Whether the timestamp source can be used now: always for the embedded TSA, a TCP
    /// connection within `timeout` for a remote one.
    pub async fn check_source(&self, timeout: std::time::Duration) -> Result<(), TimestampError> {
        match &self.remote {
            Some(client) => client.reachable(timeout).await,
            None => Ok(()),
        }
    }

    /// A token over `digest` (SHA-256 of the evidence bytes), from the embedded TSA or from
    /// the remote one over the network, checked against the anchors.
    pub async fn timestamp(&self, digest: [u8; 32]) -> Result<Vec<u8>, TimestampError> {
        let timestamper = self.sealer.timestamper();
        if let Some(token) = timestamper.embedded_token(digest) {
            return token;
        }
        let Some(client) = &self.remote else {
            return Err(TimestampError::Config(
                "no remote TSA client for a remote token source".into(),
            ));
        };
        let token = client.timestamp_sha256(digest).await?;
        timestamper.check_remote(token)
    }

    /// A detached CMS seal over `bytes` with a signature timestamp over its signature value
    /// (CAdES B-T, ETSI EN 319 122-1 §6.3): the bundle's ASiC manifest seal.
    pub async fn seal_bytes_timestamped(
        &self,
        bytes: &[u8],
        at: OffsetDateTime,
    ) -> Result<Vec<u8>, EvidenceError> {
        let (seal, signature_digest) = self.sealer.seal_bytes_for_timestamp(bytes, at)?;
        let token = self.timestamp(signature_digest).await?;
        Ok(crate::core::seal::with_signature_timestamp(&seal, &token)?)
    }

    /// `pdf` with a PAdES baseline B-T signature (ETSI EN 319 142-1 §6.3): the service's seal
    /// over the file, with a signature timestamp from the TSA (possibly over the network).
    pub async fn sign_pdf(
        &self,
        pdf: &[u8],
        field: &crate::core::pades::SignatureField<'_>,
    ) -> Result<Vec<u8>, EvidenceError> {
        let prepared = crate::core::pades::prepare(pdf, field)?;
        let (cms, signature_digest) = self.sealer.sign_pdf_for_timestamp(&prepared.digest())?;
        let token = self.timestamp(signature_digest).await?;
        let cms = crate::core::seal::with_signature_timestamp(&cms, &token)?;
        Ok(prepared.finish(&cms)?)
    }

    /// Serializes and seals `record`, then timestamps it (possibly over the network).
    pub async fn seal(
        &self,
        record: EvidenceRecord,
        at: OffsetDateTime,
    ) -> Result<SealedEvidence, EvidenceError> {
        let unstamped = self.sealer.seal_only(record, at)?;
        let token = self.timestamp(unstamped.sha256).await?;
        Ok(unstamped.with_token(token))
    }

    /// Seals and timestamps `records` in order, spread over `threads` worker threads with
    /// the embedded TSA (a batch chunk, a chunk of notifications); one by one, each token
    /// fetched in turn, with a remote TSA.
    pub async fn seal_many(
        self: &Arc<Self>,
        records: Vec<EvidenceRecord>,
        at: OffsetDateTime,
        threads: usize,
    ) -> Result<Vec<SealedEvidence>, EvidenceError> {
        if self.sealer.timestamper().embedded().is_none() {
            let mut sealed = Vec::with_capacity(records.len());
            for record in records {
                sealed.push(self.seal(record, at).await?);
            }
            return Ok(sealed);
        }
        let total = records.len();
        let chunk_size = total.div_ceil(threads.max(1)).max(1);
        let mut tasks = Vec::new();
        let mut rest = records;
        while !rest.is_empty() {
            let tail = rest.split_off(chunk_size.min(rest.len()));
            let chunk = std::mem::replace(&mut rest, tail);
            let sealer = Arc::clone(self);
            tasks.push(tokio::task::spawn_blocking(move || {
                chunk
                    .into_iter()
                    .map(|record| {
                        sealer
                            .seal_with_embedded_tsa(record, at)
                            .unwrap_or_else(|| {
                                Err(EvidenceError::Canonical(
                                    "bulk sealing on worker threads needs the embedded TSA".into(),
                                ))
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()
            }));
        }
        let mut sealed = Vec::with_capacity(total);
        for task in tasks {
            sealed.extend(
                task.await.map_err(|e| {
                    EvidenceError::Canonical(format!("sealing worker stopped: {e}"))
                })??,
            );
        }
        Ok(sealed)
    }

    /// The core's sync sealer.
    pub fn core(&self) -> &EvidenceSealer {
        &self.sealer
    }
}

impl Deref for TimestampingSealer {
    type Target = EvidenceSealer;

    fn deref(&self) -> &EvidenceSealer {
        &self.sealer
    }
}
