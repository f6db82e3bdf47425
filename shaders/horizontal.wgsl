// The horizontal pass' arithmetic, shared by hpass.wgsl (i32 intermediate) and hpass_f16.wgsl:
// one invocation per intermediate sample (source row r of the window, output column i of the
// tile, channel c). Reads packed source samples, premultiplies colour by alpha, applies the x
// weights and rounds to the integer intermediate.

@group(0) @binding(1) var<storage, read> src: array<u32>;
// starts[n_x], lens[n_x], weights[n_x * taps_x]
@group(0) @binding(2) var<storage, read> cx: array<i32>;

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

fn horizontal_count() -> u32 {
    return p.src_h * p.out_w * p.ch;
}

// The integer intermediate t of sample `idx` (row-major over rows, columns, channels).
fn horizontal(idx: u32) -> i32 {
    let tw = p.out_w;
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
    if (is_colour(c)) {
        sh = p.sh1_colour;
    }
    return i32(round_shift(acc, sh));
}
