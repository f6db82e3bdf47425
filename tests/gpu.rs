//! The GPU backend reproduces the CPU reference byte for byte. Runs on any adapter with 64-bit
//! integer shaders (in CI: Mesa's lavapipe); without one each test prints why and returns, or
//! fails when `GIGASCALE_REQUIRE_GPU=1` (as `.ci/run` sets).
#![cfg(feature = "gpu")]
use crate::util::*;
use gigascale::{Backend, Channels, Depth, Filter, Intermediate, Layout};

/// Whether a usable adapter exists. Without one the tests skip, saying so — unless
/// `GIGASCALE_REQUIRE_GPU=1` (set by `.ci/run`, where lavapipe must be there), which fails them.
fn gpu_available() -> bool {
    let list = gigascale::gpu::list_adapters();
    let ok = list.iter().any(|a| a.usable.is_ok());
    if !ok && std::env::var("GIGASCALE_REQUIRE_GPU").is_ok_and(|v| v == "1") {
        panic!(
            "GIGASCALE_REQUIRE_GPU=1 but no GPU adapter with SHADER_INT64 ({:?}); install mesa-vulkan-drivers",
            list.iter().map(|a| (&a.name, &a.usable)).collect::<Vec<_>>()
        );
    }
    if !ok {
        eprintln!(
            "SKIPPED: no GPU adapter with SHADER_INT64 ({} adapters: {:?})",
            list.len(),
            list.iter().map(|a| &a.name).collect::<Vec<_>>()
        );
    }
    ok
}

fn with_backend(mut o: gigascale::Options, b: Backend) -> gigascale::Options {
    o.backend = b;
    o
}

const MODES: [Intermediate; 2] = [Intermediate::Exact, Intermediate::Rounded];

/// The budget of a network's run meant to be one tile: a software adapter's pass is planned in
/// what the budget leaves beside what the process holds (lavapipe's driver alone about 140 MB),
/// and a test running beside it in the same process once left the default 256 MiB too little
/// for one tile.
const WHOLE_BUDGET: u64 = 1 << 30;

#[test]
fn gpu_matches_cpu_for_every_filter_layout_depth_and_factor() {
    if !gpu_available() {
        return;
    }
    let factors: [(f64, f64, u32, u32); 5] =
        [(15.0, 15.0, 7, 5), (3.7, 3.7, 19, 13), (1.5, 1.5, 31, 22), (0.3, 0.3, 70, 45), (2.5, 0.7, 21, 40)];
    let mut rng = Rng(99);
    let mut cases = 0;
    for f in Filter::ALL {
        for depth in [Depth::U8, Depth::U16] {
            for channels in LAYOUTS {
                for (&(sx, sy, w, h), mode) in factors.iter().flat_map(|f| MODES.map(|m| (f, m))) {
                    let img = random_img(&mut rng, w, h, Layout::new(channels, depth));
                    let mut o = opts_scale(sx, sy, f);
                    o.tile = 64;
                    o.intermediate = mode;
                    let cpu = run_mem(&img, &with_backend(o.clone(), Backend::Cpu)).unwrap();
                    let gpu = run_mem(&img, &with_backend(o, Backend::Gpu)).unwrap();
                    assert!(
                        cpu.data == gpu.data,
                        "{f:?} {mode:?} {channels:?} {depth:?} x{sx}/{sy}: GPU differs from CPU"
                    );
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 400);
}

#[test]
fn gpu_is_tile_invariant() {
    if !gpu_available() {
        return;
    }
    let mut rng = Rng(5);
    for (channels, depth, sx, mode) in [
        (gigascale::Channels::Rgb, Depth::U8, 15.0, Intermediate::Exact),
        (gigascale::Channels::Rgba, Depth::U16, 0.3, Intermediate::Exact),
        (gigascale::Channels::GrayAlpha, Depth::U8, 2.7, Intermediate::Exact),
        (gigascale::Channels::Rgb, Depth::U8, 15.0, Intermediate::Rounded),
        (gigascale::Channels::Rgba, Depth::U16, 0.3, Intermediate::Rounded),
    ] {
        let img = random_img(&mut rng, 41, 37, Layout::new(channels, depth));
        let mut base = opts_scale(sx, sx, Filter::Lanczos3);
        base.intermediate = mode;
        let want = run_mem(&img, &with_backend(base.clone(), Backend::Cpu)).unwrap();
        for tile in [16, 64, 256, 1024] {
            let mut o = with_backend(base.clone(), Backend::Gpu);
            o.tile = tile;
            let got = run_mem(&img, &o).unwrap();
            assert!(got.data == want.data, "{channels:?} {depth:?} {mode:?} x{sx} tile {tile}");
        }
    }
}

#[test]
fn gpu_failure_mid_job_falls_back_to_cpu() {
    if !gpu_available() {
        return;
    }
    let img = random_img(&mut Rng(8), 60, 40, Layout::new(gigascale::Channels::Rgb, Depth::U8));
    let mut o = with_backend(opts_scale(6.0, 6.0, Filter::Bicubic), Backend::Gpu);
    o.tile = 32;
    let want = run_mem(&img, &with_backend(o.clone(), Backend::Cpu)).unwrap();
    o.hooks.gpu_fail_after = Some(7);
    let mut warned = false;
    let mut sink = MemSink::default();
    gigascale::run(Box::new(img.source()), &mut sink, &o, &mut |e| {
        if let gigascale::Event::Warning { message } = e {
            warned |= message.contains("CPU");
        }
    })
    .unwrap();
    assert!(warned, "no fallback warning");
    let got = Img::from_le(want.w, want.h, want.layout, &sink.pixels);
    assert!(got.data == want.data, "output after fallback differs");
}

#[test]
fn fifteen_x_under_small_gpu_and_host_budgets() {
    if !gpu_available() {
        return;
    }
    // 15x of a 120x80 image (1800x1200 out) with 64M for the host and for the device.
    let img = random_img(&mut Rng(2), 120, 80, Layout::new(gigascale::Channels::Rgb, Depth::U8));
    let mut o = with_backend(opts_scale(15.0, 15.0, Filter::Lanczos3), Backend::Gpu);
    o.limits.max_memory = 64 << 20;
    o.limits.gpu_memory = Some(64 << 20);
    let gpu = run_mem(&img, &o).unwrap();
    let cpu = run_mem(&img, &with_backend(o.clone(), Backend::Cpu)).unwrap();
    assert!(gpu.data == cpu.data);
    // An adapter whose largest buffer and binding are 256 KiB (a test hook): runs of tiles
    // are cut shorter until every slot buffer fits, never an error, and the bytes stay.
    o.hooks.gpu_max_buffer = Some(256 << 10);
    assert!(run_mem(&img, &o).unwrap().data == cpu.data, "256 KiB buffers: GPU differs from CPU");
}

/// `--precision f16`: the intermediate keeps 11 significant bits and the vertical pass sums
/// |Σw| < 2 of them, so the output stays within 2 · 2^-11 of full scale before rounding:
/// 1 LSB at 8 bits, 64 LSB at 16 bits (colour under alpha: in the premultiplied domain).
#[test]
fn f16_intermediate_stays_within_its_bound() {
    if !gpu_available() {
        return;
    }
    if !gigascale::gpu::list_adapters().iter().any(|a| a.usable.is_ok() && a.shader_f16) {
        eprintln!("SKIPPED: no adapter with SHADER_F16");
        return;
    }
    let mut rng = Rng(16);
    let mut worst = [0u32; 2];
    for depth in [Depth::U8, Depth::U16] {
        let bound = if depth == Depth::U8 { 1.0 } else { 64.0 };
        for channels in LAYOUTS {
            for (f, s) in [(Filter::Lanczos3, 15.0), (Filter::Bicubic, 0.3), (Filter::Mitchell, 2.5)] {
                let (w, h) = if s < 1.0 { (60, 50) } else { (13, 11) };
                let img = random_img(&mut rng, w, h, Layout::new(channels, depth));
                let mut o = opts_scale(s, s, f);
                o.tile = 64;
                let exact = run_mem(&img, &with_backend(o.clone(), Backend::Cpu)).unwrap();
                o.gpu_f16 = true;
                let half = run_mem(&img, &with_backend(o, Backend::Gpu)).unwrap();
                let ch = img.ch();
                let max = img.max() as f64;
                for (i, (&a, &b)) in exact.data.iter().zip(&half.data).enumerate() {
                    let d = (a as i64 - b as i64).unsigned_abs() as f64;
                    let c = i % ch;
                    let weight =
                        if channels.has_alpha() && c + 1 < ch { exact.data[i - c + ch - 1] as f64 / max } else { 1.0 };
                    assert!(d * weight <= bound, "{f:?} {channels:?} {depth:?} x{s}: sample {i}: exact {a} f16 {b}");
                    worst[(depth == Depth::U16) as usize] =
                        worst[(depth == Depth::U16) as usize].max((d * weight) as u32);
                }
            }
        }
    }
    eprintln!("f16 worst deviation: {} LSB (8-bit), {} LSB (16-bit)", worst[0], worst[1]);
}

#[test]
fn gpu_alone_computes_every_tile_and_shared_mode_matches_cpu() {
    if !gpu_available() {
        return;
    }
    let img = random_img(&mut Rng(77), 60, 45, Layout::new(gigascale::Channels::Rgb, Depth::U8));
    let mut o = opts_scale(9.0, 9.0, Filter::Lanczos3);
    o.tile = 64;
    o.threads = 3;
    let want = run_mem(&img, &with_backend(o.clone(), Backend::Cpu)).unwrap();
    let (alone, rep) = run_mem_report(&img, &with_backend(o.clone(), Backend::Gpu)).unwrap();
    assert!(alone.data == want.data);
    let tiles = 540u64.div_ceil(64) * 405u64.div_ceil(64);
    assert_eq!(rep.stages.gpu_tiles, tiles, "--backend gpu: the GPU computes every tile");
    let mut shared = with_backend(o, Backend::Gpu);
    shared.hooks.gpu_share = true;
    let (got, rep) = run_mem_report(&img, &shared).unwrap();
    assert!(got.data == want.data, "shared GPU+CPU output differs from the CPU's");
    assert!(rep.backend.starts_with("gpu+cpu"), "{}", rep.backend);
    eprintln!("shared mode: {} of {tiles} tiles on the GPU", rep.stages.gpu_tiles);
}

/// f16 tiles are the GPU's alone: a GPU failure mid-job fails the job (no CPU tiles mixed in),
/// and two runs on one device give the same bytes.
#[test]
fn f16_never_mixes_gpu_and_cpu_tiles() {
    if !gpu_available() {
        return;
    }
    if !gigascale::gpu::list_adapters().iter().any(|a| a.usable.is_ok() && a.shader_f16) {
        eprintln!("SKIPPED: no adapter with SHADER_F16");
        return;
    }
    let img = random_img(&mut Rng(21), 60, 40, Layout::new(gigascale::Channels::Rgb, Depth::U8));
    let mut o = with_backend(opts_scale(6.0, 6.0, Filter::Bicubic), Backend::Gpu);
    o.tile = 32;
    o.gpu_f16 = true;
    let a = run_mem(&img, &o).unwrap();
    let b = run_mem(&img, &o).unwrap();
    assert!(a.data == b.data, "two f16 runs on one device differ");
    o.hooks.gpu_fail_after = Some(7);
    let e = run_mem(&img, &o).expect_err("an f16 job must fail when the GPU fails");
    assert!(e.to_string().contains("f16"), "{e}");
}

/// The neural engine's convolutions on the GPU (shaders generated per layer) give the CPU's
/// bytes: both models, RGB and RGBA, grey and 16-bit, chained with the resampler, tiled (tiny inputs: lavapipe
/// runs these networks at about 0.5 GFLOP/s).
#[test]
fn neural_gpu_matches_cpu_byte_for_byte() {
    if !gpu_available() {
        return;
    }
    // (7 x 5: an odd number of input samples, which go up two to a word.)
    for (name, w, h, scale) in [("photo", 16, 12, 3.0), ("anime", 8, 6, 3.5), ("anime", 7, 5, 2.0)] {
        let m = std::sync::Arc::new(gigascale::Model::builtin(name).unwrap());
        for ch in [gigascale::Channels::Rgb, gigascale::Channels::Rgba] {
            let img = random_img(&mut Rng(11), w, h, Layout::new(ch, Depth::U8));
            let mut o = opts_scale(scale, scale, Filter::Lanczos3);
            o.model = Some(m.clone());
            let cpu = run_mem(&img, &with_backend(o.clone(), Backend::Cpu)).unwrap();
            let gpu = run_mem(&img, &with_backend(o, Backend::Gpu)).unwrap();
            assert!(cpu.data == gpu.data, "{name} {ch:?}: GPU differs from CPU");
        }
    }
    // The device converts the network's output to samples itself: grey (the mean of three),
    // 16-bit, and grey with alpha.
    let photo = std::sync::Arc::new(gigascale::Model::builtin("photo").unwrap());
    let layouts = [(Channels::Gray, Depth::U16), (Channels::Rgb, Depth::U16), (Channels::GrayAlpha, Depth::U8)];
    for (ch, depth) in layouts {
        let img = random_img(&mut Rng(13), 10, 8, Layout::new(ch, depth));
        let mut o = opts_scale(2.0, 2.0, Filter::Lanczos3);
        o.model = Some(photo.clone());
        let cpu = run_mem(&img, &with_backend(o.clone(), Backend::Cpu)).unwrap();
        let gpu = run_mem(&img, &with_backend(o, Backend::Gpu)).unwrap();
        assert!(cpu.data == gpu.data, "photo {ch:?} {depth:?}: GPU differs from CPU");
    }
    // Interior tiles (windows that do not touch the image's border) on the device: a host
    // budget, or a device budget (`--gpu-memory`), that allows 16 px tiles only.
    let img = random_img(&mut Rng(12), 40, 30, Layout::new(gigascale::Channels::Rgb, Depth::U8));
    let mut o = opts_scale(2.0, 2.0, Filter::Lanczos3);
    o.model = Some(std::sync::Arc::new(gigascale::Model::builtin("photo").unwrap()));
    let cpu = run_mem(&img, &with_backend(o.clone(), Backend::Cpu)).unwrap();
    // (The least budgets, as the library's refusals of smaller ones name them.)
    let gpu = with_backend(o.clone(), Backend::Gpu);
    let (least_host, least_device) = (least_model_budget(&img, &gpu, false), least_model_budget(&img, &gpu, true));
    for (host, device) in [(least_host, None), (o.limits.max_memory, Some(least_device))] {
        let mut tiles = 0;
        let mut sink = MemSink::default();
        let mut gpu_opts = with_backend(o.clone(), Backend::Gpu);
        (gpu_opts.limits.max_memory, gpu_opts.limits.gpu_memory) = (host, device);
        gigascale::run(Box::new(img.source()), &mut sink, &gpu_opts, &mut |e| {
            if let gigascale::Event::NeuralStart { tiles: t, device, .. } = e {
                assert!(device.starts_with("gpu"), "{device}");
                tiles = *t;
            }
        })
        .unwrap();
        assert!(tiles > 4, "the budget should have cut the model's pass into tiles ({tiles}, {device:?})");
        let got = Img::from_le(80, 60, img.layout, &sink.pixels);
        assert!(cpu.data == got.data, "photo, tiled ({device:?}): GPU differs from CPU");
    }
    // Other cuts of the convolution work (a benchmark knob) give the same bytes too, and so
    // does asking for the tensor cores (`GIGASCALE_GPU_TENSOR=1`): adapters without
    // cooperative matrices (lavapipe) keep the plain shaders; the H200's run is recorded in
    // docs/results/2026-12-03-h200-tensor.txt.
    let input = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goldens/neural/chelsea-16x12.png");
    let dir = std::env::temp_dir().join(format!("gigascale-neural-gpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |backend: &str, (key, value): (&str, &str), out: &str| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_gigascale"))
            .env(key, value)
            .args(["upscale", "--model", "photo", "--scale", "2", "--backend", backend, "-q"])
            .arg(&input)
            .arg(dir.join(out))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(dir.join(out)).unwrap()
    };
    let want = run("cpu", ("GIGASCALE_GPU_CONV", ""), "cpu.png");
    assert!(run("gpu", ("GIGASCALE_GPU_CONV", "2x8x32"), "other.png") == want, "GIGASCALE_GPU_CONV=2x8x32");
    assert!(run("gpu", ("GIGASCALE_GPU_TENSOR", "1"), "tensor.png") == want, "GIGASCALE_GPU_TENSOR=1");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An adapter whose largest buffer and binding are 2 MiB (lowered by a test hook, as a smaller
/// GPU's are) and a model whose whole-image tile needs a 5.8 MB blob: without `--gpu-memory`
/// the pass cuts its tiles to fit the device instead of failing to bind the buffer, and gives
/// the CPU's bytes. (Without the cut, binding the blob fails: checked by the second run.)
#[test]
fn network_tiles_fit_the_adapters_buffers() {
    if !gpu_available() {
        return;
    }
    let (param, bin) = wide_model(256, 5);
    let model = std::sync::Arc::new(gigascale::Model::from_parts("wide", &param, &bin).unwrap());
    let img = random_img(&mut Rng(21), 64, 48, Layout::new(Channels::Rgb, Depth::U8));
    let mut o = opts_scale(2.0, 2.0, Filter::Lanczos3);
    o.model = Some(model);
    let cpu = run_mem(&img, &with_backend(o.clone(), Backend::Cpu)).unwrap();
    let mut small = with_backend(o, Backend::Gpu);
    small.hooks.gpu_max_buffer = Some(2 << 20);
    let (mut tiles, mut sink) = (0, MemSink::default());
    gigascale::run(Box::new(img.source()), &mut sink, &small, &mut |e| {
        if let gigascale::Event::NeuralStart { tiles: t, .. } = e {
            tiles = *t;
        }
    })
    .unwrap();
    assert!(tiles > 1, "a 2 MiB buffer limit should have cut the model's pass into tiles ({tiles})");
    assert!(cpu.data == Img::from_le(128, 96, img.layout, &sink.pixels).data, "2 MiB buffers: GPU differs from CPU");
}

/// An x4 network whose enlarging tail is 16 times its trunk (as realesrgan-x4plus's is) on an
/// adapter whose largest buffer is 1 MiB: the whole image is one tile (its tail's 1.6 MB
/// blobs could not be bound), the tail runs in strips of the cut blob, and the bytes are the
/// CPU's; under a 12 MiB budget too (less than the process holds, so the device's own limits
/// cut the pass). The one-tile run has [`WHOLE_BUDGET`].
#[test]
fn an_enlarging_tail_runs_in_strips_with_the_cpus_bytes() {
    if !gpu_available() {
        return;
    }
    let (param, bin) = x4_tail_model(51);
    let model = std::sync::Arc::new(gigascale::Model::from_parts("x4-tail", &param, &bin).unwrap());
    let img = random_img(&mut Rng(53), 64, 48, Layout::new(Channels::Rgb, Depth::U8));
    let mut o = opts_scale(4.0, 4.0, Filter::Lanczos3);
    o.model = Some(model);
    let cpu = run_mem(&img, &with_backend(o.clone(), Backend::Cpu)).unwrap();
    for max_memory in [WHOLE_BUDGET, 12 << 20] {
        let mut small = with_backend(o.clone(), Backend::Gpu);
        small.hooks.gpu_max_buffer = Some(1 << 20);
        small.limits.max_memory = max_memory;
        let (mut tiles, mut sink) = (0, MemSink::default());
        gigascale::run(Box::new(img.source()), &mut sink, &small, &mut |e| {
            if let gigascale::Event::NeuralStart { tiles: t, .. } = e {
                tiles = *t;
            }
        })
        .unwrap();
        if max_memory == WHOLE_BUDGET {
            assert_eq!(tiles, 1, "the trunk fits whole: one tile, its tail in strips");
        }
        let gpu = Img::from_le(256, 192, img.layout, &sink.pixels);
        assert!(cpu.data == gpu.data, "{max_memory} B budget, {tiles} tiles: GPU differs from CPU");
    }
}

/// The bicubic Interp of the animevideov3 x3 file on the device: the CPU's bytes.
#[test]
fn bicubic_interp_on_the_gpu_matches_the_cpu() {
    if !gpu_available() {
        return;
    }
    let d = TempDir::new("interp");
    let m = std::sync::Arc::new(crate::neural::animevideov3(3, &d));
    let img = random_img(&mut Rng(31), 8, 6, Layout::new(Channels::Rgb, Depth::U8));
    let mut o = opts_scale(3.0, 3.0, Filter::Lanczos3);
    o.model = Some(m);
    let cpu = run_mem(&img, &with_backend(o.clone(), Backend::Cpu)).unwrap();
    let gpu = run_mem(&img, &with_backend(o, Backend::Gpu)).unwrap();
    assert!(cpu.data == gpu.data, "animevideov3-x3: GPU differs from CPU");
}

/// Model `m` on a random `w x h` RGB image: the GPU's bytes equal the CPU's, whole (under
/// [`WHOLE_BUDGET`]) and in the tiles of a 12 MiB budget.
fn assert_gpu_matches_cpu(m: gigascale::Model, seed: u64, (w, h): (u32, u32), label: &str) {
    let img = random_img(&mut Rng(seed), w, h, Layout::new(Channels::Rgb, Depth::U8));
    let mut o = opts_scale(2.0, 2.0, Filter::Lanczos3);
    o.model = Some(std::sync::Arc::new(m));
    let cpu = run_mem(&img, &with_backend(o.clone(), Backend::Cpu)).unwrap();
    for max_memory in [WHOLE_BUDGET, 12 << 20] {
        let mut g = with_backend(o.clone(), Backend::Gpu);
        g.limits.max_memory = max_memory;
        assert!(run_mem(&img, &g).unwrap().data == cpu.data, "{label}, {max_memory} B: GPU differs from CPU");
    }
}

/// A channel concatenation (the dense connections of realesrgan-x4plus's RRDB blocks) on the
/// device: the CPU's bytes, whole and in tiles.
#[test]
fn concatenation_on_the_gpu_matches_the_cpu() {
    if !gpu_available() {
        return;
    }
    let (param, bin) = dense_model(9);
    assert_gpu_matches_cpu(gigascale::Model::from_parts("dense", &param, &bin).unwrap(), 41, (48, 40), "concat");
}

/// SPAN's layers (a per-channel affine from MemoryData, Swish and Sigmoid tables, a product of
/// blobs) on the device: the CPU's bytes, whole and in tiles.
#[test]
fn span_layers_on_the_gpu_match_the_cpu() {
    if !gpu_available() {
        return;
    }
    let g = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goldens/neural/span-like.param");
    assert_gpu_matches_cpu(gigascale::Model::load(&g).unwrap(), 43, (40, 36), "span-like");
}

/// Real-CUGAN's layers (space to depth, crops, a SE block whose sums are read back from the
/// device tile by tile) on the device: the CPU's bytes, whole and in tiles.
#[test]
fn unet_layers_on_the_gpu_match_the_cpu() {
    if !gpu_available() {
        return;
    }
    let (param, bin) = unet_model(11);
    assert_gpu_matches_cpu(gigascale::Model::from_parts("unet", &param, &bin).unwrap(), 47, (96, 80), "unet");
}

/// 24-bit activations (`--activation-bits 24`, `src/gpu/neural_wide.rs`) on the device: the
/// CPU's bytes, whole and in tiles, for dense connections and sums (realesrgan-x4plus's RRDB
/// blocks; sums that convolutions feed alone, taken with their finish), a deconvolution's
/// phases (`photo`), an enlarging tail run in strips on an adapter whose largest buffer is
/// 1 MiB, SPAN's affine layers, tables and products, Real-CUGAN's SE blocks and crops, and a
/// bicubic resize (animevideov3-x3).
#[test]
fn wide_activations_on_the_gpu_match_the_cpu() {
    if !gpu_available() {
        return;
    }
    let wide = |m: gigascale::Model| m.with_activation_bits(24).unwrap();
    let (param, bin) = dense_model(9);
    assert_gpu_matches_cpu(wide(gigascale::Model::from_parts("dense", &param, &bin).unwrap()), 41, (48, 40), "dense");
    let (param, bin) = residual_model(13);
    let residual = wide(gigascale::Model::from_parts("residual", &param, &bin).unwrap());
    assert_gpu_matches_cpu(
        residual,
        49,
        (44, 38),
        "residual sums (one, and two in a row) taken with their convolutions' finish",
    );
    assert_gpu_matches_cpu(wide(gigascale::Model::builtin("photo").unwrap()), 45, (40, 30), "photo");
    let (param, bin) = x4_tail_model(51);
    let img = random_img(&mut Rng(53), 64, 48, Layout::new(Channels::Rgb, Depth::U8));
    let mut o = opts_scale(4.0, 4.0, Filter::Lanczos3);
    o.model = Some(std::sync::Arc::new(wide(gigascale::Model::from_parts("x4-tail", &param, &bin).unwrap())));
    let cpu = run_mem(&img, &with_backend(o.clone(), Backend::Cpu)).unwrap();
    let mut small = with_backend(o, Backend::Gpu);
    small.hooks.gpu_max_buffer = Some(1 << 20);
    assert!(run_mem(&img, &small).unwrap().data == cpu.data, "x4 tail, 1 MiB buffers: GPU differs from CPU");
    let g = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goldens/neural/span-like.param");
    assert_gpu_matches_cpu(wide(gigascale::Model::load(&g).unwrap()), 43, (40, 36), "span-like");
    let (param, bin) = unet_model(11);
    assert_gpu_matches_cpu(wide(gigascale::Model::from_parts("unet", &param, &bin).unwrap()), 47, (96, 80), "unet");
    let d = TempDir::new("wide-interp");
    assert_gpu_matches_cpu(wide(crate::neural::animevideov3(3, &d)), 31, (24, 18), "animevideov3-x3");
}

/// Where what the process holds with the GPU driver loaded (lavapipe's driver: about 70 MiB
/// once its adapter is chosen) and the tile stage's plan together pass `--max-memory` and the
/// process's allowance, the job says so; with room for both, or on the CPU, it does not. A GPU's
/// plan keeps room for its driver where the budget holds it.
#[test]
fn a_budget_the_driver_fills_is_warned_about() {
    if !gpu_available() {
        return;
    }
    let img = random_img(&mut Rng(9), 150, 100, Layout::new(gigascale::Channels::Rgb, Depth::U8));
    let anime = std::sync::Arc::new(gigascale::Model::builtin("anime").unwrap());
    let said = |backend: Backend, max_memory: u64, model: bool| {
        let mut o = with_backend(opts_scale(15.0, 15.0, Filter::Bicubic), backend);
        o.limits.max_memory = max_memory;
        if model {
            (o.model, o.size) = (Some(anime.clone()), gigascale::Size::Scale { x: 4.0, y: 4.0 });
        }
        let mut messages = Vec::new();
        let mut sink = MemSink::default();
        gigascale::run(Box::new(img.source()), &mut sink, &o, &mut |e| {
            if let gigascale::Event::Warning { message } = e {
                messages.push(message.clone());
            }
        })
        .unwrap();
        messages.into_iter().filter(|m| m.contains("GPU driver")).collect::<Vec<_>>()
    };
    let warnings = |backend: Backend, max_memory: u64| said(backend, max_memory, false);
    // A model's pass: the process holds the driver and the network's pipelines beside it.
    let pass = said(Backend::Gpu, 32 << 20, true);
    assert!(pass.iter().any(|m| m.contains("network's pipelines") && m.contains("32.0 MiB")), "{pass:?}");
    // A software adapter's buffers are host memory, and the warning counts them.
    // (`--backend gpu` takes a hardware adapter before a software one.)
    let adapters = gigascale::gpu::list_adapters();
    let software = adapters.iter().filter(|a| a.usable.is_ok()).all(|a| a.device_type == "Cpu");
    let counted = pass.iter().any(|m| m.contains("host memory on this adapter"));
    assert_eq!(counted, software, "{pass:?}");
    assert!(said(Backend::Cpu, 32 << 20, true).is_empty(), "no GPU driver on the CPU");
    // The test process holds more than this anyway (and the driver alone about 70 MiB).
    let small = warnings(Backend::Gpu, 32 << 20);
    assert!(small.len() == 1 && small[0].contains("--max-memory 32.0 MiB"), "{small:?}");
    assert!(warnings(Backend::Gpu, 8 << 30).is_empty(), "8 GiB holds the driver and the plan");
    assert!(warnings(Backend::Cpu, 32 << 20).is_empty(), "no GPU driver on the CPU");
    // A GPU's plan keeps room for its driver where the budget holds it; a small one cannot.
    let driver_room = |max_memory: u64| {
        let mut o = with_backend(opts_scale(15.0, 15.0, Filter::Bicubic), Backend::Gpu);
        o.limits.max_memory = max_memory;
        let src = img.source();
        let job = gigascale::Job::prepare(&src, &MemSink::default(), &o).unwrap();
        let memory = job.memory();
        assert!(memory.total <= max_memory, "{memory:?}");
        memory.items.iter().find(|i| i.0 == "gpu driver (kept free for it)").map_or(0, |i| i.1)
    };
    assert_eq!(driver_room(8 << 30), 192 << 20, "8 GiB keeps 192 MiB free for the driver");
    assert_eq!(driver_room(32 << 20), 0, "32 MiB has no room for it (and the job warns)");
}

/// A pass whose CPU form does not fit the budget: `--backend gpu` plans it for what the host
/// holds beside a discrete device, where the network's blobs live in device memory; a software
/// adapter's buffers are host memory, so there the job is refused as on the CPU, with the same
/// minimum and nothing written.
#[test]
fn a_pass_only_a_discrete_device_could_hold_is_refused_on_a_software_adapter() {
    if !gpu_available() {
        return;
    }
    let img = random_img(&mut Rng(10), 600, 400, Layout::new(gigascale::Channels::Rgb, Depth::U8));
    let photo = gigascale::Model::builtin("photo").unwrap().with_activation_bits(24).unwrap();
    let mut o = with_backend(opts_scale(2.0, 2.0, Filter::Bicubic), Backend::Cpu);
    (o.model, o.size) = (Some(std::sync::Arc::new(photo)), gigascale::Size::Scale { x: 2.0, y: 2.0 });
    let least = least_model_budget(&img, &o, false);
    o.limits.max_memory = least - 1;
    let refused = |r: gigascale::Result<Img>, on: &str| match r {
        Err(gigascale::Error::Limit { needed, what, .. }) => {
            assert!(what.contains("model's pass") && needed == least, "{on}: {what}, {needed} (least {least})");
        }
        other => panic!("{on}: expected the host plan's refusal, got {:?}", other.map(|i| (i.w, i.h))),
    };
    refused(run_mem(&img, &o), "cpu");
    let gpu = with_backend(o, Backend::Gpu);
    let adapters = gigascale::gpu::list_adapters();
    let software = adapters.iter().filter(|a| a.usable.is_ok()).all(|a| a.device_type == "Cpu");
    match software {
        true => refused(run_mem(&img, &gpu), "a software adapter"),
        false => assert!(run_mem(&img, &gpu).is_ok(), "a discrete device holds the pass"),
    }
}
