//! JPEG sink: like the PNG sink, each row of tiles is assembled into a band and pushed to the
//! encoder (libjpeg-turbo, baseline), so only `width x tile` pixels are held. 8-bit grey or
//! RGB out (16-bit samples are rounded to 8 bits; alpha is refused before the job starts, as
//! is a side over JPEG's 65535).

use super::jpeg_encoder::{Encoder, Settings};
use super::png::{place_in_band, unshare, SharedOut};
use super::{OutputFile, Raw, SinkHeader, TileEncoder, TileSink};
use crate::error::{Error, Result};
use crate::libjpeg::errors::Failure;
use crate::pixel::{Channels, Depth, Layout};
use crate::plan::TileJob;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// JPEG's largest width or height.
pub const MAX_SIDE: u32 = 65535;
/// The quality when none is given.
pub const DEFAULT_QUALITY: u8 = 90;

/// How chroma is sampled in a JPEG output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Subsampling {
    /// Full-resolution chroma (4:4:4): no colour bleeding, larger files.
    #[default]
    Full,
    /// Chroma at half resolution both ways (4:2:0): the usual for photos, smaller files.
    Half,
}

impl Subsampling {
    /// Every value, in the order `--help` lists them.
    pub const ALL: [Subsampling; 2] = [Subsampling::Full, Subsampling::Half];
    /// The name on the command line: `444` or `420`.
    pub fn name(self) -> &'static str {
        match self {
            Subsampling::Full => "444",
            Subsampling::Half => "420",
        }
    }
    /// The value named `name`.
    pub fn from_name(name: &str) -> Option<Subsampling> {
        Subsampling::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Why `layout` at `w x h` cannot be a JPEG, if it cannot.
pub fn refusal(w: u32, h: u32, layout: Layout) -> Option<String> {
    if w > MAX_SIDE || h > MAX_SIDE {
        return Some(format!(
            "{w}x{h} is over JPEG's limit of {MAX_SIDE} px a side; name the output .tif (tiled BigTIFF), \
             .png or .ome.zarr"
        ));
    }
    if matches!(layout.channels, Channels::GrayAlpha | Channels::Rgba) {
        return Some("the image has an alpha channel, which JPEG cannot hold; name the output .png or .tif".into());
    }
    None
}

/// A JPEG written to disk, band by band.
pub struct JpegSink {
    dest: PathBuf,
    quality: u8,
    subsampling: Subsampling,
    out: Option<OutputFile>,
    shared: Option<Arc<Mutex<OutputFile>>>,
    encoder: Option<Encoder>,
    header: Option<SinkHeader>,
    band: Vec<u8>,
    band_y: u32,
}

impl JpegSink {
    /// Creates the temporary output beside `dest`; `quality` 1-100.
    pub fn create(dest: &Path, quality: u8, subsampling: Subsampling) -> Result<JpegSink> {
        if !(1..=100).contains(&quality) {
            return Err(Error::usage(format!("--quality {quality}: give 1 to 100")));
        }
        Ok(JpegSink {
            dest: dest.to_path_buf(),
            quality,
            subsampling,
            out: Some(OutputFile::create(dest)?),
            shared: None,
            encoder: None,
            header: None,
            band: Vec::new(),
            band_y: 0,
        })
    }

    fn jerr(&self, f: Failure) -> Error {
        match f {
            Failure::Io(msg) => Error::io(&self.dest, std::io::Error::other(msg)),
            Failure::Libjpeg(msg) => Error::format(&self.dest, format!("JPEG encoder: {msg}")),
        }
    }

    /// Pushes the band's first `rows` rows to the encoder (16-bit samples rounded to 8 bits,
    /// in place).
    fn flush_band(&mut self, rows: u32) -> Result<()> {
        let h = self.header.as_ref().ok_or_else(|| super::out_of_order("a write before begin()", "JpegSink"))?;
        let (w, ch) = (h.width as usize, h.layout.channels.count());
        let row_bytes = w * h.layout.bytes_per_pixel();
        let band = &mut self.band[..rows as usize * row_bytes];
        let eight = if h.layout.depth == Depth::U16 {
            let n = band.len() / 2;
            for i in 0..n {
                band[i] = crate::pixel::round_to_8(u16::from_le_bytes([band[2 * i], band[2 * i + 1]]));
            }
            &band[..n]
        } else {
            &band[..]
        };
        let enc = self.encoder.as_mut().ok_or_else(|| super::out_of_order("a write after finish()", "JpegSink"))?;
        let r = enc.write_rows(eight, w * ch);
        r.map_err(|f| self.jerr(f))
    }
}

impl TileSink for JpegSink {
    fn begin(&mut self, h: &SinkHeader) -> Result<()> {
        if let Some(why) = refusal(h.width, h.height, h.layout) {
            return Err(Error::usage(format!("{}: {why}", self.dest.display())));
        }
        let out = self.out.take().ok_or_else(|| super::out_of_order("begin() twice", "JpegSink"))?;
        let shared = Arc::new(Mutex::new(out));
        self.shared = Some(shared.clone());
        let settings = Settings {
            width: h.width,
            height: h.height,
            components: h.layout.channels.count() as u8,
            quality: self.quality,
            half_chroma: self.subsampling == Subsampling::Half,
            dpi: h.metadata.dpi,
        };
        let mut app1 = Vec::new();
        if let Some(exif) = &h.metadata.exif {
            app1.push([b"Exif\0\0".as_slice(), exif].concat());
        }
        if let Some(xmp) = &h.metadata.xmp {
            app1.push([crate::libjpeg::XMP_PREFIX, xmp].concat());
        }
        let started = Encoder::start(Box::new(SharedOut(shared)), settings, h.icc_profile.as_deref(), &app1);
        self.encoder = Some(started.map_err(|f| self.jerr(f))?);
        self.band = vec![0; h.width as usize * h.tile as usize * h.layout.bytes_per_pixel()];
        self.header = Some(h.clone());
        Ok(())
    }

    fn encoder(&self) -> Result<Box<dyn TileEncoder>> {
        Ok(Box::new(Raw))
    }

    fn write_tile(&mut self, job: &TileJob, data: &[u8]) -> Result<()> {
        let h = self.header.as_ref().ok_or_else(|| super::out_of_order("write_tile() before begin()", "JpegSink"))?;
        if let Some(rows) = place_in_band(&mut self.band, self.band_y, h, job, data)? {
            self.flush_band(rows)?;
            self.band_y += rows;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<u64> {
        let enc =
            self.encoder.take().ok_or_else(|| super::out_of_order("finish() before begin() or twice", "JpegSink"))?;
        enc.finish().map_err(|f| self.jerr(f))?;
        unshare(self.shared.take(), "JpegSink")?.commit()
    }

    fn memory(&self, h: &SinkHeader) -> u64 {
        // The band; libjpeg's row groups (16 rows of each component, as 8-bit samples, and
        // their coefficients), its tables and the 256 KiB output buffer; the file buffer.
        let band = h.width as u64 * h.tile as u64 * h.layout.bytes_per_pixel() as u64;
        band + h.width as u64 * 16 * 3 * 4 + (2 << 20)
    }
}
