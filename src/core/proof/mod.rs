//! Human-readable PDF proofs (CPCE R.53-2, R.53-3): one per event a creditor may have to show
//! — preuve de dépôt, preuve d'envoi, accusé de réception, preuve de refus, preuve de
//! non-réclamation — and a "dossier de preuves" listing every event of the letter.
//!
//! A proof is a rendering of sealed evidence, never a source of truth of its own: every
//! statement on it is read from the evidence records, and every time from the RFC 3161 token
//! that timestamps the record (not from our clock or database). Each PDF carries the evidence
//! it renders as PDF/A-3 attachments (record, seal, token), the record's SHA-256 and a
//! verification code, so a reader can go from the paper to the cryptographic proof.
//! Rendering is pure: the same evidence gives byte-identical PDFs (bundles stay reproducible).

use serde_json::Value;
use time::OffsetDateTime;

use crate::core::clock::paris_french_seconds;
use crate::core::clock::rfc3339_micros;
use crate::core::evidence::{EvidenceEvent, EvidenceRecord, PartyInfo};
use crate::core::records::EvidenceRow;
use crate::core::timestamp::ParsedToken;

pub mod fastpdf;
pub mod layout;

use layout::{Attachment, BLACK, DocumentInfo, Face, GREY, Layout, PALE_RED, RED};

/// The kinds of PDF proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProofKind {
    /// Preuve de dépôt (CPCE R.53-2).
    Deposit,
    /// Preuve d'envoi: the notification was handed to the mail relay.
    Dispatch,
    /// Accusé de réception: the recipient accepted (CPCE R.53-3).
    Receipt,
    /// Preuve de refus.
    Refusal,
    /// Preuve de non-réclamation: the 15-day window ended without a decision.
    NonClaim,
    /// Dossier de preuves: every event of the letter.
    Summary,
}

impl ProofKind {
    /// Every kind, in the order of a letter's life.
    pub const ALL: [ProofKind; 6] = [
        ProofKind::Deposit,
        ProofKind::Dispatch,
        ProofKind::Receipt,
        ProofKind::Refusal,
        ProofKind::NonClaim,
        ProofKind::Summary,
    ];

    /// The name used in URLs and file names (`deposit`, `dispatch`, …, `non_claim`, `summary`).
    pub fn slug(self) -> &'static str {
        match self {
            ProofKind::Deposit => "deposit",
            ProofKind::Dispatch => "dispatch",
            ProofKind::Receipt => "receipt",
            ProofKind::Refusal => "refusal",
            ProofKind::NonClaim => "non_claim",
            ProofKind::Summary => "summary",
        }
    }

    /// Parses a slug.
    pub fn parse(slug: &str) -> Option<ProofKind> {
        ProofKind::ALL.into_iter().find(|k| k.slug() == slug)
    }

    /// The event a single-event proof renders (`None` for the summary).
    pub fn event(self) -> Option<EvidenceEvent> {
        match self {
            ProofKind::Deposit => Some(EvidenceEvent::SubmissionAcceptance),
            ProofKind::Dispatch => Some(EvidenceEvent::NotificationForAcceptance),
            ProofKind::Receipt => Some(EvidenceEvent::ConsignmentAcceptance),
            ProofKind::Refusal => Some(EvidenceEvent::ConsignmentRejection),
            ProofKind::NonClaim => Some(EvidenceEvent::AcceptanceRejectionExpiry),
            ProofKind::Summary => None,
        }
    }

    /// French title.
    pub fn title_french(self) -> &'static str {
        match self {
            ProofKind::Deposit => "Preuve de dépôt",
            ProofKind::Dispatch => "Preuve d'envoi",
            ProofKind::Receipt => "Accusé de réception",
            ProofKind::Refusal => "Preuve de refus",
            ProofKind::NonClaim => "Preuve de non-réclamation",
            ProofKind::Summary => "Dossier de preuves",
        }
    }

    /// English title.
    pub fn title_english(self) -> &'static str {
        match self {
            ProofKind::Deposit => "Proof of deposit",
            ProofKind::Dispatch => "Proof of dispatch (notification sent)",
            ProofKind::Receipt => "Proof of receipt (accepted)",
            ProofKind::Refusal => "Proof of refusal",
            ProofKind::NonClaim => "Proof of non-claim",
            ProofKind::Summary => "Evidence summary",
        }
    }

    /// File name inside bundles and in `Content-Disposition`.
    pub fn file_name(self) -> String {
        format!("{}.pdf", self.slug())
    }
}

/// What a proof is rendered from.
#[derive(Debug, Clone)]
pub struct ProofContext<'a> {
    /// The letter.
    pub letter_id: &'a str,
    /// Its evidence rows in sequence order.
    pub evidence: &'a [EvidenceRow],
    /// Provider name printed on the proof.
    pub provider_name: &'a str,
    /// The letter's verification code (see `Lifecycle::verification_code`).
    pub verification_code: &'a str,
    /// Public base URL of the service (`https://…`, no trailing slash).
    pub public_url: &'a str,
    /// True when the evidence was made with the non-qualified development PKI.
    pub development_pki: bool,
    /// The provider's legal identity, printed in the legal notice.
    pub provider: &'a crate::core::provider::ProviderIdentity,
}

/// Why a proof could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// A stored record or token does not parse: the evidence store is damaged.
    #[error("evidence {evidence_id} cannot be read: {reason}")]
    Unreadable {
        /// The evidence row.
        evidence_id: String,
        /// Why.
        reason: String,
    },
    /// The PDF writer failed.
    #[error("PDF rendering failed: {0}")]
    Render(String),
}

/// One evidence row, read.
struct Event<'a> {
    row: &'a EvidenceRow,
    record: EvidenceRecord,
    /// genTime of the RFC 3161 token.
    time: OffsetDateTime,
    /// Subject of the TSA certificate.
    tsa: String,
    /// Token serial number, hex.
    serial: String,
}

/// The proofs a letter has: the summary as soon as it has evidence, each single-event proof
/// once its event happened.
pub fn available(evidence: &[EvidenceRow]) -> Vec<ProofKind> {
    ProofKind::ALL
        .into_iter()
        .filter(|kind| match kind.event() {
            Some(event) => evidence.iter().any(|e| e.event == event.name()),
            None => !evidence.is_empty(),
        })
        .collect()
}

/// Renders a proof; `Ok(None)` when its event has not happened.
pub fn render(kind: ProofKind, ctx: &ProofContext<'_>) -> Result<Option<Rendered>, ProofError> {
    let events = ctx
        .evidence
        .iter()
        .map(read_event)
        .collect::<Result<Vec<_>, _>>()?;
    let Some(first) = events.first() else {
        return Ok(None);
    };
    let (subject, attachments) = match kind.event() {
        Some(event) => {
            // The first event of that kind is the proof: a letter is notified, accepted or
            // refused once; a resent notification does not move the proof of dispatch.
            let Some(index) = events.iter().position(|e| e.record.event == event) else {
                return Ok(None);
            };
            (Some(index), attachments_of(&events[index], index))
        }
        None => (
            None,
            events
                .iter()
                .enumerate()
                .flat_map(|(i, e)| attachments_of(e, i))
                .collect(),
        ),
    };
    let shown = subject.map(|i| &events[i]).unwrap_or(first);
    let last = events.last().unwrap_or(first);

    let mut page = Layout::new();
    header(&mut page, kind, ctx);
    let signature_box = signature_box(&mut page, ctx);
    match subject {
        Some(index) => single_event(&mut page, kind, &events, index),
        None => summary(&mut page, &events),
    }
    verification(&mut page, ctx);
    legal_footer(&mut page, ctx);

    let info = DocumentInfo {
        title: format!(
            "{} — lettre recommandée électronique {}",
            kind.title_french(),
            ctx.letter_id
        ),
        subject: format!("{} / {}", kind.title_french(), kind.title_english()),
        author: ctx.provider_name.to_string(),
        // The time of the latest event the PDF shows: reproducible, and never before it.
        created: if subject.is_some() {
            shown.time
        } else {
            last.time
        },
        footer: format!(
            "{} · {} · lettre {}",
            ctx.provider_name,
            kind.title_french(),
            ctx.letter_id
        ),
    };
    let pdf = page
        .render(&info, attachments)
        .map_err(ProofError::Render)?;
    Ok(Some(Rendered { pdf, signature_box }))
}

/// A rendered proof: the unsigned PDF and where its signature box is on the first page.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The PDF/A-3b file.
    pub pdf: Vec<u8>,
    /// The signature box, `[x1, y1, x2, y2]` in PDF points on the first page.
    pub signature_box: [f32; 4],
}

fn read_event(row: &EvidenceRow) -> Result<Event<'_>, ProofError> {
    let unreadable = |reason: String| ProofError::Unreadable {
        evidence_id: row.id.clone(),
        reason,
    };
    let record: EvidenceRecord =
        serde_json::from_slice(&row.record).map_err(|e| unreadable(e.to_string()))?;
    let token = ParsedToken::parse(&row.timestamp_token).map_err(|e| unreadable(e.to_string()))?;
    let tsa = token
        .certificates()
        .first()
        .and_then(|der| {
            x509_parser::parse_x509_certificate(der)
                .ok()
                .map(|(_, c)| c.subject().to_string())
        })
        .unwrap_or_else(|| "autorité d'horodatage non nommée dans le jeton".into());
    Ok(Event {
        row,
        time: token.info().gen_time,
        serial: hex::encode(&token.info().serial),
        tsa,
        record,
    })
}

/// The evidence files of event `index` (0-based), named as in the proof bundle.
fn attachments_of(e: &Event<'_>, index: usize) -> Vec<Attachment> {
    let stem = format!("evidence-{:02}-{}", index + 1, e.record.event.name());
    vec![
        Attachment {
            name: format!("{stem}.json"),
            media_type: "application/json",
            description: format!(
                "Enregistrement de preuve (JSON canonique RFC 8785) / evidence record {}",
                e.record.evidence_id
            ),
            bytes: e.row.record.clone(),
        },
        Attachment {
            name: format!("{stem}.p7s"),
            media_type: "application/pkcs7-signature",
            description: "Cachet électronique CMS détaché sur l'enregistrement / CMS detached seal"
                .into(),
            bytes: e.row.seal.clone(),
        },
        Attachment {
            name: format!("{stem}.tsr"),
            media_type: "application/timestamp-token",
            description:
                "Jeton d'horodatage RFC 3161 sur l'enregistrement / RFC 3161 timestamp token".into(),
            bytes: e.row.timestamp_token.clone(),
        },
    ]
}

fn header(page: &mut Layout, kind: ProofKind, ctx: &ProofContext<'_>) {
    page.paragraph(
        "LETTRE RECOMMANDÉE ÉLECTRONIQUE · ELECTRONIC REGISTERED LETTER",
        Face::Bold,
        8.5,
        GREY,
    );
    page.space(2.0);
    page.paragraph(kind.title_french(), Face::Bold, 20.0, layout::BLUE);
    page.paragraph(kind.title_english(), Face::Regular, 10.0, GREY);
    page.space(6.0);
    if ctx.development_pki {
        page.banner(
            &[
                "PKI DE DÉVELOPPEMENT NON QUALIFIÉE — document de test sans valeur de preuve \
                 qualifiée : le cachet et l'horodatage ne proviennent pas d'un prestataire \
                 qualifié (règlement eIDAS).",
                "Non-qualified development PKI — test document, not a qualified proof.",
            ],
            RED,
            PALE_RED,
        );
    }
    page.field(
        "Identifiant de la lettre",
        "Letter id",
        ctx.letter_id,
        Face::Mono,
    );
    page.field("Prestataire", "Provider", ctx.provider_name, Face::Regular);
}

/// The box on the first page that the PDF signature's widget covers (see
/// [`crate::core::pades`]): who signs, how, and the verification code.
fn signature_box(page: &mut Layout, ctx: &ProofContext<'_>) -> [f32; 4] {
    page.signature_box(&[
        (
            &format!(
                "Document signé électroniquement par {} (cachet électronique et horodatage, \
                 PAdES) ; la date de signature est celle de l'horodatage, montrée par le \
                 panneau des signatures du lecteur PDF.",
                ctx.provider_name
            ),
            Face::Bold,
            9.0,
            BLACK,
        ),
        (
            &format!("Code de vérification : {}", ctx.verification_code),
            Face::Regular,
            9.0,
            BLACK,
        ),
        (
            "Electronically sealed and timestamped by the provider (PAdES); any change to \
             the file invalidates the signature.",
            Face::Regular,
            7.5,
            GREY,
        ),
    ])
}

fn single_event(page: &mut Layout, kind: ProofKind, events: &[Event<'_>], index: usize) {
    let e = &events[index];
    let r = &e.record;
    page.heading("Événement prouvé", "Proven event");
    page.paragraph(&statement(kind, r), Face::Regular, 10.0, BLACK);
    page.space(4.0);
    page.field(
        "Date et heure (horodatage RFC 3161)",
        "Date and time (RFC 3161 timestamp)",
        &format!(
            "{}\n{} (UTC)",
            paris_french_seconds(e.time),
            rfc3339_utc(e.time)
        ),
        Face::Regular,
    );
    if let Some(deadline) = detail_time(r, "deadline") {
        let (french, english) = match kind {
            ProofKind::NonClaim => (
                "Fin du délai d'acceptation (expiré)",
                "End of the acceptance window (passed)",
            ),
            _ => (
                "Fin du délai d'acceptation ou de refus",
                "Deadline to accept or refuse",
            ),
        };
        page.field(
            french,
            english,
            &format!(
                "jusqu'au {} inclus (heure de Paris)\n15 jours à compter du lendemain de la \
                 notification (CPCE R.53-3)",
                crate::core::clock::paris_french(crate::core::clock::last_minute(deadline))
            ),
            Face::Regular,
        );
    }
    if let Some(notified) = detail_time(r, "notified_at") {
        page.field(
            "Notification envoyée le",
            "Notified on",
            &paris_french_seconds(notified),
            Face::Regular,
        );
    }

    event_parties(page, kind, events, r);

    if let Some(first) = events.first() {
        claim(page, &first.record, kind);
    }
    documents(page, r);
    evidence_block(page, e);
    if kind == ProofKind::Deposit
        && let Some(retain) = detail_time(r, "retain_until")
    {
        page.field(
            "Conservation jusqu'au",
            "Kept until",
            &paris_french_seconds(retain),
            Face::Regular,
        );
    }
}

/// The parties of a single-event proof: the sender (withheld on a proof of dispatch), the
/// recipient and how they were identified, and the sender's reference.
fn event_parties(page: &mut Layout, kind: ProofKind, events: &[Event<'_>], r: &EvidenceRecord) {
    page.heading("Parties", "Sender and recipient");
    // CPCE R.53-3: the sender's identity is withheld from the recipient until the decision;
    // the proof of dispatch, which a recipient may also be shown, keeps it out as well.
    if kind == ProofKind::Dispatch {
        page.field(
            "Expéditeur",
            "Sender",
            "Non communiqué au destinataire avant sa décision (CPCE R.53-3) ; il figure sur la \
             preuve de dépôt.",
            Face::Regular,
        );
    } else {
        party(page, "Expéditeur", "Sender", &r.sender);
    }
    party(page, "Destinataire", "Recipient", &r.recipient);
    if let Some(identification) = r.details.get("identification") {
        let method = identification
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("inconnue");
        let level = identification
            .get("assurance_level")
            .and_then(Value::as_str)
            .unwrap_or("inconnu");
        page.field(
            "Identification du destinataire",
            "Recipient identification",
            &format!("méthode « {method} », niveau de garantie eIDAS « {level} »"),
            Face::Regular,
        );
    }
    if let Some(reference) = events
        .first()
        .and_then(|f| f.record.details.get("reference"))
        .and_then(Value::as_str)
    {
        page.field(
            "Référence de l'expéditeur",
            "Sender's reference",
            reference,
            Face::Regular,
        );
    }
}

fn summary(page: &mut Layout, events: &[Event<'_>]) {
    let Some(first) = events.first() else {
        return;
    };
    page.heading("Parties", "Sender and recipient");
    party(page, "Expéditeur", "Sender", &first.record.sender);
    party(page, "Destinataire", "Recipient", &first.record.recipient);
    if let Some(reference) = first
        .record
        .details
        .get("reference")
        .and_then(Value::as_str)
    {
        page.field(
            "Référence de l'expéditeur",
            "Sender's reference",
            reference,
            Face::Regular,
        );
    }
    claim(page, &first.record, ProofKind::Summary);
    documents(page, &first.record);

    page.heading("Chronologie des événements", "Timeline of events");
    for (i, e) in events.iter().enumerate() {
        page.field(
            &format!("{:02} · {}", i + 1, event_french(e.record.event)),
            e.record.event.name(),
            &format!(
                "{}\n{} (UTC)",
                paris_french_seconds(e.time),
                rfc3339_utc(e.time)
            ),
            Face::Regular,
        );
        page.field("", "", &e.row.record_sha256, Face::Mono);
    }
    page.paragraph(
        "Chaque preuve contient l'empreinte SHA-256 de la précédente : la chaîne ne peut être \
         modifiée, réordonnée ni raccourcie sans que cela se voie. Les fichiers de chaque \
         preuve (JSON, cachet .p7s, horodatage .tsr) sont joints à ce PDF.",
        Face::Regular,
        8.5,
        GREY,
    );
    if let Some(last) = events.last() {
        page.heading("Dernière preuve de la chaîne", "Head of the evidence chain");
        evidence_fields(page, last);
    }
}

fn statement(kind: ProofKind, r: &EvidenceRecord) -> String {
    let recipient = format!("{} <{}>", r.recipient.name, r.recipient.email);
    match kind {
        ProofKind::Deposit => format!(
            "Le prestataire atteste avoir reçu de l'expéditeur, pour envoi en lettre \
             recommandée électronique à {recipient}, les documents listés ci-dessous \
             (CPCE R.53-2)."
        ),
        ProofKind::Dispatch => format!(
            "Le prestataire atteste avoir remis au serveur de messagerie la notification \
             informant {recipient} qu'une lettre recommandée électronique l'attend et qu'il \
             peut l'accepter ou la refuser dans le délai indiqué (CPCE R.53-3)."
        ),
        ProofKind::Receipt => format!(
            "Le destinataire {recipient}, identifié comme indiqué ci-dessous, a accepté la \
             lettre recommandée électronique (CPCE R.53-3). Cette acceptation vaut réception."
        ),
        ProofKind::Refusal => format!(
            "Le destinataire {recipient}, identifié comme indiqué ci-dessous, a refusé la \
             lettre recommandée électronique (CPCE R.53-3)."
        ),
        ProofKind::NonClaim => format!(
            "Le destinataire {recipient} n'a ni accepté ni refusé la lettre recommandée \
             électronique dans le délai de quinze jours suivant sa notification : la lettre \
             n'a pas été réclamée (CPCE R.53-3)."
        ),
        ProofKind::Summary => String::new(),
    }
}

/// For a composed letter (its proof of deposit records the composition): the kind of
/// letter, who claims from whom, and the sum claimed with its parts (Code des procédures
/// civiles d'exécution, art. R.124-4 3°: principal, interest and other sums distinguished).
/// Letters of uploaded documents have no such section: the service does not read them.
fn claim(page: &mut Layout, deposit: &EvidenceRecord, kind: ProofKind) {
    let Some(c) = deposit.details.get("collection").filter(|c| c.is_object()) else {
        return;
    };
    let cents = |key: &str| c["breakdown"]["totals"][key].as_i64();
    page.heading("Créance réclamée", "Sum claimed");
    let letter_kind = match c["kind"].as_str() {
        Some("mise_en_demeure") => "Mise en demeure de payer",
        Some("relance") => "Relance pour impayé",
        _ => "Lettre de recouvrement",
    };
    page.field(
        "Nature de la lettre",
        "Kind of letter",
        letter_kind,
        Face::Regular,
    );
    // CPCE R.53-3: the sender stays hidden from the recipient until the decision; the
    // creditor (and the agency writing for it) would name it on the proof of dispatch.
    if kind == ProofKind::Dispatch {
        page.field(
            "Créancier",
            "Creditor",
            "Non communiqué au destinataire avant sa décision (CPCE R.53-3) ; il figure sur la \
             preuve de dépôt.",
            Face::Regular,
        );
    } else if let Some(name) = c["creditor"]["name"].as_str() {
        let mut value = name.to_string();
        if let Some(siren) = c["creditor"]["siren"].as_str() {
            value.push_str(&format!("\nSIREN {siren}"));
        }
        if let Some(agency) = c["agency"]["name"].as_str() {
            value.push_str(&format!("\nreprésenté par {agency} (recouvrement amiable)"));
        }
        page.field("Créancier", "Creditor", &value, Face::Regular);
    }
    if let Some(name) = c["debtor"]["name"].as_str() {
        page.field("Débiteur", "Debtor", name, Face::Regular);
    }
    let euros = crate::core::french::euros;
    let mut parts = Vec::new();
    if let Some(v) = cents("principal_cents") {
        parts.push(format!("Principal restant dû : {}", euros(v)));
    }
    if let Some(v) = cents("interest_cents") {
        parts.push(format!("Intérêts de retard : {}", euros(v)));
    }
    if let Some(v) = cents("indemnity_cents").filter(|v| *v > 0) {
        parts.push(format!(
            "Indemnités forfaitaires pour frais de recouvrement (Code de commerce, art. \
             L.441-10, D.441-5) : {}",
            euros(v)
        ));
    }
    if let Some(v) = cents("total_cents") {
        parts.push(format!("Total réclamé : {}", euros(v)));
    }
    if !parts.is_empty() {
        page.field(
            "Somme réclamée",
            "Principal, interest, indemnity, total",
            &parts.join("\n"),
            Face::Regular,
        );
    }
    if let Some(date) = c["letter_date"]
        .as_str()
        .and_then(|d| time::Date::parse(d, ISO_DATE).ok())
    {
        page.field(
            "Montants arrêtés au",
            "Amounts as of",
            &crate::core::french::date(date),
            Face::Regular,
        );
    }
}

/// `2026-11-23`, as the composition summary writes dates.
const ISO_DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

fn party(page: &mut Layout, french: &str, english: &str, p: &PartyInfo) {
    let mut value = format!("{}\n{}", p.name, p.email);
    if let Some(org) = &p.organization {
        value.push_str(&format!("\n{org}"));
    }
    if let Some(kind) = &p.kind {
        value.push_str(match kind.as_str() {
            "consumer" => "\nconsommateur (consentement préalable requis, CPCE L.100)",
            "professional" => "\nprofessionnel",
            _ => "",
        });
    }
    page.field(french, english, &value, Face::Regular);
}

fn documents(page: &mut Layout, r: &EvidenceRecord) {
    page.heading("Documents de la lettre", "Documents of the letter");
    for (i, item) in r.content.iter().enumerate() {
        page.field(
            &format!("Document {}", i + 1),
            "name, size",
            &format!("{}\n{} octets", item.name, item.size),
            Face::Regular,
        );
        page.field(
            "Empreinte SHA-256",
            "SHA-256 digest",
            &item.sha256,
            Face::Mono,
        );
    }
}

fn evidence_block(page: &mut Layout, e: &Event<'_>) {
    page.heading("Preuve électronique", "Electronic evidence");
    evidence_fields(page, e);
}

fn evidence_fields(page: &mut Layout, e: &Event<'_>) {
    page.field(
        "Identifiant de la preuve",
        "Evidence id",
        &e.record.evidence_id,
        Face::Mono,
    );
    page.field(
        "Type (ETSI EN 319 522)",
        "Event",
        e.record.event.name(),
        Face::Mono,
    );
    page.field(
        "SHA-256 de l'enregistrement",
        "Record SHA-256",
        &e.row.record_sha256,
        Face::Mono,
    );
    if let Some(previous) = &e.record.previous_evidence_sha256 {
        page.field(
            "SHA-256 de la preuve précédente",
            "Previous record SHA-256",
            previous,
            Face::Mono,
        );
    }
    page.field(
        "Cachet du prestataire (certificat, SHA-256)",
        "Provider seal certificate",
        &e.record.provider.seal_certificate_sha256,
        Face::Mono,
    );
    page.field(
        "Horodatage",
        "Timestamp",
        &format!("{}\nnuméro de série {}", e.tsa, e.serial),
        Face::Regular,
    );
}

fn verification(page: &mut Layout, ctx: &ProofContext<'_>) {
    page.heading("Vérifier cette preuve", "Verify this proof");
    let url = format!(
        "{}/verify?letter={}&code={}",
        ctx.public_url, ctx.letter_id, ctx.verification_code
    );
    let typed = format!("{}/verify", ctx.public_url);
    page.qr_with_caption(
        &url,
        96.0,
        &[
            (
                &format!("Code de vérification : {}", ctx.verification_code),
                Face::Bold,
                10.0,
            ),
            (
                &format!(
                    "Saisissez l'identifiant de la lettre et ce code sur {typed}, ou lisez le \
                     QR code. Pour une vérification hors ligne, sans nous faire confiance : le \
                     dossier de preuves (bundle.zip) se vérifie avec « recommande verify » ou \
                     avec openssl seul (fichier VERIFY.txt)."
                ),
                Face::Regular,
                8.5,
            ),
            (
                "Enter the letter id and this code on the page above, or scan the QR code. \
                 Offline: verify the proof bundle with `recommande verify` or plain openssl.",
                Face::Regular,
                7.5,
            ),
        ],
        &url,
    );
}

fn legal_footer(page: &mut Layout, ctx: &ProofContext<'_>) {
    page.space(6.0);
    let qualification = if ctx.development_pki {
        "Document produit avec une PKI de développement : il n'a pas la valeur d'une preuve \
         émise par un prestataire qualifié."
    } else {
        ctx.provider.status(true)
    };
    page.paragraph(
        &format!(
            "Lettre recommandée électronique au sens de l'article L.100 du code des postes et \
             des communications électroniques et de l'article 44 du règlement (UE) n° 910/2014 \
             (eIDAS). {qualification} Les dates et heures sont celles des jetons d'horodatage \
             RFC 3161 joints ; l'original probant est l'enregistrement électronique scellé, \
             dont ce document est une représentation lisible."
        ),
        Face::Regular,
        7.5,
        GREY,
    );
    page.paragraph(
        &format!("Prestataire : {}", ctx.provider.legal_line(true)),
        Face::Regular,
        7.5,
        GREY,
    );
}

fn event_french(event: EvidenceEvent) -> &'static str {
    match event {
        EvidenceEvent::SubmissionAcceptance => "Dépôt de la lettre",
        EvidenceEvent::SubmissionRejection => "Dépôt rejeté",
        EvidenceEvent::NotificationForAcceptance => "Notification envoyée (preuve d'envoi)",
        EvidenceEvent::NotificationForAcceptanceFailure => "Échec de la notification",
        EvidenceEvent::ConsignmentAcceptance => "Lettre acceptée (accusé de réception)",
        EvidenceEvent::ConsignmentRejection => "Lettre refusée",
        EvidenceEvent::ContentHandover => "Contenu téléchargé par le destinataire",
        EvidenceEvent::AcceptanceRejectionExpiry => "Délai expiré : non-réclamation",
        EvidenceEvent::ContentDestruction => "Contenu détruit à la fin de la conservation",
    }
}

fn detail_time(r: &EvidenceRecord, key: &str) -> Option<OffsetDateTime> {
    let text = r.details.get(key)?.as_str()?;
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// `2026-12-08T13:03:27Z`: UTC to the second, as printed next to the Paris time (the token
/// itself is to the microsecond; `rfc3339_micros` gives that form in the JSON API).
fn rfc3339_utc(t: OffsetDateTime) -> String {
    let full = rfc3339_micros(t);
    match full.split_once('.') {
        Some((seconds, _)) => format!("{seconds}Z"),
        None => full,
    }
}
