//! The face detector's operators in single floats. Each output element is computed in one
//! fixed order whatever the thread count, the tile or the chunking (the convolutions' sums
//! run over the same taps in the same order: `matrixmultiply`'s blocking depends only on the
//! summed dimension), so a tile of an image gives exactly the numbers of the whole image
//! wherever its receptive field lies inside the tile.
//!
//! A tensor without data but with a shape is *dry*: every operator then only works out the
//! shapes, so that [`super::graph::Graph::run`] can plan memory without computing.

use super::shape_ops;
use super::values::{axis_of, ConvShape, Op, Tensor, Value};
use rayon::prelude::*;
use std::rc::Rc;

/// Floats of im2col scratch the chunks of one convolution in flight share (2 MiB): each of
/// `threads` chunks gets its part, at least [`MIN_CHUNK_FLOATS`].
const SCRATCH_FLOATS: usize = 1 << 19;
/// See [`SCRATCH_FLOATS`].
const MIN_CHUNK_FLOATS: usize = 1 << 14;

/// Applies `op` to its arguments; returns its outputs and the scratch bytes it needed.
pub(crate) fn apply(
    op: &Op,
    args: Vec<Option<Rc<Value>>>,
    pool: &rayon::ThreadPool,
) -> Result<(Vec<Value>, u64), String> {
    let float = |i: usize| -> Result<&Tensor, String> {
        match args.get(i).and_then(|a| a.as_deref()) {
            Some(Value::F(t)) => Ok(t),
            _ => Err(format!("input {i} must be a float tensor")),
        }
    };
    let one = |v: Value| Ok((vec![v], 0));
    match op {
        Op::Conv(s) => {
            let bias = match args.get(2).and_then(|a| a.as_deref()) {
                Some(Value::F(b)) => Some(b),
                None => None,
                _ => return Err("the bias must be a float tensor".into()),
            };
            let (t, scratch) = conv(float(0)?, float(1)?, bias, s, pool)?;
            Ok((vec![Value::F(t)], scratch))
        }
        Op::Relu => one(Value::F(map_in_place(args, |v| v.max(0.0))?)),
        Op::LeakyRelu(a) => {
            let a = *a;
            one(Value::F(map_in_place(args, move |v| if v < 0.0 { v * a } else { v })?))
        }
        Op::Add => one(Value::F(add(float(0)?, float(1)?)?)),
        Op::Concat(axis) if matches!(args.first().and_then(|a| a.as_deref()), Some(Value::F(_))) => {
            let ts = (0..args.len()).map(float).collect::<Result<Vec<_>, _>>()?;
            one(Value::F(concat(&ts, *axis)?))
        }
        Op::ResizeNearest => one(Value::F(resize_nearest(float(0)?, &args)?)),
        Op::Transpose(perm) => one(Value::F(transpose(float(0)?, perm)?)),
        Op::Reshape if matches!(args.first().and_then(|a| a.as_deref()), Some(Value::F(_))) => {
            let shape = shape_ops::reshape_target(float(0)?.shape.as_slice(), &args)?;
            let x = float(0)?;
            one(Value::F(Tensor { shape, data: x.data.clone() }))
        }
        Op::Softmax { axis, flatten } => one(Value::F(softmax(float(0)?, *axis, *flatten)?)),
        Op::Identity => one(args.first().and_then(|a| a.as_deref()).ok_or("no input")?.clone()),
        _ => one(shape_ops::apply(op, &args)?),
    }
}

/// An elementwise function of the first argument, in place when nothing else holds it.
fn map_in_place(mut args: Vec<Option<Rc<Value>>>, f: impl Fn(f32) -> f32) -> Result<Tensor, String> {
    let rc = args.first_mut().and_then(Option::take).ok_or("no input")?;
    let mut t = match Rc::try_unwrap(rc).unwrap_or_else(|rc| (*rc).clone()) {
        Value::F(t) => t,
        Value::I(..) => return Err("input must be a float tensor".into()),
    };
    t.data.iter_mut().for_each(|v| *v = f(*v));
    Ok(t)
}

/// `a + b`, same shapes.
fn add(a: &Tensor, b: &Tensor) -> Result<Tensor, String> {
    if a.shape != b.shape {
        return Err(format!("Add of shapes {:?} and {:?} (broadcasting is not supported)", a.shape, b.shape));
    }
    Ok(Tensor::filled(a.shape.clone(), a.is_dry(), |o| {
        o.iter_mut().zip(a.data.iter().zip(&b.data)).for_each(|(o, (x, y))| *o = x + y)
    }))
}

/// Concatenation along `axis`.
fn concat(ts: &[&Tensor], axis: i64) -> Result<Tensor, String> {
    let first = ts.first().ok_or("Concat of nothing")?;
    let ax = axis_of(axis, first.shape.len())?;
    let mut shape = first.shape.clone();
    shape[ax] = 0;
    for t in ts {
        let same = t.shape.len() == shape.len() && t.shape.iter().enumerate().all(|(i, &d)| i == ax || d == shape[i]);
        if !same {
            return Err(format!("Concat of shapes {:?} and {:?} along axis {ax}", first.shape, t.shape));
        }
        shape[ax] += t.shape[ax];
    }
    let outer: usize = shape[..ax].iter().product();
    let dry = ts.iter().any(|t| t.is_dry());
    Ok(Tensor::filled(shape, dry, |o| {
        let mut at = 0;
        for i in 0..outer {
            for t in ts {
                let inner = t.len() / outer.max(1);
                o[at..at + inner].copy_from_slice(&t.data[i * inner..(i + 1) * inner]);
                at += inner;
            }
        }
    }))
}

/// `Transpose` by `perm`.
fn transpose(x: &Tensor, perm: &[usize]) -> Result<Tensor, String> {
    let rank = x.shape.len();
    let mut seen = vec![false; rank];
    if perm.len() != rank || perm.iter().any(|&p| p >= rank || std::mem::replace(&mut seen[p], true)) {
        return Err(format!("permutation {perm:?} does not fit shape {:?}", x.shape));
    }
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let mut strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * x.shape[i + 1];
    }
    let src_strides: Vec<usize> = perm.iter().map(|&p| strides[p]).collect();
    Ok(Tensor::filled(shape.clone(), x.is_dry(), |o| {
        let mut idx = vec![0usize; rank];
        for v in o.iter_mut() {
            *v = x.data[idx.iter().zip(&src_strides).map(|(i, s)| i * s).sum::<usize>()];
            for d in (0..rank).rev() {
                idx[d] += 1;
                if idx[d] < shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    }))
}

/// `Softmax`: over all axes from `axis` on (`flatten`, opset < 13) or over `axis` alone.
fn softmax(x: &Tensor, axis: i64, flatten: bool) -> Result<Tensor, String> {
    let ax = axis_of(axis, x.shape.len())?;
    if !flatten && ax + 1 != x.shape.len() {
        return Err("Softmax over an axis other than the last is not supported".into());
    }
    let inner: usize = x.shape[ax..].iter().product();
    Ok(Tensor::filled(x.shape.clone(), x.is_dry(), |o| {
        for (orow, xrow) in o.chunks_exact_mut(inner.max(1)).zip(x.data.chunks_exact(inner.max(1))) {
            let max = xrow.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for (o, &v) in orow.iter_mut().zip(xrow) {
                *o = (v - max).exp();
                sum += *o;
            }
            orow.iter_mut().for_each(|o| *o /= sum);
        }
    }))
}

/// Nearest-neighbour `Resize` of the last two axes (asymmetric, rounding down): output
/// index `o` reads input `floor(o · in / out)`. Sizes come from the fourth input, else from
/// the scales of the third.
fn resize_nearest(x: &Tensor, args: &[Option<Rc<Value>>]) -> Result<Tensor, String> {
    let [n, c, h, w] = match x.shape.as_slice() {
        [n, c, h, w] => [*n, *c, *h, *w],
        _ => return Err(format!("Resize of shape {:?}: only 4-D tensors", x.shape)),
    };
    let (oh, ow) = shape_ops::resize_target(&x.shape, args)?;
    if oh == 0 || ow == 0 || oh > 64 * h.max(1) || ow > 64 * w.max(1) {
        return Err(format!("Resize {h}x{w} to {oh}x{ow} is not supported"));
    }
    Ok(Tensor::filled(vec![n, c, oh, ow], x.is_dry(), |o| {
        let xs: Vec<usize> = (0..ow).map(|j| j * w / ow).collect();
        for (plane, src) in o.chunks_exact_mut(oh * ow).zip(x.data.chunks_exact(h * w)) {
            for (i, row) in plane.chunks_exact_mut(ow).enumerate() {
                let s = &src[(i * h / oh) * w..][..w];
                row.iter_mut().zip(&xs).for_each(|(v, &j)| *v = s[j]);
            }
        }
    }))
}

/// A 2-D convolution of `x` [1, C, H, W] by `w` [O, C/group, kh, kw] plus `bias` [O]: dense
/// (group 1) through im2col and a GEMM, or depthwise (group = C = O). Returns the output
/// and the scratch bytes used.
fn conv(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    s: &ConvShape,
    pool: &rayon::ThreadPool,
) -> Result<(Tensor, u64), String> {
    let ([c, h, wd], [o, ci, kh, kw]) = match (x.shape.as_slice(), w.shape.as_slice()) {
        ([1, c, h, wd], [o, ci, kh, kw]) => ([*c, *h, *wd], [*o, *ci, *kh, *kw]),
        _ => return Err(format!("Conv of {:?} by {:?}: batch 1, 2-D only", x.shape, w.shape)),
    };
    if bias.is_some_and(|b| b.len() != o) || ci * s.group != c || o % s.group != 0 {
        return Err(format!("Conv weights {:?} (group {}) do not fit input {:?}", w.shape, s.group, x.shape));
    }
    let span = |k: usize, d: usize| d * (k - 1) + 1;
    let (ph, pw) = (h + s.pads[0] + s.pads[2], wd + s.pads[1] + s.pads[3]);
    if ph < span(kh, s.dilation[0]) || pw < span(kw, s.dilation[1]) {
        return Err(format!("Conv kernel {kh}x{kw} is larger than its padded input {ph}x{pw}"));
    }
    let g = Geometry {
        c,
        h,
        w: wd,
        kh,
        kw,
        oh: (ph - span(kh, s.dilation[0])) / s.stride[0] + 1,
        ow: (pw - span(kw, s.dilation[1])) / s.stride[1] + 1,
        s: *s,
    };
    let bias = bias.map(|b| b.data.as_slice());
    let dry = x.is_dry();
    if s.group == 1 {
        let threads = pool.current_num_threads();
        let k = ci * kh * kw;
        let rows = g.chunk_rows(k, threads);
        // Per chunk in flight: its im2col matrix, its product, and the GEMM's packing of the
        // operands (at most 256 deep, 64 rows of weights and 1024 columns at a time).
        let n = rows * g.ow;
        let packing = k.min(256) * (o.min(64) + n.min(1024));
        let im2col = if g.pointwise() { 0 } else { k };
        let scratch = 4 * threads as u64 * (n * (im2col + o) + packing) as u64;
        let t = Tensor::filled(vec![1, o, g.oh, g.ow], dry, |out| {
            pool.install(|| g.dense(&x.data, &w.data, bias, o, rows, out))
        });
        Ok((t, scratch))
    } else if s.group == c && o == c {
        let t = Tensor::filled(vec![1, o, g.oh, g.ow], dry, |out| {
            pool.install(|| g.depthwise(&x.data, &w.data, bias, out))
        });
        Ok((t, 0))
    } else {
        Err(format!("Conv with {} groups of {ci} channels is not supported (only 1 group or depthwise)", s.group))
    }
}

/// The sizes of one convolution.
struct Geometry {
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    s: ConvShape,
}

impl Geometry {
    /// Output rows per chunk, so that `threads` chunks' im2col matrices hold about
    /// [`SCRATCH_FLOATS`] together.
    fn chunk_rows(&self, k: usize, threads: usize) -> usize {
        let per_chunk = (SCRATCH_FLOATS / threads.max(1)).max(MIN_CHUNK_FLOATS);
        (per_chunk / (k * self.ow).max(1)).clamp(1, self.oh.max(1))
    }

    /// The output columns whose tap `kx` falls inside the input (not on the padding), and the
    /// input column the first of them reads: output `xo` of the range reads
    /// `first + (xo - start)·stride`.
    fn inside(&self, kx: usize) -> (std::ops::Range<usize>, usize) {
        let (st, off, pad) = (self.s.stride[1], kx * self.s.dilation[1], self.s.pads[1]);
        let start = pad.saturating_sub(off).div_ceil(st);
        let end = if self.w + pad > off { ((self.w - 1 + pad - off) / st + 1).min(self.ow) } else { 0 };
        let start = start.min(end);
        (start..end, (start * st + off).saturating_sub(pad))
    }

    /// The input row an output row's tap `ky` reads (`None`: padding).
    fn src_y(&self, yo: usize, ky: usize) -> Option<usize> {
        (yo * self.s.stride[0] + ky * self.s.dilation[0]).checked_sub(self.s.pads[0]).filter(|&y| y < self.h)
    }

    /// Whether the convolution is 1x1 without stride or padding: output pixel = input pixel.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.s.stride == [1, 1] && self.s.pads == [0; 4]
    }

    /// Dense convolution: chunks of output rows, each an im2col matrix times the weights,
    /// computed a thread-count of chunks at a time and copied into place.
    fn dense(&self, x: &[f32], w: &[f32], bias: Option<&[f32]>, o: usize, rows: usize, out: &mut [f32]) {
        let k = self.c * self.kh * self.kw;
        let plane = self.oh * self.ow;
        let starts: Vec<usize> = (0..self.oh).step_by(rows).collect();
        let batch = rayon::current_num_threads().max(1).min(starts.len());
        // One im2col matrix and one product per chunk in flight, reused chunk after chunk.
        let im2col = if self.pointwise() { 0 } else { k * rows * self.ow };
        let mut buffers: Vec<(Vec<f32>, Vec<f32>)> =
            (0..batch).map(|_| (vec![0.0; im2col], vec![0.0; o * rows * self.ow])).collect();
        for group in starts.chunks(batch) {
            group.par_iter().zip(buffers.par_iter_mut()).for_each(|(&y0, (cols, c))| {
                let n = rows.min(self.oh - y0) * self.ow;
                if self.pointwise() {
                    // The input itself is the matrix: row `ch` at `ch·plane`.
                    sgemm(o, k, n, w, (&x[y0 * self.ow..], plane), &mut c[..o * n]);
                } else {
                    self.im2col(x, y0, n / self.ow, &mut cols[..k * n]);
                    sgemm(o, k, n, w, (&cols[..k * n], n), &mut c[..o * n]);
                }
            });
            for (&y0, (_, c)) in group.iter().zip(&buffers) {
                let n = rows.min(self.oh - y0) * self.ow;
                for (ch, src) in c[..o * n].chunks_exact(n).enumerate() {
                    let b = bias.map_or(0.0, |b| b[ch]);
                    let dst = &mut out[ch * plane + y0 * self.ow..][..n];
                    dst.iter_mut().zip(src).for_each(|(d, &s)| *d = s + b);
                }
            }
        }
    }

    /// Fills `cols` with the im2col matrix of output rows `y0..y0 + n_rows`: row `(c·kh + ky)·kw + kx`, column
    /// `(y - y0)·ow + xo`; zero where a tap falls on the padding.
    fn im2col(&self, x: &[f32], y0: usize, n_rows: usize, cols: &mut [f32]) {
        let n = n_rows * self.ow;
        let st = self.s.stride[1];
        cols.fill(0.0);
        let inside: Vec<_> = (0..self.kw).map(|kx| self.inside(kx)).collect();
        for ch in 0..self.c {
            let src = &x[ch * self.h * self.w..][..self.h * self.w];
            for ky in 0..self.kh {
                for (kx, (range, first)) in inside.iter().enumerate() {
                    if range.is_empty() {
                        continue;
                    }
                    let row = &mut cols[((ch * self.kh + ky) * self.kw + kx) * n..][..n];
                    for (r, dst) in row.chunks_exact_mut(self.ow).enumerate() {
                        let Some(y) = self.src_y(y0 + r, ky) else { continue };
                        let line = &src[y * self.w + first..];
                        let dst = &mut dst[range.clone()];
                        if st == 1 {
                            dst.copy_from_slice(&line[..dst.len()]);
                        } else {
                            dst.iter_mut().zip(line.iter().step_by(st)).for_each(|(d, &v)| *d = v);
                        }
                    }
                }
            }
        }
    }

    /// Depthwise convolution, one channel per task: taps summed in kernel order, then bias.
    fn depthwise(&self, x: &[f32], w: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
        let taps = self.kh * self.kw;
        out.par_chunks_mut(self.oh * self.ow).enumerate().for_each(|(ch, plane)| {
            let src = &x[ch * self.h * self.w..][..self.h * self.w];
            let wk = &w[ch * taps..][..taps];
            for (yo, row) in plane.chunks_exact_mut(self.ow).enumerate() {
                for ky in 0..self.kh {
                    let Some(y) = self.src_y(yo, ky) else { continue };
                    let line = &src[y * self.w..][..self.w];
                    for kx in 0..self.kw {
                        let wv = wk[ky * self.kw + kx];
                        let (range, first) = self.inside(kx);
                        if range.is_empty() {
                            continue;
                        }
                        let (acc, line) = (&mut row[range], &line[first..]);
                        if self.s.stride[1] == 1 {
                            acc.iter_mut().zip(line).for_each(|(a, &v)| *a += wv * v);
                        } else {
                            acc.iter_mut().zip(line.iter().step_by(self.s.stride[1])).for_each(|(a, &v)| *a += wv * v);
                        }
                    }
                }
                let b = bias.map_or(0.0, |b| b[ch]);
                row.iter_mut().for_each(|v| *v += b);
            }
        });
    }
}

/// The one matrix product of the face detector: a safe wrapper over `matrixmultiply`'s
/// single-float GEMM.
///
/// `c = a · b` with `a` m×k and `c` m×n row-major and contiguous, and `b` k×n row-major with
/// its rows `b.1` floats apart.
///
/// # Panics
/// When a slice is shorter than its dimensions say (a bug in the caller, never input data).
pub(crate) fn sgemm(m: usize, k: usize, n: usize, a: &[f32], (b, rsb): (&[f32], usize), c: &mut [f32]) {
    let b_len = if k == 0 { 0 } else { (k - 1) * rsb + n };
    assert!(
        rsb >= n && a.len() >= m * k && b.len() >= b_len && c.len() >= m * n,
        "GEMM operands shorter than {m}x{k}x{n}"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].fill(0.0);
        return;
    }
    let (rsa, rsb, rsc) = (k as isize, rsb as isize, n as isize);
    // SAFETY: `a` is read at `i·k + l`, `b` at `l·rsb + j` (at most `(k - 1)·rsb + n - 1`),
    // `c` written at `i·n + j` (i < m, l < k, j < n): all inside the slices, checked above;
    // `c` is a unique borrow, so it aliases neither `a` nor `b`. beta = 0, so `c`'s old
    // contents (initialised floats) are not read.
    unsafe {
        matrixmultiply::sgemm(m, k, n, 1.0, a.as_ptr(), rsa, 1, b.as_ptr(), rsb, 1, 0.0, c.as_mut_ptr(), rsc, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap()
    }

    fn pattern(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7919 + seed * 104_729) % 211) as f32 / 50.0 - 2.0).collect()
    }

    /// The convolution straight from its definition, in f64.
    fn naive(x: &Tensor, w: &Tensor, b: &[f32], s: &ConvShape, depthwise: bool) -> Vec<f64> {
        let [c, h, wd] = [x.shape[1], x.shape[2], x.shape[3]];
        let [o, ci, kh, kw] = [w.shape[0], w.shape[1], w.shape[2], w.shape[3]];
        let oh = (h + s.pads[0] + s.pads[2] - s.dilation[0] * (kh - 1) - 1) / s.stride[0] + 1;
        let ow = (wd + s.pads[1] + s.pads[3] - s.dilation[1] * (kw - 1) - 1) / s.stride[1] + 1;
        let mut out = vec![0.0; o * oh * ow];
        for oc in 0..o {
            for y in 0..oh {
                for xo in 0..ow {
                    let mut acc = b[oc] as f64;
                    for icl in 0..ci {
                        let ic = if depthwise { oc } else { icl };
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (y * s.stride[0] + ky * s.dilation[0]) as isize - s.pads[0] as isize;
                                let ix = (xo * s.stride[1] + kx * s.dilation[1]) as isize - s.pads[1] as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    let xv = x.data[(ic * h + iy as usize) * wd + ix as usize] as f64;
                                    acc += xv * w.data[((oc * ci + icl) * kh + ky) * kw + kx] as f64;
                                }
                            }
                        }
                    }
                    out[(oc * oh + y) * ow + xo] = acc;
                }
            }
        }
        let _ = c;
        out
    }

    #[test]
    fn convolutions_match_their_definition_on_any_thread_count() {
        let x = Tensor::new(vec![1, 6, 23, 31], pattern(6 * 23 * 31, 1));
        let cases = [
            (vec![5, 6, 3, 3], ConvShape { stride: [2, 2], dilation: [1, 1], pads: [1, 1, 1, 1], group: 1 }),
            (vec![4, 6, 1, 1], ConvShape { stride: [1, 1], dilation: [1, 1], pads: [0, 0, 0, 0], group: 1 }),
            (vec![3, 6, 3, 3], ConvShape { stride: [1, 1], dilation: [2, 2], pads: [2, 1, 0, 2], group: 1 }),
            (vec![6, 1, 3, 3], ConvShape { stride: [2, 2], dilation: [1, 1], pads: [1, 1, 1, 1], group: 6 }),
            (vec![6, 1, 3, 3], ConvShape { stride: [1, 1], dilation: [1, 1], pads: [1, 1, 1, 1], group: 6 }),
        ];
        for (shape, s) in cases {
            let w = Tensor::new(shape.clone(), pattern(shape.iter().product(), 2));
            let b = Tensor::new(vec![shape[0]], pattern(shape[0], 3));
            let want = naive(&x, &w, &b.data, &s, s.group > 1);
            let (one, _) = conv(&x, &w, Some(&b), &s, &pool(1)).unwrap();
            assert_eq!(one.len(), want.len(), "{shape:?}");
            for (g, w) in one.data.iter().zip(&want) {
                assert!((*g as f64 - w).abs() < 1e-3, "{shape:?}: {g} vs {w}");
            }
            let (three, _) = conv(&x, &w, Some(&b), &s, &pool(3)).unwrap();
            assert_eq!(one, three, "{shape:?}: thread counts differ");
            let (dry, _) = conv(&Tensor::dry(x.shape.clone()), &w, Some(&b), &s, &pool(1)).unwrap();
            assert!(dry.is_dry() && dry.shape == one.shape);
        }
        let w = Tensor::new(vec![2, 4, 3, 3], pattern(72, 4));
        let e = conv(&x, &w, None, &ConvShape { stride: [1, 1], dilation: [1, 1], pads: [0; 4], group: 1 }, &pool(1));
        assert!(e.unwrap_err().contains("do not fit"));
    }

    #[test]
    fn reshaping_operators_move_the_right_elements() {
        let x = Tensor::new(vec![1, 2, 2, 3], (0..12).map(|v| v as f32).collect());
        let t = transpose(&x, &[0, 2, 3, 1]).unwrap();
        assert_eq!(t.shape, vec![1, 2, 3, 2]);
        assert_eq!(t.data[..6], [0.0, 6.0, 1.0, 7.0, 2.0, 8.0]);
        assert!(transpose(&x, &[0, 1, 1, 2]).is_err());
        let r = resize_nearest(&x, &[None, None, None, Some(Rc::new(Value::I(vec![4], vec![1, 2, 3, 5])))]).unwrap();
        assert_eq!(r.shape, vec![1, 2, 3, 5]);
        // Row i reads floor(i * 2 / 3), column j floor(j * 3 / 5).
        assert_eq!(r.data[..10], [0.0, 0.0, 1.0, 1.0, 2.0, 0.0, 0.0, 1.0, 1.0, 2.0]);
        let c = concat(&[&x, &t], 1);
        assert!(c.unwrap_err().contains("Concat"));
        let sm = softmax(&Tensor::new(vec![1, 2, 2], vec![0.0, 0.0, 1.0, 3.0]), -1, true).unwrap();
        assert_eq!(sm.data[..2], [0.5, 0.5]);
        assert!((sm.data[3] - 1.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-6);
    }

    #[test]
    fn product_matches_the_definition_and_does_not_depend_on_n() {
        let (m, k, n) = (5, 300, 37);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 97) as f32 / 13.0 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 104729) % 89) as f32 / 11.0 - 4.0).collect();
        let mut c = vec![0.0; m * n];
        sgemm(m, k, n, &a, (&b, n), &mut c);
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k).map(|l| a[i * k + l] as f64 * b[l * n + j] as f64).sum();
                assert!((c[i * n + j] as f64 - want).abs() < 1e-3 * want.abs().max(1.0), "{i},{j}");
            }
        }
        // The same columns computed as a narrower product give the same bits: a tile's
        // chunking cannot change a sum.
        for cut in [1, 8, 16, 20] {
            let bn: Vec<f32> = (0..k).flat_map(|l| b[l * n..l * n + cut].to_vec()).collect();
            let mut cn = vec![0.0; m * cut];
            sgemm(m, k, cut, &a, (&bn, cut), &mut cn);
            for i in 0..m {
                assert_eq!(cn[i * cut..(i + 1) * cut], c[i * n..i * n + cut], "cut {cut}");
            }
        }
    }
}
