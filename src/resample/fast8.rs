//! 8-bit grey/RGB without alpha in 32-bit integers. The fixed-point contract bounds every
//! accumulator of this layout below 2^30 (samples < 2^8, weights and the intermediate < 2^15,
//! rows of weights with |Σw| < 2), so computing in `i32` yields exactly the integers of the
//! `i64` reference in `native.rs` — and lets the compiler vectorise both passes.
//!
//! The same code is compiled twice: for the baseline target and, on x86-64, with AVX2 enabled,
//! chosen at run time.

use super::{Rows, Scratch};
use crate::plan::{Plan, TileJob};

/// Whether `plan` can use this path.
pub fn supports(plan: &Plan) -> bool {
    plan.layout.depth == crate::Depth::U8 && !plan.arith.alpha
}

#[inline(always)]
fn round_shift32(acc: i32, sh: u32) -> i32 {
    if sh == 0 {
        acc
    } else {
        (acc + (1 << (sh - 1))) >> sh
    }
}

#[inline(always)]
fn tile_impl(plan: &Plan, src: &dyn Rows, job: &TileJob, s: &mut Scratch, out: &mut [u8]) {
    if plan.arith.vertical_first() {
        vertical_first(plan, src, job, s, out)
    } else {
        horizontal_first(plan, src, job, s, out)
    }
}

/// Rounded intermediate (|t| < 2^10, accumulators < 2^25). The intermediate is stored
/// column-major (`(x·ch + c)·oh + j`), so that pass 2, horizontal in the image, runs down
/// contiguous columns of `oh` values — vectorised like pass 1.
#[inline(always)]
fn vertical_first(plan: &Plan, src: &dyn Rows, job: &TileJob, s: &mut Scratch, out: &mut [u8]) {
    let ch = plan.layout.channels.count();
    let ar = &plan.arith;
    let (sh1, k2, max) = (ar.plain.sh1, ar.plain.k2, ar.max as i32);
    let (oh, ow) = (job.out.h as usize, job.out.w as usize);
    let wstride = job.src.w as usize * ch;
    let (sx, sy) = (job.src.x as usize, job.src.y as usize);
    s.inter.clear();
    s.inter.resize(oh * wstride, 0);
    let acc = &mut s.acc32;
    acc.clear();
    acc.resize(wstride.max(oh), 0);
    // Pass 1: vertical, whole window rows at a time, straight from the source bytes.
    for j in 0..oh {
        let oy = job.out.y + j as u32;
        let start = plan.y.start(oy) as usize - sy;
        let acc = &mut acc[..wstride];
        acc.fill(0);
        for (k, &wk) in plan.y.weights(oy).iter().enumerate() {
            let row = &src.row((sy + start + k) as u32)[sx * ch..sx * ch + wstride];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v as i32 * wk;
            }
        }
        for (x, &a) in acc.iter().enumerate() {
            s.inter[x * oh + j] = round_shift32(a, sh1);
        }
    }
    // Pass 2: horizontal, one output column and channel at a time, down the tile, into a
    // column-major byte buffer; then one blocked transpose into the row-major tile.
    let half = if k2 == 0 { 0 } else { 1 << (k2 - 1) };
    let acc = &mut acc[..oh];
    let cols = ow * ch;
    s.bytes.clear();
    s.bytes.resize(cols * oh, 0);
    for i in 0..ow {
        let ox = job.out.x + i as u32;
        let start = plan.x.start(ox) as usize - sx;
        let w = plan.x.weights(ox);
        for c in 0..ch {
            acc.fill(0);
            for (k, &wk) in w.iter().enumerate() {
                let col = &s.inter[((start + k) * ch + c) * oh..][..oh];
                for (a, &t) in acc.iter_mut().zip(col) {
                    *a += t * wk;
                }
            }
            for (o, &a) in s.bytes[(i * ch + c) * oh..][..oh].iter_mut().zip(acc.iter()) {
                *o = ((a + half) >> k2).clamp(0, max) as u8;
            }
        }
    }
    let tile_row = plan.tile as usize * ch;
    out.fill(0);
    transpose_into(&s.bytes, cols, oh, out, tile_row);
}

/// Writes `src`, `cols` columns of `rows` bytes each (column-major), into the first `cols`
/// bytes of the first `rows` rows of `out` (row stride `stride`): in 16x16 blocks through
/// fixed-size arrays (no bounds checks inside a block, byte shuffles for the compiler).
#[inline(always)]
fn transpose_into(src: &[u8], cols: usize, rows: usize, out: &mut [u8], stride: usize) {
    const B: usize = 16;
    let (full_c, full_r) = (cols / B * B, rows / B * B);
    for x0 in (0..full_c).step_by(B) {
        for j0 in (0..full_r).step_by(B) {
            let mut blk = [[0u8; B]; B];
            for (r, b) in blk.iter_mut().enumerate() {
                b.copy_from_slice(&src[(x0 + r) * rows + j0..][..B]);
            }
            for jj in 0..B {
                let mut row = [0u8; B];
                for (r, v) in row.iter_mut().enumerate() {
                    *v = blk[r][jj];
                }
                out[(j0 + jj) * stride + x0..][..B].copy_from_slice(&row);
            }
        }
    }
    // Ragged right and bottom edges.
    for j in 0..rows {
        let xs = if j < full_r { full_c } else { 0 };
        for x in xs..cols {
            out[j * stride + x] = src[x * rows + j];
        }
    }
}

/// Exact intermediate (pass 1 horizontal).
#[inline(always)]
fn horizontal_first(plan: &Plan, src: &dyn Rows, job: &TileJob, s: &mut Scratch, out: &mut [u8]) {
    let ch = plan.layout.channels.count();
    let ar = &plan.arith;
    let (sh1, k2, max) = (ar.plain.sh1, ar.plain.k2, ar.max as i32);
    let tw = job.out.w as usize;
    let stride = tw * ch;
    let (sx, sy) = (job.src.x as usize, job.src.y as usize);
    s.inter.clear();
    s.inter.resize(job.src.h as usize * stride, 0);
    // Pass 1: horizontal, straight from the source bytes.
    for r in 0..job.src.h as usize {
        let row = &src.row((sy + r) as u32)[sx * ch..(sx + job.src.w as usize) * ch];
        let trow = &mut s.inter[r * stride..(r + 1) * stride];
        for i in 0..tw {
            let ox = job.out.x + i as u32;
            let start = plan.x.start(ox) as usize - sx;
            let w = plan.x.weights(ox);
            let px = &row[start * ch..(start + w.len()) * ch];
            for c in 0..ch {
                let mut acc = 0i32;
                for (k, &wk) in w.iter().enumerate() {
                    acc += px[k * ch + c] as i32 * wk;
                }
                trow[i * ch + c] = round_shift32(acc, sh1);
            }
        }
    }
    // Pass 2: vertical, whole rows at a time (the vectorised part).
    let tile_row = plan.tile as usize * ch;
    out.fill(0);
    let acc = &mut s.acc32;
    acc.clear();
    acc.resize(stride, 0);
    for j in 0..job.out.h as usize {
        let oy = job.out.y + j as u32;
        let start = plan.y.start(oy) as usize - sy;
        acc.fill(0);
        for (k, &wk) in plan.y.weights(oy).iter().enumerate() {
            let trow = &s.inter[(start + k) * stride..(start + k + 1) * stride];
            for (a, &t) in acc.iter_mut().zip(trow) {
                *a += t * wk;
            }
        }
        let half = if k2 == 0 { 0 } else { 1 << (k2 - 1) };
        for (o, &a) in out[j * tile_row..j * tile_row + stride].iter_mut().zip(acc.iter()) {
            *o = ((a + half) >> k2).clamp(0, max) as u8;
        }
    }
}

fn tile_baseline(plan: &Plan, src: &dyn Rows, job: &TileJob, s: &mut Scratch, out: &mut [u8]) {
    tile_impl(plan, src, job, s, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tile_avx2(plan: &Plan, src: &dyn Rows, job: &TileJob, s: &mut Scratch, out: &mut [u8]) {
    tile_impl(plan, src, job, s, out)
}

/// Which instruction set the fast path uses on this machine.
pub fn isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        return "avx2";
    }
    "baseline"
}

/// Computes one tile; same contract as [`super::native::resample_tile`].
pub fn resample_tile(plan: &Plan, src: &dyn Rows, job: &TileJob, s: &mut Scratch, out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `tile_avx2` only differs from `tile_baseline` in being compiled with AVX2
        // enabled; the CPU was just checked to support AVX2.
        return unsafe { tile_avx2(plan, src, job, s, out) };
    }
    tile_baseline(plan, src, job, s, out)
}

/// The baseline build, for tests that compare every variant with the reference.
pub fn resample_tile_baseline(plan: &Plan, src: &dyn Rows, job: &TileJob, s: &mut Scratch, out: &mut [u8]) {
    tile_baseline(plan, src, job, s, out)
}
