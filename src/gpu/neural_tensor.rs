//! Convolutions on the tensor cores, exactly: the engine's integer sums computed by
//! cooperative-matrix multiply-adds of half floats with single-float accumulators.
//!
//! A half float holds every integer up to 2048 exactly and a single float every integer up to
//! 2^24, so the 16-bit activations and the weights are split into 8-bit halves,
//! `a = 256·ah + al` and `w = 256·wh + wl` (`al`, `wl` in `[-128, 127]`; `ah` in `[-128, 128]`;
//! `wh` in `[-32, 32]` for 14-bit weights). Three accumulators per 16x16 output block hold
//! `Σ ah·wh`, `Σ (ah·wl + al·wh)` and `Σ al·wl`; `|ah·wl|` and `|al·wl|` are at most 2^14,
//! `|ah·wh|` and `|al·wh|` at most 2^12, so a run of [`FLUSH_TAPS`] taps of 16 channels (816
//! terms per sum) stays within 2^24, where single floats add integers without rounding (with
//! 24-bit activations the weights have up to 16 bits, `wh` in `[-128, 128]`, every term at
//! most 2^15: runs of [`FLUSH_TAPS_WIDE`]). Those runs are the worst case's: a layer's runs
//! are as long as its own weights keep the sums within 2^24 (`neural_weights::flush_runs`;
//! realesrgan-x4plus's upper parts' convolutions 0.65 s where the worst case's took 0.74 s on an
//! H100, docs/benchmarks.md 2026-12-06 (12)). At the end of each run the accumulators are
//! converted to integers and folded into
//! `a·w = 2^16·HH + 2^8·X + LL` in wrapping 32-bit arithmetic — the very sum the CPU's kernels
//! wrap, so the bytes are the same as every other backend's. The lower parts of 24-bit
//! activations (`neural_wide.rs`; in `[-128, 128)`, exact as half floats) are read whole: two
//! accumulators, `Σ a·wh` and `Σ a·wl`, two products a tap where the halves take four (the
//! `lower` forms of the split and the convolution; realesrgan-x4plus's 24-bit network 1.86 s
//! against 2.27 s on an H100, docs/benchmarks.md 2026-12-05 (7)).
//!
//! Before each such convolution a small shader (`split_shader`) writes its input window
//! split: for each row and column the convolution reads and each 16-channel slice, the 16
//! high halves and the 16 low halves as half floats (`[half][row][slice][column][channel]`,
//! zero outside the image), so that a 16-pixel by 16-channel block of a tap is one matrix
//! read straight from the buffer — no staging in workgroup memory, no barrier in the loop.
//! A workgroup is four subgroups of 32 invocations (the cooperative matrices' scope); by
//! default each subgroup computes one 16-pixel block in each of four consecutive rows for one
//! 16-channel block, so a workgroup covers 16 pixels by 4 rows by 64 channels (32 by 4 by 32
//! for layers of up to 32 outputs). A 3x3 kernel's input block of one row is a tap of three
//! output rows: loaded once for all of them, the blocks take 6 row loads a kernel column where
//! one row's four blocks took 12 (realesrgan-x4plus's network 1.62 s against 1.86 s on an
//! H200, docs/benchmarks.md 2026-12-06 (10)); the `lower` form, two accumulators a block,
//! takes six rows (`neural_cut::lower_rows`: 8 row loads for 6 rows; its pass 0.339 s against
//! 0.366 s at four on an H100, 2026-12-06 (13)), and the upper parts of 24-bit values five
//! (`neural_cut::upper_rows`: 15 accumulator matrices; 0.548 s against 0.585 s at four on an
//! H100, 2026-12-06 (14)). `GIGASCALE_GPU_TENSOR_CUT=MBxNB[xROWS]` tries
//! other cuts, the bytes never change. The weights are read as matrices straight from their
//! buffer (`[half][tap][input slice][output block][16][16]`, cached by every workgroup alike),
//! a kernel column's at a time, each matrix stored by columns and loaded column-major — the
//! layout of the second operand of NVIDIA's matrix instructions (x4plus's convolutions 0.94 s
//! against 0.99 s by rows on an H100, docs/benchmarks.md 2026-12-06 (13)).
//!
//! The CPU's bytes for every model tried, and faster than the plain integer shaders
//! (`neural_shader.rs`; docs/benchmarks.md 2026-12-04 (6)), so the default where the adapter
//! has the matrices; `GIGASCALE_GPU_TENSOR=0` asks for the plain shaders.

use super::neural_cut::{weights_by_columns, Cut, TensorTiling};
use std::fmt::Write;

/// The bits of a value's low half: `v = 256·h + l`, `l` in `[-128, 128)` (`split`, and the
/// split shader's halves of activations).
pub(crate) const SPLIT_BITS: u32 = 8;

/// Taps (each 16 input channels) summed in single floats before they are folded into the
/// integer sums: `51 · 16 = 816` terms, each at most `2^14` (`al·wl`) or `2^14 + 2^12` (the
/// middle accumulator's `ah·wl + al·wh`): at most 16 711 680, under 2^24 = 16 777 216.
pub(crate) const FLUSH_TAPS: usize = 51;
/// The same for the weights of up to 16 bits of a network with 24-bit activations
/// (`exact::quantise`; `wh` in `[-128, 128]`): `32 · 16 = 512` terms of at most `2^15`, at
/// most 2^24.
pub(crate) const FLUSH_TAPS_WIDE: usize = 32;
/// The same for the lower parts of 24-bit activations read whole (`tensor_conv_shader`'s
/// `lower` form): `64 · 16 = 1024` terms of at most `2^7 · 2^7` (`a·wh`, `a·wl`), at most 2^24.
pub(crate) const FLUSH_TAPS_LOWER: usize = 64;

/// The taps a run sums before it is folded ([`FLUSH_TAPS`]; for a network with 24-bit
/// activations [`FLUSH_TAPS_WIDE`], or [`FLUSH_TAPS_LOWER`] for its lower parts).
pub(crate) fn flush_taps(wide: bool, lower: bool) -> usize {
    match (wide, lower) {
        (false, _) => FLUSH_TAPS,
        (true, false) => FLUSH_TAPS_WIDE,
        (true, true) => FLUSH_TAPS_LOWER,
    }
}
/// The largest kernel this path takes (one 16-channel slice's taps must fit one run).
pub(crate) const MAX_KERNEL: usize = 5;

/// Bytes of workgroup memory the shader needs (the float accumulators on their way to the
/// integer sums).
pub(crate) fn workgroup_bytes() -> usize {
    SC_FLOATS * 4
}

pub(crate) use crate::neural::stage::{split_bytes, split_geometry, SPLIT_RUN as RUN};

/// The device features these shaders need.
pub(crate) const TENSOR_FEATURES: wgpu::Features =
    wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX.union(wgpu::Features::SHADER_F16).union(wgpu::Features::SUBGROUP);

/// Whether `adapter` can run these shaders: 16x16x16 half-float matrices with single-float
/// accumulators, half floats in buffers, and subgroups of exactly 32 invocations.
pub(crate) fn adapter_has_tensor_cores(adapter: &wgpu::Adapter) -> bool {
    let needed = TENSOR_FEATURES;
    if !adapter.features().contains(needed) {
        return false;
    }
    let info = adapter.get_info();
    if info.subgroup_min_size != 32 || info.subgroup_max_size != 32 {
        return false;
    }
    use wgpu::CooperativeScalarType as S;
    adapter
        .cooperative_matrix_properties()
        .iter()
        .any(|p| (p.m_size, p.n_size, p.k_size) == (16, 16, 16) && p.ab_type == S::F16 && p.cr_type == S::F32)
}

/// `v = 256·hi + lo` with `lo` in `[-128, 127]` (the split shader's halves of an activation,
/// and the weights' halves).
pub(crate) fn split(v: i32) -> (i32, i32) {
    let (half, mask) = split_rounding();
    let lo = ((v + half) & mask) - half;
    ((v - lo) >> SPLIT_BITS, lo)
}

/// Half a unit of the high part and the low bits' mask, from [`SPLIT_BITS`] (the CPU's
/// [`split`] and the split shader's text, `neural_split.rs`).
pub(crate) fn split_rounding() -> (i32, i32) {
    (1 << (SPLIT_BITS - 1), (1 << SPLIT_BITS) - 1)
}

/// Channels rounded up to whole 16-channel slices.
pub(crate) fn padded(c: usize, to: usize) -> usize {
    c.div_ceil(to) * to
}

/// The bindings of the weights and of the parts' places (binding 1 is the first part's split
/// input, 6 on the other parts').
const HEADER: &str = r#"
// [high, low][tap][input slice][output block][16][16] halves, each matrix by columns
// (`neural_cut::weights_by_columns`) unless GIGASCALE_GPU_WEIGHT_ROWS=1.
@group(0) @binding(2) var<storage, read> wt: array<f16>;
"#;

/// Most parts a tensor-core convolution reads its input from (the storage bindings it takes
/// besides its weights, rounding terms and output).
pub(crate) const MAX_PARTS: usize = 5;

/// The three float accumulators and their weights in the integer sum.
const ACCS: [(&str, i32); 3] = [("hh", 1 << (2 * SPLIT_BITS)), ("xx", 1 << SPLIT_BITS), ("ll", 1)];
/// The two of the `lower` form (`Σ a·wh` and `Σ a·wl` of values `a` read whole).
const ACCS_LOWER: [(&str, i32); 2] = [("xx", 1 << SPLIT_BITS), ("ll", 1)];
/// Invocations of a workgroup (four subgroups).
const GROUP: usize = 128;
/// Blocks a subgroup folds through workgroup memory at a time (`flush`).
const SC_BLOCKS: usize = 4;
/// The floats of that workgroup memory (`sc`): a 16x16 block for each of `SC_BLOCKS` blocks
/// of each subgroup.
const SC_FLOATS: usize = GROUP / 32 * SC_BLOCKS * 256;

/// A layer's shape as the generator needs it.
struct Shape {
    k: usize,
    /// 16-pixel blocks per subgroup.
    mb: usize,
    /// 16-channel blocks per subgroup.
    nb: usize,
    /// Output channels of a workgroup.
    bn: usize,
    /// Output pixels of a row of a workgroup.
    wpx: usize,
    /// Output rows of a workgroup (and of each subgroup's pixel blocks).
    rows: usize,
    /// 16-pixel blocks of a row of a subgroup.
    cols: usize,
    /// 16-channel slices of the input.
    slices: usize,
    co_pad: usize,
    /// Whether the input is read whole (the lower parts of 24-bit values), not as halves.
    lower: bool,
}

impl Shape {
    fn new(slices: usize, cout: usize, k: usize, t: TensorTiling, lower: bool) -> Shape {
        let c = Cut::of(cout, t);
        let (mb, nb, bn, rows, cols) = (c.mb, c.nb, c.bn, c.rows, c.cols());
        Shape { k, mb, nb, bn, wpx: c.pixels(), rows, cols, slices, co_pad: padded(cout, bn), lower }
    }

    /// The float accumulators and their weights in the integer sum.
    fn accs(&self) -> &'static [(&'static str, i32)] {
        if self.lower {
            &ACCS_LOWER
        } else {
            &ACCS
        }
    }

    /// The subgroup's (pixel block, channel block) pairs.
    fn blocks(&self) -> Vec<(usize, usize)> {
        (0..self.mb).flat_map(|m| (0..self.nb).map(move |n| (m, n))).collect()
    }
}

/// The tensor-core convolution shader for a `k x k` kernel of dilation 1 and `cout` output
/// channels whose input is read from parts of `parts` 16-channel slices each (one part for a
/// blob, one per part for a concatenation never made), each split as `split_shader` (`neural_split.rs`)
/// leaves it, in a buffer of its own (binding 1, then 6, 7, ...) that may cover more than this
/// convolution reads: binding 5 holds each part's place in its buffer (`PartPlace`). Its
/// float sums are folded into the integer ones after at most `flush_at` taps (the layer's:
/// `neural_weights::flush_runs`, at least [`flush_taps`]). Its work is cut as `t` says (the
/// form's tiling: `TensorTiling::form`).
///
/// With `lower` it reads splits of the lower parts of 24-bit values (`split_shader`'s `Whole`
/// or `Both` form): each value `a` whole, two products a tap (`Σ a·wh`, `Σ a·wl`, each term at most
/// `2^7·2^7`) where the halves take four.
pub(crate) fn tensor_conv_shader(
    parts: &[usize],
    (cout, k): (usize, usize),
    t: TensorTiling,
    (flush_at, lower): (usize, bool),
) -> String {
    let sh = Shape::new(parts.iter().sum(), cout, k, t, lower);
    let mut s = String::with_capacity(48 << 10);
    s.push_str("enable f16;\nenable wgpu_cooperative_matrix;\n");
    s.push_str(super::neural_shader::COMMON);
    s.push_str(super::neural_shader::CONV_PARAMS);
    s.push_str(HEADER);
    let _ = writeln!(s, "@group(0) @binding(5) var<uniform> places: array<vec4<i32>, {}>;", parts.len());
    for i in 0..parts.len() {
        let binding = if i == 0 { 1 } else { 5 + i };
        let _ = writeln!(s, "@group(0) @binding({binding}) var<storage, read> xs{i}: array<f16>;");
    }
    s.push_str(super::neural_shader::CONV_FINISH);
    let _ = writeln!(s, "var<workgroup> sc: array<f32, {SC_FLOATS}>;\n@compute @workgroup_size({GROUP})");
    s.push_str("fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32,\n");
    s.push_str("        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {\n");
    let spans = sh.wpx / (16 * sh.cols);
    let _ = writeln!(
        s,
        "    let oy = i32(wg.y) * {};\n    let px0 = i32(wg.x) * {};\n    let ob = i32(wg.z);",
        sh.rows, sh.wpx
    );
    let _ = writeln!(s, "    let sm = i32(sg) % {spans};\n    let sn = i32(sg) / {spans};");
    for (m, n) in sh.blocks() {
        for j in 0..8 {
            let _ = writeln!(s, "    var a{m}{n}_{j}: i32 = 0;");
        }
        for (acc, _) in sh.accs() {
            let _ = writeln!(s, "    var {acc}{m}{n} = coop_mat16x16<f32, C>();");
        }
    }
    // A run is folded as the next slice would take it past `flush_at` taps, never after the
    // last slice (the final fold takes it); a layer of one run has no fold in its loop.
    let folds = flush_at < sh.slices * k * k;
    if folds {
        s.push_str("    var taps = 0;\n");
    }
    let mut first = 0;
    for (i, &slices) in parts.iter().enumerate() {
        // The part's place: where this workgroup's first row and column start, the columns of
        // a slice's row, the offset of the low halves, the halves of a row.
        let _ = writeln!(s, "    let at{i} = places[{i}];\n    let o{i} = at{i}.x + px0 + sm * {};", sh.cols * 16);
        // Rows past the output's read its last input row (what they compute is not kept).
        for iy in 0..sh.rows + k - 1 {
            let _ = writeln!(s, "    let r{i}_{iy} = min(oy + {iy}, p.out_h + {}) * at{i}.w;", k as i32 - 2);
        }
        let _ = writeln!(s, "    for (var sl = 0; sl < {slices}; sl++) {{");
        if folds {
            let _ = writeln!(s, "        if taps + {} > {flush_at} {{", k * k);
            flush(&mut s, &sh, "            ");
            let _ = writeln!(s, "            taps = 0;\n        }}\n        taps += {};", k * k);
        }
        for kx in 0..k {
            multiply_column(&mut s, kx, (i, first), &sh);
        }
        s.push_str("    }\n");
        first += slices;
    }
    flush(&mut s, &sh, "    ");
    write_out(&mut s, &sh);
    s.push_str("}\n");
    s
}

/// The load of input matrix `{name}{m}`: pixel block `m` after the column `a` of part `i`'s
/// split, of its high halves (or its values whole), or of its low halves (`at.z` halves on).
fn load_a(name: &str, m: usize, (i, low): (usize, bool)) -> String {
    let low = if low { format!("at{i}.z + ") } else { String::new() };
    let at = format!("{low}(a + {}) * 16", m * 16);
    format!("        let {name}{m} = coopLoadT<coop_mat16x16<f16, A>>(&xs{i}[{at}], 16u);\n")
}

/// The multiply-adds of column `kx` of every tap for slice `sl` of part `i` with the
/// subgroup's blocks spanning `rows` output rows: the weights of the column's `k` taps are
/// loaded once, then each input row's blocks once, each taken by every output row it is a tap
/// of (`rows + k - 1` rows of loads where taps one by one take `rows · k`).
fn multiply_column(s: &mut String, kx: usize, (i, first): (usize, usize), sh: &Shape) {
    let Shape { k, nb, bn, slices, co_pad, rows, cols, .. } = *sh;
    let len = k * k * slices * 16 * co_pad;
    let blocks = co_pad / 16;
    let load = if weights_by_columns() { "coopLoad" } else { "coopLoadT" };
    s.push_str("        {\n");
    for ky in 0..k {
        let tap = (ky * k + kx) * slices + first;
        let _ = writeln!(s, "        let w{ky} = (({tap} + sl) * {blocks} + ob * {} + sn * {nb}) * 256;", bn / 16);
        for n in 0..nb {
            let at = format!("w{ky} + {}", n * 256);
            let _ = writeln!(s, "        let bh{ky}_{n} = {load}<coop_mat16x16<f16, B>>(&wt[{at}], 16u);");
            let _ = writeln!(s, "        let bl{ky}_{n} = {load}<coop_mat16x16<f16, B>>(&wt[{len} + {at}], 16u);");
        }
    }
    for iy in 0..rows + k - 1 {
        let _ = writeln!(s, "        {{\n        let a = o{i} + r{i}_{iy} + sl * at{i}.y + {kx};");
        for c in 0..cols {
            match sh.lower {
                true => s.push_str(&load_a("av", c, (i, false))),
                false => s.push_str(&(load_a("ah", c, (i, false)) + &load_a("al", c, (i, true)))),
            }
        }
        for ky in (0..k).filter(|&ky| iy >= ky && iy - ky < rows) {
            for c in 0..cols {
                let m = (iy - ky) * cols + c;
                for n in 0..nb {
                    let (h, l, mn) = (format!("bh{ky}_{n}"), format!("bl{ky}_{n}"), format!("{m}{n}"));
                    let mad = |acc: &str, a: &str, b: &str| {
                        format!("        {acc}{mn} = coopMultiplyAdd({a}{c}, {b}, {acc}{mn});\n")
                    };
                    match sh.lower {
                        true => s.push_str(&(mad("xx", "av", &h) + &mad("ll", "av", &l))),
                        false => s.push_str(
                            &(mad("hh", "ah", &h) + &mad("xx", "ah", &l) + &mad("xx", "al", &h) + &mad("ll", "al", &l)),
                        ),
                    }
                }
            }
        }
        s.push_str("        }\n");
    }
    s.push_str("        }\n");
}

/// Folds the float accumulators into the integer sums and clears them, one accumulator kind
/// and at most four blocks a subgroup at a time through `sc` (1 KiB per block and subgroup:
/// the `lower` form's six blocks and the upper parts' five go in two trips). Lane `l` owns element
/// `e = 32·j + l` of each 16x16 block: pixel `l % 16`, channel `2·j + l / 16`.
fn flush(s: &mut String, sh: &Shape, ind: &str) {
    let blocks = sh.blocks();
    for &(acc, weight) in sh.accs() {
        // Four blocks a subgroup at a time: what `sc` holds.
        for chunk in blocks.chunks(SC_BLOCKS) {
            for (b, (m, n)) in chunk.iter().enumerate() {
                let _ = writeln!(s, "{ind}coopStoreT({acc}{m}{n}, &sc[(sg * {SC_BLOCKS}u + {b}u) * 256u], 16u);");
            }
            let _ = writeln!(s, "{ind}workgroupBarrier();");
            for (b, (m, n)) in chunk.iter().enumerate() {
                for j in 0..8 {
                    let e = format!("(sg * {SC_BLOCKS}u + {b}u) * 256u + (lane % 16u) * 16u + {}u + lane / 16u", 2 * j);
                    let _ = writeln!(s, "{ind}a{m}{n}_{j} += i32(sc[{e}]) * {weight};");
                }
                let _ = writeln!(s, "{ind}{acc}{m}{n} = coop_mat16x16<f32, C>();");
            }
            let _ = writeln!(s, "{ind}workgroupBarrier();");
        }
    }
}

/// Rounds, activates and stores the sums a lane owns.
fn write_out(s: &mut String, sh: &Shape) {
    s.push_str("    let plane_out = p.out_w * p.out_h;\n");
    for (m, n) in sh.blocks() {
        let (r, c) = (m / sh.cols, m % sh.cols);
        for j in 0..8 {
            let _ = writeln!(s, "    {{\n        let px = px0 + sm * {} + {} + i32(lane % 16u);", sh.cols * 16, c * 16);
            let _ = writeln!(
                s,
                "        let c = ob * {} + sn * {} + {} + i32(lane / 16u);",
                sh.bn,
                sh.nb * 16,
                n * 16 + 2 * j
            );
            let _ =
                writeln!(s, "        let oyr = oy + {r};\n        if px < p.out_w && c < p.cout && oyr < p.out_h {{");
            let _ = writeln!(
                s,
                "            y[c * plane_out + oyr * p.out_w + px] = finish(c, a{m}{n}_{j});\n        }}\n    }}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::neural_cut::{block, lower_rows, upper_rows};
    use super::*;

    /// The split and the three sums give the integer dot product, and the bounds that keep
    /// the float sums exact hold for the extreme values: 14-bit weights in runs of
    /// [`FLUSH_TAPS`], the weights of up to 16 bits of 24-bit networks in runs of
    /// [`FLUSH_TAPS_WIDE`].
    #[test]
    fn split_sums_are_the_integer_sum() {
        for v in [-32768, -32767, -32705, -129, -128, -1, 0, 1, 127, 128, 32703, 32767] {
            let (hi, lo) = split(v);
            assert_eq!(256 * hi + lo, v);
            assert!((-128..128).contains(&lo) && hi.abs() <= 128, "{v}: {hi} {lo}");
        }
        // The largest halves over every activation and weight, so the largest terms of each
        // kind: a run of 16-channel taps stays within 2^24.
        let most = |range: std::ops::RangeInclusive<i32>| {
            range.map(split).fold((0, 0), |(h, l), (hi, lo)| (hi.abs().max(h), lo.abs().max(l)))
        };
        let (ah, al) = most(-32768..=32767);
        assert_eq!((ah, al), (128, 128));
        for (wmax, wide, wh_most) in [(8191, false, 32), (32767, true, 128)] {
            let (wh, wl) = most(-wmax..=wmax);
            assert_eq!((wh, wl), (wh_most, 128));
            let runs = (flush_taps(wide, false) * 16) as i64;
            for term in [ah * wh, ah * wl + al * wh, al * wl] {
                assert!(runs * term as i64 <= 1 << 24, "{term} in runs of {runs}");
            }
            let (a, w): (Vec<i32>, Vec<i32>) =
                (0..runs as i32).map(|i| ((i * 7919) % 65536 - 32768, (i * 104729) % (2 * wmax + 1) - wmax)).unzip();
            let mut sums = [0i64; 3];
            for (&a, &w) in a.iter().zip(&w) {
                let ((ah, al), (wh, wl)) = (split(a), split(w));
                sums[0] += (ah * wh) as i64;
                sums[1] += (ah * wl + al * wh) as i64;
                sums[2] += (al * wl) as i64;
            }
            assert!(sums.iter().all(|s| s.abs() <= 1 << 24));
            let direct = a.iter().zip(&w).fold(0i32, |s, (&a, &w)| s.wrapping_add(a.wrapping_mul(w)));
            let folded = ACCS.iter().zip(sums).fold(0i32, |f, (&(_, k), s)| f.wrapping_add((s as i32).wrapping_mul(k)));
            assert_eq!(folded, direct);
        }
    }

    /// The `lower` form: the lower parts of 24-bit values read whole, times the weights'
    /// halves (up to 16 bits), two sums that stay within 2^24 over a run of
    /// [`FLUSH_TAPS_LOWER`] and fold into the integer sum.
    #[test]
    fn lower_parts_read_whole_give_the_integer_sum() {
        assert_eq!(flush_taps(true, true), FLUSH_TAPS_LOWER);
        let lows = (-8388479..=8388479).step_by(97).map(|v| crate::neural::wide::lo(v) as i32);
        assert_eq!(lows.map(i32::abs).max(), Some(128));
        let runs = (FLUSH_TAPS_LOWER * 16) as i32;
        let (a, w): (Vec<i32>, Vec<i32>) =
            (0..runs).map(|i| ((i * 7919) % 256 - 128, (i * 104729) % 65535 - 32767)).unzip();
        let (wh, wl) = (-32767..=32767).map(split).fold((0, 0), |m, (h, l)| (m.0.max(h.abs()), m.1.max(l.abs())));
        assert!(wh <= 128 && wl <= 128);
        assert!(runs * 128 * 128 <= 1 << 24);
        let (mut xx, mut ll) = (0i64, 0i64);
        for (&a, &w) in a.iter().zip(&w) {
            let (wh, wl) = split(w);
            xx += (a * wh) as i64;
            ll += (a * wl) as i64;
        }
        assert!(xx.abs() <= 1 << 24 && ll.abs() <= 1 << 24);
        let direct = a.iter().zip(&w).fold(0i32, |s, (&a, &w)| s.wrapping_add(a * w));
        let [(_, kx), (_, kl)] = ACCS_LOWER;
        assert_eq!((xx as i32).wrapping_mul(kx).wrapping_add((ll as i32).wrapping_mul(kl)), direct);
    }

    #[test]
    fn the_shader_validates_with_naga() {
        for (cin, cout, k) in [(64usize, 32, 3), (3, 64, 3), (192, 64, 3), (64, 3, 1), (48, 12, 5)] {
            let rows = |mb, nb, rows| TensorTiling { mb, nb, rows };
            // The cuts `GIGASCALE_GPU_TENSOR_CUT` takes, and the forms' rows (`neural_cut`).
            let cuts = [rows(4, 1, 1), rows(2, 2, 1), rows(4, 1, 2), rows(2, 2, 2)];
            let forms = [3, 4, 5, 6, 8].map(|r| rows(r, 1, r));
            for t in cuts.into_iter().chain(forms) {
                for form in [(FLUSH_TAPS, false), (FLUSH_TAPS_WIDE, false), (FLUSH_TAPS_LOWER, true)] {
                    validates(&tensor_conv_shader(&[cin.div_ceil(16)], (cout, k), t, form), cin, cout, k);
                }
            }
            let parts = [4, 2, 2, 2, 1];
            let t = TensorTiling::DEFAULT;
            for form in [(FLUSH_TAPS, false), (FLUSH_TAPS_LOWER, true)] {
                validates(&tensor_conv_shader(&parts[..MAX_PARTS], (cout, k), t, form), cin, cout, k);
            }
            use super::super::neural_split::{split_shader, SplitForm as F};
            for form in [F::Halves, F::Whole, F::Both] {
                validates(&split_shader(cin, k, form), cin, cout, k);
            }
        }
    }

    /// Blocks spanning four output rows take the same multiply-adds as one row's four blocks
    /// with 40 % fewer loads: each input row's block is loaded once for the three taps that
    /// read it, and the weights once a kernel column.
    #[test]
    fn rows_of_blocks_share_their_loads() {
        let count = |t: TensorTiling, lower: bool| {
            let form = (flush_taps(true, lower), lower);
            let src = tensor_conv_shader(&[1], (64, 3), t, form);
            let n = |what: &str| src.matches(what).count();
            // The low halves lie `at.z` halves on: each is read there, as many as high ones.
            assert_eq!(n("&xs0[at0.z + (a + "), if lower { 0 } else { n("coop_mat16x16<f16, A>>(") / 2 });
            (n("coop_mat16x16<f16, A>>("), n("coop_mat16x16<f16, B>>("), n("coopMultiplyAdd("))
        };
        let one_row = TensorTiling { mb: 4, nb: 1, rows: 1 };
        let rows_of = |rows| TensorTiling { mb: rows, nb: 1, rows };
        // One slice, 3x3 taps: 9 taps x 4 blocks x 2 halves, or 6 rows x 3 columns x 2 halves.
        assert_eq!(count(one_row, false), (72, 18, 144));
        assert_eq!(count(TensorTiling::DEFAULT, false), (36, 18, 144));
        assert_eq!(count(one_row, true), (36, 18, 72));
        assert_eq!(block(64, TensorTiling::DEFAULT), (16, 64, 4));
        assert_eq!(block(32, TensorTiling::DEFAULT), (32, 32, 4));
        // Up to 16 outputs (a last convolution's three): one channel block, four pixel spans.
        assert_eq!(block(3, TensorTiling::DEFAULT), (64, 16, 4));
        assert_eq!(block(12, TensorTiling::DEFAULT.form(true, false)), (64, 16, upper_rows()));
        // The lower form's default: its blocks over more rows, each input row loaded once for
        // all of them (6 rows: 8 input rows where four blocks' two columns take 12).
        let r = lower_rows();
        assert_eq!(count(TensorTiling::DEFAULT.form(true, true), true), ((r + 2) * 3, 18, r * 9 * 2));
        assert_eq!(count(rows_of(6), true), (24, 18, 108));
        assert_eq!(block(64, TensorTiling::DEFAULT.form(true, true)), (16, 64, r));
        // The upper parts' default: five rows, 7 input rows of halves for 5 output rows.
        let u = upper_rows();
        assert_eq!(count(TensorTiling::DEFAULT.form(true, false), false), ((u + 2) * 3 * 2, 18, u * 9 * 4));
        assert_eq!(count(rows_of(5), false), (42, 18, 180));
        assert_eq!(block(64, TensorTiling::DEFAULT.form(true, false)), (16, 64, u));
        // 16-bit networks keep the default's four rows.
        assert_eq!(TensorTiling::DEFAULT.form(false, false), TensorTiling::DEFAULT);
    }

    /// A layer whose taps fit one run folds once, after its loop; with shorter runs the loop
    /// folds before a slice that would take the run past them, never after the last.
    #[test]
    fn a_layer_of_one_run_folds_once() {
        let t = TensorTiling::DEFAULT;
        let barriers =
            |flush_at| tensor_conv_shader(&[4], (64, 3), t, (flush_at, false)).matches("workgroupBarrier").count();
        // Two barriers an accumulator kind a fold.
        assert_eq!(barriers(36), 2 * ACCS.len());
        assert_eq!(barriers(63), 2 * ACCS.len());
        assert_eq!(barriers(27), 2 * 2 * ACCS.len());
        let src = tensor_conv_shader(&[4], (64, 3), t, (18, false));
        assert!(src.contains("if taps + 9 > 18 {"), "the fold comes before a slice");
        // Six blocks (the lower form's rows) fold in two trips through `sc`, each within its
        // four blocks a subgroup.
        let six = TensorTiling { mb: 6, nb: 1, rows: 6 };
        let src = tensor_conv_shader(&[4], (64, 3), six, (36, true));
        assert_eq!(src.matches("workgroupBarrier").count(), 2 * 2 * ACCS_LOWER.len());
        assert_eq!(src.matches("coopStoreT(").count(), 6 * ACCS_LOWER.len());
        assert!((0..4).all(|b| src.contains(&format!("sc[(sg * 4u + {b}u) * 256u]"))));
        assert!(!src.contains("sg * 4u + 4u"), "a block past the four `sc` holds");
        // Five blocks (the upper parts' rows) in two trips too: four, then one.
        let five = TensorTiling { mb: 5, nb: 1, rows: 5 };
        let src = tensor_conv_shader(&[4], (64, 3), five, (36, false));
        assert_eq!(src.matches("workgroupBarrier").count(), 2 * 2 * ACCS.len());
        assert_eq!(src.matches("coopStoreT(").count(), 5 * ACCS.len());
        assert!(!src.contains("sg * 4u + 4u"), "a block past the four `sc` holds");
    }

    fn validates(src: &str, cin: usize, cout: usize, k: usize) {
        let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{}", e.emit_to_string(src)));
        use naga::valid::Capabilities as C;
        let caps = C::SHADER_FLOAT16 | C::COOPERATIVE_MATRIX | C::SUBGROUP;
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
        let info = v.validate(&module).unwrap_or_else(|e| panic!("{}", e.emit_to_string(src)));
        let spv = naga::back::spv::write_vec(&module, &info, &Default::default(), None);
        assert!(spv.is_ok_and(|words| words.len() > 1000), "no SPIR-V for {cin} {cout} {k}");
    }
}
