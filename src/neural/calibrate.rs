//! Choosing each blob's exponent ([`Exact::calibration_and_probes`]): float runs of the network on a
//! synthetic calibration image, whose extremes (full-contrast colour edges, flat corners of the
//! colour cube) give a blob the range a photograph's brightest, most saturated parts need,
//! and on four photographic test images (also the fidelity screen's, `fidelity.rs`), which
//! bound that range: a network driven far past photographs by the calibration image
//! (Real-CUGAN models-pro) would otherwise leave a photograph's values no bits.

use super::elementwise::Map;
use super::exact::Exact;
use super::graph::{Act, Conv, Graph, Op, Resize};
use super::reference::{self, conv_with, deconv_with, Engine, Float, Tensor, Window};
use super::unet::Se;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// The float reference, also keeping per output channel of each activated convolution the
/// largest magnitude its sums reach before the activation (a leaky layer's negative sums are
/// 1/slope times its output, a ReLU's unbounded by it): the 24-bit engine's sums must hold
/// those (`exact::quantise`).
struct PreActivationPeaks {
    /// Per node, per output channel (none for a node other than an activated convolution),
    /// the bits of the largest magnitude (non-negative floats order as their bits).
    peaks: Vec<Vec<AtomicU32>>,
}

impl PreActivationPeaks {
    fn new(g: &Graph) -> Self {
        let channels = |op: &Op| op.activated().map_or(0, |c| c.cout);
        PreActivationPeaks {
            peaks: g.nodes.iter().map(|n| (0..channels(&n.op)).map(|_| AtomicU32::new(0)).collect()).collect(),
        }
    }

    /// The peaks found, node after node, channel after channel ([`Graph::activated_channels`]).
    fn peaks(&self) -> Vec<f32> {
        self.peaks.iter().flatten().map(|p| f32::from_bits(p.load(Relaxed))).collect()
    }
}

impl Engine<f32> for PreActivationPeaks {
    fn conv(&self, n: usize, c: &Conv, x: &Tensor) -> Result<Tensor, String> {
        let peaks = &self.peaks[n];
        if peaks.len() != c.cout {
            return Float.conv(n, c, x);
        }
        let finish = |p: usize, a: f32| {
            // (A plain load first: most sums are not a new peak, and the atomic update is a
            // compare-and-swap loop.)
            let bits = a.abs().to_bits();
            if a.is_finite() && bits > peaks[p].load(Relaxed) {
                peaks[p].fetch_max(bits, Relaxed);
            }
            reference::activate(&c.act, p, a)
        };
        let mac = |a: f32, wi: usize, v: f32| a + c.weights[wi] * v;
        if c.transposed {
            deconv_with(c, x, |_| 0f32, mac, |p, a| finish(p, a + c.bias[p]))
        } else {
            conv_with(c, x, |p| c.bias[p], mac, finish)
        }
    }
    fn act(&self, n: usize, a: &Act, x: Tensor) -> Tensor {
        Float.act(n, a, x)
    }
    fn sum(&self, n: usize, coeffs: &[f32], xs: &[&Tensor], win: Window, ins: &[usize], out: usize) -> Tensor {
        Float.sum(n, coeffs, xs, win, ins, out)
    }
    fn affine(&self, n: usize, mul: &[f32], add: &[f32], x: Tensor, inp: usize, out: usize) -> Tensor {
        Float.affine(n, mul, add, x, inp, out)
    }
    fn map(&self, n: usize, m: &Map, x: Tensor, inp: usize, out: usize) -> Tensor {
        Float.map(n, m, x, inp, out)
    }
    fn product(&self, xs: &[&Tensor], win: Window, ins: &[usize], out: usize) -> Tensor {
        Float.product(xs, win, ins, out)
    }
    fn concat(&self, xs: &[&Tensor], win: Window, ins: &[usize], out: usize) -> Tensor {
        Float.concat(xs, win, ins, out)
    }
    fn resize(&self, r: &Resize, x: &Tensor, inp: usize, out: usize) -> Result<Tensor, String> {
        Float.resize(r, x, inp, out)
    }
    fn scale(&self, mul: &[f32], x: Tensor, inp: usize, out: usize) -> Tensor {
        Float.scale(mul, x, inp, out)
    }
    fn channel_sums(&self, x: &Tensor, win: Window, b: usize) -> Vec<f64> {
        Float.channel_sums(x, win, b)
    }
}

/// A deterministic calibration image, `n x n`, in four quadrants that span what photographs
/// hold: gradients with edges and noise; full-contrast colour edges (0 against 1); flat
/// patches of the eight corners of the colour cube; and ramps over the whole range. (A deep
/// network's activations on bright, flat or saturated regions can be several times those on
/// mid-grey texture; without them, realesrgan-x4plus saturated blobs on a real photo.)
fn calibration_image(n: usize) -> Tensor {
    let mut t = Tensor::zeros(3, n, n);
    let mut rng = crate::digest::Lcg(0x2545_f491_4f6c_dd1d);
    let half = (n / 2).max(1);
    for c in 0..3 {
        for y in 0..n {
            for x in 0..n {
                let noise = (rng.next() >> 40) as f32 / (1u64 << 24) as f32;
                let (u, v) = (x % half, y % half);
                let value = match (x / half, y / half) {
                    (0, 0) => {
                        let edge = if (x / 5 + y / 7 + c) % 2 == 0 { 0.4 } else { 0.0 };
                        (x + y * c) as f32 / (2 * n) as f32 * 0.5 + edge + noise * 0.1
                    }
                    (1, 0) => ((u / 2 + v / 2 + c) % 2) as f32,
                    (0, _) => ((((u * 4 / half) + (v * 2 / half) * 4) >> c) & 1) as f32,
                    _ => ((u + v + c * 3) % (2 * half)) as f32 / (2 * half - 1) as f32,
                };
                t.data[(c * n + y) * n + x] = value.clamp(0.0, 1.0);
            }
        }
    }
    t
}

/// How far past the largest value the photographic test images reach a blob's range may go:
/// 16x (4 bits). The calibration image's extremes (2 px full-contrast checkerboards, flat
/// corners of the colour cube) drive some networks' blobs 10^5 times past what photographs
/// reach (Real-CUGAN models-pro: a blob at 2^21 on it and under 20 on photographs), and a
/// range that wide leaves a photograph's values no bits (models-pro was 200-255 levels off
/// ncnn; with this room, within 1 at 24 bits: docs/neural.md).
const PHOTO_ROOM: f32 = 16.0;

/// What the fidelity screen's four photographic test images ([`photographic_image`]) give, each
/// run as one image with its own SE multipliers: per blob, the largest magnitude; per SE
/// block, the largest multiplier per channel; after the blobs' (in the calibration's order),
/// the largest magnitude of each activated convolution's sums before the activation. The
/// multipliers depend on the whole image, and on the calibration image they are near 0
/// (models-pro: every multiplier of the last block), which would leave the blobs after a
/// block too small a range for a photograph's;
/// the calibration runs its image once more with these. Also the network's outputs on them,
/// which the fidelity measure compares the exact engine's with ([`Exact::calibration_and_probes`]).
fn photographic_runs(g: &Graph, n: usize) -> Result<(Vec<f32>, reference::SeScales, Vec<Tensor>), String> {
    use rayon::prelude::*;
    let blocks: std::collections::HashMap<usize, &Se> =
        g.nodes.iter().filter_map(|nd| if let Op::Se(se) = &nd.op { Some((se.pooled, se)) } else { None }).collect();
    let each = |kind: usize| {
        let (mut peak, mut scales) = (vec![0f32; g.blobs], reference::SeScales::new());
        let image = photographic_tensor(&photographic_image(kind, n), n);
        let pre = PreActivationPeaks::new(g);
        let output = reference::run_with(g, &pre, image, &mut |b, t| {
            peak[b] = t.data.iter().fold(peak[b], |m, v| m.max(v.abs()));
            if let Some(se) = blocks.get(&b) {
                let sums = reference::sums_with(t, (0, 0, t.w, t.h), |v| v as f64);
                scales.insert(b, se.multipliers_of_sums(&sums, t.w * t.h));
            }
        })?;
        peak.extend(pre.peaks());
        Ok((peak, scales, output))
    };
    let runs: Vec<(Vec<f32>, reference::SeScales, Tensor)> =
        (0..4).into_par_iter().map(each).collect::<Result<_, String>>()?;
    let mut out = (vec![0f32; g.blobs + g.activated_channels()], reference::SeScales::new(), Vec::with_capacity(4));
    for (peak, scales, output) in runs {
        out.2.push(output);
        out.0.iter_mut().zip(peak).for_each(|(o, p)| *o = o.max(p));
        for (b, mul) in scales {
            let kept = out.1.entry(b).or_insert_with(|| vec![0.0; mul.len()]);
            kept.iter_mut().zip(mul).for_each(|(k, m)| *k = k.max(m));
        }
    }
    Ok(out)
}

/// Bits of room an activated convolution's sums keep beyond what their channel reaches on the
/// calibration and test images (`exponent_for`'s two to four times, twice over): one
/// channel's peak is a narrower sample than a blob's (the largest of its channels), and past
/// the room the 24-bit engine's sums wrap. Without it models-nose/up2x-no-denoise at 24 bits
/// was 227 levels from ncnn on a diagram; with it, 6 (the 16-bit engine's figure); bounding each
/// channel by its blob's sums instead cost models-se/up4x-no-denoise a level on photo crops.
const SUMS_ROOM_BITS: i32 = 1;

/// The magnitude a blob's range must hold, from its largest on the calibration image `c` and
/// on the photographic test images `p`: the larger, but at most [`PHOTO_ROOM`] times `p`
/// (where photographs reach it at all).
fn blob_range(c: f32, p: f32) -> f32 {
    if p > 0.0 {
        c.max(p).min(p * PHOTO_ROOM)
    } else {
        c
    }
}

/// The exponent that places a blob's largest magnitude `peak` in (2^13, 2^14], so that two to
/// four times it fits 16 bits.
fn exponent_for(peak: f32) -> i32 {
    ((16384.0 / (peak.max(1e-6) as f64)).log2().floor() as i32).clamp(-8, 24)
}

/// The edge of the square images that calibrate a network and measure its fidelity: 32 px,
/// or where the network has no padding and shrinks by its halo (Real-CUGAN's), large enough
/// to leave 32 px of output (a multiple of 4, for its strided layers).
pub(crate) fn probe_edge(g: &Graph) -> usize {
    if g.pads() || 2 * g.halo + 8 <= 32 {
        32
    } else {
        (32 + 2 * g.halo + 2).next_multiple_of(4)
    }
}

/// The photographic test images (of [`super::Model::fidelity`] and the calibration's room),
/// `n x n` 8-bit RGB, each of one kind of what photographs hold (`kind` 0-3), since 16-bit
/// activations lose most where a whole image is dark or saturated: mid-tones (smooth colour
/// gradients, a soft diagonal edge, fine noise); shadows (the same, darker than 1/6 of the
/// range); saturated colours (one channel high, one low, one between, in soft-edged patches);
/// bright, busy texture (2 px blocks of random light values).
/// realesrgan-x4plus is within 2 levels on the mid-tones and 6-8 levels from ncnn on dark and
/// saturated photo crops (docs/results/2026-12-05-dev-x4plus-precision-probe.txt).
pub(super) fn photographic_image(kind: usize, n: usize) -> Vec<u8> {
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

/// An `n x n` 8-bit RGB image as the float network's input (planes of 0..1).
pub(super) fn photographic_tensor(rgb: &[u8], n: usize) -> reference::Tensor {
    let mut f = reference::Tensor::zeros(3, n, n);
    for (i, &v) in rgb.iter().enumerate() {
        f.data[(i % 3) * n * n + i / 3] = v as f32 / 255.0;
    }
    f
}

impl Exact {
    /// Chooses every blob's exponent ([`Exact::calibration`]) and rounds the weights, for
    /// activations of 24 bits (`wide`) or 16.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn calibrate(g: &Graph, wide: bool) -> Result<Exact, String> {
        Exact::with_calibration(g, &Exact::calibration(g)?, wide)
    }

    /// Per blob, the exponent its range asks for (used for the outputs of convolutions, sums
    /// and affine layers): the largest magnitude of float runs of the network on a fixed
    /// 32 px synthetic image (also with photographs' SE multipliers, where it has SE blocks),
    /// but at most [`PHOTO_ROOM`] times what the four photographic test images reach.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn calibration(g: &Graph) -> Result<Vec<i32>, String> {
        Exact::calibration_and_probes(g).map(|(c, _)| c)
    }

    /// [`Exact::calibration`], and the float network's outputs on the four photographic test
    /// images it ran (`probe_edge` square, in [`photographic_image`]'s order).
    ///
    /// The calibration holds the exponent of each blob's values, then, per output channel of
    /// each activated convolution (node after node), the one its sums before the activation
    /// would take (at most its blob's), which bounds how fine that channel's weights may be at
    /// 24 bits (`exact::quantise`).
    pub(crate) fn calibration_and_probes(g: &Graph) -> Result<(Vec<i32>, Vec<Tensor>), String> {
        let mut peak = vec![0f32; g.blobs];
        let n = probe_edge(g);
        let mut seen = |b: usize, t: &Tensor| peak[b] = t.data.iter().fold(peak[b], |m, v| m.max(v.abs()));
        let pre = PreActivationPeaks::new(g);
        reference::run_with(g, &pre, calibration_image(n), &mut seen)?;
        let (photo, scales, probes) = photographic_runs(g, n)?;
        if !scales.is_empty() {
            reference::run_until(g, &pre, calibration_image(n), &scales, g.output, &mut seen)?;
        }
        let mut calibration: Vec<i32> =
            peak.iter().zip(&photo).map(|(&c, &p)| exponent_for(blob_range(c, p))).collect();
        let blob_of_channel = g.nodes.iter().filter_map(|nd| Some((nd.op.activated()?.cout, nd.outputs[0])));
        let blob_of_channel: Vec<usize> = blob_of_channel.flat_map(|(c, b)| std::iter::repeat_n(b, c)).collect();
        let sums = pre.peaks().into_iter().zip(&photo[g.blobs..]).zip(blob_of_channel);
        let sums: Vec<i32> =
            sums.map(|((c, &p), b)| (exponent_for(blob_range(c, p)) - SUMS_ROOM_BITS).min(calibration[b])).collect();
        calibration.extend(sums);
        Ok((calibration, probes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The outputs the calibration keeps for the fidelity measure are the float network's on
    /// the four test images, in their order (what the measure computed itself before).
    #[test]
    fn the_calibration_keeps_the_test_images_float_outputs() {
        let m = crate::neural::Model::builtin("photo").unwrap();
        let g = &m.graph;
        let (calibration, probes) = Exact::calibration_and_probes(g).unwrap();
        assert_eq!(calibration.len(), g.blobs + g.activated_channels());
        // Each activated convolution's channels' sums take at most their blob's exponent, and
        // upconv_7's leaky layers (slope 0.1) push some below it.
        let mut sums = calibration[g.blobs..].iter();
        let mut below = 0;
        for nd in &g.nodes {
            for &e in sums.by_ref().take(nd.op.activated().map_or(0, |c| c.cout)) {
                assert!(e <= calibration[nd.outputs[0]], "{}", nd.name);
                below += usize::from(e < calibration[nd.outputs[0]]);
            }
        }
        assert!(below > 0);
        let n = probe_edge(g);
        assert_eq!(probes.len(), 4);
        for (kind, kept) in probes.iter().enumerate() {
            let image = photographic_tensor(&photographic_image(kind, n), n);
            let fresh = reference::run_with(g, &reference::Float, image, &mut |_, _| {}).unwrap();
            assert_eq!((kept.c, kept.w, kept.h), (fresh.c, fresh.w, fresh.h));
            assert!(kept.data == fresh.data, "test image {kind}");
        }
    }

    #[test]
    fn a_blob_gets_the_range_photographs_need_with_room() {
        // Real-CUGAN models-pro: 2^21 on the calibration image, under 20 on photographs.
        assert_eq!(blob_range(2_097_152.0, 19.5), 19.5 * PHOTO_ROOM);
        assert_eq!(exponent_for(blob_range(2_097_152.0, 19.5)), 5);
        // Where photographs reach further than the calibration image, their peak counts.
        assert_eq!((blob_range(5.0, 10.0), blob_range(100.0, 10.0)), (10.0, 100.0));
        // A blob no photograph reaches keeps the calibration image's range.
        assert_eq!(blob_range(3.0, 0.0), 3.0);
        assert_eq!(
            (exponent_for(16384.0), exponent_for(16385.0), exponent_for(1e9), exponent_for(0.0)),
            (0, -1, -8, 24)
        );
    }
}
