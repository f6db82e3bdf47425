//! Fast integer convolution for the exact engine: im2col into small panels, then a
//! register-blocked micro-kernel over pairs of 16-bit values (`native.rs`, the scalar
//! reference, always present; `avx2.rs` where the CPU has it). Every kernel computes the same
//! wrapping 32-bit sums, so the result does not depend on the kernel, the panel size or the
//! thread count.
//!
//! A convolution's taps are paired by input channel: pair `k = (ky·K + kx)·⌈cin/2⌉ + j` holds
//! channels `2j` (low half) and `2j + 1` (high half; zero past an odd channel count) at kernel
//! position `(ky, kx)`. A panel holds, for [`CHUNK`] output pixels, every pair of every pixel,
//! one `i32` each: `panel[k·CHUNK + p]` (zero for taps in the image's zero padding). Filling it
//! interleaves two contiguous rows, which vectorises.

mod avx2;
mod native;
mod vnni;

use super::graph::Conv;
use super::reference::Tensor;
use rayon::prelude::*;

/// Pixels of one micro-kernel call.
const PX: usize = 16;
/// Output pixels of one panel (a unit of parallel work).
const CHUNK: usize = 4 * PX;
/// Output channels of one micro-kernel call (the last call of a layer takes the rest).
const MR: usize = 6;

/// Which micro-kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Portable scalar code.
    Native,
    /// x86-64 AVX2.
    Avx2,
    /// x86-64 AVX2 with AVX-VNNI (fused 16-bit multiply-add-accumulate).
    AvxVnni,
    /// x86-64 AVX2 with AVX512-VNNI and AVX512VL: the same instruction, EVEX-encoded.
    Avx512Vnni,
}

impl Kernel {
    /// Every kernel, fastest first.
    const ALL: [Kernel; 4] = [Kernel::AvxVnni, Kernel::Avx512Vnni, Kernel::Avx2, Kernel::Native];

    /// Whether this CPU runs the kernel (what each kernel's `block` asserts).
    fn runs_here(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2");
            match self {
                Kernel::Native => true,
                Kernel::Avx2 => avx2,
                Kernel::AvxVnni => avx2 && is_x86_feature_detected!("avxvnni"),
                Kernel::Avx512Vnni => {
                    let evex = is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl");
                    avx2 && evex && is_x86_feature_detected!("avx512vnni")
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Kernel::Native
        }
    }

    /// The fastest kernel this CPU runs.
    pub(crate) fn best() -> Kernel {
        Kernel::ALL.into_iter().find(|k| k.runs_here()).unwrap_or(Kernel::Native)
    }

    /// Every kernel this CPU runs (for tests that compare them).
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Kernel> {
        Kernel::ALL.into_iter().filter(|k| k.runs_here()).collect()
    }

    fn block<const M: usize>(
        self,
        panel: &[i32],
        np: usize,
        p0: usize,
        w: &[i32],
        ok: (usize, usize),
        acc: &mut [[i32; PX]; M],
    ) {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => avx2::block(panel, np, p0, w, ok, acc),
            #[cfg(target_arch = "x86_64")]
            Kernel::AvxVnni => vnni::block(panel, np, p0, w, ok, acc),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => vnni::block_evex(panel, np, p0, w, ok, acc),
            _ => native::block(panel, np, p0, w, ok, acc),
        }
    }
}

/// Bytes of the largest panel any layer of `g` fills (one per thread).
pub(crate) fn panel_bytes(g: &super::graph::Graph) -> u64 {
    let pairs = g.nodes.iter().filter_map(|n| match &n.op {
        super::graph::Op::Conv(c) => Some(c.kernel * c.kernel * c.cin.div_ceil(2)),
        _ => None,
    });
    (pairs.max().unwrap_or(0) * CHUNK * 4) as u64
}

/// Panics unless a micro-kernel call for `mr` channels from `o0`, `k2` pairs, pixels
/// `p0 .. p0 + PX` of a panel of `np` pixels reads within `panel` and `w`: what the unchecked
/// SIMD kernels rely on.
#[cfg(target_arch = "x86_64")]
fn check_block(panel: &[i32], np: usize, p0: usize, w: &[i32], (o0, k2): (usize, usize), mr: usize) {
    assert!(k2 == 0 || (k2 - 1) * np + p0 + PX <= panel.len(), "panel too short");
    assert!((o0 + mr) * k2 <= w.len(), "weights too short");
}

/// A convolution's weights as pairs of 16-bit values packed in `i32` (low half: tap `2k`),
/// `[output channel][pair]`.
#[derive(Debug, Clone)]
pub(crate) struct Packed {
    pairs: Vec<i32>,
    /// Pairs per output channel.
    k2: usize,
    cout: usize,
}

impl Packed {
    /// Packs `w` (`[out][in][kh][kw]` of a `kernel x kernel` convolution, each within ±32767)
    /// in the panel's pair order.
    pub(super) fn new(w: &[i32], cout: usize, cin: usize, kernel: usize) -> Packed {
        let (kk, cin2) = (kernel * kernel, cin.div_ceil(2));
        let k2 = kk * cin2;
        let mut pairs = Vec::with_capacity(cout * k2);
        let half =
            |o: usize, q: usize, t: usize| if q < cin { w[(o * cin + q) * kk + t] as i16 as u16 as u32 } else { 0 };
        for o in 0..cout {
            for t in 0..kk {
                for j in 0..cin2 {
                    pairs.push((half(o, 2 * j, t) | half(o, 2 * j + 1, t) << 16) as i32);
                }
            }
        }
        Packed { pairs, k2, cout }
    }
}

/// Where output pixel `p` of a conv's output window reads tap `(q, ky, kx)`: a function of the
/// window geometry, shared by every panel.
struct Taps<'a> {
    c: &'a Conv,
    x: &'a Tensor<i16>,
    out: (usize, usize, usize),
}

impl Taps<'_> {
    /// Fills `panel` for output pixels `first..first + n` (row-major in the output window):
    /// per run of pixels along one output row, each tap is a contiguous stretch of its input
    /// rows (cut where it leaves the image, where the padding reads zero).
    #[inline(always)]
    fn fill(&self, panel: &mut [i32], first: usize, n: usize) {
        let (c, x) = (self.c, self.x);
        let (ox0, oy0, ow) = self.out;
        let (cin2, plane) = (c.cin.div_ceil(2), x.h * x.w);
        panel.fill(0);
        let mut p = 0;
        while p < n {
            let (oy, ox) = ((first + p) / ow, (first + p) % ow);
            let run = (ow - ox).min(n - p);
            for ky in 0..c.kernel {
                let gy = (oy0 + oy + ky * c.dilation) as isize - c.pad[1] as isize;
                if gy < 0 || gy >= x.gh as isize {
                    continue;
                }
                let row = (gy as usize - x.y0) * x.w;
                for kx in 0..c.kernel {
                    let gx = (ox0 + ox + kx * c.dilation) as isize - c.pad[0] as isize;
                    let lo = (-gx).clamp(0, run as isize) as usize;
                    let hi = (x.gw as isize - gx).clamp(lo as isize, run as isize) as usize;
                    if lo == hi {
                        continue;
                    }
                    let at = row + (gx + lo as isize) as usize - x.x0;
                    let t = ky * c.kernel + kx;
                    for j in 0..cin2 {
                        let dst = &mut panel[(t * cin2 + j) * CHUNK + p + lo..][..hi - lo];
                        let a = &x.data[2 * j * plane + at..][..hi - lo];
                        if 2 * j + 1 < c.cin {
                            let b = &x.data[(2 * j + 1) * plane + at..][..hi - lo];
                            for ((d, &a), &b) in dst.iter_mut().zip(a).zip(b) {
                                *d = (a as u16 as u32 | (b as u16 as u32) << 16) as i32;
                            }
                        } else {
                            for (d, &a) in dst.iter_mut().zip(a) {
                                *d = a as u16 as i32;
                            }
                        }
                    }
                }
            }
            p += run;
        }
    }
}

/// A stride-1 convolution of `x` (values within ±32767) by `w`, over the output window
/// `(x0, w, global w) x (y0, h, global h)` (see `reference::conv_range`), on the current rayon
/// pool: each output channel's row of sums of taps (wrapping 32-bit) is passed to
/// `finish(channel, row)`, which turns it into outputs in place.
pub(crate) fn conv(
    kernel: Kernel,
    c: &Conv,
    w: &Packed,
    x: &Tensor<i16>,
    window: [(usize, usize, usize); 2],
    finish: impl Fn(usize, &mut [i32]) + Sync,
) -> Tensor<i16> {
    let [(ox0, ow, gw), (oy0, oh, gh)] = window;
    let mut out = Tensor::window(c.cout, (ox0, ow, gw), (oy0, oh, gh));
    let n = ow * oh;
    let taps = Taps { c, x, out: (ox0, oy0, ow.max(1)) };
    pieces(&mut out.data, n, c.cout).into_par_iter().enumerate().for_each_init(
        || (vec![0i32; w.k2 * CHUNK], vec![0i32; w.cout * CHUNK]),
        |(panel, sums), (i, dst)| {
            let len = (n - i * CHUNK).min(CHUNK);
            let job = Panel { kernel, taps: &taps, w, first: i * CHUNK, len };
            match kernel {
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx2 | Kernel::AvxVnni | Kernel::Avx512Vnni => avx2::panel(&job, panel, sums, dst, &finish),
                _ => job.run(panel, sums, dst, &finish),
            }
        },
    );
    out
}

/// The output's planes (`cout` of `n` values) cut into each panel's pixels: per panel, its
/// piece of every channel plane (disjoint slices, written without a copy).
fn pieces<T>(data: &mut [T], n: usize, cout: usize) -> Vec<Vec<&mut [T]>> {
    let mut parts: Vec<Vec<&mut [T]>> = (0..n.div_ceil(CHUNK)).map(|_| Vec::with_capacity(cout)).collect();
    for plane in data.chunks_mut(n.max(1)) {
        for (part, piece) in parts.iter_mut().zip(plane.chunks_mut(CHUNK)) {
            part.push(piece);
        }
    }
    parts
}

/// [`conv`] of values split in two, `x = 2^8·hi + lo` (`hi` and `lo` within ±32767, the same
/// window): per output channel, the rows of wrapping 32-bit sums over `hi` and over `lo` (the
/// same weights, the same order) are passed to `finish(channel, hi_sums, lo_sums, out)`,
/// which writes the row's outputs (the 24-bit activations of `wide.rs`).
pub(crate) fn conv_wide(
    kernel: Kernel,
    c: &Conv,
    w: &Packed,
    (hi, lo): (&Tensor<i16>, &Tensor<i16>),
    window: [(usize, usize, usize); 2],
    finish: impl Fn(usize, &[i32], &[i32], &mut [i32]) + Sync,
) -> Tensor<i32> {
    let [(ox0, ow, gw), (oy0, oh, gh)] = window;
    let mut out = Tensor::window(c.cout, (ox0, ow, gw), (oy0, oh, gh));
    let n = ow * oh;
    let at = (ox0, oy0, ow.max(1));
    let (taps_hi, taps_lo) = (Taps { c, x: hi, out: at }, Taps { c, x: lo, out: at });
    pieces(&mut out.data, n, c.cout).into_par_iter().enumerate().for_each_init(
        || (vec![0i32; w.k2 * CHUNK], vec![0i32; w.cout * CHUNK], vec![0i32; w.cout * CHUNK]),
        |(panel, sums_hi, sums_lo), (i, dst)| {
            let (first, len) = (i * CHUNK, (n - i * CHUNK).min(CHUNK));
            let jobs = [&taps_hi, &taps_lo].map(|taps| Panel { kernel, taps, w, first, len });
            match kernel {
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx2 | Kernel::AvxVnni | Kernel::Avx512Vnni => {
                    avx2::wide_panel(&jobs, panel, (sums_hi, sums_lo), dst, &finish)
                }
                _ => wide_panel(&jobs, panel, (sums_hi, sums_lo), dst, &finish),
            }
        },
    );
    out
}

/// One panel of [`conv_wide`]: the sums over both halves, then each channel's outputs.
/// Inlined into `avx2::wide_panel`, so that the fills are compiled for AVX2 there.
#[inline(always)]
pub(super) fn wide_panel(
    jobs: &[Panel<'_>; 2],
    panel: &mut [i32],
    (sums_hi, sums_lo): (&mut [i32], &mut [i32]),
    dst: Vec<&mut [i32]>,
    finish: &impl Fn(usize, &[i32], &[i32], &mut [i32]),
) {
    let len = jobs[0].len;
    jobs[0].sums(panel, sums_hi);
    jobs[1].sums(panel, sums_lo);
    for (o, out) in dst.into_iter().enumerate() {
        finish(o, &sums_hi[o * CHUNK..][..len], &sums_lo[o * CHUNK..][..len], out);
    }
}

/// One panel's work: fill it, run the micro-kernel over it, round the sums into the output.
pub(super) struct Panel<'a> {
    kernel: Kernel,
    taps: &'a Taps<'a>,
    w: &'a Packed,
    first: usize,
    len: usize,
}

impl Panel<'_> {
    /// Inlined into its callers, so that in `avx2::panel` the fill and the rounding are
    /// compiled for AVX2 too (the baseline's SSE2 lacks 32-bit min and max).
    #[inline(always)]
    pub(super) fn run(
        &self,
        panel: &mut [i32],
        sums: &mut [i32],
        dst: Vec<&mut [i16]>,
        finish: &impl Fn(usize, &mut [i32]),
    ) {
        let len = self.len;
        self.sums(panel, sums);
        for (o, (row, out)) in sums.chunks_exact_mut(CHUNK).zip(dst).enumerate() {
            finish(o, &mut row[..len]);
            // `finish` saturates to 16 bits.
            out.iter_mut().zip(&row[..len]).for_each(|(d, &v)| *d = v as i16);
        }
    }
}

impl Panel<'_> {
    /// Fills the panel and runs the micro-kernel over it: the wrapping sums of every output
    /// channel, `sums[channel·CHUNK + pixel]`.
    #[inline(always)]
    fn sums(&self, panel: &mut [i32], sums: &mut [i32]) {
        self.taps.fill(panel, self.first, self.len);
        chunk(self.kernel, panel, self.w, self.len, sums);
    }
}

/// One panel through the micro-kernel, `MR` channels at a time, into `sums[channel·CHUNK + pixel]`.
fn chunk(kernel: Kernel, panel: &[i32], w: &Packed, len: usize, sums: &mut [i32]) {
    let mut o0 = 0;
    while o0 < w.cout {
        let m = (w.cout - o0).min(MR);
        for p0 in (0..len).step_by(PX) {
            let mut emit = |o: usize, acc: &[i32; PX]| {
                let cnt = (len - p0).min(PX);
                for (j, &a) in acc[..cnt].iter().enumerate() {
                    sums[(o0 + o) * CHUNK + p0 + j] = a;
                }
            };
            match m {
                6 => blocked::<6>(kernel, panel, w, (o0, p0), &mut emit),
                5 => blocked::<5>(kernel, panel, w, (o0, p0), &mut emit),
                4 => blocked::<4>(kernel, panel, w, (o0, p0), &mut emit),
                3 => blocked::<3>(kernel, panel, w, (o0, p0), &mut emit),
                2 => blocked::<2>(kernel, panel, w, (o0, p0), &mut emit),
                _ => blocked::<1>(kernel, panel, w, (o0, p0), &mut emit),
            }
        }
        o0 += m;
    }
}

fn blocked<const M: usize>(
    kernel: Kernel,
    panel: &[i32],
    w: &Packed,
    (o0, p0): (usize, usize),
    emit: &mut impl FnMut(usize, &[i32; PX]),
) {
    let mut acc = [[0i32; PX]; M];
    kernel.block::<M>(panel, CHUNK, p0, &w.pairs, (o0, w.k2), &mut acc);
    for (o, a) in acc.iter().enumerate() {
        emit(o, a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_gives_the_native_sums() {
        let mut rng = crate::digest::Lcg(7);
        let mut next = || ((rng.next() >> 33) as i32 % 65535 - 32767) as i16;
        let k2 = 37;
        let panel: Vec<i32> =
            (0..k2 * CHUNK).map(|_| (next() as u16 as u32 | (next() as u16 as u32) << 16) as i32).collect();
        let w: Vec<i32> = (0..6 * k2).map(|_| (next() as u16 as u32 | (next() as u16 as u32) << 16) as i32).collect();
        let mut want = [[0i32; PX]; 6];
        native::block::<6>(&panel, CHUNK, PX, &w, (0, k2), &mut want);
        // Spot-check the reference against a plain sum.
        let plain: i64 = (0..k2)
            .map(|k| {
                let x = panel[k * CHUNK + PX + 3];
                let (x0, x1) = (x as i16 as i64, (x >> 16) as i64);
                x0 * (w[2 * k2 + k] as i16 as i64) + x1 * ((w[2 * k2 + k] >> 16) as i64)
            })
            .sum();
        assert_eq!(want[2][3], plain as i32);
        for kernel in Kernel::available() {
            let mut got = [[0i32; PX]; 6];
            kernel.block::<6>(&panel, CHUNK, PX, &w, (0, k2), &mut got);
            assert_eq!(got, want, "{kernel:?}");
        }
    }
}
