//! OME-Zarr 0.5 output: a Zarr v3 group whose arrays (`0`, `1`, ... one per pyramid level)
//! are stored in shards (the `sharding_indexed` codec), each shard a separate file with exactly
//! one writer, so that many processes can write one image without talking to each other.
//!
//! ```text
//! OUT.ome.zarr/
//!   zarr.json                  group, attributes.ome: version 0.5, multiscales (axes c, y, x)
//!   0/zarr.json                level 0: shape [C, H, W], shards [C, S, S], inner chunks [C, T, T]
//!   0/c/0/{sy}/{sx}            one shard: zstd inner chunks in row-major order, then the index
//!   1/zarr.json, 1/c/0/...     level 1 (with --pyramid): same shard grid, shards S/2 wide
//! ```
//!
//! The group's `attributes.gigascale.plan` holds what every unit needs to compute its shards
//! (src/zarr/units.rs). `attributes.ome` is written last, by `finalize`, once every shard
//! exists: it is the completion marker, so OME-Zarr readers never open a partial image.
//!
//! Every level has the same grid of shards: level k's shards are `S >> k` pixels wide, so the
//! level-0 shard (sy, sx) and its reductions at every level are computed by one unit, and a
//! unit is a row of shards ([`ZarrLayout`]). Nothing in the output depends on time, on the
//! process count or on the order in which units run.

mod levels;
#[cfg(feature = "s3")]
mod s3;
mod shard;
mod sink;
mod target;
pub mod units;

pub use sink::ZarrSink;

use crate::error::{Error, Result};
use crate::pixel::{Depth, Layout};
use serde_json::{json, Value};
use std::sync::Arc;

/// Default shard edge, in tiles (inner chunks) of level 0.
pub const DEFAULT_SHARD_TILES: u32 = 16;

/// Smallest shard edge of a reduced level; the pyramid stops above it.
const MIN_LEVEL_SHARD: u32 = 16;

/// One array of the output: its size, shard edge and inner chunk edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LevelGeom {
    /// Width and height in pixels.
    pub size: (u32, u32),
    /// Shard edge in pixels.
    pub shard: u32,
    /// Inner chunk edge in pixels.
    pub chunk: u32,
}

/// The arrays of an OME-Zarr output and their shard grid.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ZarrLayout {
    /// Pixel layout (channels become the `c` axis).
    pub layout: Layout,
    /// Level 0 first, then each reduced level.
    pub levels: Vec<LevelGeom>,
    /// zstd level of the inner chunks.
    pub zstd_level: i32,
}

impl ZarrLayout {
    /// The layout of a `width x height` output with `tile`-pixel inner chunks and shards
    /// `shard` pixels wide (`tile` times a power of two), with reduced levels when `pyramid`.
    ///
    /// ```
    /// use gigascale::{Layout, Channels, Depth};
    /// use gigascale::zarr::ZarrLayout;
    /// let z = ZarrLayout::new((30000, 45000), Layout::new(Channels::Rgb, Depth::U8), 256, 4096, true, 3).unwrap();
    /// assert_eq!(z.shard_grid(), (8, 11));
    /// assert_eq!(z.levels[1].size, (15000, 22500));
    /// assert_eq!((z.levels[1].shard, z.levels[1].chunk), (2048, 256));
    /// assert_eq!(z.levels.last().unwrap().shard, 16); // stops before shards get smaller
    /// ```
    pub fn new(
        size: (u32, u32),
        layout: Layout,
        tile: u32,
        shard: u32,
        pyramid: bool,
        zstd_level: i32,
    ) -> Result<Self> {
        if tile == 0 || !tile.is_multiple_of(16) {
            return Err(Error::usage(format!("--tile {tile}: must be a positive multiple of 16")));
        }
        if !shard.is_multiple_of(tile) || !(shard / tile).is_power_of_two() {
            return Err(Error::usage(format!(
                "--shard {shard}: must be --tile ({tile}) times a power of two (e.g. {})",
                tile * DEFAULT_SHARD_TILES
            )));
        }
        let mut levels = vec![LevelGeom { size, shard, chunk: tile }];
        while let Some(&last) = levels.last().filter(|_| pyramid) {
            let k = levels.len() as u32;
            let fits = last.size.0 <= tile && last.size.1 <= tile;
            if fits || k >= 31 || !shard.is_multiple_of(1 << k) || shard >> k < MIN_LEVEL_SHARD {
                break;
            }
            let s = shard >> k;
            levels.push(LevelGeom {
                size: (last.size.0.div_ceil(2), last.size.1.div_ceil(2)),
                shard: s,
                chunk: s.min(tile),
            });
        }
        Ok(ZarrLayout { layout, levels, zstd_level })
    }

    /// Shards across and down (the same at every level).
    pub fn shard_grid(&self) -> (u32, u32) {
        let l = self.levels[0];
        (l.size.0.div_ceil(l.shard), l.size.1.div_ceil(l.shard))
    }

    /// The key of shard (`sx`, `sy`) of `level`, relative to the group.
    pub fn shard_key(level: usize, (sx, sy): (u32, u32)) -> String {
        format!("{level}/c/0/{sy}/{sx}")
    }

    /// The `zarr.json` of level `n`'s array, built and checked by zarrs.
    pub fn array_metadata(&self, n: usize) -> Result<Value> {
        use zarrs::array::codec::{BytesCodec, ZstdCodec};
        let l = self.levels[n];
        let c = self.layout.channels.count() as u64;
        let (w, h) = (l.size.0 as u64, l.size.1 as u64);
        let (dt, fill) = match self.layout.depth {
            Depth::U8 => (zarrs::array::data_type::uint8(), zarrs::array::FillValue::from(0u8)),
            Depth::U16 => (zarrs::array::data_type::uint16(), zarrs::array::FillValue::from(0u16)),
        };
        let shard = vec![c, l.shard as u64, l.shard as u64];
        let mut b = zarrs::array::ArrayBuilder::new(vec![c, h, w], shard, dt, fill);
        b.subchunk_shape(vec![c, l.chunk as u64, l.chunk as u64])
            .array_to_bytes_codec(Arc::new(BytesCodec::little()))
            .bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(self.zstd_level, false))])
            .dimension_names(Some(["c", "y", "x"]));
        let meta = b.build_metadata().map_err(|e| Error::Internal(format!("zarr array metadata: {e}")))?;
        serde_json::to_value(&meta).map_err(|e| Error::Internal(format!("zarr array metadata: {e}")))
    }

    /// The group's `zarr.json`: `gigascale` (the plan, and the completion record once complete)
    /// in its attributes, and, when `complete`, OME-Zarr 0.5 multiscales over the levels. Level
    /// k is the 2x2 mean of level k-1 repeated k times, so its pixel j covers level-0 pixels
    /// `2^k j .. 2^k (j+1)`: scale `2^k` and, pixel centres being at integers, translation
    /// `(2^k - 1) / 2` on y and x. With `pixel_um` (a level-0 pixel's height and width in
    /// micrometres, from the image's resolution) the space axes are in micrometres and both
    /// are multiplied by it; otherwise they count level-0 pixels.
    pub fn group_metadata(&self, name: &str, gigascale: Value, complete: bool, pixel_um: Option<(f64, f64)>) -> Value {
        if !complete {
            return json!({"zarr_format": 3, "node_type": "group", "attributes": {"gigascale": gigascale}});
        }
        let (py, px) = pixel_um.unwrap_or((1.0, 1.0));
        let datasets: Vec<Value> = (0..self.levels.len())
            .map(|k| {
                let f = (1u64 << k) as f64;
                let mut t = vec![json!({"type": "scale", "scale": [1.0, f * py, f * px]})];
                if k > 0 {
                    let (ty, tx) = ((f - 1.0) / 2.0 * py, (f - 1.0) / 2.0 * px);
                    t.push(json!({"type": "translation", "translation": [0.0, ty, tx]}));
                }
                json!({"path": k.to_string(), "coordinateTransformations": t})
            })
            .collect();
        let space = |axis: &str| match pixel_um {
            Some(_) => json!({"name": axis, "type": "space", "unit": "micrometer"}),
            None => json!({"name": axis, "type": "space"}),
        };
        let multiscale = json!({
            "name": name,
            "axes": [{"name": "c", "type": "channel"}, space("y"), space("x")],
            "datasets": datasets,
            "type": "mean of 2x2 blocks (alpha-weighted with alpha)",
        });
        json!({
            "zarr_format": 3,
            "node_type": "group",
            "attributes": {"ome": {"version": "0.5", "multiscales": [multiscale]}, "gigascale": gigascale},
        })
    }

    /// Inner chunks per shard side at level `n`.
    pub fn chunks_across(&self, n: usize) -> usize {
        let l = self.levels[n];
        (l.shard / l.chunk) as usize
    }

    /// The valid pixels (width, height) of shard `(sx, sy)` at level `n`.
    pub fn valid(&self, n: usize, (sx, sy): (u32, u32)) -> (usize, usize) {
        let l = self.levels[n];
        let w = (l.size.0 - (sx * l.shard).min(l.size.0)).min(l.shard);
        let h = (l.size.1 - (sy * l.shard).min(l.size.1)).min(l.shard);
        (w as usize, h as usize)
    }

    /// Bytes of one level's raw shard (`C x S x S` samples).
    pub fn shard_bytes(&self, n: usize) -> u64 {
        let s = self.levels[n].shard as u64;
        s * s * self.layout.bytes_per_pixel() as u64
    }

    /// Memory the sink holds for the reduced levels: two shards' level-1 pixels (one filling,
    /// one being written), one shard's smaller levels and one level shard's compressed chunks.
    pub fn pyramid_memory(&self) -> u64 {
        if self.levels.len() < 2 {
            return 0;
        }
        let raw: u64 = (1..self.levels.len()).map(|n| self.shard_bytes(n)).sum::<u64>() + self.shard_bytes(1);
        let chunk = self.levels[1].chunk as u64;
        let per_chunk =
            zstd::zstd_safe::compress_bound((chunk * chunk) as usize * self.layout.bytes_per_pixel()) as u64;
        raw + per_chunk * (self.chunks_across(1) as u64).pow(2)
    }
}

/// Writes `bytes` to `path` through a temporary file beside it, synced, then renamed over it.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = shard::temp_name(path);
    let r = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.map_err(|e| Error::io(path, e))
}
