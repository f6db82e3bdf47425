// Pass 2 of the rounded intermediate: horizontal, along the intermediate rows (one per output
// row, window columns wide). Finishing: finish.wgsl; packing: pack.wgsl.

@group(0) @binding(1) var<storage, read> inter: array<i32>;
// starts[n_x], lens[n_x], weights[n_x * taps_x]
@group(0) @binding(2) var<storage, read> cx: array<i32>;

fn acc2(j: u32, i: u32, c: u32) -> i64 {
    let ox = p.out_x + i;
    let start = u32(cx[ox]) - p.src_x;
    let len = u32(cx[p.n_x + ox]);
    let wbase = 2u * p.n_x + ox * p.taps_x;
    let row = j * p.src_w * p.ch;
    var acc = i64(0);
    for (var k = 0u; k < len; k = k + 1u) {
        acc = acc + i64(inter[row + (start + k) * p.ch + c]) * i64(cx[wbase + k]);
    }
    return acc;
}
