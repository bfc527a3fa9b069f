//! `recommande log verify-consistency`: reads two signed tree heads and a consistency proof
//! (from a file or the service) and prints the verdict of
//! [`crate::core::log::consistency`]; the exit code says it.

use std::path::Path;
use std::process::ExitCode;

use super::LogCommand;
use crate::core::clock::rfc3339_micros;
use crate::core::log::consistency::{VerifiedHeads, verify_heads};
use crate::core::log::{ConsistencyProof, PublishedTreeHead};
use crate::core::trust::TrustAnchors;

/// Runs a `log` subcommand.
pub(super) async fn run(cmd: LogCommand) -> ExitCode {
    match cmd {
        LogCommand::VerifyConsistency {
            old,
            new,
            trust,
            proof,
            server,
        } => verify_consistency(&old, &new, &trust, proof.as_deref(), server.as_deref()).await,
    }
}

/// Input that cannot be used: exit code 2.
fn unusable(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// The log is not shown to have only grown: exit code 1.
fn invalid(message: String) -> ExitCode {
    println!("NOT CONSISTENT: {message}");
    ExitCode::from(1)
}

async fn verify_consistency(
    old: &Path,
    new: &Path,
    trust: &Path,
    proof: Option<&Path>,
    server: Option<&str>,
) -> ExitCode {
    let anchors = match std::fs::read(trust)
        .map_err(|e| e.to_string())
        .and_then(|pem| TrustAnchors::from_pem(&pem).map_err(|e| e.to_string()))
    {
        Ok(a) => a,
        Err(e) => return unusable(format!("cannot use trust anchors {}: {e}", trust.display())),
    };
    let (old_head, new_head) = match (read_head(old), read_head(new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => return unusable(e),
    };
    let heads = match verify_heads(&old_head, &new_head, &anchors) {
        Ok(h) => h,
        Err(e) => return invalid(e),
    };
    let proof = if heads.needs_proof() {
        match obtain_proof(&heads, proof, server).await {
            Ok(p) => Some(p),
            Err(e) => return unusable(e),
        }
    } else {
        None
    };
    if let Err(e) = heads.verify_growth(proof.as_ref()) {
        return invalid(e);
    }
    println!(
        "CONSISTENT: the log only grew from {} leaves (head timestamped {}) to {} leaves (head timestamped {}); both heads are sealed and timestamped by the provider.",
        heads.old.tree_size,
        rfc3339_micros(heads.old_time),
        heads.new.tree_size,
        rfc3339_micros(heads.new_time)
    );
    ExitCode::SUCCESS
}

/// A published tree head (the JSON of `/v1/log/tree-head` that witnesses keep), or the
/// `log/` folder of an unpacked bundle (or its `tree-head.json`, beside `tree-head.p7s` and
/// `tree-head.tsr`).
fn read_head(path: &Path) -> Result<PublishedTreeHead, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let head_file = if path.is_dir() {
        path.join("tree-head.json")
    } else {
        path.to_path_buf()
    };
    let bytes = read(&head_file)?;
    if let Ok(published) = serde_json::from_slice::<PublishedTreeHead>(&bytes) {
        return Ok(published);
    }
    let (seal, token) = (
        head_file.with_extension("p7s"),
        head_file.with_extension("tsr"),
    );
    if !seal.is_file() || !token.is_file() {
        return Err(format!(
            "{} is neither a published tree head nor a bundle's log/tree-head.json with its .p7s and .tsr",
            path.display()
        ));
    }
    PublishedTreeHead::from_parts(&bytes, &read(&seal)?, &read(&token)?)
        .map_err(|e| format!("{}: {e}", head_file.display()))
}

/// The consistency proof between the two heads' sizes: read from `proof`, or fetched from
/// the service at `server`.
async fn obtain_proof(
    heads: &VerifiedHeads,
    proof: Option<&Path>,
    server: Option<&str>,
) -> Result<ConsistencyProof, String> {
    match (proof, server) {
        (Some(path), _) => std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| format!("cannot read proof {}: {e}", path.display())),
        (None, Some(server)) => {
            let url = format!(
                "{}/v1/log/proofs/consistency?from={}&to={}",
                server.trim_end_matches('/'),
                heads.old.tree_size,
                heads.new.tree_size
            );
            let fetched = match reqwest::get(&url).await {
                Ok(r) if r.status().is_success() => {
                    r.bytes().await.map_err(|e| e.to_string()).and_then(|b| {
                        serde_json::from_slice::<ConsistencyProof>(&b).map_err(|e| e.to_string())
                    })
                }
                Ok(r) => return Err(format!("{url} answered {}", r.status())),
                Err(e) => return Err(format!("cannot fetch {url}: {e}")),
            };
            fetched.map_err(|e| format!("{url} did not return a proof: {e}"))
        }
        (None, None) => Err("give the consistency proof with --proof FILE or --server URL".into()),
    }
}
