//! Letters and the people they concern, parsed at the edge so that the rest of the service
//! only ever handles valid values (an [`EmailAddress`] cannot hold an invalid address).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Maximum documents in one letter.
pub const MAX_DOCUMENTS_PER_LETTER: usize = 20;
/// Maximum length of names, references and identifiers given by clients.
pub const MAX_TEXT_LEN: usize = 200;

/// Whether `c` can make a displayed text read differently from its stored characters:
/// the Unicode bidirectional embeddings and overrides (U+202A–U+202E) and isolates
/// (U+2066–U+2069), which reorder what follows them (the "Trojan Source" trick, which
/// makes `fdp.exe` display as `exe.pdf`), and the line and paragraph separators
/// (U+2028, U+2029), which break a name over lines on proofs and in mail headers.
/// Neither is a control character in Unicode's sense, so `char::is_control` misses them.
pub fn is_deceptive_char(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// A syntactically valid email address (RFC 5321 sizes; a pragmatic subset of RFC 5322
/// syntax that mail relays accept without quoting).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses an address; the domain is lower-cased, the local part kept as given.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.len() > 254 {
            return Err("must be at most 254 characters (RFC 5321 §4.5.3.1)".into());
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err("must contain '@'".into());
        };
        if local.is_empty() || local.len() > 64 {
            return Err("the part before '@' must have 1 to 64 characters".into());
        }
        const LOCAL_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~.-";
        if !local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c))
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            return Err("the part before '@' contains characters that need quoting".into());
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels.iter().any(|l| {
                l.is_empty()
                    || l.len() > 63
                    || l.starts_with('-')
                    || l.ends_with('-')
                    || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
        {
            return Err("the domain must be a valid host name such as example.fr".into());
        }
        Ok(EmailAddress(format!(
            "{local}@{}",
            domain.to_ascii_lowercase()
        )))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        EmailAddress::parse(&value)
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.0
    }
}

/// Whether the recipient is a professional or a consumer: the law differs (CPCE L.100
/// consent, interest and indemnities in debt collection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecipientKind {
    /// A business or professional.
    Professional,
    /// A consumer: CPCE L.100 requires their prior consent to receive LRE.
    Consumer,
}

/// Lifecycle state of a letter (docs/EVIDENCE.md, events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LetterState {
    /// Accepted by the service, proof of deposit issued.
    Deposited,
    /// Notification handed to the mail relay.
    Notified,
    /// Notification could not be delivered.
    NotificationFailed,
    /// The recipient accepted.
    Accepted,
    /// The recipient refused.
    Refused,
    /// The acceptance window passed without a decision.
    Expired,
}

impl LetterState {
    /// Every state, in lifecycle order.
    pub const ALL: [LetterState; 6] = [
        LetterState::Deposited,
        LetterState::Notified,
        LetterState::NotificationFailed,
        LetterState::Accepted,
        LetterState::Refused,
        LetterState::Expired,
    ];

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            LetterState::Deposited => "deposited",
            LetterState::Notified => "notified",
            LetterState::NotificationFailed => "notification_failed",
            LetterState::Accepted => "accepted",
            LetterState::Refused => "refused",
            LetterState::Expired => "expired",
        }
    }

    /// Parses a stored or query-string name.
    pub fn parse(s: &str) -> Option<LetterState> {
        LetterState::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// The sender as stored with the letter and written into evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sender {
    /// Name of the person or company sending.
    pub name: String,
    /// Sender email.
    #[schema(value_type = String, format = "email")]
    pub email: EmailAddress,
    /// Organisation, when the name is a person acting for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
}

/// The recipient as stored with the letter and written into evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Recipient {
    /// Recipient name.
    pub name: String,
    /// Recipient email: where the notification goes.
    #[schema(value_type = String, format = "email")]
    pub email: EmailAddress,
    /// Professional or consumer.
    pub kind: RecipientKind,
    /// Identifier of the consumer's prior consent (CPCE L.100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_id: Option<String>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// JSON path of the field, e.g. `recipient.email`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The fields of a `POST /v1/letters` body; any other is reported as unknown. The OpenAPI
/// schema `DepositBody` lists the same ones (checked by the tests of `http::openapi`).
pub const DEPOSIT_FIELDS: &[&str] = &[
    "sender",
    "recipient",
    "reference",
    "documents",
    "compose",
    "template_id",
];

/// The fields of a deposit's `sender` (schema `Sender`).
pub const SENDER_FIELDS: &[&str] = &["name", "email", "organization"];

/// The fields of a deposit's `recipient` (schema `Recipient`).
pub const RECIPIENT_FIELDS: &[&str] = &["name", "email", "kind", "consent_id"];

/// A deposit request whose every field has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositRequest {
    /// The sender.
    pub sender: Sender,
    /// The recipient.
    pub recipient: Recipient,
    /// The sender's reference.
    pub reference: Option<String>,
    /// Document ids, in order, without duplicates (empty for a composed letter until its
    /// PDF is stored).
    pub document_ids: Vec<String>,
    /// The `compose` object of a debt-collection letter the service writes itself (checked
    /// by `collection::ComposeRequest::parse`), instead of `documents`.
    pub compose: Option<Value>,
    /// The account's template whose wording a composed letter uses.
    pub template_id: Option<String>,
    /// What the composition computed (amounts, rates, mentions), recorded in the proof of
    /// deposit.
    pub collection: Option<Value>,
}

impl DepositRequest {
    /// Checks a `POST /v1/letters` body, reporting **every** invalid field at once.
    pub fn parse(body: &Value) -> Result<DepositRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        let Some(obj) = body.as_object() else {
            return Err(vec![FieldError {
                field: "".into(),
                message: "the body must be a JSON object".into(),
            }]);
        };
        for key in obj.keys() {
            if !DEPOSIT_FIELDS.contains(&key.as_str()) {
                errors.push(field_error(key, "is not a known field"));
            }
        }
        let sender_obj = object_field(obj, "sender", &mut errors);
        let recipient_obj = object_field(obj, "recipient", &mut errors);

        let sender = sender_obj.and_then(|s| {
            check_keys(s, "sender", SENDER_FIELDS, &mut errors);
            let name = text_field(s, "sender.name", "name", true, &mut errors);
            let email = email_field(s, "sender.email", &mut errors);
            let organization =
                text_field(s, "sender.organization", "organization", false, &mut errors);
            Some(Sender {
                name: name?,
                email: email?,
                organization,
            })
        });
        let recipient = recipient_obj.and_then(|r| {
            check_keys(r, "recipient", RECIPIENT_FIELDS, &mut errors);
            let name = text_field(r, "recipient.name", "name", true, &mut errors);
            let email = email_field(r, "recipient.email", &mut errors);
            let kind = match r.get("kind") {
                Some(Value::String(k)) if k == "professional" => Some(RecipientKind::Professional),
                Some(Value::String(k)) if k == "consumer" => Some(RecipientKind::Consumer),
                None | Some(Value::Null) => {
                    errors.push(field_error("recipient.kind", "is required: \"professional\" or \"consumer\""));
                    None
                }
                Some(_) => {
                    errors.push(field_error("recipient.kind", "must be \"professional\" or \"consumer\""));
                    None
                }
            };
            let consent_id = text_field(r, "recipient.consent_id", "consent_id", false, &mut errors);
            let consent_already_reported = errors.iter().any(|e| e.field == "recipient.consent_id");
            if kind == Some(RecipientKind::Consumer) && consent_id.is_none() && !consent_already_reported {
                // CPCE L.100: a consumer must have consented beforehand to receive LRE.
                errors.push(field_error(
                    "recipient.consent_id",
                    "is required for a consumer recipient: CPCE L.100 requires their prior consent to electronic registered letters",
                ));
            }
            Some(Recipient {
                name: name?,
                email: email?,
                kind: kind?,
                consent_id,
            })
        });
        let reference = text_field(obj, "reference", "reference", false, &mut errors);

        let mut document_ids = Vec::new();
        let compose = obj.get("compose").filter(|c| !c.is_null()).cloned();
        let template_id = match obj.get("template_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) if uuid::Uuid::try_parse(id).is_ok() => {
                if compose.is_none() {
                    errors.push(field_error(
                        "template_id",
                        "only applies to a composed letter (`compose`)",
                    ));
                }
                uuid::Uuid::try_parse(id).ok().map(|u| u.to_string())
            }
            Some(_) => {
                errors.push(field_error(
                    "template_id",
                    "must be a template id (UUID) returned by POST /v1/templates",
                ));
                None
            }
        };
        if compose.is_some() && !matches!(compose, Some(Value::Object(_))) {
            errors.push(field_error("compose", "must be an object"));
        }
        match obj.get("documents") {
            None | Some(Value::Null) if compose.is_some() => {}
            _ if compose.is_some() => errors.push(field_error(
                "documents",
                "give either `documents` or `compose`, not both",
            )),
            None | Some(Value::Null) => errors.push(field_error(
                "documents",
                "is required: a list of document ids (or a `compose` object for a letter the service writes)",
            )),
            Some(Value::Array(items)) => {
                if items.is_empty() {
                    errors.push(field_error("documents", "must list at least one document"));
                }
                if items.len() > MAX_DOCUMENTS_PER_LETTER {
                    errors.push(field_error(
                        "documents",
                        &format!("must list at most {MAX_DOCUMENTS_PER_LETTER} documents"),
                    ));
                }
                for (i, item) in items.iter().enumerate() {
                    let path = format!("documents[{i}]");
                    match item.as_str().map(uuid::Uuid::try_parse) {
                        Some(Ok(id)) => {
                            let id = id.to_string();
                            if document_ids.contains(&id) {
                                errors.push(field_error(&path, "is listed twice"));
                            } else {
                                document_ids.push(id);
                            }
                        }
                        _ => errors.push(field_error(
                            &path,
                            "must be a document id (UUID) returned by POST /v1/documents",
                        )),
                    }
                }
            }
            Some(_) => errors.push(field_error("documents", "must be a list of document ids")),
        }

        match (sender, recipient) {
            (Some(sender), Some(recipient)) if errors.is_empty() => Ok(DepositRequest {
                sender,
                recipient,
                reference,
                document_ids,
                compose,
                template_id,
                collection: None,
            }),
            _ => Err(errors),
        }
    }
}

pub(crate) fn field_error(field: &str, message: &str) -> FieldError {
    FieldError {
        field: field.to_string(),
        message: message.to_string(),
    }
}

fn object_field<'a>(
    obj: &'a serde_json::Map<String, Value>,
    key: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'a serde_json::Map<String, Value>> {
    match obj.get(key) {
        Some(Value::Object(o)) => Some(o),
        None | Some(Value::Null) => {
            errors.push(field_error(key, "is required"));
            None
        }
        Some(_) => {
            errors.push(field_error(key, "must be an object"));
            None
        }
    }
}

fn check_keys(
    obj: &serde_json::Map<String, Value>,
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

/// A trimmed, non-empty, bounded text without control characters.
pub(crate) fn text_field(
    obj: &serde_json::Map<String, Value>,
    path: &str,
    key: &str,
    required: bool,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match obj.get(key) {
        None | Some(Value::Null) => {
            if required {
                errors.push(field_error(path, "is required"));
            }
            None
        }
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                errors.push(field_error(path, "must not be empty"));
                None
            } else if t.chars().count() > MAX_TEXT_LEN {
                errors.push(field_error(
                    path,
                    &format!("must be at most {MAX_TEXT_LEN} characters"),
                ));
                None
            } else if t.chars().any(char::is_control) {
                errors.push(field_error(path, "must not contain control characters"));
                None
            } else if t.chars().any(is_deceptive_char) {
                errors.push(field_error(
                    path,
                    "must not contain bidirectional-override or line-separator characters",
                ));
                None
            } else {
                Some(t.to_string())
            }
        }
        Some(_) => {
            errors.push(field_error(path, "must be a string"));
            None
        }
    }
}

pub(crate) fn email_field(
    obj: &serde_json::Map<String, Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<EmailAddress> {
    match obj.get("email") {
        None | Some(Value::Null) => {
            errors.push(field_error(path, "is required"));
            None
        }
        Some(Value::String(s)) => match EmailAddress::parse(s) {
            Ok(e) => Some(e),
            Err(message) => {
                errors.push(field_error(
                    path,
                    &format!("is not a valid email address: {message}"),
                ));
                None
            }
        },
        Some(_) => {
            errors.push(field_error(path, "must be a string"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "sender": {"name": "Cabinet Recouvr", "email": "envoi@recouvr.fr"},
            "recipient": {"name": "SARL Débitrice", "email": "compta@Debitrice.FR", "kind": "professional"},
            "reference": "DOS-2026-001",
            "documents": ["0192f3a4-5b6c-7d8e-9f00-112233445566"]
        })
    }

    #[test]
    fn a_complete_request_parses() {
        let req = DepositRequest::parse(&valid()).expect("valid");
        assert_eq!(req.recipient.email.as_str(), "compta@debitrice.fr");
        assert_eq!(req.document_ids.len(), 1);
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let body = json!({
            "sender": {"name": " ", "email": "nobody"},
            "recipient": {"name": "X", "email": "x@y.fr", "kind": "robot"},
            "documents": [],
            "colour": "blue"
        });
        let errors = DepositRequest::parse(&body).expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for expected in [
            "sender.name",
            "sender.email",
            "recipient.kind",
            "documents",
            "colour",
        ] {
            assert!(
                fields.contains(&expected),
                "{expected} missing from {fields:?}"
            );
        }
    }

    #[test]
    fn a_consumer_without_consent_is_refused() {
        let mut body = valid();
        body["recipient"]["kind"] = json!("consumer");
        let errors = DepositRequest::parse(&body).expect_err("no consent");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "recipient.consent_id");
        assert!(errors[0].message.contains("L.100"));
        body["recipient"]["consent_id"] = Value::Null;
        let errors = DepositRequest::parse(&body).expect_err("null consent");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "recipient.consent_id");
        body["recipient"]["consent_id"] = json!("  ");
        let errors = DepositRequest::parse(&body).expect_err("blank consent");
        assert_eq!(errors.len(), 1, "{errors:?}");
        body["recipient"]["consent_id"] = json!("consent-42");
        assert!(DepositRequest::parse(&body).is_ok());
    }

    #[test]
    fn duplicate_and_malformed_document_ids_are_named() {
        let mut body = valid();
        body["documents"] = json!([
            "0192f3a4-5b6c-7d8e-9f00-112233445566",
            "0192f3a4-5b6c-7d8e-9f00-112233445566",
            7
        ]);
        let errors = DepositRequest::parse(&body).expect_err("invalid");
        assert_eq!(errors[0].field, "documents[1]");
        assert_eq!(errors[1].field, "documents[2]");
    }

    #[test]
    fn names_and_references_with_bidirectional_overrides_are_refused() {
        for bad in [
            '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{2028}', '\u{2029}',
        ] {
            let mut body = valid();
            body["sender"]["name"] = Value::String(format!("Agence{bad}Durand"));
            body["recipient"]["name"] = Value::String(format!("Jean{bad}Dupont"));
            body["reference"] = Value::String(format!("fdp{bad}.exe"));
            let errors = DepositRequest::parse(&body).expect_err("refused");
            let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            for expected in ["sender.name", "recipient.name", "reference"] {
                assert!(
                    fields.contains(&expected),
                    "{bad:?}: {expected} not in {fields:?}"
                );
            }
        }
        assert!(!is_deceptive_char('é'));
        assert!(!is_deceptive_char('\u{2027}'));
        assert!(!is_deceptive_char('\u{206A}'));
    }

    #[test]
    fn email_addresses_are_checked() {
        for bad in [
            "", "a", "a@b", "a@@b.fr", "a b@c.fr", "a@-b.fr", ".a@b.fr", "a@b..fr", "<a@b.fr>",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a@b.fr", "jean.dupont+lre@exemple.com", "X@SUB.Example.org"] {
            assert!(EmailAddress::parse(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for state in LetterState::ALL {
            assert_eq!(LetterState::parse(state.as_str()), Some(state));
        }
        assert_eq!(LetterState::parse("lost"), None);
    }
}
