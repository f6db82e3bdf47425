//! `gigascale faces`: the bundled RetinaFace detector, run tile by tile by our own engine,
//! against the reference (`scripts/faces-reference.py`: onnxruntime on the whole image, with
//! facexlib's decoding and suppression); the same faces for every tile, budget and thread
//! count; peak memory within the budget; clear refusals.
//!
//! The reference needs `$GIGASCALE_PYTHON` with onnxruntime, numpy and Pillow (CI's virtual
//! environment has them); without them that test is skipped unless
//! `GIGASCALE_REQUIRE_PYTHON=1`.
use crate::util::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The faces `gigascale faces IN --json ARGS` finds, as JSON values.
fn faces(input: &Path, args: &[&str]) -> (Vec<Value>, Value) {
    let mut all = vec!["faces", s(input), "--json"];
    all.extend(args);
    let o = gs(&all);
    let doc: Value = serde_json::from_str(&ok(&o)).unwrap();
    (doc["faces"].as_array().unwrap().clone(), doc)
}

/// A 2240x1440 photo with three faces 100-250 px across: the fixture enlarged 4x.
fn large_group(dir: &TempDir) -> std::path::PathBuf {
    let big = dir.join("group-x4.png");
    ok(&gs(&["upscale", s(&fixture("astronaut-group.jpg")), s(&big), "--scale", "4", "--filter", "lanczos3", "-q"]));
    big
}

fn reference_python() -> Option<String> {
    let py = python_bin();
    let probe = Command::new(&py).args(["-c", "import onnxruntime, numpy, PIL"]).output();
    match probe {
        Ok(o) if o.status.success() => Some(py),
        _ if std::env::var("GIGASCALE_REQUIRE_PYTHON").is_ok_and(|v| v == "1") => {
            panic!("GIGASCALE_REQUIRE_PYTHON=1 but {py} lacks onnxruntime, numpy or Pillow")
        }
        _ => {
            eprintln!("skipped: {py} lacks onnxruntime, numpy or Pillow (set GIGASCALE_PYTHON)");
            None
        }
    }
}

/// Largest difference between two faces' boxes and landmarks, in pixels.
fn distance(a: &Value, b: &Value) -> f64 {
    let nums = |v: &Value| -> Vec<f64> {
        let mut n: Vec<f64> = v["box"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        for p in v["landmarks"].as_array().unwrap() {
            n.extend(p.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()));
        }
        n
    };
    nums(a).iter().zip(nums(b)).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// The faces equal onnxruntime's on the whole image within 0.05 px and 1e-4 in score: on
/// the fixture (one tile) and on its 4x enlargement cut into tiles by a small budget.
#[test]
fn faces_match_onnxruntime_on_the_whole_image() {
    let Some(py) = reference_python() else { return };
    let dir = TempDir::new("faces-ref");
    let big = large_group(&dir);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/faces-reference.py");
    // A face of about 800 px: beyond the anchors at full size, found on the reduced copy.
    let close = dir.join("close-up.png");
    let crop =
        "import sys; from PIL import Image; im = Image.open(sys.argv[1]).convert('RGB').crop((70, 50, 180, 180)); \
                im.resize((1760, 2080), Image.LANCZOS).save(sys.argv[2])";
    ok(&Command::new(&py).args(["-c", crop, s(&fixture("astronaut-group.jpg")), s(&close)]).output().unwrap());
    let cases =
        [(fixture("astronaut-group.jpg"), vec![], 3), (big, vec!["--max-memory", "64M"], 3), (close, vec![], 2)];
    for (input, args, count) in cases {
        let (ours, doc) = faces(&input, &args);
        let o = Command::new(&py)
            .arg(&script)
            .arg(&input)
            .env("GIGASCALE_BIN", env!("CARGO_BIN_EXE_gigascale"))
            .output()
            .unwrap();
        let want: Value = serde_json::from_str(&ok(&o)).unwrap();
        let want = want["faces"].as_array().unwrap();
        eprintln!("{}: {} faces in {} tiles, reference {}", input.display(), ours.len(), doc["tiles"], want.len());
        assert_eq!(ours.len(), count, "{ours:?}");
        assert_eq!(ours.len(), want.len(), "ours {ours:?}\nreference {want:?}");
        for (a, b) in ours.iter().zip(want) {
            let ds = (a["score"].as_f64().unwrap() - b["score"].as_f64().unwrap()).abs();
            assert!(distance(a, b) < 0.05 && ds < 1e-4, "ours {a}\nreference {b}");
        }
        if !args.is_empty() {
            assert!(doc["tiles"].as_u64().unwrap() > 1, "the small budget should cut the image into tiles");
        }
        if count == 2 {
            let b = &ours[0]["box"];
            let side = b[2].as_f64().unwrap() - b[0].as_f64().unwrap();
            assert!(side > 600.0, "the close-up's face comes from the reduced copy: {b}");
        }
    }
}

/// Tiles of every size (down to 32 px, hundreds of them), budgets and thread counts give the
/// very same faces, float for float.
#[test]
fn faces_are_the_same_for_every_tile_budget_and_thread_count() {
    let input = fixture("astronaut-group.jpg");
    let (whole, doc) = faces(&input, &[]);
    assert_eq!((doc["tiles"].as_u64(), whole.len()), (Some(1), 3), "{doc}");
    for args in [&["--tile", "32"][..], &["--tile", "96", "--threads", "3"], &["--tile", "256", "--threads", "1"]] {
        let (tiled, doc) = faces(&input, args);
        assert!(doc["tiles"].as_u64().unwrap() > 1, "{args:?}");
        assert_eq!(tiled, whole, "{args:?}");
    }
    let dir = TempDir::new("faces-tiles");
    let big = large_group(&dir);
    let (whole, _) = faces(&big, &[]);
    let (tiled, doc) = faces(&big, &["--max-memory", "64M", "--threads", "16"]);
    assert!(doc["tiles"].as_u64().unwrap() > 1, "{doc}");
    assert_eq!(tiled, whole);
}

/// Peak RSS stays within --max-memory + 16 MB on 2 and on 16 threads.
#[test]
fn faces_stay_within_the_budget_on_2_and_16_threads() {
    let dir = TempDir::new("faces-mem");
    let big = large_group(&dir);
    for threads in ["2", "16"] {
        for budget in [48u64, 128] {
            let mem = format!("{budget}M");
            let args = ["faces", s(&big), "--max-memory", &mem, "--threads", threads];
            let (o, rss) = measured(&args.iter().map(std::ffi::OsStr::new).collect::<Vec<_>>());
            let out = ok(&o);
            eprintln!(
                "{threads} threads, --max-memory {mem}: peak RSS {} KiB; {}",
                rss >> 10,
                out.lines().next().unwrap_or("")
            );
            assert!(out.contains("3 faces"), "{out}");
            assert!(rss <= (budget + 16) << 20, "{threads} threads: {} KiB over {mem} + 16M", rss >> 10);
        }
    }
}

/// A budget below one tile's need is refused up front, naming the least that works; a file
/// that is not an image is refused with its name; both exit 1 and print no faces.
#[test]
fn faces_refusals_name_the_problem() {
    let o = gs(&["faces", s(&fixture("astronaut-group.jpg")), "--max-memory", "20M"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("astronaut-group.jpg") && err.contains("--max-memory of at least"), "{err}");
    assert!(o.stdout.is_empty());
    let dir = TempDir::new("faces-bad");
    let junk = dir.join("notes.jpg");
    std::fs::write(&junk, b"not a picture at all").unwrap();
    let o = gs(&["faces", s(&junk)]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("notes.jpg"), "{err}");
    let o = gs(&["faces", s(&fixture("astronaut-group.jpg")), "--threshold", "1.5"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// Every layout the decoders deliver is read as the detector expects: a 16-bit copy (each
/// sample × 257) and an RGBA copy (opaque alpha) of the group photo give exactly the 8-bit
/// RGB faces; grey, grey + alpha and 16-bit grey inputs run (no faces in them).
#[test]
fn faces_read_every_layout_alike() {
    let dir = TempDir::new("faces-layouts");
    let png = dir.join("group.png");
    ok(&gs(&["upscale", s(&fixture("astronaut-group.jpg")), s(&png), "--scale", "1"]));
    let (w, h, rgb) = read_png(&png);
    let write = |name: &str, colour: png::ColorType, depth: png::BitDepth, data: &[u8]| {
        let path = dir.join(name);
        let mut e =
            png::Encoder::new(std::io::BufWriter::new(std::fs::File::create(&path).unwrap()), w as u32, h as u32);
        e.set_color(colour);
        e.set_depth(depth);
        e.write_header().unwrap().write_image_data(data).unwrap();
        path
    };
    let wide: Vec<u8> = rgb.iter().flat_map(|&v| (v as u16 * 257).to_be_bytes()).collect();
    let rgba: Vec<u8> = rgb.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
    let (want, _) = faces(&png, &[]);
    assert_eq!(want.len(), 3);
    for path in [
        write("g16.png", png::ColorType::Rgb, png::BitDepth::Sixteen, &wide),
        write("ga.png", png::ColorType::Rgba, png::BitDepth::Eight, &rgba),
    ] {
        assert_eq!(faces(&path, &[]).0, want, "{}", path.display());
    }
    for name in ["camera-gray.jpg", "camera-graya.png", "camera16.tif", "coffee16.png", "chelsea-rgba.tif"] {
        let (found, doc) = faces(&fixture(name), &[]);
        assert!(doc["width"].as_u64().unwrap() > 0 && found.is_empty(), "{name}: {doc}");
    }
}
