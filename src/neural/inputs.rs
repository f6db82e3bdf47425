//! Constant input maps: models that take, beside the image, channels that are the same at
//! every pixel — SRMD's degradation maps (15 values: the PCA projection of the blur kernel it
//! undoes) and, for `srmd_x*` (not the noise-free `srmdnf_x*`), the noise level to remove as a
//! 16th (`--noise N`, 0-10; N/255).
//!
//! A constant channel `j` with value `v_j` adds `Σ_j v_j Σ_taps w[o][j][tap]` to output channel
//! `o` of the first convolution wherever all the taps fall inside the (extended) image, so it
//! is folded into that convolution's bias and the network reads three channels like every
//! other. Where a tap falls on the convolution's zero padding the fold differs from feeding the
//! maps, but that padding lies at the extended border, which the model's receptive radius
//! keeps out of every output pixel (the border is extended by the radius, `Replicate(halo)`,
//! as srmd-ncnn-vulkan extends by 12 px).

use super::graph::{Graph, Op};

/// SRMD's degradation maps for its default (bicubic) degradation, as srmd-ncnn-vulkan feeds
/// them (`srmd_preproc.comp`), written as there (digits beyond f32's are rounded alike).
#[allow(clippy::excessive_precision)]
const SRMD_DEGRADATION: [f32; 15] = [
    -1.123_609_56e-8,
    -1.368_991_59e-8,
    1.856_379_58e-2,
    2.860_668_86e-8,
    3.352_929_65e-2,
    8.372_729_35e-8,
    -2.544_240_09e-7,
    -3.162_349_76e-2,
    -1.351_692_53e-2,
    -1.104_660_9e-8,
    3.847_537_93e-2,
    3.794_657_39e-8,
    -2.449_167_52e-1,
    -8.022_134_9e-1,
    -5.405_497_55e-1,
];

/// The noise level SRMD models use when none is given (srmd-ncnn-vulkan's default).
pub(crate) const DEFAULT_NOISE: u32 = 3;
/// The highest noise level SRMD was trained for.
pub(crate) const MAX_NOISE: u32 = 10;

/// What a model's constant inputs are, if it has any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConstantMaps {
    /// SRMD's 15 degradation maps (the noise-free `srmdnf` models).
    Degradation,
    /// SRMD's degradation maps and a noise level.
    DegradationAndNoise,
}

impl Graph {
    /// The constant input maps the network takes beside the image, if any (see the module
    /// docs); `Err` for a count no known model has.
    pub(crate) fn constant_maps(&self) -> Result<Option<ConstantMaps>, String> {
        let first = self.nodes.iter().find_map(|n| match &n.op {
            Op::Conv(c) => c.constant_inputs.as_ref().map(|k| k.channels),
            _ => None,
        });
        match first {
            None => Ok(None),
            Some(15) => Ok(Some(ConstantMaps::Degradation)),
            Some(16) => Ok(Some(ConstantMaps::DegradationAndNoise)),
            Some(n) => Err(format!(
                "the first convolution reads {} input channels; besides the image's 3, only SRMD's 15 degradation \
                 maps (and a noise level) are known",
                n + 3
            )),
        }
    }

    /// Folds the constant maps' values (SRMD's degradation, then `noise` / 255 if the model
    /// takes it) into the first convolution's bias.
    pub(crate) fn fold_constant_inputs(&mut self, noise: u32) {
        let mut values = SRMD_DEGRADATION.to_vec();
        values.push(noise as f32 / 255.0);
        for n in &mut self.nodes {
            let Op::Conv(c) = &mut n.op else { continue };
            let Some(k) = &c.constant_inputs else { continue };
            let taps = c.kernel * c.kernel;
            for (o, b) in c.bias.iter_mut().enumerate() {
                let w = &k.weights[o * k.channels * taps..(o + 1) * k.channels * taps];
                let add: f64 = w
                    .chunks_exact(taps)
                    .zip(&values)
                    .map(|(t, &v)| t.iter().map(|&x| x as f64).sum::<f64>() * v as f64)
                    .sum();
                *b = (k.bias[o] as f64 + add) as f32;
            }
        }
    }
}
