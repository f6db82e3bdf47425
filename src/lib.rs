//! # gigascale
//!
//! Upscale (or downscale) images to gigapixel size with a hard memory bound. The output is
//! never held whole: the source is decoded into a memory-mapped store, the output is cut into
//! tiles, each tile reads only its source window (exact rectangle plus the kernel halo),
//! workers resample tiles in parallel and one writer appends them to a tiled (Big)TIFF or a
//! streamed PNG.
//!
//! ```text
//! Source (JPEG, PNG, TIFF) -> Store (mmap) -> Plan (tiles + halo) -> Backend (CPU or GPU) -> Sink (TIFF/PNG)
//! ```
//!
//! ```no_run
//! use gigascale::{upscale, Files, Options, Size};
//! let mut opts = Options::new(Size::Scale { x: 15.0, y: 15.0 });
//! opts.max_memory = 64 << 20;
//! let report = upscale("photo.jpg".as_ref(), "big.tif".as_ref(), &opts, Files::default(), &mut |_event| {})?;
//! println!("{} bytes in {:.1} s", report.bytes, report.seconds);
//! # Ok::<(), gigascale::Error>(())
//! ```

#![deny(missing_docs)]

// Where each stage lives (docs/how-it-works.md walks through them):
//   source/      decoders: a file's rows into the store           (RowSource, RowWriter)
//   store.rs     the memory-mapped scratch store of source rows    (Store, Rows)
//   plan.rs      geometry and tiles; kernel/ its coefficient tables (Geometry, Plan, TileJob)
//   budget.rs    the budget and the memory plan                    (plan_memory, MemoryPlan)
//   backend.rs   choosing and opening CPU/GPU; the GPU thread
//   resample/    the CPU backend; gpu/ the wgpu backend and shaders/
//   exec/        the tile stage: ring.rs, workers.rs, writer.rs
//   sink/        TIFF and PNG writers, compression, the resume journal
//   neural/      ncnn models: loader, validation, graph (the neural engine's first part)
//   job.rs       a job's stages in order: Job::prepare, execute, run()
//   upscale.rs   files: upscale(), clobbering, --resume
mod backend;
pub mod budget;
mod error;
mod exec;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "gpu")]
pub mod gpu;
mod job;
pub mod kernel;
pub mod neural;
mod options;
mod pixel;
mod plan;
mod progress;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod resample;
#[cfg(not(feature = "testing"))]
mod resample;
#[cfg(feature = "serve")]
pub mod serve;
pub mod sink;
pub mod source;
mod store;
mod upscale;
pub mod zarr;

pub use budget::{plan_memory, MemoryPlan, Needs};
pub use error::{Error, Result};
pub use job::{decode_into_store, run, Job, Report};
pub use kernel::fixed::Intermediate;
pub use kernel::{AxisCoeffs, Filter};
pub use neural::{Border, Model};
#[cfg(feature = "testing")]
#[doc(hidden)]
pub use options::Hooks;
pub use options::{Backend, Options, Size, DEFAULT_MAX_PIXELS};
pub use pixel::{Channels, Depth, Format, ImageInfo, Layout};
pub use plan::{Geometry, Plan, Rect, TileJob};
pub use progress::{Event, StageTimes};
pub use sink::Compression;
pub use store::{Rows, Store};
pub use upscale::{check_output, upscale, Files, OutputKind};
