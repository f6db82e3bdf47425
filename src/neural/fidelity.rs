//! How far a model's exact engine is from its float network ([`Model::fidelity`]): a screen
//! for the networks whose range 16-bit activations cannot hold, measured once per model file
//! and kept in the user's cache.

use super::calibrate::{photographic_image, photographic_tensor, probe_edge};
use super::{cache, reference, stage, Model};
use crate::error::{Error, Result};
use rayon::prelude::*;

/// The cache's name for [`Model::fidelity`]'s figures (a new name where the test image
/// changed), per activation width.
fn fidelity_key(m: &Model) -> &'static str {
    if m.activation_bits() == 24 {
        "fidelity5w"
    } else {
        "fidelity4q"
    }
}

/// A network whose 16-bit exact form loses its output — `out = 1000.5·x − 1000·x = 0.5·x`
/// through two 1x1 convolutions and a BinaryOp sub: 16-bit activations cannot hold both large
/// blobs and their small difference, 24-bit ones can — as its `.param` text and `.bin` bytes,
/// for the tests of the fidelity screen and of the width it fits.
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub fn cancelling_network() -> (&'static str, Vec<u8>) {
    let param = "7767517\n5 6\nInput data 0 1 data\nSplit sp 1 2 data d1 d2\n\
                 Convolution big 1 1 d1 a 0=3 1=1 5=1 6=9\nConvolution bigger 1 1 d2 b 0=3 1=1 5=1 6=9\n\
                 BinaryOp diff 2 1 b a out 0=1\n";
    let mut bin = Vec::new();
    for k in [1000.0f32, 1000.5] {
        bin.extend(0u32.to_le_bytes());
        (0..9).for_each(|i| bin.extend((if i % 4 == 0 { k } else { 0.0 }).to_le_bytes()));
        (0..3).for_each(|_| bin.extend(0f32.to_le_bytes()));
    }
    (param, bin)
}

/// The most levels from the float network on the test images at which a model file runs with
/// 16-bit activations by default ([`Model::with_fitting_activation_bits`]): ncnn's own. (At 2,
/// models-se/up3x-no-denoise was 3-5 LSB from ncnn on photo crops, 2026-12-05.)
const NARROW_ENOUGH: u32 = 1;

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

    /// This model at the activation width its fidelity asks for (what a job uses without
    /// `--activation-bits`): 16 bits where the 16-bit exact engine is within 1 level of the
    /// float network on the test images, as ncnn is (the built-in models, animevideov3,
    /// models-nose and three models-se files), else 24 (realesrgan-x4plus, Real-CUGAN
    /// models-pro and most of models-se, SPAN: within ncnn's bound on real photos only at 24
    /// bits — models-se/up3x-no-denoise, 2 levels on the test images at 16 bits, was 3-5 LSB
    /// from ncnn on three photo crops, docs/neural.md). Measures the 16-bit fidelity on a model
    /// file's first use (then kept in the cache).
    pub fn with_fitting_activation_bits(self) -> Result<Model> {
        if self.is_builtin() || self.wide {
            return Ok(self);
        }
        let narrow = self.fidelity()?;
        if Model::fitting_activation_bits(narrow) == 16 {
            return Ok(self);
        }
        let mut wide = self.with_activation_bits(24)?;
        wide.narrow_fidelity = Some(narrow);
        Ok(wide)
    }

    /// The activation width a model file runs at by default where its 16-bit form is
    /// `levels` from its float network ([`Model::fidelity`]): 16 within ncnn's own 1 level,
    /// else 24 ([`Model::with_fitting_activation_bits`]).
    pub fn fitting_activation_bits(levels: u32) -> u32 {
        if levels <= NARROW_ENOUGH {
            16
        } else {
            24
        }
    }

    /// Where [`Model::with_fitting_activation_bits`] chose 24 bits, the 16-bit fidelity
    /// (levels) that made it.
    pub fn narrow_fidelity(&self) -> Option<u32> {
        self.narrow_fidelity
    }

    /// For a refusal where [`Model::with_fitting_activation_bits`] chose 24 bits: what the
    /// 16-bit form would need (`least` of it, bytes), as a hint; else nothing.
    pub(crate) fn narrower(&self, least: impl Fn(&Model) -> u64) -> String {
        let Some(narrow) = self.narrow_fidelity.and_then(|_| self.clone().with_activation_bits(16).ok()) else {
            return String::new();
        };
        let size = crate::limits::format_size_up(least(&narrow));
        format!(", or --activation-bits 16 ({size}; further from the float network)")
    }

    /// Whether this is a built-in model (its calibration and fidelity are known and tested).
    pub(crate) fn is_builtin(&self) -> bool {
        self.calibration.is_some()
    }

    /// Whether [`Model::with_fitting_activation_bits`] measures this model (a model file not
    /// measured before, by this process or into the cache): the caller may say so first.
    pub fn measures_on_first_use(&self) -> bool {
        !self.is_builtin() && !self.wide && self.known_fidelity().is_none()
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
        let n = probe_edge(&self.graph);
        // A model file's first use calibrates here, which runs the float network on the test
        // images: its outputs are kept for the comparison (and for the other width's).
        let ex = self.exact()?;
        let floats = self.probe_outputs(n)?;
        let each: Vec<u32> = (0..4)
            .into_par_iter()
            .map(|kind| self.fidelity_on(&ex, &photographic_image(kind, n), n, &floats[kind]))
            .collect::<Result<_>>()?;
        Ok(each.into_iter().max().unwrap_or(0))
    }

    /// The float network's outputs on the four `n x n` test images: kept by the calibration
    /// or an earlier measure, else computed (and kept).
    fn probe_outputs(&self, n: usize) -> Result<std::sync::Arc<Vec<reference::Tensor>>> {
        if let Some(p) = self.probes.get() {
            return Ok(p.clone());
        }
        let internal = |e: String| Error::Internal(format!("model {}: {e}", self.name));
        let run = |kind: usize| {
            let f = photographic_tensor(&photographic_image(kind, n), n);
            reference::run_with(&self.graph, &reference::Float, f, &mut |_, _| {})
        };
        let outs =
            (0..4).into_par_iter().map(run).collect::<std::result::Result<Vec<_>, String>>().map_err(internal)?;
        Ok(self.probes.get_or_init(|| std::sync::Arc::new(outs)).clone())
    }

    /// The worst distance in 8-bit levels between the float network's output `fo` and the
    /// exact engine `ex`'s on an `n x n` RGB image (an error where the network leaves no
    /// output to compare).
    fn fidelity_on(&self, ex: &super::exact::Exact, rgb: &[u8], n: usize, fo: &reference::Tensor) -> Result<u32> {
        let mut q = reference::Tensor::<i16>::zeros(3, n, n);
        for (i, &v) in rgb.iter().enumerate() {
            q.data[(i % 3) * n * n + i / 3] = stage::to_fixed(v as u32, 255) as i16;
        }
        let internal = |e: String| Error::Internal(format!("model {}: {e}", self.name));
        let qo = ex.run_until(&self.graph, q, &Default::default(), self.graph.output).map_err(internal)?;
        let e = ex.exponent(self.graph.output);
        let worst = fo.data.iter().zip(&qo.data).map(|(&a, &b)| {
            let want = (a * 255.0 + 0.5).floor().clamp(0.0, 255.0) as u32;
            want.abs_diff(stage::from_fixed(b as i32, e, 255))
        });
        worst.max().ok_or_else(|| internal(format!("a {n}x{n} test image leaves no output to compare")))
    }
}
