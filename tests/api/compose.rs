//! Composed debt-collection letters through `POST /v1/letters`: the service writes the
//! letter, every mandatory mention is in the PDF's text, the amounts and rates are in the
//! response and in the proof of deposit, a consumer is never charged the €40 indemnity, and
//! every problem of a request is reported at once.

use serde_json::{Value, json};

use crate::helpers::{Engine, TestApp, spawn_app};
use crate::proofs::poppler;

crate::on_both_engines!(
    a_mise_en_demeure_is_written_checked_and_deposited_with_its_amounts,
    every_problem_of_a_composed_letter_is_listed_at_once,
    a_csv_of_mises_en_demeure_with_a_template_deposits_each_letter_and_reports_bad_rows,
    the_payment_link_is_offered_to_the_recipient_only_after_acceptance,
    a_composed_letter_is_pdf_a_3b_with_its_fonts_embedded_and_its_summary_attached,
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
    let rows = app
        .service
        .storage
        .evidence_of_letter(id)
        .await
        .expect("evidence");
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
    let template: Value = app
        .client
        .post(app.url("/v1/templates"))
        .bearer_auth(&app.api_key)
        .json(&json!({
            "name": "Mise en demeure standard",
            "kind": "mise_en_demeure",
            "wording": "Madame, Monsieur,\n\nMalgré nos relances, les factures {{invoices}} restent impayées.\n\nNous vous mettons en demeure de régler {{total}} sous {{deadline}}."
        }))
        .send()
        .await
        .expect("template")
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
    let response = app
        .client
        .post(app.url(&format!("/v1/batches{query}")))
        .bearer_auth(&app.api_key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("batch");
    let status = response.status();
    let accepted: Value = response.json().await.expect("json");
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().expect("id");
    let mut view = Value::Null;
    for _ in 0..600 {
        view = app
            .get(&format!("/v1/batches/{id}"))
            .await
            .json()
            .await
            .expect("json");
        if view["state"] != "depositing" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(view["state"], "completed", "{view}");
    assert_eq!(view["deposited"], 5, "{view}");
    assert_eq!(view["rejected"], 1, "{view}");
    let error = &view["errors"][0];
    assert_eq!(error["row"], 6, "line 6 of the file (header = 1): {view}");
    assert_eq!(error["field"], "compose.invoices[0].due_date", "{view}");

    // Each letter has its own composed PDF, written with the template, and its amounts in
    // the proof of deposit.
    let page: Value = app
        .get("/v1/letters?limit=50")
        .await
        .json()
        .await
        .expect("json");
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
        let rows = app
            .service
            .storage
            .evidence_of_letter(id)
            .await
            .expect("evidence");
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
    use crate::smtp::{SmtpSink, body_text, code, link_token};
    let Some(sink) = SmtpSink::start(&[], 0) else {
        return;
    };
    let url = sink.url();
    let Some(app) = crate::helpers::spawn_app_with(
        engine,
        std::sync::Arc::new(recommande::clock::SystemClock),
        |s| s.smtp_url = Some(url),
    )
    .await
    else {
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
    let response = app
        .client
        .post(app.url(&format!("/v1/recipient/{token}/otp")))
        .send()
        .await
        .expect("otp");
    assert_eq!(response.status(), 202);
    let mails = sink.wait_for(2).await;
    let session: Value = app
        .client
        .post(app.url(&format!("/v1/recipient/{token}/session")))
        .json(&json!({ "code": code(&body_text(&mails[1])) }))
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json");
    let session = session["session"].as_str().expect("session").to_string();
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
    let accepted = app
        .client
        .post(app.url(&format!("/v1/recipient/{token}/accept")))
        .bearer_auth(&session)
        .send()
        .await
        .expect("accept");
    assert_eq!(accepted.status(), 200);
    let html = page(Some(session.clone())).await;
    assert!(
        html.contains(r#"href="https://pay.example.fr/i/42""#),
        "the payment link after acceptance:\n{html}"
    );
    // Every payment means, the total and the last day to pay (8 days after acceptance).
    let letter: Value = app.get("/v1/letters").await.json().await.expect("json");
    let letter = &letter["items"][0];
    let total = recommande::collection::french::euros(
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
    let last_day = recommande::window::paris_date(decided).expect("date") + time::Duration::days(8);
    assert!(
        plain.contains(&format!(
            "À payer au plus tard le</dt><dd>{}",
            recommande::french::date(last_day)
        )),
        "the deadline to pay:\n{html}"
    );
    let english = app
        .client
        .get(app.url(&format!("/r/{token}?lang=en")))
        .bearer_auth(&session)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        english.contains("To pay by")
            && english.contains(&recommande::window::english_date(last_day)),
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
    recommande::collection::french::normalize_spaces(s)
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
        let euros = |v: &Value| {
            spaces(&recommande::collection::french::euros(
                v.as_i64().expect("cents"),
            ))
        };
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

    let shown: Value = app
        .get(&format!("/v1/letters/{id}"))
        .await
        .json()
        .await
        .expect("json");
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
    let listed: Value = app.get("/v1/letters").await.json().await.expect("json");
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
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
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
        .client
        .get(app.url(&format!("/v1/letters/{id}/documents/{document}")))
        .bearer_auth(&other)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
    let response = app
        .get(&format!(
            "/v1/letters/{id}/documents/0190a1b2-0000-7000-8000-000000000000"
        ))
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );

    // A letter of uploaded documents has no collection summary.
    let plain = app.deposit().await;
    let plain_id = plain["id"].as_str().expect("id");
    let shown: Value = app
        .get(&format!("/v1/letters/{plain_id}"))
        .await
        .json()
        .await
        .expect("json");
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
        spaces(&recommande::collection::french::euros(
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
