//! JPEG via libjpeg-turbo's decoder (`mozjpeg-sys`, built from source; wrapped in
//! `libjpeg.rs`): baseline and progressive, grey and colour (YCbCr/RGB). CMYK and YCCK are
//! refused.
//!
//! The file is read through a small buffer, never whole. Scanlines are decoded 16 at a time
//! straight into the memory-mapped store, so the decoder's memory is proportional to the
//! width, not the height. A multi-scan (progressive) file needs every coefficient of the image
//! before its first row comes out (2 bytes per coefficient, chroma at its own resolution,
//! [`coefficient_bytes`]); that buffer lives in a scratch file beside the store
//! (`jpeg_coefficients.rs`), so it costs disk, not memory: only a few block rows per component
//! are resident at a time.
//!
//! libjpeg's warnings (corrupt or truncated data, which it would otherwise paper over with grey)
//! are errors (`libjpeg/errors.rs`).

use super::libjpeg::{Decoder, READ_BUFFER};
use super::{RowSource, RowWriter};
use crate::error::{Error, Result};
use crate::libjpeg::errors::Failure;
use crate::pixel::{Channels, Depth, Format, ImageInfo, Layout};
use mozjpeg_sys::J_COLOR_SPACE;
use std::path::{Path, PathBuf};
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

/// Whether the frame header is SOF2 (progressive): markers are followed from the start of the
/// file by their lengths up to the first SOFn, a few KiB at most. (libjpeg knows it too but
/// keeps the flag private.)
pub(crate) fn is_progressive(r: &mut impl std::io::Read) -> std::io::Result<bool> {
    let mut b = [0u8; 2];
    r.read_exact(&mut b)?;
    if b != [0xFF, 0xD8] {
        return Ok(false);
    }
    loop {
        r.read_exact(&mut b)?;
        let mut marker = b[1];
        while marker == 0xFF {
            let mut one = [0u8; 1];
            r.read_exact(&mut one)?;
            marker = one[0];
        }
        if b[0] != 0xFF || marker == 0xDA || marker == 0xD9 {
            return Ok(false);
        }
        // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            return Ok(marker == 0xC2 || marker == 0xC6 || marker == 0xCA || marker == 0xCE);
        }
        r.read_exact(&mut b)?;
        let len = u16::from_be_bytes(b) as u64;
        std::io::copy(&mut std::io::Read::take(&mut *r, len.saturating_sub(2)), &mut std::io::sink())?;
    }
}

/// Opens the decoder, turning its failures into format errors naming the file.
fn open_decoder(path: &Path) -> Result<Decoder> {
    Decoder::open(path).map_err(|f| failure(path, "JPEG header", f))
}

fn failure(path: &Path, what: &str, f: Failure) -> Error {
    match f {
        Failure::Libjpeg(msg) | Failure::Io(msg) => Error::format(path, format!("{what}: {msg}")),
    }
}

impl JpegSource {
    pub(crate) fn open(path: &Path, _max_memory: u64) -> Result<JpegSource> {
        let dec = open_decoder(path)?;
        let channels = match dec.color_space() {
            J_COLOR_SPACE::JCS_GRAYSCALE => Channels::Gray,
            J_COLOR_SPACE::JCS_YCbCr | J_COLOR_SPACE::JCS_RGB => Channels::Rgb,
            J_COLOR_SPACE::JCS_CMYK | J_COLOR_SPACE::JCS_YCCK => {
                return Err(Error::unsupported(path, "CMYK/YCCK JPEG (convert to RGB first)"))
            }
            other => return Err(Error::unsupported(path, format!("JPEG colour space {other:?}"))),
        };
        let (w, h) = dec.size();
        let progressive = std::fs::File::open(path)
            .map(std::io::BufReader::new)
            .and_then(|mut f| is_progressive(&mut f))
            .unwrap_or(false);
        let frame = Frame { size: (w, h), progressive, sampling: dec.sampling() };
        let multi_scan = dec.multi_scan();
        let coding = match (frame.progressive, multi_scan) {
            (true, _) => "progressive",
            (false, true) => "sequential, multi-scan",
            (false, false) => "baseline",
        };
        let mut details = vec![
            ("coding".to_string(), coding.to_string()),
            ("components".to_string(), frame.sampling.len().to_string()),
        ];
        if multi_scan {
            let bytes = crate::limits::format_size(coefficient_bytes(&frame));
            details.push(("coefficient buffer".to_string(), format!("{bytes} (scratch disk)")));
        }
        let info = ImageInfo {
            width: w,
            height: h,
            layout: Layout::new(channels, Depth::U8),
            format: Format::Jpeg,
            icc_profile: dec.icc_profile(),
            details,
            metadata: dec.metadata(),
        };
        // libjpeg's working memory: the read buffer and a band of scanlines per component (up
        // to four MCU rows with context for fancy upsampling). A multi-scan file's coefficient
        // buffer goes to a scratch file; what stays resident of it is a few block rows per
        // component (the window libjpeg reads, with block smoothing's context).
        let comps = frame.sampling.len().max(1) as u64;
        let per_row = w as u64 * comps;
        let vmax = frame.sampling.iter().map(|s| s.1).max().unwrap_or(1).max(1) as u64;
        let resident_coefficients = if multi_scan { (w as u64).div_ceil(8) * comps * 128 * 8 * vmax } else { 0 };
        let decode_memory = READ_BUFFER as u64 + per_row * 4 * 16 * 2 + resident_coefficients + (256 << 10);
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
        let mut dec = open_decoder(&path)?;
        let grey = self.info.layout.channels == Channels::Gray;
        let scratch = out.scratch_dir().to_path_buf();
        dec.start(grey, &scratch).map_err(|f| failure(&path, "JPEG data", f))?;
        let (height, row_bytes) = (out.height(), out.row_bytes());
        let mut y = 0;
        while y < height {
            let n = BAND.min(height - y);
            let rows = out.rows_mut(y..y + n)?;
            dec.read_rows(rows, row_bytes).map_err(|f| failure(&path, "JPEG data", f))?;
            out.rows_done(y..y + n)?;
            y += n;
            if out.complete() && y < height {
                // A unit's band is in; dropping the decoder aborts the rest of the image.
                return Ok(());
            }
        }
        dec.finish().map_err(|f| failure(&path, "JPEG data", f))?;
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
    fn frame_of_the_progressive_fixture() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/coffee-progressive.jpg");
        let d = Decoder::open(&p).unwrap();
        assert_eq!(d.size(), (150, 100));
        assert!(d.multi_scan());
        assert!(is_progressive(&mut std::fs::File::open(&p).unwrap()).unwrap());
        let b = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/coffee.jpg");
        assert!(!is_progressive(&mut std::fs::File::open(&b).unwrap()).unwrap());
        assert!(!Decoder::open(&b).unwrap().multi_scan());
    }
}
