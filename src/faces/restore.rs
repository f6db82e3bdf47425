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

use super::align::{alignment, crop, Similarity, FACE_EDGE};
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
    /// ONNX Runtime's threads within one face (its intra-op threads; default 1). Its sums
    /// change order with this count, so it shapes the bytes (as the filter does) and is not
    /// taken from `--threads`: faces are restored in parallel on `threads / face_threads`
    /// sessions instead, and the output is the same for every `--threads`.
    pub face_threads: usize,
    /// Where ONNX Runtime runs the restorer: the CPU (default) or a CUDA GPU.
    pub device: FaceDevice,
}

/// Where the face restorer runs. Like `face_threads`, it shapes the bytes: ONNX Runtime's
/// CUDA kernels sum in another order than its CPU kernels (a face differs in the last bits
/// here and there), so it is an option of the output, not of the machine's speed; on one
/// device, every tile size, budget and `--threads` still gives the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FaceDevice {
    /// ONNX Runtime's CPU kernels, `face_threads` threads per face.
    #[default]
    Cpu,
    /// ONNX Runtime's CUDA execution provider on the GPU of this index (`cuda`, `cuda:1`):
    /// needs the runtime of the `onnxruntime-gpu` wheel and CUDA's libraries (cuDNN, cuBLAS)
    /// where the system's loader finds them. Convolution algorithms are chosen by cuDNN's
    /// heuristics (not by timing, which could choose differently from run to run) and TF32
    /// is off, so a face is the same bytes on every run on the same GPU and libraries.
    Cuda(u32),
    /// The first CUDA GPU when the runtime and the machine have one, else the CPU: the
    /// bytes then depend on what is installed ([`RestoredFaces::device`] says which ran).
    Auto,
}

impl std::str::FromStr for FaceDevice {
    type Err = Error;
    fn from_str(s: &str) -> Result<FaceDevice> {
        let bad = || Error::usage(format!("--face-device {s:?}: give cpu, cuda, cuda:N (N the GPU's index) or auto"));
        match s {
            "cpu" => Ok(FaceDevice::Cpu),
            "cuda" => Ok(FaceDevice::Cuda(0)),
            "auto" => Ok(FaceDevice::Auto),
            _ => s.strip_prefix("cuda:").and_then(|n| n.parse().ok()).map(FaceDevice::Cuda).ok_or_else(bad),
        }
    }
}

impl std::fmt::Display for FaceDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaceDevice::Cpu => f.write_str("cpu"),
            FaceDevice::Cuda(n) => write!(f, "cuda:{n}"),
            FaceDevice::Auto => f.write_str("auto"),
        }
    }
}

impl RestoreOptions {
    /// Restoration by `model` with CodeFormer's usual fidelity (0.5).
    pub fn new(model: impl Into<PathBuf>) -> RestoreOptions {
        RestoreOptions {
            model: model.into(),
            fidelity: 0.5,
            runtime: None,
            threshold: 0.8,
            face_threads: 1,
            device: FaceDevice::Cpu,
        }
    }

    /// Checks the options before any work starts.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.fidelity) {
            return Err(Error::usage(format!("--face-fidelity {} must lie between 0 and 1", self.fidelity)));
        }
        if !(1..=256).contains(&self.face_threads) {
            return Err(Error::usage(format!("--face-threads {} must lie between 1 and 256", self.face_threads)));
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
    /// Where the restorer ran (`auto` resolved to the device its session opened on).
    pub device: FaceDevice,
}

impl RestoredFaces {
    /// Lets go of the faces that reach no output row at or below `row` (the tile stage
    /// calls it as each band of tiles is written).
    pub fn release_above(&self, row: u32) {
        for face in self.placed.iter().filter(|f| f.reach()[3] <= row) {
            face.release();
        }
    }

    /// Faces restored (those found whose landmarks gave an alignment).
    pub fn restored(&self) -> usize {
        self.placed.len()
    }

    /// The faces larger than 512 px in the output, each with its restored pixels (512x512
    /// interleaved 8-bit RGB): a job with a model enlarges them by it ([`Self::enlarge`]).
    pub(crate) fn large(&self) -> Vec<(usize, std::sync::Arc<Vec<u8>>)> {
        let held = |(i, f): (usize, &PlacedFace)| f.pixels().map(|p| (i, p));
        self.placed.iter().enumerate().filter(|(_, f)| f.is_large()).filter_map(held).collect()
    }

    /// Replaces face `i` by the same face enlarged `zoom` times (`512·zoom` pixels square).
    pub(crate) fn enlarge(&mut self, i: usize, face: Vec<u8>, zoom: u32) {
        self.placed[i].enlarged(face, zoom);
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
    let start = resident_now();
    let detect = DetectOptions { threshold: opts.threshold, ..detect.clone() };
    let source = crate::source::open(input, detect.max_memory)?;
    let (found, store, info) = super::detect::detect_keeping_store(source, &detect, &mut |_, _| {})?;
    // Each face's crop and restored face (768 KiB each) are held together for a moment: a
    // crowd whose faces would take over half the budget is refused before any is made.
    let held = found.faces.len() as u64 * 2 * (FACE_EDGE * FACE_EDGE * 3) as u64;
    if held > detect.max_memory / 2 {
        let hint = format!("{} faces; raise --max-memory", found.faces.len());
        return Err(Error::limit("aligned and restored faces", held, detect.max_memory / 2, Some(hint)));
    }
    let aligned: Vec<(Similarity, Vec<u8>)> =
        found.faces.iter().filter_map(|f| alignment(&f.landmarks)).map(|a| (a, crop(&store, &info, &a))).collect();
    drop(store);
    let t1 = Instant::now();
    let threads =
        if detect.threads > 0 { detect.threads } else { std::thread::available_parallelism().map_or(1, |n| n.get()) };
    progress(0, aligned.len());
    let (restored, sessions, device) = restore_all(opts, &aligned, (threads, detect.max_memory, start), progress)?;
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
        device,
    })
}

/// Restores every crop; same order as `aligned`. The first face runs on one session while
/// the process's peak memory is measured (ONNX Runtime plans its own memory); the others run
/// in parallel on as many more sessions as `threads` and the budget hold.
#[cfg(feature = "onnx")]
fn restore_all(
    opts: &RestoreOptions,
    aligned: &[(Similarity, Vec<u8>)],
    (threads, budget, start): (usize, u64, u64),
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<Vec<u8>>, usize, FaceDevice)> {
    use super::restorer::Restorer;
    let total = aligned.len();
    let file = std::fs::metadata(&opts.model).map_err(|e| Error::io(&opts.model, e))?.len();
    // The job's memory from its start (`start`: other jobs of a server are not ours): what is
    // still held (`fixed`: crops and faces), plus each session's growth, measured.
    let pre = memory::resident().unwrap_or(start);
    let fixed = pre.saturating_sub(start);
    // ONNX Runtime holds the weights about twice while it loads them.
    if fixed + 2 * file > budget {
        return Err(restorer_limit(&opts.model, fixed + 2 * file, budget, "its weights, twice"));
    }
    let mut restorer = Restorer::load(&opts.model, opts.runtime.as_deref(), opts.face_threads, opts.device)?;
    let device = restorer.device();
    let Some(((_, first), rest)) = aligned.split_first() else { return Ok((Vec::new(), 1, device)) };
    memory::reset_peak();
    let mut faces = vec![restorer.restore(0, first, opts.fidelity)?];
    progress(1, total);
    let one = memory::peak().map_or(4 * file, |p| p.saturating_sub(pre));
    if fixed + one > budget {
        return Err(restorer_limit(&opts.model, fixed + one, budget, "one session, measured"));
    }
    let fit = ((budget - fixed) / one.max(1)) as usize;
    // One GPU runs one face at a time: more sessions would only hold more of its memory.
    let parallel = if device == FaceDevice::Cpu { threads / opts.face_threads } else { 1 };
    restorer.grow(parallel.min(rest.len()).min(fit).max(1))?;
    faces.extend(restore_parallel(&restorer, opts.fidelity, rest, &mut |n| progress(n + 1, total))?);
    Ok((faces, restorer.sessions(), device))
}

#[cfg(feature = "onnx")]
fn restorer_limit(model: &Path, needed: u64, budget: u64, what: &str) -> Error {
    let hint = format!("give --max-memory {} MiB or more", needed.div_ceil(1 << 20));
    Error::limit(format!("face restorer {} ({what})", model.display()), needed, budget, Some(hint))
}

/// Restores `crops` on the restorer's sessions, one thread each; `progress(done)`.
#[cfg(feature = "onnx")]
fn restore_parallel(
    restorer: &super::restorer::Restorer,
    fidelity: f32,
    crops: &[(Similarity, Vec<u8>)],
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<u8>>> {
    use rayon::prelude::*;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(restorer.sessions())
        .build()
        .map_err(|e| Error::Internal(format!("restorer threads: {e}")))?;
    let (tx, rx) = crossbeam_channel::unbounded();
    let pool = &pool;
    std::thread::scope(|s| {
        // The sender moves into the work: the progress loop ends when it does, even early.
        let work = s.spawn(move || {
            pool.install(|| {
                crops
                    .par_iter()
                    .map(|(_, c)| {
                        let worker = rayon::current_thread_index().unwrap_or(0);
                        let r = restorer.restore(worker, c, fidelity);
                        let _ = tx.send(());
                        r
                    })
                    .collect::<Result<Vec<_>>>()
            })
        });
        // One message per face restored: the count is the messages received.
        for (n, ()) in rx.iter().enumerate() {
            progress(n + 1);
        }
        work.join().map_err(|_| Error::Internal("a restorer thread panicked".into()))?
    })
}

/// The process's resident memory, from Linux's `/proc/self/status` (`None` elsewhere).
#[cfg(feature = "onnx")]
mod memory {
    fn field(name: &str) -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    }
    /// Resident bytes now.
    pub(super) fn resident() -> Option<u64> {
        field("VmRSS:")
    }
    /// The peak resident bytes since [`reset_peak`].
    pub(super) fn peak() -> Option<u64> {
        field("VmHWM:")
    }
    /// Restarts the peak from the resident bytes now (`clear_refs` 5).
    pub(super) fn reset_peak() {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
}

/// The process's resident bytes now (0 where unknown).
fn resident_now() -> u64 {
    #[cfg(feature = "onnx")]
    return memory::resident().unwrap_or(0);
    #[cfg(not(feature = "onnx"))]
    0
}

#[cfg(not(feature = "onnx"))]
fn restore_all(
    _: &RestoreOptions,
    _: &[(Similarity, Vec<u8>)],
    _: (usize, u64, u64),
    _: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<Vec<u8>>, usize, FaceDevice)> {
    Err(Error::usage(
        "--faces needs face restoration, which this gigascale was built without: \
         build it with `--features onnx` (a default feature)",
    ))
}
