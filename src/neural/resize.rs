//! ncnn's `Interp` with bicubic interpolation (mode 3), as Real-ESRGAN's x2 and x3
//! animevideov3 files end with (the x4 network, then 0.5x or 0.75x): its taps, computed exactly
//! as ncnn computes them, over windows of a blob, and the float reference. The exact engine's
//! integer form (`Exact::resize`, which the GPU reproduces) applies the same taps.
//!
//! ncnn maps output pixel `d` to source position `f = (d + 0.5)·(in/out) - 0.5`, takes the four
//! pixels `floor(f) - 1 ..= floor(f) + 2` (clamped to the image) with Keys' cubic for
//! `A = -0.75` at the fraction, horizontally then vertically.

use super::graph::Resize;
use super::tensor::Tensor;
use rayon::prelude::*;

/// Fractional bits of the exact engine's tap weights (the GPU's too).
pub(crate) const TAP_BITS: i32 = 12;

/// The four source indices and weights of each output pixel `o0 .. o0 + n` of an axis of `gw_in`
/// pixels resized to `gw_out`.
pub(crate) fn taps(gw_in: usize, gw_out: usize, o0: usize, n: usize) -> Vec<([usize; 4], [f32; 4])> {
    let scale = gw_in as f64 / gw_out as f64;
    let last = gw_in as isize - 1;
    (o0..o0 + n)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let s = f.floor();
            let t = f - s;
            let idx = [-1isize, 0, 1, 2].map(|k| (s as isize + k).clamp(0, last) as usize);
            (idx, cubic(t))
        })
        .collect()
}

/// ncnn's `interpolate_cubic` (A = -0.75): the weights of the four taps at fraction `t`.
fn cubic(t: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let (x0, x1, x2) = (t + 1.0, t, 1.0 - t);
    let c0 = A * x0 * x0 * x0 - 5.0 * A * x0 * x0 + 8.0 * A * x0 - 4.0 * A;
    let c1 = (A + 2.0) * x1 * x1 * x1 - (A + 3.0) * x1 * x1 + 1.0;
    let c2 = (A + 2.0) * x2 * x2 * x2 - (A + 3.0) * x2 * x2 + 1.0;
    [c0, c1, c2, 1.0 - c0 - c1 - c2]
}

/// The weights as `TAP_BITS`-bit integers that sum to exactly one (the rounding's remainder
/// goes to the largest), so that a flat input stays flat.
pub(crate) fn fixed(w: [f32; 4]) -> [i32; 4] {
    let one = 1i32 << TAP_BITS;
    let mut q = w.map(|v| (v * one as f32).round() as i32);
    let big = (0..4).max_by(|&a, &b| w[a].abs().total_cmp(&w[b].abs())).unwrap_or(1);
    q[big] += one - q.iter().sum::<i32>();
    q
}

/// The global output size of `r` over `gw_in` pixels, if whole.
pub(crate) fn out_size(r: &Resize, gw_in: usize) -> Option<usize> {
    (gw_in * r.num).is_multiple_of(r.den).then_some(gw_in * r.num / r.den)
}

/// The output range of an axis: the pixels of `0..gw_out` whose four taps all lie in
/// `[a, b)` (taps clamped at the image's edges count as inside when the window reaches it).
fn range(a: usize, b: usize, gw_in: usize, gw_out: usize) -> (usize, usize) {
    let inside = |(idx, _): &([usize; 4], [f32; 4])| idx[0] >= a && idx[3] < b;
    let all = taps(gw_in, gw_out, 0, gw_out);
    let first = all.iter().position(inside).unwrap_or(gw_out);
    let end = all.iter().rposition(inside).map_or(first, |i| i + 1);
    (first, end.max(first))
}

/// The output window of `r` over `x`, per axis `(start, length, global length)`; `None` when
/// the resized size of the blob is not a whole number of pixels.
pub(crate) fn window<T>(r: &Resize, x: &Tensor<T>) -> Option<[(usize, usize, usize); 2]> {
    let (gw, gh) = (out_size(r, x.gw)?, out_size(r, x.gh)?);
    let (ox0, ox1) = range(x.x0, x.x0 + x.w, x.gw, gw);
    let (oy0, oy1) = range(x.y0, x.y0 + x.h, x.gh, gh);
    Some([(ox0, ox1 - ox0, gw), (oy0, oy1 - oy0, gh)])
}

/// `x` resized by `r` over its output window: the taps' weights made `W` by `weights` once,
/// then each output row the vertical combination `v(rows, weights)` of four rows that
/// `h(row, indices, weights)` combined horizontally.
pub(crate) fn apply<T, M, W>(
    r: &Resize,
    x: &Tensor<T>,
    weights: impl Fn([f32; 4]) -> W,
    h: impl Fn(&[T], [usize; 4], &W) -> M + Sync,
    v: impl Fn([M; 4], &W) -> T + Sync,
) -> Result<Tensor<T>, String>
where
    T: Copy + Default + Send + Sync,
    W: Send + Sync,
{
    let [(ox0, ow, gw), (oy0, oh, gh)] = window(r, x).ok_or("a bicubic Interp to a fraction of a pixel")?;
    let made = |t: Vec<([usize; 4], [f32; 4])>| -> Vec<([usize; 4], W)> {
        t.into_iter().map(|(i, w)| (i, weights(w))).collect()
    };
    let (xt, yt) = (made(taps(x.gw, gw, ox0, ow)), made(taps(x.gh, gh, oy0, oh)));
    let mut out = Tensor::window(x.c, (ox0, ow, gw), (oy0, oh, gh));
    out.data.par_chunks_mut(ow.max(1)).enumerate().for_each(|(i, row)| {
        let (c, (iy, wy)) = (i / oh.max(1), &yt[i % oh.max(1)]);
        let src = |k: usize| &x.data[(c * x.h + iy[k] - x.y0) * x.w..][..x.w];
        let rows = [src(0), src(1), src(2), src(3)];
        for (o, (ix, wx)) in row.iter_mut().zip(&xt) {
            let rel = ix.map(|i| i - x.x0);
            *o = v(rows.map(|r| h(r, rel, wx)), wy);
        }
    });
    Ok(out)
}

/// The float reference: ncnn's arithmetic (rows first, then the vertical sum).
pub(crate) fn float(r: &Resize, x: &Tensor) -> Result<Tensor, String> {
    let sum = |v: [f32; 4], w: &[f32; 4]| v[0] * w[0] + v[1] * w[1] + v[2] * w[2] + v[3] * w[3];
    apply(r, x, |w| w, |row, i, w| sum(i.map(|k| row[k]), w), sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_reads_the_pixels_around_each_pair() {
        // 0.5x: output d sits at 2d + 0.5, between source 2d and 2d + 1; weights symmetric.
        let t = taps(8, 4, 0, 4);
        assert_eq!(t[1].0, [1, 2, 3, 4]);
        assert!((t[1].1[1] - t[1].1[2]).abs() < 1e-6 && (t[1].1.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(t[0].0, [0, 0, 1, 2], "clamped at the edge");
        assert_eq!(fixed(t[1].1).iter().sum::<i32>(), 1 << TAP_BITS);
    }

    #[test]
    fn windows_keep_only_outputs_whose_taps_are_inside() {
        let r = Resize { num: 3, den: 4 };
        let x: Tensor<f32> = Tensor::window(1, (40, 40, 400), (0, 400, 400));
        let [(x0, w, gw), (y0, h, gh)] = window(&r, &x).unwrap();
        assert_eq!((gw, gh, y0, h), (300, 300, 0, 300));
        let t = taps(400, 300, x0, w);
        assert!(t.iter().all(|(i, _)| i[0] >= 40 && i[3] < 80));
        assert!(taps(400, 300, x0 - 1, 1)[0].0[0] < 40 && taps(400, 300, x0 + w, 1)[0].0[3] >= 80);
    }
}
