//! Convolution layers on the device: on an adapter that has them (unless
//! `GIGASCALE_GPU_TENSOR=0`), the tensor-core shaders of `neural_tensor.rs`, which read their
//! input split into the halves the matrices read; otherwise the plain integer shaders of
//! `neural_shader.rs` (the same bytes). Pipelines are compiled once per shape; each layer's
//! weights are uploaded once, in the layout its shader reads.
//!
//! A blob's split is made when a tensor-core convolution first reads it and kept with the
//! blob (`Blob::split`) for the next that reads it at the same shift, as long as it covers
//! what that one reads: the convolutions of a dense block read the same blobs one after
//! another (realesrgan-x4plus: 641 splits where each convolution splitting its own input
//! made 1041). A concatenation never made (`neural_ops.rs`) is read as its parts, each from
//! its own kept split, shifted to the concatenation's exponent.

use super::neural::{pipeline, shape, window, Blob, Layer, NeuralGpu, STORAGE};
use super::neural_blob::{ConvShader, KeptSplit, Reach, SplitArea};
use super::neural_cut::{self, weights_by_columns};
use super::neural_shader::{conv_shader, raw_sums, weight_blocks};
use super::neural_split::{split_groups, split_shader, PartPlace, SplitForm};
use super::neural_tensor::{self, split_bytes, tensor_conv_shader, MAX_PARTS};
use super::neural_weights::{flush_runs, tensor_weights};
use super::neural_wide::FusedSum;
use crate::error::{Error, Result};
use crate::neural::exact::Exact;
use crate::neural::reference::conv_window;
use std::sync::Arc;

/// Whether a kept split may serve the next convolution: `GIGASCALE_GPU_KEEP_SPLITS=0` (a
/// benchmark's knob, read once) has every tensor-core convolution split each part of its input
/// anew, as before splits were kept — the same bytes.
fn keeps_splits() -> bool {
    static KEEP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *KEEP.get_or_init(|| std::env::var("GIGASCALE_GPU_KEEP_SPLITS").as_deref() != Ok("0"))
}

/// The form of a new split of a blob's values (`which` 0), or of its 24-bit values' upper (1)
/// or lower parts (2): where splits are kept, the upper parts' is made with the lower parts' in
/// one pass, and the pass over the lower parts finds theirs kept.
fn split_form(which: i32) -> SplitForm {
    match which {
        2 => SplitForm::Whole,
        1 if keeps_splits() => SplitForm::Both,
        _ => SplitForm::Halves,
    }
}

/// A convolution whose pipelines [`NeuralGpu::compile_convs`] compiles: the layer, the channels
/// of the concatenation it reads (if it reads one), its layer's float runs.
pub(super) type ConvToCompile<'a> = (&'a crate::neural::graph::Conv, Option<&'a [usize]>, [usize; 2]);

impl NeuralGpu {
    /// Whether convolution `c` runs on the tensor cores.
    fn on_tensor_cores(&self, c: &crate::neural::graph::Conv) -> bool {
        self.tensor_cores()
            && c.dilation == 1
            && c.kernel <= neural_tensor::MAX_KERNEL
            && neural_tensor::workgroup_bytes() <= self.workgroup_storage
    }

    /// Whether a tensor-core convolution reads a concatenation of parts of `channels` each
    /// straight from the parts: every part but the last fills whole 16-channel slices, and
    /// the device binds as many buffers.
    pub(super) fn reads_parts(&self, channels: &[usize]) -> bool {
        let bindable = (self.dev.device.limits().max_storage_buffers_per_shader_stage as usize).saturating_sub(3);
        let aligned = channels.iter().rev().skip(1).all(|c| c % 16 == 0);
        self.tensor_cores() && aligned && (2..=MAX_PARTS.min(bindable)).contains(&channels.len())
    }

    /// Whether `parts` are read as parts by a convolution of `cin` input channels: they are
    /// its channels, and [`reads_parts`](Self::reads_parts).
    fn parts_fit(&self, parts: &[(Blob, i32)], cin: usize) -> bool {
        let channels: Vec<usize> = parts.iter().map(|(p, _)| p.shape.c).collect();
        channels.iter().sum::<usize>() == cin && self.reads_parts(&channels)
    }

    /// The tensor-core shader of convolution `c` reading parts of `channels` (the lower parts
    /// of 24-bit values where `lower`), its float runs `runs` long (the layer's).
    fn tensor_shader(
        &self,
        c: &crate::neural::graph::Conv,
        channels: &[usize],
        (lower, runs): (bool, [usize; 2]),
    ) -> ConvShader {
        let mut slices = [0u16; MAX_PARTS];
        for (s, c) in slices.iter_mut().zip(channels) {
            *s = c.div_ceil(16) as u16;
        }
        ConvShader::Tensor(slices, c.kernel, c.cout, self.is_wide(), lower, runs[lower as usize])
    }

    /// Compiles the pipelines of the convolutions `convs` (each with the channels of the
    /// concatenation it reads, if it reads one, and its layer's float runs), the distinct
    /// shaders on several threads at once: translating a tensor-core shader and compiling it
    /// take tens of milliseconds each, and deep networks have tens of them.
    pub(super) fn compile_convs(&self, convs: &[ConvToCompile<'_>], threads: usize) -> Result<()> {
        let mut shaders: Vec<ConvShader> = Vec::new();
        for &(c, concat, runs) in convs {
            let tensor = self.on_tensor_cores(c);
            let parts = concat.filter(|p| tensor && self.reads_parts(p)).map_or(vec![c.cin], |p| p.to_vec());
            // At 24 bits each tensor-core convolution runs twice: on the upper parts (as 16-bit
            // values) and on the lower parts, read whole.
            let forms: &[bool] = if tensor && self.is_wide() { &[false, true] } else { &[false] };
            let convs = forms.iter().map(|&lower| match tensor {
                true => self.tensor_shader(c, &parts, (lower, runs)),
                false => ConvShader::Plain(c.cin, c.kernel, self.is_wide()),
            });
            // The splits' forms (`split_form`): at 24 bits, where splits are kept, the lower
            // parts' split is made with the upper parts' (a lone one compiles on first use).
            let whiches: &[i32] = match (self.is_wide(), keeps_splits()) {
                (true, true) => &[1],
                (true, false) => &[1, 2],
                (false, _) => &[0],
            };
            let splits = whiches
                .iter()
                .flat_map(|&which| parts.iter().map(move |&p| ConvShader::Split(p, c.kernel, split_form(which))));
            for s in convs.chain(splits.filter(|_| tensor)) {
                if !shaders.contains(&s) {
                    shaders.push(s);
                }
            }
        }
        super::setup::on_setup_threads(&shaders, threads, |&s| self.shader(s).map(|_| ()))
    }

    /// The pipeline of shader `s`, compiled on first use.
    fn shader(&self, s: ConvShader) -> Result<Arc<wgpu::ComputePipeline>> {
        let lock = || Error::Internal("neural GPU lock poisoned".into());
        if let Some(p) = self.convs.lock().map_err(|_| lock())?.get(&s) {
            return Ok(p.clone());
        }
        let source = match s {
            ConvShader::Plain(cin, k, raw) => raw_sums(conv_shader(cin, k, self.tiling), raw),
            ConvShader::Tensor(slices, k, cout, raw, lower, runs) => {
                let n = slices.iter().take_while(|&&s| s > 0).count();
                let parts: Vec<usize> = slices[..n].iter().map(|&s| s as usize).collect();
                let t = self.tensor_tiling.form(raw, lower);
                raw_sums(tensor_conv_shader(&parts, (cout, k), t, (runs, lower)), raw)
            }
            ConvShader::Split(cin, k, form) => split_shader(cin, k, form),
        };
        let scope = self.dev.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.dev.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("neural-conv"),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let p = Arc::new(pipeline(&self.dev.device, &module, "main"));
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("neural shader compilation failed on {}: {e}", self.name)));
        }
        self.convs.lock().map_err(|_| lock())?.insert(s, p.clone());
        Ok(p)
    }

    pub(super) fn layer(&self, n: usize, dc: &crate::neural::exact::DeviceConv<'_>) -> Result<Arc<Layer>> {
        let lock = || Error::Internal("neural GPU lock poisoned".into());
        if let Some(l) = self.layers.lock().map_err(|_| lock())?.get(&n) {
            return Ok(l.clone());
        }
        let c = &dc.conv;
        let tensor = self.on_tensor_cores(c);
        let plain = (!tensor).then(|| self.shader(ConvShader::Plain(c.cin, c.kernel, self.is_wide()))).transpose()?;
        let kk = c.kernel * c.kernel;
        let blocks = match tensor {
            true => tensor_weights(dc.weights, (c.cout, c.cin, kk), weights_by_columns()),
            false => weight_blocks(dc.weights, c.cout, c.cin, kk, self.tiling.oc),
        };
        let runs = match tensor {
            true => flush_runs(dc.weights, (c.cout, c.cin, kk), self.is_wide()),
            false => [0; 2],
        };
        let (weights, params) = (self.words(&blocks, STORAGE), self.words(&dc.params, STORAGE));
        let layer = Arc::new(Layer { plain, weights, params, runs });
        self.layers.lock().map_err(|_| lock())?.insert(n, layer.clone());
        Ok(layer)
    }

    /// The split of `part` at `shift` (of its 24-bit values' upper or lower part where
    /// `which` is 1 or 2) that covers `reach`, and its place there: the one kept with the blob,
    /// or a new one (made by the kernel-`k` split shader, then kept), with the convolution's
    /// parameters `params`. A new split of the upper parts is made with the lower parts' (one
    /// pass over the blob), which the pass over the lower parts then finds kept.
    fn kept_split(
        &self,
        enc: &mut wgpu::CommandEncoder,
        (part, shift, which): (&Blob, i32, i32),
        (reach, params): (&Reach, &[i32]),
    ) -> Result<(PartPlace, Arc<wgpu::Buffer>)> {
        let s = &part.shape;
        let slices = s.c.div_ceil(16);
        let mut slots = part.split.lock().map_err(|_| Error::Internal("neural GPU split poisoned".into()))?;
        let kept = &slots[(which == 2) as usize];
        if let Some(k) = kept.as_ref().filter(|k| (k.area.shift, k.area.part) == (shift, which) && keeps_splits()) {
            if let Some(place) = k.area.place_of(reach, slices) {
                return Ok((place, k.buf.clone()));
            }
        }
        let bytes = split_bytes(reach.out_w, reach.out_h, s.c, reach.k);
        let form = split_form(which);
        // The lower parts whole take one half a value, half a split of halves.
        let bufs = match form {
            SplitForm::Halves => vec![self.blob_buffer(bytes)?],
            SplitForm::Whole => vec![self.blob_buffer(bytes / 2)?],
            SplitForm::Both => vec![self.blob_buffer(bytes)?, self.blob_buffer(bytes / 2)?],
        };
        let (columns, rows) = reach.extent();
        // The convolution's parameters with the part's own window as the input's (the split
        // holds the part wherever it has samples) and the shift.
        let own = [s.x0, s.y0, s.w, s.h].map(|v| v as i32);
        let uniform = self.words(&[&own[..], &params[4..14], &[shift, which]].concat(), wgpu::BufferUsages::UNIFORM);
        let pipe = self.shader(ConvShader::Split(s.c, reach.k, form))?;
        let groups = split_groups(columns, rows, slices);
        let label = match form {
            SplitForm::Halves => "split",
            SplitForm::Whole => "split (lower parts)",
            SplitForm::Both => "split (both parts)",
        };
        let mut entries = vec![&uniform, &part.buf];
        entries.extend(bufs.iter().map(|b| &**b));
        self.dispatch(enc, (&pipe, label), &entries, groups);
        let area = SplitArea { shift, part: which, x0: reach.x0, y0: reach.y0, columns, rows };
        let place = area.place_of(reach, slices).ok_or_else(|| Error::Internal("a split misses its reach".into()))?;
        let buf = bufs[0].clone();
        // Kept: the split made, and with both parts the lower parts' in the second slot.
        for (slot, (buf, part)) in [(which == 2) as usize, 1].into_iter().zip(bufs.into_iter().zip([which, 2])) {
            if let Some(old) = slots[slot].replace(KeptSplit { area: SplitArea { part, ..area }, buf }) {
                self.recycle(old.buf);
            }
        }
        Ok((place, buf))
    }

    /// Records tensor-core convolution `c` of input `x` (its 24-bit values' upper or lower
    /// part where `which` is 1 or 2) into `y`: each part of `x` (or `x` itself) from its kept
    /// split.
    fn tensor_conv(
        &self,
        enc: &mut wgpu::CommandEncoder,
        (c, layer): (&crate::neural::graph::Conv, &Layer),
        (x, params, which): (&Blob, &[i32], i32),
        (y, groups): (&wgpu::Buffer, (u32, u32, u32)),
    ) -> Result<()> {
        let whole;
        let parts: &[(Blob, i32)] = match &x.parts {
            Some(parts) if self.parts_fit(parts, c.cin) => parts,
            _ => {
                whole = [(self.made(enc, x)?, 0)];
                &whole
            }
        };
        let reach = Reach::of(params, c.kernel);
        let (mut places, mut bufs) = (Vec::new(), Vec::new());
        for (part, shift) in parts {
            let (place, buf) = self.kept_split(enc, (part, *shift, which), (&reach, params))?;
            places.extend(place.words());
            bufs.push(buf);
        }
        let channels: Vec<usize> = parts.iter().map(|(p, _)| p.shape.c).collect();
        let pipe = self.shader(self.tensor_shader(c, &channels, (which == 2, layer.runs)))?;
        let uniform = self.words(params, wgpu::BufferUsages::UNIFORM);
        let places = self.words(&places, wgpu::BufferUsages::UNIFORM);
        let mut entries: Vec<&wgpu::Buffer> = vec![&uniform, &bufs[0], &layer.weights, &layer.params, y, &places];
        entries.extend(bufs[1..].iter().map(|b| &**b));
        let label = if which == 2 { "conv (tensor, lower parts)" } else { "conv (tensor)" };
        self.dispatch(enc, (&pipe, label), &entries, groups);
        Ok(())
    }

    /// Records convolution node `n` (`c`) of `x`, and where `then` says, the sum its output
    /// feeds (whose output it then returns).
    pub(super) fn conv(
        &self,
        enc: &mut wgpu::CommandEncoder,
        n: usize,
        c: &crate::neural::graph::Conv,
        ex: &Exact,
        (x, then): (&Blob, Option<&FusedSum>),
    ) -> Result<Blob> {
        let dc = ex.device_conv(n, c).ok_or_else(|| Error::Gpu(format!("convolution {n} has no GPU form")))?;
        let layer = self.layer(n, &dc)?;
        if self.is_wide() {
            return self.conv_wide(enc, c, (&dc, &layer), x, then);
        }
        let conv = self.run_conv(enc, &dc.conv, &layer, (x, 0))?;
        if dc.phases == 1 {
            return Ok(conv);
        }
        let out = self.interleave(enc, c, &conv);
        self.recycle(conv.buf);
        out
    }

    /// Records the stride-1 convolution `pc` (a layer's, or a deconvolution's phase
    /// convolution) of `x` with `layer`'s shader and weights; on the tensor cores, of the upper
    /// or lower part of its 24-bit values where `which` is 1 or 2.
    pub(super) fn run_conv(
        &self,
        enc: &mut wgpu::CommandEncoder,
        pc: &crate::neural::graph::Conv,
        layer: &Layer,
        (x, which): (&Blob, i32),
    ) -> Result<Blob> {
        let out = shape(pc.cout, conv_window(pc, &x.shape));
        let s = &x.shape;
        // The shader's `Params`: input window, global size, padding, output window, dilation,
        // output channels, the split's shift (set by `kept_split`), a word of padding.
        let mut params = window(s).to_vec();
        params.extend([s.gw, s.gh, pc.pad[0], pc.pad[1]].map(|v| v as i32));
        params.extend(window(&out));
        params.extend([pc.dilation as i32, pc.cout as i32, 0, 0]);
        let y = self.blob_buffer((out.c * out.h * out.w) as u64 * 4)?;
        let t = self.tiling;
        let (px, oc, rows) = match layer.plain {
            None => neural_cut::block(pc.cout, self.tensor_tiling.form(self.is_wide(), which == 2)),
            Some(_) => (t.group * t.px, t.oc, 1),
        };
        let groups = (out.w.div_ceil(px) as u32, out.h.div_ceil(rows) as u32, pc.cout.div_ceil(oc) as u32);
        if out.w * out.h > 0 {
            // The split shader's rows are the output's plus the kernel's reach.
            if out.h + pc.kernel > 65536 {
                return Err(Error::Gpu(format!("a neural tile of {} rows is too tall for one dispatch", out.h)));
            }
            match &layer.plain {
                None => self.tensor_conv(enc, (pc, layer), (x, &params, which), (&y, groups))?,
                Some(plain) => {
                    let x = self.made(enc, x)?;
                    let uniform = self.words(&params, wgpu::BufferUsages::UNIFORM);
                    let conv = (&**plain, "conv (plain)");
                    self.dispatch(enc, conv, &[&uniform, &x.buf, &layer.weights, &layer.params, &y], groups)
                }
            }
        }
        Ok(Blob::of(out, y))
    }
}

#[cfg(test)]
mod tests {
    use super::super::neural_bench::{Bench, STORAGE_OUT};
    use super::super::neural_shader::ops_shader;
    use super::super::neural_split::{split_groups_of, split_shader_of};
    use super::super::neural_tensor::{split_geometry, SPLIT_BITS};
    use super::*;

    /// Halves of a split read back: `[half][...]` as 16-bit patterns.
    fn halves(bytes: &[u8]) -> Vec<u16> {
        bytes.chunks(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect()
    }

    /// A concatenation's parts each split once over a first convolution's larger reach (each
    /// from its own window, shifted to the concatenation's exponent), read at the places
    /// [`KeptSplit::place_of`] gives for a second convolution's reach, hold what the split of
    /// the made concatenation over that reach holds, in every row, slice and column the second
    /// convolution uses. The split shader needs half floats only, not the tensor cores, so
    /// this runs on lavapipe in CI.
    #[test]
    fn kept_splits_read_as_the_made_concatenation() {
        let Some(mut b) = Bench::open() else { return };
        // Two parts of 16 and 5 channels over different windows of a 12x10 image, the first
        // shifted left by 1 (saturated), the second right by 2 (rounded); 3x3 convolutions with
        // padding 1: the first over the concatenation's window, the second one pixel inside.
        let parts = [(16usize, [0usize, 0, 11, 8], -1i32), (5, [1, 2, 10, 8], 2)];
        let (cin, k, concat) = (21, 3, [1usize, 2, 10, 6]);
        let params = |input: [usize; 4], out: [usize; 4], shift: i32| {
            let mut p =
                [input, [12, 10, 1, 1], out, [1, 8, 0, 0]].concat().iter().map(|&v| v as i32).collect::<Vec<_>>();
            p[14] = shift;
            p
        };
        let (first, second) = ([1usize, 2, 10, 6], [2usize, 3, 8, 4]);
        let mut rng = crate::digest::Lcg(7);
        let mut samples = |n: usize| (0..n).map(|_| (rng.next() >> 48) as i32 % 32767).collect::<Vec<_>>();
        let bufs: Vec<wgpu::Buffer> =
            parts.iter().map(|&(c, [_, _, pw, ph], _)| b.words(&samples(c * pw * ph), STORAGE_OUT)).collect();
        let made = b.empty((cin * concat[2] * concat[3] * 4) as u64, STORAGE_OUT);
        let ops = b.pipeline(ops_shader(), "concat");
        let mut kept = Vec::new();
        let mut at = 0;
        for (&(c, own, shift), buf) in parts.iter().zip(&bufs) {
            let window = [&[c, at][..], &concat[..], &own[..]].concat().iter().map(|&v| v as i32).collect::<Vec<_>>();
            let p = b.words(&[&window[..], &[shift]].concat(), STORAGE_OUT);
            b.run(&ops, &[&p, buf, buf, &made], ((c * concat[2] * concat[3]).div_ceil(64) as u32, 1, 1));
            // The part's split over the first convolution's reach.
            let reach = Reach::of(&params(own, first, shift), k);
            let (columns, rows) = reach.extent();
            let out = b.empty(split_bytes(first[2], first[3], c, k), STORAGE_OUT);
            let u = b.words(&params(own, first, shift), wgpu::BufferUsages::UNIFORM);
            let groups = split_groups(columns, rows, c.div_ceil(16));
            b.run(&b.pipeline(split_shader(c, k, SplitForm::Halves), "main"), &[&u, buf, &out], groups);
            kept.push((SplitArea { shift, part: 0, x0: reach.x0, y0: reach.y0, columns, rows }, out, at / 16));
            at += c;
        }
        // The made concatenation's split over the second convolution's reach.
        let reach = Reach::of(&params(concat, second, 0), k);
        let (wp, rows, slices) = split_geometry(second[2], second[3], cin, k);
        let whole = b.empty(split_bytes(second[2], second[3], cin, k), STORAGE_OUT);
        let u = b.words(&params(concat, second, 0), wgpu::BufferUsages::UNIFORM);
        let groups = split_groups(wp, rows, slices);
        b.run(&b.pipeline(split_shader(cin, k, SplitForm::Halves), "main"), &[&u, &made, &whole], groups);
        let want = halves(&b.read(&whole, split_bytes(second[2], second[3], cin, k)));
        assert!(want.iter().any(|&v| v != 0), "the split holds samples");
        let mut compared = 0;
        for ((area, buf, first_slice), &(c, _, _)) in kept.iter().zip(&parts) {
            let got = halves(&b.read(buf, split_bytes(first[2], first[3], c, k)));
            let place = area.place_of(&reach, c.div_ceil(16)).expect("the first reach covers the second's");
            for (r, sl, col, lane) in positions(rows, c.div_ceil(16), second[2] + k - 1) {
                let ours =
                    (place.base as usize + r * place.row as usize + sl * place.columns as usize + col) * 16 + lane;
                let theirs = ((r * slices + first_slice + sl) * wp + col) * 16 + lane;
                let low = rows * slices * wp * 16;
                assert_eq!(got[ours], want[theirs], "high half, row {r} slice {sl} column {col} channel {lane}");
                assert_eq!(got[place.low as usize + ours], want[low + theirs], "low half, row {r} column {col}");
                compared += 1;
            }
        }
        assert_eq!(compared, rows * slices * (second[2] + k - 1) * 16);
    }

    /// The split of 24-bit samples (`p.part` 1 and 2, shifted by `p.shift`, the tensor-core
    /// convolutions' input at `--activation-bits 24`) holds, as `256·h + l`, the upper and
    /// lower parts the CPU computes (`wide::split_part`), extremes and saturation included; the
    /// `Whole` form of the split holds the lower parts whole, one half each, and the `Both`
    /// form writes the upper parts' halves and the lower parts whole in one pass.
    #[test]
    fn wide_splits_hold_the_cpus_parts() {
        let Some(mut b) = Bench::open() else { return };
        let (w, h, c, k) = (8usize, 6usize, 16usize, 1usize);
        let mut rng = crate::digest::Lcg(11);
        let sat = 8_388_479i64;
        let mut v: Vec<i32> =
            (0..c * w * h).map(|_| ((rng.next() >> 20) as i64 % (2 * sat + 1) - sat) as i32).collect();
        v[..6].copy_from_slice(&[sat as i32, -sat as i32, 0, -1, 127, -129]);
        let x = b.words(&v, STORAGE_OUT);
        let (wp, rows, slices) = split_geometry(w, h, c, k);
        for (shift, part) in [(0, 1), (0, 2), (2, 1), (2, 2), (-1, 1), (-1, 2), (-23, 1), (-23, 2)] {
            let p: Vec<i32> = [0, 0, w, h, w, h, 0, 0, 0, 0, w, h, 1, c].iter().map(|&v| v as i32).collect();
            let u = b.words(&[&p[..], &[shift, part]].concat(), wgpu::BufferUsages::UNIFORM);
            let out = b.empty(split_bytes(w, h, c, k), STORAGE_OUT);
            let groups = split_groups(wp, rows, slices);
            b.run(&b.pipeline(split_shader(c, k, SplitForm::Halves), "main"), &[&u, &x, &out], groups);
            let got = halves(&b.read(&out, split_bytes(w, h, c, k)));
            let low = rows * slices * wp * 16;
            let whole = (part == 2).then(|| {
                let out = b.empty(split_bytes(w, h, c, k), STORAGE_OUT);
                b.run(&b.pipeline(split_shader(c, k, SplitForm::Whole), "main"), &[&u, &x, &out], groups);
                halves(&b.read(&out, split_bytes(w, h, c, k) / 2))
            });
            if part == 1 {
                // Both parts in one pass: the upper parts' halves as above, the lower parts whole.
                let bytes = split_bytes(w, h, c, k);
                let (up, lo) = (b.empty(bytes, STORAGE_OUT), b.empty(bytes, STORAGE_OUT));
                b.run(&b.pipeline(split_shader(c, k, SplitForm::Both), "main"), &[&u, &x, &up, &lo], groups);
                assert_eq!(halves(&b.read(&up, bytes)), got, "both parts, shift {shift}: upper");
                let lo = halves(&b.read(&lo, bytes / 2));
                // One, two or four rows an invocation (six rows: the last group's part past
                // them is not written), the same halves.
                for per in [2, 4] {
                    let (up, lo_per) = (b.empty(bytes, STORAGE_OUT), b.empty(bytes, STORAGE_OUT));
                    let pipe = b.pipeline(split_shader_of(c, k, SplitForm::Both, per), "main");
                    b.run(&pipe, &[&u, &x, &up, &lo_per], split_groups_of(wp, rows, slices, per));
                    assert_eq!(halves(&b.read(&up, bytes)), got, "{per} rows an invocation: upper");
                    assert_eq!(halves(&b.read(&lo_per, bytes / 2)), lo, "{per} rows an invocation: lower");
                }
                for (r, _, col, lane) in positions(h, 1, w) {
                    let want = crate::neural::wide::split_part(v[(lane * h + r) * w + col], shift, false);
                    let got = half::f16::from_bits(lo[(r * wp + col) * 16 + lane]).to_f32() as i32;
                    assert_eq!(got, want as i32, "both parts, shift {shift}: lower at ({col}, {r}) channel {lane}");
                }
            }
            for (r, _, col, lane) in positions(h, 1, w) {
                let at = (r * wp + col) * 16 + lane;
                let f = |bits: u16| half::f16::from_bits(bits).to_f32() as i32;
                let value = (f(got[at]) << SPLIT_BITS) + f(got[low + at]);
                let want = crate::neural::wide::split_part(v[(lane * h + r) * w + col], shift, part == 1);
                assert_eq!(value, want as i32, "shift {shift} part {part} at ({col}, {r}) channel {lane}");
                if let Some(whole) = &whole {
                    assert_eq!(f(whole[at]), want as i32, "lower form, shift {shift} at ({col}, {r}) channel {lane}");
                }
            }
        }
    }

    /// Every (row, slice, column, channel) of `rows x slices x columns x 16`.
    fn positions(rows: usize, slices: usize, columns: usize) -> Vec<(usize, usize, usize, usize)> {
        let mut all = Vec::new();
        for r in 0..rows {
            for sl in 0..slices {
                for col in 0..columns {
                    all.extend((0..16).map(|lane| (r, sl, col, lane)));
                }
            }
        }
        all
    }
}
