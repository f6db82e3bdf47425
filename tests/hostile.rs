//! A malformed-file corpus built from the fixtures (truncations, bit flips, wrong CRCs, huge
//! and zero declared sizes, IFD loops): every file is refused with a one-line error naming it,
//! or — when a flip leaves a valid image — converted into a valid output. Never a panic, a
//! signal, a hang, or memory beyond the budget. Set GIGASCALE_CORPUS_DIR to keep the corpus.
use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)).unwrap()
}

fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

/// PNG with IHDR width/height replaced (CRC fixed up, so only the sizes are hostile).
fn png_sized(mut b: Vec<u8>, w: u32, h: u32) -> Vec<u8> {
    b[16..20].copy_from_slice(&be32(w));
    b[20..24].copy_from_slice(&be32(h));
    let crc = crc32(&b[12..29]);
    b[29..33].copy_from_slice(&be32(crc));
    b
}

/// JPEG with the frame header's height and width replaced.
fn jpeg_sized(mut b: Vec<u8>, w: u16, h: u16) -> Vec<u8> {
    let sof = (0..b.len() - 1).find(|&i| b[i] == 0xFF && (b[i + 1] == 0xC0 || b[i + 1] == 0xC2)).unwrap();
    b[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    b[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    b
}

/// Classic little-endian TIFF: (IFD offset, entry count).
fn tiff_ifd(b: &[u8]) -> (usize, usize) {
    let ifd = u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
    (ifd, u16::from_le_bytes(b[ifd..ifd + 2].try_into().unwrap()) as usize)
}

/// Sets tag `tag` of a classic TIFF to a LONG `v`.
fn tiff_set(mut b: Vec<u8>, tag: u16, v: u32) -> Vec<u8> {
    let (ifd, n) = tiff_ifd(&b);
    for e in 0..n {
        let o = ifd + 2 + e * 12;
        if u16::from_le_bytes([b[o], b[o + 1]]) == tag {
            b[o + 2..o + 4].copy_from_slice(&4u16.to_le_bytes());
            b[o + 4..o + 8].copy_from_slice(&1u32.to_le_bytes());
            b[o + 8..o + 12].copy_from_slice(&v.to_le_bytes());
        }
    }
    b
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let sources = [
        "coffee.jpg",
        "coffee-progressive.jpg",
        "camera-gray.jpg",
        "coffee16.png",
        "coffee-interlaced.png",
        "chelsea-rgba.png",
        "coffee-tiled-lzw.tif",
        "coffee-strips-deflate.tif",
        "coffee-bigtiff.tif",
    ];
    let mut v = Vec::new();
    for name in sources {
        let b = fixture(name);
        for frac in [0.0, 0.01, 0.05, 0.2, 0.5, 0.9, 0.995] {
            let n = ((b.len() as f64 * frac) as usize).max(1);
            v.push((format!("trunc{:03}-{name}", (frac * 1000.0) as u32), b[..n].to_vec()));
        }
        for (i, pos) in [1usize, 3, 9, 17, 20, 33, 40, 70].into_iter().enumerate() {
            let mut m = b.clone();
            let p = pos.min(m.len() - 1);
            m[p] ^= 1 << (i % 8);
            v.push((format!("flip{pos:03}-{name}"), m));
        }
    }
    let png = fixture("coffee16.png");
    let mut bad_crc = png.clone();
    bad_crc[30] ^= 0x55;
    v.push(("badcrc-ihdr.png".into(), bad_crc));
    let mut bad_data = png.clone();
    let l = bad_data.len();
    bad_data[l / 2] ^= 0xFF;
    v.push(("badcrc-idat.png".into(), bad_data));
    v.push(("huge.png".into(), png_sized(png.clone(), 0x7FFF_FFFF, 0x7FFF_FFFF)));
    v.push(("wide.png".into(), png_sized(png.clone(), 2_000_000_000, 1)));
    v.push(("zero-w.png".into(), png_sized(png.clone(), 0, 100)));
    v.push(("zero-h.png".into(), png_sized(png, 150, 0)));
    let jpg = fixture("coffee.jpg");
    v.push(("huge.jpg".into(), jpeg_sized(jpg.clone(), 65535, 65535)));
    v.push(("zero-h.jpg".into(), jpeg_sized(jpg.clone(), 150, 0)));
    v.push(("huge-prog.jpg".into(), jpeg_sized(fixture("coffee-progressive.jpg"), 65000, 65000)));
    v.push(("zero-w.jpg".into(), jpeg_sized(jpg, 0, 100)));
    let tif = fixture("coffee-strips-deflate.tif");
    v.push(("huge-w.tif".into(), tiff_set(tif.clone(), 256, 0xFFFF_FFF0)));
    v.push(("huge-wh.tif".into(), tiff_set(tiff_set(tif.clone(), 256, 1 << 20), 257, 1 << 20)));
    v.push(("zero-w.tif".into(), tiff_set(tif.clone(), 256, 0)));
    v.push(("offsets-past-end.tif".into(), tiff_set(tif.clone(), 273, 0x7FFF_0000)));
    v.push(("counts-huge.tif".into(), tiff_set(tif.clone(), 279, 0xFFFF_FFFF)));
    v.push(("rows-per-strip-0.tif".into(), tiff_set(tif.clone(), 278, 0)));
    let mut looped = tif.clone();
    let (ifd, n) = tiff_ifd(&looped);
    let next = ifd + 2 + n * 12;
    looped[next..next + 4].copy_from_slice(&(ifd as u32).to_le_bytes());
    v.push(("ifd-loop.tif".into(), looped));
    let mut ifd_past = tif;
    ifd_past[4..8].copy_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
    v.push(("ifd-past-end.tif".into(), ifd_past));
    let tiled = fixture("coffee-tiled-lzw.tif");
    v.push(("tile-w-0.tif".into(), tiff_set(tiled.clone(), 322, 0)));
    v.push(("tile-w-odd.tif".into(), tiff_set(tiled.clone(), 322, 7)));
    v.push(("tile-table-short.tif".into(), tiff_set(tiled, 324, 8)));
    v.push(("empty.png".into(), Vec::new()));
    v.push(("text.tif".into(), b"II*\0 this is not a tiff at all".to_vec()));
    v
}

#[test]
fn hostile_files_fail_cleanly() {
    let keep = std::env::var_os("GIGASCALE_CORPUS_DIR").map(PathBuf::from);
    let d =
        keep.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("gigascale-hostile-{}", std::process::id())));
    std::fs::create_dir_all(d.join("out")).unwrap();
    std::fs::create_dir_all(d.join("tmp")).unwrap();
    let files = corpus();
    assert!(files.len() >= 60, "corpus has only {} files", files.len());
    let (mut refused, mut converted) = (0, 0);
    for (name, bytes) in &files {
        let input = d.join(name);
        std::fs::write(&input, bytes).unwrap();
        let out = d.join("out").join("o.tif");
        let _ = std::fs::remove_file(&out);
        let t = Instant::now();
        let mut child = Command::new("/usr/bin/time")
            .args(["-f", "peak_rss_kb=%M", env!("CARGO_BIN_EXE_gigascale"), "upscale"])
            .arg(&input)
            .arg(&out)
            .args(["--scale", "1.7", "--max-memory", "64M", "--quiet", "--temp-dir"])
            .arg(d.join("tmp"))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("{name}: still running after 20 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        let (msg, rss) = err.rsplit_once("peak_rss_kb=").unwrap_or((&err, "0"));
        let rss: u64 = rss.trim().parse().unwrap_or(0);
        assert!(!msg.contains("Command terminated by signal"), "{name}: {msg}");
        let msg: String = msg
            .lines()
            .filter(|l| !l.starts_with("Command exited with non-zero status"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(rss * 1024 <= (64 + 16) << 20, "{name}: peak RSS {rss} KiB");
        assert!(!msg.contains("panicked") && !msg.contains("RUST_BACKTRACE"), "{name}: {msg}");
        match status.code() {
            Some(0) => {
                converted += 1;
                assert!(out.exists(), "{name}: success without output");
                let info = Command::new("tiffinfo").arg(&out).output().unwrap();
                assert!(info.status.success(), "{name}: output unreadable by libtiff");
            }
            Some(1) | Some(2) => {
                refused += 1;
                let lines: Vec<&str> = msg.trim_end().lines().collect();
                assert_eq!(lines.len(), 1, "{name}: not one line: {msg}");
                assert!(lines[0].contains(name.as_str()), "{name}: error does not name the file: {msg}");
                assert!(!out.exists(), "{name}: output left behind");
            }
            other => panic!("{name}: exit {other:?}: {msg}"),
        }
        assert_eq!(std::fs::read_dir(d.join("tmp")).unwrap().count(), 0, "{name}: temp files left");
        let leftovers: Vec<_> =
            std::fs::read_dir(d.join("out")).unwrap().flatten().filter(|e| e.file_name() != "o.tif").collect();
        assert!(leftovers.is_empty(), "{name}: partial output left: {leftovers:?}");
        if keep.is_none() {
            std::fs::remove_file(&input).unwrap();
        }
    }
    eprintln!("{} hostile files: {refused} refused cleanly, {converted} still valid and converted", files.len());
    assert!(refused >= 40, "suspiciously few refusals: {refused}");
    if keep.is_none() {
        std::fs::remove_dir_all(&d).unwrap();
    }
}
