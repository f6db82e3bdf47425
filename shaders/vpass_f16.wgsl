// Pass 2 with an f16 intermediate: vertical weights in f32, then the same rounding, clamping and
// unpremultiplying as vpass.wgsl. Packing: pack.wgsl.

@group(0) @binding(1) var<storage, read> inter: array<f16>;
@group(0) @binding(2) var<storage, read> cy: array<i32>;

// Value in units of 2^-bits(M) of the channel's scale (see hpass_f16.wgsl).
fn acc2(j: u32, i: u32, c: u32) -> f32 {
    let oy = p.out_y + j;
    let start = u32(cy[oy]) - p.src_y;
    let len = u32(cy[p.n_y + oy]);
    let wbase = 2u * p.n_y + oy * p.taps_y;
    let stride = p.out_w * p.ch;
    let one = exp2(f32((p.sh1_plain + p.k2_plain) / 2u)); // 2^W
    var acc = 0.0;
    for (var k = 0u; k < len; k = k + 1u) {
        acc = acc + f32(inter[(start + k) * stride + i * p.ch + c]) * (f32(cy[wbase + k]) / one);
    }
    return acc;
}

fn to_sample(v: f32) -> u32 {
    return u32(clamp(floor(v + 0.5), 0.0, f32(p.max_value)));
}

fn value(j: u32, i: u32, c: u32) -> u32 {
    let unit = exp2(f32(p.bps * 8u)); // 2^bits(D)
    if (p.alpha == 1u) {
        let a = acc2(j, i, p.ch - 1u);
        let ao = to_sample(a * unit);
        if (c + 1u == p.ch) {
            return ao;
        }
        let pc = acc2(j, i, c);
        if (ao == 0u || pc <= 0.0) {
            return 0u;
        }
        return to_sample(pc / a * unit);
    }
    return to_sample(acc2(j, i, c) * unit);
}
