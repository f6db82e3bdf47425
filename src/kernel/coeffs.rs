//! Coefficient tables: for every output index on one axis, the first source index and the
//! fixed-point weights of its taps. The same table gives the planner its halo
//! ([`AxisCoeffs::input_span`]) and the backends their weights, so the two can never disagree.

use super::filter::Filter;
use std::ops::Range;

/// Fixed-point weights of one axis.
///
/// ```
/// use gigascale::{AxisCoeffs, Filter};
/// let c = AxisCoeffs::new(Filter::Bilinear, 4, 8, 14);
/// assert_eq!(c.out_len(), 8);
/// // Every row of weights sums to exactly 1.0 in fixed point.
/// for i in 0..8 { assert_eq!(c.weights(i).iter().sum::<i32>(), 1 << 14); }
/// // The input span of the whole output is the whole input.
/// assert_eq!(c.input_span(0..8), 0..4);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AxisCoeffs {
    in_len: u32,
    out_len: u32,
    max_taps: usize,
    /// First source index of each output index.
    starts: Vec<u32>,
    /// Number of taps of each output index (1..=max_taps).
    lens: Vec<u32>,
    /// `out_len * max_taps` weights, zero-padded after `lens[i]`.
    weights: Vec<i32>,
    w_bits: u32,
}

impl AxisCoeffs {
    /// Builds the table mapping `in_len` source samples to `out_len` output samples with
    /// `w_bits` fractional bits. The mapping is pixel-centre aligned:
    /// `src = (dst + 0.5) / scale - 0.5` with `scale = out_len / in_len`. When downscaling the
    /// kernel is widened by `1 / scale`. Taps that fall outside the image are dropped and the
    /// remaining weights renormalised. Weights are rounded to `w_bits` bits and the rounding
    /// remainder is given to the largest tap, so every row sums to exactly `1 << w_bits`.
    pub fn new(filter: Filter, in_len: u32, out_len: u32, w_bits: u32) -> AxisCoeffs {
        match AxisCoeffs::try_new(filter, in_len, out_len, w_bits) {
            Some(c) => c,
            None => panic!("cannot allocate the coefficient table of {in_len} -> {out_len}"),
        }
    }

    /// As [`AxisCoeffs::new`], but `None` when the table cannot be allocated. The table takes
    /// at most [`table_bytes`] bytes, with no larger transient: callers check that against the
    /// memory budget before building it.
    pub fn try_new(filter: Filter, in_len: u32, out_len: u32, w_bits: u32) -> Option<AxisCoeffs> {
        assert!(in_len > 0 && out_len > 0 && w_bits <= 24);
        let scale = out_len as f64 / in_len as f64;
        let one = 1i64 << w_bits;
        let n = out_len as usize;
        let stride = taps_bound(filter, in_len, out_len) as usize;
        let mut starts = Vec::new();
        let mut lens = Vec::new();
        let mut weights = Vec::new();
        starts.try_reserve_exact(n).ok()?;
        lens.try_reserve_exact(n).ok()?;
        weights.try_reserve_exact(n.checked_mul(stride)?).ok()?;
        weights.resize(n * stride, 0i32);
        for i in 0..out_len {
            let (start, w) = if filter == Filter::Nearest {
                // Point sampling: the source pixel whose area contains the output centre.
                let c = ((i as f64 + 0.5) / scale).floor() as i64;
                (c.clamp(0, in_len as i64 - 1), vec![one as i32])
            } else {
                row_weights(filter, in_len, scale, i, one)
            };
            assert!(w.len() <= stride, "taps_bound is an upper bound of every row's taps");
            starts.push(start as u32);
            lens.push(w.len() as u32);
            weights[i as usize * stride..i as usize * stride + w.len()].copy_from_slice(&w);
        }
        // Compact to the largest row actually used (in place, front to back).
        let max_taps = lens.iter().map(|&l| l as usize).max().unwrap_or(1);
        if max_taps < stride {
            for i in 0..n {
                weights.copy_within(i * stride..i * stride + max_taps, i * max_taps);
            }
            weights.truncate(n * max_taps);
        }
        Some(AxisCoeffs { in_len, out_len, max_taps, starts, lens, weights, w_bits })
    }

    /// Source length.
    pub fn in_len(&self) -> u32 {
        self.in_len
    }
    /// Output length.
    pub fn out_len(&self) -> u32 {
        self.out_len
    }
    /// Largest tap count of any output index (the table's row stride).
    pub fn max_taps(&self) -> usize {
        self.max_taps
    }
    /// Fractional bits of the weights.
    pub fn w_bits(&self) -> u32 {
        self.w_bits
    }
    /// First source index read by output index `i`.
    pub fn start(&self, i: u32) -> u32 {
        self.starts[i as usize]
    }
    /// The weights of output index `i` (exactly its taps, no padding).
    pub fn weights(&self, i: u32) -> &[i32] {
        let o = i as usize * self.max_taps;
        &self.weights[o..o + self.lens[i as usize] as usize]
    }
    /// Per-index starts, tap counts and the padded weight matrix, for uploading to a device.
    pub fn raw(&self) -> (&[u32], &[u32], &[i32]) {
        (&self.starts, &self.lens, &self.weights)
    }
    /// Sum of absolute weights of the worst row, in units of 1.0 (bounds intermediate growth).
    pub fn max_abs_sum(&self) -> f64 {
        (0..self.out_len)
            .map(|i| self.weights(i).iter().map(|w| w.unsigned_abs() as f64).sum::<f64>())
            .fold(0.0, f64::max)
            / (1u64 << self.w_bits) as f64
    }

    /// The geometry function: the source range that output range `out` reads, i.e. the exact
    /// source rectangle plus the kernel halo, taken from the very taps the backends use.
    pub fn input_span(&self, out: Range<u32>) -> Range<u32> {
        debug_assert!(out.start < out.end && out.end <= self.out_len);
        let mut lo = u32::MAX;
        let mut hi = 0;
        for i in out {
            lo = lo.min(self.starts[i as usize]);
            hi = hi.max(self.starts[i as usize] + self.lens[i as usize]);
        }
        lo..hi
    }
}

/// The kernel's reach in source pixels on one axis: its support, widened by `1 / scale` when
/// downscaling (0 for nearest, which reads one sample).
fn reach(filter: Filter, in_len: u32, out_len: u32) -> f64 {
    if filter == Filter::Nearest {
        return 0.0;
    }
    let scale = out_len as f64 / in_len as f64;
    filter.support() * if scale < 1.0 { 1.0 / scale } else { 1.0 }
}

/// Upper bound of the number of source samples that `n` consecutive output samples read
/// (the window of a tile, halo included), from the geometry alone: the centres of `n` outputs
/// span `(n - 1) / scale` source pixels, and the kernel reaches `reach` on each side, rounded
/// outwards. Never more than the source. Analytic, so budgets are checked before any table
/// exists; [`AxisCoeffs::input_span`] gives the exact span, always within this bound.
///
/// ```
/// use gigascale::{AxisCoeffs, Filter};
/// use gigascale::kernel::span_bound;
/// let c = AxisCoeffs::new(Filter::Lanczos3, 2000, 30000, 14);
/// assert!(c.input_span(0..256).len() as u64 <= span_bound(Filter::Lanczos3, 2000, 30000, 256));
/// ```
pub fn span_bound(filter: Filter, in_len: u32, out_len: u32, n: u64) -> u64 {
    let scale = out_len as f64 / in_len as f64;
    let centres = n.saturating_sub(1) as f64 / scale;
    // +2 for the rounding of each end (floor/ceil), +1 for floating-point slack.
    let bound = (centres + 2.0 * reach(filter, in_len, out_len)).ceil() + 3.0;
    (bound.min(in_len as f64) as u64).max(1)
}

/// Upper bound of the taps of any one output sample: [`span_bound`] of one output.
pub fn taps_bound(filter: Filter, in_len: u32, out_len: u32) -> u64 {
    span_bound(filter, in_len, out_len, 1)
}

/// Upper bound of the bytes of one axis' table: starts, tap counts and the padded weights.
pub fn table_bytes(filter: Filter, in_len: u32, out_len: u32) -> u64 {
    (out_len as u64).saturating_mul(8 + 4 * taps_bound(filter, in_len, out_len))
}

/// Weights of output index `i` for a continuous filter, renormalised and quantised.
fn row_weights(filter: Filter, in_len: u32, scale: f64, i: u32, one: i64) -> (i64, Vec<i32>) {
    let fscale = if scale < 1.0 { 1.0 / scale } else { 1.0 };
    let support = filter.support() * fscale;
    let src = (i as f64 + 0.5) / scale - 0.5;
    let lo = ((src - support).floor() as i64).max(0);
    let hi = ((src + support).ceil() as i64).min(in_len as i64 - 1);
    let mut w: Vec<f64> = (lo..=hi).map(|j| filter.weight((j as f64 - src) / fscale)).collect();
    let mut start = lo;
    // Drop zero-weight taps at both ends.
    while w.len() > 1 && w[0] == 0.0 {
        w.remove(0);
        start += 1;
    }
    while w.len() > 1 && *w.last().unwrap_or(&1.0) == 0.0 {
        w.pop();
    }
    let sum: f64 = w.iter().sum();
    if w.is_empty() || sum.abs() < 1e-12 {
        // Degenerate (cannot happen for these filters, kept for safety): nearest sample.
        let c = (src.round() as i64).clamp(0, in_len as i64 - 1);
        return (c, vec![one as i32]);
    }
    let mut q: Vec<i64> = w.iter().map(|v| (v / sum * one as f64).round() as i64).collect();
    let err = one - q.iter().sum::<i64>();
    let (imax, _) =
        w.iter().enumerate().fold((0, f64::MIN), |(bi, bv), (k, &v)| if v > bv { (k, v) } else { (bi, bv) });
    q[imax] += err;
    (start, q.into_iter().map(|v| v as i32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_to_one_and_stay_inside() {
        for f in Filter::ALL {
            for (n, m) in [(10, 150), (37, 137), (100, 30), (7, 3), (1, 5), (5, 1), (3000, 45000)] {
                let c = AxisCoeffs::new(f, n, m, 14);
                for i in 0..m {
                    let w = c.weights(i);
                    assert_eq!(w.iter().map(|&v| v as i64).sum::<i64>(), 1 << 14, "{f:?} {n}->{m} at {i}");
                    assert!(c.start(i) + w.len() as u32 <= n);
                }
            }
        }
    }

    #[test]
    fn halo_matches_support() {
        let c = AxisCoeffs::new(Filter::Lanczos3, 2000, 30000, 14);
        // Output 15000..15256 maps to source 1000..1017.07; lanczos3 adds up to 3 on each side.
        let s = c.input_span(15000..15256);
        assert!(s.start >= 997 && s.start <= 1000 && s.end >= 1017 && s.end <= 1021, "{s:?}");
        let d = AxisCoeffs::new(Filter::Lanczos3, 1000, 300, 14);
        assert!(d.max_taps() >= 19 && d.max_taps() <= 22, "{}", d.max_taps());
    }

    #[test]
    fn analytic_bounds_hold_for_every_filter_and_scale() {
        let mut rng = crate::digest::Lcg(7);
        let mut next = |m: u32| (rng.next() >> 33) as u32 % m + 1;
        for _ in 0..300 {
            let (n, m) = (next(400), next(3000));
            for f in Filter::ALL {
                let c = AxisCoeffs::new(f, n, m, 14);
                assert!(c.max_taps() as u64 <= taps_bound(f, n, m), "{f:?} {n}->{m}");
                for len in [1u32, 16, 64, 256] {
                    for a in (0..m).step_by(97) {
                        let b = (a + len).min(m);
                        let got = c.input_span(a..b).len() as u64;
                        assert!(got <= span_bound(f, n, m, (b - a) as u64), "{f:?} {n}->{m} {a}..{b}: {got}");
                    }
                }
            }
        }
    }

    #[test]
    fn nearest_is_point_sampling() {
        let c = AxisCoeffs::new(Filter::Nearest, 10, 3, 14);
        assert_eq!((c.start(0), c.start(1), c.start(2)), (1, 5, 8));
        assert_eq!(c.max_taps(), 1);
    }
}
