//! Tiled TIFF / BigTIFF writer. Tiles are appended as they arrive; the offset and byte-count
//! tables and the IFD go at the end, and the header is patched to point at them. BigTIFF is
//! chosen up front whenever the worst-case file size could pass 4 GiB.

use super::ifd;
use super::journal::{self, Journal};
use super::pyramid::{self, Pyramid, ReducingEncoder};
use super::{Compression, OutputFile, SinkHeader, TileEncoder, TileSink};
use crate::error::{Error, Result};
use crate::plan::TileJob;
use std::path::Path;

/// A tiled TIFF written to disk.
pub struct TiffSink {
    out: Option<OutputFile>,
    compression: Compression,
    level: i32,
    header: Option<SinkHeader>,
    big: bool,
    force_big: bool,
    /// Test hook: bytes of sparse hole after the header.
    hole: u64,
    offsets: Vec<u64>,
    counts: Vec<u64>,
    /// Resume state: the job's fingerprint and the journal's path.
    journal: Option<(u64, std::path::PathBuf)>,
    resumed: Option<Journal>,
    /// With a pyramid: its thread count, then (after `begin`) its levels.
    pyramid_threads: Option<usize>,
    pyramid: Option<Pyramid>,
    /// With a pyramid: every tile's level and byte count, in file order (for the journal).
    order: Vec<(u8, u32)>,
}

impl TiffSink {
    /// Creates the temporary output beside `dest`.
    pub fn create(dest: &Path, compression: Compression, level: Option<i32>) -> Result<TiffSink> {
        Self::open(dest, compression, level, None)
    }

    /// Like [`TiffSink::create`], but journaled: if an earlier run of the same job (same
    /// `fingerprint`) was interrupted, continues from its durable tiles; an earlier run of a
    /// different job is refused. The partial output and journal are kept if this run fails.
    pub fn resumable(dest: &Path, compression: Compression, level: Option<i32>, fingerprint: u64) -> Result<TiffSink> {
        Self::open(dest, compression, level, Some(fingerprint))
    }

    fn open(dest: &Path, compression: Compression, level: Option<i32>, fingerprint: Option<u64>) -> Result<TiffSink> {
        let level = level.or(compression.default_level()).unwrap_or(0);
        let (_, jpath) = journal::paths(dest);
        // A journal being written when an earlier run was killed: never valid, always removed.
        let _ = std::fs::remove_file(journal::temp_path(&jpath));
        let mut resumed = None;
        let out = match fingerprint {
            None => {
                let _ = std::fs::remove_file(&jpath);
                OutputFile::create(dest)?
            }
            Some(fp) => {
                let mut out = match Journal::read(&jpath)? {
                    Some(j) if j.fingerprint != fp => {
                        return Err(Error::usage(format!(
                            "{}: --resume refused: the input or the options changed since the interrupted run; \
                             run without --resume to start over",
                            dest.display()
                        )))
                    }
                    Some(j) => {
                        let o = OutputFile::resume(dest, j.data_end)?;
                        resumed = Some(j);
                        o
                    }
                    None => OutputFile::create(dest)?,
                };
                out.keep_on_failure(true);
                out
            }
        };
        Ok(TiffSink {
            out: Some(out),
            compression,
            level,
            header: None,
            big: false,
            force_big: false,
            hole: 0,
            offsets: Vec::new(),
            counts: Vec::new(),
            journal: fingerprint.map(|fp| (fp, jpath)),
            resumed,
            pyramid_threads: None,
            pyramid: None,
            order: Vec::new(),
        })
    }

    /// Adds reduced-resolution levels when `on` (see [`Options::pyramid`](crate::Options)),
    /// compressed on `threads` threads.
    pub fn pyramid(mut self, on: bool, threads: usize) -> Self {
        self.pyramid_threads = on.then_some(threads.max(1));
        self
    }
    /// Always write BigTIFF (for tests).
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn force_bigtiff(mut self, yes: bool) -> Self {
        self.force_big = yes;
        self
    }
    /// Test hook: leave a sparse hole of `bytes` after the header, so that tile offsets pass
    /// 4 GiB without writing gigabytes (BigTIFF is forced).
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn with_hole(mut self, bytes: u64) -> Self {
        self.hole = bytes;
        self.force_big |= bytes > 0;
        self
    }
    /// Whether the output is BigTIFF (known after `begin`).
    pub fn is_bigtiff(&self) -> bool {
        self.big
    }
    /// Takes up an interrupted run: the header and the journal's tiles are already in the
    /// file; with a pyramid, its pending bands are rebuilt from the durable tiles.
    fn restore(&mut self, h: &SinkHeader, j: Journal) -> Result<()> {
        let dest = self.out()?.dest().to_path_buf();
        let bad =
            || Error::format(dest.clone(), "resume journal does not match the partial output; run without --resume");
        let levels = if j.levels.is_empty() { vec![0; j.counts.len()] } else { j.levels.clone() };
        let mut off = if self.big { 16 } else { 8 };
        for (&c, &level) in j.counts.iter().zip(&levels) {
            match (level, self.pyramid.as_mut()) {
                (0, _) => {
                    self.offsets.push(off);
                    self.counts.push(c as u64);
                }
                (n, Some(p)) if (n as usize) <= p.len() => p.push_tile(n as usize, off, c as u64)?,
                _ => return Err(bad()),
            }
            self.order.push((level, c));
            off += c as u64;
        }
        let tiles = h.width.div_ceil(h.tile) as u64 * h.height.div_ceil(h.tile) as u64;
        if off != j.data_end || levels.len() != j.counts.len() || self.offsets.len() as u64 > tiles {
            return Err(bad());
        }
        if self.pyramid.is_none() {
            return Ok(());
        }
        let partial = journal::paths(&dest).0;
        let file = std::fs::File::open(&partial).map_err(|e| Error::io(&partial, e))?;
        let (c, layout, t) = (self.compression, h.layout, h.tile);
        let (offsets, counts) = (&self.offsets, &self.counts);
        let p = self.pyramid.as_mut().ok_or_else(bad)?;
        let level_tiles: Vec<(Vec<u64>, Vec<u64>)> =
            (1..=p.len()).map(|n| (p.level(n).1.to_vec(), p.level(n).2.to_vec())).collect();
        let read = |level: usize, i: usize| -> Result<Vec<u8>> {
            let (o, n) = match level {
                0 => (offsets[i], counts[i]),
                l => (level_tiles[l - 1].0[i], level_tiles[l - 1].1[i]),
            };
            let mut data = vec![0u8; n as usize];
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut data, o).map_err(|e| Error::io(&partial, e))?;
            super::compress::decode_tile(c, &data, layout, t).map_err(|e| Error::format(partial.clone(), e.to_string()))
        };
        p.restore(offsets.len(), &read).map_err(|e| Error::format(dest.clone(), format!("{e}; run without --resume")))
    }

    /// Points the offset field at `at` of the file to `to` (4 or 8 bytes).
    fn patch_offset(&mut self, at: u64, to: u64) -> Result<()> {
        if self.big {
            self.out()?.patch(at, &to.to_le_bytes())
        } else {
            self.out()?.patch(at, &(to as u32).to_le_bytes())
        }
    }
    fn out(&mut self) -> Result<&mut OutputFile> {
        self.out.as_mut().ok_or_else(|| super::out_of_order("a write after finish()", "TiffSink"))
    }
    fn header(&self, call: &str) -> Result<&SinkHeader> {
        self.header.as_ref().ok_or_else(|| super::out_of_order(call, "TiffSink"))
    }

    /// Writes the EXIF block's Exif and GPS directories (before the image's IFD) and returns
    /// the fields the image's IFD takes from it: the descriptive ones and the two pointers.
    fn write_exif(&mut self, h: &SinkHeader, big: bool) -> Result<Vec<crate::exif::Field>> {
        let Some(f) = h.metadata.exif.as_deref().and_then(crate::exif::tiff_fields) else { return Ok(Vec::new()) };
        let mut extra = f.ifd0;
        for (tag, sub) in [(34665, f.exif), (34853, f.gps)] {
            if !sub.is_empty() {
                let (at, _) = ifd::write(self.out()?, &ifd::merged(Vec::new(), sub), big)?;
                extra.push(ifd::sub_ifd(tag, at, big));
            }
        }
        Ok(extra)
    }
}

/// Worst-case file size of a tiled TIFF (with its reduced levels when `pyramid`).
pub(super) fn worst_case_size(h: &SinkHeader, c: Compression, pyramid: bool) -> u64 {
    let t = h.tile as usize;
    let mut sizes = vec![(h.width as usize, h.height as usize)];
    if pyramid {
        sizes.extend(pyramid::level_sizes(sizes[0], t));
    }
    let tiles: u64 = sizes.iter().map(|&(w, h)| (w.div_ceil(t) * h.div_ceil(t)) as u64).sum();
    let tile_raw = t * t * h.layout.bytes_per_pixel();
    let ifds = sizes.len() as u64 * 4096;
    tiles * c.bound(tile_raw) as u64 + tiles * 16 + ifds + h.icc_profile.as_ref().map_or(0, |p| p.len() as u64)
}

impl TileSink for TiffSink {
    fn begin(&mut self, h: &SinkHeader) -> Result<()> {
        let worst = worst_case_size(h, self.compression, self.pyramid_threads.is_some());
        self.big = self.force_big || worst > u32::MAX as u64;
        self.out()?.set_expected_size(worst, false);
        let n = h.width.div_ceil(h.tile) as usize * h.height.div_ceil(h.tile) as usize;
        self.offsets = Vec::with_capacity(n);
        self.counts = Vec::with_capacity(n);
        self.header = Some(h.clone());
        if let Some(threads) = self.pyramid_threads {
            let base = (h.width as usize, h.height as usize);
            let codec = (self.compression, self.level);
            self.pyramid = Some(Pyramid::new(base, h.tile as usize, h.layout, codec, threads)?);
        }
        if let Some(j) = self.resumed.take() {
            return self.restore(h, j);
        }
        let head: Vec<u8> = if self.big {
            let mut v = b"II+\0".to_vec();
            v.extend_from_slice(&8u16.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
            v.extend_from_slice(&0u64.to_le_bytes());
            v
        } else {
            let mut v = b"II*\0".to_vec();
            v.extend_from_slice(&0u32.to_le_bytes());
            v
        };
        self.out()?.write_all(&head)?;
        if self.hole > 0 {
            let hole = self.hole;
            self.out()?.skip(hole)?;
        }
        Ok(())
    }

    fn encoder(&self) -> Result<Box<dyn TileEncoder>> {
        let h = self.header("encoder() before begin()")?;
        let inner = self.compression.encoder(self.level, h.layout, h.tile);
        Ok(match self.pyramid {
            Some(_) => {
                Box::new(ReducingEncoder { inner, layout: h.layout, tile: h.tile as usize, reduced: Vec::new() })
            }
            None => inner,
        })
    }

    fn write_tile(&mut self, job: &TileJob, data: &[u8]) -> Result<()> {
        if job.index as usize != self.offsets.len() {
            return Err(Error::usage(format!("tile {} arrived out of order", job.index)));
        }
        let layout = self.header("write_tile() before begin()")?.layout;
        let split = match self.pyramid {
            Some(_) => data.len().checked_sub(pyramid::reduced_bytes(job, layout)).ok_or_else(|| {
                Error::usage(format!("tile {}: shorter than its reduction (not from this sink's encoder)", job.index))
            })?,
            None => data.len(),
        };
        let off = self.out()?.pos();
        self.out()?.write_all(&data[..split])?;
        self.offsets.push(off);
        self.counts.push(split as u64);
        if let (Some(p), Some(out)) = (self.pyramid.as_mut(), self.out.as_mut()) {
            self.order.push((0, split as u32));
            p.add_tile(job, &data[split..], out, &mut self.order)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<u64> {
        let h = self.header("finish() before begin()")?.clone();
        let big = self.big;
        let entries = ifd::tiled_image(&h, self.compression, (&self.offsets, &self.counts), big, false);
        let extra = self.write_exif(&h, big)?;
        let (at, mut link) = ifd::write(self.out()?, &ifd::merged(entries, extra), big)?;
        self.patch_offset(if big { 8 } else { 4 }, at)?;
        // The reduced levels follow in the main IFD chain.
        let pyramid = self.pyramid.take();
        if let Some(p) = &pyramid {
            for n in 1..=p.len() {
                let ((w, lh), offsets, counts) = p.level(n);
                let level = SinkHeader {
                    width: w as u32,
                    height: lh as u32,
                    icc_profile: None,
                    metadata: Default::default(),
                    ..h.clone()
                };
                let entries = ifd::tiled_image(&level, self.compression, (offsets, counts), big, true);
                let (at, next) = ifd::write(self.out()?, &entries, big)?;
                self.patch_offset(link, at)?;
                link = next;
            }
        }
        let out = self.out.take().ok_or_else(|| super::out_of_order("finish() twice", "TiffSink"))?;
        let n = out.commit()?;
        if let Some((_, j)) = &self.journal {
            let _ = std::fs::remove_file(j);
        }
        Ok(n)
    }

    fn tile_overhead(&self, h: &SinkHeader) -> usize {
        match self.pyramid_threads {
            Some(_) => super::pyramid::tile_reduction_bound(h),
            None => 0,
        }
    }

    fn resume_point(&self) -> u64 {
        self.offsets.len() as u64
    }

    fn checkpoint(&mut self) -> Result<()> {
        let Some((fp, path)) = self.journal.clone() else { return Ok(()) };
        self.out()?.sync()?;
        // With a pyramid every tile in file order, with its level; else level 0's in order.
        let (counts, levels) = match self.pyramid {
            Some(_) => self.order.iter().copied().map(|(l, c)| (c, l)).unzip(),
            None => (self.counts.iter().map(|&c| c as u32).collect(), Vec::new()),
        };
        Journal { fingerprint: fp, data_end: self.out()?.pos(), counts, levels }.write(&path)
    }

    fn memory(&self, h: &SinkHeader) -> u64 {
        let tiles = h.width.div_ceil(h.tile) as u64 * h.height.div_ceil(h.tile) as u64;
        // Offset and count tables, the IFD copy at the end, and the 1 MiB write buffer.
        let pyramid = match self.pyramid_threads {
            Some(threads) => {
                let (size, t) = ((h.width as usize, h.height as usize), h.tile as usize);
                let encoders = threads as u64 * (self.compression.encoder_memory(self.level) + 2 * (t * t) as u64 * 8);
                pyramid::memory(size, t, h.layout, self.compression) + encoders + tiles * 16 * 4
            }
            None => 0,
        };
        tiles * 16 * 2 + (1 << 20) + pyramid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixel::{Channels, Depth, Layout};

    fn header(w: u32, h: u32) -> SinkHeader {
        let layout = Layout::new(Channels::Rgb, Depth::U8);
        SinkHeader { width: w, height: h, tile: 256, layout, icc_profile: None, metadata: Default::default() }
    }

    #[test]
    fn bigtiff_whenever_the_file_could_pass_4gib() {
        // The 15x case: 4.08 GB raw fits a classic TIFF uncompressed...
        assert!(worst_case_size(&header(30000, 45000), Compression::None, false) <= u32::MAX as u64);
        // ...and so does zstd's worst case (0.4 % over raw), but not LZW's (50 % over raw).
        assert!(worst_case_size(&header(30000, 45000), Compression::Zstd, false) <= u32::MAX as u64);
        assert!(worst_case_size(&header(30000, 45000), Compression::Lzw, false) > u32::MAX as u64);
        assert!(worst_case_size(&header(32000, 45000), Compression::Zstd, false) > u32::MAX as u64);
        assert!(worst_case_size(&header(60000, 90000), Compression::None, false) > u32::MAX as u64);
        assert!(worst_case_size(&header(6000, 9000), Compression::Deflate, false) < u32::MAX as u64);
        // A pyramid adds a third: the uncompressed 15x case then needs BigTIFF.
        assert!(worst_case_size(&header(30000, 45000), Compression::None, true) > u32::MAX as u64);
    }

    #[test]
    fn calls_out_of_contract_order_are_errors_not_panics() {
        let dir = std::env::temp_dir().join(format!("gigascale-tiff-order-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut sink = TiffSink::create(&dir.join("o.tif"), Compression::Zstd, None).unwrap();
        assert!(sink.encoder().is_err(), "encoder() before begin()");
        assert!(sink.finish().is_err(), "finish() before begin()");
        sink.begin(&header(16, 16)).unwrap();
        let r = crate::plan::Rect { x: 0, y: 0, w: 16, h: 16 };
        let late = TileJob { index: 1, out: r, src: r };
        assert!(sink.write_tile(&late, &[0; 8]).is_err(), "tile 1 before tile 0");
        sink.write_tile(&TileJob { index: 0, ..late }, &[0; 8]).unwrap();
        sink.finish().unwrap();
        assert!(sink.finish().is_err(), "finish() twice");
        assert!(sink.write_tile(&late, &[0; 8]).is_err(), "a tile after finish()");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
