//! The fixed-point arithmetic contract. Every backend (the scalar reference, SIMD paths, the
//! GPU shaders) computes exactly these integer formulas, so their outputs are bit-identical.
//!
//! Per channel, a *sample* `s` is the input value, premultiplied for colour channels of layouts
//! with alpha (`s = c * a`, scale `D²`; the alpha channel itself keeps scale `D`, `D` = 255 or
//! 65535). With `W` weight bits and `T` intermediate bits:
//!
//! * pass 1 (horizontal): `acc = Σ s·wx` (i64), `t = (acc + 2^(sh1-1)) >> sh1` stored as i32,
//!   `sh1 = W + bits(M) - Tc` where `M` is the channel's scale and `Tc` its intermediate bits
//!   (`T` for plain channels, `min(T + bits(D), 29)` for premultiplied colour, so that 8-bit
//!   premultiplied samples lose nothing);
//! * pass 2 (vertical): `acc2 = Σ t·wy` (i64);
//! * plain channels: `out = clamp((acc2 + 2^(k-1)) >> k, 0, D)`, `k = W + Tc - bits(M)`;
//! * premultiplied colour: `0` where the output alpha is 0, else
//!   `clamp((2n + d) / (2d), 0, D)` with `n = max(acc2,0) << nsh`, `d = acc2_alpha >> dsh`,
//!   where `nsh + dsh = k_alpha - k_colour` (0 + 0 for 8-bit, 8 + 8 for 16-bit).
//!
//! The bounds (|t| < 2^31, |acc| < 2^63) hold for every filter because weight rows sum to one
//! and their absolute sums stay below 2.
//!
//! [`Intermediate::Rounded`] changes two things and nothing else: `T` becomes `bits(D)` (the
//! intermediate is rounded to whole output steps, unclamped, as libvips and Pillow do), and pass 1
//! runs *vertically* (pass 2 horizontally). The formulas above are otherwise unchanged, so every
//! backend that implements them for either order reproduces the reference.

use crate::pixel::{Depth, Layout};

/// Precision parameters of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Precision {
    /// Fractional bits of the weights.
    pub w_bits: u32,
    /// Significant bits of the intermediate.
    pub t_bits: u32,
}

impl Precision {
    /// The precision used for a depth: 8-bit (14, 14) keeps every product inside i32 for
    /// SIMD paths; 16-bit (22, 29) keeps the error well under one LSB.
    pub fn for_depth(d: Depth) -> Precision {
        Precision::of(d, Intermediate::Exact)
    }

    /// The precision of a depth in an intermediate mode: [`Intermediate::Rounded`] keeps the
    /// weight bits and sets the intermediate to the depth's own bits.
    pub fn of(d: Depth, mode: Intermediate) -> Precision {
        let w_bits = match d {
            Depth::U8 => 14,
            Depth::U16 => 22,
        };
        let t_bits = match (mode, d) {
            (Intermediate::Rounded, _) => d.bits(),
            (Intermediate::Exact, Depth::U8) => 14,
            (Intermediate::Exact, Depth::U16) => 29,
        };
        Precision { w_bits, t_bits }
    }
}

/// What the value between the two passes keeps.
///
/// ```
/// use gigascale::Intermediate;
/// assert_eq!(Intermediate::default(), Intermediate::Exact);
/// assert_eq!("rounded".parse::<Intermediate>().unwrap(), Intermediate::Rounded);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum Intermediate {
    /// 14 (8-bit) or 29 (16-bit) fractional bits, horizontal pass first: every sample is
    /// within half a step of the exact filter output, plus the weights' own rounding.
    #[default]
    Exact,
    /// Rounded to whole output steps between the passes, vertical pass first (what libvips
    /// and Pillow do with 8-bit images). Samples stay within about 1.25 steps of the exact value;
    /// neighbouring rows share their rounding, so zstd/deflate files come out a third to two
    /// fifths smaller.
    Rounded,
}

impl Intermediate {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Intermediate::Exact => "exact",
            Intermediate::Rounded => "rounded",
        }
    }
}

impl std::str::FromStr for Intermediate {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "exact" => Ok(Intermediate::Exact),
            "rounded" => Ok(Intermediate::Rounded),
            _ => Err(format!("unknown intermediate mode {s:?} (exact, rounded)")),
        }
    }
}

/// Per-channel shifts derived from a layout and precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelMath {
    /// Right shift after pass 1.
    pub sh1: u32,
    /// Right shift of the final rounding (plain channels).
    pub k2: u32,
    /// Whether this channel is premultiplied colour.
    pub premultiplied: bool,
    /// Significant bits of this channel's intermediate (`Tc`).
    pub t_bits: u32,
}

/// The arithmetic of a whole layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Arith {
    /// Precision in force.
    pub prec: Precision,
    /// Channel count.
    pub channels: usize,
    /// Whether the last channel is alpha.
    pub alpha: bool,
    /// Largest sample value.
    pub max: u32,
    /// `bits(D)`.
    pub depth_bits: u32,
    /// Math of colour channels (premultiplied when the layout has alpha).
    pub colour: ChannelMath,
    /// Left shift of the colour accumulator when unpremultiplying.
    pub n_shift: u32,
    /// Right shift of the alpha accumulator when unpremultiplying.
    pub d_shift: u32,
    /// Math of the alpha channel (or equal to `colour` without alpha).
    pub plain: ChannelMath,
    /// The intermediate mode; [`Intermediate::Rounded`] also means pass 1 is vertical.
    pub mode: Intermediate,
}

impl Arith {
    /// The arithmetic for a layout, exact intermediate.
    pub fn new(layout: Layout) -> Arith {
        Arith::with_mode(layout, Intermediate::Exact)
    }

    /// The arithmetic for a layout in an intermediate mode.
    pub fn with_mode(layout: Layout, mode: Intermediate) -> Arith {
        let prec = Precision::of(layout.depth, mode);
        let db = layout.depth.bits();
        let alpha = layout.channels.has_alpha();
        let mk = |mbits: u32, tbits: u32, premultiplied| ChannelMath {
            sh1: prec.w_bits + mbits - tbits,
            k2: prec.w_bits + tbits - mbits,
            premultiplied,
            t_bits: tbits,
        };
        let plain = mk(db, prec.t_bits, false);
        let colour = if alpha { mk(2 * db, (prec.t_bits + db).min(29), true) } else { plain };
        let e = plain.k2 - colour.k2.min(plain.k2);
        Arith {
            prec,
            channels: layout.channels.count(),
            alpha,
            max: layout.depth.max_value(),
            depth_bits: db,
            colour,
            plain,
            n_shift: e / 2,
            d_shift: e - e / 2,
            mode,
        }
    }

    /// Whether pass 1 runs vertically (down the window's columns).
    #[inline]
    pub fn vertical_first(&self) -> bool {
        self.mode == Intermediate::Rounded
    }

    /// The math of channel `c`.
    #[inline]
    pub fn channel(&self, c: usize) -> ChannelMath {
        if self.alpha && c + 1 < self.channels {
            self.colour
        } else {
            self.plain
        }
    }
}

/// Rounds `acc / 2^sh` half up.
#[inline(always)]
pub(crate) fn round_shift(acc: i64, sh: u32) -> i64 {
    if sh == 0 {
        acc
    } else {
        (acc + (1i64 << (sh - 1))) >> sh
    }
}

/// Final value of a plain (or alpha) channel.
#[inline(always)]
pub(crate) fn finish_plain(acc2: i64, k2: u32, max: u32) -> u32 {
    round_shift(acc2, k2).clamp(0, max as i64) as u32
}

/// Final value of a premultiplied colour channel given the alpha channel's accumulator.
#[inline(always)]
pub(crate) fn finish_unpremultiply(acc2: i64, acc2_alpha: i64, alpha_out: u32, ar: &Arith) -> u32 {
    if alpha_out == 0 || acc2 <= 0 {
        return 0;
    }
    let max = ar.max;
    let n = acc2 << ar.n_shift;
    let d = acc2_alpha >> ar.d_shift;
    ((2 * n + d) / (2 * d)).clamp(0, max as i64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixel::Channels;

    #[test]
    fn shifts() {
        let a = Arith::new(Layout::new(Channels::Rgba, Depth::U8));
        assert_eq!((a.colour.sh1, a.colour.k2, a.plain.sh1, a.plain.k2), (8, 20, 8, 20));
        assert_eq!((a.n_shift, a.d_shift), (0, 0));
        let b = Arith::new(Layout::new(Channels::Rgb, Depth::U16));
        assert_eq!((b.plain.sh1, b.plain.k2), (9, 35));
        let c = Arith::new(Layout::new(Channels::GrayAlpha, Depth::U16));
        assert_eq!((c.colour.sh1, c.colour.k2, c.n_shift, c.d_shift), (25, 19, 8, 8));
    }

    #[test]
    fn identity_round_trips() {
        // A single tap of weight one must reproduce every value exactly.
        // 8-bit is exact at every alpha; 16-bit premultiplied intermediates keep 29 of the
        // product's 32 bits, so colour is exact from alpha 8 up.
        for (layout, amin) in
            [(Layout::new(Channels::Rgba, Depth::U8), 1), (Layout::new(Channels::GrayAlpha, Depth::U16), 8)]
        {
            let ar = Arith::new(layout);
            let one = 1i64 << ar.prec.w_bits;
            for a in [amin, 9, ar.max / 2, ar.max] {
                for c in [0u32, 1, ar.max / 3, ar.max] {
                    let ta = round_shift(a as i64 * one, ar.plain.sh1);
                    let tc = round_shift((c as i64 * a as i64) * one, ar.colour.sh1);
                    let aa = ta * one;
                    let ac = tc * one;
                    let ao = finish_plain(aa, ar.plain.k2, ar.max);
                    assert_eq!(ao, a);
                    assert_eq!(finish_unpremultiply(ac, aa, ao, &ar), c, "a={a} c={c}");
                }
            }
        }
    }
}
