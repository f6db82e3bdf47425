//! Real-CUGAN's layers (valid convolutions, strided convolutions, crops of skip connections,
//! deconvolutions of a kernel that is not a multiple of the stride, SE blocks over the whole
//! image): a small U-Net of that shape with random weights, run whole and tile by tile.
//! (The real models are checked against their runtime by scripts/cugan-check.py.)

use crate::util::*;
use gigascale::Model;

fn image(w: usize, h: usize) -> Vec<u8> {
    let mut rng = Lcg(7);
    (0..w * h * 3).map(|i| ((i % (w * 3)) as u64 * 2 + (i / (w * 3)) as u64 * 3 + rng.next() % 40) as u8).collect()
}

/// Whole, and tile by tile (the SE blocks' sums gathered over every tile first): the same
/// bytes; and the exact engine within the bound of the float network.
#[test]
fn unet_layers_are_exact_and_tile_invariant() {
    let (param, bin) = unet_model(11);
    let m = Model::from_parts("unet", &param, &bin).unwrap();
    assert_eq!(m.scale(), 2);
    let (w, h) = (37, 29);
    let rgb = image(w, h);
    let whole = m.reference_image(w, h, &rgb, None, true).unwrap();
    let float = m.reference_image(w, h, &rgb, None, false).unwrap();
    let worst = whole.iter().zip(&float).map(|(&a, &b)| (a as i32 - b as i32).abs()).max().unwrap();
    assert!(worst <= 2, "exact vs float: {worst} levels");
    assert!(whole.iter().any(|&v| v != whole[0]), "a flat output proves nothing");
    for tile in [6, 16, 40] {
        assert_eq!(m.reference_image(w, h, &rgb, Some(tile), true).unwrap(), whole, "tile {tile}");
    }
    // The float network tiled: its SE sums in f64 differ in their last bits at most.
    let ft = m.reference_image(w, h, &rgb, Some(16), false).unwrap();
    assert!(ft.iter().zip(&float).all(|(&a, &b)| (a as i32 - b as i32).abs() <= 1));
}

/// The command line on that model: every memory budget gives the same bytes as the whole
/// image in the library (the pipeline's tiles, SE sums included), on the CPU and with
/// `--backend auto` (the GPU where there is one).
#[test]
fn unet_models_run_from_the_command_line() {
    let d = TempDir::new("unet-cli");
    let (param, bin) = unet_model(11);
    std::fs::write(d.join("unet.param"), &param).unwrap();
    std::fs::write(d.join("unet.bin"), &bin).unwrap();
    let (w, h) = (150, 90);
    let rgb = image(w, h);
    let input = d.join("in.png");
    let mut e = png::Encoder::new(std::io::BufWriter::new(std::fs::File::create(&input).unwrap()), w as u32, h as u32);
    e.set_color(png::ColorType::Rgb);
    e.write_header().unwrap().write_image_data(&rgb).unwrap();
    let want = Model::from_parts("unet", &param, &bin).unwrap().reference_image(w, h, &rgb, None, true).unwrap();
    for (budget, backend) in [("48M", "cpu"), ("1G", "cpu"), ("64M", "auto")] {
        let out = d.join(format!("out-{budget}-{backend}.png"));
        let o = gs(&[
            "upscale",
            s(&input),
            s(&out),
            "--model",
            s(&d.join("unet.param")),
            "--scale",
            "2",
            "--max-memory",
            budget,
            "--backend",
            backend,
            "--threads",
            "2",
        ]);
        ok(&o);
        let (ow, oh, got) = read_png(&out);
        assert_eq!((ow, oh), (2 * w, 2 * h));
        assert!(got == want, "{budget} {backend}: bytes differ from the whole image's");
    }
}

/// What the loader refuses in these layers, with the reason.
#[test]
fn unet_layers_refuse_what_they_do_not_support() {
    let (param, bin) = unet_model(11);
    for (from, to, why) in [
        ("0=8 1=2 3=2 5=1", "0=8 1=2 3=2 4=1 5=1", "padding"),
        ("-23311=2,1,2", "-23311=2,0,2", "axis"),
        ("0=1 4=1", "0=0 4=1", "global average"),
        ("BinaryOp se 2 1 c1 k d 0=2", "BinaryOp se 2 1 c1 k d 0=0", "SE block"),
    ] {
        let p = param.replacen(from, to, 1);
        let e = Model::from_parts("hostile", &p, &bin).unwrap_err();
        assert!(e.contains(why), "{from} -> {to}: {e}");
    }
}
