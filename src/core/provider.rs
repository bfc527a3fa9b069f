//! The provider's legal identity as a person reads it: on every PDF proof, page, mail and
//! `VERIFY.txt` (configured in `[provider]`, docs/CONFIGURATION.md).

/// Who runs the service, for readers: the legal entity, how to reach it, and whether it is a
/// qualified trust service provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderIdentity {
    /// The name the service signs with (`provider_name`, in evidence records).
    pub name: String,
    /// The legal entity's name (company name and legal form).
    pub legal_name: String,
    /// Its registered address.
    pub address: Option<String>,
    /// Its registration (for example `RCS Paris 123 456 789`, or a SIREN).
    pub registration: Option<String>,
    /// Where to reach it (an email address or a telephone number).
    pub contact: Option<String>,
    /// The privacy notice (GDPR art. 13).
    pub privacy_url: Option<String>,
    /// Whether it is listed as a qualified provider of electronic registered delivery in a
    /// national trusted list (eIDAS art. 22, 44).
    pub qualified: bool,
}

impl ProviderIdentity {
    /// An identity with only a name, not qualified (the development default).
    pub fn named(name: &str) -> Self {
        ProviderIdentity {
            name: name.to_string(),
            legal_name: name.to_string(),
            address: None,
            registration: None,
            contact: None,
            privacy_url: None,
            qualified: false,
        }
    }

    /// The identity in one line: legal name, address, registration, contact, privacy notice.
    pub fn legal_line(&self, french: bool) -> String {
        let mut parts = vec![self.legal_name.clone()];
        parts.extend(self.address.clone());
        parts.extend(self.registration.clone());
        let (contact, privacy) = if french {
            ("contact", "données personnelles")
        } else {
            ("contact", "privacy notice")
        };
        if let Some(c) = &self.contact {
            parts.push(if french {
                format!("{contact} : {c}")
            } else {
                format!("{contact}: {c}")
            });
        }
        if let Some(p) = &self.privacy_url {
            parts.push(if french {
                format!("{privacy} : {p}")
            } else {
                format!("{privacy}: {p}")
            });
        }
        parts.join(" · ")
    }

    /// The qualification status, as a sentence.
    pub fn status(&self, french: bool) -> &'static str {
        match (self.qualified, french) {
            (true, true) => {
                "Prestataire qualifié de services d'envoi recommandé électronique (eIDAS, art. 44), \
                 inscrit sur la liste de confiance nationale."
            }
            (true, false) => {
                "Qualified provider of electronic registered delivery services (eIDAS art. 44), \
                 on the national trusted list."
            }
            (false, true) => {
                "Prestataire non qualifié : ses envois n'ont pas la présomption attachée aux \
                 envois recommandés électroniques qualifiés (eIDAS, art. 43)."
            }
            (false, false) => {
                "Non-qualified provider: its deliveries do not carry the presumption attached to \
                 qualified electronic registered delivery (eIDAS art. 43)."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_what_is_configured_and_nothing_else() {
        let mut p = ProviderIdentity::named("recommande");
        assert_eq!(p.legal_line(true), "recommande");
        p.legal_name = "Recommande SAS".into();
        p.registration = Some("RCS Paris 123 456 789".into());
        p.contact = Some("support@example.fr".into());
        p.privacy_url = Some("https://example.fr/vie-privee".into());
        assert_eq!(
            p.legal_line(true),
            "Recommande SAS · RCS Paris 123 456 789 · contact : support@example.fr · données personnelles : https://example.fr/vie-privee"
        );
        assert_eq!(
            p.legal_line(false),
            "Recommande SAS · RCS Paris 123 456 789 · contact: support@example.fr · privacy notice: https://example.fr/vie-privee"
        );
        assert!(p.status(true).starts_with("Prestataire non qualifié"));
        p.qualified = true;
        assert!(p.status(false).starts_with("Qualified"));
    }
}
