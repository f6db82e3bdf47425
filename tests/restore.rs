//! `upscale --faces`: face restoration inside the tile stream, against the Python reference of
//! the same pipeline (`scripts/restore-reference.py`: facexlib's steps in numpy, the restorer
//! in onnxruntime), with the real CodeFormer and GFPGAN v1.4 architectures at a small width
//! and random weights (`fixtures/restorers/`, made by `scripts/make-restorers.py`); the same
//! bytes for every tile size, budget, thread count and backend; clear refusals.
//!
//! ONNX Runtime's library comes from the `onnxruntime` wheel of `$GIGASCALE_PYTHON` (CI's
//! virtual environment), passed with `--onnxruntime`; without it these tests are skipped
//! unless `GIGASCALE_REQUIRE_PYTHON=1`.
use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python with onnxruntime, numpy and Pillow, and the onnxruntime library of its wheel.
pub fn runtime() -> Option<(String, PathBuf)> {
    let py = python_bin();
    let code = "import numpy, PIL, onnxruntime, os, glob; \
                print(sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi', 'libonnxruntime.so*')))[-1])";
    match Command::new(&py).args(["-c", code]).output() {
        Ok(o) if o.status.success() => Some((py, PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))),
        _ if std::env::var("GIGASCALE_REQUIRE_PYTHON").is_ok_and(|v| v == "1") => {
            panic!("GIGASCALE_REQUIRE_PYTHON=1 but {py} lacks onnxruntime (with its library), numpy or Pillow")
        }
        _ => {
            eprintln!("skipped: {py} lacks onnxruntime, numpy or Pillow (set GIGASCALE_PYTHON)");
            None
        }
    }
}

fn restorer(name: &str) -> PathBuf {
    fixture(&format!("restorers/{name}-tiny.onnx"))
}

/// `gigascale upscale` of the group fixture to `out` with `args`.
fn upscale(out: &Path, lib: &Path, args: &[&str]) {
    let input = fixture("astronaut-group.jpg");
    let mut all = vec!["upscale", s(&input), s(out), "--overwrite", "-q", "--onnxruntime", s(lib)];
    all.extend(args);
    ok(&gs(&all));
}

/// Samples that differ, and the largest difference.
fn compare(a: &Path, b: &Path) -> (usize, u8) {
    let (pa, pb) = (read_png(a), read_png(b));
    assert_eq!((pa.0, pa.1), (pb.0, pb.1));
    let diffs = pa.2.iter().zip(&pb.2).map(|(x, y)| x.abs_diff(*y)).filter(|&d| d > 0);
    diffs.fold((0, 0), |(n, m), d| (n + 1, m.max(d)))
}

/// Our restored output equals the reference's byte for byte, given the same landmarks (our
/// detector's, from `gigascale faces --json`): both models, enlarged 2x with lanczos3, 0.75x
/// with bicubic, and 6x, where the faces are larger than 512 px and the filter enlarges them.
#[test]
fn restored_faces_equal_the_python_reference() {
    let Some((py, lib)) = runtime() else { return };
    let dir = TempDir::new("restore-ref");
    let input = fixture("astronaut-group.jpg");
    let found = dir.join("faces.json");
    std::fs::write(&found, ok(&gs(&["faces", s(&input), "--json"]))).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/restore-reference.py");
    let cases = [("codeformer", "2", "lanczos3"), ("gfpgan", "2", "lanczos3"), ("codeformer", "0.75", "bicubic")];
    let cases = cases.into_iter().chain([("gfpgan", "6", "mitchell")]).map(|(m, s, f)| (m, s, f, "1"));
    // --face-threads 3 gives onnxruntime's bytes on 3 intra-op threads.
    let cases = cases.chain([("codeformer", "2", "lanczos3", "3"), ("gfpgan", "2", "lanczos3", "3")]);
    for (model, scale, filter, face_threads) in cases {
        let (plain, ours, want) = (dir.join("plain.png"), dir.join("ours.png"), dir.join("want.png"));
        upscale(&plain, &lib, &["--scale", scale, "--filter", filter]);
        let m = restorer(model);
        let faces = ["--faces", s(&m), "--face-fidelity", "0.7", "--face-threads", face_threads];
        upscale(&ours, &lib, &[&["--scale", scale, "--filter", filter][..], &faces[..]].concat());
        let o = Command::new(&py)
            .arg(&script)
            .args([s(&input), s(&plain), s(&m), s(&want), "--faces", s(&found), "--fidelity", "0.7"])
            .args(["--filter", filter, "--threads", face_threads])
            .output()
            .unwrap();
        ok(&o);
        let (changed, _) = compare(&plain, &ours);
        let (n, worst) = compare(&ours, &want);
        eprintln!("{model} x{scale} {filter} ({face_threads} face threads): {changed} samples restored, {n} differ from the reference (max {worst})");
        assert!(changed > 10_000, "{model}: the faces should change the output");
        assert_eq!(n, 0, "{model} x{scale}: {n} samples differ from the reference, by up to {worst}");
    }
}

/// With a model, faces larger than 512 px in the output are enlarged by the model first (as
/// the rest of the image is), then sampled with the filter: byte for byte the reference's
/// (which enlarges them with `gigascale upscale FACE --model anime --scale 4`), and the same
/// bytes for other tiles, threads and budgets. (On lavapipe the enlargement alone takes a
/// minute; the GPU backend's bytes are compared on the H200 by scripts/device-faces-model.sh.)
#[test]
fn large_faces_are_enlarged_by_the_model_first() {
    let Some((py, lib)) = runtime() else { return };
    let dir = TempDir::new("restore-model");
    // One face of the group (51x63 px; over 512 px at 6x), cropped.
    let input = dir.join("one-face.png");
    let crop = format!(
        "from PIL import Image; Image.open({:?}).crop((40, 20, 210, 210)).save({:?})",
        fixture("astronaut-group.jpg"),
        input
    );
    ok(&Command::new(&py).args(["-c", &crop]).output().unwrap());
    let found = dir.join("faces.json");
    std::fs::write(&found, ok(&gs(&["faces", s(&input), "--json"]))).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/restore-reference.py");
    let (plain, ours, want) = (dir.join("plain.png"), dir.join("ours.png"), dir.join("want.png"));
    let m = restorer("gfpgan");
    let run = |out: &Path, extra: &[&str]| {
        let mut all = vec!["upscale", s(&input), s(out), "--model", "anime", "--scale", "6", "--backend", "cpu"];
        all.extend(["--overwrite", "-q"]);
        all.extend(["--onnxruntime", s(&lib)]);
        all.extend(extra);
        ok(&gs(&all));
    };
    run(&plain, &[]);
    run(&ours, &["--faces", s(&m), "--threads", "2"]);
    let o = Command::new(&py)
        .arg(&script)
        .args([s(&input), s(&plain), s(&m), s(&want), "--faces", s(&found)])
        .args(["--enlarge-model", "anime", "--enlarge-scale", "4"])
        .env("GIGASCALE_BIN", env!("CARGO_BIN_EXE_gigascale"))
        .output()
        .unwrap();
    ok(&o);
    let (changed, _) = compare(&plain, &ours);
    let (n, worst) = compare(&ours, &want);
    assert!(changed > 100_000, "the face should change the output ({changed})");
    assert_eq!(n, 0, "{n} samples differ from the reference, by up to {worst}");
    for v in [vec!["--tile", "32", "--threads", "3", "--max-memory", "400M"], vec!["--threads", "16"]] {
        let other = dir.join("other.png");
        run(&other, &[&["--faces", s(&m)][..], &v[..]].concat());
        assert_eq!(std::fs::read(&ours).unwrap(), std::fs::read(&other).unwrap(), "{v:?}");
    }
}

/// The whole pipeline against the reference with its own detector (onnxruntime on the whole
/// image): GFPGAN's output moves smoothly with the landmarks (1e-4 px apart), so within 1 LSB
/// in at most 0.01 % of the samples. (CodeFormer picks codebook entries by arg-max: a landmark
/// 1e-4 px away can pick another, so it is compared with shared landmarks above.)
#[test]
fn the_whole_pipeline_matches_the_reference_detector_and_restorer() {
    let Some((py, lib)) = runtime() else { return };
    let dir = TempDir::new("restore-e2e");
    let input = fixture("astronaut-group.jpg");
    let (plain, ours, want) = (dir.join("plain.png"), dir.join("ours.png"), dir.join("want.png"));
    upscale(&plain, &lib, &["--scale", "3"]);
    let m = restorer("gfpgan");
    upscale(&ours, &lib, &["--scale", "3", "--faces", s(&m)]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/restore-reference.py");
    let reference = Command::new(&py)
        .arg(&script)
        .args([s(&input), s(&plain), s(&m), s(&want)])
        .env("GIGASCALE_BIN", env!("CARGO_BIN_EXE_gigascale"))
        .output();
    ok(&reference.unwrap());
    let (n, worst) = compare(&ours, &want);
    let total = read_png(&ours).2.len();
    eprintln!("gfpgan x3: {n} of {total} samples differ from the reference, by up to {worst}");
    assert!(worst <= 1 && n * 10_000 <= total, "{n} samples differ, by up to {worst}");
}

/// Every tile size, budget, thread count and backend gives the same bytes.
#[test]
fn restoration_is_the_same_for_every_tile_budget_thread_count_and_backend() {
    let Some((_, lib)) = runtime() else { return };
    let dir = TempDir::new("restore-inv");
    let m = restorer("codeformer");
    let base = ["--scale", "2.5", "--faces", s(&m)];
    let first = dir.join("a.png");
    upscale(&first, &lib, &[&base[..], &["--threads", "1", "--backend", "cpu"]].concat());
    let mut variants: Vec<Vec<&str>> = vec![
        vec!["--tile", "16", "--threads", "3", "--backend", "cpu"],
        vec!["--tile", "512", "--threads", "16", "--backend", "cpu"],
        vec!["--max-memory", "300M", "--tile", "32", "--threads", "2", "--backend", "cpu"],
    ];
    if gigascale_has_gpu() {
        variants.push(vec!["--backend", "gpu", "--tile", "64"]);
    }
    for v in variants {
        let other = dir.join("b.png");
        upscale(&other, &lib, &[&base[..], &v[..]].concat());
        assert_eq!(std::fs::read(&first).unwrap(), std::fs::read(&other).unwrap(), "{v:?}");
    }
    // --face-threads shapes the bytes; --threads still does not.
    let (a, b) = (dir.join("t1.png"), dir.join("t16.png"));
    upscale(&a, &lib, &[&base[..], &["--face-threads", "2", "--threads", "1"]].concat());
    upscale(&b, &lib, &[&base[..], &["--face-threads", "2", "--threads", "16", "--tile", "48"]].concat());
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "--face-threads 2");
}

/// Whether a usable GPU adapter exists (lavapipe in CI, where
/// `GIGASCALE_REQUIRE_GPU=1` makes its absence a failure).
fn gigascale_has_gpu() -> bool {
    #[cfg(feature = "gpu")]
    {
        let usable = gigascale::gpu::list_adapters().iter().any(|a| a.usable.is_ok());
        assert!(
            usable || !std::env::var("GIGASCALE_REQUIRE_GPU").is_ok_and(|v| v == "1"),
            "GIGASCALE_REQUIRE_GPU=1 but no usable adapter"
        );
        usable
    }
    #[cfg(not(feature = "gpu"))]
    false
}

/// Peak memory stays within the budget (+16 MB) with faces on, on 2 and 16 threads: the
/// restorer's sessions are counted by measuring the first face, and only as many more are
/// opened as the budget holds; a budget too small for one session is refused with the figure.
#[test]
fn restoration_stays_within_the_memory_budget() {
    let Some((_, lib)) = runtime() else { return };
    let dir = TempDir::new("restore-mem");
    let input = fixture("astronaut-group.jpg");
    let out = dir.join("out.png");
    let m = restorer("codeformer");
    for (budget, threads) in [("300M", "2"), ("300M", "16"), ("600M", "16")] {
        let args = ["upscale", s(&input), s(&out), "--scale", "3", "--faces", s(&m), "--onnxruntime", s(&lib)];
        let args = [&args[..], &["--max-memory", budget, "--threads", threads, "--overwrite", "-q"]].concat();
        let (o, rss) = measured(&args.iter().map(std::ffi::OsStr::new).collect::<Vec<_>>());
        ok(&o);
        let limit = gigascale::limits::parse_size(budget).unwrap();
        eprintln!("--max-memory {budget} --threads {threads}: peak {} MiB", rss >> 20);
        assert!(rss <= limit + (16 << 20), "{budget}, {threads} threads: peak {rss}");
    }
    let o = gs(&[
        "upscale",
        s(&input),
        s(&out),
        "--scale",
        "2",
        "--faces",
        s(&m),
        "--onnxruntime",
        s(&lib),
        "--max-memory",
        "64M",
        "--overwrite",
    ]);
    let err = stderr(&o);
    assert!(!o.status.success() && err.contains("face restorer") && err.contains("MiB or more"), "{err}");
}

/// Refusals name what is wrong, and leave no output behind.
#[test]
fn bad_restorers_and_runtimes_are_refused_clearly() {
    let dir = TempDir::new("restore-bad");
    let input = fixture("astronaut-group.jpg");
    let out = dir.join("out.png");
    let not_onnx = dir.join("model.onnx");
    std::fs::write(&not_onnx, b"not a model").unwrap();
    let lib = runtime().map(|(_, l)| l);
    let lib_arg = lib.as_deref().map_or("/nonexistent/libonnxruntime.so", s);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--faces", "/nonexistent/codeformer.onnx"], "no such file"),
        (vec!["--faces", s(&not_onnx), "--face-fidelity", "1.5"], "--face-fidelity 1.5"),
        (vec!["--faces", s(&not_onnx), "--onnxruntime", "/nonexistent/libort.so"], "/nonexistent/libort.so"),
        (vec!["--face-fidelity", "0.5"], "--faces"),
        (vec!["--face-device", "cuda"], "--faces"),
        (vec!["--faces", s(&not_onnx), "--face-device", "gpu"], "give cpu, cuda, cuda:N"),
    ];
    let mut cases = cases;
    let tiny = restorer("gfpgan");
    if lib.is_some() {
        cases.push((vec!["--faces", s(&not_onnx), "--onnxruntime", lib_arg], "model.onnx"));
        // CI's runtime is ONNX Runtime's CPU build: the GPU is refused, never silently the CPU.
        cases.push((vec!["--faces", s(&tiny), "--onnxruntime", lib_arg, "--face-device", "cuda"], "onnxruntime-gpu"));
    }
    for (args, says) in cases {
        let mut all = vec!["upscale", s(&input), s(&out), "--scale", "2"];
        all.extend(args.iter().copied());
        let o = gs(&all);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!out.exists(), "{args:?} left an output");
    }
}

/// ONNX Runtime is found as documented: `$GIGASCALE_ONNXRUNTIME`, else the `onnxruntime`
/// package of the `python3` on `PATH`; with neither, `--faces` stops before any work and says
/// what to install.
#[test]
fn the_runtime_is_found_from_the_environment_or_the_python_package() {
    let Some((py, lib)) = runtime() else { return };
    let dir = TempDir::new("restore-find");
    let input = fixture("astronaut-group.jpg");
    let m = restorer("gfpgan");
    let (given, out) = (dir.join("given.png"), dir.join("out.png"));
    upscale(&given, &lib, &["--scale", "2", "--faces", s(&m)]);
    // `--face-device auto` with ONNX Runtime's CPU build: the CPU, said so, the same bytes.
    let auto = dir.join("auto.png");
    let o = gs(&["upscale", s(&input), s(&auto), "--scale", "2", "--faces", s(&m), "--onnxruntime", s(&lib)]
        .into_iter()
        .chain(["--face-device", "auto", "--progress", "json"])
        .collect::<Vec<_>>());
    ok(&o);
    assert!(stderr(&o).contains(r#""event":"faces","done":3,"found":3,"device":"cpu""#), "{}", stderr(&o));
    assert_eq!(std::fs::read(&auto).unwrap(), std::fs::read(&given).unwrap());
    // A PATH whose python3 is the one with onnxruntime (by its absolute path: no loop).
    let exe = Command::new(&py).args(["-c", "import sys; print(sys.executable)"]).output().unwrap();
    let py = String::from_utf8_lossy(&exe.stdout).trim().to_string();
    let shims = dir.join("bin");
    std::fs::create_dir_all(&shims).unwrap();
    let shim = shims.join("python3");
    std::fs::write(&shim, format!("#!/bin/sh\nexec '{py}' \"$@\"\n")).unwrap();
    let mut perms = std::fs::metadata(&shim).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&shim, perms).unwrap();
    let run = |env: &[(&str, &std::ffi::OsStr)]| {
        let mut c = bin();
        c.args(["upscale", s(&input), s(&out), "--scale", "2", "--faces", s(&m), "--overwrite", "-q"]);
        c.env_remove("GIGASCALE_ONNXRUNTIME").env_remove("ORT_DYLIB_PATH");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    for env in [
        vec![("GIGASCALE_ONNXRUNTIME", lib.as_os_str()), ("PATH", empty.as_os_str())],
        vec![("PATH", shims.as_os_str())],
    ] {
        ok(&run(&env));
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&given).unwrap(), "{env:?}");
        std::fs::remove_file(&out).unwrap();
    }
    let o = run(&[("PATH", empty.as_os_str())]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("pip install onnxruntime"), "{}", stderr(&o));
    assert!(!out.exists());
}
