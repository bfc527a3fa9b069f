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
    let fr = lang == Lang::Fr;
    let letter = report.letter_id.as_deref().unwrap_or("?");
    let verdict = match (report.is_valid(), fr) {
        (true, true) => "VALIDE",
        (false, true) => "NON VALIDE",
        (true, false) => "VALID",
        (false, false) => "NOT VALID",
    };
    if fr {
        println!("Dossier de preuves de la lettre {letter} : {verdict}");
    } else {
        println!("Proof bundle of letter {letter}: {verdict}");
    }
    if !report.anchored_outside {
        println!(
            "{}",
            if fr {
                "ATTENTION : la confiance n'est ancrée que dans le dossier lui-même. Cela prouve son intégrité, pas son origine : vérifiez à nouveau avec --trust et les certificats racines publiés par le prestataire."
            } else {
                "WARNING: trust is anchored only in the bundle itself. That proves its integrity, not its origin: verify again with --trust and the provider's published root certificates."
            }
        );
    }
    println!();
    for e in &report.events {
        println!(
            "  {}  {}  sha256 {}",
            e.timestamp.as_deref().unwrap_or("?"),
            e.event,
            e.sha256
        );
    }
    println!();
    for c in &report.checks {
        let mark = match (c.passed, fr) {
            (true, _) => "[OK]",
            (false, true) => "[ÉCHEC]",
            (false, false) => "[FAIL]",
        };
        println!("{mark} {} · {} — {}", c.scope, c.name, c.detail);
    }
}
