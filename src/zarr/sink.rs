//! The OME-Zarr sink: tiles arrive shard by shard (the plan's tile order is grouped by shard,
//! see [`TileSink::groups`]); each level-0 tile is one inner chunk, appended to its shard's
//! temporary file by the writer. With a pyramid each tile also brings its 2x2 reduction,
//! placed into the shard's level-1 pixels; when the shard's last tile is in, those pixels go to
//! the level thread ([`Levels`]), which writes the shard's reduced levels while the next shard
//! fills a second buffer. Memory: two shards' level-1 pixels and one shard's smaller levels,
//! never the image.

use super::levels::Levels;
use super::shard::{compressor, ChunkEncoder, ShardFile};
use super::target::Target;
use super::ZarrLayout;
use crate::error::{Error, Result};
use crate::plan::TileJob;
use crate::sink::{out_of_order, SinkHeader, TileEncoder, TileSink};
use std::sync::Arc;

/// Writes the shards of an OME-Zarr output (its metadata is written by
/// [`super::units`]).
pub struct ZarrSink {
    target: Arc<Target>,
    layout: ZarrLayout,
    begun: bool,
    /// The shard being written, its level-0 file and its level-1 pixels.
    current: Option<((u32, u32), ShardFile)>,
    level1: Vec<u8>,
    /// The thread writing reduced levels (with a pyramid).
    levels: Option<Levels>,
    bytes: u64,
}

impl ZarrSink {
    /// A sink writing the shards of `layout` into `target`.
    pub(crate) fn new(target: Arc<Target>, layout: ZarrLayout) -> ZarrSink {
        ZarrSink { target, layout, begun: false, current: None, level1: Vec::new(), levels: None, bytes: 0 }
    }

    fn pyramid(&self) -> bool {
        self.layout.levels.len() > 1
    }

    /// Places a level-0 tile's reduction into the shard's level-1 pixels.
    fn place_reduction(&mut self, job: &TileJob, red: &[u8]) {
        let bpp = self.layout.layout.bytes_per_pixel();
        let s0 = self.layout.levels[0].shard;
        let stride = self.layout.levels[1].shard as usize * bpp;
        let (x, y) = (((job.out.x % s0) / 2) as usize, ((job.out.y % s0) / 2) as usize);
        let (w, h) = ((job.out.w as usize).div_ceil(2), (job.out.h as usize).div_ceil(2));
        for r in 0..h {
            let dst = &mut self.level1[(y + r) * stride + x * bpp..][..w * bpp];
            dst.copy_from_slice(&red[r * w * bpp..(r + 1) * w * bpp]);
        }
    }
}

impl TileSink for ZarrSink {
    fn begin(&mut self, h: &SinkHeader) -> Result<()> {
        let l0 = self.layout.levels[0];
        if (h.width, h.height) != l0.size || h.tile != l0.chunk || h.layout != self.layout.layout {
            return Err(Error::Internal(format!(
                "zarr sink planned for {:?} tiles {} {:?}, job is {}x{} tiles {} {:?}",
                l0.size, l0.chunk, self.layout.layout, h.width, h.height, h.tile, h.layout
            )));
        }
        if self.pyramid() {
            self.level1 = vec![0; self.layout.shard_bytes(1) as usize];
            self.levels = Some(Levels::start(&self.target, &self.layout));
        }
        self.begun = true;
        Ok(())
    }

    fn encoder(&self) -> Result<Box<dyn TileEncoder>> {
        let l0 = self.layout.levels[0];
        let inner = ChunkEncoder {
            layout: self.layout.layout,
            tile: l0.chunk as usize,
            zstd: compressor(self.layout.zstd_level)?,
            planar: Vec::new(),
        };
        if !self.pyramid() {
            return Ok(Box::new(inner));
        }
        Ok(Box::new(crate::sink::ReducingEncoder {
            inner: Box::new(inner),
            layout: self.layout.layout,
            tile: l0.chunk as usize,
            reduced: Vec::new(),
        }))
    }

    fn write_tile(&mut self, job: &TileJob, data: &[u8]) -> Result<()> {
        if !self.begun {
            return Err(out_of_order("write_tile() before begin()", "ZarrSink"));
        }
        let l0 = self.layout.levels[0];
        let pos = (job.out.x / l0.shard, job.out.y / l0.shard);
        let chunk = match &self.current {
            Some((p, _)) if *p != pos => {
                return Err(Error::Internal(format!("tile {}: shard {p:?} is not complete", job.index)))
            }
            Some(_) => None,
            None => Some(self.target.shard(&ZarrLayout::shard_key(0, pos), self.layout.chunks_across(0).pow(2))?),
        };
        if let Some(f) = chunk {
            self.current = Some((pos, f));
        }
        let red_len = if self.pyramid() { crate::sink::reduced_bytes(job, self.layout.layout) } else { 0 };
        let (enc, red) = data.split_at(
            data.len()
                .checked_sub(red_len)
                .ok_or_else(|| Error::Internal(format!("tile {}: shorter than its reduction", job.index)))?,
        );
        if red_len > 0 {
            self.place_reduction(job, red);
        }
        let i = ((job.out.y % l0.shard) / l0.chunk) as usize * self.layout.chunks_across(0)
            + ((job.out.x % l0.shard) / l0.chunk) as usize;
        let (_, file) = self.current.as_mut().expect("set above");
        file.add(i, enc)?;
        let (w, h) = self.layout.valid(0, pos);
        let last = (job.out.x % l0.shard + job.out.w) as usize == w && (job.out.y % l0.shard + job.out.h) as usize == h;
        if last {
            let (_, file) = self.current.take().expect("set above");
            self.bytes += file.finish()?;
            if let Some(levels) = self.levels.as_mut() {
                let free = levels.free()?;
                levels.submit(pos, std::mem::replace(&mut self.level1, free))?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<u64> {
        if let Some((p, _)) = &self.current {
            return Err(Error::Internal(format!("shard {p:?} left incomplete")));
        }
        let reduced = match self.levels.take() {
            Some(l) => l.finish()?,
            None => 0,
        };
        Ok(self.bytes + reduced)
    }

    fn groups(&self, _header: &SinkHeader) -> Option<(u32, u32)> {
        let l0 = self.layout.levels[0];
        Some((l0.shard / l0.chunk, l0.shard / l0.chunk))
    }

    fn tile_overhead(&self, header: &SinkHeader) -> usize {
        if !self.pyramid() {
            return 0;
        }
        crate::sink::tile_reduction_bound(header)
    }

    fn memory(&self, _header: &SinkHeader) -> u64 {
        self.layout.pyramid_memory() + 16 * (self.layout.chunks_across(0).pow(2) as u64) + (1 << 20)
    }

    fn checkpoint(&mut self) -> Result<()> {
        match self.current.as_mut() {
            Some((_, f)) => f.flush(),
            None => Ok(()),
        }
    }
}
