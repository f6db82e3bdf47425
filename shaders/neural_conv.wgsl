// One stride-1 convolution of the exact neural engine (src/neural/exact.rs), generated per
// layer from this template by src/gpu/neural.rs: OCB output channels per invocation, CIN2
// channel pairs, KK kernel taps (K x K). The same 32-bit arithmetic as the CPU kernels: each
// input word packs two 16-bit channels (low: even), each weight word the same two channels'
// weights; products of halves are summed in wrapping i32, the bias added, the sum shifted
// with round-half-up, saturated to 16 bits, and negative values scaled by the slope (15-bit
// fraction, rounded the same way).

struct Params {
    in_x0: i32, in_y0: i32, in_w: i32, in_h: i32,
    gw: i32, gh: i32, pad_x: i32, pad_y: i32,
    out_x0: i32, out_y0: i32, out_w: i32, out_h: i32,
    dil: i32, cout: i32, _a: i32, _b: i32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<i32>;
// [cout][KK][CIN2] packed pairs, then per channel: bias, shift, slope, has_slope.
@group(0) @binding(2) var<storage, read> w: array<i32>;
@group(0) @binding(3) var<storage, read_write> y: array<i32>;

const OCB: u32 = {{OCB}}u;
const CIN2: u32 = {{CIN2}}u;
const K: u32 = {{K}}u;
const KK: u32 = K * K;

fn shift_round(a: i32, s: i32) -> i32 {
    if s >= 32 { return 0; }
    if s > 0 { return (a >> u32(s)) + ((a >> u32(s - 1)) & 1); }
    if s == 0 { return a; }
    let lim = 32767 >> u32(min(-s, 15));
    if a > lim { return 32767; }
    if a < -lim { return -32767; }
    return a << u32(-s);
}

fn finish(o: u32, a: i32) -> i32 {
    let q = u32(p.cout) * KK * CIN2 + o * 4u;
    let r = clamp(shift_round(a + w[q], w[q + 1u]), -32767, 32767);
    if r < 0 && w[q + 3u] != 0 { return shift_round(r * w[q + 2u], 15); }
    return r;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = u32(p.out_w * p.out_h);
    let pix = gid.x;
    let ob = gid.y * OCB;
    if pix >= n { return; }
    let ox = i32(pix) % p.out_w;
    let oy = i32(pix) / p.out_w;
    let plane = u32(p.in_w * p.in_h);
    var acc: array<i32, {{OCB}}>;
    for (var t = 0u; t < KK; t++) {
        let gy = p.out_y0 + oy + i32(t / K) * p.dil - p.pad_y;
        let gx = p.out_x0 + ox + i32(t % K) * p.dil - p.pad_x;
        if gy < 0 || gy >= p.gh || gx < 0 || gx >= p.gw { continue; }
        let at = u32((gy - p.in_y0) * p.in_w + gx - p.in_x0);
        for (var j = 0u; j < CIN2; j++) {
            let v = x[j * plane + at];
            let lo = (v << 16u) >> 16u;
            let hi = v >> 16u;
            for (var o = 0u; o < OCB; o++) {
                let wv = w[((ob + o) * KK + t) * CIN2 + j];
                acc[o] += lo * ((wv << 16u) >> 16u) + hi * (wv >> 16u);
            }
        }
    }
    for (var o = 0u; o < OCB; o++) {
        if ob + o < u32(p.cout) {
            y[(ob + o) * n + pix] = finish(ob + o, acc[o]);
        }
    }
}
