//! The scalar micro-kernel: the reference every other kernel reproduces bit for bit.
//!
//! It computes, for `MR` output channels and [`PX`] pixels of a panel, the wrapping 32-bit
//! sums of pairs of 16-bit products, exactly what AVX2's `vpmaddwd` + `vpaddd` compute.

use super::PX;

/// Adds to `acc[o][j]`, for every pair index `k < k2`, the two products of the 16-bit halves
/// of `panel[k·np + p0 + j]` with the same halves of `w[(o0 + o)·k2 + k]`.
pub(super) fn block<const MR: usize>(
    panel: &[i32],
    np: usize,
    p0: usize,
    w: &[i32],
    (o0, k2): (usize, usize),
    acc: &mut [[i32; PX]; MR],
) {
    for k in 0..k2 {
        let col = &panel[k * np + p0..][..PX];
        for (o, a) in acc.iter_mut().enumerate() {
            let pair = w[(o0 + o) * k2 + k];
            let (w0, w1) = (pair as i16 as i32, (pair >> 16) as i16 as i32);
            for (a, &x) in a.iter_mut().zip(col) {
                let dot = x as i16 as i32 * w0 + (x >> 16) * w1;
                *a = a.wrapping_add(dot);
            }
        }
    }
}
