//! The acceptance window (CPCE R.53-3 I): the recipient may accept or refuse until the end of
//! the 15th day counted from the day after the notification, in Europe/Paris civil time.
//! Pure: a notification instant in, a deadline instant out.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use time::OffsetDateTime;

pub use crate::core::clock::{
    english_date, last_minute, paris_date, paris_english, paris_french, paris_french_seconds,
};

/// Days in the window.
pub const WINDOW_DAYS: i64 = 15;
/// The time zone the rule is applied in.
pub const WINDOW_TIME_ZONE: &str = crate::core::clock::PARIS_TIME_ZONE;

/// The window computed for one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptanceWindow {
    /// The notification day in Europe/Paris.
    pub notified_on: Date,
    /// The last day of the window in Europe/Paris (notification day + 15).
    pub last_day: Date,
    /// End of the window (exclusive): 00:00 Europe/Paris the day after `last_day`.
    pub deadline: OffsetDateTime,
    /// The rule as written into evidence.
    pub rule: String,
}

/// Why a window could not be computed (only outside the supported calendar range).
#[derive(Debug, thiserror::Error)]
#[error("cannot compute the acceptance window: {0}")]
pub struct WindowError(String);

/// The window of a notification handed to the relay at `notified_at`.
pub fn acceptance_window(notified_at: OffsetDateTime) -> Result<AcceptanceWindow, WindowError> {
    let tz = paris()?;
    let instant =
        jiff::Timestamp::from_microsecond((notified_at.unix_timestamp_nanos() / 1_000) as i64)
            .map_err(|e| WindowError(e.to_string()))?;
    let notified_on = instant.to_zoned(tz.clone()).date();
    let last_day = notified_on
        .checked_add(jiff::Span::new().days(WINDOW_DAYS))
        .map_err(|e| WindowError(e.to_string()))?;
    let end_day = last_day
        .tomorrow()
        .map_err(|e| WindowError(e.to_string()))?;
    let end = end_day
        .to_zoned(tz)
        .map_err(|e| WindowError(e.to_string()))?
        .timestamp();
    let deadline =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(end.as_microsecond()) * 1_000)
            .map_err(|e| WindowError(e.to_string()))?;
    let rule = format!(
        "CPCE R.53-3: {WINDOW_DAYS} days counted from the day after the notification ({notified_on}, {WINDOW_TIME_ZONE}); \
         the window ends at the end of {last_day} {WINDOW_TIME_ZONE}"
    );
    Ok(AcceptanceWindow {
        notified_on,
        last_day,
        deadline,
        rule,
    })
}

fn paris() -> Result<TimeZone, WindowError> {
    // The time zone database is bundled into the binary (jiff `tzdb-bundle-always`), so the
    // result does not depend on the host's tzdata.
    TimeZone::get(WINDOW_TIME_ZONE).map_err(|e| WindowError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_times_carry_seconds_and_the_paris_offset_of_the_season() {
        let winter = time::macros::datetime!(2026-12-08 13:03:27.5 UTC);
        assert_eq!(
            paris_french_seconds(winter),
            "8 décembre 2026 à 14:03:27 (heure de Paris, UTC+01:00)"
        );
        let summer = time::macros::datetime!(2026-07-01 22:30:00 UTC);
        assert_eq!(
            paris_french_seconds(summer),
            "2 juillet 2026 à 00:30:00 (heure de Paris, UTC+02:00)"
        );
    }
    use time::macros::datetime;

    #[test]
    fn the_window_ends_at_midnight_paris_after_the_fifteenth_day() {
        // Notified on Monday 23 November 2026 at 10:00 Paris (09:00 UTC, winter time).
        let w = acceptance_window(datetime!(2026-11-23 09:00 UTC)).expect("window");
        assert_eq!(w.notified_on.to_string(), "2026-11-23");
        assert_eq!(w.last_day.to_string(), "2026-12-08");
        // 9 December 00:00 Paris = 8 December 23:00 UTC.
        assert_eq!(w.deadline, datetime!(2026-12-08 23:00 UTC));
        assert!(w.rule.contains("R.53-3") && w.rule.contains("2026-12-08"));
    }

    #[test]
    fn the_paris_day_counts_not_the_utc_day() {
        // 23:30 UTC on 23 November is already 24 November in Paris.
        let w = acceptance_window(datetime!(2026-11-23 23:30 UTC)).expect("window");
        assert_eq!(w.notified_on.to_string(), "2026-11-24");
        assert_eq!(w.deadline, datetime!(2026-12-09 23:00 UTC));
    }

    #[test]
    fn a_window_across_the_spring_clock_change_ends_at_paris_midnight() {
        // Notified 20 March 2026 (UTC+1); the window ends after 4 April, in summer time (UTC+2).
        let w = acceptance_window(datetime!(2026-03-20 12:00 UTC)).expect("window");
        assert_eq!(w.last_day.to_string(), "2026-04-04");
        assert_eq!(w.deadline, datetime!(2026-04-04 22:00 UTC));
    }

    #[test]
    fn deadlines_read_as_the_last_minute_of_the_last_day() {
        let w = acceptance_window(datetime!(2026-11-23 09:00 UTC)).expect("window");
        assert_eq!(
            paris_french(last_minute(w.deadline)),
            "8 décembre 2026 à 23:59"
        );
        assert_eq!(
            paris_english(last_minute(w.deadline)),
            "8 December 2026, 23:59 (Paris time)"
        );
    }

    #[test]
    fn the_first_of_the_month_reads_1er_in_french() {
        // 1 December 2026, 09:00 UTC is 10:00 in Paris.
        let t = datetime!(2026-12-01 09:00 UTC);
        assert_eq!(paris_french(t), "1er décembre 2026 à 10:00");
        assert_eq!(
            paris_french_seconds(t),
            "1er décembre 2026 à 10:00:00 (heure de Paris, UTC+01:00)"
        );
    }
}
