//! Restored faces pasted into output tiles: each output pixel is mapped into the face's
//! 512x512 template, where the restored face is sampled with the job's resampling filter and
//! blended over the tile by a soft mask computed from the pixel's position alone. No step
//! looks at a neighbouring tile, so every tile size, budget and thread count gives the same
//! bytes.
//!
//! - Output pixel `(X, Y)` is at image point `((X + ½)·w/W − ½, (Y + ½)·h/H − ½)` (centres
//!   at integer indices, as the alignment's), and at `q` in the template.
//! - The face's value there: the filter's weights at `|i − q|/s` over the template pixels `i`
//!   within its support times `s`, normalised, indices clamped to the edge; `s` is the
//!   template pixels per output pixel when above 1 (a face smaller in the output than 512 px
//!   is filtered, not aliased) and 1 otherwise (a larger face is enlarged by the filter).
//! - The mask: `d` = the distance from `q` to the template square's edge; `t = (d − 25)/50`
//!   clamped to 0-1, `m = t²(3 − 2t)` — facexlib's eroded, blurred mask as a function.
//! - The result, per colour channel: `round(m·face + (1 − m)·tile)`; grey outputs take the
//!   face's luma (0.299, 0.587, 0.114); 16-bit outputs the face times 257; alpha is kept.

use super::align::{Similarity, FACE_EDGE};
use crate::kernel::Filter;
use crate::pixel::{Channels, Depth, Layout};
use crate::plan::Rect;
use crate::{Error, Result};
use std::f64::consts::PI;
use std::sync::{Arc, Mutex};

/// Where the mask starts to rise, and how far it takes to reach 1, in template pixels.
const MASK_START: f64 = 25.0;
const MASK_RAMP: f64 = 50.0;

/// One restored face, ready to paste.
#[derive(Debug)]
pub(super) struct PlacedFace {
    /// Output pixel → template point.
    to_face: Similarity,
    /// Output pixels → image pixels, per axis.
    ratio: [f64; 2],
    /// The restored face, interleaved 8-bit RGB, 512x512; `None` once released (no tile
    /// still to compute reaches it).
    restored: Mutex<Option<Arc<Vec<u8>>>>,
    /// The output pixels the mask reaches: left, top, right, bottom (exclusive).
    reach: [u32; 4],
    /// Template pixels per output pixel (below 1: the face is larger than 512 px in the
    /// output).
    density: f64,
    /// The held face's pixels per template pixel: 1, or the model's factor once enlarged.
    zoom: f64,
    /// The held face's edge in pixels (512 times `zoom`).
    edge: usize,
}

impl PlacedFace {
    /// A face aligned by `align` (image → template) in an image of `input` size, whose
    /// output is `output` pixels.
    pub(super) fn new(align: Similarity, restored: Vec<u8>, input: (u32, u32), output: (u32, u32)) -> PlacedFace {
        let ratio = [input.0 as f64 / output.0 as f64, input.1 as f64 / output.1 as f64];
        let density = align.scale() * ratio[0].max(ratio[1]);
        let back = align.inverse();
        let corners = [[-0.5, -0.5], [FACE_EDGE as f64 - 0.5, -0.5], [-0.5, FACE_EDGE as f64 - 0.5]];
        let corners = [corners[0], corners[1], corners[2], [FACE_EDGE as f64 - 0.5; 2]];
        let (mut lo, mut hi) = ([f64::MAX; 2], [f64::MIN; 2]);
        for c in corners {
            let p = back.apply(c);
            for k in 0..2 {
                let o = (p[k] + 0.5) / ratio[k] - 0.5;
                lo[k] = lo[k].min(o);
                hi[k] = hi[k].max(o);
            }
        }
        let clampx = |v: f64, n: u32| v.clamp(0.0, n as f64) as u32;
        let reach = [
            clampx(lo[0].floor() - 1.0, output.0),
            clampx(lo[1].floor() - 1.0, output.1),
            clampx(hi[0].ceil() + 2.0, output.0),
            clampx(hi[1].ceil() + 2.0, output.1),
        ];
        let restored = Mutex::new(Some(Arc::new(restored)));
        PlacedFace { to_face: align, ratio, restored, reach, density, zoom: 1.0, edge: FACE_EDGE }
    }

    /// Whether the face is larger than the template in the output (fewer than one template
    /// pixel per output pixel): then a job with a model enlarges it by the model first.
    pub(super) fn is_large(&self) -> bool {
        self.density < 1.0
    }

    /// Replaces the held face by `face`, the same face enlarged `zoom` times (an integer
    /// factor: `512·zoom` pixels square, interleaved 8-bit RGB).
    pub(super) fn enlarged(&mut self, face: Vec<u8>, zoom: u32) {
        self.edge = FACE_EDGE * zoom as usize;
        self.zoom = zoom as f64;
        debug_assert_eq!(face.len(), self.edge * self.edge * 3);
        self.restored = Mutex::new(Some(Arc::new(face)));
    }

    /// The held face (interleaved 8-bit RGB), while held.
    pub(super) fn pixels(&self) -> Option<Arc<Vec<u8>>> {
        self.held()
    }

    /// The output pixels this face may change: left, top, right, bottom (exclusive).
    pub(super) fn reach(&self) -> [u32; 4] {
        self.reach
    }

    /// Bytes held.
    pub(super) fn bytes(&self) -> usize {
        self.held().map_or(0, |f| f.len())
    }

    /// The restored face, while it is held.
    fn held(&self) -> Option<Arc<Vec<u8>>> {
        self.restored.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Lets the restored face go (once no tile still to compute reaches it).
    pub(super) fn release(&self) {
        self.restored.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// The template point of output pixel `(x, y)`.
    fn template_point(&self, x: u32, y: u32) -> [f64; 2] {
        let u = (x as f64 + 0.5) * self.ratio[0] - 0.5;
        let v = (y as f64 + 0.5) * self.ratio[1] - 0.5;
        self.to_face.apply([u, v])
    }

    /// Pastes the face into a tile buffer: `out` holds the output pixels of `rect`, rows
    /// `stride` bytes apart, in `layout`. Fails if the face was released before a tile it
    /// reaches (a planning error, never silently skipped).
    pub(super) fn paste(
        &self,
        filter: Filter,
        layout: Layout,
        rect: Rect,
        stride: usize,
        out: &mut [u8],
    ) -> Result<()> {
        let [x0, y0, x1, y1] = self.reach;
        let (ax, ay) = (rect.x.max(x0), rect.y.max(y0));
        let (bx, by) = ((rect.x + rect.w).min(x1), (rect.y + rect.h).min(y1));
        if ax >= bx || ay >= by {
            return Ok(());
        }
        let Some(face) = self.held() else {
            return Err(Error::Internal(format!("a restored face was released before output row {ay}")));
        };
        let ch = layout.channels.count();
        let mut taps = Taps::default();
        for y in ay..by {
            let row = &mut out[(y - rect.y) as usize * stride..];
            for x in ax..bx {
                let q = self.template_point(x, y);
                let m = mask(q);
                if m <= 0.0 {
                    continue;
                }
                // In the held face's pixels: the template point, scaled by its zoom.
                let z = self.zoom;
                let at = if z == 1.0 { q } else { [(q[0] + 0.5) * z - 0.5, (q[1] + 0.5) * z - 0.5] };
                let rgb = sample(&face, self.edge, filter, at, (self.density * z).max(1.0), &mut taps);
                blend(layout, row, (x - rect.x) as usize * ch, rgb, m);
            }
        }
        Ok(())
    }
}

/// The held `face` (`edge` pixels square) at point `q` of it, filtered, 0-255 per channel.
fn sample(face: &[u8], edge: usize, filter: Filter, q: [f64; 2], stretch: f64, taps: &mut Taps) -> [f64; 3] {
    taps.set(filter, q, stretch, edge);
    let mut acc = [0.0; 3];
    for (&j, &wy) in taps.ys.iter().zip(&taps.wy) {
        let mut line = [0.0; 3];
        let row = &face[j * edge * 3..(j + 1) * edge * 3];
        for (&i, &wx) in taps.xs.iter().zip(&taps.wx) {
            for k in 0..3 {
                line[k] += wx * row[i * 3 + k] as f64;
            }
        }
        for k in 0..3 {
            acc[k] += wy * line[k];
        }
    }
    acc
}

/// One point's filter taps along each axis: template indices (clamped) and normalised weights.
#[derive(Default)]
struct Taps {
    xs: Vec<usize>,
    wx: Vec<f64>,
    ys: Vec<usize>,
    wy: Vec<f64>,
    steps: SineSteps,
}

impl Taps {
    fn set(&mut self, filter: Filter, q: [f64; 2], stretch: f64, edge: usize) {
        let steps = (filter == Filter::Lanczos3).then(|| self.steps.for_stretch(stretch));
        axis_taps(filter, (q[0], edge), stretch, steps, &mut self.xs, &mut self.wx);
        axis_taps(filter, (q[1], edge), stretch, steps, &mut self.ys, &mut self.wy);
    }
}

/// Lanczos3's sines without a sine per tap. The taps of one point lie `1/s` apart, so with
/// `x₀` the first tap's argument, `sin(π(x₀ + k/s)) = sin(πx₀)·cos(πk/s) + cos(πx₀)·sin(πk/s)`
/// (and the same at a third of the angle): two `sin_cos` per axis and point instead of two
/// sines per tap, the cosines and sines of the steps computed once per stretch. The weights
/// are the filter's to within a few units in the last place (`weights_are_the_filters`), far
/// below what moves an output sample; taps within half a step of the point keep the
/// filter's own formula.
#[derive(Default)]
struct SineSteps {
    stretch: f64,
    /// Per step `k`: `cos(πk/s)`, `sin(πk/s)`, `cos(πk/3s)`, `sin(πk/3s)`.
    steps: Vec<[f64; 4]>,
}

impl SineSteps {
    fn for_stretch(&mut self, s: f64) -> &SineSteps {
        if self.stretch != s || self.steps.is_empty() {
            let n = (2.0 * Filter::Lanczos3.support() * s).ceil() as usize + 2;
            let step = |k: usize| {
                let (b, a) = (PI * k as f64 / s).sin_cos();
                let (d, c) = (PI * k as f64 / (3.0 * s)).sin_cos();
                [a, b, c, d]
            };
            *self = SineSteps { stretch: s, steps: (0..n).map(step).collect() };
        }
        self
    }

    /// Lanczos3 at the `k`-th tap, whose argument is `x` (the first's sines given).
    fn weight(&self, k: usize, x: f64, first: [f64; 4]) -> f64 {
        let ax = x.abs();
        if ax >= 3.0 {
            return 0.0;
        }
        if ax < 0.5 {
            // Near 0 the sum of products cancels to a small sine: its rounding error,
            // divided by the small argument, would grow. One tap per stretch unit is here.
            return Filter::Lanczos3.weight(x);
        }
        let [c1, s1, c3, s3] = first;
        let [a, b, c, d] = self.steps[k];
        let (px, px3) = (PI * ax, PI * ax / 3.0);
        // The sines are odd and the arguments' signs cancel in each quotient.
        let sin1 = (s1 * a + c1 * b) * x.signum();
        let sin3 = (s3 * c + c3 * d) * x.signum();
        (sin1 * sin3) / (px * px3)
    }
}

/// The taps of `filter` stretched by `s` around `c` along one axis of a face `edge` pixels
/// wide (`steps`: Lanczos3's sines for `s`, when the filter is Lanczos3).
fn axis_taps(
    filter: Filter,
    (c, edge): (f64, usize),
    s: f64,
    steps: Option<&SineSteps>,
    idx: &mut Vec<usize>,
    w: &mut Vec<f64>,
) {
    idx.clear();
    w.clear();
    let reach = filter.support() * s;
    let (lo, hi) = ((c - reach).ceil() as i64, (c + reach).floor() as i64);
    let first = steps.map(|_| {
        let x0 = (lo as f64 - c) / s;
        let ((s1, c1), (s3, c3)) = ((PI * x0).sin_cos(), (PI * x0 / 3.0).sin_cos());
        [c1, s1, c3, s3]
    });
    let mut sum = 0.0;
    for i in lo..=hi {
        // (Enlarging, s is 1: the division is exact, and skipped.)
        let x = if s == 1.0 { i as f64 - c } else { (i as f64 - c) / s };
        let wi = match (steps, first) {
            (Some(t), Some(f)) => t.weight((i - lo) as usize, x, f),
            _ => filter.weight(x),
        };
        if wi != 0.0 {
            idx.push(i.clamp(0, edge as i64 - 1) as usize);
            w.push(wi);
            sum += wi;
        }
    }
    if sum == 0.0 {
        idx.clear();
        w.clear();
        idx.push((c.round() as i64).clamp(0, edge as i64 - 1) as usize);
        w.push(1.0);
        return;
    }
    for wi in w.iter_mut() {
        *wi /= sum;
    }
}

/// The soft mask at template point `q`: 0 outside the face, rising smoothly to 1 inside.
fn mask(q: [f64; 2]) -> f64 {
    let edge = FACE_EDGE as f64 - 0.5;
    let d = (q[0] + 0.5).min(edge - q[0]).min(q[1] + 0.5).min(edge - q[1]);
    let t = ((d - MASK_START) / MASK_RAMP).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Blends the face's `rgb` (0-255) over the pixel whose first sample is sample `i` of `row`.
fn blend(layout: Layout, row: &mut [u8], i: usize, rgb: [f64; 3], m: f64) {
    let (unit, max) = match layout.depth {
        Depth::U8 => (1.0, 255.0),
        Depth::U16 => (257.0, 65535.0),
    };
    let mix = |row: &mut [u8], at: usize, face: f64| {
        let bg = layout.depth.read(row, at) as f64;
        let v = (m * face * unit + (1.0 - m) * bg).round().clamp(0.0, max);
        layout.depth.write(row, at, v as u32);
    };
    match layout.channels {
        Channels::Gray | Channels::GrayAlpha => mix(row, i, 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]),
        Channels::Rgb | Channels::Rgba => {
            for (k, &v) in rgb.iter().enumerate() {
                mix(row, i + k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_is_zero_at_the_edge_and_one_inside() {
        assert_eq!(mask([-0.5, 256.0]), 0.0);
        assert_eq!(mask([10.0, 256.0]), 0.0);
        assert_eq!(mask([256.0, 256.0]), 1.0);
        let m = mask([49.5, 256.0]);
        assert!(m > 0.4 && m < 0.6, "{m}");
    }

    /// A face of 100 px in a 300x200 image, output 2.5x; the restored face is a gradient.
    fn placed() -> PlacedFace {
        let marks = super::super::align::FFHQ_512.map(|p| [(p[0] * 0.2 + 90.0) as f32, (p[1] * 0.2 + 40.0) as f32]);
        let align = super::super::align::alignment(&marks).unwrap();
        let face: Vec<u8> = (0..FACE_EDGE * FACE_EDGE * 3).map(|i| (i * 7 % 251) as u8).collect();
        PlacedFace::new(align, face, (300, 200), (750, 500))
    }

    #[test]
    fn pasting_tile_by_tile_equals_pasting_whole_and_release_is_final() {
        let layout = Layout::new(Channels::Rgb, Depth::U8);
        let face = placed();
        let [x0, y0, x1, y1] = face.reach();
        assert!(x0 > 200 && x1 < 560 && y0 > 50 && y1 < 420, "{:?}", face.reach());
        let whole_rect = Rect { x: 0, y: 0, w: 750, h: 500 };
        let mut whole = vec![9u8; 750 * 500 * 3];
        face.paste(Filter::Lanczos3, layout, whole_rect, 750 * 3, &mut whole).unwrap();
        assert!(whole.iter().filter(|&&v| v != 9).count() > 10_000);
        for tile in [16u32, 100] {
            for ty in (0..500).step_by(tile as usize) {
                for tx in (0..750).step_by(tile as usize) {
                    let rect = Rect { x: tx, y: ty, w: tile.min(750 - tx), h: tile.min(500 - ty) };
                    let stride = tile as usize * 3;
                    let mut buf = vec![9u8; stride * tile as usize];
                    face.paste(Filter::Lanczos3, layout, rect, stride, &mut buf).unwrap();
                    for r in 0..rect.h as usize {
                        let at = ((ty as usize + r) * 750 + tx as usize) * 3;
                        assert_eq!(
                            &buf[r * stride..r * stride + rect.w as usize * 3],
                            &whole[at..at + rect.w as usize * 3]
                        );
                    }
                }
            }
        }
        face.release();
        assert_eq!(face.bytes(), 0);
        let mut buf = vec![0u8; 750 * 500 * 3];
        assert!(face.paste(Filter::Lanczos3, layout, whole_rect, 750 * 3, &mut buf).is_err());
        let far = Rect { x: 0, y: 0, w: 16, h: 16 };
        assert!(face.paste(Filter::Lanczos3, layout, far, 48, &mut buf).is_ok(), "a tile it never reaches");
    }

    #[test]
    fn taps_sum_to_one_and_stay_inside_the_face() {
        let (mut i, mut w) = (Vec::new(), Vec::new());
        for (c, s) in [(0.2, 1.0), (511.9, 1.0), (100.37, 3.5), (-3.0, 1.0)] {
            axis_taps(Filter::Lanczos3, (c, FACE_EDGE), s, None, &mut i, &mut w);
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(i.iter().all(|&k| k < FACE_EDGE));
        }
    }

    /// Lanczos3's weights from the stepped sines are the filter's own to within 1e-15.
    #[test]
    fn weights_are_the_filters() {
        let mut steps = SineSteps::default();
        let (mut i, mut w, mut i2, mut w2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for s in [1.0, 1.37, 4.0, 11.3] {
            for c in [0.0, 0.2, 7.5, 100.37, 255.999, 511.9, -3.0] {
                axis_taps(Filter::Lanczos3, (c, FACE_EDGE), s, Some(steps.for_stretch(s)), &mut i, &mut w);
                axis_taps(Filter::Lanczos3, (c, FACE_EDGE), s, None, &mut i2, &mut w2);
                assert_eq!(i, i2, "c {c} s {s}");
                for (a, b) in w.iter().zip(&w2) {
                    assert!((a - b).abs() < 1e-15, "c {c} s {s}: {a} against {b}");
                }
            }
        }
    }
}
