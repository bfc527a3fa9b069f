//! A real SMTP server (aiosmtpd, `tests/support/smtp_sink.py`) run as a child process.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    pub maildir: tempfile::TempDir,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    /// Starts a sink refusing addresses containing any of `reject` (550) and answering the
    /// first `tempfail` recipients with 451. `None` outside CI when aiosmtpd is missing.
    pub fn start(reject: &[&str], tempfail: u32) -> Option<SmtpSink> {
        SmtpSink::start_with(reject, tempfail, 0)
    }

    /// Starts a sink that stores each of the first `hold` messages, announces it (see
    /// [`SmtpSink::wait_until_held`]) and answers 250 only once [`SmtpSink::release`] is called.
    pub fn start_holding(hold: u32) -> Option<SmtpSink> {
        SmtpSink::start_with(&[], 0, hold)
    }

    fn start_with(reject: &[&str], tempfail: u32, hold: u32) -> Option<SmtpSink> {
        let available = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !available {
            assert!(
                std::env::var_os("CI").is_none(),
                "aiosmtpd must be installed in CI"
            );
            eprintln!(
                "NOTICE: python3 aiosmtpd is missing; SMTP tests not run (pip install aiosmtpd)"
            );
            return None;
        }
        let maildir = tempfile::tempdir().expect("maildir");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut command = Command::new("python3");
        command
            .arg(script)
            .arg("--maildir")
            .arg(maildir.path())
            .arg("--tempfail")
            .arg(tempfail.to_string())
            .arg("--hold")
            .arg(hold.to_string());
        for r in reject {
            command.arg("--reject").arg(r);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP sink");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("port line");
        let port = line.trim().parse().expect("the sink prints its port");
        Some(SmtpSink {
            child,
            port,
            maildir,
        })
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Raw messages received so far, in arrival order.
    pub fn messages(&self) -> Vec<String> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.maildir.path())
            .expect("maildir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| String::from_utf8(std::fs::read(p).expect("eml")).expect("utf-8 mail"))
            .collect()
    }

    /// The exact bytes of the messages received so far, in arrival order.
    pub fn raw_messages(&self) -> Vec<Vec<u8>> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.maildir.path())
            .expect("maildir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read(p).expect("eml"))
            .collect()
    }

    /// Waits (bounded) until message `n` (1 for the first) is stored and its 250 held back.
    pub async fn wait_until_held(&self, n: u32) {
        let marker = self.maildir.path().join(format!("{n:06}.held"));
        for _ in 0..400 {
            if marker.exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("message {n} never reached the sink");
    }

    /// Lets the sink answer 250 to held message `n`.
    pub fn release(&self, n: u32) {
        std::fs::write(self.maildir.path().join(format!("{n:06}.release")), b"")
            .expect("release marker");
    }

    /// Waits (bounded) until `n` messages arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        for _ in 0..100 {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} messages, got {}", self.messages().len());
    }
}

/// The text of a plain-text mail: headers dropped, quoted-printable or base64 undone.
pub fn body_text(raw: &str) -> String {
    let (headers, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let lower = headers.to_ascii_lowercase();
    if lower.contains("content-transfer-encoding: quoted-printable") {
        let joined = body.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'='
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8(out).expect("utf-8 body")
    } else if lower.contains("content-transfer-encoding: base64") {
        use base64::Engine;
        let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .expect("base64 body");
        String::from_utf8(bytes).expect("utf-8 body")
    } else {
        body.to_string()
    }
}

/// The recipient token from a notification's link.
pub fn link_token(body: &str) -> String {
    let start = body.find("/r/").expect("a recipient link") + 3;
    body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// The 6-digit code from a code mail.
pub fn code(body: &str) -> String {
    let start = body.find(") : ").expect("code") + 4;
    body[start..].chars().take(6).collect()
}
