//! Seal and TSA keys in a hardware security module (issue 16 §1), with SoftHSM2 as a real
//! PKCS#11 module, walked as an operator would with real processes: a token initialised by
//! `softhsm2-util`; `recommande pki token-key` generates the keys inside it;
//! `recommande pki csr` makes the requests an openssl CA certifies; `recommande serve`
//! seals and timestamps a deposit through the token, and `openssl cms`/`openssl ts` verify
//! it. A wrong PIN, or a certificate of another key, refuses the start with a message that
//! says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{letter_body, openssl, path, sample_pdf};
use crate::production_pki::{SEAL_EXTENSIONS, TSA_EXTENSIONS, certify, operator_root};

const PIN: &str = "4711-recommande";

/// A SoftHSM2 token store of its own (configuration file and token directory), with one
/// initialised token.
struct Hsm {
    dir: tempfile::TempDir,
    module: PathBuf,
    label: String,
}

impl Hsm {
    /// A fresh token, or `None` (with a notice; a failure in CI) when SoftHSM2 is absent.
    fn new() -> Option<Hsm> {
        let module = ["/usr/lib/softhsm/libsofthsm2.so"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists());
        let Some(module) = module else {
            assert!(
                std::env::var_os("CI").is_none(),
                "SoftHSM2 must be installed in CI (apt-get install softhsm2)"
            );
            eprintln!("NOTICE: SoftHSM2 not installed; PKCS#11 tests not run");
            return None;
        };
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir(dir.path().join("tokens")).expect("token dir");
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .expect("conf");
        std::fs::write(dir.path().join("pin"), format!("{PIN}\n")).expect("pin file");
        let hsm = Hsm {
            dir,
            module,
            label: "recommande-test".into(),
        };
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", hsm.conf())
            .args(["--init-token", "--free", "--label", &hsm.label])
            .args(["--pin", PIN, "--so-pin", "so-4711"])
            .output()
            .expect("softhsm2-util");
        assert!(out.status.success(), "{}", text(&out));
        Some(hsm)
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    fn uri(&self, object: &str) -> String {
        format!("pkcs11:token={};object={object}", self.label)
    }

    /// `recommande ARGS` with this token's module and PIN file in the environment.
    fn recommande(&self, data: &Path, pin_file: &Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_recommande"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("SOFTHSM2_CONF", self.conf())
            .env("RECOMMANDE_DATA_DIR", data)
            .env("RECOMMANDE_PKI_PKCS11_MODULE", &self.module)
            .env("RECOMMANDE_PKI_PKCS11_PIN_FILE", pin_file);
        command
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Keys `seal` and `tsa` generated in the token, certified by an openssl CA in `pki`
/// (`seal.pem`, `tsa.pem`, `root.pem`); returns the public keys `token-key` printed.
fn token_keys_certified(hsm: &Hsm, pki: &Path, data: &Path) -> Vec<String> {
    operator_root(pki);
    let pin = hsm.dir.path().join("pin");
    let mut public_keys = Vec::new();
    for (name, role, extensions) in [
        ("seal", "seal", SEAL_EXTENSIONS),
        ("tsa", "tsa", TSA_EXTENSIONS),
    ] {
        let out = hsm
            .recommande(data, &pin)
            .args(["pki", "token-key", "--key", &hsm.uri(name)])
            .output()
            .expect("token-key");
        assert!(out.status.success(), "token-key: {}", text(&out));
        let public = String::from_utf8(out.stdout).expect("utf-8");
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
        // A second key under the same label is refused: labels name one key.
        let again = hsm
            .recommande(data, &pin)
            .args(["pki", "token-key", "--key", &hsm.uri(name)])
            .output()
            .expect("token-key again");
        assert!(!again.status.success());
        assert!(text(&again).contains("already exists"), "{}", text(&again));

        let csr = pki.join(format!("{name}.csr"));
        let out = hsm
            .recommande(data, &pin)
            .args(["pki", "csr", "--key", &hsm.uri(name), "--role", role])
            .args(["--subject", &format!("CN=HSM {name},O=Test Operator,C=FR")])
            .args(["--out", path(&csr)])
            .output()
            .expect("csr");
        assert!(out.status.success(), "csr: {}", text(&out));
        // openssl checks the request's self-signature: the token signed it.
        let (ok, out) = openssl(&["req", "-in", path(&csr), "-verify", "-noout"]);
        assert!(ok, "{out}");
        // The request carries the token's public key.
        let (ok, requested) = openssl(&["req", "-in", path(&csr), "-pubkey", "-noout"]);
        assert!(ok, "{requested}");
        assert_eq!(requested.trim(), public.trim());
        certify(pki, &csr, name, extensions);
        public_keys.push(public);
    }
    public_keys
}

fn config(pki: &Path, seal_cert: &str, seal_key: &str, tsa_key: &str) -> String {
    format!(
        r#"evidence_policy = "urn:example:operator:evidence-policy:1"

[pki]
seal_certificate = "{seal}"
seal_key = "{seal_key}"
tsa_certificate = "{tsa}"
tsa_key = "{tsa_key}"
roots = "{roots}"

[timestamp]
policy_oid = "1.3.6.1.4.1.99999.1.1"
"#,
        seal = pki.join(seal_cert).display(),
        tsa = pki.join("tsa.pem").display(),
        roots = pki.join("root.pem").display(),
    )
}

struct Served {
    child: std::process::Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `recommande serve` on a free port; `Err(output)` when it stops instead of answering.
async fn serve(hsm: &Hsm, data: &Path, config: &Path, pin: &Path) -> Result<Served, String> {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    let log = data.join("serve.log");
    let child = hsm
        .recommande(data, pin)
        .env("RECOMMANDE_CONFIG", config)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("serve");
    let mut served = Served {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..600 {
        if served.child.try_wait().expect("status").is_some() {
            return Err(std::fs::read_to_string(&log).unwrap_or_default());
        }
        if reqwest::get(format!("{}/healthz", served.base))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return Ok(served);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "recommande serve did not come up: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

async fn deposit(base: &str, key: &str) -> Value {
    let client = reqwest::Client::new();
    let part = reqwest::multipart::Part::bytes(sample_pdf("HSM")).file_name("relance.pdf");
    let uploaded: Value = client
        .post(format!("{base}/v1/documents"))
        .bearer_auth(key)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    let document = uploaded["id"].as_str().expect("document id");
    let response = client
        .post(format!("{base}/v1/letters"))
        .bearer_auth(key)
        .json(&letter_body(document))
        .send()
        .await
        .expect("deposit");
    assert_eq!(response.status(), 201);
    response.json().await.expect("letter")
}

async fn fetch(base: &str, key: &str, url: &str, to: &Path) {
    let response = reqwest::Client::new()
        .get(format!("{base}{url}"))
        .bearer_auth(key)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200, "{url}");
    std::fs::write(to, response.bytes().await.expect("bytes")).expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_generated_in_a_token_seal_and_timestamp_evidence_that_openssl_verifies() {
    let Some(hsm) = Hsm::new() else { return };
    let pki = tempfile::tempdir().expect("dir");
    let data = tempfile::tempdir().expect("dir");
    token_keys_certified(&hsm, pki.path(), data.path());
    let config_path = data.path().join("recommande.toml");
    std::fs::write(
        &config_path,
        config(pki.path(), "seal.pem", &hsm.uri("seal"), &hsm.uri("tsa")),
    )
    .expect("config");
    let pin = hsm.dir.path().join("pin");
    let key_out = hsm
        .recommande(data.path(), &pin)
        .env("RECOMMANDE_CONFIG", &config_path)
        .args(["api-key", "create", "--tenant", "Cabinet HSM"])
        .output()
        .expect("api-key");
    assert!(key_out.status.success(), "{}", text(&key_out));
    let api_key = String::from_utf8(key_out.stdout).expect("utf-8");
    let api_key = api_key.trim();

    let served = serve(&hsm, data.path(), &config_path, &pin)
        .await
        .expect("the service starts with its keys in the token");
    let letter = deposit(&served.base, api_key).await;
    let id = letter["id"].as_str().expect("id");
    let evidence = letter["evidence"][0]["id"].as_str().expect("evidence");
    let work = tempfile::tempdir().expect("dir");
    let file = |ext: &str| work.path().join(format!("record.{ext}"));
    for ext in ["json", "p7s", "tsr"] {
        let url = format!("/v1/letters/{id}/evidence/{evidence}.{ext}");
        fetch(&served.base, api_key, &url, &file(ext)).await;
    }
    let roots = pki.path().join("root.pem");
    let (ok, out) = crate::helpers::openssl_ts_verify(&file("json"), &file("tsr"), &roots);
    assert!(ok, "{out}");
    let (ok, out) = crate::helpers::openssl_cms_verify(&file("json"), &file("p7s"), &roots);
    assert!(ok, "{out}");
    // The seal was made by the token's certified key: openssl names its certificate.
    let signer = work.path().join("signer.pem");
    let (ok, out) = openssl(&[
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        path(&file("p7s")),
        "-content",
        path(&file("json")),
        "-CAfile",
        path(&roots),
        "-signer",
        path(&signer),
        "-out",
        "/dev/null",
    ]);
    assert!(ok, "{out}");
    let fingerprint = |cert: &Path| {
        let (ok, out) = openssl(&["x509", "-in", path(cert), "-noout", "-fingerprint"]);
        assert!(ok, "{out}");
        out
    };
    assert_eq!(
        fingerprint(&signer),
        fingerprint(&pki.path().join("seal.pem"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_or_a_certificate_of_another_key_refuses_the_start() {
    let Some(hsm) = Hsm::new() else { return };
    let pki = tempfile::tempdir().expect("dir");
    let data = tempfile::tempdir().expect("dir");
    token_keys_certified(&hsm, pki.path(), data.path());
    let right_pin = hsm.dir.path().join("pin");

    // The TSA's certificate given for the seal key.
    let mismatched = data.path().join("mismatched.toml");
    std::fs::write(
        &mismatched,
        config(pki.path(), "tsa.pem", &hsm.uri("seal"), &hsm.uri("tsa")),
    )
    .expect("config");
    let refused = serve(&hsm, data.path(), &mismatched, &right_pin)
        .await
        .err()
        .expect("refused: the certificate is not the seal key's");
    assert!(
        refused.contains("does not match key pkcs11:token=recommande-test;object=seal"),
        "{refused}"
    );

    // The right certificates, a wrong PIN.
    let good = data.path().join("good.toml");
    std::fs::write(
        &good,
        config(pki.path(), "seal.pem", &hsm.uri("seal"), &hsm.uri("tsa")),
    )
    .expect("config");
    let wrong_pin = data.path().join("wrong-pin");
    std::fs::write(&wrong_pin, "0000\n").expect("pin");
    let refused = serve(&hsm, data.path(), &good, &wrong_pin)
        .await
        .err()
        .expect("refused: wrong PIN");
    assert!(refused.contains("the PIN is wrong"), "{refused}");
    assert!(
        !refused.contains("0000"),
        "the PIN is never printed: {refused}"
    );

    // A key label the token does not hold.
    let missing = data.path().join("missing.toml");
    std::fs::write(
        &missing,
        config(
            pki.path(),
            "seal.pem",
            &hsm.uri("no-such-key"),
            &hsm.uri("tsa"),
        ),
    )
    .expect("config");
    let refused = serve(&hsm, data.path(), &missing, &right_pin)
        .await
        .err()
        .expect("refused: no such key");
    assert!(refused.contains("no private key matches"), "{refused}");

    // Keys in the token and an SMTP relay: qualified mode still refuses, naming exactly
    // what the service cannot provide yet, and never starts half-qualified.
    let qualified = data.path().join("qualified.toml");
    std::fs::write(
        &qualified,
        format!(
            "{}\n[qualification]\nmode = \"qualified\"\n[mail]\nsmtp_url = \"smtp://127.0.0.1:2525\"\n",
            config(pki.path(), "seal.pem", &hsm.uri("seal"), &hsm.uri("tsa"))
        ),
    )
    .expect("config");
    let refused = serve(&hsm, data.path(), &qualified, &right_pin)
        .await
        .err()
        .expect("refused: qualified prerequisites missing");
    assert!(refused.contains("qualified mode refused"), "{refused}");
    assert!(
        refused.contains("revocation: ") && refused.contains("identity: "),
        "{refused}"
    );
    for satisfied in [
        "pki.seal_key",
        "pki.seal_certificate",
        "timestamp.mode",
        "mail.smtp_url",
    ] {
        assert!(
            !refused.contains(&format!("{satisfied}: ")),
            "{satisfied}: {refused}"
        );
    }
}
