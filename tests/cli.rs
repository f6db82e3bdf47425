//! The binary: main jobs, bad input, and what is (not) left behind.
use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch directory with a `tmp` folder for `--temp-dir`, removed when the test ends.
#[track_caller]
fn tmpdir(name: &str) -> TempDir {
    let d = TempDir::new(name);
    std::fs::create_dir_all(d.join("tmp")).unwrap();
    d
}

fn upscale(dir: &Path, input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut c = bin();
    c.args(["upscale"]).arg(input).arg(out).args(["--temp-dir"]).arg(dir.join("tmp")).args(extra);
    c.output().unwrap()
}

/// Nothing but `keep` may remain in `dir` (and its temp folder must be empty).
fn assert_clean(dir: &Path, keep: &[&str]) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(name == "tmp" || keep.contains(&name.as_str()), "left behind: {name}");
    }
    assert_eq!(std::fs::read_dir(dir.join("tmp")).unwrap().count(), 0, "temp files left in --temp-dir");
}

#[test]
fn main_jobs_work() {
    let d = tmpdir("jobs");
    let o = upscale(&d, &fixture("coffee.jpg"), &d.join("a.tif"), &["--scale", "4", "--max-memory", "64M"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = upscale(&d, &fixture("coffee.jpg"), &d.join("b.tif"), &["--width", "600"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = upscale(
        &d,
        &fixture("coffee.jpg"),
        &d.join("c.tif"),
        &["--width", "800", "--height", "300", "--filter", "bicubic", "--compression", "deflate"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = upscale(&d, &fixture("coffee16.png"), &d.join("d.png"), &["--scale", "0.3", "--filter", "mitchell"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = upscale(
        &d,
        &fixture("coffee.jpg"),
        &d.join("e.tif"),
        &["--scale-x", "2", "--scale-y", "0.5", "--progress", "json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = stderr(&o);
    assert!(ev.lines().any(|l| l.starts_with(r#"{"event":"start""#)), "{ev}");
    assert!(ev.lines().any(|l| l.starts_with(r#"{"event":"done""#)), "{ev}");
    let info = |p: &str| String::from_utf8(bin().arg("info").arg(d.join(p)).output().unwrap().stdout).unwrap();
    assert!(info("a.tif").contains("size: 600x400") && info("a.tif").contains("tiled 256x256"), "{}", info("a.tif"));
    assert!(info("b.tif").contains("size: 600x400"));
    assert!(info("c.tif").contains("size: 800x300") && info("c.tif").contains("compression: 8"));
    assert!(info("d.png").contains("size: 45x30") && info("d.png").contains("16-bit"));
    assert!(info("e.tif").contains("size: 300x50"));
    // libvips's arithmetic: a different, smaller file of the same size.
    let o = upscale(
        &d,
        &fixture("coffee.jpg"),
        &d.join("f.tif"),
        &["--scale", "4", "--filter", "bicubic", "--precision", "rounded", "--compression", "zstd"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = upscale(
        &d,
        &fixture("coffee.jpg"),
        &d.join("g.tif"),
        &["--scale", "4", "--filter", "bicubic", "--compression", "zstd"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(info("f.tif").contains("size: 600x400"));
    let size = |p: &str| std::fs::metadata(d.join(p)).unwrap().len();
    assert!(size("f.tif") < size("g.tif"), "rounded {} vs exact {}", size("f.tif"), size("g.tif"));
    assert_clean(&d, &["a.tif", "b.tif", "c.tif", "d.png", "e.tif", "f.tif", "g.tif"]);
}

#[test]
fn help_teaches() {
    let o = bin().args(["upscale", "--help"]).output().unwrap();
    let h = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--scale",
        "--scale-x",
        "--scale-y",
        "--width",
        "--height",
        "--filter",
        "--max-memory",
        "--tile",
        "--compression",
        "--threads",
        "--temp-dir",
        "--overwrite",
        "--progress",
        "--quiet",
        "Examples",
    ] {
        assert!(h.contains(flag), "--help lacks {flag}");
    }
}

fn truncated(src: &Path, dst: &Path, frac: f64) {
    let b = std::fs::read(src).unwrap();
    std::fs::write(dst, &b[..(b.len() as f64 * frac) as usize]).unwrap();
}

fn png_with_size(path: &Path, w: u32, h: u32) {
    let chunk = |t: &[u8], d: &[u8]| -> Vec<u8> {
        let mut v = (d.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(t);
        v.extend_from_slice(d);
        let mut crc = crc32(t);
        crc = crc32_update(crc, d);
        v.extend_from_slice(&(!crc).to_be_bytes());
        v
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut f = b"\x89PNG\r\n\x1a\n".to_vec();
    f.extend(chunk(b"IHDR", &ihdr));
    f.extend(chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]));
    f.extend(chunk(b"IEND", b""));
    std::fs::write(path, f).unwrap();
}

fn crc32_update(mut c: u32, d: &[u8]) -> u32 {
    for &b in d {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    c
}

fn tiff_with_size(path: &Path, w: u32, h: u32) {
    // Classic TIFF, one strip, 8-bit grey, data offset pointing past the end.
    let mut f = b"II*\0".to_vec();
    f.extend_from_slice(&8u32.to_le_bytes());
    let entries: [(u16, u16, u32, u32); 8] = [
        (256, 4, 1, w),
        (257, 4, 1, h),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 1_000_000),
        (278, 4, 1, h),
        (279, 4, 1, w.wrapping_mul(h)),
    ];
    f.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, typ, n, v) in entries {
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(&typ.to_le_bytes());
        f.extend_from_slice(&n.to_le_bytes());
        if typ == 3 {
            f.extend_from_slice(&(v as u16).to_le_bytes());
            f.extend_from_slice(&[0, 0]);
        } else {
            f.extend_from_slice(&v.to_le_bytes());
        }
    }
    f.extend_from_slice(&0u32.to_le_bytes());
    std::fs::write(path, f).unwrap();
}

#[test]
fn bad_input_fails_cleanly() {
    let d = tmpdir("bad");
    let bad = d.join("inputs");
    std::fs::create_dir_all(&bad).unwrap();
    truncated(&fixture("coffee.jpg"), &bad.join("trunc.jpg"), 0.5);
    truncated(&fixture("coffee-progressive.jpg"), &bad.join("trunc-prog.jpg"), 0.5);
    truncated(&fixture("coffee16.png"), &bad.join("trunc.png"), 0.6);
    truncated(&fixture("coffee-interlaced.png"), &bad.join("trunc-adam7.png"), 0.6);
    truncated(&fixture("coffee-tiled-lzw.tif"), &bad.join("trunc.tif"), 0.6);
    truncated(&fixture("coffee-strips-deflate.tif"), &bad.join("trunc-strips.tif"), 0.3);
    truncated(&fixture("coffee.jpg"), &bad.join("header-only.jpg"), 0.02);
    std::fs::write(bad.join("notes.txt"), "not an image\n").unwrap();
    std::fs::write(bad.join("empty.png"), "").unwrap();
    png_with_size(&bad.join("huge.png"), 1_000_000, 1_000_000);
    png_with_size(&bad.join("zero.png"), 0, 10);
    tiff_with_size(&bad.join("huge.tif"), 4_000_000_000, 4_000_000_000);
    tiff_with_size(&bad.join("short.tif"), 300, 200);
    let cases: Vec<PathBuf> = std::fs::read_dir(&bad).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(cases.len(), 13);
    for input in cases {
        let out = d.join("out.tif");
        let o = upscale(&d, &input, &out, &["--scale", "3", "--max-memory", "64M"]);
        let err = stderr(&o);
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!o.status.success(), "{name}: succeeded");
        assert_eq!(
            o.status.code().map(|c| c == 1 || c == 2),
            Some(true),
            "{name}: exit {:?} (signal?) {err}",
            o.status
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: not one line: {err}");
        assert!(err.contains(&name), "{name}: error does not name the file: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(!out.exists(), "{name}: output left behind");
        assert_clean(&d, &["inputs"]);
    }
}

#[test]
fn refuses_to_clobber() {
    let d = tmpdir("clobber");
    let input = d.join("in.tif");
    std::fs::copy(fixture("coffee-tiled-lzw.tif"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    // OUT == IN, also with --overwrite and through another spelling of the path.
    for (out, extra) in [
        (input.clone(), vec![]),
        (input.clone(), vec!["--overwrite"]),
        (d.join(".").join("in.tif"), vec!["--overwrite"]),
    ] {
        let o = upscale(&d, &input, &out, &[&["--scale", "2"][..], &extra[..]].concat());
        assert!(!o.status.success());
        assert!(stderr(&o).contains("input"), "{}", stderr(&o));
        assert_eq!(std::fs::read(&input).unwrap(), before, "input was modified");
    }
    // Existing OUT without --overwrite.
    let out = d.join("out.tif");
    std::fs::write(&out, b"precious").unwrap();
    let o = upscale(&d, &input, &out, &["--scale", "2"]);
    assert!(
        !o.status.success() && stderr(&o).contains("--overwrite") && stderr(&o).contains("out.tif"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    let o = upscale(&d, &input, &out, &["--scale", "2", "--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(std::fs::read(&out).unwrap(), b"precious");
    assert_clean(&d, &["in.tif", "out.tif"]);
}

#[test]
fn unwritable_or_missing_places() {
    let d = tmpdir("places");
    for out in ["/proc/gigascale-out.tif", "/nonexistent-dir/out.tif"] {
        let o = upscale(&d, &fixture("coffee.jpg"), Path::new(out), &["--scale", "2"]);
        assert!(!o.status.success());
        let e = stderr(&o);
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
        assert!(e.contains(Path::new(out).parent().unwrap().to_str().unwrap()), "{e}");
        assert!(!Path::new(out).exists());
    }
    let o = upscale(&d, Path::new("/nonexistent/in.jpg"), &d.join("o.tif"), &["--scale", "2"]);
    assert!(!o.status.success() && stderr(&o).contains("/nonexistent/in.jpg"), "{}", stderr(&o));
    assert_clean(&d, &[]);
}

#[test]
fn usage_errors_exit_2_before_work() {
    let d = tmpdir("usage");
    for args in [
        vec!["--scale", "0"],
        vec!["--scale", "-2"],
        vec!["--scale", "nan"],
        vec!["--scale", "2", "--width", "10"],
        vec!["--scale-x", "2"],
        vec!["--tile", "17", "--scale", "2"],
        vec!["--scale", "2", "--max-memory", "lots"],
        vec!["--scale", "2", "--compression", "lzw", "--level", "3"],
        vec!["--scale", "2", "--threads", "0"],
        vec![],
    ] {
        let o = upscale(&d, &fixture("coffee.jpg"), &d.join("o.tif"), &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!d.join("o.tif").exists());
    }
    let o = upscale(&d, &fixture("coffee.jpg"), &d.join("o.bmp"), &["--scale", "2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(".tif"));
    // --level: PNG takes 0..=9; JPEG none; TIFF only with a compression that has levels.
    for (out, level) in [("o.png", "10"), ("o.png", "12"), ("o.jpg", "3"), ("o.tif", "3")] {
        let o = upscale(&d, &fixture("coffee.jpg"), &d.join(out), &["--scale", "2", "--level", level]);
        assert_eq!(o.status.code(), Some(2), "{out} --level {level}: {}", stderr(&o));
        assert!(stderr(&o).contains("--level"), "{}", stderr(&o));
    }
    assert_clean(&d, &[]);
}

/// `--level` on PNG output trades size for speed and never changes a pixel: stored (0), the
/// fastest deflate (1), the default (6) and the smallest (9) decode to the same samples, in
/// falling sizes.
#[test]
fn png_levels_change_size_not_pixels() {
    let d = tmpdir("png-levels");
    let mut seen = Vec::new();
    for level in ["0", "1", "", "9"] {
        let out = d.join(format!("l{level}.png"));
        let extra: Vec<&str> = ["--scale", "2"]
            .into_iter()
            .chain((!level.is_empty()).then_some(["--level", level]).into_iter().flatten())
            .collect();
        ok(&upscale(&d, &fixture("coffee.jpg"), &out, &extra));
        seen.push((level, std::fs::metadata(&out).unwrap().len(), read_png(&out)));
    }
    for pair in seen.windows(2) {
        assert!(pair[0].2 == pair[1].2, "--level {} and {} decode differently", pair[0].0, pair[1].0);
        assert!(
            pair[0].1 > pair[1].1,
            "--level {} ({} B) should be larger than {} ({} B)",
            pair[0].0,
            pair[0].1,
            pair[1].0,
            pair[1].1
        );
    }
}

#[test]
fn interrupt_stops_promptly_and_cleans_up() {
    let d = tmpdir("signal");
    // A job long enough to interrupt: 40x of the 150x100 fixture on one thread, slowest deflate.
    for (sig, code) in [("-INT", 130), ("-TERM", 143)] {
        let out = d.join("big.tif");
        let mut child = bin()
            .args([
                "upscale",
                fixture("coffee.jpg").to_str().unwrap(),
                out.to_str().unwrap(),
                "--scale",
                "40",
                "--threads",
                "1",
                "--compression",
                "deflate",
                "--level",
                "12",
                "--quiet",
                "--temp-dir",
            ])
            .arg(d.join("tmp"))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(400));
        let t = std::time::Instant::now();
        Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap();
        let status = child.wait().unwrap();
        assert!(t.elapsed().as_secs() < 5, "did not stop promptly");
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(code), "{sig}: {err}");
        assert!(err.contains("interrupted"), "{err}");
        assert!(!out.exists());
        assert_clean(&d, &[]);
    }
}
