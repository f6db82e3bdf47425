//! How far a model's exact engine is from its float network ([`Model::fidelity`]): a screen
//! for the networks whose range 16-bit activations cannot hold, measured once per model file
//! and kept in the user's cache.

use super::{cache, exact, reference, stage, Model};
use crate::error::{Error, Result};
use rayon::prelude::*;

/// [`Model::fidelity`]'s test images, `n x n` 8-bit RGB, each of one kind of what photographs
/// hold (`kind` 0-3), since 16-bit activations lose most where a whole image is dark or
/// saturated: mid-tones (smooth colour gradients, a soft diagonal edge, fine noise); shadows
/// (the same, darker than 1/6 of the range); saturated colours (one channel high, one low, one
/// between, in soft-edged patches); bright, busy texture (2 px blocks of random light values).
/// realesrgan-x4plus is within 2 levels on the mid-tones and 6-8 levels from ncnn on dark and
/// saturated photo crops (docs/results/2026-12-05-dev-x4plus-precision-probe.txt).
fn fidelity_image(kind: usize, n: usize) -> Vec<u8> {
    let mut rng = crate::digest::Lcg(0x6a09_e667_f3bc_c909);
    let mut noise = |amount: f64| ((rng.next() >> 40) as f64 / (1u64 << 24) as f64 - 0.5) * amount;
    let blocks: Vec<f64> = (0..n * n).map(|_| noise(1.0) + 0.5).collect();
    let half = (n / 2).max(1);
    let mut px = Vec::with_capacity(n * n * 3);
    for y in 0..n {
        for x in 0..n {
            let edge = 1.0 / (1.0 + (-((x as f64 - y as f64) * 0.8)).exp());
            let (u, v) = (x % half, y % half);
            for c in 0..3 {
                let ramp = (x * (c + 1) + y * (3 - c)) as f64 / (4 * n) as f64;
                let value = match kind {
                    0 => 40.0 + 120.0 * ramp + 70.0 * edge * (0.6 + 0.2 * c as f64) + noise(6.0),
                    1 => 3.0 + 25.0 * ramp + 12.0 * edge * (0.6 + 0.2 * c as f64) + noise(4.0),
                    2 => {
                        let hue = (u * 3 / half + (v * 2 / half) * 3 + c) % 3;
                        let soft = 1.0 / (1.0 + (-((u % 5) as f64 - 2.0)).exp());
                        [235.0, 12.0, 12.0 + 180.0 * soft][hue] + noise(8.0)
                    }
                    _ => 150.0 + 100.0 * blocks[(y / 2) * n + x / 2 + c] + noise(4.0),
                };
                px.push(value.round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    px
}

/// The cache's name for [`Model::fidelity`]'s figures (a new name where the test image
/// changed), per activation width.
fn fidelity_key(m: &Model) -> &'static str {
    if m.activation_bits() == 24 {
        "fidelity4w"
    } else {
        "fidelity4q"
    }
}

impl Model {
    /// How far the exact engine is from the network's float result, in 8-bit levels: the worst
    /// sample of four fixed test images of what photographs hold (mid-tones, shadows,
    /// saturated colours, bright texture; 32x32, or as large as the calibration's image for a
    /// network that shrinks by its halo), each image as one tile. ncnn's own results are
    /// within 1-2 levels of the float network; a model whose range 16-bit fixed point cannot
    /// hold (SPAN's, scaled by 255 inside; Real-CUGAN's models-pro) is far more. Measured once
    /// per model file and kept with its calibration.
    pub fn fidelity(&self) -> Result<u32> {
        if let Some(&v) = self.fidelity.get() {
            return Ok(v);
        }
        let kept = if self.calibration.is_none() { cache::load_number(fidelity_key(self), self.digest) } else { None };
        let v = match kept {
            Some(v) => v,
            None => {
                let v = self.measure_fidelity()?;
                if self.calibration.is_none() {
                    cache::store_number(fidelity_key(self), self.digest, v);
                }
                v
            }
        };
        Ok(*self.fidelity.get_or_init(|| v))
    }

    /// Whether this is a built-in model (its calibration and fidelity are known and tested).
    pub(crate) fn is_builtin(&self) -> bool {
        self.calibration.is_some()
    }

    /// [`Model::fidelity`] if it is known without measuring it (measured by this process, or
    /// kept in the cache by an earlier one); for listings that should not calibrate every
    /// model they show.
    pub fn known_fidelity(&self) -> Option<u32> {
        let kept = || if self.is_builtin() { None } else { cache::load_number(fidelity_key(self), self.digest) };
        self.fidelity.get().copied().or_else(kept)
    }

    /// [`Model::fidelity`] measured: the worst of the four kinds of test image, measured side
    /// by side (small images leave a deep network's layers too little work to spread).
    fn measure_fidelity(&self) -> Result<u32> {
        let n = exact::probe_edge(&self.graph);
        let each: Vec<u32> =
            (0..4).into_par_iter().map(|kind| self.fidelity_on(&fidelity_image(kind, n), n)).collect::<Result<_>>()?;
        Ok(each.into_iter().max().unwrap_or(0))
    }

    /// The worst distance in 8-bit levels between the float network and the exact engine on
    /// an `n x n` RGB image (an error where the network leaves no output to compare).
    fn fidelity_on(&self, rgb: &[u8], n: usize) -> Result<u32> {
        let ex = self.exact()?;
        let mut f = reference::Tensor::zeros(3, n, n);
        let mut q = reference::Tensor::<i16>::zeros(3, n, n);
        for (i, &v) in rgb.iter().enumerate() {
            let at = (i % 3) * n * n + i / 3;
            (f.data[at], q.data[at]) = (v as f32 / 255.0, stage::to_fixed(v as u32, 255) as i16);
        }
        let internal = |e: String| Error::Internal(format!("model {}: {e}", self.name));
        let fo = reference::run_with(&self.graph, &reference::Float, f, &mut |_, _| {}).map_err(internal)?;
        let qo = ex.run_until(&self.graph, q, &Default::default(), self.graph.output).map_err(internal)?;
        let e = ex.exponent(self.graph.output);
        let worst = fo.data.iter().zip(&qo.data).map(|(&a, &b)| {
            let want = (a * 255.0 + 0.5).floor().clamp(0.0, 255.0) as u32;
            want.abs_diff(stage::from_fixed(b as i32, e, 255))
        });
        worst.max().ok_or_else(|| internal(format!("a {n}x{n} test image leaves no output to compare")))
    }
}
