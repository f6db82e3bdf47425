//! WebP output (`.webp`, lossless, our own streamed VP8L encoder): read back by two
//! independent decoders (libwebp's dwebp, libvips) equal to the PNG of the same job for every
//! layout, checked by libwebp's webpinfo, the same bytes for every tile size and thread count,
//! the ICC profile, EXIF and XMP where exiftool finds them, and clear refusals.
use crate::util::*;
use std::path::Path;
use std::process::Command;

/// Runs a tool that CI installs, failing with what to install when it is missing.
fn tool(name: &str, args: &[&std::ffi::OsStr], package: &str) -> std::process::Output {
    let o = Command::new(name).args(args).output();
    let o = o.unwrap_or_else(|e| panic!("{name} is needed (Debian package {package}; .ci/run installs it): {e}"));
    assert!(o.status.success(), "{name} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// A PNG's pixels as 8-bit RGBA (grey spread to RGB, 16-bit rounded as the WebP sink rounds).
fn png_rgba(path: &Path) -> (u32, u32, Vec<u8>) {
    let mut r = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap())).read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    if info.bit_depth == png::BitDepth::Sixteen {
        let round = |s: &[u8]| ((u16::from_be_bytes([s[0], s[1]]) as u32 * 255 + 32767) / 65535) as u8;
        buf = buf.chunks_exact(2).map(round).collect();
    }
    let rgba = buf.chunks_exact(info.color_type.samples()).flat_map(spread_rgba).collect();
    (info.width, info.height, rgba)
}

/// One pixel of 1-4 samples as RGBA, as the WebP sinks spread it (grey to RGB, opaque
/// without alpha).
fn spread_rgba(p: &[u8]) -> [u8; 4] {
    match p.len() {
        1 => [p[0], p[0], p[0], 255],
        2 => [p[0], p[0], p[0], p[1]],
        3 => [p[0], p[1], p[2], 255],
        _ => [p[0], p[1], p[2], p[3]],
    }
}

/// dwebp's PAM (`P7`, RGBA) of a WebP.
fn dwebp_rgba(webp: &Path) -> (u32, u32, Vec<u8>) {
    let o = tool("dwebp", &[webp.as_os_str(), "-pam".as_ref(), "-o".as_ref(), "-".as_ref()], "webp");
    let b = o.stdout;
    let end = b.windows(7).position(|w| w == b"ENDHDR\n").expect("a PAM header") + 7;
    let head = String::from_utf8_lossy(&b[..end]).into_owned();
    let field = |k: &str| head.lines().find_map(|l| l.strip_prefix(k)?.trim().parse::<u32>().ok()).unwrap();
    (field("WIDTH "), field("HEIGHT "), b[end..].to_vec())
}

#[test]
fn webp_output_is_lossless_as_dwebp_and_libvips_read_it() {
    let d = TempDir::new("webp-out");
    for (input, scale) in [
        ("coffee.jpg", "2.5"),
        ("chelsea-rgba.png", "2"),
        ("camera-gray.jpg", "1.5"),
        ("camera-graya.png", "2"),
        ("coffee16.png", "2"),
    ] {
        let (webp, png_out) = (d.join("out.webp"), d.join("out.png"));
        let src = fixture(input);
        let job = |out: &Path, args: &[&str]| {
            let args = [&["upscale", s(&src), s(out), "--scale", scale, "--overwrite"][..], args].concat();
            ok(&gs(&args))
        };
        job(&webp, &[]);
        job(&png_out, &[]);
        let want = png_rgba(&png_out);
        assert_eq!(dwebp_rgba(&webp), want, "{input}: dwebp reads back the PNG's pixels");
        let via_vips = d.join("vips.png");
        tool("vips", &["copy".as_ref(), webp.as_os_str(), via_vips.as_os_str()], "libvips-tools");
        assert_eq!(png_rgba(&via_vips), want, "{input}: libvips reads back the PNG's pixels");
        let info = tool("webpinfo", &[webp.as_os_str()], "webp");
        assert!(String::from_utf8_lossy(&info.stdout).contains("No error detected"), "{input}: webpinfo");
        // The same bytes whatever the tiles and threads.
        let other = d.join("other.webp");
        job(&other, &["--tile", "48", "--threads", "1"]);
        assert!(std::fs::read(&other).unwrap() == std::fs::read(&webp).unwrap(), "{input}: other tiles, other bytes");
    }
}

/// Edge shapes: a single pixel, a single row or column, widths off the predictor's 32-px blocks
/// (and the lossy coder's 16-px macroblocks: its size and alpha exact, its colour close).
#[test]
fn webp_output_of_thin_and_odd_shapes_reads_back_exactly() {
    let d = TempDir::new("webp-shapes");
    for (w, h) in [(1, 1), (1, 40), (33, 1), (65, 70), (97, 3)] {
        let (webp, png_out, lossy) = (d.join("out.webp"), d.join("out.png"), d.join("lossy.webp"));
        let (ws, hs) = (w.to_string(), h.to_string());
        ok(&gs(&[
            "upscale",
            s(&fixture("chelsea-rgba.png")),
            s(&lossy),
            "--width",
            &ws,
            "--height",
            &hs,
            "--quality",
            "90",
            "--overwrite",
        ]));
        for out in [&webp, &png_out] {
            let (w, h) = (w.to_string(), h.to_string());
            ok(&gs(&[
                "upscale",
                s(&fixture("chelsea-rgba.png")),
                s(out),
                "--width",
                &w,
                "--height",
                &h,
                "--overwrite",
            ]));
        }
        let want = png_rgba(&png_out);
        assert_eq!(dwebp_rgba(&webp), want, "{w}x{h}");
        let (lw, lh, got) = dwebp_rgba(&lossy);
        assert_eq!((lw, lh), (w, h), "lossy {w}x{h}");
        assert!(got.chunks_exact(4).zip(want.2.chunks_exact(4)).all(|(a, b)| a[3] == b[3]), "lossy {w}x{h}: alpha");
        let db = psnr_premultiplied(&got, &want.2);
        assert!(db >= 30.0, "lossy {w}x{h}: {db:.1} dB");
    }
}

#[test]
fn webp_output_carries_icc_exif_and_xmp() {
    let d = TempDir::new("webp-meta");
    let out = d.join("meta.webp");
    ok(&gs(&["upscale", s(&fixture("coffee-exif.jpg")), s(&out), "--scale", "2"]));
    let o = tool("exiftool", &["-a".as_ref(), "-G1".as_ref(), out.as_os_str()], "libimage-exiftool-perl");
    let tags = String::from_utf8_lossy(&o.stdout).into_owned();
    for want in ["gigascale fixture", "coffee for gigascale", "Extended WEBP"] {
        assert!(tags.contains(want), "exiftool finds {want:?} in\n{tags}");
    }
    let icc = d.join("icc.webp");
    ok(&gs(&["upscale", s(&fixture("coffee.jpg")), s(&icc), "--scale", "2"]));
    let o = tool("exiftool", &["-a".as_ref(), "-G1".as_ref(), icc.as_os_str()], "libimage-exiftool-perl");
    let tags = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(tags.contains("[ICC_Profile]"), "the ICC profile is carried:\n{tags}");
}

#[test]
fn what_webp_cannot_hold_is_refused_and_nothing_is_left() {
    let d = TempDir::new("webp-refusals");
    let (src, out) = (fixture("coffee.jpg"), d.join("out.webp"));
    let run = |args: &[&str]| gs(&[&["upscale", s(&src), s(&out)][..], args].concat());
    let o = run(&["--width", "16384"]);
    assert!(!o.status.success() && stderr(&o).contains("16383"), "{}", stderr(&o));
    let o = run(&["--scale", "2", "--pyramid"]);
    assert!(!o.status.success() && stderr(&o).contains("TIFF"), "{}", stderr(&o));
    assert!(names(&d).is_empty(), "left behind: {:?}", names(&d));
}

/// PSNR of premultiplied RGBA samples (what shows: colour under full transparency does not).
fn psnr_premultiplied(a: &[u8], b: &[u8]) -> f64 {
    let pre = |p: &[u8]| -> Vec<f64> {
        p.chunks_exact(4).flat_map(|q| (0..3).map(move |c| q[c] as f64 * q[3] as f64 / 255.0)).collect()
    };
    let (a, b) = (pre(a), pre(b));
    let mse = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10()
}

/// `--quality` makes a lossy WebP (our streamed VP8 encoder, alpha through the lossless one):
/// dwebp reads it close to the PNG of the same job, alpha exact; the same bytes for every tile
/// size and thread count; a 5000x3333 picture with alpha under `--max-memory 24M`.
#[test]
fn lossy_webp_reads_back_close_and_streams() {
    let d = TempDir::new("webp-lossy");
    for (input, least_db) in
        [("coffee.jpg", 40.0), ("chelsea-rgba.png", 40.0), ("camera-gray.jpg", 40.0), ("coffee16.png", 38.0)]
    {
        let (webp, png_out, other) = (d.join("out.webp"), d.join("out.png"), d.join("other.webp"));
        let src = fixture(input);
        let job = |out: &Path, args: &[&str]| {
            ok(&gs(&[&["upscale", s(&src), s(out), "--scale", "3", "--overwrite"][..], args].concat()))
        };
        job(&webp, &["--quality", "90"]);
        job(&png_out, &[]);
        job(&other, &["--quality", "90", "--tile", "48", "--threads", "1"]);
        let ((w, h, got), (pw, ph, want)) = (dwebp_rgba(&webp), png_rgba(&png_out));
        assert_eq!((w, h), (pw, ph), "{input}");
        let alpha_diff = got.chunks_exact(4).zip(want.chunks_exact(4)).filter(|(a, b)| a[3] != b[3]).count();
        assert_eq!(alpha_diff, 0, "{input}: alpha is kept exactly");
        let db = psnr_premultiplied(&got, &want);
        eprintln!("{input} x3 --quality 90: {db:.1} dB against the PNG");
        assert!(db >= least_db, "{input}: {db:.1} dB");
        let info = tool("webpinfo", &[webp.as_os_str()], "webp");
        assert!(String::from_utf8_lossy(&info.stdout).contains("Lossy"), "{input}: a lossy bitstream");
        assert!(std::fs::read(&other).unwrap() == std::fs::read(&webp).unwrap(), "{input}: other tiles, other bytes");
    }
    // 5000x3333 with alpha, streamed: the alpha plane exact, the colour close.
    let (out, rgba, png_out) = (d.join("wide.webp"), fixture("chelsea-rgba.png"), d.join("wide.png"));
    let args = ["upscale", s(&rgba), s(&out), "--width", "5000", "--quality", "80", "--max-memory", "24M"];
    ok(&gs(&args));
    ok(&gs(&["upscale", s(&rgba), s(&png_out), "--width", "5000", "--max-memory", "24M"]));
    let info = String::from_utf8_lossy(&tool("webpinfo", &[out.as_os_str()], "webp").stdout).into_owned();
    assert!(info.contains("Alpha: 1") && info.contains("Width: 5000"), "{info}");
    let ((w, h, got), (_, _, want)) = (dwebp_rgba(&out), png_rgba(&png_out));
    assert_eq!((w, h), (5000, 3333));
    assert!(got.chunks_exact(4).zip(want.chunks_exact(4)).all(|(a, b)| a[3] == b[3]), "5000x3333: alpha exact");
    let db = psnr_premultiplied(&got, &want);
    assert!(db >= 40.0, "5000x3333 --quality 80: {db:.1} dB");
    let out = d.join("refused.webp");
    let o =
        gs(&["upscale", s(&fixture("coffee.jpg")), s(&out), "--scale", "2", "--quality", "80", "--subsampling", "444"]);
    assert!(!o.status.success() && stderr(&o).contains("--subsampling"), "{}", stderr(&o));
    assert!(!out.exists());
}

/// Twelve random images (noise, stripes, ramps; every 8-bit layout in turn; sizes from 1 px to
/// 150x90; tiles of 16, 32, 64) enlarged by `scale` through the sink `sink` makes (given the
/// path and the image's index) into `d`; for each: index, layout, size, the engine's pixels as
/// 8-bit RGBA (as the sinks spread them) and the file, after checking that dwebp reads it at
/// that size.
#[allow(clippy::type_complexity)]
fn random_webps(
    d: &Path,
    seed: u64,
    (sx, sy): (f64, f64),
    sink: impl Fn(&Path, usize) -> Box<dyn gigascale::sink::TileSink>,
) -> Vec<(usize, gigascale::Channels, (u32, u32), Vec<u8>, std::path::PathBuf)> {
    use gigascale::{Channels, Depth, Filter, Layout};
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    for (i, channels) in
        [Channels::Gray, Channels::GrayAlpha, Channels::Rgb, Channels::Rgba].into_iter().cycle().take(12).enumerate()
    {
        let (w, h) = (1 + rng.below(150) as u32, 1 + rng.below(90) as u32);
        let img = random_img(&mut rng, w, h, Layout::new(channels, Depth::U8));
        let mut o = opts_scale(sx, sy, Filter::Lanczos3);
        o.tile = [16, 32, 64][i % 3];
        let want = run_mem(&img, &o).unwrap();
        let path = d.join(format!("r{i}.webp"));
        let mut sink = sink(&path, i);
        gigascale::run(Box::new(img.source()), sink.as_mut(), &o, &mut |_| {}).unwrap();
        let (gw, gh, _) = dwebp_rgba(&path);
        assert_eq!((gw, gh), (want.w, want.h), "image {i}");
        let eight: Vec<u8> = want.data.iter().map(|&v| v as u8).collect();
        let rgba: Vec<u8> = eight.chunks_exact(want.ch()).flat_map(spread_rgba).collect();
        out.push((i, channels, (w, h), rgba, path));
    }
    out
}

/// Random images through the lossy sink at every quality band: odd sizes (1 px, not whole
/// macroblocks) and every 8-bit layout read back by dwebp at their size, alpha exact, the
/// colour within what the quantizer allows (noise is the worst case).
#[test]
fn random_images_survive_the_lossy_encoder() {
    let d = TempDir::new("webp-lossy-random");
    for (i, channels, (w, h), rgba, path) in random_webps(&d, 33, (1.3, 1.7), |path, i| {
        Box::new(gigascale::sink::WebpLossySink::create(path, [95u8, 75, 30][i % 3]).unwrap())
    }) {
        let quality = [95u8, 75, 30][i % 3];
        let (_, _, got) = dwebp_rgba(&path);
        assert!(got.chunks_exact(4).zip(rgba.chunks_exact(4)).all(|(a, b)| a[3] == b[3]), "image {i}: alpha");
        // Luma, which is not subsampled: what the quantizer alone costs, even on noise.
        let luma = |p: &[u8]| -> Vec<u8> {
            p.chunks_exact(4)
                .map(|q| {
                    let y = (0.299 * q[0] as f64 + 0.587 * q[1] as f64 + 0.114 * q[2] as f64) * q[3] as f64 / 255.0;
                    y.round() as u8
                })
                .flat_map(|y| [y, y, y, 255])
                .collect()
        };
        let db = psnr_premultiplied(&luma(&got), &luma(&rgba));
        eprintln!("image {i} ({w}x{h} {channels:?}) --quality {quality}: luma {db:.1} dB");
        assert!(db >= [34.0, 24.0, 16.0][i % 3], "image {i} ({w}x{h} {channels:?}) q{quality}: luma {db:.1} dB");
    }
}

/// Random images (noise, stripes, ramps; every 8-bit layout; sizes across the predictor's
/// blocks and the tiles) through the library's WebP sink: dwebp decodes exactly the pixels the
/// engine computed, so the encoder is right for content far from the fixtures (noise uses
/// every symbol, flat stretches make long runs).
#[test]
fn random_images_survive_the_lossless_encoder() {
    let d = TempDir::new("webp-random");
    for (i, channels, (w, h), rgba, path) in
        random_webps(&d, 21, (1.7, 1.3), |path, _| Box::new(gigascale::sink::WebpSink::create(path).unwrap()))
    {
        let (_, _, got) = dwebp_rgba(&path);
        assert!(got == rgba, "image {i} ({w}x{h} {channels:?}): dwebp reads other pixels");
    }
}
