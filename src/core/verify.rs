//! Verification of one evidence record, as a pure function of bytes, trust anchors and the
//! expected chain link. It runs small named checks in a fixed order and reports each one, so
//! that a verifier (our CLI, the public page, a court expert) sees exactly what held and what
//! did not. Certificates are judged at the time proven by the timestamp, never "today".

use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::core::evidence::{EVIDENCE_VERSION, EvidenceRecord};
use crate::core::seal::ParsedSeal;
use crate::core::timestamp::{HashAlgorithm, ParsedToken};
use crate::core::trust::{CertificatePurpose, TrustAnchors, verify_certificate_path};

/// How far the record's `event_time` may lie after the token's time (accuracy plus clock
/// skew between the sealing process and the TSA).
const MAX_EVENT_AFTER_TIMESTAMP: time::Duration = time::Duration::seconds(2);
/// How long before its timestamp a record may say its event happened. A record sealed long
/// after the event it reports would let an operator back-date; one hour covers a remote TSA
/// outage retried with backoff.
const MAX_EVENT_BEFORE_TIMESTAMP: time::Duration = time::Duration::hours(1);

/// The names of the checks, in the order they run.
pub const CHECK_NAMES: [&str; 8] = [
    "record_canonical",
    "seal_signature",
    "seal_certificate",
    "timestamp_signature",
    "timestamp_imprint",
    "timestamp_certificate",
    "event_time",
    "chain_link",
];

/// The result of one named check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable check name (see [`CHECK_NAMES`]).
    pub name: &'static str,
    /// Whether it held.
    pub passed: bool,
    /// What was found, in English.
    pub detail: String,
}

/// Everything known about one record after verification.
#[derive(Debug, Clone)]
pub struct EvidenceReport {
    /// Checks in order.
    pub checks: Vec<Check>,
    /// The parsed record, when it parsed.
    pub record: Option<EvidenceRecord>,
    /// The time proven by the timestamp token, when it could be read.
    pub timestamp_time: Option<OffsetDateTime>,
    /// SHA-256 of the record bytes (what the next record links to).
    pub sha256: [u8; 32],
}

impl EvidenceReport {
    /// True when every check passed.
    pub fn is_valid(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The first failed check, if any.
    pub fn first_failure(&self) -> Option<&Check> {
        self.checks.iter().find(|c| !c.passed)
    }
}

/// What the record's `previous_evidence_sha256` must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainExpectation<'a> {
    /// The letter's first record: the link must be `null`.
    First,
    /// A later record: the link must be this hex SHA-256.
    After(&'a str),
    /// Unknown (a record checked on its own): the link is reported, not judged.
    Unknown,
}

/// Verifies one evidence record: its bytes, CMS seal and RFC 3161 token against `anchors`.
pub fn verify_evidence(
    record_bytes: &[u8],
    seal_der: &[u8],
    token_der: &[u8],
    anchors: &TrustAnchors,
    chain: ChainExpectation<'_>,
) -> EvidenceReport {
    let sha256: [u8; 32] = Sha256::digest(record_bytes).into();
    let mut checks = Vec::with_capacity(CHECK_NAMES.len());
    let mut pass = |name: &'static str, result: Result<String, String>| {
        let (passed, detail) = match result {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        checks.push(Check {
            name,
            passed,
            detail,
        });
    };

    // 1. The record parses, is version 1 and is exactly its own RFC 8785 canonical form.
    let record = parse_canonical(record_bytes);
    pass(
        "record_canonical",
        record
            .as_ref()
            .map(|r| {
                format!(
                    "{} record {} of letter {}",
                    r.event.name(),
                    r.evidence_id,
                    r.letter_id
                )
            })
            .map_err(Clone::clone),
    );
    let record = record.ok();

    // The token is read first (silently) because the seal's certificate is judged at the
    // token's time.
    let token = ParsedToken::parse(token_der);
    let gen_time = token.as_ref().ok().map(|t| t.info().gen_time);

    // 2–3. The seal: signature over the record, then its certificate path at the event time.
    let seal = ParsedSeal::parse(seal_der).map_err(|e| e.to_string());
    pass(
        "seal_signature",
        seal.as_ref()
            .map_err(Clone::clone)
            .and_then(|s| s.verify_signature(record_bytes).map_err(|e| e.to_string()))
            .map(|()| "CMS signature over the record bytes is valid".to_string()),
    );
    pass(
        "seal_certificate",
        seal_certificate(&seal, gen_time, anchors, record.as_ref()),
    );

    // 4–6. The timestamp: signature, imprint, TSA certificate at its own time.
    let token = token.map_err(|e| e.to_string());
    let signer = token
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|t| t.verify_signature(&[]).map_err(|e| e.to_string()));
    pass(
        "timestamp_signature",
        signer
            .as_ref()
            .map(|_| "RFC 3161 token signature is valid".to_string())
            .map_err(Clone::clone),
    );
    pass(
        "timestamp_imprint",
        timestamp_imprint(&token, record_bytes, &sha256),
    );
    pass(
        "timestamp_certificate",
        timestamp_certificate(&token, &signer, gen_time, anchors),
    );

    // 7. The time the record claims agrees with the time the token proves.
    pass(
        "event_time",
        match (&record, gen_time) {
            (Some(r), Some(at)) => check_event_time(&r.event_time, at),
            _ => Err("not checked: record or timestamp unreadable".into()),
        },
    );

    // 8. The link to the letter's previous record.
    pass("chain_link", chain_link(record.as_ref(), chain));

    EvidenceReport {
        checks,
        record,
        timestamp_time: gen_time,
        sha256,
    }
}

/// Check 3: the seal's certificate chains to an anchor at the token's time and is the one
/// the record names.
fn seal_certificate(
    seal: &Result<ParsedSeal, String>,
    gen_time: Option<OffsetDateTime>,
    anchors: &TrustAnchors,
    record: Option<&EvidenceRecord>,
) -> Result<String, String> {
    let (seal, at) = match (seal, gen_time) {
        (Err(e), _) => return Err(format!("not checked: the seal could not be read ({e})")),
        (Ok(_), None) => {
            return Err(
                "not checked: no trustworthy time (the timestamp could not be read)".into(),
            );
        }
        (Ok(seal), Some(at)) => (seal, at),
    };
    let cert = seal
        .sealing_certificate(anchors, at)
        .map_err(|e| e.to_string())?;
    let cert_sha = hex::encode(Sha256::digest(cert));
    match record {
        Some(r) if r.provider.seal_certificate_sha256 != cert_sha => Err(format!(
            "the record names seal certificate {} but was sealed with {cert_sha}",
            r.provider.seal_certificate_sha256
        )),
        _ => Ok(format!(
            "seal certificate {cert_sha} chains to a trust anchor and was valid at {}",
            crate::core::clock::rfc3339_micros(at)
        )),
    }
}

/// Check 5: the token's imprint is the SHA-256 of the record.
fn timestamp_imprint(
    token: &Result<ParsedToken, String>,
    record_bytes: &[u8],
    sha256: &[u8; 32],
) -> Result<String, String> {
    let t = token.as_ref().map_err(|e| format!("not checked: {e}"))?;
    if !matches!(t.info().hash_algorithm, HashAlgorithm::Sha256) {
        return Err("the token's imprint is not SHA-256".to_string());
    }
    t.check_imprint(record_bytes)
        .map(|()| {
            format!(
                "token imprint equals SHA-256 of the record ({})",
                hex::encode(sha256)
            )
        })
        .map_err(|e| e.to_string())
}

/// Check 6: the TSA certificate chains to an anchor, is for timestamping only and was valid
/// at the token's own time.
fn timestamp_certificate(
    token: &Result<ParsedToken, String>,
    signer: &Result<Vec<u8>, String>,
    gen_time: Option<OffsetDateTime>,
    anchors: &TrustAnchors,
) -> Result<String, String> {
    match (token, signer, gen_time) {
        (Ok(t), Ok(cert), Some(at)) => verify_certificate_path(
            cert,
            t.certificates(),
            anchors,
            at,
            CertificatePurpose::Timestamping,
        )
        .map(|_| {
            format!(
                "TSA certificate chains to a trust anchor, is for timestamping only and was valid at {}",
                crate::core::clock::rfc3339_micros(at)
            )
        })
        .map_err(|e| e.to_string()),
        (Err(e), _, _) | (_, Err(e), _) => Err(format!("not checked: {e}")),
        _ => Err("not checked: no time in the token".into()),
    }
}

/// Check 8: the record's link to the letter's previous record, against what is expected.
fn chain_link(
    record: Option<&EvidenceRecord>,
    chain: ChainExpectation<'_>,
) -> Result<String, String> {
    let Some(r) = record else {
        return Err("not checked: record unreadable".into());
    };
    match (chain, r.previous_evidence_sha256.as_deref()) {
        (ChainExpectation::First, None) => Ok("first record of the letter".into()),
        (ChainExpectation::First, Some(p)) => {
            Err(format!("the first record links to {p} instead of null"))
        }
        (ChainExpectation::After(want), Some(got)) if want == got => {
            Ok(format!("links to the previous record {want}"))
        }
        (ChainExpectation::After(want), got) => Err(format!(
            "links to {} but the previous record is {want}",
            got.unwrap_or("null")
        )),
        (ChainExpectation::Unknown, link) => Ok(format!(
            "links to {} (not judged: record checked on its own)",
            link.unwrap_or("null")
        )),
    }
}

fn parse_canonical(bytes: &[u8]) -> Result<EvidenceRecord, String> {
    let record: EvidenceRecord =
        serde_json::from_slice(bytes).map_err(|e| format!("not an evidence record v1: {e}"))?;
    if record.version != EVIDENCE_VERSION {
        return Err(format!("unsupported evidence version {}", record.version));
    }
    if record.event_uri != record.event.uri() {
        return Err(format!(
            "event_uri {} does not match event {}",
            record.event_uri,
            record.event.name()
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let canonical = serde_json_canonicalizer::to_vec(&value).map_err(|e| e.to_string())?;
    if canonical != bytes {
        return Err("the bytes are not in RFC 8785 canonical form".into());
    }
    Ok(record)
}

fn check_event_time(event_time: &str, gen_time: OffsetDateTime) -> Result<String, String> {
    let t = OffsetDateTime::parse(event_time, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("event_time {event_time:?} is not RFC 3339: {e}"))?;
    if t > gen_time + MAX_EVENT_AFTER_TIMESTAMP {
        return Err(format!(
            "the record says {event_time}, after the time proven by its timestamp ({})",
            crate::core::clock::rfc3339_micros(gen_time)
        ));
    }
    if t < gen_time - MAX_EVENT_BEFORE_TIMESTAMP {
        return Err(format!(
            "the record says {event_time}, more than an hour before its timestamp ({})",
            crate::core::clock::rfc3339_micros(gen_time)
        ));
    }
    Ok(format!(
        "event time {event_time} agrees with the timestamp ({})",
        crate::core::clock::rfc3339_micros(gen_time)
    ))
}

/// A plain-language name for a check of [`verify_evidence`] or of a bundle's verification, in
/// French or English (the names the verification page and `recommande verify` show).
pub fn check_label(name: &str, french: bool) -> &'static str {
    let (fr, en) = match name {
        "container" => ("Conteneur ASiC-E", "ASiC-E container"),
        "container_extent" => (
            "Aucun octet hors des fichiers du conteneur",
            "No byte outside the container's files",
        ),
        "container_headers" => (
            "En-têtes locaux conformes au répertoire central",
            "Local headers agree with the central directory",
        ),
        "container_local_entries" => (
            "Aucun fichier caché ni chevauchant",
            "No hidden or overlapping file",
        ),
        "container_names" => (
            "Noms de fichiers uniques et relatifs",
            "File names unique and relative",
        ),
        "container_layout" => (
            "Aucun fichier étranger au dossier de preuves",
            "No file foreign to the proof bundle",
        ),
        "container_limits" => (
            "Décompression dans les limites (taille, nombre, taux, durée)",
            "Inflation within the limits (size, count, ratio, time)",
        ),
        "manifest_seal" => (
            "Sceau du prestataire sur le manifeste",
            "Provider's seal over the manifest",
        ),
        "file_digests" => ("Empreintes de tous les fichiers", "Digests of every file"),
        "evidence_files" => ("Fichiers de la preuve", "Files of the record"),
        "record_canonical" => (
            "Enregistrement lisible et canonique",
            "Readable, canonical record",
        ),
        "seal_signature" => ("Signature du cachet", "Seal signature"),
        "seal_certificate" => (
            "Certificat du cachet, valide à la date de l'événement",
            "Seal certificate, valid at the event time",
        ),
        "timestamp_signature" => ("Signature de l'horodatage", "Timestamp signature"),
        "timestamp_imprint" => (
            "L'horodatage porte sur cet enregistrement",
            "The timestamp covers this record",
        ),
        "timestamp_certificate" => (
            "Certificat de l'autorité d'horodatage",
            "Timestamp authority certificate",
        ),
        "event_time" => (
            "Heure de l'événement conforme à l'horodatage",
            "Event time agrees with the timestamp",
        ),
        "chain_link" => (
            "Lien avec la preuve précédente",
            "Link to the previous record",
        ),
        "event_order" => ("Ordre des événements", "Order of events"),
        "legal_consistency" => (
            "Délai de quinze jours (CPCE R.53-3)",
            "Fifteen-day window (CPCE R.53-3)",
        ),
        "documents_match" => ("Documents déposés", "Deposited documents"),
        "timestamp_renewal" => (
            "Horodatage valide aujourd'hui ou renouvelé à temps (RFC 4998)",
            "Timestamp valid today or renewed in time (RFC 4998)",
        ),
        "log_tree_head" => (
            "Tête d'arbre du journal de transparence",
            "Transparency log tree head",
        ),
        "log_inclusion" => (
            "Inscription au journal de transparence",
            "Entry in the transparency log",
        ),
        _ => ("Vérification", "Check"),
    };
    if french { fr } else { en }
}

/// A plain-language name for an evidence event, in French or English; an unknown name as it is.
pub fn event_label(event: &str, french: bool) -> &str {
    let (fr, en) = match event {
        "SubmissionAcceptance" => ("Dépôt de la lettre", "Letter deposited"),
        "SubmissionRejection" => ("Dépôt refusé", "Deposit refused"),
        "NotificationForAcceptance" => ("Notification envoyée", "Notification sent"),
        "NotificationForAcceptanceFailure" => {
            ("Notification non remise", "Notification not delivered")
        }
        "ConsignmentAcceptance" => ("Acceptation", "Acceptance"),
        "ConsignmentRejection" => ("Refus", "Refusal"),
        "ContentHandover" => ("Remise du contenu", "Content handed over"),
        "AcceptanceRejectionExpiry" => ("Non-réclamation", "Unclaimed"),
        "ContentDestruction" => ("Destruction du contenu", "Content destroyed"),
        _ => return event,
    };
    if french { fr } else { en }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Map;
    use time::OffsetDateTime;

    use super::*;
    use crate::core::clock::{Clock, TestClock};
    use crate::core::evidence::{
        EvidenceSealer, PartyInfo, ProviderInfo, SealedEvidence, Timestamper, deposit_record,
    };
    use crate::core::pki::{
        DEFAULT_DEVELOPMENT_VALIDITY_DAYS, development_material, generate_development_pki,
    };
    use crate::core::seal::Sealer;
    use crate::core::timestamp::{SerialNumbers, TimestampAuthority};

    struct Fixture {
        sealer: EvidenceSealer,
        seal: Arc<crate::core::pki::SigningIdentity>,
        anchors: TrustAnchors,
        clock: TestClock,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("dir");
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .expect("whole second");
        let files = generate_development_pki(now, DEFAULT_DEVELOPMENT_VALIDITY_DAYS).expect("pki");
        let pki = development_material(&files, now).expect("pki");
        let clock = TestClock::at(now);
        let tsa = TimestampAuthority::new(
            pki.tsa.clone().expect("dev TSA"),
            crate::core::pki::DEVELOPMENT_TSA_POLICY_OID,
            SerialNumbers::new(1),
        )
        .expect("tsa");
        let sealer = EvidenceSealer::new(
            Sealer::new(pki.seal.clone()),
            Timestamper::Embedded {
                authority: Arc::new(tsa),
                clock: Arc::new(clock.clone()),
            },
            ProviderInfo {
                name: "recommande".into(),
                seal_certificate_sha256: hex::encode(pki.seal.certificate_sha256()),
            },
            crate::core::pki::DEVELOPMENT_EVIDENCE_POLICY.into(),
        );
        let anchors = TrustAnchors::from_der(pki.roots_der.clone()).expect("anchors");
        Fixture {
            sealer,
            seal: pki.seal.clone(),
            anchors,
            clock,
            _dir: dir,
        }
    }

    fn record(
        f: &Fixture,
        event_time: OffsetDateTime,
        previous: Option<String>,
    ) -> crate::core::evidence::EvidenceRecord {
        let party = PartyInfo {
            name: "Jeanne Créancière".into(),
            email: "jeanne@exemple.fr".into(),
            organization: None,
            kind: None,
            identity: None,
        };
        let mut r = deposit_record(
            &uuid::Uuid::now_v7().to_string(),
            &uuid::Uuid::now_v7().to_string(),
            event_time,
            f.sealer.provider(),
            f.sealer.policy(),
            party.clone(),
            party,
            Vec::new(),
            Map::new(),
        );
        r.previous_evidence_sha256 = previous;
        r
    }

    fn sealed(f: &Fixture, r: crate::core::evidence::EvidenceRecord) -> SealedEvidence {
        let at = f.clock.now();
        f.sealer
            .seal_with_embedded_tsa(r, at)
            .expect("embedded")
            .expect("sealed")
    }

    fn failed(report: &EvidenceReport) -> Vec<&'static str> {
        report
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn a_sound_record_passes_every_check_in_order() {
        let f = fixture();
        let e = sealed(&f, record(&f, f.clock.now(), None));
        let report = verify_evidence(
            &e.bytes,
            &e.seal,
            &e.timestamp_token,
            &f.anchors,
            ChainExpectation::First,
        );
        let names: Vec<&str> = report.checks.iter().map(|c| c.name).collect();
        assert_eq!(names, CHECK_NAMES);
        assert!(report.is_valid(), "{:#?}", report.checks);
        assert_eq!(report.sha256, e.sha256);
    }

    #[test]
    fn a_broken_chain_link_fails_only_the_chain_check() {
        let f = fixture();
        let first = sealed(&f, record(&f, f.clock.now(), None));
        let link = hex::encode(first.sha256);
        let second = sealed(&f, record(&f, f.clock.now(), Some(link.clone())));
        let ok = verify_evidence(
            &second.bytes,
            &second.seal,
            &second.timestamp_token,
            &f.anchors,
            ChainExpectation::After(&link),
        );
        assert!(ok.is_valid(), "{:#?}", ok.checks);
        let other = "ab".repeat(32);
        let report = verify_evidence(
            &second.bytes,
            &second.seal,
            &second.timestamp_token,
            &f.anchors,
            ChainExpectation::After(&other),
        );
        assert_eq!(failed(&report), ["chain_link"]);
        let report = verify_evidence(
            &second.bytes,
            &second.seal,
            &second.timestamp_token,
            &f.anchors,
            ChainExpectation::First,
        );
        assert_eq!(failed(&report), ["chain_link"]);
    }

    #[test]
    fn a_record_claiming_a_time_far_from_its_timestamp_fails_the_event_time_check() {
        let f = fixture();
        let backdated = sealed(
            &f,
            record(&f, f.clock.now() - time::Duration::hours(2), None),
        );
        let report = verify_evidence(
            &backdated.bytes,
            &backdated.seal,
            &backdated.timestamp_token,
            &f.anchors,
            ChainExpectation::First,
        );
        assert_eq!(failed(&report), ["event_time"]);
        let future = sealed(
            &f,
            record(&f, f.clock.now() + time::Duration::minutes(5), None),
        );
        let report = verify_evidence(
            &future.bytes,
            &future.seal,
            &future.timestamp_token,
            &f.anchors,
            ChainExpectation::First,
        );
        assert_eq!(failed(&report), ["event_time"]);
    }

    #[test]
    fn bytes_that_are_not_canonical_fail_even_when_sealed() {
        let f = fixture();
        let r = record(&f, f.clock.now(), None);
        let pretty = serde_json::to_vec_pretty(&r).expect("json");
        let at = f.clock.now();
        let seal = Sealer::new(f.seal.clone()).seal(&pretty, at).expect("seal");
        let digest: [u8; 32] = sha2::Sha256::digest(&pretty).into();
        let (tsa, _) = f.sealer.timestamper().embedded().expect("embedded");
        let token = tsa.timestamp_sha256(digest, at).expect("token");
        let report = verify_evidence(&pretty, &seal, &token, &f.anchors, ChainExpectation::First);
        assert_eq!(
            failed(&report),
            ["record_canonical", "event_time", "chain_link"]
        );
    }

    #[test]
    fn foreign_trust_anchors_fail_both_certificate_checks_only() {
        let f = fixture();
        let other = fixture();
        let e = sealed(&f, record(&f, f.clock.now(), None));
        let report = verify_evidence(
            &e.bytes,
            &e.seal,
            &e.timestamp_token,
            &other.anchors,
            ChainExpectation::First,
        );
        assert_eq!(
            failed(&report),
            ["seal_certificate", "timestamp_certificate"]
        );
    }

    #[test]
    fn a_token_of_another_record_fails_the_imprint_check() {
        let f = fixture();
        let a = sealed(&f, record(&f, f.clock.now(), None));
        let b = sealed(&f, record(&f, f.clock.now(), None));
        let report = verify_evidence(
            &a.bytes,
            &a.seal,
            &b.timestamp_token,
            &f.anchors,
            ChainExpectation::First,
        );
        assert_eq!(failed(&report), ["timestamp_imprint"]);
    }

    #[test]
    fn garbage_seal_and_token_fail_every_dependent_check_with_a_reason() {
        let f = fixture();
        let e = sealed(&f, record(&f, f.clock.now(), None));
        let report = verify_evidence(
            &e.bytes,
            b"\x30\x00",
            b"not der",
            &f.anchors,
            ChainExpectation::First,
        );
        assert_eq!(
            failed(&report),
            [
                "seal_signature",
                "seal_certificate",
                "timestamp_signature",
                "timestamp_imprint",
                "timestamp_certificate",
                "event_time"
            ]
        );
        assert!(report.checks.iter().all(|c| !c.detail.is_empty()));
    }
}
