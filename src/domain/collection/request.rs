//! The `compose` object of `POST /v1/letters`, checked field by field. Every invalid or
//! missing element is reported at once, with its JSON path (`compose.invoices[1].due_date`).
//!
//! Rules beyond the shape of each field (they are the composer's, documented here):
//! - every invoice must be due on or before the letter date (a letter does not claim what is
//!   not yet owed), have `paid_cents < amount_cents` (an undated payment in full leaves no
//!   date to compute late interest to; dated `payments` may pay it in full, and the interest
//!   and indemnity of a late payment are then still claimed), and a `due_date` on or after
//!   its `issue_date`; invoice numbers are unique;
//! - `payments[]` are dated from the issue date to the letter date, with positive amounts;
//!   `prior_notices[]` are dated before the letter date and cover invoices of this letter
//!   already overdue on their date; with an agency that wrote before, its first letter is
//!   required (Code des procédures civiles d'exécution, art. R.124-4);
//! - a `mise_en_demeure` needs at least one invoice overdue on the letter date;
//! - `payment` must say how to pay (a link, an IBAN or instructions): Code des procédures civiles d'exécution, art. R.124-4 4° for an
//!   agency, and a demand without a way to pay is of no use;
//! - `first_letter.date` is before the letter date; `first_letter.kind` (optional) tells
//!   whether that first letter was a mise en demeure — only then does a consumer owe
//!   legal-rate interest from its date (Code civil 1231-6); it is never assumed;
//! - `creditor.kind` (optional, default `professional`) is `private_person` for a natural
//!   person not acting for professional purposes: the legal rate differs, and neither the
//!   commercial late-payment rules nor the two-year consumer prescription apply;
//! - `creditor.merchant` and `debtor.merchant` (optional, default `false`) say that the party
//!   is a merchant (commerçant, Code de commerce L.121-1): only then is prescription that of
//!   Code de commerce L.110-4 rather than Code civil 2224. A private person and a consumer
//!   are not acting for their trade, so neither may be a merchant for this claim. A flag, not
//!   a third `kind`: being a merchant does not change the interest regime (L.441-10 applies
//!   to every professional), and `professional` keeps its meaning for existing senders.

use serde::Serialize;
use serde_json::{Map, Value};
use time::Date;
use time::macros::format_description;

use crate::domain::letter::{FieldError, MAX_TEXT_LEN, RecipientKind, field_error};

/// Default time given to pay, in days (customary in France for a mise en demeure).
pub const DEFAULT_DEADLINE_DAYS: u8 = 8;
/// Longest time to pay the composer accepts, in days.
pub const MAX_DEADLINE_DAYS: u8 = 60;
/// Most invoices in one letter.
pub const MAX_INVOICES_PER_LETTER: usize = 100;
/// Most lines of a postal address (NF Z10-011 allows six).
pub const MAX_ADDRESS_LINES: usize = 6;
/// Longest city name written before the letter's date.
pub const MAX_CITY_LEN: usize = 100;
/// Longest payment instructions or link.
pub const MAX_LONG_TEXT_LEN: usize = 1000;
/// Amounts stay below 2^53 so that they survive every JSON parser (RFC 8785 evidence).
pub const MAX_AMOUNT_CENTS: i64 = (1 << 53) - 1;

/// Relance (reminder) or mise en demeure (formal notice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LetterKind {
    /// A reminder to pay.
    Relance,
    /// A formal notice to pay (Code civil 1344), the step before court action.
    MiseEnDemeure,
}

impl LetterKind {
    /// The stored and requested name.
    pub fn as_str(self) -> &'static str {
        match self {
            LetterKind::Relance => "relance",
            LetterKind::MiseEnDemeure => "mise_en_demeure",
        }
    }

    /// Parses `relance` or `mise_en_demeure`.
    pub fn parse(s: &str) -> Option<LetterKind> {
        match s {
            "relance" => Some(LetterKind::Relance),
            "mise_en_demeure" => Some(LetterKind::MiseEnDemeure),
            _ => None,
        }
    }
}

/// Whether the creditor acts as a professional or is a private person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CreditorKind {
    /// A business or professional (the default).
    Professional,
    /// A natural person not acting for professional purposes (own legal rate, CMF L.313-2).
    PrivatePerson,
}

/// A postal address, one entry per line, each trimmed and non-empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct PostalAddress(pub Vec<String>);

impl PostalAddress {
    /// The lines joined with commas, for running text.
    pub fn one_line(&self) -> String {
        self.0.join(", ")
    }

    /// The city of a French address: its last line is the postal code and the locality
    /// (NF Z10-011: `69002 LYON`, `75008 Paris CEDEX 08`), so `69002 Lyon` gives `Lyon`.
    /// `None` when the last line does not start with a five-digit postal code (a foreign
    /// address, a country line): the city is then not guessed.
    pub fn city(&self) -> Option<String> {
        let last = self.0.last()?.trim();
        let (code, rest) = last.split_once(char::is_whitespace)?;
        if code.len() != 5 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let words: Vec<&str> = rest
            .split_whitespace()
            .take_while(|w| !w.eq_ignore_ascii_case("cedex"))
            .collect();
        if words.is_empty() {
            return None;
        }
        Some(city_case(&words.join(" ")))
    }
}

/// `SAINT-ÉTIENNE` → `Saint-Étienne`: postal addresses write the locality in capitals
/// (NF Z10-011), a letter's place line does not. A name already in mixed case is kept.
fn city_case(city: &str) -> String {
    if city.chars().any(char::is_lowercase) {
        return city.to_string();
    }
    let mut out = String::with_capacity(city.len());
    let mut start = true;
    for c in city.chars() {
        if start {
            out.push(c);
        } else {
            out.extend(c.to_lowercase());
        }
        start = matches!(c, ' ' | '-' | '\'' | '’');
    }
    out
}

/// A SIREN number (9 digits, Luhn check digit; INSEE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Siren(String);

impl Siren {
    /// Parses 9 digits, spaces allowed, with a valid Luhn checksum.
    pub fn parse(raw: &str) -> Result<Siren, &'static str> {
        let digits: String = raw.chars().filter(|c| *c != ' ').collect();
        if digits.len() != 9 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err("must be 9 digits");
        }
        let sum: u32 = digits
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0');
                if i % 2 == 1 {
                    let d2 = d * 2;
                    if d2 > 9 { d2 - 9 } else { d2 }
                } else {
                    d
                }
            })
            .sum();
        if !sum.is_multiple_of(10) {
            return Err("has a wrong check digit (Luhn)");
        }
        Ok(Siren(digits))
    }

    /// The 9 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Grouped `123 456 789`, as printed.
    pub fn display(&self) -> String {
        format!("{} {} {}", &self.0[0..3], &self.0[3..6], &self.0[6..9])
    }
}

/// An IBAN whose ISO 13616 check digits are right (mod 97 = 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Iban(String);

impl Iban {
    /// Parses an IBAN, spaces allowed, letters in either case.
    pub fn parse(raw: &str) -> Result<Iban, &'static str> {
        let compact: String = raw
            .chars()
            .filter(|c| *c != ' ')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if !(15..=34).contains(&compact.len())
            || !compact.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err("must be 15 to 34 letters and digits");
        }
        let b = compact.as_bytes();
        if !b[0].is_ascii_uppercase()
            || !b[1].is_ascii_uppercase()
            || !b[2].is_ascii_digit()
            || !b[3].is_ascii_digit()
        {
            return Err("must start with a country code and two check digits");
        }
        // ISO 13616: move the first four characters to the end, letters become 10..35,
        // and the number must be 1 modulo 97 (computed digit by digit).
        let mut rem: u32 = 0;
        for c in compact[4..].chars().chain(compact[..4].chars()) {
            let v = c.to_digit(36).unwrap_or(0);
            rem = if v >= 10 {
                (rem * 100 + v) % 97
            } else {
                (rem * 10 + v) % 97
            };
        }
        if rem != 1 {
            return Err("has wrong check digits (ISO 13616)");
        }
        Ok(Iban(compact))
    }

    /// Grouped by four, as printed.
    pub fn display(&self) -> String {
        self.0
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// An `https://` payment link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct PaymentLink(String);

impl PaymentLink {
    /// Accepts `https://host/...` only: no other scheme, no spaces, no credentials.
    pub fn parse(raw: &str) -> Result<PaymentLink, &'static str> {
        let s = raw.trim();
        let Some(rest) = s.strip_prefix("https://") else {
            return Err("must be an https:// link");
        };
        if s.len() > MAX_LONG_TEXT_LEN {
            return Err("is too long");
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces or control characters");
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.contains('@') {
            return Err("must not carry credentials");
        }
        let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
        if host.is_empty()
            || !host.contains('.')
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err("must name a host such as pay.example.fr");
        }
        Ok(PaymentLink(s.to_string()))
    }

    /// The link.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who is owed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Creditor {
    /// Name or company name.
    pub name: String,
    /// Address or registered office.
    pub address: PostalAddress,
    /// SIREN, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub siren: Option<Siren>,
    /// Professional or private person.
    pub kind: CreditorKind,
    /// A merchant (commerçant): prescription of Code de commerce L.110-4.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub merchant: bool,
    /// The city written before the letter's date ("Lyon, le …"); else read from the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
}

/// The collection agency acting for the creditor (Code des procédures civiles d'exécution, art. R.124-1 and following).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Agency {
    /// Name or company name.
    pub name: String,
    /// Address or registered office.
    pub address: PostalAddress,
    /// Reference of the written mandate given by the creditor (Code des procédures civiles d'exécution, art. R.124-3).
    pub mandate_reference: String,
    /// The city written before the letter's date ("Lyon, le …"); else read from the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
}

/// Who owes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Debtor {
    /// Name or company name.
    pub name: String,
    /// Postal address.
    pub address: PostalAddress,
    /// Professional or consumer: interest, indemnity and prescription differ. A public
    /// buyer is a professional recipient (no CPCE L.100 consent) with `public_buyer` set.
    pub kind: RecipientKind,
    /// A merchant (commerçant): prescription of Code de commerce L.110-4.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub merchant: bool,
    /// `debtor.kind` was `public_buyer`: a buyer under the Code de la commande publique,
    /// whose late payments bear intérêts moratoires (L.2192-13, R.2192-31).
    pub public_buyer: bool,
    /// Collective proceedings opened against the debtor, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insolvency: Option<Insolvency>,
}

/// The kind of collective proceedings (Code de commerce, livre VI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InsolvencyKind {
    /// Procédure de sauvegarde (L.620-1 and following).
    Sauvegarde,
    /// Redressement judiciaire (L.631-1 and following).
    Redressement,
    /// Liquidation judiciaire (L.640-1 and following).
    Liquidation,
}

impl InsolvencyKind {
    /// French name, as in a refusal message.
    pub fn label_fr(self) -> &'static str {
        match self {
            InsolvencyKind::Sauvegarde => "sauvegarde",
            InsolvencyKind::Redressement => "redressement judiciaire",
            InsolvencyKind::Liquidation => "liquidation judiciaire",
        }
    }
}

/// Collective proceedings opened against the debtor: debts born before the opening judgment
/// cannot be paid nor claimed outside the proceedings (Code de commerce L.622-7, L.622-21);
/// the creditor declares them to the mandataire judiciaire instead (L.622-24).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Insolvency {
    /// Which proceedings.
    pub kind: InsolvencyKind,
    /// Date of the opening judgment.
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "crate::core::french::iso_date::serialize")]
    pub opened_on: Date,
}

/// One unpaid invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Invoice {
    /// Invoice number, as on the invoice.
    pub number: String,
    /// Issue date.
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "crate::core::french::iso_date::serialize")]
    pub issue_date: Date,
    /// Due date.
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "crate::core::french::iso_date::serialize")]
    pub due_date: Date,
    /// Amount including taxes, in cents.
    pub amount_cents: i64,
    /// Already paid, in cents.
    pub paid_cents: i64,
    /// When the goods were delivered or the service performed (default: the issue date).
    /// Code civil 2224, Code de la consommation L.218-2: prescription runs from it.
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "crate::core::french::iso_date::serialize")]
    pub performed_on: Date,
    /// The debtor's last acknowledgement of the debt, if any: it restarts prescription
    /// (Code civil 2240).
    #[schema(value_type = Option<String>, format = Date)]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::core::french::iso_date::option::serialize")]
    pub acknowledged_on: Option<Date>,
    /// The contract makes the due date the start of prescription.
    pub prescription_from_due_date: bool,
    /// Dated payments, in the order given (applied in date order; see [`DatedPayment`]).
    pub payments: Vec<DatedPayment>,
}

/// How a dated payment is imputed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Imputation {
    /// Code civil 1343-1: a partial payment of a debt bearing interest goes first to the
    /// interest, then to the principal (the default).
    InterestFirst,
    /// Agreed imputation (Code civil 1342-10, 1343-1 "sauf convention contraire"): to the
    /// principal first, the rest (if any) to the interest.
    Principal,
}

/// One dated payment of an invoice (`invoices[].payments[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DatedPayment {
    /// Day it was received.
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "crate::core::french::iso_date::serialize")]
    pub date: Date,
    /// Amount, in cents.
    pub amount_cents: i64,
    /// How it is imputed.
    pub imputation: Imputation,
}

/// The kind of an earlier letter (`compose.prior_notices[].kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PriorNoticeKind {
    /// A mise en demeure: a consumer's legal interest runs from it, for the invoices it
    /// covered (Code civil 1231-6, 1344-1).
    MiseEnDemeure,
    /// A reminder: starts no interest.
    Relance,
    /// The collection agency's first letter, which its later letters recall (Code des
    /// procédures civiles d'exécution, art. R.124-4).
    AgencyFirstLetter,
}

/// Who sent an earlier letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeSender {
    /// The creditor itself (the default, except for `agency_first_letter`).
    Creditor,
    /// The collection agency of `compose.agency`.
    Agency,
}

/// An earlier letter for this debt (`compose.prior_notices[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PriorNotice {
    /// Its kind.
    pub kind: PriorNoticeKind,
    /// Its reference.
    pub reference: String,
    /// Its date (before the letter date).
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "crate::core::french::iso_date::serialize")]
    pub date: Date,
    /// Numbers of the invoices of this letter it covered (each overdue on its date).
    pub invoices: Vec<String>,
    /// Who sent it.
    pub sent_by: NoticeSender,
}

/// How to pay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Payment {
    /// Online payment link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<PaymentLink>,
    /// Account for a transfer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iban: Option<Iban>,
    /// Free instructions (cheque, reference to quote…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

/// The first letter sent for this debt, which later letters recall (Code des procédures civiles d'exécution, art. R.124-4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FirstLetter {
    /// Its reference.
    pub reference: String,
    /// Its date.
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "crate::core::french::iso_date::serialize")]
    pub date: Date,
    /// Its kind, when known: a first mise en demeure starts a consumer's legal interest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<LetterKind>,
}

/// A checked `compose` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComposeRequest {
    /// Relance or mise en demeure.
    pub kind: LetterKind,
    /// Who is owed.
    pub creditor: Creditor,
    /// The agency collecting for the creditor, if any.
    pub agency: Option<Agency>,
    /// Who owes.
    pub debtor: Debtor,
    /// The invoices claimed, in the order given.
    pub invoices: Vec<Invoice>,
    /// Days given to pay after receipt.
    pub deadline_days: u8,
    /// How to pay.
    pub payment: Payment,
    /// The first letter, for later letters.
    pub first_letter: Option<FirstLetter>,
    /// Earlier letters: mises en demeure (a consumer's interest), relances, the agency's
    /// first letter (R.124-4).
    pub prior_notices: Vec<PriorNotice>,
    /// Contractual late-interest rate, in basis points.
    pub contract_rate_bp: Option<i64>,
    /// Claim time-barred invoices anyway (recorded in the evidence).
    pub override_prescription: bool,
}

/// The fields of `compose`; any other is reported as unknown. Each `*_FIELDS` list below is
/// the one of a nested object, and each matches the properties of its OpenAPI schema
/// (`ComposeBody`, `CreditorBody`, …; checked by the tests of `http::openapi`).
pub const COMPOSE_FIELDS: &[&str] = &[
    "kind",
    "creditor",
    "agency",
    "debtor",
    "invoices",
    "deadline_days",
    "payment",
    "first_letter",
    "prior_notices",
    "contract_rate_percent",
    "override_prescription",
];

/// The fields of `compose.creditor`.
pub const CREDITOR_FIELDS: &[&str] = &["name", "address", "siren", "kind", "merchant", "city"];
/// The fields of `compose.agency`.
pub const AGENCY_FIELDS: &[&str] = &["name", "address", "mandate_reference", "city"];
/// The fields of `compose.debtor`.
pub const DEBTOR_FIELDS: &[&str] = &["name", "address", "kind", "insolvency", "merchant"];
/// The fields of `compose.debtor.insolvency`.
pub const INSOLVENCY_FIELDS: &[&str] = &["kind", "opened_on"];
/// The fields of each `compose.invoices[]`.
pub const INVOICE_FIELDS: &[&str] = &[
    "number",
    "issue_date",
    "due_date",
    "amount_cents",
    "paid_cents",
    "performed_on",
    "acknowledged_on",
    "prescription_from_due_date",
    "payments",
];
/// The fields of each `compose.invoices[].payments[]`.
pub const DATED_PAYMENT_FIELDS: &[&str] = &["date", "amount_cents", "imputation"];
/// The fields of each `compose.prior_notices[]`.
pub const PRIOR_NOTICE_FIELDS: &[&str] = &["kind", "reference", "date", "invoices", "sent_by"];
/// The fields of `compose.payment`.
pub const PAYMENT_FIELDS: &[&str] = &["link", "iban", "instructions"];
/// The fields of `compose.first_letter`.
pub const FIRST_LETTER_FIELDS: &[&str] = &["reference", "date", "kind"];

/// Most dated payments per invoice, and most earlier letters.
pub const MAX_PAYMENTS_PER_INVOICE: usize = 100;

impl ComposeRequest {
    /// The parties as prescription sees them.
    pub fn parties(&self) -> super::prescription::Parties {
        super::prescription::Parties {
            creditor: self.creditor.kind,
            debtor: self.debtor.kind,
            merchant: self.creditor.merchant || self.debtor.merchant,
        }
    }

    /// Checks the shape and values of a `compose` object for a letter dated `letter_date`,
    /// reporting every invalid element at once. Paths start with `compose.`.
    pub fn check(value: &Value, letter_date: Date) -> Result<ComposeRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        let Some(obj) = value.as_object() else {
            return Err(vec![field_error("compose", "must be an object")]);
        };
        unknown_keys(obj, "compose", COMPOSE_FIELDS, &mut errors);

        let kind = match obj.get("kind") {
            Some(Value::String(s)) => LetterKind::parse(s).or_else(|| {
                errors.push(field_error(
                    "compose.kind",
                    "must be \"relance\" or \"mise_en_demeure\"",
                ));
                None
            }),
            None | Some(Value::Null) => {
                errors.push(field_error(
                    "compose.kind",
                    "is required: \"relance\" or \"mise_en_demeure\"",
                ));
                None
            }
            Some(_) => {
                errors.push(field_error(
                    "compose.kind",
                    "must be \"relance\" or \"mise_en_demeure\"",
                ));
                None
            }
        };

        let creditor = object(obj, "compose", "creditor", true, &mut errors).and_then(|c| {
            unknown_keys(
                c,
                "compose.creditor",
                CREDITOR_FIELDS,
                &mut errors,
            );
            let name = text(
                c,
                "compose.creditor",
                "name",
                true,
                MAX_TEXT_LEN,
                &mut errors,
            );
            let address = address(c, "compose.creditor", &mut errors);
            let city = text(
                c,
                "compose.creditor",
                "city",
                false,
                MAX_CITY_LEN,
                &mut errors,
            );
            let siren =
                text(c, "compose.creditor", "siren", false, 20, &mut errors).and_then(|s| {
                    match Siren::parse(&s) {
                        Ok(s) => Some(s),
                        Err(m) => {
                            errors.push(field_error("compose.creditor.siren", m));
                            None
                        }
                    }
                });
            let siren_invalid = errors.iter().any(|e| e.field == "compose.creditor.siren");
            let kind = match c.get("kind") {
                None | Some(Value::Null) => Some(CreditorKind::Professional),
                Some(Value::String(s)) if s == "professional" => Some(CreditorKind::Professional),
                Some(Value::String(s)) if s == "private_person" => {
                    Some(CreditorKind::PrivatePerson)
                }
                Some(_) => {
                    errors.push(field_error(
                        "compose.creditor.kind",
                        "must be \"professional\" or \"private_person\"",
                    ));
                    None
                }
            };
            let merchant = merchant_flag(c, "compose.creditor", &mut errors);
            if kind == Some(CreditorKind::PrivatePerson) && merchant == Some(true) {
                errors.push(field_error(
                    "compose.creditor.merchant",
                    "must not be true for a private_person creditor: a merchant acts for its trade (Code de commerce L.121-1)",
                ));
                return None;
            }
            if siren_invalid {
                return None;
            }
            Some(Creditor {
                name: name?,
                address: address?,
                siren,
                kind: kind?,
                merchant: merchant?,
                city,
            })
        });

        let agency = object(obj, "compose", "agency", false, &mut errors).and_then(|a| {
            unknown_keys(a, "compose.agency", AGENCY_FIELDS, &mut errors);
            let name = text(a, "compose.agency", "name", true, MAX_TEXT_LEN, &mut errors);
            let address = address(a, "compose.agency", &mut errors);
            let city = text(
                a,
                "compose.agency",
                "city",
                false,
                MAX_CITY_LEN,
                &mut errors,
            );
            let mandate_reference = text(
                a,
                "compose.agency",
                "mandate_reference",
                true,
                MAX_TEXT_LEN,
                &mut errors,
            );
            Some(Agency {
                name: name?,
                address: address?,
                mandate_reference: mandate_reference?,
                city,
            })
        });
        let agency_given = matches!(obj.get("agency"), Some(v) if !v.is_null());

        let debtor = object(obj, "compose", "debtor", true, &mut errors).and_then(|d| {
            unknown_keys(
                d,
                "compose.debtor",
                DEBTOR_FIELDS,
                &mut errors,
            );
            let insolvency = match d.get("insolvency") {
                None | Some(Value::Null) => Some(None),
                Some(Value::Object(p)) => {
                    let path = "compose.debtor.insolvency";
                    unknown_keys(p, path, INSOLVENCY_FIELDS, &mut errors);
                    let kind = match p.get("kind").and_then(Value::as_str) {
                        Some("sauvegarde") => Some(InsolvencyKind::Sauvegarde),
                        Some("redressement") => Some(InsolvencyKind::Redressement),
                        Some("liquidation") => Some(InsolvencyKind::Liquidation),
                        _ => {
                            errors.push(field_error(
                                &format!("{path}.kind"),
                                "must be \"sauvegarde\", \"redressement\" or \"liquidation\"",
                            ));
                            None
                        }
                    };
                    let opened_on = date_field(p, path, "opened_on", &mut errors);
                    if let Some(d) = opened_on
                        && d > letter_date
                    {
                        errors.push(field_error(
                            &format!("{path}.opened_on"),
                            "must not be after the letter date",
                        ));
                    }
                    match (kind, opened_on) {
                        (Some(kind), Some(opened_on)) if opened_on <= letter_date => {
                            Some(Some(Insolvency { kind, opened_on }))
                        }
                        _ => None,
                    }
                }
                Some(_) => {
                    errors.push(field_error(
                        "compose.debtor.insolvency",
                        "must be an object {kind, opened_on}",
                    ));
                    None
                }
            };
            let name = text(d, "compose.debtor", "name", true, MAX_TEXT_LEN, &mut errors);
            let address = address(d, "compose.debtor", &mut errors);
            let kind = match d.get("kind") {
                Some(Value::String(s)) if s == "professional" => {
                    Some((RecipientKind::Professional, false))
                }
                Some(Value::String(s)) if s == "consumer" => Some((RecipientKind::Consumer, false)),
                Some(Value::String(s)) if s == "public_buyer" => {
                    Some((RecipientKind::Professional, true))
                }
                None | Some(Value::Null) => {
                    errors.push(field_error(
                        "compose.debtor.kind",
                        "is required: \"professional\", \"consumer\" or \"public_buyer\"",
                    ));
                    None
                }
                Some(_) => {
                    errors.push(field_error(
                        "compose.debtor.kind",
                        "must be \"professional\", \"consumer\" or \"public_buyer\"",
                    ));
                    None
                }
            };
            let merchant = merchant_flag(d, "compose.debtor", &mut errors);
            if matches!(kind, Some((RecipientKind::Consumer, _))) && merchant == Some(true) {
                errors.push(field_error(
                    "compose.debtor.merchant",
                    "must not be true for a consumer debtor: a consumer does not act for a trade (Code de la consommation, article liminaire)",
                ));
                return None;
            }
            let (kind, public_buyer) = kind?;
            Some(Debtor {
                name: name?,
                address: address?,
                kind,
                merchant: merchant?,
                public_buyer,
                insolvency: insolvency?,
            })
        });

        let mut invoices = Vec::new();
        let mut invoices_valid = true;
        match obj.get("invoices") {
            None | Some(Value::Null) => {
                invoices_valid = false;
                errors.push(field_error(
                    "compose.invoices",
                    "is required: the unpaid invoices claimed",
                ));
            }
            Some(Value::Array(items)) => {
                if items.is_empty() {
                    invoices_valid = false;
                    errors.push(field_error(
                        "compose.invoices",
                        "must list at least one invoice",
                    ));
                }
                if items.len() > MAX_INVOICES_PER_LETTER {
                    invoices_valid = false;
                    errors.push(field_error(
                        "compose.invoices",
                        &format!("must list at most {MAX_INVOICES_PER_LETTER} invoices"),
                    ));
                }
                for (i, item) in items.iter().enumerate() {
                    match invoice(item, i, letter_date, &mut errors) {
                        Some(inv) => {
                            if invoices.iter().any(|o: &Invoice| o.number == inv.number) {
                                invoices_valid = false;
                                errors.push(field_error(
                                    &format!("compose.invoices[{i}].number"),
                                    "is listed twice",
                                ));
                            }
                            invoices.push(inv);
                        }
                        None => invoices_valid = false,
                    }
                }
            }
            Some(_) => {
                invoices_valid = false;
                errors.push(field_error(
                    "compose.invoices",
                    "must be a list of invoices",
                ));
            }
        }
        if kind == Some(LetterKind::MiseEnDemeure)
            && invoices_valid
            && !invoices.iter().any(|i| i.due_date < letter_date)
        {
            errors.push(field_error(
                "compose.invoices",
                "a mise en demeure needs at least one invoice overdue on the letter date",
            ));
        }

        let deadline_days = match obj.get("deadline_days") {
            None | Some(Value::Null) => Some(DEFAULT_DEADLINE_DAYS),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(d) if (1..=u64::from(MAX_DEADLINE_DAYS)).contains(&d) => u8::try_from(d).ok(),
                _ => {
                    errors.push(field_error(
                        "compose.deadline_days",
                        &format!("must be a whole number of days from 1 to {MAX_DEADLINE_DAYS}"),
                    ));
                    None
                }
            },
            Some(_) => {
                errors.push(field_error(
                    "compose.deadline_days",
                    &format!("must be a whole number of days from 1 to {MAX_DEADLINE_DAYS}"),
                ));
                None
            }
        };

        let payment = match object(obj, "compose", "payment", false, &mut errors) {
            Some(p) => {
                unknown_keys(p, "compose.payment", PAYMENT_FIELDS, &mut errors);
                let before = errors.len();
                let link = text(
                    p,
                    "compose.payment",
                    "link",
                    false,
                    MAX_LONG_TEXT_LEN,
                    &mut errors,
                )
                .and_then(|l| match PaymentLink::parse(&l) {
                    Ok(l) => Some(l),
                    Err(m) => {
                        errors.push(field_error("compose.payment.link", m));
                        None
                    }
                });
                let iban =
                    text(p, "compose.payment", "iban", false, 50, &mut errors).and_then(|s| {
                        match Iban::parse(&s) {
                            Ok(i) => Some(i),
                            Err(m) => {
                                errors.push(field_error("compose.payment.iban", m));
                                None
                            }
                        }
                    });
                let instructions = text(
                    p,
                    "compose.payment",
                    "instructions",
                    false,
                    MAX_LONG_TEXT_LEN,
                    &mut errors,
                );
                if errors.len() > before {
                    None
                } else if link.is_none() && iban.is_none() && instructions.is_none() {
                    errors.push(field_error(
                        "compose.payment",
                        "must give at least one of link, iban, instructions: how to pay (Code des procédures civiles d'exécution, art. R.124-4 4°)",
                    ));
                    None
                } else {
                    Some(Payment {
                        link,
                        iban,
                        instructions,
                    })
                }
            }
            None => {
                if !errors.iter().any(|e| e.field == "compose.payment") {
                    errors.push(field_error(
                        "compose.payment",
                        "is required: how to pay (link, iban or instructions; Code des procédures civiles d'exécution, art. R.124-4 4°)",
                    ));
                }
                None
            }
        };

        let first_letter_given = matches!(obj.get("first_letter"), Some(v) if !v.is_null());
        let first_letter =
            object(obj, "compose", "first_letter", false, &mut errors).and_then(|f| {
                unknown_keys(f, "compose.first_letter", FIRST_LETTER_FIELDS, &mut errors);
                let reference = text(
                    f,
                    "compose.first_letter",
                    "reference",
                    true,
                    MAX_TEXT_LEN,
                    &mut errors,
                );
                let date = date_field(f, "compose.first_letter", "date", &mut errors);
                if let Some(d) = date
                    && d >= letter_date
                {
                    errors.push(field_error(
                        "compose.first_letter.date",
                        "must be before the letter date",
                    ));
                    return None;
                }
                let kind = match f.get("kind") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) if LetterKind::parse(s).is_some() => {
                        LetterKind::parse(s)
                    }
                    Some(_) => {
                        errors.push(field_error(
                            "compose.first_letter.kind",
                            "must be \"relance\" or \"mise_en_demeure\"",
                        ));
                        return None;
                    }
                };
                Some(FirstLetter {
                    reference: reference?,
                    date: date?,
                    kind,
                })
            });

        let prior_notices = prior_notices(
            obj.get("prior_notices"),
            &invoices,
            invoices_valid,
            letter_date,
            &mut errors,
        );
        // Code des procédures civiles d'exécution, art. R.124-4 (last paragraph): the
        // agency's later letters recall the reference and date of its first letter.
        if let Some(notices) = &prior_notices {
            let agency_first = notices
                .iter()
                .filter(|n| n.kind == PriorNoticeKind::AgencyFirstLetter)
                .count();
            if agency_first > 0 && !agency_given {
                errors.push(field_error(
                    "compose.prior_notices",
                    "an agency_first_letter needs compose.agency: it is the collection agency's first letter (Code des procédures civiles d'exécution, art. R.124-4)",
                ));
            }
            if agency_first > 1 {
                errors.push(field_error(
                    "compose.prior_notices",
                    "lists more than one agency_first_letter: the agency has one first letter",
                ));
            }
            let agency_wrote_before = notices.iter().any(|n| n.sent_by == NoticeSender::Agency);
            if agency_given && agency_wrote_before && agency_first == 0 && !first_letter_given {
                errors.push(field_error(
                    "compose.prior_notices",
                    "the agency wrote before, so this is not its first letter: give its first letter (kind \"agency_first_letter\", reference and date), which later letters must recall (Code des procédures civiles d'exécution, art. R.124-4)",
                ));
            }
        }

        let contract_rate_bp = match obj.get("contract_rate_percent") {
            None | Some(Value::Null) => None,
            Some(v) => match percent_to_basis_points(v) {
                Some(bp) if bp > 0 && bp <= 10_000 => Some(bp),
                _ => {
                    errors.push(field_error(
                        "compose.contract_rate_percent",
                        "must be a yearly rate in percent above 0 and at most 100, with at most two decimals (e.g. 12.5)",
                    ));
                    None
                }
            },
        };
        if contract_rate_bp.is_some() && debtor.as_ref().is_some_and(|d| d.public_buyer) {
            errors.push(field_error(
                "compose.contract_rate_percent",
                "must not be given for a public buyer: the rate of its intérêts moratoires is set by the Code de la commande publique (R.2192-31: ECB rate + 8 points)",
            ));
        }
        let contract_rate_invalid = errors
            .iter()
            .any(|e| e.field == "compose.contract_rate_percent");

        let override_prescription = match obj.get("override_prescription") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                errors.push(field_error(
                    "compose.override_prescription",
                    "must be true or false",
                ));
                false
            }
        };

        if !errors.is_empty() {
            return Err(errors);
        }
        match (kind, creditor, debtor, deadline_days, payment) {
            (Some(kind), Some(creditor), Some(debtor), Some(deadline_days), Some(payment))
                if invoices_valid
                    && !contract_rate_invalid
                    && (agency.is_some() || !agency_given)
                    && (first_letter.is_some() || !first_letter_given) =>
            {
                Ok(ComposeRequest {
                    kind,
                    creditor,
                    agency,
                    debtor,
                    invoices,
                    deadline_days,
                    payment,
                    first_letter,
                    prior_notices: prior_notices.unwrap_or_default(),
                    contract_rate_bp,
                    override_prescription,
                })
            }
            // Every `None` above pushed its error; this keeps a wrong branch from passing.
            _ => Err(vec![field_error("compose", "is not valid")]),
        }
    }
}

/// The `compose` object of `POST /v1/letters`, as the OpenAPI document publishes it:
/// [`ComposeRequest::check`] reads it field by field to list every problem at once. The
/// properties of this schema and of the nested ones below match [`COMPOSE_FIELDS`] and the
/// other `*_FIELDS` lists, and bodies built from them pass the check (tests of
/// `http::openapi`).
#[derive(utoipa::ToSchema)]
pub struct ComposeBody {
    /// `relance` or `mise_en_demeure`.
    pub kind: LetterKind,
    /// Who is owed.
    pub creditor: CreditorBody,
    /// The agency collecting for the creditor (Code des procédures civiles d'exécution, art. R.124-4 mentions are then required).
    pub agency: Option<AgencyBody>,
    /// Who owes.
    pub debtor: DebtorBody,
    /// 1 to 100 unpaid invoices, each due on or before the letter date.
    pub invoices: Vec<InvoiceBody>,
    /// Days to pay after receipt, 1 to 60 (default 8).
    #[schema(minimum = 1, maximum = 60, default = 8)]
    pub deadline_days: Option<u8>,
    /// How to pay: at least one of link, iban, instructions.
    pub payment: PaymentBody,
    /// The first letter for this debt, recalled by later letters.
    pub first_letter: Option<FirstLetterBody>,
    /// Earlier letters: mises en demeure (from which a consumer's interest runs for the
    /// invoices each covered), relances, the agency's first letter (R.124-4).
    pub prior_notices: Option<Vec<PriorNoticeBody>>,
    /// Contractual late-interest rate in percent a year, at most two decimals (e.g. 12.5).
    #[schema(value_type = Option<f64>, example = 12.5)]
    pub contract_rate_percent: Option<String>,
    /// Claim time-barred invoices anyway (recorded in the evidence). Default false.
    pub override_prescription: Option<bool>,
}

/// A postal address: one string with lines separated by `\n`, or a list of lines (≤ 6).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, example = "12 rue des Lilas\n69003 Lyon")]
pub struct AddressBody(pub String);

/// `compose.creditor`.
#[derive(utoipa::ToSchema)]
pub struct CreditorBody {
    /// Name or company name.
    pub name: String,
    /// Address or registered office.
    pub address: AddressBody,
    /// SIREN (9 digits, Luhn check).
    pub siren: Option<String>,
    /// `professional` (default) or `private_person`.
    pub kind: Option<CreditorKind>,
    /// `true` when the creditor is a merchant (commerçant): prescription of Code de commerce
    /// L.110-4 rather than Code civil 2224. Default false; never with `private_person`.
    pub merchant: Option<bool>,
    /// City written before the letter's date (≤ 100 characters); default: read from the
    /// address's last line (`69002 Lyon`).
    pub city: Option<String>,
}

/// `compose.agency`.
#[derive(utoipa::ToSchema)]
pub struct AgencyBody {
    /// Name or company name.
    pub name: String,
    /// Address or registered office.
    pub address: AddressBody,
    /// Reference of the creditor's written mandate (Code des procédures civiles d'exécution, art. R.124-3).
    pub mandate_reference: String,
    /// City written before the letter's date (≤ 100 characters); default: read from the
    /// address's last line.
    pub city: Option<String>,
}

/// `compose.debtor`.
#[derive(utoipa::ToSchema)]
pub struct DebtorBody {
    /// Name or company name.
    pub name: String,
    /// Postal address.
    pub address: AddressBody,
    /// `professional`, `consumer` or `public_buyer` (Code de la commande publique; the
    /// deposit's `recipient.kind` is then `professional`).
    #[schema(value_type = String, example = "professional")]
    pub kind: RecipientKind,
    /// `true` when the debtor is a merchant (commerçant): prescription of Code de commerce
    /// L.110-4 rather than Code civil 2224. Default false; never with `consumer`.
    pub merchant: Option<bool>,
    /// Collective proceedings: `{"kind": "sauvegarde"|"redressement"|"liquidation",
    /// "opened_on": "YYYY-MM-DD"}`; debts born before the opening are refused.
    pub insolvency: Option<InsolvencyBody>,
}

/// `compose.debtor.insolvency`.
#[derive(utoipa::ToSchema)]
pub struct InsolvencyBody {
    /// `sauvegarde`, `redressement` or `liquidation`.
    pub kind: String,
    /// Opening judgment, YYYY-MM-DD.
    #[schema(format = Date)]
    pub opened_on: String,
}

/// One entry of `compose.invoices`.
#[derive(utoipa::ToSchema)]
pub struct InvoiceBody {
    /// Invoice number (unique in the letter).
    pub number: String,
    /// Issue date, YYYY-MM-DD.
    #[schema(format = Date)]
    pub issue_date: String,
    /// Due date, YYYY-MM-DD, not before the issue date nor after the letter date.
    #[schema(format = Date)]
    pub due_date: String,
    /// Amount in cents, 1 to 2^53 - 1.
    pub amount_cents: i64,
    /// Already paid in cents, undated, less than the amount (default 0): deducted from the
    /// principal for the whole time. May be combined with `payments`.
    pub paid_cents: Option<i64>,
    /// Dated payments: each imputed first to the interest accrued to its date, then to the
    /// principal (Code civil 1343-1), unless `imputation` is `principal`; a part payment
    /// restarts prescription (Code civil 2240).
    pub payments: Option<Vec<DatedPaymentBody>>,
    /// Delivery or performance date, YYYY-MM-DD (default: issue_date); prescription runs
    /// from it (Code civil 2224, Code de la consommation L.218-2).
    #[schema(format = Date)]
    pub performed_on: Option<String>,
    /// Last acknowledgement of the debt by the debtor, YYYY-MM-DD: restarts prescription
    /// (Code civil 2240).
    #[schema(format = Date)]
    pub acknowledged_on: Option<String>,
    /// `true` when the contract sets the due date as the start of prescription.
    pub prescription_from_due_date: Option<bool>,
}

/// One entry of `compose.invoices[].payments`.
#[derive(utoipa::ToSchema)]
pub struct DatedPaymentBody {
    /// Day received, YYYY-MM-DD, from the issue date to the letter date.
    #[schema(format = Date)]
    pub date: String,
    /// Amount in cents, 1 to 2^53 - 1, not more than what was owed on that day.
    pub amount_cents: i64,
    /// `interest_first` (default, Code civil 1343-1) or `principal` (agreed imputation).
    pub imputation: Option<Imputation>,
}

/// One entry of `compose.prior_notices`.
#[derive(utoipa::ToSchema)]
pub struct PriorNoticeBody {
    /// `mise_en_demeure`, `relance` or `agency_first_letter`.
    pub kind: PriorNoticeKind,
    /// Its reference.
    pub reference: String,
    /// Its date, YYYY-MM-DD, before the letter date.
    #[schema(format = Date)]
    pub date: String,
    /// Numbers of invoices of this letter it covered, each overdue on its date (required
    /// for a mise en demeure).
    pub invoices: Option<Vec<String>>,
    /// `creditor` (default) or `agency` (default for `agency_first_letter`).
    pub sent_by: Option<NoticeSender>,
}

/// `compose.payment`.
#[derive(utoipa::ToSchema)]
pub struct PaymentBody {
    /// An https:// payment link.
    pub link: Option<String>,
    /// An IBAN (ISO 13616 check digits verified).
    pub iban: Option<String>,
    /// Free instructions (≤ 1000 characters).
    pub instructions: Option<String>,
}

/// `compose.first_letter`.
#[derive(utoipa::ToSchema)]
pub struct FirstLetterBody {
    /// Its reference.
    pub reference: String,
    /// Its date, YYYY-MM-DD, before the letter date.
    #[schema(format = Date)]
    pub date: String,
    /// `mise_en_demeure` when it was one: a consumer's legal interest then runs from its date.
    pub kind: Option<LetterKind>,
}

/// The deposit's `recipient.kind` and `compose.debtor.kind` must agree: a consumer debtor
/// passed off as a professional recipient would skip the consent CPCE L.100 requires (and
/// the consumer rules of the composer). `None` when they agree or one is absent (the
/// missing field is reported by its own check).
pub fn kind_mismatch(deposit: &Value) -> Option<FieldError> {
    let recipient = deposit.get("recipient")?.get("kind")?.as_str()?;
    let debtor = deposit
        .get("compose")?
        .get("debtor")?
        .get("kind")?
        .as_str()?;
    // A public buyer is not a consumer: its recipient kind is "professional".
    let expected = if debtor == "public_buyer" {
        "professional"
    } else {
        debtor
    };
    (recipient != expected).then(|| {
        field_error(
            "compose.debtor.kind",
            &format!(
                "is \"{debtor}\" but recipient.kind is \"{recipient}\": the debtor and the recipient are the same party and must be of the same kind (\"professional\" for a public buyer)"
            ),
        )
    })
}

/// For a request that failed its checks: the time-barred invoices among those that are
/// themselves valid, when the creditor's and debtor's kinds can be read — so that a sender
/// learns of every problem at once. Nothing when `override_prescription` is true.
pub(crate) fn time_barred_in_partial(value: &Value, letter_date: Date) -> Vec<FieldError> {
    let Some(obj) = value.as_object() else {
        return Vec::new();
    };
    if obj.get("override_prescription") == Some(&Value::Bool(true)) {
        return Vec::new();
    }
    let creditor = match obj.get("creditor").and_then(|c| c.get("kind")) {
        None | Some(Value::Null) => CreditorKind::Professional,
        Some(Value::String(s)) if s == "private_person" => CreditorKind::PrivatePerson,
        Some(Value::String(s)) if s == "professional" => CreditorKind::Professional,
        Some(_) => return Vec::new(),
    };
    let debtor = match obj
        .get("debtor")
        .and_then(|d| d.get("kind"))
        .and_then(Value::as_str)
    {
        Some("professional" | "public_buyer") => RecipientKind::Professional,
        Some("consumer") => RecipientKind::Consumer,
        _ => return Vec::new(),
    };
    let mut merchant = false;
    for party in ["creditor", "debtor"] {
        match obj.get(party).and_then(|p| p.get("merchant")) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => merchant = true,
            // Unreadable: the term is not known, so nothing is said about it.
            Some(_) => return Vec::new(),
        }
    }
    let parties = super::prescription::Parties {
        creditor,
        debtor,
        merchant,
    };
    let Some(items) = obj.get("invoices").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate().take(MAX_INVOICES_PER_LETTER) {
        let mut scratch = Vec::new();
        let Some(invoice) = invoice(item, i, letter_date, &mut scratch) else {
            continue;
        };
        let p = super::prescription::assess(&invoice, parties, letter_date);
        if p.status == super::PrescriptionStatus::TimeBarred {
            errors.push(super::time_barred_error(i, &p));
        }
    }
    errors
}

fn invoice(
    item: &Value,
    i: usize,
    letter_date: Date,
    errors: &mut Vec<FieldError>,
) -> Option<Invoice> {
    let path = format!("compose.invoices[{i}]");
    let Some(obj) = item.as_object() else {
        errors.push(field_error(&path, "must be an object"));
        return None;
    };
    unknown_keys(obj, &path, INVOICE_FIELDS, errors);
    let number = text(obj, &path, "number", true, MAX_TEXT_LEN, errors);
    let optional_date = |key: &str, errors: &mut Vec<FieldError>| -> Option<Option<Date>> {
        if obj.get(key).is_none_or(Value::is_null) {
            return Some(None);
        }
        let d = date_field(obj, &path, key, errors)?;
        if d > letter_date {
            errors.push(field_error(
                &format!("{path}.{key}"),
                "must not be after the letter date",
            ));
            return None;
        }
        Some(Some(d))
    };
    let performed_on = optional_date("performed_on", errors);
    let acknowledged_on = optional_date("acknowledged_on", errors);
    let from_due_date = match obj.get("prescription_from_due_date") {
        None | Some(Value::Null) => Some(false),
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            errors.push(field_error(
                &format!("{path}.prescription_from_due_date"),
                "must be true or false",
            ));
            None
        }
    };
    let issue_date = date_field(obj, &path, "issue_date", errors);
    let due_date = date_field(obj, &path, "due_date", errors);
    let amount = cents(obj, &path, "amount_cents", true, errors);
    let paid = if obj.get("paid_cents").is_none_or(Value::is_null) {
        Some(0)
    } else {
        cents(obj, &path, "paid_cents", false, errors)
    };
    let mut ok = true;
    if let Some(issue) = issue_date
        && issue > letter_date
    {
        ok = false;
        errors.push(field_error(
            &format!("{path}.issue_date"),
            "must not be after the letter date",
        ));
    }
    if let (Some(issue), Some(due)) = (issue_date, due_date)
        && due < issue
    {
        ok = false;
        errors.push(field_error(
            &format!("{path}.due_date"),
            "must not be before the issue date",
        ));
    }
    if let Some(due) = due_date
        && due > letter_date
    {
        ok = false;
        errors.push(field_error(
            &format!("{path}.due_date"),
            "is after the letter date: the invoice is not due yet",
        ));
    }
    if let (Some(amount), Some(paid)) = (amount, paid)
        && paid >= amount
    {
        ok = false;
        errors.push(field_error(
            &format!("{path}.paid_cents"),
            "must be less than amount_cents: a fully paid invoice is not claimed",
        ));
    }
    let payments = payments(obj.get("payments"), &path, issue_date, letter_date, errors);
    if !ok {
        return None;
    }
    let issue_date = issue_date?;
    Some(Invoice {
        number: number?,
        issue_date,
        due_date: due_date?,
        amount_cents: amount?,
        paid_cents: paid?,
        performed_on: performed_on?.unwrap_or(issue_date),
        acknowledged_on: acknowledged_on?,
        prescription_from_due_date: from_due_date?,
        payments: payments?,
    })
}

/// `merchant`: optional, `true` or `false` (default `false`).
fn merchant_flag(
    obj: &Map<String, Value>,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> Option<bool> {
    match obj.get("merchant") {
        None | Some(Value::Null) => Some(false),
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            errors.push(field_error(
                &format!("{prefix}.merchant"),
                "must be true or false",
            ));
            None
        }
    }
}

/// `invoices[i].payments`: each `{date, amount_cents, imputation?}` dated from the issue
/// date to the letter date, with a positive amount. Whether they exceed what was owed is
/// checked with the interest ([`super::amounts`]).
fn payments(
    value: Option<&Value>,
    path: &str,
    issue_date: Option<Date>,
    letter_date: Date,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<DatedPayment>> {
    let items = match value {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.push(field_error(
                &format!("{path}.payments"),
                "must be a list of {date, amount_cents, imputation}",
            ));
            return None;
        }
    };
    if items.len() > MAX_PAYMENTS_PER_INVOICE {
        errors.push(field_error(
            &format!("{path}.payments"),
            &format!("must list at most {MAX_PAYMENTS_PER_INVOICE} payments"),
        ));
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (j, item) in items.iter().enumerate() {
        let p = format!("{path}.payments[{j}]");
        let Some(o) = item.as_object() else {
            errors.push(field_error(&p, "must be an object"));
            ok = false;
            continue;
        };
        unknown_keys(o, &p, DATED_PAYMENT_FIELDS, errors);
        let date = date_field(o, &p, "date", errors);
        let amount = cents(o, &p, "amount_cents", true, errors);
        let imputation = match o.get("imputation") {
            None | Some(Value::Null) => Some(Imputation::InterestFirst),
            Some(Value::String(s)) if s == "interest_first" => Some(Imputation::InterestFirst),
            Some(Value::String(s)) if s == "principal" => Some(Imputation::Principal),
            Some(_) => {
                errors.push(field_error(
                    &format!("{p}.imputation"),
                    "must be \"interest_first\" (Code civil 1343-1, the default) or \"principal\" (agreed imputation)",
                ));
                None
            }
        };
        if let Some(d) = date {
            if d > letter_date {
                errors.push(field_error(
                    &format!("{p}.date"),
                    "must not be after the letter date",
                ));
                ok = false;
            }
            if let Some(issue) = issue_date
                && d < issue
            {
                errors.push(field_error(
                    &format!("{p}.date"),
                    "must not be before the invoice's issue date",
                ));
                ok = false;
            }
        }
        match (date, amount, imputation) {
            (Some(date), Some(amount_cents), Some(imputation)) => out.push(DatedPayment {
                date,
                amount_cents,
                imputation,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// `compose.prior_notices`: earlier letters, each covering invoices of this letter that
/// were overdue on its date. `None` when invalid (errors pushed).
fn prior_notices(
    value: Option<&Value>,
    invoices: &[Invoice],
    invoices_valid: bool,
    letter_date: Date,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<PriorNotice>> {
    let items = match value {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.push(field_error(
                "compose.prior_notices",
                "must be a list of {kind, reference, date, invoices}",
            ));
            return None;
        }
    };
    if items.len() > MAX_PAYMENTS_PER_INVOICE {
        errors.push(field_error(
            "compose.prior_notices",
            &format!("must list at most {MAX_PAYMENTS_PER_INVOICE} letters"),
        ));
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (k, item) in items.iter().enumerate() {
        let p = format!("compose.prior_notices[{k}]");
        let Some(o) = item.as_object() else {
            errors.push(field_error(&p, "must be an object"));
            ok = false;
            continue;
        };
        unknown_keys(o, &p, PRIOR_NOTICE_FIELDS, errors);
        let kind = match o.get("kind").and_then(Value::as_str) {
            Some("mise_en_demeure") => Some(PriorNoticeKind::MiseEnDemeure),
            Some("relance") => Some(PriorNoticeKind::Relance),
            Some("agency_first_letter") => Some(PriorNoticeKind::AgencyFirstLetter),
            _ => {
                errors.push(field_error(
                    &format!("{p}.kind"),
                    "must be \"mise_en_demeure\", \"relance\" or \"agency_first_letter\"",
                ));
                None
            }
        };
        let sent_by = match o.get("sent_by") {
            None | Some(Value::Null) => Some(match kind {
                Some(PriorNoticeKind::AgencyFirstLetter) => NoticeSender::Agency,
                _ => NoticeSender::Creditor,
            }),
            Some(Value::String(s)) if s == "creditor" => Some(NoticeSender::Creditor),
            Some(Value::String(s)) if s == "agency" => Some(NoticeSender::Agency),
            Some(_) => {
                errors.push(field_error(
                    &format!("{p}.sent_by"),
                    "must be \"creditor\" or \"agency\"",
                ));
                None
            }
        };
        if kind == Some(PriorNoticeKind::AgencyFirstLetter)
            && sent_by == Some(NoticeSender::Creditor)
        {
            errors.push(field_error(
                &format!("{p}.sent_by"),
                "an agency_first_letter is sent by the agency",
            ));
            ok = false;
        }
        let reference = text(o, &p, "reference", true, MAX_TEXT_LEN, errors);
        let date = date_field(o, &p, "date", errors);
        if let Some(d) = date
            && d >= letter_date
        {
            errors.push(field_error(
                &format!("{p}.date"),
                "must be before the letter date",
            ));
            ok = false;
        }
        let mut numbers = Vec::new();
        match o.get("invoices") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for (m, n) in list.iter().enumerate() {
                    let path = format!("{p}.invoices[{m}]");
                    let Some(n) = n.as_str().map(str::trim) else {
                        errors.push(field_error(&path, "must be an invoice number"));
                        ok = false;
                        continue;
                    };
                    if numbers.iter().any(|x: &String| x == n) {
                        errors.push(field_error(&path, "is listed twice"));
                        ok = false;
                        continue;
                    }
                    numbers.push(n.to_string());
                    if !invoices_valid {
                        continue;
                    }
                    match invoices.iter().find(|i| i.number == n) {
                        None => {
                            errors.push(field_error(
                                &path,
                                &format!("\"{n}\" is not an invoice of this letter"),
                            ));
                            ok = false;
                        }
                        // It cannot have claimed what was not yet owed (Code civil 1344:
                        // the notice is a demand to pay a debt that is due).
                        Some(i) if date.is_some_and(|d| i.due_date >= d) => {
                            errors.push(field_error(
                                &path,
                                &format!(
                                    "\"{n}\" fell due on {} and was not yet overdue on the letter's date: the letter cannot have claimed it",
                                    i.due_date
                                ),
                            ));
                            ok = false;
                        }
                        Some(_) => {}
                    }
                }
            }
            Some(_) => {
                errors.push(field_error(
                    &format!("{p}.invoices"),
                    "must be a list of invoice numbers",
                ));
                ok = false;
            }
        }
        if kind == Some(PriorNoticeKind::MiseEnDemeure) && numbers.is_empty() {
            errors.push(field_error(
                &format!("{p}.invoices"),
                "is required for a mise en demeure: the invoices it claimed (a consumer's interest runs from it for those only, Code civil 1231-6, 1344-1)",
            ));
            ok = false;
        }
        match (kind, reference, date, sent_by) {
            (Some(kind), Some(reference), Some(date), Some(sent_by)) => out.push(PriorNotice {
                kind,
                reference,
                date,
                invoices: numbers,
                sent_by,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn unknown_keys(
    obj: &Map<String, Value>,
    prefix: &str,
    known: &[&str],
    errors: &mut Vec<FieldError>,
) {
    for key in obj.keys() {
        if !known.contains(&key.as_str()) {
            errors.push(field_error(
                &format!("{prefix}.{key}"),
                "is not a known field",
            ));
        }
    }
}

fn object<'a>(
    obj: &'a Map<String, Value>,
    prefix: &str,
    key: &str,
    required: bool,
    errors: &mut Vec<FieldError>,
) -> Option<&'a Map<String, Value>> {
    match obj.get(key) {
        Some(Value::Object(o)) => Some(o),
        None | Some(Value::Null) => {
            if required {
                errors.push(field_error(&format!("{prefix}.{key}"), "is required"));
            }
            None
        }
        Some(_) => {
            errors.push(field_error(&format!("{prefix}.{key}"), "must be an object"));
            None
        }
    }
}

/// A trimmed, non-empty, bounded text without control characters.
fn text(
    obj: &Map<String, Value>,
    prefix: &str,
    key: &str,
    required: bool,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let path = format!("{prefix}.{key}");
    match obj.get(key) {
        None | Some(Value::Null) => {
            if required {
                errors.push(field_error(&path, "is required"));
            }
            None
        }
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                errors.push(field_error(&path, "must not be empty"));
                None
            } else if t.chars().count() > max {
                errors.push(field_error(
                    &path,
                    &format!("must be at most {max} characters"),
                ));
                None
            } else if t.chars().any(char::is_control) {
                errors.push(field_error(&path, "must not contain control characters"));
                None
            } else if t.chars().any(crate::domain::letter::is_deceptive_char) {
                errors.push(field_error(
                    &path,
                    "must not contain bidirectional-override or line-separator characters",
                ));
                None
            } else {
                Some(t.to_string())
            }
        }
        Some(_) => {
            errors.push(field_error(&path, "must be a string"));
            None
        }
    }
}

/// An address: a string whose lines are separated by `\n`, or a list of lines.
fn address(
    obj: &Map<String, Value>,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> Option<PostalAddress> {
    let path = format!("{prefix}.address");
    let lines: Vec<String> = match obj.get("address") {
        None | Some(Value::Null) => {
            errors.push(field_error(&path, "is required"));
            return None;
        }
        Some(Value::String(s)) => s.lines().map(|l| l.trim().to_string()).collect(),
        Some(Value::Array(items)) => {
            let mut lines = Vec::new();
            for item in items {
                let Some(s) = item.as_str() else {
                    errors.push(field_error(&path, "must be a string or a list of lines"));
                    return None;
                };
                lines.push(s.trim().to_string());
            }
            lines
        }
        Some(_) => {
            errors.push(field_error(&path, "must be a string or a list of lines"));
            return None;
        }
    };
    let lines: Vec<String> = lines.into_iter().filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        errors.push(field_error(&path, "must not be empty"));
        return None;
    }
    if lines.len() > MAX_ADDRESS_LINES {
        errors.push(field_error(
            &path,
            &format!("must have at most {MAX_ADDRESS_LINES} lines"),
        ));
        return None;
    }
    if lines.iter().any(|l| {
        l.chars().count() > MAX_TEXT_LEN
            || l.chars()
                .any(|c| c.is_control() || crate::domain::letter::is_deceptive_char(c))
    }) {
        errors.push(field_error(
            &path,
            &format!("lines must be at most {MAX_TEXT_LEN} characters, without control or bidirectional-override characters"),
        ));
        return None;
    }
    Some(PostalAddress(lines))
}

fn date_field(
    obj: &Map<String, Value>,
    prefix: &str,
    key: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Date> {
    let path = format!("{prefix}.{key}");
    match obj.get(key) {
        None | Some(Value::Null) => {
            errors.push(field_error(&path, "is required"));
            None
        }
        Some(Value::String(s)) => match Date::parse(s, format_description!("[year]-[month]-[day]"))
        {
            Ok(d) if s.len() == 10 => Some(d),
            _ => {
                errors.push(field_error(&path, "must be a date written YYYY-MM-DD"));
                None
            }
        },
        Some(_) => {
            errors.push(field_error(&path, "must be a date written YYYY-MM-DD"));
            None
        }
    }
}

/// An integer number of cents: positive (or zero when `allow_zero`), below 2^53.
fn cents(
    obj: &Map<String, Value>,
    prefix: &str,
    key: &str,
    required_positive: bool,
    errors: &mut Vec<FieldError>,
) -> Option<i64> {
    let path = format!("{prefix}.{key}");
    let min = i64::from(required_positive);
    match obj.get(key) {
        None | Some(Value::Null) => {
            errors.push(field_error(&path, "is required"));
            None
        }
        Some(Value::Number(n)) => match n.as_i64() {
            Some(c) if (min..=MAX_AMOUNT_CENTS).contains(&c) => Some(c),
            _ => {
                errors.push(field_error(
                    &path,
                    &format!(
                        "must be a whole number of cents from {min} to 2^53 - 1 (no decimals)"
                    ),
                ));
                None
            }
        },
        Some(_) => {
            errors.push(field_error(&path, "must be a whole number of cents"));
            None
        }
    }
}

/// `12.5` or `"12,50"` → 1250 basis points; no floating point: the decimal text is read.
fn percent_to_basis_points(v: &Value) -> Option<i64> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().replace(',', "."),
        _ => return None,
    };
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let frac = frac.trim_end_matches('0');
    if int.is_empty()
        || int.len() > 3
        || !int.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 2
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let int: i64 = int.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    Some(int * 100 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn siren_check_digit_is_verified() {
        assert!(Siren::parse("732 829 320").is_ok());
        assert!(Siren::parse("356000000").is_ok());
        assert_eq!(
            Siren::parse("732829321"),
            Err("has a wrong check digit (Luhn)")
        );
        assert!(Siren::parse("73282932").is_err());
        assert_eq!(
            Siren::parse("732829320").expect("accepted").display(),
            "732 829 320"
        );
    }

    #[test]
    fn iban_checksum_is_verified() {
        let iban = Iban::parse("fr76 3000 6000 0112 3456 7890 189").expect("accepted");
        assert_eq!(iban.display(), "FR76 3000 6000 0112 3456 7890 189");
        assert!(Iban::parse("DE89370400440532013000").is_ok());
        assert!(Iban::parse("FR7630006000011234567890188").is_err());
        assert!(Iban::parse("DE89370400440532013001").is_err());
        assert!(Iban::parse("1234").is_err());
    }

    #[test]
    fn payment_links_must_be_https() {
        assert!(PaymentLink::parse("https://pay.example.fr/i/123?x=1").is_ok());
        assert!(PaymentLink::parse("http://pay.example.fr/").is_err());
        assert!(PaymentLink::parse("javascript:alert(1)").is_err());
        assert!(PaymentLink::parse("https://user:pw@pay.example.fr/").is_err());
        assert!(PaymentLink::parse("https://pay example.fr/").is_err());
        assert!(PaymentLink::parse("https:///x").is_err());
    }

    #[test]
    fn contract_rates_are_read_as_decimals() {
        assert_eq!(percent_to_basis_points(&json!(12.5)), Some(1250));
        assert_eq!(percent_to_basis_points(&json!(10)), Some(1000));
        assert_eq!(percent_to_basis_points(&json!("7,25")), Some(725));
        assert_eq!(percent_to_basis_points(&json!(0.07)), Some(7));
        assert_eq!(percent_to_basis_points(&json!(1.234)), None);
        assert_eq!(percent_to_basis_points(&json!(-1)), None);
        assert_eq!(percent_to_basis_points(&json!(true)), None);
    }
}
