//! 8-bit grey/RGB without alpha in 32-bit integers. The fixed-point contract bounds every
//! accumulator of this layout below 2^30 (samples < 2^8, weights and the intermediate < 2^15,
//! rows of weights with |Σw| < 2), so computing in `i32` yields exactly the integers of the
//! `i64` reference in `native.rs` — and lets the compiler vectorise both passes.
//!
//! Both intermediate modes: the exact one runs pass 1 along the rows and pass 2 down whole
//! rows; the rounded one (vertical first) runs pass 1 down whole window rows and pass 2 down the
//! columns of a column-major intermediate, then puts the tile back in row order with a 16x16
//! byte transpose (SSE2 on x86-64).
//!
//! The same code is compiled twice: for the baseline target and, on x86-64, with AVX2 enabled,
//! chosen at run time.

use super::{Rows, Scratch};
use crate::plan::{Plan, TileJob};

/// Whether `plan` can use this path (8-bit grey or RGB).
pub fn supports(plan: &Plan) -> bool {
    plan.geom.layout.depth == crate::Depth::U8 && !plan.arith.alpha && matches!(plan.arith.channels, 1 | 3)
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
    let ch = plan.geom.layout.channels.count();
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
    let tile_row = plan.geom.tile as usize * ch;
    if job.out.w < plan.geom.tile || job.out.h < plan.geom.tile {
        out.fill(0); // full tiles are written whole below
    }
    transpose_into(&s.bytes, cols, oh, out, tile_row);
}

/// Writes `src`, `cols` columns of `rows` bytes each (column-major), into the first `cols`
/// bytes of the first `rows` rows of `out` (row stride `stride`), in 16x16 blocks (SSE2 byte
/// shuffles on x86-64), then the ragged edges one byte at a time.
#[inline(always)]
fn transpose_into(src: &[u8], cols: usize, rows: usize, out: &mut [u8], stride: usize) {
    const B: usize = 16;
    let (full_c, full_r) = (cols / B * B, rows / B * B);
    for x0 in (0..full_c).step_by(B) {
        for j0 in (0..full_r).step_by(B) {
            transpose16(src, rows, x0, j0, out, stride);
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

/// One 16x16 block of [`transpose_into`]: columns `x0..x0+16`, rows `j0..j0+16`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn transpose16(src: &[u8], rows: usize, x0: usize, j0: usize, out: &mut [u8], stride: usize) {
    use std::arch::x86_64::*;
    assert!((x0 + 15) * rows + j0 + 16 <= src.len() && (j0 + 15) * stride + x0 + 16 <= out.len());
    // SAFETY: SSE2 is part of the x86-64 baseline; the assert above bounds every unaligned
    // 16-byte load (src[(x0+i)·rows + j0 ..][..16], i < 16) and store
    // (out[(j0+k)·stride + x0 ..][..16], k < 16).
    unsafe {
        let z = _mm_setzero_si128();
        let mut r = [z; 16];
        for (i, v) in r.iter_mut().enumerate() {
            *v = _mm_loadu_si128(src.as_ptr().add((x0 + i) * rows + j0) as *const __m128i);
        }
        // After each stage, a vector holds for some k (columns of the block, j) a run of rows
        // (x) twice as long as before: 2, 4, 8, then all 16.
        let mut s1 = [z; 16];
        for p in 0..8 {
            s1[p] = _mm_unpacklo_epi8(r[2 * p], r[2 * p + 1]);
            s1[8 + p] = _mm_unpackhi_epi8(r[2 * p], r[2 * p + 1]);
        }
        let mut s2 = [z; 16];
        for g1 in 0..2 {
            for q in 0..4 {
                let (a, b) = (s1[g1 * 8 + 2 * q], s1[g1 * 8 + 2 * q + 1]);
                s2[2 * g1 * 4 + q] = _mm_unpacklo_epi16(a, b);
                s2[(2 * g1 + 1) * 4 + q] = _mm_unpackhi_epi16(a, b);
            }
        }
        let mut s3 = [z; 16];
        for g in 0..4 {
            for h in 0..2 {
                let (a, b) = (s2[g * 4 + 2 * h], s2[g * 4 + 2 * h + 1]);
                s3[2 * g * 2 + h] = _mm_unpacklo_epi32(a, b);
                s3[(2 * g + 1) * 2 + h] = _mm_unpackhi_epi32(a, b);
            }
        }
        for h in 0..8 {
            let (a, b) = (s3[h * 2], s3[h * 2 + 1]);
            let base = out.as_mut_ptr().add((j0 + 2 * h) * stride + x0);
            _mm_storeu_si128(base as *mut __m128i, _mm_unpacklo_epi64(a, b));
            _mm_storeu_si128(base.add(stride) as *mut __m128i, _mm_unpackhi_epi64(a, b));
        }
    }
}

/// One 16x16 block of [`transpose_into`], portable.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn transpose16(src: &[u8], rows: usize, x0: usize, j0: usize, out: &mut [u8], stride: usize) {
    const B: usize = 16;
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

/// Pass 1 of the exact order for one window row: every output column of the tile, all `CH`
/// channels of a pixel per sweep over its taps (`CH` known to the compiler: 1 or 3).
#[inline(always)]
fn horizontal_row<const CH: usize>(plan: &Plan, job: &TileJob, row: &[u8], trow: &mut [i32], sh1: u32) {
    let sx = job.src.x as usize;
    for (i, t) in trow.chunks_exact_mut(CH).enumerate() {
        let ox = job.out.x + i as u32;
        let start = plan.x.start(ox) as usize - sx;
        let w = plan.x.weights(ox);
        let px = &row[start * CH..(start + w.len()) * CH];
        let mut acc = [0i32; CH];
        for (p, &wk) in px.chunks_exact(CH).zip(w) {
            for c in 0..CH {
                acc[c] += p[c] as i32 * wk;
            }
        }
        for c in 0..CH {
            t[c] = round_shift32(acc[c], sh1);
        }
    }
}

/// Exact intermediate (pass 1 horizontal).
#[inline(always)]
fn horizontal_first(plan: &Plan, src: &dyn Rows, job: &TileJob, s: &mut Scratch, out: &mut [u8]) {
    let ch = plan.geom.layout.channels.count();
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
        match ch {
            1 => horizontal_row::<1>(plan, job, row, trow, sh1),
            _ => horizontal_row::<3>(plan, job, row, trow, sh1),
        }
    }
    // Pass 2: vertical, whole rows at a time (the vectorised part).
    let tile_row = plan.geom.tile as usize * ch;
    if job.out.w < plan.geom.tile || job.out.h < plan.geom.tile {
        out.fill(0); // full tiles are written whole below
    }
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
#[cfg(any(test, feature = "testing"))]
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
#[cfg(any(test, feature = "testing"))]
pub fn resample_tile_baseline(plan: &Plan, src: &dyn Rows, job: &TileJob, s: &mut Scratch, out: &mut [u8]) {
    tile_baseline(plan, src, job, s, out)
}
