//! [`SplitMix64`]: the workspace's one pseudo-random generator, for generated data (the `--demo`
//! data set, `lpm-gen` dumps, bench and test inputs). Nothing in the engine uses it.
//!
//! Why our own and not `fastrand`: the demo data set (`lpm serve --demo`, "about 3 000 reports")
//! and every `lpm-gen` dump (the figures in docs/operations.md, the fixture and property tests
//! that name a seed) are functions of this exact stream. `fastrand` is wyrand, so switching would
//! silently change all of them; keeping splitmix64 keeps every seeded output byte-identical.
//! Why here: `lpm-engine` is the one crate that the service (demo), the testkit, the benches and
//! the end-to-end tests all depend on already.
//!
//! Not for secrets: session ids and tokens come from `getrandom`.

/// splitmix64 (Steele, Lea, Flood 2014; the constants of Vigna's reference code): 64 bits of
/// state, every seed (0 included) gives a full-period stream, and it is fast and good enough
/// for test data.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// The stream for `seed`; equal seeds give equal streams on every platform.
    pub const fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In `0..n` (modulo: the bias is below 2^-40 for the sizes we draw); 0 for `n == 0`,
    /// without consuming a draw.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// In `0.0..1.0`, with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// In `lo..=hi` (`lo` when `hi < lo`).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo).max(0) as u64 + 1) as i64
    }

    /// One of `items`.
    ///
    /// # Panics
    /// When `items` is empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_splitmix64() {
        // Vigna's splitmix64.c from seed 1234567: the stream the demo and lpm-gen rely on.
        let mut r = SplitMix64::new(1_234_567);
        let first: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(
            first,
            vec![
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423
            ]
        );
    }

    #[test]
    fn helpers_stay_in_range() {
        let mut r = SplitMix64::new(7);
        for _ in 0..10_000 {
            assert!(r.below(10) < 10);
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            assert!((-3..=3).contains(&r.range(-3, 3)));
        }
        assert_eq!(r.clone().below(0), 0);
        assert_eq!(r.range(5, 2), 5);
        assert_eq!(*r.pick(&[42]), 42);
    }

    #[test]
    fn below_zero_consumes_no_draw() {
        let (mut a, mut b) = (SplitMix64::new(3), SplitMix64::new(3));
        a.below(0);
        assert_eq!(a.next_u64(), b.next_u64());
    }
}
