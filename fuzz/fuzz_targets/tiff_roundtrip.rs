#![no_main]
//! Fuzzes the tiled TIFF writer: a small random image, layout, tile size, scale and codec are
//! written through gigascale's pipeline, read back by the tiff crate, and compared with the same
//! job written uncompressed. Any difference or decoder error is a bug in the writer or codecs.
use gigascale::sink::{TiffSink, TileSink};
use gigascale::source::{RowSource, RowWriter};
use gigascale::{Channels, Compression, Depth, Format, ImageInfo, Layout, Options, Size};

struct Mem(ImageInfo, Vec<u8>);
impl RowSource for Mem {
    fn info(&self) -> &ImageInfo {
        &self.0
    }
    fn decode(&mut self, out: &mut RowWriter<'_>) -> gigascale::Result<()> {
        let rb = self.0.row_bytes();
        for y in 0..self.0.height as usize {
            out.put_row(y, &self.1[y * rb..(y + 1) * rb])?;
        }
        Ok(())
    }
}

fn write(info: &ImageInfo, px: &[u8], o: &Options, path: &std::path::Path) -> Vec<u8> {
    let mut sink = TiffSink::create(path, o.compression, o.level).unwrap();
    gigascale::run(Box::new(Mem(info.clone(), px.to_vec())), &mut sink as &mut dyn TileSink, o, &mut |_| {}).unwrap();
    let mut d = tiff::decoder::Decoder::new(std::fs::File::open(path).unwrap()).unwrap();
    let bytes = match d.read_image().unwrap() {
        tiff::decoder::DecodingResult::U8(v) => v,
        tiff::decoder::DecodingResult::U16(v) => v.iter().flat_map(|s| s.to_le_bytes()).collect(),
        _ => panic!("sample type"),
    };
    let _ = std::fs::remove_file(path);
    bytes
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return; // 8 parameter bytes and at least one pixel byte
    }
    let (w, h) = (1 + data[0] as u32 % 48, 1 + data[1] as u32 % 48);
    let channels = [Channels::Gray, Channels::GrayAlpha, Channels::Rgb, Channels::Rgba][data[2] as usize % 4];
    let depth = if data[3] & 1 == 0 { Depth::U8 } else { Depth::U16 };
    let comp = [Compression::Deflate, Compression::Lzw, Compression::Zstd][data[4] as usize % 3];
    let tile = [16, 32, 48][data[5] as usize % 3];
    let scale = 0.3 + (data[6] as f64) / 40.0;
    let layout = Layout::new(channels, depth);
    let n = (w * h) as usize * layout.bytes_per_pixel();
    let px: Vec<u8> = (0..n).map(|i| data[8 + i % (data.len() - 8).max(1)].wrapping_add(i as u8 & data[7])).collect();
    let info = ImageInfo { width: w, height: h, layout, format: Format::Png, icc_profile: None, details: vec![] };
    let mut o = Options::new(Size::Scale { x: scale, y: scale });
    o.tile = tile;
    o.threads = 1;
    o.max_memory = 64 << 20;
    o.temp_dir = Some(std::env::temp_dir());
    let dir = std::env::temp_dir();
    let plain = write(&info, &px, &o, &dir.join(format!("gs-rt-{}-a.tif", std::process::id())));
    o.compression = comp;
    let packed = write(&info, &px, &o, &dir.join(format!("gs-rt-{}-b.tif", std::process::id())));
    assert!(plain == packed, "{comp:?} round trip differs");
});
