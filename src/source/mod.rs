//! Sources: decoders that stream an image's rows into the [`Store`].
//!
//! [`open`] sniffs the format from the file's first bytes (never from its name) and returns a
//! [`RowSource`]. Library users can implement [`RowSource`] for their own data (see
//! `examples/synthetic.rs`).

mod jpeg;
mod jpeg_coefficients;
mod libjpeg;
mod memory;
mod orient;
mod png;
mod tiff;

pub use memory::MemorySource;

use crate::error::{Error, Result};
use crate::pixel::{Format, ImageInfo};
use crate::store::Store;
use std::io::Read;
use std::path::Path;

/// A decoder that delivers rows of one image.
pub trait RowSource: Send {
    /// What the image is. Known before any pixel is decoded.
    fn info(&self) -> &ImageInfo;
    /// Bytes of memory the decoder itself needs while decoding, beyond the row it hands over
    /// (used to check the budget before work starts).
    fn decode_memory(&self) -> u64 {
        0
    }
    /// Decodes every row into `out`. Rows use the layout of [`RowSource::info`], samples in
    /// native byte order.
    fn decode(&mut self, out: &mut RowWriter<'_>) -> Result<()>;
    /// Whether [`decode`](RowSource::decode) can fill a store that holds a band of the rows
    /// ([`Store::create_rows`]), stopping once the band is complete (see
    /// [`RowWriter::complete`]). Sources that scatter rows over the whole image (interlaced
    /// PNG) cannot.
    fn decodes_bands(&self) -> bool {
        true
    }
}

/// Where a [`RowSource`] puts its rows: the store, plus cancellation and progress.
pub struct RowWriter<'a> {
    store: &'a mut Store,
    cancel: &'a dyn Fn() -> bool,
    progress: &'a mut dyn FnMut(u64),
    pending_release: usize,
    released_to: usize,
    rows_done: u64,
    /// One bit per row: written (an image's height/8 bytes).
    written: Vec<u64>,
    /// The rows the store holds, and how many of them are written.
    held: std::ops::Range<usize>,
    held_done: usize,
    /// Where rows the store does not hold are decoded (and dropped), and which rows a band
    /// handed out by [`RowWriter::rows_mut`] there covers.
    spare: Vec<u8>,
    spare_rows: Option<std::ops::Range<usize>>,
}

/// Rows written between two releases of resident store pages.
const RELEASE_EVERY: usize = 64;

impl<'a> RowWriter<'a> {
    /// Wraps a store. `cancel` is polled between rows; `progress` receives rows done.
    pub fn new(store: &'a mut Store, cancel: &'a dyn Fn() -> bool, progress: &'a mut dyn FnMut(u64)) -> Self {
        let words = store.height().div_ceil(64);
        let held = store.rows();
        RowWriter {
            store,
            cancel,
            progress,
            pending_release: 0,
            released_to: held.start,
            rows_done: 0,
            written: vec![0; words],
            held,
            held_done: 0,
            spare: Vec::new(),
            spare_rows: None,
        }
    }
    /// Image height in rows.
    pub fn height(&self) -> usize {
        self.store.height()
    }
    /// Bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.store.row_bytes()
    }
    /// The directory of the store: where a decoder may put scratch files of its own.
    pub fn scratch_dir(&self) -> &Path {
        crate::store::parent_dir(self.store.path())
    }
    /// The rows the store holds: all of the image's, or the band a unit of a distributed job
    /// reads. A decoder may skip rows outside it, and may stop once [`RowWriter::complete`].
    pub fn wanted(&self) -> std::ops::Range<usize> {
        self.held.clone()
    }
    /// Whether every row the store holds has been written: a decoder may stop here.
    pub fn complete(&self) -> bool {
        self.held_done == self.held.len()
    }
    /// Writes row `y` (rows may come in any order, e.g. interlaced passes). `data` must be
    /// exactly one row long.
    pub fn put_row(&mut self, y: usize, data: &[u8]) -> Result<()> {
        let row = self.row_mut(y)?;
        if row.len() != data.len() {
            return Err(Error::usage(format!(
                "row {y} has {} bytes, rows of this image have {}",
                data.len(),
                row.len()
            )));
        }
        row.copy_from_slice(data);
        self.row_done(y)
    }
    /// Row `y` for in-place filling; call [`RowWriter::row_done`] after.
    pub fn row_mut(&mut self, y: usize) -> Result<&mut [u8]> {
        if y >= self.store.height() {
            return Err(Error::usage(format!("row {y} outside the image")));
        }
        if !self.held.contains(&y) {
            self.spare.resize(self.store.row_bytes(), 0);
            return Ok(&mut self.spare);
        }
        Ok(self.store.row_mut(y))
    }
    /// Marks row `y` written: polls for cancellation, reports progress, and every few rows
    /// drops written rows from the resident set.
    pub fn row_done(&mut self, y: usize) -> Result<()> {
        if let Some(w) = self.written.get_mut(y / 64) {
            if *w & (1 << (y % 64)) == 0 && self.held.contains(&y) {
                self.held_done += 1;
            }
            *w |= 1 << (y % 64);
        }
        self.rows_done += 1;
        self.pending_release += 1;
        if self.pending_release >= RELEASE_EVERY {
            self.pending_release = 0;
            if (self.cancel)() {
                return Err(Error::Interrupted { signal: None });
            }
            (self.progress)(self.rows_done);
            // Sequential sources release what lies above; interlaced ones everything.
            if y + 1 > self.released_to {
                self.store.release_rows(self.released_to..y + 1);
                self.released_to = y + 1;
            } else {
                self.store.release_all();
            }
        }
        Ok(())
    }
    /// Rows `rows` (contiguous in the store) for in-place filling by decoders that produce a
    /// band of rows per call; call [`RowWriter::rows_done`] after.
    pub fn rows_mut(&mut self, rows: std::ops::Range<usize>) -> Result<&mut [u8]> {
        if rows.start > rows.end || rows.end > self.store.height() {
            return Err(Error::usage(format!("rows {rows:?} outside the image of {} rows", self.store.height())));
        }
        if rows.start < self.held.start || rows.end > self.held.end {
            // Partly or wholly outside the band held: decoded here, the held rows copied over
            // by `rows_done`.
            self.spare.resize(rows.len() * self.store.row_bytes(), 0);
            self.spare_rows = Some(rows);
            return Ok(&mut self.spare);
        }
        Ok(self.store.rows_mut(rows))
    }
    /// The whole image, for decoders that scatter rows over it (interlaced PNG). The caller
    /// should call [`RowWriter::finish_bulk`] afterwards.
    pub fn whole_mut(&mut self) -> &mut [u8] {
        // Only sources that decode bands get a store holding a band ([`RowSource::decodes_bands`]).
        let held = self.held.clone();
        self.store.rows_mut(held)
    }
    /// Marks rows `rows` written (see [`RowWriter::row_done`]).
    pub fn rows_done(&mut self, rows: std::ops::Range<usize>) -> Result<()> {
        if self.spare_rows.as_ref() == Some(&rows) {
            self.spare_rows = None;
            let rb = self.store.row_bytes();
            let (a, b) = (rows.start.max(self.held.start), rows.end.min(self.held.end));
            if a < b {
                let src = &self.spare[(a - rows.start) * rb..(b - rows.start) * rb];
                self.store.rows_mut(a..b).copy_from_slice(src);
            }
        }
        for y in rows {
            self.row_done(y)?;
        }
        Ok(())
    }
    /// Fails unless every row was marked written ([`RowWriter::row_done`], directly or through
    /// [`RowWriter::put_row`], or all at once by [`RowWriter::finish_bulk`]): a source that
    /// stops short must not leave rows of zeros behind.
    pub fn check_complete(&self) -> Result<()> {
        let h = self.held.len();
        if self.held_done < h {
            let first = self.held.clone().find(|&y| self.written[y / 64] & (1 << (y % 64)) == 0).unwrap_or(0);
            let done = self.held_done;
            return Err(Error::usage(format!("the source delivered {done} of {h} rows (row {first} is missing)")));
        }
        Ok(())
    }
    /// After a bulk fill: marks and reports all rows and releases the resident pages.
    pub fn finish_bulk(&mut self) {
        for y in self.held.clone() {
            self.written[y / 64] |= 1 << (y % 64);
        }
        self.held_done = self.held.len();
        self.rows_done = self.held.len() as u64;
        (self.progress)(self.rows_done);
        self.store.release_all();
    }
    /// Polls the cancel flag.
    pub fn check_cancel(&self) -> Result<()> {
        if (self.cancel)() {
            Err(Error::Interrupted { signal: None })
        } else {
            Ok(())
        }
    }
}

/// Opens `path`, sniffs its format and reads its header. `max_memory` bounds what the decoder
/// may allocate. An image whose EXIF or TIFF Orientation says it is turned or mirrored is
/// delivered upright (its [`ImageInfo`] describes the upright image, orientation cleared).
///
/// ```no_run
/// let src = gigascale::source::open("photo.jpg".as_ref(), 64 << 20)?;
/// println!("{}x{}", src.info().width, src.info().height);
/// # Ok::<(), gigascale::Error>(())
/// ```
pub fn open(path: &Path, max_memory: u64) -> Result<Box<dyn RowSource>> {
    let format = sniff(path)?;
    let src: Box<dyn RowSource> = match format {
        Format::Jpeg => Box::new(jpeg::JpegSource::open(path, max_memory)?),
        Format::Png => Box::new(png::PngSource::open(path, max_memory)?),
        Format::Tiff => Box::new(tiff::TiffSource::open(path, max_memory)?),
        Format::Memory | Format::Custom => return Err(Error::unsupported(path, "not an image file")),
    };
    let info = src.info();
    if info.width == 0 || info.height == 0 {
        return Err(Error::format(path, "image has zero width or height"));
    }
    Ok(orient::Oriented::wrap(src))
}

/// Detects the format from the magic bytes.
pub fn sniff(path: &Path) -> Result<Format> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(Error::usage(format!("{}: is a directory, not an image", path.display())));
    }
    let mut magic = [0u8; 8];
    let mut n = 0;
    while n < magic.len() {
        match f.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    match signature(&magic[..n]) {
        Some(format) => Ok(format),
        None if n == 0 => Err(Error::format(path, "file is empty")),
        None => Err(Error::format(path, "not a JPEG, PNG or TIFF file (unrecognised signature)")),
    }
}

/// The format whose signature starts `head` (its first 8 bytes suffice), if it is one we read.
///
/// ```
/// use gigascale::{source::signature, Format};
/// assert_eq!(signature(b"\x89PNG\r\n\x1a\n"), Some(Format::Png));
/// assert_eq!(signature(b"GIF89a.."), None);
/// ```
pub fn signature(head: &[u8]) -> Option<Format> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if head.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some(Format::Png)
    } else if [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"].iter().any(|m| head.starts_with(*m)) {
        Some(Format::Tiff)
    } else {
        None
    }
}

/// Runs a third-party decoder call, turning a panic inside it into a format error so that a
/// hostile file can never take the process down.
pub(crate) fn guarded<T>(path: &Path, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match crate::libjpeg::quietly(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))) {
        Ok(r) => r,
        Err(_) => Err(Error::format(path, format!("{what}: decoder rejected the data (internal panic)"))),
    }
}

/// Whether the current thread is inside a third-party decoder call, whose panics gigascale
/// catches and reports as format errors. A program that installs its own panic hook can stay
/// silent for those (the `gigascale` binary does).
pub fn panicking_inside_decoder() -> bool {
    crate::libjpeg::panicking_inside_decoder()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_writer_refuses_wrong_rows_and_missing_rows() {
        let mut store = Store::create(&std::env::temp_dir(), 4, 3).unwrap();
        let never = || false;
        let mut progress = |_rows: u64| {};
        let mut w = RowWriter::new(&mut store, &never, &mut progress);
        assert!(w.put_row(0, &[1, 2, 3]).is_err(), "a short row");
        assert!(w.put_row(3, &[1, 2, 3, 4]).is_err(), "a row past the end");
        w.put_row(0, &[1, 2, 3, 4]).unwrap();
        w.put_row(2, &[1, 2, 3, 4]).unwrap();
        let e = w.check_complete().unwrap_err().to_string();
        assert!(e.contains("2 of 3 rows") && e.contains("row 1"), "{e}");
        w.put_row(1, &[1, 2, 3, 4]).unwrap();
        w.check_complete().unwrap();
    }
}
