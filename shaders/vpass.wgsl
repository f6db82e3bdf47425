// Pass 2 (vertical), exact: applies the y weights to the integer intermediate in 64 bits.
// Finishing: finish.wgsl; packing: pack.wgsl.

@group(0) @binding(1) var<storage, read> inter: array<i32>;
// starts[n_y], lens[n_y], weights[n_y * taps_y]
@group(0) @binding(2) var<storage, read> cy: array<i32>;

fn acc2(j: u32, i: u32, c: u32) -> i64 {
    let oy = p.out_y + j;
    let start = u32(cy[oy]) - p.src_y;
    let len = u32(cy[p.n_y + oy]);
    let wbase = 2u * p.n_y + oy * p.taps_y;
    let stride = p.out_w * p.ch;
    var acc = i64(0);
    for (var k = 0u; k < len; k = k + 1u) {
        acc = acc + i64(inter[(start + k) * stride + i * p.ch + c]) * i64(cy[wbase + k]);
    }
    return acc;
}
