//! A tenant's own wording for the body of a letter: paragraphs separated by blank lines,
//! with placeholders such as `{{debtor.name}}`, `{{total}}` or `{{deadline}}`. Only known
//! placeholders are accepted. The wording replaces the default body paragraphs; the amounts,
//! payment details, legal texts and every mandatory mention are still added and checked
//! on top of it (see [`super::write_letter`]).

use serde_json::Value;

use super::Composition;
use super::request::LetterKind;
use crate::core::french;
use crate::domain::letter::{FieldError, field_error, text_field};

/// Longest wording accepted, in characters.
pub const MAX_WORDING_LEN: usize = 10_000;

/// Every placeholder a wording may use, with what it becomes.
pub const PLACEHOLDERS: [(&str, &str); 21] = [
    ("creditor.name", "the creditor's name"),
    ("creditor.address", "the creditor's address on one line"),
    ("creditor.siren", "the creditor's SIREN"),
    ("debtor.name", "the debtor's name"),
    ("debtor.address", "the debtor's address on one line"),
    ("agency.name", "the agency's name"),
    ("agency.address", "the agency's address on one line"),
    ("agency.mandate_reference", "the agency's mandate reference"),
    ("invoices", "the invoice numbers, comma-separated"),
    ("principal", "the principal outstanding, e.g. 1 234,56 €"),
    ("interest", "the late interest"),
    ("indemnity", "the fixed recovery indemnities"),
    ("total", "the total claimed"),
    (
        "deadline",
        "e.g. \"8 jours à compter de la réception de la présente lettre\"",
    ),
    ("deadline_days", "the number of days to pay"),
    ("letter_date", "the letter's date, e.g. 23 novembre 2026"),
    ("first_letter.reference", "the first letter's reference"),
    ("first_letter.date", "the first letter's date"),
    ("payment.link", "the payment link"),
    ("payment.iban", "the IBAN"),
    ("payment.instructions", "the payment instructions"),
];

/// Words of judicial and bailiff's acts that custom wording may not use (Code pénal 433-13:
/// a private document must not be mistaken for an act of a judicial officer). Lower case.
pub const JUDICIAL_TERMS: &[&str] = &[
    "commandement de payer",
    "huissier",
    "commissaire de justice",
    "saisie",
    "acte d'huissier",
    "signification",
];

/// Checked custom wording.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Wording {
    paragraphs: Vec<String>,
}

impl Wording {
    /// Checks `text` (errors carry `path`): non-empty, bounded, no control characters other
    /// than line breaks, balanced `{{ }}`, known placeholders only — every problem at once.
    pub fn parse(text: &str, path: &str) -> Result<Wording, Vec<FieldError>> {
        let mut errors = Vec::new();
        if text.trim().is_empty() {
            return Err(vec![field_error(path, "must not be empty")]);
        }
        if text.chars().count() > MAX_WORDING_LEN {
            errors.push(field_error(
                path,
                &format!("must be at most {MAX_WORDING_LEN} characters"),
            ));
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            errors.push(field_error(path, "must not contain control characters"));
        }
        // Code pénal 433-13: a private letter must not look like a judicial or bailiff's act.
        let folded = text.to_lowercase().replace('\u{2019}', "'");
        for term in JUDICIAL_TERMS {
            if folded.contains(term) {
                errors.push(field_error(
                    path,
                    &format!(
                        "must not contain \"{term}\": wording that imitates a judicial or bailiff's act is an offence (Code pénal, art. 433-13)"
                    ),
                ));
            }
        }
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                errors.push(field_error(path, "has a '{{' without its '}}'"));
                break;
            };
            let name = after[..end].trim();
            if !PLACEHOLDERS.iter().any(|(known, _)| *known == name) {
                errors.push(field_error(
                    path,
                    &format!(
                        "uses the unknown placeholder {{{{{name}}}}}; known: {}",
                        PLACEHOLDERS
                            .iter()
                            .map(|(k, _)| *k)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            rest = &after[end + 2..];
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let paragraphs = text
            .replace("\r\n", "\n")
            .split("\n\n")
            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|p| !p.is_empty())
            .collect();
        Ok(Wording { paragraphs })
    }

    /// The paragraphs as written (placeholders not yet replaced).
    pub fn paragraphs(&self) -> &[String] {
        &self.paragraphs
    }

    /// The paragraphs with placeholders replaced for `composition`. A placeholder whose value
    /// the request does not give (`{{agency.name}}` without an agency) is an error.
    pub fn render(&self, composition: &Composition) -> Result<Vec<String>, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut out = Vec::with_capacity(self.paragraphs.len());
        for paragraph in &self.paragraphs {
            let mut text = String::with_capacity(paragraph.len());
            let mut rest = paragraph.as_str();
            while let Some(start) = rest.find("{{") {
                text.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                // Checked by `parse`: every '{{' has its '}}'.
                let end = after.find("}}").unwrap_or(after.len());
                let name = after[..end].trim();
                match placeholder_value(composition, name) {
                    Some(v) => text.push_str(&v),
                    None => {
                        let message = format!(
                            "the template uses {{{{{name}}}}} but the request does not give it"
                        );
                        if !errors.iter().any(|e: &FieldError| e.message == message) {
                            errors.push(field_error("compose", &message));
                        }
                    }
                }
                rest = after.get(end + 2..).unwrap_or("");
            }
            text.push_str(rest);
            out.push(text);
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

/// A checked `POST /v1/templates` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRequest {
    /// The tenant's name for the template.
    pub name: String,
    /// The kind of letter it is for.
    pub kind: LetterKind,
    /// The wording as given (stored verbatim, parsed again when used).
    pub text: String,
    /// The checked wording.
    pub wording: Wording,
}

/// The fields of a `POST /v1/templates` body; any other is reported as unknown. The OpenAPI
/// schema `TemplateBody` lists the same ones (checked by the tests of `http::openapi`).
pub const TEMPLATE_FIELDS: &[&str] = &["name", "kind", "wording"];

impl TemplateRequest {
    /// Checks a body `{"name", "kind", "wording"}`, reporting every problem at once.
    pub fn parse(body: &Value) -> Result<TemplateRequest, Vec<FieldError>> {
        let Some(obj) = body.as_object() else {
            return Err(vec![field_error("", "the body must be a JSON object")]);
        };
        let mut errors = Vec::new();
        for key in obj.keys() {
            if !TEMPLATE_FIELDS.contains(&key.as_str()) {
                errors.push(field_error(key, "is not a known field"));
            }
        }
        let name = text_field(obj, "name", "name", true, &mut errors);
        let kind = match obj.get("kind") {
            Some(Value::String(s)) if LetterKind::parse(s).is_some() => LetterKind::parse(s),
            None | Some(Value::Null) => {
                errors.push(field_error(
                    "kind",
                    "is required: \"relance\" or \"mise_en_demeure\"",
                ));
                None
            }
            Some(_) => {
                errors.push(field_error(
                    "kind",
                    "must be \"relance\" or \"mise_en_demeure\"",
                ));
                None
            }
        };
        let wording = match obj.get("wording") {
            Some(Value::String(text)) => match Wording::parse(text, "wording") {
                Ok(w) => Some((text.clone(), w)),
                Err(mut e) => {
                    errors.append(&mut e);
                    None
                }
            },
            None | Some(Value::Null) => {
                errors.push(field_error(
                    "wording",
                    "is required: the letter's body, paragraphs separated by blank lines",
                ));
                None
            }
            Some(_) => {
                errors.push(field_error("wording", "must be a string"));
                None
            }
        };
        match (name, kind, wording) {
            (Some(name), Some(kind), Some((text, wording))) if errors.is_empty() => {
                Ok(TemplateRequest {
                    name,
                    kind,
                    text,
                    wording,
                })
            }
            _ => Err(errors),
        }
    }
}

/// The French text a placeholder stands for in this composition.
pub fn placeholder_value(c: &Composition, name: &str) -> Option<String> {
    let r = &c.request;
    let totals = &c.breakdown.totals;
    Some(match name {
        "creditor.name" => r.creditor.name.clone(),
        "creditor.address" => r.creditor.address.one_line(),
        "creditor.siren" => r.creditor.siren.as_ref()?.display(),
        "debtor.name" => r.debtor.name.clone(),
        "debtor.address" => r.debtor.address.one_line(),
        "agency.name" => r.agency.as_ref()?.name.clone(),
        "agency.address" => r.agency.as_ref()?.address.one_line(),
        "agency.mandate_reference" => r.agency.as_ref()?.mandate_reference.clone(),
        "invoices" => r
            .invoices
            .iter()
            .map(|i| i.number.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        "principal" => french::euros(totals.principal_cents),
        "interest" => french::euros(totals.interest_cents),
        "indemnity" => french::euros(totals.indemnity_cents),
        "total" => french::euros(totals.total_cents),
        "deadline" => deadline_text(r.deadline_days),
        "deadline_days" => r.deadline_days.to_string(),
        "letter_date" => french::date(c.letter_date),
        "first_letter.reference" => r.first_letter.as_ref()?.reference.clone(),
        "first_letter.date" => french::date(r.first_letter.as_ref()?.date),
        "payment.link" => r.payment.link.as_ref()?.as_str().to_string(),
        "payment.iban" => r.payment.iban.as_ref()?.display(),
        "payment.instructions" => r.payment.instructions.clone()?,
        _ => return None,
    })
}

/// `8 jours à compter de la réception de la présente lettre`.
pub fn deadline_text(days: u8) -> String {
    let unit = if days == 1 { "jour" } else { "jours" };
    format!("{days} {unit} à compter de la réception de la présente lettre")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_placeholders_are_all_reported() {
        let errors = Wording::parse(
            "Bonjour {{debtor.nom}},\n\nPayez {{totl}} sous {{deadline}}.",
            "wording",
        )
        .expect_err("refused");
        assert_eq!(errors.len(), 2);
        assert!(errors[0].message.contains("{{debtor.nom}}"));
        assert!(errors[1].message.contains("{{totl}}"));
    }

    #[test]
    fn unclosed_placeholders_are_refused() {
        assert!(Wording::parse("Payez {{total avant", "w").is_err());
        assert!(Wording::parse("   ", "w").is_err());
    }

    #[test]
    fn paragraphs_are_split_on_blank_lines() {
        let w = Wording::parse("Un\ndeux\n\n\nTrois {{ total }}", "w").expect("accepted");
        assert_eq!(w.paragraphs(), ["Un deux", "Trois {{ total }}"]);
    }

    #[test]
    fn wording_that_imitates_a_bailiffs_act_is_refused_with_the_reason() {
        for text in [
            "Ceci vaut Commandement de payer.",
            "Notre huissier passera.",
            "Un commissaire de justice sera mandaté.",
            "Une saisie suivra.",
            "Signification vous est faite.",
        ] {
            let errors = Wording::parse(text, "wording").expect_err("refused");
            assert!(
                errors[0].message.contains("Code pénal, art. 433-13"),
                "{text}: {errors:?}"
            );
        }
        assert!(Wording::parse("Nous saisirons le tribunal.", "w").is_ok());
    }
}
