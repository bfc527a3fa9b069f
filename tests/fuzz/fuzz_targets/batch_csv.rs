//! `POST /v1/batches` bodies (CSV or JSON) and `recommande send` files are the caller's bytes:
//! the batch readers and the per-row checks must answer rows or errors, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recommande::domain::batch;

fuzz_target!(|data: &[u8]| {
    for input in [batch::read_csv(data, None), batch::read_json(data)]
        .into_iter()
        .flatten()
    {
        for row in &input.rows {
            let _ = batch::check_letter(row);
        }
    }
});
