//! Convolution layers on the device: on an adapter that has them (unless
//! `GIGASCALE_GPU_TENSOR=0`), the tensor-core shaders of `neural_tensor.rs`, each after a small
//! shader that splits its input into the halves the matrices read; otherwise the plain integer
//! shaders of `neural_shader.rs` (the same bytes). Pipelines are compiled once per layer
//! shape; each layer's weights are uploaded once, in the layout its shader reads.

use super::neural::{pipeline, shape, window, Blob, Layer, NeuralGpu, STORAGE};
use super::neural_shader::{conv_shader, weight_blocks};
use super::neural_tensor::{
    self, split_bytes, split_geometry, split_part_shader, split_shader, tensor_conv_shader, tensor_weights,
};
use crate::error::{Error, Result};
use crate::neural::exact::Exact;
use crate::neural::reference::conv_window;
use std::sync::Arc;

/// The pipeline cache's key of a split shader (its third field is otherwise the output
/// channels of a tensor-core shader, or 0 for a plain one).
const SPLIT_KEY: usize = usize::MAX;

/// A convolution shader: one pipeline per distinct value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConvShader {
    /// The plain integer shader: input channels, kernel.
    Plain(usize, usize),
    /// The tensor-core shader: input channels, kernel, output channels.
    Tensor(usize, usize, usize),
    /// The tensor-core shader's split of its input: input channels, kernel.
    Split(usize, usize),
    /// The same split from one part of a concatenation: input channels, kernel.
    SplitPart(usize, usize),
}

impl ConvShader {
    fn key(self) -> (usize, usize, usize) {
        match self {
            ConvShader::Plain(cin, k) => (cin, k, 0),
            ConvShader::Tensor(cin, k, cout) => (cin, k, cout),
            ConvShader::Split(cin, k) => (cin, k, SPLIT_KEY),
            ConvShader::SplitPart(cin, k) => (cin, k, SPLIT_KEY - 1),
        }
    }
}

impl NeuralGpu {
    /// The shaders of convolution `c`: its own, and the split of its input before it on the
    /// tensor cores.
    fn shaders_of(&self, c: &crate::neural::graph::Conv) -> (ConvShader, Option<ConvShader>) {
        match self.on_tensor_cores(c) {
            true => (ConvShader::Tensor(c.cin, c.kernel, c.cout), Some(ConvShader::Split(c.cin, c.kernel))),
            false => (ConvShader::Plain(c.cin, c.kernel), None),
        }
    }

    /// Compiles the pipelines of the convolutions `convs` (each with whether it reads a
    /// concatenation) before their layers are made, the distinct shaders on several threads at
    /// once: translating a tensor-core shader and compiling it take tens of milliseconds each,
    /// and deep networks have tens of them.
    pub(super) fn compile_convs(&self, convs: &[(&crate::neural::graph::Conv, bool)], threads: usize) -> Result<()> {
        let mut shaders: Vec<ConvShader> = Vec::new();
        for &(c, concat) in convs {
            let (conv, split) = self.shaders_of(c);
            let part = split.filter(|_| concat).map(|_| ConvShader::SplitPart(c.cin, c.kernel));
            for s in std::iter::once(conv).chain(split).chain(part) {
                if !shaders.contains(&s) {
                    shaders.push(s);
                }
            }
        }
        super::setup::on_setup_threads(&shaders, threads, |&s| self.shader(s).map(|_| ()))
    }

    /// The pipeline of shader `s`, compiled on first use.
    fn shader(&self, s: ConvShader) -> Result<Arc<wgpu::ComputePipeline>> {
        self.compiled(s.key(), || match s {
            ConvShader::Plain(cin, k) => conv_shader(cin, k, self.tiling),
            ConvShader::Tensor(cin, k, cout) => tensor_conv_shader(cin, cout, k, self.tensor_tiling),
            ConvShader::Split(cin, k) => split_shader(cin, k),
            ConvShader::SplitPart(cin, k) => split_part_shader(cin, k),
        })
    }

    /// Whether convolution `c` runs on the tensor cores.
    fn on_tensor_cores(&self, c: &crate::neural::graph::Conv) -> bool {
        self.tensor
            && c.dilation == 1
            && c.kernel <= neural_tensor::MAX_KERNEL
            && neural_tensor::workgroup_bytes() <= self.workgroup_storage
    }

    /// The pipeline of `key`, compiled from `source` on first use.
    fn compiled(
        &self,
        key: (usize, usize, usize),
        source: impl FnOnce() -> String,
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        let lock = || Error::Internal("neural GPU lock poisoned".into());
        if let Some(p) = self.convs.lock().map_err(|_| lock())?.get(&key) {
            return Ok(p.clone());
        }
        let scope = self.dev.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.dev.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("neural-conv"),
            source: wgpu::ShaderSource::Wgsl(source().into()),
        });
        let p = Arc::new(pipeline(&self.dev.device, &module, "main"));
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("neural shader compilation failed on {}: {e}", self.name)));
        }
        self.convs.lock().map_err(|_| lock())?.insert(key, p.clone());
        Ok(p)
    }

    pub(super) fn layer(&self, n: usize, dc: &crate::neural::exact::DeviceConv<'_>) -> Result<Arc<Layer>> {
        let lock = || Error::Internal("neural GPU lock poisoned".into());
        if let Some(l) = self.layers.lock().map_err(|_| lock())?.get(&n) {
            return Ok(l.clone());
        }
        let c = &dc.conv;
        let (conv, split) = self.shaders_of(c);
        let tensor = split.is_some();
        let pipeline = self.shader(conv)?;
        let split = split.map(|s| self.shader(s)).transpose()?;
        let kk = c.kernel * c.kernel;
        let blocks = match tensor {
            true => tensor_weights(dc.weights, c.cout, c.cin, kk),
            false => weight_blocks(dc.weights, c.cout, c.cin, kk, self.tiling.oc),
        };
        let layer = Arc::new(Layer {
            pipeline,
            split,
            weights: self.words(&blocks, STORAGE),
            params: self.words(&dc.params, STORAGE),
        });
        self.layers.lock().map_err(|_| lock())?.insert(n, layer.clone());
        Ok(layer)
    }

    /// Splits each part of a concatenation (`parts`, with their shifts) that convolution
    /// `(cin, k)` reads into its slices of `xs`, as the split of the made concatenation
    /// would (`uniform`: the convolution's parameters; `groups`: the whole split's workgroups).
    fn split_parts(
        &self,
        enc: &mut wgpu::CommandEncoder,
        (cin, k): (usize, usize),
        (uniform, xs): (&wgpu::Buffer, &wgpu::Buffer),
        parts: &[(Blob, i32)],
        groups: (u32, u32, u32),
    ) -> Result<()> {
        let pipe = self.shader(ConvShader::SplitPart(cin, k))?;
        let mut first = 0;
        for (part, shift) in parts {
            let s = &part.shape;
            let p = [s.c, first, s.x0, s.y0, s.w, s.h].map(|v| v as i32);
            let pp = self.words(&[&p[..], &[*shift]].concat(), STORAGE);
            let sg = (groups.0, groups.1, s.c.div_ceil(16) as u32);
            self.dispatch(enc, (&pipe, "split"), &[uniform, &part.buf, xs, &pp], sg);
            first += s.c;
        }
        Ok(())
    }

    pub(super) fn conv(
        &self,
        enc: &mut wgpu::CommandEncoder,
        n: usize,
        c: &crate::neural::graph::Conv,
        ex: &Exact,
        x: &Blob,
    ) -> Result<Blob> {
        let dc = ex.device_conv(n, c).ok_or_else(|| Error::Gpu(format!("convolution {n} has no GPU form")))?;
        let layer = self.layer(n, &dc)?;
        let pc = &dc.conv;
        let out = shape(pc.cout, conv_window(pc, &x.shape));
        let s = &x.shape;
        // The shader's `Params`: input window, global size, padding, output window, dilation,
        // output channels, two words of padding.
        let mut params = window(s).to_vec();
        params.extend([s.gw, s.gh, pc.pad[0], pc.pad[1]].map(|v| v as i32));
        params.extend(window(&out));
        params.extend([pc.dilation as i32, pc.cout as i32, 0, 0]);
        let uniform = self.words(&params, wgpu::BufferUsages::UNIFORM);
        let y = self.blob_buffer((out.c * out.h * out.w) as u64 * 4)?;
        let t = self.tiling;
        let (px, oc) = match layer.split {
            Some(_) => neural_tensor::block(pc.cout, self.tensor_tiling),
            None => (t.group * t.px, t.oc),
        };
        let groups = (out.w.div_ceil(px) as u32, out.h as u32, pc.cout.div_ceil(oc) as u32);
        if out.w * out.h > 0 {
            // The split shader's rows are the output's plus the kernel's reach.
            if groups.1 + pc.kernel as u32 > 65536 {
                return Err(Error::Gpu(format!("a neural tile of {} rows is too tall for one dispatch", out.h)));
            }
            match &layer.split {
                Some(split) => {
                    let (wp, rows, slices) = split_geometry(out.w, out.h, pc.cin, pc.kernel);
                    let xs = self.blob_buffer(split_bytes(out.w, out.h, pc.cin, pc.kernel))?;
                    let sg = ((4 * wp).div_ceil(64) as u32, rows as u32, slices as u32);
                    // An unmade concatenation's parts split into their slices where they are the
                    // convolution's input channels; anything else split as a made blob.
                    match &x.parts {
                        Some(parts) if parts.iter().map(|(p, _)| p.shape.c).sum::<usize>() == pc.cin => {
                            self.split_parts(enc, (pc.cin, pc.kernel), (&uniform, &xs), parts, sg)?
                        }
                        _ => {
                            let x = self.made(enc, x)?;
                            self.dispatch(enc, (split, "split"), &[&uniform, &x.buf, &xs], sg)
                        }
                    }
                    let conv = (&*layer.pipeline, "conv (tensor)");
                    self.dispatch(enc, conv, &[&uniform, &xs, &layer.weights, &layer.params, &y], groups);
                    self.recycle(xs);
                }
                None => {
                    let x = self.made(enc, x)?;
                    let conv = (&*layer.pipeline, "conv (plain)");
                    self.dispatch(enc, conv, &[&uniform, &x.buf, &layer.weights, &layer.params, &y], groups)
                }
            }
        }
        let conv = Blob::of(out, y);
        if dc.phases == 1 {
            return Ok(conv);
        }
        let out = self.interleave(enc, c, &conv);
        self.recycle(conv.buf);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::neural_shader::ops_shader;
    use super::super::setup::Device;
    use super::*;
    use wgpu::util::DeviceExt;

    const STORAGE_OUT: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC);

    /// Shaders run by hand on a device, in one encoder.
    struct Bench {
        dev: Arc<Device>,
        enc: wgpu::CommandEncoder,
    }

    impl Bench {
        fn words(&self, v: &[i32], usage: wgpu::BufferUsages) -> wgpu::Buffer {
            let contents = bytemuck::cast_slice(v);
            self.dev.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents, usage })
        }

        fn empty(&self, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
            self.dev.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size,
                usage,
                mapped_at_creation: false,
            })
        }

        fn pipeline(&self, src: String, entry: &str) -> wgpu::ComputePipeline {
            let source = wgpu::ShaderSource::Wgsl(src.into());
            let module = self.dev.device.create_shader_module(wgpu::ShaderModuleDescriptor { label: None, source });
            pipeline(&self.dev.device, &module, entry)
        }

        fn run(&mut self, pipe: &wgpu::ComputePipeline, buffers: &[&wgpu::Buffer], groups: (u32, u32, u32)) {
            let entries: Vec<wgpu::BindGroupEntry> = (buffers.iter().enumerate())
                .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
                .collect();
            let layout = pipe.get_bind_group_layout(0);
            let bind = self.dev.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &layout,
                entries: &entries,
            });
            let mut pass = self.enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(pipe);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(groups.0, groups.1, groups.2);
        }

        /// Submits what was run and reads `size` bytes of `b` back.
        fn read(&mut self, b: &wgpu::Buffer, size: u64) -> Vec<u8> {
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

    /// A concatenation's parts split straight into a convolution's split input (each part
    /// read from its own window and shifted to the concatenation's exponent) give the bytes
    /// the split of the made concatenation gives. The split shaders need half floats only,
    /// not the tensor cores, so this runs on lavapipe in CI.
    #[test]
    fn parts_split_as_the_made_concatenation() {
        let Some(a) = super::super::test_adapter() else { return };
        let l = a.limits();
        let f16 = wgpu::Features::SHADER_F16;
        let dev = super::super::setup::shared_device(&a, l.max_buffer_size, l.max_storage_buffer_binding_size, f16)
            .expect("device");
        let enc = dev.device.create_command_encoder(&Default::default());
        let mut b = Bench { dev, enc };
        // Two parts of 16 and 5 channels over different windows of a 12x10 image, the first
        // shifted left by 1 (saturated), the second right by 2 (rounded); a 3x3 convolution
        // with padding 1 over their common window.
        let parts = [(16usize, [0usize, 0, 11, 8], -1i32), (5, [1, 2, 10, 8], 2)];
        let (cin, k, [x0, y0, w, h]) = (21, 3, [1usize, 2, 10, 6]);
        let mut rng = crate::digest::Lcg(7);
        let mut samples = |n: usize| (0..n).map(|_| (rng.next() >> 48) as i32 % 32767).collect::<Vec<_>>();
        let bufs: Vec<wgpu::Buffer> =
            parts.iter().map(|&(c, [_, _, pw, ph], _)| b.words(&samples(c * pw * ph), STORAGE_OUT)).collect();
        let conv = [x0, y0, w, h, 12, 10, 1, 1, x0, y0, w, h, 1, 8, 0, 0].map(|v| v as i32);
        let uniform = b.words(&conv, wgpu::BufferUsages::UNIFORM);
        let split_len = split_bytes(w, h, cin, k);
        let (made_xs, parts_xs) = (b.empty(split_len, STORAGE_OUT), b.empty(split_len, STORAGE_OUT));
        let made = b.empty((cin * w * h * 4) as u64, STORAGE_OUT);
        let (wp, rows, slices) = split_geometry(w, h, cin, k);
        let concat = b.pipeline(ops_shader(), "concat");
        let (split, part) = (b.pipeline(split_shader(cin, k), "main"), b.pipeline(split_part_shader(cin, k), "main"));
        let mut first = 0;
        for (&(c, [px, py, pw, ph], shift), buf) in parts.iter().zip(&bufs) {
            let window = [c, first, x0, y0, w, h, px, py, pw, ph].map(|v| v as i32);
            let p = b.words(&[&window[..], &[shift]].concat(), STORAGE_OUT);
            b.run(&concat, &[&p, buf, buf, &made], ((c * w * h).div_ceil(64) as u32, 1, 1));
            let own = [c, first, px, py, pw, ph].map(|v| v as i32);
            let pp = b.words(&[&own[..], &[shift]].concat(), STORAGE_OUT);
            b.run(
                &part,
                &[&uniform, buf, &parts_xs, &pp],
                ((4 * wp).div_ceil(64) as u32, rows as u32, c.div_ceil(16) as u32),
            );
            first += c;
        }
        b.run(&split, &[&uniform, &made, &made_xs], ((4 * wp).div_ceil(64) as u32, rows as u32, slices as u32));
        let (want, got) = (b.read(&made_xs, split_len), b.read(&parts_xs, split_len));
        assert!(want.iter().any(|&v| v != 0), "the split holds samples");
        assert_eq!(got, want, "the parts' split is the made concatenation's");
    }
}
