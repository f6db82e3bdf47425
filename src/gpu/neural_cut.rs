//! How the tensor-core convolutions (`neural_tensor.rs`) lay out their work and their
//! weights: the cut of a layer among subgroups and workgroups ([`TensorTiling`], [`Cut`]) — a
//! choice of speed, the bytes never change — and the layout of the weights' matrices
//! ([`weights_by_columns`]).

use crate::neural::stage::SPLIT_RUN as RUN;

/// How a subgroup's share of a layer is cut: 16-pixel blocks (over `rows` output rows) and
/// 16-channel blocks. The default (four pixel blocks, one in each of four rows, of one channel
/// block) is what the H200 ran fastest; benchmarks may set `GIGASCALE_GPU_TENSOR_CUT` to try
/// others — the bytes never change. Read once, when the device opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TensorTiling {
    pub mb: usize,
    pub nb: usize,
    /// Output rows the subgroup's pixel blocks span (`mb / rows` blocks a row): a loaded
    /// input block serves every row it is a tap of.
    pub rows: usize,
}

impl TensorTiling {
    /// Four pixel blocks, one in each of four rows, of one channel block.
    pub(crate) const DEFAULT: TensorTiling = TensorTiling { mb: 4, nb: 1, rows: 4 };

    /// The default, or `GIGASCALE_GPU_TENSOR_CUT` (`MBxNB` or `MBxNBxROWS`) when it is
    /// well-formed.
    pub(super) fn from_env() -> TensorTiling {
        let env = std::env::var("GIGASCALE_GPU_TENSOR_CUT").ok();
        let n: Vec<usize> = env.iter().flat_map(|v| v.split('x').filter_map(|t| t.parse().ok())).collect();
        let tiling = |mb, nb, rows| TensorTiling { mb, nb, rows };
        match n[..] {
            [mb @ (1 | 2 | 4), nb @ (1 | 2 | 4)] if mb * nb <= 4 => tiling(mb, nb, 1),
            [mb @ (1 | 2 | 4), nb @ (1 | 2 | 4), rows @ (1 | 2 | 4)] if mb * nb <= 4 && mb % rows == 0 => {
                tiling(mb, nb, rows)
            }
            _ => TensorTiling::DEFAULT,
        }
    }
}

/// Output rows of a subgroup's blocks in the `lower` form at the default cut: its two
/// accumulators a block leave room for six blocks (12 matrices, as the halves' three
/// accumulators over four blocks), so each input row loaded serves more output rows.
/// `GIGASCALE_GPU_LOWER_ROWS` (4, 5, 6 or 8; a benchmark's knob, read once) sets another: those
/// gave the default's bytes on an H100 (0.336 s at six, 0.342 s at five, 0.349 s at eight,
/// 0.366 s at four; docs/benchmarks.md 2026-12-06 (13) and (16)). Seven rows gave other bytes
/// for realesrgan-x4plus there (not understood: the shader differs from six rows' only in its
/// blocks' count), so the knob does not take seven.
pub(crate) fn lower_rows() -> usize {
    static ROWS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *ROWS.get_or_init(|| {
        let asked = std::env::var("GIGASCALE_GPU_LOWER_ROWS").ok().and_then(|v| v.parse().ok());
        asked.filter(|r| [4, 5, 6, 8].contains(r)).unwrap_or(6)
    })
}

/// Output rows of a subgroup's blocks in the halves' form of a network with 24-bit activations
/// (its upper parts) at the default cut: three accumulators a block, five blocks (15 matrices;
/// 7 input rows loaded for 5 output rows where four took 6 for 4: realesrgan-x4plus's upper
/// parts' convolutions 0.548 s against 0.585 s at four on an H100, docs/benchmarks.md
/// 2026-12-06 (14); 0.694 s at six, 18 matrices: likely more than the registers hold, (16)).
/// `GIGASCALE_GPU_UPPER_ROWS` (3 to 6; a benchmark's knob, read once) sets another; the bytes
/// never change. 16-bit networks keep the default's four.
pub(crate) fn upper_rows() -> usize {
    static ROWS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *ROWS.get_or_init(|| {
        let asked = std::env::var("GIGASCALE_GPU_UPPER_ROWS").ok().and_then(|v| v.parse().ok());
        asked.filter(|r| (3..=6).contains(r)).unwrap_or(5)
    })
}

impl TensorTiling {
    /// The tiling of a convolution's form at the default cut — of a network with 24-bit
    /// activations (`wide`), of its lower parts read whole (`lower`): a single column of
    /// [`lower_rows`] blocks for the lower parts, of [`upper_rows`] for the upper parts' halves,
    /// the default itself at 16 bits; any other cut as it is.
    pub(crate) fn form(self, wide: bool, lower: bool) -> TensorTiling {
        let rows = match (wide, lower) {
            (_, true) => lower_rows(),
            (true, false) => upper_rows(),
            (false, false) => return self,
        };
        match self == TensorTiling::DEFAULT {
            true => TensorTiling { mb: rows, nb: 1, rows },
            false => self,
        }
    }
}

/// How a layer's work is cut: 16-pixel blocks and 16-channel blocks per subgroup, and output
/// channels per workgroup (of four subgroups).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cut {
    pub mb: usize,
    pub nb: usize,
    pub bn: usize,
    pub rows: usize,
}

/// Output channels of a workgroup for a layer of `cout` outputs: 16 for up to 16 (a network's
/// last convolution, three outputs, computes 16 where it computed 32), 32 for up to 32, else 64.
pub(crate) fn workgroup_channels(cout: usize) -> usize {
    match cout {
        0..=16 => 16,
        17..=32 => 32,
        _ => 64,
    }
}

impl Cut {
    /// The cut for a layer of `cout` outputs: tiling `t`, where it fits this layer's
    /// workgroup, else the default.
    pub(crate) fn of(cout: usize, t: TensorTiling) -> Cut {
        let bn = workgroup_channels(cout);
        let fits = |t: TensorTiling| bn >= 16 * t.nb && bn / (16 * t.nb) <= 4;
        let cut = |t: TensorTiling| Cut { mb: t.mb, nb: t.nb, bn, rows: t.rows };
        Some(cut(t)).filter(|c| fits(t) && RUN.is_multiple_of(c.pixels())).unwrap_or(cut(TensorTiling::DEFAULT))
    }

    /// Output pixels of a row of a workgroup (`cols` 16-pixel blocks a subgroup's row).
    pub(crate) fn pixels(&self) -> usize {
        16 * self.cols() * (4 / (self.bn / (16 * self.nb)))
    }
    /// 16-pixel blocks of a row of a subgroup.
    pub(crate) fn cols(&self) -> usize {
        self.mb / self.rows
    }
}

/// Output pixels of a row, output channels and output rows of one workgroup for a layer of
/// `cout` outputs.
pub(crate) fn block(cout: usize, t: TensorTiling) -> (usize, usize, usize) {
    let c = Cut::of(cout, t);
    (c.pixels(), c.bn, c.rows)
}

/// Whether the weights' matrices are stored by columns and loaded column-major — the layout
/// in which NVIDIA's matrix instructions take their second operand — rather than by rows.
/// `GIGASCALE_GPU_WEIGHT_ROWS=1` (a benchmark's knob, read once) keeps rows; the bytes never
/// change.
pub(crate) fn weights_by_columns() -> bool {
    static COLUMNS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *COLUMNS.get_or_init(|| std::env::var("GIGASCALE_GPU_WEIGHT_ROWS").as_deref() != Ok("1"))
}
