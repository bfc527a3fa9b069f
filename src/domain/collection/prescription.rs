//! Prescription of each invoice: after it, the debt can no longer be claimed in court, and
//! a letter demanding it would mislead the debtor.
//!
//! - 2 years when a professional (merchant or not) claims against a consumer for goods or
//!   services it supplied (Code de la consommation L.218-2, which as the special rule prevails
//!   over L.110-4 even when the professional is a merchant).
//! - Otherwise 5 years: Code de commerce L.110-4 when either party is a merchant (obligations
//!   "nées à l'occasion de leur commerce entre commerçants ou entre commerçants et
//!   non-commerçants": mixed acts included), Code civil 2224 in every other case (two
//!   professionals neither of whom is a merchant — a liberal profession, a farmer, a civil
//!   company —, or a private-person creditor and a non-merchant debtor). Being a merchant is
//!   said by `creditor.merchant` and `debtor.merchant`, never guessed from a SIREN.
//! - The time runs from the day the creditor knew or should have known the facts (Code civil
//!   2224): for a professional's claim against a consumer, case law counts from the delivery
//!   or the performance of the service, not from the invoice or its due date (Cass. 1re civ.
//!   19 mai 2021 n° 20-12.520; Cass. com. 26 févr. 2020 n° 18-25.036; Cass. 3e civ. 1er mars
//!   2023 n° 21-23.176). The composer takes `performed_on` (default: the issue date), and the
//!   due date only when the input says the contract sets it as the starting point. An
//!   acknowledgement (`acknowledged_on`) restarts the period (Code civil 2240). Code civil
//!   2229: it is acquired when the last day of the term is over, so the last day to act is the
//!   anniversary of the starting day; an anniversary falling on 29 February of a common year is
//!   taken as 28 February (the earlier day: the composer never claims a day too late).
//! - The composer refuses a time-barred invoice unless `override_prescription` is true, and
//!   then records the override so the deposit evidence can carry it; it warns when the limit
//!   is 90 days away or less.

use serde::Serialize;
use time::{Date, Month};

use super::request::{CreditorKind, Invoice};
use crate::domain::letter::RecipientKind;

/// Warn when the limit is this many days away or less.
pub const PRESCRIPTION_WARNING_DAYS: i64 = 90;

/// Where an invoice stands on the letter date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrescriptionStatus {
    /// More than 90 days left.
    Open,
    /// 90 days left or less.
    Near,
    /// The limit has passed.
    TimeBarred,
}

/// The prescription of one invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Prescription {
    /// Invoice number.
    pub invoice: String,
    /// Length of the term in years (2 or 5).
    pub years: i32,
    /// The rule applied.
    pub rule: String,
    /// Last day to act.
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "crate::core::french::iso_date::serialize")]
    pub limit: Date,
    /// Days from the letter date to the limit (negative once time-barred).
    pub days_left: i64,
    /// Where it stands.
    pub status: PrescriptionStatus,
}

/// The parties as prescription sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parties {
    /// Professional or private-person creditor.
    pub creditor: CreditorKind,
    /// Professional or consumer debtor.
    pub debtor: RecipientKind,
    /// Whether the creditor or the debtor is a merchant (commerçant, Code de commerce L.121-1).
    pub merchant: bool,
}

/// The term and the rule citing it, for these parties.
pub fn term(parties: Parties) -> (i32, &'static str) {
    match parties {
        Parties {
            creditor: CreditorKind::Professional,
            debtor: RecipientKind::Consumer,
            ..
        } => (2, "Code de la consommation, art. L.218-2 (2 ans)"),
        Parties { merchant: true, .. } => (5, "Code de commerce, art. L.110-4 (5 ans)"),
        Parties { .. } => (5, "Code civil, art. 2224 (5 ans)"),
    }
}

/// The prescription of `invoice` for a letter dated `letter_date`.
pub fn assess(invoice: &Invoice, parties: Parties, letter_date: Date) -> Prescription {
    let (years, rule) = term(parties);
    let start = if invoice.prescription_from_due_date {
        invoice.due_date
    } else {
        invoice.performed_on
    };
    // Code civil 2240: the debtor's acknowledgement interrupts the period; a new one starts.
    // A part payment is such an acknowledgement: the latest dated payment restarts it too.
    let start = invoice
        .acknowledged_on
        .into_iter()
        .chain(invoice.payments.iter().map(|p| p.date))
        .fold(start, Date::max);
    let limit = anniversary(start, years);
    let days_left = (limit - letter_date).whole_days();
    let status = if days_left < 0 {
        PrescriptionStatus::TimeBarred
    } else if days_left <= PRESCRIPTION_WARNING_DAYS {
        PrescriptionStatus::Near
    } else {
        PrescriptionStatus::Open
    };
    Prescription {
        invoice: invoice.number.clone(),
        years,
        rule: rule.to_string(),
        limit,
        days_left,
        status,
    }
}

/// `date` plus `years`, 29 February becoming 28 February in a common year.
fn anniversary(date: Date, years: i32) -> Date {
    let year = date.year() + years;
    Date::from_calendar_date(year, date.month(), date.day())
        .or_else(|_| Date::from_calendar_date(year, Month::February, 28))
        .unwrap_or(Date::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const CONSUMER: Parties = Parties {
        creditor: CreditorKind::Professional,
        debtor: RecipientKind::Consumer,
        merchant: false,
    };
    const B2B: Parties = Parties {
        creditor: CreditorKind::Professional,
        debtor: RecipientKind::Professional,
        merchant: false,
    };

    fn invoice(due: Date) -> Invoice {
        Invoice {
            number: "F-1".into(),
            issue_date: due,
            due_date: due,
            amount_cents: 10_000,
            paid_cents: 0,
            performed_on: due,
            acknowledged_on: None,
            prescription_from_due_date: false,
            payments: Vec::new(),
        }
    }

    #[test]
    fn two_years_run_from_performance_day_before_day_of_day_after() {
        // Performed 2024-03-10, invoiced 2024-04-01, due 2024-05-01: against a consumer the
        // limit is 2026-03-10 (L.218-2, from performance), not 2026-05-01.
        let mut inv = invoice(date!(2024 - 05 - 01));
        inv.issue_date = date!(2024 - 04 - 01);
        inv.performed_on = date!(2024 - 03 - 10);
        let p = |inv: &Invoice, d| assess(inv, CONSUMER, d);
        assert_eq!(
            p(&inv, date!(2026 - 03 - 09)).status,
            PrescriptionStatus::Near
        );
        let last = p(&inv, date!(2026 - 03 - 10));
        assert_eq!((last.limit, last.days_left), (date!(2026 - 03 - 10), 0));
        assert_eq!(
            p(&inv, date!(2026 - 03 - 11)).status,
            PrescriptionStatus::TimeBarred
        );
        // The contract sets the due date as the start: 2026-05-01.
        let mut by_contract = inv.clone();
        by_contract.prescription_from_due_date = true;
        assert_eq!(
            p(&by_contract, date!(2026 - 03 - 11)).limit,
            date!(2026 - 05 - 01)
        );
    }

    #[test]
    fn an_acknowledgement_restarts_the_period() {
        let mut inv = invoice(date!(2024 - 05 - 01));
        inv.performed_on = date!(2024 - 03 - 10);
        inv.acknowledged_on = Some(date!(2025 - 01 - 15));
        let p = |d| assess(&inv, CONSUMER, d);
        // Code civil 2240: a new two-year period from 2025-01-15, last day 2027-01-15.
        assert_eq!(p(date!(2027 - 01 - 14)).status, PrescriptionStatus::Near);
        assert_eq!(p(date!(2027 - 01 - 15)).days_left, 0);
        assert_eq!(
            p(date!(2027 - 01 - 16)).status,
            PrescriptionStatus::TimeBarred
        );
    }

    #[test]
    fn a_dated_part_payment_restarts_the_period_like_an_acknowledgement() {
        let mut inv = invoice(date!(2024 - 05 - 01));
        inv.performed_on = date!(2024 - 03 - 10);
        let p = |inv: &Invoice, d| assess(inv, CONSUMER, d);
        assert_eq!(
            p(&inv, date!(2026 - 06 - 01)).status,
            PrescriptionStatus::TimeBarred
        );
        // Code civil 2240: a part payment on 2025-02-03 acknowledges the debt.
        inv.payments.push(super::super::request::DatedPayment {
            date: date!(2025 - 02 - 03),
            amount_cents: 100,
            imputation: super::super::request::Imputation::InterestFirst,
        });
        inv.acknowledged_on = Some(date!(2024 - 12 - 01));
        let after = p(&inv, date!(2026 - 06 - 01));
        assert_eq!(
            (after.limit, after.status),
            (date!(2027 - 02 - 03), PrescriptionStatus::Open)
        );
    }

    #[test]
    fn five_years_between_professionals_last_day_is_the_anniversary() {
        let inv = invoice(date!(2021 - 11 - 23));
        let p = |d| assess(&inv, B2B, d);
        assert_eq!(p(date!(2026 - 11 - 22)).status, PrescriptionStatus::Near);
        let last = p(date!(2026 - 11 - 23));
        assert_eq!((last.status, last.days_left), (PrescriptionStatus::Near, 0));
        let after = p(date!(2026 - 11 - 24));
        assert_eq!(
            (after.status, after.days_left),
            (PrescriptionStatus::TimeBarred, -1)
        );
        assert_eq!(after.years, 5);
    }

    #[test]
    fn two_years_against_a_consumer() {
        let inv = invoice(date!(2024 - 11 - 23));
        let p = |d| assess(&inv, CONSUMER, d);
        assert_eq!(p(date!(2026 - 11 - 23)).status, PrescriptionStatus::Near);
        assert_eq!(
            p(date!(2026 - 11 - 24)).status,
            PrescriptionStatus::TimeBarred
        );
        assert_eq!(p(date!(2026 - 11 - 24)).years, 2);
        // A private-person creditor is not a professional: five years.
        let private = assess(
            &inv,
            Parties {
                creditor: CreditorKind::PrivatePerson,
                ..CONSUMER
            },
            date!(2026 - 11 - 24),
        );
        assert_eq!(
            (private.years, private.status),
            (5, PrescriptionStatus::Open)
        );
    }

    #[test]
    fn the_warning_starts_ninety_days_before_the_limit() {
        let inv = invoice(date!(2024 - 03 - 01));
        let limit = date!(2026 - 03 - 01);
        let p = |d: Date| assess(&inv, CONSUMER, d).status;
        assert_eq!(
            p(limit - time::Duration::days(90)),
            PrescriptionStatus::Near
        );
        assert_eq!(
            p(limit - time::Duration::days(91)),
            PrescriptionStatus::Open
        );
    }

    #[test]
    fn a_29_february_due_date_ends_on_28_february() {
        let inv = invoice(date!(2024 - 02 - 29));
        let p = assess(&inv, CONSUMER, date!(2026 - 01 - 01));
        assert_eq!(p.limit, date!(2026 - 02 - 28));
    }

    #[test]
    fn l110_4_is_cited_only_when_a_party_is_a_merchant() {
        let merchant = Parties {
            merchant: true,
            ..B2B
        };
        assert_eq!(
            term(merchant),
            (5, "Code de commerce, art. L.110-4 (5 ans)")
        );
        // Two professionals, neither a merchant (a liberal profession, say): Code civil 2224.
        assert_eq!(term(B2B), (5, "Code civil, art. 2224 (5 ans)"));
        // A mixed act: a private person owed by a merchant.
        let mixed = Parties {
            creditor: CreditorKind::PrivatePerson,
            debtor: RecipientKind::Professional,
            merchant: true,
        };
        assert_eq!(term(mixed).1, "Code de commerce, art. L.110-4 (5 ans)");
        // A merchant's claim against a consumer: the special two-year rule prevails.
        let consumer = Parties {
            merchant: true,
            ..CONSUMER
        };
        assert_eq!(
            term(consumer),
            (2, "Code de la consommation, art. L.218-2 (2 ans)")
        );
        let private = Parties {
            creditor: CreditorKind::PrivatePerson,
            ..CONSUMER
        };
        assert_eq!(term(private), (5, "Code civil, art. 2224 (5 ans)"));
    }

    #[test]
    fn five_years_run_from_performance_day_before_day_of_day_after() {
        // Performed 2021-02-10, invoiced 2021-03-01, due 2021-03-31: the limit is the
        // anniversary of the performance, 2026-02-10, whether L.110-4 or 2224 sets it.
        let mut inv = invoice(date!(2021 - 03 - 31));
        inv.issue_date = date!(2021 - 03 - 01);
        inv.performed_on = date!(2021 - 02 - 10);
        for parties in [
            B2B,
            Parties {
                merchant: true,
                ..B2B
            },
        ] {
            let p = |d| assess(&inv, parties, d);
            let before = p(date!(2026 - 02 - 09));
            assert_eq!(
                (before.status, before.days_left, before.years),
                (PrescriptionStatus::Near, 1, 5)
            );
            let last = p(date!(2026 - 02 - 10));
            assert_eq!((last.limit, last.days_left), (date!(2026 - 02 - 10), 0));
            assert_eq!(last.status, PrescriptionStatus::Near);
            let after = p(date!(2026 - 02 - 11));
            assert_eq!(
                (after.status, after.days_left),
                (PrescriptionStatus::TimeBarred, -1)
            );
        }
    }

    #[test]
    fn an_acknowledgement_restarts_five_years_day_before_day_of_day_after() {
        let mut inv = invoice(date!(2021 - 03 - 31));
        inv.performed_on = date!(2021 - 02 - 10);
        inv.acknowledged_on = Some(date!(2023 - 06 - 15));
        let p = |d| {
            assess(
                &inv,
                Parties {
                    merchant: true,
                    ..B2B
                },
                d,
            )
        };
        // Without the acknowledgement this would be time-barred since 2026-02-11; Code
        // civil 2240 starts a new five-year period on 2023-06-15: last day 2028-06-15.
        assert_eq!(p(date!(2026 - 02 - 11)).status, PrescriptionStatus::Open);
        assert_eq!(p(date!(2028 - 06 - 14)).days_left, 1);
        let last = p(date!(2028 - 06 - 15));
        assert_eq!((last.limit, last.days_left), (date!(2028 - 06 - 15), 0));
        assert_eq!(
            p(date!(2028 - 06 - 16)).status,
            PrescriptionStatus::TimeBarred
        );
    }

    #[test]
    fn an_acknowledgement_before_the_start_changes_nothing() {
        // Acknowledged before the service was even performed (a quote signed, say): the
        // period still runs from the performance, never from an earlier day.
        let mut inv = invoice(date!(2024 - 05 - 01));
        inv.performed_on = date!(2024 - 03 - 10);
        inv.acknowledged_on = Some(date!(2024 - 01 - 05));
        let p = assess(&inv, CONSUMER, date!(2026 - 03 - 10));
        assert_eq!((p.limit, p.days_left), (date!(2026 - 03 - 10), 0));
        assert_eq!(
            assess(&inv, CONSUMER, date!(2026 - 03 - 11)).status,
            PrescriptionStatus::TimeBarred
        );
    }
}
