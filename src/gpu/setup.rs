//! Building the GPU side of a job: the device with its failure callbacks, the two pipelines,
//! the coefficient tables, and the ring's slots with the sizes that decide how many fit.

use super::shaders::{HLAST, HPASS, HPASS_F16, VFIRST, VPASS, VPASS_F16};
use crate::error::{Error, Result};
use crate::plan::{Geometry, Plan};
use std::sync::atomic::AtomicU8;
use std::sync::{Arc, Mutex};

/// The most workgroups a dispatch asks for in one dimension.
pub(super) const MAX_GROUPS: u32 = 65535;

pub(super) fn align4(n: u64) -> u64 {
    n.div_ceil(4) * 4
}

/// Caps on what the GPU backend may allocate, combined with the adapter's own limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GpuLimits {
    /// Total device memory gigascale may allocate (`--gpu-memory`).
    pub device_memory: u64,
    /// Largest single buffer.
    pub max_buffer: u64,
    /// Largest storage binding.
    pub max_binding: u64,
    /// Host memory for staging buffers.
    pub host_memory: u64,
    /// The largest buffer and binding the device itself is opened with (below the adapter's
    /// only where a test stands in for a smaller adapter); `max_buffer` and `max_binding`
    /// bound what the resampler allocates.
    pub device_cap: u64,
}

/// Tiles of one row of tiles computed as one run (one dispatch): up to 1024 output pixels
/// wide, fewer when the run's source window would outgrow a single tile's (extreme
/// downscales). Small tiles cost the GPU per dispatch, not per pixel; runs amortise that.
pub(crate) fn run_length(geom: &Geometry) -> u32 {
    let bytes = |k: u32| {
        let (w, h) = geom.window_bound(k, 1);
        w * h * geom.layout.bytes_per_pixel() as u64
    };
    let single = bytes(1).max(16 << 20);
    let mut k = (1024 / geom.tile).clamp(1, geom.tiles_across().max(1));
    while k > 1 && bytes(k) > single {
        k /= 2;
    }
    k
}

/// Bytes of the parameter area at the start of each upload: the horizontal pass' parameters
/// at 0, the vertical pass' at `PARAM_SIZE`.
pub(super) const PARAMS_BYTES: u64 = 256;
pub(super) const PARAM_SIZE: u64 = 128;

// Map states of a staging buffer.
pub(super) const PENDING: u8 = 0;
pub(super) const MAPPED: u8 = 1;
pub(super) const FAILED: u8 = 2;

/// One slot of the ring: staging buffers, device buffers and the bind groups of both passes.
pub(super) struct Slot {
    pub upload: wgpu::Buffer,
    pub params_h: wgpu::Buffer,
    pub params_v: wgpu::Buffer,
    pub src: wgpu::Buffer,
    pub _inter: wgpu::Buffer,
    pub out: wgpu::Buffer,
    pub readback: wgpu::Buffer,
    pub bind_h: wgpu::BindGroup,
    pub bind_v: wgpu::BindGroup,
    pub upload_state: Arc<AtomicU8>,
    pub read_state: Arc<AtomicU8>,
    /// The submission that carries this slot's current tile.
    pub submission: Option<wgpu::SubmissionIndex>,
}

/// Bytes of one slot's buffers.
pub(super) struct SlotSizes {
    /// Upload staging: parameters and the packed source window.
    pub upload: u64,
    pub window: u64,
    /// The intermediate: 4-byte integers, or 2-byte halves with f16.
    pub inter: u64,
    /// One output run (and its read-back staging).
    pub out: u64,
    /// Tiles per run the sizes are for.
    pub run: u32,
}

impl SlotSizes {
    /// The sizes for `plan`'s largest run window, with runs cut shorter (down to one tile)
    /// until every buffer fits a binding of `cap` bytes.
    pub(super) fn of(plan: &Plan, f16: bool, cap: u64) -> SlotSizes {
        let geom = plan.geometry();
        let mut k = run_length(&geom);
        loop {
            let (ww, wh) = plan.max_window_run(k);
            let sizes = SlotSizes::for_window(&geom, k, (ww as u64, wh as u64), f16);
            if k == 1 || sizes.window.max(sizes.inter).max(sizes.out) <= cap {
                return sizes;
            }
            k /= 2;
        }
    }

    /// The sizes for runs of `k` tiles reading windows of `ww x wh` source pixels.
    pub(super) fn for_window(geom: &Geometry, k: u32, (ww, wh): (u64, u64), f16: bool) -> SlotSizes {
        let bpp = geom.layout.bytes_per_pixel() as u64;
        let ch = geom.layout.channels.count() as u64;
        let k = k as u64;
        let window = align4(ww * wh * bpp).max(4);
        // pass 1 keeps window rows x run columns, or (vertical first) tile rows x window columns
        let (lines, cols) = if geom.vertical_first() { (geom.tile as u64, ww) } else { (wh, k * geom.tile as u64) };
        let inter = align4(lines * cols * ch * if f16 { 2 } else { 4 }).max(4);
        let out = align4(k * geom.tile_bytes());
        SlotSizes { upload: PARAMS_BYTES + window, window, inter, out, run: k as u32 }
    }

    /// Device bytes of one slot.
    pub(super) fn device(&self) -> u64 {
        2 * PARAM_SIZE + self.window + self.inter + self.out
    }
    /// Host (staging) bytes of one slot.
    pub(super) fn host(&self) -> u64 {
        self.upload + self.out
    }

    /// Fails if a buffer (or a coefficient table in `tables`) outgrows a binding of `cap`.
    pub(super) fn check_bindings(&self, tables: &[(&str, u64)], cap: u64) -> Result<()> {
        let own = [("source window", self.window), ("intermediate", self.inter), ("output tile", self.out)];
        for &(what, n) in own.iter().chain(tables) {
            if n > cap {
                return Err(Error::limit(
                    format!("gpu {what} buffer"),
                    n,
                    cap,
                    Some("lower --tile, or use --backend cpu".into()),
                ));
            }
        }
        Ok(())
    }

    /// How many slots (at most `want`) fit `limits` besides the tables' `table_bytes`.
    pub(super) fn slots_within(&self, limits: &GpuLimits, table_bytes: u64, want: usize) -> Result<usize> {
        let fit_dev = limits.device_memory.saturating_sub(table_bytes) / self.device();
        let fit_host = limits.host_memory / self.host();
        let slots = want.min(fit_dev as usize).min(fit_host as usize);
        if slots == 0 {
            return Err(Error::limit(
                "--gpu-memory",
                table_bytes + self.device(),
                limits.device_memory,
                Some("one GPU slot does not fit; raise --gpu-memory or lower --tile".into()),
            ));
        }
        Ok(slots)
    }
}

/// An open device: queue, and where its callbacks leave the first failure.
pub(crate) struct Device {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub failure: Arc<Mutex<Option<String>>>,
    /// Whether the device's memory is the process's own (a software adapter such as lavapipe:
    /// its buffers are resident in the process once written).
    pub host_memory: bool,
}

impl Device {
    /// Whether a callback has recorded a failure.
    fn failed(&self) -> bool {
        self.failure.lock().map_or(true, |g| g.is_some())
    }
}

/// What two openings must agree on to share a device: the adapter and the buffer limits.
#[derive(PartialEq)]
struct DeviceKey {
    adapter: (String, u32, u32, wgpu::Backend, String),
    max_buffer: u64,
    max_binding: u64,
}

/// The devices open now: a job's resampler and its network share one (a second Vulkan
/// device costs about 0.1 s and 80 MiB of host memory on an H200), as do jobs at once.
static OPEN: Mutex<Vec<(DeviceKey, wgpu::Features, std::sync::Weak<Device>)>> = Mutex::new(Vec::new());

/// A device on `adapter` with these buffer limits and at least `features` (beyond
/// `SHADER_INT64`): one already open where there is one that has not failed, else a new one
/// ([`open_device`]). It closes when the last holder drops it. `GIGASCALE_GPU_SHARE=0` (a
/// benchmark's knob) opens a new one every time.
pub(crate) fn shared_device(
    adapter: &wgpu::Adapter,
    max_buffer: u64,
    max_binding: u64,
    features: wgpu::Features,
) -> Result<Arc<Device>> {
    let i = adapter.get_info();
    let key = DeviceKey { adapter: (i.name, i.vendor, i.device, i.backend, i.driver), max_buffer, max_binding };
    let mut open = OPEN.lock().map_err(|_| Error::Internal("GPU device list poisoned".into()))?;
    open.retain(|(_, _, d)| d.strong_count() > 0);
    let found = open.iter().filter(|(k, f, _)| *k == key && f.contains(features)).find_map(|(_, _, d)| d.upgrade());
    let share = std::env::var("GIGASCALE_GPU_SHARE").as_deref() != Ok("0");
    if let Some(d) = found.filter(|d| share && !d.failed()) {
        return Ok(d);
    }
    let d = Arc::new(open_device(adapter, max_buffer, max_binding, features)?);
    open.push((key, features, Arc::downgrade(&d)));
    Ok(d)
}

/// How the device's allocator sizes the memory blocks it cuts buffers from: small blocks
/// (wgpu's `MemoryUsage`: host-visible blocks of 4-32 MiB), since the drivers pin a
/// host-visible block whole — with wgpu's default (`Performance`: 64-128 MiB) one more
/// staging buffer raised the resident size by 128 MiB at once on an H200, past a
/// `--max-memory` the pass was planned for. `GIGASCALE_GPU_MEMORY_HINTS=performance` (a
/// benchmark's knob) asks for the large blocks.
fn memory_hints() -> wgpu::MemoryHints {
    match std::env::var("GIGASCALE_GPU_MEMORY_HINTS").as_deref() {
        Ok("performance") => wgpu::MemoryHints::Performance,
        _ => wgpu::MemoryHints::MemoryUsage,
    }
}

/// Opens `adapter` with the limits and features the shaders need; device loss and uncaptured
/// errors are recorded in `failure` (checked before every use). `features` are requested
/// beside `SHADER_INT64`; experimental ones (cooperative matrices) are admitted only there.
fn open_device(adapter: &wgpu::Adapter, max_buffer: u64, max_binding: u64, features: wgpu::Features) -> Result<Device> {
    let mut required_limits = wgpu::Limits::downlevel_defaults();
    required_limits.max_buffer_size = max_buffer;
    required_limits.max_storage_buffer_binding_size = max_binding;
    // The tensor-core convolutions bind a concatenation's parts each (`neural_conv.rs`).
    let storage = adapter.limits().max_storage_buffers_per_shader_stage;
    required_limits.max_storage_buffers_per_shader_stage = storage.clamp(4, 8);
    required_limits.max_compute_workgroups_per_dimension = MAX_GROUPS;
    // The tensor-core shaders stage more than the default 16 KiB per workgroup.
    required_limits.max_compute_workgroup_storage_size = adapter.limits().max_compute_workgroup_storage_size;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("gigascale"),
        required_features: wgpu::Features::SHADER_INT64 | features,
        required_limits,
        memory_hints: memory_hints(),
        experimental_features: if features.intersects(wgpu::Features::all_experimental_mask()) {
            // SAFETY: this token only records that we accept wgpu's experimental features
            // (here the cooperative matrices of `gpu/neural_tensor.rs`) as work in progress;
            // creating it has no effect of its own. Their results are compared with the CPU's
            // bytes on the GPUs that have them (scripts/device-tensor.sh).
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        },
        ..Default::default()
    }))
    .map_err(|e| Error::Gpu(format!("{}: cannot open device: {e}", adapter.get_info().name)))?;
    let failure: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let f = failure.clone();
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
        if let Ok(mut g) = f.lock() {
            g.get_or_insert_with(|| e.to_string());
        }
    }));
    let f = failure.clone();
    device.set_device_lost_callback(move |reason, msg| {
        if let Ok(mut g) = f.lock() {
            g.get_or_insert_with(|| format!("device lost ({reason:?}): {msg}"));
        }
    });
    let host_memory = adapter.get_info().device_type == wgpu::DeviceType::Cpu;
    Ok(Device { device, queue, failure, host_memory })
}

/// The pipelines of pass 1 and pass 2 ("hpass"/"vpass", whatever their direction).
pub(super) fn pipelines(
    device: &wgpu::Device,
    vertical_first: bool,
    f16: bool,
    adapter: &str,
) -> Result<(wgpu::ComputePipeline, wgpu::ComputePipeline)> {
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = |name: &str, src: &str| {
        device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(std::borrow::Cow::Borrowed(src)),
        })
    };
    let (hm, vm) = if vertical_first {
        (module("vfirst", VFIRST), module("hlast", HLAST))
    } else if f16 {
        (module("hpass_f16", HPASS_F16), module("vpass_f16", VPASS_F16))
    } else {
        (module("hpass", HPASS), module("vpass", VPASS))
    };
    let pipeline = |m: &wgpu::ShaderModule, name: &str| {
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(name),
            layout: None,
            module: m,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        })
    };
    let (hpass, vpass) = (pipeline(&hm, "hpass"), pipeline(&vm, "vpass"));
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(Error::Gpu(format!("shader compilation failed on {adapter}: {e}")));
    }
    Ok((hpass, vpass))
}

fn buffer(device: &wgpu::Device, label: &str, size: u64, usage: wgpu::BufferUsages, mapped: bool) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size, usage, mapped_at_creation: mapped })
}

const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_DST);

/// A coefficient table on the device.
pub(crate) fn table(device: &wgpu::Device, label: &str, words: &[i32]) -> Result<wgpu::Buffer> {
    let b = buffer(device, label, (words.len() as u64 * 4).max(4), STORAGE, true);
    let bytes: &[u8] = bytemuck::cast_slice(words);
    b.get_mapped_range_mut(..)
        .map_err(|e| Error::Gpu(format!("map coefficient table: {e}")))?
        .slice(..bytes.len())
        .copy_from_slice(bytes);
    b.unmap();
    Ok(b)
}

fn entries<'a>(
    p: &'a wgpu::Buffer,
    a: &'a wgpu::Buffer,
    b: &'a wgpu::Buffer,
    c: &'a wgpu::Buffer,
) -> [wgpu::BindGroupEntry<'a>; 4] {
    [
        wgpu::BindGroupEntry { binding: 0, resource: p.as_entire_binding() },
        wgpu::BindGroupEntry { binding: 1, resource: a.as_entire_binding() },
        wgpu::BindGroupEntry { binding: 2, resource: b.as_entire_binding() },
        wgpu::BindGroupEntry { binding: 3, resource: c.as_entire_binding() },
    ]
}

impl Slot {
    /// A slot of `sizes`; pass 1 and pass 2 each get their pipeline and coefficient table.
    pub(super) fn new(
        device: &wgpu::Device,
        sizes: &SlotSizes,
        (pass1, table1): (&wgpu::ComputePipeline, &wgpu::Buffer),
        (pass2, table2): (&wgpu::ComputePipeline, &wgpu::Buffer),
    ) -> Slot {
        use wgpu::BufferUsages as U;
        let upload = buffer(device, "upload", sizes.upload, U::MAP_WRITE | U::COPY_SRC, true);
        let params_h = buffer(device, "params-h", PARAM_SIZE, U::UNIFORM | U::COPY_DST, false);
        let params_v = buffer(device, "params-v", PARAM_SIZE, U::UNIFORM | U::COPY_DST, false);
        let src = buffer(device, "window", sizes.window, STORAGE, false);
        let inter = buffer(device, "inter", sizes.inter, U::STORAGE, false);
        let out = buffer(device, "out", sizes.out, U::STORAGE | U::COPY_SRC, false);
        let readback = buffer(device, "readback", sizes.out, U::MAP_READ | U::COPY_DST, false);
        let bind_h = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("hpass"),
            layout: &pass1.get_bind_group_layout(0),
            entries: &entries(&params_h, &src, table1, &inter),
        });
        let bind_v = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("vpass"),
            layout: &pass2.get_bind_group_layout(0),
            entries: &entries(&params_v, &inter, table2, &out),
        });
        Slot {
            upload,
            params_h,
            params_v,
            src,
            _inter: inter,
            out,
            readback,
            bind_h,
            bind_v,
            upload_state: Arc::new(AtomicU8::new(MAPPED)),
            read_state: Arc::new(AtomicU8::new(PENDING)),
            submission: None,
        }
    }
}

/// Runs `f` on every item on at most `threads` threads of a pool of its own (the device's
/// setup: compiling shaders, converting and uploading weights); an error if one fails.
/// `GIGASCALE_GPU_SETUP_THREADS` (a benchmark's knob) lowers the count; never more than the
/// cores.
pub(super) fn on_setup_threads<T: Sync>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<()> + Sync,
) -> Result<()> {
    let knob = std::env::var("GIGASCALE_GPU_SETUP_THREADS").ok().and_then(|v| v.parse::<usize>().ok());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = threads.min(knob.unwrap_or(cores)).min(cores).clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().try_for_each(f);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Internal(format!("thread pool: {e}")))?;
    use rayon::prelude::*;
    pool.install(|| items.par_iter().try_for_each(&f))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Openings that agree on the adapter and the limits share a device (one that has more
    /// features serves one that asks for fewer); other limits, or a failed device, get
    /// another. Runs on lavapipe in CI (`GIGASCALE_REQUIRE_GPU=1` makes its absence a failure).
    #[test]
    fn openings_that_agree_share_a_device() {
        let Some(a) = super::super::test_adapter() else { return };
        let l = a.limits();
        // Limits no other test asks for, so that marking this device failed touches no other.
        let (buffer, binding) = ((l.max_buffer_size / 2) & !1023, (l.max_storage_buffer_binding_size / 2) & !1023);
        let more = a.features() & wgpu::Features::SHADER_F16;
        let first = shared_device(&a, buffer, binding, more).expect("device");
        let again = shared_device(&a, buffer, binding, wgpu::Features::empty()).expect("device");
        assert!(Arc::ptr_eq(&first, &again), "the same adapter and limits share one device");
        let other = shared_device(&a, buffer / 2, binding / 2, wgpu::Features::empty()).expect("device");
        assert!(!Arc::ptr_eq(&first, &other), "other limits get another device");
        *first.failure.lock().expect("lock") = Some("lost".into());
        let fresh = shared_device(&a, buffer, binding, wgpu::Features::empty()).expect("device");
        assert!(!Arc::ptr_eq(&first, &fresh), "a failed device is not handed out again");
        let weak = Arc::downgrade(&fresh);
        drop((first, again, fresh));
        assert_eq!(weak.strong_count(), 0, "the device closes with its last holder");
    }
}
