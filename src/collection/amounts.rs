//! What the debtor owes on the letter date, in integer cents: per invoice the principal
//! outstanding, late interest period by period, the fixed recovery indemnity, and totals.
//!
//! Conventions (printed on the letter and returned by the API):
//! - **Regime.** Between professionals (creditor and debtor both professional), Code de
//!   commerce L.441-10 II: interest is due without any reminder from the day after the due
//!   date, at the contractual rate if one is given — never below three times the legal rate
//!   ("autres cas") of the half-year — else at the ECB main refinancing rate in force on
//!   1 January / 1 July plus 10 points; and D.441-5 adds a fixed **€40 indemnity per late
//!   invoice**. In every other case (consumer debtor, or private-person creditor), Code civil
//!   1231-6: legal-rate interest runs only from a mise en demeure — from the first one's date
//!   (`first_letter` with kind `mise_en_demeure`), so none before it — at the legal rate of
//!   each half-year (the creditor's kind chooses which legal rate); a contractual rate given
//!   in the request applies instead, from the day after the due date (the contract is taken
//!   to make the debt bear interest on its own, Code civil 1344); **never an indemnity**.
//! - **Days.** Interest runs from its start day to the letter date, both included (a due date
//!   of 10 January and a letter of 11 January make one day). Periods are cut at each
//!   half-year (1 January, 1 July), so each lies in one calendar year; a period's interest is
//!   `principal × rate × days / days of that year (365 or 366)` ("actual/actual").
//! - **Rounding.** The exact interest of an invoice (a sum of fractions) is rounded once,
//!   half up, to the cent. Each period shows the difference of the rounded running totals,
//!   so the periods add up exactly to the invoice's interest.
//! - Interest is computed on the principal outstanding on the letter date over the whole
//!   time (without the dates of partial payments, a conservative figure).

use serde::Serialize;
use time::Date;

use super::rates::{HalfYear, RateLookup, RatesTable, ReferenceRate};
use super::request::{ComposeRequest, CreditorKind, LetterKind, MAX_AMOUNT_CENTS};
use crate::letter::{FieldError, RecipientKind, field_error};

/// Code de commerce D.441-5: the fixed indemnity for recovery costs, per late invoice.
pub const RECOVERY_INDEMNITY_CENTS: i64 = 4_000;
/// L.441-10 II: ECB rate "majoré de 10 points de pourcentage".
pub const ECB_MARGIN_BP: i64 = 1_000;
/// L.441-10 II: a contractual rate may not be below three times the legal rate.
pub const LEGAL_RATE_FLOOR_MULTIPLE: i64 = 3;

/// Which law sets interest and indemnity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InterestRegime {
    /// Between professionals: Code de commerce L.441-10 and D.441-5.
    Commercial,
    /// Any other case: Code civil 1231-6 (interest from a mise en demeure), no indemnity.
    Civil,
}

impl InterestRegime {
    /// The regime for this creditor and debtor.
    pub fn of(creditor: CreditorKind, debtor: RecipientKind) -> InterestRegime {
        match (creditor, debtor) {
            (CreditorKind::Professional, RecipientKind::Professional) => InterestRegime::Commercial,
            _ => InterestRegime::Civil,
        }
    }
}

/// How the rate of a period was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateBasis {
    /// ECB main refinancing rate + 10 points (L.441-10 II).
    EcbPlusTenPoints,
    /// The contractual rate.
    Contract,
    /// The contractual rate was below three times the legal rate: that floor applies.
    ThreeTimesLegalFloor,
    /// The legal rate (Code civil 1231-6).
    Legal,
}

/// Interest over one stretch of days at one rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InterestPeriod {
    /// First day counted.
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "crate::collection::french::iso_date::serialize")]
    pub from: Date,
    /// Last day counted.
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "crate::collection::french::iso_date::serialize")]
    pub to: Date,
    /// Days counted (both ends included).
    pub days: i64,
    /// Days of that year (365 or 366).
    pub year_days: i64,
    /// Yearly rate applied, in basis points.
    pub rate_bp: i64,
    /// How that rate was obtained.
    pub basis: RateBasis,
    /// The published rate it rests on, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<ReferenceRate>,
    /// That published rate's value, in basis points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_bp: Option<i64>,
    /// Where the published rate comes from (or "contrat").
    pub source: String,
    /// Interest of the period, in cents (see the module's rounding rule).
    pub interest_cents: i64,
}

/// One invoice's amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InvoiceAmounts {
    /// Invoice number.
    pub number: String,
    /// Invoiced amount, in cents.
    pub amount_cents: i64,
    /// Already paid, in cents.
    pub paid_cents: i64,
    /// Principal outstanding, in cents.
    pub principal_cents: i64,
    /// Late interest to the letter date, in cents.
    pub interest_cents: i64,
    /// Fixed recovery indemnity (D.441-5), in cents: 0 or 4000.
    pub indemnity_cents: i64,
    /// Principal + interest + indemnity.
    pub total_cents: i64,
    /// First day of interest, when interest runs.
    #[schema(value_type = Option<String>, format = Date)]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::collection::french::iso_date::option::serialize")]
    pub interest_from: Option<Date>,
    /// Interest periods.
    pub periods: Vec<InterestPeriod>,
}

/// Totals over all invoices, in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Totals {
    /// Principal outstanding.
    pub principal_cents: i64,
    /// Late interest.
    pub interest_cents: i64,
    /// Fixed recovery indemnities (other sums).
    pub indemnity_cents: i64,
    /// Everything claimed.
    pub total_cents: i64,
}

/// A published rate the computation used, with its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RateUsed {
    /// Which rate.
    pub rate: ReferenceRate,
    /// The half-year it was applied to.
    #[schema(value_type = String, example = "2026-H1")]
    pub half_year: HalfYear,
    /// Its value, in basis points.
    pub basis_points: i64,
    /// The half-year of the table entry used (differs when that half-year is missing).
    #[schema(value_type = String, example = "2026-H1")]
    pub table_half_year: HalfYear,
    /// Where it comes from.
    pub source: String,
}

/// The amounts of a letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Breakdown {
    /// The law applied.
    pub regime: InterestRegime,
    /// Date from which a consumer's legal interest runs (the first mise en demeure), if known.
    #[schema(value_type = Option<String>, format = Date)]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::collection::french::iso_date::option::serialize")]
    pub formal_notice_date: Option<Date>,
    /// Per invoice, in the request's order.
    pub invoices: Vec<InvoiceAmounts>,
    /// Totals.
    pub totals: Totals,
    /// Every published rate used.
    pub rates_used: Vec<RateUsed>,
}

/// Computes the breakdown; errors name the invoice whose interest needs a rate the table
/// does not have (the table starts later than its due date).
pub fn compute(
    request: &ComposeRequest,
    letter_date: Date,
    rates: &RatesTable,
) -> Result<Breakdown, Vec<FieldError>> {
    let regime = InterestRegime::of(request.creditor.kind, request.debtor.kind);
    // Code civil 1231-6: a consumer's legal interest runs from the (first) mise en demeure.
    let formal_notice_date = request
        .first_letter
        .as_ref()
        .filter(|f| f.kind == Some(LetterKind::MiseEnDemeure))
        .map(|f| f.date)
        .or((request.kind == LetterKind::MiseEnDemeure).then_some(letter_date));
    let legal_rate = match request.creditor.kind {
        CreditorKind::Professional => ReferenceRate::LegalOther,
        CreditorKind::PrivatePerson => ReferenceRate::LegalPrivateCreditor,
    };

    let mut errors = Vec::new();
    let mut rates_used: Vec<RateUsed> = Vec::new();
    let mut invoices = Vec::with_capacity(request.invoices.len());
    for (i, invoice) in request.invoices.iter().enumerate() {
        let principal = invoice.amount_cents - invoice.paid_cents;
        let overdue = invoice.due_date < letter_date;
        let interest_from = match (regime, request.contract_rate_bp) {
            (InterestRegime::Commercial, _) | (InterestRegime::Civil, Some(_)) => {
                invoice.due_date.next_day()
            }
            // Code civil 1231-6, 1344-1: interest runs from the day after a mise en demeure
            // that covered this invoice. An earlier notice covers only the invoices already
            // overdue on its date (it cannot have claimed what was not yet owed); any other
            // invoice runs only from the present letter, i.e. earns nothing before it.
            (InterestRegime::Civil, None) => formal_notice_date
                .map(|notice| {
                    if invoice.due_date < notice {
                        notice
                    } else {
                        letter_date
                    }
                })
                .and_then(Date::next_day),
        }
        .filter(|from| *from <= letter_date);

        let mut periods = Vec::new();
        let mut missing_rate = None;
        if let Some(from) = interest_from {
            let mut start = from;
            loop {
                let half_year = HalfYear::of(start);
                let end = half_year.last_day().min(letter_date);
                let rate = period_rate(
                    regime,
                    request.contract_rate_bp,
                    legal_rate,
                    half_year,
                    rates,
                );
                let Some((rate_bp, basis, lookup)) = rate else {
                    missing_rate = Some(half_year);
                    break;
                };
                if let Some(l) = &lookup {
                    let used = RateUsed {
                        rate: l.0,
                        half_year,
                        basis_points: l.1.basis_points,
                        table_half_year: l.1.from_half_year,
                        source: l.1.source.clone(),
                    };
                    if !rates_used.contains(&used) {
                        rates_used.push(used);
                    }
                }
                let year_days = i64::from(time::util::days_in_year(start.year()));
                periods.push(InterestPeriod {
                    from: start,
                    to: end,
                    days: (end - start).whole_days() + 1,
                    year_days,
                    rate_bp,
                    basis,
                    reference: lookup.as_ref().map(|l| l.0),
                    reference_bp: lookup.as_ref().map(|l| l.1.basis_points),
                    source: lookup.as_ref().map_or_else(
                        || "taux prévu au contrat".to_string(),
                        |l| l.1.source.clone(),
                    ),
                    interest_cents: 0,
                });
                match end.next_day() {
                    Some(next) if next <= letter_date => start = next,
                    _ => break,
                }
            }
        }
        if let Some(half_year) = missing_rate {
            errors.push(field_error(
                &format!("compose.invoices[{i}].due_date"),
                &format!(
                    "interest for {half_year} needs a rate the rates table does not have (it starts in {}); the operator can supply an updated table",
                    rates
                        .first_half_year()
                        .map_or_else(|| "-".to_string(), |h| h.to_string())
                ),
            ));
            continue;
        }
        let interest = allocate_interest(principal, &mut periods);
        let indemnity = if regime == InterestRegime::Commercial && overdue {
            RECOVERY_INDEMNITY_CENTS
        } else {
            0
        };
        invoices.push(InvoiceAmounts {
            number: invoice.number.clone(),
            amount_cents: invoice.amount_cents,
            paid_cents: invoice.paid_cents,
            principal_cents: principal,
            interest_cents: interest,
            indemnity_cents: indemnity,
            total_cents: principal.saturating_add(interest).saturating_add(indemnity),
            interest_from: if periods.is_empty() {
                None
            } else {
                interest_from
            },
            periods,
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let sum =
        |f: fn(&InvoiceAmounts) -> i64| invoices.iter().map(|i| i128::from(f(i))).sum::<i128>();
    let totals = (
        sum(|i| i.principal_cents),
        sum(|i| i.interest_cents),
        sum(|i| i.indemnity_cents),
        sum(|i| i.total_cents),
    );
    let fits = |v: i128| i64::try_from(v).ok().filter(|v| *v <= MAX_AMOUNT_CENTS);
    let (Some(principal_cents), Some(interest_cents), Some(indemnity_cents), Some(total_cents)) = (
        fits(totals.0),
        fits(totals.1),
        fits(totals.2),
        fits(totals.3),
    ) else {
        return Err(vec![field_error(
            "compose.invoices",
            "the total claimed exceeds 2^53 - 1 cents",
        )]);
    };
    Ok(Breakdown {
        regime,
        formal_notice_date: if regime == InterestRegime::Civil {
            formal_notice_date
        } else {
            None
        },
        invoices,
        totals: Totals {
            principal_cents,
            interest_cents,
            indemnity_cents,
            total_cents,
        },
        rates_used,
    })
}

/// A yearly rate in basis points, how it was obtained, and the table lookup behind it.
type PeriodRate = (i64, RateBasis, Option<(ReferenceRate, RateLookup)>);

/// The yearly rate for a half-year, how it was obtained, and the table lookup behind it.
fn period_rate(
    regime: InterestRegime,
    contract_bp: Option<i64>,
    legal_rate: ReferenceRate,
    half_year: HalfYear,
    rates: &RatesTable,
) -> Option<PeriodRate> {
    match (regime, contract_bp) {
        (InterestRegime::Commercial, Some(contract)) => {
            // L.441-10 II: "ne peut être inférieur à trois fois le taux d'intérêt légal".
            let legal = rates.lookup(ReferenceRate::LegalOther, half_year)?;
            let floor = LEGAL_RATE_FLOOR_MULTIPLE * legal.basis_points;
            if contract < floor {
                Some((
                    floor,
                    RateBasis::ThreeTimesLegalFloor,
                    Some((ReferenceRate::LegalOther, legal)),
                ))
            } else {
                Some((
                    contract,
                    RateBasis::Contract,
                    Some((ReferenceRate::LegalOther, legal)),
                ))
            }
        }
        (InterestRegime::Commercial, None) => {
            let ecb = rates.lookup(ReferenceRate::EcbMainRefinancing, half_year)?;
            Some((
                ecb.basis_points + ECB_MARGIN_BP,
                RateBasis::EcbPlusTenPoints,
                Some((ReferenceRate::EcbMainRefinancing, ecb)),
            ))
        }
        (InterestRegime::Civil, Some(contract)) => Some((contract, RateBasis::Contract, None)),
        (InterestRegime::Civil, None) => {
            let legal = rates.lookup(legal_rate, half_year)?;
            Some((
                legal.basis_points,
                RateBasis::Legal,
                Some((legal_rate, legal)),
            ))
        }
    }
}

/// Fills each period's interest and returns the invoice's interest, rounded once.
fn allocate_interest(principal: i64, periods: &mut [InterestPeriod]) -> i64 {
    // Common denominator of every period: 10 000 bp × 365 × 366 days.
    const DENOMINATOR: i128 = 10_000 * 365 * 366;
    let mut exact: i128 = 0;
    let mut rounded_so_far: i64 = 0;
    for p in periods.iter_mut() {
        let scale = 365 * 366 / i128::from(p.year_days);
        exact += i128::from(principal) * i128::from(p.rate_bp) * i128::from(p.days) * scale;
        // Half up: floor((2·n + d) / 2d) for n ≥ 0.
        let rounded = (2 * exact + DENOMINATOR) / (2 * DENOMINATOR);
        // Bounded by principal (< 2^53) × rate (≤ 100 % + margin) × the days elapsed.
        let rounded = i64::try_from(rounded).unwrap_or(i64::MAX);
        p.interest_cents = rounded - rounded_so_far;
        rounded_so_far = rounded;
    }
    rounded_so_far
}
