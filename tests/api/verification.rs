//! Public verification: `GET /v1/verify/{id}?code=`, the `/verify` page (letter id and code,
//! or a bundle upload) and their rate limit.

use std::sync::Arc;

use recommande::core::clock::SystemClock;
use serde_json::Value;

use crate::bad_input::head_only_response;
use crate::bundle::{accepted_letter, bundle_bytes, rebuild};
use crate::helpers::{Engine, TestApp, spawn_app, spawn_app_with};
use crate::smtp::SmtpSink;

crate::on_both_engines!(
    the_verification_api_proves_the_events_without_personal_data,
    an_unknown_letter_and_a_wrong_code_get_the_same_answer,
    the_verify_page_shows_a_letter_from_the_id_and_code_on_its_proofs,
    an_uploaded_bundle_gets_its_verdict_check_by_check,
    bad_uploads_get_a_clear_page_with_the_right_status,
    public_verification_is_rate_limited_per_address,
);

/// An app whose letters go through a real SMTP sink, with `adjust` applied to its settings.
async fn app_with_sink(
    engine: Engine,
    adjust: impl FnOnce(&mut recommande::config::Settings),
) -> Option<(TestApp, SmtpSink)> {
    let sink = SmtpSink::start(&[], 0)?;
    let url = sink.url();
    let app = spawn_app_with(engine, Arc::new(SystemClock), |s| {
        s.mail.smtp_url = Some(url);
        adjust(s);
    })
    .await?;
    Some((app, sink))
}

/// A request with no API key at all.
async fn public_get(app: &TestApp, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url(path))
        .send()
        .await
        .expect("GET")
}

/// A page's HTML with askama's character references turned back into characters, so that
/// assertions can quote the wording as written.
async fn page_text(response: reqwest::Response) -> String {
    response
        .text()
        .await
        .expect("html")
        .replace("&#39;", "'")
        .replace("&#38;", "&")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

async fn upload(app: &TestApp, path: &str, name: &str, bytes: Vec<u8>) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str("application/zip")
        .expect("mime");
    reqwest::Client::new()
        .post(app.url(path))
        .multipart(reqwest::multipart::Form::new().part("bundle", part))
        .send()
        .await
        .expect("POST /verify")
}

async fn the_verification_api_proves_the_events_without_personal_data(engine: Engine) {
    let Some((app, sink)) = app_with_sink(engine, |_| {}).await else {
        return;
    };
    let id = accepted_letter(&app, &sink).await;
    let code = app.service.lifecycle.verification_code(&id);
    let response = public_get(&app, &format!("/v1/verify/{id}?code={code}")).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("text");
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["letter_id"], id.as_str());
    assert_eq!(
        body["provider"],
        app.service.settings.server.provider_name.as_str()
    );
    assert_eq!(body["valid"], true, "{body:#}");

    // The events in order, with the digests the sender's API gives for the same records.
    let stored: Value = app.get_json(&format!("/v1/letters/{id}/evidence")).await;
    let stored = stored["evidence"].as_array().expect("evidence");
    let events = body["events"].as_array().expect("events");
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().expect("event"))
        .collect();
    assert_eq!(
        names,
        [
            "SubmissionAcceptance",
            "NotificationForAcceptance",
            "ConsignmentAcceptance",
            "ContentHandover"
        ]
    );
    for (event, record) in events.iter().zip(stored) {
        assert_eq!(event["evidence_sha256"], record["sha256"]);
        assert_eq!(event["valid"], true);
        let checks = event["checks"].as_array().expect("checks");
        let check_names: Vec<&str> = checks
            .iter()
            .map(|c| c["name"].as_str().expect("name"))
            .collect();
        let mut expected = recommande::core::verify::CHECK_NAMES.to_vec();
        expected.push("timestamp_renewal");
        assert_eq!(check_names, expected);
        assert!(checks.iter().all(|c| c["passed"] == true), "{event:#}");
        // The token's time in UTC and the same instant in Paris (UTC+1 or UTC+2).
        let utc = event["timestamp"].as_str().expect("utc");
        let paris = event["timestamp_paris"].as_str().expect("paris");
        let parse = |s: &str| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .expect("RFC 3339")
        };
        assert!(utc.ends_with('Z'), "{utc}");
        assert!(
            paris.ends_with("+01:00") || paris.ends_with("+02:00"),
            "{paris}"
        );
        assert_eq!(parse(utc), parse(paris));
    }
    let sequence: Vec<(&str, bool)> = body["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| (c["name"].as_str().expect("name"), c["passed"] == true))
        .collect();
    assert_eq!(
        sequence,
        [("event_order", true), ("legal_consistency", true)]
    );

    // No names, addresses, references or content: only what the proofs print.
    for private in [
        "SARL Débitrice",
        "compta@debitrice.fr",
        "Cabinet Recouvr",
        "envoi@recouvr.fr",
        "DOS-2026-0001",
        "relance",
    ] {
        assert!(!text.contains(private), "{private} leaked: {text}");
    }

    // The code as a person types it: lower case, without dashes.
    let typed = code.replace('-', "").to_lowercase();
    let response = public_get(&app, &format!("/v1/verify/{id}?code={typed}")).await;
    assert_eq!(response.status(), 200);
}

async fn an_unknown_letter_and_a_wrong_code_get_the_same_answer(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let letter = app.deposit().await;
    let id = letter["id"].as_str().expect("id");
    let code = app.service.lifecycle.verification_code(id);
    let unknown = uuid::Uuid::now_v7().to_string();
    let unknown_code = app.service.lifecycle.verification_code(&unknown);
    let mut answers = Vec::new();
    for path in [
        format!("/v1/verify/{id}?code=AAAA-BBBB-CCCC-DDDD"),
        format!("/v1/verify/{unknown}?code={code}"),
        // The right code of an id that holds no letter.
        format!("/v1/verify/{unknown}?code={unknown_code}"),
        format!("/v1/verify/{id}"),
        format!("/v1/verify/not-a-uuid?code={code}"),
    ] {
        let response = public_get(&app, &path).await;
        let status = response.status();
        let content_type = response.headers()["content-type"].clone();
        let body = response.text().await.expect("body");
        answers.push((path, status, content_type, body));
    }
    let (_, status, content_type, body) = &answers[0];
    assert_eq!(*status, 404);
    assert_eq!(content_type, "application/problem+json");
    let problem: Value = serde_json::from_str(body).expect("problem");
    assert_eq!(problem["type"], "urn:recommande:problem:not-found");
    // The same answer but for `instance`, which names each request by its own id (random:
    // it tells nothing of the letter).
    let without_instance = |body: &str| {
        let mut problem: Value = serde_json::from_str(body).expect("problem");
        let instance = problem
            .as_object_mut()
            .and_then(|o| o.remove("instance"))
            .expect("instance");
        assert!(
            instance
                .as_str()
                .is_some_and(|i| i.starts_with("urn:recommande:request:")),
            "{instance}"
        );
        problem
    };
    for (path, other_status, other_type, other_body) in &answers[1..] {
        assert_eq!(
            (other_status, other_type, without_instance(other_body)),
            (status, content_type, without_instance(body)),
            "{path}"
        );
    }
    // And the right code still answers.
    let response = public_get(&app, &format!("/v1/verify/{id}?code={code}")).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["events"].as_array().expect("events").len(), 1);
}

async fn the_verify_page_shows_a_letter_from_the_id_and_code_on_its_proofs(engine: Engine) {
    let Some((app, sink)) = app_with_sink(engine, |_| {}).await else {
        return;
    };
    let id = accepted_letter(&app, &sink).await;
    let code = app.service.lifecycle.verification_code(&id);
    let stored: Value = app.get_json(&format!("/v1/letters/{id}/evidence")).await;

    // The bare page offers both ways: id and code, and a bundle upload.
    let response = public_get(&app, "/verify").await;
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    let html = page_text(response).await;
    for needle in [
        "name=\"letter\"",
        "name=\"code\"",
        "enctype=\"multipart/form-data\"",
        "name=\"bundle\"",
        "<html lang=\"fr\"",
    ] {
        assert!(html.contains(needle), "{needle} missing: {html}");
    }
    assert!(!html.contains("<script"), "{html}");

    // The QR code's address: the letter's events, Paris and UTC times, digests, verdicts.
    let response = public_get(&app, &format!("/verify?letter={id}&code={code}")).await;
    assert_eq!(response.status(), 200);
    let html = page_text(response).await;
    assert!(
        html.contains("VALIDE") && !html.contains("NON VALIDE"),
        "{html}"
    );
    assert!(!html.contains("ÉCHEC"), "{html}");
    for needle in [
        id.as_str(),
        "Dépôt de la lettre",
        "Notification envoyée",
        "Acceptation",
        "Remise du contenu",
        "heure de Paris, UTC+0",
        "Lien avec la preuve précédente",
    ] {
        assert!(html.contains(needle), "{needle} missing: {html}");
    }
    for record in stored["evidence"].as_array().expect("evidence") {
        let digest = record["sha256"].as_str().expect("sha");
        assert!(html.contains(digest), "{digest} missing");
        let utc = &record["event_time"].as_str().expect("time")[..16];
        assert!(html.contains(utc), "{utc} missing");
    }
    for private in ["SARL Débitrice", "compta@debitrice.fr", "envoi@recouvr.fr"] {
        assert!(!html.contains(private), "{private} leaked");
    }
    // In English, and the language links keep the letter and code.
    let html =
        page_text(public_get(&app, &format!("/verify?letter={id}&code={code}&lang=en")).await)
            .await;
    assert!(html.contains("<html lang=\"en\""), "{html}");
    assert!(
        html.contains("VALID") && !html.contains("NOT VALID"),
        "{html}"
    );
    assert!(html.contains("Paris time, UTC+0"), "{html}");
    assert!(
        html.contains(&format!("/verify?letter={id}&code={code}&lang=fr")),
        "{html}"
    );

    // A wrong code and an unknown letter: the same 404 page.
    let wrong = public_get(
        &app,
        &format!("/verify?letter={id}&code=AAAA-BBBB-CCCC-DDDD"),
    )
    .await;
    assert_eq!(wrong.status(), 404);
    let wrong = page_text(wrong).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let missing = public_get(&app, &format!("/verify?letter={unknown}&code={code}")).await;
    assert_eq!(missing.status(), 404);
    let missing = page_text(missing).await;
    let message = "aucune lettre ne correspond à cet identifiant et à ce code";
    assert!(
        wrong.contains(message) && missing.contains(message),
        "{wrong}"
    );
    assert_eq!(
        wrong
            .replace(&id, "ID")
            .replace("AAAA-BBBB-CCCC-DDDD", "CODE"),
        missing.replace(&unknown, "ID").replace(&code, "CODE"),
        "the two 404 pages differ beyond the typed fields"
    );
    // One field only: asked for both.
    let response = public_get(&app, &format!("/verify?letter={id}")).await;
    assert_eq!(response.status(), 422);
}

async fn an_uploaded_bundle_gets_its_verdict_check_by_check(engine: Engine) {
    let Some((app, sink)) = app_with_sink(engine, |_| {}).await else {
        return;
    };
    let id = accepted_letter(&app, &sink).await;
    let bytes = bundle_bytes(&app, &id).await;

    let response = upload(&app, "/verify", "lettre.zip", bytes.clone()).await;
    assert_eq!(response.status(), 200);
    let html = page_text(response).await;
    assert!(
        html.contains("VALIDE") && !html.contains("NON VALIDE"),
        "{html}"
    );
    assert!(!html.contains("ÉCHEC"), "{html}");
    for needle in [
        id.as_str(),
        "Sceau du prestataire sur le manifeste",
        "Empreintes de tous les fichiers",
        "Délai de quinze jours (CPCE R.53-3)",
        "Remise du contenu",
        "heure de Paris",
    ] {
        assert!(html.contains(needle), "{needle} missing: {html}");
    }
    let response = upload(&app, "/verify?lang=en", "lettre.zip", bytes.clone()).await;
    let html = page_text(response).await;
    assert!(
        html.contains("VALID") && !html.contains("NOT VALID"),
        "{html}"
    );
    assert!(html.contains("Digests of every file"), "{html}");

    // One flipped byte in the document: not valid, and the failing check is named.
    let tampered = rebuild(&bytes, |members| {
        let document = &mut members
            .iter_mut()
            .find(|(n, _)| n.starts_with("documents/"))
            .expect("document")
            .1;
        let at = document.len() / 2;
        document[at] ^= 0x01;
    });
    let response = upload(&app, "/verify", "lettre.zip", tampered).await;
    assert_eq!(response.status(), 200);
    let html = page_text(response).await;
    assert!(html.contains("NON VALIDE"), "{html}");
    assert!(html.contains("Vérifications en échec"), "{html}");
    let failed = html
        .split("Vérifications en échec")
        .nth(1)
        .and_then(|rest| rest.split("</ul>").next())
        .expect("failed list");
    assert!(
        failed.contains("file_digests") && failed.contains("documents/01-relance.pdf"),
        "{failed}"
    );
    assert!(!failed.contains("seal_signature"), "{failed}");
}

async fn bad_uploads_get_a_clear_page_with_the_right_status(engine: Engine) {
    let Some(app) = spawn_app_with(engine, Arc::new(SystemClock), |s| {
        s.verify.max_upload_bytes = 64 * 1024;
    })
    .await
    else {
        return;
    };
    // Not a zip.
    let response = upload(&app, "/verify", "lettre.zip", b"not a zip at all".to_vec()).await;
    assert_eq!(response.status(), 422);
    let html = page_text(response).await;
    assert!(
        html.contains("n'est pas un dossier de preuves lisible")
            && html.contains("name=\"bundle\""),
        "{html}"
    );
    // Empty.
    let response = upload(&app, "/verify?lang=en", "lettre.zip", Vec::new()).await;
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .expect("html")
            .contains("the file sent is empty")
    );
    // No file field.
    let response = reqwest::Client::new()
        .post(app.url("/verify"))
        .multipart(reqwest::multipart::Form::new().text("other", "x"))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 400);
    assert!(
        page_text(response)
            .await
            .contains("aucun fichier n'a été envoyé")
    );
    // Not multipart.
    let response = reqwest::Client::new()
        .post(app.url("/verify"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("bundle=x")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 400);
    // Too large, announced by Content-Length: refused from the headers, with a page.
    let answer = head_only_response(
        &app.address,
        "/verify",
        &[("Content-Type", "multipart/form-data; boundary=XyZ")],
        1024 * 1024,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("content-type: text/html"), "{answer}");
    // Too large by a byte within the multipart allowance: cut while streaming.
    let response = upload(&app, "/verify", "lettre.zip", vec![b'x'; 64 * 1024 + 1]).await;
    assert_eq!(response.status(), 413);
    let html = page_text(response).await;
    assert!(
        html.contains("dépasse la taille maximale de 64,0 Ko"),
        "{html}"
    );
    // Nothing is left behind in the spool directory.
    let incoming = app.dir.path().join("incoming");
    let left: Vec<_> = std::fs::read_dir(&incoming)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.iter()
            .all(|n| !n.to_string_lossy().starts_with("verify-")),
        "{left:?}"
    );
}

async fn public_verification_is_rate_limited_per_address(engine: Engine) {
    let Some(app) = spawn_app_with(engine, Arc::new(SystemClock), |s| {
        s.verify.requests_per_minute = 3;
    })
    .await
    else {
        return;
    };
    let id = uuid::Uuid::now_v7();
    for _ in 0..2 {
        let response = public_get(&app, &format!("/v1/verify/{id}?code=x")).await;
        assert_eq!(response.status(), 404);
    }
    // The page and the API share one budget per address.
    assert_eq!(public_get(&app, "/verify").await.status(), 200);
    let response = public_get(&app, &format!("/v1/verify/{id}?code=x")).await;
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=21).contains(&retry), "{retry}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.expect("json");
    assert_eq!(problem["type"], "urn:recommande:problem:rate-limited");
    let response = public_get(&app, "/verify?lang=en").await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/html")
    );
    let html = page_text(response).await;
    assert!(html.contains("too many verifications"), "{html}");
    // Other routes are not limited.
    assert_eq!(public_get(&app, "/healthz").await.status(), 200);
}
