//! ES256 verification with a table precomputed for the credential's public key.
//!
//! An ECDSA check computes `u1·G + u2·Q`. ring (and AWS-LC, and `jsonwebtoken`, which calls
//! ring) spends most of a P-256 check on `u2·Q`: Q changes from key to key, so every check
//! doubles its way through all 256 bits of `u2`. A credential's Q does not change, so we do
//! what libraries already do for the fixed generator G: precompute multiples of Q once, in a
//! comb table ([`Comb`]), and walk `u1` and `u2` through both tables together. That replaces
//! 256 doublings with 37, about half the cost of a check (see `benches/jwt.rs`).
//!
//! Division of labour, so that no curve formula is written here:
//! - **Point arithmetic** is AWS-LC's public `EC_POINT` API (already linked for RSA through
//!   aws-lc-rs): its P-256 addition is complete, handling the point at infinity, P + P and
//!   P + (−P) itself, and runs on the same assembly as its own ECDSA.
//! - **Scalar arithmetic mod n** (`s⁻¹`, `e·s⁻¹`, `r·s⁻¹`) is RustCrypto's `crypto-bigint`:
//!   the inversion is variable-time, which is fine here, as every input of a verification is
//!   public (the token and the public key).
//! - **This module** holds the comb schedule and SEC 1's verification equation (§4.1.4).
//!
//! A table is about 30 KB (127 points), so tables are bounded: a key gets one the first time
//! it verifies a token, while fewer than [`set_table_budget`] tables exist (the config's
//! `jwt_es256_tables`). Every other key, and any key whose table could not be built, is
//! checked by ring exactly as before; `key.rs` holds that path. `tests` check that both give
//! the same verdict on valid, tampered and edge-value signatures.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use aws_lc_sys as ffi;
use crypto_bigint::{NonZero, Odd, U256};

/// Comb teeth: a table holds `2^TEETH - 1` points.
const TEETH: usize = 7;
/// Columns: scalar bit `t·COLS + c` is tooth `t` of column `c`; `TEETH · COLS ≥ 256`.
const COLS: usize = 256usize.div_ceil(TEETH);

/// The order n of P-256's group.
const ORDER: U256 =
    U256::from_be_hex("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");

/// Default for [`set_table_budget`]: about 30 MB of tables at most.
pub const DEFAULT_TABLES: usize = 1024;

/// A bound on live tables, shared by every key (one static instance; tests make their own).
pub(super) struct Budget {
    max: AtomicUsize,
    in_use: AtomicUsize,
}

impl Budget {
    pub(super) const fn new(max: usize) -> Budget {
        Budget {
            max: AtomicUsize::new(max),
            in_use: AtomicUsize::new(0),
        }
    }

    fn take(&'static self) -> Option<Reservation> {
        let max = self.max.load(Ordering::Relaxed);
        self.in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Reservation(self))
    }
}

static BUDGET: Budget = Budget::new(DEFAULT_TABLES);

/// How many ES256 keys may hold a table at once (0: none, every check goes through ring).
/// Set from the config at start; tables built before a lower budget are kept until their
/// credential goes.
pub fn set_table_budget(n: usize) {
    BUDGET.max.store(n, Ordering::Relaxed);
}

/// Key tables alive now.
pub fn tables_in_use() -> usize {
    BUDGET.in_use.load(Ordering::Relaxed)
}

/// One table's share of a budget, given back when the table is dropped.
struct Reservation(&'static Budget);

impl Drop for Reservation {
    fn drop(&mut self) {
        self.0.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

fn group() -> *const ffi::EC_GROUP {
    // A static group owned by AWS-LC: never freed.
    unsafe { ffi::EC_group_p256() }
}

/// An owned AWS-LC `EC_POINT` on P-256.
struct Point(NonNull<ffi::EC_POINT>);

// SAFETY: an EC_POINT is plain memory owned by this handle. Shared references only ever pass
// it to AWS-LC as a `const EC_POINT *` input, which AWS-LC reads without writing.
unsafe impl Send for Point {}
unsafe impl Sync for Point {}

impl Drop for Point {
    fn drop(&mut self) {
        unsafe { ffi::EC_POINT_free(self.0.as_ptr()) }
    }
}

impl Point {
    /// Takes ownership of a point AWS-LC returned; `None` if it could not allocate one.
    fn owned(p: *mut ffi::EC_POINT) -> Option<Point> {
        NonNull::new(p).map(Point)
    }

    /// The point at infinity.
    fn infinity() -> Option<Point> {
        Point::owned(unsafe { ffi::EC_POINT_new(group()) })
    }

    /// An uncompressed SEC 1 point; `None` if it is not on the curve.
    fn from_sec1(bytes: &[u8]) -> Option<Point> {
        let p = Point::infinity()?;
        let ok = unsafe {
            ffi::EC_POINT_oct2point(
                group(),
                p.0.as_ptr(),
                bytes.as_ptr(),
                bytes.len(),
                std::ptr::null_mut(),
            )
        };
        (ok == 1).then_some(p)
    }

    fn generator() -> Option<Point> {
        let g = unsafe { ffi::EC_GROUP_get0_generator(group()) };
        Point::owned(unsafe { ffi::EC_POINT_dup(g, group()) })
    }

    fn dup(&self) -> Option<Point> {
        Point::owned(unsafe { ffi::EC_POINT_dup(self.ptr(), group()) })
    }

    fn ptr(&self) -> *const ffi::EC_POINT {
        self.0.as_ptr()
    }

    /// `self ← self + other`.
    fn add(&mut self, other: &Point) -> Option<()> {
        let p = self.0.as_ptr();
        let ok = unsafe { ffi::EC_POINT_add(group(), p, p, other.ptr(), std::ptr::null_mut()) };
        (ok == 1).then_some(())
    }

    /// `a + b`, as a new point.
    fn sum(a: &Point, b: &Point) -> Option<Point> {
        let mut out = a.dup()?;
        out.add(b)?;
        Some(out)
    }

    /// `self ← 2·self`.
    fn double(&mut self) -> Option<()> {
        let p = self.0.as_ptr();
        let ok = unsafe { ffi::EC_POINT_dbl(group(), p, p, std::ptr::null_mut()) };
        (ok == 1).then_some(())
    }

    fn is_infinity(&self) -> bool {
        unsafe { ffi::EC_POINT_is_at_infinity(group(), self.ptr()) == 1 }
    }

    /// The uncompressed SEC 1 encoding; `None` at infinity.
    fn sec1(&self) -> Option<[u8; 65]> {
        let mut out = [0u8; 65];
        let n = unsafe {
            ffi::EC_POINT_point2oct(
                group(),
                self.ptr(),
                ffi::point_conversion_form_t::POINT_CONVERSION_UNCOMPRESSED,
                out.as_mut_ptr(),
                out.len(),
                std::ptr::null_mut(),
            )
        };
        (n == out.len()).then_some(out)
    }

    /// The affine x coordinate, big-endian; `None` at infinity.
    fn x(&self) -> Option<[u8; 32]> {
        self.sec1().map(|p| p[1..33].try_into().expect("32 bytes"))
    }
}

/// A fixed-base comb for a point P: entry `j - 1` is `Σ 2^(t·COLS)·P` over the set bits `t`
/// of `j` (1 ≤ j < 2^TEETH). With it, `k·P` is COLS doublings and at most COLS additions.
pub(super) struct Comb {
    points: Box<[Point]>,
    /// Present for per-key tables, which count against the budget; not for G's.
    _budget: Option<Reservation>,
}

impl Comb {
    fn build(p: &Point, budget: Option<Reservation>) -> Option<Comb> {
        // teeth[t] = 2^(t·COLS)·P
        let mut teeth = Vec::with_capacity(TEETH);
        teeth.push(p.dup()?);
        for t in 1..TEETH {
            let mut next = teeth[t - 1].dup()?;
            for _ in 0..COLS {
                next.double()?;
            }
            teeth.push(next);
        }
        let mut points: Vec<Point> = Vec::with_capacity((1 << TEETH) - 1);
        for j in 1usize..(1 << TEETH) {
            let top = (usize::BITS - 1 - j.leading_zeros()) as usize;
            let rest = j & !(1 << top);
            let entry = if rest == 0 {
                teeth[top].dup()?
            } else {
                Point::sum(&points[rest - 1], &teeth[top])?
            };
            points.push(entry);
        }
        Some(Comb {
            points: points.into_boxed_slice(),
            _budget: budget,
        })
    }

    /// The comb for a key, if the budget has room and AWS-LC builds it.
    pub(super) fn for_key(sec1: &[u8]) -> Option<Comb> {
        Comb::for_key_in(&BUDGET, sec1)
    }

    fn for_key_in(budget: &'static Budget, sec1: &[u8]) -> Option<Comb> {
        let share = budget.take()?;
        Comb::build(&Point::from_sec1(sec1)?, Some(share))
    }

    fn entry(&self, index: usize) -> Option<&Point> {
        index.checked_sub(1).map(|i| &self.points[i])
    }
}

/// G's comb, built on first use and kept for the life of the process.
static GENERATOR: LazyLock<Option<Comb>> =
    LazyLock::new(|| Comb::build(&Point::generator()?, None));

/// The comb index of column `c` of a big-endian 256-bit scalar.
fn column(k: &[u8; 32], c: usize) -> usize {
    let mut index = 0;
    for t in 0..TEETH {
        let bit = t * COLS + c;
        if bit < 256 {
            index |= (((k[31 - bit / 8] >> (bit % 8)) & 1) as usize) << t;
        }
    }
    index
}

/// An ES256 check (SEC 1 §4.1.4) of a raw `R‖S` signature over `msg`, with the key's comb.
/// `None` when AWS-LC failed (an allocation); the caller then asks ring.
pub(super) fn verify(q: &Comb, msg: &[u8], sig: &[u8]) -> Option<bool> {
    let g = GENERATOR.as_ref()?;
    if sig.len() != 64 {
        return Some(false);
    }
    let n = Odd::new(ORDER).expect("n is odd");
    let r = U256::from_be_slice(&sig[..32]);
    let s = U256::from_be_slice(&sig[32..]);
    // 1. r and s in [1, n-1].
    if r == U256::ZERO || s == U256::ZERO || r >= ORDER || s >= ORDER {
        return Some(false);
    }
    // 2-3. e: the digest as an integer (256 bits, so no truncation), reduced mod n; e < 2n.
    let digest = ring::digest::digest(&ring::digest::SHA256, msg);
    let mut e = U256::from_be_slice(digest.as_ref());
    if e >= ORDER {
        e = e.wrapping_sub(&ORDER);
    }
    // 4. u1 = e·s⁻¹, u2 = r·s⁻¹ (mod n). n is prime and 0 < s < n, so s has an inverse.
    let w = Option::<U256>::from(s.invert_odd_mod_vartime(&n))?;
    let modulus = NonZero::new(ORDER).expect("n is not zero");
    let u1: [u8; 32] = e.mul_mod_vartime(&w, &modulus).to_be_bytes().into();
    let u2: [u8; 32] = r.mul_mod_vartime(&w, &modulus).to_be_bytes().into();
    // 5. R = u1·G + u2·Q, both combs walked together; R = ∞ fails.
    let mut acc = Point::infinity()?;
    for c in (0..COLS).rev() {
        acc.double()?;
        if let Some(p) = g.entry(column(&u1, c)) {
            acc.add(p)?;
        }
        if let Some(p) = q.entry(column(&u2, c)) {
            acc.add(p)?;
        }
    }
    if acc.is_infinity() {
        return Some(false);
    }
    // 6-8. v = x(R) mod n; x < p < 2n. Valid iff v = r.
    let mut v = U256::from_be_slice(&acc.x()?);
    if v >= ORDER {
        v = v.wrapping_sub(&ORDER);
    }
    Some(v == r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{
        EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
        ECDSA_P256_SHA256_FIXED_SIGNING,
    };

    fn key_pair() -> (EcdsaKeyPair, Vec<u8>) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let pk = kp.public_key().as_ref().to_vec();
        (kp, pk)
    }

    fn ring_says(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pk)
            .verify(msg, sig)
            .is_ok()
    }

    fn comb(pk: &[u8]) -> Comb {
        Comb::build(&Point::from_sec1(pk).unwrap(), None).unwrap()
    }

    fn be(x: U256) -> [u8; 32] {
        x.to_be_bytes().into()
    }

    /// Valid signatures, and each one with one bit flipped in r, s or the message: the comb
    /// and ring agree on every case.
    #[test]
    fn agrees_with_ring_on_valid_and_tampered_signatures() {
        let rng = SystemRandom::new();
        for k in 0..6 {
            let (kp, pk) = key_pair();
            let q = comb(&pk);
            for i in 0..40 {
                let msg = format!("header{k}.payload{i}");
                let sig = kp.sign(&rng, msg.as_bytes()).unwrap();
                let sig = sig.as_ref();
                assert_eq!(verify(&q, msg.as_bytes(), sig), Some(true));
                let mut bad = sig.to_vec();
                bad[i % 64] ^= 1 << (i % 8);
                assert_eq!(
                    verify(&q, msg.as_bytes(), &bad),
                    Some(ring_says(&pk, msg.as_bytes(), &bad))
                );
                assert_eq!(verify(&q, msg.as_bytes(), &bad), Some(false));
                let other = format!("header{k}.payload{i}x");
                assert_eq!(verify(&q, other.as_bytes(), sig), Some(false));
            }
        }
    }

    /// A signature made by another key, and truncated or lengthened signatures.
    #[test]
    fn refuses_other_keys_and_wrong_lengths() {
        let rng = SystemRandom::new();
        let (kp, _) = key_pair();
        let (_, other) = key_pair();
        let sig = kp.sign(&rng, b"m").unwrap();
        assert_eq!(verify(&comb(&other), b"m", sig.as_ref()), Some(false));
        let q = comb(kp.public_key().as_ref());
        assert_eq!(verify(&q, b"m", &sig.as_ref()[..63]), Some(false));
        let mut long = sig.as_ref().to_vec();
        long.push(0);
        assert_eq!(verify(&q, b"m", &long), Some(false));
        assert_eq!(verify(&q, b"m", &[]), Some(false));
    }

    /// r or s of 0, n, n + 1, 2^256 - 1 and n - 1: out-of-range values fail before any
    /// arithmetic, in-range ones fail the equation; ring says the same.
    #[test]
    fn edge_values_of_r_and_s() {
        let rng = SystemRandom::new();
        let (kp, pk) = key_pair();
        let q = comb(&pk);
        let good = kp.sign(&rng, b"m").unwrap();
        let (r0, s0) = good.as_ref().split_at(32);
        let edges = [
            [0u8; 32],
            be(ORDER),
            be(ORDER.wrapping_add(&U256::ONE)),
            [0xff; 32],
            be(ORDER.wrapping_sub(&U256::ONE)),
            be(U256::ONE),
        ];
        for edge in edges {
            for sig in [[&edge[..], s0].concat(), [r0, &edge[..]].concat()] {
                assert_eq!(verify(&q, b"m", &sig), Some(ring_says(&pk, b"m", &sig)));
                assert_eq!(verify(&q, b"m", &sig), Some(false));
            }
        }
    }

    /// A signature whose R is the point at infinity: with Q = d·G, choosing r = -e/d (mod n)
    /// makes u1 + u2·d = (e + r·d)/s = 0, so R = ∞ for every s. It must fail, not compare
    /// an x coordinate that does not exist.
    #[test]
    fn a_signature_that_sums_to_infinity_fails() {
        let modulus = NonZero::new(ORDER).unwrap();
        let n = Odd::new(ORDER).unwrap();
        let d =
            U256::from_be_hex("0C0FFEE0C0FFEE0C0FFEE0C0FFEE0C0FFEE0C0FFEE0C0FFEE0C0FFEE0C0FFEE0");
        let mut q = Point::infinity().unwrap();
        let gen = Point::generator().unwrap();
        // Q = d·G by double-and-add (test only).
        for byte in be(d) {
            for bit in (0..8).rev() {
                q.double().unwrap();
                if byte >> bit & 1 == 1 {
                    q.add(&gen).unwrap();
                }
            }
        }
        let sec1 = q.sec1().unwrap();
        let msg = b"header.payload";
        let e = U256::from_be_slice(ring::digest::digest(&ring::digest::SHA256, msg).as_ref())
            .rem_vartime(&modulus);
        let d_inv = Option::<U256>::from(d.invert_odd_mod_vartime(&n)).unwrap();
        let r = ORDER.wrapping_sub(&e.mul_mod_vartime(&d_inv, &modulus));
        let table = comb(&sec1);
        for s in [U256::ONE, U256::from_u64(12345), d] {
            let sig = [be(r), be(s)].concat();
            assert_eq!(verify(&table, msg, &sig), Some(false));
            assert!(!ring_says(&sec1, msg, &sig));
        }
    }

    /// A budget bounds how many key tables exist; dropping one gives its share back.
    #[test]
    fn tables_are_bounded_by_the_budget() {
        static TWO: Budget = Budget::new(2);
        let used = || TWO.in_use.load(Ordering::Relaxed);
        let (_, pk) = key_pair();
        let a = Comb::for_key_in(&TWO, &pk).expect("within budget");
        let b = Comb::for_key_in(&TWO, &pk).expect("within budget");
        assert!(Comb::for_key_in(&TWO, &pk).is_none(), "over budget");
        assert_eq!(used(), 2);
        drop(a);
        assert_eq!(used(), 1);
        let c = Comb::for_key_in(&TWO, &pk).expect("a share was given back");
        drop((b, c));
        assert_eq!(used(), 0);
        assert!(
            Comb::for_key_in(&TWO, &[4u8; 65]).is_none(),
            "not a point on the curve"
        );
        assert_eq!(used(), 0, "a failed build gives its share back");
        static NONE: Budget = Budget::new(0);
        assert!(Comb::for_key_in(&NONE, &pk).is_none(), "0 disables tables");
    }
}
