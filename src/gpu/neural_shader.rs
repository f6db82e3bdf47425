//! The WGSL of the neural engine's convolutions, generated per layer shape from a template:
//! how the loops are written decides the speed (registers, not private arrays; the column
//! loop unrolled; weights read as vectors at addresses the whole workgroup shares).
//!
//! An invocation computes [`PX`] neighbouring output pixels of one row for [`OC`] output
//! channels (64 accumulators in registers); a workgroup of [`GROUP`] invocations covers
//! `GROUP·PX` pixels of a row. For each input channel and kernel row inside the image it loads
//! the `PX + K - 1` input columns its pixels read (zero outside the image, where ncnn's padding
//! is; unchecked loads when all lie inside) and, per kernel column, four `vec4<i32>` of
//! weights. Dilated convolutions stay on the CPU. Products are summed in wrapping `i32`,
//! as the CPU's kernels do, then rounded by the shared `neural_common.wgsl` helpers.

use std::fmt::Write;

/// How a convolution's work is cut: output pixels and output channels per invocation,
/// invocations per workgroup. The default is what the H200 ran fastest; benchmarks may set
/// `GIGASCALE_GPU_CONV=PXxOCxGROUP` (e.g. `4x16x64`) to try others — the bytes never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ConvTiling {
    pub px: usize,
    /// A multiple of 4 (weights are read as `vec4`).
    pub oc: usize,
    pub group: usize,
}

impl ConvTiling {
    /// The default, or `GIGASCALE_GPU_CONV` when it is well-formed.
    pub(super) fn from_env() -> ConvTiling {
        let parsed = std::env::var("GIGASCALE_GPU_CONV").ok().and_then(|v| {
            let n: Vec<usize> = v.split('x').filter_map(|t| t.parse().ok()).collect();
            match n[..] {
                [px @ 1..=16, oc @ 4..=32, group @ 32..=256] if oc % 4 == 0 => Some(ConvTiling { px, oc, group }),
                _ => None,
            }
        });
        parsed.unwrap_or(ConvTiling { px: 4, oc: 16, group: 64 })
    }
}

/// Invocations per workgroup of the elementwise ops.
pub(crate) const OPS_GROUP: usize = 64;

pub(super) const COMMON: &str = include_str!("../../shaders/neural_common.wgsl");

/// The entry points of `shaders/neural_ops.wgsl` and `shaders/neural_wide.wgsl`.
pub(super) const OPS: [&str; 23] = [
    "widen",
    "row_sums",
    "interleave",
    "shuffle",
    "unshuffle",
    "crop",
    "nearest",
    "sum2",
    "concat",
    "resize",
    "samples",
    "product",
    "affine",
    "lookup",
    "finish_wide",
    "finish_sum_wide",
    "part",
    "sum2_wide",
    "concat_wide",
    "affine_wide",
    "lookup_wide",
    "product_wide",
    "resize_wide",
];

/// The 24-bit finishes and sums in 32-bit steps: each name's pipeline is its entry point's
/// with `NARROW_STEPS` set (`shaders/neural_wide.wgsl`), for the passes whose terms allow it
/// (`neural_wide.rs`).
pub(super) const NARROW_OPS: [(&str, &str); 3] = [
    ("finish_wide (32-bit steps)", "finish_wide"),
    ("finish_sum_wide (32-bit steps)", "finish_sum_wide"),
    ("sum2_wide (32-bit steps)", "sum2_wide"),
];

/// The entry points of `shaders/neural_ops.wgsl` and `shaders/neural_wide.wgsl`, with the
/// rounding helpers.
pub(crate) fn ops_shader() -> String {
    let (ops, wide) = (include_str!("../../shaders/neural_ops.wgsl"), include_str!("../../shaders/neural_wide.wgsl"));
    format!("{COMMON}\n{ops}\n{wide}")
}

/// A convolution's parameters (binding 0): input window, global size, padding, output window,
/// dilation, output channels, and the split shader's shift and part (`split_value` in
/// `shaders/neural_common.wgsl`).
pub(super) const CONV_PARAMS: &str = r#"
struct Params {
    in_x0: i32, in_y0: i32, in_w: i32, in_h: i32,
    gw: i32, gh: i32, pad_x: i32, pad_y: i32,
    out_x0: i32, out_y0: i32, out_w: i32, out_h: i32,
    dil: i32, cout: i32, shift: i32, part: i32,
}
@group(0) @binding(0) var<uniform> p: Params;
"#;

/// The input blob as the plain shaders read it (binding 1).
pub(super) const CONV_INPUT: &str = "@group(0) @binding(1) var<storage, read> x: array<i32>;\n";

/// What every convolution shader declares after its input: per-channel rounding terms and
/// output (binding 2, the weights, is each shader's own), and the rounding of a sum.
pub(super) const CONV_FINISH: &str = r#"
// Per output channel: bias, shift, slope, whether there is a slope.
@group(0) @binding(3) var<storage, read> q: array<i32>;
@group(0) @binding(4) var<storage, read_write> y: array<i32>;

// As `QConv::finish`: round, activate (the negative side kept where its product fits 32
// bits), then saturate.
fn finish(o: i32, v: i32) -> i32 {
    let r = shift_round(v + q[o * 4], q[o * 4 + 1]);
    if r < 0 && q[o * 4 + 3] != 0 {
        let k = q[o * 4 + 2];
        return saturate16(shift_round(max(r, -(2147483647 / max(abs(k), 1))) * k, 15));
    }
    return saturate16(r);
}
"#;

/// [`CONV_FINISH`] for a shader that writes its raw wrapping sums (24-bit activations: the
/// sums over the two parts of the input are finished together by `finish_wide`).
const CONV_RAW: &str = r#"
@group(0) @binding(3) var<storage, read> q: array<i32>;
@group(0) @binding(4) var<storage, read_write> y: array<i32>;

fn finish(o: i32, v: i32) -> i32 {
    _ = q[0];
    return v;
}
"#;

/// A convolution shader `source` writing raw sums where `raw`.
pub(crate) fn raw_sums(source: String, raw: bool) -> String {
    match raw {
        true => source.replace(CONV_FINISH, CONV_RAW),
        false => source,
    }
}

const HEADER: &str = r#"
// [output block][input channel][kernel tap][4]: 16 output channels' weights as 4 vectors.
@group(0) @binding(2) var<storage, read> wv: array<vec4<i32>>;

// Input sample at global column `gx` of the row starting at `row` (zero outside the image).
fn ld(row: i32, gx: i32) -> i32 {
    if gx < 0 || gx >= p.gw { return 0; }
    return x[max(row + gx, 0)];
}
"#;

/// The convolution shader for `cin` input channels and a `k x k` kernel.
#[allow(non_snake_case)]
pub(crate) fn conv_shader(cin: usize, k: usize, t: ConvTiling) -> String {
    let ConvTiling { px: PX, oc: OC, group: GROUP } = t;
    let mut s = String::with_capacity(16 << 10);
    s.push_str(COMMON);
    s.push_str(CONV_PARAMS);
    s.push_str(CONV_INPUT);
    s.push_str(CONV_FINISH);
    s.push_str(HEADER);
    let _ = writeln!(s, "@compute @workgroup_size({GROUP})");
    s.push_str("fn main(@builtin(global_invocation_id) gid: vec3<u32>) {\n");
    s.push_str("    let oy = i32(gid.y);\n    if oy >= p.out_h { return; }\n");
    let _ = writeln!(s, "    let px0 = i32(gid.x) * {PX};\n    let ob = i32(gid.z);");
    s.push_str("    let plane = p.in_w * p.in_h;\n");
    for j in 0..PX {
        for o in 0..OC {
            let _ = writeln!(s, "    var a{j}_{o}: i32 = 0;");
        }
    }
    let _ = writeln!(s, "    for (var ci = 0; ci < {cin}; ci++) {{");
    let _ = writeln!(s, "        for (var ky = 0; ky < {k}; ky++) {{");
    s.push_str("            let gy = p.out_y0 + oy + ky * p.dil - p.pad_y;\n");
    s.push_str("            if gy < 0 || gy >= p.gh { continue; }\n");
    s.push_str("            let row = ci * plane + (gy - p.in_y0) * p.in_w - p.in_x0;\n");
    s.push_str("            let gx0 = p.out_x0 + px0 - p.pad_x;\n");
    // The run of input columns this invocation's pixels read along the kernel row (dilation
    // 1): loaded once, unchecked inside the image, checked at its edges.
    let run = PX + k - 1;
    for m in 0..run {
        let _ = writeln!(s, "            var x{m}: i32;");
    }
    let _ = writeln!(s, "            if gx0 >= 0 && gx0 + {} < p.gw {{", run - 1);
    for m in 0..run {
        let _ = writeln!(s, "                x{m} = x[row + gx0 + {m}];");
    }
    s.push_str("            } else {\n");
    for m in 0..run {
        let _ = writeln!(s, "                x{m} = ld(row, gx0 + {m});");
    }
    s.push_str("            }\n");
    for kx in 0..k {
        let _ = writeln!(s, "            let wb{kx} = ((ob * {cin} + ci) * {} + ky * {k} + {kx}) * {};", k * k, OC / 4);
        for v in 0..OC / 4 {
            let _ = writeln!(s, "            let w{kx}_{v} = wv[wb{kx} + {v}];");
        }
        for j in 0..PX {
            for o in 0..OC {
                let lane = ["x", "y", "z", "w"][o % 4];
                let _ = writeln!(s, "            a{j}_{o} += x{} * w{kx}_{}.{lane};", j + kx, o / 4);
            }
        }
    }
    s.push_str("        }\n    }\n");
    for j in 0..PX {
        let _ = writeln!(s, "    if px0 + {j} < p.out_w {{");
        let _ = writeln!(s, "        let at = oy * p.out_w + px0 + {j};");
        for o in 0..OC {
            let _ = writeln!(s, "        if ob * {OC} + {o} < p.cout {{");
            let _ = writeln!(s, "            let c = ob * {OC} + {o};");
            let _ = writeln!(s, "            y[c * p.out_w * p.out_h + at] = finish(c, a{j}_{o});\n        }}");
        }
        s.push_str("    }\n");
    }
    s.push_str("}\n");
    s
}

/// The weights of a convolution (`[out][in][tap]`, `cout x cin x kk` values) in the shader's
/// block order, zero past the last output channel.
#[allow(non_snake_case)]
pub(crate) fn weight_blocks(w: &[i32], cout: usize, cin: usize, kk: usize, OC: usize) -> Vec<i32> {
    let blocks = cout.div_ceil(OC);
    let mut out = vec![0i32; blocks * cin * kk * OC];
    for o in 0..cout {
        for ci in 0..cin {
            for t in 0..kk {
                out[((o / OC * cin + ci) * kk + t) * OC + o % OC] = w[(o * cin + ci) * kk + t];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    #[allow(non_snake_case)]
    fn weights_go_to_their_blocks() {
        let OC = 16;
        // 18 output channels, 2 inputs, 1 tap: channel 17 is lane 1 of block 1.
        let w: Vec<i32> = (0..36).collect();
        let b = weight_blocks(&w, 18, 2, 1, OC);
        assert_eq!(b.len(), 2 * 2 * OC);
        assert_eq!((b[(2 + 1) * OC + 1], b[OC + 3]), (w[17 * 2 + 1], w[3 * 2 + 1]));
        let t = ConvTiling { px: 4, oc: 16, group: 64 };
        assert!(conv_shader(3, 3, t).contains("a3_15 += x5 * w2_3.w;"));
    }
}
