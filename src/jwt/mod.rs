//! The JWT core: pure functions, no I/O, time passed in. Everything here parses untrusted
//! bytes, so it is the fuzzing surface (`fuzz/fuzz_targets/fuzz_jwt.rs`).
//!
//! - [`Alg`]: the 13 JWS algorithms both peers accept; `none` is not one of them.
//! - [`VerifyKey`]: key material parsed once, when a credential is written ([`key`]).
//! - [`decode`]: split and decode a token the way each peer does ([`Dialect`]), into a
//!   [`Token`] that borrows the raw string; [`Token::verify`] checks the signature with ring
//!   (RS*/PS* with aws-lc-rs, which keeps an RSA key parsed where ring re-parses it on every
//!   check; ES256 with a per-key precomputed table, [`p256`]; ES512 with the RustCrypto `p521`
//!   crate, which ring lacks).
//! - [`apisix_claims`], [`kong_claims`]: each peer's `exp`/`nbf` rules ([`claims`]).
//! - [`sign`]: signing, for the token CLI and for tests ([`sign`](mod@sign)).
//!
//! JSON is parsed with serde_json: headers and payloads are a few hundred bytes, where
//! simd-json's setup (a mutable copy of the input) does not pay; the HS256 bench measures the
//! whole check.
//!
//! The algorithm always comes from the credential: [`Token::verify`] refuses a token whose
//! `alg` is not the key's, so `alg: none` and algorithm confusion cannot verify.

pub mod alg;
pub mod claims;
pub mod inspect;
pub mod key;
pub mod p256;
pub mod sign;
pub mod token;

pub use alg::Alg;
pub use claims::{apisix_claims, kong_claims, Claim};
pub use key::{KeyError, VerifyKey};
pub use sign::{sign, SignKey};
pub use token::{
    decode, decode_keyed, ClaimValue, Dialect, JwtError, Times, Token, MAX_TOKEN_BYTES,
};

#[cfg(test)]
mod tests;
