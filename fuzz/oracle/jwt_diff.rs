//! The oracle of `fuzz_jwt_diff`: one token, one credential and one clock, judged by our JWT
//! core the way `jwt-auth` judges it and by `jsonwebtoken` 9, and the two verdicts compared.
//! Shared, by `#[path]`, with `tests/jwt_diff.rs`, which replays the committed corpus through it
//! under `cargo test` and writes the seed corpus.
//!
//! **Ours** is `jwt-auth`'s path: `decode_keyed` in the APISIX dialect, the key claim must be
//! the credential's key, the algorithm is pinned by the credential, the signature is checked,
//! then `apisix_claims` with a grace period of 0 and the rule's `claims_to_verify`.
//!
//! **Theirs** is `jsonwebtoken::decode::<Map<String, Value>>` with a `Validation` for the
//! credential's single algorithm, `leeway = 0`, `validate_aud = false` (ours has no audience),
//! `validate_exp` / `validate_nbf` / `required_spec_claims` set from the same rule, then the
//! same key-claim lookup on the claims it returns:
//!
//! | rule (`claims_to_verify`) | ours                              | `validate_exp` | `validate_nbf` | required      |
//! |---------------------------|-----------------------------------|----------------|----------------|---------------|
//! | `Default` (unset)         | `nbf`, `exp` checked when present | true           | true           | none          |
//! | `Exp` (`["exp"]`)         | `exp` required                    | true           | false          | `exp`         |
//! | `Nbf` (`["nbf"]`)         | `nbf` required                    | false          | true           | `nbf`         |
//! | `ExpNbf`                  | both required                     | true           | true           | `exp`, `nbf`  |
//!
//! **The clock.** `jsonwebtoken` reads the system clock itself, so the clock is fixed by
//! sampling it before and after its call and retrying until both samples are the same second;
//! ours is then given that second.
//!
//! **Credentials.** Every algorithm both sides implement (ES512 is not in `jsonwebtoken` 9; the
//! `fuzz_jwt` target and the openssl vectors cover it): HS256/384/512 with one secret, RS* and
//! PS* with one 2048-bit key (ours also takes 1024-bit keys for RS256/RS512, `jsonwebtoken`
//! never does, so a smaller key would only measure that), ES256, ES384, EdDSA.
//!
//! **Known and intended differences.** A disagreement is filtered only when one of these
//! predicates holds *and* the verdicts point the way its row says; any other disagreement is a
//! finding ([`Outcome::Finding`], a panic in the fuzz target).
//!
//! | id | predicate on the input | ours | theirs | why |
//! |----|------------------------|------|--------|-----|
//! | `stray-dots` | an empty segment (`a..b.c`, a leading or trailing `.`) | accepts | refuses | APISIX's `load_jwt` drops empty segments and verifies the re-joined `header.payload` |
//! | `lenient-base64` | header or payload is not strict unpadded base64url | accepts | refuses | APISIX decodes them with `ngx.decode_base64` after mapping `-_` to `+/`: padding and the standard alphabet pass |
//! | `typed-header` | the header is a JSON object, but not a `jsonwebtoken::Header` (a `kid`, `typ`, `cty`, `jku`, `x5u`, `x5t`, `x5c` or `jwk` of another type, or a repeated member) | accepts | refuses | APISIX and Kong read only `alg` (cjson: the last duplicate wins), and so do we |
//! | `untyped-header` | the header is a `jsonwebtoken::Header` but not a JSON object (members it ignores hold invalid UTF-8 or an out-of-range number, or it is a positional array) | refuses | accepts | RFC 7515 §4: the JOSE header is a JSON object, and JSON text is UTF-8 |
//! | `duplicate-claim` | a registered claim `exp`, `nbf`, `iss`, `sub` or `aud` appears twice | accepts | refuses | RFC 7519 §4 lets a parser keep the last duplicate, as cjson does; serde's derive refuses |
//! | `half-read-claim` | `exp`, `nbf` or `sub` holds an array or an object | accepts | refuses | `jsonwebtoken` means to ignore a registered claim it cannot read, but its JSON parser is then left inside the value and the whole payload fails; ours reads `sub` not at all and `exp`/`nbf` only when checked (found by this target) |
//! | `time-boundary` | a checked `exp` or `nbf` is a number within 1 s of now | refuses | accepts | APISIX refuses `exp <= now` and `nbf >= now`; `jsonwebtoken` accepts `exp == now` and `nbf == now`, after rounding fractions to the nearest second |
//! | `not-u64` | a checked `exp` or `nbf` is a negative number or one of 2^64 or more | either | either | `jsonwebtoken` reads them as u64 and otherwise treats the claim as absent (optional) or missing (required); APISIX compares the number as it is |
//! | `not-a-number` | a checked `exp` or `nbf` is a string, a boolean, `null`, an array or an object | refuses | accepts | APISIX refuses `claim exp is not a number` (cjson's `null` is a value, not an absent claim); `jsonwebtoken` ignores a claim it cannot parse, and `null`, unless it is required |
//! | `too-long` | the token is longer than `MAX_TOKEN_BYTES` | refuses | accepts | a bound on what a request can make the gateway decode |

#![allow(dead_code)]

use std::sync::OnceLock;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use portcullis::jwt::{apisix_claims, decode_keyed, Alg, Claim, ClaimValue, Dialect, VerifyKey};
use serde_json::{Map, Value};

/// The key claim every credential is looked up by, and its value.
pub const KEY: &str = "user-key";

const SECRET: &[u8] = b"diff-fuzz-secret-0123456789abcdef";

/// One credential, as each side holds it.
pub struct Cred {
    pub alg: Alg,
    pub ours: VerifyKey,
    pub theirs: DecodingKey,
    pub theirs_alg: Algorithm,
    /// For signing the tokens the structured mode makes.
    pub signer: EncodingKey,
    /// The public key PEM (the HMAC secret an algorithm-confusion attack would use).
    pub public_pem: Vec<u8>,
}

fn testdata(file: &str) -> Vec<u8> {
    let path = format!("{}/testdata/jwt/{file}", portcullis_root());
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The repository root, whether this file is compiled into the fuzz crate or a test.
fn portcullis_root() -> &'static str {
    let dir = env!("CARGO_MANIFEST_DIR");
    if dir.ends_with("/fuzz") {
        concat!(env!("CARGO_MANIFEST_DIR"), "/..")
    } else {
        env!("CARGO_MANIFEST_DIR")
    }
}

fn their_alg(alg: Alg) -> Algorithm {
    match alg {
        Alg::HS256 => Algorithm::HS256,
        Alg::HS384 => Algorithm::HS384,
        Alg::HS512 => Algorithm::HS512,
        Alg::RS256 => Algorithm::RS256,
        Alg::RS384 => Algorithm::RS384,
        Alg::RS512 => Algorithm::RS512,
        Alg::PS256 => Algorithm::PS256,
        Alg::PS384 => Algorithm::PS384,
        Alg::PS512 => Algorithm::PS512,
        Alg::ES256 => Algorithm::ES256,
        Alg::ES384 => Algorithm::ES384,
        Alg::EdDSA => Algorithm::EdDSA,
        Alg::ES512 => unreachable!("jsonwebtoken 9 has no ES512; it is not a credential here"),
    }
}

/// The credentials, one per algorithm both sides implement, in [`Alg::ALL`] order.
pub fn creds() -> &'static [Cred] {
    static CREDS: OnceLock<Vec<Cred>> = OnceLock::new();
    CREDS.get_or_init(|| {
        Alg::ALL
            .into_iter()
            .filter(|&a| a != Alg::ES512)
            .map(|alg| {
                let (private, public) = match alg {
                    a if a.is_hmac() => ("", ""),
                    a if a.is_rsa() => ("rsa2048.pem", "rsa2048.pub.pem"),
                    Alg::ES256 => ("ecp256.pem", "ecp256.pub.pem"),
                    Alg::ES384 => ("ecp384.pem", "ecp384.pub.pem"),
                    _ => ("ed25519.pem", "ed25519.pub.pem"),
                };
                if alg.is_hmac() {
                    return Cred {
                        alg,
                        ours: VerifyKey::hmac(alg, SECRET),
                        theirs: DecodingKey::from_secret(SECRET),
                        theirs_alg: their_alg(alg),
                        signer: EncodingKey::from_secret(SECRET),
                        public_pem: Vec::new(),
                    };
                }
                let (sk, pk) = (testdata(private), testdata(public));
                let text = String::from_utf8(pk.clone()).expect("PEM is text");
                let ours = VerifyKey::public_pem(alg, &text).expect("fixture public key");
                let (theirs, signer) = if alg.is_rsa() {
                    (
                        DecodingKey::from_rsa_pem(&pk),
                        EncodingKey::from_rsa_pem(&sk),
                    )
                } else if alg.is_ecdsa() {
                    (DecodingKey::from_ec_pem(&pk), EncodingKey::from_ec_pem(&sk))
                } else {
                    (DecodingKey::from_ed_pem(&pk), EncodingKey::from_ed_pem(&sk))
                };
                Cred {
                    alg,
                    ours,
                    theirs: theirs.expect("jsonwebtoken reads the fixture public key"),
                    theirs_alg: their_alg(alg),
                    signer: signer.expect("jsonwebtoken reads the fixture private key"),
                    public_pem: pk,
                }
            })
            .collect()
    })
}

/// `claims_to_verify` of the route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    Default,
    Exp,
    Nbf,
    ExpNbf,
}

impl Rule {
    pub const ALL: [Rule; 4] = [Rule::Default, Rule::Exp, Rule::Nbf, Rule::ExpNbf];

    fn ours(self) -> Option<&'static [Claim]> {
        match self {
            Rule::Default => None,
            Rule::Exp => Some(&[Claim::Exp]),
            Rule::Nbf => Some(&[Claim::Nbf]),
            Rule::ExpNbf => Some(&[Claim::Exp, Claim::Nbf]),
        }
    }

    fn checks_exp(self) -> bool {
        self != Rule::Nbf
    }

    fn checks_nbf(self) -> bool {
        self != Rule::Exp
    }

    fn validation(self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = 0;
        v.validate_aud = false;
        v.validate_exp = self.checks_exp();
        v.validate_nbf = self.checks_nbf();
        v.required_spec_claims.clear();
        match self {
            Rule::Default => {}
            Rule::Exp => v.set_required_spec_claims(&["exp"]),
            Rule::Nbf => v.set_required_spec_claims(&["nbf"]),
            Rule::ExpNbf => v.set_required_spec_claims(&["exp", "nbf"]),
        }
        v
    }
}

/// `jwt-auth`'s verdict (the plugin's `authenticate`, minus the token cache and the index).
pub fn ours(raw: &str, cred: &Cred, rule: Rule, now: i64) -> Result<(), String> {
    let token = decode_keyed(raw, Dialect::Apisix, "key").map_err(|e| e.to_string())?;
    match token.key() {
        ClaimValue::Str(k) if k == KEY => {}
        other => return Err(format!("no credential for key claim {other:?}")),
    }
    if token.header_alg() != Some(cred.alg.as_str()) {
        return Err("algorithm mismatch".into());
    }
    token.verify(&cred.ours).map_err(|e| e.to_string())?;
    apisix_claims(token.times(), rule.ours(), now, 0)
}

/// `jsonwebtoken`'s verdict and the second it judged at.
pub fn theirs(raw: &str, cred: &Cred, rule: Rule) -> (Result<(), String>, i64) {
    let validation = rule.validation(cred.theirs_alg);
    loop {
        let before = jsonwebtoken::get_current_timestamp();
        let r = jsonwebtoken::decode::<Map<String, Value>>(raw, &cred.theirs, &validation);
        if jsonwebtoken::get_current_timestamp() != before {
            continue;
        }
        let verdict = match r {
            Err(e) => Err(format!("{:?}", e.kind())),
            Ok(data) if data.claims.get("key") == Some(&Value::String(KEY.into())) => Ok(()),
            Ok(_) => Err("no credential for the key claim".into()),
        };
        return (verdict, before as i64);
    }
}

/// What a comparison found.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Both accept or both refuse.
    Agree { accepted: bool },
    /// A documented difference (its id).
    Known(&'static str),
    /// Anything else.
    Finding(String),
}

/// Judges `raw` with `cred` under `rule` on both sides and compares.
pub fn compare(raw: &str, cred: &Cred, rule: Rule) -> Outcome {
    let (theirs, now) = theirs(raw, cred, rule);
    let ours = ours(raw, cred, rule, now);
    if ours.is_ok() == theirs.is_ok() {
        return Outcome::Agree {
            accepted: ours.is_ok(),
        };
    }
    let ours_accepts = ours.is_ok();
    if let Some(id) = known(raw, rule, now, ours_accepts) {
        return Outcome::Known(id);
    }
    Outcome::Finding(format!(
        "{} {rule:?} at {now}: ours {ours:?}, jsonwebtoken {theirs:?}, token {raw:?}",
        cred.alg.as_str()
    ))
}

fn b64url(seg: &str) -> Option<Vec<u8>> {
    base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(seg.as_bytes())
        .ok()
}

/// Header and payload as `jsonwebtoken` splits them (at the last two dots).
fn their_segments(raw: &str) -> Option<(&str, &str)> {
    let (message, _) = raw.rsplit_once('.')?;
    let (header, payload) = message.rsplit_once('.')?;
    Some((header, payload))
}

/// Header and payload as ours splits them (empty segments dropped).
fn our_segments(raw: &str) -> Option<(&str, &str)> {
    let mut parts = raw.split('.').filter(|p| !p.is_empty());
    Some((parts.next()?, parts.next()?))
}

/// Top-level member names of a JSON object, repeats kept.
fn member_names(json: &[u8]) -> Option<Vec<String>> {
    struct Names;
    impl<'de> serde::de::Visitor<'de> for Names {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut m: A,
        ) -> Result<Vec<String>, A::Error> {
            let mut names = Vec::new();
            while let Some(k) = m.next_key::<String>()? {
                m.next_value::<serde::de::IgnoredAny>()?;
                names.push(k);
            }
            Ok(names)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    serde::Deserializer::deserialize_map(&mut de, Names).ok()
}

/// Which documented difference explains a disagreement, if one does.
fn known(raw: &str, rule: Rule, now: i64, ours_accepts: bool) -> Option<&'static str> {
    let refuses = !ours_accepts;
    let accepts = ours_accepts;
    if refuses && raw.len() > portcullis::jwt::MAX_TOKEN_BYTES {
        return Some("too-long");
    }
    if accepts && raw.split('.').any(str::is_empty) {
        return Some("stray-dots");
    }
    if accepts {
        if let Some((h, p)) = our_segments(raw) {
            if b64url(h).is_none() || b64url(p).is_none() {
                return Some("lenient-base64");
            }
        }
    }
    if let Some((h, p)) = their_segments(raw) {
        if let Some(header) = b64url(h) {
            let as_object = serde_json::from_slice::<Map<String, Value>>(&header).is_ok();
            let as_typed = serde_json::from_slice::<jsonwebtoken::Header>(&header).is_ok();
            if accepts && as_object && !as_typed {
                return Some("typed-header");
            }
            if refuses && as_typed && !as_object {
                return Some("untyped-header");
            }
        }
        if let Some(payload) = b64url(p) {
            if accepts {
                if let Some(names) = member_names(&payload) {
                    let twice = |n: &str| names.iter().filter(|k| *k == n).count() > 1;
                    if ["exp", "nbf", "iss", "sub", "aud"].into_iter().any(twice) {
                        return Some("duplicate-claim");
                    }
                }
            }
            if let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(&payload) {
                let structured =
                    |n: &str| matches!(claims.get(n), Some(Value::Array(_) | Value::Object(_)));
                if accepts && ["exp", "nbf", "sub"].into_iter().any(structured) {
                    return Some("half-read-claim");
                }
                let checked = [("exp", rule.checks_exp()), ("nbf", rule.checks_nbf())];
                let values = checked
                    .iter()
                    .filter(|(_, on)| *on)
                    .filter_map(|(name, _)| claims.get(*name));
                for v in values {
                    match v {
                        Value::Number(n) => {
                            let x = n.as_f64().unwrap_or(f64::NAN);
                            if refuses && (x - now as f64).abs() < 1.0 {
                                return Some("time-boundary");
                            }
                            if x < 0.0 || x >= u64::MAX as f64 {
                                return Some("not-u64");
                            }
                        }
                        _ if refuses => return Some("not-a-number"),
                        _ => {}
                    }
                }
            }
        }
    }
    None
}

/// Reads the fuzz input a byte at a time; past its end every byte is 0 (no mutation).
pub struct Bytes<'a>(pub &'a [u8]);

impl Bytes<'_> {
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn pick<T: Copy>(&mut self, options: &[T]) -> T {
        options[self.byte() as usize % options.len()]
    }
}

/// One fuzz input: `(token, credential index, rules)` to compare. An input whose first byte is
/// ASCII is a raw token, compared with every credential under every rule; otherwise the bytes
/// after it steer [`structured`].
pub fn cases(data: &[u8], now: i64) -> Vec<(String, usize, Vec<Rule>)> {
    match data.first() {
        None => Vec::new(),
        Some(b) if b.is_ascii() => match std::str::from_utf8(data) {
            Ok(raw) => (0..creds().len())
                .map(|i| (raw.to_string(), i, Rule::ALL.to_vec()))
                .collect(),
            Err(_) => Vec::new(),
        },
        Some(_) => {
            let (raw, cred, rule) = structured(&mut Bytes(&data[1..]), now);
            vec![(raw, cred, vec![rule])]
        }
    }
}

/// Runs every case of one input; returns the outcomes.
pub fn check(data: &[u8]) -> Vec<Outcome> {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let mut out = Vec::new();
    for (raw, cred, rules) in cases(data, now) {
        for rule in rules {
            out.push(compare(&raw, &creds()[cred], rule));
        }
    }
    out
}

fn b64(bytes: &[u8]) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(bytes)
}

/// A number or other JSON value for `exp`, relative to `now`.
fn time_value(u: &mut Bytes<'_>, now: i64, exp: bool) -> Option<String> {
    let day = if exp { 3600 } else { -3600 };
    Some(match u.byte() % 20 {
        0 => (now + day).to_string(),
        1 => return None,
        2 => "null".into(),
        3 => now.to_string(),
        4 => (now - 1).to_string(),
        5 => (now + 1).to_string(),
        6 => (now - day).to_string(),
        7 => format!("{}.5", now),
        8 => format!("{}.5", now - 1),
        9 => format!("\"{}\"", now + day),
        10 => "-5".into(),
        11 => "1e20".into(),
        12 => format!("{}e0", now + day),
        13 => "true".into(),
        14 => format!("[{}]", now + day),
        15 => format!(
            "{}, \"{}\": {}",
            now - day,
            if exp { "exp" } else { "nbf" },
            now + day
        ),
        16 => u64::MAX.to_string(),
        17 => format!("{}.0", now + day),
        18 => "0".into(),
        _ => format!("{}.{}", now, u.byte()),
    })
}

/// The signing input's segment encoding: canonical, or one of the variants APISIX tolerates
/// and some it does not.
fn encode_segment(u: &mut Bytes<'_>, json: &[u8]) -> String {
    let canonical = b64(json);
    match u.byte() % 8 {
        0 | 1 => canonical,
        2 => {
            let pad = (4 - canonical.len() % 4) % 4;
            format!("{canonical}{}", "=".repeat(pad))
        }
        3 => canonical.replace('-', "+").replace('_', "/"),
        4 => format!("{canonical}==="),
        5 => {
            // A last character with its unused low bits set (non-canonical).
            let mut s = canonical.into_bytes();
            if let Some(c) = s.last_mut() {
                *c = match *c {
                    b'A' => b'B',
                    b'Q' => b'R',
                    b'g' => b'h',
                    b'w' => b'x',
                    other => other,
                };
            }
            String::from_utf8(s).expect("base64 is ASCII")
        }
        6 => {
            let at = u.byte() as usize % (canonical.len() + 1);
            format!("{} {}", &canonical[..at], &canonical[at..])
        }
        _ => {
            let at = u.byte() as usize % (canonical.len() + 1);
            format!("{}.{}", &canonical[..at], &canonical[at..])
        }
    }
}

fn header_json(u: &mut Bytes<'_>, alg: Alg) -> Vec<u8> {
    let others = [
        "HS256", "RS256", "ES256", "PS256", "EdDSA", "HS512", "ES384", "RS512",
    ];
    let name = alg.as_str();
    let alg_member = match u.byte() % 10 {
        0..=2 => format!("\"alg\":\"{name}\""),
        3 => format!("\"alg\":\"{}\"", u.pick(&others)),
        4 => "\"alg\":\"none\"".into(),
        5 => format!("\"alg\":\"{}\"", name.to_lowercase()),
        6 => "\"typ\":\"JWT\"".into(),
        7 => format!(
            "\"alg\":\"{}\"",
            name.chars()
                .map(|c| format!("\\u{:04x}", c as u32))
                .collect::<String>()
        ),
        8 => format!("\"alg\":\"{}\",\"alg\":\"{name}\"", u.pick(&others)),
        _ => format!("\"alg\":\"{name}\",\"alg\":\"{}\"", u.pick(&others)),
    };
    let typ = match u.byte() % 6 {
        0 | 1 => ",\"typ\":\"JWT\"",
        2 => "",
        3 => ",\"typ\":123",
        4 => ",\"typ\":null",
        _ => ",\"typ\":\"at+jwt\"",
    };
    let kid = match u.byte() % 6 {
        0 | 1 => "",
        2 => ",\"kid\":\"k1\"",
        3 => ",\"kid\":7",
        4 => ",\"kid\":{\"a\":1}",
        _ => ",\"kid\":\"\\u0000\"",
    };
    let mut out = format!("{{{alg_member}{typ}{kid}}}").into_bytes();
    match u.byte() % 12 {
        0..=3 => {}
        4 => out = format!("{{{alg_member}{typ}{kid},\"crit\":[\"exp\"]}}").into_bytes(),
        5 => out = format!("{{{alg_member}{typ}{kid},\"jwk\":{{\"kty\":1}}}}").into_bytes(),
        6 => out = format!("{{{alg_member}{typ}{kid},\"x\":1e400}}").into_bytes(),
        7 => {
            out = format!("{{{alg_member}{typ}{kid},\"x\":\"").into_bytes();
            out.extend_from_slice(b"\xff\"}");
        }
        8 => {
            out = format!("[null,\"{name}\",null,null,null,null,null,null,null,null]").into_bytes()
        }
        9 => out = format!(" \n{{ {alg_member} {typ} {kid} }}\t").into_bytes(),
        10 => out.extend_from_slice(b" x"),
        _ => {
            out = format!("{{{alg_member}{typ}{kid},\"cty\":\"JWT\",\"n\":{{\"a\":[1,2,{{}}]}}}}")
                .into_bytes()
        }
    }
    out
}

fn payload_json(u: &mut Bytes<'_>, now: i64) -> Vec<u8> {
    let mut members = Vec::new();
    match u.byte() % 10 {
        0..=2 => members.push(format!("\"key\":\"{KEY}\"")),
        3 => {}
        4 => members.push("\"key\":\"other-key\"".into()),
        5 => members.push("\"key\":7".into()),
        6 => members.push("\"key\":null".into()),
        7 => members.push("\"k\\u0065y\":\"user\\u002dkey\"".into()),
        8 => members.push(format!("\"key\":\"other\",\"key\":\"{KEY}\"")),
        _ => members.push(format!("\"key\":\"{KEY}\",\"key\":false")),
    }
    if let Some(v) = time_value(u, now, true) {
        members.push(format!("\"exp\":{v}"));
    }
    if let Some(v) = time_value(u, now, false) {
        members.push(format!("\"nbf\":{v}"));
    }
    match u.byte() % 12 {
        0..=3 => {}
        4 => members.push("\"aud\":\"x\"".into()),
        5 => members.push("\"iss\":5,\"sub\":[\"a\"]".into()),
        6 => members.push("\"aud\":\"a\",\"aud\":\"b\"".into()),
        7 => members.push(format!("\"deep\":{}{}", "[".repeat(130), "]".repeat(130))),
        8 => members.push(format!("\"pad\":\"{}\"", "p".repeat(9000))),
        9 => members.push("\"big\":1e999".into()),
        10 => members.push("\"iat\":1.5,\"jti\":\"\\ud800\"".into()),
        _ => members.push("\"s\":\"\\u00e9\\n\"".into()),
    }
    let mut out = format!("{{{}}}", members.join(",")).into_bytes();
    match u.byte() % 10 {
        0..=5 => {}
        6 => out = format!("[{}]", members.join(",")).into_bytes(),
        7 => out = format!("\r\n{{ {} }} ", members.join(" ,\n")).into_bytes(),
        8 => out.extend_from_slice(b"{}"),
        _ => {
            out.pop();
            out.extend_from_slice(b",\"bad\":\"\xc3\x28\"}");
        }
    }
    out
}

/// A token made from a valid one by the mutations the bytes choose: algorithm swaps, header
/// and payload JSON tweaks, `exp`/`nbf` around `now`, segment encodings, signatures from the
/// right key, another key or an algorithm-confusion attack, signature bit flips and layouts.
/// Returns the token, the credential index and the rule.
pub fn structured(u: &mut Bytes<'_>, now: i64) -> (String, usize, Rule) {
    let cred_index = u.byte() as usize % creds().len();
    let cred = &creds()[cred_index];
    let rule = u.pick(&Rule::ALL);
    let header = header_json(u, cred.alg);
    let payload = payload_json(u, now);
    let h = encode_segment(u, &header);
    let p = encode_segment(u, &payload);
    let input = format!("{h}.{p}");
    let sign_with = |alg: Algorithm, key: &EncodingKey| {
        jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap_or_default()
    };
    let mut sig = match u.byte() % 8 {
        0..=3 => sign_with(cred.theirs_alg, &cred.signer),
        4 => {
            // Another credential's key, with its own algorithm.
            let other = &creds()[u.byte() as usize % creds().len()];
            sign_with(other.theirs_alg, &other.signer)
        }
        5 if !cred.public_pem.is_empty() => {
            // Algorithm confusion: HMAC keyed with the public key.
            sign_with(
                Algorithm::HS256,
                &EncodingKey::from_secret(&cred.public_pem),
            )
        }
        6 => String::new(),
        _ => sign_with(cred.theirs_alg, &cred.signer)
            .chars()
            .rev()
            .collect(),
    };
    match u.byte() % 10 {
        0..=3 => {}
        4 if !sig.is_empty() => {
            let mut raw = base64_simd::URL_SAFE_NO_PAD
                .decode_to_vec(sig.as_bytes())
                .unwrap_or_default();
            if !raw.is_empty() {
                let at = u.byte() as usize % raw.len();
                raw[at] ^= 1 << (u.byte() % 8);
                sig = b64(&raw);
            }
        }
        5 => {
            sig.pop();
        }
        6 => sig.push_str("=="),
        7 => sig = sig.replace('-', "+").replace('_', "/"),
        8 => sig.push(' '),
        _ => {
            if let Some(c) = sig.pop() {
                // The unused low bits of the last character set.
                sig.push(match c {
                    'A' => 'B',
                    'Q' => 'R',
                    'g' => 'h',
                    'w' => 'x',
                    'E' => 'F',
                    other => other,
                });
            }
        }
    }
    let raw = match u.byte() % 8 {
        0..=3 => format!("{input}.{sig}"),
        4 => format!("{h}..{p}.{sig}"),
        5 => format!(".{input}.{sig}"),
        6 => format!("{input}.{sig}."),
        _ => format!("{input}.{sig}.x"),
    };
    (raw, cred_index, rule)
}
