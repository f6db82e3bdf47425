//! JPEG output (`.jpg`): read back by an independent decoder (libjpeg-turbo's djpeg) close to
//! the PNG of the same job, the same bytes for every tile size and thread count, the input's
//! ICC profile carried in APP2 markers, and clear refusals (alpha, over 65535 px a side,
//! `--quality` for another format) that leave nothing behind.
use crate::util::*;
use std::path::Path;
use std::process::Command;

/// A PNG's 8-bit samples (16-bit ones rounded as the JPEG sink rounds them) and ICC profile.
fn png_samples(path: &Path) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut r = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap())).read_info().unwrap();
    let icc = r.info().icc_profile.as_ref().map(|p| p.to_vec());
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    if info.bit_depth == png::BitDepth::Sixteen {
        buf = buf
            .chunks_exact(2)
            .map(|s| ((u16::from_be_bytes([s[0], s[1]]) as u32 * 255 + 32767) / 65535) as u8)
            .collect();
    }
    (buf, icc)
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>() / a.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10()
}

/// The ICC profile in a JPEG's APP2 markers, chunks joined in order.
fn jpeg_icc(jpeg: &[u8]) -> Option<Vec<u8>> {
    let (mut i, mut chunks) = (2, Vec::new());
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF && jpeg[i + 1] != 0xDA {
        let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
        let data = &jpeg[i + 4..i + 2 + len];
        if jpeg[i + 1] == 0xE2 && data.starts_with(b"ICC_PROFILE\0") {
            chunks.push((data[12], data[14..].to_vec()));
        }
        i += 2 + len;
    }
    chunks.sort();
    (!chunks.is_empty()).then(|| chunks.into_iter().flat_map(|(_, c)| c).collect())
}

#[test]
fn jpeg_output_reads_back_close_to_the_png_of_the_same_job() {
    let d = scratch("jpeg-out");
    for (input, scale, extra, least_db) in [
        ("coffee.jpg", "3", &["--quality", "95"][..], 44.0),
        ("coffee.jpg", "2.5", &["--quality", "90", "--subsampling", "420"][..], 40.0),
        ("camera-gray.jpg", "4", &[][..], 46.0),
        ("coffee16.png", "2", &["--quality", "95"][..], 44.0),
    ] {
        let (jpg, png_out) = (d.join("out.jpg"), d.join("out.png"));
        let job = |out: &Path, args: &[&str]| {
            ok(&bin()
                .arg("upscale")
                .arg(fixture(input))
                .arg(out)
                .args(["--scale", scale, "--overwrite"])
                .args(args)
                .output()
                .unwrap())
        };
        job(&jpg, extra);
        job(&png_out, &[]);
        let djpeg = Command::new("djpeg").arg(&jpg).output().expect("djpeg (libjpeg-turbo-progs) is needed");
        assert!(djpeg.status.success(), "djpeg refused {input}'s JPEG");
        let (w, h, got) = read_pnm(&djpeg.stdout);
        let (want, icc) = png_samples(&png_out);
        assert_eq!(got.len(), want.len(), "{input}: {w}x{h}");
        let db = psnr(&got, &want);
        eprintln!("{input} x{scale} {extra:?}: {db:.1} dB against the PNG");
        assert!(db >= least_db, "{input} {extra:?}: {db:.1} dB");
        let bytes = std::fs::read(&jpg).unwrap();
        assert_eq!(jpeg_icc(&bytes), icc, "{input}: the ICC profile is carried over");
        // The same bytes whatever the tiles and threads.
        let other = d.join("other.jpg");
        job(&other, &[extra, &["--tile", "64", "--threads", "1"][..]].concat());
        assert!(std::fs::read(&other).unwrap() == bytes, "{input}: other tiles, other bytes");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn what_jpeg_cannot_hold_is_refused_and_nothing_is_left() {
    let d = scratch("jpeg-refusals");
    let out = d.join("out.jpg");
    let run = |input: &str, args: &[&str], target: &Path| {
        bin().arg("upscale").arg(fixture(input)).arg(target).args(args).output().unwrap()
    };
    let o = run("chelsea-rgba.png", &["--scale", "2"], &out);
    assert!(!o.status.success() && stderr(&o).contains("alpha"), "{}", stderr(&o));
    let o = run("coffee.jpg", &["--width", "70000"], &out);
    assert!(!o.status.success() && stderr(&o).contains("65535"), "{}", stderr(&o));
    let o = run("coffee.jpg", &["--scale", "2", "--quality", "0"], &out);
    assert!(!o.status.success() && stderr(&o).contains("--quality"), "{}", stderr(&o));
    let o = run("coffee.jpg", &["--scale", "2", "--quality", "80"], &d.join("out.png"));
    assert!(!o.status.success() && stderr(&o).contains("--quality applies to JPEG"), "{}", stderr(&o));
    let o = run("coffee.jpg", &["--scale", "2", "--pyramid"], &out);
    assert!(!o.status.success() && stderr(&o).contains("TIFF"), "{}", stderr(&o));
    assert!(names(&d).is_empty(), "left behind: {:?}", names(&d));
    std::fs::remove_dir_all(&d).unwrap();
}
