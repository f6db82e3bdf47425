//! Sinks: where finished tiles go. The executor pushes tiles in row-major order to one
//! [`TileSink`] on the writer thread; each worker first runs the sink's [`TileEncoder`]
//! (compression) on its own tile, so compression is parallel while writing stays ordered.

mod compress;
mod ifd;
pub(crate) mod journal;
pub mod jpeg;
mod jpeg_encoder;
mod lzw;
mod memory;
mod output;
pub mod place;
mod png;
mod pyramid;
mod tiff;
mod vp8;
mod vp8_dsp;
mod vp8_mb;
mod vp8_tables;
mod vp8l;
pub mod webp;
pub mod webp_lossy;

pub use compress::{Compression, TileEncoder};
pub use jpeg::{JpegSink, Subsampling};
pub use memory::MemorySink;
pub(crate) use output::OutputFile;
pub use place::OutputKind;
pub use png::{PngSink, PNG_LEVELS};
pub use pyramid::reduce;
pub(crate) use pyramid::{reduced_bytes, tile_reduction_bound, ReducingEncoder};
pub use tiff::TiffSink;
pub use webp::WebpSink;
pub use webp_lossy::WebpLossySink;

use crate::error::Result;
use crate::pixel::Layout;
use crate::plan::TileJob;

/// What every sink learns before the first tile.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SinkHeader {
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// Tile edge; tile buffers are `tile x tile` pixels.
    pub tile: u32,
    /// Pixel layout; 16-bit samples arrive little-endian.
    pub layout: Layout,
    /// ICC profile to embed.
    pub icc_profile: Option<Vec<u8>>,
    /// Resolution (already the output's), EXIF and XMP to embed where the format can.
    pub metadata: crate::pixel::Metadata,
}

/// A consumer of finished tiles (push model).
///
/// # Contract
///
/// The executor calls, from one thread (the writer's), in this order:
/// 1. [`memory`](TileSink::memory) (while planning, before anything else; it must not fail);
/// 2. [`begin`](TileSink::begin) once, then [`resume_point`](TileSink::resume_point);
/// 3. [`encoder`](TileSink::encoder) once per worker; each encoder then runs on its worker's
///    thread, on that worker's tiles only;
/// 4. [`write_tile`](TileSink::write_tile) for every tile from the resume point on, in
///    the plan's tile order (row-major, or grouped as [`groups`](TileSink::groups) asks), with
///    what the encoder made of it;
///    [`checkpoint`](TileSink::checkpoint) between tiles, about once a second;
/// 5. [`finish`](TileSink::finish) once, after the last tile.
///
/// On any error (the sink's, a worker's, a cancel) the sequence stops where it is and the sink
/// is dropped: a sink that writes a file must remove (or, for resume, keep) its partial output
/// in `Drop`. Calls out of this order must return an error, never panic.
///
/// ```
/// use gigascale::sink::{SinkHeader, TileSink, TileEncoder};
/// use gigascale::TileJob;
/// /// Sums every sample: a sink that never touches the disk.
/// struct Checksum(u64);
/// impl TileSink for Checksum {
///     fn begin(&mut self, _h: &SinkHeader) -> gigascale::Result<()> { Ok(()) }
///     fn encoder(&self) -> gigascale::Result<Box<dyn TileEncoder>> { Ok(Box::new(gigascale::sink::Raw)) }
///     fn write_tile(&mut self, _job: &TileJob, data: &[u8]) -> gigascale::Result<()> {
///         self.0 += data.iter().map(|&b| b as u64).sum::<u64>();
///         Ok(())
///     }
///     fn finish(&mut self) -> gigascale::Result<u64> { Ok(0) }
/// }
/// ```
pub trait TileSink: Send {
    /// Called once before any tile.
    fn begin(&mut self, header: &SinkHeader) -> Result<()>;
    /// A fresh encoder for one worker thread (after `begin`).
    fn encoder(&self) -> Result<Box<dyn TileEncoder>>;
    /// Receives tile `job` as produced by the encoder, in row-major order.
    fn write_tile(&mut self, job: &TileJob, data: &[u8]) -> Result<()>;
    /// Completes the output; returns the bytes written.
    fn finish(&mut self) -> Result<u64>;
    /// Bytes the sink's encoder may append to a tile beyond its compressed bound (e.g. the
    /// tile's reduction for a pyramid), for the budget.
    fn tile_overhead(&self, _header: &SinkHeader) -> usize {
        0
    }
    /// Extra memory the sink holds (row buffers, tables), for the budget.
    fn memory(&self, _header: &SinkHeader) -> u64 {
        0
    }
    /// The tile order this sink wants, as [`crate::Plan::with_groups`] takes it: bands of
    /// `rows` rows of tiles cut into groups `cols` tiles wide (a sharded output's shards), or
    /// `None` for row-major order.
    fn groups(&self, _header: &SinkHeader) -> Option<(u32, u32)> {
        None
    }
    /// Tiles already durable from an interrupted run (known after `begin`); the job starts
    /// with the next one.
    fn resume_point(&self) -> u64 {
        0
    }
    /// Makes the tiles written so far durable and records them (called every second or so).
    fn checkpoint(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The error for a [`TileSink`] method called out of the order its contract gives.
pub(crate) fn out_of_order(call: &str, sink: &str) -> crate::error::Error {
    crate::error::Error::usage(format!("{sink}: {call} called out of order (see the TileSink contract)"))
}

/// The identity encoder: tiles pass through uncompressed.
pub struct Raw;

impl TileEncoder for Raw {
    fn encode(&mut self, _job: &TileJob, raw: &mut [u8], out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        out.extend_from_slice(raw);
        Ok(())
    }
    fn passthrough(&self) -> bool {
        true
    }
}
