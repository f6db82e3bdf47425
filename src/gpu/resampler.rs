//! Device setup, the ring of GPU slots and the tile loop.
//!
//! Each slot owns an upload staging buffer (MAP_WRITE: parameters + packed source window),
//! device buffers (parameters, window, intermediate, output tile) and a read-back staging
//! buffer (MAP_READ). A tile's upload, compute and read-back are one submission; up to
//! `slots` submissions are in flight, so uploading tile k+1, computing tile k and reading back
//! tile k-1 overlap. Staging buffers are remapped by `map_buffer_on_submit` when their
//! submission completes; a slot is reused only after its read-back has been consumed. Nothing
//! is allocated after start-up: a full ring blocks.

use super::setup::{
    self, align4, GpuLimits, Slot, SlotSizes, FAILED, MAPPED, MAX_GROUPS, PARAMS_BYTES, PARAM_SIZE, PENDING,
};
use super::shaders::Params;
use crate::error::{Error, Result};
use crate::plan::{Geometry, Plan, TileJob};
use crate::store::Rows;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const WG: u32 = 64;

/// The GPU resampler of one job.
pub(crate) struct GpuResampler {
    /// The device (shared with the job's network where it has one, see
    /// [`setup::shared_device`]).
    dev: Arc<setup::Device>,
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
    /// Commands recorded by `submit` and not yet handed to the queue (see `flush`).
    batch: Option<wgpu::CommandEncoder>,
    /// The slots recorded into `batch`.
    batch_slots: Vec<usize>,
    /// Adapter description for the run summary.
    pub adapter: String,
    /// Device bytes allocated.
    pub device_bytes: u64,
    /// Seconds spent copying tiles out of read-back buffers.
    pub readback_seconds: f64,
}

/// The shaders' parameters common to every run of `plan` (the per-run fields are set by
/// `submit`).
fn base_params(plan: &Plan, run: u32) -> Params {
    let ar = &plan.arith;
    Params {
        tile: plan.geom.tile,
        ch: ar.channels as u32,
        bps: plan.geom.layout.depth.bytes() as u32,
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
        out_stride: run * plan.geom.tile,
        ..Default::default()
    }
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
    /// Tiles of one row the GPU computes as one unit (a "run"; see [`setup::run_length`]).
    pub(crate) fn run_length(geom: &Geometry) -> u32 {
        setup::run_length(geom)
    }

    /// Host memory one slot needs (upload + read-back staging), an upper bound from the
    /// geometry alone (for the memory plan, before any table exists).
    pub(crate) fn host_bytes_per_slot(geom: &Geometry) -> u64 {
        let k = Self::run_length(geom);
        SlotSizes::for_window(geom, k, geom.window_bound(k, 1), false).host()
    }

    /// Opens the device on `adapter` and builds pipelines, tables and up to `want_slots` slots
    /// within `limits`. With `f16` (the adapter must have `SHADER_F16`) the intermediate is
    /// stored in half precision: half the device memory, results within the bound stated in
    /// docs/how-it-works.md instead of bit-identical. The device also gets `network`'s
    /// features (those of the job's model, see
    /// [`network_features`](super::neural::network_features)), so that the network can share it.
    pub(crate) fn new(
        adapter: wgpu::Adapter,
        plan: &Plan,
        limits: GpuLimits,
        want_slots: usize,
        (f16, network): (bool, wgpu::Features),
    ) -> Result<GpuResampler> {
        let info = adapter.get_info();
        if f16 && plan.arith.vertical_first() {
            return Err(Error::usage("the f16 GPU intermediate and the rounded intermediate exclude each other"));
        }
        if f16 && !adapter.features().contains(wgpu::Features::SHADER_F16) {
            return Err(Error::Gpu(format!("{} has no SHADER_F16 for --precision f16", info.name)));
        }
        let (cx, cy) = (coeff_words(&plan.x), coeff_words(&plan.y));
        let al = adapter.limits();
        let (max_buffer, max_binding) =
            (limits.max_buffer.min(al.max_buffer_size), limits.max_binding.min(al.max_storage_buffer_binding_size));
        let sizes = SlotSizes::of(plan, f16, max_buffer.min(max_binding));
        let tables = [("x coefficients", cx.len() as u64 * 4), ("y coefficients", cy.len() as u64 * 4)];
        sizes.check_bindings(&tables, max_buffer.min(max_binding))?;
        let table_bytes = tables[0].1 + tables[1].1;
        let slots = sizes.slots_within(&limits, table_bytes, want_slots)?;
        let f16_feature = if f16 { wgpu::Features::SHADER_F16 } else { wgpu::Features::empty() };
        let cap = limits.device_cap;
        let (buffer, binding) = (al.max_buffer_size.min(cap), al.max_storage_buffer_binding_size.min(cap));
        let dev = setup::shared_device(&adapter, buffer, binding, f16_feature | network)?;
        let vertical_first = plan.arith.vertical_first();
        let (hpass, vpass) = setup::pipelines(&dev.device, vertical_first, f16, &info.name)?;
        let oom = dev.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let (bx, by) = (setup::table(&dev.device, "cx", &cx)?, setup::table(&dev.device, "cy", &cy)?);
        // Pass 1 reads the table of its own axis, pass 2 the other.
        let (t1, t2) = if vertical_first { (&by, &bx) } else { (&bx, &by) };
        let ring: Vec<Slot> = (0..slots).map(|_| Slot::new(&dev.device, &sizes, (&hpass, t1), (&vpass, t2))).collect();
        if let Some(e) = pollster::block_on(oom.pop()) {
            return Err(Error::Gpu(format!("{}: cannot allocate buffers: {e}", info.name)));
        }
        let run = sizes.run;
        let mode = match (f16, vertical_first) {
            (true, _) => ", f16 intermediate",
            (false, true) => ", rounded intermediate",
            _ => "",
        };
        Ok(GpuResampler {
            dev,
            hpass,
            vpass,
            vertical_first,
            free: (0..slots).collect(),
            slots: ring,
            run_bytes: run as u64 * plan.tile_bytes() as u64,
            run,
            tile: plan.geom.tile,
            bpp: plan.geom.layout.bytes_per_pixel(),
            window_cap: sizes.window,
            base: base_params(plan, run),
            batch: None,
            batch_slots: Vec::new(),
            adapter: format!("{} ({:?}, {:?}{mode})", info.name, info.backend, info.device_type),
            device_bytes: table_bytes + slots as u64 * sizes.device(),
            readback_seconds: 0.0,
        })
    }

    /// Number of slots in the ring.
    pub(crate) fn slots(&self) -> usize {
        self.slots.len()
    }
    /// Whether a slot is free for [`GpuResampler::submit`].
    pub(crate) fn has_free_slot(&self) -> bool {
        !self.free.is_empty()
    }

    fn check(&self) -> Result<()> {
        match self.dev.failure.lock().ok().and_then(|g| g.clone()) {
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
    pub(crate) fn run(&self) -> usize {
        self.run as usize
    }

    /// Uploads the window of `jobs` — a run of consecutive tiles of one row of tiles, at most
    /// [`GpuResampler::run`] — from `rows` and records its computation as one unit. Needs a
    /// free slot; returns the slot to pass to [`GpuResampler::complete`] (completions are in
    /// order). Recorded runs go to the GPU together at the next [`GpuResampler::flush`] (or
    /// `complete`), one submission for many.
    pub(crate) fn submit(&mut self, jobs: &[TileJob], rows: &dyn Rows) -> Result<usize> {
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
        let s = self.free.pop_front().ok_or_else(|| Error::Gpu("no free GPU slot".into()))?;
        // The upload buffer was remapped when its previous submission completed.
        while self.slots[s].upload_state.load(Ordering::Acquire) == PENDING {
            self.dev.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(format!("poll: {e}")))?;
        }
        if self.slots[s].upload_state.load(Ordering::Acquire) == FAILED {
            return Err(Error::Gpu("could not map an upload buffer".into()));
        }
        let win_bytes = job.src.w as u64 * job.src.h as u64 * self.bpp as u64;
        debug_assert!(win_bytes <= self.window_cap);
        let tw = job.out.w as u64;
        let pass1 = if self.vertical_first { job.out.h as u64 * job.src.w as u64 } else { job.src.h as u64 * tw };
        let groups1 = Self::dispatch(pass1 * self.base.ch as u64);
        let groups2 = Self::dispatch(self.run_bytes.div_ceil(4));
        let mut p1 = self.base;
        (p1.out_x, p1.out_y, p1.out_w, p1.out_h) = (job.out.x, job.out.y, job.out.w, job.out.h);
        (p1.src_x, p1.src_y, p1.src_w, p1.src_h) = (job.src.x, job.src.y, job.src.w, job.src.h);
        let mut p2 = p1;
        p1.groups_x = groups1.0;
        p2.groups_x = groups2.0;
        self.write_upload(s, (&p1, &p2), &job, rows)?;
        self.record(s, win_bytes, groups1, groups2);
        Ok(s)
    }

    /// Writes both passes' parameters and the run's source window into slot `s`'s mapped
    /// upload buffer, then unmaps it.
    fn write_upload(&self, s: usize, (p1, p2): (&Params, &Params), job: &TileJob, rows: &dyn Rows) -> Result<()> {
        let slot = &self.slots[s];
        {
            let mut view = slot.upload.get_mapped_range_mut(..).map_err(|e| Error::Gpu(format!("upload view: {e}")))?;
            let n = std::mem::size_of::<Params>();
            view.slice(..n).copy_from_slice(bytemuck::bytes_of(p1));
            view.slice(PARAM_SIZE as usize..PARAM_SIZE as usize + n).copy_from_slice(bytemuck::bytes_of(p2));
            let row_bytes = job.src.w as usize * self.bpp;
            let x0 = job.src.x as usize * self.bpp;
            for r in 0..job.src.h as usize {
                let src = &rows.row(job.src.y + r as u32)[x0..x0 + row_bytes];
                let o = PARAMS_BYTES as usize + r * row_bytes;
                view.slice(o..o + row_bytes).copy_from_slice(src);
            }
        }
        slot.upload.unmap();
        slot.upload_state.store(PENDING, Ordering::Release);
        slot.read_state.store(PENDING, Ordering::Release);
        Ok(())
    }

    /// Records slot `s`'s copies up, both passes, the copy down and the re-mapping of its
    /// staging buffers into the current batch.
    fn record(&mut self, s: usize, win_bytes: u64, (hx, hy): (u32, u32), (vx, vy): (u32, u32)) {
        let slot = &self.slots[s];
        let enc = self.batch.get_or_insert_with(|| {
            self.dev.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("tiles") })
        });
        enc.copy_buffer_to_buffer(&slot.upload, 0, &slot.params_h, 0, PARAM_SIZE);
        enc.copy_buffer_to_buffer(&slot.upload, PARAM_SIZE, &slot.params_v, 0, PARAM_SIZE);
        enc.copy_buffer_to_buffer(&slot.upload, PARAMS_BYTES, &slot.src, 0, align4(win_bytes).max(4));
        for (label, pipeline, bind, (x, y)) in
            [("hpass", &self.hpass, &slot.bind_h, (hx, hy)), ("vpass", &self.vpass, &slot.bind_v, (vx, vy))]
        {
            let mut pass =
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes: None });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, bind, &[]);
            pass.dispatch_workgroups(x, y, 1);
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
    }

    /// Hands every recorded tile to the GPU in one submission.
    pub(crate) fn flush(&mut self) {
        if let Some(enc) = self.batch.take() {
            let index = self.dev.queue.submit([enc.finish()]);
            for s in self.batch_slots.drain(..) {
                self.slots[s].submission = Some(index.clone());
            }
        }
    }

    /// Whether slot `s`'s tile can be completed without waiting (checks the device once).
    pub(crate) fn ready(&self, s: usize) -> bool {
        let state = || self.slots[s].read_state.load(Ordering::Acquire);
        if state() == PENDING && self.slots[s].submission.is_some() {
            let _ = self.dev.device.poll(wgpu::PollType::Poll);
        }
        state() != PENDING
    }

    /// Waits for slot `s`'s read-back and copies its tiles, in run order, into `outs` (full
    /// tile buffers, one per tile of the run that was submitted).
    pub(crate) fn complete(&mut self, s: usize, outs: &mut [&mut [u8]]) -> Result<()> {
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
                    self.dev.device.poll(wait).map_err(|e| Error::Gpu(format!("poll: {e}")))?;
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
