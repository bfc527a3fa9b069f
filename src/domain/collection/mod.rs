//! The debt-collection letter composer: from a `compose` object (creditor, debtor, invoices,
//! kind of letter) to the French text of a relance or a mise en demeure, with the amounts
//! owed, the legal checks and the mandatory mentions. Pure: no I/O, the letter date and the
//! rates table are arguments.
//!
//! The steps, in order:
//! 1. [`ComposeRequest::parse`] checks the request ([`request`]), the prescription of each
//!    invoice ([`prescription`]) and computes the amounts ([`amounts`]) with the dated
//!    [`RatesTable`] — every problem is reported at once, as [`FieldError`]s for a 422.
//! 2. [`write_letter`] turns the [`Composition`] into renderer-agnostic [`Block`]s, with the
//!    tenant's custom wording if any ([`Wording`]), then checks the mandatory mentions on the
//!    final blocks ([`mentions`]) and adds what custom wording left out.
//! 3. [`ComposedLetter::summary`] is what the API answers and the evidence records:
//!    breakdown, rates used, warnings, prescription overrides, mentions checked.

pub mod amounts;
pub mod blocks;
pub mod mentions;
pub mod pdf;
pub mod prescription;
pub mod rates;
pub mod request;
pub mod wording;

use serde::Serialize;
use time::Date;

pub use amounts::{Breakdown, InterestRegime, InvoiceAmounts, Totals};
pub use blocks::{Block, ComposedLetter, write_letter};
pub use mentions::{Mention, MentionCheck, MentionStatus};
pub use prescription::{Prescription, PrescriptionStatus};
pub use rates::{HalfYear, MissingRate, RatesError, RatesTable, ReferenceRate};
pub use request::{ComposeRequest, LetterKind};
pub use wording::Wording;

use crate::domain::letter::{FieldError, field_error};

/// Something the sender should know; it does not stop the letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Warning {
    /// Stable code: `rate_missing`, `prescription_near`, `prescription_overridden`,
    /// `consumer_interest_not_claimed`.
    pub code: String,
    /// What it means, in English for the API reader.
    pub message: String,
    /// The invoice concerned, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice: Option<String>,
    /// Whether the letter itself states it (missing rates do; prescription never does:
    /// the letter is the debtor's).
    pub on_letter: bool,
}

/// A time-barred invoice claimed anyway because the request said `override_prescription`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PrescriptionOverride {
    /// Invoice number.
    pub invoice: String,
    /// The limit that passed.
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "crate::core::french::iso_date::serialize")]
    pub limit: Date,
    /// The rule that set it.
    pub rule: String,
}

/// A checked request with everything computed: ready to be written as a letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composition {
    /// The checked request.
    pub request: ComposeRequest,
    /// The letter's date (amounts, interest and prescription are as of that day).
    pub letter_date: Date,
    /// Amounts owed.
    pub breakdown: Breakdown,
    /// Prescription of each invoice.
    pub prescription: Vec<Prescription>,
    /// Warnings for the sender (some also printed on the letter).
    pub warnings: Vec<Warning>,
    /// Time-barred invoices claimed on the sender's explicit override.
    pub overrides: Vec<PrescriptionOverride>,
}

impl ComposeRequest {
    /// Checks the `compose` object of `POST /v1/letters` for a letter dated `letter_date`
    /// and computes what is owed with `rates`. Every missing or invalid element is
    /// reported at once (paths like `compose.invoices[1].due_date`), including time-barred
    /// invoices when `override_prescription` is not set.
    pub fn parse(
        value: &serde_json::Value,
        letter_date: Date,
        rates: &RatesTable,
    ) -> Result<Composition, Vec<FieldError>> {
        let request = match ComposeRequest::check(value, letter_date) {
            Ok(request) => request,
            Err(mut errors) => {
                // Time-barred invoices are reported with the other problems, not after them.
                errors.extend(request::time_barred_in_partial(value, letter_date));
                return Err(errors);
            }
        };
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut overrides = Vec::new();
        let mut prescriptions = Vec::with_capacity(request.invoices.len());
        for (i, invoice) in request.invoices.iter().enumerate() {
            // Code de commerce L.622-7, L.622-21: once collective proceedings are opened, a
            // debt born before the judgment can neither be paid nor claimed individually;
            // it is declared to the mandataire judiciaire (L.622-24). The debt is born when
            // the goods were delivered or the service performed.
            if let Some(insolvency) = request.debtor.insolvency
                && invoice.performed_on < insolvency.opened_on
            {
                errors.push(field_error(
                    &format!("compose.invoices[{i}]"),
                    &format!(
                        "the debt was born on {} (performed_on), before the judgment of {} opening {} proceedings against the debtor: it cannot be claimed by letter (Code de commerce L.622-7, L.622-21); the creditor must declare the claim to the mandataire judiciaire (L.622-24)",
                        invoice.performed_on,
                        insolvency.opened_on,
                        insolvency.kind.label_fr()
                    ),
                ));
            }
            let p = prescription::assess(invoice, request.parties(), letter_date);
            match p.status {
                PrescriptionStatus::TimeBarred if request.override_prescription => {
                    warnings.push(Warning {
                        code: "prescription_overridden".into(),
                        message: format!(
                            "invoice {} is time-barred since {} ({}) unless interrupted or suspended (Code civil 2240, 2241, 2244, 2238); claimed because override_prescription is true, and recorded in the evidence",
                            invoice.number, p.limit, p.rule
                        ),
                        invoice: Some(invoice.number.clone()),
                        on_letter: false,
                    });
                    overrides.push(PrescriptionOverride {
                        invoice: invoice.number.clone(),
                        limit: p.limit,
                        rule: p.rule.clone(),
                    });
                }
                PrescriptionStatus::TimeBarred => errors.push(time_barred_error(i, &p)),
                PrescriptionStatus::Near => warnings.push(Warning {
                    code: "prescription_near".into(),
                    message: format!(
                        "invoice {} becomes time-barred after {} ({} days left; {})",
                        invoice.number, p.limit, p.days_left, p.rule
                    ),
                    invoice: Some(invoice.number.clone()),
                    on_letter: false,
                }),
                PrescriptionStatus::Open => {}
            }
            prescriptions.push(p);
        }
        let breakdown = match amounts::compute(&request, letter_date, rates) {
            Ok(b) => Some(b),
            Err(mut e) => {
                errors.append(&mut e);
                None
            }
        };
        let Some(breakdown) = breakdown.filter(|_| errors.is_empty()) else {
            return Err(errors);
        };
        let mut missing: Vec<(ReferenceRate, HalfYear, HalfYear)> = Vec::new();
        for used in &breakdown.rates_used {
            if used.table_half_year != used.half_year {
                let key = (used.rate, used.half_year, used.table_half_year);
                if !missing.contains(&key) {
                    missing.push(key);
                }
            }
        }
        if rates.missing_rate() == MissingRate::Refuse && !missing.is_empty() {
            // `[collection] missing_rate = "refuse"`: the operator prefers no letter to one
            // whose interest rests on a stand-in rate.
            return Err(missing
                .iter()
                .map(|(rate, half_year, used)| {
                    field_error(
                        "compose.invoices",
                        &format!(
                            "the rates table has no {} for {half_year} and missing_rate is \"refuse\": the letter is not composed (the latest value is {used}); the operator must add {half_year} to the table",
                            rate_name(*rate)
                        ),
                    )
                })
                .collect());
        }
        for (rate, half_year, used) in missing {
            warnings.push(Warning {
                code: "rate_missing".into(),
                message: format!(
                    "the rates table has no {} for {half_year}: the {used} value was used; the operator can supply an updated table",
                    rate_name(rate)
                ),
                invoice: None,
                on_letter: true,
            });
        }
        if breakdown.regime == InterestRegime::Civil
            && request.contract_rate_bp.is_none()
            && breakdown.totals.interest_cents == 0
            && request.first_letter.is_some()
            && request
                .first_letter
                .as_ref()
                .is_some_and(|f| f.kind.is_none())
        {
            warnings.push(Warning {
                code: "consumer_interest_not_claimed".into(),
                message: "no interest is claimed: legal interest runs only from a first mise en demeure (Code civil 1231-6); set first_letter.kind to \"mise_en_demeure\" if the first letter was one".into(),
                invoice: None,
                on_letter: false,
            });
        }
        Ok(Composition {
            request,
            letter_date,
            breakdown,
            prescription: prescriptions,
            warnings,
            overrides,
        })
    }
}

/// The rate's API name (`legal_other`, …).
fn rate_name(rate: ReferenceRate) -> String {
    serde_json::to_value(rate)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The error for invoice `i`, time-barred without an override.
fn time_barred_error(i: usize, p: &Prescription) -> FieldError {
    field_error(
        &format!("compose.invoices[{i}].due_date"),
        &format!(
            "the invoice is time-barred unless interrupted or suspended (Code civil 2240, 2241, 2244, 2238): the last day to claim it was {} ({}); set override_prescription to claim it anyway",
            p.limit, p.rule
        ),
    )
}

/// A party of the claim, as the summary names it (the proofs and the API show it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PartySummary {
    /// Name or company name.
    pub name: String,
    /// SIREN, when given (creditor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub siren: Option<String>,
    /// `professional`, `private_person` (creditor) or `consumer` (debtor); absent for an
    /// agency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// How the debtor can pay, as the letter says it (Code des procédures civiles
/// d'exécution, art. R.124-4 4°); the recipient's page repeats it once the letter is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PaymentSummary {
    /// Payment page (`https://`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// IBAN, in groups of four.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iban: Option<String>,
    /// Free instructions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

/// What the API answers and the deposit evidence records about a composed letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CompositionSummary {
    /// Relance or mise en demeure.
    pub kind: LetterKind,
    /// Who is owed.
    pub creditor: PartySummary,
    /// The collection agency writing for the creditor, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agency: Option<PartySummary>,
    /// Who owes.
    pub debtor: PartySummary,
    /// How to pay.
    pub payment: PaymentSummary,
    /// The letter's date.
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "crate::core::french::iso_date::serialize")]
    pub letter_date: Date,
    /// Days given to pay after receipt.
    pub deadline_days: u8,
    /// Amounts, rates used and the regime applied.
    pub breakdown: Breakdown,
    /// Prescription of each invoice.
    pub prescription: Vec<Prescription>,
    /// Warnings.
    pub warnings: Vec<Warning>,
    /// Time-barred invoices claimed on the sender's override.
    pub prescription_overrides: Vec<PrescriptionOverride>,
    /// `true` when at least one time-barred invoice is claimed on the override: the letter
    /// then threatens no court action. Absent otherwise, so that the summaries of letters
    /// without an override keep their exact form.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub prescription_overridden: bool,
    /// Each mandatory mention and whether the wording had it or it was added.
    pub mentions: Vec<MentionCheck>,
}

#[cfg(test)]
mod tests;
