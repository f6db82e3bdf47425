//! An output held in memory: the whole image, for small outputs (a face enlarged by a
//! model; an embedder's thumbnail). Counted in the job's memory plan like any sink's buffers.

use super::{Raw, SinkHeader, TileEncoder, TileSink};
use crate::plan::TileJob;
use crate::{Error, Result};

/// Collects the output image in memory, rows back to back in the output's layout.
///
/// ```
/// use gigascale::sink::MemorySink;
/// use gigascale::source::MemorySource;
/// use gigascale::{Channels, Depth, Layout, Options, Size};
/// let src = MemorySource::new(2, 1, Layout::new(Channels::Gray, Depth::U8), vec![0, 200])?;
/// let mut sink = MemorySink::default();
/// let opts = Options::new(Size::Scale { x: 2.0, y: 2.0 });
/// gigascale::run(Box::new(src), &mut sink, &opts, &mut |_| {})?;
/// assert_eq!((sink.width(), sink.height(), sink.pixels().len()), (4, 2, 8));
/// # Ok::<(), gigascale::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct MemorySink {
    header: Option<SinkHeader>,
    pixels: Vec<u8>,
    done: bool,
}

impl MemorySink {
    /// The output's width (0 before the job begins).
    pub fn width(&self) -> u32 {
        self.header.as_ref().map_or(0, |h| h.width)
    }
    /// The output's height (0 before the job begins).
    pub fn height(&self) -> u32 {
        self.header.as_ref().map_or(0, |h| h.height)
    }
    /// The pixels written so far (all of them once the job has finished).
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }
    /// The finished image's pixels; an error if the job did not finish.
    pub fn into_pixels(self) -> Result<Vec<u8>> {
        if !self.done {
            return Err(super::out_of_order("into_pixels() before finish()", "MemorySink"));
        }
        Ok(self.pixels)
    }
}

impl TileSink for MemorySink {
    fn begin(&mut self, h: &SinkHeader) -> Result<()> {
        if self.header.is_some() {
            return Err(super::out_of_order("begin() twice", "MemorySink"));
        }
        let bytes = image_bytes(h);
        self.pixels = vec![0; usize::try_from(bytes).map_err(|_| Error::usage("output too large for memory"))?];
        self.header = Some(h.clone());
        Ok(())
    }

    fn encoder(&self) -> Result<Box<dyn TileEncoder>> {
        Ok(Box::new(Raw))
    }

    fn write_tile(&mut self, job: &TileJob, data: &[u8]) -> Result<()> {
        let h = self.header.as_ref().ok_or_else(|| super::out_of_order("write_tile() before begin()", "MemorySink"))?;
        // The image from the tile's first row on is a band starting there.
        let at = job.out.y as usize * h.width as usize * h.layout.bytes_per_pixel();
        super::png::place_in_band(&mut self.pixels[at..], job.out.y, h, job, data)?;
        Ok(())
    }

    fn finish(&mut self) -> Result<u64> {
        self.done = true;
        Ok(self.pixels.len() as u64)
    }

    fn memory(&self, h: &SinkHeader) -> u64 {
        image_bytes(h)
    }
}

/// The whole image's bytes.
fn image_bytes(h: &SinkHeader) -> u64 {
    h.width as u64 * h.height as u64 * h.layout.bytes_per_pixel() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixel::{Channels, Depth, Layout};
    use crate::plan::Rect;

    /// Tiles land where their rectangles say (rows `tile` pixels apart in the tile data);
    /// calls out of order are errors.
    #[test]
    fn tiles_land_in_place_and_order_is_checked() {
        let mut sink = MemorySink::default();
        let job = TileJob { index: 0, out: Rect { x: 2, y: 1, w: 2, h: 2 }, src: Rect { x: 0, y: 0, w: 1, h: 1 } };
        assert!(sink.write_tile(&job, &[0; 8]).is_err(), "write_tile before begin");
        let layout = Layout::new(Channels::Gray, Depth::U8);
        let h = SinkHeader { width: 4, height: 3, tile: 2, layout, icc_profile: None, metadata: Default::default() };
        sink.begin(&h).unwrap();
        assert_eq!(sink.memory(&h), 12);
        sink.write_tile(&job, &[1, 2, 3, 4]).unwrap();
        assert!(MemorySink { done: false, ..Default::default() }.into_pixels().is_err());
        sink.finish().unwrap();
        assert_eq!(sink.into_pixels().unwrap(), [0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4]);
    }
}
