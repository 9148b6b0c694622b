//! Test helpers shared by the codec's tests: [`Rng`], a tiny deterministic generator for
//! the randomized runs (no property-testing dependency), and [`assert_prefixes_agree`].

use super::HeadError;
use std::fmt::Debug;

/// Every prefix of `buf` is incomplete or gives the answer the whole buffer gives, and once
/// a prefix has an answer every longer one has the same: the answer must not depend on how
/// the bytes were split into reads.
pub(crate) fn assert_prefixes_agree<T: PartialEq + Debug>(
    buf: &[u8],
    parse: impl Fn(&[u8]) -> Result<Option<T>, HeadError>,
) {
    let full = parse(buf);
    let mut settled = false;
    for i in 0..=buf.len() {
        let got = parse(&buf[..i]);
        if settled || got != Ok(None) {
            assert_eq!(
                got,
                full,
                "prefix {i} of {:?}",
                String::from_utf8_lossy(buf)
            );
            settled = true;
        }
    }
}

/// xorshift64.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}
