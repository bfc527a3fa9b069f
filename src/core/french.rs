//! French civil dates, written one way in every text the service produces: letters,
//! recipient pages, mails and proofs. `1er décembre 2026` for the first day of a month
//! (the ordinal is the French typographic rule: "1er", never "1"), `2 décembre 2026` for
//! the others; the month in lower case, no leading zero.
//!
//! French typography for letters: amounts `1 234,56 €` (narrow no-break space between
//! thousands, no-break space before the sign), dates `1er janvier 2026`, rates `12,15 %`.

use time::Date;

/// Month names, lower case as French writes them inside a sentence.
const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// `2026-12-01` → `1er décembre 2026`; `2026-12-02` → `2 décembre 2026`.
pub fn date(d: Date) -> String {
    // `Month` is 1 to 12, so the index is always within the table.
    let month = MONTHS[usize::from(u8::from(d.month()) - 1)];
    if d.day() == 1 {
        format!("1er {month} {}", d.year())
    } else {
        format!("{} {month} {}", d.day(), d.year())
    }
}

/// U+202F, the thousands separator of French typography.
pub const NARROW_NO_BREAK_SPACE: char = '\u{202F}';
/// U+00A0, before `€` and `%`.
pub const NO_BREAK_SPACE: char = '\u{00A0}';

/// `123456` cents → `1 234,56 €`.
pub fn euros(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let units = (abs / 100).to_string();
    let mut grouped = String::with_capacity(units.len() + units.len() / 3);
    for (i, c) in units.chars().enumerate() {
        if i > 0 && (units.len() - i).is_multiple_of(3) {
            grouped.push(NARROW_NO_BREAK_SPACE);
        }
        grouped.push(c);
    }
    format!("{sign}{grouped},{:02}{NO_BREAK_SPACE}€", abs % 100)
}

/// `1215` basis points → `12,15 %`.
pub fn percent(basis_points: i64) -> String {
    let sign = if basis_points < 0 { "-" } else { "" };
    let abs = basis_points.unsigned_abs();
    format!("{sign}{},{:02}{NO_BREAK_SPACE}%", abs / 100, abs % 100)
}

/// `2026-11-23` → `23/11/2026`, for tables.
pub fn short_date(d: Date) -> String {
    format!("{:02}/{:02}/{}", d.day(), d.month() as u8, d.year())
}

/// Folds the spaces French typography uses into plain spaces and collapses runs, so that
/// text can be searched whatever spaces a template or a renderer used.
pub fn normalize_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_space = false;
    for c in s.chars() {
        let space = c.is_whitespace() || c == NARROW_NO_BREAK_SPACE || c == NO_BREAK_SPACE;
        if space {
            if !last_space {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
        last_space = space;
    }
    out.trim().to_string()
}

/// Serialises a [`Date`] as `YYYY-MM-DD` (ISO 8601), as the API and the evidence show it.
pub mod iso_date {
    use serde::Serializer;
    use time::Date;

    /// `2026-11-23`.
    pub fn serialize<S: Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    /// The same for an optional date (`null` when absent).
    pub mod option {
        use serde::Serializer;
        use time::Date;

        /// `2026-11-23` or `null`.
        pub fn serialize<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.collect_str(d),
                None => s.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_of_the_month_is_written_1er_and_the_others_plainly() {
        assert_eq!(date(date!(2026 - 12 - 01)), "1er décembre 2026");
        assert_eq!(date(date!(2026 - 12 - 02)), "2 décembre 2026");
        assert_eq!(date(date!(2026 - 02 - 11)), "11 février 2026");
        assert_eq!(date(date!(2025 - 08 - 31)), "31 août 2025");
    }

    use time::macros::date;

    #[test]
    fn amounts_are_written_the_french_way() {
        assert_eq!(euros(123_456), "1\u{202F}234,56\u{A0}€");
        assert_eq!(euros(5), "0,05\u{A0}€");
        assert_eq!(euros(100_000_000), "1\u{202F}000\u{202F}000,00\u{A0}€");
        assert_eq!(euros(99_999), "999,99\u{A0}€");
        assert_eq!(percent(1215), "12,15\u{A0}%");
        assert_eq!(percent(7), "0,07\u{A0}%");
    }

    #[test]
    fn dates_are_written_the_french_way() {
        assert_eq!(date(date!(2026 - 11 - 23)), "23 novembre 2026");
        assert_eq!(date(date!(2026 - 01 - 01)), "1er janvier 2026");
        assert_eq!(date(date!(2025 - 08 - 09)), "9 août 2025");
        assert_eq!(short_date(date!(2025 - 08 - 09)), "09/08/2025");
    }

    #[test]
    fn spaces_are_normalised_for_searching() {
        assert_eq!(
            normalize_spaces(" 1\u{202F}234,56\u{A0}€\n  dû "),
            "1 234,56 € dû"
        );
    }
}
