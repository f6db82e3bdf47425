//! An image already in memory, as a [`RowSource`]: for embedding gigascale behind another
//! decoder, and for tests.

use super::{RowSource, RowWriter};
use crate::error::{Error, Result};
use crate::pixel::{Format, ImageInfo, Layout};

/// Rows held in memory (native-endian samples, rows back to back).
///
/// ```
/// use gigascale::source::{MemorySource, RowSource};
/// use gigascale::{Channels, Depth, Layout};
/// let src = MemorySource::new(2, 1, Layout::new(Channels::Gray, Depth::U8), vec![0, 255]).unwrap();
/// assert_eq!(src.info().width, 2);
/// assert!(MemorySource::new(2, 2, Layout::new(Channels::Gray, Depth::U8), vec![0]).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct MemorySource {
    info: ImageInfo,
    bytes: Vec<u8>,
}

impl MemorySource {
    /// Wraps `bytes`, which must hold exactly `width x height` pixels of `layout`.
    pub fn new(width: u32, height: u32, layout: Layout, bytes: Vec<u8>) -> Result<MemorySource> {
        let info = ImageInfo {
            width,
            height,
            layout,
            format: Format::Memory,
            icc_profile: None,
            details: vec![],
            metadata: Default::default(),
        };
        if info.total_bytes() != Some(bytes.len() as u64) || width == 0 || height == 0 {
            return Err(Error::usage(format!(
                "memory image: {width}x{height} {} needs {:?} bytes, got {}",
                layout.channels.name(),
                info.total_bytes(),
                bytes.len()
            )));
        }
        Ok(MemorySource { info, bytes })
    }
}

impl RowSource for MemorySource {
    fn info(&self) -> &ImageInfo {
        &self.info
    }
    fn decode(&mut self, out: &mut RowWriter<'_>) -> Result<()> {
        let rb = self.info.row_bytes();
        for (y, row) in self.bytes.chunks_exact(rb).enumerate() {
            out.put_row(y, row)?;
        }
        Ok(())
    }
}
