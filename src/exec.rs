//! The executor: decode → store, then planner → bounded ring → workers → one writer.
//!
//! The ring is a fixed set of tile buffers ([`Slot`]s) that circulate through three bounded
//! channels: the planner takes a free slot (blocking when none is free), a worker fills and
//! encodes it, the writer writes it in tile order and hands it back. Nothing is allocated per
//! tile, so memory is fixed by the number of slots, which the budget decides.

use crate::backend::Chosen;
use crate::budget::format_size;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::plan::{Geometry, Plan, TileJob};
use crate::progress::{Event, StageTimes};
use crate::resample::{resample_tile, Scratch};
use crate::sink::{SinkHeader, TileSink};
use crate::source::{RowSource, RowWriter};
use crate::store::Store;
use crossbeam_channel::{bounded, Receiver, TryRecvError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// How the budget was spent: chosen parallelism and the itemised estimate.
#[derive(Debug, Clone)]
pub struct MemoryPlan {
    /// Worker threads.
    pub threads: usize,
    /// Tile slots in the ring.
    pub slots: usize,
    /// Slots in the GPU ring (0 without a GPU).
    pub gpu_slots: usize,
    /// Peak estimate in bytes.
    pub total: u64,
    /// Items of the estimate.
    pub items: Vec<(&'static str, u64)>,
}

/// Fixed allowance for allocator slack and small structures.
const SLACK: u64 = 2 << 20;

/// What the stages of a job need, besides what the plan itself implies.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    /// The decoder's own working memory.
    pub source_decode: u64,
    /// The sink's tables or bands.
    pub sink_memory: u64,
    /// One tile encoder's working memory.
    pub encoder_memory: u64,
    /// Worst-case encoded size of one tile.
    pub encoded_bound: usize,
    /// Whether tiles pass to the sink unencoded (no second buffer per slot).
    pub passthrough: bool,
    /// GPU ring: most slots wanted, host staging bytes per slot, and tiles each slot holds
    /// while it computes (a run of tiles: so many tile buffers of the ring are in the GPU's
    /// hands per slot).
    pub gpu: Option<(usize, u64, usize)>,
}

/// Sizes the job for `budget`: the most threads (up to `want`), tile slots (up to 2 per
/// thread) and GPU slots that fit. Fails with the itemised minimum when even one thread and
/// one slot do not fit.
///
/// Everything is computed from the [`Geometry`] alone (analytic upper bounds of the tables,
/// windows and resident rows), before any of those allocations exists, so a refusal costs
/// nothing.
pub fn plan_memory(geom: &Geometry, needs: Needs, want: usize, budget: u64) -> Result<MemoryPlan> {
    let Needs { source_decode, sink_memory, encoder_memory, encoded_bound, passthrough, gpu } = needs;
    let (max_gpu, gpu_per, gpu_run) = gpu.unwrap_or((0, 0, 1));
    let row_bytes = geom.row_bytes();
    let tile_bytes = geom.tile_bytes();
    let slot = tile_bytes.saturating_add(if passthrough { 0 } else { encoded_bound as u64 });
    let coeffs = geom.coefficient_bytes();
    let scratch = Scratch::bytes_for(geom).saturating_add(tile_bytes);
    let tile_count = geom.tile_count();
    let estimate = |threads: usize, slots: usize, gpu_slots: usize| -> MemoryPlan {
        // Never more tile buffers than the job has tiles.
        let slots = (slots as u64).min(tile_count.max(1)) as usize;
        let gpu_host = gpu_slots as u64 * gpu_per;
        // Tiles in flight span at most this many rows of tiles; their source rows are resident.
        let across = geom.tiles_across().max(1) as usize;
        let rows_in_flight = (slots.div_ceil(across) + 1) as u32;
        let band = geom.window_bound(1, rows_in_flight).1 + 2;
        let items = [
            ("coefficient tables", coeffs),
            ("resident source band", band.saturating_mul(row_bytes)),
            ("worker scratch", (threads as u64).saturating_mul(scratch.saturating_add(encoder_memory))),
            ("tile ring", (slots as u64).saturating_mul(slot)),
            ("sink", sink_memory),
            ("gpu staging", gpu_host),
        ];
        let decode = source_decode.saturating_add(64u64.saturating_mul(row_bytes));
        let compute_total = items.iter().fold(0u64, |a, i| a.saturating_add(i.1));
        let mut items = items.to_vec();
        items.push(("decoder (before compute)", decode));
        items.push(("slack", SLACK));
        MemoryPlan { threads, slots, gpu_slots, total: compute_total.max(decode).saturating_add(SLACK), items }
    };
    // GPU ring sizes to try, largest first (none without a GPU).
    let gpu_sizes: Vec<usize> = if max_gpu == 0 {
        vec![0]
    } else {
        let runs = tile_count.div_ceil(gpu_run.max(1) as u64).clamp(1, max_gpu as u64) as usize;
        std::iter::successors(Some(runs), |&g| (g > 1).then_some(g / 2)).collect()
    };
    let mut threads = want.max(1);
    loop {
        for (n, &g) in gpu_sizes.iter().enumerate() {
            // The GPU holds g·run tile buffers; the workers need their own on top, or they starve
            // (a smaller GPU ring is tried before that). Only the smallest ring may go without.
            let held = g * gpu_run;
            let last = n + 1 == gpu_sizes.len();
            let candidates = [2 * threads + held, threads + 1 + held, threads + held, held.max(1)];
            for &slots in &candidates[..if last { 4 } else { 3 }] {
                let m = estimate(threads, slots, g);
                if m.total <= budget {
                    return Ok(m);
                }
            }
        }
        if threads == 1 {
            break;
        }
        threads = (threads / 2).max(1);
    }
    let min = estimate(1, 1, gpu_sizes.last().copied().unwrap_or(0));
    let detail = min
        .items
        .iter()
        .filter(|i| i.1 > 0)
        .map(|(n, v)| format!("{n} {}", format_size(*v)))
        .collect::<Vec<_>>()
        .join(", ");
    Err(Error::limit(
        "--max-memory",
        min.total,
        budget,
        Some(format!(
            "the smallest plan needs {} ({detail}); raise --max-memory or lower --tile",
            format_size(min.total)
        )),
    ))
}

/// The crash-test hook (`Options::kill_after_tiles`): the process dies by SIGKILL, as from
/// `kill -9`, with no destructor run and nothing flushed.
fn kill_self_for_test() -> ! {
    // SAFETY: `kill` and `getpid` take plain integers and touch no memory of ours.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}

struct Slot {
    raw: Vec<u8>,
    enc: Vec<u8>,
}

/// Where a worker finds its next tile: tiles the GPU computed (first), and jobs straight from
/// the planner (to compute itself). Either may be absent; a closed one is dropped.
#[derive(Clone)]
struct Feed {
    computed: Option<Receiver<Msg>>,
    jobs: Option<Receiver<Msg>>,
}

impl Feed {
    fn next(&mut self) -> Option<Msg> {
        loop {
            if let Some(rx) = &self.computed {
                match rx.try_recv() {
                    Ok(m) => return Some(m),
                    Err(TryRecvError::Disconnected) => self.computed = None,
                    Err(TryRecvError::Empty) => {}
                }
            }
            if let Some(rx) = &self.jobs {
                match rx.try_recv() {
                    Ok(m) => return Some(m),
                    Err(TryRecvError::Disconnected) => self.jobs = None,
                    Err(TryRecvError::Empty) => {}
                }
            }
            match (&self.computed, &self.jobs) {
                (None, None) => return None,
                (Some(rx), None) => match rx.recv() {
                    Ok(m) => return Some(m),
                    Err(_) => self.computed = None,
                },
                (None, Some(rx)) => match rx.recv() {
                    Ok(m) => return Some(m),
                    Err(_) => self.jobs = None,
                },
                (Some(a), Some(b)) => crossbeam_channel::select! {
                    recv(a) -> m => match m {
                        Ok(m) => return Some(m),
                        Err(_) => self.computed = None,
                    },
                    recv(b) -> m => match m {
                        Ok(m) => return Some(m),
                        Err(_) => self.jobs = None,
                    },
                },
            }
        }
    }
}

impl AsMut<[u8]> for Slot {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.raw
    }
}

/// Tile buffers travelling through the pipeline: the job, its buffer, and whether the tile has
/// already been computed (by the GPU).
type Msg = (TileJob, Slot, bool);

/// What a finished job reports.
#[derive(Debug, Clone)]
pub struct Report {
    /// Output size.
    pub output: (u32, u32),
    /// Bytes written.
    pub bytes: u64,
    /// Wall time.
    pub seconds: f64,
    /// Per-stage times.
    pub stages: StageTimes,
    /// The memory plan used.
    pub memory: MemoryPlan,
    /// `gpu: <adapter>` or `cpu (<reason>)`.
    pub backend: String,
}

/// Runs a whole job from a [`RowSource`] to a [`TileSink`].
///
/// This is the library's one call for the whole pipeline; [`crate::upscale`] wraps it with
/// file handling.
pub fn run(
    mut source: Box<dyn RowSource>,
    sink: &mut dyn TileSink,
    opts: &Options,
    progress: &mut dyn FnMut(&Event),
) -> Result<Report> {
    let t0 = Instant::now();
    opts.validate()?;
    let info = source.info().clone();
    let (ow, oh) = opts.output_size(info.width, info.height)?;
    let geom = Geometry {
        in_size: (info.width, info.height),
        out_size: (ow, oh),
        tile: opts.tile,
        layout: info.layout,
        filter: opts.filter,
        intermediate: opts.intermediate,
    };
    let header = SinkHeader {
        width: ow,
        height: oh,
        tile: opts.tile,
        layout: info.layout,
        icc_profile: info.icc_profile.clone(),
    };
    let level = opts.level.or(opts.compression.default_level()).unwrap_or(0);
    let tile_bytes = usize::try_from(geom.tile_bytes()).map_err(|_| Error::usage("--tile is too large"))?;
    let enc_bound = opts.compression.bound(tile_bytes);
    // Only uncompressed tiles pass to the sink as they are (no second buffer per slot).
    let passthrough = opts.compression == crate::sink::Compression::None;
    let t_backend = Instant::now();
    let chosen = Chosen::new(opts)?;
    let needs = Needs {
        source_decode: source.decode_memory(),
        sink_memory: sink.memory(&header),
        encoder_memory: opts.compression.encoder_memory(level),
        encoded_bound: enc_bound,
        passthrough,
        gpu: chosen.gpu_need(&geom),
    };
    // The whole plan, from the geometry alone: nothing is allocated before it fits.
    let mem = plan_memory(&geom, needs, opts.resolved_threads(), opts.max_memory)?;
    let plan = Plan::new(info.width, info.height, ow, oh, opts.filter, info.layout, opts.tile)?
        .with_intermediate(opts.intermediate);
    // `--backend gpu` opens the device now (a GPU that cannot be used is known before any
    // work); `auto` may open it on the GPU thread (see crate::backend).
    let opened = crate::backend::open(chosen, opts, &plan, mem.gpu_slots)?;
    let backend = (opened.kind, opened.detail.clone());
    let backend_init = t_backend.elapsed().as_secs_f64();
    // `auto` with a GPU: the CPU workers compute tiles too (see the feed below).
    #[cfg(feature = "gpu")]
    let shared = opened.shared;
    let cancelled = || opts.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed));
    progress(&Event::Backend { kind: backend.0.to_string(), detail: backend.1.clone() });
    progress(&Event::Start {
        input: (info.width, info.height),
        output: (ow, oh),
        tiles: plan.tile_count(),
        threads: mem.threads,
        slots: mem.slots,
        planned_memory: mem.total,
        max_memory: opts.max_memory,
    });

    // Stage 1: decode into the store.
    let temp_dir = opts.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut store = Store::create(&temp_dir, info.row_bytes(), info.height as usize)?;
    let td = Instant::now();
    {
        let total = info.height as u64;
        let mut on_rows = |rows: u64| progress(&Event::Decode { rows, total });
        let mut w = RowWriter::new(&mut store, &cancelled, &mut on_rows);
        source.decode(&mut w)?;
    }
    drop(source);
    let decode_s = td.elapsed().as_secs_f64();
    if cancelled() {
        return Err(Error::Interrupted { signal: None });
    }

    // Stage 2: tiles.
    sink.begin(&header)?;
    let first = sink.resume_point();
    if first > 0 {
        progress(&Event::Resumed { tiles: first, total: plan.tile_count() });
    }
    let compute_ns = AtomicU64::new(0);
    let encode_ns = AtomicU64::new(0);
    let mut write_s = 0.0;
    let abort = AtomicBool::new(false);
    let total_tiles = plan.tile_count();
    let (free_tx, free_rx) = bounded::<Slot>(mem.slots);
    for _ in 0..mem.slots {
        let enc_cap = if passthrough { 0 } else { enc_bound };
        let _ = free_tx.send(Slot { raw: vec![0; plan.tile_bytes()], enc: Vec::with_capacity(enc_cap) });
    }
    // planner -> (GPU thread ->) workers -> writer
    let (job_tx, job_rx) = bounded::<Msg>(mem.slots);
    let (done_tx, done_rx) = bounded::<Result<(TileJob, Slot, bool)>>(mem.slots);
    let warnings = std::sync::Mutex::new(Vec::<String>::new());
    #[cfg(feature = "gpu")]
    let gpu_times = std::sync::Mutex::new(crate::gpu::driver::GpuTimes::default());
    let encoders: Vec<_> = (0..mem.threads).map(|_| sink.encoder()).collect();
    let threads = mem.threads;
    let store = &store;
    let plan = &plan;
    // The GPU thread's first act: the device opened now, or opened there (`auto`). What it
    // opens (or why it cannot) is announced from the writer loop as a second `backend` event.
    let backend_update = std::sync::Mutex::new(None::<(&str, String)>);
    let mut announced = false;
    #[cfg(feature = "gpu")]
    let opener = opened.gpu;
    let result: Result<u64> = std::thread::scope(|sc| {
        // Planner: serial, in tile order, blocking on the ring.
        let abort_p = &abort;
        let job_tx_p = job_tx;
        sc.spawn(move || {
            for index in first..total_tiles {
                if abort_p.load(Ordering::Relaxed) || cancelled() {
                    break;
                }
                let Ok(slot) = free_rx.recv() else { break };
                if job_tx_p.send((plan.tile(index), slot, false)).is_err() {
                    break;
                }
            }
        });
        // With a GPU, its thread takes the planner's jobs and hands computed tiles to the
        // workers. With `--backend gpu` it computes every tile; with `auto` the workers also
        // take planner jobs whenever no computed tile is waiting (GPU and CPU share the work).
        // Without a GPU, the workers take the planner's jobs directly.
        #[cfg(feature = "gpu")]
        let feed = match opener {
            Some(open_gpu) => {
                let (work_tx, work_rx) = bounded::<Msg>(mem.slots);
                let (warnings_g, gpu_times_g, update_g) = (&warnings, &gpu_times, &backend_update);
                let gpu_jobs = job_rx.clone();
                sc.spawn(move || match open_gpu() {
                    Ok((g, detail)) => {
                        if let (Some(d), Ok(mut u)) = (detail, update_g.lock()) {
                            *u = Some(("gpu+cpu", d));
                        }
                        let t = crate::gpu::driver::drive(g, gpu_jobs, work_tx, store, opts.gpu_fail_after, warnings_g);
                        if let Ok(mut gt) = gpu_times_g.lock() {
                            *gt = t;
                        }
                    }
                    Err(reason) => {
                        if let Ok(mut u) = update_g.lock() {
                            *u = Some(("cpu", format!("({reason})")));
                        }
                    }
                });
                Feed { computed: Some(work_rx), jobs: shared.then_some(job_rx) }
            }
            None => Feed { computed: None, jobs: Some(job_rx) },
        };
        #[cfg(not(feature = "gpu"))]
        let feed = Feed { computed: None, jobs: Some(job_rx) };
        // Workers.
        let (compute_ns, encode_ns) = (&compute_ns, &encode_ns);
        let workers_done = done_tx;
        let feed_w = feed;
        sc.spawn(move || {
            // A scoped pool: its threads are joined before this returns, so no worker outlives
            // the job (a plain pool's threads wind down asynchronously after it is dropped).
            let built = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("gigascale-worker-{i}"))
                .build_scoped(
                    |t| t.run(),
                    |pool| {
                        pool.scope(|s| {
                            for mut enc in encoders {
                                let mut feed = feed_w.clone();
                                let done = workers_done.clone();
                                s.spawn(move |_| {
                                    let mut scratch = Scratch::default();
                                    while let Some((job, mut slot, computed)) = feed.next() {
                                        let tc = Instant::now();
                                        if !computed && opts.gpu_f16 {
                                            // The CPU cannot reproduce the GPU's f16 bytes.
                                            let e = Error::Gpu(format!(
                                                "the GPU failed during an --precision f16 job, whose tiles only the GPU can compute; rerun it, or use --precision exact ({})",
                                                crate::options::F16_WHY
                                            ));
                                            let _ = done.send(Err(e));
                                            break;
                                        }
                                        if !computed {
                                            resample_tile(plan, store, &job, &mut scratch, &mut slot.raw);
                                        }
                                        let te = Instant::now();
                                        compute_ns.fetch_add((te - tc).as_nanos() as u64, Ordering::Relaxed);
                                        let pass = enc.passthrough();
                                        let r =
                                            if pass { Ok(()) } else { enc.encode(&job, &mut slot.raw, &mut slot.enc) };
                                        encode_ns.fetch_add(te.elapsed().as_nanos() as u64, Ordering::Relaxed);
                                        let msg = r.map(|()| (job, slot, pass));
                                        let failed = msg.is_err();
                                        if done.send(msg).is_err() || failed {
                                            break;
                                        }
                                    }
                                });
                            }
                        })
                    },
                );
            if let Err(e) = built {
                let _ = workers_done.send(Err(Error::usage(format!("cannot start {threads} worker threads: {e}"))));
            }
        });
        // Writer: this thread, in tile order.
        let r = (|| -> Result<u64> {
            let mut pending: BTreeMap<u64, (TileJob, Slot, bool)> = BTreeMap::new();
            let mut next = first;
            let mut last_report = Instant::now();
            let mut last_checkpoint = Instant::now();
            let across = plan.tiles_across() as u64;
            while next < total_tiles {
                if cancelled() {
                    return Err(Error::Interrupted { signal: None });
                }
                let msg = done_rx.recv().map_err(|_| Error::Interrupted { signal: None })??;
                pending.insert(msg.0.index, msg);
                if let Some(w) = warnings.lock().ok().and_then(|mut w| w.pop()) {
                    progress(&Event::Warning { message: w });
                }
                if !announced {
                    if let Some((kind, detail)) = backend_update.lock().ok().and_then(|u| u.clone()) {
                        announced = true;
                        progress(&Event::Backend { kind: kind.to_string(), detail });
                    }
                }
                while let Some((job, slot, pass)) = pending.remove(&next) {
                    let tw = Instant::now();
                    sink.write_tile(&job, if pass { &slot.raw } else { &slot.enc })?;
                    write_s += tw.elapsed().as_secs_f64();
                    let _ = free_tx.send(slot);
                    if job.index % across == across - 1 {
                        // A row of tiles is done: no later tile reads above its window.
                        let ty = (job.index / across) as u32;
                        let keep = plan.source_rows(ty + 1..ty + 2).start as usize;
                        store.release_rows(0..keep);
                    }
                    next += 1;
                    if opts.kill_after_tiles == Some(next) {
                        sink.checkpoint()?;
                        kill_self_for_test();
                    }
                    if last_checkpoint.elapsed().as_millis() >= 1000 {
                        last_checkpoint = Instant::now();
                        sink.checkpoint()?;
                    }
                    if last_report.elapsed().as_millis() >= 100 || next == total_tiles {
                        last_report = Instant::now();
                        progress(&Event::Tiles { done: next, total: total_tiles });
                    }
                }
            }
            let tw = Instant::now();
            let bytes = sink.finish()?;
            write_s += tw.elapsed().as_secs_f64();
            Ok(bytes)
        })();
        if r.is_err() {
            abort.store(true, Ordering::Relaxed);
        }
        drop(done_rx);
        drop(free_tx);
        r
    });
    let bytes = result?;
    let backend = match backend_update.into_inner().ok().flatten() {
        Some((kind, detail)) => {
            if !announced {
                progress(&Event::Backend { kind: kind.to_string(), detail: detail.clone() });
            }
            (kind, detail)
        }
        None => backend,
    };
    let stages = StageTimes {
        decode: decode_s,
        compute: compute_ns.load(Ordering::Relaxed) as f64 / 1e9,
        encode: encode_ns.load(Ordering::Relaxed) as f64 / 1e9,
        write: write_s,
        backend_init,
        ..Default::default()
    };
    #[cfg(feature = "gpu")]
    let stages = {
        let g = gpu_times.lock().map(|g| *g).unwrap_or_default();
        StageTimes { gpu_upload: g.upload, gpu_wait: g.wait, gpu_readback: g.readback, gpu_tiles: g.tiles, ..stages }
    };
    if let Some(w) = warnings.lock().ok().and_then(|mut w| w.pop()) {
        progress(&Event::Warning { message: w });
    }
    let seconds = t0.elapsed().as_secs_f64();
    progress(&Event::Done { bytes, seconds, stages });
    Ok(Report {
        output: (ow, oh),
        bytes,
        seconds,
        stages,
        memory: mem,
        backend: format!("{} {}", backend.0, backend.1),
    })
}
