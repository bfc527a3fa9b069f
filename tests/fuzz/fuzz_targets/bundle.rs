//! Proof bundles come from anyone (`recommande verify`, the `/verify` upload page): the zip
//! container, the manifest, every record, seal and token inside are read from attacker bytes.
//! The verifier must answer a report or `UnusableBundle`, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use time::OffsetDateTime;

fuzz_target!(|data: &[u8]| {
    // A fixed verification time keeps runs reproducible (time is an argument).
    let at =
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    if let Ok(report) = recommande::core::bundle::verify::verify_bundle(Cursor::new(data), None, at) {
        let _ = report.is_valid();
    }
});
