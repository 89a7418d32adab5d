//! What the ww benches share: a tiny random generator (no `rand` dependency), seeded so that
//! every algorithm and baseline of a run sees the same sets.

/// A xorshift64 generator.
pub struct XorShift(u64);

impl XorShift {
    /// A generator for `seed` (any value; scrambled so that small seeds differ at once).
    pub fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n` (multiply-shift; `n` far below 2^32).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
}
