//! Convolutions on the tensor cores, exactly: the engine's integer sums computed by
//! cooperative-matrix multiply-adds of half floats with single-float accumulators.
//!
//! A half float holds every integer up to 2048 exactly and a single float every integer up to
//! 2^24, so the 16-bit activations and 14-bit weights are split into 8-bit halves,
//! `a = 128·ah + al` and `w = 128·wh + wl` (`al`, `wl` in `[-64, 63]`; `ah` in `[-256, 256]`,
//! `wh` in `[-64, 64]`). Three accumulators per 16x16 output block hold `Σ ah·wh`,
//! `Σ (ah·wl + al·wh)` and `Σ al·wl`; every product is at most 2^14 in magnitude, so a run of
//! [`FLUSH_TAPS`] taps of 16 channels (512 products per sum, 1024 in the middle one) stays
//! within 2^24, where single floats add integers without rounding. At the end of each run the
//! accumulators are converted to integers and folded into `a·w = 2^14·HH + 2^7·X + LL` in
//! wrapping 32-bit arithmetic — the very sum the CPU's kernels wrap, so the bytes are the
//! same as every other backend's.
//!
//! A workgroup is four subgroups of 32 invocations (the cooperative matrices' scope) and
//! covers 64 pixels of one output row: for layers of up to 32 outputs each subgroup computes
//! one 16-pixel block times two 16-channel blocks, otherwise two pixel blocks times two
//! channel blocks (64 pixels, 64 channels). For each 16-channel slice of the input the
//! workgroup stages the `k` input rows it reads (`64 + k - 1` columns each, already split) in
//! workgroup memory; each invocation loads its share of the next slice while the current
//! one is multiplied. The weights are read as matrices straight from their buffer
//! (`[half][tap][input channel][output channel]`, cached by every workgroup alike).
//!
//! Measured on an H200 (docs/benchmarks.md, 2026-12-03 (10)): exact — the CPU's bytes for
//! every model tried — but 1.4-1.6x slower than the plain integer shaders
//! (`neural_shader.rs`), so it runs only when `GIGASCALE_GPU_TENSOR=1` asks for it.

use half::f16;
use std::fmt::Write;

/// Taps (each 16 input channels) summed in single floats before they are folded into the
/// integer sums: `32 · 16 = 512` products of at most 2^14, so at most 2^23 (2^24 for the
/// middle accumulator, which sums two products per tap).
pub(crate) const FLUSH_TAPS: usize = 32;
/// The largest kernel this path takes (one 16-channel slice's taps must fit one run).
pub(crate) const MAX_KERNEL: usize = 5;

/// Output pixels and output channels of one workgroup for a layer of `cout` outputs.
pub(crate) fn block(cout: usize) -> (usize, usize) {
    match cout > 32 {
        true => (64, 64),
        false => (64, 32),
    }
}

/// Bytes of workgroup memory the shader of a `k x k` layer with `cout` outputs needs.
pub(crate) fn workgroup_bytes(cout: usize, k: usize) -> usize {
    let run = block(cout).0 + k - 1;
    k * run * 16 * 2 * 2 + 4096 * 4
}

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

/// `v = 128·hi + lo` with `lo` in `[-64, 63]` (the shader's split of an activation).
pub(crate) fn split(v: i32) -> (i32, i32) {
    let lo = ((v + 64) & 127) - 64;
    ((v - lo) >> 7, lo)
}

/// Channels rounded up to whole 16-channel slices.
pub(crate) fn padded(c: usize, to: usize) -> usize {
    c.div_ceil(to) * to
}

/// The weights (`[out][in][tap]`) as the shader reads them: the high halves, then the low
/// halves, each `[tap][cin padded to 16][cout padded to 32]` half floats, packed two to a word.
pub(crate) fn tensor_weights(w: &[i32], cout: usize, cin: usize, kk: usize) -> Vec<i32> {
    let (ci_pad, co_pad) = (padded(cin, 16), padded(cout, block(cout).1));
    let len = kk * ci_pad * co_pad;
    let mut halves = vec![f16::ZERO; 2 * len];
    for o in 0..cout {
        for ci in 0..cin {
            for t in 0..kk {
                let (hi, lo) = split(w[(o * cin + ci) * kk + t]);
                let at = (t * ci_pad + ci) * co_pad + o;
                halves[at] = f16::from_f32(hi as f32);
                halves[len + at] = f16::from_f32(lo as f32);
            }
        }
    }
    halves.chunks(2).map(|p| (p[0].to_bits() as u32 | (p[1].to_bits() as u32) << 16) as i32).collect()
}

const HEADER: &str = r#"
// [high, low][tap][input channel][output channel] halves.
@group(0) @binding(2) var<storage, read> wt: array<f16>;
"#;

/// The three float accumulators and their weights in the integer sum.
const ACCS: [(&str, i32); 3] = [("hh", 16384), ("xx", 128), ("ll", 1)];
/// Invocations of a workgroup (four subgroups).
const GROUP: usize = 128;

/// A layer's shape as the generator needs it.
struct Shape {
    k: usize,
    cin: usize,
    /// Input columns staged per kernel row.
    run: usize,
    /// 16-pixel blocks per subgroup (1 or 2); the subgroups cover `64 / (16·mb)` pixel spans.
    mb: usize,
    /// Output channels of a workgroup.
    bn: usize,
    ci_pad: usize,
    co_pad: usize,
}

impl Shape {
    fn new(cin: usize, cout: usize, k: usize) -> Shape {
        let (bm, bn) = block(cout);
        let mb = if bn == 64 { 2 } else { 1 };
        Shape { k, cin, run: bm + k - 1, mb, bn, ci_pad: padded(cin, 16), co_pad: padded(cout, bn) }
    }

    /// The subgroup's (pixel block, channel block) pairs.
    fn blocks(&self) -> Vec<(usize, usize)> {
        (0..self.mb).flat_map(|m| [(m, 0), (m, 1)]).collect()
    }

    /// Samples staged per 16-channel slice, and how many each invocation loads.
    fn staged(&self) -> (usize, usize) {
        let n = self.k * self.run * 16;
        (n, n.div_ceil(GROUP))
    }
}

/// The tensor-core convolution shader for `cin` input and `cout` output channels and a
/// `k x k` kernel of dilation 1.
pub(crate) fn tensor_conv_shader(cin: usize, cout: usize, k: usize) -> String {
    let sh = Shape::new(cin, cout, k);
    let mut s = String::with_capacity(48 << 10);
    s.push_str("enable f16;\nenable wgpu_cooperative_matrix;\n");
    s.push_str(super::neural_shader::COMMON);
    s.push_str(super::neural_shader::CONV_COMMON);
    s.push_str(HEADER);
    let (staged, loads) = sh.staged();
    let _ = writeln!(s, "var<workgroup> sh: array<f16, {staged}>;\nvar<workgroup> sl: array<f16, {staged}>;");
    let _ = writeln!(s, "var<workgroup> sc: array<f32, 4096>;\n@compute @workgroup_size({GROUP})");
    s.push_str("fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32,\n");
    s.push_str("        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {\n");
    let spans = 4 / sh.mb;
    let _ = writeln!(s, "    let oy = i32(wg.y);\n    let px0 = i32(wg.x) * 64;\n    let ob = i32(wg.z);");
    let _ = writeln!(s, "    let sm = i32(sg) % {spans};\n    let sn = i32(sg) / {spans};");
    s.push_str("    let plane = p.in_w * p.in_h;\n    let gx0 = p.out_x0 + px0 - p.pad_x;\n");
    s.push_str("    let gy0 = p.out_y0 + oy - p.pad_y;\n");
    for (m, n) in sh.blocks() {
        for j in 0..8 {
            let _ = writeln!(s, "    var a{m}{n}_{j}: i32 = 0;");
        }
        for (acc, _) in ACCS {
            let _ = writeln!(s, "    var {acc}{m}{n} = coop_mat16x16<f32, C>();");
        }
    }
    for i in 0..loads {
        let _ = writeln!(s, "    var v{i} = 0;");
    }
    load_slice(&mut s, &sh, "0", "    ");
    s.push_str("    var taps = 0;\n");
    let _ = writeln!(s, "    for (var cc = 0; cc < {}; cc += 16) {{", sh.ci_pad);
    store_slice(&mut s, &sh);
    let _ = writeln!(s, "        if cc + 16 < {} {{", sh.ci_pad);
    load_slice(&mut s, &sh, "cc + 16", "            ");
    s.push_str("        }\n");
    for ky in 0..k {
        for kx in 0..k {
            multiply_tap(&mut s, ky, kx, &sh);
        }
    }
    let _ = writeln!(s, "        taps += {};\n        if taps + {} > {FLUSH_TAPS} {{", k * k, k * k);
    flush(&mut s, &sh, "            ");
    s.push_str("            taps = 0;\n        }\n    }\n");
    flush(&mut s, &sh, "    ");
    write_out(&mut s, &sh);
    s.push_str("}\n");
    s
}

/// Staged sample `e` (`t + 128·i`): channel `e / rows`, then kernel row and column.
fn element(sh: &Shape, i: usize) -> (String, String, String) {
    let rows = sh.k * sh.run;
    let e = format!("(i32(t) + {})", i * GROUP);
    (format!("{e} / {rows}"), format!("{e} % {rows}"), e)
}

/// Loads this invocation's samples of the 16-channel slice from `base` into `v0..`: zero
/// outside the image and past the last channel. The loads are in flight while the previous
/// slice's multiply-adds run.
fn load_slice(s: &mut String, sh: &Shape, base: &str, ind: &str) {
    let (n, loads) = sh.staged();
    for i in 0..loads {
        let (c, r, e) = element(sh, i);
        let _ = writeln!(s, "{ind}{{\n{ind}    let ch = {base} + {c};\n{ind}    let r = {r};");
        let _ = writeln!(s, "{ind}    let gy = gy0 + r / {};\n{ind}    let gx = gx0 + r % {};", sh.run, sh.run);
        let _ = writeln!(s, "{ind}    v{i} = 0;");
        let _ =
            writeln!(s, "{ind}    if {e} < {n} && ch < {} && gy >= 0 && gy < p.gh && gx >= 0 && gx < p.gw {{", sh.cin);
        let _ = writeln!(s, "{ind}        v{i} = x[ch * plane + (gy - p.in_y0) * p.in_w + gx - p.in_x0];");
        let _ = writeln!(s, "{ind}    }}\n{ind}}}");
    }
}

/// Writes the loaded samples to workgroup memory, split into high and low halves
/// (`[kernel row][column][channel]`), between two barriers.
fn store_slice(s: &mut String, sh: &Shape) {
    let (n, loads) = sh.staged();
    s.push_str("        workgroupBarrier();\n");
    for i in 0..loads {
        let (c, r, e) = element(sh, i);
        let _ = writeln!(s, "        if {e} < {n} {{\n            let at = ({r}) * 16 + {c};");
        let _ = writeln!(s, "            let lo = ((v{i} + 64) & 127) - 64;");
        let _ = writeln!(
            s,
            "            sh[at] = f16(f32((v{i} - lo) >> 7u));\n            sl[at] = f16(f32(lo));\n        }}"
        );
    }
    s.push_str("        workgroupBarrier();\n");
}

/// The multiply-adds of tap `(ky, kx)`: the subgroup's pixel blocks times its two channel
/// blocks.
fn multiply_tap(s: &mut String, ky: usize, kx: usize, sh: &Shape) {
    let Shape { k, run, mb, bn, ci_pad, co_pad, .. } = *sh;
    let len = k * k * ci_pad * co_pad;
    s.push_str("        {\n");
    let _ = writeln!(s, "        let w = ({} + cc) * {co_pad} + ob * {bn} + sn * 32;", (ky * k + kx) * ci_pad);
    for n in 0..2 {
        let _ = writeln!(s, "        let bh{n} = coopLoadT<coop_mat16x16<f16, B>>(&wt[w + {}], {co_pad}u);", n * 16);
        let _ = writeln!(
            s,
            "        let bl{n} = coopLoadT<coop_mat16x16<f16, B>>(&wt[{len} + w + {}], {co_pad}u);",
            n * 16
        );
    }
    for m in 0..mb {
        let at = format!("({} + sm * {}) * 16", ky * run + m * 16 + kx, mb * 16);
        let _ = writeln!(s, "        let ah{m} = coopLoadT<coop_mat16x16<f16, A>>(&sh[{at}], 16u);");
        let _ = writeln!(s, "        let al{m} = coopLoadT<coop_mat16x16<f16, A>>(&sl[{at}], 16u);");
    }
    for (m, n) in sh.blocks() {
        let _ = writeln!(s, "        hh{m}{n} = coopMultiplyAdd(ah{m}, bh{n}, hh{m}{n});");
        let _ = writeln!(s, "        xx{m}{n} = coopMultiplyAdd(ah{m}, bl{n}, xx{m}{n});");
        let _ = writeln!(s, "        xx{m}{n} = coopMultiplyAdd(al{m}, bh{n}, xx{m}{n});");
        let _ = writeln!(s, "        ll{m}{n} = coopMultiplyAdd(al{m}, bl{n}, ll{m}{n});");
    }
    s.push_str("        }\n");
}

/// Folds the float accumulators into the integer sums and clears them, one accumulator kind
/// at a time through `sc` (1 KiB per block and subgroup). Lane `l` owns element
/// `e = 32·j + l` of each 16x16 block: pixel `l % 16`, channel `2·j + l / 16`.
fn flush(s: &mut String, sh: &Shape, ind: &str) {
    for (acc, weight) in ACCS {
        for (b, (m, n)) in sh.blocks().into_iter().enumerate() {
            let _ = writeln!(s, "{ind}coopStoreT({acc}{m}{n}, &sc[(sg * 4u + {b}u) * 256u], 16u);");
        }
        let _ = writeln!(s, "{ind}workgroupBarrier();");
        for (b, (m, n)) in sh.blocks().into_iter().enumerate() {
            for j in 0..8 {
                let e = format!("(sg * 4u + {b}u) * 256u + (lane % 16u) * 16u + {}u + lane / 16u", 2 * j);
                let _ = writeln!(s, "{ind}a{m}{n}_{j} += i32(sc[{e}]) * {weight};");
            }
            let _ = writeln!(s, "{ind}{acc}{m}{n} = coop_mat16x16<f32, C>();");
        }
        let _ = writeln!(s, "{ind}workgroupBarrier();");
    }
}

/// Rounds, activates and stores the sums a lane owns.
fn write_out(s: &mut String, sh: &Shape) {
    s.push_str("    let row = oy * p.out_w;\n    let plane_out = p.out_w * p.out_h;\n");
    for (m, n) in sh.blocks() {
        for j in 0..8 {
            let _ = writeln!(s, "    {{\n        let px = px0 + sm * {} + {} + i32(lane % 16u);", sh.mb * 16, m * 16);
            let _ = writeln!(s, "        let c = ob * {} + sn * 32 + {} + i32(lane / 16u);", sh.bn, n * 16 + 2 * j);
            s.push_str("        if px < p.out_w && c < p.cout {\n");
            let _ =
                writeln!(s, "            y[c * plane_out + row + px] = finish(c, a{m}{n}_{j});\n        }}\n    }}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The split and the three sums give the integer dot product, and the bounds that keep
    /// the float sums exact hold for the extreme values.
    #[test]
    fn split_sums_are_the_integer_sum() {
        for v in [-32767, -32705, -65, -64, -1, 0, 1, 63, 64, 32703, 32767] {
            let (hi, lo) = split(v);
            assert_eq!(128 * hi + lo, v);
            assert!((-64..64).contains(&lo) && hi.abs() <= 256, "{v}: {hi} {lo}");
        }
        for w in [-8191, -8128, 8127, 8191] {
            assert!(split(w).0.abs() <= 64);
        }
        let (a, w): (Vec<i32>, Vec<i32>) =
            (0..512).map(|i| ((i * 7919) % 65535 - 32767, (i * 104729) % 16383 - 8191)).unzip();
        let mut sums = [0i64; 3];
        for (&a, &w) in a.iter().zip(&w) {
            let ((ah, al), (wh, wl)) = (split(a), split(w));
            sums[0] += (ah * wh) as i64;
            sums[1] += (ah * wl + al * wh) as i64;
            sums[2] += (al * wl) as i64;
        }
        assert!(sums.iter().all(|s| s.abs() <= 1 << 24));
        let direct = a.iter().zip(&w).fold(0i32, |s, (&a, &w)| s.wrapping_add(a * w));
        let folded =
            (sums[0] as i32).wrapping_mul(16384).wrapping_add(sums[1] as i32 * 128).wrapping_add(sums[2] as i32);
        assert_eq!(folded, direct);
    }

    #[test]
    fn weights_are_split_into_their_places() {
        // 2 outputs, 3 inputs, 1 tap.
        let w = vec![1000, -3, 64, 8191, -8191, 7];
        let words = tensor_weights(&w, 2, 3, 1);
        let halves: Vec<f32> = words
            .iter()
            .flat_map(|&v| [v as u32 as u16, (v as u32 >> 16) as u16])
            .map(|b| f16::from_bits(b).to_f32())
            .collect();
        let len = 16 * 32; // one tap, 16 input channels, 32 outputs
        assert_eq!(halves.len(), 2 * len);
        // Output 1, input 0 is w[3] = 8191 = 128·64 - 1.
        assert_eq!((halves[1], halves[len + 1]), (64.0, -1.0));
        // Output 0, input 2 is w[2] = 64 = 128·1 - 64.
        assert_eq!((halves[2 * 32], halves[len + 2 * 32]), (1.0, -64.0));
    }

    #[test]
    fn the_shader_validates_with_naga() {
        for (cin, cout, k) in [(64, 32, 3), (3, 64, 3), (192, 64, 3), (64, 3, 1), (48, 12, 5)] {
            let src = tensor_conv_shader(cin, cout, k);
            let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{}", e.emit_to_string(&src)));
            use naga::valid::Capabilities as C;
            let caps = C::SHADER_FLOAT16 | C::COOPERATIVE_MATRIX | C::SUBGROUP;
            let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
            let info = v.validate(&module).unwrap_or_else(|e| panic!("{}", e.emit_to_string(&src)));
            let spv = naga::back::spv::write_vec(&module, &info, &Default::default(), None);
            assert!(spv.is_ok_and(|words| words.len() > 1000), "no SPIR-V for {cin} {cout} {k}");
        }
    }
}
