//! Every filter, layout, depth and factor: within 1 LSB of the independent f64 reference.
use crate::util::*;
use gigascale::{Depth, Filter, Intermediate, Layout};

/// Compares `got` with the f64 reference. Plain channels and alpha: |Δ| ≤ 1. Colour of
/// layouts with alpha is compared in the premultiplied domain (|Δ| · α ≤ 1 LSB), because
/// unpremultiplying divides any rounding by α and colour under near-zero alpha is undefined.
#[allow(clippy::needless_range_loop)]
fn check(img: &Img, got: &Img, f: Filter, label: &str) -> (u32, usize) {
    let (want, alpha) = reference(img, got.w, got.h, f);
    let ch = img.ch();
    let has_alpha = img.layout.channels.has_alpha();
    let mut worst = 0u32;
    let mut off = 0usize;
    for p in 0..(got.w * got.h) as usize {
        for c in 0..ch {
            let i = p * ch + c;
            let d = (got.data[i] as i64 - want.data[i] as i64).unsigned_abs() as f64;
            let colour = has_alpha && c + 1 < ch;
            let err = if colour { d * alpha[p] } else { d };
            if d > 1.0 {
                off += 1;
            }
            assert!(
                err <= 1.0 + 1e-9,
                "{label}: pixel {} ({},{}) channel {c}: got {} want {} (alpha {:.4})",
                p,
                p % got.w as usize,
                p / got.w as usize,
                got.data[i],
                want.data[i],
                alpha[p]
            );
            worst = worst.max(d as u32);
        }
    }
    (worst, off)
}

#[test]
fn within_one_lsb_of_f64_reference() {
    let factors: [(f64, f64, u32, u32); 6] = [
        (15.0, 15.0, 9, 7),
        (3.7, 3.7, 23, 17),
        (1.5, 1.5, 31, 26),
        (0.3, 0.3, 70, 53),
        (2.5, 0.7, 21, 40),
        (0.45, 6.0, 50, 9),
    ];
    let mut rng = Rng(42);
    let mut cases = 0;
    let mut colour_off = 0;
    for f in Filter::ALL {
        for depth in [Depth::U8, Depth::U16] {
            for channels in LAYOUTS {
                for &(sx, sy, w, h) in &factors {
                    let layout = Layout::new(channels, depth);
                    let img = random_img(&mut rng, w, h, layout);
                    let got = run_mem(&img, &opts_scale(sx, sy, f)).unwrap();
                    let label = format!("{f:?} {channels:?} {depth:?} x{sx}/{sy} {w}x{h}");
                    let (_, off) = check(&img, &got, f, &label);
                    if channels.has_alpha() {
                        colour_off += off;
                    } else {
                        assert_eq!(off, 0, "{label}");
                    }
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 5 * 2 * 4 * 6);
    eprintln!(
        "{cases} cases; colour samples under low alpha off by more than 1 (within 1 premultiplied): {colour_off}"
    );
}

#[test]
fn nearest_and_identity_are_exact() {
    let mut rng = Rng(7);
    for depth in [Depth::U8, Depth::U16] {
        for channels in LAYOUTS {
            let img = random_img(&mut rng, 17, 13, Layout::new(channels, depth));
            for f in Filter::ALL {
                // Scale 1 with an interpolating filter (or any point filter) returns the input.
                if matches!(f, Filter::Mitchell) {
                    continue;
                }
                let got = run_mem(&img, &opts_scale(1.0, 1.0, f)).unwrap();
                let (want, _) = reference(&img, 17, 13, f);
                for (i, (&g, &w)) in got.data.iter().zip(&want.data).enumerate() {
                    let p = i / img.ch();
                    let a = if channels.has_alpha() { img.data[p * img.ch() + img.ch() - 1] } else { 1 };
                    if a != 0 {
                        assert_eq!(g, img.data[i], "{f:?} {channels:?} {depth:?} sample {i}");
                    }
                    assert_eq!(g, w, "{f:?} {channels:?} {depth:?} sample {i} vs reference");
                }
            }
        }
    }
}

/// `--precision rounded` rounds the intermediate to whole steps (vertical pass first), so a
/// sample may move by up to half a step times the horizontal weights' absolute sum on top of
/// the final rounding: |got − exact| ≤ 0.5 + 0.5·Σ|wx| (+0.1 for the 14/22-bit weights),
/// checked against the f64 filter output; colour under alpha in the premultiplied domain.
#[test]
fn rounded_intermediate_stays_within_its_bound() {
    let factors: [(f64, f64, u32, u32); 4] =
        [(15.0, 15.0, 9, 7), (3.7, 3.7, 23, 17), (0.3, 0.3, 70, 53), (2.5, 0.7, 21, 40)];
    let mut rng = Rng(43);
    let (mut worst, mut changed, mut total) = (0f64, 0usize, 0usize);
    for f in Filter::ALL {
        for depth in [Depth::U8, Depth::U16] {
            for channels in LAYOUTS {
                for &(sx, sy, w, h) in &factors {
                    let layout = Layout::new(channels, depth);
                    let img = random_img(&mut rng, w, h, layout);
                    let mut o = opts_scale(sx, sy, f);
                    let exact = run_mem(&img, &o).unwrap();
                    o.intermediate = Intermediate::Rounded;
                    let got = run_mem(&img, &o).unwrap();
                    let real = reference_real(&img, got.w, got.h, f);
                    let sum_x = ref_weights(f, img.w, got.w)
                        .iter()
                        .map(|(_, w)| w.iter().map(|v| v.abs()).sum::<f64>())
                        .fold(0f64, f64::max);
                    let bound = 0.5 + 0.5 * sum_x + 0.1;
                    let (ch, d) = (img.ch(), img.max() as f64);
                    let alpha = channels.has_alpha();
                    for (p, v) in real.iter().enumerate() {
                        let a = if alpha { v[ch - 1].clamp(0.0, 1.0) } else { 1.0 };
                        for c in 0..ch {
                            let g = got.data[p * ch + c] as f64;
                            let err = if alpha && c + 1 < ch {
                                // unpremultiplied colour weighted by alpha, less what the
                                // alpha's own (rounded) error moves it by
                                if v[ch - 1] <= 0.0 {
                                    continue;
                                }
                                let want = (v[c] / v[ch - 1] * d).clamp(0.0, d);
                                (g - want).abs() * a - g / d * bound
                            } else {
                                (g - (v[c] * d).clamp(0.0, d)).abs()
                            };
                            assert!(err <= bound, "{f:?} {channels:?} {depth:?} x{sx}/{sy}: pixel {p} ch {c}: got {g}, exact {:.3}, error {err:.3} > {bound:.3} alpha {a:.4} exact-mode {}", v[c] * d, exact.data[p * ch + c]);
                            worst = worst.max(err);
                        }
                    }
                    changed += got.data.iter().zip(&exact.data).filter(|(a, b)| a != b).count();
                    total += got.data.len();
                }
            }
        }
    }
    assert!(changed > 0, "the rounded intermediate changed nothing");
    eprintln!(
        "rounded intermediate: worst error {worst:.3} steps; {changed} of {total} samples differ from exact mode"
    );
}
