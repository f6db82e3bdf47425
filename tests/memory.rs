//! Peak memory, measured from outside the process: a 6000x9000 output under --max-memory 64M
//! stays below the budget plus 16 MB, with and without a learned model before the resampler,
//! and with a pyramid.
//! (The gigapixel case is in scripts/bench-15x.sh.)
mod common;
use std::process::Command;

#[test]
fn six_by_nine_thousand_under_64m() {
    let dir = std::env::temp_dir().join(format!("gigascale-mem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A 400x600 photo-like input: smooth gradients, edges and noise.
    let input = dir.join("in.png");
    common::photo_png(&input, 400, 600);
    let out = dir.join("out.tif");
    let time = std::path::Path::new("/usr/bin/time");
    assert!(time.exists(), "/usr/bin/time is needed (Debian package 'time'; .ci/run installs it)");
    let cases = [("none", None), ("zstd", None), ("zstd", Some("--pyramid")), ("zstd", Some("photo"))];
    for (comp, extra) in cases {
        let (model, pyramid) = (extra.filter(|e| !e.starts_with("--")), extra.filter(|e| e.starts_with("--")));
        let mut model_args = model.map(|m| vec!["--model", m]).unwrap_or_default();
        model_args.extend(pyramid);
        let o = Command::new(time)
            .args(["-f", "peak_rss_kb=%M"])
            .arg(env!("CARGO_BIN_EXE_gigascale"))
            .args([
                "upscale",
                input.to_str().unwrap(),
                out.to_str().unwrap(),
                "--scale",
                "15",
                "--max-memory",
                "64M",
                "--overwrite",
                "--quiet",
                "--compression",
                comp,
                // The RSS bound is the budget's; a GPU driver maps memory of its own outside it.
                "--backend",
                "cpu",
            ])
            .args(&model_args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        let kb: u64 = err.lines().find_map(|l| l.strip_prefix("peak_rss_kb=")).unwrap().trim().parse().unwrap();
        eprintln!("6000x9000 {comp} {extra:?}: peak RSS {} KiB", kb);
        assert!(kb * 1024 <= (64 + 16) << 20, "peak RSS {kb} KiB exceeds 64M + 16M");
        let info = String::from_utf8(
            Command::new(env!("CARGO_BIN_EXE_gigascale")).arg("info").arg(&out).output().unwrap().stdout,
        )
        .unwrap();
        assert!(info.contains("size: 6000x9000"), "{info}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
