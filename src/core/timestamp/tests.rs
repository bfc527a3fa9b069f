//! Tests of the embedded TSA and token verification, with `openssl ts` and the
//! `rfc3161-client` Python package as external oracles.

use super::*;
use crate::core::pki::test_support::{TempDir, dev_pki};
use crate::core::trust::TrustAnchors;
use std::path::Path;
use std::process::{Command, Output};

const POLICY: &str = "1.3.6.1.4.1.99999.1.1";
const DATA: &[u8] = br#"{"event":"acceptance","letter":"0192f1c2"}"#;

fn authority(epoch: u64) -> TimestampAuthority {
    let tsa = dev_pki().material.tsa.clone().expect("tsa identity");
    TimestampAuthority::new(tsa, POLICY, SerialNumbers::new(epoch)).expect("tsa")
}

fn openssl(args: &[&str], dir: &Path) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn hash_oid_constants_match_the_encoder() {
    assert_eq!(asn1::oid(oids::SHA256).expect("oid"), SHA256_OID_DER);
    assert_eq!(asn1::oid(oids::SHA384).expect("oid"), SHA384_OID_DER);
    assert_eq!(asn1::oid(oids::SHA512).expect("oid"), SHA512_OID_DER);
}

#[test]
fn openssl_verifies_tokens() {
    let tsa = authority(1);
    let dir = TempDir::new("ts");
    dir.file("root.pem", dev_pki().material.roots_pem.as_bytes());
    dir.file("data.json", DATA);
    let token = tsa
        .timestamp_sha256(seal::sha256(DATA), dev_pki().now)
        .expect("token");
    dir.file("token.der", &token);
    let verify = |data: &str| {
        openssl(
            &[
                "ts",
                "-verify",
                "-data",
                data,
                "-in",
                "token.der",
                "-token_in",
                "-CAfile",
                "root.pem",
            ],
            dir.path(),
        )
    };
    let out = verify("data.json");
    assert!(out.status.success(), "openssl ts -verify: {}", text(&out));
    let mut changed = DATA.to_vec();
    changed[3] ^= 0x01;
    dir.file("changed.json", &changed);
    assert!(!verify("changed.json").status.success());

    // With a nonce, shown by `ts -reply -text` with policy and serial.
    let request =
        TimestampRequest::for_sha256(seal::sha256(DATA), Some(vec![0x01, 0x23, 0xab]), true);
    let token = tsa.issue_token(&request, dev_pki().now).expect("token");
    dir.file("token2.der", &token);
    let out = openssl(
        &["ts", "-reply", "-in", "token2.der", "-token_in", "-text"],
        dir.path(),
    );
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains(&format!("Policy OID: {POLICY}")), "{shown}");
    assert!(shown.contains("Nonce: 0x0123AB"), "{shown}");
    // Epoch 1, second serial of this authority: 0x1_0000000000000002.
    assert!(
        shown.contains("Serial number: 0x010000000000000002"),
        "{shown}"
    );
    assert!(shown.contains("Accuracy: 0x01 seconds"), "{shown}");
    assert!(shown.contains("recommande development TSA"), "{shown}");
}

#[test]
fn openssl_queries_are_answered() {
    let tsa = authority(2);
    let dir = TempDir::new("tsq");
    dir.file("root.pem", dev_pki().material.roots_pem.as_bytes());
    dir.file("data.json", DATA);
    for (name, extra) in [("nononce", &["-no_nonce"][..]), ("nonce", &[][..])] {
        let tsq = format!("{name}.tsq");
        let tsr = format!("{name}.tsr");
        let mut args = vec![
            "ts",
            "-query",
            "-data",
            "data.json",
            "-sha256",
            "-cert",
            "-out",
            &tsq,
        ];
        args.extend_from_slice(extra);
        let out = openssl(&args, dir.path());
        assert!(out.status.success(), "{}", text(&out));
        let request_der = std::fs::read(dir.path().join(&tsq)).expect("tsq");
        let request = TimestampRequest::parse_der(&request_der).expect("parse request");
        assert!(request.cert_req);
        assert_eq!(request.hashed_message, seal::sha256(DATA).to_vec());
        assert_eq!(request.nonce.is_some(), name == "nonce");
        let response = tsa.respond(&request_der, OffsetDateTime::now_utc());
        dir.file(&tsr, &response);
        let out = openssl(
            &[
                "ts",
                "-verify",
                "-queryfile",
                &tsq,
                "-in",
                &tsr,
                "-CAfile",
                "root.pem",
            ],
            dir.path(),
        );
        assert!(
            out.status.success(),
            "openssl ts -verify -queryfile: {}",
            text(&out)
        );
        // Our own reader agrees, and the imprint was copied exactly (OpenSSL
        // writes NULL hash parameters).
        let parsed = ParsedToken::from_response(&response).expect("granted");
        assert_eq!(parsed.info().nonce, request.nonce);
        let imprint = asn1::sequence(&[
            &asn1::sequence(&[&SHA256_OID_DER[..], &asn1::null()]),
            &asn1::octet_string(&seal::sha256(DATA)),
        ]);
        assert!(
            parsed
                .tst_info_der()
                .windows(imprint.len())
                .any(|w| w == imprint)
        );
    }
    // A SHA-1 query is refused with badAlg, which openssl can read.
    let out = openssl(
        &[
            "ts",
            "-query",
            "-data",
            "data.json",
            "-sha1",
            "-no_nonce",
            "-out",
            "sha1.tsq",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let request_der = std::fs::read(dir.path().join("sha1.tsq")).expect("tsq");
    let response = tsa.respond(&request_der, OffsetDateTime::now_utc());
    dir.file("sha1.tsr", &response);
    let out = openssl(&["ts", "-reply", "-in", "sha1.tsr", "-text"], dir.path());
    let shown = text(&out);
    assert!(
        shown.contains("Status: Rejected") || shown.contains("rejection"),
        "{shown}"
    );
    assert!(
        shown.contains("unrecognized or unsupported algorithm identifier"),
        "{shown}"
    );
    let err = ParsedToken::from_response(&response).expect_err("rejected");
    assert!(err.to_string().contains("badAlg"), "{err}");
}

#[test]
fn rejections_carry_the_right_fail_info() {
    let tsa = authority(3);
    let now = OffsetDateTime::now_utc();
    let mut request = TimestampRequest::for_sha256([7; 32], None, false);
    request.policy = Some("1.2.3".into());
    let err = ParsedToken::from_response(&tsa.respond(&request.to_der(), now)).expect_err("policy");
    assert!(err.to_string().contains("unacceptedPolicy"), "{err}");
    request.policy = Some(POLICY.into());
    let ok = ParsedToken::from_response(&tsa.respond(&request.to_der(), now)).expect("same policy");
    assert_eq!(ok.info().policy, POLICY);
    assert!(
        ok.certificates().is_empty(),
        "certReq false: no certificates"
    );
    let err =
        ParsedToken::from_response(&tsa.respond(b"\x30\x03\x02\x01\x01", now)).expect_err("bad");
    assert!(err.to_string().contains("badDataFormat"), "{err}");
    let mut short = TimestampRequest::for_sha256([7; 32], None, false);
    short.hashed_message.pop();
    let err = ParsedToken::from_response(&tsa.respond(&short.to_der(), now)).expect_err("short");
    assert!(err.to_string().contains("badDataFormat"), "{err}");
    assert!(matches!(
        tsa.issue_token(&short, now),
        Err(TimestampError::ImprintLength { found: 31, .. })
    ));
    // Request round trip.
    let r = TimestampRequest {
        hash_algorithm: HashAlgorithm::Sha512,
        hashed_message: vec![1; 64],
        policy: Some(POLICY.into()),
        nonce: Some(vec![0x80, 0]),
        cert_req: true,
    };
    assert_eq!(TimestampRequest::parse_der(&r.to_der()).expect("parse"), r);
}

#[test]
fn own_verifier_accepts_ours_and_rejects_flipped_bytes() {
    let tsa = authority(4);
    let pki = dev_pki();
    let anchors = TrustAnchors::from_der(pki.material.roots_der.clone()).expect("anchors");
    let request = TimestampRequest::for_sha256(seal::sha256(DATA), Some(vec![9, 9]), true);
    let token = tsa.issue_token(&request, pki.now).expect("token");
    let parsed = ParsedToken::parse(&token).expect("parse");
    let signer = parsed.verify_signature(&[]).expect("signature");
    parsed.check_imprint(DATA).expect("imprint");
    trust::verify_certificate_path(
        &signer,
        parsed.certificates(),
        &anchors,
        parsed.info().gen_time,
        CertificatePurpose::Timestamping,
    )
    .expect("path");
    assert_eq!(
        parsed.info().gen_time,
        pki.now.replace_nanosecond(0).expect("ns")
    );
    assert_eq!(parsed.info().accuracy_micros, Some(1_000_000));
    assert_eq!(parsed.info().nonce, Some(vec![9, 9]));
    assert_eq!(parsed.parts.version, 3);

    let mut data = DATA.to_vec();
    data[0] ^= 0x01;
    assert!(matches!(
        parsed.check_imprint(&data),
        Err(TimestampError::ImprintMismatch)
    ));

    let accepted = |bytes: &[u8]| -> bool {
        ParsedToken::parse(bytes)
            .and_then(|p| p.verify_signature(&[]).map(|_| p))
            .and_then(|p| p.check_imprint(DATA))
            .is_ok()
    };
    assert!(accepted(&token));
    let find = |needle: &[u8]| -> usize {
        token
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("present")
    };
    let tst_start = find(parsed.tst_info_der());
    let attrs = &parsed.parts.signer.signed_attrs;
    let attrs_start = find(&attrs[1..]) - 1;
    let sig_len = parsed.parts.signer.signature.len();
    let regions = [
        (
            "TSTInfo",
            tst_start..tst_start + parsed.tst_info_der().len(),
        ),
        ("signed attributes", attrs_start..attrs_start + attrs.len()),
        ("signature", token.len() - sig_len..token.len()),
    ];
    for (what, range) in regions {
        for i in range {
            let mut bad = token.clone();
            bad[i] ^= 0x01;
            assert!(
                !accepted(&bad),
                "flipped byte {i} in the {what} was accepted"
            );
        }
    }
    // Without certReq the signer must come from outside.
    let bare = tsa
        .issue_token(
            &TimestampRequest::for_sha256(seal::sha256(DATA), None, false),
            pki.now,
        )
        .expect("token");
    let bare = ParsedToken::parse(&bare).expect("parse");
    assert!(matches!(
        bare.verify_signature(&[]),
        Err(TimestampError::Cms(SealError::SignerNotFound(_)))
    ));
    let tsa_cert = pki
        .material
        .tsa
        .as_ref()
        .expect("tsa")
        .certificate_der()
        .to_vec();
    assert_eq!(
        bare.verify_signature(std::slice::from_ref(&tsa_cert))
            .expect("extra"),
        tsa_cert
    );
}

#[test]
fn authority_refuses_a_seal_certificate() {
    let err = TimestampAuthority::new(
        dev_pki().material.seal.clone(),
        POLICY,
        SerialNumbers::new(1),
    )
    .expect_err("not a TSA certificate");
    assert_eq!(
        err.to_string(),
        "TSA certificate extended key usage must be critical and contain only timeStamping"
    );
    let tsa = dev_pki().material.tsa.clone().expect("tsa");
    assert!(TimestampAuthority::new(tsa, "1.x", SerialNumbers::new(1)).is_err());
}

#[test]
fn serials_strictly_increase_and_epochs_never_overlap() {
    let a = SerialNumbers::new(5);
    let b = SerialNumbers::new(6);
    let mut last = 0u128;
    for _ in 0..1000 {
        let s = a.next().expect("serial");
        assert!(s > last);
        last = s;
    }
    // Every serial of epoch 6 is above every possible serial of epoch 5.
    assert!(b.next().expect("serial") > (5u128 << 64 | u128::from(u64::MAX)));
    assert_eq!(b.next().expect("serial"), 6u128 << 64 | 2);
    let end = SerialNumbers::starting_at(9, u64::MAX - 1);
    assert_eq!(
        end.next().expect("last"),
        9u128 << 64 | u128::from(u64::MAX - 1)
    );
    assert!(matches!(
        end.next(),
        Err(TimestampError::SerialsExhausted(9))
    ));
    // Concurrent use never repeats.
    let shared = std::sync::Arc::new(SerialNumbers::new(1));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let s = shared.clone();
            std::thread::spawn(move || {
                (0..500)
                    .map(|_| s.next().expect("serial"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<u128> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("thread"))
        .collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 2000);
}

const PY_ORACLE: &str = r#"
import sys
from cryptography import x509
from rfc3161_client import decode_timestamp_response, VerifierBuilder
resp = decode_timestamp_response(open(sys.argv[1], 'rb').read())
root = x509.load_pem_x509_certificate(open(sys.argv[2], 'rb').read())
data = open(sys.argv[3], 'rb').read()
verifier = VerifierBuilder().add_root_certificate(root).nonce(int(sys.argv[4])).build()
verifier.verify_message(resp, data)
print("verified serial", resp.tst_info.serial_number)
"#;

#[test]
fn python_rfc3161_client_verifies_our_responses() {
    let probe = Command::new("python3")
        .args(["-c", "import rfc3161_client"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        if std::env::var_os("CI").is_some() {
            panic!("python3 module rfc3161_client is missing (pip install rfc3161-client)");
        }
        eprintln!(
            "\n************************************************************\n\
             NOTICE: python3 module rfc3161_client missing; the strict-DER\n\
             oracle test was SKIPPED. Install it: pip install rfc3161-client\n\
             ************************************************************\n"
        );
        return;
    }
    let tsa = authority(8);
    let dir = TempDir::new("py");
    let root = dir.file("root.pem", dev_pki().material.roots_pem.as_bytes());
    let data = dir.file("data.json", DATA);
    let nonce = 0x1234_5678_9abc_def0u64;
    let request =
        TimestampRequest::for_sha256(seal::sha256(DATA), Some(nonce.to_be_bytes().to_vec()), true);
    let response = tsa.respond(&request.to_der(), OffsetDateTime::now_utc());
    let resp = dir.file("resp.tsr", &response);
    let run = |data: &Path| {
        Command::new("python3")
            .args(["-c", PY_ORACLE])
            .arg(&resp)
            .arg(&root)
            .arg(data)
            .arg(nonce.to_string())
            .output()
            .expect("python3")
    };
    let out = run(&data);
    assert!(
        out.status.success(),
        "rfc3161_client rejected our token: {}",
        text(&out)
    );
    let mut changed = DATA.to_vec();
    changed[5] ^= 0x01;
    let changed = dir.file("changed.json", &changed);
    assert!(
        !run(&changed).status.success(),
        "rfc3161_client accepted changed data"
    );
}

/// Tokens from an outside TSA (OpenSSL acting as one): RSA-2048 signature,
/// fractional-second genTime, SHA-384 / SHA-512 imprints, ESSCertID v1 (SHA-1)
/// or v2 signing-certificate attributes, accuracy with millis/micros.
#[test]
fn accepts_outside_rsa_tokens() {
    let dir = TempDir::new("rsa-tsa");
    let p = dir.path();
    let run = |args: &[&str]| {
        let out = openssl(args, p);
        assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "30",
        "-subj",
        "/CN=Outside RSA root",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "tsa.key",
        "-out",
        "tsa.csr",
        "-subj",
        "/CN=Outside RSA TSA",
    ]);
    dir.file(
        "ext.cnf",
        b"extendedKeyUsage=critical,timeStamping\nkeyUsage=critical,digitalSignature\n\
          basicConstraints=CA:FALSE\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    );
    run(&[
        "x509",
        "-req",
        "-in",
        "tsa.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "tsa.pem",
        "-days",
        "30",
        "-sha256",
        "-extfile",
        "ext.cnf",
    ]);
    dir.file("data.json", DATA);
    let anchors =
        TrustAnchors::from_pem(&std::fs::read(p.join("ca.pem")).expect("ca")).expect("anchors");
    for (digest, ess, signer_digest) in
        [("sha384", "sha1", "sha256"), ("sha512", "sha256", "sha512")]
    {
        let cnf = format!(
            "[tsa]\ndefault_tsa = t\n[t]\nserial = {dir}/serial\ncrypto_device = builtin\n\
             signer_cert = {dir}/tsa.pem\ncerts = {dir}/ca.pem\nsigner_key = {dir}/tsa.key\n\
             signer_digest = {signer_digest}\ndefault_policy = 1.2.3.4.1\n\
             digests = sha256, sha384, sha512\naccuracy = secs:1, millisecs:500, microsecs:100\n\
             clock_precision_digits = 3\nordering = yes\ntsa_name = yes\n\
             ess_cert_id_chain = no\ness_cert_id_alg = {ess}\n",
            dir = p.display()
        );
        dir.file("tsa.cnf", cnf.as_bytes());
        dir.file("serial", b"01\n");
        run(&[
            "ts",
            "-query",
            "-data",
            "data.json",
            &format!("-{digest}"),
            "-cert",
            "-out",
            "q.tsq",
        ]);
        run(&[
            "ts",
            "-reply",
            "-config",
            "tsa.cnf",
            "-queryfile",
            "q.tsq",
            "-out",
            "r.tsr",
        ]);
        let response = std::fs::read(p.join("r.tsr")).expect("tsr");
        let token = ParsedToken::from_response(&response).expect("outside token");
        let info = token.info();
        assert_eq!(info.policy, "1.2.3.4.1");
        assert_eq!(
            info.hash_algorithm.oid(),
            if digest == "sha384" {
                oids::SHA384
            } else {
                oids::SHA512
            }
        );
        assert_eq!(info.accuracy_micros, Some(1_500_100));
        let ess = if ess == "sha1" {
            cms_oids::SIGNING_CERTIFICATE
        } else {
            cms_oids::SIGNING_CERTIFICATE_V2
        };
        assert!(
            token.parts.signer.attributes.iter().any(|(t, _)| t == ess),
            "{ess} attribute"
        );
        assert_eq!(token.parts.signer.signature_algorithm, oids::RSA_ENCRYPTION);
        token.check_imprint(DATA).expect("imprint");
        let signer = token.verify_signature(&[]).expect("RSA signature");
        trust::verify_certificate_path(
            &signer,
            token.certificates(),
            &anchors,
            info.gen_time,
            CertificatePurpose::Timestamping,
        )
        .expect("RSA path");
        // And a flipped TSTInfo byte is caught.
        let der = token.token_der().to_vec();
        let start = der
            .windows(token.tst_info_der().len())
            .position(|w| w == token.tst_info_der())
            .expect("tst");
        let mut bad = der.clone();
        bad[start + token.tst_info_der().len() - 3] ^= 0x01;
        let rejected = ParsedToken::parse(&bad)
            .and_then(|t| t.verify_signature(&[]))
            .is_err();
        assert!(rejected);
    }
}
