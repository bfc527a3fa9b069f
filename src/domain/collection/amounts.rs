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
//! - **Payments.** The undated `paid_cents` is deducted from the principal for the whole
//!   time (as if paid before interest began: without its date, the conservative figure).
//!   Dated `payments` are applied in date order (Code civil 1343-1): interest accrues on
//!   the principal outstanding up to and including the payment day; the payment goes
//!   first to the interest accrued until then (rounded running total, below), then to
//!   the principal — or first to the principal when the payment says so (agreed
//!   imputation) — and interest runs on from the next day on what principal remains. A
//!   payment larger than what was owed on its date is refused.
//! - **Invoices paid in full late.** When the payments leave no principal, the interest
//!   accrued up to the last payment (less what was imputed to it) is still claimed, and
//!   the €40 indemnity if that payment came after the due date (L.441-10 II, D.441-5;
//!   L.2192-13, D.2192-35 for a public buyer). An invoice that leaves nothing to claim
//!   is refused.
//! - **Public buyer** (Code de la commande publique L.2192-13, R.2192-31): interest from
//!   the day after the due date, without reminder, at the ECB main refinancing rate in
//!   force on the first day of the half-year in which interest **started**, plus 8
//!   points, fixed for the whole claim (not re-read each half-year); €40 indemnity per
//!   invoice (D.2192-35).
//! - **Consumer** (Code civil 1231-6, 1344-1): interest runs from the day after the
//!   earliest mise en demeure that covered the invoice — a `prior_notices` entry of kind
//!   `mise_en_demeure` listing it, or `first_letter` of kind `mise_en_demeure` for the
//!   invoices already overdue on its date; none before the present letter otherwise.

use serde::Serialize;
use time::Date;

use super::rates::{HalfYear, RateLookup, RatesTable, ReferenceRate};
use super::request::{
    ComposeRequest, CreditorKind, Imputation, Invoice, LetterKind, MAX_AMOUNT_CENTS,
    PriorNoticeKind,
};
use crate::domain::letter::{FieldError, RecipientKind, field_error};

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
    /// A public buyer: Code de la commande publique L.2192-13, R.2192-31, D.2192-35.
    PublicProcurement,
    /// Any other case: Code civil 1231-6 (interest from a mise en demeure), no indemnity.
    Civil,
}

impl InterestRegime {
    /// The regime for this creditor and debtor.
    pub fn of(creditor: CreditorKind, debtor: RecipientKind) -> InterestRegime {
        // (A public buyer is read from `Debtor::public_buyer` by [`compute`].)
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
    /// ECB main refinancing rate of the half-year in which interest started + 8 points,
    /// fixed for the whole claim (Code de la commande publique R.2192-31).
    EcbPlusEightPointsFixed,
}

/// L.441-10 II and D.441-5 or L.2192-13 and D.2192-35: the regimes with the €40 indemnity
/// and interest without reminder.
impl InterestRegime {
    /// Interest runs from the day after the due date, and the €40 indemnity is owed.
    pub fn is_late_payment_law(self) -> bool {
        matches!(
            self,
            InterestRegime::Commercial | InterestRegime::PublicProcurement
        )
    }
}

/// Code de la commande publique R.2192-31: ECB rate "majoré de huit points de pourcentage".
pub const PUBLIC_BUYER_ECB_MARGIN_BP: i64 = 800;

/// A dated payment as applied (Code civil 1343-1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AppliedPayment {
    /// Day received.
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "crate::core::french::iso_date::serialize")]
    pub date: Date,
    /// Amount, in cents.
    pub amount_cents: i64,
    /// How it was imputed.
    pub imputation: Imputation,
    /// Part imputed to the interest accrued until that day.
    pub to_interest_cents: i64,
    /// Part imputed to the principal.
    pub to_principal_cents: i64,
    /// Principal still owed after it.
    pub principal_after_cents: i64,
}

/// Interest over one stretch of days at one rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InterestPeriod {
    /// First day counted.
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "crate::core::french::iso_date::serialize")]
    pub from: Date,
    /// Last day counted.
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "crate::core::french::iso_date::serialize")]
    pub to: Date,
    /// Days counted (both ends included).
    pub days: i64,
    /// Days of that year (365 or 366).
    pub year_days: i64,
    /// Principal the interest runs on, in cents (changes after each dated payment).
    pub principal_cents: i64,
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
    /// Already paid, in cents: the undated `paid_cents` plus every dated payment.
    pub paid_cents: i64,
    /// Principal outstanding after the payments' imputation, in cents.
    pub principal_cents: i64,
    /// Late interest still owed on the letter date, in cents (accrued less paid).
    pub interest_cents: i64,
    /// Late interest accrued to the letter date, in cents (the periods' sum).
    pub interest_accrued_cents: i64,
    /// Part of the dated payments imputed to interest, in cents.
    pub interest_paid_cents: i64,
    /// The dated payments as applied, in date order.
    pub payments: Vec<AppliedPayment>,
    /// The earlier mise en demeure from which a consumer's interest runs: its reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice_reference: Option<String>,
    /// Fixed recovery indemnity (D.441-5), in cents: 0 or 4000.
    pub indemnity_cents: i64,
    /// Principal + interest + indemnity.
    pub total_cents: i64,
    /// First day of interest, when interest runs.
    #[schema(value_type = Option<String>, format = Date)]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::core::french::iso_date::option::serialize")]
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
    #[serde(serialize_with = "crate::core::french::iso_date::option::serialize")]
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
    let regime = if request.debtor.public_buyer {
        InterestRegime::PublicProcurement
    } else {
        InterestRegime::of(request.creditor.kind, request.debtor.kind)
    };
    // Code civil 1231-6: a consumer's legal interest runs from the (first) mise en demeure.
    let formal_notice_date = request
        .first_letter
        .as_ref()
        .filter(|f| f.kind == Some(LetterKind::MiseEnDemeure))
        .map(|f| f.date)
        .into_iter()
        .chain(
            request
                .prior_notices
                .iter()
                .filter(|n| n.kind == PriorNoticeKind::MiseEnDemeure)
                .map(|n| n.date),
        )
        .min()
        .or((request.kind == LetterKind::MiseEnDemeure).then_some(letter_date));
    let legal_rate = match request.creditor.kind {
        CreditorKind::Professional => ReferenceRate::LegalOther,
        CreditorKind::PrivatePerson => ReferenceRate::LegalPrivateCreditor,
    };

    let mut errors = Vec::new();
    let mut rates_used: Vec<RateUsed> = Vec::new();
    let mut invoices = Vec::with_capacity(request.invoices.len());
    for (i, invoice) in request.invoices.iter().enumerate() {
        let overdue = invoice.due_date < letter_date;
        let mut notice_reference = None;
        let interest_from = match (regime, request.contract_rate_bp) {
            (InterestRegime::Commercial | InterestRegime::PublicProcurement, _)
            | (InterestRegime::Civil, Some(_)) => invoice.due_date.next_day(),
            // Code civil 1231-6, 1344-1: interest runs from the day after a mise en demeure
            // that covered this invoice. An earlier notice covers only the invoices already
            // overdue on its date (it cannot have claimed what was not yet owed); any other
            // invoice runs only from the present letter, i.e. earns nothing before it.
            (InterestRegime::Civil, None) => {
                let notice = covering_notice(request, invoice);
                notice_reference = notice.as_ref().map(|n| n.1.clone());
                notice.map_or(letter_date, |n| n.0).next_day()
            }
        }
        .filter(|from| *from <= letter_date);

        let mut acc = Accrual {
            regime,
            contract_bp: request.contract_rate_bp,
            legal_rate,
            // R.2192-31: the rate in force on the first day of the half-year in which
            // interest started to run, for the whole claim.
            fixed_half_year: interest_from.map(HalfYear::of),
            rates,
            letter_date,
            periods: Vec::new(),
            exact: 0,
            rounded: 0,
            missing_rate: None,
            rates_used: &mut rates_used,
        };
        let mut principal = invoice.amount_cents - invoice.paid_cents;
        let mut interest_paid: i64 = 0;
        let mut cursor = interest_from;
        let mut applied = Vec::with_capacity(invoice.payments.len());
        let mut order: Vec<usize> = (0..invoice.payments.len()).collect();
        order.sort_by_key(|j| invoice.payments[*j].date);
        let mut last_principal_payment = None;
        for j in order {
            let pay = &invoice.payments[j];
            if let Some(from) = cursor
                && from <= pay.date
            {
                acc.accrue(from, pay.date, principal);
                cursor = pay.date.next_day();
            }
            let interest_due = acc.rounded - interest_paid;
            let (to_interest, to_principal) = match pay.imputation {
                Imputation::InterestFirst => {
                    let to_interest = pay.amount_cents.min(interest_due);
                    (to_interest, pay.amount_cents - to_interest)
                }
                Imputation::Principal => {
                    let to_principal = pay.amount_cents.min(principal);
                    (pay.amount_cents - to_principal, to_principal)
                }
            };
            if to_principal > principal || to_interest > interest_due {
                errors.push(field_error(
                    &format!("compose.invoices[{i}].payments[{j}].amount_cents"),
                    &format!(
                        "exceeds what was owed on {}: {} cents of principal and {} cents of interest",
                        pay.date, principal, interest_due
                    ),
                ));
                break;
            }
            principal -= to_principal;
            interest_paid += to_interest;
            if to_principal > 0 {
                last_principal_payment = Some(pay.date);
            }
            applied.push(AppliedPayment {
                date: pay.date,
                amount_cents: pay.amount_cents,
                imputation: pay.imputation,
                to_interest_cents: to_interest,
                to_principal_cents: to_principal,
                principal_after_cents: principal,
            });
        }
        if let Some(from) = cursor {
            acc.accrue(from, letter_date, principal);
        }
        if let Some(half_year) = acc.missing_rate {
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
        let accrued = acc.rounded;
        let periods = acc.periods;
        let interest = accrued - interest_paid;
        // L.441-10 II / D.441-5 (and L.2192-13 / D.2192-35): €40 for an invoice paid late —
        // still unpaid after its due date, or paid in full after it.
        let paid_late = last_principal_payment.is_some_and(|d| d > invoice.due_date);
        let indemnity = if regime.is_late_payment_law() && overdue && (principal > 0 || paid_late) {
            RECOVERY_INDEMNITY_CENTS
        } else {
            0
        };
        if principal == 0 && interest == 0 && indemnity == 0 {
            errors.push(field_error(
                &format!("compose.invoices[{i}].payments"),
                "pay the invoice in full and leave nothing to claim (no late interest, no indemnity): it is not claimed",
            ));
            continue;
        }
        let dated_paid: i64 = invoice.payments.iter().map(|p| p.amount_cents).sum();
        invoices.push(InvoiceAmounts {
            number: invoice.number.clone(),
            amount_cents: invoice.amount_cents,
            paid_cents: invoice.paid_cents.saturating_add(dated_paid),
            principal_cents: principal,
            interest_cents: interest,
            interest_accrued_cents: accrued,
            interest_paid_cents: interest_paid,
            payments: applied,
            notice_reference: if periods.is_empty() {
                None
            } else {
                notice_reference
            },
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

/// The earliest mise en demeure that covered `invoice`, before this letter: its date and
/// reference. `first_letter` of kind `mise_en_demeure` covers the invoices already overdue
/// on its date; a `prior_notices` entry covers the invoices it lists (checked overdue then).
fn covering_notice(request: &ComposeRequest, invoice: &Invoice) -> Option<(Date, String)> {
    let first = request
        .first_letter
        .as_ref()
        .filter(|f| f.kind == Some(LetterKind::MiseEnDemeure) && invoice.due_date < f.date)
        .map(|f| (f.date, f.reference.clone()));
    let prior = request
        .prior_notices
        .iter()
        .filter(|n| {
            n.kind == PriorNoticeKind::MiseEnDemeure && n.invoices.contains(&invoice.number)
        })
        .map(|n| (n.date, n.reference.clone()));
    first.into_iter().chain(prior).min_by_key(|n| n.0)
}

/// Interest of one invoice being accrued, stretch by stretch.
struct Accrual<'a> {
    regime: InterestRegime,
    contract_bp: Option<i64>,
    legal_rate: ReferenceRate,
    fixed_half_year: Option<HalfYear>,
    rates: &'a RatesTable,
    letter_date: Date,
    periods: Vec<InterestPeriod>,
    /// Exact interest so far, over [`DENOMINATOR`].
    exact: i128,
    /// `exact` rounded half up to the cent.
    rounded: i64,
    missing_rate: Option<HalfYear>,
    rates_used: &'a mut Vec<RateUsed>,
}

/// Common denominator of every period: 10 000 bp × 365 × 366 days.
const DENOMINATOR: i128 = 10_000 * 365 * 366;

impl Accrual<'_> {
    /// Interest on `principal` from `from` to `to`, both included (and never past the
    /// letter date), cut at each half-year.
    fn accrue(&mut self, from: Date, to: Date, principal: i64) {
        let to = to.min(self.letter_date);
        if principal <= 0 || self.missing_rate.is_some() {
            return;
        }
        let mut start = from;
        while start <= to {
            let half_year = HalfYear::of(start);
            let end = half_year.last_day().min(to);
            let rate_half_year = match self.regime {
                InterestRegime::PublicProcurement => self.fixed_half_year.unwrap_or(half_year),
                _ => half_year,
            };
            let Some((rate_bp, basis, lookup)) = period_rate(
                self.regime,
                self.contract_bp,
                self.legal_rate,
                rate_half_year,
                self.rates,
            ) else {
                self.missing_rate = Some(rate_half_year);
                return;
            };
            if let Some(l) = &lookup {
                let used = RateUsed {
                    rate: l.0,
                    half_year: rate_half_year,
                    basis_points: l.1.basis_points,
                    table_half_year: l.1.from_half_year,
                    source: l.1.source.clone(),
                };
                if !self.rates_used.contains(&used) {
                    self.rates_used.push(used);
                }
            }
            let year_days = i64::from(time::util::days_in_year(start.year()));
            let days = (end - start).whole_days() + 1;
            // Rounding: the invoice's exact running total is rounded half up
            // (floor((2·n + d) / 2d) for n ≥ 0); a period shows the difference of the
            // rounded running totals, so periods add up to the invoice's interest.
            let scale = 365 * 366 / i128::from(year_days);
            self.exact += i128::from(principal) * i128::from(rate_bp) * i128::from(days) * scale;
            let rounded = (2 * self.exact + DENOMINATOR) / (2 * DENOMINATOR);
            // Bounded by principal (< 2^53) × rate (≤ 100 % + margin) × the days elapsed.
            let rounded = i64::try_from(rounded).unwrap_or(i64::MAX);
            self.periods.push(InterestPeriod {
                from: start,
                to: end,
                days,
                year_days,
                principal_cents: principal,
                rate_bp,
                basis,
                reference: lookup.as_ref().map(|l| l.0),
                reference_bp: lookup.as_ref().map(|l| l.1.basis_points),
                source: lookup.as_ref().map_or_else(
                    || "taux prévu au contrat".to_string(),
                    |l| l.1.source.clone(),
                ),
                interest_cents: rounded - self.rounded,
            });
            self.rounded = rounded;
            match end.next_day() {
                Some(next) => start = next,
                None => break,
            }
        }
    }
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
        (InterestRegime::PublicProcurement, _) => {
            // R.2192-31: `half_year` is the one in which interest started (see `Accrual`).
            let ecb = rates.lookup(ReferenceRate::EcbMainRefinancing, half_year)?;
            Some((
                ecb.basis_points + PUBLIC_BUYER_ECB_MARGIN_BP,
                RateBasis::EcbPlusEightPointsFixed,
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
