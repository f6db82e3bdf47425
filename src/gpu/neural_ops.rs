//! The neural engine's layers recorded node by node ([`NeuralGpu::record_node`]), and its data
//! movement and elementwise layers on the device (the entry points of
//! `shaders/neural_ops.wgsl`): deconvolution phases, pixel shuffle, nearest enlargement,
//! concatenation, bicubic resize, sums, products, affine layers, table lookups, and the
//! conversion of a tile's output to samples. Each computes what `neural::exact` computes.

use super::neural::{shape, window, Blob, NeuralGpu, Run, STORAGE};
use super::neural_shader::OPS_GROUP;
use super::neural_wide::{narrow_or, terms_fit_32_bits, FusedSum};
use super::setup::MAX_GROUPS;
use crate::error::{Error, Result};
use crate::neural::exact::Exact;
use crate::neural::graph::{Graph, Op, Resize};
use crate::neural::phases;
use crate::neural::reference::{self, Tensor};
use crate::neural::resize;
use crate::neural::stage::{tracing, Samples};
use std::sync::Arc;

/// The workgroups of a one-value-an-invocation op over `n` values: a 2-D grid of `OPS_GROUP`-wide
/// workgroups (`flat` in `shaders/neural_common.wgsl`), as wide as a dispatch allows.
fn ops_grid(n: usize) -> (u32, u32, u32) {
    let groups = (n as u64).div_ceil(OPS_GROUP as u64).max(1);
    let most = MAX_GROUPS as u64;
    (groups.min(most) as u32, groups.div_ceil(most) as u32, 1)
}

/// Values a `sum2_wide` workgroup takes (`SUM2_RUN` in `shaders/neural_wide.wgsl`: four an
/// invocation, `OPS_GROUP` apart).
const SUM2_RUN: usize = 256;

/// The common window of two blobs, `(x0, y0, w, h)` (the CPU's `reference::common_window`).
fn common(a: &Tensor<i16>, b: &Tensor<i16>) -> Result<(usize, usize, usize, usize)> {
    crate::neural::reference::common_window(&[a, b]).map_err(Error::Gpu)
}

/// The window of the concatenation of `xs`: their common window, all their channels.
fn concat_shape(xs: &[Blob]) -> Result<Tensor<i16>> {
    let shapes: Vec<&Tensor<i16>> = xs.iter().map(|x| &x.shape).collect();
    let (x0, y0, w, h) = reference::common_window(&shapes).map_err(Error::Gpu)?;
    let first = shapes.first().ok_or_else(|| Error::Internal("an empty concatenation".into()))?;
    Ok(shape(shapes.iter().map(|s| s.c).sum(), [(x0, w, first.gw), (y0, h, first.gh)]))
}

/// The concatenation of `xs` (shifted by `shifts`) as a blob not made: its window and
/// channels, the first part's buffer, and the parts.
fn unmade_concat(xs: Vec<Blob>, shifts: Vec<i32>) -> Result<Blob> {
    let out = concat_shape(&xs)?;
    let buf = xs[0].buf.clone();
    let parts = Some(Arc::new(xs.into_iter().zip(shifts).collect()));
    Ok(Blob { shape: out, buf, parts, split: Arc::default() })
}

impl NeuralGpu {
    /// An elementwise op of `shaders/neural_ops.wgsl` making `out` from `a` (and `b`).
    pub(super) fn op(
        &self,
        enc: &mut wgpu::CommandEncoder,
        entry: &str,
        params: &[i32],
        (a, b): (&Blob, Option<&Blob>),
        out: Tensor<i16>,
    ) -> Result<Blob> {
        self.op_n(enc, entry, params, (a, b), out.c * out.h * out.w, out)
    }

    /// As [`NeuralGpu::op`], with `n` invocations (and output words).
    pub(super) fn op_n(
        &self,
        enc: &mut wgpu::CommandEncoder,
        entry: &str,
        params: &[i32],
        (a, b): (&Blob, Option<&Blob>),
        n: usize,
        out: Tensor<i16>,
    ) -> Result<Blob> {
        self.op_grid(enc, entry, params, (a, b), (n, ops_grid(n)), out)
    }

    /// An op of `shaders/neural_ops.wgsl` or `neural_wide.wgsl` making `out` (`words` output
    /// words) from `a` (and `b`), over `grid` workgroups.
    pub(super) fn op_grid(
        &self,
        enc: &mut wgpu::CommandEncoder,
        entry: &str,
        params: &[i32],
        (a, b): (&Blob, Option<&Blob>),
        (words, grid): (usize, (u32, u32, u32)),
        out: Tensor<i16>,
    ) -> Result<Blob> {
        let y = self.blob_buffer(words as u64 * 4)?;
        let p = self.words(params, STORAGE);
        self.dispatch(enc, self.op_pipeline(entry)?, &[&p, &a.buf, &b.unwrap_or(a).buf, &y], grid);
        Ok(Blob::of(out, y))
    }

    /// The pipeline of entry point `entry` of `shaders/neural_ops.wgsl` or `neural_wide.wgsl`,
    /// with its name (the profile's label).
    pub(super) fn op_pipeline(&self, entry: &str) -> Result<(&wgpu::ComputePipeline, &'static str)> {
        let (&kind, pipe) =
            self.ops.get_key_value(entry).ok_or_else(|| Error::Internal(format!("no neural op {entry}")))?;
        Ok((pipe, kind))
    }

    /// Why `g` cannot run on the device (an operation it does not have), if it cannot.
    pub(crate) fn unsupported(g: &Graph, ex: &Exact) -> Option<String> {
        g.nodes.iter().enumerate().find_map(|(n, node)| {
            let ok = match &node.op {
                Op::Input | Op::PixelShuffle(_) | Op::Nearest(..) | Op::Resize(_) | Op::Split | Op::Concat => true,
                Op::Crop(_) | Op::SpaceToDepth(_) | Op::Se(_) => true,
                Op::Conv(c) => c.dilation == 1 && ex.device_conv(n, c).is_some(),
                Op::Sum(k) => ex.sum_terms(k, &node.inputs, node.outputs[0]).is_some_and(|t| t.len() == 2),
                Op::Affine { .. } => ex.affine_terms(n).is_some(),
                Op::Map(_) => ex.table(n).is_some(),
                Op::Product => true,
                _ => false,
            };
            (!ok).then(|| format!("layer {} has no GPU form", node.name))
        })
    }

    /// Whether concatenation node `n` of `xs` is left unmade (the tensor-core convolutions
    /// that read it read each part from its own split, 0.4 s of realesrgan-x4plus's 1.5 s
    /// saved on an H200): where they can read these parts ([`NeuralGpu::reads_parts`]) and
    /// convolutions alone read it.
    fn leaves_unmade(&self, g: &crate::neural::graph::Graph, n: usize, xs: &[Blob]) -> bool {
        let node = &g.nodes[n];
        let channels: Vec<usize> = xs.iter().map(|x| x.shape.c).collect();
        let read_by_convs = g
            .nodes
            .iter()
            .filter(|m| m.inputs.iter().any(|i| node.outputs.contains(i)))
            .all(|m| matches!(m.op, Op::Conv(_)));
        self.reads_parts(&channels) && node.outputs.len() == 1 && read_by_convs
    }

    /// Records node `n` of `run` over `blobs` (which hold its inputs) and returns its output
    /// (a convolution's with the sum `fused` it feeds: the sum's).
    pub(super) fn record_node(
        &self,
        enc: &mut wgpu::CommandEncoder,
        run: &Run<'_>,
        (n, fused): (usize, Option<&FusedSum>),
        blobs: &[Option<Blob>],
    ) -> Result<Blob> {
        let Run { g, ex, input, scales } = *run;
        let node = &g.nodes[n];
        // Only a convolution reads an unmade concatenation; anything else gets it made.
        let unmade = |i: &usize| blobs[*i].as_ref().is_some_and(|b| b.parts.is_some());
        let local: Vec<Option<Blob>>;
        let blobs = match !matches!(node.op, Op::Conv(_)) && node.inputs.iter().any(unmade) {
            true => {
                let mut copy = blobs.to_vec();
                for &i in node.inputs.iter().filter(|i| unmade(i)) {
                    copy[i] = blobs[i].as_ref().map(|b| self.made(enc, b)).transpose()?;
                }
                local = copy;
                &local[..]
            }
            false => blobs,
        };
        let get = |i: usize| blobs[i].clone().ok_or_else(|| Error::Internal(format!("{}: blob missing", node.name)));
        Ok(match &node.op {
            Op::Input => self.upload(enc, input)?,
            Op::Conv(c) => self.conv(enc, n, c, ex, (&get(node.inputs[0])?, fused))?,
            Op::PixelShuffle(r) => self.shuffle(enc, *r, &get(node.inputs[0])?)?,
            Op::Nearest(sh, sw) => self.nearest(enc, *sh, *sw, &get(node.inputs[0])?)?,
            Op::Concat => {
                let xs = node.inputs.iter().map(|&i| get(i)).collect::<Result<Vec<_>>>()?;
                let shifts: Vec<i32> =
                    node.inputs.iter().map(|&i| ex.exponent(i) - ex.exponent(node.outputs[0])).collect();
                match self.leaves_unmade(g, n, &xs) {
                    true => unmade_concat(xs, shifts)?,
                    false => self.concat(enc, &xs, &shifts)?,
                }
            }
            Op::Resize(r) => {
                let shift = ex.exponent(node.inputs[0]) - ex.exponent(node.outputs[0]);
                self.resize(enc, r, shift, &get(node.inputs[0])?)?
            }
            Op::Sum(k) => {
                let t = ex.sum_terms(k, &node.inputs, node.outputs[0]).unwrap_or_default();
                self.sum2(enc, &get(node.inputs[0])?, &get(node.inputs[1])?, &t)?
            }
            Op::Product => {
                let (i, o) = (&node.inputs, node.outputs[0]);
                let shift = ex.exponent(i[0]) + ex.exponent(i[1]) - ex.exponent(o);
                self.product(enc, &get(i[0])?, &get(i[1])?, shift)?
            }
            Op::Affine { .. } => {
                let t = ex.affine_terms(n).ok_or_else(|| Error::Internal(format!("{}: no terms", node.name)))?;
                self.affine(enc, t, &get(node.inputs[0])?)?
            }
            Op::Map(_) => {
                let t = ex.table(n).ok_or_else(|| Error::Internal(format!("{}: no table", node.name)))?;
                self.lookup(enc, n, t, &get(node.inputs[0])?)?
            }
            Op::Split => get(node.inputs[0])?,
            Op::Act(_) => return Err(Error::Gpu(format!("layer {} has no GPU form", node.name))),
            Op::Crop(amounts) => self.crop(enc, amounts, &get(node.inputs[0])?)?,
            Op::SpaceToDepth(s) => self.unshuffle(enc, *s, &get(node.inputs[0])?)?,
            Op::Se(se) => {
                let mul = match scales.get(&se.pooled) {
                    Some(m) => m.clone(),
                    None if self.is_dry() => vec![0.0],
                    None => return Err(Error::Internal(format!("{}: no SE multipliers", node.name))),
                };
                let terms = ex.scale_terms(&mul, node.inputs[0], node.outputs[0]);
                self.affine(enc, &terms, &get(node.inputs[0])?)?
            }
        })
    }

    /// The input window `t` as a blob on the device.
    fn upload(&self, enc: &mut wgpu::CommandEncoder, t: &Tensor<i16>) -> Result<Blob> {
        let n = t.c * t.h * t.w;
        let shape = Tensor { data: Vec::new(), ..t.clone() };
        // The samples go up as they are, two to a word, and a dispatch widens them to the
        // blob's words on the device: half the bytes, and no pass over them on the host.
        let packed = Blob::of(shape.clone(), self.blob_buffer((n as u64).div_ceil(2).max(1) * 4)?);
        if !self.is_dry() {
            let t0 = std::time::Instant::now();
            let even = n & !1;
            self.dev.queue.write_buffer(&packed.buf, 0, bytemuck::cast_slice(&t.data[..even]));
            if even < n {
                let last = [t.data[even], 0];
                self.dev.queue.write_buffer(&packed.buf, even as u64 * 2, bytemuck::cast_slice(&last));
            }
            if tracing() {
                eprintln!("neural trace: input window uploaded in {:.3} s", t0.elapsed().as_secs_f64());
            }
        }
        let shift = if self.is_wide() { crate::neural::exact::LOW_BITS } else { 0 };
        let out = self.op_n(enc, "widen", &[n as i32, shift], (&packed, None), n, shape)?;
        self.recycle(packed.buf);
        Ok(out)
    }

    pub(super) fn shuffle(&self, enc: &mut wgpu::CommandEncoder, r: usize, x: &Blob) -> Result<Blob> {
        let s = &x.shape;
        let out = shape(s.c / (r * r), [(s.x0 * r, s.w * r, s.gw * r), (s.y0 * r, s.h * r, s.gh * r)]);
        self.op(enc, "shuffle", &[r as i32, out.c as i32, s.w as i32, s.h as i32], (x, None), out)
    }

    /// Space to depth by `s` (`reference::space_to_depth`).
    pub(super) fn unshuffle(&self, enc: &mut wgpu::CommandEncoder, s: usize, x: &Blob) -> Result<Blob> {
        let i = &x.shape;
        let (xa, ya) = (reference::s2d_range(i.x0, i.w, i.gw, s), reference::s2d_range(i.y0, i.h, i.gh, s));
        let out = shape(i.c * s * s, [xa, ya]);
        let p = [s, out.c, out.w, out.h, i.w, i.h, xa.0 * s - i.x0, ya.0 * s - i.y0].map(|v| v as i32);
        self.op(enc, "unshuffle", &p, (x, None), out)
    }

    /// The window of `x` less `amounts` of its blob's edges (`reference::crop`).
    pub(super) fn crop(&self, enc: &mut wgpu::CommandEncoder, amounts: &[usize; 4], x: &Blob) -> Result<Blob> {
        let i = &x.shape;
        let out = shape(i.c, reference::crop_window(amounts, i));
        let p = [i.c, out.w, out.h, i.w, i.h, out.x0 + amounts[0] - i.x0, out.y0 + amounts[1] - i.y0].map(|v| v as i32);
        self.op(enc, "crop", &p, (x, None), out)
    }

    pub(super) fn nearest(&self, enc: &mut wgpu::CommandEncoder, sh: usize, sw: usize, x: &Blob) -> Result<Blob> {
        let s = &x.shape;
        let out = shape(s.c, [(s.x0 * sw, s.w * sw, s.gw * sw), (s.y0 * sh, s.h * sh, s.gh * sh)]);
        let most = super::setup::MAX_GROUPS as usize;
        let grid = (s.w.div_ceil(64).clamp(1, most) as u32, s.h.clamp(1, most) as u32, s.c.clamp(1, most) as u32);
        let words = out.c * out.w * out.h;
        let p = [sh as i32, sw as i32, s.c as i32, s.w as i32, s.h as i32];
        self.op_grid(enc, "nearest", &p, (x, None), (words, grid), out)
    }

    /// Returns a blob's buffer, and an unmade concatenation's parts' buffers, to the pool once
    /// no blob refers to them.
    pub(super) fn release(&self, b: Blob) {
        let Blob { buf, parts, split, .. } = b;
        self.recycle(buf);
        for kept in Arc::try_unwrap(split).ok().and_then(|k| k.into_inner().ok()).into_iter().flatten().flatten() {
            self.recycle(kept.buf);
        }
        for (part, _) in parts.and_then(|p| Arc::try_unwrap(p).ok()).into_iter().flatten() {
            self.release(part);
        }
    }

    /// `x` made: an unmade concatenation's parts copied into a buffer of its own, else `x`.
    pub(super) fn made(&self, enc: &mut wgpu::CommandEncoder, x: &Blob) -> Result<Blob> {
        match &x.parts {
            None => Ok(x.clone()),
            Some(parts) => {
                let (xs, shifts): (Vec<Blob>, Vec<i32>) = parts.iter().cloned().unzip();
                self.concat(enc, &xs, &shifts)
            }
        }
    }

    /// A channel concatenation over the inputs' common window, each input shifted to the
    /// output's exponent: one dispatch per input into its channels of one output buffer.
    pub(super) fn concat(&self, enc: &mut wgpu::CommandEncoder, xs: &[Blob], shifts: &[i32]) -> Result<Blob> {
        let out = concat_shape(xs)?;
        let (x0, y0, w, h) = (out.x0, out.y0, out.w, out.h);
        let y = self.blob_buffer((out.c * w * h) as u64 * 4)?;
        let entry = if self.is_wide() { "concat_wide" } else { "concat" };
        let (pipe, _) = self.op_pipeline(entry)?;
        let mut first = 0;
        for (x, &shift) in xs.iter().zip(shifts) {
            let s = &x.shape;
            let p = [s.c, first, x0, y0, w, h, s.x0, s.y0, s.w, s.h].map(|v| v as i32);
            let params = self.words(&[&p[..], &[shift]].concat(), STORAGE);
            self.dispatch(enc, (pipe, "concat"), &[&params, &x.buf, &x.buf, &y], ops_grid(s.c * w * h));
            first += s.c;
        }
        Ok(Blob::of(out, y))
    }

    /// A bicubic resize: its taps (`resize::taps`, weights made integers) go up as a table.
    pub(super) fn resize(&self, enc: &mut wgpu::CommandEncoder, r: &Resize, shift: i32, x: &Blob) -> Result<Blob> {
        let s = &x.shape;
        let [(ox0, ow, gw), (oy0, oh, gh)] =
            resize::window(r, s).ok_or_else(|| Error::Gpu("a bicubic Interp to a fraction of a pixel".into()))?;
        let mut table = Vec::with_capacity((ow + oh) * 8);
        for (idx, w) in resize::taps(s.gw, gw, ox0, ow).into_iter().chain(resize::taps(s.gh, gh, oy0, oh)) {
            table.extend(idx.map(|i| i as i32));
            table.extend(resize::fixed(w));
        }
        let taps = Blob::of(s.clone(), Arc::new(self.words(&table, STORAGE)));
        let out = shape(s.c, [(ox0, ow, gw), (oy0, oh, gh)]);
        let p = [s.c, ow, oh, s.x0, s.y0, s.w, s.h].map(|v| v as i32);
        let entry = if self.is_wide() { "resize_wide" } else { "resize" };
        self.op(enc, entry, &[&p[..], &[shift]].concat(), (x, Some(&taps)), out)
    }

    pub(super) fn sum2(&self, enc: &mut wgpu::CommandEncoder, a: &Blob, b: &Blob, t: &[(i32, i32)]) -> Result<Blob> {
        let [(ka, sa), (kb, sb)] = t[..] else { return Err(Error::Internal("a sum of other than two blobs".into())) };
        let (sa_, sb_) = (&a.shape, &b.shape);
        let (x0, y0, w, h) = common(sa_, sb_)?;
        let out = shape(sa_.c, [(x0, w, sa_.gw), (y0, h, sa_.gh)]);
        let mut p = vec![out.c as i32];
        p.extend(window(&out));
        p.extend(window(sa_));
        p.extend([ka, sa]);
        p.extend(window(sb_));
        p.extend([kb, sb]);
        if !self.is_wide() {
            return self.op(enc, "sum2", &p, (a, Some(b)), out);
        }
        let words = out.c * out.h * out.w;
        let invocations = words.div_ceil(SUM2_RUN) * OPS_GROUP;
        let entry = narrow_or("sum2_wide", terms_fit_32_bits(t));
        self.op_grid(enc, entry, &p, (a, Some(b)), (words, ops_grid(invocations)), out)
    }

    /// A deconvolution's phases (`ph`) into its cropped output, as `phases::interleave`.
    pub(super) fn interleave(
        &self,
        enc: &mut wgpu::CommandEncoder,
        c: &crate::neural::graph::Conv,
        ph: &Blob,
    ) -> Result<Blob> {
        let out = shape(c.cout, phases::interleave_window(c, &ph.shape));
        let mut p = vec![c.stride as i32, c.cout as i32];
        p.extend(window(&out));
        p.extend([c.pad[0] as i32, c.pad[1] as i32]);
        p.extend(window(&ph.shape));
        self.op(enc, "interleave", &p, (ph, None), out)
    }

    /// The network's output `out` cropped and converted to samples as `s` says (the
    /// `samples` shader, [`Samples::convert`]'s arithmetic), packed four bytes to a word.
    pub(super) fn samples(&self, enc: &mut wgpu::CommandEncoder, out: &Blob, s: &Samples) -> Result<Blob> {
        let o = &out.shape;
        let (x, y, w, h) = s.crop;
        if x + w > o.w || y + h > o.h || o.c < 3 {
            return Err(Error::Internal(format!("samples {:?} outside the output {}x{}x{}", s.crop, o.c, o.w, o.h)));
        }
        let words = (s.row_bytes() * h).div_ceil(4);
        let p = [
            x as i32,
            y as i32,
            o.w as i32,
            (o.w * o.h) as i32,
            w as i32,
            h as i32,
            s.exponent,
            s.max as i32,
            s.grey as i32,
            s.bps as i32,
            words as i32,
            cfg!(target_endian = "big") as i32,
            self.is_wide() as i32,
        ];
        self.op_n(enc, "samples", &p, (out, None), words, shape(1, [(0, words, words), (0, 1, 1)]))
    }

    /// The product of two blobs over their common window, shifted by `shift` (`Exact::product`).
    pub(super) fn product(&self, enc: &mut wgpu::CommandEncoder, a: &Blob, b: &Blob, shift: i32) -> Result<Blob> {
        let (x0, y0, w, h) = common(&a.shape, &b.shape)?;
        let out = shape(a.shape.c, [(x0, w, a.shape.gw), (y0, h, a.shape.gh)]);
        let mut p = vec![out.c as i32];
        p.extend(window(&out));
        p.extend(window(&a.shape));
        p.extend(window(&b.shape));
        // 24-bit values carry 8 more bits each; the output 8 more.
        match self.is_wide() {
            true => p.push(shift + crate::neural::exact::LOW_BITS),
            false => p.push(shift),
        }
        self.op(enc, if self.is_wide() { "product_wide" } else { "product" }, &p, (a, Some(b)), out)
    }

    /// A per-channel affine layer: `terms` are [`crate::neural::exact::Exact::affine_terms`]
    /// (one triple: every channel's).
    pub(super) fn affine(&self, enc: &mut wgpu::CommandEncoder, terms: &[[i32; 3]], x: &Blob) -> Result<Blob> {
        let s = &x.shape;
        let words: Vec<i32> = (0..s.c).flat_map(|c| crate::neural::elementwise::at(terms, c)).collect();
        let t = Blob::of(s.clone(), Arc::new(self.words(&words, STORAGE)));
        let p = [(s.c * s.w * s.h) as i32, (s.w * s.h).max(1) as i32];
        self.op(enc, if self.is_wide() { "affine_wide" } else { "affine" }, &p, (x, Some(&t)), s.clone())
    }

    /// A function looked up in node `n`'s table (uploaded once, kept for the next tiles).
    pub(super) fn lookup(&self, enc: &mut wgpu::CommandEncoder, n: usize, table: &[i32], x: &Blob) -> Result<Blob> {
        let lock = || Error::Internal("neural GPU lock poisoned".into());
        let cached = self.tables.lock().map_err(|_| lock())?.get(&n).cloned();
        let buf = match cached {
            Some(b) => b,
            None => {
                let b = Arc::new(self.words(table, STORAGE));
                self.tables.lock().map_err(|_| lock())?.insert(n, b.clone());
                b
            }
        };
        let s = &x.shape;
        let t = Blob::of(s.clone(), buf);
        let entry = if self.is_wide() { "lookup_wide" } else { "lookup" };
        self.op(enc, entry, &[(s.c * s.w * s.h) as i32], (x, Some(&t)), s.clone())
    }
}
