//! The `recommande` command line, run as a real process.

use std::process::Command;

fn recommande(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_recommande"))
        .args(args)
        .env_remove("RECOMMANDE_DATABASE_URL")
        .env_remove("RECOMMANDE_DATA_DIR")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run recommande")
}

#[test]
fn api_key_create_prints_only_the_key_and_keys_can_be_listed_and_revoked() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().to_str().expect("utf-8");
    let out = recommande(&[
        "api-key",
        "create",
        "--tenant",
        "Cabinet Recouvr",
        "--data-dir",
        data,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "only the key on stdout: {stdout:?}");
    let key = lines[0];
    assert!(key.starts_with("rk_") && key.len() == 3 + 43, "{key}");

    let second = recommande(&[
        "api-key",
        "create",
        "--tenant",
        "Cabinet Recouvr",
        "--data-dir",
        data,
    ]);
    let second_key = String::from_utf8(second.stdout).expect("utf-8");
    assert_ne!(second_key.trim(), key);

    let list = recommande(&["api-key", "list", "--data-dir", data]);
    let listing = String::from_utf8(list.stdout).expect("utf-8");
    assert_eq!(listing.lines().count(), 3, "{listing}");
    assert!(!listing.contains(key), "keys are never shown again");
    let id = listing
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("id")
        .to_string();

    let revoke = recommande(&["api-key", "revoke", &id, "--data-dir", data]);
    assert!(revoke.status.success());
    let again = recommande(&["api-key", "revoke", &id, "--data-dir", data]);
    assert!(!again.status.success(), "revoking twice is an error");
    let listing = String::from_utf8(recommande(&["api-key", "list", "--data-dir", data]).stdout)
        .expect("utf-8");
    let revoked_line = listing
        .lines()
        .find(|l| l.starts_with(&id))
        .expect("listed");
    assert!(!revoked_line.trim_end().ends_with('-'), "{revoked_line}");
}

#[test]
fn bad_settings_stop_the_command_with_a_precise_message() {
    let out = recommande(&["serve", "--listen", "nowhere", "--data-dir", "/tmp/unused"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("listen"), "{stderr}");
    let out = recommande(&[
        "api-key",
        "create",
        "--tenant",
        "",
        "--data-dir",
        "/tmp/unused",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tenant"));
}

#[test]
fn archive_commands_make_keys_rewrap_encrypt_and_purge_from_the_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().to_str().expect("utf-8 path");
    let key = recommande(&["archive", "new-key", "--id", "k-2026"]);
    assert!(key.status.success());
    let line = String::from_utf8(key.stdout).expect("utf-8");
    assert!(line.starts_with("k-2026:"), "{line}");
    let bad = recommande(&["archive", "new-key", "--id", "no spaces"]);
    assert!(!bad.status.success());
    let key_file = dir.path().join("k-2026.key");
    std::fs::write(&key_file, &line).expect("write");

    // A plaintext document left by an older version, under the configured master key.
    let pdf = crate::helpers::sample_pdf("ancien");
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&pdf));
    let old = dir.path().join("documents").join(&sha[..2]).join(&sha);
    std::fs::create_dir_all(old.parent().expect("parent")).expect("mkdir");
    std::fs::write(&old, &pdf).expect("write");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_recommande"))
            .args(args)
            .args(["--data-dir", data])
            .env_remove("RECOMMANDE_DATABASE_URL")
            .env("RECOMMANDE_MASTER_KEY", line.trim())
            .output()
            .expect("run recommande")
    };
    let encrypted = run(&["archive", "encrypt-existing"]);
    let stdout = String::from_utf8_lossy(&encrypted.stdout);
    assert!(encrypted.status.success(), "{stdout}");
    assert!(stdout.contains("1 encrypted now"), "{stdout}");
    assert!(
        std::fs::read(&old)
            .expect("read")
            .starts_with(b"RCMDENC\x01")
    );
    let rewrapped = run(&["archive", "rewrap"]);
    let stdout = String::from_utf8_lossy(&rewrapped.stdout);
    assert!(rewrapped.status.success(), "{stdout}");
    assert!(stdout.contains("0 data keys re-wrapped"), "{stdout}");
    let purge = run(&["archive", "purge", "--dry-run", "--json"]);
    assert!(purge.status.success());
    let report: serde_json::Value = serde_json::from_slice(&purge.stdout).expect("json");
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["letters"], serde_json::json!([]));
    // Without the key the service refuses to start: the stored data key needs it.
    let refused = Command::new(env!("CARGO_BIN_EXE_recommande"))
        .args(["archive", "rewrap", "--data-dir", data])
        .env_remove("RECOMMANDE_DATABASE_URL")
        .env_remove("RECOMMANDE_MASTER_KEY")
        .output()
        .expect("run recommande");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("k-2026"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn completion_scripts_cover_the_commands_and_bash_reads_them() {
    let bash = recommande(&["completions", "bash"]);
    assert!(
        bash.status.success(),
        "{}",
        String::from_utf8_lossy(&bash.stderr)
    );
    let script = String::from_utf8(bash.stdout).expect("utf-8");
    for word in [
        "_recommande()",
        "serve",
        "api-key",
        "verify",
        "send",
        "completions",
    ] {
        assert!(script.contains(word), "{word} missing from the bash script");
    }
    // bash parses it without running it.
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("recommande.bash");
    std::fs::write(&path, &script).expect("write");
    if let Ok(checked) = Command::new("bash").arg("-n").arg(&path).output() {
        assert!(
            checked.status.success(),
            "{}",
            String::from_utf8_lossy(&checked.stderr)
        );
    }
    let fish = recommande(&["completions", "fish"]);
    assert!(fish.status.success());
    assert!(String::from_utf8_lossy(&fish.stdout).contains("complete -c recommande"));
    let zsh = recommande(&["completions", "zsh"]);
    assert!(String::from_utf8_lossy(&zsh.stdout).starts_with("#compdef recommande"));
    let unknown = recommande(&["completions", "tcsh"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("possible values"));
}
