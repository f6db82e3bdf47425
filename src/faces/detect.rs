//! The detection job: decode into the store, plan the tile from the budget, run the network
//! on each tile's window, keep the anchors each tile owns, then threshold and suppress.

use super::align::rgb8;
use super::graph::Graph;
use super::reduced::overlap_of;
use super::values::Tensor;
use super::{DetectOptions, Detection, Face, DETECTOR_ONNX};
use crate::pixel::ImageInfo;
use crate::source::{RowSource, RowWriter};
use crate::store::Store;
use crate::{Error, Result};
use std::path::Path;
use std::time::Instant;

/// facexlib's mean, subtracted from B, G, R.
const MEAN_BGR: [f32; 3] = [104.0, 117.0, 123.0];
/// RetinaFace's anchor levels: stride and the two anchor sizes at each cell.
const LEVELS: [(usize, [f32; 2]); 3] = [(8, [16.0, 32.0]), (16, [64.0, 128.0]), (32, [256.0, 512.0])];
/// The box and landmark variances of RetinaFace's decoding.
const VARIANCE: [f32; 2] = [0.1, 0.2];
/// facexlib keeps the best 5000 candidates before suppression and 750 after.
const TOP_BEFORE: usize = 5000;
/// See [`TOP_BEFORE`].
const TOP_AFTER: usize = 750;
/// Bytes left for what the plan does not count (code, weights, the store's window).
const RESERVE: u64 = 16 << 20;

/// Detects faces in the image file `path` (see the [module docs](super)). `progress` is told
/// `(tiles done, tiles in all)` after each tile.
pub fn detect_file(path: &Path, opts: &DetectOptions, progress: &mut dyn FnMut(usize, usize)) -> Result<Detection> {
    opts.validate()?;
    let source = crate::source::open(path, opts.max_memory)?;
    detect_source(source, opts, progress).map_err(|e| match e {
        Error::Limit { what, needed, limit, unit, hint } => {
            Error::Limit { what: format!("{}: {what}", path.display()), needed, limit, unit, hint }
        }
        e => e,
    })
}

/// Detects faces in a decoded image source; `progress` as for [`detect_file`].
pub fn detect_source(
    source: Box<dyn RowSource>,
    opts: &DetectOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Detection> {
    detect_keeping_store(source, opts, progress).map(|(found, _, _)| found)
}

/// [`detect_source`], which also gives back the decoded image (its store and description)
/// for the restoration's crops.
pub(super) fn detect_keeping_store(
    mut source: Box<dyn RowSource>,
    opts: &DetectOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Detection, Store, ImageInfo)> {
    opts.validate()?;
    let t0 = Instant::now();
    crate::store::return_large_blocks();
    let graph =
        Graph::from_onnx(DETECTOR_ONNX).map_err(|e| Error::Internal(format!("the bundled face detector: {e}")))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .map_err(|e| Error::Internal(format!("worker threads: {e}")))?;
    let margin =
        super::graph::margin(&graph, &pool).map_err(|e| Error::Internal(format!("the face detector's reach: {e}")))?;
    let info = source.info().clone();
    let (w, h) = (info.width, info.height);
    let (tile, planned) = plan_tile(&graph, &info, margin, opts, &pool)?;
    let temp_dir = opts.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut store = Store::create(&temp_dir, info.row_bytes(), h as usize)?;
    {
        let never = || false;
        let mut quiet = |_| {};
        let mut writer = RowWriter::new(&mut store, &never, &mut quiet);
        source.decode(&mut writer)?;
        writer.check_complete()?;
    }
    let pass = Pass { graph: &graph, pool: &pool, margin, tile, threshold: opts.threshold };
    let reduced = super::reduced::copy(&store, &info, &temp_dir)?;
    let total = pass.tiles(&info) + reduced.as_ref().map_or(0, |(_, i)| pass.tiles(i));
    let mut done = 0;
    let mut counted = |n: usize| {
        done += n;
        progress(done, total)
    };
    let full = suppress(pass.run(&store, &info, &mut counted)?, opts.nms);
    let faces = match reduced {
        // Faces too large for the detector's anchors at full size: facexlib's reduced copy.
        Some((small, small_info)) => {
            let found = suppress(pass.run(&small, &small_info, &mut counted)?, opts.nms);
            super::reduced::merge(full, found, (&small_info, &info), opts.nms)
        }
        None => full,
    };
    let found = Detection {
        width: w,
        height: h,
        faces,
        tiles: total,
        tile,
        planned_bytes: planned,
        seconds: t0.elapsed().as_secs_f64(),
    };
    Ok((found, store, info))
}

/// One detection pass over a decoded image: the network on tiles, the owned anchors decoded.
struct Pass<'a> {
    graph: &'a Graph,
    pool: &'a rayon::ThreadPool,
    margin: u32,
    tile: u32,
    threshold: f32,
}

impl Pass<'_> {
    /// Tiles the pass cuts an image of `info`'s size into.
    fn tiles(&self, info: &ImageInfo) -> usize {
        info.width.div_ceil(self.tile) as usize * info.height.div_ceil(self.tile) as usize
    }

    /// The candidates (before suppression) of the image in `store`; `progress(1)` per tile.
    fn run(&self, store: &Store, info: &ImageInfo, progress: &mut dyn FnMut(usize)) -> Result<Vec<Face>> {
        let (w, h, tile, margin) = (info.width, info.height, self.tile, self.margin);
        let mut candidates = Vec::new();
        for cy in (0..h).step_by(tile as usize) {
            for cx in (0..w).step_by(tile as usize) {
                let core = [cx, cy, (cx + tile).min(w), (cy + tile).min(h)];
                let window = [
                    cx.saturating_sub(margin),
                    cy.saturating_sub(margin),
                    (core[2] + margin).min(w),
                    (core[3] + margin).min(h),
                ];
                let input = window_tensor(store, info, window);
                let out =
                    self.graph.run(input, self.pool).map_err(|e| Error::Internal(format!("the face detector: {e}")))?;
                candidates.extend(decode(&out.outputs, window, core, self.threshold)?);
                progress(1);
            }
            store.release_rows(0..(cy + tile).saturating_sub(margin).min(h) as usize);
        }
        Ok(candidates)
    }
}

/// The largest tile core (a multiple of 32) whose window's network run fits the budget:
/// the whole image when it fits. Returns the core edge and its planned peak bytes.
fn plan_tile(
    graph: &Graph,
    info: &ImageInfo,
    margin: u32,
    opts: &DetectOptions,
    pool: &rayon::ThreadPool,
) -> Result<(u32, u64)> {
    let (w, h) = (info.width, info.height);
    // The network's peak, plus the store rows a window keeps resident (two rows of windows
    // overlap while the next is read).
    let peak = |core: u32| -> Result<u64> {
        let (ww, wh) = ((core + 2 * margin).min(w), (core + 2 * margin).min(h));
        let dry = Tensor::dry(vec![1, 3, wh as usize, ww as usize]);
        let run = graph.run(dry, pool).map_err(|e| Error::Internal(format!("the face detector: {e}")))?;
        let rows = (wh as u64 + core as u64).min(h as u64);
        Ok(run.peak_bytes + rows * info.row_bytes() as u64)
    };
    let available = opts.max_memory.saturating_sub(RESERVE);
    let whole = w.max(h).div_ceil(32) * 32;
    if let Some(t) = opts.tile {
        let t = t.min(whole);
        return Ok((t, peak(t)?));
    }
    let full = peak(whole)?;
    if full <= available {
        return Ok((whole, full));
    }
    let smallest = peak(32)?;
    if smallest > available {
        let hint =
            format!("face detection needs --max-memory of at least {} MiB", (smallest + RESERVE).div_ceil(1 << 20));
        return Err(Error::limit(
            "face detection (one 32-pixel tile with its margin)",
            smallest + RESERVE,
            opts.max_memory,
            Some(hint),
        ));
    }
    // Binary search over cores of 32·k px: `lo` fits (with `lo_peak`), `hi` does not.
    let (mut lo, mut hi, mut lo_peak) = (1u32, whole / 32, smallest);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        let p = peak(mid * 32)?;
        if p <= available {
            (lo, lo_peak) = (mid, p);
        } else {
            hi = mid;
        }
    }
    Ok((lo * 32, lo_peak))
}

/// The network's input for `window` (left, top, right, bottom): B, G, R minus facexlib's
/// mean, planar, each sample read as [`rgb8`] reads it (grey as three equal channels, alpha
/// ignored, 16-bit rounded to 8 bits).
fn window_tensor(store: &Store, info: &ImageInfo, [x0, y0, x1, y1]: [u32; 4]) -> Tensor {
    let (ww, wh) = ((x1 - x0) as usize, (y1 - y0) as usize);
    let plane = ww * wh;
    let mut data = vec![0.0f32; 3 * plane];
    for (r, y) in (y0..y1).enumerate() {
        let row = store.row(y as usize);
        for (c, x) in (x0..x1).enumerate() {
            let at = r * ww + c;
            for (plane_index, (k, mean)) in
                [(2, MEAN_BGR[0]), (1, MEAN_BGR[1]), (0, MEAN_BGR[2])].into_iter().enumerate()
            {
                data[plane_index * plane + at] = rgb8(row, info.layout, x as usize, k) as f32 - mean;
            }
        }
    }
    Tensor::new(vec![1, 3, wh, ww], data)
}

/// The candidates of one tile: anchors whose cell starts inside `core`, scoring above
/// `threshold`, decoded into image pixels.
fn decode(outputs: &[Tensor], window: [u32; 4], core: [u32; 4], threshold: f32) -> Result<Vec<Face>> {
    let [loc, conf, landm] = outputs else {
        return Err(Error::Internal(format!("the face detector gave {} outputs, not 3", outputs.len())));
    };
    let (ww, wh) = ((window[2] - window[0]) as usize, (window[3] - window[1]) as usize);
    let anchors: usize = LEVELS.iter().map(|(s, _)| ww.div_ceil(*s) * wh.div_ceil(*s) * 2).sum();
    if loc.len() != anchors * 4 || conf.len() != anchors * 2 || landm.len() != anchors * 10 {
        return Err(Error::Internal(format!(
            "the face detector's outputs do not fit {anchors} anchors of a {ww}x{wh} window"
        )));
    }
    let mut found = Vec::new();
    let mut a = 0;
    for (step, sizes) in LEVELS {
        for i in 0..wh.div_ceil(step) {
            for j in 0..ww.div_ceil(step) {
                let (gx, gy) = (window[0] as usize + j * step, window[1] as usize + i * step);
                let owned = (core[0] as usize..core[2] as usize).contains(&gx)
                    && (core[1] as usize..core[3] as usize).contains(&gy);
                for size in sizes {
                    let score = conf.data[2 * a + 1];
                    if owned && score > threshold {
                        let centre = [gx as f32 + 0.5 * step as f32, gy as f32 + 0.5 * step as f32];
                        found.push(decode_one(
                            score,
                            &loc.data[4 * a..][..4],
                            &landm.data[10 * a..][..10],
                            centre,
                            size,
                        ));
                    }
                    a += 1;
                }
            }
        }
    }
    Ok(found)
}

/// One anchor's box and landmarks, as RetinaFace decodes them, around the anchor's centre
/// `c` in image pixels (exact in floats: whatever the tile, the same numbers).
fn decode_one(score: f32, loc: &[f32], landm: &[f32], c: [f32; 2], size: f32) -> Face {
    let cx = c[0] + loc[0] * VARIANCE[0] * size;
    let cy = c[1] + loc[1] * VARIANCE[0] * size;
    let (bw, bh) = (size * (loc[2] * VARIANCE[1]).exp(), size * (loc[3] * VARIANCE[1]).exp());
    let (x1, y1) = (cx - bw / 2.0, cy - bh / 2.0);
    let bbox = [x1, y1, x1 + bw, y1 + bh];
    let mut landmarks = [[0.0; 2]; 5];
    for (k, p) in landmarks.iter_mut().enumerate() {
        *p = [c[0] + landm[2 * k] * VARIANCE[0] * size, c[1] + landm[2 * k + 1] * VARIANCE[0] * size];
    }
    Face { score, bbox, landmarks }
}

/// facexlib's selection: best first (ties by position, for a deterministic order), the best
/// [`TOP_BEFORE`], greedy suppression of boxes overlapping a kept one by more than
/// `overlap` (areas counted with `+ 1`), the best [`TOP_AFTER`].
pub(super) fn suppress(mut c: Vec<Face>, overlap: f32) -> Vec<Face> {
    c.sort_by(|a, b| {
        b.score.total_cmp(&a.score).then(a.bbox[1].total_cmp(&b.bbox[1])).then(a.bbox[0].total_cmp(&b.bbox[0]))
    });
    c.truncate(TOP_BEFORE);
    let mut kept: Vec<Face> = Vec::new();
    for f in c {
        let clash = kept.iter().any(|k| overlap_of(&k.bbox, &f.bbox) > overlap);
        if !clash {
            kept.push(f);
        }
    }
    kept.truncate(TOP_AFTER);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(score: f32, bbox: [f32; 4]) -> Face {
        Face { score, bbox, landmarks: [[0.0; 2]; 5] }
    }

    #[test]
    fn suppression_keeps_the_best_of_overlapping_boxes() {
        let got = suppress(
            vec![
                face(0.9, [0.0, 0.0, 9.0, 9.0]),
                face(0.95, [1.0, 1.0, 10.0, 10.0]),
                face(0.85, [20.0, 0.0, 29.0, 9.0]),
            ],
            0.4,
        );
        let scores: Vec<f32> = got.iter().map(|f| f.score).collect();
        assert_eq!(scores, [0.95, 0.85]);
        // IoU with +1 areas: 9x9 overlap of two 10x10 boxes = 81 / 119 = 0.68.
        assert_eq!(suppress(vec![face(0.9, [0.0, 0.0, 9.0, 9.0]), face(0.8, [1.0, 1.0, 10.0, 10.0])], 0.7).len(), 2);
    }

    #[test]
    fn the_bundled_detector_loads_and_reaches_256_pixels() {
        let graph = Graph::from_onnx(DETECTOR_ONNX).unwrap();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        // The receptive radius is 253 px (scripts/faces-reference.py's graph); on the 32 grid.
        assert_eq!(crate::faces::graph::margin(&graph, &pool).unwrap(), 256);
        let peak = |s: usize| graph.run(Tensor::dry(vec![1, 3, s, s]), &pool).unwrap().peak_bytes;
        let (small, large) = (peak(320), peak(640));
        assert!(small > 3 * 320 * 320 * 4 && large > 2 * small, "{small} {large}");
    }

    #[test]
    fn decoding_keeps_only_the_anchors_a_tile_owns() {
        // A 64x64 window at (32, 32): 8x8 + 4x4 + 2x2 cells, two anchors each.
        let anchors = 2 * (64 + 16 + 4);
        let conf = Tensor::new(vec![1, anchors, 2], (0..anchors).flat_map(|_| [0.0, 0.9]).collect());
        let outs = [
            Tensor::new(vec![1, anchors, 4], vec![0.0; anchors * 4]),
            conf,
            Tensor::new(vec![1, anchors, 10], vec![0.0; anchors * 10]),
        ];
        let got = decode(&outs, [32, 32, 96, 96], [64, 64, 96, 96], 0.8).unwrap();
        // Owned: cells starting in [64, 96)²: 4x4 at stride 8, 2x2 at 16, 1 at 32.
        assert_eq!(got.len(), 2 * (16 + 4 + 1));
        let first = &got[0];
        assert_eq!(first.bbox, [68.0 - 8.0, 68.0 - 8.0, 68.0 + 8.0, 68.0 + 8.0]);
        assert_eq!(first.landmarks[0], [68.0, 68.0]);
        assert!(decode(&outs[..2], [0, 0, 64, 64], [0, 0, 64, 64], 0.8).is_err());
    }
}
