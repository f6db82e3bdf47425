//! JPEG via zune-jpeg: baseline and progressive, grey and colour (YCbCr/RGB). CMYK and YCCK
//! are refused. The decoder writes straight into the memory-mapped store.

use super::{guarded, RowSource, RowWriter};
use crate::error::{Error, Result};
use crate::pixel::{Channels, Depth, Format, ImageInfo, Layout};
use std::path::{Path, PathBuf};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

pub(crate) struct JpegSource {
    path: PathBuf,
    data: Vec<u8>,
    info: ImageInfo,
    out_cs: ColorSpace,
    decode_memory: u64,
}

fn options(out_cs: ColorSpace) -> DecoderOptions {
    DecoderOptions::default()
        .set_max_width(65535)
        .set_max_height(65535)
        .set_strict_mode(true)
        .jpeg_set_out_colorspace(out_cs)
}

impl JpegSource {
    pub(crate) fn open(path: &Path, max_memory: u64) -> Result<JpegSource> {
        let len = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
        if len > max_memory {
            return Err(Error::limit(
                format!("{}: reading the compressed JPEG", path.display()),
                len,
                max_memory,
                Some("raise --max-memory".into()),
            ));
        }
        let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let (info, out_cs, progressive) = guarded(path, "JPEG header", || {
            let mut dec = JpegDecoder::new_with_options(ZCursor::new(&data[..]), options(ColorSpace::RGB));
            dec.decode_headers().map_err(|e| Error::format(path, format!("invalid JPEG: {e:?}")))?;
            let hdr = dec.info().ok_or_else(|| Error::format(path, "invalid JPEG: no frame header"))?;
            let in_cs = dec.input_colorspace().unwrap_or(ColorSpace::Unknown);
            let (channels, out_cs) = match in_cs {
                ColorSpace::Luma => (Channels::Gray, ColorSpace::Luma),
                ColorSpace::YCbCr | ColorSpace::RGB => (Channels::Rgb, ColorSpace::RGB),
                ColorSpace::CMYK | ColorSpace::YCCK => {
                    return Err(Error::unsupported(path, "CMYK/YCCK JPEG (convert to RGB first)"))
                }
                other => return Err(Error::unsupported(path, format!("JPEG colour space {other:?}"))),
            };
            let progressive = hdr.sof.is_progressive();
            let details = vec![
                ("coding".to_string(), if progressive { "progressive" } else { "baseline" }.to_string()),
                ("components".to_string(), hdr.components.to_string()),
            ];
            let info = ImageInfo {
                width: hdr.width as u32,
                height: hdr.height as u32,
                layout: Layout::new(channels, Depth::U8),
                format: Format::Jpeg,
                icc_profile: dec.icc_profile(),
                details,
            };
            Ok((info, out_cs, progressive))
        })?;
        let pixels = info.width as u64 * info.height as u64;
        // Working memory: MCU-row buffers, plus all DCT coefficients for progressive files
        // (2 bytes per sample for every component).
        let coeffs = if progressive { pixels * 2 * info.layout.channels.count() as u64 } else { 0 };
        let decode_memory = data.len() as u64 + coeffs + info.width as u64 * 16 * 3 * 4;
        Ok(JpegSource { path: path.to_path_buf(), data, info, out_cs, decode_memory })
    }
}

impl RowSource for JpegSource {
    fn info(&self) -> &ImageInfo {
        &self.info
    }
    fn decode_memory(&self) -> u64 {
        // The decoder fills the whole mapped store in one call, so all of it is resident
        // until it returns.
        self.decode_memory + self.info.total_bytes().unwrap_or(u64::MAX)
    }
    fn decode(&mut self, out: &mut RowWriter<'_>) -> Result<()> {
        out.check_cancel()?;
        let path = &self.path;
        let data = &self.data;
        let out_cs = self.out_cs;
        guarded(path, "JPEG data", || {
            let mut dec = JpegDecoder::new_with_options(ZCursor::new(&data[..]), options(out_cs));
            dec.decode_into(out.whole_mut()).map_err(|e| Error::format(path, format!("corrupt JPEG data: {e:?}")))
        })?;
        out.finish_bulk();
        Ok(())
    }
}
