//! Face restoration as a stage of an upscale: before the tiles, the input is decoded once,
//! its faces detected ([`super::detect_file`]'s stream), each aligned to the FFHQ template
//! (`align.rs`) and restored once by the user's model (`restorer.rs`); the tile stage then
//! pastes them into every tile they reach (`paste.rs`).
//!
//! ```text
//!  input ─▶ store ─▶ detector ─▶ 5 landmarks ─▶ similarity ─▶ 512² crop ─▶ restorer ─▶ 512² face
//!                                                    │                                   │
//!  output tile (resampled or from the model) ─▶ each pixel ─▶ template point ─▶ filter + mask ─▶ tile
//! ```

use super::align::{alignment, crop, Similarity};
use super::paste::PlacedFace;
use super::{DetectOptions, Face};
use crate::kernel::Filter;
use crate::pixel::Layout;
use crate::plan::Rect;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How to restore faces (`upscale --faces`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RestoreOptions {
    /// The restorer: an ONNX export of CodeFormer or GFPGAN (1x3x512x512 in and out).
    pub model: PathBuf,
    /// CodeFormer's fidelity weight `w`, 0-1 (0: the model's own face, 1: closest to the
    /// input); models without that input ignore it.
    pub fidelity: f32,
    /// ONNX Runtime's library (else `GIGASCALE_ONNXRUNTIME`, `ORT_DYLIB_PATH`, the wheel).
    pub runtime: Option<PathBuf>,
    /// Detector confidence threshold (facexlib's 0.8).
    pub threshold: f32,
}

impl RestoreOptions {
    /// Restoration by `model` with CodeFormer's usual fidelity (0.5).
    pub fn new(model: impl Into<PathBuf>) -> RestoreOptions {
        RestoreOptions { model: model.into(), fidelity: 0.5, runtime: None, threshold: 0.8 }
    }

    /// Checks the options before any work starts.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.fidelity) {
            return Err(Error::usage(format!("--face-fidelity {} must lie between 0 and 1", self.fidelity)));
        }
        if !self.model.is_file() {
            return Err(Error::usage(format!("--faces {}: no such file", self.model.display())));
        }
        Ok(())
    }
}

/// The restored faces of one input, placed for one output size.
#[derive(Debug)]
#[non_exhaustive]
pub struct RestoredFaces {
    placed: Vec<PlacedFace>,
    filter: Filter,
    /// The faces found, best first (as `gigascale faces` lists them).
    pub faces: Vec<Face>,
    /// Seconds spent detecting (decoding included) and restoring.
    pub seconds: (f64, f64),
    /// Restorer sessions used (faces restored in parallel).
    pub sessions: usize,
}

impl RestoredFaces {
    /// Lets go of the faces that reach no output row at or below `row` (the tile stage
    /// calls it as each band of tiles is written).
    pub fn release_above(&self, row: u32) {
        for face in self.placed.iter().filter(|f| f.reach()[3] <= row) {
            face.release();
        }
    }

    /// Bytes the restored faces hold (until released).
    pub fn bytes(&self) -> u64 {
        self.placed.iter().map(|p| p.bytes() as u64).sum()
    }

    /// Pastes every face that reaches `rect` into its tile buffer (rows `stride` bytes apart).
    pub fn paste(&self, layout: Layout, rect: Rect, stride: usize, out: &mut [u8]) -> Result<()> {
        for face in &self.placed {
            face.paste(self.filter, layout, rect, stride, out)?;
        }
        Ok(())
    }

    /// The output rectangles the faces may change (left, top, right, bottom, exclusive).
    pub fn reach(&self) -> Vec<[u32; 4]> {
        self.placed.iter().map(PlacedFace::reach).collect()
    }
}

/// Detects and restores the faces of the image file `input` for an output of `output`
/// pixels, sampling restored faces with `filter`; `detect` bounds the detection (memory,
/// threads, scratch folder). `progress(done, total)` counts faces restored.
pub fn restore_file(
    input: &Path,
    output: (u32, u32),
    filter: Filter,
    opts: &RestoreOptions,
    detect: &DetectOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RestoredFaces> {
    opts.validate()?;
    let t0 = Instant::now();
    let detect = DetectOptions { threshold: opts.threshold, ..detect.clone() };
    let source = crate::source::open(input, detect.max_memory)?;
    let (found, store, info) = super::detect::detect_keeping_store(source, &detect, &mut |_, _| {})?;
    let aligned: Vec<(Similarity, Vec<u8>)> =
        found.faces.iter().filter_map(|f| alignment(&f.landmarks)).map(|a| (a, crop(&store, &info, &a))).collect();
    drop(store);
    let t1 = Instant::now();
    let threads =
        if detect.threads > 0 { detect.threads } else { std::thread::available_parallelism().map_or(1, |n| n.get()) };
    let (restored, sessions) = restore_all(opts, &aligned, threads, progress)?;
    let placed = aligned
        .into_iter()
        .zip(restored)
        .map(|((a, _), face)| PlacedFace::new(a, face, (info.width, info.height), output))
        .collect();
    Ok(RestoredFaces {
        placed,
        filter,
        faces: found.faces,
        seconds: ((t1 - t0).as_secs_f64(), t1.elapsed().as_secs_f64()),
        sessions,
    })
}

/// Restores every crop, in parallel over up to `threads` sessions; same order as `aligned`.
#[cfg(feature = "onnx")]
fn restore_all(
    opts: &RestoreOptions,
    aligned: &[(Similarity, Vec<u8>)],
    threads: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<Vec<u8>>, usize)> {
    use rayon::prelude::*;
    let total = aligned.len();
    let sessions = threads.min(total).max(1);
    let restorer = super::restorer::Restorer::load(&opts.model, opts.runtime.as_deref(), sessions)?;
    if total == 0 {
        return Ok((Vec::new(), 0));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(sessions)
        .build()
        .map_err(|e| Error::Internal(format!("restorer threads: {e}")))?;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = crossbeam_channel::unbounded();
    let (pool, restorer, done) = (&pool, &restorer, &done);
    let results = std::thread::scope(|s| {
        // The sender moves into the work: the progress loop ends when it does, even early.
        let work = s.spawn(move || {
            pool.install(|| {
                aligned
                    .par_iter()
                    .map(|(_, c)| {
                        let worker = rayon::current_thread_index().unwrap_or(0);
                        let r = restorer.restore(worker, c, opts.fidelity);
                        let _ = tx.send(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
                        r
                    })
                    .collect::<Result<Vec<_>>>()
            })
        });
        for n in rx.iter() {
            progress(n, total);
        }
        work.join().map_err(|_| Error::Internal("a restorer thread panicked".into()))?
    })?;
    Ok((results, sessions))
}

#[cfg(not(feature = "onnx"))]
fn restore_all(
    _: &RestoreOptions,
    _: &[(Similarity, Vec<u8>)],
    _: usize,
    _: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<Vec<u8>>, usize)> {
    Err(Error::usage(
        "--faces needs face restoration, which this gigascale was built without: \
         build it with `--features onnx` (a default feature)",
    ))
}
