// Shared declarations of both passes. Prepended to each pass by src/gpu/shaders.rs.
// The arithmetic is the fixed-point contract of src/kernel/fixed.rs, in 64-bit integers.

struct Params {
    out_x: u32, out_y: u32, out_w: u32, out_h: u32,   // valid output rectangle of the tile
    src_x: u32, src_y: u32, src_w: u32, src_h: u32,   // source window (halo included)
    tile: u32, ch: u32, bps: u32, alpha: u32,          // tile edge, channels, bytes/sample, has alpha
    sh1_colour: u32, sh1_plain: u32, k2_plain: u32, max_value: u32,
    n_shift: u32, d_shift: u32, taps_x: u32, taps_y: u32,
    n_x: u32, n_y: u32, groups_x: u32, pad0: u32,
    t_plain: u32, t_colour: u32, out_stride: u32, pad2: u32, // intermediate bits (f16 passes); pixels per output-buffer row
}

@group(0) @binding(0) var<uniform> p: Params;

fn round_shift(acc: i64, sh: u32) -> i64 {
    if (sh == 0u) {
        return acc;
    }
    return (acc + (i64(1) << (sh - 1u))) >> sh;
}

fn is_colour(c: u32) -> bool {
    return p.alpha == 1u && c + 1u < p.ch;
}

fn flat_index(gid: vec3<u32>) -> u32 {
    return gid.y * p.groups_x * 64u + gid.x;
}
