//! `fuzz_jwt_diff`: a token (raw bytes, or a valid token of a random algorithm mutated as the
//! bytes choose), a credential and a fixed clock, verified by our JWT core on `jwt-auth`'s path
//! and by `jsonwebtoken` 9 with the same pinned algorithm and the same `exp`/`nbf` rules
//! (leeway 0).
//!
//! Guards against accepting a token a mature independent verifier refuses (a forged, expired
//! or malformed token let through) and against refusing one it accepts (a real client locked
//! out). Any disagreement that is not one of the documented, intended differences listed in
//! `fuzz/oracle/jwt_diff.rs` panics; that file holds the whole oracle, shared with the corpus
//! replay in `tests/jwt_diff.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../oracle/jwt_diff.rs"]
mod jwt_diff;

use jwt_diff::Outcome;

fuzz_target!(|data: &[u8]| {
    for outcome in jwt_diff::check(data) {
        if let Outcome::Finding(what) = outcome {
            panic!("ours and jsonwebtoken disagree: {what}");
        }
    }
});
