//! # gigascale
//!
//! Upscale (or downscale) images to gigapixel size with a hard memory bound. The output is
//! never held whole: the source is decoded into a memory-mapped store, the output is cut into
//! tiles, each tile reads only its source window (exact rectangle plus the kernel halo),
//! workers resample tiles in parallel and one writer appends them to a tiled (Big)TIFF, a
//! streamed PNG or a sharded OME-Zarr.
//!
//! ```text
//! Source (JPEG, PNG, TIFF) -> Store (mmap) -> [model passes] -> Plan (tiles + halo)
//!   -> tile stage (CPU workers, GPU device) -> Sink (TIFF / PNG / OME-Zarr)
//! ```
//!
//! Options come from a [`Request`] (names and size notation, as a command line or a server
//! holds them: the one conversion to validated [`Options`]) or are set on [`Options`]
//! directly:
//!
//! ```no_run
//! use gigascale::{upscale, Files, Request};
//! let opts = Request::default().scale(15.0).max_memory("64M").options()?;
//! let report = upscale("photo.jpg".as_ref(), "big.tif".as_ref(), &opts, Files::default(), &mut |_event| {})?;
//! println!("{} bytes in {:.1} s", report.bytes, report.seconds);
//! # Ok::<(), gigascale::Error>(())
//! ```
//!
//! [`upscale`] handles files; [`run`] takes any [`source::RowSource`] and [`sink::TileSink`];
//! [`zarr::units`] cuts a job into units for many processes; [`serve`] (feature `serve`) is
//! the web server. docs/how-it-works.md walks through the stages.

#![deny(missing_docs)]
#![deny(unreachable_pub)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

// The modules in layers, bottom to top: a module uses only modules of lower layers (and
// files inside its own folder, which have no import loops among them). tests/layers.rs reads
// the sources and checks both; docs/how-it-works.md draws the picture.
//
//   errors      error          (typed errors with data)
//   words       pixel, limits, progress, digest, exif   (layouts, limits, events, fingerprints, EXIF)
//   filters     kernel         (filters, coefficient tables, the fixed-point contract)
//   geometry    plan           (tiles and their source windows)
//   storage     store          (the memory-mapped source rows)
//   ffi         libjpeg        (libjpeg's strict error manager, for the JPEG decoder and encoder)
//   cpu         resample       (the CPU backend; native.rs is the reference)
//   memory      budget         (the memory plan)
//   codecs      source, sink   (decoders; TIFF/PNG writers, compression, where outputs go)
//   network     neural, faces  (ncnn models: loader, engine, the neural stage; face detection)
//   options     options        (Options, Request: the one conversion from user input)
//   executor    exec           (the tile stage; devices plug in through exec::device)
//   devices     gpu            (wgpu: a tile device and a network device)
//   choice      backend        (which devices a job uses)
//   assembly    job            (a job's stages; run_file, the one job assembly)
//   zarr        zarr           (the OME-Zarr sink, and units: plan / run / finalize)
//   files       upscale        (files in, files out)
//   folders     batch          (whole folders of files)
//   fronts      serve, fuzzing (the HTTP server and the fuzz harness: the public API only)
mod backend;
pub mod batch;
pub mod budget;
pub mod digest;
mod error;
mod exec;
mod exif;
pub mod faces;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "gpu")]
pub mod gpu;
mod job;
pub mod kernel;
mod libjpeg;
pub mod limits;
pub mod neural;
mod options;
mod pixel;
mod plan;
mod progress;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod resample;
#[cfg(not(feature = "testing"))]
#[allow(unreachable_pub)] // public to the tests and benches only (feature `testing`)
mod resample;
#[cfg(feature = "serve")]
pub mod serve;
pub mod sink;
pub mod source;
mod store;
mod upscale;
pub mod zarr;

pub use batch::{upscale_dir, Batch, BatchReport};
pub use budget::{plan_memory, MemoryPlan, Needs};
pub use error::{Error, Result};
pub use job::{decode_into_store, run, run_file, Job, Report};
pub use kernel::fixed::Intermediate;
pub use kernel::{AxisCoeffs, Filter};
pub use limits::{format_size, parse_size, Limits, DEFAULT_MAX_PIXELS};
pub use neural::{Border, Model};
#[cfg(feature = "testing")]
#[doc(hidden)]
pub use options::Hooks;
pub use options::{Backend, Options, Request, Size, PRECISIONS};
pub use pixel::{Channels, Depth, Format, ImageInfo, Layout, Metadata};
pub use plan::{Geometry, Plan, Rect, TileJob};
pub use progress::{Event, StageTimes};
pub use sink::{Compression, OutputKind};
pub use store::{Rows, Store};
pub use upscale::{remove_partial, upscale, Files};
