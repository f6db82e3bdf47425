//! The workers: a scoped pool of CPU threads. Each takes the next tile from its [`Feed`],
//! computes it unless the GPU already did, runs the sink's encoder on it (compression is
//! parallel, writing stays ordered) and passes it to the writer.

use super::ring::{Feed, Msg};
use crate::error::{Error, Result};
use crate::faces::RestoredFaces;
use crate::plan::Plan;
use crate::resample::{resample_tile, Scratch};
use crate::sink::TileEncoder;
use crate::store::Store;
use crossbeam_channel::Sender;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// What every worker shares.
pub(crate) struct Workers<'a> {
    pub plan: &'a Plan,
    pub store: &'a Store,
    /// Tiles only the GPU may compute (`--precision f16`): one that arrives uncomputed (the
    /// GPU failed) fails the job instead of being computed with other arithmetic.
    pub gpu_only: bool,
    /// Restored faces to paste into each computed tile (`--faces`).
    pub faces: Option<&'a RestoredFaces>,
    /// CPU nanoseconds spent resampling and encoding, summed over workers.
    pub compute_ns: &'a AtomicU64,
    pub encode_ns: &'a AtomicU64,
}

impl Workers<'_> {
    /// Runs one worker per encoder until the feed is exhausted; returns when all have stopped
    /// (the pool is scoped: no thread outlives the job). A worker stops at its first error,
    /// which it sends on `done`.
    pub(crate) fn run(&self, encoders: Vec<Box<dyn TileEncoder>>, feed: Feed, done: Sender<Result<Msg>>) {
        let threads = encoders.len().max(1);
        let built = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("gigascale-worker-{i}"))
            .build_scoped(
                |t| t.run(),
                |pool| {
                    pool.scope(|s| {
                        for enc in encoders {
                            let (feed, done) = (feed.clone(), done.clone());
                            s.spawn(move |_| self.work(enc, feed, done));
                        }
                    })
                },
            );
        if let Err(e) = built {
            let _ = done.send(Err(Error::Internal(format!("cannot start {threads} worker threads: {e}"))));
        }
    }

    fn work(&self, mut enc: Box<dyn TileEncoder>, mut feed: Feed, done: Sender<Result<Msg>>) {
        let mut scratch = Scratch::default();
        while let Some((job, mut slot, computed)) = feed.next() {
            if !computed && self.gpu_only {
                let _ = done.send(Err(Error::Gpu(format!(
                    "the GPU failed during an --precision f16 job, whose tiles only the GPU can compute; \
                     rerun it, or use --precision exact ({})",
                    crate::options::F16_WHY
                ))));
                return;
            }
            let tc = Instant::now();
            if !computed {
                resample_tile(self.plan, self.store, &job, &mut scratch, &mut slot.raw);
            }
            if let Some(faces) = self.faces {
                let g = &self.plan.geom;
                let stride = g.tile as usize * g.layout.bytes_per_pixel();
                if let Err(e) = faces.paste(g.layout, job.out, stride, &mut slot.raw) {
                    let _ = done.send(Err(e));
                    return;
                }
            }
            let te = Instant::now();
            self.compute_ns.fetch_add((te - tc).as_nanos() as u64, Ordering::Relaxed);
            let pass = enc.passthrough();
            let r = if pass { Ok(()) } else { enc.encode(&job, &mut slot.raw, &mut slot.enc) };
            self.encode_ns.fetch_add(te.elapsed().as_nanos() as u64, Ordering::Relaxed);
            let msg = r.map(|()| (job, slot, pass));
            let failed = msg.is_err();
            if done.send(msg).is_err() || failed {
                return;
            }
        }
    }
}
