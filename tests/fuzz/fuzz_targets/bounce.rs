//! `POST /v1/bounces` carries a delivery status notification (RFC 3464) that a remote mail
//! server wrote: the DSN parser must find our letter or nothing, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The route reads the body as text (lossily, like mail that is not quite UTF-8).
    let text = String::from_utf8_lossy(data);
    let _ = recommande::domain::bounce::parse(&text, "recommande.localhost");
});
