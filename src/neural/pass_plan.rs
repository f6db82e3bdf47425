//! How large a pass of the network may make its tiles: the bytes a tile needs on the host (its
//! live tensors, panels, weights, tables, bands and rows) and on a device (its blobs as 32-bit
//! words, weights, read-back), and the plan that picks the largest tile edge within both
//! budgets and the adapter's buffer limits. [`Span`] says which windows a pass's tiles read,
//! and the graph's footprint methods how many values each blob holds for one.

use super::graph::{Graph, Op};
use super::reference::Tensor;
use super::Model;
use crate::error::{Error, Result};
use crate::kernel::Filter;
use crate::limits::format_size_up;
use crate::pixel::{Channels, Layout};
use crate::resample::Scratch;

/// Tile edges (in input pixels) tried, largest first. Larger tiles recompute less halo (a
/// 1024 px tile of animevideov3 computes 12 % more than its own pixels, a 2048 px one 6 %).
pub(super) const TILES: [usize; 14] = [2048, 1536, 1024, 768, 512, 384, 256, 192, 128, 96, 64, 48, 32, 16];

/// A real input window of a pass with tiles of `tile` input pixels over a `w x h` image, as a
/// tensor without data: per axis, the second tile's where there are three or more (an
/// interior window, whose blobs are the largest), else the first's. No tile's window covers
/// more than the planner's bound, and neither does this one (a window of the whole padded
/// image, which no tile of a smaller image reads, would make the late blobs of an upscaling
/// network as large as the whole image at the output's scale).
pub(crate) fn largest_window(model: &Model, (w, h): (usize, usize), tile: usize) -> Tensor<i16> {
    let s = model.graph.scale;
    let n = tile * s;
    let pick = |len: usize| {
        let i = if (len * s).div_ceil(n) >= 3 { 1 } else { 0 };
        (i * n, n.min(len * s - i * n))
    };
    let ((x, tw), (y, th)) = (pick(w), pick(h));
    let [(x0, x1), (y0, y1)] = model.input_window(w, h, (x, y, tw, th));
    let (gw, gh) = (model.border.padded(w), model.border.padded(h));
    Tensor { c: 3, h: y1 - y0, w: x1 - x0, x0, y0, gw, gh, data: Vec::new() }
}

/// The input windows of tiles of `tile` pixels (no larger than the image) over a `w x h`
/// image: the tile plus the reach of the model's halo (and one pixel for a tile that does not
/// start on an input pixel) on both sides, within the image and its border.
pub(crate) fn tile_window(model: &Model, (w, h): (u32, u32), tile: usize) -> Span {
    let p = model.border.width();
    let padded = (model.border.padded(w as usize), model.border.padded(h as usize));
    let pads = model.graph.pads();
    let tile = tile.min(w.max(h) as usize);
    // As `Model::input_window`: tile `i` reads `[i·tile + p - r, (i + 1)·tile + p + r)` of the
    // padded image, clipped to it. The last tile that meets the first edge is the likeliest
    // to meet the second.
    let r = model.graph.halo + 1;
    let meets_both = |len: usize| pads && r >= p && (((r - p) / tile + 1) * tile).min(len) + p + r >= len + 2 * p;
    let whole = (meets_both(w as usize), meets_both(h as usize));
    // With SE blocks a tile at the image's edge reads the whole border: the windows reach
    // the larger of the two.
    let reach = if model.graph.has_se() { r.max(p) + 1 } else { r + 1 };
    Span { tile, reach, border: if pads { p } else { 0 }, padded, whole }
}

/// The size of one pass: its tile edge (input pixels) and planned peak memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PassPlan {
    /// Tile edge in input pixels (a multiple of 16).
    pub tile: usize,
    /// Planned peak bytes of the pass.
    pub bytes: u64,
}

/// Bytes a pass of `model` over a `w x h` image of `layout` needs with tiles of `tile` input
/// pixels on `threads` threads: the live tensors of one tile (24-bit ones in 32 bits, with a
/// convolution's input split in two 16-bit halves beside them), the layers' panels, the integer
/// weights and function tables, the output band, the resident input rows, the alpha plane's
/// tiles, and a tile's samples on their way (with a network device: the staging copy of its
/// input window and two tiles' samples).
pub(crate) fn pass_bytes(model: &Model, (w, h): (u32, u32), layout: Layout, tile: usize, threads: usize) -> u64 {
    let g = &model.graph;
    // A tile never reads more than the image (plus its border).
    let span = tile_window(model, (w, h), tile);
    let (largest, peak) = split_values(g, span, super::tail::TAIL_BLOB_BYTES);
    let tensors = if model.wide { peak * 4 + largest * 4 } else { peak * 2 };
    let panels = threads as u64 * super::kernels::panel_bytes(g);
    tensors + panels + pass_io_bytes(model, (w, h), layout, tile)
}

/// The part of [`pass_bytes`] a pass holds wherever its network runs: the integer weights and
/// function tables, the output band, the resident input rows, the alpha plane's tiles, and a
/// tile's samples on their way (two tiles' samples and the staging copy of an input window).
pub(crate) fn pass_io_bytes(model: &Model, (w, h): (u32, u32), layout: Layout, tile: usize) -> u64 {
    let (g, s) = (&model.graph, model.graph.scale as u64);
    let span = tile_window(model, (w, h), tile);
    let ((_, wh), tile) = (span.input(), span.tile as u64);
    let weights = g.macs_per_pixel * 12 + (1 << 20) + g.tables() * super::elementwise::TABLE_LEN as u64 * 4;
    let bpp = layout.bytes_per_pixel() as u64;
    let band = tile * s * w as u64 * s * bpp;
    let rows = (wh as u64 + tile).min(h as u64 + 1) * w as u64 * bpp;
    let alpha = match layout.channels {
        Channels::GrayAlpha | Channels::Rgba => {
            let t = tile * s;
            let geom = crate::plan::Geometry {
                in_size: (w, h),
                out_size: (w * s as u32, h * s as u32),
                tile: t as u32,
                layout: Layout::new(Channels::Gray, layout.depth),
                filter: Filter::Bicubic,
                intermediate: crate::Intermediate::Exact,
            };
            t * t * 2 + Scratch::bytes_for(&geom) + geom.coefficient_bytes()
        }
        _ => 0,
    };
    // A tile's samples before they are placed (two, while one is on a device), and the
    // staging copy of the input window on its way to a device (16-bit samples).
    let samples = 2 * (tile * s).pow(2) * bpp + span.upload_bytes();
    weights + band + rows + alpha + samples
}

/// Device bytes the GPU needs for a tile of `tile` input pixels: the live blobs (32-bit
/// samples, buffers rounded up to 1 MiB; at 24 bits with a convolution's input parts and two
/// raw sums), the input window as uploaded (16-bit samples), the weights and function tables,
/// the read-back of the tile's samples; with `split` (the tensor-core convolutions) the splits
/// of their inputs the live blobs keep ([`kept_split_bytes`]; at 24 bits of both parts).
pub(crate) fn device_bytes(model: &Model, (w, h): (u32, u32), layout: Layout, tile: usize, split: bool) -> u64 {
    let (g, s) = (&model.graph, model.graph.scale as u64);
    let span = tile_window(model, (w, h), tile);
    let (largest, peak) = split_values(g, span, super::tail::TAIL_BLOB_BYTES);
    let peak = (peak + if model.wide { 4 * largest } else { 0 }) * 4;
    // Buffers over 1 MiB are rounded up to whole MiB (for reuse).
    let blobs = peak + if peak > 1 << 20 { g.sizes.len() as u64 * (1 << 20) } else { 0 };
    let weights = g.macs_per_pixel * 4 * 2 + g.tables() * super::elementwise::TABLE_LEN as u64 * 4;
    let split = if split { kept_split_bytes(g, span, super::tail::TAIL_BLOB_BYTES, model.wide) } else { 0 };
    blobs + span.upload_bytes() + weights + split + (span.tile as u64 * s).pow(2) * layout.bytes_per_pixel() as u64
}

/// Columns of a split convolution input (the tensor-core shaders') are whole runs of this many
/// (a workgroup's pixels divide it), plus the kernel's reach.
pub(crate) const SPLIT_RUN: usize = 128;

/// The split input of a `k x k` convolution over `cin` channels whose output window is
/// `out_w x out_h`: columns per row, rows (the output's plus the kernel's reach), and
/// 16-channel slices.
#[cfg_attr(not(feature = "gpu"), allow(dead_code))]
pub(crate) fn split_geometry(out_w: usize, out_h: usize, cin: usize, k: usize) -> (usize, usize, usize) {
    (out_w.div_ceil(SPLIT_RUN) * SPLIT_RUN + k - 1, out_h + k - 1, cin.div_ceil(16))
}

/// Bytes of that split input: a high and a low half float per sample, and room for a
/// convolution's unused columns past the end when it reads from a larger split (at most a run).
#[cfg_attr(not(feature = "gpu"), allow(dead_code))]
pub(crate) fn split_bytes(out_w: usize, out_h: usize, cin: usize, k: usize) -> u64 {
    let (wp, rows, slices) = split_geometry(out_w, out_h, cin, k);
    ((wp * rows * slices + SPLIT_RUN) * 16 * 2 * 2) as u64
}

/// Bytes of the largest convolution input as the tensor-core shaders read it
/// ([`split_bytes`]), as [`split_bounds`] bounds each.
pub(crate) fn split_input_bytes(g: &Graph, span: Span, cap: u64) -> u64 {
    let bounds = split_bounds(g, span, cap);
    let convs = g.nodes.iter().filter(|n| matches!(n.op, Op::Conv(_)));
    convs.map(|n| bounds[n.inputs[0]]).max().unwrap_or(0)
}

/// Bytes of the tensor-core convolutions' splits alive at once: each blob keeps the split a
/// convolution last read it through while it lives (`gpu/neural_conv.rs`), so at most one per
/// live blob, each within its [`split_bounds`] (a buffer of over 1 MiB rounded up to whole
/// MiB, as the device's pool rounds it); with 24-bit activations (`wide`) the split of its
/// upper parts and, beside it, of its lower parts whole (half the bytes).
pub(crate) fn kept_split_bytes(g: &Graph, span: Span, cap: u64, wide: bool) -> u64 {
    let round = |b: u64| b.next_multiple_of(if b > 1 << 20 { 1 << 20 } else { 16 });
    let kept = |b: u64| round(b) + if wide { round(b / 2) } else { 0 };
    let bounds: Vec<u64> = split_bounds(g, span, cap).into_iter().map(kept).collect();
    let last = g.last_uses();
    let (mut live, mut peak) = (0u64, 0u64);
    for (n, node) in g.nodes.iter().enumerate() {
        live += node.outputs.iter().map(|&b| bounds[b]).sum::<u64>();
        peak = peak.max(live);
        live -= node.inputs.iter().filter(|&&b| last[b] == n).map(|&b| bounds[b]).sum::<u64>();
    }
    peak
}

/// Per blob, an upper bound on the bytes of a split of it as a tensor-core convolution reads
/// it ([`split_bytes`]; an output window is at most its input's, so `+ SPLIT_RUN + 4` columns
/// and `+ 8` rows bound it for kernels up to 5 and deconvolutions' phases): the trunk's blobs
/// over the tile, the tail's and the blob it starts from over one strip (cut for a largest tail
/// blob of `cap` bytes, as [`split_values`]).
fn split_bounds(g: &Graph, span: Span, cap: u64) -> Vec<u64> {
    let run = SPLIT_RUN as u64 + 4;
    let bytes = |c: usize, (w, h): (u64, u64)| 4 * c.div_ceil(16) as u64 * 16 * (w + run) * (h + 8);
    let tail = g.tail_cut().map(|t| {
        let (w, h) = g.blob_axes(t.cut, span);
        let rows = g.strip_rows(&t, (w as usize, h as usize), cap);
        (t, w, (rows + 2 * t.reach) as u64)
    });
    (0..g.blobs)
        .map(|b| {
            let (c, num, den) = g.sizes[b];
            match &tail {
                // The tail's convolutions read the cut blob, and their own, one strip at a time.
                Some((t, w, rows)) if b == t.cut || g.made_in_tail(b, t) => {
                    let side = |len: u64| (len * num as u64).div_ceil(den as u64);
                    bytes(c, (side(*w), side(*rows)))
                }
                _ => bytes(c, g.blob_axes(b, span)),
            }
        })
        .collect()
}

/// What a network device can hold: its largest buffer (the smaller of the adapter's largest
/// buffer and largest storage binding) and the device memory the pass may use in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeviceLimits {
    pub max_buffer: u64,
    pub memory: u64,
    /// Whether convolutions read their inputs split into halves (the tensor-core shaders).
    pub split: bool,
    /// Whether the device's memory is the host's (a software adapter: it counts in `--max-memory`).
    pub host: bool,
}

impl DeviceLimits {
    /// A device's limits: its largest buffer, `--gpu-memory` (none: no bound of ours).
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn of(max_buffer: u64, gpu_memory: Option<u64>, split: bool, host: bool) -> DeviceLimits {
        DeviceLimits { max_buffer, memory: gpu_memory.unwrap_or(u64::MAX), split, host }
    }
}

/// The largest single device buffer a tile of `tile` input pixels needs: its largest blob
/// (32-bit samples, pooled buffers rounded up to 1 MiB; a tail's strips cut for the smaller of
/// `max_buffer` and [`TAIL_BLOB_BYTES`](super::tail::TAIL_BLOB_BYTES)), with `split` the largest
/// split convolution input, or the read-back of its samples.
pub(crate) fn device_largest_buffer(
    model: &Model,
    (w, h): (u32, u32),
    layout: Layout,
    tile: usize,
    (max_buffer, split): (u64, bool),
) -> u64 {
    let (g, s) = (&model.graph, model.graph.scale as u64);
    let span = tile_window(model, (w, h), tile);
    let cap = max_buffer.min(super::tail::TAIL_BLOB_BYTES);
    let blob = (split_values(g, span, cap).0 * 4).next_multiple_of(1 << 20);
    let split = if split { split_input_bytes(g, span, cap).next_multiple_of(1 << 20) } else { 0 };
    blob.max(split).max((span.tile as u64 * s).pow(2) * layout.bytes_per_pixel() as u64)
}

/// The values of a tile's largest blob, and of the blobs it holds at once, on the host or a
/// device: with a tail that runs in strips (`tail.rs`, strips cut for a largest tail blob of
/// `cap` bytes of 32-bit samples), the trunk's blobs, or the cut blob, one strip's tail, and
/// the strips' outputs and the tile's output (both the size of the output, as upper bounds)
/// together.
fn split_values(g: &Graph, span: Span, cap: u64) -> (u64, u64) {
    let Some(t) = g.tail_cut() else { return (g.largest_blob(span), g.peak_values(span)) };
    let trunk = (0..g.blobs).filter(|&b| b == t.cut || !g.made_in_tail(b, &t));
    let largest = trunk.map(|b| g.blob_values(b, span)).max().unwrap_or(0);
    let (width, height) = g.blob_axes(t.cut, span);
    let (width, height) = (width as usize, height as usize);
    let (strip_largest, strip_peak) = g.strip_values(&t, width, g.strip_rows(&t, (width, height), cap));
    let out = g.blob_values(g.output, span);
    let tail = g.blob_values(t.cut, span) + strip_peak + 2 * out;
    (largest.max(strip_largest).max(out), g.peak_values_before(span, t.first).max(tail))
}

/// How many times a pass with tiles of `tile` input pixels computes each pixel of the padded
/// image at the network's input: the windows of [`tile_window`] overlap by twice the reach.
pub(crate) fn recompute_factor(model: &Model, (w, h): (u32, u32), tile: usize) -> f64 {
    let (span, p) = (tile_window(model, (w, h), tile), model.border.width());
    // As `Model::input_window`: tile `i` reads `[i·tile + p - r, (i + 1)·tile + p + r)` of the
    // padded image.
    let axis = |len: usize, padded: usize| {
        let total: usize = (0..len.div_ceil(span.tile).max(1))
            .map(|i| {
                let start = (i * span.tile + p).saturating_sub(span.reach);
                ((i + 1) * span.tile + p + span.reach).min(padded).saturating_sub(start)
            })
            .sum();
        total as f64 / padded.max(1) as f64
    };
    axis(w as usize, span.padded.0) * axis(h as usize, span.padded.1)
}

/// A warning when a pass's tiles compute the image's pixels more than three times over (a
/// wide halo in small tiles), naming the `--max-memory` of the smallest tile that computes
/// them at most 1.5 times (on `threads` threads).
pub(crate) fn recompute_warning(
    model: &Model,
    size: (u32, u32),
    layout: Layout,
    tile: usize,
    threads: usize,
) -> Option<String> {
    let factor = recompute_factor(model, size, tile);
    if factor <= 3.0 {
        return None;
    }
    let (better, times) = TILES
        .into_iter()
        .rev()
        .map(|t| (t, recompute_factor(model, size, t)))
        .find(|&(_, f)| f <= 1.5)
        .unwrap_or_else(|| (TILES[0], recompute_factor(model, size, TILES[0])));
    let need = format_size_up(pass_bytes(model, size, layout, better, threads) + crate::budget::SLACK);
    Some(format!(
        "model {}: tiles of {tile} px with its {} px halo compute each pixel {factor:.1} times over; \
         tiles of {better} px would compute them {times:.1} times and need --max-memory {need} (on a GPU, also \
         the device memory to hold them)",
        model.name, model.graph.halo
    ))
}

/// The largest of [`TILES`] whose host `bytes` fit `max_memory` (less the allocator's slack) and
/// whose device bytes fit `device_budget` (`--gpu-memory`, when given), with those bytes.
pub(super) fn largest_tile(
    model: &Model,
    size: (u32, u32),
    layout: Layout,
    (max_memory, device_budget): (u64, Option<u64>),
    bytes: impl Fn(usize) -> u64,
) -> Option<PassPlan> {
    let budget = max_memory.saturating_sub(crate::budget::SLACK);
    let device_fits = |tile| device_budget.is_none_or(|d| device_bytes(model, size, layout, tile, false) <= d);
    TILES
        .into_iter()
        .map(|tile| PassPlan { tile, bytes: bytes(tile) })
        .find(|p| p.bytes <= budget && device_fits(p.tile))
}

/// The largest tile whose pass fits in `max_memory` (less the allocator's slack) and on the device
/// in `device_budget` (`--gpu-memory`, when given); the refusal names the least a pass needs.
pub(crate) fn plan_pass(
    model: &Model,
    size: (u32, u32),
    layout: Layout,
    threads: usize,
    (max_memory, device_budget): (u64, Option<u64>),
) -> Result<PassPlan> {
    let host_bytes = |tile| pass_bytes(model, size, layout, tile, threads);
    if let Some(plan) = largest_tile(model, size, layout, (max_memory, device_budget), host_bytes) {
        return Ok(plan);
    }
    let what = |on: &str| format!("the {} model's pass{on} (tiles of 16 px, {threads} threads)", model.name);
    let gpu_least = device_bytes(model, size, layout, 16, false);
    if let Some(d) = device_budget.filter(|&d| gpu_least > d) {
        // The hint holds on any adapter: one with tensor cores also keeps its inputs split.
        let enough = gpu_least.max(device_bytes(model, size, layout, 16, true));
        let hint = format!("--gpu-memory {} at least, or --backend cpu", format_size_up(enough));
        return Err(Error::limit(what(" on the GPU"), gpu_least, d, Some(hint)));
    }
    let least = |m: &Model| pass_bytes(m, size, layout, 16, threads) + crate::budget::SLACK;
    let hint = format!("--max-memory {} at least{}", format_size_up(least(model)), model.narrower(least));
    Err(Error::limit(what(""), least(model), max_memory, Some(hint)))
}

/// `plan` for a process that holds `reserve` bytes of host memory the plan does not count (the
/// drivers' code, pipelines and staging, measured once the device is ready): the tile planned
/// for `max_memory − reserve` where that is smaller, else `plan` (a budget too small for any
/// tile keeps it: the refusal is `plan_pass`'s).
pub(crate) fn leave_to_driver(
    model: &Model,
    size: (u32, u32),
    layout: Layout,
    threads: usize,
    (max_memory, device_budget): (u64, Option<u64>),
    (plan, reserve): (PassPlan, u64),
) -> PassPlan {
    if reserve == 0 {
        return plan;
    }
    let budgets = (max_memory.saturating_sub(reserve), device_budget);
    match plan_pass(model, size, layout, threads, budgets) {
        Ok(smaller) if smaller.tile < plan.tile => smaller,
        _ => plan,
    }
}

/// The input windows of a pass's tiles, per axis: the tile (input pixels), how far a window
/// reaches past it on each side, the image's border (padded convolutions keep a window's edge
/// where it meets the padded image's, so a window at the edge shrinks on one side only, and
/// no more than the border plus the reach), the padded image's size (no window is larger),
/// and per axis whether some window meets both of the padded image's edges (then its blobs
/// do not shrink on that axis at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub tile: usize,
    pub reach: usize,
    pub border: usize,
    pub padded: (usize, usize),
    pub whole: (bool, bool),
}

impl Span {
    /// The largest input window, per axis.
    pub(crate) fn input(&self) -> (usize, usize) {
        let axis = |g: usize| (self.tile + 2 * self.reach).min(g);
        (axis(self.padded.0), axis(self.padded.1))
    }

    /// Bytes of the largest input window as it goes up to a device: three channels of 16-bit
    /// samples (a staging copy on the host, a buffer on the device).
    pub(crate) fn upload_bytes(&self) -> u64 {
        let (w, h) = self.input();
        (w * h) as u64 * 3 * 2
    }
}

impl Graph {
    /// Per blob: the index of the last node that reads it (the output blob: past the end).
    pub(crate) fn last_uses(&self) -> Vec<usize> {
        let mut last = vec![0; self.blobs];
        for (n, node) in self.nodes.iter().enumerate() {
            node.inputs.iter().for_each(|&b| last[b] = n);
        }
        last[self.output] = usize::MAX;
        last
    }

    /// How many function layers the network has (each holds a table: [`Map::table`]).
    pub(crate) fn tables(&self) -> u64 {
        self.nodes.iter().filter(|n| matches!(n.op, Op::Map(_))).count() as u64
    }

    /// Whether a convolution zero-pads its input (then windows at the image's edge keep it; an
    /// all-valid network shrinks every window on every side).
    pub(crate) fn has_se(&self) -> bool {
        self.nodes.iter().any(|n| matches!(n.op, Op::Se(_)))
    }

    /// Whether any convolution pads its input (else the network shrinks by its halo).
    pub(crate) fn pads(&self) -> bool {
        self.nodes.iter().any(|n| matches!(&n.op, Op::Conv(c) if !c.transposed && c.pad.iter().any(|&p| p > 0)))
    }

    /// An upper bound on blob `b`'s values for a tile of `span`: per axis, the tile plus the
    /// reach less the blob's radius on each side, plus the border (a window at the image's
    /// edge keeps that edge), no more than the padded image, at the blob's scale.
    pub(crate) fn blob_values(&self, b: usize, span: Span) -> u64 {
        let (w, h) = self.blob_axes(b, span);
        self.sizes[b].0 as u64 * w * h
    }

    /// An upper bound on blob `b`'s columns and rows for a tile of `span` (as
    /// [`Graph::blob_values`]).
    pub(crate) fn blob_axes(&self, b: usize, span: Span) -> (u64, u64) {
        let (_, num, den) = self.sizes[b];
        let shrink = (self.radii[b].floor() as usize).min(span.reach);
        let length = span.tile + 2 * (span.reach - shrink) + if shrink > 0 { span.border } else { 0 };
        let axis = |g: usize, whole: bool| (if whole { g } else { length.min(g) } * num).div_ceil(den) as u64;
        (axis(span.padded.0, span.whole.0), axis(span.padded.1, span.whole.1))
    }

    /// The values of the largest blob for a tile of `span` (an upper bound).
    pub(crate) fn largest_blob(&self, span: Span) -> u64 {
        (0..self.blobs).map(|b| self.blob_values(b, span)).max().unwrap_or(0)
    }

    /// An upper bound on the values (of any type) alive at once while running the graph on
    /// a tile of `span`: blobs are freed after their last reader, and a layer's inputs and
    /// outputs are alive together.
    pub(crate) fn peak_values(&self, span: Span) -> u64 {
        self.peak_values_before(span, self.nodes.len())
    }

    /// As [`Graph::peak_values`], for the nodes before node `end` only.
    pub(crate) fn peak_values_before(&self, span: Span, end: usize) -> u64 {
        let last = self.last_uses();
        let size = |b: usize| self.blob_values(b, span);
        let (mut live, mut peak) = (0u64, 0u64);
        for (n, node) in self.nodes.iter().enumerate().take(end) {
            live += node.outputs.iter().map(|&b| size(b)).sum::<u64>();
            peak = peak.max(live);
            live -= node.inputs.iter().filter(|&&b| last[b] == n).map(|&b| size(b)).sum::<u64>();
        }
        peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural::reference::{self, conv_window, Float};

    /// Two dense connections as realesrgan-x4plus's blocks have them: conv 3 -> 16, its output
    /// read by conv 16 -> 8 and by two concatenations, whose second also holds the first's
    /// reader's output; conv 32 -> 12 and a pixel shuffle x2 (f32 weights of a fixed pattern).
    fn two_concatenations() -> Model {
        let param = "7767517\n10 13\nInput data 0 1 data 2=3\n\
                     Convolution c1 1 1 data a 0=16 1=3 4=1 5=1 6=432 9=1\n\
                     Split sa 1 3 a a1 a2 a3\n\
                     Convolution c2 1 1 a1 b 0=8 1=3 4=1 5=1 6=1152 9=1\n\
                     Split sb 1 2 b b1 b2\n\
                     Concat cat1 2 1 a2 b1 c\n\
                     Convolution c3 1 1 c d 0=8 1=3 4=1 5=1 6=1728 9=1\n\
                     Concat cat2 3 1 a3 b2 d e\n\
                     Convolution c4 1 1 e f 0=12 1=3 4=1 5=1 6=3456\n\
                     PixelShuffle ps 1 1 f out 0=2\n";
        let mut bin = Vec::new();
        for (n, bias) in [(432, 16), (1152, 8), (1728, 8), (3456, 12)] {
            bin.extend(0u32.to_le_bytes());
            let values = (0..n + bias).map(|i| ((i * 37 % 101) as f32 / 101.0 - 0.5) * 0.4);
            values.for_each(|v| bin.extend(v.to_le_bytes()));
        }
        Model::from_parts("two-concatenations", param, &bin).unwrap()
    }

    /// The planned bytes of the largest split convolution input cover every convolution's
    /// split input as the devices make it (`Exact::device_conv`: a deconvolution's phase
    /// convolution), and the planned kept splits what a run keeps at once, on real tile windows
    /// of both built-in models (the photo model's deconvolution, the anime model's padded
    /// convolutions) and of a model with two concatenations, interior and at the corner.
    #[test]
    fn split_inputs_fit_their_planned_bytes() {
        let models = [Model::builtin("photo").unwrap(), Model::builtin("anime").unwrap(), two_concatenations()];
        for m in models {
            let (name, ex) = (m.name.clone(), m.exact().unwrap());
            // A large tile for the small model: there the kept splits pass the largest one.
            let large = (name == "two-concatenations").then_some(((400, 300), 512));
            for (size, tile) in [((400, 300), 16), ((400, 300), 48), ((90, 70), 2048)].into_iter().chain(large) {
                let span = tile_window(&m, size, tile);
                let planned = split_input_bytes(&m.graph, span, super::super::tail::TAIL_BLOB_BYTES);
                let shape = largest_window(&m, (size.0 as usize, size.1 as usize), tile);
                let (c, h, w, x0, y0, gw, gh) = (shape.c, shape.h, shape.w, shape.x0, shape.y0, shape.gw, shape.gh);
                let input = Tensor { c, h, w, x0, y0, gw, gh, data: vec![0.0f32; c * w * h] };
                // Each blob's window, without its values.
                let mut seen: Vec<Option<Tensor<i16>>> = vec![None; m.graph.blobs];
                let mut record = |b: usize, t: &Tensor<f32>| {
                    let (c, h, w, x0, y0, gw, gh) = (t.c, t.h, t.w, t.x0, t.y0, t.gw, t.gh);
                    seen[b] = Some(Tensor { c, h, w, x0, y0, gw, gh, data: Vec::new() });
                };
                reference::run_until(&m.graph, &Float, input, &Default::default(), m.graph.output, &mut record)
                    .unwrap();
                let mut most = 0;
                for (n, node) in m.graph.nodes.iter().enumerate() {
                    let Op::Conv(c) = &node.op else { continue };
                    let dc = ex.device_conv(n, c).expect("a device form");
                    let x = seen[node.inputs[0]].as_ref().expect("input made");
                    let [(_, ow, _), (_, oh, _)] = conv_window(&dc.conv, x);
                    most = most.max(split_bytes(ow, oh, dc.conv.cin, dc.conv.kernel));
                }
                assert!(most > 0 && most <= planned, "{name} {size:?} tile {tile}: {most} > {planned}");
                let kept = kept_splits_at_most(&m, &seen);
                let planned = kept_split_bytes(&m.graph, span, super::super::tail::TAIL_BLOB_BYTES, false);
                assert!(kept >= most && kept <= planned, "{name} {size:?} tile {tile}: kept {kept} > {planned}");
                // At 24 bits each kept split has its lower parts' beside it, half its bytes.
                let wide = kept_split_bytes(&m.graph, span, super::super::tail::TAIL_BLOB_BYTES, true);
                assert!(wide > planned && wide >= kept + kept / 2, "{name} {size:?} tile {tile}: {wide} at 24 bits");
            }
        }
    }

    /// The most bytes of splits the blobs of a run over windows `seen` keep at once, as the
    /// GPU keeps them (`gpu/neural_conv.rs`): each convolution splits each part of its input
    /// (the parts of a concatenation, else the blob) over its reach, and the blob (with every
    /// copy a `Split` made of it) keeps the latest split until its last reader.
    fn kept_splits_at_most(m: &Model, seen: &[Option<Tensor<i16>>]) -> u64 {
        let (g, ex) = (&m.graph, m.exact().unwrap());
        let (last, mut root): (Vec<usize>, Vec<usize>) = (g.last_uses(), (0..g.blobs).collect());
        let mut root_last = last.clone();
        let mut kept = std::collections::HashMap::new();
        let mut most = 0;
        for (n, node) in g.nodes.iter().enumerate() {
            if matches!(node.op, Op::Split) {
                for &o in &node.outputs {
                    root[o] = root[node.inputs[0]];
                    root_last[root[o]] = root_last[root[o]].max(last[o]);
                }
            }
            if let Op::Conv(c) = &node.op {
                let dc = ex.device_conv(n, c).expect("a device form");
                let x = seen[node.inputs[0]].as_ref().expect("input made");
                let [(_, ow, _), (_, oh, _)] = conv_window(&dc.conv, x);
                let concat = g.nodes.iter().find(|p| matches!(p.op, Op::Concat) && p.outputs == node.inputs[..1]);
                let parts = concat.map_or(node.inputs[..1].to_vec(), |p| p.inputs.clone());
                for b in parts {
                    kept.insert(root[b], split_bytes(ow, oh, g.sizes[b].0, dc.conv.kernel));
                }
                most = most.max(kept.values().sum());
            }
            kept.retain(|&r, _| root_last[r] > n);
        }
        most
    }

    /// A reserve for the driver shrinks a tile the budget decides, and the smaller tile's
    /// bytes and the reserve fit the budget together; a budget no tile fits, or no reserve,
    /// keeps the plan.
    #[test]
    fn a_reserve_for_the_driver_shrinks_a_budget_decided_tile() {
        let m = Model::builtin("photo").unwrap();
        let rgb = Layout::new(Channels::Rgb, crate::pixel::Depth::U8);
        let (size, threads) = ((400, 300), 2);
        let budget = pass_bytes(&m, size, rgb, 64, threads) + crate::budget::SLACK;
        let plan = plan_pass(&m, size, rgb, threads, (budget, None)).unwrap();
        assert_eq!(plan.tile, 64);
        let reserve = 1 << 20;
        let left = leave_to_driver(&m, size, rgb, threads, (budget, None), (plan, reserve));
        assert!(left.tile < 64, "{left:?}");
        assert!(left.bytes + reserve + crate::budget::SLACK <= budget);
        assert_eq!(leave_to_driver(&m, size, rgb, threads, (budget, None), (plan, budget)), plan);
        assert_eq!(leave_to_driver(&m, size, rgb, threads, (budget, None), (plan, 0)), plan);
    }
}
