//! The memory plan: [`plan_memory`] sizes a job's threads, ring and GPU slots from its
//! [`Geometry`] and the stages' [`Needs`] within [`Limits::max_memory`](crate::Limits), before
//! anything is allocated.

use crate::error::{Error, Result};
use crate::limits::format_size;
use crate::plan::Geometry;
use crate::resample::Scratch;

/// How the budget was spent: chosen parallelism and the itemised estimate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MemoryPlan {
    /// Worker threads.
    pub threads: usize,
    /// Tile slots in the ring.
    pub slots: usize,
    /// Slots in the GPU ring (0 without a GPU).
    pub gpu_slots: usize,
    /// Peak estimate in bytes.
    pub total: u64,
    /// Items of the estimate.
    pub items: Vec<(&'static str, u64)>,
}

/// Fixed allowance for allocator slack and small structures.
pub(crate) const SLACK: u64 = 2 << 20;

/// What the process itself (its code, its libraries, the runtime) may hold beside a plan: the
/// peak resident size is `--max-memory` plus at most this.
pub(crate) const PROCESS_ALLOWANCE: u64 = 16 << 20;

/// The plan's item for the host memory kept free for a GPU driver ([`Needs::driver`]).
pub(crate) const DRIVER_ITEM: &str = "gpu driver (kept free for it)";

/// What the stages of a job need, besides what the plan itself implies.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Needs {
    /// The decoder's own working memory.
    pub source_decode: u64,
    /// The sink's tables or bands.
    pub sink_memory: u64,
    /// One tile encoder's working memory.
    pub encoder_memory: u64,
    /// Worst-case encoded size of one tile.
    pub encoded_bound: usize,
    /// Whether tiles pass to the sink unencoded (no second buffer per slot).
    pub passthrough: bool,
    /// GPU ring: most slots wanted, host staging bytes per slot, and tiles each slot holds
    /// while it computes (a run of tiles: so many tile buffers of the ring are in the GPU's
    /// hands per slot).
    pub gpu: Option<(usize, u64, usize)>,
    /// The largest model pass (0 without a model); it runs before the tile stage.
    pub neural: u64,
    /// Host memory kept free for a GPU driver (its code and buffers, which no item sizes);
    /// 0 without a GPU or where the budget has no room for it.
    pub driver: u64,
    /// Rows of tiles whose source rows stay resident together: 1 for row-major tile order,
    /// a shard's height in tiles for a sharded output (see [`crate::Plan::with_groups`]).
    pub band_rows: u32,
}

/// The sizes a memory plan sums, from the geometry and the stages' needs.
struct Sizes {
    coeffs: u64,
    row_bytes: u64,
    /// One worker's scratch, its tile buffer and its encoder.
    worker: u64,
    /// One ring slot (raw tile, plus the encoded copy unless tiles pass through).
    slot: u64,
    tile_count: u64,
    gpu_per_slot: u64,
    driver: u64,
    sink: u64,
    decode: u64,
    neural: u64,
    band_rows: u32,
}

impl Sizes {
    /// The plan for `threads` workers, `slots` tile buffers and `gpu_slots` GPU slots.
    fn estimate(&self, geom: &Geometry, threads: usize, slots: usize, gpu_slots: usize) -> MemoryPlan {
        // Never more tile buffers than the job has tiles.
        let slots = (slots as u64).min(self.tile_count.max(1)) as usize;
        // Tiles in flight span at most this many rows of tiles; their source rows are resident.
        let across = geom.tiles_across().max(1) as usize;
        let rows_in_flight = (slots.div_ceil(across) + 1) as u32 + self.band_rows.max(1) - 1;
        let band = geom.window_bound(1, rows_in_flight).1 + 2;
        let items = [
            ("coefficient tables", self.coeffs),
            ("resident source band", band.saturating_mul(self.row_bytes)),
            ("worker scratch", (threads as u64).saturating_mul(self.worker)),
            ("tile ring", (slots as u64).saturating_mul(self.slot)),
            ("sink", self.sink),
            ("gpu staging", gpu_slots as u64 * self.gpu_per_slot),
            (DRIVER_ITEM, self.driver),
        ];
        let compute_total = items.iter().fold(0u64, |a, i| a.saturating_add(i.1));
        let mut items = items.to_vec();
        items.push(("decoder (before compute)", self.decode));
        if self.neural > 0 {
            items.push(("model passes (before compute)", self.neural));
        }
        items.push(("slack", SLACK));
        let total = compute_total.max(self.decode).max(self.neural).saturating_add(SLACK);
        MemoryPlan { threads, slots, gpu_slots, total, items }
    }
}

impl MemoryPlan {
    /// The tile stage's share of the plan: its items (not the decoder's or the model passes',
    /// which come before it, nor the room kept for a GPU driver) and the slack.
    pub fn compute_bytes(&self) -> u64 {
        let other = |name: &str| name.ends_with("(before compute)") || name == "slack" || name == DRIVER_ITEM;
        self.items.iter().filter(|(name, _)| !other(name)).fold(SLACK, |a, i| a.saturating_add(i.1))
    }
}

/// Sizes the job for `budget`: the most threads (up to `want`), tile slots (up to 2 per
/// thread) and GPU slots that fit. Fails with the itemised minimum when even one thread and
/// one slot do not fit.
///
/// Everything is computed from the [`Geometry`] alone (analytic upper bounds of the tables,
/// windows and resident rows), before any of those allocations exists, so a refusal costs
/// nothing.
pub fn plan_memory(geom: &Geometry, needs: Needs, want: usize, budget: u64) -> Result<MemoryPlan> {
    let (max_gpu, gpu_per_slot, gpu_run) = needs.gpu.unwrap_or((0, 0, 1));
    let tile_bytes = geom.tile_bytes();
    let sizes = Sizes {
        coeffs: geom.coefficient_bytes(),
        row_bytes: geom.row_bytes(),
        worker: Scratch::bytes_for(geom).saturating_add(tile_bytes).saturating_add(needs.encoder_memory),
        slot: tile_bytes.saturating_add(if needs.passthrough { 0 } else { needs.encoded_bound as u64 }),
        tile_count: geom.tile_count(),
        gpu_per_slot,
        driver: needs.driver,
        sink: needs.sink_memory,
        decode: needs.source_decode.saturating_add(64u64.saturating_mul(geom.row_bytes())),
        neural: needs.neural,
        band_rows: needs.band_rows,
    };
    // GPU ring sizes to try, largest first (none without a GPU).
    let gpu_sizes: Vec<usize> = if max_gpu == 0 {
        vec![0]
    } else {
        let runs = sizes.tile_count.div_ceil(gpu_run.max(1) as u64).clamp(1, max_gpu as u64) as usize;
        std::iter::successors(Some(runs), |&g| (g > 1).then_some(g / 2)).collect()
    };
    let mut threads = want.max(1);
    loop {
        for (n, &g) in gpu_sizes.iter().enumerate() {
            // The GPU holds g·run tile buffers; the workers need their own on top, or they starve
            // (a smaller GPU ring is tried before that). Only the smallest ring may go without.
            let held = g * gpu_run;
            let last = n + 1 == gpu_sizes.len();
            let candidates = [2 * threads + held, threads + 1 + held, threads + held, held.max(1)];
            for &slots in &candidates[..if last { 4 } else { 3 }] {
                let m = sizes.estimate(geom, threads, slots, g);
                if m.total <= budget {
                    return Ok(m);
                }
            }
        }
        if threads == 1 {
            break;
        }
        threads = (threads / 2).max(1);
    }
    Err(refusal(&sizes.estimate(geom, 1, 1, gpu_sizes.last().copied().unwrap_or(0)), budget))
}

/// The error for a budget that cannot hold even the smallest plan `min`, itemised.
fn refusal(min: &MemoryPlan, budget: u64) -> Error {
    let detail = min
        .items
        .iter()
        .filter(|i| i.1 > 0)
        .map(|(n, v)| format!("{n} {}", format_size(*v)))
        .collect::<Vec<_>>()
        .join(", ");
    Error::limit(
        "--max-memory",
        min.total,
        budget,
        Some(format!(
            "the smallest plan needs {} ({detail}); raise --max-memory or lower --tile",
            crate::limits::format_size_up(min.total)
        )),
    )
}
