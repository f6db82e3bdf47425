//! WebP lossless sink, written by our own VP8L encoder (`vp8l.rs`) in two streamed passes:
//!
//! 1. As each row of tiles arrives it is assembled into a band (as for PNG), turned into
//!    prediction residuals (subtract-green, then the gradient predictor against the row
//!    above), cut into literals and runs and counted; the residuals go to a scratch file
//!    (4 bytes a pixel, on disk, its resident pages released band by band).
//! 2. At the end the prefix codes are built from the exact counts, and the residuals are read
//!    back in order, cut into the same tokens and coded.
//!
//! So memory holds a band and two rows, never the image, whatever its size (WebP's own limit is
//! 16383 px a side). The file is a plain `RIFF/WEBP/VP8L`, or an extended one (`VP8X`) when
//! there is an ICC profile, EXIF or XMP to carry.

use super::vp8l::{self, BitWriter, Code, Token};
use super::{OutputFile, Raw, SinkHeader, TileEncoder, TileSink};
use crate::error::{Error, Result};
use crate::pixel::{Channels, Depth, Layout};
use crate::plan::TileJob;
use memmap2::MmapMut;
use std::path::{Path, PathBuf};

/// WebP's largest width or height.
pub const MAX_SIDE: u32 = 16383;
/// Bytes of residuals read back between two releases of their pages.
const RELEASE_EVERY: usize = 1 << 20;

/// Why a `w x h` image cannot be a WebP, if it cannot.
pub fn refusal(w: u32, h: u32, _layout: Layout) -> Option<String> {
    (w > MAX_SIDE || h > MAX_SIDE).then(|| {
        format!(
            "{w}x{h} is over WebP's limit of {MAX_SIDE} px a side; name the output .tif (tiled BigTIFF), .png, \
             .jpg (up to 65535 px) or .ome.zarr"
        )
    })
}

/// A lossless WebP written to disk in two streamed passes (see the module docs).
pub struct WebpSink {
    dest: PathBuf,
    out: Option<OutputFile>,
    header: Option<SinkHeader>,
    band: Vec<u8>,
    band_y: u32,
    /// Every pixel so far after subtract-green (4 bytes each: green, red, blue, alpha).
    pixels: Option<(MmapMut, std::fs::File)>,
    /// Each predictor block's mode, block row by block row.
    modes: Vec<u8>,
    /// A row of residuals, the row above's, and a row for trying modes.
    res: Vec<[u8; 4]>,
    res_prev: Vec<[u8; 4]>,
    trial: Vec<[u8; 4]>,
    /// Counts of each code's symbols: green (and run lengths), red, blue, alpha, distance.
    counts: [Vec<u64>; 5],
}

/// Pixels per side of a predictor block.
const BLOCK: usize = 1 << vp8l::PREDICTOR_BITS;

/// Row `y` of an image `w` pixels wide held as 4-byte pixels in `map`.
fn row(map: &[u8], w: usize, y: usize) -> &[[u8; 4]] {
    bytemuck::cast_slice(&map[y * w * 4..(y + 1) * w * 4])
}

impl WebpSink {
    /// Creates the temporary output beside `dest`.
    pub fn create(dest: &Path) -> Result<WebpSink> {
        Ok(WebpSink { out: Some(OutputFile::create(dest)?), ..WebpSink::for_alpha(dest) })
    }

    /// A sink with no output file of its own: the coder of a lossy WebP's alpha plane
    /// (`webp_lossy.rs`), fed grey rows (the alpha values) with [`push_rows`](Self::push_rows)
    /// and written with [`write_alpha`](Self::write_alpha); `dest` names the output in errors.
    pub(super) fn for_alpha(dest: &Path) -> WebpSink {
        WebpSink {
            dest: dest.to_path_buf(),
            out: None,
            header: None,
            band: Vec::new(),
            band_y: 0,
            pixels: None,
            modes: Vec::new(),
            res: Vec::new(),
            res_prev: Vec::new(),
            trial: Vec::new(),
            counts: vp8l::ALPHABETS.map(|n| vec![0; n]),
        }
    }

    /// The next `n` whole rows of the image (`rows`, in the header's layout), as a band.
    pub(super) fn push_rows(&mut self, rows: &[u8], n: u32) -> Result<()> {
        self.band[..rows.len()].copy_from_slice(rows);
        self.push_band(n)?;
        self.band_y += n;
        Ok(())
    }

    /// The `ALPH` chunk of a lossy WebP: lossless compression, no filter, and the image-stream
    /// of the grey rows pushed (alpha in green), without VP8L's header.
    pub(super) fn write_alpha(&mut self, out: &mut OutputFile) -> Result<()> {
        let h = self.header.clone().ok_or_else(|| super::out_of_order("write_alpha() before begin()", "WebpSink"))?;
        let dest = self.dest.clone();
        let io = |e: std::io::Error| Error::io(&dest, e);
        let at = out.pos();
        out.write_all(b"ALPH\0\0\0\0\x01")?;
        let mut bw = BitWriter::new(&mut *out);
        self.write_header(&mut bw, &h, None).map_err(io)?;
        self.write_pixels(&mut bw, &h).map_err(io)?;
        let (out, len) = bw.finish().map_err(io)?;
        out.patch(at + 4, &(len as u32 + 1).to_le_bytes())?;
        if (len + 1) % 2 == 1 {
            out.write_all(&[0])?;
        }
        self.pixels = None;
        Ok(())
    }

    /// The band's first `rows` rows into the scratch file; each block row, once complete, gets
    /// its predictor modes and is counted.
    fn push_band(&mut self, rows: u32) -> Result<()> {
        let h = self.header.as_ref().ok_or_else(|| super::out_of_order("a write before begin()", "WebpSink"))?;
        let (w, height, layout) = (h.width as usize, h.height as usize, h.layout);
        let row_bytes = w * layout.bytes_per_pixel();
        for r in 0..rows as usize {
            let y = self.band_y as usize + r;
            let (map, _) =
                self.pixels.as_mut().ok_or_else(|| super::out_of_order("a write after finish()", "WebpSink"))?;
            let out: &mut [[u8; 4]] = bytemuck::cast_slice_mut(&mut map[y * w * 4..(y + 1) * w * 4]);
            to_argb(&self.band[r * row_bytes..(r + 1) * row_bytes], layout, out);
            if (y + 1).is_multiple_of(BLOCK) || y + 1 == height {
                self.close_block_row(y / BLOCK * BLOCK..y + 1, w);
            }
        }
        Ok(())
    }

    /// Chooses the mode of each block of rows `rows` (the one whose residuals are smallest in
    /// magnitude; the first on a tie), then counts the rows' tokens and releases their pages.
    fn close_block_row(&mut self, rows: std::ops::Range<usize>, w: usize) {
        let Some((map, _)) = &self.pixels else { return };
        let blocks = w.div_ceil(BLOCK);
        let mut cost = vec![0u64; vp8l::PREDICTOR_MODES.len() * blocks];
        let uniform = vp8l::PREDICTOR_MODES.map(|m| vec![m; blocks]);
        for y in rows.clone() {
            let prev = (y > 0).then(|| row(map, w, y - 1));
            for (i, modes) in uniform.iter().enumerate() {
                vp8l::residuals(modes, row(map, w, y), prev, &mut self.trial);
                for (x, r) in self.trial.iter().enumerate() {
                    let size: u32 = r.iter().map(|&v| (v as i8).unsigned_abs() as u32).sum();
                    cost[i * blocks + x / BLOCK] += size as u64;
                }
            }
        }
        let first = self.modes.len();
        for b in 0..blocks {
            let best = (0..vp8l::PREDICTOR_MODES.len()).min_by_key(|&i| (cost[i * blocks + b], i)).unwrap_or(0);
            self.modes.push(vp8l::PREDICTOR_MODES[best]);
        }
        let counts = &mut self.counts;
        for y in rows.clone() {
            let prev = (y > 0).then(|| row(map, w, y - 1));
            vp8l::residuals(&self.modes[first..], row(map, w, y), prev, &mut self.res);
            vp8l::tokens(&self.res, (y > 0).then_some(&self.res_prev[..]), |t| match t {
                Token::Literal(px) => px.iter().enumerate().for_each(|(c, &v)| counts[c][v as usize] += 1),
                Token::Copy { len, dist } => {
                    counts[0][256 + vp8l::prefix(len as u32).0] += 1;
                    counts[4][vp8l::prefix(dist as u32).0] += 1;
                }
            });
            std::mem::swap(&mut self.res, &mut self.res_prev);
        }
        // The last row stays: it is the next block row's row above.
        crate::store::release_bytes(map, rows.start * w * 4, (rows.end - 1) * w * 4);
    }

    /// Writes the whole file: the container (see [`container`]) round the VP8L chunk (header,
    /// transforms, codes and every pixel's codes).
    fn write_file(&mut self, out: &mut OutputFile) -> Result<()> {
        let h = self.header.clone().ok_or_else(|| super::out_of_order("finish() before begin()", "WebpSink"))?;
        let dest = self.dest.clone();
        let io = |e: std::io::Error| Error::io(&dest, e);
        let alpha = h.layout.channels.has_alpha();
        container(out, &h, alpha, false, |out| {
            let vp8l_at = out.pos();
            out.write_all(b"VP8L\0\0\0\0")?;
            let mut bw = BitWriter::new(&mut *out);
            self.write_header(&mut bw, &h, Some(alpha)).map_err(io)?;
            self.write_pixels(&mut bw, &h).map_err(io)?;
            let (out, len) = bw.finish().map_err(io)?;
            out.patch(vp8l_at + 4, &(len as u32).to_le_bytes())?;
            if len % 2 == 1 {
                out.write_all(&[0])?;
            }
            Ok(())
        })
    }

    /// The VP8L header (left out when `alpha` is `None`: an `ALPH` chunk's image-stream has
    /// none) and transforms: subtract-green, then the predictor with its image of block modes
    /// (in green; the other channels' one-symbol codes take no bits).
    fn write_header<W: std::io::Write>(
        &self,
        bw: &mut BitWriter<W>,
        h: &SinkHeader,
        alpha: Option<bool>,
    ) -> std::io::Result<()> {
        if let Some(alpha) = alpha {
            bw.put(0x2f, 8)?;
            bw.put(h.width - 1, 14)?;
            bw.put(h.height - 1, 14)?;
            bw.put(alpha as u32, 1)?;
            bw.put(0, 3)?;
        }
        // Transforms (the decoder undoes them last to first): subtract-green, predictor.
        bw.put(1, 1)?;
        bw.put(2, 2)?;
        bw.put(1, 1)?;
        bw.put(0, 2)?;
        bw.put(vp8l::PREDICTOR_BITS - 2, 3)?;
        bw.put(0, 1)?; // no colour cache in the predictor image
        let mut codes = Vec::with_capacity(5);
        for (c, &size) in vp8l::ALPHABETS.iter().enumerate() {
            let mut hist = vec![0u64; size];
            if c == 0 {
                self.modes.iter().for_each(|&m| hist[m as usize] += 1);
            } else {
                hist[0] = 1;
            }
            let code = Code::from_counts(&hist);
            code.write(bw, &hist)?;
            codes.push(code);
        }
        for &m in &self.modes {
            put_token(bw, &codes, Token::Literal([m, 0, 0, 0]))?;
        }
        bw.put(0, 1)?; // no more transforms
        bw.put(0, 1)?; // no colour cache
        bw.put(0, 1) // one prefix-code group
    }

    /// The main image's codes, then every row's tokens, its residuals made again from the
    /// scratch file's pixels with the blocks' modes.
    fn write_pixels<W: std::io::Write>(&mut self, bw: &mut BitWriter<W>, h: &SinkHeader) -> std::io::Result<()> {
        let mut codes = Vec::with_capacity(5);
        for hist in &self.counts {
            let code = Code::from_counts(hist);
            code.write(bw, hist)?;
            codes.push(code);
        }
        let Some((map, _)) = &self.pixels else { return Err(std::io::Error::other("no pixels")) };
        let (w, blocks) = (h.width as usize, (h.width as usize).div_ceil(BLOCK));
        let mut released = 0;
        for y in 0..h.height as usize {
            let modes = &self.modes[y / BLOCK * blocks..(y / BLOCK + 1) * blocks];
            vp8l::residuals(modes, row(map, w, y), (y > 0).then(|| row(map, w, y - 1)), &mut self.res);
            let mut result = Ok(());
            vp8l::tokens(&self.res, (y > 0).then_some(&self.res_prev[..]), |t| {
                if result.is_ok() {
                    result = put_token(bw, &codes, t);
                }
            });
            result?;
            std::mem::swap(&mut self.res, &mut self.res_prev);
            if (y + 1) * w * 4 - released >= RELEASE_EVERY {
                // The row just coded stays: it is the next one's row above.
                crate::store::release_bytes(map, released, y * w * 4);
                released = y * w * 4;
            }
        }
        Ok(())
    }
}

/// Writes one token with the image's codes (green and lengths, red, blue, alpha, distance).
#[inline]
fn put_token<W: std::io::Write>(bw: &mut BitWriter<W>, codes: &[Code], t: Token) -> std::io::Result<()> {
    match t {
        Token::Literal(px) => {
            for (code, &v) in codes.iter().zip(&px) {
                code.put(bw, v as usize)?;
            }
        }
        Token::Copy { len, dist } => {
            let (sym, bits, extra) = vp8l::prefix(len as u32);
            codes[0].put(bw, 256 + sym)?;
            bw.put(extra, bits)?;
            let (sym, bits, extra) = vp8l::prefix(dist as u32);
            codes[4].put(bw, sym)?;
            bw.put(extra, bits)?;
        }
    }
    Ok(())
}

/// A WebP file round the image chunk(s) that `image` writes: the RIFF header, a VP8X header
/// when there is metadata to carry or `extended` asks (lossy alpha), the ICC profile, then after
/// the image the EXIF and XMP chunks; the RIFF size patched at the end.
pub(super) fn container(
    out: &mut OutputFile,
    h: &SinkHeader,
    alpha: bool,
    extended: bool,
    image: impl FnOnce(&mut OutputFile) -> Result<()>,
) -> Result<()> {
    let icc = h.icc_profile.as_deref().filter(|p| suits_rgb(p));
    // WebP's only place for a resolution is EXIF: one is made when the input brought none.
    let made = h.metadata.exif.is_none().then(|| h.metadata.dpi.map(crate::exif::resolution_only)).flatten();
    let (exif, xmp) = (h.metadata.exif.as_deref().or(made.as_deref()), h.metadata.xmp.as_deref());
    out.write_all(b"RIFF\0\0\0\0WEBP")?;
    if extended || icc.is_some() || exif.is_some() || xmp.is_some() {
        let flag = |on: bool, bit: u8| (on as u8) << bit;
        let flags = flag(icc.is_some(), 5) | flag(alpha, 4) | flag(exif.is_some(), 3) | flag(xmp.is_some(), 2);
        let mut vp8x = vec![flags, 0, 0, 0];
        vp8x.extend_from_slice(&(h.width - 1).to_le_bytes()[..3]);
        vp8x.extend_from_slice(&(h.height - 1).to_le_bytes()[..3]);
        chunk(out, b"VP8X", &vp8x)?;
    }
    if let Some(p) = icc {
        chunk(out, b"ICCP", p)?;
    }
    image(out)?;
    if let Some(e) = exif {
        chunk(out, b"EXIF", e)?;
    }
    if let Some(x) = xmp {
        chunk(out, b"XMP ", x)?;
    }
    let riff = out.pos() - 8;
    out.patch(4, &(riff as u32).to_le_bytes())
}

/// A RIFF chunk: its FourCC, size and data, padded to an even length.
fn chunk(out: &mut OutputFile, fourcc: &[u8; 4], data: &[u8]) -> Result<()> {
    out.write_all(fourcc)?;
    out.write_all(&(data.len() as u32).to_le_bytes())?;
    out.write_all(data)?;
    if data.len() % 2 == 1 {
        out.write_all(&[0])?;
    }
    Ok(())
}

/// Whether an ICC profile describes RGB data (WebP holds RGB even for a grey image, so a
/// grey profile would misdescribe it).
fn suits_rgb(profile: &[u8]) -> bool {
    profile.get(16..20) == Some(b"RGB ")
}

/// One row of `layout` (16-bit samples little-endian) as subtract-green pixels.
fn to_argb(row: &[u8], layout: Layout, out: &mut [[u8; 4]]) {
    to_rgba8(row, layout, out);
    for p in out.iter_mut() {
        *p = vp8l::subtract_green(p[0], p[1], p[2], p[3]);
    }
}

/// One row of `layout` (16-bit samples little-endian) as 8-bit RGBA (grey spread to RGB,
/// opaque without alpha, 16-bit rounded).
pub(super) fn to_rgba8(row: &[u8], layout: Layout, out: &mut [[u8; 4]]) {
    let ch = layout.channels.count();
    let sample = |i: usize| -> u8 {
        match layout.depth {
            Depth::U8 => row[i],
            _ => crate::pixel::round_to_8(u16::from_le_bytes([row[2 * i], row[2 * i + 1]])),
        }
    };
    for (x, o) in out.iter_mut().enumerate() {
        let i = x * ch;
        let (r, g, b, a) = match layout.channels {
            Channels::Gray => (sample(i), sample(i), sample(i), 255),
            Channels::GrayAlpha => (sample(i), sample(i), sample(i), sample(i + 1)),
            Channels::Rgb => (sample(i), sample(i + 1), sample(i + 2), 255),
            _ => (sample(i), sample(i + 1), sample(i + 2), sample(i + 3)),
        };
        *o = [r, g, b, a];
    }
}

impl TileSink for WebpSink {
    fn begin(&mut self, h: &SinkHeader) -> Result<()> {
        if let Some(why) = refusal(h.width, h.height, h.layout) {
            return Err(Error::usage(format!("{}: {why}", self.dest.display())));
        }
        let len = h.width as u64 * h.height as u64 * 4;
        let dir = crate::store::parent_dir(&self.dest);
        let (map, file, _) = crate::store::scratch_mapping(dir, len, "webp", "the WebP pixels")?;
        self.pixels = Some((map, file));
        self.band = vec![0; h.width as usize * h.tile as usize * h.layout.bytes_per_pixel()];
        let row = vec![[0u8; 4]; h.width as usize];
        (self.res, self.res_prev, self.trial) = (row.clone(), row.clone(), row);
        self.header = Some(h.clone());
        Ok(())
    }

    fn encoder(&self) -> Result<Box<dyn TileEncoder>> {
        Ok(Box::new(Raw))
    }

    fn write_tile(&mut self, job: &TileJob, data: &[u8]) -> Result<()> {
        let h = self.header.as_ref().ok_or_else(|| super::out_of_order("write_tile() before begin()", "WebpSink"))?;
        if let Some(rows) = super::png::place_in_band(&mut self.band, self.band_y, h, job, data)? {
            self.push_band(rows)?;
            self.band_y += rows;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<u64> {
        let mut out = self.out.take().ok_or_else(|| super::out_of_order("finish() twice", "WebpSink"))?;
        self.write_file(&mut out)?;
        self.pixels = None;
        out.commit()
    }

    fn memory(&self, h: &SinkHeader) -> u64 {
        // The band, three rows of residuals, the mode costs and every block's mode, the bit
        // writer's buffer, the file buffer and the scratch pages resident between two releases
        // (the rows of a band and of a block row while writing, 8 MiB while reading back).
        let (w, h2) = (h.width as u64, h.height as u64);
        let band = w * h.tile as u64 * h.layout.bytes_per_pixel() as u64;
        let blocks = w.div_ceil(BLOCK as u64) * h2.div_ceil(BLOCK as u64);
        let costs = w.div_ceil(BLOCK as u64) * vp8l::PREDICTOR_MODES.len() as u64 * 8;
        let resident = (w * 4 * (h.tile as u64 + BLOCK as u64 + 1)).max(RELEASE_EVERY as u64);
        band + w * 12 + costs + blocks + (1 << 20) + (1 << 16) + resident
    }
}
