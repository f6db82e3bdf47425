//! A deconvolution (ncnn's scatter: `out[i·s + k] += w[k] · x[i]`, then cropped) as a
//! stride-1 convolution with `s²` times the output channels, one per phase, so that it runs on
//! the same micro-kernels as every other layer.
//!
//! Along one axis, full output `f = b·s + ph` takes `x[b - j] · w[ph + s·j]` for `j < K/s`:
//! a `K/s`-tap correlation padded by `K/s - 1`, whose tap `t` weighs `w[ph + s·(K/s - 1 - t)]`.
//! Output channel `(p·s + py)·s + px` of the phase convolution is phase `(py, px)` of channel
//! `p`. Integer sums do not depend on their order, so this is the scatter's result exactly.
//! Its output window is that of any stride-1 convolution (`reference::conv_window`).

use super::graph::{Act, Conv};
use super::reference::{crop_range, Tensor};

/// The phase convolution of deconvolution `c`, if `c` has one (dilation 1, kernel a multiple
/// of the stride).
pub(crate) fn phase_conv(c: &Conv, w: &[i32]) -> Option<(Conv, Vec<i32>)> {
    let (s, k) = (c.stride, c.kernel);
    if !c.transposed || c.dilation != 1 || s == 0 || k % s != 0 {
        return None;
    }
    let t = k / s;
    let mut pw = Vec::with_capacity(w.len());
    for p in 0..c.cout {
        for py in 0..s {
            for px in 0..s {
                for q in 0..c.cin {
                    for ty in 0..t {
                        for tx in 0..t {
                            let (ky, kx) = (py + s * (t - 1 - ty), px + s * (t - 1 - tx));
                            pw.push(w[((p * c.cin + q) * k + ky) * k + kx]);
                        }
                    }
                }
            }
        }
    }
    let conv = Conv {
        cin: c.cin,
        cout: c.cout * s * s,
        kernel: t,
        stride: 1,
        dilation: 1,
        pad: [t - 1; 4],
        weights: Vec::new(),
        bias: Vec::new(),
        act: Act::None,
        transposed: false,
        constant_inputs: None,
    };
    Some((conv, pw))
}

/// The cropped output window of deconvolution `c` whose phases cover window `ph`.
pub(crate) fn interleave_window<T>(c: &Conv, ph: &Tensor<T>) -> [(usize, usize, usize); 2] {
    let s = c.stride;
    let crop = |b0: usize, n: usize, nb: usize, lo: usize, hi: usize| {
        let (start, end, keep) = crop_range(b0 * s, (b0 + n) * s, nb * s, lo, hi);
        (start, end - start, keep)
    };
    [crop(ph.x0, ph.w, ph.gw, c.pad[0], c.pad[2]), crop(ph.y0, ph.h, ph.gh, c.pad[1], c.pad[3])]
}

/// Interleaves the phases `ph` (the phase convolution's output) into deconvolution `c`'s
/// cropped output window.
pub(crate) fn interleave<T: Copy + Default>(c: &Conv, ph: &Tensor<T>) -> Tensor<T> {
    let s = c.stride;
    let [(ox0, ow, gw), (oy0, oh, gh)] = interleave_window(c, ph);
    let mut out = Tensor::window(c.cout, (ox0, ow, gw), (oy0, oh, gh));
    for p in 0..c.cout {
        for oy in 0..out.h {
            let fy = oy0 + oy + c.pad[1];
            let (by, py) = (fy / s - ph.y0, fy % s);
            for ox in 0..out.w {
                let fx = ox0 + ox + c.pad[0];
                let (bx, px) = (fx / s - ph.x0, fx % s);
                let plane = (p * s + py) * s + px;
                out.data[(p * out.h + oy) * out.w + ox] = ph.data[(plane * ph.h + by) * ph.w + bx];
            }
        }
    }
    out
}
