//! Time as an argument: the service reads the time through a [`Clock`] so tests can move it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

/// A source of the current time (UTC).
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that tests set and advance; it never moves by itself.
#[derive(Debug, Clone)]
pub struct TestClock {
    micros: Arc<AtomicI64>,
}

impl TestClock {
    /// A clock stopped at `at`.
    pub fn at(at: OffsetDateTime) -> Self {
        TestClock {
            micros: Arc::new(AtomicI64::new(unix_micros(at))),
        }
    }

    /// Moves the clock forward (or back, for negative durations).
    pub fn advance(&self, by: time::Duration) {
        self.micros
            .fetch_add(by.whole_microseconds() as i64, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        from_unix_micros(self.micros.load(Ordering::SeqCst))
    }
}

/// Unix time in microseconds, the representation stored in the database.
pub fn unix_micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
}

/// Inverse of [`unix_micros`]. Values outside the supported range clamp to the Unix epoch,
/// which a reader notices immediately; stored values always come from [`unix_micros`].
pub fn from_unix_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(micros as i128 * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// RFC 3339 in UTC with exactly six fractional digits (`2026-11-23T09:13:44.123456Z`): the
/// form used in evidence records and API responses.
pub fn rfc3339_micros(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// The civil time zone of French legal deadlines (CPCE R.53-3 counts the acceptance window
/// in it) and of the times written in letters, pages and proofs.
pub const PARIS_TIME_ZONE: &str = "Europe/Paris";

/// RFC 3339 in Europe/Paris civil time with its offset and six fractional digits
/// (`2026-11-23T10:13:44.123456+01:00`): the same instant as [`rfc3339_micros`], as read on a
/// French clock (CPCE R.53-3 counts the window in that time). Falls back to UTC when the
/// instant is outside the time zone database's range.
pub fn rfc3339_paris(t: OffsetDateTime) -> String {
    let zoned = jiff::tz::TimeZone::get(PARIS_TIME_ZONE)
        .ok()
        .and_then(|tz| {
            jiff::Timestamp::from_microsecond(unix_micros(t))
                .ok()
                .map(|ts| ts.to_zoned(tz))
        });
    let Some(z) = zoned else {
        return rfc3339_micros(t);
    };
    let offset = z.offset().seconds();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{}{:02}:{:02}",
        z.year(),
        z.month(),
        z.day(),
        z.hour(),
        z.minute(),
        z.second(),
        t.microsecond(),
        if offset < 0 { '-' } else { '+' },
        offset.abs() / 3600,
        offset.abs() % 3600 / 60
    )
}

/// `t` as a French civil date and time in Europe/Paris, e.g. `8 décembre 2026 à 23:59`
/// (`1er décembre 2026 à 10:00` on the first of the month: [`crate::core::french::date`]).
pub fn paris_french(t: OffsetDateTime) -> String {
    match (paris_civil(t), paris_date(t)) {
        (Some(z), Some(d)) => format!(
            "{} à {:02}:{:02}",
            crate::core::french::date(d),
            z.hour(),
            z.minute()
        ),
        _ => rfc3339_micros(t),
    }
}

/// `t` in Europe/Paris in English, e.g. `8 December 2026, 23:59 (Paris time)`.
pub fn paris_english(t: OffsetDateTime) -> String {
    match (paris_civil(t), paris_date(t)) {
        (Some(z), Some(d)) => format!(
            "{}, {:02}:{:02} (Paris time)",
            english_date(d),
            z.hour(),
            z.minute()
        ),
        _ => rfc3339_micros(t),
    }
}

/// `2026-12-08` → `8 December 2026`, the English counterpart of [`crate::core::french::date`].
pub fn english_date(d: time::Date) -> String {
    format!("{} {} {}", d.day(), d.month(), d.year())
}

/// The civil date of `t` in Europe/Paris (the date a French letter bears).
pub fn paris_date(t: OffsetDateTime) -> Option<time::Date> {
    let z = paris_civil(t)?;
    let month = time::Month::try_from(u8::try_from(z.month()).ok()?).ok()?;
    time::Date::from_calendar_date(i32::from(z.year()), month, u8::try_from(z.day()).ok()?).ok()
}

/// `t` to the second in Europe/Paris with its UTC offset, for proofs:
/// `8 décembre 2026 à 14:03:27 (heure de Paris, UTC+01:00)`.
pub fn paris_french_seconds(t: OffsetDateTime) -> String {
    match paris_civil(t) {
        Some(z) => {
            let offset = z.offset().seconds();
            format!(
                "{} à {:02}:{:02}:{:02} (heure de Paris, UTC{}{:02}:{:02})",
                paris_date(t)
                    .map(crate::core::french::date)
                    .unwrap_or_default(),
                z.hour(),
                z.minute(),
                z.second(),
                if offset < 0 { '-' } else { '+' },
                offset.abs() / 3600,
                offset.abs() % 3600 / 60
            )
        }
        None => rfc3339_micros(t),
    }
}

/// The last instant a person would read as "still in the window": one minute before the
/// exclusive deadline, i.e. 23:59 on the last day.
pub fn last_minute(deadline: OffsetDateTime) -> OffsetDateTime {
    deadline - time::Duration::minutes(1)
}

fn paris_civil(t: OffsetDateTime) -> Option<jiff::Zoned> {
    // The time zone database is bundled into the binary (jiff `tzdb-bundle-always`), so the
    // result does not depend on the host's tzdata.
    let tz = jiff::tz::TimeZone::get(PARIS_TIME_ZONE).ok()?;
    let instant =
        jiff::Timestamp::from_microsecond((t.unix_timestamp_nanos() / 1_000) as i64).ok()?;
    Some(instant.to_zoned(tz))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_test_clock_moves_only_when_told() {
        let clock = TestClock::at(datetime!(2026-01-01 00:00 UTC));
        assert_eq!(clock.now(), datetime!(2026-01-01 00:00 UTC));
        clock.advance(time::Duration::days(15));
        assert_eq!(clock.now(), datetime!(2026-01-16 00:00 UTC));
    }

    #[test]
    fn times_print_in_utc_with_microseconds() {
        let t = datetime!(2026-11-23 10:13:44.123456 +01:00);
        assert_eq!(rfc3339_micros(t), "2026-11-23T09:13:44.123456Z");
        assert_eq!(from_unix_micros(unix_micros(t)), t);
    }

    #[test]
    fn paris_times_carry_the_offset_of_the_season() {
        let winter = datetime!(2026-12-08 13:03:27.5 UTC);
        assert_eq!(rfc3339_paris(winter), "2026-12-08T14:03:27.500000+01:00");
        let summer = datetime!(2026-07-01 22:30:00 UTC);
        assert_eq!(rfc3339_paris(summer), "2026-07-02T00:30:00.000000+02:00");
    }
}
