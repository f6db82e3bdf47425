//! The exact neural engine on the GPU: a whole tile's network runs on the device — the input
//! window is uploaded once (16-bit samples, widened on the device), every layer reads and
//! writes device buffers, the output window is read back once. An idle device gets a tile's
//! first layer as soon as it is recorded, and works on it while the rest are. Convolutions
//! use shaders generated per layer shape (`neural_shader.rs`); deconvolution phases, pixel
//! shuffle, nearest enlargement and sums use `shaders/neural_ops.wgsl`. The arithmetic is the
//! CPU engine's, in 32-bit integers, so the bytes are the same. Blobs keep their windows as on
//! the CPU (`reference::Tensor`), so the window bookkeeping is the CPU's own code.

use super::neural_cut::TensorTiling;
use super::neural_shader::{ops_shader, ConvTiling, NARROW_OPS, OPS};
use super::neural_tensor::{adapter_has_tensor_cores, TENSOR_FEATURES};
use super::setup::{shared_device, Device};
use crate::error::{Error, Result};
use crate::neural::exact::Exact;
use crate::neural::graph::{Graph, Op};
use crate::neural::reference::{SeScales, Tensor, Window};
use crate::neural::stage::{tracing, DeviceLimits, NetDevice, Samples, Ticket};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub(super) use super::neural_blob::Blob;

/// What a run of the network's nodes reads: the graph, its integers, the tile's input window
/// and the SE blocks' multipliers.
#[derive(Clone, Copy)]
pub(super) struct Run<'a> {
    pub(super) g: &'a Graph,
    pub(super) ex: &'a Exact,
    pub(super) input: &'a Tensor<i16>,
    pub(super) scales: &'a SeScales,
}

/// A convolution layer's device state.
pub(super) struct Layer {
    /// The plain shader's pipeline; none on the tensor cores, whose shader depends on how
    /// the input is held (one blob, or a concatenation's parts: `neural_conv.rs`).
    pub(super) plain: Option<Arc<wgpu::ComputePipeline>>,
    pub(super) weights: wgpu::Buffer,
    pub(super) params: wgpu::Buffer,
    /// On the tensor cores, the taps its shader sums in floats before it folds them
    /// (`neural_weights::flush_runs`): over its input's halves, and over lower parts read whole.
    pub(super) runs: [usize; 2],
}

impl NetDevice for NeuralGpu {
    fn describe(&self) -> String {
        match self.tensor_cores() {
            true => format!("gpu {} (tensor cores)", self.name),
            false => format!("gpu {}", self.name),
        }
    }

    /// The device's own limits. wgpu reports no total of its memory: without `--gpu-memory`
    /// the pass's total is not capped (only each buffer, by the adapter's limits).
    fn limits(&self, gpu_memory: Option<u64>) -> DeviceLimits {
        DeviceLimits::of(self.largest_buffer(), gpu_memory, self.tensor, self.dev.host_memory)
    }

    fn prepare(&self, g: &Graph, ex: &Exact, window: Tensor<i16>, threads: usize) -> Result<()> {
        self.set_width(ex);
        let mut convs = Vec::new();
        for (n, node) in g.nodes.iter().enumerate() {
            if let Op::Conv(c) = &node.op {
                let dc =
                    ex.device_conv(n, c).ok_or_else(|| Error::Gpu(format!("layer {} has no GPU form", node.name)))?;
                let concat = g.nodes.iter().find(|m| matches!(m.op, Op::Concat) && m.outputs.contains(&node.inputs[0]));
                convs.push((n, dc, concat.map(|m| m.inputs.iter().map(|&i| g.sizes[i].0).collect::<Vec<_>>())));
            }
        }
        let t0 = std::time::Instant::now();
        // The layers first: their weights set how long their shaders' float runs are.
        super::setup::on_setup_threads(&convs, threads, |(n, dc, _)| self.layer(*n, dc).map(|_| ()))?;
        let made = t0.elapsed().as_secs_f64();
        let layers = convs.iter().map(|(n, dc, _)| self.layer(*n, dc)).collect::<Result<Vec<_>>>()?;
        let shapes = convs.iter().zip(&layers).map(|((_, dc, parts), l)| (&dc.conv, parts.as_deref(), l.runs));
        self.compile_convs(&shapes.collect::<Vec<_>>(), threads)?;
        if tracing() {
            let compiled = t0.elapsed().as_secs_f64() - made;
            eprintln!("neural trace: layers made in {made:.3} s, shaders compiled in {compiled:.3} s");
        }
        // A dry run over the largest window fills the buffer pool (allocating large device
        // buffers takes a while) without computing anything.
        self.dry.store(true, std::sync::atomic::Ordering::Relaxed);
        let crop = |o: &Tensor<i16>| Ok(Samples { crop: (0, 0, o.w, o.h), exponent: 0, max: 255, grey: false, bps: 1 });
        let none = SeScales::new();
        let r = self.submit(g, ex, window, &none, &crop).and_then(|t| self.finish(t, &mut |_| {}));
        self.dry.store(false, std::sync::atomic::Ordering::Relaxed);
        r
    }

    fn submit(
        &self,
        g: &Graph,
        ex: &Exact,
        input: Tensor<i16>,
        scales: &SeScales,
        samples: &dyn Fn(&Tensor<i16>) -> Result<Samples>,
    ) -> Result<Ticket> {
        Ok(Box::new(NeuralGpu::submit(self, g, ex, input, scales, samples)?))
    }

    fn submit_prefix_sums(
        &self,
        g: &Graph,
        ex: &Exact,
        (input, scales): (Tensor<i16>, &SeScales),
        stop: usize,
        owned: &dyn Fn(&Tensor<i16>) -> Result<Window>,
    ) -> Result<(Ticket, Window)> {
        NeuralGpu::submit_prefix_sums(self, g, ex, (input, scales), stop, owned)
    }

    fn finish_prefix_sums(&self, t: Ticket) -> Result<Vec<i64>> {
        NeuralGpu::finish_prefix_sums(self, t)
    }

    fn finish(&self, t: Ticket, take: &mut dyn FnMut(&[u8])) -> Result<()> {
        let t = t.downcast::<InFlight>().map_err(|_| Error::Internal("a ticket from another device".into()))?;
        NeuralGpu::finish(self, *t, take)
    }

    fn device_handle(&self) -> Box<dyn std::any::Any + Send> {
        Box::new(self.dev.clone())
    }
}

/// A tile submitted to the device: what [`NeuralGpu::finish`] needs to read its samples back.
pub(crate) struct InFlight {
    /// The submission (none for a dry run).
    index: Option<wgpu::SubmissionIndex>,
    staging: wgpu::Buffer,
    converted: Arc<wgpu::Buffer>,
    bytes: usize,
    /// Counted in [`NeuralGpu::flights`] until read back or dropped (a cancelled job's).
    _flight: Option<Flight>,
}

/// One submission counted in [`NeuralGpu::flights`]: the count goes down when it is dropped,
/// whether it was read back or abandoned (a cancelled job's tiles in flight).
pub(super) struct Flight(Arc<std::sync::atomic::AtomicUsize>);

impl Flight {
    /// Counts one more submission in `flights`.
    pub(super) fn start(flights: &Arc<std::sync::atomic::AtomicUsize>) -> Flight {
        flights.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Flight(flights.clone())
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A GPU that runs the exact engine's networks.
pub(crate) struct NeuralGpu {
    pub(super) dev: Arc<Device>,
    pub(super) name: String,
    pub(super) ops: HashMap<&'static str, wgpu::ComputePipeline>,
    /// Compiled convolution shaders (`neural_conv.rs`).
    pub(super) convs: Mutex<HashMap<super::neural_blob::ConvShader, Arc<wgpu::ComputePipeline>>>,
    pub(super) tiling: ConvTiling,
    /// How the tensor-core convolutions' work is cut (`neural_tensor.rs`).
    pub(super) tensor_tiling: TensorTiling,
    /// Whether convolutions run on the tensor cores (`neural_tensor.rs`).
    pub(super) tensor: bool,
    /// Bytes of workgroup memory a shader may use.
    pub(super) workgroup_storage: usize,
    pub(super) layers: Mutex<HashMap<usize, Arc<Layer>>>,
    /// Per function node: its table on the device.
    pub(super) tables: Mutex<HashMap<usize, Arc<wgpu::Buffer>>>,
    /// Blob buffers no longer read, kept for the next layers and tiles: allocating large
    /// device buffers is slow, and a tile's layers need the same few sizes again and again.
    pool: Mutex<Vec<Arc<wgpu::Buffer>>>,
    /// Free read-back buffers (two tiles are in flight at most: one on the device, one being
    /// read).
    staging: Mutex<Vec<wgpu::Buffer>>,
    /// While set, `run` only allocates buffers: no upload, dispatch or read-back.
    dry: std::sync::atomic::AtomicBool,
    /// Tiles submitted and not yet read back: while none is, the device waits for the next
    /// tile's first layers.
    pub(super) flights: Arc<std::sync::atomic::AtomicUsize>,
    /// The passes' device time, with `GIGASCALE_GPU_PROFILE=1` (`profile.rs`).
    profile: Option<super::profile::Profile>,
    /// Whether the network's activations are 24-bit (`neural_wide.rs`).
    pub(super) wide: std::sync::atomic::AtomicBool,
}

pub(super) const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE;
/// Blob buffers the process's networks have created, and their bytes (for
/// `GIGASCALE_TRACE_NEURAL`: a pool that misses shows as growth from tile to tile).
static BLOBS_MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static BLOB_BYTES_MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Usage of every blob buffer.
const BLOB: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

pub(super) fn shape(c: usize, [(x0, w, gw), (y0, h, gh)]: [(usize, usize, usize); 2]) -> Tensor<i16> {
    Tensor { c, h, w, x0, y0, gw, gh, data: Vec::new() }
}

/// The features a network's device asks for on `adapter`: the tensor cores' where it has them
/// (`neural_tensor.rs`: the same bytes, faster), unless `GIGASCALE_GPU_TENSOR=0` asks for the
/// plain shaders; timestamp queries with `GIGASCALE_GPU_PROFILE=1` (`profile.rs`). The
/// resampler's device asks for them too, so that the two share one.
pub(crate) fn network_features(adapter: &wgpu::Adapter) -> wgpu::Features {
    let tensor = match std::env::var("GIGASCALE_GPU_TENSOR").as_deref() != Ok("0") && adapter_has_tensor_cores(adapter)
    {
        true => TENSOR_FEATURES,
        false => wgpu::Features::empty(),
    };
    tensor | super::profile::profile_features(adapter)
}

impl NeuralGpu {
    /// Opens `adapter` for the neural engine and compiles the data-movement shaders. With
    /// `cap` (a test hook), the device is opened with its largest buffer and storage binding
    /// lowered to `cap`, as a smaller adapter's would be.
    pub(crate) fn open(adapter: &wgpu::Adapter, cap: Option<u64>) -> Result<NeuralGpu> {
        let l = adapter.limits();
        let name = adapter.get_info().name;
        let cap = cap.unwrap_or(u64::MAX);
        let binding = l.max_storage_buffer_binding_size.min(cap);
        let features = network_features(adapter);
        let tensor = features.contains(TENSOR_FEATURES);
        let dev = shared_device(adapter, l.max_buffer_size.min(cap), binding, features)?;
        let profile = super::profile::Profile::new(&dev.device, &dev.queue);
        let scope = dev.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = dev.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("neural-ops"),
            source: wgpu::ShaderSource::Wgsl(ops_shader().into()),
        });
        let mut ops: HashMap<_, _> = OPS.into_iter().map(|e| (e, pipeline(&dev.device, &module, e))).collect();
        let narrow = [("NARROW_STEPS", 1.0)];
        ops.extend(NARROW_OPS.map(|(name, e)| (name, pipeline_with(&dev.device, &module, e, &narrow))));
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("neural shader compilation failed on {name}: {e}")));
        }
        let tiling = ConvTiling::from_env();
        Ok(NeuralGpu {
            dev,
            name,
            ops,
            convs: Mutex::default(),
            layers: Mutex::default(),
            tables: Mutex::default(),
            tiling,
            tensor_tiling: TensorTiling::from_env(),
            tensor,
            workgroup_storage: l.max_compute_workgroup_storage_size as usize,
            pool: Mutex::default(),
            staging: Mutex::default(),
            dry: Default::default(),
            flights: Default::default(),
            profile,
            wide: Default::default(),
        })
    }

    pub(super) fn check(&self) -> Result<()> {
        match self.dev.failure.lock().ok().and_then(|g| g.clone()) {
            Some(f) => Err(Error::Gpu(format!("{}: {f}", self.name))),
            None => Ok(()),
        }
    }

    /// Records `g` on `input` (a window of the padded image), the conversion of its output to
    /// samples as `samples` says for the output's window, and the copy of the samples to a
    /// read-back buffer, as one submission, and submits it; returns at once. The next tile
    /// can then be prepared while the device works; [`NeuralGpu::finish`] reads this one.
    pub(crate) fn submit(
        &self,
        g: &Graph,
        ex: &Exact,
        input: Tensor<i16>,
        scales: &SeScales,
        samples: &dyn Fn(&Tensor<i16>) -> Result<Samples>,
    ) -> Result<InFlight> {
        self.check()?;
        let t0 = std::time::Instant::now();
        let enc = &mut self.dev.device.create_command_encoder(&Default::default());
        let out = self.record(enc, g, ex, &input, scales, g.output)?;
        let spec = samples(&out.shape)?;
        let converted = self.samples(enc, &out, &spec)?;
        self.recycle(out.buf);
        let bytes = spec.row_bytes() * spec.crop.3;
        if tracing() {
            use std::sync::atomic::Ordering::Relaxed;
            let (made, bytes) = (BLOBS_MADE.load(Relaxed), BLOB_BYTES_MADE.load(Relaxed));
            eprintln!(
                "neural trace: recorded in {:.3} s ({made} blob buffers of {} MiB made so far)",
                t0.elapsed().as_secs_f64(),
                bytes >> 20
            );
        }
        let words = (bytes as u64).div_ceil(4).max(4) * 4;
        let staging = self.staging_buffer(words)?;
        let converted = converted.buf;
        if self.is_dry() {
            return Ok(InFlight { index: None, staging, converted, bytes, _flight: None });
        }
        enc.copy_buffer_to_buffer(&converted, 0, &staging, 0, words);
        let enc = std::mem::replace(enc, self.dev.device.create_command_encoder(&Default::default()));
        let index = Some(self.dev.queue.submit([enc.finish()]));
        self.profiled();
        let _flight = Some(Flight::start(&self.flights));
        Ok(InFlight { index, staging, converted, bytes, _flight })
    }

    /// Records `g` on `input` up to blob `stop` (with the SE blocks' multipliers `scales`) and
    /// returns that blob; every other blob's buffer goes back to the pool. The whole network's
    /// enlarging tail, where it has one, runs in strips (`neural_tail.rs`).
    pub(super) fn record(
        &self,
        enc: &mut wgpu::CommandEncoder,
        g: &Graph,
        ex: &Exact,
        input: &Tensor<i16>,
        scales: &SeScales,
        stop: usize,
    ) -> Result<Blob> {
        let mut blobs: Vec<Option<Blob>> = vec![None; g.blobs];
        self.set_width(ex);
        let run = Run { g, ex, input, scales };
        match g.tail_cut().filter(|_| stop == g.output) {
            Some(t) => {
                let cut = self.run_nodes(enc, &run, &mut blobs, 0, t.cut)?;
                self.tail_in_strips(enc, &run, cut, &t)
            }
            None => self.run_nodes(enc, &run, &mut blobs, 0, stop),
        }
    }

    /// Records the nodes of `run` from node `from` on, over the blobs already in `blobs`,
    /// until blob `stop` is made, and returns it.
    pub(super) fn run_nodes(
        &self,
        enc: &mut wgpu::CommandEncoder,
        run: &Run<'_>,
        blobs: &mut [Option<Blob>],
        from: usize,
        stop: usize,
    ) -> Result<Blob> {
        let g = run.g;
        let mut last = g.last_uses();
        last[stop] = usize::MAX;
        let readers = g.sole_readers();
        // An idle device starts on a tile's first layer while the rest are recorded (a
        // network's recording takes tens of milliseconds on some drivers; realesrgan-x4plus
        // has 350 convolutions): it gets the first convolution, then the next 7, then 56, ...
        // (each run takes the device longer than recording the next one). A busy device has
        // the previous tile to work on; and each submission holds host memory until it is
        // done (four more per tile cost animevideov3 10 MB under --max-memory 300M).
        let idle = from == 0 && self.flights.load(std::sync::atomic::Ordering::Relaxed) == 0;
        let (mut convs, mut flush_at) = (0usize, if idle { 1 } else { usize::MAX });
        // A sum taken with the convolution before it (`sum_after`) is not recorded again.
        let mut taken = Vec::new();
        for (n, node) in g.nodes.iter().enumerate().skip(from) {
            if blobs[stop].is_some() {
                break;
            }
            if !taken.contains(&n) {
                let fused = self.sum_after((run, &readers), n, blobs, stop);
                let mut out = self.record_node(enc, run, (n, fused.as_ref()), blobs)?;
                let last = fused.as_ref().and_then(|f| f.nodes.last());
                let outputs = last.map_or(&node.outputs, |&m| &g.nodes[m].outputs);
                taken.extend(fused.into_iter().flat_map(|f| f.nodes));
                if outputs.contains(&stop) && out.parts.is_some() {
                    let made = self.made(enc, &out)?;
                    self.release(std::mem::replace(&mut out, made));
                }
                for &o in outputs {
                    blobs[o] = Some(out.clone());
                }
            }
            if matches!(node.op, Op::Conv(_)) {
                convs += 1;
                if convs == flush_at {
                    self.flush(enc);
                    flush_at *= 8;
                }
            }
            for &i in &node.inputs {
                if last[i] == n {
                    if let Some(b) = blobs[i].take() {
                        self.release(b);
                    }
                }
            }
        }
        blobs[stop].take().ok_or_else(|| Error::Internal("the output blob was not computed".into()))
    }

    /// Submits what `enc` holds so far and leaves it empty (not in a dry run). Later
    /// submissions run after it, so a tile's [`InFlight`] waits for its last one only.
    fn flush(&self, enc: &mut wgpu::CommandEncoder) {
        if !self.is_dry() {
            let done = std::mem::replace(enc, self.dev.device.create_command_encoder(&Default::default()));
            self.dev.queue.submit([done.finish()]);
            self.profiled();
        }
    }

    /// With the profile on, reads the timestamps of what was submitted (`profile.rs`).
    pub(super) fn profiled(&self) {
        if let Some(p) = &self.profile {
            p.collect(&self.dev.device, &self.dev.queue);
        }
    }

    fn buffer(&self, bytes: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.dev.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("neural"),
            size: bytes.max(16).next_multiple_of(4),
            usage,
            mapped_at_creation: false,
        })
    }

    /// A blob buffer of at least `bytes`: the smallest free one that fits, else a new one
    /// (sizes rounded up to 1 MiB so that they can be reused).
    pub(super) fn blob_buffer(&self, bytes: u64) -> Result<Arc<wgpu::Buffer>> {
        let need = bytes.max(16).next_multiple_of(if bytes > 1 << 20 { 1 << 20 } else { 16 });
        let mut pool = self.pool.lock().map_err(|_| Error::Internal("neural GPU pool poisoned".into()))?;
        let best = (0..pool.len()).filter(|&i| pool[i].size() >= need).min_by_key(|&i| pool[i].size());
        Ok(match best {
            Some(i) => pool.swap_remove(i),
            None => {
                BLOBS_MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                BLOB_BYTES_MADE.fetch_add(need, std::sync::atomic::Ordering::Relaxed);
                Arc::new(self.buffer(need, BLOB))
            }
        })
    }

    /// Returns a blob's buffer to the pool once no blob refers to it.
    pub(super) fn recycle(&self, b: Arc<wgpu::Buffer>) {
        if Arc::strong_count(&b) == 1 {
            if let Ok(mut pool) = self.pool.lock() {
                pool.push(b);
            }
        }
    }

    pub(super) fn words(&self, words: &[i32], usage: wgpu::BufferUsages) -> wgpu::Buffer {
        let b = self.buffer(words.len() as u64 * 4, usage | wgpu::BufferUsages::COPY_DST);
        self.dev.queue.write_buffer(&b, 0, bytemuck::cast_slice(words));
        b
    }

    /// The largest buffer a shader may bind: the smaller of the device's largest buffer and
    /// largest storage binding.
    pub(super) fn largest_buffer(&self) -> u64 {
        let l = self.dev.device.limits();
        l.max_buffer_size.min(l.max_storage_buffer_binding_size)
    }

    pub(super) fn is_dry(&self) -> bool {
        self.dry.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A free read-back buffer of at least `words` bytes.
    pub(super) fn staging_buffer(&self, words: u64) -> Result<wgpu::Buffer> {
        let mut free = self.staging.lock().map_err(|_| Error::Internal("neural GPU staging poisoned".into()))?;
        let best = (0..free.len()).filter(|&i| free[i].size() >= words).min_by_key(|&i| free[i].size());
        Ok(match best {
            Some(i) => free.swap_remove(i),
            None => self.buffer(words, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
        })
    }

    /// Waits for tile `f`'s submission (not for later ones), maps its samples and hands them
    /// to `take`.
    pub(crate) fn finish(&self, f: InFlight, take: &mut dyn FnMut(&[u8])) -> Result<()> {
        let InFlight { index, staging, converted, bytes, _flight } = f;
        self.recycle(converted);
        match index {
            Some(index) => {
                drop(_flight);
                self.read_back(staging, index, (bytes as u64).div_ceil(4).max(4) * 4, bytes, take)
            }
            None => {
                self.return_staging(staging);
                Ok(())
            }
        }
    }

    /// Waits for submission `index`, maps the first `len` bytes of `staging`, hands the first
    /// `bytes` of them to `take`, and returns the buffer to the pool.
    pub(super) fn read_back(
        &self,
        staging: wgpu::Buffer,
        index: wgpu::SubmissionIndex,
        len: u64,
        bytes: usize,
        take: &mut dyn FnMut(&[u8]),
    ) -> Result<()> {
        let slice = staging.slice(..len);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        let t0 = std::time::Instant::now();
        let wait = wgpu::PollType::Wait { submission_index: Some(index), timeout: None };
        self.dev.device.poll(wait).map_err(|e| Error::Gpu(format!("poll: {e}")))?;
        let mapped = rx.recv().map_err(|_| Error::Gpu("read-back was dropped".into()))?;
        mapped.map_err(|e| Error::Gpu(format!("map read-back: {e}")))?;
        self.check()?;
        if tracing() {
            eprintln!("neural trace: device wait {:.3} s", t0.elapsed().as_secs_f64());
        }
        {
            let view = slice.get_mapped_range().map_err(|e| Error::Gpu(format!("read-back view: {e}")))?;
            take(&view[..bytes]);
        }
        staging.unmap();
        self.return_staging(staging);
        Ok(())
    }

    fn return_staging(&self, staging: wgpu::Buffer) {
        if let Ok(mut free) = self.staging.lock() {
            free.push(staging);
        }
    }

    /// Records one dispatch of `pipe` (a pass of `kind`, for the profile) with `entries`
    /// bound, `groups` workgroups.
    pub(super) fn dispatch(
        &self,
        enc: &mut wgpu::CommandEncoder,
        (pipe, kind): (&wgpu::ComputePipeline, &'static str),
        entries: &[&wgpu::Buffer],
        groups: (u32, u32, u32),
    ) {
        if self.is_dry() {
            return;
        }
        let timestamp_writes = self.profile.as_ref().and_then(|p| p.pass(kind));
        record_pass(&self.dev.device, enc, pipe, entries, groups, timestamp_writes);
    }
}

/// Records one compute pass of `pipe` over `groups` with `buffers` bound in order (binding 0,
/// 1, ...) in group 0, with `timestamp_writes` where the profile asks for them.
pub(super) fn record_pass(
    device: &wgpu::Device,
    enc: &mut wgpu::CommandEncoder,
    pipe: &wgpu::ComputePipeline,
    buffers: &[&wgpu::Buffer],
    groups: (u32, u32, u32),
    timestamp_writes: Option<wgpu::ComputePassTimestampWrites<'_>>,
) {
    let entries: Vec<wgpu::BindGroupEntry> = (buffers.iter().enumerate())
        .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
        .collect();
    let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("neural"),
        layout: &pipe.get_bind_group_layout(0),
        entries: &entries,
    });
    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes });
    pass.set_pipeline(pipe);
    pass.set_bind_group(0, &bind, &[]);
    pass.dispatch_workgroups(groups.0, groups.1, groups.2);
}

/// A blob's window `(x0, y0, w, h)` as shader parameters.
pub(super) fn window(t: &Tensor<i16>) -> [i32; 4] {
    [t.x0, t.y0, t.w, t.h].map(|v| v as i32)
}

pub(super) fn pipeline(d: &wgpu::Device, m: &wgpu::ShaderModule, entry: &str) -> wgpu::ComputePipeline {
    pipeline_with(d, m, entry, &[])
}

/// [`pipeline`] with the module's pipeline-overridable constants set to `constants`.
pub(super) fn pipeline_with(
    d: &wgpu::Device,
    m: &wgpu::ShaderModule,
    entry: &str,
    constants: &[(&str, f64)],
) -> wgpu::ComputePipeline {
    let compilation_options = wgpu::PipelineCompilationOptions { constants, ..Default::default() };
    d.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(entry),
        layout: None,
        module: m,
        entry_point: Some(entry),
        compilation_options,
        cache: None,
    })
}
