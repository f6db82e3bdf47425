//! Scalar reference implementation of the separable fixed-point resampler.

use super::{Rows, Scratch};
use crate::kernel::fixed::{finish_plain, finish_unpremultiply, round_shift};
use crate::pixel::Depth;
use crate::plan::{Plan, TileJob};

/// Loads source row `y`, columns of the window, into samples (premultiplied where needed).
fn load_samples(plan: &Plan, row: &[u8], x0: usize, w: usize, dst: &mut Vec<i64>) {
    let ch = plan.layout.channels.count();
    let alpha = plan.arith.alpha;
    dst.clear();
    let read = |i: usize| -> i64 {
        match plan.layout.depth {
            Depth::U8 => row[i] as i64,
            Depth::U16 => u16::from_ne_bytes([row[2 * i], row[2 * i + 1]]) as i64,
        }
    };
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

/// See [`super::resample_tile`].
pub fn resample_tile(plan: &Plan, src: &dyn Rows, job: &TileJob, s: &mut Scratch, out: &mut [u8]) {
    let ch = plan.layout.channels.count();
    let ar = &plan.arith;
    let tw = job.out.w as usize;
    let stride = tw * ch; // intermediate row stride
    let (sx, sy) = (job.src.x as usize, job.src.y as usize);
    s.inter.clear();
    s.inter.resize(job.src.h as usize * stride, 0);
    // Pass 1: horizontal, every source row of the window.
    for r in 0..job.src.h as usize {
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
    let bps = plan.layout.depth.bytes();
    let tile = plan.tile as usize;
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
            let px = &s.acc[i * ch..(i + 1) * ch];
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
                match plan.layout.depth {
                    Depth::U8 => orow[o] = v as u8,
                    Depth::U16 => orow[o..o + 2].copy_from_slice(&(v as u16).to_le_bytes()),
                }
            }
        }
    }
}
