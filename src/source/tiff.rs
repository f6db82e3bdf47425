//! TIFF and BigTIFF via the tiff crate: strips or tiles, 8/16-bit unsigned, grey, grey+alpha,
//! RGB, RGBA, chunky (interleaved) samples, every compression the crate decodes. One chunk is
//! decoded at a time and copied into the store.

use super::{guarded, RowSource, RowWriter};
use crate::error::{Error, Result};
use crate::pixel::{Channels, Depth, Format, ImageInfo, Layout};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use tiff::decoder::{ChunkType, Decoder, DecodingResult, Limits};
use tiff::tags::{PlanarConfiguration, SampleFormat, Tag};
use tiff::ColorType;

pub(crate) struct TiffSource {
    path: PathBuf,
    info: ImageInfo,
    chunk_bytes: u64,
    /// Bytes of the largest stored chunk (as compressed in the file).
    stored_bytes: u64,
    /// Whether chunks are compressed (else they are read straight into the decoded buffer).
    compressed: bool,
    limits: (usize, usize),
}

fn err(path: &Path, e: tiff::TiffError) -> Error {
    match e {
        tiff::TiffError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::format(path, "truncated TIFF (unexpected end of file)")
        }
        tiff::TiffError::IoError(io) => Error::io(path, io),
        tiff::TiffError::LimitsExceeded => Error::format(path, "TIFF chunk larger than the memory budget allows"),
        tiff::TiffError::UnsupportedError(u) => Error::unsupported(path, format!("TIFF: {u}")),
        other => Error::format(path, format!("invalid TIFF: {other}")),
    }
}

fn open_decoder(path: &Path, limits: (usize, usize)) -> Result<Decoder<BufReader<File>>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut l = Limits::default();
    l.decoding_buffer_size = limits.0;
    l.intermediate_buffer_size = limits.0;
    l.ifd_value_size = limits.1;
    Ok(Decoder::new(BufReader::new(f)).map_err(|e| err(path, e))?.with_limits(l))
}

/// The largest stored (compressed) chunk, from the byte-count table: what the decoder reads
/// before it decompresses. An absent or damaged table counts a whole decoded chunk.
fn largest_stored_chunk(d: &mut Decoder<BufReader<File>>, chunk_type: ChunkType, chunk_bytes: u64) -> u64 {
    let counts_tag = match chunk_type {
        ChunkType::Strip => Tag::StripByteCounts,
        ChunkType::Tile => Tag::TileByteCounts,
    };
    d.find_tag_unsigned_vec::<u64>(counts_tag)
        .ok()
        .flatten()
        .and_then(|v| v.into_iter().max())
        .map_or(chunk_bytes, |m| m.min(chunk_bytes.saturating_mul(2) + 1024))
}

impl TiffSource {
    pub(crate) fn open(path: &Path, max_memory: u64) -> Result<TiffSource> {
        // One decoded chunk may take the whole budget (the memory plan then checks the rest);
        // tag arrays are capped separately.
        let cap = max_memory.min(usize::MAX as u64) as usize;
        let limits = (cap, (cap / 8).clamp(1 << 20, 64 << 20));
        guarded(path, "TIFF header", || {
            let mut d = open_decoder(path, limits)?;
            let (width, height) = d.dimensions().map_err(|e| err(path, e))?;
            let ct = d.colortype().map_err(|e| err(path, e))?;
            let (channels, bits) = match ct {
                ColorType::Gray(b) => (Channels::Gray, b),
                ColorType::GrayA(b) => (Channels::GrayAlpha, b),
                ColorType::RGB(b) => (Channels::Rgb, b),
                ColorType::RGBA(b) => (Channels::Rgba, b),
                other => {
                    return Err(Error::unsupported(
                        path,
                        format!("TIFF colour type {other:?} (grey, grey+alpha, RGB, RGBA are supported)"),
                    ))
                }
            };
            let depth = match bits {
                8 => Depth::U8,
                16 => Depth::U16,
                b => {
                    return Err(Error::unsupported(path, format!("TIFF with {b}-bit samples (8 and 16 are supported)")))
                }
            };
            if let Some(v) = d.find_tag_unsigned_vec::<u16>(Tag::SampleFormat).map_err(|e| err(path, e))? {
                if v.iter().any(|&s| s != SampleFormat::Uint.to_u16()) {
                    return Err(Error::unsupported(path, "TIFF with signed or floating-point samples"));
                }
            }
            let planar = d.find_tag_unsigned::<u16>(Tag::PlanarConfiguration).map_err(|e| err(path, e))?;
            if planar == Some(PlanarConfiguration::Planar.to_u16()) {
                return Err(Error::unsupported(path, "planar (separate) TIFF sample layout"));
            }
            let compression = d.find_tag_unsigned::<u16>(Tag::Compression).map_err(|e| err(path, e))?.unwrap_or(1);
            let icc = d.find_tag(Tag::Unknown(34675)).ok().flatten().and_then(|v| v.into_u8_vec().ok());
            let (cw, ch) = d.chunk_dimensions();
            let chunk_type = d.get_chunk_type();
            let details = vec![
                (
                    "layout".to_string(),
                    match chunk_type {
                        ChunkType::Tile => format!("tiled {cw}x{ch}"),
                        ChunkType::Strip => format!("strips of {ch} rows"),
                    },
                ),
                ("compression".to_string(), compression.to_string()),
            ];
            let info = ImageInfo {
                width,
                height,
                layout: Layout::new(channels, depth),
                format: Format::Tiff,
                icc_profile: icc,
                details,
                metadata: tiff_metadata(&mut d),
            };
            let chunk_bytes = cw as u64 * ch as u64 * info.layout.bytes_per_pixel() as u64;
            let stored_bytes = largest_stored_chunk(&mut d, chunk_type, chunk_bytes);
            Ok(TiffSource {
                path: path.to_path_buf(),
                info,
                chunk_bytes,
                stored_bytes,
                compressed: compression != 1,
                limits,
            })
        })
    }
}

impl RowSource for TiffSource {
    fn info(&self) -> &ImageInfo {
        &self.info
    }
    fn decode_memory(&self) -> u64 {
        // One decoded chunk (its rows are copied into the store straight from it), the stored
        // chunk the decoder reads it from (uncompressed: none beyond the decoded one), and
        // codec state. A single-strip image counts its strip once, plus its compressed form.
        let stored = if self.compressed { self.stored_bytes } else { 0 };
        self.chunk_bytes + stored + (1 << 20)
    }
    fn decode(&mut self, out: &mut RowWriter<'_>) -> Result<()> {
        let path = self.path.clone();
        let info = self.info.clone();
        let limits = self.limits;
        debug_assert!(self.stored_bytes > 0 || !self.compressed);
        guarded(&path, "TIFF data", || {
            let mut d = open_decoder(&path, limits)?;
            let bpp = info.layout.bytes_per_pixel();
            let (cw, ch) = d.chunk_dimensions();
            if cw == 0 || ch == 0 {
                return Err(Error::format(&path, "TIFF chunk of zero size"));
            }
            let across = info.width.div_ceil(cw);
            let down = info.height.div_ceil(ch);
            let count = across as u64 * down as u64;
            let declared = match d.get_chunk_type() {
                ChunkType::Strip => d.strip_count(),
                ChunkType::Tile => d.tile_count(),
            }
            .map_err(|e| err(&path, e))?;
            if declared as u64 != count {
                return Err(Error::format(&path, format!("TIFF declares {declared} chunks, geometry needs {count}")));
            }
            // Chunks are visited row of chunks by row of chunks so rows complete in order;
            // rows of chunks outside the rows wanted (a unit's band) are not read at all.
            let wanted = out.wanted();
            for cy in 0..down {
                let rows = (cy * ch) as usize..((cy + 1) * ch).min(info.height) as usize;
                if rows.end <= wanted.start {
                    continue;
                }
                if rows.start >= wanted.end {
                    break;
                }
                for cx in 0..across {
                    out.check_cancel()?;
                    let idx = cy * across + cx;
                    let res = d.read_chunk(idx).map_err(|e| err(&path, e))?;
                    let (dw, dh) = d.chunk_data_dimensions(idx);
                    let x0 = (cx * cw) as usize;
                    let y0 = (cy * ch) as usize;
                    let w = (dw as usize).min(info.width as usize - x0);
                    let h = (dh as usize).min(info.height as usize - y0);
                    let src_stride = dw as usize * bpp;
                    // Samples in native byte order, viewed as bytes without a second copy.
                    let bytes: &[u8] = match &res {
                        DecodingResult::U8(v) => v,
                        DecodingResult::U16(v) => bytemuck::cast_slice(v),
                        _ => return Err(Error::unsupported(&path, "TIFF sample type")),
                    };
                    if bytes.len() < (h.saturating_sub(1)) * src_stride + w * bpp {
                        return Err(Error::format(&path, format!("TIFF chunk {idx} is short")));
                    }
                    for r in 0..h {
                        let dst = out.row_mut(y0 + r)?;
                        dst[x0 * bpp..(x0 + w) * bpp].copy_from_slice(&bytes[r * src_stride..r * src_stride + w * bpp]);
                    }
                }
                for y in rows {
                    out.row_done(y)?;
                }
            }
            Ok(())
        })?;
        out.finish_bulk();
        Ok(())
    }
}

/// A TIFF's resolution (XResolution, YResolution, ResolutionUnit: inches or centimetres) and
/// XMP (tag 700). (EXIF lives in a sub-IFD of the TIFF itself; it is not carried.)
fn tiff_metadata<R: std::io::Read + std::io::Seek>(d: &mut tiff::decoder::Decoder<R>) -> crate::pixel::Metadata {
    use tiff::tags::Tag;
    let mut m = crate::pixel::Metadata::default();
    let rational = |v: tiff::decoder::ifd::Value| match v {
        tiff::decoder::ifd::Value::Rational(n, d) if d > 0 => Some(n as f64 / d as f64),
        other => other.into_f64().ok(),
    };
    let x = d.find_tag(Tag::XResolution).ok().flatten().and_then(rational);
    let y = d.find_tag(Tag::YResolution).ok().flatten().and_then(rational);
    let unit = d.find_tag(Tag::ResolutionUnit).ok().flatten().and_then(|v| v.into_u16().ok()).unwrap_or(2);
    let per_inch = match unit {
        2 => Some(1.0),
        3 => Some(2.54),
        _ => None,
    };
    if let (Some(x), Some(y), Some(k)) = (x, y, per_inch) {
        if x > 0.0 && y > 0.0 {
            m.dpi = Some((x * k, y * k));
        }
    }
    m.xmp = d.find_tag(Tag::Unknown(700)).ok().flatten().and_then(|v| v.into_u8_vec().ok());
    m.orientation = d.find_tag(Tag::Unknown(274)).ok().flatten().and_then(|v| v.into_u16().ok());
    m.orientation = m.orientation.filter(|v| (1..=8).contains(v));
    m
}
