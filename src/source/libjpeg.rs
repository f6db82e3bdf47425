//! A thin, safe wrapper over libjpeg-turbo's decompressor (`mozjpeg-sys`, built from source):
//! a source manager that reads the file through a small buffer, scanline reads into caller
//! memory, saved APP2 markers (ICC), and — for multi-scan files — the whole-image coefficient
//! buffer moved into a disk-backed scratch mapping (`jpeg_coefficients.rs`).
//!
//! Every libjpeg call goes through [`catch`], which turns libjpeg's errors (and warnings,
//! made fatal by `libjpeg/errors.rs`) into a [`Failure`]. This module and those two are the only
//! ones that touch libjpeg's structures.

use super::jpeg_coefficients::CoefficientStore;
use crate::libjpeg::errors::{catch, fail, strict_error_mgr, Failure};
use crate::libjpeg::XMP_PREFIX;
use mozjpeg_sys::*;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::raw::c_long;
use std::path::Path;

/// Bytes of the read buffer between the file and libjpeg.
pub(crate) const READ_BUFFER: usize = 256 << 10;

/// The source manager: libjpeg's struct first (libjpeg holds a pointer to it), then ours.
#[repr(C)]
struct Source {
    mgr: jpeg_source_mgr,
    file: File,
    buf: Vec<u8>,
}

/// An open JPEG, header read.
pub(crate) struct Decoder {
    // Boxed so that their addresses stay fixed: libjpeg keeps pointers to all three.
    cinfo: Box<jpeg_decompress_struct>,
    _err: Box<jpeg_error_mgr>,
    _src: Box<Source>,
    coefficients: Option<Box<CoefficientStore>>,
}

impl Decoder {
    /// Opens `path` and reads the header (keeping APP2 markers for the ICC profile).
    pub(crate) fn open(path: &Path) -> Result<Decoder, Failure> {
        let file = File::open(path).map_err(|e| Failure::Io(e.to_string()))?;
        let mut err = Box::new(strict_error_mgr());
        // SAFETY: an all-zero `jpeg_decompress_struct` is what `jpeg_CreateDecompress` expects
        // to initialise (C code does the same with memset); it holds only integers, raw
        // pointers and `Option`s of function pointers, all valid when zero.
        let mut cinfo: Box<jpeg_decompress_struct> = Box::new(unsafe { std::mem::zeroed() });
        cinfo.common.err = &mut *err;
        let src = Box::new(Source {
            mgr: jpeg_source_mgr {
                next_input_byte: std::ptr::null(),
                bytes_in_buffer: 0,
                init_source: Some(init_source),
                fill_input_buffer: Some(fill_input_buffer),
                skip_input_data: Some(skip_input_data),
                resync_to_restart: Some(jpeg_resync_to_restart),
                term_source: Some(term_source),
            },
            file,
            buf: vec![0; READ_BUFFER],
        });
        let mut dec = Decoder { cinfo, _err: err, _src: src, coefficients: None };
        let cinfo = &mut *dec.cinfo;
        let src_ptr: *mut jpeg_source_mgr = &mut dec._src.mgr;
        catch(|| {
            // SAFETY: `cinfo` is zeroed and its error manager is set, as libjpeg requires;
            // `src_ptr` points into a box owned by the decoder, alive as long as `cinfo`.
            unsafe {
                jpeg_create_decompress(cinfo);
                cinfo.src = src_ptr;
                jpeg_save_markers(cinfo, 0xE2, 0xFFFF);
                jpeg_save_markers(cinfo, 0xE1, 0xFFFF);
                if jpeg_read_header(cinfo, 1) != 1 {
                    return Err(Failure::Libjpeg("no image in the JPEG file".into()));
                }
            }
            Ok(())
        })?;
        Ok(dec)
    }

    /// Width and height.
    pub(crate) fn size(&self) -> (u32, u32) {
        (self.cinfo.image_width, self.cinfo.image_height)
    }
    /// The colour space of the stored components.
    pub(crate) fn color_space(&self) -> J_COLOR_SPACE {
        self.cinfo.jpeg_color_space
    }
    /// (horizontal, vertical) sampling factors of each component.
    pub(crate) fn sampling(&self) -> Vec<(u8, u8)> {
        (0..self.cinfo.num_components.max(0) as usize)
            .map(|i| {
                // SAFETY: after `jpeg_read_header`, `comp_info` points to `num_components`
                // initialised entries owned by libjpeg for the life of `cinfo`.
                let c = unsafe { &*self.cinfo.comp_info.add(i) };
                (c.h_samp_factor.clamp(0, 255) as u8, c.v_samp_factor.clamp(0, 255) as u8)
            })
            .collect()
    }
    /// Whether the file has several scans (progressive, or sequential non-interleaved): libjpeg
    /// then buffers every coefficient of the image before the first row comes out.
    pub(crate) fn multi_scan(&self) -> bool {
        // SAFETY: reads a flag of a `cinfo` whose header has been read.
        unsafe { jpeg_has_multiple_scans(&self.cinfo) != 0 }
    }
    /// The ICC profile from the APP2 `ICC_PROFILE` chunks, in sequence order.
    /// The saved markers of type `marker` (`0xE1` APP1, `0xE2` APP2), in file order.
    fn markers(&self, marker: u8) -> Vec<&[u8]> {
        let mut found = Vec::new();
        let mut m = self.cinfo.marker_list;
        while !m.is_null() {
            // SAFETY: `marker_list` is libjpeg's linked list of saved markers (`m` is not
            // null), alive as long as `cinfo`, which `self` owns; we only read it.
            let saved = unsafe { &*m };
            if saved.marker == marker {
                // SAFETY: a saved marker holds `data_length` bytes at `data`, alive as above.
                found.push(unsafe { std::slice::from_raw_parts(saved.data, saved.data_length as usize) });
            }
            m = saved.next;
        }
        found
    }

    /// The JFIF resolution (dots per inch or per centimetre, as pixels per inch), the EXIF
    /// block and the XMP packet (APP1 markers).
    pub(crate) fn metadata(&self) -> crate::pixel::Metadata {
        let mut m = crate::pixel::Metadata::default();
        let c = &*self.cinfo;
        let per_inch = match c.density_unit {
            1 => Some(1.0),
            2 => Some(2.54),
            _ => None,
        };
        if let Some(k) = per_inch.filter(|_| c.X_density > 0 && c.Y_density > 0) {
            m.dpi = Some((c.X_density as f64 * k, c.Y_density as f64 * k));
        }
        for data in self.markers(0xE1) {
            if let Some(exif) = data.strip_prefix(b"Exif\0\0".as_slice()) {
                m.orientation = m.orientation.or(crate::exif::orientation(exif));
                m.exif.get_or_insert_with(|| exif.to_vec());
            } else if let Some(xmp) = data.strip_prefix(XMP_PREFIX) {
                m.xmp.get_or_insert_with(|| xmp.to_vec());
            }
        }
        m
    }

    pub(crate) fn icc_profile(&self) -> Option<Vec<u8>> {
        let mut chunks: Vec<(u8, &[u8])> = Vec::new();
        let mut m = self.cinfo.marker_list;
        while !m.is_null() {
            // SAFETY: `marker_list` is libjpeg's linked list of saved markers (`m` is not
            // null), alive until `cinfo` is destroyed.
            let marker = unsafe { &*m };
            // SAFETY: a saved marker holds `data_length` bytes at `data`, alive as above.
            let data = unsafe { std::slice::from_raw_parts(marker.data, marker.data_length as usize) };
            if marker.marker == 0xE2 && data.len() > 14 && data.starts_with(b"ICC_PROFILE\0") {
                chunks.push((data[12], &data[14..]));
            }
            m = marker.next;
        }
        if chunks.is_empty() {
            return None;
        }
        chunks.sort_by_key(|c| c.0);
        Some(chunks.iter().flat_map(|c| c.1.iter().copied()).collect())
    }

    /// Starts decompression to grey or RGB. A multi-scan file's coefficient buffer lives in a
    /// file in `scratch` (mapped, its resident part bounded) instead of in memory.
    pub(crate) fn start(&mut self, grey: bool, scratch: &Path) -> Result<(), Failure> {
        self.cinfo.out_color_space = if grey { J_COLOR_SPACE::JCS_GRAYSCALE } else { J_COLOR_SPACE::JCS_RGB };
        if self.multi_scan() {
            self.coefficients = Some(CoefficientStore::install(&mut self.cinfo.common, scratch));
        }
        let cinfo = &mut *self.cinfo;
        catch(|| {
            // SAFETY: the header was read; the output colour space is one libjpeg converts to.
            if unsafe { jpeg_start_decompress(cinfo) } == 0 {
                return Err(Failure::Libjpeg("decoder suspended".into()));
            }
            Ok(())
        })
    }

    /// Decodes the next `rows.len() / row_bytes` scanlines into `rows`.
    pub(crate) fn read_rows(&mut self, rows: &mut [u8], row_bytes: usize) -> Result<(), Failure> {
        let width = self.cinfo.output_width as usize * self.cinfo.output_components.max(0) as usize;
        if row_bytes != width || !rows.len().is_multiple_of(row_bytes) {
            return Err(Failure::Io(format!("rows of {row_bytes} bytes, the decoder makes {width}")));
        }
        let mut ptrs: Vec<*mut u8> = rows.chunks_exact_mut(row_bytes).map(|r| r.as_mut_ptr()).collect();
        let cinfo = &mut *self.cinfo;
        let mut done = 0;
        catch(|| {
            while done < ptrs.len() {
                let left = (ptrs.len() - done) as u32;
                // SAFETY: each pointer is the start of a distinct `row_bytes`-long row of
                // `rows`, which outlives the call; libjpeg writes at most `left` rows of
                // `output_width * output_components` bytes (checked equal to `row_bytes`).
                let n = unsafe { jpeg_read_scanlines(cinfo, ptrs.as_mut_ptr().add(done), left) };
                if n == 0 {
                    return Err(Failure::Libjpeg("no more scanlines".into()));
                }
                done += n as usize;
            }
            Ok(())
        })
    }

    /// Finishes decompression (reads up to the end-of-image marker).
    pub(crate) fn finish(&mut self) -> Result<(), Failure> {
        let cinfo = &mut *self.cinfo;
        catch(|| {
            // SAFETY: every scanline was read, so `jpeg_finish_decompress` may run.
            if unsafe { jpeg_finish_decompress(cinfo) } != 0 {
                Ok(())
            } else {
                Err(Failure::Libjpeg("decoder suspended".into()))
            }
        })
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        let cinfo = &mut *self.cinfo;
        let _ = catch(|| {
            // SAFETY: `cinfo` was created by `jpeg_create_decompress` (or is still zeroed if
            // that failed, which `jpeg_destroy` treats as nothing to free). The coefficient
            // store that `client_data` may point to is dropped only after this call.
            unsafe { jpeg_destroy_decompress(cinfo) };
            Ok(())
        });
        drop(self.coefficients.take());
    }
}

/// The source manager's `init_source`: nothing to do.
///
/// # Safety
/// Called by libjpeg only (it touches nothing).
unsafe extern "C-unwind" fn init_source(_cinfo: &mut jpeg_decompress_struct) {}

/// The source manager's `term_source`: nothing to do.
///
/// # Safety
/// Called by libjpeg only (it touches nothing).
unsafe extern "C-unwind" fn term_source(_cinfo: &mut jpeg_decompress_struct) {}

/// Our [`Source`] behind `cinfo.src`.
///
/// # Safety
/// `cinfo.src` must be the `mgr` field of a live [`Source`] (as [`Decoder::open`] sets it).
unsafe fn source(cinfo: &mut jpeg_decompress_struct) -> &mut Source {
    // SAFETY: per the contract, `src` points to the first field of a `#[repr(C)]` `Source`.
    unsafe { &mut *(cinfo.src as *mut Source) }
}

/// The source manager's `fill_input_buffer`: the next 256 KiB of the file.
///
/// # Safety
/// Called by libjpeg only, on a decompressor whose `src` is a live [`Source`] (as
/// [`Decoder::open`] sets it).
unsafe extern "C-unwind" fn fill_input_buffer(cinfo: &mut jpeg_decompress_struct) -> boolean {
    // SAFETY: libjpeg calls this only on the decompressor whose `src` we set.
    let src = unsafe { source(cinfo) };
    match src.file.read(&mut src.buf) {
        Ok(0) => fail(Failure::Libjpeg("premature end of JPEG file".into())),
        Ok(n) => {
            src.mgr.next_input_byte = src.buf.as_ptr();
            src.mgr.bytes_in_buffer = n;
            1
        }
        Err(e) => fail(Failure::Io(e.to_string())),
    }
}

/// The source manager's `skip_input_data`: skips `num_bytes`, refilling as needed.
///
/// # Safety
/// As [`fill_input_buffer`].
unsafe extern "C-unwind" fn skip_input_data(cinfo: &mut jpeg_decompress_struct, num_bytes: c_long) {
    if num_bytes <= 0 {
        return;
    }
    // SAFETY: as in `fill_input_buffer`.
    let src = unsafe { source(cinfo) };
    let n = num_bytes as usize;
    if n <= src.mgr.bytes_in_buffer {
        // SAFETY: `next_input_byte` points into `buf` with `bytes_in_buffer` bytes left.
        src.mgr.next_input_byte = unsafe { src.mgr.next_input_byte.add(n) };
        src.mgr.bytes_in_buffer -= n;
        return;
    }
    let beyond = (n - src.mgr.bytes_in_buffer) as i64;
    src.mgr.bytes_in_buffer = 0;
    if let Err(e) = src.file.seek(SeekFrom::Current(beyond)) {
        fail(Failure::Io(e.to_string()));
    }
}
