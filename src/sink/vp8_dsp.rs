//! VP8's arithmetic for the lossy WebP encoder (`vp8.rs`): the boolean entropy coder, the 4x4
//! transforms and the 16x16 / 8x8 intra predictions.
//!
//! The inverse transforms and the predictions are the decoder's, to the bit (RFC 6386, sections
//! 12 and 14): the encoder rebuilds each macroblock exactly as every decoder will, and predicts
//! the next ones from that, so nothing drifts. The forward transforms are ours (any
//! approximation of the inverse's transpose works; quantization follows).

use std::io::Write;

/// Bytes kept back before they are written: only the last byte that is not 0xff, and the 0xff
/// bytes after it, can still change (a carry); everything before them is final.
const FLUSH_AT: usize = 1 << 16;

/// VP8's boolean entropy coder (RFC 6386, section 7), writing to `out` as it goes.
pub(super) struct BoolWriter<W: Write> {
    /// The width of the current interval, 128-255 between calls.
    range: u32,
    /// The interval's low end: 24 bits below the byte being formed, that byte, and a carry.
    low: u64,
    /// Shifts left before the byte being formed is complete.
    shifts_left: u32,
    /// Bytes that a carry may still change (see [`FLUSH_AT`]).
    tail: Vec<u8>,
    out: W,
    written: u64,
}

impl<W: Write> BoolWriter<W> {
    /// A coder writing to `out`.
    pub(super) fn new(out: W) -> BoolWriter<W> {
        BoolWriter { range: 255, low: 0, shifts_left: 24, tail: Vec::with_capacity(FLUSH_AT), out, written: 0 }
    }

    /// Codes `bit`, which is 0 with probability `prob / 256`.
    #[inline]
    pub(super) fn put(&mut self, prob: u8, bit: bool) -> std::io::Result<()> {
        let split = 1 + (((self.range - 1) * prob as u32) >> 8);
        if bit {
            self.low += split as u64;
            self.range -= split;
        } else {
            self.range = split;
        }
        while self.range < 128 {
            self.range <<= 1;
            self.low <<= 1;
            self.shifts_left -= 1;
            if self.shifts_left == 0 {
                self.shift_out_byte()?;
            }
        }
        Ok(())
    }

    /// The completed byte (bits 24-31 of `low`) into the tail, after adding the carry above it
    /// to the bytes before.
    fn shift_out_byte(&mut self) -> std::io::Result<()> {
        if self.low >> 32 != 0 {
            // A carry: the trailing 0xff bytes become 0 and the byte before them grows by one.
            // Arithmetic coding never carries past the last byte that is not 0xff, which the
            // tail always keeps.
            for b in self.tail.iter_mut().rev() {
                let (v, overflow) = b.overflowing_add(1);
                *b = v;
                if !overflow {
                    break;
                }
            }
        }
        self.tail.push((self.low >> 24) as u8);
        self.low &= 0xff_ffff;
        self.shifts_left = 8;
        if self.tail.len() >= FLUSH_AT {
            let keep = self.tail.iter().rposition(|&b| b != 0xff).unwrap_or(0);
            self.out.write_all(&self.tail[..keep])?;
            self.written += keep as u64;
            self.tail.drain(..keep);
        }
        Ok(())
    }

    /// Codes the `bits` low bits of `value`, most significant first, each with probability 1/2.
    pub(super) fn put_literal(&mut self, value: u32, bits: u32) -> std::io::Result<()> {
        for i in (0..bits).rev() {
            self.put(128, (value >> i) & 1 == 1)?;
        }
        Ok(())
    }

    /// Bytes this coder will have produced if finished now (a bound within 4 bytes).
    pub(super) fn len(&self) -> u64 {
        self.written + self.tail.len() as u64 + 4
    }

    /// Pushes the interval's last bits out (32 zero bits at probability 1/2 leave none behind)
    /// and writes the rest; returns the writer and the number of bytes written.
    pub(super) fn finish(mut self) -> std::io::Result<(W, u64)> {
        self.put_literal(0, 32)?;
        self.out.write_all(&self.tail)?;
        self.written += self.tail.len() as u64;
        self.out.flush()?;
        Ok((self.out, self.written))
    }
}

/// `round(a * k / 2^16)`-style multiplications of the inverse transform (the decoder's).
#[inline]
fn mul1(a: i32) -> i32 {
    ((a * 20091) >> 16) + a
}
#[inline]
fn mul2(a: i32) -> i32 {
    (a * 35468) >> 16
}

/// The decoder's inverse DCT of `coeffs` (dequantized, raster order) added to `pred` (4x4 at
/// `stride`), clamped, into `dst` (4x4 at `stride`).
pub(super) fn idct_add(coeffs: &[i32; 16], pred: &[u8], dst: &mut [u8], stride: usize) {
    let mut tmp = [0i32; 16];
    for i in 0..4 {
        let (c0, c4, c8, c12) = (coeffs[i], coeffs[4 + i], coeffs[8 + i], coeffs[12 + i]);
        let (a, b) = (c0 + c8, c0 - c8);
        let (c, d) = (mul2(c4) - mul1(c12), mul1(c4) + mul2(c12));
        tmp[4 * i] = a + d;
        tmp[4 * i + 1] = b + c;
        tmp[4 * i + 2] = b - c;
        tmp[4 * i + 3] = a - d;
    }
    for y in 0..4 {
        let dc = tmp[y] + 4;
        let (a, b) = (dc + tmp[8 + y], dc - tmp[8 + y]);
        let (c, d) = (mul2(tmp[4 + y]) - mul1(tmp[12 + y]), mul1(tmp[4 + y]) + mul2(tmp[12 + y]));
        for (x, v) in [a + d, b + c, b - c, a - d].into_iter().enumerate() {
            dst[y * stride + x] = (pred[y * stride + x] as i32 + (v >> 3)).clamp(0, 255) as u8;
        }
    }
}

/// cos(pi/8) * sqrt(2) and sin(pi/8) * sqrt(2) in 12-bit fixed point.
const C12: i32 = 5352;
const S12: i32 = 2217;

/// Forward DCT of a 4x4 residual (raster order) scaled as the decoder's inverse expects
/// (`idct(fdct(x)) ~ x`): `T^T x T / 2` with `T` the inverse's butterfly matrix.
pub(super) fn fdct(res: &[i32; 16]) -> [i32; 16] {
    // Rows, with 3 extra bits of precision.
    let mut tmp = [0i32; 16];
    for y in 0..4 {
        let r = &res[4 * y..4 * y + 4];
        let (a, b) = (r[0] + r[3], r[1] + r[2]);
        let (c, d) = (r[0] - r[3], r[1] - r[2]);
        tmp[4 * y] = (a + b) * 8;
        tmp[4 * y + 2] = (a - b) * 8;
        tmp[4 * y + 1] = (c * C12 + d * S12 + 256) >> 9;
        tmp[4 * y + 3] = (c * S12 - d * C12 + 256) >> 9;
    }
    // Columns, then the 3 bits and the final halving off, rounded.
    let mut out = [0i32; 16];
    for x in 0..4 {
        let (a, b) = (tmp[x] + tmp[12 + x], tmp[4 + x] + tmp[8 + x]);
        let (c, d) = (tmp[x] - tmp[12 + x], tmp[4 + x] - tmp[8 + x]);
        out[x] = (a + b + 8) >> 4;
        out[8 + x] = (a - b + 8) >> 4;
        out[4 + x] = (c * C12 + d * S12 + (1 << 15)) >> 16;
        out[12 + x] = (c * S12 - d * C12 + (1 << 15)) >> 16;
    }
    out
}

/// The decoder's inverse Walsh-Hadamard transform of the second-order block: the 16 luma
/// blocks' DC coefficients (block `i` in raster order at index `i`).
pub(super) fn iwht(c: &[i32; 16]) -> [i32; 16] {
    let mut tmp = [0i32; 16];
    for i in 0..4 {
        let (a0, a1) = (c[i] + c[12 + i], c[4 + i] + c[8 + i]);
        let (a2, a3) = (c[4 + i] - c[8 + i], c[i] - c[12 + i]);
        tmp[i] = a0 + a1;
        tmp[8 + i] = a0 - a1;
        tmp[4 + i] = a3 + a2;
        tmp[12 + i] = a3 - a2;
    }
    let mut out = [0i32; 16];
    for i in 0..4 {
        let dc = tmp[4 * i] + 3;
        let (a0, a1) = (dc + tmp[4 * i + 3], tmp[4 * i + 1] + tmp[4 * i + 2]);
        let (a2, a3) = (tmp[4 * i + 1] - tmp[4 * i + 2], dc - tmp[4 * i + 3]);
        out[4 * i] = (a0 + a1) >> 3;
        out[4 * i + 1] = (a3 + a2) >> 3;
        out[4 * i + 2] = (a0 - a1) >> 3;
        out[4 * i + 3] = (a3 - a2) >> 3;
    }
    out
}

/// Forward Walsh-Hadamard transform of the 16 DC coefficients: `H x H / 2` (the inverse is
/// `H c H / 8`, and `H H = 4 I`), rounded half away from zero.
pub(super) fn fwht(dc: &[i32; 16]) -> [i32; 16] {
    let mut tmp = [0i32; 16];
    for y in 0..4 {
        let r = &dc[4 * y..4 * y + 4];
        let (a0, a1) = (r[0] + r[3], r[1] + r[2]);
        let (a2, a3) = (r[1] - r[2], r[0] - r[3]);
        tmp[4 * y] = a0 + a1;
        tmp[4 * y + 1] = a3 + a2;
        tmp[4 * y + 2] = a0 - a1;
        tmp[4 * y + 3] = a3 - a2;
    }
    let mut out = [0i32; 16];
    for x in 0..4 {
        let (a0, a1) = (tmp[x] + tmp[12 + x], tmp[4 + x] + tmp[8 + x]);
        let (a2, a3) = (tmp[4 + x] - tmp[8 + x], tmp[x] - tmp[12 + x]);
        for (i, v) in [a0 + a1, a3 + a2, a0 - a1, a3 - a2].into_iter().enumerate() {
            out[4 * i + x] = if v >= 0 { (v + 1) >> 1 } else { -((1 - v) >> 1) };
        }
    }
    out
}

/// The intra prediction modes of 16x16 luma and 8x8 chroma blocks, in the bitstream's numbering
/// of the trees' leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    Dc,
    Vertical,
    Horizontal,
    TrueMotion,
}

/// The edges a block is predicted from: the row above (with the pixel above-left) and the
/// column to the left, as the decoder sets them (127 above the image, 129 left of it), and
/// whether each is inside the image (DC prediction uses only those).
pub(super) struct Edges<'a> {
    pub(super) above: &'a [u8],
    pub(super) left: &'a [u8],
    pub(super) corner: u8,
    pub(super) has_above: bool,
    pub(super) has_left: bool,
}

/// Fills `out` (`n x n`, row-major) with `mode`'s prediction from `e`.
pub(super) fn predict(mode: Mode, e: &Edges, n: usize, out: &mut [u8]) {
    match mode {
        Mode::Dc => {
            let shift = n.trailing_zeros();
            let sum = |s: &[u8]| s[..n].iter().map(|&v| v as u32).sum::<u32>();
            let dc = match (e.has_above, e.has_left) {
                (true, true) => (sum(e.above) + sum(e.left) + n as u32) >> (shift + 1),
                (true, false) => (sum(e.above) + (n as u32 >> 1)) >> shift,
                (false, true) => (sum(e.left) + (n as u32 >> 1)) >> shift,
                (false, false) => 128,
            };
            out[..n * n].fill(dc as u8);
        }
        Mode::Vertical => out[..n * n].chunks_exact_mut(n).for_each(|r| r.copy_from_slice(&e.above[..n])),
        Mode::Horizontal => out[..n * n].chunks_exact_mut(n).zip(e.left).for_each(|(r, &l)| r.fill(l)),
        Mode::TrueMotion => {
            for (y, r) in out[..n * n].chunks_exact_mut(n).enumerate() {
                let base = e.left[y] as i32 - e.corner as i32;
                for (x, v) in r.iter_mut().enumerate() {
                    *v = (base + e.above[x] as i32).clamp(0, 255) as u8;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small decoder of the same coder (RFC 6386, section 7.3), for the round trip.
    struct BoolReader<'a> {
        data: &'a [u8],
        pos: usize,
        value: u32,
        range: u32,
        bits: i32,
    }

    impl BoolReader<'_> {
        fn new(data: &[u8]) -> BoolReader<'_> {
            let mut r = BoolReader { data, pos: 0, value: 0, range: 255, bits: 0 };
            for _ in 0..2 {
                r.value = (r.value << 8) | r.byte();
            }
            r
        }
        fn byte(&mut self) -> u32 {
            let b = self.data.get(self.pos).copied().unwrap_or(0) as u32;
            self.pos += 1;
            b
        }
        fn get(&mut self, prob: u8) -> bool {
            let split = 1 + (((self.range - 1) * prob as u32) >> 8);
            let big_split = split << 8;
            let bit = if self.value >= big_split {
                self.range -= split;
                self.value -= big_split;
                true
            } else {
                self.range = split;
                false
            };
            while self.range < 128 {
                self.value <<= 1;
                self.range <<= 1;
                self.bits += 1;
                if self.bits == 8 {
                    self.bits = 0;
                    self.value |= self.byte();
                }
            }
            bit
        }
    }

    #[test]
    fn the_coder_round_trips_long_skewed_streams() {
        // Long runs of likely bits make carries through 0xff bytes; the tail is flushed often.
        let mut state = 12345u32;
        let mut bits = Vec::new();
        for i in 0..400_000 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let prob = [1u8, 2, 128, 200, 254, 255][(state >> 20) as usize % 6];
            let p0 = prob as u32 * 256 / 256;
            let bit = if i % 1000 < 700 { (state >> 8) & 0xff >= p0 } else { (state >> 9) & 1 == 1 };
            bits.push((prob, bit));
        }
        let mut w = BoolWriter::new(Vec::new());
        for &(p, b) in &bits {
            w.put(p, b).unwrap();
        }
        let (data, n) = w.finish().unwrap();
        assert_eq!(n as usize, data.len());
        let mut r = BoolReader::new(&data);
        for (i, &(p, b)) in bits.iter().enumerate() {
            assert_eq!(r.get(p), b, "bit {i}");
        }
    }

    #[test]
    fn the_forward_transforms_invert_the_decoders() {
        let mut state = 7u32;
        for _ in 0..2000 {
            let mut res = [0i32; 16];
            for v in &mut res {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                *v = (state >> 16) as i32 % 511 - 255;
            }
            let pred = [128u8; 16];
            let mut out = [0u8; 16];
            idct_add(&fdct(&res), &pred, &mut out, 4);
            for (o, r) in out.iter().zip(&res) {
                let want = (128 + r).clamp(0, 255);
                assert!((*o as i32 - want).abs() <= 1, "{o} vs {want}");
            }
            let dc: [i32; 16] = std::array::from_fn(|i| res[i] * 8);
            let back = iwht(&fwht(&dc));
            for (b, d) in back.iter().zip(&dc) {
                assert!((b - d).abs() <= 1, "{b} vs {d}");
            }
        }
    }
}
