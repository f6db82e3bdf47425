//! A layer's weights for the tensor-core convolutions (`neural_tensor.rs`): split into the
//! halves the shader reads as matrices ([`tensor_weights`]), and how many taps the shader sums
//! in single floats before it folds them into its integer sums ([`flush_runs`]).
//!
//! A float accumulator adds integers exactly while every partial sum stays within 2^24. The
//! worst-case runs ([`flush_taps`]) assume every weight's halves at their largest; a trained
//! layer's low halves spread over their range and its high halves are mostly small, so the
//! sum of their magnitudes over a layer's taps is a fraction of that. Each term of a run is an
//! input's half (or a lower part read whole: at most 128 in magnitude, whatever the image)
//! times a weight's half, so a run whose weights' halves, per output channel, sum in magnitude
//! to `M` keeps every partial sum of its accumulators within `128·M`: a run is as long as that
//! stays within 2^24 for every output channel — a bound on the weights alone, true for every
//! input. Folding a run takes each accumulator through workgroup memory: realesrgan-x4plus's
//! upper parts' convolutions on an H100 took 0.74 s with the worst case's runs, 0.65 s with
//! its layers' own, 0.58 s with runs four times the worst case's and no bound kept
//! (docs/benchmarks.md 2026-12-06 (12)).
//!
//! The shader folds after every `R` 16-channel slices of its input (all taps of a slice in one
//! run); `R` is `⌈slices / n⌉` for the fewest runs `n` that keep the bound, so that layers of
//! one shape mostly share one shader.

use super::neural_cut::workgroup_channels;
use super::neural_tensor::{flush_taps, padded, split};
use half::f16;

/// The weights (`[out][in][tap]`) as the shader reads them: the high halves, then the low
/// halves, each `[tap][16-channel input slice][16-channel output block][16][16]` half floats
/// (every matrix a shader reads is 512 contiguous bytes), packed two to a word.
///
/// With `columns` each matrix is stored by columns (input `ci`, output `o` at `16·o + ci`) and
/// the shader loads it column-major ([`weights_by_columns`](super::neural_cut::weights_by_columns)).
pub(crate) fn tensor_weights(w: &[i32], (cout, cin, kk): (usize, usize, usize), columns: bool) -> Vec<i32> {
    let (ci_pad, co_pad) = (padded(cin, 16), padded(cout, workgroup_channels(cout)));
    let len = kk * ci_pad * co_pad;
    let mut halves = vec![f16::ZERO; 2 * len];
    for o in 0..cout {
        for ci in 0..cin {
            for t in 0..kk {
                let (hi, lo) = split(w[(o * cin + ci) * kk + t]);
                let inner = if columns { o % 16 * 16 + ci % 16 } else { ci % 16 * 16 + o % 16 };
                let at = ((t * ci_pad / 16 + ci / 16) * (co_pad / 16) + o / 16) * 256 + inner;
                halves[at] = f16::from_f32(hi as f32);
                halves[len + at] = f16::from_f32(lo as f32);
            }
        }
    }
    halves.chunks(2).map(|p| (p[0].to_bits() as u32 | (p[1].to_bits() as u32) << 16) as i32).collect()
}

/// The largest magnitude of an input's half a term multiplies: an activation's high or low
/// half (`split`), or a lower part of a 24-bit value read whole.
const HALF_MOST: i64 = 128;
/// The largest magnitude every partial sum of a single-float accumulator may reach exactly.
const FLOAT_EXACT: i64 = 1 << 24;

/// The taps a run of the convolution with weights `w` (`[out][in][tap]`, `cout` x `cin` x
/// `kk`) sums before it folds them: for its input's halves (`[0]`; four products a tap, the
/// middle accumulator's terms `ah·wl + al·wh`) and, for a network with 24-bit activations
/// (`wide`), for the lower parts read whole (`[1]`; `a·wh` and `a·wl` apart). Never fewer than
/// the worst case's ([`flush_taps`]) unless that is more than the layer's taps; a multiple of
/// `kk`.
pub(crate) fn flush_runs(w: &[i32], (cout, cin, kk): (usize, usize, usize), wide: bool) -> [usize; 2] {
    let slices = cin.div_ceil(16);
    // Per output channel and slice: the magnitudes of the weights' high and low halves.
    let mut high = vec![0i64; cout * slices];
    let mut low = vec![0i64; cout * slices];
    for (i, &v) in w.iter().enumerate().take(cout * cin * kk) {
        let (o, ci) = (i / (cin * kk), i / kk % cin);
        let (h, l) = split(v);
        high[o * slices + ci / 16] += h.abs() as i64;
        low[o * slices + ci / 16] += l.abs() as i64;
    }
    let halves = |o: usize, s: std::ops::Range<usize>| {
        (high[o * slices..][s.clone()].iter().sum(), low[o * slices..][s].iter().sum())
    };
    let upper = runs_within(slices, cout, |o, s| {
        let (h, l): (i64, i64) = halves(o, s);
        h + l
    });
    let lower = runs_within(slices, cout, |o, s| {
        let (h, l): (i64, i64) = halves(o, s);
        h.max(l)
    });
    // The worst case's runs always keep the bound; a run of every slice is the longest.
    let run = |r: usize, lower: bool| r.max(flush_taps(wide, lower) / kk).min(slices.max(1)) * kk;
    [run(upper, false), run(lower, true)]
}

/// The slices of a run, `⌈slices / n⌉` for the fewest runs `n` for which every run's
/// `most(output, its slices)` (the largest magnitude its terms may sum to, over `HALF_MOST`)
/// keeps every output channel's sums exact (1 if none does).
fn runs_within(slices: usize, cout: usize, most: impl Fn(usize, std::ops::Range<usize>) -> i64) -> usize {
    for n in 1..=slices.max(1) {
        let r = slices.div_ceil(n);
        let exact = (0..slices).step_by(r).all(|s0| {
            let run = s0..(s0 + r).min(slices);
            (0..cout).all(|o| HALF_MOST * most(o, run.clone()) <= FLOAT_EXACT)
        });
        if exact {
            return r;
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_split_into_their_places() {
        // 2 outputs, 3 inputs, 1 tap.
        let w = vec![1000, -3, 64, 8191, -8191, 7];
        let words = tensor_weights(&w, (2, 3, 1), false);
        let halves: Vec<f32> = words
            .iter()
            .flat_map(|&v| [v as u32 as u16, (v as u32 >> 16) as u16])
            .map(|b| f16::from_bits(b).to_f32())
            .collect();
        let len = 16 * 16; // one tap, 16 input channels, 16 outputs (two padded to a block)
        assert_eq!(halves.len(), 2 * len);
        // Output 1, input 0 is w[3] = 8191 = 256·32 - 1.
        assert_eq!((halves[1], halves[len + 1]), (32.0, -1.0));
        // Output 0, input 2 is w[2] = 64 = 256·0 + 64; output 1, input 1 is -8191 = 256·-32 + 1.
        assert_eq!((halves[2 * 16], halves[len + 2 * 16]), (0.0, 64.0));
        assert_eq!((halves[16 + 1], halves[len + 16 + 1]), (-32.0, 1.0));
        // 20 outputs, 17 inputs, 2 taps: output 18, input 16, tap 1 is in the second tap's
        // second input slice, second output block, row 0, column 2.
        let mut w = vec![0; 20 * 17 * 2];
        w[(18 * 17 + 16) * 2 + 1] = 257;
        let words = tensor_weights(&w, (20, 17, 2), false);
        let at = ((2 + 1) * 2 + 1) * 256 + 2;
        let half = |i: usize| f16::from_bits((words[i / 2] as u32 >> (16 * (i % 2))) as u16).to_f32();
        let len = 2 * 32 * 32;
        assert_eq!((half(at), half(len + at)), (1.0, 1.0));
        // By columns, the same weight is at row 2 (its output), column 0 (its input).
        let words = tensor_weights(&w, (20, 17, 2), true);
        let half = |i: usize| f16::from_bits((words[i / 2] as u32 >> (16 * (i % 2))) as u16).to_f32();
        let at = ((2 + 1) * 2 + 1) * 256 + 2 * 16;
        assert_eq!((half(at), half(len + at)), (1.0, 1.0));
    }
    use crate::gpu::neural_tensor::{FLUSH_TAPS, FLUSH_TAPS_LOWER, FLUSH_TAPS_WIDE};

    /// Weights at their largest halves keep the worst case's runs; small weights take the
    /// whole layer in one run; in between, runs are as long as the bound allows and every run
    /// the shader makes keeps it.
    #[test]
    fn runs_follow_the_weights() {
        let (cout, cin, kk) = (8, 64, 9);
        let n = cout * cin * kk;
        // Weights whose halves are near their largest (32639 = 256·127 + 127): the worst
        // case's runs (three slices of the upper parts' form), or the layer's four slices
        // where those are fewer.
        let big = vec![32639; n];
        assert_eq!(flush_runs(&big, (cout, cin, kk), true), [FLUSH_TAPS_WIDE / kk * kk, 4 * kk]);
        assert!(FLUSH_TAPS_LOWER / kk > 4 && FLUSH_TAPS / kk > 4);
        assert_eq!(flush_runs(&big, (cout, 12 * 16, kk), true)[1], FLUSH_TAPS_LOWER / kk * kk);
        assert_eq!(flush_runs(&big, (cout, 12 * 16, kk), false)[0], FLUSH_TAPS / kk * kk);
        let small: Vec<i32> = (0..n).map(|i| (i as i32 % 7) - 3).collect();
        assert_eq!(flush_runs(&small, (cout, cin, kk), true), [4 * kk, 4 * kk]);
        // Low halves of 100 everywhere: 128·(16·9·100) a slice, 1 843 200: nine slices a
        // run (16 588 800) but not ten; four slices here, one run.
        let mid = vec![100; n];
        assert_eq!(flush_runs(&mid, (cout, cin, kk), true)[0], 4 * kk);
        let wide_cin = 12 * 16;
        let mid = vec![100; cout * wide_cin * kk];
        // 12 slices: not one run of 12 (22 118 400), two of 6.
        assert_eq!(flush_runs(&mid, (cout, wide_cin, kk), true)[0], 6 * kk);
        let big_wide = vec![32639; cout * wide_cin * kk];
        // (16-bit networks' weights have 14 bits: `big`'s are beyond what their worst case
        // assumes.)
        for (w, cin, narrow) in
            [(&mid, wide_cin, true), (&big, cin, false), (&big_wide, wide_cin, false), (&small, cin, true)]
        {
            for (form, wide) in [(0, true), (1, true), (0, false)].into_iter().filter(|f| f.1 || narrow) {
                let taps = flush_runs(w, (cout, cin, kk), wide)[form];
                assert_eq!(taps % kk, 0);
                assert!(run_sums(w, (cout, cin, kk), taps / kk, form == 1) <= FLOAT_EXACT);
            }
        }
    }

    /// The largest `128·Σ|terms|` of any accumulator over the runs of `r` slices the shader
    /// makes (`lower`: the two accumulators of the lower parts' form).
    fn run_sums(w: &[i32], (cout, cin, kk): (usize, usize, usize), r: usize, lower: bool) -> i64 {
        let mut most = 0;
        for o in 0..cout {
            for c0 in (0..cin).step_by(16 * r) {
                let (mut h, mut l) = (0i64, 0i64);
                for ci in c0..(c0 + 16 * r).min(cin) {
                    for t in 0..kk {
                        let (wh, wl) = split(w[(o * cin + ci) * kk + t]);
                        h += wh.abs() as i64;
                        l += wl.abs() as i64;
                    }
                }
                let m = if lower { h.max(l) } else { h + l };
                most = most.max(HALF_MOST * m);
            }
        }
        most
    }
}
