//! The float reference of a network, evaluable on any window: every operation of [`Graph`]
//! written out plainly in f32 with ncnn's semantics (zero padding inside convolutions at the
//! *image's* border, deconvolution as a scatter then cropped, depth-to-space order, nearest
//! enlargement).
//!
//! A blob is held as a window of its global extent ([`Tensor`] knows where it lies). An
//! operation computes exactly the output pixels whose inputs all lie inside the window or
//! outside the global extent (where ncnn reads its zero padding), so a window's result equals
//! the whole image's on the pixels it covers, bit for bit: each pixel is summed in the same
//! order whatever the window. Tiles computed with enough halo are therefore seamless by
//! construction; the whole image is the window that covers everything.

use super::elementwise::{at, Map};
use super::graph::{Act, Conv, Graph, Op, Resize};
use rayon::prelude::*;

pub(crate) use super::tensor::Tensor;

/// The arithmetic of one evaluation: the float reference, or the exact integer engine.
/// Moving samples around (pixel shuffle, enlargement, splitting) is the same for both.
pub(crate) trait Engine<T> {
    /// Convolution or deconvolution `c` of node `n`.
    fn conv(&self, n: usize, c: &Conv, x: &Tensor<T>) -> Result<Tensor<T>, String>;
    /// An activation layer.
    fn act(&self, n: usize, a: &Act, x: Tensor<T>) -> Tensor<T>;
    /// A weighted sum of blobs over their common window `win`, into blob `out`.
    fn sum(&self, n: usize, coeffs: &[f32], xs: &[&Tensor<T>], win: Window, ins: &[usize], out: usize) -> Tensor<T>;
    /// `x · mul[c] + add[c]` on channel `c` (slices of one value: every channel's).
    fn affine(&self, n: usize, mul: &[f32], add: &[f32], x: Tensor<T>, inp: usize, out: usize) -> Tensor<T>;
    /// A function of every value, of node `n`.
    fn map(&self, n: usize, m: &Map, x: Tensor<T>, inp: usize, out: usize) -> Tensor<T>;
    /// The product of two blobs over their common window `win`, into blob `out`.
    fn product(&self, xs: &[&Tensor<T>], win: Window, ins: &[usize], out: usize) -> Tensor<T>;
    /// Channel concatenation of blobs over their common window `win`, into blob `out`.
    fn concat(&self, xs: &[&Tensor<T>], win: Window, ins: &[usize], out: usize) -> Tensor<T>;
    /// A bicubic resize of blob `inp` into blob `out`.
    fn resize(&self, r: &Resize, x: &Tensor<T>, inp: usize, out: usize) -> Result<Tensor<T>, String>;
    /// `x · mul[c]` on channel `c` (a SE block's multipliers), blob `inp` into blob `out`.
    fn scale(&self, mul: &[f32], x: Tensor<T>, inp: usize, out: usize) -> Tensor<T>;
    /// Per channel, the sum of blob `b`'s values over `win` (within `x`), in real units —
    /// exact for the integer engine, so that sums over parts add up to the whole's.
    fn channel_sums(&self, x: &Tensor<T>, win: Window, b: usize) -> Vec<f64>;
}

/// Per SE block (by its pooled blob): its multipliers for the image at hand.
pub(crate) type SeScales = std::collections::HashMap<usize, Vec<f32>>;

/// A window `(x0, y0, w, h)` of the (padded) image, in one blob's pixels.
pub(crate) type Window = (usize, usize, usize, usize);

/// Runs `g` on `input` (a window of the padded image) with `engine`; `seen(blob, tensor)` is
/// called with every blob as it is made.
pub(crate) fn run_with<T: Copy + Default, E: Engine<T>>(
    g: &Graph,
    engine: &E,
    input: Tensor<T>,
    seen: &mut dyn FnMut(usize, &Tensor<T>),
) -> Result<Tensor<T>, String> {
    run_until(g, engine, input, &SeScales::new(), g.output, seen)
}

/// [`run_with`] with the SE blocks' multipliers `scales` (a block missing there computes its
/// own from its pooled blob, which must then be whole), stopping once blob `stop` is made and
/// returning it.
pub(crate) fn run_until<T: Copy + Default, E: Engine<T>>(
    g: &Graph,
    engine: &E,
    input: Tensor<T>,
    scales: &SeScales,
    stop: usize,
    seen: &mut dyn FnMut(usize, &Tensor<T>),
) -> Result<Tensor<T>, String> {
    run_nodes(g, engine, Some(&input), scales, (vec![None; g.blobs], 0), stop, seen)
}

/// Runs the nodes of `g` from node `from` on, over the blobs already made (`start`: the blobs
/// and `from`), until blob `stop` is made, and returns it (as [`run_until`]). `input` is the
/// window the Input layer gives (none where the nodes run do not include it).
pub(crate) fn run_nodes<T: Copy + Default, E: Engine<T>>(
    g: &Graph,
    engine: &E,
    input: Option<&Tensor<T>>,
    scales: &SeScales,
    (mut blobs, from): (Vec<Option<Tensor<T>>>, usize),
    stop: usize,
    seen: &mut dyn FnMut(usize, &Tensor<T>),
) -> Result<Tensor<T>, String> {
    let mut last = g.last_uses();
    last[stop] = usize::MAX;
    for (n, node) in g.nodes.iter().enumerate().skip(from) {
        if blobs[stop].is_some() {
            break;
        }
        let missing = || format!("{}: input blob not computed", node.name);
        let first = node.inputs.first().copied().unwrap_or(0);
        // A blob read for the last time by a layer that consumes it is moved, not copied.
        let owned = |blobs: &mut [Option<Tensor<T>>]| match last[first] == n && node.inputs.len() == 1 {
            true => blobs[first].take().ok_or_else(missing),
            false => blobs[first].clone().ok_or_else(missing),
        };
        let b = &mut blobs[..];
        let outs: Vec<Tensor<T>> = match &node.op {
            Op::Input => vec![input.ok_or_else(|| format!("{}: no input window", node.name))?.clone()],
            Op::Conv(c) => vec![engine.conv(n, c, blob(b, first, &node.name)?)?],
            Op::PixelShuffle(r) => vec![pixel_shuffle(*r, blob(b, first, &node.name)?)],
            Op::Nearest(sh, sw) => vec![nearest(*sh, *sw, blob(b, first, &node.name)?)],
            Op::Resize(r) => vec![engine.resize(r, blob(b, first, &node.name)?, first, node.outputs[0])?],
            Op::Act(a) => vec![engine.act(n, a, owned(b)?)],
            Op::Affine { mul, add } => vec![engine.affine(n, mul, add, owned(b)?, first, node.outputs[0])],
            Op::Map(m) => vec![engine.map(n, m, owned(b)?, first, node.outputs[0])],
            // Sums and concatenations read their inputs where they are (no copies).
            Op::Sum(coeffs) => {
                let (xs, win) = gather(b, &node.inputs, &node.name)?;
                vec![engine.sum(n, coeffs, &xs, win, &node.inputs, node.outputs[0])]
            }
            Op::Concat => {
                let (xs, win) = gather(b, &node.inputs, &node.name)?;
                vec![engine.concat(&xs, win, &node.inputs, node.outputs[0])]
            }
            Op::Product => {
                let (xs, win) = gather(b, &node.inputs, &node.name)?;
                vec![engine.product(&xs, win, &node.inputs, node.outputs[0])]
            }
            Op::Split => vec![owned(b)?; node.outputs.len()],
            Op::Crop(amounts) => vec![crop(amounts, blob(b, first, &node.name)?)],
            Op::SpaceToDepth(s) => vec![space_to_depth(*s, blob(b, first, &node.name)?)],
            Op::Se(se) => {
                let mul = match scales.get(&se.pooled) {
                    Some(m) => m.clone(),
                    None => {
                        let p = blob(b, se.pooled, &node.name)?;
                        if (p.x0, p.y0, p.w, p.h) != (0, 0, p.gw, p.gh) {
                            return Err(format!(
                                "{}: a SE block on part of the image needs its multipliers",
                                node.name
                            ));
                        }
                        let sums = engine.channel_sums(p, (0, 0, p.w, p.h), se.pooled);
                        se.multipliers_of_sums(&sums, p.w * p.h)
                    }
                };
                vec![engine.scale(&mul, blob(b, first, &node.name)?.clone(), first, node.outputs[0])]
            }
        };
        for &i in &node.inputs {
            if last[i] == n {
                blobs[i] = None;
            }
        }
        for (&o, t) in node.outputs.iter().zip(outs) {
            seen(o, &t);
            blobs[o] = Some(t);
        }
    }
    blobs[stop].take().ok_or_else(|| "the output blob was not computed".into())
}

/// Blobs `ins`, computed, and their common window.
fn gather<'b, T>(
    blobs: &'b [Option<Tensor<T>>],
    ins: &[usize],
    layer: &str,
) -> Result<(Vec<&'b Tensor<T>>, Window), String> {
    let xs = ins.iter().map(|&i| blob(blobs, i, layer)).collect::<Result<Vec<_>, _>>()?;
    let win = common_window(&xs)?;
    Ok((xs, win))
}

/// Blob `i`, computed.
fn blob<'b, T>(blobs: &'b [Option<Tensor<T>>], i: usize, layer: &str) -> Result<&'b Tensor<T>, String> {
    blobs.get(i).and_then(Option::as_ref).ok_or_else(|| format!("{layer}: input blob not computed"))
}

/// The float reference.
pub(crate) struct Float;

impl Engine<f32> for Float {
    fn conv(&self, _n: usize, c: &Conv, x: &Tensor) -> Result<Tensor, String> {
        if c.transposed {
            deconv_with(c, x, |_| 0f32, |a, wi, v| a + c.weights[wi] * v, |p, a| activate(&c.act, p, a + c.bias[p]))
        } else {
            conv_with(c, x, |p| c.bias[p], |a, wi, v| a + c.weights[wi] * v, |p, a| activate(&c.act, p, a))
        }
    }
    fn act(&self, _n: usize, a: &Act, mut t: Tensor) -> Tensor {
        let plane = t.h * t.w;
        for (i, v) in t.data.iter_mut().enumerate() {
            *v = activate(a, i / plane, *v);
        }
        t
    }
    fn sum(&self, _n: usize, coeffs: &[f32], xs: &[&Tensor], win: Window, _ins: &[usize], _out: usize) -> Tensor {
        combine(xs, win, |rows, out| {
            for (x, o) in out.iter_mut().enumerate() {
                *o = rows.iter().zip(coeffs).map(|(r, &k)| k * r[x]).sum();
            }
        })
    }
    fn affine(&self, _n: usize, mul: &[f32], add: &[f32], mut t: Tensor, _i: usize, _o: usize) -> Tensor {
        per_channel(&mut t, |c, v| *v = *v * at(mul, c) + at(add, c));
        t
    }
    fn map(&self, _n: usize, m: &Map, mut t: Tensor, _i: usize, _o: usize) -> Tensor {
        t.data.par_iter_mut().for_each(|v| *v = m.eval(*v));
        t
    }
    fn product(&self, xs: &[&Tensor], win: Window, _ins: &[usize], _out: usize) -> Tensor {
        combine(xs, win, |rows, out| out.iter_mut().enumerate().for_each(|(x, o)| *o = rows[0][x] * rows[1][x]))
    }
    fn concat(&self, xs: &[&Tensor], win: Window, _ins: &[usize], _out: usize) -> Tensor {
        concat(xs, win, |_, row, out| out.copy_from_slice(row))
    }
    fn resize(&self, r: &Resize, x: &Tensor, _inp: usize, _out: usize) -> Result<Tensor, String> {
        super::resize::float(r, x)
    }
    fn scale(&self, mul: &[f32], mut t: Tensor, _i: usize, _o: usize) -> Tensor {
        per_channel(&mut t, |c, v| *v *= at(mul, c));
        t
    }
    fn channel_sums(&self, x: &Tensor, win: Window, _b: usize) -> Vec<f64> {
        sums_with(x, win, |v| v as f64)
    }
}

/// Per channel, the sum of `f(value)` over window `(x0, y0, w, h)` of `x`'s blob (in f64).
pub(crate) fn sums_with<T: Copy + Sync>(
    x: &Tensor<T>,
    (x0, y0, w, h): Window,
    f: impl Fn(T) -> f64 + Sync,
) -> Vec<f64> {
    (0..x.c)
        .into_par_iter()
        .map(|c| (y0..y0 + h).map(|y| row_of(x, c, y, x0, w).iter().map(|&v| f(v)).sum::<f64>()).sum())
        .collect()
}

/// The window of `x` less `[left, top, right, bottom]` pixels of its blob's edges, in the
/// cropped blob's coordinates.
pub(crate) fn crop<T: Copy + Default>(amounts: &[usize; 4], x: &Tensor<T>) -> Tensor<T> {
    let [xa, ya] = crop_window(amounts, x);
    let [l, t, ..] = *amounts;
    let mut out = Tensor::window(x.c, xa, ya);
    for c in 0..x.c {
        for y in 0..out.h {
            let src = row_of(x, c, ya.0 + y + t, xa.0 + l, out.w);
            out.data[(c * out.h + y) * out.w..][..out.w].copy_from_slice(src);
        }
    }
    out
}

/// The window (per axis: start, length, global length) of `x` less `[left, top, right,
/// bottom]` pixels of its blob's edges, in the cropped blob's coordinates.
pub(crate) fn crop_window<T>(&[l, t, r, b]: &[usize; 4], x: &Tensor<T>) -> [(usize, usize, usize); 2] {
    let axis = |a: usize, n: usize, g: usize, lo: usize, hi: usize| {
        let (start, end, keep) = crop_range(a, a + n, g, lo, hi);
        (start, end - start, keep)
    };
    [axis(x.x0, x.w, x.gw, l, r), axis(x.y0, x.h, x.gh, t, b)]
}

/// The output window of space to depth by `s` along one axis: the whole groups of `s` inside
/// `[a, a + n)` of a blob of `g` (a last partial group is dropped, as a strided convolution
/// drops it).
pub(crate) fn s2d_range(a: usize, n: usize, g: usize, s: usize) -> (usize, usize, usize) {
    let (start, end) = (a.div_ceil(s), ((a + n).min(g) / s).max(a.div_ceil(s)));
    (start, end - start, g / s)
}

/// Space to depth by `s`: output channel `(c·s + i)·s + j` at `(y, x)` is input channel `c`
/// at `(y·s + i, x·s + j)`.
pub(crate) fn space_to_depth<T: Copy + Default>(s: usize, x: &Tensor<T>) -> Tensor<T> {
    let (xa, ya) = (s2d_range(x.x0, x.w, x.gw, s), s2d_range(x.y0, x.h, x.gh, s));
    let mut out = Tensor::window(x.c * s * s, xa, ya);
    if out.w == 0 || out.h == 0 {
        return out;
    }
    for c in 0..x.c {
        for i in 0..s {
            for j in 0..s {
                let oc = (c * s + i) * s + j;
                for y in 0..out.h {
                    let src = row_of(x, c, (ya.0 + y) * s + i, xa.0 * s + j, (out.w - 1) * s + 1);
                    let dst = &mut out.data[(oc * out.h + y) * out.w..][..out.w];
                    dst.iter_mut().zip(src.iter().step_by(s)).for_each(|(d, &v)| *d = v);
                }
            }
        }
    }
    out
}

/// `f(channel, value)` on every value of `t`, planes in parallel.
pub(crate) fn per_channel<T: Send>(t: &mut Tensor<T>, f: impl Fn(usize, &mut T) + Sync) {
    let plane = (t.h * t.w).max(1);
    t.data.par_chunks_mut(plane).enumerate().for_each(|(c, p)| p.iter_mut().for_each(|v| f(c, v)));
}

/// Activation `a` of channel `c` on float value `v`.
pub(crate) fn activate(a: &Act, c: usize, v: f32) -> f32 {
    match a {
        Act::None => v,
        Act::Leaky(s) => {
            if v < 0.0 {
                v * s
            } else {
                v
            }
        }
        Act::PRelu(s) => {
            if v < 0.0 {
                v * at(s, c)
            } else {
                v
            }
        }
    }
}

/// The output range of a stride-1 convolution along one axis: input window `[a, b)` of a
/// global length `n`, padding `lo`/`hi`, kernel extent `dk`. Returns (start, end, global
/// length) of the outputs whose taps are all inside the window or outside `[0, n)`.
pub(crate) fn conv_range(a: usize, b: usize, n: usize, lo: usize, hi: usize, dk: usize) -> (usize, usize, usize) {
    let out_n = (n + lo + hi + 1).saturating_sub(dk);
    let start = if a == 0 { 0 } else { a + lo };
    let end = if b == n { out_n } else { (b + lo + 1).saturating_sub(dk) };
    (start, end.max(start), out_n)
}

/// The output window of stride-1 convolution `c` over `x`, per axis `(start, length, global
/// length)`: the outputs whose taps are all inside `x`'s window or outside the image.
pub(crate) fn conv_window<T>(c: &Conv, x: &Tensor<T>) -> [(usize, usize, usize); 2] {
    let dk = c.dilation * (c.kernel - 1) + 1;
    let (ox0, ox1, gw) = conv_range(x.x0, x.x0 + x.w, x.gw, c.pad[0], c.pad[2], dk);
    let (oy0, oy1, gh) = conv_range(x.y0, x.y0 + x.h, x.gh, c.pad[1], c.pad[3], dk);
    [(ox0, ox1 - ox0, gw), (oy0, oy1 - oy0, gh)]
}

/// A deconvolution's full output range `[f0, f1)` of global length `full` cropped by its
/// padding `lo`/`hi`: (start, end, kept length), clipped to the kept extent.
pub(crate) fn crop_range(f0: usize, f1: usize, full: usize, lo: usize, hi: usize) -> (usize, usize, usize) {
    let keep = full.saturating_sub(lo + hi);
    let start = f0.saturating_sub(lo).min(keep);
    (start, f1.saturating_sub(lo).clamp(start, keep), keep)
}

/// A stride-1 convolution over a window: for each output channel `p` and valid pixel, the
/// accumulator starts at `init(p)`, takes `mac(acc, weight index, input)` for every tap in the
/// order input channel, kernel row, kernel column (zero outside the image), and ends as
/// `finish(p, acc)`.
pub(crate) fn conv_with<T: Copy + Default + Send + Sync, A: Copy>(
    c: &Conv,
    x: &Tensor<T>,
    init: impl Fn(usize) -> A + Sync,
    mac: impl Fn(A, usize, T) -> A + Sync,
    finish: impl Fn(usize, A) -> T + Sync,
) -> Result<Tensor<T>, String> {
    if c.stride != 1 {
        return Err("strided convolution".into());
    }
    let [(ox0, ow, gw), (oy0, oh, gh)] = conv_window(c, x);
    let mut out = Tensor::window(c.cout, (ox0, ow, gw), (oy0, oh, gh));
    let (ow, oh) = (out.w, out.h);
    accumulate(c, &mut out, init, finish, |acc, q, wi, ky, kx| {
        // Outputs whose tap reads inside the image along x: a contiguous run of each row (the
        // others read ncnn's zero padding, and adding zero changes no sum).
        let gx = (ox0 + kx * c.dilation) as isize - c.pad[0] as isize;
        let lo = (-gx).clamp(0, ow as isize) as usize;
        let hi = (x.gw as isize - gx).clamp(lo as isize, ow as isize) as usize;
        let src = x.plane(q);
        for oy in 0..oh {
            let gy = (oy0 + oy + ky * c.dilation) as isize - c.pad[1] as isize;
            if lo == hi || gy < 0 || gy >= x.gh as isize {
                continue;
            }
            let row = &src[(gy as usize - x.y0) * x.w + (gx + lo as isize) as usize - x.x0..][..hi - lo];
            for (a, &v) in acc[oy * ow + lo..oy * ow + hi].iter_mut().zip(row) {
                *a = mac(*a, wi, v);
            }
        }
    });
    Ok(out)
}

/// The loop both convolutions share: for each output channel `p`, accumulators start at
/// `init(p)`, `taps(acc, q, weight index, ky, kx)` adds the taps of input channel `q` and
/// kernel position `(ky, kx)` — in the order input channel, kernel row, kernel column, so a
/// pixel is summed the same way whatever the window — and `finish(p, acc)` makes the output.
fn accumulate<T: Copy + Default + Send + Sync, A: Copy>(
    c: &Conv,
    out: &mut Tensor<T>,
    init: impl Fn(usize) -> A + Sync,
    finish: impl Fn(usize, A) -> T + Sync,
    taps: impl Fn(&mut [A], usize, usize, usize, usize) + Sync,
) {
    let (n, k) = (out.h * out.w, c.kernel);
    out.data.chunks_mut(n.max(1)).enumerate().for_each(|(p, plane)| {
        let mut acc = vec![init(p); n];
        for q in 0..c.cin {
            for ky in 0..k {
                for kx in 0..k {
                    taps(&mut acc, q, ((p * c.cin + q) * k + ky) * k + kx, ky, kx);
                }
            }
        }
        for (o, a) in plane.iter_mut().zip(acc) {
            *o = finish(p, a);
        }
    });
}

/// The full (uncropped) output range of a deconvolution along one axis whose taps all come
/// from inside the input window `[a, b)` of global length `n` (or from outside `[0, n)`).
fn deconv_range(a: usize, b: usize, n: usize, stride: usize, dk: usize) -> (usize, usize, usize) {
    let full = (n - 1) * stride + dk;
    let start = if a == 0 { 0 } else { (a - 1) * stride + dk };
    let end = if b == n { full } else { b * stride };
    (start, end.max(start), full)
}

/// A deconvolution (scatter) over a window, with the same accumulator protocol as
/// [`conv_with`]: contributions arrive per input channel, kernel row, kernel column.
pub(crate) fn deconv_with<T: Copy + Default + Send + Sync, A: Copy>(
    c: &Conv,
    x: &Tensor<T>,
    init: impl Fn(usize) -> A + Sync,
    mac: impl Fn(A, usize, T) -> A + Sync,
    finish: impl Fn(usize, A) -> T + Sync,
) -> Result<Tensor<T>, String> {
    let dk = c.dilation * (c.kernel - 1) + 1;
    let (fx0, fx1, fw) = deconv_range(x.x0, x.x0 + x.w, x.gw, c.stride, dk);
    let (fy0, fy1, fh) = deconv_range(x.y0, x.y0 + x.h, x.gh, c.stride, dk);
    // The cropped output: full coordinates minus the padding, clipped to the kept extent.
    let (ox0, ox1, gw) = crop_range(fx0, fx1, fw, c.pad[0], c.pad[2]);
    let (oy0, oy1, gh) = crop_range(fy0, fy1, fh, c.pad[1], c.pad[3]);
    let mut out = Tensor::window(c.cout, (ox0, ox1 - ox0, gw), (oy0, oy1 - oy0, gh));
    let (ow, oh) = (out.w, out.h);
    accumulate(c, &mut out, init, finish, |acc, q, wi, ky, kx| {
        let src = x.plane(q);
        for iy in 0..x.h {
            let fy = (x.y0 + iy) * c.stride + ky * c.dilation;
            let Some(oy) = (fy.checked_sub(c.pad[1] + oy0)).filter(|&o| o < oh) else { continue };
            for ix in 0..x.w {
                let fx = (x.x0 + ix) * c.stride + kx * c.dilation;
                if let Some(ox) = fx.checked_sub(c.pad[0] + ox0).filter(|&o| o < ow) {
                    acc[oy * ow + ox] = mac(acc[oy * ow + ox], wi, src[iy * x.w + ix]);
                }
            }
        }
    });
    Ok(out)
}

fn pixel_shuffle<T: Copy + Default>(r: usize, x: &Tensor<T>) -> Tensor<T> {
    let oc = x.c / (r * r);
    let mut out = Tensor::window(oc, (x.x0 * r, x.w * r, x.gw * r), (x.y0 * r, x.h * r, x.gh * r));
    for c in 0..oc {
        for i in 0..r {
            for j in 0..r {
                let src = x.plane(c * r * r + i * r + j);
                for y in 0..x.h {
                    for xx in 0..x.w {
                        out.data[(c * x.h * r + y * r + i) * x.w * r + xx * r + j] = src[y * x.w + xx];
                    }
                }
            }
        }
    }
    out
}

fn nearest<T: Copy + Default>(sh: usize, sw: usize, x: &Tensor<T>) -> Tensor<T> {
    let mut out = Tensor::window(x.c, (x.x0 * sw, x.w * sw, x.gw * sw), (x.y0 * sh, x.h * sh, x.gh * sh));
    for c in 0..x.c {
        for y in 0..x.h * sh {
            for xx in 0..x.w * sw {
                out.data[(c * x.h * sh + y) * x.w * sw + xx] = x.data[(c * x.h + y / sh) * x.w + xx / sw];
            }
        }
    }
    out
}

/// The part of `x` inside `[x0, x0 + w) x [y0, y0 + h)` (which must lie within it).
/// Row `y` (of the padded image) of channel `c` of `x`: `w` values from column `x0`.
fn row_of<T>(x: &Tensor<T>, c: usize, y: usize, x0: usize, w: usize) -> &[T] {
    &x.data[(c * x.h + y - x.y0) * x.w + x0 - x.x0..][..w]
}

/// The common window of blobs of one global size.
pub(crate) fn common_window<T>(xs: &[&Tensor<T>]) -> Result<Window, String> {
    if xs.iter().any(|x| (x.gw, x.gh) != (xs[0].gw, xs[0].gh)) {
        return Err("combining blobs of different sizes".into());
    }
    let x0 = xs.iter().map(|x| x.x0).max().unwrap_or(0);
    let y0 = xs.iter().map(|x| x.y0).max().unwrap_or(0);
    let x1 = xs.iter().map(|x| x.x0 + x.w).min().unwrap_or(0).max(x0);
    let y1 = xs.iter().map(|x| x.y0 + x.h).min().unwrap_or(0).max(y0);
    Ok((x0, y0, x1 - x0, y1 - y0))
}

/// An elementwise combination of blobs of one channel count over window `win`: each output
/// row is made by `f(rows of the inputs, output row)`, rows in parallel.
pub(crate) fn combine<T: Copy + Default + Send + Sync>(
    xs: &[&Tensor<T>],
    (x0, y0, w, h): Window,
    f: impl Fn(&[&[T]], &mut [T]) + Sync,
) -> Tensor<T> {
    let mut out = Tensor::window(xs[0].c, (x0, w, xs[0].gw), (y0, h, xs[0].gh));
    out.data.par_chunks_mut(w.max(1)).enumerate().for_each(|(i, row)| {
        let (c, y) = (i / h.max(1), y0 + i % h.max(1));
        let rows: Vec<&[T]> = xs.iter().map(|x| row_of(x, c, y, x0, w)).collect();
        f(&rows, row);
    });
    out
}

/// The channel concatenation of blobs over window `win`: input `k`'s rows become output rows
/// through `f(k, input row, output row)`, rows in parallel.
pub(crate) fn concat<T: Copy + Default + Send + Sync>(
    xs: &[&Tensor<T>],
    (x0, y0, w, h): Window,
    f: impl Fn(usize, &[T], &mut [T]) + Sync,
) -> Tensor<T> {
    let c = xs.iter().map(|x| x.c).sum();
    let mut out = Tensor::window(c, (x0, w, xs[0].gw), (y0, h, xs[0].gh));
    let owner: Vec<(usize, usize)> = xs.iter().enumerate().flat_map(|(k, x)| (0..x.c).map(move |c| (k, c))).collect();
    out.data.par_chunks_mut(w.max(1)).enumerate().for_each(|(i, row)| {
        let (k, c) = owner[i / h.max(1)];
        f(k, row_of(xs[k], c, y0 + i % h.max(1), x0, w), row);
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn valid_ranges_of_convolutions() {
        // 3x3 same-padded conv over a window [4, 10) of 20: outputs 5..9 need only the window.
        assert_eq!(conv_range(4, 10, 20, 1, 1, 3), (5, 9, 20));
        // At the image's borders the zero padding is known: the window reaches the edge.
        assert_eq!(conv_range(0, 20, 20, 1, 1, 3), (0, 20, 20));
        // Valid (unpadded) conv shrinks the image by 2.
        assert_eq!(conv_range(0, 20, 20, 0, 0, 3), (0, 18, 18));
        // Deconv 4x4 stride 2 (full length (n-1)*2+4): interior windows lose their ragged ends.
        assert_eq!(deconv_range(0, 10, 10, 2, 4), (0, 22, 22));
        assert_eq!(deconv_range(3, 7, 10, 2, 4), (8, 14, 22));
    }
}
