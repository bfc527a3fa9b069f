//! `[qualification]`: whether the installation claims to run a qualified electronic
//! registered delivery service (docs/CONFIGURATION.md, "Qualified mode").
//!
//! In `mode = "qualified"` the service refuses to start unless every prerequisite of a
//! qualified service that the configuration can show holds (ETSI EN 319 521 §7 and the
//! eIDAS requirements for qualified ERDS, art. 44): keys in a hardware security module,
//! certificates from the operator's CA rather than the development PKI, time from a
//! qualified TSA or a token-held TSA key, mail through a real SMTP relay, revocation data for
//! the certificates, and recipient identification at eIDAS level *substantial*. Every
//! refusal names the setting to fix. Only this mode may claim qualified status.

use serde::Deserialize;

use super::{ConfigError, KeySource, Settings, TimestampMode};

/// Evidence policy written in qualified mode when the operator names none of its own.
pub const QUALIFIED_EVIDENCE_POLICY: &str = "urn:recommande:evidence-policy:v1:qualified";

/// How the installation presents itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QualificationMode {
    /// Today's behaviour: development or production keys, never presented as qualified.
    #[default]
    Development,
    /// A qualified service: starts only when every prerequisite holds.
    Qualified,
}

/// `[qualification]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileQualification {
    mode: Option<String>,
}

/// Checks `[qualification] mode`: `development` (the default) or `qualified`.
pub(super) fn resolve(file: &FileQualification) -> Result<QualificationMode, ConfigError> {
    match file.mode.as_deref().map(str::trim) {
        None | Some("development") => Ok(QualificationMode::Development),
        Some("qualified") => Ok(QualificationMode::Qualified),
        Some(other) => Err(ConfigError::Invalid {
            key: "qualification.mode",
            message: format!("{other:?} must be \"development\" or \"qualified\""),
        }),
    }
}

/// One unmet prerequisite of qualified mode: the setting to fix and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The setting, as written in the TOML file.
    pub key: &'static str,
    /// What is wrong and what a qualified service needs instead.
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every prerequisite of qualified mode that `settings` does not meet, in a fixed order;
/// empty when the configuration qualifies.
pub fn refusals(settings: &Settings) -> Vec<Refusal> {
    let mut refusals = Vec::new();
    let mut refuse = |key: &'static str, message: &str| {
        refusals.push(Refusal {
            key,
            message: message.to_string(),
        })
    };
    let pki = &settings.pki;
    if pki.is_development() {
        refuse(
            "pki.seal_certificate",
            "the development PKI is not qualified: configure the seal certificate issued by a qualified CA, its key and pki.roots",
        );
    } else if !matches!(pki.seal_key, Some(KeySource::Pkcs11(_))) {
        refuse(
            "pki.seal_key",
            "the seal key must be held by a certified hardware security module: a pkcs11: URI, not a key file",
        );
    }
    let tsa_in_token = matches!(pki.tsa_key, Some(KeySource::Pkcs11(_)));
    match &settings.timestamp.mode {
        TimestampMode::Remote { .. } => {}
        TimestampMode::Embedded if tsa_in_token && !pki.is_development() => {}
        TimestampMode::Embedded => refuse(
            "timestamp.mode",
            "time must come from a qualified TSA: set timestamp.mode = \"remote\" with its url, or keep the embedded TSA with pki.tsa_key in a PKCS#11 token",
        ),
    }
    if settings.mail.smtp_url.is_none() {
        refuse(
            "mail.smtp_url",
            "notifications must go through an SMTP relay, not the outbox directory",
        );
    }
    refuse(
        "revocation",
        "revocation data (OCSP or CRL) for the seal and TSA certificates cannot be obtained and embedded in proofs yet",
    );
    refuse(
        "identity",
        "no identity provider reaching eIDAS level substantial is configured: the recipient of a qualified letter must be identified at substantial or high",
    );
    refusals
}

/// Applies the mode to settings already resolved: refuses a qualified claim outside
/// qualified mode, and in qualified mode refuses every unmet prerequisite at once (each
/// naming its setting) or marks the provider qualified.
pub(super) fn enforce(settings: &mut Settings) -> Result<(), ConfigError> {
    match settings.qualification {
        QualificationMode::Development => {
            if settings.provider.qualified {
                return Err(ConfigError::Invalid {
                    key: "provider.qualified",
                    message: "only [qualification] mode = \"qualified\" may present the provider as qualified".into(),
                });
            }
            if settings.evidence.policy.as_deref() == Some(QUALIFIED_EVIDENCE_POLICY) {
                return Err(ConfigError::Invalid {
                    key: "evidence_policy",
                    message: format!(
                        "{QUALIFIED_EVIDENCE_POLICY} is the qualified policy: only [qualification] mode = \"qualified\" may seal under it"
                    ),
                });
            }
            Ok(())
        }
        QualificationMode::Qualified => {
            let refusals = refusals(settings);
            if !refusals.is_empty() {
                return Err(ConfigError::Unqualified { refusals });
            }
            settings.provider.qualified = true;
            if settings.evidence.policy.is_none() {
                settings.evidence.policy = Some(QUALIFIED_EVIDENCE_POLICY.to_string());
            }
            Ok(())
        }
    }
}
