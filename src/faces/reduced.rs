//! Faces too large for the detector at full size. RetinaFace's largest anchor is 512 px, so a
//! face much over 600 px across goes unseen in a large photograph; facexlib (and so GFPGAN and
//! CodeFormer) detect on a copy whose short side is 640 px, and miss small faces in large
//! photographs instead. Here both passes run: the full-size pass gives the faces under
//! [`LARGE`] px, the copy's pass the larger ones (scaled back), and a full-size box that
//! overlaps or lies mostly inside a large face (an eye or half of it, taken for a face) goes.
//!
//! The copy is made by our own resampler (bilinear, antialiased when reducing: exactly the
//! bytes of `gigascale upscale IN small.png --filter bilinear --width W --height H`, which is how
//! `scripts/faces-reference.py` makes its copy), tile by tile into a store of its own, releasing
//! the full image's rows as it goes.

use super::Face;
use crate::kernel::Filter;
use crate::pixel::ImageInfo;
use crate::plan::Plan;
use crate::resample::{resample_tile, Scratch};
use crate::store::Store;
use crate::Result;
use std::path::Path;

/// The reduced copy's short side (facexlib's `resize=640`).
pub(super) const SHORT_SIDE: u32 = 640;

/// The reduced copy's size for an image of `w` x `h`, or `None` when its short side is
/// already at most [`SHORT_SIDE`] (the full-size pass then sees every face the copy would).
pub(super) fn reduced_size(w: u32, h: u32) -> Option<(u32, u32)> {
    let short = w.min(h) as u64;
    if short <= SHORT_SIDE as u64 {
        return None;
    }
    let scaled = |v: u32| ((v as u64 * SHORT_SIDE as u64 + short / 2) / short).max(1) as u32;
    Some((scaled(w), scaled(h)))
}

/// The reduced copy of the image in `store`, in a new store under `temp_dir`, or `None` when
/// the image needs none.
pub(super) fn copy(store: &Store, info: &ImageInfo, temp_dir: &Path) -> Result<Option<(Store, ImageInfo)>> {
    let Some((rw, rh)) = reduced_size(info.width, info.height) else { return Ok(None) };
    let plan = Plan::new(info.width, info.height, rw, rh, Filter::Bilinear, info.layout, 64)?;
    let small_info = ImageInfo::new(rw, rh, info.layout, info.format);
    let mut small = Store::create(temp_dir, small_info.row_bytes(), rh as usize)?;
    let (mut scratch, mut buf) = (Scratch::default(), vec![0u8; plan.tile_bytes()]);
    let bpp = info.layout.bytes_per_pixel();
    let stride = plan.geom.tile as usize * bpp;
    for i in 0..plan.tile_count() {
        let job = plan.tile(i);
        if job.out.x == 0 {
            store.release_rows(0..job.src.y as usize);
        }
        resample_tile(&plan, store, &job, &mut scratch, &mut buf);
        let (x0, width) = (job.out.x as usize * bpp, job.out.w as usize * bpp);
        for r in 0..job.out.h as usize {
            let row = small.row_mut(job.out.y as usize + r);
            row[x0..x0 + width].copy_from_slice(&buf[r * stride..r * stride + width]);
        }
    }
    store.release_all();
    Ok(Some((small, small_info)))
}

/// Intersection over union of two boxes, areas counted with `+ 1` (facexlib's).
pub(super) fn overlap_of(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let area = |b: &[f32; 4]| (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0);
    let iw = (a[2].min(b[2]) - a[0].max(b[0]) + 1.0).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1]) + 1.0).max(0.0);
    let inter = iw * ih;
    inter / (area(a) + area(b) - inter)
}

/// A face at least this many pixels across (at full size) is taken from the reduced copy:
/// RetinaFace's anchors stop at 512 px, and larger faces come out at full size as several
/// partial boxes (an eye, a mouth, half a face) or not at all.
pub(super) const LARGE: f32 = 400.0;

/// The merged faces: the copy's faces (in the copy's pixels, `sizes.0`) of at least [`LARGE`]
/// pixels at full size (`sizes.1`), scaled back, and the full-size faces that neither overlap
/// one of them by more than `overlap` (IoU) nor lie mostly inside one; best first.
pub(super) fn merge(full: Vec<Face>, small: Vec<Face>, sizes: (&ImageInfo, &ImageInfo), overlap: f32) -> Vec<Face> {
    let (from, to) = sizes;
    let (sx, sy) = (to.width as f32 / from.width as f32, to.height as f32 / from.height as f32);
    let large: Vec<Face> = small
        .into_iter()
        .map(|f| {
            let b = f.bbox;
            let bbox = [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy];
            Face { score: f.score, bbox, landmarks: f.landmarks.map(|[x, y]| [x * sx, y * sy]) }
        })
        .filter(|f| (f.bbox[2] - f.bbox[0]).max(f.bbox[3] - f.bbox[1]) >= LARGE)
        .collect();
    let covered = |f: &Face| large.iter().any(|l| overlap_of(&f.bbox, &l.bbox) > overlap || inside(&f.bbox, &l.bbox));
    let mut all: Vec<Face> = full.into_iter().filter(|f| !covered(f)).collect();
    all.extend(large);
    all.sort_by(|a, b| b.score.total_cmp(&a.score));
    all
}

/// Whether over half of box `small`'s area lies inside box `big`.
fn inside(small: &[f32; 4], big: &[f32; 4]) -> bool {
    let area = (small[2] - small[0]).max(0.0) * (small[3] - small[1]).max(0.0);
    let iw = (small[2].min(big[2]) - small[0].max(big[0])).max(0.0);
    let ih = (small[3].min(big[3]) - small[1].max(big[1])).max(0.0);
    iw * ih > 0.5 * area
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_has_a_640_pixel_short_side_and_small_images_need_none() {
        assert_eq!(reduced_size(3000, 2000), Some((960, 640)));
        assert_eq!(reduced_size(1001, 4000), Some((640, 2557)));
        assert_eq!(reduced_size(640, 5000), None);
        assert_eq!(reduced_size(300, 200), None);
    }

    #[test]
    fn merging_keeps_full_size_faces_and_adds_only_new_large_ones() {
        let face = |s: f32, b: [f32; 4]| Face { score: s, bbox: b, landmarks: [[b[0], b[1]]; 5] };
        let info = |w, h| {
            ImageInfo::new(w, h, crate::Layout::new(crate::Channels::Rgb, crate::Depth::U8), crate::pixel::Format::Png)
        };
        // A face, and an eye of the large face taken for a small one.
        let full = vec![face(0.9, [100.0, 100.0, 200.0, 220.0]), face(0.85, [700.0, 200.0, 800.0, 300.0])];
        // The same face seen in the half-size copy (small: the full-size one is kept), and a
        // large one the eye is part of.
        let small = vec![face(0.95, [50.0, 50.0, 100.0, 110.0]), face(0.99, [300.0, 20.0, 700.0, 500.0])];
        let got = merge(full, small, (&info(1000, 600), &info(2000, 1200)), 0.4);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].bbox, [600.0, 40.0, 1400.0, 1000.0]);
        assert_eq!(got[0].landmarks[0], [600.0, 40.0]);
        assert_eq!(got[1].score, 0.9);
    }
}
