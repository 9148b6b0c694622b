//! Our JWT core against `jsonwebtoken` 9, through the `fuzz_jwt_diff` oracle: the committed
//! corpus (seeds and every regression) replays without a finding, real tokens of every
//! algorithm are accepted by both, and each documented difference is recognised as itself.
//!
//! The seed corpus is written by this file, not by hand:
//! `cargo test --test jwt_diff -- --ignored write_seed_corpus`.

#[path = "../fuzz/oracle/jwt_diff.rs"]
mod jwt_diff;

use jwt_diff::{compare, creds, structured, Bytes, Outcome, Rule, KEY};
use serde_json::json;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/fuzz_jwt_diff");

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

fn b64(s: &str) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(s.as_bytes())
}

/// Signs `header.payload` (given as JSON text) with credential `i`'s key.
fn token(i: usize, header: &str, payload: &str) -> String {
    let c = &creds()[i];
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &c.signer, c.theirs_alg).unwrap();
    format!("{input}.{sig}")
}

fn header(i: usize) -> String {
    format!(r#"{{"alg":"{}","typ":"JWT"}}"#, creds()[i].alg.as_str())
}

fn hs256() -> usize {
    0
}

#[test]
fn corpus_replays_without_a_finding() {
    let (mut replayed, mut accepted) = (0, 0);
    for entry in std::fs::read_dir(CORPUS).expect("the seed corpus is committed") {
        // A fuzzer running on the same corpus may remove an entry while we list it.
        let Ok(data) = std::fs::read(entry.unwrap().path()) else {
            continue;
        };
        for outcome in jwt_diff::check(&data) {
            assert!(!matches!(outcome, Outcome::Finding(_)), "{outcome:?}");
            accepted += usize::from(outcome == Outcome::Agree { accepted: true });
        }
        replayed += 1;
    }
    assert!(replayed >= 24, "{replayed} corpus entries");
    // The seeds are real tokens: each raw one under all four rules, each structured one once.
    assert!(accepted >= 12 * 4 + 12, "{accepted} accepted by both");
}

#[test]
fn real_tokens_of_every_algorithm_are_accepted_by_both() {
    let n = now();
    for i in 0..creds().len() {
        let payload = json!({"key": KEY, "exp": n + 3600, "nbf": n - 3600}).to_string();
        let t = token(i, &header(i), &payload);
        for rule in Rule::ALL {
            assert_eq!(
                compare(&t, &creds()[i], rule),
                Outcome::Agree { accepted: true },
                "{:?} {rule:?}",
                creds()[i].alg
            );
        }
        // Pinned: the same token refused by every other credential, on both sides.
        for (j, other) in creds().iter().enumerate().filter(|(j, _)| *j != i) {
            assert_eq!(
                compare(&t, other, Rule::Default),
                Outcome::Agree { accepted: false },
                "{:?} token, {j}",
                creds()[i].alg
            );
        }
    }
}

#[test]
fn expired_and_immature_tokens_are_refused_by_both() {
    let n = now();
    for (payload, rule) in [
        (json!({"key": KEY, "exp": n - 10}), Rule::Default),
        (json!({"key": KEY, "nbf": n + 10}), Rule::Default),
        (json!({"key": KEY}), Rule::Exp),
        (json!({"key": KEY, "exp": n + 10}), Rule::Nbf),
        (json!({"key": "someone-else", "exp": n + 10}), Rule::Default),
    ] {
        let t = token(hs256(), &header(hs256()), &payload.to_string());
        assert_eq!(
            compare(&t, &creds()[hs256()], rule),
            Outcome::Agree { accepted: false },
            "{payload} {rule:?}"
        );
    }
}

/// Each documented difference, made on purpose, is classified as itself (so a filter that
/// stopped matching, or matched too much, shows up here).
#[test]
fn each_known_difference_is_recognised() {
    // `time-boundary` needs `exp == now` while both sides look: run again when the clock
    // moved on to the next second during a round.
    for _ in 0..5 {
        let n = now();
        let outcomes = known_difference_outcomes(n);
        if now() == n {
            for (id, outcome) in outcomes {
                assert_eq!(outcome, Outcome::Known(id), "{id}");
            }
            return;
        }
    }
    panic!("the clock moved on during every round");
}

fn known_difference_outcomes(n: i64) -> Vec<(&'static str, Outcome)> {
    let c = &creds()[hs256()];
    let ok = json!({"key": KEY, "exp": n + 3600}).to_string();
    let good = token(hs256(), &header(hs256()), &ok);
    let (h, rest) = good.split_once('.').unwrap();
    let cases: Vec<(&'static str, String, Rule)> = vec![
        ("stray-dots", format!("{h}..{rest}"), Rule::Default),
        (
            "lenient-base64",
            {
                let padded = format!("{}=", b64(&ok));
                let input = format!("{h}.{padded}");
                let sig =
                    jsonwebtoken::crypto::sign(input.as_bytes(), &c.signer, c.theirs_alg).unwrap();
                format!("{input}.{sig}")
            },
            Rule::Default,
        ),
        (
            "typed-header",
            token(hs256(), r#"{"alg":"HS256","kid":7}"#, &ok),
            Rule::Default,
        ),
        (
            "untyped-header",
            token(
                hs256(),
                r#"[null,"HS256",null,null,null,null,null,null,null,null]"#,
                &ok,
            ),
            Rule::Default,
        ),
        (
            "duplicate-claim",
            token(
                hs256(),
                &header(hs256()),
                &format!(r#"{{"key":"{KEY}","exp":1,"exp":{}}}"#, n + 3600),
            ),
            Rule::Default,
        ),
        (
            "half-read-claim",
            token(
                hs256(),
                &header(hs256()),
                &json!({"key": KEY, "sub": ["a"]}).to_string(),
            ),
            Rule::Default,
        ),
        (
            "time-boundary",
            token(
                hs256(),
                &header(hs256()),
                &json!({"key": KEY, "exp": n}).to_string(),
            ),
            Rule::Default,
        ),
        (
            "not-u64",
            token(
                hs256(),
                &header(hs256()),
                &json!({"key": KEY, "exp": -5}).to_string(),
            ),
            Rule::Default,
        ),
        (
            "not-a-number",
            token(
                hs256(),
                &header(hs256()),
                &json!({"key": KEY, "exp": "tomorrow"}).to_string(),
            ),
            Rule::Default,
        ),
        (
            "not-a-number",
            token(
                hs256(),
                &header(hs256()),
                &json!({"key": KEY, "nbf": null}).to_string(),
            ),
            Rule::Default,
        ),
        (
            "too-long",
            token(
                hs256(),
                &header(hs256()),
                &json!({"key": KEY, "pad": "p".repeat(9000)}).to_string(),
            ),
            Rule::Default,
        ),
    ];
    cases
        .into_iter()
        .map(|(id, t, rule)| (id, compare(&t, c, rule)))
        .collect()
}

/// The structured mode makes tokens both sides accept when no mutation is chosen (all-zero
/// bytes), for every credential.
#[test]
fn unmutated_structured_tokens_verify_for_every_algorithm() {
    for i in 0..creds().len() {
        let bytes = [i as u8];
        let (raw, cred, rule) = structured(&mut Bytes(&bytes), now());
        assert_eq!(cred, i);
        assert_eq!(rule, Rule::Default);
        assert_eq!(
            compare(&raw, &creds()[cred], rule),
            Outcome::Agree { accepted: true },
            "{raw}"
        );
    }
}

/// Writes the seed corpus: for every algorithm, a real token (raw mode: the file is the token,
/// valid for ten years) and a structured-mode input that makes one.
#[test]
#[ignore = "writes fuzz/corpus/fuzz_jwt_diff; run by hand"]
fn write_seed_corpus() {
    std::fs::create_dir_all(CORPUS).unwrap();
    let n = now();
    for (i, c) in creds().iter().enumerate() {
        let alg = c.alg.as_str();
        let payload =
            json!({"key": KEY, "exp": n + 10 * 365 * 86400, "nbf": n - 60, "iss": "seed"});
        let t = token(i, &header(i), &payload.to_string());
        std::fs::write(format!("{CORPUS}/seed-raw-{alg}"), t).unwrap();
        std::fs::write(format!("{CORPUS}/seed-structured-{alg}"), [0x80, i as u8]).unwrap();
    }
}
