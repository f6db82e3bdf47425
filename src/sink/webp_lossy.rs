//! Lossy WebP sink (`.webp` with `--quality`): libwebp's VP8 encoder.
//!
//! VP8 has no streaming encoder: libwebp codes a whole picture. So this sink, unlike every
//! other, holds the image — as the encoder's own YUV 4:2:0 planes (1.5 bytes a pixel, 2.5 with
//! alpha), filled band by band as the tiles arrive (our BT.601 conversion, chroma averaged over
//! 2x2 pixels), never as RGB. The planes and the encoder's working memory are in the plan, so a
//! picture that does not fit `--max-memory` is refused before any work, naming what it needs
//! (lossless WebP, JPEG and the rest stream). WebP's 16383 px limit caps it at 268 MP. With
//! alpha, libwebp's lossless coding of the alpha plane needs far more (about 26 bytes a pixel),
//! and the plan says so.
//!
//! libwebp writes its bitstream to a scratch file; its image chunks (`ALPH`, `VP8 `) are then
//! copied into our container with the ICC profile, EXIF and XMP (`webp::container`).

use super::webp::{container, refusal, to_rgba8};
use super::{OutputFile, Raw, SinkHeader, TileEncoder, TileSink};
use crate::error::{Error, Result};
use crate::plan::TileJob;
use libwebp_sys as webp;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Bytes per pixel the encoder holds besides its input planes (measured peaks on this
/// machine, libwebp 1.5, method 4: about 1 byte a pixel for the VP8 picture on photos).
const ENCODER_BYTES_PER_PIXEL: f64 = 2.0;
/// ... and, with alpha, for compressing the alpha plane with its lossless coder (hash chains
/// and backward references: 25.5 bytes a pixel measured between 4 and 37 MP).
const ALPHA_ENCODER_BYTES_PER_PIXEL: f64 = 28.0;

/// The encoder's picture: libwebp's struct and the planes it allocated.
struct Picture(Box<webp::WebPPicture>);

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: the picture was initialised by WebPPictureInitInternal and its planes (if
        // any) allocated by WebPPictureAlloc; WebPPictureFree releases exactly those.
        unsafe { webp::WebPPictureFree(&mut *self.0) };
    }
}

// SAFETY: the picture's planes are owned by this value alone and used from one thread at a time.
unsafe impl Send for Picture {}

/// A lossy WebP: the image gathered into the encoder's planes, coded at `finish`.
pub struct WebpLossySink {
    dest: PathBuf,
    quality: u8,
    out: Option<OutputFile>,
    header: Option<SinkHeader>,
    band: Vec<u8>,
    band_y: u32,
    picture: Option<Picture>,
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
            picture: None,
            pending: Vec::new(),
            row: Vec::new(),
        })
    }

    /// Converts the band's first `rows` rows into the picture's planes.
    fn push_band(&mut self, rows: u32) -> Result<()> {
        let h = self.header.as_ref().ok_or_else(|| super::out_of_order("a write before begin()", "WebpLossySink"))?;
        let (layout, height) = (h.layout, h.height as usize);
        let row_bytes = h.width as usize * layout.bytes_per_pixel();
        let pic =
            self.picture.as_mut().ok_or_else(|| super::out_of_order("a write after finish()", "WebpLossySink"))?;
        for r in 0..rows as usize {
            let y = self.band_y as usize + r;
            to_rgba8(&self.band[r * row_bytes..(r + 1) * row_bytes], layout, &mut self.row);
            if y.is_multiple_of(2) {
                std::mem::swap(&mut self.pending, &mut self.row);
                if y + 1 == height {
                    put_rows(&mut pic.0, y, &self.pending, &self.pending);
                }
            } else {
                put_rows(&mut pic.0, y - 1, &self.pending, &self.row);
            }
        }
        Ok(())
    }

    /// Codes the picture into a scratch file with libwebp; returns that file.
    fn encode(&mut self) -> Result<std::fs::File> {
        let mut pic = self.picture.take().ok_or_else(|| super::out_of_order("finish() twice", "WebpLossySink"))?;
        let (file, path) = crate::store::create_temp(crate::store::parent_dir(&self.dest), "webp")?;
        let _ = std::fs::remove_file(&path);
        let mut capture = Capture { out: std::io::BufWriter::new(file), failed: None };
        let mut config = std::mem::MaybeUninit::<webp::WebPConfig>::uninit();
        let preset = webp::WebPPreset::WEBP_PRESET_DEFAULT;
        // SAFETY: WebPConfigInitInternal fills the whole struct (it returns 0 only on an ABI
        // mismatch, before touching it, and then we do not read it).
        let ok = unsafe {
            webp::WebPConfigInitInternal(
                config.as_mut_ptr(),
                preset,
                self.quality as f32,
                webp::WEBP_ENCODER_ABI_VERSION as _,
            )
        };
        if ok == 0 {
            return Err(Error::usage("libwebp: encoder ABI mismatch"));
        }
        // SAFETY: initialised just above.
        let config = unsafe { config.assume_init() };
        pic.0.writer = Some(write_to_capture);
        pic.0.custom_ptr = (&mut capture as *mut Capture).cast();
        // SAFETY: the config is initialised and valid (defaults plus quality); the picture's
        // planes are allocated and filled; `custom_ptr` points at `capture`, which outlives the
        // call, and `write_to_capture` only uses it as a `Capture`.
        let done = unsafe { webp::WebPEncode(&config, &mut *pic.0) };
        let code = pic.0.error_code;
        drop(pic);
        if let Some(e) = capture.failed {
            return Err(Error::io(&self.dest, e));
        }
        if done == 0 {
            return Err(Error::format(&self.dest, format!("libwebp could not encode the picture ({code:?})")));
        }
        let mut file = capture.out.into_inner().map_err(|e| Error::io(&self.dest, e.into_error()))?;
        file.rewind().map_err(|e| Error::io(&self.dest, e))?;
        Ok(file)
    }
}

/// libwebp's output, on its way to a scratch file; the first write error is kept.
struct Capture {
    out: std::io::BufWriter<std::fs::File>,
    failed: Option<std::io::Error>,
}

/// libwebp's writer callback: appends `size` bytes at `data` to the picture's [`Capture`].
unsafe extern "C" fn write_to_capture(data: *const u8, size: usize, picture: *const webp::WebPPicture) -> i32 {
    // SAFETY: libwebp passes the picture being encoded, whose `custom_ptr` we set to a live
    // `Capture` for the duration of WebPEncode; `data` points at `size` readable bytes.
    let (capture, bytes) =
        unsafe { (&mut *((*picture).custom_ptr as *mut Capture), std::slice::from_raw_parts(data, size)) };
    if capture.failed.is_none() {
        if let Err(e) = capture.out.write_all(bytes) {
            capture.failed = Some(e);
        }
    }
    capture.failed.is_none() as i32
}

/// Rows `y` and `y + 1` (`a`, `b`; the same row twice for a last odd row) into the planes:
/// luma for each pixel, chroma from each 2x2 block, alpha if the picture has it.
fn put_rows(pic: &mut webp::WebPPicture, y: usize, a: &[[u8; 4]], b: &[[u8; 4]]) {
    let w = a.len();
    let two = y + 1 < pic.height as usize;
    // SAFETY: WebPPictureAlloc made planes of `height` rows of `y_stride` (luma, alpha:
    // `a_stride`) and `(height + 1) / 2` rows of `uv_stride` (chroma) bytes, each at least
    // `width` (chroma `(width + 1) / 2`) wide; `y` is even and below `height`, and `y + 1` is
    // written only when it is below `height` too. The slices do not overlap.
    let (luma0, luma1, u, v, alpha) = unsafe {
        let luma = |r: usize| std::slice::from_raw_parts_mut(pic.y.add(r * pic.y_stride as usize), w);
        let chroma = |p: *mut u8| std::slice::from_raw_parts_mut(p.add(y / 2 * pic.uv_stride as usize), w.div_ceil(2));
        let alpha = (!pic.a.is_null()).then(|| {
            let a0 = std::slice::from_raw_parts_mut(pic.a.add(y * pic.a_stride as usize), w);
            let a1 = two.then(|| std::slice::from_raw_parts_mut(pic.a.add((y + 1) * pic.a_stride as usize), w));
            (a0, a1)
        });
        (luma(y), two.then(|| luma(y + 1)), chroma(pic.u), chroma(pic.v), alpha)
    };
    for x in 0..w {
        luma0[x] = rgb_to_y(a[x]);
    }
    if let Some(l1) = luma1 {
        for x in 0..w {
            l1[x] = rgb_to_y(b[x]);
        }
    }
    for cx in 0..w.div_ceil(2) {
        let x1 = (2 * cx + 1).min(w - 1);
        let px = [a[2 * cx], a[x1], b[2 * cx], b[x1]];
        let sum = |c: usize| px.iter().map(|p| p[c] as i32).sum::<i32>();
        (u[cx], v[cx]) = rgb_to_uv(sum(0), sum(1), sum(2));
    }
    if let Some((a0, a1)) = alpha {
        a0.iter_mut().zip(a).for_each(|(d, p)| *d = p[3]);
        if let Some(a1) = a1 {
            a1.iter_mut().zip(b).for_each(|(d, p)| *d = p[3]);
        }
    }
}

/// BT.601 luma in the video range (16-235), 16-bit fixed point, rounded.
fn rgb_to_y(p: [u8; 4]) -> u8 {
    let (r, g, b) = (p[0] as i32, p[1] as i32, p[2] as i32);
    ((16839 * r + 33059 * g + 6420 * b + (16 << 16) + (1 << 15)) >> 16) as u8
}

/// BT.601 chroma (16-240) from the sums of four pixels' red, green and blue.
fn rgb_to_uv(r: i32, g: i32, b: i32) -> (u8, u8) {
    let u = (-9719 * r - 19081 * g + 28800 * b + (128 << 18) + (1 << 17)) >> 18;
    let v = (28800 * r - 24116 * g - 4684 * b + (128 << 18) + (1 << 17)) >> 18;
    (u.clamp(0, 255) as u8, v.clamp(0, 255) as u8)
}

/// Copies libwebp's image chunks (`ALPH`, `VP8 `) from its file `f` into `out`.
fn copy_image_chunks(f: &mut std::fs::File, out: &mut OutputFile, dest: &Path) -> Result<bool> {
    let io = |e: std::io::Error| Error::io(dest, e);
    let mut head = [0u8; 12];
    f.read_exact(&mut head).map_err(io)?;
    let mut alpha = false;
    loop {
        let mut ch = [0u8; 8];
        match f.read_exact(&mut ch) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(alpha),
            Err(e) => return Err(io(e)),
        }
        let len = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]) as u64;
        let padded = len + (len & 1);
        if &ch[..4] == b"ALPH" || &ch[..4] == b"VP8 " {
            alpha |= &ch[..4] == b"ALPH";
            out.write_all(&ch)?;
            let mut buf = vec![0u8; 1 << 16];
            let mut left = padded;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                f.read_exact(&mut buf[..n]).map_err(io)?;
                out.write_all(&buf[..n])?;
                left -= n as u64;
            }
        } else {
            f.seek(std::io::SeekFrom::Current(padded as i64)).map_err(io)?;
        }
    }
}

impl TileSink for WebpLossySink {
    fn begin(&mut self, h: &SinkHeader) -> Result<()> {
        if let Some(why) = refusal(h.width, h.height, h.layout) {
            return Err(Error::usage(format!("{}: {why}", self.dest.display())));
        }
        let mut raw = Box::new(std::mem::MaybeUninit::<webp::WebPPicture>::uninit());
        // SAFETY: WebPPictureInitInternal zeroes the whole struct and sets its defaults (it
        // returns 0 only on an ABI mismatch, before touching it; we then never read it).
        if unsafe { webp::WebPPictureInitInternal(raw.as_mut_ptr(), webp::WEBP_ENCODER_ABI_VERSION as _) } == 0 {
            return Err(Error::usage("libwebp: encoder ABI mismatch"));
        }
        // SAFETY: initialised just above.
        let mut pic = Picture(unsafe { raw.assume_init() });
        (pic.0.width, pic.0.height, pic.0.use_argb) = (h.width as i32, h.height as i32, 0);
        pic.0.colorspace =
            if h.layout.channels.has_alpha() { webp::WebPEncCSP::WEBP_YUV420A } else { webp::WebPEncCSP::WEBP_YUV420 };
        // SAFETY: the picture is initialised and sized; WebPPictureAlloc allocates its planes.
        if unsafe { webp::WebPPictureAlloc(&mut *pic.0) } == 0 {
            let need = picture_memory(h.width, h.height, h.layout.channels.has_alpha());
            return Err(Error::usage(format!(
                "{}: libwebp could not allocate the {need}-byte picture",
                self.dest.display()
            )));
        }
        self.picture = Some(pic);
        self.band = vec![0; h.width as usize * h.tile as usize * h.layout.bytes_per_pixel()];
        (self.pending, self.row) = (vec![[0; 4]; h.width as usize], vec![[0; 4]; h.width as usize]);
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
        let mut coded = self.encode()?;
        let mut out = self.out.take().ok_or_else(|| super::out_of_order("finish() twice", "WebpLossySink"))?;
        let dest = self.dest.clone();
        let alpha = h.layout.channels.has_alpha();
        container(&mut out, &h, alpha, alpha, |out| copy_image_chunks(&mut coded, out, &dest).map(|_| ()))?;
        out.commit()
    }

    fn memory(&self, h: &SinkHeader) -> u64 {
        // The band and two rows, and the whole picture with the encoder's working memory.
        let band = h.width as u64 * h.tile as u64 * h.layout.bytes_per_pixel() as u64;
        band + h.width as u64 * 8 + picture_memory(h.width, h.height, h.layout.channels.has_alpha())
    }
}

/// What a lossy WebP of `w x h` holds at once: the picture's planes and libwebp's working
/// memory (see the module docs), for the plan and for [`refusal_for_memory`].
pub fn picture_memory(w: u32, h: u32, alpha: bool) -> u64 {
    let (w, ht) = (w as u64, h as u64);
    let luma = w * ht;
    let planes = luma + 2 * w.div_ceil(2) * ht.div_ceil(2) + if alpha { luma } else { 0 };
    let per_px = ENCODER_BYTES_PER_PIXEL + if alpha { ALPHA_ENCODER_BYTES_PER_PIXEL } else { 0.0 };
    planes + (luma as f64 * per_px) as u64 + (4 << 20)
}

/// The refusal of a lossy WebP of `w x h` whose picture alone is over `max_memory`, if it is
/// (the plan's own refusal would only say "raise --max-memory"); `job` names the input and
/// sizes.
pub fn refusal_for_memory(job: &str, (w, h): (u32, u32), alpha: bool, max_memory: u64) -> Option<Error> {
    let need = picture_memory(w, h, alpha);
    (need > max_memory).then(|| {
        let hint = format!(
            "a lossy WebP is encoded whole (libwebp cannot stream): {w}x{h}{} needs {} MiB; raise --max-memory, \
             or leave out --quality for a lossless WebP (streamed), or name the output .jpg",
            if alpha { " with alpha" } else { "" },
            need.div_ceil(1 << 20),
        );
        Error::limit(format!("{job}: --max-memory"), need, max_memory, Some(hint))
    })
}
