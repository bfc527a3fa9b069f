//! `recommande verify`: a proof bundle verified offline (no network, no database), the
//! report printed in French or English or as JSON.

use std::path::Path;
use std::process::ExitCode;

use super::Lang;
use crate::core::bundle::verify::BundleReport;

/// `recommande verify`: prints the report; the exit code says the verdict.
pub(super) fn run(
    bundle: &Path,
    trust: Option<&Path>,
    json: bool,
    lang: Lang,
    at: Option<&str>,
) -> ExitCode {
    let unusable = |message: String| {
        eprintln!("{message}");
        ExitCode::from(2)
    };
    let at = match at {
        None => time::OffsetDateTime::now_utc(),
        Some(text) => {
            match time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            {
                Ok(t) => t,
                Err(e) => {
                    return unusable(format!(
                        "error: --at {text:?} is not an RFC 3339 time such as 2040-01-01T00:00:00Z: {e}"
                    ));
                }
            }
        }
    };
    let anchors = match trust {
        Some(path) => match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|pem| {
                crate::core::trust::TrustAnchors::from_pem(&pem).map_err(|e| e.to_string())
            }) {
            Ok(a) => Some(a),
            Err(e) => {
                return unusable(format!(
                    "error: cannot use trust anchors {}: {e}",
                    path.display()
                ));
            }
        },
        None => None,
    };
    let file = match std::fs::File::open(bundle) {
        Ok(f) => std::io::BufReader::new(f),
        Err(e) => return unusable(format!("error: cannot open {}: {e}", bundle.display())),
    };
    let report = match crate::core::bundle::verify::verify_bundle(file, anchors.as_ref(), at) {
        Ok(r) => r,
        Err(e) => return unusable(format!("error: {e}")),
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => return unusable(format!("error: {e}")),
        }
    } else {
        print_report(&report, lang);
    }
    if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_report(report: &BundleReport, lang: Lang) {
    for line in report_lines(report, lang == Lang::Fr) {
        println!("{line}");
    }
}

/// The report as lines, every one in one language: labels of events and checks in French or
/// English, times as the tokens prove them, and a count with its plural. What each check
/// found is written in English by the verifier: the English report gives it for every check,
/// the French one only for a failed check, after « constaté ».
fn report_lines(report: &BundleReport, fr: bool) -> Vec<String> {
    let letter = report.letter_id.as_deref().unwrap_or("?");
    let valid = report.is_valid();
    let mut lines = vec![match (fr, valid) {
        (true, true) => format!("Dossier de preuves de la lettre {letter} : VALIDE"),
        (true, false) => format!("Dossier de preuves de la lettre {letter} : NON VALIDE"),
        (false, true) => format!("Proof bundle of letter {letter}: VALID"),
        (false, false) => format!("Proof bundle of letter {letter}: NOT VALID"),
    }];
    if !report.anchored_outside {
        lines.push(if fr {
            "ATTENTION : la confiance n'est ancrée que dans le dossier lui-même. Cela prouve son intégrité, pas son origine : vérifiez à nouveau avec --trust et les certificats racines publiés par le prestataire.".into()
        } else {
            "WARNING: trust is anchored only in the bundle itself. That proves its integrity, not its origin: verify again with --trust and the provider's published root certificates.".into()
        });
    }
    lines.push(String::new());
    let events = report.events.len();
    lines.push(match (fr, events) {
        (true, 0 | 1) => format!("{events} événement prouvé :"),
        (true, _) => format!("{events} événements prouvés :"),
        (false, 1) => "1 proven event:".into(),
        (false, _) => format!("{events} proven events:"),
    });
    for e in &report.events {
        let unknown = if fr { "heure inconnue" } else { "unknown time" };
        lines.push(format!(
            "  {}  {}  sha256 {}",
            e.timestamp.as_deref().unwrap_or(unknown),
            crate::core::verify::event_label(&e.event, fr),
            e.sha256
        ));
    }
    lines.push(String::new());
    let total = report.checks.len();
    let failed = report.checks.iter().filter(|c| !c.passed).count();
    lines.push(match (fr, failed, total) {
        (true, 0, 0 | 1) => format!("{total} vérification, réussie :"),
        (true, 0, _) => format!("{total} vérifications, toutes réussies :"),
        (true, 1, _) => format!("1 vérification sur {total} a échoué :"),
        (true, _, _) => format!("{failed} vérifications sur {total} ont échoué :"),
        (false, 0, 1) => "1 check, passed:".into(),
        (false, 0, _) => format!("{total} checks, all passed:"),
        (false, _, _) => format!("{failed} of {total} checks failed:"),
    });
    for c in &report.checks {
        let scope = match (fr, c.scope.as_str()) {
            (true, "bundle") => "dossier",
            (_, other) => other,
        };
        let label = crate::core::verify::check_label(c.name, fr);
        if c.passed && fr {
            lines.push(format!("[OK] {scope} · {label} ({})", c.name));
        } else if c.passed {
            lines.push(format!(
                "[OK] {scope} · {label} ({}) — {}",
                c.name, c.detail
            ));
        } else {
            let (mark, found) = if fr {
                ("[ÉCHEC]", "constaté")
            } else {
                ("[FAIL]", "found")
            };
            lines.push(format!(
                "{mark} {scope} · {label} ({}) — {found} : {}",
                c.name, c.detail
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::bundle::verify::{BundleCheck, ProvenEvent};

    fn report(failed: bool) -> BundleReport {
        BundleReport {
            letter_id: Some("L1".into()),
            anchored_outside: false,
            events: vec![ProvenEvent {
                event: "SubmissionAcceptance".into(),
                timestamp: Some("2026-12-02T10:00:00Z".into()),
                sha256: "ab".into(),
            }],
            warnings: Vec::new(),
            checks: vec![
                BundleCheck {
                    scope: "bundle".into(),
                    name: "manifest_seal",
                    passed: true,
                    detail: "the seal verifies".into(),
                },
                BundleCheck {
                    scope: "bundle".into(),
                    name: "file_digests",
                    passed: !failed,
                    detail: "documents/01-a.pdf differs".into(),
                },
            ],
        }
    }

    #[test]
    fn the_french_report_has_no_english_line_and_the_english_no_french_one() {
        let fr = report_lines(&report(false), true).join("\n");
        for english in [
            "Proof bundle",
            "WARNING",
            "proven event",
            "checks",
            "Letter deposited",
            "bundle ·",
            "the seal verifies",
        ] {
            assert!(!fr.contains(english), "{english:?} in:\n{fr}");
        }
        assert!(fr.contains("1 événement prouvé :"), "{fr}");
        assert!(fr.contains("2 vérifications, toutes réussies :"), "{fr}");
        assert!(fr.contains("Dépôt de la lettre"), "{fr}");
        let en = report_lines(&report(false), false).join("\n");
        for french in ["Dossier", "ATTENTION", "événement", "vérification", "Dépôt"] {
            assert!(!en.contains(french), "{french:?} in:\n{en}");
        }
        assert!(
            en.contains("1 proven event:") && en.contains("2 checks, all passed:"),
            "{en}"
        );
    }

    #[test]
    fn a_failed_check_says_what_was_found() {
        let fr = report_lines(&report(true), true).join("\n");
        assert!(fr.contains("NON VALIDE"), "{fr}");
        assert!(fr.contains("1 vérification sur 2 a échoué :"), "{fr}");
        assert!(fr.contains("[ÉCHEC] dossier · Empreintes de tous les fichiers (file_digests) — constaté : documents/01-a.pdf differs"), "{fr}");
        let en = report_lines(&report(true), false).join("\n");
        assert!(en.contains("1 of 2 checks failed:"), "{en}");
    }
}
