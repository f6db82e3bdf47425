// The entry point of every pass 2 (each defines `value(j, i, c)`): one invocation per 32-bit
// word of the output buffer — `tile` rows of `out_stride` pixels: one tile, or a run of tiles of
// one row side by side — packing 4 samples of 8 bits or 2 of 16, little-endian, so no two
// invocations write the same word. Pixels outside the image are zero.

@group(0) @binding(3) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let w = flat_index(gid);
    let per_row = p.out_stride * p.ch;
    let spw = 4u / p.bps;
    if (w * spw >= p.tile * per_row) {
        return;
    }
    var word = 0u;
    for (var q = 0u; q < spw; q = q + 1u) {
        let s = w * spw + q;
        let j = s / per_row;
        let i = (s % per_row) / p.ch;
        let c = s % p.ch;
        if (j < p.out_h && i < p.out_w) {
            word = word | (value(j, i, c) << (q * 8u * p.bps));
        }
    }
    out[w] = word;
}
