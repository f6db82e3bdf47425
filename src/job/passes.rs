//! A job's model passes, as the job runs them: sized for the budget before anything starts
//! ([`plan_passes`]); the network made ready once the source is decoded — its exact form,
//! its device, the passes fitted to that device ([`prepare_network`]); then run from one store
//! into the next ([`run_passes`]), fitted first to what the process holds.

use crate::error::{Error, Result};
use crate::neural::stage::{self, DeviceLimits, NetDevice, Pass, PassPlan};
use crate::options::Options;
use crate::pixel::ImageInfo;
use crate::progress::Event;
use crate::store::Store;
use std::time::Instant;

/// Sizes the model's passes (none without a model) for the budget. With `--backend gpu`, and
/// with `auto` on a machine that may have a hardware GPU, a pass the host plan refuses is
/// planned for what the host holds beside a discrete device (`fit_passes` refuses it where the
/// network then runs on the CPU or on an adapter whose buffers are host memory).
pub(crate) fn plan_passes(opts: &Options, info: &ImageInfo) -> Result<Vec<PassPlan>> {
    let Some(model) = &opts.model else { return Ok(Vec::new()) };
    let (mut w, mut h) = (info.width, info.height);
    let mut plans = Vec::new();
    for _ in 0..opts.model_passes {
        let device = opts.limits.gpu_memory.filter(|_| opts.backend != crate::Backend::Cpu);
        let budgets = (opts.limits.max_memory, device);
        let plan = match stage::plan_pass(model, (w, h), info.layout, opts.resolved_threads(), budgets) {
            Err(e) if may_plan_beside_device(opts) => {
                stage::plan_beside_device(model, (w, h), info.layout, budgets).ok_or(e)?
            }
            planned => planned?,
        };
        plans.push(plan);
        (w, h) = (w * model.scale(), h * model.scale());
    }
    Ok(plans)
}

/// Whether a pass the host plan refuses may be planned beside a discrete device: with
/// `--backend gpu`, and with `auto` where the machine may have a hardware GPU (whether the
/// network runs there is known once the device opens).
fn may_plan_beside_device(opts: &Options) -> bool {
    #[cfg(feature = "gpu")]
    let hardware = crate::gpu::may_have_hardware_gpu();
    #[cfg(not(feature = "gpu"))]
    let hardware = false;
    match opts.backend {
        crate::Backend::Gpu => true,
        crate::Backend::Auto => hardware,
        _ => false,
    }
}

/// The warning for a model file whose exact form is more than 2 levels from its float network
/// ([`crate::Model::fidelity`]; the built-in models are within 1).
fn lossy_warning(model: &crate::Model) -> Result<Option<String>> {
    if model.is_builtin() {
        return Ok(None);
    }
    let f = model.fidelity()?;
    if let (Some(narrow), true) = (model.narrow_fidelity(), f <= 2) {
        return Ok(Some(format!(
            "model {}: 24-bit activations (its 16-bit form is up to {narrow} levels from the float network on a test \
             image, this one up to {f}; --activation-bits 16 takes about half the time)",
            model.name()
        )));
    }
    let hint = match model.activation_bits() {
        16 => "; --activation-bits 24 keeps eight more bits",
        _ => "",
    };
    Ok((f > 2).then(|| {
        format!(
            "model {}: the exact engine is up to {f} levels from this network's float result on a test image \
             (ncnn: 1-2): its {}-bit fixed point cannot hold the network's range{hint} (docs/neural.md)",
            model.name(),
            model.activation_bits()
        )
    }))
}

/// A job's network, ready for its passes.
pub(crate) struct Network {
    exact: std::sync::Arc<crate::neural::exact::Exact>,
    /// The network's device (none: the CPU).
    gpu: Option<Box<dyn NetDevice>>,
    /// Why the network runs on the CPU where `auto` might have taken a GPU (the budget).
    cpu_reason: Option<String>,
    /// The passes, fitted to the device.
    passes: Vec<PassPlan>,
    /// Warnings for the job's progress.
    warnings: Vec<String>,
    /// Seconds it took.
    setup_s: f64,
}

/// Makes the network of `opts.model` ready for `passes` over an image of `info` (none
/// without a model): its exact form, its device opened and prepared (shaders, weights, the
/// buffer pool for the first pass's largest window), and the passes' tiles fitted to that
/// device.
pub(crate) fn prepare_network(info: &ImageInfo, passes: &[PassPlan], opts: &Options) -> Result<Option<Network>> {
    let Some(model) = &opts.model else { return Ok(None) };
    // Large blocks returned when freed, two heap arenas at most: before the setup's threads.
    crate::store::return_large_blocks();
    let t_setup = Instant::now();
    let exact = model.exact()?;
    let warnings: Vec<String> = lossy_warning(model)?.into_iter().collect();
    let room = room_for_driver(model, info, opts);
    let gpu = crate::backend::network_device(opts, room)?;
    let cpu_reason = crate::backend::network_on_cpu(opts, room).filter(|_| gpu.is_none());
    let device: Option<&dyn NetDevice> = gpu.as_deref();
    // The device is open: what the process holds now (the driver's code) is left out of the
    // passes' host budget before the dry run sizes the device's buffers for the first tile.
    let held = device.map_or(0, |_| crate::limits::resident_bytes().unwrap_or(0));
    let passes = fit_passes(passes, device, info, opts, held)?;
    if let Some(d) = device {
        let first = passes.first().map_or(16, |p| p.tile);
        let size = (info.width as usize, info.height as usize);
        d.prepare(model.graph(), &exact, stage::largest_window(model, size, first), setup_threads(opts, &passes))?;
        if stage::tracing() {
            eprintln!("neural trace: device prepared ({:.3} s)", t_setup.elapsed().as_secs_f64());
        }
    }
    Ok(Some(Network { exact, gpu, cpu_reason, passes, warnings, setup_s: t_setup.elapsed().as_secs_f64() }))
}

/// Whether the budget holds a GPU driver ([`GPU_DRIVER_RESERVE`](crate::backend::GPU_DRIVER_RESERVE))
/// beside the model's first pass at its smallest tile: `auto` runs the network on a GPU only
/// then (the passes are fitted to what the process holds once the device is open). Where the
/// budget holds no CPU form of the pass at all, beside what the host holds for a discrete
/// device ([`stage::plan_beside_device`]).
fn room_for_driver(model: &crate::neural::Model, info: &ImageInfo, opts: &Options) -> bool {
    let (max, gpu) = (opts.limits.max_memory, opts.limits.gpu_memory);
    let reserved = (max.saturating_sub(crate::backend::GPU_DRIVER_RESERVE), gpu);
    let (size, threads) = ((info.width, info.height), opts.resolved_threads());
    stage::plan_pass(model, size, info.layout, threads, reserved).is_ok()
        || (stage::plan_pass(model, size, info.layout, threads, (max, gpu)).is_err()
            && stage::plan_beside_device(model, size, info.layout, reserved).is_some())
}

/// A warning when what the process holds with a GPU's driver and the network's pipelines
/// (`held`), the device's buffers where they are host memory (`on_host`: a software adapter's)
/// and the largest of the passes (fitted to it, at their smallest where nothing smaller fits)
/// pass `max_memory` and the 16 MiB the process itself may hold: `--backend gpu` with a budget
/// the driver fills (`auto` takes the GPU only with room for it).
fn pass_room_warning((held, on_host): (u64, u64), passes: &[PassPlan], max_memory: u64) -> Option<String> {
    let pass = passes.iter().map(|p| p.bytes).max().unwrap_or(0);
    let size = crate::limits::format_size;
    let need = held.saturating_add(on_host).saturating_add(pass);
    (need > max_memory.saturating_add(crate::budget::PROCESS_ALLOWANCE)).then(|| {
        let device = match on_host {
            0 => String::new(),
            b => format!(", the device's buffers (host memory on this adapter) {}", size(b)),
        };
        format!(
            "the process holds {} with the GPU driver and the network's pipelines loaded, and the model's \
             pass needs {}{device} beside it: its peak may pass --max-memory {} (--backend cpu stays within it)",
            size(held),
            size(pass),
            size(max_memory)
        )
    })
}

/// The device's buffers for the first of `passes` where they are host memory (a software
/// adapter's), else 0.
fn on_host_bytes(d: &dyn NetDevice, model: &crate::neural::Model, info: &ImageInfo, passes: &[PassPlan]) -> u64 {
    let limits = d.limits(None);
    match passes.first() {
        Some(p) if limits.host => {
            stage::device_bytes(model, (info.width, info.height), info.layout, p.tile, limits.split)
        }
        _ => 0,
    }
}

/// Host memory one thread of a device's setup may hold at once (a shader compiler's; 8 threads
/// compiling added about 50 MiB to the peak on an H200).
const SETUP_THREAD_BYTES: u64 = 32 << 20;

/// Threads for a device's setup (at most 8): as many as the budget leaves room for beside what
/// the process holds and the first pass's plan, at least one.
fn setup_threads(opts: &Options, passes: &[PassPlan]) -> usize {
    let held = crate::limits::resident_bytes().unwrap_or(0) + passes.first().map_or(0, |p| p.bytes);
    (opts.limits.max_memory.saturating_sub(held) / SETUP_THREAD_BYTES).clamp(1, 8) as usize
}

/// The model's passes with their tiles cut down, where needed, to what the network's device
/// holds and to the host budget less the `held` bytes the process holds (the host plan was
/// made before the device was known; smaller tiles need less, so a second call with more held
/// only shrinks them); on a device whose memory is the host's, also to what that leaves. Where
/// the network's buffers are host memory (on the CPU, or a software adapter), a pass planned
/// beside a discrete device is refused with the host plan's message.
fn fit_passes(
    passes: &[PassPlan],
    device: Option<&dyn NetDevice>,
    info: &ImageInfo,
    opts: &Options,
    held: u64,
) -> Result<Vec<PassPlan>> {
    let Some(model) = &opts.model else { return Ok(passes.to_vec()) };
    let limits = device.map(|d| d.limits(opts.limits.gpu_memory));
    let mut next = (info.width, info.height);
    let mut fitted = Vec::with_capacity(passes.len());
    for &plan in passes {
        let size = next;
        next = (size.0 * model.scale(), size.1 * model.scale());
        let budgets = (opts.limits.max_memory, opts.limits.gpu_memory);
        if limits.is_none_or(|l| l.host) {
            // The network's buffers are host memory: the host plan's refusal stands (its
            // device budget only where there is a device).
            let host = (budgets.0, limits.and(budgets.1));
            stage::plan_pass(model, size, info.layout, opts.resolved_threads(), host)?;
        }
        let Some(limits) = limits else {
            fitted.push(plan);
            continue;
        };
        let reserve = (plan, held);
        let plan = stage::leave_to_driver(model, size, info.layout, opts.resolved_threads(), budgets, reserve);
        // A discrete device holds the network's blobs: the host holds less than the CPU's plan.
        let plan = match limits.host {
            false => stage::grow_beside_device(
                model,
                size,
                info.layout,
                (opts.limits.max_memory, held),
                (limits.split, opts.limits.gpu_memory),
                plan,
            ),
            true => plan,
        };
        // A software adapter's buffers are host memory: its device gets what the host budget
        // leaves beside the pass, where a tile fits in that.
        let fit = |limits| stage::fit_device(model, size, info.layout, plan, limits);
        let left = opts.limits.max_memory.saturating_sub(held).saturating_sub(plan.bytes);
        let within_host = match limits.host {
            true => fit(DeviceLimits { memory: limits.memory.min(left), ..limits }).ok(),
            false => None,
        };
        fitted.push(match within_host {
            Some(plan) => plan,
            None => fit(limits)?,
        });
    }
    Ok(fitted)
}

/// Runs the passes of `network` (the store itself without one), each from one store into the
/// next, on a pool of the job's threads; adds the setup's and the network's seconds to
/// `times`. On a device, what the process holds when they start (its own code, the drivers'
/// code, pipelines and staging, the tile stage's GPU ring: none of it in a plan's items) is
/// first left out of the passes' host budget. The network (its buffers and pipelines) is torn
/// down on a thread of its own while the tile stage runs; the returned guard waits for it and
/// keeps the device itself open until the job ends, for the tile stage to share.
pub(crate) fn run_passes(
    mut store: Store,
    info: &ImageInfo,
    network: Option<Network>,
    opts: &Options,
    temp_dir: &std::path::Path,
    progress: &mut dyn FnMut(&Event),
    (setup, network_s): &mut (f64, f64),
) -> Result<(Store, Teardown)> {
    let (Some(model), Some(net)) = (&opts.model, network) else {
        return Ok((store, Teardown { thread: None, _device: None }));
    };
    let device: Option<&dyn NetDevice> = net.gpu.as_deref();
    let held = device.map_or(0, |_| crate::limits::resident_bytes().unwrap_or(0));
    let passes = fit_passes(&net.passes, device, info, opts, held)?;
    if stage::tracing() {
        eprintln!(
            "neural trace: the process holds {held} B; tiles {:?}",
            passes.iter().map(|p| p.tile).collect::<Vec<_>>()
        );
    }
    let (in_size, threads) = ((info.width, info.height), opts.resolved_threads());
    let recompute = passes.first().and_then(|p| stage::recompute_warning(model, in_size, info.layout, p.tile, threads));
    let driver = device.and_then(|d| {
        pass_room_warning((held, on_host_bytes(d, model, info, &passes)), &passes, opts.limits.max_memory)
    });
    for message in net.warnings.into_iter().chain(recompute).chain(driver) {
        progress(&Event::Warning { message });
    }
    *setup += net.setup_s;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Internal(format!("thread pool: {e}")))?;
    let device_name = device.map_or_else(|| net.cpu_reason.unwrap_or_else(|| "cpu".into()), |d| d.describe());
    let mut info = info.clone();
    for (i, &plan) in passes.iter().enumerate() {
        let number = (i as u32 + 1, passes.len() as u32);
        let s = model.scale();
        let t = plan.tile as u32 * s;
        let out = (info.width * s, info.height * s);
        progress(&Event::NeuralStart {
            model: model.name().to_string(),
            pass: number.0,
            passes: number.1,
            input: (info.width, info.height),
            output: out,
            tile: plan.tile as u32,
            tiles: out.0.div_ceil(t) as u64 * out.1.div_ceil(t) as u64,
            planned_memory: plan.bytes,
            device: device_name.clone(),
        });
        let pass = Pass {
            model,
            exact: &net.exact,
            input: &store,
            info: &info,
            plan,
            temp_dir,
            cancel: opts.cancel.as_deref(),
            number,
            pool: &pool,
            device,
            network_s: Default::default(),
        };
        let next = pass.run(progress)?;
        *network_s += pass.network_s.get();
        store = next;
        (info.width, info.height) = out;
    }
    // Tearing the network down (its buffers, gigabytes for large tiles) takes a while; the
    // tile stage need not wait for it, but the job does (a driver unloaded at exit while a
    // thread still frees its objects crashes the process). The device itself stays open
    // until the job ends, for the tile stage to share.
    let device = net.gpu.as_ref().map(|g| g.device_handle());
    let teardown = net.gpu.map(|g| std::thread::spawn(move || drop(g)));
    Ok((store, Teardown { thread: teardown, _device: device }))
}

/// Waits, when dropped, for the thread that tears the network down, then lets its device go.
pub(crate) struct Teardown {
    thread: Option<std::thread::JoinHandle<()>>,
    /// Dropped after the wait (fields drop after `drop` returns).
    _device: Option<Box<dyn std::any::Any + Send>>,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            // A panic while freeing the network leaves nothing for the job to do.
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The setup's threads come from what the budget leaves beside the process and the pass.
    #[test]
    fn setup_threads_come_from_the_budget() {
        let mut opts = Options::new(crate::Size::Scale { x: 2.0, y: 2.0 });
        let pass = [PassPlan { tile: 64, bytes: 100 << 20 }];
        opts.limits.max_memory = 64 << 20;
        assert_eq!(setup_threads(&opts, &pass), 1, "a budget the pass fills leaves one thread");
        opts.limits.max_memory = 64 << 30;
        assert_eq!(setup_threads(&opts, &pass), 8, "a roomy budget gives the most");
    }

    /// A deep network without enlargement: `n` 3x3 convolutions of `c` channels dilated by 8
    /// (each reaching 8 pixels further) and a last one to RGB; weights from a fixed pattern.
    fn deep_model(c: usize, n: usize) -> crate::neural::Model {
        let mut param = format!("7767517\n{} {}\nInput data 0 1 data 2=3\n", n + 2, n + 2);
        let mut bin = Vec::new();
        let mut conv = |i: usize, (cin, cout): (usize, usize), dilation: usize, param: &mut String| {
            let (from, to) = (if i == 0 { "data".to_string() } else { format!("b{i}") }, format!("b{}", i + 1));
            let to = if i == n { "out".to_string() } else { to };
            let weights = cin * cout * 9;
            param.push_str(&format!(
                "Convolution c{i} 1 1 {from} {to} 0={cout} 1=3 2={dilation} 4={dilation} 5=1 6={weights} 9=1\n"
            ));
            bin.extend(0u32.to_le_bytes());
            (0..weights + cout).for_each(|k| bin.extend((((k * 7919) % 13) as f32 * 0.004 - 0.024).to_le_bytes()));
        };
        conv(0, (3, c), 4, &mut param);
        for i in 1..n {
            conv(i, (c, c), 4, &mut param);
        }
        conv(n, (c, 3), 1, &mut param);
        crate::neural::Model::from_parts("deep", &param, &bin).unwrap()
    }

    /// A 2000x3000 RGB JPEG's description.
    fn photo_info() -> ImageInfo {
        ImageInfo {
            width: 2000,
            height: 3000,
            layout: crate::Layout::new(crate::Channels::Rgb, crate::Depth::U8),
            format: crate::Format::Jpeg,
            icc_profile: None,
            details: Vec::new(),
            metadata: Default::default(),
        }
    }

    /// Where the budget holds no CPU form of a pass, `auto` may still take a GPU if the host
    /// holds what a discrete device needs beside it and the driver's room; a pass so planned
    /// is refused on the CPU (where no device opened) with the host plan's message, the
    /// minimum in it.
    #[test]
    fn auto_plans_beside_a_device_only_where_the_cpu_form_cannot_fit() {
        // A reach of 200 pixels: the CPU engine's windows of 128 channels need 352 MiB at the
        // smallest tile, what the host holds beside a device about 100 MiB.
        let model = deep_model(128, 50).with_activation_bits(24).unwrap();
        let mut opts = Options::new(crate::Size::Scale { x: 4.0, y: 4.0 });
        opts.threads = 16;
        opts.model = Some(std::sync::Arc::new(model.clone()));
        let info = photo_info();
        let (size, layout) = ((info.width, info.height), info.layout);
        let cpu = |m: u64| stage::plan_pass(&model, size, layout, 16, (m, None));
        let beside = |m: u64| stage::plan_beside_device(&model, size, layout, (m, None));
        let reserve = crate::backend::GPU_DRIVER_RESERVE;
        let budget = (1..256u64)
            .map(|i| i << 24)
            .find(|&m| cpu(m).is_err() && beside(m - reserve.min(m)).is_some())
            .expect("a budget below the CPU form that holds the driver and the pass beside a device");
        opts.limits.max_memory = budget;
        assert!(room_for_driver(&model, &info, &opts), "{budget} B: room beside a device");
        let plan = beside(budget).expect("planned beside a device");
        let refused = fit_passes(&[plan], None, &info, &opts, 0).expect_err("no CPU form fits");
        assert_eq!(refused.to_string(), cpu(budget).unwrap_err().to_string());
        // Where the CPU form fits without the driver's room, `auto` stays on the CPU as before.
        let roomy = (budget..).step_by(1 << 24).find(|&m| cpu(m).is_ok()).expect("a CPU form");
        opts.limits.max_memory = roomy;
        assert!(cpu(roomy - reserve).is_err(), "{roomy} B: no room for a driver beside the CPU form");
        assert!(!room_for_driver(&model, &info, &opts), "{roomy} B: the CPU form, no room for a driver");
        assert!(fit_passes(&[cpu(roomy).unwrap()], None, &info, &opts, 0).is_ok());
    }

    /// `auto` runs a network on a GPU only where the budget holds the driver beside a pass.
    #[test]
    fn a_gpu_driver_needs_room_in_the_budget() {
        let model = crate::neural::Model::builtin("anime").unwrap();
        let mut opts = Options::new(crate::Size::Scale { x: 4.0, y: 4.0 });
        let info = photo_info();
        opts.limits.max_memory = 128 << 20;
        assert!(!room_for_driver(&model, &info, &opts), "128 MiB has no room for a driver and a pass");
        opts.limits.max_memory = 1 << 30;
        assert!(room_for_driver(&model, &info, &opts), "1 GiB has");
        let pass = [PassPlan { tile: 2048, bytes: 40 << 20 }];
        let said = pass_room_warning((120 << 20, 0), &pass, 128 << 20).expect("120 + 40 MiB pass 128 + 16 MiB");
        assert!(said.contains("--max-memory 128.0 MiB") && said.contains("40.0 MiB"), "{said}");
        assert!(pass_room_warning((120 << 20, 0), &pass, 256 << 20).is_none());
        // A software adapter's buffers are host memory: they count too.
        let said = pass_room_warning((120 << 20, 100 << 20), &pass, 200 << 20).expect("120 + 100 + 40 MiB");
        assert!(said.contains("device's buffers (host memory on this adapter) 100.0 MiB"), "{said}");
    }
}
