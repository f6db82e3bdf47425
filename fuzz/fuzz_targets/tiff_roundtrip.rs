#![no_main]
//! Fuzzes the tiled TIFF writer: a small random image, layout, tile size, scale and codec are
//! written through gigascale's pipeline, read back by the tiff crate, and compared with the same
//! job written uncompressed. Any difference or decoder error is a bug in the writer or codecs.
//! The case is built by `gigascale::fuzzing`, which `tests/fuzz_replay.rs` replays too.
use gigascale::sink::{TiffSink, TileSink};
use gigascale::source::MemorySource;
use gigascale::Options;

fn write(src: &MemorySource, o: &Options, path: &std::path::Path) -> Vec<u8> {
    let mut sink = TiffSink::create(path, o.compression, o.level).unwrap();
    gigascale::run(Box::new(src.clone()), &mut sink as &mut dyn TileSink, o, &mut |_| {}).unwrap();
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
    let Some((src, mut o, comp)) = gigascale::fuzzing::tiff_roundtrip_case(data) else { return };
    let dir = std::env::temp_dir();
    o.temp_dir = Some(dir.clone());
    let plain = write(&src, &o, &dir.join(format!("gs-rt-{}-a.tif", std::process::id())));
    o.compression = comp;
    let packed = write(&src, &o, &dir.join(format!("gs-rt-{}-b.tif", std::process::id())));
    assert!(plain == packed, "{comp:?} round trip differs");
});
