//! Asynchronous bounces: delivery status notifications (RFC 3464 `message/delivery-status`)
//! matched to a letter by its per-letter Message-ID or VERP return path. Pure parsing.

/// What a DSN says about one of our letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceReport {
    /// The letter the bounced message belonged to.
    pub letter_id: String,
    /// RFC 3463 status code (`5.1.1`).
    pub status: String,
    /// `Action: failed` with a 5.x.x status: the address cannot receive mail.
    pub permanent: bool,
    /// The remote server's diagnostic, when given.
    pub diagnostic: Option<String>,
}

/// Reads a DSN (the whole multipart/report message, or only its delivery-status part).
/// `None` when it names no letter of ours (by `lre.<id>.…@domain` Message-ID or
/// `bounces+<id>@domain`) or carries no per-recipient status.
pub fn parse(dsn: &str, domain: &str) -> Option<BounceReport> {
    let letter_id = find_letter_id(dsn, domain)?;
    let fields = unfolded_fields(dsn);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let status = field("Status")?;
    let action = field("Action").unwrap_or_default();
    let permanent = action.eq_ignore_ascii_case("failed") && status.starts_with('5');
    Some(BounceReport {
        letter_id,
        status,
        permanent,
        diagnostic: field("Diagnostic-Code"),
    })
}

fn find_letter_id(text: &str, domain: &str) -> Option<String> {
    let domain = domain.to_ascii_lowercase();
    let lower = text.to_ascii_lowercase();
    for marker in ["<lre.", "bounces+"] {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(marker) {
            let start = from + pos + marker.len();
            let candidate = lower.get(start..start + 36)?;
            let rest = &lower[start + 36..];
            let ours = match marker {
                // Only notifications and reminders say something about the letter's delivery;
                // a bounced code mail does not make the notification undeliverable.
                "<lre." => {
                    (rest.starts_with(".notify.") || rest.starts_with(".remind"))
                        && rest
                            .split('>')
                            .next()
                            .is_some_and(|m| m.ends_with(&format!("@{domain}")))
                }
                _ => rest.starts_with(&format!("@{domain}")),
            };
            if ours && let Ok(id) = uuid::Uuid::try_parse(candidate) {
                return Some(id.to_string());
            }
            from = start;
        }
    }
    None
}

/// Header-style fields of the whole text, with RFC 5322 folding undone.
fn unfolded_fields(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = fields.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':')
            && !k.is_empty()
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            fields.push((k.to_string(), v.to_string()));
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN: &str = "From: MAILER-DAEMON@relay.example\r\n\
To: bounces+0192f3a4-5b6c-7d8e-9f00-112233445566@recommande.localhost\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/plain\r\n\r\nThis is the mail system.\r\n\
--B\r\nContent-Type: message/delivery-status\r\n\r\n\
Reporting-MTA: dns; relay.example\r\n\r\n\
Final-Recipient: rfc822; compta@debitrice.fr\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <compta@debitrice.fr>:\r\n\
\x20Recipient address rejected: User unknown\r\n\r\n\
--B\r\nContent-Type: text/rfc822-headers\r\n\r\n\
Message-ID: <lre.0192f3a4-5b6c-7d8e-9f00-112233445566.notify.1@recommande.localhost>\r\n\
--B--\r\n";

    #[test]
    fn a_permanent_failure_is_matched_to_its_letter() {
        let r = parse(DSN, "recommande.localhost").expect("report");
        assert_eq!(r.letter_id, "0192f3a4-5b6c-7d8e-9f00-112233445566");
        assert_eq!(r.status, "5.1.1");
        assert!(r.permanent);
        assert!(r.diagnostic.expect("diagnostic").contains("User unknown"));
    }

    #[test]
    fn a_delay_notice_is_not_permanent() {
        let delayed = DSN
            .replace("Action: failed", "Action: delayed")
            .replace("Status: 5.1.1", "Status: 4.4.1");
        let r = parse(&delayed, "recommande.localhost").expect("report");
        assert!(!r.permanent);
    }

    #[test]
    fn a_bounced_code_mail_does_not_fail_the_notification() {
        let otp = DSN.replace(".notify.1@", ".otp.a1b2c3@").replace(
            "bounces+0192f3a4-5b6c-7d8e-9f00-112233445566@",
            "bounces+otp.0192f3a4-5b6c-7d8e-9f00-112233445566@",
        );
        assert_eq!(parse(&otp, "recommande.localhost"), None);
    }

    #[test]
    fn another_domain_or_no_status_is_not_ours() {
        assert_eq!(parse(DSN, "other.example"), None);
        assert_eq!(
            parse(
                "Subject: hello\r\n\r\nno report here",
                "recommande.localhost"
            ),
            None
        );
    }
}
