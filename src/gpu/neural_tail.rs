//! A network's enlarging tail on the device, in horizontal strips of the cut blob
//! (`neural/tail.rs` says why and where the cut is). Each strip is a copy of the cut's rows it
//! owns plus the tail's reach on both sides; the tail runs on it with the same window
//! bookkeeping as a whole tile, so every row of a strip's output is the whole tile's row; the
//! rows are gathered, in order, into the tile's output blob. The bytes are those of the
//! unstriped run: only the tail's live blobs are smaller.

use super::neural::{Blob, NeuralGpu, Run};
use crate::error::{Error, Result};
use crate::neural::reference::Tensor;
use crate::neural::tail::{TailCut, TAIL_BLOB_BYTES};

impl NeuralGpu {
    /// Records the tail from `cut` (the trunk's last blob) to the network's output in strips
    /// cut for the device's largest binding, and returns the output blob.
    pub(super) fn tail_in_strips(
        &self,
        enc: &mut wgpu::CommandEncoder,
        run: &Run<'_>,
        cut: Blob,
        t: &TailCut,
    ) -> Result<Blob> {
        let g = run.g;
        let (w, h) = (cut.shape.w, cut.shape.h);
        let rows = g.strip_rows(t, (w, h), self.largest_buffer().min(TAIL_BLOB_BYTES));
        if rows >= h {
            // One strip: the cut itself.
            let mut blobs: Vec<Option<Blob>> = vec![None; g.blobs];
            blobs[t.cut] = Some(cut);
            return self.run_nodes(enc, run, &mut blobs, t.first, g.output);
        }
        let mut pieces = Vec::with_capacity(h.div_ceil(rows.max(1)));
        for (r0, r1) in t.strips(h, rows) {
            let mut blobs: Vec<Option<Blob>> = vec![None; g.blobs];
            blobs[t.cut] = Some(self.rows_of(enc, &cut, r0, r1)?);
            pieces.push(self.run_nodes(enc, run, &mut blobs, t.first, g.output)?);
        }
        self.recycle(cut.buf);
        self.gather(enc, pieces)
    }

    /// Rows `r0..r1` of `x`'s window (all its columns and channels) as a blob of their own.
    fn rows_of(&self, enc: &mut wgpu::CommandEncoder, x: &Blob, r0: usize, r1: usize) -> Result<Blob> {
        let s = &x.shape;
        let h = r1 - r0;
        let buf = self.blob_buffer((s.c * h * s.w) as u64 * 4)?;
        if !self.is_dry() && h * s.w > 0 {
            for ch in 0..s.c {
                let from = ((ch * s.h + r0) * s.w) as u64 * 4;
                enc.copy_buffer_to_buffer(&x.buf, from, &buf, (ch * h * s.w) as u64 * 4, (h * s.w) as u64 * 4);
            }
        }
        Ok(Blob::of(Tensor { h, y0: s.y0 + r0, data: Vec::new(), ..s.clone() }, buf))
    }

    /// The strips' outputs, top to bottom, as one blob: each row from the first strip that
    /// has it (overlapping rows are the same in both). A gap between strips, or strips of
    /// different columns, is an internal error.
    fn gather(&self, enc: &mut wgpu::CommandEncoder, pieces: Vec<Blob>) -> Result<Blob> {
        let (first, last) = match (pieces.first(), pieces.last()) {
            (Some(f), Some(l)) => (f.shape.clone(), l.shape.clone()),
            _ => return Err(Error::Internal("a tail without strips".into())),
        };
        let (c, w, y0) = (first.c, first.w, first.y0);
        let h = (last.y0 + last.h).saturating_sub(y0);
        let out = self.blob_buffer((c * h * w) as u64 * 4)?;
        let mut next = y0;
        for p in pieces {
            let s = &p.shape;
            if s.y0 > next || s.c != c || s.w != w || s.x0 != first.x0 {
                return Err(Error::Internal(format!(
                    "tail strip rows {}..{} x {} do not continue rows {y0}..{next} x {w}",
                    s.y0,
                    s.y0 + s.h,
                    s.w
                )));
            }
            let end = s.y0 + s.h;
            if end > next && !self.is_dry() {
                let n = ((end - next) * w) as u64 * 4;
                for ch in 0..c {
                    let from = ((ch * s.h + next - s.y0) * w) as u64 * 4;
                    enc.copy_buffer_to_buffer(&p.buf, from, &out, ((ch * h + next - y0) * w) as u64 * 4, n);
                }
            }
            next = next.max(end);
            self.recycle(p.buf);
        }
        Ok(Blob::of(Tensor { h, ..first }, out))
    }
}
