//! `--activation-bits 24`: the exact engine with eight more bits below each blob's scale
//! (src/neural/wide.rs). The same promises as 16 bits — every tile size, kernel, thread count
//! and budget gives the same bytes, within the bound of the real ncnn runtime on the shipped
//! models — on every kind of layer the engine has (the shipped models' convolutions,
//! deconvolution and enlargement; SPAN's tables, products and affine layers; Real-CUGAN's valid,
//! strided and transposed convolutions, crops and SE blocks).

use crate::neural::assert_within_ncnn_bound;
use crate::util::*;
use gigascale::Model;
use std::path::Path;

fn goldens() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goldens/neural")
}

fn wide(m: Model) -> Model {
    let m = m.with_activation_bits(24).unwrap();
    assert_eq!(m.activation_bits(), 24);
    m
}

/// The shipped models and the SPAN-shaped network: within the bound of ncnn's goldens (≤ 2
/// levels, at most 0.1 % over 1), tiles equal to the whole image, the scalar kernel equal to
/// the fast one — and different from 16 bits (the flag does something).
#[test]
fn wide_activations_match_ncnn_and_tile_exactly() {
    let g = goldens();
    let (w, h, rgb) = read_png(&g.join("chelsea-16x12.png"));
    let span = || Model::load(&g.join("span-like.param")).unwrap();
    let cases: [(&str, Model, Model, usize); 3] = [
        ("photo", Model::builtin("photo").unwrap(), Model::builtin("photo").unwrap(), 8),
        ("anime", Model::builtin("anime").unwrap(), Model::builtin("anime").unwrap(), 24),
        ("span-like", span(), span(), 5),
    ];
    let mut differs = false;
    for (name, m, again, tile) in cases {
        let narrow = m.reference_image(w, h, &rgb, None, true).unwrap();
        let m = wide(m);
        let whole = m.reference_image(w, h, &rgb, None, true).unwrap();
        let (_, _, want) = read_png(&g.join(format!("chelsea-16x12.{name}-ncnn.png")));
        assert_within_ncnn_bound(&whole, &want, &format!("24-bit {name}"));
        assert!(m.reference_image(w, h, &rgb, Some(tile), true).unwrap() == whole, "{name}: tile {tile}");
        let native = wide(again).with_native_kernel().unwrap();
        assert!(native.reference_image(w, h, &rgb, Some(tile + 3), true).unwrap() == whole, "{name}: native");
        differs |= narrow != whole;
    }
    assert!(differs, "24-bit activations gave the 16-bit bytes on every model");
}

/// Real-CUGAN's layers at 24 bits: whole and tile by tile (the SE blocks' sums gathered over
/// every tile first) the same bytes, within 2 levels of the float network.
#[test]
fn wide_activations_run_unet_layers_exactly() {
    let (param, bin) = unet_model(11);
    let m = wide(Model::from_parts("unet", &param, &bin).unwrap());
    let (w, h) = (37, 29);
    let rgb: Vec<u8> = (0..w * h * 3).map(|i| ((i * 7) % 251) as u8).collect();
    let whole = m.reference_image(w, h, &rgb, None, true).unwrap();
    let float = m.reference_image(w, h, &rgb, None, false).unwrap();
    let worst = whole.iter().zip(&float).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
    assert!(worst <= 2, "exact vs float: {worst} levels");
    for tile in [6, 16, 40] {
        assert!(m.reference_image(w, h, &rgb, Some(tile), true).unwrap() == whole, "tile {tile}");
    }
}

/// The command line: every thread count, budget and tile size gives the same bytes at 24 bits
/// (the GPU's: tests/gpu.rs); widths other than 16 and 24, and the flag without a model, are
/// usage errors.
#[test]
fn wide_activations_from_the_command_line() {
    let d = TempDir::new("wide-cli");
    let input = fixture("coffee.jpg");
    let run = |name: &str, extra: &[&str]| {
        let out = d.join(name);
        let mut args = vec!["upscale", s(&input), s(&out), "--model", "photo", "--width", "160", "--overwrite"];
        args.extend(["--activation-bits", "24"]);
        args.extend(extra);
        (gs(&args), out)
    };
    let mut first: Option<Vec<u8>> = None;
    for (i, extra) in [
        &["--threads", "1", "--backend", "cpu"][..],
        &["--threads", "2", "--max-memory", "48M", "--backend", "cpu"],
        &["--threads", "3", "--max-memory", "1G", "--tile", "32"],
    ]
    .iter()
    .enumerate()
    {
        let (o, out) = run(&format!("o{i}.png"), extra);
        ok(&o);
        let bytes = read_png(&out).2;
        match &first {
            None => first = Some(bytes),
            Some(f) => assert!(*f == bytes, "{extra:?}: bytes differ"),
        }
    }
    let narrow = d.join("narrow.png");
    ok(&gs(&["upscale", s(&input), s(&narrow), "--model", "photo", "--width", "160"]));
    assert!(read_png(&narrow).2 != first.unwrap(), "--activation-bits 24 changed nothing");
    for args in [
        &["upscale", s(&input), s(&d.join("x.png")), "--activation-bits", "20", "--model", "photo", "--scale", "2"][..],
        &["upscale", s(&input), s(&d.join("y.png")), "--scale", "2", "--activation-bits", "24"],
    ] {
        let o = gs(args);
        let e = stderr(&o);
        assert!(o.status.code() == Some(2) && e.contains("--activation-bits"), "{args:?}: {e}");
    }
}
