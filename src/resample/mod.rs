//! The CPU backend. `native.rs` is the scalar reference implementation of the fixed-point
//! contract in `kernel/fixed.rs`; every other backend must reproduce it bit for bit:
//! `fast8.rs` (8-bit without alpha, 32-bit integers, baseline and AVX2 builds) and the GPU.

pub mod fast8;
pub mod native;

use crate::plan::{Geometry, Plan, TileJob};
pub use crate::store::Rows;

/// Reusable per-worker buffers.
#[derive(Default)]
pub struct Scratch {
    pub(crate) samples: Vec<i64>,
    pub(crate) inter: Vec<i32>,
    pub(crate) acc: Vec<i64>,
    pub(crate) acc32: Vec<i32>,
    pub(crate) bytes: Vec<u8>,
}

impl Scratch {
    /// Bytes a worker's scratch needs for the largest window of a job of this geometry (an
    /// upper bound, from [`Geometry::window_bound`]).
    pub fn bytes_for(geom: &Geometry) -> u64 {
        let (ww, wh) = geom.window_bound(1, 1);
        let tile = geom.tile as u64;
        let ch = geom.layout.channels.count() as u64;
        // samples of one window row; the intermediate (window height x tile, or tile x window
        // width when the vertical pass comes first); one row (or column) of accumulators.
        // a column-major copy of the tile (fast8, vertical pass first).
        ww * ch * 8 + ww.max(wh) * tile * ch * 4 + tile.max(ww) * ch * 8 + tile * tile * ch
    }
}

/// Computes one output tile on the CPU into `out`, a full `tile x tile` buffer of samples
/// (little-endian for 16-bit); pixels outside the image are zero.
pub fn resample_tile(plan: &Plan, src: &dyn Rows, job: &TileJob, scratch: &mut Scratch, out: &mut [u8]) {
    if fast8::supports(plan) {
        fast8::resample_tile(plan, src, job, scratch, out)
    } else {
        native::resample_tile(plan, src, job, scratch, out)
    }
}
