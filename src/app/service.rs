//! Service assembly: turns [`Settings`] into running parts, checking everything at start —
//! database and migrations, trust material (key match, validity, EKU), the timestamp source,
//! and a full seal → timestamp → verify round trip — so that a misconfiguration stops the
//! service with a precise message instead of producing unverifiable evidence later.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Map;
use sha2::{Digest, Sha256};

use crate::app::api_key::ApiKeyHasher;
use crate::app::batch::Batches;
use crate::app::composer::Composer;
use crate::app::deposit::Deposits;
use crate::app::lifecycle::{Lifecycle, RecipientKeys};
use crate::app::log::TransparencyLog;
use crate::app::witness::Witnesses;
use crate::config::{
    DEVELOPMENT_EVIDENCE_POLICY, DEVELOPMENT_TSA_POLICY_OID, Settings, TimestampMode,
};
use crate::core::clock::{Clock, unix_micros};
use crate::core::evidence::{EvidenceError, PartyInfo, ProviderInfo, deposit_record};
use crate::core::pki::{PkiError, TrustMaterial};
use crate::core::proof::{ProofContext, ProofError, ProofKind};
use crate::core::seal::Sealer;
use crate::core::timestamp::{SerialNumbers, TimestampAuthority, TimestampError};
use crate::core::trust::{TrustAnchors, TrustError};
use crate::core::verify::{ChainExpectation, verify_evidence};
use crate::infra::content::{ContentError, ContentStore};
use crate::infra::key_files::{load_or_create_development_pki_valid_for, load_production_pki};
use crate::infra::keys::Keyring;
use crate::infra::mail::{MailError, Mailer};
use crate::infra::storage::{EvidenceRow, Storage, StorageError};
use crate::infra::timestamping::{TimestampingSealer, TokenSource};
use crate::infra::tsa_client::RemoteTsa;

/// Evidence policy written when production keys are used and none is configured.
pub const PRODUCTION_EVIDENCE_POLICY: &str = "urn:recommande:evidence-policy:v1";
/// Counter from which each start reserves a fresh TSA serial-number epoch.
const TSA_SERIAL_EPOCH_COUNTER: &str = "tsa_serial_epoch";

/// Why the service refused to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Database connection or migration.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// An installation secret could not be loaded (see src/app/secrets.rs).
    #[error(transparent)]
    Secret(#[from] crate::app::secrets::SecretError),
    /// Settings that do not fit together.
    #[error("configuration: {0}")]
    Config(String),
    /// Certificates and keys.
    #[error("trust material: {0}")]
    Pki(#[from] PkiError),
    /// Trust anchors.
    #[error("trust anchors: {0}")]
    Trust(#[from] TrustError),
    /// Timestamp source.
    #[error("timestamping: {0}")]
    Timestamp(#[from] TimestampError),
    /// Content store.
    #[error("content store: {0}")]
    Content(#[from] ContentError),
    /// Mail transport.
    #[error("mail: {0}")]
    Mail(#[from] MailError),
    /// The outbound HTTP client could not be built.
    #[error("configuration: outbound HTTP client: {0}")]
    Outbound(#[source] reqwest::Error),
    /// The start-up self-check failed.
    #[error("self-check failed: {0}")]
    SelfCheck(String),
    /// The start-up self-check could not seal its record.
    #[error("self-check failed: {0}")]
    SelfCheckSeal(#[source] EvidenceError),
}

/// The running parts of the service, shared by the HTTP layer, the CLI and benchmarks.
#[derive(Clone)]
pub struct Service {
    /// Resolved settings.
    pub settings: Arc<Settings>,
    /// Relational storage.
    pub storage: Storage,
    /// Document bytes.
    pub content: ContentStore,
    /// Certificates and keys.
    pub trust: Arc<TrustMaterial>,
    /// The anchors that verify every seal and timestamp we issue (served at `/v1/trust/roots.pem`).
    pub anchors: TrustAnchors,
    /// PEM of `anchors`.
    pub anchors_pem: Arc<String>,
    /// The embedded TSA (also served at `POST /tsa`), when timestamps are made in-process.
    pub tsa: Option<Arc<TimestampAuthority>>,
    /// Evidence sealing.
    pub sealer: Arc<TimestampingSealer>,
    /// The mail transport (also held by the lifecycle and the witnesses), for readiness.
    pub mailer: Mailer,
    /// Deposit service.
    pub deposits: Deposits,
    /// Batches of letters (`POST /v1/batches`).
    pub batches: Batches,
    /// Lifecycle after deposit.
    pub lifecycle: Lifecycle,
    /// The transparency log over all evidence.
    pub log: TransparencyLog,
    /// Outside witnesses that receive each signed tree head.
    pub witnesses: Witnesses,
    /// The guarded HTTP client of webhook and witness deliveries (src/infra/net_guard.rs).
    pub outbound: crate::infra::net_guard::Outbound,
    /// Debt-collection letters written by the service.
    pub composer: Composer,
    /// API key HMAC.
    pub api_keys: ApiKeyHasher,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// The statuses of the background workers (`src/app/worker.rs`), for `/metrics`.
    pub workers: crate::app::worker::Statuses,
}

impl Service {
    /// Connects, loads or creates trust material, and checks the whole evidence pipeline.
    pub async fn start(settings: Settings, clock: Arc<dyn Clock>) -> Result<Service, StartError> {
        crate::infra::private_files::create_dir(&settings.server.data_dir).map_err(|source| {
            StartError::DataDir {
                path: settings.server.data_dir.clone(),
                source,
            }
        })?;
        let now = clock.now();
        let storage = Storage::connect(&settings.database.url).await?;
        let trust = Arc::new(load_trust(&settings, now)?);
        let (anchors_pem, anchors) = trust_anchors(&settings, &trust)?;
        let (timestamper, embedded) =
            timestamper(&settings, &trust, &storage, &anchors, &clock).await?;
        let sealer = evidence_sealer(&settings, &trust, timestamper);
        self_check(&sealer, &anchors, clock.as_ref()).await?;
        let (storage, keyring, content) = content_store(&settings, storage, &clock).await?;
        let api_keys = ApiKeyHasher::load(&storage, &keyring, unix_micros(now)).await?;
        let deposits = Deposits::new(
            storage.clone(),
            sealer.clone(),
            clock.clone(),
            settings.evidence.retention_years,
        );
        // Bulk sealing uses every core; the database writer overlaps with it.
        let rates = rates_table(&settings, now)?;
        let composer = Composer::new(
            storage.clone(),
            content.clone(),
            Arc::new(rates),
            clock.clone(),
        );
        let batches = Batches::new(
            storage.clone(),
            deposits.clone(),
            composer.clone(),
            clock.clone(),
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        );
        let mailer = Mailer::new(
            settings.mail.smtp_url.as_deref(),
            settings.server.data_dir.join("mail"),
            &settings.mail.from,
            settings.mail.dkim.as_ref(),
            &settings.mail.relay,
        )?;
        mailer.check().await?;
        let outbound = outbound_client(&settings)?;
        let witnesses = Witnesses::new(
            storage.clone(),
            mailer.clone(),
            outbound.clone(),
            &settings.log.witnesses,
            &settings.server.public_url,
            &settings.server.provider_name,
        );
        let lifecycle = Lifecycle::new(
            storage.clone(),
            sealer.clone(),
            clock.clone(),
            mailer.clone(),
            RecipientKeys::load(&storage, &keyring, unix_micros(now)).await?,
            settings.server.public_url.clone(),
            settings.provider.clone(),
            settings.mail.reminder_days.clone(),
        )
        .with_dispatch_chunk(settings.workers.dispatch_chunk);
        let log = TransparencyLog::new(
            storage.clone(),
            sealer.clone(),
            clock.clone(),
            &settings.server.provider_name,
            settings.log.head_interval_seconds,
            settings.log.head_every_leaves,
        )
        .with_witnesses(crate::app::witness::targets(&settings.log.witnesses));
        Ok(Service {
            settings: Arc::new(settings),
            storage,
            content,
            trust,
            anchors,
            anchors_pem: Arc::new(anchors_pem),
            tsa: embedded,
            sealer,
            mailer,
            deposits,
            batches,
            lifecycle,
            log,
            witnesses,
            outbound,
            composer,
            api_keys,
            clock,
            workers: crate::app::worker::Statuses::default(),
        })
    }

    /// Renders the PDF proofs `kinds` of a letter from its evidence (in sequence order), on a
    /// blocking thread; kinds whose event has not happened are left out.
    pub async fn render_proofs(
        &self,
        letter_id: &str,
        evidence: Vec<EvidenceRow>,
        kinds: Vec<ProofKind>,
    ) -> Result<Vec<(ProofKind, crate::core::proof::Rendered)>, ProofError> {
        let letter_id = letter_id.to_string();
        let code = self.lifecycle.verification_code(&letter_id);
        let provider = self.settings.server.provider_name.clone();
        let public_url = self
            .settings
            .server
            .public_url
            .trim_end_matches('/')
            .to_string();
        let development_pki = self.trust.development;
        let identity = self.settings.provider.clone();
        tokio::task::spawn_blocking(move || {
            let ctx = ProofContext {
                provider: &identity,
                letter_id: &letter_id,
                evidence: &evidence,
                provider_name: &provider,
                verification_code: &code,
                public_url: &public_url,
                development_pki,
            };
            let mut out = Vec::new();
            for kind in kinds {
                if let Some(pdf) = crate::core::proof::render(kind, &ctx)? {
                    out.push((kind, pdf));
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| ProofError::Render(format!("rendering task stopped: {e}")))?
    }
}

/// Why signed proofs could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum SignedProofError {
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] ProofError),
    /// Signing or timestamping failed.
    #[error(transparent)]
    Sign(#[from] EvidenceError),
    /// The kept proofs could not be read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Service {
    /// The PDF proofs `kinds` of a letter, each with the service's PAdES B-T signature (seal
    /// and signature timestamp; ETSI EN 319 142-1). A proof is signed once for what it
    /// renders and then served as kept, so that repeated downloads and bundles of the same
    /// letter state are byte-identical; kinds whose event has not happened are left out.
    pub async fn signed_proofs(
        &self,
        letter_id: &str,
        evidence: Vec<EvidenceRow>,
        kinds: Vec<ProofKind>,
    ) -> Result<Vec<(ProofKind, Vec<u8>)>, SignedProofError> {
        let rendered = self.render_proofs(letter_id, evidence, kinds).await?;
        let mut out = Vec::with_capacity(rendered.len());
        for (kind, crate::core::proof::Rendered { pdf, signature_box }) in rendered {
            let rendered_sha256 = hex::encode(Sha256::digest(&pdf));
            if let Some(kept) = self.storage.signed_proof(letter_id, kind.slug()).await?
                && kept.rendered_sha256 == rendered_sha256
            {
                out.push((kind, kept.pdf));
                continue;
            }
            let now = self.clock.now();
            let server = &self.settings.server;
            let field = crate::core::pades::SignatureField {
                signer: &server.provider_name,
                reason: kind.title_french(),
                contact: &server.public_url,
                at: now,
                rect: Some(signature_box),
            };
            let signed = self.sealer.sign_pdf(&pdf, &field).await?;
            let kept = self
                .storage
                .keep_signed_proof(&crate::infra::storage::SignedProofRow {
                    letter_id: letter_id.to_string(),
                    kind: kind.slug().to_string(),
                    rendered_sha256,
                    pdf: signed,
                    signed_at: unix_micros(now),
                })
                .await?;
            out.push((kind, kept.pdf));
        }
        Ok(out)
    }
}

/// The parts of the service the retention purge works with.
impl<'a> From<&'a Service> for crate::app::archive::Purger<'a> {
    fn from(service: &'a Service) -> Self {
        crate::app::archive::Purger {
            storage: &service.storage,
            lifecycle: &service.lifecycle,
            clock: service.clock.as_ref(),
            evidence_retention_years: service.settings.archive.evidence_retention_years,
        }
    }
}

/// The parts of the service an archive audit works with.
impl<'a> From<&'a Service> for crate::app::audit::Auditor<'a> {
    fn from(service: &'a Service) -> Self {
        crate::app::audit::Auditor {
            storage: &service.storage,
            content: &service.content,
            log: &service.log,
            sealer: &service.sealer,
            anchors: &service.anchors,
            clock: service.clock.as_ref(),
        }
    }
}

/// The parts of the service a timestamp renewal works with.
impl<'a> From<&'a Service> for crate::app::renewal::Renewer<'a> {
    fn from(service: &'a Service) -> Self {
        crate::app::renewal::Renewer {
            storage: &service.storage,
            sealer: &service.sealer,
            trust: &service.trust,
            clock: service.clock.as_ref(),
            margin_days: service.settings.renewal.margin_days,
        }
    }
}

/// Loads the development PKI (created on first start) or the operator's certificates and
/// keys, refusing pairs set by halves and an embedded TSA without its key.
fn load_trust(settings: &Settings, now: time::OffsetDateTime) -> Result<TrustMaterial, StartError> {
    let trust = if settings.pki.is_development() {
        let dir = settings.server.data_dir.join("pki");
        let (material, created) = load_or_create_development_pki_valid_for(
            &dir,
            now,
            settings.pki.development_validity_days,
        )?;
        tracing::warn!(
            pki.dir = %dir.display(),
            pki.created = created,
            "NON-QUALIFIED development PKI in use: evidence is marked non-qualified and has no legal value as qualified ERDS"
        );
        material
    } else {
        let pki = &settings.pki;
        let seal_cert = required(pki.seal_certificate.as_deref(), "pki.seal_certificate")?;
        let seal_key = required(pki.seal_key.as_ref(), "pki.seal_key")?;
        let roots = required(pki.roots.as_deref(), "pki.roots")?;
        let tsa = match (&pki.tsa_certificate, &pki.tsa_key) {
            (Some(c), Some(k)) => Some((c.as_path(), k)),
            (None, None) => None,
            _ => {
                return Err(StartError::Config(
                    "pki.tsa_certificate and pki.tsa_key must be set together".into(),
                ));
            }
        };
        if tsa.is_none() && settings.timestamp.mode == TimestampMode::Embedded {
            return Err(StartError::Config(
                "the embedded TSA needs pki.tsa_certificate and pki.tsa_key (or set timestamp.mode = \"remote\")".into(),
            ));
        }
        let material =
            load_production_pki(seal_cert, seal_key, tsa, roots, pki.pkcs11.as_ref(), now)?;
        tracing::info!(
            seal.key = %material.seal.key_location(),
            tsa.key = %material.tsa.as_ref().map_or_else(|| "remote TSA".to_string(), |t| t.key_location()),
            "production keys loaded"
        );
        material
    };
    Ok(trust)
}

/// The anchors that verify what we issue: current roots, then the retired generations'
/// (key rotation: old evidence stays verifiable), then a remote TSA's; with their PEM.
fn trust_anchors(
    settings: &Settings,
    trust: &TrustMaterial,
) -> Result<(String, TrustAnchors), StartError> {
    let mut anchors_pem = trust.roots_pem.clone();
    anchors_pem.push_str(&trust.retired_roots_pem);
    for path in &settings.pki.retired_roots {
        let pem = std::fs::read(path).map_err(|e| {
            StartError::Config(format!(
                "cannot read pki.retired_roots {}: {e}",
                path.display()
            ))
        })?;
        let retired = TrustAnchors::from_pem(&pem).map_err(|e| {
            StartError::Config(format!("pki.retired_roots {}: {e}", path.display()))
        })?;
        for der in retired.roots_der() {
            anchors_pem.push_str(&crate::core::trust::pem_encode("CERTIFICATE", der));
        }
    }
    if let Some(extra) = &settings.timestamp.roots {
        let pem = std::fs::read_to_string(extra).map_err(|e| {
            StartError::Config(format!(
                "cannot read timestamp.roots {}: {e}",
                extra.display()
            ))
        })?;
        anchors_pem.push_str(&pem);
    }
    let anchors = TrustAnchors::from_pem(anchors_pem.as_bytes())?;

    Ok((anchors_pem, anchors))
}

/// The timestamp source: the embedded TSA (a fresh serial-number epoch each start) or a
/// remote one; also returns the embedded TSA, served at `POST /tsa`.
async fn timestamper(
    settings: &Settings,
    trust: &TrustMaterial,
    storage: &Storage,
    anchors: &TrustAnchors,
    clock: &Arc<dyn Clock>,
) -> Result<(TokenSource, Option<Arc<TimestampAuthority>>), StartError> {
    if !trust.development
        && settings.timestamp.mode == TimestampMode::Embedded
        && settings.timestamp.policy_oid == DEVELOPMENT_TSA_POLICY_OID
    {
        // Tokens of a production TSA must name the operator's own policy (RFC 3161 §2.4.2),
        // not the development one.
        return Err(StartError::Config(
            "production keys with the embedded TSA need timestamp.policy_oid: the TSA policy under which tokens are issued".into(),
        ));
    }
    let embedded_tsa = match &trust.tsa {
        Some(identity) => {
            let epoch = storage.next_counter(TSA_SERIAL_EPOCH_COUNTER).await?;
            Some(Arc::new(TimestampAuthority::new(
                identity.clone(),
                &settings.timestamp.policy_oid,
                SerialNumbers::new(epoch.max(1) as u64),
            )?))
        }
        None => None,
    };
    let source = match &settings.timestamp.mode {
        TimestampMode::Embedded => {
            let tsa = embedded_tsa.ok_or_else(|| {
                StartError::Config(
                    "the embedded TSA needs pki.tsa_certificate and pki.tsa_key (or set timestamp.mode = \"remote\")"
                        .into(),
                )
            })?;
            (
                TokenSource::Embedded {
                    authority: tsa.clone(),
                    clock: clock.clone(),
                },
                Some(tsa),
            )
        }
        TimestampMode::Remote { url } => (
            TokenSource::Remote {
                client: RemoteTsa::new(
                    url,
                    None,
                    Duration::from_secs(settings.timestamp.timeout_seconds),
                )?,
                anchors: anchors.clone(),
            },
            None,
        ),
    };

    Ok(source)
}

/// The evidence sealer, under the development policy whenever the development PKI is used.
fn evidence_sealer(
    settings: &Settings,
    trust: &TrustMaterial,
    timestamper: TokenSource,
) -> Arc<TimestampingSealer> {
    let policy = if trust.development {
        // Whatever is configured, the development PKI seals under a policy that says
        // non-qualified, so no reader can mistake its evidence for qualified ERDS.
        DEVELOPMENT_EVIDENCE_POLICY.to_string()
    } else {
        settings
            .evidence
            .policy
            .clone()
            .unwrap_or_else(|| PRODUCTION_EVIDENCE_POLICY.to_string())
    };
    let provider = ProviderInfo {
        name: settings.server.provider_name.clone(),
        seal_certificate_sha256: hex::encode(trust.seal.certificate_sha256()),
    };
    Arc::new(TimestampingSealer::new(
        Sealer::new(trust.seal.clone()),
        timestamper,
        provider,
        policy,
    ))
}

/// The keyring and the content store, both checked; the storage returned seals row secrets
/// under the master key (clear ones left by an earlier version are sealed now).
async fn content_store(
    settings: &Settings,
    storage: Storage,
    clock: &Arc<dyn Clock>,
) -> Result<(Storage, Arc<Keyring>, ContentStore), StartError> {
    if settings.archive.master_key.is_none()
        && settings.archive.master_key_files.is_empty()
        && !settings.pki.is_development()
    {
        tracing::warn!(
            "no master key configured: documents are encrypted under a generated key kept in DATA_DIR/keys, next to the data; configure [archive] master_key_files or RECOMMANDE_MASTER_KEY"
        );
    }
    let keyring = Arc::new(
        Keyring::load(
            settings.archive.master_key.as_ref().map(|k| k.expose()),
            &settings.archive.master_key_files,
            &settings.server.data_dir,
        )
        .map_err(ContentError::from)?,
    );
    // Issue 12 §4: the secrets kept in rows (webhook signing secrets) are sealed under the
    // master key; clear ones left by an earlier version are sealed now, in one transaction.
    let storage = storage.with_secret_keys(keyring.clone());
    let sealed = storage.seal_clear_webhook_secrets().await?;
    if sealed > 0 {
        tracing::info!(
            webhooks = sealed,
            "clear webhook secrets sealed under the master key"
        );
    }
    let content = ContentStore::open_with(
        &settings.storage,
        &settings.server.data_dir,
        storage.clone(),
        keyring.clone(),
        clock.clone(),
    )?;
    // Fail at start, not at the first download of an old letter (issue 6 §1).
    content.check_master_keys().await?;
    content.check_backend().await?;
    Ok((storage, keyring, content))
}

/// The collection rates table: built in or the operator's file; warns of half-years missing
/// from it.
fn rates_table(
    settings: &Settings,
    now: time::OffsetDateTime,
) -> Result<crate::domain::collection::RatesTable, StartError> {
    let rates = match &settings.collection.rates_file {
        None => crate::domain::collection::RatesTable::embedded(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                StartError::Config(format!("collection.rates_file {}: {e}", path.display()))
            })?;
            crate::domain::collection::RatesTable::from_toml(&text).map_err(|e| {
                StartError::Config(format!("collection.rates_file {}: {e}", path.display()))
            })?
        }
    }
    .with_missing_rate(settings.collection.missing_rate);
    // Issue 13 §1: a started half-year absent from the table is applied from the latest
    // earlier value on letters; the operator is told at start which ones to add.
    // The half-year is the one of today in Europe/Paris, where letters are dated.
    for missing in rates.missing_half_years_at(now) {
        tracing::warn!(
            half_year = %missing,
            "the collection rates table has no complete entry for this half-year: letters apply the latest earlier value and say so; add it from the official publication with collection.rates_file"
        );
    }
    Ok(rates)
}

/// The guarded client of webhook and witness deliveries, after checking the witness URLs.
fn outbound_client(settings: &Settings) -> Result<crate::infra::net_guard::Outbound, StartError> {
    let policy = settings.outbound_policy();
    // Witness URLs come from the operator: checked like a tenant's webhook, at start
    // (https outside development, no non-public address unless allowed).
    for witness in &settings.log.witnesses.webhooks {
        policy.check_url(&witness.url).map_err(|message| {
            StartError::Config(format!(
                "invalid setting log.witnesses.webhooks: url {:?} {message}",
                witness.url
            ))
        })?;
    }
    let outbound = crate::infra::net_guard::Outbound::new(policy).map_err(StartError::Outbound)?;
    Ok(outbound)
}

fn required<'a, T: ?Sized>(value: Option<&'a T>, key: &str) -> Result<&'a T, StartError> {
    value.ok_or_else(|| {
        StartError::Config(format!(
            "{key} is required when production certificates are configured"
        ))
    })
}

/// Seals and timestamps a throw-away record and verifies it against the served anchors, so
/// that a key, certificate or TSA problem stops the start instead of the first deposit.
async fn self_check(
    sealer: &TimestampingSealer,
    anchors: &TrustAnchors,
    clock: &dyn Clock,
) -> Result<(), StartError> {
    let now = clock.now();
    let party = PartyInfo {
        name: "self-check".into(),
        email: "self-check@invalid.example".into(),
        organization: None,
        kind: None,
        identity: None,
    };
    let record = deposit_record(
        &uuid::Uuid::now_v7().to_string(),
        &uuid::Uuid::nil().to_string(),
        now,
        sealer.provider(),
        sealer.policy(),
        party.clone(),
        party,
        Vec::new(),
        Map::new(),
    );
    let sealed = sealer
        .seal(record, now)
        .await
        .map_err(StartError::SelfCheckSeal)?;
    debug_assert_eq!(
        sealed.sha256,
        <[u8; 32]>::from(Sha256::digest(&sealed.bytes))
    );
    let report = verify_evidence(
        &sealed.bytes,
        &sealed.seal,
        &sealed.timestamp_token,
        anchors,
        ChainExpectation::First,
    );
    match report.first_failure() {
        None => Ok(()),
        Some(check) => Err(StartError::SelfCheck(format!(
            "{}: {}",
            check.name, check.detail
        ))),
    }
}
