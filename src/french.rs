//! French civil dates, written one way in every text the service produces: letters,
//! recipient pages, mails and proofs. `1er décembre 2026` for the first day of a month
//! (the ordinal is the French typographic rule: "1er", never "1"), `2 décembre 2026` for
//! the others; the month in lower case, no leading zero.

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

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn the_first_of_the_month_is_written_1er_and_the_others_plainly() {
        assert_eq!(date(date!(2026 - 12 - 01)), "1er décembre 2026");
        assert_eq!(date(date!(2026 - 12 - 02)), "2 décembre 2026");
        assert_eq!(date(date!(2026 - 02 - 11)), "11 février 2026");
        assert_eq!(date(date!(2025 - 08 - 31)), "31 août 2025");
    }
}
