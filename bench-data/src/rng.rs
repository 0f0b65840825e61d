//! Deterministic randomness: a thin, portable wrapper around ChaCha8 plus
//! weighted / Zipf sampling tables and a stateless 64-bit mixer.
//!
//! Everything here avoids platform-dependent behaviour: no `usize` ranges
//! (their width differs between targets), no thread-local RNGs and no hash
//! map iteration. Floating point is only used for `[0, 1)` uniforms drawn
//! from 53 random bits, for the Zipf weight table and for the exponential
//! clock gap; those values are immediately turned into integers.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Exponent of the Zipf distributions used for the skewed dimensions.
pub(crate) const ZIPF_EXPONENT: f64 = 1.1;

/// Seeded ChaCha8 stream with a few convenience draws.
pub(crate) struct Rng {
    inner: ChaCha8Rng,
}

impl Rng {
    /// Creates the stream for `seed` (identical on every platform).
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            inner: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// 64 uniformly random bits.
    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform float in `[0, 1)` built from 53 random bits.
    #[inline]
    pub(crate) fn unit(&mut self) -> f64 {
        unit_from(self.inner.next_u64())
    }

    /// Uniform integer in `0..n` (`n > 0`), via a 32x32->64 multiply.
    ///
    /// The bias of the multiply-shift reduction is below `n / 2^32`, which is
    /// irrelevant for synthetic data and keeps the draw branch-free.
    #[inline]
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        debug_assert!(n > 0, "below(0)");
        ((u64::from(self.inner.next_u32()) * u64::from(n)) >> 32) as u32
    }

    /// `true` with probability `p`.
    #[inline]
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform integer in `lo..=hi`.
    #[inline]
    pub(crate) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        debug_assert!(lo <= hi);
        let span = hi - lo + 1;
        if span <= u64::from(u32::MAX) {
            lo + u64::from(self.below(span as u32))
        } else {
            lo + self.next_u64() % span
        }
    }

    /// Exponentially distributed float with the given mean.
    #[inline]
    pub(crate) fn exp(&mut self, mean: f64) -> f64 {
        // 1 - u lies in (0, 1], so ln() is finite and <= 0.
        -mean * (1.0 - self.unit()).ln()
    }
}

/// Turns 64 random bits into a uniform float in `[0, 1)`.
#[inline]
pub(crate) fn unit_from(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// SplitMix64 finaliser: a stateless bijective mixer used to derive stable
/// per-entity attributes (a user's country, an IP's user agent, ...).
#[inline]
pub(crate) const fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps a rank in `0..n` to a seed-dependent id in `0..n` (bijective as long
/// as `n` is not a multiple of 7919), so the most popular entity is not
/// always id 0.
#[inline]
pub(crate) fn permute(rank: u64, n: u64, salt: u64) -> u64 {
    debug_assert!(!n.is_multiple_of(7919));
    (rank.wrapping_mul(7919) % n + salt % n) % n
}

/// Categorical distribution: a cumulative weight table searched with a
/// binary search (`O(log n)` per draw, no allocation).
pub(crate) struct Weighted {
    cdf: Vec<f64>,
}

impl Weighted {
    /// Table for explicit, non-negative weights (at least one positive).
    pub(crate) fn from_weights<I: IntoIterator<Item = f64>>(weights: I) -> Self {
        let mut acc = 0.0;
        let cdf: Vec<f64> = weights
            .into_iter()
            .map(|w| {
                debug_assert!(w >= 0.0 && w.is_finite());
                acc += w;
                acc
            })
            .collect();
        assert!(
            cdf.last().is_some_and(|&t| t > 0.0),
            "weight table must have positive total weight"
        );
        Self { cdf }
    }

    /// Zipf table over ranks `0..n`: `P(rank k) ∝ 1 / (k + 1)^ZIPF_EXPONENT`.
    pub(crate) fn zipf(n: usize) -> Self {
        Self::from_weights((1..=n).map(|k| (k as f64).powf(-ZIPF_EXPONENT)))
    }

    /// Number of categories.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.cdf.len()
    }

    /// Category for a given uniform `u` in `[0, 1)` (used for stable
    /// per-entity attributes derived from a hash).
    #[inline]
    pub(crate) fn sample_u(&self, u: f64) -> usize {
        let last = self.cdf.len() - 1;
        let x = u * self.cdf[last];
        self.cdf.partition_point(|&c| c <= x).min(last)
    }

    /// Draws a category from the stream.
    #[inline]
    pub(crate) fn sample(&self, rng: &mut Rng) -> usize {
        self.sample_u(rng.unit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_is_skewed_with_expected_ratio() {
        let table = Weighted::zipf(1000);
        let mut rng = Rng::new(7);
        let mut counts = vec![0u32; table.len()];
        let draws = 400_000;
        for _ in 0..draws {
            counts[table.sample(&mut rng)] += 1;
        }
        // Rank 0 is the most frequent and counts fall off with rank.
        assert!(counts[0] > counts[1] && counts[1] > counts[2] && counts[2] > counts[9]);
        // P(0)/P(1) = 2^1.1 ≈ 2.14.
        let ratio = f64::from(counts[0]) / f64::from(counts[1]);
        assert!((1.95..2.35).contains(&ratio), "ratio {ratio}");
        // The tail is still reachable.
        assert!(counts[500..].iter().any(|&c| c > 0));
    }

    #[test]
    fn weighted_respects_zero_weights_and_bounds() {
        let table = Weighted::from_weights([0.0, 1.0, 0.0, 3.0]);
        let mut rng = Rng::new(1);
        let mut counts = [0u32; 4];
        for _ in 0..10_000 {
            counts[table.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[0], 0);
        assert_eq!(counts[2], 0);
        assert!(counts[3] > 2 * counts[1]);
        assert_eq!(table.sample_u(0.0), 1);
        assert_eq!(table.sample_u(0.999_999_999), 3);
    }

    #[test]
    fn below_and_between_stay_in_range() {
        let mut rng = Rng::new(3);
        for _ in 0..10_000 {
            assert!(rng.below(7) < 7);
            let v = rng.between(10, 12);
            assert!((10..=12).contains(&v));
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn permute_is_a_bijection() {
        let n = 10_000u64;
        let mut seen = vec![false; n as usize];
        for r in 0..n {
            let id = permute(r, n, 0xDEAD_BEEF);
            assert!(!seen[id as usize]);
            seen[id as usize] = true;
        }
    }
}
