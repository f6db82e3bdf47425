//! The writer: the one thread that talks to the sink. Tiles arrive in any order from the
//! workers; the writer puts them back in tile order, writes each, returns its buffer to the
//! ring, checkpoints the sink about once a second, reports progress at most every 100 ms, and
//! relays notices (warnings, the GPU's late `backend` event) from other threads.

use super::ring::{Msg, Slot};
use super::Notice;
use crate::error::{Error, Result};
use crate::progress::Event;
use crate::sink::TileSink;
use crossbeam_channel::{Receiver, Sender};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const REPORT_EVERY: Duration = Duration::from_millis(100);
const CHECKPOINT_EVERY: Duration = Duration::from_millis(1000);

/// The writer's state for one job.
pub(crate) struct Writer<'a> {
    pub sink: &'a mut dyn TileSink,
    /// Where written tiles' buffers go back.
    pub free: Sender<Slot>,
    /// Notices from other threads, relayed as events.
    pub notices: Receiver<Notice>,
    /// The next tile to write, and the job's tile range (progress counts from its start).
    pub next: u64,
    pub start: u64,
    pub end: u64,
    /// Tiles per band of the plan's tile order.
    pub band_tiles: u64,
    /// Test hook: die by SIGKILL right after this many tiles are durable.
    pub kill_after: Option<u64>,
    /// Seconds spent in the sink.
    pub write_s: f64,
    /// The last `backend` notice relayed (the backend that did the work).
    pub backend: Option<(&'static str, String)>,
}

impl Writer<'_> {
    /// Writes every tile up to `end` as it arrives on `done`, then finishes the sink; returns
    /// its byte count. `band_done(b)` is called when band `b` of the tile order is complete
    /// (a row of tiles, when row-major). Fails on the
    /// first error of a worker or of the sink, on cancellation, or if the workers stop early.
    pub(crate) fn run(
        &mut self,
        done: &Receiver<Result<Msg>>,
        cancelled: &dyn Fn() -> bool,
        band_done: &mut dyn FnMut(u32),
        progress: &mut dyn FnMut(&Event),
    ) -> Result<u64> {
        let mut pending: BTreeMap<u64, Msg> = BTreeMap::new();
        let (mut last_report, mut last_checkpoint) = (Instant::now(), Instant::now());
        while self.next < self.end {
            if cancelled() {
                return Err(Error::Interrupted { signal: None });
            }
            let msg = done.recv().map_err(|_| Error::Interrupted { signal: None })??;
            pending.insert(msg.0.index, msg);
            self.relay(progress);
            while let Some((job, slot, pass)) = pending.remove(&self.next) {
                let tw = Instant::now();
                self.sink.write_tile(&job, if pass { &slot.raw } else { &slot.enc })?;
                self.write_s += tw.elapsed().as_secs_f64();
                let _ = self.free.send(slot);
                if job.index % self.band_tiles == self.band_tiles - 1 {
                    band_done((job.index / self.band_tiles) as u32);
                }
                self.next += 1;
                if self.kill_after == Some(self.next) {
                    self.sink.checkpoint()?;
                    kill_self_for_test();
                }
                if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                    last_checkpoint = Instant::now();
                    self.sink.checkpoint()?;
                }
                if last_report.elapsed() >= REPORT_EVERY || self.next == self.end {
                    last_report = Instant::now();
                    progress(&Event::Tiles { done: self.next - self.start, total: self.end - self.start });
                }
            }
        }
        let tw = Instant::now();
        let bytes = self.sink.finish()?;
        self.write_s += tw.elapsed().as_secs_f64();
        Ok(bytes)
    }

    /// Turns waiting notices into events.
    pub(crate) fn relay(&mut self, progress: &mut dyn FnMut(&Event)) {
        relay(&self.notices, &mut self.backend, progress);
    }
}

/// Turns the notices waiting on `notices` into events; a `backend` notice is also kept in
/// `backend` (the backend that did the work, for the report).
pub(crate) fn relay(
    notices: &Receiver<Notice>,
    backend: &mut Option<(&'static str, String)>,
    progress: &mut dyn FnMut(&Event),
) {
    for n in notices.try_iter() {
        match n {
            Notice::Warning(message) => progress(&Event::Warning { message }),
            Notice::Backend { kind, detail } => {
                progress(&Event::Backend { kind: kind.to_string(), detail: detail.clone() });
                *backend = Some((kind, detail));
            }
        }
    }
}

/// The crash-test hook (`Hooks::kill_after_tiles`): the process dies by SIGKILL, as from
/// `kill -9`, with no destructor run and nothing flushed.
fn kill_self_for_test() -> ! {
    // SAFETY: `kill` and `getpid` take plain integers and touch no memory of ours.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Rect, TileJob};
    use crate::sink::{SinkHeader, TileEncoder};
    use crossbeam_channel::{bounded, unbounded};

    /// Records what it is given; fails on tile `fail_at`.
    #[derive(Default)]
    struct Recorder {
        written: Vec<(u64, Vec<u8>)>,
        fail_at: Option<u64>,
        finished: bool,
    }
    impl TileSink for Recorder {
        fn begin(&mut self, _h: &SinkHeader) -> Result<()> {
            Ok(())
        }
        fn encoder(&self) -> Result<Box<dyn TileEncoder>> {
            Ok(Box::new(crate::sink::Raw))
        }
        fn write_tile(&mut self, job: &TileJob, data: &[u8]) -> Result<()> {
            if self.fail_at == Some(job.index) {
                return Err(Error::io("/dev/full", std::io::Error::other("disk full")));
            }
            self.written.push((job.index, data.to_vec()));
            Ok(())
        }
        fn finish(&mut self) -> Result<u64> {
            self.finished = true;
            Ok(self.written.len() as u64)
        }
    }

    fn tile(index: u64) -> Msg {
        let r = Rect { x: 0, y: 0, w: 1, h: 1 };
        (TileJob { index, out: r, src: r }, Slot { raw: vec![index as u8], enc: Vec::new() }, true)
    }

    fn writer(sink: &mut Recorder, free: Sender<Slot>, notices: Receiver<Notice>, end: u64) -> Writer<'_> {
        Writer {
            sink,
            free,
            notices,
            next: 0,
            start: 0,
            end,
            band_tiles: 2,
            kill_after: None,
            write_s: 0.0,
            backend: None,
        }
    }

    #[test]
    fn out_of_order_tiles_are_written_in_order_and_slots_come_back() {
        let (done_tx, done_rx) = unbounded();
        let (free_tx, free_rx) = unbounded();
        let (note_tx, note_rx) = unbounded();
        for i in [2, 0, 3, 1] {
            done_tx.send(Ok(tile(i))).unwrap();
        }
        note_tx.send(Notice::Warning("careful".into())).unwrap();
        let mut sink = Recorder::default();
        let mut rows = Vec::new();
        let mut events = Vec::new();
        let mut w = writer(&mut sink, free_tx, note_rx, 4);
        let bytes = w.run(&done_rx, &|| false, &mut |ty| rows.push(ty), &mut |e| events.push(e.clone())).unwrap();
        assert_eq!(bytes, 4);
        assert_eq!(sink.written.iter().map(|t| t.0).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        assert_eq!(sink.written[2].1, vec![2]);
        assert!(sink.finished);
        assert_eq!(rows, vec![0, 1], "two rows of two tiles");
        assert_eq!(free_rx.try_iter().count(), 4);
        assert!(events.contains(&Event::Warning { message: "careful".into() }));
        assert_eq!(events.last(), Some(&Event::Tiles { done: 4, total: 4 }));
    }

    #[test]
    fn a_failing_sink_stops_the_job_with_its_error() {
        let (done_tx, done_rx) = unbounded();
        let (free_tx, _free_rx) = unbounded();
        let (_note_tx, note_rx) = unbounded::<Notice>();
        for i in 0..4 {
            done_tx.send(Ok(tile(i))).unwrap();
        }
        let mut sink = Recorder { fail_at: Some(1), ..Default::default() };
        let mut w = writer(&mut sink, free_tx, note_rx, 4);
        let e = w.run(&done_rx, &|| false, &mut |_| {}, &mut |_| {}).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        assert_eq!(sink.written.len(), 1);
        assert!(!sink.finished);
    }

    #[test]
    fn cancellation_and_worker_errors_end_the_writer() {
        let (done_tx, done_rx) = bounded(4);
        let (free_tx, _free_rx) = unbounded();
        let (_note_tx, note_rx) = unbounded::<Notice>();
        let mut sink = Recorder::default();
        let mut w = writer(&mut sink, free_tx.clone(), note_rx.clone(), 4);
        let e = w.run(&done_rx, &|| true, &mut |_| {}, &mut |_| {}).unwrap_err();
        assert!(matches!(e, Error::Interrupted { .. }));
        done_tx.send(Err(Error::Gpu("lost".into()))).unwrap();
        let mut w = writer(&mut sink, free_tx.clone(), note_rx.clone(), 4);
        assert!(matches!(w.run(&done_rx, &|| false, &mut |_| {}, &mut |_| {}), Err(Error::Gpu(_))));
        // Workers gone before the last tile: interrupted, never a hang.
        drop(done_tx);
        let mut w = writer(&mut sink, free_tx, note_rx, 4);
        assert!(matches!(w.run(&done_rx, &|| false, &mut |_| {}, &mut |_| {}), Err(Error::Interrupted { .. })));
    }
}
