//! Job options, validated before any thread starts or any file is created.

use crate::error::{Error, Result};
use crate::kernel::Filter;
use crate::sink::Compression;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Which backend computes tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[non_exhaustive]
pub enum Backend {
    /// A hardware GPU when one with 64-bit integer shaders exists (and the crate was built with
    /// the `gpu` feature) working side by side with the CPU workers (whoever is free takes the
    /// next tile), else the CPU alone.
    #[default]
    Auto,
    /// A GPU adapter computes every tile, software ones (e.g. lavapipe) included; an error if
    /// none is usable. (The CPU still compresses, and takes over if the GPU fails mid-job.)
    Gpu,
    /// The CPU workers.
    Cpu,
}

impl Backend {
    /// CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Gpu => "gpu",
            Backend::Cpu => "cpu",
        }
    }
}

/// Why f16 is restricted to one GPU computing every tile of one run.
pub(crate) const F16_WHY: &str = "the f16 intermediate is computed by the GPU alone and its \
rounding is the device's (WGSL leaves f32-to-f16 rounding and f32 division accuracy to the \
implementation), so no other backend, device or earlier run can be trusted to produce the same \
bytes; tiles from different sources would be stitched together";

/// Fault-injection hooks for the tests; all off by default, and always off without the
/// `testing` feature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[doc(hidden)]
pub struct Hooks {
    /// Make the GPU fail after this many tiles, to exercise the CPU fallback.
    pub gpu_fail_after: Option<u64>,
    /// Share tiles between GPU and CPU workers (as `Auto` does) under `Backend::Gpu`, so that
    /// the shared mode can be tested on a software adapter.
    pub gpu_share: bool,
    /// Kill the process (SIGKILL) right after this many tiles are durable, to test crash
    /// safety at a deterministic point (CLI: `GIGASCALE_TEST_KILL_AFTER_TILES`).
    pub kill_after_tiles: Option<u64>,
}

/// Default `--max-pixels`: 4 gigapixels of input (a 65536x65536 image), far above any photo.
pub const DEFAULT_MAX_PIXELS: u64 = 1 << 32;

/// How the output size is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    /// Scale factors per axis (> 0). Output = round(input × factor), at least 1.
    Scale {
        /// Horizontal factor.
        x: f64,
        /// Vertical factor.
        y: f64,
    },
    /// Target dimensions; a missing one follows the aspect ratio.
    Dimensions {
        /// Output width.
        width: Option<u32>,
        /// Output height.
        height: Option<u32>,
    },
}

/// Everything a job needs besides its input and output.
///
/// ```
/// use gigascale::{Options, Size};
/// let o = Options::new(Size::Scale { x: 15.0, y: 15.0 });
/// assert_eq!(o.output_size(2000, 3000).unwrap(), (30000, 45000));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Output size.
    pub size: Size,
    /// Resampling filter.
    pub filter: Filter,
    /// What the value between the two passes keeps (every backend computes the same bytes).
    pub intermediate: crate::Intermediate,
    /// Memory budget in bytes for everything the job allocates.
    pub max_memory: u64,
    /// Output tile edge (multiple of 16).
    pub tile: u32,
    /// TIFF compression.
    pub compression: Compression,
    /// Compression level (codec default when `None`).
    pub level: Option<i32>,
    /// TIFF output: add reduced-resolution levels (each half the one before, rounded up, until
    /// one fits in a tile), computed while level 0 streams out.
    pub pyramid: bool,
    /// OME-Zarr output: shard edge in pixels, `tile` times a power of two (0: 16 tiles).
    pub shard: u32,
    /// Worker threads; 0 means one per CPU.
    pub threads: usize,
    /// Where the scanline store goes; the system temp dir when `None`.
    pub temp_dir: Option<PathBuf>,
    /// Set to stop the job early (it then fails with `Error::Interrupted`).
    pub cancel: Option<Arc<AtomicBool>>,
    /// Which backend computes tiles.
    pub backend: Backend,
    /// Cap on device memory for the GPU backend (`None`: the adapter's limits).
    pub gpu_memory: Option<u64>,
    /// GPU only: keep the intermediate in half precision (needs `SHADER_F16`). Halves the
    /// largest device buffer; output within 1 LSB (8-bit) of the exact result instead of equal.
    /// Its bytes are the device's own, so it requires [`Backend::Gpu`], refuses `resume`, and
    /// a GPU failure mid-job fails the job instead of falling back to the CPU.
    pub gpu_f16: bool,
    /// Refuse inputs with more pixels than this (0: no limit).
    pub max_pixels: u64,
    /// A learned model run before the resampler (`None`: resampling only). The model
    /// enlarges by its scale, [`Options::model_passes`] times; the resampler with
    /// [`Options::filter`] then takes the result to the requested size, down as well as up.
    pub model: Option<Arc<crate::Model>>,
    /// Passes of the model (at least 1; a x2 model twice is x4).
    pub model_passes: u32,
    /// Fault-injection hooks for the tests (feature `testing`).
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub hooks: Hooks,
}

impl Options {
    /// Defaults: lanczos3, budget from physical RAM, 256-pixel tiles, no compression.
    pub fn new(size: Size) -> Options {
        Options {
            size,
            filter: Filter::Lanczos3,
            intermediate: crate::Intermediate::Exact,
            max_memory: crate::budget::default_budget(),
            tile: 256,
            compression: Compression::None,
            level: None,
            pyramid: false,
            shard: 0,
            threads: 0,
            temp_dir: None,
            cancel: None,
            backend: Backend::Auto,
            gpu_memory: None,
            gpu_f16: false,
            max_pixels: DEFAULT_MAX_PIXELS,
            model: None,
            model_passes: 1,
            #[cfg(feature = "testing")]
            hooks: Hooks::default(),
        }
    }

    /// Checks the options on their own (no files involved).
    pub fn validate(&self) -> Result<()> {
        match self.size {
            Size::Scale { x, y } => {
                for (n, v) in [("x", x), ("y", y)] {
                    if !(v.is_finite() && v > 0.0) {
                        return Err(Error::usage(format!("scale {n} = {v}: must be a finite number > 0")));
                    }
                }
            }
            Size::Dimensions { width, height } => {
                if width.is_none() && height.is_none() {
                    return Err(Error::usage("give --scale, --width or --height"));
                }
                if width == Some(0) || height == Some(0) {
                    return Err(Error::usage("--width and --height must be at least 1"));
                }
            }
        }
        if self.tile < 16 || !self.tile.is_multiple_of(16) || self.tile > 8192 {
            return Err(Error::usage(format!("--tile {}: must be a multiple of 16 between 16 and 8192", self.tile)));
        }
        if let (Some(l), Some((lo, hi))) = (self.level, self.compression.level_range()) {
            if l < lo || l > hi {
                return Err(Error::usage(format!("--level {l}: {} takes {lo}..={hi}", self.compression.name())));
            }
        } else if self.level.is_some() && self.compression.level_range().is_none() {
            return Err(Error::usage(format!("--level has no meaning for --compression {}", self.compression.name())));
        }
        if self.gpu_f16 && self.backend != Backend::Gpu {
            return Err(Error::usage(format!(
                "--precision f16 needs --backend gpu (not {}): {F16_WHY}",
                self.backend.name()
            )));
        }
        if self.gpu_f16 && self.intermediate == crate::Intermediate::Rounded {
            return Err(Error::usage("the f16 GPU intermediate and the rounded intermediate exclude each other"));
        }
        if self.gpu_memory.is_some_and(|g| g < (1 << 20)) {
            return Err(Error::usage("--gpu-memory must be at least 1M"));
        }
        if self.max_memory < (1 << 20) {
            return Err(Error::usage("--max-memory must be at least 1M"));
        }
        if !(1..=8).contains(&self.model_passes) {
            return Err(Error::usage(format!("--model-passes {}: must be between 1 and 8", self.model_passes)));
        }
        if self.model.is_none() && self.model_passes != 1 {
            return Err(Error::usage("--model-passes needs --model"));
        }
        if self.model.is_some() && self.gpu_f16 {
            return Err(Error::usage("--precision f16 applies to resampling alone, not to jobs with --model"));
        }
        Ok(())
    }

    /// The size the model's passes make of a `w x h` input (the input's own size without a
    /// model): the resampler's input.
    pub fn model_size(&self, w: u32, h: u32) -> Result<(u32, u32)> {
        let Some(m) = &self.model else { return Ok((w, h)) };
        let f = (m.scale() as u64).checked_pow(self.model_passes).unwrap_or(u64::MAX);
        let (mw, mh) = (w as u64 * f, h as u64 * f);
        if mw > u32::MAX as u64 || mh > u32::MAX as u64 {
            return Err(Error::usage(format!(
                "{w}x{h} through {} pass(es) of x{} is {mw}x{mh}: too large",
                self.model_passes,
                m.scale()
            )));
        }
        Ok((mw as u32, mh as u32))
    }

    /// The output size for an input of `w x h`.
    pub fn output_size(&self, w: u32, h: u32) -> Result<(u32, u32)> {
        let r = |v: f64| -> Result<u32> {
            let v = v.round().max(1.0);
            if v > u32::MAX as f64 {
                return Err(Error::usage(format!("output dimension {v} is too large")));
            }
            Ok(v as u32)
        };
        match self.size {
            Size::Scale { x, y } => Ok((r(w as f64 * x)?, r(h as f64 * y)?)),
            Size::Dimensions { width: Some(ow), height: Some(oh) } => Ok((ow, oh)),
            Size::Dimensions { width: Some(ow), height: None } => Ok((ow, r(h as f64 * ow as f64 / w as f64)?)),
            Size::Dimensions { width: None, height: Some(oh) } => Ok((r(w as f64 * oh as f64 / h as f64)?, oh)),
            Size::Dimensions { .. } => Err(Error::usage("give --scale, --width or --height")),
        }
    }

    /// The fault-injection hooks in force (none without the `testing` feature).
    pub(crate) fn hooks(&self) -> Hooks {
        #[cfg(feature = "testing")]
        return self.hooks;
        #[cfg(not(feature = "testing"))]
        Hooks::default()
    }

    /// Worker threads after resolving 0 to the CPU count.
    pub fn resolved_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        }
    }
}
