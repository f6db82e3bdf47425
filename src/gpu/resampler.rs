//! Device setup, the ring of GPU slots and the tile loop.
//!
//! Each slot owns an upload staging buffer (MAP_WRITE: parameters + packed source window),
//! device buffers (parameters, window, intermediate, output tile) and a read-back staging
//! buffer (MAP_READ). A tile's upload, compute and read-back are one submission; up to
//! `slots` submissions are in flight, so uploading tile k+1, computing tile k and reading back
//! tile k-1 overlap. Staging buffers are remapped by `map_buffer_on_submit` when their
//! submission completes; a slot is reused only after its read-back has been consumed. Nothing
//! is allocated after start-up: a full ring blocks.

use super::shaders::{Params, HLAST, HPASS, HPASS_F16, VFIRST, VPASS, VPASS_F16};
use crate::error::{Error, Result};
use crate::plan::{Geometry, Plan, TileJob};
use crate::store::Rows;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

/// Caps on what the GPU backend may allocate, combined with the adapter's own limits.
#[derive(Debug, Clone, Copy)]
pub struct GpuLimits {
    /// Total device memory gigascale may allocate (`--gpu-memory`).
    pub device_memory: u64,
    /// Largest single buffer.
    pub max_buffer: u64,
    /// Largest storage binding.
    pub max_binding: u64,
    /// Host memory for staging buffers.
    pub host_memory: u64,
}

/// Bytes of the parameter area at the start of each upload: the horizontal pass' parameters
/// at 0, the vertical pass' at `PARAM_SIZE`.
const PARAMS_BYTES: u64 = 256;
const PARAM_SIZE: u64 = 128;
const WG: u32 = 64;
const MAX_GROUPS: u32 = 65535;

// Map states of a staging buffer.
const PENDING: u8 = 0;
const MAPPED: u8 = 1;
const FAILED: u8 = 2;

struct Slot {
    upload: wgpu::Buffer,
    params_h: wgpu::Buffer,
    params_v: wgpu::Buffer,
    src: wgpu::Buffer,
    _inter: wgpu::Buffer,
    out: wgpu::Buffer,
    readback: wgpu::Buffer,
    bind_h: wgpu::BindGroup,
    bind_v: wgpu::BindGroup,
    upload_state: Arc<AtomicU8>,
    read_state: Arc<AtomicU8>,
    /// The submission that carries this slot's current tile.
    submission: Option<wgpu::SubmissionIndex>,
}

/// The GPU resampler of one job.
pub struct GpuResampler {
    device: wgpu::Device,
    queue: wgpu::Queue,
    hpass: wgpu::ComputePipeline,
    vpass: wgpu::ComputePipeline,
    /// Rounded intermediate: pass 1 (`hpass`) is vertical, pass 2 (`vpass`) horizontal.
    vertical_first: bool,
    slots: Vec<Slot>,
    free: VecDeque<usize>,
    /// Bytes of one output run buffer (`run` tiles side by side).
    run_bytes: u64,
    /// Tiles per run (see [`GpuResampler::run_length`]).
    run: u32,
    tile: u32,
    bpp: usize,
    window_cap: u64,
    base: Params,
    failure: Arc<Mutex<Option<String>>>,
    /// Commands recorded by `submit` and not yet handed to the queue (see `flush`).
    batch: Option<wgpu::CommandEncoder>,
    /// The slots recorded into `batch`.
    batch_slots: Vec<usize>,
    /// Adapter description for the run summary.
    pub adapter: String,
    /// Device bytes allocated.
    pub device_bytes: u64,
    /// Host staging bytes allocated.
    pub host_bytes: u64,
    /// Seconds spent copying tiles out of read-back buffers.
    pub readback_seconds: f64,
}

fn align4(n: u64) -> u64 {
    n.div_ceil(4) * 4
}

fn coeff_words(c: &crate::AxisCoeffs) -> Vec<i32> {
    let (starts, lens, weights) = c.raw();
    let mut v = Vec::with_capacity(starts.len() * 2 + weights.len());
    v.extend(starts.iter().map(|&s| s as i32));
    v.extend(lens.iter().map(|&l| l as i32));
    v.extend_from_slice(weights);
    v
}

impl GpuResampler {
    /// Tiles of one row the GPU computes as one unit (a "run"): up to 1024 output pixels wide,
    /// fewer when the run's source window would outgrow a single tile's (extreme downscales).
    /// Small tiles cost the GPU per dispatch, not per pixel; runs amortise that.
    pub fn run_length(geom: &Geometry) -> u32 {
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

    /// Sizes per slot for `plan`: (upload staging, window, intermediate, output run). The
    /// intermediate holds 4-byte integers, or 2-byte halves with `f16`.
    pub fn slot_sizes(plan: &Plan, f16: bool) -> (u64, u64, u64, u64) {
        let k = Self::run_length(&plan.geometry());
        let (ww, wh) = plan.max_window_run(k);
        Self::sizes_for_window(&plan.geometry(), k, (ww as u64, wh as u64), f16)
    }

    fn sizes_for_window(geom: &Geometry, k: u32, (ww, wh): (u64, u64), f16: bool) -> (u64, u64, u64, u64) {
        let bpp = geom.layout.bytes_per_pixel() as u64;
        let ch = geom.layout.channels.count() as u64;
        let k = k as u64;
        let window = align4(ww * wh * bpp).max(4);
        // pass 1 keeps window rows x run columns, or (vertical first) tile rows x window columns
        let (lines, cols) = if geom.vertical_first() { (geom.tile as u64, ww) } else { (wh, k * geom.tile as u64) };
        let inter = align4(lines * cols * ch * if f16 { 2 } else { 4 }).max(4);
        let out = align4(k * geom.tile_bytes());
        (PARAMS_BYTES + window, window, inter, out)
    }

    /// Host memory one slot needs (upload + read-back staging), an upper bound from the
    /// geometry alone (for the memory plan, before any table exists).
    pub fn host_bytes_per_slot(geom: &Geometry) -> u64 {
        let k = Self::run_length(geom);
        let (up, _, _, out) = Self::sizes_for_window(geom, k, geom.window_bound(k, 1), false);
        up + out
    }

    /// Opens the device on `adapter` and builds pipelines, tables and up to `want_slots` slots
    /// within `limits`. With `f16` (the adapter must have `SHADER_F16`) the intermediate is
    /// stored in half precision: half the device memory, results within the bound stated in
    /// docs/how-it-works.md instead of bit-identical.
    pub fn new(
        adapter: wgpu::Adapter,
        plan: &Plan,
        limits: GpuLimits,
        want_slots: usize,
        f16: bool,
    ) -> Result<GpuResampler> {
        let info = adapter.get_info();
        let al = adapter.limits();
        let max_buffer = limits.max_buffer.min(al.max_buffer_size);
        let max_binding = limits.max_binding.min(al.max_storage_buffer_binding_size);
        if f16 && plan.arith.vertical_first() {
            return Err(Error::usage("the f16 GPU intermediate and the rounded intermediate exclude each other"));
        }
        if f16 && !adapter.features().contains(wgpu::Features::SHADER_F16) {
            return Err(Error::Gpu(format!("{} has no SHADER_F16 for --precision f16", info.name)));
        }
        let (up, window, inter, out) = Self::slot_sizes(plan, f16);
        let cx = coeff_words(&plan.x);
        let cy = coeff_words(&plan.y);
        let table_bytes = (cx.len() + cy.len()) as u64 * 4;
        for (what, n) in [
            ("source window", window),
            ("intermediate", inter),
            ("output tile", out),
            ("x coefficients", cx.len() as u64 * 4),
            ("y coefficients", cy.len() as u64 * 4),
        ] {
            if n > max_binding || n > max_buffer {
                return Err(Error::limit(
                    format!("gpu {what} buffer"),
                    n,
                    max_binding.min(max_buffer),
                    Some("lower --tile, or use --backend cpu".into()),
                ));
            }
        }
        let per_slot_dev = 2 * PARAM_SIZE + window + inter + out;
        let per_slot_host = up + out;
        let fit_dev = limits.device_memory.saturating_sub(table_bytes) / per_slot_dev;
        let fit_host = limits.host_memory / per_slot_host;
        let slots = want_slots.min(fit_dev as usize).min(fit_host as usize);
        if slots == 0 {
            return Err(Error::limit(
                "--gpu-memory",
                table_bytes + per_slot_dev,
                limits.device_memory,
                Some("one GPU slot does not fit; raise --gpu-memory or lower --tile".into()),
            ));
        }
        let mut required_limits = wgpu::Limits::downlevel_defaults();
        required_limits.max_buffer_size = max_buffer;
        required_limits.max_storage_buffer_binding_size = max_binding;
        required_limits.max_storage_buffers_per_shader_stage = 4;
        required_limits.max_compute_workgroups_per_dimension = MAX_GROUPS;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("gigascale"),
            required_features: wgpu::Features::SHADER_INT64
                | if f16 { wgpu::Features::SHADER_F16 } else { wgpu::Features::empty() },
            required_limits,
            ..Default::default()
        }))
        .map_err(|e| Error::Gpu(format!("{}: cannot open device: {e}", info.name)))?;
        let failure: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        {
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
        }
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = |name: &str, src: &str| {
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(std::borrow::Cow::Borrowed(src)),
            })
        };
        let vertical_first = plan.arith.vertical_first();
        // "hpass"/"vpass" below are pass 1 and pass 2, whatever their direction.
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
        let hpass = pipeline(&hm, "hpass");
        let vpass = pipeline(&vm, "vpass");
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("shader compilation failed on {}: {e}", info.name)));
        }
        let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        let buf = |label: &str, size: u64, usage: wgpu::BufferUsages, mapped: bool| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: mapped,
            })
        };
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let bx = buf("cx", (cx.len() as u64 * 4).max(4), storage, true);
        let by = buf("cy", (cy.len() as u64 * 4).max(4), storage, true);
        for (b, words) in [(&bx, &cx), (&by, &cy)] {
            let bytes: &[u8] = bytemuck::cast_slice(words);
            b.get_mapped_range_mut(..)
                .map_err(|e| Error::Gpu(format!("map coefficient table: {e}")))?
                .slice(..bytes.len())
                .copy_from_slice(bytes);
            b.unmap();
        }
        let mut v = Vec::with_capacity(slots);
        for _ in 0..slots {
            let upload = buf("upload", up, wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC, true);
            let uniform = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
            let params_h = buf("params-h", PARAM_SIZE, uniform, false);
            let params_v = buf("params-v", PARAM_SIZE, uniform, false);
            let src = buf("window", window, storage, false);
            let inter_b = buf("inter", inter, wgpu::BufferUsages::STORAGE, false);
            let out_b = buf("out", out, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC, false);
            let readback = buf("readback", out, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST, false);
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
            let bind_h = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("hpass"),
                layout: &hpass.get_bind_group_layout(0),
                entries: &entries(&params_h, &src, if vertical_first { &by } else { &bx }, &inter_b),
            });
            let bind_v = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("vpass"),
                layout: &vpass.get_bind_group_layout(0),
                entries: &entries(&params_v, &inter_b, if vertical_first { &bx } else { &by }, &out_b),
            });
            v.push(Slot {
                upload,
                params_h,
                params_v,
                src,
                _inter: inter_b,
                out: out_b,
                readback,
                bind_h,
                bind_v,
                upload_state: Arc::new(AtomicU8::new(MAPPED)),
                read_state: Arc::new(AtomicU8::new(PENDING)),
                submission: None,
            });
        }
        if let Some(e) = pollster::block_on(oom.pop()) {
            return Err(Error::Gpu(format!("{}: cannot allocate buffers: {e}", info.name)));
        }
        let ar = &plan.arith;
        let run = Self::run_length(&plan.geometry());
        let base = Params {
            tile: plan.tile,
            ch: ar.channels as u32,
            bps: plan.layout.depth.bytes() as u32,
            alpha: ar.alpha as u32,
            sh1_colour: ar.colour.sh1,
            sh1_plain: ar.plain.sh1,
            k2_plain: ar.plain.k2,
            max_value: ar.max,
            n_shift: ar.n_shift,
            d_shift: ar.d_shift,
            taps_x: plan.x.max_taps() as u32,
            taps_y: plan.y.max_taps() as u32,
            n_x: plan.x.out_len(),
            n_y: plan.y.out_len(),
            t_plain: ar.plain.t_bits,
            t_colour: ar.colour.t_bits,
            out_stride: run * plan.tile,
            ..Default::default()
        };
        Ok(GpuResampler {
            device,
            queue,
            hpass,
            vpass,
            vertical_first,
            free: (0..slots).collect(),
            slots: v,
            run_bytes: run as u64 * plan.tile_bytes() as u64,
            run,
            tile: plan.tile,
            bpp: plan.layout.bytes_per_pixel(),
            window_cap: window,
            base,
            failure,
            batch: None,
            batch_slots: Vec::new(),
            adapter: format!(
                "{} ({:?}, {:?}{})",
                info.name,
                info.backend,
                info.device_type,
                if f16 {
                    ", f16 intermediate"
                } else if vertical_first {
                    ", rounded intermediate"
                } else {
                    ""
                }
            ),
            device_bytes: table_bytes + slots as u64 * per_slot_dev,
            host_bytes: slots as u64 * per_slot_host,
            readback_seconds: 0.0,
        })
    }

    /// Number of slots in the ring.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }
    /// Whether a slot is free for [`GpuResampler::submit`].
    pub fn has_free_slot(&self) -> bool {
        !self.free.is_empty()
    }

    fn check(&self) -> Result<()> {
        match self.failure.lock().ok().and_then(|g| g.clone()) {
            Some(e) => Err(Error::Gpu(e)),
            None => Ok(()),
        }
    }

    fn dispatch(n: u64) -> (u32, u32) {
        let groups = n.div_ceil(WG as u64).max(1);
        let x = groups.min(MAX_GROUPS as u64) as u32;
        (x, groups.div_ceil(x as u64) as u32)
    }

    /// Tiles the GPU takes as one unit: consecutive tiles of one row of tiles, at most this many.
    pub fn run(&self) -> usize {
        self.run as usize
    }

    /// Uploads the window of `jobs` — a run of consecutive tiles of one row of tiles, at most
    /// [`GpuResampler::run`] — from `rows` and records its computation as one unit. Needs a
    /// free slot; returns the slot to pass to [`GpuResampler::complete`] (completions are in
    /// order). Recorded runs go to the GPU together at the next [`GpuResampler::flush`] (or
    /// `complete`), one submission for many.
    pub fn submit(&mut self, jobs: &[TileJob], rows: &dyn Rows) -> Result<usize> {
        self.check()?;
        let (first, last) = match (jobs.first(), jobs.last()) {
            (Some(f), Some(l)) if jobs.len() <= self.run as usize => (f, l),
            _ => return Err(Error::Gpu(format!("a run of {} tiles (1..={} allowed)", jobs.len(), self.run))),
        };
        // The run's output is the union of its tiles (side by side), its window the union of
        // their windows (same rows).
        let job = TileJob {
            index: first.index,
            out: crate::plan::Rect { w: last.out.x + last.out.w - first.out.x, ..first.out },
            src: crate::plan::Rect { w: last.src.x + last.src.w - first.src.x, ..first.src },
        };
        let bpp = self.bpp;
        let s = self.free.pop_front().ok_or_else(|| Error::Gpu("no free GPU slot".into()))?;
        // The upload buffer was remapped when its previous submission completed.
        while self.slots[s].upload_state.load(Ordering::Acquire) == PENDING {
            self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(format!("poll: {e}")))?;
        }
        if self.slots[s].upload_state.load(Ordering::Acquire) == FAILED {
            return Err(Error::Gpu("could not map an upload buffer".into()));
        }
        let slot = &self.slots[s];
        let win_bytes = job.src.w as u64 * job.src.h as u64 * bpp as u64;
        debug_assert!(win_bytes <= self.window_cap);
        let tw = job.out.w as u64;
        let pass1 = if self.vertical_first { job.out.h as u64 * job.src.w as u64 } else { job.src.h as u64 * tw };
        let (hx, hy) = Self::dispatch(pass1 * self.base.ch as u64);
        let words = self.run_bytes.div_ceil(4);
        let (vx, vy) = Self::dispatch(words);
        let mut ph = self.base;
        ph.out_x = job.out.x;
        ph.out_y = job.out.y;
        ph.out_w = job.out.w;
        ph.out_h = job.out.h;
        ph.src_x = job.src.x;
        ph.src_y = job.src.y;
        ph.src_w = job.src.w;
        ph.src_h = job.src.h;
        let mut pv = ph;
        ph.groups_x = hx;
        pv.groups_x = vx;
        {
            let mut view = slot.upload.get_mapped_range_mut(..).map_err(|e| Error::Gpu(format!("upload view: {e}")))?;
            let n = std::mem::size_of::<Params>();
            view.slice(..n).copy_from_slice(bytemuck::bytes_of(&ph));
            view.slice(PARAM_SIZE as usize..PARAM_SIZE as usize + n).copy_from_slice(bytemuck::bytes_of(&pv));
            let row_bytes = job.src.w as usize * bpp;
            let x0 = job.src.x as usize * bpp;
            for r in 0..job.src.h as usize {
                let src = &rows.row(job.src.y + r as u32)[x0..x0 + row_bytes];
                let o = PARAMS_BYTES as usize + r * row_bytes;
                view.slice(o..o + row_bytes).copy_from_slice(src);
            }
        }
        slot.upload.unmap();
        slot.upload_state.store(PENDING, Ordering::Release);
        slot.read_state.store(PENDING, Ordering::Release);
        let enc = self.batch.get_or_insert_with(|| {
            self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("tiles") })
        });
        enc.copy_buffer_to_buffer(&slot.upload, 0, &slot.params_h, 0, PARAM_SIZE);
        enc.copy_buffer_to_buffer(&slot.upload, PARAM_SIZE, &slot.params_v, 0, PARAM_SIZE);
        enc.copy_buffer_to_buffer(&slot.upload, PARAMS_BYTES, &slot.src, 0, align4(win_bytes).max(4));
        {
            let mut pass =
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("hpass"), timestamp_writes: None });
            pass.set_pipeline(&self.hpass);
            pass.set_bind_group(0, &slot.bind_h, &[]);
            pass.dispatch_workgroups(hx, hy, 1);
        }
        {
            let mut pass =
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("vpass"), timestamp_writes: None });
            pass.set_pipeline(&self.vpass);
            pass.set_bind_group(0, &slot.bind_v, &[]);
            pass.dispatch_workgroups(vx, vy, 1);
        }
        enc.copy_buffer_to_buffer(&slot.out, 0, &slot.readback, 0, align4(self.run_bytes));
        let up_state = slot.upload_state.clone();
        enc.map_buffer_on_submit(&slot.upload, wgpu::MapMode::Write, .., move |r| {
            up_state.store(if r.is_ok() { MAPPED } else { FAILED }, Ordering::Release);
        });
        let rd_state = slot.read_state.clone();
        enc.map_buffer_on_submit(&slot.readback, wgpu::MapMode::Read, .., move |r| {
            rd_state.store(if r.is_ok() { MAPPED } else { FAILED }, Ordering::Release);
        });
        self.batch_slots.push(s);
        Ok(s)
    }

    /// Hands every recorded tile to the GPU in one submission.
    pub fn flush(&mut self) {
        if let Some(enc) = self.batch.take() {
            let index = self.queue.submit([enc.finish()]);
            for s in self.batch_slots.drain(..) {
                self.slots[s].submission = Some(index.clone());
            }
        }
    }

    /// Whether slot `s`'s tile can be completed without waiting (checks the device once).
    pub fn ready(&self, s: usize) -> bool {
        let state = || self.slots[s].read_state.load(Ordering::Acquire);
        if state() == PENDING && self.slots[s].submission.is_some() {
            let _ = self.device.poll(wgpu::PollType::Poll);
        }
        state() != PENDING
    }

    /// Waits for slot `s`'s read-back and copies its tiles, in run order, into `outs` (full
    /// tile buffers, one per tile of the run that was submitted).
    pub fn complete(&mut self, s: usize, outs: &mut [&mut [u8]]) -> Result<()> {
        self.flush();
        let slot = &self.slots[s];
        loop {
            self.check()?;
            match slot.read_state.load(Ordering::Acquire) {
                MAPPED => break,
                FAILED => return Err(Error::Gpu("could not map a read-back buffer".into())),
                _ => {
                    // Wait for this slot's submission only: later batches keep the GPU busy
                    // while this run is copied out.
                    let wait = wgpu::PollType::Wait { submission_index: slot.submission.clone(), timeout: None };
                    self.device.poll(wait).map_err(|e| Error::Gpu(format!("poll: {e}")))?;
                }
            }
        }
        let t = std::time::Instant::now();
        {
            let view = slot.readback.get_mapped_range(..).map_err(|e| Error::Gpu(format!("read-back view: {e}")))?;
            // Row j of tile m is bytes [m·row, (m+1)·row) of the run's row j.
            let row = self.tile as usize * self.bpp;
            let stride = self.run as usize * row;
            for (m, out) in outs.iter_mut().enumerate() {
                for (j, dst) in out.chunks_exact_mut(row).enumerate() {
                    dst.copy_from_slice(&view[j * stride + m * row..][..row]);
                }
            }
        }
        self.readback_seconds += t.elapsed().as_secs_f64();
        slot.readback.unmap();
        slot.read_state.store(PENDING, Ordering::Release);
        self.free.push_back(s);
        Ok(())
    }
}
