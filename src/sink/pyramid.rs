//! Reduced-resolution levels of a tiled TIFF, computed while level 0 streams out.
//!
//! Each worker's encoder also returns its tile's 2x2 reduction ([`ReducingEncoder`]); the
//! writer places it in level 1's pending band (one row of tiles). When the level-0 tile rows
//! that feed a band are all in, the band's tiles are compressed (on a small thread pool) and
//! appended to the same file, and the band is reduced into level 2's pending band, and so on.
//! No second pass over the image and no temporary files: memory is one band per level (about
//! a tile's height of the full-size width in all) plus that band's compressed tiles.
//!
//! Level n has `ceil(w / 2) x ceil(h / 2)` pixels of level n-1, until a level fits in one
//! tile. Each pixel is the rounded mean of its block (four pixels, fewer at odd edges); with
//! alpha, colour is the alpha-weighted mean (premultiplied, then divided back) and alpha the
//! plain mean, so transparent pixels do not bleed their colour.

use super::{Compression, OutputFile, TileEncoder};
use crate::error::{Error, Result};
use crate::pixel::{Depth, Layout};
use crate::plan::TileJob;
use rayon::prelude::*;

/// Sample `i` of a little-endian buffer of `depth`.
fn get(b: &[u8], i: usize, depth: Depth) -> u64 {
    match depth {
        Depth::U8 => b[i] as u64,
        Depth::U16 => u16::from_le_bytes([b[2 * i], b[2 * i + 1]]) as u64,
    }
}

fn put(b: &mut [u8], i: usize, depth: Depth, v: u64) {
    match depth {
        Depth::U8 => b[i] = v as u8,
        Depth::U16 => b[2 * i..2 * i + 2].copy_from_slice(&(v as u16).to_le_bytes()),
    }
}

/// Output pixel `x` of a reduced row from source rows `r0`, `r1` and columns `x0`, `x1`: the
/// rounded mean of the four (an edge's single row or column counted twice, which gives the same
/// rounded mean as averaging the two or one pixels there are); with alpha, colour weighted by
/// alpha.
fn block(r: [&[u8]; 2], [x0, x1]: [usize; 2], layout: Layout, dst: &mut [u8], x: usize) {
    let (ch, depth) = (layout.channels.count(), layout.depth);
    let px = [r[0], r[0], r[1], r[1]].into_iter().zip([x0, x1, x0, x1]).map(|(row, x)| (row, x * ch));
    if !layout.channels.has_alpha() {
        for c in 0..ch {
            let s: u64 = px.clone().map(|(row, at)| get(row, at + c, depth)).sum();
            put(dst, x * ch + c, depth, (s + 2) / 4);
        }
        return;
    }
    let a = ch - 1;
    let asum: u64 = px.clone().map(|(row, at)| get(row, at + a, depth)).sum();
    put(dst, x * ch + a, depth, (asum + 2) / 4);
    for c in 0..a {
        let weighted: u64 = px.clone().map(|(row, at)| get(row, at + c, depth) * get(row, at + a, depth)).sum();
        // Fully transparent blocks keep the plain mean of their colour.
        let v = (weighted + asum / 2)
            .checked_div(asum)
            .unwrap_or_else(|| (px.clone().map(|(row, at)| get(row, at + c, depth)).sum::<u64>() + 2) / 4);
        put(dst, x * ch + c, depth, v);
    }
}

/// The common case, 8-bit without alpha: whole 2x2 blocks of `CH`-sample pixels.
fn blocks_u8<const CH: usize>(r0: &[u8], r1: &[u8], dst: &mut [u8]) {
    let pairs = r0.chunks_exact(2 * CH).zip(r1.chunks_exact(2 * CH));
    for ((a, b), d) in pairs.zip(dst.chunks_exact_mut(CH)) {
        for c in 0..CH {
            let s = a[c] as u16 + a[CH + c] as u16 + b[c] as u16 + b[CH + c] as u16;
            d[c] = ((s + 2) >> 2) as u8;
        }
    }
}

/// Reduces one output row `oy` of the 2x2 reduction of `src` (rows of `src_stride` bytes,
/// `w x h` valid pixels) into `dst` (`ceil(w / 2)` pixels).
fn reduce_row(src: &[u8], src_stride: usize, (w, h): (usize, usize), oy: usize, layout: Layout, dst: &mut [u8]) {
    let y1 = (2 * oy + 1).min(h - 1);
    let r = [&src[2 * oy * src_stride..], &src[y1 * src_stride..]];
    let (bpp, full) = (layout.bytes_per_pixel(), w / 2);
    let fast = layout.depth == Depth::U8 && !layout.channels.has_alpha();
    let done = if fast {
        let (r0, r1, d) = (&r[0][..full * 2 * bpp], &r[1][..full * 2 * bpp], &mut dst[..full * bpp]);
        // 8-bit without alpha is grey (1 byte a pixel) or RGB (3).
        if bpp == 1 {
            blocks_u8::<1>(r0, r1, d)
        } else {
            blocks_u8::<3>(r0, r1, d)
        }
        full
    } else {
        0
    };
    for x in done..w.div_ceil(2) {
        block(r, [2 * x, (2 * x + 1).min(w - 1)], layout, dst, x);
    }
}

/// The 2x2 reduction of the `w x h` valid pixels of `src` (rows of `src_stride` bytes) into
/// `dst` (rows of `dst_stride` bytes): `ceil(w / 2) x ceil(h / 2)` pixels, each the rounded
/// mean of its block (colour weighted by alpha with alpha), as every pyramid level is made.
pub fn reduce(src: &[u8], src_stride: usize, size: (usize, usize), layout: Layout, dst: &mut [u8], dst_stride: usize) {
    for oy in 0..size.1.div_ceil(2) {
        reduce_row(src, src_stride, size, oy, layout, &mut dst[oy * dst_stride..]);
    }
}

/// Bytes of the reduction a [`ReducingEncoder`] appends to a full tile of `header` (the most
/// it appends to any tile): what a pyramid's sink reports as `TileSink::tile_overhead`.
pub(crate) fn tile_reduction_bound(header: &super::SinkHeader) -> usize {
    (header.tile as usize).div_ceil(2).pow(2) * header.layout.bytes_per_pixel()
}

/// Bytes of the reduction a [`ReducingEncoder`] appends to tile `job`.
pub(crate) fn reduced_bytes(job: &TileJob, layout: Layout) -> usize {
    (job.out.w as usize).div_ceil(2) * (job.out.h as usize).div_ceil(2) * layout.bytes_per_pixel()
}

/// An encoder that also reduces its tile: its output is the inner encoder's bytes followed by
/// the tile's 2x2 reduction ([`reduced_bytes`] of them, packed rows).
pub(crate) struct ReducingEncoder {
    pub inner: Box<dyn TileEncoder>,
    pub layout: Layout,
    pub tile: usize,
    pub reduced: Vec<u8>,
}

impl TileEncoder for ReducingEncoder {
    fn encode(&mut self, job: &TileJob, raw: &mut [u8], out: &mut Vec<u8>) -> Result<()> {
        let (w, h) = (job.out.w as usize, job.out.h as usize);
        let bpp = self.layout.bytes_per_pixel();
        self.reduced.resize(reduced_bytes(job, self.layout), 0);
        reduce(raw, self.tile * bpp, (w, h), self.layout, &mut self.reduced, w.div_ceil(2) * bpp);
        // (The executor skips a passthrough encoder's call; this one is not passthrough, so
        // the inner one is always called, and `Raw` copies the tile.)
        self.inner.encode(job, raw, out)?;
        out.extend_from_slice(&self.reduced);
        Ok(())
    }
}

/// One reduced level: its size, its pending band of tile rows, and its tiles in the file.
struct Level {
    width: usize,
    height: usize,
    /// The band being filled: one tile row (`tile` rows of `width` pixels).
    band: Vec<u8>,
    /// Index of the band being filled.
    band_index: usize,
    offsets: Vec<u64>,
    counts: Vec<u64>,
}

/// The reduced levels of one TIFF and the work of building them.
pub(crate) struct Pyramid {
    layout: Layout,
    tile: usize,
    /// Level 0's size.
    base: (usize, usize),
    levels: Vec<Level>,
    compression: Compression,
    level: i32,
    pool: rayon::ThreadPool,
}

/// Sizes of the reduced levels of a `w x h` image with `tile`-pixel tiles: halving (rounded
/// up) until a level fits in one tile; none when level 0 already does.
pub(crate) fn level_sizes((mut w, mut h): (usize, usize), tile: usize) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    while w > tile || h > tile {
        (w, h) = (w.div_ceil(2), h.div_ceil(2));
        v.push((w, h));
    }
    v
}

/// Memory a pyramid holds for a `w x h` image: one band per level and its compressed tiles.
pub(crate) fn memory((w, h): (usize, usize), tile: usize, layout: Layout, c: Compression) -> u64 {
    let bpp = layout.bytes_per_pixel() as u64;
    let bands: u64 = level_sizes((w, h), tile).iter().map(|&(lw, _)| (tile * lw) as u64 * bpp).sum();
    let tiles_row = (w.div_ceil(2).div_ceil(tile)) as u64;
    bands + tiles_row * c.bound(tile * tile * layout.bytes_per_pixel()) as u64
}

impl Pyramid {
    /// The levels of a `base`-sized image, written with `compression` at `level` on `threads`.
    pub(super) fn new(
        base: (usize, usize),
        tile: usize,
        layout: Layout,
        (compression, level): (Compression, i32),
        threads: usize,
    ) -> Result<Pyramid> {
        let bpp = layout.bytes_per_pixel();
        let levels = level_sizes(base, tile)
            .into_iter()
            .map(|(width, height)| Level {
                width,
                height,
                band: vec![0; tile * width * bpp],
                band_index: 0,
                offsets: Vec::new(),
                counts: Vec::new(),
            })
            .collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build()
            .map_err(|e| Error::Internal(format!("pyramid thread pool: {e}")))?;
        Ok(Pyramid { layout, tile, base, levels, compression, level, pool })
    }

    /// Records tile `index` of level `n` (from 1) as already in the file (resume).
    pub(super) fn push_tile(&mut self, n: usize, offset: u64, count: u64) -> Result<()> {
        let l = self.levels.get_mut(n - 1).ok_or_else(|| Error::Internal(format!("no pyramid level {n}")))?;
        l.offsets.push(offset);
        l.counts.push(count);
        Ok(())
    }

    /// After an interrupted run whose first `done` level-0 tiles and the reduced tiles pushed
    /// with [`Pyramid::push_tile`] are in the file: rebuilds every level's pending band from
    /// the durable tiles that fed it, read back through `tile(level, index)` (raw
    /// `tile x tile` pixels). Errors if the tiles do not form a state a run passes through.
    pub(super) fn restore(&mut self, done: usize, tile: &dyn Fn(usize, usize) -> Result<Vec<u8>>) -> Result<()> {
        let (t, bpp, layout) = (self.tile, self.layout.bytes_per_pixel(), self.layout);
        let mut below = (self.base, done / self.base.0.div_ceil(t), done);
        for n in 1..=self.levels.len() {
            let ((bw, bh), bands, tiles) = below;
            let cols = bw.div_ceil(t);
            let l = &mut self.levels[n - 1];
            let (lcols, written) = (l.width.div_ceil(t), l.counts.len());
            // Once every band below is in, this level's last band was written too.
            let complete = bands == bh.div_ceil(t);
            let expect = if complete { bands.div_ceil(2) } else { bands / 2 };
            if written % lcols != 0 || written / lcols != expect {
                return Err(Error::Internal(format!("pyramid level {n}: {written} tiles do not follow {tiles} below")));
            }
            l.band_index = written / lcols;
            // The tiles of the level below that were reduced into this band: its current band's
            // (level 0: row's) tiles, and those of the band before when that was the first half.
            let first = if complete { tiles } else { (bands - bands % 2) * cols };
            for i in first..tiles {
                let raw = tile(n - 1, i)?;
                let (col, row) = (i % cols, i / cols);
                let (w, h) = (t.min(bw - col * t), t.min(bh - row * t));
                let at = (row % 2) * (t / 2) * l.width * bpp + col * (t / 2) * bpp;
                reduce(&raw, t * bpp, (w, h), layout, &mut l.band[at..], l.width * bpp);
            }
            below = ((l.width, l.height), l.band_index, written);
        }
        Ok(())
    }

    /// Number of reduced levels.
    pub(super) fn len(&self) -> usize {
        self.levels.len()
    }

    /// Level `n`'s (from 1) size and tiles.
    pub(super) fn level(&self, n: usize) -> ((usize, usize), &[u64], &[u64]) {
        let l = &self.levels[n - 1];
        ((l.width, l.height), &l.offsets, &l.counts)
    }

    /// Level 0 tile `job`'s reduction arrived: placed in level 1's band; when it ends a row of
    /// tiles that completes the band, the band is written (and so on up the levels), each
    /// written tile's level and byte count appended to `order`.
    pub(super) fn add_tile(
        &mut self,
        job: &TileJob,
        reduced: &[u8],
        out: &mut OutputFile,
        order: &mut Vec<(u8, u32)>,
    ) -> Result<()> {
        if self.levels.is_empty() {
            return Ok(());
        }
        let (t, bpp) = (self.tile, self.layout.bytes_per_pixel());
        let (x, y) = (job.out.x as usize / 2, job.out.y as usize / 2);
        let (w, h) = ((job.out.w as usize).div_ceil(2), (job.out.h as usize).div_ceil(2));
        let l = &mut self.levels[0];
        let stride = l.width * bpp;
        for (yy, src) in reduced.chunks_exact(w * bpp).take(h).enumerate() {
            let at = (y % t + yy) * stride + x * bpp;
            l.band[at..at + w * bpp].copy_from_slice(src);
        }
        let row_end = job.out.x as usize + job.out.w as usize == self.base.0;
        if row_end {
            let row = job.out.y as usize / t;
            self.band_done(0, (row, self.base.1.div_ceil(t)), out, order)?;
        }
        Ok(())
    }

    /// Band `band` of level `n` (0 = the full-size image, of `bands` bands) is complete; its
    /// reduction is in level n+1's band (for n ≥ 1, reduced here). Writes level n+1's band
    /// when this completes it.
    fn band_done(
        &mut self,
        n: usize,
        (band, bands): (usize, usize),
        out: &mut OutputFile,
        order: &mut Vec<(u8, u32)>,
    ) -> Result<()> {
        if n >= self.levels.len() || (band.is_multiple_of(2) && band + 1 < bands) {
            return Ok(());
        }
        let next = &self.levels[n];
        let next_bands = next.height.div_ceil(self.tile);
        let b = next.band_index;
        for bytes in self.write_band(n + 1)? {
            let at = out.pos();
            out.write_all(&bytes)?;
            let l = &mut self.levels[n];
            l.offsets.push(at);
            l.counts.push(bytes.len() as u64);
            order.push((n as u8 + 1, bytes.len() as u32));
        }
        self.reduce_band(n + 1);
        let l = &mut self.levels[n];
        l.band_index += 1;
        l.band.fill(0);
        self.band_done(n + 1, (b, next_bands), out, order)
    }

    /// The tiles of level `n`'s current band, compressed (in parallel).
    fn write_band(&self, n: usize) -> Result<Vec<Vec<u8>>> {
        let (t, bpp, layout) = (self.tile, self.layout.bytes_per_pixel(), self.layout);
        let l = &self.levels[n - 1];
        let rows = t.min(l.height - l.band_index * t);
        let cols = l.width.div_ceil(t);
        let (c, level) = (self.compression, self.level);
        self.pool.install(|| {
            (0..cols)
                .into_par_iter()
                .map_init(
                    || (c.encoder(level, layout, t as u32), vec![0u8; t * t * bpp]),
                    |(enc, raw), col| {
                        let w = t.min(l.width - col * t);
                        raw.fill(0);
                        for y in 0..rows {
                            let src = &l.band[y * l.width * bpp + col * t * bpp..][..w * bpp];
                            raw[y * t * bpp..][..w * bpp].copy_from_slice(src);
                        }
                        let r = crate::plan::Rect { x: (col * t) as u32, y: 0, w: w as u32, h: rows as u32 };
                        let job = TileJob { index: col as u64, out: r, src: r };
                        let mut encoded = Vec::new();
                        enc.encode(&job, raw, &mut encoded)?;
                        Ok(encoded)
                    },
                )
                .collect()
        })
    }

    /// Reduces level `n`'s current band into level n+1's band (if there is a level n+1).
    fn reduce_band(&mut self, n: usize) {
        if n >= self.levels.len() {
            return;
        }
        let (t, bpp, layout) = (self.tile, self.layout.bytes_per_pixel(), self.layout);
        let (lo, hi) = self.levels.split_at_mut(n);
        let (src, dst) = (&lo[n - 1], &mut hi[0]);
        let rows = t.min(src.height - src.band_index * t);
        let half = (src.band_index % 2) * t / 2;
        let dst_stride = dst.width * bpp;
        let band = &mut dst.band[half * dst_stride..];
        self.pool.install(|| {
            band.par_chunks_mut(dst_stride).take(rows.div_ceil(2)).enumerate().for_each(|(oy, row)| {
                reduce_row(&src.band, src.width * bpp, (src.width, rows), oy, layout, row);
            })
        });
    }
}
