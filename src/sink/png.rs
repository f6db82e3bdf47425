//! PNG sink: assembles each row of tiles into a band and streams it to the PNG encoder, so
//! only `width x tile` pixels are held. Suited to moderate sizes; TIFF for the rest.

use super::{OutputFile, Raw, SinkHeader, TileEncoder, TileSink};
use crate::error::{Error, Result};
use crate::pixel::{Channels, Depth};
use crate::plan::TileJob;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The encoder consumes its writer on `finish`; it writes through this handle so the output
/// file can still be committed afterwards.
pub(super) struct SharedOut(pub(super) Arc<Mutex<OutputFile>>);

impl std::io::Write for SharedOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.flush()
    }
}

/// Copies tile `job` (`data`: rows of `h.tile` pixels) into `band` (rows of the image's
/// width), which holds the row of tiles starting at `band_y`; the band's rows once the tile
/// completes it. (The band sinks', PNG's and JPEG's, and the memory sink's one placement.)
pub(super) fn place_in_band(
    band: &mut [u8],
    band_y: u32,
    h: &SinkHeader,
    job: &TileJob,
    data: &[u8],
) -> Result<Option<u32>> {
    let bpp = h.layout.bytes_per_pixel();
    let (row_bytes, tile_row, span) = (h.width as usize * bpp, h.tile as usize * bpp, job.out.w as usize * bpp);
    if job.out.y != band_y {
        return Err(Error::usage(format!("tile {} arrived out of order", job.index)));
    }
    for r in 0..job.out.h as usize {
        let dst = r * row_bytes + job.out.x as usize * bpp;
        band[dst..dst + span].copy_from_slice(&data[r * tile_row..r * tile_row + span]);
    }
    Ok((job.out.x + job.out.w == h.width).then_some(job.out.h))
}

/// The output file back from the encoder's shared handle (after the encoder has finished).
pub(super) fn unshare(shared: Option<Arc<Mutex<OutputFile>>>, sink: &str) -> Result<OutputFile> {
    let shared = shared.ok_or_else(|| super::out_of_order("finish() before begin() or twice", sink))?;
    Arc::try_unwrap(shared)
        .map_err(|_| Error::usage(format!("{sink}: the encoder still holds the output")))?
        .into_inner()
        .map_err(|_| Error::usage(format!("{sink}: output lock poisoned")))
}

/// A PNG written to disk, band by band.
pub struct PngSink {
    dest: std::path::PathBuf,
    out: Option<OutputFile>,
    shared: Option<Arc<Mutex<OutputFile>>>,
    writer: Option<png::StreamWriter<'static, SharedOut>>,
    header: Option<SinkHeader>,
    band: Vec<u8>,
    band_y: u32,
    rows_written: u32,
    /// Deflate effort, 0-9 (`None`: 6).
    level: Option<i32>,
}

/// The PNG compression levels `--level` takes: 0 stores, 1 is fdeflate's fastest, 2-9 are
/// zlib's levels (6 when not given).
pub const PNG_LEVELS: (i32, i32) = (0, 9);

impl PngSink {
    /// Creates the temporary output beside `dest`.
    pub fn create(dest: &Path) -> Result<PngSink> {
        Ok(PngSink {
            dest: dest.to_path_buf(),
            out: Some(OutputFile::create(dest)?),
            shared: None,
            writer: None,
            header: None,
            band: Vec::new(),
            band_y: 0,
            rows_written: 0,
            level: None,
        })
    }

    /// Sets the deflate effort ([`PNG_LEVELS`]; levels outside are clamped): 1 writes about
    /// four times faster than the default 6 with files 10-25 % larger (photographs).
    pub fn level(mut self, level: Option<i32>) -> PngSink {
        self.level = level;
        self
    }
    fn perr(&self, e: png::EncodingError) -> Error {
        match e {
            png::EncodingError::IoError(io) => Error::io(&self.dest, io),
            other => Error::format(&self.dest, format!("PNG encoder: {other}")),
        }
    }
    fn flush_band(&mut self, rows: u32) -> Result<()> {
        let h = self.header.as_ref().ok_or_else(|| super::out_of_order("a write before begin()", "PngSink"))?;
        let row_bytes = h.width as usize * h.layout.bytes_per_pixel();
        let w = self.writer.as_mut().ok_or_else(|| super::out_of_order("a write after finish()", "PngSink"))?;
        let mut res = Ok(());
        for r in 0..rows as usize {
            let row = &mut self.band[r * row_bytes..(r + 1) * row_bytes];
            if h.layout.depth == Depth::U16 {
                for s in row.chunks_exact_mut(2) {
                    s.swap(0, 1); // little-endian tile samples -> PNG's big-endian
                }
            }
            if let Err(e) = std::io::Write::write_all(w, row) {
                res = Err(e);
                break;
            }
        }
        res.map_err(|e| Error::io(&self.dest, e))?;
        self.rows_written += rows;
        Ok(())
    }
}

impl TileSink for PngSink {
    fn begin(&mut self, h: &SinkHeader) -> Result<()> {
        let out = self.out.take().ok_or_else(|| super::out_of_order("begin() twice", "PngSink"))?;
        let mut info = png::Info::with_size(h.width, h.height);
        info.color_type = match h.layout.channels {
            Channels::Gray => png::ColorType::Grayscale,
            Channels::GrayAlpha => png::ColorType::GrayscaleAlpha,
            Channels::Rgb => png::ColorType::Rgb,
            Channels::Rgba => png::ColorType::Rgba,
        };
        info.bit_depth = match h.layout.depth {
            Depth::U8 => png::BitDepth::Eight,
            Depth::U16 => png::BitDepth::Sixteen,
        };
        info.icc_profile = h.icc_profile.clone().map(Into::into);
        if let Some((x, y)) = h.metadata.dpi {
            let per_metre = |v: f64| (v / 0.0254).round().clamp(1.0, u32::MAX as f64) as u32;
            info.pixel_dims =
                Some(png::PixelDimensions { xppu: per_metre(x), yppu: per_metre(y), unit: png::Unit::Meter });
        }
        info.exif_metadata = h.metadata.exif.clone().map(Into::into);
        if let Some(xmp) = h.metadata.xmp.as_ref().and_then(|x| String::from_utf8(x.clone()).ok()) {
            info.utf8_text.push(png::text_metadata::ITXtChunk::new("XML:com.adobe.xmp", xmp));
        }
        let shared = Arc::new(Mutex::new(out));
        self.shared = Some(shared.clone());
        let mut enc = png::Encoder::with_info(SharedOut(shared), info).map_err(|e| self.perr(e))?;
        if let Some(l) = self.level {
            enc.set_deflate_compression(match l.clamp(PNG_LEVELS.0, PNG_LEVELS.1) {
                0 => png::DeflateCompression::NoCompression,
                1 => png::DeflateCompression::FdeflateUltraFast,
                l => png::DeflateCompression::Level(l as u8),
            });
        }
        let w = enc.write_header().map_err(|e| self.perr(e))?;
        let sw = w.into_stream_writer_with_size(1 << 20).map_err(|e| self.perr(e))?;
        self.writer = Some(sw);
        self.band = vec![0; h.width as usize * h.tile as usize * h.layout.bytes_per_pixel()];
        self.header = Some(h.clone());
        Ok(())
    }

    fn encoder(&self) -> Result<Box<dyn TileEncoder>> {
        Ok(Box::new(Raw))
    }

    fn write_tile(&mut self, job: &TileJob, data: &[u8]) -> Result<()> {
        let h = self.header.as_ref().ok_or_else(|| super::out_of_order("write_tile() before begin()", "PngSink"))?;
        if let Some(rows) = place_in_band(&mut self.band, self.band_y, h, job, data)? {
            self.flush_band(rows)?;
            self.band_y += rows;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<u64> {
        let w = self.writer.take().ok_or_else(|| super::out_of_order("finish() before begin() or twice", "PngSink"))?;
        w.finish().map_err(|e| self.perr(e))?;
        unshare(self.shared.take(), "PngSink")?.commit()
    }

    fn memory(&self, h: &SinkHeader) -> u64 {
        // The band, the encoder's 1 MiB buffer, deflate state and the file buffer.
        h.width as u64 * h.tile as u64 * h.layout.bytes_per_pixel() as u64 + (3 << 20)
    }
}
