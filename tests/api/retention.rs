//! Evidence retention (`[archive] evidence_retention`, issue 6 §1): evidence records and the
//! log stay for ever; once the configured years after `retain_until` have passed, the letter
//! row's copies of the sender and recipient are erased — and every chain and the log still
//! verify.

use std::sync::Arc;

use recommande::app::audit::{AuditScope, run};
use recommande::core::clock::{Clock, TestClock, unix_micros};
use serde_json::Value;

use crate::helpers::{Engine, spawn_app_with};

crate::on_both_engines!(
    parties_are_erased_from_the_letter_row_after_the_evidence_retention_and_evidence_still_verifies,
);

async fn parties_are_erased_from_the_letter_row_after_the_evidence_retention_and_evidence_still_verifies(
    engine: Engine,
) {
    let clock = TestClock::at(time::OffsetDateTime::now_utc());
    let Some(app) = spawn_app_with(engine, Arc::new(clock.clone()), |s| {
        s.evidence.retention_years = 1;
        s.archive.evidence_retention_years = Some(2);
    })
    .await
    else {
        return;
    };
    let letter = app.deposit().await;
    let id = letter["id"].as_str().expect("id").to_string();
    let evidence_before = app.evidence_of(&id).await;
    let retain_until = app
        .service
        .storage
        .letter_by_id(&id)
        .await
        .expect("letter")
        .expect("exists")
        .retain_until;
    let path = format!("/v1/letters/{id}");
    let view = || async {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.expect("json")
    };

    // Retention over: the content goes, the parties stay (evidence retention not reached).
    clock.advance(time::Duration::microseconds(
        retain_until - unix_micros(clock.now()) + 1,
    ));
    let report = recommande::app::archive::purge(&app.service, false)
        .await
        .expect("purge");
    assert_eq!(report.letters, std::slice::from_ref(&id));
    assert!(report.redacted.is_empty(), "{report:?}");
    assert_eq!(view().await["recipient"]["email"], "compta@debitrice.fr");

    // One day short of two years later: still kept.
    clock.advance(time::Duration::days(2 * 365 - 1));
    let report = recommande::app::archive::purge(&app.service, false)
        .await
        .expect("purge");
    assert!(report.redacted.is_empty(), "{report:?}");

    // Two years and a day after retain_until: erased, once.
    clock.advance(time::Duration::days(3));
    let report = recommande::app::archive::purge(&app.service, false)
        .await
        .expect("purge");
    assert_eq!(report.redacted, std::slice::from_ref(&id));
    let shown = view().await;
    assert_eq!(
        shown["recipient"]["email"], "erased@erased.invalid",
        "{shown}"
    );
    assert_eq!(shown["sender"]["email"], "erased@erased.invalid", "{shown}");
    assert!(!shown.to_string().contains("debitrice"), "{shown}");
    let again = recommande::app::archive::purge(&app.service, false)
        .await
        .expect("purge");
    assert!(again.redacted.is_empty(), "{again:?}");

    // The evidence is untouched and the whole archive — chains and log — still verifies.
    let evidence_after = app.evidence_of(&id).await;
    assert_eq!(evidence_before.len() + 1, evidence_after.len());
    for (before, after) in evidence_before.iter().zip(&evidence_after) {
        assert_eq!(before.record, after.record);
    }
    // The crypto-shredded document is what the purge should leave: the audit counts it and
    // passes; every chain and the log verify.
    let audit = run(&app.service, AuditScope::All).await.expect("audit");
    assert!(audit.report.passed, "{:?}", audit.report.failures);
    assert!(audit.report.documents_destroyed >= 1);
    assert!(audit.report.letters_checked >= 1);
    assert!(audit.report.log_leaves_checked >= evidence_after.len() as u64);

    // Had the letter still needed its content (its destruction mark undone here, as if the
    // key had been destroyed behind the purge's back), the audit names the letter.
    app.execute_sql(&format!(
        "UPDATE letters SET content_destroyed_at = NULL WHERE id = '{id}'"
    ))
    .await
    .expect("tamper");
    let audit = run(&app.service, AuditScope::All).await.expect("audit");
    assert!(!audit.report.passed);
    let early: Vec<_> = audit
        .report
        .failures
        .iter()
        .filter(|f| f.check == "document_destroyed_early")
        .collect();
    assert_eq!(early.len(), 1, "{:?}", audit.report.failures);
    assert_eq!(early[0].letter_id.as_deref(), Some(id.as_str()));
}
