//! The recipient's HTML pages through the real router: the sender stays hidden until the
//! decision (CPCE R.53-3), the form flow code → session → accept or refuse, the language
//! switch, HTML errors with their status codes, and cross-site posts refused.
//!
//! The mails come from the embedded default transport: `.eml` files in `<data_dir>/mail/`.

use std::collections::HashSet;
use std::path::PathBuf;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};

use crate::helpers::{Engine, TestApp, spawn_app, spawn_app_with};
use crate::smtp::{body_text, code, link_token};

crate::on_both_engines!(
    the_landing_page_never_names_the_sender_before_a_decision,
    the_form_flow_identifies_then_accepts_only_with_the_confirmation,
    a_refusal_through_the_pages_reveals_the_sender_but_not_the_content,
    the_pages_switch_to_english_and_remember_it,
    an_unknown_link_is_an_html_404,
    a_cross_origin_post_is_refused_and_records_nothing,
    five_wrong_codes_show_a_locked_page,
    pages_send_hsts_only_when_the_public_url_is_https,
    a_forwarded_link_shows_no_more_than_the_notification_before_and_after_an_acceptance,
    a_forwarded_link_shows_no_more_than_the_notification_before_and_after_a_refusal,
);

const SENDER_TRACES: [&str; 3] = ["cabinet recouvr", "recouvr sas", "envoi@recouvr.fr"];

/// A deposited and notified letter, seen from the recipient's mailbox.
struct Notified {
    app: TestApp,
    letter_id: String,
    token: String,
    /// A client that does not follow redirects, so 303s can be checked.
    browser: reqwest::Client,
}

async fn notified_letter(engine: Engine) -> Option<Notified> {
    let app = spawn_app(engine).await?;
    let letter = app.deposit().await;
    let letter_id = letter["id"].as_str().expect("id").to_string();
    app.service.lifecycle.run_due_jobs(10).await.expect("jobs");
    let notification = mail_files(&app)
        .into_iter()
        .map(read_body)
        .find(|body| body.contains("/r/"))
        .expect("the notification mail");
    let token = link_token(&notification);
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    Some(Notified {
        app,
        letter_id,
        token,
        browser,
    })
}

impl Notified {
    fn url(&self, path: &str) -> String {
        self.app.url(path)
    }

    async fn page(&self, path: &str, cookie: Option<&str>) -> (StatusCode, String) {
        let mut request = self.browser.get(self.url(path));
        if let Some(c) = cookie {
            request = request.header(COOKIE, c);
        }
        let response = request.send().await.expect("GET");
        assert_html(&response);
        let status = response.status();
        (status, response.text().await.expect("text"))
    }

    async fn post_form(&self, path: &str, form: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut request = self
            .browser
            .post(self.url(path))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("user-agent", "pages-test/1.0")
            .body(form.to_string());
        if let Some(c) = cookie {
            request = request.header(COOKIE, c);
        }
        request.send().await.expect("POST")
    }

    /// Requests a code through the page, reads it from the new mail; returns it.
    async fn request_code(&self) -> String {
        let before: HashSet<PathBuf> = mail_files(&self.app).into_iter().collect();
        let response = self
            .post_form(&format!("/r/{}/code", self.token), "", None)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_html(&response);
        let html = response.text().await.expect("text");
        assert!(html.contains("c***@debitrice.fr"), "masked address: {html}");
        assert!(html.contains(r#"inputmode="numeric""#), "{html}");
        assert!(html.contains(r#"autocomplete="one-time-code""#), "{html}");
        assert!(html.contains(r#"<label for="code">"#), "{html}");
        assert!(
            html.contains(&format!(r#"action="/r/{}/session""#, self.token)),
            "{html}"
        );
        let new: Vec<PathBuf> = mail_files(&self.app)
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        assert_eq!(new.len(), 1, "one code mail: {new:?}");
        code(&read_body(new[0].clone()))
    }

    /// Requests a code and opens a session with it; returns the `Cookie` header value.
    async fn identify(&self) -> String {
        let otp = self.request_code().await;
        let response = self
            .post_form(
                &format!("/r/{}/session", self.token),
                &format!("code={otp}"),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            response.headers()[LOCATION],
            format!("/r/{}", self.token).as_str()
        );
        let set_cookie = response.headers()[SET_COOKIE].to_str().expect("cookie");
        assert!(
            set_cookie.starts_with("recommande_session="),
            "{set_cookie}"
        );
        assert!(
            set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
            "{set_cookie}"
        );
        assert!(
            !set_cookie.contains("Secure"),
            "http public URL: {set_cookie}"
        );
        set_cookie
            .split(';')
            .next()
            .expect("name=value")
            .to_string()
    }

    async fn events(&self) -> Vec<String> {
        self.app
            .evidence_of(&self.letter_id)
            .await
            .into_iter()
            .map(|e| e.event)
            .collect()
    }
}

fn mail_files(app: &TestApp) -> Vec<PathBuf> {
    std::fs::read_dir(app.dir.path().join("mail"))
        .expect("mail dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect()
}

fn read_body(path: PathBuf) -> String {
    body_text(&String::from_utf8(std::fs::read(path).expect("eml")).expect("utf-8 mail"))
}

fn assert_html(response: &reqwest::Response) {
    let headers = response.headers();
    assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
}

fn assert_no_sender(html: &str) {
    let lower = html.to_lowercase();
    for trace in SENDER_TRACES {
        assert!(!lower.contains(trace), "{trace:?} shown before a decision");
    }
}

async fn the_landing_page_never_names_the_sender_before_a_decision(engine: Engine) {
    let Some(n) = notified_letter(engine).await else {
        return;
    };
    let (status, html) = n.page(&format!("/r/{}", n.token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"<html lang="fr">"#));
    assert!(html.contains("Une lettre recommandée électronique vous attend"));
    assert!(html.contains(&n.letter_id));
    assert!(html.contains("recommande"), "provider name");
    assert!(html.contains("L.100"), "legal value explained");
    assert!(html.contains("23:59 (heure de Paris)"), "deadline: {html}");
    assert!(html.contains("En attente de votre décision"));
    assert!(
        html.contains(&format!(r#"action="/r/{}/code""#, n.token)),
        "code button: {html}"
    );
    assert!(html.contains("Recevoir un code par e-mail"));
    assert!(
        !html.contains("/accept"),
        "no decision before identification"
    );
    assert!(!html.contains("<script"), "no JavaScript");
    assert_no_sender(&html);

    // Identified, still before the decision: the forms appear, the sender does not.
    let cookie = n.identify().await;
    let (_, html) = n.page(&format!("/r/{}", n.token), Some(&cookie)).await;
    assert!(html.contains(&format!(r#"action="/r/{}/accept""#, n.token)));
    assert!(html.contains(&format!(r#"action="/r/{}/refuse""#, n.token)));
    assert_no_sender(&html);
}

async fn the_form_flow_identifies_then_accepts_only_with_the_confirmation(engine: Engine) {
    let Some(n) = notified_letter(engine).await else {
        return;
    };
    let landing = format!("/r/{}", n.token);

    // A wrong code shows the form again with the attempts left; nothing is opened.
    let otp = n.request_code().await;
    let wrong = if otp == "000000" { "111111" } else { "000000" };
    let response = n
        .post_form(
            &format!("/r/{}/session", n.token),
            &format!("code={wrong}"),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.headers().get(SET_COOKIE).is_none());
    let html = response.text().await.expect("text");
    assert!(html.contains("Il vous reste 4 essai(s)"), "{html}");
    assert!(html.contains(r#"aria-invalid="true""#), "{html}");

    // A typing slip (not six digits) costs no attempt.
    let response = n
        .post_form(&format!("/r/{}/session", n.token), "code=12a", None)
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response
            .text()
            .await
            .expect("text")
            .contains("six chiffres")
    );

    // The right code, with the spaces people paste, opens the session.
    let spaced = format!("{} {}", &otp[..3], &otp[3..]);
    let response = n
        .post_form(
            &format!("/r/{}/session", n.token),
            &format!("code={}", spaced.replace(' ', "+")),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()[SET_COOKIE]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_string();

    // Accepting without ticking the confirmation is refused by the server, not only by the
    // browser's `required`, and records nothing.
    let response = n
        .post_form(&format!("/r/{}/accept", n.token), "", Some(&cookie))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("text");
    assert!(html.contains(r#"role="alert""#), "{html}");
    assert!(html.contains("cochez la case de confirmation"), "{html}");
    assert_no_sender(&html);
    assert_eq!(
        n.events().await,
        ["SubmissionAcceptance", "NotificationForAcceptance"]
    );
    let response = n
        .post_form(
            &format!("/r/{}/accept", n.token),
            "confirm=no",
            Some(&cookie),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Deciding without a session is refused with an HTML page.
    let response = n
        .post_form(&format!("/r/{}/accept", n.token), "confirm=yes", None)
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_html(&response);
    assert_eq!(n.events().await.len(), 2);

    // With the confirmation: accepted, back to the letter.
    let response = n
        .post_form(
            &format!("/r/{}/accept", n.token),
            "confirm=yes",
            Some(&cookie),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], landing.as_str());
    assert_eq!(
        n.events().await,
        [
            "SubmissionAcceptance",
            "NotificationForAcceptance",
            "ConsignmentAcceptance"
        ]
    );

    // The sender is revealed, with the decision and the download links.
    let (status, html) = n.page(&landing, Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Vous avez accepté cette lettre"), "{html}");
    assert!(html.contains("Cabinet Recouvr"), "{html}");
    assert!(html.contains("Recouvr SAS"));
    assert!(html.contains("envoi@recouvr.fr"));
    assert!(html.contains("Vous avez accepté la lettre le "));
    assert!(
        !html.contains("/accept\""),
        "no decision form after the decision"
    );
    let documents = n.app.service.storage.letter_documents(&n.letter_id).await;
    let document = &documents.expect("documents")[0];
    let href = format!("/v1/recipient/{}/documents/{}", n.token, document.id);
    assert!(html.contains(&format!(r#"href="{href}""#)), "{html}");
    let acceptance = n
        .app
        .evidence_of(&n.letter_id)
        .await
        .into_iter()
        .find(|e| e.event == "ConsignmentAcceptance")
        .expect("acceptance");
    // The signed acknowledgement of receipt, what accepting means, and the verification link.
    let receipt = format!(r#"href="/v1/recipient/{}/receipt.pdf""#, n.token);
    assert!(html.contains(&receipt), "{html}");
    assert!(html.contains("accusé de réception (PDF signé)"), "{html}");
    assert!(
        html.contains("Accepter ne vaut pas reconnaissance"),
        "{html}"
    );
    let code = n.app.service.lifecycle.verification_code(&n.letter_id);
    assert!(html.contains(&code), "the verification code: {html}");
    for ext in ["json", "p7s", "tsr"] {
        let proof = format!("/v1/recipient/{}/evidence/{}.{ext}", n.token, acceptance.id);
        assert!(
            html.contains(&format!(r#"href="{proof}""#)),
            "{ext}: {html}"
        );
    }

    // The link downloads the PDF with the cookie alone, and proves the handover.
    let response = n
        .browser
        .get(n.url(&href))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("GET document");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.bytes().await.expect("bytes").as_ref(),
        crate::helpers::sample_pdf("relance").as_slice()
    );
    assert_eq!(
        n.events().await.last().map(String::as_str),
        Some("ContentHandover")
    );

    // A second decision is a conflict page.
    let response = n
        .post_form(
            &format!("/r/{}/refuse", n.token),
            "confirm=yes",
            Some(&cookie),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_html(&response);
    assert!(response.text().await.expect("text").contains("définitive"));

    // Later, without a session (a forwarded link), neither the sender nor the documents are
    // shown: the page asks for a new identification.
    let (_, html) = n.page(&landing, None).await;
    assert!(
        !html.contains("Cabinet Recouvr"),
        "the sender needs a session, even after the decision"
    );
    assert!(!html.contains(&href), "no download link without a session");
    assert!(
        html.contains("Pour consulter cette lettre, identifiez-vous"),
        "{html}"
    );
}

async fn a_refusal_through_the_pages_reveals_the_sender_but_not_the_content(engine: Engine) {
    let Some(n) = notified_letter(engine).await else {
        return;
    };
    let cookie = n.identify().await;
    let response = n
        .post_form(
            &format!("/r/{}/refuse", n.token),
            "confirm=yes",
            Some(&cookie),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        n.events().await,
        [
            "SubmissionAcceptance",
            "NotificationForAcceptance",
            "ConsignmentRejection"
        ]
    );
    let (status, html) = n.page(&format!("/r/{}", n.token), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Vous avez refusé cette lettre"), "{html}");
    assert!(html.contains("Vous avez refusé la lettre le "));
    assert!(
        html.contains("Cabinet Recouvr"),
        "revealed after a refusal too"
    );
    assert!(html.contains("son contenu ne vous est pas accessible"));
    assert!(html.contains("annule pas la dette réclamée"), "{html}");
    assert!(
        html.contains(&format!("/v1/recipient/{}/receipt.pdf", n.token)),
        "{html}"
    );
    assert!(!html.contains("/documents/"), "no download after a refusal");
    assert!(
        html.contains(r#"<th scope="row">Refus</th>"#),
        "the refusal proof is listed: {html}"
    );

    // Accepting after refusing is a conflict, and nothing more is recorded.
    let response = n
        .post_form(
            &format!("/r/{}/accept", n.token),
            "confirm=yes",
            Some(&cookie),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(n.events().await.len(), 3);
}

async fn the_pages_switch_to_english_and_remember_it(engine: Engine) {
    let Some(n) = notified_letter(engine).await else {
        return;
    };
    let landing = format!("/r/{}", n.token);
    let response = n
        .browser
        .get(n.url(&format!("{landing}?lang=en")))
        .send()
        .await
        .expect("GET");
    assert_html(&response);
    let set_cookie = response.headers()[SET_COOKIE]
        .to_str()
        .expect("cookie")
        .to_string();
    assert!(
        set_cookie.starts_with("recommande_lang=en;"),
        "{set_cookie}"
    );
    let html = response.text().await.expect("text");
    assert!(html.contains(r#"<html lang="en">"#));
    assert!(html.contains("An electronic registered letter awaits you"));
    assert!(html.contains("23:59 (Paris time)"), "{html}");
    assert!(html.contains("Receive a code by email"));
    assert_no_sender(&html);
    // Both languages stay one click away, labelled in their own language.
    assert!(html.contains(&format!(r#"href="{landing}?lang=fr" lang="fr""#)));
    assert!(html.contains(&format!(r#"href="{landing}?lang=en" lang="en""#)));

    // Remembered by the cookie; French without it.
    let (_, html) = n.page(&landing, Some("recommande_lang=en")).await;
    assert!(html.contains(r#"<html lang="en">"#));
    let (_, html) = n.page(&landing, None).await;
    assert!(html.contains(r#"<html lang="fr">"#));

    // Form answers follow the cookie too.
    let response = n
        .post_form(
            &format!("{landing}/session"),
            "code=1",
            Some("recommande_lang=en"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("text");
    assert!(html.contains("Enter your code"), "{html}");
    assert!(html.contains("exactly six digits"));
}

async fn an_unknown_link_is_an_html_404(engine: Engine) {
    let Some(n) = notified_letter(engine).await else {
        return;
    };
    let unknown = "A".repeat(43);
    for path in [
        format!("/r/{unknown}"),
        "/r/too-short".to_string(),
        format!("/r/{unknown}/code"),
    ] {
        let (status, html) = n.page(&path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(html.contains("Lien inconnu"), "{path}: {html}");
        assert!(!html.contains(&n.letter_id));
    }
    let (status, html) = n.page(&format!("/r/{unknown}?lang=en"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("Unknown link"));
    let response = n.post_form(&format!("/r/{unknown}/code"), "", None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_html(&response);
}

async fn a_cross_origin_post_is_refused_and_records_nothing(engine: Engine) {
    let Some(n) = notified_letter(engine).await else {
        return;
    };
    let mails = mail_files(&n.app).len();
    let response = n
        .browser
        .post(n.url(&format!("/r/{}/code", n.token)))
        .header("origin", "http://evil.example")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_html(&response);
    assert!(
        response
            .text()
            .await
            .expect("text")
            .contains("Requête refusée")
    );
    assert_eq!(mail_files(&n.app).len(), mails, "no code sent");

    // Even with a valid session and the confirmation, a foreign origin decides nothing.
    let cookie = n.identify().await;
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("referer", "http://evil.example/page"),
    ] {
        let response = n
            .browser
            .post(n.url(&format!("/r/{}/accept", n.token)))
            .header(name, value)
            .header(COOKIE, &cookie)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("confirm=yes")
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}");
    }
    assert_eq!(
        n.events().await,
        ["SubmissionAcceptance", "NotificationForAcceptance"]
    );

    // The same post from our own origin goes through.
    let response = n
        .browser
        .post(n.url(&format!("/r/{}/accept", n.token)))
        .header("origin", n.app.address.as_str())
        .header(COOKIE, &cookie)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("confirm=yes")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

async fn five_wrong_codes_show_a_locked_page(engine: Engine) {
    let Some(n) = notified_letter(engine).await else {
        return;
    };
    let otp = n.request_code().await;
    let wrong = if otp == "000000" { "111111" } else { "000000" };
    for attempt in 1..=5 {
        let response = n
            .post_form(
                &format!("/r/{}/session", n.token),
                &format!("code={wrong}"),
                None,
            )
            .await;
        let expected = if attempt < 5 {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(response.status(), expected, "attempt {attempt}");
        if attempt == 5 {
            assert!(response.headers().contains_key("retry-after"));
            let html = response.text().await.expect("text");
            assert!(html.contains("Identification bloquée"), "{html}");
        }
    }
    // Locked: even the right code is refused now.
    let response = n
        .post_form(
            &format!("/r/{}/session", n.token),
            &format!("code={otp}"),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

async fn pages_send_hsts_only_when_the_public_url_is_https(engine: Engine) {
    let unknown = format!("/r/{}", "A".repeat(43));
    let Some(plain) = spawn_app(engine).await else {
        return;
    };
    let response = plain.get_anon(&unknown).await;
    assert_html(&response);
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );

    let Some(https) = spawn_app_with(
        engine,
        std::sync::Arc::new(recommande::core::clock::SystemClock),
        |s| s.server.public_url = "https://lre.example.fr".into(),
    )
    .await
    else {
        return;
    };
    // The listener itself speaks plain http here (TLS ends at the proxy in front of it); the
    // header follows the public URL the recipients are given.
    let response = https.get_anon(&unknown).await;
    assert_html(&response);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
}

async fn a_forwarded_link_shows_no_more_than_the_notification_before_and_after_an_acceptance(
    engine: Engine,
) {
    forwarded_link_shows_no_more_than_the_notification(engine, "accept").await;
}

async fn a_forwarded_link_shows_no_more_than_the_notification_before_and_after_a_refusal(
    engine: Engine,
) {
    forwarded_link_shows_no_more_than_the_notification(engine, "refuse").await;
}

/// The keys of the JSON view of the letter, with the session cookie or without.
async fn json_view(n: &Notified, cookie: Option<&str>) -> serde_json::Value {
    let mut request = n.browser.get(n.url(&format!("/v1/recipient/{}", n.token)));
    if let Some(c) = cookie {
        request = request.header(COOKIE, c);
    }
    let response = request.send().await.expect("GET");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

fn keys(view: &serde_json::Value) -> Vec<&str> {
    let mut keys: Vec<&str> = view
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// What a page without a session must never show: the sender, the content (its summary,
/// names, links), the proofs, the outcome.
fn assert_nothing_beyond_the_notification(html: &str, when: &str) {
    assert_no_sender(html);
    let lower = html.to_lowercase();
    for trace in [
        "relance.pdf",
        "/documents/",
        "/evidence/",
        "receipt.pdf",
        "1 document",
        "acceptée",
        "refusée",
        "vous avez accepté",
        "vous avez refusé",
        "vos preuves",
    ] {
        assert!(!lower.contains(trace), "{when}: {trace:?} shown: {html}");
    }
}

async fn forwarded_link_shows_no_more_than_the_notification(engine: Engine, decision: &str) {
    let Some(n) = notified_letter(engine).await else {
        return;
    };
    let notification = mail_files(&n.app)
        .into_iter()
        .map(read_body)
        .find(|body| body.contains("/r/"))
        .expect("the notification mail");
    let landing = format!("/r/{}", n.token);

    // Before the decision, without a session: the notification's facts and a way to identify.
    let (_, html) = n.page(&landing, None).await;
    assert!(notification.contains(&n.letter_id));
    assert!(html.contains(&n.letter_id), "{html}");
    assert!(html.contains("En attente de votre décision"), "{html}");
    assert!(html.contains(&format!(r#"action="/r/{}/code""#, n.token)));
    assert_nothing_beyond_the_notification(&html, "before, without a session");
    let view = json_view(&n, None).await;
    assert_eq!(
        keys(&view),
        ["deadline", "letter_id", "provider", "state"],
        "{view}"
    );
    assert_eq!(view["state"], "notified");

    // The identified recipient sees what it saw before this rule: the content summary.
    let cookie = n.identify().await;
    let (_, html) = n.page(&landing, Some(&cookie)).await;
    assert!(html.contains("1 document"), "{html}");
    assert_eq!(json_view(&n, Some(&cookie)).await["document_count"], 1);

    let response = n
        .post_form(
            &format!("/r/{}/{decision}", n.token),
            "confirm=yes",
            Some(&cookie),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // After it, without a session: still no more than the notification, not even the outcome.
    let (status, html) = n.page(&landing, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&n.letter_id), "{html}");
    assert!(html.contains("23:59 (heure de Paris)"), "deadline: {html}");
    assert!(
        html.contains("Pour consulter cette lettre, identifiez-vous"),
        "{html}"
    );
    assert!(html.contains(&format!(r#"action="/r/{}/code""#, n.token)));
    assert_nothing_beyond_the_notification(&html, "after, without a session");
    let (_, english) = n.page(&format!("{landing}?lang=en"), None).await;
    for trace in ["accepted", "refused", "relance.pdf", "cabinet recouvr"] {
        assert!(
            !english.to_lowercase().contains(trace),
            "{trace:?} shown in English: {english}"
        );
    }
    let view = json_view(&n, None).await;
    assert_eq!(keys(&view), ["deadline", "letter_id", "provider"], "{view}");
    let view = json_view(&n, Some("recommande_session=not-a-session")).await;
    assert_eq!(keys(&view), ["deadline", "letter_id", "provider"], "{view}");

    // With the session: everything as before.
    let (_, html) = n.page(&landing, Some(&cookie)).await;
    assert!(html.contains("Cabinet Recouvr"), "{html}");
    assert!(html.contains("1 document"), "{html}");
    let outcome = if decision == "accept" {
        "Vous avez accepté la lettre le "
    } else {
        "Vous avez refusé la lettre le "
    };
    assert!(html.contains(outcome), "{html}");
    let own = json_view(&n, Some(&cookie)).await;
    let expected = if decision == "accept" {
        "accepted"
    } else {
        "refused"
    };
    assert_eq!(own["state"], expected, "{own}");
    assert_eq!(own["sender"]["name"], "Cabinet Recouvr");
    assert!(own["decided_at"].is_string(), "{own}");
    assert_eq!(own["document_count"], 1);
    assert_eq!(
        own["documents"].as_array().map(Vec::len),
        (decision == "accept").then_some(1),
        "{own}"
    );
}
