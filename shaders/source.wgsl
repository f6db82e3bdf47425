// Reading the source window, shared by the passes that read it first (horizontal.wgsl for the
// exact and f16 intermediates, vertical_first.wgsl for the rounded one): packed 8- or 16-bit
// samples, colour premultiplied by alpha.

@group(0) @binding(1) var<storage, read> src: array<u32>;

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

// The shift that rounds channel c's pass-1 accumulator to the intermediate.
fn sh1(c: u32) -> u32 {
    if (is_colour(c)) {
        return p.sh1_colour;
    }
    return p.sh1_plain;
}
