//! The SE blocks' multipliers for an image computed tile by tile (see `unet.rs`): for each
//! block in network order, the network up to the block's pooled blob on every tile (with the
//! multipliers found so far; on the CPU or the device), each tile adding the channel sums of the blob pixels it owns
//! ([`owned_range`]). The exact engine's sums are exact, so every tiling gives the same
//! multipliers as the whole image does.

use super::graph::{Graph, Op};
use super::reference::{SeScales, Tensor, Window};
use super::unet::{owned_range, AxisPlace};
use crate::error::{Error, Result};

/// Output pixels `(x, y, w, h)`.
type Rect = (usize, usize, usize, usize);

/// How the padded input lies against the output, per axis: the padded input's length, the
/// pixels of border before the image, and the output's length; and the model's scale.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub padded: (usize, usize),
    pub pad: usize,
    pub out: (usize, usize),
    pub scale: usize,
}

/// Runs the network on tile `rect`'s input window with the multipliers so far, up to a blob,
/// and returns that blob (on the CPU: [`reference::run_until`]; or on a device).
pub(crate) type RunPrefix<'a, T> = &'a dyn Fn(Rect, &SeScales, usize) -> Result<Tensor<T>>;

/// Per channel, the sum of blob `b`'s values over a window of a tile's blob, in real units
/// ([`reference::Engine::channel_sums`], or [`crate::neural::exact::Exact::prefix_sums`]).
pub(crate) type ChannelSums<'a, T> = &'a dyn Fn(&Tensor<T>, Window, usize) -> Vec<f64>;

/// The multipliers of every SE block of `g` (none: empty) for the image whose tiles `rects`
/// cover the output; `run` computes a tile's blob; `sums_of` adds its values per channel over
/// a window, in real units; `each()` is called once per tile run (for cancellation and
/// progress).
pub(crate) fn scales<T: Copy + Default>(
    g: &Graph,
    sums_of: ChannelSums<'_, T>,
    geo: Geometry,
    rects: &[Rect],
    run: RunPrefix<'_, T>,
    each: &mut dyn FnMut() -> Result<()>,
) -> Result<SeScales> {
    let mut scales = SeScales::new();
    for node in &g.nodes {
        let Op::Se(se) = &node.op else { continue };
        let b = se.pooled;
        let (_, num, den) = g.sizes[b];
        let mut total: Vec<f64> = Vec::new();
        let mut count = 0usize;
        for &rect in rects {
            each()?;
            let t = run(rect, &scales, b)?;
            let place = |len: usize, padded: usize| AxisPlace { num, den, len, padded, pad: geo.pad, scale: geo.scale };
            let (x0, x1) = owned_range(place(t.gw, geo.padded.0), rect.0, rect.0 + rect.2, geo.out.0);
            let (y0, y1) = owned_range(place(t.gh, geo.padded.1), rect.1, rect.1 + rect.3, geo.out.1);
            if x0 < t.x0 || y0 < t.y0 || x1 > t.x0 + t.w || y1 > t.y0 + t.h {
                return Err(Error::Internal(format!(
                    "{}: tile {rect:?} did not cover the pixels it owns ({x0}..{x1}, {y0}..{y1} of {:?})",
                    node.name,
                    (t.x0, t.w, t.gw, t.y0, t.h, t.gh)
                )));
            }
            let part = sums_of(&t, (x0, y0, x1 - x0, y1 - y0), b);
            total.resize(part.len(), 0.0);
            total.iter_mut().zip(part).for_each(|(s, p)| *s += p);
            count += (x1 - x0) * (y1 - y0);
            if rect.0 + rect.2 >= geo.out.0 && rect.1 + rect.3 >= geo.out.1 && count != t.gw * t.gh {
                return Err(Error::Internal(format!(
                    "{}: the tiles owned {count} of {} pixels",
                    node.name,
                    t.gw * t.gh
                )));
            }
        }
        scales.insert(b, se.multipliers_of_sums(&total, count));
    }
    Ok(scales)
}
