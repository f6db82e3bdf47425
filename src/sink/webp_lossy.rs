//! Lossy WebP sink (`.webp` with `--quality`): our streaming VP8 encoder (`vp8.rs`).
//!
//! Rows are turned into YUV 4:2:0 (BT.601, chroma averaged over 2x2 pixels) as the bands
//! arrive, and each row of 16x16 macroblocks is coded as soon as it is complete; the token
//! partition goes to a scratch file on disk, the first partition (the modes: half a byte a
//! macroblock) stays in memory. With alpha, the alpha plane goes through our lossless VP8L
//! encoder (`webp.rs`, its own two streamed passes) into an `ALPH` chunk. So memory holds a
//! band, 16 rows of YUV and the first partition, never the image, whatever its size (WebP's
//! limit is 16383 px a side).
//!
//! At the end the file is put together: the container (`webp::container`, with the ICC profile,
//! EXIF and XMP), `ALPH`, then `VP8 ` (frame header, first partition, the token partition copied
//! from the scratch file).

use super::vp8::Vp8Encoder;
use super::webp::{container, refusal, to_rgba8, WebpSink};
use super::{OutputFile, Raw, SinkHeader, TileEncoder, TileSink};
use crate::error::{Error, Result};
use crate::pixel::{Channels, Depth, Layout};
use crate::plan::TileJob;
use std::io::{BufWriter, Read, Seek};
use std::path::{Path, PathBuf};

/// The coder and its scratch file of tokens.
type Encoder = Vp8Encoder<BufWriter<std::fs::File>>;

/// A lossy WebP, coded as the rows arrive (see the module docs).
pub struct WebpLossySink {
    dest: PathBuf,
    quality: u8,
    out: Option<OutputFile>,
    header: Option<SinkHeader>,
    band: Vec<u8>,
    band_y: u32,
    encoder: Option<Encoder>,
    /// The lossless coder of the alpha plane, and a band of alpha values for it.
    alpha: Option<WebpSink>,
    alpha_band: Vec<u8>,
    /// The even row waiting for its odd partner (chroma is made from pairs of rows).
    pending: Vec<[u8; 4]>,
    row: Vec<[u8; 4]>,
}

impl WebpLossySink {
    /// Creates the temporary output beside `dest`; `quality` 1-100.
    pub fn create(dest: &Path, quality: u8) -> Result<WebpLossySink> {
        if !(1..=100).contains(&quality) {
            return Err(Error::usage(format!("--quality {quality}: give 1 to 100")));
        }
        Ok(WebpLossySink {
            dest: dest.to_path_buf(),
            quality,
            out: Some(OutputFile::create(dest)?),
            header: None,
            band: Vec::new(),
            band_y: 0,
            encoder: None,
            alpha: None,
            alpha_band: Vec::new(),
            pending: Vec::new(),
            row: Vec::new(),
        })
    }

    /// Feeds the band's first `rows` rows to the encoder (in pairs) and their alpha to the
    /// alpha plane's coder.
    fn push_band(&mut self, rows: u32) -> Result<()> {
        let h = self.header.as_ref().ok_or_else(|| super::out_of_order("a write before begin()", "WebpLossySink"))?;
        let (layout, w, height) = (h.layout, h.width as usize, h.height as usize);
        let row_bytes = w * layout.bytes_per_pixel();
        let enc =
            self.encoder.as_mut().ok_or_else(|| super::out_of_order("a write after finish()", "WebpLossySink"))?;
        let io = |e: std::io::Error| Error::io(&self.dest, e);
        for r in 0..rows as usize {
            let y = self.band_y as usize + r;
            to_rgba8(&self.band[r * row_bytes..(r + 1) * row_bytes], layout, &mut self.row);
            if let Some(alpha) = self.alpha_band.get_mut(r * w..(r + 1) * w) {
                alpha.iter_mut().zip(&self.row).for_each(|(a, p)| *a = p[3]);
            }
            if y.is_multiple_of(2) {
                std::mem::swap(&mut self.pending, &mut self.row);
                if y + 1 == height {
                    enc.push_pair(&self.pending, None).map_err(io)?;
                }
            } else {
                enc.push_pair(&self.pending, Some(&self.row)).map_err(io)?;
            }
        }
        if let Some(alpha) = &mut self.alpha {
            alpha.push_rows(&self.alpha_band[..rows as usize * w], rows)?;
        }
        Ok(())
    }

    /// Writes the `VP8 ` chunk: the encoder's frame header and first partition, then the
    /// token partition copied from its scratch file.
    fn write_vp8(&self, enc: Encoder, out: &mut OutputFile) -> Result<()> {
        let io = |e: std::io::Error| Error::io(&self.dest, e);
        let (head, tokens, len) = enc.finish().map_err(io)?;
        let mut file = tokens.into_inner().map_err(|e| io(e.into_error()))?;
        file.rewind().map_err(io)?;
        let size = head.len() as u64 + len;
        if size > u32::MAX as u64 - 64 {
            return Err(Error::format(&self.dest, format!("the VP8 bitstream ({size} bytes) is over RIFF's 4 GiB")));
        }
        out.write_all(b"VP8 ")?;
        out.write_all(&(size as u32).to_le_bytes())?;
        out.write_all(&head)?;
        let mut buf = vec![0u8; 1 << 16];
        let mut left = len;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            file.read_exact(&mut buf[..n]).map_err(io)?;
            out.write_all(&buf[..n])?;
            left -= n as u64;
        }
        if size % 2 == 1 {
            out.write_all(&[0])?;
        }
        Ok(())
    }
}

impl TileSink for WebpLossySink {
    fn begin(&mut self, h: &SinkHeader) -> Result<()> {
        if let Some(why) = refusal(h.width, h.height, h.layout) {
            return Err(Error::usage(format!("{}: {why}", self.dest.display())));
        }
        let (file, path) = crate::store::create_temp(crate::store::parent_dir(&self.dest), "webp")?;
        let _ = std::fs::remove_file(&path);
        let enc = Vp8Encoder::new(h.width, h.height, self.quality, BufWriter::with_capacity(1 << 16, file))
            .map_err(|e| Error::io(&self.dest, e))?;
        self.encoder = Some(enc);
        let w = h.width as usize;
        if h.layout.channels.has_alpha() {
            let mut alpha = WebpSink::for_alpha(&self.dest);
            alpha.begin(&alpha_header(h))?;
            self.alpha = Some(alpha);
            self.alpha_band = vec![0; w * h.tile as usize];
        }
        self.band = vec![0; w * h.tile as usize * h.layout.bytes_per_pixel()];
        (self.pending, self.row) = (vec![[0; 4]; w], vec![[0; 4]; w]);
        self.header = Some(h.clone());
        Ok(())
    }

    fn encoder(&self) -> Result<Box<dyn TileEncoder>> {
        Ok(Box::new(Raw))
    }

    fn write_tile(&mut self, job: &TileJob, data: &[u8]) -> Result<()> {
        let h =
            self.header.as_ref().ok_or_else(|| super::out_of_order("write_tile() before begin()", "WebpLossySink"))?;
        if let Some(rows) = super::png::place_in_band(&mut self.band, self.band_y, h, job, data)? {
            self.push_band(rows)?;
            self.band_y += rows;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<u64> {
        let h = self.header.clone().ok_or_else(|| super::out_of_order("finish() before begin()", "WebpLossySink"))?;
        let enc = self.encoder.take().ok_or_else(|| super::out_of_order("finish() twice", "WebpLossySink"))?;
        let mut out = self.out.take().ok_or_else(|| super::out_of_order("finish() twice", "WebpLossySink"))?;
        let has_alpha = h.layout.channels.has_alpha();
        let mut alpha = self.alpha.take();
        container(&mut out, &h, has_alpha, has_alpha, |out| {
            if let Some(a) = &mut alpha {
                a.write_alpha(out)?;
            }
            self.write_vp8(enc, out)
        })?;
        out.commit()
    }

    fn memory(&self, h: &SinkHeader) -> u64 {
        // The band and two rows; the encoder's 16 rows of YUV (twice 1.5 bytes a pixel of
        // width: source and rebuilt edges) and its first partition (half a byte a macroblock,
        // at most 512 KiB) and token buffer; with alpha, the alpha band and its coder.
        let w = h.width as u64;
        let band = w * h.tile as u64 * h.layout.bytes_per_pixel() as u64;
        let mbs = w.div_ceil(16) * (h.height as u64).div_ceil(16);
        let encoder = w.div_ceil(16) * 16 * 40 + (mbs / 2).min(1 << 19) + (2 << 16);
        let alpha = if h.layout.channels.has_alpha() {
            w * h.tile as u64 + WebpSink::for_alpha(&self.dest).memory(&alpha_header(h))
        } else {
            0
        };
        band + w * 8 + encoder + alpha
    }
}

/// The header of the alpha plane's image: grey, 8-bit, nothing to embed.
fn alpha_header(h: &SinkHeader) -> SinkHeader {
    SinkHeader {
        layout: Layout::new(Channels::Gray, Depth::U8),
        icc_profile: None,
        metadata: Default::default(),
        ..h.clone()
    }
}
