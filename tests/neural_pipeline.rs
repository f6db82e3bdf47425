//! The neural stage in the pipeline: a model's passes, then the resampler, streamed through
//! the stores and tiles. Byte-identical whatever the tiles, budget and threads; the same bytes
//! as the engine on the whole image; chaining equal to the two stages run apart; alpha, grey
//! and 16-bit handled as documented (src/neural/stage.rs).
use crate::util::*;
use gigascale::{Channels, Depth, Event, Filter, Layout, Model, Options, Size};
use std::sync::Arc;

fn model(name: &str) -> Arc<Model> {
    Arc::new(Model::builtin(name).unwrap())
}

fn opts(m: &Arc<Model>, size: Size) -> Options {
    let mut o = opts_scale(1.0, 1.0, Filter::Lanczos3);
    o.size = size;
    o.model = Some(m.clone());
    o
}

fn scale(s: f64) -> Size {
    Size::Scale { x: s, y: s }
}

/// Runs in memory; returns the output and the tile edge of each model pass.
fn run_tiles(img: &Img, o: &Options) -> (Img, Vec<u32>) {
    let mut sink = MemSink::default();
    let mut tiles = Vec::new();
    let (mut done, mut total) = (0, 0);
    let rep = gigascale::run(Box::new(img.source()), &mut sink, o, &mut |e| match e {
        Event::NeuralStart { tile, .. } => tiles.push(*tile),
        Event::Neural { done: d, total: t, .. } => (done, total) = (*d, *t),
        _ => {}
    })
    .unwrap();
    assert!(total > 0 && done == total, "the model's progress ended at {done} of {total} tiles");
    (Img::from_le(rep.output.0, rep.output.1, img.layout, &sink.pixels), tiles)
}

fn rgb(w: u32, h: u32, seed: u64) -> Img {
    random_img(&mut Rng(seed), w, h, Layout::new(Channels::Rgb, Depth::U8))
}

/// Runs in memory; the output and each model pass's tile edge and planned memory.
fn run_planned(img: &Img, o: &Options) -> (Img, Vec<(u32, u64)>) {
    let mut sink = MemSink::default();
    let mut passes = Vec::new();
    let rep = gigascale::run(Box::new(img.source()), &mut sink, o, &mut |e| {
        if let Event::NeuralStart { tile, planned_memory, .. } = e {
            passes.push((*tile, *planned_memory));
        }
    })
    .unwrap();
    (Img::from_le(rep.output.0, rep.output.1, img.layout, &sink.pixels), passes)
}

#[test]
fn every_tile_budget_and_thread_count_gives_the_same_bytes() {
    let img = rgb(70, 52, 1);
    for name in ["photo", "anime"] {
        let m = model(name);
        let mut o = opts(&m, scale(m.scale() as f64 * 0.8));
        o.threads = 2;
        let (want, passes) = run_planned(&img, &o);
        assert!(passes[0].0 >= 70, "{name}: one tile with a large budget, got {passes:?}");
        // The least budget the library names runs 16 px tiles (on any thread count); what
        // it holds beyond the pass's planned memory is the planner's slack.
        let mut slack = 0;
        for threads in [1, 3, 2] {
            o.threads = threads;
            o.limits.max_memory = least_model_budget(&img, &o, false);
            let (got, passes) = run_planned(&img, &o);
            assert_eq!(passes[0].0, 16, "{name}: the least budget {}", o.limits.max_memory);
            assert!(got.data == want.data, "{name}: 16 px tiles, {threads} threads: bytes differ");
            slack = o.limits.max_memory - passes[0].1;
        }
        // Budgets that force ever smaller tiles: a byte less than the last one's needs.
        let mut seen = Vec::new();
        let mut last = passes[0];
        o.tile = 32;
        while last.0 > 16 {
            o.limits.max_memory = last.1 + slack - 1;
            let (got, passes) = run_planned(&img, &o);
            assert!(passes[0].0 < last.0, "{name}: budget {} should cut tiles below {}", last.1, last.0);
            assert!(got.data == want.data, "{name}: tiles {passes:?}: bytes differ");
            seen.push(passes[0].0);
            last = passes[0];
        }
        assert!(seen.len() >= 3, "{name}: the budgets gave tiles {seen:?}");
    }
}

#[test]
fn the_pipeline_gives_the_engine_s_whole_image_result() {
    let img = rgb(21, 15, 2);
    let bytes: Vec<u8> = img.data.iter().map(|&v| v as u8).collect();
    for name in ["photo", "anime"] {
        let m = model(name);
        let (got, _) = run_tiles(&img, &opts(&m, scale(m.scale() as f64)));
        let want = m.reference_image(21, 15, &bytes, None, true).unwrap();
        assert!(got.data.iter().map(|&v| v as u8).eq(want.iter().copied()), "{name}");
    }
}

#[test]
fn chaining_equals_the_two_stages_run_apart_up_and_down() {
    let img = rgb(23, 17, 3);
    for (name, size, (w, h)) in [
        ("anime", scale(3.0), (69, 51)),
        ("photo", Size::Dimensions { width: Some(30), height: None }, (30, 22)),
        ("photo", scale(5.5), (127, 94)),
    ] {
        let m = model(name);
        let (got, _) = run_tiles(&img, &opts(&m, size));
        assert_eq!((got.w, got.h), (w, h), "{name}");
        let (mid, _) = run_tiles(&img, &opts(&m, scale(m.scale() as f64)));
        let mut plain = opts_scale(1.0, 1.0, Filter::Lanczos3);
        plain.size = Size::Dimensions { width: Some(w), height: Some(h) };
        let apart = run_mem(&mid, &plain).unwrap();
        assert!(got.data == apart.data, "{name} -> {w}x{h}: differs from the model, then the resampler");
    }
}

#[test]
fn two_passes_equal_one_pass_run_twice() {
    let img = rgb(13, 11, 4);
    let m = model("photo");
    let mut o = opts(&m, scale(4.0));
    o.model_passes = 2;
    let (twice, tiles) = run_tiles(&img, &o);
    assert_eq!(tiles.len(), 2);
    let (once, _) = run_tiles(&img, &opts(&m, scale(2.0)));
    let (again, _) = run_tiles(&once, &opts(&m, scale(2.0)));
    assert!(twice.data == again.data && (twice.w, twice.h) == (52, 44));
}

#[test]
fn alpha_is_enlarged_by_the_bicubic_resampler_and_colour_by_the_model() {
    let rgba = random_img(&mut Rng(5), 19, 14, Layout::new(Channels::Rgba, Depth::U8));
    let rgb = Img {
        layout: Layout::new(Channels::Rgb, Depth::U8),
        data: rgba.data.chunks(4).flat_map(|p| p[..3].to_vec()).collect(),
        ..rgba.clone()
    };
    let m = model("photo");
    let (got, _) = run_tiles(&rgba, &opts(&m, scale(2.0)));
    let (colour, _) = run_tiles(&rgb, &opts(&m, scale(2.0)));
    let alpha = run_mem(&rgba, &opts_scale(2.0, 2.0, Filter::Bicubic)).unwrap();
    for (i, px) in got.data.chunks(4).enumerate() {
        assert_eq!(px[3], alpha.data[i * 4 + 3], "pixel {i}: alpha");
        // The resampler leaves no colour where nothing is visible.
        let want =
            if px[3] == 0 { [0; 3] } else { [colour.data[i * 3], colour.data[i * 3 + 1], colour.data[i * 3 + 2]] };
        assert_eq!(px[..3], want, "pixel {i}: colour");
    }
    assert!(got.data.chunks(4).any(|p| p[3] == 0) && got.data.chunks(4).any(|p| p[3] == 255));
}

#[test]
fn grey_is_the_rounded_mean_of_the_model_on_grey_as_rgb() {
    let grey = random_img(&mut Rng(6), 17, 12, Layout::new(Channels::Gray, Depth::U8));
    let rgb = Img {
        layout: Layout::new(Channels::Rgb, Depth::U8),
        data: grey.data.iter().flat_map(|&v| [v, v, v]).collect(),
        ..grey.clone()
    };
    let m = model("anime");
    let (got, _) = run_tiles(&grey, &opts(&m, scale(4.0)));
    let (colour, _) = run_tiles(&rgb, &opts(&m, scale(4.0)));
    assert_eq!(got.data.len() * 3, colour.data.len());
    for (g, c) in got.data.iter().zip(colour.data.chunks(3)) {
        assert_eq!(*g, (c[0] + c[1] + c[2] + 1) / 3);
    }
}

#[test]
fn sixteen_bit_samples_keep_their_depth_and_follow_the_eight_bit_result() {
    let eight = rgb(15, 13, 7);
    let sixteen = Img {
        layout: Layout::new(Channels::Rgb, Depth::U16),
        data: eight.data.iter().map(|&v| v * 257).collect(),
        ..eight.clone()
    };
    let m = model("photo");
    let (a, _) = run_tiles(&eight, &opts(&m, scale(2.0)));
    let (b, _) = run_tiles(&sixteen, &opts(&m, scale(2.0)));
    // The network sees the same 14-bit inputs; only the final rounding differs.
    let worst = a.data.iter().zip(&b.data).map(|(&x, &y)| (x as i64 * 257 - y as i64).abs()).max().unwrap();
    assert!(worst <= 129, "16-bit output strays {worst} from 257 x the 8-bit output");
    assert!(b.data.iter().any(|&v| v % 257 != 0), "16-bit output is only 8-bit values scaled");
}

#[test]
fn model_passes_are_validated() {
    let m = model("photo");
    let mut o = opts(&m, scale(2.0));
    o.model_passes = 0;
    assert!(o.validate().is_err());
    o.model = None;
    o.model_passes = 2;
    let e = o.validate().unwrap_err().to_string();
    assert!(e.contains("--model-passes needs --model"), "{e}");
}
