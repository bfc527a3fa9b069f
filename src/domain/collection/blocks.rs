//! The letter as structured, renderer-agnostic blocks, in French: address blocks, date line,
//! references, subject, title, body, the breakdown tables, payment details, legal texts and
//! signature. The PDF renderer lays them out; the mentions check reads them.
//!
//! Order: sender, recipient, date, references, subject, title, salutation, **body** (the
//! default paragraphs or the tenant's wording), mentions the wording lacked, amounts,
//! payment, L.111-8 (agency), notices, closing, signature.

use serde::Serialize;

use super::amounts::{InterestRegime, RateBasis};
use super::mentions::{
    self, ART_750_1_MAX_CENTS, ART_750_1_SENTENCE, L111_8_PARAGRAPH_2, L111_8_PARAGRAPH_3, Mention,
    MentionCheck, MentionStatus,
};
use super::request::{CreditorKind, Imputation, LetterKind, NoticeSender, PriorNoticeKind};
use super::wording::{Wording, deadline_text};
use super::{Composition, CompositionSummary, PartySummary, PaymentSummary};
use crate::core::french;
use crate::domain::letter::{FieldError, field_error};

/// One block of a letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Sender's name and address (top left).
    SenderAddress {
        /// Lines.
        lines: Vec<String>,
    },
    /// Recipient's name and address (window position).
    RecipientAddress {
        /// Lines.
        lines: Vec<String>,
    },
    /// `Lyon, le 23 novembre 2026` (or `Le 23 novembre 2026` when no city is known).
    PlaceDate {
        /// Text.
        text: String,
    },
    /// References (`Mandat : …`, first letter).
    References {
        /// Lines.
        lines: Vec<String>,
    },
    /// `Objet : …`.
    Subject {
        /// Text.
        text: String,
    },
    /// The letter's title.
    Title {
        /// Text.
        text: String,
    },
    /// A section heading.
    Heading {
        /// Text.
        text: String,
    },
    /// A paragraph.
    Paragraph {
        /// Text.
        text: String,
    },
    /// A table; `footer` rows are totals.
    Table {
        /// Column titles.
        header: Vec<String>,
        /// Rows, as many cells as `header`.
        rows: Vec<Vec<String>>,
        /// Total rows, as many cells as `header`.
        footer: Vec<Vec<String>>,
    },
    /// A quoted legal text.
    Quote {
        /// The text, verbatim.
        text: String,
        /// Where it comes from.
        source: String,
    },
    /// A boxed notice (missing rates).
    Notice {
        /// Text.
        text: String,
    },
    /// Signature lines.
    Signature {
        /// Lines.
        lines: Vec<String>,
    },
}

impl Block {
    /// Every text the block shows.
    pub fn texts(&self) -> Vec<String> {
        match self {
            Block::SenderAddress { lines }
            | Block::RecipientAddress { lines }
            | Block::References { lines }
            | Block::Signature { lines } => lines.clone(),
            Block::PlaceDate { text }
            | Block::Subject { text }
            | Block::Title { text }
            | Block::Heading { text }
            | Block::Paragraph { text }
            | Block::Notice { text } => vec![text.clone()],
            Block::Table {
                header,
                rows,
                footer,
            } => std::iter::once(header)
                .chain(rows)
                .chain(footer)
                .map(|r| r.join(" | "))
                .collect(),
            Block::Quote { text, source } => vec![text.clone(), source.clone()],
        }
    }
}

/// A written letter: its blocks and the mandatory mentions checked on them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComposedLetter {
    /// The blocks, in reading order.
    pub blocks: Vec<Block>,
    /// Every mandatory mention of this letter and how it got there.
    pub mentions: Vec<MentionCheck>,
}

impl ComposedLetter {
    /// What the API answers and the evidence records.
    pub fn summary(&self, c: &Composition) -> CompositionSummary {
        let r = &c.request;
        let kind_name = |v: serde_json::Result<serde_json::Value>| {
            v.ok().and_then(|v| v.as_str().map(str::to_string))
        };
        CompositionSummary {
            kind: r.kind,
            creditor: PartySummary {
                name: r.creditor.name.clone(),
                siren: r.creditor.siren.as_ref().map(|s| s.display()),
                kind: kind_name(serde_json::to_value(r.creditor.kind)),
            },
            agency: r.agency.as_ref().map(|a| PartySummary {
                name: a.name.clone(),
                siren: None,
                kind: None,
            }),
            debtor: PartySummary {
                name: r.debtor.name.clone(),
                siren: None,
                kind: kind_name(serde_json::to_value(r.debtor.kind)),
            },
            payment: PaymentSummary {
                link: r.payment.link.as_ref().map(|l| l.as_str().to_string()),
                iban: r.payment.iban.as_ref().map(|i| i.display()),
                instructions: r.payment.instructions.clone(),
            },
            letter_date: c.letter_date,
            deadline_days: c.request.deadline_days,
            breakdown: c.breakdown.clone(),
            prescription: c.prescription.clone(),
            warnings: c.warnings.clone(),
            prescription_overrides: c.overrides.clone(),
            prescription_overridden: !c.overrides.is_empty(),
            mentions: self.mentions.clone(),
        }
    }

    /// The whole text, one block per line group (for tests, search and plain-text views).
    pub fn plain_text(&self) -> String {
        self.blocks
            .iter()
            .map(|b| b.texts().join("\n"))
            .collect::<Vec<_>>()
            .join("\n\n")
    }
}

/// Writes the letter for `c`, with the tenant's `wording` in place of the default body.
/// The mandatory mentions are then checked on the blocks; those the wording lacks get their
/// standard text, and the check runs again. Errors: a placeholder the request does not give,
/// or (a bug) a mention that still cannot be found.
pub fn write_letter(
    c: &Composition,
    wording: Option<&Wording>,
) -> Result<ComposedLetter, Vec<FieldError>> {
    let body: Vec<Block> = match wording {
        Some(w) => w
            .render(c)?
            .into_iter()
            .map(|text| Block::Paragraph { text })
            .collect(),
        None => default_body(c),
    };
    let head = head(c);
    let tail = tail(c);
    let assemble = |extra: &[Block]| -> Vec<Block> {
        head.iter()
            .chain(&body)
            .chain(extra)
            .chain(&tail)
            .cloned()
            .collect()
    };
    let first = assemble(&[]);
    let lacking = mentions::missing(c, &first);
    let mut extra: Vec<Block> = Vec::new();
    for m in &lacking {
        for block in standard_text(*m, c) {
            if !extra.contains(&block) {
                extra.push(block);
            }
        }
    }
    // Nothing added: the first check stands.
    let (blocks, still) = if extra.is_empty() {
        (first, lacking.clone())
    } else {
        let blocks = assemble(&extra);
        let still = mentions::missing(c, &blocks);
        (blocks, still)
    };
    if !c.overrides.is_empty() {
        // Code de la consommation L.121-2 (misleading practice), and in every case: a letter
        // claiming a time-barred invoice does not threaten a court action the debtor would
        // defeat by pleading prescription. The default body leaves the consequences out;
        // custom wording that threatens one is refused.
        let terms = mentions::court_action_terms(&blocks);
        if !terms.is_empty() {
            return Err(vec![field_error(
                "compose.override_prescription",
                &format!(
                    "a letter claiming a time-barred invoice must not threaten a court action (Code de la consommation L.121-2), but its wording says: {}",
                    terms.join(", ")
                ),
            )]);
        }
    }
    if !still.is_empty() {
        return Err(still
            .into_iter()
            .map(|m| {
                field_error(
                    "compose",
                    &format!("the letter lacks a mandatory mention: {}", m.rule()),
                )
            })
            .collect());
    }
    let mentions = mentions::required(c, &blocks)
        .into_iter()
        .map(|m| MentionCheck {
            mention: m,
            rule: m.rule().to_string(),
            status: if lacking.contains(&m) {
                MentionStatus::Added
            } else {
                MentionStatus::Present
            },
        })
        .collect();
    Ok(ComposedLetter { blocks, mentions })
}

fn head(c: &Composition) -> Vec<Block> {
    let r = &c.request;
    let mut sender = Vec::new();
    match &r.agency {
        Some(a) => {
            sender.push(a.name.clone());
            sender.extend(a.address.0.iter().cloned());
        }
        None => {
            sender.push(r.creditor.name.clone());
            sender.extend(r.creditor.address.0.iter().cloned());
            if let Some(s) = &r.creditor.siren {
                sender.push(format!("SIREN {}", s.display()));
            }
        }
    }
    let mut recipient = vec![r.debtor.name.clone()];
    recipient.extend(r.debtor.address.0.iter().cloned());
    let mut references = vec!["Lettre recommandée électronique".to_string()];
    if let Some(a) = &r.agency {
        references.push(format!("Mandat : {}", a.mandate_reference));
    }
    if let Some(f) = &r.first_letter {
        // Code des procédures civiles d'exécution, art. R.124-4: later letters recall the first one's reference and date.
        references.push(format!(
            "Rappel de notre premier courrier : référence {} du {}",
            f.reference,
            french::date(f.date)
        ));
    }
    for n in r
        .prior_notices
        .iter()
        .filter(|n| n.kind == PriorNoticeKind::AgencyFirstLetter)
    {
        // R.124-4, last paragraph: the agency's later letters recall its first letter.
        references.push(format!(
            "Rappel du premier courrier de {} : référence {} du {}",
            r.agency.as_ref().map_or("l'agence", |a| a.name.as_str()),
            n.reference,
            french::date(n.date)
        ));
    }
    let numbers = invoice_numbers(c);
    let (title, subject) = match r.kind {
        LetterKind::MiseEnDemeure => (
            "Mise en demeure de payer".to_string(),
            format!(
                "Objet : mise en demeure de payer la somme de {} — facture{} n° {numbers}",
                french::euros(c.breakdown.totals.total_cents),
                plural(r.invoices.len())
            ),
        ),
        LetterKind::Relance => (
            "Relance pour impayé".to_string(),
            format!(
                "Objet : relance — facture{} impayée{} n° {numbers}",
                plural(r.invoices.len()),
                plural(r.invoices.len())
            ),
        ),
    };
    vec![
        Block::SenderAddress { lines: sender },
        Block::RecipientAddress { lines: recipient },
        Block::PlaceDate {
            text: place_date(c),
        },
        Block::References { lines: references },
        Block::Subject { text: subject },
        Block::Title { text: title },
        Block::Paragraph {
            text: "Madame, Monsieur,".into(),
        },
    ]
}

/// `Lyon, le 1er décembre 2026`: the writer's city (the agency's when one writes), given as
/// `city` or read from the address's last line; `Le 1er décembre 2026` when neither says it.
fn place_date(c: &Composition) -> String {
    let r = &c.request;
    let city = match &r.agency {
        Some(a) => a.city.clone().or_else(|| a.address.city()),
        None => r
            .creditor
            .city
            .clone()
            .or_else(|| r.creditor.address.city()),
    };
    let date = french::date(c.letter_date);
    match city {
        Some(city) => format!("{city}, le {date}"),
        None => format!("Le {date}"),
    }
}

fn default_body(c: &Composition) -> Vec<Block> {
    let mut body = vec![intro(c)];
    body.push(demand(c));
    // Never with a time-barred invoice claimed on override (see `Mention::applies`).
    if c.request.kind == LetterKind::MiseEnDemeure && c.overrides.is_empty() {
        body.push(consequences(c));
    }
    body
}

fn intro(c: &Composition) -> Block {
    let r = &c.request;
    let text = match &r.agency {
        Some(a) => format!(
            "{}, qui exerce une activité de recouvrement amiable de créances, vous écrit pour le compte du créancier {}, en vertu du mandat {} par lequel ce créancier lui a confié le recouvrement amiable de la créance décrite ci-dessous.",
            a.name,
            creditor_identity(c),
            a.mandate_reference
        ),
        None => format!(
            "Sauf erreur ou omission de notre part, {} n'a pas reçu le paiement des factures ci-dessous, arrivées à échéance.",
            creditor_identity(c)
        ),
    };
    Block::Paragraph { text }
}

fn demand(c: &Composition) -> Block {
    let total = french::euros(c.breakdown.totals.total_cents);
    let deadline = deadline_text(c.request.deadline_days);
    let text = match c.request.kind {
        LetterKind::MiseEnDemeure => format!(
            "Par la présente, nous vous mettons en demeure de payer la somme de {total} dans un délai de {deadline}."
        ),
        LetterKind::Relance => format!(
            "Nous vous remercions de bien vouloir régler la somme de {total} dans un délai de {deadline}."
        ),
    };
    Block::Paragraph { text }
}

fn consequences(c: &Composition) -> Block {
    let mut text = format!(
        "À défaut de paiement dans ce délai, {} pourra saisir sans autre avis la juridiction compétente pour obtenir le paiement de sa créance, par une requête en injonction de payer, un référé-provision ou une assignation en paiement.",
        c.request.creditor.name
    );
    // Code de procédure civile, art. 750-1: up to 5 000 €, an assignation is preceded by a
    // conciliation, médiation or procédure participative attempt (the injonction de payer
    // is not).
    if c.breakdown.totals.total_cents <= ART_750_1_MAX_CENTS {
        text.push(' ');
        text.push_str(ART_750_1_SENTENCE);
    }
    Block::Paragraph { text }
}

/// The standard text carrying a mention, added when the wording lacks it.
fn standard_text(m: Mention, c: &Composition) -> Vec<Block> {
    let r = &c.request;
    match m {
        Mention::MiseEnDemeureWords => vec![Block::Paragraph {
            text: "La présente lettre vaut mise en demeure.".into(),
        }],
        Mention::CreditorIdentity => vec![Block::Paragraph {
            text: format!("Créancier : {}.", creditor_identity(c)),
        }],
        Mention::DebtorIdentity => vec![Block::Paragraph {
            text: format!(
                "Débiteur : {}, {}.",
                r.debtor.name,
                r.debtor.address.one_line()
            ),
        }],
        Mention::Deadline | Mention::PaymentRequest => vec![demand(c)],
        Mention::Consequences => vec![consequences(c)],
        Mention::AgencyIdentity | Mention::AmicableCollection => vec![intro(c)],
        Mention::FirstLetterReference => r
            .first_letter
            .as_ref()
            .map(|f| Block::Paragraph {
                text: format!(
                    "Notre premier courrier : référence {} du {}.",
                    f.reference,
                    french::date(f.date)
                ),
            })
            .into_iter()
            .collect(),
        // Carried by the fixed sections, which no wording replaces.
        Mention::InvoiceReferences
        | Mention::AmountBreakdown
        | Mention::RatesUsed
        | Mention::MissingRateNotice
        | Mention::PaymentMethod
        | Mention::L111_8Text => Vec::new(),
    }
}

fn tail(c: &Composition) -> Vec<Block> {
    let r = &c.request;
    let mut out = claim_detail(c);
    out.extend(claim_composition(c));
    out.push(Block::Paragraph {
        text: interest_basis(c),
    });
    out.extend(payment_blocks(c));
    if !r.prior_notices.is_empty() {
        out.push(Block::Paragraph {
            text: prior_notices_text(c),
        });
    }
    out.extend(interest_periods(c));
    out.extend(rates_used(c));
    out.extend(payment_terms(c));

    if r.agency.is_some() {
        out.push(Block::Heading {
            text: "Article L.111-8 du code des procédures civiles d'exécution (alinéas 2 et 3)"
                .into(),
        });
        for text in [L111_8_PARAGRAPH_2, L111_8_PARAGRAPH_3] {
            out.push(Block::Quote {
                text: text.into(),
                source: "Code des procédures civiles d'exécution, art. L.111-8".into(),
            });
        }
    }

    out.push(Block::Paragraph {
        text: "Veuillez agréer, Madame, Monsieur, l'expression de nos salutations distinguées."
            .into(),
    });
    let signature = match &r.agency {
        Some(a) => vec![
            a.name.clone(),
            format!("pour le compte du créancier {}", r.creditor.name),
        ],
        None => vec![r.creditor.name.clone()],
    };
    out.push(Block::Signature { lines: signature });
    out
}

/// The heading, the basis of the claim and the invoice table.
fn claim_detail(c: &Composition) -> Vec<Block> {
    let r = &c.request;
    let b = &c.breakdown;
    let mut out = vec![Block::Heading {
        text: "Détail de la somme réclamée".into(),
    }];
    out.push(Block::Paragraph {
        text: format!(
            "Fondement de la créance : facture{} émise{} par {} et restée{} impayée{} à l'échéance.",
            plural(r.invoices.len()),
            plural(r.invoices.len()),
            r.creditor.name,
            plural(r.invoices.len()),
            plural(r.invoices.len())
        ),
    });
    let commercial = b.regime.is_late_payment_law();
    let mut header: Vec<String> = [
        "Facture",
        "Émise le",
        "Échéance",
        "Montant",
        "Déjà réglé",
        "Principal dû",
        "Intérêts",
    ]
    .map(String::from)
    .to_vec();
    if commercial {
        header.push("Indemnité forfaitaire".into());
    }
    header.push("Total".into());
    let rows = r
        .invoices
        .iter()
        .zip(&b.invoices)
        .map(|(i, a)| {
            let mut row = vec![
                i.number.clone(),
                french::short_date(i.issue_date),
                french::short_date(i.due_date),
                french::euros(a.amount_cents),
                french::euros(a.paid_cents),
                french::euros(a.principal_cents),
                french::euros(a.interest_cents),
            ];
            if commercial {
                row.push(french::euros(a.indemnity_cents));
            }
            row.push(french::euros(a.total_cents));
            row
        })
        .collect();
    let mut footer = vec![
        "Total".to_string(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        french::euros(b.totals.principal_cents),
        french::euros(b.totals.interest_cents),
    ];
    if commercial {
        footer.push(french::euros(b.totals.indemnity_cents));
    }
    footer.push(french::euros(b.totals.total_cents));
    out.push(Block::Table {
        header,
        rows,
        footer: vec![footer],
    });
    out
}

/// What the claimed sum is made of, and what it leaves out (L.111-8).
fn claim_composition(c: &Composition) -> Vec<Block> {
    let b = &c.breakdown;
    let commercial = b.regime.is_late_payment_law();
    let public = b.regime == InterestRegime::PublicProcurement;
    let mut out = Vec::new();
    // Code des procédures civiles d'exécution, art. R.124-4 3°: principal, interest and other sums, distinguished.
    let mut parts = vec![
        vec![
            "Principal restant dû".to_string(),
            french::euros(b.totals.principal_cents),
        ],
        vec![
            "Intérêts de retard".to_string(),
            french::euros(b.totals.interest_cents),
        ],
    ];
    if commercial {
        parts.push(vec![
            if public {
                "Autres sommes : indemnités forfaitaires pour frais de recouvrement (Code de la commande publique, art. L.2192-13 et D.2192-35)"
            } else {
                "Autres sommes : indemnités forfaitaires pour frais de recouvrement (Code de commerce, art. L.441-10 et D.441-5)"
            }
            .into(),
            french::euros(b.totals.indemnity_cents),
        ]);
    }
    out.push(Block::Table {
        header: vec!["Composition de la somme réclamée".into(), "Montant".into()],
        rows: parts,
        footer: vec![vec![
            "Total réclamé".into(),
            french::euros(b.totals.total_cents),
        ]],
    });
    out.push(Block::Paragraph {
        text: if public {
            "Ces sommes ne comprennent aucun frais de recouvrement à la charge du créancier (Code des procédures civiles d'exécution, art. L.111-8), hors l'indemnité forfaitaire de 40 € due de plein droit par l'acheteur public en retard de paiement (Code de la commande publique, art. L.2192-13 et D.2192-35)."
        } else if commercial {
            "Ces sommes ne comprennent aucun frais de recouvrement à la charge du créancier (Code des procédures civiles d'exécution, art. L.111-8), hors l'indemnité forfaitaire de 40 € due de plein droit par tout professionnel en retard de paiement (Code de commerce, art. L.441-10)."
        } else {
            "Ces sommes ne comprennent aucun frais de recouvrement : ils restent à la charge du créancier (Code des procédures civiles d'exécution, art. L.111-8)."
        }
        .into(),
    });
    out
}

/// The interest of each invoice, period by period, and how it was computed.
fn interest_periods(c: &Composition) -> Vec<Block> {
    let b = &c.breakdown;
    let mut out = Vec::new();
    // After a dated payment the principal changes: the table then shows it per period.
    let dated = b.invoices.iter().any(|a| !a.payments.is_empty());
    let periods: Vec<Vec<String>> = b
        .invoices
        .iter()
        .flat_map(|a| {
            a.periods.iter().map(move |p| {
                let mut row = vec![
                    a.number.clone(),
                    format!(
                        "du {} au {}",
                        french::short_date(p.from),
                        french::short_date(p.to)
                    ),
                ];
                if dated {
                    row.push(french::euros(p.principal_cents));
                }
                row.extend([
                    p.days.to_string(),
                    french::percent(p.rate_bp),
                    french::euros(p.interest_cents),
                ]);
                row
            })
        })
        .collect();
    if !periods.is_empty() {
        let mut header = vec!["Facture", "Période"];
        if dated {
            header.push("Principal");
        }
        header.extend(["Jours", "Taux annuel", "Intérêts"]);
        out.push(Block::Table {
            header: header.into_iter().map(String::from).collect(),
            rows: periods,
            footer: Vec::new(),
        });
        out.push(Block::Paragraph {
            text: "Intérêts calculés jour par jour sur le principal restant dû, du premier jour de retard à la date de la présente lettre incluse, sur la base du nombre réel de jours de l'année (365 ou 366), arrondis au centime.".into(),
        });
    }
    out
}

/// The reference rates applied, and a notice for each half-year our table does not hold yet.
fn rates_used(c: &Composition) -> Vec<Block> {
    let b = &c.breakdown;
    let mut out = Vec::new();
    if !b.rates_used.is_empty() {
        out.push(Block::Table {
            header: ["Semestre", "Taux de référence", "Valeur", "Source"]
                .map(String::from)
                .to_vec(),
            rows: b
                .rates_used
                .iter()
                .map(|u| {
                    vec![
                        mentions::half_year_fr(u.half_year),
                        u.rate.label_fr().to_string(),
                        french::percent(u.basis_points),
                        u.source.clone(),
                    ]
                })
                .collect(),
            footer: Vec::new(),
        });
    }
    for u in b
        .rates_used
        .iter()
        .filter(|u| u.half_year != u.table_half_year)
    {
        out.push(Block::Notice {
            text: format!(
                // Stated as a fact about our table, never as "not known": the value has
                // been published, the table just does not hold it yet.
                "Faute de valeur pour le {} dans notre table, le {} du {} a été appliqué ; le montant des intérêts pourra être ajusté.",
                mentions::half_year_fr(u.half_year),
                u.rate.label_fr(),
                mentions::half_year_fr(u.table_half_year)
            ),
        });
    }
    out
}

/// How to pay: transfer, link, instructions.
fn payment_terms(c: &Composition) -> Vec<Block> {
    let r = &c.request;
    let mut out = Vec::new();
    out.push(Block::Heading {
        text: "Modalités de paiement".into(),
    });
    let reference = r
        .agency
        .as_ref()
        .map_or_else(|| invoice_numbers(c), |a| a.mandate_reference.clone());
    if let Some(iban) = &r.payment.iban {
        out.push(Block::Paragraph {
            text: format!(
                "Par virement sur le compte IBAN {}, en indiquant la référence {reference}.",
                iban.display()
            ),
        });
    }
    if let Some(link) = &r.payment.link {
        out.push(Block::Paragraph {
            text: format!("En ligne : {}", link.as_str()),
        });
    }
    if let Some(instructions) = &r.payment.instructions {
        out.push(Block::Paragraph {
            text: instructions.clone(),
        });
    }
    out
}

/// The dated payments, their imputation (Code civil 1343-1) and the principal left; and,
/// for an invoice paid in full late, that no principal is claimed.
fn payment_blocks(c: &Composition) -> Vec<Block> {
    let b = &c.breakdown;
    let rows: Vec<Vec<String>> = b
        .invoices
        .iter()
        .flat_map(|a| {
            a.payments.iter().map(|p| {
                vec![
                    a.number.clone(),
                    french::short_date(p.date),
                    french::euros(p.amount_cents),
                    match p.imputation {
                        Imputation::InterestFirst => {
                            "intérêts puis principal (C. civ., art. 1343-1)"
                        }
                        Imputation::Principal => "principal d'abord (imputation convenue)",
                    }
                    .to_string(),
                    french::euros(p.to_interest_cents),
                    french::euros(p.to_principal_cents),
                    french::euros(p.principal_after_cents),
                ]
            })
        })
        .collect();
    if rows.is_empty() {
        return Vec::new();
    }
    let mut out = vec![
        Block::Table {
            header: [
                "Facture",
                "Paiement du",
                "Montant",
                "Imputation",
                "Sur les intérêts",
                "Sur le principal",
                "Principal restant dû",
            ]
            .map(String::from)
            .to_vec(),
            rows,
            footer: Vec::new(),
        },
        Block::Paragraph {
            text: "Chaque paiement partiel s'impute d'abord sur les intérêts échus à sa date, puis sur le principal, sauf imputation convenue sur le principal (Code civil, art. 1343-1) ; les intérêts courent ensuite sur le principal restant dû.".into(),
        },
    ];
    for a in b.invoices.iter().filter(|a| a.principal_cents == 0) {
        let last = a.payments.last().map(|p| p.date);
        out.push(Block::Paragraph {
            text: format!(
                "La facture {} a été payée en totalité{}, après son échéance : aucun principal n'est réclamé à ce titre ; seuls restent dus les intérêts de retard courus jusqu'au paiement{}.",
                a.number,
                last.map(|d| format!(" le {}", french::date(d))).unwrap_or_default(),
                if a.indemnity_cents > 0 {
                    " et l'indemnité forfaitaire de 40 €"
                } else {
                    ""
                }
            ),
        });
    }
    out
}

/// The earlier letters, who sent them, and what each changed.
fn prior_notices_text(c: &Composition) -> String {
    let r = &c.request;
    let agency = r.agency.as_ref().map_or("l'agence", |a| a.name.as_str());
    let items: Vec<String> = r
        .prior_notices
        .iter()
        .map(|n| {
            let kind = match n.kind {
                PriorNoticeKind::MiseEnDemeure => "mise en demeure",
                PriorNoticeKind::Relance => "relance",
                PriorNoticeKind::AgencyFirstLetter => "premier courrier de l'agence",
            };
            let by = match n.sent_by {
                NoticeSender::Creditor => format!("envoyée par {}", r.creditor.name),
                NoticeSender::Agency => format!("envoyée par {agency}"),
            };
            let covers = if n.invoices.is_empty() {
                String::new()
            } else {
                format!(
                    ", visant la facture{} n° {}",
                    plural(n.invoices.len()),
                    n.invoices.join(", ")
                )
            };
            format!(
                "{kind} référence {} du {}, {by}{covers}",
                n.reference,
                french::date(n.date)
            )
        })
        .collect();
    format!("Courriers antérieurs : {}.", items.join(" ; "))
}

fn interest_basis(c: &Composition) -> String {
    let r = &c.request;
    let b = &c.breakdown;
    if b.regime == InterestRegime::PublicProcurement {
        let fixed = b
            .invoices
            .iter()
            .filter_map(|a| a.periods.first().map(|p| (a, p)))
            .map(|(a, p)| {
                format!(
                    "facture {} : {} à compter du {}",
                    a.number,
                    french::percent(p.rate_bp),
                    french::date(p.from)
                )
            })
            .collect::<Vec<_>>();
        return format!(
            "Intérêts moratoires dus de plein droit et sans autre formalité dès le lendemain de l'échéance (Code de la commande publique, art. L.2192-13), au taux de la Banque centrale européenne appliqué à ses opérations principales de refinancement les plus récentes, en vigueur au premier jour du semestre au cours duquel les intérêts ont commencé à courir, majoré de 8 points, ce taux restant fixe pour toute la durée du retard (art. R.2192-31){}. Indemnité forfaitaire pour frais de recouvrement de 40 € par facture payée en retard (art. L.2192-13 et D.2192-35).",
            if fixed.is_empty() {
                String::new()
            } else {
                format!(" — {}", fixed.join(" ; "))
            }
        );
    }
    let floored = b
        .invoices
        .iter()
        .flat_map(|i| &i.periods)
        .any(|p| p.basis == RateBasis::ThreeTimesLegalFloor);
    match (b.regime, r.contract_rate_bp) {
        (InterestRegime::Commercial, None) => "Intérêts de retard dus de plein droit, sans qu'un rappel soit nécessaire, à compter du jour suivant la date d'échéance (Code de commerce, art. L.441-10) : taux de la Banque centrale européenne appliqué à son opération de refinancement la plus récente, en vigueur au 1er janvier ou au 1er juillet de chaque semestre, majoré de 10 points. Indemnité forfaitaire pour frais de recouvrement de 40 € par facture payée en retard (Code de commerce, art. D.441-5).".into(),
        (InterestRegime::Commercial, Some(bp)) => format!(
            "Intérêts de retard dus de plein droit, sans qu'un rappel soit nécessaire, à compter du jour suivant la date d'échéance (Code de commerce, art. L.441-10), au taux contractuel de {}, qui ne peut être inférieur à trois fois le taux de l'intérêt légal{}. Indemnité forfaitaire pour frais de recouvrement de 40 € par facture payée en retard (Code de commerce, art. D.441-5).",
            french::percent(bp),
            if floored { " : ce minimum s'applique aux semestres où le taux contractuel lui était inférieur" } else { "" }
        ) + " Lecture retenue de l'article L.441-10 : le minimum est de trois fois le taux de l'intérêt légal (autres cas) de chaque semestre, comparé semestre par semestre au taux contractuel.",
        (InterestRegime::Civil, Some(bp)) => format!(
            "Intérêts de retard au taux contractuel de {}, à compter du jour suivant la date d'échéance.",
            french::percent(bp)
        ),
        (InterestRegime::PublicProcurement, _) => String::new(),
        (InterestRegime::Civil, None) if !r.prior_notices.is_empty() => {
            let which = match r.creditor.kind {
                CreditorKind::Professional => "",
                CreditorKind::PrivatePerson => " applicable aux créances des personnes physiques n'agissant pas pour des besoins professionnels",
            };
            let per_invoice: Vec<String> = b
                .invoices
                .iter()
                .map(|a| match (&a.notice_reference, a.interest_from) {
                    (Some(reference), Some(from)) => format!(
                        "facture {} : à compter du {}, lendemain de la mise en demeure référence {reference}",
                        a.number,
                        french::date(from)
                    ),
                    _ => format!(
                        "facture {} : aucun intérêt avant la présente lettre, faute de mise en demeure antérieure la visant",
                        a.number
                    ),
                })
                .collect();
            format!(
                "Intérêts au taux de l'intérêt légal{which}, dus seulement à compter d'une mise en demeure visant la facture (Code civil, art. 1231-6 et 1344-1) — {}.",
                per_invoice.join(" ; ")
            )
        }
        (InterestRegime::Civil, None) => {
            let which = match r.creditor.kind {
                CreditorKind::Professional => "",
                CreditorKind::PrivatePerson => " applicable aux créances des personnes physiques n'agissant pas pour des besoins professionnels",
            };
            match b.formal_notice_date {
                Some(d) if d < c.letter_date => format!(
                    "Intérêts au taux de l'intérêt légal{which} à compter de la mise en demeure du {} (Code civil, art. 1231-6).",
                    french::date(d)
                ),
                Some(_) => format!(
                    "Les intérêts au taux de l'intérêt légal{which} courent à compter de la présente mise en demeure (Code civil, art. 1231-6) ; aucun intérêt n'est réclamé à ce jour."
                ),
                None => "Aucun intérêt de retard n'est réclamé à ce stade.".into(),
            }
        }
    }
}

/// `Nom, adresse (SIREN …)`.
fn creditor_identity(c: &Composition) -> String {
    let cr = &c.request.creditor;
    let siren = cr
        .siren
        .as_ref()
        .map(|s| format!(" (SIREN {})", s.display()))
        .unwrap_or_default();
    format!("{}, {}{siren}", cr.name, cr.address.one_line())
}

fn invoice_numbers(c: &Composition) -> String {
    c.request
        .invoices
        .iter()
        .map(|i| i.number.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: usize) -> &'static str {
    if n > 1 { "s" } else { "" }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use time::macros::date;

    use super::*;
    use crate::domain::collection::request::PostalAddress;
    use crate::domain::collection::{ComposeRequest, RatesTable};

    fn place_line(creditor: Value, agency: Option<Value>) -> String {
        let mut request = json!({
            "kind": "relance",
            "creditor": creditor,
            "debtor": {"name": "Boulangerie Martin", "address": "3 place du Marché\n38000 Grenoble", "kind": "professional"},
            "invoices": [{"number": "F-1", "issue_date": "2026-10-01", "due_date": "2026-10-31", "amount_cents": 10_000}],
            "payment": {"instructions": "Chèque à l'ordre du créancier"}
        });
        if let Some(agency) = agency {
            request["agency"] = agency;
        }
        let c = ComposeRequest::parse(&request, date!(2026 - 12 - 01), &RatesTable::embedded())
            .unwrap_or_else(|e| panic!("{e:?}"));
        let letter = write_letter(&c, None).unwrap_or_else(|e| panic!("{e:?}"));
        letter
            .blocks
            .iter()
            .find_map(|b| match b {
                Block::PlaceDate { text } => Some(text.clone()),
                _ => None,
            })
            .expect("a place and date line")
    }

    #[test]
    fn the_letter_is_dated_from_the_writers_city() {
        let creditor = json!({"name": "Atelier Durand", "address": "12 rue des Lilas\n69002 Lyon"});
        assert_eq!(
            place_line(creditor.clone(), None),
            "Lyon, le 1er décembre 2026"
        );
        // The agency writes: its city.
        let agency = json!({"name": "Recouvr SAS", "address": ["8 avenue Foch", "75116 PARIS CEDEX 16"], "mandate_reference": "M-1"});
        assert_eq!(
            place_line(creditor.clone(), Some(agency.clone())),
            "Paris, le 1er décembre 2026"
        );
        let mut named = agency;
        named["city"] = json!("Neuilly-sur-Seine");
        assert_eq!(
            place_line(creditor, Some(named)),
            "Neuilly-sur-Seine, le 1er décembre 2026"
        );
        let with_city = json!({"name": "Atelier Durand", "address": "12 rue des Lilas\n69002 Lyon", "city": "Villeurbanne"});
        assert_eq!(
            place_line(with_city, None),
            "Villeurbanne, le 1er décembre 2026"
        );
        // No postal code to read the city from: only the date.
        let abroad =
            json!({"name": "Atelier Durand", "address": "Rue du Rhône 12\nCH-1204 Genève"});
        assert_eq!(place_line(abroad, None), "Le 1er décembre 2026");
    }

    #[test]
    fn a_bad_city_is_refused_with_its_path() {
        let request = json!({
            "kind": "relance",
            "creditor": {"name": "Atelier Durand", "address": "69002 Lyon", "city": "  "},
            "agency": {"name": "Recouvr SAS", "address": "75116 Paris", "mandate_reference": "M-1", "city": "x".repeat(101)},
            "debtor": {"name": "Boulangerie Martin", "address": "38000 Grenoble", "kind": "professional"},
            "invoices": [{"number": "F-1", "issue_date": "2026-10-01", "due_date": "2026-10-31", "amount_cents": 10_000}],
            "payment": {"instructions": "Chèque"}
        });
        let errors =
            ComposeRequest::parse(&request, date!(2026 - 12 - 01), &RatesTable::embedded())
                .expect_err("refused");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"compose.creditor.city"), "{errors:?}");
        assert!(fields.contains(&"compose.agency.city"), "{errors:?}");
    }

    #[test]
    fn the_city_is_read_from_the_postal_codes_line() {
        let city =
            |lines: &[&str]| PostalAddress(lines.iter().map(|l| l.to_string()).collect()).city();
        assert_eq!(city(&["3 rue X", "69002 Lyon"]).as_deref(), Some("Lyon"));
        assert_eq!(
            city(&["42100 SAINT-ÉTIENNE"]).as_deref(),
            Some("Saint-Étienne")
        );
        assert_eq!(
            city(&["BP 12", "75008 Paris Cedex 08"]).as_deref(),
            Some("Paris")
        );
        assert_eq!(
            city(&["13001 Marseille 1er"]).as_deref(),
            Some("Marseille 1er")
        );
        assert_eq!(city(&["69002"]), None);
        assert_eq!(city(&["Lyon"]), None);
        assert_eq!(city(&["6900 Lyon"]), None);
        assert_eq!(city(&["69002 CEDEX"]), None);
    }
}
