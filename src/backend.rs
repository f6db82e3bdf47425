//! Choosing the compute backend of a job and opening the GPU.
//!
//! `--backend cpu` never touches a GPU. `--backend gpu` opens the device before any work, so a
//! GPU that cannot be used is an error before the first tile. `auto` on a machine with a GPU
//! device node opens the device on the GPU thread while the CPU workers already compute tiles
//! (opening a Vulkan device takes 0.1–0.4 s); if it turns out unusable, the CPU does every tile.

use crate::error::Result;
use crate::exec::ring::{Feed, Msg};
use crate::exec::{GpuTimes, Notice};
use crate::options::{Backend, Options};
use crate::plan::Plan;
use crate::store::Store;
use crossbeam_channel::{Receiver, Sender};

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
                    None => Err(crate::error::Error::Gpu(
                        "no GPU adapter with 64-bit integer shaders (SHADER_INT64) was found; `gigascale devices` lists what exists"
                            .into(),
                    )),
                },
            }
        }
        #[cfg(not(feature = "gpu"))]
        {
            match opts.backend {
                Backend::Gpu => Err(crate::error::Error::Gpu("this build has no GPU support (feature `gpu`)".into())),
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

/// The GPU thread's first act: the resampler, with what to announce in a second `backend`
/// event (`None` when the device was opened before the job and announced already), or why the
/// GPU cannot be used.
#[cfg(feature = "gpu")]
pub(crate) type GpuOpener<'a> =
    Box<dyn FnOnce() -> std::result::Result<(crate::gpu::GpuResampler, Option<String>), String> + Send + 'a>;
/// (Never built without the `gpu` feature.)
#[cfg(not(feature = "gpu"))]
pub(crate) type GpuOpener<'a> = std::marker::PhantomData<&'a ()>;

/// The opened backend: its kind and description for the `backend` event, and the GPU.
#[cfg_attr(not(feature = "gpu"), allow(dead_code))]
pub(crate) struct Opened<'a> {
    pub kind: &'static str,
    pub detail: String,
    pub gpu: Option<GpuOpener<'a>>,
    /// GPU and CPU workers share the tiles (`auto`).
    pub shared: bool,
}

/// Opens the chosen backend with `gpu_slots` ring slots (from the memory plan).
#[allow(unused_variables)]
pub(crate) fn open<'a>(chosen: Chosen, opts: &'a Options, plan: &'a Plan, gpu_slots: usize) -> Result<Opened<'a>> {
    let shared = opts.backend == Backend::Auto || opts.hooks().gpu_share;
    match chosen {
        Chosen::Cpu(reason) => Ok(Opened { kind: "cpu", detail: format!("({reason})"), gpu: None, shared }),
        #[cfg(feature = "gpu")]
        Chosen::Gpu(adapter) => {
            let name = adapter.get_info().name;
            match open_gpu(adapter, opts, plan, gpu_slots) {
                Ok((g, detail)) => Ok(Opened {
                    kind: if shared { "gpu+cpu" } else { "gpu" },
                    detail,
                    gpu: Some(Box::new(move || Ok((g, None)))),
                    shared,
                }),
                Err(e) if opts.backend == Backend::Gpu => Err(e),
                Err(e) => Ok(Opened { kind: "cpu", detail: format!("(GPU {name} unusable: {e})"), gpu: None, shared }),
            }
        }
        #[cfg(feature = "gpu")]
        Chosen::Deferred => Ok(Opened {
            kind: "gpu+cpu",
            detail: "(the GPU opens alongside the CPU workers)".into(),
            gpu: Some(Box::new(move || match crate::gpu::select(false) {
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

/// Starts the compute side of the tile stage and returns where the workers find tiles.
///
/// Without a GPU the workers take the planner's jobs directly. With one, the GPU thread opens
/// the device if it is not open yet (announcing it, or why it cannot be used, as a
/// [`Notice::Backend`]), takes the planner's jobs and hands computed tiles to the workers;
/// when `shared` (`auto`), the workers also take planner jobs whenever no computed tile is
/// waiting. The handle yields the GPU thread's times.
pub(crate) fn spawn_compute<'scope, 'env>(
    sc: &'scope std::thread::Scope<'scope, 'env>,
    gpu: Option<GpuOpener<'env>>,
    shared: bool,
    jobs: Receiver<Msg>,
    store: &'env Store,
    opts: &'env Options,
    notices: Sender<Notice>,
) -> (Feed, Option<std::thread::ScopedJoinHandle<'scope, GpuTimes>>) {
    #[cfg(feature = "gpu")]
    if let Some(open_gpu) = gpu {
        let (work_tx, work_rx) = crossbeam_channel::bounded::<Msg>(jobs.capacity().unwrap_or(1).max(1));
        let gpu_jobs = jobs.clone();
        let handle = sc.spawn(move || match open_gpu() {
            Ok((g, detail)) => {
                if let Some(detail) = detail {
                    let _ = notices.send(Notice::Backend { kind: "gpu+cpu", detail });
                }
                crate::gpu::driver::drive(g, gpu_jobs, work_tx, store, opts.hooks().gpu_fail_after, &notices)
            }
            Err(reason) => {
                let _ = notices.send(Notice::Backend { kind: "cpu", detail: format!("({reason})") });
                GpuTimes::default()
            }
        });
        return (Feed { computed: Some(work_rx), jobs: shared.then_some(jobs) }, Some(handle));
    }
    let _ = (gpu, shared, store, opts, notices, sc);
    (Feed { computed: None, jobs: Some(jobs) }, None)
}

/// Opens `adapter` for `plan`; returns the resampler and its description.
#[cfg(feature = "gpu")]
fn open_gpu(
    adapter: wgpu::Adapter,
    opts: &Options,
    plan: &Plan,
    gpu_slots: usize,
) -> Result<(crate::gpu::GpuResampler, String)> {
    let per_slot = crate::gpu::GpuResampler::host_bytes_per_slot(&plan.geometry());
    let limits = crate::gpu::GpuLimits {
        device_memory: opts.gpu_memory.unwrap_or(u64::MAX),
        max_buffer: opts.gpu_memory.unwrap_or(u64::MAX),
        max_binding: opts.gpu_memory.unwrap_or(u64::MAX),
        host_memory: gpu_slots as u64 * per_slot,
    };
    let f16 = opts.gpu_f16;
    if f16 && !adapter.features().contains(wgpu::Features::SHADER_F16) {
        return Err(crate::error::Error::Gpu(format!(
            "{} has no SHADER_F16 for --precision f16 (use --precision exact)",
            adapter.get_info().name
        )));
    }
    let g = crate::gpu::GpuResampler::new(adapter, plan, limits, gpu_slots, f16)?;
    let detail =
        format!("{} ({} slots, {} on the device)", g.adapter, g.slots(), crate::budget::format_size(g.device_bytes));
    Ok((g, detail))
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
}
