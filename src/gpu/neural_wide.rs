//! 24-bit activations on the device (`--activation-bits 24`; the arithmetic of
//! `src/neural/wide.rs`, its 64-bit steps in pairs of 32-bit words in
//! `shaders/neural_wide.wgsl`). Blobs hold the 24-bit values in their `i32` words, as 16-bit
//! ones are held; the input is widened by 8 bits on upload, the output narrowed in the
//! conversion to samples; sums, concatenations, affine layers (and SE blocks' scales),
//! products and resizes have 64-bit forms (`sum2_wide`, `concat_wide`, `affine_wide`,
//! `product_wide`, `resize_wide`), a table is read at the upper part (`lookup_wide`). A
//! convolution splits its input into its upper and lower parts (`part`; on the tensor cores,
//! the split shader takes them straight from the blob, the lower parts whole),
//! runs the layer's shader — plain or tensor-core, compiled to write its raw wrapping sums —
//! over each, and finishes the two sums together (`finish_wide`): the CPU's two passes of its
//! 16-bit kernels, in the same order of roundings. A sum that a convolution's output feeds
//! alone (realesrgan-x4plus's `0.2·x5 + x` closing each dense block), and a second sum that the
//! first's output feeds alone (the `0.2·d + x` closing each RRDB block), are taken in the same
//! pass (`finish_sum_wide`): what they sum is never written nor read again. The finishes and
//! the sums take 32-bit steps where their terms allow (docs/neural.md, "24-bit activations").

use super::neural::{window, Blob, Layer, NeuralGpu, Run, STORAGE};
use super::neural_shader::NARROW_OPS;
use super::setup::MAX_GROUPS;
use crate::error::{Error, Result};
use crate::neural::exact::Exact;
use crate::neural::graph::{Conv, Op};
use crate::neural::reference::{common_window, conv_window, Tensor};
use std::sync::atomic::Ordering;

/// Values a `finish_wide` workgroup finishes of its channel's plane at a time (`FINISH_RUN` in
/// `shaders/neural_wide.wgsl`: four an invocation, 64 apart).
const FINISH_RUN: usize = 256;

/// Sums most taken with a convolution's finish (`finish_sum_wide`).
const MOST_SUMS: usize = 2;

/// The sums taken with a convolution's finish ([`NeuralGpu::sum_after`]): one that the
/// convolution's output feeds alone, and one that the first's output feeds alone, if any.
pub(super) struct FusedSum {
    /// The sums' nodes, in order: the last one's output is the finish's.
    pub nodes: Vec<usize>,
    /// Per sum: its other input (made), and the terms of the value summed and of the other.
    sums: Vec<(Blob, Terms)>,
}

/// A sum's terms (coefficient, shift): of the value summed, and of the other blob's.
type Terms = [(i32, i32); 2];

/// Whether sums are taken with the convolutions that feed them alone:
/// `GIGASCALE_GPU_FUSE_SUMS=0` (a benchmark's knob, read once) records them apart — the same
/// bytes.
fn fuses_sums() -> bool {
    static FUSE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FUSE.get_or_init(|| std::env::var("GIGASCALE_GPU_FUSE_SUMS").as_deref() != Ok("0"))
}

/// `bias >> 8` plus the rounding's half over 2^8 stays within this for a finish's 32-bit
/// steps (`finished_narrow` in `shaders/neural_wide.wgsl`: its sums then fit 33 bits).
const NARROW_BIAS: i64 = (1 << 30) - (1 << 24);

/// Whether passes take 32-bit steps where their terms allow: `GIGASCALE_GPU_NARROW_STEPS=0`
/// (a benchmark's knob, read once) keeps the 64-bit steps throughout — the same bytes.
fn narrow_steps() -> bool {
    static NARROW: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *NARROW.get_or_init(|| std::env::var("GIGASCALE_GPU_NARROW_STEPS").as_deref() != Ok("0"))
}

/// Whether every channel of a convolution's finish (`params`, five words a channel:
/// `finish_words` in `shaders/neural_wide.wgsl`) is within its 32-bit steps' range: a shift
/// from 9 to 38, `(bias >> 8) + 2^(s - 9)` within ±[`NARROW_BIAS`]. Every channel of
/// realesrgan-x4plus is (shifts 12-18, biases within ±2^37).
pub(super) fn finishes_fit_32_bits(params: &[i32]) -> bool {
    params.chunks(5).all(|w| {
        let (bias, s) = (((w[0] as i64) << 32) | w[1] as u32 as i64, w[2]);
        (9..=38).contains(&s) && ((bias >> 8) + (1 << (s - 9))).abs() < NARROW_BIAS
    })
}

/// Whether every sum term `(k, s)` is within its 32-bit steps' range (`term_narrow` in
/// `shaders/neural_wide.wgsl`): |k| at most 2^15, a shift from 10 to 40. Every sum of
/// realesrgan-x4plus is (coefficients 0.2 and 1, shifts 12-17).
pub(super) fn terms_fit_32_bits(terms: &[(i32, i32)]) -> bool {
    terms.iter().all(|&(k, s)| (-32768..=32768).contains(&k) && (10..=40).contains(&s))
}

/// Op `entry`, or its pipeline of 32-bit steps (`NARROW_OPS`) where its terms `fit` them.
pub(super) fn narrow_or(entry: &'static str, fit: bool) -> &'static str {
    let narrow = NARROW_OPS.iter().find(|&&(_, e)| e == entry).map(|&(name, _)| name);
    narrow.filter(|_| fit && narrow_steps()).unwrap_or(entry)
}

/// The grid of `finish_wide` and `finish_sum_wide` over a convolution's output `s`: a
/// workgroup per [`FINISH_RUN`] values of a channel (as many as the grid holds, each then
/// taking more).
fn finish_grid(s: &Tensor<i16>) -> (u32, u32, u32) {
    let most = MAX_GROUPS as usize;
    ((s.w * s.h).div_ceil(FINISH_RUN).clamp(1, most) as u32, s.c.clamp(1, most) as u32, 1)
}

impl NeuralGpu {
    /// Whether the network on the device has 24-bit activations (set from its [`Exact`] by
    /// `prepare` and by every recording).
    pub(super) fn is_wide(&self) -> bool {
        self.wide.load(Ordering::Relaxed)
    }

    /// Whether convolutions run on the tensor cores: where the device has them, at both
    /// widths (at 24 bits their bytes were checked against the CPU's on an H100 for
    /// realesrgan-x4plus and the zoo, `scripts/device-wide.sh`, `device-families.sh`; the
    /// network 2.6x faster than the plain shaders'). `GIGASCALE_GPU_TENSOR_WIDE=0` keeps the
    /// plain shaders at 24 bits (`GIGASCALE_GPU_TENSOR=0` at both).
    pub(super) fn tensor_cores(&self) -> bool {
        static WIDE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let wide_ok = || *WIDE.get_or_init(|| std::env::var("GIGASCALE_GPU_TENSOR_WIDE").as_deref() != Ok("0"));
        self.tensor && (!self.is_wide() || wide_ok())
    }

    /// Takes the activation width of `ex`.
    pub(super) fn set_width(&self, ex: &Exact) {
        self.wide.store(ex.is_wide(), Ordering::Relaxed);
    }

    /// Convolution `c` (its device form `dc` and `layer`) of the 24-bit blob `x`.
    pub(super) fn conv_wide(
        &self,
        enc: &mut wgpu::CommandEncoder,
        c: &Conv,
        (dc, layer): (&crate::neural::exact::DeviceConv<'_>, &Layer),
        x: &Blob,
        then: Option<&FusedSum>,
    ) -> Result<Blob> {
        let mut sums = Vec::with_capacity(2);
        if layer.plain.is_none() {
            // The tensor cores' splits take each part straight from the blob (or from a
            // concatenation's parts), kept with it for the next convolution that reads it.
            for which in [1, 2] {
                sums.push(self.run_conv(enc, &dc.conv, layer, (x, which))?);
            }
        } else {
            let made = x.parts.is_some();
            let x = self.made(enc, x)?;
            for upper in [true, false] {
                let half = self.part(enc, &x, upper)?;
                sums.push(self.run_conv(enc, &dc.conv, layer, (&half, 0))?);
                self.release(half);
            }
            if made {
                self.recycle(x.buf);
            }
        }
        let out = match then {
            Some(sum) if dc.phases == 1 => self.finish_sum(enc, &dc.params, (&sums[0], &sums[1]), sum)?,
            Some(_) => return Err(Error::Internal("a sum taken with a deconvolution's finish".into())),
            None => self.finish_sums(enc, &dc.params, (&sums[0], &sums[1]))?,
        };
        for b in sums {
            self.release(b);
        }
        if dc.phases == 1 {
            return Ok(out);
        }
        let phased = self.interleave(enc, c, &out);
        self.recycle(out.buf);
        phased
    }

    /// The outputs of a convolution from its raw sums over the upper (`hi`) and the lower parts
    /// (`lo`) of its input and the layer's per-channel words (24-bit ones:
    /// `Exact::device_conv`), by `finish_wide` (over [`finish_grid`]).
    fn finish_sums(&self, enc: &mut wgpu::CommandEncoder, params: &[i32], (hi, lo): (&Blob, &Blob)) -> Result<Blob> {
        let s = &hi.shape;
        let p = [&[(s.w * s.h) as i32, s.c as i32][..], params].concat();
        let entry = narrow_or("finish_wide", finishes_fit_32_bits(params));
        self.op_grid(enc, entry, &p, (hi, Some(lo)), (s.c * s.w * s.h, finish_grid(s)), s.clone())
    }

    /// `finish_sums`, each output then summed with `sum`'s other blobs (`finish_sum_wide`): the
    /// last sum's output, in the convolution's window.
    fn finish_sum(
        &self,
        enc: &mut wgpu::CommandEncoder,
        params: &[i32],
        (hi, lo): (&Blob, &Blob),
        sum: &FusedSum,
    ) -> Result<Blob> {
        let s = &hi.shape;
        let plane = s.w * s.h;
        let mut p = vec![plane as i32, s.c as i32];
        p.extend(window(s));
        p.push(sum.sums.len() as i32);
        for i in 0..MOST_SUMS {
            let (other, [(k, sh), (ko, so)]) = &sum.sums[i.min(sum.sums.len() - 1)];
            p.extend(window(&other.shape));
            p.extend([*k, *sh, *ko, *so]);
        }
        p.extend(params);
        let y = self.blob_buffer((s.c * plane) as u64 * 4)?;
        let words = self.words(&p, STORAGE);
        let fit = finishes_fit_32_bits(params) && sum.sums.iter().all(|(_, t)| terms_fit_32_bits(t));
        let op = self.op_pipeline(narrow_or("finish_sum_wide", fit))?;
        let (first, last) = (&sum.sums[0].0.buf, &sum.sums[sum.sums.len() - 1].0.buf);
        self.dispatch(enc, op, &[&words, &hi.buf, &lo.buf, &y, first, last], finish_grid(s));
        Ok(Blob::of(s.clone(), y))
    }

    /// The sums that convolution node `n` of `run` feeds, where they can be taken with the
    /// convolution's finish (`readers`: each blob's sole reader, `Graph::sole_readers`): at 24
    /// bits, a stride-1 convolution whose output is not `stop`, read by one sum (then that
    /// sum's output by another, up to [`MOST_SUMS`]), each of two blobs whose other is in
    /// `blobs` (made) and covers the convolution's window — the sums' windows, which the last
    /// one's output then has.
    pub(super) fn sum_after(
        &self,
        (run, readers): (&Run<'_>, &[Option<usize>]),
        n: usize,
        blobs: &[Option<Blob>],
        stop: usize,
    ) -> Option<FusedSum> {
        let node = &run.g.nodes[n];
        let Op::Conv(c) = &node.op else { return None };
        let [mut o] = node.outputs[..] else { return None };
        if !self.is_wide() || c.stride != 1 || c.transposed || !fuses_sums() {
            return None;
        }
        let x = blobs[node.inputs[0]].as_ref()?;
        let out = super::neural::shape(c.cout, conv_window(c, &x.shape));
        let mut fused = FusedSum { nodes: Vec::new(), sums: Vec::new() };
        while fused.nodes.len() < MOST_SUMS && o != stop {
            let Some((m, other, terms)) = sum_reading((run, readers), o, blobs, &out) else { break };
            fused.nodes.push(m);
            fused.sums.push((other, terms));
            o = run.g.nodes[m].outputs[0];
        }
        (!fused.nodes.is_empty()).then_some(fused)
    }

    /// The upper (`(v + 128) >> 8`) or lower (`v - 2^8·upper`) part of every value of `x`.
    fn part(&self, enc: &mut wgpu::CommandEncoder, x: &Blob, upper: bool) -> Result<Blob> {
        let s = &x.shape;
        self.op(enc, "part", &[(s.c * s.w * s.h) as i32, upper as i32], (x, None), s.clone())
    }
}

/// The sum node of two blobs that alone reads blob `o` of `run` (`readers[o]`), where its other
/// input is in `blobs` (made) and covers `out`'s window: the node, the other blob, and the terms
/// of `o`'s values and of the other's.
fn sum_reading(
    (run, readers): (&Run<'_>, &[Option<usize>]),
    o: usize,
    blobs: &[Option<Blob>],
    out: &Tensor<i16>,
) -> Option<(usize, Blob, Terms)> {
    let m = readers[o]?;
    let sum = &run.g.nodes[m];
    let (Op::Sum(k), &[i0, i1], [_]) = (&sum.op, &sum.inputs[..], &sum.outputs[..]) else { return None };
    let (first, other) = match (i0 == o, i1 == o) {
        (true, false) => (true, i1),
        (false, true) => (false, i0),
        _ => return None,
    };
    let other = blobs[other].clone().filter(|b| b.parts.is_none())?;
    let within = common_window(&[out, &other.shape]).ok()? == (out.x0, out.y0, out.w, out.h);
    let t = run.ex.sum_terms(k, &sum.inputs, sum.outputs[0]).filter(|_| within)?;
    let [t0, t1] = t[..] else { return None };
    Some((m, other, if first { [t0, t1] } else { [t1, t0] }))
}

#[cfg(test)]
mod tests {
    use super::super::neural_bench::{Bench, STORAGE_OUT};
    use super::super::neural_shader::ops_shader;
    use super::{finish_grid, finishes_fit_32_bits, terms_fit_32_bits, FINISH_RUN, NARROW_BIAS};
    use crate::digest::Lcg;
    use crate::neural::reference::Tensor;
    use crate::neural::wide::{finish_value, sum_value};

    /// A channel's finish: bias, shift, slope.
    type Channel = (i64, i32, Option<i32>);

    /// Values a channel of the finishes' test holds: a run and part of the next.
    const PLANE: usize = FINISH_RUN + 44;

    /// Words at the edges of the 32-bit steps' ranges (2^24 for a sum's values, 2^29-2^31 for a
    /// convolution's raw sums, the carries at 2^8 and 2^16), then drawn ones up to `n`: half
    /// within ±2^23 (24-bit values), half anywhere.
    fn edge_words(rng: &mut Lcg, n: usize) -> Vec<i32> {
        let mut v = vec![0, 1, -1, 255, 256, -256, -257, 65535, 65536, -65536, -65537, 8_388_479, -8_388_479];
        v.extend([(1 << 24) - 1, 1 << 24, -(1 << 24), -(1 << 24) - 1, 1 << 29, -(1 << 29), (1 << 30) + 77]);
        v.extend([-(1 << 30) - 77, i32::MAX, i32::MIN, i32::MIN + 1, i32::MAX - 255, 0x7fff, -0x8000]);
        while v.len() < n {
            let r = (rng.next() >> 32) as u32 as i32;
            v.push(if v.len() % 2 == 0 { r >> 8 } else { r });
        }
        v
    }

    /// A channel's five words (`finish_words` in `shaders/neural_wide.wgsl`).
    fn words((bias, s, k): Channel) -> [i32; 5] {
        [(bias >> 32) as i32, bias as i32, s, k.unwrap_or(0), k.is_some() as i32]
    }

    /// The channels of the finishes' test: shifts in and out of the 32-bit steps' range,
    /// biases among them realesrgan-x4plus's extremes and, per shift, those at the range's
    /// edges, each with slopes none, 0.2, negative, 0 and 1.
    fn finish_channels() -> Vec<Channel> {
        let mut channels = Vec::new();
        for s in [-3, 0, 1, 8, 9, 10, 12, 15, 18, 31, 38, 39, 62, 63] {
            let mut biases = vec![0, 1, -1, 255, -256, 104_350_392_320, -36_061_458_432, 1 << 45, -(1 << 40)];
            if s >= 9 {
                let half = 1i64 << (s - 9).min(40);
                biases.extend([((NARROW_BIAS - 1 - half) << 8) + 255, (-(NARROW_BIAS - 1) - half) << 8]);
                biases.extend([(NARROW_BIAS - half) << 8, (-NARROW_BIAS - half) << 8]);
            }
            for bias in biases {
                channels.extend([None, Some(6554), Some(-3), Some(0), Some(32768)].map(|k| (bias, s, k)));
            }
        }
        channels
    }

    /// `finish_wide` on the device (its 32-bit steps' pipeline where `narrow`) over
    /// `channels`, each with the same edge sums paired differently: the values it writes and the
    /// CPU's `finish_value` of each, with the sums.
    fn finishes(b: &mut Bench, channels: &[Channel], narrow: bool) -> Vec<(i32, i32, i32, i32)> {
        let mut rng = Lcg(29);
        let (c, plane) = (channels.len(), PLANE);
        let n = c * plane;
        let (hi, lo) = (edge_words(&mut rng, n), edge_words(&mut rng, n));
        // Every edge word with every other across the channels: lo rotated by the channel.
        let lo: Vec<i32> = (0..n).map(|i| lo[(i + i / plane) % n]).collect();
        let p: Vec<i32> =
            [plane as i32, c as i32].into_iter().chain(channels.iter().flat_map(|&ch| words(ch))).collect();
        let constants = [("NARROW_STEPS", narrow as u8 as f64)];
        let pipe = b.pipeline_with(ops_shader(), "finish_wide", &constants);
        let (p, h, l) = (b.words(&p, STORAGE_OUT), b.words(&hi, STORAGE_OUT), b.words(&lo, STORAGE_OUT));
        let y = b.empty(n as u64 * 4, STORAGE_OUT);
        b.run(&pipe, &[&p, &h, &l, &y], finish_grid(&Tensor::<i16>::zeros(c, 1, plane)));
        let got: Vec<i32> = bytemuck::cast_slice(&b.read(&y, n as u64 * 4)).to_vec();
        (0..n).map(|i| (got[i], finish_value(channels[i / plane], hi[i], lo[i]), hi[i], lo[i])).collect()
    }

    /// `finish_wide` on the device gives the CPU's `finish_value` for every pair of edge
    /// sums: its 64-bit steps for every shift, bias and slope, its 32-bit steps for every
    /// channel the host finds in their range (`finishes_fit_32_bits`), up to the range's edges.
    #[test]
    fn finishes_match_the_cpu_in_32_and_64_bit_steps() {
        let Some(mut b) = Bench::open() else { return };
        let all = finish_channels();
        let fit: Vec<Channel> = all.iter().copied().filter(|&ch| finishes_fit_32_bits(&words(ch))).collect();
        assert_eq!(fit.len(), 7 * 9 * 5, "seven shifts in range, each with nine biases that fit");
        for (narrow, channels) in [(false, &all), (true, &fit)] {
            for (i, (got, want, hi, lo)) in finishes(&mut b, channels, narrow).into_iter().enumerate() {
                let (bias, s, k) = channels[i / PLANE];
                assert_eq!(got, want, "32-bit steps {narrow}: sums {hi} {lo} bias {bias} shift {s} slope {k:?}");
            }
        }
    }

    /// The host's ranges of the 32-bit steps, at their edges.
    #[test]
    fn the_32_bit_steps_ranges_end_where_the_shader_needs() {
        let fits = |bias: i64, s: i32| finishes_fit_32_bits(&words((bias, s, None)));
        assert!(!fits(0, 8) && fits(0, 9) && fits(0, 38) && !fits(0, 39));
        for s in [9, 20, 38] {
            let half = 1i64 << (s - 9);
            assert!(fits((NARROW_BIAS - 1 - half) << 8 | 255, s) && !fits((NARROW_BIAS - half) << 8, s));
            assert!(fits((-(NARROW_BIAS - 1) - half) << 8, s) && !fits((-NARROW_BIAS - half) << 8, s));
        }
        assert!(terms_fit_32_bits(&[(32768, 10), (-32768, 40)]) && terms_fit_32_bits(&[]));
        assert!(!terms_fit_32_bits(&[(32768, 9)]) && !terms_fit_32_bits(&[(32769, 15)]));
        assert!(!terms_fit_32_bits(&[(6554, 12), (-32769, 12)]) && !terms_fit_32_bits(&[(1, 41)]));
    }

    /// `sum2_wide` on the device gives the CPU's `sum_value` for edge values with every term
    /// of a coefficient within ±1 (a 15-bit fraction) and a shift from 1 to 31
    /// (`Exact::sum_terms`' range), each paired with another: in 64-bit steps for any values,
    /// and in 32-bit steps for every pair the host finds in their range (`terms_fit_32_bits`)
    /// on values within ±SAT24, as every 24-bit blob's are.
    #[test]
    fn sums_match_the_cpu_in_32_and_64_bit_steps() {
        let Some(mut b) = Bench::open() else { return };
        let ks = [-32768, -32767, -6554, -1, 0, 1, 6554, 16384, 32767, 32768];
        let shifts = [1, 2, 9, 10, 12, 15, 16, 17, 24, 31];
        let terms: Vec<(i32, i32)> = ks.iter().flat_map(|&k| shifts.map(|s| (k, s))).collect();
        let pairs: Vec<[(i32, i32); 2]> =
            (0..terms.len()).map(|i| [terms[i], terms[(i * 37 + 11) % terms.len()]]).collect();
        let mut rng = Lcg(31);
        let n = 96;
        let (any_a, any_b) = (edge_words(&mut rng, n), edge_words(&mut rng, n));
        let sat = 8_388_479;
        // Within ±SAT24, as a blob's values are (those already there unchanged).
        let blob = |v: &[i32]| -> Vec<i32> { v.iter().map(|&x| x % (sat + 1)).collect() };
        let window = [0, 0, n as i32, 1];
        let mut narrow_pairs = 0;
        for narrow in [false, true] {
            let pipe = b.pipeline_with(ops_shader(), "sum2_wide", &[("NARROW_STEPS", narrow as u8 as f64)]);
            let (va, mut vb) = if narrow { (blob(&any_a), blob(&any_b)) } else { (any_a.clone(), any_b.clone()) };
            vb.reverse();
            if narrow {
                assert!(va.contains(&sat) && va.contains(&-sat) && va.iter().all(|x| x.unsigned_abs() <= sat as u32));
            }
            let (a, bb) = (b.words(&va, STORAGE_OUT), b.words(&vb, STORAGE_OUT));
            let mut outs = Vec::new();
            for &[ta, tb] in pairs.iter().filter(|&t| !narrow || terms_fit_32_bits(t)) {
                let p = [&[1][..], &window, &window, &[ta.0, ta.1], &window, &[tb.0, tb.1]].concat();
                let y = b.empty(n as u64 * 4, STORAGE_OUT);
                b.run(&pipe, &[&b.words(&p, STORAGE_OUT), &a, &bb, &y], (1, 1, 1));
                outs.push((ta, tb, y));
                narrow_pairs += narrow as usize;
            }
            for (ta, tb, y) in outs {
                let got: Vec<i32> = bytemuck::cast_slice(&b.read(&y, n as u64 * 4)).to_vec();
                for i in 0..n {
                    let t = |(k, s): (i32, i32)| (k as i64, s);
                    let want = sum_value([(va[i], t(ta)), (vb[i], t(tb))].into_iter());
                    assert_eq!(got[i], want, "32-bit steps {narrow}: {} {ta:?} + {} {tb:?}", va[i], vb[i]);
                }
            }
        }
        assert!(narrow_pairs >= 40, "{narrow_pairs} pairs in 32-bit steps");
    }
}
