//! Composed debt-collection letters through `POST /v1/letters`: the service writes the
//! letter, every mandatory mention is in the PDF's text, the amounts and rates are in the
//! response and in the proof of deposit, a consumer is never charged the €40 indemnity, and
//! every problem of a request is reported at once.

use crate::helpers::header_str;
use serde_json::{Value, json};

use crate::helpers::{Engine, TestApp, spawn_app};
use crate::proofs::poppler;

crate::on_both_engines!(
    a_mise_en_demeure_is_written_checked_and_deposited_with_its_amounts,
    every_problem_of_a_composed_letter_is_listed_at_once,
    a_csv_of_mises_en_demeure_with_a_template_deposits_each_letter_and_reports_bad_rows,
    the_payment_link_is_offered_to_the_recipient_only_after_acceptance,
    a_composed_letter_is_pdf_a_3b_with_its_fonts_embedded_and_its_summary_attached,
    a_letter_on_an_overridden_prescription_threatens_no_court_action_and_the_proof_says_so,
    up_to_5000_euros_the_letter_says_an_amicable_attempt_precedes_an_assignation,
    l110_4_applies_only_when_a_party_is_said_to_be_a_merchant,
    with_missing_rate_refuse_a_letter_needing_an_absent_half_year_is_refused,
    by_default_an_absent_half_year_is_applied_from_the_latest_and_warned_in_answer_and_proof,
    an_agency_letter_to_a_consumer_needs_a_consent_naming_the_agency,
    in_a_batch_too_an_agency_letter_needs_a_consent_naming_the_agency,
    dated_payments_and_a_public_buyer_are_deposited_with_their_imputation_and_fixed_rate,
    invoice_tables_keep_every_date_amount_number_and_heading_on_one_line,
    the_sender_reads_the_summary_and_downloads_the_composed_pdf,
    the_proofs_of_a_composed_letter_state_the_claim
);

pub(crate) fn compose(debtor_kind: &str, agency: bool) -> Value {
    let mut c = json!({
        "kind": "mise_en_demeure",
        "creditor": {"name": "Atelier Durand SARL", "address": "12 rue des Lilas\n69003 Lyon", "siren": "732829320"},
        "debtor": {"name": "Boulangerie Martin", "address": ["3 place du Marché", "38000 Grenoble"], "kind": debtor_kind},
        "invoices": [
            {"number": "F-2026-101", "issue_date": "2026-05-01", "due_date": "2026-05-31", "amount_cents": 1_250_000},
            {"number": "F-2026-117", "issue_date": "2026-06-15", "due_date": "2026-07-15", "amount_cents": 480_000, "paid_cents": 80_000}
        ],
        "deadline_days": 8,
        "payment": {"iban": "FR76 3000 6000 0112 3456 7890 189", "link": "https://pay.example.fr/i/42"}
    });
    if agency {
        c["agency"] = json!({"name": "Recouvr SAS", "address": "8 avenue Foch\n75116 Paris", "mandate_reference": "MAN-2026-77"});
    }
    c
}

pub(crate) fn body(compose: Value, consumer: bool) -> Value {
    let mut recipient = json!({"name": "Boulangerie Martin", "email": "compta@boulangerie-martin.fr", "kind": "professional"});
    if consumer {
        recipient = json!({"name": "Jeanne Petit", "email": "jeanne@example.fr", "kind": "consumer", "consent_id": "0190a1b2-0000-7000-8000-00000000c0de"});
    }
    json!({
        "sender": {"name": "Service contentieux", "email": "contentieux@recouvr.fr", "organization": "Recouvr SAS"},
        "recipient": recipient,
        "reference": "DOS-2026-0042",
        "compose": compose
    })
}

async fn pdf_bytes(app: &TestApp, letter: &Value) -> Vec<u8> {
    let sha = letter["documents"][0]["sha256"].as_str().expect("sha");
    let mut bytes = Vec::new();
    let mut reader = app.service.content.open_read(sha).await.expect("stored");
    while let Some(chunk) = reader.next_chunk().await.expect("read") {
        bytes.extend_from_slice(&chunk);
    }
    assert!(bytes.starts_with(b"%PDF-"), "the composed letter is a PDF");
    bytes
}

async fn pdf_text(app: &TestApp, letter: &Value) -> Option<String> {
    let bytes = pdf_bytes(app, letter).await;
    let dir = tempfile::tempdir().expect("dir");
    let pdf = dir.path().join("letter.pdf");
    let txt = dir.path().join("letter.txt");
    std::fs::write(&pdf, &bytes).expect("write");
    let (ok, out) = poppler(
        "pdftotext",
        &["-enc", "UTF-8", pdf.to_str()?, txt.to_str()?],
    )?;
    assert!(ok, "{out}");
    let text = std::fs::read_to_string(txt).expect("text");
    let pages = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/proof-pages");
    std::fs::create_dir_all(&pages).expect("dir");
    let _ = poppler(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "60",
            pdf.to_str()?,
            pages.join("composed-letter").to_str()?,
        ],
    );
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

async fn a_mise_en_demeure_is_written_checked_and_deposited_with_its_amounts(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let response = app
        .post_letter(&body(compose("professional", true), false))
        .await;
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let letter: Value = response.json().await.expect("json");
    let collection = &letter["collection"];
    let totals = &collection["breakdown"]["totals"];
    // Professional debtor: €40 per late invoice (Code de commerce L.441-10, D.441-5).
    assert_eq!(totals["indemnity_cents"], 8_000, "{collection}");
    assert_eq!(
        totals["principal_cents"],
        1_250_000 + 400_000,
        "{collection}"
    );
    let interest = totals["interest_cents"].as_i64().expect("interest");
    assert!(
        interest > 0,
        "late interest runs without reminder for professionals"
    );
    assert_eq!(
        totals["total_cents"].as_i64().expect("total"),
        1_650_000 + 8_000 + interest
    );
    assert!(
        collection["breakdown"]["rates_used"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "the rates used are shown: {collection}"
    );
    assert!(
        collection["mentions"]
            .as_array()
            .is_some_and(|m| m.len() >= 5)
    );

    // The proof of deposit records the composition.
    let id = letter["id"].as_str().expect("id");
    let rows = app.evidence_of(id).await;
    let record: Value = serde_json::from_slice(&rows[0].record).expect("record");
    assert_eq!(record["details"]["collection"], *collection);
    assert_eq!(
        record["content"][0]["sha256"],
        letter["documents"][0]["sha256"]
    );

    // The letter's text carries every mandatory mention.
    if let Some(text) = pdf_text(&app, &letter).await {
        for needle in [
            "mise en demeure",
            "Atelier Durand SARL",
            "Boulangerie Martin",
            "Recouvr SAS",
            "recouvrement amiable",
            "F-2026-101",
            "F-2026-117",
            "injonction de payer",
            "référé",
            "assignation",
            "Les frais de recouvrement entrepris sans titre exécutoire restent à la charge du créancier",
            "https://pay.example.fr/i/42",
            "MAN-2026-77",
        ] {
            assert!(
                text.to_lowercase().contains(&needle.to_lowercase()),
                "the letter lacks {needle:?}:\n{text}"
            );
        }
    }

    // A consumer is never charged the €40 indemnity, and owes no interest before the first
    // mise en demeure.
    // A consumer debtor cannot be passed off as a professional recipient to skip the
    // consent (CPCE L.100): the two kinds must agree, and the 422 names both fields.
    let disguised = body(compose("consumer", false), false);
    let response = app.post_letter(&disguised).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("json");
    assert!(
        problem.to_string().contains("compose.debtor.kind")
            && problem.to_string().contains("recipient.kind"),
        "{problem}"
    );

    let consent = crate::consents::create_consent(&app, &app.api_key, "jeanne@example.fr").await;
    let mut consumer = body(compose("consumer", false), true);
    consumer["recipient"]["consent_id"] = consent["id"].clone();
    let response = app.post_letter(&consumer).await;
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let letter: Value = response.json().await.expect("json");
    let totals = &letter["collection"]["breakdown"]["totals"];
    assert_eq!(totals["indemnity_cents"], 0, "{totals}");
    assert_eq!(totals["interest_cents"], 0, "{totals}");
    if let Some(text) = pdf_text(&app, &letter).await {
        assert!(
            !text.contains("40,00"),
            "no €40 line for a consumer:\n{text}"
        );
    }
}

async fn every_problem_of_a_composed_letter_is_listed_at_once(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let mut bad = body(compose("professional", false), false);
    bad["sender"]["email"] = json!("not-an-email");
    bad["compose"]["creditor"]["name"] = json!("");
    bad["compose"]["invoices"][0]["due_date"] = json!("2026-13-01");
    bad["compose"]["payment"] = json!({});
    let response = app.post_letter(&bad).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("json");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for field in [
        "sender.email",
        "compose.creditor.name",
        "compose.invoices[0].due_date",
        "compose.payment",
    ] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
    // Both documents and compose: one or the other.
    let mut both = body(compose("professional", false), false);
    both["documents"] = json!(["0190a1b2-0000-7000-8000-000000000001"]);
    let response = app.post_letter(&both).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("json");
    assert!(
        problem
            .to_string()
            .contains("either `documents` or `compose`"),
        "{problem}"
    );
    // A time-barred invoice (more than 5 years) is refused unless explicitly overridden,
    // and the override is recorded.
    let mut old = body(compose("professional", false), false);
    old["compose"]["invoices"] = json!([{"number": "F-2021-001", "issue_date": "2021-02-01", "due_date": "2021-03-01", "amount_cents": 100_000}]);
    let response = app.post_letter(&old).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("json");
    assert!(
        problem.to_string().contains("compose.invoices[0]"),
        "{problem}"
    );
    old["compose"]["override_prescription"] = json!(true);
    let response = app.post_letter(&old).await;
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let letter: Value = response.json().await.expect("json");
    assert_eq!(
        letter["collection"]["prescription_overrides"][0]["invoice"],
        "F-2021-001"
    );
    // Nothing half-written: the refused requests left no letter behind.
    assert_eq!(app.letter_count().await, 1);
}

async fn a_csv_of_mises_en_demeure_with_a_template_deposits_each_letter_and_reports_bad_rows(
    engine: Engine,
) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let template: Value = app.post_json("/v1/templates", &json!({
            "name": "Mise en demeure standard",
            "kind": "mise_en_demeure",
            "wording": "Madame, Monsieur,\n\nMalgré nos relances, les factures {{invoices}} restent impayées.\n\nNous vous mettons en demeure de régler {{total}} sous {{deadline}}."
        })).await
        .json()
        .await
        .expect("json");
    let template_id = template["id"].as_str().expect("id");
    let header = "recipient.name;recipient.email;recipient.kind;reference;compose.creditor.name;compose.creditor.address;compose.debtor.name;compose.debtor.address;compose.debtor.kind;compose.invoices.0.number;compose.invoices.0.issue_date;compose.invoices.0.due_date;compose.invoices.0.amount_cents;compose.payment.iban";
    let mut csv = format!("{header}\n");
    for i in 0..6 {
        let due = if i == 4 { "2026-13-40" } else { "2026-06-30" };
        csv.push_str(&format!(
            "Client {i};client{i}@example.fr;professional;DOS-{i};Atelier Durand SARL;12 rue des Lilas 69003 Lyon;Client {i} SARL;{i} rue du Port 13002 Marseille;professional;F-{i};2026-06-01;{due};{};FR76 3000 6000 0112 3456 7890 189\n",
            100_000 + i * 1000
        ));
    }
    let query = format!(
        "?template={template_id}&sender.name=Service%20contentieux&sender.email=contentieux@recouvr.fr"
    );
    let view = app.run_batch("text/csv", &query, csv.into_bytes()).await;
    assert_eq!(view["state"], "completed", "{view}");
    assert_eq!(view["deposited"], 5, "{view}");
    assert_eq!(view["rejected"], 1, "{view}");
    let error = &view["errors"][0];
    assert_eq!(error["row"], 6, "line 6 of the file (header = 1): {view}");
    assert_eq!(error["field"], "compose.invoices[0].due_date", "{view}");

    // Each letter has its own composed PDF, written with the template, and its amounts in
    // the proof of deposit.
    let page: Value = app.get_json("/v1/letters?limit=50").await;
    let letters = page["items"].as_array().expect("items");
    assert_eq!(letters.len(), 5);
    let mut digests = std::collections::BTreeSet::new();
    for letter in letters {
        digests.insert(
            letter["documents"][0]["sha256"]
                .as_str()
                .expect("sha")
                .to_string(),
        );
        let id = letter["id"].as_str().expect("id");
        let rows = app.evidence_of(id).await;
        let record: Value = serde_json::from_slice(&rows[0].record).expect("record");
        let totals = &record["details"]["collection"]["breakdown"]["totals"];
        assert_eq!(totals["indemnity_cents"], 4_000, "{record}");
    }
    assert_eq!(digests.len(), 5, "one distinct letter per row");
    if let Some(text) = pdf_text(&app, &letters[0]).await {
        assert!(
            text.contains("Malgré nos relances"),
            "the template's wording:\n{text}"
        );
        assert!(
            text.to_lowercase().contains("injonction de payer"),
            "mentions added:\n{text}"
        );
    }
}

async fn the_payment_link_is_offered_to_the_recipient_only_after_acceptance(engine: Engine) {
    use crate::smtp::{body_text, link_token};
    let Some((sink, app)) = crate::helpers::spawn_app_with_sink(engine).await else {
        return;
    };
    let response = app
        .post_letter(&body(compose("professional", false), false))
        .await;
    assert_eq!(response.status(), 201);
    app.service.lifecycle.run_due_jobs(10).await.expect("jobs");
    let mails = sink.wait_for(1).await;
    let token = link_token(&body_text(&mails[0]));
    let page = |session: Option<String>| {
        let request = app.client.get(app.url(&format!("/r/{token}")));
        let request = match session {
            Some(s) => request.bearer_auth(s),
            None => request,
        };
        async move {
            request
                .send()
                .await
                .expect("page")
                .text()
                .await
                .expect("html")
        }
    };
    assert!(
        !page(None).await.contains("pay.example.fr"),
        "not before the decision"
    );
    let session = app.session_from_mail(&sink, &token, 2).await;
    let before = page(Some(session.clone())).await;
    assert!(
        !before.contains("pay.example.fr"),
        "identified but not yet accepted"
    );
    // Where refusal is offered: refusing does not extinguish the debt.
    assert!(
        before.contains("Refuser la lettre n&#x27;éteint pas la dette")
            || before.contains("Refuser la lettre n&#39;éteint pas la dette")
            || before.contains("Refuser la lettre n'éteint pas la dette"),
        "{before}"
    );
    assert!(
        !before.contains("FR76 3000"),
        "no payment details before the decision"
    );
    let accepted = app.recipient_post_with(&token, "accept", &session).await;
    assert_eq!(accepted.status(), 200);
    let html = page(Some(session.clone())).await;
    assert!(
        html.contains(r#"href="https://pay.example.fr/i/42""#),
        "the payment link after acceptance:\n{html}"
    );
    // Every payment means, the total and the last day to pay (8 days after acceptance).
    let letter: Value = app.get_json("/v1/letters").await;
    let letter = &letter["items"][0];
    let total = recommande::core::french::euros(
        letter["collection"]["breakdown"]["totals"]["total_cents"]
            .as_i64()
            .expect("total"),
    );
    let plain = spaces(&html);
    assert!(
        plain.contains(&spaces(&total)),
        "the total {total} on the page:\n{html}"
    );
    assert!(
        plain.contains("FR76 3000 6000 0112 3456 7890 189"),
        "{html}"
    );
    let decided = time::OffsetDateTime::parse(
        letter["decided_at"].as_str().expect("decided"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("time");
    let last_day =
        recommande::domain::window::paris_date(decided).expect("date") + time::Duration::days(8);
    assert!(
        plain.contains(&format!(
            "À payer au plus tard le</dt><dd>{}",
            recommande::core::french::date(last_day)
        )),
        "the deadline to pay:\n{html}"
    );
    let english = app
        .get_as(&session, &format!("/r/{token}?lang=en"))
        .await
        .text()
        .await
        .expect("html");
    assert!(
        english.contains("To pay by")
            && english.contains(&recommande::domain::window::english_date(last_day)),
        "{english}"
    );
    // The proofs: the receipt states the claim; the proof of dispatch, which the recipient
    // may be shown before deciding, keeps the creditor out (CPCE R.53-3).
    let id = letter["id"].as_str().expect("id");
    if let Some(receipt) = crate::proofs::proof_text(&app, id, "receipt").await {
        let receipt = spaces(&receipt);
        assert!(
            receipt.contains(&format!("Total réclamé : {}", spaces(&total))),
            "{receipt}"
        );
        assert!(receipt.contains("Atelier Durand SARL"), "{receipt}");
    }
    if let Some(dispatch) = crate::proofs::proof_text(&app, id, "dispatch").await {
        let dispatch = spaces(&dispatch);
        assert!(dispatch.contains("Créance réclamée"), "{dispatch}");
        assert!(
            dispatch.contains(&format!("Total réclamé : {}", spaces(&total))),
            "{dispatch}"
        );
        assert!(!dispatch.contains("Atelier Durand SARL"), "{dispatch}");
    }
    assert!(
        !page(None).await.contains("pay.example.fr"),
        "never to a bare link"
    );
}

/// The composed letter as an archive file: `qpdf --check` finds no damage, `pdffonts` lists
/// only embedded fonts with a ToUnicode map, the XMP identifies PDF/A-3B, and the attached
/// `composition.json` is the summary the API answered with.
async fn a_composed_letter_is_pdf_a_3b_with_its_fonts_embedded_and_its_summary_attached(
    engine: Engine,
) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let response = app
        .post_letter(&body(compose("professional", true), false))
        .await;
    assert_eq!(response.status(), 201);
    let letter: Value = response.json().await.expect("json");
    let bytes = pdf_bytes(&app, &letter).await;

    // PDF/A-3B identification (ISO 19005-3 §6.6.4) in the uncompressed XMP packet.
    let raw = String::from_utf8_lossy(&bytes);
    assert!(raw.contains("<pdfaid:part>3</pdfaid:part>"), "PDF/A part");
    assert!(
        raw.contains("<pdfaid:conformance>B</pdfaid:conformance>"),
        "PDF/A conformance"
    );
    assert!(!raw.contains("/Encrypt"), "no encryption");

    let dir = tempfile::tempdir().expect("dir");
    let pdf = dir.path().join("letter.pdf");
    std::fs::write(&pdf, &bytes).expect("write");
    let path = pdf.to_str().expect("path");

    match std::process::Command::new("qpdf")
        .args(["--check", path])
        .output()
    {
        Ok(out) => {
            let log = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            // Exit 0: no error, no warning (3 would be warnings).
            assert_eq!(out.status.code(), Some(0), "qpdf --check: {log}");
            assert!(log.contains("No syntax or stream encoding errors"), "{log}");
        }
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "qpdf must be installed in CI: {e}"
            );
            eprintln!("NOTICE: qpdf not installed ({e}); structure check not run");
        }
    }

    let Some((ok, fonts)) = poppler("pdffonts", &[path]) else {
        return;
    };
    assert!(ok, "{fonts}");
    // name, type (two words), encoding, emb, sub, uni, object, generation.
    let rows: Vec<Vec<&str>> = fonts
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(rows.len() >= 2, "regular and bold faces: {fonts}");
    for row in &rows {
        assert!(
            row.first().is_some_and(|n| n.contains("+DejaVuSans")),
            "{fonts}"
        );
        assert_eq!(
            row.get(4..7),
            Some(&["yes", "yes", "yes"][..]),
            "embedded, subset, ToUnicode: {fonts}"
        );
    }

    let out = dir.path().join("attachments");
    std::fs::create_dir_all(&out).expect("dir");
    let (ok, log) = poppler(
        "pdfdetach",
        &["-saveall", "-o", out.to_str().expect("path"), path],
    )
    .expect("poppler present");
    assert!(ok, "pdfdetach: {log}");
    let attached = std::fs::read(out.join("composition.json")).expect("composition.json attached");
    let summary: Value = serde_json::from_slice(&attached).expect("json");
    assert_eq!(
        summary, letter["collection"],
        "the attachment is the summary"
    );
}

/// The `collection` summary recorded in the letter's proof of deposit.
async fn recorded_collection(app: &TestApp, letter: &Value) -> Value {
    let id = letter["id"].as_str().expect("id");
    let rows = app.evidence_of(id).await;
    let record: Value = serde_json::from_slice(&rows[0].record).expect("record");
    record["details"]["collection"].clone()
}

async fn created(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, 201, "{text}");
    serde_json::from_str(&text).expect("json")
}

async fn a_letter_on_an_overridden_prescription_threatens_no_court_action_and_the_proof_says_so(
    engine: Engine,
) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    // Without the override, a letter within its term has no `prescription_overridden`.
    let letter = created(
        app.post_letter(&body(compose("professional", false), false))
            .await,
    )
    .await;
    assert!(
        letter["collection"]
            .get("prescription_overridden")
            .is_none(),
        "{}",
        letter["collection"]
    );

    let mut old = body(compose("professional", false), false);
    old["compose"]["invoices"] = json!([{"number": "F-2019-004", "issue_date": "2019-02-01", "due_date": "2019-03-01", "amount_cents": 100_000}]);
    old["compose"]["override_prescription"] = json!(true);
    let letter = created(app.post_letter(&old).await).await;
    let collection = &letter["collection"];
    assert_eq!(collection["prescription_overridden"], true, "{collection}");
    assert_eq!(
        collection["prescription_overrides"][0]["invoice"],
        "F-2019-004"
    );
    assert!(
        !collection["mentions"]
            .as_array()
            .expect("mentions")
            .iter()
            .any(|m| m["mention"] == "consequences"),
        "{collection}"
    );
    // The proof of deposit records the same summary, override flag included.
    assert_eq!(recorded_collection(&app, &letter).await, *collection);
    if let Some(text) = pdf_text(&app, &letter).await {
        let lower = text.to_lowercase();
        assert!(lower.contains("mise en demeure"), "{text}");
        for term in [
            "injonction de payer",
            "référé",
            "assignation",
            "juridiction",
        ] {
            assert!(!lower.contains(term), "{term:?} in the letter:\n{text}");
        }
    }

    // A template threatening court on a time-barred claim: 422, nothing deposited.
    let template: Value = app.post_json("/v1/templates", &json!({
            "name": "Menace",
            "kind": "mise_en_demeure",
            "wording": "Nous vous mettons en demeure de régler {{total}} sous {{deadline}}, faute de quoi nous saisirons le tribunal."
        })).await
        .json()
        .await
        .expect("json");
    let before = app.letter_count().await;
    old["template_id"] = template["id"].clone();
    let response = app.post_letter(&old).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("json");
    let error = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .find(|e| e["field"] == "compose.override_prescription")
        .cloned()
        .unwrap_or_else(|| panic!("no override error in {problem}"));
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("tribunal")),
        "{error}"
    );
    assert_eq!(app.letter_count().await, before);
}

async fn up_to_5000_euros_the_letter_says_an_amicable_attempt_precedes_an_assignation(
    engine: Engine,
) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let mut small = body(compose("professional", false), false);
    small["compose"]["invoices"] = json!([{"number": "F-2026-200", "issue_date": "2026-05-01", "due_date": "2026-05-31", "amount_cents": 120_000}]);
    let letter = created(app.post_letter(&small).await).await;
    let total = letter["collection"]["breakdown"]["totals"]["total_cents"]
        .as_i64()
        .expect("total");
    assert!(total <= 500_000, "{total}");
    // The large letter of `compose` claims more than 5 000 €: no such sentence.
    let large = created(
        app.post_letter(&body(compose("professional", false), false))
            .await,
    )
    .await;
    assert!(
        large["collection"]["breakdown"]["totals"]["total_cents"]
            .as_i64()
            .expect("total")
            > 500_000
    );
    if let (Some(small_text), Some(large_text)) =
        (pdf_text(&app, &letter).await, pdf_text(&app, &large).await)
    {
        for needle in [
            "750-1 du code de procédure civile",
            "conciliateur de justice",
            "procédure participative",
            "la requête en injonction de payer n'y est pas soumise",
        ] {
            assert!(small_text.contains(needle), "{needle:?}:\n{small_text}");
        }
        assert!(small_text.contains("assignation"));
        assert!(large_text.contains("assignation"));
        assert!(!large_text.contains("750-1"), "{large_text}");
    }
}

async fn l110_4_applies_only_when_a_party_is_said_to_be_a_merchant(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let plain = created(
        app.post_letter(&body(compose("professional", false), false))
            .await,
    )
    .await;
    assert_eq!(
        plain["collection"]["prescription"][0]["rule"],
        "Code civil, art. 2224 (5 ans)"
    );
    let mut merchant = body(compose("professional", false), false);
    merchant["compose"]["debtor"]["merchant"] = json!(true);
    let letter = created(app.post_letter(&merchant).await).await;
    let p = &letter["collection"]["prescription"][0];
    assert_eq!(p["rule"], "Code de commerce, art. L.110-4 (5 ans)", "{p}");
    assert_eq!(p["years"], 5);

    let mut private = body(compose("professional", false), false);
    private["compose"]["creditor"]["kind"] = json!("private_person");
    private["compose"]["creditor"]["merchant"] = json!(true);
    let before = app.letter_count().await;
    let response = app.post_letter(&private).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("json");
    assert_eq!(
        problem["type"]
            .as_str()
            .map(|t| t.ends_with("validation-failed")),
        Some(true),
        "{problem}"
    );
    assert_eq!(
        problem["errors"][0]["field"], "compose.creditor.merchant",
        "{problem}"
    );
    assert_eq!(app.letter_count().await, before);
}

/// A rates table ending with 2025-H2: every letter composed now needs a later half-year.
fn short_rates_table(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("rates.toml");
    std::fs::write(
        &path,
        "[[half_year]]\nperiod = \"2025-H1\"\necb_mro_bp = 315\necb_source = \"BCE, essai\"\n\
         legal_other_bp = 371\nlegal_private_creditor_bp = 721\nlegal_source = \"arrêté, essai\"\n\n\
         [[half_year]]\nperiod = \"2025-H2\"\necb_mro_bp = 215\necb_source = \"BCE, essai\"\n\
         legal_other_bp = 276\nlegal_private_creditor_bp = 665\nlegal_source = \"arrêté, essai\"\n",
    )
    .expect("rates file");
    path
}

fn overdue_since_2025() -> Value {
    let mut b = body(compose("professional", false), false);
    b["compose"]["invoices"] = json!([{"number": "F-2025-300", "issue_date": "2025-09-01", "due_date": "2025-09-30", "amount_cents": 200_000}]);
    b
}

async fn with_missing_rate_refuse_a_letter_needing_an_absent_half_year_is_refused(engine: Engine) {
    let dir = tempfile::tempdir().expect("dir");
    let rates = short_rates_table(dir.path());
    let Some(app) = crate::helpers::spawn_app_with(
        engine,
        std::sync::Arc::new(recommande::core::clock::SystemClock),
        |s| {
            s.collection.rates_file = Some(rates);
            s.collection.missing_rate = recommande::domain::collection::MissingRate::Refuse;
        },
    )
    .await
    else {
        return;
    };
    let response = app.post_letter(&overdue_since_2025()).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("json");
    let errors = problem["errors"].as_array().expect("errors");
    assert!(!errors.is_empty(), "{problem}");
    for e in errors {
        assert_eq!(e["field"], "compose.invoices", "{problem}");
        let m = e["message"].as_str().unwrap_or_default();
        assert!(m.contains("refuse") && m.contains("2025-H2"), "{m}");
    }
    // The first half-year after the table is named (2026-H1 at least).
    assert!(problem.to_string().contains("2026-H1"), "{problem}");
    assert_eq!(app.letter_count().await, 0, "nothing half-written");
    // A letter needing no interest rate (a consumer's first mise en demeure) still goes.
    let consent = crate::consents::create_consent(&app, &app.api_key, "jeanne@example.fr").await;
    let mut consumer = body(compose("consumer", false), true);
    consumer["recipient"]["consent_id"] = consent["id"].clone();
    let letter = created(app.post_letter(&consumer).await).await;
    assert!(
        letter["collection"]["breakdown"]["rates_used"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "{}",
        letter["collection"]
    );
}

async fn by_default_an_absent_half_year_is_applied_from_the_latest_and_warned_in_answer_and_proof(
    engine: Engine,
) {
    let dir = tempfile::tempdir().expect("dir");
    let rates = short_rates_table(dir.path());
    let Some(app) = crate::helpers::spawn_app_with(
        engine,
        std::sync::Arc::new(recommande::core::clock::SystemClock),
        |s| s.collection.rates_file = Some(rates),
    )
    .await
    else {
        return;
    };
    let letter = created(app.post_letter(&overdue_since_2025()).await).await;
    let collection = &letter["collection"];
    let warning = collection["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .find(|w| w["code"] == "rate_missing")
        .cloned()
        .unwrap_or_else(|| panic!("no rate_missing warning: {collection}"));
    assert_eq!(warning["on_letter"], true);
    assert!(
        warning["message"]
            .as_str()
            .is_some_and(|m| m.contains("2026-H1") && m.contains("2025-H2")),
        "{warning}"
    );
    assert_eq!(recorded_collection(&app, &letter).await, *collection);
    if let Some(text) = pdf_text(&app, &letter).await {
        assert!(
            text.contains("Faute de valeur pour le premier semestre 2026 dans notre table"),
            "{text}"
        );
    }
}

async fn consent_naming(app: &TestApp, sender: Option<&str>) -> String {
    let mut consent = json!({"email": "jeanne@example.fr", "name": "Jeanne Petit",
        "given_at": "2026-01-15T10:30:00+01:00", "method": "signed_form"});
    if let Some(sender) = sender {
        consent["sender"] = json!(sender);
    }
    let response = app.post_json("/v1/consents", &consent).await;
    let view = created(response).await;
    assert_eq!(
        view.get("sender").and_then(Value::as_str),
        sender.map(str::trim),
        "{view}"
    );
    view["id"].as_str().expect("id").to_string()
}

async fn an_agency_letter_to_a_consumer_needs_a_consent_naming_the_agency(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let letter_to = |consent_id: &str| {
        let mut b = body(compose("consumer", true), true);
        b["recipient"]["consent_id"] = json!(consent_id);
        b
    };
    // The consent names no one, or the creditor: the agency may not use it (CPCE L.100).
    for (sender, needle) in [
        (None, "names no sender"),
        (Some("Atelier Durand SARL"), "not from \"Recouvr SAS\""),
    ] {
        let id = consent_naming(&app, sender).await;
        let response = app.post_letter(&letter_to(&id)).await;
        assert_eq!(response.status(), 422);
        let problem: Value = response.json().await.expect("json");
        assert!(
            problem["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("consent-required")),
            "{problem}"
        );
        assert_eq!(problem["errors"][0]["field"], "recipient.consent_id");
        // The detail begins with the reason; the error's message is whole.
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(needle), "{detail}");
        let message = problem["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(needle)
                && message.contains("Recouvr SAS")
                && message.contains("L.100"),
            "{message}"
        );
    }
    assert_eq!(app.letter_count().await, 0, "nothing half-written");

    // A consent naming the agency: deposited, and the proof says whom the consent names.
    let id = consent_naming(&app, Some(" Recouvr SAS ")).await;
    let letter = created(app.post_letter(&letter_to(&id)).await).await;
    let rows = app.evidence_of(letter["id"].as_str().expect("id")).await;
    let record: Value = serde_json::from_slice(&rows[0].record).expect("record");
    assert_eq!(record["details"]["consent"]["id"], json!(id));
    assert_eq!(record["details"]["consent"]["sender"], "Recouvr SAS");

    // Without an agency, a consent naming no one stays the account's own, as before.
    let id = consent_naming(&app, None).await;
    let mut own = body(compose("consumer", false), true);
    own["recipient"]["consent_id"] = json!(id);
    let letter = created(app.post_letter(&own).await).await;
    let rows = app.evidence_of(letter["id"].as_str().expect("id")).await;
    let record: Value = serde_json::from_slice(&rows[0].record).expect("record");
    assert!(
        record["details"]["consent"].get("sender").is_none(),
        "{record}"
    );
}

async fn in_a_batch_too_an_agency_letter_needs_a_consent_naming_the_agency(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let named = consent_naming(&app, Some("Recouvr SAS")).await;
    let unnamed = consent_naming(&app, None).await;
    let row = |consent_id: &str, reference: &str| {
        let mut b = body(compose("consumer", true), true);
        b["recipient"]["consent_id"] = json!(consent_id);
        b["reference"] = json!(reference);
        b.as_object_mut().map(|o| o.remove("sender"));
        b
    };
    let batch = json!({
        "defaults": {"sender": {"name": "Service contentieux", "email": "contentieux@recouvr.fr", "organization": "Recouvr SAS"}},
        "letters": [row(&named, "DOS-1"), row(&unnamed, "DOS-2")]
    });
    let body = serde_json::to_vec(&batch).expect("json");
    let view = app.run_batch("application/json", "", body).await;
    assert_eq!(view["state"], "completed", "{view}");
    assert_eq!(
        (view["deposited"].as_i64(), view["rejected"].as_i64()),
        (Some(1), Some(1)),
        "{view}"
    );
    let error = &view["errors"][0];
    // JSON rows count from 0: the second letter.
    assert_eq!(error["row"], 1, "{view}");
    assert_eq!(error["field"], "recipient.consent_id", "{view}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("names no sender") && m.contains("Recouvr SAS")),
        "{view}"
    );
    let page: Value = app.get_json("/v1/letters?limit=10").await;
    let letters = page["items"].as_array().expect("items");
    assert_eq!(letters.len(), 1, "{page}");
    assert_eq!(letters[0]["reference"], "DOS-1");
}

/// A public buyer's letter with a dated part payment: the answer and the proof of deposit
/// carry the imputation (Code civil 1343-1) and the rate fixed at the half-year interest
/// started (Code de la commande publique R.2192-31); bad payments are refused with their
/// path and leave no letter; a JSON batch row carries the same fields.
async fn dated_payments_and_a_public_buyer_are_deposited_with_their_imputation_and_fixed_rate(
    engine: Engine,
) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let mut c = compose("public_buyer", false);
    c["invoices"] = json!([{
        "number": "P-2025-07", "issue_date": "2025-05-10", "due_date": "2025-06-10", "amount_cents": 800_000,
        "payments": [{"date": "2025-09-01", "amount_cents": 300_000}]
    }]);
    let response = app.post_letter(&body(c.clone(), false)).await;
    let status = response.status();
    let letter: Value = response.json().await.expect("json");
    assert_eq!(status, 201, "{letter}");
    let collection = &letter["collection"];
    let breakdown = &collection["breakdown"];
    assert_eq!(breakdown["regime"], "public_procurement", "{breakdown}");
    let invoice = &breakdown["invoices"][0];
    let payment = &invoice["payments"][0];
    // 800 000 × 11,15 % × 83 days (2025-06-11 to 2025-09-01) / 365 = 20 283,8… → 20 284
    // cents of interest paid first, the rest to the principal.
    assert_eq!(payment["to_interest_cents"], 20_284, "{invoice}");
    assert_eq!(payment["to_principal_cents"], 279_716, "{invoice}");
    assert_eq!(invoice["principal_cents"], 520_284, "{invoice}");
    assert_eq!(invoice["indemnity_cents"], 4_000, "{invoice}");
    let periods = invoice["periods"].as_array().expect("periods");
    assert!(
        periods.iter().all(|p| p["rate_bp"] == 1115),
        "the ECB rate of 2025-H1 + 8 points, never re-read: {invoice}"
    );
    assert_eq!(periods.last().expect("period")["principal_cents"], 520_284);
    // The proof of deposit records the same breakdown.
    let id = letter["id"].as_str().expect("id");
    let rows = app.evidence_of(id).await;
    let record: Value = serde_json::from_slice(&rows[0].record).expect("record");
    assert_eq!(record["details"]["collection"], *collection);
    if let Some(text) = pdf_text(&app, &letter).await {
        for needle in ["R.2192-31", "D.2192-35", "1343-1", "Principal restant dû"] {
            assert!(
                text.contains(needle),
                "the letter lacks {needle:?}:\n{text}"
            );
        }
    }

    // A payment after the letter date, or more than was owed: 422 naming it, no letter.
    let mut bad = c.clone();
    bad["invoices"][0]["payments"] = json!([
        {"date": "2999-01-01", "amount_cents": 100},
    ]);
    let response = app.post_letter(&body(bad.clone(), false)).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("json");
    assert!(
        problem
            .to_string()
            .contains("compose.invoices[0].payments[0].date"),
        "{problem}"
    );
    bad["invoices"][0]["payments"] = json!([{"date": "2025-09-01", "amount_cents": 900_000}]);
    let response = app.post_letter(&body(bad, false)).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("json");
    assert!(
        problem
            .to_string()
            .contains("compose.invoices[0].payments[0].amount_cents"),
        "{problem}"
    );
    // A public buyer is not a consumer recipient.
    let response = app
        .post_letter(&body(compose("public_buyer", false), true))
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(app.letter_count().await, 1);

    // A JSON batch row takes the same fields (the parser is shared).
    let row = body(c, false);
    let body = serde_json::to_vec(&json!({"letters": [row]})).expect("json");
    let view = app.run_batch("application/json", "", body).await;
    assert_eq!(view["state"], "completed", "{view}");
    assert_eq!(app.letter_count().await, 2);
}

/// `compose` with `count` invoices whose numbers are 24 characters long and whose amounts
/// run into millions of euros: the widest tables a letter makes.
fn many_invoices(count: usize) -> Value {
    let mut c = compose("professional", false);
    let start = time::macros::date!(2026 - 03 - 02);
    c["invoices"] = (0..count)
        .map(|i| {
            let issue = start + time::Duration::days(i as i64);
            let due = issue + time::Duration::days(30);
            json!({
                "number": format!("FACT-2026-{:014}", 7_000_000 + i),
                "issue_date": issue.to_string(),
                "due_date": due.to_string(),
                "amount_cents": 123_456_789 + 1_000_000 * i as i64,
                "paid_cents": 2_345_678,
            })
        })
        .collect();
    c
}

/// The text of a PDF as `pdftotext -layout` lays it out (table rows as lines), or `None`
/// without poppler.
/// The first page is kept as `target/proof-pages/<name>-1.png` to look at.
fn layout_text(pdf: &[u8], name: &str) -> Option<String> {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("letter.pdf");
    let out = dir.path().join("letter.txt");
    std::fs::write(&file, pdf).expect("write");
    let pages = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/proof-pages");
    std::fs::create_dir_all(&pages).expect("dir");
    let _ = poppler(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "70",
            file.to_str()?,
            pages.join(name).to_str()?,
        ],
    );
    let (ok, log) = poppler(
        "pdftotext",
        &["-layout", "-enc", "UTF-8", file.to_str()?, out.to_str()?],
    )?;
    assert!(ok, "{log}");
    Some(std::fs::read_to_string(out).expect("text"))
}

/// Plain spaces for the no-break spaces of French typography, runs collapsed.
fn spaces(s: &str) -> String {
    recommande::core::french::normalize_spaces(s)
}

async fn download(app: &TestApp, letter: &Value) -> reqwest::Response {
    let id = letter["id"].as_str().expect("id");
    let document = letter["documents"][0]["id"].as_str().expect("document id");
    app.get(&format!("/v1/letters/{id}/documents/{document}"))
        .await
}

async fn invoice_tables_keep_every_date_amount_number_and_heading_on_one_line(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    for count in [1, 5, 20] {
        let response = app.post_letter(&body(many_invoices(count), false)).await;
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().await.unwrap_or_default()
        );
        let letter: Value = response.json().await.expect("json");
        let pdf = download(&app, &letter).await.bytes().await.expect("pdf");
        let Some(text) = layout_text(&pdf, &format!("composed-{count}-invoices")) else {
            return;
        };
        let lines: Vec<String> = text.lines().map(spaces).collect();
        let euros =
            |v: &Value| spaces(&recommande::core::french::euros(v.as_i64().expect("cents")));
        let invoices = letter["collection"]["breakdown"]["invoices"]
            .as_array()
            .expect("invoices");
        assert_eq!(invoices.len(), count);
        let compose = many_invoices(count);
        for (i, (amounts, asked)) in invoices
            .iter()
            .zip(compose["invoices"].as_array().expect("asked"))
            .enumerate()
        {
            let number = asked["number"].as_str().expect("number");
            let short = |iso: &Value| {
                let d = iso.as_str().expect("date");
                format!("{}/{}/{}", &d[8..10], &d[5..7], &d[..4])
            };
            let mut tokens = vec![short(&asked["issue_date"]), short(&asked["due_date"])];
            for key in [
                "amount_cents",
                "paid_cents",
                "principal_cents",
                "interest_cents",
                "indemnity_cents",
                "total_cents",
            ] {
                tokens.push(euros(&amounts[key]));
            }
            // The row of the invoice table: the number on a line, its cells on that line or,
            // when the table is too wide, on the next one; each cell whole on one line.
            let row = lines.iter().enumerate().find(|(j, line)| {
                line.contains(number) && {
                    let next = lines.get(j + 1).map(String::as_str).unwrap_or_default();
                    tokens
                        .iter()
                        .all(|t| line.contains(t.as_str()) || next.contains(t.as_str()))
                }
            });
            assert!(
                row.is_some(),
                "{count} invoices: row {i} ({number}) has a cell split across lines, looking for {tokens:?} in:\n{text}"
            );
        }
        // The totals, whole.
        let totals = &letter["collection"]["breakdown"]["totals"];
        for key in [
            "principal_cents",
            "interest_cents",
            "indemnity_cents",
            "total_cents",
        ] {
            let total = euros(&totals[key]);
            assert!(
                lines.iter().any(|l| l.contains(&total)),
                "{count} invoices: total {key} {total:?} split:\n{text}"
            );
        }
        // The heading row: each column title starts on the same line, and no title word is
        // cut (a cut word would leave a fragment such as "forfai" alone on a line).
        let heading = lines
            .iter()
            .find(|l| l.contains("Échéance"))
            .expect("heading row");
        for word in [
            "Émise",
            "Montant",
            "Déjà",
            "Principal",
            "Intérêts",
            "Indemnité",
            "Total",
        ] {
            assert!(
                heading.contains(word),
                "{count}: {word} not in the heading row {heading:?}"
            );
        }
        assert!(
            lines
                .iter()
                .any(|l| l.split(' ').any(|w| w == "forfaitaire")),
            "{count}: the word forfaitaire is cut:\n{text}"
        );
        // A table continued on the next page repeats its heading row there.
        for (p, page) in text.split('\u{c}').enumerate() {
            // A row of the invoice table is the only line with both an issue and a due date.
            let has_row = page.lines().map(spaces).any(|line| {
                compose["invoices"]
                    .as_array()
                    .expect("asked")
                    .iter()
                    .any(|inv| {
                        ["issue_date", "due_date"].iter().all(|key| {
                            let d = inv[key].as_str().expect("date");
                            line.contains(&format!("{}/{}/{}", &d[8..10], &d[5..7], &d[..4]))
                        })
                    })
            });
            let page = spaces(page);
            if has_row {
                assert!(
                    page.contains("Échéance"),
                    "{count}: page {} has rows without the heading row:\n{page}",
                    p + 1
                );
            }
        }
        // The place and date line: the creditor writes from Lyon (its address's last line).
        assert!(
            lines.iter().any(|l| l.contains("Lyon, le ")),
            "{count}: no place and date:\n{text}"
        );
    }
}

async fn the_sender_reads_the_summary_and_downloads_the_composed_pdf(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let response = app
        .post_letter(&body(compose("professional", true), false))
        .await;
    assert_eq!(response.status(), 201);
    let letter: Value = response.json().await.expect("json");
    let id = letter["id"].as_str().expect("id");

    let shown: Value = app.get_json(&format!("/v1/letters/{id}")).await;
    assert_eq!(
        shown["collection"], letter["collection"],
        "the 201 summary, read again"
    );
    let c = &shown["collection"];
    assert_eq!(c["kind"], "mise_en_demeure");
    assert_eq!(c["creditor"]["name"], "Atelier Durand SARL");
    assert_eq!(c["creditor"]["siren"], "732 829 320");
    assert_eq!(c["agency"]["name"], "Recouvr SAS");
    assert_eq!(c["debtor"]["name"], "Boulangerie Martin");
    assert_eq!(c["debtor"]["kind"], "professional");
    assert_eq!(c["payment"]["iban"], "FR76 3000 6000 0112 3456 7890 189");
    assert!(
        c["breakdown"]["totals"]["total_cents"]
            .as_i64()
            .is_some_and(|t| t > 1_650_000)
    );
    assert!(c["warnings"].is_array());
    let listed: Value = app.get_json("/v1/letters").await;
    assert!(
        listed["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|l| l["id"] == id && l["collection"] == *c),
        "the list shows it too"
    );

    let response = download(&app, &letter).await;
    assert_eq!(response.status(), 200);
    let header = |name: &str| header_str(&response, name).unwrap_or_default().to_string();
    assert_eq!(header("content-type"), "application/pdf");
    assert_eq!(header("x-content-type-options"), "nosniff");
    let disposition = header("content-disposition");
    assert!(
        disposition.starts_with("attachment") && disposition.contains(".pdf"),
        "{disposition}"
    );
    let bytes = response.bytes().await.expect("pdf");
    assert_eq!(
        bytes.to_vec(),
        pdf_bytes(&app, &letter).await,
        "the deposited bytes"
    );

    // Another account sees neither the letter nor its document; an unknown document is a 404.
    let other = app.new_api_key("another-tenant").await;
    let document = letter["documents"][0]["id"].as_str().expect("document");
    let response = app
        .get_as(&other, &format!("/v1/letters/{id}/documents/{document}"))
        .await;
    assert_eq!(response.status(), 404);
    let response = app
        .get(&format!(
            "/v1/letters/{id}/documents/0190a1b2-0000-7000-8000-000000000000"
        ))
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        header_str(&response, "content-type"),
        Some("application/problem+json")
    );

    // A letter of uploaded documents has no collection summary.
    let plain = app.deposit().await;
    let plain_id = plain["id"].as_str().expect("id");
    let shown: Value = app.get_json(&format!("/v1/letters/{plain_id}")).await;
    assert!(shown.get("collection").is_none(), "{shown}");
    assert_eq!(
        download(&app, &plain).await.status(),
        200,
        "uploaded documents download too"
    );
}

async fn the_proofs_of_a_composed_letter_state_the_claim(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let response = app
        .post_letter(&body(compose("professional", true), false))
        .await;
    assert_eq!(response.status(), 201);
    let letter: Value = response.json().await.expect("json");
    let id = letter["id"].as_str().expect("id");
    let totals = &letter["collection"]["breakdown"]["totals"];
    let euros = |key: &str| {
        spaces(&recommande::core::french::euros(
            totals[key].as_i64().expect("cents"),
        ))
    };
    for kind in ["deposit", "summary"] {
        let Some(text) = crate::proofs::proof_text(&app, id, kind).await else {
            return;
        };
        let text = spaces(&text);
        for needle in [
            "Créance réclamée".to_string(),
            "Mise en demeure de payer".into(),
            "Atelier Durand SARL".into(),
            "SIREN 732 829 320".into(),
            "représenté par Recouvr SAS".into(),
            "Boulangerie Martin".into(),
            format!("Principal restant dû : {}", euros("principal_cents")),
            format!("Intérêts de retard : {}", euros("interest_cents")),
            euros("indemnity_cents"),
            format!("Total réclamé : {}", euros("total_cents")),
        ] {
            assert!(
                text.contains(&needle),
                "{kind} proof lacks {needle:?}:\n{text}"
            );
        }
    }
    // A letter of uploaded documents: the service did not read them, so states no claim.
    let plain = app.deposit().await;
    if let Some(text) =
        crate::proofs::proof_text(&app, plain["id"].as_str().expect("id"), "deposit").await
    {
        assert!(!text.contains("Créance réclamée"), "{text}");
    }
}
