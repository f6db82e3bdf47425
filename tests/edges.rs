//! The engine's promises at the edges (issue: absurd sizes, full disks, big JPEGs, f16):
//! each test here failed before the fix it names and passes now.
use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `gigascale upscale IN OUT ARGS` under /usr/bin/time; returns the output and the peak
/// RSS in bytes.
fn upscale_measured(input: &Path, out: &Path, args: &[&str]) -> (Output, u64) {
    let mut all: Vec<&std::ffi::OsStr> = vec!["upscale".as_ref(), input.as_os_str(), out.as_os_str()];
    all.extend(args.iter().map(|a| std::ffi::OsStr::new(*a)));
    measured(&all)
}

/// A 1000x700 RGB PNG (noise), written with the png crate.
fn noise_png(path: &Path, w: u32, h: u32) {
    let px = Lcg(99).bytes((w * h * 3) as usize);
    let mut enc = png::Encoder::new(std::fs::File::create(path).unwrap(), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.write_header().unwrap().write_image_data(&px).unwrap();
}

#[test]
fn absurd_output_sizes_are_refused_in_their_own_words_before_any_allocation() {
    let d = scratch("absurd");
    let input = d.join("in.png");
    noise_png(&input, 1000, 700);
    let out = d.join("out.tif");
    // 4e9 x 1: the coefficient table alone would take 160 GiB (this aborted with SIGABRT and
    // left a partial file behind).
    let (o, rss) = upscale_measured(&input, &out, &["--width", "4000000000", "--height", "1", "--backend", "cpu"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("coefficient tables") && err.contains("--max-memory"), "{err}");
    assert!(rss < 80 << 20, "refusal peaked at {rss} bytes");
    assert_eq!(names(&d), vec!["in.png"], "something was left behind");
    // --scale 3000 under 64M: refused within the budget (this built the tables first: 349 MB).
    let (o, rss) = upscale_measured(&input, &out, &["--scale", "3000", "--max-memory", "64M", "--backend", "cpu"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("the smallest plan needs"), "{err}");
    assert!(rss < 80 << 20, "refusal peaked at {rss} bytes");
    assert_eq!(names(&d), vec!["in.png"]);
    std::fs::remove_dir_all(&d).unwrap();
}

/// Mounts a 1 MiB tmpfs on a fresh directory; `None` (having said why) where mounting is not
/// allowed (not root).
fn small_tmpfs(name: &str) -> Option<PathBuf> {
    small_tmpfs_of(name, "1m")
}

fn small_tmpfs_of(name: &str, size: &str) -> Option<PathBuf> {
    let mnt = scratch(name);
    match Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(&mnt).output() {
        Ok(m) if m.status.success() => Some(mnt),
        Ok(m) => {
            eprintln!("SKIPPED: cannot mount a small tmpfs here (needs root): {}", String::from_utf8_lossy(&m.stderr));
            None
        }
        Err(e) => {
            eprintln!("SKIPPED: no mount command: {e}");
            None
        }
    }
}

fn unmount(mnt: &Path) -> Vec<String> {
    let left = names(mnt);
    let _ = Command::new("umount").arg(mnt).status();
    let _ = std::fs::remove_dir(mnt);
    left
}

#[test]
fn a_full_scratch_disk_is_an_error_not_a_sigbus() {
    let Some(mnt) = small_tmpfs("tmpfs") else { return };
    let d = scratch("fulldisk");
    let input = d.join("in.png");
    noise_png(&input, 1000, 700); // a 2.1 MB store on a 1 MiB file system
    let out = d.join("out.tif");
    let o = bin().arg("upscale").arg(&input).arg(&out).args(["--scale", "2", "--temp-dir"]).arg(&mnt).output().unwrap();
    let left_in_tmpfs = unmount(&mnt);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "died instead of failing: {:?} {err}", o.status);
    assert!(err.contains(&*mnt.to_string_lossy()) && err.contains("2100000 bytes"), "{err}");
    assert!(left_in_tmpfs.is_empty(), "{left_in_tmpfs:?}");
    assert_eq!(names(&d), vec!["in.png"], "partial output left behind");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_full_output_disk_is_an_error_naming_what_was_written() {
    let Some(mnt) = small_tmpfs("outfs") else { return };
    let out = mnt.join("out.tif");
    // About 1.3 MB of output on a 1 MiB file system.
    let o =
        bin().arg("upscale").arg(fixture("coffee.jpg")).arg(&out).args(["--scale", "5", "--quiet"]).output().unwrap();
    let left = unmount(&mnt);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{:?} {err}", o.status);
    assert!(err.contains("No space left on device") && err.contains("bytes were written"), "{err}");
    assert!(left.is_empty(), "left on the full disk: {left:?}");
}

#[test]
fn resume_is_refused_for_png_output() {
    let d = scratch("pngresume");
    let o = bin()
        .arg("upscale")
        .arg(fixture("coffee.jpg"))
        .arg(d.join("o.png"))
        .args(["--scale", "2", "--resume"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--resume works for TIFF output only"), "{err}");
    assert!(names(&d).is_empty());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn f16_is_refused_wherever_its_bytes_could_be_mixed() {
    let d = scratch("f16");
    let out = d.join("o.tif");
    for extra in [&["--backend", "auto"][..], &["--backend", "cpu"], &["--backend", "gpu", "--resume"]] {
        let o = bin()
            .arg("upscale")
            .arg(fixture("coffee.jpg"))
            .arg(&out)
            .args(["--scale", "2", "--precision", "f16"])
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains("f16") && err.contains("GPU alone"), "{extra:?}: {err}");
    }
    assert!(names(&d).is_empty());
    std::fs::remove_dir_all(&d).unwrap();
}

/// A `w x h` photo-like JPEG (gradients, edges, noise) from libjpeg-turbo's encoder (`cjpeg`,
/// quality 90, 4:2:0; .ci/run installs libjpeg-turbo-progs).
fn make_jpeg(path: &Path, w: usize, h: usize, progressive: bool) {
    let mut px = Vec::with_capacity(w * h * 3);
    let mut rng = Lcg(7);
    for y in 0..h {
        for x in 0..w {
            let n = (rng.next() >> 60) as usize;
            let edge = if (x / 300 + y / 200) % 2 == 0 { 50 } else { 0 };
            px.push(((x * 200 / w) + edge + n) as u8);
            px.push(((y * 200 / h) + n) as u8);
            px.push((((x + y) * 150 / (w + h)) + edge) as u8);
        }
    }
    let ppm = path.with_extension("ppm");
    let mut file = format!("P6\n{w} {h}\n255\n").into_bytes();
    file.extend_from_slice(&px);
    std::fs::write(&ppm, file).unwrap();
    let mut c = Command::new("cjpeg");
    c.args(["-quality", "90", "-sample", "2x2"]).args(progressive.then_some("-progressive"));
    let o = c.arg("-outfile").arg(path).arg(&ppm).output().expect("cjpeg (libjpeg-turbo-progs) is installed");
    assert!(o.status.success(), "cjpeg: {}", stderr(&o));
    std::fs::remove_file(ppm).unwrap();
}

#[test]
fn big_jpegs_stream_through_a_small_budget() {
    let d = scratch("bigjpeg");
    // 24 MP: 72 MB decoded. Decoding it whole needed more than these budgets (refused before).
    let base = d.join("base.jpg");
    make_jpeg(&base, 4000, 6000, false);
    let out = d.join("out.tif");
    let (o, rss) = upscale_measured(&base, &out, &["--scale", "1.25", "--max-memory", "32M", "--backend", "cpu"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    eprintln!("baseline 4000x6000 x1.25 under 32M: peak RSS {} MiB", rss >> 20);
    assert!(rss <= 48 << 20, "baseline peak RSS {rss} > 32M + 16M");
    // Progressive: libjpeg's whole-image coefficient buffer (72 MB at 4:2:0) lives in a
    // scratch file, so it runs in the same small budget (it needed 216 MB before and was
    // refused).
    let prog = d.join("prog.jpg");
    make_jpeg(&prog, 4000, 6000, true);
    let (o, rss) =
        upscale_measured(&prog, &out, &["--scale", "1.25", "--max-memory", "32M", "--backend", "cpu", "--overwrite"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    eprintln!("progressive 4000x6000 x1.25 under 32M: peak RSS {} MiB", rss >> 20);
    assert!(rss <= 48 << 20, "progressive peak RSS {rss} > 32M + 16M");
    // Both decodes give libjpeg-turbo's pixels: the same image at the same quality decodes to
    // nearly the same values either way (a sanity check that the coefficient file is read
    // back in place, not a bit-exactness claim across codings).
    let a = read_tiff_u8(&out);
    bin().arg("upscale").arg(&base).arg(&out).args(["--scale", "1.25", "--overwrite", "--quiet"]).status().unwrap();
    let b = read_tiff_u8(&out);
    let mean: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 - *y as f64).abs()).sum::<f64>() / a.len() as f64;
    assert!(mean < 2.0, "progressive and baseline decodes differ by {mean} on average");
    // The coefficient file needs scratch disk: on a tmpfs that holds the store but not it, the
    // job fails naming it, and leaves nothing.
    if let Some(mnt) = small_tmpfs_of("coeffs", "100m") {
        let o = bin()
            .arg("upscale")
            .arg(&prog)
            .arg(d.join("x.tif"))
            .args(["--scale", "1.25", "--temp-dir"])
            .arg(&mnt)
            .output()
            .unwrap();
        let left = unmount(&mnt);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("JPEG coefficient buffer needs"), "{err}");
        assert!(left.is_empty(), "{left:?}");
        assert!(!d.join("x.tif").exists());
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// The samples of an 8-bit TIFF, through the tiff crate.
fn read_tiff_u8(path: &Path) -> Vec<u8> {
    let mut d = tiff::decoder::Decoder::new(std::fs::File::open(path).unwrap()).unwrap();
    match d.read_image().unwrap() {
        tiff::decoder::DecodingResult::U8(v) => v,
        _ => panic!("not 8-bit"),
    }
}

#[test]
fn jpeg_pixels_are_libjpeg_turbos_own() {
    // The independent reader: libjpeg-turbo's djpeg (Debian libjpeg-turbo-progs).
    let d = scratch("djpeg");
    for name in ["coffee.jpg", "coffee-progressive.jpg", "camera-gray.jpg"] {
        let djpeg = Command::new("djpeg")
            .arg(fixture(name))
            .output()
            .expect("djpeg is needed (Debian package libjpeg-turbo-progs; .ci/run installs it)");
        assert!(djpeg.status.success());
        let (w, h, want) = read_pnm(&djpeg.stdout);
        let out = d.join(format!("{name}.png"));
        // Scale 1 with nearest: the decoded pixels themselves.
        let o =
            bin().arg("upscale").arg(fixture(name)).arg(&out).args(["--scale", "1", "--filter", "nearest"]).output();
        assert!(o.unwrap().status.success());
        let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&out).unwrap()));
        let mut r = dec.read_info().unwrap();
        let mut got = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut got).unwrap();
        assert_eq!((info.width as usize, info.height as usize), (w, h));
        assert!(got[..info.buffer_size()] == want[..], "{name}: pixels differ from djpeg's");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_single_strip_tiff_counts_its_strip_once() {
    let d = scratch("strip");
    let (w, h) = (2000u32, 1500u32);
    let input = d.join("one-strip.tif");
    let px: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
    let mut enc = tiff::encoder::TiffEncoder::new(std::fs::File::create(&input).unwrap()).unwrap();
    let mut img = enc.new_image::<tiff::encoder::colortype::RGB8>(w, h).unwrap();
    img.rows_per_strip(h).unwrap();
    img.write_data(&px).unwrap();
    let out = d.join("out.tif");
    // The strip is 9 MB: decoding needs it once (it was counted twice, 18 MB + the rest, and
    // refused under 16M).
    let o = bin()
        .arg("upscale")
        .arg(&input)
        .arg(&out)
        .args(["--scale", "1.5", "--max-memory", "16M", "--backend", "cpu"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_dir_all(&d).unwrap();
}
