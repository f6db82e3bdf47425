//! The exact engine: the network in integers, so that every backend, tile size and thread
//! count can give the same bytes. (Float sums depend on their order; integer sums do not.)
//!
//! Each blob holds 16-bit-range integers `q` standing for `q / 2^e`, with `e` fixed per blob:
//! 14 for the input (values 0..1), the same as its input for layers that only move or scale
//! samples (activations, pixel shuffle, enlargement, split), and otherwise chosen from the
//! blob's largest magnitude on a calibration image, bounded by what photographs reach
//! (`calibrate.rs`; so that it lands in (2^13, 2^14]: two to four times that magnitude fit
//! before saturating). Weights are rounded per output channel to 14-bit integers with their own
//! power of two (a bit finer with 24-bit activations, `wide.rs`); a convolution sums `q · w` in
//! wrapping 32-bit arithmetic (the same on every backend; a pre-activation past 2^31 in those
//! units wraps, docs/neural.md), adds the bias in the same units, applies its activation
//! (slopes as 15-bit fractions), and rounds once to its output's exponent (round half up,
//! saturating at ±32767). Everything after the calibration is integer arithmetic with a fixed
//! order of rounding steps. (`wide.rs`: the same with 24-bit activations.)

use super::elementwise::{at, Map, TABLE_OFFSET};
use super::graph::{Act, Conv, Graph, Op, Resize};
use super::kernels::{self, Kernel, Packed};
use super::phases::{self, phase_conv};
use super::reference::{self, conv_window, deconv_with, Engine, Tensor, Window};

/// The bits 24-bit activations hold below a blob's 16-bit scale (`wide.rs`).
pub(crate) const LOW_BITS: i32 = 8;
/// Bits of the activation scale: an input value of 1.0 is `2^14`.
pub(crate) const INPUT_BITS: i32 = 14;
pub(super) const SLOPE_BITS: i32 = 15;
const SAT: i32 = 32767;
/// Largest weight magnitude: 14-bit signed.
const WEIGHT_MAX: f64 = 8191.0;
/// Largest bias magnitude in accumulator units (leaves the sums their headroom).
const BIAS_MAX: f64 = (1u64 << 30) as f64;
/// With 24-bit activations a convolution's weights take up to [`WIDE_WEIGHT_BITS`] bits more
/// (`quantise`) while its shift from sum to the exponent of its sums before the activation
/// stays at most this: a sum of the upper parts (`wide.rs`) within the saturation level (2^23)
/// then still fits 32 bits. (Counted from the output's exponent instead, a leaky layer's
/// negative sums, up to 1/slope times its output, wrapped: models-nose/up2x-no-denoise at 24
/// bits was 255 levels from ncnn on a diagram.)
const WIDE_SHIFT_MAX: i32 = 16;
/// Bits a 24-bit network's weights may take beyond the 14 of a 16-bit one: 16-bit weights
/// (`|w| ≤ 32764`), which the CPU's 16-bit multiply-adds and the GPU's halves hold
/// (`neural_tensor.rs`); the 16th where the shift stays at most `WIDE_SHIFT_MAX - 1`. The 15th
/// bit took models-se/up4x-no-denoise from 5 LSB to 2 on photo crops; the 16th from 6 to 2 on a
/// dark, saturated one (docs/results/2026-12-05-dev-wide-16-bit-weights.txt).
const WIDE_WEIGHT_BITS: i32 = 2;

/// `a / 2^s` rounded half up, for any shift (`a · 2^-s`, saturated, for negative `s`), in
/// 32-bit arithmetic only (the GPU shaders compute the same).
pub(crate) fn shift_round(a: i32, s: i32) -> i32 {
    match s {
        s if s >= 32 => 0,
        s if s > 0 => (a >> s) + ((a >> (s - 1)) & 1),
        0 => a,
        s => {
            let lim = SAT >> (-s).min(15);
            if a > lim || a < -lim {
                a.signum() * SAT
            } else {
                a << -s
            }
        }
    }
}

fn saturate(a: i32) -> i32 {
    a.clamp(-SAT, SAT)
}

/// An activation on a requantised value: `v` if non-negative, else `v · slope` rounded (`v`
/// first kept where the product fits 32 bits: beyond, the result saturates anyway).
pub(crate) fn activate(v: i32, slope: Option<i32>) -> i32 {
    match slope {
        Some(s) if v < 0 => shift_round(v.max(-(i32::MAX / s.abs().max(1))) * s, SLOPE_BITS),
        _ => v,
    }
}

fn fraction(v: f32, bits: i32) -> i64 {
    (v as f64 * (1u64 << bits) as f64).round() as i64
}

/// A convolution's integer weights.
#[derive(Debug)]
pub(super) struct QConv {
    pub(super) packed: Packed,
    /// A deconvolution's phase convolution (the convolution that runs).
    pub(super) phases: Option<Conv>,
    /// The weights of the convolution that runs, `[out][in][kh][kw]` (the phase convolution's
    /// for a deconvolution that has one; else the layer's own, also for the scatter).
    pub(super) w: Vec<i32>,
    /// Per output channel: the shift from accumulator units to the output's.
    pub(super) shift: Vec<i32>,
    /// Per output channel: the bias in accumulator units (`2^-(e_in + wexp)`).
    pub(super) bias: Vec<i32>,
    /// Per output channel: the bias in the units of 24-bit activations' sums
    /// (`2^-(e_in + 8 + wexp)`; `wide.rs`).
    pub(super) bias_wide: Vec<i64>,
    /// Leaky or PReLU slopes as 15-bit fractions (empty: none).
    pub(super) slopes: Vec<i32>,
}

impl QConv {
    /// The sum with its bias, rounded to the output's exponent, activated, then saturated: a
    /// leaky layer's negative values may lie far beyond the output's range before their slope
    /// brings them into it.
    fn finish(&self, p: usize, a: i32) -> i32 {
        saturate(activate(shift_round(a.wrapping_add(self.bias[p]), self.shift[p]), self.slopes.get(p).copied()))
    }
    /// [`QConv::finish`] on a row of sums of channel `p`, written so that it vectorises
    /// (inlined into the kernels' AVX2 context).
    #[inline(always)]
    fn finish_row(&self, p: usize, row: &mut [i32]) {
        let (b, s, slope) = (self.bias[p], self.shift[p], self.slopes.get(p).copied());
        match (s, slope) {
            (1..=31, Some(k)) => {
                let lim = i32::MAX / k.abs().max(1);
                row.iter_mut().for_each(|v| {
                    let a = v.wrapping_add(b);
                    let r = (a >> s) + ((a >> (s - 1)) & 1);
                    let n = r.max(-lim) * k;
                    let r = if r < 0 { (n >> SLOPE_BITS) + ((n >> (SLOPE_BITS - 1)) & 1) } else { r };
                    *v = r.clamp(-SAT, SAT);
                })
            }
            (1..=31, None) => row.iter_mut().for_each(|v| {
                let a = v.wrapping_add(b);
                *v = ((a >> s) + ((a >> (s - 1)) & 1)).clamp(-SAT, SAT);
            }),
            _ => row.iter_mut().for_each(|v| *v = self.finish(p, *v)),
        }
    }
}

/// The integer form of a network.
#[derive(Debug)]
pub(crate) struct Exact {
    /// Per blob: its exponent.
    pub(super) exp: Vec<i32>,
    /// Per node: a convolution's integer weights.
    pub(super) convs: Vec<Option<QConv>>,
    /// Per node: a function's table ([`Map::table`]; empty for other nodes).
    pub(super) tables: Vec<Vec<i32>>,
    /// Per node: an affine layer's per-channel multiplier, addend and shift ([`quantise_affine`];
    /// empty for other nodes).
    pub(super) affines: Vec<Vec<[i32; 3]>>,
    pub(super) kernel: Kernel,
    /// Whether activations are 24-bit (`wide.rs`) rather than 16-bit.
    pub(super) wide: bool,
}

/// An affine layer in 32-bit integers: per channel, `mul` as a 15-bit integer `m` with its own
/// power of two `k` (`|m| ≤ 2^14`), `add` in the same units (`|a| ≤ 2^29`), and the shift to
/// the output: `saturate(shift_round(q · m + a, s))` never leaves 32 bits.
fn quantise_affine(mul: &[f32], add: &[f32], e_in: i32, e_out: i32) -> Vec<[i32; 3]> {
    (0..mul.len().max(add.len()))
        .map(|c| {
            let (m, a) = (at(mul, c) as f64, at(add, c) as f64);
            let km = (16384.0 / m.abs().max(1e-30)).log2().floor() as i32;
            let ka = ((1u64 << 29) as f64 / a.abs().max(1e-30)).log2().floor() as i32 - e_in;
            let k = km.min(ka).clamp(-30, 30);
            let scaled = |v: f64, bits: i32, lim: f64| (v * 2f64.powi(bits)).round().clamp(-lim, lim) as i32;
            [scaled(m, k, 16384.0), scaled(a, e_in + k, (1u64 << 29) as f64), e_in + k - e_out]
        })
        .collect()
}

/// An affine layer's `terms` ([`quantise_affine`]) on every value of `t`.
fn apply_affine(terms: &[[i32; 3]], mut t: Tensor<i16>) -> Tensor<i16> {
    reference::per_channel(&mut t, |c, v| {
        let [m, a, s] = at(terms, c);
        *v = saturate(shift_round((*v as i32) * m + a, s)) as i16;
    });
    t
}

pub(super) fn slopes(a: &Act, channels: usize) -> Result<Vec<i32>, String> {
    let s: Vec<f32> = match a {
        Act::None => return Ok(Vec::new()),
        Act::Leaky(s) => vec![*s; channels],
        Act::PRelu(s) => (0..channels).map(|c| at(s, c)).collect(),
    };
    match s.iter().find(|v| v.is_nan() || v.abs() >= 2.0) {
        Some(v) => Err(format!("activation slope {v} (the exact engine takes slopes of magnitude under 2)")),
        None => Ok(s.iter().map(|&v| fraction(v, SLOPE_BITS) as i32).collect()),
    }
}

/// Convolution `c`'s integer weights, bias and shift from input exponent `e_in` to output
/// `e_out`; with `wide` (24-bit activations) each output channel's weights up to
/// [`WIDE_WEIGHT_BITS`] bits finer where the bias and the sums' headroom allow
/// ([`WIDE_SHIFT_MAX`] from `e_pre[p]`, the exponent channel `p`'s sums before the activation
/// take; none: `e_out`).
pub(super) fn quantise(c: &Conv, e_in: i32, (e_out, e_pre): (i32, &[i32]), wide: bool) -> Result<QConv, String> {
    let per = c.cin * c.kernel * c.kernel;
    let mut w = Vec::with_capacity(c.weights.len());
    let (mut shift, mut bias, mut bias_wide) = (Vec::new(), Vec::new(), Vec::new());
    for p in 0..c.cout {
        let ws = &c.weights[p * per..(p + 1) * per];
        let m = ws.iter().fold(0f32, |m, w| m.max(w.abs())).max(1e-12) as f64;
        let b = (c.bias[p].abs() as f64).max(1e-30);
        let bias_room = (BIAS_MAX / b).log2().floor() as i32 - e_in;
        let e = ((WEIGHT_MAX / m).log2().floor() as i32).min(bias_room);
        let e = e.clamp(e_out - e_in - 15, 30);
        // At 24 bits a 15th bit where the shift to the sums' own exponent stays at most
        // WIDE_SHIFT_MAX, a 16th where it stays one less (with 16 there, models-se/up3x-
        // denoise3x's sums wrapped on a flat-colour diagram: 247 LSB from ncnn).
        let e_pre = e_pre.get(p).map_or(e_out, |&x| x.min(e_out));
        let fits =
            |b: i32| b == 0 || (e + b <= 30 && e + b <= bias_room && e_in + e + b - e_pre <= WIDE_SHIFT_MAX - (b - 1));
        let e = e + (0..=if wide { WIDE_WEIGHT_BITS } else { 0 }).rev().find(|&b| fits(b)).unwrap_or(0);
        w.extend(ws.iter().map(|&v| fraction(v, e).clamp(-(SAT as i64), SAT as i64) as i32));
        shift.push(e_in + e - e_out);
        bias.push(fraction(c.bias[p], e_in + e).clamp(-(BIAS_MAX as i64), BIAS_MAX as i64) as i32);
        let wide_max = (BIAS_MAX as i64) << LOW_BITS;
        bias_wide.push(fraction(c.bias[p], e_in + e + LOW_BITS).clamp(-wide_max, wide_max));
    }
    let (w, phases) = match phase_conv(c, &w) {
        Some((pc, pw)) => (pw, Some(pc)),
        None => (w, None),
    };
    let run = phases.as_ref().unwrap_or(c);
    let packed = Packed::new(&w, run.cout, run.cin, run.kernel);
    Ok(QConv { packed, phases, w, shift, bias, bias_wide, slopes: slopes(&c.act, c.cout)? })
}

impl Exact {
    /// The integer form of `g` for the per-blob exponents of a [`Exact::calibration`], with
    /// 24-bit activations (`wide`: function tables of 24-bit entries, weights a bit finer where
    /// it fits, `wide.rs`) or 16-bit ones.
    pub(crate) fn with_calibration(g: &Graph, calibration: &[i32], wide: bool) -> Result<Exact, String> {
        let want = g.blobs + g.activated_channels();
        if calibration.len() != want {
            return Err(format!("a calibration of {} exponents for a network that takes {want}", calibration.len()));
        }
        let mut sums = &calibration[g.blobs..];
        let mut exp = vec![INPUT_BITS; g.blobs];
        let mut convs = Vec::with_capacity(g.nodes.len());
        let (mut tables, mut affines) = (Vec::new(), Vec::new());
        let low = if wide { LOW_BITS } else { 0 };
        for node in &g.nodes {
            let e_in = node.inputs.first().map_or(INPUT_BITS, |&i| exp[i]);
            let own = |b: usize| calibration[b];
            let e_out = match &node.op {
                Op::Input => INPUT_BITS,
                Op::Conv(_) | Op::Sum(_) | Op::Affine { .. } | Op::Map(_) | Op::Product | Op::Se(_) => {
                    own(node.outputs[0])
                }
                Op::Concat => node.inputs.iter().map(|&i| exp[i]).min().unwrap_or(INPUT_BITS),
                Op::Act(_) | Op::PixelShuffle(_) | Op::Nearest(..) | Op::Resize(_) | Op::Split => e_in,
                Op::Crop(_) | Op::SpaceToDepth(_) => e_in,
            };
            for &o in &node.outputs {
                exp[o] = e_out;
            }
            convs.push(match &node.op {
                Op::Conv(c) => {
                    let (e_pre, rest) = sums.split_at(node.op.activated().map_or(0, |c| c.cout));
                    sums = rest;
                    Some(quantise(c, e_in, (e_out, e_pre), wide).map_err(|e| format!("{}: {e}", node.name))?)
                }
                Op::Act(a) => slopes(a, 1).map(|_| None).map_err(|e| format!("{}: {e}", node.name))?,
                _ => None,
            });
            tables.push(if let Op::Map(m) = &node.op { m.table(e_in, e_out, low) } else { Vec::new() });
            affines.push(match &node.op {
                Op::Affine { mul, add } => quantise_affine(mul, add, e_in, e_out),
                _ => Vec::new(),
            });
        }
        Ok(Exact { exp, convs, tables, affines, kernel: Kernel::best(), wide })
    }

    /// The same network computed with micro-kernel `kernel` (the bits do not change).
    #[cfg(feature = "testing")]
    pub(crate) fn with_kernel(mut self, kernel: Kernel) -> Exact {
        self.kernel = kernel;
        self
    }

    /// A sum's terms for a device: per input, its coefficient as a 15-bit fraction and the
    /// shift to the output's exponent — `None` unless the 32-bit form gives the same bits as
    /// [`Engine::sum`] (coefficients within ±1, shifts of at least 1, at most four terms).
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn sum_terms(&self, coeffs: &[f32], ins: &[usize], out: usize) -> Option<Vec<(i32, i32)>> {
        let terms: Vec<(i32, i32)> =
            self.sum_shifts(coeffs, ins, out).into_iter().map(|(k, s)| (k as i32, s)).collect();
        let fits = terms.len() <= 4 && terms.iter().all(|&(k, s)| k.abs() <= 1 << SLOPE_BITS && (1..32).contains(&s));
        fits.then_some(terms)
    }

    /// A sum's terms: per input, its coefficient as a 15-bit fraction and the shift from its
    /// product with the input to the output's exponent (the same at 16 and 24 bits).
    pub(super) fn sum_shifts(&self, coeffs: &[f32], ins: &[usize], out: usize) -> Vec<(i64, i32)> {
        let shift = |i: usize| SLOPE_BITS + self.exp[i] - self.exp[out];
        coeffs.iter().zip(ins).map(|(&k, &i)| (fraction(k, SLOPE_BITS), shift(i))).collect()
    }

    /// A SE block's multipliers `mul` (blob `inp` into blob `out`) as an affine layer's
    /// per-channel multiplier, addend and shift.
    pub(crate) fn scale_terms(&self, mul: &[f32], inp: usize, out: usize) -> Vec<[i32; 3]> {
        quantise_affine(mul, &[0.0], self.exp[inp], self.exp[out])
    }

    /// The exponent of blob `b`.
    pub(crate) fn exponent(&self, b: usize) -> i32 {
        self.exp[b]
    }

    /// Node `n`'s table, if it is a function ([`Map::table`]).
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn table(&self, n: usize) -> Option<&[i32]> {
        self.tables.get(n).filter(|t| !t.is_empty()).map(|t| &t[..])
    }

    /// Node `n`'s per-channel multiplier, addend and shift, if it is an affine layer.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn affine_terms(&self, n: usize) -> Option<&[[i32; 3]]> {
        self.affines.get(n).filter(|t| !t.is_empty()).map(|t| &t[..])
    }
}

/// What a device needs to compute a convolution node exactly as [`Exact`] does.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "gpu"), allow(dead_code))]
pub(crate) struct DeviceConv<'a> {
    /// The stride-1 convolution that runs (a deconvolution's phase convolution); no weights.
    pub conv: Conv,
    /// Its weights, `[out][in][kh][kw]`.
    pub weights: &'a [i32],
    /// Per output channel: bias, shift, slope, whether there is a slope (four words); with
    /// 24-bit activations the bias in their units as two words (`>> 32`, the low 32 bits)
    /// first (five: what `finish_wide` in `shaders/neural_wide.wgsl` reads).
    pub params: Vec<i32>,
    /// Phases per output channel (`stride²` for a deconvolution, else 1).
    pub phases: usize,
}

impl Exact {
    /// Node `n`'s convolution for a device, if it is one the devices run (stride 1, or a
    /// deconvolution with a phase convolution).
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn device_conv(&self, n: usize, c: &Conv) -> Option<DeviceConv<'_>> {
        let q = self.convs.get(n)?.as_ref()?;
        let (conv, phases) = match &q.phases {
            Some(pc) => (pc.clone(), c.stride * c.stride),
            None if !c.transposed && c.stride == 1 => (Conv { weights: Vec::new(), bias: Vec::new(), ..c.clone() }, 1),
            None => return None,
        };
        let params = (0..conv.cout)
            .flat_map(|o| {
                let p = o / phases;
                let slope = q.slopes.get(p).copied();
                let bias = match self.wide {
                    true => vec![(q.bias_wide[p] >> 32) as i32, q.bias_wide[p] as u32 as i32],
                    false => vec![q.bias[p]],
                };
                bias.into_iter().chain([q.shift[p], slope.unwrap_or(0), slope.is_some() as i32])
            })
            .collect();
        Some(DeviceConv { conv, weights: &q.w, params, phases })
    }
}

/// `a / 2^s` rounded half up, in 64 bits (for the operations only the CPU runs).
fn shift_round64(a: i64, s: i32) -> i64 {
    match s {
        s if s > 0 => (a + (1i64 << (s - 1).min(62))) >> s.min(63),
        s => a << (-s).min(40),
    }
}

fn saturate64(a: i64) -> i32 {
    a.clamp(-(SAT as i64), SAT as i64) as i32
}

impl Engine<i16> for Exact {
    fn conv(&self, n: usize, c: &Conv, x: &Tensor<i16>) -> Result<Tensor<i16>, String> {
        let q = self.convs[n].as_ref().ok_or("convolution without integer weights")?;
        if let Some(pc) = &q.phases {
            let ss = c.stride * c.stride;
            let window = conv_window(pc, x);
            let ph = kernels::conv(self.kernel, pc, &q.packed, x, window, |o, row| q.finish_row(o / ss, row));
            return Ok(phases::interleave(c, &ph));
        }
        if c.transposed {
            let mac = |a: i32, wi: usize, v: i16| a.wrapping_add(q.w[wi].wrapping_mul(v as i32));
            return deconv_with(c, x, |_| 0i32, mac, |p, a| q.finish(p, a) as i16);
        }
        if c.stride != 1 {
            return Err("strided convolution".into());
        }
        Ok(kernels::conv(self.kernel, c, &q.packed, x, conv_window(c, x), |p, row| q.finish_row(p, row)))
    }
    fn act(&self, _n: usize, a: &Act, mut t: Tensor<i16>) -> Tensor<i16> {
        // Checked at calibration: the slopes are under 2 in magnitude (products fit 32 bits).
        let s = slopes(a, t.c).unwrap_or_default();
        let plane = (t.h * t.w).max(1);
        if !s.is_empty() {
            for (i, v) in t.data.iter_mut().enumerate() {
                *v = activate(*v as i32, Some(s[i / plane])) as i16;
            }
        }
        t
    }
    fn sum(
        &self,
        _n: usize,
        coeffs: &[f32],
        xs: &[&Tensor<i16>],
        win: Window,
        ins: &[usize],
        out: usize,
    ) -> Tensor<i16> {
        let terms = self.sum_shifts(coeffs, ins, out);
        reference::combine(xs, win, |rows, row| {
            for (x, o) in row.iter_mut().enumerate() {
                let acc: i64 = rows.iter().zip(&terms).map(|(r, &(k, s))| shift_round64(r[x] as i64 * k, s)).sum();
                *o = saturate64(acc) as i16;
            }
        })
    }
    fn affine(&self, n: usize, _mul: &[f32], _add: &[f32], t: Tensor<i16>, _i: usize, _o: usize) -> Tensor<i16> {
        apply_affine(&self.affines[n], t)
    }
    fn map(&self, n: usize, _m: &Map, mut t: Tensor<i16>, _i: usize, _o: usize) -> Tensor<i16> {
        use rayon::prelude::*;
        let table = &self.tables[n];
        t.data.par_iter_mut().for_each(|v| *v = table[(*v as i32 + TABLE_OFFSET) as usize] as i16);
        t
    }
    /// `a · b` (under 2^30 in magnitude) shifted to the output's exponent, half up, saturated.
    fn product(&self, xs: &[&Tensor<i16>], win: Window, ins: &[usize], out: usize) -> Tensor<i16> {
        let s = self.exp[ins[0]] + self.exp[ins[1]] - self.exp[out];
        reference::combine(xs, win, |rows, o| {
            o.iter_mut().enumerate().for_each(|(x, v)| {
                *v = saturate(shift_round(rows[0][x] as i32 * rows[1][x] as i32, s)) as i16;
            })
        })
    }
    /// In 32-bit integers (the GPU's `resize` does the same): `TAP_BITS`-bit weights; each
    /// row's sum rounded back to the input's scale, the vertical sum shifted to the output's,
    /// both half up, then saturated. No sum passes 2^31: the weights' magnitudes sum to under
    /// 1.45, so a row's sum is under 32767 · 1.45 · 2^12 and the vertical one under
    /// 47512 · 1.45 · 2^12.
    fn resize(&self, r: &Resize, x: &Tensor<i16>, inp: usize, out: usize) -> Result<Tensor<i16>, String> {
        use super::resize::TAP_BITS;
        let shift = TAP_BITS + self.exp[inp] - self.exp[out];
        let h = |row: &[i16], i: [usize; 4], q: &[i32; 4]| {
            shift_round((0..4).map(|k| row[i[k]] as i32 * q[k]).sum(), TAP_BITS)
        };
        let v = |m: [i32; 4], q: &[i32; 4]| saturate(shift_round((0..4).map(|k| m[k] * q[k]).sum(), shift)) as i16;
        super::resize::apply(r, x, super::resize::fixed, h, v)
    }
    /// The multipliers as an affine layer's (made for the image at hand: [`Exact::scale_terms`]).
    fn scale(&self, mul: &[f32], t: Tensor<i16>, inp: usize, out: usize) -> Tensor<i16> {
        apply_affine(&self.scale_terms(mul, inp, out), t)
    }
    /// Integer sums (exact in f64 below 2^53) times the blob's unit.
    fn channel_sums(&self, x: &Tensor<i16>, win: Window, b: usize) -> Vec<f64> {
        let unit = 2f64.powi(-self.exp[b]);
        reference::sums_with(x, win, |v| v as f64).into_iter().map(|s| s * unit).collect()
    }
    fn concat(&self, xs: &[&Tensor<i16>], win: Window, ins: &[usize], out: usize) -> Tensor<i16> {
        let shifts: Vec<i32> = ins.iter().map(|&i| self.exp[i] - self.exp[out]).collect();
        reference::concat(xs, win, |k, src, dst| {
            dst.iter_mut().zip(src).for_each(|(d, &v)| *d = saturate(shift_round(v as i32, shifts[k])) as i16);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_up_and_saturating() {
        assert_eq!((shift_round(5, 1), shift_round(-5, 1), shift_round(3, -2)), (3, -2, 12));
        assert_eq!((saturate(40000), saturate(-40000)), (32767, -32767));
        // No overflow at the extremes of the 32-bit accumulator.
        assert_eq!(shift_round(i32::MAX, 1), 1 << 30);
        assert_eq!(shift_round(i32::MIN, 31), -1);
        assert_eq!((shift_round(-7, 40), shift_round(30000, -3)), (0, 32767));
        for a in -1000..1000 {
            for s in 1..12 {
                assert_eq!(shift_round(a, s) as i64, shift_round64(a as i64, s), "{a} >> {s}");
            }
        }
    }

    /// At 24 bits a channel's weights take up to two bits more, unless its bias would not fit
    /// or its shift from sum to output would pass [`WIDE_SHIFT_MAX`] (one less for the
    /// second); at 16 bits never.
    #[test]
    fn wide_weights_take_bits_more_where_the_headroom_allows() {
        let conv = |w: [f32; 4], b: [f32; 4]| Conv {
            cin: 1,
            cout: 4,
            kernel: 1,
            stride: 1,
            dilation: 1,
            pad: [0; 4],
            weights: w.to_vec(),
            bias: b.to_vec(),
            act: Act::None,
            transposed: false,
            constant_inputs: None,
        };
        // Channel 0: 0.5 is 4096 in 14 bits (shift 13), 16384 in 16 (shift 15). Channel 1:
        // 0.25, shift 14 in 14 bits: a 16th bit would make it 16, past 15 — one bit more only.
        // Channel 2: a weight so small that its 14-bit shift is 16 already. Channel 3: a bias of
        // 8 (2^30 in its 14-bit units).
        let c = conv([0.5, 0.25, 0.5 / 8.0, 0.5], [0.0, 0.0, 0.0, 8.0]);
        let (narrow, wide) = (quantise(&c, 14, (14, &[]), false).unwrap(), quantise(&c, 14, (14, &[]), true).unwrap());
        assert_eq!(narrow.w, [4096, 4096, 4096, 4096]);
        assert_eq!(narrow.shift, [13, 14, 16, 13]);
        assert_eq!(wide.w, [16384, 8192, 4096, 4096]);
        assert_eq!(wide.shift, [15, 15, 16, 13]);
        // The bias in the wide units follows the channel's scale.
        assert_eq!((narrow.bias[3], wide.bias_wide[3]), (1 << 30, 1i64 << (30 + LOW_BITS)));
        // 0.75 is 6144 in 14 bits, 24576 in 16 (past 16383: the 16th bit), shift 13.
        let full = quantise(&conv([0.75, -0.75, 0.5, 0.0], [0.0; 4]), 14, (16, &[]), true).unwrap();
        assert_eq!((full.w, full.shift[0]), (vec![24576, -24576, 16384, 0], 13));
        // An activated channel counts the shift to its sums' own exponent (a leaky layer's
        // negative sums outgrow its output): channel 0's sums a bit past its output keep it one
        // bit only; channel 1's, three bits past, none; channel 2's, within, both; channel 3's
        // exponent above the output's counts as the output's.
        let c = conv([0.5; 4], [0.0; 4]);
        let pre = quantise(&c, 14, (14, &[13, 11, 14, 20]), true).unwrap();
        assert_eq!(pre.w, [8192, 4096, 16384, 16384]);
        assert_eq!(pre.shift, [14, 13, 15, 15]);
    }
}
