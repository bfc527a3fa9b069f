//! `POST /tsa` takes a DER `TimeStampReq` (RFC 3161 §2.4.1) from anyone; the parser behind
//! it must refuse bad requests with an error (answered as a rejection), never panic, and a
//! request it accepts must encode back to DER it accepts again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recommande::core::timestamp::TimestampRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = TimestampRequest::parse_der(data) {
        let again = TimestampRequest::parse_der(&request.to_der());
        assert!(
            again.is_ok(),
            "a parsed request re-encodes to DER the parser refuses"
        );
    }
});
