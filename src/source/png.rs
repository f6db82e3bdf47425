//! PNG via the png crate: 1/2/4/8/16-bit, grey, grey+alpha, palette, RGB, RGBA, Adam7.
//! Palette and low bit depths are expanded to 8 bits, tRNS to an alpha channel; 16-bit
//! samples (big-endian in the file) are stored in native order.

use super::{guarded, RowSource, RowWriter};
use crate::error::{Error, Result};
use crate::pixel::{Channels, Depth, Format, ImageInfo, Layout};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

pub(crate) struct PngSource {
    path: PathBuf,
    info: ImageInfo,
    interlaced: bool,
    limit: usize,
}

fn decoder(path: &Path, limit: usize) -> Result<png::Decoder<BufReader<File>>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut d = png::Decoder::new_with_limits(BufReader::new(f), png::Limits { bytes: limit });
    d.set_transformations(png::Transformations::EXPAND);
    Ok(d)
}

fn err(path: &Path, e: png::DecodingError) -> Error {
    match e {
        png::DecodingError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::format(path, "truncated PNG (unexpected end of file)")
        }
        png::DecodingError::IoError(io) => Error::io(path, io),
        png::DecodingError::LimitsExceeded => {
            Error::format(path, "PNG needs more decoder memory than the budget allows")
        }
        other => Error::format(path, format!("invalid PNG: {other}")),
    }
}

impl PngSource {
    pub(crate) fn open(path: &Path, max_memory: u64) -> Result<PngSource> {
        let limit = max_memory.min(usize::MAX as u64) as usize;
        guarded(path, "PNG header", || {
            let reader = decoder(path, limit)?.read_info().map_err(|e| err(path, e))?;
            let (ct, bd) = reader.output_color_type();
            let pi = reader.info();
            let channels = match ct {
                png::ColorType::Grayscale => Channels::Gray,
                png::ColorType::GrayscaleAlpha => Channels::GrayAlpha,
                png::ColorType::Rgb => Channels::Rgb,
                png::ColorType::Rgba => Channels::Rgba,
                png::ColorType::Indexed => return Err(Error::unsupported(path, "palette PNG was not expanded")),
            };
            let depth = match bd {
                png::BitDepth::Eight => Depth::U8,
                png::BitDepth::Sixteen => Depth::U16,
                other => return Err(Error::unsupported(path, format!("PNG bit depth {other:?} after expansion"))),
            };
            let details = vec![
                ("stored".to_string(), format!("{:?} {}-bit", pi.color_type, pi.bit_depth as u8)),
                ("interlaced".to_string(), if pi.interlaced { "adam7" } else { "no" }.to_string()),
            ];
            Ok(PngSource {
                path: path.to_path_buf(),
                interlaced: pi.interlaced,
                info: ImageInfo {
                    width: pi.width,
                    height: pi.height,
                    layout: Layout::new(channels, depth),
                    format: Format::Png,
                    icc_profile: pi.icc_profile.as_ref().map(|c| c.to_vec()),
                    details,
                    metadata: png_metadata(pi),
                },
                limit,
            })
        })
    }
}

impl RowSource for PngSource {
    fn info(&self) -> &ImageInfo {
        &self.info
    }
    fn decode_memory(&self) -> u64 {
        // Current and previous raw rows plus the inflate window and our output row.
        4 * self.info.row_bytes() as u64 + (256 << 10)
    }
    fn decodes_bands(&self) -> bool {
        !self.interlaced
    }
    fn decode(&mut self, out: &mut RowWriter<'_>) -> Result<()> {
        let path = self.path.clone();
        let info = self.info.clone();
        let interlaced = self.interlaced;
        let limit = self.limit;
        guarded(&path, "PNG data", || {
            let mut reader = decoder(&path, limit)?.read_info().map_err(|e| err(&path, e))?;
            let row_bytes = out.row_bytes();
            let bpp_bits = (info.layout.bytes_per_pixel() * 8) as u8;
            let sixteen = info.layout.depth == Depth::U16;
            let mut y = 0usize;
            let mut rows = 0usize;
            let height = out.height();
            while let Some(row) = reader.next_interlaced_row().map_err(|e| err(&path, e))? {
                match *row.interlace() {
                    png::InterlaceInfo::Null(_) => {
                        let dst = out.row_mut(y)?;
                        if row.data().len() != dst.len() {
                            return Err(Error::format(&path, "PNG row has the wrong length"));
                        }
                        if sixteen {
                            for (d, s) in dst.chunks_exact_mut(2).zip(row.data().chunks_exact(2)) {
                                d.copy_from_slice(&u16::from_be_bytes([s[0], s[1]]).to_ne_bytes());
                            }
                        } else {
                            dst.copy_from_slice(row.data());
                        }
                        out.row_done(y)?;
                        y += 1;
                        if out.complete() {
                            // A unit's band is in: the rows below are not needed.
                            return Ok(());
                        }
                    }
                    png::InterlaceInfo::Adam7(ref a7) => {
                        png::expand_interlaced_row(out.whole_mut(), row_bytes, row.data(), a7, bpp_bits);
                        rows += 1;
                        out.row_done(rows % height.max(1))?;
                    }
                }
            }
            if interlaced && sixteen {
                for yy in 0..height {
                    for s in out.row_mut(yy)?.chunks_exact_mut(2) {
                        let v = u16::from_be_bytes([s[0], s[1]]);
                        s.copy_from_slice(&v.to_ne_bytes());
                    }
                    out.row_done(yy)?;
                }
            }
            if !interlaced && y != height {
                return Err(Error::format(&path, format!("truncated PNG: {y} of {height} rows")));
            }
            Ok(())
        })?;
        out.finish_bulk();
        Ok(())
    }
}

/// A PNG's resolution (`pHYs` in metres), EXIF (`eXIf`) and XMP (the `iTXt` chunk keyed
/// `XML:com.adobe.xmp`).
fn png_metadata(pi: &png::Info<'_>) -> crate::pixel::Metadata {
    let mut m = crate::pixel::Metadata::default();
    if let Some(d) = pi.pixel_dims.filter(|d| d.unit == png::Unit::Meter && d.xppu > 0 && d.yppu > 0) {
        m.dpi = Some((d.xppu as f64 * 0.0254, d.yppu as f64 * 0.0254));
    }
    m.exif = pi.exif_metadata.as_ref().map(|e| e.to_vec());
    m.orientation = m.exif.as_deref().and_then(crate::exif::orientation);
    let xmp = pi.utf8_text.iter().find(|t| t.keyword == "XML:com.adobe.xmp");
    m.xmp = xmp.and_then(|t| {
        let mut t = t.clone();
        t.decompress_text_with_limit(16 << 20).ok()?;
        t.get_text().ok().map(String::into_bytes)
    });
    m
}
