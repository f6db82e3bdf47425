//! Scalar reference implementation of the separable fixed-point resampler.

use super::{Rows, Scratch};
use crate::kernel::fixed::{finish_plain, finish_unpremultiply, round_shift};
use crate::pixel::Depth;
use crate::plan::{Plan, TileJob};

/// Appends source row `y`, columns of the window, to samples (premultiplied where needed).
fn load_samples(plan: &Plan, row: &[u8], x0: usize, w: usize, dst: &mut Vec<i64>) {
    let ch = plan.geom.layout.channels.count();
    let alpha = plan.arith.alpha;
    let read = |i: usize| plan.geom.layout.depth.read(row, i) as i64;
    for x in x0..x0 + w {
        let base = x * ch;
        if alpha {
            let a = read(base + ch - 1);
            for c in 0..ch - 1 {
                dst.push(read(base + c) * a);
            }
            dst.push(a);
        } else {
            for c in 0..ch {
                dst.push(read(base + c));
            }
        }
    }
}

/// Finishes pixel `i` of an output row from its pass-2 accumulators `px` (one per channel).
fn finish_pixel(plan: &Plan, px: &[i64], orow: &mut [u8], i: usize) {
    let ar = &plan.arith;
    let ch = px.len();
    let bps = plan.geom.layout.depth.bytes();
    let mut vals = [0u32; 4];
    if ar.alpha {
        let a = finish_plain(px[ch - 1], ar.plain.k2, ar.max);
        for (v, &acc) in vals.iter_mut().zip(&px[..ch - 1]) {
            *v = finish_unpremultiply(acc, px[ch - 1], a, ar);
        }
        vals[ch - 1] = a;
    } else {
        for (v, &acc) in vals.iter_mut().zip(px) {
            *v = finish_plain(acc, ar.plain.k2, ar.max);
        }
    }
    for (c, &v) in vals[..ch].iter().enumerate() {
        let o = (i * ch + c) * bps;
        match plan.geom.layout.depth {
            Depth::U8 => orow[o] = v as u8,
            Depth::U16 => orow[o..o + 2].copy_from_slice(&(v as u16).to_le_bytes()),
        }
    }
}

/// See [`super::resample_tile`].
pub fn resample_tile(plan: &Plan, src: &dyn Rows, job: &TileJob, s: &mut Scratch, out: &mut [u8]) {
    if plan.arith.vertical_first() {
        vertical_first(plan, src, job, s, out)
    } else {
        horizontal_first(plan, src, job, s, out)
    }
}

/// [`crate::Intermediate::Rounded`]: pass 1 down the window's columns, pass 2 along the rows.
fn vertical_first(plan: &Plan, src: &dyn Rows, job: &TileJob, s: &mut Scratch, out: &mut [u8]) {
    let ch = plan.geom.layout.channels.count();
    let ar = &plan.arith;
    let wstride = job.src.w as usize * ch; // window (and intermediate) row stride
    let (sx, sy) = (job.src.x as usize, job.src.y as usize);
    // Pass 1: vertical, one intermediate row per output row.
    s.inter.clear();
    s.inter.resize(job.out.h as usize * wstride, 0);
    s.acc.resize(wstride, 0);
    for j in 0..job.out.h as usize {
        let oy = job.out.y + j as u32;
        let start = plan.y.start(oy) as usize - sy;
        s.acc.fill(0);
        for (k, &wk) in plan.y.weights(oy).iter().enumerate() {
            s.samples.clear();
            load_samples(plan, src.row((sy + start + k) as u32), sx, job.src.w as usize, &mut s.samples);
            for (a, &v) in s.acc.iter_mut().zip(&s.samples) {
                *a += v * wk as i64;
            }
        }
        for (x, (t, &a)) in s.inter[j * wstride..(j + 1) * wstride].iter_mut().zip(&s.acc).enumerate() {
            *t = round_shift(a, ar.channel(x % ch).sh1) as i32;
        }
    }
    // Pass 2: horizontal, then finish each pixel.
    let row_bytes = plan.geom.tile as usize * ch * plan.geom.layout.depth.bytes();
    out.fill(0);
    let mut px = [0i64; 4];
    for j in 0..job.out.h as usize {
        let trow = &s.inter[j * wstride..(j + 1) * wstride];
        let orow = &mut out[j * row_bytes..];
        for i in 0..job.out.w as usize {
            let ox = job.out.x + i as u32;
            let start = plan.x.start(ox) as usize - sx;
            for (c, p) in px[..ch].iter_mut().enumerate() {
                *p = 0;
                for (k, &wk) in plan.x.weights(ox).iter().enumerate() {
                    *p += trow[(start + k) * ch + c] as i64 * wk as i64;
                }
            }
            finish_pixel(plan, &px[..ch], orow, i);
        }
    }
}

/// [`crate::Intermediate::Exact`]: pass 1 along the window's rows, pass 2 down the columns.
fn horizontal_first(plan: &Plan, src: &dyn Rows, job: &TileJob, s: &mut Scratch, out: &mut [u8]) {
    let ch = plan.geom.layout.channels.count();
    let ar = &plan.arith;
    let tw = job.out.w as usize;
    let stride = tw * ch; // intermediate row stride
    let (sx, sy) = (job.src.x as usize, job.src.y as usize);
    s.inter.clear();
    s.inter.resize(job.src.h as usize * stride, 0);
    // Pass 1: horizontal, every source row of the window.
    for r in 0..job.src.h as usize {
        s.samples.clear();
        load_samples(plan, src.row((sy + r) as u32), sx, job.src.w as usize, &mut s.samples);
        let trow = &mut s.inter[r * stride..(r + 1) * stride];
        for i in 0..tw {
            let ox = job.out.x + i as u32;
            let start = plan.x.start(ox) as usize - sx;
            let w = plan.x.weights(ox);
            for c in 0..ch {
                let mut acc = 0i64;
                for (k, &wk) in w.iter().enumerate() {
                    acc += s.samples[(start + k) * ch + c] * wk as i64;
                }
                trow[i * ch + c] = round_shift(acc, ar.channel(c).sh1) as i32;
            }
        }
    }
    // Pass 2: vertical, then finish each pixel.
    let bps = plan.geom.layout.depth.bytes();
    let tile = plan.geom.tile as usize;
    out.fill(0);
    s.acc.resize(stride, 0);
    for j in 0..job.out.h as usize {
        let oy = job.out.y + j as u32;
        let start = plan.y.start(oy) as usize - sy;
        s.acc.fill(0);
        for (k, &wk) in plan.y.weights(oy).iter().enumerate() {
            let trow = &s.inter[(start + k) * stride..(start + k + 1) * stride];
            for (a, &t) in s.acc.iter_mut().zip(trow) {
                *a += t as i64 * wk as i64;
            }
        }
        let orow = &mut out[j * tile * ch * bps..];
        for i in 0..tw {
            finish_pixel(plan, &s.acc[i * ch..(i + 1) * ch], orow, i);
        }
    }
}
