//! The AVX2 micro-kernel: `vpmaddwd` multiplies 16 pairs of 16-bit values and adds each pair
//! into 32 bits (16 multiply-adds per instruction, twice f32 FMA's 8), `vpaddd` accumulates
//! with wrapping. Same sums as `native.rs`, in the same integer ring, so the same bits.

use super::PX;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// [`super::native::block`], for CPUs with AVX2. Checks its bounds, then runs unchecked.
#[cfg(target_arch = "x86_64")]
pub(super) fn block<const MR: usize>(
    panel: &[i32],
    np: usize,
    p0: usize,
    w: &[i32],
    (o0, k2): (usize, usize),
    acc: &mut [[i32; PX]; MR],
) {
    assert!(is_x86_feature_detected!("avx2"), "the AVX2 kernel was chosen on a CPU without AVX2");
    super::check_block(panel, np, p0, w, (o0, k2), MR);
    // SAFETY: AVX2 is present (checked above), and `inner` reads `panel` at
    // `k·np + p0 .. + PX` and `w` at `(o0 + o)·k2 + k` for `k < k2`, `o < MR`: both
    // within the slices by `check_block`.
    unsafe { inner::<MR>(panel.as_ptr(), np, p0, w.as_ptr(), (o0, k2), acc) }
}

/// The block kernel itself.
///
/// # Safety
/// The CPU has AVX2, `panel` points to at least `(k2 - 1)·np + p0 + 16` readable values and
/// `w` to at least `(o0 + MR)·k2` (what `check_block` checks before the call).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn inner<const MR: usize>(
    panel: *const i32,
    np: usize,
    p0: usize,
    w: *const i32,
    (o0, k2): (usize, usize),
    acc: &mut [[i32; PX]; MR],
) {
    let mut a = [[_mm256_setzero_si256(); 2]; MR];
    for k in 0..k2 {
        // SAFETY: within the panel and the weights (see `block`); unaligned loads.
        unsafe {
            let col = panel.add(k * np + p0);
            let c0 = _mm256_loadu_si256(col as *const __m256i);
            let c1 = _mm256_loadu_si256(col.add(8) as *const __m256i);
            for (o, a) in a.iter_mut().enumerate() {
                let pair = _mm256_set1_epi32(*w.add((o0 + o) * k2 + k));
                a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(c0, pair));
                a[1] = _mm256_add_epi32(a[1], _mm256_madd_epi16(c1, pair));
            }
        }
    }
    // SAFETY: AVX2 is enabled in this function.
    unsafe { flush(acc, a) }
}

/// Adds the two 8-lane accumulators of each channel into `acc`.
/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn flush<const MR: usize>(acc: &mut [[i32; PX]; MR], a: [[__m256i; 2]; MR]) {
    for (dst, a) in acc.iter_mut().zip(a) {
        let mut lanes = [0i32; PX];
        // SAFETY: `lanes` holds 16 i32 = two 256-bit stores; unaligned stores.
        unsafe {
            _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, a[0]);
            _mm256_storeu_si256(lanes.as_mut_ptr().add(8) as *mut __m256i, a[1]);
        }
        for (d, l) in dst.iter_mut().zip(lanes) {
            *d = d.wrapping_add(l);
        }
    }
}

/// [`super::Panel::run`] compiled for AVX2: what inlines into it (filling the panel,
/// rounding the sums) is vectorised with AVX2's instructions rather than the baseline's
/// SSE2. The same integer operations either way.
#[cfg(target_arch = "x86_64")]
pub(super) fn panel(
    job: &super::Panel<'_>,
    panel: &mut [i32],
    sums: &mut [i32],
    dst: Vec<&mut [i16]>,
    finish: &impl Fn(usize, &mut [i32]),
) {
    assert!(is_x86_feature_detected!("avx2"), "the AVX2 path was chosen on a CPU without it");
    // SAFETY: AVX2 is present (checked above); `Panel::run` is safe code.
    unsafe { panel_avx2(job, panel, sums, dst, finish) }
}

/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn panel_avx2(
    job: &super::Panel<'_>,
    panel: &mut [i32],
    sums: &mut [i32],
    dst: Vec<&mut [i16]>,
    finish: &impl Fn(usize, &mut [i32]),
) {
    job.run(panel, sums, dst, finish)
}

/// [`super::wide_panel`] compiled for AVX2, as [`panel`] is.
#[cfg(target_arch = "x86_64")]
pub(super) fn wide_panel(
    jobs: &[super::Panel<'_>; 2],
    panel: &mut [i32],
    sums: (&mut [i32], &mut [i32]),
    dst: Vec<&mut [i32]>,
    finish: &impl Fn(usize, &[i32], &[i32], &mut [i32]),
) {
    assert!(is_x86_feature_detected!("avx2"), "the AVX2 path was chosen on a CPU without it");
    // SAFETY: AVX2 is present (checked above); `wide_panel` is safe code.
    unsafe { wide_panel_avx2(jobs, panel, sums, dst, finish) }
}

/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn wide_panel_avx2(
    jobs: &[super::Panel<'_>; 2],
    panel: &mut [i32],
    sums: (&mut [i32], &mut [i32]),
    dst: Vec<&mut [i32]>,
    finish: &impl Fn(usize, &[i32], &[i32], &mut [i32]),
) {
    super::wide_panel(jobs, panel, sums, dst, finish)
}
