//! An SE block's pooled blob summed on the device (`se_pass.rs`): the network runs on a tile
//! up to the blob, `row_sums` (`shaders/neural_ops.wgsl`) adds the values of the window the
//! tile owns per channel, row and chunk of columns, in two exact 32-bit halves, and only those
//! sums come back — not the blob (tens of megabytes a tile, which the host then summed) — and a
//! tile's sums are submitted while earlier tiles' are still on the device.

use super::neural::{Flight, NeuralGpu};
use crate::error::{Error, Result};
use crate::neural::exact::Exact;
use crate::neural::graph::Graph;
use crate::neural::reference::{SeScales, Tensor, Window};
use crate::neural::stage::{tracing, Ticket};

/// Columns one `row_sums` invocation adds (the shader's constant): each half's sum then stays
/// within 32 bits (2^16 values of at most 2^16 in magnitude).
const CHUNK: usize = 16384;

/// A tile's sums submitted to the device: what [`NeuralGpu::finish_prefix_sums`] reads.
pub(crate) struct PrefixSums {
    /// The submission, its read-back buffer and its count in the device's flights (which a
    /// cancelled job's dropped ticket gives back); none for a window of no pixels.
    flight: Option<(wgpu::SubmissionIndex, wgpu::Buffer, Flight)>,
    channels: usize,
    /// Words per channel: two for each row and chunk of columns.
    words: usize,
}

/// `row_sums`' parameters for window `(x0, y0, w, h)` (image coordinates) of a blob shaped
/// `s`, and its words per channel.
fn row_sums_params(s: &Tensor<i16>, (x0, y0, w, h): Window) -> ([i32; 8], usize) {
    let chunks = w.div_ceil(CHUNK);
    let p = [s.c, h, w, chunks, x0 - s.x0, y0 - s.y0, s.w, s.h].map(|v| v as i32);
    (p, h * chunks * 2)
}

/// Per channel, the sum of `row_sums`' output words (`words` to a channel): upper halves
/// times 2^16 plus lower halves, exactly.
fn add_halves(out: &[i32], words: usize, channels: usize) -> Vec<i64> {
    let mut sums = vec![0i64; channels];
    for (sum, channel) in sums.iter_mut().zip(out.chunks(words.max(1))) {
        *sum = channel.chunks_exact(2).map(|h| ((h[0] as i64) << 16) + (h[1] as u32) as i64).sum();
    }
    sums
}

impl NeuralGpu {
    /// Records `g` on `input` up to blob `stop` (with the SE blocks' multipliers `scales`),
    /// the per-channel sums of that blob over the window `owned` names for its shape, and their
    /// copy to a read-back buffer; submits them and returns at once (a [`PrefixSums`]), with
    /// the window.
    pub(crate) fn submit_prefix_sums(
        &self,
        g: &Graph,
        ex: &Exact,
        (input, scales): (Tensor<i16>, &SeScales),
        stop: usize,
        owned: &dyn Fn(&Tensor<i16>) -> Result<Window>,
    ) -> Result<(Ticket, Window)> {
        self.check()?;
        let t0 = std::time::Instant::now();
        let mut enc = self.dev.device.create_command_encoder(&Default::default());
        let blob = self.record(&mut enc, g, ex, &input, scales, stop)?;
        let shape = blob.shape.clone();
        let window = owned(&shape)?;
        let (params, words) = row_sums_params(&shape, window);
        let n = shape.c * words;
        if n == 0 {
            self.recycle(blob.buf);
            return Ok((Box::new(PrefixSums { flight: None, channels: shape.c, words }), window));
        }
        let sums = self.op_n(&mut enc, "row_sums", &params, (&blob, None), n, shape.clone())?;
        self.recycle(blob.buf);
        let bytes = n as u64 * 4;
        let staging = self.staging_buffer(bytes)?;
        enc.copy_buffer_to_buffer(&sums.buf, 0, &staging, 0, bytes);
        let index = self.dev.queue.submit([enc.finish()]);
        self.profiled();
        self.recycle(sums.buf);
        let counted = Flight::start(&self.flights);
        if tracing() {
            let t = t0.elapsed().as_secs_f64();
            eprintln!("neural trace: prefix to blob {stop} and its sums ({bytes} B) submitted in {t:.3} s");
        }
        Ok((Box::new(PrefixSums { flight: Some((index, staging, counted)), channels: shape.c, words }), window))
    }

    /// Waits for sums `t` (not for later submissions) and returns them per channel, in the
    /// blob's integer units.
    pub(crate) fn finish_prefix_sums(&self, t: Ticket) -> Result<Vec<i64>> {
        let t = t.downcast::<PrefixSums>().map_err(|_| Error::Internal("a ticket from another device".into()))?;
        let PrefixSums { flight, channels, words } = *t;
        let Some((index, staging, counted)) = flight else { return Ok(vec![0; channels]) };
        drop(counted);
        let bytes = channels * words * 4;
        let mut sums = Vec::new();
        self.read_back(staging, index, bytes as u64, bytes, &mut |view| {
            sums = add_halves(bytemuck::cast_slice(view), words, channels);
        })?;
        Ok(sums)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The halves the shader writes add up to the values' sum for any 32-bit values, the
    /// extremes included, and the parameters place the window in the blob's own window.
    #[test]
    fn halves_add_up_to_the_values_sum() {
        let values = [i32::MIN, i32::MAX, -1, 0, 1, 65535, -65536, 8_388_607, -8_388_608, 12345];
        let hi: i32 = values.iter().map(|v| v >> 16).sum();
        let lo: u32 = values.iter().map(|&v| v as u32 & 0xffff).sum();
        let words = [hi, lo as i32, 3, 7];
        let want: i64 = values.iter().map(|&v| v as i64).sum();
        assert_eq!(add_halves(&words, 4, 1), vec![want + 3 * 65536 + 7]);
        assert_eq!(add_halves(&words, 2, 2), vec![want, 3 * 65536 + 7]);
        let s = Tensor::<i16> { c: 4, h: 30, w: 20000, x0: 10, y0: 20, gw: 30000, gh: 200, data: Vec::new() };
        let (p, words) = row_sums_params(&s, (12, 25, CHUNK + 1, 5));
        assert_eq!(p, [4, 5, CHUNK as i32 + 1, 2, 2, 5, 20000, 30]);
        assert_eq!(words, 5 * 2 * 2);
    }

    /// A submission's count in the device's flights goes when its ticket goes, read back or
    /// dropped unread (a cancelled job's): the next tile then finds an idle device again.
    #[test]
    fn a_dropped_ticket_is_no_longer_in_flight() {
        let flights = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (a, b) = (Flight::start(&flights), Flight::start(&flights));
        assert_eq!(flights.load(std::sync::atomic::Ordering::Relaxed), 2);
        drop(a);
        assert_eq!(flights.load(std::sync::atomic::Ordering::Relaxed), 1);
        drop(b);
        assert_eq!(flights.load(std::sync::atomic::Ordering::Relaxed), 0);
    }
}
