//! The mandatory mentions of a collection letter, checked on the **final blocks** — the text
//! that will be rendered — never on the inputs, so that custom wording cannot drop one.
//!
//! Sources: for a mise en demeure (docs/COLLECTION.md, mandatory mentions; Code civil 1344 and usage before an
//! injonction de payer): the words "mise en demeure", creditor, debtor, invoice references,
//! amounts, the deadline, the consequences. For an agency collecting for a creditor, Code des
//! procédures civiles d'exécution, art. R.124-4: 1° the agency's identity and that it collects amicably, 2° the creditor's name and
//! address, 3° the basis and amount broken into principal, interest and other sums, 4° the
//! request to pay and how, 5° the text of L.111-8 paragraphs 2 and 3; and later letters
//! recall the first one's reference and date.

use serde::Serialize;

use super::blocks::Block;
use super::request::LetterKind;
use super::{Composition, wording};
use crate::core::french::{self, normalize_spaces};

/// Code des procédures civiles d'exécution, art. L.111-8, second paragraph, verbatim (version in force since 19 March 2014, loi
/// n° 2014-344 art. 12).
pub const L111_8_PARAGRAPH_2: &str = "Les frais de recouvrement entrepris sans titre exécutoire restent à la charge du créancier, sauf s'ils concernent un acte dont l'accomplissement est prescrit par la loi au créancier. Toute stipulation contraire est réputée non écrite, sauf disposition législative contraire.";
/// Code des procédures civiles d'exécution, art. L.111-8, third paragraph, verbatim.
pub const L111_8_PARAGRAPH_3: &str = "Cependant, le créancier qui justifie du caractère nécessaire des démarches entreprises pour recouvrer sa créance peut demander au juge de l'exécution de laisser tout ou partie des frais ainsi exposés à la charge du débiteur de mauvaise foi.";

/// Code de procédure civile, art. 750-1: a claim for a sum of 5 000 € or less brought by
/// assignation is preceded by an amicable resolution attempt; in cents, inclusive.
pub const ART_750_1_MAX_CENTS: i64 = 500_000;

/// The sentence a letter of 5 000 € or less mentioning an assignation carries (Code de
/// procédure civile, art. 750-1). The injonction de payer (art. 1405 and following) is not a
/// demand subject to it.
pub const ART_750_1_SENTENCE: &str = "La somme réclamée n'excédant pas 5 000 €, une assignation en paiement serait précédée, lorsque l'article 750-1 du code de procédure civile l'exige, d'une tentative de conciliation menée par un conciliateur de justice, d'une tentative de médiation ou d'une tentative de procédure participative ; la requête en injonction de payer n'y est pas soumise.";

/// Words that threaten court action, which a letter claiming a time-barred invoice must not
/// use (Code de la consommation L.121-2: a misleading practice towards a consumer; and in all
/// cases a time-barred claim cannot be won in court). Lower case, spaces folded.
pub const COURT_ACTION_TERMS: &[&str] = &[
    "injonction de payer",
    "référé",
    "assignation",
    "juridiction",
    "tribunal",
    "poursuites judiciaires",
    "action en justice",
];

/// One mandatory mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mention {
    /// The words "mise en demeure".
    MiseEnDemeureWords,
    /// The creditor's name (and, for an agency, its address).
    CreditorIdentity,
    /// The debtor's name.
    DebtorIdentity,
    /// Every invoice number.
    InvoiceReferences,
    /// Principal, interest, other sums and total.
    AmountBreakdown,
    /// The rates used, when interest is claimed.
    RatesUsed,
    /// Missing rates, stated on the letter.
    MissingRateNotice,
    /// The time given to pay.
    Deadline,
    /// A sentence asking to pay the total.
    PaymentRequest,
    /// How to pay: every link, IBAN and instruction given.
    PaymentMethod,
    /// Injonction de payer, référé-provision, assignation; for 5 000 € or less, the amicable
    /// resolution attempt of Code de procédure civile art. 750-1.
    Consequences,
    /// The agency's name and address.
    AgencyIdentity,
    /// The statement that the agency collects amicably.
    AmicableCollection,
    /// Code des procédures civiles d'exécution, art. L.111-8 paragraphs 2 and 3, verbatim.
    L111_8Text,
    /// The first letter's reference and date.
    FirstLetterReference,
}

impl Mention {
    /// Every mention, in the order they are reported.
    pub const ALL: [Mention; 15] = [
        Mention::MiseEnDemeureWords,
        Mention::CreditorIdentity,
        Mention::DebtorIdentity,
        Mention::InvoiceReferences,
        Mention::AmountBreakdown,
        Mention::RatesUsed,
        Mention::MissingRateNotice,
        Mention::Deadline,
        Mention::PaymentRequest,
        Mention::PaymentMethod,
        Mention::Consequences,
        Mention::AgencyIdentity,
        Mention::AmicableCollection,
        Mention::L111_8Text,
        Mention::FirstLetterReference,
    ];

    /// The rule requiring it.
    pub fn rule(self) -> &'static str {
        match self {
            Mention::MiseEnDemeureWords => "Code civil, art. 1344 (mise en demeure)",
            Mention::CreditorIdentity => {
                "identité du créancier; Code des procédures civiles d'exécution, art. R.124-4 2°"
            }
            Mention::DebtorIdentity => "identité du débiteur",
            Mention::InvoiceReferences => "références des factures",
            Mention::AmountBreakdown => {
                "Code des procédures civiles d'exécution, art. R.124-4 3° (principal, intérêts, autres sommes)"
            }
            Mention::RatesUsed => "Code de commerce L.441-10; Code civil 1231-6 (taux appliqués)",
            Mention::MissingRateNotice => "taux de référence absents de la table des taux",
            Mention::Deadline => "délai de paiement",
            Mention::PaymentRequest => {
                "Code des procédures civiles d'exécution, art. R.124-4 4° (indication d'avoir à payer)"
            }
            Mention::PaymentMethod => {
                "Code des procédures civiles d'exécution, art. R.124-4 4° (modalités de paiement)"
            }
            Mention::Consequences => {
                "conséquences du défaut de paiement (injonction de payer, référé-provision, assignation ; jusqu'à 5 000 €, tentative de résolution amiable préalable : Code de procédure civile, art. 750-1)"
            }
            Mention::AgencyIdentity => {
                "Code des procédures civiles d'exécution, art. R.124-4 1° (identité de la personne chargée du recouvrement)"
            }
            Mention::AmicableCollection => {
                "Code des procédures civiles d'exécution, art. R.124-4 1° (activité de recouvrement amiable)"
            }
            Mention::L111_8Text => {
                "Code des procédures civiles d'exécution, art. R.124-4 5° (reproduction de L.111-8 al. 2 et 3)"
            }
            Mention::FirstLetterReference => {
                "Code des procédures civiles d'exécution, art. R.124-4 dernier alinéa (référence et date du premier courrier)"
            }
        }
    }

    /// Whether this letter must carry it. A letter claiming a time-barred invoice on the
    /// sender's override never carries the consequences: it must not threaten a court action
    /// the debtor could defeat by pleading prescription (Code de la consommation L.121-2).
    pub fn applies(self, c: &Composition) -> bool {
        let r = &c.request;
        match self {
            Mention::MiseEnDemeureWords => r.kind == LetterKind::MiseEnDemeure,
            Mention::Consequences => r.kind == LetterKind::MiseEnDemeure && c.overrides.is_empty(),
            Mention::AgencyIdentity | Mention::AmicableCollection | Mention::L111_8Text => {
                r.agency.is_some()
            }
            Mention::FirstLetterReference => r.first_letter.is_some(),
            Mention::RatesUsed => !c.breakdown.rates_used.is_empty(),
            Mention::MissingRateNotice => c.warnings.iter().any(|w| w.on_letter),
            Mention::CreditorIdentity
            | Mention::DebtorIdentity
            | Mention::InvoiceReferences
            | Mention::AmountBreakdown
            | Mention::Deadline
            | Mention::PaymentRequest
            | Mention::PaymentMethod => true,
        }
    }

    /// Whether `blocks` carry it.
    pub fn present(self, c: &Composition, blocks: &[Block]) -> bool {
        self.found_in(c, &LetterText::of(blocks))
    }

    fn found_in(self, c: &Composition, text: &LetterText) -> bool {
        let LetterText { texts, all, lower } = text;
        let has = |needle: &str| lower.contains(&fold(needle).to_lowercase());
        let r = &c.request;
        let totals = &c.breakdown.totals;
        match self {
            Mention::MiseEnDemeureWords => has("mise en demeure"),
            Mention::CreditorIdentity => {
                has(&r.creditor.name)
                    && (r.agency.is_none() || r.creditor.address.0.iter().all(|l| has(l)))
            }
            Mention::DebtorIdentity => has(&r.debtor.name),
            Mention::InvoiceReferences => r.invoices.iter().all(|i| has(&i.number)),
            Mention::AmountBreakdown => {
                has(&french::euros(totals.principal_cents))
                    && has(&french::euros(totals.interest_cents))
                    && has(&french::euros(totals.total_cents))
                    && (totals.indemnity_cents == 0 || has(&french::euros(totals.indemnity_cents)))
            }
            Mention::RatesUsed => c
                .breakdown
                .invoices
                .iter()
                .flat_map(|i| &i.periods)
                .all(|p| has(&french::percent(p.rate_bp))),
            Mention::MissingRateNotice => c
                .breakdown
                .rates_used
                .iter()
                .filter(|u| u.half_year != u.table_half_year)
                .all(|u| has(&half_year_fr(u.half_year))),
            Mention::Deadline => has(&wording::deadline_text(r.deadline_days)),
            Mention::PaymentRequest => {
                let total = fold(&french::euros(totals.total_cents)).to_lowercase();
                texts
                    .iter()
                    .any(|t| t.contains(&total) && (t.contains("payer") || t.contains("régler")))
            }
            Mention::PaymentMethod => {
                r.payment
                    .link
                    .as_ref()
                    .is_none_or(|l| all.contains(l.as_str()))
                    && r.payment.iban.as_ref().is_none_or(|i| has(&i.display()))
                    && r.payment.instructions.as_ref().is_none_or(|s| has(s))
            }
            Mention::Consequences => {
                has("injonction de payer")
                    && has("référé-provision")
                    && has("assignation")
                    && (totals.total_cents > ART_750_1_MAX_CENTS || has("750-1"))
            }
            Mention::AgencyIdentity => r
                .agency
                .as_ref()
                .is_some_and(|a| has(&a.name) && a.address.0.iter().all(|l| has(l))),
            Mention::AmicableCollection => has("recouvrement amiable"),
            // Verbatim: case and punctuation kept, only spaces folded.
            Mention::L111_8Text => {
                all.contains(&fold(L111_8_PARAGRAPH_2)) && all.contains(&fold(L111_8_PARAGRAPH_3))
            }
            Mention::FirstLetterReference => r
                .first_letter
                .as_ref()
                .is_some_and(|f| has(&f.reference) && has(&french::date(f.date))),
        }
    }
}

/// How a mention got into the letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MentionStatus {
    /// The wording (default or custom) already had it.
    Present,
    /// The wording lacked it; the composer added its standard text.
    Added,
}

/// One mandatory mention, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MentionCheck {
    /// Which mention.
    pub mention: Mention,
    /// The rule requiring it.
    pub rule: String,
    /// How it got there.
    pub status: MentionStatus,
}

/// The mentions this letter requires that `blocks` lack, in [`Mention::ALL`] order.
pub fn missing(c: &Composition, blocks: &[Block]) -> Vec<Mention> {
    let text = LetterText::of(blocks);
    Mention::ALL
        .into_iter()
        .filter(|m| required_by(*m, c, &text) && !m.found_in(c, &text))
        .collect()
}

/// The mentions `blocks` must carry, in [`Mention::ALL`] order: those of [`Mention::applies`],
/// and the consequences of any letter (a relance too) whose wording speaks of an assignation,
/// so that a claim of 5 000 € or less then says what art. 750-1 requires first.
pub fn required(c: &Composition, blocks: &[Block]) -> Vec<Mention> {
    let text = LetterText::of(blocks);
    Mention::ALL
        .into_iter()
        .filter(|m| required_by(*m, c, &text))
        .collect()
}

fn required_by(m: Mention, c: &Composition, text: &LetterText) -> bool {
    m.applies(c)
        || (m == Mention::Consequences
            && c.overrides.is_empty()
            && text.lower.contains("assignation"))
}

/// The court-action words the letter's own text uses (quoted legal texts aside), for a
/// letter that must not threaten one.
pub fn court_action_terms(blocks: &[Block]) -> Vec<&'static str> {
    let own: Vec<Block> = blocks
        .iter()
        .filter(|b| !matches!(b, Block::Quote { .. }))
        .cloned()
        .collect();
    let text = LetterText::of(&own);
    COURT_ACTION_TERMS
        .iter()
        .copied()
        .filter(|t| text.lower.contains(t))
        .collect()
}

/// The text of a letter prepared once for every search: spaces folded, and lower-cased.
struct LetterText {
    /// Each text of each block, folded and lower-cased.
    texts: Vec<String>,
    /// Everything, folded, case kept (for verbatim quotes and links).
    all: String,
    /// Everything, folded and lower-cased.
    lower: String,
}

impl LetterText {
    fn of(blocks: &[Block]) -> LetterText {
        let folded: Vec<String> = blocks
            .iter()
            .flat_map(Block::texts)
            .map(|t| fold(&t))
            .collect();
        let texts: Vec<String> = folded.iter().map(|t| t.to_lowercase()).collect();
        LetterText {
            lower: texts.join("\n"),
            all: folded.join("\n"),
            texts,
        }
    }
}

/// `second semestre 2026`, as the letter names a half-year.
pub fn half_year_fr(h: super::HalfYear) -> String {
    format!(
        "{} semestre {}",
        if h.second { "second" } else { "premier" },
        h.year
    )
}

/// Spaces folded and typographic apostrophes made plain, for searching.
fn fold(s: &str) -> String {
    normalize_spaces(&s.replace('\u{2019}', "'"))
}
