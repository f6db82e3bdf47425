//! Job options, validated before any thread starts or any file is created: [`Options`] (what
//! the library runs), and [`Request`] (what front ends hold — command-line arguments, a unit
//! plan's record, a server's job request — and the one conversion from it to [`Options`]).

mod request;

use crate::error::{Error, Result};
use crate::kernel::Filter;
use crate::limits::Limits;
use crate::sink::Compression;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub use request::{Request, PRECISIONS};

/// Which backend computes tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
    /// Every backend, in the command line's order.
    pub const ALL: [Backend; 3] = [Backend::Auto, Backend::Gpu, Backend::Cpu];

    /// The command line's name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Gpu => "gpu",
            Backend::Cpu => "cpu",
        }
    }

    /// Parses a name ([`Backend::name`]).
    pub fn from_name(s: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.name() == s)
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
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))] // public to the tests only
pub struct Hooks {
    /// Make the GPU fail after this many tiles, to exercise the CPU fallback.
    pub gpu_fail_after: Option<u64>,
    /// Share tiles between GPU and CPU workers (as `Auto` does) under `Backend::Gpu`, so that
    /// the shared mode can be tested on a software adapter.
    pub gpu_share: bool,
    /// Kill the process (SIGKILL) right after this many tiles are durable, to test crash
    /// safety at a deterministic point (CLI: `GIGASCALE_TEST_KILL_AFTER_TILES`).
    pub kill_after_tiles: Option<u64>,
    /// Open the network's GPU with its largest buffer and binding lowered to this many bytes,
    /// as a smaller adapter's are (CLI: `GIGASCALE_TEST_GPU_MAX_BUFFER`).
    pub gpu_max_buffer: Option<u64>,
}

/// How the output size is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
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
/// Made from values of the library's own types, or from a [`Request`] (names and size
/// notation, as a front end holds them):
///
/// ```
/// use gigascale::{Filter, Options, Request, Size};
/// let mut o = Options::new(Size::Scale { x: 15.0, y: 15.0 });
/// o.filter = Filter::Bicubic;
/// o.limits.max_memory = 64 << 20;
/// assert_eq!(o.output_size(2000, 3000).unwrap(), (30000, 45000));
/// let r = Request::default().scale(15.0).filter("bicubic").max_memory("64M").options()?;
/// assert_eq!((r.size, r.filter, r.limits.max_memory), (o.size, o.filter, o.limits.max_memory));
/// # Ok::<(), gigascale::Error>(())
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
    /// What the job may allocate (memory, GPU memory) and accept (input pixels).
    pub limits: Limits,
    /// Output tile edge (multiple of 16).
    pub tile: u32,
    /// TIFF compression.
    pub compression: Compression,
    /// Compression level (codec default when `None`).
    pub level: Option<i32>,
    /// The output's resolution in pixels per inch (`None`: the input's, scaled with the image,
    /// so that the print size stays).
    pub dpi: Option<f64>,
    /// JPEG output: quality 1-100 ([`crate::sink::jpeg::DEFAULT_QUALITY`] when `None`).
    pub quality: Option<u8>,
    /// JPEG output: chroma subsampling (4:4:4 when `None`).
    pub subsampling: Option<crate::sink::Subsampling>,
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
    /// GPU only: keep the intermediate in half precision (needs `SHADER_F16`). Halves the
    /// largest device buffer; output within 1 LSB (8-bit) of the exact result instead of equal.
    /// Its bytes are the device's own, so it requires [`Backend::Gpu`], refuses `resume`, and
    /// a GPU failure mid-job fails the job instead of falling back to the CPU.
    pub gpu_f16: bool,
    /// A learned model run before the resampler (`None`: resampling only). The model
    /// enlarges by its scale, [`Options::model_passes`] times; the resampler with
    /// [`Options::filter`] then takes the result to the requested size, down as well as up.
    pub model: Option<Arc<crate::Model>>,
    /// Passes of the model (at least 1; a x2 model twice is x4).
    pub model_passes: u32,
    /// Face restoration (`--faces`): faces detected, restored and pasted into the output.
    pub faces: Option<crate::faces::RestoreOptions>,
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
            limits: Limits::default(),
            tile: 256,
            compression: Compression::None,
            level: None,
            quality: None,
            subsampling: None,
            dpi: None,
            pyramid: false,
            shard: 0,
            threads: 0,
            temp_dir: None,
            cancel: None,
            backend: Backend::Auto,
            gpu_f16: false,
            model: None,
            model_passes: 1,
            faces: None,
            #[cfg(feature = "testing")]
            hooks: Hooks::default(),
        }
    }

    /// Checks the options on their own (no files involved).
    pub fn validate(&self) -> Result<()> {
        if let Some(f) = &self.faces {
            f.validate()?;
        }
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
        } else if self.level.is_some()
            && self.compression != Compression::None
            && self.compression.level_range().is_none()
        {
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
        self.limits.validate()?;
        if self.threads > 4096 {
            return Err(Error::usage(format!("--threads {}: at most 4096", self.threads)));
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

    /// Refuses `--precision f16` for `what` (`"write OME-Zarr"`, say), whose bytes must not
    /// depend on which device or run computed them.
    pub fn refuse_f16(&self, what: &str) -> Result<()> {
        if self.gpu_f16 {
            return Err(Error::usage(format!("--precision f16 cannot {what}: {F16_WHY}")));
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
