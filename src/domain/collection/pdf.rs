//! The composed letter as a PDF/A-3b document: the blocks laid out as a French business
//! letter (sender top left, recipient in the window position on the right, place and date,
//! subject, body, tables of amounts, quotations, signature), DejaVu fonts embedded, and the
//! composition summary (amounts, rates, mentions) attached as JSON. Pure: the same letter
//! gives the same bytes.
//!
//! Letters are written by the fast PDF writer ([`crate::core::proof::fastpdf`]: fonts subset once
//! per process, no shaping), and by krilla only when a letter holds a character outside that
//! writer's font subset ([`Backend`]); both measure text alike, so lines break at the same
//! places.

use time::OffsetDateTime;

use super::blocks::{Block, ComposedLetter};
use crate::core::proof::layout::{
    Attachment, BLACK, DocumentInfo, Face, GREY, Layout, MARGIN_X, PALE_GREY, TEXT_WIDTH,
};

/// Left edge of the recipient's address (window envelopes, NF EN ISO 269 DL/C5 window).
const WINDOW_X: f32 = 310.0;

/// Which PDF writer renders a letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The fast writer, falling back to krilla for characters outside its subset.
    Fast,
    /// Always krilla (shaped text, fonts subset per document).
    Krilla,
}

/// Renders `letter`; `title` names the document, `author` is who sends it, `created` is the
/// letter's time (kept in the metadata), `summary` is attached as `composition.json`.
pub fn render(
    letter: &ComposedLetter,
    title: &str,
    author: &str,
    created: OffsetDateTime,
    summary: &[u8],
) -> Result<Vec<u8>, String> {
    render_with(Backend::Fast, letter, title, author, created, summary)
}

/// [`render`] with the chosen writer (the bench compares them).
pub fn render_with(
    backend: Backend,
    letter: &ComposedLetter,
    title: &str,
    author: &str,
    created: OffsetDateTime,
    summary: &[u8],
) -> Result<Vec<u8>, String> {
    let mut page = Layout::new();
    let mut top_of_addresses = None;
    for block in &letter.blocks {
        match block {
            Block::SenderAddress { lines } => {
                top_of_addresses = Some(page.cursor());
                for (i, line) in lines.iter().enumerate() {
                    let face = if i == 0 { Face::Bold } else { Face::Regular };
                    page.paragraph_in(MARGIN_X, WINDOW_X - MARGIN_X - 10.0, line, face, 9.5, BLACK);
                }
            }
            Block::RecipientAddress { lines } => {
                let below_sender = page.cursor();
                if let Some(top) = top_of_addresses.take() {
                    page.move_to(top + 48.0);
                }
                let width = TEXT_WIDTH - (WINDOW_X - MARGIN_X);
                for (i, line) in lines.iter().enumerate() {
                    let face = if i == 0 { Face::Bold } else { Face::Regular };
                    page.paragraph_in(WINDOW_X, width, line, face, 10.0, BLACK);
                }
                let after = page.cursor().max(below_sender);
                page.move_to(after);
                page.space(18.0);
            }
            Block::PlaceDate { text } => {
                page.paragraph_in(
                    WINDOW_X,
                    TEXT_WIDTH - (WINDOW_X - MARGIN_X),
                    text,
                    Face::Regular,
                    10.0,
                    BLACK,
                );
                page.space(8.0);
            }
            Block::References { lines } => {
                for line in lines {
                    page.paragraph(line, Face::Regular, 8.5, GREY);
                }
                page.space(4.0);
            }
            Block::Subject { text } => {
                page.paragraph(text, Face::Bold, 10.5, BLACK);
                page.space(6.0);
            }
            Block::Title { text } => {
                page.space(4.0);
                page.paragraph(text, Face::Bold, 13.0, BLACK);
                page.space(6.0);
            }
            Block::Heading { text } => {
                page.keep(40.0);
                page.space(6.0);
                page.paragraph(text, Face::Bold, 10.5, BLACK);
                page.space(2.0);
            }
            Block::Paragraph { text } => {
                for part in text.split('\n') {
                    page.paragraph(part, Face::Regular, 10.0, BLACK);
                }
                page.space(5.0);
            }
            Block::Table {
                header,
                rows,
                footer,
            } => {
                // Rows then totals, in columns sized to their content: no date, amount or
                // invoice number is broken across lines.
                let all: Vec<Vec<String>> = rows.iter().chain(footer).cloned().collect();
                page.table(header, &all);
                page.space(4.0);
            }
            Block::Quote { text, source } => {
                for part in text.split('\n') {
                    page.paragraph_in(
                        MARGIN_X + 18.0,
                        TEXT_WIDTH - 36.0,
                        part,
                        Face::Regular,
                        9.0,
                        GREY,
                    );
                }
                page.paragraph_in(
                    MARGIN_X + 18.0,
                    TEXT_WIDTH - 36.0,
                    source,
                    Face::Regular,
                    8.0,
                    GREY,
                );
                page.space(5.0);
            }
            Block::Notice { text } => {
                page.banner(&[text.as_str()], BLACK, PALE_GREY);
            }
            Block::Signature { lines } => {
                page.keep(20.0 * lines.len() as f32 + 20.0);
                page.space(10.0);
                for line in lines {
                    page.paragraph_in(
                        WINDOW_X,
                        TEXT_WIDTH - (WINDOW_X - MARGIN_X),
                        line,
                        Face::Regular,
                        10.0,
                        BLACK,
                    );
                }
            }
        }
    }
    let info = DocumentInfo {
        title: title.to_string(),
        subject: title.to_string(),
        author: author.to_string(),
        created,
        footer: format!("{author} · {title}"),
    };
    let attachments = vec![Attachment {
        name: "composition.json".into(),
        media_type: "application/json",
        description: "Montants, taux, prescription et mentions obligatoires vérifiées / amounts, rates, prescription and mandatory mentions checked".into(),
        bytes: summary.to_vec(),
    }];
    match backend {
        Backend::Fast => page.render_fast(&info, attachments),
        Backend::Krilla => page.render(&info, attachments),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::{date, datetime};

    use super::*;
    use crate::domain::collection::{ComposeRequest, RatesTable, write_letter};

    fn letter(debtor: &str) -> ComposedLetter {
        let request = json!({
            "kind": "mise_en_demeure",
            "creditor": {"name": "Atelier Durand SARL", "address": "12 rue des Lilas\n69003 Lyon", "siren": "732829320"},
            "agency": {"name": "Cabinet de recouvrement Exemple", "address": "8 avenue Foch\n75116 Paris", "mandate_reference": "MAN-2026-77"},
            "debtor": {"name": debtor, "address": ["3 place du Marché", "38000 Grenoble"], "kind": "professional"},
            "invoices": [
                {"number": "F-2026-101", "issue_date": "2026-05-01", "due_date": "2026-05-31", "amount_cents": 1_250_000},
                {"number": "F-2026-117", "issue_date": "2026-06-15", "due_date": "2026-07-15", "amount_cents": 480_000, "paid_cents": 80_000}
            ],
            "payment": {"iban": "FR76 3000 6000 0112 3456 7890 189", "link": "https://pay.example.fr/i/42"}
        });
        let composition =
            match ComposeRequest::parse(&request, date!(2026 - 11 - 23), &RatesTable::embedded()) {
                Ok(c) => c,
                Err(e) => panic!("composition: {e:?}"),
            };
        write_letter(&composition, None).expect("letter")
    }

    fn render_letter(backend: Backend, debtor: &str) -> Vec<u8> {
        let created = datetime!(2026-11-23 10:00:00 UTC);
        let pdf = render_with(
            backend,
            &letter(debtor),
            "Mise en demeure",
            "Recouvr SAS",
            created,
            b"{\"a\":1}",
        )
        .expect("pdf");
        // RECOMMANDE_PDF_OUT=dir keeps the files to look at.
        if let Some(dir) = std::env::var_os("RECOMMANDE_PDF_OUT") {
            let name = format!("{backend:?}-{}.pdf", debtor.len());
            std::fs::write(std::path::Path::new(&dir).join(name), &pdf).expect("write");
        }
        pdf
    }

    #[test]
    fn the_fast_writer_is_reproducible_and_pdf_a_3b_in_form() {
        let pdf = render_letter(Backend::Fast, "Boulangerie Martin");
        assert_eq!(
            pdf,
            render_letter(Backend::Fast, "Boulangerie Martin"),
            "same input, same bytes"
        );
        let text = String::from_utf8_lossy(&pdf);
        assert!(pdf.starts_with(b"%PDF-1.7"));
        for needle in [
            "/FontFile2",
            "/CIDFontType2",
            "/CIDToGIDMap /Identity",
            "/ToUnicode",
            "/CalRGB",
            "<pdfaid:part>3</pdfaid:part>",
            "<pdfaid:conformance>B</pdfaid:conformance>",
            "/AFRelationship /Source",
            "/AF [",
            "/ID [",
        ] {
            assert!(text.contains(needle), "{needle}");
        }
        // Not krilla's output.
        assert!(!text.contains("/OutputIntents"));
    }

    #[test]
    fn a_character_outside_the_subset_goes_to_krilla() {
        // U+0416 (Cyrillic Zhe) is in DejaVu Sans but not in the fast writer's subset.
        let fast = render_letter(Backend::Fast, "Société Жук");
        let krilla = render_letter(Backend::Krilla, "Société Жук");
        assert_eq!(fast, krilla);
        let plain = render_letter(Backend::Fast, "Société Zuk");
        let by_krilla = render_letter(Backend::Krilla, "Société Zuk");
        assert_ne!(plain, by_krilla);
        // Both writers' letters pass the structural check uploads get.
        for pdf in [&fast, &plain, &by_krilla] {
            assert_eq!(crate::core::pdf_check::check(pdf), Ok(()));
        }
    }
}
