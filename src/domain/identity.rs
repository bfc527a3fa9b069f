//! Identification of the recipient before delivery (eIDAS art. 44(1)(c); CPCE R.53-1).
//!
//! The lifecycle only consumes an [`Identification`] recorded with the recipient's session:
//! how the person was identified and with what assurance. Each [`IdentityProvider`] states
//! the level its method reaches, and that level is written into the evidence as it is — the
//! built-in email one-time code is honest about being *low*; an eID provider reached through
//! OpenID Connect (e.g. one notified at *substantial*, which CPCE R.53-1 requires for the
//! recipient) plugs in by opening sessions with its own [`Identification`], without any change
//! to the lifecycle code.

use serde::{Deserialize, Serialize};

/// eIDAS assurance levels (Regulation 910/2014 art. 8; Implementing Regulation 2015/1502).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssuranceLevel {
    /// Limited confidence (e.g. control of an email address).
    Low,
    /// Substantial confidence (e.g. a notified eID means at level substantial).
    Substantial,
    /// High confidence.
    High,
}

impl AssuranceLevel {
    /// The stored and written name.
    pub fn as_str(self) -> &'static str {
        match self {
            AssuranceLevel::Low => "low",
            AssuranceLevel::Substantial => "substantial",
            AssuranceLevel::High => "high",
        }
    }
}

/// How a recipient was identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identification {
    /// Method name written into evidence (`email-otp`, `oidc:<issuer>`, …).
    pub method: String,
    /// Level the method reaches.
    pub assurance_level: AssuranceLevel,
}

/// A way of identifying recipients.
pub trait IdentityProvider: Send + Sync {
    /// Method name written into evidence.
    fn method(&self) -> &str;
    /// Assurance level the method reaches.
    fn assurance_level(&self) -> AssuranceLevel;
    /// The identification a successful use of this provider yields.
    fn identification(&self) -> Identification {
        Identification {
            method: self.method().to_string(),
            assurance_level: self.assurance_level(),
        }
    }
}

/// The built-in provider: a 6-digit code sent to the address the letter was notified to.
/// Controlling a mailbox proves little about a person: the level is *low*.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmailOneTimeCode;

impl IdentityProvider for EmailOneTimeCode {
    fn method(&self) -> &str {
        "email-otp"
    }

    fn assurance_level(&self) -> AssuranceLevel {
        AssuranceLevel::Low
    }
}
