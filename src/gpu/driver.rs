//! The GPU thread of a job: takes (job, tile buffer) pairs from the planner, runs them through
//! the ring of GPU slots, and passes computed tiles on to the encoder workers. If the device
//! fails (lost, out of memory, validation), every tile not yet computed is passed on marked
//! "not computed" and the workers resample it on the CPU, so the output stays correct.

use super::GpuResampler;
use crate::error::Error;
use crate::plan::TileJob;
use crate::resample::Rows;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

/// Seconds spent by the GPU thread.
#[derive(Default, Debug, Clone, Copy)]
pub(crate) struct GpuTimes {
    pub upload: f64,
    pub wait: f64,
    pub readback: f64,
    /// Tiles the GPU computed.
    pub tiles: u64,
}

/// A run of tiles in flight: the jobs with their buffers, and the GPU slot computing them.
type Run<T> = (Vec<(TileJob, T)>, usize);

/// Runs until the planner's channel closes. `T` is the executor's tile buffer type.
/// Consecutive tiles of one row of tiles are grouped into runs of up to
/// [`GpuResampler::run`] tiles, each computed as one unit.
#[allow(clippy::too_many_arguments)]
pub(crate) fn drive<T: AsMut<[u8]>>(
    mut gpu: GpuResampler,
    jobs: Receiver<(TileJob, T, bool)>,
    out: Sender<(TileJob, T, bool)>,
    rows: &dyn Rows,
    fail_after: Option<u64>,
    warnings: &Mutex<Vec<String>>,
) -> GpuTimes {
    let mut times = GpuTimes::default();
    let mut inflight: VecDeque<Run<T>> = VecDeque::new();
    let mut group: Vec<(TileJob, T)> = Vec::new();
    let mut failed: Option<Error> = None;
    let mut done = 0u64;
    let mut open = true;
    let run = gpu.run();
    // Submits the pending group; on a GPU error its tiles go to the CPU. False: nobody listens.
    let submit = |gpu: &mut GpuResampler,
                  group: &mut Vec<(TileJob, T)>,
                  inflight: &mut VecDeque<Run<T>>,
                  failed: &mut Option<Error>,
                  times: &mut GpuTimes|
     -> bool {
        let list: Vec<TileJob> = group.iter().map(|g| g.0).collect();
        let t = Instant::now();
        let r = gpu.submit(&list, rows);
        times.upload += t.elapsed().as_secs_f64();
        match r {
            Ok(s) => inflight.push_back((std::mem::take(group), s)),
            Err(e) => {
                *failed = Some(e);
                for (job, buf) in group.drain(..) {
                    if out.send((job, buf, false)).is_err() {
                        return false;
                    }
                }
            }
        }
        true
    };
    loop {
        // Keep the ring full while jobs are ready; block only when nothing is pending.
        while failed.is_none() && open && gpu.has_free_slot() {
            let next = if inflight.is_empty() && group.is_empty() {
                jobs.recv().map_err(|_| TryRecvError::Disconnected)
            } else {
                jobs.try_recv()
            };
            let (job, buf, _) = match next {
                Ok(m) => m,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            };
            let joins = group.last().is_some_and(|(l, _)| l.index + 1 == job.index && l.out.y == job.out.y);
            if !group.is_empty() && !joins && !submit(&mut gpu, &mut group, &mut inflight, &mut failed, &mut times) {
                return GpuTimes { tiles: done, ..times };
            }
            group.push((job, buf));
            if group.len() == run
                && failed.is_none()
                && gpu.has_free_slot()
                && !submit(&mut gpu, &mut group, &mut inflight, &mut failed, &mut times)
            {
                return GpuTimes { tiles: done, ..times };
            }
        }
        // A partial run goes now rather than wait for more jobs.
        if !group.is_empty()
            && failed.is_none()
            && gpu.has_free_slot()
            && !submit(&mut gpu, &mut group, &mut inflight, &mut failed, &mut times)
        {
            return GpuTimes { tiles: done, ..times };
        }
        gpu.flush();
        // Complete the oldest run (they finish in order), then every following one already done,
        // so that the ring refills in one batch.
        let mut first = true;
        while let Some(front) = inflight.front() {
            if !first && (failed.is_some() || fail_after.is_some_and(|n| done >= n) || !gpu.ready(front.1)) {
                break;
            }
            first = false;
            let Some((mut tiles, s)) = inflight.pop_front() else { break };
            let mut computed = false;
            if failed.is_none() {
                if fail_after.is_some_and(|n| done >= n) {
                    failed = Some(Error::Gpu(format!("simulated device failure after {done} tiles")));
                } else {
                    let t = Instant::now();
                    let mut outs: Vec<&mut [u8]> = tiles.iter_mut().map(|(_, b)| b.as_mut()).collect();
                    match gpu.complete(s, &mut outs) {
                        Ok(()) => {
                            computed = true;
                            done += tiles.len() as u64;
                        }
                        Err(e) => failed = Some(e),
                    }
                    times.wait += t.elapsed().as_secs_f64();
                }
            }
            for (job, buf) in tiles {
                if out.send((job, buf, computed)).is_err() {
                    return GpuTimes { tiles: done, ..times };
                }
            }
        }
        if inflight.is_empty() && (!open || failed.is_some()) && (group.is_empty() || failed.is_some()) {
            break;
        }
    }
    if let Some(e) = failed {
        if let Ok(mut w) = warnings.lock() {
            w.push(format!("GPU failed ({e}); the remaining tiles are computed on the CPU"));
        }
        // Everything still to come goes to the CPU workers.
        for (job, buf) in group.drain(..).chain(jobs.iter().map(|(j, b, _)| (j, b))) {
            if out.send((job, buf, false)).is_err() {
                break;
            }
        }
    }
    times.tiles = done;
    times.readback = gpu.readback_seconds;
    times.wait -= gpu.readback_seconds;
    times
}
