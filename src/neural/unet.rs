//! The layers Real-CUGAN's U-Nets add to the zoo's: crops of skip connections, and
//! squeeze-and-excitation (SE) blocks — a global average of a blob over the whole image, two
//! small fully connected layers, and a per-channel multiplier of the block's input.
//!
//! A SE block's multipliers depend on the whole image, so a tiled run cannot compute them
//! inside a tile: the stage first sums the averaged blob over the whole image, tile by tile
//! (each blob pixel counted by exactly one tile: [`owned_range`]), in integers, so the sums —
//! and the multipliers — are the same for every tile size (`se_pass.rs`). A run over the whole
//! image computes them on the spot, as ncnn does on a single tile.

use super::param::LayerLine;
use super::weights::WeightReader;

/// An activation of a fully connected layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FcAct {
    None,
    /// `max(x, 0) + slope · min(x, 0)`.
    Leaky(f32),
    Sigmoid,
}

/// A fully connected layer (ncnn's `InnerProduct`) on a vector of channel values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fc {
    pub cin: usize,
    pub cout: usize,
    /// `[out][in]`.
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub act: FcAct,
}

/// A squeeze-and-excitation block: the channel means of blob `pooled` (over the whole image)
/// go through `layers`, and the result multiplies the block's input, channel by channel.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Se {
    pub pooled: usize,
    pub layers: Vec<Fc>,
}

impl Se {
    /// The per-channel multipliers for channel means `means`, in f64 (the float reference and
    /// the exact engine share them: the exact engine's means are exact sums of its integers).
    pub(crate) fn multipliers(&self, means: &[f64]) -> Vec<f32> {
        let mut v = means.to_vec();
        for fc in &self.layers {
            v = (0..fc.cout)
                .map(|o| {
                    let w = &fc.weights[o * fc.cin..(o + 1) * fc.cin];
                    let x = w.iter().zip(&v).map(|(&w, &x)| w as f64 * x).sum::<f64>() + fc.bias[o] as f64;
                    match fc.act {
                        FcAct::None => x,
                        FcAct::Leaky(s) => {
                            if x < 0.0 {
                                x * s as f64
                            } else {
                                x
                            }
                        }
                        FcAct::Sigmoid => 1.0 / (1.0 + (-x).exp()),
                    }
                })
                .collect();
        }
        v.into_iter().map(|x| x as f32).collect()
    }

    /// The multipliers for channel sums `sums` over `count` pixels (the whole image's).
    pub(crate) fn multipliers_of_sums(&self, sums: &[f64], count: usize) -> Vec<f32> {
        let n = count.max(1) as f64;
        self.multipliers(&sums.iter().map(|s| s / n).collect::<Vec<_>>())
    }
}

/// A `Crop` layer's amounts `[left, top, right, bottom]`, for the form Real-CUGAN uses: start
/// offsets and end offsets counted from the end, on the height and width axes.
pub(crate) fn crop(l: &LayerLine) -> Result<[usize; 4], String> {
    l.only(&[9, 10, 11])?;
    let err = |m: &str| format!("line {}: Crop {}: {m}", l.line, l.name);
    let (starts, ends, axes) = (l.array(9)?, l.array(10)?, l.array(11)?);
    if starts.len() != axes.len() || ends.len() != axes.len() || axes.is_empty() {
        return Err(err("only crops given by starts, ends and axes of one length are supported"));
    }
    let mut out = [0usize; 4];
    for ((&s, &e), &a) in starts.iter().zip(&ends).zip(&axes) {
        let (lo, hi) = match a as i64 {
            -1 | 2 => (0, 2),
            -2 | 1 => (1, 3),
            _ => return Err(err(&format!("cropping axis {a} (only height and width) is not supported"))),
        };
        if !(0.0..=4096.0).contains(&s) || !(-4096.0..0.0).contains(&e) {
            return Err(err(&format!(
                "start {s} and end {e}: only a start of 0 or more and an end before the last pixel"
            )));
        }
        out[lo] = s as usize;
        out[hi] = (-e) as usize;
    }
    Ok(out)
}

/// Checks that a `Pooling` layer is a global average (what SE blocks use).
pub(crate) fn global_average(l: &LayerLine) -> Result<(), String> {
    l.only(&[0, 4])?;
    if l.int(0, 0)? != 1 || l.int(4, 0)? != 1 {
        return Err(format!("line {}: Pooling {}: only global average pooling is supported", l.line, l.name));
    }
    Ok(())
}

/// An `InnerProduct` layer of `cin` inputs, its weights read from `w`.
pub(crate) fn inner_product(l: &LayerLine, cin: usize, w: &mut WeightReader) -> Result<Fc, String> {
    l.only(&[0, 1, 2, 9, 10])?;
    let err = |m: String| format!("line {}: InnerProduct {}: {m}", l.line, l.name);
    let cout = l.int(0, 0)?;
    if !(1..=4096).contains(&cout) || l.int(2, 0)? != cout * cin as i64 {
        return Err(err(format!("{cout} outputs of {cin} inputs, weight_data_size {}", l.int(2, 0)?)));
    }
    let cout = cout as usize;
    let act = match (l.int(9, 0)?, l.array(10)?.as_slice()) {
        (0, []) => FcAct::None,
        (1, []) => FcAct::Leaky(0.0),
        (2, [s]) => FcAct::Leaky(*s as f32),
        (4, []) => FcAct::Sigmoid,
        (a, p) => return Err(err(format!("activation {a} with parameters {p:?} is not supported"))),
    };
    let weights = w.tagged(cout * cin, &l.name)?;
    let bias = if l.int(1, 0)? != 0 { w.raw(cout, &format!("{} bias", l.name))? } else { vec![0.0; cout] };
    Ok(Fc { cin, cout, weights, bias, act })
}

/// A deconvolution's kernel `k` widened with zero taps to a multiple of its stride (Real-CUGAN's
/// 5x5 of stride 3), the extra outputs cropped on the right and bottom: the same values, in a
/// form the phase convolution takes (`phases.rs`).
pub(crate) fn widen_deconv(
    w: Vec<f32>,
    cout: usize,
    cin: usize,
    k: usize,
    s: usize,
    pad: [usize; 4],
) -> (Vec<f32>, usize, [usize; 4]) {
    let k2 = k.div_ceil(s) * s;
    if k2 == k {
        return (w, k, pad);
    }
    let mut out = vec![0f32; cout * cin * k2 * k2];
    for (i, taps) in w.chunks_exact(k * k).enumerate() {
        for (ky, row) in taps.chunks_exact(k).enumerate() {
            out[(i * k2 + ky) * k2..][..k].copy_from_slice(row);
        }
    }
    (out, k2, [pad[0], pad[1], pad[2] + k2 - k, pad[3] + k2 - k])
}

/// Where a blob lies against the image, along one axis: the blob has `num / den` pixels per
/// padded input pixel and `len` pixels in all; the padded input has `padded` pixels, `pad`
/// of them before the image; the output has `scale` pixels per image pixel. The blob is
/// centred on the padded input (its networks shrink both sides alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AxisPlace {
    pub num: usize,
    pub den: usize,
    pub len: usize,
    pub padded: usize,
    pub pad: usize,
    pub scale: usize,
}

impl AxisPlace {
    /// The first blob pixel whose centre lies at or after output pixel `x`'s left edge.
    fn first_at(&self, x: usize) -> usize {
        let (num, den, s) = (self.num as i128, self.den as i128, self.scale as i128);
        let r =
            2 * num * x as i128 - (self.padded as i128 * num - self.len as i128 * den - 2 * self.pad as i128 * num) * s;
        let d = 2 * den * s;
        let b = (r - den * s + d - 1).div_euclid(d);
        b.clamp(0, self.len as i128) as usize
    }
}

/// The blob pixels `[start, end)` a tile spanning output pixels `[x0, x1)` of `n` owns: those
/// whose centres fall in its span, the blob's margins going to the first and last tiles. The
/// tiles of a row of tiles own every pixel once.
pub(crate) fn owned_range(place: AxisPlace, x0: usize, x1: usize, n: usize) -> (usize, usize) {
    let start = if x0 == 0 { 0 } else { place.first_at(x0) };
    let end = if x1 >= n { place.len } else { place.first_at(x1) };
    (start, end.max(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_own_every_blob_pixel_once() {
        // A blob at half the input's resolution, shrunk by 9 input pixels on each side of an
        // input padded by 18 (+1 on the right), under a 2x output.
        let place = AxisPlace { num: 1, den: 2, len: (101 + 37 - 18) / 2, padded: 101 + 37, pad: 18, scale: 2 };
        for t in [1, 3, 16, 50, 202] {
            let mut next = 0;
            for x in (0..202).step_by(t) {
                let (a, b) = owned_range(place, x, (x + t).min(202), 202);
                assert_eq!(a, next, "tile {t} at {x}");
                next = b;
            }
            assert_eq!(next, place.len);
        }
        // Output pixel 0's left edge is padded input 18, blob pixel 4's centre (9 + 4.5 · 2).
        assert_eq!((place.first_at(0), place.first_at(1)), (4, 5));
        let fc = Fc { cin: 2, cout: 1, weights: vec![1.0, -2.0], bias: vec![0.5], act: FcAct::Sigmoid };
        let se = Se { pooled: 0, layers: vec![fc] };
        assert_eq!(se.multipliers(&[1.5, 1.0]), vec![0.5]);
    }
}
