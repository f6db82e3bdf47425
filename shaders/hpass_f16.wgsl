// Pass 1 with an f16 intermediate (--precision f16): the exact integer horizontal pass, stored
// as t / 2^T in half precision (about 1.6 at most), halving the largest device buffer. Not
// bit-identical to the CPU; the error bound is in docs/how-it-works.md.

@group(0) @binding(3) var<storage, read_write> inter: array<f16>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = flat_index(gid);
    if (idx < horizontal_count()) {
        var t_bits = p.t_plain;
        if (is_colour(idx % p.ch)) {
            t_bits = p.t_colour;
        }
        inter[idx] = f16(f32(horizontal(idx)) / exp2(f32(t_bits)));
    }
}
