//! A streaming VP8 key-frame encoder: the lossy WebP image (`webp_lossy.rs`), coded one row of
//! 16x16 macroblocks at a time as the rows arrive, so that nothing holds the picture.
//!
//! Each macroblock is predicted whole (16x16 luma, 8x8 chroma: DC, vertical, horizontal or
//! TrueMotion, the one closest to the source), its residual transformed (4x4 DCTs, the luma
//! blocks' DCs through the Walsh-Hadamard transform), quantized with one quantizer for the frame
//! and rebuilt exactly as a decoder will (`vp8_dsp.rs`), so the next blocks are predicted from
//! what the decoder will have. Tokens use the format's default probabilities, so they are final
//! as soon as they are coded: they stream to the token partition `W` (a scratch file). The first
//! partition (the header and each macroblock's modes, about 4 bits a macroblock) is kept in
//! memory; VP8 caps it at 512 KiB, and when a huge image would come near that, the remaining
//! macroblocks take the cheapest modes (DC), so every size up to WebP's 16383 px fits.
//!
//! The decoder's loop filter smooths block edges at a strength that follows the quantizer.

use super::vp8_dsp::{BoolWriter, Edges, Mode};
use super::vp8_mb::{put_block, Macroblock, Steps};
use super::vp8_tables as t;
use std::io::{Result, Write};

/// The first partition's largest size (its length field has 19 bits).
const PART0_MAX: u64 = (1 << 19) - 1;
/// Bits a macroblock's modes cost at most (7.4 for TrueMotion luma and chroma), rounded up.
const WORST_MODE_BITS: u64 = 8;
/// Macroblock side in luma pixels.
const MB: usize = 16;
/// The row above the image, as the decoder sets it.
const ABOVE_THE_IMAGE: [u8; MB] = [127; MB];

/// The quantizer index of a `--quality` (1-100): 100 is the finest quantizer (index 0), and the
/// index grows linearly as quality falls, to 127 at 0.
fn quantizer_index(quality: u8) -> usize {
    ((100 - quality.min(100) as usize) * 127 + 50) / 100
}

/// Which blocks of a macroblock had coefficients: luma 0-3 (columns or rows), U 4-5, V 6-7, and
/// the second-order block 8.
type Nonzero = [bool; 9];

/// The VP8 encoder of one frame (see the module docs).
pub(super) struct Vp8Encoder<W: Write> {
    width: usize,
    height: usize,
    mbs: (usize, usize),
    steps: Steps,
    modes: BoolWriter<Vec<u8>>,
    tokens: BoolWriter<W>,
    /// The source planes of the macroblock row being gathered (luma 16 rows, chroma 8, padded
    /// to whole macroblocks), and how many luma rows it has.
    src: [Vec<u8>; 3],
    rows: usize,
    rows_seen: usize,
    mb_y: usize,
    /// The rebuilt bottom row of the macroblock row above (luma, U, V), as the decoder has it.
    top: [Vec<u8>; 3],
    new_top: [Vec<u8>; 3],
    top_nz: Vec<Nonzero>,
    /// The macroblock being coded (its buffers reused from one to the next).
    mb: Macroblock,
    mbs_done: u64,
    /// The first partition's limit ([`PART0_MAX`]; lower in a test).
    part0_max: u64,
    /// Every macroblock's rebuilt pixels, for the tests.
    #[cfg(test)]
    rebuilt: Vec<[Vec<u8>; 3]>,
}

impl<W: Write> Vp8Encoder<W> {
    /// An encoder of a `width x height` frame (each 1-16383) at `quality`, its token partition
    /// written to `tokens`.
    pub(super) fn new(width: u32, height: u32, quality: u8, tokens: W) -> Result<Vp8Encoder<W>> {
        Vp8Encoder::with_filter(width, height, quality, tokens, true)
    }

    /// [`new`](Self::new), with the decoder's loop filter off when `!filter` (the tests compare
    /// the rebuilt pixels with a decoder's, which then must be the same).
    fn with_filter(width: u32, height: u32, quality: u8, tokens: W, filter: bool) -> Result<Vp8Encoder<W>> {
        let (width, height) = (width as usize, height as usize);
        let mbs = (width.div_ceil(MB), height.div_ceil(MB));
        let q = quantizer_index(quality);
        let luma = mbs.0 * MB;
        let planes = || [vec![0u8; luma], vec![0u8; luma / 2], vec![0u8; luma / 2]];
        let mut enc = Vp8Encoder {
            width,
            height,
            mbs,
            steps: Steps::new(q),
            modes: BoolWriter::new(Vec::new()),
            tokens: BoolWriter::new(tokens),
            src: [vec![0u8; luma * MB], vec![0u8; luma / 2 * 8], vec![0u8; luma / 2 * 8]],
            rows: 0,
            rows_seen: 0,
            mb_y: 0,
            top: planes(),
            new_top: planes(),
            top_nz: vec![[false; 9]; mbs.0],
            mb: Macroblock::default(),
            mbs_done: 0,
            part0_max: PART0_MAX,
            #[cfg(test)]
            rebuilt: Vec::new(),
        };
        enc.write_header(q, filter)?;
        Ok(enc)
    }

    /// The frame header in the first partition: no segments, the loop filter, one token
    /// partition, the quantizer, the default token probabilities, no skipped macroblocks.
    fn write_header(&mut self, q: usize, filter: bool) -> Result<()> {
        let m = &mut self.modes;
        m.put_literal(0, 2)?; // colour space YUV, pixels clamped
        m.put_literal(0, 1)?; // no segmentation
        m.put_literal(0, 1)?; // the normal loop filter
        m.put_literal(if filter { filter_level(t::AC_Q[q] as u32) } else { 0 }, 6)?;
        m.put_literal(0, 3)?; // sharpness
        m.put_literal(0, 1)?; // no filter adjustments
        m.put_literal(0, 2)?; // one token partition
        m.put_literal(q as u32, 7)?;
        m.put_literal(0, 5)?; // no quantizer deltas
        m.put_literal(0, 1)?; // probabilities not kept for later frames
                              // No token probability is replaced: each "update" flag coded as 0 with its probability.
        for &update in t::COEFF_UPDATE_PROBS.iter().flatten().flatten().flatten() {
            m.put(update, false)?;
        }
        m.put_literal(0, 1) // every macroblock codes its tokens
    }

    /// Adds image rows `a` and `b` (8-bit RGBA; `b` is `None` for a last odd row), which
    /// are rows `2k` and `2k + 1` of the image; codes each macroblock row once it is complete.
    pub(super) fn push_pair(&mut self, a: &[[u8; 4]], b: Option<&[[u8; 4]]>) -> Result<()> {
        let stride = self.mbs.0 * MB;
        let (w, r) = (self.width, self.rows);
        let luma_row = |dst: &mut [u8], px: &[[u8; 4]]| {
            for (d, p) in dst.iter_mut().zip(px) {
                *d = rgb_to_y(*p);
            }
            let last = dst[w - 1];
            dst[w..].fill(last);
        };
        luma_row(&mut self.src[0][r * stride..(r + 1) * stride], a);
        let b = b.unwrap_or(a);
        luma_row(&mut self.src[0][(r + 1) * stride..(r + 2) * stride], b);
        let (cw, cs, cr) = (w.div_ceil(2), stride / 2, r / 2);
        for cx in 0..cs {
            let x0 = (2 * cx).min(2 * (cw - 1));
            let x1 = (x0 + 1).min(w - 1);
            let px = [a[x0], a[x1], b[x0], b[x1]];
            let sum = |c: usize| px.iter().map(|p| p[c] as i32).sum::<i32>();
            let (u, v) = rgb_to_uv(sum(0), sum(1), sum(2));
            self.src[1][cr * cs + cx] = u;
            self.src[2][cr * cs + cx] = v;
        }
        self.rows += 2;
        self.rows_seen += 2;
        if self.rows == MB || self.rows_seen >= self.height {
            self.encode_mb_row()?;
        }
        Ok(())
    }

    /// Codes the gathered macroblock row (the image's last rows repeated down to 16).
    fn encode_mb_row(&mut self) -> Result<()> {
        let stride = self.mbs.0 * MB;
        let real = self.rows - (self.rows_seen > self.height) as usize;
        for (plane, (rows, s)) in [(MB, stride), (8, stride / 2), (8, stride / 2)].into_iter().enumerate() {
            let have = if plane == 0 { real } else { self.rows / 2 };
            let (done, pad) = self.src[plane].split_at_mut(have * s);
            let last = &done[(have - 1) * s..];
            pad[..(rows - have) * s].chunks_exact_mut(s).for_each(|r| r.copy_from_slice(last));
        }
        let mut left = LeftEdge::new();
        for mb_x in 0..self.mbs.0 {
            self.encode_mb(mb_x, &mut left)?;
        }
        std::mem::swap(&mut self.top, &mut self.new_top);
        (self.rows, self.mb_y) = (0, self.mb_y + 1);
        Ok(())
    }

    /// Predicts, transforms, quantizes, rebuilds and codes macroblock `mb_x` of the row.
    fn encode_mb(&mut self, mb_x: usize, left: &mut LeftEdge) -> Result<()> {
        let cheap = self.must_use_dc();
        let mb = &mut self.mb;
        let stride = self.mbs.0 * MB;
        for plane in 0..3 {
            let (n, s) = if plane == 0 { (16, stride) } else { (8, stride / 2) };
            for y in 0..n {
                mb.src[plane][y * n..(y + 1) * n].copy_from_slice(&self.src[plane][y * s + mb_x * n..][..n]);
            }
        }
        let (mb_y, top) = (self.mb_y, &self.top);
        let edges = |p: usize| {
            let n = if p == 0 { 16 } else { 8 };
            Edges {
                above: if mb_y == 0 { &ABOVE_THE_IMAGE[..n] } else { &top[p][mb_x * n..(mb_x + 1) * n] },
                left: &left.pixels[p],
                corner: match (mb_y, mb_x) {
                    (0, _) => 127,
                    (_, 0) => 129,
                    _ => top[p][mb_x * n - 1],
                },
                has_above: mb_y > 0,
                has_left: mb_x > 0,
            }
        };
        mb.choose_modes([edges(0), edges(1), edges(2)], cheap);
        mb.transform(self.steps);
        let mb = &self.mb;
        let mut nz = self.top_nz[mb_x];
        write_modes(&mut self.modes, mb)?;
        write_tokens(&mut self.tokens, mb, &mut nz, &mut left.nz)?;
        self.top_nz[mb_x] = nz;
        for plane in 0..3 {
            let n = if plane == 0 { 16 } else { 8 };
            self.new_top[plane][mb_x * n..(mb_x + 1) * n].copy_from_slice(&mb.recon[plane][(n - 1) * n..n * n]);
            for y in 0..n {
                left.pixels[plane][y] = mb.recon[plane][y * n + n - 1];
            }
        }
        self.mbs_done += 1;
        #[cfg(test)]
        self.rebuilt.push(mb.recon.clone());
        Ok(())
    }

    /// Whether the first partition could overflow unless this and every later macroblock take
    /// the cheapest modes.
    fn must_use_dc(&self) -> bool {
        let left = (self.mbs.0 * self.mbs.1) as u64 - self.mbs_done;
        // Free choice while every macroblock left could still take its worst; DC modes cost
        // 3.4 bits, so once forced the rest fit with room.
        self.modes.len() + (left * WORST_MODE_BITS).div_ceil(8) + 64 > self.part0_max
    }

    /// Finishes both partitions: returns the frame's first 10 bytes and first partition, and
    /// the token writer with the token partition's length.
    pub(super) fn finish(self) -> Result<(Vec<u8>, W, u64)> {
        let (part0, len0) = self.modes.finish()?;
        if len0 > self.part0_max {
            return Err(std::io::Error::other(format!("VP8 first partition of {len0} bytes is over its limit")));
        }
        let (tokens, len1) = self.tokens.finish()?;
        let tag = (1u32 << 4) | ((len0 as u32) << 5);
        let mut head = tag.to_le_bytes()[..3].to_vec();
        head.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        head.extend_from_slice(&(self.width as u16).to_le_bytes());
        head.extend_from_slice(&(self.height as u16).to_le_bytes());
        head.extend_from_slice(&part0);
        Ok((head, tokens, len1))
    }
}

/// The macroblock's prediction modes, in the first partition.
fn write_modes<V: Write>(m: &mut BoolWriter<V>, mb: &Macroblock) -> Result<()> {
    m.put(t::P_NOT_4X4, true)?;
    let [p0, p1, p2] = t::P_YMODE;
    match mb.modes[0] {
        Mode::Dc => [(p0, false), (p1, false)],
        Mode::Vertical => [(p0, false), (p1, true)],
        Mode::Horizontal => [(p0, true), (p2, false)],
        Mode::TrueMotion => [(p0, true), (p2, true)],
    }
    .into_iter()
    .try_for_each(|(p, b)| m.put(p, b))?;
    let [u0, u1, u2] = t::P_UVMODE;
    match mb.modes[1] {
        Mode::Dc => m.put(u0, false),
        Mode::Vertical => m.put(u0, true).and_then(|_| m.put(u1, false)),
        Mode::Horizontal => [(u0, true), (u1, true), (u2, false)].into_iter().try_for_each(|(p, b)| m.put(p, b)),
        Mode::TrueMotion => [(u0, true), (u1, true), (u2, true)].into_iter().try_for_each(|(p, b)| m.put(p, b)),
    }
}

/// The macroblock's coefficients, in the token partition: the second-order block, the 16
/// luma blocks (without their DCs), 4 U and 4 V blocks; `above` and `left` are the
/// neighbouring blocks' "had coefficients" flags, updated as blocks are coded.
fn write_tokens<V: Write>(
    w: &mut BoolWriter<V>,
    mb: &Macroblock,
    above: &mut Nonzero,
    left: &mut Nonzero,
) -> Result<()> {
    let ctx = |a: bool, l: bool| a as usize + l as usize;
    let nz = put_block(w, 1, ctx(above[8], left[8]), &mb.y2, 0)?;
    (above[8], left[8]) = (nz, nz);
    for (i, block) in mb.levels[0].iter().enumerate() {
        let (x, y) = (i % 4, i / 4);
        let nz = put_block(w, 0, ctx(above[x], left[y]), block, 1)?;
        (above[x], left[y]) = (nz, nz);
    }
    for plane in 1..3 {
        for (i, block) in mb.levels[plane].iter().take(4).enumerate() {
            let (x, y) = (2 + 2 * plane + i % 2, 2 + 2 * plane + i / 2);
            let nz = put_block(w, 2, ctx(above[x], left[y]), block, 0)?;
            (above[x], left[y]) = (nz, nz);
        }
    }
    Ok(())
}

/// The loop filter level for AC step `ac`: about half the step, at most 63.
fn filter_level(ac: u32) -> u32 {
    ac.div_ceil(2).min(63)
}

/// The rebuilt right column of the macroblock to the left (129 left of the image) and its
/// blocks' "had coefficients" flags.
struct LeftEdge {
    pixels: [Vec<u8>; 3],
    nz: Nonzero,
}

impl LeftEdge {
    fn new() -> LeftEdge {
        LeftEdge { pixels: [vec![129; 16], vec![129; 8], vec![129; 8]], nz: [false; 9] }
    }
}

/// BT.601 luma in the video range (16-235), 16-bit fixed point, rounded.
fn rgb_to_y(p: [u8; 4]) -> u8 {
    let (r, g, b) = (p[0] as i32, p[1] as i32, p[2] as i32);
    ((16839 * r + 33059 * g + 6420 * b + (16 << 16) + (1 << 15)) >> 16) as u8
}

/// BT.601 chroma (16-240) from the sums of four pixels' red, green and blue.
fn rgb_to_uv(r: i32, g: i32, b: i32) -> (u8, u8) {
    let u = (-9719 * r - 19081 * g + 28800 * b + (128 << 18) + (1 << 17)) >> 18;
    let v = (28800 * r - 24116 * g - 4684 * b + (128 << 18) + (1 << 17)) >> 18;
    (u.clamp(0, 255) as u8, v.clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libwebp's decoding of a VP8 frame (as a simple `RIFF/WEBP/VP8 ` file) into Y, U, V.
    fn decode_yuv(frame: &[u8], w: usize, h: usize) -> [Vec<u8>; 3] {
        let mut file = b"RIFF\0\0\0\0WEBPVP8 ".to_vec();
        file.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        file.extend_from_slice(frame);
        if frame.len() % 2 == 1 {
            file.push(0);
        }
        let riff = (file.len() - 8) as u32;
        file[4..8].copy_from_slice(&riff.to_le_bytes());
        let (mut dw, mut dh, mut u, mut v, mut stride, mut uv_stride) =
            (0i32, 0i32, std::ptr::null_mut(), std::ptr::null_mut(), 0i32, 0i32);
        // SAFETY: `file` is a readable buffer of its length; the out-pointers are valid. On
        // success libwebp returns one allocation holding Y, U and V (`y`, `u`, `v` point into
        // it), which is read within the returned sizes and strides and freed with WebPFree.
        unsafe {
            let y = libwebp_sys::WebPDecodeYUV(
                file.as_ptr(),
                file.len(),
                &mut dw,
                &mut dh,
                &mut u,
                &mut v,
                &mut stride,
                &mut uv_stride,
            );
            assert!(!y.is_null(), "libwebp could not decode the frame");
            assert_eq!((dw as usize, dh as usize), (w, h));
            let plane = |p: *const u8, s: i32, pw: usize, ph: usize| {
                (0..ph)
                    .flat_map(|r| std::slice::from_raw_parts(p.add(r * s as usize), pw).to_vec())
                    .collect::<Vec<u8>>()
            };
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            let out = [plane(y, stride, w, h), plane(u, uv_stride, cw, ch), plane(v, uv_stride, cw, ch)];
            libwebp_sys::WebPFree(y.cast());
            out
        }
    }

    /// An image to code: noise, smooth gradients and flat areas, by `kind`.
    fn picture(w: usize, h: usize, kind: u32, seed: &mut u32) -> Vec<[u8; 4]> {
        let mut next = || {
            *seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (*seed >> 16) as u8
        };
        (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as u32, (i / w) as u32);
                match kind {
                    0 => [next(), next(), next(), 255],
                    1 => [(x * 7 + y) as u8, (y * 5) as u8, (x * 3 + y * 2) as u8, 255],
                    _ if (x / 8 + y / 8) % 2 == 0 => [200, 30, 60, 255],
                    _ => [next() / 4, 128, 255 - next() / 8, 255],
                }
            })
            .collect()
    }

    /// Codes `img` (`w` wide) with the loop filter off; returns the frame and the rebuilt
    /// macroblocks.
    fn encode(img: &[[u8; 4]], w: usize, quality: u8, part0_max: u64) -> (Vec<u8>, Vec<[Vec<u8>; 3]>) {
        let h = img.len() / w;
        let mut enc = Vp8Encoder::with_filter(w as u32, h as u32, quality, Vec::new(), false).unwrap();
        enc.part0_max = part0_max;
        for pair in img.chunks(2 * w) {
            let (a, b) = pair.split_at(w.min(pair.len()));
            enc.push_pair(a, (!b.is_empty()).then_some(b)).unwrap();
        }
        let rebuilt = std::mem::take(&mut enc.rebuilt);
        let (mut frame, tokens, _) = enc.finish().unwrap();
        frame.extend_from_slice(&tokens);
        (frame, rebuilt)
    }

    #[test]
    fn near_its_limit_the_first_partition_takes_the_cheapest_modes() {
        // A gradient (TrueMotion's best case) of 1024 macroblocks would take some 700 bytes of
        // modes; under a 500-byte limit the later ones switch to DC and the frame still decodes.
        let (w, h) = (512, 512);
        let img: Vec<[u8; 4]> =
            (0..w * h).map(|i| [((i % w) / 2 + (i / w) / 3) as u8, ((i / w) / 2) as u8, 90, 255]).collect();
        let (free, _) = encode(&img, w, 90, PART0_MAX);
        let part0 = |f: &[u8]| (u32::from_le_bytes([f[0], f[1], f[2], 0]) >> 5) as u64;
        assert!(part0(&free) > 500, "{} bytes of modes unconstrained", part0(&free));
        let (tight, _) = encode(&img, w, 90, 500);
        assert!(part0(&tight) <= 500, "{} bytes", part0(&tight));
        let y = &decode_yuv(&tight, w, h)[0];
        let mean_err = y.iter().zip(&img).map(|(&v, p)| (v as i32 - rgb_to_y(*p) as i32).abs()).sum::<i32>();
        assert!(mean_err as f64 / (w * h) as f64 <= 2.0, "mean luma error {}", mean_err as f64 / (w * h) as f64);
    }

    #[test]
    fn a_decoder_rebuilds_exactly_what_the_encoder_predicted_from() {
        let mut seed = 99;
        for (i, &(w, h)) in [(1, 1), (17, 3), (16, 16), (33, 47), (64, 18), (95, 70)].iter().enumerate() {
            for (kind, quality) in [(0u32, 90u8), (1, 50), (2, 100), (0, 5)] {
                let img = picture(w, h, kind, &mut seed);
                let (frame, rebuilt) = encode(&img, w, quality, PART0_MAX);
                let mbs = (w.div_ceil(16), h.div_ceil(16));
                let decoded = decode_yuv(&frame, w, h);
                for (p, plane) in decoded.iter().enumerate() {
                    let (n, pw) = if p == 0 { (16, w) } else { (8, w.div_ceil(2)) };
                    for (k, &got) in plane.iter().enumerate() {
                        let (x, y) = (k % pw, k / pw);
                        let want = rebuilt[(y / n) * mbs.0 + x / n][p][(y % n) * n + x % n];
                        assert_eq!(got, want, "case {i} {w}x{h} kind {kind} q{quality}: plane {p} at ({x}, {y})");
                    }
                }
            }
        }
    }
}
