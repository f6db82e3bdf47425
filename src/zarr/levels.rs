//! The reduced levels of an OME-Zarr pyramid, written on their own thread: the sink hands over
//! a finished shard's level-1 pixels and goes on with the next shard in a second buffer; this
//! thread reduces level 1 to 2, 2 to 3 and so on within the shard, encodes each level's inner
//! chunks (all of a level's shard at once, in parallel) and writes each level's shard. Two level-1
//! buffers circulate, so the sink waits only when this thread is a whole shard behind.

use super::shard::{compressor, encode_chunk};
use super::target::Target;
use super::ZarrLayout;
use crate::error::{Error, Result};
use crossbeam_channel::{bounded, Receiver, Sender};
use rayon::prelude::*;
use std::sync::Arc;
use std::thread::JoinHandle;

/// A finished shard's position and level-1 pixels.
type Work = ((u32, u32), Vec<u8>);

/// The level thread and the buffers circulating with it.
pub(crate) struct Levels {
    work: Option<Sender<Work>>,
    free: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<Result<u64>>>,
}

impl Levels {
    /// Starts the thread, with one spare level-1 buffer.
    pub(super) fn start(target: &Arc<Target>, layout: &ZarrLayout) -> Levels {
        let (work_tx, work_rx) = bounded::<Work>(1);
        let (free_tx, free_rx) = bounded::<Vec<u8>>(2);
        let _ = free_tx.send(vec![0; layout.shard_bytes(1) as usize]);
        let (target, layout) = (target.clone(), layout.clone());
        let thread = std::thread::Builder::new()
            .name("gigascale-levels".into())
            .spawn(move || write_all(&target, &layout, &work_rx, &free_tx))
            .ok();
        Levels { work: Some(work_tx), free: free_rx, thread }
    }

    /// A level-1 buffer to fill (waits while the thread still holds both).
    pub(super) fn free(&mut self) -> Result<Vec<u8>> {
        match self.free.recv() {
            Ok(b) => Ok(b),
            Err(_) => Err(self.failure()),
        }
    }

    /// Hands over shard `pos`'s level-1 pixels.
    pub(super) fn submit(&mut self, pos: (u32, u32), level1: Vec<u8>) -> Result<()> {
        let sent = self.work.as_ref().is_some_and(|w| w.send((pos, level1)).is_ok());
        if sent {
            Ok(())
        } else {
            Err(self.failure())
        }
    }

    /// Waits for the thread to write what it was given; the bytes of the reduced shards.
    pub(super) fn finish(mut self) -> Result<u64> {
        drop(self.work.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => Err(Error::Internal("the pyramid's level thread did not start or panicked".into())),
        }
    }

    /// The thread's error, once it has stopped.
    fn failure(&mut self) -> Error {
        drop(self.work.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            _ => Error::Internal("the pyramid's level thread stopped".into()),
        }
    }
}

impl Drop for Levels {
    fn drop(&mut self) {
        drop(self.work.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The thread: every shard handed over, every reduced level, until the sender is dropped.
fn write_all(target: &Arc<Target>, layout: &ZarrLayout, work: &Receiver<Work>, free: &Sender<Vec<u8>>) -> Result<u64> {
    let mut smaller: Vec<Vec<u8>> = (2..layout.levels.len()).map(|n| vec![0; layout.shard_bytes(n) as usize]).collect();
    let mut bytes = 0;
    for (pos, level1) in work.iter() {
        bytes += write_shard(target, layout, pos, &level1, &mut smaller)?;
        let _ = free.send(level1);
    }
    Ok(bytes)
}

/// Writes shard `pos` of every reduced level from its level-1 pixels; returns their bytes.
fn write_shard(
    target: &Arc<Target>,
    layout: &ZarrLayout,
    pos: (u32, u32),
    level1: &[u8],
    smaller: &mut [Vec<u8>],
) -> Result<u64> {
    let px = layout.layout;
    let bpp = px.bytes_per_pixel();
    let mut bytes = 0;
    for n in 1..layout.levels.len() {
        let stride = layout.levels[n].shard as usize * bpp;
        if n > 1 {
            let size = layout.valid(n - 1, pos);
            let (done, rest) = smaller.split_at_mut(n - 2);
            let src: &[u8] = if n == 2 { level1 } else { &done[n - 3] };
            crate::sink::reduce(src, 2 * stride, size, px, &mut rest[0], stride);
        }
        let pixels: &[u8] = if n == 1 { level1 } else { &smaller[n - 2] };
        bytes += write_level(target, &ZarrLayout::shard_key(n, pos), layout, n, layout.valid(n, pos), pixels)?;
    }
    Ok(bytes)
}

/// Encodes the valid `w x h` pixels of one level's shard into inner chunks, all of them in
/// parallel (the level thread is otherwise the pyramid's bottleneck), and writes the shard
/// with its chunks in row-major order.
fn write_level(
    target: &Arc<Target>,
    key: &str,
    layout: &ZarrLayout,
    n: usize,
    (w, h): (usize, usize),
    pixels: &[u8],
) -> Result<u64> {
    let (px, level) = (layout.layout, layout.zstd_level);
    let bpp = px.bytes_per_pixel();
    let stride = layout.levels[n].shard as usize * bpp;
    let c = layout.levels[n].chunk as usize;
    let (across, down) = (w.div_ceil(c), h.div_ceil(c));
    let chunks: Vec<Result<Vec<u8>>> = (0..across * down)
        .into_par_iter()
        .map_init(
            || (Vec::new(), compressor(level)),
            |(planar, zstd), i| {
                let zstd = zstd.as_mut().map_err(|e| Error::Internal(e.to_string()))?;
                let (cx, cy) = (i % across, i / across);
                let src = &pixels[cy * c * stride + cx * c * bpp..];
                let size = ((w - cx * c).min(c), (h - cy * c).min(c));
                encode_chunk(src, stride, size, c, px, zstd, planar)
            },
        )
        .collect();
    let k = layout.chunks_across(n);
    let mut file = target.shard(key, k * k)?;
    for (i, chunk) in chunks.into_iter().enumerate() {
        file.add((i / across) * k + i % across, &chunk?)?;
    }
    file.finish()
}
