//! 24-bit activations for the exact engine (`--activation-bits 24`): the same network, the
//! same per-blob exponents as `exact.rs` and its weights one bit finer where the sums' headroom
//! allows (`exact::quantise`), but every blob holds `v` in ±(2^23 - 129) standing for
//! `v / 2^(e + 8)` — eight more bits below each blob's 16-bit scale. A deep network whose
//! images sit far below its calibration image's range (a dark photo through realesrgan-x4plus's
//! 999 layers) keeps its small values instead of rounding them away at every layer
//! (docs/results/2026-12-05-dev-x4plus-precision-probe.txt).
//!
//! A convolution splits its input as `v = 2^8·hi + lo` (`hi = ⌊(v + 128) / 2^8⌋`,
//! `lo` in [-128, 128)) and runs the 16-bit kernels twice with the same weights: the wrapping
//! 32-bit sums `Σ w·hi` and `Σ w·lo` are combined in 64 bits as `2^8·Σ w·hi + Σ w·lo + bias`,
//! rounded to the output's scale, activated and saturated. Sums, concatenations, affine layers,
//! products and resizes do `exact.rs`'s arithmetic in 64 bits on the wider values. A function
//! (SPAN's Sigmoid and Swish) reads a table of 24-bit entries at `hi` and interpolates on `lo`
//! ([`lookup`]). A SE block's pooled sums are taken over the 24-bit values (a tile's prefix
//! hands `se_pass.rs` the blob at its width). The network's input is widened (`q·2^8`) and its
//! output narrowed to 16 bits (`hi`), so that the stages around the network are the same for
//! both widths.

use super::elementwise::{at, Map, TABLE_OFFSET};
use super::exact::{slopes, Exact, QConv, LOW_BITS, SLOPE_BITS};
use super::graph::{Act, Conv, Graph, Resize};
use super::kernels;
use super::phases;
use super::reference::{self, conv_window, deconv_with, Engine, SeScales, Tensor, Window};

/// Largest magnitude: `hi` stays within ±32767.
const SAT: i64 = 32767 * 256 + 127;

fn saturate(a: i64) -> i32 {
    a.clamp(-SAT, SAT) as i32
}

/// `a / 2^s` rounded half up; for negative `s`, `a · 2^-s` with `a` first kept within ±2^40
/// and the shift at most 22 (so that it fits 64 bits; `l_shift_round` in
/// `shaders/neural_wide.wgsl` computes the same).
fn shift_round(a: i64, s: i32) -> i64 {
    match s {
        s if s >= 63 => 0,
        s if s > 0 => (a >> s) + ((a >> (s - 1)) & 1),
        s => a.clamp(-(1 << 40), 1 << 40) << (-s).min(22),
    }
}

/// The upper part of a 24-bit value: `v / 2^8` rounded half up (within ±32767).
#[inline]
pub(crate) fn hi(v: i32) -> i16 {
    ((v + 128) >> LOW_BITS) as i16
}

/// The lower part: `v - 2^8·hi(v)`, in [-128, 128).
#[inline]
pub(crate) fn lo(v: i32) -> i16 {
    (v - ((hi(v) as i32) << LOW_BITS)) as i16
}

/// The upper (`upper`) or lower part of 24-bit value `v` shifted by `s` as a concatenation
/// shifts it: what a device's split of a 24-bit blob holds (`split_value` in
/// `shaders/neural_common.wgsl`).
#[cfg(all(test, feature = "gpu"))]
pub(crate) fn split_part(v: i32, s: i32, upper: bool) -> i16 {
    let w = saturate(shift_round(v as i64, s));
    if upper {
        hi(w)
    } else {
        lo(w)
    }
}

/// An activation on a rounded value: `v` if non-negative, else `v · slope` rounded.
fn activate(v: i64, slope: Option<i32>) -> i64 {
    match slope {
        Some(s) if v < 0 => shift_round(v.max(-(1 << 46)) * s as i64, SLOPE_BITS),
        _ => v,
    }
}

impl QConv {
    /// The output of channel `p` from its two wrapping sums (over `hi` and over `lo`).
    fn finish_wide(&self, p: usize, sum_hi: i32, sum_lo: i32) -> i32 {
        finish_value((self.bias_wide[p], self.shift[p], self.slopes.get(p).copied()), sum_hi, sum_lo)
    }

    /// [`QConv::finish_wide`] on a row of channel `p`'s sums, written so that it vectorises
    /// for the usual shifts (inlined into the kernels' AVX2 context).
    #[inline(always)]
    fn finish_wide_row(&self, p: usize, sums_hi: &[i32], sums_lo: &[i32], out: &mut [i32]) {
        let (b, s, slope) = (self.bias_wide[p], self.shift[p], self.slopes.get(p).copied());
        let rows = out.iter_mut().zip(sums_hi).zip(sums_lo);
        match (s, slope) {
            (1..=62, Some(k)) => rows.for_each(|((d, &h), &l)| {
                let a = ((h as i64) << LOW_BITS) + l as i64 + b;
                let r = (a >> s) + ((a >> (s - 1)) & 1);
                let n = r.max(-(1 << 46)) * k as i64;
                let r = if r < 0 { (n >> SLOPE_BITS) + ((n >> (SLOPE_BITS - 1)) & 1) } else { r };
                *d = r.clamp(-SAT, SAT) as i32;
            }),
            (1..=62, None) => rows.for_each(|((d, &h), &l)| {
                let a = ((h as i64) << LOW_BITS) + l as i64 + b;
                *d = ((a >> s) + ((a >> (s - 1)) & 1)).clamp(-SAT, SAT) as i32;
            }),
            _ => rows.for_each(|((d, &h), &l)| *d = self.finish_wide(p, h, l)),
        }
    }
}

/// A convolution's output value from its two wrapping sums (over the upper parts of its input
/// and over the lower) and its channel's bias, shift and slope: `2^8·hi + lo + bias` rounded,
/// activated, saturated (what `finished` in `shaders/neural_wide.wgsl` computes).
pub(crate) fn finish_value((bias, shift, slope): (i64, i32, Option<i32>), sum_hi: i32, sum_lo: i32) -> i32 {
    let a = ((sum_hi as i64) << LOW_BITS) + sum_lo as i64 + bias;
    saturate(activate(shift_round(a, shift), slope))
}

/// A sum's value from its inputs' values, each with its term `(k, s)`: `shift_round(v·k, s)`
/// summed and saturated (what `sum_pair` in `shaders/neural_wide.wgsl` computes for two).
#[inline(always)]
pub(crate) fn sum_value(terms: impl Iterator<Item = (i32, (i64, i32))>) -> i32 {
    saturate(terms.map(|(v, (k, s))| shift_round(v as i64 * k, s)).sum())
}

/// `t`'s values split into their upper and lower parts (one pass).
fn split(t: &Tensor<i32>) -> (Tensor<i16>, Tensor<i16>) {
    use rayon::prelude::*;
    let (upper, lower): (Vec<i16>, Vec<i16>) = t.data.par_iter().map(|&v| (hi(v), lo(v))).unzip();
    (Tensor { data: upper, ..t.shaped() }, Tensor { data: lower, ..t.shaped() })
}

/// A 16-bit tensor (the network's input) as 24-bit values.
fn widen(t: Tensor<i16>) -> Tensor<i32> {
    Tensor { data: t.data.iter().map(|&v| (v as i32) << LOW_BITS).collect(), ..t.shaped() }
}

/// A 24-bit tensor as 16-bit values (`hi`).
fn narrow(t: Tensor<i32>) -> Tensor<i16> {
    Tensor { data: t.data.iter().map(|&v| hi(v)).collect(), ..t.shaped() }
}

/// A function of a 24-bit value from its table (entries at the 24-bit output scale, one per
/// value of `hi`): the entry at `hi`, moved towards the next entry on `lo`'s side by `|lo| /
/// 2^8` of the difference, rounded half up. All in 32 bits: entries are within ±(2^23 - 129),
/// so a difference times `|lo| <= 128` stays under 2^31 (`lookup_wide` in
/// `shaders/neural_wide.wgsl` computes the same). Reading the table at `hi` alone left
/// SPAN's activations 16-bit: 4-13 LSB from ncnn at 24 bits.
fn lookup(table: &[i32], v: i32) -> i32 {
    let h = hi(v) as i32;
    let lo = v - (h << LOW_BITS);
    let at = |q: i32| table[(q.clamp(-TABLE_OFFSET, TABLE_OFFSET - 1) + TABLE_OFFSET) as usize];
    let t0 = at(h);
    let moved = (at(h + lo.signum()) - t0) * lo.abs();
    t0 + (moved >> LOW_BITS) + ((moved >> (LOW_BITS - 1)) & 1)
}

/// The exact engine with 24-bit activations ([`Exact`]'s weights and exponents).
pub(crate) struct Wide<'a>(pub &'a Exact);

impl Exact {
    /// [`reference::run_until`] with this engine's activations, on and to 16-bit tensors (the
    /// output narrowed where activations are 24-bit).
    pub(crate) fn run_until(
        &self,
        g: &Graph,
        input: Tensor<i16>,
        scales: &SeScales,
        stop: usize,
    ) -> Result<Tensor<i16>, String> {
        match self.wide {
            false => reference::run_until(g, self, input, scales, stop, &mut |_, _| {}),
            true => reference::run_until(g, &Wide(self), widen(input), scales, stop, &mut |_, _| {}).map(narrow),
        }
    }

    /// [`Exact::run_until`] to a blob for a SE block's sums, in this engine's width (16-bit
    /// values as they are, or 24-bit ones): what [`Exact::prefix_sums`] adds up.
    pub(crate) fn run_prefix(
        &self,
        g: &Graph,
        input: Tensor<i16>,
        scales: &SeScales,
        stop: usize,
    ) -> Result<Tensor<i32>, String> {
        match self.wide {
            false => reference::run_until(g, self, input, scales, stop, &mut |_, _| {})
                .map(|t| Tensor { data: t.data.iter().map(|&v| i32::from(v)).collect(), ..t.shaped() }),
            true => reference::run_until(g, &Wide(self), widen(input), scales, stop, &mut |_, _| {}),
        }
    }

    /// Per channel, the sum of blob `b`'s values (from [`Exact::run_prefix`]) over `win`, in
    /// real units (a device sums its own: [`Exact::sums_in_real_units`]).
    pub(crate) fn prefix_sums(&self, x: &Tensor<i32>, win: Window, b: usize) -> Vec<f64> {
        let unit = self.blob_unit(b);
        reference::sums_with(x, win, |v| v as f64).into_iter().map(|s| s * unit).collect()
    }

    /// Blob `b`'s integer sums (a device's, [`super::stage::NetDevice::finish_prefix_sums`])
    /// in real units: the same numbers as [`Exact::prefix_sums`] (both exact below 2^53).
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn sums_in_real_units(&self, sums: &[i64], b: usize) -> Vec<f64> {
        let unit = self.blob_unit(b);
        sums.iter().map(|&s| s as f64 * unit).collect()
    }

    /// The real value of one integer unit of blob `b`.
    fn blob_unit(&self, b: usize) -> f64 {
        2f64.powi(-self.exp[b] - if self.wide { LOW_BITS } else { 0 })
    }

    /// [`super::tail::run_in_strips`] with this engine's activations, on and to 16-bit tensors.
    pub(crate) fn run_in_strips(
        &self,
        g: &Graph,
        input: Tensor<i16>,
        scales: &SeScales,
        max_blob: u64,
    ) -> Result<Tensor<i16>, String> {
        match self.wide {
            false => super::tail::run_in_strips(g, self, input, scales, max_blob),
            true => super::tail::run_in_strips(g, &Wide(self), widen(input), scales, max_blob).map(narrow),
        }
    }

    /// Whether activations are 24-bit.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn is_wide(&self) -> bool {
        self.wide
    }
}

impl Engine<i32> for Wide<'_> {
    fn conv(&self, n: usize, c: &Conv, x: &Tensor<i32>) -> Result<Tensor<i32>, String> {
        let ex = self.0;
        let q = ex.convs[n].as_ref().ok_or("convolution without integer weights")?;
        if c.transposed && q.phases.is_none() {
            let mac = |(a, b): (i32, i32), wi: usize, v: i32| {
                (a.wrapping_add(q.w[wi].wrapping_mul(hi(v) as i32)), b.wrapping_add(q.w[wi].wrapping_mul(lo(v) as i32)))
            };
            return deconv_with(c, x, |_| (0i32, 0i32), mac, |p, (a, b)| q.finish_wide(p, a, b));
        }
        let run = q.phases.as_ref().unwrap_or(c);
        if run.stride != 1 {
            return Err("strided convolution".into());
        }
        let (h, l) = split(x);
        let per = if q.phases.is_some() { c.stride * c.stride } else { 1 };
        let finish = |o: usize, sh: &[i32], sl: &[i32], out: &mut [i32]| q.finish_wide_row(o / per, sh, sl, out);
        let out = kernels::conv_wide(ex.kernel, run, &q.packed, (&h, &l), conv_window(run, x), finish);
        Ok(if q.phases.is_some() { phases::interleave(c, &out) } else { out })
    }
    fn act(&self, _n: usize, a: &Act, mut t: Tensor<i32>) -> Tensor<i32> {
        // Checked at calibration: the slopes are under 2 in magnitude.
        let s = slopes(a, t.c).unwrap_or_default();
        if !s.is_empty() {
            reference::per_channel(&mut t, |c, v| *v = saturate(activate(*v as i64, Some(s[c]))));
        }
        t
    }
    fn sum(
        &self,
        _n: usize,
        coeffs: &[f32],
        xs: &[&Tensor<i32>],
        win: Window,
        ins: &[usize],
        out: usize,
    ) -> Tensor<i32> {
        let terms = self.0.sum_shifts(coeffs, ins, out);
        reference::combine(xs, win, |rows, row| {
            for (x, o) in row.iter_mut().enumerate() {
                *o = sum_value(rows.iter().zip(&terms).map(|(r, &t)| (r[x], t)));
            }
        })
    }
    fn affine(&self, n: usize, _mul: &[f32], _add: &[f32], t: Tensor<i32>, _i: usize, _o: usize) -> Tensor<i32> {
        apply_affine(&self.0.affines[n], t)
    }
    /// The function's 24-bit table ([`lookup`]).
    fn map(&self, n: usize, _m: &Map, mut t: Tensor<i32>, _i: usize, _o: usize) -> Tensor<i32> {
        use rayon::prelude::*;
        let table = &self.0.tables[n];
        t.data.par_iter_mut().for_each(|v| *v = lookup(table, *v));
        t
    }
    fn product(&self, xs: &[&Tensor<i32>], win: Window, ins: &[usize], out: usize) -> Tensor<i32> {
        let exp = &self.0.exp;
        let s = exp[ins[0]] + exp[ins[1]] + LOW_BITS - exp[out];
        reference::combine(xs, win, |rows, o| {
            o.iter_mut()
                .enumerate()
                .for_each(|(x, v)| *v = saturate(shift_round(rows[0][x] as i64 * rows[1][x] as i64, s)))
        })
    }
    fn concat(&self, xs: &[&Tensor<i32>], win: Window, ins: &[usize], out: usize) -> Tensor<i32> {
        let shifts: Vec<i32> = ins.iter().map(|&i| self.0.exp[i] - self.0.exp[out]).collect();
        reference::concat(xs, win, |k, src, dst| {
            dst.iter_mut().zip(src).for_each(|(d, &v)| *d = saturate(shift_round(v as i64, shifts[k])));
        })
    }
    /// `exact.rs`'s resize in 64 bits.
    fn resize(&self, r: &Resize, x: &Tensor<i32>, inp: usize, out: usize) -> Result<Tensor<i32>, String> {
        use super::resize::TAP_BITS;
        let shift = TAP_BITS + self.0.exp[inp] - self.0.exp[out];
        let h = |row: &[i32], i: [usize; 4], q: &[i32; 4]| {
            shift_round((0..4).map(|k| row[i[k]] as i64 * q[k] as i64).sum(), TAP_BITS)
        };
        let v = |m: [i64; 4], q: &[i32; 4]| saturate(shift_round((0..4).map(|k| m[k] * q[k] as i64).sum(), shift));
        super::resize::apply(r, x, super::resize::fixed, h, v)
    }
    fn scale(&self, mul: &[f32], t: Tensor<i32>, inp: usize, out: usize) -> Tensor<i32> {
        apply_affine(&self.0.scale_terms(mul, inp, out), t)
    }
    /// Over the 24-bit values (a SE block's means of a blob far below its calibrated range
    /// need the bits below `hi`: Real-CUGAN models-pro's were 4 % off over `hi`).
    fn channel_sums(&self, x: &Tensor<i32>, win: Window, b: usize) -> Vec<f64> {
        let unit = 2f64.powi(-self.0.exp[b] - LOW_BITS);
        reference::sums_with(x, win, |v| v as f64).into_iter().map(|s| s * unit).collect()
    }
}

/// An affine layer's terms (`exact.rs`'s `quantise_affine`) on 24-bit values: `v · m + a · 2^8`, shifted.
fn apply_affine(terms: &[[i32; 3]], mut t: Tensor<i32>) -> Tensor<i32> {
    reference::per_channel(&mut t, |c, v| {
        let [m, a, s] = at(terms, c);
        *v = saturate(shift_round(*v as i64 * m as i64 + ((a as i64) << LOW_BITS), s));
    });
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_interpolated_between_its_entries() {
        // A linear function's table gives the function at every 24-bit value (rounded half
        // up), but past its last entry, which holds.
        let linear: Vec<i32> = (0..1 << 16).map(|i| (i - TABLE_OFFSET) * 3 * 128).collect();
        for v in [-8_388_479, -300_000, -129, -128, -1, 0, 1, 127, 128, 5_000_001, 8_388_479] {
            let (h, l) = (hi(v) as i32, lo(v));
            let want = if h == TABLE_OFFSET - 1 && l > 0 { linear[(1 << 16) - 1] } else { (v * 3 + 1) >> 1 };
            assert_eq!(lookup(&linear, v), want, "at {v}");
        }
        // A sigmoid's: between its neighbouring entries, and halfway rounded half up.
        let sigmoid = Map { f: super::super::elementwise::Func::Sigmoid, mul: 1.0, add: 0.0 }.table(10, 14, 8);
        for v in (-2_000_000..2_000_000).step_by(9_973) {
            let (h, l) = (hi(v) as i32, lo(v) as i32);
            let (a, b) = (sigmoid[(h + TABLE_OFFSET) as usize], sigmoid[(h + l.signum() + TABLE_OFFSET) as usize]);
            let got = lookup(&sigmoid, v);
            assert!(got >= a.min(b) && got <= a.max(b), "{v}: {got} outside {a}..{b}");
        }
        let (a, b) = (sigmoid[TABLE_OFFSET as usize], sigmoid[TABLE_OFFSET as usize + 1]);
        assert_eq!(lookup(&sigmoid, 64), a + ((b - a) * 64 + 128) / 256);
    }

    #[test]
    fn parts_recompose_and_stay_in_range() {
        for v in [-(SAT as i32), -32768, -129, -128, -1, 0, 1, 127, 128, 32767, SAT as i32] {
            let (h, l) = (hi(v), lo(v));
            assert_eq!(((h as i32) << LOW_BITS) + l as i32, v, "{v}");
            assert!((-128..128).contains(&l), "{v}: lo {l}");
        }
        assert_eq!((hi(SAT as i32), hi(-(SAT as i32))), (32767, -32767));
        assert_eq!((shift_round(5, 1), shift_round(-5, 1), shift_round(3, -2)), (3, -2, 12));
    }

    /// The vectorising row form gives each value's [`QConv::finish_wide`], for every kind of
    /// shift (right, none, left, past 62) and slope, at extreme sums.
    #[test]
    fn a_row_is_finished_as_each_value_is() {
        let mut rng = crate::digest::Lcg(5);
        let cases = [(13, Some(3277)), (1, Some(-40000)), (40, None), (0, Some(3277)), (-3, None), (63, Some(1))];
        for (shift, slope) in cases {
            let q = QConv {
                packed: super::super::kernels::Packed::new(&[0], 1, 1, 1),
                phases: None,
                w: vec![0],
                shift: vec![shift],
                bias: vec![0],
                bias_wide: vec![(rng.next() >> 25) as i64 - (1 << 38)],
                slopes: slope.into_iter().collect(),
            };
            let mut sums_hi: Vec<i32> = (0..64).map(|_| (rng.next() >> 32) as i32).collect();
            let sums_lo: Vec<i32> = (0..64).map(|_| (rng.next() >> 40) as i32 - (1 << 23)).collect();
            sums_hi[..4].copy_from_slice(&[i32::MAX, i32::MIN, 0, -1]);
            let mut row = vec![0; 64];
            q.finish_wide_row(0, &sums_hi, &sums_lo, &mut row);
            for i in 0..64 {
                assert_eq!(row[i], q.finish_wide(0, sums_hi[i], sums_lo[i]), "shift {shift} slope {slope:?} at {i}");
            }
        }
    }
}
