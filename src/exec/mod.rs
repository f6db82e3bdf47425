//! The tile stage of a job: planner → bounded ring → (GPU thread →) workers → one writer.
//!
//! ```text
//!  planner ──(job, free slot)──▶ [device thread] ──computed──▶ workers ──encoded──▶ writer ──▶ sink
//!  (serial,   ring.rs             device.rs   (auto: workers   workers.rs        writer.rs
//!   blocks on                                    take jobs too)
//!   the ring) ◀────────────────────────────── slot returned ◀──────────────────────┘
//! ```
//!
//! Each part is a file: [`ring`] (slots, the planner, the workers' feed), [`workers`],
//! [`writer`], and [`device`]: the trait through which an accelerator (the GPU) plugs in, and
//! its thread. The stage knows no backend by name and has no GPU `cfg`. Threads tell the
//! writer about warnings and the device's late start through a channel of [`Notice`]s. The stage reads the source from the store and knows nothing of files: the job
//! (`job/`) decodes before it and builds the [`Report`](crate::Report) after it.

pub(crate) mod device;
pub(crate) mod ring;
pub(crate) mod workers;
pub(crate) mod writer;

use crate::budget::MemoryPlan;
use crate::error::{Error, Result};
use crate::faces::RestoredFaces;
use crate::options::Options;
use crate::plan::Plan;
use crate::progress::Event;
use crate::sink::TileSink;
use crate::store::Store;
use crossbeam_channel::{bounded, unbounded};
use ring::{Msg, Ring};
use std::sync::atomic::{AtomicU64, Ordering};

/// Something another thread wants the user to know, relayed by the writer as an event.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(not(feature = "gpu"), allow(dead_code))] // only a device's thread sends them
pub(crate) enum Notice {
    /// Something went wrong but the job goes on.
    Warning(String),
    /// The backend actually in use, once the GPU thread knows it.
    Backend { kind: &'static str, detail: String },
}

/// Seconds spent by the device thread, and tiles the device computed.
#[derive(Default, Debug, Clone, Copy)]
pub(crate) struct DeviceTimes {
    pub upload: f64,
    pub wait: f64,
    pub readback: f64,
    pub tiles: u64,
}

/// What the tile stage measured.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub bytes: u64,
    pub compute_s: f64,
    pub encode_s: f64,
    pub write_s: f64,
    pub gpu: DeviceTimes,
    /// The backend announced by the GPU thread, if it announced one.
    pub backend: Option<(&'static str, String)>,
}

/// Everything the tile stage needs.
pub(crate) struct TileStage<'a> {
    pub plan: &'a Plan,
    pub mem: &'a MemoryPlan,
    pub store: &'a Store,
    pub opts: &'a Options,
    /// Bytes to reserve for each slot's encoded copy (0 when tiles pass through).
    pub encoded_bound: usize,
    /// The job's tiles, as positions of the plan's tile order: all, or a unit's bands.
    pub tiles: std::ops::Range<u64>,
    /// The first tile to compute (after a resumed run's durable tiles).
    pub first: u64,
    /// The device (the GPU), if any: its opener, and whether the CPU workers share the tiles.
    pub device: Option<device::DeviceOpener<'a>>,
    pub shared: bool,
    /// Restored faces, pasted into each tile after it is computed (`--faces`).
    pub faces: Option<&'a RestoredFaces>,
}

/// Runs the tile stage to the end: every tile from `stage.first` computed, encoded and
/// written, then the sink finished.
pub(crate) fn run_tiles(
    stage: TileStage<'_>,
    sink: &mut dyn TileSink,
    progress: &mut dyn FnMut(&Event),
) -> Result<Stats> {
    let TileStage { plan, mem, store, opts, encoded_bound, tiles, first, device, shared, faces } = stage;
    let cancelled = || opts.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (compute_ns, encode_ns) = (AtomicU64::new(0), AtomicU64::new(0));
    let ring = Ring::new(mem.slots, plan.tile_bytes(), encoded_bound);
    let encoders = (0..mem.threads).map(|_| sink.encoder()).collect::<Result<Vec<_>>>()?;
    let (job_tx, job_rx) = bounded::<Msg>(mem.slots);
    let (done_tx, done_rx) = bounded::<Result<Msg>>(mem.slots);
    let (notice_tx, notice_rx) = unbounded();
    let end = tiles.end;
    let workers =
        workers::Workers { plan, store, gpu_only: opts.gpu_f16, faces, compute_ns: &compute_ns, encode_ns: &encode_ns };
    let (result, write_s, backend, gpu_times) = std::thread::scope(|sc| {
        let free = ring.free();
        let stop_p = &stop;
        sc.spawn(move || {
            let stopped = || stop_p.load(Ordering::Relaxed) || cancelled();
            ring::plan_tiles((first..end).map(|i| plan.tile(i)), &free, &job_tx, &stopped)
        });
        let (feed, gpu_thread) = device::spawn(sc, device, shared, job_rx, store, notice_tx);
        let workers = &workers;
        sc.spawn(move || workers.run(encoders, feed, done_tx));
        let mut writer = writer::Writer {
            sink,
            free: ring.returns(),
            notices: notice_rx,
            next: first,
            start: tiles.start,
            end,
            band_tiles: plan.band_tiles(),
            kill_after: opts.hooks().kill_after_tiles,
            write_s: 0.0,
            backend: None,
        };
        let k = plan.band_rows();
        let mut release = |band: u32| {
            // A band of tiles is done: no later tile reads above its window.
            let next = (band + 1) * k;
            store.release_rows(store.rows().start..plan.source_rows(next..next + k).start as usize);
            if let Some(f) = faces {
                f.release_above(next * plan.geom.tile);
            }
        };
        let r = writer.run(&done_rx, &cancelled, &mut release, progress);
        // Wind down: the planner stops, workers and the GPU thread see their channels close.
        if r.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        drop(done_rx);
        drop(ring);
        let writer::Writer { free, notices, write_s, mut backend, .. } = writer;
        drop(free);
        let gpu_times = gpu_thread.map(|h| h.join().unwrap_or_default());
        writer::relay(&notices, &mut backend, progress);
        (r, write_s, backend, gpu_times)
    });
    let bytes = result?;
    Ok(Stats {
        bytes,
        compute_s: compute_ns.load(Ordering::Relaxed) as f64 / 1e9,
        encode_s: encode_ns.load(Ordering::Relaxed) as f64 / 1e9,
        write_s,
        gpu: gpu_times.unwrap_or_default(),
        backend,
    })
}

/// Checks the one error no stage reports: a cancel request that arrived between stages.
pub(crate) fn check_cancel(opts: &Options) -> Result<()> {
    if opts.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
        Err(Error::Interrupted { signal: None })
    } else {
        Ok(())
    }
}
