//! The recipient side: the letter behind a link, one-time codes, sessions, the decision
//! (accept or refuse) and the content handover.

use super::*;

impl Lifecycle {
    /// The letter behind a link, as its recipient may see it.
    pub async fn recipient_letter(&self, token: &str) -> Result<RecipientLetter, LifecycleError> {
        let letter = self.letter_for_token(token).await?;
        let recipient = parse_recipient(&letter)?;
        let decided = matches!(
            LetterState::parse(&letter.state),
            Some(LetterState::Accepted | LetterState::Refused)
        );
        let sender = if decided {
            Some(parse_sender(&letter)?)
        } else {
            None
        };
        let documents = self.storage.letter_documents(&letter.id).await?;
        let evidence = if decided {
            self.storage.evidence_of_letter(&letter.id).await?
        } else {
            Vec::new()
        };
        Ok(RecipientLetter {
            letter,
            documents,
            sender,
            recipient,
            evidence,
        })
    }

    /// Sends a one-time code to the notified address.
    pub async fn send_code(&self, token: &str) -> Result<CodeSent, LifecycleError> {
        let letter = self.letter_for_token(token).await?;
        let state = LetterState::parse(&letter.state);
        if !matches!(
            state,
            Some(LetterState::Notified | LetterState::Accepted | LetterState::Refused)
        ) {
            return Err(LifecycleError::Conflict(format!(
                "the letter is {}: nothing to identify for",
                letter.state
            )));
        }
        let now = self.clock.now();
        if let Some(until) = self.storage.otp_lock(&letter.id, unix_micros(now)).await? {
            return Err(LifecycleError::Locked {
                until: from_unix_micros(until),
            });
        }
        let hour_ago = unix_micros(now - time::Duration::hours(1));
        if self.storage.otp_count_since(&letter.id, hour_ago).await? >= OTP_MAX_PER_HOUR {
            return Err(LifecycleError::TooManyCodes);
        }
        let code = six_digit_code();
        let expires_at = now + OTP_VALIDITY;
        let recipient = parse_recipient(&letter)?;
        let to = mailbox(&recipient)?;
        let mail = OutgoingMail {
            to,
            subject: "Votre code de vérification / Your verification code".into(),
            body: otp_body(&self.provider.name, &letter.id, &code, expires_at),
            message_id: format!(
                "lre.{}.otp.{}@{}",
                letter.id,
                hex::encode(random_bytes::<6>()),
                self.mailer.domain()
            ),
            // Not the letter's VERP address: a bounced code mail says nothing about the
            // delivery of the notification.
            envelope_from: format!("bounces+otp.{}@{}", letter.id, self.mailer.domain())
                .parse()
                .map_err(|e| {
                    LifecycleError::Mail(MailError::Invalid(format!("bounce address: {e}")))
                })?,
        };
        // Stored before it is sent: a code that reached the mailbox always works.
        self.storage
            .insert_otp(
                &uuid::Uuid::now_v7().to_string(),
                &letter.id,
                &self.otp_hmac(&letter.id, &code),
                unix_micros(now),
                unix_micros(expires_at),
            )
            .await?;
        self.mailer.send(mail).await?;
        Ok(CodeSent {
            sent_to: mask_address(recipient.email.as_str()),
            expires_at,
        })
    }

    /// Checks a code and opens a session.
    pub async fn open_session(
        &self,
        token: &str,
        code: &str,
    ) -> Result<OpenedSession, LifecycleError> {
        let letter = self.letter_for_token(token).await?;
        let now = self.clock.now();
        if let Some(until) = self.storage.otp_lock(&letter.id, unix_micros(now)).await? {
            return Err(LifecycleError::Locked {
                until: from_unix_micros(until),
            });
        }
        let code = code.trim();
        let candidates = self
            .storage
            .valid_otps(&letter.id, unix_micros(now))
            .await?;
        let matching = candidates.iter().find(|(_, stored)| {
            hex::decode(stored)
                .map(|tag| {
                    hmac::verify(
                        &self.keys.otp,
                        otp_message(&letter.id, code).as_bytes(),
                        &tag,
                    )
                    .is_ok()
                })
                .unwrap_or(false)
        });
        let Some((otp_id, _)) = matching else {
            let failure = self
                .storage
                .record_otp_failure(&letter.id, OTP_MAX_FAILURES, unix_micros(now + OTP_LOCK))
                .await?;
            return Err(match failure.locked_until {
                Some(until) => LifecycleError::Locked {
                    until: from_unix_micros(until),
                },
                None => LifecycleError::WrongCode {
                    remaining: OTP_MAX_FAILURES - failure.failures,
                },
            });
        };
        let identification = EmailOneTimeCode.identification();
        let session_token =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let expires_at = now + SESSION_VALIDITY;
        let session = SessionRow {
            token_sha256: sha256_hex(session_token.as_bytes()),
            letter_id: letter.id.clone(),
            method: identification.method,
            assurance_level: identification.assurance_level.as_str().into(),
            created_at: unix_micros(now),
            expires_at: unix_micros(expires_at),
        };
        if !self.storage.open_session(otp_id, &session).await? {
            return Err(LifecycleError::WrongCode {
                remaining: OTP_MAX_FAILURES,
            });
        }
        Ok(OpenedSession {
            token: session_token,
            expires_at,
        })
    }

    /// Whether `session_token` is a valid session for `letter` (the pages offer the decision
    /// and the downloads only then).
    pub async fn is_identified(
        &self,
        letter: &LetterRow,
        session_token: &str,
    ) -> Result<bool, LifecycleError> {
        match self.session_for(letter, session_token).await {
            Ok(_) => Ok(true),
            Err(LifecycleError::Unauthenticated(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Accepts or refuses the letter. Final: a second decision, or any decision after the
    /// window, is a conflict.
    pub async fn decide(
        &self,
        token: &str,
        session_token: &str,
        decision: Decision,
        client: &ClientInfo,
    ) -> Result<RecipientLetter, LifecycleError> {
        let letter = self.letter_for_token(token).await?;
        let session = self.session_for(&letter, session_token).await?;
        let now = self.clock.now();
        if letter.state != LetterState::Notified.as_str() {
            return Err(LifecycleError::Conflict(format!(
                "the letter is already {}; a decision is final",
                letter.state
            )));
        }
        if letter.deadline.is_some_and(|d| unix_micros(now) >= d) {
            return Err(LifecycleError::Conflict(
                "the acceptance window has ended (CPCE R.53-3); the letter is unclaimed".into(),
            ));
        }
        let (event, to) = match decision {
            Decision::Accept => (EvidenceEvent::ConsignmentAcceptance, LetterState::Accepted),
            Decision::Refuse => (EvidenceEvent::ConsignmentRejection, LetterState::Refused),
        };
        let mut details = self.identification_details(&session, client);
        if let Some(deadline) = letter.deadline {
            details.insert(
                "deadline".into(),
                Value::String(rfc3339_micros(from_unix_micros(deadline))),
            );
        }
        let sealed = self
            .transition(
                &letter,
                event,
                vec![LetterState::Notified.as_str()],
                to.as_str(),
                details,
                Some(identity_of(&session)),
                LetterUpdate {
                    decided_at: Some(unix_micros(now)),
                    ..LetterUpdate::default()
                },
                Vec::new(),
                None,
            )
            .await?;
        if sealed.is_none() {
            let current = self
                .storage
                .letter_by_id(&letter.id)
                .await?
                .map(|l| l.state)
                .unwrap_or_default();
            return Err(LifecycleError::Conflict(format!(
                "the letter is already {current}; a decision is final"
            )));
        }
        tracing::info!(letter.id = %letter.id, decision = ?decision, "recipient decided");
        self.recipient_letter(token).await
    }

    /// Hands a document of an accepted letter to its recipient; the first download writes
    /// `ContentHandover` evidence.
    pub async fn hand_over(
        &self,
        token: &str,
        session_token: &str,
        document_id: &str,
        client: &ClientInfo,
    ) -> Result<DocumentRow, LifecycleError> {
        let letter = self.letter_for_token(token).await?;
        let session = self.session_for(&letter, session_token).await?;
        if letter.state != LetterState::Accepted.as_str() {
            return Err(LifecycleError::Conflict(
                "the content is available only after the letter is accepted".into(),
            ));
        }
        let documents = self.storage.letter_documents(&letter.id).await?;
        let Some(document) = documents.into_iter().find(|d| d.id == document_id) else {
            return Err(LifecycleError::NotFound);
        };
        let mut letter = letter;
        for _ in 0..3 {
            if letter.content_handed_over_at.is_some() {
                break;
            }
            let mut details = self.identification_details(&session, client);
            details.insert(
                "document".into(),
                json!({ "id": document.id, "name": document.filename, "sha256": document.sha256 }),
            );
            let now = self.clock.now();
            let sealed = self
                .transition(
                    &letter,
                    EvidenceEvent::ContentHandover,
                    vec![LetterState::Accepted.as_str()],
                    LetterState::Accepted.as_str(),
                    details,
                    Some(identity_of(&session)),
                    LetterUpdate {
                        content_handed_over_at: Some(unix_micros(now)),
                        ..LetterUpdate::default()
                    },
                    Vec::new(),
                    None,
                )
                .await?;
            if sealed.is_some() {
                break;
            }
            // Someone else extended the chain meanwhile (a concurrent first download): re-read.
            letter = self
                .storage
                .letter_by_id(&letter.id)
                .await?
                .ok_or(LifecycleError::NotFound)?;
        }
        Ok(document)
    }

    async fn letter_for_token(&self, token: &str) -> Result<LetterRow, LifecycleError> {
        if token.len() != 43
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(LifecycleError::NotFound);
        }
        self.storage
            .letter_by_recipient_token(&sha256_hex(token.as_bytes()))
            .await?
            .ok_or(LifecycleError::NotFound)
    }

    async fn session_for(
        &self,
        letter: &LetterRow,
        session_token: &str,
    ) -> Result<SessionRow, LifecycleError> {
        let now = unix_micros(self.clock.now());
        match self
            .storage
            .session(&sha256_hex(session_token.as_bytes()), now)
            .await?
        {
            Some(s) if s.letter_id == letter.id => Ok(s),
            _ => Err(LifecycleError::Unauthenticated(
                "identify first: request a code, then open a session with it".into(),
            )),
        }
    }

    fn identification_details(
        &self,
        session: &SessionRow,
        client: &ClientInfo,
    ) -> Map<String, Value> {
        let mut details = Map::new();
        details.insert(
            "identification".into(),
            json!({
                "method": session.method,
                "assurance_level": session.assurance_level,
                "session_opened_at": rfc3339_micros(from_unix_micros(session.created_at)),
            }),
        );
        let mut c = Map::new();
        if let Some(ip) = &client.ip {
            // Personal data minimised: a keyed hash proves "same address" without keeping it.
            let tag = hmac::sign(&self.keys.client, ip.as_bytes());
            c.insert(
                "ip_hmac_sha256".into(),
                Value::String(hex::encode(tag.as_ref())),
            );
        }
        if let Some(agent) = &client.user_agent {
            c.insert(
                "user_agent".into(),
                Value::String(agent.chars().take(300).collect()),
            );
        }
        details.insert("client".into(), Value::Object(c));
        details
    }

    fn otp_hmac(&self, letter_id: &str, code: &str) -> String {
        hex::encode(hmac::sign(&self.keys.otp, otp_message(letter_id, code).as_bytes()).as_ref())
    }
}

fn otp_message(letter_id: &str, code: &str) -> String {
    format!("{letter_id}:{code}")
}

/// A uniformly random 6-digit code (rejection sampling: no modulo bias).
fn six_digit_code() -> String {
    loop {
        let n = u32::from_be_bytes(random_bytes::<4>());
        // 4,294,000,000 is the largest multiple of 1,000,000 below 2^32.
        if n < 4_294_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

fn otp_body(provider: &str, letter_id: &str, code: &str, expires_at: OffsetDateTime) -> String {
    format!(
        "Votre code de vérification pour la lettre {letter_id} ({provider}) : {code}\n\
         Il est valable jusqu'au {fr} (heure de Paris). Ne le communiquez à personne.\n\n\
         Your verification code for letter {letter_id} ({provider}): {code}\n\
         It is valid until {en}. Do not share it with anyone.\n",
        fr = paris_french(expires_at),
        en = paris_english(expires_at),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_mail_states_paris_time_in_french_as_in_english() {
        // 8 December 2026, 22:59 UTC is 23:59 in Paris (UTC+01:00 in winter).
        let expires_at = time::macros::datetime!(2026-12-08 22:59 UTC);
        let body = otp_body("Recommande", "L-1", "ABCD-EFGH", expires_at);
        assert!(
            body.contains("valable jusqu'au 8 décembre 2026 à 23:59 (heure de Paris)."),
            "{body}"
        );
        assert!(body.contains("valid until 8 December 2026, 23:59 (Paris time)."));
    }

    #[test]
    fn codes_have_six_digits() {
        for _ in 0..1000 {
            let c = six_digit_code();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
