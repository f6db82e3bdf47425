//! The enlarging tail of a network, run in strips on a device.
//!
//! An upscaling network such as realesrgan-x4plus works at the input's scale for almost all
//! of its layers and enlarges only at the end; its last blobs, 64 channels at 4x, are 16 times
//! the size of its trunk's. When one tile's blobs had to fit the adapter's largest binding
//! (2 GiB on an H200), those last blobs decided the tile: 512 input pixels where the trunk
//! alone would have taken the whole image, and with x4plus's halo of 349 px the trunk then
//! computed 2.9 times the pixels of a 1000x1000 image.
//!
//! So, where the graph allows it, a tile runs its trunk over the whole window up to the *cut*
//! (a blob at the input's scale that is the only one alive at that point), then the tail in
//! horizontal strips of the cut blob: each strip is the cut's rows it owns plus the tail's
//! reach above and below, run forward with the same window bookkeeping as a whole tile (a
//! blob's window keeps only what its inputs determine), and the rows of the strips' outputs
//! are gathered into the tile's output. Every value is computed by the same integer sums as
//! before, so the bytes do not change; only how much of the tail is alive at once does.

use super::graph::{Graph, Op};
use super::reference::{self, Engine, SeScales, Tensor};

/// Largest tail blob (bytes, 32-bit samples) a strip is cut for, unless one binding is
/// smaller: large enough that a strip's dispatches stay few, small enough to stay far from any
/// adapter's binding limit.
pub(crate) const TAIL_BLOB_BYTES: u64 = 256 << 20;

/// Fewest cut rows a strip owns.
const MIN_ROWS: usize = 8;

/// Where a graph's tail starts, and how far it reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TailCut {
    /// The blob the tail starts from (at the input's scale).
    pub cut: usize,
    /// The first node of the tail.
    pub first: usize,
    /// Rows of the cut blob a strip reads past the rows it owns, on each side (the tail's
    /// receptive radius, rounded up, plus one).
    pub reach: usize,
}

impl TailCut {
    /// The cut rows each strip reads, top to bottom, for a cut blob of `height` rows and strips
    /// owning `rows` rows: the owned rows plus the reach on both sides, within the blob. CPU
    /// and GPU cut their strips here.
    pub(crate) fn strips(&self, height: usize, rows: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let reach = self.reach;
        (0..height).step_by(rows.max(1)).map(move |a| (a.saturating_sub(reach), (a + rows + reach).min(height)))
    }
}

impl Graph {
    /// The graph's tail cut: the last point where one blob at the input's scale is the only
    /// one alive and every later blob is larger. None for graphs with SE blocks (they average
    /// over whole windows) and for graphs that do not enlarge after such a point.
    pub(crate) fn tail_cut(&self) -> Option<TailCut> {
        if self.has_se() {
            return None;
        }
        let last = self.last_uses();
        let mut live: Vec<usize> = Vec::new();
        let mut found = None;
        for (n, node) in self.nodes.iter().enumerate() {
            live.retain(|&b| last[b] > n);
            live.extend(node.outputs.iter().copied().filter(|&b| last[b] > n));
            if let [b] = live[..] {
                let (_, num, den) = self.sizes[b];
                if b != self.input && num == den && !matches!(node.op, Op::Input) {
                    found = Some((b, n + 1));
                }
            }
        }
        let (cut, first) = found?;
        let enlarges = |b: usize| self.sizes[b].1 > self.sizes[b].2;
        if first >= self.nodes.len() || !self.nodes[first..].iter().all(|n| n.outputs.iter().all(|&b| enlarges(b))) {
            return None;
        }
        let reach = (self.radii[self.output] - self.radii[cut]).max(0.0).ceil() as usize + 1;
        Some(TailCut { cut, first, reach })
    }

    /// Whether blob `b` is made by a node of the tail.
    pub(crate) fn made_in_tail(&self, b: usize, t: &TailCut) -> bool {
        self.nodes[t.first..].iter().any(|n| n.outputs.contains(&b))
    }

    /// Per row of a `width`-column cut blob: the values of the tail's largest blob, and the
    /// most values of the tail alive at once (inputs and outputs of a node together).
    pub(crate) fn tail_row_values(&self, t: &TailCut, width: usize) -> (u64, u64) {
        let per_row = |b: usize| {
            let (c, num, den) = self.sizes[b];
            let side = |len: usize| (len * num).div_ceil(den) as u64;
            c as u64 * side(width) * side(1)
        };
        let last = self.last_uses();
        let (mut live, mut peak, mut largest) = (per_row(t.cut), 0u64, 0u64);
        for (n, node) in self.nodes.iter().enumerate().skip(t.first) {
            let made: u64 = node.outputs.iter().map(|&b| per_row(b)).sum();
            largest = largest.max(node.outputs.iter().map(|&b| per_row(b)).max().unwrap_or(0));
            live += made;
            peak = peak.max(live);
            live -= node.inputs.iter().filter(|&&b| last[b] == n).map(|&b| per_row(b)).sum::<u64>();
        }
        (largest, peak)
    }

    /// Cut rows a strip owns for a `width x height` cut blob, so that the tail's largest blob
    /// over a strip (its rows plus the reach on both sides) stays within `max_blob` bytes of
    /// 32-bit samples, or [`MIN_ROWS`] if none do; no more than the cut's rows.
    pub(crate) fn strip_rows(&self, t: &TailCut, (width, height): (usize, usize), max_blob: u64) -> usize {
        let (largest, _) = self.tail_row_values(t, width);
        let rows = (max_blob / 4 / largest.max(1)).min(usize::MAX as u64) as usize;
        rows.saturating_sub(2 * t.reach).max(MIN_ROWS).min(height.max(1))
    }

    /// The values of the tail's largest blob and of its live blobs for one strip of `rows`
    /// owned rows over a `width`-column cut blob (with the reach on both sides).
    pub(crate) fn strip_values(&self, t: &TailCut, width: usize, rows: usize) -> (u64, u64) {
        let (largest, peak) = self.tail_row_values(t, width);
        let r = (rows + 2 * t.reach) as u64;
        (largest * r, peak * r)
    }
}

/// Runs `g` on `input` to its output as [`reference::run_until`] does (the same values), the
/// tail, where the graph has one, in strips cut for a largest tail blob of `max_blob` bytes.
pub(crate) fn run_in_strips<T: Copy + Default, E: Engine<T>>(
    g: &Graph,
    engine: &E,
    input: Tensor<T>,
    scales: &SeScales,
    max_blob: u64,
) -> Result<Tensor<T>, String> {
    let none = &mut |_: usize, _: &Tensor<T>| {};
    let Some(t) = g.tail_cut() else { return reference::run_until(g, engine, input, scales, g.output, none) };
    let cut = reference::run_until(g, engine, input, scales, t.cut, none)?;
    let rows = g.strip_rows(&t, (cut.w, cut.h), max_blob);
    if rows >= cut.h {
        // One strip: the cut itself.
        let mut blobs = vec![None; g.blobs];
        blobs[t.cut] = Some(cut);
        return reference::run_nodes(g, engine, None, scales, (blobs, t.first), g.output, none);
    }
    let mut pieces: Vec<Tensor<T>> = Vec::with_capacity(cut.h.div_ceil(rows));
    for (r0, r1) in t.strips(cut.h, rows) {
        let mut blobs = vec![None; g.blobs];
        blobs[t.cut] = Some(rows_of(&cut, r0, r1));
        let out = reference::run_nodes(g, engine, None, scales, (blobs, t.first), g.output, none)?;
        // Only the rows past the last piece's are kept.
        let next = pieces.last().map_or(out.y0, |p| p.y0 + p.h);
        if out.y0 > next {
            return Err(format!("tail strip rows {}.. leave a gap after row {next}", out.y0));
        }
        if out.y0 + out.h > next {
            pieces.push(rows_of(&out, next - out.y0, out.h));
        }
    }
    join_rows(pieces)
}

/// Rows `r0..r1` of `x`'s window (all its columns and channels).
fn rows_of<T: Copy + Default>(x: &Tensor<T>, r0: usize, r1: usize) -> Tensor<T> {
    let (h, plane) = (r1 - r0, x.h * x.w);
    let mut data = Vec::with_capacity(x.c * h * x.w);
    for c in 0..x.c {
        data.extend_from_slice(&x.data[c * plane + r0 * x.w..c * plane + r1 * x.w]);
    }
    Tensor { h, y0: x.y0 + r0, data, ..*x }
}

/// Windows of consecutive rows, top to bottom, as one.
fn join_rows<T: Copy + Default>(pieces: Vec<Tensor<T>>) -> Result<Tensor<T>, String> {
    let first = pieces.first().ok_or("a tail without strips")?;
    let h = pieces.iter().map(|p| p.h).sum();
    let mut data = Vec::with_capacity(first.c * h * first.w);
    for c in 0..first.c {
        for p in &pieces {
            if (p.c, p.w, p.x0) != (first.c, first.w, first.x0) {
                return Err("tail strips of different columns".into());
            }
            data.extend_from_slice(&p.data[c * p.h * p.w..(c + 1) * p.h * p.w]);
        }
    }
    Ok(Tensor { h, data, ..*first })
}

#[cfg(test)]
mod tests {
    use crate::neural::Model;

    #[test]
    fn the_photo_model_has_its_deconvolution_as_tail() {
        let m = Model::builtin("photo").unwrap();
        let g = &m.graph;
        let t = g.tail_cut().expect("upconv_7 enlarges only in its last layer");
        assert_eq!(t.first, g.nodes.len() - 1, "the tail is the last node");
        assert!(t.reach >= 2 && t.reach <= 4, "{t:?}");
        let (largest, peak) = g.tail_row_values(&t, 100);
        // 3 channels at 2x: 3 · 200 · 2 values per cut row; the cut (32 channels) is alive too.
        assert_eq!(largest, 3 * 200 * 2);
        assert!(peak >= largest + 32 * 100, "{peak}");
        let rows = g.strip_rows(&t, (100, 1000), 1 << 20);
        assert!(g.strip_values(&t, 100, rows).0 * 4 <= 1 << 20);
        assert_eq!(g.strip_rows(&t, (100, 1000), 16), 8, "never fewer than eight rows");
        assert_eq!(g.strip_rows(&t, (100, 50), 1 << 30), 50, "never more than the cut's rows");
        let r = t.reach;
        let strips: Vec<_> = t.strips(20, 8).collect();
        assert_eq!(strips, [(0, 8 + r), (8 - r, 16 + r), (16 - r, 20)], "owned rows plus the reach, within the cut");
    }

    /// The photo model on a window away from the image's edges and on one at its corner, its
    /// tail in strips of eight cut rows (a 1 KiB blob bound): the float reference's values and
    /// the exact engine's integers are those of the whole run.
    #[test]
    fn strips_give_the_whole_runs_values() {
        use crate::neural::reference::{self, SeScales};
        let m = Model::builtin("photo").unwrap();
        let (g, ex) = (&m.graph, m.exact().unwrap());
        for window in [[(20, 61), (10, 73)], [(0, 45), (0, 40)]] {
            let value = |x: usize, y: usize, c: usize| ((x * 7 + y * 3 + c) % 11) as u32 * 25;
            let input = m.padded(90, 80, window, |x, y, c| value(x, y, c) as f32 / 255.0);
            let none = SeScales::new();
            let whole = reference::run_until(g, &reference::Float, input.clone(), &none, g.output, &mut |_, _| {});
            let strips = super::run_in_strips(g, &reference::Float, input.clone(), &none, 1 << 10);
            assert_eq!(strips.unwrap(), whole.unwrap(), "float, {window:?}");
            let q = m.padded(90, 80, window, |x, y, c| crate::neural::stage::to_fixed(value(x, y, c), 255) as i16);
            let whole = reference::run_until(g, ex.as_ref(), q.clone(), &none, g.output, &mut |_, _| {});
            let strips = super::run_in_strips(g, ex.as_ref(), q, &none, 1 << 10);
            assert_eq!(strips.unwrap(), whole.unwrap(), "exact, {window:?}");
        }
    }

    #[test]
    fn a_network_with_a_residual_input_has_no_tail() {
        // animevideov3 adds the enlarged input to its last layer: the input is alive to the
        // end, so no single blob ever is.
        let m = Model::builtin("anime").unwrap();
        assert_eq!(m.graph.tail_cut(), None);
    }
}
