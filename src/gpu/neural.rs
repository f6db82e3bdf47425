//! The exact neural engine's convolutions on the GPU ([`ConvDevice`]): one compute pipeline
//! per layer, generated from `shaders/neural_conv.wgsl` with the layer's channel counts and
//! kernel size as constants (so the compiler can unroll its loops), the layer's packed
//! weights uploaded once. Same 32-bit integer arithmetic as the CPU kernels, so the same bytes.
//!
//! Each convolution uploads its input window and reads its output back; the layers between
//! run on the CPU in the engine's own code. (Keeping the tensors on the device is the next
//! step for speed; this is the exact, simple form.)

use super::setup::{open_device, Device};
use crate::error::{Error, Result};
use crate::neural::device::ConvDevice;
use crate::neural::exact::DeviceConv;
use crate::neural::reference::Tensor;
use std::collections::HashMap;
use std::sync::Mutex;

/// Output channels per invocation.
const OCB: usize = 8;
/// Invocations per workgroup (the shader's `@workgroup_size`).
const GROUP: usize = 64;
const TEMPLATE: &str = include_str!("../../shaders/neural_conv.wgsl");

/// One layer on the device: its pipeline and its weights.
struct Layer {
    pipeline: wgpu::ComputePipeline,
    words: wgpu::Buffer,
}

/// A GPU that computes the exact engine's convolutions.
pub(crate) struct NeuralGpu {
    dev: Device,
    name: String,
    layers: Mutex<HashMap<usize, std::sync::Arc<Layer>>>,
}

/// The WGSL of convolution `dc`.
pub(crate) fn shader(dc: &DeviceConv) -> String {
    TEMPLATE
        .replace("{{OCB}}", &OCB.to_string())
        .replace("{{CIN2}}", &dc.conv.cin.div_ceil(2).to_string())
        .replace("{{K}}", &dc.conv.kernel.to_string())
}

impl NeuralGpu {
    /// Opens `adapter` for the neural engine.
    pub fn open(adapter: &wgpu::Adapter) -> Result<NeuralGpu> {
        let l = adapter.limits();
        let dev = open_device(adapter, l.max_buffer_size, l.max_storage_buffer_binding_size, false)?;
        Ok(NeuralGpu { dev, name: adapter.get_info().name, layers: Mutex::new(HashMap::new()) })
    }

    /// The adapter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// As the engine's device interface.
    pub fn as_device(&self) -> &dyn ConvDevice {
        self
    }

    fn check(&self) -> Result<()> {
        match self.dev.failure.lock().ok().and_then(|g| g.clone()) {
            Some(f) => Err(Error::Gpu(format!("{}: {f}", self.name))),
            None => Ok(()),
        }
    }

    fn layer(&self, node: usize, dc: &DeviceConv) -> Result<std::sync::Arc<Layer>> {
        let mut layers = self.layers.lock().map_err(|_| Error::Internal("neural GPU lock poisoned".into()))?;
        if let Some(l) = layers.get(&node) {
            return Ok(l.clone());
        }
        let d = &self.dev.device;
        let scope = d.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = d.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("neural-conv"),
            source: wgpu::ShaderSource::Wgsl(shader(dc).into()),
        });
        let pipeline = d.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("neural-conv"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("neural shader compilation failed on {}: {e}", self.name)));
        }
        let words = super::setup::table(d, "neural-weights", &dc.words)?;
        let l = std::sync::Arc::new(Layer { pipeline, words });
        layers.insert(node, l.clone());
        Ok(l)
    }

    fn run(&self, node: usize, dc: &DeviceConv, x: &Tensor<i16>, window: [(usize, usize, usize); 2]) -> Result<Tensor<i16>> {
        self.check()?;
        let layer = self.layer(node, dc)?;
        let c = &dc.conv;
        let [(ox0, ow, gw), (oy0, oh, gh)] = window;
        let n = ow * oh;
        let mut out = Tensor::window(c.cout, (ox0, ow, gw), (oy0, oh, gh));
        if n == 0 {
            return Ok(out);
        }
        let groups = (n.div_ceil(GROUP), c.cout.div_ceil(OCB));
        if groups.0 > 65535 {
            return Err(Error::Gpu(format!("a neural tile of {n} pixels is too large for one dispatch")));
        }
        let d = &self.dev.device;
        let params: [i32; 16] = [
            x.x0 as i32, x.y0 as i32, x.w as i32, x.h as i32, x.gw as i32, x.gh as i32, c.pad[0] as i32,
            c.pad[1] as i32, ox0 as i32, oy0 as i32, ow as i32, oh as i32, c.dilation as i32, c.cout as i32, 0, 0,
        ];
        let uniform = buffer_init(d, bytemuck::cast_slice(&params), wgpu::BufferUsages::UNIFORM)?;
        let input = buffer_init(d, bytemuck::cast_slice(&pack_pairs(x)), wgpu::BufferUsages::STORAGE)?;
        let bytes = (c.cout * n * 4) as u64;
        let output = plain(d, bytes, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
        let readback = plain(d, bytes, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
        let bind = d.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("neural-conv"),
            layout: &layer.pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: input.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: layer.words.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 3, resource: output.as_entire_binding() },
            ],
        });
        let mut enc = d.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&layer.pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(groups.0 as u32, groups.1 as u32, 1);
        }
        enc.copy_buffer_to_buffer(&output, 0, &readback, 0, bytes);
        self.dev.queue.submit([enc.finish()]);
        let slice = readback.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        d.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(format!("poll: {e}")))?;
        rx.recv()
            .map_err(|_| Error::Gpu("read-back was dropped".into()))?
            .map_err(|e| Error::Gpu(format!("map read-back: {e}")))?;
        self.check()?;
        {
            let view = slice.get_mapped_range().map_err(|e| Error::Gpu(format!("read-back view: {e}")))?;
            let words: &[i32] = bytemuck::cast_slice(&view);
            out.data.iter_mut().zip(words).for_each(|(o, &v)| *o = v as i16);
        }
        readback.unmap();
        Ok(out)
    }
}

impl ConvDevice for NeuralGpu {
    fn conv(&self, node: usize, dc: &DeviceConv, x: &Tensor<i16>, window: [(usize, usize, usize); 2])
        -> std::result::Result<Tensor<i16>, String> {
        self.run(node, dc, x, window).map_err(|e| e.to_string())
    }
}

/// `x`'s channels in pairs, one word each (low half: the even channel), `[pair][pixel]`.
fn pack_pairs(x: &Tensor<i16>) -> Vec<i32> {
    let plane = x.h * x.w;
    let mut words = vec![0i32; x.c.div_ceil(2) * plane];
    for (j, dst) in words.chunks_exact_mut(plane.max(1)).enumerate() {
        let a = &x.data[2 * j * plane..][..plane];
        match x.data.get((2 * j + 1) * plane..(2 * j + 2) * plane) {
            Some(b) => dst.iter_mut().zip(a).zip(b).for_each(|((d, &a), &b)| {
                *d = (a as u16 as u32 | (b as u16 as u32) << 16) as i32;
            }),
            None => dst.iter_mut().zip(a).for_each(|(d, &a)| *d = a as u16 as i32),
        }
    }
    words
}

fn plain(d: &wgpu::Device, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    d.create_buffer(&wgpu::BufferDescriptor { label: Some("neural"), size: size.max(4), usage, mapped_at_creation: false })
}

fn buffer_init(d: &wgpu::Device, bytes: &[u8], usage: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
    let size = (bytes.len() as u64).next_multiple_of(4).max(16);
    let b = d.create_buffer(&wgpu::BufferDescriptor { label: Some("neural"), size, usage, mapped_at_creation: true });
    b.get_mapped_range_mut(..)
        .map_err(|e| Error::Gpu(format!("map upload: {e}")))?
        .slice(..bytes.len())
        .copy_from_slice(bytes);
    b.unmap();
    Ok(b)
}
