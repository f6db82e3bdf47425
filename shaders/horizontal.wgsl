// The horizontal pass' arithmetic, shared by hpass.wgsl (i32 intermediate) and hpass_f16.wgsl:
// one invocation per intermediate sample (source row r of the window, output column i of the
// tile, channel c). Reads source samples (source.wgsl), applies the x weights and rounds to the
// integer intermediate.

// starts[n_x], lens[n_x], weights[n_x * taps_x]
@group(0) @binding(2) var<storage, read> cx: array<i32>;

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
    return i32(round_shift(acc, sh1(c)));
}
