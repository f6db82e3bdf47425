// Pass 1 of the rounded intermediate (--precision rounded): vertical. One invocation per
// intermediate sample (output row j of the tile, window column x, channel c): applies the y
// weights to the source window (source.wgsl) and rounds to whole output steps.

// starts[n_y], lens[n_y], weights[n_y * taps_y]
@group(0) @binding(2) var<storage, read> cy: array<i32>;
@group(0) @binding(3) var<storage, read_write> inter: array<i32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = flat_index(gid);
    let row_len = p.src_w * p.ch;
    if (idx >= p.out_h * row_len) {
        return;
    }
    let j = idx / row_len;
    let c = (idx % row_len) % p.ch;
    let x = (idx % row_len) / p.ch;
    let oy = p.out_y + j;
    let start = u32(cy[oy]) - p.src_y;
    let len = u32(cy[p.n_y + oy]);
    let wbase = 2u * p.n_y + oy * p.taps_y;
    var acc = i64(0);
    for (var k = 0u; k < len; k = k + 1u) {
        acc = acc + premultiplied((start + k) * p.src_w + x, c) * i64(cy[wbase + k]);
    }
    inter[idx] = i32(round_shift(acc, sh1(c)));
}
