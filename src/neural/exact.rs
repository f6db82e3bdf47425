//! The exact engine: the network in integers, so that every backend, tile size and thread
//! count can give the same bytes. (Float sums depend on their order; integer sums do not.)
//!
//! Each blob holds 16-bit-range integers `q` standing for `q / 2^e`, with `e` fixed per blob:
//! 14 for the input (values 0..1), the same as its input for layers that only move or scale
//! samples (activations, pixel shuffle, enlargement, split), and otherwise chosen from the
//! blob's largest magnitude on a calibration image (so that it uses 14 bits with half a bit
//! of headroom). Weights are rounded per output channel to 14-bit integers with their own
//! power of two; a convolution sums `q · w` in 64 bits, adds the bias in the same units,
//! applies its activation (slopes as 15-bit fractions), and rounds once to its output's
//! exponent (round half up, saturating at ±32767). Everything after the calibration is
//! integer arithmetic with a fixed order of rounding steps.

use super::graph::{Act, Conv, Graph, Op};
use super::reference::{self, conv_with, deconv_with, Engine, Tensor};

/// Bits of the activation scale: an input value of 1.0 is `2^14`.
pub(crate) const INPUT_BITS: i32 = 14;
const SLOPE_BITS: i32 = 15;
const SAT: i64 = 32767;

/// `a / 2^s` rounded half up (or `a · 2^-s` for negative `s`).
fn shift_round(a: i64, s: i32) -> i64 {
    match s {
        s if s > 0 => (a + (1i64 << (s - 1))) >> s,
        0 => a,
        s => a << (-s).min(40),
    }
}

fn saturate(a: i64) -> i32 {
    a.clamp(-SAT, SAT) as i32
}

fn fraction(v: f32, bits: i32) -> i64 {
    (v as f64 * (1u64 << bits) as f64).round() as i64
}

/// A convolution's integer weights.
#[derive(Debug)]
struct QConv {
    w: Vec<i64>,
    /// Per output channel: the weights' power of two.
    wexp: Vec<i32>,
    /// Per output channel: the bias in accumulator units (`2^-(e_in + wexp)`).
    bias: Vec<i64>,
    /// Leaky or PReLU slopes as 15-bit fractions (empty: none).
    slopes: Vec<i64>,
    e_in: i32,
    e_out: i32,
}

/// The integer form of a network.
#[derive(Debug)]
pub(crate) struct Exact {
    /// Per blob: its exponent.
    exp: Vec<i32>,
    /// Per node: a convolution's integer weights.
    convs: Vec<Option<QConv>>,
}

fn slopes(a: &Act, channels: usize) -> Vec<i64> {
    match a {
        Act::None => Vec::new(),
        Act::Leaky(s) => vec![fraction(*s, SLOPE_BITS); channels],
        Act::PRelu(s) => (0..channels).map(|c| fraction(s[if s.len() == 1 { 0 } else { c }], SLOPE_BITS)).collect(),
    }
}

fn quantise(c: &Conv, e_in: i32, e_out: i32) -> QConv {
    let per = c.cin * c.kernel * c.kernel;
    let mut q =
        QConv { w: Vec::new(), wexp: Vec::new(), bias: Vec::new(), slopes: slopes(&c.act, c.cout), e_in, e_out };
    for p in 0..c.cout {
        let ws = &c.weights[p * per..(p + 1) * per];
        let m = ws.iter().fold(0f32, |m, w| m.max(w.abs())).max(1e-12);
        let e = ((8191.0 / m as f64).log2().floor() as i32).clamp(0, 30);
        q.w.extend(ws.iter().map(|&w| fraction(w, e)));
        q.wexp.push(e);
        q.bias.push(fraction(c.bias[p], e_in + e));
    }
    q
}

/// A deterministic calibration image, `n x n`: gradients, edges and noise in 0..1.
fn calibration_image(n: usize) -> Tensor {
    let mut t = Tensor::zeros(3, n, n);
    let mut s = 0x2545_f491_4f6c_dd1du64;
    for c in 0..3 {
        for y in 0..n {
            for x in 0..n {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let noise = (s >> 40) as f32 / (1u64 << 24) as f32;
                let edge = if (x / 5 + y / 7 + c) % 2 == 0 { 0.4 } else { 0.0 };
                let v = (x + y * c) as f32 / (2 * n) as f32 * 0.5 + edge + noise * 0.1;
                t.data[(c * n + y) * n + x] = v.min(1.0);
            }
        }
    }
    t
}

impl Exact {
    /// Chooses every blob's exponent and rounds the weights, from one float run of the
    /// network on the calibration image.
    pub fn calibrate(g: &Graph) -> Result<Exact, String> {
        let mut peak = vec![0f32; g.blobs];
        reference::run_with(g, &reference::Float, calibration_image(48), &mut |b, t| {
            peak[b] = t.data.iter().fold(peak[b], |m, v| m.max(v.abs()));
        })?;
        let mut exp = vec![INPUT_BITS; g.blobs];
        let mut convs = Vec::with_capacity(g.nodes.len());
        for node in &g.nodes {
            let e_in = node.inputs.first().map_or(INPUT_BITS, |&i| exp[i]);
            let own = |b: usize| ((16384.0 / (peak[b].max(1e-6) as f64 * 1.5)).log2().floor() as i32).clamp(-8, 24);
            let e_out = match &node.op {
                Op::Input => INPUT_BITS,
                Op::Conv(_) | Op::Sum(_) | Op::Affine { .. } => own(node.outputs[0]),
                Op::Concat => node.inputs.iter().map(|&i| exp[i]).min().unwrap_or(INPUT_BITS),
                Op::Act(_) | Op::PixelShuffle(_) | Op::Nearest(..) | Op::Split => e_in,
            };
            for &o in &node.outputs {
                exp[o] = e_out;
            }
            convs.push(match &node.op {
                Op::Conv(c) => Some(quantise(c, e_in, e_out)),
                _ => None,
            });
        }
        Ok(Exact { exp, convs })
    }

    /// The exponent of blob `b`.
    pub fn exponent(&self, b: usize) -> i32 {
        self.exp[b]
    }
}

impl Engine<i32> for Exact {
    fn conv(&self, n: usize, c: &Conv, x: &Tensor<i32>) -> Result<Tensor<i32>, String> {
        let q = self.convs[n].as_ref().ok_or("convolution without integer weights")?;
        let finish = |p: usize, a: i64| {
            let a = if a < 0 && !q.slopes.is_empty() { shift_round(a * q.slopes[p], SLOPE_BITS) } else { a };
            saturate(shift_round(a, q.e_in + q.wexp[p] - q.e_out))
        };
        let mac = |a: i64, wi: usize, v: i32| a + q.w[wi] * v as i64;
        if c.transposed {
            deconv_with(c, x, |_| 0i64, mac, |p, a| finish(p, a + q.bias[p]))
        } else {
            conv_with(c, x, |p| q.bias[p], mac, finish)
        }
    }
    fn act(&self, _n: usize, a: &Act, mut t: Tensor<i32>) -> Tensor<i32> {
        let s = slopes(a, t.c);
        let plane = t.h * t.w;
        if !s.is_empty() {
            for (i, v) in t.data.iter_mut().enumerate() {
                if *v < 0 {
                    *v = saturate(shift_round(*v as i64 * s[i / plane], SLOPE_BITS));
                }
            }
        }
        t
    }
    fn sum(&self, _n: usize, coeffs: &[f32], xs: &[Tensor<i32>], ins: &[usize], out: usize) -> Tensor<i32> {
        let e_out = self.exp[out];
        let mut acc = vec![0i64; xs[0].data.len()];
        for ((x, &k), &i) in xs.iter().zip(coeffs).zip(ins) {
            let (k, s) = (fraction(k, SLOPE_BITS), SLOPE_BITS + self.exp[i] - e_out);
            acc.iter_mut().zip(&x.data).for_each(|(a, &v)| *a += shift_round(v as i64 * k, s));
        }
        Tensor { data: acc.into_iter().map(saturate).collect(), ..xs[0].clone() }
    }
    fn affine(&self, _n: usize, mul: f32, add: f32, mut t: Tensor<i32>, i: usize, o: usize) -> Tensor<i32> {
        let (e_in, e_out) = (self.exp[i], self.exp[o]);
        let (m, a) = (fraction(mul, SLOPE_BITS), fraction(add, SLOPE_BITS + e_in));
        t.data.iter_mut().for_each(|v| *v = saturate(shift_round(*v as i64 * m + a, SLOPE_BITS + e_in - e_out)));
        t
    }
    fn concat(&self, xs: &[Tensor<i32>], ins: &[usize], out: usize) -> Tensor<i32> {
        let aligned: Vec<Tensor<i32>> = xs
            .iter()
            .zip(ins)
            .map(|(x, &i)| {
                let s = self.exp[i] - self.exp[out];
                Tensor { data: x.data.iter().map(|&v| saturate(shift_round(v as i64, s))).collect(), ..x.clone() }
            })
            .collect();
        reference::concat(&aligned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn rounding_is_half_up_and_saturating() {
        assert_eq!((shift_round(5, 1), shift_round(-5, 1), shift_round(3, -2)), (3, -2, 12));
        assert_eq!((saturate(40000), saturate(-40000)), (32767, -32767));
    }
}
