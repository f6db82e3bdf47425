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
