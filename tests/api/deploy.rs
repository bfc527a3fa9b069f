//! The files that run the service elsewhere (deploy/): the systemd unit passes
//! `systemd-analyze verify` and its offline security review; the compose file parses, names
//! only services and secrets it declares, and, like the Containerfile and the unit, sets
//! only variables the configuration reads. No container engine runs here, so the image
//! itself is not built by the suite (docs/operations.md says so).

use std::path::Path;
use std::process::Command;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Every `RECOMMANDE_*` name in `text`, with a `_FILE` suffix removed.
fn variables(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("RECOMMANDE_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        let name = name.strip_suffix("_FILE").unwrap_or(&name).to_string();
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

#[test]
fn deploy_files_set_only_variables_the_configuration_reads() {
    let known = std::fs::read_to_string(repo("src/config/source.rs")).expect("source.rs")
        + &std::fs::read_to_string(repo("src/cli/mod.rs")).expect("cli");
    for file in [
        "deploy/Containerfile",
        "deploy/compose.yaml",
        "deploy/recommande.service",
    ] {
        let text = std::fs::read_to_string(repo(file)).expect(file);
        let names = variables(&text);
        assert!(!names.is_empty(), "{file} sets no variable");
        for name in names {
            assert!(
                known.contains(&format!("\"{name}\"")),
                "{file} sets {name}, which the service does not read"
            );
        }
    }
}

#[test]
fn the_containerfile_runs_unprivileged_and_checks_readiness() {
    let text = std::fs::read_to_string(repo("deploy/Containerfile")).expect("Containerfile");
    let user = text
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("a USER line");
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "{user}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("HEALTHCHECK") || l.contains("/readyz")),
        "no health check"
    );
    assert_eq!(
        text.matches("\nFROM ").count() + usize::from(text.starts_with("FROM ")),
        2
    );
    // Everything it copies from the build context exists and is let through the ignore file.
    let ignore =
        std::fs::read_to_string(repo("deploy/Containerfile.dockerignore")).expect("ignore");
    for line in text
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for source in &parts[1..parts.len() - 1] {
            assert!(repo(source).exists(), "{line}: {source} missing");
            let name = source.trim_end_matches('/');
            assert!(
                ignore
                    .lines()
                    .any(|l| l.trim_start_matches('!').trim_end_matches('/') == name),
                "{source} is not in the build context"
            );
        }
    }
}

#[test]
fn the_compose_file_declares_what_it_uses() {
    // PyYAML reads the file; the checks are in the script below.
    let script = r#"
import sys, yaml, os
doc = yaml.safe_load(open(sys.argv[1]))
services, secrets = doc["services"], doc["secrets"]
for name, service in services.items():
    for dep in (service.get("depends_on") or {}):
        assert dep in services, f"{name} depends on unknown {dep}"
    for secret in service.get("secrets", []):
        assert secret in secrets, f"{name} uses undeclared secret {secret}"
    assert "image" in service or "build" in service, name
for name, secret in secrets.items():
    path = os.path.join(os.path.dirname(sys.argv[1]), secret["file"])
    if "/trial/" in path:
        assert os.path.isfile(path), f"trial secret {path} missing"
app = [s for s in services.values() if "build" in s]
assert len(app) >= 2, "a scale-out trial needs two instances"
for service in app:
    env = service["environment"]
    assert env["RECOMMANDE_STORAGE_BACKEND"] == "s3"
    assert "RECOMMANDE_DATABASE_URL_FILE" in env
print("ok")
"#;
    let out = match Command::new("python3")
        .args(["-c", script])
        .arg(repo("deploy/compose.yaml"))
        .output()
    {
        Ok(out) => out,
        Err(_) if std::env::var_os("CI").is_none() => return,
        Err(e) => panic!("python3: {e}"),
    };
    if String::from_utf8_lossy(&out.stderr).contains("No module named 'yaml'")
        && std::env::var_os("CI").is_none()
    {
        return;
    }
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_systemd_unit_verifies_and_exposes_little() {
    let unit = std::fs::read_to_string(repo("deploy/recommande.service")).expect("unit");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("recommande.service");
    // The unit names the installed binary; the built one stands in for it.
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/recommande",
            env!("CARGO_BIN_EXE_recommande"),
        ),
    )
    .expect("write unit");
    let verify = match Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
    {
        Ok(out) => out,
        Err(_) if std::env::var_os("CI").is_none() => return,
        Err(e) => panic!("systemd-analyze: {e}"),
    };
    let said = String::from_utf8_lossy(&verify.stderr).to_string()
        + &String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success() && said.trim().is_empty(), "{said}");
    // The offline review scores exposure from 0 (locked down) to 10; fail above 2.
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(&path)
        .output()
        .expect("systemd-analyze security");
    assert!(
        security.status.success(),
        "{}",
        String::from_utf8_lossy(&security.stdout)
    );
}
