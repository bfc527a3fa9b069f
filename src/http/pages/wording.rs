//! Every fixed sentence of the recipient pages, in French (the default) and in English.
//! Sentences with values in them (dates, addresses, counts) are built by the functions at
//! the bottom, so a template never assembles grammar.

use time::OffsetDateTime;

use crate::domain::window::{paris_english, paris_french};

/// The fixed wording of the pages in one language.
#[derive(Debug)]
pub struct Wording {
    /// BCP 47 tag of the language (`<html lang>`).
    pub lang: &'static str,
    /// Skip link to the main content.
    pub skip: &'static str,
    /// What the service carries.
    pub service_kind: &'static str,
    /// Prefix of an informative box (the box is not told apart by colour alone).
    pub notice_word: &'static str,
    /// Prefix of an error box.
    pub error_word: &'static str,
    /// Banner shown while the development PKI seals the evidence (docs/CONFIGURATION.md, development PKI).
    pub non_qualified: &'static str,
    /// Footer.
    pub footer: &'static str,

    /// Heading while the recipient may decide.
    pub title_waiting: &'static str,
    /// Heading once accepted.
    pub title_accepted: &'static str,
    /// Heading of a decided letter seen without a session: neither the outcome nor more.
    pub title_withheld: &'static str,
    /// Heading once refused.
    pub title_refused: &'static str,
    /// Heading once the window has ended.
    pub title_expired: &'static str,
    /// Heading when the notification failed.
    pub title_failed: &'static str,
    /// Heading before the notification left.
    pub title_pending: &'static str,
    /// Label of the provider.
    pub provider_label: &'static str,
    /// Label of the letter id.
    pub letter_id_label: &'static str,
    /// Label of the state.
    pub state_label: &'static str,
    /// Label of the deadline.
    pub deadline_label: &'static str,
    /// Label of the content summary.
    pub content_label: &'static str,
    /// State `deposited`.
    pub state_deposited: &'static str,
    /// State `notified`, window open.
    pub state_notified: &'static str,
    /// State `accepted`.
    pub state_accepted: &'static str,
    /// State `refused`.
    pub state_refused: &'static str,
    /// State `expired`, or `notified` past the deadline.
    pub state_expired: &'static str,
    /// State `notification_failed`.
    pub state_failed: &'static str,
    /// Why nothing can be done on an unclaimed letter.
    pub expired_text: &'static str,
    /// Why nothing can be done when the notification failed.
    pub failed_text: &'static str,
    /// Why nothing can be done before the notification.
    pub pending_text: &'static str,

    /// Heading of the explanation.
    pub about_heading: &'static str,
    /// Legal value (CPCE L.100).
    pub about_value: &'static str,
    /// The window (CPCE R.53-3).
    pub about_window: &'static str,
    /// Why the sender is not shown (CPCE R.53-3).
    pub about_sender: &'static str,

    /// Heading of the identification step.
    pub identify_heading: &'static str,
    /// Button asking for a code.
    pub identify_button: &'static str,
    /// Link to the code form without sending a new code.
    pub have_code: &'static str,

    /// Heading of the decision step.
    pub decide_heading: &'static str,
    /// What a decision means.
    pub decide_intro: &'static str,
    /// Legend of the acceptance form.
    pub accept_legend: &'static str,
    /// What accepting does.
    pub accept_text: &'static str,
    /// Acceptance confirmation, followed by the letter id.
    pub accept_confirm: &'static str,
    /// Acceptance button.
    pub accept_button: &'static str,
    /// Legend of the refusal form.
    pub refuse_legend: &'static str,
    /// What refusing does.
    pub refuse_text: &'static str,
    /// Refusal confirmation, followed by the letter id.
    pub refuse_confirm: &'static str,
    /// Refusal button.
    pub refuse_button: &'static str,
    /// The confirmation box was not ticked.
    pub confirm_missing: &'static str,

    /// Heading of the payment section of an accepted composed letter.
    pub payment_heading: &'static str,
    /// Text before the payment link.
    pub payment_text: &'static str,
    /// Label of the IBAN to pay to.
    pub payment_iban: &'static str,
    /// Label of the sender's payment instructions.
    pub payment_instructions: &'static str,
    /// Heading of the sum claimed by an accepted composed letter.
    pub claim_heading: &'static str,
    /// Label of the total due.
    pub claim_total: &'static str,
    /// Label of the principal.
    pub claim_principal: &'static str,
    /// Label of the late interest.
    pub claim_interest: &'static str,
    /// Label of the €40 recovery indemnities.
    pub claim_indemnity: &'static str,
    /// Label of the deadline to pay.
    pub claim_deadline: &'static str,
    /// Said where refusal is offered: refusing does not extinguish a debt.
    pub refuse_debt: &'static str,
    /// Heading of the sender, after the decision.
    pub sender_heading: &'static str,
    /// Sender name label.
    pub sender_name: &'static str,
    /// Sender organisation label.
    pub sender_organization: &'static str,
    /// Sender email label.
    pub sender_email: &'static str,
    /// Heading of the decision recap.
    pub decision_heading: &'static str,
    /// Heading of the documents.
    pub documents_heading: &'static str,
    /// About downloading (ContentHandover).
    pub documents_text: &'static str,
    /// Verb before a document name.
    pub download: &'static str,
    /// A refused letter's content stays closed.
    pub refused_no_content: &'static str,
    /// Heading of the receipt section.
    pub receipt_heading: &'static str,
    /// What accepting means.
    pub accepted_meaning: &'static str,
    /// What refusing means.
    pub refused_meaning: &'static str,
    /// Link to the signed PDF of an acceptance.
    pub receipt_accepted_link: &'static str,
    /// Link to the signed PDF of a refusal.
    pub receipt_refused_link: &'static str,
    /// About the PDF's signature and the verification page.
    pub receipt_verify_text: &'static str,
    /// Link to the verification page.
    pub receipt_verify_link: &'static str,
    /// Heading of the proofs.
    pub proofs_heading: &'static str,
    /// What the proofs are.
    pub proofs_text: &'static str,
    /// Column: event.
    pub proofs_event: &'static str,
    /// Column: time.
    pub proofs_time: &'static str,
    /// Column: files.
    pub proofs_files: &'static str,
    /// The JSON record.
    pub file_record: &'static str,
    /// The CMS seal.
    pub file_seal: &'static str,
    /// The RFC 3161 token.
    pub file_timestamp: &'static str,

    /// Heading of the code page.
    pub code_title: &'static str,
    /// Label of the code field.
    pub code_label: &'static str,
    /// Hint under the label.
    pub code_hint: &'static str,
    /// Submit button.
    pub code_submit: &'static str,
    /// Ask for another code.
    pub code_resend: &'static str,
    /// The entry is not 6 digits (no attempt is counted).
    pub code_malformed: &'static str,
    /// Back to the letter.
    pub back_to_letter: &'static str,

    /// 404 title.
    pub not_found_title: &'static str,
    /// 404 text.
    pub not_found_text: &'static str,
    /// 409 title.
    pub conflict_title: &'static str,
    /// 409 after a decision attempt.
    pub decision_conflict_text: &'static str,
    /// 409 after a code request.
    pub code_conflict_text: &'static str,
    /// No session title.
    pub session_title: &'static str,
    /// No session text.
    pub session_text: &'static str,
    /// Locked title.
    pub locked_title: &'static str,
    /// Too many codes title.
    pub too_many_title: &'static str,
    /// Title of the 429 page of the per-address and per-letter request limits.
    pub rate_limited_title: &'static str,
    /// Too many codes text.
    pub too_many_text: &'static str,
    /// 503 title.
    pub unavailable_title: &'static str,
    /// 503 text.
    pub unavailable_text: &'static str,
    /// 500 title.
    pub internal_title: &'static str,
    /// 500 text.
    pub internal_text: &'static str,
    /// Cross-site form title.
    pub forbidden_title: &'static str,
    /// Cross-site form text.
    pub forbidden_text: &'static str,
    /// Unreadable form title.
    pub bad_form_title: &'static str,
    /// Unreadable form text.
    pub bad_form_text: &'static str,
}

/// French, the default.
pub static FRENCH: Wording = Wording {
    lang: "fr",
    skip: "Aller au contenu",
    service_kind: "Lettre recommandée électronique",
    notice_word: "À savoir : ",
    error_word: "Erreur : ",
    non_qualified: "service de démonstration. Les preuves qu'il émet ne sont pas qualifiées au sens du règlement eIDAS et n'ont pas la valeur d'une lettre recommandée.",
    footer: "Cette page fonctionne sans JavaScript. Le lien que vous avez reçu par e-mail est personnel : ne le transmettez pas.",

    title_waiting: "Une lettre recommandée électronique vous attend",
    title_accepted: "Vous avez accepté cette lettre recommandée électronique",
    title_withheld: "Lettre recommandée électronique",
    title_refused: "Vous avez refusé cette lettre recommandée électronique",
    title_expired: "Lettre recommandée électronique non réclamée",
    title_failed: "Notification non remise",
    title_pending: "Lettre en cours d'envoi",
    provider_label: "Prestataire",
    letter_id_label: "Identifiant de la lettre",
    state_label: "État",
    deadline_label: "Date limite pour accepter ou refuser",
    content_label: "Contenu",
    state_deposited: "En cours d'envoi",
    state_notified: "En attente de votre décision",
    state_accepted: "Acceptée",
    state_refused: "Refusée",
    state_expired: "Non réclamée : le délai a pris fin",
    state_failed: "Notification non remise",
    expired_text: "le délai de quinze jours pour accepter ou refuser cette lettre a pris fin. Elle est considérée comme non réclamée et l'expéditeur en reçoit la preuve. Aucune action n'est plus possible sur cette page.",
    failed_text: "la notification de cette lettre n'a pas pu être remise à votre adresse e-mail. Aucune action n'est possible sur cette page.",
    pending_text: "la notification de cette lettre est en cours d'envoi. Revenez un peu plus tard.",

    about_heading: "De quoi s'agit-il ?",
    about_value: "Une lettre recommandée électronique a la même valeur juridique qu'une lettre recommandée papier (article L.100 du code des postes et des communications électroniques).",
    about_window: "Vous pouvez l'accepter ou la refuser jusqu'à la date limite indiquée ci-dessus, soit quinze jours à compter du lendemain de la notification. Sans décision de votre part à cette date, la lettre sera considérée comme non réclamée et l'expéditeur en recevra la preuve.",
    about_sender: "L'identité de l'expéditeur vous sera communiquée dès que vous aurez accepté ou refusé la lettre, pas avant (article R.53-3 du même code).",

    identify_heading: "Vous identifier",
    identify_button: "Recevoir un code par e-mail",
    have_code: "J'ai déjà reçu un code",

    decide_heading: "Accepter ou refuser la lettre",
    decide_intro: "Vous êtes identifié(e). Votre décision est définitive : elle est enregistrée dans une preuve scellée et horodatée, remise à l'expéditeur.",
    accept_legend: "Accepter la lettre",
    accept_text: "Le nom de l'expéditeur vous sera indiqué et vous pourrez télécharger la lettre. L'expéditeur reçoit un accusé de réception.",
    accept_confirm: "Je confirme accepter la lettre recommandée électronique",
    accept_button: "Accepter la lettre",
    refuse_legend: "Refuser la lettre",
    refuse_text: "Le nom de l'expéditeur vous sera indiqué, mais vous ne pourrez pas lire la lettre. L'expéditeur reçoit une preuve de refus.",
    refuse_confirm: "Je confirme refuser la lettre recommandée électronique",
    refuse_button: "Refuser la lettre",
    confirm_missing: "cochez la case de confirmation du formulaire choisi pour enregistrer votre décision. Rien n'a été enregistré.",

    payment_heading: "Paiement",
    payment_text: "L'expéditeur propose de régler en ligne :",
    payment_iban: "Virement sur le compte IBAN",
    payment_instructions: "Instructions de l'expéditeur",
    claim_heading: "Somme réclamée",
    claim_total: "Total à payer",
    claim_principal: "Principal restant dû",
    claim_interest: "Intérêts de retard",
    claim_indemnity: "Indemnités forfaitaires pour frais de recouvrement",
    claim_deadline: "À payer au plus tard le",
    refuse_debt: "Refuser la lettre n'éteint pas la dette ou l'obligation dont elle traite, le cas échéant : seule la lettre est refusée, et ce refus est prouvé à l'expéditeur.",
    sender_heading: "Expéditeur",
    sender_name: "Nom",
    sender_organization: "Organisation",
    sender_email: "Adresse e-mail",
    decision_heading: "Votre décision",
    documents_heading: "Documents",
    documents_text: "Votre premier téléchargement est enregistré dans une preuve de remise du contenu.",
    download: "Télécharger",
    refused_no_content: "Vous avez refusé la lettre : son contenu ne vous est pas accessible.",
    receipt_heading: "Votre preuve",
    accepted_meaning: "Vous avez accepté la lettre : elle vous est remise, et l'expéditeur reçoit un accusé de réception daté. Accepter ne vaut pas reconnaissance de ce que la lettre réclame.",
    refused_meaning: "Vous avez refusé la lettre. Refuser n'annule pas la dette réclamée et n'arrête pas la procédure : l'expéditeur reçoit une preuve datée de votre refus.",
    receipt_accepted_link: "Télécharger l'accusé de réception (PDF signé)",
    receipt_refused_link: "Télécharger la preuve de refus (PDF signé)",
    receipt_verify_text: "Ce PDF est signé et horodaté par le prestataire : votre lecteur PDF montre la signature. Vous pouvez aussi vérifier la lettre sur la page de vérification avec son identifiant et ce code :",
    receipt_verify_link: "Vérifier cette lettre",
    proofs_heading: "Vos preuves",
    proofs_text: "Chaque étape est attestée par un enregistrement JSON, scellé (fichier .p7s, CMS) et horodaté (fichier .tsr, RFC 3161). Ces fichiers se vérifient avec openssl.",
    proofs_event: "Étape",
    proofs_time: "Date",
    proofs_files: "Fichiers",
    file_record: "enregistrement (.json)",
    file_seal: "cachet (.p7s)",
    file_timestamp: "horodatage (.tsr)",

    code_title: "Saisir votre code",
    code_label: "Code reçu par e-mail",
    code_hint: "Six chiffres, sans espace (exemple : 123456).",
    code_submit: "Valider le code",
    code_resend: "Recevoir un nouveau code",
    code_malformed: "le code doit comporter exactement six chiffres. Aucun essai n'a été décompté.",
    back_to_letter: "Retour à la lettre",

    not_found_title: "Lien inconnu",
    not_found_text: "Aucune lettre ne correspond à ce lien. Vérifiez que l'adresse copiée depuis l'e-mail de notification est complète.",
    conflict_title: "Action impossible",
    decision_conflict_text: "Votre décision n'a pas été enregistrée : la lettre a déjà fait l'objet d'une décision, qui est définitive, ou le délai pour décider a pris fin.",
    code_conflict_text: "Cette lettre n'est plus en attente d'une décision : il n'est pas possible de s'identifier pour elle.",
    session_title: "Identification requise",
    session_text: "Vous n'êtes pas identifié(e), ou votre session a pris fin (elle dure 30 minutes). Rien n'a été enregistré. Demandez un nouveau code depuis la page de la lettre.",
    locked_title: "Identification bloquée",
    too_many_title: "Trop de codes demandés",
    rate_limited_title: "Trop de demandes",
    too_many_text: "Vous ne pouvez pas demander plus de 5 codes par heure. Utilisez le dernier code reçu, valable 10 minutes, ou réessayez plus tard.",
    unavailable_title: "Service momentanément indisponible",
    unavailable_text: "Votre demande n'a pas pu aboutir et rien n'a été enregistré. Réessayez dans quelques minutes.",
    internal_title: "Erreur interne",
    internal_text: "Une erreur interne est survenue ; rien n'a été enregistré. Réessayez plus tard.",
    forbidden_title: "Requête refusée",
    forbidden_text: "Ce formulaire n'a pas été envoyé depuis les pages de ce service. Rien n'a été enregistré. Ouvrez le lien reçu par e-mail et recommencez.",
    bad_form_title: "Formulaire illisible",
    bad_form_text: "Le formulaire reçu est illisible. Rien n'a été enregistré. Revenez à la page de la lettre et recommencez.",
};

/// English.
pub static ENGLISH: Wording = Wording {
    lang: "en",
    skip: "Skip to content",
    service_kind: "Electronic registered letter",
    notice_word: "Please note: ",
    error_word: "Error: ",
    non_qualified: "demonstration service. The evidence it issues is not qualified under the eIDAS regulation and does not have the value of a registered letter.",
    footer: "This page works without JavaScript. The link you received by email is personal: do not share it.",

    title_waiting: "An electronic registered letter awaits you",
    title_accepted: "You accepted this electronic registered letter",
    title_withheld: "Electronic registered letter",
    title_refused: "You refused this electronic registered letter",
    title_expired: "Unclaimed electronic registered letter",
    title_failed: "Notification not delivered",
    title_pending: "Letter being sent",
    provider_label: "Provider",
    letter_id_label: "Letter id",
    state_label: "Status",
    deadline_label: "Deadline to accept or refuse",
    content_label: "Content",
    state_deposited: "Being sent",
    state_notified: "Awaiting your decision",
    state_accepted: "Accepted",
    state_refused: "Refused",
    state_expired: "Unclaimed: the deadline has passed",
    state_failed: "Notification not delivered",
    expired_text: "the fifteen days to accept or refuse this letter have ended. It is recorded as unclaimed and the sender receives proof of it. Nothing more can be done on this page.",
    failed_text: "the notification of this letter could not be delivered to your email address. Nothing can be done on this page.",
    pending_text: "the notification of this letter is being sent. Please come back a little later.",

    about_heading: "What is this?",
    about_value: "An electronic registered letter has the same legal value as a paper registered letter in France (article L.100 of the French postal and electronic communications code, CPCE).",
    about_window: "You may accept or refuse it until the deadline above: fifteen days from the day after the notification. Without a decision by then, the letter will be recorded as unclaimed and the sender will receive proof of it.",
    about_sender: "The sender's identity will be shown to you as soon as you accept or refuse the letter, not before (article R.53-3 of the same code).",

    identify_heading: "Identify yourself",
    identify_button: "Receive a code by email",
    have_code: "I already have a code",

    decide_heading: "Accept or refuse the letter",
    decide_intro: "You are identified. Your decision is final: it is recorded in sealed and timestamped evidence given to the sender.",
    accept_legend: "Accept the letter",
    accept_text: "You will see who the sender is and be able to download the letter. The sender receives an acknowledgement of receipt.",
    accept_confirm: "I confirm that I accept the electronic registered letter",
    accept_button: "Accept the letter",
    refuse_legend: "Refuse the letter",
    refuse_text: "You will see who the sender is, but you will not be able to read the letter. The sender receives proof of refusal.",
    refuse_confirm: "I confirm that I refuse the electronic registered letter",
    refuse_button: "Refuse the letter",
    confirm_missing: "tick the confirmation box of the form you chose to record your decision. Nothing was recorded.",

    payment_heading: "Payment",
    payment_text: "The sender offers to pay online:",
    payment_iban: "Bank transfer to the IBAN",
    payment_instructions: "Sender's instructions",
    claim_heading: "Amount claimed",
    claim_total: "Total due",
    claim_principal: "Principal outstanding",
    claim_interest: "Late interest",
    claim_indemnity: "Fixed recovery indemnities",
    claim_deadline: "To pay by",
    refuse_debt: "Refusing the letter does not extinguish any debt or obligation it concerns: only the letter is refused, and the sender receives proof of the refusal.",
    sender_heading: "Sender",
    sender_name: "Name",
    sender_organization: "Organisation",
    sender_email: "Email address",
    decision_heading: "Your decision",
    documents_heading: "Documents",
    documents_text: "Your first download is recorded as proof that the content was handed over.",
    download: "Download",
    refused_no_content: "You refused the letter: its content is not available to you.",
    receipt_heading: "Your proof",
    accepted_meaning: "You accepted the letter: it is handed over to you, and the sender receives a dated acknowledgement of receipt. Accepting does not mean agreeing with what the letter claims.",
    refused_meaning: "You refused the letter. Refusing does not cancel the debt claimed nor stop the procedure: the sender receives a dated proof of your refusal.",
    receipt_accepted_link: "Download the acknowledgement of receipt (signed PDF)",
    receipt_refused_link: "Download the proof of refusal (signed PDF)",
    receipt_verify_text: "This PDF is signed and timestamped by the provider: your PDF reader shows the signature. You can also check the letter on the verification page with its id and this code:",
    receipt_verify_link: "Verify this letter",
    proofs_heading: "Your proofs",
    proofs_text: "Each step is attested by a JSON record, sealed (.p7s file, CMS) and timestamped (.tsr file, RFC 3161). The files can be checked with openssl.",
    proofs_event: "Step",
    proofs_time: "Date",
    proofs_files: "Files",
    file_record: "record (.json)",
    file_seal: "seal (.p7s)",
    file_timestamp: "timestamp (.tsr)",

    code_title: "Enter your code",
    code_label: "Code received by email",
    code_hint: "Six digits, no spaces (for example: 123456).",
    code_submit: "Confirm the code",
    code_resend: "Send me a new code",
    code_malformed: "the code must have exactly six digits. No attempt was counted.",
    back_to_letter: "Back to the letter",

    not_found_title: "Unknown link",
    not_found_text: "No letter matches this link. Check that the address copied from the notification email is complete.",
    conflict_title: "Not possible",
    decision_conflict_text: "Your decision was not recorded: the letter has already been decided, and a decision is final, or the time to decide has ended.",
    code_conflict_text: "This letter no longer awaits a decision: identification is not possible for it.",
    session_title: "Identification required",
    session_text: "You are not identified, or your session has ended (it lasts 30 minutes). Nothing was recorded. Ask for a new code from the letter's page.",
    locked_title: "Identification locked",
    too_many_title: "Too many codes requested",
    rate_limited_title: "Too many requests",
    too_many_text: "At most 5 codes can be sent per hour. Use the last code you received, valid for 10 minutes, or try again later.",
    unavailable_title: "Service temporarily unavailable",
    unavailable_text: "Your request could not be completed and nothing was recorded. Please try again in a few minutes.",
    internal_title: "Internal error",
    internal_text: "An internal error occurred; nothing was recorded. Please try again later.",
    forbidden_title: "Request refused",
    forbidden_text: "This form was not sent from this service's pages. Nothing was recorded. Open the link from the email and start again.",
    bad_form_title: "Unreadable form",
    bad_form_text: "The form received could not be read. Nothing was recorded. Go back to the letter's page and start again.",
};

impl Wording {
    /// The last day to pay a composed letter: `days` after its receipt (the acceptance;
    /// the day of receipt itself does not count, as for a period in days under Code de
    /// procédure civile, art. 641).
    pub fn pay_by(&self, last_day: time::Date, days: u8) -> String {
        let unit_fr = if days == 1 { "jour" } else { "jours" };
        let unit_en = if days == 1 { "day" } else { "days" };
        if self.is_french() {
            format!(
                "{} ({days} {unit_fr} à compter de la réception de la lettre, c'est-à-dire de son acceptation)",
                crate::core::french::date(last_day)
            )
        } else {
            format!(
                "{} ({days} {unit_en} from receipt of the letter, that is from its acceptance)",
                crate::domain::window::english_date(last_day)
            )
        }
    }

    /// A Paris civil time as a reader expects it, with the time zone said.
    pub fn paris(&self, t: OffsetDateTime) -> String {
        if self.is_french() {
            format!("{} (heure de Paris)", paris_french(t))
        } else {
            paris_english(t)
        }
    }

    /// A decided letter seen without a session: identify to see it (no word of the outcome).
    pub fn withheld_text(&self, masked_address: &str) -> String {
        if self.is_french() {
            format!(
                "Pour consulter cette lettre, identifiez-vous : un code à six chiffres sera \
                 envoyé à l'adresse qui a reçu la notification ({masked_address})."
            )
        } else {
            format!(
                "To see this letter, identify yourself: a six-digit code will be sent to the \
                 address that received the notification ({masked_address})."
            )
        }
    }

    /// How the recipient will be identified.
    pub fn identify_text(&self, masked_address: &str) -> String {
        if self.is_french() {
            format!(
                "Avant de décider, nous vérifions que vous êtes bien le destinataire : un code à \
                 six chiffres sera envoyé à l'adresse qui a reçu la notification ({masked_address})."
            )
        } else {
            format!(
                "Before you decide, we check that you are the addressee: a six-digit code will be \
                 sent to the address that received the notification ({masked_address})."
            )
        }
    }

    /// A code was just sent.
    pub fn code_sent(&self, masked_address: &str, expires_at: OffsetDateTime) -> String {
        if self.is_french() {
            format!(
                "Un code à six chiffres vient d'être envoyé à {masked_address}. Il est valable \
                 10 minutes, jusqu'au {}.",
                self.paris(expires_at)
            )
        } else {
            format!(
                "A six-digit code has just been sent to {masked_address}. It is valid for \
                 10 minutes, until {}.",
                self.paris(expires_at)
            )
        }
    }

    /// The code form, reached without sending a code.
    pub fn code_prompt(&self, masked_address: &str) -> String {
        if self.is_french() {
            format!(
                "Saisissez le code à six chiffres envoyé à {masked_address}. Un code est valable \
                 10 minutes."
            )
        } else {
            format!(
                "Enter the six-digit code sent to {masked_address}. A code is valid for 10 minutes."
            )
        }
    }

    /// A wrong or expired code.
    pub fn wrong_code(&self, remaining: i64) -> String {
        if self.is_french() {
            format!(
                "code incorrect ou expiré. Il vous reste {remaining} essai(s) avant que \
                 l'identification ne soit bloquée pendant 15 minutes."
            )
        } else {
            format!(
                "wrong or expired code. {remaining} attempt(s) left before identification is \
                 locked for 15 minutes."
            )
        }
    }

    /// Too many requests from this address, or codes for this letter: wait `seconds`.
    pub fn rate_limited_text(&self, seconds: u64) -> String {
        if self.is_french() {
            format!(
                "Trop de demandes ont été faites depuis votre adresse ou pour cette lettre. \
                 Rien n'a été enregistré. Réessayez dans {seconds} secondes."
            )
        } else {
            format!(
                "Too many requests were made from your address or for this letter. Nothing \
                 was recorded. Try again in {seconds} seconds."
            )
        }
    }

    /// Identification is locked until `until`.
    pub fn locked_text(&self, until: OffsetDateTime) -> String {
        if self.is_french() {
            format!(
                "Trop de codes incorrects ont été saisis. Par sécurité, l'identification pour \
                 cette lettre est bloquée jusqu'au {}. Rien n'a été enregistré.",
                self.paris(until)
            )
        } else {
            format!(
                "Too many wrong codes were entered. For your security, identification for this \
                 letter is locked until {}. Nothing was recorded.",
                self.paris(until)
            )
        }
    }

    /// The recipient's decision and its time.
    pub fn decision_text(&self, accepted: bool, at: OffsetDateTime) -> String {
        match (self.is_french(), accepted) {
            (true, true) => format!("Vous avez accepté la lettre le {}.", self.paris(at)),
            (true, false) => format!("Vous avez refusé la lettre le {}.", self.paris(at)),
            (false, true) => format!("You accepted the letter on {}.", self.paris(at)),
            (false, false) => format!("You refused the letter on {}.", self.paris(at)),
        }
    }

    /// "2 documents, 14 Ko".
    pub fn content_summary(&self, count: usize, bytes: i64) -> String {
        let noun = if count > 1 { "documents" } else { "document" };
        format!("{count} {noun}, {}", self.size(bytes))
    }

    /// A size for a reader.
    pub fn size(&self, bytes: i64) -> String {
        let (byte, kilo, mega) = if self.is_french() {
            ("octets", "Ko", "Mo")
        } else {
            ("bytes", "KB", "MB")
        };
        let b = bytes.max(0) as f64;
        let text = if bytes < 1024 {
            format!("{} {byte}", bytes.max(0))
        } else if b < 1024.0 * 1024.0 {
            format!("{:.1} {kilo}", b / 1024.0)
        } else {
            format!("{:.1} {mega}", b / (1024.0 * 1024.0))
        };
        if self.is_french() {
            text.replace('.', ",")
        } else {
            text
        }
    }

    /// The name of an evidence event (ETSI EN 319 522) for a reader.
    pub fn event_label(&self, event: &str) -> String {
        crate::core::verify::event_label(event, self.is_french()).to_string()
    }

    fn is_french(&self) -> bool {
        self.lang == "fr"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn french_times_say_paris_and_use_french_months() {
        // 8 December 2026 22:59 UTC is 23:59 in Paris (winter time).
        let t = datetime!(2026-12-08 22:59 UTC);
        assert_eq!(FRENCH.paris(t), "8 décembre 2026 à 23:59 (heure de Paris)");
        assert_eq!(ENGLISH.paris(t), "8 December 2026, 23:59 (Paris time)");
    }

    #[test]
    fn sizes_read_naturally_in_each_language() {
        assert_eq!(FRENCH.size(900), "900 octets");
        assert_eq!(FRENCH.size(1536), "1,5 Ko");
        assert_eq!(ENGLISH.size(1536), "1.5 KB");
        assert_eq!(ENGLISH.size(3 * 1024 * 1024), "3.0 MB");
        assert_eq!(FRENCH.content_summary(2, 2048), "2 documents, 2,0 Ko");
    }

    #[test]
    fn every_event_has_a_label_in_both_languages() {
        for event in [
            "SubmissionAcceptance",
            "NotificationForAcceptance",
            "NotificationForAcceptanceFailure",
            "ConsignmentAcceptance",
            "ConsignmentRejection",
            "ContentHandover",
            "AcceptanceRejectionExpiry",
            "ContentDestruction",
        ] {
            assert_ne!(FRENCH.event_label(event), event);
            assert_ne!(ENGLISH.event_label(event), event);
            assert_ne!(FRENCH.event_label(event), ENGLISH.event_label(event));
        }
    }
}
