//! The documentation as a new user follows it. Every command block of README.md,
//! docs/verifying.md and docs/API.md runs, as written, in one shell against a started
//! `recommande serve`, so that the docs cannot drift from the code again:
//!
//! - a ```` ```sh ```` block runs whole, unless the line before its fence is
//!   `<!-- docs-test: skip (why) -->`;
//! - in a bare ```` ``` ```` block, each line starting with `$ ` is a command (what follows
//!   the `$ `), and the lines after it are its output: each must appear in what the command
//!   printed, except lines holding `…` or a date (`GMT`), which the docs abbreviate;
//! - the only rewriting is of the addresses: `http://127.0.0.1:8080` and
//!   `https://lre.example.fr` become the test server's.
//!
//! The shell runs under `set -euo pipefail` in a directory laid out like the repository
//! (`target/release/recommande`, `data/`, `docs/examples/`), so the README's own paths are
//! used. Between two documents a few lines of glue, written below, give the next one what a
//! reader would bring: the bundle a judge received, a tree head a witness kept, a DSN.
//!
//! Beside it, the README's command table names every command and every flag of the CLI, and
//! COLLECTION.md every CSV column of a composed letter.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use clap::CommandFactory;

const DOCUMENTS: [&str; 3] = ["README.md", "docs/verifying.md", "docs/API.md"];
const BOUNCE_TOKEN: &str = "docs-test-bounce-token-of-forty-characters";

/// One runnable piece of a document.
#[derive(Debug)]
enum Step {
    /// A ```` ```sh ```` block, run as it is.
    Block { origin: String, text: String },
    /// A `$ ` line and the output the document shows under it.
    Line {
        origin: String,
        command: String,
        expected: Vec<String>,
    },
}

/// The steps of a Markdown document, in order.
fn steps(file: &str, markdown: &str) -> Vec<Step> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(lang) = lines[i].strip_prefix("```") else {
            i += 1;
            continue;
        };
        let start = i;
        let skipped = start > 0 && lines[start - 1].starts_with("<!-- docs-test: skip");
        let mut end = start + 1;
        while end < lines.len() && !lines[end].starts_with("```") {
            end += 1;
        }
        let body = &lines[start + 1..end.min(lines.len())];
        let origin = |n: usize| format!("{file}:{}", n + 1);
        match lang.trim() {
            "sh" if !skipped => steps.push(Step::Block {
                origin: origin(start),
                text: body.join("\n"),
            }),
            "" if !skipped => {
                for (k, line) in body.iter().enumerate() {
                    let Some(command) = line.strip_prefix("$ ") else {
                        continue;
                    };
                    let expected = body[k + 1..]
                        .iter()
                        .take_while(|l| !l.starts_with("$ "))
                        .filter(|l| !l.contains('…') && !l.contains("GMT") && !l.is_empty())
                        .map(|l| l.to_string())
                        .collect();
                    steps.push(Step::Line {
                        origin: origin(start + 1 + k),
                        command: command.to_string(),
                        expected,
                    });
                }
            }
            _ => {}
        }
        i = end + 1;
    }
    steps
}

/// `command` with each `name` replaced by the shell variable `variable`, closing and
/// reopening single quotes where the placeholder stands inside them.
fn placeholder(command: &str, name: &str, variable: &str) -> String {
    let mut out = String::new();
    let mut rest = command;
    while let Some(at) = rest.find(name) {
        let before = &rest[..at];
        out.push_str(before);
        let quoted = out.matches('\'').count() % 2 == 1;
        if quoted {
            out.push_str(&format!("'\"{variable}\"'"));
        } else {
            out.push_str(&format!("\"{variable}\""));
        }
        rest = &rest[at + name.len()..];
    }
    out.push_str(rest);
    out
}

/// `text` in single quotes for bash.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The glue run before each document (after the README: the reader's working directory is
/// kept in `WORK`).
fn glue_before(file: &str) -> &'static str {
    match file {
        // A judge receives the bundle as `lettre.zip`, after a renewal (so that step 9 has
        // a renewal to check), with the provider's roots and a tree head a witness kept (the one
        // of the bundle's size, published when the README's bundle was made).
        "docs/verifying.md" => {
            r#"WORK=$PWD
recommande archive renew --data-dir "$DATA" >/dev/null
curl -fsS -H "Authorization: Bearer $KEY" -o lettre.zip http://127.0.0.1:8080/v1/letters/$L/bundle.zip
mkdir lettre
cp roots.pem lettre/
SIZE=$(unzip -p lettre.zip log/tree-head.json | jq -er .tree_size)
curl -fsS -o lettre/head-kept-by-the-witness.json http://127.0.0.1:8080/v1/log/tree-heads/$SIZE
RENEWAL_ROOT=$(unzip -p lettre.zip renewals/01-SubmissionAcceptance.renewal-1.json | jq -er .root)"#
        }
        // An integrator has the sample PDFs at hand, the bounce token and a DSN from their
        // relay for the letter's notification.
        "docs/API.md" => {
            r#"cd "$WORK"
cp "$EXAMPLES/relance.pdf" "$EXAMPLES/contrat.pdf" .
BOUNCE_TOKEN=__BOUNCE_TOKEN__
MID=$(grep -i '^Message-ID:' "$DATA/mail/lre.$L.notify.1_recommande.localhost.eml" | cut -d ' ' -f 2 | tr -d '\r')
printf 'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.debitrice.fr\r\n\r\nFinal-Recipient: rfc822; compta@debitrice.fr\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: %s\r\n--B--\r\n' "$MID" > dsn.eml"#
        }
        _ => "",
    }
}

/// The whole script: every step of the documents, each announced on stderr; and how many
/// steps it has.
fn script(root: &Path, base: &str) -> (String, usize) {
    let mut out = String::from("set -euo pipefail\n");
    let mut count = 0;
    for file in DOCUMENTS {
        let markdown = std::fs::read_to_string(root.join(file)).expect("read the document");
        out.push_str(&glue_before(file).replace("__BOUNCE_TOKEN__", BOUNCE_TOKEN));
        out.push('\n');
        let found = steps(file, &markdown);
        assert!(!found.is_empty(), "{file} has no command block");
        count += found.len();
        for step in found {
            match step {
                Step::Block { origin, text } => {
                    out.push_str(&format!("echo '### {origin}' >&2\n{text}\n"));
                }
                Step::Line {
                    origin,
                    command,
                    expected,
                } => {
                    let command = placeholder(&command, "<root>", "$RENEWAL_ROOT");
                    out.push_str(&format!(
                        "echo '### {origin}' >&2\nout=$( {{ {command}\n}} 2>&1 ) || {{ printf '%s\\n' \"$out\" >&2; exit 1; }}\nprintf '%s\\n' \"$out\"\n"
                    ));
                    for line in expected {
                        out.push_str(&format!(
                            "grep -qxF -- {} <<<\"$out\" || {{ echo 'not printed: '{} >&2; exit 1; }}\n",
                            quoted(&line),
                            quoted(&line)
                        ));
                    }
                }
            }
        }
    }
    let out = out
        .replace("http://127.0.0.1:8080", base)
        .replace("https://lre.example.fr", base);
    (out, count)
}

fn tools_present() -> bool {
    for tool in [
        "curl",
        "jq",
        "unzip",
        "openssl",
        "python3",
        "sha256sum",
        "timeout",
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "{tool} is missing in CI (.ci/run installs it)"
            );
            eprintln!("NOTICE: {tool} is missing; the documentation's commands are not run");
            return false;
        }
    }
    true
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_of_the_readme_verifying_and_api_docs_runs_as_written() {
    if !tools_present() {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    // The reader's checkout: the binary where `cargo run --release` puts it, the data
    // directory the service keeps, and the sample documents.
    let root = dir.path().join("checkout");
    std::fs::create_dir_all(root.join("target/release")).expect("mkdir");
    std::fs::create_dir_all(root.join("docs")).expect("mkdir");
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_recommande"),
        root.join("target/release/recommande"),
    )
    .expect("link the binary");
    std::os::unix::fs::symlink(repo.join("docs/examples"), root.join("docs/examples"))
        .expect("link the examples");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).expect("mkdir");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_recommande"))
            .args(["serve", "--data-dir"])
            .arg(root.join("data"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env_remove("RECOMMANDE_DATABASE_URL")
            .env("RECOMMANDE_MAIL_BOUNCE_TOKEN", BOUNCE_TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start recommande serve"),
    );
    let mut up = false;
    for _ in 0..400 {
        if reqwest::get(format!("{base}/readyz"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "recommande serve did not come up on {base}");

    let (text, steps) = script(repo, &base);
    std::fs::write(dir.path().join("docs.sh"), &text).expect("write the script");
    let out = tokio::task::spawn_blocking({
        let script = dir.path().join("docs.sh");
        let root = root.clone();
        move || {
            Command::new("timeout")
                .arg("300")
                .arg("bash")
                .arg(script)
                .current_dir(root)
                .env("TMPDIR", tmp)
                .env_remove("RECOMMANDE_DATA_DIR")
                .output()
                .expect("run bash")
        }
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let server_log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "a documented command failed ({}); the last `###` line names it:\n{}\n--- stdout (end):\n{}\n--- server log (end):\n{}",
        out.status,
        tail(&stderr, 40),
        tail(&String::from_utf8_lossy(&out.stdout), 20),
        tail(&server_log, 20)
    );
    let announced = stderr.lines().filter(|l| l.starts_with("### ")).count();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // What the steps printed, a few facts a reader relies on.
    for shown in [
        "Verification: OK",
        "CMS Verification successful",
        "SHA256SUMS: OK",
        "documents/01-relance.pdf: OK",
        "CONSISTENT",
        "\"recorded\":true",
    ] {
        assert!(stdout.contains(shown), "{shown} not printed:\n{stdout}");
    }
    assert_eq!(announced, steps, "every step ran");
    assert!(steps >= 25, "the documents lost their commands ({steps})");
    // Nothing was written outside the reader's temporary directories and the data directory.
    let mut top: Vec<String> = std::fs::read_dir(&root)
        .expect("read the checkout")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(
        top,
        ["data", "docs", "target"],
        "files left in the checkout"
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The README's command table names every command and every flag of the CLI.
#[test]
fn the_readme_names_every_command_and_flag() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let table: String = readme
        .lines()
        .filter(|l| l.starts_with("| `recommande "))
        .collect::<Vec<_>>()
        .join("\n");
    let location = [
        "data-dir",
        "database-url",
        "config",
        "listen",
        "smtp-url",
        "public-url",
    ];
    let mut missing = Vec::new();
    fn walk(
        command: &clap::Command,
        path: &str,
        table: &str,
        location: &[&str],
        missing: &mut Vec<String>,
    ) {
        let subcommands: Vec<&clap::Command> = command
            .get_subcommands()
            .filter(|c| c.get_name() != "help")
            .collect();
        if subcommands.is_empty() {
            let row = table
                .lines()
                .find(|l| l.contains(&format!("`{path} ")) || l.contains(&format!("`{path}`")));
            let Some(row) = row else {
                missing.push(path.to_string());
                return;
            };
            for arg in command.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if long == "help" || long == "version" {
                    continue;
                }
                let in_loc = location.contains(&long) && row.contains("[LOC]");
                if !in_loc && !row.contains(&format!("--{long}")) {
                    missing.push(format!("{path} --{long}"));
                }
            }
        }
        for sub in subcommands {
            walk(
                sub,
                &format!("{path} {}", sub.get_name()),
                table,
                location,
                missing,
            );
        }
    }
    walk(
        &recommande::cli::Cli::command(),
        "recommande",
        &table,
        &location,
        &mut missing,
    );
    assert!(missing.is_empty(), "not in the README's table: {missing:?}");
    for long in location {
        assert!(
            readme.contains(&format!("`--{long}")),
            "[LOC] does not list --{long}"
        );
    }
}

#[test]
fn collection_md_documents_every_compose_column() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/COLLECTION.md"))
            .expect("COLLECTION.md");
    let section = doc
        .split("## In a CSV batch")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a CSV section");
    for (column, _) in recommande::domain::batch::COLUMNS {
        let Some(path) = column.strip_prefix("compose.") else {
            continue;
        };
        // The table writes an object's first field in full and the others from the dot:
        // `compose.creditor.name`, `.address`.
        let last = path.rsplit('.').next().expect("a field");
        let spelled = column
            .replace(".#.", ".N.")
            .replace(".N.payments.N.", ".N.payments.M.");
        assert!(
            section.contains(&format!("`{spelled}`")) || section.contains(&format!("`.{last}`")),
            "COLLECTION.md does not name the column {column}"
        );
    }
}
