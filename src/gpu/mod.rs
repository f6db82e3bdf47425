//! The GPU backend: wgpu compute shaders fed through a bounded ring of staging buffers.
//!
//! The shaders implement the same fixed-point contract as the CPU reference
//! (`kernel/fixed.rs`) in 64-bit integers, consume the coefficient tables built by
//! [`crate::AxisCoeffs`] (uploaded once), and therefore produce byte-identical tiles. They need
//! `SHADER_INT64`; adapters without it are not used.

pub(crate) mod driver;
pub(crate) mod neural;
#[cfg(test)]
mod neural_bench;
mod neural_blob;
mod neural_conv;
mod neural_cut;
mod neural_ops;
mod neural_prefix;
mod neural_shader;
mod neural_split;
mod neural_tail;
mod neural_tensor;
mod neural_weights;
mod neural_wide;
mod profile;
mod resampler;
pub(crate) mod setup;
pub(crate) mod shaders;

pub(crate) use resampler::GpuResampler;
pub(crate) use setup::GpuLimits;

/// What `gigascale devices` reports of one adapter.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AdapterReport {
    /// Adapter name.
    pub name: String,
    /// Graphics API (Vulkan, Metal, Dx12).
    pub backend: String,
    /// Discrete, integrated, virtual, CPU (software) or other.
    pub device_type: String,
    /// Largest buffer.
    pub max_buffer_size: u64,
    /// Largest storage binding.
    pub max_storage_buffer_binding_size: u64,
    /// Largest workgroup (x, y, z) and invocations.
    pub max_workgroup: (u32, u32, u32, u32),
    /// Workgroup shared memory.
    pub max_workgroup_storage: u32,
    /// Whether f16 arithmetic is available in shaders.
    pub shader_f16: bool,
    /// Whether 64-bit integers are available in shaders (required by gigascale).
    pub shader_int64: bool,
    /// Whether gigascale can use it, and if not why.
    pub usable: std::result::Result<(), String>,
}

/// One instance for the whole process: drivers are not all happy to see instances created
/// and destroyed repeatedly, and enumerating adapters is not free.
fn instance() -> &'static wgpu::Instance {
    static INSTANCE: std::sync::OnceLock<wgpu::Instance> = std::sync::OnceLock::new();
    INSTANCE.get_or_init(|| {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        desc.backends = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
        wgpu::Instance::new(desc)
    })
}

fn is_software(info: &wgpu::AdapterInfo) -> bool {
    info.device_type == wgpu::DeviceType::Cpu
}

fn report(a: &wgpu::Adapter) -> AdapterReport {
    let info = a.get_info();
    let l = a.limits();
    let f = a.features();
    let int64 = f.contains(wgpu::Features::SHADER_INT64);
    AdapterReport {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        max_buffer_size: l.max_buffer_size,
        max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
        max_workgroup: (
            l.max_compute_workgroup_size_x,
            l.max_compute_workgroup_size_y,
            l.max_compute_workgroup_size_z,
            l.max_compute_invocations_per_workgroup,
        ),
        max_workgroup_storage: l.max_compute_workgroup_storage_size,
        shader_f16: f.contains(wgpu::Features::SHADER_F16),
        shader_int64: int64,
        usable: if int64 { Ok(()) } else { Err("no SHADER_INT64 (64-bit integers in shaders)".into()) },
    }
}

/// Lists every adapter the system offers.
pub fn list_adapters() -> Vec<AdapterReport> {
    pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all())).iter().map(report).collect()
}

/// Whether this machine may have a hardware GPU. On Linux a GPU driver exposes a device node
/// (`/dev/dri/renderD*`, `/dev/nvidia*`); without one, `auto` skips loading the Vulkan drivers
/// altogether (a software driver such as lavapipe maps tens of MB of code into the process).
pub(crate) fn may_have_hardware_gpu() -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    let has = |dir: &str, prefix: &str| {
        std::fs::read_dir(dir)
            .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with(prefix)))
            .unwrap_or(false)
    };
    has("/dev/dri", "renderD") || has("/dev", "nvidia")
}

/// For unit tests: [`select`]'s adapter, software ones included; `None` (the test then
/// returns) only where `GIGASCALE_REQUIRE_GPU=1` is not set (CI sets it, with lavapipe).
#[cfg(test)]
pub(crate) fn test_adapter() -> Option<wgpu::Adapter> {
    let a = select(true);
    let required = std::env::var("GIGASCALE_REQUIRE_GPU").is_ok_and(|v| v == "1");
    assert!(a.is_some() || !required, "GIGASCALE_REQUIRE_GPU=1 but no GPU adapter");
    a
}

/// The best adapter with 64-bit integer shaders: discrete before integrated before virtual;
/// software adapters (lavapipe, llvmpipe, WARP) only when `allow_software`. `None` if there
/// is none.
pub(crate) fn select(allow_software: bool) -> Option<wgpu::Adapter> {
    let adapters = pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()));
    let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    adapters
        .into_iter()
        .filter(|a| a.features().contains(wgpu::Features::SHADER_INT64))
        .filter(|a| allow_software || !is_software(&a.get_info()))
        .min_by_key(rank)
}
