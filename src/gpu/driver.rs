//! The GPU thread of a job: takes (job, tile buffer) pairs from the planner, runs them through
//! the ring of GPU slots, and passes computed tiles on to the encoder workers. If the device
//! fails (lost, out of memory, validation), every tile not yet computed is passed on marked
//! "not computed" and the workers resample it on the CPU, so the output stays correct.

use super::GpuResampler;
use crate::error::Error;
use crate::exec::device::TileDevice;
use crate::exec::ring::Msg;
use crate::exec::{DeviceTimes, Notice};
use crate::plan::TileJob;
use crate::store::Rows;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use std::collections::VecDeque;
use std::time::Instant;

/// A run of tiles in flight: the jobs with their buffers, and the GPU slot computing them.
type Run<T> = (Vec<(TileJob, T)>, usize);

/// Nobody listens any more (the job is ending): stop at once.
struct Gone;

/// The GPU thread's state. `T` is the executor's tile buffer type.
struct Driver<'a, T> {
    gpu: GpuResampler,
    jobs: Receiver<(TileJob, T, bool)>,
    out: Sender<(TileJob, T, bool)>,
    rows: &'a dyn Rows,
    fail_after: Option<u64>,
    times: DeviceTimes,
    inflight: VecDeque<Run<T>>,
    /// Consecutive tiles of one row of tiles, waiting to be submitted as one run.
    group: Vec<(TileJob, T)>,
    failed: Option<Error>,
    /// Tiles computed so far.
    done: u64,
    /// Whether the planner may still send jobs.
    open: bool,
    run: usize,
}

/// The GPU resampler as the tile stage's [`TileDevice`].
pub(crate) struct GpuDevice {
    pub(crate) gpu: GpuResampler,
    /// Test hook: fail (as a lost device would) after this many tiles.
    pub(crate) fail_after: Option<u64>,
}

impl TileDevice for GpuDevice {
    fn drive(
        self: Box<Self>,
        jobs: Receiver<Msg>,
        out: Sender<Msg>,
        rows: &(dyn Rows + Sync),
        notices: &Sender<Notice>,
    ) -> DeviceTimes {
        drive(self.gpu, jobs, out, rows, self.fail_after, notices)
    }
}

/// Runs until the planner's channel closes. Consecutive tiles of one row of tiles are grouped
/// into runs of up to [`GpuResampler::run`] tiles, each computed as one unit. A failure is
/// reported as a [`Notice::Warning`], and the tiles go to the CPU.
pub(crate) fn drive<T: AsMut<[u8]>>(
    gpu: GpuResampler,
    jobs: Receiver<(TileJob, T, bool)>,
    out: Sender<(TileJob, T, bool)>,
    rows: &dyn Rows,
    fail_after: Option<u64>,
    notices: &Sender<Notice>,
) -> DeviceTimes {
    let run = gpu.run();
    let mut d = Driver {
        gpu,
        jobs,
        out,
        rows,
        fail_after,
        times: DeviceTimes::default(),
        inflight: VecDeque::new(),
        group: Vec::new(),
        failed: None,
        done: 0,
        open: true,
        run,
    };
    if d.work().is_ok() {
        if let Some(e) = d.failed.take() {
            let _ =
                notices.send(Notice::Warning(format!("GPU failed ({e}); the remaining tiles are computed on the CPU")));
            d.hand_rest_to_cpu();
        }
    }
    let mut times = d.times;
    times.tiles = d.done;
    times.readback = d.gpu.readback_seconds;
    times.wait -= d.gpu.readback_seconds;
    times
}

impl<T: AsMut<[u8]>> Driver<'_, T> {
    fn work(&mut self) -> Result<(), Gone> {
        loop {
            self.fill()?;
            // A partial run goes now rather than wait for more jobs.
            if !self.group.is_empty() && self.failed.is_none() && self.gpu.has_free_slot() {
                self.submit()?;
            }
            self.gpu.flush();
            self.complete_ready()?;
            let idle = self.group.is_empty() || self.failed.is_some();
            if self.inflight.is_empty() && (!self.open || self.failed.is_some()) && idle {
                return Ok(());
            }
        }
    }

    /// Keeps the ring full while jobs are ready; blocks only when nothing is pending.
    fn fill(&mut self) -> Result<(), Gone> {
        while self.failed.is_none() && self.open && self.gpu.has_free_slot() {
            let next = if self.inflight.is_empty() && self.group.is_empty() {
                self.jobs.recv().map_err(|_| TryRecvError::Disconnected)
            } else {
                self.jobs.try_recv()
            };
            let (job, buf, _) = match next {
                Ok(m) => m,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.open = false;
                    break;
                }
            };
            let joins = self.group.last().is_some_and(|(l, _)| l.index + 1 == job.index && l.out.y == job.out.y);
            if !self.group.is_empty() && !joins {
                self.submit()?;
            }
            self.group.push((job, buf));
            if self.group.len() == self.run && self.failed.is_none() && self.gpu.has_free_slot() {
                self.submit()?;
            }
        }
        Ok(())
    }

    /// Submits the pending group; on a GPU error its tiles go to the CPU.
    fn submit(&mut self) -> Result<(), Gone> {
        let list: Vec<TileJob> = self.group.iter().map(|g| g.0).collect();
        let t = Instant::now();
        let r = self.gpu.submit(&list, self.rows);
        self.times.upload += t.elapsed().as_secs_f64();
        match r {
            Ok(s) => self.inflight.push_back((std::mem::take(&mut self.group), s)),
            Err(e) => {
                self.failed = Some(e);
                for (job, buf) in self.group.drain(..) {
                    self.out.send((job, buf, false)).map_err(|_| Gone)?;
                }
            }
        }
        Ok(())
    }

    /// Completes the oldest run (they finish in order), then every following one already done,
    /// so that the ring refills in one batch.
    fn complete_ready(&mut self) -> Result<(), Gone> {
        let mut first = true;
        while let Some(front) = self.inflight.front() {
            let stop = self.failed.is_some() || self.fail_after.is_some_and(|n| self.done >= n);
            if !first && (stop || !self.gpu.ready(front.1)) {
                break;
            }
            first = false;
            let Some((mut tiles, s)) = self.inflight.pop_front() else { break };
            let computed = self.complete(s, &mut tiles);
            for (job, buf) in tiles {
                self.out.send((job, buf, computed)).map_err(|_| Gone)?;
            }
        }
        Ok(())
    }

    /// Reads run `s` back into its tiles; false if it was not computed (failure, simulated or
    /// real, now or earlier).
    fn complete(&mut self, s: usize, tiles: &mut [(TileJob, T)]) -> bool {
        if self.failed.is_some() {
            return false;
        }
        if self.fail_after.is_some_and(|n| self.done >= n) {
            self.failed = Some(Error::Gpu(format!("simulated device failure after {} tiles", self.done)));
            return false;
        }
        let t = Instant::now();
        let mut outs: Vec<&mut [u8]> = tiles.iter_mut().map(|(_, b)| b.as_mut()).collect();
        let ok = match self.gpu.complete(s, &mut outs) {
            Ok(()) => {
                self.done += tiles.len() as u64;
                true
            }
            Err(e) => {
                self.failed = Some(e);
                false
            }
        };
        self.times.wait += t.elapsed().as_secs_f64();
        ok
    }

    /// After a failure: everything still to come goes to the CPU workers.
    fn hand_rest_to_cpu(&mut self) {
        let pending = self.group.drain(..).chain(self.jobs.iter().map(|(j, b, _)| (j, b)));
        for (job, buf) in pending {
            if self.out.send((job, buf, false)).is_err() {
                break;
            }
        }
    }
}
