//! Outgoing mail: messages built by lettre only (no hand-made headers), sent as the exact
//! bytes whose SHA-256 goes into the evidence. Two transports: SMTP (production: pooled,
//! STARTTLS/TLS, authentication from the URL) and a directory of `.eml` files (the embedded
//! default, for development and demos).

use std::path::PathBuf;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::message::header::{
    ContentTransferEncoding, ContentType, HeaderName, HeaderValue, MIME_VERSION_1_0,
};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};

/// How long one SMTP exchange may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a mail was not handed over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// The relay refused for good (SMTP 5xx): retrying will not help.
    #[error("permanent delivery failure: {0}")]
    Permanent(String),
    /// A temporary problem whose outcome is unknown (connection lost, timeout, TLS or I/O
    /// error): the relay may or may not have taken the message. Retry later, with the same
    /// bytes when they were already offered.
    #[error("temporary delivery failure: {0}")]
    Transient(String),
    /// The relay answered 4xx, or the mail file could not be written: the message was surely
    /// not taken (RFC 5321 §4.2.1: "the requested action did not occur"). Retry later.
    #[error("temporary delivery failure, message not taken: {0}")]
    Deferred(String),
    /// The message or the configuration is invalid.
    #[error("invalid mail: {0}")]
    Invalid(String),
}

/// Where mails go.
#[derive(Clone)]
pub enum MailTransport {
    /// An SMTP relay.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// A directory receiving one `.eml` file per mail.
    Directory(PathBuf),
}

/// A mail to send.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    /// Recipient.
    pub to: Mailbox,
    /// Subject, fixed by the service (never by the sender of a letter).
    pub subject: String,
    /// Plain-text body (UTF-8).
    pub body: String,
    /// Message-ID (without angle brackets).
    pub message_id: String,
    /// Envelope sender (VERP address for bounces).
    pub envelope_from: Address,
}

/// Proof that a mail was handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMail {
    /// SHA-256 of the exact bytes sent.
    pub message_sha256: [u8; 32],
    /// Message-ID.
    pub message_id: String,
    /// The relay's reply (`250 …`) or the file written.
    pub relay_reply: String,
    /// `smtp` or `directory`.
    pub transport: &'static str,
}

/// Sends mails from the service's address.
#[derive(Clone)]
pub struct Mailer {
    transport: MailTransport,
    from: Mailbox,
    /// DKIM signing of every message built (RFC 6376), when configured.
    dkim: Option<std::sync::Arc<lettre::message::dkim::DkimConfig>>,
    /// The relay's rate (`[mail] max_per_second`), when limited.
    pacer: Option<std::sync::Arc<Pacer>>,
    /// Messages handed over at once by [`Mailer::send_many`]: the relay's connections
    /// (`[mail] max_connections`), or [`DIRECTORY_WRITERS`] files.
    parallel: usize,
}

/// Files the directory transport writes at once in [`Mailer::send_many`]: their `fsync`s
/// overlap, so the file system commits them together.
const DIRECTORY_WRITERS: usize = 32;

/// One message for [`Mailer::send_many`]: envelope sender, recipient, Message-ID, bytes.
pub type Handover<'a> = (&'a Address, &'a Address, &'a str, &'a [u8]);

/// Spaces the messages handed to the relay: each takes the next free slot, one every
/// `interval`, whichever connection carries it.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next: std::sync::Mutex<tokio::time::Instant>,
}

impl Pacer {
    fn new(per_second: u32) -> Pacer {
        Pacer {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: std::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Waits for this message's slot.
    async fn wait(&self) {
        let slot = {
            // A poisoned lock only means another sender panicked while taking its slot.
            let mut next = self
                .next
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let slot = (*next).max(tokio::time::Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// The headers a DKIM signature covers: those a reader sees and those that give the body
/// its meaning (RFC 6376 §5.4.1 recommends From, To, Subject, Date, Message-ID and the MIME
/// headers).
const DKIM_SIGNED_HEADERS: [&str; 7] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
];

/// The DKIM configuration of `settings` for `domain`, its key read from its file.
fn dkim_config(
    settings: &crate::config::DkimSettings,
    domain: &str,
) -> Result<lettre::message::dkim::DkimConfig, MailError> {
    use lettre::message::dkim::{
        DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
        DkimSigningKey,
    };
    let text = std::fs::read_to_string(&settings.key).map_err(|e| {
        MailError::Invalid(format!("mail.dkim_key {}: {e}", settings.key.display()))
    })?;
    let algorithm = match settings.algorithm {
        crate::config::DkimAlgorithm::RsaSha256 => DkimSigningAlgorithm::Rsa,
        crate::config::DkimAlgorithm::Ed25519Sha256 => DkimSigningAlgorithm::Ed25519,
    };
    let key = DkimSigningKey::new(text.trim(), algorithm).map_err(|e| {
        MailError::Invalid(format!(
            "mail.dkim_key {}: not a usable key ({e}); RSA keys are PKCS#1 PEM \
             (BEGIN RSA PRIVATE KEY), Ed25519 keys the base64 of their 32 bytes",
            settings.key.display()
        ))
    })?;
    Ok(DkimConfig::new(
        settings.selector.clone(),
        domain.to_string(),
        key,
        DKIM_SIGNED_HEADERS
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect(),
        // Relaxed/relaxed: relays that refold headers or trim trailing spaces keep the
        // signature valid (RFC 6376 §3.4).
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    ))
}

impl Mailer {
    /// A mailer for `smtp_url` (`smtp://`, `smtps://`, with credentials and `?tls=` as lettre
    /// reads them) or, without one, for the directory `outbox_dir`.
    pub fn new(
        smtp_url: Option<&str>,
        outbox_dir: PathBuf,
        from: &str,
        dkim: Option<&crate::config::DkimSettings>,
        relay: &crate::config::RelaySettings,
    ) -> Result<Mailer, MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| MailError::Invalid(format!("mail_from {from:?} is not a mailbox: {e}")))?;
        let dkim = dkim
            .map(|d| dkim_config(d, from.email.domain()).map(std::sync::Arc::new))
            .transpose()?;
        let transport = match smtp_url {
            Some(url) => MailTransport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailError::Invalid(format!("smtp_url is not usable: {e}")))?
                    .timeout(Some(SMTP_TIMEOUT))
                    .pool_config(
                        lettre::transport::smtp::PoolConfig::new().max_size(relay.max_connections),
                    )
                    .build(),
            ),
            None => {
                // A development transport: the files hold recipient links and codes in clear.
                tracing::warn!(
                    dir = %outbox_dir.display(),
                    "mail is written as .eml files instead of being sent (development transport): configure smtp_url for real recipients"
                );
                crate::infra::private_files::create_dir(&outbox_dir).map_err(|e| {
                    MailError::Invalid(format!(
                        "cannot create mail directory {}: {e}",
                        outbox_dir.display()
                    ))
                })?;
                sweep_temporary_mails(&outbox_dir);
                MailTransport::Directory(outbox_dir)
            }
        };
        let pacer = match (&transport, relay.max_per_second) {
            (MailTransport::Smtp(_), Some(rate)) => Some(std::sync::Arc::new(Pacer::new(rate))),
            _ => None,
        };
        let parallel = match &transport {
            MailTransport::Smtp(_) => relay.max_connections.max(1) as usize,
            MailTransport::Directory(_) => DIRECTORY_WRITERS,
        };
        Ok(Mailer {
            transport,
            from,
            dkim,
            pacer,
            parallel,
        })
    }

    /// The service's sender mailbox.
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// The domain of the service's address (Message-IDs, bounce addresses).
    pub fn domain(&self) -> &str {
        self.from.email.domain()
    }

    /// Checks the relay answers (at start: fail early, not at the first letter).
    pub async fn check(&self) -> Result<(), MailError> {
        match &self.transport {
            MailTransport::Smtp(smtp) => match smtp.test_connection().await {
                Ok(true) => Ok(()),
                Ok(false) => Err(MailError::Transient(
                    "the SMTP relay did not answer NOOP".into(),
                )),
                Err(e) => Err(MailError::Transient(format!(
                    "cannot reach the SMTP relay: {e}"
                ))),
            },
            MailTransport::Directory(_) => Ok(()),
        }
    }

    /// Builds the message with lettre, hashes its exact bytes and sends those bytes.
    pub async fn send(&self, mail: OutgoingMail) -> Result<SentMail, MailError> {
        self.send_with_attachments(mail, Vec::new()).await
    }

    /// As [`Mailer::send`], with files attached (`multipart/mixed`, RFC 2046 §5.1.3: the text
    /// first, then each file) when `attachments` is not empty.
    pub async fn send_with_attachments(
        &self,
        mail: OutgoingMail,
        attachments: Vec<MailAttachment>,
    ) -> Result<SentMail, MailError> {
        let bytes = self.build(&mail, attachments)?;
        self.send_bytes(
            &mail.envelope_from,
            &mail.to.email,
            &mail.message_id,
            &bytes,
        )
        .await
    }

    /// Builds the message with lettre and returns its exact bytes (with a `Date` header of
    /// now, and, with attachments, random MIME boundaries): building twice gives different
    /// bytes, so a mail that must be resent identically is built once and its bytes kept.
    pub fn build(
        &self,
        mail: &OutgoingMail,
        attachments: Vec<MailAttachment>,
    ) -> Result<Vec<u8>, MailError> {
        let builder = Message::builder()
            .from(self.from.clone())
            .to(mail.to.clone())
            .subject(mail.subject.clone())
            .message_id(Some(format!("<{}>", mail.message_id)))
            // RFC 2045 §4: every message with MIME headers says so, single-part ones too.
            .header(MIME_VERSION_1_0)
            // RFC 3834 §5: machine-made, so auto-responders and vacation replies stay silent.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_string(),
            ));
        let mut message = if attachments.is_empty() {
            builder
                .header(ContentType::TEXT_PLAIN)
                .body(mail.body.clone())
                .map_err(|e| MailError::Invalid(e.to_string()))?
        } else {
            let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(mail.body.clone()));
            for file in attachments {
                let content_type = ContentType::parse(&file.content_type).map_err(|e| {
                    MailError::Invalid(format!("content type {:?}: {e}", file.content_type))
                })?;
                // Base64 whatever the bytes: a seal or a head must arrive exactly as sent,
                // which 7bit or quoted-printable line handling would not promise.
                let body = Body::new_with_encoding(file.bytes, ContentTransferEncoding::Base64)
                    .map_err(|_| MailError::Invalid("attachment not encodable".into()))?;
                parts = parts.singlepart(Attachment::new(file.filename).body(body, content_type));
            }
            builder
                .multipart(parts)
                .map_err(|e| MailError::Invalid(e.to_string()))?
        };
        if let Some(dkim) = &self.dkim {
            // The signature is part of the bytes kept and hashed: a resend is identical.
            message.sign(dkim);
        }
        Ok(message.formatted())
    }

    /// Hands over `bytes`, a message built by [`Mailer::build`], exactly as they are, and
    /// returns their SHA-256: sending the same bytes again gives the same proof.
    pub async fn send_bytes(
        &self,
        envelope_from: &Address,
        to: &Address,
        message_id: &str,
        bytes: &[u8],
    ) -> Result<SentMail, MailError> {
        let message_sha256: [u8; 32] = Sha256::digest(bytes).into();
        let envelope = Envelope::new(Some(envelope_from.clone()), vec![to.clone()])
            .map_err(|e| MailError::Invalid(e.to_string()))?;
        let (relay_reply, transport) = match &self.transport {
            MailTransport::Smtp(smtp) => {
                // RFC 5321 §4.1.1.4: the data ends with "<CRLF>.<CRLF>", whose first CRLF ends
                // the message's last line. lettre always writes that whole terminator, so the
                // message's own final CRLF is left out here: the relay then stores exactly
                // `bytes`, the bytes whose hash the evidence carries.
                let data = bytes.strip_suffix(b"\r\n").unwrap_or(bytes);
                if let Some(pacer) = &self.pacer {
                    pacer.wait().await;
                }
                let response = smtp.send_raw(&envelope, data).await.map_err(classify)?;
                let text: Vec<&str> = response.message().collect();
                (format!("{} {}", response.code(), text.join(" ")), "smtp")
            }
            MailTransport::Directory(dir) => {
                (write_eml(dir, message_id, bytes).await?, "directory")
            }
        };
        Ok(SentMail {
            message_sha256,
            message_id: message_id.to_string(),
            relay_reply,
            transport,
        })
    }
}

impl Mailer {
    /// Hands over many messages built by [`Mailer::build`], as many at once as the relay has
    /// connections (or [`DIRECTORY_WRITERS`] files), each exactly as [`Mailer::send_bytes`]
    /// would; each outcome comes as soon as it is known, with the index of its message in
    /// `mails`.
    pub fn send_many<'a>(
        &'a self,
        mails: &'a [Handover<'a>],
    ) -> impl futures_util::Stream<Item = (usize, Result<SentMail, MailError>)> + Send + 'a {
        use futures_util::StreamExt;
        let mut sends = Vec::with_capacity(mails.len());
        for (i, &(from, to, id, bytes)) in mails.iter().enumerate() {
            sends.push(async move { (i, self.send_bytes(from, to, id, bytes).await) });
        }
        futures_util::stream::iter(sends).buffer_unordered(self.parallel)
    }
}

/// A file attached to a mail.
#[derive(Debug, Clone)]
pub struct MailAttachment {
    /// File name shown to the reader.
    pub filename: String,
    /// MIME type (`application/json`, `application/pkcs7-signature`, …).
    pub content_type: String,
    /// The bytes, sent base64-encoded.
    pub bytes: Vec<u8>,
}

fn classify(err: lettre::transport::smtp::Error) -> MailError {
    if err.is_permanent() {
        MailError::Permanent(err.to_string())
    } else if err.is_transient() || connection_refused(&err) {
        // A 4xx reply (RFC 5321 §4.2.1), or no connection at all: nothing was taken.
        MailError::Deferred(err.to_string())
    } else {
        // Refused or lost connections, TLS and I/O errors, timeouts: all may pass, and a
        // connection lost after the data may have left the message with the relay.
        MailError::Transient(err.to_string())
    }
}

/// Whether the relay refused the TCP connection: no byte of the message can have left.
fn connection_refused(err: &lettre::transport::smtp::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = cause.source();
    }
    false
}

async fn write_eml(
    dir: &std::path::Path,
    message_id: &str,
    bytes: &[u8],
) -> Result<String, MailError> {
    let name: String = message_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{name}.eml"));
    let tmp = dir.join(format!(".{name}.tmp"));
    // The rename is the hand-over: a failed write leaves no mail behind, hence `Deferred`.
    let io =
        |e: std::io::Error| MailError::Deferred(format!("cannot write {}: {e}", path.display()));
    // Mode 0600: the file holds the recipient's link or code in clear (issue 12 §4).
    let written = async {
        let mut file = tokio::fs::OpenOptions::from(crate::infra::private_files::file_options())
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
        file.sync_all().await?;
        tokio::fs::rename(&tmp, &path).await
    }
    .await;
    if let Err(e) = written {
        // A full disk must not leave half a mail behind (invariant 8: nothing half-written).
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(io(e));
    }
    Ok(format!("written to {}", path.display()))
}

/// Removes `.…tmp` files a crash left in the mail directory: a temporary file is never a
/// mail handed over (the rename is), so none of them is covered by evidence or awaited.
fn sweep_temporary_mails(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::info!(file = %name, "stale temporary mail removed"),
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "cannot remove a stale temporary mail")
                }
            }
        }
    }
}

/// `jean.dupont@exemple.fr` → `j***@exemple.fr`: enough for a person to recognise the
/// address, not enough to learn it.
pub fn mask_address(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_mails_left_by_a_crash_are_removed_when_the_mailer_starts() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join(".lre.x.notify.1_exemple.fr.tmp"), b"half").expect("tmp");
        std::fs::write(dir.path().join("lre.y.notify.1_exemple.fr.eml"), b"sent").expect("eml");

        Mailer::new(
            None,
            dir.path().to_path_buf(),
            "lre@exemple.fr",
            None,
            &Default::default(),
        )
        .expect("mailer");

        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["lre.y.notify.1_exemple.fr.eml"]);
    }

    #[tokio::test]
    async fn the_pacer_spaces_messages_at_the_configured_rate() {
        let pacer = Pacer::new(20);
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            pacer.wait().await;
        }
        // The first slot is now, then one every 50 ms: four gaps at least.
        assert!(
            start.elapsed() >= Duration::from_millis(200),
            "{:?}",
            start.elapsed()
        );
        // An idle pacer banks no slots: after a pause the next slot is taken from now, so
        // the one after it is a full interval later (no burst of banked sends).
        tokio::time::sleep(Duration::from_millis(120)).await;
        pacer.wait().await;
        let after = tokio::time::Instant::now();
        let next = *pacer.next.lock().expect("lock");
        assert!(next > after, "the next slot is ahead");
    }

    #[tokio::test]
    async fn the_hash_covers_the_exact_bytes_written() {
        let dir = tempfile::tempdir().expect("dir");
        let mailer = Mailer::new(
            None,
            dir.path().to_path_buf(),
            "recommande <lre@recommande.localhost>",
            None,
            &Default::default(),
        )
        .expect("mailer");
        let sent = mailer
            .send(OutgoingMail {
                to: "Débiteur <d@exemple.fr>".parse().expect("mailbox"),
                subject: "Lettre recommandée électronique".into(),
                body: "Bonjour,\nUne lettre vous attend.\n".into(),
                message_id: "lre.1.notify@recommande.localhost".into(),
                envelope_from: "bounces+1@recommande.localhost".parse().expect("address"),
            })
            .await
            .expect("sent");
        let file = dir.path().join("lre.1.notify_recommande.localhost.eml");
        let bytes = std::fs::read(&file).expect("eml");
        assert_eq!(
            <[u8; 32]>::from(Sha256::digest(&bytes)),
            sent.message_sha256
        );
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.contains("Message-ID: <lre.1.notify@recommande.localhost>"),
            "{text}"
        );
        for header in [
            "MIME-Version: 1.0\r\n",
            "Auto-Submitted: auto-generated\r\n",
        ] {
            assert_eq!(text.matches(header).count(), 1, "{header:?} once: {text}");
        }
        // With attachments (multipart/mixed) too, each header once at the top.
        let multipart = mailer
            .build(
                &OutgoingMail {
                    to: "Témoin <t@exemple.fr>".parse().expect("mailbox"),
                    subject: "Tête d'arbre".into(),
                    body: "Ci-joint.\n".into(),
                    message_id: "lre.2.witness@recommande.localhost".into(),
                    envelope_from: "bounces+2@recommande.localhost".parse().expect("address"),
                },
                vec![MailAttachment {
                    filename: "head.json".into(),
                    content_type: "application/json".into(),
                    bytes: b"{}".to_vec(),
                }],
            )
            .expect("build");
        let text = String::from_utf8_lossy(&multipart);
        for header in [
            "MIME-Version: 1.0\r\n",
            "Auto-Submitted: auto-generated\r\n",
        ] {
            assert_eq!(text.matches(header).count(), 1, "{header:?} once: {text}");
        }
        assert!(
            text.contains("From: recommande <lre@recommande.localhost>"),
            "{text}"
        );
    }

    #[test]
    fn masked_addresses_keep_the_first_letter_and_the_domain() {
        assert_eq!(mask_address("jean.dupont@exemple.fr"), "j***@exemple.fr");
        assert_eq!(mask_address("nonsense"), "***");
    }
}
