//! Consumer consent to electronic registered letters.
//!
//! CPCE L.100: an electronic registered letter is equivalent to a paper one, but a *consumer*
//! recipient must have consented beforehand to receive them from the sender. The tenant
//! records each consent (who, when, how, with an optional proof document, and the sender the
//! consumer agreed to hear from); a deposit to a consumer must cite an active consent of the
//! same tenant for the same address, and the proof of deposit cites it in turn. A withdrawn
//! consent stays recorded, with its date.
//!
//! The sender is the one that deposits the letter and whose identity the letter bears: when
//! an agency collects for a creditor (a composed letter with `compose.agency`), that is the
//! agency, not the creditor — a consent the consumer gave the creditor does not extend to
//! the agency. Such a letter needs a consent whose `sender` names the agency. Otherwise the
//! account deposits in its own name: a consent naming no sender is the account's (as before
//! consents could name one), and a consent naming one must name the deposit's
//! `sender.name` or `sender.organization` (or, for a composed letter, the creditor).
//!
//! This module parses requests and decides whether a consent covers a deposit; it does no I/O.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::core::clock::{from_unix_micros, rfc3339_micros};
use crate::domain::letter::{
    DepositRequest, EmailAddress, FieldError, email_field, field_error, text_field,
};

/// A recorded consent of a consumer to receive electronic registered letters from a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    /// Consent id (UUID v7), what a deposit cites as `recipient.consent_id`.
    pub id: String,
    /// The tenant (sender) the consumer consented to.
    pub tenant_id: String,
    /// The consumer's email address, normalised like `EmailAddress`.
    pub email: String,
    /// The consumer's name.
    pub name: String,
    /// When the consumer consented, Unix µs.
    pub given_at: i64,
    /// How the consent was collected (`signed_form`, `online_checkbox`, …).
    pub method: String,
    /// An uploaded document of the tenant proving the consent.
    pub document_id: Option<String>,
    /// When the consent was recorded here, Unix µs.
    pub created_at: i64,
    /// When it was withdrawn, Unix µs.
    pub withdrawn_at: Option<i64>,
    /// Why, as told by the tenant.
    pub withdrawal_reason: Option<String>,
    /// The sender the consumer agreed to receive letters from, as it deposits them (the
    /// agency when one collects for a creditor); `None` when the consent names no one.
    pub sender: Option<String>,
}

/// How the consumer's consent was collected. A fixed list, so that the evidence says
/// something a judge can check against the proof document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentMethod {
    /// A paper or electronic form signed by the consumer.
    SignedForm,
    /// A box the consumer ticked online.
    OnlineCheckbox,
    /// A clause of a contract the consumer signed.
    ContractClause,
    /// The consumer confirmed by answering an email.
    EmailConfirmation,
}

impl ConsentMethod {
    /// Every method.
    pub const ALL: [ConsentMethod; 4] = [
        ConsentMethod::SignedForm,
        ConsentMethod::OnlineCheckbox,
        ConsentMethod::ContractClause,
        ConsentMethod::EmailConfirmation,
    ];

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentMethod::SignedForm => "signed_form",
            ConsentMethod::OnlineCheckbox => "online_checkbox",
            ConsentMethod::ContractClause => "contract_clause",
            ConsentMethod::EmailConfirmation => "email_confirmation",
        }
    }

    /// Parses a stored or requested name.
    pub fn parse(s: &str) -> Option<ConsentMethod> {
        ConsentMethod::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// A `POST /v1/consents` body whose every field has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRequest {
    /// The consumer's address.
    pub email: EmailAddress,
    /// The consumer's name.
    pub name: String,
    /// When the consumer consented (never in the future).
    pub given_at: OffsetDateTime,
    /// How.
    pub method: ConsentMethod,
    /// The tenant's uploaded proof document (existence is checked by the caller).
    pub document_id: Option<String>,
    /// The sender the consumer agreed to receive letters from (the agency, for an agency's
    /// letters), if the consent names one.
    pub sender: Option<String>,
}

/// The fields of a `POST /v1/consents` body; any other is reported as unknown. The OpenAPI
/// schema `ConsentBody` lists the same ones (checked by the tests of `http::openapi`).
pub const CONSENT_FIELDS: &[&str] = &[
    "email",
    "name",
    "given_at",
    "method",
    "document_id",
    "sender",
];

/// The fields of the optional body of `DELETE /v1/consents/{id}` (schema `WithdrawalBody`).
pub const WITHDRAWAL_FIELDS: &[&str] = &["reason"];

impl ConsentRequest {
    /// Checks a body at time `now`, reporting **every** invalid field at once.
    pub fn parse(body: &Value, now: OffsetDateTime) -> Result<ConsentRequest, Vec<FieldError>> {
        let Some(obj) = body.as_object() else {
            return Err(vec![field_error("", "the body must be a JSON object")]);
        };
        let mut errors = Vec::new();
        for key in obj.keys() {
            if !CONSENT_FIELDS.contains(&key.as_str()) {
                errors.push(field_error(key, "is not a known field"));
            }
        }
        let email = email_field(obj, "email", &mut errors);
        let name = text_field(obj, "name", "name", true, &mut errors);
        let sender = text_field(obj, "sender", "sender", false, &mut errors);
        let given_at = match obj.get("given_at") {
            None | Some(Value::Null) => {
                errors.push(field_error(
                    "given_at",
                    "is required: when the consumer consented (RFC 3339)",
                ));
                None
            }
            Some(Value::String(s)) => match OffsetDateTime::parse(s, &Rfc3339) {
                // L.100 asks for consent given *beforehand*: a date to come proves nothing.
                Ok(t) if t > now => {
                    errors.push(field_error("given_at", "must not be in the future"));
                    None
                }
                Ok(t) => Some(t),
                Err(_) => {
                    errors.push(field_error(
                        "given_at",
                        "must be an RFC 3339 date-time such as 2026-03-01T10:00:00Z",
                    ));
                    None
                }
            },
            Some(_) => {
                errors.push(field_error("given_at", "must be an RFC 3339 string"));
                None
            }
        };
        let methods = || ConsentMethod::ALL.map(ConsentMethod::as_str).join(", ");
        let method = match obj.get("method") {
            None | Some(Value::Null) => {
                errors.push(field_error(
                    "method",
                    &format!("is required: one of {}", methods()),
                ));
                None
            }
            Some(Value::String(s)) => {
                let method = ConsentMethod::parse(s);
                if method.is_none() {
                    errors.push(field_error(
                        "method",
                        &format!("must be one of {}", methods()),
                    ));
                }
                method
            }
            Some(_) => {
                errors.push(field_error(
                    "method",
                    &format!("must be one of {}", methods()),
                ));
                None
            }
        };
        let document_id = match obj.get("document_id") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_str().map(uuid::Uuid::try_parse) {
                Some(Ok(id)) => Some(id.to_string()),
                _ => {
                    errors.push(field_error(
                        "document_id",
                        "must be a document id (UUID) returned by POST /v1/documents",
                    ));
                    None
                }
            },
        };
        match (email, name, given_at, method) {
            (Some(email), Some(name), Some(given_at), Some(method)) if errors.is_empty() => {
                Ok(ConsentRequest {
                    email,
                    name,
                    given_at,
                    method,
                    document_id,
                    sender,
                })
            }
            _ => Err(errors),
        }
    }
}

/// Parses the optional body of `DELETE /v1/consents/{id}`: nothing, or `{"reason": "…"}`.
pub fn parse_withdrawal(body: &[u8]) -> Result<Option<String>, Vec<FieldError>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| vec![field_error("", &format!("the body is not valid JSON: {e}"))])?;
    let Some(obj) = value.as_object() else {
        return Err(vec![field_error("", "the body must be a JSON object")]);
    };
    let mut errors = Vec::new();
    for key in obj
        .keys()
        .filter(|k| !WITHDRAWAL_FIELDS.contains(&k.as_str()))
    {
        errors.push(field_error(key, "is not a known field"));
    }
    let reason = text_field(obj, "reason", "reason", false, &mut errors);
    if errors.is_empty() {
        Ok(reason)
    } else {
        Err(errors)
    }
}

/// Whether a consent is still in force.
pub fn is_active(consent: &ConsentRow) -> bool {
    consent.withdrawn_at.is_none()
}

/// Why a cited consent does not allow a deposit to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentRefusal {
    /// No such consent for this tenant (unknown, or another tenant's).
    Unknown,
    /// The consumer withdrew it at this time.
    Withdrawn(OffsetDateTime),
    /// It was given for another address than the recipient's.
    OtherEmail,
    /// It is dated after the deposit.
    NotYetGiven(OffsetDateTime),
    /// It names no sender, but an agency deposits the letter for a creditor.
    AgencyNotNamed {
        /// The agency depositing.
        agency: String,
        /// The creditor it collects for.
        creditor: String,
    },
    /// It names another sender than the one depositing.
    OtherSender {
        /// The sender the consent names.
        named: String,
        /// Who deposits the letter.
        depositing: String,
    },
}

/// Who deposits a letter, as a consent must name it (CPCE L.100: consent to receive letters
/// *from this sender*).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepositingSender {
    /// An agency deposits a composed letter for a creditor: the letter bears the agency's
    /// identity, and the consent must name the agency.
    Agency {
        /// `compose.agency.name`.
        agency: String,
        /// `compose.creditor.name`.
        creditor: String,
    },
    /// The account deposits in its own name, known by any of these names.
    Own(Vec<String>),
}

/// The sender depositing `request`: the agency of a composed letter that has one, else the
/// deposit's sender (its name and organisation, and for a composed letter the creditor).
pub fn depositing_sender(request: &DepositRequest) -> DepositingSender {
    let compose = request.compose.as_ref();
    let name_of = |party: &str| {
        compose
            .and_then(|c| c.get(party))
            .and_then(|p| p.get("name"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
    };
    let creditor = name_of("creditor");
    match name_of("agency") {
        Some(agency) => DepositingSender::Agency {
            agency,
            creditor: creditor.unwrap_or_default(),
        },
        None => DepositingSender::Own(
            std::iter::once(request.sender.name.clone())
                .chain(request.sender.organization.clone())
                .chain(creditor)
                .collect(),
        ),
    }
}

/// Names compared as a person reads them: spaces folded, case ignored.
fn same_name(a: &str, b: &str) -> bool {
    let fold = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    fold(a) == fold(b)
}

/// Whether `consent` names `sender` (or, naming no one, is the account's own consent).
fn names_sender(consent: &ConsentRow, sender: &DepositingSender) -> Result<(), ConsentRefusal> {
    match (consent.sender.as_deref(), sender) {
        (None, DepositingSender::Own(_)) => Ok(()),
        (None, DepositingSender::Agency { agency, creditor }) => {
            Err(ConsentRefusal::AgencyNotNamed {
                agency: agency.clone(),
                creditor: creditor.clone(),
            })
        }
        (Some(named), DepositingSender::Agency { agency, .. }) => {
            if same_name(named, agency) {
                Ok(())
            } else {
                Err(ConsentRefusal::OtherSender {
                    named: named.to_string(),
                    depositing: agency.clone(),
                })
            }
        }
        (Some(named), DepositingSender::Own(names)) => {
            if names.iter().any(|n| same_name(named, n)) {
                Ok(())
            } else {
                Err(ConsentRefusal::OtherSender {
                    named: named.to_string(),
                    depositing: names.join(" / "),
                })
            }
        }
    }
}

impl ConsentRefusal {
    /// The message of the `recipient.consent_id` error, citing the rule.
    pub fn message(&self, consent_id: &str) -> String {
        let why = match self {
            ConsentRefusal::Unknown => format!("consent {consent_id} is unknown to this account"),
            ConsentRefusal::Withdrawn(at) => {
                format!(
                    "consent {consent_id} was withdrawn on {}",
                    rfc3339_micros(*at)
                )
            }
            ConsentRefusal::OtherEmail => {
                format!("consent {consent_id} was given for another email address")
            }
            ConsentRefusal::NotYetGiven(at) => format!(
                "consent {consent_id} is dated {}, after this deposit",
                rfc3339_micros(*at)
            ),
            // The rule first for these two: API problems cut messages at 200 characters.
            ConsentRefusal::AgencyNotNamed { agency, creditor } => {
                return format!(
                    "CPCE L.100: consent {consent_id} names no sender, but the agency \"{agency}\" deposits this letter for \"{creditor}\": cite a consent naming the agency"
                );
            }
            ConsentRefusal::OtherSender { named, depositing } => {
                return format!(
                    "CPCE L.100: consent {consent_id} is for letters from \"{named}\", not from \"{depositing}\", who deposits this one (an agency's letter is the agency's)"
                );
            }
        };
        format!(
            "{why}; CPCE L.100 requires a consumer's prior consent to receive electronic registered letters from this sender"
        )
    }
}

/// Decides whether `consent` — what the tenant's records hold under the cited id — allows a
/// deposit by `sender` to `recipient` at `now` (CPCE L.100: given beforehand, for this
/// address, to receive letters from this sender, not withdrawn).
pub fn check_for_deposit<'a>(
    consent: Option<&'a ConsentRow>,
    recipient: &EmailAddress,
    sender: &DepositingSender,
    now: OffsetDateTime,
) -> Result<&'a ConsentRow, ConsentRefusal> {
    let Some(consent) = consent else {
        return Err(ConsentRefusal::Unknown);
    };
    if let Some(at) = consent.withdrawn_at {
        return Err(ConsentRefusal::Withdrawn(from_unix_micros(at)));
    }
    if consent.email != recipient.as_str() {
        return Err(ConsentRefusal::OtherEmail);
    }
    names_sender(consent, sender)?;
    let given_at = from_unix_micros(consent.given_at);
    if given_at > now {
        return Err(ConsentRefusal::NotYetGiven(given_at));
    }
    Ok(consent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-23 09:00 UTC);

    fn consent() -> ConsentRow {
        ConsentRow {
            id: "0192f3a4-5b6c-7d8e-9f00-112233445566".into(),
            tenant_id: "t".into(),
            email: "jean.dupont@exemple.fr".into(),
            name: "Jean Dupont".into(),
            given_at: crate::core::clock::unix_micros(datetime!(2026-03-01 10:00 UTC)),
            method: "signed_form".into(),
            document_id: None,
            created_at: 0,
            withdrawn_at: None,
            withdrawal_reason: None,
            sender: None,
        }
    }

    fn own() -> DepositingSender {
        DepositingSender::Own(vec!["Service contentieux".into(), "Recouvr SAS".into()])
    }

    fn email(s: &str) -> EmailAddress {
        EmailAddress::parse(s).expect("valid address")
    }

    #[test]
    fn a_complete_request_parses_and_normalises_the_address() {
        let body = json!({"email": "Jean.Dupont@Exemple.FR", "name": "Jean Dupont",
            "given_at": "2026-03-01T11:00:00+01:00", "method": "online_checkbox"});
        let request = ConsentRequest::parse(&body, NOW).expect("valid");
        assert_eq!(request.email.as_str(), "Jean.Dupont@exemple.fr");
        assert_eq!(request.given_at, datetime!(2026-03-01 10:00 UTC));
        assert_eq!(request.method, ConsentMethod::OnlineCheckbox);
        assert_eq!(request.document_id, None);
    }

    #[test]
    fn every_invalid_field_of_a_consent_is_reported_at_once() {
        let body = json!({"email": "nobody", "name": "", "given_at": "2027-01-01T00:00:00Z",
            "method": "telepathy", "document_id": "x", "colour": "blue"});
        let errors = ConsentRequest::parse(&body, NOW).expect_err("invalid");
        let mut fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "colour",
                "document_id",
                "email",
                "given_at",
                "method",
                "name"
            ]
        );
        let given_at = errors
            .iter()
            .find(|e| e.field == "given_at")
            .expect("given_at");
        assert!(given_at.message.contains("future"), "{given_at:?}");
    }

    #[test]
    fn a_withdrawal_body_is_optional_but_checked_when_present() {
        assert_eq!(parse_withdrawal(b""), Ok(None));
        assert_eq!(
            parse_withdrawal(br#"{"reason": " moved abroad "}"#),
            Ok(Some("moved abroad".into()))
        );
        let errors = parse_withdrawal(br#"{"why": 1, "reason": 2}"#).expect_err("invalid");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(parse_withdrawal(b"[").is_err());
    }

    #[test]
    fn only_an_active_consent_for_the_same_address_given_before_allows_a_deposit() {
        let c = consent();
        let recipient = email("jean.dupont@exemple.fr");
        assert_eq!(check_for_deposit(Some(&c), &recipient, &own(), NOW), Ok(&c));
        assert_eq!(
            check_for_deposit(None, &recipient, &own(), NOW),
            Err(ConsentRefusal::Unknown)
        );
        assert_eq!(
            check_for_deposit(Some(&c), &email("autre@exemple.fr"), &own(), NOW),
            Err(ConsentRefusal::OtherEmail)
        );
        assert_eq!(
            check_for_deposit(
                Some(&c),
                &recipient,
                &own(),
                datetime!(2026-02-01 00:00 UTC)
            ),
            Err(ConsentRefusal::NotYetGiven(datetime!(2026-03-01 10:00 UTC)))
        );
        let withdrawn = ConsentRow {
            withdrawn_at: Some(crate::core::clock::unix_micros(
                datetime!(2026-06-01 08:00 UTC),
            )),
            ..consent()
        };
        let refusal =
            check_for_deposit(Some(&withdrawn), &recipient, &own(), NOW).expect_err("withdrawn");
        let message = refusal.message(&withdrawn.id);
        assert!(
            message.contains("withdrawn on 2026-06-01T08:00:00.000000Z")
                && message.contains("L.100"),
            "{message}"
        );
    }

    #[test]
    fn an_agency_letter_needs_a_consent_naming_the_agency() {
        let recipient = email("jean.dupont@exemple.fr");
        let agency = DepositingSender::Agency {
            agency: "Recouvr SAS".into(),
            creditor: "Atelier Durand SARL".into(),
        };
        // A consent naming no one is the account's own: not enough for an agency's letter.
        let unnamed = consent();
        let refusal =
            check_for_deposit(Some(&unnamed), &recipient, &agency, NOW).expect_err("refused");
        let message = refusal.message(&unnamed.id);
        assert!(
            message.contains("names no sender")
                && message.contains("\"Recouvr SAS\"")
                && message.contains("Atelier Durand SARL")
                && message.contains("L.100"),
            "{message}"
        );
        // A consent given to the creditor does not extend to its agency.
        let to_creditor = ConsentRow {
            sender: Some("Atelier Durand SARL".into()),
            ..consent()
        };
        assert_eq!(
            check_for_deposit(Some(&to_creditor), &recipient, &agency, NOW),
            Err(ConsentRefusal::OtherSender {
                named: "Atelier Durand SARL".into(),
                depositing: "Recouvr SAS".into()
            })
        );
        // Naming the agency (spaces and case as a person writes them) is enough.
        let to_agency = ConsentRow {
            sender: Some(" recouvr  SAS".into()),
            ..consent()
        };
        assert_eq!(
            check_for_deposit(Some(&to_agency), &recipient, &agency, NOW),
            Ok(&to_agency)
        );
        // An own deposit: a named consent must name the deposit's sender or organisation.
        assert_eq!(
            check_for_deposit(Some(&to_agency), &recipient, &own(), NOW),
            Ok(&to_agency)
        );
        assert!(matches!(
            check_for_deposit(Some(&to_creditor), &recipient, &own(), NOW),
            Err(ConsentRefusal::OtherSender { .. })
        ));
        assert_eq!(
            check_for_deposit(Some(&unnamed), &recipient, &own(), NOW),
            Ok(&unnamed)
        );
    }

    #[test]
    fn the_depositing_sender_is_the_agency_of_a_composed_letter() {
        let body = json!({
            "sender": {"name": "Service contentieux", "email": "contentieux@recouvr.fr", "organization": "Recouvr SAS"},
            "recipient": {"name": "Jeanne Petit", "email": "jeanne@example.fr", "kind": "consumer", "consent_id": "0190a1b2-0000-7000-8000-00000000c0de"},
            "compose": {"creditor": {"name": "Atelier Durand SARL"}, "agency": {"name": " Recouvr SAS "}}
        });
        let request = DepositRequest::parse(&body).expect("valid");
        assert_eq!(
            depositing_sender(&request),
            DepositingSender::Agency {
                agency: "Recouvr SAS".into(),
                creditor: "Atelier Durand SARL".into()
            }
        );
        let mut own = body.clone();
        own["compose"] = json!({"creditor": {"name": "Atelier Durand SARL"}});
        let request = DepositRequest::parse(&own).expect("valid");
        assert_eq!(
            depositing_sender(&request),
            DepositingSender::Own(vec![
                "Service contentieux".into(),
                "Recouvr SAS".into(),
                "Atelier Durand SARL".into()
            ])
        );
    }

    #[test]
    fn a_consent_may_name_its_sender() {
        let body = json!({"email": "jean.dupont@exemple.fr", "name": "Jean Dupont",
            "given_at": "2026-03-01T11:00:00+01:00", "method": "signed_form", "sender": " Recouvr SAS "});
        let request = ConsentRequest::parse(&body, NOW).expect("valid");
        assert_eq!(request.sender.as_deref(), Some("Recouvr SAS"));
        let bad = json!({"email": "jean.dupont@exemple.fr", "name": "Jean Dupont",
            "given_at": "2026-03-01T11:00:00+01:00", "method": "signed_form", "sender": 7});
        let errors = ConsentRequest::parse(&bad, NOW).expect_err("invalid");
        assert_eq!(errors[0].field, "sender");
    }
}
