//! A thin, safe wrapper over libjpeg-turbo's compressor (`mozjpeg-sys`, the library the JPEG
//! source already links): baseline JPEG with libjpeg-turbo's defaults (mozjpeg's trellis and
//! progressive extensions off: they hold the whole image's coefficients), a destination
//! manager that hands each 256 KiB of output to a writer, scanlines pushed band by band, and
//! an ICC profile in APP2 markers.
//!
//! Every libjpeg call goes through the source's strict error manager (`libjpeg/errors.rs`): an
//! error unwinds out of the callback and comes back as a [`Failure`]. This module is the only
//! one of the sinks that touches libjpeg's structures.

use crate::libjpeg::errors::{catch, fail, strict_error_mgr, Failure};
use mozjpeg_sys::*;
use std::io::Write;
use std::os::raw::c_int;

/// Bytes libjpeg fills before they are written out.
const WRITE_BUFFER: usize = 256 << 10;

/// APP1, where EXIF and XMP go.
const APP1: c_int = 0xE1;
/// APP2, where ICC profiles go.
const ICC_MARKER: c_int = 0xE2;
/// The most profile bytes one APP2 marker carries (65533 less the 14-byte header).
const ICC_CHUNK: usize = 65519;

/// An ICC profile as APP2 markers' data (ICC.1, B.4): `ICC_PROFILE\0`, the chunk's number and
/// the count, then up to 65519 bytes of the profile. None for an empty profile (or one over
/// 255 chunks, which the format cannot number).
fn icc_markers(profile: &[u8]) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = profile.chunks(ICC_CHUNK).collect();
    if chunks.len() > 255 {
        return Vec::new();
    }
    let n = chunks.len() as u8;
    let mark = |(i, c): (usize, &&[u8])| [b"ICC_PROFILE\0".as_slice(), &[i as u8 + 1, n], c].concat();
    chunks.iter().enumerate().map(mark).collect()
}

/// The destination manager: libjpeg's struct first (libjpeg holds a pointer to it), then ours.
#[repr(C)]
struct Destination {
    mgr: jpeg_destination_mgr,
    out: Box<dyn Write + Send>,
    buf: Vec<u8>,
}

/// How an image is compressed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub width: u32,
    pub height: u32,
    /// 1 (grey) or 3 (RGB).
    pub components: u8,
    /// 1-100.
    pub quality: u8,
    /// Chroma at half resolution both ways (4:2:0) instead of full (4:4:4).
    pub half_chroma: bool,
    /// Pixels per inch for the JFIF header (rounded; libjpeg's default 1:1 aspect without).
    pub dpi: Option<(f64, f64)>,
}

/// A JPEG being written, scanline by scanline.
pub(crate) struct Encoder {
    // Boxed so that their addresses stay fixed: libjpeg keeps pointers to all three.
    cinfo: Box<jpeg_compress_struct>,
    _err: Box<jpeg_error_mgr>,
    dest: Box<Destination>,
    rows_left: u32,
}

// SAFETY: the encoder's raw pointers all point into its own boxes (or into libjpeg memory
// that only this encoder's `cinfo` reaches); it is used from one thread at a time, and the
// writer it owns is `Send`.
unsafe impl Send for Encoder {}

impl Encoder {
    /// Starts a JPEG of `s` written to `out`, with `icc` (if any) in APP2 markers.
    /// `app1` are whole APP1 markers' data (EXIF, XMP), written after the ICC profile.
    pub(crate) fn start(
        out: Box<dyn Write + Send>,
        s: Settings,
        icc: Option<&[u8]>,
        app1: &[Vec<u8>],
    ) -> Result<Encoder, Failure> {
        let mut err = Box::new(strict_error_mgr());
        // SAFETY: an all-zero `jpeg_compress_struct` is what `jpeg_CreateCompress` expects to
        // initialise (C code does the same with memset); it holds only integers, raw pointers
        // and `Option`s of function pointers, all valid when zero.
        let mut cinfo: Box<jpeg_compress_struct> = Box::new(unsafe { std::mem::zeroed() });
        cinfo.common.err = &mut *err;
        let mut dest = Box::new(Destination {
            mgr: jpeg_destination_mgr {
                next_output_byte: std::ptr::null_mut(),
                free_in_buffer: 0,
                init_destination: Some(init_destination),
                empty_output_buffer: Some(empty_output_buffer),
                term_destination: Some(term_destination),
            },
            out,
            buf: vec![0; WRITE_BUFFER],
        });
        let dest_ptr: *mut jpeg_destination_mgr = &mut dest.mgr;
        let mut enc = Encoder { cinfo, _err: err, dest, rows_left: s.height };
        let cinfo = &mut *enc.cinfo;
        catch(|| {
            // SAFETY: `cinfo` is zeroed and its error manager is set, as libjpeg requires;
            // `dest_ptr` points into a box owned by the encoder, alive as long as `cinfo`. The
            // parameters are set between creation and `jpeg_start_compress`, as documented.
            unsafe {
                jpeg_create_compress(cinfo);
                cinfo.dest = dest_ptr;
                cinfo.image_width = s.width;
                cinfo.image_height = s.height;
                cinfo.input_components = s.components as c_int;
                cinfo.in_color_space = if s.components == 1 { JCS_GRAYSCALE } else { JCS_RGB };
                jpeg_c_set_int_param(cinfo, JINT_COMPRESS_PROFILE, JCP_FASTEST as c_int);
                jpeg_set_defaults(cinfo);
                jpeg_set_quality(cinfo, s.quality as c_int, 1);
                if s.components == 3 {
                    let sampling = if s.half_chroma { 2 } else { 1 };
                    let luma = &mut *cinfo.comp_info;
                    (luma.h_samp_factor, luma.v_samp_factor) = (sampling, sampling);
                }
                if let Some((x, y)) = s.dpi {
                    let density = |v: f64| v.round().clamp(1.0, u16::MAX as f64) as u16;
                    (cinfo.density_unit, cinfo.X_density, cinfo.Y_density) = (1, density(x), density(y));
                }
                jpeg_start_compress(cinfo, 1);
                for marker in icc_markers(icc.unwrap_or_default()) {
                    jpeg_write_marker(cinfo, ICC_MARKER, marker.as_ptr(), marker.len() as u32);
                }
                for data in app1.iter().filter(|d| d.len() <= 65533) {
                    jpeg_write_marker(cinfo, APP1, data.as_ptr(), data.len() as u32);
                }
            }
            Ok(())
        })?;
        Ok(enc)
    }

    /// Compresses `rows` (whole scanlines of `row_bytes`, 8-bit samples in the settings'
    /// components, top to bottom).
    pub(crate) fn write_rows(&mut self, rows: &[u8], row_bytes: usize) -> Result<(), Failure> {
        let n = rows.len() / row_bytes.max(1);
        if n as u32 > self.rows_left || rows.len() != n * row_bytes {
            return Err(Failure::Libjpeg(format!("{n} rows of {row_bytes} bytes do not fit the image")));
        }
        let mut ptrs: Vec<*const u8> = rows.chunks_exact(row_bytes).map(<[u8]>::as_ptr).collect();
        let cinfo = &mut *self.cinfo;
        catch(|| {
            let mut done = 0;
            while done < n {
                // SAFETY: each pointer is the start of a distinct `row_bytes`-long scanline
                // of `rows`, which outlives the call; libjpeg only reads them (the C
                // prototype's `JSAMPARRAY` is not const, but compression reads its input).
                let wrote = unsafe {
                    jpeg_write_scanlines(cinfo, ptrs.as_mut_ptr().add(done) as JSAMPARRAY, (n - done) as u32)
                };
                if wrote == 0 {
                    return Err(Failure::Libjpeg("libjpeg took no scanlines".into()));
                }
                done += wrote as usize;
            }
            Ok(())
        })?;
        self.rows_left -= n as u32;
        Ok(())
    }

    /// Writes the end of the image and flushes the writer.
    pub(crate) fn finish(mut self) -> Result<(), Failure> {
        if self.rows_left != 0 {
            return Err(Failure::Libjpeg(format!("{} scanlines were never written", self.rows_left)));
        }
        let cinfo = &mut *self.cinfo;
        catch(|| {
            // SAFETY: every scanline was written, so `jpeg_finish_compress` may run; it calls
            // `term_destination`, which writes the rest of the buffer.
            unsafe { jpeg_finish_compress(cinfo) };
            Ok(())
        })?;
        self.dest.out.flush().map_err(|e| Failure::Io(e.to_string()))
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        let cinfo = &mut *self.cinfo;
        let _ = catch(|| {
            // SAFETY: `cinfo` was created by `jpeg_create_compress` (or is still zeroed if that
            // failed, which `jpeg_destroy` treats as nothing to free).
            unsafe { jpeg_destroy_compress(cinfo) };
            Ok(())
        });
    }
}

/// Our [`Destination`] behind `cinfo.dest`.
///
/// # Safety
/// `cinfo.dest` must be the `mgr` field of a live [`Destination`] (as [`Encoder::start`] sets
/// it), not otherwise borrowed.
unsafe fn destination(cinfo: &mut jpeg_compress_struct) -> &mut Destination {
    // SAFETY: per the contract, `dest` points to the first field of a `#[repr(C)]`
    // `Destination`.
    unsafe { &mut *(cinfo.dest as *mut Destination) }
}

/// The destination manager's `init_destination`: the whole buffer is free.
///
/// # Safety
/// Called by libjpeg only, on a compressor whose `dest` is a live [`Destination`].
unsafe extern "C-unwind" fn init_destination(cinfo: &mut jpeg_compress_struct) {
    // SAFETY: libjpeg calls this only on the compressor whose `dest` we set.
    let d = unsafe { destination(cinfo) };
    d.mgr.next_output_byte = d.buf.as_mut_ptr();
    d.mgr.free_in_buffer = d.buf.len();
}

/// The destination manager's `empty_output_buffer`: the full buffer goes to the writer (libjpeg
/// calls it only when the buffer is full, ignoring `next_output_byte`).
///
/// # Safety
/// As [`init_destination`].
unsafe extern "C-unwind" fn empty_output_buffer(cinfo: &mut jpeg_compress_struct) -> boolean {
    // SAFETY: as in `init_destination`.
    let d = unsafe { destination(cinfo) };
    if let Err(e) = d.out.write_all(&d.buf) {
        fail(Failure::Io(e.to_string()));
    }
    d.mgr.next_output_byte = d.buf.as_mut_ptr();
    d.mgr.free_in_buffer = d.buf.len();
    1
}

/// The destination manager's `term_destination`: what is left in the buffer goes out.
///
/// # Safety
/// As [`init_destination`].
unsafe extern "C-unwind" fn term_destination(cinfo: &mut jpeg_compress_struct) {
    // SAFETY: as in `init_destination`.
    let d = unsafe { destination(cinfo) };
    let used = d.buf.len() - d.mgr.free_in_buffer;
    if let Err(e) = d.out.write_all(&d.buf[..used]) {
        fail(Failure::Io(e.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icc_profiles_are_cut_into_numbered_app2_chunks() {
        assert!(icc_markers(&[]).is_empty());
        let profile: Vec<u8> = (0..150_000u32).map(|i| i as u8).collect();
        let m = icc_markers(&profile);
        assert_eq!(m.len(), 3);
        assert_eq!(&m[0][..14], b"ICC_PROFILE\0\x01\x03");
        assert_eq!(&m[2][..14], b"ICC_PROFILE\0\x03\x03");
        let joined: Vec<u8> = m.iter().flat_map(|c| c[14..].to_vec()).collect();
        assert_eq!(joined, profile);
        assert!(m.iter().all(|c| c.len() <= 65533));
    }
}
