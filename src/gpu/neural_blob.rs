//! How the neural engine holds blobs on the device ([`Blob`]): a blob's buffer and window, a
//! concatenation never made (its parts), and the split a blob keeps for the tensor-core
//! convolutions that read it (`neural_conv.rs`), with where a convolution's reach lies in it;
//! and the keys of the convolutions' compiled shaders.

use super::neural_split::{PartPlace, SplitForm};
use super::neural_tensor::{split_geometry, MAX_PARTS};
use crate::neural::reference::Tensor;
use std::sync::{Arc, Mutex};

/// A blob on the device: its window (no host data) and its `i32` samples.
#[derive(Clone)]
pub(super) struct Blob {
    pub(super) shape: Tensor<i16>,
    pub(super) buf: Arc<wgpu::Buffer>,
    /// A channel concatenation not made (`neural_ops.rs`, `Op::Concat`): its parts and their
    /// shifts to its exponent; the tensor-core convolutions reading it read each part from
    /// the part's own split (at that shift), and `buf` is the first part's. Anything else
    /// makes it first (`NeuralGpu::made`).
    pub(super) parts: Option<Arc<Vec<(Blob, i32)>>>,
    /// Its splits for the tensor-core convolutions, kept for the next that reads it at the
    /// same shift (shared by the blob's clones; `neural_conv.rs`): of its 16-bit values or the
    /// upper part of 24-bit ones, and of the lower part.
    pub(super) split: Arc<Mutex<[Option<KeptSplit>; 2]>>,
}

impl Blob {
    /// A blob made of `buf`.
    pub(super) fn of(shape: Tensor<i16>, buf: Arc<wgpu::Buffer>) -> Blob {
        Blob { shape, buf, parts: None, split: Arc::default() }
    }
}

/// A convolution shader: one pipeline per distinct value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum ConvShader {
    /// The plain integer shader: input channels, kernel, whether it writes raw sums (for
    /// 24-bit activations, `neural_wide.rs`) rather than finished outputs.
    Plain(usize, usize, bool),
    /// The tensor-core shader: its parts' 16-channel slices (zero after the last part),
    /// kernel, output channels, whether it writes raw sums, whether it reads the lower parts
    /// of 24-bit values whole (`tensor_conv_shader`'s `lower` form), the taps it sums before
    /// folding them into its integer sums (`neural_weights.rs`).
    Tensor([u16; MAX_PARTS], usize, usize, bool, bool, usize),
    /// The split of a blob of this many channels for a kernel of this size, in this form.
    Split(usize, usize, SplitForm),
}

/// What a split of a blob holds: the blob shifted by `shift`, over columns `x0..x0 + columns`
/// and rows `y0..y0 + rows` of the image (zero outside the blob's window and the image), every
/// 16-channel slice of the blob; of its values as they are (`part` 0), or of the upper (1) or
/// lower (2) part of 24-bit values (`neural_wide.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SplitArea {
    pub(super) shift: i32,
    pub(super) part: i32,
    pub(super) x0: i64,
    pub(super) y0: i64,
    pub(super) columns: usize,
    pub(super) rows: usize,
}

/// A blob's split input (`Blob::split`), kept for the next tensor-core convolution that reads
/// the blob at the same shift.
pub(super) struct KeptSplit {
    pub(super) area: SplitArea,
    pub(super) buf: Arc<wgpu::Buffer>,
}

/// What a tensor-core convolution of a `k x k` kernel and an `out_w x out_h` output reads of
/// its input from column `x0`, row `y0` of the image: `columns x rows` of its split
/// (`split_geometry`), of which it uses the first `out_w + k - 1` columns (the others only for
/// pixels it does not write).
#[derive(Debug, Clone, Copy)]
pub(super) struct Reach {
    pub(super) x0: i64,
    pub(super) y0: i64,
    pub(super) out_w: usize,
    pub(super) out_h: usize,
    pub(super) k: usize,
}

impl Reach {
    /// The reach of a convolution with parameters `params` (the shaders' `Params`) and a
    /// `k x k` kernel.
    pub(super) fn of(params: &[i32], k: usize) -> Reach {
        let (x0, y0) = (params[8] as i64 - params[6] as i64, params[9] as i64 - params[7] as i64);
        Reach { x0, y0, out_w: params[10] as usize, out_h: params[11] as usize, k }
    }

    /// Columns and rows of its split.
    pub(super) fn extent(&self) -> (usize, usize) {
        let (columns, rows, _) = split_geometry(self.out_w, self.out_h, 1, self.k);
        (columns, rows)
    }
}

impl SplitArea {
    /// Where reach `r` lies in this split, if it covers every row and used column of it.
    pub(super) fn place_of(&self, r: &Reach, slices: usize) -> Option<PartPlace> {
        let ((dx, dy), rows) = ((r.x0 - self.x0, r.y0 - self.y0), r.extent().1);
        let used = r.out_w + r.k - 1;
        let inside = dx >= 0 && dy >= 0 && dx as usize + used <= self.columns && dy as usize + rows <= self.rows;
        inside.then(|| PartPlace::within(slices, (self.columns, self.rows), (dx as usize, dy as usize)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kept split covers a reach only where every row and used column lies inside it, and
    /// places it at its offset.
    #[test]
    fn kept_splits_cover_only_what_they_hold() {
        // A 3x3 convolution of a 10x6 output from column 0, row 1 (padding 1): 130 columns
        // (one run and the kernel's reach) by 8 rows.
        let params = |x0: i32, y0: i32, w: i32, h: i32| [0, 0, 9, 9, 300, 300, 1, 1, x0, y0, w, h, 1, 8, 0, 0];
        let first = Reach::of(&params(1, 2, 10, 6), 3);
        let (columns, rows) = first.extent();
        assert_eq!((columns, rows), (130, 8));
        let area = SplitArea { shift: 0, part: 0, x0: first.x0, y0: first.y0, columns, rows };
        assert_eq!(area.place_of(&first, 4), Some(PartPlace::within(4, (130, 8), (0, 0))));
        // One pixel inside on every side: one row and one column on.
        let inner = Reach::of(&params(2, 3, 8, 4), 3);
        let place = area.place_of(&inner, 4).expect("covered");
        assert_eq!((place.base, place.columns, place.row, place.low), (4 * 130 + 1, 130, 4 * 130, 8 * 4 * 130 * 16));
        // Its 126 unused columns may run past the area; its used ones may not, nor its rows.
        assert!(area.place_of(&Reach::of(&params(1, 2, 128, 6), 3), 4).is_some());
        for (x0, y0, w, h) in [(2, 2, 128, 6), (1, 1, 10, 6), (1, 2, 10, 7), (0, 2, 10, 6), (1, 2, 129, 6)] {
            assert_eq!(area.place_of(&Reach::of(&params(x0, y0, w, h), 3), 4), None, "{x0} {y0} {w} {h}");
        }
    }
}
