//! The strict DER reader and what is built on it: RFC 3161 tokens and responses, CMS
//! SignedData seals (RFC 5652), X.509 certificates (RFC 5280) and PEM trust anchors. All of
//! them reach the service from outside (bundles, a remote TSA's answers, operator files).
#![no_main]

use libfuzzer_sys::fuzz_target;
use recommande::core::asn1::{self, Der, Tlv};
use recommande::core::seal::ParsedSeal;
use recommande::core::timestamp::ParsedToken;
use recommande::core::trust::{self, Certificate, TrustAnchors};
use time::OffsetDateTime;

/// Walks every element, calling each typed accessor; depth is bounded like any real reader.
fn walk(tlv: &Tlv<'_>, depth: usize) {
    let _ = tlv.u64();
    let _ = tlv.oid();
    let _ = tlv.boolean();
    let _ = tlv.bit_string();
    let _ = tlv.named_bits();
    let _ = tlv.time();
    let _ = tlv.integer_bytes();
    let _ = tlv.unsigned_integer_bytes();
    if depth < 32 && tlv.is_constructed() {
        if let Ok(children) = tlv.children_vec() {
            for child in &children {
                walk(child, depth + 1);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut der = Der::new(data);
    while let Ok(tlv) = der.read() {
        walk(&tlv, 0);
    }
    let _ = asn1::parse_generalized_time(data);
    let _ = asn1::parse_utc_time(data);
    let _ = asn1::oid_to_string(data);

    let at =
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    if let Ok(token) = ParsedToken::parse(data) {
        let _ = token.info();
        let _ = token.verify_signature(&[]);
        let _ = token.check_imprint(b"record");
    }
    if let Ok(token) = ParsedToken::from_response(data) {
        let _ = token.verify_signature(&[]);
    }
    if let Ok(seal) = ParsedSeal::parse(data) {
        let _ = seal.signer_certificate();
        let _ = seal.signing_time();
        let _ = seal.verify_signature(b"record");
    }
    if let Ok(cert) = Certificate::parse(data) {
        let _ = cert.subject_string();
        let _ = cert.key_usage();
        let _ = cert.extended_key_usage();
        let _ = cert.basic_constraints();
        let _ = cert.subject_key_identifier();
        let _ = cert.authority_key_identifier();
        let _ = cert.is_qualified();
        let _ = cert.check_validity(at);
    }
    let _ = trust::pem_blocks(data, "CERTIFICATE");
    let _ = TrustAnchors::from_pem(data);
});
