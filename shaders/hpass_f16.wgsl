// Pass 1 with an f16 intermediate (--precision f16): the exact integer horizontal pass of
// hpass.wgsl, whose result is stored as t / 2^T in half precision (about 1.6 at most), halving
// the largest device buffer. Not bit-identical to the CPU; error bound in docs/how-it-works.md.

@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read> cx: array<i32>;
@group(0) @binding(3) var<storage, read_write> inter: array<f16>;

fn sample(k: u32) -> i64 {
    if (p.bps == 1u) {
        return i64((src[k >> 2u] >> ((k & 3u) * 8u)) & 0xFFu);
    }
    return i64((src[k >> 1u] >> ((k & 1u) * 16u)) & 0xFFFFu);
}

fn premultiplied(px: u32, c: u32) -> i64 {
    let v = sample(px * p.ch + c);
    if (is_colour(c)) {
        return v * sample(px * p.ch + p.ch - 1u);
    }
    return v;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = flat_index(gid);
    let tw = p.out_w;
    if (idx >= p.src_h * tw * p.ch) {
        return;
    }
    let c = idx % p.ch;
    let i = (idx / p.ch) % tw;
    let r = idx / (p.ch * tw);
    let ox = p.out_x + i;
    let start = u32(cx[ox]) - p.src_x;
    let len = u32(cx[p.n_x + ox]);
    let wbase = 2u * p.n_x + ox * p.taps_x;
    let row = r * p.src_w + start;
    var acc = i64(0);
    for (var k = 0u; k < len; k = k + 1u) {
        acc = acc + premultiplied(row + k, c) * i64(cx[wbase + k]);
    }
    var sh = p.sh1_plain;
    var t_bits = p.t_plain;
    if (is_colour(c)) {
        sh = p.sh1_colour;
        t_bits = p.t_colour;
    }
    let t = i32(round_shift(acc, sh));
    inter[idx] = f16(f32(t) / exp2(f32(t_bits)));
}
