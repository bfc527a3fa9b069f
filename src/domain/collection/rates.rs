//! The dated table of interest rates: the ECB main refinancing rate in force on 1 January /
//! 1 July (Code de commerce L.441-10 II) and the French legal rate of each half-year (Code
//! monétaire et financier L.313-2), each with its source. Rates are data, not constants: the
//! table ships as `rates.toml` and an operator can replace it with an updated file.
//!
//! A half-year missing from the table is never guessed: [`RatesTable::lookup`] gives the
//! latest earlier value and says which half-year it stood in for, so the composer can warn.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, Month};

/// The table shipped with the service (see `src/collection/rates.toml` for sources).
pub const EMBEDDED_RATES_TOML: &str = include_str!("rates.toml");

/// A calendar half-year: the unit in which French legal and ECB reference rates apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HalfYear {
    /// Calendar year.
    pub year: i32,
    /// `false` for January–June, `true` for July–December.
    pub second: bool,
}

impl HalfYear {
    /// The half-year containing `date`.
    pub fn of(date: Date) -> HalfYear {
        HalfYear {
            year: date.year(),
            second: date.month() as u8 >= 7,
        }
    }

    /// First day (1 January or 1 July).
    pub fn first_day(self) -> Date {
        let month = if self.second {
            Month::July
        } else {
            Month::January
        };
        // Day 1 exists in every month, and years come from valid `Date`s.
        Date::from_calendar_date(self.year, month, 1).unwrap_or(Date::MIN)
    }

    /// Last day (30 June or 31 December).
    pub fn last_day(self) -> Date {
        let (month, day) = if self.second {
            (Month::December, 31)
        } else {
            (Month::June, 30)
        };
        Date::from_calendar_date(self.year, month, day).unwrap_or(Date::MAX)
    }

    /// The following half-year.
    pub fn next(self) -> HalfYear {
        if self.second {
            HalfYear {
                year: self.year + 1,
                second: false,
            }
        } else {
            HalfYear {
                year: self.year,
                second: true,
            }
        }
    }

    /// Parses `2026-H1` / `2026-H2`.
    pub fn parse(s: &str) -> Option<HalfYear> {
        let (year, half) = s.split_once("-H")?;
        if year.len() != 4 || !year.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let year: i32 = year.parse().ok()?;
        match half {
            "1" => Some(HalfYear {
                year,
                second: false,
            }),
            "2" => Some(HalfYear { year, second: true }),
            _ => None,
        }
    }
}

impl fmt::Display for HalfYear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-H{}", self.year, if self.second { 2 } else { 1 })
    }
}

impl Serialize for HalfYear {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Which published rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceRate {
    /// ECB main refinancing operations rate in force on 1 January / 1 July.
    EcbMainRefinancing,
    /// French legal rate, "pour tous les autres cas".
    LegalOther,
    /// French legal rate for a creditor who is a natural person not acting for
    /// professional purposes.
    LegalPrivateCreditor,
}

impl ReferenceRate {
    /// French label, as printed on letters.
    pub fn label_fr(self) -> &'static str {
        match self {
            ReferenceRate::EcbMainRefinancing => {
                "taux des opérations principales de refinancement de la BCE"
            }
            ReferenceRate::LegalOther => "taux de l'intérêt légal (autres cas)",
            ReferenceRate::LegalPrivateCreditor => {
                "taux de l'intérêt légal (créancier personne physique n'agissant pas pour des besoins professionnels)"
            }
        }
    }
}

/// A rate found in the table for a half-year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLookup {
    /// The rate, in basis points.
    pub basis_points: i64,
    /// Where the value comes from.
    pub source: String,
    /// The half-year whose entry was used.
    pub from_half_year: HalfYear,
    /// `Some(h)` when the table has no value for the requested half-year `h` and an earlier
    /// one was used instead: the caller must warn.
    pub missing: Option<HalfYear>,
}

/// Why a rates table was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatesError {
    /// Not TOML of the expected shape.
    #[error("the rates table is not valid: {0}")]
    Format(String),
    /// An entry is wrong; the message says which.
    #[error("the rates table entry {period}: {message}")]
    Entry {
        /// The entry's `period` as written.
        period: String,
        /// What is wrong.
        message: String,
    },
}

/// The rates of every known half-year, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatesTable {
    entries: Vec<HalfYearEntry>,
    missing_rate: MissingRate,
}

/// What a composed letter does when it needs a half-year absent from the table
/// (`[collection] missing_rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingRate {
    /// Apply the latest earlier value, say so on the letter and warn (`rate_missing`).
    #[default]
    ApplyLatest,
    /// Refuse the letter (`422` naming the half-year) until the operator adds it.
    Refuse,
}

impl MissingRate {
    /// Parses the setting's value: `apply_latest` or `refuse`.
    pub fn parse(s: &str) -> Option<MissingRate> {
        match s {
            "apply_latest" => Some(MissingRate::ApplyLatest),
            "refuse" => Some(MissingRate::Refuse),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct HalfYearEntry {
    half_year: HalfYear,
    ecb: Option<(i64, String)>,
    legal_other: Option<i64>,
    legal_private: Option<i64>,
    legal_source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlTable {
    #[serde(default)]
    half_year: Vec<TomlEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlEntry {
    period: String,
    ecb_mro_bp: Option<i64>,
    ecb_source: Option<String>,
    legal_other_bp: Option<i64>,
    legal_private_creditor_bp: Option<i64>,
    legal_source: Option<String>,
}

/// Highest rate accepted in a table (100 %): anything above is a typo in basis points.
const MAX_TABLE_BP: i64 = 10_000;

impl RatesTable {
    /// The table shipped with the service.
    pub fn embedded() -> RatesTable {
        // The embedded file is checked by the test `embedded_table_parses_and_is_ordered`;
        // it is part of the binary and cannot change at run time.
        #[allow(clippy::expect_used)]
        RatesTable::from_toml(EMBEDDED_RATES_TOML).expect("the embedded rates table is valid")
    }

    /// Parses a table in the format of `rates.toml` (an operator's updated table).
    pub fn from_toml(text: &str) -> Result<RatesTable, RatesError> {
        let raw: TomlTable = toml::from_str(text).map_err(|e| RatesError::Format(e.to_string()))?;
        let mut entries: Vec<HalfYearEntry> = Vec::with_capacity(raw.half_year.len());
        for e in raw.half_year {
            let entry_error = |message: &str| RatesError::Entry {
                period: e.period.clone(),
                message: message.to_string(),
            };
            let half_year = HalfYear::parse(&e.period)
                .ok_or_else(|| entry_error("period must look like 2026-H1 or 2026-H2"))?;
            for bp in [e.ecb_mro_bp, e.legal_other_bp, e.legal_private_creditor_bp]
                .into_iter()
                .flatten()
            {
                if !(0..=MAX_TABLE_BP).contains(&bp) {
                    return Err(entry_error(
                        "rates are basis points between 0 and 10000 (0 % to 100 %)",
                    ));
                }
            }
            let ecb = match (e.ecb_mro_bp, non_empty(e.ecb_source)) {
                (Some(bp), Some(source)) => Some((bp, source)),
                (None, None) => None,
                _ => return Err(entry_error("ecb_mro_bp and ecb_source go together")),
            };
            let has_legal = e.legal_other_bp.is_some() || e.legal_private_creditor_bp.is_some();
            let legal_source = non_empty(e.legal_source);
            if has_legal != legal_source.is_some() {
                return Err(entry_error(
                    "legal rates need a legal_source, and a legal_source needs a rate",
                ));
            }
            if let Some(last) = entries.last()
                && last.half_year >= half_year
            {
                return Err(entry_error(
                    "periods must be listed once each, in chronological order",
                ));
            }
            entries.push(HalfYearEntry {
                half_year,
                ecb,
                legal_other: e.legal_other_bp,
                legal_private: e.legal_private_creditor_bp,
                legal_source,
            });
        }
        if entries.is_empty() {
            return Err(RatesError::Format("the table lists no half-year".into()));
        }
        Ok(RatesTable {
            entries,
            missing_rate: MissingRate::default(),
        })
    }

    /// The same table, with `policy` for half-years it lacks.
    pub fn with_missing_rate(mut self, policy: MissingRate) -> RatesTable {
        self.missing_rate = policy;
        self
    }

    /// What letters do when they need a half-year the table lacks.
    pub fn missing_rate(&self) -> MissingRate {
        self.missing_rate
    }

    /// The `rate` applying during `half_year`: its own entry, or else the latest earlier
    /// entry with that rate (flagged as `missing`). `None` when the table starts later.
    pub fn lookup(&self, rate: ReferenceRate, half_year: HalfYear) -> Option<RateLookup> {
        self.entries
            .iter()
            .rev()
            .filter(|e| e.half_year <= half_year)
            .find_map(|e| {
                let (basis_points, source) = match rate {
                    ReferenceRate::EcbMainRefinancing => e.ecb.clone()?,
                    ReferenceRate::LegalOther => (e.legal_other?, e.legal_source.clone()?),
                    ReferenceRate::LegalPrivateCreditor => {
                        (e.legal_private?, e.legal_source.clone()?)
                    }
                };
                Some(RateLookup {
                    basis_points,
                    source,
                    from_half_year: e.half_year,
                    missing: (e.half_year != half_year).then_some(half_year),
                })
            })
    }

    /// Every half-year from the table's first one up to the one containing `today` (started,
    /// so its rates are needed) that lacks one of the three rates: the service names them
    /// at start so that the operator adds them from the official publication.
    pub fn missing_half_years(&self, today: Date) -> Vec<HalfYear> {
        let Some(mut h) = self.first_half_year() else {
            return Vec::new();
        };
        let last = HalfYear::of(today);
        let mut missing = Vec::new();
        while h <= last {
            let complete = self.entries.iter().any(|e| {
                e.half_year == h
                    && e.ecb.is_some()
                    && e.legal_other.is_some()
                    && e.legal_private.is_some()
            });
            if !complete {
                missing.push(h);
            }
            h = h.next();
        }
        missing
    }

    /// [`RatesTable::missing_half_years`] up to the day `now` is in Europe/Paris: letters are
    /// dated in Paris, so at 23:30 UTC on 30 June the half-year that has started is H2.
    pub fn missing_half_years_at(&self, now: time::OffsetDateTime) -> Vec<HalfYear> {
        self.missing_half_years(crate::domain::window::paris_date(now).unwrap_or(now.date()))
    }

    /// The newest half-year of the table (exposed by `/metrics`).
    pub fn last_half_year(&self) -> Option<HalfYear> {
        self.entries.last().map(|e| e.half_year)
    }

    /// The first half-year of the table.
    pub fn first_half_year(&self) -> Option<HalfYear> {
        self.entries.first().map(|e| e.half_year)
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn embedded_table_parses_and_is_ordered() {
        let table = RatesTable::from_toml(EMBEDDED_RATES_TOML).expect("accepted");
        assert_eq!(table, RatesTable::embedded());
        assert_eq!(table.first_half_year(), HalfYear::parse("2015-H1"));
    }

    #[test]
    fn embedded_table_holds_the_values_checked_against_the_publications() {
        let t = RatesTable::embedded();
        let h = |s: &str| HalfYear::parse(s).expect("accepted");
        let legal = |s| {
            (
                t.lookup(ReferenceRate::LegalOther, h(s))
                    .expect("accepted")
                    .basis_points,
                t.lookup(ReferenceRate::LegalPrivateCreditor, h(s))
                    .expect("accepted")
                    .basis_points,
            )
        };
        assert_eq!(legal("2015-H1"), (93, 406));
        assert_eq!(legal("2016-H1"), (101, 454));
        assert_eq!(legal("2018-H2"), (88, 360));
        assert_eq!(legal("2020-H2"), (84, 311));
        assert_eq!(legal("2022-H1"), (76, 313));
        assert_eq!(legal("2023-H2"), (422, 682));
        assert_eq!(legal("2024-H1"), (507, 801));
        assert_eq!(legal("2025-H2"), (276, 665));
        assert_eq!(legal("2026-H1"), (262, 667));
        let ecb = |s| {
            t.lookup(ReferenceRate::EcbMainRefinancing, h(s))
                .expect("accepted")
                .basis_points
        };
        assert_eq!(
            [
                ecb("2022-H2"),
                ecb("2023-H1"),
                ecb("2024-H2"),
                ecb("2025-H1")
            ],
            [0, 250, 425, 315]
        );
        // 0.05 % from 10 September 2014 (in force on 1 January 2016), 0.00 % from 16 March 2016.
        assert_eq!([ecb("2015-H1"), ecb("2016-H1"), ecb("2016-H2")], [5, 5, 0]);
    }

    #[test]
    fn a_missing_half_year_uses_the_latest_earlier_value_and_says_so() {
        let t = RatesTable::embedded();
        let h2 = HalfYear::of(date!(2026 - 11 - 23));
        let found = t.lookup(ReferenceRate::LegalOther, h2).expect("accepted");
        assert_eq!(found.basis_points, 262);
        assert_eq!(found.from_half_year.to_string(), "2026-H1");
        assert_eq!(found.missing, Some(h2));
        let known = t
            .lookup(
                ReferenceRate::LegalOther,
                HalfYear::of(date!(2026 - 03 - 01)),
            )
            .expect("accepted");
        assert_eq!(known.missing, None);
    }

    #[test]
    fn the_half_years_missing_up_to_today_are_named() {
        let t = RatesTable::embedded();
        assert_eq!(t.missing_half_years(date!(2026 - 06 - 30)), []);
        assert_eq!(
            t.missing_half_years(date!(2026 - 12 - 01)),
            [HalfYear::parse("2026-H2").expect("accepted")]
        );
        assert_eq!(t.last_half_year(), HalfYear::parse("2026-H1"));
    }

    #[test]
    fn the_start_up_check_finds_the_current_half_year_by_the_paris_date() {
        use time::macros::datetime;
        let t = RatesTable::embedded();
        let h2 = [HalfYear::parse("2026-H2").expect("accepted")];
        // 30 June 2026 22:30 UTC is already 1 July 00:30 in Paris (UTC+2): H2 has started.
        assert_eq!(t.missing_half_years_at(datetime!(2026-06-30 22:30 UTC)), h2);
        // 21:59 UTC is 23:59 in Paris, still H1.
        assert_eq!(t.missing_half_years_at(datetime!(2026-06-30 21:59 UTC)), []);
        // 31 December 23:30 UTC is 1 January 00:30 in Paris (UTC+1): 2027-H1 too.
        assert_eq!(
            t.missing_half_years_at(datetime!(2026-12-31 23:30 UTC)),
            [h2[0], HalfYear::parse("2027-H1").expect("accepted")]
        );
    }

    #[test]
    fn nothing_is_found_before_the_table_starts() {
        let t = RatesTable::embedded();
        assert_eq!(
            t.lookup(
                ReferenceRate::EcbMainRefinancing,
                HalfYear::of(date!(2014 - 12 - 31))
            ),
            None
        );
    }

    #[test]
    fn operator_tables_are_checked() {
        let bad_order = "[[half_year]]\nperiod = \"2026-H2\"\necb_mro_bp = 200\necb_source = \"x\"\n\
                         [[half_year]]\nperiod = \"2026-H1\"\necb_mro_bp = 200\necb_source = \"x\"\n";
        assert!(matches!(
            RatesTable::from_toml(bad_order),
            Err(RatesError::Entry { .. })
        ));
        let no_source = "[[half_year]]\nperiod = \"2026-H2\"\nlegal_other_bp = 300\n";
        assert!(RatesTable::from_toml(no_source).is_err());
        let percent_typo =
            "[[half_year]]\nperiod = \"2026-H2\"\necb_mro_bp = 21500\necb_source = \"x\"\n";
        assert!(RatesTable::from_toml(percent_typo).is_err());
        let unknown = "[[half_year]]\nperiod = \"2026-H2\"\necb_rate = 2.15\n";
        assert!(matches!(
            RatesTable::from_toml(unknown),
            Err(RatesError::Format(_))
        ));
        let good = "[[half_year]]\nperiod = \"2026-H2\"\necb_mro_bp = 200\necb_source = \"BCE\"\n";
        let t = RatesTable::from_toml(good).expect("accepted");
        assert_eq!(
            t.lookup(
                ReferenceRate::EcbMainRefinancing,
                HalfYear::parse("2027-H1").expect("accepted")
            )
            .expect("accepted")
            .basis_points,
            200
        );
        assert_eq!(
            t.lookup(
                ReferenceRate::LegalOther,
                HalfYear::parse("2027-H1").expect("accepted")
            ),
            None
        );
    }

    #[test]
    fn half_years_have_their_bounds() {
        let h = HalfYear::of(date!(2024 - 07 - 01));
        assert_eq!(h.to_string(), "2024-H2");
        assert_eq!(h.first_day(), date!(2024 - 07 - 01));
        assert_eq!(h.last_day(), date!(2024 - 12 - 31));
        assert_eq!(h.next().first_day(), date!(2025 - 01 - 01));
        assert_eq!(HalfYear::parse("2024-H3"), None);
    }
}
