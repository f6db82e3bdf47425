//! One VP8 macroblock (`vp8.rs`): its prediction modes chosen, its residual transformed and
//! quantized, its pixels rebuilt as the decoder will, and its blocks' tokens coded.

use super::vp8_dsp::{self as dsp, BoolWriter, Edges, Mode};
use super::vp8_tables as t;
use std::io::{Result, Write};

/// The quantizer steps of one quantizer index: luma DC and AC, second-order DC and AC, chroma
/// DC and AC (RFC 6386, section 14.1).
#[derive(Clone, Copy)]
pub(super) struct Steps {
    y: [i32; 2],
    y2: [i32; 2],
    uv: [i32; 2],
}

impl Steps {
    pub(super) fn new(q: usize) -> Steps {
        let (dc, ac) = (t::DC_Q[q] as i32, t::AC_Q[q] as i32);
        Steps { y: [dc, ac], y2: [dc * 2, ((ac * 101581) >> 16).max(8)], uv: [t::DC_Q[q.min(117)] as i32, ac] }
    }
}

/// Quantizes coefficient `c` with `step`: DC rounded to nearest, AC with a wider dead zone
/// (a level of 1 from 5/8 of a step), which saves bits on noise for little loss.
fn quantize(c: i32, step: i32, dc: bool) -> i32 {
    let bias = if dc { step / 2 } else { step * 3 / 8 };
    let level = ((c.abs() + bias) / step).min(2048);
    if c < 0 {
        -level
    } else {
        level
    }
}

/// One macroblock on its way through: source, modes, quantized levels (raster order in each
/// 4x4 block) and rebuilt pixels.
pub(super) struct Macroblock {
    pub(super) src: [Vec<u8>; 3],
    pub(super) modes: [Mode; 2],
    pred: [Vec<u8>; 3],
    pub(super) levels: [[[i32; 16]; 16]; 3],
    pub(super) y2: [i32; 16],
    pub(super) recon: [Vec<u8>; 3],
}

impl Default for Macroblock {
    fn default() -> Macroblock {
        let planes = || [vec![0u8; 256], vec![0u8; 64], vec![0u8; 64]];
        Macroblock {
            src: planes(),
            modes: [Mode::Dc; 2],
            pred: planes(),
            levels: [[[0; 16]; 16]; 3],
            y2: [0; 16],
            recon: planes(),
        }
    }
}

impl Macroblock {
    /// The luma and chroma modes whose predictions are nearest the source (squared error;
    /// the cheaper on a tie), or DC for both when `cheap`.
    pub(super) fn choose_modes(&mut self, edges: [Edges; 3], cheap: bool) {
        let all = [Mode::Dc, Mode::Vertical, Mode::Horizontal, Mode::TrueMotion];
        let candidates = if cheap { &all[..1] } else { &all[..] };
        let mut trial = [0u8; 256];
        let sse = |a: &[u8], b: &[u8]| a.iter().zip(b).map(|(&x, &y)| (x as i32 - y as i32).pow(2) as u64).sum::<u64>();
        let best = |planes: &[usize], trial: &mut [u8; 256]| {
            let cost = |m: Mode, trial: &mut [u8; 256]| {
                let mut total = 0;
                for &p in planes {
                    let n = if p == 0 { 16 } else { 8 };
                    dsp::predict(m, &edges[p], n, trial);
                    total += sse(&trial[..n * n], &self.src[p]);
                }
                total
            };
            let scored = candidates.iter().enumerate().map(|(i, &m)| (cost(m, trial), i));
            candidates[scored.min().map_or(0, |(_, i)| i)]
        };
        self.modes = [best(&[0], &mut trial), best(&[1, 2], &mut trial)];
        for (p, (e, pred)) in edges.iter().zip(&mut self.pred).enumerate() {
            let n = if p == 0 { 16 } else { 8 };
            dsp::predict(self.modes[(p > 0) as usize], e, n, pred);
        }
    }

    /// Residuals, transforms and quantization of every block, and the rebuilt pixels.
    pub(super) fn transform(&mut self, steps: Steps) {
        let mut coeffs = [[0i32; 16]; 16];
        let mut dcs = [0i32; 16];
        for (b, c) in coeffs.iter_mut().enumerate() {
            *c = dsp::fdct(&self.residual(0, b));
            dcs[b] = c[0];
        }
        let y2 = dsp::fwht(&dcs);
        let mut y2_deq = [0i32; 16];
        for i in 0..16 {
            self.y2[i] = quantize(y2[i], steps.y2[(i > 0) as usize], true);
            y2_deq[i] = self.y2[i] * steps.y2[(i > 0) as usize];
        }
        let dc_back = dsp::iwht(&y2_deq);
        for (b, c) in coeffs.iter().enumerate() {
            let mut deq = [0i32; 16];
            for i in 1..16 {
                self.levels[0][b][i] = quantize(c[i], steps.y[1], false);
                deq[i] = self.levels[0][b][i] * steps.y[1];
            }
            deq[0] = dc_back[b];
            self.rebuild(0, b, &deq);
        }
        for p in 1..3 {
            for b in 0..4 {
                let c = dsp::fdct(&self.residual(p, b));
                let mut deq = [0i32; 16];
                for i in 0..16 {
                    self.levels[p][b][i] = quantize(c[i], steps.uv[(i > 0) as usize], i == 0);
                    deq[i] = self.levels[p][b][i] * steps.uv[(i > 0) as usize];
                }
                self.rebuild(p, b, &deq);
            }
        }
    }

    /// Block `b`'s (raster order of 4x4 blocks) source minus prediction in plane `p`.
    fn residual(&self, p: usize, b: usize) -> [i32; 16] {
        let n = if p == 0 { 16 } else { 8 };
        let at = (b / (n / 4)) * 4 * n + (b % (n / 4)) * 4;
        std::array::from_fn(|i| {
            let o = at + (i / 4) * n + i % 4;
            self.src[p][o] as i32 - self.pred[p][o] as i32
        })
    }

    /// Block `b` of plane `p` rebuilt from its dequantized coefficients, as the decoder does.
    fn rebuild(&mut self, p: usize, b: usize, deq: &[i32; 16]) {
        let n = if p == 0 { 16 } else { 8 };
        let at = (b / (n / 4)) * 4 * n + (b % (n / 4)) * 4;
        dsp::idct_add(deq, &self.pred[p][at..], &mut self.recon[p][at..], n);
    }
}

/// Codes one block's levels (raster order) from position `first` of the zigzag order, with
/// token probabilities of block type `ty` in context `ctx`; returns whether it had any.
pub(super) fn put_block<W: Write>(
    w: &mut BoolWriter<W>,
    ty: usize,
    ctx: usize,
    levels: &[i32; 16],
    first: usize,
) -> Result<bool> {
    let probs = &t::COEFF_PROBS[ty];
    let Some(last) = (first..16).rev().find(|&i| levels[t::ZIGZAG[i]] != 0) else {
        w.put(probs[t::BANDS[first]][ctx][0], false)?;
        return Ok(false);
    };
    let mut i = first;
    let mut p = &probs[t::BANDS[i]][ctx];
    w.put(p[0], true)?;
    loop {
        let v = levels[t::ZIGZAG[i]];
        let a = v.unsigned_abs();
        w.put(p[1], a != 0)?;
        i += 1;
        if a == 0 {
            p = &probs[t::BANDS[i]][0];
            continue;
        }
        put_magnitude(w, p, a)?;
        w.put(128, v < 0)?;
        if i == 16 {
            return Ok(true);
        }
        p = &probs[t::BANDS[i]][if a == 1 { 1 } else { 2 }];
        w.put(p[0], i <= last)?;
        if i > last {
            return Ok(true);
        }
    }
}

/// A nonzero level's size `a` through the token tree's nodes 2-10 and its category's bits.
fn put_magnitude<W: Write>(w: &mut BoolWriter<W>, p: &[u8; 11], a: u32) -> Result<()> {
    w.put(p[2], a > 1)?;
    if a == 1 {
        return Ok(());
    }
    w.put(p[3], a > 4)?;
    if a <= 4 {
        w.put(p[4], a > 2)?;
        return if a > 2 { w.put(p[5], a == 4) } else { Ok(()) };
    }
    w.put(p[6], a > 10)?;
    let cat = match a {
        5..=6 => 0,
        7..=10 => 1,
        11..=18 => 2,
        19..=34 => 3,
        35..=66 => 4,
        _ => 5,
    };
    if cat < 2 {
        w.put(p[7], cat == 1)?;
    } else {
        w.put(p[8], cat >= 4)?;
        w.put(p[9 + (cat >= 4) as usize], cat % 2 == 1)?;
    }
    let (extra, bits) = (a - t::CAT_BASE[cat] as u32, t::CAT_PROBS[cat]);
    for (k, &prob) in bits.iter().enumerate() {
        w.put(prob, (extra >> (bits.len() - 1 - k)) & 1 == 1)?;
    }
    Ok(())
}
