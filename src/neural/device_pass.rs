//! A pass whose network runs on a device: its tile cut to what the device holds
//! ([`fit_device`]), and grown to what the host holds beside a discrete one. Its blobs, the
//! tensor-core splits and the raw sums live in the device's memory ([`device_bytes`] counts
//! them), so the host holds only what [`pass_io_bytes`] counts and a second input window (the
//! next tile's is read while the first's staging copy is on its way). The host plan
//! ([`plan_pass`]) counts the CPU engine's live tensors and panels, which such a pass never
//! makes: at 24 bits they held realesrgan-x4plus on a 1000x1000 image to tiles of 256 px
//! under the default budget, sixteen windows that each reach most of the image through its
//! halo, where the device holds the whole image in one (10.2 s of device time against the
//! 16-bit pass's 1.1 s on an H100, `docs/results/2026-12-05-h100-wide-zoo.txt`).
//!
//! [`device_bytes`]: super::pass_plan::device_bytes
//! [`plan_pass`]: super::pass_plan::plan_pass

use super::pass_plan::{
    device_bytes, device_largest_buffer, largest_tile, pass_io_bytes, recompute_factor, tile_window, DeviceLimits,
    PassPlan, TILES,
};
use super::Model;
use crate::error::{Error, Result};
use crate::limits::format_size_up;
use crate::pixel::Layout;

/// Host bytes of a pass with tiles of `tile` input pixels whose network runs on a discrete
/// device: [`pass_io_bytes`] and one more input window.
pub(crate) fn beside_device_bytes(model: &Model, size: (u32, u32), layout: Layout, tile: usize) -> u64 {
    pass_io_bytes(model, size, layout, tile) + tile_window(model, size, tile).upload_bytes()
}

/// A tile whose windows compute each pixel at most this many times over is large enough: a
/// larger one saves little of the network's work and leaves fewer tiles for the device's work
/// and the host's reading and placing to overlap (animevideov3's 1024 px tiles compute 12 %
/// more than the image).
const ENOUGH_RECOMPUTE: f64 = 1.25;

/// `plan` (the host plan, already fitted to what the process holds) where its tiles compute
/// each pixel at most [`ENOUGH_RECOMPUTE`] times over; else the smallest larger tile that does
/// whose [`beside_device_bytes`] fit `max_memory` less the `held` bytes and the allocator's
/// slack, or the largest that fits where none does. A network with SE blocks keeps `plan`:
/// their multipliers come from runs of its first layers read back to the host
/// ([`se_pass`](super::se_pass)). Without `gpu_memory` (`--gpu-memory`) a larger tile may ask
/// the device (its tensor-core splits with `split`) for at most a quarter more than `plan`'s
/// (realesrgan-x4plus at 24 bits on a 1000x1000 image: 11 001 MiB instead of 9 987 for one
/// tile instead of 16; on a 6 MP one, 384 px tiles instead of 256, 12 215 MiB where 2048 px
/// tiles would need 49 356). The device's own limits are applied afterwards (`fit_device` only shrinks a tile).
pub(crate) fn grow_beside_device(
    model: &Model,
    size: (u32, u32),
    layout: Layout,
    (max_memory, held): (u64, u64),
    (split, gpu_memory): (bool, Option<u64>),
    plan: PassPlan,
) -> PassPlan {
    if model.graph.has_se() || recompute_factor(model, size, plan.tile) <= ENOUGH_RECOMPUTE {
        return plan;
    }
    let budget = max_memory.saturating_sub(held).saturating_sub(crate::budget::SLACK);
    // Without --gpu-memory the device's size is unknown: a tile grows only while the device
    // needs at most a quarter more than the host plan's tile asked of it.
    let device = |t: usize| device_bytes(model, size, layout, t, split);
    let device_cap = match gpu_memory {
        Some(_) => u64::MAX,
        None => device(plan.tile).saturating_mul(5) / 4,
    };
    let larger = TILES.into_iter().filter(|&t| t > plan.tile && device(t) <= device_cap);
    let fitting: Vec<PassPlan> = larger
        .map(|tile| PassPlan { tile, bytes: beside_device_bytes(model, size, layout, tile) })
        .filter(|p| p.bytes <= budget)
        .collect();
    let enough = fitting.iter().rev().find(|p| recompute_factor(model, size, p.tile) <= ENOUGH_RECOMPUTE);
    enough.or(fitting.first()).copied().unwrap_or(plan)
}

/// The largest tile, at most `plan`'s, whose buffers fit `limits` on the device: a tile too
/// large for the adapter's buffers is cut smaller (the bytes do not depend on the tile).
pub(crate) fn fit_device(
    model: &Model,
    size: (u32, u32),
    layout: Layout,
    plan: PassPlan,
    limits: DeviceLimits,
) -> Result<PassPlan> {
    let fits = |t: usize| {
        device_largest_buffer(model, size, layout, t, (limits.max_buffer, limits.split)) <= limits.max_buffer
            && device_bytes(model, size, layout, t, limits.split) <= limits.memory
    };
    if let Some(tile) = TILES.into_iter().filter(|&t| t <= plan.tile).find(|&t| fits(t)) {
        return Ok(PassPlan { tile, ..plan });
    }
    let what = |of: &str| format!("{of} of the {} model's pass on the GPU (tiles of 16 px)", model.name);
    let largest = device_largest_buffer(model, size, layout, 16, (limits.max_buffer, limits.split));
    if largest > limits.max_buffer {
        let hint = Some("the adapter's largest buffer or binding; use --backend cpu".into());
        return Err(Error::limit(what("the largest buffer"), largest, limits.max_buffer, hint));
    }
    let least = device_bytes(model, size, layout, 16, limits.split);
    let hint = Some(format!("--gpu-memory {} at least, or --backend cpu", format_size_up(least)));
    Err(Error::limit(what("the device memory"), least, limits.memory, hint))
}

/// For `--backend gpu`, where the host plan ([`plan_pass`]) refuses the budget: the largest tile
/// whose [`beside_device_bytes`] fit `budgets` (`--max-memory` less the allocator's slack, and
/// `--gpu-memory` for its device bytes where one is given; [`largest_tile`]) — a pass the host can hold beside a discrete
/// device (none for a network with SE blocks, or where no tile fits). The device is not known
/// yet: `fit_passes` refuses such a plan on an adapter whose buffers are host memory, as the
/// host plan did.
///
/// [`plan_pass`]: super::pass_plan::plan_pass
pub(crate) fn plan_beside_device(
    model: &Model,
    size: (u32, u32),
    layout: Layout,
    budgets: (u64, Option<u64>),
) -> Option<PassPlan> {
    if model.graph.has_se() {
        return None;
    }
    largest_tile(model, size, layout, budgets, |tile| beside_device_bytes(model, size, layout, tile))
}

#[cfg(test)]
mod tests {
    use super::super::pass_plan::{device_bytes, pass_bytes, plan_pass};
    use super::*;
    use crate::pixel::{Channels, Depth};

    /// Beside a device a pass's host part is smaller than the CPU engine's, so a budget that
    /// holds the host plan to a tile that recomputes much lets the device take a larger one
    /// (the smallest that recomputes little), whose host part still fits the budget less what
    /// the process holds; a plan whose tiles recompute little is kept.
    #[test]
    fn a_device_pass_grows_its_tile_within_the_host_budget() {
        let m = Model::builtin("photo").unwrap();
        let rgb = Layout::new(Channels::Rgb, Depth::U8);
        let (size, threads, held) = ((1200, 900), 2, 4 << 20);
        let budget = pass_bytes(&m, size, rgb, 64, threads) + crate::budget::SLACK + held;
        let plan = plan_pass(&m, size, rgb, threads, (budget - held, None)).unwrap();
        assert_eq!(plan.tile, 64);
        assert!(recompute_factor(&m, size, plan.tile) > ENOUGH_RECOMPUTE);
        let unbounded = (true, Some(u64::MAX));
        let grown = grow_beside_device(&m, size, rgb, (budget, held), unbounded, plan);
        assert!(grown.tile > plan.tile, "{grown:?}");
        // The smallest larger tile that computes few pixels twice, not the largest.
        assert!(recompute_factor(&m, size, grown.tile) <= ENOUGH_RECOMPUTE);
        let smaller = TILES.into_iter().filter(|&t| t > plan.tile && t < grown.tile);
        assert!(smaller.into_iter().all(|t| recompute_factor(&m, size, t) > ENOUGH_RECOMPUTE));
        assert!(grown.bytes + held + crate::budget::SLACK <= budget);
        assert_eq!(grown.bytes, beside_device_bytes(&m, size, rgb, grown.tile));
        assert!(beside_device_bytes(&m, size, rgb, grown.tile) < pass_bytes(&m, size, rgb, grown.tile, threads));
        let whole = plan_pass(&m, size, rgb, threads, (u64::MAX, None)).unwrap();
        assert_eq!(grow_beside_device(&m, size, rgb, (u64::MAX, 0), unbounded, whole), whole);
        // A device of unknown size is asked for at most a quarter more than the plan's tile.
        let device = |t| device_bytes(&m, size, rgb, t, true);
        let modest = grow_beside_device(&m, size, rgb, (budget, held), (true, None), plan);
        assert!(device(modest.tile) * 4 <= device(plan.tile) * 5, "{modest:?}");
        assert!(modest.tile <= grown.tile);
    }

    /// Under a budget the host plan refuses, `--backend gpu` gets the largest tile the host
    /// holds beside a device, within the budget; a budget too small for even that gets none.
    #[test]
    fn a_gpu_pass_is_planned_where_the_cpu_form_cannot_fit() {
        let m = Model::builtin("photo").unwrap().with_activation_bits(24).unwrap();
        let rgb = Layout::new(Channels::Rgb, Depth::U8);
        let (size, threads) = ((600, 400), 2);
        let least = pass_bytes(&m, size, rgb, 16, threads) + crate::budget::SLACK;
        assert!(plan_pass(&m, size, rgb, threads, (least - 1, None)).is_err());
        let plan = plan_beside_device(&m, size, rgb, (least - 1, None)).expect("a device plan");
        assert!(plan.bytes + crate::budget::SLACK < least);
        assert_eq!(plan.bytes, beside_device_bytes(&m, size, rgb, plan.tile));
        let larger = TILES.into_iter().filter(|&t| t > plan.tile);
        assert!(larger.into_iter().all(|t| beside_device_bytes(&m, size, rgb, t) + crate::budget::SLACK >= least));
        let tiny = beside_device_bytes(&m, size, rgb, 16) + crate::budget::SLACK - 1;
        assert_eq!(plan_beside_device(&m, size, rgb, (tiny, None)), None);
        let device = device_bytes(&m, size, rgb, 16, false);
        assert_eq!(plan_beside_device(&m, size, rgb, (least - 1, Some(device - 1))), None);
    }
}
