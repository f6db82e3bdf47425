//! Files written by gigascale are read back by the tiff crate's decoder and by libtiff
//! (`tiffinfo -D`), report tiles, and hold exactly the pixels the engine computed.
use crate::util::*;
use gigascale::sink::{TiffSink, TileSink};
use gigascale::{Channels, Compression, Depth, Filter, Layout};
use std::path::Path;
use std::process::Command;

/// Runs `tiffinfo -D` (reads every tile through libtiff) and returns its stdout.
fn tiffinfo(path: &Path) -> String {
    let out =
        Command::new("tiffinfo").arg("-D").arg(path).output().expect("tiffinfo (libtiff-tools) must be installed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tiffinfo failed on {}: {stderr}", path.display());
    assert!(stderr.trim().is_empty(), "tiffinfo complained about {}: {stderr}", path.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write_tiff(img: &Img, path: &Path, c: Compression, big: bool, tile: u32, sx: f64, f: Filter) -> Img {
    let mut o = opts_scale(sx, sx, f);
    o.tile = tile;
    o.compression = c;
    let mut sink = TiffSink::create(path, c, None).unwrap().force_bigtiff(big);
    let rep = gigascale::run(Box::new(img.source()), &mut sink as &mut dyn TileSink, &o, &mut |_| {}).unwrap();
    assert_eq!(sink.is_bigtiff(), big);
    let mem = run_mem(img, &o).unwrap();
    assert_eq!((mem.w, mem.h), rep.output);
    mem
}

#[test]
fn every_compression_and_layout_reads_back_identically() {
    let dir = scratch("codecs");
    let mut rng = Rng(3);
    let mut n = 0;
    for c in [Compression::None, Compression::Deflate, Compression::Lzw, Compression::Zstd] {
        for (channels, depth) in [
            (Channels::Gray, Depth::U8),
            (Channels::GrayAlpha, Depth::U16),
            (Channels::Rgb, Depth::U8),
            (Channels::Rgba, Depth::U8),
            (Channels::Rgb, Depth::U16),
        ] {
            for big in [false, true] {
                let img = random_img(&mut rng, 29, 21, Layout::new(channels, depth));
                let path = dir.join(format!("out-{n}.tif"));
                n += 1;
                let want = write_tiff(&img, &path, c, big, 32, 2.3, Filter::Lanczos3);
                let (w, h, _ct, data) = read_tiff(&path);
                assert_eq!((w, h), (want.w, want.h));
                assert!(
                    data == want.data,
                    "{c:?} {channels:?} {depth:?} big={big}: pixels differ after the tiff crate decodes"
                );
                let info = tiffinfo(&path);
                assert!(info.contains("Tile Width: 32 Tile Length: 32"), "{info}");
                if big {
                    assert_eq!(&std::fs::read(&path).unwrap()[..4], b"II+\0");
                }
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fixtures_through_the_cli_read_back_everywhere() {
    let dir = scratch("fixtures");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut seen = 0;
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains("cmyk") || !(name.ends_with(".jpg") || name.ends_with(".png") || name.ends_with(".tif")) {
            continue;
        }
        for (ext, comp) in [("tif", "zstd"), ("png", "none")] {
            let out = dir.join(format!("{name}.{ext}"));
            let st = Command::new(env!("CARGO_BIN_EXE_gigascale"))
                .args([
                    "upscale",
                    p.to_str().unwrap(),
                    out.to_str().unwrap(),
                    "--scale",
                    "2.5",
                    "--compression",
                    comp,
                    "--max-memory",
                    "32M",
                    "--quiet",
                ])
                .status()
                .unwrap();
            assert!(st.success(), "{name} -> {ext}");
            if ext == "tif" {
                let (w, h, _, _) = read_tiff(&out);
                let info = tiffinfo(&out);
                assert!(
                    info.contains(&format!("Image Width: {w} Image Length: {h}")) && info.contains("Tile Width: 256"),
                    "{info}"
                );
            } else {
                let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&out).unwrap()));
                let mut r = dec.read_info().unwrap();
                let mut buf = vec![0; r.output_buffer_size().unwrap()];
                r.next_frame(&mut buf).unwrap();
            }
        }
        seen += 1;
    }
    assert!(seen >= 12, "only {seen} fixtures");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn icc_profile_is_carried() {
    let dir = scratch("icc");
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/coffee.jpg");
    let src = gigascale::source::open(&input, 1 << 26).unwrap();
    let icc = src.info().icc_profile.clone().expect("fixture has an ICC profile");
    let out = dir.join("o.tif");
    let o = opts_scale(2.0, 2.0, Filter::Bicubic);
    gigascale::upscale(&input, &out, &o, gigascale::Files::default(), &mut |_| {}).unwrap();
    let mut d = tiff::decoder::Decoder::new(std::fs::File::open(&out).unwrap()).unwrap();
    let v = d.get_tag_u8_vec(tiff::tags::Tag::Unknown(34675)).unwrap();
    assert_eq!(v, icc);
    let outp = dir.join("o.png");
    gigascale::upscale(&input, &outp, &o, gigascale::Files::default(), &mut |_| {}).unwrap();
    let r = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&outp).unwrap())).read_info().unwrap();
    assert_eq!(r.info().icc_profile.as_deref(), Some(&icc[..]));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn png_output_matches_tiff_output() {
    let dir = scratch("png");
    let mut rng = Rng(11);
    for (channels, depth) in [(Channels::Rgba, Depth::U16), (Channels::Gray, Depth::U8)] {
        let img = random_img(&mut rng, 40, 30, Layout::new(channels, depth));
        let o = opts_scale(3.0, 3.0, Filter::Mitchell);
        let mut sink = gigascale::sink::PngSink::create(&dir.join("a.png")).unwrap();
        gigascale::run(Box::new(img.source()), &mut sink, &o, &mut |_| {}).unwrap();
        let want = run_mem(&img, &o).unwrap();
        let mut r = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(dir.join("a.png")).unwrap()))
            .read_info()
            .unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        r.next_frame(&mut buf).unwrap();
        let got: Vec<u16> = match depth {
            Depth::U8 => buf.iter().map(|&b| b as u16).collect(),
            Depth::U16 => buf.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect(),
            d => panic!("no test images of {d:?}"),
        };
        assert!(got == want.data, "{channels:?} {depth:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tile_offsets_past_4_gib_read_back_with_libtiff() {
    let dir = scratch("sparse");
    let mut rng = Rng(11);
    let img = random_img(&mut rng, 23, 17, Layout::new(Channels::Rgb, Depth::U8));
    let mut o = opts_scale(7.0, 7.0, Filter::Lanczos3);
    o.tile = 64;
    o.compression = Compression::Deflate;
    let big = dir.join("big.tif");
    // A 5 GiB sparse hole after the header: every tile offset lies past 4 GiB, no block is
    // written for the hole.
    let mut sink = TiffSink::create(&big, o.compression, None).unwrap().with_hole(5 << 30);
    gigascale::run(Box::new(img.source()), &mut sink as &mut dyn TileSink, &o, &mut |_| {}).unwrap();
    assert!(sink.is_bigtiff());
    assert!(std::fs::metadata(&big).unwrap().len() > 5 << 30);
    let info = tiffinfo(&big);
    assert!(info.contains("Tile Width: 64"), "{info}");
    // libtiff copies it (reading every tile at its 64-bit offset) into a plain file...
    let copy = dir.join("copy.tif");
    let st = Command::new("tiffcp").arg(&big).arg(&copy).status().expect("tiffcp (libtiff-tools)");
    assert!(st.success());
    // ...whose pixels are the engine's.
    let want = run_mem(&img, &o).unwrap();
    let (w, h, _, data) = read_tiff(&copy);
    assert_eq!((w, h), (want.w, want.h));
    assert!(data == want.data, "pixels read through libtiff differ");
    std::fs::remove_dir_all(&dir).unwrap();
}
