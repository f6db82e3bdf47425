//! A bench for unit tests: shaders run by hand on the test adapter's device (lavapipe in CI),
//! their buffers made from words and read back.

use super::neural::{pipeline_with, record_pass};
use super::setup::Device;
use std::sync::Arc;
use wgpu::util::DeviceExt;

/// Usage of a buffer a shader writes and a test reads back.
pub(super) const STORAGE_OUT: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC);

/// Shaders run by hand on a device, in one encoder.
pub(super) struct Bench {
    dev: Arc<Device>,
    enc: wgpu::CommandEncoder,
}

impl Bench {
    /// The test adapter's device with half floats (none without an adapter).
    pub(super) fn open() -> Option<Bench> {
        let a = super::test_adapter()?;
        let l = a.limits();
        let f16 = wgpu::Features::SHADER_F16;
        let dev =
            super::setup::shared_device(&a, l.max_buffer_size, l.max_storage_buffer_binding_size, f16).expect("device");
        let enc = dev.device.create_command_encoder(&Default::default());
        Some(Bench { dev, enc })
    }

    /// A buffer holding `v`.
    pub(super) fn words(&self, v: &[i32], usage: wgpu::BufferUsages) -> wgpu::Buffer {
        let contents = bytemuck::cast_slice(v);
        self.dev.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents, usage })
    }

    /// A buffer of `size` bytes.
    pub(super) fn empty(&self, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.dev.device.create_buffer(&wgpu::BufferDescriptor { label: None, size, usage, mapped_at_creation: false })
    }

    /// The pipeline of entry point `entry` of WGSL `src`.
    pub(super) fn pipeline(&self, src: String, entry: &str) -> wgpu::ComputePipeline {
        self.pipeline_with(src, entry, &[])
    }

    /// [`Bench::pipeline`] with the module's pipeline-overridable constants set to `constants`.
    pub(super) fn pipeline_with(&self, src: String, entry: &str, constants: &[(&str, f64)]) -> wgpu::ComputePipeline {
        let source = wgpu::ShaderSource::Wgsl(src.into());
        let module = self.dev.device.create_shader_module(wgpu::ShaderModuleDescriptor { label: None, source });
        pipeline_with(&self.dev.device, &module, entry, constants)
    }

    /// Records `pipe` over `groups` with `buffers` bound in order (binding 0, 1, ...).
    pub(super) fn run(&mut self, pipe: &wgpu::ComputePipeline, buffers: &[&wgpu::Buffer], groups: (u32, u32, u32)) {
        record_pass(&self.dev.device, &mut self.enc, pipe, buffers, groups, None);
    }

    /// Submits what was run and reads `size` bytes of `b` back.
    pub(super) fn read(&mut self, b: &wgpu::Buffer, size: u64) -> Vec<u8> {
        let out = self.empty(size, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
        let mut enc = std::mem::replace(&mut self.enc, self.dev.device.create_command_encoder(&Default::default()));
        enc.copy_buffer_to_buffer(b, 0, &out, 0, size);
        self.dev.queue.submit([enc.finish()]);
        out.slice(..).map_async(wgpu::MapMode::Read, |_| {});
        self.dev.device.poll(wgpu::PollType::wait_indefinitely()).expect("poll");
        let v = out.slice(..).get_mapped_range().expect("mapped").to_vec();
        v
    }
}
