//! Peak memory, measured from outside the process: a 6000x9000 output under --max-memory 64M
//! stays below the budget plus 16 MB, with and without a learned model before the resampler,
//! and with a pyramid.
//! (The gigapixel case is in scripts/bench-15x.sh.)
use crate::util::*;

#[test]
fn six_by_nine_thousand_under_64m() {
    let dir = TempDir::new("6000x9000");
    // A 400x600 photo-like input: smooth gradients, edges and noise.
    let input = dir.join("in.png");
    photo_png(&input, 400, 600);
    let out = dir.join("out.tif");
    let cases = [("none", None), ("zstd", None), ("zstd", Some("--pyramid")), ("zstd", Some("photo"))];
    for (comp, extra) in cases {
        let (model, pyramid) = (extra.filter(|e| !e.starts_with("--")), extra.filter(|e| e.starts_with("--")));
        let mut args = vec!["upscale", s(&input), s(&out), "--scale", "15", "--max-memory", "64M"];
        // The RSS bound is the budget's; a GPU driver maps memory of its own outside it.
        args.extend(["--overwrite", "--quiet", "--compression", comp, "--backend", "cpu"]);
        args.extend(model.map(|m| ["--model", m]).into_iter().flatten());
        args.extend(pyramid);
        let (o, rss) = measured(&args.iter().map(std::ffi::OsStr::new).collect::<Vec<_>>());
        assert!(o.status.success(), "{}", stderr(&o));
        eprintln!("6000x9000 {comp} {extra:?}: peak RSS {} KiB", rss >> 10);
        assert!(rss <= (64 + 16) << 20, "peak RSS {} KiB exceeds 64M + 16M", rss >> 10);
        let info = ok(&gs(&["info", s(&out)]));
        assert!(info.contains("size: 6000x9000"), "{info}");
    }
}

/// Every built-in model's pass stays within its budget, and a Real-CUGAN-shaped one's (its SE
/// sums gathered over every tile first): peak RSS ≤ `--max-memory` + 16 MB on 2 threads and on
/// 16 (more threads than this machine has cores: each has its own scratch).
#[test]
fn models_stay_within_the_budget_on_2_and_16_threads() {
    let dir = TempDir::new("models");
    let input = dir.join("in.png");
    photo_png(&input, 512, 352);
    let out = dir.join("out.tif");
    let (param, bin) = unet_model(11);
    std::fs::write(dir.join("unet.param"), param).unwrap();
    std::fs::write(dir.join("unet.bin"), bin).unwrap();
    let unet = dir.join("unet.param");
    for (model, scale) in [("photo", "4"), ("anime", "4"), (s(&unet), "2")] {
        for threads in ["2", "16"] {
            for budget in [64u64, 128] {
                let mem = format!("{budget}M");
                let mut args = vec!["upscale", s(&input), s(&out), "--model", model, "--scale", scale];
                args.extend(["--max-memory", &mem, "--threads", threads, "--backend", "cpu", "--overwrite", "-q"]);
                let (o, rss) = measured(&args.iter().map(std::ffi::OsStr::new).collect::<Vec<_>>());
                assert!(o.status.success(), "{}", stderr(&o));
                eprintln!("{model}, {threads} threads, --max-memory {mem}: peak RSS {} KiB", rss >> 10);
                assert!(rss <= (budget + 16) << 20, "{model}, {threads} threads: {} KiB over {mem} + 16M", rss >> 10);
            }
        }
    }
}

/// The streamed outputs other than TIFF stay in the budget too: a 6000x9000 lossless WebP
/// (two passes over a scratch file), lossy WebP, PNG and JPEG under --max-memory 24M, at 2 and
/// 16 threads.
#[test]
fn streamed_band_outputs_under_24m() {
    let dir = TempDir::new("bands-24m");
    let input = dir.join("in.png");
    photo_png(&input, 400, 600);
    for (ext, extra) in [("webp", &[][..]), ("webp", &["--quality", "90"][..]), ("png", &[]), ("jpg", &[])] {
        for threads in ["2", "16"] {
            let out = dir.join(format!("out.{ext}"));
            let args = ["upscale", s(&input), s(&out), "--scale", "15", "--max-memory", "24M", "--threads", threads];
            let args = [&args[..], extra, &["--overwrite", "--quiet", "--backend", "cpu"]].concat();
            let (o, rss) = measured(&args.iter().map(std::ffi::OsStr::new).collect::<Vec<_>>());
            assert!(o.status.success(), "{}", stderr(&o));
            eprintln!("6000x9000 .{ext} {extra:?}, {threads} threads: peak RSS {} KiB", rss >> 10);
            assert!(rss <= (24 + 16) << 20, ".{ext} {threads} threads: peak RSS {} KiB exceeds 24M + 16M", rss >> 10);
        }
    }
}
