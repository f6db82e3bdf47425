//! Metadata carried into every output, as libvips reads it back: the resolution scaled with
//! the image (the print size stays) or set with `--dpi`, `--print-width` at a resolution, the
//! XMP packet, and the EXIF block (JPEG and PNG) with its camera fields kept.
use crate::util::*;
use std::path::Path;
use std::process::Command;

/// `vipsheader -a`'s fields of `path`, or `None` when libvips is not installed (allowed only
/// where CI does not ask for it).
fn vips_fields(path: &Path) -> Option<String> {
    let required = std::env::var("GIGASCALE_REQUIRE_VIPS").is_ok_and(|v| v == "1");
    let o = Command::new("vipsheader").arg("-a").arg(path).output().ok().filter(|o| o.status.success());
    if o.is_none() {
        assert!(!required, "libvips (vipsheader) must be installed");
        eprintln!("SKIPPED libvips check (vipsheader not installed)");
    }
    o.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// A field's value (`name: value`).
fn field<'a>(fields: &'a str, name: &str) -> Option<&'a str> {
    fields.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

/// Pixels per inch from libvips's `xres` (pixels per millimetre).
fn dpi(fields: &str) -> f64 {
    field(fields, "xres").unwrap().trim().parse::<f64>().unwrap() * 25.4
}

#[test]
fn resolution_exif_and_xmp_reach_every_output() {
    let d = scratch("metadata");
    // coffee-exif.jpg: 150x100 at 300 dpi, EXIF (Make, Model, DateTime) and an XMP packet.
    let input = fixture("coffee-exif.jpg");
    for ext in ["tif", "png", "jpg"] {
        let out = d.join(format!("out.{ext}"));
        ok(&bin().arg("upscale").arg(&input).arg(&out).args(["--scale", "2"]).output().unwrap());
        let Some(f) = vips_fields(&out) else { return };
        assert!((dpi(&f) - 600.0).abs() < 0.05, "{ext}: twice the pixels, twice the dpi: {}", dpi(&f));
        assert!(field(&f, "xmp-data").is_some_and(|v| v.starts_with("312 bytes")), "{ext}: XMP\n{f}");
        if ext != "tif" {
            let make = field(&f, "exif-ifd0-Make").unwrap_or_default();
            assert!(make.starts_with("gigascale fixture"), "{ext}: EXIF\n{f}");
        }
        // --dpi sets it; --print-width at a resolution sets the size.
        ok(&bin()
            .arg("upscale")
            .arg(&input)
            .arg(&out)
            .args(["--scale", "2", "--dpi", "150", "--overwrite"])
            .output()
            .unwrap());
        let f = vips_fields(&out).unwrap();
        assert!((dpi(&f) - 150.0).abs() < 0.05, "{ext}: --dpi 150: {}", dpi(&f));
        let print = ["--print-width", "10cm", "--dpi", "300", "--overwrite"];
        ok(&bin().arg("upscale").arg(&input).arg(&out).args(print).output().unwrap());
        let f = vips_fields(&out).unwrap();
        assert_eq!(field(&f, "width"), Some("1181"), "{ext}: 10 cm at 300 dpi");
        assert_eq!(field(&f, "height"), Some("787"), "{ext}: the aspect ratio kept");
    }
    // EXIF orientation 6 (to be shown turned 90° clockwise) is applied to the pixels: every
    // output is upright (its width the input's height) and says orientation 1, so that no
    // viewer turns it twice.
    for ext in ["tif", "png", "jpg"] {
        let out = d.join(format!("turned.{ext}"));
        ok(&bin().arg("upscale").arg(fixture("coffee-rot6.jpg")).arg(&out).args(["--scale", "2"]).output().unwrap());
        let Some(f) = vips_fields(&out) else { return };
        assert_eq!((field(&f, "width"), field(&f, "height")), (Some("200"), Some("300")), "{ext}: upright\n{f}");
        assert!(matches!(field(&f, "orientation"), None | Some("1")), "{ext}: orientation\n{f}");
    }
    // An input without a resolution gives an output without one (none is invented).
    let plain = d.join("plain.png");
    ok(&bin().arg("upscale").arg(fixture("coffee16.png")).arg(&plain).args(["--scale", "2"]).output().unwrap());
    let png_info =
        png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&plain).unwrap())).read_info().unwrap();
    assert!(png_info.info().pixel_dims.is_none(), "no pHYs invented");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Every EXIF/TIFF orientation (1-8) is applied to the pixels: a TIFF carrying the tag, enlarged
/// twice with the nearest filter, equals the upright image (made here from the definition of
/// each orientation) with every pixel doubled.
#[test]
fn every_orientation_is_applied_to_the_pixels() {
    let d = TempDir::new("orientations");
    let (w, h) = (7u32, 5u32);
    let px: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
    let at = |x: u32, y: u32| &px[((y * w + x) * 3) as usize..((y * w + x) * 3 + 3) as usize];
    for o in 1..=8u16 {
        let input = d.join(format!("o{o}.tif"));
        let mut enc = tiff::encoder::TiffEncoder::new(std::fs::File::create(&input).unwrap()).unwrap();
        let mut img = enc.new_image::<tiff::encoder::colortype::RGB8>(w, h).unwrap();
        img.encoder().write_tag(tiff::tags::Tag::Orientation, o).unwrap();
        img.write_data(&px).unwrap();
        let out = d.join(format!("o{o}.png"));
        ok(&bin().arg("upscale").arg(&input).arg(&out).args(["--scale", "2", "--filter", "nearest"]).output().unwrap());
        let mut r = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&out).unwrap())).read_info().unwrap();
        let mut got = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut got).unwrap();
        // The upright size, and for each upright pixel the stored one (row 0 / column 0 of the
        // TIFF definition: 5-8 have rows and columns exchanged).
        let (uw, uh) = if o >= 5 { (h, w) } else { (w, h) };
        assert_eq!((info.width, info.height), (2 * uw, 2 * uh), "orientation {o}");
        for y in 0..2 * uh {
            for x in 0..2 * uw {
                let (ux, uy) = (x / 2, y / 2);
                let (mx, my) = (uw - 1 - ux, uh - 1 - uy);
                let (sx, sy) = match o {
                    1 => (ux, uy),
                    2 => (mx, uy),
                    3 => (mx, my),
                    4 => (ux, my),
                    5 => (uy, ux),
                    6 => (uy, mx),
                    7 => (my, mx),
                    _ => (my, ux),
                };
                let i = ((y * 2 * uw + x) * 3) as usize;
                assert_eq!(&got[i..i + 3], at(sx, sy), "orientation {o}: pixel ({x},{y})");
            }
        }
    }
}

/// exiftool's `-G1` listing of `path` (exiftool is installed by .ci/run).
fn exiftool(path: &Path) -> String {
    let o = Command::new("exiftool").args(["-a", "-G1"]).arg(path).output();
    let o = o.expect("exiftool is needed (Debian package libimage-exiftool-perl; .ci/run installs it)");
    assert!(o.status.success(), "exiftool {}", path.display());
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// WebP keeps a resolution only in EXIF: `--dpi` on an input without EXIF gives a small EXIF
/// block with it (lossless and lossy), which exiftool reads and webpinfo accepts.
#[test]
fn webp_gets_its_resolution_as_exif() {
    let d = scratch("webp-dpi");
    let out = d.join("dpi.webp");
    for extra in [&[][..], &["--quality", "80"][..]] {
        let args = [&["--scale", "2", "--dpi", "150", "--overwrite"][..], extra].concat();
        ok(&bin().arg("upscale").arg(fixture("coffee.jpg")).arg(&out).args(&args).output().unwrap());
        let tags = exiftool(&out);
        for want in ["X Resolution                    : 150", "Y Resolution                    : 150", ": inches"] {
            assert!(tags.contains(want), "{extra:?}: exiftool finds {want:?} in\n{tags}");
        }
        assert!(!tags.contains("Warning"), "{extra:?}: {tags}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// A phone photo's camera fields (the Exif directory: exposure, lens, date; the GPS
/// directory) reach every output as exiftool reads them, the pixel size rewritten for the
/// upright output; in TIFF, classic and BigTIFF, as Exif and GPS sub-directories that libtiff
/// reads without a complaint.
#[test]
fn camera_and_gps_fields_reach_every_output() {
    let d = TempDir::new("camera-fields");
    let input = fixture("coffee-rot6.jpg");
    let check = |out: &Path, what: &str| {
        let tags = exiftool(out);
        for want in [
            "[ExifIFD]       Exposure Time                   : 1/250",
            "Lens Model                      : gigascale test lens",
            "[GPS]           GPS Latitude                    : 52 deg 22' 30.00\"",
            "Exif Image Width                : 200",
            "Exif Image Height               : 300",
        ] {
            assert!(tags.contains(want), "{what}: exiftool finds {want:?} in\n{tags}");
        }
        assert!(!tags.contains("Warning"), "{what}: {tags}");
        assert!(!tags.contains("Rotate 90"), "{what}: the orientation was applied: {tags}");
    };
    for ext in ["tif", "png", "jpg", "webp"] {
        let out = d.join(format!("photo.{ext}"));
        ok(&gs(&["upscale", s(&input), s(&out), "--scale", "2"]));
        check(&out, ext);
    }
    for big in [false, true] {
        let out = d.join(format!("lib-{big}.tif"));
        let src = gigascale::source::open(&input, 64 << 20).unwrap();
        let mut sink =
            gigascale::sink::TiffSink::create(&out, gigascale::Compression::Zstd, None).unwrap().force_bigtiff(big);
        let opts = opts_scale(2.0, 2.0, gigascale::Filter::Lanczos3);
        gigascale::run(src, &mut sink as &mut dyn gigascale::sink::TileSink, &opts, &mut |_| {}).unwrap();
        // exiftool 12's BigTIFF reader does not follow sub-directories: libtiff is the judge.
        if !big {
            check(&out, "classic TIFF");
        }
        let o = Command::new("tiffinfo").arg(&out).output().unwrap();
        assert!(o.stderr.is_empty(), "libtiff complains: {}", String::from_utf8_lossy(&o.stderr));
        let info = String::from_utf8_lossy(&o.stdout);
        for want in
            ["ExposureTime: 0.004000", "LensModel: gigascale test lens", "PixelXDimension: 200", "LatitudeRef: N"]
        {
            assert!(info.contains(want), "big={big}: libtiff reads {want:?} in\n{info}");
        }
    }
}
