//! JPEG via libjpeg-turbo's decoder (the `mozjpeg` crate, built from source): baseline and
//! progressive, grey and colour (YCbCr/RGB). CMYK and YCCK are refused.
//!
//! The file is read through a small buffer, never whole. Baseline files are decoded a few
//! scanlines at a time straight into the memory-mapped store, so the decoder's memory is
//! proportional to the width, not the height. Progressive files make libjpeg keep one
//! coefficient buffer for the whole image (2 bytes per coefficient, chroma at its own
//! resolution); that buffer is the decoder's only image-sized allocation and is counted in the
//! memory plan from the frame header ([`coefficient_bytes`]) before decoding starts.
//!
//! libjpeg's warnings (corrupt or truncated data, which it would otherwise paper over with grey)
//! are turned into errors by the error manager in `jpeg_errors.rs`, as strict as before.

use super::jpeg_errors::{strict_error_mgr, Failure};
use super::{RowSource, RowWriter};
use crate::error::{Error, Result};
use crate::pixel::{Channels, Depth, Format, ImageInfo, Layout};
use mozjpeg::{Decompress, Marker};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// Bytes of the read buffer between the file and libjpeg.
const READ_BUFFER: usize = 256 << 10;
/// Scanlines handed to libjpeg per call (one MCU row at most 16 lines).
const BAND: usize = 16;

pub(crate) struct JpegSource {
    path: PathBuf,
    info: ImageInfo,
    decode_memory: u64,
}

/// What the frame header (SOFn) says, read by [`read_frame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Width and height.
    pub size: (u32, u32),
    /// SOF2 (progressive DCT).
    pub progressive: bool,
    /// (horizontal, vertical) sampling factors of each component.
    pub sampling: Vec<(u8, u8)>,
}

/// Bytes of the whole-image coefficient buffer libjpeg keeps for a progressive frame: per
/// component, its blocks padded to whole MCUs, 64 coefficients of 2 bytes each (the layout of
/// libjpeg's `jdcoefct.c`).
pub(crate) fn coefficient_bytes(frame: &Frame) -> u64 {
    let hmax = frame.sampling.iter().map(|s| s.0).max().unwrap_or(1).max(1) as u64;
    let vmax = frame.sampling.iter().map(|s| s.1).max().unwrap_or(1).max(1) as u64;
    let (w, h) = (frame.size.0 as u64, frame.size.1 as u64);
    frame
        .sampling
        .iter()
        .map(|&(hs, vs)| {
            let (hs, vs) = (hs.max(1) as u64, vs.max(1) as u64);
            let wb = (w * hs).div_ceil(8 * hmax).next_multiple_of(hs);
            let hb = (h * vs).div_ceil(8 * vmax).next_multiple_of(vs);
            wb * hb * 128
        })
        .sum()
}

/// Reads markers from the start of the file up to the frame header. Only the segment lengths
/// are followed (no entropy-coded data comes before SOF), so this reads a few KiB at most.
pub(crate) fn read_frame(r: &mut impl Read) -> std::io::Result<Option<Frame>> {
    let mut b = [0u8; 2];
    r.read_exact(&mut b)?;
    if b != [0xFF, 0xD8] {
        return Ok(None);
    }
    loop {
        r.read_exact(&mut b)?;
        if b[0] != 0xFF {
            return Ok(None);
        }
        let mut marker = b[1];
        while marker == 0xFF {
            let mut one = [0u8; 1];
            r.read_exact(&mut one)?;
            marker = one[0];
        }
        r.read_exact(&mut b)?;
        let len = u16::from_be_bytes(b) as usize;
        if len < 2 {
            return Ok(None);
        }
        let mut seg = vec![0u8; len - 2];
        r.read_exact(&mut seg)?;
        // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            if seg.len() < 6 {
                return Ok(None);
            }
            let h = u16::from_be_bytes([seg[1], seg[2]]) as u32;
            let w = u16::from_be_bytes([seg[3], seg[4]]) as u32;
            let n = seg[5] as usize;
            let comps = seg.get(6..6 + 3 * n).unwrap_or(&[]);
            let sampling = comps.chunks_exact(3).map(|c| (c[1] >> 4, c[1] & 15)).collect();
            return Ok(Some(Frame { size: (w, h), progressive: marker == 0xC2, sampling }));
        }
        if marker == 0xDA || marker == 0xD9 {
            return Ok(None);
        }
    }
}

fn open_decoder(path: &Path) -> Result<Decompress<BufReader<std::fs::File>>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = BufReader::with_capacity(READ_BUFFER, file);
    strict(path, "JPEG header", || {
        Decompress::with_err(strict_error_mgr())
            .with_markers(&[Marker::APP(2)])
            .from_reader(reader)
            .map_err(|e| Failure::Io(e.to_string()))
    })
}

/// Runs a libjpeg call, turning its errors (and the warnings made fatal) into format errors.
fn strict<T>(path: &Path, what: &str, f: impl FnOnce() -> std::result::Result<T, Failure>) -> Result<T> {
    super::jpeg_errors::catch(f).map_err(|failure| match failure {
        Failure::Libjpeg(msg) => Error::format(path, format!("{what}: {msg}")),
        Failure::Io(msg) => Error::format(path, format!("{what}: {msg}")),
    })
}

/// Reassembles an ICC profile from its APP2 chunks (`ICC_PROFILE\0`, sequence, count, data).
fn icc_from_markers(dec: &Decompress<BufReader<std::fs::File>>) -> Option<Vec<u8>> {
    let mut chunks: Vec<(u8, &[u8])> = dec
        .markers()
        .filter(|m| m.marker == Marker::APP(2) && m.data.len() > 14 && m.data.starts_with(b"ICC_PROFILE\0"))
        .map(|m| (m.data[12], &m.data[14..]))
        .collect();
    if chunks.is_empty() {
        return None;
    }
    chunks.sort_by_key(|c| c.0);
    Some(chunks.iter().flat_map(|c| c.1.iter().copied()).collect())
}

impl JpegSource {
    pub(crate) fn open(path: &Path, _max_memory: u64) -> Result<JpegSource> {
        let mut head = BufReader::new(std::fs::File::open(path).map_err(|e| Error::io(path, e))?);
        let frame = read_frame(&mut head)
            .map_err(|e| Error::format(path, format!("invalid JPEG: cannot read the frame header ({e})")))?
            .ok_or_else(|| Error::format(path, "invalid JPEG: no frame header before the image data"))?;
        let dec = open_decoder(path)?;
        let channels = match dec.color_space() {
            mozjpeg::ColorSpace::JCS_GRAYSCALE => Channels::Gray,
            mozjpeg::ColorSpace::JCS_YCbCr | mozjpeg::ColorSpace::JCS_RGB => Channels::Rgb,
            mozjpeg::ColorSpace::JCS_CMYK | mozjpeg::ColorSpace::JCS_YCCK => {
                return Err(Error::unsupported(path, "CMYK/YCCK JPEG (convert to RGB first)"))
            }
            other => return Err(Error::unsupported(path, format!("JPEG colour space {other:?}"))),
        };
        let (w, h) = (dec.width() as u32, dec.height() as u32);
        if (w, h) != frame.size {
            return Err(Error::format(path, "invalid JPEG: frame header disagrees with the decoder"));
        }
        let details = vec![
            ("coding".to_string(), if frame.progressive { "progressive" } else { "baseline" }.to_string()),
            ("components".to_string(), frame.sampling.len().to_string()),
        ];
        let info = ImageInfo {
            width: w,
            height: h,
            layout: Layout::new(channels, Depth::U8),
            format: Format::Jpeg,
            icc_profile: icc_from_markers(&dec),
            details,
        };
        // libjpeg's working memory: the read buffer, a band of scanlines per component (up to
        // four MCU rows with context for fancy upsampling), plus the whole-image coefficient
        // buffer for progressive frames.
        let per_row = w as u64 * frame.sampling.len().max(1) as u64;
        let coeffs = if frame.progressive { coefficient_bytes(&frame) } else { 0 };
        let decode_memory = READ_BUFFER as u64 + per_row * 4 * 16 * 2 + coeffs + (256 << 10);
        Ok(JpegSource { path: path.to_path_buf(), info, decode_memory })
    }
}

impl RowSource for JpegSource {
    fn info(&self) -> &ImageInfo {
        &self.info
    }
    fn decode_memory(&self) -> u64 {
        self.decode_memory
    }
    fn decode(&mut self, out: &mut RowWriter<'_>) -> Result<()> {
        out.check_cancel()?;
        let path = self.path.clone();
        let dec = open_decoder(&path)?;
        let grey = self.info.layout.channels == Channels::Gray;
        let mut started = strict(&path, "JPEG data", || {
            if grey { dec.grayscale() } else { dec.rgb() }.map_err(|e| Failure::Io(e.to_string()))
        })?;
        let height = out.height();
        let mut y = 0;
        while y < height {
            let n = BAND.min(height - y);
            let rows = out.rows_mut(y..y + n)?;
            strict(&path, "JPEG data", || {
                started.read_scanlines_into::<u8>(rows).map(|_| ()).map_err(|e| Failure::Io(e.to_string()))
            })?;
            out.rows_done(y..y + n)?;
            y += n;
        }
        strict(&path, "JPEG data", || started.finish().map_err(|e| Failure::Io(e.to_string())))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn coefficient_buffer_of_a_420_frame() {
        // 8000x12000, 4:2:0: luma 1000x1500 blocks, chroma 500x750 each.
        let f = Frame { size: (8000, 12000), progressive: true, sampling: vec![(2, 2), (1, 1), (1, 1)] };
        assert_eq!(coefficient_bytes(&f), (1000 * 1500 + 2 * 500 * 750) * 128);
        // Odd sizes pad to whole MCUs: 17x9 at 4:2:0 is 2x1 MCUs (luma 4x2 blocks, chroma 2x1).
        let f = Frame { size: (17, 9), progressive: true, sampling: vec![(2, 2), (1, 1), (1, 1)] };
        assert_eq!(coefficient_bytes(&f), (4 * 2 + 2 * 2) * 128);
    }
    #[test]
    fn frame_header_of_the_fixture() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/coffee-progressive.jpg");
        let f = read_frame(&mut BufReader::new(std::fs::File::open(p).unwrap())).unwrap().unwrap();
        assert_eq!(f.size, (150, 100));
        assert!(f.progressive);
    }
}
