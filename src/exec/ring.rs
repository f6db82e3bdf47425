//! The ring: a fixed set of tile buffers ([`Slot`]s) that circulate through bounded channels.
//! The planner takes a free slot for each tile (blocking while none is free), a worker (or the
//! GPU) fills and encodes it, the writer writes it and hands it back. Nothing is allocated per
//! tile, so memory is fixed by the number of slots, which the memory plan decides; a full ring
//! is the back-pressure that keeps fast stages from running ahead of the writer.

use crate::plan::TileJob;
use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};

/// One tile buffer: the raw samples, and the encoded bytes (empty when tiles pass through).
pub(crate) struct Slot {
    pub raw: Vec<u8>,
    pub enc: Vec<u8>,
}

impl AsMut<[u8]> for Slot {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.raw
    }
}

/// A tile on its way: the job, its buffer, and whether it has been computed already (by the
/// GPU; the workers compute the others).
pub(crate) type Msg = (TileJob, Slot, bool);

/// The free slots.
pub(crate) struct Ring {
    free_tx: Sender<Slot>,
    free_rx: Receiver<Slot>,
}

impl Ring {
    /// `slots` buffers of `tile_bytes` raw bytes, with room for `encoded` bytes each.
    pub(crate) fn new(slots: usize, tile_bytes: usize, encoded: usize) -> Ring {
        let (free_tx, free_rx) = bounded::<Slot>(slots.max(1));
        for _ in 0..slots.max(1) {
            let _ = free_tx.send(Slot { raw: vec![0; tile_bytes], enc: Vec::with_capacity(encoded) });
        }
        Ring { free_tx, free_rx }
    }
    /// Where finished slots go back.
    pub(crate) fn returns(&self) -> Sender<Slot> {
        self.free_tx.clone()
    }
    /// Where the planner takes free slots.
    pub(crate) fn free(&self) -> Receiver<Slot> {
        self.free_rx.clone()
    }
}

/// The planner: serial and in tile order, it pairs each job with a free slot and sends it on,
/// blocking while the ring is empty. Stops early when `stop` says so or nobody listens.
pub(crate) fn plan_tiles(
    tiles: impl Iterator<Item = TileJob>,
    free: &Receiver<Slot>,
    jobs: &Sender<Msg>,
    stop: &dyn Fn() -> bool,
) {
    for job in tiles {
        if stop() {
            break;
        }
        let Ok(slot) = free.recv() else { break };
        if jobs.send((job, slot, false)).is_err() {
            break;
        }
    }
}

/// Where a worker finds its next tile: tiles the GPU computed (first), and jobs straight from
/// the planner (to compute itself). Either may be absent; a closed one is dropped.
#[derive(Clone)]
pub(crate) struct Feed {
    pub computed: Option<Receiver<Msg>>,
    pub jobs: Option<Receiver<Msg>>,
}

impl Feed {
    /// The next tile, or `None` when both sources are closed and drained.
    pub(crate) fn next(&mut self) -> Option<Msg> {
        loop {
            if let Some(m) = Self::poll(&mut self.computed) {
                return Some(m);
            }
            if let Some(m) = Self::poll(&mut self.jobs) {
                return Some(m);
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

    /// A tile waiting on `rx` right now; a disconnected channel is dropped.
    fn poll(rx: &mut Option<Receiver<Msg>>) -> Option<Msg> {
        match rx.as_ref()?.try_recv() {
            Ok(m) => Some(m),
            Err(TryRecvError::Disconnected) => {
                *rx = None;
                None
            }
            Err(TryRecvError::Empty) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Rect;
    use std::time::Duration;

    fn job(index: u64) -> TileJob {
        let r = Rect { x: 0, y: 0, w: 1, h: 1 };
        TileJob { index, out: r, src: r }
    }

    #[test]
    fn a_full_ring_holds_the_planner_back() {
        let ring = Ring::new(2, 4, 0);
        let (jobs_tx, jobs_rx) = bounded::<Msg>(8);
        let free = ring.free();
        let planner = std::thread::spawn(move || plan_tiles((0..5).map(job), &free, &jobs_tx, &|| false));
        // Two slots: two jobs come out, then the planner waits for a slot to come back.
        let a = jobs_rx.recv().unwrap();
        let b = jobs_rx.recv().unwrap();
        assert_eq!((a.0.index, b.0.index), (0, 1));
        assert!(jobs_rx.recv_timeout(Duration::from_millis(100)).is_err(), "planner ran past a full ring");
        ring.returns().send(a.1).unwrap();
        assert_eq!(jobs_rx.recv().unwrap().0.index, 2);
        ring.returns().send(b.1).unwrap();
        ring.returns().send(Slot { raw: vec![0; 4], enc: Vec::new() }).unwrap();
        drop(ring);
        planner.join().unwrap();
        let rest: Vec<u64> = jobs_rx.try_iter().map(|m| m.0.index).collect();
        assert_eq!(rest, vec![3, 4]);
    }

    #[test]
    fn the_planner_stops_when_asked() {
        let ring = Ring::new(8, 4, 0);
        let (jobs_tx, jobs_rx) = bounded::<Msg>(8);
        let stop_after = std::sync::atomic::AtomicU64::new(0);
        let stop = || stop_after.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 3;
        plan_tiles((0..100).map(job), &ring.free(), &jobs_tx, &stop);
        assert_eq!(jobs_rx.try_iter().count(), 3);
    }

    #[test]
    fn computed_tiles_come_first_and_closed_feeds_end() {
        let (ctx, crx) = bounded::<Msg>(4);
        let (jtx, jrx) = bounded::<Msg>(4);
        let slot = || Slot { raw: vec![], enc: vec![] };
        jtx.send((job(1), slot(), false)).unwrap();
        ctx.send((job(0), slot(), true)).unwrap();
        let mut feed = Feed { computed: Some(crx), jobs: Some(jrx) };
        assert_eq!(feed.next().map(|m| (m.0.index, m.2)), Some((0, true)));
        assert_eq!(feed.next().map(|m| (m.0.index, m.2)), Some((1, false)));
        drop((ctx, jtx));
        assert!(feed.next().is_none());
    }
}
