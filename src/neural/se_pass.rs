//! The SE blocks' multipliers for an image computed tile by tile (see `unet.rs`): for each
//! block in network order, the network up to the block's pooled blob on every tile (with the
//! multipliers found so far; on the CPU or the device), each tile adding the channel sums of
//! the blob pixels it owns ([`owned_range`]). The exact engine's sums are exact, so every
//! tiling gives the same multipliers as the whole image does. A device sums a tile's pixels
//! itself and keeps several tiles in flight ([`scales_in_flight`]); the tiles' sums are added
//! in tile order all the same.

use super::graph::{Graph, Op};
use super::reference::{SeScales, Tensor, Window};
use super::unet::{owned_range, AxisPlace};
use crate::error::{Error, Result};
use std::collections::VecDeque;

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
/// and returns that blob (on the CPU: [`reference::run_until`]).
pub(crate) type RunPrefix<'a, T> = &'a dyn Fn(Rect, &SeScales, usize) -> Result<Tensor<T>>;

/// Per channel, the sum of blob `b`'s values over a window of a tile's blob, in real units
/// ([`reference::Engine::channel_sums`], or [`crate::neural::exact::Exact::prefix_sums`]).
pub(crate) type ChannelSums<'a, T> = &'a dyn Fn(&Tensor<T>, Window, usize) -> Vec<f64>;

/// Which pixels of a tile's blob the tile owns: from the blob's window (a tensor with that
/// window; its data is not read), the window to sum, in the image blob's coordinates.
pub(crate) type Owned<'a> = &'a dyn Fn(&Tensor<i16>) -> Result<Window>;

/// Starts tile `rect`'s part of an SE block's sums: the network on the tile's input window
/// with the multipliers so far up to blob `b`, and that blob's values summed per channel over
/// the window [`Owned`] names; returns the pending sums and that window.
pub(crate) type StartSums<'a, P> = &'a dyn Fn(Rect, &SeScales, usize, Owned<'_>) -> Result<(P, Window)>;

/// Waits for started sums: per channel, in real units.
pub(crate) type FinishSums<'a, P> = &'a dyn Fn(P) -> Result<Vec<f64>>;

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
    let start = |rect: Rect, scales: &SeScales, b: usize, owned: Owned<'_>| {
        let t = run(rect, scales, b)?;
        let window = owned(&t.shaped())?;
        Ok((sums_of(&t, window, b), window))
    };
    scales_in_flight(g, geo, rects, (&start, &Ok, 1), each)
}

/// As [`scales`], with each tile's sums started by `start` and read by `finish`, at most
/// `depth` tiles started and not yet read (a device works on the next tiles while the host
/// reads one). The parts are added in tile order, as [`scales`] adds them.
pub(crate) fn scales_in_flight<P>(
    g: &Graph,
    geo: Geometry,
    rects: &[Rect],
    (start, finish, depth): (StartSums<'_, P>, FinishSums<'_, P>, usize),
    each: &mut dyn FnMut() -> Result<()>,
) -> Result<SeScales> {
    let mut scales = SeScales::new();
    for node in &g.nodes {
        let Op::Se(se) = &node.op else { continue };
        let b = se.pooled;
        let (_, num, den) = g.sizes[b];
        let (mut total, mut count, image) = (Vec::new(), 0usize, std::cell::Cell::new(0usize));
        let mut add = |part: Vec<f64>| {
            total.resize(part.len(), 0.0);
            total.iter_mut().zip(part).for_each(|(s, p): (&mut f64, f64)| *s += p);
        };
        let mut pending = VecDeque::new();
        for &rect in rects {
            each()?;
            let owned = |t: &Tensor<i16>| {
                image.set(t.gw * t.gh);
                owned_window(&node.name, (geo, num, den), rect, t)
            };
            let (p, window) = start(rect, &scales, b, &owned)?;
            count += window.2 * window.3;
            pending.push_back(p);
            if pending.len() >= depth.max(1) {
                add(finish(pending.pop_front().expect("a started tile"))?);
            }
            if rect.0 + rect.2 >= geo.out.0 && rect.1 + rect.3 >= geo.out.1 && count != image.get() {
                let n = image.get();
                return Err(Error::Internal(format!("{}: the tiles owned {count} of {n} pixels", node.name)));
            }
        }
        while let Some(p) = pending.pop_front() {
            add(finish(p)?);
        }
        scales.insert(b, se.multipliers_of_sums(&total, count));
    }
    Ok(scales)
}

/// The window of a tile's blob (shaped as `t`) that tile `rect` owns, in the image blob's
/// coordinates; an error if the blob does not cover it.
fn owned_window(name: &str, (geo, num, den): (Geometry, usize, usize), rect: Rect, t: &Tensor<i16>) -> Result<Window> {
    let place = |len: usize, padded: usize| AxisPlace { num, den, len, padded, pad: geo.pad, scale: geo.scale };
    let (x0, x1) = owned_range(place(t.gw, geo.padded.0), rect.0, rect.0 + rect.2, geo.out.0);
    let (y0, y1) = owned_range(place(t.gh, geo.padded.1), rect.1, rect.1 + rect.3, geo.out.1);
    if x0 < t.x0 || y0 < t.y0 || x1 > t.x0 + t.w || y1 > t.y0 + t.h {
        return Err(Error::Internal(format!(
            "{name}: tile {rect:?} did not cover the pixels it owns ({x0}..{x1}, {y0}..{y1} of {:?})",
            (t.x0, t.w, t.gw, t.y0, t.h, t.gh)
        )));
    }
    Ok((x0, y0, x1 - x0, y1 - y0))
}

#[cfg(test)]
mod tests {
    use super::super::{reference, stage, Model};
    use super::*;

    /// A convolution, an SE block over it and a 2x deconvolution (ncnn's param text and
    /// weights, pseudo-random).
    fn se_model() -> Model {
        let param = "7767517\n8 9\nInput in0 0 1 in0\n\
            Convolution c0 1 1 in0 a 0=4 1=3 5=1 6=108 9=2 -23310=1,1.000000e-01\n\
            Split s1 1 2 a c1 c2\n\
            Pooling gap 1 1 c2 g 0=1 4=1\n\
            InnerProduct f0 1 1 g h 0=2 1=1 2=8 9=1\n\
            InnerProduct f1 1 1 h k 0=4 1=1 2=8 9=4\n\
            BinaryOp se 2 1 c1 k d 0=2\n\
            Deconvolution out 1 1 d out0 0=3 1=4 3=2 4=1 5=1 6=192\n";
        let mut state = 7u64;
        let mut value = |scale: f32| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
        };
        let mut bin = Vec::new();
        for (n, bias, scale) in [(108, 4, 0.6), (8, 2, 0.5), (8, 4, 1.0), (192, 3, 0.3)] {
            bin.extend(0u32.to_le_bytes());
            (0..n).for_each(|_| bin.extend(value(scale).to_le_bytes()));
            (0..bias).for_each(|_| bin.extend(value(0.1).to_le_bytes()));
        }
        Model::from_parts("se", param, &bin).unwrap()
    }

    /// With tiles started ahead of their reading (a device's way: two or three in flight),
    /// the multipliers are the ones a tile at a time gives, bit for bit, and never more than
    /// `depth` tiles wait.
    #[test]
    fn tiles_in_flight_give_the_same_multipliers() {
        let m = se_model();
        let ex = m.exact().unwrap();
        let (g, (w, h)) = (&m.graph, (37usize, 29usize));
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
        let fixed = |rect| {
            let window = m.input_window(w, h, rect);
            m.padded(w, h, window, |x, y, c| stage::to_fixed(rgb[(y * w + x) * 3 + c] as u32, 255) as i16)
        };
        let geo = m.se_geometry(w, h);
        let rects: Vec<Rect> = stage::tile_rects((w * 2, h * 2), 16).collect();
        assert!(rects.len() > 4);
        let run = |rect, scales: &SeScales, stop| ex.run_prefix(g, fixed(rect), scales, stop).map_err(Error::Internal);
        let sums = |t: &reference::Tensor<i32>, win, b| ex.prefix_sums(t, win, b);
        let one = scales(g, &sums, geo, &rects, &run, &mut || Ok(())).unwrap();
        assert_eq!(one.len(), 1);
        let waiting = std::cell::Cell::new(0usize);
        for depth in [2, 3] {
            let start = |rect, scales: &SeScales, b, owned: Owned<'_>| {
                let t = run(rect, scales, b)?;
                let window = owned(&t.shaped())?;
                waiting.set(waiting.get() + 1);
                assert!(waiting.get() <= depth, "more than {depth} tiles in flight");
                Ok(((t, window, b), window))
            };
            let finish = |(t, window, b): (Tensor<i32>, Window, usize)| {
                waiting.set(waiting.get() - 1);
                Ok(ex.prefix_sums(&t, window, b))
            };
            let ahead = scales_in_flight(g, geo, &rects, (&start, &finish, depth), &mut || Ok(())).unwrap();
            assert_eq!(ahead, one, "{depth} tiles in flight");
            assert_eq!(waiting.get(), 0);
        }
    }
}
