//! Shared by the `tiff_roundtrip` fuzz target (`fuzz/`) and its replay in
//! `tests/fuzz_replay.rs`, so that a saved fuzz input replays exactly the job that failed.
//! Not a stable API.

use crate::source::MemorySource;
use crate::{Channels, Compression, Depth, Layout, Options, Size};

/// Turns fuzz bytes into a small job: an image, options (uncompressed, one thread, 64M) and
/// the codec whose output must decode to the same pixels. `None` for inputs too short.
pub fn tiff_roundtrip_case(data: &[u8]) -> Option<(MemorySource, Options, Compression)> {
    if data.len() < 9 {
        return None; // 8 parameter bytes and at least one pixel byte
    }
    let (w, h) = (1 + data[0] as u32 % 48, 1 + data[1] as u32 % 48);
    let channels = [Channels::Gray, Channels::GrayAlpha, Channels::Rgb, Channels::Rgba][data[2] as usize % 4];
    let depth = if data[3] & 1 == 0 { Depth::U8 } else { Depth::U16 };
    let comp = [Compression::Deflate, Compression::Lzw, Compression::Zstd][data[4] as usize % 3];
    let tile = [16, 32, 48][data[5] as usize % 3];
    let scale = 0.3 + (data[6] as f64) / 40.0;
    let layout = Layout::new(channels, depth);
    let n = (w * h) as usize * layout.bytes_per_pixel();
    let px: Vec<u8> = (0..n).map(|i| data[8 + i % (data.len() - 8)].wrapping_add(i as u8 & data[7])).collect();
    let mut o = Options::new(Size::Scale { x: scale, y: scale });
    o.tile = tile;
    o.threads = 1;
    o.limits.max_memory = 64 << 20;
    let src = MemorySource::new(w, h, layout, px).expect("sizes computed above");
    Some((src, o, comp))
}
