//! Choosing the devices of a job: what computes the resampler's tiles (the CPU workers, with
//! or without the GPU as the tile stage's [`TileDevice`]) and where a model's network runs
//! (the CPU, or the GPU as the neural stage's [`NetDevice`]). Every GPU `cfg` of the job
//! sits here; the tile and neural stages know only their traits.
//!
//! `--backend cpu` never touches a GPU. `--backend gpu` opens the device before any work, so a
//! GPU that cannot be used is an error before the first tile. `auto` on a machine with a GPU
//! device node opens the device on the device thread while the CPU workers already compute
//! tiles (opening a Vulkan device takes 0.1–0.4 s); if it turns out unusable, the CPU does
//! every tile. The network and the resampler share one device on a GPU (the resampler's asks
//! for the network's features too; see `gpu::setup::shared_device`).

use crate::budget::{plan_memory, MemoryPlan, Needs};
use crate::error::{Error, Result};
use crate::exec::device::DeviceOpener;
#[cfg(feature = "gpu")]
use crate::exec::device::TileDevice;
use crate::neural::stage::NetDevice;
use crate::options::{Backend, Options};
use crate::plan::Plan;

/// Host memory a GPU's plan keeps free for its driver: the driver's code and buffers, the
/// device and its pipelines, none of which the plan sizes. Measured on an H200 (2026-12-04):
/// the process held 105 MiB once `auto`'s device was open and 176-190 MiB once a network's
/// pipelines were made on it; lavapipe's about 80 MiB once open. A budget without this much
/// room beside the job's plan keeps `auto` on the CPU, whose plan is the whole resident size;
/// `--backend gpu` loads the driver anyway (the tile stage warns, the neural passes leave what
/// the process holds to it and warn where even the smallest pass does not fit beside it).
pub(crate) const GPU_DRIVER_RESERVE: u64 = 192 << 20;

/// Slots in the GPU ring (the memory plan may grant fewer).
#[cfg(feature = "gpu")]
pub(crate) const GPU_SLOTS: usize = 64;

/// The backend decided before memory planning.
pub(crate) enum Chosen {
    Cpu(String),
    #[cfg(feature = "gpu")]
    Gpu(wgpu::Adapter),
    /// `auto` with a GPU device node: choose and open on the GPU thread.
    #[cfg(feature = "gpu")]
    Deferred,
}

impl Chosen {
    /// Decides what can be decided without opening a device.
    pub(crate) fn new(opts: &Options) -> Result<Chosen> {
        #[cfg(feature = "gpu")]
        {
            match opts.backend {
                Backend::Cpu => Ok(Chosen::Cpu("--backend cpu".into())),
                Backend::Auto if crate::gpu::may_have_hardware_gpu() => Ok(Chosen::Deferred),
                Backend::Auto => Ok(Chosen::Cpu("no GPU device node (/dev/dri/renderD*, /dev/nvidia*)".into())),
                _ => match crate::gpu::select(true) {
                    Some(a) => Ok(Chosen::Gpu(a)),
                    None => Err(Error::Gpu(
                        "no GPU adapter with 64-bit integer shaders (SHADER_INT64) was found; `gigascale devices` lists what exists"
                            .into(),
                    )),
                },
            }
        }
        #[cfg(not(feature = "gpu"))]
        {
            match opts.backend {
                Backend::Gpu => Err(Error::Gpu("this build has no GPU support (feature `gpu`)".into())),
                _ => Ok(Chosen::Cpu("built without GPU support".into())),
            }
        }
    }

    /// GPU ring slots wanted, host staging bytes per slot and tiles per slot, for the memory plan.
    #[allow(unused_variables)]
    pub(crate) fn gpu_need(&self, geom: &crate::plan::Geometry) -> Option<(usize, u64, usize)> {
        match self {
            Chosen::Cpu(_) => None,
            #[cfg(feature = "gpu")]
            _ => Some((
                GPU_SLOTS,
                crate::gpu::GpuResampler::host_bytes_per_slot(geom),
                crate::gpu::GpuResampler::run_length(geom) as usize,
            )),
        }
    }
}

/// The tile stage's memory plan for `budget`, and the backend it plans for. A GPU's plan keeps
/// [`GPU_DRIVER_RESERVE`] free for its driver where the budget holds it. Where it does not,
/// `auto`'s GPU (which loads its driver while the workers compute) is dropped and the CPU
/// computes every tile, planned without a GPU ring; `--backend gpu` (whose driver is loaded
/// already) gets the plan without that room, and the job warns once the device is open.
pub(crate) fn plan_tile_stage(
    chosen: Chosen,
    geom: &crate::plan::Geometry,
    needs: Needs,
    want: usize,
    budget: u64,
) -> Result<(Chosen, MemoryPlan)> {
    if matches!(chosen, Chosen::Cpu(_)) {
        return plan_memory(geom, needs, want, budget).map(|memory| (chosen, memory));
    }
    if let Ok(memory) = plan_memory(geom, Needs { driver: GPU_DRIVER_RESERVE, ..needs }, want, budget) {
        return Ok((chosen, memory));
    }
    #[cfg(feature = "gpu")]
    if let Chosen::Deferred = chosen {
        let reason = no_driver_room(budget, "the tile stage");
        let memory = plan_memory(geom, Needs { gpu: None, ..needs }, want, budget)?;
        return Ok((Chosen::Cpu(reason), memory));
    }
    plan_memory(geom, needs, want, budget).map(|memory| (chosen, memory))
}

/// Why `auto` keeps to the CPU under `budget`: no room for [`GPU_DRIVER_RESERVE`] beside
/// `what` (the tile stage, the model's pass).
#[cfg(feature = "gpu")]
fn no_driver_room(budget: u64, what: &str) -> String {
    let size = crate::limits::format_size;
    format!(
        "--max-memory {} leaves no room for a GPU driver (about {}) beside {what}",
        size(budget),
        size(GPU_DRIVER_RESERVE)
    )
}

/// The opened backend: its kind and description for the `backend` event, and the GPU.
#[cfg_attr(not(feature = "gpu"), allow(dead_code))]
pub(crate) struct Opened<'a> {
    pub kind: &'static str,
    pub detail: String,
    pub device: Option<DeviceOpener<'a>>,
    /// GPU and CPU workers share the tiles (`auto`).
    pub shared: bool,
}

/// Opens the chosen backend with `gpu_slots` ring slots (from the memory plan).
#[allow(unused_variables)]
pub(crate) fn open<'a>(chosen: Chosen, opts: &'a Options, plan: &'a Plan, gpu_slots: usize) -> Result<Opened<'a>> {
    let shared = opts.backend == Backend::Auto || opts.hooks().gpu_share;
    match chosen {
        Chosen::Cpu(reason) => Ok(Opened { kind: "cpu", detail: format!("({reason})"), device: None, shared }),
        #[cfg(feature = "gpu")]
        Chosen::Gpu(adapter) => {
            let name = adapter.get_info().name;
            match open_gpu(adapter, opts, plan, gpu_slots) {
                Ok((g, detail)) => Ok(Opened {
                    kind: if shared { "gpu+cpu" } else { "gpu" },
                    detail,
                    device: Some(Box::new(move || Ok((g, None)))),
                    shared,
                }),
                Err(e) if opts.backend == Backend::Gpu => Err(e),
                Err(e) => {
                    Ok(Opened { kind: "cpu", detail: format!("(GPU {name} unusable: {e})"), device: None, shared })
                }
            }
        }
        #[cfg(feature = "gpu")]
        Chosen::Deferred => Ok(Opened {
            kind: "gpu+cpu",
            detail: "(the GPU opens alongside the CPU workers)".into(),
            device: Some(Box::new(move || match crate::gpu::select(false) {
                Some(adapter) => {
                    let name = adapter.get_info().name;
                    open_gpu(adapter, opts, plan, gpu_slots)
                        .map(|(g, detail)| (g, Some(detail)))
                        .map_err(|e| format!("GPU {name} unusable: {e}"))
                }
                None => Err("no hardware GPU with 64-bit integer shaders".into()),
            })),
            shared,
        }),
    }
}

/// Opens `adapter` for `plan`; returns the resampler as a tile device, and its description.
#[cfg(feature = "gpu")]
fn open_gpu(
    adapter: wgpu::Adapter,
    opts: &Options,
    plan: &Plan,
    gpu_slots: usize,
) -> Result<(Box<dyn TileDevice>, String)> {
    let per_slot = crate::gpu::GpuResampler::host_bytes_per_slot(&plan.geometry());
    // The test hook stands for a smaller adapter: its largest buffer and binding.
    let device_cap = opts.hooks().gpu_max_buffer.unwrap_or(u64::MAX);
    let cap = opts.limits.gpu_memory.unwrap_or(u64::MAX).min(device_cap);
    let limits = crate::gpu::GpuLimits {
        device_memory: opts.limits.gpu_memory.unwrap_or(u64::MAX),
        max_buffer: cap,
        max_binding: cap,
        host_memory: gpu_slots as u64 * per_slot,
        device_cap,
    };
    let f16 = opts.gpu_f16;
    if f16 && !adapter.features().contains(wgpu::Features::SHADER_F16) {
        return Err(Error::Gpu(format!(
            "{} has no SHADER_F16 for --precision f16 (use --precision exact)",
            adapter.get_info().name
        )));
    }
    // The job's network (if it runs on this adapter) shares the device: it gets its features.
    let network = match network_may_run_on_gpu(opts) {
        true => crate::gpu::neural::network_features(&adapter),
        false => wgpu::Features::empty(),
    };
    let g = crate::gpu::GpuResampler::new(adapter, plan, limits, gpu_slots, (f16, network))?;
    let detail =
        format!("{} ({} slots, {} on the device)", g.adapter, g.slots(), crate::limits::format_size(g.device_bytes));
    let fail_after = opts.hooks().gpu_fail_after;
    Ok((Box::new(crate::gpu::driver::GpuDevice { gpu: g, fail_after }), detail))
}

/// The device for a model's network: `--backend gpu` needs a GPU (software adapters
/// included) and fails if the model has a layer the GPU cannot run; `auto` takes a hardware
/// GPU when one opens, the model runs there and `room_for_driver` (the budget has room for a
/// driver beside the model's smallest pass, see [`GPU_DRIVER_RESERVE`]); `cpu` (and a build
/// without the `gpu` feature) none — the network then runs on the CPU.
#[cfg(feature = "gpu")]
pub(crate) fn network_device(opts: &Options, room_for_driver: bool) -> Result<Option<Box<dyn NetDevice>>> {
    let Some(m) = &opts.model else { return Ok(None) };
    match crate::gpu::neural::NeuralGpu::unsupported(m.graph(), m.exact()?.as_ref()) {
        Some(why) if opts.backend == Backend::Gpu => {
            return Err(Error::usage(format!("--backend gpu: model {}: {why} (use --backend cpu)", m.name())))
        }
        Some(_) => return Ok(None),
        None => {}
    }
    let boxed = |g: crate::gpu::neural::NeuralGpu| Box::new(g) as Box<dyn NetDevice>;
    let open = |a: &wgpu::Adapter| crate::gpu::neural::NeuralGpu::open(a, opts.hooks().gpu_max_buffer);
    match opts.backend {
        Backend::Gpu => {
            let a =
                crate::gpu::select(true).ok_or_else(|| Error::Gpu("--backend gpu: no usable GPU adapter".into()))?;
            open(&a).map(|g| Some(boxed(g)))
        }
        Backend::Auto if room_for_driver && crate::gpu::may_have_hardware_gpu() => {
            Ok(crate::gpu::select(false).and_then(|a| open(&a).ok()).map(boxed))
        }
        _ => Ok(None),
    }
}

/// The network's device as the `neural_start` event names it where `auto` keeps it on the CPU
/// although a hardware GPU may be there, because the budget has no room for the driver
/// (`room_for_driver` false: see [`network_device`]); none otherwise.
pub(crate) fn network_on_cpu(opts: &Options, room_for_driver: bool) -> Option<String> {
    #[cfg(feature = "gpu")]
    if opts.backend == Backend::Auto && opts.model.is_some() && !room_for_driver && crate::gpu::may_have_hardware_gpu()
    {
        return Some(format!("cpu ({})", no_driver_room(opts.limits.max_memory, "the model's pass")));
    }
    let _ = (opts, room_for_driver);
    None
}

/// Whether the job's model (if any) may run on a GPU: a backend other than `cpu`. (Whether the
/// GPU can run its layers is known only from its integers, which a model file of a new kind
/// calibrates first, seconds for realesrgan-x4plus: not before the source is decoded. A device
/// that gets the network's features for a model that then runs on the CPU loses nothing.)
#[cfg(feature = "gpu")]
fn network_may_run_on_gpu(opts: &Options) -> bool {
    opts.backend != Backend::Cpu && opts.model.is_some()
}

/// Without the `gpu` feature the network runs on the CPU (`--backend gpu` was refused by
/// [`Chosen::new`]).
#[cfg(not(feature = "gpu"))]
pub(crate) fn network_device(_: &Options, _: bool) -> Result<Option<Box<dyn NetDevice>>> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_backend_never_needs_gpu_memory() {
        let mut o = Options::new(crate::Size::Scale { x: 2.0, y: 2.0 });
        o.backend = Backend::Cpu;
        let plan = Plan::new(
            10,
            10,
            20,
            20,
            crate::Filter::Bicubic,
            crate::Layout::new(crate::Channels::Rgb, crate::Depth::U8),
            16,
        )
        .unwrap();
        let c = Chosen::new(&o).unwrap();
        assert!(c.gpu_need(&plan.geometry()).is_none());
        let opened = open(c, &o, &plan, 0).unwrap();
        assert_eq!(opened.kind, "cpu");
        assert!(opened.detail.contains("--backend cpu"), "{}", opened.detail);
    }

    /// `auto`'s GPU loads its driver while the workers compute: the plan keeps room for it, and
    /// a budget without that room keeps the job on the CPU (planned without a GPU ring).
    #[cfg(feature = "gpu")]
    #[test]
    fn auto_keeps_room_for_a_gpu_driver_or_stays_on_the_cpu() {
        let layout = crate::Layout::new(crate::Channels::Rgb, crate::Depth::U8);
        let plan = Plan::new(2000, 3000, 30000, 45000, crate::Filter::Bicubic, layout, 512).unwrap();
        let geom = plan.geometry();
        let needs = Needs {
            source_decode: 1 << 20,
            sink_memory: 1 << 20,
            encoder_memory: 1 << 20,
            encoded_bound: 0,
            passthrough: true,
            gpu: Chosen::Deferred.gpu_need(&geom),
            neural: 0,
            driver: 0,
            band_rows: 1,
        };
        let (small, memory) = plan_tile_stage(Chosen::Deferred, &geom, needs, 16, 64 << 20).unwrap();
        match small {
            Chosen::Cpu(reason) => assert!(reason.contains("no room for a GPU driver"), "{reason}"),
            _ => panic!("a 64 MiB budget kept auto's GPU"),
        }
        assert_eq!(memory.gpu_slots, 0);
        assert!(memory.total <= 64 << 20);
        let (large, memory) = plan_tile_stage(Chosen::Deferred, &geom, needs, 16, 1 << 30).unwrap();
        assert!(matches!(large, Chosen::Deferred), "a 1 GiB budget has room for the driver");
        assert!(memory.items.contains(&(crate::budget::DRIVER_ITEM, GPU_DRIVER_RESERVE)), "{:?}", memory.items);
        assert!(memory.gpu_slots > 0 && memory.total <= 1 << 30);
        let (cpu, memory) = plan_tile_stage(Chosen::Cpu("--backend cpu".into()), &geom, needs, 16, 64 << 20).unwrap();
        assert!(
            matches!(cpu, Chosen::Cpu(_)) && memory.items.iter().all(|i| i.0 != crate::budget::DRIVER_ITEM || i.1 == 0)
        );
    }

    /// `auto` names the budget as the reason its network stays on the CPU where a hardware GPU
    /// may be there (without a GPU device node it names none: the CPU is the only choice).
    #[cfg(feature = "gpu")]
    #[test]
    fn auto_names_the_budget_when_its_network_stays_on_the_cpu() {
        let mut o = Options::new(crate::Size::Scale { x: 4.0, y: 4.0 });
        o.model = Some(std::sync::Arc::new(crate::neural::Model::builtin("anime").unwrap()));
        o.limits.max_memory = 64 << 20;
        let said = network_on_cpu(&o, false);
        match crate::gpu::may_have_hardware_gpu() {
            true => {
                assert!(said.as_deref().is_some_and(|r| r.contains("--max-memory 64.0 MiB leaves no room")), "{said:?}")
            }
            false => assert_eq!(said, None),
        }
        assert_eq!(network_on_cpu(&o, true), None, "with room there is no such reason");
        o.backend = Backend::Cpu;
        assert_eq!(network_on_cpu(&o, false), None, "--backend cpu chose the CPU itself");
    }
}
