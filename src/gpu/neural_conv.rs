//! Convolution layers on the device: on an adapter that has them (unless
//! `GIGASCALE_GPU_TENSOR=0`), the tensor-core shaders of `neural_tensor.rs`, each after a small
//! shader that splits its input into the halves the matrices read; otherwise the plain integer
//! shaders of `neural_shader.rs` (the same bytes). Pipelines are compiled once per layer
//! shape; each layer's weights are uploaded once, in the layout its shader reads.

use super::neural::{pipeline, shape, window, Blob, Layer, NeuralGpu, STORAGE};
use super::neural_shader::{conv_shader, weight_blocks};
use super::neural_tensor::{self, split_bytes, split_geometry, split_shader, tensor_conv_shader, tensor_weights};
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
}

impl ConvShader {
    fn key(self) -> (usize, usize, usize) {
        match self {
            ConvShader::Plain(cin, k) => (cin, k, 0),
            ConvShader::Tensor(cin, k, cout) => (cin, k, cout),
            ConvShader::Split(cin, k) => (cin, k, SPLIT_KEY),
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

    /// Compiles the pipelines of the convolutions `convs` before their layers are made, the
    /// distinct shaders on several threads at once: translating a tensor-core shader and
    /// compiling it take tens of milliseconds each, and deep networks have tens of them.
    pub(super) fn compile_convs(&self, convs: &[&crate::neural::graph::Conv], threads: usize) -> Result<()> {
        let mut shaders: Vec<ConvShader> = Vec::new();
        for c in convs {
            let (conv, split) = self.shaders_of(c);
            for s in std::iter::once(conv).chain(split) {
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
                    self.dispatch(enc, (split, "split"), &[&uniform, &x.buf, &xs], sg);
                    let conv = (&*layer.pipeline, "conv (tensor)");
                    self.dispatch(enc, conv, &[&uniform, &xs, &layer.weights, &layer.params, &y], groups);
                    self.recycle(xs);
                }
                None => {
                    let conv = (&*layer.pipeline, "conv (plain)");
                    self.dispatch(enc, conv, &[&uniform, &x.buf, &layer.weights, &layer.params, &y], groups)
                }
            }
        }
        let conv = Blob { shape: out, buf: y };
        if dc.phases == 1 {
            return Ok(conv);
        }
        let out = self.interleave(enc, c, &conv);
        self.recycle(conv.buf);
        out
    }
}
