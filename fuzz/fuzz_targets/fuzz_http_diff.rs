//! `fuzz_http_diff`: arbitrary bytes as the start of a connection, parsed as a request head by
//! our `parse_request` and by httparse alone, with the same number of header slots.
//!
//! Guards against the gateway reading a head differently from a strict parser: accepting what
//! httparse refuses or finds incomplete, disagreeing on where the head ends or on any field,
//! or refusing valid heads for a reason that is not one of the documented, deliberate
//! strictness rules (the table in `oracle/http_diff.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../oracle/http_diff.rs"]
mod http_diff;

fuzz_target!(|data: &[u8]| {
    if let Err(finding) = http_diff::compare(data) {
        panic!("{finding}\ninput: {:?}", String::from_utf8_lossy(data));
    }
});
