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

/// Runs until the planner's channel closes. `T` is the executor's tile buffer type.
#[allow(clippy::too_many_arguments)]
pub(crate) fn drive<T: AsMut<[u8]>>(
    mut gpu: GpuResampler,
    jobs: Receiver<(TileJob, T, bool)>,
    out: Sender<(TileJob, T, bool)>,
    rows: &dyn Rows,
    bpp: usize,
    fail_after: Option<u64>,
    warnings: &Mutex<Vec<String>>,
) -> GpuTimes {
    let mut times = GpuTimes::default();
    let mut inflight: VecDeque<(TileJob, T, usize)> = VecDeque::new();
    let mut failed: Option<Error> = None;
    let mut done = 0u64;
    let mut open = true;
    loop {
        // Keep the ring full while jobs are ready; block only when nothing is in flight.
        while failed.is_none() && open && gpu.has_free_slot() {
            let next =
                if inflight.is_empty() { jobs.recv().map_err(|_| TryRecvError::Disconnected) } else { jobs.try_recv() };
            let (job, buf, _) = match next {
                Ok(m) => m,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            };
            let t = Instant::now();
            let r = gpu.submit(&job, rows, bpp);
            times.upload += t.elapsed().as_secs_f64();
            match r {
                Ok(s) => inflight.push_back((job, buf, s)),
                Err(e) => {
                    failed = Some(e);
                    if out.send((job, buf, false)).is_err() {
                        return GpuTimes { tiles: done, ..times };
                    }
                }
            }
        }
        gpu.flush();
        // Complete the oldest submission (they finish in order).
        let Some((job, mut buf, s)) = inflight.pop_front() else {
            if failed.is_some() || !open {
                break;
            }
            continue;
        };
        let mut computed = false;
        if failed.is_none() {
            if fail_after.is_some_and(|n| done >= n) {
                failed = Some(Error::Gpu(format!("simulated device failure after {done} tiles")));
            } else {
                let t = Instant::now();
                match gpu.complete(s, buf.as_mut()) {
                    Ok(()) => {
                        computed = true;
                        done += 1;
                    }
                    Err(e) => failed = Some(e),
                }
                times.wait += t.elapsed().as_secs_f64();
            }
        }
        if out.send((job, buf, computed)).is_err() {
            return GpuTimes { tiles: done, ..times };
        }
        // Then every following tile that is already done, so that the ring refills in one batch
        // rather than one tile per submission.
        while failed.is_none()
            && fail_after.is_none_or(|n| done < n)
            && inflight.front().is_some_and(|f| gpu.ready(f.2))
        {
            let Some((job, mut buf, s)) = inflight.pop_front() else { break };
            let t = Instant::now();
            let ok = match gpu.complete(s, buf.as_mut()) {
                Ok(()) => {
                    done += 1;
                    true
                }
                Err(e) => {
                    failed = Some(e);
                    false
                }
            };
            times.wait += t.elapsed().as_secs_f64();
            if out.send((job, buf, ok)).is_err() {
                return GpuTimes { tiles: done, ..times };
            }
        }
    }
    if let Some(e) = failed {
        if let Ok(mut w) = warnings.lock() {
            w.push(format!("GPU failed ({e}); the remaining tiles are computed on the CPU"));
        }
        // Everything still to come goes to the CPU workers.
        for (job, buf, _) in jobs.iter() {
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
