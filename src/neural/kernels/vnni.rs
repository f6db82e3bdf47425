//! The VNNI micro-kernels: `vpdpwssd` multiplies 16 pairs of 16-bit values, adds each pair
//! and accumulates into 32 bits (wrapping) in one instruction — `vpmaddwd` + `vpaddd` fused.
//! Same sums as `native.rs`, so the same bits. Two encodings of the one instruction: AVX-VNNI
//! (VEX; Intel's Alder Lake and later) and AVX512-VNNI with AVX512VL on 256-bit registers
//! (EVEX; AMD Zen 4 and later, Intel's Xeons since Cascade Lake), which CPUs may have apart.

use super::PX;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// [`super::native::block`], for CPUs with AVX-VNNI. Checks its bounds, then runs unchecked.
#[cfg(target_arch = "x86_64")]
pub(super) fn block<const MR: usize>(
    panel: &[i32],
    np: usize,
    p0: usize,
    w: &[i32],
    (o0, k2): (usize, usize),
    acc: &mut [[i32; PX]; MR],
) {
    assert!(super::Kernel::AvxVnni.runs_here(), "the AVX-VNNI kernel was chosen on a CPU without it");
    super::check_block(panel, np, p0, w, (o0, k2), MR);
    // SAFETY: AVX2 and AVX-VNNI are present (`runs_here`, above), and `inner` reads `panel` at
    // `k·np + p0 .. + PX` and `w` at `(o0 + o)·k2 + k` for `k < k2`, `o < MR`: both within the
    // slices by `check_block`.
    unsafe { inner::<MR>(panel.as_ptr(), np, p0, w.as_ptr(), (o0, k2), acc) }
}

/// The block kernel, once per encoding of `vpdpwssd`: `$name`, compiled with `$features`,
/// accumulating with the intrinsic `$dp`.
///
/// # Safety (of the functions it makes)
/// The CPU has the features, `panel` points to at least `(k2 - 1)·np + p0 + 16` readable
/// values and `w` to at least `(o0 + MR)·k2` (what `check_block` checks before the call).
macro_rules! vnni_inner {
    ($name:ident, $features:literal, $dp:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name<const MR: usize>(
            panel: *const i32,
            np: usize,
            p0: usize,
            w: *const i32,
            (o0, k2): (usize, usize),
            acc: &mut [[i32; PX]; MR],
        ) {
            let mut a = [[_mm256_setzero_si256(); 2]; MR];
            for k in 0..k2 {
                // SAFETY: within the panel and the weights (see the callers); unaligned loads.
                unsafe {
                    let col = panel.add(k * np + p0);
                    let c0 = _mm256_loadu_si256(col as *const __m256i);
                    let c1 = _mm256_loadu_si256(col.add(8) as *const __m256i);
                    for (o, a) in a.iter_mut().enumerate() {
                        let pair = _mm256_set1_epi32(*w.add((o0 + o) * k2 + k));
                        a[0] = $dp(a[0], c0, pair);
                        a[1] = $dp(a[1], c1, pair);
                    }
                }
            }
            // SAFETY: AVX2 is enabled in this function.
            unsafe { super::avx2::flush(acc, a) }
        }
    };
}

vnni_inner!(inner, "avx2,avxvnni", _mm256_dpwssd_avx_epi32);
vnni_inner!(inner_evex, "avx2,avx512f,avx512vnni,avx512vl", _mm256_dpwssd_epi32);

/// [`block`], for CPUs with AVX512-VNNI and AVX512VL (the EVEX encoding, 256-bit registers).
#[cfg(target_arch = "x86_64")]
pub(super) fn block_evex<const MR: usize>(
    panel: &[i32],
    np: usize,
    p0: usize,
    w: &[i32],
    (o0, k2): (usize, usize),
    acc: &mut [[i32; PX]; MR],
) {
    assert!(super::Kernel::Avx512Vnni.runs_here(), "the AVX512-VNNI kernel was chosen on a CPU without it");
    super::check_block(panel, np, p0, w, (o0, k2), MR);
    // SAFETY: AVX2, AVX512F, AVX512-VNNI and AVX512VL are present (`runs_here`, above), and `inner_evex`
    // reads what `inner` reads: within the slices by `check_block`.
    unsafe { inner_evex::<MR>(panel.as_ptr(), np, p0, w.as_ptr(), (o0, k2), acc) }
}
