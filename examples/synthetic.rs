//! Streams a huge synthetic image through gigascale with a custom source and a custom sink,
//! touching the disk only for the scanline store.
//!
//!     cargo run --release --example synthetic -- 4000 3000 10
//!
//! produces a 40000x30000 (1.2 gigapixel) output whose tiles are checksummed, never stored.

use gigascale::sink::{Raw, SinkHeader, TileEncoder, TileSink};
use gigascale::source::{RowSource, RowWriter};
use gigascale::{Channels, Depth, Format, ImageInfo, Layout, Options, Size, TileJob};

/// A procedural RGB image: rings and a diagonal ramp, generated row by row.
struct Rings {
    info: ImageInfo,
}

impl RowSource for Rings {
    fn info(&self) -> &ImageInfo {
        &self.info
    }
    fn decode(&mut self, out: &mut RowWriter<'_>) -> gigascale::Result<()> {
        let (w, h) = (self.info.width as usize, self.info.height as usize);
        let mut row = vec![0u8; w * 3];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f64 - w as f64 / 2.0, y as f64 - h as f64 / 2.0);
                let r = (dx * dx + dy * dy).sqrt();
                row[x * 3] = ((r / 7.0).sin() * 127.0 + 128.0) as u8;
                row[x * 3 + 1] = ((x + y) * 255 / (w + h)) as u8;
                row[x * 3 + 2] = if (x / 64 + y / 64) % 2 == 0 { 230 } else { 25 };
            }
            out.put_row(y, &row)?;
        }
        Ok(())
    }
}

/// A sink that folds every tile into a checksum (FNV-1a) and counts pixels.
#[derive(Default)]
struct Checksum {
    hash: u64,
    pixels: u64,
    tile: usize,
    bpp: usize,
}

impl TileSink for Checksum {
    fn begin(&mut self, h: &SinkHeader) -> gigascale::Result<()> {
        self.hash = 0xcbf29ce484222325;
        self.tile = h.tile as usize;
        self.bpp = h.layout.bytes_per_pixel();
        Ok(())
    }
    fn encoder(&self) -> gigascale::Result<Box<dyn TileEncoder>> {
        Ok(Box::new(Raw))
    }
    fn write_tile(&mut self, job: &TileJob, data: &[u8]) -> gigascale::Result<()> {
        for r in 0..job.out.h as usize {
            for &b in &data[r * self.tile * self.bpp..][..job.out.w as usize * self.bpp] {
                self.hash = (self.hash ^ b as u64).wrapping_mul(0x100000001b3);
            }
        }
        self.pixels += job.out.area();
        Ok(())
    }
    fn finish(&mut self) -> gigascale::Result<u64> {
        Ok(0)
    }
}

fn main() -> gigascale::Result<()> {
    let args: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (w, h, scale) =
        (args.first().copied().unwrap_or(800), args.get(1).copied().unwrap_or(600), args.get(2).copied().unwrap_or(10));
    let source = Rings { info: ImageInfo::new(w, h, Layout::new(Channels::Rgb, Depth::U8), Format::Custom) };
    let mut opts = Options::new(Size::Scale { x: scale as f64, y: scale as f64 });
    opts.limits.max_memory = 64 << 20;
    let mut sink = Checksum::default();
    let report = gigascale::run(Box::new(source), &mut sink, &opts, &mut |e| {
        if let gigascale::Event::Tiles { done, total } = e {
            if done == total || done % 1000 == 0 {
                eprintln!("tiles {done}/{total}");
            }
        }
    })?;
    println!(
        "{}x{} -> {}x{}: {} pixels, checksum {:016x}, {:.2} s, planned memory {} bytes",
        w, h, report.output.0, report.output.1, sink.pixels, sink.hash, report.seconds, report.memory.total
    );
    Ok(())
}
