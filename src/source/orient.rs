//! EXIF/TIFF orientation applied to the pixels: the source as it is meant to be seen.
//!
//! A camera that was turned stores its pixels as the sensor saw them and says, in the
//! Orientation tag (1-8), how to show them. [`Oriented`] wraps such a source: it decodes the
//! stored pixels into a scratch [`Store`] of their own (a file, its resident part released as
//! it goes), then hands the upright rows to the real store, band by band. The image it
//! describes is the upright one (width and height swapped for the quarter turns, resolution
//! too) with orientation 1, so every later stage — planning, tiles, every sink and the
//! rewritten EXIF block — sees an upright image, and viewers that honour the tag cannot turn it
//! a second time.

use super::{RowSource, RowWriter};
use crate::error::Result;
use crate::pixel::ImageInfo;
use crate::store::Store;

/// Bytes of upright rows assembled at once when a quarter turn transposes the image.
const BAND_BYTES: usize = 8 << 20;
/// Rows of the stored image read between two releases of their resident pages.
const RELEASE_EVERY: usize = 64;

/// Where the pixel at `(x, y)` of the upright image lies in the stored image of
/// `width x height` (the stored size), for EXIF orientation `o` (1-8).
///
/// ```text
/// 1 as stored   2 mirrored       3 turned 180°   4 flipped
/// 5 transposed  6 turned 90° cw  7 transversed   8 turned 90° ccw (to be shown upright)
/// ```
pub(crate) fn stored_xy(o: u16, (width, height): (u32, u32), (x, y): (u32, u32)) -> (u32, u32) {
    let (w1, h1) = (width - 1, height - 1);
    match o {
        2 => (w1 - x, y),
        3 => (w1 - x, h1 - y),
        4 => (x, h1 - y),
        5 => (y, x),
        6 => (y, h1 - x),
        7 => (w1 - y, h1 - x),
        8 => (w1 - y, x),
        _ => (x, y),
    }
}

/// Whether orientation `o` swaps width and height (the quarter turns and transpositions).
pub(crate) fn swaps_axes(o: u16) -> bool {
    (5..=8).contains(&o)
}

/// A source whose stored pixels are turned or mirrored upright (see the module docs).
pub(crate) struct Oriented {
    inner: Box<dyn RowSource>,
    orientation: u16,
    info: ImageInfo,
}

impl Oriented {
    /// Wraps `inner` if its orientation is not 1; returns it unchanged otherwise.
    pub(crate) fn wrap(inner: Box<dyn RowSource>) -> Box<dyn RowSource> {
        let o = inner.info().metadata.orientation.unwrap_or(1);
        if !(2..=8).contains(&o) {
            return inner;
        }
        let mut info = inner.info().clone();
        if swaps_axes(o) {
            std::mem::swap(&mut info.width, &mut info.height);
            info.metadata.dpi = info.metadata.dpi.map(|(x, y)| (y, x));
        }
        info.metadata.orientation = None;
        info.details.push(("orientation".into(), format!("{o} in the file, applied to the pixels")));
        Box::new(Oriented { inner, orientation: o, info })
    }

    /// Rows of the upright image assembled per pass over the stored one.
    fn band_rows(&self) -> usize {
        (BAND_BYTES / self.info.row_bytes().max(1)).clamp(1, self.info.height as usize)
    }

    /// Fills `out` with upright rows read from `stored` (the whole stored image).
    fn turn(&self, stored: &Store, out: &mut RowWriter<'_>) -> Result<()> {
        let wanted = out.wanted();
        if swaps_axes(self.orientation) {
            let band = self.band_rows();
            let mut y = wanted.start;
            while y < wanted.end {
                let rows = y..(y + band).min(wanted.end);
                self.transpose_band(stored, rows.clone(), out.rows_mut(rows.clone())?);
                out.rows_done(rows.clone())?;
                y = rows.end;
            }
        } else {
            let size = (self.info.width, self.info.height);
            let px = self.info.layout.bytes_per_pixel();
            // The stored rows read since their pages were last released.
            let mut read: Option<std::ops::Range<usize>> = None;
            for y in wanted {
                let (_, sy) = stored_xy(self.orientation, size, (0, y as u32));
                let from = stored.row(sy as usize);
                let row = out.row_mut(y)?;
                if matches!(self.orientation, 2 | 3) {
                    for (d, s) in row.chunks_exact_mut(px).zip(from.chunks_exact(px).rev()) {
                        d.copy_from_slice(s);
                    }
                } else {
                    row.copy_from_slice(from);
                }
                out.row_done(y)?;
                let sy = sy as usize;
                let r = read.get_or_insert(sy..sy + 1);
                *r = r.start.min(sy)..r.end.max(sy + 1);
                if r.len() >= RELEASE_EVERY {
                    stored.release_rows(r.clone());
                    read = None;
                }
            }
        }
        stored.release_all();
        Ok(())
    }

    /// Upright rows `rows` into `band` (those rows back to back): each is a column of the
    /// stored image, read one stored row at a time so that every stored page is touched once
    /// per band.
    fn transpose_band(&self, stored: &Store, rows: std::ops::Range<usize>, band: &mut [u8]) {
        let (w, h) = (self.info.width, self.info.height);
        let stored_size = (h, w);
        let px = self.info.layout.bytes_per_pixel();
        let rb = self.info.row_bytes();
        for sy in 0..stored.height() {
            let from = stored.row(sy);
            for (i, y) in rows.clone().enumerate() {
                // Upright pixel (x, y) for which stored row `sy` holds the source: x follows
                // from the orientation (the stored row is one upright column).
                let x = match self.orientation {
                    5 | 8 => sy as u32,
                    _ => w - 1 - sy as u32,
                };
                let (sx, sy2) = stored_xy(self.orientation, stored_size, (x, y as u32));
                debug_assert_eq!(sy2 as usize, sy);
                let d = i * rb + x as usize * px;
                band[d..d + px].copy_from_slice(&from[sx as usize * px..sx as usize * px + px]);
            }
            if sy % RELEASE_EVERY == RELEASE_EVERY - 1 {
                stored.release_rows(sy + 1 - RELEASE_EVERY..sy + 1);
            }
        }
    }
}

impl RowSource for Oriented {
    fn info(&self) -> &ImageInfo {
        &self.info
    }
    fn decode_memory(&self) -> u64 {
        let band = self.band_rows() * self.info.row_bytes();
        self.inner.decode_memory() + band as u64
    }
    fn decode(&mut self, out: &mut RowWriter<'_>) -> Result<()> {
        let stored_info = self.inner.info();
        let (rb, h) = (stored_info.row_bytes(), stored_info.height as usize);
        let mut stored = Store::create(out.scratch_dir(), rb, h)?;
        {
            let cancel = || out.check_cancel().is_err();
            let mut quiet = |_| {};
            let mut w = RowWriter::new(&mut stored, &cancel, &mut quiet);
            self.inner.decode(&mut w)?;
            w.check_complete()?;
        }
        self.turn(&stored, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each orientation's map from upright to stored pixels is a bijection that, applied to
    /// the corners, matches the EXIF definition (which stored corner is shown top-left).
    #[test]
    fn every_orientation_maps_the_corners_as_exif_defines() {
        let (w, h) = (5u32, 3u32);
        // The stored corner shown at the upright top-left, per orientation.
        let top_left = [(0, 0), (4, 0), (4, 2), (0, 2), (0, 0), (0, 2), (4, 2), (4, 0)];
        for o in 1..=8u16 {
            let (uw, uh) = if swaps_axes(o) { (h, w) } else { (w, h) };
            assert_eq!(stored_xy(o, (w, h), (0, 0)), top_left[o as usize - 1], "orientation {o}");
            let mut seen = vec![false; (w * h) as usize];
            for y in 0..uh {
                for x in 0..uw {
                    let (sx, sy) = stored_xy(o, (w, h), (x, y));
                    assert!(sx < w && sy < h, "orientation {o}: ({x},{y}) -> ({sx},{sy})");
                    assert!(!std::mem::replace(&mut seen[(sy * w + sx) as usize], true), "orientation {o}");
                }
            }
        }
    }
}
