//! `--pyramid`: reduced-resolution levels in the main IFD chain of the tiled TIFF. Read back by
//! the tiff crate (every level's pixels checked against an independent 2x2 mean of the level
//! before), by libtiff's `tiffinfo -D` and by tifffile's `series[0].levels`; level 0 is the
//! image without a pyramid; a killed pyramid job resumes to the same bytes.
use crate::util::*;
use std::path::Path;
use std::process::{Command, Stdio};
use tiff::decoder::{Decoder, DecodingResult};
use tiff::tags::Tag;

fn upscale(input: &Path, out: &Path, args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_gigascale"))
        .arg("upscale")
        .arg(input)
        .arg(out)
        .args(["--quiet", "--overwrite"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// One IFD: size, samples per pixel, NewSubfileType, and its samples widened to u32.
struct Level {
    w: usize,
    h: usize,
    spp: usize,
    subfile: u32,
    samples: Vec<u32>,
}

fn read_levels(path: &Path) -> Vec<Level> {
    let mut d = Decoder::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut v = Vec::new();
    loop {
        let (w, h) = d.dimensions().unwrap();
        let subfile = d.get_tag_u32(Tag::NewSubfileType).unwrap_or(0);
        let samples: Vec<u32> = match d.read_image().unwrap() {
            DecodingResult::U8(s) => s.into_iter().map(u32::from).collect(),
            DecodingResult::U16(s) => s.into_iter().map(u32::from).collect(),
            _ => panic!("unexpected sample type"),
        };
        let spp = samples.len() / (w as usize * h as usize);
        v.push(Level { w: w as usize, h: h as usize, spp, subfile, samples });
        if !d.more_images() {
            return v;
        }
        d.next_image().unwrap();
    }
}

/// The 2x2 reduction as the documentation states it, written independently: each pixel the
/// rounded mean of its (up to four) pixels; with alpha (last channel), colour weighted by alpha.
fn reduce(l: &Level, alpha: bool) -> Vec<u32> {
    let (w2, h2, ch) = (l.w.div_ceil(2), l.h.div_ceil(2), l.spp);
    let mut out = vec![0u32; w2 * h2 * ch];
    for y in 0..h2 {
        for x in 0..w2 {
            let block: Vec<usize> = (2 * y..(2 * y + 2).min(l.h))
                .flat_map(|yy| (2 * x..(2 * x + 2).min(l.w)).map(move |xx| (yy * l.w + xx) * ch))
                .collect();
            let n = block.len() as u64;
            let a: u64 = if alpha { block.iter().map(|&p| l.samples[p + ch - 1] as u64).sum() } else { 0 };
            for c in 0..ch {
                let v = if alpha && c == ch - 1 {
                    (a + n / 2) / n
                } else if alpha && a > 0 {
                    let s: u64 = block.iter().map(|&p| l.samples[p + c] as u64 * l.samples[p + ch - 1] as u64).sum();
                    (s + a / 2) / a
                } else {
                    (block.iter().map(|&p| l.samples[p + c] as u64).sum::<u64>() + n / 2) / n
                };
                out[(y * w2 + x) * ch + c] = v as u32;
            }
        }
    }
    out
}

#[test]
fn levels_halve_until_one_tile_and_each_is_the_2x2_mean_of_the_one_before() {
    let d = scratch("levels");
    // RGB 8-bit, RGBA, grey+alpha, 16-bit grey; odd sizes; every codec.
    let cases = [
        ("coffee.jpg", "7.3", "zstd", false),
        ("chelsea-rgba.png", "5.1", "deflate", true),
        ("camera-graya.png", "4.7", "lzw", true),
        ("camera16.tif", "3.3", "none", false),
    ];
    for (input, scale, codec, alpha) in cases {
        let (plain, pyr) = (d.join("plain.tif"), d.join("pyr.tif"));
        let common = ["--scale", scale, "--tile", "64", "--compression", codec];
        upscale(&fixture(input), &plain, &common);
        upscale(&fixture(input), &pyr, &[&common[..], &["--pyramid"]].concat());
        let levels = read_levels(&pyr);
        let base = &read_levels(&plain)[0];
        assert!(levels[0].samples == base.samples, "{input}: level 0 differs from the image without a pyramid");
        assert_eq!(levels[0].subfile, 0, "{input}: IFD0 is the full image");
        let last = levels.last().unwrap();
        assert!(last.w <= 64 && last.h <= 64, "{input}: the last level fits in one tile");
        assert!(levels.len() >= 3, "{input}: {} levels", levels.len());
        for n in 1..levels.len() {
            let (above, l) = (&levels[n - 1], &levels[n]);
            assert!(above.w > 64 || above.h > 64, "{input}: level {n} should not exist");
            assert_eq!((l.w, l.h, l.subfile), (above.w.div_ceil(2), above.h.div_ceil(2), 1), "{input}: level {n}");
            assert!(
                l.samples == reduce(above, alpha),
                "{input} ({codec}): level {n} is not the 2x2 mean of level {}",
                n - 1
            );
        }
        // libtiff reads every tile of every level, and lists the reduced ones.
        let o =
            Command::new("tiffinfo").arg("-D").arg(&pyr).output().expect("tiffinfo (libtiff-tools) must be installed");
        let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success() && err.trim().is_empty(), "tiffinfo: {err}");
        let reduced = out.matches("reduced-resolution image").count();
        assert_eq!(reduced, levels.len() - 1, "{input}: tiffinfo lists {reduced} reduced IFDs:\n{out}");
        if input == "coffee.jpg" {
            // The ICC profile is in IFD0 only.
            assert_eq!(out.matches("ICC Profile").count(), 1, "{out}");
        }
        vips_levels(&pyr, &levels);
        if codec == "deflate" {
            // (tifffile decodes deflate with Python's zlib; zstd and LZW need imagecodecs.)
            tifffile_levels(&pyr, &levels);
        }
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// libvips sees one page per level, of the right size and mean (CI installs libvips-tools and
/// sets `GIGASCALE_REQUIRE_VIPS=1`).
fn vips_levels(path: &Path, levels: &[Level]) {
    let required = std::env::var("GIGASCALE_REQUIRE_VIPS").is_ok_and(|v| v == "1");
    let pages = Command::new("vipsheader").args(["-f", "n-pages"]).arg(path).output();
    let Some(pages) = pages.ok().filter(|o| o.status.success()) else {
        assert!(!required, "libvips (vipsheader) must be installed");
        eprintln!("SKIPPED libvips check (vipsheader not installed)");
        return;
    };
    assert_eq!(String::from_utf8_lossy(&pages.stdout).trim(), levels.len().to_string(), "libvips pages");
    for (n, l) in levels.iter().enumerate() {
        let page = format!("{}[page={n}]", path.display());
        let o = Command::new("vips").args(["avg", &page]).output().unwrap();
        assert!(o.status.success(), "vips avg {page}: {}", String::from_utf8_lossy(&o.stderr));
        let avg: f64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
        let ours = l.samples.iter().map(|&v| v as f64).sum::<f64>() / l.samples.len() as f64;
        assert!((avg - ours).abs() < 1e-6 * ours.max(1.0), "level {n}: libvips mean {avg}, ours {ours}");
    }
}

/// tifffile (Python) sees the same levels with the same pixels, where it is installed; CI
/// installs it and sets `GIGASCALE_REQUIRE_TIFFFILE=1`, so there it must run.
fn tifffile_levels(path: &Path, levels: &[Level]) {
    let script = "import sys, tifffile\n\
        s = tifffile.TiffFile(sys.argv[1]).series[0]\n\
        for l in s.levels:\n    a = l.asarray()\n    print(a.shape[1], a.shape[0], int(a.astype('uint64').sum()))\n";
    let o = Command::new(python_bin()).args(["-c", script]).arg(path).stderr(Stdio::piped()).output();
    let required = std::env::var("GIGASCALE_REQUIRE_TIFFFILE").is_ok_and(|v| v == "1");
    let o = match o {
        Ok(o) if o.status.success() => o,
        other => {
            let why = other.map_or_else(|e| e.to_string(), |o| String::from_utf8_lossy(&o.stderr).into_owned());
            assert!(!required, "tifffile must read the pyramid: {why}");
            eprintln!("SKIPPED tifffile check ({} without tifffile): {why}", python_bin());
            return;
        }
    };
    let want: String = levels
        .iter()
        .map(|l| format!("{} {} {}\n", l.w, l.h, l.samples.iter().map(|&v| v as u64).sum::<u64>()))
        .collect();
    assert_eq!(String::from_utf8_lossy(&o.stdout), want, "tifffile's levels");
}

#[test]
fn a_killed_pyramid_job_resumes_to_the_same_bytes() {
    let d = scratch("resume");
    let (want, out) = (d.join("want.tif"), d.join("out.tif"));
    let args = ["--scale", "13", "--tile", "64", "--threads", "1", "--compression", "zstd", "--pyramid", "--temp-dir"];
    let job = |out: &Path, extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gigascale"));
        c.arg("upscale").arg(fixture("coffee.jpg")).arg(out).args(args).arg(&d).args(["--quiet"]).args(extra);
        c
    };
    assert!(job(&want, &[]).status().unwrap().success());
    // 1950x1300 in 64 px tiles: 31 x 21 tiles. Killed after 1 tile, in the middle of a row
    // pair (level 1's band half filled), right after a row pair, and near the end.
    for kill_at in [1u64, 100, 124, 600] {
        let o = job(&out, &["--resume"]).env("GIGASCALE_TEST_KILL_AFTER_TILES", kill_at.to_string()).output().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(o.status.signal(), Some(9), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = job(&out, &["--resume"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&want).unwrap(), "resumed pyramid differs");
    // The pyramid is part of the job: resuming it without --pyramid is refused.
    std::fs::remove_file(&out).unwrap();
    let o = job(&out, &["--resume"]).env("GIGASCALE_TEST_KILL_AFTER_TILES", "50").output().unwrap();
    assert!(!o.status.success());
    let mut c = Command::new(env!("CARGO_BIN_EXE_gigascale"));
    c.arg("upscale").arg(fixture("coffee.jpg")).arg(&out).args(&args[..8]).args(["--temp-dir"]).arg(&d);
    let o = c.args(["--quiet", "--resume"]).output().unwrap();
    assert!(!o.status.success(), "resuming without --pyramid must be refused");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume refused"), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn pyramid_is_for_tiff_output() {
    let d = scratch("png");
    let o = Command::new(env!("CARGO_BIN_EXE_gigascale"))
        .arg("upscale")
        .arg(fixture("coffee.jpg"))
        .arg(d.join("o.png"))
        .args(["--scale", "2", "--pyramid"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--pyramid applies to TIFF output"));
    assert!(std::fs::read_dir(&d).unwrap().next().is_none(), "nothing is left behind");
    std::fs::remove_dir_all(&d).unwrap();
}
