//! A face's alignment to the 512x512 FFHQ template: the least-squares similarity that takes
//! its five landmarks to the template's, and the aligned crop the restorer reads.
//!
//! Coordinates follow OpenCV's (and facexlib's): a pixel's centre is at its integer index.
//! Everything is computed in double precision from the landmarks and the pixels alone, so a
//! face's crop is the same bytes whatever the tile, budget or thread count.

use crate::pixel::{Channels, Depth, ImageInfo, Layout};
use crate::store::Store;

/// The restorers' input and output edge.
pub(super) const FACE_EDGE: usize = 512;

/// facexlib's FFHQ template for 512x512 faces: eyes, nose, mouth corners.
pub(super) const FFHQ_512: [[f64; 2]; 5] = [
    [192.98138, 239.94708],
    [318.90277, 240.1936],
    [256.63416, 314.01935],
    [201.26117, 371.41043],
    [313.08905, 371.15118],
];

/// facexlib's border colour for template pixels outside the image (its BGR (135, 133, 132)).
pub(super) const BORDER_RGB: [f64; 3] = [132.0, 133.0, 135.0];

/// A similarity transform `q = [[a, -b], [b, a]] · p + t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Similarity {
    /// Scale times cosine of the rotation.
    pub a: f64,
    /// Scale times sine of the rotation.
    pub b: f64,
    /// Translation.
    pub t: [f64; 2],
}

impl Similarity {
    /// The least-squares similarity (no reflection) taking `from[i]` to `to[i]`.
    pub(super) fn fit(from: &[[f64; 2]; 5], to: &[[f64; 2]; 5]) -> Option<Similarity> {
        let mean = |p: &[[f64; 2]; 5]| {
            let (sx, sy) = p.iter().fold((0.0, 0.0), |(x, y), q| (x + q[0], y + q[1]));
            [sx / 5.0, sy / 5.0]
        };
        let (mp, mq) = (mean(from), mean(to));
        let (mut norm, mut dot, mut cross) = (0.0, 0.0, 0.0);
        for (p, q) in from.iter().zip(to) {
            let (px, py, qx, qy) = (p[0] - mp[0], p[1] - mp[1], q[0] - mq[0], q[1] - mq[1]);
            norm += px * px + py * py;
            dot += px * qx + py * qy;
            cross += px * qy - py * qx;
        }
        if norm.is_nan() || norm <= 1e-9 {
            return None;
        }
        let (a, b) = (dot / norm, cross / norm);
        let t = [mq[0] - (a * mp[0] - b * mp[1]), mq[1] - (b * mp[0] + a * mp[1])];
        Some(Similarity { a, b, t })
    }

    /// The image of point `p`.
    pub(super) fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [self.a * p[0] - self.b * p[1] + self.t[0], self.b * p[0] + self.a * p[1] + self.t[1]]
    }

    /// The inverse transform.
    pub(super) fn inverse(&self) -> Similarity {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        let t = [-(a * self.t[0] - b * self.t[1]), -(b * self.t[0] + a * self.t[1])];
        Similarity { a, b, t }
    }

    /// The scale factor (template pixels per image pixel for a face's alignment).
    pub(super) fn scale(&self) -> f64 {
        (self.a * self.a + self.b * self.b).sqrt()
    }
}

/// The alignment of a face with `landmarks` (image pixels) to [`FFHQ_512`].
pub(super) fn alignment(landmarks: &[[f32; 2]; 5]) -> Option<Similarity> {
    let from = landmarks.map(|p| [p[0] as f64, p[1] as f64]);
    Similarity::fit(&from, &FFHQ_512)
}

/// Channel `k` (0-2: R, G, B) of pixel `x` of a store `row` in `layout`, as the face models
/// read it: grey counts for all three, alpha is ignored, 16-bit samples are rounded to 8 bits
/// (`(v · 255 + 32767) / 65535`). The detector's input and the alignment's crop both read
/// pixels through it.
pub(super) fn rgb8(row: &[u8], layout: Layout, x: usize, k: usize) -> u32 {
    let gray = matches!(layout.channels, Channels::Gray | Channels::GrayAlpha);
    let i = x * layout.channels.count() + if gray { 0 } else { k };
    if layout.depth == Depth::U16 {
        let v = u16::from_ne_bytes([row[2 * i], row[2 * i + 1]]) as u32;
        (v * 255 + 32767) / 65535
    } else {
        row[i] as u32
    }
}

/// The aligned 512x512 crop of the image in `store` through `align` (image → template), as
/// interleaved 8-bit RGB: each template pixel's centre mapped back into the image, sampled
/// bilinearly (neighbours outside the image are [`BORDER_RGB`]) and rounded.
pub(super) fn crop(store: &Store, info: &ImageInfo, align: &Similarity) -> Vec<u8> {
    let back = align.inverse();
    let (w, h) = (info.width as i64, info.height as i64);
    let mut out = vec![0u8; FACE_EDGE * FACE_EDGE * 3];
    for j in 0..FACE_EDGE {
        for i in 0..FACE_EDGE {
            let [px, py] = back.apply([i as f64, j as f64]);
            let (x0, y0) = (px.floor(), py.floor());
            let (fx, fy) = (px - x0, py - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            for (k, border) in BORDER_RGB.iter().enumerate() {
                let at = |x: i64, y: i64| {
                    if x < 0 || y < 0 || x >= w || y >= h {
                        *border
                    } else {
                        rgb8(store.row(y as usize), info.layout, x as usize, k) as f64
                    }
                };
                let top = (1.0 - fx) * at(x0, y0) + fx * at(x0 + 1, y0);
                let bottom = (1.0 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1);
                let v = (1.0 - fy) * top + fy * bottom;
                out[(j * FACE_EDGE + i) * 3 + k] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_recovers_a_known_similarity_and_inverts() {
        let truth = Similarity { a: 1.7, b: -0.4, t: [12.5, -3.0] };
        let from = FFHQ_512;
        let to = from.map(|p| truth.apply(p));
        let fit = Similarity::fit(&from, &to).unwrap();
        assert!((fit.a - truth.a).abs() < 1e-9 && (fit.b - truth.b).abs() < 1e-9);
        assert!((fit.t[0] - truth.t[0]).abs() < 1e-9 && (fit.t[1] - truth.t[1]).abs() < 1e-9);
        let round = fit.inverse().apply(fit.apply([100.0, -7.0]));
        assert!((round[0] - 100.0).abs() < 1e-9 && (round[1] + 7.0).abs() < 1e-9);
        assert!(Similarity::fit(&[[1.0, 1.0]; 5], &FFHQ_512).is_none());
    }
}
