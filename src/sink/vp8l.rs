//! The pieces of a WebP lossless (VP8L) bitstream that the WebP sink writes: an LSB-first bit
//! writer, length-limited canonical prefix codes and their serialisation, and the two
//! transforms used (subtract-green, then one predictor for the whole image), following the
//! WebP Lossless Bitstream specification (RFC 9649).
//!
//! Each row of residuals is coded as literals (green, red, blue, alpha, each with its channel's
//! prefix code) and runs: a stretch equal to the pixels just before it (the left neighbour's
//! distance) or to the row above, found greedily within the row ([`tokens`]), so that both
//! passes make the same choices from the same rows. The codes are built from the exact
//! histogram of the whole image (the sink's first pass). Upscaled images are smooth: the
//! predictor's residuals cluster round zero and repeat over flat areas.

use std::io::Write;

/// The longest prefix code the format allows for pixel symbols.
const MAX_LENGTH: u8 = 15;
/// The longest code of the code-length code.
const MAX_CLC_LENGTH: u8 = 7;
/// The order in which the code-length code's lengths are written.
const CLC_ORDER: [usize; 19] = [17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
/// Alphabet sizes of the five codes of a group: green (+ 24 length prefixes, no colour
/// cache), red, blue, alpha, distance.
pub(super) const ALPHABETS: [usize; 5] = [256 + 24, 256, 256, 256, 40];
/// The predictors tried on each block: left, top, Average2(Average2(L, TR), T), Select,
/// ClampAddSubtractFull (the gradient) and ClampAddSubtractHalf.
pub(super) const PREDICTOR_MODES: [u8; 6] = [1, 2, 5, 11, 12, 13];
/// Predictor blocks are `1 << PREDICTOR_BITS` pixels square, each with its own mode.
pub(super) const PREDICTOR_BITS: u32 = 5;

/// Writes bits least significant first, as VP8L reads them.
pub(super) struct BitWriter<W: Write> {
    out: W,
    acc: u64,
    used: u32,
    buf: Vec<u8>,
    /// Bytes handed to `out` so far.
    pub(super) written: u64,
}

impl<W: Write> BitWriter<W> {
    pub(super) fn new(out: W) -> Self {
        BitWriter { out, acc: 0, used: 0, buf: Vec::with_capacity(1 << 16), written: 0 }
    }
    /// Appends the low `n` bits of `bits` (n ≤ 32).
    #[inline]
    pub(super) fn put(&mut self, bits: u32, n: u32) -> std::io::Result<()> {
        debug_assert!(n <= 32 && (n == 32 || bits >> n == 0));
        self.acc |= (bits as u64) << self.used;
        self.used += n;
        if self.used >= 32 {
            self.buf.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.used -= 32;
            if self.buf.len() >= 1 << 16 {
                self.drain()?;
            }
        }
        Ok(())
    }
    fn drain(&mut self) -> std::io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
    /// Pads to a whole byte with zeros, writes everything out and returns the writer.
    pub(super) fn finish(mut self) -> std::io::Result<(W, u64)> {
        while self.used > 0 {
            self.buf.push(self.acc as u8);
            self.acc >>= 8;
            self.used = self.used.saturating_sub(8);
        }
        self.drain()?;
        Ok((self.out, self.written))
    }
}

/// A prefix code: each symbol's length and its code, bit-reversed for LSB-first writing.
/// A code of one symbol has length 0 (the format spends no bits on it).
pub(super) struct Code {
    pub(super) lengths: Vec<u8>,
    pub(super) codes: Vec<u16>,
}

impl Code {
    /// The code for a histogram (`counts[symbol]`).
    pub(super) fn from_counts(counts: &[u64]) -> Code {
        let mut lengths = limited_lengths(counts, MAX_LENGTH);
        let codes = canonical(&lengths);
        if lengths.iter().filter(|&&l| l > 0).count() == 1 {
            lengths.iter_mut().for_each(|l| *l = 0);
        }
        Code { lengths, codes }
    }
    /// Writes symbol `s`.
    #[inline]
    pub(super) fn put<W: Write>(&self, bw: &mut BitWriter<W>, s: usize) -> std::io::Result<()> {
        bw.put(self.codes[s] as u32, self.lengths[s] as u32)
    }
    /// Writes the code itself: a simple code for one or two symbols below 256, the normal
    /// code-length form otherwise.
    pub(super) fn write<W: Write>(&self, bw: &mut BitWriter<W>, counts: &[u64]) -> std::io::Result<()> {
        let used: Vec<usize> = (0..counts.len()).filter(|&s| counts[s] > 0).collect();
        if used.len() <= 2 && used.iter().all(|&s| s < 256) {
            let first = used.first().copied().unwrap_or(0);
            bw.put(1, 1)?;
            bw.put(used.len().saturating_sub(1) as u32, 1)?;
            if first < 2 {
                bw.put(0, 1)?;
                bw.put(first as u32, 1)?;
            } else {
                bw.put(1, 1)?;
                bw.put(first as u32, 8)?;
            }
            if let Some(&second) = used.get(1) {
                bw.put(second as u32, 8)?;
            }
            return Ok(());
        }
        self.write_normal(bw)
    }
    fn write_normal<W: Write>(&self, bw: &mut BitWriter<W>) -> std::io::Result<()> {
        let mut clc_counts = [0u64; 19];
        for &l in &self.lengths {
            clc_counts[l as usize] += 1;
        }
        // A code of one symbol would be read as zero bits: give it a partner.
        if clc_counts.iter().filter(|&&c| c > 0).count() < 2 {
            let spare = if clc_counts[0] == 0 { 0 } else { 1 };
            clc_counts[spare] = 1;
        }
        let clc_lengths = limited_lengths(&clc_counts, MAX_CLC_LENGTH);
        let clc_codes = canonical(&clc_lengths);
        let n = CLC_ORDER.iter().rposition(|&s| clc_lengths[s] > 0).map_or(0, |i| i + 1).max(4);
        bw.put(0, 1)?;
        bw.put(n as u32 - 4, 4)?;
        for &s in &CLC_ORDER[..n] {
            bw.put(clc_lengths[s] as u32, 3)?;
        }
        // Every length written (no shortened alphabet).
        bw.put(0, 1)?;
        for &l in &self.lengths {
            bw.put(clc_codes[l as usize] as u32, clc_lengths[l as usize] as u32)?;
        }
        Ok(())
    }
}

/// Huffman code lengths for `counts`, none over `limit`: the histogram is flattened (small
/// counts raised) until the tree is shallow enough. Symbols of count 0 get length 0; a lone
/// symbol gets length 1.
pub(super) fn limited_lengths(counts: &[u64], limit: u8) -> Vec<u8> {
    let mut floor = 1u64;
    loop {
        let adjusted: Vec<u64> = counts.iter().map(|&c| if c > 0 { c.max(floor) } else { 0 }).collect();
        let lengths = huffman_lengths(&adjusted);
        if lengths.iter().all(|&l| l <= limit) {
            return lengths;
        }
        floor = floor.saturating_mul(2);
    }
}

/// Plain Huffman code lengths (ties broken by node order, so deterministic).
fn huffman_lengths(counts: &[u64]) -> Vec<u8> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut lengths = vec![0u8; counts.len()];
    let mut parent: Vec<usize> = Vec::new();
    let mut heap = BinaryHeap::new();
    for (s, &c) in counts.iter().enumerate() {
        if c > 0 {
            heap.push(Reverse((c, parent.len(), s)));
            parent.push(usize::MAX);
        }
    }
    let leaves: Vec<usize> = (0..counts.len()).filter(|&s| counts[s] > 0).collect();
    if leaves.len() == 1 {
        lengths[leaves[0]] = 1;
        return lengths;
    }
    while heap.len() > 1 {
        let (Some(Reverse((ca, a, _))), Some(Reverse((cb, b, _)))) = (heap.pop(), heap.pop()) else { break };
        let node = parent.len();
        parent.push(usize::MAX);
        parent[a] = node;
        parent[b] = node;
        heap.push(Reverse((ca + cb, node, usize::MAX)));
    }
    for (leaf, &s) in leaves.iter().enumerate() {
        let (mut n, mut depth) = (leaf, 0u8);
        while parent[n] != usize::MAX {
            n = parent[n];
            depth = depth.saturating_add(1);
        }
        lengths[s] = depth;
    }
    lengths
}

/// Canonical codes for `lengths` (shorter first, then by symbol), bit-reversed.
fn canonical(lengths: &[u8]) -> Vec<u16> {
    let mut count = [0u16; 16];
    for &l in lengths {
        count[l as usize] += 1;
    }
    count[0] = 0;
    let mut next = [0u16; 16];
    let mut code = 0u16;
    for len in 1..16 {
        code = (code + count[len - 1]) << 1;
        next[len] = code;
    }
    lengths
        .iter()
        .map(|&l| {
            if l == 0 {
                return 0;
            }
            let c = next[l as usize];
            next[l as usize] += 1;
            c.reverse_bits() >> (16 - l as u32)
        })
        .collect()
}

/// One pixel after subtract-green, as `[green, red - green, blue - green, alpha]`.
#[inline]
pub(super) fn subtract_green(r: u8, g: u8, b: u8, a: u8) -> [u8; 4] {
    [g, r.wrapping_sub(g), b.wrapping_sub(g), a]
}

/// Residuals of one row (`cur`, after subtract-green) into `out`, pixel `x` predicted by
/// mode `modes[x >> PREDICTOR_BITS]`; `prev` is the row above (`None` for the first row). The format's edge rules: the first
/// pixel is predicted as opaque black, the top row from the left, the left column from above,
/// and the rightmost pixel's top-right neighbour is the row's first pixel.
pub(super) fn residuals(modes: &[u8], cur: &[[u8; 4]], prev: Option<&[[u8; 4]]>, out: &mut [[u8; 4]]) {
    let sub = |p: [u8; 4], q: [u8; 4]| -> [u8; 4] { std::array::from_fn(|c| p[c].wrapping_sub(q[c])) };
    let w = cur.len();
    if w == 0 {
        return;
    }
    let Some(t) = prev else {
        out[0] = sub(cur[0], [0, 0, 0, 255]);
        for x in 1..w {
            out[x] = sub(cur[x], cur[x - 1]);
        }
        return;
    };
    out[0] = sub(cur[0], t[0]);
    for (b, &mode) in modes.iter().enumerate() {
        let (x0, x1) = ((b << PREDICTOR_BITS).max(1), ((b + 1) << PREDICTOR_BITS).min(w));
        if x0 >= x1 {
            continue;
        }
        // The rightmost pixel's top-right neighbour is the row's first pixel.
        let inner = x1.min(w - 1);
        let last = |out: &mut [[u8; 4]]| {
            if x1 == w {
                let x = w - 1;
                out[x] = sub(cur[x], predict(mode, cur[x - 1], t[x], t[x - 1], cur[0]));
            }
        };
        macro_rules! run {
            ($m:literal) => {{
                for x in x0..inner {
                    out[x] = sub(cur[x], predict($m, cur[x - 1], t[x], t[x - 1], t[x + 1]));
                }
                last(out);
            }};
        }
        match mode {
            1 => run!(1),
            2 => run!(2),
            5 => run!(5),
            11 => run!(11),
            13 => run!(13),
            _ => run!(12),
        }
    }
}

/// The prediction of predictor `mode` from the left, top, top-left and top-right pixels.
#[inline(always)]
fn predict(mode: u8, l: [u8; 4], t: [u8; 4], tl: [u8; 4], tr: [u8; 4]) -> [u8; 4] {
    let avg = |a: [u8; 4], b: [u8; 4]| -> [u8; 4] { std::array::from_fn(|c| ((a[c] as u16 + b[c] as u16) / 2) as u8) };
    match mode {
        1 => l,
        2 => t,
        5 => avg(avg(l, tr), t),
        11 => {
            let dist = |a: [u8; 4], b: [u8; 4]| (0..4).map(|c| (a[c] as i32 - b[c] as i32).abs()).sum::<i32>();
            // |estimate - L| is |T - TL| summed, |estimate - T| is |L - TL|.
            if dist(t, tl) < dist(l, tl) {
                l
            } else {
                t
            }
        }
        13 => {
            let a = avg(l, t);
            std::array::from_fn(|c| (a[c] as i32 + (a[c] as i32 - tl[c] as i32) / 2).clamp(0, 255) as u8)
        }
        _ => std::array::from_fn(|c| (l[c] as i32 + t[c] as i32 - tl[c] as i32).clamp(0, 255) as u8),
    }
}

/// The longest run the format can code.
const MAX_RUN: usize = 4096;
/// The shortest run worth a backward reference.
const MIN_RUN: usize = 3;

/// What codes a stretch of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Token {
    /// One pixel's four residuals.
    Literal([u8; 4]),
    /// `len` pixels copied from distance code `dist` (1: the row above, 2: the pixel before).
    Copy { len: u16, dist: u8 },
}

/// The tokens of one row of residuals `cur` (`prev`: the row above, if any), longest run
/// first, the left neighbour's run preferred on a tie.
pub(super) fn tokens(cur: &[[u8; 4]], prev: Option<&[[u8; 4]]>, mut emit: impl FnMut(Token)) {
    let mut x = 0;
    while x < cur.len() {
        let limit = (cur.len() - x).min(MAX_RUN);
        let left = if x > 0 { (0..limit).take_while(|&k| cur[x + k] == cur[x + k - 1]).count() } else { 0 };
        let up = prev.map_or(0, |p| (0..limit).take_while(|&k| cur[x + k] == p[x + k]).count());
        let (len, dist) = if left >= up { (left, 2) } else { (up, 1) };
        if len >= MIN_RUN {
            emit(Token::Copy { len: len as u16, dist });
            x += len;
        } else {
            emit(Token::Literal(cur[x]));
            x += 1;
        }
    }
}

/// A length or distance value (1 and up) as the format's prefix symbol, its extra bits'
/// count and their value.
#[inline]
pub(super) fn prefix(value: u32) -> (usize, u32, u32) {
    let d = value - 1;
    if d < 4 {
        return (d as usize, 0, 0);
    }
    let high = 31 - d.leading_zeros();
    let second = (d >> (high - 1)) & 1;
    let extra = high - 1;
    ((2 * high + second) as usize, extra, d & ((1 << extra) - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_respect_the_limit_and_make_a_complete_code() {
        // Fibonacci counts make the deepest plain Huffman tree.
        let mut counts = vec![1u64, 1];
        while counts.len() < 30 {
            counts.push(counts[counts.len() - 1] + counts[counts.len() - 2]);
        }
        for limit in [7u8, 15] {
            let l = limited_lengths(&counts, limit);
            assert!(l.iter().all(|&x| (1..=limit).contains(&x)), "{l:?}");
            let kraft: f64 = l.iter().map(|&x| 0.5f64.powi(x as i32)).sum();
            assert_eq!(kraft, 1.0, "complete code");
        }
        assert_eq!(limited_lengths(&[0, 5, 0], 15), vec![0, 1, 0]);
    }

    #[test]
    fn canonical_codes_are_prefix_free_and_reversed() {
        // Lengths 1, 2, 3, 3: codes 0, 10, 110, 111 (MSB first), written reversed.
        assert_eq!(canonical(&[1, 2, 3, 3]), vec![0b0, 0b01, 0b011, 0b111]);
    }

    #[test]
    fn residuals_follow_the_edge_rules_and_the_gradient() {
        let row0 = [[10, 20, 30, 255], [12, 20, 30, 255]];
        let row1 = [[11, 20, 30, 255], [200, 0, 0, 255]];
        let mut out = [[0; 4]; 2];
        residuals(&[12], &row0, None, &mut out);
        assert_eq!(out, [[10, 20, 30, 0], [2, 0, 0, 0]]);
        residuals(&[12], &row1, Some(&row0), &mut out);
        // (1,1): L + T - TL = 11 + 12 - 10 = 13 green; the rest 20 + 20 - 20.
        assert_eq!(out[0], [1, 0, 0, 0]);
        assert_eq!(out[1], [187, 236, 226, 0]);
    }

    /// The decoder's rule (RFC 9649, 5.2.2) undoes [`prefix`] for every length.
    #[test]
    fn prefix_symbols_round_trip() {
        for v in 1..=4096u32 {
            let (code, bits, extra) = prefix(v);
            let back = if code < 4 {
                code as u32 + 1
            } else {
                let n = (code as u32 - 2) >> 1;
                ((2 + (code as u32 & 1)) << n) + extra + 1
            };
            assert_eq!((back, bits), (v, if code < 4 { 0 } else { (code as u32 - 2) >> 1 }), "value {v}");
            assert!(code < 24);
        }
    }

    #[test]
    fn runs_copy_the_left_pixel_or_the_row_above() {
        let (a, b) = ([1, 0, 0, 0], [2, 0, 0, 0]);
        let cur = [a, a, a, a, b, b, a, b];
        let prev = [b, b, b, b, b, b, a, b];
        let mut got = Vec::new();
        tokens(&cur, Some(&prev), |t| got.push(t));
        use Token::*;
        assert_eq!(got, vec![Literal(a), Copy { len: 3, dist: 2 }, Copy { len: 4, dist: 1 }]);
    }
}
